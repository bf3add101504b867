"""Where the sparse training path (answer slots) beats the dense one (every worker of every task).

For generated one-coin data of ``--tasks`` tasks, ``d`` workers, ``K`` classes and ``a`` answers per task,
trains one DEEM run (1 layer, batch 1024, 5 sampler steps) for ``--epochs`` epochs on each path and prints
the CPU seconds per epoch of each, which is faster, and what ``deem_core.model.training.choose_path``
picks. Then fits ``seconds = fixed + per_unit * units^2`` to each path (units = d*K dense, a*K sparse) and
prints the constants behind ``choose_path``.

Usage::

    nice -n 10 python benchmarks/path_crossover.py                 # the default grid
    python benchmarks/path_crossover.py --workers 20 80 --classes 3 --answers 3 10
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

from deem_core.model.training import TrainingConfig, choose_path, train_runs  # noqa: E402


def one_coin(n_tasks: int, n_workers: int, n_classes: int, answers: int, seed: int = 0) -> np.ndarray:
    """(n, d) codes, -1 = missing: each task answered by ``answers`` random workers of accuracy 0.6-0.9."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_classes, n_tasks)
    skill = rng.uniform(0.6, 0.9, n_workers)
    labels = np.full((n_tasks, n_workers), -1, dtype=np.int64)
    chosen = np.argsort(rng.random((n_tasks, n_workers)), axis=1)[:, :answers]
    rows = np.repeat(np.arange(n_tasks), answers)
    cols = chosen.reshape(-1)
    right = rng.random(rows.size) < skill[cols]
    wrong = (truth[rows] + rng.integers(1, n_classes, rows.size)) % n_classes
    labels[rows, cols] = np.where(right, truth[rows], wrong)
    return labels


def seconds_per_epoch(labels: np.ndarray, n_classes: int, path: str, epochs: int) -> float:
    config = TrainingConfig(n_layers=1, epochs=epochs, device="cpu", path=path)
    train_runs(labels[:1024], n_classes, [0.01], [0], TrainingConfig(n_layers=1, epochs=1, device="cpu", path=path))
    started = time.process_time()
    train_runs(labels, n_classes, [0.01], [0], config)
    return (time.process_time() - started) / epochs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="*", default=[8, 15, 30, 60, 120])
    parser.add_argument("--classes", type=int, nargs="*", default=[3, 10])
    parser.add_argument("--answers", type=float, nargs="*", default=[3, 5, 0.25, 0.5, 1.0],
                        help="answers per task: a count (>= 2) or a share of the workers (<= 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"# machine: {machine()}; 1 thread; load average before: {os.getloadavg()[0]:.2f}")
    print(f"# {args.tasks} tasks, 1 layer, batch 1024, 5 sampler steps; CPU seconds per epoch ({args.epochs} epochs)")
    print(f"{'d':>5} {'K':>3} {'a':>4} {'density':>8} {'dense s':>8} {'sparse s':>9} {'faster':>7} {'choose_path':>12}")
    rows = []
    for k in args.classes:
        for d in args.workers:
            counts = sorted({min(d, int(x) if x > 1 else max(1, round(x * d))) for x in args.answers})
            for a in counts:
                labels = one_coin(args.tasks, d, k, a)
                dense = seconds_per_epoch(labels, k, "dense", args.epochs)
                sparse = seconds_per_epoch(labels, k, "sparse", args.epochs)
                picked = choose_path(d, k, a, a)
                faster = "dense" if dense <= sparse else "sparse"
                rows.append((d, k, a, dense, sparse))
                print(f"{d:>5} {k:>3} {a:>4} {a / d:>8.2f} {dense:>8.3f} {sparse:>9.3f} {faster:>7} "
                      f"{picked + ('' if picked == faster else ' (!)'):>12}", flush=True)
    print(fit_costs(np.array(rows, dtype=np.float64), args.tasks))
    print(f"# load average after: {os.getloadavg()[0]:.2f}")
    return 0


def fit_costs(rows: np.ndarray, n_tasks: int) -> str:
    """Fit ``seconds per batch = fixed + per_unit * units^2`` to each path (units = d*K dense, a*K sparse) by
    least squares on the relative error, on the configurations up to 60 units (beyond, the sparse path's
    gathered blocks outgrow the caches and its cost grows faster; the fit there only needs to say "dense")."""
    batches = max(1, -(-n_tasks // 1024))
    lines = []
    for name, units, seconds in (("DENSE", rows[:, 0] * rows[:, 1], rows[:, 3]),
                                 ("SPARSE", rows[:, 2] * rows[:, 1], rows[:, 4])):
        keep = units <= 60 if name == "SPARSE" else np.ones_like(units, dtype=bool)
        per_batch = seconds[keep] / batches
        design = np.stack([np.ones(keep.sum()), units[keep] ** 2], axis=1) / per_batch[:, None]
        (fixed, per_unit), *_ = np.linalg.lstsq(design, np.ones(keep.sum()), rcond=None)
        lines.append(f"# {name.lower()}: seconds per batch ~ {fixed:.2e} + {per_unit:.2e} * units^2 "
                     f"({name}_FIXED, {name}_PER_UNIT in deem_core/model/training.py)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
