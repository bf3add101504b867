"""A few widely answered tasks among many narrow ones: the sparse path's batch computed whole or in parts.

A batch is padded to its widest task. When one batch holds every task (no more tasks than ``batch_size``) and a few
tasks were answered by many more workers than the rest (control questions every worker saw, a public set's task of
58 answers among 300 of 5), the batch is computed in parts of similar answer counts and takes one step
(``SparseTaskData.parts``). Each shape is generated here (its own seeds): narrow tasks of 3-6 answers, a few wide
ones, workers right 55-90%. Printed per shape: seconds per epoch whole and in parts (the training loop's own
timing over ``--epochs`` epochs of one run, from the majority-vote start: the columns that compare whole and parts),
and the wall time and accuracy of the default fit (``DEEM().fit``, its path chosen by the widest task: the sparse
path, in parts, on the first shape only; the dense path on the other two).

Usage: ``python benchmarks/wide_tasks.py [--epochs 20]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import machine  # noqa: E402

from deem_core import DEEM  # noqa: E402
from deem_core.data.annotations import AnnotationSet  # noqa: E402
from deem_core.model import sparse_training  # noqa: E402
from deem_core.model.training import TrainingConfig, train_runs  # noqa: E402

#: (name, narrow tasks, workers, classes, wide tasks, answers of a wide task)
SHAPES = [
    ("weather-like", 300, 461, 5, 1, 58),
    ("control questions", 800, 120, 4, 6, 120),
    ("a few busy tasks", 1000, 200, 3, 20, 40),
]


def make(narrow: int, workers: int, k: int, wide: int, width: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = narrow + wide
    truth = rng.integers(0, k, n)
    accuracy = rng.uniform(0.55, 0.9, workers)
    labels = np.full((n, workers), -1, dtype=np.int64)
    for t in range(n):
        chosen = rng.choice(workers, width if t >= narrow else int(rng.integers(3, 7)), replace=False)
        right = rng.random(len(chosen)) < accuracy[chosen]
        labels[t, chosen] = np.where(right, truth[t], (truth[t] + rng.integers(1, k, len(chosen))) % k)
    return labels, truth


def per_epoch(labels: np.ndarray, k: int, epochs: int, parts: bool) -> float:
    original = sparse_training.SparseTaskData.parts
    if not parts:
        sparse_training.SparseTaskData.parts = lambda self, batch, momentum=0.0: [batch]
    try:
        result = train_runs(labels, k, [0.01], [0], TrainingConfig(n_layers=1, epochs=epochs, device="cpu",
                                                                    path="sparse"))
    finally:
        sparse_training.SparseTaskData.parts = original
    return result.seconds / max(1, result.epochs_run)


def default_fit(labels: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    data = AnnotationSet.from_dense(labels)
    started = time.perf_counter()
    model = DEEM().fit(data)
    seconds = time.perf_counter() - started
    order = np.argsort(data.tasks.astype(int))
    return seconds, 100 * float((model.labels_.to_numpy().astype(int)[order] == truth).mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    print(f"# {machine()}; load average {os.getloadavg()[0]:.1f}; sparse path, 1 layer, one run; seconds per epoch "
          f"over {args.epochs} epochs; default fit = DEEM().fit (100 epochs, two starts, choice; its path chosen)")
    rows = []
    for i, (name, narrow, workers, k, wide, width) in enumerate(SHAPES):
        labels, truth = make(narrow, workers, k, wide, width, seed=10 + i)
        whole, parted = per_epoch(labels, k, args.epochs, False), per_epoch(labels, k, args.epochs, True)
        fit_parts, acc_parts = default_fit(labels, truth)
        rows.append({"shape": name, "tasks": narrow + wide, "workers": workers, "classes": k,
                     "wide tasks x answers": f"{wide} x {width}", "s/epoch whole": round(whole, 4),
                     "s/epoch parts": round(parted, 4), "speed-up": round(whole / parted, 1),
                     "default fit s": round(fit_parts, 1), "default fit accuracy": round(acc_parts, 2)})
        print(rows[-1], flush=True)
    print()
    print(pd.DataFrame(rows).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
