"""Aggregated labels -> bytes, one serialiser per output format (the CLI and the dashboard share them).

The labels table (:func:`deem_core.data.export.label_table`): index ``task``, columns ``label``,
``confidence``, ``p_<class>`` ... Formats:

* ``csv``: spreadsheet-safe CSV (cells that would run as formulas are neutralised), the task first;
* ``parquet``: the table as it is (typed columns);
* ``json``: a list of records ``{"task": ..., "label": ..., "confidence": ..., ...}`` (NaN -> null);
* ``label_studio``: Label Studio tasks with ``predictions[]``, ready to import back as pre-annotations:
  each task keeps its original ``id`` and ``data`` when the annotations came from a Label Studio export
  (else ``data`` is ``{"task": <task>}``); the prediction's result is the label in the export's control
  (``from_name``, ``to_name``, ``type``; by default a ``choices`` control named ``label``), ``score`` is the
  confidence, and ``model_version`` names DEEM and its settings.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import pandas as pd

from deem_core.data.annotations import DataError
from deem_core.data.export import atomic_write_bytes, parquet_bytes, to_safe_csv
from deem_core.data.formats.labelstudio import LabelStudioContext, compact_json, iter_tasks
from deem_core.data.formats.limits import Limits, describe_bytes

__all__ = ["OUTPUT_FORMATS", "expected_sizes", "json_row_chars", "label_studio_tasks", "labeling_config", "model_version",
           "output_format", "placeholder_control_note", "serialise", "write_results"]

#: format -> (file extension, MIME type)
OUTPUT_FORMATS = {
    "csv": (".csv", "text/csv"),
    "parquet": (".parquet", "application/octet-stream"),
    "json": (".json", "application/json"),
    "label_studio": (".json", "application/json"),
}


def output_format(path: str | Path, given: str | None = None) -> str:
    """The format to write ``path`` in: ``given`` (``label-studio`` accepted for ``label_studio``), else the
    extension (.csv, .parquet, .json). ValueError when neither says."""
    if given:
        fmt = given.replace("-", "_").lower()
        if fmt not in OUTPUT_FORMATS:
            known = ", ".join(f.replace("_", "-") for f in OUTPUT_FORMATS)
            raise ValueError(f"unknown output format {given!r}: use {known}")
        return fmt
    suffix = Path(path).suffix.lower()
    for fmt, (extension, _) in OUTPUT_FORMATS.items():
        if suffix == extension:
            return fmt
    raise ValueError(f"cannot tell the output format from {Path(path).name!r}: use .csv, .parquet or .json (or "
                     f"--output-format label-studio)")


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_safe(value: Any) -> Any:
    """An export's own value (a task's ``data``, its ``id``) with NaN and infinities as null: Python's reader takes
    them, strict JSON has none, and the writer refused the whole file (attack round 20)."""
    return json.loads(json.dumps(value, allow_nan=True), parse_constant=lambda _constant: None)


def _records(results: pd.DataFrame) -> list[dict[str, Any]]:
    frame = results.reset_index()
    columns = [str(c) for c in frame.columns]
    return [{c: _plain(v) for c, v in zip(columns, row)} for row in frame.itertuples(index=False, name=None)]


#: rows of the labels table made into Python records at a time by the JSON serialiser (fewer where rows are long)
JSON_CHUNK_ROWS = 5_000
#: characters of JSON made at a time at most (rows of long class names are made a few at a time)
JSON_CHUNK_CHARS = 16_000_000


def _widest_texts(results: pd.DataFrame) -> list[tuple[str, int | None]]:
    """Each written column's name (the index's first) and the length of its longest text, None for no text."""
    columns = [(results.index.name or "index", results.index), *((c, results[c]) for c in results.columns)]
    widths: list[tuple[str, int | None]] = []
    for name, values in columns:
        widest = None
        if len(values) and (values.dtype == object or pd.api.types.is_string_dtype(values.dtype)):
            # (pandas' own text type too: the labels' column was taken for numbers, its texts left uncounted)
            values = pd.Series(values, copy=False)
            lengths = (values.str.len() if pd.api.types.is_string_dtype(values.dtype) and values.dtype != object
                       else values.map(lambda v: len(v) if isinstance(v, str) else 0))
            widest = int(lengths.max()) if lengths.notna().any() else 0
        widths.append((str(name), widest))
    return widths


def json_row_chars(results: pd.DataFrame, widths: list[tuple[str, int | None]] | None = None) -> int:
    """About how many characters one record of :func:`_json_records` takes: every key (a column's name: ``p_<class>``
    holds the class's name) on every record, with its indent and quotes, and the longest text or ~26 for a number
    (``widths``: :func:`_widest_texts`'s, when read already)."""
    widths = _widest_texts(results) if widths is None else widths
    return 4 + sum(len(name) + 8 + max(26, (widest or 0) + 4) for name, widest in widths)


def expected_sizes(results: pd.DataFrame) -> dict[str, int]:
    """About how many bytes the labels take at most in each output format, read before a file is made: a JSON
    record (and a Label Studio prediction, without the export's own task data) :func:`json_row_chars` a row; a CSV
    or Parquet file its header and a row's longest texts, ~20 for a number. At 20 bytes a cell, labels of classes
    named with 10,000 characters were taken for a small file and made in the line of the small ones (attack round
    57). The texts' lengths are read once for all the formats."""
    widths = _widest_texts(results)
    header = sum(len(name) + 3 for name, _ in widths)
    flat = header + len(results) * sum((20 if widest is None else widest + 3) for _, widest in widths)
    records = len(results) * json_row_chars(results, widths)
    return {"csv": flat, "parquet": flat, "json": records, "label_studio": records}


def model_version(name: str, settings: Mapping[str, Any] | None = None, fallback: str | None = None,
                  run: str | None = None) -> str:
    """A Label Studio prediction's ``model_version``, the same from the dashboard and the ``deem`` command (the one
    read "DEEM Studio deem (n_layers 1, ...)", the other "DEEM (layers 1, ...)"; walkthrough 112): "DEEM Studio",
    the method's display name, its settings in the order given, the reference whose labels these are, the run."""
    # (numbers as the pages write them: "lr 3" from the command line read "lr 3.0" from the dashboard; walkthrough 113)
    shown = ", ".join(f"{key} {value:g}" if isinstance(value, float) else f"{key} {value}"
                      for key, value in (settings or {}).items() if value is not None)
    return (f"DEEM Studio {name}" + (f" ({shown})" if shown else "") + (f", labels from {fallback}" if fallback else "")
            + (f", run {run}" if run else ""))


def _json_records(results: pd.DataFrame) -> bytes:
    """``json.dumps(_records(results), indent=1)`` as bytes, the same to the byte, made a chunk of rows at a time:
    every record of a table held as Python objects at once took ~230 bytes of memory a cell (a press of "Labels
    JSON" on 100,000 tasks x 80 classes raised the server from 1.3 to 3.2 GB; attack round 23). Refused before it is
    made when it would pass what the reader takes in (``DEEM_MAX_INPUT_BYTES``): every record repeats every class's
    name, and 4,000 tasks of 40 classes named in 10,000 characters (a 31 KB upload) made a 1.6 GB file and took the
    server to 6.5 GB, from a run link's visitor too (attack round 47)."""
    row = json_row_chars(results)
    most = Limits.from_env().max_bytes
    if most and row * len(results) > most:
        raise DataError(f"the labels as JSON would be about {describe_bytes(row * len(results))} (every record "
                        f"repeats each column's name, and the classes' names are long), past "
                        f"{describe_bytes(most)} (DEEM_MAX_INPUT_BYTES); CSV and Parquet write each name once")
    rows = max(1, min(JSON_CHUNK_ROWS, JSON_CHUNK_CHARS // row))
    out = io.BytesIO()
    out.write(b"[")
    for start in range(0, len(results), rows):
        chunk = json.dumps(_records(results.iloc[start:start + rows]), ensure_ascii=False,
                           allow_nan=False, default=_json_default, indent=1)
        out.write((("," if start else "") + chunk[1:-2]).encode("utf-8"))  # (each chunk's "[" and "\n]" left out)
    out.write(b"\n]" if len(results) else b"]")
    return out.getvalue()


def label_studio_tasks(results: pd.DataFrame, context: LabelStudioContext | None = None,
                       model_version: str = "DEEM") -> list[dict[str, Any]]:
    """The labels as Label Studio tasks with one prediction each (see the module docstring). With a context
    from a Label Studio export, the tasks come in the export's order with their ``id`` and ``data``."""
    return list(_label_studio_items(results, context, model_version))


def _data_field(context: LabelStudioContext) -> str:
    """The task's field in ``data`` a task written without an export's own keeps its id in ("task")."""
    return context.task_key[5:] if context.task_key.startswith("data.") else "task"


def _label_studio_items(results: pd.DataFrame, context: LabelStudioContext | None,
                        model_version: str) -> Iterator[dict[str, Any]]:
    # an export's tasks keyed by their Label Studio ids: a task written without the export's own (a link's visitor
    # gets none) keeps its id, as the Labels CSV does (walkthrough 119: no "id", so nothing to match the owner's)
    export_ids = context is not None and context.task_key == "id"
    context = context or LabelStudioContext()
    field = _data_field(context)
    confidence = results["confidence"] if "confidence" in results else pd.Series(np.nan, index=results.index)
    by_key = {_text(_plain(task)): (_plain(task), _plain(label), _plain(score))
              for task, label, score in zip(results.index, results["label"], confidence)}
    written: set[str] = set()
    if context.source is not None:
        for key, task in iter_tasks(context):
            found = by_key.get(key)  # (tasks of one key, read as one task, each get its label: the others were
            if found is None:        # left out of the file; attack round 24)
                continue
            written.add(key)
            item: dict[str, Any] = {"id": _json_safe(task["id"])} if task.get("id") is not None else {}
            item["data"] = _json_safe(task.get("data")) if isinstance(task.get("data"), dict) else {}
            item["predictions"] = [_prediction(context, found[1], found[2], model_version)]
            yield item
    for key, (task, label, score) in by_key.items():  # tasks the export does not have (or no export at all)
        if key in written:
            continue
        item = {"id": _json_safe(task)} if export_ids and isinstance(task, (int, np.integer)) else {}
        item.update({"data": {field: task}, "predictions": [_prediction(context, label, score, model_version)]})
        yield item


#: classes a labeling config written for predictions not from a Label Studio export lists (past them: none listed, the
#: control's names said)
CONFIG_MAX_CLASSES = 200
#: characters of such a config at most
CONFIG_MAX_CHARS = 20_000


def labeling_config(classes: Any, context: LabelStudioContext | None = None) -> tuple[str | None, str]:
    """A Label Studio labeling config that imports the predictions of :func:`label_studio_tasks` written without an
    export's control (the control ``label`` on the task's ``task`` field: names a project has only if it was made
    with them; a file of the labels of a CSV went into a project whose control is named otherwise and matched
    nothing; walkthrough 116): a text view of the task and a choice per class (each class once). Returns (config,
    "") or (None, why none): past :data:`CONFIG_MAX_CLASSES` classes or :data:`CONFIG_MAX_CHARS` characters, or a
    class holding a character XML cannot hold. Every character that does not print is written as a character
    reference, so that the config reads the same wherever it is shown (a zero-width space printed as its escape on
    the command line matched nothing)."""
    context = context or LabelStudioContext()
    names = list(dict.fromkeys(_text(c) for c in list(classes)[: 4 * CONFIG_MAX_CLASSES]))
    if len(names) > CONFIG_MAX_CLASSES or len(classes) >= 4 * CONFIG_MAX_CLASSES:
        return None, f"{len(classes):,} classes, more than the {CONFIG_MAX_CLASSES} listed here"
    if context.type != "choices":
        return None, f"the control is of type {context.type!r}, not choices"
    if any(_not_in_xml(name) for name in names):
        return None, "a class holds a character XML cannot hold (a control character): name it another way"
    field = _data_field(context)
    lines = ["<View>", f"  <Text name={_xml_attribute(context.to_name)} value={_xml_attribute('$' + field)}/>",
             f"  <Choices name={_xml_attribute(context.from_name)} toName={_xml_attribute(context.to_name)} "
             f"choice=\"single\">"]
    size = sum(map(len, lines))
    for name in names:
        line = f"    <Choice value={_xml_attribute(name)}/>"
        size += len(line)
        if size > CONFIG_MAX_CHARS:
            return None, f"the class names take more than {CONFIG_MAX_CHARS:,} characters written out"
        lines.append(line)
    return "\n".join(lines + ["  </Choices>", "</View>"]), ""


def _not_in_xml(text: str) -> bool:
    """Whether ``text`` holds a character XML 1.0 cannot hold, not even as a reference."""
    return any((ord(ch) < 0x20 and ch not in "\t\n\r") or 0xD800 <= ord(ch) <= 0xDFFF or ord(ch) in (0xFFFE, 0xFFFF)
               for ch in text)


_XML_SPECIAL = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}


def _xml_attribute(text: str) -> str:
    """``text`` as a double-quoted XML attribute, every character that does not print as a reference."""
    return '"' + "".join(_XML_SPECIAL.get(ch) or (ch if ch.isprintable() else f"&#x{ord(ch):X};") for ch in text) + '"'


def placeholder_control_note(context: LabelStudioContext | None = None) -> str:
    """What a Label Studio file of labels with no export's control names, and what a project needs to import it."""
    context = context or LabelStudioContext()
    field = _data_field(context)
    return (f"no Label Studio export's control is kept with these labels, so the file's predictions name the control "
            f"{context.from_name!r} on {context.to_name!r}, the task in data.{field}: a Label Studio project imports "
            f"them if its labeling config has a <Choices name=\"{context.from_name}\" toName=\"{context.to_name}\"> "
            f"with a <Choice> per class and a <Text name=\"{context.to_name}\" value=\"${field}\"/>")


def _label_studio_bytes(results: pd.DataFrame, context: LabelStudioContext | None, model_version: str) -> bytes:
    """The tasks of :func:`label_studio_tasks` as one JSON list, a task a line, each written compactly as it is
    made. Indented, an export's nested ``data`` took a line per value and its depth in spaces on each: a 2 MB
    export of values nested 200 deep made a 206 MB file and a 10 MB one 1 GB with a 2.5 GB peak (attack round
    24); compact, the file is about the size of the export's tasks."""
    out = io.BytesIO()
    out.write(b"[")
    count = 0
    # at most the bytes the reader takes in (a file past them is made by nothing else here; a 1 MB gzip of a 1 GiB
    # export would have made a file of 1 GiB or more in memory; attack round 24)
    most = ((context.limits if context is not None else None) or Limits.from_env()).max_bytes
    for item in _label_studio_items(results, context, model_version):
        out.write((b"," if count else b"") + b"\n" + compact_json(item, allow_nan=False, default=_json_default))
        if most and out.tell() > most:
            raise DataError(f"the Label Studio file would pass {describe_bytes(most)}, the most this reads "
                            f"(DEEM_MAX_INPUT_BYTES); the labels fit CSV, JSON and Parquet")
        count += 1
    out.write(b"\n]" if count else b"]")
    return out.getvalue()


def _prediction(context: LabelStudioContext, label: Any, score: Any, model_version: str) -> dict[str, Any]:
    value = context.values.get(_text(label), label)
    if context.type == "rating":  # (a rating is a number in Label Studio)
        # ... a finite one: an export's "rating": Infinity (or 1e999) went back as a number JSON refuses, and every
        # press of the download failed with two tracebacks logged (attack round 37); written as its text
        finite = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        payload: Any = value if finite or value is None else _as_text(value)
    else:
        # a choice, label or taxonomy item is matched as text (<Choice value="1">): the class 1 went out as
        # "choices": [1] and matched no choice on import (walkthrough 67)
        value = _as_text(value)
        if context.type == "taxonomy":
            payload = value if isinstance(value, list) and value and isinstance(value[0], list) else [
                value if isinstance(value, list) else [value]]
        else:
            payload = value if isinstance(value, list) else [value]
    prediction: dict[str, Any] = {"model_version": model_version,
                                  "result": [{"from_name": context.from_name, "to_name": context.to_name,
                                              "type": context.type, "value": {context.type: payload}}]}
    if score is not None:
        prediction["score"] = float(score)
    return prediction


def _as_text(value: Any) -> Any:
    """``value`` with every item of its lists (a taxonomy path's names too) as the class's text; None stays."""
    if isinstance(value, list):
        return [_as_text(item) for item in value]
    return None if value is None else _text(value)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def serialise(results: pd.DataFrame, fmt: str, context: LabelStudioContext | None = None,
              model_version: str = "DEEM") -> bytes:
    """The labels table as the bytes of one output format."""
    fmt = fmt.replace("-", "_")
    if fmt == "csv":
        return to_safe_csv(results).encode("utf-8")
    if fmt == "parquet":
        try:
            return parquet_bytes(results)
        except Exception as exc:  # noqa: BLE001 - pandas' (TypeError, ValueError) and pyarrow's own (ArrowInvalid, ...)
            raise DataError(f"the labels cannot be written as Parquet ({str(exc).splitlines()[0]}); labels of mixed "
                            f"types fit CSV and JSON") from None
    if fmt == "json":
        return _json_records(results)
    if fmt == "label_studio":
        return _label_studio_bytes(results, context, model_version)
    raise ValueError(f"unknown output format {fmt!r}")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return _plain(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def write_results(results: pd.DataFrame, path: str | Path, fmt: str | None = None,
                  context: LabelStudioContext | None = None, model_version: str = "DEEM") -> Path:
    """Serialise and write atomically (a crash never leaves half a file)."""
    fmt = output_format(path, fmt)
    return atomic_write_bytes(path, serialise(results, fmt, context, model_version))
