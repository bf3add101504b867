"""Hostile inputs that cost memory out of proportion to their size (found attacking main; issue 14's cases are in
``tests/bad_inputs``): the cost of reading them stays bounded, and what cannot be read is refused by name."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deem_core.data.annotations import DataError
from deem_core.data.formats import Limits, preview, read_dataset
from deem_core.data.formats import tables
from deem_core.data.text import escape_controls

ROOT = Path(__file__).resolve().parents[1]


def dictionary_parquet(path: Path, value_chars: int, n_rows: int) -> Path:
    """Every row's label points at one dictionary value of ``value_chars`` characters (kilobytes on disk)."""
    label = pa.DictionaryArray.from_arrays(pa.array([0] * n_rows, pa.int32()), pa.array(["x" * value_chars]))
    table = pa.table({"task": pa.array(range(n_rows), pa.int64()), "worker": ["a"] * n_rows, "label": label})
    pq.write_table(table, path, compression="zstd")
    return path


def peak_rss_mb(code: str) -> tuple[float, float, str]:
    """(peak RSS before ``code``, peak RSS after it, its output) of a fresh interpreter, in MB."""
    # the high-water mark of this process's own memory (VmHWM), not ru_maxrss: Linux carries ru_maxrss over
    # from the forking parent, so a child of a pytest process holding 0.8 GB reported 0.8 GB before it began
    script = textwrap.dedent("""
        import re, sys
        import deem_core.data.formats as F
        from deem_core.data.annotations import DataError
        def peak():
            with open("/proc/self/status") as status:
                return int(re.search(r"VmHWM:\\s*(\\d+)", status.read()).group(1)) / 1024
        before = peak()
        try:
        {code}
        except DataError as exc:
            print("DataError:", exc)
        print("PEAK", before, peak())
    """).format(code=textwrap.indent(textwrap.dedent(code), "    "))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    last = out.stdout.strip().splitlines()[-1].split()
    return float(last[1]), float(last[2]), out.stdout


@pytest.mark.parametrize("call, value_mib", [("F.read_dataset([sys.argv[1]])", 1), ("F.preview(sys.argv[1])", 16)])
def test_a_parquet_dictionary_is_never_decoded_row_by_row(tmp_path, call, value_mib):
    # 300 rows x one 1 MiB value: 300 MiB when every row gets its own copy (what main did: a 7 KB file of 8 rows
    # x 200 MB took the preview past 5 GB; a preview reads 200 rows); the distinct value alone is 1 MiB
    path = dictionary_parquet(tmp_path / "dictionary.parquet", value_mib << 20, 300)
    assert path.stat().st_size < 100_000
    before, after, out = peak_rss_mb(call.replace("sys.argv[1]", repr(str(path))))
    assert after - before < 120, (before, after, out)
    if "read_dataset" in call:
        assert "a label value is 1,048,576 characters long" in out, out
    else:
        assert "DataError" not in out, out  # 16 MiB is within the 64 MiB a value may have: previewed, cut short


@pytest.mark.parametrize("call", ["F.read_dataset([sys.argv[1]])", "F.preview(sys.argv[1])"])
def test_long_distinct_parquet_values_are_refused_or_cut_before_they_are_copied(tmp_path, call):
    # six distinct 20 MiB task ids (a 5 KB file; attack round of the seventh session): pyarrow's own decoding of
    # the 120 MiB row group costs ~0.5 GB; trimming and encoding them took the read to +1.4 GB and the preview to
    # +1.05 GB before the refusal (now the read refuses on the lengths as they come, the preview cuts first)
    table = pa.table({"task": [f"{i}" + "a" * (20 << 20) for i in range(6)], "worker": ["w"] * 6, "label": ["1"] * 6})
    path = tmp_path / "ids.parquet"
    pq.write_table(table, path, compression="zstd")
    assert path.stat().st_size < 20_000
    before, after, out = peak_rss_mb(call.replace("sys.argv[1]", repr(str(path))))
    assert after - before < 800, (before, after, out)
    if "read_dataset" in call:
        assert "ids.parquet: a task value is 20,971,521 characters long ('0aaaaaaaa" in out, out
        assert "at most 10,000 are read (DEEM_MAX_VALUE_CHARS)" in out
    else:
        assert "DataError" not in out, out


@pytest.mark.parametrize("layout", ["long", "wide", "many columns"])
def test_one_huge_csv_cell_is_refused_as_the_parser_gives_it_not_after_copies(tmp_path, layout):
    # one 40 MB label cell among 100 ordinary rows (attack round 62: 60 MB took the read from 0.1 to 2.5 GB, trimmed,
    # made categorical and copied before the same refusal; now +0.3 GB, the parser's own buffers)
    big = "A" * 40_000_000
    path = tmp_path / "big.csv"
    if layout == "long":
        rows = ["task,worker,label", f"t0,w0,{big}"] + [f"t{i},w{i % 3},{'ab'[i % 2]}" for i in range(1, 100)]
    else:
        width = 3 if layout == "wide" else 300
        rows = ["task," + ",".join(f"m{j}" for j in range(width)), f"t0,{big}," + ",".join("a" * (width - 1))]
        rows += [f"t{i}," + ",".join("ab"[(i + j) % 2] for j in range(width)) for i in range(1, 60)]
    path.write_text("\n".join(rows) + "\n")
    before, after, out = peak_rss_mb(f"F.read_dataset([{str(path)!r}])")
    assert "big.csv: a label value is 40,000,000 characters long ('AAAA" in out, out
    assert after - before < 600, (before, after, out)


def test_a_parquet_id_padded_with_spaces_is_trimmed_not_refused(tmp_path):
    path = tmp_path / "padded.parquet"
    pq.write_table(pa.table({"task": ["t1", "t1", " " * 20 + "t2"], "worker": ["a", "b", "a"],
                             "label": ["x", "y", "x" + " " * 20]}), path)
    long = read_dataset([path], limits=Limits(max_value_chars=10)).data.to_long()
    assert sorted(zip(long["task"], long["label"])) == [("t1", "x"), ("t1", "y"), ("t2", "x")]
    pq.write_table(pa.table({"task": ["t1", " t" + "2" * 11], "worker": ["a", "b"], "label": ["x", "y"]}), path)
    with pytest.raises(DataError, match=r"a task value is 12 characters long \('t2222"):
        read_dataset([path], limits=Limits(max_value_chars=10))


def test_a_parquet_column_chunk_larger_than_the_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(tables, "PARQUET_CHUNK_BYTES", 1 << 20)
    path = dictionary_parquet(tmp_path / "big.parquet", 2 << 20, 4)
    with pytest.raises(DataError, match=r"^big\.parquet: row group 1 holds 2\.0 MiB once decompressed; at most "
                                        r"1 MiB per row group are read"):
        read_dataset([path])
    with pytest.raises(DataError, match=r"^big\.parquet: .* at most 1 MiB"):
        preview(path)


