"""Model: the DEEM network (multinomial layers + iRBM), the DMALA sampler, sparsemax and the batched
training loop. Knows nothing of files, methods or presentation."""
