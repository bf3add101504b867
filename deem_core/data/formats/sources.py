"""Where input bytes come from, and the bounded stream they are read through.

A *source* is a path (a folder means every supported file in it), an uploaded file (``(name, bytes)``, or
an object with ``.name`` and ``.getvalue()`` / ``.read()`` such as Streamlit's ``UploadedFile``), or a
pandas ``DataFrame``. Files are never read whole into memory by this module: :func:`open_stream` gives a
stream that decompresses gzip on the fly (recognised by its magic bytes, whatever the name) and counts
the decompressed bytes against the read's :class:`Budget`, refusing past the limit.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gzip
import io
import os
import stat
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd

from deem_core.data.annotations import DataError, ReadOutgrown
from deem_core.data.formats.limits import READ_GROWTH_BASE, READ_GROWTH_PER_ANSWER, Limits, describe_bytes
from deem_core.data.text import escape_controls

__all__ = ["Budget", "Source", "open_stream", "printable", "read_bytes_of", "read_head", "sources_of"]

#: what a folder source reads (also gzipped)
FILE_SUFFIXES = (".csv", ".tsv", ".txt", ".json", ".jsonl", ".parquet", ".pq")
_BLOCK = 1 << 20


def printable(text: Any) -> str:
    """``text`` with control characters written as escapes (``\\n``, ``\\x1b``): a file named with a newline
    or a terminal escape cannot cut or colour a message line. (The project's one rule for this:
    :func:`deem_core.data.text.escape_controls`.)"""
    return escape_controls(text)


def _stem(name: str) -> str:
    lowered = name.lower()
    if lowered.endswith(".gz"):
        name, lowered = name[:-3], lowered[:-3]
    for suffix in (".csv", ".tsv", ".txt", ".json", ".jsonl", ".parquet", ".pq"):
        if lowered.endswith(suffix):
            return name[: -len(suffix)]
    return name


def resident_bytes() -> int | None:
    """This process's resident memory in bytes (Linux: ``/proc/self/statm``), None where it cannot be read."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def release_memory() -> None:
    """Hand the memory a read freed back to the system: glibc keeps freed blocks in the arena of the thread that
    freed them and Arrow's pool keeps its own, so every refused read left a server's process about 500 MiB larger
    (each page thread an arena of its own; the next read's limit counted from there), and a kept data set held
    about twice its bytes (attack round 39; 30 ms after a read of 60,000 long ids). Where there is no
    ``malloc_trim`` (not glibc) only Arrow's pool is trimmed."""
    try:
        import pyarrow  # noqa: PLC0415

        pyarrow.default_memory_pool().release_unused()
    except Exception:  # noqa: BLE001 (best effort)
        pass
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or None."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


class Budget:
    """What one read may still consume: decompressed bytes and rows, shared by all its files."""

    def __init__(self, limits: Limits, several: bool = False):
        self.limits = limits
        self.bytes = 0
        self.rows = 0
        self.answers = 0
        self.several = several
        self.started = time.monotonic()
        self.resident_at_start = resident_bytes()

    def check_time(self, name: str) -> None:
        """DataError once the read has taken longer than :attr:`Limits.max_seconds` (0: never)."""
        limit = self.limits.max_seconds
        if limit and time.monotonic() - self.started > limit:
            if self.limits.provisional:
                raise ReadOutgrown(f"{name}: read for more than the {limit:g} s it was given")
            raise DataError(f"{name}: still reading after {limit:g} s, this server's limit for one read "
                            f"(DEEM_MAX_READ_SECONDS). Files of this size read in seconds; a table of very many "
                            f"columns with short rows is slow: give it as a long file (task, worker, label)")

    def _past(self, name: str, amount: str, option: str) -> DataError:
        """The refusal of a read past one of its limits (``amount``: "more than ..."; ``option``: how to raise it)."""
        scope = "the files hold" if self.several else "holds"
        return DataError(f"{name}: {scope} more than {amount}, the input limit; raise it with {option} if the data is "
                         f"really this large")

    def add_bytes(self, count: int, name: str) -> None:
        self.check_time(name)
        self.check_memory(name)  # (also while a parser takes in one large chunk)
        self.bytes += count
        if self.bytes > self.limits.max_bytes:
            if self.limits.provisional:
                raise ReadOutgrown(f"{name}: holds more than the {describe_bytes(self.limits.max_bytes)} it was "
                                   f"sized at")
            raise self._past(name, f"{describe_bytes(self.limits.max_bytes)} once decompressed",
                             "--max-input-bytes (DEEM_MAX_INPUT_BYTES)")

    def add_answers(self, count: int, name: str) -> None:
        """Answers (the long table's rows) the read has made, against the row limit too: a wide table makes one of
        every filled cell, so its rows alone did not bound them (a 260 KB gzip of 20,000 columns, 100 million
        answers, took a server past 2 GB before anything refused it; attack round 33)."""
        self.answers += count
        if self.answers > self.limits.max_rows:
            raise self._past(name, f"{self.limits.max_rows:,} answers (in a table of a column per worker, every "
                                   f"filled cell is one)", "--max-input-rows (DEEM_MAX_INPUT_ROWS)")
        self.check_memory(name)

    def check_memory(self, name: str) -> None:
        """DataError once the process's resident memory has grown by more than :attr:`Limits.max_growth` since the
        read began (0, or no way to read it: not checked). Every limit above held one by one while 95,000 task ids
        of 9,999 characters took a server to a 12 GB peak (attack round 38)."""
        ceiling, start = self.limits.max_growth, self.resident_at_start
        if not ceiling or start is None:
            return
        limit = min(ceiling, READ_GROWTH_BASE + READ_GROWTH_PER_ANSWER * self.answers)
        now = resident_bytes()
        if now is not None and now - start > limit:
            # (by row where no answer is made: a truth file said "by answer 0")
            where = f"answer {self.answers:,}" if self.answers else f"row {self.rows:,}"
            raise DataError(f"{name}: reading it took more than {describe_bytes(limit)} of memory by {where} "
                            f"(DEEM_MAX_READ_MEMORY; its ids take about ten times their characters "
                            f"while they are read): ids this long or this many distinct ones are more than one read "
                            f"may hold. Shorten the ids (a task id is a name, not its text), or split the file")

    def add_rows(self, count: int, name: str) -> None:
        self.check_time(name)
        self.rows += count
        if self.rows > self.limits.max_rows:
            raise self._past(name, f"{self.limits.max_rows:,} rows", "--max-input-rows (DEEM_MAX_INPUT_ROWS)")

