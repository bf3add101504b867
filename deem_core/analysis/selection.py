"""Choosing DEEM's start and depth without ground truth: held-out answers scored by the model itself.

A random share of the observed answers is held out (at most one per task, and never a task's last answer),
the candidate models (start x depth) are fitted on the rest, and each is scored by how well it predicts
the answers it did not see. With one hidden unit the free energy F(x) is exact (the multinomial layers are
deterministic), so the conditional of one answer given the task's other answers is exact for any depth:

    p(x_i = l | x_-i) = softmax_l( -F(x with x_i := l) )

(the partition function cancels). The criterion is the mean held-out log-likelihood per answer; the
per-answer values allow a paired comparison between candidates (:func:`paired_gain`).

Dependent workers. Both scores above reward a model that predicts a worker from its own copies: a held-out
answer of a copied group is predicted best by the model that lets the group define the truth. With dependence
clusters (``methods/clusters.py``: groups that agree beyond what the other workers' evidence explains) the held-out
answer of worker i is predicted from the workers **outside i's cluster** only (:func:`without_own_cluster`): the
*leave-cluster-out* log-likelihood, exact in the same way (the cluster's other answers are simply absent, as any
missing answer). Without clusters it is the held-out log-likelihood itself.

Comparing DEEM with methods that are not generative models (majority vote, the cluster-weighted Dawid-Skene) needs
a score every method has: the **leave-cluster-out predictive score** (:func:`predictive_scores`). A method's label
for a task computed without the answers of cluster c is read through each worker's own confusion matrix against
those labels (estimated on the training answers, leave-cluster-out as well, smoothed), and the score of a held-out
answer is the log-probability this gives it. Labels are compared, not probabilities (the argmax, ties shared), so
a method is not rewarded for calibration, and a worker who always says one class or a permuted class does not
vote for the method that errs the same way (its confusion matrix absorbs the bias). Under conditional independence
of the clusters given the true class, a label that is more informative about the true class predicts the other
clusters' answers better.

A third, model-free statistic is kept for display: how often a candidate's aggregated label (computed from the
task's training answers only) equals the held-out answer (:func:`heldout_agreement`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from deem_core.data.annotations import AnnotationSet
from deem_core.data.text import counted, escape_controls, names_text
from deem_core.model.network import DEEMNetwork

__all__ = ["FOLLOWED", "FOLLOWED_KEPT", "followed_text", "safety_kept_text", "selection_lines", "selection_table", "evidence_lines", "safety_rule_sentence", "safety_rule_reference",
           "returned_model_note", "cluster_texts",
           "SAFETY_RULE", "EVIDENCE_COLUMNS", "EVIDENCE_HELP", "evidence_caption",
           "HeldOut", "MIN_HELDOUT", "answers_to_choose", "heldout_size", "hold_out_answers", "heldout_log_probs",
           "heldout_agreement", "paired_gain", "DEFAULT_HELDOUT_SHARE", "without_own_cluster", "ClusterPairs",
           "cluster_pairs", "predictive_scores", "PREDICTIVE_SMOOTHING", "MAX_PAIR_ANSWERS", "SAFETY_Z"]

#: below this many held-out answers the criterion is too noisy to choose with (the default is used)
MIN_HELDOUT = 30
#: share of the observed answers held out for scoring (capped at one answer per task with >= 2 answers)
DEFAULT_HELDOUT_SHARE = 0.1
#: pseudo-count per cell of the confusion matrices the predictive score reads labels through
PREDICTIVE_SMOOTHING = 0.5
#: answers of the leave-cluster-out pairs the confusion matrices are estimated on (a task sample above this)
MAX_PAIR_ANSWERS = 1_000_000


@dataclass
class HeldOut:
    """The held-out answers: parallel arrays of task positions, worker positions and class codes."""

    task: np.ndarray
    worker: np.ndarray
    label: np.ndarray

    def __len__(self) -> int:
        return len(self.task)


def heldout_size(data: AnnotationSet, share: float = DEFAULT_HELDOUT_SHARE) -> int:
    """How many answers :func:`hold_out_answers` holds out: ``min(round(share * answers), eligible tasks)``."""
    return int(min(round(share * data.n_answers), int((data.answers_per_task() >= 2).sum())))


def answers_to_choose(share: float = DEFAULT_HELDOUT_SHARE) -> int:
    """The answers a set needs (on :data:`MIN_HELDOUT` tasks of two answers or more) for ``share`` of them to hold
    out :data:`MIN_HELDOUT`: the fewest that ``round`` takes there."""
    return math.ceil((MIN_HELDOUT - 0.5) / float(share))


def hold_out_answers(data: AnnotationSet, share: float = DEFAULT_HELDOUT_SHARE, seed: int = 0,
                     ) -> tuple[AnnotationSet, HeldOut]:
    """Remove a random share of the answers for scoring.

    At most one answer per task is held out, and only from tasks with at least two answers, so every task keeps
    an answer to condition on; the tasks and the answer within each task are drawn uniformly (seeded).
    Returns (the set without the held-out answers, the held-out answers).
    """
    rng = np.random.default_rng(seed)
    counts = data.answers_per_task()
    eligible = np.flatnonzero(counts >= 2)
    n_out = heldout_size(data, share)
    tasks = np.sort(rng.choice(eligible, size=n_out, replace=False)).astype(np.int64)
    # one answer of each chosen task, uniformly among its answers (CSR: positions offsets[t] .. offsets[t+1]-1)
    positions = data.task_offsets[tasks] + np.floor(rng.random(n_out) * counts[tasks]).astype(np.int64)
    held = HeldOut(task=tasks, worker=data.worker_codes[positions].copy(), label=data.label_codes[positions].copy())
    keep = np.ones(data.n_answers, dtype=bool)
    keep[positions] = False
    offsets = np.zeros(data.n_tasks + 1, dtype=np.int64)
    np.cumsum(np.bincount(data.task_codes[keep], minlength=data.n_tasks), out=offsets[1:])
    train = AnnotationSet(tasks=data.tasks, workers=data.workers, classes=data.classes,
                          task_codes=data.task_codes[keep], worker_codes=data.worker_codes[keep],
                          label_codes=data.label_codes[keep], task_offsets=offsets,
                          soft_labels=None if data.soft_labels is None else data.soft_labels[keep],
                          source=data.source, layout=data.layout)
    return train, held


def completions(train: AnnotationSet, held: HeldOut) -> AnnotationSet:
    """Every held-out answer completed with every class: task ``h * K + l`` holds the training answers of the
    held-out answer's task plus its worker answering ``l`` (soft labels: one-hot for the completed answer)."""
    k = train.n_classes
    counts = train.answers_per_task()[held.task]  # training answers of each held-out task
    starts = train.task_offsets[held.task]
    # answer positions of every held-out task, repeated for each of the K completions
    rep_counts = np.repeat(counts, k)
    rep_starts = np.repeat(starts, k)
    within = np.arange(rep_counts.sum()) - np.repeat(np.cumsum(rep_counts) - rep_counts, rep_counts)
    positions = np.repeat(rep_starts, rep_counts) + within
    task_of = np.repeat(np.arange(len(held) * k), rep_counts)
    extra_task = np.arange(len(held) * k)
    task_codes = np.concatenate([task_of, extra_task])
    worker_codes = np.concatenate([train.worker_codes[positions], np.repeat(held.worker, k)])
    label_codes = np.concatenate([train.label_codes[positions], np.tile(np.arange(k), len(held))])
    soft = None
    if train.soft_labels is not None:
        soft = np.concatenate([train.soft_labels[positions], np.eye(k, dtype=np.float32)[np.tile(np.arange(k), len(held))]])
    return AnnotationSet.from_codes(pd.RangeIndex(len(held) * k, name="task"), train.workers, train.classes,
                                    task_codes, worker_codes, label_codes, soft_labels=soft, source=train.source)


