"""Dawid-Skene by expectation-maximisation on the answers (sparse), vectorised (numpy + scipy.sparse).

Used to start DEEM from a Dawid-Skene fit (Lemma 1 maps DS parameters one-to-one onto an iRBM), as the
``ds`` aggregator and as a fast reference. crowd-kit's ``DawidSkene`` works on long DataFrames with pandas
group-bys; this one works on the answers of an :class:`~deem_core.data.annotations.AnnotationSet` and
handles soft labels. Missing answers are simply absent: they are left out of the likelihood (the DS
model's own treatment: an absent answer carries no evidence).

With ``V`` the (tasks x workers*K) sparse matrix of the answers (:func:`~deem_core.data.pairs.answer_matrix`:
a one per answer at column ``worker * K + label``, or the answer's K soft probabilities), one EM iteration is
two sparse products, O(answers x K) each:

* E-step: ``log p(x_t, y=m) = log pi_m + (V @ log psi)[t, m]`` with ``log psi`` reshaped to (d*K, K);
* M-step: ``counts = V.T @ posterior`` (d*K, K), plus the smoothing pseudo-count, normalised per column.

Conventions: ``confusion`` (d, K, K) with ``confusion[i, l, m] = P(worker i says l | true class m)``
(rows = given label, columns = true class, as ``psi`` in Lemma 1), ``prior`` (K,).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from deem_core.data.annotations import AnnotationSet
from deem_core.data.pairs import DENSE_PAIR_RATIO, answer_matrix, pair_table, table_values, upper_pairs
from deem_core.model.sizes import within_budget

__all__ = ["DEFAULT_DS_PRIOR", "MAX_DS_PRIOR", "MAX_EXCESS_ANSWER_PAIRS", "MAX_EXCESS_PAIR_WORK", "MAX_EXCESS_WORKERS",
           "CrowdKitDawidSkeneFit", "DawidSkeneFit", "check_dawid_skene_size", "check_ds_prior", "crowdkit_dawid_skene",
           "dawid_skene_posterior", "excess_pairwise_agreement", "excess_sample", "excess_workers",
           "first_appearance_order", "fit_dawid_skene"]


#: the shared prior's default strength where it is used (DEEM's Dawid-Skene start, the ``ds_shared`` method):
#: pseudo-answers per true class, spread as the whole crowd answers that class (``fit_dawid_skene(prior_strength=)``)
DEFAULT_DS_PRIOR = 5.0
#: the largest strength accepted: far beyond it every worker is the crowd's pooled worker anyway, and the pseudo-counts
#: would overflow float64 long before infinity
MAX_DS_PRIOR = 1e6


def check_ds_prior(value: object, name: str = "ds_prior") -> float:
    """``value`` as a prior strength: a real number in [0, MAX_DS_PRIOR]; ValueError otherwise."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if not ok or not np.isfinite(value) or not 0 <= value <= MAX_DS_PRIOR:
        raise ValueError(f"{name} must be a number from 0 to {MAX_DS_PRIOR:,.0f}, got {value!r}")
    return float(value)


@dataclass
class DawidSkeneFit:
    confusion: np.ndarray  # (d, K, K) [i, l, m] = P(X_i = l | Y = m)
    prior: np.ndarray  # (K,)
    posterior: np.ndarray  # (n, K)
    n_iter: int
    log_likelihood: float


def check_dawid_skene_size(data: AnnotationSet, budget_bytes: int | None = None) -> int:
    """Refuse (DataError) a fit that would not fit in memory; returns the estimated bytes otherwise.

    Held at once: the answer matrix and its transpose (~2 x 16 bytes per answer and class with soft labels,
    per answer without), about four (d, K, K) confusion arrays and four (n, K) posterior-sized arrays, in
    float64. ``budget_bytes``: default half the machine's physical memory.
    """
    n, d, k, answers = data.n_tasks, data.n_workers, data.n_classes, data.n_answers
    per_answer = 2 * 16 * (k if data.soft_labels is not None else 1)
    return within_budget(answers * per_answer + 8 * (4 * d * k * k + 4 * n * k), budget_bytes, lambda need, have: (
        f"{data.source}: Dawid-Skene on {n:,} tasks x {d:,} workers x {k:,} classes would need about {need} but {have} "
        f"is available; check that the label column holds class labels (not ids or free text), or use fewer classes"))


