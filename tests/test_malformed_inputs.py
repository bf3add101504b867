"""Malformed files that crashed the readers with a Python error instead of a DataError (found by fuzzing main's
readers with mutated copies of CSV, TSV, JSON and Parquet files: 9,110 inputs, 6 crash kinds). The dashboard showed
them as "reading the files: Error: new-line character seen in unquoted field - do you need to open the file in
universal-newline mode?", the CLI as "unexpected Error ... (this is a bug)" with exit status 1."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from deem_core.cli import main
from deem_core.data.annotations import DataError
from deem_core.data.readers import preview, read_dataset

ROOT = Path(__file__).resolve().parents[1]


class Upload(io.BytesIO):
    """What the Data page hands the readers: bytes with a name."""

    def __init__(self, data: bytes, name: str):
        super().__init__(data)
        self.name, self.size = name, len(data)


def _parquet_with_a_column_name_not_utf8() -> bytes:
    buffer = io.BytesIO()
    pd.DataFrame({"task": ["t1", "t2"], "worker": ["w1", "w2"], "zzzlabel": ["a", "b"]}).to_parquet(buffer)
    return buffer.getvalue().replace(b"zzzlabel", b"zz\xeb\xfflabe")  # same length: the footer stays valid


CASES = {
    # a bare CR inside an unquoted field, in a file with quotes: the line of an empty task was looked up with csv
    "empty_task_after_cr.csv": (b'task,worker,label\n"t1",w1,a\nt2,w\rx,b\n,w3,c\n', "empty task"),
    # ... and the line of a row with too many fields
    "extra_field_after_cr.csv": (b'task,worker,label\n"t1",w1,a\nt2,w2,b,extra\rx\n', "has 4 fields"),
    # Label Studio tasks whose "annotations" is a number, or whose "predictions" is an object
    "annotations_number.json": (json.dumps([{"id": 1, "data": {"text": "x"}, "annotations": 5}]).encode(),
                                "not a list"),
    "predictions_object.json": (json.dumps([{"id": 1, "data": {"text": "x"}, "annotations": [],
                                             "predictions": {"a": 1}}]).encode(), "not a list"),
    # a task id of 100,000 digits: Python's int() refuses more than 4,300 (ValueError, not a JSON error)
    "huge_integer.json": (b'[{"id": ' + b"9" * 100_000 + b', "data": {}, "annotations": []}]',
                           "a number of 100,000 digits, where at most 4,300 are read"),
    # a Parquet footer naming a column with bytes that are not UTF-8
    "column_name.parquet": (_parquet_with_a_column_name_not_utf8(), "cannot be read"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_malformed_file_is_a_data_error(name):
    data, words = CASES[name]
    with pytest.raises(DataError, match=words):
        read_dataset([Upload(data, name)])
    try:  # the preview shows what it can, or refuses with a DataError: never another exception
        preview(Upload(data, name))
    except DataError:
        pass


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_cli_says_error_and_exits_2(name, tmp_path, capsys):
    data, _ = CASES[name]
    path = tmp_path / name
    path.write_bytes(data)
    code = main(["aggregate", str(path), "--method", "mv", "-o", str(tmp_path / "out.csv"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert err[-1].startswith("error: ") and "bug" not in err[-1]


def _parquet_that_aborts_pyarrow(path) -> bool:
    """A Parquet file whose 'label' column has an invalid repetition type in the schema, while its size
    statistics were written for an optional column: pyarrow 26 terminates the process (C++ exception through
    ``RowGroupMetaData.column``) when that chunk's metadata is asked for. False when the file could not be made."""
    frame = pd.DataFrame({"task": [f"t{i}" for i in range(50)], "worker": ["w1", "w2"] * 25,
                          "label": [float(i % 3) for i in range(50)]})
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    data = buffer.getvalue()
    marker = b"%\x02\x18\x05label"  # schema element: repetition_type OPTIONAL (zigzag 2), then the name
    if data.count(marker) != 1:
        return False
    path.write_bytes(data.replace(marker, b"%q\x18\x05label"))
    return True


