"""deem_core.data.export: spreadsheet-safe CSV, labels that keep their values and types in every format, and
atomic writes that never leave a partial file."""

from __future__ import annotations

import csv
import io
import json
import os
import re

import numpy as np
import pandas as pd
import pytest

from deem_core.data import export
from deem_core.data.export import (
    FORMULA_PREFIXES, atomic_write_bytes, neutralise_cell, safe_csv_frame, to_safe_csv, write_csv, write_json,
    write_parquet,
)
from deem_core.data.readers import read_annotations, read_table

PREFIXES = ["=", "+", "-", "@", "\t", "\r", "\n"]


def parse_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


# ------------------------------------------------------------------ neutralisation
def test_the_prefix_list_is_the_owasp_one():
    assert sorted(FORMULA_PREFIXES) == sorted(PREFIXES)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_every_formula_prefix_is_neutralised_in_strings(prefix):
    value = prefix + "SUM(A1:A9)"
    assert neutralise_cell(value) == "'" + value
    assert neutralise_cell(prefix) == "'" + prefix


@pytest.mark.parametrize("value", [-5, -0.5, np.int64(-3), np.float32(-2.5), 0, 7, True, None, float("nan")])
def test_numbers_and_other_non_strings_are_untouched(value):
    out = neutralise_cell(value)
    assert out is value


@pytest.mark.parametrize("value", ["cat", "a=b", "1+1", "x@y", "", "x =", "'already", "é"])  # (" =" is: round 33)
def test_strings_without_a_leading_prefix_are_untouched(value):
    assert neutralise_cell(value) == value


@pytest.mark.parametrize("value, written", [
    (";=1+1;", ";'=1+1;"), ("x;=cmd|' /C calc'!A0;", "x;'=cmd|' /C calc'!A0;"), ("a|-1", "a|'-1"),
    ("a\t@b", "a\t'@b"), ("a;;+1", "a;;'+1"), ("a;'=1", "a;''=1"), ("=x;=y", "'=x;'=y"), ("a;b=c", "a;b=c"),
    ("y\n=1+1;z", "y\n'=1+1;z"), ("y\r\n-1", "y\r\n'-1"), ("\n=x", "'\n'=x"),
    # behind spaces or in full width after a separator, as at a cell's start (written raw; attack round 34)
    ("x; =1+1", "x;' =1+1"), ("x;\uff1d1+1", "x;'\uff1d1+1"), ("t\n =1+1", "t\n' =1+1"),
    ("a|\u00a0@b", "a|'\u00a0@b"), ("x;' =1", "x;'' =1"), ("x;\ufeff\u3000+1", "x;'\ufeff\u3000+1"),
])
def test_a_formula_after_a_list_separator_inside_a_cell_is_neutralised(value, written):
    # Excel splits a CSV line on the system's list separator (';' in most European locales): 'x;=1+1' became the
    # cells 'x' and '=1+1', a formula, and so did '=1+1' after a line end inside a quoted cell (attack rounds,
    # ninth session); the reader takes the added quotes away again
    assert neutralise_cell(value) == written
    frame = pd.DataFrame({"task": [1, 2], "worker": ["w", "w"], "label": [value, "other"]})
    text = to_safe_csv(frame, index=False)
    for line in re.split(r"\r\n|\r|\n", text)[1:]:  # (a line end inside a quoted cell ends a row split on ';')
        for piece in re.split(r"[;\t|,]", line):
            assert not re.match("[ \u00a0\u2003\u3000\ufeff]*[-=+@\uff1d\uff0b\uff0d\uff20]", piece.lstrip('"')), \
                (line, piece)
    data = read_annotations(("out.csv", text.encode()))
    assert sorted(data.classes) == sorted([value, "other"])


def test_safe_csv_neutralises_cells_column_names_and_index_but_not_numbers():
    frame = pd.DataFrame({"label": ["=1+2", "@x", "cat", "-2+3"], "score": [-1, -2, 3, 4], "=col": [1, 2, 3, 4]},
                         index=pd.Index(["+t1", "t2", "\tt3", "t4"], name="task"))
    rows = parse_csv(to_safe_csv(frame))
    assert rows[0] == ["task", "label", "score", "'=col"]
    assert rows[1:] == [["'+t1", "'=1+2", "-1", "1"], ["t2", "'@x", "-2", "2"], ["'\tt3", "cat", "3", "3"],
                        ["t4", "'-2+3", "4", "4"]]


