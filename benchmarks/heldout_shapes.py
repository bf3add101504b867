"""DEEM's defaults on four shapes of data written after the choice of start and depth was designed (issue 15),
used for this table only: nothing in the engine was set on them.

- ``adversarial``: 3 classes, 10 workers (7 honest, right 60-80%; 3 that answer a fixed permutation of the truth
  80% of the time), 5 answers a task.
- ``confusable``: 4 imbalanced classes (40/30/20/10%), 15 workers right 55-85%, each of them answering class 2 as
  class 1 45% of the time, 7 answers a task.
- ``sparse_pairs``: 3 classes, 200 workers right 55-90%, 3-4 answers a task; on 30% of the tasks one of four pairs
  answers together with one shared 50%-right label (copying pairs in sparse data).
- ``shared_errors``: an ensemble of 5 classes, one model right 93%, eight weaker ones that on a hard 35% of the items
  give one shared wrong label 80% of the time (a common distractor, no copying).

Usage: ``python benchmarks/heldout_shapes.py [--seeds 3] [--device cpu]``; prints a table (MV, crowd-kit's DS,
DEEM's defaults, the choice, the seconds DEEM took).
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
from deem_core.methods.registry import fit_method  # noqa: E402


def confusion(k: int, accuracy: float) -> np.ndarray:
    matrix = np.full((k, k), (1 - accuracy) / (k - 1))
    np.fill_diagonal(matrix, accuracy)
    return matrix


def answer(matrices: np.ndarray, workers: np.ndarray, truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One label for each (worker, true class) pair, drawn from the worker's confusion row."""
    rows = matrices[workers, truth].cumsum(axis=1)
    return (rng.random(len(truth))[:, None] > rows).sum(axis=1).clip(max=rows.shape[1] - 1)


def pick_workers(n_tasks: int, per_task: np.ndarray, pool: np.ndarray, rng: np.random.Generator):
    """(task, worker) pairs: ``per_task[t]`` distinct workers of ``pool`` for each task ``t``."""
    order = np.argsort(rng.random((n_tasks, len(pool))), axis=1)
    keep = np.arange(len(pool))[None, :] < per_task[:, None]
    tasks = np.broadcast_to(np.arange(n_tasks)[:, None], order.shape)[keep]
    return tasks, pool[order[keep]]


def adversarial(rng: np.random.Generator):
    k, n = 3, 1500
    truth = rng.integers(0, k, n)
    honest = [confusion(k, a) for a in rng.uniform(0.6, 0.8, 7)]
    permuted = [confusion(k, 0.8)[:, [2, 0, 1]] for _ in range(3)]  # answers (y + 1) mod 3 80% of the time
    tasks, workers = pick_workers(n, np.full(n, 5), np.arange(10), rng)
    labels = answer(np.stack(honest + permuted), workers, truth[tasks], rng)
    return tasks, workers, labels, truth


def confusable(rng: np.random.Generator):
    k, n, w = 4, 2000, 15
    truth = rng.choice(k, n, p=[0.4, 0.3, 0.2, 0.1])
    matrices = np.stack([confusion(k, a) for a in rng.uniform(0.55, 0.85, w)])
    matrices[:, 2] = [0.05, 0.45, 0.45, 0.05]
    tasks, workers = pick_workers(n, np.full(n, 7), np.arange(w), rng)
    return tasks, workers, answer(matrices, workers, truth[tasks], rng), truth


