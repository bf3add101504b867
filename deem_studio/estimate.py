"""How long a job will take on this machine, from a short timed probe of the real code path.

A probe runs the job's own code (``DEEM.fit``, ``run_sweep``, the crowd-kit baselines, the diagnostics)
on a random sample of at most :data:`PROBE_TASKS` tasks for :data:`PROBE_EPOCHS` epochs and times it:

* ``setup``: everything before the first epoch and after the last one (the Dawid-Skene start, the
  start choice of ``init="auto"``, the class map, the label table), measured on the sample;
* ``per_epoch``: the median time of the probe's epochs after the first;
* ``baselines``: the baselines' time on the sample.

Every part grows linearly with the number of tasks (mini-batches over tasks, EM over tasks), so the
estimate for the whole data is ``scale x (setup + baselines) + scale x per_epoch x epochs`` with
``scale = n_tasks / sample``. ``benchmarks/estimate.py`` compares these estimates with measured jobs.

No Streamlit here; the dashboard caches an :class:`Estimate` per data set and settings (the probe takes
1-3 s) and scales it to the epochs in the form without probing again.

A probe runs in the page's own thread, outside the job queue, for every session that opens a form: it is
bounded (found attacking main: a probe of 1,000 classes x 8 workers took more than 4 GB and 100 s of a
page, and every session could run one at once). One probe runs at a time in a server (the others wait up to
:data:`PROBE_WAIT_SECONDS`); a probe whose model would need more than :data:`PROBE_MAX_BYTES`
(``DEEM_PROBE_MAX_BYTES``) is not run; a probe is stopped after :data:`PROBE_MAX_SECONDS`. Each case raises
:class:`ProbeSkipped`, whose message says why there is no estimate.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

__all__ = ["Estimate", "PROBE_EPOCHS", "PROBE_MAX_BYTES", "PROBE_MAX_SECONDS", "PROBE_TASKS", "ProbeSkipped",
           "estimate_diagnostics", "estimate_sweep", "estimate_train", "format_seconds", "sample_positions"]

#: tasks in a probe (a random sample of the data; the whole data when smaller)
PROBE_TASKS = 2000
#: epochs in a probe: the first one carries one-off costs, the others give the time per epoch
PROBE_EPOCHS = 3
#: memory a probe's model may need (its training on the task sample); a larger one is not probed
PROBE_MAX_BYTES = 512 << 20
#: seconds after which a probe is stopped (what it timed by then still gives an estimate)
PROBE_MAX_SECONDS = 20.0
#: seconds a probe waits for another session's probe to end
PROBE_WAIT_SECONDS = 30.0
_PROBES = threading.Lock()


class ProbeSkipped(Exception):
    """No estimate: the message says why. ``retry``: another session was probing (try again later)."""

    def __init__(self, message: str, retry: bool = False):
        super().__init__(message)
        self.retry = retry


def _max_bytes() -> int:
    try:
        return int(os.environ.get("DEEM_PROBE_MAX_BYTES", "") or PROBE_MAX_BYTES)
    except ValueError:
        return PROBE_MAX_BYTES


@contextlib.contextmanager
def _probe_slot():
    """One probe at a time in this process, and a stop event that fires after PROBE_MAX_SECONDS."""
    if not _PROBES.acquire(timeout=PROBE_WAIT_SECONDS):
        raise ProbeSkipped("another session is timing its job on this server right now", retry=True)
    stop = threading.Event()
    timer = threading.Timer(PROBE_MAX_SECONDS, stop.set)
    timer.daemon = True
    timer.start()
    try:
        yield stop
    finally:
        timer.cancel()
        _PROBES.release()


def _check_probe_size(data: Any, n_layers: int, n_runs: int) -> None:
    """ProbeSkipped when training ``n_runs`` runs on the probe would need more than the probe may hold."""
    from deem_core.model.engine import check_training_size  # noqa: PLC0415
    from deem_core.model.training import TrainingConfig  # noqa: PLC0415

    needed = check_training_size(data, TrainingConfig(n_layers=int(n_layers)), int(n_runs), memory_bytes=1 << 62)
    if needed > _max_bytes():
        raise ProbeSkipped(f"the model is too large to time while you wait (its training on {data.n_tasks:,} tasks "
                           f"would need about {needed / (1 << 30):.1f} GiB); the job itself is checked against the "
                           f"memory of this machine when it starts")


def _stopped(clock: "_EpochClock", stop: threading.Event) -> None:
    if stop.is_set() and len(clock.times) < 2:
        raise ProbeSkipped(f"the timing probe alone took more than {PROBE_MAX_SECONDS:.0f} s on "
                           f"{PROBE_TASKS:,} tasks: this job will be long")


def format_seconds(seconds: float | None) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``; '?' for None/NaN."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = max(0.0, float(seconds))
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def sample_positions(n_tasks: int, size: int, seed: int = 0) -> np.ndarray:
    """Sorted positions of a random sample of ``size`` tasks (all of them when ``size >= n_tasks``)."""
    if size >= n_tasks:
        return np.arange(n_tasks)
    return np.sort(np.random.default_rng(seed).choice(n_tasks, size=size, replace=False))


@dataclass(frozen=True)
class Estimate:
    """Time of one job on this machine, measured on a probe and scaled to the whole data."""

    kind: str  # "train", "sweep" or "diagnostics"
    n_tasks: int  # tasks the job will train on
    sample_tasks: int  # tasks of the probe
    setup_s: float  # one-off time on the probe (before the first and after the last epoch)
    per_epoch_s: float  # one epoch on the probe
    baselines_s: float = 0.0  # the baselines on the probe
    epochs: int = 0
    n_runs: int = 1  # runs trained at once (learning rates x seeds, or seeds x starts)
    probe_s: float = 0.0  # wall time of the probe itself
    device: str = "cpu"

    @property
    def scale(self) -> float:
        return self.n_tasks / max(1, self.sample_tasks)

    @property
    def seconds_per_epoch(self) -> float:
        return self.scale * self.per_epoch_s

    @property
    def total_s(self) -> float:
        return self.scale * (self.setup_s + self.baselines_s + self.per_epoch_s * self.epochs)

    def with_epochs(self, epochs: int) -> Estimate:
        return replace(self, epochs=int(epochs))

    def with_tasks(self, n_tasks: int) -> Estimate:
        return replace(self, n_tasks=int(n_tasks))

    def describe(self) -> str:
        """One line: the estimate and what it rests on."""
        parts = [f"about {format_seconds(self.total_s)} on this {self.device.upper()}"]
        if self.epochs:
            parts.append(f"{format_seconds(self.seconds_per_epoch)} per epoch")
        probe = ("timed on all tasks" if self.sample_tasks >= self.n_tasks else
                 f"timed on a sample of {self.sample_tasks:,} tasks and scaled to {self.n_tasks:,}")
        return f"{parts[0]} ({', '.join(parts[1:] + [probe])})"

    def to_dict(self) -> dict[str, Any]:
        return {"seconds": round(self.total_s, 3), "per_epoch_s": round(self.seconds_per_epoch, 4),
                "probe_tasks": self.sample_tasks, "probe_s": round(self.probe_s, 3)}


class _EpochClock:
    """Training callback: the time at the end of every epoch."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_epoch_end(self, epoch: int, logs: Any) -> bool:
        self.times.append(time.perf_counter())
        return False