def test_a_preview_checks_every_row_group_it_reads_and_stops_at_its_budget(tmp_path, monkeypatch):
    # the preview checked only the first row group, then read on while it had fewer rows than it shows: a 33 KB
    # file whose second group holds one 1,000 MiB value took 4.1 GB; 20 one-row groups of 125 MB each held the one
    # read slot for 97 s (attack round 7)
    monkeypatch.setattr(tables, "PARQUET_CHUNK_BYTES", 1 << 20)
    path = tmp_path / "second.parquet"
    with pq.ParquetWriter(path, pa.schema([("task", pa.string()), ("worker", pa.string()), ("label", pa.string())]),
                          compression="zstd") as writer:
        writer.write_table(pa.table({"task": ["1"], "worker": ["a"], "label": ["x"]}))
        writer.write_table(pa.table({"task": ["2"], "worker": ["a"], "label": ["y" * (2 << 20)]}))
    with pytest.raises(DataError, match=r"^second\.parquet: row group 2 holds 2\.0 MiB once decompressed; at most "
                                        r"1 MiB per row group are read"):
        preview(path)
    path = tmp_path / "groups.parquet"  # one-row groups of 0.4 MiB each: under the limit, over it together
    with pq.ParquetWriter(path, pa.schema([("task", pa.string()), ("worker", pa.string()), ("label", pa.string())]),
                          compression="zstd") as writer:
        for i in range(6):
            writer.write_table(pa.table({"task": [str(i)], "worker": ["a"], "label": [f"{i}" + "z" * (400 << 10)]}))
    shown = preview(path)
    assert len(shown.frame) == 2  # the rows of the groups within the preview's budget
    assert any("the preview shows the rows of the first 2 row groups only" in w for w in shown.warnings)


def test_a_preview_cleans_only_the_dictionary_entries_its_rows_use(tmp_path, monkeypatch):
    # 3.8 million unused entries per column were cleaned for a 20-row preview (4 s; attack round 7)
    import pyarrow.compute as pc

    cleaned = []
    real = pc.utf8_ltrim
    monkeypatch.setattr(pc, "utf8_ltrim", lambda values, *a, **k: cleaned.append(len(values)) or real(values, *a, **k))
    words = pa.array([f"w{i}" for i in range(50_000)])
    label = pa.DictionaryArray.from_arrays(pa.array([7, 7, 3, None, 49_999] * 8, pa.int32()), words)
    path = tmp_path / "unused.parquet"
    pq.write_table(pa.table({"task": [str(i) for i in range(40)], "worker": ["a"] * 40, "label": label}), path)
    shown = preview(path).frame
    assert list(shown["label"][:5]) == ["w7", "w7", "w3", "", "w49999"]
    assert max(cleaned) <= 40, cleaned  # the shown rows' entries, not the 50,000


def test_parquet_data_larger_than_its_metadata_says_is_decoded_apart_and_refused(tmp_path, monkeypatch):
    # footer sizes are the uploader's words: forged to 0, a 33 KB file decoded a 1,000 MiB value in the server's
    # own process (4.1 GB, in the preview and the read; attack round 7). The decoding now runs in a process of its
    # own under PARQUET_DECODE_BYTES; here the metadata is believed (as if forged) and the cap made small
    monkeypatch.setattr(tables.ParquetTable, "_stored_bytes", lambda self, columns, groups=None: 0)
    monkeypatch.setattr(tables, "PARQUET_DECODE_BYTES", 350 << 20)  # (pyarrow itself holds ~270 MiB)
    path = dictionary_parquet(tmp_path / "forged.parquet", 400 << 20, 3)
    assert path.stat().st_size < 100_000
    for call in (lambda: read_dataset([path]), lambda: preview(path)):
        with pytest.raises(DataError, match=r"^forged\.parquet: decoding this Parquet file needs more than 350 MiB of "
                                            r"memory: its data hold far more than its metadata says"):
            call()
    small = dictionary_parquet(tmp_path / "small.parquet", 1 << 20, 3)  # within the cap: read as before
    assert preview(small).frame.shape == (3, 3)


def test_what_the_parquet_decoding_process_writes_back_is_bounded(tmp_path, monkeypatch):
    # within its memory cap the decoding process writes one small batch after another: all of them had no bound
    monkeypatch.setattr(tables, "PARQUET_DECODE_OUTPUT_BYTES", 1 << 20)
    n = 300_000
    path = tmp_path / "many.parquet"
    pq.write_table(pa.table({"task": [str(i) for i in range(n)], "worker": ["a"] * n, "label": ["x"] * n}), path)
    with pytest.raises(DataError, match=r"^many\.parquet: the Parquet data decode to more than 1 MiB; at most that "
                                        r"much is read"):
        read_dataset([path])
    # and no more than the read's own byte limit, also when the metadata understate the data (as if forged): a
    # 0.49 MB upload of repeated values wrote 1.6 GB in 5 s (attack round 8)
    monkeypatch.setattr(tables, "PARQUET_DECODE_OUTPUT_BYTES", 4 << 30)
    monkeypatch.setattr(tables.ParquetTable, "_stored_bytes", lambda self, columns, groups=None: 0)
    with pytest.raises(DataError, match=r"^many\.parquet: the Parquet data decode to more than 2 MiB; at most that "
                                        r"much is read \(DEEM_MAX_INPUT_BYTES\)"):
        read_dataset([path], limits=Limits(max_bytes=2 << 20))


def test_a_decoding_folder_left_by_a_killed_server_is_swept_by_the_next_read(tmp_path, monkeypatch):
    # a server killed mid-read left its deem-parquet-* folder (with up to the read's byte limit in it), and nothing
    # removed it (attack round 8)
    import os
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    old, recent = tmp_path / "tmp" / "deem-parquet-old", tmp_path / "tmp" / "deem-parquet-busy"
    for folder in (old, recent):
        folder.mkdir()
        (folder / "batches.arrows").write_bytes(b"x" * 1000)
    hours_ago = time.time() - 2 * 3600
    for path in (old, old / "batches.arrows", recent):
        os.utime(path, (hours_ago, hours_ago))  # the busy one's stream was written just now
    path = dictionary_parquet(tmp_path / "small.parquet", 10, 3)
    assert preview(path).frame.shape == (3, 3)
    assert not old.exists() and recent.exists()
    assert [p.name for p in (tmp_path / "tmp").iterdir()] == ["deem-parquet-busy"]  # its own folder removed too


def test_parquet_text_reads_as_before(tmp_path):
    """Dictionary-encoded reading keeps every value: spaces trimmed, a null label missing (dropped), numbers typed."""
    frame = pa.table({"task": pa.array([1, 2, 3, 3, 4], pa.int64()),
                      "worker": pa.array([" a", "a ", "c", "b", "b"]),
                      "label": pa.array(["x", " x", "y", None, "y"])})
    buffer = io.BytesIO()
    pq.write_table(frame, buffer)
    path = tmp_path / "plain.parquet"
    path.write_bytes(buffer.getvalue())
    data = read_dataset([path]).data
    long = data.to_long()
    assert sorted(zip(long["task"], long["worker"], long["label"])) == [
        (1, "a", "x"), (2, "a", "x"), (3, "c", "y"), (4, "b", "y")]
    shown = preview(path).frame
    assert list(shown["worker"]) == ["a", "a", "c", "b", "b"] and list(shown["label"]) == ["x", "x", "y", "", "y"]


