"""Looking inside a fitted DEEM: per-layer mutual information, worker importance, worker quality.

>>> from deem_core.analysis.diagnostics import run_diagnostics
>>> diag = run_diagnostics(model, df, gold=truth, subset_classes=[5, 6, 8])
>>> diag.mutual_information.summary()        # the paper's Table 10 (per layer, mean ± std over classes)
>>> diag.importance.pivot()                  # Fig. 5: workers x {selected, rest, all}
>>> diag.quality.table                       # agreement, confusion-based spammer score, flags
>>> deem_core.plots.report.write_diagnostics(diag, "out/")   # CSVs + report.html

Definitions and the treatment of missing annotations are documented in the submodules
:mod:`.mutual_information`, :mod:`.importance` and :mod:`.quality`. Nothing here imports a UI library;
the figures live in :mod:`deem_core.plots.diagnostics` and the report writer in :mod:`deem_core.plots.report`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from deem_core.analysis.diagnostics._common import GOLD_SOURCE, PREDICTED_SOURCE, prepare, short_class_source
from deem_core.analysis.diagnostics.importance import ImportanceResult, TaskSubset, worker_importance, leave_one_out_drops, select_tasks
from deem_core.analysis.diagnostics.mutual_information import (
    DEFAULT_MIN_COMMON, MutualInformationResult, contingency_tables, layer_argmax_codes, layer_names,
    mutual_information_from_counts, mutual_information_matrix, per_layer_mutual_information,
)
from deem_core.analysis.diagnostics.quality import QualityResult, empirical_confusion, irbm_confusion, worker_quality, spammer_score

__all__ = [
    "DEFAULT_MIN_COMMON", "Diagnostics", "GOLD_SOURCE", "ImportanceResult", "MutualInformationResult",
    "PREDICTED_SOURCE", "QualityResult", "check_diagnostics_size", "TaskSubset", "contingency_tables", "empirical_confusion",
    "irbm_confusion", "layer_argmax_codes", "layer_names", "worker_importance", "worker_quality",
    "leave_one_out_drops", "mutual_information_from_counts", "mutual_information_matrix",
    "per_layer_mutual_information", "run_diagnostics", "select_tasks", "short_class_source", "spammer_score",
]


@dataclass
class Diagnostics:
    """Everything ``deem diagnose`` writes; ``seconds``: wall time of each part."""

    mutual_information: MutualInformationResult
    importance: ImportanceResult
    quality: QualityResult
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


#: bytes one row of a long table of the diagnostics takes in pandas (worker names, class, kind, value, count)
LONG_ROW_BYTES = 100


def check_diagnostics_size(model, data: Any, memory_bytes: int | None = None) -> dict[str, int]:
    """Refuse (DataError) diagnostics that would not fit, before anything is computed: returns the estimated
    bytes of their largest parts otherwise. The parts that grow without a bound of their own: the leave-one-out
    copies of the task with the most answers (worker importance: a^3 K^2 per task and layer, and a batch holds at
    least one task), the (d, K, K) confusion matrices (about eight float64 copies while the quality is scored),
    and their long table of d K^2 rows per kind (the CSV download). The mutual information bounds itself
    (:data:`MI_MAX_BYTES`). ``memory_bytes``: the budget (default: half the machine's memory, as training)."""
    from deem_core.analysis.diagnostics._slots import leave_one_out_bytes  # noqa: PLC0415
    from deem_core.data.annotations import DataError  # noqa: PLC0415
    from deem_core.data.formats.limits import describe_bytes  # noqa: PLC0415
    from deem_core.model.sizes import memory_budget  # noqa: PLC0415

    data = prepare(model, data)
    net = model.network_
    d, k = data.n_workers, data.n_classes
    counts = data.answers_per_task()
    most = int(counts.max()) if counts.size else 0
    parts = {
        f"leave-one-out copies of a task with {most:,} answers": leave_one_out_bytes(net.n_runs, most, k, net.n_layers),
        "confusion matrices": 8 * 8 * d * k * k,
        "their table (the download)": LONG_ROW_BYTES * 3 * d * k * k,
    }
    budget = int(memory_bytes) if memory_bytes is not None else memory_budget()
    largest = max(parts, key=parts.get)
    if parts[largest] > budget:
        raise DataError(f"{data.source}: diagnostics of {d:,} workers x {k:,} classes would need about "
                        f"{describe_bytes(parts[largest])} for the {largest}, but {describe_bytes(budget)} is available; they are made "
                        f"for tens of classes (merge rare classes, or diagnose a sample of the workers or tasks)")
    return parts


def run_diagnostics(model, data: Any, gold: Any = None, subset: TaskSubset | None = None,
                    subset_classes: Sequence[Any] | None = None, subset_by: str | None = None,
                    subset_worker: Any = None, subset_label: Any = None, run: int | None = None,
                    min_common: int = DEFAULT_MIN_COMMON, max_tasks: int | None = None,
                    progress: Callable[[str, int, int], None] | None = None,
                    importance_runs: Sequence[int] | None = None, clusters: dict | None = None) -> Diagnostics:
    """All three diagnostics of a fitted model on its annotations.

    The importance subset is ``subset`` if given, else built by :func:`select_tasks` from
    ``subset_classes`` (+ ``subset_by``: ``gold`` / ``predicted``; default gold when ``gold`` is given) or
    ``subset_worker`` + ``subset_label``; with none of them only the ``all`` row is computed. ``subset_by`` also
    says how the mutual information groups the tasks by class: ``"predicted"`` groups them by the model's labels
    even when ``gold`` is given (the Diagnostics page's "Classes from"; it was read for the importance only and the
    mutual information stayed on the gold tasks, walkthrough 62); the worker quality is against ``gold`` either way.
    ``progress(phase, done, total)`` is told each part as it starts ("mutual information", "worker importance",
    "worker quality"; 0 of 1) and the importance's tasks as they are done (the longest part on large data).
    ``max_tasks`` and ``importance_runs`` (default: every usable run) bound the importance's work: each task costs
    a^3 K^2 per layer and run. ``clusters``: dependence clusters found for these diagnostics, flagged in the quality
    table when the model did not look for them (:func:`worker_quality`).
    """
    from deem_core.analysis.diagnostics._common import usable_runs  # noqa: PLC0415

    data = prepare(model, data)
    check_diagnostics_size(model, data)
    seconds = {}
    tell = progress or (lambda phase, done, total: None)
    tell("mutual information", 0, 1)
    started = time.perf_counter()
    mi = per_layer_mutual_information(model, data, gold=None if subset_by == "predicted" else gold, run=run,
                                      min_common=min_common)
    seconds["mutual_information"] = time.perf_counter() - started
    started = time.perf_counter()
    if subset is None and (subset_classes is not None or subset_worker is not None):
        subset = select_tasks(model, data, classes=subset_classes, by=subset_by, gold=gold,
                              worker=subset_worker, label=subset_label)
    importance = worker_importance(model, data, subset=subset, max_tasks=max_tasks, progress=progress,
                                   runs=importance_runs)
    seconds["importance"] = time.perf_counter() - started
    tell("worker quality", 0, 1)
    started = time.perf_counter()
    quality = worker_quality(model, data, gold=gold, run=usable_runs(model)[0] if run is None else run,
                             clusters=clusters)
    seconds["quality"] = time.perf_counter() - started
    notes = list(data.warnings) + mi.notes + importance.notes + quality.notes
    return Diagnostics(mutual_information=mi, importance=importance, quality=quality, seconds=seconds, notes=notes)
