"""Large layer weights on transparent huge pages (deem_core/model/memory.py): the same zeros, advice taken on Linux."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from deem_core.model.memory import HUGE_PAGE_MIN_BYTES, advise_huge_pages, zeros


@pytest.mark.parametrize("shape", [(3, 4), (2, HUGE_PAGE_MIN_BYTES // 4)])
def test_zeros_are_float32_zeros_of_the_shape_below_and_above_the_threshold(shape):
    out = zeros(*shape)
    assert out.shape == shape and out.dtype == torch.float32 and out.device.type == "cpu"
    assert not out.any()
    out += 1.0  # writable, and its own memory
    assert float(out.sum()) == out.numel()


THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")


@pytest.mark.skipif(not sys.platform.startswith("linux") or not THP.exists() or "[never]" in THP.read_text(),
                    reason="transparent huge pages are not available here")
def test_linux_takes_the_advice_for_a_fresh_large_tensor_and_small_ones_are_left_alone():
    assert advise_huge_pages(torch.empty(16 << 20))  # 64 MB: spans whole 2 MB pages
    assert not advise_huge_pages(torch.empty(16))  # smaller than one huge page: nothing to advise