@dataclass
class Source:
    """One input file (or DataFrame). ``name`` is for messages (control characters escaped); ``stem`` names
    the worker of a one-file-per-worker layout."""

    name: str
    stem: str
    path: Path | None = None
    data: bytes | None = None
    handle: Any = None
    frame: pd.DataFrame | None = None
    #: bytes of its text (decompressed), once a read has reached its end
    text_bytes: int | None = None

    def raw(self) -> BinaryIO:
        """A fresh binary stream over the (possibly compressed) bytes, from the start."""
        if self.path is not None:
            return open(self.path, "rb")  # noqa: SIM115 - closed by the stream that wraps it
        if self.data is not None:
            return io.BytesIO(self.data)
        self.handle.seek(0)
        return _Borrowed(self.handle)

    def text_size(self) -> int | None:
        """Bytes of its text: as counted by a read that reached its end; else, for a gzip file on disk, gzip's size
        field (what a file this project wrote holds: below 4 GiB, one member); else its raw size. A Label Studio
        export's task data kept gzip-compressed with a run were counted at their compressed size: a 904 MB
        predictions file went in the small downloads' line, and another visitor's 0.07 s download waited 22 s
        behind it (attack round 60)."""
        if self.text_bytes is not None:
            return self.text_bytes
        raw = self.raw_size()
        packed = gzip_text_size(self.path) if self.path is not None else None
        return raw if packed is None else max(raw or 0, packed)

    def raw_size(self) -> int | None:
        if self.path is not None:
            return self.path.stat().st_size
        if self.data is not None:
            return len(self.data)
        try:
            return len(self.handle.getbuffer())
        except (AttributeError, TypeError, ValueError):
            return None


def gzip_text_size(path: str | Path) -> int | None:
    """The size of the text a gzip file says it holds (its last four bytes: exact for one member below 4 GiB, as the
    files this project writes); None for a file that is not gzip or cannot be read."""
    try:
        with open(path, "rb") as handle:
            if handle.read(2) != b"\x1f\x8b":
                return None
            handle.seek(-4, os.SEEK_END)
            return int.from_bytes(handle.read(4), "little")
    except OSError:
        return None


def read_bytes_of(head: bytes, tail: bytes, size: int) -> int | None:
    """About the bytes a read of a file of ``size`` bytes, starting with ``head`` and ending with ``tail``, goes
    through: its size; a gzip file's count of the text it holds when larger (its last four bytes, the last member's:
    a file whose trailer understates its text is read as it is, within the input limits); None for Parquet, whose
    compressed columns say their size only in metadata read later."""
    if head[:4] == b"PAR1":
        return None
    if head[:2] == b"\x1f\x8b" and len(tail) >= 4:
        return max(int(size), int.from_bytes(tail[-4:], "little"))
    return int(size)


class _Borrowed(io.RawIOBase):
    """Reads a caller's seekable file object without closing it."""

    def __init__(self, handle: Any):
        self.handle = handle

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self.handle.read(size)

    def readinto(self, buffer) -> int:
        data = self.handle.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.handle.seek(offset, whence)

    def tell(self) -> int:
        return self.handle.tell()


