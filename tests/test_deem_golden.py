"""``DEEM.fit`` reproduces pinned seeded fits, and a model file written by the first format still loads."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from deem_cases import CASES, GOLDEN, MODEL_V1, fitted_summary, run_case
from training_cases import exact_floats
from deem_core.methods.deem import DEEM

GOLD = json.loads(GOLDEN.read_text())
EXACT = exact_floats(GOLD)
#: values computed by sums whose order is not pinned: the dependence statistic sums over the worker pairs with
#: sparse products (pinned by the dense einsum it replaced; they differ in the 16th digit)
NEAR = {"dependence": 1e-12}


def _assert_same(got, want, where=""):
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), where
        for key in want:
            _assert_same(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            _assert_same(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        if math.isnan(want):
            assert math.isnan(got), where
        elif where.rsplit(".", 1)[-1] in NEAR:
            assert math.isclose(got, want, rel_tol=0, abs_tol=NEAR[where.rsplit(".", 1)[-1]]), where
        elif EXACT:
            assert got == want, where
        else:
            assert math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-6), where
    else:
        assert got == want, where


@pytest.mark.parametrize("name", CASES)
def test_fit_reproduces_pinned_fit(name):
    _, got = run_case(name)
    _assert_same(json.loads(json.dumps(got)), GOLD["cases"][name], name)


def test_model_file_of_format_1_still_loads():
    model = DEEM.load(MODEL_V1, device="cpu")
    # what that fit was when the file was written (the pinned case itself has moved on since: with missing
    # answers the hidden bias is now trained as the class prior, see deem_core/model/network.py)
    want = json.loads(MODEL_V1.with_suffix(".summary.json").read_text())
    _assert_same(json.loads(json.dumps(fitted_summary(model))), want, "loaded")
    assert model.get_params()["supervised_weight"] == 0.5 and model.get_params()["n_seeds"] == 2
    proba = model.predict_proba()
    assert list(proba.columns) == ["c0", "c1", "c2"] and proba.index[0] == "t000"
    np.testing.assert_allclose(proba.to_numpy(), np.array(want["posterior"]))
