"""Reading annotation files (and truth files) into an :class:`~deem_core.data.annotations.AnnotationSet`.

Sources
-------
``read_annotations`` takes one source or a list of them. A source is a path (``str`` / ``Path``; a
folder means every ``.csv``, ``.csv.gz``, ``.tsv`` and ``.txt`` file in it), an uploaded file given as
``(name, bytes)`` or as an object with ``.name`` and ``.getvalue()`` / ``.read()`` (Streamlit's
``UploadedFile``), or a pandas ``DataFrame`` (already typed: its values are used as they are).

Bytes to text
-------------
* gzip is recognised by its magic bytes (``1f 8b``), whatever the file is called;
* a UTF-8 byte-order mark is dropped; UTF-16 with a byte-order mark (Excel's "Unicode text") is decoded;
* text that is not valid UTF-8 is read as Windows-1252 (or Latin-1 where Windows-1252 has no character)
  with a warning that names the first line with a bad byte;
* binary content (NUL bytes, many control characters, ZIP / Excel / Parquet / PDF signatures) is refused.

Delimiter: the first non-blank line (the header) is split with ``,``, ``;``, tab and ``|`` (quotes
respected); the candidate that gives at least two columns and the most following lines with the same
number of fields wins, then the one with more columns. Blank lines (also lines of empty fields) are
skipped and counted in ``warnings``; quoted fields may hold the delimiter, quotes and newlines; spaces
around every cell and column name are stripped.

Layout detection (``format="auto"``), per file, on the header (case-insensitive; ``columns=``
overrides any of it):

1. the **task** column is the first column named like ``task`` (task, task_id, item, item_id, question,
   example, sample, image, id, ...); without one the file is refused (with a hint when the first line
   looks like data rather than a header);
2. a **worker** column (worker, annotator, rater, labeler, learner, user, performer, judge, ...) means
   **long**: one row per answer ``task, worker, label``; the label column is ``label`` (or answer,
   response, annotation, class, category, vote, rating, ...), or per-class probability columns
   ``prob_<class>`` (soft labels) may stand in for it or come with it;
3. otherwise a **label** column means **per_annotator**: ``task, label``, the annotator is named after
   the file (``alice.csv`` -> ``alice``);
4. otherwise the file is **wide**: every other column is one annotator, its header the annotator's
   name, an empty cell a missing answer. Several wide files that each have one annotator column with
   the same header are read as per_annotator files instead.

All files of one call must have the same layout; long and wide files are concatenated.

Values and their types
----------------------
A CSV has no types, so each role (task, worker, label) is typed over all its values in all files: it
becomes integers when *every* value is a canonical integer (``0|-?[1-9][0-9]*`` within 64 bits), text
otherwise. So ``1,2,3`` -> ints, ``a,b`` -> str, and ``01`` keeps the whole column as text: ``"01"`` and
``"1"`` stay two different tasks (nothing is merged silently). Floats, booleans and big integers stay
text. A text cell that :mod:`deem_core.data.export` neutralised for spreadsheets (``'`` followed by one of
``= + - @`` tab CR LF) gets its quote removed, so load -> export -> load keeps every value. Worker names
that come from headers (wide) or file names (per_annotator) follow the same rule.

Label cells ``nan``, ``NaN``, ``null``, ``NULL``, ``None`` and ``<NA>`` (what software writes for "no
value") are empty labels; ``NA`` and ``N/A`` are kept as answers ("not applicable"). What survives a
round trip through a CSV: every value, except surrounding spaces (stripped), blank text, and text that
starts with a quote followed by a formula character (the export writes ``=x`` and ``'=x`` alike).

What is fixed silently is reported in ``AnnotationSet.warnings`` with a count: blank lines, answers with
an empty label, exact duplicate answers, ignored extra columns, empty annotator columns, the
encoding fallback. A problem that cannot be fixed raises :class:`~deem_core.data.annotations.DataError` naming
the file and, where it applies, the line (counted in the file, header = line 1) and column. A single
class is accepted by the loader (``DEEM.fit`` refuses it); so are a single annotator and a single task.

:func:`deem_core.model.sizes.check_problem_size` refuses models that would not fit in memory, or that have
more classes than the engine handles (:data:`MAX_CLASSES`), before anything is allocated.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import warnings as _warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Hashable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from deem_core.data.annotations import AnnotationSet, DataError

__all__ = [
    "LAYOUTS", "Preview", "align_truth", "detect_format", "preview",
    "read_annotations", "read_table", "read_truth",
]

LAYOUTS = ("long", "wide", "per_annotator")
DELIMITERS = (",", ";", "\t", "|")
FILE_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".txt.gz", ".gz")

SYNONYMS: dict[str, tuple[str, ...]] = {
    "task": ("task", "task_id", "taskid", "item", "item_id", "itemid", "question", "question_id", "example",
             "example_id", "sample", "sample_id", "image", "image_id", "document", "doc_id", "object", "id"),
    "worker": ("worker", "worker_id", "workerid", "annotator", "annotator_id", "rater", "rater_id", "labeler",
               "labeller", "labeler_id", "learner", "user", "user_id", "performer", "judge", "coder"),
    "label": ("label", "labels", "answer", "response", "annotation", "class", "category", "vote", "rating",
              "judgement", "judgment", "prediction"),
    "truth": ("truth", "gold", "true_label", "ground_truth", "groundtruth", "gold_label", "golden", "target",
              "label", "answer", "class", "y"),
}
SOFT_PREFIX = "prob_"
#: label cells that software writes for "no value": read as empty (missing) labels. ``NA`` / ``N/A`` are not
#: among them: they can be a real answer ("not applicable").
MISSING_LABELS = frozenset({"nan", "NaN", "NAN", "null", "NULL", "None", "<NA>"})


_INT_PATTERN = r"(?:0|-?[1-9][0-9]*)"
_FORMULA_QUOTED = r"^'(?=[=+\-@\t\r\n])"
_SNIFF_CHARS = 1 << 16
_BINARY_SIGNATURES = (
    (b"PK\x03\x04", "a ZIP archive or an Excel workbook (.xlsx)"),
    (b"\xd0\xcf\x11\xe0", "an old Excel workbook (.xls)"),
    (b"PAR1", "a Parquet file"),
    (b"%PDF", "a PDF document"),
    (b"SQLite format 3", "an SQLite database"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
)


# ---------------------------------------------------------------------------------------------- sources
@dataclass
class _Blob:
    name: str
    data: bytes | None = None
    frame: pd.DataFrame | None = None


def _blobs(sources: Any) -> list[_Blob]:
    if isinstance(sources, (str, Path, pd.DataFrame, tuple)) or hasattr(sources, "getvalue") or (
            hasattr(sources, "read") and hasattr(sources, "name")):
        sources = [sources]
    elif not isinstance(sources, (list, tuple)) and not hasattr(sources, "__iter__"):
        raise TypeError(f"cannot read annotations from {type(sources).__name__}: give a path, (name, bytes), "
                        f"an uploaded file or a DataFrame")
    out: list[_Blob] = []
    for source in sources:
        out.extend(_blob(source))
    if not out:
        raise DataError("no annotation files were given")
    return out


def _blob(source: Any) -> list[_Blob]:
    if isinstance(source, pd.DataFrame):
        return [_Blob(name=str(source.attrs.get("name", "DataFrame")), frame=source)]
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(FILE_SUFFIXES))
            if not files:
                raise DataError(f"{path.name or path}: the folder holds no .csv, .csv.gz, .tsv or .txt files")
            return [_Blob(name=p.name, data=p.read_bytes()) for p in files]
        return [_Blob(name=path.name, data=path.read_bytes())]
    if isinstance(source, tuple):
        if len(source) != 2:
            raise TypeError("an uploaded file must be given as (name, bytes)")
        name, content = source
        if isinstance(content, (str, Path)) and "\n" not in str(content):  # a pair of paths, not (name, text)
            return _blob(Path(name)) + _blob(Path(content))
        if isinstance(content, pd.DataFrame):
            return [_Blob(name=str(name), frame=content)]
        if isinstance(content, str):
            content = content.encode("utf-8")
        return [_Blob(name=Path(str(name)).name, data=bytes(content))]
    if hasattr(source, "getvalue"):
        return [_Blob(name=Path(str(getattr(source, "name", "upload"))).name, data=bytes(source.getvalue()))]
    if hasattr(source, "read"):
        content = source.read()
        if isinstance(content, str):
            content = content.encode("utf-8")
        return [_Blob(name=Path(str(getattr(source, "name", "upload"))).name, data=bytes(content))]
    raise TypeError(f"cannot read annotations from {type(source).__name__}: give a path, (name, bytes), "
                    f"an uploaded file or a DataFrame")


def _stem(name: str) -> str:
    lowered = name.lower()
    for suffix in (".gz",):
        if lowered.endswith(suffix):
            name, lowered = name[: -len(suffix)], lowered[: -len(suffix)]
    for suffix in (".csv", ".tsv", ".txt"):
        if lowered.endswith(suffix):
            return name[: -len(suffix)]
    return name


# ---------------------------------------------------------------------------------------------- bytes -> text
def _decode(name: str, data: bytes) -> tuple[str, str, list[str]]:
    """Bytes -> (text, encoding, warnings); refuses binary content with a DataError."""
    notes: list[str] = []
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{name}: looks like a gzip file but cannot be decompressed ({exc})") from None
    if not data.strip():
        raise DataError(f"{name}: the file is empty")
    for signature, what in _BINARY_SIGNATURES:
        if data.startswith(signature):
            raise DataError(f"{name}: is {what}, not CSV text; save the annotations as CSV (.csv or .csv.gz)")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return _check_text(name, data.decode("utf-16")), "utf-16", notes
        except UnicodeDecodeError:
            raise DataError(f"{name}: starts with a UTF-16 byte-order mark but is not valid UTF-16") from None
    encoding = "utf-8"
    if data.startswith(b"\xef\xbb\xbf"):
        data, encoding = data[3:], "utf-8-sig"
    nul = data.find(b"\x00", 0, _SNIFF_CHARS)
    if nul >= 0:
        raise DataError(f"{name}: does not look like CSV text (binary content: a NUL byte at offset {nul}); "
                        f"save the annotations as CSV (.csv or .csv.gz)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        try:
            text, encoding = data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            text, encoding = data.decode("latin-1"), "latin-1"
        notes.append(f"{name}: not valid UTF-8 (first bad byte on line {line}); read as Latin-1 "
                     f"(Windows-1252): check accented names")
    return _check_text(name, text), encoding, notes


def _check_text(name: str, text: str) -> str:
    sample = text[:_SNIFF_CHARS]
    control = sum(1 for ch in sample if (ord(ch) < 32 and ch not in "\t\r\n") or 0x7f <= ord(ch) < 0xa0)
    if control > max(8, len(sample) // 100):
        raise DataError(f"{name}: does not look like CSV text ({control} control characters in the first "
                        f"{len(sample)} characters); save the annotations as CSV (.csv or .csv.gz)")
    if not text.strip():
        raise DataError(f"{name}: the file is empty")
    return text


# ---------------------------------------------------------------------------------------------- text -> table
@dataclass
class _Table:
    """One parsed file: text cells ("" = empty), row index = position of the record after the header."""

    name: str
    frame: pd.DataFrame
    delimiter: str = ","
    encoding: str = "utf-8"
    warnings: list[str] = field(default_factory=list)
    text: str | None = None
    header_line: int = 1  # 1-based line of the header
    typed: bool = False  # True for DataFrame sources: values keep their Python types

    def line(self, row: int) -> str:
        """Where data row ``row`` (position after the header) is, for messages: 'line N' or 'row N'."""
        if self.text is None:
            return f"row {row + 1}"
        return f"line {_line_of(self.text, self.delimiter, self.header_line, row)}"


def _csv_rows(text: str, delimiter: str) -> Iterable[list[str]]:
    return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)


def _line_of(text: str, delimiter: str, header_line: int, row: int) -> int:
    if '"' not in text:
        return header_line + 1 + row
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    target = row + 1  # records after the header (the text starts at the header)
    previous_end = 0
    for index, _ in enumerate(reader):
        if index == target:
            return header_line + previous_end
        previous_end = reader.line_num
    return header_line + previous_end


def _sniff(name: str, text: str) -> tuple[str, list[str]]:
    """Pick the delimiter; returns it and the header cells."""
    sample = text[:_SNIFF_CHARS]
    truncated = len(text) > len(sample)
    best: tuple[tuple[float, int], str, list[str]] | None = None
    first_header: list[str] | None = None
    for delimiter in DELIMITERS:
        try:
            rows = [r for r in _csv_rows(sample, delimiter) if any(c.strip() for c in r)]
        except csv.Error:
            continue
        if truncated and len(rows) > 1:
            rows = rows[:-1]
        if not rows:
            continue
        header = rows[0]
        if first_header is None:
            first_header = header
        if len(header) < 2:
            continue
        body = rows[1:]
        consistent = sum(len(r) == len(header) for r in body) / len(body) if body else 1.0
        score = (consistent, len(header))
        if best is None or score > best[0]:
            best = (score, delimiter, header)
    if best is None:
        shown = (first_header or [""])[0][:60]
        raise DataError(f"{name}: found a single column ({shown!r}); expected columns such as task,worker,label "
                        f"separated by commas, semicolons or tabs")
    return best[1], [c.strip(" ") for c in best[2]]


def _quote_never_closed(text: str, header_line: int) -> int:
    open_line = None
    for number, line in enumerate(text.splitlines(), start=header_line):
        if line.count('"') % 2:
            open_line = number if open_line is None else None
    return open_line or header_line


def _too_many_fields(text: str, delimiter: str, n_header: int, header_line: int) -> tuple[int, int]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    previous_end = 0
    for index, row in enumerate(reader):
        if index and len(row) > n_header:
            return header_line + previous_end, len(row)
        previous_end = reader.line_num
    return header_line, n_header


def _parse_text(name: str, text: str, encoding: str, notes: list[str], nrows: int | None = None) -> _Table:
    # leading blank lines are dropped; the header is the first non-blank line
    skipped = re.match(r"(?:[ \t]*(?:\r\n|\n|\r))*", text).group(0)  # whole blank lines only
    stripped = text[len(skipped):]
    header_line = 1 + skipped.count("\n") + skipped.count("\r") - skipped.count("\r\n")
    text = stripped
    delimiter, header = _sniff(name, text)
    named = [h for h in header if h]
    dupes = sorted({h for h in named if named.count(h) > 1})
    if dupes:
        raise DataError(f"{name}: column name {dupes[0]!r} appears {named.count(dupes[0])} times in the header; "
                        f"give every column its own name")
    try:
        with _warnings.catch_warnings(record=True) as caught:
            _warnings.simplefilter("always")
            frame = pd.read_csv(io.StringIO(text), sep=delimiter, dtype=str, header=0, index_col=False,
                                keep_default_na=False, na_filter=False, skip_blank_lines=False, engine="c",
                                nrows=nrows, quotechar='"')
    except pd.errors.ParserError as exc:
        message = str(exc)
        if "EOF inside string" in message:
            line = _quote_never_closed(text, header_line)
            raise DataError(f"{name}: line {line}: a quoted field is never closed (a '\"' without its closing "
                            f"quote)") from None
        if "Expected" in message and "fields" in message:
            line, count = _too_many_fields(text, delimiter, len(header), header_line)
            raise DataError(f"{name}: line {line} has {count} fields but the header has {len(header)}; put "
                            f"values that contain {_show_delimiter(delimiter)} in double quotes") from None
        raise DataError(f"{name}: cannot read as CSV ({message.splitlines()[0]})") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{name}: the file is empty") from None
    if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        line, count = _too_many_fields(text, delimiter, len(header), header_line)
        raise DataError(f"{name}: line {line} has {count} fields but the header has {len(header)}; put "
                        f"values that contain {_show_delimiter(delimiter)} in double quotes")
    if len(frame.columns) != len(header):  # pragma: no cover - pandas and csv disagree on the header
        raise DataError(f"{name}: cannot read the header line")
    frame = frame.fillna("")
    frame.columns = header
    for column in frame.columns:
        frame[column] = frame[column].str.strip(" ")
    table = _Table(name=name, frame=frame, delimiter=delimiter, encoding=encoding, warnings=list(notes),
                   text=text, header_line=header_line)
    _drop_blank_rows(table)
    _drop_unnamed_columns(table)
    return table


def _show_delimiter(delimiter: str) -> str:
    return {"\t": "a tab", ",": "a comma", ";": "a semicolon", "|": "a '|'"}[delimiter]


def _drop_blank_rows(table: _Table) -> None:
    frame = table.frame
    if not len(frame.columns) or not len(frame):
        return
    blank = np.ones(len(frame), dtype=bool)
    for column in frame.columns:
        blank &= (frame[column] == "").to_numpy()
    if blank.any():
        table.frame = frame.loc[~blank]
        table.warnings.append(f"{table.name}: skipped {int(blank.sum())} blank line(s)")


def _drop_unnamed_columns(table: _Table) -> None:
    """Columns with no header: all empty (trailing delimiters) -> dropped; a first column with values -> a
    saved row index, ignored with a warning; any other -> error."""
    frame = table.frame
    keep = []
    for position, column in enumerate(frame.columns):
        if column != "":
            keep.append(position)
            continue
        values = frame.iloc[:, position]
        if (values == "").all():
            continue
        if position == 0:
            table.warnings.append(f"{table.name}: ignored the first column, which has no name (a saved row index?)")
            continue
        raise DataError(f"{table.name}: column {position + 1} has values but no name in the header; name it")
    if len(keep) != len(frame.columns):
        table.frame = frame.iloc[:, keep]


def _parse_blob(blob: _Blob, nrows: int | None = None) -> _Table:
    if blob.frame is not None:
        frame = blob.frame
        if not isinstance(frame.columns, pd.RangeIndex):
            frame = frame.copy()
            frame.columns = [str(c) for c in frame.columns]
        return _Table(name=blob.name, frame=frame, text=None, typed=True)
    text, encoding, notes = _decode(blob.name, blob.data or b"")
    return _parse_text(blob.name, text, encoding, notes, nrows=nrows)


def read_table(source: Any, nrows: int | None = None) -> pd.DataFrame:
    """The raw cells of one file as text (after decoding, delimiter detection, blank-line removal)."""
    blobs = _blobs(source)
    if len(blobs) != 1:
        raise DataError(f"expected one file, got {len(blobs)}")
    return _parse_blob(blobs[0], nrows=nrows).frame


# ---------------------------------------------------------------------------------------------- roles / layout
def _norm(name: Any) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def _find_role(columns: Sequence[str], role: str, exclude: Iterable[str] = ()) -> str | None:
    excluded = set(exclude)
    normalised = {c: _norm(c) for c in columns if c not in excluded}
    for synonym in SYNONYMS[role]:
        for column, norm in normalised.items():
            if norm == synonym:
                return column
    return None


def _given_column(name: str, columns: Sequence[str], role: str, given: str) -> str:
    if given in columns:
        return given
    matches = [c for c in columns if _norm(c) == _norm(given)]
    if len(matches) == 1:
        return matches[0]
    raise DataError(f"{name}: the {role} column {given!r} is not in the file; found "
                    f"{', '.join(repr(str(c)) for c in columns)}")


def _soft_columns(columns: Sequence[str], soft: Any) -> list[str]:
    if soft is False:
        return []
    if isinstance(soft, Mapping):
        return list(soft.values())
    prefix = soft if isinstance(soft, str) else SOFT_PREFIX
    found = [c for c in columns if _norm(c).startswith(prefix.lower()) and len(str(c)) > len(prefix)]
    if soft is None and len(found) < 2:
        return []
    return found


@dataclass
class _Roles:
    layout: str
    task: str
    worker: str | None = None
    label: str | None = None
    annotators: list[str] = field(default_factory=list)
    soft: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)


def _looks_like_data(columns: Sequence[str]) -> bool:
    return any(re.fullmatch(r"-?[0-9]+(\.[0-9]*)?", str(c).strip()) for c in columns) and not any(
        _norm(c) in SYNONYMS["task"] for c in columns)


def _roles(name: str, frame: pd.DataFrame, fmt: str = "auto", columns: Mapping[str, str] | None = None,
           soft: Any = None) -> _Roles:
    cols = [str(c) for c in frame.columns]
    columns = dict(columns or {})
    unknown = set(columns) - {"task", "worker", "label"}
    if unknown:
        raise ValueError(f"columns= maps task, worker and label; got {sorted(unknown)}")
    if fmt not in ("auto",) + LAYOUTS:
        raise ValueError(f"format must be 'auto', 'long', 'wide' or 'per_annotator', got {fmt!r}")
    if "task" in columns:
        task = _given_column(name, cols, "task", columns["task"])
    else:
        task = _find_role(cols, "task")
        if task is None and fmt in ("wide", "per_annotator"):
            task = cols[0]
    if task is None:
        shown = ", ".join(repr(c) for c in cols[:8])
        if _looks_like_data(cols):
            raise DataError(f"{name}: the first line ({shown}) looks like data, not a header; add a header line "
                            f"naming the columns, e.g. task,worker,label")
        raise DataError(f"{name}: no task column among {shown}; name it 'task' (or pass columns={{'task': ...}}, "
                        f"CLI --task-column)")
    rest = [c for c in cols if c != task]
    worker = (_given_column(name, cols, "worker", columns["worker"]) if "worker" in columns
              else _find_role(rest, "worker"))
    label = (_given_column(name, cols, "label", columns["label"]) if "label" in columns
             else _find_role([c for c in rest if c != worker], "label"))
    soft_cols = _soft_columns(rest, soft)
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
        if missing:
            raise DataError(f"{name}: missing column(s) {', '.join(repr(m) for m in missing)} for the long layout "
                            f"(task, worker, label); found {', '.join(repr(c) for c in cols)}")
        used = {task, worker, label, *soft_cols}
        return _Roles("long", task, worker, label, soft=soft_cols, extra=[c for c in cols if c not in used])
    if soft is not None and soft is not False and soft_cols:
        raise DataError(f"{name}: soft labels (prob_<class> columns) are read from the long layout only "
                        f"(task, worker, prob_...)")
    if layout == "per_annotator":
        if label is None:
            candidates = [c for c in rest if c != worker]
            if len(candidates) != 1:
                raise DataError(f"{name}: which column holds the labels? found {', '.join(repr(c) for c in cols)}; "
                                f"name it 'label' (or pass columns={{'label': ...}}, CLI --label-column)")
            label = candidates[0]
        return _Roles("per_annotator", task, label=label, extra=[c for c in cols if c not in (task, label)])
    annotators = [c for c in cols if c != task]
    if not annotators:
        raise DataError(f"{name}: only a task column ({task!r}); a wide file needs one column per annotator")
    return _Roles("wide", task, annotators=annotators)


def detect_format(frame: pd.DataFrame, columns: Mapping[str, str] | None = None, name: str = "table") -> str:
    """The layout of one parsed table: ``"long"``, ``"wide"`` or ``"per_annotator"`` (rule: module docstring).

    Raises DataError when no task column can be found."""
    return _roles(name, frame, "auto", columns).layout


@dataclass
class Preview:
    """What the dashboard shows before loading: raw cells, detected layout and column roles."""

    name: str
    frame: pd.DataFrame  # raw text cells of the first rows
    layout: str | None  # None when it could not be detected (see ``problem``)
    columns: dict[str, Any]  # task / worker / label / annotators / soft / ignored
    delimiter: str
    encoding: str
    warnings: list[str]
    problem: str | None = None


def preview(source: Any, format: str = "auto", columns: Mapping[str, str] | None = None, soft: Any = None,
            nrows: int = 20) -> Preview:
    """Parse the first ``nrows`` rows of one file and say how it would be read (never raises for layout
    problems: they are in ``problem``; unreadable bytes still raise DataError)."""
    blobs = _blobs(source)
    if len(blobs) != 1:
        raise DataError(f"preview expects one file, got {len(blobs)}")
    table = _parse_blob(blobs[0], nrows=nrows)
    fmt = format.replace("-", "_")
    try:
        roles = _roles(table.name, table.frame, fmt, columns, soft)
    except DataError as exc:
        return Preview(table.name, table.frame, None, {}, table.delimiter, table.encoding, table.warnings, str(exc))
    mapping: dict[str, Any] = {"task": roles.task}
    if roles.layout == "long":
        mapping.update(worker=roles.worker, label=roles.label, soft=roles.soft)
    elif roles.layout == "per_annotator":
        mapping.update(label=roles.label, annotator=_stem(table.name))
    else:
        mapping.update(annotators=roles.annotators)
    mapping["ignored"] = roles.extra
    return Preview(table.name, table.frame, roles.layout, mapping, table.delimiter, table.encoding, table.warnings)


# ---------------------------------------------------------------------------------------------- typing
def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (messages show ``1``, not ``np.int64(1)``)."""
    return value.item() if isinstance(value, np.generic) else value