#: work :func:`heldout_log_probs` does between two looks at its stop event: completed inputs (held-out answers x
#: classes) x (workers x classes)^2; 2,048 answers at most (the default batch) below ~30 workers x 10 classes
SCORING_WORK_PER_BATCH = 2e9
#: the same on the sparse path, where a completed input's work is runs x (its answers x classes)^2 (the pair blocks its
#: layers gather) and goes about 8e7 units a second on one CPU thread (100 workers x 30-100 classes, 4 answers a task;
#: the matrix path's products ~4e10): a batch of about a second here. Unsized, 2,048 held-out answers of 100 classes
#: held a stop over 400 s (read 51)
SPARSE_SCORING_WORK_PER_BATCH = 1e8


def work_batches(costs: np.ndarray, bound: float, most: int) -> list[tuple[int, int]]:
    """Consecutive (start, end) batches of items costing ``costs``: each of at most ``most`` items and ``bound`` work
    in all, or a single item that alone costs more."""
    sums = np.concatenate([[0.0], np.cumsum(np.asarray(costs, dtype=np.float64))])
    batches, start, n = [], 0, len(costs)
    while start < n:
        end = int(np.searchsorted(sums, sums[start] + bound, side="right")) - 1
        end = min(max(end, start + 1), start + max(1, int(most)), n)
        batches.append((start, end))
        start = end
    return batches


class ScoringStopped(Exception):
    """Scoring was asked to stop (a cancelled job, a probe's time limit) before it ended."""


def check_stop(stop: Any, error: type[Exception] = ScoringStopped) -> None:
    """Raise ``error`` when the event ``stop`` (anything with ``is_set()``; None: never) is set: the one look at a stop
    that the choice's scoring and the search for clusters make between their steps."""
    if stop is not None and stop.is_set():
        raise error


@torch.no_grad()
def heldout_log_probs(network: DEEMNetwork, train: AnnotationSet, held: HeldOut, batch_tasks: int = 2048,
                      stop: Any = None) -> torch.Tensor:
    """log p(x_i = l | x_-i) for every held-out answer, every run and every class l: (R, h, K).

    x_-i are the task's answers in ``train`` (the set without the held-out answers; there is one held-out
    answer per task at most). Each held-out answer is completed with every class l (:func:`completions`);
    the K free energies of the completed inputs give the conditional exactly (one hidden unit, deterministic
    layers; on the sparse path a worker pair that never answered a task together in training has no block
    and contributes nothing). ``batch_tasks`` held-out answers at a time, on the network's own layout. ``stop``: an
    event checked between batches (:class:`ScoringStopped`): K completions of every held-out answer took 154-373 s
    at 300 classes after a cancel (attack round 51).
    """
    from deem_core.model.engine import task_outputs  # noqa: PLC0415

    r, k = network.n_runs, network.n_classes
    # batches of bounded work, a stop read between them (80 answers of 8 workers x 314 classes, one batch, ran 50 s past
    # a probe's limit; attack round 51): a held-out answer's K completed inputs cost (workers x classes)^2 each on the
    # matrix path (a layer's product), runs x (the task's answers x classes)^2 on the sparse path (its pair blocks; a
    # batch of 2,048 answers of 100 classes ran past 400 s there; read 51). The values do not depend on the batches
    if network.layout == "blocks":
        answers = train.answers_per_task()[held.task].astype(np.float64) + 1.0
        costs, bound = float(k) ** 3 * r * answers ** 2, SPARSE_SCORING_WORK_PER_BATCH
    else:
        costs, bound = np.full(len(held), float(k) * float(network.n_workers * k) ** 2), SCORING_WORK_PER_BATCH
    out = []
    for start, end in work_batches(costs, bound, batch_tasks):
        check_stop(stop)
        part = HeldOut(task=held.task[start:end], worker=held.worker[start:end], label=held.label[start:end])
        energy = task_outputs(network, completions(train, part))[0]  # (R, b*K)
        out.append(torch.log_softmax(-energy.view(r, len(part), k), dim=-1))
    if not out:
        return torch.zeros(r, 0, k, device=network.irbm_weight.device)
    return torch.cat(out, dim=1)