def test_safe_csv_neutralises_text_of_every_dtype():
    # an Arrow dictionary of strings is not a "string dtype": its =1+1 was written raw (attack round 5)
    pa = pytest.importorskip("pyarrow")
    texts = ["=1+1", "x;@y", "plain"]
    columns = {"arrow_dictionary": pd.array(texts, dtype=pd.ArrowDtype(pa.dictionary(pa.int32(), pa.string()))),
               "arrow_string": pd.array(texts, dtype=pd.ArrowDtype(pa.string())),
               "category": pd.Categorical(texts), "string": pd.array(texts, dtype="string"), "object": texts,
               "mixed": ["=1+1", 2, None]}
    rows = parse_csv(to_safe_csv(pd.DataFrame(columns), index=False))
    assert rows[0] == list(columns)
    assert rows[1] == ["'=1+1"] * 6
    assert rows[2][:5] == ["x;'@y"] * 5 and rows[3][:5] == ["plain"] * 5
    numbers = pd.DataFrame({"int": [-1], "float": [-2.5], "bool": [True], "when": pd.to_datetime(["2026-01-01"])})
    assert parse_csv(to_safe_csv(numbers, index=False))[1] == ["-1", "-2.5", "True", "2026-01-01"]


def test_safe_csv_leaves_the_callers_frame_alone():
    frame = pd.DataFrame({"label": ["=1"]})
    to_safe_csv(frame, index=False)
    assert frame["label"].tolist() == ["=1"]


def test_neutralised_csv_reads_back_to_the_original_values():
    values = [p + "x" for p in PREFIXES if p != "\r"] + ["plain", "-1", "+1"]
    frame = pd.DataFrame({"task": range(len(values)), "worker": "w", "label": values})
    data = read_annotations(("out.csv", to_safe_csv(frame, index=False).encode()))
    assert sorted(data.classes) == sorted(values)


def test_a_formula_behind_spaces_a_byte_order_mark_or_in_full_width_is_quoted_and_reads_back():
    """Attack round 33: " =1+1", "\u00a0=1+1", "\ufeff=1+1" and "＝1+1" were written raw; spreadsheets that drop
    leading spaces or normalise full-width characters run them."""
    risky = [" =1+1", "\u00a0=1+1", "\ufeff=1+1", "\u3000+1", "＝1+1", "＠SUM(A1)", "\u2003 -2", "'\u00a0=1"]
    for value in risky:
        assert neutralise_cell(value) == "'" + value, value
    for value in ["a =1", "x\u00a0y", "text", " plain"]:
        assert neutralise_cell(value) == value, value
    values = ["x\u00a0=1+1", "\u00a0=1+1", "\ufeff=2", "＝3", "\u3000+4"]
    frame = pd.DataFrame({"task": range(len(values)), "worker": "w", "label": values})
    data = read_annotations(("out.csv", to_safe_csv(frame, index=False).encode()))
    assert sorted(data.classes) == sorted(values)


def test_carriage_return_is_quoted():
    text = to_safe_csv(pd.DataFrame({"a": ["x\ry", "\rz"], "b": [1, 2]}), index=False)
    assert parse_csv(text) == [["a", "b"], ["x\ry", "1"], ["'\rz", "2"]]


def test_numeric_column_names_are_not_neutralised():
    text = to_safe_csv(pd.DataFrame({-1: [1], "-2": [2]}), index=False)
    assert parse_csv(text)[0] == ["-1", "'-2"]


# ------------------------------------------------------------------ values and types in every format
@pytest.fixture
def results() -> pd.DataFrame:
    index = pd.Index(["=t1", "t2", "-3"], name="task")
    return pd.DataFrame({"label": ["=cat", "dog", "-1"], "confidence": [0.5, 0.75, 1.0], "int_label": [3, -1, 0]},
                        index=index)


def test_csv_keeps_values_and_numbers(results, tmp_path):
    path = write_csv(results, tmp_path / "r.csv")
    raw = read_table(path)
    assert raw.columns.tolist() == ["task", "label", "confidence", "int_label"]
    assert raw["label"].tolist() == ["'=cat", "dog", "'-1"]
    assert raw["int_label"].tolist() == ["3", "-1", "0"]  # numbers are never prefixed
    assert raw["confidence"].tolist() == ["0.5", "0.75", "1.0"]


def test_parquet_keeps_original_values_and_types(results, tmp_path):
    back = pd.read_parquet(write_parquet(results, tmp_path / "r.parquet"))
    # the task is the first column, as in the CSV (kept as pandas' index, merge(truth, on="task") failed; walkthrough
    # 19), with no neutralisation outside CSV
    assert back.columns[0] == "task" and back["task"].tolist() == ["=t1", "t2", "-3"]
    assert isinstance(back.index, pd.RangeIndex)
    truth = pd.DataFrame({"task": ["t2", "-3"], "truth": ["dog", "-1"]})
    assert back.merge(truth, on="task")["label"].tolist() == ["dog", "-1"]
    assert back["label"].tolist() == ["=cat", "dog", "-1"]
    assert back["int_label"].dtype == np.int64 and back["int_label"].tolist() == [3, -1, 0]
    np.testing.assert_allclose(back["confidence"], [0.5, 0.75, 1.0])


