"""Dependence clusters: groups of workers that agree with each other beyond what the true class explains.

Dawid-Skene, majority vote and DEEM's held-out likelihood all count every worker as an independent source given
the true class. A group that copies one opinion (one model copied, workers who talk to each other) then counts as
many sources. The answers alone cannot say which latent variable is "the truth": a copied group is a latent tree
like the true class (the group's opinion is a hidden node whose children are its members), and a model that makes
the group's opinion the truth fits the answers as well. The convention taken here is the issue's: **a group of
workers whose answers are more alike than the other workers' evidence about the class explains is one source**,
and the truth is what the sources, each counted once, agree on (:class:`ClusterWeightedDawidSkene`).

How clusters are found (:func:`find_dependence_clusters`):

1. Similarity: Cohen's kappa of every pair of workers on the tasks they share; average-linkage clustering on
   ``1 - kappa`` gives a tree of candidate groups, most alike first. No kappa threshold decides anything.
2. Every merge (A, B) of that tree with positive mean kappa is tested. H0: the answers of A and of B are
   independent given the true class. With ``r1``, ``r2`` the vote shares of two halves of the other workers (the
   clusters found so far kept whole and each counted once) and ``v_A``, ``v_B`` those of A and B, H0 implies the
   method-of-moments identity ``E[v_A v_B^T] = E[v_A r2^T] E[r1 r2^T]^-1 E[r1 v_B^T]`` (the two halves are two
   independent views of the class; nothing is fitted). The statistic is the trace of the difference, i.e. how
   much more often A and B agree than H0 predicts, on the tasks where all four answered; its spread comes from a
   bootstrap over those tasks. The merge is a dependence when the excess is above the one-sided Bonferroni
   quantile of ``alpha`` over the tests the tree allows (one per merge, and a second per merge of four or more
   workers). Where the tree's split is not tested or not accepted, a merge of four or more is tested once more on
   another split of its members, the one on which both sides answered the most tasks, each group found kept
   whole on one side (:func:`_other_split`): in sparse answers the tree's one worker against the rest of a group
   leaves too few tasks to test. The two halves must agree beyond chance at that same level (the
   bootstrap z of their excess agreement), or the merge is not tested: halves that carry no information about the
   class (a random guesser, a constant worker) make H0's prediction the agreement of chance, and a group that is
   simply the only informative one would be taken for a copied group (seen in a walkthrough: five independent good
   workers beside one random and one constant worker were one "cluster", +0.104 beyond the prediction).
3. Before the tests, workers who give the same label on every task they share, on more tasks than chance allows
   (:func:`identical_min_tasks`), and whose answers agree with the other workers' less often than the best tenth of
   those workers' do, are one cluster (:func:`_identical_groups`): independent workers are that alike only when each
   is right on every task, and such a worker agrees with the others at least as often as any.
   Clusters are the largest accepted merges (and those groups); the tree is tested again with them kept whole until nothing changes
   (at most ``max_passes``).
4. A merge of workers outside every cluster found (agreeing beyond chance) whose other workers form fewer than two
   sources cannot be tested: two views of the class are needed, and with one the group's shared opinion and the
   class are not identifiable. When clusters were found, such merges are kept as ``untestable``. The answers then
   fit two readings equally well: these workers are independent sources (the convention above, what the
   cluster-weighted methods follow), or they are one more group whose shared opinion differs from the truth.
   App. H's tree [1, 2, 5] is the second reading, the ``copies`` family the first, and the answers of the two
   have the same form (``benchmarks/tree_identifiability.py``); only the user can say which holds.

Measured (benchmarks/results/selection.txt): the planted groups of the ``groups`` and ``copies`` families, the three
intermediate nodes of Tree3K and the model families of the digits ensembles are found, nothing on independent,
sparse, CondInd, AmpData or dog. A test that estimated the class from the other workers with Dawid-Skene and each
member's confusion against it was tried first and rejected: with uninformative or sparse other workers the
members' confusions are not identified and it declared CondInd's four informative classifiers and most active
workers of the sparse sets dependent. Cost: one kappa table and ``n_boot`` bootstrap moments per tested merge, on
at most ``max_tasks`` tasks and ``max_workers`` workers (0.1-3 s on the validation sets).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import linkage
from scipy.stats import norm

from deem_core.analysis.agreement import (BESIDE_MIN_ANSWERS, RIGHT_ON_EVERY_TASK_QUANTILE, agreement_beside,
                                          identical_positions,
                                          most_active_workers, pairwise_agreement, single_label_workers)
from deem_core.analysis.selection import check_stop
from deem_core.data.annotations import AnnotationSet, as_annotation_set, task_class_counts
from deem_core.data.export import label_table
from deem_core.data.pairs import indicator_matrix, pair_table
from deem_core.data.text import natural_positions
from deem_core.methods.base import Aggregator
from deem_core.methods.dawid_skene import fit_dawid_skene

__all__ = ["ClusterTest", "ClusterWeightedDawidSkene", "ClusterWeightedVote", "DependenceClusters",
           "DEFAULT_ALPHA", "cluster_weights", "clusters_for_diagnostics", "find_dependence_clusters", "pairwise_kappa"]

#: family-wise error rate of the merge tests (Bonferroni over the tested merges)
DEFAULT_ALPHA = 0.01
#: pairs of workers sharing fewer tasks than this have kappa 0; a test needs this many tasks where all answered
MIN_COMMON = 30
#: tasks the detection looks at (a random sample on larger sets)
MAX_TASKS = 5000
#: workers the detection looks at (the most active; the others stay alone)
MAX_WORKERS = 200
#: work the tests of one search may do, in resample x task x class^2 units (a test costs about
#: ``n_boot * (3 * m * K^2 + 10 * K^3)`` for m tasks and K classes: its three bootstrap moment tables and their
#: inverses). A merge whose test would pass the work left is not tested (``DependenceClusters.cut``). Without a bound,
#: an 8.5 KB upload of 8 workers and 314 classes held a training's cancel and its time limit, the timing probes of
#: every visitor and 3 GB of the server for over 15 minutes; 200 workers x 5,000 tasks x 20 classes held a cancel
#: 535 s (attack round 51). The validation sets' searches do at most 1.1e10 units (0.1-6 s; MnistE-shaped 60,000 x 15
#: x 10 on its 5,000-task sample), well inside the bound
MAX_SEARCH_WORK = 4e10
#: bytes the bootstrap moment tables of one chunk of resamples may take (three (chunk, K, K) tables and the inverse's
#: work arrays: one whole (500, K, K) table is 4 GB at 1,000 classes); below ~50 classes a test is one chunk
BOOT_CHUNK_BYTES = 64 << 20
#: work units one chunk of resamples may do (the stop is read between chunks): a few seconds at most
BOOT_CHUNK_WORK = 2e9
#: bootstrap resamples of the tested tasks per merge: the spread is read from their middle 68%, and with 200 those
#: percentiles moved with the resampling's seed enough to decide a merge (walkthrough 51: five independent classifiers
#: of a 1,500-item ensemble joined at z 3.06-3.19 on 3 of 4 seeds, 2.1-2.99 on others, against 3.02; with 500, on 8 of
#: 8 seeds none, the copies still found everywhere); the resamples cost O(N_BOOT x tasks x K^2)
N_BOOT = 500


@dataclass
class ClusterTest:
    """One tested merge: its members (worker codes; ``left`` is one side), the observed agreement rate of the two
    sides, the rate H0 predicts, the bootstrap sd of the difference, z and whether it was accepted."""

    members: tuple[int, ...]
    left: tuple[int, ...]
    observed: float
    predicted: float
    sd: float
    z: float
    tasks: int
    accepted: bool

    @property
    def excess(self) -> float:
        return self.observed - self.predicted


@dataclass
class DependenceClusters:
    """labels: (d,) cluster id of every worker (0..C-1; a worker alone is its own cluster)."""

    labels: np.ndarray
    tests: list[ClusterTest] = field(default_factory=list)
    #: worker codes of the merges that could not be tested for lack of two other sources (module docstring, 4.)
    untestable: list[tuple[int, ...]] = field(default_factory=list)
    z_threshold: float = float("inf")
    tasks_used: int = 0
    tasks_total: int = 0  # the set's tasks, of which ``tasks_used`` were looked at (a random sample past MAX_TASKS)
    seconds: float = 0.0
    #: workers of MIN_COMMON answers or more (the others stay alone, untested), and of their pairs: how many, how many
    #: share MIN_COMMON tasks or more (the pairs a kappa, and so a test, can judge), and the most tasks two share. In
    #: sparse answers no pair may be judged, and "none found" hid that nothing could be (walkthrough 75: a copying
    #: group of 6 of 40 workers, 5 answers a task, pairs sharing 3-23 tasks)
    active_workers: int = 0
    #: workers of MIN_COMMON answers or more before the MAX_WORKERS with the most were kept (``active_workers``)
    qualified_workers: int = 0
    pairs: int = 0
    pairs_judged: int = 0
    most_shared: int = 0
    #: merges left untested because their tests would pass :data:`MAX_SEARCH_WORK`, and whether the search stopped
    #: early on request (a cancelled job, a probe's time limit): the clusters are then those found by then
    cut: int = 0
    stopped: bool = False
    #: the classes of these data make the smallest test pass :data:`MAX_SEARCH_WORK` (about 200 classes and more):
    #: nothing is looked for, not even the pairs' agreement, whose table alone took minutes at 4,000-8,000 classes
    #: (attack round 52)
    beyond_bound: bool = False
    #: groups of workers identical on every shared task that agree with the other workers less than the typical
    #: worker does, counted as one source (:func:`_identical_groups`): their worker codes, fewest shared tasks of their
    #: linking pairs, and the two agreements
    identical: list[dict[str, Any]] = field(default_factory=list)
    #: the shared tasks identical answers needed here (:func:`identical_min_tasks`; 0: not looked for)
    identical_min_tasks: int = 0

    @property
    def n_clusters(self) -> int:
        return int(self.labels.max()) + 1 if len(self.labels) else 0

    def groups(self, workers: Sequence[Any] | None = None) -> list[np.ndarray]:
        """Every cluster with at least two members, largest first: worker codes, or with ``workers`` (the set's
        workers, e.g. a fitted model's ``workers_``) their names (a reader of ``dependence_clusters_.groups()`` got
        codes with nothing to map them by; walkthrough 89)."""
        # in one sort, not one scan of every worker per cluster: a million workers of one answer each, every one its
        # own cluster, held a training (and a timing probe) in this loop past 16 minutes, beyond the job's time limit
        # and its cancel (attack round 50; 200,000 workers took 17 s)
        labels = np.asarray(self.labels, dtype=np.int64)
        counts = np.bincount(labels) if len(labels) else np.zeros(0, dtype=np.int64)
        shared = np.flatnonzero(counts >= 2)
        order = np.argsort(labels, kind="stable")  # (each cluster's members in code order, as before)
        firsts = np.searchsorted(labels[order], shared)
        found = sorted([order[first:first + counts[c]] for c, first in zip(shared, firsts)], key=len, reverse=True)
        if workers is None:
            return found
        if len(workers) != len(self.labels):
            raise ValueError(f"{len(workers):,} worker names for clusters of {len(self.labels):,} workers")
        names = np.empty(len(workers), dtype=object)
        names[:] = list(workers)  # (one name a cell: np.asarray made a table of names that are tuples)
        return [names[g] for g in found]

    def weights(self) -> np.ndarray:
        """(d,) 1 / size of the worker's cluster: every cluster counts once."""
        return cluster_weights(self.labels)

    def summary(self, workers: pd.Index | None = None) -> dict[str, Any]:
        """Plain values for a selection summary: the clusters (worker names), the z threshold, tests made."""
        def name(i: int) -> Any:
            value = workers[i] if workers is not None else i
            return value.item() if isinstance(value, np.generic) else value

        accepted = {t.members: t for t in self.tests if t.accepted}
        clusters = []
        for group in self.groups():
            test = accepted.get(tuple(sorted(int(i) for i in group)))
            members = [name(int(i)) for i in group]
            # in their natural order ("resnet50" before "resnet101"; text order read oddly; walkthrough 105)
            entry = {"workers": [members[i] for i in natural_positions(pd.Index(members))],
                     "excess_agreement": None if test is None else round(float(test.excess), 4),
                     "z": None if test is None else round(float(test.z), 1)}
            copies = [g for g in self.identical if np.isin(g["members"], group).all()]
            if copies:  # (the largest identical group inside it)
                largest = max(copies, key=lambda g: len(g["members"]))
                entry["identical"] = {**largest, "members": len(largest["members"])}
            clusters.append(entry)
        threshold = round(float(self.z_threshold), 2) if np.isfinite(self.z_threshold) else None  # None: no test
        return {"clusters": clusters, "z_threshold": threshold, "tests": len(self.tests),
                "untestable": [[name(int(i)) for i in group] for group in self.untestable],
                "tasks_used": int(self.tasks_used), "tasks_total": int(self.tasks_total or self.tasks_used),
                "seconds": round(float(self.seconds), 2),
                "workers": len(self.labels), "active_workers": int(self.active_workers),
                "qualified_workers": int(self.qualified_workers or self.active_workers), "pairs": int(self.pairs),
                "pairs_judged": int(self.pairs_judged), "most_shared": int(self.most_shared), "min_common": MIN_COMMON,
                "cut": int(self.cut), "stopped": bool(self.stopped), "beyond_bound": bool(self.beyond_bound)}