def without_own_cluster(train: AnnotationSet, held: HeldOut, clusters: np.ndarray) -> AnnotationSet:
    """``train`` without, on every held-out task, the answers of the held-out worker's cluster (``clusters``: (d,)
    cluster id per worker). With :func:`heldout_log_probs` this gives the leave-cluster-out conditionals."""
    own = np.full(train.n_tasks, -1, dtype=np.int64)
    own[held.task] = np.asarray(clusters)[held.worker]
    keep = np.asarray(clusters)[train.worker_codes] != own[train.task_codes]
    offsets = np.zeros(train.n_tasks + 1, dtype=np.int64)
    np.cumsum(np.bincount(train.task_codes[keep], minlength=train.n_tasks), out=offsets[1:])
    return AnnotationSet(tasks=train.tasks, workers=train.workers, classes=train.classes,
                         task_codes=train.task_codes[keep], worker_codes=train.worker_codes[keep],
                         label_codes=train.label_codes[keep], task_offsets=offsets,
                         soft_labels=None if train.soft_labels is None else train.soft_labels[keep],
                         source=train.source, layout=train.layout)


@dataclass
class ClusterPairs:
    """The answers of a set seen leave-cluster-out: one task per (task, cluster answering it), holding the task's
    answers outside that cluster (``data``; a pair whose task has no other answer has none), and for every scored
    answer (``task``, ``worker``, ``label``, a sample of the set's answers) the pair it belongs to."""

    data: AnnotationSet
    pair: np.ndarray
    worker: np.ndarray
    label: np.ndarray
    task: np.ndarray | None = None  # the task of every scored answer (its code in the set)


def cluster_pairs(data: AnnotationSet, clusters: np.ndarray, max_answers: int = MAX_PAIR_ANSWERS,
                  seed: int = 0) -> ClusterPairs:
    """The leave-cluster-out pairs of ``data`` (:class:`ClusterPairs`), on a random sample of the tasks when the
    pairs would hold more than ``max_answers`` answers."""
    clusters = np.asarray(clusters, dtype=np.int64)
    per_task = data.answers_per_task().astype(np.int64)
    n_c = int(clusters.max()) + 1 if len(clusters) else 1
    key = data.task_codes * n_c + clusters[data.worker_codes]
    size = int((per_task.astype(np.float64) ** 2).sum())
    if size > max_answers:  # tasks sampled: each costs about (answers on it)^2 pair answers
        rng = np.random.default_rng(seed)
        order = rng.permutation(data.n_tasks)
        take = order[: max(1, int(np.searchsorted(np.cumsum(per_task[order] ** 2), max_answers)))]
        sample = np.zeros(data.n_tasks, dtype=bool)
        sample[take] = True
        answers = np.flatnonzero(sample[data.task_codes])
    else:
        answers = np.arange(data.n_answers)
    unique, inverse = np.unique(key[answers], return_inverse=True)
    pair_task, pair_cluster = unique // n_c, unique % n_c
    counts = per_task[pair_task]
    starts = data.task_offsets[pair_task]
    within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    positions = np.repeat(starts, counts) + within
    owner = np.repeat(np.arange(len(pair_task)), counts)
    keep = clusters[data.worker_codes[positions]] != pair_cluster[owner]
    positions, owner = positions[keep], owner[keep]
    soft = None if data.soft_labels is None else data.soft_labels[positions]
    pairs = AnnotationSet.from_codes(pd.RangeIndex(len(pair_task), name="task"), data.workers, data.classes, owner,
                                     data.worker_codes[positions], data.label_codes[positions], soft_labels=soft,
                                     source=data.source)
    return ClusterPairs(data=pairs, pair=inverse.astype(np.int64), worker=data.worker_codes[answers].copy(),
                        label=data.label_codes[answers].copy(), task=data.task_codes[answers].copy())


def _hard(posterior: np.ndarray) -> np.ndarray:
    """Posterior rows -> the argmax as a distribution (ties share it); a row of zeros (no answer) -> uniform."""
    posterior = np.asarray(posterior, dtype=np.float64)
    top = posterior >= posterior.max(axis=-1, keepdims=True) - 1e-9
    return top / top.sum(axis=-1, keepdims=True)


def predictive_scores(pair_posterior: np.ndarray, pairs: ClusterPairs, held_posterior: np.ndarray, held: HeldOut,
                      n_workers: int, smoothing: float = PREDICTIVE_SMOOTHING) -> np.ndarray:
    """Leave-cluster-out predictive score of every held-out answer (module docstring): (h,) log-probabilities.

    pair_posterior: (P, K) the method's class posterior (any order of the classes, e.g. a network's hidden units)
    for every pair of ``pairs``; held_posterior: (h, K) the same for every held-out answer's task without its
    cluster's answers. Each worker's confusion against the method's labels is counted on the pairs (every answer
    against the label of its own task without its cluster), plus ``smoothing`` per cell.
    """
    labels = _hard(pair_posterior)
    k = labels.shape[1]
    counts = np.full((n_workers, k, k), float(smoothing))
    np.add.at(counts, (pairs.worker, pairs.label), labels[pairs.pair])
    confusion = counts / counts.sum(axis=1, keepdims=True)  # [worker, given label, method's label]
    predicted = (confusion[held.worker, held.label, :] * _hard(held_posterior)).sum(axis=1)
    return np.log(predicted)


