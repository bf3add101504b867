"""Agreement statistics for the data summary and for comparing methods.

* :func:`krippendorff_alpha` - Krippendorff's alpha for nominal data (any number of workers, missing
  answers allowed; tasks with fewer than two answers are not pairable and are left out);
* :func:`pairwise_agreement` - for every pair of workers, the share of their common tasks on which they
  gave the same label (and how many tasks they share);
* :func:`identical_groups` - workers who gave the same label on every task they share (copies, or one person
  under several names);
* :func:`worker_coverage`, :func:`labels_per_task`, :func:`class_balance` - the counts a user looks at
  first;
* :func:`worker_table` - one row per worker: answers, coverage, agreement with the aggregated labels
  and with majority vote, and (when a fitted DEEM is given) the accuracy the model's confusion matrices
  imply (Lemma 1);
* :func:`method_agreement`, :func:`confusion_against_gold` - comparing several methods' labels with each
  other and with gold labels (accuracy: :func:`deem_core.analysis.scoring.accuracy`).

All functions take an :class:`~deem_core.data.annotations.AnnotationSet` and work on its answers (CSR arrays),
never on a dense tasks x workers table: per-task and per-worker counts come from ``np.bincount``,
pairwise tables from sparse products over the tasks two workers share (:mod:`deem_core.data.pairs`).
"""

from __future__ import annotations

import math
import time
from statistics import NormalDist
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp

from deem_core.data.annotations import AnnotationSet, counting_is_small, counts_at, task_class_counts
from deem_core.data.pairs import indicator_matrix, pair_table
from deem_core.data.text import all_names_text, counted, middle_cut, names_text, natural_positions

__all__ = [
    "BESIDE_MIN_ANSWERS", "CONSTANT_MIN_ANSWERS", "RIGHT_ON_EVERY_TASK_QUANTILE", "IDENTICAL_MIN_COMMON", "agreement_beside", "class_balance", "identical_positions", "confusion_against_gold", "constant_workers",
    "dependent_with", "cluster_partners", "identical_groups", "single_label_workers", "PARTNERS_MAX_CHARS", "PARTNERS_WORDS",
    "krippendorff_alpha", "label_distribution", "labels_per_task",
    "method_agreement", "most_active_workers", "pairwise_agreement", "worker_coverage", "worker_table",
]




def krippendorff_alpha(data: AnnotationSet | np.ndarray, n_classes: int | None = None) -> float:
    """Krippendorff's alpha, nominal metric. ``data``: an AnnotationSet or an (n_tasks, n_workers) code
    matrix with ``-1`` for missing answers. NaN when fewer than two pairable answers exist or when every
    pairable answer has the same class (no variation to measure agreement against).

    Computed from the coincidence matrix's margins: only the per-task class counts are needed."""
    if not isinstance(data, AnnotationSet):
        labels = np.asarray(data)
        k = int(n_classes if n_classes is not None else labels.max() + 1)
        data = AnnotationSet.from_dense(labels, classes=range(max(k, 1)))
    # the (task, class) pairs that occur, never a dense (tasks x classes) table: 100,000 tasks x 2,000 classes
    # (a 3.8 MB file) took the dense one to 1.8 GB on the Data page
    task, label, counts = task_class_counts(data)
    m = np.bincount(data.task_codes, minlength=data.n_tasks).astype(np.float64)[task]
    pairable = m >= 2
    task, label, counts, m = task[pairable], label[pairable], counts[pairable].astype(np.float64), m[pairable]
    n = counts.sum()
    if n < 2:
        return float("nan")
    # coincidences within units: o_cc = sum_u n_uc (n_uc - 1) / (m_u - 1)
    observed_same = (counts * (counts - 1) / (m - 1)).sum()
    n_c = np.bincount(label, weights=counts, minlength=data.n_classes)
    expected_diff = n * n - (n_c ** 2).sum()
    if expected_diff <= 0:
        return float("nan")
    return float(1.0 - (n - 1) * (n - observed_same) / expected_diff)


def most_active_workers(data: AnnotationSet, limit: int | None) -> np.ndarray:
    """Codes of the ``limit`` workers with the most answers (ties: smaller code first), in code order;
    every worker when ``limit`` is None or not smaller than their number."""
    if limit is None or limit >= data.n_workers:
        return np.arange(data.n_workers)
    answered = data.answers_per_worker()
    order = np.lexsort((np.arange(data.n_workers), -answered))
    return np.sort(order[: int(limit)])


