"""Per-worker quality: agreement with DEEM, label counts, confusion matrices and a spammer flag.

Confusion matrices use the repository's layout ``[l, m] = P(X = l | Y = m)`` (rows = the label the
worker gave, columns = the true class; every column sums to 1):

* ``irbm``: Lemma 1 read off the iRBM, ``softmax_l(a_i^l + w_i^{lm})`` in class order (after the run's
  class map). For ``n_layers = 0`` this *is* the fitted Dawid-Skene confusion matrix of the raw labels;
  with layers it describes the iRBM's view of the last layer's output, not the raw labels.
* ``empirical``: the worker's labels counted against DEEM's labels (column m: tasks DEEM labels m that
  the worker answered), normalised per column; NaN columns where there is no such task.
* ``gold`` (when gold labels are given): the same against the gold labels.

Spammer rule
------------
Raykar & Yu (JMLR 2012) call a worker a spammer when its answer does not depend on the true class,
i.e. all columns of its confusion matrix are equal (a random guesser, or one who always answers the same).
Their score ``S = 1 / (K (K-1)) * sum_{m < m'} ||psi[:, m] - psi[:, m']||^2`` is 0 for a spammer and 1 for
a perfect worker. We compute it on the *empirical* matrix against DEEM's labels, with each squared
distance corrected for the finite-sample variance of the estimated columns (subtracting
``sum_l p(1-p)/(n_m - 1)`` for each column; the mean is clipped at 0) so that a random guesser with few labels is not
pushed above 0 by noise, and averaged over the class pairs that DEEM actually uses. A worker is flagged

* ``too few labels`` when it answered fewer than ``min_labels`` tasks (default ``5 * K``);
* ``likely spammer`` when its score is within the noise of a random guesser's with as many labels,
  ``spammer_score < SPAMMER_NOISE / n_labels``, and below ``spammer_threshold`` (a worker right on 57% of 46 answers
  of 4 classes, score 0.109, was called a likely spammer beside a "weak" threshold of 0.1; walkthrough 58) (``n * S`` of a guesser answering uniformly at random is below 3.5-6.8
  in 99% of 1,000 draws for K = 2-10 and n = 30-3,000; 7 is used), and its Cohen's kappa against the labels within
  :data:`SPAMMER_KAPPA_Z` standard errors of a guesser's 0, ``sqrt(chance / (n (1 - chance)))`` (the score squares
  the chance-corrected accuracy and loses the evidence of a fair worker: one right on 47% of 80 answers of 4 classes,
  kappa 0.31, about 5 standard errors, was called a likely spammer, "no different from random guesses";
  walkthrough 72);
* ``weak`` when it is above that noise but ``spammer_score < spammer_threshold`` (default 0.1): for a worker
  equally good on every class the score is its chance-corrected accuracy squared, ``((K a - 1) / (K - 1))^2``, so
  0.1 is an accuracy ``a`` below 0.66 for K = 2 or 0.54 for K = 3: informative, but little (this flag was "likely
  spammer" before, which a 54% worker on 3 classes is not); or when its kappa, that chance-corrected accuracy, is
  below ``sqrt(spammer_threshold)`` (the score, a sum of squares of estimated confusions, scatters on a hundred
  labels: a worker of kappa 0.17 read "ok" beside one of kappa 0.33 read "weak"; walkthrough 73);
* ``worse than chance`` when it agrees with DEEM's labels less often than a guesser would in all but a one-sided
  ``norm.sf(CONTRARY_KAPPA_Z)`` (0.13%) of draws, read exactly from the binomial of its labels at its chance
  agreement (it systematically disagrees, e.g. a permuted labelling); its kappa at or below 0 short of that, and its
  spammer score below the threshold, ``likely spammer`` (a random guesser of kappa -0.053 on 180 labels read "worse
  than chance"; walkthrough 102); its score at or above it, ``no better than chance`` (its answers are informative
  but do not agree with the labels: a permuted labelling of 55 answers of 10 classes read "weak", "better than
  random"; read 53);
* ``gold disagrees`` (gold labels given) when, on the gold tasks it answered, it agrees with DEEM's labels more often
  than with the gold labels by more than :data:`GOLD_GAP` and by more than :data:`GOLD_GAP_Z` standard errors of the
  paired difference: DEEM's labels follow this worker where the gold labels do not (walkthrough 57: three copying
  workers agreed with DEEM on 96-100% of their answers and rated "ok", right on 59-62% by the gold labels: gaps of
  0.35-0.41; on the bundled sets with their truth the largest gap of a worker with enough answers is 0.19, on dog,
  where DEEM is right on 84%, and below 0.06 on condind, tree3k, ampdata and the digits ensembles);
* ``ok`` otherwise.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from deem_core.analysis.agreement import PARTNERS_WORDS, cluster_partners, dependent_with
from deem_core.analysis.selection import cluster_texts, none_found, safety_kept_text
from deem_core.analysis.scoring import accuracy_intervals
from deem_core.data.annotations import AnnotationSet
from deem_core.data.text import counted, names_text, natural_positions
from deem_core.analysis.diagnostics._common import (GOLD_SOURCE, consensus_posterior, gold_codes, prepare,
                                                   returned_reference)

__all__ = ["QualityResult", "labels_followed", "empirical_confusion", "irbm_confusion", "worker_quality", "spammer_score",
           "swapped_classes",
           "SPAMMER_NOISE", "SPAMMER_KAPPA_Z", "GOLD_GAP", "GOLD_GAP_Z", "FOLLOWED_NOTE", "followed_clusters"]

DEFAULT_SPAMMER_THRESHOLD = 0.1
#: the least share of a worker's gold-task answers by which its agreement with DEEM's labels must exceed its agreement
#: with the gold labels for the flag "gold disagrees" (and GOLD_GAP_Z standard errors of that paired difference)
GOLD_GAP = 0.25
GOLD_GAP_Z = 3.0
#: n_labels * spammer_score of a random guesser stays below this in more than 99% of draws (module docstring)
SPAMMER_NOISE = 7.0
#: ... and its kappa against the labels below this many of a guesser's standard errors (one-sided 5%: a fair worker
#: called a likely spammer misleads more than a guesser called weak)
SPAMMER_KAPPA_Z = 1.645
#: "worse than chance" needs a kappa this many of a guesser's standard errors below 0 (one-sided 0.13%: among 50
#: guessers one would be called worse than chance at 1.645; a random guesser's -0.053 on 180 labels was called so at 0
#: standard errors, walkthrough 102); at or below 0 short of it, "likely spammer"
CONTRARY_KAPPA_Z = 3.0


#: what makes a worker strong on a class (against the model's labels): at least STRONG_MIN_TASKS tasks of the class
#: answered, at least STRONG_RECALL of them given that class, and its answers of that class right at least
#: STRONG_LIFT times as often as the class's share of its tasks (a worker who always answers one class is right on
#: all of its tasks and on no more than the class's share of its answers)
STRONG_MIN_TASKS = 10
STRONG_RECALL = 0.9
STRONG_LIFT = 2.0
#: how far below STRONG_RECALL its other classes together must be for a worker to be said strong on some classes
STRONG_GAP = 0.3


def strong_classes(counts: np.ndarray, classes: Any) -> list[str]:
    """Per worker, the classes it is strong on (:data:`STRONG_RECALL`, :data:`STRONG_LIFT`, :data:`STRONG_MIN_TASKS`)
    where it is right on its other classes together at most STRONG_RECALL - :data:`STRONG_GAP` of the time (an
    expert on some classes), as text ("airplane, bird"); "" otherwise, whatever its flag (an expert of kappa 0.33 read
    "ok", and its strength went unsaid; walkthrough 125). A
    classifier that is an expert on three of eight classes (App. I's construction) reads "weak" over all its answers
    while right on 94-98% of those classes' tasks, and nothing on the quality tab said so (walkthrough 124).
    ``counts``: :func:`empirical_confusion`'s (d, K, K) ``[worker, given, reference]``."""
    counts = np.asarray(counts, dtype=np.float64)
    per_class = counts.sum(axis=1)  # (d, K) its tasks of each reference class
    given = counts.sum(axis=2)  # (d, K) its answers of each class
    right = np.diagonal(counts, axis1=1, axis2=2)  # (d, K)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = right / per_class
        precision = right / given
        share = per_class / per_class.sum(axis=1, keepdims=True)
    strong = (per_class >= STRONG_MIN_TASKS) & (recall >= STRONG_RECALL) & (precision >= STRONG_LIFT * share)
    # an expert's profile: strong on some classes, far from it on the others together (a worker good on every class
    # clears the threshold on some by chance: the digits ensemble's classifiers, 0.8-0.9 elsewhere, are no experts)
    with np.errstate(invalid="ignore", divide="ignore"):
        elsewhere = np.where(strong, 0.0, right).sum(axis=1) / np.where(strong, 0.0, per_class).sum(axis=1)
    expert = strong.any(axis=1) & (elsewhere <= STRONG_RECALL - STRONG_GAP)
    names = [str(c) for c in classes]
    return [", ".join(names[m] for m in np.flatnonzero(row)) if expert[i] else "" for i, row in enumerate(strong)]


def swapped_classes(counts: np.ndarray, classes: Any) -> list[str]:
    """Per worker, the classes it gives in place of another, as text ("dog for cat (93% of 41), cat for dog (100% of
    17)"); "" where none. A worker gives ``l`` for ``m`` when, on at least :data:`STRONG_MIN_TASKS` tasks of reference
    class ``m``, it answers ``l`` on most of them, more often than ``m`` beyond a fair coin between the two in all but
    ``norm.sf(CONTRARY_KAPPA_Z)`` (0.13%) of draws (binomial), and the workers together give ``m`` more often than
    ``l`` on those tasks (else the reference's class ``m`` is the crowd's ``l`` by another name), and it gives ``l`` on
    the tasks of ``m`` more often than on its tasks of the other classes, in all but that share of draws (a worker who
    answers one class everywhere, or guesses, gives it on the tasks of ``m`` as often as elsewhere). Two workers who swap
    cat and dog, right on every other class (30% of their answers right, where "cat" alone would be 50%), read "weak",
    "strong on bird" (walkthrough 128). ``counts``: :func:`empirical_confusion`'s (d, K, K)
    ``[worker, given, reference]``."""
    counts = np.asarray(counts, dtype=np.int64)
    d, k, _ = counts.shape
    names = [str(c) for c in classes]
    right = np.diagonal(counts, axis1=1, axis2=2)  # (d, K): [worker, m] its answers m on tasks of m
    per_class = counts.sum(axis=1)  # (d, K) its tasks of each reference class
    pooled = counts.sum(axis=0)  # (K, K) every worker's [given, reference]
    crowd_right = np.diagonal(pooled)
    out = [""] * d
    # the candidates: a worker's most given other class on a reference class, more often than the class itself
    instead = counts.copy()
    instead[:, np.arange(k), np.arange(k)] = -1
    other = instead.argmax(axis=1)  # (d, K): [worker, m] the other class it gives most on tasks of m
    given_other = np.take_along_axis(counts, other[:, None, :], axis=1)[:, 0, :]  # (d, K)
    level = stats.norm.sf(CONTRARY_KAPPA_Z)
    # on most of m's tasks (the digits ensemble's weak trees give 2 on a third of the 8s, more than 8 itself: a
    # confusion, not a class given in place of another)
    candidates = (per_class >= STRONG_MIN_TASKS) & (given_other > right) & (2 * given_other > per_class)
    for w, m in zip(*np.nonzero(candidates)):
        l = int(other[w, m])
        c_lm, c_mm = int(given_other[w, m]), int(right[w, m])
        if crowd_right[m] <= pooled[l, m]:
            continue  # (the crowd gives l here too)
        if stats.binom.sf(c_lm - 1, c_lm + c_mm, 0.5) >= level:
            continue
        # and l given for m in particular: more often than on its tasks of the other classes (a worker who gives one
        # class everywhere, or guesses, gives it on m's tasks as often as elsewhere: no swap)
        elsewhere = (counts[w, l].sum() - c_lm) / max(1, per_class[w].sum() - per_class[w, m])
        if stats.binom.sf(c_lm - 1, int(per_class[w, m]), min(1.0, elsewhere)) >= level:
            continue
        share = c_lm / per_class[w, m]
        out[w] += (", " if out[w] else "") + f"{names[l]} for {names[m]} ({share:.0%} of {int(per_class[w, m]):,})"
    return out


def empirical_confusion(data: AnnotationSet, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts and column-normalised confusion of every worker against reference labels.

    data: the answers; reference: (n_tasks,) codes, -1 = unknown. Returns ``counts`` (d, K, K) int64
    ``[i, l, m]`` = tasks with worker i answering l and reference m, and ``psi`` (d, K, K) float64, columns
    summing to 1 (NaN where the column has no count). One ``bincount`` over the answers.
    """
    reference = np.asarray(reference)
    d, k = data.n_workers, data.n_classes
    ref = reference[data.task_codes]
    known = ref >= 0
    flat = (data.worker_codes[known] * k + data.label_codes[known]) * k + ref[known]
    counts = np.bincount(flat, minlength=d * k * k).reshape(d, k, k).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        psi = counts / counts.sum(axis=1, keepdims=True)
    return counts, psi


def spammer_score(psi: np.ndarray, column_counts: np.ndarray | None = None) -> np.ndarray:
    """Raykar-Yu spammer score of confusion matrices (module docstring).

    psi: (..., K, K) ``[l, m]`` columns = true classes (NaN columns are skipped); column_counts: optional
    (..., K) observations behind each column, used for the finite-sample correction. Returns (...): 0 for
    a spammer, 1 for a perfect worker, NaN when fewer than two columns are usable.
    """
    psi = np.asarray(psi, dtype=np.float64)
    k = psi.shape[-1]
    cols = np.moveaxis(psi, -1, -2)  # (..., m, l): one row per true class
    # squared distances between columns from their Gram matrix: |a|^2 + |b|^2 - 2 a.b, (..., K, K) — the
    # difference of every pair, (..., K, K, K), took workers x K^3 x 8 bytes (20 GB for 20 workers x 500 classes)
    missing = np.isnan(cols).any(axis=-1)  # (..., K) a column with a NaN has no distance (as its sum had)
    filled = np.where(missing[..., None], 0.0, cols)
    norms = (filled**2).sum(axis=-1)
    diff = np.maximum(norms[..., :, None] + norms[..., None, :] - 2.0 * (filled @ np.swapaxes(filled, -1, -2)), 0.0)
    diff[missing[..., :, None] | missing[..., None, :]] = np.nan
    if column_counts is not None:
        counts = np.asarray(column_counts, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            var = (cols * (1 - cols)).sum(axis=-1) / (counts - 1)  # (..., K) variance of each column
        var = np.where(counts > 1, var, np.nan)
        diff = diff - var[..., :, None] - var[..., None, :]
    upper = np.triu(np.ones((k, k), dtype=bool), 1)
    pairs = diff[..., upper]  # (..., K(K-1)/2)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows (fewer than 2 usable classes) -> NaN
        score = np.nanmean(np.where(np.isfinite(pairs), pairs, np.nan), axis=-1) / 2.0
    return np.maximum(score, 0.0) if column_counts is not None else score


#: a dependence cluster whose members agree with the model's labels on at least this share of their answers, and the
#: other workers on at least :data:`FOLLOW_GAP` less, is said to be followed by the labels (:data:`FOLLOWED_NOTE`)
FOLLOW_AGREEMENT = 0.95
FOLLOW_GAP = 0.15
#: how the note saying so begins (the page shows it as a warning above the others)
FOLLOWED_NOTE = "the labels follow one dependence cluster"


#: the dependence clusters a note lists one by one (the rest counted)
GROUPS_LISTED = 10


def followed_clusters(found: dict, workers: list, agree: np.ndarray, n_labels: np.ndarray) -> list[tuple[list, float,
                                                                                                          float]]:
    """The dependence clusters of ``found`` (a ``DependenceClusters.summary()``) that the labels follow: (members,
    their agreement with the labels, the other workers'), agreement pooled over answers. A model trained from a start
    set by hand on an ensemble with four copies of one weak classifier gave the copies' labels (69.9% where the copies'
    group counted once gave 95.5%): the mutual information within those labels read ~0 for the copies, the importance
    ranked them first and the quality table called three good classifiers weak (walkthrough 70)."""
    index = {str(w): i for i, w in enumerate(workers)}
    out = []
    total_agree, total_n = float(np.nansum(agree)), float(np.nansum(n_labels))
    for cluster in found.get("clusters") or []:
        rows = [index[str(w)] for w in cluster.get("workers") or [] if str(w) in index]
        if len(rows) < 2:
            continue
        inside_n = float(n_labels[rows].sum())
        outside_n = total_n - inside_n
        if inside_n <= 0 or outside_n <= 0:
            continue
        inside = float(agree[rows].sum()) / inside_n
        outside = (total_agree - float(agree[rows].sum())) / outside_n
        if inside >= FOLLOW_AGREEMENT and outside <= inside - FOLLOW_GAP:
            out.append(([workers[i] for i in rows], inside, outside))
    return out


def labels_followed(found: dict, data: AnnotationSet, labels: np.ndarray) -> list[tuple[list, float, float]]:
    """:func:`followed_clusters` of the class codes ``labels`` (n,) on ``data``: each worker's answers equal to their
    task's label, counted per worker; [] when ``found`` holds no cluster."""
    if not (found or {}).get("clusters") or not data.n_answers:
        return []
    agree = np.bincount(data.worker_codes, weights=(data.label_codes == labels[data.task_codes]),
                        minlength=data.n_workers)
    answered = np.bincount(data.worker_codes, minlength=data.n_workers).astype(np.float64)
    return followed_clusters(found, list(data.workers), agree, answered)


def irbm_confusion(model, run: int = 0) -> np.ndarray:
    """Lemma 1 confusion matrices of one run in class order: (d, K, K) ``[i, l, m] = P(X_i = l | Y = m)``."""
    psi, _ = model.network_.confusion_matrices()
    psi = psi[run].cpu().numpy().astype(np.float64)  # [i, l, hidden m]
    out = np.empty_like(psi)
    out[:, :, np.asarray(model.class_maps_[run])] = psi
    return out


@dataclass
class QualityResult:
    """``table``: one row per worker (see :func:`worker_quality`); confusion arrays (d, K, K) ``[i, l, m]``."""

    table: pd.DataFrame
    empirical: np.ndarray
    empirical_counts: np.ndarray
    irbm: np.ndarray
    gold: np.ndarray | None
    workers: list
    classes: list
    n_layers: int
    notes: list[str] = field(default_factory=list)

    def confusion(self, worker: Any, kind: str = "empirical") -> pd.DataFrame:
        """One worker's confusion matrix as a DataFrame (rows = given label, columns = true class).

        kind: ``empirical`` (vs DEEM labels), ``irbm`` (Lemma 1) or ``gold`` (vs gold labels).
        """
        i = self.workers.index(worker)
        matrices = {"empirical": self.empirical, "irbm": self.irbm, "gold": self.gold}
        if kind not in matrices or matrices[kind] is None:
            raise ValueError(f"no {kind!r} confusion matrix (available: "
                             f"{[k for k, v in matrices.items() if v is not None]})")
        return pd.DataFrame(matrices[kind][i], index=pd.Index(self.classes, name="given"),
                            columns=pd.Index(self.classes, name="true"))


def _gold_gap(data: AnnotationSet, labels: np.ndarray, truth: np.ndarray, min_labels: int,
              ) -> tuple[np.ndarray, np.ndarray]:
    """(d,) each worker's agreement with ``labels`` minus its accuracy, on the tasks with a gold label it answered
    (NaN: none), and (d,) whether that gap is above GOLD_GAP and GOLD_GAP_Z paired standard errors on at least
    ``min_labels`` such answers (module docstring, "gold disagrees")."""
    on_gold = truth[data.task_codes] >= 0
    worker = data.worker_codes[on_gold]
    given = data.label_codes[on_gold] if data.soft_labels is None else data.soft_labels[on_gold].argmax(axis=1)
    diff = ((given == labels[data.task_codes[on_gold]]).astype(np.float64)
            - (given == truth[data.task_codes[on_gold]]).astype(np.float64))
    d = data.n_workers
    n = np.bincount(worker, minlength=d).astype(np.float64)
    total = np.bincount(worker, weights=diff, minlength=d)
    squares = np.bincount(worker, weights=diff ** 2, minlength=d)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / n
        se = np.sqrt(np.maximum(squares / n - mean ** 2, 0.0) / np.maximum(n - 1, 1))
    disagrees = (n >= max(2, min_labels)) & (mean > GOLD_GAP) & (mean > GOLD_GAP_Z * se)
    return np.where(n > 0, mean, np.nan), disagrees


def _weak_accuracy(k: int, threshold: float) -> float:
    """The accuracy of a worker equally good on every class whose spammer score is ``threshold``:
    ``((K a - 1) / (K - 1))^2 = threshold``."""
    return (1 + (k - 1) * threshold ** 0.5) / k


def worker_quality(model, data: Any, gold: Any = None, run: int = 0, min_labels: int | None = None,
                    spammer_threshold: float = DEFAULT_SPAMMER_THRESHOLD, clusters: dict | None = None,
                    ) -> QualityResult:
    """Quality table of every worker.

    Columns: ``worker, n_labels, coverage`` (fraction of tasks answered), ``agreement`` (fraction of its
    labels equal to DEEM's), ``chance_agreement`` (expected agreement of a worker answering at random
    with its own label frequencies), ``kappa`` (Cohen's kappa vs DEEM), ``n_gold`` (with gold labels: its answers on
    gold tasks), ``accuracy`` (vs gold on those, NaN without gold), ``accuracy_low``, ``accuracy_high`` (with gold:
    its 95% interval, Wilson's), ``gold_gap`` (with gold), ``irbm_accuracy``
    (Lemma 1: ``sum_m prior_m psi_mm`` — the iRBM's estimate of the worker's accuracy; of the raw labels only for
    ``n_layers = 0``), ``spammer_score``, ``irbm_spammer_score`` (the same on the Lemma 1 matrix), ``flag``,
    ``strong_on`` (:func:`strong_classes`: an expert on some classes).
    ``clusters``: dependence clusters found for these diagnostics (a ``DependenceClusters.summary()``), used when the
    model did not look for them (its start and layers fixed by hand): copiers were then all "ok", ranked the best
    workers by the iRBM (walkthrough 56).
    """
    data = prepare(model, data)
    k = data.n_classes
    min_labels = 5 * k if min_labels is None else int(min_labels)
    deem = consensus_posterior(model, data).argmax(axis=1).astype(np.int64)
    n_labels = data.answers_per_worker()
    counts, psi = empirical_confusion(data, deem)
    agree = np.trace(counts, axis1=1, axis2=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        agreement = agree / n_labels
        given = counts.sum(axis=2) / n_labels[:, None]  # (d, K) worker's label frequencies
        reference = counts.sum(axis=1) / n_labels[:, None]  # (d, K) DEEM's label frequencies on its tasks
        chance = (given * reference).sum(axis=1)
        kappa = (agreement - chance) / (1 - chance)
    score = spammer_score(psi, counts.sum(axis=1))
    irbm = irbm_confusion(model, run)
    irbm_accuracy = model.estimated_accuracy(run, data=data).to_numpy()  # (one source with the worker table's)
    irbm_score = spammer_score(irbm)
    returned = returned_reference(model)
    if returned:  # no iRBM was trained: these weights are the reference's (copies down-weighted), not Lemma 1's
        irbm_accuracy, irbm_score = np.full(data.n_workers, np.nan), np.full(data.n_workers, np.nan)
        irbm = None  # (nor its matrices: the all-confusion-matrices CSV held them as "irbm_lemma1"; walkthrough 105)
    truth = gold_codes(model, data, gold)
    gold_matrix = None
    accuracy = np.full(data.n_workers, np.nan)
    n_gold = np.zeros(data.n_workers, dtype=np.int64)
    if truth is not None:
        gold_counts, gold_matrix = empirical_confusion(data, truth)
        n_gold = gold_counts.sum(axis=(1, 2)).astype(np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            accuracy = np.trace(gold_counts, axis1=1, axis2=2) / n_gold
    with np.errstate(invalid="ignore", divide="ignore"):
        noise = SPAMMER_NOISE / n_labels
        # a guesser's kappa is 0 give or take sqrt(chance / (n (1 - chance))); NaN (no chance agreement left) decides
        # nothing
        guess_se = np.sqrt(chance / (n_labels * (1.0 - chance)))
        guessing = ~(kappa > SPAMMER_KAPPA_Z * guess_se)
        # below 0 beyond a guesser's noise: a random guesser's kappa -0.053 on 180 labels (0.8 of those standard
        # errors) read "worse than chance" beside another guesser's "likely spammer" (walkthrough 102); within it, at
        # or below 0, its answers agree with the labels no more than guesses do
        # read exactly, as a guesser's count of agreements (binomial at its chance agreement): the normal reading of
        # kappa needs about 9 (K - 1) labels to call even a worker who never agrees (a permuted labelling) worse than
        # chance, and the branch below called such a worker of 70 labels of 10 classes a likely spammer (read 52)
        contrary = stats.binom.cdf(agree, n_labels, np.clip(chance, 0.0, 1.0)) < stats.norm.sf(CONTRARY_KAPPA_Z)
    flag = np.where(n_labels < min_labels, "too few labels",
                    np.where((score < noise) & (score < spammer_threshold) & guessing, "likely spammer",
                             np.where(contrary, "worse than chance",
                                      # (and its confusions random too: a permuted labelling is no guesser)
                                      np.where(guessing & (kappa <= 0) & (score < spammer_threshold), "likely spammer",
                                               # (its answers informative, short of worse than chance: a permuted
                                               # labelling of 55 answers read "weak", "better than random"; read 53)
                                               np.where(kappa <= 0, "no better than chance",
                                               np.where((score < spammer_threshold) | (kappa < np.sqrt(spammer_threshold)),
                                                        "weak", "ok"))))))
    strong = strong_classes(counts, data.classes)
    # a worker who gives one class for another (an adversary, or a mix-up of two names) is no weak or fair worker
    swapped = swapped_classes(counts, data.classes)
    flag = np.where(np.isin(flag, ["ok", "weak", "no better than chance"])
                    & (np.asarray(swapped, dtype=object) != ""), "mixes up classes", flag)
    gap = np.full(data.n_workers, np.nan)
    if truth is not None:
        gap, disagrees = _gold_gap(data, deem, truth, min_labels)
        flag = np.where(disagrees, "gold disagrees", flag)
    table = pd.DataFrame({
        "worker": list(data.workers), "n_labels": n_labels.astype(np.int64),
        "coverage": n_labels / max(1, data.n_tasks), "agreement": agreement, "chance_agreement": chance,
        "kappa": kappa, "accuracy": accuracy, "irbm_accuracy": irbm_accuracy, "spammer_score": score,
        "irbm_spammer_score": irbm_score, "flag": flag, "strong_on": strong, "gives_instead": swapped,
    })
    if truth is not None:  # (beside the gold accuracy it is read against)
        table.insert(table.columns.get_loc("accuracy") + 1, "gold_gap", gap)
        # how many answers the gold accuracy stands on (0.333 and 0.000 of workers right on 94% of their answers, on
        # 3 gold tasks each, read as facts; walkthrough 72)
        table.insert(table.columns.get_loc("accuracy"), "n_gold", n_gold)
        # how far so few answers leave it (1.0 on 2 gold answers read as a fact; walkthrough 80): Wilson's 95%
        low, high = accuracy_intervals(accuracy, n_gold)
        table.insert(table.columns.get_loc("accuracy") + 1, "accuracy_high", high)
        table.insert(table.columns.get_loc("accuracy") + 1, "accuracy_low", low)
    partners = dependent_with(model, data.workers)
    found_here = partners is None and clusters is not None
    if found_here:
        partners = cluster_partners(clusters, data.workers)
    dependents = partners is not None and any(partners)
    if partners is not None:  # (two copiers ranked first by agreement and Lemma 1, flagged "ok"; walkthrough 34)
        table.insert(table.columns.get_loc("flag"), "dependent_with", partners)
        # and "ok" no longer for them: with the best figures and "ok" they still read as the best (walkthrough 35)
        table["flag"] = np.where((table["flag"] == "ok") & (table["dependent_with"] != ""), "dependent",
                                 table["flag"])
    doubted = [str(w) for w in table.loc[table["flag"] == "gold disagrees", "worker"]]
    against = f"DEEM's labels (those of {returned}, returned by the safety rule)" if returned else "DEEM's labels"
    notes = [f"agreement, kappa and the empirical confusion matrices are measured against {against}; "
             f"flag: likely spammer = its answers look no different from random guesses, for as many labels "
             f"(spammer score times its number of labels under {SPAMMER_NOISE:g}, and its kappa within "
             f"{SPAMMER_KAPPA_Z:g} standard errors of a guesser's 0; or its kappa at or below 0 and its spammer "
             f"score under {spammer_threshold}, short of worse than chance); weak = better than random, but "
             f"little (spammer score under {spammer_threshold} or kappa under {np.sqrt(spammer_threshold):.3f}: for a "
             f"worker equally good on every class, accuracy under about {_weak_accuracy(k, spammer_threshold):.0%} "
             f"with {k} classes); too few labels = fewer than "
             f"{min_labels}; "
             f"worse than chance = it agrees with them less often than a random guesser would in all but "
             f"{stats.norm.sf(CONTRARY_KAPPA_Z):.2%} of draws (binomial, at its chance agreement); no better than "
             f"chance = its kappa at or below 0 short of that, its answers no random guesses (spammer score "
             f"{spammer_threshold} or more: e.g. classes given consistently under other names); mixes up classes = "
             f"none of those worse, but on most tasks of some class it gives another class, more often than that one "
             f"(binomial, in all but {stats.norm.sf(CONTRARY_KAPPA_Z):.2%} of draws), where the other workers mostly "
             f"give that one (gives_instead)"
             + ("; dependent = none of these, but in a dependence cluster (dependent_with)" if dependents else "")
             + (f"; gold disagrees = on the gold tasks it answered it agrees with DEEM's labels more often than with "
                f"the gold labels, by more than {GOLD_GAP:g} of its answers (gold_gap) and by more than {GOLD_GAP_Z:g} "
                f"standard errors of that difference (a gap on a few gold answers is not enough)"
                if truth is not None else "")]
    found = (clusters if found_here else (getattr(model, "selection_summary_", None) or {}).get("clusters")) or {}
    kept = safety_kept_text(getattr(model, "selection_summary_", None) or {})  # (the words of Train and Results)
    for members, inside, outside in followed_clusters(found, list(data.workers), agree, n_labels):
        notes.insert(0, f"{FOLLOWED_NOTE}: {names_text([str(w) for w in members])} agree with {against} on "
                        f"{inside:.0%} of their answers, the other workers on {outside:.0%}. If the group copies one "
                        f"source, that source decided the labels: the mutual information within these labels then "
                        f"reads near 0 for its members, the importance ranks them first, and workers who disagree "
                        f"with it read weak. Compare with the cluster-weighted Dawid-Skene (a method of its own that "
                        f"counts the group once)"
                        # (it advised the automatic start to a run that had used it, whose check had kept these
                        # labels; walkthrough 84)
                        + (", or with a start chosen automatically, which is checked against it" if found_here else
                           ", and with majority vote" + (f"; {kept}" if kept and not returned else "")))
    if doubted:
        notes.append(f"gold disagrees: DEEM's labels follow {names_text(doubted)} where the gold labels do not (gold_gap: "
                     f"its agreement with DEEM's labels minus its accuracy, on the gold tasks it answered): workers who "
                     f"copy each other, a group DEEM took for the truth, or gold labels that are wrong there; compare "
                     f"the methods' accuracy against the gold labels on the Results page")
    unjudged = none_found(found) if partners is not None and not dependents and found else "none found"
    if unjudged != "none found":  # (an empty column read as "no worker copies"; walkthrough 75)
        notes.append(f"dependent_with is empty for every worker, which says little here. Dependence clusters: {unjudged}")
    if dependents:
        when = ("found for these diagnostics (the training, its start and layers fixed, did not look for them and "
                "counted every member as an independent source)" if found_here else "found before training")
        # the groups in one line each, as Train and Results list them: the grid showed them only row by row, its
        # last members past a scroll (walkthrough 89)
        groups = cluster_texts(found)
        if groups:
            listed = len(groups) if len(groups) <= GROUPS_LISTED + 1 else GROUPS_LISTED  # ("and 1 more" lists it)
            more = (f"; and {len(groups) - listed:,} more clusters (each member's row names the others: "
                    f"dependent_with)"
                    if len(groups) > listed else "")
            notes.append(f"{len(groups):,} dependence cluster{'s' * (len(groups) != 1)} {when.split(' (')[0]}: "
                         + "; ".join(groups[:listed]) + more)
        notes.append(f"dependent_with: the other workers of its dependence cluster ({PARTNERS_WORDS}), {when} "
                     f"(their answers agree "
                     f"beyond what the other workers explain): agreement, kappa, spammer_score and the irbm_* columns "
                     f"count their shared answers as evidence and may read too high for them")
    if not returned:  # (read as a comparison with gold labels by a link's visitor; walkthrough 33)
        # (it said "without gold labels" of a model that trained on half of them; walkthrough 61)
        gold_trained = (float(getattr(model, "supervised_weight", 0) or 0) > 0
                        and getattr(model, "class_map_source_", None) == "gold labels")
        made = ("the answers and the gold labels the model trained on (a gold-label weight above 0)" if gold_trained
                else "the answers alone, without gold labels")
        if model.network_.n_layers:  # (Lemma 1 reads the last layer's output: 0.05 for a worker 76% right; walkthrough 67)
            notes.append(f"irbm_accuracy is the trained model's own estimate of each worker's accuracy, made from {made}: "
                         f"with layers, the mean probability its posterior gives the labels the worker gave (Lemma 1 "
                         f"reads the last layer's output, not the worker's answers)")
        else:
            notes.append(f"irbm_accuracy is the trained iRBM's own estimate of each worker's accuracy (Lemma 1), made "
                         f"from {made}")
    if truth is not None:
        notes.append(f"accuracy is measured against the {GOLD_SOURCE} ({counted((truth >= 0).sum(), 'task')})")
    if returned:
        # ("copies weighted down" of plain Dawid-Skene or majority vote, which weight nothing; read 54)
        weighted = " (copies weighted down)" if returned.startswith("cluster-weighted") else ""
        notes.append(f"irbm_* columns are empty: the model is {returned} written as a network of no layers{weighted}, "
                     f"not a trained iRBM, so Lemma 1 does not read worker accuracies from it")
    elif model.network_.n_layers:
        # (it named an "irbm_score" no table has; walkthrough 77)
        notes.append("irbm_accuracy, irbm_spammer_score and the irbm confusion matrices describe the iRBM's view of "
                     "the last layer's output (Lemma 1), not the raw labels")
    # the workers in their natural order, as the charts draw them ("w2" before "w10"; the data's text order put
    # "w10" first in the table, its CSV and the confusion-matrix picker; walkthrough 104)
    order = natural_positions(table["worker"].astype(str).to_numpy())
    return QualityResult(table=table.iloc[order].reset_index(drop=True), empirical=psi[order],
                         empirical_counts=counts[order], irbm=None if irbm is None else irbm[order],
                         gold=None if gold_matrix is None else gold_matrix[order],
                         workers=[data.workers[i] for i in order], classes=list(data.classes),
                         n_layers=int(model.network_.n_layers), notes=notes)
