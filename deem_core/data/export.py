"""Writing results safely: atomic files and spreadsheet-safe CSV.

* Atomic: every file is written to a temporary sibling, flushed and fsynced, then renamed over the
  target (``os.replace``), so a crash mid-write never leaves a half file that looks complete.
* Spreadsheet-safe CSV (OWASP "CSV injection"): a string cell starting with ``=``, ``+``, ``-``, ``@``,
  tab, CR or LF is prefixed with a single quote so spreadsheets show it as text instead of running it; so is
  every ``=``, ``+``, ``-`` or ``@`` that follows a ``;``, tab or ``|`` inside a cell (Excel opens a CSV with
  the system's list separator, ``;`` in most European locales, so ``x;=1+1`` would become the cells ``x`` and
  ``=1+1``; attack round of the ninth session), and after a CR or LF inside a cell (split that way, a quoted
  field's line end ends the row). The reader takes exactly those quotes away again.
  Numbers (including negative ones) are left alone: only strings are touched, so labels keep their
  original values and types in every other format (Parquet, JSON).
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "FORMULA_PREFIXES", "FORMULA_QUOTED", "FORMULA_START", "atomic_write_bytes", "atomic_write_text", "neutralise_cell", "safe_csv_frame",
    "parquet_bytes", "to_safe_csv", "write_csv", "write_json", "write_parquet",
]

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")
#: what a spreadsheet may drop or read as a formula character before the first one (attack round 33: " =1+1",
#: "\u00a0=1+1", "\ufeff=1+1" and the full-width "＝1+1" were written raw): spaces, no-break and other Unicode
#: spaces, the byte-order mark; and the full-width forms of the formula characters. Also every control and
#: invisible format character (Unicode's Cc, Cf, Zl and Zp, and the default-ignorable fillers): direction marks,
#: zero-width joiners, the soft hyphen, C0/C1 separators ("\u200e=1+1", "\x0b=1+1", "\u00ad=1+1" were written raw;
#: attack round 41; the combining grapheme joiner, default-ignorable too, was left out of the list: attack round 42);
#: written as regular-expression escapes
_LEADING = (r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\xa0\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f"
            r"\u1160\u1680\u17b4\u17b5\u180b-\u180f\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\u3164\ufe00-\ufe0f"
            r"\ufeff\uffa0\ufff0-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
            r"\U0001d173-\U0001d17a\U000e0000-\U000e0fff ")
#: every character whose compatibility normalisation (NFKC) starts with a formula character: the full-width forms,
#: the small forms ("\ufe66", "\ufe62", "\ufe63", "\ufe6b"), super- and subscripts, the Hebrew alternative plus,
#: "\u2a75" and "\u2a76" ("==", "===") (the small forms and the superscript "\u207c" were written raw; attack round
#: 42); a test derives the list again from Unicode's table
_LOOKALIKES = "\uff1d\uff0b\uff0d\uff20\ufe66\ufe62\ufe63\ufe6b\u207c\u208c\u207a\u208a\ufb29\u2a75\u2a76"
_STARTS = "=+\\-@\t\r\n" + _LOOKALIKES
#: a cell the writer quotes: quotes already there, then what a spreadsheet drops, then a formula character (a value
#: starting "'=1" was written "''=1" and read back as "''=1": the reader looked for the formula character right
#: after its quote; the read of the diff, thirty-fifth session)
FORMULA_START = re.compile(f"'*[{_LEADING}]*[{_STARTS}]")
#: the reader's side: the one leading quote :func:`neutralise_cell` added (``formats.values`` takes it away)
FORMULA_QUOTED = re.compile(f"^'(?='*[{_LEADING}]*[{_STARTS}])")
#: inside a cell: a formula character after a character some spreadsheet splits cells on (its list separator) or
#: rows on (a line end: in a file split on ';' a quoted field is no field, so its line end ends the row); one quote
#: goes before it, also before quotes already there, so that taking one away restores the value
#: the spaces and full-width forms a cell's start may hold count after a separator too ("x; =1+1" and "x;＝1+1" were
#: written raw, where the start of a cell quoted them; attack round 34)
INNER_MARKS = ";\t|\r\n"
_INNER_STARTS = "=+\\-@" + _LOOKALIKES
#: (a double quote may stand before the formula character too, among the spaces: split on ';', 'a;"=1+1' and
#: 'a; "=1+1' are quoted fields "=1+1"; attack round 42 and the read of the diff)
INNER_FORMULA = re.compile(f"(?<=[;\t|\r\n])(?=['\"{_LEADING}]*[{_INNER_STARTS}])")
#: the reader's side: the one quote :data:`INNER_FORMULA` added (``formats.values`` takes it away)
INNER_FORMULA_QUOTED = re.compile(f"(?<=[;\t|\r\n])'(?=['\"{_LEADING}]*[{_INNER_STARTS}])")
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder + fsync + rename).

    Only a regular file (or a link, which is replaced and never followed: a link planted in a shared folder
    cannot send the bytes elsewhere) is renamed over. A character device, pipe or socket (``-o /dev/null``, a
    FIFO) and the names ``/dev/stdout`` and ``/dev/stderr`` are written in place. Found attacking main: the
    rename put a regular file in place of whatever ``path`` was, so ``-o /dev/null`` run as root replaced the
    machine's /dev/null (likewise /dev/full, /dev/stdout)."""
    path = Path(path)
    if _written_in_place(path):
        if _is_fifo(path):
            fd = _open_pipe(path)
            os.set_blocking(fd, True)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            return path
        with open(path, "wb") as handle:  # a device takes the bytes as they come
            handle.write(data)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


