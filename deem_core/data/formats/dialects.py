"""What the columns of a table mean: the layouts (long, wide, one file per worker) and the platforms'
table exports (Amazon Mechanical Turk batch results, Toloka results, Label Studio CSV / JSON-MIN).

Each dialect makes a :class:`Plan` from the header (and a small head sample where it must choose between
candidate columns) and turns every chunk of rows into long rows ``task, worker, label`` (plus gold labels
where the export has them), counting what it skips. The :class:`Collector` gathers the rows, drops
missing labels (counting the answers and the tasks lost) and checks ids.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from deem_core.data.annotations import BeyondLimitError, DataError
from deem_core.data.formats.limits import DEFAULT_MAX_JSON_VALUES
from deem_core.data.formats.tables import Table, title_line_error
from deem_core.data.text import counted, in_number, is_are
from deem_core.data.formats.values import MISSING_LABELS, blank_text, missing_mask
from deem_core.data.text import names_text, quoted_list, shortened

__all__ = ["CONTROL_TASKS", "DIALECTS", "Collector", "Plan", "detect_dialect", "extract", "plan_table"]

#: what gold labels read from a platform's control tasks are, said wherever an accuracy is measured on them (DEEM
#: 1.0000 on 60 Toloka control tasks, 94.50% on all 800; walkthrough 81; said on the Data page only: walkthrough 82)
CONTROL_TASKS = ("the export's control tasks: often easier and given to more workers than the others, so accuracies "
                 "on them can read high")

SYNONYMS: dict[str, tuple[str, ...]] = {
    "task": ("task", "task_id", "taskid", "item", "item_id", "itemid", "question", "question_id", "example",
             "example_id", "sample", "sample_id", "image", "image_id", "document", "doc", "doc_id", "object", "id",
             # an ensemble's predictions are often keyed by the item's file (walkthrough 118: a wide file of
             # classifiers keyed by 'filepath' was refused, "no task column")
             "filepath", "file_path", "filename", "file_name", "file", "path", "image_path", "img_path", "image_file",
             "img_file"),
    "worker": ("worker", "worker_id", "workerid", "annotator", "annotator_id", "rater", "rater_id", "labeler",
               "labeller", "labeler_id", "learner", "user", "user_id", "performer", "judge", "coder",
               "model", "model_name", "classifier"),
    "label": ("label", "labels", "answer", "response", "annotation", "class", "category", "vote", "rating",
              "judgement", "judgment", "prediction", "result", "predicted", "predicted_class", "predicted_label"),
    "truth": ("truth", "gold", "true_label", "ground_truth", "groundtruth", "gold_label", "golden", "target",
              "label", "answer", "class", "y"),
}
SOFT_PREFIX = "prob_"
LAYOUTS = ("long", "wide", "per_annotator")
#: table dialects: name -> what the "read as" note calls it
DIALECTS = {
    "long": "long layout (task, worker, label)",
    "wide": "wide layout (task + one column per worker)",
    "per_annotator": "one file per worker (task, label)",
    "mturk": "Amazon Mechanical Turk batch results",
    "toloka": "Toloka results",
    "label_studio_csv": "Label Studio CSV export",
    "label_studio_min": "Label Studio JSON-MIN export",
}
TASK_JOIN = " | "
#: places a skip warning names (task id and line of each skipped answer, the first ones)
SKIP_PLACES = 5
_TRUE = frozenset({"true", "1", "yes", "on", "x", "checked"})
_FALSE = frozenset({"false", "0", "no", "off", ""})
_LS_META = ("id", "annotator", "annotation_id", "created_at", "updated_at", "lead_time", "agreement",
            "annotation_count", "total_annotations", "cancelled_annotations", "total_predictions", "drafts",
            "predictions", "file_upload", "inner_id", "project", "updated_by", "comment_count",
            "unresolved_comment_count", "last_comment_updated_at", "storage_filename", "meta")
_MTURK_META = ("HITId", "HITTypeId", "Title", "Description", "Keywords", "Reward", "CreationTime", "MaxAssignments",
               "RequesterAnnotation", "AssignmentDurationInSeconds", "AutoApprovalDelayInSeconds", "Expiration",
               "NumberOfSimilarHITs", "LifetimeInSeconds", "AssignmentId", "WorkerId", "AssignmentStatus",
               "AcceptTime", "SubmitTime", "AutoApprovalTime", "ApprovalTime", "RejectionTime", "RequesterFeedback",
               "WorkTimeInSeconds", "LifetimeApprovalRate", "Last30DaysApprovalRate", "Last7DaysApprovalRate",
               "Approve", "Reject")


def norm(name: Any) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def find_role(columns: Sequence[str], role: str, exclude: Iterable[str] = ()) -> str | None:
    excluded = set(exclude)
    normalised = {c: norm(c) for c in columns if c not in excluded}
    for synonym in SYNONYMS[role]:
        for column, normed in normalised.items():
            if normed == synonym:
                return column
    return None


def given_column(name: str, columns: Sequence[str], role: str, given: str) -> str:
    if given in columns:
        return given
    matches = [c for c in columns if norm(c) == norm(given)]
    if len(matches) == 1:
        return matches[0]
    raise DataError(f"{name}: the {role} column {given!r} is not in the file; found "
                    f"{', '.join(repr(str(c)) for c in columns)}")


def _shown(columns: Sequence[str], limit: int = 8) -> str:
    out = ", ".join(repr(str(c)) for c in columns[:limit])
    return out + (f" and {len(columns) - limit} more" if len(columns) > limit else "")


# ---------------------------------------------------------------------------------------------- plan
@dataclass
class Plan:
    """How one table becomes answers."""

    format: str
    task: str | list[str] | None = None
    worker: str | None = None
    label: str | None = None
    annotators: list[str] = field(default_factory=list)  # wide
    soft: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)  # columns ignored (reported for the CSV layouts)
    options: list[tuple[str, str]] = field(default_factory=list)  # checkbox group: (column, option)
    status: str | None = None  # column whose rejected rows are excluded
    gold: str | None = None  # column of gold labels
    choices: dict[str, list[str]] = field(default_factory=dict)  # role -> candidates (for a chooser)
    worker_name: str | None = None  # per_annotator: the worker named after the file
    virtual: dict[str, str] = field(default_factory=dict)  # column made from a JSON column -> that column
    times: dict[str, str] = field(default_factory=dict)  # wide: columns of dates or times left out -> their type
    notes: dict[str, str] = field(default_factory=dict)  # wide: columns of notes or item text left out -> what
    ignored: list[str] = field(default_factory=list)  # columns left out as asked (columns["ignore"])
    #: columns that a JSON column also holds as fields: read from the column (:func:`_plan_mturk`)
    shadowed: list[str] = field(default_factory=list)
    #: the other input columns of a platform export whose tasks one input column names alone: each task must come
    #: with one combination of them over the whole file (:func:`_check_task_inputs`)
    task_inputs: list[str] = field(default_factory=list)

    @property
    def task_columns(self) -> list[str]:
        if self.task is None:
            return []
        return list(self.task) if isinstance(self.task, list) else [self.task]

    @property
    def roles(self) -> dict[str, str]:
        """Each column read as it is -> the role of its values (task, worker, label, gold label); the columns
        made from a JSON column are not here (the JSON text is long)."""
        out = {c: "task" for c in self.task_columns}
        if self.worker:
            out[self.worker] = "worker"
        if self.label and not self.options:
            out[self.label] = "label"
        out.update({c: "label" for c in self.annotators})
        if self.gold:
            out[self.gold] = "gold label"
        return {c: r for c, r in out.items() if c not in self.virtual and c not in self.virtual.values()}

    @property
    def needed(self) -> list[str]:
        cols: list[str] = [*self.task_columns]
        for column in (self.worker, self.status, self.gold):
            if column:
                cols.append(column)
        if self.label and not self.options:
            cols.append(self.label)
        cols.extend(c for c, _ in self.options)
        cols.extend(self.annotators)
        cols.extend(self.soft)
        cols.extend(self.task_inputs)
        # a field of a JSON column: read the JSON column (each column once, in order; a dict, not a list's
        # `in`: 100,000 worker columns took 42 s there)
        return list(dict.fromkeys(self.virtual.get(column, column) for column in cols))

    def task_text(self) -> str:
        cols = self.task_columns
        return cols[0] if len(cols) == 1 else " + ".join(cols)

    def describe(self, worker_names: Sequence[str] = (), gold_found: bool | None = None,
                 gold_empty_rows: int = 0) -> str:
        """The mapping in words, for the "read as ..." note: which column became which role, e.g.
        ``tasks from column 'item_id', workers from column 'annotator', labels from column 'answer'``.
        ``worker_names``: every file's worker when several per-worker files are read together (the note named the
        first file's only; walkthrough 21). ``gold_found``: False once read with no gold label in the gold column
        (an export's empty GOLDEN column was named as the source of gold labels; walkthrough 28).
        ``gold_empty_rows``: a preview's rows, none with a gold label (said before the whole file is read)."""
        cols = self.task_columns
        parts = [f"tasks from column {_quoted(cols[0])}" if len(cols) == 1 else
                 f"tasks from columns {' + '.join(_quoted(c) for c in cols)} together"]
        if self.format == "wide":
            shown = ", ".join(_quoted(c) for c in self.annotators[:6]) + (" ..." if len(self.annotators) > 6 else "")
            parts.append(f"one worker per {'other ' if not (self.times or self.notes or self.ignored) else ''}column "
                         f"({len(self.annotators):,}: {shown})")
            if self.times:
                parts.append(f"left out {counted(len(self.times), 'column')} of dates or times ({describe_times(self.times)})")
            if self.notes:
                parts.append(f"left out {counted(len(self.notes), 'column')} of notes or item text "
                             f"({describe_times(self.notes)})")
        elif self.format == "per_annotator":
            parts.append(f"labels from column {_quoted(self.label)}")
            if len(worker_names) > 1:
                shown = ", ".join(repr(shortened(w, QUOTED_CHARS)) for w in worker_names[:6]) + (
                    " ..." if len(worker_names) > 6 else "")
                parts.append(f"one worker per file, named after the file ({len(worker_names):,}: {shown})")
            else:
                parts.append(f"worker {self.worker_name!r} (the file name)")
        else:
            if self.worker:
                parts.append(f"workers from column {_quoted(self.worker)}")
            if self.options:
                parts.append(f"labels from the checkboxes {_quoted(self.label)} "
                             f"({', '.join(o for _, o in self.options)})")
            elif self.label:
                parts.append(f"labels from column {_quoted(self.label)}")
            # (a field of a JSON column is no column of the file: said, so the note tells where the labels are)
            json_column = next((self.virtual[c] for c in [self.label, *(c for c, _ in self.options)]
                                if c in self.virtual), None)
            if json_column is not None and parts:
                parts[-1] += f" (read from the JSON column {_quoted(json_column)})"
            elif any(c in self.shadowed for c in [self.label, *(c for c, _ in self.options)]) and parts:
                parts[-1] += f" (the file's own column(s); the same field(s) in {_quoted(TASK_ANSWERS)} not read)"
            if self.soft:
                # (at most eight named: 5,000 made a 300 KB line on the Data page; attack round 33)
                parts.append(f"soft labels from columns {names_text([_quoted(c) for c in self.soft], quote=False)}")
        if self.gold:
            parts.append(f"no gold labels (column {_quoted(self.gold)} is empty)" if gold_found is False
                         else f"gold labels from column {_quoted(self.gold)}, if any (none in the first "
                              f"{gold_empty_rows:,} rows)" if gold_empty_rows
                         else f"gold labels from column {_quoted(self.gold)}"
                         + (f" ({CONTROL_TASKS})" if self.format == "toloka" else ""))
        if self.status:
            parts.append(f"rejected rows (column {_quoted(self.status)}) excluded")
        if self.ignored:  # (any layout: a long file's column left out went unsaid; read 49)
            shown = ", ".join(_quoted(c) for c in self.ignored[:6]) + (" ..." if len(self.ignored) > 6 else "")
            parts.append(f"left out {counted(len(self.ignored), 'column')} as asked ({shown})")
        others = [c for c in self.choices.get("label", []) if c != self.label]
        text = ", ".join(parts)
        if others and self.format not in LAYOUTS:
            text += f"; other label fields: {', '.join(others[:6])}" + (" ..." if len(others) > 6 else "")
        return text


def describe_times(times: Mapping[str, str]) -> str:
    shown = ", ".join(f"{_quoted(c)}: {kind}" for c, kind in list(times.items())[:5])
    return shown + (" ..." if len(times) > 5 else "")


#: the most characters of a column's name the "read as" note repeats (six 10,000-character worker columns made a
#: 60,000-character first line; attack round 46)
QUOTED_CHARS = 80


def _quoted(name: Any) -> str:
    """A column name in the "read as" note: in quotes, so that 'task' reads as a name, not a word (cut past
    :data:`QUOTED_CHARS`)."""
    return f"'{shortened(name, QUOTED_CHARS)}'"


# ---------------------------------------------------------------------------------------------- detection
def detect_dialect(header: Sequence[str]) -> str | None:
    """The platform a table's header comes from, or None (a plain layout)."""
    names = [str(c) for c in header]
    lowered = {n.lower() for n in names}
    if "workerid" in lowered and any(n.startswith("Answer.") for n in names):
        return "mturk"
    if any(n.startswith("OUTPUT:") for n in names) and "ASSIGNMENT:worker_id" in names:
        return "toloka"
    if "annotator" in lowered and "annotation_id" in lowered:
        return "label_studio_csv"
    return None


def looks_like_data(columns: Sequence[str]) -> bool:
    return any(re.fullmatch(r"-?[0-9]+(\.[0-9]*)?", str(c).strip()) for c in columns) and not any(
        norm(c) in SYNONYMS["task"] for c in columns)


def soft_columns(columns: Sequence[str], soft: Any) -> list[str]:
    if soft is False:
        return []
    if isinstance(soft, Mapping):
        return list(soft.values())
    prefix = soft if isinstance(soft, str) else SOFT_PREFIX
    found = [c for c in columns if norm(c).startswith(prefix.lower()) and len(str(c)) > len(prefix)]
    if soft is None and len(found) < 2:
        return []
    return found


def _check_columns_keys(columns: Mapping[str, Any]) -> None:
    unknown = set(columns) - {"task", "worker", "label", "ignore"}
    if unknown:
        raise ValueError(f"columns= maps task, worker and label (and 'ignore': columns to leave out); got "
                         f"{sorted(unknown)}")
    ignored = columns.get("ignore") or []
    if isinstance(ignored, str) or not all(isinstance(c, str) for c in ignored):
        raise ValueError("columns['ignore'] is a list of column names")
    named: dict[str, str] = {}
    for role, given in columns.items():  # (one column for two roles read as conflicting labels)
        if role == "ignore":
            continue
        for column in (given if isinstance(given, (list, tuple)) else [given]):
            key = norm(column)  # (the lookup ignores case and spaces: 'TASK' and 'task ' name one column)
            if key in named and named[key] == role:
                raise DataError(f"the {role} column {str(column)!r} is given twice")
            if key in named:
                raise DataError(f"the {named[key]} and {role} columns are both {str(column)!r}; each needs a "
                                f"column of its own")
            named[key] = role
    for column in ignored:
        if norm(column) in named:
            raise DataError(f"the {named[norm(column)]} column {str(column)!r} is also among the columns to leave out")


def _left_out(name: str, cols: Sequence[str], columns: Mapping[str, Any]) -> list[str]:
    """The columns of ``cols`` that ``columns['ignore']`` names (each must be one of them): a wide file's column that
    is no worker (a "notes" column read as one; walkthrough 97), left out as asked."""
    out = []
    for given in columns.get("ignore") or []:
        matches = [c for c in cols if c == given] or [c for c in cols if norm(c) == norm(given)]
        if len(matches) != 1:
            raise DataError(f"{name}: the column to leave out, {str(given)!r}, is not in the file; found {_shown(cols)}")
        out.append(matches[0])
    return list(dict.fromkeys(out))  # (one named twice, or in two spellings, is one column; read 49)


def plan_layout(name: str, cols: Sequence[str], fmt: str = "auto", columns: Mapping[str, Any] | None = None,
                soft: Any = None, stem: str | None = None) -> Plan:
    """Long, wide or one file per worker, from the header (rules: :mod:`deem_core.data.formats`)."""
    cols = [str(c) for c in cols]
    columns = dict(columns or {})
    _check_columns_keys(columns)
    ignored = _left_out(name, cols, columns)
    cols = [c for c in cols if c not in ignored]
    if "task" in columns:
        task = given_column(name, cols, "task", _one(columns["task"], "task"))
    else:
        task = find_role(cols, "task")
        if task is None and fmt in ("wide", "per_annotator"):
            task = cols[0]
    if task is None:
        shown = quoted_list(cols)
        if looks_like_data(cols):
            raise DataError(f"{name}: the first line ({shown}) looks like data, not a header; add a header line "
                            f"naming the columns, e.g. task,worker,label")
        raise DataError(f"{name}: no task column among {shown}; name it 'task' (or pass columns={{'task': ...}}, "
                        f"CLI --task-column)")
    rest = [c for c in cols if c != task]
    worker = (given_column(name, cols, "worker", columns["worker"]) if "worker" in columns
              else find_role(rest, "worker"))
    label = (given_column(name, cols, "label", columns["label"]) if "label" in columns
             else find_role([c for c in rest if c != worker], "label"))
    soft_cols = soft_columns(rest, soft)
    if len(soft_cols) > MAX_SOFT_CLASSES:
        # (each prob_ column is a class, and the distinct-label count never saw them: 20,000 of them in a 154 KB gzip
        # read for 44 s to a 2.8 GB peak, as 20,000 classes; attack round 38)
        raise BeyondLimitError(f"{name}: {len(soft_cols):,} soft-label columns ({SOFT_PREFIX}<class>), one per "
                               f"class: DEEM handles at most {MAX_SOFT_CLASSES:,} classes")
    choices = {"task": cols, "worker": rest, "label": rest}
    layout = fmt
    if layout == "auto":
        if worker is not None:
            layout = "long"
        elif label is not None:
            layout = "per_annotator"
        elif soft_cols and soft is not None:
            layout = "long"
        else:
            layout = "wide"
    if layout == "long":
        missing = [role for role, col in (("worker", worker), ("label", label if not soft_cols else "soft"))
                   if col is None]
        taken = {role: find_role(rest, role) for role in missing}  # its usual column, given to another role
        taken = {role: col for role, col in taken.items() if col is not None and col in (task, worker, label)}
        if taken:
            role, col = next(iter(taken.items()))
            other = next(r for r, c in (("task", task), ("worker", worker), ("label", label)) if c == col)
            raise DataError(f"{name}: the {role} column would be {col!r}, but that is the {other} column; name the "
                            f"{role} column (columns={{'{role}': ...}}, CLI --{role}-column)")
        if missing:
            raise DataError(f"{name}: missing column(s) {', '.join(repr(m) for m in missing)} for the long layout "
                            f"(task, worker, label); found {quoted_list(cols, 12)}")
        used = {task, worker, label, *soft_cols}
        return Plan("long", task, worker, label, soft=soft_cols, extra=[c for c in cols if c not in used],
                    choices=choices, ignored=ignored)
    if soft is not None and soft is not False and soft_cols:
        raise DataError(f"{name}: soft labels (prob_<class> columns) are read from the long layout only "
                        f"(task, worker, prob_...)")
    if layout == "per_annotator":
        if label is None:
            candidates = [c for c in rest if c != worker]
            if len(candidates) != 1:
                raise DataError(f"{name}: which column holds the labels? found {quoted_list(cols, 12)}; "
                                f"name it 'label' (or pass columns={{'label': ...}}, CLI --label-column)")
            label = candidates[0]
        return Plan("per_annotator", task, label=label, extra=[c for c in cols if c not in (task, label)],
                    choices=choices, worker_name=stem if stem is not None else name, ignored=ignored)
    annotators = [c for c in cols if c != task]
    if not annotators:
        raise DataError(f"{name}: only a task column ({task!r})" + (" beside the columns left out" if ignored else "")
                        + "; a wide file needs one column per worker")
    return Plan("wide", task, annotators=annotators, choices=choices, ignored=ignored)


def _one(value: Any, role: str) -> str:
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise DataError(f"the {role} must be one column here, got {list(value)}")
        return str(value[0])
    return str(value)


def _pick_label(candidates: list[str], sample: pd.DataFrame | None, groups: Mapping[str, list[str]],
                strip: str = "", parse: Any = None) -> str:
    """Among several label fields: the one named like a label; else, in the first rows, the one with the
    fewest distinct answers among those filled in at least half the rows (a free-text comment is sparse or
    has many); ties go to the earlier column."""
    if len(candidates) == 1:
        return candidates[0]
    for candidate in candidates:
        if norm(candidate[len(strip):] if candidate.startswith(strip) else candidate) in SYNONYMS["label"]:
            return candidate
    if sample is None or not len(sample):
        return candidates[0]
    best, best_score = candidates[0], None
    for position, candidate in enumerate(candidates):
        values = _sample_labels(sample, candidate, groups.get(candidate), parse)
        if values is None:
            continue
        filled = values[values != ""]
        if not len(filled):
            continue
        score = (len(filled) < len(values) / 2, filled.nunique(), position)
        if best_score is None or score < best_score:
            best, best_score = candidate, score
    return best


def _sample_labels(sample: pd.DataFrame, candidate: str, group: list[str] | None, parse: Any) -> pd.Series | None:
    if group:
        present = [c for c in group if c in sample.columns]
        if not present:
            return None
        ticked = np.column_stack([sample[c].astype(str).str.strip().str.lower().isin(_TRUE).to_numpy()
                                  for c in present])
        names = np.array([c.rpartition(".")[2] for c in present] + [""], dtype=object)
        choice = np.where(ticked.sum(axis=1) == 1, ticked.argmax(axis=1), len(present))
        return pd.Series(names[choice])
    if candidate not in sample.columns:
        return None
    values = sample[candidate].astype(str).str.strip()
    if parse is not None:
        values = values.map(parse)
        values = values.where(values != _LS_SENTINEL, "")
    return values


#: the end of a column name that says it is an identifier: ``review_id``, ``itemId``, ``image ID``, ``id``
_ID_NAME = re.compile(r"(^|[_\s.\-])id$|[a-z0-9]Id$|[a-z0-9]ID$", re.IGNORECASE)


def _identifier(inputs: list[str], prefix: str, sample: pd.DataFrame | None) -> str | None:
    """The one input column that names the tasks by itself: its name ends in "id" and, in the head sample, it tells
    the tasks apart exactly as all the input columns together do. An MTurk batch of ``Input.review_id`` and
    ``Input.text`` made task ids of both joined ("rev-0001 | Review number 1, ..."), and a gold file keyed by the
    review id matched no task (walkthrough 31)."""
    if sample is None or not len(sample) or any(c not in sample.columns for c in inputs):
        return None
    together = sample[inputs].astype(str).drop_duplicates().shape[0]
    for column in inputs:
        if _ID_NAME.search(column[len(prefix):].strip()) and sample[column].astype(str).nunique() == together:
            return column
    return None


def _task_columns(name: str, cols: list[str], prefix: str, given: Any, fallback: str | None,
                  sample: pd.DataFrame | None = None) -> str | list[str]:
    if given is not None:
        wanted = [str(g) for g in given] if isinstance(given, (list, tuple)) else [str(given)]
        return [given_column(name, cols, "task", g) for g in wanted] if len(wanted) > 1 else \
            given_column(name, cols, "task", wanted[0])
    inputs = [c for c in cols if c.startswith(prefix)]
    if len(inputs) == 1:
        return inputs[0]
    for column in inputs:
        if norm(column[len(prefix):]) in SYNONYMS["task"]:
            return column
    if inputs:
        # an id column that tells the tasks apart as all of them do; else the combination, which identifies a task
        # exactly: never merges two, never splits one
        return _identifier(inputs, prefix, sample) or inputs
    if fallback and fallback in cols:
        return fallback
    raise DataError(f"{name}: no {prefix}* column to identify the tasks; pass columns={{'task': ...}} (CLI "
                    f"--task-column)")


def _other_inputs(cols: list[str], prefix: str, task: Any, given: Any) -> list[str]:
    """The input columns besides ``task`` when one input column was chosen (not given) to name the tasks alone."""
    inputs = [c for c in cols if c.startswith(prefix)]
    return [c for c in inputs if c != task] if given is None and isinstance(task, str) and task in inputs else []


#: columns hashed at a time by :func:`_row_hashes` (its memory: rows x this many references)
ROW_HASH_COLUMNS = 4096


def _row_hashes(block: pd.DataFrame) -> np.ndarray:
    """(rows,) uint64: a hash of each row's cells, over blocks of :data:`ROW_HASH_COLUMNS` columns (a column at a time,
    100,000 input columns of an MTurk batch of 60 rows held the server's one read slot 37 s; attack round 43): each
    cell's hash (pandas') times a fixed odd number of its column, summed per row (modulo 2**64). A text table's cells
    are text; a typed one's are hashed as they are."""
    n_rows, n_columns = block.shape
    total = np.zeros(n_rows, dtype=np.uint64)
    if not n_rows or not n_columns:
        return total
    weights = np.random.default_rng(0).integers(1, 1 << 62, size=n_columns, dtype=np.uint64) * np.uint64(2) + \
        np.uint64(1)
    for start in range(0, n_columns, ROW_HASH_COLUMNS):
        cells = block.iloc[:, start:start + ROW_HASH_COLUMNS].to_numpy(dtype=object)
        hashed = pd.util.hash_array(cells.ravel()).reshape(cells.shape)
        with np.errstate(over="ignore"):
            total += (hashed * weights[start:start + cells.shape[1]][None, :]).sum(axis=1, dtype=np.uint64)
    return total


def _check_task_inputs(table: Table, chunk: pd.DataFrame, plan: Plan, collector: "Collector") -> None:
    """Say when a task id comes with different other inputs somewhere in the file: the id column was chosen on the
    file's first rows, and a batch of two rounds whose ``Input.item_id`` restarts at 1 read 200 tasks as 100, without
    a word (attack round 17). Said once; the pairs (id, a hash of the other inputs) seen so far are kept, one per
    id."""
    if collector.__dict__.get("_task_clash") or not len(chunk):
        return
    ids = chunk[plan.task].astype(str).to_numpy()
    other = _row_hashes(chunk[plan.task_inputs])
    pairs = pd.DataFrame({"id": ids, "inputs": other, "row": np.arange(len(chunk))}).drop_duplicates(["id", "inputs"])
    seen = collector.__dict__.get("_task_seen")
    both = pairs if seen is None else pd.concat([seen, pairs], ignore_index=True).drop_duplicates(["id", "inputs"])
    clash = both["id"].duplicated(keep="first")
    if clash.any():
        first = both[clash].iloc[0]
        collector._task_clash = True
        line = table.line(_position(table, chunk.index[int(first["row"])]))
        shown = ", ".join(_quoted(c) for c in plan.task_inputs)
        collector.notes.append(
            f"{table.name}: the tasks are named by column {_quoted(plan.task)} alone, but {shortened(first['id'])!r} "
            f"comes with different {shown} ({line}): different tasks may have been read as one; to keep them apart, "
            f"name the tasks by all the input columns together (Mapping; columns={{'task': [...]}})")
        return
    collector._task_seen = both.drop_duplicates("id")[["id", "inputs"]].assign(row=-1)


def _plan_mturk(name: str, cols: list[str], columns: Mapping[str, Any], sample: pd.DataFrame | None) -> Plan:
    worker = given_column(name, cols, "worker", columns["worker"]) if "worker" in columns else next(
        (c for c in cols if c.lower() == "workerid"), None)
    if worker is None:
        raise DataError(f"{name}: no WorkerId column; found {_shown(cols)}")
    task = _task_columns(name, cols, "Input.", columns.get("task"), "HITId", sample)
    inputs = _other_inputs(cols, "Input.", task, columns.get("task"))
    # a real Answer.* column wins over a taskAnswers field of its name: the field replaced the column's answers
    # while the note named the column, and a checkbox group in both counted each option twice, every answer
    # "several ticked" (attack round 36). (A field named "taskAnswers" has no other column; it is still read.)
    found = _task_answers_fields(cols, sample)
    virtual = {f: column for f, column in found.items() if f not in cols or f == TASK_ANSWERS}
    shadowed = [f for f in found if f not in virtual]
    answers = [c for c in cols if c.startswith("Answer.") and c != TASK_ANSWERS] + list(virtual)
    groups: dict[str, list[tuple[str, str]]] = {}
    for column in answers:
        stem, dot, option = column.rpartition(".")
        if stem != "Answer" and dot:
            groups.setdefault(stem, []).append((column, option))
    fields: list[str] = []
    display: dict[str, list[str]] = {}
    for column in answers:
        stem = column.rpartition(".")[0]
        if stem in groups and len(groups[stem]) > 1:
            if stem not in fields:
                fields.append(stem)
                display[stem] = [c for c, _ in groups[stem]]
        else:
            fields.append(column)
    if not fields:
        raise DataError(f"{name}: no Answer.* column holds the workers' answers; found {_shown(cols)}")
    if "label" in columns:
        given = str(columns["label"])
        if given in fields:
            label = given
        elif given in cols:
            label = given
        else:
            raise DataError(f"{name}: the label field {given!r} is not in the file; the answer fields are "
                            f"{', '.join(fields)}")
    else:
        label = _pick_label(fields, sample, display, strip="Answer.")
    options = list(groups[label]) if label in groups and len(groups[label]) > 1 else []
    if len(options) > MAX_CHECKBOX_OPTIONS:
        # (what to do, and where the field is: "at most 1,000 are read" under the page's "choose the columns" read as
        # if part of the file would load, and 'Answer.g' named no column of the file; walkthrough 127)
        where = f" (in the JSON column {_quoted(TASK_ANSWERS)})" if any(c in virtual for c, _ in options) else ""
        raise DataError(f"{name}: the answer field {_quoted(label)}{where} is a checkbox group of {len(options):,} "
                        f"options, more than the {MAX_CHECKBOX_OPTIONS:,} read as one label's options, so it is not "
                        f"read: choose another answer field as the label, or give the group only the classes meant")
    in_json = sum(column in virtual for column, _ in options)
    if 0 < in_json < len(options):  # (no form writes one group both ways; read so, a column per option was made)
        raise DataError(f"{name}: the checkbox group {_quoted(label)} has {counted(len(options) - in_json, 'option')} "
                        f"as Answer.* columns and {in_json:,} in {TASK_ANSWERS}; give the label field "
                        f"(--label-column) of one of them")
    status = next((c for c in cols if c.lower() == "assignmentstatus"), None)
    return Plan("mturk", task, worker, label, options=options, status=status, virtual=virtual, task_inputs=inputs,
                shadowed=shadowed,
                choices={"task": [c for c in cols if c.startswith("Input.")] + [c for c in ("HITId",) if c in cols],
                         "label": fields, "worker": [worker]})


#: crowd-html-elements forms put every answer of an assignment in one JSON column: ``[{"sentiment": {"label":
#: "Positive"}, "ok": {"on": true}}]``; its fields become columns ``Answer.sentiment.label``, ``Answer.ok.on``
TASK_ANSWERS = "Answer.taskAnswers"
#: options of a checkbox group read as one label (a crowd-checkbox has a handful; DEEM reads at most 1,000 classes). A
#: group of 5,000 options in the first ``Answer.taskAnswers`` cell of a 1.2 MB upload made a column per option over
#: each chunk's rows: the server past 5 GB, and one of 40,000 options held a read slot for hours, quadratic in the
#: options (attack round 65). A group read from that column is read once per distinct cell
#: (:func:`_virtual_checkbox_labels`), never as a column per option
MAX_CHECKBOX_OPTIONS = 1_000


#: an ``Answer.taskAnswers`` cell's fields: at most this many levels deep, with dotted names of at most this many
#: characters, and all the names together at most :data:`FIELD_NAME_FACTOR` times the cell's own length. The names
#: repeat their parents' (``a.b.c``): a 32 KB gzip of 950 levels of 9,000-character keys held 4.2 GB of them
#: (attack round 9). crowd-html-elements forms nest two or three levels.
MAX_FIELD_DEPTH = 16
MAX_FIELD_CHARS = 1_000
FIELD_NAME_FACTOR = 4


def _flatten(value: Any, prefix: str, out: dict[str, str], room: list[int] | None = None, depth: int = 0) -> None:
    """``value`` (a parsed cell) -> ``out``: {dotted field name: value as text}; ValueError past the bounds above
    (``room``: the characters the names may still take)."""
    if depth > MAX_FIELD_DEPTH or len(prefix) > MAX_FIELD_CHARS:
        raise ValueError("fields nested too deep or named too long")
    if room is None:
        room = [1 << 62]
    if isinstance(value, dict):
        for key, item in value.items():
            if not all(str(key).split(".")):  # ("", "a.", ".a", "a..b": no form names a field so; "Answer.s." was
                continue  # picked as the label, and {"": ..., "label": ...} read as a checkbox group of two options)
            name = f"{prefix}.{key}" if prefix else str(key)
            room[0] -= len(name)
            if room[0] < 0:
                raise ValueError("field names too long in all")
            _flatten(item, name, out, room, depth + 1)
    elif isinstance(value, list):
        if len(value) == 1:
            _flatten(value[0], prefix, out, room, depth + 1)
        elif value:
            out[prefix] = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, bool):
        out[prefix] = "true" if value else "false"
    elif value is not None:
        out[prefix] = str(value)