def pair_scores(pair_posterior: np.ndarray, pairs: ClusterPairs, n_workers: int,
                smoothing: float = PREDICTIVE_SMOOTHING) -> np.ndarray:
    """Leave-cluster-out predictive score of every answer of ``pairs`` (the training answers): (A,) log-probability
    of the answer given the method's label of its task without its cluster's answers, read through the worker's
    confusion against those labels counted on every other answer of ``pairs`` (its own answer left out, so that
    no answer predicts itself). Ten times the answers :func:`predictive_scores` has on a 10% hold-out."""
    labels = _hard(pair_posterior)[pairs.pair]  # (A, K)
    k = labels.shape[1]
    counts = np.full((n_workers, k, k), float(smoothing))
    np.add.at(counts, (pairs.worker, pairs.label), labels)
    totals = counts.sum(axis=1)  # [worker, method's label]
    own = counts[pairs.worker, pairs.label, :] - labels
    predicted = (labels * own / (totals[pairs.worker] - labels)).sum(axis=1)
    return np.log(predicted)


def paired_gain_by_task(values_a: np.ndarray, values_b: np.ndarray, task: np.ndarray) -> tuple[float, float]:
    """Mean per-answer gain of b over a and its standard error, the answers of one task taken together (they share
    the task's label, so they are not independent draws): the sandwich error of the mean over task clusters."""
    diff = np.asarray(values_b, dtype=np.float64) - np.asarray(values_a, dtype=np.float64)
    if diff.size < 2:
        return float(diff.mean()) if diff.size else 0.0, float("inf")
    mean = float(diff.mean())
    _, codes = np.unique(np.asarray(task), return_inverse=True)
    n_groups = int(codes.max()) + 1
    if n_groups < 2:
        return mean, float("inf")
    residual = np.bincount(codes, weights=diff - mean, minlength=n_groups)
    return mean, float(np.sqrt(n_groups / (n_groups - 1) * (residual ** 2).sum()) / diff.size)


def observed_log_likelihood(log_probs: torch.Tensor, held: HeldOut) -> np.ndarray:
    """(R, h, K) conditionals -> (R, h) log-probability of the answer actually given."""
    labels = torch.as_tensor(held.label, device=log_probs.device)
    return log_probs.gather(2, labels.view(1, -1, 1).expand(log_probs.shape[0], -1, 1)).squeeze(2).cpu().numpy()


def heldout_agreement(task_labels: np.ndarray, held: HeldOut) -> np.ndarray:
    """(R, n) or (n,) aggregated class codes (from training answers only) -> (R, h) or (h,) 1.0 where the
    aggregated label of the held-out answer's task equals that answer."""
    return (np.asarray(task_labels)[..., held.task] == held.label).astype(np.float64)


def paired_gain(values_a: np.ndarray, values_b: np.ndarray) -> tuple[float, float]:
    """Mean per-answer gain of b over a and its standard error (paired over the held-out answers)."""
    diff = np.asarray(values_b, dtype=np.float64) - np.asarray(values_a, dtype=np.float64)
    if diff.size < 2:
        return float(diff.mean()) if diff.size else 0.0, float("inf")
    return float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(diff.size))


def _trained(row: dict) -> bool:
    """A row of the evidence table is a trained candidate (it has a held-out log-likelihood), not a reference."""
    value = row.get("heldout_loglik")
    return value is not None and value == value


def _reference_chosen(rows: list[dict]) -> bool:
    return any(row.get("chosen") and not _trained(row) for row in rows)


#: the evidence table's columns: summary key -> heading
EVIDENCE_COLUMNS = {"heldout_loglik": "held-out log-lik", "lco_loglik": "leave-cluster-out",
                    "lco_score": "predictive score", "pair_score": "score, training answers",
                    "heldout_agreement": "agreement"}
#: what each evidence column means, in words (the pages' column help; higher is better in every column)
EVIDENCE_HELP = {
    "candidate": "A trained candidate (its start and layers), or a reference that is not trained (majority vote, "
                 "Dawid-Skene or its cluster-weighted form), scored on the same held-out answers.",
    "held-out log-lik": "Mean log-probability the candidate gives each held-out answer, predicted from the other "
                        "answers of its task. The choice's criterion when no dependence cluster was found. Higher is "
                        "better.",
    "leave-cluster-out": "The choice's criterion: the same log-probability, predicted without the answers of the "
                         "answering worker's dependence cluster, so copied workers cannot vouch for each other. Equal "
                         "to the held-out log-lik when no cluster was found. Higher is better.",
    "predictive score": "The safety rule's score, for every row: how well the row's labels, taken without a "
                        "cluster's answers and read through each worker's confusion, predict that cluster's held-out "
                        "answers. A reference that scores clearly above the choice replaces it. Higher is better.",
    "score, training answers": "The safety rule's second score where dependence clusters were found (shown then "
                               "only): the same prediction of every training answer from the other clusters' "
                               "answers, its own answer left out of its worker's confusion; ten times the held-out "
                               "answers, so a small copying group's pull shows. A reference clearly above the choice "
                               "on either score replaces it. Higher is better.",
    "agreement": "Share of the held-out answers equal to the row's label of their task (shown, not used to choose).",
    "note": "chosen: the row whose labels are returned; ranked first: the candidate the criterion (the "
            "leave-cluster-out column) put first, whose labels the safety rule replaced by a reference's; "
            "collapsed: a candidate left out because it stopped predicting some classes while training.",
}


#: the safety rule returns a reference when it predicts the held-out answers better than the choice by more than
#: this many paired standard errors (:func:`deem_core.methods.choose.choose`; said in the caption below)
SAFETY_Z = 2.0