def _source(item: Any) -> list[Source]:
    if isinstance(item, pd.DataFrame):
        name = printable(item.attrs.get("name", "DataFrame"))
        return [Source(name=name, stem=name, frame=item)]
    if isinstance(item, (str, Path)):
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().removesuffix(".gz")
                           .endswith(FILE_SUFFIXES))
            if not files:
                raise DataError(f"{printable(path.name or path)}: the folder holds no .csv, .csv.gz, .tsv, .txt, "
                                f".json or .parquet files")
            return [Source(name=printable(p.name), stem=_stem(p.name), path=p) for p in files]
        mode = os.stat(path).st_mode  # the system's own reason when it cannot be read (missing, a link loop, ...)
        if stat.S_ISDIR(mode):  # pragma: no cover - handled above
            raise IsADirectoryError(21, "Is a directory", str(path))
        if not stat.S_ISREG(mode):  # a pipe (process substitution) or a device: read more than once, or endless
            raise DataError(f"{printable(path.name)}: not a regular file (a pipe or a device); save the annotations "
                            f"to a file and give that")
        return [Source(name=printable(path.name), stem=_stem(path.name), path=path)]
    if isinstance(item, tuple):
        if len(item) != 2:
            raise TypeError("an uploaded file must be given as (name, bytes)")
        name, content = item
        if isinstance(content, (str, Path)) and "\n" not in str(content):  # a pair of paths, not (name, text)
            return _source(Path(name)) + _source(Path(content))
        if isinstance(content, pd.DataFrame):
            shown = printable(name)
            return [Source(name=shown, stem=shown, frame=content)]
        if isinstance(content, str):
            content = content.encode("utf-8")
        base = Path(str(name)).name
        return [Source(name=printable(base), stem=_stem(base), data=bytes(content))]
    if hasattr(item, "getvalue") or hasattr(item, "read"):
        base = Path(str(getattr(item, "name", "upload"))).name
        seekable = hasattr(item, "seek") and (not hasattr(item, "seekable") or item.seekable())
        if seekable:
            probe = item.read(0) if hasattr(item, "read") else b""
            if isinstance(probe, bytes):
                return [Source(name=printable(base), stem=_stem(base), handle=item)]
        content = item.getvalue() if hasattr(item, "getvalue") else item.read()
        if isinstance(content, str):
            content = content.encode("utf-8")
        return [Source(name=printable(base), stem=_stem(base), data=bytes(content))]
    raise TypeError(f"cannot read annotations from {type(item).__name__}: give a path, (name, bytes), an uploaded "
                    f"file or a DataFrame")


def sources_of(given: Any) -> list[Source]:
    """Every source in ``given`` (one source or a list of them); DataError when there is none."""
    if isinstance(given, (str, Path, pd.DataFrame, tuple)) or hasattr(given, "getvalue") or (
            hasattr(given, "read") and hasattr(given, "name")):
        given = [given]
    elif not isinstance(given, (list, tuple)) and not hasattr(given, "__iter__"):
        raise TypeError(f"cannot read annotations from {type(given).__name__}: give a path, (name, bytes), an "
                        f"uploaded file or a DataFrame")
    out: list[Source] = []
    for item in given:
        out.extend(_source(item))
    if not out:
        raise DataError("no annotation files were given")
    return out


class Stream(io.RawIOBase):
    """Decompressed bytes of one source, counted against a budget (or cut short at ``stop_after``)."""

    def __init__(self, source: Source, budget: Budget | None = None, stop_after: int | None = None):
        self.source = source
        self.name = source.name
        self.budget = budget
        self.stop_after = stop_after
        self.read_bytes = 0
        self.cut = False  # stop_after was reached: the stream ends early on purpose
        self._raw = source.raw()
        magic = self._raw.read(2)
        self._raw.seek(0)
        self.compressed = magic == b"\x1f\x8b"
        self._inner = gzip.GzipFile(fileobj=self._raw, mode="rb") if self.compressed else self._raw

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = _BLOCK
        if self.stop_after is not None:
            left = self.stop_after - self.read_bytes
            if left <= 0:
                self.cut = bool(self._inner.read(1))
                return b""
            size = min(size, left)
        try:
            data = self._inner.read(size)
        except (OSError, EOFError, zlib.error) as exc:
            if self.compressed:
                raise DataError(f"{self.name}: looks like a gzip file but cannot be decompressed ({exc})") from None
            raise
        self.read_bytes += len(data)
        if self.budget is not None and data:
            self.budget.add_bytes(len(data), self.name)
        if not data and size and self.stop_after is None:  # its end: the text's size is known
            self.source.text_bytes = self.read_bytes
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            if self._inner is not self._raw:
                self._inner.close()
            self._raw.close()
        finally:
            super().close()


def open_stream(source: Source, budget: Budget | None = None, stop_after: int | None = None) -> Stream:
    return Stream(source, budget, stop_after)


def read_head(source: Source, size: int = 1 << 16) -> bytes:
    """The first ``size`` decompressed bytes (a sniff: not counted against any budget)."""
    with open_stream(source, stop_after=size) as stream:
        chunks, got = [], 0
        while got < size:
            data = stream.read(size - got)
            if not data:
                break
            chunks.append(data)
            got += len(data)
    return b"".join(chunks)
