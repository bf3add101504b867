"""Generate the bad-input corpus (issue 6) into a folder: nothing here is a committed blob.

Every case is a :class:`Case`: the files to write, and what the library and the ``deem aggregate``
command must do with them: refuse with a specific message (``expect="error"``), or load them with the
expected content (``expect="ok"``, then ``DEEM(epochs=1).fit`` must succeed or refuse as ``fit_error``
says). ``corpus_checks.py`` runs the checks; ``report.py`` prints the table of outcomes.

    python tests/bad_inputs/make_corpus.py OUT_DIR [--slow]     # write the files to look at them
"""

from __future__ import annotations

import codecs
import gzip
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

# the small data set most "ok" cases carry: 4 tasks x 3 annotators, classes cat/dog
BASE = [
    (1, "a", "cat"), (1, "b", "cat"), (1, "c", "dog"),
    (2, "a", "dog"), (2, "b", "dog"), (2, "c", "dog"),
    (3, "a", "cat"), (3, "b", "dog"), (3, "c", "cat"),
    (4, "a", "dog"), (4, "b", "cat"), (4, "c", "dog"),
]
BASE_TRIPLES = frozenset(BASE)


def _csv(rows, header=("task", "worker", "label"), sep=",", newline="\n") -> str:
    lines = [sep.join(str(h) for h in header)] + [sep.join(str(v) for v in row) for row in rows]
    return newline.join(lines) + newline


BASE_CSV = _csv(BASE)


@dataclass
class Case:
    name: str
    description: str
    files: dict[str, bytes] = field(default_factory=dict)  # file name -> content
    expect: str = "ok"  # "ok" or "error"
    message: str | None = None  # regex: the library's DataError and the CLI's one error line (error cases)
    triples: frozenset | None = None  # the exact (task, worker, label) answers expected (ok cases)
    n_tasks: int | None = None
    n_workers: int | None = None
    classes: list | None = None  # the exact class vocabulary expected
    warnings: list[str] = field(default_factory=list)  # regexes, each must match one warning
    fit_error: str | None = None  # regex: DEEM.fit must refuse with this DataError (loader accepts)
    load_kwargs: dict[str, Any] = field(default_factory=dict)
    cli_args: list[str] = field(default_factory=list)
    frame: pd.DataFrame | None = None  # a library-only DataFrame source (no file, no CLI)
    cli_expect: str | None = None  # overrides expect for the CLI when the file differs from the frame
    cli_message: str | None = None
    output_contains: list[str] = field(default_factory=list)  # raw substrings of the CLI's output CSV
    predicted: dict | None = None  # task -> label DEEM(epochs=1) must give (only where unambiguous)
    slow: bool = False
    writer: Callable[[Path], list[Path]] | None = None  # large files are streamed to disk


def _latin1() -> bytes:
    rows = [(1, "José", "café"), (1, "Zoë", "thé"), (2, "José", "thé"), (2, "Zoë", "thé")]
    return _csv(rows).encode("latin-1")


def _quoted() -> bytes:
    return (
        'task,worker,label\n'
        '1,a,"cat, black"\n'
        '1,"b, the second","cat, black"\n'
        '2,a,"dog\nwith a newline"\n'
        '2,"b, the second","dog\nwith a newline"\n'
        '3,a,"say ""hi"""\n'
        '3,"b, the second","cat, black"\n'
    ).encode()


QUOTED_TRIPLES = frozenset({
    (1, "a", "cat, black"), (1, "b, the second", "cat, black"),
    (2, "a", "dog\nwith a newline"), (2, "b, the second", "dog\nwith a newline"),
    (3, "a", 'say "hi"'), (3, "b, the second", "cat, black"),
})

INJECTION = [
    ("=HYPERLINK(\"http://x\")", "@evil", "+cmd|' /C calc'!A0"),
    ("=HYPERLINK(\"http://x\")", "-worker", "-2+3"),
    ("\tTAB", "@evil", "-2+3"),
    ("\tTAB", "-worker", "-2+3"),
]


def _injection_csv() -> bytes:
    lines = ["task,worker,label"]
    for row in INJECTION:
        lines.append(",".join('"' + str(v).replace('"', '""') + '"' for v in row))
    return ("\n".join(lines) + "\n").encode()