def _split(started: float, ended: float, clock: _EpochClock) -> tuple[float, float]:
    """(setup, per_epoch) of a timed probe: per epoch = median gap between epoch ends after the first."""
    ends = clock.times
    if not ends:
        return ended - started, 0.0
    gaps = [b - a for a, b in zip(ends, ends[1:])]
    per_epoch = statistics.median(gaps) if gaps else (ends[0] - started) / 2
    setup = (ends[0] - started - per_epoch) + (ended - ends[-1])
    return max(0.0, setup), per_epoch


def _probe_data(data: Any, sample: int, seed: int) -> Any:
    positions = sample_positions(data.n_tasks, min(sample, data.n_tasks), seed)
    return data if len(positions) == data.n_tasks else data.subset_tasks(positions)


def _baselines_seconds(data: Any, methods: Sequence[str], seed: int) -> float:
    if not methods:
        return 0.0
    from deem_core.methods.registry import fit_method  # noqa: PLC0415

    started = time.perf_counter()
    for method in methods:
        try:
            fit_method(method, data, seed=seed).results_frame()
        except Exception:  # noqa: BLE001 - a method that fails here fails in the job too (and quickly)
            pass
    return time.perf_counter() - started


def estimate_train(data: Any, deem_methods: Sequence[str] = ("deem",), baselines: Sequence[str] = (),
                   n_layers: int = 1, epochs: int = 100, lr: float = 0.01, n_seeds: int = 1, init: str = "auto",
                   device: str = "auto", gold: Any = None, supervised_weight: float = 0.0, seed: int = 0,
                   sample: int = PROBE_TASKS) -> Estimate:
    """Time of a "train" job (``deem_studio.jobs``): each DEEM method (``deem``/``irbm``) then the baselines."""
    from deem_core.methods.deem import DEEM  # noqa: PLC0415
    from deem_core.model.training import resolve_device  # noqa: PLC0415

    probe = _probe_data(data, sample, seed)
    starts = 2 if init == "auto" else 1  # init="auto" trains both starts as one batched model
    for method in deem_methods:
        _check_probe_size(probe, 0 if method == "irbm" else int(n_layers), int(n_seeds) * starts)
    started_probe = time.perf_counter()
    setup = per_epoch = 0.0
    probe_gold = None
    if gold is not None and supervised_weight > 0:
        probe_gold = gold.reindex(probe.tasks).dropna()
    with _probe_slot() as stop:
        for method in deem_methods:
            clock = _EpochClock()
            model = DEEM(n_layers=0 if method == "irbm" else int(n_layers), epochs=PROBE_EPOCHS, lr=float(lr),
                         init=init, n_seeds=int(n_seeds), seed=seed, device=device, callbacks=[clock])
            started = time.perf_counter()
            model.fit(probe, gold=probe_gold, stop_event=stop)
            _stopped(clock, stop)
            model.results_frame()
            s, e = _split(started, time.perf_counter(), clock)
            setup, per_epoch = setup + s, per_epoch + e
        base = _baselines_seconds(probe, list(baselines), seed)
    return Estimate(kind="train", n_tasks=int(data.n_tasks), sample_tasks=int(probe.n_tasks), setup_s=setup,
                    per_epoch_s=per_epoch, baselines_s=base, epochs=int(epochs), n_runs=int(n_seeds),
                    probe_s=time.perf_counter() - started_probe, device=resolve_device(device).type)