def dawid_skene_posterior(data: AnnotationSet, confusion: np.ndarray, prior: np.ndarray,
                          votes=None) -> tuple[np.ndarray, float]:
    """E-step: p(y | x) (n, K) and the log-likelihood of the answers (soft labels when the set has them).
    ``votes``: the answer matrix of ``data`` when already built."""
    votes = answer_matrix(data) if votes is None else votes
    d, k = confusion.shape[0], confusion.shape[-1]
    log_conf = np.clip(confusion, 1e-12, None)  # (one (d, K, K) copy: the log taken in place)
    log_conf = np.log(log_conf, out=log_conf).reshape(d * k, k)
    # log p(x, y=m) = log pi_m + sum_{i,l} v_il log psi_ilm  -> one sparse matrix product
    joint = np.asarray(votes @ log_conf)
    joint += np.log(np.clip(prior, 1e-12, None))
    # normalised in place (scipy's logsumexp and exp(joint - norm) made about eight (n, K) arrays at once: 6.2 GB
    # on 60,000 tasks x 1,000 classes; two here)
    top = joint.max(axis=1, keepdims=True)
    joint -= top
    np.exp(joint, out=joint)
    total = joint.sum(axis=1, keepdims=True)
    joint /= total
    return joint, float((np.log(total) + top).sum())


def fit_dawid_skene(data: AnnotationSet, max_iter: int = 100, tol: float = 1e-4,
                    smoothing: float = 0.01, worker_weights: np.ndarray | None = None,
                    prior_strength: float = 0.0) -> DawidSkeneFit:
    """Fit DS by EM from a (soft) majority-vote start, on the set's answers (its soft labels when present).

    smoothing: pseudo-count added to every confusion cell and prior class (keeps logs finite).
    prior_strength: a shared prior on the workers' confusion matrices (0 = plain maximum likelihood). Every
    worker's column ``m`` gets ``prior_strength`` pseudo-answers distributed as the whole crowd's answers on
    class ``m`` (the pooled confusion of the current M-step: an empirical-Bayes Dirichlet prior, the
    maximum a posteriori M-step). A worker with a handful of answers is then read as a typical worker of
    this crowd rather than as perfectly right or wrong on them, while a worker with hundreds of answers
    keeps their own estimate.
    Stops when the log-likelihood per annotation improves by less than ``tol`` nats in one iteration
    (crowd-kit stops on a similar per-annotation criterion, 1e-5 on its ELBO). A task without answers
    gets the prior as its posterior. The size is checked before anything is allocated
    (:func:`check_dawid_skene_size`).

    worker_weights: (d,) weight of every worker's answers in the posterior (and in the majority-vote start):
    1 = plain Dawid-Skene, 1/size for the members of a dependence cluster (the cluster counts once,
    ``methods/clusters.py``), 0 = the worker is left out of the posterior (its confusion matrix is still
    fitted against the others' posterior).
    """
    if not isinstance(data, AnnotationSet):
        raise TypeError(f"fit_dawid_skene takes an AnnotationSet, got {type(data).__name__}")
    check_dawid_skene_size(data)
    prior_strength = check_ds_prior(prior_strength, "prior_strength")
    k, d = data.n_classes, data.n_workers
    votes = answer_matrix(data)  # (n, d*K)
    votes_t = votes.T.tocsr()  # (d*K, n): the M-step's product reads rows of this
    n_answers = max(float(votes.sum()), 1.0)
    weighted = votes
    if worker_weights is not None:
        weighted = (votes @ sp.diags(np.repeat(np.asarray(worker_weights, dtype=np.float64), k))).tocsr()
    # start from majority-vote *shares* (as crowd-kit does): a hard argmax start breaks ties arbitrarily
    # and, on mixture-of-experts data, lands EM in a worse optimum (measured on ampdata: 0.865 vs 0.934)
    shares = data.class_votes()  # (n, K)
    if worker_weights is not None:  # the weighted vote per class
        shares = (weighted @ sp.kron(np.ones((d, 1)), sp.eye(k), format="csr")).toarray()
    totals = shares.sum(axis=1, keepdims=True)
    posterior = np.where(totals > 0, shares / np.where(totals > 0, totals, 1.0), 1.0 / k)
    previous = -np.inf
    log_lik = previous
    iteration = 0
    for iteration in range(1, max_iter + 1):
        # M-step: counts[i, l, m] = sum_t v_til p_tm; normalised in place into the confusions (the previous ones
        # let go first): one (d, K, K) array a step where there were four (attack round 67: 5,441 workers x 100
        # classes took the Dawid-Skene start to 3.95 GB)
        confusion = None
        counts = np.asarray(votes_t @ posterior).reshape(d, k, k)
        if prior_strength > 0:
            pooled = counts.sum(axis=0)  # (K, K) the crowd's answers l on class m
            counts += prior_strength * pooled / np.clip(pooled.sum(axis=0, keepdims=True), 1e-12, None)
        counts += smoothing
        counts /= counts.sum(axis=1, keepdims=True)
        confusion = counts
        prior = posterior.sum(axis=0) + smoothing
        prior = prior / prior.sum()
        posterior, log_lik = dawid_skene_posterior(data, confusion, prior, votes=weighted)
        if abs(log_lik - previous) / n_answers < tol:
            break
        previous = log_lik
    return DawidSkeneFit(confusion=confusion, prior=prior, posterior=posterior, n_iter=iteration,
                         log_likelihood=log_lik)


