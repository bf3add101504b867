"""Large CPU tensors on transparent huge pages.

The sparse path reads and writes a few thousand randomly placed ``K x K`` blocks of its layer weights per batch
(hundreds of MB on a platform-sized set: 207 MB for 2,400 workers x 3 classes). With 4 KB pages nearly every such
access also misses the TLB; 2 MB pages cover the whole table with a few hundred TLB entries. Linux backs a region
with huge pages when it is advised so (``madvise(MADV_HUGEPAGE)``) before its pages are first touched, which is
what :func:`zeros` does; elsewhere (other systems, GPUs, small tensors, THP disabled) it is plain ``torch.zeros``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

import torch

__all__ = ["HUGE_PAGE_MIN_BYTES", "zeros"]

#: tensors of at least this many bytes are advised onto huge pages (smaller ones gain nothing measurable)
HUGE_PAGE_MIN_BYTES = 32 << 20
_HUGE_PAGE = 2 << 20
_MADV_HUGEPAGE = 14


@functools.cache
def _madvise():
    """libc's ``madvise`` (None where it cannot be loaded)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = libc.madvise
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    function.restype = ctypes.c_int
    return function


def advise_huge_pages(tensor: torch.Tensor) -> bool:
    """Ask Linux to back the 2 MB-aligned part of ``tensor``'s memory with huge pages (best effort: True when the
    advice was taken). Only pages not yet touched are affected, so call it on a fresh ``torch.empty``."""
    madvise = _madvise()
    if madvise is None or tensor.device.type != "cpu":
        return False
    storage = tensor.untyped_storage()
    start = -(-storage.data_ptr() // _HUGE_PAGE) * _HUGE_PAGE
    end = (storage.data_ptr() + storage.nbytes()) // _HUGE_PAGE * _HUGE_PAGE
    return end > start and madvise(start, end - start, _MADV_HUGEPAGE) == 0


def zeros(*shape: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``torch.zeros(shape)`` in float32; on the CPU, at least :data:`HUGE_PAGE_MIN_BYTES` large, on huge pages where
    the system allows (see the module docstring)."""
    out = torch.empty(*shape, device=device)
    if out.device.type == "cpu" and out.numel() * out.element_size() >= HUGE_PAGE_MIN_BYTES:
        advise_huge_pages(out)
    return out.zero_()