def estimate_sweep(data: Any, lrs: Sequence[float] | None = None, epochs: int = 50, n_layers: int = 1,
                   n_seeds: int = 1, device: str = "auto", seed: int = 0, sample: int = PROBE_TASKS) -> Estimate:
    """Time of a "sweep" job on ``data`` (pass the task sample when the sweep runs on one)."""
    from deem_core.methods.sweep import DEFAULT_LRS, run_sweep  # noqa: PLC0415
    from deem_core.model.training import resolve_device  # noqa: PLC0415

    grid = list(lrs) if lrs else list(DEFAULT_LRS)
    probe = _probe_data(data, sample, seed)
    _check_probe_size(probe, int(n_layers), len(grid) * int(n_seeds))
    clock = _EpochClock()
    with _probe_slot() as stop:
        started = time.perf_counter()
        run_sweep(probe, lrs=grid, epochs=PROBE_EPOCHS, n_layers=int(n_layers), n_seeds=int(n_seeds), seed=seed,
                  device=device, callbacks=[clock], stop_event=stop)
        ended = time.perf_counter()
        _stopped(clock, stop)
    setup, per_epoch = _split(started, ended, clock)
    return Estimate(kind="sweep", n_tasks=int(data.n_tasks), sample_tasks=int(probe.n_tasks), setup_s=setup,
                    per_epoch_s=per_epoch, epochs=int(epochs), n_runs=len(grid) * int(n_seeds),
                    probe_s=ended - started, device=resolve_device(device).type)


def estimate_diagnostics(model: Any, data: Any, gold: Any = None, subset_classes: Any = None,
                         subset_by: str | None = None, seed: int = 0, sample: int = PROBE_TASKS) -> Estimate:
    """Time of a "diagnostics" job: the diagnostics of ``model`` on a task sample, scaled to all tasks."""
    from deem_core.analysis.diagnostics import run_diagnostics  # noqa: PLC0415

    probe = _probe_data(data, sample, seed)
    probe_gold = gold.reindex(probe.tasks).dropna() if gold is not None and len(gold) else None
    with _probe_slot():
        started = time.perf_counter()
        run_diagnostics(model, probe, gold=probe_gold, subset_classes=subset_classes,
                        subset_by=subset_by if subset_classes else None)
        seconds = time.perf_counter() - started
    return Estimate(kind="diagnostics", n_tasks=int(data.n_tasks), sample_tasks=int(probe.n_tasks),
                    setup_s=seconds, per_epoch_s=0.0, probe_s=seconds, device="cpu")
