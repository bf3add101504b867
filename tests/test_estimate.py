"""Time estimates before launch (deem_studio.estimate): a timed probe of the job's own code, scaled."""

from __future__ import annotations

import math

import pytest

from deem_core.data.annotations import AnnotationSet
from deem_studio.estimate import (Estimate, estimate_diagnostics, estimate_sweep, estimate_train, format_seconds,
                                  sample_positions)

from conftest import read_sample


@pytest.fixture(scope="module")
def data():
    df, _ = read_sample("condind", n_tasks=400)
    return AnnotationSet.from_long(df)


def test_format_seconds():
    assert format_seconds(3.25) == "3.2 s" and format_seconds(42) == "42 s"
    assert format_seconds(185) == "3 min 05 s" and format_seconds(3720) == "1 h 02 min"
    assert format_seconds(None) == "?" and format_seconds(float("nan")) == "?"


def test_scaling_is_linear_in_tasks_and_epochs():
    e = Estimate(kind="train", n_tasks=10_000, sample_tasks=2_000, setup_s=1.0, per_epoch_s=0.5, baselines_s=0.2,
                 epochs=100)
    assert e.scale == 5 and math.isclose(e.total_s, 5 * (1.0 + 0.2 + 50.0))
    assert math.isclose(e.with_epochs(10).total_s, 5 * (1.2 + 5.0))
    assert math.isclose(e.with_tasks(2_000).total_s, 1.2 + 50.0)
    assert "sample of 2,000 tasks" in e.describe() and "per epoch" in e.describe()


def test_sample_positions_are_sorted_distinct_and_seeded():
    a = sample_positions(1000, 100, seed=3)
    assert len(set(a)) == 100 and list(a) == sorted(a) and (a == sample_positions(1000, 100, seed=3)).all()
    assert list(sample_positions(50, 100)) == list(range(50))


def test_probes_time_the_real_jobs(data):
    sweep = estimate_sweep(data, lrs=[0.01, 0.1], epochs=50, sample=200)
    assert sweep.sample_tasks == 200 and sweep.n_tasks == 400 and sweep.n_runs == 2
    assert sweep.per_epoch_s > 0 and sweep.total_s > sweep.scale * sweep.per_epoch_s * 49
    train = estimate_train(data, deem_methods=("deem",), baselines=("mv", "ds"), epochs=20, sample=200)
    assert train.per_epoch_s > 0 and train.baselines_s > 0 and train.total_s > 0
    assert train.to_dict()["seconds"] == pytest.approx(train.total_s, abs=1e-3)


def test_diagnostics_probe(data):
    from deem_core.methods.deem import DEEM  # noqa: PLC0415

    model = DEEM(epochs=2).fit(data)
    estimate = estimate_diagnostics(model, data, sample=200)
    assert estimate.kind == "diagnostics" and estimate.total_s > 0 and estimate.scale == 2
