"""The Data page's preview of wide files (a worker per column): seconds of ``preview`` for the same cells as CSV and
as Parquet, up to the 100,000 columns a table may have (``DEEM_MAX_COLUMNS``).

Each file: a task column and N worker columns of 50 rows of labels "0".."2" (written by pyarrow, one row group).
Each case runs in a fresh process (the package imported first, not timed); the best of ``--repeat`` runs is shown.

    PYTHONPATH=. python benchmarks/wide_preview.py [--columns 1000,10000,30000,99990] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine  # noqa: E402

TIMED = ("import time; from deem_core.data.formats import preview; t = time.perf_counter(); "
         "shown = preview({path!r}).frame; print(time.perf_counter() - t, shown.shape[1])")


def write_files(folder: Path, columns: int, rows: int = 50) -> tuple[Path, Path]:
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.csv as pacsv  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    rng = np.random.default_rng(columns)
    table = pa.table({"task": [f"t{i}" for i in range(rows)],
                      **{f"w{j}": rng.integers(0, 3, rows).astype(str) for j in range(columns)}})
    parquet, csv = folder / f"wide{columns}.parquet", folder / f"wide{columns}.csv"
    pq.write_table(table, parquet)
    pacsv.write_csv(table, csv, pacsv.WriteOptions(quoting_style="none"))
    return csv, parquet


def seconds(path: Path, repeat: int) -> tuple[float, int]:
    best, shown = float("inf"), 0
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", TIMED.format(path=str(path))], capture_output=True, text=True,
                             cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600, check=True)
        took, shown = out.stdout.split()
        best = min(best, float(took))
    return best, int(shown)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--columns", default="1000,10000,30000,99990")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    print(f"# {machine()}; load average {os.getloadavg()[0]:.2f} at the start")
    print(f"{'worker columns':>15} {'CSV MB':>7} {'Parquet MB':>10} {'CSV s':>7} {'Parquet s':>9} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as folder:
        for n in [int(c) for c in args.columns.split(",")]:
            csv, parquet = write_files(Path(folder), n)
            (csv_s, a), (parquet_s, b) = seconds(csv, args.repeat), seconds(parquet, args.repeat)
            assert a == b == n + 1, (a, b)
            print(f"{n:>15,} {csv.stat().st_size / 1e6:>7.1f} {parquet.stat().st_size / 1e6:>10.1f} {csv_s:>7.2f} "
                  f"{parquet_s:>9.2f} {parquet_s / csv_s:>6.1f}")
    print(f"# load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
