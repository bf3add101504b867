"""JSON inputs: Label Studio's JSON export (a list of tasks), its JSON-MIN export and plain JSON records.

The JSON is parsed as a stream, one element of the top-level list at a time (also JSON Lines: objects one
after the other), so a large export never becomes one big Python structure; an element may not exceed
the record limit.

Label Studio JSON export (the list of tasks): each ``annotations[]`` entry is one answer by its
``completed_by``; a classification result (``type`` ``choices``, ``labels``, ``rating`` or ``taxonomy`` whose
value gives one class) of the chosen control (``from_name``; by default the first one in the export;
``columns={"label": name}`` chooses) is the label. ``was_cancelled`` annotations are skipped; annotations
marked ``ground_truth`` become gold labels (not answers); ``predictions[]`` become extra workers named by
their ``model_version`` (``predictions=False`` leaves them out). An annotation with several results for the
control (several regions) is skipped, as is one without a result for it; every skip is counted. The task is
the task ``id`` (``columns={"task": "data.<field>"}`` keys it by a data field instead).

JSON-MIN (one flat record per annotation: ``id``, the data fields, one field per control, ``annotator``,
``annotation_id``, ...) and other lists of flat records become tables read like CSV files.
"""

from __future__ import annotations

import decimal
import json
import math
import re
from array import array
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

import numpy as np
import pandas as pd

from deem_core.data.annotations import KEPT_APART, DataError
from deem_core.data.formats.dialects import SKIP_PLACES, Collector, Plan, json_values, ls_value
from deem_core.data.formats.limits import Limits, describe_bytes
from deem_core.data.text import counted, is_are, quoted_list
from deem_core.data.formats.sources import Budget, Source, printable
from deem_core.data.formats.tables import CELL_SPACES, FrameTable, Table, check_columns
from deem_core.data.formats.text import TextStream
from deem_core.data.text import shortened

__all__ = ["LabelStudioContext", "context_settings", "context_with", "iter_json", "iter_tasks", "json_kind",
           "preview_value", "read_json_records", "read_label_studio", "task_key_of", "worker_of", "write_tasks"]

_WS = re.compile(r"\s*")
CLASSIFICATION_TYPES = ("choices", "labels", "rating", "taxonomy")


@dataclass
class LabelStudioContext:
    """What a Label Studio predictions file needs to go back to the project it came from: the control the
    labels belong to, the original values of the classes (a taxonomy path, a rating number), and the export
    itself (``source``), streamed again when the predictions are written so that each task keeps its ``id``
    and ``data`` without holding every task in memory meanwhile."""

    from_name: str = "label"
    to_name: str = "task"
    type: str = "choices"
    task_key: str = "id"  # "id" or "data.<field>"
    values: dict[str, Any] = field(default_factory=dict)  # class as text -> the control's original value
    source: Source | None = None
    limits: Limits | None = None


# ---------------------------------------------------------------------------------------------- streaming JSON
class _Cut(Exception):
    """The text ended inside an element of a stream cut short (``iter_json(cut=True)``)."""


def iter_json(text: TextStream, name: str, limits: Limits, max_items: int | None = None, cut: bool = False
              ) -> Iterator[tuple[int, Any]]:
    """(line, element) for each element of a top-level JSON list, or each object of JSON Lines / a single
    top-level object. Raises DataError naming the line where the JSON is broken. ``cut``: the text may stop
    early (a preview's first bytes): the elements end where it ends, without an error (an export whose first tasks
    were large was refused by the preview as broken JSON; attack round 24)."""
    try:
        yield from _iter_json(text, name, limits, max_items, cut)
    except _Cut:
        return


class ExactNumber(str):
    """A JSON number a double cannot hold (``9007199254740993.0``, ``1e400``), kept as its exact decimal text: read as
    the double, two such ids became one task without a word (attack round 42). Integral values are written as
    integers (``9007199254740993``, as that integer's own literal reads)."""


#: digits an integral number beyond a double's precision is written out with at most (more: its decimal form)
EXACT_INTEGER_DIGITS = 40
#: Python's refusal of an integer of too many digits, and how many it had
_INT_LIMIT = re.compile(r"integer string conversion.*?value has (\d+) digits")
#: characters of a JSON number with a fraction or exponent read at most (Python's own limit for integers' digits)
MAX_NUMBER_CHARS = 4300
#: whole doubles from here on are written as the number written, not as the double's digits ("1e23" read as
#: 99999999999999991611392)
EXACT_WHOLE_FROM = 2.0 ** 53


def json_float(text: str) -> float | ExactNumber:
    """A JSON number with a fraction or an exponent: the double when it holds the number as written (``0.1``, ``1.0``,
    ``2.5e-3``: its shortest form reads back as the same decimal) and is no whole number of 2**53 or more, else
    :class:`ExactNumber` with the number's exact decimal text (every digit kept; a whole number as an integer up to
    :data:`EXACT_INTEGER_DIGITS` digits). ValueError (the read's one error naming the element) for a literal longer
    than :data:`MAX_NUMBER_CHARS` or an exponent past what a decimal holds."""
    if len(text) > MAX_NUMBER_CHARS:  # (one 60-million-digit number took the server up by 5 GB; attack round 44)
        raise ValueError(f"a number {len(text):,} characters long, where at most {MAX_NUMBER_CHARS:,} are read")
    try:
        return _float_or_exact(text)
    except decimal.DecimalException:  # (1e9999999999999999999: "unexpected InvalidOperation"; attack round 44)
        raise ValueError(f"the number {text[:20]}... is out of the range a decimal holds") from None


