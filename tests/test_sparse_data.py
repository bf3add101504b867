"""The sparse (CSR) annotation set against the dense tasks x workers computations it replaced.

Every statistic and aggregator now works on the answers; here each is compared with the dense formula of
the old code (kept below as the reference) on seeded random sets with missing answers, tasks without
answers, soft labels and more classes than some workers use.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
from scipy.special import logsumexp

from deem_core.analysis import agreement
from deem_core.analysis.diagnostics import empirical_confusion
from deem_core.data.annotations import AnnotationSet, DataError
from deem_core.data.pairs import answer_matrix, indicator_matrix, pair_table
from deem_core.methods.dawid_skene import excess_pairwise_agreement, fit_dawid_skene


# ------------------------------------------------------------------ the dense reference (the old code)
def dense_votes(labels: np.ndarray, k: int, soft: np.ndarray | None) -> np.ndarray:
    if soft is not None:
        return soft.astype(np.float64)
    onehot = np.zeros(labels.shape + (k,))
    rows, cols = np.nonzero(labels >= 0)
    onehot[rows, cols, labels[rows, cols]] = 1.0
    return onehot


def dense_dawid_skene(labels, k, soft=None, max_iter=100, tol=1e-4, smoothing=0.01):
    votes = dense_votes(labels, k, soft)
    n, d, _ = votes.shape
    n_answers = max(float(votes.sum()), 1.0)
    shares = votes.sum(axis=1)
    totals = shares.sum(axis=1, keepdims=True)
    posterior = np.where(totals > 0, shares / np.where(totals > 0, totals, 1.0), 1.0 / k)
    previous = -np.inf
    for iteration in range(1, max_iter + 1):
        counts = np.einsum("til,tm->ilm", votes, posterior) + smoothing
        confusion = counts / counts.sum(axis=1, keepdims=True)
        prior = posterior.sum(axis=0) + smoothing
        prior = prior / prior.sum()
        joint = votes.reshape(n, d * k) @ np.log(np.clip(confusion, 1e-12, None)).reshape(d * k, k) + np.log(prior)
        norm = logsumexp(joint, axis=1, keepdims=True)
        posterior, log_lik = np.exp(joint - norm), float(norm.sum())
        if abs(log_lik - previous) / n_answers < tol:
            break
        previous = log_lik
    return confusion, prior, posterior, iteration, log_lik


def dense_excess(labels, k, confusion, posterior, min_common=20):
    votes = dense_votes(labels, k, None)
    observed = (labels >= 0).astype(np.float64)
    common = observed.T @ observed
    agree_observed = np.einsum("til,tjl->ij", votes, votes)
    agree_given_class = np.einsum("ilm,jlm->ijm", confusion, confusion)
    weighted = posterior[:, None, :] * observed[:, :, None]
    agree_expected = np.einsum("tim,tj,ijm->ij", weighted, observed, agree_given_class)
    upper = np.triu_indices(labels.shape[1], 1)
    keep = common[upper] >= min_common
    if not keep.any():
        return 0.0
    return float(((agree_observed[upper] - agree_expected[upper])[keep] / common[upper][keep]).mean())


def dense_majority(labels, k, soft=None):
    votes = dense_votes(labels, k, soft).sum(axis=1)
    winner = votes.argmax(axis=1)
    winner[votes.sum(axis=1) <= 0] = -1
    return winner


def random_dense(seed: int, n: int, d: int, k: int, density: float, soft: bool = False, empty_tasks: int = 0):
    """(labels (n, d) with -1 = missing, soft (n, d, K) or None) from one-coin workers of mixed skill."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    skill = rng.uniform(0.3, 0.9, d)
    right = rng.random((n, d)) < skill
    labels = np.where(right, truth[:, None], rng.integers(0, k, (n, d)))
    labels[rng.random((n, d)) > density] = -1
    labels[rng.integers(0, n, empty_tasks)] = -1
    probs = None
    if soft:
        probs = rng.dirichlet(np.ones(k), size=(n, d)).astype(np.float32)
        probs[np.arange(n)[:, None], np.arange(d)[None, :], np.maximum(labels, 0)] += 2.0
        probs /= probs.sum(axis=-1, keepdims=True)
        probs[labels < 0] = 0.0
        labels = np.where(labels >= 0, probs.argmax(-1), -1)
    return labels, probs


