"""Accuracy and wall time of DEEM against classic aggregators (issues 2 and 7).

For every data set (the five ``sample_data`` sets and ``../shared/data/{duck,dog}``) prints one row per
method: accuracy (mean ± std over seeds; the seeds of a DEEM configuration train together as one batched
model, each scored on its own) and wall time. Rows (names from the method registry,
``deem_core.methods.registry``):

* ``Majority vote``, ``Dawid-Skene``, ``GLAD`` (crowd-kit 1.4.2; deterministic, one run) by default; any
  registered method by its key or name with ``--methods``;
* ``iRBM (mv)`` / ``iRBM (ds)``: DEEM with no layers from a majority-vote / Dawid-Skene start;
* ``DEEM-1 (mv)`` / ``DEEM-1 (ds)`` / ``DEEM-2 (ds)``: one or two multinomial layers;
* ``DEEM default``: ``DEEM()`` with its default settings;
* ``DEEM default + gold x%``: the default with x% of tasks' truth given as gold (class map + supervised
  term, weight 1), scored on the tasks *without* gold. The default ``init="auto"`` then trains both starts
  at once and lets the gold tasks overrule its unsupervised choice of start when they significantly favour
  the other (sign test, ``deem_core.methods.deem.challenger_wins``).

Accuracy follows ``deem_core.analysis.scoring.accuracy`` (the tasks with a truth among the annotated tasks).
Each set is read once as a long frame and once as an AnnotationSet, outside the timings; the methods the
registry marks ``sparse`` (DEEM, iRBM, majority vote, Dawid-Skene) get the AnnotationSet, the others the frame.

Usage::

    python benchmarks/accuracy.py                       # everything, 100 epochs, 3 seeds
    python benchmarks/accuracy.py --sets duck dog --epochs 50 --methods mv ds "DEEM default"

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
from common import available_sets, load_set, machine  # noqa: E402

from deem_core.analysis.scoring import accuracy  # noqa: E402
from deem_core.data.annotations import AnnotationSet  # noqa: E402
from deem_core.methods import registry  # noqa: E402

#: classic methods of the default table (registry keys)
DEFAULT_CLASSIC = ("mv", "ds", "glad")
GOLD_FRACTIONS = (0.01, 0.05, 0.10)


def deem_rows() -> dict[str, tuple[str, dict]]:
    """The DEEM configurations of the table: row name -> (registry key, options)."""
    irbm, deem = registry.display_name("irbm"), registry.display_name("deem")
    return {
        f"{irbm} (mv)": ("irbm", {"init": "mv"}),
        f"{irbm} (ds)": ("irbm", {"init": "ds"}),
        f"{deem}-1 (mv)": ("deem", {"n_layers": 1, "init": "mv"}),
        f"{deem}-1 (ds)": ("deem", {"n_layers": 1, "init": "ds"}),
        f"{deem}-2 (ds)": ("deem", {"n_layers": 2, "init": "ds"}),
        f"{deem} default": ("deem", {}),
    }


def table_rows(selected: list[str] | None = None, gold: bool = True) -> dict[str, tuple[str, dict, float]]:
    """Rows to run: name -> (registry key, options, gold fraction). ``selected`` picks rows by name or
    registry key (any registered method can be asked for by its key); by default the classic methods of
    DEFAULT_CLASSIC, the DEEM configurations and (with ``gold``) the gold rows."""
    rows = {registry.display_name(k): (k, {}, 0.0) for k in DEFAULT_CLASSIC}
    rows.update({name: (key, options, 0.0) for name, (key, options) in deem_rows().items()})
    if gold:
        rows.update({f"{registry.display_name('deem')} default + gold {int(f * 100)}%": ("deem", {}, f)
                     for f in GOLD_FRACTIONS})
    if not selected:
        return rows
    every = {**rows, **{spec.name: (key, {}, 0.0) for key, spec in registry.METHODS.items() if spec.name not in rows}}
    wanted = {registry.display_name(name) if name.lower() in registry.METHODS else name for name in selected}
    unknown = wanted - set(every)
    if unknown:
        raise SystemExit(f"unknown method(s) {sorted(unknown)}: use row names or keys ({', '.join(registry.METHODS)})")
    return {name: row for name, row in every.items() if name in wanted}  # in table order


def run_row(key: str, options: dict, df: pd.DataFrame, truth: pd.Series, epochs: int, seeds: int,
            gold_fraction: float = 0.0, data: AnnotationSet | None = None) -> tuple[list[float], float]:
    """Fit registry method ``key``; accuracy of every seed (trained methods) or of the one run, and seconds.
    ``data``: ``df`` as an AnnotationSet, given to the methods the registry marks ``sparse`` (built here,
    outside the timing, when not given)."""
    spec = registry.get_method(key)
    if spec.sparse and data is None:
        data = AnnotationSet.from_long(df)
    gold, scored = None, truth
    params = {"seed": 0, **options}
    if spec.trains:
        params.update(epochs=epochs, n_seeds=seeds)
    if gold_fraction:
        gold = truth.sample(frac=gold_fraction, random_state=0)
        scored = truth.drop(gold.index)
        params["supervised_weight"] = 1.0
    started = time.perf_counter()
    model = registry.fit_method(key, data if spec.sparse else df, gold=gold, **params)
    seconds = time.perf_counter() - started
    if not spec.trains:
        return [accuracy(model.labels_, scored)], seconds
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
    parser.add_argument("--methods", nargs="*", default=None,
                        help="rows to run: row names or registry keys (" + ", ".join(registry.METHODS) + ")")
    parser.add_argument("--no-gold", action="store_true", help="skip the gold-label rows")
    parser.add_argument("--csv", default=None, help="also write the long table here")
    args = parser.parse_args(argv)
    rows_to_run = table_rows(args.methods, gold=not args.no_gold)
    print(f"# machine: {machine()}; epochs {args.epochs}; seeds {args.seeds}", flush=True)
    rows = []
    for name in available_sets(args.sets):
        df, truth = load_set(name)
        data = AnnotationSet.from_long(df)
        print(f"\n## {name}: {df['task'].nunique()} tasks, {df['worker'].nunique()} workers, "
              f"{df['label'].nunique()} classes, {len(df)} answers", flush=True)
        print(f"{'method':<26} {'accuracy %':>16} {'seconds':>9}", flush=True)
        for method, (key, options, fraction) in rows_to_run.items():
            accs, seconds = run_row(key, options, df, truth, args.epochs, args.seeds, gold_fraction=fraction,
                                    data=data)
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