def _type_text(values: pd.Series) -> pd.Series:
    """Text cells of one role -> ints when every non-empty cell is a canonical 64-bit integer, else text
    with spreadsheet neutralisation undone. Empty cells stay ''. Works on the distinct values (a column
    of millions of cells has few of them) and maps back."""
    codes, uniques = pd.factorize(values.astype(str))
    typed = _type_uniques(pd.Series(uniques, dtype=str))
    return pd.Series(typed[codes], index=values.index)


def _type_uniques(uniques: pd.Series) -> np.ndarray:
    nonempty = (uniques != "").to_numpy()
    candidates = uniques[nonempty]
    if len(candidates) and bool(candidates.str.fullmatch(_INT_PATTERN).all()):
        try:
            ints = candidates.astype("int64").to_numpy()
        except (OverflowError, ValueError):  # beyond 64 bits: stays text
            pass
        else:
            if nonempty.all():
                return ints
            out = np.empty(len(uniques), dtype=object)
            out[:] = ""
            out[nonempty] = ints.tolist()
            return out
    quoted = uniques.str.startswith("'").to_numpy()
    if quoted.any():
        uniques = uniques.copy()
        uniques[quoted] = uniques[quoted].str.replace(_FORMULA_QUOTED, "", regex=True)
    return uniques.to_numpy(dtype=object)


