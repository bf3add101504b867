"""Peak memory and time of the Dawid-Skene fits on many classes (the left item "the Dawid-Skene family's 6.2 GB
peak on 60,000 x 1,000 classes").

Two fits: ``fit_dawid_skene`` (DEEM's Dawid-Skene start and the safety rule's reference) and
``crowdkit_dawid_skene`` (the "Dawid-Skene" method, crowd-kit's steps). Each runs in a fresh subprocess on a
generated dense set (every worker answers every task, 70% right, the rest uniform) for ``--iters`` EM iterations
(the peak is reached in the first); ``peak MB`` is the subprocess's resident high-water mark (VmHWM) above the
set's own, ``(n, K)`` the size of one tasks x classes float64 array.

Usage::

    python benchmarks/ds_memory.py                          # writes results/ds_memory.txt
    python benchmarks/ds_memory.py --tree /tmp/old --label before   # the same fits imported from another tree
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAPES = [(20_000, 10, 300), (60_000, 10, 1_000)]
FITS = ("fit_dawid_skene", "crowdkit_dawid_skene")

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np, pandas as pd
from deem_core.data.annotations import AnnotationSet
import deem_core.methods.dawid_skene as ds

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
n, d, k, iters, fit = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
rng = np.random.default_rng(0)
truth = rng.integers(0, k, n)
task, worker = np.repeat(np.arange(n), d), np.tile(np.arange(d), n)
label = np.where(rng.random(n * d) < 0.7, np.repeat(truth, d), rng.integers(0, k, n * d))
data = AnnotationSet.from_codes(pd.Index([f"t{i}" for i in range(n)]), pd.Index([f"w{i}" for i in range(d)]),
                                pd.Index(np.arange(k)), task, worker, label)
del task, worker, label
base = hwm()
start = time.perf_counter()
if fit == "fit_dawid_skene":
    out = ds.fit_dawid_skene(data, max_iter=iters)
    labels = out.posterior.argmax(axis=1)
else:
    out = ds.crowdkit_dawid_skene(data, n_iter=iters)
    labels = out.labels
print(json.dumps({"seconds": time.perf_counter() - start, "peak_mb": hwm() - base, "base_mb": base,
                  "accuracy": float((labels == truth).mean()), "iterations": int(out.n_iter)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", default=str(ROOT), help="the source tree to import deem_core from")
    parser.add_argument("--label", default="this tree")
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--out", default=None, help="default: results/ds_memory.txt for this tree, else none")
    args = parser.parse_args()
    rows = []
    for n, d, k in SHAPES:
        for fit in FITS:
            done = subprocess.run([sys.executable, "-c", CHILD, args.tree, str(n), str(d), str(k), str(args.iters), fit],
                                  capture_output=True, text=True, check=True)
            got = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append((f"{n:,} x {d} x {k:,}", fit, n * k * 8 / 2**20, got))
    load = os.getloadavg()
    lines = [f"# benchmarks/ds_memory.py ({args.label}) on {platform.machine()}, {os.cpu_count()} CPUs shared with "
             f"other jobs, load average {load[0]:.1f}; {args.iters} EM iterations; "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
             "| set (tasks x workers x classes) | fit | one (n, K) array MB | peak above the set MB | peak / (n, K) "
             "| seconds | EM iterations | accuracy |",
             "|---|---|---|---|---|---|---|---|"]
    for shape, fit, array_mb, got in rows:
        lines.append(f"| {shape} | {fit} | {array_mb:,.0f} | {got['peak_mb']:,.0f} | {got['peak_mb'] / array_mb:.1f} "
                     f"| {got['seconds']:.1f} | {got['iterations']} | {got['accuracy']:.4f} |")
    text = "\n".join(lines)
    print(text)
    out = args.out or (str(ROOT / "benchmarks" / "results" / "ds_memory.txt") if Path(args.tree) == ROOT else None)
    if out:
        with open(out, "a", encoding="utf-8") as handle:
            handle.write(text + "\n\n")


if __name__ == "__main__":
    main()
