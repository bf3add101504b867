"""``DEEM``: the scikit-learn / crowd-kit style estimator over the batched engine.

>>> from deem_core import DEEM
>>> labels = DEEM(n_layers=1, epochs=100, seed=0).fit_predict(df)   # df: task, worker, label
>>> proba = model.predict_proba()                                   # DataFrame, index task, columns classes

Hyperparameters are stored as given in ``__init__``; everything learnt ends in ``_``. Several seeds
(``n_seeds``) train together as one batched model; their posteriors (after each run's class map) are
averaged into the consensus answer, and ``seed_agreement_`` says how often each task's runs agreed.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from scipy.stats import binomtest

from deem_core.model.classmap import hungarian_class_map
from deem_core.data.annotations import AnnotationSet, DataError, as_annotation_set
from deem_core.analysis.selection import DEFAULT_HELDOUT_SHARE, MIN_HELDOUT, heldout_size
from deem_core.methods.dawid_skene import fit_dawid_skene
from deem_core.model.network import DEEMNetwork
from deem_core.model.sampler import one_hot_state
from deem_core.data.export import label_table
from deem_core.model.fallback import train_with_memory_fallback
from deem_core.methods.choose import (MAJORITY_VOTE, CollapseError, choose, fit_candidates, major_classes,
                                     majority_vote_network, train_guarded)
from deem_core.methods.starts import INIT_METHODS, initial_network, stack_networks
from deem_core.model.sizes import check_problem_size
from deem_core.methods.sweep import DEFAULT_LRS
from deem_core.model.training import HISTORY_COLUMNS, TrainingConfig, TrainingResult, predict_hidden, resolve_device, train_runs

__all__ = ["DEEM", "CollapseError", "DEFAULT_INIT", "DEFAULT_LAYERS", "DEFAULT_LR", "INIT_METHODS", "NotFittedError",
           "SELECTION_DEPTHS"]

#: default learning rate, measured at the default 100 epochs (1 layer, 3 seeds). From a Dawid-Skene start the
#: accuracy moves little with the learning rate (50 epochs, lr 0.003-0.3: ampdata 93.2-92.5%, tree3k
#: 88.9-88.0%, digits 93.6-93.7%, duck 89.8%). From a majority-vote start 0.03 peaks early and then drifts:
#: tree3k 90.4% at 50 epochs, 88.3% at 100 (one seed 85.9%, below majority vote's 89.1%), 83.0% at 150;
#: with 0.01 it is steady (90.1 / 90.5 / 90.6% at 50 / 100 / 150 epochs), digits 93.7% and digits_experts
#: 88.7% at 100 (0.03: 93.75 / 89.26). ``lr="auto"`` chooses per data set with a sweep.
DEFAULT_LR = 0.01
#: default start: "auto" = chosen from held-out answers between the majority-vote start and the Dawid-Skene
#: start (Lemma 1), see ``methods/choose.py`` and benchmarks/results/selection.txt. With gold labels both starts
#: train and the gold tasks may replace the Dawid-Skene start (sign test below); with lr="auto" the Dawid-Skene
#: start is used.
DEFAULT_INIT = "auto"
#: default depth
DEFAULT_LAYERS = 1
#: depths tried by n_layers="auto"
SELECTION_DEPTHS = (0, 1, 2)
#: with gold labels, the start chosen without them is replaced by the other start only when a one-sided sign
#: test on the gold tasks where they differ gives p below this (CondInd, 300 gold tasks: Majority-vote start
#: ahead by one task, 0.960 vs 0.957, used to win; the Dawid-Skene start is 0.8 points better on the rest)
GOLD_SWITCH_P_VALUE = 0.05
FORMAT_VERSION = 1


class _EpochOffset:
    """Forwards a candidate group's epochs to the user's callbacks, numbered after the groups before it, with the
    group's depth in every row (so a progress bar and a live curve go on across the groups of a selection)."""

    def __init__(self, callbacks: Sequence[Any], offset: int, depth: int):
        self.callbacks, self.offset, self.depth = list(callbacks), int(offset), int(depth)
        self.stopped = False

    def on_epoch_end(self, epoch: int, logs: list[dict[str, Any]]) -> bool:
        rows = [{**row, "candidate_layers": self.depth} for row in logs]
        for cb in self.callbacks:
            if getattr(cb, "on_epoch_end", cb)(epoch + self.offset, rows):
                self.stopped = True
        return self.stopped


class NotFittedError(RuntimeError):
    """The estimator was used before ``fit``."""


def _plain(value: Any) -> Any:
    """A numpy scalar as the plain Python value (for messages and safe serialisation)."""
    return value.item() if isinstance(value, np.generic) else value


def _python_list(index: pd.Index) -> list:
    """Index values as plain Python objects (safe for ``torch.load(weights_only=True)``)."""
    return [_plain(v) for v in index.tolist()]