def _float_or_exact(text: str) -> float | ExactNumber:
    value = float(text)
    if repr(value) == text:  # (the common case, without a Decimal: 1 million floats 0.4 s as before)
        return value if abs(value) < EXACT_WHOLE_FROM or not value.is_integer() else _exact(text)
    try:
        if math.isfinite(value) and (abs(value) < EXACT_WHOLE_FROM or not value.is_integer()) and \
                decimal.Decimal(repr(value)) == decimal.Decimal(text):
            return value
    except (decimal.DecimalException, ValueError):
        pass
    return _exact(text)


def _exact(text: str) -> ExactNumber:
    """The exact decimal text of a JSON number: digits and exponent from the literal itself (no rounding context:
    ``normalize`` rounded to 28 digits and made 1.00000000000000000000000000001 and ...002 one value)."""
    sign, digits, exponent = decimal.Decimal(text).as_tuple()
    digits = "".join(map(str, digits)).lstrip("0") or "0"
    if digits == "0":
        return ExactNumber("0")
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)  # trailing zeros into the exponent: 1.50 is 15e-1
    minus = "-" if sign else ""
    if exponent >= 0 and len(stripped) + exponent <= EXACT_INTEGER_DIGITS:
        return ExactNumber(f"{minus}{stripped}{'0' * exponent}")
    if exponent < 0 and -exponent <= EXACT_INTEGER_DIGITS and len(stripped) + (-exponent) <= 2 * EXACT_INTEGER_DIGITS:
        whole, fraction = stripped[:exponent] or "0", stripped[exponent:].rjust(-exponent, "0")
        return ExactNumber(f"{minus}{whole}.{fraction}")
    return ExactNumber(f"{minus}{stripped[0]}{'.' + stripped[1:] if len(stripped) > 1 else ''}"
                       f"E{exponent + len(stripped) - 1:+d}")


def _iter_json(text: TextStream, name: str, limits: Limits, max_items: int | None, cut: bool
               ) -> Iterator[tuple[int, Any]]:
    decoder = json.JSONDecoder(parse_float=json_float)
    blocks = text.blocks()
    # buf[pos:] is still to parse; "line" is the line number of buf[0]; "mark"/"marked" cache the newlines
    # counted up to an offset so that naming the line of each element stays linear in the file's size
    state = {"buf": "", "pos": 0, "eof": False, "line": 1, "mark": 0, "marked": 0}

    def rebase(offset: int) -> None:
        """Drop buf[:offset], keeping the line count."""
        state["line"] += state["buf"].count("\n", 0, offset)
        state["buf"] = state["buf"][offset:]
        state["pos"] -= offset
        state["mark"], state["marked"] = 0, 0

    def more() -> bool:
        try:
            block = next(blocks)
        except StopIteration:
            state["eof"] = True
            return False
        rebase(state["pos"])
        state["buf"] += block
        return True

    def compact() -> None:
        if state["pos"] > (1 << 20):
            rebase(state["pos"])

    def line_at(offset: int) -> int:
        if offset < state["mark"]:
            return state["line"] + state["buf"].count("\n", 0, offset)
        state["marked"] += state["buf"].count("\n", state["mark"], offset)
        state["mark"] = offset
        return state["line"] + state["marked"]

    def skip_ws() -> bool:
        while True:
            buf, pos = state["buf"], state["pos"]
            end = _WS.match(buf, pos).end()
            state["pos"] = end
            if end < len(buf):
                return True
            if state["eof"] or not more():
                return False

    def parse() -> tuple[int, Any]:
        wanted = 1 << 20
        grown = False
        while True:
            buf, pos = state["buf"], state["pos"]
            # an element read again once more of it came: counted before it is decoded (counted only while it was
            # incomplete, its last half went uncounted: a 33 MiB string ahead of 10 million objects, 63 KB of gzip,
            # took the server +2.1 GB; attack round 65). What follows it in the last block is counted too: at most
            # a block's worth
            if grown and json_values(buf, pos) > limits.max_json_values:
                raise DataError(f"{name}: the JSON element on line {line_at(pos)} holds more than "
                                f"{limits.max_json_values:,} values (not annotations)")
            try:
                value, end = decoder.raw_decode(buf, pos)
                if end < len(buf) or state["eof"] or isinstance(value, (dict, list)):
                    line = line_at(pos)
                    state["pos"] = end
                    return line, value
            except json.JSONDecodeError as exc:
                if state["eof"] and cut:
                    raise _Cut from None
                if state["eof"]:
                    raise DataError(f"{name}: line {line_at(exc.pos)}: not valid JSON ({exc.msg})") from None
            except RecursionError:
                raise DataError(f"{name}: the JSON element on line {line_at(pos)} is nested deeper than Python's "
                                f"parser allows") from None
            except ValueError as exc:  # an integer of more digits than Python converts (4,300 by default)
                said = str(exc).split(';')[0]
                digits = _INT_LIMIT.search(str(exc))
                if digits:  # (Python's own words, "Exceeds the limit (4300 digits) for integer string conversion";
                    # walkthrough 85)
                    said = (f"a number of {int(digits.group(1)):,} digits, where at most {MAX_NUMBER_CHARS:,} are "
                            f"read")
                raise DataError(f"{name}: the JSON element on line {line_at(pos)} cannot be read ({said})") from None
            # buf[pos:] is the start of one element that is not complete yet: what it holds so far bounds its cost
            if json_values(buf, pos) > limits.max_json_values:
                raise DataError(f"{name}: the JSON element on line {line_at(pos)} holds more than "
                                f"{limits.max_json_values:,} values (not annotations)")
            target = len(buf) - pos + wanted
            wanted *= 2  # doubling keeps re-parsing a long element linear
            grown = True
            while len(state["buf"]) - state["pos"] < target and more():
                if len(state["buf"]) - state["pos"] > limits.max_record_bytes:
                    raise DataError(f"{name}: the JSON element on line {line_at(state['pos'])} is larger than "
                                    f"{describe_bytes(limits.max_record_bytes)} or not valid JSON")

    if not skip_ws():
        raise DataError(f"{name}: the file is empty")
    first = state["buf"][state["pos"]]
    count = 0
    if first == "[":
        state["pos"] += 1
        while True:
            if not skip_ws():
                if cut:
                    return
                raise DataError(f"{name}: the JSON list is never closed (the file ends inside it)")
            char = state["buf"][state["pos"]]
            if char == "]":
                return
            if count:
                if char != ",":
                    raise DataError(f"{name}: line {line_at(state['pos'])}: not valid JSON (expected ',' or ']' "
                                    f"between the list's elements)")
                state["pos"] += 1
                if not skip_ws():
                    if cut:
                        return
                    raise DataError(f"{name}: the JSON list is never closed (the file ends inside it)")
            yield parse()
            count += 1
            compact()
            if max_items is not None and count >= max_items:
                return
    elif first == "{":
        while True:
            yield parse()
            count += 1
            compact()
            if max_items is not None and count >= max_items:
                return
            if not skip_ws():
                return
            if state["buf"][state["pos"]] != "{":
                raise DataError(f"{name}: line {line_at(state['pos'])}: not valid JSON (expected another object)")
    else:
        raise DataError(f"{name}: does not look like JSON (starts with {first!r})")