def evidence_caption(table: pd.DataFrame, clusters: dict | None = None) -> str:
    """One line above the evidence table :func:`selection_table`: where its figures come from (the three scores
    were explained on hover only; walkthrough 28), and whether the leave-cluster-out column left anything out (it
    said "with no dependence cluster found it equals the held-out log-lik" under a line naming a cluster;
    walkthrough 36); ``clusters``: the choice's clusters summary, where none could be looked for (it said "no dependence
    cluster was found" under a line saying none could be looked for; walkthrough 76)."""
    trained = table.dropna(subset=["held-out log-lik", "leave-cluster-out"]) if len(table) else table
    same = len(trained) > 0 and bool(np.allclose(trained["held-out log-lik"].to_numpy(dtype=float),
                                                 trained["leave-cluster-out"].to_numpy(dtype=float)))
    on_training = EVIDENCE_COLUMNS["pair_score"] in table
    rule = ("the predictive score and the score on the training answers (each predicted from the other clusters' "
            "answers) are the safety rule's (a reference higher than the choice on either by more than "
            if on_training else "the predictive score is the safety rule's (a reference higher than the choice by "
            "more than ")
    but = ", or (its training answers' column) those answers" if on_training else ""
    said = none_found(clusters) if isinstance(clusters, dict) and not clusters.get("clusters") else "none found"
    # (where a few pairs were judged, "could be looked for" read under "none found among the 22 of 990 pairs";
    # walkthrough 79)
    lco = ("no dependence cluster could be looked for, as the lines above say, so it equals the held-out log-lik"
           if same and said.startswith(("none could", "none looked")) else
           "no dependence cluster was found among the pairs of workers that could be judged, as the lines above count "
           "them, so it equals the held-out log-lik" if same and said != "none found" else
           "no dependence cluster was found, so it equals the held-out log-lik" if same else
           "it predicts each held-out answer without the answers of the worker's dependence cluster")
    return ("The candidates were trained on the answers left after holding some out (the references below them are "
            f"not trained); every number column scores how well a row predicts the held-out answers{but}, higher is "
            f"better. The leave-cluster-out column chooses among the candidates ({lco}), {rule}{SAFETY_Z:g} paired "
            "standard errors replaces it; the lines above give the gains that decided), the agreement is only shown. "
            "Hover a column's name for more.")


def selection_table(summary: dict) -> pd.DataFrame:
    """The candidates and references of ``selection_summary()`` as a table: one row each, the criterion values
    (per held-out answer; agreement = share of held-out answers equal to the row's label of their task) and a note
    (chosen / collapsed). Empty when nothing was chosen on held-out answers."""
    rows = []
    for row in summary.get("candidates") or []:
        name = f"{row['start']} start, {counted(row['layers'], 'layer')}" if _trained(row) else str(row["start"])
        rows.append({"candidate": name,
                     **{heading: (math.nan if row.get(key) is None else float(row[key]))
                        for key, heading in EVIDENCE_COLUMNS.items()},
                     "note": "chosen" if row.get("chosen") else ("collapsed" if row.get("collapsed") else
                                                                  "ranked first; replaced by the safety rule"
                                                                  if row.get("ranked_first") else "")})
    table = pd.DataFrame(rows, columns=["candidate", *EVIDENCE_COLUMNS.values(), "note"])
    pairs = EVIDENCE_COLUMNS["pair_score"]
    return table.drop(columns=[pairs]) if table[pairs].isna().all() else table  # (read by the rule: shown)


#: how a fitted model's ``fallback_`` ends when the safety rule returned a reference (``<reference> (safety rule)``)
SAFETY_RULE = " (safety rule)"


def safety_rule_reference(fallback: str | None) -> str | None:
    """The reference the safety rule returned (e.g. "cluster-weighted Dawid-Skene") when ``fallback`` (a model's
    ``fallback_`` or its summary's) says the labels are the safety rule's; else None."""
    return fallback.removesuffix(SAFETY_RULE) if fallback and fallback.endswith(SAFETY_RULE) else None


def returned_model_note(name: str, returned: str, labels: str = "the labels") -> str:
    """What diagnostics of a model named ``name`` explain when its ``labels`` are the safety rule's reference
    ``returned``: that reference, which the fitted model holds as a network of no layers (they said "DEEM" and
    "DEEM's labels", as if a trained DEEM were diagnosed)."""
    return (f"{labels[:1].upper()}{labels[1:]} come from {returned} (the safety rule), and so do these diagnostics: "
            f"the model diagnosed is {returned} written as a network of no layers, not a trained {name}.")


def safety_rule_sentence(summary: dict) -> str | None:
    """When the safety rule returned a reference (no trained start is the model), the sentence that says so and why;
    else None."""
    reference = safety_rule_reference(summary.get("fallback"))
    if reference is None or not summary.get("reason"):
        return None
    # (not "FALLBACK: ...": the labels the rule returns are its best, and they read as a failure where they were the
    # most accurate of a run's methods; walkthrough 115. A collapse's fallback keeps the word)
    return f"The labels are {reference}'s — {summary['reason']}"  # (the reason has brackets)


def search_cut(clusters: dict[str, Any]) -> str | None:
    """Where the search's work limit left merges untested (``methods/clusters.py``, MAX_SEARCH_WORK), the words that
    say so after the tests made ("... the search's work limit allowed; ..."); None otherwise."""
    cut = int(clusters.get("cut") or 0)
    if not cut:
        return None
    return (f"the search's work limit allowed; {counted(cut, 'group')} of workers left untested (each test grows "
            f"with the tasks times the square of the classes, and with their cube), so a group that copies may go unseen "
            f"here")


