"""Time and peak memory of the Data page's "answering against the others" check (``agreement.contrary_workers``),
which runs in the page's own thread when a file is loaded, on the shapes that bound it.

Its work is one (answer, class given on the answer's task) pair per answer and class: linear on crowd data, but a
task of N answers and N distinct labels makes N x N pairs. Attack round 36 measured, before the bound: one task of
8,000 workers and labels 12.2 s and 5.0 GB; 100 tasks x 1,000 workers, each worker a label of its own per task
(a 1.27 MB file), 24 s and 7.8 GB. Now at most ``CONTRARY_MAX_PAIRS`` pairs are looked at (the tasks of a random
share past it), ``CONTRARY_CHUNK`` at a time.

Cases (built in memory, each measured in a fresh process: ``ru_maxrss`` above the process after building):

* ``one_task_8000``: one task, 8,000 workers, 8,000 distinct labels (plus one ordinary task);
* ``grid_100x1000`` / ``grid_300x1000``: T tasks x 1,000 workers, worker w gives task t the class (w + t) mod 1000;
* ``platform_6m``: 1,000,000 tasks x 2,400 workers, 6 answers a task, 3 classes (the check's intended scale),
  two of the workers answering against the others.

Usage::

    python benchmarks/contrary_bound.py            # every case; writes results/contrary_bound.txt
    python benchmarks/contrary_bound.py --cases grid_100x1000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CASES = ["one_task_8000", "grid_100x1000", "grid_300x1000", "platform_6m"]


def build(case: str):
    from deem_core import AnnotationSet  # noqa: PLC0415

    rng = np.random.default_rng(0)
    if case == "one_task_8000":
        n = 8000
        t = np.r_[np.zeros(n, dtype=np.int64), np.ones(3, dtype=np.int64)]
        w = np.r_[np.arange(n), np.arange(3)]
        y = np.r_[np.arange(n), np.zeros(3, dtype=np.int64)]
        n_tasks, n_workers, k = 2, n, n
    elif case.startswith("grid_"):
        n_tasks, n_workers = (int(v) for v in case.split("_")[1].split("x"))
        t = np.repeat(np.arange(n_tasks), n_workers)
        w = np.tile(np.arange(n_workers), n_tasks)
        y = (w + t) % n_workers
        k = n_workers
    else:
        n_tasks, n_workers, per, k = 1_000_000, 2400, 6, 3
        truth = rng.integers(0, k, n_tasks)
        t = np.repeat(np.arange(n_tasks), per)
        w = np.concatenate([rng.choice(n_workers, per, replace=False) for _ in range(2000)])
        w = np.tile(w, n_tasks // 2000)
        right = rng.random(len(t)) < 0.75
        y = np.where(right, truth[t], rng.integers(0, k, len(t)))
        bad = w >= n_workers - 2
        y = np.where(bad, (truth[t] + 1) % k, y)
    return AnnotationSet.from_codes(pd.RangeIndex(n_tasks), pd.RangeIndex(n_workers), pd.RangeIndex(k), t, w, y)


def measure(case: str) -> dict:
    from deem_core.analysis import agreement  # noqa: PLC0415

    data = build(case)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    found = agreement.contrary_workers(data)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"case": case, "answers": int(data.n_answers), "tasks": int(data.n_tasks), "classes": int(data.n_classes),
            "seconds": round(seconds, 2), "above_MB": round((peak - before) / 1024), "named": len(found)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="*", default=CASES, choices=CASES)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one)))
        return
    rows = []
    for case in args.cases:
        out = subprocess.run([sys.executable, __file__, "--one", case], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows).to_string(index=False)
    load = os.getloadavg()[0]
    text = (f"contrary_workers: time and memory above the built set (fresh process per case; load average {load:.2f}; "
            f"{os.cpu_count()} CPUs)\n{table}\n")
    print(text)
    if args.cases == CASES:
        (ROOT / "benchmarks" / "results" / "contrary_bound.txt").write_text(text)


if __name__ == "__main__":
    main()