def cluster_weights(labels: np.ndarray) -> np.ndarray:
    """(d,) 1 / size of every worker's cluster."""
    labels = np.asarray(labels, dtype=np.int64)
    return 1.0 / np.bincount(labels)[labels]


def _hard_labels(data: AnnotationSet) -> np.ndarray:
    if data.soft_labels is None:
        return data.label_codes
    return data.soft_labels.argmax(axis=1).astype(np.int64)


def pairwise_kappa(data: AnnotationSet, workers: np.ndarray | None = None,
                   min_common: int = MIN_COMMON) -> np.ndarray:
    """(m, m) Cohen's kappa of every pair of ``workers`` (default all) on the tasks both answered, chance agreement
    from the pair's own label shares on those tasks; 0 below ``min_common`` shared tasks, 1 on the diagonal. Hard
    labels (a soft label counts by its argmax); sums over shared tasks as sparse products (no dense table)."""
    return _kappa_and_common(data, workers, min_common)[0]


def _kappa_and_common(data: AnnotationSet, workers: np.ndarray | None = None,
                      min_common: int = MIN_COMMON) -> tuple[np.ndarray, np.ndarray]:
    """:func:`pairwise_kappa` and the (m, m) tasks each pair shares."""
    workers = np.arange(data.n_workers) if workers is None else np.asarray(workers)
    labels = _hard_labels(data)
    answered = indicator_matrix(data)[:, workers]
    common = pair_table(answered)
    agree = np.zeros_like(common)
    chance = np.zeros_like(common)
    for c in range(data.n_classes):
        of_class = indicator_matrix(data, answers=labels == c)[:, workers]
        agree += pair_table(of_class)
        shares = pair_table(of_class, answered)  # [i, j] = answers of class c by i on the tasks j answered
        chance += shares * shares.T
    with np.errstate(invalid="ignore", divide="ignore"):
        p_chance = chance / common ** 2
        kappa = (agree / common - p_chance) / (1.0 - p_chance)
    kappa[~np.isfinite(kappa) | (common < min_common)] = 0.0
    np.fill_diagonal(kappa, 1.0)
    return kappa, common