def none_found(clusters: dict[str, Any]) -> str:
    """What "no dependence cluster" means for a clusters summary (:meth:`DependenceClusters.summary`): none found
    where pairs of workers could be judged, or none could be looked for where answers are too sparse (walkthrough
    75: "none found" where no two of 40 workers shared the tasks a test needs, and a copying group of 6 went
    unsaid)."""
    if "pairs" not in clusters:  # (a run stored before these counts)
        return "none found"
    if clusters.get("beyond_bound"):  # (attack round 52: minutes spent on pairs no test could follow)
        # (its work is nearly all the cube's at the bound, whatever the tasks: "the tasks and the square" misled; read 52)
        return ("none looked for: at this many classes a single test passes the search's work limit (the smallest test "
                "grows with the cube of the classes: about 200 classes or more), so a group that copies goes unseen "
                "here")
    if clusters.get("stopped"):  # (a cancel or a time limit ended the search: "none found" read as cleared; read 50)
        return (f"none found in the {counted(int(clusters.get('tests') or 0), 'test')} made before the search was "
                f"stopped (a cancel or a time limit), so a group that copies may go unseen here")
    cut = search_cut(clusters)
    if cut:
        return f"none found in the {counted(int(clusters.get('tests') or 0), 'test')} {cut}"
    need = int(clusters.get("min_common") or 0)
    active, pairs, judged = (int(clusters.get(key) or 0) for key in ("active_workers", "pairs", "pairs_judged"))
    # whose pairs: the workers of `need` answers or more (the 200 with the most at most); "406 pairs" of 30 workers
    # read as a miscount (a worker of 17 answers left out unsaid; walkthrough 102)
    workers = int(clusters.get("workers") or active)
    qualified = int(clusters.get("qualified_workers") or active)
    whose = (f" of the {active:,} workers with {need} answers or more (of {workers:,})" if active < workers else "")
    if qualified > active:  # (the 200 with the most answers read as all those of 30 or more; read 52)
        whose = (f" of the {active:,} workers with the most answers (of the {qualified:,} with {need} answers or more"
                 + (f", of {workers:,}" if workers > qualified else "") + ")")
    used, total = int(clusters.get("tasks_used") or 0), int(clusters.get("tasks_total") or 0)
    if total > used and (active < 4 or judged < pairs / 2):
        # (on a random sample of a large set: the advice to give workers more tasks would be wrong there)
        return (f"{'none looked for' if active < 4 else 'none could be looked for' if judged == 0 else 'none found'}"
                f" on the random sample of {used:,} of the {total:,} tasks a test looks at: "
                + (f"fewer than 4 workers give it {need} answers" if active < 4 else
                   f"{judged:,} of the {pairs:,} pairs{whose or ' of workers'} share {need} of its tasks")
                + ", so a group that copies may go unseen here")
    if active < 4:
        return (f"none looked for: a test needs 4 workers of {need} answers or more, and {active} "
                f"{'has' if active == 1 else 'have'} that many, so a group that copies goes unseen here (to check for "
                f"copying, give more workers {need} answers or more)")
    if judged == 0:
        return (f"none could be looked for: no two workers share the {need} tasks a test needs (the most two "
                f"share: {int(clusters.get('most_shared') or 0)}), so a group that copies goes unseen here (to check "
                f"for copying, give pairs of workers {need} or more tasks in common)")
    if judged < pairs / 2:
        # (where few pairs share enough tasks, the other workers are sparse too and the test has little power: a
        # copying group of 4 sharing 131-282 tasks went unfound, z -0.69, and "none found" read as cleared;
        # walkthroughs 57, 79 and 80)
        return (f"none found among the {judged:,} of the {pairs:,} pairs{whose or ' of workers'} that share {need} "
                f"tasks or more (the others could not be judged); with so few answers per task the test often misses a group that "
                f"copies, so look at how often each pair of workers agree")
    return "none found"


#: how the warning that a model's labels follow a dependence cluster opens
FOLLOWED = "the labels follow a dependence cluster"
#: how the safety rule's check says that step 5 of the choice read labels following a cluster and kept them
FOLLOWED_KEPT = "the labels follow a dependence cluster, and the training answers are predicted no better without its pull"


def safety_kept_text(summary: dict) -> str:
    """How the safety rule kept a model's own labels, in words ("" when it did not run): on the gold tasks (the gold
    path), or on the answers it scores. ("the two" unnamed, and only the held-out answers named where the rule also
    read the training answers: walkthrough 85; the held-out answers named for the gold path: the diff's read.)"""
    safety = str(summary.get("safety") or "") if isinstance(summary, dict) else ""
    if not safety:
        return ""
    if safety.startswith("safety rule (gold labels)"):
        return "the safety rule compared them with the cluster-weighted Dawid-Skene on the gold tasks and kept them"
    if FOLLOWED_KEPT in safety:
        # (step 5 of the choice read them and the reference was behind: not "within the noise"; walkthrough 87)
        return ("the safety rule kept them: the cluster-weighted Dawid-Skene predicts the training answers, each from "
                "the other clusters' answers, no better than DEEM's model (where the labels follow a cluster, any "
                "lead of it would have replaced them)")
    return ("the safety rule kept them: the answers it scores did not tell DEEM's model from the cluster-weighted "
            "Dawid-Skene beyond their noise")