def _classes_10000() -> bytes:
    rows = []
    for t in range(10_000):
        rows.append((t, "a", f"c{t}"))
        rows.append((t, "b", f"c{(t + 1) % 10_000}"))
    return _csv(rows).encode()


def _garbage() -> bytes:
    rng = random.Random(6)
    return bytes(rng.randrange(256) for _ in range(4096))


def _garbage_no_nul() -> bytes:
    rng = random.Random(7)
    return bytes(rng.choice([*range(1, 9), *range(14, 32), *range(127, 256)]) for _ in range(4096))


LARGE_TASKS = 420_000
LARGE_WORKERS = 20


def write_large(directory: Path) -> list[Path]:
    """About 200 MB of long CSV: 420,000 tasks x 20 annotators, classes 0-4 (seeded)."""
    import numpy as np  # noqa: PLC0415

    path = directory / "large_200mb.csv"
    rng = np.random.default_rng(0)
    workers = np.array([f"annotator_{w:02d}" for w in range(LARGE_WORKERS)])
    chunk = 50_000
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("task,worker,label\n")
        for start in range(0, LARGE_TASKS, chunk):
            tasks = np.arange(start, min(start + chunk, LARGE_TASKS))
            truth = rng.integers(0, 5, size=len(tasks))
            labels = np.where(rng.random((len(tasks), LARGE_WORKERS)) < 0.7, truth[:, None],
                              rng.integers(0, 5, size=(len(tasks), LARGE_WORKERS)))
            frame = pd.DataFrame({
                "task": np.repeat(tasks, LARGE_WORKERS) + 10_000_000,
                "worker": np.tile(workers, len(tasks)),
                "label": labels.ravel(),
            })
            frame.to_csv(handle, header=False, index=False)
    return [path]


