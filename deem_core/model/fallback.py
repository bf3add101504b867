"""GPU out-of-memory fallback: retry with smaller batches, then on the CPU, and say so."""

from __future__ import annotations

from typing import Callable, TypeVar

import torch

__all__ = ["MIN_GPU_BATCH", "train_with_memory_fallback"]

T = TypeVar("T")
MIN_GPU_BATCH = 128


def train_with_memory_fallback(train: Callable[[int, torch.device], T], batch_size: int, device: torch.device,
                               notes: list[str]) -> tuple[T, int, torch.device]:
    """Call ``train(batch_size, device)``; on CUDA out-of-memory halve the batch (down to 128), then move
    to the CPU. Each retry appends a sentence to ``notes``. Returns (result, batch size used, device used).
    Out-of-memory on the CPU, or any other error, propagates unchanged."""
    while True:
        try:
            return train(batch_size, device), batch_size, device
        except torch.cuda.OutOfMemoryError:
            if device.type != "cuda":
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if batch_size > MIN_GPU_BATCH:
                smaller = max(MIN_GPU_BATCH, batch_size // 2)
                notes.append(f"GPU out of memory with batch size {batch_size}: retrying with batch size {smaller}")
                batch_size = smaller
            else:
                notes.append(f"GPU out of memory even with batch size {batch_size}: training on the CPU instead")
                device = torch.device("cpu")
