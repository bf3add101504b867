"""Data with many classes never costs a dense (tasks x classes) table before any size check (found attacking
main): a 3.8 MB CSV of 100,000 tasks, 50 workers and 2,000 classes took the Data page's summary (Krippendorff's
alpha, class balance, worker coverage: majority vote) to 1.8 GB and 17 s, pairwise agreement looped over every
class; 300,000 answers over 5,000 classes ran past 200 s. Now each is computed from the (task, class) pairs that
occur, and gives what the dense computation gave."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pandas as pd
import pytest

from deem_core.analysis import agreement
from deem_core.data.annotations import AnnotationSet, _sparse_vote, majority_vote_codes
from deem_core.data.pairs import indicator_matrix, pair_table


def _random_set(n_tasks: int, n_workers: int, n_classes: int, answers: int, seed: int = 0) -> AnnotationSet:
    rng = np.random.default_rng(seed)
    pairs = np.unique(rng.integers(0, n_tasks, answers) * n_workers + rng.integers(0, n_workers, answers))
    return AnnotationSet.from_codes(pd.Index([f"t{i}" for i in range(n_tasks)]),
                                    pd.Index([f"w{i}" for i in range(n_workers)]), pd.RangeIndex(n_classes),
                                    pairs // n_workers, pairs % n_workers, rng.integers(0, n_classes, len(pairs)))


def test_the_data_summary_of_many_classes_costs_what_the_answers_cost():
    data = _random_set(100_000, 50, 2_000, 300_000)
    tracemalloc.start()
    started = time.process_time()
    agreement.krippendorff_alpha(data)
    agreement.class_balance(data)
    agreement.worker_coverage(data)
    agreement.pairwise_agreement(data, max_workers=60)
    seconds = time.process_time() - started
    peak = tracemalloc.get_traced_memory()[1] / (1 << 20)
    tracemalloc.stop()
    print(f"summary of 100,000 tasks x 2,000 classes: {peak:.0f} MiB traced, {seconds:.2f} s CPU")
    assert peak < 150, peak  # main: 1,824 MiB (a dense 100,000 x 2,000 float64 table and copies)
    assert seconds < 10, seconds  # main: 17 s


def _dense_alpha(data: AnnotationSet) -> float:
    """Krippendorff's alpha from the dense (tasks x classes) counts: main's computation."""
    n, k = data.n_tasks, data.n_classes
    counts = np.bincount(data.task_codes * k + data.label_codes, minlength=n * k).astype(np.float64).reshape(n, k)
    m = counts.sum(axis=1)
    counts, m = counts[m >= 2], m[m >= 2]
    total = counts.sum()
    if total < 2:
        return float("nan")
    observed = (counts * (counts - 1) / (m - 1)[:, None]).sum()
    expected = total * total - (counts.sum(axis=0) ** 2).sum()
    return float("nan") if expected <= 0 else float(1.0 - (total - 1) * (total - observed) / expected)


@pytest.mark.parametrize("seed", range(40))
def test_the_pair_counts_give_what_the_dense_tables_gave(seed):
    rng = np.random.default_rng(seed)
    n, d, k = int(rng.integers(1, 40)), int(rng.integers(1, 8)), int(rng.integers(1, 6))
    data = _random_set(n, d, k, int(rng.integers(1, 3 * n * d + 1)), seed)
    assert (_sparse_vote(data) == majority_vote_codes(data.class_votes())).all()  # ties: the smallest class
    dense, sparse = _dense_alpha(data), agreement.krippendorff_alpha(data)
    assert (np.isnan(dense) and np.isnan(sparse)) or dense == pytest.approx(sparse, abs=1e-12)
    for most in (None, 3):
        keep = agreement.most_active_workers(data, most)
        same = sum(pair_table(indicator_matrix(data, answers=data.label_codes == c)[:, keep]) for c in range(k))
        overlap = pair_table(indicator_matrix(data)[:, keep])
        with np.errstate(invalid="ignore", divide="ignore"):
            expected = np.where(overlap > 0, same / np.maximum(overlap, 1), np.nan)
        table, _ = agreement.pairwise_agreement(data, max_workers=most)
        np.testing.assert_allclose(table.to_numpy(), expected, equal_nan=True)


def test_majority_vote_takes_the_pair_counts_only_for_large_tables():
    small = _random_set(100, 5, 3, 300)
    large = _random_set(10_000, 5, 5_000, 20_000)
    assert small.n_tasks * small.n_classes <= 8 * small.n_answers + (1 << 20)
    np.testing.assert_array_equal(small.majority_vote(), majority_vote_codes(small.class_votes()))
    np.testing.assert_array_equal(large.majority_vote(), _sparse_vote(large))