#: pairs of answers on one task (ordered, each answer with itself too: ``sum_t a_t^2``) the statistic below reads at
#: most where its sparse products hold an entry per pair of workers sharing a task; past it, a random sample of the
#: tasks (2,000 tasks of 250 answers by 50,000 workers, 1.25e8 pairs, took a probe and the job to 3.9 GB; attack
#: round 66)
MAX_EXCESS_ANSWER_PAIRS = 4_000_000
#: the same pairs times the sparse products the statistic makes (2K - 1): its time (40 classes, 28.7 s unstoppable
#: before anything trained; attack round 66)
MAX_EXCESS_PAIR_WORK = 40_000_000
#: workers the statistic reads at most, those with the most answers: on the dense path its tables are workers x
#: workers (150 tasks answered by 2,000 of 11,000 workers each held 968 MB tables, several at once: a 4 MB upload took
#: the Train page's probe to 4.3 GB; attack round 67)
MAX_EXCESS_WORKERS = 2_000
#: multiply-adds the dense path may make (tasks x workers^2 x its 2K - 1 products); past it, a sample of the tasks
MAX_EXCESS_DENSE_WORK = 20_000_000_000
#: bytes of the (pairs x classes) blocks of the expected agreement at a time
EXCESS_BLOCK_BYTES = 32 << 20


def excess_workers(data: AnnotationSet, min_common: int = 20) -> np.ndarray:
    """The workers :func:`excess_pairwise_agreement` reads (bool, (d,)): those with at least ``min_common`` answers (no
    pair of the others can count), at most :data:`MAX_EXCESS_WORKERS` of them, those with the most answers."""
    counts = np.bincount(data.worker_codes, minlength=data.n_workers)
    eligible = counts >= min_common
    if eligible.sum() > MAX_EXCESS_WORKERS:
        top = np.argsort(-counts, kind="stable")[:MAX_EXCESS_WORKERS]
        eligible = np.zeros(data.n_workers, dtype=bool)
        eligible[top] = True
    return eligible


def excess_sample(data: AnnotationSet, keep_workers: np.ndarray, k: int, seed: int = 0) -> np.ndarray | None:
    """The tasks :func:`excess_pairwise_agreement` reads, given the answers of ``keep_workers`` (bool, (d,)): on the
    sparse path, within :data:`MAX_EXCESS_ANSWER_PAIRS` pairs of answers and :data:`MAX_EXCESS_PAIR_WORK` pairs times
    the ``2k - 1`` products; on the dense path, within :data:`MAX_EXCESS_DENSE_WORK` multiply-adds. A bool (n,) mask
    of tasks taken in a random order (``seed``) up to the bound; None (every task) where all fit."""
    kept = keep_workers[data.worker_codes]
    per_task = np.bincount(data.task_codes[kept], minlength=data.n_tasks).astype(np.float64)
    products = max(1, 2 * k - 1)
    p = int(keep_workers.sum())
    answered = per_task > 0
    # the path pair_table takes on these answers (``pairs._use_dense``), from the counts alone
    if (per_task ** 2).sum() > DENSE_PAIR_RATIO * float(answered.sum()) * p * p:
        # (BLAS on chunks of tasks: time tasks x workers^2 per product; memory the workers' tables, bounded above)
        cost = answered * float(p) * p * products
        budget = float(MAX_EXCESS_DENSE_WORK)
    else:
        cost = per_task ** 2
        budget = min(float(MAX_EXCESS_ANSWER_PAIRS), MAX_EXCESS_PAIR_WORK / products)
    if cost.sum() <= budget:
        return None
    order = np.random.default_rng(seed).permutation(data.n_tasks)
    taken = np.cumsum(cost[order]) <= budget
    mask = np.zeros(data.n_tasks, dtype=bool)
    mask[order[taken]] = True
    return mask


