"""Choosing DEEM's start and depth without ground truth: held-out answers scored by the model itself.

A random share of the observed answers is held out (at most one per task, and never a task's last answer),
the candidate models (start x depth) are fitted on the rest, and each is scored by how well it predicts
the answers it did not see. With one hidden unit the free energy F(x) is exact (the multinomial layers are
deterministic), so the conditional of one answer given the task's other answers is exact for any depth:

    p(x_i = l | x_-i) = softmax_l( -F(x with x_i := l) )

(the partition function cancels). The criterion is the mean held-out log-likelihood per answer; the
per-answer values allow a paired comparison between candidates (:func:`paired_gain`).

A second, model-free criterion is kept for comparison and for the safety rule: how often a candidate's
aggregated label (computed from the task's training answers only) equals the held-out answer
(:func:`heldout_agreement`). Under conditional independence that rate grows with the label's accuracy;
with dependent workers it rewards agreeing with the dependent group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from deem_core.data.annotations import AnnotationSet
from deem_core.model.network import DEEMNetwork

__all__ = ["selection_lines", "HeldOut", "MIN_HELDOUT", "heldout_size", "hold_out_answers", "heldout_log_probs", "heldout_agreement", "paired_gain",
           "DEFAULT_HELDOUT_SHARE"]

#: below this many held-out answers the criterion is too noisy to choose with (the default is used)
MIN_HELDOUT = 30
#: share of the observed answers held out for scoring (capped at one answer per task with >= 2 answers)
DEFAULT_HELDOUT_SHARE = 0.1


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


@torch.no_grad()
def heldout_log_probs(network: DEEMNetwork, train: AnnotationSet, held: HeldOut, batch_tasks: int = 2048,
                      ) -> torch.Tensor:
    """log p(x_i = l | x_-i) for every held-out answer, every run and every class l: (R, h, K).

    x_-i are the task's answers in ``train`` (the set without the held-out answers; there is one held-out
    answer per task at most). Each held-out answer is completed with every class l (:func:`completions`);
    the K free energies of the completed inputs give the conditional exactly (one hidden unit, deterministic
    layers; on the sparse path a worker pair that never answered a task together in training has no block
    and contributes nothing). ``batch_tasks`` held-out answers at a time, on the network's own layout.
    """
    from deem_core.model.engine import task_outputs  # noqa: PLC0415

    r, k = network.n_runs, network.n_classes
    out = []
    for start in range(0, len(held), batch_tasks):
        part = HeldOut(task=held.task[start:start + batch_tasks], worker=held.worker[start:start + batch_tasks],
                       label=held.label[start:start + batch_tasks])
        energy = task_outputs(network, completions(train, part))[0]  # (R, b*K)
        out.append(torch.log_softmax(-energy.view(r, len(part), k), dim=-1))
    if not out:
        return torch.zeros(r, 0, k, device=network.irbm_weight.device)
    return torch.cat(out, dim=1)


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


def selection_lines(summary: dict) -> list[str]:
    """A fitted model's ``selection_summary()`` as a few plain-text lines (the CLI's stderr, the pages' text)."""
    if not summary:
        return []
    lines = [f"start: {summary.get('start')}, layers: {summary.get('layers')}"
             + (f" - {summary['reason']}" if summary.get("reason") else "")]
    if summary.get("fallback"):
        lines.append(f"FALLBACK: the labels come from {summary['fallback']}")
    lines.extend(f"collapse: {note}" for note in summary.get("collapse_notes") or [])
    candidates = summary.get("candidates") or []
    if candidates:
        seconds = summary.get("seconds")
        lines.append(f"held out {summary.get('heldout_answers')} answers"
                     + (f"; choosing took {seconds:.1f} s" if seconds is not None else ""))
        lines.append(f"  {'candidate':<24}{'held-out log-lik':>17}{'held-out agreement':>20}  note")
        for row in candidates:
            name = ("majority vote" if row["start"] == "majority vote"
                    else f"{row['start']} start, {row['layers']} layer(s)")
            loglik = row.get("heldout_loglik")
            loglik = "" if loglik is None or loglik != loglik else f"{loglik:.4f}"
            note = "chosen" if row.get("chosen") else ("collapsed" if row.get("collapsed") else "")
            lines.append(f"  {name:<24}{loglik:>17}{row.get('heldout_agreement', float('nan')):>20.4f}  {note}")
    return lines