#: seconds a pipe's reader has to open it (a reader started beside the writer may come a moment later)
PIPE_READER_WAIT = 5.0


def _open_pipe(path: Path) -> int:
    """A pipe opened for writing once something reads it: opened as usual, one nobody reads waited forever (attack
    round 20); without waiting the kernel says there is no reader (ENXIO), asked again for PIPE_READER_WAIT s."""
    deadline = time.monotonic() + PIPE_READER_WAIT
    while True:
        try:
            return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
            if time.monotonic() > deadline:
                raise OSError(errno.ENXIO, f"it is a pipe that nothing read within {PIPE_READER_WAIT:g} s",
                              str(path)) from None
            time.sleep(0.05)


def _is_fifo(path: Path) -> bool:
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False


def _written_in_place(path: Path) -> bool:
    """A character device, pipe or socket at ``path`` itself (not through a link), or /dev/stdout, /dev/stderr."""
    if str(path) in ("/dev/stdout", "/dev/stderr"):
        return True
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def neutralise_cell(value: Any) -> Any:
    """Prefix a string that a spreadsheet would run as a formula with ``'``; other values unchanged.

    A string that already starts with ``'`` followed by a formula character gets a quote too, so that
    removing exactly one leading quote on load (what :mod:`deem_core.data.readers` does) restores every value.
    Inside the string, a formula character after ``;``, tab, ``|``, CR or LF gets a quote before it (and before
    the quotes already there): ``x;=1`` -> ``x;'=1``, ``x;'=1`` -> ``x;''=1``; the reader takes one away.
    """
    if not isinstance(value, str):
        return value
    if any(mark in value for mark in INNER_MARKS):
        value = INNER_FORMULA.sub("'", value)
    if FORMULA_START.match(value):  # (quotes already there included: the reader takes exactly one away)
        return "'" + value
    return value


