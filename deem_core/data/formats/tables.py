"""Files as tables of text cells, read in chunks: CSV text, Parquet, or a DataFrame.

Every table has a ``header`` (column names), yields its data rows in chunks (``chunks(columns)``: only the
columns asked for, as categorical text; the row index counts the records after the header) and says where
a row is for messages (``line(row)``: ``"line N"`` in a text file, ``"row N"`` otherwise).

CSV: the delimiter is the one of ``,`` ``;`` tab ``|`` that splits the header (the first non-blank line)
into at least two columns and the most following lines into as many fields, then the one with more
columns. Quoted fields may hold the delimiter, quotes and newlines; spaces (plain and no-break) around cells and
names are stripped; blank lines (also lines of empty fields) are skipped and counted; a line that repeats the header
(two files concatenated) is skipped and counted, or refused when it repeats it in another column order.

Parquet: read with pyarrow, only the columns asked for, one batch at a time; the row count and the
decompressed size of those columns are checked against the limits from the file's metadata before
anything is read. Values become text (``1``, ``2.5``, ``true``; null -> empty) so the typing rules of a
CSV apply unchanged.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import warnings as _warnings
from collections import Counter
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from deem_core.data.annotations import DataError
from deem_core.data.formats.limits import PREVIEW_BYTES, Limits, describe_bytes
from deem_core.data.formats.sources import Budget, Source, read_head
from deem_core.data.text import shortened
from deem_core.data.text import counted
from deem_core.data.formats.text import TextStream, check_text_sample
from deem_core.data.formats.values import missing_mask, value_too_long

__all__ = ["CsvTable", "FrameTable", "ParquetTable", "Table", "concat_parts", "union_categories"]

DELIMITERS = (",", ";", "\t", "|")
CHUNK_ROWS = 250_000  # rows parsed at a time: the peak memory of a read is about one chunk of text
#: characters a CSV chunk holds at most (its rows set from the rows before), and the rows of the first chunk
CHUNK_TEXT_CHARS = 16 << 20
FIRST_CHUNK_ROWS = 1_000
#: cells parsed at a time: a wide file's chunk has fewer rows. Each cell costs ~70 bytes while parsed whatever it
#: holds, so 250,000 rows of 15,000 empty cells (a 1 GiB file of commas, ~1 MB gzipped) would have needed ~260 GB
CHUNK_CELLS = 4_000_000
#: a table with more columns than this whose read needs more than this many of them (a wide file's workers), or
#: with more than :data:`BLOCK_COLUMNS` columns whatever it needs, is cleaned as one block of cells, not column by
#: column (each column's own pandas operations cost ~0.1 ms: 15,000 worker columns x 5 rows took 13 s; attack round
#: of the seventh session), and parsed by Python's csv module (:meth:`CsvTable._cell_blocks`). The block makes every
#: cell a Python object, so a platform export of 80 columns of which 3 are read stays column by column (its 1 M
#: rows: 3.7 s, 9 s as a block; attack round of the eighth session).
MANY_COLUMNS = 64
BLOCK_COLUMNS = 1_000
#: decompressed bytes of one Parquet row group (all its columns, from the metadata) that a read or a preview
#: accepts. A column chunk is decompressed whole (a page, a dictionary) and costs about 4x its size while it is
#: read; id and label columns of a million rows take a few MB to a few tens of MB.
PARQUET_CHUNK_BYTES = 128 << 20
#: bytes of a Parquet file's metadata (its footer) that a read parses: pyarrow parses it in the server's own process
#: before any other limit applies, at about 20x its size in memory (one entry per row group and column: a 119 MiB
#: file of 500,000 one-row groups took the server from 525 MB to 2.0 GB at its preview; attack round 16). A file of
#: 20 M rows in groups of 100,000 rows has a footer of a few tens of KB.
PARQUET_FOOTER_BYTES = 8 << 20
#: columns of a Parquet file that a read accepts, counted from its metadata's first bytes before the parse (a
#: wide layout of 20,000 worker columns previews in 1.5 s and +53 MB here; 93,665 took 5.9 s and +628 MB)
PARQUET_MAX_COLUMNS = 20_000
#: data segment a Parquet decoding process may hold (``RLIMIT_DATA``; :mod:`.parquet_decode`): a row group of
#: :data:`PARQUET_CHUNK_BYTES` costs about 4x that while it is read, and pyarrow's readers of 100,000 columns reserve
#: 2.3 GB (1.3 GB of it touched) for a 20-row preview
PARQUET_DECODE_BYTES = 4 << 30
#: bytes of decoded batches the decoding process may write for the server to read back (a file within the memory cap
#: could still decode, a batch at a time, to any size)
PARQUET_DECODE_OUTPUT_BYTES = 4 << 30
#: a decoding folder nobody has written to for this long is a killed server's leftover
LEFT_FOLDER_SECONDS = 3600.0
#: characters of one value that a preview shows (the rest is cut, with "…")
PREVIEW_CHARS = 1000
_SNIFF_CHARS = 1 << 16
#: the spaces stripped around cells and names: the plain space and the no-break space, which Excel exports write
#: around values ("t1" and "t1" with a no-break space were two tasks that read the same; attack round 30)
CELL_SPACES = " \u00a0"
#: the longest header line read (8 M characters: about a million worker columns)
_MAX_HEADER_CHARS = 1 << 23


#: the record fed to the csv parser after a file's last line: it comes back as a record of its own unless the
#: file leaves a quoted field open (pandas' "EOF inside string")
_END_MARK = "\ue000deem: end of the records\ue000"
_END_RECORD = [_END_MARK]


def _physical_lines(text: TextStream) -> Iterator[str]:
    """The text's lines, each with its end (``\\n``, ``\\r\\n`` or a lone ``\\r``, untranslated: what Python's csv
    parser takes), then the end mark."""
    carry = ""
    for block in text.blocks():
        lines = io.StringIO(carry + block if carry else block, newline="").readlines()
        carry = lines.pop() if lines and not lines[-1].endswith("\n") else ""  # (a CR whose LF may come next)
        yield from lines
    if carry:
        yield carry
    yield _END_MARK + "\n"


def _show_delimiter(delimiter: str) -> str:
    return {"\t": "a tab", ",": "a comma", ";": "a semicolon", "|": "a '|'"}.get(delimiter, repr(delimiter))


def check_columns(name: str, n_columns: int, limits: Limits) -> None:
    """DataError for a table of more columns than :attr:`Limits.max_columns`, before its rows are read."""
    if n_columns > limits.max_columns:
        raise DataError(f"{name}: {n_columns:,} columns; at most {limits.max_columns:,} are read (DEEM_MAX_COLUMNS). "
                        f"A file of one column per worker with this many workers reads better as a long file: one row "
                        f"per answer (task, worker, label)")


def cut_for_display(frame: pd.DataFrame) -> pd.DataFrame:
    """A preview's cells with each text value longer than :data:`PREVIEW_CHARS` cut to it, then "…", as a Parquet
    preview cuts them while it reads (a CSV preview showed a 1,497-character value whole where the Parquet file of
    the same cells showed 1,000 and "…"; walkthrough, eleventh session). Only columns holding such a value change."""
    if frame.empty:
        return frame
    cells = frame.to_numpy(dtype=object)
    long = np.frompyfunc(lambda v: isinstance(v, str) and len(v) > PREVIEW_CHARS, 1, 1)(cells).astype(bool)
    if not long.any():
        return frame
    frame = frame.copy()
    for j in np.flatnonzero(long.any(axis=0)):
        column = frame.iloc[:, j].astype(object).to_numpy(copy=True)
        column[long[:, j]] = [v[:PREVIEW_CHARS] + "…" for v in column[long[:, j]]]
        frame.isetitem(j, column)
    return frame


def categorical_text(values: pd.Series) -> pd.Series:
    return values.astype("category")


def union_categories(pieces: Sequence[pd.Categorical]) -> pd.Categorical:
    """The categoricals one after the other, categories in order of first appearance: pandas' ``union_categoricals``
    (``ignore_order``) in one factorize of the pieces' categories, which took 0.7 s where pandas' took 4.3 on six
    chunks of a million rows of a million ids (6.6 of a 6-million-answer upload's 23 s). Categories of different
    kinds (ints and text) are pandas' to refuse."""
    if len({str(p.categories.dtype) for p in pieces}) > 1:
        return pd.api.types.union_categoricals(list(pieces), ignore_order=True)
    categories = [p.categories for p in pieces]
    codes_of, uniques = pd.factorize(pd.concat([pd.Series(c, dtype=c.dtype) for c in categories], ignore_index=True))
    offsets = np.cumsum([0] + [len(c) for c in categories])
    codes = np.concatenate([np.where(p.codes < 0, -1, codes_of[offset + np.maximum(p.codes, 0)] if len(codes_of)
                                     else -1) for p, offset in zip(pieces, offsets)])
    return pd.Categorical.from_codes(codes, pd.Index(uniques))


def concat_parts(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate frames whose text columns are categorical, keeping them categorical (union of
    categories) so millions of rows cost a few bytes each."""
    parts = [p for p in parts if p is not None]
    if not parts:
        return pd.DataFrame()
    if len(parts) == 1:
        return parts[0].reset_index(drop=True)
    columns = list(parts[0].columns)
    out = {}
    for column in columns:
        pieces = [p[column] for p in parts]
        if all(isinstance(s.dtype, pd.CategoricalDtype) for s in pieces):
            out[column] = pd.Series(union_categories([s.array for s in pieces]))
        else:
            out[column] = pd.concat([s.astype(object) if isinstance(s.dtype, pd.CategoricalDtype) else s
                                     for s in pieces], ignore_index=True)
    return pd.DataFrame(out)



def title_line_error(name: str, header: Sequence[str]) -> DataError | None:
    """The error for a first line that names one column of three or more (``Sentiment batch export,,``: a title above
    the header), None for any other header. The command line said "no task column among 'Sentiment batch export'"
    and the Data page "column 2 has values but no name in the header", neither naming the cause (walkthrough 115)."""
    named = [str(c) for c in header if str(c).strip()]
    if len(named) != 1 or len(header) < 3:
        return None
    return DataError(f"{name}: the first line names one column of {len(header):,} ({shortened(named[0], 60)!r}): a "
                     f"title above the header? Remove that line, so that the header (the names of the columns, e.g. "
                     f"task,worker,label) is the first line")

class Table:
    """The interface shared by the three kinds of table."""

    name: str
    header: list[str]
    kind: str = "csv"
    typed: bool = False  # DataFrame sources keep their Python values
    delimiter: str | None = None
    encoding: str | None = None

    def __init__(self) -> None:
        self.notes: list[str] = []

    def chunks(self, columns: Sequence[str] | None = None, nrows: int | None = None) -> Iterator[pd.DataFrame]:
        raise NotImplementedError

    def expect_short(self, roles: Mapping[str, str]) -> None:
        """Say that each column of ``roles`` (column -> "task", "worker", "label" ...) holds ids or labels, of at
        most the limits' ``max_value_chars`` characters: a table may refuse a longer one as soon as it sees it,
        before building anything from it. The caller checks every value again once read; by default nothing is
        done here."""

    def head(self, nrows: int) -> pd.DataFrame:
        """The first ``nrows`` data rows, every column, as plain text."""
        frames = []
        got = 0
        for chunk in self.chunks(None, nrows=nrows):
            frames.append(chunk)
            got += len(chunk)
            if got >= nrows:
                break
        if not frames:
            return pd.DataFrame({c: pd.Series([], dtype=object) for c in self.header})
        frame = pd.concat(frames).head(nrows)
        return frame.astype(object) if not self.typed else frame

    def peek(self, nrows: int) -> pd.DataFrame:
        """:meth:`head` as a look before the read, leaving the counts of skipped lines and the notes as they were (an
        MTurk file's one blank line was said as 2, counted by the look at its first 200 rows and again by the read; a
        Latin-1 file's note said twice; read 48), and reading at most what a preview reads (:data:`PREVIEW_BYTES`:
        the preview and the read decide alike on what they look at)."""
        kept, notes = dict(self.__dict__.get("_counts", {})), list(self.notes)
        try:
            return self.head(nrows)
        finally:
            self.__dict__["_counts"] = kept
            self.notes[:] = notes

    def line(self, row: int) -> str:
        return f"row {row + 1}"

    def short_row(self, row: int) -> str:
        """Words saying that data row ``row`` has fewer fields than the header (a cut row reads as empty cells at
        its end: a Toloka export's cut last row was refused as "empty worker"), or "" when it has them all or the
        table has no fields to count."""
        return ""

    def time_columns(self, columns: Sequence[str]) -> dict[str, str]:
        """Those of ``columns`` that hold dates or times (column -> the type in words): a typed table's columns say
        so by their type. In a text table, a column whose name says a time (a part of it is one of
        :data:`TIME_WORDS`: "submitted", "reviewed_at", "createdAt") and whose values in the first
        :data:`TIME_SAMPLE_ROWS` rows (at least :data:`TIME_MIN_VALUES`) are all dates or dates and times (ISO 8601,
        US and European day-month orders, months by name: :data:`_DATE_TEXT`), beside
        a column holding something else (a wide CSV's "submitted" column was read as a worker whose 28 labels were
        dates; walkthrough 94). By the values alone, workers answering "which day?" were left out (attack round 49,
        read 48), so the name decides too; a worker is never named a time. Not looked for past
        :data:`TIME_MAX_COLUMNS` columns."""
        named = [c for c in columns if _says_time(c)] if columns and len(columns) <= TIME_MAX_COLUMNS else []
        if not named:
            return {}
        head = self.peek(TIME_SAMPLE_ROWS)

        seen = {}  # column -> (its values in the first rows, whether all are dates)
        for column in columns:
            text = _given_texts(head, column)
            if text is not None:
                seen[column] = (len(text), bool(text.str.fullmatch(_DATE_TEXT).all()))
        dates = [c for c in named if c in seen and seen[c][0] >= TIME_MIN_VALUES and seen[c][1]]
        if not any(n and not all_dates for c, (n, all_dates) in seen.items() if c not in dates):
            return {}  # (no column of labels beside them: they may be the labels)
        return {column: "dates or times written as text" for column in dates}

    def note_columns(self, columns: Sequence[str], leave: Sequence[str] = ()) -> dict[str, str]:
        """Those of ``columns`` that hold notes or the item's own text, not one worker's labels (column -> what in
        words): a column whose name says so (a part of it is one of :data:`NOTE_WORDS`: "notes", "comment",
        "item_text") and whose values in the first :data:`TIME_SAMPLE_ROWS` rows (at least :data:`TIME_MIN_VALUES`)
        are mostly (more than half) no label that the other columns (but ``leave``) give in those rows. A wide CSV's
        "notes" column was read as a worker whose four remarks became four classes, the labels of 213 of 1,500 tasks
        ("blurry image", "ok"), accuracy 89.13 -> 77.93 (walkthrough 97). The name decides, as for dates; a column so
        named whose values are the others' labels stays a worker."""
        named = [c for c in columns if _says_note(c) and c not in leave] \
            if columns and len(columns) <= TIME_MAX_COLUMNS else []
        if not named:
            return {}
        head = self.peek(TIME_SAMPLE_ROWS)
        labels: set[str] = set()
        for column in columns:
            if column not in named and column not in leave:
                given = _given_texts(head, column)
                if given is not None:
                    labels.update(given.str.casefold().unique().tolist())
        if not labels:
            return {}  # (no column of labels beside them: they may be the labels)
        out = {}
        for column in named:
            given = _given_texts(head, column)
            # (in any letter case: a worker named "text-davinci-003" writing "Positive" where the others write
            # "positive" gives labels, spelled its own way, not notes; read 49)
            if (given is not None and len(given) >= TIME_MIN_VALUES
                    and (~given.str.casefold().isin(labels)).mean() > 0.5):
                out[column] = "text that is no worker's label"
        return out


def _given_texts(head: pd.DataFrame, column: str) -> pd.Series | None:
    """The values ``column`` holds in ``head`` as stripped text, missing markers ("N/A" among dates; walkthrough 95)
    and empty cells left out; None where the column is absent or its name is in the header twice."""
    found = head[column] if column in head.columns else None
    if not isinstance(found, pd.Series):
        return None
    text = found[~missing_mask(found)].astype(str).str.strip()
    return text[text != ""]


def _name_parts(name: Any) -> list[str]:
    """Column ``name``'s parts, lower case, split at "_", "-", ".", spaces and lower-to-upper case."""
    return [p.lower() for p in re.split(r"[\s_.\-]+|(?<=[a-z])(?=[A-Z])", str(name)) if p]


def _says_note(name: Any) -> bool:
    """Whether a part of column ``name`` is one of :data:`NOTE_WORDS`."""
    return bool(set(_name_parts(name)) & NOTE_WORDS)


def _says_time(name: Any) -> bool:
    """Whether a part of column ``name`` (split at "_", "-", ".", spaces and lower-to-upper case) is one of
    :data:`TIME_WORDS`, or its last part is "at" or "on" after another ("created_at", "submittedOn")."""
    parts = _name_parts(name)
    return bool(set(parts) & TIME_WORDS) or (len(parts) > 1 and parts[-1] in ("at", "on"))


#: the rows and the least values a text column's dates are looked for in (:meth:`Table.time_columns`), and the most
#: columns a table may have for them to be looked for (a look at 50 rows of 100,000 columns costs 5 M cells)
TIME_SAMPLE_ROWS = 50
TIME_MIN_VALUES = 3
TIME_MAX_COLUMNS = 2_000
#: the words of a column name that say a time: an export's metadata, not a worker (whole parts of the name only:
#: "reviewer", "candidate", "startup_team" are no time; read 48)
TIME_WORDS = frozenset({"date", "datetime", "day", "time", "timestamp", "ts", "created", "updated", "modified",
                        "submitted", "submit", "started", "start", "finished", "end", "ended", "completed", "accepted",
                        "approved", "reviewed", "rejected", "expires", "expired", "expiration", "deadline", "when"})
#: the words of a column name that say notes or the item's own text, not a worker (whole parts of the name only)
NOTE_WORDS = frozenset({"note", "notes", "comment", "comments", "remark", "remarks", "feedback", "memo", "explanation",
                        "justification", "rationale", "reason", "description", "text", "content", "sentence",
                        "question", "prompt", "title", "url", "link", "image", "caption"})
#: a time of day after a date: 09:15, 9:15:00, 09:15:00.123, 9:15 PM, with a zone or not (Z, +01:00, UTC, PST)
_CLOCK = r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?: ?[AaPp][Mm])?(?: ?(?:Z|[+-]\d{2}(?::?\d{2})?|[A-Z]{2,5}))?)?"
_MONTHS = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
_DAYS = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?"
#: a date, or date and time, as exports write them: ISO 8601 (2024-03-01, 2024-03-01T09:15:00Z, 2024/03/01 09:15);
#: day, month and year with slashes, dots or dashes in either order (03/01/2024 9:15 PM, 1.3.24; a
#: wide CSV's US-style "submitted" column stayed a worker, forty-second session); a month by name (Mar 1, 2024;
#: 1 March 2024); a platform's "Fri Mar 01 09:15:00 PST 2024"
_DATE_TEXT = re.compile(
    r"\d{4}[-/]\d{1,2}[-/]\d{1,2}" + _CLOCK
    + r"|\d{1,2}([/.\-])\d{1,2}\1(?:\d{2}){1,2}" + _CLOCK
    + r"|(?:" + _DAYS + r" )?" + _MONTHS + r" \d{1,2},? \d{4}" + _CLOCK
    + r"|(?:" + _DAYS + r" )?\d{1,2} " + _MONTHS + r",? \d{4}" + _CLOCK
    + r"|" + _DAYS + r" " + _MONTHS + r" \d{1,2} \d{1,2}:\d{2}:\d{2} (?:[A-Z]{2,5} )?\d{4}")


# ---------------------------------------------------------------------------------------------- CSV
class CsvTable(Table):
    kind = "csv"
    #: positions of the columns :meth:`expect_short` named -> their roles (none until it is called)
    _short: dict[int, str] = {}

    def __init__(self, source: Source, limits: Limits, budget: Budget | None = None,
                 stop_after: int | None = None):
        super().__init__()
        self.source = source
        self.name = source.name
        self.limits = limits
        self.budget = budget
        self.stop_after = stop_after
        self.saw_quote: bool | None = None
        self.truncated = False
        # the sniff reads the whole header line (a wide file of 15,000 workers has a header past the first 64 K
        # characters: its cut last name read as a duplicate, and at 100,000 workers the file as empty; attack round)
        reach = _SNIFF_CHARS * 4 + _MAX_HEADER_CHARS
        with self._text(budget=None, stop_after=reach if stop_after is None else min(stop_after, reach)) as head:
            pieces = [head.read(_SNIFF_CHARS + 1)]
            ended, size = "\n" in pieces[0].lstrip("\r\n"), len(pieces[0])
            while not ended and size <= _MAX_HEADER_CHARS:  # (each piece searched once, joined once)
                more = head.read(_SNIFF_CHARS)
                if not more:
                    break
                pieces.append(more)
                ended, size = "\n" in more, size + len(more)
            sample = "".join(pieces)
            self.encoding = head.encoding
            self.header_line = head.head_line
        if not sample.strip():
            # text, but no line end within reach (read as the text was: a byte-order mark alone is no text; it read
            # "the first line is longer than 8,388,608 characters"; attack round 41)
            if read_head(self.source, _SNIFF_CHARS).decode(self.encoding, errors="replace").replace("\ufeff", "").strip():
                raise self._header_too_long()
            raise DataError(f"{self.name}: the file is empty")
        check_text_sample(self.name, sample)
        stripped = sample.lstrip("\r\n")
        first_line = stripped.find("\n")  # the header's end
        first_line = first_line if first_line < 0 else first_line + len(sample) - len(stripped)
        if first_line < 0 and len(sample) > _MAX_HEADER_CHARS:
            raise self._header_too_long()
        cut = max(_SNIFF_CHARS, first_line + 1 + _SNIFF_CHARS)
        self.delimiter, self.header = self._sniff(sample[:cut], truncated=len(sample) > cut)
        check_columns(self.name, len(self.header), limits)
        counts = Counter(h for h in self.header if h)
        dupes = sorted(h for h, n in counts.items() if n > 1)
        if dupes:
            raise DataError(f"{self.name}: column name {dupes[0]!r} appears {counts[dupes[0]]} times in the "
                            f"header; give every column its own name")
        self._warned_index = False
        self._ignored_first = False
        self._block = False  # the chunks being read are cleaned as one block of cells (chunks)

    def _header_too_long(self) -> DataError:
        if self.stop_after is not None and self.stop_after < _MAX_HEADER_CHARS:  # a preview reads less than that
            return DataError(f"{self.name}: the first line does not end within the first {self.stop_after:,} bytes a "
                             f"preview reads; a header of that length is not a table of annotations")
        return DataError(f"{self.name}: the first line is longer than {_MAX_HEADER_CHARS:,} characters; a header of "
                         f"that length is not a table of annotations")

    def _text(self, budget: Budget | None, stop_after: int | None = None, quotes: bool = False) -> TextStream:
        return TextStream(self.source, self.limits, budget=budget, quotes=quotes, skip_blank_head=True,
                          stop_after=stop_after)

    def _rescan(self) -> TextStream:
        """The text again, to find the line of an error: bounded like the read (or the preview) it serves."""
        return self._text(budget=Budget(self.limits), stop_after=self.stop_after)

    # ------------------------------------------------------------------ delimiter
    def _sniff(self, sample: str, truncated: bool) -> tuple[str, list[str]]:
        best: tuple[tuple[float, int], str, list[str]] | None = None
        first_header: list[str] | None = None
        for delimiter in DELIMITERS:
            try:
                rows = [r for r in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter)
                        if any(c.strip() for c in r)]
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
            below = self._columns_below_first(sample, truncated)
            if below:  # (a title line with no delimiter in it: "found a single column" named no cause; walkthrough 117)
                raise DataError(f"{self.name}: the first line has one column ({shown!r}) and the lines below it have "
                                f"{below:,}: a title above the header? Remove that line, so that the header (the names "
                                f"of the columns, e.g. task,worker,label) is the first line")
            raise DataError(f"{self.name}: found a single column ({shown!r}); expected columns such as "
                            f"task,worker,label separated by commas, semicolons or tabs")
        return best[1], [c.strip(CELL_SPACES) for c in best[2]]

    @staticmethod
    def _columns_below_first(sample: str, truncated: bool) -> int:
        """The columns of the lines after the first non-blank one, where one delimiter splits them all (nine in ten)
        into two or more alike; 0 otherwise."""
        for delimiter in DELIMITERS:
            try:
                rows = [r for r in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter)
                        if any(c.strip() for c in r)][1:]
            except csv.Error:
                continue
            if truncated and len(rows) > 1:
                rows = rows[:-1]
            if len(rows) >= 2 and len(rows[0]) >= 2 and sum(len(r) == len(rows[0]) for r in rows) >= 0.9 * len(rows):
                return len(rows[0])
        return 0

    # ------------------------------------------------------------------ where rows are
    def line(self, row: int) -> str:
        return f"line {self._line_of(row)}"

    def short_row(self, row: int) -> str:
        fields = self._record_at(row)[1]
        if fields is None or fields >= len(self.header):
            return ""
        return f" (the line has {fields} of the header's {len(self.header)} fields: cut short?)"

    def _line_of(self, row: int) -> int:
        if self.saw_quote is False:
            return self.header_line + 1 + row
        return self._record_at(row)[0]

    def _record_at(self, row: int) -> tuple[int, int | None]:
        """The line data row ``row`` starts on, and its number of fields (None where the file could not be followed
        that far)."""
        target = row + 1  # records after the header
        with self._rescan() as text:
            reader = csv.reader(text, delimiter=self.delimiter)
            previous_end = 0
            try:
                for index, record in enumerate(reader):
                    if index == target:
                        return self.header_line + previous_end, len(record)
                    previous_end = reader.line_num
            except csv.Error:  # e.g. a bare CR inside an unquoted field: the line reached so far
                pass
        return self.header_line + previous_end, None

    def _quote_never_closed(self) -> int:
        open_line = None
        with self._rescan() as text:
            for number, line in enumerate(text, start=self.header_line):
                if line.count('"') % 2:
                    open_line = number if open_line is None else None
        return open_line or self.header_line

    def _too_many_fields(self) -> tuple[int, int]:
        with self._rescan() as text:
            reader = csv.reader(text, delimiter=self.delimiter)
            previous_end = 0
            try:
                for index, row in enumerate(reader):
                    if index and len(row) > len(self.header):
                        return self.header_line + previous_end, len(row)
                    previous_end = reader.line_num
            except csv.Error:  # e.g. a bare CR inside an unquoted field: pandas split the line there
                return self.header_line + reader.line_num, len(self.header) + 1
        return self.header_line, len(self.header)

    def _fields_error(self) -> DataError:
        line, count = self._too_many_fields()
        return DataError(f"{self.name}: line {line} has {count} fields but the header has {len(self.header)}; put "
                         f"values that contain {_show_delimiter(self.delimiter)} in double quotes")

    def expect_short(self, roles: Mapping[str, str]) -> None:
        positions: dict[str, int] = {}
        for position, name in enumerate(self.header):  # (the first of a repeated name, as the readers take it)
            positions.setdefault(name, position)
        self._short = {positions[c]: role for c, role in roles.items() if c in positions}

    def _refuse_long(self, raw: pd.DataFrame) -> None:
        """DataError, as the full check words it, for an id or label longer than the value limit once trimmed, in
        the columns :meth:`expect_short` named, checked on the chunk as the parser gave it, before any copy: one
        60 MB label cell took a read to 2.5 GB (trimmed, made categorical and checked after) before the same
        refusal, 42 times the file (attack round 62). Only the values past the limit are trimmed (copied)."""
        if self._block:  # (a block's records are checked as they are joined: _cell_block)
            return
        limit = self.limits.max_value_chars
        for position, role in self._short.items():
            if position >= raw.shape[1] or not len(raw):
                continue
            values = raw.iloc[:, position]
            lengths = values.str.len()
            if not (lengths > limit).any():
                continue
            over = values[(lengths > limit).to_numpy()].str.strip(CELL_SPACES)
            trimmed = over.str.len()
            if int(trimmed.max()) > limit:
                value = str(over.iloc[int(np.argmax(trimmed.to_numpy()))])
                raise value_too_long(self.name, role, int(trimmed.max()), value[:40], limit)

    # ------------------------------------------------------------------ rows
    def peek(self, nrows: int) -> pd.DataFrame:
        """:meth:`Table.peek` within the bytes a preview reads (:data:`PREVIEW_BYTES`)."""
        stop, truncated = self.stop_after, self.truncated
        self.stop_after = PREVIEW_BYTES if stop is None else min(stop, PREVIEW_BYTES)
        try:
            return super().peek(nrows)
        finally:
            self.stop_after, self.truncated = stop, truncated

    def chunks(self, columns: Sequence[str] | None = None, nrows: int | None = None) -> Iterator[pd.DataFrame]:
        preview = nrows is not None
        text = self._text(budget=None if preview else self.budget, stop_after=self.stop_after, quotes=True)
        wanted = len(self.header) if columns is None else len(columns)
        many = len(self.header) > MANY_COLUMNS and (wanted > MANY_COLUMNS or len(self.header) > BLOCK_COLUMNS)
        self._block = many
        rows = min(nrows or CHUNK_ROWS, CHUNK_ROWS, max(1, CHUNK_CELLS // max(1, len(self.header))))
        try:
            with _warnings.catch_warnings(record=True) as caught:
                _warnings.simplefilter("always")
                got = 0
                for raw in (self._cell_blocks(text, rows) if many else self._pandas_chunks(text, rows)):
                    if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
                        raise self._fields_error()
                    if len(raw.columns) != len(self.header):  # pragma: no cover - pandas and csv disagree
                        raise DataError(f"{self.name}: cannot read the header line")
                    if not preview:
                        self._refuse_long(raw)
                    chunk = self._clean(raw)
                    if self.budget is not None and not preview:
                        self.budget.add_rows(len(raw), self.name)
                    got += len(raw)
                    if columns is not None:
                        chunk = chunk[list(columns)]
                    # many columns (a wide file's workers) stay one block: its reader takes the cells at once
                    yield chunk if preview or (many and chunk.shape[1] > MANY_COLUMNS) \
                        else chunk.apply(categorical_text)
                    if nrows is not None and got >= nrows:
                        break
                if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
                    raise self._fields_error()
        except pd.errors.ParserError as exc:
            message = str(exc)
            if "EOF inside string" in message:
                raise self._never_closed() from None
            if "Expected" in message and "fields" in message:
                raise self._fields_error() from None
            raise DataError(f"{self.name}: cannot read as CSV ({message.splitlines()[0]})") from None
        except pd.errors.EmptyDataError:
            raise DataError(f"{self.name}: the file is empty") from None
        finally:
            if not text.closed:
                self.truncated = text.truncated
                self.notes.extend(n for n in text.notes() if n not in self.notes)
                if not preview:
                    self.saw_quote = text.saw_quote
                text.close()

    def _never_closed(self) -> DataError:
        line = self._quote_never_closed()
        return DataError(f"{self.name}: line {line}: a quoted field is never closed (a '\"' without its closing quote)")

    def _pandas_chunks(self, text: TextStream, rows: int) -> Iterator[pd.DataFrame]:
        """A few columns: pandas' parser, a column of Arrow-backed strings each (compact for millions of rows). A
        chunk holds at most ``rows`` rows and about :data:`CHUNK_TEXT_CHARS` characters, its size set from the rows
        before it (the first :data:`FIRST_CHUNK_ROWS`): 20,000 rows of 10,000-character ids came as one 200 MB chunk
        whose strings took 1.3 GB at once (attack round 38)."""
        reader = pd.read_csv(text, sep=self.delimiter, dtype=str, header=0, index_col=False, keep_default_na=False,
                             na_filter=False, skip_blank_lines=False, engine="c", quotechar='"', chunksize=rows)
        size = min(rows, FIRST_CHUNK_ROWS)
        with reader:
            while True:
                try:
                    chunk = reader.get_chunk(size)
                except StopIteration:
                    return
                yield chunk
                chars = sum(int(chunk[c].str.len().sum()) for c in chunk.columns) if len(chunk) else 0
                size = int(min(rows, max(FIRST_CHUNK_ROWS // 10, CHUNK_TEXT_CHARS * len(chunk) // max(1, chars))))

    def _cell_blocks(self, text: TextStream, rows: int) -> Iterator[pd.DataFrame]:
        """Many columns: the records as one block of Python strings per chunk, each cell stripped of spaces, a
        short record padded with empty cells. Python's csv parser does what pandas' does here (the same quoting;
        a blank line is a record of empty cells) at a cost that follows the cells: pandas builds one column
        object per column per chunk (~60 us each), so 100,000 columns cost 6 s per 40 rows whatever the rows
        hold (a 230 KB gzip of commas held the read for 40 s; attack round, ninth session)."""
        width = len(self.header)
        csv.field_size_limit(max(csv.field_size_limit(), self.limits.max_record_bytes + 1))
        reader = csv.reader(_physical_lines(text), delimiter=self.delimiter, quotechar='"', doublequote=True,
                            skipinitialspace=False, strict=False)
        records = self._records(reader)
        next(records, None)  # the header (read by the sniff)
        batch: list[list[str]] = []
        start = 0
        for record in self._before_end_mark(records):
            if len(record) > width:
                raise self._fields_error()
            batch.append(record)
            if len(batch) == rows:
                yield self._cell_block(batch, start)
                start, batch = start + rows, []
        if batch:
            yield self._cell_block(batch, start)

    def _before_end_mark(self, records: Iterator[list[str]]) -> Iterator[list[str]]:
        """The file's records: the end mark fed after its last line is dropped, a record equal to it but followed by
        others is kept, and a missing mark (it went into a quoted field the file never closed) is the error."""
        held = None
        for record in records:
            if held is not None:
                yield held
                held = None
            if record == _END_RECORD:
                held = record
            else:
                yield record
        if held is None:
            raise self._never_closed()

    def _records(self, reader) -> Iterator[list[str]]:
        try:
            yield from reader
        except csv.Error as exc:  # pragma: no cover - lines come cut at their ends and bounded in length
            raise DataError(f"{self.name}: cannot read as CSV ({exc})") from None

    def _cell_block(self, records: list[list[str]], start: int) -> pd.DataFrame:
        cells = np.full((len(records), len(self.header)), "", dtype=object)
        short, limit = self._short, self.limits.max_value_chars
        for row, record in enumerate(records):
            if record:
                joined = "".join(record)
                if len(joined) > limit and short:  # (a value past the limit: refused before the block is built)
                    for position, role in short.items():
                        value = record[position].strip(CELL_SPACES) if position < len(record) else ""
                        if len(value) > limit:
                            raise value_too_long(self.name, role, len(value), value[:40], limit)
                if " " in joined or "\u00a0" in joined:
                    record = [value.strip(CELL_SPACES) for value in record]
                cells[row, :len(record)] = record
        return pd.DataFrame(cells, index=pd.RangeIndex(start, start + len(records)), columns=self.header, dtype=object)

    def _clean(self, frame: pd.DataFrame) -> pd.DataFrame:
        if not self._block:  # (a block's cells come stripped: _cell_block)
            frame = frame.fillna("")
            frame.columns = self.header
            for position in range(frame.shape[1]):  # stays in pandas' string dtype (Arrow-backed): no object copies
                frame.isetitem(position, frame.iloc[:, position].str.strip(CELL_SPACES))
        frame = self._drop_blank_rows(frame)
        frame = self._drop_repeated_headers(frame)
        return self._drop_unnamed_columns(frame)

    def _equal_cells(self, frame: pd.DataFrame, values: Sequence[str]) -> np.ndarray:
        """(rows,) bool: whether each row's cells equal ``values`` (one per column)."""
        if self._block:
            return (frame.to_numpy(dtype=object) == np.asarray(values, dtype=object)[None, :]).all(axis=1)
        same = np.ones(len(frame), dtype=bool)
        for position, value in enumerate(values):
            same &= (frame.iloc[:, position] == value).to_numpy()
        return same

    def _drop_blank_rows(self, frame: pd.DataFrame) -> pd.DataFrame:
        if not len(frame.columns) or not len(frame):
            return frame
        blank = self._equal_cells(frame, [""] * frame.shape[1])
        if blank.any():
            self._count("blank", int(blank.sum()))
            return frame.loc[~blank]
        return frame

    def _drop_repeated_headers(self, frame: pd.DataFrame) -> pd.DataFrame:
        if not len(frame) or not self.header[0]:
            return frame
        names = set(self.header)
        candidates = frame.iloc[:, 0].isin(names).to_numpy()
        if not candidates.any():
            return frame
        same = candidates.copy()
        same[candidates] = self._equal_cells(frame.loc[candidates], self.header)
        if same.any():
            first = int(frame.index[same.nonzero()[0][0]])
            self._count("header", int(same.sum()), first)
            frame = frame.loc[~same]
            candidates = frame.iloc[:, 0].isin(names).to_numpy()
        for position in candidates.nonzero()[0]:
            row = frame.iloc[position]
            cells = [str(v) for v in row.tolist()]
            if sorted(cells) == sorted(self.header) and cells != self.header:
                raise DataError(f"{self.name}: {self.line(int(frame.index[position]))} repeats the header in another "
                                f"column order ({', '.join(cells)}): were files with different columns joined? Give "
                                f"them as separate files")
        return frame

    def _count(self, what: str, count: int, row: int | None = None) -> None:
        counts = self.__dict__.setdefault("_counts", {})
        total, first = counts.get(what, (0, None))
        counts[what] = (total + count, first if first is not None else row)

    def cleaning_notes(self) -> list[str]:
        """The warnings about skipped lines (after the rows were read)."""
        counts = self.__dict__.get("_counts", {})
        out = []
        if "blank" in counts:
            out.append(f"{self.name}: skipped {counted(counts['blank'][0], 'blank line')}")
        if "header" in counts:
            total, first = counts["header"]
            out.append(f"{self.name}: skipped {counted(total, 'line')} repeating the header (first on {self.line(first)}; "
                       f"files joined one after the other?)")
        return out

    def _drop_unnamed_columns(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Columns with no header: all empty (trailing delimiters) -> dropped; a first column with values -> a
        saved row index, ignored with a warning; any other -> error."""
        if "" not in self.header:
            return frame
        keep = []
        for position, column in enumerate(self.header):
            if column != "":
                keep.append(position)
                continue
            values = frame.iloc[:, position]
            if (values == "").all():
                continue
            if position == 0:
                if not self._ignored_first:
                    self._ignored_first = True
                    self.notes.append(f"{self.name}: ignored the first column, which has no name (a saved row index?)")
                continue
            title = title_line_error(self.name, self.header)
            raise title or DataError(f"{self.name}: column {position + 1} has values but no name in the header; "
                                     f"name it")
        return frame.iloc[:, keep]

    @property
    def columns(self) -> list[str]:
        return [c for c in self.header if c != ""]


# ---------------------------------------------------------------------------------------------- Parquet
def _is_text(kind) -> bool:
    import pyarrow as pa  # noqa: PLC0415

    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)


def _plain_floats(values):
    """A float array with its NaN as missing values (a float column's NaN is how pandas writes an empty cell; cast
    to text it became the label "nan", so an empty float cell was a dropped answer where an empty integer cell was
    no answer), and -0.0 as 0.0 (cast to text, "-0" and "0" were two classes of one value; attack round 10)."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    if not pa.types.is_floating(values.type) or not len(values):
        return values
    if pa.types.is_float16(values.type):  # (no arithmetic on half floats; float32 holds each exactly)
        values = values.cast(pa.float32())
    values = pc.add(values, pa.scalar(0.0, values.type))  # -0.0 + 0.0 is 0.0; every other value stays
    return pc.if_else(pc.is_nan(values), pa.scalar(None, values.type), values)


def _unbounded(kind) -> bool:
    """Whether a Parquet column of this Arrow type can hold values of any size that are not read as a dictionary
    (each row decoded on its own): bytes of every kind, extension types (any storage) and nested values. Such a
    column is refused before anything is decoded: a ~2 KB file whose 1,000 rows point at one 2 MB value took 2 GB
    as fixed_size_binary, binary_view or an arrow.json extension (attack round 6)."""
    import pyarrow as pa  # noqa: PLC0415

    if pa.types.is_dictionary(kind):
        return _unbounded(kind.value_type)
    return (isinstance(kind, pa.BaseExtensionType) or pa.types.is_nested(kind) or pa.types.is_binary(kind)
            or pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind)
            or pa.types.is_fixed_size_binary(kind))


def _footer_bytes(handle: Any) -> tuple[int, int | None]:
    """The length a Parquet file's last 8 bytes give its metadata (0 when they are not a Parquet ending: pyarrow then
    says what is wrong), and the number of its schema's elements read from the metadata's first bytes (None when they
    are not as Parquet writers lay them out). ``handle`` is left at its start."""
    try:
        size = handle.seek(0, io.SEEK_END)
        if size < 12:
            return 0, None
        handle.seek(size - 8)
        tail = handle.read(8)
        if len(tail) != 8 or tail[4:] != b"PAR1":
            return 0, None
        length = int.from_bytes(tail[:4], "little")
        if length <= 0 or length > size - 8:
            return length, None
        handle.seek(size - 8 - length)
        return length, _schema_elements(handle.read(min(length, 32)))
    finally:
        handle.seek(0)


def _varint(data: bytes, at: int) -> tuple[int, int] | None:
    value, shift = 0, 0
    while at < len(data) and shift < 64:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at
    return None


def _schema_elements(head: bytes) -> int | None:
    """The length of the ``schema`` list of a Parquet ``FileMetaData`` from its first bytes (Thrift's compact
    protocol: field 2, a list of structs, one element per column of a flat file plus the root; before it only
    scalar fields, field 1 the version). Each field header read in its short form (a delta) or its long one (the
    field id written out: pyarrow reads it alike, and a file of 600,000 columns so written was parsed, 1.4 GB and
    11 s, before its columns were counted; attack round 35). None when the bytes are laid out otherwise."""
    at, field = 0, 0
    fixed = {1: 0, 2: 0, 3: 1, 7: 8}  # bool true, bool false, byte, double: bytes of payload
    while at < len(head):
        byte = head[at]
        kind, delta = byte & 0x0F, byte >> 4
        if kind == 0:
            return None  # the end of the struct, and no schema
        at += 1
        if delta:
            field += delta
        else:
            read = _varint(head, at)
            if read is None:
                return None
            field, at = (read[0] >> 1) ^ -(read[0] & 1), read[1]  # a zigzag i16
        if field == 2:
            if kind != 0x09 or at >= len(head) or head[at] & 0x0F != 0x0C:  # a list of structs
                return None
            if head[at] >> 4 != 0x0F:
                return head[at] >> 4
            size = _varint(head, at + 1)
            return None if size is None else size[0]
        if kind in fixed:
            at += fixed[kind]
        elif kind in (4, 5, 6):  # i16, i32, i64
            read = _varint(head, at)
            if read is None:
                return None
            at = read[1]
        elif kind == 8:  # binary
            read = _varint(head, at)
            if read is None:
                return None
            at = read[1] + read[0]
        else:
            return None
    return None


class ParquetTable(Table):
    kind = "parquet"

    def __init__(self, source: Source, limits: Limits, budget: Budget | None = None):
        super().__init__()
        import pyarrow as pa  # noqa: PLC0415
        import pyarrow.parquet as pq  # noqa: PLC0415

        self.source = source
        self.name = source.name
        self.limits = limits
        self.budget = budget
        self._handle = source.raw()
        self._short: dict[str, str] = {}
        footer, elements = _footer_bytes(self._handle)
        if footer > PARQUET_FOOTER_BYTES:
            self._handle.close()
            raise DataError(f"{self.name}: its Parquet metadata is {footer / (1 << 20):,.1f} MiB, more than the "
                            f"{PARQUET_FOOTER_BYTES / (1 << 20):g} MiB this server reads (a file of very many small row "
                            f"groups or columns); write it with fewer, larger row groups")
        if elements is None and footer > 0:  # (its columns could not be counted before pyarrow parses it all)
            self._handle.close()
            raise DataError(f"{self.name}: its Parquet metadata does not begin as Parquet writers lay it out, so its "
                            f"columns cannot be counted before it is read; write it again with pyarrow or pandas")
        if elements is not None and elements - 1 > min(limits.max_columns, PARQUET_MAX_COLUMNS):
            # (each column costs the preview ~7 KB and 0.06 ms more than a CSV's: 93,665 columns under the footer
            # bound took it from 118 to 746 MB in 5.9 s; attack round 17)
            self._handle.close()
            check_columns(self.name, elements - 1, limits)  # (DEEM_MAX_COLUMNS's own words when it is the lower)
            raise DataError(f"{self.name}: {elements - 1:,} columns, more than the {PARQUET_MAX_COLUMNS:,} this server "
                            f"reads from a Parquet file; write the answers in the long layout (task, worker, label)")
        try:
            self.file = pq.ParquetFile(self._handle)
            # text columns are read as dictionaries and stay so: each distinct value is decoded once. Decoding
            # them per row let a 7 KB file whose rows all point at one 200 MB dictionary value take 5 GB.
            # (string_view too: decoded per row, a 2.9 KB file of one 2 MB value in 1,000 rows took 2.1 GB; attack
            # round 6)
            text = [str(f.name) for f in self.file.schema_arrow
                    if _is_text(f.type) or (pa.types.is_dictionary(f.type) and _is_text(f.type.value_type))]
            if text:
                self.file = pq.ParquetFile(self._handle, metadata=self.file.metadata, read_dictionary=text)
            self._dictionary_columns = text
        except (pa.ArrowInvalid, pa.ArrowException, OSError, UnicodeDecodeError) as exc:  # a column name not UTF-8
            self._handle.close()
            raise DataError(f"{self.name}: looks like a Parquet file but cannot be read ({exc})") from None
        schema = self.file.schema_arrow
        self.header = [str(n) for n in schema.names]
        check_columns(self.name, len(self.header), limits)
        self.types = {str(f.name): f.type for f in schema}
        self.n_rows = int(self.file.metadata.num_rows)
        counts = Counter(self.header)
        dupes = sorted(h for h, n in counts.items() if n > 1)
        if dupes:
            raise DataError(f"{self.name}: column name {dupes[0]!r} appears {counts[dupes[0]]} times")

    @property
    def columns(self) -> list[str]:
        return list(self.header)

    def expect_short(self, roles: Mapping[str, str]) -> None:
        self._short = dict(roles)

    def time_columns(self, columns: Sequence[str]) -> dict[str, str]:
        import pyarrow as pa  # noqa: PLC0415

        found = {}
        for column in columns:
            kind = self.types.get(column)
            kind = kind.value_type if kind is not None and pa.types.is_dictionary(kind) else kind
            if kind is not None and pa.types.is_temporal(kind):
                found[column] = str(kind)
        return found

    def _stored_bytes(self, columns: Sequence[str], groups: Sequence[int] | None = None) -> int:
        """Decompressed bytes of the row groups ``groups`` (all by default), from the metadata; DataError for a row
        group larger than :data:`PARQUET_CHUNK_BYTES`.

        Each row group's total (every column, not only ``columns``) is used, never a column chunk's own metadata:
        pyarrow (26) aborts the whole process (C++ ``std::terminate``, no Python exception) when a chunk's size
        statistics do not match the schema and ``RowGroupMetaData.column(i)`` is called, so a 4 KB file took the
        dashboard server down (found fuzzing main). Reading the data itself raises an ordinary error instead."""
        metadata = self.file.metadata
        total = 0
        for group in range(metadata.num_row_groups) if groups is None else groups:
            size = int(metadata.row_group(group).total_byte_size)
            if size > PARQUET_CHUNK_BYTES:
                raise DataError(f"{self.name}: row group {group + 1} holds {describe_bytes(size)} once decompressed; "
                                f"at most {describe_bytes(PARQUET_CHUNK_BYTES)} per row group are read (write the "
                                f"file with smaller row groups)")
            total += size
        return total

    def _check_size(self, columns: Sequence[str]) -> None:
        if self.budget is None:
            return
        self.budget.add_rows(self.n_rows, self.name)
        self.budget.add_bytes(self._stored_bytes(columns), self.name)

    def _check_preview_size(self, columns: Sequence[str]) -> None:
        """A preview reads the first row group: at most :data:`PARQUET_CHUNK_BYTES` of it, all columns together."""
        if not self.file.metadata.num_row_groups:
            return
        stored = self._stored_bytes(columns, [0])
        if stored > PARQUET_CHUNK_BYTES:
            raise DataError(f"{self.name}: the first row group of this Parquet file holds {describe_bytes(stored)} "
                            f"once decompressed; a preview reads at most {describe_bytes(PARQUET_CHUNK_BYTES)} (write "
                            f"the file with smaller row groups)")

    def chunks(self, columns: Sequence[str] | None = None, nrows: int | None = None) -> Iterator[pd.DataFrame]:
        import pyarrow as pa  # noqa: PLC0415

        wanted = list(columns) if columns is not None else list(self.header)
        if nrows is None:
            self._check_size(wanted)
        else:
            self._check_preview_size(wanted)
        refused = {kind for kind in {self.types[column] for column in wanted} if _unbounded(kind)}  # once per type
        if refused:
            column = next(c for c in wanted if self.types[c] in refused)
            raise DataError(f"{self.name}: column {column!r} holds {self.types[column]} values, not labels or ids")
        start = 0
        try:
            for batch in self._batches(wanted, min(nrows or CHUNK_ROWS, CHUNK_ROWS),
                                       budget=PARQUET_CHUNK_BYTES if nrows is not None else None, limit_rows=nrows):
                if nrows is not None:  # only the rows shown, every column in one block
                    batch = batch.slice(0, nrows - start)
                    frame = pd.DataFrame(self._preview_cells(batch, wanted), columns=pd.Index(wanted, dtype=object),
                                         dtype=object)
                else:
                    frame = pd.DataFrame({name: self._text(batch.column(i), name) for i, name in enumerate(wanted)})
                frame.index = pd.RangeIndex(start, start + batch.num_rows)
                start += batch.num_rows
                yield frame
                if nrows is not None and start >= nrows:
                    return
        except (pa.ArrowInvalid, pa.ArrowException, OSError, UnicodeDecodeError) as exc:  # text not UTF-8
            raise DataError(f"{self.name}: cannot read the Parquet data ({exc})") from None

    def _batches(self, columns: Sequence[str], rows: int, budget: int | None = None,
                 limit_rows: int | None = None) -> Iterator:
        """Record batches of at most ``rows`` rows (``limit_rows``: no more than that many in all). Consecutive row
        groups are read together up to ``rows`` rows and :data:`PARQUET_CHUNK_BYTES` (from the metadata): a batch per
        row group cost ~2.5 ms of per-chunk work each, so a 9 MB file of 20,000 one-row groups held the server's one
        read slot for 45 s (the eighth session's leftover). Every row group is checked against
        :data:`PARQUET_CHUNK_BYTES` before it is read, and ``budget`` (a preview's) bounds the bytes of all the groups
        read: a preview went on to later groups unchecked when the first held fewer rows than it shows (a 33 KB file:
        4.1 GB), or read 20 one-row groups of 125 MB each (97 s of the server's one read slot; attack round 7).
        Those sizes are the file's own words, so the groups are decoded in a process of their own under
        :data:`PARQUET_DECODE_BYTES` (:meth:`_decoded`)."""
        metadata = self.file.metadata
        steps: list[tuple[str, Any]] = []
        span: list[int] = []
        held = size = spent = 0
        for group in range(metadata.num_row_groups):
            info = metadata.row_group(group)
            group_rows, group_bytes = int(info.num_rows), int(info.total_byte_size)
            self._stored_bytes(columns, [group])  # (DataError past PARQUET_CHUNK_BYTES)
            if budget is not None and spent and spent + group_bytes > budget:
                self.notes.append(f"{self.name}: the preview shows the rows of the {'first row group' if group == 1 else f'first {group:,} row groups'} only "
                                  f"(the next holds {describe_bytes(group_bytes)} once decompressed)")
                break
            spent += group_bytes
            if span and (held + group_rows > rows or size + group_bytes > PARQUET_CHUNK_BYTES):
                steps.append(("span", span))
                span, held, size = [], 0, 0
            if group_rows > rows:
                # decoded a batch at a time: the metadata's size is the encoded one, and a run-length encoded column
                # of one value keeps 30 million rows in 351 KB — read whole, a 392 KB file's preview took 2.3 GB
                # (attack round 5)
                steps.append(("iter", group))
                continue
            span.append(group)
            held, size = held + group_rows, size + group_bytes
            if limit_rows is not None and spent and held >= limit_rows and not steps:
                break  # (a preview: enough rows)
        if span:
            steps.append(("span", span))
        if steps:
            yield from self._decoded(steps, columns, rows, limit_rows)

    @staticmethod
    def _sweep_left_folders(older_than: float = LEFT_FOLDER_SECONDS) -> None:
        """Remove decoding folders nobody has written to for ``older_than`` seconds (a server killed mid-read leaves
        its folder, and nothing else removes it; attack round 8). A folder's age is its newest file's: a read still
        running writes its batches there."""
        import time  # noqa: PLC0415

        now = time.time()
        for folder in Path(tempfile.gettempdir()).glob("deem-parquet-*"):
            try:
                if not folder.is_dir() or folder.is_symlink() or folder.stat().st_uid != os.getuid():
                    continue
                newest = max([folder.stat().st_mtime] + [f.stat().st_mtime for f in folder.iterdir()])
                if now - newest > older_than:
                    shutil.rmtree(folder, ignore_errors=True)
            except OSError:
                continue

    def _output_bytes(self) -> int:
        """What the decoding process may write back: :data:`PARQUET_DECODE_OUTPUT_BYTES`, and no more than the read's
        own byte limit (a 0.49 MB upload of repeated values wrote 1.6 GB in 5 s; attack round 8)."""
        return int(min(PARQUET_DECODE_OUTPUT_BYTES, self.limits.max_bytes or PARQUET_DECODE_OUTPUT_BYTES))

    def _decoded(self, steps: list, columns: Sequence[str], rows: int, limit_rows: int | None) -> Iterator:
        """The batches of ``steps`` (see :mod:`deem_core.data.formats.parquet_decode`), decoded by a child process
        that may hold :data:`PARQUET_DECODE_BYTES` and take the limits' ``max_seconds``; read back from a memory-mapped
        Arrow stream in a private temporary folder. DataError when the child runs out of memory or time, or cannot
        read the data."""
        import pyarrow as pa  # noqa: PLC0415

        # (a read lasts at most max_seconds: a folder idle twice that, and an hour, is no read's; none: a day)
        self._sweep_left_folders(max(LEFT_FOLDER_SECONDS, 2 * (self.limits.max_seconds or 12 * 3600)))
        folder = Path(tempfile.mkdtemp(prefix="deem-parquet-"))  # (0700)
        try:
            path = self.source.path
            if path is None:  # an upload held in memory: the child reads a copy
                path = folder / "input.parquet"
                self._handle.seek(0)
                with open(path, "wb") as copy:
                    shutil.copyfileobj(self._handle, copy, 1 << 20)
            out = folder / "batches.arrows"
            seconds = self.limits.max_seconds or None
            spec = {"columns": list(columns), "dictionary": self._dictionary_columns, "steps": steps,
                    "rows": int(rows), "limit_rows": limit_rows, "memory": int(PARQUET_DECODE_BYTES),
                    "output": self._output_bytes(), "seconds": seconds}
            too_long = DataError(f"{self.name}: decoding the Parquet data took longer than {seconds or 0:g} s "
                                 f"(DEEM_MAX_READ_SECONDS)")
            orders = folder / "spec.json"  # (a file: one argument holds at most 128 KB, 100,000 names more)
            orders.write_text(json.dumps(spec), encoding="utf-8")
            try:
                # -E -P: no PYTHON* variables, not the script's folder on the path (-I would also drop the user's
                # site packages, where pyarrow may be; attack round 8)
                done = subprocess.run([sys.executable, "-E", "-P", str(Path(__file__).with_name("parquet_decode.py")),
                                       str(path), str(out), str(orders)], capture_output=True, text=True,
                                      timeout=seconds, check=False)
            except subprocess.TimeoutExpired:
                raise too_long from None
            if done.returncode == 5:
                raise DataError(f"{self.name}: the Parquet data decode to more than "
                                f"{describe_bytes(self._output_bytes())}; at most that much is read "
                                f"(DEEM_MAX_INPUT_BYTES)")
            if done.returncode < 0 and -done.returncode not in (signal.SIGABRT, signal.SIGKILL, signal.SIGXCPU):
                raise DataError(f"{self.name}: the process decoding the Parquet data stopped on signal "
                                f"{-done.returncode} (a damaged file?)")
            if -done.returncode == signal.SIGXCPU:  # (its own CPU limit)
                raise too_long
            if done.returncode == 4 or done.returncode < 0:
                raise DataError(f"{self.name}: decoding this Parquet file needs more than "
                                f"{describe_bytes(PARQUET_DECODE_BYTES)} of memory: its data hold far more than its "
                                f"metadata says (or its row groups are too large; write it with smaller ones)")
            if done.returncode != 0:
                reason = (done.stderr.strip().splitlines() or ["no reason given"])[-1]
                raise DataError(f"{self.name}: cannot read the Parquet data ({reason})")
            if not out.stat().st_size:
                return
            # memory-mapped: a batch is read from the page cache as it is used, not copied in whole
            yield from pa.ipc.open_stream(pa.memory_map(str(out)))
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _preview_cells(self, batch, columns: Sequence[str]) -> np.ndarray:
        """A preview's rows (a few) of ``batch`` as display text, rows x columns of Python strings, made as
        :meth:`_text` makes them (pyarrow's cast to text, a missing value empty, spaces trimmed) and cut for display
        (a long value ends with "…"), with a few pyarrow calls per column type: cleaning each column with calls of
        its own and a Series per column took 9 s to preview 30,000 worker columns and 33 s for 100,000, where the
        CSV of the same cells took 0.6 and 1.8 s (the tenth session's leftover). Text columns are dictionaries and
        stay so: their distinct values are cut before anything copies them (a row per copy of one 16 MiB value
        took 3 GB)."""
        import pyarrow as pa  # noqa: PLC0415

        rows = batch.num_rows
        cells = np.empty((rows, len(columns)), dtype=object)
        if not rows or not len(columns):
            return cells
        by_type: dict = {}
        for i, field in enumerate(batch.schema):
            by_type.setdefault(field.type, []).append(i)
        arrays = batch.columns
        for kind, positions in by_type.items():
            group = [arrays[i] for i in positions]
            if pa.types.is_dictionary(kind):
                # the dictionary entries the shown rows use, taken where they lie (joining or unifying the
                # dictionaries copies them: +38 MB for one 16 MiB value; cleaning every entry took 4 s for 3.8
                # million unused ones: attack round 7), then each row's index into them
                dictionaries = pa.chunked_array([a.dictionary for a in group], type=kind.value_type)
                sizes = np.fromiter((len(d) for d in dictionaries.iterchunks()), np.int64, len(group))
                starts = np.cumsum(sizes) - sizes
                codes = pa.chunked_array([a.indices for a in group], type=kind.index_type).combine_chunks()
                missing = codes.is_null().to_numpy(zero_copy_only=False)
                codes = codes.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64) + np.repeat(starts, rows)
                used = np.unique(codes[~missing])
                owner = np.asarray(positions)[np.searchsorted(starts, used, side="right") - 1]
                distinct = self._preview_values(dictionaries.take(pa.array(used, pa.int64())), columns, owner)
                at = np.clip(np.searchsorted(used, codes), 0, max(len(used) - 1, 0))
                flat = np.where(missing, "", distinct[at] if len(used) else "")
            else:
                flat = self._preview_values(pa.chunked_array(group, type=kind), columns,
                                            np.repeat(np.asarray(positions), rows))
            cells[:, positions] = flat.reshape(len(positions), rows).T
        return cells

    def _preview_values(self, values, columns: Sequence[str], owner: np.ndarray):
        """Values (an array; value ``i`` from column ``columns[owner[i]]``) as display text, a numpy array of str;
        DataError, naming the column, for a value over the limits' ``max_record_bytes``."""
        import pyarrow as pa  # noqa: PLC0415
        import pyarrow.compute as pc  # noqa: PLC0415

        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
            values = _plain_floats(values).cast(pa.string())
        if not len(values):
            return np.array([], dtype=object)
        lengths = pc.binary_length(values)
        longest = pc.max(lengths).as_py() or 0
        if longest > self.limits.max_record_bytes:
            column = columns[int(owner[pc.index(lengths, longest).as_py()])]
            raise DataError(f"{self.name}: column {column!r} holds a value of {describe_bytes(longest)}; at most "
                            f"{describe_bytes(self.limits.max_record_bytes)} are read (not labels or ids)")
        # a window first (nothing copies a long value whole), trimmed as a read trims, then cut to the shown length;
        # the window's second half keeps the cut exact for a value that starts with spaces (unless it holds more than
        # PREVIEW_CHARS of them in a row)
        start = pc.utf8_ltrim(pc.fill_null(pc.utf8_slice_codeunits(values, 0, 2 * PREVIEW_CHARS + 2), ""),
                             CELL_SPACES)
        whole = pc.utf8_rtrim(start, CELL_SPACES)
        long = pc.greater(pc.utf8_length(whole), PREVIEW_CHARS)
        if pc.any(long).as_py():
            whole = pc.if_else(long, pc.binary_join_element_wise(pc.utf8_slice_codeunits(start, 0, PREVIEW_CHARS),
                                                                  "…", ""), whole)
        return whole.combine_chunks().to_numpy(zero_copy_only=False)

    def _text(self, array, column: str) -> pd.Series:
        """One column of a batch as categorical text. Works on the distinct values (the dictionary): no value is
        ever copied once per row."""
        import pyarrow as pa  # noqa: PLC0415
        import pyarrow.compute as pc  # noqa: PLC0415

        if not pa.types.is_dictionary(array.type):
            array = pc.dictionary_encode(array)
        values, codes = array.dictionary, array.indices
        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
            values = pc.cast(_plain_floats(values), pa.string())
        if len(values):
            longest = pc.max(pc.binary_length(values)).as_py() or 0
            if longest > self.limits.max_record_bytes:
                raise DataError(f"{self.name}: column {column!r} holds a value of {describe_bytes(longest)}; at most "
                                f"{describe_bytes(self.limits.max_record_bytes)} are read (not labels or ids)")
            if column in self._short:
                self._refuse_long(values, codes, column)
        values = pc.utf8_trim(pc.fill_null(values, ""), CELL_SPACES)
        # trimming can make two entries one (" a", "a"), and a missing value is an empty cell
        distinct = pc.dictionary_encode(values)
        codes = pc.take(distinct.indices, codes)
        categories = distinct.dictionary
        if codes.null_count:
            found = pc.index(categories, "").as_py()
            if found < 0:
                categories = pa.concat_arrays([categories, pa.array([""], categories.type)])
                found = len(categories) - 1
            codes = pc.fill_null(codes, pa.scalar(found, codes.type))
        return pd.Series(pa.DictionaryArray.from_arrays(codes, categories).to_pandas())

    def _refuse_long(self, values, codes, column: str) -> None:
        """DataError, as the full check words it, for an id or label longer than the value limit once trimmed,
        among the distinct values ``values`` that some row ``codes`` uses (a categorical column keeps unused
        categories in its dictionary). Checked as the values come from the file: trimming and encoding a 20 MB
        label six times over took a 15 KB file's read from 0.6 to 1.5 GB before the same refusal (attack round,
        seventh session). Only the values past the limit are trimmed (copied) here."""
        import pyarrow.compute as pc  # noqa: PLC0415

        limit = self.limits.max_value_chars
        over = pc.greater(pc.utf8_length(values), limit)
        if not pc.any(over).as_py():
            return
        used = pc.unique(pc.drop_null(codes))
        candidates = pc.filter(pc.take(values, used), pc.take(over, used))
        if not len(candidates):
            return
        trimmed = pc.utf8_trim(candidates, CELL_SPACES)
        lengths = pc.utf8_length(trimmed)
        longest = pc.max(lengths).as_py() or 0
        if longest > limit:
            value = trimmed.slice(pc.index(lengths, longest).as_py(), 1)
            start = pc.utf8_slice_codeunits(value, 0, 40)[0].as_py()
            raise value_too_long(self.name, self._short[column], longest, start, limit)

    def close(self) -> None:
        self._handle.close()


# ---------------------------------------------------------------------------------------------- DataFrame
class FrameTable(Table):
    """A DataFrame source (values keep their types) or a table built in memory (``typed=False``: text)."""

    kind = "frame"

    def __init__(self, name: str, frame: pd.DataFrame, typed: bool = True, budget: Budget | None = None,
                 kind: str = "frame"):
        super().__init__()
        self.name = name
        self.kind = kind
        if not isinstance(frame.columns, pd.RangeIndex):
            frame = frame.copy()
            frame.columns = [str(c) for c in frame.columns]
        self.frame = frame
        self.header = [str(c) for c in frame.columns]
        self.typed = typed
        self.budget = budget

    @property
    def columns(self) -> list[str]:
        return list(self.header)

    def chunks(self, columns: Sequence[str] | None = None, nrows: int | None = None) -> Iterator[pd.DataFrame]:
        frame = self.frame if columns is None else self.frame[list(columns)]
        if nrows is not None:
            frame = frame.head(nrows)
        elif self.budget is not None:
            self.budget.add_rows(len(frame), self.name)
        if len(frame) or nrows is not None:
            yield frame

    def time_columns(self, columns: Sequence[str]) -> dict[str, str]:
        if not self.typed:
            return {}
        types = pd.api.types
        return {column: str(self.frame[column].dtype) for column in columns if column in self.frame.columns
                and (types.is_datetime64_any_dtype(self.frame[column]) or types.is_timedelta64_dtype(self.frame[column])
                     or isinstance(self.frame[column].dtype, pd.PeriodDtype))}

    def line(self, row: int) -> str:
        if self.kind == "json":
            return f"record {row + 1}"
        return f"row {row + 1}"
