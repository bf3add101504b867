"""Resource limits of one read: enforced while the bytes stream in, before anything large is built.

* ``max_bytes``: decompressed bytes read in all (every file of one call together). A 1.5 MB ``.csv.gz``
  that expands to 1 GiB is refused once the limit is passed, having held only a block at a time.
* ``max_rows``: data rows (CSV records, Parquet rows, Label Studio annotations and predictions) in all.
* ``max_record_bytes``: one physical line, one quoted CSV field or one JSON element (an unclosed quote
  would otherwise make the parser buffer the rest of the file), and one Parquet value.
* ``max_value_chars``: one task, worker or label value (and one truth). Ids and classes are short; a value
  of megabytes is a free-text column read as labels, and every page, table and chart that shows it would
  copy it (a 0.6 MB ``.csv.gz`` of six 50 MB labels took a dashboard server from 1 to 4.6 GB).
* ``max_columns``: columns of one table. Every column costs its own parser and pandas work (~0.04 ms), so a header
  of a million names (8 MB) would hold the reader for minutes; a wide file of this many workers is a long file.
* ``max_seconds``: wall seconds of one read (``DEEM_MAX_READ_SECONDS``, default 600; 0: none), checked as rows
  come in. A few short lines under a header of many columns cost pandas a full row each: 400 lines of 3 bytes
  under 100,000 columns took 108 s, so a small gzip of such lines would hold a server's reading for hours.
* ``max_growth``: bytes the process's resident memory may grow by during one read, looked at as each chunk of
  answers comes in and as its tables are built (``DEEM_MAX_READ_MEMORY``, default 4 GiB; 0: not looked at); below
  it, 512 MiB plus 500 bytes per answer read so far (20,000 distinct ids of 9,000 characters grew a server to 3.5 GB
  under a base of 1 GiB; walkthrough 71). Distinct ids take about ten times their characters while a read builds
  its tables: 95,000 task ids of 9,999 characters (a 490 KB Parquet, every limit above kept) took a server to a
  12 GB peak, 2 million distinct tasks and workers (19 MB) to 2.8 GB (attack round 38). The peak of a read stops at
  a small multiple of this growth (the 12 GB file: refused at +817 MiB).
* ``max_json_values``: values in one element of a JSON file or one JSON cell, counted by their ``{``, ``[`` and
  ``,``. Each costs a Python object of up to ~60 bytes, 20-30 times the 2-3 characters of ``{}``: a 60 MB
  element of empty objects needed 1.5 GB. Deeper nesting than Python's parser allows is refused too.

A read may be made under *provisional* limits (``provisional=True``: a server that sized a read as small before it
began): past its bytes or seconds it raises :class:`~deem_core.data.annotations.ReadOutgrown`, so that the caller can
read the file again under its full limits.

Defaults come from the environment (``DEEM_MAX_INPUT_BYTES``, ``DEEM_MAX_INPUT_ROWS``; sizes may end in
``K``, ``M`` or ``G``: powers of 1024), else the values below; the command line's ``--max-input-bytes``
and ``--max-input-rows`` and the keyword ``limits=`` override them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from typing import Mapping

from deem_core.data.text import shortened

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_COLUMNS", "DEFAULT_MAX_JSON_VALUES", "DEFAULT_MAX_READ_GROWTH",
           "DEFAULT_MAX_READ_SECONDS", "READ_GROWTH_BASE", "READ_GROWTH_PER_ANSWER",
           "DEFAULT_MAX_ROWS", "DEFAULT_MAX_VALUE_CHARS", "Limits", "limit_from_env", "parse_limit", "parse_size"]

#: 1 GiB of decompressed input: about 30 million answers of a typical long CSV
DEFAULT_MAX_BYTES = 1 << 30
#: 20 million rows: the reader holds about 3 bytes per row per column while it streams (categorical codes)
DEFAULT_MAX_ROWS = 20_000_000
DEFAULT_MAX_RECORD_BYTES = 64 << 20
#: characters of one task, worker or label value (``DEEM_MAX_VALUE_CHARS``)
DEFAULT_MAX_VALUE_CHARS = 10_000
#: wall seconds of one read (``DEEM_MAX_READ_SECONDS``): the largest accepted file reads in a few minutes
DEFAULT_MAX_READ_SECONDS = 600.0
#: columns of one table (``DEEM_MAX_COLUMNS``): a wide file's workers
DEFAULT_MAX_COLUMNS = 100_000
#: values in one element of a JSON file (a Label Studio task holds a few dozen to a few thousand)
DEFAULT_MAX_JSON_VALUES = 2_000_000
#: resident memory one read may add at most (``DEEM_MAX_READ_MEMORY``; 0 turns the check off): a 6-million-answer
#: platform export (1,000,000 tasks x 2,400 workers) grows it by 0.6 GB at its chunks' ends as CSV, 2.2 GB as Parquet
DEFAULT_MAX_READ_GROWTH = 4 << 30
#: below that, what a read may add by its n-th answer: a base plus so much per answer (the Parquet export above takes
#: ~370 bytes an answer; 95,000 answers of 10,000-character ids ~10,000)
READ_GROWTH_BASE = 512 << 20
READ_GROWTH_PER_ANSWER = 500
#: what a preview reads at most (decompressed): a bounded head of the file
PREVIEW_BYTES = 4 << 20

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str | int, what: str = "size") -> int:
    """``"512M"`` -> 536870912; plain integers are bytes. ValueError for anything else."""
    if isinstance(text, int):
        value = text
    else:
        try:
            value = int(parse_limit(text, "bytes", zero=True))  # (0 is refused just below, in these words)
        except ValueError:
            raise ValueError(f"{what} must be a number of bytes, optionally ending in K, M or G; got "
                             f"{shortened(text)!r}") from None
    if value <= 0:
        raise ValueError(f"{what} must be positive, got {shortened(text)!r}")
    return value


#: how a limit is written, per kind: ASCII digits only (int() takes other scripts' digits), at most 24 before the
#: point (400 digits overflowed float() and crashed every page; attack round 12), no sign, exponent or "_"
_LIMIT_FORMS = {"count": re.compile(r"([0-9]{1,24})()"),
                "seconds": re.compile(r"([0-9]{1,24}(?:\.[0-9]{0,9})?|\.[0-9]{1,9})()"),
                "bytes": re.compile(r"([0-9]{1,24}(?:\.[0-9]{1,9})?)\s*([KMGT]?)(?:I?B)?", re.IGNORECASE)}


def parse_limit(text: str, kind: str, zero: bool = False) -> float | int:
    """A limit written ``text``: a ``"count"`` (whole), ``"seconds"`` or ``"bytes"`` (K, M, G, T: powers of 1024).
    ValueError (a sentence) for anything else, and for 0 unless ``zero`` (0: "no limit" where a limit says so); a
    value written other than 0 that comes to 0 (half a byte) is refused too, never read as "no limit"."""
    text = str(text).strip()
    match = _LIMIT_FORMS[kind].fullmatch(text) if text.isascii() else None
    if match is None:
        raise ValueError({"count": "a whole number", "seconds": "a number of seconds",
                          "bytes": "a number of bytes, optionally ending in K, M, G or T"}[kind])
    number = float(match.group(1))
    value: float | int = (int(number * _UNITS[match.group(2).upper()]) if kind == "bytes" else
                          int(match.group(1)) if kind == "count" else number)
    if value == 0 and (not zero or number != 0):
        raise ValueError("more than 0" if number == 0 else f"at least 1 {'byte' if kind == 'bytes' else kind}")
    return value


def limit_from_env(name: str, default: float | int, kind: str, zero: bool = False,
                   environ: Mapping[str, str] | None = None) -> float | int:
    """``name``'s limit from the environment (:func:`parse_limit`); ``default`` when it is unset, empty or unusable,
    so a bad value never lifts a limit (-0.0 and 1e-400 were read as no read time limit; attack round 12). The one
    reading of every ``DEEM_*`` limit: the engine's input limits here, the dashboard's in ``deem_studio.settings``."""
    raw = (os.environ if environ is None else environ).get(name, "")
    try:
        return parse_limit(raw, kind, zero) if str(raw).strip() else default
    except ValueError:
        return default


def _from_env(name: str, default: int) -> int:
    return int(limit_from_env(name, default, "bytes"))


def _seconds_from_env(name: str, default: float) -> float:
    """Seconds from the environment (0: no limit); the default for anything else."""
    return float(limit_from_env(name, default, "seconds", zero=True))


@dataclass(frozen=True)
class Limits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_rows: int = DEFAULT_MAX_ROWS
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    max_value_chars: int = DEFAULT_MAX_VALUE_CHARS
    max_json_values: int = DEFAULT_MAX_JSON_VALUES
    max_columns: int = DEFAULT_MAX_COLUMNS
    max_seconds: float = DEFAULT_MAX_READ_SECONDS
    max_growth: int = DEFAULT_MAX_READ_GROWTH
    #: past max_bytes or max_seconds the read raises ReadOutgrown (module docstring)
    provisional: bool = False

    @classmethod
    def from_env(cls, **overrides: int | None) -> "Limits":
        limits = cls(max_bytes=_from_env("DEEM_MAX_INPUT_BYTES", DEFAULT_MAX_BYTES),
                     max_rows=_from_env("DEEM_MAX_INPUT_ROWS", DEFAULT_MAX_ROWS),
                     max_value_chars=_from_env("DEEM_MAX_VALUE_CHARS", DEFAULT_MAX_VALUE_CHARS),
                     max_columns=_from_env("DEEM_MAX_COLUMNS", DEFAULT_MAX_COLUMNS),
                     max_seconds=_seconds_from_env("DEEM_MAX_READ_SECONDS", DEFAULT_MAX_READ_SECONDS),
                     max_growth=int(limit_from_env("DEEM_MAX_READ_MEMORY", DEFAULT_MAX_READ_GROWTH, "bytes",
                                                   zero=True)))
        given = {key: value for key, value in overrides.items() if value is not None}
        return replace(limits, **given) if given else limits

    def with_bytes(self, max_bytes: int) -> "Limits":
        return replace(self, max_bytes=max_bytes)


def describe_bytes(value: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size:
            amount = value / size
            return f"{amount:.0f} {unit}" if amount == int(amount) else f"{amount:.1f} {unit}"
    return f"{value} bytes"
