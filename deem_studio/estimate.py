"""How long a job will take on this machine, from short timed probes of the real code path.

A probe runs the job's own code (``DEEM.fit``, ``run_sweep``, the methods that do not train)
on a random sample of tasks for :data:`PROBE_EPOCHS` epochs and times its parts:

* ``setup``: everything before the first epoch and after the last one (the Dawid-Skene start, the
  start choice of ``init="auto"``, the class map, the label table);
* ``per_epoch``: the median time of the probe's epochs after the first;
* ``baselines``: the methods that do not train.

Every part is a :class:`Line` in the number of tasks, ``fixed + per_task x tasks``, fitted through a probe
of :data:`PROBE_TASKS` tasks and one of a quarter of that (after an untimed warm-up on a few tasks): a
part's fixed cost (a Dawid-Skene fit's iterations, per-epoch bookkeeping) is not multiplied
by the data's size. Data no larger than the probe is probed whole. ``benchmarks/estimate.py`` compares
the estimates with measured jobs (``benchmarks/results/estimate.txt``).

No Streamlit here; the dashboard caches an :class:`Estimate` per data set and settings (the probes take
1-5 s) and evaluates it at the epochs in the form without probing again. Diagnostics are not estimated
before launch (a probe of them costs almost as much as the job on mid-sized data, and their cost per task
falls with the number of tasks); their job reports the tasks done, and its time left comes from that pace.

Probes run in the page's own thread, outside the job queue, for every session that opens a form: they are
bounded (found attacking main: a probe of 1,000 classes x 8 workers took more than 4 GB and 100 s of a
page, and every session could run one at once). One session probes at a time in a server (the others wait up
to :data:`PROBE_WAIT_SECONDS`); no probe runs whose model would need more than :data:`PROBE_MAX_BYTES`
(``DEEM_PROBE_MAX_BYTES``); training in the probes stops after :data:`PROBE_MAX_SECONDS`. Each case raises
:class:`ProbeSkipped`, whose message says why there is no estimate.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import threading
import time
import warnings
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence


#: what a probe's fit warns of (the safety rule returning a reference, a collapse) is about a few epochs on a sample,
#: timed, not a run: each probe wrote its FallbackWarning into the server's log as if a run had fallen back
#: (walkthroughs 70 and 71)
warnings.filterwarnings("ignore", category=UserWarning, module=r"deem_studio\.estimate$")

__all__ = ["Estimate", "Line", "PROBE_EPOCHS", "PROBE_MAX_BYTES", "PROBE_MAX_SECONDS", "PROBE_TASKS", "ProbeSkipped",
           "BackgroundProbes", "estimate_sweep", "estimate_train", "format_seconds"]

#: tasks in a probe (a random sample of the data; the whole data when smaller)
PROBE_TASKS = 2000
#: epochs in a probe: the first one carries one-off costs, the others give the time per epoch
PROBE_EPOCHS = 3
#: memory a probe's model may need (its training on the task sample); a larger one is not probed
PROBE_MAX_BYTES = 512 << 20
#: seconds after which the probes' training stops (what was timed by then still gives an estimate)
PROBE_MAX_SECONDS = 20.0
#: tasks the methods that do not train are timed on (and a quarter of them; once per estimate): an iterative method
#: runs more iterations on a small sample (GLAD 10-11 on 125-250 tasks of walkthrough 123's MTurk batch, 2 on
#: 500-2,000), so 240 put its 3.7 s at 17.5 and an ensemble's 11.4 s at 2.4 (benchmarks/results/baseline_estimate.txt)
BASELINE_PROBE_TASKS = 1000
#: answers x classes of the baselines' larger probe at most: a crowd-kit fit cannot be stopped, and GLAD on 240 tasks
#: of 100 answers in 200 classes (4.8 M) held the probe lock, the one for every visitor's estimate, 173 s (attack
#: round 19); on fewer tasks the line through the two probes reads the same per-task cost
BASELINE_PROBE_CELLS = 100_000
#: seconds a session waits for another session's probes to end (the page waits with it: at 30 s, a reload during
#: a long probe held the Train form for 30 s at each change, for 70 s in all; walkthrough 19)
PROBE_WAIT_SECONDS = 10.0
_PROBES = threading.Lock()


class ProbeSkipped(Exception):
    """No estimate: the message says why. ``retry``: another session was probing (try again later)."""

    def __init__(self, message: str, retry: bool = False, transient: bool = False):
        super().__init__(message)
        self.retry = retry
        self.transient = transient  # it says how busy the machine was, not what the job is: worth timing again later


def _max_bytes() -> int:
    from deem_studio.settings import env_value  # noqa: PLC0415

    return int(env_value("DEEM_PROBE_MAX_BYTES", PROBE_MAX_BYTES))


@contextlib.contextmanager
def _probe_slot():
    """One session's probes at a time in this process, and a stop event that fires after PROBE_MAX_SECONDS."""
    if not _PROBES.acquire(timeout=PROBE_WAIT_SECONDS):
        raise ProbeSkipped("another timing is running on this server right now (another visitor's, or this page's "
                           "previous one)", retry=True)
    from deem_studio.capacity import time_limit  # noqa: PLC0415

    try:
        with time_limit(PROBE_MAX_SECONDS) as stop:
            yield stop
    finally:
        _PROBES.release()