def pairwise_agreement(data: AnnotationSet, max_workers: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(agreement, overlap): worker x worker tables. ``agreement[a, b]`` is the share of the tasks both
    labelled on which they agree (NaN without common tasks); ``overlap[a, b]`` the number of common tasks.

    max_workers: keep only that many workers, those with the most answers (a table of every pair of tens
    of thousands of workers does not fit in memory: larger tables are refused with a DataError)."""
    keep = most_active_workers(data, max_workers)
    observed = indicator_matrix(data)[:, keep]
    overlap = pair_table(observed)  # (d, d)
    # same[a, b]: tasks where a and b gave the same class. One row per (task, class) pair that occurs, one
    # column per kept worker: a single product (one product per class took minutes with thousands of classes)
    chosen = np.isin(data.worker_codes, keep)
    _, rows = np.unique(data.task_codes[chosen] * max(1, data.n_classes) + data.label_codes[chosen],
                        return_inverse=True)
    columns = np.searchsorted(keep, data.worker_codes[chosen])
    same = pair_table(sp.csr_matrix((np.ones(len(rows)), (rows.reshape(-1), columns)),
                                    shape=(int(rows.max()) + 1 if len(rows) else 0, len(keep))))
    with np.errstate(invalid="ignore", divide="ignore"):
        agreement = np.where(overlap > 0, same / np.maximum(overlap, 1), np.nan)
    names = [str(w) for w in data.workers[keep]]
    return (pd.DataFrame(agreement, index=names, columns=names),
            pd.DataFrame(overlap.astype(np.int64), index=names, columns=names))


#: common tasks a pair needs before answering alike on all of them marks it: two independent workers each right 96%
#: of the time agree on 50 tasks in a row with probability under 0.13 (0.96^50), on 20 with 0.44
IDENTICAL_MIN_COMMON = 50


def identical_groups(agreement: pd.DataFrame, overlap: pd.DataFrame, min_common: int = IDENTICAL_MIN_COMMON,
                     exclude: Any = ()) -> list[tuple[list[str], int]]:
    """Groups of workers linked by pairs that gave the same label on every one of at least ``min_common`` common
    tasks (the tables of :func:`pairwise_agreement`): ``(workers, tasks)`` per group, ``tasks`` the fewest common
    tasks of its linking pairs, groups with more workers first. Such workers count as independent votes in majority
    vote and as independent evidence in Dawid-Skene, which is wrong when they copy one another. ``exclude``: names
    of workers left out (:func:`single_label_workers`: two workers who always say "cat" agree on every task they
    share without copying; walkthrough 102 read the advice to keep one of them)."""
    names = [str(w) for w in agreement.index]
    groups = [([names[i] for i in members], tasks)
              for members, tasks in identical_positions(agreement, overlap, min_common, exclude)]
    return sorted(groups, key=lambda g: (-len(g[0]), g[0]))


def identical_positions(agreement: pd.DataFrame, overlap: pd.DataFrame, min_common: int = IDENTICAL_MIN_COMMON,
                        exclude: Any = ()) -> list[tuple[np.ndarray, int]]:
    """:func:`identical_groups` as positions in the tables' index: ``(positions, tasks)`` per group."""
    from scipy.sparse.csgraph import connected_components  # noqa: PLC0415

    same = agreement.to_numpy(dtype=float)
    common = overlap.to_numpy(dtype=float)
    linked = (same == 1.0) & (common >= max(1, int(min_common)))
    left_out = np.isin(np.asarray([str(w) for w in agreement.index]), np.asarray([str(w) for w in exclude]))
    linked[left_out, :] = False
    linked[:, left_out] = False
    np.fill_diagonal(linked, False)
    if not linked.any():
        return []
    n, component = connected_components(sp.csr_matrix(linked), directed=False)
    groups = []
    for label in range(n):
        members = np.flatnonzero(component == label)
        if len(members) > 1:
            block = np.where(linked[np.ix_(members, members)], common[np.ix_(members, members)], np.inf)
            groups.append((members, int(block.min())))
    return groups


#: answers on tasks with other answers a worker needs to count in :func:`agreement_beside`'s typical worker
BESIDE_MIN_ANSWERS = 10
#: the share of the other workers a group identical on its shared tasks must agree with the crowd at least as often
#: as, to be read as workers right on every task rather than copies: such a worker agrees with the others' answers as
#: often as the best of them (walkthrough 122's two 99.8% experts: 0.670, above every other of 40 workers; walkthrough
#: 124's copying pair, identical on 77 tasks: 0.549, the median, and it was left apart against the median)
RIGHT_ON_EVERY_TASK_QUANTILE = 0.9


def agreement_beside(data: AnnotationSet, members: Any, quantile: float = 0.5) -> tuple[float, float, int]:
    """How the workers ``members`` (codes) agree with the workers outside them, beside how the outside workers do:
    (the members' mean, over their tasks with outside answers, of the share of those answers giving their
    label -- one answer a task, the first member's; the ``quantile`` (0.5: the median, the typical worker) over the
    outside workers of at least :data:`BESIDE_MIN_ANSWERS` such answers of the same mean, each one's own answer left
    out of its task's share; the members' tasks counted). NaN where nothing is counted. From the (task, class) pairs
    that occur.

    Workers who give the same label on every one of many shared tasks are copies, or each right on all of them: a
    worker right on every task agrees with the others' answers at least as often as any other worker does
    (:func:`deem_core.methods.clusters.find_dependence_clusters` counts identical workers who agree with the others
    less than the best tenth of the workers do as one source)."""
    members = np.unique(np.asarray(members, dtype=np.int64))
    inside = np.isin(data.worker_codes, members)
    if not inside.any():
        return float("nan"), float("nan"), 0
    k = np.int64(max(data.n_classes, 1))
    tasks, labels = data.task_codes.astype(np.int64), data.label_codes.astype(np.int64)
    keys = tasks * k + labels
    outside_keys = np.sort(keys[~inside])
    per_task = np.bincount(tasks[~inside], minlength=data.n_tasks)
    same = np.searchsorted(outside_keys, keys, side="right") - np.searchsorted(outside_keys, keys, side="left")
    own = (~inside).astype(np.int64)  # (an outside answer is one of its task's outside answers: left out)
    others = per_task[tasks] - own
    share = np.where(others > 0, (same - own) / np.maximum(others, 1), 0.0)
    counted = others > 0
    first = np.zeros(len(keys), dtype=bool)  # the members' first answer of each task
    at = np.flatnonzero(inside)
    first[at[np.unique(tasks[at], return_index=True)[1]]] = True
    mine = first & counted
    group = float(share[mine].mean()) if mine.any() else float("nan")
    outside = ~inside & counted
    answered = np.bincount(data.worker_codes[outside], minlength=data.n_workers)
    total = np.bincount(data.worker_codes[outside], weights=share[outside], minlength=data.n_workers)
    enough = answered >= BESIDE_MIN_ANSWERS
    outside_at = float(np.quantile(total[enough] / answered[enough], quantile)) if enough.any() else float("nan")
    return group, outside_at, int(mine.sum())


def labels_per_task(data: AnnotationSet) -> pd.Series:
    """Number of answers of every task (index = task)."""
    return pd.Series(data.answers_per_task(), index=data.tasks, name="answers")


def class_balance(data: AnnotationSet) -> pd.DataFrame:
    """Per class: number and share of all answers, and of the tasks by majority vote, a tie shared evenly among
    the tied classes (given to the first class, 51 tied tasks of 200 made one class's share 0.45 where its answers'
    was 0.34; walkthrough 19). From the (task, class) pairs that occur, never a tasks x classes table."""
    counts = np.bincount(data.label_codes, minlength=data.n_classes).astype(np.float64)
    mv_counts = np.zeros(data.n_classes, dtype=np.float64)
    tasks, classes, votes = task_class_counts(data)
    if len(tasks):
        starts = np.flatnonzero(np.r_[True, tasks[1:] != tasks[:-1]])
        top = np.repeat(np.maximum.reduceat(votes, starts), np.diff(np.r_[starts, len(tasks)]))
        tied = votes == top
        ways = np.bincount(tasks[tied], minlength=data.n_tasks)
        mv_counts = np.bincount(classes[tied], weights=1.0 / ways[tasks[tied]], minlength=data.n_classes)
    return pd.DataFrame({
        "class": [str(c) for c in data.classes],
        "answers": counts.astype(np.int64),
        "answer_share": counts / max(1.0, counts.sum()),
        "majority_vote_tasks": mv_counts,
        "majority_vote_share": mv_counts / max(1.0, mv_counts.sum()),
    })


def _agreement_with(data: AnnotationSet, task_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per worker: answers, and answers equal to ``task_labels`` ((n_tasks,) codes) of their task."""
    answered = data.answers_per_worker()
    same = (data.label_codes == np.asarray(task_labels)[data.task_codes]).astype(np.float64)
    agree = np.bincount(data.worker_codes, weights=same, minlength=data.n_workers)
    return answered, agree


def _agreement_with_majority(data: AnnotationSet) -> tuple[np.ndarray, np.ndarray]:
    """Per worker: answers, and answers naming one of their task's most answered classes, a tie shared evenly among
    the tied classes as :func:`class_balance` shares it (a tie given to the smallest class made a worker's agreement
    depend on how the labels sort, and disagree with the Majority vote method, which breaks ties otherwise). From
    the (task, class) pairs that occur (:meth:`~deem_core.data.annotations.AnnotationSet.most_voted_pairs`)."""
    answered = data.answers_per_worker()
    task, cls = data.most_voted_pairs()
    k = np.int64(max(data.n_classes, 1))
    top = np.sort(task * k + cls)
    keys = data.task_codes.astype(np.int64) * k + data.label_codes
    at = np.minimum(np.searchsorted(top, keys), max(len(top) - 1, 0))
    hit = (top[at] == keys) if len(top) else np.zeros(len(keys), dtype=bool)
    ways = np.bincount(task, minlength=data.n_tasks).astype(np.float64)
    share = np.where(hit, 1.0 / np.maximum(ways[data.task_codes], 1.0), 0.0)
    return answered, np.bincount(data.worker_codes, weights=share, minlength=data.n_workers)


def _others_per_answer(data: AnnotationSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per answer: whether its task has other answers, 1 / their number (0 when none), and the share of them giving
    its label."""
    per_task = np.diff(data.task_offsets)
    others = per_task[data.task_codes] - 1
    shared = others > 0
    task_keys = data.task_codes.astype(np.int64) * np.int64(max(data.n_classes, 1)) + data.label_codes
    same = counts_at(task_keys, data.n_tasks * max(data.n_classes, 1)) - 1  # the task's other answers of its label
    weight = np.where(shared, 1.0 / np.maximum(others, 1), 0.0)
    return shared, weight, same * weight


def _agreement_with_others(data: AnnotationSet) -> tuple[np.ndarray, np.ndarray]:
    """Per worker: its answers on tasks with other answers, and the sum over them of the share of the task's other
    answers giving its label."""
    shared, _, share = _others_per_answer(data)
    answered = np.bincount(data.worker_codes, weights=shared.astype(np.float64), minlength=data.n_workers)
    return answered, np.bincount(data.worker_codes, weights=share, minlength=data.n_workers)


#: answers a worker needs before one label on all of them is said (fewer can be one class by chance)
CONSTANT_MIN_ANSWERS = 20


def constant_workers(data: AnnotationSet, min_answers: int = CONSTANT_MIN_ANSWERS) -> list[tuple[str, str, int, int]]:
    """Workers who gave one label on every one of their ``min_answers`` or more answers, while the other answers of
    at least a quarter of their tasks favour another class: ``(worker, label, answers, such tasks)``, the most answers
    first. Such an answer says nothing about the item (walkthrough 37: a worker who always said "dog" was caught on
    the Diagnostics page only, after training). The other answers alone decide (:func:`others_favour_another`):
    majority vote counted the worker's own vote and gave it the ties, and a worker always saying "bird" on 70 tasks of
    three answers differed from it on 16 only, unwarned (walkthrough 81)."""
    if data.n_classes < 2 or not data.n_annotations:
        return []
    answered = data.answers_per_worker()
    distinct, given = _distinct_labels(data)
    constant = (answered >= max(1, int(min_answers))) & (distinct == 1)
    if not constant.any():
        return []
    other = np.bincount(data.worker_codes, weights=others_favour_another(data).astype(np.float64),
                        minlength=data.n_workers)
    found = np.flatnonzero(constant & (other >= 0.25 * answered))
    found = found[np.argsort(-answered[found], kind="stable")]
    return [(str(data.workers[i]), str(data.classes[given[i]]), int(answered[i]), int(other[i])) for i in found]


def _distinct_labels(data: AnnotationSet) -> tuple[np.ndarray, np.ndarray]:
    """Per worker: how many distinct labels it gave, and its only label where it gave one (codes). From the (worker,
    label) pairs that occur, never a workers x classes table (both can be large)."""
    pairs = np.unique(data.worker_codes.astype(np.int64) * data.n_classes + data.label_codes)
    owners = pairs // data.n_classes
    given = np.zeros(data.n_workers, dtype=np.int64)
    given[owners] = pairs % data.n_classes
    return np.bincount(owners, minlength=data.n_workers), given


def single_label_workers(data: AnnotationSet) -> list[str]:
    """The workers who gave one label on every answer (any number of answers; hard labels)."""
    if not data.n_annotations:
        return []
    return [str(data.workers[i]) for i in np.flatnonzero(_distinct_labels(data)[0] == 1)]


def others_favour_another(data: AnnotationSet) -> np.ndarray:
    """(A,) per answer (hard labels): whether the other answers of its task give some other class more often than
    its own label (a tie is not; a task's lone answer is not). From the (task, class) pairs that occur: each task's
    two largest counts."""
    task, cls, count = task_class_counts(data)
    order = np.lexsort((-count, task))  # per task, the largest count first
    task, cls, count = task[order], cls[order], count[order]
    first = np.r_[True, task[1:] != task[:-1]]
    top_class = np.full(data.n_tasks, -1, dtype=np.int64)
    top_count = np.zeros(data.n_tasks, dtype=np.int64)
    second = np.zeros(data.n_tasks, dtype=np.int64)
    top_class[task[first]], top_count[task[first]] = cls[first], count[first]
    runner = np.flatnonzero(~first & np.r_[False, first[:-1]])  # each task's second pair
    second[task[runner]] = count[runner]
    k = max(data.n_classes, 1)
    own = counts_at(data.task_codes.astype(np.int64) * k + data.label_codes, data.n_tasks * k) - 1
    best_other = np.where(top_class[data.task_codes] == data.label_codes, second[data.task_codes],
                          top_count[data.task_codes])
    return best_other > own


#: how far below chance (standard errors) a worker's agreement with the other answers must be to be said to answer
#: against the others (about p < 0.001 one-sided: a set of hundreds of workers has a few unlucky ones)
CONTRARY_Z = 3.1
#: ... and, among many workers, below the Bonferroni bound of this family-wise error over the workers tested: one of
#: 2,000 random workers was named "Adversarial, or with the classes swapped" at z 3.1 (walkthrough 129); the bound
#: passes 3.1 past about 50 workers (4.06 at 2,000)
CONTRARY_FAMILY_ALPHA = 0.05
#: (answer, class given on its task) pairs expanded at once (bounded memory on platform-sized data; a chunk of answers
#: was unbounded where a task has many answers of many classes: one task of 8,000 workers and labels took 5 GB)
CONTRARY_CHUNK = 1 << 20
#: (answer, class given on its task) pairs looked at in all: past it, the tasks of a random share of the answers (a
#: task's pairs grow with its answers times its classes: 100 tasks of 1,000 workers and 1,000 labels, a 1.3 MB file,
#: made 100 million of them, 24 s and 7.8 GB in the page's own thread; attack round 36)
CONTRARY_MAX_PAIRS = 1 << 25


def _within_pairs(data: AnnotationSet, shared: np.ndarray, pairs: np.ndarray, max_pairs: int) -> np.ndarray:
    """The answers of ``shared`` whose (answer, class of its task) pairs (``pairs`` per answer) are looked at: all of
    them when they number ``max_pairs`` or fewer, else those of tasks taken in a random order (seeded: the same data,
    the same tasks) while the pairs fit, a task of more than a sixteenth of them left out (one such task took the
    whole budget)."""
    per_task = np.bincount(data.task_codes, weights=shared * pairs, minlength=data.n_tasks)
    if per_task.sum() <= max_pairs:
        return shared
    order = np.random.default_rng(0).permutation(data.n_tasks)
    order = order[per_task[order] <= max_pairs / 16]
    taken = np.zeros(data.n_tasks, dtype=bool)
    taken[order[np.cumsum(per_task[order]) <= max_pairs]] = True
    return shared & taken[data.task_codes]


def _count_lookup(keys: np.ndarray, size: int, n_answers: int) -> Callable[[np.ndarray], np.ndarray]:
    """A function giving, per asked key in [0, ``size``), how many of ``keys`` equal it (0 for none): a table of
    ``size`` cells where that is small beside ``n_answers`` answers, else a binary search among the sorted distinct
    keys (the search was 0.6 of the check against the others' 2.2 s on 4.2 million answers)."""
    if counting_is_small(n_answers, size):
        table = np.bincount(keys, minlength=size)
        return lambda asked: table[asked]
    found, counts = np.unique(keys, return_counts=True)
    if not len(found):
        return lambda asked: np.zeros(len(asked), dtype=counts.dtype)

    def search(asked: np.ndarray) -> np.ndarray:
        at = np.minimum(np.searchsorted(found, asked), len(found) - 1)
        return np.where(found[at] == asked, counts[at], 0)
    return search


def contrary_workers(data: AnnotationSet, min_answers: int = CONSTANT_MIN_ANSWERS, z: float = CONTRARY_Z,
                     max_pairs: int = CONTRARY_MAX_PAIRS) -> list[tuple[str, int, float, float]]:
    """Workers of ``min_answers`` or more answers (on tasks others answered too) who agree with the other answers of
    their tasks less often than chance would: ``(worker, answers, agreement, chance)``, the least agreeing first.
    Agreement: per answer, the share of the task's other answers that give its label, averaged. Chance: the same for a
    worker giving its own labels as often as it does, at random (per class, its share of answers of the class times
    the share of the other answers on its tasks of that class). Said when ``z`` standard errors below chance (the
    variance of that random worker's agreement, the other answers as they are), or further among many workers: the
    one-sided Bonferroni bound of :data:`CONTRARY_FAMILY_ALPHA` over the workers tested. Adversarial workers, or ones whose
    classes are swapped: the Data page said nothing of two agreeing 0.23 and 0.19 with majority vote (walkthrough
    64); its own answer in the majority hid one of them. The work grows with each answer's task's classes: past
    ``max_pairs`` (answer, class) pairs it looks at the answers of a random share of the tasks (``answers`` then
    counts those)."""
    from deem_core.data.annotations import task_class_counts  # noqa: PLC0415

    if data.n_classes < 2 or not data.n_annotations:
        return []
    shared, weight, share = _others_per_answer(data)
    if not shared.any():
        return []
    k = np.int64(data.n_classes)
    workers = data.worker_codes
    # chance, per answer: the worker's label drawn from its own shares p_w, the task's other answers as they are;
    # its mean and variance from the (task, class) pairs of the answer's task (never a workers x classes table)
    tasks, classes, class_counts = task_class_counts(data)
    first = np.searchsorted(tasks, np.arange(data.n_tasks + 1))
    given_at = _count_lookup(workers.astype(np.int64)[shared] * k + data.label_codes[shared], data.n_workers * int(k),
                             data.n_answers)
    own_answers = np.bincount(workers, weights=shared.astype(np.float64), minlength=data.n_workers)  # (p_w's total)
    pairs = np.diff(first)[data.task_codes]  # per answer: the classes given on its task
    used = _within_pairs(data, shared, pairs, max(1, int(max_pairs)))
    answered = np.bincount(workers, weights=used.astype(np.float64), minlength=data.n_workers)
    agree = np.bincount(workers, weights=share * used, minlength=data.n_workers)
    widths = pairs * used
    ends = np.cumsum(widths)
    edges = np.unique(np.concatenate([[0], np.searchsorted(ends, np.arange(1, int(ends[-1]) // CONTRARY_CHUNK + 1)
                                                           * CONTRARY_CHUNK, side="right"), [data.n_answers]]))
    expected = np.zeros(data.n_workers)
    variance = np.zeros(data.n_workers)
    for start, stop in zip(edges[:-1], edges[1:]):  # (answers x their tasks' classes, CONTRARY_CHUNK pairs at a time)
        part = slice(int(start), int(stop))
        task_of, label_of, worker_of = data.task_codes[part], data.label_codes[part], workers[part]
        start_of = first[task_of]
        width = widths[part]
        answer = np.repeat(np.arange(len(task_of)), width)
        offsets = np.repeat(np.cumsum(width) - width, width)
        pair = start_of[answer] + (np.arange(len(answer)) - offsets)
        k_pair = classes[pair]
        share_of_k = (class_counts[pair] - (k_pair == label_of[answer])) * weight[part][answer]
        keys = worker_of.astype(np.int64)[answer] * k + k_pair
        p_given = given_at(keys) / np.maximum(own_answers[worker_of[answer]], 1.0)
        mean_a = np.bincount(answer, weights=p_given * share_of_k, minlength=len(task_of))
        square_a = np.bincount(answer, weights=p_given * share_of_k ** 2, minlength=len(task_of))
        expected += np.bincount(worker_of, weights=mean_a, minlength=data.n_workers)
        variance += np.bincount(worker_of, weights=np.maximum(square_a - mean_a ** 2, 0.0), minlength=data.n_workers)
    mean = expected / np.maximum(answered, 1.0)
    spread = np.sqrt(np.maximum(variance, 1e-12))
    tested = answered >= max(1, int(min_answers))
    z = max(float(z), float(NormalDist().inv_cdf(1.0 - CONTRARY_FAMILY_ALPHA / max(1, int(tested.sum())))))
    found = np.flatnonzero(tested & (agree < expected - z * spread))
    share = agree[found] / answered[found]
    found = found[np.argsort(share, kind="stable")]
    return [(str(data.workers[i]), int(answered[i]), float(agree[i] / answered[i]), float(mean[i])) for i in found]


def worker_coverage(data: AnnotationSet) -> pd.DataFrame:
    """Per worker: answers, share of tasks covered, agreement with majority vote (on its tasks; its own answer is
    one of the votes, a tie shared among the tied classes) and agreement with the others (per answer, the share of the task's other answers giving its
    label, averaged over its answers on tasks others answered too: the figure the Data page's "answering against
    the others" warning quotes, which the majority column hid: 0.196 beside 9%; walkthrough 65)."""
    return _in_natural_order(_coverage(data))


def _in_natural_order(table: pd.DataFrame) -> pd.DataFrame:
    """A one-row-per-worker table in its workers' natural order, as the charts draw them ("w2" before "w10"; the
    data's text order put "w10" first in the tables beside them; walkthrough 104)."""
    return table.iloc[natural_positions(table["worker"].to_numpy())].reset_index(drop=True)


def _coverage(data: AnnotationSet) -> pd.DataFrame:
    """:func:`worker_coverage` in the data's order of workers."""
    answered, agree = _agreement_with_majority(data)
    on_shared, with_others = _agreement_with_others(data)
    return pd.DataFrame({
        "worker": [str(w) for w in data.workers],
        "answers": answered.astype(np.int64),
        "coverage": answered / max(1, data.n_tasks),
        "agreement_with_majority": np.where(answered > 0, agree / np.maximum(answered, 1), np.nan),
        "agreement_with_others": np.where(on_shared > 0, with_others / np.maximum(on_shared, 1), np.nan),
    })


def dependent_with(model: Any, workers: Any) -> list[str] | None:
    """Per worker of ``workers``: the other workers of its dependence cluster, found when a DEEM chose its start or
    depth (``selection_summary_["clusters"]``; "" for a worker in none), or None when no clusters were looked for.
    Their answers agree beyond what the other workers explain, so their agreement with the labels and the accuracy
    the model reads for them count shared answers as evidence (walkthrough 34: two copiers ranked first of 9)."""
    return cluster_partners((getattr(model, "selection_summary_", None) or {}).get("clusters") or {}, workers)


#: the most characters of one worker's ``dependent_with`` cell before its partners are cut (:func:`all_names_text`)
PARTNERS_MAX_CHARS = 2_000
#: what a ``dependent_with`` cell holds, in words (said beside the column)
PARTNERS_WORDS = (f"names separated by commas, each in “ ” when one holds a comma, a semicolon or a parenthesis; "
                  f"whole up to {PARTNERS_MAX_CHARS:,} characters a cell, past that the first eight cut to 40 "
                  f"characters and how many more")


def cluster_partners(found: dict, workers: Any) -> list[str] | None:
    """Per worker of ``workers``: the other workers of its cluster in ``found`` (a dependence-cluster summary,
    ``{"clusters": [{"workers": [...]}, ...]}``), "" for a worker in none; None when ``found`` holds no clusters.
    Whole names while a cell stays within :data:`PARTNERS_MAX_CHARS`, past it the first eight cut to 40 characters
    and how many more (:func:`all_names_text`; every other member's whole name on every member's row grew as the
    square of the cluster: 150 copiers of 10,000-character names made a 223-million-character column, a 450 MB page
    message and 4 GB of server memory; attack round 46)."""
    if "clusters" not in found:
        return None
    partners: dict[str, str] = {}
    for cluster in found.get("clusters") or []:
        names = [str(w) for w in cluster.get("workers") or []]
        sizes = [len(name) + 4 for name in names]
        # (whether some member's partners fit whole: else every cell is cut, made from a head of the names without
        # the cluster's list copied per member, which grew as its square)
        whole = bool(names) and sum(sizes) - max(sizes) <= PARTNERS_MAX_CHARS
        for i, name in enumerate(names):
            if whole:
                partners[name] = all_names_text(names[:i] + names[i + 1:], PARTNERS_MAX_CHARS)
            else:  # (the first ten suffice: nine shown at most, the rest counted; as all_names_text cuts)
                head = [other for other in names[:10] if other != name]
                partners[name] = names_text(head, total=len(names) - 1)
    return [partners.get(str(w), "") for w in workers]


def worker_table(data: AnnotationSet, agg_codes: np.ndarray | None = None, model: Any = None) -> pd.DataFrame:
    """One row per worker for export: coverage and agreement with majority vote, with the aggregated
    labels ``agg_codes`` ((n_tasks,) class codes) when given, and the accuracy a fitted DEEM reads for each worker
    (:meth:`~deem_core.DEEM.estimated_accuracy`, Lemma 1)."""
    table = _coverage(data)
    if agg_codes is not None:
        answered, agree = _agreement_with(data, np.asarray(agg_codes))
        table["agreement_with_aggregate"] = np.where(answered > 0, agree / np.maximum(answered, 1), np.nan)
    if model is not None and hasattr(model, "estimated_accuracy"):
        try:
            table["estimated_accuracy"] = model.estimated_accuracy(data=data).reindex(list(data.workers)).to_numpy()
        except Exception:  # noqa: BLE001 - an optional column; the table stays useful without it
            pass
    partners = dependent_with(model, data.workers)
    if partners is not None:  # beside the worker (last, it was out of sight at 900 px; walkthrough 35)
        table.insert(1, "dependent_with", partners)
    return _in_natural_order(table)


def label_distribution(results: Mapping[str, pd.Series], classes: Any = None) -> pd.DataFrame:
    """Share of tasks given each label, one column per method, the labels in their natural order ("c2" before "c10":
    the Train page's chart read c0, c1, c10, ..., c2; walkthrough 132)."""
    frame = pd.DataFrame({name: labels.astype(str).value_counts(normalize=True) for name, labels in results.items()})
    if classes is not None:
        frame = frame.reindex([str(c) for c in classes])
    frame = frame.iloc[natural_positions(pd.Index([str(label) for label in frame.index]))]
    frame.index.name = "label"
    return frame.fillna(0.0)


def method_agreement(results: Mapping[str, pd.Series]) -> pd.DataFrame:
    """Method x method share of tasks with the same label (over the tasks both methods labelled)."""
    names = list(results)
    out = pd.DataFrame(np.nan, index=names, columns=names, dtype=float)
    for a in names:
        for b in names:
            left, right = results[a].align(results[b], join="inner")
            if len(left):
                out.loc[a, b] = float((left.astype(str).to_numpy() == right.astype(str).to_numpy()).mean())
    return out


def _gold_aligned(labels: pd.Series, gold: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    gold = gold.dropna()
    common = gold.index[gold.index.isin(labels.index)]
    pred = labels.reindex(common).astype(str).to_numpy()
    truth = gold.reindex(common).astype(str).to_numpy()
    return pred, truth


def frequent_confusions(labels: pd.Series, gold: pd.Series, top: int = 20) -> pd.DataFrame:
    """The ``top`` most frequent (gold, predicted) pairs where the two differ, with their task counts: the
    confusion matrix's largest off-diagonal cells without building it (it has classes x classes cells)."""
    pred, truth = _gold_aligned(labels, gold)
    wrong = pred != truth
    pairs = pd.DataFrame({"gold": truth[wrong], "predicted": pred[wrong]})
    counts = pairs.value_counts(sort=True).head(int(top))
    return counts.rename("tasks").reset_index()


def confusion_against_gold(labels: pd.Series, gold: pd.Series, classes: Any = None) -> pd.DataFrame:
    """Counts: rows = gold label, columns = predicted label (as text)."""
    pred, truth = _gold_aligned(labels, gold)
    order = [str(c) for c in classes] if classes is not None else sorted(set(truth) | set(pred))
    extra = sorted((set(truth) | set(pred)) - set(order))
    order = order + extra
    table = pd.crosstab(pd.Categorical(truth, categories=order), pd.Categorical(pred, categories=order),
                        dropna=False)
    table.index.name = "gold"
    table.columns.name = "predicted"
    return table.reindex(index=order, columns=order, fill_value=0)


#: workers in the pairwise agreement tables of the data checks and warnings (those with the most answers)
PAIRWISE_WORKERS = 60
#: groups of workers who answered alike that a warning names (at most)
COPIES_NAMED = 5
#: workers who gave one label for everything that a warning names (at most)
CONSTANT_NAMED = 5


def copies_sentences(pairwise: tuple[pd.DataFrame, pd.DataFrame], single_label: Any = (),
                     data: AnnotationSet | None = None) -> list[str]:
    """A sentence per group of workers who gave the same label on every one of :data:`IDENTICAL_MIN_COMMON` or more
    tasks they share (at most :data:`COPIES_NAMED` groups; ``pairwise``: :func:`pairwise_agreement`'s tables), the
    ``single_label`` workers left out (:func:`single_label_workers`: they agree without copying; walkthrough 102).
    Walkthrough 28's copied trio took Dawid-Skene and DEEM's automatic choice to 54% against majority vote's 69.5%,
    with nothing said. With ``data``, a group whose answers agree with the other workers' at least as often as nine
    in ten workers' do (:data:`RIGHT_ON_EVERY_TASK_QUANTILE`, :func:`agreement_beside`) is said to be possibly right
    on every task: two independent workers right 99.8% of the time were told to be kept one, which cost 3.5 points
    (walkthrough 122); a copying pair at the median was told it "may simply be right" (walkthrough 124)."""
    sentences = []
    codes = {str(w): i for i, w in enumerate(data.workers)} if data is not None else {}
    for workers, tasks in identical_groups(*pairwise, exclude=single_label)[:COPIES_NAMED]:
        # in their natural order, as the clusters' notes list them ("'w10', 'w2', 'w9'"; walkthrough 106)
        workers = [workers[i] for i in natural_positions(pd.Index([str(w) for w in workers]))]
        # (each cut: three 10,000-character names made a 30,279-character warning; the diff's read)
        # (head and tail: names that differ at their end read alike cut after their head; read 53)
        named = (", ".join(repr(middle_cut(str(w), 40)) for w in workers[:8])
                 + (f" and {len(workers) - 8:,} more" if len(workers) > 8 else ""))
        # (a pair's count is its own: "(269 or more)" read as vague for two workers; walkthrough 41)
        alike = (f"gave the same label on all the {tasks:,} tasks they share" if len(workers) == 2 else
                 f"each gave the same label as another of them on all the tasks the two share ({tasks:,} or more "
                 f"for each such pair)")
        beside, top, counted = (agreement_beside(data, [codes[str(w)] for w in workers if str(w) in codes],
                                                 RIGHT_ON_EVERY_TASK_QUANTILE)
                                if data is not None else (math.nan, math.nan, 0))
        if counted >= BESIDE_MIN_ANSWERS and beside >= top:
            sentences.append(f"Workers {named} {alike}, and agree with the other workers' answers as often as the "
                             f"best tenth of those other workers do ({beside:.1%}, where nine in ten of them do at most "
                             f"{top:.1%}): "
                             f"workers right on every task they share look like this, so they may simply be right "
                             f"(DEEM's automatic start does not count them once for being alike). If they are one "
                             f"person under several names, keep one of them in the file.")
            continue
        sentences.append(f"Workers {named} {alike}: copies, or one person under several names? "
                         f"Majority vote and Dawid-Skene count them as independent votes; if they copy, keep one of "
                         f"them in the file.")
    return sentences


def constant_sentence(constant: list, then: str) -> str | None:
    """The sentence naming the workers who gave one label on every answer while the others' answers favour another
    class (:func:`constant_workers`), ending with ``then`` (where such workers are flagged, what to do); None where
    there are none."""
    if not constant:
        return None
    # (the others' answers alone: majority vote counted the worker's own vote and its ties; walkthrough 81)
    # (each name cut to 40 characters, as every other warning cuts them: five of 10,000 made 50,498; attack round 53)
    # (head and tail: names that differ at their end read alike cut after their head; read 53)
    named = "; ".join(f"{middle_cut(str(worker), 40)!r} gave “{middle_cut(str(label), 40)}” on all {n:,} of its answers "
                      f"(the other answers favour another class on {other:,} of those tasks)"
                      for worker, label, n, other in constant[:CONSTANT_NAMED])
    more = (f"; and {counted(len(constant) - CONSTANT_NAMED, 'more such worker')}"
            if len(constant) > CONSTANT_NAMED else "")
    return f"One label for everything: {named}{more}. Such answers say nothing about the items: {then}"


def worker_warnings(data: AnnotationSet, then: str, max_pairwise_workers: int = PAIRWISE_WORKERS) -> list[str]:
    """:func:`copies_sentences` and :func:`constant_sentence` of ``data`` (none with fewer than two classes: then
    every worker agrees with every other); what the command line warns of after a read, as the dashboard's Data and
    Train pages do (walkthrough 118: the command line said neither)."""
    if data.n_classes < 2:
        return []
    sentences = copies_sentences(pairwise_agreement(data, max_workers=max_pairwise_workers), single_label_workers(data),
                                 data)
    constant = constant_sentence(constant_workers(data), then)
    return sentences + ([constant] if constant else [])


def data_checks(data: AnnotationSet, max_pairwise_workers: int = PAIRWISE_WORKERS) -> dict[str, Any]:
    """Every check of a data set's summary, made at once: Krippendorff's ``alpha``, ``per_task`` (how many tasks have
    each number of answers), the class ``balance``, each worker's ``coverage``, the ``pairwise`` agreement of the
    ``max_pairwise_workers`` with the most answers, the ``constant`` and ``contrary`` workers, the workers who gave
    one label on every answer (``single_label``), and the ``seconds`` they took."""
    started = time.perf_counter()
    values: dict[str, Any] = {
        "alpha": krippendorff_alpha(data),
        "per_task": labels_per_task(data).value_counts().sort_index(),
        "balance": class_balance(data),
        "coverage": worker_coverage(data),
        "pairwise": pairwise_agreement(data, max_workers=max_pairwise_workers),
        "constant": constant_workers(data),
        "contrary": contrary_workers(data),
        "single_label": single_label_workers(data),
    }
    values["seconds"] = time.perf_counter() - started
    return values
