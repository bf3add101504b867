"""Start and depth chosen from held-out answers, and collapse caught while training.

``fit_candidates`` holds out answers (``analysis/selection.py``), trains every candidate (start x depth):
the starts and seeds of one depth train together as one batched model (a model of another depth has other
parameter shapes and, through sparsemax, another sampler gradient, so depths are separate batches), scores
each run on the held-out answers and marks runs that collapsed. ``choose`` applies the rule:

1. Drop collapsed candidates (they predicted fewer classes than majority vote finds at some epoch).
2. Criterion: mean held-out log-likelihood per answer, ``p(x_i = l | x_-i)`` from the free energy.
3. Parsimony: the best candidate is replaced by a shallower one (then by the Dawid-Skene start) whose
   log-likelihood is within ``PARSIMONY_SE`` paired standard errors of it: a deeper model must earn its
   layers on data it did not see.
4. Safety rule: the choice must not agree with the held-out answers significantly less often than plain
   majority vote (computed from the same training answers) does, paired over the held-out answers
   (``SAFETY_Z`` standard errors); if it does, majority vote itself is returned (the untrained iRBM of App. G.1
   without noise, which *is* majority vote) and the reason is recorded.

``CollapseGuard`` is the training callback for one fixed configuration: it snapshots the parameters at
every healthy epoch and stops training when a run collapses, so that :func:`train_guarded` can restart
from the last healthy state with a smaller step.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch

from deem_core.analysis.selection import (DEFAULT_HELDOUT_SHARE, HeldOut, heldout_agreement, heldout_log_probs,
                                          hold_out_answers, observed_log_likelihood, paired_gain)
from deem_core.data.annotations import AnnotationSet, DataError
from deem_core.model.classmap import hungarian_class_map
from deem_core.model.network import DEEMNetwork
from deem_core.model.engine import task_outputs
from deem_core.model.training import TrainingResult

__all__ = ["labels_of", "MAJORITY_VOTE", "majority_vote_network", "CandidateFit", "CollapseGuard", "choose", "fit_candidates", "major_classes", "train_guarded",
           "PARSIMONY_SE", "SAFETY_Z", "CollapseError"]

#: a shallower candidate (or the Dawid-Skene start) replaces the best one when its held-out log-likelihood is
#: within this many paired standard errors of the best
PARSIMONY_SE = 2.0
#: the safety rule switches to the majority-vote start when majority vote agrees with the held-out answers more
#: often than the choice by more than this many paired standard errors
SAFETY_Z = 2.0
#: ``Choice.index`` when the safety rule returns plain majority vote
MAJORITY_VOTE = -2
#: a class counts for the collapse check when majority vote gives it to at least this share of the tasks and at
#: least MAJOR_CLASS_MIN tasks (on a handful of tasks a missing class is no sign of collapse)
MAJOR_CLASS_SHARE = 0.01
MAJOR_CLASS_MIN = 10


class CollapseError(DataError):
    """Every start collapsed and no healthy fallback exists (the CLI exits 2 with this message)."""


def major_classes(data: AnnotationSet) -> int:
    """How many classes majority vote gives to at least ``MAJOR_CLASS_SHARE`` of the tasks and at least
    ``MAJOR_CLASS_MIN`` tasks."""
    mv = data.majority_vote()
    mv = mv[mv >= 0]
    if not len(mv):
        return 0
    counts = np.bincount(mv, minlength=data.n_classes)
    return int((counts >= max(MAJOR_CLASS_MIN, math.ceil(MAJOR_CLASS_SHARE * len(mv)))).sum())


class CollapseGuard:
    """Training callback: watches every run's number of predicted classes against majority vote's.

    A run has *collapsed* at an epoch where it predicts fewer classes than majority vote finds (dead units,
    App. G.4). ``first_collapse[r]`` is the first such epoch (None = never). With ``stop=True`` training stops
    at the first collapse. ``start_state`` holds the parameters as training began and ``healthy_state`` those at
    the end of the last epoch where every run was healthy (``healthy_epoch``; 0 = the start). The live network
    comes through ``on_train_begin`` (the trainer may convert the network it was given to another layout).
    """

    def __init__(self, n_classes_expected: int, stop: bool = False):
        self.expected = int(n_classes_expected)
        self.stop = stop
        self.network: DEEMNetwork | None = None
        self.first_collapse: list[int | None] = []
        self.healthy_epoch = 0
        self.start_state: dict[str, torch.Tensor] | None = None
        self.healthy_state: dict[str, torch.Tensor] | None = None

    def _state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.network.state_dict().items()}

    def on_train_begin(self, network: DEEMNetwork) -> None:
        self.network = network
        self.first_collapse = [None] * network.n_runs
        self.start_state = self.healthy_state = self._state()

    def on_epoch_end(self, epoch: int, logs: list[dict[str, Any]]) -> bool:
        collapsed_now = []
        for row in logs:
            if row["status"] == "running" and row["n_predicted_classes"] < self.expected:
                collapsed_now.append(row["run"])
                if self.first_collapse[row["run"]] is None:
                    self.first_collapse[row["run"]] = epoch
        if not collapsed_now:
            self.healthy_epoch = epoch
            self.healthy_state = self._state()
            return False
        return self.stop

    def collapsed(self, run: int) -> bool:
        return bool(self.first_collapse) and self.first_collapse[run] is not None


@dataclass
class CandidateFit:
    """One candidate (start, depth): its runs, held-out scores and health."""

    start: str
    depth: int
    result: TrainingResult  # this candidate's runs only
    loglik: np.ndarray  # (runs, h) held-out log-likelihood per answer
    agreement: np.ndarray  # (h,) 1 where the candidate's label (training answers only) equals the held-out answer
    collapsed_at: list[int | None]
    seconds: float

    @property
    def name(self) -> str:
        return f"{self.start} start, {self.depth} layer{'s' if self.depth != 1 else ''}"

    @property
    def collapsed(self) -> bool:
        return any(e is not None for e in self.collapsed_at)

    @property
    def mean_loglik(self) -> np.ndarray:
        """(h,) per-answer log-likelihood averaged over the candidate's runs."""
        return self.loglik.mean(axis=0)