def test_a_parquet_preview_shows_each_cell_as_the_read_takes_it(tmp_path):
    """The preview cleans the shown rows of all columns of one type together (a column at a time took 33 s for
    100,000 worker columns; the tenth session's leftover); each cell is still the text the read takes (cast, a null
    empty, spaces trimmed), cut for display."""
    from deem_core.data.formats.sources import sources_of

    cut = tables.PREVIEW_CHARS
    long = "é" * (cut + 5)
    words = pa.array(["x", "", " y ", "z" * (cut + 3), long, "  " + "q" * cut, "é", "x"])
    table = pa.table({
        "task": pa.array([f" t{i} " for i in range(8)]),
        "ints": pa.array([1, None, 3, -4, 5, 6, 7, 8], pa.int64()),
        "floats": pa.array([1.5, 2.0, None, 4.25, 1e20, 6.0, 7.0, 0.1]),
        "bools": pa.array([True, False, None, True, True, False, True, False]),
        "w1": pa.array(["a", " b", None, "c ", "a", "a", long, "d" * cut + " e"]),
        "w2": pa.array(["x"] * 8),
        # a dictionary whose values are empty, unused or repeated, and rows whose index is null
        "w3": pa.DictionaryArray.from_arrays(pa.array([0, None, 2, 3, 3, 1, 5, 6], pa.int32()), words),
        "w4": pa.array([" " * (cut + 2) + "z", "y" * cut + " ", "", None, "b", "b", "b", "b"]),
    })
    path = tmp_path / "mixed.parquet"
    pq.write_table(table, path, row_group_size=3)  # rows of a preview span row groups
    opened = tables.ParquetTable(sources_of(path)[0], Limits())
    full = pd.concat(list(opened.chunks(None)))
    shown = opened.head(20)
    assert shown.shape == (8, 8) and list(shown.columns) == list(table.column_names)
    for column in table.column_names:
        expected = ["" if pd.isna(v) else str(v) for v in full[column]]
        expected = [v if len(v) <= cut else v[:cut] + "…" for v in expected]
        got = list(shown[column])
        assert all(type(v) is str for v in got), column
        assert got == expected, column
    assert list(shown["ints"]) == ["1", "", "3", "-4", "5", "6", "7", "8"]
    assert list(shown["w3"])[:3] == ["x", "", "y"] and shown["w3"].iloc[3] == "z" * cut + "…"
    assert shown["w1"].iloc[6] == "é" * cut + "…" and shown["w1"].iloc[7] == "d" * cut + "…"
    assert shown["w4"].iloc[0] == "z" and shown["w4"].iloc[1] == "y" * cut and shown["w3"].iloc[6] == "q" * cut


def test_a_parquet_preview_makes_as_many_pyarrow_calls_for_2000_worker_columns_as_for_20(tmp_path, monkeypatch):
    # a column at a time (several pyarrow calls and a Series each), 100,000 worker columns took 33 s to preview
    # where their CSV took 1.8 s (benchmarks/results/wide_preview.txt)
    import pyarrow.compute as pc

    calls = []
    real = pc.utf8_slice_codeunits
    monkeypatch.setattr(pc, "utf8_slice_codeunits", lambda *a, **k: calls.append(1) or real(*a, **k))
    counted = {}
    for n in (20, 2000):
        rng = np.random.default_rng(n)
        table = pa.table({"task": [f"t{i}" for i in range(30)],
                          **{f"w{j}": rng.choice(["a", "b", "c"], 30) for j in range(n)}})
        path = tmp_path / f"wide{n}.parquet"
        pq.write_table(table, path)
        calls.clear()
        shown = preview(path).frame
        assert shown.shape == (20, n + 1) and set(shown["w7"]) <= {"a", "b", "c"}
        counted[n] = len(calls)
    assert 0 < counted[2000] == counted[20], counted


def test_a_long_value_is_cut_alike_in_the_previews_of_a_csv_and_a_parquet_file(tmp_path):
    # the CSV preview showed a 1,497-character value whole, the Parquet one 1,000 and "…" (walkthrough 17)
    cut = tables.PREVIEW_CHARS
    frame = pd.DataFrame({"item": ["a", "b", "c"], "w1": ["x", "   " + "y" * (cut + 497), "z" * cut],
                          "w2": ["é" * (cut + 1), "q", "q"]})
    frame.to_csv(tmp_path / "long.csv", index=False)
    frame.to_parquet(tmp_path / "long.parquet", index=False)
    from_csv, from_parquet = preview(tmp_path / "long.csv").frame, preview(tmp_path / "long.parquet").frame
    assert list(from_csv["w1"]) == ["x", "y" * cut + "…", "z" * cut] and from_csv["w2"].iloc[0] == "é" * cut + "…"
    assert from_csv.astype(str).equals(from_parquet.astype(str))


def test_a_long_value_in_a_preview_is_cut_for_display(tmp_path):
    path = dictionary_parquet(tmp_path / "long.parquet", 50_000, 5)
    shown = preview(path).frame
    assert all(len(v) == tables.PREVIEW_CHARS + 1 and v.endswith("…") for v in shown["label"])


def test_the_value_limit_is_configurable(tmp_path):
    path = tmp_path / "names.csv"
    path.write_text("task,worker,label\n1,a," + "y" * 300 + "\n1,b,x\n")
    with pytest.raises(DataError, match=r"a label value is 300 characters long .* at most 100 are read"):
        read_dataset([path], limits=Limits(max_value_chars=100))
    assert read_dataset([path]).data.n_classes == 2
    truth = tmp_path / "truth.csv"
    truth.write_text("task,truth\n1," + "z" * 300 + "\n")
    from deem_core.data.formats import read_truth  # noqa: PLC0415

    with pytest.raises(DataError, match=r"^truth\.csv: a truth value is 300 characters long"):
        read_truth(truth, limits=Limits(max_value_chars=100))


def _wide_text(n_workers: int) -> str:
    """A wide file of ``n_workers`` worker columns with every quirk the cleaning handles: padded cells, a blank
    line, the header repeated (files joined), a row with no answer, a trailing delimiter (an unnamed empty column)."""
    rng = np.random.default_rng(3)
    names = [f"w{j}" for j in range(n_workers)]
    lines = ["task," + ",".join(names) + ","]
    for t in range(12):
        cells = [("" if rng.random() < 0.6 else f" {rng.integers(0, 3)} " if rng.random() < 0.3
                  else str(rng.integers(0, 3))) for _ in names]
        lines.append(f"t{t}," + ",".join(cells) + ",")
        if t == 4:
            lines.append("," * (n_workers + 1))
        if t == 7:
            lines.append("task," + ",".join(names) + ",")
    lines.append("t99," + "," * n_workers)
    return "\n".join(lines) + "\n"


def test_a_file_of_many_columns_reads_as_one_of_few_would(monkeypatch):
    # the block path (more than MANY_COLUMNS columns, chunks sized by cells) against the column-by-column path
    text = _wide_text(100).encode()
    block = read_dataset([("wide.csv", text)])
    monkeypatch.setattr(tables, "CHUNK_CELLS", 300)  # three rows a chunk
    small = read_dataset([("wide.csv", text)])
    monkeypatch.setattr(tables, "MANY_COLUMNS", 10 ** 9)
    monkeypatch.setattr(tables, "CHUNK_CELLS", 10 ** 9)
    columns = read_dataset([("wide.csv", text)])
    assert block.data.layout == columns.data.layout == "wide"
    expected = columns.data.to_long()
    assert len(expected) > 300 and set(expected["label"]) == {0, 1, 2}
    for other in (block, small):
        pd.testing.assert_frame_equal(other.data.to_long(), expected)
        assert other.data.warnings == columns.data.warnings
    assert any("left out 1 row with no answer" in w for w in columns.data.warnings), columns.data.warnings


