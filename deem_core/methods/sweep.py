"""Learning-rate sweep (App. G.4.1): train a grid of learning rates (x seeds) as ONE batched model and
read their energy curves.

>>> from deem_core.methods.sweep import run_sweep
>>> sweep = run_sweep(df, epochs=50)              # df: task, worker, label (or an AnnotationSet)
>>> sweep.recommendation.lr, sweep.curves.head()

Every run of the grid is one run of the batched engine (:func:`deem_core.model.training.train_runs`), so the
grid costs far less than training the learning rates one after the other. Runs with the same seed start
from the same initial weights (the paper's "one fixed set of initial weights"), so their curves differ
only by the learning rate. A run that diverges (non-finite energy) is restored, frozen and marked
"diverged" by the engine; the others go on. The recommendation is the pure function
:func:`deem_core.analysis.recommend.recommend` of the curves.

Nothing here prints: progress goes to ``callbacks`` (``on_epoch_end(epoch, logs) -> bool``).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from deem_core.data.annotations import AnnotationSet, DataError, as_annotation_set
from deem_core.methods.dawid_skene import DEFAULT_DS_PRIOR
from deem_core.methods.starts import INIT_METHODS, initial_network
from deem_core.model.network import DEEMNetwork
from deem_core.analysis.recommend import CURVE_COLUMNS, Recommendation, recommend
from deem_core.model.engine import check_training_size, task_data, train_annotations
from deem_core.model.training import (MAX_LR, TrainingConfig, TrainingResult, check_training_bounds,
                                      resolve_device)

__all__ = ["DEFAULT_LRS", "DEFAULT_SWEEP_EPOCHS", "MIN_JUDGED_UPDATES", "RECORDED_SETTINGS", "SAMPLE_ABOVE",
           "SAMPLE_TASKS", "SweepResult", "judged_epochs", "recorded_settings", "run_sweep", "sample_batch_size", "sample_positions", "sweep_initial_network", "sweep_sample"]

#: default grid: 8 learning rates half a decade apart (1-3-10 steps). Measured on the 7 benchmark sets
#: (1 layer, batch 1024, 60 epochs): 0.001 hardly moves on every set (it is the recommendation's
#: reference for the sampler's own drift), the best learning rate lies between 0.03 and 1, and 3
#: collapses to fewer classes on every set (dead units), so the grid spans stable to unstable.
DEFAULT_LRS: tuple[float, ...] = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
#: default epochs of a sweep (the paper trains 50-150 epochs; 50 is enough to see dip and tail)
DEFAULT_SWEEP_EPOCHS = 50
#: updates a run needs before its curve is judged: below it small learning rates hardly move and read "too small"
#: (on a few hundred tasks an epoch is one mini-batch: 50 epochs were 50 updates; walkthroughs of the ninth session, 75
#: and 77, where every rate up to 0.1 read "too small" and the pick was tentative)
MIN_JUDGED_UPDATES = 200


def judged_epochs(n_tasks: int, batch_size: int = 1024) -> int:
    """The Sweep page's default epochs on ``n_tasks`` tasks swept in batches of ``batch_size`` (a sample's batch is
    scaled so that its epoch makes as many updates): :data:`DEFAULT_SWEEP_EPOCHS`, or as many as make
    :data:`MIN_JUDGED_UPDATES` updates a run where an epoch makes few (200 on 1,024 tasks or fewer)."""
    per_epoch = max(1, -(-int(n_tasks) // max(1, int(batch_size))))
    return max(DEFAULT_SWEEP_EPOCHS, -(-MIN_JUDGED_UPDATES // per_epoch))

#: a sweep of more than SAMPLE_ABOVE tasks sweeps a random sample of SAMPLE_TASKS of them by default (the dashboard's
#: Sweep page and ``deem sweep``): benchmarks/sweep_sample.py, the same recommendation as the full sweep on 3 of 3
#: samples, 4.6x faster at 20,000 tasks
SAMPLE_ABOVE = 20_000
SAMPLE_TASKS = 5_000


def sample_positions(n_tasks: int, size: int, seed: int = 0) -> np.ndarray:
    """Sorted positions of a random sample of ``size`` tasks (all of them when ``size >= n_tasks``)."""
    if size >= n_tasks:
        return np.arange(n_tasks)
    return np.sort(np.random.default_rng(seed).choice(n_tasks, size=size, replace=False))


def sample_batch_size(sample: int, n_tasks: int, batch_size: int | None = None) -> int:
    """The batch of a sweep on ``sample`` of ``n_tasks`` tasks: the full sweep's batch scaled by sample / tasks,
    so an epoch of the sample makes as many updates as an epoch of all tasks. With the full batch a sample's
    epoch makes fewer updates and the curves favour larger learning rates (benchmarks/sweep_sample.py: with
    the batch kept at 1,024 the sample's recommendation differed on 3 of 4 samples; scaled, it matched)."""
    from deem_core.methods.base import defaults_of  # noqa: PLC0415

    full = int(batch_size or defaults_of(run_sweep)["batch_size"])
    # never above the batch asked for: with --batch-size 1 a sample's batch became 32 (attack round 19)
    return min(full, max(32, int(round(full * sample / max(1, n_tasks)))))


def sweep_sample(data: AnnotationSet, sample_tasks: int | None, seed: int = 0,
                 batch_size: int | None = None) -> tuple[AnnotationSet, int]:
    """The tasks a sweep trains on and its batch: a random sample of ``sample_tasks`` tasks (seeded by ``seed``)
    with the batch scaled to make as many updates an epoch (:func:`sample_batch_size`), or ``data`` itself with
    ``batch_size`` when ``sample_tasks`` is None, 0 or not below the number of tasks."""
    from deem_core.methods.base import defaults_of  # noqa: PLC0415

    batch = int(batch_size or defaults_of(run_sweep)["batch_size"])
    if not sample_tasks or int(sample_tasks) >= data.n_tasks:
        return data, batch
    swept = data.subset_tasks(sample_positions(data.n_tasks, int(sample_tasks), int(seed)))
    return swept, sample_batch_size(swept.n_tasks, data.n_tasks, batch)


#: the settings a sweep's recommendation.json records beside its recommendation, so that it can be run again
#: (walkthrough 35); the dashboard's file recorded none of them (walkthrough 134)
RECORDED_SETTINGS = ("lrs", "epochs", "n_layers", "n_seeds", "seed", "init", "sampler_steps", "smoothing")


def recorded_settings(settings: dict) -> dict:
    """:data:`RECORDED_SETTINGS` of a sweep, each from ``settings`` or else :func:`run_sweep`'s default (the default
    grid for no ``lrs``)."""
    from deem_core.methods.base import defaults_of  # noqa: PLC0415

    default = defaults_of(run_sweep)
    out = {key: settings[key] if settings.get(key) is not None else default.get(key) for key in RECORDED_SETTINGS}
    out["lrs"] = [float(lr) for lr in (out["lrs"] or DEFAULT_LRS)]
    return out


@dataclass
class SweepResult:
    """What a sweep leaves behind.

    curves: one row per run and epoch, columns :data:`deem_core.analysis.recommend.CURVE_COLUMNS`
        (run, lr, seed, epoch, positive_energy, negative_energy, energy_difference, acceptance_rate,
        n_predicted_classes, status); energies are NaN after a run diverged.
    recommendation: the :class:`~deem_core.analysis.recommend.Recommendation` (``.lr``, ``.verdicts``).
    runs: one row per run: run, lr, seed, status ("finished"/"diverged"/"cancelled"/"stopped"), message.
    result: the engine's :class:`~deem_core.model.training.TrainingResult`; ``result.network`` holds the R
        trained runs (reuse one with :meth:`run_index`).
    n_reference_classes: classes that majority vote predicts (the dead-unit reference).
    """

    curves: pd.DataFrame
    recommendation: Recommendation
    runs: pd.DataFrame
    result: TrainingResult
    lrs: list[float]
    seeds: list[int]
    epochs: int
    n_reference_classes: int
    seconds: float

    @property
    def network(self) -> DEEMNetwork:
        """The batched network of all R runs (run ``i`` is ``runs.iloc[i]``)."""
        return self.result.network

    @property
    def status(self) -> list[str]:
        """Per-run status, in run order."""
        return list(self.runs["status"])

    @property
    def history(self) -> pd.DataFrame:
        """The engine's full history (HISTORY_COLUMNS, including changed_fraction and seconds)."""
        return self.result.history.frame()

    def run_index(self, lr: float, seed: int | None = None) -> int:
        """Index of the run trained with ``lr`` (and ``seed``; default: the first seed)."""
        seed = self.seeds[0] if seed is None else int(seed)
        hits = self.runs.index[np.isclose(self.runs["lr"], float(lr), rtol=1e-9, atol=0.0)
                               & (self.runs["seed"] == seed)]
        if len(hits) == 0:
            raise KeyError(f"no run with lr {lr:g} and seed {seed} in this sweep (lrs {self.lrs}, seeds {self.seeds})")
        return int(hits[0])


def _check_lrs(lrs: Iterable[float] | None) -> list[float]:
    values = [float(x) for x in (DEFAULT_LRS if lrs is None else lrs)]
    if not values:
        raise ValueError("the learning-rate grid is empty")
    bad = [x for x in values if not (math.isfinite(x) and 0 < x <= MAX_LR)]
    if bad:
        raise ValueError(f"learning rates must be numbers above 0 and at most {MAX_LR:g}, got {bad}")
    if len(set(values)) != len(values):
        raise ValueError(f"the learning-rate grid repeats a value: {values}")
    return sorted(values)


def sweep_initial_network(data: AnnotationSet, seeds: Sequence[int], n_layers: int, init: str,
                          device: torch.device, config: TrainingConfig | None = None,
                          spec: dict | None = None, ds_prior: float = DEFAULT_DS_PRIOR) -> DEEMNetwork | None:
    """Initial network for R = len(seeds) runs (see :func:`deem_core.methods.starts.initial_network`)."""
    return initial_network(data, seeds, n_layers, init, device, config, spec=spec, ds_prior=ds_prior)[0]


def run_sweep(
    data: AnnotationSet | pd.DataFrame,
    lrs: Iterable[float] | None = None,
    epochs: int = DEFAULT_SWEEP_EPOCHS,
    n_layers: int = 1,
    n_seeds: int = 1,
    seed: int = 0,
    device: str = "auto",
    callbacks: Iterable[Any] = (),
    stop_event: threading.Event | None = None,
    batch_size: int = 1024,
    init: str = "mv",
    sampler_steps: int = 5,
    step_size: float = 1.0,
    smoothing: float = 0.9,
    ds_prior: float = DEFAULT_DS_PRIOR,
) -> SweepResult:
    """Train every learning rate of ``lrs`` (default :data:`DEFAULT_LRS`) with seeds ``seed, seed+1, ...,
    seed+n_seeds-1`` as one batched model for ``epochs`` epochs and recommend a learning rate.

    data: an :class:`AnnotationSet` or a long DataFrame (task, worker, label). Runs are ordered seed-major:
    run ``i`` has seed ``seed + i // len(lrs)`` and lr ``sorted(lrs)[i % len(lrs)]``. ``callbacks`` get
    the engine's per-epoch rows of all runs; ``stop_event`` cancels (the curves so far are kept and
    still get a recommendation). ``smoothing``: EMA alpha the recommendation reads the curves with. ``ds_prior``:
    the Dawid-Skene start's shared prior (``init="ds"``; :data:`~deem_core.methods.dawid_skene.DEFAULT_DS_PRIOR`).
    """
    data = as_annotation_set(data)
    if data.n_classes < 2:
        raise DataError(f"{data.source}: only one class ({data.classes[0]!r}) was given: there is nothing "
                        f"to aggregate; DEEM needs at least two classes")
    grid = _check_lrs(lrs)
    if not isinstance(n_seeds, (int, np.integer)) or n_seeds < 1:
        raise ValueError(f"n_seeds must be an integer >= 1, got {n_seeds!r}")
    # the bounds every training has, before int() below could cut 1000.9 steps to 1,000 (attack round 13)
    check_training_bounds(n_layers=n_layers, sampler_steps=sampler_steps, epochs=epochs, n_seeds=n_seeds)
    if init not in INIT_METHODS:
        raise ValueError(f"init must be one of {INIT_METHODS}, got {init!r}")
    seeds_of_runs = [int(seed) + j for j in range(int(n_seeds)) for _ in grid]
    lrs_of_runs = [lr for _ in range(int(n_seeds)) for lr in grid]
    config = TrainingConfig(n_layers=int(n_layers), epochs=int(epochs), batch_size=int(batch_size),
                            sampler_steps=int(sampler_steps), step_size=float(step_size), device=str(device))
    check_training_size(data, config, len(lrs_of_runs))
    prepared = task_data(data, config, resolve_device(device), n_runs=len(lrs_of_runs))  # dense or sparse
    initial = sweep_initial_network(data, seeds_of_runs, int(n_layers), init, resolve_device(device), config,
                                    spec=prepared.network_spec(), ds_prior=float(ds_prior))
    result = train_annotations(data, lrs_of_runs, seeds_of_runs, config, callbacks=list(callbacks),
                               stop_event=stop_event, initial_network=initial, prepared=prepared)
    history = result.history.frame()
    curves = history[CURVE_COLUMNS].copy()
    mv = data.majority_vote()
    n_reference = int(len(np.unique(mv[mv >= 0])))
    runs = pd.DataFrame({"run": range(len(lrs_of_runs)), "lr": lrs_of_runs, "seed": seeds_of_runs,
                         "status": result.status, "message": result.messages})
    recommendation = recommend(curves, smoothing=smoothing, n_reference_classes=n_reference,
                               run_status=dict(zip(runs["run"], runs["status"])))
    return SweepResult(curves=curves, recommendation=recommendation, runs=runs, result=result, lrs=grid,
                       seeds=sorted(set(seeds_of_runs)), epochs=result.epochs_run,
                       n_reference_classes=n_reference, seconds=result.seconds)