class _Shares:
    """Per-task vote shares of groups of workers, from the answers grouped by worker."""

    def __init__(self, data: AnnotationSet):
        self.n, self.k, self.d = data.n_tasks, data.n_classes, data.n_workers
        self.task, self.worker, self.label = data.task_codes, data.worker_codes, _hard_labels(data)
        self.order = np.argsort(self.worker, kind="stable")
        self.offsets = np.concatenate([[0], np.cumsum(np.bincount(self.worker, minlength=self.d))])

    def of(self, workers: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """(n, K) weighted vote shares of ``workers`` (zeros where none answered)."""
        pos = np.concatenate([self.order[self.offsets[w]:self.offsets[w + 1]] for w in workers])
        votes = np.bincount(self.task[pos] * self.k + self.label[pos], weights=weights[self.worker[pos]],
                            minlength=self.n * self.k).reshape(self.n, self.k)
        total = votes.sum(axis=1, keepdims=True)
        return np.divide(votes, total, out=np.zeros_like(votes), where=total > 0)


def _halves(labels: np.ndarray, rest: np.ndarray, activity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The other workers' sources (clusters kept whole) dealt into two halves, most active first, alternating."""
    sources: dict[int, list[int]] = {}
    for w in rest:
        sources.setdefault(int(labels[w]), []).append(int(w))
    ordered = sorted(sources.values(), key=lambda ws: (-activity[ws].max(), ws[0]))
    halves: tuple[list[int], list[int]] = ([], [])
    for i, ws in enumerate(ordered):
        halves[i % 2].extend(ws)
    return np.array(sorted(halves[0]), dtype=np.int64), np.array(sorted(halves[1]), dtype=np.int64)


def _other_sources(members: np.ndarray, labels: np.ndarray, activity: np.ndarray) -> tuple[np.ndarray, int]:
    """The active workers outside ``members`` and how many sources (clusters kept whole) they form."""
    rest = np.setdiff1d(np.flatnonzero(activity > 0), members)
    return rest, len(np.unique(labels[rest]))


def _weighted_outer(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(B, K, K) ``sum_t w[b, t] x[t, k] y[t, l]`` as K matrix products: numpy's three-operand einsum loops in C
    without BLAS (1.9 of the 2.4 s the clusters of a 3,000-task, 8-class set took); memory stays m x K."""
    return np.stack([w @ (x[:, k, None] * y) for k in range(x.shape[1])], axis=1)


FEASIBLE_ONLY = True

#: what :func:`_moment_test` returns when the other workers form fewer than two sources
NO_VIEWS = "no views"
#: what :func:`_moment_test` returns when its test would pass the search's work left
OVER_BUDGET = "over budget"


class _Stopped(Exception):
    """The search was asked to stop (its ``stop`` event was set)."""


class _Work:
    """The work a search may still do (:data:`MAX_SEARCH_WORK`) and its stop event."""

    def __init__(self, budget: float, stop: Any = None):
        self.left, self.stop = float(budget), stop

    def check(self) -> None:
        check_stop(self.stop, _Stopped)

    def take(self, cost: float) -> bool:
        """Whether ``cost`` fits in the work left (taken from it if so)."""
        if cost > self.left:
            return False
        self.left -= cost
        return True


def merge_test_work(n_boot: int, tasks: int, k: int) -> float:
    """The work units of one merge's test on ``tasks`` tasks of ``k`` classes (:data:`MAX_SEARCH_WORK`)."""
    return float(n_boot) * (3.0 * tasks * k * k + 10.0 * k ** 3)


def views_check_work(n_boot: int, tasks: int, k: int) -> float:
    """The work units of a merge's check that the other workers' halves agree beyond chance (before its test): the
    resamples' vote shares of both halves, ``n_boot`` x ``tasks`` x ``k`` each, and their agreement. Uncounted, a
    search whose every test passed the bound spent 57-72 s on these checks at 1,000 classes (read 51)."""
    return float(n_boot) * tasks * (2.0 * k + 1.0)


def _moment_test(shares: _Shares, left: np.ndarray, right: np.ndarray, labels: np.ndarray, activity: np.ndarray,
                 n_boot: int, rng: np.random.Generator, z_threshold: float = 0.0, work: _Work | None = None,
                 ) -> tuple[float, float, float, int] | str | None:
    """(observed agreement rate of the two sides, rate predicted under H0, bootstrap sd of the difference, tasks)
    on the tasks where both sides and both halves of the other workers answered (module docstring). ``NO_VIEWS``
    when the other workers form fewer than two sources. None (not tested) when fewer than MIN_COMMON such tasks
    exist, or when the two halves do not agree beyond chance on them (z of their excess agreement at most
    ``z_threshold``): halves that carry no evidence about the class (a random guesser, a constant worker) make
    H0's prediction the agreement of chance, and any two informative groups would then look dependent.
    ``OVER_BUDGET`` when the test would pass the ``work`` left; its stop event is checked between chunks of
    resamples (``_Stopped``)."""
    rest, sources = _other_sources(np.concatenate([left, right]), labels, activity)
    if sources < 2:
        return NO_VIEWS
    half1, half2 = _halves(labels, rest, activity)
    weights = cluster_weights(labels)
    va, vb = shares.of(left, weights), shares.of(right, weights)
    r1, r2 = shares.of(half1, weights), shares.of(half2, weights)
    keep = (va.sum(1) > 0) & (vb.sum(1) > 0) & (r1.sum(1) > 0) & (r2.sum(1) > 0)
    m = int(keep.sum())
    if m < MIN_COMMON:
        return None
    va, vb, r1, r2 = va[keep], vb[keep], r1[keep], r2[keep]
    if work is not None and not work.take(views_check_work(n_boot, m, va.shape[1])):
        return OVER_BUDGET

    def statistic(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # w: (B, m) task weights, rows summing to 1 (the sample itself, then bootstrap resamples), in chunks of rows
        # whose moment tables stay within BOOT_CHUNK_BYTES (one chunk below ~50 classes: the same numbers as whole)
        k = va.shape[1]
        # by memory and by work: below ~45 classes a whole test was one chunk, and a stop waited for it (13 s at 45
        # classes of 5,000 tasks; read 50); one chunk on every validation set (mnist_like's test 7.5e8 units)
        rows = max(1, min(int(BOOT_CHUNK_BYTES // (8 * 8 * k * k)),
                          int(BOOT_CHUNK_WORK // merge_test_work(1, len(va), k))))
        observed, predicted = w @ (va * vb).sum(1), np.empty(len(w))
        for begin in range(0, len(w), rows):
            if work is not None:
                work.check()
            part = w[begin:begin + rows]
            a2, c12, c1b = _weighted_outer(part, va, r2), _weighted_outer(part, r1, r2), _weighted_outer(part, r1, vb)
            predicted[begin:begin + rows] = np.trace(a2 @ np.linalg.pinv(c12, rcond=1e-6) @ c1b, axis1=1, axis2=2)
        return observed, predicted

    def views_excess(w: np.ndarray) -> np.ndarray:  # how much more often the halves agree than chance
        return w @ (r1 * r2).sum(1) - ((w @ r1) * (w @ r2)).sum(1)

    sample = np.full((1, m), 1.0 / m)
    boot = rng.multinomial(m, np.full(m, 1.0 / m), size=n_boot) / m
    views_sd = float(np.std(views_excess(boot), ddof=1))
    views = float(views_excess(sample)[0])
    # (a constant worker's half agrees exactly as chance does in every resample: excess and spread are both 0 up to
    # rounding, which must not count as agreement)
    if views <= z_threshold * views_sd or views <= 1e-9:
        return None
    if work is not None and not work.take(merge_test_work(n_boot + 1, m, va.shape[1])):
        return OVER_BUDGET
    observed, predicted = statistic(sample)
    if FEASIBLE_ONLY and not 0.0 <= predicted[0] <= 1.0:
        # H0's prediction is an agreement rate: outside [0, 1] the halves' moment matrix was inverted on too little
        # (walkthrough 122's batch 3: -1.437 on 56 tasks of 4 classes made seven independent workers a group, z 6.6)
        return None
    boot_observed, boot_predicted = statistic(boot)
    # the spread of the middle 68% of the resamples (a normal's sd): the prediction inverts the halves' moment
    # matrix, which a few resamples of sparse halves make nearly singular, and their wild predictions alone set the
    # plain sd (walkthrough 49: a trio on 1,090 of 1,200 tasks, 85% one opinion, +0.217 beyond the prediction with an
    # sd of 1.77, z 0.12; the middle 68% give z 4.5)
    low, high = np.percentile(boot_observed - boot_predicted, [15.865, 84.135])
    sd = float(high - low) / 2.0
    return float(observed[0]), float(predicted[0]), sd, m


def find_dependence_clusters(data: Any, alpha: float = DEFAULT_ALPHA, n_boot: int = N_BOOT,
                             max_tasks: int = MAX_TASKS, max_workers: int = MAX_WORKERS,
                             max_passes: int = 3, seed: int = 0, max_work: float = MAX_SEARCH_WORK,
                             stop: Any = None) -> DependenceClusters:
    """Dependence clusters of the workers (module docstring); ``data``: an AnnotationSet or a long frame.
    ``max_work``: the tests' work bound (:data:`MAX_SEARCH_WORK`; merges past it are counted in ``cut``, untested).
    ``stop``: an event (``is_set()``) that ends the search early, with the clusters found by then (``stopped``)."""
    started = time.perf_counter()
    work = _Work(max_work, stop)
    data = as_annotation_set(data)
    rng = np.random.default_rng(seed)
    d, n_total = data.n_workers, data.n_tasks
    if data.n_tasks > max_tasks:
        data = data.subset_tasks(np.sort(rng.choice(data.n_tasks, size=max_tasks, replace=False)))
    result = DependenceClusters(labels=np.arange(d), tasks_used=data.n_tasks, tasks_total=n_total)
    activity = data.answers_per_worker()
    active = np.argsort(-activity, kind="stable")[:max_workers]
    active = np.sort(active[activity[active] >= MIN_COMMON])
    result.active_workers = len(active)
    result.qualified_workers = int((activity >= MIN_COMMON).sum())
    if len(active) < 4:
        result.seconds = time.perf_counter() - started
        return result
    smallest = merge_test_work(n_boot + 1, MIN_COMMON, data.n_classes) + views_check_work(n_boot, MIN_COMMON,
                                                                                           data.n_classes)
    if smallest > max_work:  # no merge could be tested: nothing is looked for (attack round 52)
        result.beyond_bound = True
        result.seconds = time.perf_counter() - started
        return result
    kappa, common = _kappa_and_common(data, active)
    shared = np.asarray(common)[np.triu_indices(len(active), 1)]
    result.pairs, result.pairs_judged = len(shared), int((shared >= MIN_COMMON).sum())
    result.most_shared = int(shared.max()) if len(shared) else 0
    tree = linkage(np.clip(1.0 - kappa, 0.0, 2.0)[np.triu_indices(len(active), 1)], method="average")
    nodes: list[np.ndarray] = [np.array([w]) for w in active]
    # which tasks each active worker answered (at most MAX_WORKERS columns: a dense table of every worker was 100 MB at
    # 20,000 workers), for the second split of a merge (_other_split)
    answered = indicator_matrix(data)[:, active].toarray() > 0
    merges = []
    for a, b, _, _ in tree:
        left, right = nodes[int(a)], nodes[int(b)]
        nodes.append(np.concatenate([left, right]))
        cross = kappa[np.ix_(np.searchsorted(active, left), np.searchsorted(active, right))].mean()
        if cross > 0:  # a merge of workers that do not agree beyond chance is no copied group
            merges.append((left, right))
    if not merges:
        result.seconds = time.perf_counter() - started
        return result
    # one test of the tree's split per merge, and one of another split per merge of four or more workers
    result.z_threshold = float(norm.isf(alpha / (len(merges) + sum(len(a) + len(b) >= 4 for a, b in merges))))
    shares = _Shares(data)
    # identical workers below the typical worker, kept whole from the first pass: the other workers' halves then count
    # them once (walkthrough 122: six copiers left out of the halves made nine independent workers look like a group)
    seeded = _identical_groups(data, result, max_workers, alpha, work)
    clusters: list[np.ndarray] = _joined(seeded)
    tests, accepted, untestable = [], [], []
    for _ in range(0 if result.stopped else max_passes):  # (stopped among the identical groups: those found stand)
        before = tests
        tests, accepted, untestable, cut = [], [], [], 0
        for left, right in merges:
            members = np.concatenate([left, right])
            if any(len(members) < len(c) and np.isin(members, c).all() for c in clusters):
                continue  # inside a cluster found already
            known = [c for c in clusters if not np.isin(c, members).any()]
            known += [a for a in _maximal(accepted) if not np.isin(a, members).any()]
            labels = _labels_from(_maximal(known), d)
            # the tree's split first; where it is not tested or not accepted, the other split of the most tasks
            splits = [(left, right), None]
            for split in splits:
                if split is None:
                    split = _other_split(left, right, answered, active, clusters + _maximal(accepted))
                    if split is None:
                        break
                side, rest_side = split
                try:
                    work.check()
                    outcome = _moment_test(shares, side, rest_side, labels, activity, n_boot, rng,
                                           result.z_threshold, work)
                except _Stopped:
                    result.stopped = True
                    break
                if outcome == OVER_BUDGET:
                    cut += 1
                    break
                if outcome == NO_VIEWS:  # the same other workers for every split of these members
                    untestable.append(members)
                    break
                if outcome is None:  # too few shared tasks, or the other workers' halves carry no sign of the class
                    continue
                observed, predicted, sd, m = outcome
                z = (observed - predicted) / max(sd, 1e-12)
                tests.append(ClusterTest(members=tuple(sorted(int(w) for w in members)),
                                         left=tuple(sorted(int(w) for w in side)), observed=observed,
                                         predicted=predicted, sd=sd, z=float(z), tasks=m,
                                         accepted=bool(z > result.z_threshold)))
                if tests[-1].accepted:
                    accepted.append(members)
                    break
            if result.stopped:
                break
        result.tests, result.cut = tests, cut
        found = _joined(_maximal(accepted) + seeded)
        if result.stopped or cut:
            # stopped, or out of work: this pass tested some merges only, and its clusters stand beside those found
            # before (the merges it could not test are not evidence against them), with the tests of both; a cluster
            # this pass tested again and rejected is dropped, as a full pass drops it (read 50)
            rejected = {t.members for t in tests if not t.accepted} - {t.members for t in tests if t.accepted}
            kept = [c for c in clusters if tuple(sorted(int(w) for w in c)) not in rejected]
            clusters = _joined(kept + list(found))
            again = {t.members for t in tests}
            result.tests = [t for t in before if t.members not in again] + tests
            break
        if _same(found, clusters):
            break
        clusters = found
    if clusters:  # the largest untestable merges of workers outside every cluster
        result.untestable = [tuple(int(w) for w in g) for g in _maximal(
            [g for g in untestable if not any(np.isin(g, c).any() for c in clusters)])]
    result.labels = _labels_from(clusters, d)
    result.seconds = time.perf_counter() - started
    return result


def identical_min_tasks(data: AnnotationSet, workers: int, alpha: float = DEFAULT_ALPHA) -> int:
    """The shared tasks on which two workers answering alike on every one is beyond chance: the fewest ``n`` with
    ``r^n <= alpha / pairs``, ``r`` the share of the pairs of answers on one task that agree (all tasks pooled: how
    often two answers agree when nothing links them), ``pairs`` those of ``workers`` (Bonferroni), at least
    :data:`IDENTICAL_FLOOR`. A fixed 50 missed walkthrough 122's six copiers, whose pairs share 18-39 tasks (r 0.57:
    18 tasks alike by chance at 1 in 26,000), and lets through what easy, agreeing data give by chance (SP_amt: r 0.90,
    99 tasks)."""
    _, _, counts = task_class_counts(data)
    per_task = data.answers_per_task().astype(np.float64)
    agreeing = float((counts.astype(np.float64) * (counts - 1)).sum())
    total = float((per_task * (per_task - 1)).sum())
    pairs = workers * (workers - 1) / 2
    if total <= 0 or pairs < 1 or agreeing >= total:
        return 2**31 - 1  # (no two answers on one task, or every pair agrees: nothing is beyond chance)
    rate = max(agreeing / total, 1e-12)
    return max(IDENTICAL_FLOOR, int(math.ceil(math.log(alpha / pairs) / math.log(rate))))


#: the fewest shared tasks that can make two identical workers one source (:func:`identical_min_tasks`)
IDENTICAL_FLOOR = 10


def _identical_groups(data: AnnotationSet, result: DependenceClusters, max_workers: int,
                      alpha: float = DEFAULT_ALPHA, work: "_Work | None" = None) -> list[np.ndarray]:
    """The groups of workers identical on all of at least :func:`identical_min_tasks` shared tasks
    (:func:`deem_core.analysis.agreement.identical_positions`; workers of one label left out) whose answers agree
    with the other workers' less often than the best tenth of the workers' do (:func:`agreement_beside` at
    :data:`RIGHT_ON_EVERY_TASK_QUANTILE`), each recorded in ``result.identical``: clusters of the search from its
    first pass. Independent workers answer alike on every one of many tasks only when each is right on all of them,
    and a worker right on every task agrees with the others at least as often as any other worker does: a group below
    the best tenth copies (against the median, walkthrough 124's copying pair, identical on 77 tasks and at the
    median, stayed apart, and DEEM followed it on every one of the 21 shared tasks it had wrong). The moment
    test needs tasks where the group and both halves of the other workers answered, which sparse answers may not
    give: walkthrough 120's three MTurk batches, a group of five copiers identical on their 53-54 shared tasks (the
    halves' check at z 1.5-2.0 on 28-33 tasks), left DEEM 0.31-1.43 points below majority vote. Two independent
    99.5% workers identical on their 81 shared tasks agree with the others more than any other worker (0.65
    against the median 0.49) and stay apart (benchmarks/results/identical_groups.txt). ``work``: its stop is read
    before each group (each a pass over every answer: 100 groups of 10 million answers ran 70 s past the Data page's
    30 s test; attack round 65); stopped, ``result.stopped`` is set and the groups found by then are returned."""
    if not IDENTICAL_AS_ONE:
        return []
    same, overlap = pairwise_agreement(data, max_workers=max_workers)
    result.identical_min_tasks = identical_min_tasks(data, len(same), alpha)
    found = identical_positions(same, overlap, min_common=result.identical_min_tasks,
                                exclude=single_label_workers(data))
    codes = most_active_workers(data, max_workers)  # (the tables' workers, in their order)
    groups: list[np.ndarray] = []
    for positions, tasks in found:
        if work is not None:
            try:
                work.check()
            except _Stopped:
                result.stopped = True
                break
        members = np.sort(codes[positions])
        beside, top, counted = agreement_beside(data, members, RIGHT_ON_EVERY_TASK_QUANTILE)
        if counted < BESIDE_MIN_ANSWERS or not beside < top:
            continue
        result.identical.append({"members": tuple(int(w) for w in members), "tasks": int(tasks),
                                 "agreement": round(beside, 4), "top_tenth": round(top, 4)})
        groups.append(members)
    return groups


def _joined(groups: list[np.ndarray]) -> list[np.ndarray]:
    """:func:`_maximal` of ``groups`` with the groups that share a worker joined into one."""
    out: list[np.ndarray] = []
    for group in groups:
        touched = [other for other in out if np.isin(other, group).any()]
        out = [other for other in out if not any(other is t for t in touched)] + [
            np.unique(np.concatenate([np.asarray(group), *touched]))]
    return _maximal(out)


#: whether groups of identical workers that agree with the others less than the best tenth of workers are one source
#: (:func:`_identical_groups`; False: only the moment test's clusters, as before the fifty-third session)
IDENTICAL_AS_ONE = True
#: the most units (workers, or groups found, kept whole) of a merge whose every split into two sides is counted
#: (:func:`_other_split`): 2^(n-1) splits
MAX_SPLIT_UNITS = 10


def _other_split(left: np.ndarray, right: np.ndarray, answered: np.ndarray, columns: np.ndarray,
                 groups: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """For a merge of four or more workers, the split of its members into two sides, other than the tree's, on which
    both sides answered the most tasks (how many tasks a test can read, not what they say), each group of ``groups``
    inside the merge kept on one side; None where there is none. ``answered``: (tasks, workers) bool, its columns the
    sorted worker codes ``columns`` (the merge's workers among them). The tree's
    split can put one worker against the rest of a group, and in sparse answers the tasks where that one worker, the
    rest and both halves of the other workers all answered are too few to test (walkthrough 117: a copying group of
    four among 3-5 answers a task, 32 such tasks for the tree's split and its views short of the threshold; 47 for
    the best other split, z 7). A group found is kept whole: split across the sides it would make any merge that
    holds it look dependent. Past :data:`MAX_SPLIT_UNITS` units, the units dealt into two sides, most active first."""
    members = np.concatenate([left, right])
    if len(members) < 4:
        return None
    inside = [g for g in groups if np.isin(g, members).all()]
    grouped = np.concatenate(inside) if inside else np.array([], dtype=members.dtype)
    units = inside + [np.array([w]) for w in members if w not in set(grouped.tolist())]
    n = len(units)
    if n < 2:
        return None
    presence = np.column_stack([answered[:, np.searchsorted(columns, u)].any(1)
                                for u in units]).astype(np.int64)  # (tasks, units)
    # candidate splits as rows of booleans (a unit on the first side or not): bit masks overflowed past 63 units and
    # a real set of 143 workers crashed the fit (OverflowError; this session's check on public sets)
    if n > MAX_SPLIT_UNITS:
        sides = np.zeros((1, n), dtype=bool)
        sides[0, np.argsort(-presence.sum(0), kind="stable")[0::2]] = True
    else:  # every split with the last unit on the second side
        sides = ((np.arange(1, 1 << (n - 1))[:, None] >> np.arange(n)[None, :]) & 1).astype(bool)
    in_left = set(left.tolist())
    own = np.array([int(u[0]) in in_left for u in units])
    first = (presence @ sides.T.astype(np.int64)) > 0  # (tasks, splits): the first side answered
    second = (presence @ (~sides).T.astype(np.int64)) > 0
    counts = (first & second).sum(0)
    counts[(sides == own).all(1) | (sides == ~own).all(1)] = -1
    best = int(np.argmax(counts))
    if counts[best] < 0:
        return None
    side = np.concatenate([u for j, u in enumerate(units) if sides[best, j]])
    return np.sort(side), np.sort(np.setdiff1d(members, side))


def _maximal(groups: list[np.ndarray]) -> list[np.ndarray]:
    """The groups not contained in another one (tree nodes are nested or disjoint)."""
    out: list[np.ndarray] = []
    for group in sorted(groups, key=len, reverse=True):
        if not any(np.isin(group, other).all() for other in out):
            out.append(np.sort(group))
    return out


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return sorted(tuple(x) for x in a) == sorted(tuple(x) for x in b)


def _labels_from(groups: list[np.ndarray], d: int) -> np.ndarray:
    """(d,) cluster ids 0..C-1 numbered by each cluster's first worker; a worker in no group is alone."""
    labels = np.full(d, -1, dtype=np.int64)
    for c, group in enumerate(groups):
        labels[group] = c
    alone = np.flatnonzero(labels < 0)
    labels[alone] = len(groups) + np.arange(len(alone))
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    return np.argsort(np.argsort(first))[inverse]


# ---------------------------------------------------------------------------------------------------------
# aggregators: every cluster counts once
# ---------------------------------------------------------------------------------------------------------
class _ClusterWeighted(Aggregator):
    """Shared part of the cluster-weighted aggregators: find the clusters, weight each member 1 / cluster size."""

    def __init__(self, alpha: float = DEFAULT_ALPHA, seed: int = 0):
        self.alpha = alpha
        self.seed = seed

    def _posterior(self, data: AnnotationSet, weights: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    #: its fit takes a stop event (``registry.fit_method`` passes a job's): the search for clusters checks it
    stoppable = True

    def fit(self, data: Any, gold: Any = None, clusters: DependenceClusters | None = None,
            stop_event: Any = None) -> "_ClusterWeighted":
        """Fit on a long frame or an AnnotationSet (``gold`` is not used); ``clusters``: found already;
        ``stop_event``: ends the search for clusters early (a cancelled job)."""
        data = as_annotation_set(data)
        self.clusters_ = clusters if clusters is not None else find_dependence_clusters(
            data, alpha=float(self.alpha), seed=int(self.seed), stop=stop_event)
        if self.clusters_.stopped:  # (its labels would be those of the clusters found by then: plain Dawid-Skene's
            # often, kept as a finished method's; read 50)
            from deem_core.methods.child import FitStopped  # noqa: PLC0415

            raise FitStopped(f"{type(self).__name__}: stopped while looking for dependence clusters")
        self.weights_ = self.clusters_.weights()
        self.tasks_, self.classes_ = data.tasks, data.classes
        self.posterior_ = self._posterior(data, self.weights_)
        return self

    def predict_proba(self) -> pd.DataFrame:
        return pd.DataFrame(self.posterior_, index=pd.Index(self.tasks_, name="task"),
                            columns=pd.Index(self.classes_, name="label"))

    @property
    def labels_(self) -> pd.Series:
        codes = self.posterior_.argmax(axis=1)
        return pd.Series(self.classes_.take(codes), index=pd.Index(self.tasks_, name="task"), name="agg_label")

    def results_frame(self) -> pd.DataFrame:
        proba = self.predict_proba()
        return label_table(proba.index, self.classes_, self.labels_, proba)


class ClusterWeightedVote(_ClusterWeighted):
    """Majority vote in which every dependence cluster counts once: each member's answer weighs 1 / cluster size
    (clusters: :func:`find_dependence_clusters`). ``predict_proba``: the weighted vote shares; ties go to the
    smallest class, as majority vote's. Without clusters it is majority vote."""

    def _posterior(self, data: AnnotationSet, weights: np.ndarray) -> np.ndarray:
        k = data.n_classes
        votes = np.zeros((data.n_tasks, k))
        answer_weights = weights[data.worker_codes]
        if data.soft_labels is None:
            np.add.at(votes, (data.task_codes, data.label_codes), answer_weights)
        else:
            np.add.at(votes, data.task_codes, data.soft_labels * answer_weights[:, None])
        total = votes.sum(axis=1, keepdims=True)
        return np.divide(votes, total, out=np.full_like(votes, 1.0 / k), where=total > 0)


class ClusterWeightedDawidSkene(_ClusterWeighted):
    """Dawid-Skene in which every dependence cluster counts once: in the E-step each member's log-likelihood term
    weighs 1 / cluster size (``fit_dawid_skene(worker_weights=...)``), so a copied group is one source; the
    confusion matrices are fitted as usual. Without clusters it is Dawid-Skene. ``dawid_skene_`` holds the fit."""

    def _posterior(self, data: AnnotationSet, weights: np.ndarray) -> np.ndarray:
        self.dawid_skene_ = fit_dawid_skene(data, worker_weights=weights)
        return self.dawid_skene_.posterior


def clusters_for_diagnostics(model: Any, data: Any, stop: Any = None) -> dict[str, Any] | None:
    """The dependence clusters of ``data`` (a summary) for diagnosing ``model`` when its fit did not look for them
    (a start and layers fixed by hand): without them the quality table called four copiers "ok" and ranked them the
    best workers (walkthrough 56); None when the fit looked (its own clusters are used)."""
    from deem_core.analysis.agreement import dependent_with  # noqa: PLC0415

    data = as_annotation_set(data)
    if dependent_with(model, data.workers) is not None:
        return None
    return find_dependence_clusters(data, seed=int(getattr(model, "seed", 0) or 0), stop=stop).summary(data.workers)