def test_a_file_of_empty_cells_costs_one_chunk_of_cells(tmp_path):
    # 20 MB of commas (10,000 columns x 2,000 rows; a 1 GiB file of them gzips to ~1 MB): parsed 250,000 rows at
    # a time it peaked +1.33 GB (~70 bytes a cell), so a gigabyte of commas would have taken the server down
    path = tmp_path / "commas.csv"
    with path.open("w") as out:
        out.write("task," + ",".join(f"w{j}" for j in range(10_000)) + "\n")
        for t in range(2_000):
            out.write(f"t{t},1" + "," * 9_999 + "\n")
    before, after, out = peak_rss_mb(f"data = F.read_dataset([{str(path)!r}]).data\nprint(data.n_answers)")
    assert "2000" in out, out
    assert after - before < 600, (before, after, out)


def test_fifteen_thousand_worker_columns_read_in_seconds():
    # 15,000 columns x 5 rows took 52 s of CPU column by column (attack round of the seventh session)
    rng = np.random.default_rng(0)
    lines = ["task," + ",".join(f"w{j}" for j in range(15_000))]
    lines += [f"t{t}," + ",".join(map(str, rng.integers(0, 3, 15_000))) for t in range(5)]
    started = time.process_time()
    data = read_dataset([("wide.csv", "\n".join(lines).encode())]).data
    assert data.n_answers == 75_000 and data.n_workers == 15_000
    assert time.process_time() - started < 15


def test_short_and_empty_rows_under_a_wide_header_cost_their_cells_not_pandas_columns():
    # pandas builds one column object per column per chunk (~60 us each): under a header of 100,000 worker names
    # (a 230 KB gzip) 60 lines of two fields took 28 s and 200 rows of commas 40 s, so a few hundred KB held the
    # server's one read slot for its whole time limit (attack round of the eighth and ninth sessions)
    names = [f"w{j}" for j in range(99_999)]
    lines = ["task," + ",".join(names)] + [f"s{t},1" for t in range(120)]
    lines += [f"t{t}" + "," * 50 + "2" + "," * (99_999 - 51) for t in range(60)]
    started = time.process_time()
    data = read_dataset([("wide.csv", ("\n".join(lines) + "\n").encode())]).data
    seconds = time.process_time() - started
    assert data.layout == "wide" and data.n_answers == 180 and data.n_tasks == 180
    assert sorted(data.to_long()["worker"].unique()) == ["w0", "w49"]
    assert seconds < 12, seconds


@pytest.mark.parametrize("text", [
    "task,worker,label\r\nt1,w1,a\r\nt1,w2,b\r\n",  # CRLF
    "task,worker,label\rt1,w1,a\rt1,w2,b\r",  # CR alone
    'task,worker,label\n"t,1",w1,"a ""x"""\n"t\n2",w2,b\nt3,"w\r\n3",a',  # quoted delimiter, quote, newlines; no EOL
    "task,worker,label\nt1,w1\nt1,w2,b\nt2,w1,a\n\n\nt3,w1,a\n",  # a short record, blank lines
    'task,worker,label\nt1,w"1,a\n"t1"x,w2,b\n',  # quotes inside and after a field
    "task,worker,label\nt1,w1,a\n\ue000deem: end of the records\ue000\nt2,w2,b\n",  # the parser's end mark as data
    "task,worker,label\nt1,w1,a,x\nt1,w2,b\n",  # too many fields: the same error
    'task,worker,label\nt1,w1,a\nt2,w2,"b\nt3,w1,a\n',  # a quote never closed: the same error
    "task,w1,w2,w3\nt1,a\nt2,,a, a \n ,,,\nt3\n",  # wide, with short rows, padding and an empty row
])
def test_the_cell_parser_of_many_columns_reads_what_pandas_reads(monkeypatch, text):
    # a table of many columns is parsed by Python's csv module into one block of cells; the column-by-column path
    # keeps pandas' parser: both must give the same answers, warnings or error on every quirk
    def read(many: int):
        monkeypatch.setattr(tables, "MANY_COLUMNS", many)
        try:
            result = read_dataset([("f.csv", text.encode())])
        except DataError as exc:
            return str(exc)
        return result.data.to_long(), result.data.warnings

    cells, columns = read(2), read(10 ** 9)
    if isinstance(columns, str):
        assert cells == columns
    else:
        pd.testing.assert_frame_equal(cells[0], columns[0])
        assert cells[1] == columns[1]


def test_a_table_of_too_many_columns_is_refused_before_its_rows_are_read(tmp_path, monkeypatch):
    # a header of a million worker names (8 MB) held the reader for minutes, column by column (attack round of the
    # eighth session); a Parquet schema the same
    header = "task," + ",".join(f"w{j}" for j in range(1_200)) + "\n"
    path = tmp_path / "wide.csv"
    path.write_text(header + "t1," + ",".join("1" for _ in range(1_200)) + "\n")
    with pytest.raises(DataError, match=r"^wide\.csv: 1,201 columns; at most 1,000 are read \(DEEM_MAX_COLUMNS\)"):
        read_dataset([path], limits=Limits(max_columns=1_000))
    with pytest.raises(DataError, match=r"1,201 columns"):
        preview(path, limits=Limits(max_columns=1_000))
    assert read_dataset([path]).data.n_workers == 1_200  # the default: 100,000
    monkeypatch.setenv("DEEM_MAX_COLUMNS", "1000")
    assert Limits.from_env().max_columns == 1_000
    parquet = tmp_path / "wide.parquet"
    pq.write_table(pa.table({"task": ["t1"], **{f"w{j}": ["1"] for j in range(1_200)}}), parquet)
    with pytest.raises(DataError, match=r"^wide\.parquet: 1,201 columns; at most 1,000"):
        read_dataset([parquet], limits=Limits(max_columns=1_000))


def test_a_padded_long_value_does_not_hide_the_others_from_the_early_refusal(tmp_path):
    # the early check looked only at the longest value: padded with spaces (short once trimmed) it let five 20 MiB
    # ids through to be trimmed, encoded and copied (+1.34 GB; 4 row groups of them +3.5 GB: attack round, eighth
    # session); now every value past the limit is trimmed and checked
    table = pa.table({"task": [" " * (21 << 20) + "x"] + [c * (20 << 20) for c in "abcde"], "worker": ["w"] * 6,
                      "label": ["1"] * 6})
    path = tmp_path / "padded.parquet"
    pq.write_table(table, path, compression="zstd")
    before, after, out = peak_rss_mb(f"F.read_dataset([{str(path)!r}])")
    assert "a task value is 20,971,520 characters long ('aaaa" in out, out
    assert after - before < 900, (before, after, out)


def test_an_unused_long_category_of_a_parquet_file_is_not_refused(tmp_path):
    # pandas keeps a filtered-out category in the Parquet dictionary: no row holds it, so it is no id
    frame = pd.DataFrame({"task": ["t1", "t2", "x" * 20_000], "worker": ["w1", "w2", "w1"],
                          "label": ["a", "b", "a"]}).astype("category")
    path = tmp_path / "filtered.parquet"
    frame[frame["task"] != "x" * 20_000].to_parquet(path)
    data = read_dataset([path]).data
    assert sorted(data.tasks) == ["t1", "t2"] and data.n_answers == 2


