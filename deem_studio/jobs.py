"""Background jobs: training, sweeps and baselines in plain threads, looked up by run id.

No Streamlit here. One process-wide :class:`JobManager` (see :func:`get_manager`) owns every job of the
process; a web page only keeps the run id (in its URL) and asks the manager for a
:class:`ProgressSnapshot` whenever it redraws, so a browser refresh, a second tab or another page finds
the job still running.

* A job reports through training callbacks into a thread-safe :class:`Progress` (steps done, the latest
  history rows, status, message); the UI reads immutable snapshots and never touches the worker.
* Cancel: a ``threading.Event`` handed to the trainer; the trainer stops at the next mini-batch and the
  job saves what exists (curves, the model so far, results of the finished methods), so a cancelled run
  is consistent and can be reopened like any other.
* Failure: any exception marks the run ``failed`` with a readable one-line message (the traceback goes to
  ``error.txt`` in the run folder, never to a page).
* Scheduling (decided for this project): each device has a FIFO queue with a fixed number of slots.
  **GPU: one job at a time per process** (two trainings on one GPU only fight for its memory).
  **CPU: one job at a time by default** too (``DEEM_MAX_CPU_JOBS`` to change): torch already uses every
  core for one training, so a second concurrent training only halves both and doubles the memory.
  A waiting job says so: "queued: N jobs ahead", and to its owner's sessions "queued behind your run <id>" (a run
  of its own workspace; an id opens its run, so it is never stored in the run's message nor shown to a visitor of
  the run's link: attack round 55). A sweep or a DEEM training is placed on the device
  it will train on; a training with only crowd-kit baselines runs on the CPU queue.
* Progress is told in phases (``Progress.start_phase``: "training DEEM", 100 epochs; "running the other
  methods", 2 methods; "sweeping learning rates", 50 epochs). :func:`status_line` is the one text of a job
  for the sidebar and its page: the phase, its step, the time elapsed and the time left (the phase's
  measured pace plus the launch estimate of the phases after it; before two steps, the launch estimate
  ``config["estimate"]`` from ``deem_studio.estimate`` minus the time elapsed).
* Every job is stored by :class:`deem_studio.runs.RunStore` as it goes (status, curves, results, model).
  At start-up the manager marks runs left ``queued``/``running`` by a dead process as ``failed``.
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import math
import os
import re
import shutil
import threading
import time
import traceback
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from deem_core.analysis.selection import dead_units_text, safety_rule_reference, safety_rule_sentence
from deem_core.data.annotations import AnnotationSet, DataError
from deem_core.data.formats.limits import describe_bytes
from deem_core.data.formats.sources import release_memory
from deem_core.data.text import counted
from deem_core.methods.base import defaults_of
from deem_core.methods.child import FitStopped
from deem_core.methods.choose import GUARD_STATES
from deem_core.analysis.selection import FOLLOWED
from deem_core.methods.deem import DEEM, FALLBACK_WARNINGS, SELECTION_DEPTHS, chooses_depth, training_rounds
from deem_core.methods.registry import METHODS, display_name, get_method
from deem_core.methods.sweep import (DEFAULT_LRS, SAMPLE_ABOVE, SAMPLE_TASKS, recorded_settings, run_sweep,
                                    sample_batch_size, sweep_sample)
from deem_core.model.sizes import MAX_CLASSES, check_problem_size
from deem_core.model.training import device_name
from deem_studio.diagnostics_state import load_diagnostics, save_diagnostics
from deem_studio.estimate import format_seconds
from deem_studio.owners import (max_active_per_client, max_active_per_workspace, max_client_bytes,
                                max_runs_per_client, max_runs_per_workspace, max_workspace_bytes, min_free_disk)
from deem_studio.settings import env_value
from deem_studio.uploads import CapacityError
from deem_studio.runs import ACTIVE_STATUSES, TERMINAL_STATUSES, RunNotFound, RunStore, default_runs_dir

__all__ = [
    "DEFAULT_MAX_TABLE_BYTES", "Job", "JobManager", "check_deem_classes", "check_deem_fits", "deem_refusal", "check_table_size", "max_table_bytes", "Progress", "ProgressSnapshot", "QueueFull", "SWEEP_DEFAULTS", "SWEEP_SAMPLE_ABOVE",
    "SWEEP_SAMPLE_TASKS", "TRAIN_DEFAULTS", "method_epochs", "train_epochs", "trained_methods", "sample_batch_size", "device_info", "get_manager", "load_diagnostics_result", "method_name",
    "readable_error", "register_kind", "status_line",
]

#: a train or sweep job's settings when the page leaves them out: the estimators' own defaults (their signatures);
#: a sweep's ``sample_tasks`` (absent/None = all tasks) sweeps a random sample of the tasks
TRAIN_DEFAULTS: dict[str, Any] = {"methods": ["deem"], **{
    key: value for key, value in defaults_of(DEEM).items()
    if key in ("n_layers", "epochs", "max_updates", "lr", "n_seeds", "seed", "init", "device", "batch_size",
               "supervised_weight", "ds_prior")}}
SWEEP_DEFAULTS: dict[str, Any] = {
    key: value for key, value in defaults_of(run_sweep).items()
    if key in ("lrs", "epochs", "n_layers", "n_seeds", "seed", "device")}
#: the settings a job of each kind gets when its config leaves them out
_KIND_DEFAULTS: dict[str, dict[str, Any]] = {"train": TRAIN_DEFAULTS, "sweep": SWEEP_DEFAULTS,
                                             "diagnostics": {"device": "cpu"}}
#: the Sweep page sweeps a random sample of SWEEP_SAMPLE_TASKS tasks by default above SWEEP_SAMPLE_ABOVE tasks, as
#: ``deem sweep`` does (the engine's bounds, deem_core.methods.sweep)
SWEEP_SAMPLE_ABOVE = SAMPLE_ABOVE
SWEEP_SAMPLE_TASKS = SAMPLE_TASKS
_HISTORY_KEEP = 20000  # history rows a progress object keeps in memory (the store keeps everything)


#: bytes of one (tasks x classes) float64 table a run of the dashboard may produce (every method's results hold
#: a probability per task and class; DEEM's posterior too): DEEM_MAX_TABLE_BYTES, default 512 MiB (64 M cells)
DEFAULT_MAX_TABLE_BYTES = 512 << 20


#: what one class costs a results table beyond its cells: a ``p_<class>`` column (its Parquet schema entry, pandas
#: metadata, a column chunk; the page's read of it). Measured: 60 tasks x 20,000 classes, majority vote: the job
#: +213 MB, the Results page's read +195 MB (~10.6 KB a class); counted by cells alone, 60 tasks x 300,000 classes
#: (144 MB of cells) took the job to 3.4 GB and its read past 3.5 GB (attack round 16)
RESULT_COLUMN_BYTES = 16 << 10


def max_table_bytes() -> int:
    return int(env_value("DEEM_MAX_TABLE_BYTES", DEFAULT_MAX_TABLE_BYTES))  # (now "1G" too)


#: the longest a job runs before it is stopped as a cancel would stop it, keeping what it made: one visitor's
#: job cannot hold a shared server's device slot for days (``DEEM_MAX_JOB_SECONDS``; 0 or less: no limit)
DEFAULT_MAX_JOB_SECONDS = 2 * 3600


def job_time_limit() -> float | None:
    """Seconds a job may run (``DEEM_MAX_JOB_SECONDS``, default 2 hours; the 1,000,000-task set's default run takes
    about 7 min of CPU here); None: no limit."""
    value = float(env_value("DEEM_MAX_JOB_SECONDS", DEFAULT_MAX_JOB_SECONDS))  # (nan, inf, -1: the default)
    return value if value > 0 else None


def time_limit_text(seconds: float) -> str:
    """How a job stopped by the time limit says so (its message starts with this)."""
    return f"stopped at this server's time limit of {format_seconds(seconds)} per job (DEEM_MAX_JOB_SECONDS)"


#: label-text columns a method's results make per task, counted against :func:`max_table_bytes`: the label and the
#: majority vote's, and the copies comparing and storing them. Measured (attack round 54): 20,000 tasks of two classes
#: named with 10,000 characters each (a 135 KB Parquet file, dictionary-encoded) took a job of three methods +2.0 GB
#: (200 MB a column of label text: about 3.4 columns a method), where the (tasks x classes) bound counted 0.3 MB
LABEL_TEXT_COLUMNS = 4


#: what the bytes a run is expected to store are, in a refusal's words
WHAT_A_RUN_STORES = ("a training: its copy of the answers, a table of tasks x classes for each method, each trained "
                     "model's file and curves; a sweep: its curves; diagnostics: their tables, report and saved state")
#: bytes a row of a training's curves takes, in its history file and in its model file together (rows of epochs x
#: model runs: 480,000 rows wrote 2.0 MB of history.parquet and 7.1 MB of model; attack round 60)
HISTORY_ROW_BYTES = 24
#: bytes a curve row takes in a running job's memory, at most: the engine's history (arrays), the recorder's table and
#: its merge, the model's table and the job's final table (``benchmarks/results/history_memory.txt``)
CURVE_ROW_MEMORY_BYTES = 1_100
#: bytes a row of a running job's live curves takes (a dict of its values and its row of their table), at most
#: :data:`_HISTORY_KEEP` of them
LIVE_ROW_MEMORY_BYTES = 4_000
#: bytes a training job's own work holds beside its model and curves (its thread, the store's writes of its tables):
#: a sweep of 3,840 rows peaked 2 MiB above the rest of the estimate (``benchmarks/results/history_memory.txt``)
JOB_WORK_BYTES = 16 << 20
#: the words of a sweep's verdict that call its rate a pick (taken out of a partial sweep's best row, which is none)
PICK_WORDS = re.compile(r"(, so a tentative pick|; the smallest learning rate that (learns|looks level, so a tentative "
                        r"pick|does))(?=;|$)")
#: bytes a sweep's run adds beyond its curves: its verdict in recommendation.json and its row of sweep_runs (96 runs
#: wrote 8.0 KB and 4.4 KB; 400 epochs of them 900 KB of curves, 23.4 bytes a row)
SWEEP_RUN_BYTES = 200
#: characters assumed for a worker's name in a diagnostics run's tables (their long names are bounded by the tables'
#: own caps: CONFUSION_MAX_CHARS, MI_MAX_NAME_CHARS, REPORT_MAX_CHARS)
NAME_CHARS_ASSUMED = 40


def expected_output_bytes(kind: str, config: Mapping[str, Any], data: AnnotationSet | None,
                          source: Mapping[str, Any] | None = None) -> int:
    """About the bytes a job's results store, before it is queued (held against the byte caps and the disk's floor
    while it is queued or running). A training: a results table for each method (a 0.74 MB upload of 20,000 tasks and
    1,000 classes stored 437 MB a training of four methods; attack round 59) and, for each trained method, its model
    file (each seed's weights: 16 seeds of 200 workers x 10 classes wrote 258 MB counted as 8 KB) and its curves (5,000
    epochs of 16 seeds wrote 9 MB counted as 900 bytes; attack round 60). A diagnostics run (``source``: the index
    row of the training it diagnoses): its tables, report and saved state (9.2 MB each at 400 workers, counted as none;
    attack round 60). A sweep: its curves, a row per rate, seed and epoch (24 rates x 16 seeds x 2,000 epochs, the
    Sweep page's bounds, 18 MB), and its verdicts and runs table (SWEEP_RUN_BYTES a run)."""
    if kind == "diagnostics" and source is not None:
        return _diagnostics_bytes(source)
    if kind == "sweep":
        return sweep_runs(config) * (max(0, int(config.get("epochs") or 0)) * HISTORY_ROW_BYTES + SWEEP_RUN_BYTES)
    if kind != "train" or data is None:
        return 0
    methods = config.get("methods") if isinstance(config.get("methods"), (list, tuple)) else TRAIN_DEFAULTS["methods"]
    methods = list(dict.fromkeys(str(m) for m in methods))
    # on disk: a probability per task and class (8 bytes each: they compress little; 109 MB a method measured there
    # for 160 MB counted) and a label a task (written once, dictionary-coded)
    longest = max((len(str(c).encode("utf-8", "surrogatepass")) for c in data.classes), default=0)
    tables = len(methods) * int(data.n_tasks) * (int(data.n_classes) * 8 + longest)
    trained = [m for m in methods if m in METHODS and get_method(m).trains]
    return tables + sum(_trained_bytes(m, config, data) for m in trained)


def sweep_runs(config: Mapping[str, Any]) -> int:
    """The runs a sweep's config trains together: its learning rates (the default grid without any) x its seeds."""
    lrs = config.get("lrs")
    return len(lrs if isinstance(lrs, (list, tuple)) and lrs else DEFAULT_LRS) * max(1, int(config.get("n_seeds") or 1))


def _trained_bytes(method: str, config: Mapping[str, Any], data: AnnotationSet) -> int:
    """A trained method's model file (every seed's weights, at the deepest depth it may keep, stored as the training
    stores them: every worker pair's block or only the pairs that answer a task together) and its curves."""
    from deem_core.model.sizes import estimate_training_bytes  # noqa: PLC0415

    cfg = {**TRAIN_DEFAULTS, **dict(config)}
    auto = cfg.get("n_layers") == "auto"
    layers = 0 if method != "deem" else max(SELECTION_DEPTHS) if auto else int(cfg.get("n_layers") or 0)
    seeds = max(1, int(cfg.get("n_seeds") or 1))
    counts = np.diff(data.task_offsets).astype(np.int64)
    weights = estimate_training_bytes(
        data.n_tasks, data.n_workers, data.n_classes, data.n_annotations, int(counts.max(initial=1)), n_layers=layers,
        n_runs=seeds, path="sparse", sum_squared_answers=int((counts * counts).sum()))["weights"]
    rounds = len(SELECTION_DEPTHS) if auto and method == "deem" else 1
    starts = 2 if str(cfg.get("init", "auto")) == "auto" else 1
    curves = train_epochs(cfg, data.n_tasks) * seeds * rounds * starts * HISTORY_ROW_BYTES
    return int(weights) + int(curves)


def _diagnostics_bytes(source: Mapping[str, Any]) -> int:
    """About the bytes a diagnostics run of the training ``source`` (its index row) writes: the mutual information's
    saved arrays (the workers it keeps, MI_MAX_BYTES), its all-pairs table, the confusion matrices' table, the worker
    and importance tables and report.html, each within its own cap."""
    from deem_core.analysis.diagnostics.mutual_information import MI_MAX_BYTES, MI_MAX_NAME_CHARS, MI_MAX_ROWS  # noqa: PLC0415
    from deem_core.plots.report import CONFUSION_MAX_CHARS, REPORT_MAX_CHARS  # noqa: PLC0415

    d, k = int(source.get("n_workers") or 0), int(source.get("n_classes") or 0)
    layers = (source.get("config") or {}).get("n_layers") if isinstance(source.get("config"), dict) else None
    outputs = (max(SELECTION_DEPTHS) if layers in (None, "auto") else int(layers)) + 1
    per_pair = 8 * ((outputs + 1) * k + 7 * k * k)
    kept = min(d, int(np.sqrt(MI_MAX_BYTES / max(per_pair, 1))))
    pairs = kept * kept
    # upper bounds, each within its cap: the saved arrays as raw floats (compressed, a sparse set's are far smaller:
    # 0.6 MB of 51 at 400 workers x 10 classes, where the whole run wrote 9.7 MB of the 127 counted), every pair
    # with a value in the all-pairs table, three confusion matrices a worker, the report's heatmaps a few characters
    # a cell; a worker's name NAME_CHARS_ASSUMED characters (long names: the caps)
    state = pairs * (outputs + 1) * k * 8
    name = NAME_CHARS_ASSUMED
    mi_table = min(MI_MAX_NAME_CHARS + MI_MAX_ROWS * 40, pairs * outputs * k * (40 + 2 * name))
    confusion = min(CONFUSION_MAX_CHARS, 3 * d * k * k * (40 + name))
    report = min(REPORT_MAX_CHARS, pairs * k * outputs * 2 + d * 400)
    return int(state + mi_table + confusion + report + d * 4 * (name + 80))


def check_table_size(data: AnnotationSet) -> None:
    """DataError before a job starts when its (tasks x classes) tables, or the text of its label columns, would be
    larger than :func:`max_table_bytes`.

    Found attacking main: a 3.8 MB CSV of 100,000 tasks and 2,000 classes, trained with majority vote and
    Dawid-Skene (the readers accept any number of classes; only DEEM stops at 1,000), took 5 GB for majority
    vote alone (its per-class shares, the results table, copies) inside the shared server."""
    size = int(data.n_tasks) * int(data.n_classes) * 8 + int(data.n_classes) * RESULT_COLUMN_BYTES
    if size > max_table_bytes():
        raise DataError(f"{data.source}: {data.n_tasks:,} tasks x {data.n_classes:,} classes: every method's results "
                        f"hold a probability per task and class, a column per class ({size / (1 << 30):.1f} GiB "
                        f"a table), more "
                        f"than this server allows ({max_table_bytes() / (1 << 20):,.0f} MiB, DEEM_MAX_TABLE_BYTES); "
                        f"merge rare classes or split the tasks")
    # every results table repeats a label's text per task (a long class name once a task, in several columns)
    longest = max((len(str(c).encode("utf-8", "surrogatepass")) for c in data.classes), default=0)
    text = int(data.n_tasks) * longest * LABEL_TEXT_COLUMNS
    if text > max_table_bytes():
        raise DataError(f"{data.source}: {data.n_tasks:,} tasks and class labels of up to {longest:,} bytes: every "
                        f"method's results repeat the label's text for each task, in several columns "
                        f"({text / (1 << 20):,.0f} MiB a table), more than this server allows "
                        f"({max_table_bytes() / (1 << 20):,.0f} MiB, DEEM_MAX_TABLE_BYTES); give the classes short "
                        f"names (codes) and keep the long texts apart, or split the tasks")


#: the methods that fit a (workers x classes x classes) confusion array: the Dawid-Skene family, and DEEM and the
#: iRBM (their Dawid-Skene start and the safety rule's reference)
CONFUSION_METHODS = frozenset({"deem", "irbm", "ds", "ds_shared", "cwds"})


def check_confusion_size(data: AnnotationSet, methods: Sequence[str]) -> None:
    """DataError before a job with one of :data:`CONFUSION_METHODS` is queued when one (workers x classes x classes)
    confusion array would be larger than :func:`max_table_bytes`: the (tasks x classes) bound let through 6,000 tasks
    x 4 workers x 8,000 classes (a CSV of a few hundred KB), and Dawid-Skene took the shared server +5.8 GB in 37 s
    (attack round 49; the engine's own check allows half the machine's memory to one fit)."""
    fitting = [m for m in dict.fromkeys(methods) if m in CONFUSION_METHODS]
    size = int(data.n_workers) * int(data.n_classes) ** 2 * 8
    if fitting and size > max_table_bytes():
        raise DataError(f"{data.source}: {data.n_workers:,} workers x {data.n_classes:,} classes: "
                        f"{', '.join(method_name(m) for m in fitting)} "
                        f"{'fits' if len(fitting) == 1 else 'fit'} a confusion matrix of every class against every "
                        f"class for each worker ({describe_bytes(size)} an array, held several times), more than "
                        f"this server allows ({describe_bytes(max_table_bytes())}, DEEM_MAX_TABLE_BYTES); merge "
                        f"rare classes, or use majority vote")


def check_deem_classes(data: AnnotationSet) -> None:
    """DataError before a job that trains DEEM (a sweep; a training with DEEM among its methods) is queued when
    the data have more classes than DEEM handles: the job would otherwise be queued and fail at once, leaving a
    failed run behind (seen in the browser: a sampled sweep of 3,000 classes 'failed in 0.01 s')."""
    if int(data.n_classes) > MAX_CLASSES:
        check_problem_size(data.n_workers, data.n_classes, source=data.source)  # raises, in the engine's words


#: the share of the machine's memory one training or sweep on the CPU may take by default (DEEM_MAX_JOB_MEMORY): the
#: engine's own bound is half of it, and with the server's other budgets (the data sets loaded, a quarter; uploads; a
#: read; the probes) half passed the machine: a 164 KB upload swept with 24 rates x 8 seeds, estimated at 11.1 GiB of
#: the 11.8 allowed, took the server past 5 GB in a minute and on (attack round 61)
JOB_MEMORY_SHARE = 0.4


def job_memory_bound() -> int:
    """Bytes one training or sweep on the CPU may take by the engine's estimate (``DEEM_MAX_JOB_MEMORY``)."""
    from deem_core.model.sizes import _memory_bytes  # noqa: PLC0415

    return int(env_value("DEEM_MAX_JOB_MEMORY", int(JOB_MEMORY_SHARE * _memory_bytes())))


def job_trainings(kind: str, config: Mapping[str, Any], data: AnnotationSet) -> list[tuple]:
    """The trainings a job on the CPU may run, each as ``(answers, layers, runs, batch, runs' worth of weights kept
    beside)``: a sweep's (on its task sample), a train job's per trained method, both its batched candidates and one
    configuration under the collapse guard (whose start and healthy states stay beside it); none for a job on a GPU
    (checked against its device when it starts) or of another kind."""
    from deem_core.model.training import resolve_device  # noqa: PLC0415

    cfg = {**_KIND_DEFAULTS.get(kind, {}), **dict(config)}
    device = _train_device(cfg) if kind == "train" else str(cfg.get("device", "auto"))
    try:
        if resolve_device(device).type != "cpu":
            return []
    except ValueError:  # (a GPU asked for and missing: the job fails with that message when it starts)
        return []
    seeds = max(1, int(cfg.get("n_seeds") or 1))
    if kind == "sweep":
        swept, batch = sweep_sample(data, cfg.get("sample_tasks"), int(cfg.get("seed", 0)), cfg.get("batch_size"))
        return [(swept, int(cfg.get("n_layers") or 0), sweep_runs(cfg), batch, 0)]
    if kind != "train":
        return []
    auto = cfg.get("n_layers") == "auto"
    starts = 2 if str(cfg.get("init", "auto")) == "auto" else 1
    batch = int(cfg.get("batch_size") or TRAIN_DEFAULTS["batch_size"])
    trainings = []
    for m in trained_methods(cfg):
        fixed = 0 if m != "deem" else 1 if auto else int(cfg.get("n_layers") or 0)
        trainings += [(data, max(SELECTION_DEPTHS) if auto and m == "deem" else fixed,
                       seeds * (starts if m == "deem" else 1), batch, 0),
                      (data, fixed, seeds, batch, GUARD_STATES * seeds)]
    return trainings


def job_curve_rows(kind: str, config: Mapping[str, Any], data: AnnotationSet) -> int:
    """The curve rows (one a model run and epoch) a sweep or train job holds at most: a sweep's runs x its epochs; a
    train job's, per trained method, its seeds x (its starts trained together x the epochs of every depth it tries,
    and a configuration under the collapse guard trained again)."""
    cfg = {**_KIND_DEFAULTS.get(kind, {}), **dict(config)}
    if kind == "sweep":
        return sweep_runs(cfg) * max(1, int(cfg.get("epochs") or 1))
    if kind != "train":
        return 0
    seeds = max(1, int(cfg.get("n_seeds") or 1))
    starts = 2 if str(cfg.get("init", "auto")) == "auto" else 1
    epochs = train_epochs(cfg, data.n_tasks)
    # every depth tried logs its rows, one after another or together (on a GPU the depths train in one round: its
    # epochs are one round's, its rows three depths'; attack round 71)
    depths = {m: len(SELECTION_DEPTHS) if "n_layers" not in METHODS[m].fixed and chooses_depth(
        cfg.get("n_layers", TRAIN_DEFAULTS["n_layers"]), False, cfg.get("lr", TRAIN_DEFAULTS["lr"])) else 1
              for m in trained_methods(cfg)}
    return sum(seeds * (starts * epochs * depths[m] + epochs) for m in trained_methods(cfg))


def job_curves_bytes(kind: str, config: Mapping[str, Any], data: AnnotationSet) -> int:
    """The bytes a job's curves take in memory at most (:func:`job_curve_rows`): :data:`CURVE_ROW_MEMORY_BYTES` a row,
    its live progress's :data:`_HISTORY_KEEP` rows at :data:`LIVE_ROW_MEMORY_BYTES` and :data:`JOB_WORK_BYTES` (0 for
    a job of no curves)."""
    rows = job_curve_rows(kind, config, data)
    return (rows * CURVE_ROW_MEMORY_BYTES + min(rows, _HISTORY_KEEP) * LIVE_ROW_MEMORY_BYTES
            + (JOB_WORK_BYTES if rows else 0))


def job_memory_estimate(kind: str, config: Mapping[str, Any], data: AnnotationSet) -> int | None:
    """The bytes :func:`check_job_memory` holds a CPU job to: the largest of :func:`job_trainings`' engine estimates
    and its curves (:func:`job_curves_bytes`); None where it checks none (``benchmarks/job_memory.py`` and
    ``benchmarks/history_memory.py`` set it beside the measured peaks)."""
    from deem_core.model.engine import check_training_size  # noqa: PLC0415
    from deem_core.model.training import TrainingConfig  # noqa: PLC0415

    trainings = job_trainings(kind, config, data)
    if not trainings:
        return None
    return max(check_training_size(answers, TrainingConfig(n_layers=layers, batch_size=int(batch)), runs,
                                   memory_bytes=1 << 62, kept_runs=kept)
               for answers, layers, runs, batch, kept in trainings) + job_curves_bytes(kind, config, data)


def check_job_memory(kind: str, config: Mapping[str, Any], data: AnnotationSet) -> None:
    """DataError before a training or sweep on the CPU is queued when its model would take more than
    :func:`job_memory_bound` by the engine's estimate (a GPU's job is checked against its device when it starts)."""
    from deem_core.model.engine import check_training_size  # noqa: PLC0415
    from deem_core.model.training import TrainingConfig  # noqa: PLC0415

    cfg = {**_KIND_DEFAULTS.get(kind, {}), **dict(config)}
    trainings = job_trainings(kind, config, data)
    bound = job_memory_bound()
    # the curves beside the model: a row a run and epoch (a sweep of 24 rates x 8 seeds x 2,000 epochs was admitted at
    # 44 MiB and held +560 MiB of them; attack round 70), held in the server's memory whatever the device trains (a
    # GPU's job's were not checked; attack round 71)
    curves = job_curves_bytes(kind, config, data)
    if curves >= bound:
        rows = job_curve_rows(kind, config, data)
        fewer = "fewer learning rates, seeds or epochs" if kind == "sweep" else (
            "fewer epochs or seeds" + (", or one start in “Start from”" if str(cfg.get("init", "auto")) == "auto"
                                        else "") + (", or the layers fixed rather than chosen"
                                                    if cfg.get("n_layers") == "auto" else ""))
        raise DataError(f"its curves, {rows:,} rows (a row a model run and epoch), would take about "
                        f"{describe_bytes(curves)} while the job runs (this server lets one job take "
                        f"{describe_bytes(bound)}: DEEM_MAX_JOB_MEMORY); try {fewer}")
    beside = f"beside its curves' {describe_bytes(curves)}; " if curves >= bound // 10 else ""
    for answers, layers, runs, batch, kept in trainings:
        try:
            check_training_size(answers, TrainingConfig(n_layers=layers, batch_size=int(batch)), runs,
                                memory_bytes=bound - curves, kept_runs=kept)
        except DataError as exc:
            # the advice in the pages' words: the engine's names command-line options, a sample of the tasks and a
            # batch the Train page has no field for, and "a GPU" where the bound is this server's (walkthrough 130)
            head = str(exc).split("; try ", 1)[0]
            advice = job_memory_advice(kind, cfg, layers, runs)
            if kind == "train" and config.get("batch_size") is None:
                try:  # (the Train page fits the batch before it launches: :func:`fitted_batch`)
                    check_training_size(answers, TrainingConfig(n_layers=layers, batch_size=MIN_FITTED_BATCH), runs,
                                        memory_bytes=bound - curves, kept_runs=kept)
                    advice += " (a smaller batch fits: the Train page takes the largest that does)"
                except DataError:
                    advice += f" (no batch from {int(TRAIN_DEFAULTS['batch_size']):,} down to {MIN_FITTED_BATCH} fits)"
            raise DataError(f"{head} ({beside}this server lets one job take {describe_bytes(bound)}: DEEM_MAX_JOB_MEMORY); "
                            f"try {advice}") from None


def job_memory_advice(kind: str, cfg: Mapping[str, Any], layers: int, runs: int) -> str:
    """What a refused job's settings on the pages can change, in their words."""
    advice = []
    if kind == "sweep":
        if layers:
            advice.append("fewer layers (0: the iRBM alone)")
        advice += ["fewer learning rates or seeds", "a sample of the tasks (“Sweep a task sample”)"]
        return ", or ".join(advice)
    if cfg.get("n_layers") == "auto":
        advice.append("the layers fixed rather than chosen (“Choose the layers” off)")
    if layers:
        advice.append("Layers (DEEM) 0 (the iRBM alone, without the worker-pair weights)")
    if str(cfg.get("init", "auto")) == "auto" and runs > 1:
        advice.append("one start in “Start from” (the two starts train together)")
    if int(cfg.get("n_seeds") or 1) > 1:
        advice.append("fewer seeds")
    advice.append("fewer tasks or classes in the file")
    return ", or ".join(advice)


#: the smallest batch a dashboard training is given to fit this server's bound for one job (:func:`fitted_batch`)
MIN_FITTED_BATCH = 16


def fitted_batch(config: Mapping[str, Any], data: AnnotationSet) -> int | None:
    """For a train job on the CPU that :func:`check_job_memory` refuses at its batch: the largest batch, halving down to
    :data:`MIN_FITTED_BATCH`, at which it fits; None when it fits as it is, or at none of them (then the refusal says
    why). The Train page has no batch field, and a many-class set refused at 1,024 ("a smaller batch (now 1,024)")
    left its user no way on (walkthrough 129)."""
    try:
        check_job_memory("train", config, data)
        return None
    except DataError:
        pass
    batch = int(config.get("batch_size") or TRAIN_DEFAULTS["batch_size"])
    while batch > MIN_FITTED_BATCH:
        batch = max(MIN_FITTED_BATCH, batch // 2)
        try:
            check_job_memory("train", {**dict(config), "batch_size": batch}, data)
            return batch
        except DataError:
            continue
    return None


def check_deem_fits(data: AnnotationSet) -> None:
    """DataError when DEEM cannot be trained on ``data`` (too many classes, or its Dawid-Skene start's confusion
    arrays past the server's table bound): what a sweep's launch checks."""
    check_deem_classes(data)
    check_confusion_size(data, ["deem"])


def deem_refusal(data: AnnotationSet) -> str | None:
    """Why DEEM cannot be trained on ``data`` (the sentence a sweep's or a training's launch would refuse with), or
    None: the Sweep page said so only after "Launch sweep", and timed a probe of a sweep that could not run first."""
    try:
        check_deem_fits(data)
    except DataError as exc:
        return str(exc)
    return None


def check_methods_fit(data: AnnotationSet, methods: Sequence[str]) -> None:
    """DataError before a training is queued with a method that cannot run on these data (KOS on more than two
    classes ran after the others and failed at the end, inside a "finished" box; walkthrough, tenth session).
    A trained method (DEEM, the iRBM alone) on more classes than DEEM handles is one: the iRBM alone was queued on
    8,000 classes and failed there, and the Train page offered DEEM, ticked, where Train could only refuse it."""
    from deem_core.methods.registry import make_aggregator  # noqa: PLC0415

    if any(m in METHODS and get_method(m).trains for m in methods):
        check_deem_classes(data)
    check_confusion_size(data, methods)
    binary = [m for m in methods if m in METHODS and get_method(m).binary_only]
    if binary and int(data.n_classes) > 2:
        raise DataError(f"{', '.join(method_name(m) for m in binary)} works on two classes only; these data have "
                        f"{int(data.n_classes):,} classes: leave {'it' if len(binary) == 1 else 'them'} out")
    for method in methods:  # each method's own size check (M-MSR on 350 workers went past 3 GB; attack round 12)
        if method in METHODS and not get_method(method).trains:
            check = getattr(make_aggregator(method), "check_size", None)
            if check is not None:
                check(data)


class QueueFull(RuntimeError):
    """Too many jobs are waiting; the message says how many."""


class JobCancelled(Exception):
    """Raised inside a job when it notices the cancel request between steps."""


#: a quoted absolute path, spaces and all ('/tmp/my run store/x/annotations.parquet' kept "my run store"; attack
#: round 12): its last part stays
_QUOTED_PATH = re.compile(r"'(?:/|[A-Za-z]:[\\/])[^']*[\\/]([^'\\/]*)'")
#: a path of two or more parts in a library's message: the server's folders, which web users never see
_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[\\/][^\\/\s'\"]+)+[\\/]([^\\/\s'\"]+)")


def readable_error(exc: BaseException) -> str:
    """One line for the user: the message of data/parameter problems as is, the type name otherwise; a library's
    message keeps only the last part of a path it names (pyarrow's "Could not open Parquet input source
    '/srv/runs/<hash>/<run>/annotations.parquet'" showed the run store to a link's visitor; attack round 11)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, (DataError, CapacityError, QueueFull)):
        return text
    text = _PATH.sub(r"\1", _QUOTED_PATH.sub(r"'\1'", text))
    if isinstance(exc, ValueError) and text:
        return text
    name = type(exc).__name__
    if "out of memory" in text.lower():
        return f"the GPU ran out of memory ({text[:200]}); try fewer seeds, a smaller batch or the CPU"
    return f"{name}: {text[:300]}" if text else name


# --------------------------------------------------------------------------- progress
@dataclass(frozen=True)
class ProgressSnapshot:
    """An immutable view of a job's progress, safe to read from any thread."""

    run_id: str
    kind: str
    status: str  # queued, running, finished, cancelled, failed
    message: str = ""
    phase: str = ""
    steps_done: int = 0
    steps_total: int = 0
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    queued_behind: str | None = None
    device: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    first_point_at: float | None = None
    messages: tuple[str, ...] = ()
    live: bool = True  # False when read back from the store (the job is not in this process's memory)
    estimate_s: float | None = None  # the time estimated before launch (``deem_studio.estimate``)
    phase_done: int = 0  # steps done in the current phase (e.g. epochs of the DEEM model being trained)
    phase_total: int = 0
    unit: str = "step"  # what a step of the current phase is ("epoch", "baseline", "task", "step")
    rate_s: float | None = None  # measured seconds per step of the current phase (after its second step)
    then_s: float = 0.0  # estimated seconds of the phases after the current one
    then_untimed: int = 0  # methods after the current phase with no estimate of their time (not in ``eta``)
    step_age: float = 0.0  # seconds since the current phase's last step ended (or since it began), at the snapshot
    plan_s: tuple[float, ...] = ()  # the estimated seconds of each step of the current phase (the baselines')
    #: measured seconds a step of the current stretch of the plan (steps of one planned cost: a depth of DEEM choosing
    #: its depth), and its steps measured (from its first step's end); None before UNIFORM_MIN_STEPS of them
    stretch_pace_s: float | None = None
    stretch_counted: int = 0
    stretch_scale_before: float | None = None  # the last stretch's measured pace over its plan (None before one ended)
    stretch_plan_s: float = 0.0  # the plan's seconds of a step of the stretch measured
    own_left_s: float = 0.0  # the phase's own work before its steps still to do (a choice of depths: its start)
    weigh: bool = False  # the plan's time left weighed against the launch estimate (a choice of depths)
    phase_age: float = 0.0  # seconds since the current phase began, at the snapshot
    plan_from: int = 0  # steps of the current phase done before it began (not in ``phase_age``)
    cancelling: bool = False  # cancel was asked while it ran: it is finishing with what it has
    time_limited: bool = False  # the cancel came from the server's time limit, not from the user
    #: queued: seconds before it may start by the estimates of the jobs ahead (running: their time left), None when
    #: one of them has none (:meth:`JobManager.expected_wait`)
    wait_s: float | None = None
    uniform: bool = False  # every step of the current phase costs the same (one fixed depth): its pace is trusted early
    phase_plan_s: float | None = None  # the launch estimate's seconds for the whole current phase, if it has one

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def fraction(self) -> float:
        if self.steps_total <= 0:
            return 1.0 if self.done else 0.0
        return min(1.0, self.steps_done / self.steps_total)

    @property
    def seconds_to_first_point(self) -> float | None:
        """From the launch (submit) to the first curve point."""
        return None if self.first_point_at is None else self.first_point_at - self.created_at

    @property
    def elapsed(self) -> float:
        if self.started_at is None:
            return 0.0
        return (self.finished_at or time.time()) - self.started_at

    @property
    def eta(self) -> float | None:
        """Seconds left: the current phase at its measured pace (once it has one) plus the estimate of the phases
        after it, weighed against the launch estimate minus the time elapsed by the share of the job still to do
        (early on a pace measured over a few cheap steps misleads: choosing the depth trains 0 layers first, and a
        walkthrough saw "about 50 s left" with 84 s to go, where the launch estimate was right); the launch estimate
        alone before a pace is measured. None when unknown."""
        if self.done or self.status != "running" or self.cancelling:
            return None
        planned = None if self.estimate_s is None else max(0.0, self.estimate_s - self.elapsed)
        if self.plan_s and len(self.plan_s) == self.phase_total and self.phase_done < self.phase_total:
            measured = self._planned_steps_left()
            if not self.weigh or planned is None:
                return measured
            # a choice of depths: its plan's shape rests on a few timed epochs of each depth, its total on all of
            # them: weighed against the launch estimate by the share done, as a pace is (the plan alone was 22 s off
            # on average where the blend of the pace was 8; benchmarks/results/eta.txt)
            return self._blend(measured, planned)
        if self.rate_s is not None and self.phase_total > 0:
            left = self.phase_total - self.phase_done
            counted = self.phase_done - self.plan_from
            # the time already spent in the step under way counts (without it, with no launch estimate, "about
            # 8.0 s left" stood still for a whole step)
            current = max(0.0, left * self.rate_s - min(self.step_age, self.rate_s) * (left > 0))
            if self.uniform and counted >= max(UNIFORM_MIN_STEPS, UNIFORM_TRUSTED_SHARE * self.phase_total):
                # steps of one cost (a fixed depth): the pace measured is the one to come, and the phases after it are
                # scaled as this one compares with its estimate (a training estimated at 41 s said "about 35 s left"
                # halfway with 14 s to go, and "about 20 s left" 4 s from its end; walkthrough 115)
                return current + self.then_s * self._pace_scale(counted)
            if left > 0 and self.step_age > 2.0 * self.rate_s + 1.0:
                # the step under way has taken far longer than the phase's pace (GLAD after majority vote's 0.01 s:
                # "about 0.1 s left" stood for 22 s; walkthrough 19): that pace says nothing of the time left
                return planned or None
            measured = current + max(0.0, self.then_s)
            if planned is None:
                return measured
            return self._blend(measured, planned)
        return planned

    @property
    def overdue_s(self) -> float | None:
        """The estimated seconds of the step under way where it has run past them by more than a second and a half
        (a method of the baselines, each timed apart: GLAD estimated at 5 s ran 27, and the time left of the methods
        after it, "about 4.2 s left", stood for 18 s as if GLAD were done; walkthrough 117); None otherwise."""
        if (self.done or self.status != "running" or self.weigh or not self.plan_s
                or len(self.plan_s) != self.phase_total or not 0 <= self.phase_done < self.phase_total):
            return None
        planned = self.plan_s[self.phase_done]
        scaled = planned * self._done_scale()  # (as the time left reads it: a slow machine's steps are not overdue)
        return planned if self.step_age > max(1.5 * scaled, scaled + 1.5) else None

    @property
    def after_overdue_s(self) -> float:
        """The estimated seconds of what follows a step past its estimate (:attr:`overdue_s`): 0 after the last."""
        return self._after(self._done_scale(), self.phase_done + 1) if self.overdue_s is not None else 0.0

    def _blend(self, measured: float, planned: float) -> float:
        """The time left measured, weighed against the launch estimate's by the share of the job done."""
        done = self.fraction
        if measured > planned and done >= SLOWER_TRUSTED_AFTER:
            # slower than the launch estimate (the machine got busier): the pace seen now is the one to come; the
            # blend said "about 8.6 s left" with 21 s to go on a loaded machine (walkthrough 108). Faster than the
            # estimate early on is the cheap first depths of a choice, and still weighed against it
            return measured
        return done * measured + (1.0 - done) * planned


    def _pace_scale(self, counted: int) -> float:
        """How the current phase's time so far compares with its share of its estimate (1 without one, or before a
        second of it), within :data:`PACE_SCALE_BOUNDS`."""
        if not self.phase_plan_s or not self.phase_total:
            return 1.0
        expected = self.phase_plan_s * counted / self.phase_total
        if expected < 1.0 or self.phase_age <= 0:
            return 1.0
        low, high = PACE_SCALE_BOUNDS
        return min(high, max(low, (self.phase_age - self.step_age) / expected))

    def _planned_steps_left(self) -> float:
        """The time left of a phase whose steps were each estimated (``plan_s``: methods differ a hundredfold, and
        the pace of those done said "about 1.8 s left" with GLAD's 28 s to come; walkthrough 105): the steps to run
        by their estimates, scaled by how the steps done compared with theirs (once those add up to a second: a few
        milliseconds' methods measure overheads, not the scale), the one under way less its time so far, then the
        phases after."""
        done = self.phase_done
        here = self.plan_s[done]
        end = done  # (the current stretch: steps of the plan's cost of the step under way)
        while end < len(self.plan_s) and self.plan_s[end] == here:
            end += 1
        if (self.stretch_pace_s is not None and self.stretch_plan_s > 0
                and self.stretch_counted >= UNIFORM_TRUSTED_SHARE * (end - done + self.stretch_counted)):
            # a stretch of steps of one cost (a depth of DEEM choosing its depth): its measured pace for its own steps
            # to come, and the stretches after it scaled as it compares with its plan (the pace of the cumulative
            # steps, the cheaper depths', ran short as the deeper ones came; walkthrough 116); the stretch measured
            # may be the one before, the next one's first step under way
            scale = self.stretch_pace_s / self.stretch_plan_s
        else:
            # the step under way alone at the scale of the last stretch (one just begun: not the whole phase's steps
            # with its start's work in them, "about 45 s left" for 32 s as the second depth began), else of the steps
            # done
            scale = self.stretch_scale_before if self.stretch_scale_before is not None else self._done_scale()
            end = done + 1
        step = here * scale
        return max(0.0, (end - done) * step - min(self.step_age, step)) + self._after(scale, end)

    def _done_scale(self) -> float:
        """How the steps done compared with their estimates (1 before they add up to a second)."""
        done = self.phase_done
        planned_done = sum(self.plan_s[self.plan_from:done])
        spent = max(0.0, self.phase_age - self.step_age)  # (the steps done took this)
        return spent / planned_done if done and planned_done >= 1.0 and spent > 0 else 1.0

    def _after(self, scale: float, end: int) -> float:
        """The estimated seconds of the phase's steps from ``end`` on, its own work left and the phases after it."""
        return scale * sum(self.plan_s[end:]) + self.own_left_s + self._then(scale)

    def _then(self, scale: float) -> float:
        """The phases after this one, scaled as this one ran against its plan where the plan is weighed (a choice of
        depths: the baselines after it on a machine that got busier took 34 s for the 8 s planned, and the time left
        said 17 s with 60 s to go; walkthrough 118), within :data:`PACE_SCALE_BOUNDS`."""
        if not self.weigh:
            return self.then_s
        low, high = PACE_SCALE_BOUNDS
        return self.then_s * min(high, max(low, scale))


#: the share of a job done after which a pace slower than its launch estimate is taken alone for the time left
SLOWER_TRUSTED_AFTER = 0.1
#: a phase of steps of one cost trusts its measured pace alone after this share of its steps (and at least
#: UNIFORM_MIN_STEPS of them)
UNIFORM_TRUSTED_SHARE = 0.05
UNIFORM_MIN_STEPS = 5
#: the most a phase's pace against its estimate scales the estimates of the phases after it, each way
PACE_SCALE_BOUNDS = (0.25, 4.0)


#: how far past its launch estimate a job's line says so beside its pace's time left (within a tenth: noise)
OVERRUN_SAID = 1.1


def status_line(snap: ProgressSnapshot | None, short: bool = False, owner: bool = False) -> str:
    """The one status text of a job, shown alike in the sidebar and on its page.

    ``running`` lines say the phase, the step of the phase, the time elapsed and the time left, e.g.
    ``training DEEM · epoch 16 of 100 · 12 s elapsed · about 1 min 05 s left``; ``short`` leaves the
    elapsed time out (sidebar). ``owner``: the session viewing owns the run: a queued run names the run of its
    workspace it waits behind ("queued behind your run <id>"), which a visitor of its link is never shown."""
    if snap is None:
        return "not found"
    if snap.status == "queued":
        text = snap.message or "queued"
        prefix = "queued: "
        if owner and snap.queued_behind and text.startswith(prefix):
            text = f"queued behind your run {snap.queued_behind} ({text[len(prefix):]})"
        if snap.wait_s is not None and snap.wait_s >= 1.0 and "ahead" in text:
            # (a 6 s job read "queued: 1 job ahead on the CPU" for the 2 hours of another visitor's training, with
            # no time given; attack round 43)
            text += f" · about {format_seconds(snap.wait_s)} before it starts, by the estimates of the jobs ahead"
        return text
    if snap.status == "running" and snap.cancelling:
        # after a cancel the job still scores and stores what it trained (large data: minutes); say so
        what = "stopping at the server's time limit" if snap.time_limited else "cancelling"
        return f"{what}: keeping what was trained so far" + ("" if short else
                                                            f" · {format_seconds(snap.elapsed)} elapsed")
    if snap.status == "running":
        bits = [snap.phase or "starting"]
        if snap.phase_total > 1:
            # a baseline is counted as it runs ("running GLAD · baseline 3 of 4"); an epoch as it ends (it read
            # "method 2 of 4" while the third ran; walkthrough 20). "baseline", not "method": "method 3 of 3" in a
            # training of four methods with DEEM (walkthrough 34)
            shown = min(snap.phase_done + 1, snap.phase_total) if snap.unit == "baseline" else snap.phase_done
            bits.append(f"{snap.unit} {shown:,} of {snap.phase_total:,}")
        if not short:
            bits.append(f"{format_seconds(snap.elapsed)} elapsed")
        eta = snap.eta
        overdue = snap.overdue_s
        if overdue is not None:
            # the method under way past its own estimate: said, and the time of those after it said as theirs (none
            # after the last: "then about 6.2 s for the rest" stood there, the one under way's own; walkthrough 118)
            after = snap.after_overdue_s
            bits.append(f"this {snap.unit} past its estimate of {format_seconds(overdue)}"
                        + (f", then about {format_seconds(after)} for what follows it" if after >= 0.05 else ""))
        elif eta is not None and eta >= 0.05 and snap.then_untimed:
            # the launch had no estimate: the pace covers this phase only ("epoch 56 of 60 · about 0.8 s left" with
            # 50 s of other methods to go; walkthrough 41)
            # (the methods' own line's words: "not timed" stood here beside "no time estimate" once they ran; walk 132)
            bits.append(f"about {format_seconds(eta)} left in this phase, then {snap.then_untimed:,} more "
                        f"method{'s' if snap.then_untimed != 1 else ''} with no time estimate (none was made before "
                        f"launch)")
        elif snap.unit == "baseline" and snap.estimate_s is None and snap.phase_done < snap.phase_total:
            # no launch estimate: no figure from the pace of the methods done, for methods differ a hundredfold
            # ("about 1.0 s left" with GLAD, MACE and Zero-based skill's 20 s to come, walkthrough 42; "about 1.5 s
            # left if the methods to come take as long as those done" as GLAD began its 2.5 minutes, walkthrough 126):
            # the methods still to run are counted
            # (in words: "not timed: the last method" read as cryptic beside 2 minutes of GLAD; walkthrough 131)
            after = snap.phase_total - snap.phase_done - 1
            bits.append("no time estimate (none was made before launch): "
                        + (f"{after:,} more method{'s' if after != 1 else ''} after this one" if after
                           else "this is the last method"))
        elif eta is not None and eta >= 0.05:
            bits.append(f"about {format_seconds(eta)} left")
        elif eta is not None and snap.phase_total and snap.phase_done >= snap.phase_total:
            bits.append("finishing")  # (its steps done, still running: scoring and saving; "about 0.0 s left" stood)
        elif snap.estimate_s is not None and snap.elapsed > snap.estimate_s:
            # the launch estimate used up with a step still running: said, not a blank (GLAD ran 11 s past "about
            # 4.9 s left" with no word of time; walkthrough 37)
            bits.append(f"longer than the {format_seconds(snap.estimate_s)} estimated")
        # (else a launch estimate used up with steps still to run: no figure; "finishing" showed as GLAD began;
        # walkthrough 21)
        if (not short and snap.estimate_s is not None and snap.elapsed > snap.estimate_s * OVERRUN_SAID
                and not bits[-1].startswith("longer than")):
            # its pace counts down the rest, and the launch estimate is past: said (a sweep estimated at 39 s counted
            # "about 0.6 s left" at 53 s without a word of it; walkthrough 67)
            # (in the words of the line above: "past the 22 s estimated" beside "longer than the 4.8 s estimated"
            # read as two things; walkthrough 102)
            bits.append(f"longer than the {format_seconds(snap.estimate_s)} estimated")
        return " · ".join(bits)
    took = f" in {format_seconds(snap.elapsed)}" if snap.started_at and snap.finished_at else ""
    return f"{snap.status}{took}" + (f": {snap.message}" if snap.message and not short else "")


class Progress:
    """Thread-safe progress of one job, written by the worker, read as snapshots by the UI."""

    def __init__(self, run_id: str, kind: str, steps_total: int = 0):
        self._lock = threading.Lock()
        self._rows: deque[dict[str, Any]] = deque(maxlen=_HISTORY_KEEP)
        self._version = 0
        self._cache: tuple[int, pd.DataFrame] | None = None
        self.run_id, self.kind = run_id, kind
        self.status, self.message, self.phase = "queued", "", ""
        self.cancelling = self.time_limited = False
        self.steps_done, self.steps_total = 0, int(steps_total)
        self.queued_behind: str | None = None
        self.device: str | None = None
        self.created_at = time.time()
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.first_point_at: float | None = None
        self.messages: list[str] = []
        self.estimate_s: float | None = None
        self.phase_done, self.phase_total, self.unit = 0, 0, "step"
        self.then_s = 0.0
        self.then_untimed = 0
        self.plan: tuple[float, ...] = ()
        self.uniform, self.phase_plan_s = False, None
        self._phase_offset = 0  # steps of the current phase done before it began (its first run of baselines)
        self._phase_first: float | None = None  # time of the current phase's first step
        self._phase_last: float | None = None
        self._phase_began: float | None = None
        self._stretch_mark: tuple[float, int] | None = None  # (time, steps done) at the current stretch's first step end
        self._scale_before: float | None = None
        self._own_s = 0.0
        self._weigh = False
        self.rows_released = False  # (the job has ended and its curves are read from the store: release_rows)

    def start_phase(self, phase: str, total: int, unit: str = "epoch", then_s: float = 0.0,
                    then_untimed: int = 0, plan: Sequence[float] = (), done: int = 0, uniform: bool = False,
                    plan_s: float | None = None, own_s: float = 0.0, weigh: bool = False) -> None:
        """A new phase (e.g. "training DEEM", 100 epochs); ``then_s``: estimated seconds of what follows;
        ``then_untimed``: methods that follow with no estimate (the time left then covers this phase only);
        ``plan``: the estimated seconds of each of its steps, where they differ (the baselines); ``done``: its steps
        done before (the baselines run before a training between them); ``uniform``: its steps cost the same (a
        training of one fixed depth); ``plan_s``: its own estimated seconds; ``own_s``: those of its work outside its
        steps (a start before them), counted down by the time before its first step; ``weigh``: the time left its
        ``plan`` gives is weighed against the launch estimate by the share done (a plan whose shape rests on a few
        timed epochs: a choice of depths)."""
        with self._lock:
            self.uniform, self.phase_plan_s = bool(uniform), None if plan_s is None else float(plan_s)
            self.phase, self.phase_done, self.phase_total, self.unit = phase, int(done), int(total), unit
            self._phase_offset = int(done)
            self.then_s, self.then_untimed = float(then_s), int(then_untimed)
            self.plan = tuple(float(t) for t in plan) if len(plan) == int(total) else ()
            self._phase_first = self._phase_last = None
            self._phase_began = time.time()
            self._stretch_mark, self._scale_before, self._own_s = None, None, max(0.0, float(own_s))
            self._weigh = bool(weigh)

    def update(self, **values: Any) -> None:
        with self._lock:
            for key, value in values.items():
                if not hasattr(self, key) or key.startswith("_"):
                    raise AttributeError(key)
                setattr(self, key, value)
            if values.get("status") == "running" and self.started_at is None:
                self.started_at = time.time()
            if values.get("status") in TERMINAL_STATUSES:
                self.finished_at = time.time()

    def add_message(self, text: str) -> None:
        with self._lock:
            self.messages.append(str(text))

    def add_rows(self, rows: Sequence[Mapping[str, Any]], steps: int = 1, **extra: Any) -> None:
        with self._lock:
            for row in rows:
                self._rows.append({**row, **extra})
            before, last = self.phase_done, self._phase_last
            self.steps_done += steps
            self.phase_done += steps
            now = time.time()
            if self._phase_first is None:
                self._phase_first = now
            self._phase_last = now
            plan = self.plan
            # a stretch of the plan's steps of one cost is timed from its first step's end (the first depth from its
            # first epoch's: not the start's work before it); one that ends here is timed up to its last step's end
            # (the next depth's first epoch holds the choice's scoring of the one before and its own start; read 56)
            crossed = plan and any(0 < i < len(plan) and plan[i] != plan[i - 1]
                                   for i in range(max(1, before), min(self.phase_done, len(plan))))
            if self._stretch_mark is None or crossed:
                counted = before - self._stretch_mark[1] if self._stretch_mark is not None else 0
                if crossed and counted >= UNIFORM_MIN_STEPS and last is not None and 0 < before <= len(plan) \
                        and plan[before - 1] > 0:
                    self._scale_before = (last - self._stretch_mark[0]) / counted / plan[before - 1]
                self._stretch_mark = (now, self.phase_done)
            self._version += 1
            if self.first_point_at is None and rows:
                self.first_point_at = now

    def release_rows(self) -> None:
        """Let go of the live curves once the job has ended: the store holds them. Each finished job kept its last
        20,000 rows and a table of them, about 14.5 MiB a sweep, for as long as it stayed among the jobs kept (256:
        about 3.7 GiB no bound counted; attack round 70); its snapshots read the stored curves since."""
        with self._lock:
            self._rows = deque(maxlen=self._rows.maxlen)
            self._cache = None
            self.rows_released = True
            self._version += 1

    def restart_at(self, epoch: int, **extra: Any) -> None:
        """The phase's training restarted from its ``epoch`` (a collapse): the steps after it are counted again and
        their rows (those with ``extra``'s values) leave the live curves."""
        with self._lock:
            back = max(0, self.phase_done - int(epoch))
            self.steps_done -= back
            self.phase_done -= back
            self._stretch_mark = None  # (the steps taken again are timed afresh: the discarded ones' time left out)
            self._rows = deque((row for row in self._rows if not _restarted_row(row, epoch, extra)),
                               maxlen=self._rows.maxlen)
            self._version += 1

    def snapshot(self) -> ProgressSnapshot:
        with self._lock:
            if self._cache is None or self._cache[0] != self._version:
                self._cache = (self._version, pd.DataFrame(list(self._rows)))
            return ProgressSnapshot(
                run_id=self.run_id, kind=self.kind, status=self.status, message=self.message, phase=self.phase,
                steps_done=self.steps_done, steps_total=self.steps_total, history=self._cache[1],
                queued_behind=self.queued_behind, device=self.device, created_at=self.created_at,
                started_at=self.started_at, finished_at=self.finished_at, first_point_at=self.first_point_at,
                messages=tuple(self.messages), live=True, estimate_s=self.estimate_s,
                phase_done=self.phase_done, phase_total=self.phase_total, unit=self.unit, rate_s=self._rate(),
                then_s=self.then_s, then_untimed=self.then_untimed, cancelling=self.cancelling, time_limited=self.time_limited,
                step_age=self._step_age(), plan_s=self.plan, plan_from=self._phase_offset, uniform=self.uniform,
                stretch_pace_s=self._stretch_pace(), stretch_counted=self._stretch_counted(),
                stretch_scale_before=self._scale_before, own_left_s=self._own_left(), weigh=self._weigh,
                stretch_plan_s=(self.plan[self._stretch_mark[1] - 1] if self.plan and self._stretch_mark is not None
                                and 0 < self._stretch_mark[1] <= len(self.plan) else 0.0),
                phase_plan_s=self.phase_plan_s,
                phase_age=0.0 if self._phase_began is None else max(0.0, time.time() - self._phase_began))

    def _step_age(self) -> float:
        since = self._phase_last if self._phase_last is not None else self._phase_began
        return 0.0 if since is None else max(0.0, time.time() - since)

    def _own_left(self) -> float:
        """The phase's own work outside its steps still to come: its estimate less the time before its first step;
        none once a step has ended (choosing the depth: its start's work comes first, the choice after the epochs
        took 0.5 s of a 39 s training, where the probes' three starts counted 6 s; the stretches' paces then say the
        rest)."""
        if self._phase_first is not None:
            return 0.0
        if not self._own_s or self._phase_began is None:
            return self._own_s
        return max(0.0, self._own_s - (time.time() - self._phase_began))

    def _stretch_counted(self) -> int:
        return 0 if self._stretch_mark is None else self.phase_done - self._stretch_mark[1]

    def _stretch_pace(self) -> float | None:
        """Seconds a step of the plan's current stretch, measured (None before UNIFORM_MIN_STEPS steps of it)."""
        counted = self._stretch_counted()
        if not self.plan or counted < UNIFORM_MIN_STEPS or self._phase_last is None:
            return None
        return (self._phase_last - self._stretch_mark[0]) / counted

    def _rate(self) -> float | None:
        """Seconds per step of the current phase, measured from its first step on (None before two)."""
        counted = self.phase_done - self._phase_offset  # (its steps since it began)
        if self._phase_first is None or counted < 2 or self._phase_last == self._phase_first:
            return None
        return (self._phase_last - self._phase_first) / (counted - 1)


def _history_save_seconds() -> float:
    return float(env_value("DEEM_HISTORY_SAVE_SECONDS", 5.0))


class _HistoryRecorder:
    """Every curve row of one job, written to the run's ``history`` at most every ``every`` seconds while it
    trains, so that a crash or a killed server keeps the curves trained so far (the job's own final write
    replaces them with the complete table). A failed write never stops the training."""

    def __init__(self, store: RunStore, run_id: str, every: float | None = None):
        self.store, self.run_id = store, run_id
        self.every = _history_save_seconds() if every is None else float(every)
        self._chunks: list[pd.DataFrame] = []
        self._pending: list[dict[str, Any]] = []
        self._last = time.monotonic()
        self.writes = 0

    def add(self, rows: Sequence[Mapping[str, Any]], **extra: Any) -> None:
        self._pending.extend({**row, **extra} for row in rows)
        if time.monotonic() - self._last >= self.every:
            self.flush()

    def restart_at(self, epoch: int, **extra: Any) -> None:
        """Rows after ``epoch`` of a restarted training (those with ``extra``'s values) are dropped."""
        self._pending = [row for row in self._pending if not _restarted_row(row, epoch, extra)]
        for i, chunk in enumerate(self._chunks):
            if "epoch" in chunk.columns:
                drop = chunk["epoch"] > int(epoch)
                for key, value in extra.items():
                    drop &= chunk[key] == value if key in chunk.columns else False
                self._chunks[i] = chunk[~drop]

    def clear(self) -> None:
        """Let go of the rows kept (the job writes its own complete table)."""
        self._chunks, self._pending = [], []

    def flush(self) -> None:
        if self._pending:  # rows are kept as DataFrame chunks (compact), merged at each write
            self._chunks.append(pd.DataFrame(self._pending))
            self._pending = []
        self._last = time.monotonic()
        if not self._chunks:
            return
        if len(self._chunks) > 1:
            self._chunks = [pd.concat(self._chunks, ignore_index=True)]
        try:
            self.store.save_history(self.run_id, self._chunks[0])
            self.writes += 1
        except Exception:  # noqa: BLE001 - disk full etc.: the final save of the job reports it
            pass


def _restarted_row(row: Mapping[str, Any], epoch: int, extra: Mapping[str, Any]) -> bool:
    """Whether a live row is past ``epoch`` of the restarted training ``extra`` names."""
    return row.get("epoch", 0) > int(epoch) and all(row.get(k) == v for k, v in extra.items())


class _ProgressCallback:
    """Training callback: every epoch's rows go into the progress object and, when given, the job's history
    recorder (never stops training)."""

    def __init__(self, progress: Progress, recorder: _HistoryRecorder | None = None, **extra: Any):
        self.progress, self.recorder, self.extra = progress, recorder, extra

    def on_epoch_end(self, epoch: int, logs: list[dict[str, Any]]) -> bool:
        self.progress.add_rows(logs, steps=1, **self.extra)
        if self.recorder is not None:
            self.recorder.add(logs, **self.extra)
        return False

    def on_restart(self, epoch: int) -> None:
        """A training restarted after a collapse from ``epoch``: its later epochs leave the count and the curves
        (they are trained again; "epoch 33 of 30" was shown; read 54)."""
        self.progress.restart_at(epoch, **self.extra)
        if self.recorder is not None:
            self.recorder.restart_at(epoch, **self.extra)


# --------------------------------------------------------------------------- device queues
class _DeviceQueue:
    """``capacity`` slots; waiting jobs learn who they are queued behind.

    Fair between parties (a network address, else a workspace): the next job to start is one of the party with
    the fewest jobs running, then the party served longest ago (its last job's end; a party never served: when its
    job came), then the longest waiting. A
    visitor who queued four long jobs no longer makes a later visitor wait for all four (attack round of the
    seventh session: one user's 5,000-epoch x 16-seed job held every other user's job); among one party's jobs the
    order stays first come, first served."""

    def __init__(self, name: str, capacity: int):
        self.name, self.capacity = name, max(1, int(capacity))
        self.holders: list[str] = []
        self.waiting: deque[str] = deque()
        self.cond = threading.Condition()
        self._party: dict[str, str] = {}  # run id -> party, while it waits or runs
        self._last_start: dict[str, float] = {}  # party -> when its last job started
        self._arrival: dict[str, int] = {}
        self._arrived_at: dict[str, float] = {}  # run id -> when it came (monotonic)
        self._last_end: dict[str, float] = {}  # party -> when its last job ended
        self._count = 0

    def _order(self) -> list[str]:
        """The waiting jobs in the order they will start."""
        running: dict[str, int] = {}
        for holder in self.holders:
            running[self._party[holder]] = running.get(self._party[holder], 0) + 1

        def key(run_id: str) -> tuple:
            party = self._party[run_id]
            # served longest ago: when its last job ended (or started, while none has ended); a party never served
            # counts from its job's arrival, not from the start of time: a fresh browser profile of the server's own
            # machine (no network party: each workspace its own) went before every party ever served, again with
            # each new profile (attack round 58: a visitor's 3 s job waited 58 s behind two such); a party whose job
            # has just ended still goes after one that came while it ran
            served = self._last_end.get(party, self._last_start.get(party))
            return (running.get(party, 0), self._arrived_at.get(run_id, -math.inf) if served is None else served,
                    self._arrival[run_id])

        return sorted(self.waiting, key=key)

    def acquire(self, run_id: str, cancel: threading.Event, on_wait: Callable[[str, int], None],
                party: str | None = None) -> bool:
        with self.cond:
            self.waiting.append(run_id)
            self._party[run_id] = party or run_id
            self._count += 1
            self._arrival[run_id] = self._count
            self._arrived_at[run_id] = time.monotonic()
            last = None
            started = False
            try:
                while True:
                    if cancel.is_set():
                        return False
                    order = self._order()
                    if len(self.holders) < self.capacity and order[0] == run_id:
                        self.waiting.remove(run_id)
                        self.holders.append(run_id)
                        self._last_start[self._party[run_id]] = time.monotonic()
                        started = True
                        return True
                    position = order.index(run_id)
                    ahead = order[position - 1] if position > 0 else (self.holders[0] if self.holders else "")
                    state = (ahead, position)
                    if state != last:
                        on_wait(ahead, position + len(self.holders))
                        last = state
                    self.cond.wait(timeout=0.2)
            finally:
                if run_id in self.waiting:
                    self.waiting.remove(run_id)
                self._arrival.pop(run_id, None)
                self._arrived_at.pop(run_id, None)
                if not started:
                    self._party.pop(run_id, None)
                self.cond.notify_all()

    def release(self, run_id: str) -> None:
        with self.cond:
            if run_id in self.holders:
                self.holders.remove(run_id)
                if run_id in self._party:
                    self._last_end[self._party[run_id]] = time.monotonic()
            self._party.pop(run_id, None)
            self.cond.notify_all()

    def snapshot(self) -> dict[str, Any]:
        with self.cond:
            return {"running": list(self.holders), "waiting": self._order(), "capacity": self.capacity}


# --------------------------------------------------------------------------- jobs
@dataclass
class Job:
    """One background job: its thread, progress and cancel flag."""

    run_id: str
    kind: str
    config: dict[str, Any]
    owner: str | None
    progress: Progress
    cancel_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    client: str | None = None  # the network address of the browser that launched it (None: unknown)
    expected_output: int = 0  # bytes its results are expected to store (counted against the caps while it runs)

    def cancel(self) -> None:
        self.cancel_event.set()
        if self.progress.status == "running":
            self.progress.update(cancelling=True)

    def stop_at_time_limit(self) -> None:
        """The server's time limit is reached: stop as a cancel does (what was made is kept), said as such."""
        if not self.cancel_event.is_set():
            self.progress.update(time_limited=True)
            self.cancel()

    @property
    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()


@dataclass
class JobContext:
    """What a job function gets: the data, the store, its progress, the cancel flag and the device."""

    run_id: str
    config: dict[str, Any]
    data: AnnotationSet | None
    gold: pd.Series | None
    store: RunStore
    progress: Progress
    cancel_event: threading.Event
    device: str


# A job function runs in the worker thread with the device slot held. It returns the final status
# ("finished" or "cancelled") and a message, writing its outputs to ``ctx.store`` as it goes.
JobFunction = Callable[[JobContext], tuple[str, str]]
_KINDS: dict[str, tuple[JobFunction, Callable[[dict[str, Any]], str], Callable[[dict[str, Any]], int]]] = {}


def register_kind(kind: str, function: JobFunction, device: Callable[[dict[str, Any]], str] | None = None,
                  steps: Callable[[dict[str, Any], AnnotationSet | None], int] | None = None) -> None:
    """Add a job kind. ``device(config)`` says which queue it waits in ("cpu"/"cuda"/"auto"; default: the
    config's ``device``); ``steps(config, data)`` how many progress steps it reports (``data``: the job's
    annotations, None without)."""
    _KINDS[kind] = (function,
                    device or (lambda config: str(config.get("device", "auto"))),
                    steps or (lambda config, data: int(config.get("epochs", 0) or 0)))


def _queue_name(device: str) -> str:
    from deem_core.model.training import resolve_device  # noqa: PLC0415

    return resolve_device(device).type


class JobManager:
    """Runs jobs in background threads, one FIFO queue per device; jobs are found by run id."""

    def __init__(self, store: RunStore | str | Path | None = None, max_cpu_jobs: int | None = None,
                 max_gpu_jobs: int = 1, max_pending: int = 64, keep_finished: int = 256,
                 max_pending_per_owner: int | None = None, max_pending_per_client: int | None = None,
                 max_job_seconds: float | None = None):
        self.store = store if isinstance(store, RunStore) else RunStore(store)
        # (None: DEEM_MAX_JOB_SECONDS or its default; 0: no limit)
        self.max_job_seconds = (job_time_limit() if max_job_seconds is None
                                else (float(max_job_seconds) if max_job_seconds > 0 else None))
        if max_cpu_jobs is None:
            max_cpu_jobs = int(env_value("DEEM_MAX_CPU_JOBS", 1))  # ("abc" broke every page; attack round 11)
        self._queues = {"cpu": _DeviceQueue("cpu", max_cpu_jobs), "cuda": _DeviceQueue("cuda", max_gpu_jobs)}
        self._jobs: dict[str, Job] = {}
        self._finished: deque[str] = deque()
        self._lock = threading.Lock()
        self.max_pending = int(max_pending)
        # one workspace (owner) may not fill the server's queue (deem_studio.owners: the access model)
        self.max_pending_per_owner = int(max_pending_per_owner if max_pending_per_owner is not None
                                         else max_active_per_workspace())
        # ... nor one network address (a workspace costs nothing: a browser without the cookie gets a new one)
        self.max_pending_per_client = int(max_pending_per_client if max_pending_per_client is not None
                                          else max_active_per_client())
        self._reserved: dict[str | None, int] = {}
        self._reserved_clients: dict[str, int] = {}
        # bytes the runs being written will store, by owner and by address (counted with the stored ones)
        self._reserved_bytes: Counter = Counter()
        self._reserved_client_bytes: Counter = Counter()
        self._launching: dict[tuple, list] = {}  # (kind, owner, data) -> [lock, holders]: see submit_once
        self.keep_finished = int(keep_finished)
        self.recovered = self.store.mark_stale_running_as_failed(time_limit=job_time_limit())
        self.removed_unindexed = self.store.remove_unindexed()  # (left by a server stopped while writing a run)

    # -- submitting
    def submit(self, kind: str, config: Mapping[str, Any] | None = None, data: AnnotationSet | None = None,
               gold: pd.Series | None = None, owner: str | None = None, dataset: str | None = None,
               store_data: bool = True, client: str | None = None) -> str:
        """Register a run in the store and start its job; returns the run id at once.

        ``store_data=False`` keeps the annotations out of the run folder (a job that works on another
        run's data, like diagnostics, which records that run's id in its config instead)."""
        if kind not in _KINDS:
            raise ValueError(f"unknown job kind {kind!r}; known: {', '.join(sorted(_KINDS))}")
        function, device_of, steps_of = _KINDS[kind]
        if data is not None and (kind == "train" or (kind == "sweep" and not (config or {}).get("sample_tasks"))):
            check_table_size(data)  # before the run exists: the page says why, nothing is queued
        # (a config without methods trains the defaults: checked as such; read 48)
        asked = [str(m).strip().lower() for m in {**TRAIN_DEFAULTS, **(config or {})}.get("methods") or []]
        if data is not None and kind == "sweep":
            check_deem_fits(data)  # likewise (a train job's: in check_methods_fit, for every trained method)
        if data is not None and kind == "train":
            check_methods_fit(data, asked)  # likewise
        if kind in ("train", "sweep"):
            check_run_settings(config or {})  # likewise (6.99 layers trained 6, "abc" failed in the queue)
            if data is not None:
                check_job_memory(kind, config or {}, data)  # likewise
        config = {**_KIND_DEFAULTS.get(kind, {}), **dict(config or {})}
        if kind == "train" and isinstance(config.get("methods"), (list, tuple)):
            # stored as the job reads them: " DEEM " trained DEEM while its queue (GPU or CPU) and its steps, read
            # from the raw names, did not see it (attack round 6)
            config["methods"] = [str(m).strip().lower() for m in config["methods"]]
        # the bytes the run will store, reserved with its place: the runs being written were counted as runs but not
        # as bytes, so submits at once each found the workspace's bytes below its cap (attack round 58); and those
        # its results will store, held until it ends: a burst of trainings on a small upload of many classes passed
        # every cap and the disk's floor, then wrote 437 MB each and filled the disk (attack round 59)
        output = expected_output_bytes(kind, config, data, self._source_record(kind, config))
        size = self.store.expected_bytes(data if store_data else None, gold if store_data else None) + output
        with self._lock:
            active = [job for job in self._jobs.values() if job.progress.status in ACTIVE_STATUSES]

            def held(**whose: str) -> int:
                """Bytes reserved for runs being written and for the results of those queued or running."""
                (key, value), = whose.items()
                counter = self._reserved_bytes if key == "owner" else self._reserved_client_bytes
                return counter[value] + sum(job.expected_output for job in active if getattr(job, key) == value)

            everyone = sum(self._reserved_bytes.values()) + sum(job.expected_output for job in active)
            if owner is not None:  # (under the lock, with the places reserved: 8 submits at once stored 8 runs
                self._check_storage(owner, self._reserved.get(owner, 0),  # against a cap of 2; attack round)
                                    held(owner=owner), size, everyone)
            if client:  # (a workspace costs nothing: 40 of them from one address stored 40 times the cap)
                self._check_client_storage(client, self._reserved_clients.get(client, 0), held(client=client),
                                           size)
            # a place is reserved under the lock (the run is written to disk outside it): two quick submits
            # of one workspace cannot both pass the check
            pending = len(active) + sum(self._reserved.values())
            if pending >= self.max_pending:
                raise QueueFull(f"{pending} jobs are already queued or running on this server; "
                                f"wait for one to finish and try again")
            if owner is not None:
                mine = sum(1 for job in active if job.owner == owner) + self._reserved.get(owner, 0)
                if mine >= self.max_pending_per_owner:
                    raise QueueFull(f"your workspace already has {counted(mine, 'job')} queued or running (at most "
                                    f"{self.max_pending_per_owner} at a time); wait for one to finish or cancel one")
            if client and self.max_pending_per_client > 0:
                theirs = (sum(1 for job in active if job.client == client)
                          + self._reserved_clients.get(client, 0))
                if theirs >= self.max_pending_per_client:
                    raise QueueFull(f"{theirs} jobs from your network address are already queued or running (at "
                                    f"most {self.max_pending_per_client} at a time); wait for one to finish")
                self._reserved_clients[client] = self._reserved_clients.get(client, 0) + 1
            self._reserved[owner] = self._reserved.get(owner, 0) + 1
            self._reserved_bytes[owner] += size
            if client:
                self._reserved_client_bytes[client] += size
        run_id, released = None, False
        try:
            # what can fail is worked out before the run is written: a run written and then left without a job
            # stayed "queued" for good, neither cancelled nor deleted (attack round 16)
            steps = steps_of(config, data)
            estimate = config.get("estimate") if isinstance(config.get("estimate"), dict) else {}
            estimate_s = float(estimate["seconds"]) if estimate.get("seconds") is not None else None
            run_id = self.store.create(kind, config, data=data if store_data else None,
                                       gold=gold if store_data else None, owner=owner, dataset=dataset,
                                       device=str(config.get("device", "")), client=client or None)
            progress = Progress(run_id, kind, steps_total=steps)
            progress.estimate_s = estimate_s
            job = Job(run_id=run_id, kind=kind, config=config, owner=owner, progress=progress, client=client or None,
                      expected_output=output)
            job.thread = threading.Thread(target=self._work, args=(job, function, device_of, data, gold),
                                          name=f"deem-job-{run_id}", daemon=True)
            with self._lock:  # (the job counts from here: its reserved place goes in the same step, else a burst of
                # submits counted it twice and refused one below the cap; attack round 35)
                self._jobs[run_id] = job
                self._release(owner, client, size)
                released = True
            job.thread.start()
        except BaseException as exc:
            if run_id is not None:  # written, but no job runs it (no memory, no thread left): it failed, said so
                with self._lock:
                    self._jobs.pop(run_id, None)
                try:
                    self.store.update_status(run_id, "failed", message=f"it could not start: {readable_error(exc)}")
                except Exception:  # noqa: BLE001 - the store itself failed: the first error is the one to say
                    pass
            raise
        finally:
            if not released:
                with self._lock:
                    self._release(owner, client, size)
        return run_id

    def _source_record(self, kind: str, config: Mapping[str, Any]) -> dict[str, Any] | None:
        """The index row of the training a diagnostics run diagnoses (None for another kind, or none found)."""
        if kind != "diagnostics" or not config.get("source_run"):
            return None
        try:
            return self.store.get(str(config["source_run"]))
        except Exception:  # noqa: BLE001 - none: the job itself says so
            return None

    def _release(self, owner: str | None, client: str | None, size: int = 0) -> None:
        """Give back a place ``submit`` reserved, and its ``size`` bytes (under the lock)."""
        self._reserved[owner] -= 1
        if not self._reserved[owner]:
            del self._reserved[owner]
        for counter, key in ((self._reserved_bytes, owner), (self._reserved_client_bytes, client or None)):
            if key in counter:
                counter[key] -= size
                if counter[key] <= 0:
                    del counter[key]
        if client and client in self._reserved_clients:
            self._reserved_clients[client] -= 1
            if not self._reserved_clients[client]:
                del self._reserved_clients[client]

    def _work(self, job: Job, function: JobFunction, device_of: Callable[[dict[str, Any]], str],
              data: AnnotationSet | None, gold: pd.Series | None) -> None:
        progress, store, run_id = job.progress, self.store, job.run_id
        queue: _DeviceQueue | None = None
        timer: threading.Timer | None = None
        status, message = "failed", ""
        try:
            device = device_of(job.config)
            queue = self._queues[_queue_name(device)]
            progress.update(device=queue.name)

            def on_wait(ahead: str, position: int) -> None:
                # a run id is the key that opens a run: only a run of the same workspace is named (attack round,
                # ninth session: a queued job showed the id of another visitor's run, which opened their data)
                other = self.get(ahead) if ahead else None
                own = other is not None and other.owner == job.owner
                where = device_name(queue.name)
                # the id kept apart from the message: the run's link shows its message to every visitor, and an own
                # run ahead named there opened that run, never shared, to them (attack round 55); status_line names
                # it to the owner's sessions only
                text = f"queued: {counted(position, 'job')} ahead on the {where}" if ahead else f"queued for the {where}"
                store.update_status(run_id, "queued", message=text)
                progress.update(queued_behind=ahead if own else None, message=text)

            if not queue.acquire(run_id, job.cancel_event, on_wait, party=job.client or job.owner):
                queue = None
                status, message = "cancelled", "cancelled before it started"
                return
            store.update_status(run_id, "running", message="running", device=queue.name)
            progress.update(status="running", queued_behind=None, message="running")
            if self.max_job_seconds is not None:  # counted from the start of its run, not of its wait
                timer = threading.Timer(self.max_job_seconds, job.stop_at_time_limit)
                timer.daemon = True
                timer.start()
            asked = str(job.config.get("device", "auto") or "auto")
            ctx = JobContext(run_id=run_id, config=job.config, data=data, gold=gold, store=store,
                             progress=progress, cancel_event=job.cancel_event,
                             device=queue.name if asked == "auto" else asked)
            status, message = function(ctx)
        except JobCancelled:
            status, message = "cancelled", "cancelled by the user"
            if job.progress.time_limited:
                message = "nothing was kept"
        except BaseException as exc:  # noqa: BLE001 - a job never takes the server down
            status, message = "failed", readable_error(exc)
            try:
                store.save_error(run_id, traceback.format_exc())
            except Exception:  # noqa: BLE001
                pass
        finally:
            if timer is not None:
                timer.cancel()
            if job.progress.time_limited and status == "cancelled":
                message = f"{time_limit_text(self.max_job_seconds or 0.0)}; {message}"
            if queue is not None:
                queue.release(run_id)
            try:
                store.update_status(run_id, status, message=message, messages=progress.snapshot().messages)
            except Exception as exc:  # noqa: BLE001 - the store itself failed (disk full, ...)
                status, message = "failed", f"{message}; and the run could not be saved: {readable_error(exc)}"
            progress.update(status=status, message=message, queued_behind=None)
            progress.release_rows()
            source = job.config.get("source_run") if job.kind == "diagnostics" else None
            if source and not store.exists(str(source)):
                # its training was deleted while it waited or ran: it goes too, as the finished ones do (it was left
                # listed as "Diagnostics of run <gone>", its files counted; attack round 16)
                try:
                    store.delete(run_id)
                except Exception:  # noqa: BLE001 - left listed, as before
                    pass
            self._retire(run_id)
            release_memory()  # (what the job freed, held by its thread's arena; attack round 39)

    def _retire(self, run_id: str) -> None:
        with self._lock:
            self._finished.append(run_id)
            while len(self._finished) > self.keep_finished:
                self._jobs.pop(self._finished.popleft(), None)

    def _check_storage(self, owner: str, reserved: int = 0, reserved_bytes: int = 0, size: int = 0,
                       everyone: int = 0) -> None:
        """A workspace's stored runs stay within their count and bytes, and the disk keeps some room: every run
        stores a copy of its data, so repeated launches filled the disk (attack round, ninth session). ``size``: the
        bytes this run is expected to store; ``reserved_bytes``: the workspace's runs being written and the results
        its queued and running jobs will store; ``everyone``: the same for every workspace (the disk's floor)."""
        runs_cap, bytes_cap, floor = max_runs_per_workspace(), max_workspace_bytes(), min_free_disk()
        if floor > 0:
            free = shutil.disk_usage(self.store.root).free
            if free < floor:
                raise QueueFull(f"the server's disk for runs is nearly full ({describe_bytes(free)} free); no new run "
                                f"can be stored now. Delete runs you no longer need on the Runs page, or ask the "
                                f"administrator")
            if free - everyone - size < floor:
                raise QueueFull(f"this run would store about {describe_bytes(size)} ({WHAT_A_RUN_STORES}), and "
                                f"the server's disk for runs has {describe_bytes(free)} free, "
                                f"{describe_bytes(everyone)} of it promised to the runs under way, of which "
                                f"{describe_bytes(floor)} is kept free; train fewer methods or seeds, try again when "
                                f"those runs end, or ask the administrator")
        runs, used = self._stored(runs_cap, bytes_cap, reserved, reserved_bytes, owner=owner)
        if 0 < runs_cap <= runs:
            raise QueueFull(f"your workspace keeps {runs:,} runs (at most {runs_cap:,}); delete runs you no longer "
                            f"need on the Runs page to start another")
        if 0 < bytes_cap <= used:
            raise QueueFull(f"your workspace's runs take {describe_bytes(used)} (at most {describe_bytes(bytes_cap)}); "
                            f"delete runs you no longer need on the Runs page to start another")
        if 0 < bytes_cap < used + size:
            raise QueueFull(self._would_pass(size, used, bytes_cap, "your workspace's runs take"))

    @staticmethod
    def _would_pass(size: int, used: int, cap: int, whose: str) -> str:
        """The refusal of a run whose expected bytes would pass a cap the runs stored are still within."""
        return (f"this run would store about {describe_bytes(size)} ({WHAT_A_RUN_STORES}), and {whose} "
                f"{describe_bytes(used)} of at most {describe_bytes(cap)} (with the runs under way); train fewer methods "
                f"or seeds, or delete runs you no longer need on the Runs page")

    def storage_room(self, owner: str | None, client: str | None = None) -> int | None:
        """Bytes a run of ``owner`` launched from ``client`` may still add before a bound is passed (the
        workspace's and the address's bytes, the disk's free floor); None without any bound."""
        rooms = []
        if owner is not None and max_workspace_bytes() > 0:
            rooms.append(max_workspace_bytes() - self.store.usage(owner=owner)[1])
        if client and max_client_bytes() > 0:
            rooms.append(max_client_bytes() - self.store.usage(client=client)[1])
        if min_free_disk() > 0:
            rooms.append(shutil.disk_usage(self.store.root).free - min_free_disk())
        return max(0, min(rooms)) if rooms else None

    def _check_client_storage(self, client: str, reserved: int = 0, reserved_bytes: int = 0, size: int = 0) -> None:
        """The runs stored from one network address (``owners.client_party``) stay within their count and bytes
        (``size``, ``reserved_bytes``: as for :meth:`_check_storage`)."""
        runs_cap, bytes_cap = max_runs_per_client(), max_client_bytes()
        runs, used = self._stored(runs_cap, bytes_cap, reserved, reserved_bytes, client=client)
        if 0 < runs_cap <= runs or 0 < bytes_cap <= used:
            raise QueueFull(f"the runs launched from your network address take {runs:,} runs and "
                            f"{describe_bytes(used)} (at most {runs_cap:,} runs and {describe_bytes(bytes_cap)}); "
                            f"delete runs you no longer need on the Runs page to start another")
        if 0 < bytes_cap < used + size:
            raise QueueFull(self._would_pass(size, used, bytes_cap, "the runs launched from your network address take"))

    def _stored(self, runs_cap: int, bytes_cap: int, reserved: int, reserved_bytes: int = 0,
                **whose: str) -> tuple[int, int]:
        """(runs, bytes) stored by ``owner=`` or ``client=``, the places being reserved counted as runs and their
        ``reserved_bytes`` as bytes (launched this moment, not in the store yet); (0, 0) without a bound, so that
        nothing is walked."""
        if runs_cap <= 0 and bytes_cap <= 0:
            return 0, 0
        runs, used = self.store.usage(**whose)
        return runs + reserved, used + reserved_bytes

    # -- looking up
    def get(self, run_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(run_id)

    def expected_wait(self, run_id: str, queue_name: str) -> float | None:
        """Seconds before queued ``run_id`` may start on queue ``queue_name``: the queue's slots played forward, each
        job running there freeing its slot after its time left and each job waiting ahead taking the first slot free
        for its launch estimate (every time capped at the server's time limit per job); None when one of them has no
        estimate (or the run waits on no queue). (The time of all summed over the slots said "about 1 h" where a
        6 s job freed one of two slots; the diff's read.)"""
        queue = self._queues[queue_name].snapshot()
        if run_id not in queue["waiting"]:
            return None
        cap = float(self.max_job_seconds) if self.max_job_seconds is not None else math.inf
        ahead = queue["waiting"][:queue["waiting"].index(run_id)]
        free: list[float] = []
        for other in queue["running"]:
            job = self.get(other)
            snap = None if job is None else job.progress.snapshot()
            if snap is None or snap.eta is None:
                return None
            free.append(min(max(0.0, float(snap.eta)), max(0.0, cap - snap.elapsed)))
        free += [0.0] * max(0, int(queue["capacity"]) - len(free))
        heapq.heapify(free)
        for other in ahead:
            job = self.get(other)
            estimate = None if job is None else job.progress.snapshot().estimate_s
            if estimate is None:
                return None
            heapq.heappush(free, heapq.heappop(free) + min(max(0.0, float(estimate)), cap))
        return free[0]  # (at least one slot: capacity >= 1)

    def snapshot(self, run_id: str, history: bool = True) -> ProgressSnapshot | None:
        """The job's live progress, or, for a run no longer in memory, its stored state (``live=False``).
        ``None`` when no such run exists. ``history=False``: an ended or stored run's curves are not read (its
        ``history`` is empty): the sidebar read a finished sweep's whole stored curves twice on every rerun of every
        page, for its status, and a read-only link's visitors made the server read 384,000 rows 155 times in 40 s
        (attack round 71)."""
        job = self.get(run_id)
        if job is not None:
            snap = job.progress.snapshot()
            if snap.status == "queued" and snap.device in self._queues:
                snap = dataclasses.replace(snap, wait_s=self.expected_wait(run_id, snap.device))
            if not (snap.done and job.progress.rows_released):
                return snap
            # an ended job's curves are the store's (it let go of its own); a run deleted since is gone, its kept job
            # too (its progress, curves included, was served after the delete; attack round 70)
            try:
                if history:
                    stored = self.store.load_history(run_id)
                else:  # (whether it still exists: an index row, not its curves)
                    self.store.get(run_id)
                    stored = None
            except RunNotFound:
                with self._lock:
                    self._jobs.pop(run_id, None)
                return None
            return dataclasses.replace(snap, history=pd.DataFrame() if stored is None else stored)
        try:
            record = self.store.get(run_id)
        except RunNotFound:
            return None
        try:
            stored = self.store.load_history(run_id) if history else None
        except RunNotFound:  # (deleted in between)
            return None
        stored = pd.DataFrame() if stored is None else stored
        config = record.get("config") or {}
        total = int(config.get("epochs", 0) or 0)
        return ProgressSnapshot(
            run_id=run_id, kind=record["kind"], status=record["status"], message=record.get("message") or "",
            steps_done=total if record["status"] == "finished" else 0, steps_total=total, history=stored,
            device=record.get("device"), created_at=record["created_at"], started_at=record.get("started_at"),
            finished_at=record.get("finished_at"), messages=tuple(record.get("messages") or ()), live=False)

    def active_twin(self, kind: str, config: Mapping[str, Any], owner: str | None, fingerprint: str | None,
                    ) -> str | None:
        """The id of a queued or running ``kind`` run of ``owner`` on the same data (``fingerprint``) with the same
        settings as ``config`` (the time estimate aside), or None. Such a second launch (a double click on Train
        while the page was busy) would only compute the same thing again beside the first."""
        def settings(values: Mapping[str, Any]) -> Any:
            kept = {k: v for k, v in dict(values).items() if k != "estimate"}
            return json.loads(json.dumps(kept, sort_keys=True, default=str))

        wanted = settings({**_KIND_DEFAULTS.get(kind, {}), **dict(config)})  # as submit stores it
        runs = self.store.list(owner=owner, kinds=[kind], statuses=list(ACTIVE_STATUSES))
        for run_id, found, stored in zip(runs["run_id"], runs["fingerprint"], runs["config"]):
            # a diagnostics run keeps no data (no fingerprint): its config names the run it reads (attack round 37:
            # two identical presses queued two)
            same_data = found == fingerprint or kind == "diagnostics"
            if fingerprint is not None and same_data and settings(stored or {}) == wanted:
                return str(run_id)
        return None

    def submit_once(self, kind: str, config: Mapping[str, Any], fingerprint: str | None, **submit: Any,
                    ) -> tuple[str, bool]:
        """:meth:`submit` unless the same job of this owner on these data is queued or running (:meth:`active_twin`):
        ``(run id, whether it is new)``. The look and the submit are one step for an owner's jobs of a kind on these
        data (attack round 36: tabs of one browser pressing Train at once each found no twin and launched two runs);
        other launches do not wait for them."""
        owner = submit.get("owner")
        key = (kind, owner, fingerprint)
        with self._lock:
            held = self._launching.setdefault(key, [threading.Lock(), 0])
            held[1] += 1
        try:
            with held[0]:
                twin = self.active_twin(kind, config, owner, fingerprint) if fingerprint is not None else None
                if twin is not None:
                    return twin, False
                return self.submit(kind, config, **submit), True
        finally:
            with self._lock:
                held[1] -= 1
                if not held[1]:
                    del self._launching[key]

    def cancel(self, run_id: str) -> bool:
        """Ask a queued or running job to stop. False when it is not running in this process."""
        job = self.get(run_id)
        if job is None or job.progress.status in TERMINAL_STATUSES:
            return False
        job.cancel()
        return True

    def wait(self, run_id: str, timeout: float | None = None) -> ProgressSnapshot | None:
        job = self.get(run_id)
        if job is not None and job.thread is not None:
            job.thread.join(timeout)
        return self.snapshot(run_id)

    def active_ids(self) -> list[str]:
        with self._lock:
            return [rid for rid, job in self._jobs.items() if job.progress.status in ACTIVE_STATUSES]

    def queues(self) -> dict[str, dict[str, Any]]:
        return {name: queue.snapshot() for name, queue in self._queues.items()}

    def shutdown(self, timeout: float = 5.0) -> None:
        """Cancel every job and wait for their threads (tests; a server just exits)."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel()
        for job in jobs:
            if job.thread is not None:
                job.thread.join(timeout)


_MANAGERS: dict[str, JobManager] = {}
_MANAGERS_LOCK = threading.Lock()


def get_manager(root: str | Path | None = None) -> JobManager:
    """The process-wide manager for a runs directory (default :func:`deem_studio.runs.default_runs_dir`)."""
    path = Path(root) if root is not None else default_runs_dir()
    key = str(path.resolve())
    with _MANAGERS_LOCK:
        manager = _MANAGERS.get(key)
        if manager is None:
            manager = _MANAGERS[key] = JobManager(RunStore(path))
        return manager


# --------------------------------------------------------------------------- the job kinds
#: the display name of a method key: the registry's one table (``deem`` -> "DEEM", ``mv`` -> "Majority vote")
method_name = display_name


#: what a finished run's message says after the count of the methods that failed ("2 methods failed: ...")
FAILED_MARK = "failed:"
_SOME_FAILED = re.compile(r"\bmethods?(\(s\))? " + re.escape(FAILED_MARK))


def some_failed(message: str | None) -> bool:
    """Whether a finished run's ``message`` says some of its methods failed ("1 method failed: ...", "2 methods
    failed: ...", and "method(s) failed: ..." of runs stored before counts were said in their number; read 46: the
    page looked for "method(s) failed" and showed a run with a failed method in green again)."""
    return bool(_SOME_FAILED.search(message or ""))


def start_explanation(model: Any, asked: str) -> str:
    """Which start (and depth) a fitted DEEM used and why, in words (the CLI prints the same choice)."""
    prior = float(getattr(model, "ds_prior", 0.0) or 0.0)
    # (the methods' plain "Dawid-Skene" agreed with it on 0.828 of the tasks, read as a fault; walkthrough 81)
    names = {"ds": f"Dawid-Skene with the shared prior ({prior:g} pseudo-answers per class; among the methods "
                   f"“{display_name('ds_shared')}”, not the plain “{display_name('ds')}”)" if prior else "Dawid-Skene",
             "mv": "majority vote"}
    chosen = names.get(getattr(model, "init_", asked), getattr(model, "init_", asked))
    summary = model.selection_summary() if hasattr(model, "selection_summary") else {}
    returned = safety_rule_sentence(summary)
    if returned:  # a reference, not a trained start, is the model
        return returned
    text = f"started from {chosen}" + (f", {counted(summary['layers'], 'layer')}" if summary.get("layers") is not None else "")
    if summary.get("fallback"):
        text += f" (FALLBACK: the labels come from {summary['fallback']})"
    if asked != "auto":
        return text + " (start chosen in the form)"
    if summary.get("reason") and not summary.get("candidates") and (
            summary.get("heldout_answers") is None or str(summary["reason"]).startswith("stopped before")):
        # nothing was chosen (it read "start chosen:" before it; walkthrough 56; of a run stopped before its
        # candidates were scored too: "start chosen: stopped before ... (nothing chosen ...)"; walkthrough 111)
        text += f" — {summary['reason']}"
    elif summary.get("reason"):  # what was chosen: the start, or the start and the depth ("auto" read as the depth's)
        what = "start and layers chosen" if getattr(model, "n_layers", None) == "auto" else "start chosen"
        text += f" — {what}: {summary['reason']}"  # (the reason may hold brackets of its own)
    evidence = getattr(model, "init_evidence_", None)
    if evidence:
        from deem_core.methods.choose import START_WORDS  # noqa: PLC0415
        from deem_core.methods.deem import GOLD_SWITCH_P_VALUE  # noqa: PLC0415

        first = evidence.get("unsupervised_choice")
        switched = first != getattr(model, "init_", None)
        tally = (f"the other start was better on {evidence.get('challenger_better', 0)} and worse on "
                 f"{evidence.get('challenger_worse', 0)} gold tasks, p = {evidence.get('p_value', float('nan')):.3g}")
        # ("confirmed" read wrong where the gold labels favoured the other start 12:5 without a significant sign
        # test; walkthrough 49)
        text += (f"; the gold labels overruled the {START_WORDS.get(first, first)} start ({tally})" if switched else
                 f"; the {START_WORDS.get(first, first)} start was kept on the gold labels ({tally}: a switch needs "
                 f"p < {GOLD_SWITCH_P_VALUE:g})")
    return text


def _check_cancel(ctx: JobContext) -> None:
    if ctx.cancel_event.is_set():
        raise JobCancelled()


def train_epochs(config: Mapping[str, Any], n_tasks: int | None) -> int:
    """The epochs each DEEM run of a train job trains on ``n_tasks`` tasks: the config's epochs, or fewer within its
    update budget (``max_updates``, the engine's rule); the config's epochs when the size is unknown."""
    from deem_core.model.training import epochs_within_budget  # noqa: PLC0415

    epochs = int(config.get("epochs", TRAIN_DEFAULTS["epochs"]) or 0)
    if n_tasks is None or epochs < 1:
        return epochs
    budget = config.get("max_updates", TRAIN_DEFAULTS["max_updates"])
    return epochs_within_budget(int(n_tasks), epochs, int(config.get("batch_size") or TRAIN_DEFAULTS["batch_size"]),
                                None if budget is None else int(budget))


def depth_plan(estimate: Mapping[str, Any], method: str, rounds: int, epochs: int,
               seconds: float) -> tuple[list[float], float]:
    """The estimated seconds of each epoch of DEEM choosing its depth where the depths train one after another
    (``rounds`` of ``epochs // rounds`` epochs, in the order of :data:`SELECTION_DEPTHS`), from the launch estimate's
    epoch of each depth, and the rest of its ``seconds`` (its start, the choice: before and after the epochs); ``([],
    0)`` otherwise. A 2-layer epoch costs 1.5-6 times a 0-layer one: the time left taken at the pace of the first
    depths ran short as the deeper ones came (walkthrough 116)."""
    each = estimate.get("depth_epoch_s") if isinstance(estimate.get("depth_epoch_s"), dict) else {}
    per_round = epochs // max(1, rounds)
    if method != "deem" or rounds != len(SELECTION_DEPTHS) or per_round < 1 or per_round * rounds != epochs:
        return [], 0.0
    epoch = [each.get(str(depth)) for depth in SELECTION_DEPTHS]
    if not all(isinstance(t, (int, float)) and math.isfinite(t) and t > 0 for t in epoch) or not math.isfinite(seconds):
        return [], 0.0
    plan = [float(t) for t in epoch for _ in range(per_round)]
    return plan, max(0.0, float(seconds) - sum(plan))


def trained_methods(config: Mapping[str, Any]) -> list[str]:
    """The methods of a train job's config that train (DEEM and iRBM), in its order."""
    return [m for m in config.get("methods") or [] if m in METHODS and METHODS[m].trains]


def method_epochs(config: Mapping[str, Any], method: str, data: AnnotationSet | None = None,
                  has_gold: bool = True) -> int:
    """The epochs a trained method of a train job reports: its epochs (:func:`train_epochs`) times the rounds of
    training that choosing the depth runs (``n_layers="auto"`` on a method whose layers are not fixed, without a
    supervised gold term -- ``has_gold`` and a supervised weight: the depths one after another, or one round where
    they train together, :func:`~deem_core.methods.deem.selection_rounds`)."""
    epochs = train_epochs(config, None if data is None else data.n_tasks)
    if "n_layers" in METHODS[method].fixed:  # (iRBM: 0 layers)
        return epochs
    n_layers = config.get("n_layers", TRAIN_DEFAULTS["n_layers"])
    gold_fit = has_gold and float(config.get("supervised_weight") or 0.0) > 0  # what reaches the fit (registry)
    lr = config.get("lr", TRAIN_DEFAULTS["lr"])
    if not chooses_depth(n_layers, gold_fit, lr):
        return epochs
    rounds = len(SELECTION_DEPTHS)
    if data is not None:
        try:
            rounds = training_rounds(data, n_layers, _train_device(config), gold_fit, lr,
                                     runs_per_depth=2 * int(config.get("n_seeds", TRAIN_DEFAULTS["n_seeds"]) or 1))
        except ValueError:  # a GPU asked for and missing: the job fails with that message when it starts
            pass
    return rounds * epochs


def _train_steps(config: Mapping[str, Any], data: AnnotationSet | None = None) -> int:
    """Progress steps of a train job: one per epoch of every trained method (:func:`method_epochs`), one per other
    method."""
    methods = list(config.get("methods") or [])
    trained = trained_methods(config)
    return sum(method_epochs(config, m, data) for m in trained) + (len(methods) - len(trained))


def _train_device(config: Mapping[str, Any]) -> str:
    """The queue of a train job: its device when a method trains there, else the CPU."""
    if not trained_methods(config):
        return "cpu"
    return str(config.get("device", "auto"))


#: a train or sweep configuration's whole-number settings (the engine's bounds: check_training_bounds)
WHOLE_SETTINGS = ("n_layers", "epochs", "n_seeds", "seed", "batch_size", "sampler_steps", "max_updates",
                  "sample_tasks")


def check_run_settings(config: Mapping[str, Any]) -> None:
    """ValueError before a train or sweep run is stored when a whole-number setting is not one (6.99 layers trained
    6, -0.5 trained 0, "abc" failed in the queue with int()'s message; attack round 13) or is out of the engine's
    bounds (depth, sampler steps, epochs)."""
    from deem_core.model.training import check_training_bounds  # noqa: PLC0415

    for key in WHOLE_SETTINGS:
        value = config.get(key)
        if value is None or (key == "n_layers" and value == "auto"):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{key} must be a whole number, got {str(value)[:40]!r}")
    layers = config.get("n_layers")
    check_training_bounds(n_layers=None if layers == "auto" else layers, sampler_steps=config.get("sampler_steps"),
                          epochs=config.get("epochs"), n_seeds=config.get("n_seeds"))


def _method_options(cfg: Mapping[str, Any], device: str) -> dict[str, Any]:
    """A train job's settings as the estimators' keyword arguments (each method takes the ones it knows)."""
    types = {"n_layers": lambda v: v if v == "auto" else int(v), "epochs": int, "lr": float, "init": str,
             "n_seeds": int, "seed": int, "batch_size": int, "supervised_weight": float, "ds_prior": float,
             "sampler_steps": int}  # (sampler_steps was dropped without a word; attack round 13)
    options = {key: cast(cfg[key]) for key, cast in types.items() if cfg.get(key) is not None}
    if "max_updates" in cfg:  # None is a setting here: no update budget
        options["max_updates"] = None if cfg["max_updates"] is None else int(cfg["max_updates"])
    return {**options, "device": device}


def _trained_entry(ctx: JobContext, method: str, model: Any, histories: list[pd.DataFrame]) -> dict[str, Any]:
    """Store a trained model's history and model file; its status, messages and metrics for the run."""
    progress = ctx.progress
    history = model.history_.copy()
    history.insert(0, "method", method)
    histories.append(history)
    ctx.store.save_history(ctx.run_id, pd.concat(histories, ignore_index=True))
    ctx.store.save_model(ctx.run_id, model, name=method)
    entry: dict[str, Any] = {"epochs": int(model.n_epochs_), "lr": float(model.lr_),
                             "dead_units": int(model.dead_units_), "run_status": list(model.run_status_)}
    if getattr(model, "n_layers_", None) is not None:  # the depth used (the one chosen when asked for "auto")
        entry["layers"] = int(model.n_layers_)
    planned = getattr(model, "epochs_", None)
    if planned is not None and planned < int(model.epochs):  # the update budget cut the epochs: say so with the run
        entry["epochs_planned"] = int(planned)
        progress.add_message(f"{display_name(method)}: the update budget ({int(model.max_updates):,} updates per model "
                             f"run) allowed {planned:,} of the {int(model.epochs):,} epochs")
    summary = getattr(model, "selection_summary", None)
    if summary is not None:  # how the start and depth were chosen, and any collapse, recovery or fallback
        entry["selection"] = summary()
        for note in entry["selection"]["collapse_notes"]:  # (a fallback is said by the start sentence)
            progress.add_message(f"{display_name(method)}: {note}")
    for text in model.run_messages_:
        if text:
            progress.add_message(f"{display_name(method)}: {text}")
    # the depths whose candidates trained (a cancel while choosing the layers leaves the deeper ones out)
    trained = sorted({int(c["layers"]) for c in (entry.get("selection") or {}).get("candidates") or []
                      if c.get("start") in ("mv", "ds") and c.get("layers") is not None})
    if any(s == "cancelled" for s in model.run_status_):
        of = f"{int(model.n_epochs_):,} of {counted(planned or model.epochs, 'epoch')}" if model.n_layers != "auto" else ""
        entry.update(status="cancelled", message=f"cancelled after {of or counted(model.n_epochs_, 'epoch')}")
    elif ctx.cancel_event.is_set() and model.n_layers == "auto" and trained != sorted(SELECTION_DEPTHS):
        # the choice was made among the candidates trained by then (a cancelled choice of the layers said
        # "finished" though its 2-layer candidates never trained; walkthrough, tenth session)
        entry.update(status="cancelled", message="cancelled while its candidates trained; the labels are the "
                                                 "choice among those trained by then"
                                                 + (f" (layers {', '.join(map(str, trained))})" if trained else ""))
    elif any(s == "diverged" for s in model.run_status_):
        entry["message"] = "; ".join(m for m in model.run_messages_ if m)
    if model.dead_units_:
        codes = np.asarray(model.posterior_).argmax(axis=1)
        dead = ((ctx.data is not None and len(codes) == ctx.data.n_tasks and dead_units_text(ctx.data, codes))
                or f"the model predicts {counted(model.dead_units_, 'class', 'classes')} fewer than majority vote "
                   f"finds (dead units); try a smaller learning rate")
        progress.add_message(f"{display_name(method)}: {dead}")
    return entry


def _run_train(ctx: JobContext) -> tuple[str, str]:
    """Fit every method of ``config["methods"]`` (any registered method) on the data, in order.

    A trained method (DEEM, iRBM) reports its epochs live, can be cancelled and leaves a model file; an error
    in it fails the run. An error in another method is recorded and the run goes on with the next one.
    """
    from deem_core.analysis.scoring import accuracy_and_count  # noqa: PLC0415
    from deem_core.methods import registry  # noqa: PLC0415

    cfg, data, store, progress = ctx.config, ctx.data, ctx.store, ctx.progress
    if data is None:
        raise DataError("no annotations were given to this run")
    methods = [str(m).strip().lower() for m in cfg.get("methods") or []]
    if not methods:
        raise ValueError("choose at least one method")
    unknown = [m for m in methods if m not in registry.METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; valid: {', '.join(registry.method_keys())}")
    if data.n_classes < 2:
        raise DataError(f"{data.source}: only one class ({data.classes[0]!r}) was given; there is nothing "
                        f"to aggregate (at least two classes are needed)")
    gold = ctx.gold
    options = _method_options(cfg, ctx.device)
    metrics: dict[str, dict[str, Any]] = {}
    labels_by_method: dict[str, pd.Series] = {}
    histories: list[pd.DataFrame] = []
    primary_model, primary_codes = None, None
    cancelled_during = None
    # the phases' estimated seconds (from the launch estimate) say how long the phases after the current one take
    estimate = cfg.get("estimate") if isinstance(cfg.get("estimate"), dict) else {}
    trained = [m for m in methods if registry.get_method(m).trains]
    others = [m for m in methods if m not in trained]
    baselines_s = float(estimate.get("baselines_s", 0.0) or 0.0)
    per_trained_s = max(0.0, float(estimate.get("seconds", 0.0) or 0.0) - baselines_s) / max(1, len(trained))
    each = estimate.get("baselines_each_s") if isinstance(estimate.get("baselines_each_s"), dict) else {}
    # each trained method's own time where the estimate timed them apart (read 54), else an even share
    trained_each = estimate.get("trained_each_s") if isinstance(estimate.get("trained_each_s"), dict) else {}
    if not all(isinstance(trained_each.get(m), (int, float)) for m in trained):
        trained_each = {m: per_trained_s for m in trained}

    def after(method: str) -> float:
        """The estimated seconds of the methods picked after ``method``: the phases still to come (a training after
        the baselines was left out of their time left, and the baselines run before a training counted in its;
        read 53)."""
        rest = methods[methods.index(method) + 1:]
        timed = [each.get(m) for m in others]
        if all(isinstance(t, (int, float)) for t in timed):
            rest_baselines = sum(float(each[m]) for m in rest if m in others)
        else:  # (no per-method figures: an even share of the baselines' estimate)
            rest_baselines = baselines_s * sum(m in others for m in rest) / max(1, len(others))
        return sum(float(trained_each[m]) for m in rest if m in trained) + rest_baselines
    # every method is compared with this majority vote, the "mv" method's own (one tie rule for both)
    reference = registry.majority_reference(data)
    recorder = _HistoryRecorder(store, ctx.run_id)
    for method in methods:
        if ctx.cancel_event.is_set():
            cancelled_during = cancelled_during or "before " + method_name(method)
            if method != "mv":  # majority vote takes milliseconds and everything is compared with it: it still runs
                continue  # (a cancel left the comparison empty; walkthrough, tenth session)
        spec = registry.get_method(method)
        started = time.perf_counter()
        entry: dict[str, Any] = {"name": spec.name, "status": "finished", "message": ""}
        if spec.trains:
            epochs = method_epochs(cfg, method, data, gold is not None)
            rounds = epochs // max(1, train_epochs(cfg, data.n_tasks if data is not None else None))
            # the epochs counted are those of the depths one after another, each round training the two starts
            # together ("epoch 120 of 300" while "the 6 candidates" trained read as a miscount; walkthrough 31)
            both = str(cfg.get("init", TRAIN_DEFAULTS["init"])) == "auto"
            phase = f"training {spec.name}" + (f" ({rounds} depths in turn{', both starts at once' if both else ''})"
                                               if rounds > 1 else "")
            untimed = 0 if estimate.get("seconds") else len(methods) - methods.index(method) - 1
            plan, rest = depth_plan(estimate, method, rounds, epochs, float(trained_each[method]))
            progress.start_phase(phase, epochs, "epoch", then_s=after(method), then_untimed=untimed, plan=plan, own_s=rest,
                                 weigh=bool(plan),
                                 uniform=rounds <= 1, plan_s=float(trained_each[method]) if estimate.get("seconds") else None)
            try:
                model = registry.fit_method(method, data, gold=gold, stop_event=ctx.cancel_event,
                                            callbacks=[_ProgressCallback(progress, recorder, method=method)], **options)
            except BaseException:  # a failed training's curves, every row so far: its page reads them from the store
                recorder.flush()
                raise
            entry.update(_trained_entry(ctx, method, model, histories))
            for text in getattr(model, "warnings_", ()):  # what fitting itself noted (the layers not chosen with gold
                # labels: said on the CLI only, and the page showed 1 layer without a word; walkthrough 56); the
                # data's own warnings are on the Data page, a fallback in the start sentence
                # (the labels following a cluster: a warning of its own on Train and Results)
                if text not in getattr(data, "warnings", ()) and not text.startswith((*FALLBACK_WARNINGS, FOLLOWED)):
                    ctx.progress.add_message(f"{spec.name}: {text}")
            entry.update(start=getattr(model, "init_", None),
                         start_reason=start_explanation(model, str(cfg.get("init", TRAIN_DEFAULTS["init"]))))
            if entry["status"] == "cancelled":
                cancelled_during = spec.name
            frame = model.results_frame()
            if primary_model is None:
                primary_model = model
                primary_codes = np.asarray(model.posterior_).argmax(axis=1)
        else:
            if progress.unit != "baseline":
                # each method's estimated seconds, where the launch timed them one by one: the time left counts
                # those still to run, not the pace of those done (walkthrough 105)
                plan = [each.get(m) for m in others]
                timed = all(isinstance(t, (int, float)) for t in plan)
                # (after a training between them, the count goes on from those done: it began at "baseline 1"
                # again, majority vote counted twice); the trainings picked after them follow the phase
                progress.start_phase("running the other methods", len(others), "baseline",
                                     then_s=sum(float(trained_each[m]) for m in methods[methods.index(method):]
                                                if m in trained),
                                     plan=plan if timed else (), done=others.index(method))
            progress.update(phase=f"running {spec.name}")
            try:
                # (a crowd-kit loop is fitted in a child process the cancel and the time limit can end: a cancelled
                # GLAD held the one CPU slot past 4 minutes; attack round 21)
                frame = registry.fit_method(method, data, stop_event=ctx.cancel_event, **options).results_frame()
            except FitStopped:
                cancelled_during = spec.name
                entry.update(status="cancelled", message="stopped before it ended")
                metrics[method] = entry
                continue
            except Exception as exc:  # noqa: BLE001 - one failing method never stops the others
                entry.update(status="failed", message=readable_error(exc))
                progress.add_message(f"{method_name(method)}: {entry['message']}")
                progress.add_rows([], steps=1)
                metrics[method] = entry
                continue
            progress.add_rows([], steps=1)
        frame = registry.with_majority(frame, data, reference=reference)
        store.save_result(ctx.run_id, method, frame)
        labels_by_method[method] = frame["label"]
        entry["seconds"] = time.perf_counter() - started
        entry["share_disagreeing_with_majority"] = float(frame["disagrees_with_majority"].mean())
        if "majority_vote_tied" in frame:  # (the tasks that share reads as agreeing whichever tied label is given)
            entry["majority_vote_ties"] = int(frame["majority_vote_tied"].sum())
            if method == "mv":  # the tie rule's order of the classes, first six (five shown, and whether more;
                # walkthrough 82: never named)
                from deem_core.methods.dawid_skene import tie_ranks  # noqa: PLC0415

                order = np.argsort(tie_ranks(data), kind="stable")[:6]
                entry["tie_order"] = [str(data.classes[int(c)]) for c in order]
        if gold is not None and len(gold):
            acc, n_gold = accuracy_and_count(frame["label"], gold)
            entry.update(accuracy=acc, gold_tasks=n_gold)
            if method == "mv":  # how much of its accuracy its tie rule's order won (walkthrough 82)
                from deem_core.analysis.scoring import tie_luck  # noqa: PLC0415

                luck = tie_luck(data, frame["label"], gold)
                if luck is not None:
                    entry["gold_ties"] = luck
        metrics[method] = entry
    _follows_of_others(data, primary_model, metrics, labels_by_method, trained)
    if not labels_by_method:
        if cancelled_during:
            return "cancelled", "cancelled before any method finished"
        failures = "; ".join(f"{method_name(m)}: {e['message']}" for m, e in metrics.items())
        raise RuntimeError(f"every method failed ({failures})")
    _save_comparison(ctx, metrics, labels_by_method, primary_model, primary_codes)

    def named(method: str) -> str:  # (the job line said "labels from DEEM" for a reference's; walkthrough 17)
        entry = metrics.get(method) or {}
        returned = safety_rule_reference((entry.get("selection") or {}).get("fallback"))
        # a model stopped part-way says so where its labels are listed (Results said "labels kept for: DEEM" of 280
        # of 1,500 epochs; walkthrough 70)
        partial = f" (partial: {entry['message']})" if entry.get("status") == "cancelled" and entry.get("message") else ""
        return method_name(method) + (f" ({returned}'s, by the safety rule)" if returned else "") + partial

    done = ", ".join(named(m) for m in labels_by_method)
    if cancelled_during:
        when = cancelled_during if cancelled_during.startswith("before ") else f"during {cancelled_during}"
        # (a method asked for and never started was in no list: Dawid-Skene vanished from the run; walkthrough 70)
        not_run = [method_name(m) for m in methods if m not in labels_by_method and m not in metrics]
        return "cancelled", (f"cancelled {when}; labels kept for: {done}"  # ("cancelled during before ..." read badly)
                             + (f"; methods not started: {', '.join(not_run)}" if not_run else ""))
    failed = [m for m, e in metrics.items() if e["status"] == "failed"]
    if failed:
        return "finished", f"labels from {done}; {counted(len(failed), 'method')} {FAILED_MARK} " + "; ".join(
            f"{method_name(m)}: {metrics[m]['message']}" for m in failed)
    return "finished", f"labels from {done}"


def _follows_of_others(data: AnnotationSet, model: Any, metrics: dict[str, dict[str, Any]],
                       labels_by_method: dict[str, pd.Series], trained: Sequence[str]) -> None:
    """Each method not trained here (the classic ones) whose labels follow a dependence cluster the trained model
    found: ``metrics[method]["followed"]``, as a model's selection summary holds it (the workers, their agreement with
    the labels, the other workers'). One-coin Dawid-Skene and MACE gave a copied pair's labels, 99.8% alike, at 72.40%
    where majority vote was 90.47, beside a group the same page named, without a word (walkthrough 128)."""
    from deem_core.analysis.diagnostics.quality import labels_followed  # noqa: PLC0415

    found = (getattr(model, "selection_summary_", None) or {}).get("clusters") if model is not None else None
    if not (found or {}).get("clusters"):
        return
    for method, labels in labels_by_method.items():
        if method in trained or method not in metrics:
            continue
        codes = data.classes.get_indexer(labels.reindex(data.tasks).astype(object).to_numpy())
        followed = labels_followed(found, data, codes)
        if followed:
            metrics[method]["followed"] = [{"workers": [str(w) for w in members], "agreement": float(inside),
                                            "others": float(outside)} for members, inside, outside in followed]


def _save_comparison(ctx: JobContext, metrics: dict[str, dict[str, Any]], labels_by_method: dict[str, pd.Series],
                     primary_model: Any, primary_codes: np.ndarray | None) -> None:
    """What a train run stores beside each method's labels: the worker table (against the first trained model's
    labels, else the first method's), the metrics, the agreement between methods and the run's summary."""
    from deem_core.analysis.agreement import method_agreement, worker_table  # noqa: PLC0415

    data, store = ctx.data, ctx.store
    if primary_codes is None:
        first = next(iter(labels_by_method.values()))
        primary_codes = data.classes.get_indexer(first.reindex(data.tasks).to_numpy())
    store.save_table(ctx.run_id, "workers", worker_table(data, primary_codes, primary_model))
    store.save_json(ctx.run_id, "metrics", metrics)
    agreement = method_agreement(labels_by_method)
    store.save_json(ctx.run_id, "comparison", {"methods": list(agreement.index),
                                                "agreement": agreement.to_numpy().tolist()})
    summary = {"methods": list(labels_by_method)}
    for method, entry in metrics.items():
        if entry.get("accuracy") is not None and not (isinstance(entry["accuracy"], float)
                                                      and math.isnan(entry["accuracy"])):
            summary[f"accuracy_{method}"] = entry["accuracy"]
            summary["gold_tasks"] = entry.get("gold_tasks")
        returned = safety_rule_reference(((entry.get("selection") or {}).get("fallback")))
        if returned:  # whose labels these are, for the runs list
            summary[f"labels_from_{method}"] = returned
        for key in ("layers", "start"):  # what was used, for the runs list (it showed "auto"; walkthrough 28)
            if entry.get(key) is not None:
                summary[f"{key}_{method}"] = entry[key]
        if entry.get("status") == "cancelled" and entry.get("epochs") is not None:
            # the epochs trained before the cancel, for the runs list (it said the 100 asked of a training cancelled
            # after 12; walkthrough 126)
            summary[f"epochs_{method}"] = int(entry["epochs"])
    store.update_summary(ctx.run_id, **summary)


def _run_sweep(ctx: JobContext) -> tuple[str, str]:
    """A batched learning-rate sweep (``deem_core.methods.sweep``); curves and recommendation go to the store.

    ``config["sample_tasks"]``: sweep a random sample of that many tasks (seeded by ``seed``) instead of
    all of them (large data: the curves of a sample show the same learning rates at a fraction of the
    time). A sweep that stops early (cancelled) stores ``partial: true``: its verdicts read incomplete
    curves and the dashboard does not present them as a recommendation."""
    cfg, data, store, progress = ctx.config, ctx.data, ctx.store, ctx.progress
    if data is None:
        raise DataError("no annotations were given to this sweep")
    if data.n_classes < 2:
        raise DataError(f"{data.source}: only one class was given; there is nothing to aggregate")
    swept, batch_size = sweep_sample(data, cfg.get("sample_tasks"), int(cfg.get("seed", 0)), cfg.get("batch_size"))
    epochs = int(cfg["epochs"])
    progress.start_phase("sweeping learning rates" + (f" on {swept.n_tasks:,} of {data.n_tasks:,} tasks"
                                                      if swept is not data else ""), epochs, "epoch",
                         uniform=True)  # (every rate trains in one batched model: epochs of one cost)
    lrs = cfg.get("lrs")
    recorder = _HistoryRecorder(store, ctx.run_id)
    try:
        result = run_sweep(swept, lrs=list(lrs) if lrs else None, epochs=epochs,
                           n_layers=int(cfg["n_layers"]), n_seeds=int(cfg.get("n_seeds", 1)),
                           seed=int(cfg.get("seed", 0)), device=ctx.device, batch_size=batch_size,
                           callbacks=[_ProgressCallback(progress, recorder)], stop_event=ctx.cancel_event)
    except BaseException:  # (a failed sweep's curves so far, every row: its page reads them from the store)
        recorder.flush()
        raise
    recorder.clear()  # (the sweep's own table replaces its rows: not held beside it while it is made and saved)
    curves = pd.DataFrame(result.curves)
    store.save_history(ctx.run_id, curves)
    runs_table = getattr(result, "runs", None)
    if isinstance(runs_table, pd.DataFrame):
        store.save_table(ctx.run_id, "sweep_runs", runs_table)
    epochs_done = int(curves["epoch"].max()) if len(curves) and "epoch" in curves else 0
    partial = epochs_done < epochs
    payload = result.recommendation.to_dict()  # the one serialiser, as `deem sweep` writes it
    payload.update(partial=partial, epochs_done=epochs_done, epochs_planned=epochs, n_tasks=data.n_tasks,
                   sample_tasks=swept.n_tasks if swept is not data else None, batch_size=batch_size,
                   # the settings `deem sweep` records beside it (the dashboard's file had none; walkthrough 134)
                   **recorded_settings({**cfg, "lrs": list(lrs) if lrs else None, "epochs": epochs,
                                        "smoothing": payload.get("smoothing")}))
    if partial:  # no recommendation, as the page says: the file said "lr": 0.03, "recommended" (walkthrough 134)
        best = payload.get("lr")
        payload["best_so_far"], payload["lr"], payload["settled"] = best, None, False
        # nor a pick in its words ("so a tentative pick" stood in the best row and the file's reasons; walkthrough 135)
        payload["reason"] = (f"a partial sweep (stopped after {epochs_done:,} of {epochs:,} epochs): no recommendation"
                             + (f"; the best so far: {best:g}" if best is not None else ""))
        payload["tentative_reason"] = ""
        for verdict in (payload.get("verdicts") or {}).values():
            if isinstance(verdict, dict) and verdict.get("verdict") in ("recommended", "tentative"):
                verdict["verdict"] = "best so far"
                verdict["reason"] = PICK_WORDS.sub("", str(verdict.get("reason") or ""))
    store.save_json(ctx.run_id, "recommendation", payload)
    store.update_summary(ctx.run_id, recommended_lr=None if partial else payload["lr"], partial=partial,
                         tentative=not payload["settled"] or bool(payload["fallback"]),
                         sample_tasks=payload["sample_tasks"],
                         lrs=sorted({float(x) for x in curves["lr"]}) if "lr" in curves else [])
    if ctx.cancel_event.is_set() or partial:
        return "cancelled", (f"cancelled after {epochs_done} of {counted(epochs, 'epoch')}; the curves so far are kept, "
                             f"with no recommendation")
    return "finished", f"{counted(epochs_done, 'epoch')} of {counted(len(result.lrs) * len(result.seeds), 'run')}"


def _run_diagnostics(ctx: JobContext) -> tuple[str, str]:
    """Per-layer mutual information, worker importance and worker quality of a stored DEEM model.

    config: ``source_run`` (a training run id), ``method`` (``deem``/``irbm``), optional ``subset_classes``
    and ``subset_by`` (``gold``/``predicted``). The tables go to ``<run>/diagnostics/`` (CSV + report.html), the
    result object to ``<run>/diagnostics_state/``, from where the dashboard reads it (:func:`load_diagnostics_result`).
    """
    from deem_core.analysis.diagnostics import run_diagnostics  # noqa: PLC0415
    from deem_core.plots.report import write_diagnostics  # noqa: PLC0415

    cfg, store, progress = ctx.config, ctx.store, ctx.progress
    # the run's answers, when the page passed none, through the shared copy the data ledger counts (a copy of its
    # own per job was outside every bound; attack round 24)
    source = store.load(str(cfg["source_run"]), with_data=False, with_gold=ctx.data is None)
    if ctx.data is None:
        from deem_studio import capacity  # noqa: PLC0415

        source.data = capacity.run_data(store, source.run_id)[0]
    method = str(cfg.get("method", "deem"))
    progress.update(phase=f"loading the {method_name(method)} model of run {source.run_id}")
    model = source.load_model(method, device=ctx.device)
    if model is None:
        raise ValueError(f"run {source.run_id} has no fitted {method} model (diagnostics need DEEM or iRBM)")
    data = ctx.data if ctx.data is not None else source.data
    # the run's stored gold labels only for its owner: a link's visitor whose session could not load the run's data
    # (the server busy, its data budget full) computed diagnostics from the stored answers and gold labels, and saw
    # every worker's accuracy and confusion against them (attack round 16)
    owners_match = store.get(ctx.run_id).get("owner") == source.record.get("owner")
    gold = ctx.gold if ctx.gold is not None else source.gold if owners_match else None
    if data is None:
        raise DataError(f"run {source.run_id}: its annotations are not stored")
    _check_cancel(ctx)
    subset_classes = cfg.get("subset_classes") or None
    if subset_classes is not None:
        wanted = {str(c) for c in subset_classes}
        subset_classes = [c for c in data.classes if str(c) in wanted]
    by = cfg.get("subset_by") or None
    if by == "gold" and (gold is None or not len(gold)):
        by = "predicted"
    def tell(phase: str, done: int, total: int) -> None:
        """run_diagnostics' progress: a new phase, or the importance's tasks done (the long part)."""
        if phase != progress.phase:
            progress.start_phase(phase, total, "task" if total > 1 else "step")
        if done > progress.phase_done:
            progress.add_rows([], steps=done - progress.phase_done)
        _check_cancel(ctx)

    # the importance on a sample of tasks and on one run, as the mutual information and the quality: on every task
    # and all 16 seeds of 6 layers a 100 KB upload held the server's CPU slot for its 2 hours (attack round 6)
    from deem_core.analysis.diagnostics._common import usable_runs  # noqa: PLC0415
    from deem_core.methods.clusters import clusters_for_diagnostics  # noqa: PLC0415

    from deem_core.analysis.diagnostics import check_diagnostics_size  # noqa: PLC0415

    # against this server's bound for one job, as a training is (half the machine let a 27 KB upload's diagnostics,
    # estimated at 3.8 GB, take the server past 5.4 GB; attack round 67)
    check_diagnostics_size(model, data, memory_bytes=job_memory_bound())
    result = run_diagnostics(model, data, gold=gold if gold is not None and len(gold) else None,
                             subset_classes=subset_classes, subset_by=by,
                             max_tasks=cfg.get("max_tasks", DIAGNOSTICS_MAX_TASKS), progress=tell,
                             importance_runs=usable_runs(model)[:1],
                             clusters=clusters_for_diagnostics(model, data, stop=ctx.cancel_event))
    _check_cancel(ctx)
    returned = source.summary.get(f"labels_from_{method}")
    of = f"run {source.run_id} ({method_name(method)}" + (f", labels from {returned})" if returned else ")")
    write_diagnostics(result, store.run_dir(ctx.run_id) / "diagnostics", title=f"DEEM diagnostics of {of}",
                      lead=returned_model_sentence(source.run_id, method_name(method), returned) if returned else None)
    save_diagnostics(store.run_dir(ctx.run_id) / "diagnostics_state", result)
    for note in result.notes:
        progress.add_message(note)
    # the result is read back from the run folder by the pages (one shared copy, counted by the data ledger while a
    # page holds it), never kept in the job: each finished job held its own until 256 more had run, 60 MB a run of
    # 900 workers, up to the mutual information's 512 MB bound, counted nowhere (attack round 58)
    store.update_summary(ctx.run_id, source_run=source.run_id, method=method,
                         seconds={k: round(v, 3) for k, v in result.seconds.items()})
    return "finished", f"diagnostics of {of}"


def returned_model_sentence(run_id: str, name: str, returned: str) -> str:
    """What a model's diagnostics explain when its run's labels are the safety rule's reference ``returned``."""
    from deem_core.analysis.selection import returned_model_note  # noqa: PLC0415

    return returned_model_note(name, returned, f"run {run_id}'s {name} labels (on Results and in its downloads)")


#: tasks per subset the dashboard's worker importance is estimated on (a random sample beyond it, said in a note)
DIAGNOSTICS_MAX_TASKS = 2000


def load_diagnostics_result(store: RunStore, run_id: str) -> Any | None:
    """The diagnostics result of a finished "diagnostics" run, read back from its folder (None if absent)."""
    return load_diagnostics(store.run_dir(run_id) / "diagnostics_state")


register_kind("train", _run_train, device=_train_device, steps=_train_steps)
register_kind("sweep", _run_sweep)
register_kind("diagnostics", _run_diagnostics, steps=lambda config, data: 1)


# --------------------------------------------------------------------------- device
def device_info() -> dict[str, Any]:
    """What the sidebar shows: ``{"type": "cuda"|"cpu", "name": ..., "free_gb": ..., "total_gb": ...}``."""
    try:
        import torch  # noqa: PLC0415

        if torch.cuda.is_available():
            index = torch.cuda.current_device()
            free, total = torch.cuda.mem_get_info(index)
            return {"type": "cuda", "name": torch.cuda.get_device_name(index), "free_gb": free / 2 ** 30,
                    "total_gb": total / 2 ** 30}
        # the thread count training uses (a fixed setting), not torch.get_num_threads(): that one is per
        # thread (OpenMP), so the page threads of the server each answered differently (1 or 2)
        from deem_core.model.training import TrainingConfig  # noqa: PLC0415

        threads = TrainingConfig().cpu_threads or torch.get_num_threads()
        return {"type": "cpu", "name": f"CPU · {os.cpu_count() or '?'} cores · training uses {threads} "
                                       f"thread{'s' if threads != 1 else ''}", "free_gb": None, "total_gb": None}
    except Exception as exc:  # noqa: BLE001
        return {"type": "cpu", "name": f"CPU (GPU query failed: {readable_error(exc)})", "free_gb": None,
                "total_gb": None}