def json_kind(first: Any) -> str:
    """What the first element of a JSON file says it is: ``label_studio`` (tasks), ``label_studio_min``
    (flat records with ``annotator`` and ``annotation_id``) or ``records``."""
    if isinstance(first, dict):
        if any(k in first for k in ("annotations", "predictions", "completions")) or (
                "data" in first and isinstance(first.get("data"), dict)):
            return "label_studio"
        keys = {str(k).lower() for k in first}
        if "annotator" in keys and "annotation_id" in keys:
            return "label_studio_min"
    return "records"


# ---------------------------------------------------------------------------------------------- records
def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


#: a table of flat JSON records holds at most this many times as many cells as values its records give (and at least
#: SPARSE_RECORDS_CELLS): records whose fields differ from one to the next make a table of records x fields,
#: quadratic in a small file (attack round 18: 10,000 records of one field each, 568 KB, took a server to 3.5 GB; at
#: 16 times, a 139 KB gzip of records at exactly 16 times still took it to 2.5 GB: attack round 19)
SPARSE_RECORDS_FACTOR = 4
SPARSE_RECORDS_CELLS = 2_000_000
#: cells of a table of JSON records at most, checked as the records come in (~40 bytes a cell in the table, ~75 a
#: value while read: 20 M cells ~1-2 GB; a CSV or Parquet file streams instead and is bounded by its rows)
JSON_RECORDS_MAX_CELLS = 20_000_000


def _check_records_table(name: str, n_rows: int, n_fields: int, n_values: int) -> None:
    """DataError when the records read so far make a table past :data:`JSON_RECORDS_MAX_CELLS` cells or past
    :data:`SPARSE_RECORDS_FACTOR` times their values (beyond :data:`SPARSE_RECORDS_CELLS`)."""
    table = n_rows * n_fields
    if table > max(SPARSE_RECORDS_CELLS, SPARSE_RECORDS_FACTOR * n_values):
        raise DataError(f"{name}: {n_rows:,} records with {n_fields:,} different fields between them would make a "
                        f"table of {table:,} cells for {n_values:,} values: records whose fields change from one to "
                        f"the next are not a table of annotations (each record should have the same fields, such as "
                        f"task, worker and label)")
    if max(table, n_values) > JSON_RECORDS_MAX_CELLS:
        raise DataError(f"{name}: more than {JSON_RECORDS_MAX_CELLS:,} values in JSON records ({n_rows:,} records of "
                        f"{n_fields:,} fields so far): a JSON file is read whole, so one this large is refused; write "
                        f"it as CSV or Parquet (one row per answer: task, worker, label), which are read in parts")


