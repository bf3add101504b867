"""Reading wide CSV files (a worker per column): CPU time and peak memory of ``read_dataset`` in a fresh process.

Cases: hostile shapes (a header of 100,000 worker names over rows of commas or over short lines: a few hundred KB
gzipped) and ordinary ones (an ensemble of 1,000 classifiers over 20,000 items, every cell filled; 15,000 workers
over 5 items). Prints one row per case: file size, gzipped size, answers read, CPU seconds, peak RSS of the reading
process (VmHWM) above the interpreter with the package imported.

    PYTHONPATH=. python benchmarks/wide_csv.py [--cases a,b,...]
"""

from __future__ import annotations

import argparse
import gzip
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402


def _commas(path: Path, columns: int, rows: int) -> None:
    with gzip.open(path, "wt") as out:
        out.write("task," + ",".join(f"w{j}" for j in range(columns - 1)) + "\n")
        empty = "," * (columns - 2)
        for t in range(rows):
            out.write(f"t{t},1{empty}\n")


def _short_lines(path: Path, columns: int, rows: int) -> None:
    with gzip.open(path, "wt") as out:
        out.write("task," + ",".join(f"w{j}" for j in range(columns - 1)) + "\n")
        for t in range(rows):
            out.write(f"t{t},1\n")


def _dense(path: Path, columns: int, rows: int) -> None:
    rng = np.random.default_rng(0)
    with gzip.open(path, "wt") as out:
        out.write("task," + ",".join(f"m{j}" for j in range(columns - 1)) + "\n")
        for t in range(rows):
            out.write(f"t{t}," + ",".join(map(str, rng.integers(0, 10, columns - 1))) + "\n")


CASES = {
    "commas_100k_x_200": (_commas, 100_000, 200),
    "commas_100k_x_1000": (_commas, 100_000, 1_000),
    "short_lines_100k_x_400": (_short_lines, 100_000, 400),
    "commas_10k_x_2000": (_commas, 10_000, 2_000),
    "dense_1000_x_20000": (_dense, 1_000, 20_000),
    "dense_15000_x_5": (_dense, 15_000, 5),
}

PROBE = textwrap.dedent("""
    import re, sys, time
    from deem_core.data.formats import read_dataset
    def hwm():
        return int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) / 1024
    base = hwm()
    started = time.process_time()
    data = read_dataset([sys.argv[1]]).data
    print(data.n_answers, round(time.process_time() - started, 2), round(hwm() - base))
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    print(f"# {machine()}")
    print(f"{'case':26} {'file MB':>8} {'gzip KB':>8} {'answers':>9} {'CPU s':>7} {'peak +MB':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases.split(","):
            make, columns, rows = CASES[name]
            path = Path(tmp) / f"{name}.csv.gz"
            make(path, columns, rows)
            with gzip.open(path, "rb") as f:
                size = sum(len(b) for b in iter(lambda: f.read(1 << 20), b""))
            out = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True,
                                 timeout=1800)
            if out.returncode:
                print(f"{name:26} failed: {out.stderr.strip().splitlines()[-1]}")
                continue
            answers, seconds, peak = out.stdout.split()
            print(f"{name:26} {size / 1e6:8.1f} {path.stat().st_size / 1e3:8.0f} {int(answers):9,} {float(seconds):7.2f} "
                  f"{int(peak):9,}", flush=True)
            path.unlink()


if __name__ == "__main__":
    main()