def sparse_pairs(rng: np.random.Generator):
    k, n, w = 3, 3000, 200
    truth = rng.integers(0, k, n)
    matrices = np.stack([confusion(k, a) for a in rng.uniform(0.55, 0.9, w)])
    per_task = rng.integers(3, 5, n)
    paired = rng.random(n) < 0.3
    tasks, workers = pick_workers(n, per_task - 2 * paired, np.arange(8, w), rng)
    labels = answer(matrices, workers, truth[tasks], rng)
    pair = rng.integers(0, 4, n)[paired]
    shared = answer(confusion(k, 0.5)[None], np.zeros(paired.sum(), int), truth[paired], rng)
    pair_tasks = np.flatnonzero(paired)
    tasks = np.concatenate([tasks, pair_tasks, pair_tasks])
    workers = np.concatenate([workers, 2 * pair, 2 * pair + 1])
    return tasks, workers, np.concatenate([labels, shared, shared]), truth


def shared_errors(rng: np.random.Generator):
    k, n = 5, 1500
    truth = rng.integers(0, k, n)
    distractor = (truth + rng.integers(1, k, n)) % k
    hard = rng.random(n) < 0.35
    strong = np.where(rng.random(n) < 0.93, truth, rng.integers(0, k, n))
    weak = np.where(rng.random((8, n)) < 0.85, truth, rng.integers(0, k, (8, n)))
    weak = np.where(hard & (rng.random((8, n)) < 0.8), distractor, weak)
    tasks = np.tile(np.arange(n), 9)
    workers = np.repeat(np.arange(9), n)
    return tasks, workers, np.concatenate([strong, weak.ravel()]), truth


SHAPES = {"adversarial": adversarial, "confusable": confusable, "sparse_pairs": sparse_pairs,
          "shared_errors": shared_errors}


def clusters_of(model: DEEM) -> int:
    """How many groups of two or more workers the dependence test joined."""
    found = getattr(model, "dependence_clusters_", None)
    if found is None:
        return 0
    return int((np.bincount(np.asarray(found.labels)) > 1).sum())


def run(shape: str, seed: int, device: str) -> dict:
    tasks, workers, labels, truth = SHAPES[shape](np.random.default_rng(seed))
    frame = pd.DataFrame({"task": tasks, "worker": workers, "label": labels})
    data = AnnotationSet.from_long(frame)
    truth = pd.Series(truth)

    def accuracy(predicted: pd.Series) -> float:
        return float(100 * (predicted.reindex(truth.index).to_numpy() == truth.to_numpy()).mean())

    start = time.perf_counter()
    model = DEEM(seed=0, device=device).fit(data)
    seconds = time.perf_counter() - start
    summary = model.selection_summary_ or {}
    chosen = summary.get("fallback") or f"{summary.get('start')} start, {summary.get('layers')} layer(s)"
    return {"set": f"{shape}:{seed}", "tasks": len(truth), "answers": len(frame),
            "MV": accuracy(fit_method("mv", data, seed=0).labels_),
            "DS": accuracy(fit_method("ds", data, seed=0).labels_),
            "DEEM": accuracy(model.predict()), "clusters": clusters_of(model),
            "choice": chosen, "seconds": seconds}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    print(f"# python benchmarks/heldout_shapes.py --seeds {args.seeds} --device {args.device}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {machine()}; load average {os.getloadavg()[0]:.1f}")
    rows = [run(shape, seed, args.device) for shape in SHAPES for seed in range(args.seeds)]
    table = pd.DataFrame(rows)
    table["DEEM - MV"] = table["DEEM"] - table["MV"]
    table["DEEM - DS"] = table["DEEM"] - table["DS"]
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    means = table.groupby(table["set"].str.split(":").str[0], sort=False)[["MV", "DS", "DEEM"]].mean()
    print("\nper shape (mean over seeds)")
    print(means.to_string(float_format=lambda v: f"{v:.2f}"))
    print(f"\nall {len(table)}: MV {table.MV.mean():.2f}, DS {table.DS.mean():.2f}, DEEM {table.DEEM.mean():.2f}; "
          f"DEEM below MV by more than 0.05 on {(table['DEEM - MV'] < -0.05).sum()}, below DS by more than 0.3 "
          f"on {(table['DEEM - DS'] < -0.3).sum()}")


if __name__ == "__main__":
    main()