def read_json_records(source: Source, limits: Limits, budget: Budget | None, kind: str,
                      max_items: int | None = None) -> FrameTable:
    """A list of flat JSON records -> a table of text cells (nested values as JSON text).

    The values are kept as they come (record, field, cell), the table's size checked after each record (at most
    :attr:`Limits.max_columns` fields; :func:`_check_records_table`), and the table made at the end."""
    fields: dict[str, int] = {}
    rows: list[int] = []
    positions: list[int] = []
    cells: list[str] = []
    typed = bytearray()  # per cell: 1 where the JSON value was a number or true/false, not text
    lines: list[int] = []
    unnamed = 0
    exact: dict[str, list[str]] = {}  # per field: the numbers a double cannot hold, as written
    with TextStream(source, limits, budget=budget, line_limit=False) as text:
        for index, (line, record) in enumerate(iter_json(text, source.name, limits, max_items)):
            if not isinstance(record, dict):
                raise DataError(f"{source.name}: line {line}: element {index + 1} is {type(record).__name__}, not "
                                f"an object of fields")
            if budget is not None and max_items is None:
                budget.add_rows(1, source.name)
            for key, value in record.items():
                if not str(key).strip(" "):  # (a field named "" was taken for the label and then not found: a
                    unnamed += 1           # KeyError, "this is a bug"; attack round 18). Ignored, as in a CSV
                    continue
                position = fields.setdefault(str(key), len(fields))
                rows.append(index)
                positions.append(position)
                cells.append(_cell(value))
                typed.append(isinstance(value, (int, float, ExactNumber)))  # (bool is an int)
                if isinstance(value, ExactNumber):
                    exact.setdefault(str(key), []).append(value)
            check_columns(source.name, len(fields), limits)
            lines.append(line)
            _check_records_table(source.name, len(lines), len(fields), len(cells))  # (as they come in: attack 19)
        notes = text.notes()
    if not lines:
        raise DataError(f"{source.name}: the JSON list is empty: no annotations")
    n_rows, n_fields = len(lines), len(fields)
    columns = [[""] * n_rows for _ in range(n_fields)]
    kinds = [bytearray(n_rows) for _ in range(n_fields)]
    for row, position, cell, was_typed in zip(rows, positions, cells, typed):
        columns[position][row] = cell
        kinds[position][row] = was_typed
    del rows, positions, cells, typed
    frame = pd.DataFrame({key: pd.Series(columns[position], dtype=object) for key, position in fields.items()})
    frame = frame.apply(lambda column: column.str.strip(CELL_SPACES))
    table = _JsonTable(source.name, frame, lines, kind)
    table.notes.extend(notes)
    table.notes.extend(_text_and_number_notes(source.name, frame, {key: kinds[p] for key, p in fields.items()}))
    if unnamed:
        table.notes.append(f"{source.name}: ignored {counted(unnamed, 'value')} of a field with no name")
    for key, values in exact.items():  # (read as doubles, two ids became one task; attack round 42)
        distinct = list(dict.fromkeys(values))  # (one number of six records was shown three times; walkthrough 83)
        shown = ", ".join(shortened(v, 30) for v in distinct[:3]) + (f" ({len(distinct):,} different in all)"
                                                                     if len(distinct) > 3 else "")
        table.notes.append(f"{source.name}: field {key!r} has numbers with a decimal point or an exponent that a "
                           f"double cannot hold ({shown}): each is read exactly as written, not rounded")
    return table


def _text_and_number_notes(name: str, frame: pd.DataFrame, kinds: dict[str, bytearray]) -> list[str]:
    """A note per field whose values come both as JSON text and as a number or true/false that read alike ("1" and
    1, "true" and true): each pair is read as one value (a CSV has no such difference to lose), said rather than done
    without a word (attack round 41: 1, "1" and 1.0 were one class, where a CSV's "1" and "1.0" are two, said)."""
    notes = []
    for key, kind in kinds.items():
        was_typed = np.frombuffer(bytes(kind), dtype=np.uint8).astype(bool)
        if not was_typed.any() or was_typed.all():
            continue
        column = frame[key]
        filled = (column != "").to_numpy()
        plain = set(column[~was_typed & filled])
        both = sorted(v for v in set(column[was_typed & filled]) if v in plain)
        if both:
            # (each cut: three 4,000-digit ids made a 24,152-character note stored with the run; the diff's read)
            shown = (", ".join(f'"{shortened(v, 40)}" and {shortened(v, 40)}' for v in both[:3])
                     + (f" ({len(both):,} in all)" if len(both) > 3 else ""))
            notes.append(f"{name}: field {shortened(key, 40)!r} has values written both as JSON text and as a number or true/false "
                         f"({shown}): each such pair is read as one value")
    return notes


class _JsonTable(FrameTable):
    def __init__(self, name: str, frame: pd.DataFrame, lines: list[int], kind: str):
        super().__init__(name, frame, typed=False, kind="json")
        self.lines = lines
        self.json_kind = kind

    def chunks(self, columns=None, nrows=None):
        frame = self.frame if columns is None else self.frame[list(columns)]
        if nrows is not None:
            yield frame.head(nrows)
            return
        yield frame.apply(lambda c: c.astype("category"))

    def line(self, row: int) -> str:
        return f"line {self.lines[row]}" if 0 <= row < len(self.lines) else f"record {row + 1}"


# ---------------------------------------------------------------------------------------------- Label Studio
def _worker(value: Any) -> str:
    if isinstance(value, dict):
        for key in ("email", "username", "id"):
            if value.get(key) not in (None, ""):
                return _cell(value[key])
        return ""
    return _cell(value)


def worker_of(entry: dict, prediction: bool) -> str:
    """The worker of an annotation (its ``completed_by``: a user object's email, username or id), or of a prediction
    (its ``model_version``), as the reader and the preview name it."""
    return (_cell(entry.get("model_version")) or "prediction") if prediction else _worker(entry.get("completed_by"))


def preview_value(value: Any) -> str:
    """A result's value as the export writes it (JSON text)."""
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return "(a value nested too deep to show)"


#: lists and objects a control's value may nest (a taxonomy's is a list of paths: 2); an answer whose value nests
#: deeper is left out, counted: paths nested 900 deep, kept as parsed, held 162.6 MB of a session for a 24 KB upload
#: (attack round 26), and as their text they were classes no control gives (walkthrough 54)
MAX_VALUE_DEPTH = 4
#: lists, objects and values in all a control's value may hold (a taxonomy path holds a few names): a value of
#: 1,951 empty lists two levels deep, one a class, held ~160 KB of a session each: a 144 KB upload 2.1 GB (attack
#: round 27); such an answer is left out like one nested too deep
MAX_VALUE_ITEMS = 100
#: the label :func:`_control_value` gives such an answer
_TOO_DEEP = "\x00deep"
#: the label :func:`_control_value` gives a result whose ``value`` is no object (``"value": "pos"``): left out,
#: counted (it failed the whole export with "not enough values to unpack"; attack round 36)
_NOT_OBJECT = "\x00not object"


