"""Sweeping a random sample of the tasks instead of all of them: same recommendation, how much faster?

The Sweep page sweeps a random sample by default above ``deem_core.methods.sweep.SAMPLE_ABOVE`` tasks
(``SAMPLE_TASKS`` tasks in the sample). This script measures, on sets of growing size, the full sweep
(default grid, 8 learning rates, 1 layer) next to sweeps of random samples: the recommended learning rate,
the verdict of every rate, and the wall time. Each sample is swept twice: with the full sweep's batch of
1,024 tasks (an epoch of a sample then makes fewer updates, and larger rates look better) and with the
batch scaled by sample / tasks, as the dashboard does (``deem_core.methods.sweep.sample_batch_size``: the same
number of updates per epoch as the full sweep).

Sets: tree3k, ampdata (sample_data) and the MnistE-shaped synthetic set (make_mnist_like, 15 workers x 10
classes) at 20,000 tasks (the full sweep there takes several minutes on one core).

Usage::

    python benchmarks/sweep_sample.py                       # all sets, 50 epochs
    python benchmarks/sweep_sample.py --sets tree3k --epochs 30
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "sample_data"))

from benchmarks.common import load_set, machine  # noqa: E402
from deem_core.data.annotations import AnnotationSet  # noqa: E402
from deem_core.methods.sweep import DEFAULT_SWEEP_EPOCHS, run_sweep, sample_batch_size, sample_positions  # noqa: E402

SAMPLES = (2000, 5000)


def data_of(name: str) -> AnnotationSet:
    if name.startswith("mnist_like"):
        from make_sample_data import make_mnist_like  # noqa: PLC0415

        n = int(name.split("_")[-1])
        df, _ = make_mnist_like(n_tasks=n, n_workers=15, n_classes=10, seed=0)
    else:
        df, _ = load_set(name)
    return AnnotationSet.from_long(df)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default="tree3k,ampdata,mnist_like_20000")
    parser.add_argument("--epochs", type=int, default=DEFAULT_SWEEP_EPOCHS)
    args = parser.parse_args()
    print(machine())
    print(f"default grid, 1 layer, 1 seed, {args.epochs} epochs; sample = random tasks (seed 0)")
    print("| data | tasks swept | batch | recommended lr | verdicts (0.001 ... 3) | same as full | seconds | "
          "CPU s | load avg |")
    print("|---|---:|---:|---:|---|---|---:|---:|---|")
    for name in args.sets.split(","):
        data = data_of(name)
        full = None
        runs = [(None, 1024)] + [(size, batch) for size in SAMPLES if size < data.n_tasks
                                 for batch in (1024, sample_batch_size(size, data.n_tasks))]
        for size, batch in runs:
            swept = data if size is None else data.subset_tasks(sample_positions(data.n_tasks, size, 0))
            started, cpu = time.perf_counter(), time.process_time()
            result = run_sweep(swept, epochs=args.epochs, device="cpu", batch_size=batch)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            rec = result.recommendation
            verdicts = ", ".join(v.label for v in rec.verdicts.values())
            if size is None:
                full = rec.lr
            same = "-" if size is None else ("yes" if rec.lr == full else "no")
            print(f"| {name} | {swept.n_tasks:,} | {batch} | {rec.lr if rec.lr is not None else '-'} | {verdicts} | "
                  f"{same} | {seconds:.1f} | {cpu:.1f} | {' '.join(f'{x:.2f}' for x in os.getloadavg())} |",
                  flush=True)


if __name__ == "__main__":
    main()