CASES = [  # seed, tasks, workers, classes, density, soft, tasks without answers
    (0, 300, 8, 3, 0.5, False, 0),
    (1, 500, 25, 4, 0.12, False, 5),
    (2, 200, 6, 2, 1.0, False, 0),
    (3, 250, 12, 5, 0.3, True, 3),
    (4, 400, 40, 3, 0.05, False, 20),
]


@pytest.fixture(params=CASES, ids=[f"seed{c[0]}-{c[1]}x{c[2]}xK{c[3]}-dens{c[4]}{'-soft' if c[5] else ''}" for c in CASES])
def case(request):
    seed, n, d, k, density, soft, empty = request.param
    labels, probs = random_dense(seed, n, d, k, density, soft, empty)
    data = AnnotationSet.from_dense(labels, soft=probs, classes=range(k))
    return labels, probs, k, data


# ------------------------------------------------------------------ the layout itself
def test_csr_layout_and_round_trip(case):
    labels, probs, k, data = case
    assert data.task_codes.dtype == data.worker_codes.dtype == data.label_codes.dtype == np.int64
    assert data.task_offsets.shape == (data.n_tasks + 1,) and data.task_offsets[-1] == data.n_answers
    assert np.all(np.diff(data.task_codes) >= 0)
    same_task = data.task_codes[1:] == data.task_codes[:-1]
    assert np.all(np.diff(data.worker_codes)[same_task] > 0)  # sorted by worker within a task, no repeats
    np.testing.assert_array_equal(np.repeat(np.arange(data.n_tasks), np.diff(data.task_offsets)), data.task_codes)
    np.testing.assert_array_equal(data.dense_labels(), labels)
    assert data.n_answers == int((labels >= 0).sum())
    assert data.density == pytest.approx((labels >= 0).mean())
    if probs is not None:
        assert data.soft_labels.dtype == np.float32 and data.soft_labels.shape == (data.n_answers, k)
        np.testing.assert_array_equal(data.dense_soft(), probs)
    else:
        assert data.soft_labels is None and data.dense_soft() is None
    np.testing.assert_array_equal(data.answers_per_task(), (labels >= 0).sum(axis=1))
    np.testing.assert_array_equal(data.answers_per_worker(), (labels >= 0).sum(axis=0))


def test_from_long_is_independent_of_row_order_and_gives_the_dense_table(case):
    labels, probs, k, data = case
    if probs is not None:
        pytest.skip("soft labels come through readers' prob_ columns, checked in test_io")
    long = data.to_long()
    shuffled = long.sample(frac=1.0, random_state=0).reset_index(drop=True)
    again = AnnotationSet.from_long(shuffled, classes=range(k))
    assert again.fingerprint() == AnnotationSet.from_long(long, classes=range(k)).fingerprint()
    # tasks without answers are not in a long table: compare on the tasks that have some
    answered = (labels >= 0).any(axis=1)
    workers = (labels >= 0).any(axis=0)
    np.testing.assert_array_equal(again.dense_labels(), labels[answered][:, workers])