def _nests_deeper(value: Any, depth: int, items: int | None = None) -> bool:
    """Whether ``value`` holds lists or objects more than ``depth`` levels deep, or (``items``) more than that many
    lists, objects and values in all (looked at down to that depth, and that many)."""
    level, seen = [value], 0
    for _ in range(depth):
        level = [item for inner in level if isinstance(inner, (list, dict))
                 for item in (inner.values() if isinstance(inner, dict) else inner)]
        seen += len(level)
        if items is not None and seen > items:
            return True
        if not any(isinstance(item, (list, dict)) for item in level):
            return False
    return True


#: what joins a taxonomy path's names in a value's key (:func:`_control_value`): no name a person types holds it
_PATH_KEY_SEPARATOR = "\x1f"


def _control_value(result: Mapping[str, Any]) -> tuple[str, Any, str]:
    """(class as text, the original value, the value's key) of one classification result; (:data:`_TOO_DEEP`, None,
    "") when its value nests deeper than :data:`MAX_VALUE_DEPTH`, (:data:`_NOT_OBJECT`, None, "") when it is no
    object. The key tells apart values the text joins alike: the path ["Animal", "Cat"] and an item named
    "Animal / Cat" (attack round 30)."""
    kind = str(result.get("type", ""))
    value = result.get("value")
    if not isinstance(value, dict):
        return _NOT_OBJECT, None, ""
    original = value.get(kind)
    if _nests_deeper(value, MAX_VALUE_DEPTH + 1, MAX_VALUE_ITEMS):  # (the value's own object is one level)
        return _TOO_DEEP, None, ""
    parsed = {kind: original} if kind in value else value
    return ls_value(parsed), original, ls_value(parsed, _PATH_KEY_SEPARATOR)


class _Classes:
    """One control's class names, each owned by one value's key: a second value whose text reads as a class of
    another value's is kept apart as a class of its own ("Animal / Cat (2)"), and said. (The taxonomy path
    ["Animal", "Cat"] and a top-level item named "Animal / Cat" were one class without a word, and the predictions
    export wrote the path for both; attack round 30.)"""

    def __init__(self) -> None:
        self.owner: dict[str, str] = {}  # class -> the key of the value it stands for
        self.renamed: dict[tuple[str, str], str] = {}  # (text, key) -> the class kept apart
        self.first: dict[str, Any] = {}  # text -> the original value first read as it
        self.apart: list[tuple[str, Any, Any, str]] = []  # (text, first value, other value, its class)

    def of(self, text: str, key: str, original: Any) -> str:
        owner = self.owner.setdefault(text, key)
        self.first.setdefault(text, original)
        if owner == key:
            return text
        kept = self.renamed.get((text, key))
        if kept is None:
            number = 2
            while f"{text} ({number})" in self.owner:
                number += 1
            kept = self.renamed[(text, key)] = f"{text} ({number})"
            self.owner[kept] = key
            self.apart.append((text, self.first[text], original, kept))
        return kept

    def warning(self, name: str, control: str) -> str | None:
        if not self.apart:
            return None
        shown = "; ".join(f"{shortened(repr(text), 60)} from {shortened(_compact(first), 60)} and from "
                          f"{shortened(_compact(other), 60)}, the second kept as the class {shortened(repr(kept), 60)}"
                          for text, first, other, kept in self.apart[:3])
        more = f"; and {len(self.apart) - 3:,} more" if len(self.apart) > 3 else ""
        return (f"{name}: {counted(len(self.apart), 'value')} of the control {control!r} read as the text of another value's "
                f"class (a taxonomy path's names are joined by ' / '), and {is_are(len(self.apart))} {KEPT_APART}: "
                f"{shown}{more}. Rename one of them in the Label Studio project if they are different choices; the "
                f"predictions export writes each class's own value.")