def cases() -> list[Case]:
    base_ok = dict(triples=BASE_TRIPLES, n_tasks=4, n_workers=3, classes=["cat", "dog"])
    mixed = pd.DataFrame({"task": [1, 1, 2, 2], "worker": ["a", "b", "a", "b"],
                          "label": pd.Series([1, "1", 2, 2], dtype=object)})
    return [
        Case("empty", "empty file (0 bytes)", {"empty.csv": b""}, "error", r"^empty\.csv: the file is empty$"),
        Case("whitespace_only", "only blank lines", {"blank.csv": b"\n  \n\r\n"}, "error",
             r"^blank\.csv: the file is empty$"),
        Case("header_only", "header line and nothing else", {"header.csv": b"task,worker,label\n"}, "error",
             r"^header\.csv: has a header \(task, worker, label\) but no rows of annotations$"),
        Case("semicolon", "';' as the delimiter", {"semi.csv": _csv(BASE, sep=";").encode()}, **base_ok),
        Case("tab", "tab as the delimiter (.tsv)", {"tabs.tsv": _csv(BASE, sep="\t").encode()}, **base_ok),
        Case("crlf", "Windows line ends", {"crlf.csv": _csv(BASE, newline="\r\n").encode()}, **base_ok),
        Case("bom", "UTF-8 with a byte-order mark", {"bom.csv": codecs.BOM_UTF8 + BASE_CSV.encode()}, **base_ok),
        Case("utf16", "UTF-16 with a BOM (Excel 'Unicode text')",
             {"utf16.csv": _csv(BASE, sep="\t").encode("utf-16")}, **base_ok),
        Case("latin1", "Latin-1 text (accented names)", {"latin1.csv": _latin1()},
             triples=frozenset({(1, "José", "café"), (1, "Zoë", "thé"), (2, "José", "thé"), (2, "Zoë", "thé")}),
             classes=["café", "thé"],
             warnings=[r"^latin1\.csv: 4 lines are not valid UTF-8 \(lines 2, 3, 4, 5\); read as Windows-1252"]),
        Case("quoted", "quoted fields with commas, quotes and newlines", {"quoted.csv": _quoted()},
             triples=QUOTED_TRIPLES, n_tasks=3, n_workers=2),
        Case("gzip", ".csv.gz", {"base.csv.gz": gzip.compress(BASE_CSV.encode())}, **base_ok),
        Case("gzip_misnamed", "gzip content named .csv (detected by magic bytes)",
             {"really_gz.csv": gzip.compress(BASE_CSV.encode())}, **base_ok),
        Case("gzip_corrupt", "truncated gzip", {"broken.csv.gz": gzip.compress(BASE_CSV.encode())[:30]}, "error",
             r"^broken\.csv\.gz: looks like a gzip file but cannot be decompressed"),
        Case("missing_label_column", "long file without a label column",
             {"nolabel.csv": b"task,worker\n1,a\n2,b\n"}, "error",
             r"^nolabel\.csv: missing column\(s\) 'label' for the long layout \(task, worker, label\); "
             r"found 'task', 'worker'$"),
        Case("missing_task_column", "no task column", {"notask.csv": b"worker,label\na,cat\nb,dog\n"}, "error",
             r"^notask\.csv: no task column among 'worker', 'label'; name it 'task'"),
        Case("no_header", "data on the first line", {"noheader.csv": _csv(BASE[1:], header=BASE[0]).encode()},
             "error", r"^noheader\.csv: the first line \('1', 'a', 'cat'\) looks like data, not a header"),
        Case("duplicate_header", "two columns with one name", {"dupcol.csv": b"task,label,label\n1,a,b\n"},
             "error", r"^dupcol\.csv: column name 'label' appears 2 times in the header"),
        Case("extra_columns", "extra columns (timestamp, notes)",
             {"extra.csv": _csv([r + ("2024-01-01", "ok") for r in BASE],
                                header=("task", "worker", "label", "timestamp", "notes")).encode()},
             warnings=[r"^extra\.csv: ignored columns 'timestamp', 'notes'$"], **base_ok),
        Case("trailing_delimiter", "every line ends with a delimiter (empty unnamed column)",
             {"trailing.csv": "".join(line + ",\n" for line in BASE_CSV.splitlines()).encode()}, **base_ok),
        Case("ragged_row", "a row with more fields than the header",
             {"ragged.csv": (BASE_CSV + "5,a,cat,extra\n6,b,dog\n").encode()}, "error",
             r"^ragged\.csv: line 14 has 4 fields but the header has 3; put values that contain a comma in "
             r"double quotes$"),
        Case("unclosed_quote", "a quoted field that never closes",
             {"unclosed.csv": (BASE_CSV + '5,a,"cat\n6,b,dog\n').encode()}, "error",
             r"^unclosed\.csv: line 14: a quoted field is never closed"),
        Case("blank_lines", "blank lines before, inside and after the data",
             {"blanks.csv": ("\n\n" + BASE_CSV.replace("2,a,dog\n", "\n2,a,dog\n  \n,,\n") + "\n\n").encode()},
             warnings=[r"^blanks\.csv: skipped 5 blank lines$"], **base_ok),
        Case("single_class", "every answer is the same class",
             {"oneclass.csv": _csv([(t, w, "cat") for t, w, _ in BASE]).encode()},
             n_tasks=4, n_workers=3, classes=["cat"],
             fit_error=r"^oneclass\.csv: only one class \('cat'\) was given: there is nothing to aggregate"),
        Case("single_annotator", "one annotator only",
             {"alone.csv": _csv([r for r in BASE if r[1] == "a"]).encode()},
             triples=frozenset(r for r in BASE if r[1] == "a"), n_workers=1,
             predicted={1: "cat", 2: "dog", 3: "cat", 4: "dog"}),
        Case("one_task", "a single task", {"onetask.csv": _csv([(1, "a", "cat"), (1, "b", "cat"),
                                                                   (1, "c", "dog")]).encode()},
             n_tasks=1, n_workers=3, classes=["cat", "dog"], predicted={1: "cat"}),
        Case("duplicate_rows", "identical rows repeated",
             {"dups.csv": _csv(BASE + BASE[:3] + BASE[:1]).encode()},
             warnings=[r"^dups\.csv: removed 4 repeated answers \(the same worker, task and label again; one of each is kept\)$"], **base_ok),
        Case("conflicting_duplicates", "one annotator gives one task two labels",
             {"conflict.csv": _csv(BASE + [(1, "a", "dog")]).encode()}, "error",
             r"^conflict\.csv: 1 \(task, worker\) pair has conflicting labels, e\.g\. task 1 by worker 'a': "
             r"\['cat', 'dog'\]"),
        Case("conflicting_duplicates_last", "the same with --on-conflict last",
             {"conflict.csv": _csv(BASE + [(1, "a", "dog")]).encode()},
             triples=(BASE_TRIPLES - {(1, "a", "cat")}) | {(1, "a", "dog")},
             load_kwargs={"on_conflict": "last"}, cli_args=["--on-conflict", "last"],
             warnings=[r"^conflict\.csv: 1 conflicting \(task, worker\) pair resolved by keeping the last"]),
        Case("mixed_types", "labels 1 (int) and '1' (str) in an object DataFrame; the CSV has no types",
             {"mixed.csv": b'task,worker,label\n1,a,1\n1,b,"1"\n2,a,2\n2,b,2\n'}, "error",
             r"^DataFrame: column 'label' mixes value types that print the same: 1 \(int\) and '1' \(str\)",
             frame=mixed, cli_expect="ok", triples=frozenset({(1, "a", 1), (1, "b", 1), (2, "a", 2), (2, "b", 2)})),
        Case("empty_labels", "empty, NaN and null labels",
             {"holes.csv": (BASE_CSV + "5,a,\n5,b,NaN\n6,c,null\n").encode()},
             warnings=[r"^holes\.csv: dropped 3 answers with a missing label \(empty or NaN, null; first on line 14\); "
                       r"2 tasks had no other answer and are left out; keep such labels"], **base_ok),
        Case("empty_task", "an answer without a task id", {"notaskid.csv": (BASE_CSV + ",a,cat\n").encode()},
             "error", r"^notaskid\.csv: line 14: empty task \(column 'task'\); 1 row in all$"),
        Case("all_labels_empty", "every label empty", {"nolabels.csv": b"task,worker,label\n1,a,\n2,b,\n"},
             "error", r"^nolabels\.csv: no annotations \(every label is empty\)$"),
        Case("leading_zeros", "task ids 01 and 1 are different tasks",
             {"zeros.csv": b"task,worker,label\n01,a,cat\n1,a,dog\n01,b,cat\n1,b,dog\n"},
             triples=frozenset({("01", "a", "cat"), ("1", "a", "dog"), ("01", "b", "cat"), ("1", "b", "dog")})),
        Case("wide", "wide layout: task + one column per annotator",
             {"wide.csv": b"task,a,b,c\n1,cat,cat,dog\n2,dog,dog,dog\n3,cat,dog,cat\n4,dog,cat,dog\n"}, **base_ok),
        Case("wide_empty_columns", "wide file with an all-empty worker column and holes",
             {"wide_holes.csv": b"task,a,b,c,d\n1,cat,cat,dog,\n2,dog,dog,dog,\n3,cat,dog,cat,\n4,dog,cat,dog,\n"
                                b"5,,,,\n"},
             warnings=[r"^wide_holes\.csv: ignored 1 worker column with no labels: 'd'$"], **base_ok),
        Case("wide_all_empty", "wide file whose worker columns are all empty",
             {"wide_empty.csv": b"task,a,b\n1,,\n2,,\n"}, "error",
             r"^wide_empty\.csv: no annotations \(every worker column is empty\)$"),
        Case("per_annotator", "one file per annotator (task,label)",
             {f"{w}.csv": _csv([(t, lab) for t, ww, lab in BASE if ww == w], header=("task", "label")).encode()
              for w in "abc"}, **base_ok),
        Case("binary_garbage", "random bytes", {"garbage.csv": _garbage()}, "error",
             r"^garbage\.csv: does not look like CSV text"),
        Case("binary_no_nul", "random control and high bytes, no NUL", {"noise.csv": _garbage_no_nul()}, "error",
             r"^noise\.csv: does not look like CSV text \(\d+ control characters"),
        Case("excel", "an .xlsx workbook renamed .csv", {"book.csv": b"PK\x03\x04" + bytes(200)}, "error",
             r"^book\.csv: is a ZIP archive or an Excel workbook \(\.xlsx\), not CSV text"),
        Case("single_column", "one column (delimiter not recognised)", {"one.csv": b"task worker label\n1 a cat\n"},
             "error", r"^one\.csv: found a single column \('task worker label'\)"),
        Case("classes_10000", "10,000 classes", {"many.csv": _classes_10000()},
             n_tasks=10_000, n_workers=2,
             fit_error=r"^many\.csv: 10,000 classes is more than DEEM handles \(at most 1,000\)"),
        Case("csv_injection", "formula-like task, annotator and label names", {"inject.csv": _injection_csv()},
             triples=frozenset(INJECTION), classes=["+cmd|' /C calc'!A0", "-2+3"],
             output_contains=["'=HYPERLINK(\"\"http://x\"\")", "'\tTAB", "'-2+3"]),
        *reader_cases(),
        Case("large_200mb", "a 200 MB long CSV (420,000 tasks x 20 annotators, 8.4 M rows)", writer=write_large,
             n_tasks=LARGE_TASKS, n_workers=LARGE_WORKERS, classes=[0, 1, 2, 3, 4], slow=True),
    ]