def test_a_parquet_file_that_aborts_pyarrow_is_refused_without_killing_the_process(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "aborts.parquet"
    if not _parquet_that_aborts_pyarrow(path):
        pytest.skip("this pyarrow writes no such schema element")
    script = ("import sys\nfrom deem_core.data.annotations import DataError\n"
              "from deem_core.data.readers import preview, read_dataset\n"
              "for call in (lambda: preview(sys.argv[1]), lambda: read_dataset([sys.argv[1]])):\n"
              "    try:\n        call()\n        print('read')\n"
              "    except DataError as exc:\n        print('DataError:', exc)\n")
    out = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120)
    # on main: exit -6 (SIGABRT), "terminate called after throwing an instance of 'parquet::ParquetException'"
    assert out.returncode == 0, out.stderr[-500:]
    assert out.stdout.count("DataError: aborts.parquet") == 2, out.stdout


def test_a_parquet_dictionary_value_not_utf8_is_a_data_error_in_the_preview(tmp_path):
    """Found fuzzing: two bytes changed in a Parquet file of sample_data/condind.csv (a dictionary index and one byte
    of the worker name 'clf_10') made the preview's ``to_pylist`` raise UnicodeDecodeError."""
    text = (ROOT / "sample_data" / "condind.csv").read_bytes()[:20000]
    buffer = io.BytesIO()
    pd.read_csv(io.BytesIO(text)).to_parquet(buffer)
    data = bytearray(buffer.getvalue())
    if len(data) != 4205 or data[462] != 8 or data[1154] != ord("1"):
        pytest.skip("this pyarrow lays the file out differently")
    data[462], data[1154] = 165, 222
    path = tmp_path / "worker_not_utf8.parquet"
    path.write_bytes(bytes(data))
    for call in (lambda: preview(path), lambda: read_dataset([path])):
        try:
            call()
        except DataError as exc:
            assert str(exc).startswith("worker_not_utf8.parquet: ")


def test_a_wide_header_past_the_first_64k_characters_is_read_whole(tmp_path):
    """Attack round: with 15,000 worker columns the header's cut last name read as a duplicate ("column name
    'w1094' appears 2 times"), with 100,000 the file read as empty. Long names make a header of 3,000 workers
    ~90 K characters (so the test is quick; the wide reader is slow on tens of thousands of columns)."""
    from deem_core.data.formats.reading import preview
    from deem_core.data.readers import read_annotations

    n_workers = 3_000
    header = "task," + ",".join(f"annotator_number_{i:05d}_of_the_batch" for i in range(n_workers))
    assert len(header) > 1 << 16
    rows = [f"t{r}," + ",".join(str((i + r) % 3) for i in range(n_workers)) for r in range(4)]
    path = tmp_path / "wide.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    data = read_annotations(path)
    assert (data.n_tasks, data.n_workers, data.n_answers) == (4, n_workers, 4 * n_workers)
    shown = preview(("wide.csv", path.read_bytes()))
    assert shown.layout == "wide" and shown.frame.shape[1] == n_workers + 1


def test_a_first_line_beyond_the_header_limit_is_said_as_such(tmp_path):
    from deem_core.data.readers import read_annotations

    path = tmp_path / "line.csv"
    path.write_text("a" * (9 << 20) + "\n1\n")
    with pytest.raises(DataError, match="the first line is longer than 8,388,608 characters"):
        read_annotations(path)


def test_a_json_field_with_no_name_is_ignored_not_taken_for_the_labels(tmp_path, capsys):
    """Attack round 18: a Label Studio JSON-MIN export whose control is named "" crashed the CLI ("unexpected
    KeyError: '' (this is a bug)", exit 1) and the Data page's read: such a field is ignored, as in a CSV."""
    export = tmp_path / "min.json"
    export.write_text(json.dumps([{"id": 1, "": "a", "annotator": "u", "annotation_id": 1},
                                  {"id": 2, "": "b", "annotator": "v", "annotation_id": 2}]))
    assert main(["aggregate", str(export), "-o", str(tmp_path / "out.csv"), "--method", "mv"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == ("error: min.json: no column holds the answers of a labelling "
                                                        "control; found 'id', 'annotator', 'annotation_id'")
    with pytest.raises(DataError, match="no column holds the answers"):
        read_dataset([Upload(export.read_bytes(), "min.json")])
    records = tmp_path / "records.json"
    records.write_text(json.dumps([{"task": 1, "": "junk", "worker": "u", "label": "a"},
                                   {"task": 2, " ": "j", "worker": "v", "label": "b"}]))
    reading = read_dataset([records])
    assert reading.data.n_annotations == 2 and "records.json: ignored 2 values of a field with no name" in str(
        reading.data.warnings)