# ---------------------------------------------------------------------------------------------- reading
def _long_part(table: _Table, roles: _Roles) -> pd.DataFrame:
    frame = table.frame
    part = pd.DataFrame({"task": frame[roles.task], "worker": frame[roles.worker]}, index=frame.index)
    part["label"] = frame[roles.label] if roles.label is not None else ""
    for column in roles.soft:
        part[column] = frame[column]
    return part


def _per_annotator_part(table: _Table, roles: _Roles) -> pd.DataFrame:
    frame = table.frame
    worker = _stem(table.name)
    return pd.DataFrame({"task": frame[roles.task], "worker": worker, "label": frame[roles.label]},
                        index=frame.index)


def _wide_part(table: _Table, roles: _Roles) -> pd.DataFrame:
    frame = table.frame
    pieces = []
    empty_columns = []
    for column in roles.annotators:
        values = frame[column]
        if table.typed:
            present = values.notna() & (values.astype(str).str.strip() != "")
        else:
            present = (values != "") & ~values.isin(MISSING_LABELS)
        if not present.any():
            empty_columns.append(column)
            continue
        pieces.append(pd.DataFrame({"task": frame[roles.task][present], "worker": column,
                                    "label": values[present]}, index=frame.index[present]))
    if empty_columns:
        shown = ", ".join(repr(c) for c in empty_columns[:5]) + (" ..." if len(empty_columns) > 5 else "")
        table.warnings.append(f"{table.name}: ignored {len(empty_columns)} annotator column(s) with no labels: {shown}")
    if not pieces:
        raise DataError(f"{table.name}: no annotations (every annotator column is empty)")
    return pd.concat(pieces)


