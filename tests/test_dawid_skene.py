"""Vectorised Dawid-Skene and the dependence statistic that picks DEEM's default start."""

from __future__ import annotations

import numpy as np
import pytest
import pandas as pd
from crowdkit.aggregation import DawidSkene

from deem_core.data.annotations import AnnotationSet
from deem_core.methods.dawid_skene import excess_pairwise_agreement, fit_dawid_skene

from conftest import make_ds_data


def test_matches_crowdkit_labels_and_recovers_accuracies():
    df, truth = make_ds_data(800, 8, 3, density=0.5, seed=11)
    data = AnnotationSet.from_long(df)
    fit = fit_dawid_skene(data)
    ours = data.classes.take(fit.posterior.argmax(1))
    theirs = DawidSkene(n_iter=100).fit_predict(df).reindex(data.tasks).to_numpy()
    assert (ours == theirs).mean() > 0.99
    np.testing.assert_allclose(fit.posterior.sum(1), 1.0, atol=1e-9)
    np.testing.assert_allclose(fit.confusion.sum(axis=1), 1.0, atol=1e-9)  # columns P(. | y=m) sum to 1
    assert (ours == truth.reindex(data.tasks).to_numpy()).mean() > 0.85  # 4 answers per task on average


def _with_copies(df: pd.DataFrame, source: str, copies: int) -> pd.DataFrame:
    extra = [df[df["worker"] == source].assign(worker=f"{source}_copy{c}") for c in range(copies)]
    return pd.concat([df, *extra], ignore_index=True)


def test_excess_agreement_is_near_zero_for_independent_workers_and_high_for_copies():
    df, _ = make_ds_data(1500, 6, 3, seed=12, accuracy=(0.55, 0.8))
    independent = AnnotationSet.from_long(df)
    value = excess_pairwise_agreement(independent, fit_dawid_skene(independent))
    assert abs(value) < 0.01, value
    copied = AnnotationSet.from_long(_with_copies(_with_copies(df, "w00", 3), "w01", 3))
    value = excess_pairwise_agreement(copied, fit_dawid_skene(copied))
    assert value > 0.03, value


def test_a_worker_without_answers_warns_nothing():
    """The answers left after holding some out can leave a worker with none: its confusion row is 0/0, masked out
    before use (as crowd-kit does); the server log saw a RuntimeWarning for it every fit."""
    import warnings

    from deem_core.methods.dawid_skene import crowdkit_dawid_skene

    rng = np.random.default_rng(0)
    rows = [(f"t{t}", f"w{w}", int(rng.integers(3))) for t in range(60) for w in range(4)] + [("t0", "lonely", 1)]
    data = AnnotationSet.from_long(pd.DataFrame(rows, columns=["task", "worker", "label"])).subset_tasks(
        np.arange(1, 60))
    assert data.answers_per_worker().min() == 0  # "lonely" is still a worker of the set, with no answer
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = crowdkit_dawid_skene(data)
    assert np.isfinite(fit.posterior).all()


@pytest.mark.parametrize("fit, most", [("fit_dawid_skene", 6.0), ("crowdkit_dawid_skene", 5.6)])
def test_dawid_skene_on_many_classes_holds_few_tasks_x_classes_arrays_at_once(fit, most):
    """The E-step normalises in place: scipy's logsumexp and exp(joint - norm) held about 8.5 (tasks x classes)
    arrays at once in ``fit_dawid_skene`` (3.9 GB on 60,000 tasks x 1,000 classes; 3.5 now) and crowd-kit's steps
    5.3 (4.3 now); ``benchmarks/results/ds_memory.txt``. On this small set the answers add about one more: 9.7 and
    6.1 before, 4.6 and 5.1 now."""
    import tracemalloc

    import pandas as pd

    import deem_core.methods.dawid_skene as ds

    rng = np.random.default_rng(0)
    n, d, k = 4_000, 5, 400
    truth = rng.integers(0, k, n)
    label = np.where(rng.random(n * d) < 0.7, np.repeat(truth, d), rng.integers(0, k, n * d))
    data = AnnotationSet.from_codes(pd.Index([f"t{i}" for i in range(n)]), pd.Index([f"w{i}" for i in range(d)]),
                                    pd.Index(np.arange(k)), np.repeat(np.arange(n), d), np.tile(np.arange(d), n), label)
    tracemalloc.start()
    try:
        out = ds.fit_dawid_skene(data, max_iter=2) if fit == "fit_dawid_skene" else ds.crowdkit_dawid_skene(data, n_iter=2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    arrays = peak / (n * k * 8)
    assert arrays < most, f"{fit}: {arrays:.1f} (tasks x classes) arrays at once"
    assert out.posterior.shape == (n, k)


def test_dawid_skene_with_many_workers_and_classes_holds_few_confusion_sized_arrays_at_once():
    """The M-step normalises its counts in place and the E-step takes the log of one clipped copy: with thousands of
    workers x 100 classes the (workers, K, K) arrays are what a fit holds, and the start of Lemma 1 of 5,441 workers x
    100 classes took 3.95 GB before its training began (attack round 67). Here 800 workers x 40 classes, with and
    without the shared prior: 4.1 such arrays at once before, 2.1 now."""
    import tracemalloc

    import pandas as pd

    import deem_core.methods.dawid_skene as ds

    rng = np.random.default_rng(67)
    n, d, k, per_task = 600, 800, 40, 3
    truth = rng.integers(0, k, n)
    workers = np.concatenate([rng.choice(d, per_task, replace=False) for _ in range(n)])
    label = np.where(rng.random(n * per_task) < 0.7, np.repeat(truth, per_task), rng.integers(0, k, n * per_task))
    data = AnnotationSet.from_codes(pd.Index([f"t{i}" for i in range(n)]), pd.Index([f"w{i}" for i in range(d)]),
                                    pd.Index(np.arange(k)), np.repeat(np.arange(n), per_task), workers, label)
    for strength in (0.0, ds.DEFAULT_DS_PRIOR):
        tracemalloc.start()
        try:
            out = ds.fit_dawid_skene(data, max_iter=3, prior_strength=strength)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        arrays = peak / (d * k * k * 8)
        assert arrays < 3.0, f"prior {strength}: {arrays:.1f} (workers, K, K) arrays at once"
        assert out.confusion.shape == (d, k, k) and np.allclose(out.confusion.sum(axis=1), 1.0)
