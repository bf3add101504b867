"""Peak memory of reading a truth (gold-label) file: ``read_truth`` in a fresh process per case, its peak resident
size (``VmHWM``) above the same process's size before the read.

Cases (written into ``--data-dir``, never committed):

* ``repeated_19m``: attack round 63's file, 19,000,000 rows over 1,000 tasks (947 KB as gzip);
* ``distinct_2m``: 2,000,000 rows, each a new task (a large but honest gold file);
* ``distinct_5m``: 5,000,000 new tasks (past what one read may add while its rows come in: refused);
* ``clash_19m``: the repeated file with one contradicting row at its end (must be refused).

Usage::

    python benchmarks/truth_memory.py              # writes results/truth_memory.txt
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "truth_memory.txt"

CHILD = r"""
import json, sys, time
def status(key):
    for line in open('/proc/self/status'):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
from deem_core.data.formats import read_truth
from deem_core.data.annotations import DataError
before = status('VmRSS')
start = time.perf_counter()
try:
    truth = read_truth(sys.argv[1])
    outcome = f"read: {len(truth):,} tasks"
except DataError as exc:
    outcome = "refused: " + str(exc)[:90]
print(json.dumps({"seconds": time.perf_counter() - start, "before": before, "peak": status('VmHWM'),
                  "outcome": outcome}))
"""


def write_case(name: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.csv.gz"
    if path.exists():
        return path
    with gzip.open(path, "wt", compresslevel=6) as out:
        out.write("task,truth\n")
        if name in ("repeated_19m", "clash_19m"):
            block = "".join(f"t{i},c{i % 3}\n" for i in range(1000))
            for _ in range(19_000):
                out.write(block)
            if name == "clash_19m":
                out.write("t5,c0\n")
        elif name.startswith("distinct_"):
            for start in range(0, int(name[len("distinct_"):-1]) * 1_000_000, 100_000):
                out.write("".join(f"task{i},c{i % 7}\n" for i in range(start, start + 100_000)))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/deem_truth_memory"))
    args = parser.parse_args()
    lines = [f"# benchmarks/truth_memory.py on {os.cpu_count()} CPU(s); load average "
             + " ".join(f"{x:.1f}" for x in os.getloadavg()),
             "| case | file MB | s | before MB | peak MB | peak - before MB | outcome |", "|---|---|---|---|---|---|---|"]
    for name in ("repeated_19m", "distinct_2m", "distinct_5m", "clash_19m"):
        path = write_case(name, args.data_dir)
        done = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
        got = json.loads(done.stdout.strip().splitlines()[-1])
        lines.append(f"| {name} | {path.stat().st_size / 1e6:.1f} | {got['seconds']:.1f} | {got['before'] / 1e6:.0f} | "
                     f"{got['peak'] / 1e6:.0f} | {(got['peak'] - got['before']) / 1e6:.0f} | {got['outcome']} |")
        print(lines[-1], flush=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