def _check_empty_ids(table: _Table, part: pd.DataFrame, roles: _Roles) -> None:
    for role in ("task", "worker"):
        values = part[role]
        empty = values.isna() | (values.astype(str).str.strip() == "")
        if empty.any():
            row = int(empty.to_numpy().nonzero()[0][0])
            column = getattr(roles, role) or role
            position = table.frame.index.get_loc(part.index[row]) if table.typed else part.index[row]
            raise DataError(f"{table.name}: {table.line(int(position))}: empty {role} (column {column!r}); "
                            f"{int(empty.sum())} row(s) in all")


def _drop_empty_labels(table: _Table, part: pd.DataFrame, has_soft: bool) -> pd.DataFrame:
    if not table.typed:
        part["label"] = part["label"].where(~part["label"].isin(MISSING_LABELS), "")
    if has_soft and (part["label"].astype(str) == "").all():
        return part
    values = part["label"]
    empty = values.isna() | (values.astype(str).str.strip() == "")
    if not empty.any():
        return part
    row = int(empty.to_numpy().nonzero()[0][0])
    position = table.frame.index.get_loc(part.index[row]) if table.typed else part.index[row]
    table.warnings.append(f"{table.name}: dropped {int(empty.sum())} answer(s) with an empty label "
                          f"(first on {table.line(int(position))})")
    return part.loc[~empty.to_numpy()]


