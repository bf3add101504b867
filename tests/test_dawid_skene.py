"""Vectorised Dawid-Skene and the dependence statistic that picks DEEM's default start."""

from __future__ import annotations

import numpy as np
import pandas as pd
from crowdkit.aggregation import DawidSkene

from deem_core import DEEM
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