# ---------------------------------------------------------------------------------------------- issue 14 (readers)
def gzip_bomb(unit: bytes, expanded: int, header: bytes = b"task,worker,label\n", tail: bytes = b"") -> bytes:
    """A gzip file expanding to about ``expanded`` bytes, built small: one 8 MiB member repeated (deflate
    expands ~1000 times at most, so 1 GiB takes ~1 MB); it is only ever expanded while a reader streams it."""
    block = unit * max(1, (8 << 20) // len(unit))
    member = gzip.compress(block, compresslevel=9)
    return gzip.compress(header) + member * max(1, expanded // len(block)) + (gzip.compress(tail) if tail else b"")


def write_gzip_bomb(path: Path, unit: bytes, expanded: int, header: bytes = b"task,worker,label\n",
                    tail: bytes = b"") -> Path:
    """The same, streamed to disk member by member (never held whole, never written expanded)."""
    block = unit * max(1, (8 << 20) // len(unit))
    member = gzip.compress(block, compresslevel=9)
    with path.open("wb") as handle:
        handle.write(gzip.compress(header))
        for _ in range(max(1, expanded // len(block))):
            handle.write(member)
        if tail:
            handle.write(gzip.compress(tail))
    return path


LS_TASK = (b'{"id": 1, "data": {"text": "t"}, "annotations": [{"completed_by": 1, "result": [{"from_name": "s", '
           b'"to_name": "t", "type": "choices", "value": {"choices": ["a"]}}]}]}')


def _parquet_rows(n_rows: int) -> bytes:
    """A Parquet file of ``n_rows`` identical answers: kilobytes on disk (run-length encoded)."""
    import io  # noqa: PLC0415

    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    group = 500_000
    table = pa.table({"task": pa.array([1] * group, pa.int64()), "worker": ["a"] * group, "label": ["x"] * group})
    buffer = io.BytesIO()
    with pq.ParquetWriter(buffer, table.schema) as writer:
        for _ in range(max(1, n_rows // group)):
            writer.write_table(table, row_group_size=group)
    return buffer.getvalue()


def _parquet_dictionary(value_chars: int, n_rows: int) -> bytes:
    """A Parquet file whose label column points every row at one dictionary value of ``value_chars`` characters:
    kilobytes on disk, ``value_chars x n_rows`` once decoded row by row."""
    import io  # noqa: PLC0415

    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    label = pa.DictionaryArray.from_arrays(pa.array([0] * n_rows, pa.int32()), pa.array(["x" * value_chars]))
    table = pa.table({"task": pa.array(range(n_rows), pa.int64()), "worker": ["a"] * n_rows, "label": label})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def _json_deep(depth: int) -> bytes:
    """A Label Studio task whose result is nested ``depth`` lists deep."""
    return (b'[{"id": 1, "data": {"text": "t"}, "annotations": [{"completed_by": 1, "result": '
            + b"[" * depth + b"]" * depth + b"}]}]")


def _json_many_values(n_values: int) -> bytes:
    """A .json.gz Label Studio task carrying ``n_values`` empty objects (3 bytes each, ~60 in memory)."""
    head = LS_TASK[:-1] + b', "junk": ['
    return gzip.compress(b"[" + head + b",".join([b"{}"] * n_values) + b"]}]")


def _mixed_encoding() -> bytes:
    rows = [f"{t},w{t % 3},caf\u00e9" for t in range(150)]
    return ("task,worker,label\n" + "\n".join(rows) + "\n").encode("utf-8") + "150,w1,th\u00e9\n".encode("cp1252")


MIXED_TRIPLES = frozenset({(t, f"w{t % 3}", "café") for t in range(150)} | {(150, "w1", "thé")})
MISSING_ROWS = [(1, "a", "None"), (1, "b", "null"), (2, "a", "NULL"), (2, "b", "NaN"), (3, "a", "nan"), (3, "b", "NAN"),
                (4, "a", "<NA>"), (4, "b", "none"), (5, "a", "NONE"), (5, "b", "NA"), (6, "a", "N/A"), (6, "b", "n/a"),
                (7, "a", "cat"), (7, "b", "dog"), (8, "a", "cat"), (8, "b", "cat")]


def reader_cases() -> list[Case]:
    """The reader items of issue 14: resource limits (bombs), encodings, repeated headers, missing spellings,
    a file name with a newline; and the platforms' exports gone wrong (issue 17)."""
    from deem_core.data.formats import Limits  # noqa: PLC0415

    small = {"limits": Limits(max_bytes=8 << 20)}
    rows_limit = {"limits": Limits(max_rows=100_000)}
    wide_row = b"1,a,cat," + b"w" * 90 + b"\n"
    return [
        Case("bomb_bytes", "a .csv.gz of 0.3 MB expanding to 256 MiB (limit 8 MiB)",
             {"bomb.csv.gz": gzip_bomb(wide_row, 256 << 20, header=b"task,worker,label,comment\n")}, "error",
             r"^bomb\.csv\.gz: holds more than 8 MiB once decompressed, the input limit; raise it with "
             r"--max-input-bytes \(DEEM_MAX_INPUT_BYTES\)", load_kwargs=small, cli_args=["--max-input-bytes", "8M"]),
        Case("bomb_rows", "a .csv.gz of 33 million short rows (limit 100,000 rows)",
             {"rows.csv.gz": gzip_bomb(b"1,a,cat\n", 256 << 20)}, "error",
             r"^rows\.csv\.gz: holds more than 100,000 rows, the input limit; raise it with --max-input-rows",
             load_kwargs=rows_limit, cli_args=["--max-input-rows", "100000"]),
        Case("bomb_line", "one line of 128 MiB (a single field, no newline)",
             {"line.csv.gz": gzip_bomb(b"x" * 4096, 128 << 20, header=b"task,worker,label\n1,a,")}, "error",
             r"^line\.csv\.gz: line 2 is longer than 64 MiB; is this a text file of annotations\?$"),
        Case("bomb_quote", "a quote never closed before 128 MiB of lines",
             {"quote.csv.gz": gzip_bomb(b"x\n" * 2048, 128 << 20, header=b'task,worker,label\n1,a,"')}, "error",
             r"^quote\.csv\.gz: a quoted field that starts on line 2 runs on for more than 64 MiB"),
        Case("bomb_json", "a Label Studio .json.gz of 800,000 tasks (limit 100,000 rows)",
             {"tasks.json.gz": gzip.compress(b"[") + gzip.compress((LS_TASK + b",") * 20_000) * 40
              + gzip.compress(LS_TASK + b"]")}, "error",
             r"^tasks\.json\.gz: holds more than 100,000 rows, the input limit", load_kwargs=rows_limit,
             cli_args=["--max-input-rows", "100000"]),
        Case("bomb_parquet", "a Parquet file of 2 million rows in a few KB (limit 100,000 rows)",
             {"rows.parquet": _parquet_rows(2_000_000)}, "error",
             r"^rows\.parquet: holds more than 100,000 rows, the input limit", load_kwargs=rows_limit,
             cli_args=["--max-input-rows", "100000"]),
        Case("parquet_dictionary_bomb", "a Parquet file of 20,000 rows pointing at one 20,000-character label "
             "(kilobytes on disk, 400 MB decoded row by row)",
             {"dictionary.parquet": _parquet_dictionary(20_000, 20_000)}, "error",
             r"^dictionary\.parquet: a label value is 20,000 characters long \('x+'\.\.\.\); at most 10,000 are read"),
        Case("long_value", "a .csv.gz whose labels are 50,000 characters long", {"long.csv.gz": gzip.compress(
            b"task,worker,label\n" + b"".join(b"%d,w%d,%s\n" % (t, w, b"ab" * 25_000) for t in range(3) for w in range(2)))},
             "error", r"^long\.csv\.gz: a label value is 50,000 characters long \('(ab)+'\.\.\.\); at most 10,000"),
        Case("json_deep", "a Label Studio task nested 100,000 lists deep", {"deep.json": _json_deep(100_000)}, "error",
             r"^deep\.json: the JSON element on line 1 is nested deeper than Python's parser allows$"),
        Case("json_many_values", "a Label Studio .json.gz task of 2.5 million empty objects (7.5 MB of JSON)",
             {"values.json.gz": _json_many_values(2_500_000)}, "error",
             r"^values\.json\.gz: the JSON element on line 1 holds more than 2,000,000 values \(not annotations\)$"),
        Case("mturk_deep_answers", "an MTurk batch whose Answer.taskAnswers cells are nested 100,000 lists deep",
             {"batch.csv": b'HITId,WorkerId,AssignmentStatus,Input.text,Answer.taskAnswers\n' + b"".join(
                 b'h%d,W%d,Approved,t%d,"%s"\n' % (i, i % 3, i, b"[" * 100_000 + b"]" * 100_000) for i in range(3))},
             "error", r"^batch\.csv: no Answer\.\* column holds the workers' answers"),
        Case("mixed_encoding", "150 UTF-8 rows and one Windows-1252 line", {"mixed.csv": _mixed_encoding()},
             triples=MIXED_TRIPLES, classes=["café", "thé"],
             warnings=[r"^mixed\.csv: 1 line is not valid UTF-8 \(line 152\); read as Windows-1252"]),
        Case("repeated_header", "two CSV files concatenated (the header repeated)",
             {"joined.csv": (BASE_CSV + _csv(BASE)).encode()},
             warnings=[r"^joined\.csv: skipped 1 line repeating the header \(first on line 14; files joined"],
             **base_triples()),
        Case("repeated_header_reordered", "two CSV files with different column orders concatenated",
             {"joined2.csv": (BASE_CSV + _csv([(w, t, y) for t, w, y in BASE], header=("worker", "task", "label"))
                              ).encode()}, "error",
             r"^joined2\.csv: line 14 repeats the header in another column order \(worker, task, label\)"),
        Case("missing_spellings", "None, null, NULL, NaN, nan, NAN, <NA>, none, NONE, NA, N/A, n/a as labels",
             {"spellings.csv": _csv(MISSING_ROWS).encode()},
             triples=frozenset(MISSING_ROWS[-4:]), n_tasks=2,
             warnings=[r"^spellings\.csv: dropped 12 answers with a missing label \(empty or <NA>, N/A, n/a, "
                       r"NA, .*; first on line 2\); 6 tasks had no other answer and are left out; keep such "
                       r"labels with keep_missing=True \(CLI --keep-missing-labels\)$"]),
        Case("missing_spellings_kept", "the same with --keep-missing-labels",
             {"spellings.csv": _csv(MISSING_ROWS).encode()}, triples=frozenset(MISSING_ROWS), n_tasks=8,
             load_kwargs={"keep_missing": True}, cli_args=["--keep-missing-labels"]),
        Case("newline_in_name", "an input whose file name holds a newline and an escape sequence",
             {"evil\nname\x1b[2J.csv": b"task,worker\n1,a\n"}, "error",
             r"^evil\\nname\\x1b\[2J\.csv: missing column\(s\) 'label'"),
        Case("mturk_all_rejected", "an MTurk batch whose every assignment was rejected",
             {"batch.csv": b"WorkerId,AssignmentStatus,Input.id,Answer.label\nW1,Rejected,1,x\nW2,Rejected,1,y\n"},
             "error", r"^batch\.csv: no annotations \(every label is empty\) \(batch\.csv: skipped 2 rejected "
                      r"assignments"),
        Case("label_studio_regions", "a Label Studio export of bounding boxes only (no classification)",
             {"boxes.json": b'[{"id": 1, "data": {"image": "a.png"}, "annotations": [{"completed_by": 1, "result": '
                            b'[{"from_name": "box", "to_name": "image", "type": "rectanglelabels", "value": '
                            b'{"x": 1, "y": 2, "width": 3, "height": 4, "rectanglelabels": ["car"]}}]}]}]'}, "error",
             r"^boxes\.json: no classification results \(choices, labels, rating or taxonomy\)"),
        Case("parquet_nested", "a Parquet file whose label column holds lists",
             {"nested.parquet": _parquet_frame({"task": [1, 2], "worker": ["a", "b"], "label": [["x"], ["y", "z"]]})},
             "error", r"^nested\.parquet: column 'label' holds list<.*> values, not labels or ids$"),
    ]


def _parquet_frame(columns: dict) -> bytes:
    import io  # noqa: PLC0415

    buffer = io.BytesIO()
    pd.DataFrame(columns).to_parquet(buffer)
    return buffer.getvalue()


def base_triples() -> dict:
    return dict(triples=BASE_TRIPLES, n_tasks=4, n_workers=3, classes=["cat", "dog"])


#: full-size resource cases for the memory table of ``report.py --rss``: default limits, written compressed
def rss_cases(directory: Path) -> list[tuple[str, list[str], list[str]]]:
    """(description, input paths, extra CLI arguments) with the files written to ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    wide_row = b"1,a,cat," + b"w" * 90 + b"\n"
    out = [
        (".csv.gz of 100-byte rows expanding to 1.2 GiB",
         [write_gzip_bomb(directory / "bytes.csv.gz", wide_row, 1200 << 20, header=b"task,worker,label,c\n")], []),
        (".csv.gz of 8-byte rows expanding to 1 GiB (134 M rows)",
         [write_gzip_bomb(directory / "rows.csv.gz", b"1,a,cat\n", 1 << 30)], []),
        (".csv.gz: one line of 1 GiB", [write_gzip_bomb(directory / "line.csv.gz", b"x" * 4096, 1 << 30,
                                                             header=b"task,worker,label\n1,a,")], []),
        (".csv.gz: a quote never closed, then 1 GiB of lines",
         [write_gzip_bomb(directory / "quote.csv.gz", b"x\n" * 2048, 1 << 30, header=b'task,worker,label\n1,a,"')], []),
        ("Label Studio .json.gz of 4 GiB (26 M tasks)",
         [write_gzip_bomb(directory / "tasks.json.gz", LS_TASK + b",", 4 << 30, header=b"[", tail=LS_TASK + b"]")],
         []),
    ]
    parquet = directory / "rows.parquet"
    parquet.write_bytes(_parquet_rows(30_000_000))
    out.append(("Parquet of 30 M rows (run-length encoded)", [parquet], []))
    return [(d, [str(p) for p in paths], extra) for d, paths, extra in out]


def write_case(case: Case, directory: Path) -> list[Path]:
    """Write one case's files into ``directory`` (created); returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    if case.writer is not None:
        return case.writer(directory)
    paths = []
    for name, content in case.files.items():
        path = directory / name
        path.write_bytes(content)
        paths.append(path)
    return paths


def make_corpus(directory: Path, include_slow: bool = False) -> dict[str, list[Path]]:
    """Write every case (each in its own sub-folder) and return ``{case name: paths}``."""
    return {case.name: write_case(case, Path(directory) / case.name)
            for case in cases() if include_slow or not case.slow}


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: make_corpus.py OUT_DIR [--slow]")
    written = make_corpus(Path(sys.argv[1]), include_slow="--slow" in sys.argv)
    for name, paths in written.items():
        print(f"{name}: {', '.join(str(p) for p in paths)}")