def _pair_matrix(data: AnnotationSet, answers: np.ndarray, workers: np.ndarray
                 ) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(tasks answered x workers kept) CSR of the ``answers`` (bool, (N,)) of ``workers`` (bool, (d,)), rows and
    columns renumbered (a table of every task and worker held empty columns of the others: 11,000 x 11,000 for 2,000
    read; attack round 67); with its rows' task codes, its columns' worker codes, and each task's row and each
    worker's column (-1 where not read)."""
    rows = np.unique(data.task_codes[answers])
    columns = np.flatnonzero(workers)
    row_of = np.full(data.n_tasks, -1, dtype=np.int64)
    row_of[rows] = np.arange(len(rows))
    column_of = np.full(data.n_workers, -1, dtype=np.int64)
    column_of[columns] = np.arange(len(columns))
    matrix = sp.csr_matrix((np.ones(int(answers.sum())), (row_of[data.task_codes[answers]],
                                                           column_of[data.worker_codes[answers]])),
                           shape=(len(rows), len(columns)))
    return matrix, rows, columns, row_of, column_of


def excess_pairwise_agreement(data: AnnotationSet, fit: DawidSkeneFit, min_common: int = 20, seed: int = 0) -> float:
    """How much more workers agree with each other than a fitted Dawid-Skene model predicts.

    For every pair of workers with at least ``min_common`` common tasks: (observed agreements - agreements
    expected under DS given each task's posterior) / common tasks; returns the mean over pairs (0.0 when no
    pair qualifies). DS assumes workers are independent given the true class, so a clearly positive value
    means dependent workers (copies of one classifier, shared mistakes), which DS cannot explain.
    Measured: duck 0.012, dog 0.014, condind -0.000, ampdata -0.001 (independent workers); tree3k 0.041,
    digits 0.042, digits_experts 0.051 (dependent ensembles).

    Hard labels are compared (soft labels count by their argmax). Every sum runs over the tasks two
    workers share, as sparse products (:func:`~deem_core.data.pairs.pair_table`): the cost grows with the
    pairs of answers on a common task, and only pairs that share a task are ever held. The workers read are
    :func:`excess_workers`'s; where the work passes the bounds of :func:`excess_sample`, the statistic is read on a
    random sample of the tasks (``seed``) within them.
    """
    k = fit.confusion.shape[-1]
    eligible = excess_workers(data, min_common)
    if eligible.sum() < 2:
        return 0.0
    tasks = excess_sample(data, eligible, k, seed)
    chosen = eligible[data.worker_codes] if tasks is None else eligible[data.worker_codes] & tasks[data.task_codes]
    observed, task_rows, worker_columns, row_of, column_of = _pair_matrix(data, chosen, eligible)  # (n', d')
    common = pair_table(observed, to_dense=False)
    rows, cols = upper_pairs(common)
    n_common = table_values(common, rows, cols)
    del common
    keep = n_common >= min_common
    if not keep.any():
        return 0.0
    rows, cols, n_common = rows[keep], cols[keep], n_common[keep]
    labels = data.label_codes[chosen]
    task_of = row_of[data.task_codes[chosen]]
    worker_of = column_of[data.worker_codes[chosen]]
    shape = observed.shape
    posterior = fit.posterior[task_rows]
    first, second = worker_columns[rows], worker_columns[cols]  # the pairs' workers in the fit's order (no copy of it)
    agree_observed = np.zeros(len(rows))
    agree_expected = np.zeros(len(rows))
    share_left = n_common.copy()  # common tasks not yet weighted by a class posterior (they sum to 1)
    block = max(1, EXCESS_BLOCK_BYTES // (8 * k))  # pairs at a time in the (pairs x K) products
    for c in range(k):
        given = labels == c
        same = pair_table(sp.csr_matrix((np.ones(int(given.sum())), (task_of[given], worker_of[given])), shape=shape),
                          to_dense=False)
        agree_observed += table_values(same, rows, cols)
        del same
        # P(i, j agree | y = c) for the kept pairs, weighted by the tasks' posterior of class c; the last
        # class's weights are what the others leave (one sparse product fewer)
        given_class = np.empty(len(rows))
        for start in range(0, len(rows), block):
            part = slice(start, start + block)
            given_class[part] = np.einsum("pl,pl->p", fit.confusion[first[part], :, c],
                                          fit.confusion[second[part], :, c])
        if c < k - 1:
            weighted = table_values(pair_table(observed, row_weights=posterior[:, c], to_dense=False), rows, cols)
            share_left -= weighted
        else:
            weighted = share_left
        agree_expected += given_class * weighted
    excess = (agree_observed - agree_expected) / n_common
    return float(excess.mean())


# ---------------------------------------------------------------------------------------------------------
# crowd-kit's DawidSkene, reproduced on the answers
# ---------------------------------------------------------------------------------------------------------
#: crowd-kit's floor for probabilities (``_EPS`` in crowdkit.aggregation.classification.dawid_skene)
CROWDKIT_EPS = 1e-10


@dataclass
class CrowdKitDawidSkeneFit:
    """crowd-kit's DS result in the set's class codes. ``posterior`` (n, K): NaN rows for tasks without answers,
    0 for classes nobody gave (crowd-kit has no column for them); crowd-kit floors it at 1e-10, so rows sum
    to 1 only up to that. ``errors`` (d, K, K) ``[w, l, m] = P(worker w says l | true m)``, 0 where the
    worker never said l (``present`` (d, K) False: crowd-kit has no row there). ``labels`` (n,) codes, -1 for
    tasks without answers; ties go to the class that appears first in the answers (crowd-kit's column order)."""

    posterior: np.ndarray
    prior: np.ndarray
    errors: np.ndarray
    present: np.ndarray
    labels: np.ndarray
    n_iter: int
    loss_history: list[float]


def first_appearance_order(data: AnnotationSet) -> np.ndarray:
    """Class codes that occur among the answers, in order of their first answer (CSR order): the column order
    crowd-kit's majority vote and Dawid-Skene give their tables when fitted on ``data.to_long()``."""
    present, first = np.unique(data.label_codes, return_index=True)
    return present[np.argsort(first, kind="stable")]


def tie_ranks(data: AnnotationSet) -> np.ndarray:
    """(K,) each class code's place when majority vote breaks a tie (0 first): crowd-kit's order, the class answered
    first wins (:func:`first_appearance_order`); classes nobody answered come last, by code."""
    order = first_appearance_order(data)
    rest = np.setdiff1d(np.arange(data.n_classes), order)
    ranks = np.empty(data.n_classes, dtype=np.int64)
    ranks[np.concatenate([order, rest]).astype(np.int64)] = np.arange(data.n_classes)
    return ranks


def crowdkit_majority_vote(data: AnnotationSet) -> np.ndarray:
    """(n_tasks,) class codes of majority vote as the Majority vote method gives them (crowd-kit's: a tie goes to the
    tied class answered first, :func:`tie_ranks`; -1 for a task without answers), from the (task, class) pairs that
    occur (no dense tasks x classes table)."""
    from deem_core.data.annotations import task_class_counts  # noqa: PLC0415

    out = np.full(data.n_tasks, -1, dtype=np.int64)
    if not data.n_answers:
        return out
    task, cls, count = task_class_counts(data)
    order = np.lexsort((tie_ranks(data)[cls], -count, task))  # each task's winner first
    first = order[np.r_[True, task[order][1:] != task[order][:-1]]]
    out[task[first]] = cls[first]
    return out


def crowdkit_dawid_skene(data: AnnotationSet, n_iter: int = 100, tol: float = 1e-5) -> CrowdKitDawidSkeneFit:
    """crowd-kit 1.4's ``DawidSkene(n_iter, tol).fit(data.to_long())``, computed on the answers.

    The same steps and floors as crowd-kit: majority-vote shares as the start, ``priors = mean posterior``,
    M-step counts floored at 1e-10 on the (worker, label) rows that occur and normalised per worker and true
    class, E-step in log2, the evidence lower bound per answer (crowd-kit adds the log-prior once per answer)
    as the stopping rule (``new - old < tol``). Each step is a sparse product or a bincount over the answers
    instead of pandas joins and group-bys: O(answers x K) time, a few (answers,) arrays of memory. Hard labels
    only (crowd-kit has no soft labels). Results equal crowd-kit's to ~1e-12 (tests/test_sparse_data.py).
    """
    check_dawid_skene_size(data)
    n, d, k = data.n_tasks, data.n_workers, data.n_classes
    order = first_appearance_order(data)  # crowd-kit's columns, as data codes
    kk = len(order)
    column = np.full(k, -1, dtype=np.int64)
    column[order] = np.arange(kk)
    per_task = data.answers_per_task()
    answered = np.flatnonzero(per_task > 0)
    row = np.full(n, -1, dtype=np.int64)
    row[answered] = np.arange(len(answered))
    t, cell = row[data.task_codes], data.worker_codes * kk + column[data.label_codes]
    n_rows, n_answers = len(answered), data.n_answers
    votes = sp.csr_matrix((np.ones(n_answers), (t, cell)), shape=(n_rows, d * kk))  # (answered tasks, d*K')
    votes_t = votes.T.tocsr()
    present = np.bincount(cell, minlength=d * kk).reshape(d, kk) > 0
    weight = per_task[answered].astype(np.float64)  # answers per task: the prior counts once per answer

    def m_step(probas: np.ndarray) -> np.ndarray:
        errors = np.asarray(votes_t @ probas).reshape(d, kk, kk)
        errors = np.where(present[:, :, None], np.maximum(errors, CROWDKIT_EPS), 0.0)
        with np.errstate(invalid="ignore"):  # a worker without answers here: 0/0, masked out before use (crowd-kit)
            return errors / errors.sum(axis=1, keepdims=True)

    def e_step(prior: np.ndarray, errors: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            log_errors = np.where(present[:, :, None], np.log2(errors), 0.0).reshape(d * kk, kk)
        # in place, in crowd-kit's order of operations (each (n, K) temporary was one more copy at once)
        joint = np.asarray(votes @ log_errors)
        joint += np.log2(np.maximum(prior, CROWDKIT_EPS))
        joint -= joint.max(axis=1, keepdims=True)
        np.exp2(joint, out=joint)
        joint /= joint.sum(axis=1, keepdims=True)
        return joint

    def lower_bound(probas: np.ndarray, prior: np.ndarray, errors: np.ndarray) -> tuple[float, np.ndarray]:
        with np.errstate(divide="ignore"):
            log_errors = np.where(present[:, :, None], np.log(errors), 0.0).reshape(d * kk, kk)
        prior = np.maximum(prior, CROWDKIT_EPS)
        evidence = np.asarray(votes @ log_errors)
        evidence *= probas
        joint = float(evidence.sum() + (np.log(prior) * (weight @ probas)).sum())
        del evidence
        floored = np.maximum(probas, CROWDKIT_EPS)
        entropy = np.log(floored)
        entropy *= floored
        return joint - float(entropy.sum()), floored

    shares = np.bincount(t * kk + column[data.label_codes], minlength=n_rows * kk).reshape(n_rows, kk)
    probas = shares / shares.sum(axis=1, keepdims=True)  # majority-vote shares
    prior = probas.mean(axis=0)
    errors = m_step(probas)
    loss, history, iteration = -np.inf, [], 0
    for iteration in range(1, int(n_iter) + 1):
        probas = e_step(prior, errors)
        prior = probas.mean(axis=0)
        errors = m_step(probas)
        bound, probas = lower_bound(probas, prior, errors)
        prior = np.maximum(prior, CROWDKIT_EPS)
        new_loss = bound / n_answers
        history.append(new_loss)
        if new_loss - loss < tol:
            break
        loss = new_loss
    posterior = np.full((n, k), np.nan)
    posterior[answered] = 0.0
    posterior[np.ix_(answered, order)] = probas
    full_prior = np.zeros(k)
    full_prior[order] = prior
    full_errors = np.zeros((d, k, k))
    full_errors[:, order[:, None], order[None, :]] = errors
    full_present = np.zeros((d, k), dtype=bool)
    full_present[:, order] = present
    labels = np.full(n, -1, dtype=np.int64)
    labels[answered] = order[probas.argmax(axis=1)]
    return CrowdKitDawidSkeneFit(posterior=posterior, prior=full_prior, errors=full_errors, present=full_present,
                                 labels=labels, n_iter=iteration, loss_history=history)
