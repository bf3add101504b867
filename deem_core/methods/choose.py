"""Start and depth chosen from held-out answers, dependent workers counted once, collapse caught while training.

``fit_candidates`` holds out answers (``analysis/selection.py``), trains every candidate (start x depth):
the starts and seeds of one depth train together as one batched model, and on a GPU every depth's too (runs of
several depths in one network, :func:`depths_together`; on a CPU the depths train one after another), scores
each run on the held-out answers, scores two references that are not trained (majority vote and the
cluster-weighted Dawid-Skene of ``methods/clusters.py``) and marks runs that collapsed. ``choose`` applies the rule:

1. Drop collapsed candidates (they predicted fewer classes than majority vote finds at some epoch).
2. Criterion: mean **leave-cluster-out** log-likelihood per held-out answer, ``p(x_i = l | x_-c(i))`` from the free
   energy with the answers of worker i's dependence cluster left out (``analysis/selection.py``). Without
   dependence clusters it is the held-out log-likelihood ``p(x_i = l | x_-i)`` itself.
3. Parsimony: the best candidate is replaced by the best candidate of a shallower depth whose criterion is within
   ``PARSIMONY_SE`` paired standard errors of it: a deeper model must earn its layers on data it did not see (the
   starts of one depth are not ranked by simplicity: the better criterion wins).
4. Safety rule: every method is scored by the leave-cluster-out predictive score (its label of a task without a
   cluster's answers, read through each worker's confusion against those labels, predicting that cluster's
   held-out answers). When a reference (majority vote; the cluster-weighted Dawid-Skene, which is Dawid-Skene when
   no cluster is found) predicts better than the choice by more than ``SAFETY_Z`` paired standard errors, the
   best such reference is returned (an untrained iRBM holding it; ``MAJORITY_VOTE`` / ``CLUSTER_WEIGHTED``) and the
   reason is recorded. This is what happens when a copied group decides the candidates' labels: every candidate
   follows the group (training from either start, at any rate or depth measured), the group's answers are then
   predicted badly from the other clusters, and the labels where each cluster counts once predict them better.
   Where clusters are found the same score is also read on every training answer (:data:`SAFETY_ON_TRAINING_ANSWERS`),
   and a reference beating the choice on either sample replaces it.
5. Labels that follow a cluster: where the choice survives the safety rule but its labels follow a cluster it found
   (the cluster's members agree with them on at least 95% of their answers and the other workers on 15 points less:
   ``diagnostics.quality.followed_clusters``), the cluster-weighted Dawid-Skene replaces it when it predicts the
   training answers better at all (any lead, not ``SAFETY_Z`` standard errors): two signs of one failure, a group
   deciding the labels, where the safety rule alone reads one (:data:`FOLLOWED_ANY_LEAD`).

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
import scipy.sparse as sp
import torch

from deem_core.analysis.selection import (DEFAULT_HELDOUT_SHARE, check_stop, FOLLOWED_KEPT, HeldOut, ScoringStopped, cluster_pairs,
                                          heldout_agreement, heldout_log_probs, hold_out_answers, observed_log_likelihood,
                                          paired_gain, paired_gain_by_task, pair_scores, predictive_scores,
                                          without_own_cluster, SAFETY_Z)
from deem_core.data.annotations import AnnotationSet, DataError
from deem_core.data.text import names_text
from deem_core.data.pairs import answer_matrix
from deem_core.methods.clusters import DependenceClusters, cluster_weights
from deem_core.methods.dawid_skene import DawidSkeneFit, dawid_skene_posterior, fit_dawid_skene, tie_ranks
from deem_core.model.classmap import hungarian_class_map
from deem_core.model.network import WORKER_MASKS, DEEMNetwork
from deem_core.model.engine import task_outputs
from deem_core.model.history import History
from deem_core.model.training import TrainingResult

__all__ = ["depths_together", "labels_of", "MAJORITY_VOTE", "CLUSTER_WEIGHTED", "majority_vote_network",
           "cluster_weighted_network", "cluster_normalisers", "without_missing_normalisers", "CandidateFit", "Reference", "CollapseGuard", "GUARD_STATES", "choose", "fit_candidates", "major_classes", "train_guarded",
           "training_answer_gain", "PARSIMONY_SE", "SAFETY_Z", "CollapseError"]

#: a shallower candidate (or the Dawid-Skene start) replaces the best one when its criterion is within this many
#: paired standard errors of the best
PARSIMONY_SE = 2.0

#: where dependence clusters are found, the safety rule also compares the predictive scores of the training answers
#: (each predicted from the other clusters' answers, its own answer left out of its worker's confusion; the error of
#: the mean counted by task), ten times the evidence of the held-out answers: a copying trio among 60 workers, found, led
#: every candidate below majority vote and 6-16 points below the cluster-weighted Dawid-Skene, which the held-out
#: answers could not tell apart (+0.007 to +0.042 +- 0.026-0.028 nats) and the training answers do (+0.09 to +0.14
#: +- 0.011; the ``trio`` family of benchmarks/selection.py). Without clusters the held-out score stays: on the
#: training answers an in-sample Dawid-Skene fit of sparse data scored above more accurate choices (long-tail sets
#: fell 4.8-9.8 points when it was read there)
SAFETY_ON_TRAINING_ANSWERS = True
#: step 5 of the rule: where the chosen candidate's labels follow a dependence cluster, the cluster-weighted Dawid-Skene
#: replaces it when it predicts the training answers (each from the other clusters' answers) better by any margin. On
#: crowd sets with a copying group of four among 40 workers (walkthroughs 84-86, five draws), DEEM's kept labels
#: followed the group (members 96-98%, others 61-64%) and were 1.6 to 5.1 points below majority vote; the reference
#: led by 0.019 to 0.026 nats per answer there, under the 2 s.e. (0.030-0.032) the safety rule asks, and was 0.3 to 5.3
#: points more accurate. The held-out answers (one a task at most) read the other way within about one s.e. on all
#: five: they are not read for this step
FOLLOWED_ANY_LEAD = True
#: ``Choice.index`` when the safety rule returns plain majority vote
MAJORITY_VOTE = -2
#: ``Choice.index`` when the safety rule returns the cluster-weighted Dawid-Skene
CLUSTER_WEIGHTED = -3
#: a class counts for the collapse check when majority vote gives it to at least this share of the tasks and at
#: least MAJOR_CLASS_MIN tasks (on a handful of tasks a missing class is no sign of collapse)
MAJOR_CLASS_SHARE = 0.01
MAJOR_CLASS_MIN = 10


class CollapseError(DataError):
    """Every start collapsed and no healthy fallback exists (the CLI exits 2 with this message)."""


#: a start in a sentence
START_WORDS = {"ds": "Dawid-Skene", "mv": "majority-vote"}


def major_classes(data: AnnotationSet) -> int:
    """How many classes majority vote gives to at least ``MAJOR_CLASS_SHARE`` of the tasks and at least
    ``MAJOR_CLASS_MIN`` tasks."""
    mv = data.majority_vote()
    mv = mv[mv >= 0]
    if not len(mv):
        return 0
    counts = np.bincount(mv, minlength=data.n_classes)
    return int((counts >= max(MAJOR_CLASS_MIN, math.ceil(MAJOR_CLASS_SHARE * len(mv)))).sum())


#: copies of the network the collapse guard of one configuration's training holds beside it (its start state and its
#: last healthy one; :func:`train_guarded`'s first attempt): counted in that training's memory estimate
GUARD_STATES = 2


class CollapseGuard:
    """Training callback: watches every run's number of predicted classes against majority vote's.

    A run has *collapsed* at an epoch where it predicts fewer classes than majority vote finds (dead units,
    App. G.4). ``first_collapse[r]`` is the first such epoch (None = never). With ``stop=True`` training stops
    at the first collapse. ``start_state`` holds the parameters as training began and ``healthy_state`` those at
    the end of the last epoch where every run was healthy (``healthy_epoch``; 0 = the start), each a copy of the
    network (:data:`GUARD_STATES`); ``keep_states=False`` keeps neither (a caller that only reads the collapses). The
    live network comes through ``on_train_begin`` (the trainer may convert the network it was given to another
    layout).
    """

    def __init__(self, n_classes_expected: int, stop: bool = False, keep_states: bool = True):
        self.expected = int(n_classes_expected)
        self.stop = stop
        self.keep_states = keep_states
        self.network: DEEMNetwork | None = None
        self.first_collapse: list[int | None] = []
        self.healthy_epoch = 0
        self.start_state: dict[str, torch.Tensor] | None = None
        self.healthy_state: dict[str, torch.Tensor] | None = None

    def _state(self) -> dict[str, torch.Tensor]:
        # (the per-worker masks are constants, views of one pattern: a clone of theirs would be two more (d, K, K))
        return {k: v.detach().clone() for k, v in self.network.state_dict().items() if k not in WORKER_MASKS}

    def on_train_begin(self, network: DEEMNetwork) -> None:
        self.network = network
        self.first_collapse = [None] * network.n_runs
        if self.keep_states:
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
            if not self.keep_states:
                return False
            if self.healthy_state is self.start_state:
                self.healthy_state = self._state()
            else:  # in place: no third copy of the network while the new state is taken
                current = self.network.state_dict()
                for key, saved in self.healthy_state.items():
                    saved.copy_(current[key])
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
    lco_loglik: np.ndarray | None = None  # (runs, h) leave-cluster-out log-likelihood (None: = loglik)
    score: np.ndarray | None = None  # (runs, h) leave-cluster-out predictive score (None: not computed)
    pair_score: np.ndarray | None = None  # (runs, A) the same score of every training answer (own answer left out)

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

    @property
    def criterion(self) -> np.ndarray:
        """(h,) per-answer leave-cluster-out log-likelihood averaged over the runs (the held-out one without
        clusters)."""
        return (self.loglik if self.lco_loglik is None else self.lco_loglik).mean(axis=0)

    @property
    def mean_score(self) -> np.ndarray | None:
        return None if self.score is None else self.score.mean(axis=0)

    @property
    def mean_pair_score(self) -> np.ndarray | None:
        return None if self.pair_score is None else self.pair_score.mean(axis=0)


@dataclass
class Reference:
    """A method the safety rule compares the choice with: majority vote, or the cluster-weighted Dawid-Skene."""

    key: str  # "mv" or "cwds"
    name: str
    score: np.ndarray  # (h,) leave-cluster-out predictive score
    agreement: np.ndarray  # (h,)
    fit: DawidSkeneFit | None = None  # the cluster-weighted fit on all answers ("cwds")
    pair_score: np.ndarray | None = None  # (A,) the score of every training answer (own answer left out)
    pair_task: np.ndarray | None = None  # (A,) the task of each of those answers


def labels_of(network: DEEMNetwork, data: AnnotationSet, reference: np.ndarray, device: torch.device,
              runs: Sequence[int] | None = None) -> np.ndarray:
    """Consensus class codes (n,) of the network's runs on ``data`` (each run's hidden units mapped to classes
    against ``reference`` with the Hungarian algorithm, posteriors averaged over ``runs``, every run when None)."""
    hidden = task_outputs(network, data)[1].cpu().numpy()  # (R, n, K)
    if runs is not None and len(runs):
        hidden = hidden[np.asarray(runs, dtype=np.int64)]
    mapped = np.zeros_like(hidden)
    for run in range(hidden.shape[0]):
        class_map = hungarian_class_map(hidden[run].argmax(-1), reference, data.n_classes)
        mapped[run][:, class_map] = hidden[run]
    return mapped.mean(axis=0).argmax(-1)


class _Scorer:
    """Everything the leave-cluster-out scores need, built once per selection: the held-out tasks without each
    held-out worker's cluster, the leave-cluster-out pairs of the training answers and the references."""

    def __init__(self, data: AnnotationSet, train: AnnotationSet, held: HeldOut, clusters: DependenceClusters | None,
                 seed: int = 0):
        self.train, self.held = train, held
        self.labels = np.arange(data.n_workers) if clusters is None else np.asarray(clusters.labels)
        self.weights = cluster_weights(self.labels)
        self.clustered = bool((np.bincount(self.labels) > 1).any())
        self.lco_train = without_own_cluster(train, held, self.labels) if self.clustered else train
        self.held_tasks = self.lco_train.subset_tasks(held.task)  # each held-out task without its worker's cluster
        self.pairs = cluster_pairs(train, self.labels, seed=seed)

    def network_scores(self, network: DEEMNetwork, stop: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(R, h) leave-cluster-out log-likelihood, (R, h) predictive score and (R, A) the predictive score of the
        training answers of every run; ``stop``: checked between its parts (:class:`ScoringStopped`)."""
        lco = observed_log_likelihood(heldout_log_probs(network, self.lco_train, self.held, stop=stop), self.held)
        check_stop(stop)
        pair_post = task_outputs(network, self.pairs.data)[1].cpu().numpy()  # (R, P, K) hidden-unit order
        check_stop(stop)
        held_post = task_outputs(network, self.held_tasks)[1].cpu().numpy()
        d = network.n_workers
        score = np.stack([predictive_scores(pair_post[r], self.pairs, held_post[r], self.held, d)
                          for r in range(network.n_runs)])
        on_pairs = np.stack([pair_scores(pair_post[r], self.pairs, d) for r in range(network.n_runs)])
        return lco, score, on_pairs

    @staticmethod
    def _votes(data: AnnotationSet) -> np.ndarray:
        """(n, K) one-hot of majority vote's label (ties to the smallest class, as the label returned)."""
        labels = data.majority_vote()
        out = np.full((data.n_tasks, data.n_classes), 1.0 / data.n_classes)
        answered = labels >= 0
        out[answered] = np.eye(data.n_classes)[labels[answered]]
        return out

    def _ds_posterior(self, fit: DawidSkeneFit, data: AnnotationSet) -> np.ndarray:
        return cluster_weighted_posterior(fit, data, self.weights)

    def references(self, data: AnnotationSet) -> list[Reference]:
        """Majority vote and the cluster-weighted Dawid-Skene (Dawid-Skene without clusters), fitted on the
        training answers and scored like the candidates; the cluster-weighted fit on all answers is kept for the
        fallback."""
        d = data.n_workers
        mv_score = predictive_scores(self._votes(self.pairs.data), self.pairs, self._votes(self.held_tasks),
                                     self.held, d)
        mv_pairs = pair_scores(self._votes(self.pairs.data), self.pairs, d)
        mv_agree = heldout_agreement(self.train.majority_vote(), self.held)
        fit = fit_dawid_skene(self.train, worker_weights=self.weights)
        cw_post = self._ds_posterior(fit, self.pairs.data)
        cw_score = predictive_scores(cw_post, self.pairs, self._ds_posterior(fit, self.held_tasks), self.held, d)
        cw_pairs = pair_scores(cw_post, self.pairs, d)
        cw_agree = heldout_agreement(fit.posterior.argmax(1), self.held)
        name = "cluster-weighted Dawid-Skene" if self.clustered else "Dawid-Skene"
        return [Reference("mv", "majority vote", mv_score, mv_agree, pair_score=mv_pairs,
                          pair_task=self.pairs.task),
                Reference("cwds", name, cw_score, cw_agree,
                          fit=fit_dawid_skene(data, worker_weights=self.weights), pair_score=cw_pairs,
                          pair_task=self.pairs.task)]


def depths_together(n_depths: int, device: torch.device | str, path: str) -> bool:
    """Whether the candidates of ``n_depths`` depths train as one batched model (runs of several depths,
    :class:`DEEMNetwork`) rather than one depth after another: on a GPU, on either path (``path``, "dense" or
    "sparse", is the one training takes). A GPU step is launch-bound, so one model holding every depth's runs costs
    about what the deepest alone does; on a CPU the shallow runs would pay for the deepest run's products
    (``benchmarks/depths_together.py``)."""
    return n_depths > 1 and path in ("dense", "sparse") and torch.device(device).type == "cuda"


def fit_candidates(data: AnnotationSet, starts: Sequence[str], depths: Sequence[int], seeds: Sequence[int],
                   train_group: Callable[[AnnotationSet, list[int], list[str], list[Callable]], TrainingResult],
                   device: torch.device, share: float = DEFAULT_HELDOUT_SHARE, split_seed: int = 0,
                   clusters: DependenceClusters | None = None, together: bool = False, stop: Any = None,
                   ) -> tuple[list[CandidateFit], HeldOut, list[Reference], tuple[TrainingResult, list[int]] | None]:
    """Train every (start, depth) on the answers left after holding out ``share`` of them; score each.

    ``train_group(train_data, group_depths, starts, guard)`` trains the starts x seeds of the depths
    ``group_depths`` as one batched model (runs ordered depth by depth, start by start within a depth, seeds
    within a start) and returns the TrainingResult, or None to leave those depths out (training was stopped or
    cancelled before them). ``together``: every depth in one group (one batched model of runs of several depths,
    :func:`depths_together`); otherwise one group per depth, trained one after the other. ``clusters``: the
    dependence clusters (None: every worker alone). Returns the candidates (in ``depths`` x ``starts`` order), the
    held-out answers, the references (majority vote, cluster-weighted Dawid-Skene) scored on them and, when ``stop``
    (an event: a cancel, a time limit) was set after a group trained, that group's result and depths, not scored (nor
    are the references then, nor any group after it): scoring waited for no cancel, 94-373 s on 20-314 classes
    (attack round 51).
    """
    train_data, held = hold_out_answers(data, share, split_seed)
    reference = data.majority_vote()
    expected = major_classes(data)
    scorer = _Scorer(data, train_data, held, clusters, seed=split_seed)
    n_seeds = len(seeds)
    out = []
    for group in ([list(depths)] if together else [[depth] for depth in depths]):
        started = time.perf_counter()
        guard = CollapseGuard(expected, stop=False, keep_states=False)  # (read for its collapses only)
        result = train_group(train_data, [int(depth) for depth in group], list(starts), guard)
        if result is None:  # training was stopped before this group
            continue
        seconds = time.perf_counter() - started
        try:
            check_stop(stop)
            log_probs = heldout_log_probs(result.network, train_data, held, stop=stop)
            loglik = observed_log_likelihood(log_probs, held)  # (R, h)
            lco, score, on_pairs = scorer.network_scores(result.network, stop)
        except ScoringStopped:
            return out, held, [], (result, [int(depth) for depth in group])
        for index, (depth, start) in enumerate((depth, start) for depth in group for start in starts):
            runs = list(range(index * n_seeds, (index + 1) * n_seeds))
            sub = result.select_runs(runs)
            labels = labels_of(sub.network, train_data, reference, device)
            collapsed_at = [guard.first_collapse[r] if guard.first_collapse else None for r in runs]
            for r in runs:  # a diverged run is as unusable as a collapsed one
                if result.status[r] == "diverged" and collapsed_at[r - runs[0]] is None:
                    collapsed_at[r - runs[0]] = -1
            out.append(CandidateFit(start=start, depth=int(depth), result=sub, loglik=loglik[runs],
                                    agreement=heldout_agreement(labels, held), collapsed_at=collapsed_at,
                                    seconds=seconds / (len(starts) * len(group)), lco_loglik=lco[runs],
                                    score=score[runs], pair_score=on_pairs[runs]))
    if stop is not None and stop.is_set():  # (stopped: the references' fits would wait for no cancel either)
        return out, held, [], None
    return out, held, scorer.references(data), None


@dataclass
class Choice:
    index: int
    reason: str
    table: pd.DataFrame
    safety_applied: bool = False
    notes: list[str] = field(default_factory=list)
    reference: Reference | None = None  # the reference returned by the safety rule
    #: the safety rule's check when it kept the choice, in words (its margin, each reference's gain)
    safety: str | None = None
    #: the candidate the criterion ranked first and why, in words, when the safety rule replaced it (the depth rule's
    #: words were lost under the rule's: "ranked first" stood beside a deeper candidate scoring higher; walkthrough 64)
    ranking: str | None = None


def choose(candidates: list[CandidateFit], references: Sequence[Reference], safety: bool = True,
           follows: Callable[[int], list] | None = None, model_name: str = "DEEM") -> Choice:
    """Apply the rule of the module docstring; returns the chosen index, the reason and the evidence table.
    ``follows(i)``: the dependence clusters candidate ``i``'s labels follow, as (members, their agreement with the
    labels, the other workers') (``diagnostics.quality.followed_clusters``); None: step 5 is not applied.
    ``model_name``: whose own model the reason names ("iRBM" for one of no layers fixed: the iRBM's reason named
    "DEEM's own model"; walkthrough 101)."""
    rows = []
    healthy = [i for i, c in enumerate(candidates) if not c.collapsed]
    for c in candidates:
        score = c.mean_score
        rows.append({"start": c.start, "layers": c.depth, "heldout_loglik": float(c.mean_loglik.mean()),
                     "lco_loglik": float(c.criterion.mean()),
                     "lco_score": math.nan if score is None else float(score.mean()),
                     "pair_score": math.nan if c.pair_score is None else float(c.pair_score.mean()),
                     "heldout_agreement": float(c.agreement.mean()), "collapsed": c.collapsed,
                     "seconds": c.seconds})
    table = pd.DataFrame(rows)
    ref_rows = pd.DataFrame([{"start": ref.name, "layers": 0, "heldout_loglik": math.nan, "lco_loglik": math.nan,
                              "lco_score": float(ref.score.mean()) if len(ref.score) else math.nan,
                              "pair_score": math.nan if ref.pair_score is None or not len(ref.pair_score) else
                              float(ref.pair_score.mean()),
                              "heldout_agreement": float(ref.agreement.mean()) if len(ref.agreement) else math.nan,
                              "collapsed": False, "seconds": 0.0} for ref in references])
    if not healthy:
        table = pd.concat([table, ref_rows], ignore_index=True)
        table["chosen"] = False
        return Choice(index=-1, reason="every candidate collapsed", table=table)
    best = max(healthy, key=lambda i: candidates[i].criterion.mean())
    clustered = any(c.lco_loglik is not None and not np.array_equal(c.lco_loglik, c.loglik) for c in candidates)
    what = "leave-cluster-out log-likelihood" if clustered else "held-out log-likelihood"
    reason = f"highest {what}"
    # parsimony: the shallowest depth whose best candidate is statistically tied with the best one
    for depth in sorted({candidates[i].depth for i in healthy}):
        if depth >= candidates[best].depth:
            break
        i = max((j for j in healthy if candidates[j].depth == depth), key=lambda j: candidates[j].criterion.mean())
        gain, se = paired_gain(candidates[i].criterion, candidates[best].criterion)
        if gain <= PARSIMONY_SE * se:
            reason = (f"within {PARSIMONY_SE:g} standard errors of the best {what} "
                      f"({candidates[best].name}: +{gain:.4f} ± {se:.4f} s.e. per held-out answer); fewer layers preferred")
            best = i
            break
    chosen, safety_applied, returned, checked = best, False, None, None
    ranked = candidates[best]
    named = (f"the {START_WORDS.get(ranked.start, ranked.start)} start with {ranked.depth} "
             f"layer{'s' if ranked.depth != 1 else ''}")
    ranking = f"{named}, by the {reason}" if reason.startswith("highest") else f"{named}: {reason}"
    chosen_score = candidates[best].mean_score
    on_pairs = SAFETY_ON_TRAINING_ANSWERS and clustered and candidates[best].pair_score is not None and all(
        ref.pair_score is not None for ref in references)
    if safety and chosen_score is not None and len(chosen_score) > 1:
        # each sample the rule reads: the held-out answers, and with clusters the training answers too (a reference
        # beating the choice on either replaces it: the training answers see a small copying group's pull, the
        # held-out ones are free of the in-sample fit that favoured a 2-layer candidate there, 89.33% against the
        # reference's 93.98 on the MnistE-shaped set)
        samples = ([("the training answers, each from the other clusters' answers,", "on the training answers",
                     lambda ref: paired_gain_by_task(candidates[best].mean_pair_score, ref.pair_score, ref.pair_task),
                     lambda ref: ref.pair_score)] if on_pairs else [])
        samples.append(("the held-out answers from the other clusters' answers", "on the held-out answers",
                        lambda ref: paired_gain(chosen_score, ref.score), lambda ref: ref.score))
        beaten, by, gains, scored, score_of = [], [], [], None, None
        for words, where, gain_of, values in samples:
            for ref in references:
                gain, se = gain_of(ref)
                # (an unnamed ± read as anything; walkthrough 32)
                # in words: "+0.0216 ± 0.0153 s.e." was read as the reference below the choice (walkthrough 55)
                side = ("higher, under the " + f"{SAFETY_Z * se:.4f} it must exceed") if gain > 0 else "lower"
                if abs(gain) < 1e-12 and se < 1e-12:
                    # the reference is the choice's own model here ("Dawid-Skene 0.0000 ± 0.0000 s.e. lower" beside a
                    # Dawid-Skene start of no layers; walkthrough 80), up to float noise (the diff's read)
                    gains.append(f"{ref.name} the same, answer for answer" + (f" {where}" if on_pairs else ""))
                else:
                    gains.append(f"{ref.name} {abs(gain):.4f} ± {se:.4f} s.e. {side}"
                                 + (f" {where}" if on_pairs else ""))
                if se > 0 and gain > SAFETY_Z * se and scored in (None, words):
                    beaten.append(ref.name)
                    by.append(f"{ref.name} +{gain:.4f} ± {se:.4f} s.e.")
                    scored, score_of = words, values
        # how far "clearly above" is, and where each reference stands (a reference scoring above the kept choice
        # in the table could not be checked against the rule; walkthrough 31)
        checked = (f"safety rule: a reference replaces the choice when its predictive score"
                   f"{' on the training answers or on the held-out ones' if on_pairs else ''} is higher by more than "
                   f"{SAFETY_Z:g} paired standard errors; kept (per answer, in nats: {'; '.join(gains)})"
                   ) if gains else None
        cw = next((ref for ref in references if ref.key == "cwds"), None)
        followed = follows(best) if (FOLLOWED_ANY_LEAD and not beaten and on_pairs and follows is not None
                                     and cw is not None) else []
        if followed:  # step 5: the labels follow a cluster; any lead of the reference on the training answers
            gain, se = paired_gain_by_task(candidates[best].mean_pair_score, cw.pair_score, cw.pair_task)
            if not math.isfinite(gain):  # (no reading: nothing to say either way)
                pass
            elif gain <= 1e-12:  # (said: "did not tell the two apart beyond their noise" read as untested where the
                # reference was behind; walkthrough 87)
                if checked:
                    size = ("the same, answer for answer" if abs(gain) <= 1e-12 else
                            f"{abs(gain):.4f} ± {se:.4f} s.e. nats per answer lower")
                    checked += (f"; {FOLLOWED_KEPT}: {cw.name} predicts them {size}, and any lead would have "
                                f"replaced the choice")
            else:  # a lead beyond float noise (the reference can be the choice's own model)
                members, inside, outside = followed[0]
                returned, chosen, safety_applied = cw, CLUSTER_WEIGHTED, True
                reason = (f"safety rule (labels following a cluster): the labels of {model_name}'s own model, {named}, follow "
                          f"a dependence cluster ({names_text([str(m) for m in members])} agree with them on "
                          f"{inside:.0%} of their answers, the other workers on {outside:.0%}), and {cw.name} predicts "
                          f"the training answers, each from the other clusters' answers, better (+{gain:.4f} ± "
                          f"{se:.4f} s.e. nats per answer; any lead counts where the labels follow a cluster, "
                          f"{SAFETY_Z:g} s.e. elsewhere), so {cw.name}'s labels are returned")
        if beaten:  # the choice is beaten: the best of the references that beat it, by the same score, is returned
            # (the best of all of them returned one within its noise of the choice, named after the one that beat
            # it: "worse than majority vote does ..., so Dawid-Skene's labels are returned"; read 54)
            returned = max((ref for ref in references if ref.name in beaten), key=lambda ref: float(score_of(ref).mean()))
            chosen = MAJORITY_VOTE if returned.key == "mv" else CLUSTER_WEIGHTED
            safety_applied = True
            # in words (it read "..., ds start, 1 layer is beaten (...): ..., the best reference, is returned";
            # walkthrough, ninth session)
            reason = (f"safety rule: {model_name}'s own model, {named}, predicts {scored} worse than "
                      f"{' and '.join(beaten)} {'do' if len(beaten) > 1 else 'does'} ({'; '.join(by)} nats per answer), so {returned.name}'s labels "
                      f"are returned")
    table["chosen"] = [i == chosen for i in range(len(candidates))]
    # the candidate the criterion put first, also when the safety rule replaced it (the table showed no trained
    # row marked then, and the columns a reader sees first favoured another: walkthrough)
    table["ranked_first"] = [i == best for i in range(len(candidates))]
    ref_rows["chosen"] = [returned is ref for ref in references]
    ref_rows["ranked_first"] = False
    table = pd.concat([table, ref_rows], ignore_index=True)
    if not on_pairs:  # (the training answers' score is shown where the safety rule read it)
        table["pair_score"] = math.nan
    return Choice(index=chosen, reason=reason, table=table, safety_applied=safety_applied, reference=returned,
                  safety=None if safety_applied else checked, ranking=ranking if safety_applied else None)


def training_answer_gain(network: DEEMNetwork, data: AnnotationSet, clusters: DependenceClusters, fit: DawidSkeneFit,
                         seed: int = 0) -> tuple[float, float] | None:
    """The safety rule's reading of the training answers where nothing is held out (the gold path trains on every
    answer): the mean gain per answer, in nats, of the cluster-weighted Dawid-Skene ``fit`` (fitted on ``data``
    with the clusters' weights) over ``network``'s runs (their scores averaged) in leave-cluster-out predictive
    score, each answer predicted from the other clusters' answers, and its standard error by task
    (:func:`paired_gain_by_task`). None when no cluster was found: every worker is then their own cluster and the
    score reads nothing a plain held-out check would not."""
    labels = np.asarray(clusters.labels)
    if not len(labels) or not (np.bincount(labels) > 1).any():
        return None
    pairs = cluster_pairs(data, labels, seed=seed)
    d = data.n_workers
    hidden = task_outputs(network, pairs.data)[1].cpu().numpy()  # (R, P, K) hidden-unit order: the score needs none
    model = np.mean([pair_scores(hidden[r], pairs, d) for r in range(network.n_runs)], axis=0)
    reference = pair_scores(cluster_weighted_posterior(fit, pairs.data, clusters.weights()), pairs, d)
    return paired_gain_by_task(model, reference, pairs.task)


def cluster_weighted_posterior(fit: DawidSkeneFit, data: AnnotationSet, weights: np.ndarray) -> np.ndarray:
    """(n, K) the posterior of Dawid-Skene ``fit`` on ``data`` with each worker's answers counted ``weights`` times
    (1 / the size of their cluster: every cluster counts once)."""
    votes = (answer_matrix(data) @ sp.diags(np.repeat(weights, data.n_classes))).tocsr()
    return dawid_skene_posterior(data, fit.confusion, fit.prior, votes=votes)[0]


def majority_vote_network(n_runs: int, n_workers: int, n_classes: int, device=None,
                          ties: np.ndarray | None = None) -> DEEMNetwork:
    """The iRBM of App. G.1 without noise: ``w_i^{lm} = [l == m]``, ``a = b = 0``. Its hidden logits are the vote
    counts (a missing worker adds the same constant to every class), so its argmax is majority vote and its
    posterior the softmax of the counts. A hidden bias of -1e-4 per place in ``ties`` ((K,) each class's place in a
    tie, :func:`deem_core.methods.dawid_skene.tie_ranks`; default: the class codes) breaks exact ties as the Majority
    vote method does (the missing-worker constants differ by rounding between classes)."""
    network = DEEMNetwork(n_runs, n_workers, n_classes, 0)
    places = torch.arange(n_classes) if ties is None else torch.as_tensor(np.asarray(ties))
    places = (places - places[:1]).to(torch.float32)  # (Definition 1 fixes the first class's bias at 0)
    with torch.no_grad():
        network.irbm_weight.copy_(torch.eye(n_classes).expand_as(network.irbm_weight))
        network.hidden_bias.copy_(-1e-4 * places.expand_as(network.hidden_bias))
    return network.to(device) if device is not None else network


#: what a tied class loses per place in the tie rule in :func:`majority_vote_shares` (below any share's difference)
TIE_NUDGE = 1e-12


def majority_vote_shares(data: AnnotationSet) -> np.ndarray:
    """(n, K) each task's vote shares, the Majority vote method's probabilities, with a tied class losing
    :data:`TIE_NUDGE` per place in the tie rule (:func:`deem_core.methods.dawid_skene.tie_ranks`) so that their argmax
    is that method's label; a task with no answer has equal shares."""
    votes = data.class_votes()
    totals = votes.sum(axis=1, keepdims=True)
    shares = np.divide(votes, totals, out=np.full_like(votes, 1.0 / max(1, data.n_classes)), where=totals > 0)
    places = np.asarray(tie_ranks(data), dtype=np.float64)
    return np.clip(shares - TIE_NUDGE * (places - places.min())[None, :], 0.0, 1.0)


def cluster_normalisers(fit: DawidSkeneFit, weights: np.ndarray) -> np.ndarray:
    """(d, K) ``log Z_i(m)``, the normaliser of worker i's tempered confusions ``psi_i(.|m)^w_i`` (0 where w_i = 1).
    :func:`cluster_weighted_network` puts them in its prior; a task's posterior is that fit's once the normalisers of
    the workers it lacks are taken out again (:func:`without_missing_normalisers`)."""
    return np.logaddexp.reduce(_tempered_log_confusions(fit, weights), axis=1)


def _tempered_log_confusions(fit: DawidSkeneFit, weights: np.ndarray) -> np.ndarray:
    """(d, K, K) ``w_i log psi_i(l | m)`` [i, l, m]."""
    return np.log(np.clip(fit.confusion, 1e-12, None)) * np.asarray(weights, dtype=np.float64)[:, None, None]


def without_missing_normalisers(posterior: np.ndarray, data: AnnotationSet, log_z: np.ndarray) -> np.ndarray:
    """(..., n, K) posteriors of :func:`cluster_weighted_network` on ``data`` with, for every task, the normalisers
    ``log_z`` (d, K) of the workers who did not answer it taken out: the cluster-weighted Dawid-Skene posterior of
    the fit it holds (the network sums a missing worker out, which leaves its normaliser in the task's prior)."""
    log_z = np.asarray(log_z, dtype=np.float64)
    answered = sp.csr_matrix((np.ones(len(data.task_codes)), (data.task_codes, data.worker_codes)),
                             shape=(data.n_tasks, data.n_workers)) @ log_z  # (n, K): one product, not one pass a class
    with np.errstate(divide="ignore"):
        logits = np.log(np.asarray(posterior, dtype=np.float64)) - (log_z.sum(axis=0)[None, :] - answered)
    logits -= logits.max(axis=-1, keepdims=True)
    exact = np.exp(logits)
    return exact / exact.sum(axis=-1, keepdims=True)


def cluster_weighted_network(n_runs: int, fit: DawidSkeneFit, weights: np.ndarray, layout: str = "matrix",
                             bias: str = "irbm", device=None) -> DEEMNetwork:
    """An untrained iRBM (no layers) holding the cluster-weighted Dawid-Skene ``fit``.

    It is the Dawid-Skene model (Lemma 1) with the tempered confusions ``psi~_i(l|m) = psi_i(l|m)^w_i / Z_i(m)``
    (``w_i`` = 1 / cluster size, ``Z_i(m)`` normalising) and the prior ``pi~_m`` proportional to ``pi_m prod_i
    Z_i(m)``: on a task every worker answered its posterior is ``pi_m prod_i psi_i(x_i|m)^w_i`` normalised, the
    cluster-weighted posterior exactly; a worker who did not answer is summed out of this model (its ``Z_i(m)``
    stays in the prior of that task)."""
    log_psi = _tempered_log_confusions(fit, weights)  # (d, K, K) [i, l, m]
    log_z = np.logaddexp.reduce(log_psi, axis=1)  # (d, K) [i, m]: cluster_normalisers, from the same logs
    tempered = np.exp(log_psi - log_z[:, None, :])
    log_prior = np.log(np.clip(fit.prior, 1e-12, None)) + log_z.sum(axis=0)
    prior = np.exp(log_prior - np.logaddexp.reduce(log_prior))
    network = DEEMNetwork(n_runs, fit.confusion.shape[0], fit.confusion.shape[-1], 0, layout=layout, bias=bias)
    network.set_from_dawid_skene(torch.as_tensor(tempered, dtype=torch.float32),
                                 torch.as_tensor(prior, dtype=torch.float32))
    return network.to(device) if device is not None else network


def train_guarded(train: Callable[[DEEMNetwork | None, float, int, list], TrainingResult],
                  initial: DEEMNetwork | None, lr: float, epochs: int, expected_classes: int, shrink: float = 4.0,
                  restarted: Callable[[int], None] | None = None) -> tuple[TrainingResult, list[str]]:
    """Train one configuration under the collapse guard, recovering twice.

    ``train(network, lr, epochs, extra_callbacks)`` runs the batched training (``network=None``: the trainer's
    own start). On a collapse: (1) restart from the last healthy epoch with ``lr / shrink`` for the epochs left;
    (2) if it collapses again, restart from the start with ``lr / shrink**2`` for all epochs (a state just
    before a collapse can be past saving at any step). Returns the result (history stitched across restarts,
    epochs renumbered) and what happened; when the last note starts with "still collapsed" the caller falls
    back. ``restarted(epoch)`` is told of each restart before it trains (the epochs after ``epoch`` are trained
    again: a caller numbers the next ones from there and steps its progress back).
    """
    notes: list[str] = []
    network, start_state = initial, None
    history = History()
    done, current_lr = 0, float(lr)
    for attempt in range(3):
        # (only the first attempt's states are restarted from: later guards keep none)
        guard = CollapseGuard(expected_classes, stop=attempt < 2, keep_states=attempt == 0)
        result = train(network, current_lr, epochs - done, [guard])
        network = result.network  # the live network (possibly in another layout than the one given)
        start_state = start_state if start_state is not None else guard.start_state
        history.extend_history(result.history.shifted(done))
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
        history = history.until(done)
        current_lr /= shrink
        if restarted is not None:
            restarted(done)
        notes.append(f"collapse at epoch {at} (fewer predicted classes than majority vote finds) at lr "
                     f"{current_lr * shrink:g}: restarted from {where} with lr {current_lr:g}")
    result.history, result.epochs_run = history, history.epochs()
    return result, notes