def _soft_floats(table: _Table, part: pd.DataFrame, columns: list[str]) -> None:
    for column in columns:
        numbers = pd.to_numeric(part[column], errors="coerce")
        bad = numbers.isna() | ~np.isfinite(numbers.to_numpy(dtype=float)) | (numbers < 0)
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            raw = part[column].iloc[row]
            raise DataError(f"{table.name}: {table.line(int(part.index[row]))}: column {column!r}: soft labels must be "
                            f"non-negative numbers, got {raw!r}")
        part[column] = numbers.astype(float)


def _source_name(tables: Sequence[_Table]) -> str:
    names = [t.name for t in tables]
    if len(names) <= 3:
        return ", ".join(names)
    return f"{len(names)} files ({', '.join(names[:2])}, ...)"


def read_annotations(sources: Any, format: str = "auto", columns: Mapping[str, str] | None = None,
                     on_conflict: str = "error", soft: Any = None, classes: Sequence[Hashable] | None = None
                     ) -> AnnotationSet:
    """Read annotation file(s) into an :class:`AnnotationSet` (formats and rules: module docstring).

    format: ``"auto"``, ``"long"``, ``"wide"`` or ``"per_annotator"`` (``"per-annotator"`` too).
    columns: ``{"task": ..., "worker": ..., "label": ...}`` to name columns the detection would not find.
    soft: None (use ``prob_<class>`` columns when there are two or more), False (never), True (require
    them), a prefix string, or ``{class: column}``. on_conflict / classes: see ``AnnotationSet.from_long``.
    """
    fmt = format.replace("-", "_")
    if fmt not in ("auto",) + LAYOUTS:
        raise ValueError(f"format must be 'auto', 'long', 'wide' or 'per_annotator', got {format!r}")
    blobs = _blobs(sources)
    tables = [_parse_blob(blob) for blob in blobs]
    for table in tables:
        if not len(table.frame):
            shown = ", ".join(str(c) for c in table.frame.columns)
            raise DataError(f"{table.name}: has a header ({shown}) but no rows of annotations")
    roles = [_roles(t.name, t.frame, fmt, columns, soft if soft is not True else SOFT_PREFIX) for t in tables]
    if soft is True and not all(r.soft for r in roles):
        bad = next(t.name for t, r in zip(tables, roles) if not r.soft)
        raise DataError(f"{bad}: soft labels were asked for but there are no {SOFT_PREFIX}<class> columns")
    if fmt == "auto" and len(tables) > 1 and all(r.layout == "wide" and len(r.annotators) == 1 for r in roles) \
            and len({r.annotators[0] for r in roles}) == 1:
        roles = [_Roles("per_annotator", r.task, label=r.annotators[0]) for r in roles]
    layouts = {r.layout for r in roles}
    if len(layouts) > 1:
        described = ", ".join(f"{t.name} is {r.layout}" for t, r in zip(tables, roles))
        raise DataError(f"the files have different layouts ({described}); give files of one layout or pass "
                        f"format=")
    layout = layouts.pop()
    if layout == "per_annotator":
        seen: dict[str, str] = {}
        for table in tables:
            stem = _stem(table.name)
            if stem in seen:
                raise DataError(f"{table.name} and {seen[stem]} both name the annotator {stem!r} (one file per "
                                f"annotator, named after the annotator)")
            seen[stem] = table.name
    soft_names = sorted({c for r in roles for c in r.soft}, key=str)
    if layout == "long" and soft_names and len({tuple(r.soft) for r in roles}) > 1:
        raise DataError("the files have different soft-label columns: " +
                        "; ".join(f"{t.name}: {r.soft}" for t, r in zip(tables, roles)))

    warnings: list[str] = []
    text_parts, typed_parts = [], []
    for table, role in zip(tables, roles):
        if role.extra:
            table.warnings.append(f"{table.name}: ignored column(s) {', '.join(repr(c) for c in role.extra)}")
        if role.layout == "long":
            part = _long_part(table, role)
        elif role.layout == "per_annotator":
            part = _per_annotator_part(table, role)
        else:
            part = _wide_part(table, role)
        _check_empty_ids(table, part, role)
        part = _drop_empty_labels(table, part, bool(role.soft))
        if role.soft:
            _soft_floats(table, part, role.soft)
        warnings.extend(table.warnings)
        if len(part):
            (typed_parts if table.typed else text_parts).append(part.reset_index(drop=True))
    if not text_parts and not typed_parts:
        raise DataError(f"{_source_name(tables)}: no annotations (every label is empty)")

    soft_map: dict[Hashable, str] | None = dict(soft) if isinstance(soft, Mapping) else None
    if text_parts:
        combined = pd.concat(text_parts, ignore_index=True)
        combined["task"] = _type_text(combined["task"])
        combined["worker"] = _type_text(combined["worker"])
        if soft_names and soft_map is None:
            # class names come from the column names (prob_cat -> cat), typed together with the labels
            prefix = _soft_prefix(soft)
            suffixes = pd.Series([str(c)[len(prefix):].strip() for c in soft_names], dtype=str)
            typed = _type_text(pd.concat([combined["label"].astype(str), suffixes], ignore_index=True))
            combined["label"] = typed.iloc[: len(combined)].to_numpy()
            soft_map = dict(zip(typed.iloc[len(combined):].tolist(), soft_names))
        else:
            combined["label"] = _type_text(combined["label"])
        text_parts = [combined]
    elif soft_names and soft_map is None:
        soft_map = {str(c)[len(_soft_prefix(soft)):].strip(): c for c in soft_names}
    parts = text_parts + typed_parts
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    if soft_map is not None and "label" in frame.columns and (frame["label"].astype(str) == "").all():
        frame = frame.drop(columns="label")  # soft labels only: the hard label is their argmax
    source = _source_name(tables)
    data = AnnotationSet.from_long(frame, task="task", worker="worker", label="label", soft_columns=soft_map,
                                   classes=classes, on_conflict=on_conflict, source=source)
    data.warnings = warnings + data.warnings
    data.layout = layout
    return data