def safe_csv_frame(frame: pd.DataFrame, index: bool = True) -> pd.DataFrame:
    """A copy of ``frame`` whose string cells, string column names and (if kept) index are neutralised.

    Column names that are not strings (e.g. numeric worker ids) are left as they are. Every column that is not
    numbers, booleans or times is looked at cell by cell, whatever its dtype says (an Arrow dictionary of strings
    is not a "string dtype", and its ``=1+1`` was written raw; attack round 5).
    """
    types = pd.api.types
    out = frame.reset_index() if index else frame.copy()
    out.columns = [neutralise_cell(c) for c in out.columns]
    for position in range(out.shape[1]):
        column = out.iloc[:, position]
        if not (types.is_numeric_dtype(column) or types.is_bool_dtype(column) or types.is_datetime64_any_dtype(column)
                or types.is_timedelta64_dtype(column)):
            out.isetitem(position, _neutralised(column))
    return out


def _neutralised(column: pd.Series) -> pd.Series:
    """``column`` with :func:`neutralise_cell` applied to each cell. A column of text only (labels, majority votes:
    a few distinct values in a million rows) is neutralised once per distinct value (1,000,000 rows of 2 labels:
    0.5 s -> 0.05 s); any other (mixed types, where 1, 1.0 and True would count as one value) cell by cell."""
    if pd.api.types.infer_dtype(column, skipna=True) != "string":
        return column.map(neutralise_cell)
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    if len(uniques) * 2 > len(column):  # mostly distinct (task ids): no gain
        return column.map(neutralise_cell)
    safe = np.array([neutralise_cell(value) for value in uniques], dtype=object)
    values = column.to_numpy(dtype=object, copy=True)
    present = codes >= 0
    values[present] = safe[codes[present]]
    return pd.Series(values, index=column.index, name=column.name)


def to_safe_csv(frame: pd.DataFrame, index: bool = True) -> str:
    """CSV text of ``frame`` that is safe to open in a spreadsheet."""
    # CRLF line ends: a cell holding a bare CR or LF is then always quoted, so readers keep the row whole
    return safe_csv_frame(frame, index=index).to_csv(index=False, lineterminator="\r\n")


def write_csv(frame: pd.DataFrame, path: str | Path, index: bool = True) -> Path:
    return atomic_write_text(path, to_safe_csv(frame, index=index))


def json_text(obj: Any) -> str:
    """``obj`` as the JSON text every JSON file of this program holds (indented; numpy values as numbers; NaN
    refused)."""
    return json.dumps(obj, indent=2, default=_json_default, allow_nan=False)


def write_json(obj: Any, path: str | Path) -> Path:
    return atomic_write_text(path, json_text(obj))


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` as a Parquet file whose named index (the task) is its first column: kept as pandas' index, it came
    back as the index of ``pd.read_parquet`` and as a last column elsewhere, and ``merge(truth, on="task")`` failed
    (walkthrough 19)."""
    import io  # noqa: PLC0415

    if frame.index.name is not None or not isinstance(frame.index, pd.RangeIndex):
        frame = frame.reset_index()
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def write_parquet(frame: pd.DataFrame, path: str | Path) -> Path:
    return atomic_write_bytes(path, parquet_bytes(frame))


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def label_table(tasks: pd.Index, classes: pd.Index, labels: pd.Series, proba: pd.DataFrame | None) -> pd.DataFrame:
    """The aggregated-labels table every writer shares: index ``task`` (in ``tasks`` order), columns ``label``,
    ``confidence`` (probability of the label; NaN for a method without probabilities) and ``p_<class>`` per
    class (when ``proba`` is given: tasks x classes)."""
    out = pd.DataFrame({"label": labels.reindex(tasks).to_numpy()}, index=pd.Index(tasks, name="task"))
    if proba is None:
        out["confidence"] = np.nan
        return out
    proba = proba.reindex(index=tasks, columns=list(classes)).fillna(0.0)
    out["confidence"] = proba.max(axis=1).to_numpy()
    # all p_<class> columns in one block: one insert per class fragments the frame (pandas printed ~900
    # PerformanceWarning blocks for 1,000 classes)
    columns = pd.DataFrame(proba.to_numpy(), index=out.index, columns=[f"p_{label}" for label in classes])
    return pd.concat([out, columns], axis=1)