def test_a_json_escape_of_half_a_character_is_a_clear_error(tmp_path, capsys):
    # '"w\ud800"' parses into a string no UTF-8 table or terminal can hold: the library raised UnicodeEncodeError and
    # the command line called it a bug (attack round of the eighth session)
    from deem_core.cli import main  # noqa: PLC0415

    path = tmp_path / "half.json"
    path.write_text('[{"task": "t1", "worker": "w\\ud800", "label": "a"}, {"task": "t1", "worker": "w2", "label": "b"}]')
    with pytest.raises(DataError, match=r"^half\.json: a value holds \\ud800, half of a character \(an escaped lone "
                                        r"surrogate\), not text"):
        read_dataset([path])
    assert "\\ud800" in preview(path).frame["worker"].map(escape_controls).iloc[0]  # the preview shows it escaped
    assert main(["aggregate", str(path), "-o", str(tmp_path / "out.csv"), "--method", "mv"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: half.json: a value holds \\ud800"), err


def test_a_read_stops_at_the_servers_time_limit(tmp_path, monkeypatch):
    # short lines under a header of many columns cost pandas a full row each (400 lines under 100,000 columns:
    # 108 s; attack round of the eighth session): a read stops at DEEM_MAX_READ_SECONDS with a sentence
    path = tmp_path / "short.csv"
    path.write_text("task," + ",".join(f"w{j}" for j in range(20_000)) + "\nt0,a\n" + "t1\n" * 2_000)
    started = time.perf_counter()
    with pytest.raises(DataError, match=r"^short\.csv: still reading after 0\.5 s, this server's limit for one read "
                                        r"\(DEEM_MAX_READ_SECONDS\)"):
        read_dataset([path], limits=Limits(max_seconds=0.5))
    assert time.perf_counter() - started < 10  # (the whole read: ~20 s on this machine)
    for raw, expected in (("30", 30.0), ("0", 0.0), ("-1", 600.0), ("inf", 600.0), ("soon", 600.0)):
        monkeypatch.setenv("DEEM_MAX_READ_SECONDS", raw)
        assert Limits.from_env().max_seconds == expected


def test_a_header_past_what_a_preview_reads_is_said_as_such():
    # a 6 MiB header: the preview reads 4 MiB, and said "longer than 8,388,608 characters" (attack round, 8th session)
    text = ("task," + ",".join(f"worker_number_{i}" for i in range(300_000)) + "\nt1," + "1," * 299_999 + "1\n").encode()
    with pytest.raises(DataError, match=r"^h\.csv: the first line does not end within the first 4,194,304 bytes a "
                                        r"preview reads"):
        preview(("h.csv", text))


def test_a_parquet_file_of_many_one_row_groups_reads_in_seconds_and_as_one_group_would():
    # a batch per row group cost ~2.5 ms of per-chunk work each: a 9 MB file of 20,000 one-row groups held the
    # server's one read slot for 57 s (leftover of the eighth session); consecutive groups are now read together
    n = 20_000
    table = pa.table({"task": [f"t{i // 3}" for i in range(n)], "worker": [f"w{i % 30}" for i in range(n)],
                      "label": [str(i % 3) for i in range(n)]})
    many, one = io.BytesIO(), io.BytesIO()
    pq.write_table(table, many, row_group_size=1)
    pq.write_table(table, one)
    assert pq.ParquetFile(io.BytesIO(many.getvalue())).metadata.num_row_groups == n
    started = time.process_time()
    grouped = read_dataset([("groups.parquet", many.getvalue())])
    seconds = time.process_time() - started
    whole = read_dataset([("one.parquet", one.getvalue())])
    pd.testing.assert_frame_equal(grouped.data.to_long(), whole.data.to_long())
    assert grouped.data.n_answers == n and seconds < 10, seconds
    assert preview(("groups.parquet", many.getvalue())).frame.shape[0] > 0


def test_a_parquet_footer_past_the_limit_is_refused_before_it_is_parsed(monkeypatch):
    # pyarrow parses a file's whole metadata in the server's process at ~20x its size: a 119 MiB file of 500,000
    # one-row groups took the server from 525 MB to 2.0 GB at its preview (attack round 16). The limit is lowered
    # here so that a small file is past it
    n = 2_000
    table = pa.table({"task": [f"t{i // 3}" for i in range(n)], "worker": [f"w{i % 30}" for i in range(n)],
                      "label": [str(i % 3) for i in range(n)]})
    many = io.BytesIO()
    pq.write_table(table, many, row_group_size=1)
    footer = int.from_bytes(many.getvalue()[-8:-4], "little")
    assert footer > 256 << 10
    monkeypatch.setattr(tables, "PARQUET_FOOTER_BYTES", 256 << 10, raising=False)
    parsed = []
    monkeypatch.setattr(pq, "ParquetFile", lambda *a, **k: parsed.append(a) or pytest.fail("parsed"))
    for read in (lambda: preview(("groups.parquet", many.getvalue())),
                 lambda: read_dataset([("groups.parquet", many.getvalue())])):
        with pytest.raises(DataError, match=rf"^groups\.parquet: its Parquet metadata is {footer / (1 << 20):,.1f} "
                                            r"MiB, more than the 0.25 MiB this server reads"):
            read()
    assert parsed == []


def _long_form_header(data: bytes) -> bytes:
    """A Parquet file whose metadata writes field 1's header in Thrift's long form (0x05, then the id 1 as a zigzag
    varint, 0x02) instead of the short 0x15: pyarrow reads both alike."""
    length = int.from_bytes(data[-8:-4], "little")
    start = len(data) - 8 - length
    assert data[start] == 0x15
    meta = b"\x05\x02" + data[start + 1:-8]
    return data[:start] + meta + len(meta).to_bytes(4, "little") + b"PAR1"


def test_a_parquet_file_whose_metadata_is_laid_out_otherwise_is_counted_or_refused_before_it_is_parsed(monkeypatch):
    """Attack round 35: the field header in its long form skipped the count (None), so 600,000 columns were parsed
    (1.4 GB, 11 s) before being refused. Now counted in either form; metadata that cannot be counted is refused."""
    plain = io.BytesIO()
    pq.write_table(pa.table({f"c{i}": [1] for i in range(20)}), plain)
    long_form = _long_form_header(plain.getvalue())
    assert pq.read_table(io.BytesIO(long_form)).num_columns == 20  # (pyarrow reads it)
    assert tables._footer_bytes(io.BytesIO(long_form))[1] == 21
    monkeypatch.setattr(tables, "PARQUET_MAX_COLUMNS", 10, raising=False)
    parsed = []
    real = pq.ParquetFile
    monkeypatch.setattr(pq, "ParquetFile", lambda *a, **k: parsed.append(a) or real(*a, **k))
    with pytest.raises(DataError, match=r"^l\.parquet: 20 columns, more than the 10"):
        preview(("l.parquet", long_form))
    odd = bytearray(plain.getvalue())  # the version's header made a struct: not a layout read before parsing
    odd[len(odd) - 8 - int.from_bytes(odd[-8:-4], "little")] = 0x1C
    with pytest.raises(DataError, match=r"^o\.parquet: its Parquet metadata does not begin as Parquet writers lay"):
        preview(("o.parquet", bytes(odd)))
    assert parsed == []


def test_a_parquet_file_of_too_many_columns_is_refused_from_its_metadatas_first_bytes(monkeypatch):
    # 93,665 one-row columns under the footer bound took the preview from 118 to 746 MB in 5.9 s (attack round 17):
    # the columns are counted from the metadata's first bytes (Thrift's schema list) before pyarrow parses it
    for n in (1, 14, 15, 16, 300):  # (a list of 15 or more elements has its size in a varint)
        buffer = io.BytesIO()
        pq.write_table(pa.table({f"c{i}": [1] for i in range(n)}), buffer)
        assert tables._footer_bytes(buffer)[1] == n + 1  # the root and a column each
    wide = io.BytesIO()
    pq.write_table(pa.table({"task": ["t1"], **{f"w{i}": ["a"] for i in range(60)}}), wide)
    monkeypatch.setattr(tables, "PARQUET_MAX_COLUMNS", 50, raising=False)
    parsed = []
    real = pq.ParquetFile
    monkeypatch.setattr(pq, "ParquetFile", lambda *a, **k: parsed.append(a) or real(*a, **k))
    with pytest.raises(DataError, match=r"^w\.parquet: 61 columns, more than the 50 this server reads from a Parquet "
                                        r"file; write the answers in the long layout"):
        preview(("w.parquet", wide.getvalue()))
    assert parsed == []
    monkeypatch.setattr(tables, "PARQUET_MAX_COLUMNS", 61)
    assert preview(("w.parquet", wide.getvalue())).layout == "wide"


def test_a_run_length_encoded_parquet_row_group_is_decoded_a_batch_at_a_time(tmp_path):
    # the metadata's size is the encoded one: 30 million rows of one value are 392 KB with a row group of 351 KB, and
    # the preview decoded the whole row group (2.3 GB in the server; attack round 5). 10 million rows here: the
    # preview took 862 MB before; now it decodes its 20 rows (a read: 250,000 rows at a time)
    n = 10_000_000
    path = tmp_path / "rle.parquet"
    one = pa.array(np.zeros(n, dtype=np.int64))
    pq.write_table(pa.table({"task": one, "worker": one, "label": one}), path, row_group_size=n)
    del one
    assert path.stat().st_size < 400_000 and pq.ParquetFile(path).metadata.num_row_groups == 1
    before, after, out = peak_rss_mb(f"print(F.preview({str(path)!r}).frame.shape)")
    assert "(20, 3)" in out and after - before < 120, (before, after, out)
    # a read of every row costs what 10 million rows cost in any format (the 20 million-row budget bounds it)
    assert read_dataset([str(path)]).data.n_answers == 1  # one task, one worker, one label, 10 million times


@pytest.mark.parametrize("kind", ["string_view", "binary_view", "fixed_size_binary", "json_extension"])
def test_a_parquet_value_type_decoded_row_by_row_is_read_as_a_dictionary_or_refused(tmp_path, kind):
    # only string and large_string were read as dictionaries: the rows of any other text or bytes type were decoded
    # one by one, and a ~2 KB file of one 2 MB value in 1,000 rows took 2.1 GB (attack round 6)
    rows, value = 300, "y" * 1_000_000
    arrays = {"string_view": lambda: pa.array([value] * rows, pa.string_view()),
              "binary_view": lambda: pa.array([value.encode()] * rows, pa.binary_view()),
              "fixed_size_binary": lambda: pa.array([value.encode()] * rows, pa.binary(len(value))),
              "json_extension": lambda: pa.ExtensionArray.from_storage(pa.json_(pa.string()),
                                                                       pa.array([value] * rows))}
    if kind == "json_extension" and not hasattr(pa, "json_"):
        pytest.skip("this pyarrow has no JSON extension type")
    path = tmp_path / f"{kind}.parquet"
    table = pa.table({"task": [f"t{i}" for i in range(rows)], "worker": [f"w{i % 7}" for i in range(rows)],
                      "label": arrays[kind]()})
    pq.write_table(table, path, compression="zstd", row_group_size=rows)
    del table
    assert path.stat().st_size < 10_000
    for call in (f"F.read_dataset([{str(path)!r}])", f"F.preview({str(path)!r})"):
        before, after, out = peak_rss_mb(call)
        assert after - before < 150, (call, before, after, out)  # 300 MB decoded row by row
        if kind != "string_view" or "read_dataset" in call:
            assert "DataError:" in out, out  # bytes: not labels; string_view: one value too long for a label


def test_the_end_mark_as_data_does_not_let_a_chunk_grow_past_its_rows(monkeypatch):
    # a record holding the csv parser's end mark is held back one record; added with the next one it took the batch
    # past its row count, and an '==' test never cut it again: one unbounded chunk (found reading the change)
    sizes = []
    cut = tables.CsvTable._cell_block

    def spy(self, records, start):
        sizes.append(len(records))
        return cut(self, records, start)

    monkeypatch.setattr(tables.CsvTable, "_cell_block", spy)
    monkeypatch.setattr(tables, "CHUNK_CELLS", 3 * 100)  # three rows a chunk under a header of 100 columns
    names = [f"w{j}" for j in range(99)]
    lines = ["task," + ",".join(names), "t0,1", "t1,2", tables._END_MARK] + [f"t{t},1" for t in range(3, 20)]
    data = read_dataset([("wide.csv", ("\n".join(lines) + "\n").encode())]).data
    assert data.n_tasks == 19 and max(sizes) <= 3 and sum(sizes) == 20, sizes


def test_json_records_whose_fields_change_from_one_to_the_next_cost_their_values_not_records_x_fields(tmp_path,
                                                                                                      monkeypatch):
    """Attack round 18: each record of a JSON Lines file adding a field of its own made a table of records x fields
    (568 KB: a server 157 MB -> 3.5 GB for 51 s; 1.16 MB past 6.5 GB). Such a table is refused from its values'
    count, in a fraction of a second; records sharing their fields, or with a few optional ones, read as before."""
    keyed = tmp_path / "keys.json"
    keyed.write_text("".join(f'{{"task": {i}, "worker": "w{i % 7}", "label": "a", "k{i}": 1}}\n' for i in range(10_000)))
    started = time.perf_counter()
    # refused as the records come in, once their table passes 2 M cells and 4 times its values
    expected = (r"^keys\.json: 1,413 records with 1,416 different fields between them would make a table of "
                r"2,000,808 cells for 5,652 values: records whose fields change")
    with pytest.raises(DataError, match=expected):
        read_dataset([keyed])
    preview(keyed)  # (a preview reads its first records: a small table)
    assert time.perf_counter() - started < 10
    before, after, out = peak_rss_mb(f"F.read_dataset([{str(keyed)!r}])")
    assert "DataError: keys.json: 1,413 records with 1,416 different fields" in out and after - before < 150, out
    # a table kept at exactly 16 times its values by 16 groups of fields (attack round 19: a 139 KB gzip took a
    # server to 2.5 GB): past 4 times, refused as it comes in
    groups = tmp_path / "groups.json"
    groups.write_text("".join("{" + ", ".join(f'"g{i % 16}_{j}": 1' for j in range(40)) + "}\n" for i in range(20_000)))
    before, after, out = peak_rss_mb(f"F.read_dataset([{str(groups)!r}])")
    assert "different fields between them would make a table of" in out and after - before < 150, out
    # many fields in one record: refused at DEEM_MAX_COLUMNS as a wide table is
    wide = tmp_path / "wide.json"
    wide.write_text('{"task": 1, "worker": "a", "label": "x", ' + ", ".join(f'"f{j}": 1' for j in range(1_200))
                    + "}\n")
    with pytest.raises(DataError, match=r"^wide\.json: 1,203 columns; at most 1,000 are read \(DEEM_MAX_COLUMNS\)"):
        read_dataset([wide], limits=Limits(max_columns=1_000))
    # optional fields: read, with empty cells where a record lacks one
    records = tmp_path / "records.json"
    rows = [{"task": i, "worker": f"w{i % 3}", "label": "ab"[i % 2], **({"note": f"n{i}"} if i % 5 == 0 else {})}
            for i in range(300)]
    records.write_text("\n".join(pd.Series(rows).map(lambda r: __import__("json").dumps(r))))
    data = read_dataset([records]).data
    assert (data.n_tasks, data.n_workers, data.n_annotations) == (300, 3, 300)
    # and however dense, JSON records past JSON_RECORDS_MAX_CELLS values are refused as they come in (a JSON file is
    # read whole): CSV or Parquet stream
    from deem_core.data.formats import labelstudio

    monkeypatch.setattr(labelstudio, "JSON_RECORDS_MAX_CELLS", 600)
    with pytest.raises(DataError, match=r"^records\.json: more than 600 values in JSON records \(151 records of 4 "
                                        r"fields so far\): a JSON file is read whole.*write it as CSV or Parquet"):
        read_dataset([records])


def test_a_read_of_more_distinct_labels_than_classes_can_be_stops_early(tmp_path, monkeypatch):
    """Attack round 37: a 185 MB Parquet of 20 million answers with 4 million distinct labels, inside every read limit,
    read in 160 s to a 9.3 GB peak and then held the page's thread 58 s for its summary. The distinct labels are
    counted chunk by chunk and the read stops past MAX_DISTINCT_LABELS (the count itself bounded)."""
    from deem_core.data.formats import dialects  # noqa: PLC0415

    assert dialects.MAX_DISTINCT_LABELS == 100_000
    rows = 2_000_000
    frame = pd.DataFrame({"task": np.arange(rows) // 5, "worker": np.arange(rows) % 40_000,
                          "label": np.random.default_rng(0).integers(0, 400_000, rows)})
    path = tmp_path / "many.parquet"
    frame.to_parquet(path, index=False)
    started = time.perf_counter()
    with pytest.raises(DataError, match=r"more than 100,000 distinct labels by row \d+"):
        read_dataset(path)
    assert time.perf_counter() - started < 8.0  # (read whole: 8.4 s and 711 MB here, then the summary)
    # the count over chunks and files: two files of 60 labels each, 100 in all, past a cap of 80
    monkeypatch.setattr(dialects, "MAX_DISTINCT_LABELS", 80)
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("task,worker,label\n" + "".join(f"t{i},w{i % 3},c{i}\n" for i in range(60)))
    second.write_text("task,worker,label\n" + "".join(f"u{i},w{i % 3},c{i + 40}\n" for i in range(60)))
    assert read_dataset([first]).data.n_classes == 60
    with pytest.raises(DataError, match="more than 80 distinct labels"):
        read_dataset([first, second])
    monkeypatch.setattr(dialects, "MAX_DISTINCT_LABELS", 100)
    assert read_dataset([first, second]).data.n_classes == 100  # (at the cap: read)


def test_more_soft_label_columns_than_classes_are_refused_before_reading():
    """Attack round 38: soft labels skip the distinct-label count (each prob_ column is a class): a 154 KB gzip of
    2,000 rows and 20,000 prob_ columns read for 44 s to a 2.8 GB peak as 20,000 classes. More columns than DEEM's
    class limit are refused from the header; that many still read."""
    from deem_core.data.formats import dialects
    from deem_core.model.sizes import MAX_CLASSES

    assert dialects.MAX_SOFT_CLASSES == MAX_CLASSES

    def soft_file(k: int) -> bytes:
        header = "task,worker," + ",".join(f"prob_c{j}" for j in range(k))
        rows = [f"{t},w{w}," + ",".join("1" if j == (t + w) % k else "0" for j in range(k))
                for t in range(4) for w in range(3)]
        return ("\n".join([header, *rows]) + "\n").encode()

    assert read_dataset(("soft.csv", soft_file(MAX_CLASSES))).data.n_classes == MAX_CLASSES
    started = time.perf_counter()
    with pytest.raises(DataError, match=f"soft.csv: {MAX_CLASSES + 1:,} soft-label columns \\(prob_<class>\\), one "
                                        f"per class: DEEM handles at most {MAX_CLASSES:,} classes"):
        read_dataset(("soft.csv", soft_file(MAX_CLASSES + 1)))
    assert time.perf_counter() - started < 5


_READ_IN_A_PROCESS = textwrap.dedent("""
    import re, sys
    from deem_core.data.formats import read_dataset
    def peak():  # (this process's own: ru_maxrss keeps the forking test process's peak across exec)
        with open("/proc/self/status") as status:
            return int(re.search(r"VmHWM:\\s*(\\d+)", status.read()).group(1)) / 1024
    before = peak()
    try:
        read = read_dataset(sys.argv[1])
        said = f"read {read.data.n_tasks}"
    except Exception as exc:
        said = f"{type(exc).__name__}: {exc}"
    print(f"{peak() - before:.0f}|{said}")
""")


def _read_in_a_process(path: Path, **env: str) -> tuple[float, str]:
    """(peak RSS growth in MiB, what the read said) of ``read_dataset(path)`` in a fresh process."""
    import os  # noqa: PLC0415

    done = subprocess.run([sys.executable, "-c", _READ_IN_A_PROCESS, str(path)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **env}, check=True)
    grown, said = done.stdout.strip().splitlines()[-1].split("|", 1)
    return float(grown), said


def test_a_read_that_grows_memory_past_its_allowance_stops(tmp_path):
    """Attack round 38: 95,000 distinct task ids of 9,999 characters (a 490 KB Parquet; every value, byte, row and
    row-group limit kept) took a server to a 12 GB peak, 2 million distinct tasks and workers (19 MB) to 2.8 GB.
    The read looks at the process's memory as each chunk comes in and stops past its allowance (DEEM_MAX_READ_MEMORY
    at most); a CSV of long rows comes in chunks of bounded text instead of one."""
    from deem_core.data.formats.sources import sources_of  # noqa: PLC0415
    from deem_core.data.formats.tables import CHUNK_TEXT_CHARS  # noqa: PLC0415

    rows, pad = 12_000, "x" * 8_990
    path = tmp_path / "long.parquet"
    with pq.ParquetWriter(path, pa.schema([("task", pa.string()), ("worker", pa.string()), ("label", pa.string())]),
                          compression="zstd") as writer:
        for start in range(0, rows, 2_000):
            ids = [f"{i:09d}{pad}" for i in range(start, start + 2_000)]
            writer.write_table(pa.table({"task": ids, "worker": [f"w{i % 7}" for i in range(2_000)],
                                         "label": ["ab"[i % 2] for i in range(2_000)]}))
    assert path.stat().st_size < 1_000_000  # (108 MB of ids)
    grown, said = _read_in_a_process(path, DEEM_MAX_READ_MEMORY="256M")
    assert said.startswith(f"DataError: {path.name}: reading it took more than 256 MiB of memory by answer "), said
    assert grown < 3 * 256 + 200, grown
    unbounded, said = _read_in_a_process(path, DEEM_MAX_READ_MEMORY="0")
    assert said == f"read {rows}" and unbounded > grown, (unbounded, said)
    # a CSV of the same rows comes in chunks of about CHUNK_TEXT_CHARS characters (it came as one chunk of all)
    csv_path = tmp_path / "long.csv"
    pq.read_table(path).to_pandas().to_csv(csv_path, index=False)
    sizes = [int(chunk["task"].astype(str).str.len().sum())
             for chunk in tables.CsvTable(sources_of(csv_path)[0], Limits()).chunks()]
    assert len(sizes) >= 5 and max(sizes[1:]) <= 1.2 * CHUNK_TEXT_CHARS, sizes


_READS_IN_A_THREAD = textwrap.dedent("""
    import sys, threading
    from deem_core.data.formats import read_dataset
    from deem_core.data.formats.sources import resident_bytes
    def read():  # (a page thread: glibc gives each thread an arena of its own, and kept what it freed)
        try:
            read_dataset(sys.argv[1])
        except Exception as exc:
            said.append(type(exc).__name__)
    said = []
    thread = threading.Thread(target=read); thread.start(); thread.join()  # (the imports and arenas settle)
    start = resident_bytes()
    for _ in range(3):
        thread = threading.Thread(target=read); thread.start(); thread.join()
    print(f"{(resident_bytes() - start) / 2**20:.0f}|{','.join(said)}")
""")


def test_reads_refused_for_memory_give_it_back(tmp_path):
    """Attack round 39: every read refused for its memory left the process about 500 MiB larger (glibc kept what the
    read freed in its thread's arena), and the next read's allowance counted from there: a server sat at 0.7-1.4 GB
    between refused uploads, and after 4 million answers read and summarised a session held twice their bytes. A
    read hands what it freed back to the system as it returns or refuses."""
    import os  # noqa: PLC0415

    path = tmp_path / "long.csv"
    with path.open("w") as handle:
        handle.write("task,worker,label\n")
        for i in range(12_000):
            handle.write(f"{i:09d}{'x' * 8_990},w{i % 7},{'ab'[i % 2]}\n")
    done = subprocess.run([sys.executable, "-c", _READS_IN_A_THREAD, str(path)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "DEEM_MAX_READ_MEMORY": "256M"}, check=True)
    kept, said = done.stdout.strip().splitlines()[-1].split("|", 1)
    assert said == ",".join(["DataError"] * 4), done.stdout
    assert float(kept) < 60, kept  # (three refused reads each kept 200-500 MiB)


def test_an_mturk_batch_of_very_many_input_columns_checks_its_task_ids_in_one_pass(tmp_path):
    """Attack round 43: a 13 MB MTurk batch of 100,000 Input.* columns and 60 rows held the server's one read slot
    for 37 s of its 39, in the check that a task id comes with the same other inputs (a column at a time). The rows
    are hashed in one pass over their cells; the check still finds an id that comes with other inputs."""
    columns = 99_990
    header = "HITId,WorkerId,AssignmentStatus,Input.item_id," + ",".join(f"Input.c{j}" for j in range(columns))
    rows = []
    for t in range(20):
        inputs = f"v{t}," + ",".join("x" for _ in range(columns - 1))  # (one-letter cells: Python keeps one of each)
        rows += [f"H{t},W{w},Approved,item{t % 19},{inputs},{'yes' if (t % 19 + w) % 2 else 'no'}" for w in range(3)]
    path = tmp_path / "Batch_1_batch_results.csv"
    path.write_text(header + ",Answer.label\n" + "\n".join(rows) + "\n")
    started = time.perf_counter()
    reading = read_dataset(path)
    assert time.perf_counter() - started < 10  # (a column at a time: 38 s here for 100,000 columns and 60 rows)
    assert reading.data.n_tasks == 19  # item0 stands for H0 and H19, whose inputs differ: said
    assert any("'item0' comes with different" in note for note in reading.data.warnings), reading.data.warnings
    # equal rows hash alike, rows differing in one cell or in the order of two cells do not
    from deem_core.data.formats.dialects import _row_hashes  # noqa: PLC0415

    block = pd.DataFrame([["a", "b", "c"], ["a", "b", "c"], ["a", "b", "d"], ["b", "a", "c"], ["a", "b", None]])
    hashes = _row_hashes(block)
    assert hashes[0] == hashes[1] and len(set(hashes[[0, 2, 3, 4]].tolist())) == 4
    assert _row_hashes(pd.DataFrame(index=range(3))).tolist() == [0, 0, 0]


def test_a_label_studio_preview_builds_only_the_rows_it_shows(tmp_path, monkeypatch):
    """Left at attack round 48: a task of 950,000 empty annotations (a 1.9 MB export) made a preview row of each, for
    the 60 shown: +384 MB of the server for a moment (+131 MB with this bound, the JSON's own parse)."""
    import deem_core.data.formats.reading as reading

    made = []
    real = reading.worker_of
    monkeypatch.setattr(reading, "worker_of", lambda entry, prediction: made.append(1) or real(entry, prediction))
    ok = ('{"completed_by": %d, "result": [{"from_name": "s", "to_name": "t", "type": "choices", '
          '"value": {"choices": ["%s"]}}]}')
    first = '{"id": 1, "data": {"text": "a"}, "annotations": [' + ",".join(ok % (i, "ab"[i % 2]) for i in range(4)) + "]}"
    path = tmp_path / "export.json"
    path.write_text("[" + first + ', {"id": 2, "data": {"text": "b"}, "annotations": [' + ",".join(["{}"] * 50_000)
                    + "]}]")
    shown = reading.preview(path, nrows=20)
    assert shown.layout == "label_studio" and len(shown.frame) == 60
    assert len(made) == 60, len(made)  # (50,004 without the bound)


def test_a_truth_file_of_many_repeated_rows_is_merged_before_its_ids_become_objects(tmp_path):
    """A 947 KB gzip of 19 million rows over 1,000 tasks took a server from 0.11 to 3.8 GB while its gold labels were
    merged (attack round 63): repeated rows are now dropped on their codes. Here 1 million rows: Python-level
    allocations below 100 bytes a row (64 here, about 200 before), the same labels, a clash still refused."""
    import gzip
    import tracemalloc

    from deem_core.data.formats import read_truth
    rows = "".join(f"t{i},c{i % 3}\n" for i in range(1000))
    path = tmp_path / "gold.csv.gz"
    path.write_bytes(gzip.compress(("task,truth\n" + rows * 1000).encode()))
    tracemalloc.start()
    try:
        truth = read_truth(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100 * 1_000_000, f"{peak / 1e6:.0f} MB for 1 million rows"
    assert len(truth) == 1000 and truth["t7"] == "c1" and list(truth.index[:3]) == ["t0", "t1", "t2"]
    path.write_bytes(gzip.compress(("task,truth\n" + rows * 50 + "t5,c0\n").encode()))
    with pytest.raises(DataError, match="t5.*different truths"):
        read_truth(path)


def test_a_read_refused_for_memory_before_any_answer_says_the_row_it_reached(monkeypatch):
    """A truth file makes rows, not answers: its refusal said "by answer 0" (benchmarks/truth_memory.py)."""
    from deem_core.data.formats import sources  # noqa: PLC0415

    sizes = iter([1_000, 1_000 + (600 << 20)])
    monkeypatch.setattr(sources, "resident_bytes", lambda: next(sizes))
    budget = sources.Budget(Limits(max_growth=4 << 30))
    budget.add_rows(4_501, "gold.csv")
    with pytest.raises(DataError, match=r"gold\.csv: reading it took more than 512 MiB of memory by row 4,501 "):
        budget.check_memory("gold.csv")