def test_subset_iter_dense_and_encode_like_match_dense_slicing(case):
    labels, probs, k, data = case
    rng = np.random.default_rng(0)
    positions = rng.permutation(data.n_tasks)[: data.n_tasks // 3]
    sub = data.subset_tasks(positions)
    np.testing.assert_array_equal(sub.dense_labels(), labels[positions])
    np.testing.assert_array_equal(data.dense_labels(positions), labels[positions])
    if probs is not None:
        np.testing.assert_array_equal(sub.dense_soft(), probs[positions])
    pd.testing.assert_frame_equal(data.to_long(limit=7), data.to_long().head(7))
    chunks = [(rows, chunk) for rows, chunk, _ in data.iter_dense(batch_size=37)]
    assert all(len(chunk) <= 37 for _, chunk in chunks)
    np.testing.assert_array_equal(np.concatenate([chunk for _, chunk in chunks]), labels)
    # new tasks answered by a known and an unknown worker: the unknown one is dropped, tasks are kept
    new = pd.DataFrame({"task": ["n1", "n1", "n2"], "worker": [data.workers[1], "stranger", "stranger"],
                        "label": [0, 1, 1]})
    encoded = data.encode_like(new)
    assert list(encoded.tasks) == ["n1", "n2"] and encoded.n_answers == 1
    expected = np.full((2, data.n_workers), -1)
    expected[0, 1] = 0
    np.testing.assert_array_equal(encoded.dense_labels(), expected)
    assert encoded.answers_per_task().tolist() == [1, 0]


# ------------------------------------------------------------------ the consumers against the dense formulas
def test_majority_vote_and_votes(case):
    labels, probs, k, data = case
    np.testing.assert_allclose(data.class_votes(), dense_votes(labels, k, probs).sum(axis=1), atol=1e-5)
    np.testing.assert_array_equal(data.majority_vote(), dense_majority(labels, k, probs))


def test_dawid_skene_equals_the_dense_em(case):
    labels, probs, k, data = case
    confusion, prior, posterior, n_iter, log_lik = dense_dawid_skene(labels, k, probs)
    fit = fit_dawid_skene(data)
    assert fit.n_iter == n_iter
    np.testing.assert_allclose(fit.posterior, posterior, atol=1e-9, rtol=0)
    np.testing.assert_allclose(fit.confusion, confusion, atol=1e-9, rtol=0)
    np.testing.assert_allclose(fit.prior, prior, atol=1e-12)
    assert fit.log_likelihood == pytest.approx(log_lik, rel=1e-12)
    # the product the E-step is built on: answer_matrix @ M equals the dense vote tensor's
    m = np.random.default_rng(1).random((data.n_workers * k, k))
    np.testing.assert_allclose(answer_matrix(data) @ m, dense_votes(labels, k, probs).reshape(len(labels), -1) @ m,
                               atol=1e-9)


def test_excess_agreement_equals_the_dense_formula(case):
    labels, probs, k, data = case
    fit = fit_dawid_skene(data)
    for min_common in (1, 20):
        expected = dense_excess(labels, k, fit.confusion, fit.posterior, min_common)
        assert excess_pairwise_agreement(data, fit, min_common) == pytest.approx(expected, abs=1e-12)


def test_agreement_statistics_equal_the_dense_formulas(case):
    labels, probs, k, data = case
    observed = (labels >= 0).astype(float)
    overlap = observed.T @ observed
    same = sum(((labels == c).astype(float).T @ (labels == c).astype(float)) for c in range(k))
    got_agreement, got_overlap = agreement.pairwise_agreement(data)
    np.testing.assert_array_equal(got_overlap.to_numpy(), overlap)
    with np.errstate(invalid="ignore", divide="ignore"):
        np.testing.assert_allclose(got_agreement.to_numpy(), np.where(overlap > 0, same / overlap, np.nan))
    # Krippendorff's alpha from the per-task counts of the dense table (the old code path for arrays)
    assert agreement.krippendorff_alpha(data) == pytest.approx(agreement.krippendorff_alpha(labels, k), abs=1e-12)
    mv = dense_majority(labels, k, probs)
    # coverage compares hard labels with the (soft) majority vote, a tie shared among the tied classes
    votes = dense_votes(labels, k, probs).sum(axis=1)
    tied = (votes >= votes.max(axis=1, keepdims=True) - 1e-9) & (votes.sum(axis=1, keepdims=True) > 0)
    ways = np.maximum(tied.sum(axis=1), 1)
    rows, cols = np.nonzero(labels >= 0)
    agree = np.bincount(cols, weights=tied[rows, labels[rows, cols]] / ways[rows], minlength=labels.shape[1])
    coverage = agreement.worker_coverage(data)
    np.testing.assert_array_equal(coverage["answers"], observed.sum(axis=0))
    answered = observed.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        np.testing.assert_allclose(coverage["agreement_with_majority"], np.where(answered > 0, agree / answered, np.nan))
    np.testing.assert_array_equal(agreement.labels_per_task(data).to_numpy(), observed.sum(axis=1))
    counts, psi = empirical_confusion(data, mv)
    rows, cols = np.nonzero((labels >= 0) & (mv >= 0)[:, None])
    expected = np.zeros((data.n_workers, k, k), dtype=np.int64)
    np.add.at(expected, (cols, labels[rows, cols], mv[rows]), 1)
    np.testing.assert_array_equal(counts, expected)


def test_pairwise_agreement_keeps_the_most_active_workers():
    labels, _ = random_dense(7, 300, 10, 3, 0.4)
    labels[:, 3] = -1
    labels[:5, 3] = 0  # worker 3 answers 5 tasks only
    data = AnnotationSet.from_dense(labels, classes=range(3))
    full, full_overlap = agreement.pairwise_agreement(data)
    cut, cut_overlap = agreement.pairwise_agreement(data, max_workers=9)
    assert "3" not in cut.index and len(cut) == 9
    pd.testing.assert_frame_equal(cut, full.loc[cut.index, cut.columns])
    pd.testing.assert_frame_equal(cut_overlap, full_overlap.loc[cut.index, cut.columns])


@pytest.mark.parametrize("weights", [False, True])
def test_pair_table_dense_and_sparse_paths_agree(weights):
    labels, _ = random_dense(5, 700, 30, 4, 0.35)
    data = AnnotationSet.from_dense(labels, classes=range(4))
    w = np.random.default_rng(0).random(data.n_tasks) if weights else None
    for matrix in (indicator_matrix(data), answer_matrix(data)):
        sparse = pair_table(matrix, row_weights=w, dense=False)
        dense = pair_table(matrix, row_weights=w, dense=True, chunk_rows=61)
        np.testing.assert_allclose(dense, sparse, atol=1e-9)
        assert np.abs(sparse).sum() > 0


# ------------------------------------------------------------------ size checks before allocating
def test_dense_table_is_refused_before_allocating():
    """40,000 tasks each answered by a new worker: the dense table would be 40,000 x 40,000 (12 GiB)."""
    n = 40_000
    ids = np.arange(n)
    data = AnnotationSet.from_codes(pd.Index(ids, name="task"), pd.Index(ids, name="worker"),
                                    pd.Index([0, 1, 2], name="label"), ids, ids, ids % 3)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"DEEM training needs a dense table of 40,000 tasks x 40,000 workers "
                                            r"\(11\.9 GiB\), more than the 1\.0 GiB allowed"):
            data.dense_labels(purpose="DEEM training")
        with pytest.raises(DataError, match="restrict it to fewer workers"):
            agreement.pairwise_agreement(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50e6, peak
    # what does not need the table works
    assert data.summary()["answers_per_task_max"] == 1
    overlap = agreement.pairwise_agreement(data, max_workers=50)[1].to_numpy()
    np.testing.assert_array_equal(overlap, np.eye(50))  # each worker shares its one task with nobody
    fit = fit_dawid_skene(data)
    assert fit.posterior.shape == (n, 3)
    assert excess_pairwise_agreement(data, fit) == 0.0  # no pair of workers shares a task
    assert data.dense_labels(np.arange(10)).shape == (10, n)  # a small block of it is fine


def test_from_codes_refuses_repeated_pairs_and_bad_layouts():
    tasks, workers, classes = pd.Index([0, 1]), pd.Index(["a", "b"]), pd.Index([0, 1])
    with pytest.raises(ValueError, match="more than one answer"):
        AnnotationSet.from_codes(tasks, workers, classes, [0, 0], [1, 1], [0, 1])
    with pytest.raises(ValueError, match="sorted by task"):
        AnnotationSet(tasks, workers, classes, task_codes=[1, 0], worker_codes=[0, 0], label_codes=[0, 0],
                      task_offsets=[0, 1, 2])
    with pytest.raises(ValueError, match="strictly increasing"):
        AnnotationSet(tasks, workers, classes, task_codes=[0, 0], worker_codes=[1, 0], label_codes=[0, 0],
                      task_offsets=[0, 2, 2])
    data = AnnotationSet.from_codes(tasks, workers, classes, [1, 0, 0], [0, 1, 0], [1, 0, 1])
    assert data.task_codes.tolist() == [0, 0, 1] and data.worker_codes.tolist() == [0, 1, 0]
    assert data.label_codes.tolist() == [1, 0, 1] and data.task_offsets.tolist() == [0, 2, 3]
    with pytest.raises(AttributeError, match="dense_labels"):
        data.labels  # noqa: B018 - the old dense attribute says where to go


# ------------------------------------------------------------------ crowd-kit's MV and DS on the answers
@pytest.mark.parametrize("name", ["condind", "digits_experts", "random"])
def test_majority_vote_and_dawid_skene_on_the_answers_equal_crowdkit(name):
    """Fitted on an AnnotationSet, the mv and ds aggregators compute crowd-kit's algorithms on the answers;
    fitted on the same answers as a long frame they call crowd-kit. Labels, probabilities, tie counts,
    confusion matrices and priors agree."""
    from conftest import ROOT
    from deem_core.methods.baselines import DawidSkeneAggregator, MajorityVoteAggregator

    if name == "random":  # sparse, many ties, a class nobody gives, string labels
        labels, _ = random_dense(11, 400, 15, 4, 0.2)
        data = AnnotationSet.from_dense(labels, classes=["a", "b", "c", "d"], workers=[f"w{i}" for i in range(15)])
        data = AnnotationSet.from_long(data.to_long().query("label != 'c'"))
    else:
        data = AnnotationSet.from_long(pd.read_csv(ROOT / "sample_data" / f"{name}.csv"))
    long = data.to_long()
    for options in ({}, {"tie_break": "random", "seed": 3}):
        sparse, crowdkit = MajorityVoteAggregator(**options).fit(data), MajorityVoteAggregator(**options).fit(long)
        assert sparse.model_ is None and crowdkit.model_ is not None  # the two paths were taken
        pd.testing.assert_series_equal(sparse.labels_, crowdkit.labels_)
        pd.testing.assert_frame_equal(sparse.probas_, crowdkit.probas_, atol=1e-12, rtol=0)
        assert sparse.n_ties_ == crowdkit.n_ties_ > 0
    sparse, crowdkit = DawidSkeneAggregator().fit(data), DawidSkeneAggregator().fit(long)
    assert sparse.model_ is None and crowdkit.model_ is not None
    assert sparse.n_iter_ == len(crowdkit.model_.loss_history_)
    pd.testing.assert_series_equal(sparse.labels_, crowdkit.labels_)
    pd.testing.assert_frame_equal(sparse.probas_, crowdkit.probas_, atol=1e-12, rtol=0)
    pd.testing.assert_frame_equal(sparse.errors_, crowdkit.errors_, atol=1e-12, rtol=0)
    pd.testing.assert_series_equal(sparse.priors_, crowdkit.priors_, atol=1e-12, rtol=0)
    pd.testing.assert_frame_equal(sparse.results_frame(), crowdkit.results_frame(), atol=1e-12, rtol=0)


def test_excess_agreement_reads_a_sample_of_tasks_past_its_pair_bound(monkeypatch):
    """2,000 tasks of 250 answers by 50,000 workers (1.25e8 pairs of answers on a task) took a timing probe and the
    job to 3.9 GB in this statistic, shown as evidence only, with nothing clicked but a depth of 0 (attack round 66).
    Workers with fewer answers than ``min_common`` are left out (no pair of theirs counts); past the bound on the
    pairs of answers, a sample of tasks within it is read, and the value is the dense formula's on those tasks."""
    import deem_core.data.pairs as pairs  # noqa: PLC0415
    import deem_core.methods.dawid_skene as dawid_skene  # noqa: PLC0415

    rng = np.random.default_rng(66)
    n, d, per_task, k = 400, 600, 40, 3
    labels = np.full((n, d), -1)
    for t in range(n):  # 40 answers a task by 600 workers: about 27 each, past min_common
        labels[t, rng.choice(d, per_task, replace=False)] = rng.integers(k, size=per_task)
    data = AnnotationSet.from_dense(labels, classes=range(k))
    fit = fit_dawid_skene(data)
    bound = 50_000  # pairs of answers (the sum of per-task squares); these data hold n * 40^2 = 640,000
    monkeypatch.setattr(dawid_skene, "MAX_EXCESS_ANSWER_PAIRS", bound, raising=False)
    held = []
    real = pairs.pair_table

    def recorded(*args, **kwargs):
        table = real(*args, **kwargs)
        held.append(table.nnz if hasattr(table, "nnz") else table.size)
        return table

    monkeypatch.setattr(dawid_skene, "pair_table", recorded)
    value = excess_pairwise_agreement(data, fit, 5)
    assert held and max(held) <= bound, max(held)  # (every pair of workers sharing a task: 297,988)
    eligible = np.bincount(data.worker_codes, minlength=d) >= 5
    tasks = dawid_skene.excess_sample(data, eligible, k)
    assert tasks is not None and 0 < tasks.sum() < n and (tasks.sum() * per_task ** 2) <= bound
    assert value == pytest.approx(dense_excess(labels[tasks], k, fit.confusion, fit.posterior[tasks], 5), abs=1e-12)
    # and the same sample each time (the seed), the whole set within the bound
    assert excess_pairwise_agreement(data, fit, 5) == value
    monkeypatch.setattr(dawid_skene, "MAX_EXCESS_ANSWER_PAIRS", 10 ** 9)
    assert excess_pairwise_agreement(data, fit, 5) == pytest.approx(
        dense_excess(labels, k, fit.confusion, fit.posterior, 5), abs=1e-12)


def test_excess_agreement_reads_at_most_its_workers_in_tables_of_those_alone(monkeypatch):
    """150 tasks answered by 2,000 of 11,000 workers each took the dense path, whose tables held every worker (11,000
    x 11,000, several at once): a 4 MB upload took the Train page's probe to 4.3 GB (attack round 67). The tables hold
    the workers read alone, at most MAX_EXCESS_WORKERS of them (those with the most answers), and the value is the
    dense formula's on their answers."""
    import deem_core.data.pairs as pairs  # noqa: PLC0415
    import deem_core.methods.dawid_skene as dawid_skene  # noqa: PLC0415

    rng = np.random.default_rng(67)
    n, d, per_task, k = 150, 900, 300, 3
    labels = np.full((n, d), -1)
    for t in range(n):
        labels[t, rng.choice(d, per_task, replace=False)] = rng.integers(k, size=per_task)
    data = AnnotationSet.from_dense(labels, classes=range(k))
    fit = fit_dawid_skene(data)
    monkeypatch.setattr(dawid_skene, "MAX_EXCESS_WORKERS", 100, raising=False)
    shapes = []
    real = pairs.pair_table

    def recorded(*args, **kwargs):
        table = real(*args, **kwargs)
        shapes.append(table.shape)
        return table

    monkeypatch.setattr(dawid_skene, "pair_table", recorded)
    value = excess_pairwise_agreement(data, fit, 5)
    assert shapes and max(max(shape) for shape in shapes) <= 100, shapes  # (before: 900 x 900)
    read = np.argsort(-np.bincount(data.worker_codes, minlength=d), kind="stable")[:100]
    order = np.asarray(data.workers)  # the set's worker order: columns of ``labels`` by name
    columns = np.asarray([int(w) for w in order[np.sort(read)]])
    kept = labels[:, columns]
    assert value == pytest.approx(dense_excess(kept, k, fit.confusion[np.sort(read)], fit.posterior, 5), abs=1e-12)
