"""Reading inputs into an :class:`~deem_core.data.annotations.AnnotationSet`: detection, the "read as" note,
limits, gold labels, truth files and the bounded preview. (The rules: :mod:`deem_core.data.formats`.)"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Mapping, Sequence

import numpy as np
import pandas as pd

from deem_core.data.annotations import AnnotationSet, BeyondLimitError, DataError
from deem_core.data.formats import dialects as _d
from deem_core.data.formats.dialects import (DIALECTS, LAYOUTS, SOFT_PREFIX, Collector, Plan, describe_times, extract,
                                            plan_table)
from deem_core.data.formats.labelstudio import (
    LabelStudioContext, iter_json, json_kind, preview_value, read_json_records, read_label_studio, worker_of,
)
from deem_core.data.formats.limits import PREVIEW_BYTES, Limits
from deem_core.data.formats.sources import Budget, Source, read_head, release_memory, sources_of
from deem_core.data.formats.tables import CsvTable, FrameTable, ParquetTable, Table, concat_parts, cut_for_display
from deem_core.data.formats.text import TextStream
from deem_core.data.formats.values import check_value_lengths, missing_mask, plain, type_text
from deem_core.data.text import counted, escape_controls, is_are, quoted_list, shortened

__all__ = [
    "FORMATS", "Preview", "Reading", "align_truth", "detect_format", "preview", "read_annotations", "read_dataset",
    "read_table", "read_truth",
]

#: every value of ``format=`` (hyphens are accepted for underscores)
FORMATS = ("auto", *LAYOUTS, "mturk", "toloka", "label_studio", "label_studio_min", "label_studio_csv")
FORMAT_TITLES = {**DIALECTS, "label_studio": "Label Studio JSON export", "auto": "detected"}
_SNIFF = 1 << 16
_BINARY_SIGNATURES = (
    (b"PK\x03\x04", "a ZIP archive or an Excel workbook (.xlsx)"),
    (b"\xd0\xcf\x11\xe0", "an old Excel workbook (.xls)"),
    (b"%PDF", "a PDF document"),
    (b"SQLite format 3", "an SQLite database"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
)


def _format(format: str) -> str:
    fmt = str(format).replace("-", "_").lower()
    if fmt == "per_worker":
        fmt = "per_annotator"
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {format!r}")
    return fmt


# ---------------------------------------------------------------------------------------------- opening
@dataclass
class _Opened:
    source: Source
    container: str  # frame, csv, parquet, json
    table: Table | None = None
    json_kind: str | None = None  # label_studio, label_studio_min, records


def _container(source: Source) -> tuple[str, str | None]:
    """('parquet' | 'json' | 'csv', json kind) from the first bytes; refuses binary content."""
    head = read_head(source, _SNIFF)
    if not head.strip():
        raise DataError(f"{source.name}: the file is empty")
    if head.startswith(b"PAR1"):
        return "parquet", None
    for signature, what in _BINARY_SIGNATURES:
        if head.startswith(signature):
            raise DataError(f"{source.name}: is {what}, not CSV text; save the annotations as CSV (.csv or .csv.gz), "
                            f"JSON or Parquet")
    utf16 = head.startswith((b"\xff\xfe", b"\xfe\xff"))
    if not utf16:
        nul = head.find(b"\x00")
        if nul >= 0:
            raise DataError(f"{source.name}: does not look like CSV text (binary content: a NUL byte at offset "
                            f"{nul}); save the annotations as CSV (.csv or .csv.gz)")
        stripped = head.removeprefix(b"\xef\xbb\xbf").lstrip()
        if stripped[:1] in (b"[", b"{"):
            return "json", None
    return "csv", None


def _open(source: Source, limits: Limits, budget: Budget | None, preview: bool = False) -> _Opened:
    if source.frame is not None:
        return _Opened(source, "frame", FrameTable(source.name, source.frame, typed=True, budget=budget))
    container, _ = _container(source)
    if container == "parquet":
        with source.raw() as handle:
            compressed = handle.read(2) == b"\x1f\x8b"
        if compressed:
            raise DataError(f"{source.name}: a gzip-compressed Parquet file; Parquet compresses its own columns: "
                            f"give the .parquet file itself")
        return _Opened(source, "parquet", ParquetTable(source, limits, budget))
    if container == "json":
        return _Opened(source, "json", None, _json_kind_of(source, limits))
    return _Opened(source, "csv", CsvTable(source, limits, budget, stop_after=PREVIEW_BYTES if preview else None))


def _json_kind_of(source: Source, limits: Limits) -> str:
    """What a JSON file holds, from its first element (or, when that is too large for a look, from the
    keys in its first 64 KiB)."""
    try:
        with TextStream(source, limits, stop_after=PREVIEW_BYTES, line_limit=False) as text:
            # (not cut short: a first task past the preview's bytes fails here and is told by its keys below; read as
            # cut, it looked like no element and the export was taken for records; attack round 25)
            first = next(iter(iter_json(text, source.name, limits, max_items=1)), (0, None))[1]
        return json_kind(first)
    except DataError:
        head = read_head(source, _SNIFF).decode("utf-8", errors="replace")
        keys = set(re.findall(r'"([A-Za-z_]+)"\s*:', head))
        if keys & {"annotations", "predictions", "completions", "data"}:
            return "label_studio"
        return "label_studio_min" if {"annotator", "annotation_id"} <= keys else "records"


def _json_table(opened: _Opened, limits: Limits, budget: Budget | None, max_items: int | None = None) -> Table:
    return read_json_records(opened.source, limits, budget, opened.json_kind or "records", max_items=max_items)


def _effective(opened: _Opened, fmt: str) -> str:
    """The format an opened source is read as (``fmt`` forced, else detected)."""
    if opened.container == "json" and opened.json_kind == "label_studio":
        if fmt not in ("auto", "label_studio"):
            raise DataError(f"{opened.source.name}: is a Label Studio JSON export (a list of tasks), not "
                            f"{FORMAT_TITLES.get(fmt, fmt)}; read it with format label-studio")
        return "label_studio"
    if fmt == "label_studio":
        raise DataError(f"{opened.source.name}: is not a Label Studio JSON export (a list of tasks with annotations); "
                        f"for its CSV or JSON-MIN export use format label-studio-csv or label-studio-min")
    if fmt != "auto":
        return fmt
    if opened.container == "json" and opened.json_kind == "label_studio_min":
        return "label_studio_min"
    detected = _d.detect_dialect(opened.table.header) if opened.table is not None else None
    return detected or "auto"


# ---------------------------------------------------------------------------------------------- result types
@dataclass
class Reading:
    """What a read gives: the annotation set, the format it was read as and the note saying so, gold labels
    the export carried (Label Studio ground truth, Toloka golden answers) and what a Label Studio
    predictions file needs to go back."""

    data: AnnotationSet
    format: str
    note: str
    gold: pd.Series | None = None
    label_studio: LabelStudioContext | None = None
    plans: list[Plan] = field(default_factory=list)


@dataclass
class Preview:
    """What the dashboard shows before loading: raw cells of the first rows, the detected format, the
    chosen columns and the candidates for each role."""

    name: str
    frame: pd.DataFrame
    layout: str | None  # the format read as (None when it could not be decided: see ``problem``)
    columns: dict[str, Any]
    delimiter: str | None
    encoding: str | None
    warnings: list[str]
    problem: str | None = None
    note: str | None = None
    choices: dict[str, list[str]] = field(default_factory=dict)
    container: str = "csv"
    has_predictions: bool = False

    @property
    def format(self) -> str | None:
        return self.layout


# ---------------------------------------------------------------------------------------------- reading
def _not_text(function: Callable) -> Callable:
    """DataError instead of the UnicodeEncodeError of a value that is no text: a JSON escape of half a character
    (a lone surrogate, ``"\\ud800"``) parses into a Python string that no UTF-8 table can hold (attack round of
    the eighth session: the command line called it a bug)."""
    @functools.wraps(function)
    def wrapped(sources: Any, *args: Any, **kwargs: Any):
        try:
            return function(sources, *args, **kwargs)
        except UnicodeEncodeError as exc:
            bad = exc.object[exc.start:exc.end] if isinstance(exc.object, str) else "?"
            names = ", ".join(s.name for s in sources_of(sources))
            raise DataError(f"{names}: a value holds {escape_controls(bad)}, half of a character (an escaped lone "
                            f"surrogate), not text: write the character whole or remove it") from None
    return wrapped


@_not_text
def read_dataset(sources: Any, format: str = "auto", columns: Mapping[str, Any] | None = None,
                 on_conflict: str = "error", soft: Any = None, classes: Sequence[Hashable] | None = None,
                 keep_missing: bool = False, predictions: bool = True, limits: Limits | None = None) -> Reading:
    """Read annotation file(s) (rules: :mod:`deem_core.data.formats`) -> :class:`Reading`.

    The memory the read freed goes back to the system as it returns or refuses (:func:`release_memory`): a refusal
    is raised anew, without the frames of the read (its traceback held them, and with them what was read)."""
    failure: DataError | None = None
    try:
        reading = _read_dataset(sources, format, columns, on_conflict, soft, classes, keep_missing, predictions,
                                limits)
    except DataError as exc:
        failure = exc.anew()
    release_memory()
    if failure is not None:
        raise failure
    return reading


def _read_dataset(sources: Any, format: str, columns: Mapping[str, Any] | None, on_conflict: str, soft: Any,
                  classes: Sequence[Hashable] | None, keep_missing: bool, predictions: bool,
                  limits: Limits | None) -> Reading:
    fmt = _format(format)
    limits = limits or Limits.from_env()
    given = sources_of(sources)
    budget = Budget(limits, several=len(given) > 1)
    opened = [_open(source, limits, budget) for source in given]
    formats = [_effective(o, fmt) for o in opened]
    if "label_studio" in formats:
        if len(opened) > 1:
            raise DataError("a Label Studio JSON export is read on its own: give one file")
        _no_ignore(opened[0], columns)
        return _read_label_studio(opened[0], limits, budget, columns, predictions, keep_missing, on_conflict,
                                  classes)
    tables = [o.table if o.table is not None else _json_table(o, limits, budget) for o in opened]
    soft_arg = soft if soft is not True else SOFT_PREFIX
    plans: list[Plan] = []
    for table, source, form in zip(tables, given, formats):
        sample = table.peek(200) if form not in LAYOUTS and form != "auto" else None
        try:
            plans.append(plan_table(table, form, columns, soft_arg, sample=sample, stem=source.stem))
        except BeyondLimitError:
            raise
        except DataError as exc:  # (a wide file named long: "missing column(s) 'worker', 'label'", whose advice,
            # columns picked by hand, read a worker's labels as worker names; walkthrough 112)
            hint = _layout_hint(fmt, [table], [], [source], soft_arg) if not columns else None
            if hint is None:
                raise
            raise DataError(f"{hint} {getattr(exc, 'finding', None) or exc}") from None
    if soft is True and not all(p.soft for p in plans):
        bad = next(t.name for t, p in zip(tables, plans) if not p.soft)
        raise DataError(f"{bad}: soft labels were asked for but there are no {SOFT_PREFIX}<class> columns")
    if fmt == "auto" and len(tables) > 1 and all(p.format == "wide" and len(p.annotators) == 1 for p in plans) \
            and len({p.annotators[0] for p in plans}) == 1:
        plans = [Plan("per_annotator", p.task, label=p.annotators[0], choices=p.choices, worker_name=s.stem)
                 for p, s in zip(plans, given)]
    kinds = {p.format for p in plans}
    if len(kinds) > 1:
        described = ", ".join(f"{t.name} is {p.format}" for t, p in zip(tables, plans))
        raise DataError(f"the files have different layouts ({described}); give files of one layout, or name the "
                        f"layout to read them as (format=..., CLI --format)")
    kind = kinds.pop()
    if kind == "per_annotator":
        seen: dict[str, str] = {}
        for table, plan in zip(tables, plans):
            if plan.worker_name in seen:
                raise DataError(f"{table.name} and {seen[plan.worker_name]} both name the worker "
                                f"{plan.worker_name!r} (one file per worker, named after the worker)")
            seen[plan.worker_name] = table.name
    soft_names = sorted({c for p in plans for c in p.soft}, key=str)
    if kind == "long" and soft_names and len({tuple(p.soft) for p in plans}) > 1:
        raise DataError("the files have different soft-label columns: " +
                        "; ".join(f"{t.name}: {p.soft}" for t, p in zip(tables, plans)))
    for table in tables:
        if table.kind != "frame" and not table.header:
            raise DataError(f"{table.name}: no columns")

    try:
        return _read_tables(tables, plans, kind, keep_missing, budget, soft, on_conflict, classes, limits)
    except BeyondLimitError:
        raise
    except DataError as exc:
        hint = _layout_hint(fmt, tables, plans, given, soft_arg)
        if hint is None:
            raise
        # the layout first, and the finding without its advice: "keep one answer per pair (CLI --on-conflict)",
        # followed, trained on worker names as labels (walkthroughs 111 and 112)
        raise DataError(f"{hint} {getattr(exc, 'finding', None) or exc}") from None


def _layout_hint(fmt: str, tables: Sequence[Table], plans: Sequence[Plan], given: Sequence[Source],
                 soft: Any) -> str | None:
    """Where a layout was named and the read failed: how the first file reads with none named, when that is another
    layout (``--format wide`` on a long file gave "2,797 (task, worker) pairs have conflicting labels, e.g. task ... by
    worker 'worker'", whose advice trained on the worker names as labels; walkthrough 110); else None."""
    if fmt not in LAYOUTS or not tables:
        return None
    table = tables[0]
    cols = [c for c in table.header if c != ""] if table.kind == "csv" else list(table.header)
    try:
        detected = _d.detect_dialect(cols) or "auto"
        found = detected if detected not in LAYOUTS and detected != "auto" else \
            _d.plan_layout(table.name, cols, detected, None, soft, stem=given[0].stem).format
    except DataError:
        return None
    if found == fmt or (plans and found == plans[0].format):
        return None
    return (f"{table.name} was read as the {DIALECTS.get(fmt, fmt)} asked for, and with no layout named it reads as "
            f"{DIALECTS.get(found, found)}: check the format chosen first. Read as asked:")


def _read_tables(tables: Sequence[Table], plans: Sequence[Plan], kind: str, keep_missing: bool, budget: Budget,
                 soft: Any, on_conflict: str, classes: Sequence[Hashable] | None, limits: Limits) -> Reading:
    """The answers of ``tables`` read by their ``plans`` (one layout, ``kind``), as a :class:`Reading`."""
    collector = Collector(keep_missing, budget)
    warnings: list[str] = []
    for table, plan in zip(tables, plans):
        rows_before = len(collector.text_parts) + len(collector.typed_parts)
        n_rows = 0
        table.expect_short(plan.roles)
        for chunk in table.chunks(plan.needed):
            n_rows += len(chunk)
            extract(table, chunk, plan, collector)
        if not n_rows:
            shown = ", ".join(str(c) for c in table.header)
            raise DataError(f"{table.name}: has a header ({shown}) but no rows of annotations")
        warnings.extend(table.notes)
        if isinstance(table, CsvTable):
            warnings.extend(table.cleaning_notes())
        if plan.format in LAYOUTS and plan.extra:
            warnings.append(f"{table.name}: ignored {'column' if len(plan.extra) == 1 else 'columns'} {quoted_list(plan.extra)}")
        if plan.format == "wide" and plan.times:
            warnings.append(f"{table.name}: left out {counted(len(plan.times), 'column')} of dates or times, which {'is not a label' if len(plan.times) == 1 else 'are not labels'} "
                            f"({describe_times(plan.times)})")
        if plan.format == "wide" and plan.notes:
            warnings.append(f"{table.name}: left out {counted(len(plan.notes), 'column')} of notes or item text, "
                            f"which {'is not a worker' if len(plan.notes) == 1 else 'are not workers'} "
                            f"({describe_times(plan.notes)})")
        if plan.format == "wide":
            present = collector.__dict__.get("_wide_present", {})
            empty = [c for c in plan.annotators if not present.get((table.name, c), False)]
            if empty:
                shown = quoted_list(empty, 5)
                warnings.append(f"{table.name}: ignored {counted(len(empty), 'worker column')} with no labels: {shown}")
            if len(empty) == len(plan.annotators):
                raise DataError(f"{table.name}: no annotations (every worker column is empty)")
            count, first = collector.__dict__.get("_wide_unanswered", {}).get(table.name, (0, None))
            if count:
                warnings.append(f"{table.name}: left out {counted(count, 'row')} with no answer in any worker column (the "
                                f"first for task {plain(first)!r})")
        del rows_before
        if hasattr(table, "close"):
            table.close()
    return _finish(collector, tables, plans, kind, warnings, soft, on_conflict, classes, None, limits=limits)


def _no_ignore(opened: _Opened, columns: Mapping[str, Any] | None) -> None:
    """A Label Studio JSON export has no columns to leave out: refused, as a platform CSV's (read 49)."""
    if (columns or {}).get("ignore"):
        raise DataError(_d.IGNORE_LAYOUTS.format(name=opened.source.name, what="a Label Studio JSON export"))


def _read_label_studio(opened: _Opened, limits: Limits, budget: Budget, columns: Mapping[str, Any] | None,
                       predictions: bool, keep_missing: bool, on_conflict: str, classes: Sequence[Hashable] | None
                       ) -> Reading:
    collector = Collector(keep_missing, budget)
    read = read_label_studio(opened.source, limits, budget, collector, columns, predictions)
    return _finish(collector, [read.table], [read.plan], "label_studio", list(read.table.notes), None, on_conflict,
                   classes, read.context, note=read.note, limits=limits)


def _source_name(tables: Sequence[Table]) -> str:
    names = [t.name for t in tables]
    if len(names) <= 3:
        return ", ".join(names)
    return f"{len(names)} files ({', '.join(names[:2])}, ...)"


def merged_warnings(source: str, role: str, typed: pd.Series) -> list[str]:
    """What typing made one value of a role's texts (:func:`values.type_text`'s ``attrs["merged"]``), in a warning."""
    groups = typed.attrs.get("merged") or []
    if not groups:
        return []
    sizes = typed.attrs.get("merged_sizes") or [len(group) for group in groups]
    shown = "; ".join(" and ".join([repr(shortened(v, 30)) for v in group]
                                   + ([f"{size - len(group):,} more"] if size > len(group) else []))
                      for group, size in zip(groups, sizes))
    count = int(typed.attrs.get("merged_count") or len(groups))
    more = f" ({count:,} such groups in all)" if count > len(groups) else ""
    return [f"{source}: {role} values {shown} are read as one{more}: a spreadsheet-safe download puts a quote before "
            f"a value a spreadsheet would run as a formula, and reading it back takes the quote off"]


def _finish(collector: Collector, tables: Sequence[Table], plans: Sequence[Plan], kind: str, warnings: list[str],
            soft: Any, on_conflict: str, classes: Sequence[Hashable] | None, context: LabelStudioContext | None,
            note: str | None = None, limits: Limits | None = None) -> Reading:
    source = _source_name(tables)
    max_chars = (limits or Limits.from_env()).max_value_chars
    text_parts, typed_parts = collector.text_parts, collector.typed_parts
    if not text_parts and not typed_parts:
        warnings = warnings + collector.skip_warnings()
        detail = f" ({'; '.join(collector.skip_warnings())})" if collector.skips else ""
        raise DataError(f"{source}: no annotations (every label is empty){detail}")
    soft_names = sorted({c for p in plans for c in p.soft}, key=str)
    soft_map: dict[Hashable, str] | None = dict(soft) if isinstance(soft, Mapping) else None

    def check_memory() -> None:  # (the tables built after the last chunk took 4x what collecting did for long
        # distinct ids: 20,000 of 9,999 characters passed at +456 MiB and peaked at +1,961; walkthrough 71)
        if collector.budget is not None:
            collector.budget.check_memory(source)

    frames = []
    merged_notes: list[str] = []  # (values the spreadsheet quote made one: said, and named in a conflict's refusal)
    if text_parts:
        combined = concat_parts([p[[c for c in p.columns]] for p in text_parts])
        check_memory()
        for role in ("task", "worker"):
            typed_role = type_text(combined[role])
            merged_notes += merged_warnings(source, role, typed_role)
            combined[role] = typed_role
            check_memory()
        if soft_names and soft_map is None:
            prefix = soft if isinstance(soft, str) else SOFT_PREFIX
            suffixes = pd.Series([str(c)[len(prefix):].strip() for c in soft_names], dtype=object)
            labels = combined["label"].astype(str) if isinstance(combined["label"].dtype, pd.CategoricalDtype) \
                else combined["label"].astype(str)
            typed = type_text(pd.concat([labels, suffixes], ignore_index=True))
            combined["label"] = typed.iloc[: len(combined)].to_numpy()
            soft_map = dict(zip(typed.iloc[len(combined):].tolist(), soft_names))
        else:
            typed_role = type_text(combined["label"])
            merged_notes += merged_warnings(source, "label", typed_role)
            combined["label"] = typed_role
        frames.append(combined)
    elif soft_names and soft_map is None:
        prefix = soft if isinstance(soft, str) else SOFT_PREFIX
        soft_map = {str(c)[len(prefix):].strip(): c for c in soft_names}
    frames.extend(p.reset_index(drop=True) for p in typed_parts)
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    check_memory()
    for role in ("task", "worker", "label"):
        if role in frame.columns:
            check_value_lengths(frame[role], role, source, max_chars)
    check_memory()
    if soft_map is not None and "label" in frame.columns and (frame["label"].astype(str) == "").all():
        frame = frame.drop(columns="label")  # soft labels only: the hard label is their argmax
    try:
        data = AnnotationSet.from_long(frame, task="task", worker="worker", label="label", soft_columns=soft_map,
                                       classes=classes, on_conflict=on_conflict, source=source)
    except DataError as exc:  # (why "=a" and "'=a" conflict was said only once the read went through; walkthrough 83)
        if not merged_notes:
            raise
        raise DataError(f"{exc} (note: {'; '.join(m.split(': ', 1)[1] for m in merged_notes)})") from None
    warnings = warnings + merged_notes
    kept_tasks = None
    if collector.dropped_tasks:
        kept_tasks = set(str(t) for t in data.tasks)
        collector.dropped_tasks = [np.asarray([str(v) for v in arr], dtype=object) for arr in collector.dropped_tasks]
    data.warnings = (warnings + collector.notes + collector.skip_warnings() + collector.missing_warnings(kept_tasks)
                     + data.warnings)
    if data.n_workers == 1 and data.n_answers:  # (a truth file loaded as the answers read as one worker, unsaid;
        # walkthrough 84)
        data.warnings.append(f"{source}: one worker ({shortened(str(data.workers[0]), 40)!r}) gave every answer: "
                             f"there is nothing to aggregate, every method returns its answers. Is this the file of "
                             f"the workers' answers, with its worker column read as the worker?")
    data.layout = kind
    gold = _gold(collector, data, max_chars)
    title = FORMAT_TITLES.get(kind, kind)
    found = gold is not None
    described = note if note is not None else (plans[0].describe(gold_found=found) if plans else "")
    if len(plans) > 1 and kind not in LAYOUTS:
        described = plans[0].describe(gold_found=found)
    if note is None and kind == "per_annotator":
        described = plans[0].describe([p.worker_name for p in plans], gold_found=found)
    elif note is None and len(plans) > 1 and kind in LAYOUTS:
        # files read alike but through other columns: each file's own (two wide files keyed by 'filepath' and by
        # 'path' were said as both from 'filepath'; walkthrough 120)
        each = [plan.describe(gold_found=found) for plan in plans]
        if len(set(each)) > 1:
            described = "; ".join(f"{escape_controls(shortened(table.name, 60))}: {text}"
                                  for table, text in zip(tables, each))
    container = {"parquet": " from Parquet", "json": " from JSON records"}.get(tables[0].kind, "") \
        if kind in LAYOUTS else ""
    reading_note = f"{source}: read as {title}{container}" + (f": {described}" if described else "")
    if gold is not None:
        # those of no class said as the load notice and the Gold labels tab say them (the line counted the file's
        # while the tab counted those used; forty-second session's read)
        of_class = int((pd.Index(data.classes).get_indexer(gold.to_numpy()) >= 0).sum())
        left = len(gold) - of_class
        reading_note += f"; {counted(len(gold), 'gold label')}" + (
            f" ({of_class:,} {is_are(of_class)} used, {left:,} {is_are(left)} not among the classes)" if left else "")
    return Reading(data, kind, reading_note, gold, context, list(plans))


def _gold(collector: Collector, data: AnnotationSet, max_chars: int) -> pd.Series | None:
    if not collector.gold_parts:
        return None
    frame = pd.concat([p.astype({"task": object, "gold": object}) for p in collector.gold_parts], ignore_index=True)
    tasks = type_text(frame["task"].astype(str))
    values = type_text(frame["gold"].astype(str))
    check_value_lengths(tasks, "task", str(frame["source"].iloc[0]), max_chars)
    check_value_lengths(values, "gold label", str(frame["source"].iloc[0]), max_chars)
    series = pd.Series(values.to_numpy(), index=pd.Index(tasks.to_numpy(), name="task"), name="truth")
    series = _merge_duplicates(series, frame["source"].iloc[0])
    aligned = align_truth(series, data)
    if aligned is not None and "control" in frame and frame["control"].eq(True).all():
        aligned.attrs["control"] = True  # a platform's control tasks (CONTROL_TASKS), said beside accuracies on them
    return aligned


def _repeated_pairs(tasks: pd.Series, values: pd.Series) -> np.ndarray:
    """True where a (task, value) row repeats an earlier one; on categorical codes as one integer key where both
    are categorical (a hash table of the distinct keys and a mask: pandas' frame-wide duplicated() took 0.6 GB
    more for 19 million rows)."""
    if isinstance(tasks.dtype, pd.CategoricalDtype) and isinstance(values.dtype, pd.CategoricalDtype):
        width = len(values.cat.categories) + 1
        key = tasks.cat.codes.to_numpy().astype(np.int64) * width + (values.cat.codes.to_numpy() + 1)
        return pd.Series(key).duplicated().to_numpy()
    return pd.DataFrame({"task": tasks.to_numpy(), "truth": values.to_numpy()}).duplicated().to_numpy()


def _merge_duplicates(series: pd.Series, name: str) -> pd.Series:
    dup = series.index.duplicated(keep=False)
    if not dup.any():
        return series
    pairs = pd.DataFrame({"task": series.index, "truth": series.to_numpy()})
    distinct = pairs.drop_duplicates()
    clash = distinct["task"].duplicated(keep=False)
    if clash.any():
        first = distinct.loc[clash, "task"].iloc[0]
        given = distinct.loc[distinct["task"] == first, "truth"].tolist()
        # the truths in words, not as a Python list ("['dog', 'cat']"; walkthrough 91), each cut and its control
        # characters escaped as the list's repr did (read 43), the task too
        def said(value: Any) -> str:
            return f"“{escape_controls(shortened(str(plain(value)), 40))}”"

        raise DataError(f"{name}: task {said(first)} has different truths: " + ", ".join(said(g) for g in given[:8])
                        + (f" and {len(given) - 8:,} more" if len(given) > 8 else ""))
    return series[~series.index.duplicated()]


def read_annotations(sources: Any, format: str = "auto", columns: Mapping[str, Any] | None = None,
                     on_conflict: str = "error", soft: Any = None, classes: Sequence[Hashable] | None = None,
                     keep_missing: bool = False, predictions: bool = True, limits: Limits | None = None
                     ) -> AnnotationSet:
    """Read annotation file(s) into an :class:`AnnotationSet` (formats and rules: :mod:`deem_core.data.formats`).

    format: ``"auto"`` or one of :data:`FORMATS` (hyphens accepted). columns: ``{"task": ..., "worker": ...,
    "label": ...}`` to name what detection would not choose (the task may be a list of columns for the
    platforms' exports). soft: None (use ``prob_<class>`` columns when there are two or more), False, True
    (require them), a prefix, or ``{class: column}``. keep_missing: keep missing-value spellings as labels.
    predictions: read Label Studio model predictions as workers. limits: :class:`Limits` (default: the
    environment). on_conflict / classes: see ``AnnotationSet.from_long``."""
    return read_dataset(sources, format, columns, on_conflict, soft, classes, keep_missing, predictions,
                        limits).data


# ---------------------------------------------------------------------------------------------- preview
@_not_text
def preview(source: Any, format: str = "auto", columns: Mapping[str, Any] | None = None, soft: Any = None,
            nrows: int = 20, predictions: bool = True, limits: Limits | None = None) -> Preview:
    """Parse the head of one file (at most a few MiB decompressed, ``nrows`` rows) and say how it would be
    read (layout problems are returned in ``problem``; unreadable bytes still raise DataError, and a file past a
    limit no mapping changes raises BeyondLimitError)."""
    fmt = _format(format)
    limits = limits or Limits.from_env()
    given = sources_of(source)
    if len(given) != 1:
        raise DataError(f"preview expects one file, got {len(given)}")
    opened = _open(given[0], limits, None, preview=True)
    form = _effective(opened, fmt)
    if form == "label_studio":
        _no_ignore(opened, columns)
        return _preview_label_studio(opened, limits, columns, predictions, nrows)
    if opened.table is not None:
        table = opened.table
    else:
        table = read_json_records(opened.source, limits.with_bytes(PREVIEW_BYTES), None, opened.json_kind or "records",
                                  max_items=max(nrows, 200))
    head = table.head(max(nrows, 200) if form not in LAYOUTS and form != "auto" else nrows)
    shown = head.head(nrows)
    if not isinstance(table, ParquetTable):  # (a Parquet preview cuts its values as it reads them)
        shown = cut_for_display(shown)
    warnings = list(table.notes)
    if isinstance(table, CsvTable):
        warnings.extend(table.cleaning_notes())
        if table.truncated and len(head) < nrows:
            warnings.append(f"{table.name}: the preview reads the first {PREVIEW_BYTES >> 20} MiB only; "
                            f"{counted(len(head), 'row')} {'fits' if len(head) == 1 else 'fit'} in them")
    container = opened.container
    delimiter = getattr(table, "delimiter", None)
    encoding = getattr(table, "encoding", None)
    try:
        plan = plan_table(table, form, columns, soft, sample=head, stem=given[0].stem)
    except BeyondLimitError:  # (no mapping mends it: "choose the columns under Mapping" stood below a refusal of
        # 1,200 soft-label columns; walkthrough 71)
        raise
    except DataError as exc:
        hint = _layout_hint(fmt, [table], [], given, soft) if not columns else None  # (as the read says it)
        problem = f"{hint} {getattr(exc, 'finding', None) or exc}" if hint else str(exc)
        return Preview(table.name, shown, None, {}, delimiter, encoding, warnings, problem, container=container,
                       choices={"task": list(table.header), "worker": list(table.header),
                                "label": list(table.header)})
    finally:
        if hasattr(table, "close"):
            table.close()
    mapping: dict[str, Any] = {"task": plan.task}
    if plan.format == "long":
        mapping.update(worker=plan.worker, label=plan.label, soft=plan.soft)
    elif plan.format == "per_annotator":
        mapping.update(label=plan.label, annotator=plan.worker_name)
    elif plan.format == "wide":
        mapping.update(annotators=plan.annotators)
    else:
        mapping.update(worker=plan.worker, label=plan.label)
        if plan.gold:
            mapping["gold"] = plan.gold
        if plan.status:
            mapping["status"] = plan.status
    mapping["ignored"] = plan.extra
    container_note = {"parquet": " from Parquet", "json": " from JSON records"}.get(table.kind, "") \
        if plan.format in LAYOUTS else ""
    # a gold column empty in every previewed row: said so before Load (the line named it as the source of gold labels
    # above the read's "no gold labels (column ... is empty)"; walkthrough 29)
    gold_rows = 0
    if plan.gold and plan.gold in head and bool(missing_mask(head[plan.gold]).all()):
        gold_rows = len(head)
    note = (f"{table.name}: read as {FORMAT_TITLES.get(plan.format, plan.format)}{container_note}: "
            f"{plan.describe(gold_empty_rows=gold_rows)}")
    problem = _repeated_wide_tasks(table.name, head, plan) if form == "auto" else None
    return Preview(table.name, shown, plan.format, mapping, delimiter, encoding, warnings, problem, note,
                   plan.choices, container)


def _repeated_wide_tasks(name: str, head: pd.DataFrame, plan: Any) -> str | None:
    """A file detected as wide (no column named like a worker) that does not look wide is most likely long,
    with worker and label columns named in words the detection does not know: say so before loading, where
    the only other sign would be a conflict error naming a "worker" that is a column. Not wide: a task on
    several of the first rows (a wide file has one row per task), or "workers" that share no answer at all
    (the columns of a wide file hold answers to one question)."""
    if plan.format != "wide" or not isinstance(plan.task, str) or plan.task not in head.columns or head.empty:
        return None
    advice = ("if each row is one answer (long layout), choose the format 'long' and the worker and label columns")
    tasks = head[plan.task].astype(str)
    repeated = tasks[tasks.duplicated(keep=False)]
    if not repeated.empty:
        first = repeated.iloc[0]
        return (f"{name}: task {first!r} is on {int((tasks == first).sum())} of the first {len(tasks)} rows, but a "
                f"wide file has one row per task: {advice}")
    # each column's distinct answers, all columns at once: the workers share no answer when no answer is in two
    # columns (a set per column compared pair by pair took minutes on 500,000 columns)
    columns = [c for c in plan.annotators if c in head.columns]
    cells = head[columns].to_numpy(dtype=object).T.ravel()  # column by column
    pairs = pd.DataFrame({"column": np.repeat(np.arange(len(columns)), len(head)),
                          "answer": pd.Series(cells, dtype=object).astype(str)})
    pairs = pairs[(pairs["answer"] != "") & pd.notna(cells)].drop_duplicates()
    answering = pairs["column"].nunique()
    if answering >= 2 and pairs["answer"].nunique() == len(pairs):
        return (f"{name}: read as wide, its worker columns ({quoted_list(plan.annotators[:6], 6)}) share "
                f"no answer in the first {len(tasks)} rows, as if they held different things: {advice}")
    return None


#: the preview's results cell of an annotation or prediction that holds no result the read can use (none, or a
#: ``result`` that is no list of results): the read skips it
NO_RESULT_SHOWN = "(no result: not read)"


def _preview_label_studio(opened: _Opened, limits: Limits, columns: Mapping[str, Any] | None, predictions: bool,
                          nrows: int) -> Preview:
    name = opened.source.name
    try:
        read = read_label_studio(opened.source, limits.with_bytes(PREVIEW_BYTES), None, None, columns, predictions,
                                 max_items=max(nrows, 200))
    except DataError as exc:
        return Preview(name, pd.DataFrame(), None, {}, None, "utf-8", [], str(exc), container="json")
    rows = []
    most = max(nrows, 1) * 3  # (the rows shown: a task of 950,000 empty annotations made a row of each, +384 MB
    has_predictions = False  # for the 60 shown; left at attack round 48)
    with TextStream(opened.source, limits, stop_after=PREVIEW_BYTES, line_limit=False) as text:
        for _, task in iter_json(text, name, limits, max_items=nrows, cut=True):
            if not isinstance(task, dict):
                continue
            has_predictions = has_predictions or bool(task.get("predictions"))
            for kind, entries in (("annotation", task.get("annotations") or []),
                                  ("prediction", task.get("predictions") or [])):
                # (a count or a number where a list belongs failed the preview with "TypeError: 'int' object is not
                # iterable" where the read skips it; attack round 50)
                for entry in entries[:max(most - len(rows), 0)] if isinstance(entries, list) else []:
                    if not isinstance(entry, dict):
                        continue
                    found = entry.get("result")
                    results = [r for r in found if isinstance(r, dict)] if isinstance(found, list) else []
                    # the worker as read, and each result's value as the file writes it (a user object and
                    # {'choices': ['pos']} showed as Python wrote them; walkthrough 79)
                    rows.append({"task": str(task.get("id", "")), "kind": kind,
                                 "worker": worker_of(entry, kind == "prediction"),
                                 "results": ("; ".join(f"{r.get('from_name')}: {preview_value(r.get('value'))}"
                                                       for r in results)[:200] if results else
                                             # (an empty cell beside a skipped answer; attack round 50's list)
                                             NO_RESULT_SHOWN),
                                 "cancelled": str(bool(entry.get("was_cancelled"))),
                                 "ground_truth": str(bool(entry.get("ground_truth")))})
    frame = pd.DataFrame(rows[:most], dtype=object)
    mapping = {"task": read.context.task_key, "worker": "completed_by", "label": read.context.from_name,
               "ignored": []}
    note = f"{name}: read as Label Studio JSON export: {read.note}"
    return Preview(name, frame, "label_studio", mapping, None, "utf-8", list(read.table.notes), None, note,
                   read.plan.choices, "json", has_predictions)


# ---------------------------------------------------------------------------------------------- tables
def read_table(source: Any, nrows: int | None = None, limits: Limits | None = None) -> pd.DataFrame:
    """The raw cells of one file as text (after decoding, delimiter detection, blank-line removal)."""
    limits = limits or Limits.from_env()
    given = sources_of(source)
    if len(given) != 1:
        raise DataError(f"expected one file, got {len(given)}")
    opened = _open(given[0], limits, Budget(limits))
    table = opened.table if opened.table is not None else _json_table(opened, limits, Budget(limits))
    if nrows is not None:
        return table.head(nrows)
    frames = [chunk.astype(object) for chunk in table.chunks(None)]
    return pd.concat(frames) if frames else table.head(0)


def detect_format(frame: pd.DataFrame, columns: Mapping[str, Any] | None = None, name: str = "table") -> str:
    """The format of one parsed table from its header: a platform's export, or ``"long"``, ``"wide"`` or
    ``"per_annotator"``. Raises DataError when no task column can be found."""
    table = FrameTable(name, frame.head(0), typed=False)
    return plan_table(table, "auto", columns).format


# ---------------------------------------------------------------------------------------------- truth
def read_truth(source: Any, like: AnnotationSet | None = None, columns: Mapping[str, str] | None = None,
               keep_missing: bool = False, limits: Limits | None = None) -> pd.Series:
    """Read true labels: ``task,truth`` (or any two columns: task first) -> Series indexed by task, named
    ``"truth"``. Same decoding, typing and missing-label rules as :func:`read_annotations`; missing truths
    are skipped with a warning (``keep_missing=True`` keeps the spellings), identical repeated rows merged,
    contradicting ones refused. ``like``: an AnnotationSet whose task and class types the result is aligned
    to (:func:`align_truth`)."""
    limits = limits or Limits.from_env()
    given = sources_of(source)
    if len(given) != 1:
        raise DataError(f"expected one truth file, got {len(given)}")
    opened = _open(given[0], limits, Budget(limits))
    table = opened.table if opened.table is not None else _json_table(opened, limits, Budget(limits))
    name = table.name
    cols = [c for c in table.header if c != ""] if table.kind == "csv" else list(table.header)
    columns = dict(columns or {})
    task = (_d.given_column(name, cols, "task", columns["task"]) if "task" in columns
            else _d.find_role(cols, "task") or cols[0])
    rest = [c for c in cols if c != task]
    truth = (_d.given_column(name, cols, "truth", columns["truth"]) if "truth" in columns
             else _d.find_role(rest, "truth"))
    if truth is None:
        if len(rest) != 1:
            raise DataError(f"{name}: which column holds the true labels? found {quoted_list(cols, 12)}; "
                            f"name it 'truth'")
        truth = rest[0]
    parts_task, parts_value = [], []
    skipped, markers, n_rows = 0, set(), 0
    table.expect_short({task: "task", truth: "truth"})
    for chunk in table.chunks([task, truth]):
        n_rows += len(chunk)
        tasks, values = chunk[task], chunk[truth]
        if table.typed:
            empty_task = (tasks.isna() | (tasks.astype(str).str.strip() == "")).to_numpy()
        else:
            empty_task = (tasks.astype(str) == "").to_numpy()
        if empty_task.any():
            row = int(empty_task.nonzero()[0][0])
            position = row if table.typed else int(chunk.index[row])
            raise DataError(f"{name}: {table.line(position)}: empty task")
        missing = missing_mask(values, keep_missing)
        if missing.any():
            skipped += int(missing.sum())
            markers.update(str(v).strip() for v in pd.unique(values[missing].astype(object))
                           if isinstance(v, str) and v.strip())
        parts_task.append(tasks[~missing])
        parts_value.append(values[~missing])
    if not n_rows:
        raise DataError(f"{name}: has a header ({', '.join(cols)}) but no truth labels")
    table_notes = list(table.notes) + (table.cleaning_notes() if isinstance(table, CsvTable) else [])
    if table.typed:
        tasks = pd.concat(parts_task, ignore_index=True)
        values = pd.concat(parts_value, ignore_index=True)
    else:
        tasks = type_text(concat_parts([p.to_frame("x") for p in parts_task])["x"])
        values = type_text(concat_parts([p.to_frame("x") for p in parts_value])["x"])
    if not len(tasks):
        raise DataError(f"{name}: no truth labels (the {truth!r} column is empty)")
    check_value_lengths(tasks, "task", name, limits.max_value_chars)
    check_value_lengths(values, "truth", name, limits.max_value_chars)
    # repeated rows dropped on the (categorical) columns before any id becomes a Python object: a 947 KB gzip of
    # 19 million rows of 1,000 tasks took a server from 0.11 to 3.8 GB in the merge below (attack round 63)
    first = ~_repeated_pairs(tasks, values)
    series = pd.Series(values[first].to_numpy(), index=pd.Index(tasks[first].to_numpy(), name="task"), name="truth")
    try:
        series = _merge_duplicates(series, name)
    except DataError as exc:
        worker = _d.find_role([c for c in cols if c not in (task, truth)], "worker")
        if worker is None:
            raise
        # an answers file given as the truth: "task “item1” has different truths" missed what was wrong
        # (walkthrough 119)
        raise DataError(f"{name} reads as answers, not as truth labels: it has a worker column ({str(worker)!r}) and "
                        f"tasks given more than once with different labels ({str(exc)[len(name) + 2:]}); a truth file "
                        f"has one row per task (task, truth)") from None
    series.attrs["warnings"] = table_notes
    series.attrs["columns"] = (str(task), str(truth))  # (what was read as what: a column "gold" went unsaid)
    if skipped:
        spelled = ", ".join(sorted(markers, key=str.lower)[:4])
        message = f"{name}: skipped {counted(skipped, 'task')} with an empty truth" if not markers else (
            f"{name}: skipped {counted(skipped, 'task')} with a missing truth (empty or {spelled}); keep such labels with "
            f"keep_missing=True (CLI --keep-missing-labels)")
        series.attrs["warnings"].append(message)
    if hasattr(table, "close"):
        table.close()
    if like is not None:
        series = align_truth(series, like)
    return series


def _align_values(values: Sequence[Any], reference: pd.Index) -> list[Any]:
    found = reference.get_indexer(pd.Index(list(values), dtype=object))
    if (found >= 0).all():
        return [reference[i] for i in found]
    by_text = {}
    for value in reference:
        by_text.setdefault(str(value), value)
    return [reference[i] if i >= 0 else by_text.get(str(v), v) for v, i in zip(values, found)]


def align_truth(truth: pd.Series, data: AnnotationSet) -> pd.Series:
    """Give truth task ids and labels the types of ``data``'s tasks and classes where they print the same
    (truth ``"7"`` -> task ``7``); values that match nothing are kept as they are."""
    index = _align_values(truth.index, data.tasks)
    values = _align_values(truth.to_numpy(), data.classes)
    out = pd.Series(values, index=pd.Index(index, name="task"), name="truth")
    if len(values) and all(isinstance(v, (int, np.integer)) for v in values):
        out = out.astype("int64")
    out.attrs = dict(truth.attrs)
    return out