def labels_of(network: DEEMNetwork, data: AnnotationSet, reference: np.ndarray, device: torch.device) -> np.ndarray:
    """Consensus class codes (n,) of the network's runs on ``data`` (each run's hidden units mapped to classes
    against ``reference`` with the Hungarian algorithm, posteriors averaged over runs)."""
    hidden = task_outputs(network, data)[1].cpu().numpy()  # (R, n, K)
    mapped = np.zeros_like(hidden)
    for run in range(hidden.shape[0]):
        class_map = hungarian_class_map(hidden[run].argmax(-1), reference, data.n_classes)
        mapped[run][:, class_map] = hidden[run]
    return mapped.mean(axis=0).argmax(-1)


def fit_candidates(data: AnnotationSet, starts: Sequence[str], depths: Sequence[int], seeds: Sequence[int],
                   train_group: Callable[[AnnotationSet, int, list[str], list[Callable]], TrainingResult],
                   device: torch.device, share: float = DEFAULT_HELDOUT_SHARE, split_seed: int = 0,
                   ) -> tuple[list[CandidateFit], HeldOut, np.ndarray]:
    """Train every (start, depth) on the answers left after holding out ``share`` of them; score each.

    ``train_group(train_data, depth, starts, guard)`` trains one depth's starts x seeds as one batched
    model (runs ordered start by start, seeds within) and returns the TrainingResult, or None to leave that
    depth out (training was stopped or cancelled before it).
    Returns the candidates (in ``depths`` x ``starts`` order), the held-out answers and majority vote's
    per-answer agreement with them.
    """
    train_data, held = hold_out_answers(data, share, split_seed)
    reference = data.majority_vote()
    mv_train = train_data.majority_vote()
    expected = major_classes(data)
    n_seeds = len(seeds)
    out = []
    for depth in depths:
        started = time.perf_counter()
        guard = CollapseGuard(expected, stop=False)
        result = train_group(train_data, depth, list(starts), guard)
        if result is None:  # training was stopped before this depth
            continue
        seconds = time.perf_counter() - started
        log_probs = heldout_log_probs(result.network, train_data, held)
        loglik = observed_log_likelihood(log_probs, held)  # (R, h)
        for index, start in enumerate(starts):
            runs = list(range(index * n_seeds, (index + 1) * n_seeds))
            sub = result.select_runs(runs)
            labels = labels_of(sub.network, train_data, reference, device)
            collapsed_at = [guard.first_collapse[r] if guard.first_collapse else None for r in runs]
            for r in runs:  # a diverged run is as unusable as a collapsed one
                if result.status[r] == "diverged" and collapsed_at[r - runs[0]] is None:
                    collapsed_at[r - runs[0]] = -1
            out.append(CandidateFit(start=start, depth=int(depth), result=sub, loglik=loglik[runs],
                                    agreement=heldout_agreement(labels, held), collapsed_at=collapsed_at,
                                    seconds=seconds / len(starts)))
    return out, held, heldout_agreement(mv_train, held)


@dataclass
class Choice:
    index: int
    reason: str
    table: pd.DataFrame
    safety_applied: bool = False
    notes: list[str] = field(default_factory=list)


