"""GPU out-of-memory fallback (simulated: no GPU is needed)."""

from __future__ import annotations

import pytest
import torch

from deem_core.model.fallback import train_with_memory_fallback


def test_halves_the_batch_then_moves_to_cpu_and_says_so():
    calls = []

    def train(batch_size, device):
        calls.append((batch_size, device.type))
        if device.type == "cuda":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return "trained"

    notes = []
    result, batch, device = train_with_memory_fallback(train, 1024, torch.device("cuda"), notes)
    assert result == "trained" and batch == 128 and device.type == "cpu"
    assert calls == [(1024, "cuda"), (512, "cuda"), (256, "cuda"), (128, "cuda"), (128, "cpu")]
    assert notes[0] == "GPU out of memory with batch size 1024: retrying with batch size 512"
    assert notes[-1] == "GPU out of memory even with batch size 128: training on the CPU instead"


def test_stops_shrinking_when_a_smaller_batch_fits():
    def train(batch_size, device):
        if batch_size > 300:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return batch_size

    notes = []
    assert train_with_memory_fallback(train, 1024, torch.device("cuda"), notes)[:2] == (256, 256)
    assert len(notes) == 2


def test_other_errors_and_cpu_errors_propagate():
    def broken(batch_size, device):
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        train_with_memory_fallback(broken, 1024, torch.device("cuda"), [])

    def cpu_oom(batch_size, device):
        raise torch.cuda.OutOfMemoryError("odd")

    with pytest.raises(torch.cuda.OutOfMemoryError):
        train_with_memory_fallback(cpu_oom, 1024, torch.device("cpu"), [])