def _soft_prefix(soft: Any) -> str:
    return soft if isinstance(soft, str) else SOFT_PREFIX


# ---------------------------------------------------------------------------------------------- truth
def read_truth(source: Any, like: AnnotationSet | None = None, columns: Mapping[str, str] | None = None
               ) -> pd.Series:
    """Read true labels: ``task,truth`` (or any two columns: task first) -> Series indexed by task, named
    ``"truth"``. Same decoding and typing rules as :func:`read_annotations`; empty truths are skipped,
    identical repeated rows merged, contradicting ones refused. ``like``: an AnnotationSet whose task and
    class types the result is aligned to (:func:`align_truth`)."""
    blobs = _blobs(source)
    if len(blobs) != 1:
        raise DataError(f"expected one truth file, got {len(blobs)}")
    table = _parse_blob(blobs[0])
    name, frame = table.name, table.frame
    cols = [str(c) for c in frame.columns]
    columns = dict(columns or {})
    if not len(frame):
        raise DataError(f"{name}: has a header ({', '.join(cols)}) but no truth labels")
    task = (_given_column(name, cols, "task", columns["task"]) if "task" in columns
            else _find_role(cols, "task") or cols[0])
    rest = [c for c in cols if c != task]
    truth = (_given_column(name, cols, "truth", columns["truth"]) if "truth" in columns
             else _find_role(rest, "truth"))
    if truth is None:
        if len(rest) != 1:
            raise DataError(f"{name}: which column holds the true labels? found {', '.join(repr(c) for c in cols)}; "
                            f"name it 'truth'")
        truth = rest[0]
    tasks, values = frame[task], frame[truth]
    if table.typed:
        empty_task = tasks.isna() | (tasks.astype(str).str.strip() == "")
        empty_truth = values.isna() | (values.astype(str).str.strip() == "")
    else:
        empty_task, empty_truth = tasks == "", values == ""
    if empty_task.any():
        row = int(empty_task.to_numpy().nonzero()[0][0])
        raise DataError(f"{name}: {table.line(row if table.typed else int(frame.index[row]))}: empty task")
    keep = ~empty_truth.to_numpy()
    tasks, values = tasks[keep], values[keep]
    if not len(tasks):
        raise DataError(f"{name}: no truth labels (the {truth!r} column is empty)")
    if not table.typed:
        tasks, values = _type_text(tasks), _type_text(values)
    series = pd.Series(values.to_numpy(), index=pd.Index(tasks.to_numpy(), name="task"), name="truth")
    dup = series.index.duplicated(keep=False)
    if dup.any():
        pairs = pd.DataFrame({"task": series.index, "truth": series.to_numpy()})
        distinct = pairs.drop_duplicates()
        clash = distinct["task"].duplicated(keep=False)
        if clash.any():
            first = distinct.loc[clash, "task"].iloc[0]
            given = distinct.loc[distinct["task"] == first, "truth"].tolist()
            raise DataError(f"{name}: task {_plain(first)!r} has different truths {[_plain(g) for g in given]}")
        series = series[~series.index.duplicated()]
    series.attrs["warnings"] = list(table.warnings)
    if int((~keep).sum()):
        series.attrs["warnings"].append(f"{name}: skipped {int((~keep).sum())} task(s) with an empty truth")
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