#: the smallest batch a probe times at when the job's own batch is too large for a probe to hold
MIN_PROBE_BATCH = 16


def _probe_batch(data: Any, trainings: Sequence[tuple[int, int, int]], batch_size: int) -> int:
    """The batch the probe times ``trainings`` ((layers, runs, runs' worth of weights kept beside: a collapse guard's
    states) each) at: the job's ``batch_size``, or where that needs more than a probe may hold the largest half of it
    that does (an epoch's work is the same products over the same tasks, in more steps: its time is about the job's,
    a little more). A probe too large at every batch is skipped (ProbeSkipped). The job's batch was the only one
    tried: a 5.8 MB upload was "too large to time", and its training, with no estimate and no warning, ran to the
    2-hour limit (attack round 68)."""
    from deem_core.model.engine import check_training_size  # noqa: PLC0415
    from deem_core.model.training import TrainingConfig  # noqa: PLC0415

    def needed(batch: int) -> int:
        return max(check_training_size(data, TrainingConfig(n_layers=int(layers), batch_size=int(batch)), int(runs),
                                       memory_bytes=1 << 62, kept_runs=int(kept))
                   for layers, runs, kept in trainings)

    batch = max(1, int(batch_size))
    if not trainings:  # (the baselines alone: nothing trains)
        return batch
    first = needed(batch)
    if first <= _max_bytes():
        return batch
    while batch > MIN_PROBE_BATCH:
        batch = max(MIN_PROBE_BATCH, batch // 2)
        if needed(batch) <= _max_bytes():
            return batch
    raise ProbeSkipped(f"the model is too large to time while you wait (its training on {data.n_tasks:,} tasks "
                       f"would need about {first / (1 << 30):.1f} GiB); the job itself is checked against this "
                       f"server's bound for one job when it is launched")


def _check_probe_path(data: Any, probe: Any) -> None:
    """ProbeSkipped when the probe's tasks would train on another path than the whole data's (its workers fewer, say):
    a probe times the path it takes, and the other one's cost per task may differ a hundredfold."""
    from deem_core.model.engine import path_for  # noqa: PLC0415

    taken, timed = path_for(data), path_for(probe)
    if taken != timed:
        raise ProbeSkipped(f"a sample of the tasks would train on the {timed} path and these data train on the {taken} "
                           f"one, whose time per task differs: the sample cannot time the job")


def _too_slow() -> ProbeSkipped:
    """Probes stopped at their time limit: the job is long, or the machine busy ("this job will be long" was said of
    a 47 s job timed while other jobs ran; walkthrough 28). The job the probes were timing, launched before they
    ended, is one such (a 27 s training read "a long job, or a busy server" beside it, the only job running; walkthrough
    128)."""
    return ProbeSkipped(f"the timing probes alone took more than {PROBE_MAX_SECONDS:.0f} s: a long job, or a busy "
                        f"server (a job running beside them, one launched before they ended too)", transient=True)


def _stopped(clock: "_EpochClock", stop: threading.Event) -> None:
    if stop.is_set() and len(clock.times) < 2:
        raise _too_slow()


def format_seconds(seconds: float | None) -> str:
    """``0.02 s``, ``42 s``, ``3 min 05 s``, ``1 h 02 min``; '?' for None/NaN."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = max(0.0, float(seconds))
    if 0 < seconds < 0.005:
        return "< 0.01 s"
    if 0 < seconds < 0.095:  # an epoch of a small set: "0.0 s per epoch" would say it costs nothing
        return f"{seconds:.2f} s"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@dataclass(frozen=True)
class Line:
    """Seconds as ``fixed + per_task x tasks`` (fitted through two probes of different sizes)."""

    fixed: float = 0.0
    per_task: float = 0.0

    def at(self, n_tasks: int) -> float:
        return self.fixed + self.per_task * n_tasks

    @staticmethod
    def through(small: tuple[int, float], big: tuple[int, float]) -> Line:
        """The line through (tasks, seconds) of a small and a big probe; a single probe (or a noisy pair
        whose slope comes out negative) scales the big one in proportion to the tasks."""
        (n1, t1), (n2, t2) = small, big
        if n2 <= n1:
            return Line(0.0, t2 / max(1, n2))
        slope = (t2 - t1) / (n2 - n1)
        if slope <= 0:
            return Line(0.0, t2 / max(1, n2))
        return Line(max(0.0, t2 - slope * n2), slope)


@dataclass(frozen=True)
class Estimate:
    """Time of one job on this machine: each part a :class:`Line` in the number of tasks, measured on
    probes and evaluated at the job's size."""

    kind: str  # "train", "sweep" or "diagnostics"
    n_tasks: int  # tasks the job will work on
    sample_tasks: int  # tasks of the largest probe
    setup: Line  # one-off time (before the first and after the last epoch)
    per_epoch: Line = Line()
    baselines: Line = Line()  # the methods that do not train (train jobs)
    epochs: int = 0
    n_runs: int = 1  # runs trained at once (learning rates x seeds, or seeds x starts)
    probe_s: float = 0.0  # wall time of the probes
    device: str = "cpu"
    #: each method that does not train: its share of ``baselines`` (empty where they were not timed one by one)
    baseline_shares: dict = field(default_factory=dict)
    #: each method that trains: its share of the training time (empty where one method trains or none was timed)
    trained_shares: dict = field(default_factory=dict)
    #: DEEM choosing its depth: the seconds of an epoch of each depth, a :class:`Line` in the tasks (its depths train
    #: one after another at costs that differ: empty otherwise)
    depth_epoch: dict = field(default_factory=dict)

    @property
    def seconds_per_epoch(self) -> float:
        return self.per_epoch.at(self.n_tasks)

    @property
    def setup_s(self) -> float:
        return self.setup.at(self.n_tasks)

    @property
    def baselines_s(self) -> float:
        return self.baselines.at(self.n_tasks)

    @property
    def total_s(self) -> float:
        return self.setup_s + self.baselines_s + self.seconds_per_epoch * self.epochs

    def with_epochs(self, epochs: int) -> Estimate:
        return replace(self, epochs=int(epochs))

    def with_tasks(self, n_tasks: int) -> Estimate:
        return replace(self, n_tasks=int(n_tasks))

    def describe(self) -> str:
        """One line: the estimate and what it rests on."""
        from deem_core.model.training import device_name  # noqa: PLC0415

        total = format_seconds(self.total_s)  # (majority vote alone read "about < 0.01 s"; walkthrough 30)
        total = total.replace("< ", "under ") if total.startswith("<") else f"about {total}"
        parts = [f"{total} on this {device_name(self.device)}"]
        if self.epochs and self.seconds_per_epoch > 0:  # (majority vote alone read "0.0 s per epoch"; walkthrough 94)
            # (two figures below a second: "0.3 s per epoch" x 50 epochs read 15 s beside "about 13 s"; walkthrough 78)
            each = self.seconds_per_epoch
            parts.append(f"{each:.2f} s per epoch" if each is not None and 0.095 <= each < 1 else
                         f"{format_seconds(each)} per epoch")
        # the tasks the job works on (a sweep on a sample: the sample's), counted: "all tasks" read as the set's
        probe = (f"timed on the job's {self.n_tasks:,} tasks" if self.sample_tasks >= self.n_tasks else
                 f"timed on samples of up to {self.sample_tasks:,} tasks and scaled to {self.n_tasks:,}")
        return f"{parts[0]} ({', '.join(parts[1:] + [probe])})"

    def to_dict(self) -> dict[str, Any]:
        return {"seconds": round(self.total_s, 3), "per_epoch_s": round(self.seconds_per_epoch, 4),
                "setup_s": round(self.setup_s, 3), "baselines_s": round(self.baselines_s, 3),
                "baselines_each_s": {m: round(share * self.baselines_s, 4) for m, share in self.baseline_shares.items()},
                "trained_each_s": {m: round(share * (self.total_s - self.baselines_s), 4)
                                   for m, share in self.trained_shares.items()},
                "depth_epoch_s": {str(depth): round(line.at(self.n_tasks), 5) for depth, line in self.depth_epoch.items()},
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


def _probe_data(data: Any, size: int, seed: int) -> Any:
    """A random sample of ``size`` tasks that holds the task with the most answers. The engine takes its path (dense
    or sparse) from the widest task: a sample without the one task every worker answered timed the sparse path while
    the job trained on the dense one ("about 38 s" said of a training that ran to the 2-hour limit; attack round 68)."""
    import numpy as np  # noqa: PLC0415

    from deem_core.methods.sweep import sample_positions  # noqa: PLC0415

    positions = sample_positions(data.n_tasks, min(size, data.n_tasks), seed)
    if len(positions) == data.n_tasks:
        return data
    widest = int(np.argmax(np.diff(data.task_offsets)))
    if len(positions) and widest not in set(positions.tolist()):
        positions = np.sort(np.append(positions[:-1], widest))
    return data.subset_tasks(positions)


def _probe(data: Any, sample: int, seed: int, measure: Callable[[Any, threading.Event], tuple[float, ...]],
           size: Callable[[Any], None]) -> tuple[list[Line], int, float]:
    """Time ``measure(probe, stop)`` (which returns seconds per part) on a big and a small task sample and fit a
    :class:`Line` per part. A first untimed run on a few tasks pays the one-off costs of a process (imports,
    allocator warm-up) that the job will not pay again. Data no larger than ``sample`` is probed whole: the
    estimate is then the probe itself. ``size(big_sample)`` refuses (ProbeSkipped) before anything runs."""
    n = int(data.n_tasks)
    big = min(n, int(sample))
    small = min(big, max(100, int(sample) // 4))
    big_probe = _probe_data(data, big, seed)
    _check_probe_path(data, big_probe)
    size(big_probe)
    with _probe_slot() as stop:
        started = time.perf_counter()
        measure(_probe_data(data, min(64, n), seed), stop)  # warm-up, untimed
        at_big = measure(big_probe, stop)
        if big >= n or small >= big:
            lines = [Line(0.0, value / max(1, big)) for value in at_big]
        else:
            at_small = measure(_probe_data(data, small, seed), stop)
            lines = [Line.through((small, a), (big, b)) for a, b in zip(at_small, at_big)]
    return lines, big, time.perf_counter() - started


def _baselines_seconds(data: Any, methods: Sequence[str], seed: int, stop: threading.Event | None = None,
                       each: dict[str, float] | None = None) -> float:
    """Seconds the methods that do not train take on ``data`` (``each``: filled with each method's); ProbeSkipped
    when the probes' time runs out first (a crowd-kit loop is fitted in a child process that the probes' limit
    ends: GLAD on 11,000 answers held the one probe thread, every visitor's estimate, for 15 minutes; attack round
    21)."""
    if not methods:
        return 0.0
    from deem_core.methods.child import FitStopped  # noqa: PLC0415
    from deem_core.methods.registry import fit_method  # noqa: PLC0415

    started = time.perf_counter()
    for method in methods:
        if stop is not None and stop.is_set():
            raise _too_slow()
        began = time.perf_counter()
        try:
            fit_method(method, data, seed=seed, stop_event=stop).results_frame()
        except FitStopped:
            raise _too_slow() from None
        except Exception:  # noqa: BLE001 - a method that fails here fails in the job too (and quickly)
            pass
        if each is not None:
            each[method] = time.perf_counter() - began
    return time.perf_counter() - started


def _time_apart(methods: Sequence[str], datasets: list[Any], seed: int, stop: threading.Event | None,
                ) -> tuple[list[list[float]], float]:
    """The methods fitted in a child process in a job (crowd-kit's loops), timed on each of ``datasets`` in one
    child (:func:`deem_core.methods.child.time_in_child`); ProbeSkipped when the probes' time runs out first."""
    from deem_core.methods.child import FitStopped, time_in_child  # noqa: PLC0415

    try:
        return time_in_child(list(methods), datasets, {"seed": seed}, stop or threading.Event())
    except FitStopped:
        raise _too_slow() from None


def _takes_whole(method: str, data: Any) -> bool:
    """Whether a method's own size check takes the whole data: one that refuses them is refused when its job is
    submitted, and a probe of it on a sample costs for nothing (GLAD on a sample of 20 tasks x 500 classes held the
    Train page 81 s; attack round 18)."""
    from deem_core.data.annotations import DataError  # noqa: PLC0415
    from deem_core.methods.registry import make_aggregator  # noqa: PLC0415

    check = getattr(make_aggregator(method), "check_size", None)
    try:
        if check is not None:
            check(data)
    except DataError:
        return False
    return True


def estimate_train(data: Any, deem_methods: Sequence[str] = ("deem",), baselines: Sequence[str] = (),
                   n_layers: int | str = 1, epochs: int = 100, lr: float = 0.01, n_seeds: int = 1, init: str = "auto",
                   device: str = "auto", gold: Any = None, supervised_weight: float = 0.0, seed: int = 0,
                   sample: int = PROBE_TASKS) -> Estimate:
    """Time of a "train" job (``deem_studio.jobs``): each DEEM method (``deem``/``irbm``) then the baselines.
    ``n_layers="auto"``: DEEM's depths trained one after another, as the choice of the depth runs them where they do
    not train as one batched model; each depth is timed, and an epoch is one of each (timed as three 1-layer models,
    a choice that trains 0, 1 and 2 layers took 1.36x its estimate; walkthrough 64)."""
    from deem_core.methods.base import defaults_of  # noqa: PLC0415
    from deem_core.methods.choose import GUARD_STATES  # noqa: PLC0415
    from deem_core.methods.deem import DEEM, SELECTION_DEPTHS  # noqa: PLC0415
    from deem_core.methods.registry import get_method  # noqa: PLC0415
    from deem_core.model.training import resolve_device  # noqa: PLC0415

    baselines = [m for m in baselines if _takes_whole(m, data)]
    line: list[Line] = []  # the baselines' seconds in the tasks, timed once
    shares: dict[str, float] = {}  # each baseline's share of them
    calls = [0]

    def baselines_seconds(probe: Any, stop: threading.Event) -> float:
        """The baselines are timed once, on BASELINE_PROBE_TASKS tasks and a quarter of them, and read off the line
        through the two: timed on every probe (64, 2,000 and 500 tasks), GLAD's 66 s held the Train button
        (walkthrough, tenth session); their cost has a large fixed part (MACE 2.2 s on 64 tasks, 2.9 s on 1,000),
        so one size scaled in proportion overestimated. Not in the warm-up (the first call)."""
        calls[0] += 1
        if calls[0] == 1 or not baselines:
            return 0.0
        if not line:
            per_task = data.n_annotations * data.n_classes / max(1, data.n_tasks)
            size = min(BASELINE_PROBE_TASKS, probe.n_tasks, max(4, int(BASELINE_PROBE_CELLS // max(per_task, 1.0))))
            big = _probe_data(data, size, seed)
            small = _probe_data(data, max(1, big.n_tasks // 4), seed)
            here = [m for m in baselines if not get_method(m).isolated]
            apart = [m for m in baselines if get_method(m).isolated]
            each: dict[str, float] = {}
            at_small = _baselines_seconds(small, here, seed, stop)
            at_big = _baselines_seconds(big, here, seed, stop, each)
            starts = 0.0  # a job starts one child process for each method fitted apart
            if apart:
                (in_small, in_big), wall = _time_apart(apart, [small, big], seed, stop)
                at_small, at_big = at_small + sum(in_small), at_big + sum(in_big)
                starts = max(0.0, wall - sum(in_small) - sum(in_big)) * len(apart)
                each.update({m: t + starts / len(apart) for m, t in zip(apart, in_big)})
            # each method's share of the baselines' time, as the larger probe measured it: the job's time left
            # counts the methods still to run by these, not by the pace of those done (majority vote's 0.01 s
            # promised "about 1.8 s left" with GLAD's 28 s to come; walkthrough 105)
            total = sum(each.values())
            if total > 0 and set(each) == set(baselines):
                shares.update({m: each[m] / total for m in baselines})
            # a flat or noisy pair (a fitted slope below 0) is a fixed cost, not one in proportion to the tasks
            slope = max(0.0, (at_big - at_small) / max(1, big.n_tasks - small.n_tasks))
            line.append(Line(max(0.0, at_big - slope * big.n_tasks) + starts, slope))
        return line[0].at(probe.n_tasks)

    job_batch = int(defaults_of(DEEM)["batch_size"])  # the job's (the Train page's batch is DEEM's own)
    batch = [job_batch]  # the batch the probes time at (:func:`_probe_batch`)
    costs: list[dict[str, float]] = []  # each probe's seconds of each trained method (the job's epochs)
    depth_costs: list[tuple[int, dict[int, float]]] = []  # each probe's tasks and epoch of each depth chosen among

    def measure(probe: Any, stop: threading.Event) -> tuple[float, float, float]:
        setup = per_epoch = 0.0
        cost: dict[str, float] = {}
        costs.append(cost)
        depths: dict[int, float] = {}
        depth_costs.append((int(probe.n_tasks), depths))
        probe_gold = None
        if gold is not None and supervised_weight > 0:
            probe_gold = gold.reindex(probe.tasks).dropna()
        for method, depth in trainings:
            clock = _EpochClock()
            model = DEEM(n_layers=depth, epochs=PROBE_EPOCHS, lr=float(lr), batch_size=batch[0],
                         init=init, n_seeds=int(n_seeds), seed=seed, device=device,
                         supervised_weight=float(supervised_weight), callbacks=[clock])
            started = time.perf_counter()
            model.fit(probe, gold=probe_gold, stop_event=stop)
            _stopped(clock, stop)
            model.results_frame()
            s, e = _split(started, time.perf_counter(), clock)
            setup, per_epoch = setup + s, per_epoch + e
            cost[method] = cost.get(method, 0.0) + s + e * int(epochs)
            if method == "deem" and n_layers == "auto":
                depths[depth] = e
        return setup, per_epoch, baselines_seconds(probe, stop)

    # each training the job runs: iRBM has no layers; DEEM choosing its depth here trains each depth in turn
    trainings = [(m, d) for m in deem_methods
                 for d in ((0,) if m == "irbm" else SELECTION_DEPTHS if n_layers == "auto" else (int(n_layers),))]

    def size(probe: Any) -> None:
        starts = 2 if init == "auto" else 1  # init="auto" trains both starts as one batched model
        # (and one start under the collapse guard, its states beside: a start set, or a probe too small to choose on)
        checks = [check for _, depth in trainings for check in (
            (depth, int(n_seeds) * starts, 0), (depth, int(n_seeds), GUARD_STATES * int(n_seeds)))]
        batch[0] = _probe_batch(probe, checks, job_batch)

    (setup, per_epoch, base), big, probe_s = _probe(data, sample, seed, measure, size)
    # each trained method's share of the training, as the larger probe (the second: after the warm-up) measured
    # it: DEEM choosing its depth beside iRBM was given half the training's time, and its "time left" counted
    # iRBM's 2.2 s as 7.8 (read 54)
    timed = costs[1] if len(costs) > 1 else {}
    total = sum(timed.values())
    trained_shares = ({m: t / total for m, t in timed.items()} if len(timed) > 1 and total > 0 else {})
    # an epoch of each depth DEEM chooses among, through the probes as the other parts: the depths train one after
    # another, a 2-layer epoch costing several 0-layer ones, and the time left taken at the pace of the first depths
    # ran short as the deeper ones came (walkthrough 116)
    depth_epoch: dict[int, Line] = {}
    if len(depth_costs) > 1 and len(depth_costs[1][1]) > 1:
        (big_n, at_big), (small_n, at_small) = depth_costs[1], depth_costs[-1]
        depth_epoch = {d: Line.through((small_n, at_small.get(d, 0.0)), (big_n, t)) for d, t in at_big.items()}
    if line:
        # the baselines' own line: read back through the probes, a flat one (a fixed cost) has no slope and was
        # taken for a cost in proportion to the tasks, none of it fixed
        base = line[0]
    return Estimate(kind="train", n_tasks=int(data.n_tasks), sample_tasks=big, setup=setup, per_epoch=per_epoch,
                    baselines=base, epochs=int(epochs), n_runs=int(n_seeds), probe_s=probe_s,
                    device=resolve_device(device).type, baseline_shares=dict(shares),
                    trained_shares=trained_shares, depth_epoch=depth_epoch)


def estimate_sweep(data: Any, lrs: Sequence[float] | None = None, epochs: int = 50, n_layers: int = 1,
                   n_seeds: int = 1, device: str = "auto", seed: int = 0, sample: int = PROBE_TASKS,
                   batch_size: int = 1024, sample_tasks: int | None = None) -> Estimate:
    """Time of a "sweep" job on ``data`` with ``batch_size`` (for a sweep on a task sample: its batch, then
    :meth:`Estimate.with_tasks` with the sample's size). ``sample_tasks``: the job's own task sample
    (:func:`~deem_core.methods.sweep.sweep_sample` with ``seed``), probed in place of the whole set: the whole set's
    widest task sent the probe down the dense path while the job's sample, without it, swept on the sparse one (330 s
    said of a 12 s sweep; attack round 69)."""
    from deem_core.methods.sweep import DEFAULT_LRS, run_sweep, sweep_sample  # noqa: PLC0415
    from deem_core.model.training import resolve_device  # noqa: PLC0415

    grid = list(lrs) if lrs else list(DEFAULT_LRS)
    if sample_tasks:
        data = sweep_sample(data, int(sample_tasks), int(seed))[0]

    def measure(probe: Any, stop: threading.Event) -> tuple[float, float]:
        clock = _EpochClock()
        started = time.perf_counter()
        try:
            run_sweep(probe, lrs=grid, epochs=PROBE_EPOCHS, n_layers=int(n_layers), n_seeds=int(n_seeds), seed=seed,
                      device=device, batch_size=batch[0], callbacks=[clock], stop_event=stop)
        except ValueError:  # (stopped at the probes' limit before one epoch: no curve to read; attack round 69)
            if stop.is_set():
                raise _too_slow() from None
            raise
        _stopped(clock, stop)
        return _split(started, time.perf_counter(), clock)

    batch = [int(batch_size)]  # the batch the probes time at (:func:`_probe_batch`)

    def size(probe: Any) -> None:
        batch[0] = _probe_batch(probe, [(int(n_layers), len(grid) * int(n_seeds), 0)], int(batch_size))

    (setup, per_epoch), big, probe_s = _probe(data, sample, seed, measure, size)
    return Estimate(kind="sweep", n_tasks=int(data.n_tasks), sample_tasks=big, setup=setup, per_epoch=per_epoch,
                    epochs=int(epochs), n_runs=len(grid) * int(n_seeds), probe_s=probe_s,
                    device=resolve_device(device).type)


#: probes queued or running at most (beyond, a page is told the server is busy and asks again at its next change)
MAX_PENDING_PROBES = 8
#: probes queued or running at most for one party (one workspace, or one browser's network address): eight tabs of
#: one visitor kept the queue full and every other visitor read "no time estimate" for 224 s (attack round 22). Two:
#: a Train and a Sweep page's estimate at once.
MAX_PROBES_PER_PARTY = 2
#: seconds of timing probes one party may have run in the last :data:`PROBE_WINDOW_SECONDS`: one visitor typing new
#: settings kept a probe running beside another user's job, which ran 2.3-3.0x slower (attack round 28). A page asks
#: once per settings; 120 s covers dozens of changes on mid-sized data
PROBE_SECONDS_PER_PARTY = 120.0
PROBE_WINDOW_SECONDS = 600.0


class BackgroundProbes:
    """Timing probes on a thread of their own, one at a time, so that no page waits on one: a Train click made while
    the page was timing its settings (7 s on 3,000 tasks under load) waited for the probe, and was lost when the user
    went to another page meanwhile (walkthrough 37). Sessions asking for the same probe (``key``) share it."""

    def __init__(self, max_pending: int | None = None, max_per_party: int | None = None,
                 seconds_per_party: float | None = None, window: float = PROBE_WINDOW_SECONDS) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deem-probe")
        self._lock = threading.Lock()
        self._futures: dict[Any, Future] = {}
        self._askers: dict[Any, int] = {}
        self._parties: dict[Any, Counter] = {}  # key -> the parties waiting for it (how many of their sessions)
        self._spent: dict[Any, list[tuple[float, float]]] = {}  # party -> (when a probe ended, its seconds)
        self.max_pending = MAX_PENDING_PROBES if max_pending is None else int(max_pending)
        self.max_per_party = MAX_PROBES_PER_PARTY if max_per_party is None else int(max_per_party)
        self.seconds_per_party = PROBE_SECONDS_PER_PARTY if seconds_per_party is None else float(seconds_per_party)
        self.window = float(window)

    def spent(self, party: Any) -> float:
        """Seconds of probes ``party`` waited for that ended in the last window (with the lock held)."""
        since = time.monotonic() - self.window
        kept = [(ended, seconds) for ended, seconds in self._spent.get(party, ()) if ended >= since]
        if kept:
            self._spent[party] = kept
        else:
            self._spent.pop(party, None)
        return sum(seconds for _, seconds in kept)

    def _refused(self, message: str) -> Future:
        refused: Future = Future()
        refused.set_exception(ProbeSkipped(f"{message}; the estimate is asked again at your next change", retry=True))
        return refused

    def ask(self, key: Any, work: Callable[[], Any], parties: Sequence[Any] = ()) -> Future:
        """The future of ``work()`` for ``key``: the one queued or running, else a new one; with ``max_pending``
        probes queued or running already, a future that holds ProbeSkipped (retry): 40 sessions queued 40 probes in
        30 s and left, and another visitor's estimate waited 243 s behind them (attack round 21). ``parties``: who
        asks (a workspace, a network address; empty ones are left out): a party waiting for ``max_per_party`` probes
        is refused a new one (attack round 22), and may still share one queued for another."""
        parties = [party for party in parties if party]
        with self._lock:
            future = self._futures.get(key)
            if future is None or future.cancelled():
                if len(self._futures) >= self.max_pending:
                    return self._refused(f"this server is timing {len(self._futures):,} other jobs right now")
                if any(self._waiting_for(party) >= self.max_per_party for party in parties):
                    return self._refused(f"you are timing {self.max_per_party} other settings on this server right "
                                         f"now (at most {self.max_per_party} at a time)")
                if any(self.spent(party) >= self.seconds_per_party for party in parties):
                    return self._refused(f"your estimates have used {self.seconds_per_party:.0f} s of this server's "
                                         f"time in the last {self.window / 60:.0f} minutes, the most one visitor may "
                                         f"use; training needs no estimate")
                future = self._pool.submit(self._run, key, work)
                self._futures[key] = future
                self._askers[key] = 0
                self._parties[key] = Counter()
            self._askers[key] = self._askers.get(key, 0) + 1
            self._parties.setdefault(key, Counter()).update(parties)
            return future

    def _waiting_for(self, party: Any) -> int:
        """Probes queued or running that ``party`` waits for (with the lock held)."""
        return sum(1 for key, waiting in self._parties.items() if waiting.get(party, 0) > 0 and key in self._futures)

    def withdraw(self, key: Any, parties: Sequence[Any] = ()) -> None:
        """One session (of ``parties``, as it asked) no longer waits for ``key`` (its settings changed): the probe is
        cancelled, if it has not begun, once no session waits for it (one session's change cancelled a probe other
        sessions shared, and sent them to the back of the queue)."""
        with self._lock:
            waiting = self._parties.get(key)
            if waiting is not None:
                waiting.subtract([party for party in parties if party])
                self._parties[key] = +waiting  # (counts that reach zero are dropped)
            left = self._askers.get(key, 0) - 1
            if left > 0:
                self._askers[key] = left
                return
            self._askers.pop(key, None)
            future = self._futures.get(key)
            if future is not None and future.cancel():
                self._futures.pop(key, None)
                self._parties.pop(key, None)

    def _run(self, key: Any, work: Callable[[], Any]) -> Any:
        started = time.monotonic()
        with self._lock:  # who waited when it began: a party that changed its settings meanwhile was charged
            # nothing (12 probes, 12.1 s, none counted; attack round 29)
            charged = set(self._parties.get(key) or ())
        try:
            return work()
        finally:
            with self._lock:
                ended = time.monotonic()
                for party in charged | set(self._parties.get(key) or ()):  # (each party that waited for it)
                    self._spent.setdefault(party, []).append((ended, ended - started))
                if len(self._spent) > 10_000:  # (the oldest parties first)
                    self._spent.pop(next(iter(self._spent)))
                self._futures.pop(key, None)
                self._askers.pop(key, None)
                self._parties.pop(key, None)

    def pending(self) -> int:
        """Probes queued or running."""
        with self._lock:
            return len(self._futures)