def challenger_wins(default_correct: np.ndarray, challenger_correct: np.ndarray,
                    p_threshold: float = GOLD_SWITCH_P_VALUE) -> tuple[bool, dict[str, Any]]:
    """One-sided sign test: is the challenger right on significantly more gold tasks than the default?

    Both arrays hold, per gold task, how right each model is (0/1, or the fraction of its runs that are right).
    Returns (switch, evidence) with the counts of tasks where the challenger is better / worse and p.
    """
    better = int((challenger_correct > default_correct).sum())
    worse = int((challenger_correct < default_correct).sum())
    p_value = float(binomtest(better, better + worse, 0.5, alternative="greater").pvalue) if better + worse else 1.0
    return p_value < p_threshold, {"challenger_better": better, "challenger_worse": worse, "p_value": p_value}


class DEEM:
    """Deep energy-based unsupervised ensemble model (DEEM) label aggregator.

    Parameters
    ----------
    n_layers: multinomial layers before the iRBM (0 = plain iRBM, which is Dawid-Skene by Lemma 1).
    epochs, lr, batch_size, sampler_steps, step_size, momentum: training (Algorithm 1, App. G.4);
        ``lr="auto"`` runs a learning-rate sweep first and uses its recommendation.
    init: ``"mv"`` (App. G.1: iRBM at majority vote), ``"ds"`` (iRBM set to a Dawid-Skene fit by Lemma 1) or
        ``"auto"`` (default: ``"ds"`` unless the workers agree clearly more than Dawid-Skene predicts, see
        ``dependence_``, then ``"mv"``; with gold labels both starts train together and the other start
        replaces that choice only when it is significantly more accurate on the gold tasks, see
        ``init_evidence_`` — with ``supervised_weight > 0`` half of the gold tasks are held out of the
        supervised term and the starts are compared on those). ``init_`` says which start was used,
        ``init_scores_`` the gold accuracies.
    n_seeds, seed: number of independent runs (batched) and the first seed (runs use seed, seed+1, ...).
    device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    supervised_weight: weight of the cross-entropy on gold labels (only when ``fit`` gets ``gold``).
    callbacks: objects with ``on_epoch_end(epoch, logs) -> bool`` (True stops) or plain callables.
    """

    def __init__(self, n_layers: int | str = DEFAULT_LAYERS, epochs: int = 100, lr: float | str = DEFAULT_LR,
                 batch_size: int = 1024, sampler_steps: int = 5, step_size: float = 1.0,
                 momentum: float = 0.0, init: str = DEFAULT_INIT, n_seeds: int = 1, seed: int = 0,
                 device: str = "auto", supervised_weight: float = 0.0,
                 callbacks: Sequence[Any] | None = None, on_conflict: str = "error",
                 heldout_share: float = DEFAULT_HELDOUT_SHARE):
        self.n_layers = n_layers
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.sampler_steps = sampler_steps
        self.step_size = step_size
        self.momentum = momentum
        self.init = init
        self.n_seeds = n_seeds
        self.seed = seed
        self.device = device
        self.supervised_weight = supervised_weight
        self.callbacks = callbacks
        self.on_conflict = on_conflict
        self.heldout_share = heldout_share

    # ------------------------------------------------------------------ sklearn-ish plumbing
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in (
            "n_layers", "epochs", "lr", "batch_size", "sampler_steps", "step_size", "momentum", "init",
            "n_seeds", "seed", "device", "supervised_weight", "callbacks", "on_conflict", "heldout_share")}

    def set_params(self, **params: Any) -> "DEEM":
        for name, value in params.items():
            if name not in self.get_params():
                raise ValueError(f"unknown parameter {name!r}")
            setattr(self, name, value)
        return self

    def _check_params(self) -> None:
        if self.n_layers != "auto" and (not isinstance(self.n_layers, (int, np.integer)) or self.n_layers < 0):
            raise ValueError(f"n_layers must be an integer >= 0 or 'auto', got {self.n_layers!r}")
        if not (isinstance(self.heldout_share, (int, float)) and 0 < self.heldout_share < 1):
            raise ValueError(f"heldout_share must be between 0 and 1, got {self.heldout_share!r}")
        if not isinstance(self.epochs, (int, np.integer)) or self.epochs < 1:
            raise ValueError(f"epochs must be an integer >= 1, got {self.epochs!r}")
        if self.lr != "auto" and not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number or 'auto', got {self.lr!r}")
        if self.init not in INIT_METHODS:
            raise ValueError(f"init must be one of {INIT_METHODS}, got {self.init!r}")
        if not isinstance(self.n_seeds, (int, np.integer)) or self.n_seeds < 1:
            raise ValueError(f"n_seeds must be an integer >= 1, got {self.n_seeds!r}")
        if self.batch_size < 1 or self.sampler_steps < 0 or self.step_size <= 0:
            raise ValueError("batch_size must be >= 1, sampler_steps >= 0 and step_size > 0")

    def _config(self, batch_size: int | None = None, device: torch.device | str | None = None) -> TrainingConfig:
        layers = getattr(self, "n_layers_", None)
        layers = (DEFAULT_LAYERS if self.n_layers == "auto" else int(self.n_layers)) if layers is None else layers
        return TrainingConfig(n_layers=int(layers), epochs=int(self.epochs),
                              batch_size=int(batch_size or self.batch_size), sampler_steps=int(self.sampler_steps),
                              step_size=float(self.step_size), momentum=float(self.momentum),
                              device=str(device or self.device))

    def _check_fitted(self) -> None:
        if not hasattr(self, "network_"):
            raise NotFittedError("this DEEM model is not fitted yet: call fit(annotations) first")

    # ------------------------------------------------------------------ fitting
    def _fit_by_sweep(self, data: AnnotationSet, seeds: list[int], callbacks: list, stop_event) -> TrainingResult:
        """``lr="auto"``: sweep the default grid (every seed x every lr, one batched model), take the
        recommended lr and keep the sweep's own runs at that lr (a run trains the same alone or batched,
        so no second training is needed). Gold labels are not used by the sweep."""
        from deem_core.methods.sweep import run_sweep  # noqa: PLC0415

        sweep = run_sweep(data, epochs=int(self.epochs), n_layers=self.n_layers_, n_seeds=len(seeds),
                          seed=int(self.seed), device=str(self.device_), callbacks=callbacks, stop_event=stop_event,
                          batch_size=int(self.batch_size), init=self.init_, sampler_steps=int(self.sampler_steps),
                          step_size=float(self.step_size))
        self.sweep_ = sweep
        if sweep.recommendation.lr is None:
            raise DataError(f"{data.source}: every run of the learning-rate sweep diverged "
                            f"({sweep.recommendation.reason}); give a learning rate explicitly")
        self.lr_ = float(sweep.recommendation.lr)
        if self.init_ == "ds":
            self.dawid_skene_ = fit_dawid_skene(data.labels, data.n_classes, data.soft)
        picked = [sweep.run_index(self.lr_, seed) for seed in seeds]
        return sweep.result.select_runs(picked)

    def _keep_best_start(self, data: AnnotationSet, result: TrainingResult, candidates: list[str], n_runs: int,
                         gold_codes: np.ndarray) -> TrainingResult:
        """Score each start's runs on the gold tasks (Hungarian map against gold); keep the unsupervised choice
        ``candidates[0]`` unless the other start is *significantly* more accurate there.

        The test is a one-sided sign test on the gold tasks where the two starts disagree in correctness
        (per task, the fraction of each start's runs that are right): a difference of one or two tasks
        among hundreds, which decided the start on CondInd when the better mean simply won, no longer does.
        """
        labels, mask, soft = self._tensors(data)
        hidden = predict_hidden(result.network, labels, mask, soft).argmax(-1).cpu().numpy()  # (R, n)
        known = gold_codes >= 0
        correct = {}  # start -> (n_gold,) fraction of its runs right on each gold task
        for group, init in enumerate(candidates):
            runs_right = []
            for run in range(group * n_runs, (group + 1) * n_runs):
                class_map = hungarian_class_map(hidden[run], gold_codes, data.n_classes)
                runs_right.append(class_map[hidden[run]][known] == gold_codes[known])
            correct[init] = np.mean(runs_right, axis=0)
            self.init_scores_[init] = float(correct[init].mean())
        default, challenger = candidates
        switch, evidence = challenger_wins(correct[default], correct[challenger])
        self.init_evidence_ = {"unsupervised_choice": default, "challenger": challenger, **evidence}
        self.init_ = challenger if switch else default
        if self.init_ != "ds":
            self.dawid_skene_ = None
        group = candidates.index(self.init_)
        return result.select_runs(list(range(group * n_runs, (group + 1) * n_runs)))

    def _resolved_layers(self, has_gold: bool) -> int:
        """``n_layers`` as a number: "auto" is chosen by :meth:`_fit_by_selection`; with gold labels or lr="auto"
        (paths that choose other things) it stays at the documented default of one layer."""
        if self.n_layers != "auto":
            return int(self.n_layers)
        return 1

    def _fit_fixed(self, data: AnnotationSet, seeds: list[int], callbacks: list, stop_event, gold_codes,
                   has_gold: bool) -> TrainingResult:
        """One configuration (or both starts with gold labels): the training of the engine before selection.

        init="auto" here (gold labels or lr="auto") starts from Dawid-Skene through Lemma 1; with gold labels the
        majority-vote start trains beside it and replaces it only when the gold tasks favour it significantly.
        A single configuration is trained under the collapse guard (:meth:`_train_recovering`).
        """
        n_runs = len(seeds)
        candidates = [self.init] if self.init != "auto" else (["ds", "mv"] if has_gold else ["ds"])
        self.init_ = candidates[0]
        self.init_scores_ = {}
        train_gold, score_gold = gold_codes, gold_codes
        if len(candidates) > 1 and self.supervised_weight > 0:
            # the supervised term fits every gold task it sees, so choose the start on gold tasks it did
            # not see: every other gold task (in a seeded order) is held out of the supervised term
            known = np.flatnonzero(gold_codes >= 0)
            held_out = np.random.default_rng(int(self.seed)).permutation(known)[: len(known) // 2]
            if len(held_out):
                train_gold = gold_codes.copy()
                train_gold[held_out] = -1
                score_gold = np.full_like(gold_codes, -1)
                score_gold[held_out] = gold_codes[held_out]
        if self.lr == "auto":
            return self._fit_by_sweep(data, seeds, callbacks, stop_event)
        if len(candidates) == 1 and not has_gold:
            return self._train_recovering(data, seeds, callbacks, stop_event, candidates[0])

        def train(batch_size: int, device: torch.device) -> TrainingResult:
            config = self._config(batch_size, device)
            starts = []
            for init in candidates:
                network, ds = initial_network(data, seeds, self.n_layers_, init, device, config,
                                              explicit=len(candidates) > 1)
                starts.append(network)
                self.dawid_skene_ = ds or self.dawid_skene_
            initial = starts[0] if len(starts) == 1 else stack_networks(starts)
            return train_runs(data.labels, data.n_classes, [self.lr_] * n_runs * len(candidates),
                              seeds * len(candidates), config, soft=data.soft, callbacks=callbacks,
                              stop_event=stop_event, initial_network=initial, gold=train_gold,
                              supervised_weight=float(self.supervised_weight))

        result, self.batch_size_, self.device_ = train_with_memory_fallback(
            train, int(self.batch_size), self.device_, self.warnings_)
        if len(candidates) > 1:
            result = self._keep_best_start(data, result, candidates, n_runs, score_gold)
        return result

    def _train_config(self, data: AnnotationSet, seeds: list[int], depth: int, starts: list[str], callbacks: list,
                      stop_event, extra=None, lr: float | None = None, epochs: int | None = None,
                      initial: DEEMNetwork | None = None) -> TrainingResult:
        """Train ``starts`` x ``seeds`` at one depth as one batched model (runs start by start). ``extra(network)``
        builds more callbacks that need the live network (the collapse guard)."""
        lr = self.lr_ if lr is None else lr
        epochs = int(self.epochs) if epochs is None else int(epochs)

        def train(batch_size: int, device: torch.device) -> TrainingResult:
            config = self._config(batch_size, device)
            config.n_layers, config.epochs = int(depth), epochs
            network = initial
            if network is None:
                nets = []
                for init in starts:
                    net, ds = initial_network(data, seeds, int(depth), init, device, config, explicit=True)
                    nets.append(net)
                    if ds is not None:
                        self.dawid_skene_ = ds
                network = nets[0] if len(nets) == 1 else stack_networks(nets)
            network = network.to(device)
            more = list(extra(network)) if extra is not None else []
            return train_runs(data.labels, data.n_classes, [lr] * len(seeds) * len(starts), seeds * len(starts),
                              config, soft=data.soft, callbacks=list(callbacks) + more, stop_event=stop_event,
                              initial_network=network)

        result, self.batch_size_, self.device_ = train_with_memory_fallback(
            train, int(self.batch_size), self.device_, self.warnings_)
        return result

    def _fit_by_selection(self, data: AnnotationSet, seeds: list[int], callbacks: list, stop_event) -> TrainingResult:
        """Choose the start and/or the depth from held-out answers (``methods/choose.py``)."""
        starts = ["mv", "ds"] if self.init == "auto" else [self.init]
        depths = list(SELECTION_DEPTHS) if self.n_layers == "auto" else [int(self.n_layers)]
        groups: list[_EpochOffset] = []

        def train_group(train_data: AnnotationSet, depth: int, group_starts: list[str], guard) -> TrainingResult | None:
            if groups and (groups[-1].stopped or (stop_event is not None and stop_event.is_set())):
                return None  # stopped or cancelled: the depths not trained yet are left out of the choice
            offset = _EpochOffset(callbacks, len(groups) * int(self.epochs), depth)
            groups.append(offset)
            return self._train_config(train_data, seeds, depth, group_starts, [offset], stop_event,
                                      extra=lambda network: [guard(network)])

        started = time.perf_counter()
        candidates, held, mv_agreement = fit_candidates(data, starts, depths, seeds, train_group, self.device_,
                                                        share=float(self.heldout_share), split_seed=int(self.seed))
        self.candidates_ = candidates  # every candidate's runs and held-out scores (not saved with the model)
        self.heldout_mv_agreement_ = mv_agreement
        choice = choose(candidates, mv_agreement, safety=True)
        table = choice.table
        table.insert(2, "runs", len(seeds))
        self.selection_ = table
        self.selection_seconds_ = time.perf_counter() - started
        self.heldout_answers_ = len(held)
        if choice.index == MAJORITY_VOTE:
            self.selection_reason_ = choice.reason
            self.init_, self.n_layers_, self.dawid_skene_ = "mv", 0, None
            self.fallback_ = "majority vote (safety rule)"
            self.warnings_.append("the safety rule returned majority vote: " + choice.reason)
            return TrainingResult(network=majority_vote_network(len(seeds), data.n_workers, data.n_classes, self.device_),
                                  history=[], status=["majority vote"] * len(seeds),
                                  messages=[""] * len(seeds), epochs_run=0, seconds=self.selection_seconds_,
                                  lrs=[float(self.lr_)] * len(seeds), seeds=list(seeds))
        if choice.index < 0:
            self.selection_reason_ = choice.reason
            return self._fallback(data, seeds, "every candidate collapsed (" + "; ".join(
                f"{c.name}: epoch {min(e for e in c.collapsed_at if e is not None)}" for c in candidates) + ")")
        picked = candidates[choice.index]
        self.selection_reason_ = choice.reason
        self.init_ = picked.start
        self.n_layers_ = picked.depth
        if picked.start != "ds":
            self.dawid_skene_ = None
        result = picked.result
        result.seconds = self.selection_seconds_
        return result

    def _train_recovering(self, data: AnnotationSet, seeds: list[int], callbacks: list, stop_event,
                          first: str) -> TrainingResult:
        """One configuration under the collapse guard: restart from the last healthy state with a smaller step
        (twice), then the other start, then the Dawid-Skene fallback (or refuse, see :meth:`_fallback`)."""
        expected = major_classes(data.labels, data.n_classes, data.soft)
        starts = [first, {"mv": "ds", "ds": "mv"}[first]]
        for attempt, start in enumerate(starts):

            def train(network, lr, epochs, extra, start=start):
                return self._train_config(data, seeds, self.n_layers_, [start], callbacks, stop_event,
                                          extra=lambda net: extra, lr=lr, epochs=epochs, initial=network)

            config = self._config(self.batch_size, self.device_)
            config.n_layers = self.n_layers_
            initial, ds = initial_network(data, seeds, self.n_layers_, start, self.device_, config, explicit=True)
            result, notes = train_guarded(train, initial.to(self.device_), self.lr_, int(self.epochs), expected)
            self.collapse_notes_.extend(f"{start} start: {note}" for note in notes)
            if not notes or not notes[-1].startswith("still collapsed"):
                self.init_ = start
                self.dawid_skene_ = ds
                if attempt:
                    self.fallback_ = f"the {start} start (the {starts[0]} start collapsed)"
                return result
        return self._fallback(data, seeds, "; ".join(self.collapse_notes_))

    def _fallback(self, data: AnnotationSet, seeds: list[int], why: str) -> TrainingResult:
        """The healthy fallback when training collapsed: Dawid-Skene itself (the iRBM set from a Dawid-Skene fit by
        Lemma 1, no layers, not trained), labelled in ``fallback_`` and the warnings; refuse with
        :class:`CollapseError` when even that predicts fewer classes than majority vote finds."""
        ds = fit_dawid_skene(data.labels, data.n_classes, data.soft)
        expected = major_classes(data.labels, data.n_classes, data.soft)
        found = len(np.unique(ds.posterior.argmax(1)))
        if found < expected:
            raise CollapseError(f"{data.source}: training collapsed ({why}) and the Dawid-Skene fallback finds only "
                                f"{found} of the {expected} classes majority vote finds: no healthy model to return")
        network = DEEMNetwork(len(seeds), data.n_workers, data.n_classes, 0).to(self.device_)
        network.set_from_dawid_skene(torch.as_tensor(ds.confusion, dtype=torch.float32, device=self.device_),
                                     torch.as_tensor(ds.prior, dtype=torch.float32, device=self.device_))
        self.dawid_skene_ = ds
        self.init_ = "ds"
        self.n_layers_ = 0
        self.fallback_ = "Dawid-Skene (no layers, not trained): " + why
        self.warnings_.append(f"FALLBACK: DEEM collapsed ({why}); the labels are Dawid-Skene's")
        return TrainingResult(network=network, history=[], status=["fallback"] * len(seeds),
                              messages=[self.fallback_] * len(seeds), epochs_run=0, seconds=0.0,
                              lrs=[float(self.lr_ or 0.0)] * len(seeds), seeds=list(seeds))

    def _gold_codes(self, data: AnnotationSet, gold: Any) -> np.ndarray | None:
        """Gold labels as (n_tasks,) class codes, -1 where unknown."""
        if gold is None:
            return None
        if isinstance(gold, pd.DataFrame):
            column = "truth" if "truth" in gold.columns else gold.columns[-1]
            gold = gold.set_index("task")[column] if "task" in gold.columns else gold[column]
        gold = pd.Series(gold)
        gold = gold[gold.index.isin(data.tasks)]
        codes = np.full(data.n_tasks, -1, dtype=np.int64)
        if len(gold):
            class_codes = data.classes.get_indexer(gold.to_numpy())
            unknown = class_codes < 0
            if unknown.any():
                raise DataError(f"gold labels: {int(unknown.sum())} label(s) are not among the classes "
                                f"{_python_list(data.classes[:10])}, e.g. {_plain(gold.to_numpy()[unknown][0])!r}")
            codes[data.tasks.get_indexer(gold.index)] = class_codes
        return codes

    def fit(self, data: Any, gold: Any = None, stop_event: threading.Event | None = None) -> "DEEM":
        """Fit on annotations (long DataFrame or :class:`AnnotationSet`); ``gold``: optional task -> label."""
        self._check_params()
        data = as_annotation_set(data, on_conflict=self.on_conflict)
        if data.n_classes < 2:
            raise DataError(f"{data.source}: only one class ({_plain(data.classes[0])!r}) was given: there is nothing "
                            f"to aggregate; DEEM needs at least two classes")
        self.device_ = resolve_device(self.device)
        runs_trained = int(self.n_seeds) * (len(DEFAULT_LRS) if self.lr == "auto" else 1)
        memory = torch.cuda.get_device_properties(self.device_).total_memory if self.device_.type == "cuda" else None
        deepest = max(SELECTION_DEPTHS) if self.n_layers == "auto" else int(self.n_layers)
        check_problem_size(data.n_workers, data.n_classes, deepest, runs_trained, memory_bytes=memory,
                           source=data.source)
        self.classes_ = data.classes
        self.workers_ = data.workers
        self.tasks_ = data.tasks
        self.warnings_ = list(data.warnings)
        self.data_fingerprint_ = data.fingerprint()
        gold_codes = self._gold_codes(data, gold)
        n_runs = int(self.n_seeds)
        seeds = [int(self.seed) + run for run in range(n_runs)]
        callbacks = list(self.callbacks or ())
        self.dawid_skene_ = None
        has_gold = gold_codes is not None and bool((gold_codes >= 0).any())
        # init="auto": the DS start unless the workers are clearly dependent; with gold labels, both starts
        # train (one batched model) and the gold tasks may overrule that choice (see _keep_best_start)
        self.dependence_ = None
        self.init_evidence_ = None
        self.init_scores_ = {}
        self.selection_ = None
        self.selection_seconds_ = None
        self.heldout_answers_ = None
        self.selection_reason_ = None
        self.fallback_ = None
        self.collapse_notes_ = []
        self.n_layers_ = self._resolved_layers(has_gold)
        self.lr_ = None if self.lr == "auto" else float(self.lr)
        selecting = not has_gold and self.lr != "auto" and (self.init == "auto" or self.n_layers == "auto")
        if selecting and heldout_size(data.labels, float(self.heldout_share)) < MIN_HELDOUT:
            selecting = False
            self.selection_reason_ = (f"too few answers to hold out {MIN_HELDOUT} for choosing: the Dawid-Skene "
                                      f"start and {self.n_layers_} layer(s) are used")
        if selecting:
            result = self._fit_by_selection(data, seeds, callbacks, stop_event)
        else:
            result = self._fit_fixed(data, seeds, callbacks, stop_event, gold_codes, has_gold)
        self.network_ = result.network
        self.history_ = pd.DataFrame(result.history, columns=HISTORY_COLUMNS)
        self.run_status_ = list(result.status)
        self.run_messages_ = list(result.messages)
        self.n_epochs_ = result.epochs_run
        self.fit_seconds_ = result.seconds
        self.seeds_ = seeds
        hidden_posterior = self._hidden_posterior(data)  # (R, n, K)
        reference = data.majority_vote()
        self.class_map_source_ = "majority vote"
        if gold_codes is not None and (gold_codes >= 0).any():
            reference = gold_codes
            self.class_map_source_ = "gold labels"
        argmax = hidden_posterior.argmax(-1).cpu().numpy()  # (R, n)
        self.class_maps_ = np.stack([hungarian_class_map(a, reference, data.n_classes) for a in argmax])
        self._store_outputs(data, hidden_posterior, gold_codes)
        return self

    def _store_outputs(self, data: AnnotationSet, hidden_posterior: torch.Tensor, gold_codes: np.ndarray | None):
        per_run = self._mapped(hidden_posterior)  # (R, n, K) class order
        usable = [r for r, s in enumerate(self.run_status_) if s != "diverged"] or list(range(per_run.shape[0]))
        consensus = per_run[usable].mean(axis=0)
        self.posterior_ = consensus  # (n, K)
        run_labels = per_run.argmax(-1)  # (R, n)
        final = consensus.argmax(-1)
        self.seed_agreement_ = (run_labels[usable] == final[None, :]).mean(axis=0)  # (n,)
        self.run_labels_ = run_labels
        self.free_energy_ = self._free_energy(data)  # (n,)
        if gold_codes is not None and (gold_codes >= 0).any():
            known = gold_codes >= 0
            self.gold_accuracy_ = float((final[known] == gold_codes[known]).mean())
        else:
            self.gold_accuracy_ = None
        mv = data.majority_vote()
        n_mv = len(np.unique(mv[mv >= 0]))
        self.dead_units_ = max(0, n_mv - len(np.unique(final)))
        # per run: classes majority vote finds that the run's own labels never use (App. G.4 "dead units")
        self.run_dead_units_ = [max(0, n_mv - len(np.unique(labels))) for labels in run_labels]

    def _mapped(self, hidden_posterior: torch.Tensor) -> np.ndarray:
        """Hidden-unit posteriors (R, n, K) -> class-order posteriors with each run's class map."""
        hidden = hidden_posterior.detach().cpu().numpy()
        mapped = np.empty_like(hidden)
        for run, class_map in enumerate(self.class_maps_):
            mapped[run][:, class_map] = hidden[run]
        return mapped

    def _tensors(self, data: AnnotationSet) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        labels = torch.as_tensor(data.labels, dtype=torch.long, device=self.device_)
        mask = (labels >= 0).float()
        soft = None if data.soft is None else torch.as_tensor(data.soft, dtype=torch.float32, device=self.device_)
        return labels, mask, soft

    def _hidden_posterior(self, data: AnnotationSet) -> torch.Tensor:
        labels, mask, soft = self._tensors(data)
        return predict_hidden(self.network_, labels, mask, soft)

    @torch.no_grad()
    def _free_energy(self, data: AnnotationSet, batch_size: int = 8192) -> np.ndarray:
        """Mean over usable runs of the free energy per task: (n,). High = unusual pattern of answers."""
        labels, mask, soft = self._tensors(data)
        r, k = self.network_.n_runs, self.network_.n_classes
        chunks = []
        for start in range(0, data.n_tasks, batch_size):
            sl = slice(start, start + batch_size)
            x = soft[sl] if soft is not None else one_hot_state(labels[sl], mask[sl], k)
            m = mask[sl].unsqueeze(0).expand(r, -1, -1)
            chunks.append(self.network_.free_energy(x.unsqueeze(0).expand(r, -1, -1, -1), m))
        energy = torch.cat(chunks, dim=1).cpu().numpy()  # (R, n)
        usable = [r for r, s in enumerate(self.run_status_) if s != "diverged"] or list(range(r))
        return energy[usable].mean(axis=0)

    # ------------------------------------------------------------------ outputs
    def fit_predict(self, data: Any, gold: Any = None) -> pd.Series:
        return self.fit(data, gold=gold).predict()

    def fit_predict_proba(self, data: Any, gold: Any = None) -> pd.DataFrame:
        return self.fit(data, gold=gold).predict_proba()

    def predict_proba(self, data: Any = None) -> pd.DataFrame:
        """p(y | x) per task (columns = original classes). ``data=None``: the training tasks; otherwise new
        tasks in long format, answered by the workers seen in training."""
        self._check_fitted()
        if data is None:
            values, tasks = self.posterior_, self.tasks_
        else:
            encoded = self._encode_new(data)
            values = self._mapped(self._hidden_posterior(encoded)).mean(axis=0)
            tasks = encoded.tasks
        return pd.DataFrame(values, index=pd.Index(tasks, name="task"), columns=pd.Index(self.classes_, name="label"))

    def predict(self, data: Any = None) -> pd.Series:
        """Aggregated label per task, in the original label values."""
        proba = self.predict_proba(data)
        codes = proba.to_numpy().argmax(axis=1)
        return pd.Series(self.classes_.take(codes), index=proba.index, name="agg_label")

    def free_energy(self, data: Any = None) -> pd.Series:
        """Per-task free energy under the fitted model (high = unusual pattern of answers)."""
        self._check_fitted()
        if data is None:
            return pd.Series(self.free_energy_, index=pd.Index(self.tasks_, name="task"), name="free_energy")
        encoded = self._encode_new(data)
        return pd.Series(self._free_energy(encoded), index=pd.Index(encoded.tasks, name="task"), name="free_energy")

    def _encode_new(self, data: Any) -> AnnotationSet:
        if isinstance(data, AnnotationSet):
            data = data.to_long()
        template = AnnotationSet(tasks=self.tasks_, workers=self.workers_, classes=self.classes_,
                                 labels=np.zeros((0, len(self.workers_)), dtype=np.int64))
        return template.encode_like(data)

    def selection_summary(self) -> dict[str, Any]:
        """How the start and depth were chosen, as plain values: the choice, the rule's reason, what happened
        (collapse, recovery, fallback) and the evidence, one record per candidate (held-out log-likelihood per
        answer, held-out agreement, collapsed, chosen)."""
        self._check_fitted()
        table = getattr(self, "selection_", None)
        return {
            "start": self.init_, "layers": int(self.n_layers_), "reason": getattr(self, "selection_reason_", None),
            "fallback": getattr(self, "fallback_", None), "collapse_notes": list(getattr(self, "collapse_notes_", [])),
            "heldout_answers": getattr(self, "heldout_answers_", None),
            "seconds": getattr(self, "selection_seconds_", None),
            "candidates": [] if table is None else [
                {k: _plain(v) for k, v in row.items()} for row in table.to_dict(orient="records")],
        }

    def results_frame(self) -> pd.DataFrame:
        """One row per task: label, confidence, per-class probabilities, seed agreement, free energy.
        ``attrs["selection"]`` holds :meth:`selection_summary` (the chosen start/depth and its evidence)."""
        proba = self.predict_proba()
        out = label_table(proba.index, self.classes_, self.predict(), proba)
        out["seed_agreement"] = self.seed_agreement_
        out["free_energy"] = self.free_energy_
        out.attrs["selection"] = self.selection_summary()
        return out

    def confusion_matrices(self, run: int = 0) -> dict[Any, pd.DataFrame]:
        """Lemma 1: every worker's confusion matrix read off the iRBM (rows = given label, columns = true
        class, in class order after the class map). Exact for ``n_layers=0``; with layers it describes the
        iRBM's view of the last layer's output."""
        self._check_fitted()
        psi, _ = self.network_.confusion_matrices()
        psi = psi[run].cpu().numpy()  # (d, K, K) [i, l, hidden m]
        class_map = self.class_maps_[run]
        out = {}
        for i, worker in enumerate(self.workers_):
            matrix = np.empty_like(psi[i])
            matrix[:, class_map] = psi[i]
            out[worker] = pd.DataFrame(matrix, index=pd.Index(self.classes_, name="given"),
                                       columns=pd.Index(self.classes_, name="true"))
        return out

    @property
    def energy_history_(self) -> pd.DataFrame:
        """Energy difference per epoch (rows) and run (columns)."""
        self._check_fitted()
        return self.history_.pivot(index="epoch", columns="run", values="energy_difference")

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write the fitted model to one file (atomic: a crash never leaves a half file)."""
        self._check_fitted()
        from deem_core.data.export import atomic_write_bytes  # noqa: PLC0415

        state = {
            "format_version": FORMAT_VERSION,
            "params": {k: v for k, v in self.get_params().items() if k != "callbacks"},
            "network": {k: v.detach().cpu() for k, v in self.network_.state_dict().items()},
            "shape": [self.network_.n_runs, self.network_.n_workers, self.network_.n_classes, self.network_.n_layers],
            "tasks": _python_list(self.tasks_), "workers": _python_list(self.workers_),
            "classes": _python_list(self.classes_),
            "class_maps": torch.as_tensor(self.class_maps_), "posterior": torch.as_tensor(self.posterior_),
            "seed_agreement": torch.as_tensor(self.seed_agreement_),
            "free_energy": torch.as_tensor(self.free_energy_),
            "history": self.history_.to_dict(orient="list"),
            "run_status": self.run_status_, "run_messages": self.run_messages_, "lr": self.lr_,
            "n_epochs": self.n_epochs_, "seeds": self.seeds_, "fingerprint": self.data_fingerprint_,
            "class_map_source": self.class_map_source_, "warnings": self.warnings_,
            "gold_accuracy": self.gold_accuracy_, "dead_units": self.dead_units_,
            "run_dead_units": self.run_dead_units_, "init": self.init_, "init_scores": self.init_scores_,
            "dependence": self.dependence_, "init_evidence": self.init_evidence_,
            "run_labels": torch.as_tensor(self.run_labels_),
            "n_layers_chosen": int(self.n_layers_), "selection": self.selection_summary(),
        }
        import io  # noqa: PLC0415

        buffer = io.BytesIO()
        torch.save(state, buffer)
        return atomic_write_bytes(Path(path), buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> "DEEM":
        """Read a model written by :meth:`save` (safe loading: no code is unpickled)."""
        path = Path(path)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same clear message
            raise DataError(f"{path.name}: not a DEEM model file ({type(exc).__name__}: {str(exc)[:120]})") from exc
        if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
            raise DataError(f"{path.name}: not a DEEM model file of format {FORMAT_VERSION}")
        params = dict(state["params"])
        params["device"] = device
        model = cls(**params)
        model.device_ = resolve_device(device)
        r, d, k, layers = state["shape"]
        network = DEEMNetwork(r, d, k, layers)
        network.load_state_dict(state["network"])
        model.network_ = network.to(model.device_)
        model.tasks_ = pd.Index(state["tasks"], name="task")
        model.workers_ = pd.Index(state["workers"], name="worker")
        model.classes_ = pd.Index(state["classes"], name="label")
        model.class_maps_ = state["class_maps"].numpy()
        model.posterior_ = state["posterior"].numpy()
        model.seed_agreement_ = state["seed_agreement"].numpy()
        model.free_energy_ = state["free_energy"].numpy()
        model.history_ = pd.DataFrame(state["history"], columns=HISTORY_COLUMNS)
        model.run_status_ = list(state["run_status"])
        model.run_messages_ = list(state["run_messages"])
        model.lr_ = state["lr"]
        model.n_epochs_ = state["n_epochs"]
        model.seeds_ = list(state["seeds"])
        model.data_fingerprint_ = state["fingerprint"]
        model.class_map_source_ = state["class_map_source"]
        model.warnings_ = list(state["warnings"])
        model.gold_accuracy_ = state["gold_accuracy"]
        model.dead_units_ = state["dead_units"]
        model.run_dead_units_ = list(state["run_dead_units"])
        model.init_ = state["init"]
        model.init_scores_ = dict(state["init_scores"])
        model.dependence_ = state["dependence"]
        model.init_evidence_ = state.get("init_evidence")  # absent in files saved before it existed
        model.run_labels_ = state["run_labels"].numpy()
        # files saved before the start/depth choice existed have none of these
        model.n_layers_ = int(state.get("n_layers_chosen", layers))
        summary = state.get("selection") or {}
        candidates = summary.get("candidates") or []
        model.selection_ = pd.DataFrame(candidates) if candidates else None
        model.selection_reason_ = summary.get("reason")
        model.fallback_ = summary.get("fallback")
        model.collapse_notes_ = list(summary.get("collapse_notes") or [])
        model.heldout_answers_ = summary.get("heldout_answers")
        model.selection_seconds_ = summary.get("seconds")
        return model