def test_json_keeps_original_values_and_types(results, tmp_path):
    records = results.reset_index().to_dict(orient="records")
    back = json.loads(write_json(records, tmp_path / "r.json").read_text())
    assert back == [
        {"task": "=t1", "label": "=cat", "confidence": 0.5, "int_label": 3},
        {"task": "t2", "label": "dog", "confidence": 0.75, "int_label": -1},
        {"task": "-3", "label": "-1", "confidence": 1.0, "int_label": 0},
    ]
    assert all(type(r["int_label"]) is int for r in back)


def test_json_refuses_nan_instead_of_writing_invalid_json(tmp_path):
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        write_json({"x": float("nan")}, tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()


# ------------------------------------------------------------------ atomic writes
def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_atomic_write_replaces_the_whole_file(tmp_path):
    target = tmp_path / "sub" / "out.bin"
    atomic_write_bytes(target, b"first version, longer")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert _leftovers(target.parent) == []


def test_failed_rename_keeps_the_old_file_and_removes_the_temporary(tmp_path, monkeypatch):
    target = tmp_path / "labels.csv"
    target.write_text("old complete content")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export.os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space left on device"):
        write_csv(pd.DataFrame({"a": [1, 2]}), target)
    assert target.read_text() == "old complete content"
    assert _leftovers(tmp_path) == []


def test_write_failing_half_way_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "new.csv"
    real_fdopen = os.fdopen

    class HalfWriter:
        """Writes the first 10 bytes, then the disk 'fills up'."""

        def __init__(self, handle):
            self.handle = handle

        def write(self, data):
            self.handle.write(data[:10])
            self.handle.flush()
            raise OSError(28, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()
            return False

    monkeypatch.setattr(export.os, "fdopen", lambda fd, mode: HalfWriter(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match="No space left on device"):
        write_csv(pd.DataFrame({"a": range(100)}), target)
    assert not target.exists()
    assert _leftovers(tmp_path) == []


def test_interrupt_during_fsync_leaves_no_file(tmp_path, monkeypatch):
    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(export.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_json({"a": 1}, tmp_path / "r.json")
    assert list(tmp_path.iterdir()) == []


def test_parquet_of_an_unwritable_frame_creates_nothing(tmp_path):
    frame = pd.DataFrame({"a": [object(), object()]})
    with pytest.raises(Exception):  # noqa: B017 - pyarrow's error type is not ours to pin
        write_parquet(frame, tmp_path / "x.parquet")
    assert list(tmp_path.iterdir()) == []


def test_a_text_column_of_few_values_is_neutralised_as_cell_by_cell():
    """Text columns are neutralised once per distinct value (a million rows of 2 labels: 0.5 s -> 0.05 s each): the
    same cells, missing ones kept, as neutralising every cell; mixed types (1, 1.0 and True are one value to a
    hash table) and mostly distinct columns still go cell by cell."""
    rng = np.random.default_rng(3)
    values = np.array(["c0", "=c1", "+x;=2", "'=q", "a\nb", "@s"], dtype=object)
    labels = pd.Series(values[rng.integers(0, len(values), 5000)]).where(rng.random(5000) > 0.05)
    frame = pd.DataFrame({"label": labels, "as_str": labels.astype("str"), "task": [f"=t{i}" for i in range(5000)],
                          "mixed": pd.Series(([1, 1.0, True, "=x", None, "1"] * 834)[:5000], dtype=object)})
    safe = safe_csv_frame(frame, index=False)
    for column in frame.columns:
        expected = [neutralise_cell(v) for v in frame[column]]
        got = list(safe[column])
        assert [str(v) for v in got] == [str(v) for v in expected], column
        assert [type(v) for v in got] == [type(v) for v in expected], column
    assert safe["label"].isna().sum() == labels.isna().sum() > 0
    assert list(safe["mixed"][:3]) == [1, 1.0, True] and [type(v) for v in safe["mixed"][:3]] == [int, float, bool]
    # what reaches the file is what the cell-by-cell way wrote
    by_cell = frame.copy()
    for column in by_cell.columns:
        by_cell[column] = by_cell[column].map(neutralise_cell)
    assert to_safe_csv(frame, index=False) == by_cell.to_csv(index=False, lineterminator="\r\n")


def test_a_label_column_is_neutralised_once_per_distinct_label(monkeypatch):
    calls = []
    original = export.neutralise_cell
    monkeypatch.setattr(export, "neutralise_cell", lambda value: calls.append(value) or original(value))
    frame = pd.DataFrame({"label": pd.Series(["=a", "b", "c"] * 10_000), "p": np.zeros(30_000)})
    text = export.to_safe_csv(frame, index=False)
    assert text.count("'=a") == 10_000
    assert len(calls) <= 2 + 3  # the two column names, the three labels (it was 30,002 calls)


def test_every_compatibility_form_of_a_formula_character_is_quoted_and_reads_back():
    """Attack round 42: the small forms "\ufe66", "\ufe62", "\ufe63", "\ufe6b" and the superscript "\u207c" (which
    NFKC makes "=", "+", "-", "@", "=") were written raw where the full-width forms were quoted; so were the combining
    grapheme joiner before "=" (default-ignorable, missing from the list) and 'a;"=1+1' (split on ';', the quoted field
    "=1+1"). Every character NFKC makes a formula character is derived here from Unicode's table."""
    import unicodedata

    forms = [chr(c) for c in range(0x110000)
             if chr(c) not in "=+-@" and unicodedata.normalize("NFKC", chr(c))[:1] in ("=", "+", "-", "@")]
    assert len(forms) >= 15 and "\u2a75" in forms  # (⩵ is "==")
    at_start = [hex(ord(c)) for c in forms if neutralise_cell(c + "1+1") != "'" + c + "1+1"]
    inside = [hex(ord(c)) for c in forms if neutralise_cell("x;" + c + "1") != "x;'" + c + "1"]
    assert not at_start and not inside, (at_start, inside)
    assert neutralise_cell("\u034f=1+1") == "'\u034f=1+1"
    assert neutralise_cell('a;"=1+1') == "a;'\"=1+1" and neutralise_cell("a;\"'=1") == "a;'\"'=1"
    assert neutralise_cell('a; "=1+1') == "a;' \"=1+1"  # (the double quote behind a space; the read of the diff)
    # a value that starts with quotes before a formula character gets one more, and reads back whole ("'=1" came
    # back "''=1": the reader looked for the formula character right after its quote)
    assert [neutralise_cell(v) for v in ("'=1", "''+2", "' =1", "'abc")] == ["''=1", "'''+2", "'' =1", "'abc"]
    values = ["\ufe66HYPERLINK(\"http://x.invalid\",\"a\")", "\ufe621+1", "\ufe63cmd", "\ufe6bSUM(1)", "\u207c1+1",
              "\u034f=1+1", 'a;"=1+1', "a;\"'=1", "plain", "'=1", "' \u2a75x", 'a; "=1']
    frame = pd.DataFrame({"task": range(len(values)), "worker": "w", "label": values})
    written = to_safe_csv(frame, index=False)
    cells = list(pd.read_csv(io.StringIO(written), dtype=str, keep_default_na=False)["label"])
    assert cells[:6] == [f"'{v}" for v in values[:6]]
    assert cells[6:] == ["a;'\"=1+1", "a;'\"'=1", "plain", "''=1", "'' \u2a75x", "a;' \"=1"]
    data = read_annotations(("out.csv", written.encode()))
    assert sorted(data.classes) == sorted(values)  # each reads back as it was


def test_a_formula_behind_any_control_or_invisible_format_character_is_quoted_and_reads_back():
    """Attack round 41: "\\u200e=1+1", "\\x0b=1+1", "\\u00ad=1+1", "\\u2060=1+1" (direction marks, C0/C1 separators, the
    soft hyphen, zero-width characters) were written raw, where spaces and the byte-order mark before "=" were
    quoted. Every character of Unicode's Cc, Cf, Zs, Zl and Zp categories before a formula character is quoted now,
    and a letter or a combining mark before it is not."""
    import unicodedata

    hidden = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) in ("Cc", "Cf", "Zs", "Zl", "Zp")
              and chr(c) not in "\t\r\n"]  # (formula characters and separators themselves: quoted twice)
    assert len(hidden) > 200
    unquoted = [hex(ord(c)) for c in hidden if neutralise_cell(c + "=1+1") != "'" + c + "=1+1"]
    assert not unquoted, unquoted
    for value in ["a=1", "\u00e9=1", "\u0301=1", "x\u200e", "\u200eplain"]:
        assert neutralise_cell(value) == value, value
    values = ["\u200e=1+1", "\u00ad=2", "\u2060+3", "\x0b=4", "\x85-5", "\u202e@6", "\u180e=7", "plain"]
    frame = pd.DataFrame({"task": range(len(values)), "worker": "w", "label": values})
    written = to_safe_csv(frame, index=False)
    assert all(f"'{v}" in written for v in values[:-1])
    data = read_annotations(("out.csv", written.encode()))
    assert sorted(data.classes) == sorted(values)