def choose(candidates: list[CandidateFit], mv_agreement: np.ndarray, safety: bool = True) -> Choice:
    """Apply the rule of the module docstring; returns the chosen index, the reason and the evidence table."""
    rows = []
    healthy = [i for i, c in enumerate(candidates) if not c.collapsed]
    for c in candidates:
        rows.append({"start": c.start, "layers": c.depth, "heldout_loglik": float(c.mean_loglik.mean()),
                     "heldout_agreement": float(c.agreement.mean()), "collapsed": c.collapsed,
                     "seconds": c.seconds})
    table = pd.DataFrame(rows)
    if not healthy:
        table["chosen"] = False
        return Choice(index=-1, reason="every candidate collapsed", table=table)
    best = max(healthy, key=lambda i: candidates[i].mean_loglik.mean())
    reason = "highest held-out log-likelihood"
    # parsimony: the simplest candidate statistically tied with the best (fewer layers first, then the DS start)
    order = sorted(healthy, key=lambda i: (candidates[i].depth, 0 if candidates[i].start == "ds" else 1))
    for i in order:
        if i == best:
            break
        gain, se = paired_gain(candidates[i].mean_loglik, candidates[best].mean_loglik)
        if gain <= PARSIMONY_SE * se:
            reason = (f"within {PARSIMONY_SE:g} standard errors of the best held-out log-likelihood "
                      f"({candidates[best].name}: +{gain:.4f} ± {se:.4f} nats per answer); fewer layers preferred")
            best = i
            break
    chosen, safety_applied = best, False
    if safety and len(mv_agreement) > 1:
        gain, se = paired_gain(candidates[best].agreement, mv_agreement)
        if se > 0 and gain > SAFETY_Z * se:
            chosen, safety_applied = MAJORITY_VOTE, True
            reason = (f"safety rule: majority vote agreed with the held-out answers more often than "
                      f"{candidates[best].name} (+{gain:.4f} ± {se:.4f} per answer): majority vote is returned")
    table["chosen"] = [i == chosen for i in range(len(candidates))]
    mv_row = {"start": "majority vote", "layers": 0, "heldout_loglik": math.nan,
              "heldout_agreement": float(np.mean(mv_agreement)) if len(mv_agreement) else math.nan,
              "collapsed": False, "seconds": 0.0, "chosen": chosen == MAJORITY_VOTE}
    table = pd.concat([table, pd.DataFrame([mv_row])], ignore_index=True)
    return Choice(index=chosen, reason=reason, table=table, safety_applied=safety_applied)


def majority_vote_network(n_runs: int, n_workers: int, n_classes: int, device=None) -> DEEMNetwork:
    """The iRBM of App. G.1 without noise: ``w_i^{lm} = [l == m]``, ``a = b = 0``. Its hidden logits are the vote
    counts (a missing worker adds the same constant to every class), so its argmax is majority vote and its
    posterior the softmax of the counts. A hidden bias of -1e-4 per class index breaks exact ties towards the
    first class, as majority vote does (the missing-worker constants differ by rounding between classes)."""
    network = DEEMNetwork(n_runs, n_workers, n_classes, 0)
    with torch.no_grad():
        network.irbm_weight.copy_(torch.eye(n_classes).expand_as(network.irbm_weight))
        network.hidden_bias.copy_(-1e-4 * torch.arange(n_classes, dtype=torch.float32).expand_as(network.hidden_bias))
    return network.to(device) if device is not None else network


def train_guarded(train: Callable[[DEEMNetwork | None, float, int, list], TrainingResult],
                  initial: DEEMNetwork | None, lr: float, epochs: int, expected_classes: int, shrink: float = 4.0,
                  ) -> tuple[TrainingResult, list[str]]:
    """Train one configuration under the collapse guard, recovering twice.

    ``train(network, lr, epochs, extra_callbacks)`` runs the batched training (``network=None``: the trainer's
    own start). On a collapse: (1) restart from the last healthy epoch with ``lr / shrink`` for the epochs left;
    (2) if it collapses again, restart from the start with ``lr / shrink**2`` for all epochs (a state just
    before a collapse can be past saving at any step). Returns the result (history stitched across restarts,
    epochs renumbered) and what happened; when the last note starts with "still collapsed" the caller falls
    back.
    """
    notes: list[str] = []
    network, start_state = initial, None
    history: list[dict] = []
    done, current_lr = 0, float(lr)
    for attempt in range(3):
        guard = CollapseGuard(expected_classes, stop=attempt < 2)
        result = train(network, current_lr, epochs - done, [guard])
        network = result.network  # the live network (possibly in another layout than the one given)
        start_state = start_state if start_state is not None else guard.start_state
        history.extend({**row, "epoch": row["epoch"] + done} for row in result.history)
        collapsed = [r for r in range(network.n_runs) if guard.collapsed(r)]
        if not collapsed:
            result.history, result.epochs_run = history, done + result.epochs_run
            return result, notes
        at = done + min(e for e in guard.first_collapse if e is not None)
        if attempt == 2:
            notes.append(f"still collapsed at lr {current_lr:g} (epoch {at})")
            break
        if attempt == 0 and guard.healthy_epoch > 0:
            done += guard.healthy_epoch
            network.load_state_dict(guard.healthy_state)
            where = f"epoch {done}"
        else:
            done = 0
            network.load_state_dict(start_state)
            where = "the start"
        history = [row for row in history if row["epoch"] <= done]
        current_lr /= shrink
        notes.append(f"collapse at epoch {at} (fewer predicted classes than majority vote finds) at lr "
                     f"{current_lr * shrink:g}: restarted from {where} with lr {current_lr:g}")
    result.history, result.epochs_run = history, len({row["epoch"] for row in history})
    return result, notes