def json_values(text: str, start: int = 0) -> int:
    """An upper bound of the values (objects, lists, elements) that ``text[start:]`` decodes to: its ``{``, ``[``
    and ``,``. Each costs a Python object of up to ~60 bytes, 20-30 times its 2-3 characters."""
    return text.count("{", start) + text.count("[", start) + text.count(",", start)


def loads_bounded(text: str, max_values: int = DEFAULT_MAX_JSON_VALUES) -> Any:
    """``json.loads`` of one cell; ValueError when it is not JSON, nested too deep or holds too many values."""
    if json_values(text) > max_values:
        raise ValueError(f"more than {max_values:,} JSON values")
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None


#: JSON values one ``Answer.taskAnswers`` cell may hold to be read as a form's answers (a form's cell holds tens; a
#: bounding-box form a few thousand): cells of 1.9 million made 1.6 GB while one was parsed (attack round 65)
MAX_TASK_ANSWERS_VALUES = 100_000


def task_answers(text: str) -> dict[str, str]:
    """One ``Answer.taskAnswers`` cell -> {``Answer.<field>``: value as text} ({} when it is not that JSON, or holds
    more than :data:`MAX_TASK_ANSWERS_VALUES` values)."""
    try:
        parsed = loads_bounded(text, MAX_TASK_ANSWERS_VALUES) if text.strip() else None
        out: dict[str, str] = {}
        _flatten(parsed, "", out, [FIELD_NAME_FACTOR * len(text) + MAX_FIELD_CHARS])
    except (ValueError, RecursionError):  # not JSON, or a bomb (nested too deep, millions of values)
        return {}
    return {f"Answer.{key}": value for key, value in out.items() if key}


