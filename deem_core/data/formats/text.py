"""Bytes to text, block by block, with bounded memory and per-line decoding.

* A UTF-8 byte-order mark is dropped; UTF-16 with a byte-order mark (Excel's "Unicode text") is decoded.
* Everything else is decoded as UTF-8, strictly, one block of whole lines at a time. A block that is not
  valid UTF-8 is decoded line by line: the lines that are valid UTF-8 stay so, and only the others are
  read as Windows-1252 (Latin-1 where Windows-1252 has no character). The warning names those lines.
  (A file of 150 UTF-8 lines and one Windows-1252 line keeps its 150 lines intact.)
* No physical line may be longer than ``max_record_bytes`` and no quoted CSV field may run on longer than
  that (a quote that is never closed would make the parser buffer the rest of the file).
"""

from __future__ import annotations

import codecs
import io
import re
from typing import Iterator

from deem_core.data.annotations import DataError
from deem_core.data.formats.limits import Limits, describe_bytes
from deem_core.data.formats.sources import Budget, Source, open_stream

__all__ = ["TextStream", "check_text_sample"]

_BLOCK = 1 << 20
_SNIFF = 1 << 16
_BLANK_HEAD = re.compile(r"(?:[ \t]*(?:\r\n|\n|\r))*")


def check_text_sample(name: str, sample: str) -> None:
    """Refuse text that is mostly control characters (binary content that happened to decode)."""
    sample = sample[:_SNIFF]
    control = sum(1 for ch in sample if (ord(ch) < 32 and ch not in "\t\r\n") or 0x7f <= ord(ch) < 0xa0)
    if control > max(8, len(sample) // 100):
        raise DataError(f"{name}: does not look like CSV text ({control} control characters in the first "
                        f"{len(sample)} characters); save the annotations as CSV (.csv or .csv.gz)")


def _char_boundary(data: bytes) -> int:
    """An offset near the end of ``data`` that does not split a UTF-8 character."""
    cut = len(data)
    for _ in range(4):
        if cut and (data[cut - 1] & 0xC0) == 0x80:  # a continuation byte: step back
            cut -= 1
        else:
            break
    if cut and data[cut - 1] >= 0xC0:  # the lead byte of a split character
        cut -= 1
    return cut


class TextStream(io.TextIOBase):
    """The decoded text of one source. ``read(size)`` for parsers, iteration for lines, ``blocks()`` for
    whole-line blocks. ``quotes=True`` tracks CSV quoting to bound a quoted field's length.
    ``skip_blank_head`` drops the blank lines before the first line with content (``head_line`` is then
    the 1-based line number of that line). ``stop_after`` cuts the stream (a preview) at a line end.
    ``line_limit=False`` (JSON, often one long line) lets a line exceed ``max_record_bytes``."""

    def __init__(self, source: Source, limits: Limits, budget: Budget | None = None, quotes: bool = False,
                 skip_blank_head: bool = False, stop_after: int | None = None, line_limit: bool = True):
        super().__init__()
        self.line_limit = line_limit
        self.source = source
        self.name = source.name
        self.limits = limits
        self.quotes = quotes
        self._stream = open_stream(source, budget, stop_after=stop_after)
        self.stop_after = stop_after
        self.encoding_name = "utf-8"
        self.bad_lines: list[int] = []
        self.n_bad_lines = 0
        self.lines_done = 0  # newlines decoded so far
        self.head_line = 1
        self._skip_head = skip_blank_head
        self._in_quote = False
        self.saw_quote = False
        self._quote_span = 0
        self._quote_line = 0
        self._buffer = ""
        self._eof = False
        self._generator = self._decoded_blocks()
        self.truncated = False

    # ------------------------------------------------------------------ properties
    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.encoding_name

    def readable(self) -> bool:
        return True

    def notes(self) -> list[str]:
        """Warnings about decoding (the lines that were not UTF-8)."""
        if not self.n_bad_lines:
            return []
        shown = ", ".join(str(n) for n in self.bad_lines[:5]) + (", ..." if self.n_bad_lines > 5 else "")
        plural = "line is" if self.n_bad_lines == 1 else "lines are"
        word = "line" if self.n_bad_lines == 1 else "lines"
        return [f"{self.name}: {self.n_bad_lines} {plural} not valid UTF-8 ({word} {shown}); read as Windows-1252 "
                f"(Latin-1): check accented names on those lines"]

    # ------------------------------------------------------------------ decoding
    def _decoded_blocks(self) -> Iterator[str]:
        first = self._stream.read(_BLOCK)
        if first.startswith((b"\xff\xfe", b"\xfe\xff")):
            self.encoding_name = "utf-16"
            yield from self._utf16(first)
            return
        if first.startswith(b"\xef\xbb\xbf"):
            first = first[3:]
            self.encoding_name = "utf-8-sig"
        carry = first
        eof = not first
        while True:
            if not eof:
                chunk = self._stream.read(_BLOCK)
                eof = not chunk
                data = carry + chunk if carry else chunk
            else:
                data = carry
            if eof:
                if self._stream.cut:  # a preview cut short: keep whole lines only
                    self.truncated = True
                    data = data[: data.rfind(b"\n") + 1]
                if data:
                    yield self._decode(data)
                return
            cut = data.rfind(b"\n") + 1
            if cut == 0 and not self.line_limit and len(data) >= _BLOCK:
                cut = _char_boundary(data)  # JSON may be one long line: cut between two characters
            if cut == 0:
                carry = data
                if len(carry) > self.limits.max_record_bytes:
                    raise DataError(f"{self.name}: line {self.lines_done + 1} is longer than "
                                    f"{describe_bytes(self.limits.max_record_bytes)}; is this a text file of "
                                    f"annotations?")
                continue
            carry = data[cut:]
            yield self._decode(data[:cut])

    def _decode(self, block: bytes) -> str:
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            lines = block.split(b"\n")
            decoded = []
            for offset, line in enumerate(lines):
                try:
                    decoded.append(line.decode("utf-8"))
                except UnicodeDecodeError:
                    self.n_bad_lines += 1
                    if len(self.bad_lines) < 5:
                        self.bad_lines.append(self.lines_done + offset + 1)
                    try:
                        decoded.append(line.decode("cp1252"))
                    except UnicodeDecodeError:
                        decoded.append(line.decode("latin-1"))
            text = "\n".join(decoded)
        self._track(text)
        self.lines_done += text.count("\n")
        return text

    def _utf16(self, first: bytes) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-16")()
        data = first
        while True:
            final = not data
            try:
                text = decoder.decode(data, final=final)
            except UnicodeDecodeError:
                raise DataError(f"{self.name}: starts with a UTF-16 byte-order mark but is not valid UTF-16") from None
            if text:
                self._track(text)
                self.lines_done += text.count("\n")
                yield text
            if final:
                return
            data = self._stream.read(_BLOCK)

    def _track(self, text: str) -> None:
        """Bound the length of a quoted field: the parity of the quotes at a block's end says whether a
        field is still open (a doubled quote inside a field counts twice)."""
        if not self.quotes:
            return
        count = text.count('"')
        if count:
            self.saw_quote = True
        if count % 2:
            inside = self._in_quote
            self._in_quote = not self._in_quote
            if self._in_quote:
                opened = 0  # the quote that leaves the block inside a field: the last one that opens a field
                for match in re.finditer('"', text):
                    inside = not inside
                    if inside:
                        opened = match.start()
                self._quote_span = len(text) - opened
                self._quote_line = self.lines_done + 1 + text.count("\n", 0, opened)
            return
        if self._in_quote:
            self._quote_span += len(text)
            if self._quote_span > self.limits.max_record_bytes:
                raise DataError(f"{self.name}: a quoted field that starts on line {self._quote_line} runs on for "
                                f"more than {describe_bytes(self.limits.max_record_bytes)}; is a '\"' missing its "
                                f"closing quote?")

    # ------------------------------------------------------------------ reading
    def _pull(self) -> bool:
        try:
            block = next(self._generator)
        except StopIteration:
            self._eof = True
            return False
        if self._skip_head:
            skipped = _BLANK_HEAD.match(block).group(0)
            if skipped:
                self.head_line += skipped.count("\n") + skipped.count("\r") - skipped.count("\r\n")
                block = block[len(skipped):]
            if block:
                self._skip_head = False
        self._buffer = self._buffer + block if self._buffer else block
        return True

    def read(self, size: int | None = -1) -> str:
        if size is None or size < 0:
            while self._pull():
                pass
            out, self._buffer = self._buffer, ""
            return out
        while len(self._buffer) < size and not self._eof:
            self._pull()
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def blocks(self) -> Iterator[str]:
        """Whole-line blocks of text (what is left of the stream)."""
        if self._buffer:
            out, self._buffer = self._buffer, ""
            yield out
        while self._pull():
            out, self._buffer = self._buffer, ""
            if out:
                yield out

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]
        """Physical lines, each with its ``\\n`` (split on ``\\n`` only, as the CSV parser does)."""
        carry = ""
        for block in self.blocks():
            lines = (carry + block).split("\n") if carry else block.split("\n")
            for line in lines[:-1]:
                yield line + "\n"
            carry = lines[-1]  # UTF-16 blocks need not end at a line end
        if carry:
            yield carry

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            super().close()