def followed_text(summary: dict) -> str:
    """Where a fitted model's labels follow a dependence cluster it found (``summary["followed"]``: the clusters'
    workers, their agreement with the labels and the other workers'), the warning in words; "" otherwise or when the
    summary is not readable (a run folder edited by hand). On a crowd set with a copying group of four found at z
    7.0, DEEM's labels agreed with the group on 95% of its answers and were 2.9 points below majority vote's; only
    Diagnostics said so (walkthrough 84)."""
    try:
        group = (summary.get("followed") or [])[0]
        workers = [str(w) for w in group["workers"]]
        inside, outside = float(group["agreement"]), float(group["others"])
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        return ""
    if not workers or not (math.isfinite(inside) and math.isfinite(outside)):
        return ""
    kept = safety_kept_text(summary)
    kept = f" {kept[:1].upper()}{kept[1:]}." if kept else ""
    return (f"{FOLLOWED}: {names_text(workers)} agree with them on {inside:.0%} of their answers, the other workers on "
            f"{outside:.0%}. If the group copies one source, that source decided these labels: compare them with the "
            f"cluster-weighted Dawid-Skene (a method of its own, which counts the group once) and with majority vote "
            f"before relying on them.{kept}")


def cluster_texts(found: dict[str, Any]) -> list[str]:
    """One line for every dependence cluster of a clusters summary (``DependenceClusters.summary``): its workers and
    its test, "5 workers: a, b, ... (agree +0.469 beyond what the others explain; z 10.0, where a group needs z above
    2.71)"."""
    threshold = found.get("z_threshold")
    out = []
    for group in found.get("clusters") or []:
        # each cluster's test statistic beside the threshold it passed: a cluster found at z 3.4 over 3.34 read as
        # sure as one at z 22.5 (walkthrough 62)
        excess, z = group.get("excess_agreement"), group.get("z")
        # ("found above 3.33" meant little to a reader; walkthrough 101)
        strength = (f"; z {z:.1f}" + (f", where a group needs z above {threshold:.2f}" if threshold is not None else "")
                    if z is not None else "")
        copies = group.get("identical")
        if excess is not None:
            how = f" (agree {excess:+.3f} beyond what the others explain{strength})"
        elif isinstance(copies, dict) and "top_tenth" in copies:  # (no test found them: sparse answers; walk 120)
            how = (f" (the same label on every task they share, {copies['tasks']:,} or more a pair, and agreeing with "
                   f"the other workers' answers {copies['agreement']:.1%} of the time where one in ten of those other "
                   f"workers does {copies['top_tenth']:.1%} or more: copies, not workers right on every task)")
        elif isinstance(copies, dict):  # (a run stored before the fifty-fourth session: the median's words)
            how = (f" (the same label on every task they share, {copies['tasks']:,} or more a pair, and agreeing with "
                   f"the other workers' answers {copies['agreement']:.0%} of the time where the typical worker does "
                   f"{copies['typical']:.0%}: copies, not workers right on every task)")
        else:
            how = ""
        out.append(f"{len(group['workers'])} workers: {names_text(group['workers'])}{how}")
    return out


def differ_text(differ: Any, bracket: bool = True) -> str:
    """``disagrees_with_majority`` of a selection summary in words: "490 of the 2,000 tasks (108 of them ties, ...)",
    every task whose label differs from the Majority vote method's ("" where there is none). Its items: tasks whose
    label is not among their most answered classes, tasks compared, and (since walkthrough 133) tied tasks given
    another of their most answered classes than majority vote's tie rule gave (a user diffing the two files counts
    them: 539 were said where the files differed on 687)."""
    if not isinstance(differ, list) or len(differ) not in (2, 3):
        return ""
    ties = int(differ[2]) if len(differ) == 3 else 0
    ties_said = f"{ties:,} of them ties, where majority vote's tie rule gave another of the most answered classes"
    return (f"{int(differ[0]) + ties:,} of the {int(differ[1]):,} tasks"
            + ((f" ({ties_said})" if bracket else f", {ties_said}") if ties else ""))


