"""Accuracy and wall time of DEEM against classic aggregators (issues 2 and 7).

For every data set (the five ``sample_data`` sets and ``../shared/data/{duck,dog}``) prints one row per
method: accuracy (mean ± std over seeds; the seeds of a DEEM configuration train together as one batched
model, each scored on its own) and wall time. Methods:

* ``MV``, ``DS``, ``GLAD`` (crowd-kit 1.4.2; deterministic, one run);
* ``iRBM (mv)`` / ``iRBM (ds)``: DEEM with no layers from a majority-vote / Dawid-Skene start;
* ``DEEM-1 (mv)`` / ``DEEM-1 (ds)`` / ``DEEM-2 (ds)``: one or two multinomial layers;
* ``DEEM default``: ``DEEM()`` with its default settings;
* ``DEEM default + gold x%``: the default with x% of tasks' truth given as gold (class map + supervised
  term, weight 1), scored on the tasks *without* gold. The default ``init="auto"`` then trains both starts
  at once and lets the gold tasks overrule its unsupervised choice of start when they significantly favour
  the other (sign test, ``deem_core.methods.deem.challenger_wins``).

Usage::

    python benchmarks/accuracy.py                       # everything, 100 epochs, 3 seeds
    python benchmarks/accuracy.py --sets duck dog --epochs 50 --methods MV DS "DEEM default"

Truth is used only to score (and for the gold rows).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import accuracy, available_sets, load_set, machine  # noqa: E402

from deem_core import DEEM  # noqa: E402
from deem_core.methods.baselines import make_aggregator  # noqa: E402

CONFIGS: dict[str, dict] = {
    "iRBM (mv)": {"n_layers": 0, "init": "mv"},
    "iRBM (ds)": {"n_layers": 0, "init": "ds"},
    "DEEM-1 (mv)": {"n_layers": 1, "init": "mv"},
    "DEEM-1 (ds)": {"n_layers": 1, "init": "ds"},
    "DEEM-2 (ds)": {"n_layers": 2, "init": "ds"},
    "DEEM default": {},
}
GOLD_FRACTIONS = (0.01, 0.05, 0.10)
BASELINES = ("MV", "DS", "GLAD")


def run_baseline(name: str, df: pd.DataFrame, truth: pd.Series) -> tuple[list[float], float]:
    started = time.perf_counter()
    labels = make_aggregator(name.lower(), seed=0).fit_predict(df)
    return [accuracy(labels, truth)], time.perf_counter() - started


def run_deem(config: dict, df: pd.DataFrame, truth: pd.Series, epochs: int, seeds: int,
             gold_fraction: float = 0.0) -> tuple[list[float], float]:
    gold = None
    scored = truth
    params = dict(config)
    if gold_fraction:
        gold = truth.sample(frac=gold_fraction, random_state=0)
        scored = truth.drop(gold.index)
        params["supervised_weight"] = 1.0
    started = time.perf_counter()
    model = DEEM(epochs=epochs, n_seeds=seeds, seed=0, **params).fit(df, gold=gold)
    seconds = time.perf_counter() - started
    accs = []
    for run_labels in model.run_labels_:  # (R, n) class codes per seed
        pred = pd.Series(model.classes_.take(run_labels), index=model.tasks_)
        accs.append(accuracy(pred, scored))
    return accs, seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="*", default=None)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--methods", nargs="*", default=None, help="subset of the method names")
    parser.add_argument("--no-gold", action="store_true", help="skip the gold-label rows")
    parser.add_argument("--csv", default=None, help="also write the long table here")
    args = parser.parse_args(argv)
    methods = list(BASELINES) + list(CONFIGS)
    if not args.no_gold:
        methods += [f"DEEM default + gold {int(f * 100)}%" for f in GOLD_FRACTIONS]
    if args.methods:
        methods = [m for m in methods if m in args.methods]
    print(f"# machine: {machine()}; epochs {args.epochs}; seeds {args.seeds}", flush=True)
    rows = []
    for name in available_sets(args.sets):
        df, truth = load_set(name)
        print(f"\n## {name}: {df['task'].nunique()} tasks, {df['worker'].nunique()} workers, "
              f"{df['label'].nunique()} classes, {len(df)} answers", flush=True)
        print(f"{'method':<26} {'accuracy %':>16} {'seconds':>9}", flush=True)
        for method in methods:
            if method in BASELINES:
                accs, seconds = run_baseline(method, df, truth)
            elif method in CONFIGS:
                accs, seconds = run_deem(CONFIGS[method], df, truth, args.epochs, args.seeds)
            else:
                fraction = float(method.rsplit(" ", 1)[1].rstrip("%")) / 100
                accs, seconds = run_deem({}, df, truth, args.epochs, args.seeds, gold_fraction=fraction)
            mean, std = 100 * np.mean(accs), 100 * np.std(accs)
            print(f"{method:<26} {mean:>9.2f} ± {std:4.2f} {seconds:>9.1f}", flush=True)
            rows.append({"set": name, "method": method, "accuracy_mean": mean, "accuracy_std": std,
                         "seconds": seconds, "n_runs": len(accs)})
    if args.csv:
        pd.DataFrame(rows).to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    torch.set_num_threads(max(1, torch.get_num_threads()))
    sys.exit(main())
