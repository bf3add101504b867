"""The training loop reproduces pinned seeded runs float for float (see ``training_cases.py``).

Cases: 0, 1 and 2 layers; sparse data with missing answers; gold labels with a supervised weight; a learning
rate that diverges mid-training, one that leaves no run, one whose update overflows the parameters; soft
labels with momentum and a given initial network; a callback stop; a cancel before the first batch.
Bit-for-bit equality holds for the torch build and CPU kernel set that wrote the file; elsewhere (another
SIMD level reorders float sums) the floats are compared to 1e-5.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from training_cases import CASES, GOLDEN, exact_floats, run_case

GOLD = json.loads(GOLDEN.read_text())
EXACT = exact_floats(GOLD)


def _same(got, want) -> bool:
    if isinstance(want, float) or isinstance(got, float):
        if math.isnan(want):
            return math.isnan(got)
        return got == want if EXACT else math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-6)
    return got == want


@pytest.mark.parametrize("name", CASES)
def test_training_reproduces_pinned_run(name):
    got, want = run_case(name), GOLD["cases"][name]
    assert got["status"] == want["status"]
    assert got["messages"] == want["messages"]
    assert got["epochs_run"] == want["epochs_run"]
    assert len(got["history"]) == len(want["history"])
    for row_got, row_want in zip(got["history"], want["history"]):
        assert row_got.keys() == row_want.keys()
        for key in row_want:
            assert _same(row_got[key], row_want[key]), (name, row_want["epoch"], row_want["run"], key)
    assert len(got["parameters"]) == len(want["parameters"])
    for p_got, p_want in zip(got["parameters"], want["parameters"]):
        if EXACT:
            np.testing.assert_array_equal(np.array(p_got), np.array(p_want))
        else:
            np.testing.assert_allclose(np.array(p_got), np.array(p_want), rtol=1e-5, atol=1e-6)


def test_pinned_cases_cover_what_they_claim():
    cases = GOLD["cases"]
    assert cases["diverging_lr"]["status"] == ["finished", "diverged"]
    assert "epoch 3" in cases["diverging_lr"]["messages"][1]  # of 4 (epoch 2 while the bias was the iRBM's b)
    assert cases["every_run_diverges"]["status"] == ["diverged"]
    assert cases["every_run_diverges"]["epochs_run"] < 5
    assert cases["parameters_overflow"]["messages"][1].startswith("parameters became non-finite")
    assert cases["stopped_by_callback"]["status"] == ["stopped"]
    assert cases["cancelled_before_start"]["status"] == ["cancelled"]