def _compact(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


class _RowsTable(Table):
    kind = "json"

    def __init__(self, name: str, lines: Any):
        super().__init__()
        self.name = name
        self.header = ["task", "worker", "label"]
        self.lines = lines

    def line(self, row: int) -> str:
        return f"line {self.lines[row]}" if 0 <= row < len(self.lines) else f"record {row + 1}"


@dataclass
class LabelStudioRead:
    table: Table
    plan: Plan
    context: LabelStudioContext
    controls: list[str]
    note: str
    n_tasks: int = 0


class _Codes:
    """Distinct texts -> small integer codes (a million answers from ten workers keep ten strings)."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.values: list[str] = []

    def code(self, text: str) -> int:
        found = self.index.get(text)
        if found is None:
            found = self.index[text] = len(self.values)
            self.values.append(text)
        return found


class _Rows:
    """The answers of one control, as arrays of codes (8 bytes per answer and field, no Python objects)."""

    def __init__(self) -> None:
        self.task, self.worker, self.label, self.line = array("q"), array("q"), array("q"), array("q")
        self.flags = bytearray()  # bit 1: ground truth, 2: several results, 4: nested too deep, 8: value no object

    def __len__(self) -> int:
        return len(self.task)


def task_key_of(task: Mapping[str, Any], task_key: str) -> Any:
    """The value a task is keyed by: its ``id`` or ``data.<field>`` (None when it has none)."""
    if task_key == "id":
        return task.get("id")
    data = task.get("data") if isinstance(task.get("data"), dict) else {}
    return data.get(task_key[5:])


#: the longest control name (``from_name``, ``to_name``) an export may give: every prediction written back repeats
#: them, and a 100,000-character ``to_name`` on one answer of a 966 KB export made a 200 MB predictions file (attack
#: round 47); a project's form names its controls in a few characters
MAX_CONTROL_NAME_CHARS = 1_000


def _long_control_name(name: str, line: int, key: str, value: str) -> str:
    return (f"{name}: line {line}: a control name ({key}) of {len(value):,} characters, more than the "
            f"{MAX_CONTROL_NAME_CHARS:,} a Label Studio form's control is named in")


#: distinct labelling controls (``from_name``) a Label Studio export may hold: a project's form has a few; one task of
#: 80,000 made-up controls took 70 s past a 10 s read limit, 100,000 a preview 200 s (attack round 9)
MAX_CONTROLS = 1_000


def _where(task: Any, line: int) -> str:
    """Where a skipped answer is: its task id first (an export is often one line: "first on line 1" did not help
    find it; walkthrough 55) and its line."""
    return f"task {shortened(printable(task), 40)!r}, line {line}"


def read_label_studio(source: Source, limits: Limits, budget: Budget | None, collector: Collector | None,
                      columns: Mapping[str, Any] | None = None, predictions: bool = True,
                      max_items: int | None = None) -> LabelStudioRead:
    """Read a Label Studio JSON export into ``collector`` (None: only look, for a preview)."""
    columns = dict(columns or {})
    wanted = str(columns["label"]) if "label" in columns else None
    task_key = str(columns.get("task") or "id")
    if task_key != "id" and not task_key.startswith("data."):
        task_key = "data." + task_key
    name = source.name
    tasks, workers, labels = _Codes(), _Codes(), _Codes()
    rows: dict[str, _Rows] = {}
    seen_controls: dict[str, None] = {}  # in the order first seen (a list's `in` made many controls quadratic)
    counts = {"cancelled": 0, "no_result": 0, "several": 0, "gold": 0, "predictions": 0, "left_out": 0,
              "bad_result": 0}
    first_where: dict[str, str] = {}
    bad_places: list[str] = []  # the first annotations or predictions whose "result" is no list
    context = LabelStudioContext(task_key=task_key, source=source, limits=limits)
    originals: dict[str, dict[int, Any]] = {}  # control -> label code -> the control's original value
    classes: dict[str, _Classes] = {}  # control -> its class names and the values they stand for
    control_meta: dict[str, tuple[str, str]] = {}
    with_control: dict[str, int] = {}  # control -> answers that have a result for it
    n_entries = 0
    n_tasks = 0
    data_keys: list[str] = []
    repeated, first_repeat = 0, None  # tasks whose key an earlier task has (attack round 24)

    with TextStream(source, limits, budget=budget, line_limit=False) as text:
        for index, (line, task) in enumerate(iter_json(text, name, limits, max_items)):
            if not isinstance(task, dict):
                raise DataError(f"{name}: line {line}: element {index + 1} is {type(task).__name__}, not a Label "
                                f"Studio task object")
            n_tasks += 1
            if not data_keys and isinstance(task.get("data"), dict):
                data_keys = [str(k) for k, v in task["data"].items() if isinstance(v, (str, int, float))][:20]
            key = task_key_of(task, task_key)
            if key is None:
                what = "'id'" if task_key == "id" else f"the data field {task_key[5:]!r}"
                raise DataError(f"{name}: line {line}: task {index + 1} has no {what}; key the tasks by a data field "
                                f"(columns={{'task': 'data.<field>'}}, CLI --task-column data.<field>)")
            known = len(tasks.values)
            task_code = tasks.code(_cell(key))
            if task_code < known:  # (two projects' exports joined number their tasks alike: merged without a word)
                repeated += 1
                first_repeat = first_repeat or (_cell(key), line, index + 1)
            answers = task.get("annotations") or task.get("completions") or []
            predicted = task.get("predictions") or []
            if not isinstance(answers, list) or not isinstance(predicted, list):
                raise DataError(f"{name}: line {line}: the annotations or predictions of task {_cell(key)!r} are not "
                                f"a list")
            entries_here: list[tuple[str, Any]] = [("annotation", a) for a in answers]
            for prediction in predicted:
                if predictions:
                    entries_here.append(("prediction", prediction))
                else:
                    counts["left_out"] += 1
            if budget is not None and max_items is None:
                budget.add_rows(max(1, len(entries_here)), name)
            for kind, entry in entries_here:
                if not isinstance(entry, dict):
                    raise DataError(f"{name}: line {line}: an {kind} of task {_cell(key)!r} is not an object")
                if kind == "annotation" and entry.get("was_cancelled"):
                    counts["cancelled"] += 1
                    first_where.setdefault("cancelled", _where(_cell(key), line))
                    continue
                worker = worker_of(entry, kind == "prediction")
                if kind == "prediction":
                    counts["predictions"] += 1
                    gold = False
                else:
                    gold = bool(entry.get("ground_truth"))
                results = entry.get("result")
                if results is not None and not isinstance(results, list):
                    # ("result": 1 raised TypeError, "result": "x" was read a letter at a time; attack round 36)
                    counts["bad_result"] += 1
                    if len(bad_places) < SKIP_PLACES:
                        bad_places.append(_where(_cell(key), line))
                    continue
                by_control: dict[str, list[dict[str, Any]]] = {}
                for result in results or []:
                    if not isinstance(result, dict) or str(result.get("type", "")) not in CLASSIFICATION_TYPES:
                        continue
                    control = str(result.get("from_name", ""))
                    if len(control) > MAX_CONTROL_NAME_CHARS:
                        raise DataError(_long_control_name(name, line, "from_name", control))
                    to_name = result.get("to_name", "")  # (every result's: refused whichever answer holds it; walk 88)
                    if isinstance(to_name, str) and len(to_name) > MAX_CONTROL_NAME_CHARS:
                        raise DataError(_long_control_name(name, line, "to_name", to_name))
                    if control not in seen_controls:
                        if len(seen_controls) >= MAX_CONTROLS:
                            raise DataError(f"{name}: line {line}: more than {MAX_CONTROLS:,} labelling controls "
                                            f"(from_name); a Label Studio project has a few")
                        seen_controls[control] = None
                    if wanted is not None and control != wanted:
                        continue
                    by_control.setdefault(control, []).append(result)
                n_entries += 1
                worker_code = workers.code(worker)
                for control, found in by_control.items():
                    with_control[control] = with_control.get(control, 0) + 1
                    if control not in control_meta:
                        to_name = str(found[0].get("to_name", ""))  # (a text one was checked above)
                        if len(to_name) > MAX_CONTROL_NAME_CHARS:  # (written into every prediction made from it)
                            raise DataError(_long_control_name(name, line, "to_name", to_name))
                        control_meta[control] = (to_name, str(found[0].get("type", "choices")))
                    store = rows.get(control)
                    if store is None:
                        store = rows[control] = _Rows()
                    # (not `key`: that named the task, and a later skipped annotation was placed on a class's
                    # value; attack round 36)
                    label, original, value_key = ("", None, "") if len(found) > 1 else _control_value(found[0])
                    several = len(found) > 1 or label == "\x00several"
                    deep = label == _TOO_DEEP
                    broken = label == _NOT_OBJECT
                    if label and not several and not deep and not broken:
                        label = classes.setdefault(control, _Classes()).of(label, value_key, original)
                    label_code = labels.code("" if several or deep or broken else label)
                    if original is not None and not several:
                        originals.setdefault(control, {}).setdefault(label_code, original)
                    store.task.append(task_code)
                    store.worker.append(worker_code)
                    store.label.append(label_code)
                    store.line.append(line)
                    store.flags.append((1 if gold else 0) | (2 if several else 0) | (4 if deep else 0)
                                       | (8 if broken else 0))
        notes = text.notes()
    if not n_tasks:
        raise DataError(f"{name}: the JSON list is empty: no tasks")
    if wanted is not None and wanted not in rows:
        found_names = quoted_list(seen_controls) or "none"
        raise DataError(f"{name}: no classification results from the control {wanted!r}; controls found: "
                        f"{found_names}")
    if not rows:
        raise DataError(f"{name}: no classification results (choices, labels, rating or taxonomy) in any annotation "
                        f"or prediction: nothing to aggregate")
    control = wanted if wanted is not None else next(c for c in seen_controls if c in rows)
    store = rows[control]
    context.from_name = control
    context.to_name, context.type = control_meta.get(control, ("task", "choices"))
    context.values = {labels.values[code]: value for code, value in originals.get(control, {}).items()}
    counts["no_result"] = n_entries - with_control.get(control, 0)
    table = _RowsTable(name, np.frombuffer(store.line, dtype=np.int64) if len(store) else np.zeros(0, np.int64))
    table.notes.extend(notes)
    plan = Plan("label_studio", task="task", worker="worker", label="label",
                choices={"label": list(seen_controls), "task": ["id"] + [f"data.{k}" for k in data_keys],
                         "worker": ["completed_by"]})
    note = (f"tasks from {task_key!r}, workers from 'completed_by'"
            # (said only where predictions were read: an export with "predictions": [] named them; walkthrough 22)
            + (" (and each prediction's 'model_version')" if predictions and counts["predictions"] else "")
            + f", labels from the control {control!r} ({context.type})")
    others = [c for c in seen_controls if c != control]
    if others:
        note += f"; other controls: {', '.join(others[:6])}"
    if collector is not None:
        flags = np.frombuffer(bytes(store.flags), dtype=np.uint8)
        several, gold, deep, broken = (flags & 2) > 0, (flags & 1) > 0, (flags & 4) > 0, (flags & 8) > 0
        frame = pd.DataFrame({
            "task": pd.Categorical.from_codes(np.frombuffer(store.task, dtype=np.int64), tasks.values),
            "worker": pd.Categorical.from_codes(np.frombuffer(store.worker, dtype=np.int64), workers.values),
            "label": pd.Categorical.from_codes(np.frombuffer(store.label, dtype=np.int64), labels.values)})
        def first_of(skipped: np.ndarray) -> list[str]:  # (the first ones: walkthrough 57 found one of two)
            return [_where(tasks.values[store.task[i]], store.line[i]) for i in skipped.nonzero()[0][:SKIP_PLACES]]

        if several.any():
            collector.skip(name, f"annotation(s) with several results for {control!r}", int(several.sum()),
                           first_of(several))
        if deep.any():
            collector.skip(name, f"answer(s) whose {control!r} value nests more than {MAX_VALUE_DEPTH} levels deep "
                           f"or holds more than {MAX_VALUE_ITEMS} items (no value a control gives)", int(deep.sum()),
                           first_of(deep))
        if broken.any():
            collector.skip(name, f"answer(s) whose {control!r} result has a 'value' that is not an object (no value "
                           f"a control gives)", int(broken.sum()), first_of(broken))
        several = several | deep | broken
        counts["gold"] = int((gold & ~several).sum())
        if counts["gold"]:
            gold_rows = frame.loc[gold & ~several, ["task", "label"]].astype(object)
            collector.add_gold(table, gold_rows.rename(columns={"label": "gold"}))
        part = frame.loc[~several & ~gold]
        if not len(part):
            raise DataError(f"{name}: no answers left for the control {control!r} once cancelled, ground-truth and "
                            f"ambiguous annotations are set aside")
        collector.add(table, part, plan)
        apart = classes[control].warning(name, control) if control in classes else None
        if apart:
            collector.notes.append(apart)
        collector.skip(name, "cancelled annotation(s)", counts["cancelled"], first_where.get("cancelled"))
        collector.skip(name, "annotation(s) or prediction(s) whose 'result' is not a list", counts["bad_result"],
                       bad_places)
        collector.skip(name, f"annotation(s) or prediction(s) without a {control!r} result", counts["no_result"])
        if counts["gold"]:
            collector.notes.append(f"{name}: {counted(counts['gold'], 'ground-truth annotation')} read as "
                                   f"{'a gold label' if counts['gold'] == 1 else 'gold labels'}, not as answers")
        if counts["left_out"]:
            collector.notes.append(f"{name}: left out {counted(counts['left_out'], 'model prediction')} (predictions=False)")
        if repeated:
            what = "id" if task_key == "id" else f"data field {task_key[5:]!r}"
            first = printable(first_repeat[0])  # (already escaped: quoted, not repr'd again; cut like a label)
            first = first if len(first) <= 40 else first[:40] + "..."
            collector.notes.append(
                f"{name}: {counted(repeated, 'task')} {'has' if repeated == 1 else 'have'} the {what} of an earlier task (first '{first}', the file's task "
                f"{first_repeat[2]:,} on line {first_repeat[1]:,}): their answers are read as that one task's. An "
                f"export that joins several projects numbers each project's tasks from 1: key the tasks by a data "
                f"field that tells them apart (columns={{'task': 'data.<field>'}}, CLI --task-column data.<field>)")
    return LabelStudioRead(table, plan, context, list(seen_controls), note, n_tasks)


def iter_tasks(context: LabelStudioContext) -> Iterator[tuple[str, dict[str, Any]]]:
    """(task key as text, task) for each task of the export the context came from, streamed again."""
    if context.source is None:
        return
    limits = context.limits or Limits()
    with TextStream(context.source, limits, line_limit=False) as text:
        for _, task in iter_json(text, context.source.name, limits):
            if isinstance(task, dict):
                key = task_key_of(task, context.task_key)
                if key is not None:
                    yield _cell(key), task


def context_settings(context: LabelStudioContext) -> dict[str, Any]:
    """The context's control and task key as plain JSON values (kept beside a run, without the export)."""
    return {"from_name": context.from_name, "to_name": context.to_name, "type": context.type,
            "task_key": context.task_key, "values": dict(context.values)}


def context_with(settings: Any, source: Source | None = None, limits: Limits | None = None) -> LabelStudioContext:
    """The context of :func:`context_settings` read back (a value of the wrong type keeps its default: the file
    may have been edited by hand), streaming its tasks from ``source`` (a file of :func:`write_tasks`)."""
    settings = settings if isinstance(settings, Mapping) else {}
    given = {name: settings[name] for name in ("from_name", "to_name", "type", "task_key")
             if isinstance(settings.get(name), str) and settings[name]}
    values = settings.get("values")
    return LabelStudioContext(**given, values={str(k): v for k, v in values.items()} if isinstance(values, Mapping)
                              else {}, source=source, limits=limits)


#: bytes of a control's settings (its classes' original values) kept beside a run: a taxonomy of paths nested 900
#: deep, written indented, made a 192 KB export a 164 MB file that every view of the run read again (attack round 26)
MAX_SETTINGS_BYTES = 1 << 20


def settings_json(context: LabelStudioContext, max_bytes: int | None = None) -> bytes:
    """:func:`context_settings` as compact JSON (UTF-8), made a piece at a time: DataError once it passes
    ``max_bytes`` (at most :data:`MAX_SETTINGS_BYTES`), or when its values nest too deep to be written."""
    limit = MAX_SETTINGS_BYTES if max_bytes is None else min(int(max_bytes), MAX_SETTINGS_BYTES)
    pieces, size = [], 0
    encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
    try:
        for piece in encoder.iterencode(context_settings(context)):
            encoded = piece.encode("utf-8", "backslashreplace")
            size += len(encoded)
            if size > limit:
                raise DataError(f"the export's control and class values take more than {describe_bytes(limit)} "
                                f"written out")
            pieces.append(encoded)
    except RecursionError:
        raise DataError("the export's class values nest too deep to be kept") from None
    return b"".join(pieces)


def compact_json(value: Any, **options: Any) -> bytes:
    """``value`` as compact JSON in UTF-8 (``options`` go to :func:`json.dumps`), a lone surrogate in it, which
    Python's reader takes, as its JSON escape (it failed whole files with UnicodeEncodeError; attack round 24)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), **options).encode("utf-8", "backslashreplace")


def write_tasks(context: LabelStudioContext, handle: Any, max_bytes: int | None = None) -> int:
    """Each task of the context's export with its ``id`` and ``data`` only (no annotations), as one JSON list
    written to the text ``handle`` (UTF-8) a task at a time; a context read back with it as source gives the same
    tasks and keys. Returns the number of tasks written. ``max_bytes``: DataError once the tasks pass it (numbers
    like ``1E15`` are written out in full, 4x the export; attack round 24). A lone surrogate in a task's data is
    written as its JSON escape (it failed the whole copy: UnicodeEncodeError)."""
    count, written = 0, 1
    handle.write("[")
    for _, task in iter_tasks(context):
        kept = {name: task[name] for name in ("id", "data") if name in task}
        encoded = (b"," if count else b"") + b"\n" + compact_json(kept)
        written += len(encoded)
        if max_bytes is not None and written > max_bytes:
            raise DataError(f"the export's tasks take more than {describe_bytes(max_bytes)} written out")
        handle.write(encoded.decode("utf-8"))
        count += 1
    handle.write("\n]\n")
    return count


def shown_name(value: Any) -> str:
    return printable(value)