def _task_answers_fields(cols: Sequence[str], sample: pd.DataFrame | None) -> dict[str, str]:
    """The fields found in the first rows' ``Answer.taskAnswers`` cells (each read from that column)."""
    if TASK_ANSWERS not in cols or sample is None or TASK_ANSWERS not in sample.columns:
        return {}
    fields: dict[str, str] = {}
    for text in pd.unique(sample[TASK_ANSWERS].astype(str)):
        for key in task_answers(text):
            fields.setdefault(key, TASK_ANSWERS)
    return fields


#: :func:`_ticked_labels`' codes of a row with no option ticked and one with several
_NONE, _SEVERAL = -1, -2


def _distinct_cells(source: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """(each row's code, the distinct cells as text) of a JSON column; code -1: no cell."""
    if isinstance(source.dtype, pd.CategoricalDtype):
        return source.cat.codes.to_numpy(), source.cat.categories.astype(str)
    codes, cells = pd.factorize(source.astype(str))
    return codes, pd.Index(cells).astype(str)


def _virtual_group(plan: Plan) -> bool:
    """Whether the plan's checkbox group is read from the ``Answer.taskAnswers`` column."""
    return bool(plan.options) and all(column in plan.virtual for column, _ in plan.options)


def _expand_virtual(chunk: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """Add the plan's label column when it comes from a JSON column (each distinct cell parsed once, only the wanted
    field kept: every distinct cell's whole parsed form held at once took 3.5 GB for a 27.5 MB upload of cells with
    1.9 million fields; attack round 65). A checkbox group of that column is read by :func:`_virtual_checkbox_labels`."""
    # (a group of Answer.* columns has none of its options in the JSON: a group read both ways is refused by
    # _plan_mturk)
    wanted = [plan.label] if plan.label in plan.virtual and not plan.options else []
    if not wanted:
        return chunk
    codes, cells = _distinct_cells(chunk[TASK_ANSWERS])
    values = {column: np.full(len(cells) + 1, "", dtype=object) for column in wanted}
    keep = set(wanted)
    for i, text in enumerate(cells):
        for key, value in task_answers(text).items():
            if key in keep:
                values[key][i] = value
    positions = np.where(codes < 0, len(cells), codes)
    return chunk.assign(**{column: pd.Series(v[positions], index=chunk.index) for column, v in values.items()})


def _virtual_checkbox_labels(table: Table, chunk: pd.DataFrame, plan: Plan, collector: "Collector") -> pd.DataFrame:
    """A checkbox group of the ``Answer.taskAnswers`` column -> one label per row, the ticked option found once per
    distinct cell from the fields that cell holds (:data:`MAX_CHECKBOX_OPTIONS`); as :func:`_checkbox_labels`
    reads a group of columns: a value neither true nor false is refused, rows with several ticked are left out and
    counted, none ticked gives no label."""
    position_of = {column: i for i, (column, _) in enumerate(plan.options)}
    codes, cells = _distinct_cells(chunk[TASK_ANSWERS])
    choice = np.full(len(cells) + 1, _NONE, dtype=np.int64)  # the last: a row without a cell
    for i, text in enumerate(cells):
        ticked = _NONE
        for key, value in task_answers(text).items():
            position = position_of.get(key)
            if position is None:
                continue
            word = value.strip().lower()
            if word in _TRUE:
                ticked = position if ticked == _NONE else _SEVERAL
            elif word not in _FALSE:
                row = chunk.index[int(np.flatnonzero(codes == i)[0])]
                raise DataError(f"{table.name}: {table.line(_position(table, row))}: field {key!r} should hold true "
                                f"or false (a checkbox of {plan.label}), got {value!r}")
        choice[i] = ticked
    return _ticked_labels(table, chunk, plan, collector, choice[np.where(codes < 0, len(cells), codes)])


def _plan_toloka(name: str, cols: list[str], columns: Mapping[str, Any], sample: pd.DataFrame | None) -> Plan:
    worker = given_column(name, cols, "worker", columns["worker"]) if "worker" in columns else "ASSIGNMENT:worker_id"
    if worker not in cols:
        raise DataError(f"{name}: no ASSIGNMENT:worker_id column; found {_shown(cols)}")
    task = _task_columns(name, cols, "INPUT:", columns.get("task"), "ASSIGNMENT:task_id", sample)
    outputs = [c for c in cols if c.startswith("OUTPUT:")]
    if "label" in columns:
        given = str(columns["label"])
        label = given if given in cols else ("OUTPUT:" + given if "OUTPUT:" + given in cols else None)
        if label is None:
            raise DataError(f"{name}: the label field {given!r} is not in the file; the output fields are "
                            f"{', '.join(outputs)}")
    else:
        label = _pick_label(outputs, sample, {}, strip="OUTPUT:")
    golden = "GOLDEN:" + label.split(":", 1)[1] if ":" in label else None
    status = "ASSIGNMENT:status" if "ASSIGNMENT:status" in cols else None
    return Plan("toloka", task, worker, label, status=status, gold=golden if golden in cols else None,
                choices={"task": [c for c in cols if c.startswith("INPUT:")] +
                         [c for c in ("ASSIGNMENT:task_id",) if c in cols], "label": outputs, "worker": [worker]})


def _plan_ls_table(name: str, cols: list[str], columns: Mapping[str, Any], sample: pd.DataFrame | None,
                   fmt: str) -> Plan:
    lowered = {c.lower(): c for c in cols}
    worker = given_column(name, cols, "worker", columns["worker"]) if "worker" in columns else lowered.get("annotator")
    if worker is None:
        raise DataError(f"{name}: no 'annotator' column; found {_shown(cols)}")
    if "task" in columns:
        task: str | list[str] = _task_columns(name, cols, "", columns["task"], None)
    elif "id" in lowered:
        task = lowered["id"]
    else:
        raise DataError(f"{name}: no task 'id' column; pass columns={{'task': ...}} (CLI --task-column)")
    candidates = [c for c in cols if c.lower() not in _LS_META and c not in (worker,)]
    if "label" in columns:
        label = given_column(name, cols, "label", str(columns["label"]))
    else:
        if not candidates:
            raise DataError(f"{name}: no column holds the answers of a labelling control; found {_shown(cols)}")
        label = _pick_label(candidates, sample, {}, parse=_ls_cell)
    return Plan(fmt, task, worker, label, choices={"task": [lowered.get("id", cols[0])] + candidates,
                                                   "label": candidates, "worker": [worker]})


#: a platform export reads its own task, worker and answer columns only: there is nothing to leave out (the names
#: were not even checked; read 49)
IGNORE_LAYOUTS = ("{name}: columns to leave out (--ignore-column, 'Columns that are no worker') apply to the long, "
                   "wide and one-file-per-worker layouts; {what} reads only its task, worker and answer columns")


def plan_table(table: Table, fmt: str, columns: Mapping[str, Any] | None = None, soft: Any = None,
               sample: pd.DataFrame | None = None, stem: str | None = None) -> Plan:
    """The plan for one table: ``fmt`` is a dialect name or ``"auto"`` (the header decides)."""
    columns = dict(columns or {})
    _check_columns_keys(columns)
    if table.kind == "csv" and (title := title_line_error(table.name, table.header)) is not None:
        raise title
    cols = [c for c in table.header if c != ""] if table.kind == "csv" else list(table.header)
    dialect = fmt if fmt != "auto" else (detect_dialect(cols) or "auto")
    if columns.get("ignore") and dialect in ("mturk", "toloka", "label_studio_csv", "label_studio_min"):
        raise DataError(IGNORE_LAYOUTS.format(name=table.name, what=DIALECTS.get(dialect, dialect)))
    if dialect == "mturk":
        return _plan_mturk(table.name, cols, columns, sample)
    if dialect == "toloka":
        return _plan_toloka(table.name, cols, columns, sample)
    if dialect in ("label_studio_csv", "label_studio_min"):
        return _plan_ls_table(table.name, cols, columns, sample,
                              "label_studio_min" if table.kind == "json" else "label_studio_csv")
    plan = plan_layout(table.name, cols, dialect, columns, soft, stem=stem)
    if plan.format == "wide":
        # a column of dates or times is an export's metadata (submitted at, time spent), never one worker's labels:
        # read as a worker, each of its values became a class (a walkthrough's typed file: 922 classes, 6 of them
        # labels)
        times = table.time_columns(plan.annotators)
        if times and len(times) < len(plan.annotators):
            plan.annotators = [c for c in plan.annotators if c not in times]
            plan.times = times
        # and a column of notes or of the item's text (a "notes" column's remarks became classes; walkthrough 97)
        notes = table.note_columns(plan.annotators)
        if notes and len(notes) < len(plan.annotators):
            plan.annotators = [c for c in plan.annotators if c not in notes]
            plan.notes = notes
    return plan


#: soft-label columns a file may hold (one per class): DEEM's class limit (``deem_core.model.sizes.MAX_CLASSES``; a
#: test keeps the two equal, this layer does not import the model's)
MAX_SOFT_CLASSES = 1_000

#: distinct labels a read gathers at most: class labels are a set of classes (DEEM handles 1,000; a 185 MB Parquet of
#: 20 million answers and 4 million distinct labels read in 160 s to a 9.3 GB peak, then a 58 s summary in the
#: page's thread; attack round 37). Counted chunk by chunk, so the read stops early and its count stays bounded.
MAX_DISTINCT_LABELS = 100_000


# ---------------------------------------------------------------------------------------------- collecting
class Collector:
    """Gathers long rows (and gold rows) from every chunk of every table, counting what is skipped."""

    def __init__(self, keep_missing: bool = False, budget: Any = None):
        self.keep_missing = keep_missing
        self.budget = budget  # the read's Budget: answers counted as they are gathered (None: not counted)
        self.text_parts: list[pd.DataFrame] = []
        self.typed_parts: list[pd.DataFrame] = []
        self.gold_parts: list[pd.DataFrame] = []
        self.skips: dict[tuple[str, str], list[Any]] = {}  # (file, reason) -> [count, places (SKIP_PLACES at most)]
        self.missing: dict[str, list[Any]] = {}  # file -> [count, where, spellings]
        self.dropped_tasks: list[np.ndarray] = []
        self.notes: list[str] = []
        self.labels_seen = pd.Index([], dtype=object)  # (at most MAX_DISTINCT_LABELS + one chunk's)

    def skip(self, name: str, reason: str, count: int, where: str | Sequence[str] | None = None) -> None:
        """``count`` answers of file ``name`` skipped for ``reason``; ``where``: the place of the first (or of the
        first ones), named in the warning up to SKIP_PLACES in all."""
        if count <= 0:
            return
        entry = self.skips.setdefault((name, reason), [0, []])
        entry[0] += count
        for place in ([where] if isinstance(where, str) else list(where or ())):
            if place not in entry[1] and len(entry[1]) < SKIP_PLACES:
                entry[1].append(place)

    def add(self, table: Table, part: pd.DataFrame, plan: Plan) -> None:
        """One chunk's answers ``task, worker, label`` (index = the table's rows) after the id checks and
        the missing-label drop."""
        if not len(part):
            return
        if self.budget is not None:
            self.budget.add_answers(len(part), table.name)
        _check_empty_ids(table, part, plan)
        soft_only = bool(plan.soft) and "label" in part and _all_empty(part["label"])
        if not soft_only:
            missing = missing_mask(part["label"], self.keep_missing)
            if missing.any():
                row = part.index[int(missing.nonzero()[0][0])]
                entry = self.missing.setdefault(table.name, [0, None, set()])
                entry[0] += int(missing.sum())
                if entry[1] is None:
                    entry[1] = table.line(_position(table, row))
                spelled = part["label"][missing]
                entry[2].update(str(v).strip() for v in pd.unique(spelled.astype(object)) if
                                isinstance(v, str) and v.strip())
                tasks = part["task"][missing]
                self.dropped_tasks.append(np.asarray(pd.unique(tasks.astype(object)), dtype=object))
                part = part.loc[~missing]
        if not soft_only and len(part):
            self._count_labels(table, part)
        if plan.soft:
            part = _soft_floats(table, part, plan.soft)
        if len(part):
            (self.typed_parts if table.typed else self.text_parts).append(part)

    def _count_labels(self, table: Table, part: pd.DataFrame) -> None:
        """DataError once the labels gathered so far pass :data:`MAX_DISTINCT_LABELS` distinct values."""
        values = part["label"].unique()  # (a categorical chunk: its codes' values, not its whole dictionary)
        if len(values) <= MAX_DISTINCT_LABELS:
            self.labels_seen = self.labels_seen.union(pd.Index(np.asarray(values, dtype=object).astype(str)),
                                                      sort=False)
        if len(values) > MAX_DISTINCT_LABELS or len(self.labels_seen) > MAX_DISTINCT_LABELS:
            where = table.line(_position(table, part.index[-1]))
            raise DataError(f"{table.name}: more than {MAX_DISTINCT_LABELS:,} distinct labels by {where}: a label "
                            f"column holds classes (DEEM handles at most 1,000, the other methods no more than that "
                            f"usefully). Check that the label column is the answers' class, not free text or ids")

    def add_gold(self, table: Table, gold: pd.DataFrame) -> None:
        if not len(gold):
            return
        keep = ~missing_mask(gold["gold"], self.keep_missing)
        gold = gold.loc[keep]
        if len(gold):
            self.gold_parts.append(gold.assign(source=table.name))

    def missing_warnings(self, kept_tasks: set[str] | None) -> list[str]:
        """One warning per file: answers dropped for a missing label, and the tasks left with no answer."""
        out = []
        lost_all: set[Any] = set()
        if self.dropped_tasks:
            dropped = set(np.concatenate(self.dropped_tasks).tolist())
            lost_all = dropped - (kept_tasks or set())
        for name, (count, where, spellings) in self.missing.items():
            ordered = sorted(spellings, key=lambda v: (v.lower(), v))
            shown = ", ".join(ordered[:6]) + (", ..." if len(ordered) > 6 else "")
            spelled = f"empty or {shown}" if shown else "empty"
            message = f"{name}: dropped {counted(count, 'answer')} with a missing label ({spelled}; first on {where})"
            if lost_all:
                message += f"; {counted(len(lost_all), 'task')} had no other answer and {is_are(len(lost_all))} left out"
            if spellings:
                message += "; keep such labels with keep_missing=True (CLI --keep-missing-labels)"
            out.append(message)
        return out

    def skip_warnings(self) -> list[str]:
        out = []
        for (name, reason), (count, places) in self.skips.items():
            where = ""
            if places:  # (only the first was named: two junk answers, the second not found; walkthrough 57)
                more = "; ..." if len(places) == SKIP_PLACES and count > SKIP_PLACES else ""
                then = f"; then {'; '.join(places[1:])}" if len(places) > 1 else ""
                where = f" (first on {places[0]}{then}{more})"
            out.append(f"{name}: skipped {count:,} {in_number(count, reason)}{where}")
        return out


def _all_empty(values: pd.Series) -> bool:
    if isinstance(values.dtype, pd.CategoricalDtype):
        return bool((values.astype(str) == "").all())
    return bool((values.astype(str) == "").all())


def _lines(table: Table, rows: Sequence[Any]) -> list[str]:
    """The lines of the first SKIP_PLACES of ``rows`` (index labels of the table's chunk), for a skip warning."""
    return [table.line(_position(table, row)) for row in list(rows[:SKIP_PLACES])]


def _position(table: Table, row: Any) -> int:
    if table.typed:
        return int(table.frame.index.get_loc(row)) if hasattr(table, "frame") else int(row)
    return int(row)


def _check_empty_ids(table: Table, part: pd.DataFrame, plan: Plan) -> None:
    for role in ("task", "worker"):
        values = part[role]
        if table.typed:
            empty = (values.isna() | (values.astype(str).str.strip() == "")).to_numpy()
        elif isinstance(values.dtype, pd.CategoricalDtype):
            flags = blank_text(values.cat.categories.astype(str))
            codes = values.cat.codes.to_numpy()
            empty = np.where(codes < 0, True, flags[np.maximum(codes, 0)] if len(flags) else True)
        else:
            empty = (values.astype(str).str.strip() == "").to_numpy()
        if empty.any():
            row = part.index[int(empty.nonzero()[0][0])]
            # rows of the file, not answers: a wide file's row holds several (an empty task said "42 row(s)")
            rows = int(pd.Index(part.index[empty]).nunique())
            if role == "worker" and plan.format == "wide":  # the workers are the columns: one has no name
                raise DataError(f"{table.name}: a worker column's name is blank (only spaces or line separators); "
                                f"name it")
            column = plan.task_text() if role == "task" else (plan.worker or role)
            place = _position(table, row)
            raise DataError(f"{table.name}: {table.line(place)}: empty {role} (column {column!r})"
                            f"{table.short_row(place)}; {counted(rows, 'row')} in all")


def _soft_floats(table: Table, part: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``part`` with its soft-label ``columns`` as floats (checked non-negative and finite), set in one block (a
    column at a time cost the square of their number; attack round 33)."""
    columns = list(columns)
    raw = part[columns]
    try:  # numbers already (or number strings): one conversion of the block
        values = raw.to_numpy(dtype=float)
    except (TypeError, ValueError):  # text among them: read as numbers where they are, NaN (refused below) elsewhere
        flat = pd.Series(raw.astype(object).to_numpy().ravel())
        values = pd.to_numeric(flat, errors="coerce").to_numpy(dtype=float).reshape(raw.shape)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        col = int(bad.any(axis=0).nonzero()[0][0])
        row = int(bad[:, col].nonzero()[0][0])
        raise DataError(f"{table.name}: {table.line(_position(table, part.index[row]))}: column {columns[col]!r}: "
                        f"soft labels must be non-negative numbers, got {raw.iloc[row, col]!r}")
    soft = set(columns)
    others = [c for c in part.columns if c not in soft]
    floats = pd.DataFrame(values, index=part.index, columns=columns)
    return pd.concat([part[others], floats], axis=1)[list(part.columns)]


# ---------------------------------------------------------------------------------------------- extraction
def _text(values: pd.Series) -> pd.Series:
    return values.astype(str) if isinstance(values.dtype, pd.CategoricalDtype) else values


def _task_values(chunk: pd.DataFrame, plan: Plan) -> pd.Series:
    cols = plan.task_columns
    if len(cols) == 1:
        return chunk[cols[0]]
    out = _text(chunk[cols[0]]).astype(str)
    for column in cols[1:]:
        out = out + TASK_JOIN + _text(chunk[column]).astype(str)
    return out.astype("category")


def _status_keep(table: Table, chunk: pd.DataFrame, plan: Plan, collector: Collector,
                 excluded: Mapping[str, str]) -> pd.DataFrame:
    if not plan.status:
        return chunk
    status = _text(chunk[plan.status]).astype(str).str.strip().str.lower()
    drop = np.zeros(len(chunk), dtype=bool)
    for value, reason in excluded.items():
        hit = (status == value).to_numpy()
        if hit.any():
            collector.skip(table.name, reason, int(hit.sum()), _lines(table, chunk.index[hit]))
            drop |= hit
    return chunk.loc[~drop] if drop.any() else chunk


def _checkbox_labels(table: Table, chunk: pd.DataFrame, plan: Plan, collector: Collector) -> pd.DataFrame:
    """A group of boolean ``Answer.<field>.<option>`` columns -> one label per row: the ticked option."""
    ticked = np.zeros((len(chunk), len(plan.options)), dtype=bool)
    for position, (column, _) in enumerate(plan.options):
        values = _text(chunk[column]).astype(str).str.strip().str.lower()
        truthy = values.isin(_TRUE).to_numpy()
        falsy = values.isin(_FALSE).to_numpy()
        bad = ~(truthy | falsy)
        if bad.any():
            row = chunk.index[int(bad.nonzero()[0][0])]
            raise DataError(f"{table.name}: {table.line(_position(table, row))}: column {column!r} should hold true or "
                            f"false (a checkbox of {plan.label}), got {chunk[column].loc[row]!r}")
        ticked[:, position] = truthy
    count = ticked.sum(axis=1)
    return _ticked_labels(table, chunk, plan, collector,
                          np.where(count == 1, ticked.argmax(axis=1), np.where(count > 1, _SEVERAL, _NONE)))


def _ticked_labels(table: Table, chunk: pd.DataFrame, plan: Plan, collector: "Collector",
                   ticked: np.ndarray) -> pd.DataFrame:
    """``chunk`` with ``_label``, each row's ticked option (``ticked``: its position in ``plan.options``, or
    :data:`_NONE` / :data:`_SEVERAL`): none ticked gives no label, several are left out and counted."""
    several = ticked == _SEVERAL
    if several.any():
        collector.skip(table.name, f"answer(s) with several options of {plan.label} ticked", int(several.sum()),
                       _lines(table, chunk.index[several]))
    names = np.array([option for _, option in plan.options] + [""], dtype=object)
    labels = pd.Series(names[np.where(ticked >= 0, ticked, len(plan.options))], index=chunk.index, dtype=object)
    out = chunk.assign(_label=labels)
    return out.loc[~several] if several.any() else out


_LS_SENTINEL = "\x00several"


def _ls_cell(value: str) -> str:
    """A Label Studio CSV / JSON-MIN cell -> one class ('' when none; a sentinel when several)."""
    text = value.strip()
    if not text or text[0] not in "[{":
        return value
    try:
        parsed = loads_bounded(text)
    except ValueError:
        return value
    return ls_value(parsed)


def ls_value(parsed: Any, path_separator: str = " / ") -> str:
    """A control's value (string, number, list or ``{"choices": [...]}``-like dict) -> one class as text (a taxonomy
    path's names joined by ``path_separator``)."""
    if isinstance(parsed, dict):
        lists = [v for k, v in parsed.items() if k in ("choices", "labels", "rating", "taxonomy", "number", "text")]
        if len(lists) != 1:
            return _LS_SENTINEL if parsed else ""
        parsed = lists[0]
    if isinstance(parsed, list):
        flat = []
        for item in parsed:
            if isinstance(item, list):  # a taxonomy path
                flat.append(path_separator.join(str(x) for x in item))
            else:
                flat.append(item)
        if not flat:
            return ""
        if len(flat) > 1:
            return _LS_SENTINEL
        parsed = flat[0]
    if isinstance(parsed, bool):
        return "true" if parsed else "false"
    if isinstance(parsed, float) and parsed.is_integer():
        return str(int(parsed))
    if parsed is None:
        return ""
    return str(parsed)


def _extract_wide(table: Table, chunk: pd.DataFrame, plan: Plan, collector: Collector) -> None:
    """A wide chunk (a task per row, a worker per column) -> its answers, worker by worker, as one part.

    Works on the chunk's cells as one array: a loop over the worker columns made a part per column, and a file of
    15,000 worker columns and 5 rows took 25 s in this step alone (attack round of the seventh session)."""
    columns = list(plan.annotators)
    cells = chunk[columns].to_numpy(dtype=object)  # rows x workers
    flat = pd.Series(cells.T.ravel(), dtype=object)  # worker by worker, as the answers were always ordered
    if table.typed:
        present = (flat.notna() & (flat.astype(str).str.strip() != "")).to_numpy()
    else:
        present = (flat != "").to_numpy()
    by_worker = present.reshape(len(columns), len(chunk))
    answered = by_worker.any(axis=0)  # rows with an answer in some worker column
    worker_of, row_of = np.nonzero(by_worker)
    labels = flat[present].reset_index(drop=True)
    labels = labels.astype("category") if not table.typed else labels.infer_objects()
    has_answer = np.zeros(len(columns), dtype=bool)
    answering = worker_of[~missing_mask(labels, collector.keep_missing)]
    has_answer[answering] = True
    present_columns = collector.__dict__.setdefault("_wide_present", {})
    for column, answers in zip(columns, has_answer):
        present_columns[(table.name, column)] = present_columns.get((table.name, column), False) or bool(answers)
    if len(row_of):
        tasks = chunk[plan.task].iloc[row_of]
        if not table.typed and not isinstance(tasks.dtype, pd.CategoricalDtype):
            tasks = tasks.astype("category")  # (a table of many columns reads its cells as plain strings)
        workers = pd.Categorical.from_codes(worker_of, categories=pd.Index(columns, dtype=object))
        part = pd.DataFrame({"task": tasks.to_numpy() if table.typed else tasks.array,
                             "worker": workers if not table.typed else np.asarray(columns, dtype=object)[worker_of],
                             "label": labels.to_numpy() if table.typed else labels.array},
                            index=chunk.index[row_of])
        collector.add(table, part, plan)
    if not answered.all():  # a task row with every worker cell empty adds no answer: counted, said once
        count, first = collector.__dict__.setdefault("_wide_unanswered", {}).get(table.name, (0, None))
        tasks = chunk[plan.task][~answered]
        collector._wide_unanswered[table.name] = (count + len(tasks), tasks.iloc[0] if first is None else first)


def extract(table: Table, chunk: pd.DataFrame, plan: Plan, collector: Collector,
            include_rows: bool = True) -> None:
    """One chunk of ``table`` -> answers (and gold) into ``collector`` following ``plan``."""
    fmt = plan.format
    if fmt == "long":
        part = pd.DataFrame({"task": chunk[plan.task], "worker": chunk[plan.worker]}, index=chunk.index)
        part["label"] = chunk[plan.label] if plan.label is not None else ""
        if plan.soft:  # in one block: added a column at a time, 5,000 of them took 24 s a chunk (attack round 33)
            part = pd.concat([part, chunk[list(plan.soft)]], axis=1)
        collector.add(table, part, plan)
        return
    if fmt == "per_annotator":
        part = pd.DataFrame({"task": chunk[plan.task], "worker": plan.worker_name, "label": chunk[plan.label]},
                            index=chunk.index)
        if not table.typed:
            part["worker"] = part["worker"].astype("category")
        collector.add(table, part, plan)
        return
    if fmt == "wide":
        _extract_wide(table, chunk, plan, collector)
        return
    # the platforms' tables
    if fmt == "mturk":
        chunk = _status_keep(table, chunk, plan, collector, {"rejected": "rejected assignment(s)"})
    elif fmt == "toloka":
        # (a Toloka row is one task of an assignment: "110 rejected assignment(s)" were 11 of 10 tasks; walkthrough 50)
        chunk = _status_keep(table, chunk, plan, collector, {"rejected": "answer(s) of rejected assignments",
                                                             "skipped": "answer(s) of assignments the worker skipped",
                                                             "expired": "answer(s) of expired assignments"})
    if not len(chunk):
        return
    if plan.task_inputs:
        _check_task_inputs(table, chunk, plan, collector)
    if plan.virtual:
        chunk = _expand_virtual(chunk, plan)
    task = _task_values(chunk, plan)
    if plan.options:
        checkbox = _virtual_checkbox_labels if _virtual_group(plan) else _checkbox_labels
        chunk = checkbox(table, chunk.assign(_task=task), plan, collector)
        task, labels = chunk["_task"], chunk["_label"]
    else:
        labels = chunk[plan.label]
        if fmt in ("label_studio_csv", "label_studio_min"):
            labels = _ls_labels(table, labels, plan, collector)
            keep = labels != _LS_SENTINEL
            if not bool(keep.all()):
                task, labels, chunk = task[keep], labels[keep], chunk.loc[keep]
    if fmt == "toloka" and plan.gold:
        gold = pd.DataFrame({"task": task, "gold": chunk[plan.gold]}, index=chunk.index)
        collector.add_gold(table, gold[(_text(gold["gold"]) != "").to_numpy()].assign(control=True))
    part = pd.DataFrame({"task": task, "worker": chunk[plan.worker], "label": labels}, index=chunk.index)
    collector.add(table, part, plan)


def _ls_labels(table: Table, labels: pd.Series, plan: Plan, collector: Collector) -> pd.Series:
    if isinstance(labels.dtype, pd.CategoricalDtype):
        categories = labels.cat.categories.astype(str)
        converted = pd.Index([_ls_cell(c) for c in categories])
        values = pd.Series(np.asarray(converted, dtype=object)[labels.cat.codes.to_numpy()], index=labels.index)
    else:
        values = labels.astype(object).map(lambda v: ls_value(v) if not isinstance(v, str) else _ls_cell(v))
    several = (values == _LS_SENTINEL).to_numpy()
    if several.any():
        collector.skip(table.name, f"annotation(s) with several values for {plan.label}", int(several.sum()),
                       _lines(table, labels.index[several]))
    return values.astype("category") if not table.typed else values


def missing_spellings() -> str:
    return ", ".join(sorted(MISSING_LABELS))