def selection_lines(summary: dict, table: bool = True) -> list[str]:
    """A fitted model's ``selection_summary()`` as a few plain-text lines (the CLI's stderr, the pages' text);
    ``table=False`` leaves out the evidence table (:func:`evidence_lines`; the Train page shows
    :func:`selection_table` as a table)."""
    if not summary:
        return []
    fallback = summary.get("fallback") or ""
    returned = safety_rule_sentence(summary)
    found = (summary.get("clusters") or {}).get("clusters") if isinstance(summary.get("clusters"), dict) else None
    if returned:
        lines = [returned]
        if summary.get("ranking"):  # what the criterion ranked first, and by which rule (walkthrough 64)
            lines.append(f"Before the safety rule, the criterion ranked first {summary['ranking']}.")
        if found and "cluster-weighted" in returned:
            # in plain words why the right answer differs from every other method's (read as a failure: "FALLBACK",
            # its labels 0.60-0.70 like the others', which agree 0.85-0.99 among themselves; walkthrough 53)
            where = differ_text(summary.get("disagrees_with_majority"), bracket=False)  # (said inside a bracket)
            where = f" on {where}" if where else ""
            one = len(found) == 1  # ("1 group of workers answer alike ... (the first: ..."; read 45)
            lines.append(f"Why these labels differ from the other methods': {counted(len(found), 'group')} of "
                         f"workers {'answers' if one else 'answer'} alike beyond what the tasks explain "
                         f"({'its' if one else 'the first:'} {len(found[0]['workers'])} workers"
                         f"{':' if one else ','} {names_text(found[0]['workers'], 3)}); the cluster-weighted Dawid-Skene counts each group as "
                         f"one source, where majority vote, Dawid-Skene and the model trained count every member (its labels "
                         f"differ from majority vote's{where}).")
    else:
        lines = [f"start: {summary.get('start')}, layers: {summary.get('layers')}"
                 + (f" - {summary['reason']}" if summary.get("reason") else "")]
        if fallback:
            lines.append(f"FALLBACK: the labels come from {fallback}")
    lines.extend(f"collapse: {note}" for note in summary.get("collapse_notes") or [])
    if summary.get("safety") and not returned:
        lines.append(str(summary["safety"]))
    clusters = (summary.get("clusters") or {}).get("clusters") if isinstance(summary.get("clusters"), dict) else None
    if clusters is not None:
        if clusters:
            lines.append(f"dependence clusters (each counts once in the leave-cluster-out scores): {len(clusters)}")
            lines.extend(f"  {text}" for text in cluster_texts(summary["clusters"]))
            cut = search_cut(summary["clusters"])
            if cut:  # (a bounded search: attack round 51)
                lines.append(f"  found in the {counted(int(summary['clusters'].get('tests') or 0), 'test')} {cut}")
        else:
            # (it said "the held-out scores are leave-one-worker-out", beside "held out 199 answers": which is held
            # out? answers are; walkthrough 31. The gold path holds out no answers: no such scores; walkthrough 62)
            said = none_found(summary["clusters"])
            # (and no such scores where the run stopped before its candidates were scored; walkthrough 112)
            equal = "" if not summary.get("heldout_answers") or not summary.get("candidates") else (
                " (so the leave-cluster-out scores equal the held-out ones)" if said == "none found" else
                "; with no cluster, the leave-cluster-out scores equal the held-out ones")
            lines.append(f"dependence clusters: {said}{equal}")
        differ = differ_text(summary.get("disagrees_with_majority"))
        compare = (f"These labels differ from majority vote's on {differ}: compare the two before relying on them."
                   if differ else "Compare with majority vote before relying on these labels.")
        # a group is untestable only when everyone else is one source: the one cluster found
        others = (f"the cluster of {names_text(clusters[0]['workers'], 3)}" if len(clusters) == 1 else "one cluster")
        for group in (summary.get("clusters") or {}).get("untestable") or []:
            lines.append(f"not testable: {len(group)} workers ({names_text(group)}) agree with each other, but everyone "
                         f"else is one source ({others}) and a test needs two. They are counted as independent "
                         "sources; if they are one group too (one team, one model family), the answers cannot tell "
                         "whose shared opinion is the truth. Workers who agree because they are right look the same "
                         "(the note does not say they copy): gold labels for a few dozen tasks would tell the two "
                         f"apart. {compare}")
    candidates = summary.get("candidates") or []
    if candidates:
        seconds = summary.get("seconds")
        held = summary.get("heldout_answers")
        trained = sum(_trained(row) for row in candidates)  # the other rows are the references
        # (it read "... took 12.3 s (the safety rule's reference is the model: no further training; its labels ...)",
        # hard to parse; walkthrough 100)
        lines.append((f"held out {held:,} answers" if isinstance(held, int) else f"held out {held} answers")
                     + (f"; training the {trained} candidate{'s' if trained != 1 else ''} on the rest and scoring "
                        f"{'them' if trained != 1 else 'it'} took {seconds:.1f} s. "
                        + ("The labels are the safety rule's reference's" if _reference_chosen(candidates) else
                           "The chosen candidate, as trained on the rest, gives the labels (nothing is trained "
                           "again)") + ", read from all the answers, the held-out ones included"
                        if seconds is not None else ""))
    if table:
        lines.extend(evidence_lines(summary))
    return lines


def evidence_lines(summary: dict) -> list[str]:
    """:func:`selection_table` as fixed-width text lines (a heading, then a row per candidate and reference)."""
    evidence = selection_table(summary)
    if not len(evidence):
        return []
    widths = [30] + [max(len(str(heading)) + 2, 11) for heading in evidence.columns[1:-1]]
    lines = ["  " + "".join(f"{h:<{w}}" if i == 0 else f"{h:>{w}}"
                            for i, (h, w) in enumerate(zip(evidence.columns[:-1], widths))) + "  note"]

    def number(value: float) -> str:
        return "" if value != value else f"{value:.4f}"

    for row in evidence.itertuples(index=False):
        lines.append(f"  {row[0]:<30}" + "".join(f"{number(v):>{w}}" for v, w in zip(row[1:-1], widths[1:]))
                     + f"  {row[-1]}")
    return lines


def dead_units_text(data: AnnotationSet, codes: Any) -> str | None:
    """The note on classes majority vote gives to some tasks that the labels ``codes`` ((n_tasks,) class codes) never
    use (App. G.4's dead units), naming them with their majority-vote tasks, None where there are none. The advice was
    a smaller learning rate alone, where the classes left out were other spellings of classes ("one", "two" beside
    "1", "2": DEEM merged them, 0.895 against majority vote's 0.818; walkthrough 108)."""
    mv = data.majority_vote()
    counts = np.bincount(mv[mv >= 0], minlength=data.n_classes)
    used = np.zeros(data.n_classes, dtype=bool)
    codes = np.asarray(codes)
    used[codes[(codes >= 0) & (codes < data.n_classes)]] = True
    missing = np.flatnonzero((counts > 0) & ~used)
    if not len(missing):
        return None
    missing = missing[np.argsort(-counts[missing], kind="stable")]
    # (each quoted, as the other warnings quote labels; "dead units", the paper's word, read as jargon; walkthrough 109)
    # (as many counts as names: names_text shows a sixth name where it is the last one; 6 names and 5 counts; read 54)
    most = 6 if len(missing) == 6 else 5
    named = names_text(["'" + escape_controls(str(data.classes[c])) + "'" for c in missing], most=most, quote=False)
    tasks = ", ".join(f"{counts[c]:,}" for c in missing[:most]) + (", ..." if len(missing) > most else "")
    return (f"the labels never use {counted(len(missing), 'class', 'classes')} that majority vote gives to some tasks "
            f"({named}: on {tasks} tasks): if they are other spellings of classes, write each class one way in the "
            f"file; else the model may have stopped using a class: try a smaller learning rate")
