"""Benchmark of the learning-rate sweep: does the recommendation pick a good learning rate, and what does
a batched sweep cost next to one run?

For every data set (the five ``sample_data`` sets, ``../shared/data/{duck,dog}``): one sweep of the default
grid (8 learning rates, one seed, batched), then

* the accuracy of every run of the sweep (hidden units mapped to classes against majority vote, as the
  estimator does; the truth is used only to score), reported as the accuracy at the **recommended**
  learning rate next to the **best** and **worst** learning rate of the grid;
* the accuracy of one run trained alone at the recommended learning rate (same seed and epochs);
* wall time of the 8-run sweep vs that single run (CPU, ``torch.set_num_threads(1)`` unless --threads).

Usage::

    python benchmarks/sweep.py                      # all sets, 50 epochs
    python benchmarks/sweep.py --sets condind,dog --epochs 30 --device cpu
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import available_sets, load_set, machine  # noqa: E402
from deem_core.model.classmap import hungarian_class_map  # noqa: E402
from deem_core.data.annotations import AnnotationSet  # noqa: E402
from deem_core.methods.sweep import DEFAULT_LRS, DEFAULT_SWEEP_EPOCHS, run_sweep  # noqa: E402
from deem_core.model.training import TrainingConfig, predict_hidden, resolve_device, train_runs  # noqa: E402


def run_accuracies(network, data: AnnotationSet, truth: pd.Series, device) -> np.ndarray:
    """Accuracy of every run of ``network`` against ``truth``: (R,)."""
    labels = torch.as_tensor(data.dense_labels(), dtype=torch.long, device=device)
    mask = (labels >= 0).float()
    soft = data.dense_soft()
    soft = None if soft is None else torch.as_tensor(soft, dtype=torch.float32, device=device)
    hidden = predict_hidden(network, labels, mask, soft).argmax(-1).cpu().numpy()  # (R, n)
    mv = data.majority_vote()
    truth_codes = data.classes.get_indexer(truth.reindex(data.tasks).to_numpy())  # -1 where no truth
    known = truth_codes >= 0
    accs = []
    for h in hidden:
        pred = hungarian_class_map(h, mv, data.n_classes)[h]
        accs.append(float((pred[known] == truth_codes[known]).mean()))
    return np.array(accs)


def bench_set(name: str, epochs: int, device: str, seed: int) -> dict:
    frame, truth = load_set(name)
    data = AnnotationSet.from_long(frame)
    dev = resolve_device(device)
    mv = data.majority_vote()
    truth_codes = data.classes.get_indexer(truth.reindex(data.tasks).to_numpy())
    known = truth_codes >= 0
    mv_acc = float((mv[known] == truth_codes[known]).mean())

    started = time.perf_counter()
    sweep = run_sweep(data, lrs=DEFAULT_LRS, epochs=epochs, seed=seed, device=device)
    sweep_seconds = time.perf_counter() - started
    accs = run_accuracies(sweep.network, data, truth, dev)
    rec = sweep.recommendation
    by_lr = dict(zip(sweep.runs["lr"], accs))
    best_lr = max(by_lr, key=by_lr.get)
    worst_lr = min(by_lr, key=by_lr.get)

    started = time.perf_counter()
    single_lr = rec.lr if rec.lr is not None else DEFAULT_LRS[0]
    single = train_runs(data.dense_labels(), data.n_classes, [single_lr], [seed],
                        TrainingConfig(n_layers=1, epochs=epochs, device=device), soft=data.dense_soft())
    single_seconds = time.perf_counter() - started
    single_acc = float(run_accuracies(single.network, data, truth, dev)[0])
    return {
        "set": name, "tasks": data.n_tasks, "workers": data.n_workers, "classes": data.n_classes,
        "MV": mv_acc, "rec_lr": rec.lr, "rec_acc": by_lr.get(rec.lr, math.nan) if rec.lr is not None else math.nan,
        "alone_acc": single_acc, "best_lr": best_lr, "best_acc": by_lr[best_lr], "worst_lr": worst_lr,
        "worst_acc": by_lr[worst_lr], "gap": by_lr[best_lr] - by_lr.get(rec.lr, math.nan),
        "fallback": rec.fallback, "sweep_s": sweep_seconds, "one_run_s": single_seconds,
        "ratio": sweep_seconds / single_seconds, "per_lr": by_lr,
        "verdicts": {lr: v.category for lr, v in rec.verdicts.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=None, help="comma-separated set names (default: all available)")
    parser.add_argument("--epochs", type=int, default=DEFAULT_SWEEP_EPOCHS)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = available_sets(args.sets.split(",") if args.sets else None)
    print(f"# learning-rate sweep benchmark: grid {list(DEFAULT_LRS)}, {args.epochs} epochs, 1 layer, seed "
          f"{args.seed}, device {args.device}; {machine()}")
    rows = []
    for name in names:
        row = bench_set(name, args.epochs, args.device, args.seed)
        rows.append(row)
        per_lr = "  ".join(f"{lr:g}:{acc:.3f}({row['verdicts'][lr][:8]})" for lr, acc in row["per_lr"].items())
        print(f"{name}: {per_lr}", flush=True)
    table = pd.DataFrame(rows).drop(columns=["per_lr", "verdicts"])
    print()
    print("| set | tasks x workers x K | MV | recommended lr | acc @ rec (sweep run) | acc @ rec (alone) | best lr (acc) "
          "| worst lr (acc) | best - rec | sweep of 8 (s) | one run (s) | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in table.itertuples():
        rec_lr = "none" if r.rec_lr is None else f"{r.rec_lr:g}" + (" (fallback)" if r.fallback else "")
        print(f"| {r.set} | {r.tasks}x{r.workers}x{r.classes} | {r.MV:.3f} | {rec_lr} | {r.rec_acc:.3f} | "
              f"{r.alone_acc:.3f} | {r.best_lr:g} ({r.best_acc:.3f}) | {r.worst_lr:g} ({r.worst_acc:.3f}) | "
              f"{100 * r.gap:.1f} pt | {r.sweep_s:.0f} | {r.one_run_s:.0f} | {r.ratio:.1f}x |", flush=True)
    within = int((table["gap"] <= 0.01 + 1e-9).sum())
    print(f"\nrecommendation within 1 point of the grid's best on {within} of {len(table)} sets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
