"""DEEM on sets too small to choose its start from held-out answers (issue 15; walkthrough 54's 60-task export).

When holding out 10% of the answers (at most one a task) leaves fewer than ``MIN_HELDOUT`` (30) answers to score
on, ``init="auto"`` cannot choose and no safety rule can compare the labels with majority vote: the Dawid-Skene
start is used, with 1 layer. This measures that default against the other start such a set could get, beside
majority vote and Dawid-Skene:

- ``DEEM default``: ``DEEM()`` (on these sets the Dawid-Skene start, 1 layer);
- ``DEEM mv start``: ``DEEM(init="mv")`` (the start that estimates nothing from the few answers there are; walkthrough
  54's 60-task export read 90.0% with the default, 93.3 with this start, 96.7 with majority vote).

Families (every set is checked to be too small to choose on; a set that is not is drawn again):

- ``independent``: 20-90 tasks, 3-25 workers right 50-90%, 2-5 classes, 2-3 answers a task;
- ``mixed``: the same sizes with imbalanced classes and a share of workers who always give one class or give the
  next class 70% of the time;
- ``real:NAME``: random cuts of 20-28 tasks of a real crowd set with truth (``../shared/data``'s dog and duck, the
  sample platform set, and any ``NAME=ANSWERS.csv,TRUTH.csv`` given on the command line).

Usage: ``python benchmarks/small_sets.py [--draws 30] [--cuts 16] [NAME=ANSWERS.csv,TRUTH.csv ...]``; prints
the mean accuracy (%) per family, the mean gap to majority vote and on how many sets each is below it.
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

from common import SAMPLE_DIR, SHARED_DATA, machine  # noqa: E402

from deem_core import DEEM  # noqa: E402
from deem_core.analysis.selection import MIN_HELDOUT, heldout_size  # noqa: E402
from deem_core.data.annotations import AnnotationSet  # noqa: E402
from deem_core.methods.registry import fit_method  # noqa: E402

COLUMNS = ("MV", "DS", "DEEM default", "DEEM mv start")


def generated(rng: np.random.Generator, mixed: bool) -> tuple[pd.DataFrame, pd.Series]:
    n_tasks, n_workers = int(rng.choice([20, 40, 60, 90])), int(rng.choice([3, 5, 10, 25]))
    k = int(rng.choice([2, 3, 5]))
    per_task = int(min(n_workers, rng.choice([2, 3])))
    prior = rng.dirichlet(np.full(k, 0.7)) if mixed else np.full(k, 1 / k)
    truth = rng.choice(k, n_tasks, p=prior)
    accuracy = rng.uniform(0.55, 0.95, n_workers) if mixed else rng.uniform(0.5, 0.9, n_workers)
    kind = rng.choice([0, 0, 0, 1, 2], n_workers) if mixed else np.zeros(n_workers, dtype=int)
    rows = []
    for task in range(n_tasks):
        for worker in rng.choice(n_workers, per_task, replace=False):
            if kind[worker] == 1:  # always the first class
                label = 0
            elif kind[worker] == 2:  # the next class 70% of the time
                label = (truth[task] + 1) % k if rng.random() < 0.7 else truth[task]
            elif rng.random() < accuracy[worker]:
                label = truth[task]
            else:
                label = (truth[task] + rng.integers(1, k)) % k
            rows.append((f"t{task}", f"w{worker}", f"c{label}"))
    frame = pd.DataFrame(rows, columns=["task", "worker", "label"])
    return frame, pd.Series([f"c{c}" for c in truth], index=[f"t{t}" for t in range(n_tasks)])


def cut(frame: pd.DataFrame, truth: pd.Series, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.Series]:
    tasks = np.array(sorted(set(frame["task"]) & set(truth.index)))
    picked = rng.choice(tasks, int(rng.choice([20, 25, 28])), replace=False)
    return frame[frame["task"].isin(picked)].reset_index(drop=True), truth.reindex(picked)


def read(answers: str, truth: str) -> tuple[pd.DataFrame, pd.Series]:
    frame = pd.read_csv(answers).iloc[:, :3].astype(str)
    frame.columns = ["task", "worker", "label"]
    gold = pd.read_csv(truth).iloc[:, :2].astype(str)
    return frame, gold.set_index(gold.columns[0])[gold.columns[1]]


def accuracy(labels: pd.Series, truth: pd.Series) -> float:
    return float(100 * (labels.astype(str).reindex(truth.index.astype(str)).to_numpy() == truth.to_numpy()).mean())


def measure(frame: pd.DataFrame, truth: pd.Series, seed: int) -> dict | None:
    data = AnnotationSet.from_long(frame)
    if data.n_classes < 2 or heldout_size(data) >= MIN_HELDOUT:
        return None
    truth = truth.astype(str)
    truth.index = truth.index.astype(str)
    out = {"tasks": data.n_tasks, "workers": data.n_workers, "classes": data.n_classes, "answers": data.n_answers}
    for name, method in (("MV", "mv"), ("DS", "ds")):
        labels = fit_method(method, data, seed=seed).labels_
        labels.index = labels.index.astype(str)
        out[name] = accuracy(labels, truth)
    for name, settings in (("DEEM default", {}), ("DEEM mv start", {"init": "mv"})):
        labels = DEEM(seed=seed, **settings).fit(data).predict()
        labels.index = labels.index.astype(str)
        out[name] = accuracy(labels, truth)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=30, help="generated sets per family")
    parser.add_argument("--cuts", type=int, default=16, help="cuts of each real set")
    parser.add_argument("--table", help="also write every set's figures to this CSV")
    parser.add_argument("sets", nargs="*", help="NAME=ANSWERS.csv,TRUTH.csv")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    print(f"# python benchmarks/small_sets.py --draws {args.draws} --cuts {args.cuts} "
          f"{' '.join(s.split('=')[0] + '=...' for s in args.sets)}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())};"
          f" {machine()}; load average {os.getloadavg()[0]:.1f}")
    real = {}
    for name in ("dog", "duck"):
        if (SHARED_DATA / f"{name}.csv.gz").exists():
            real[name] = read(SHARED_DATA / f"{name}.csv.gz", SHARED_DATA / f"{name}.truth.csv.gz")
    real["platform_small"] = read(SAMPLE_DIR / "platform_small.csv.gz", SAMPLE_DIR / "platform_small.truth.csv.gz")
    for spec in args.sets:
        name, paths = spec.split("=", 1)
        real[name] = read(*paths.split(",", 1))
    rows, started = [], time.perf_counter()
    for family in ("independent", "mixed"):
        rng, kept = np.random.default_rng(1 if family == "mixed" else 0), 0
        while kept < args.draws:
            result = measure(*generated(rng, family == "mixed"), seed=kept)
            if result is not None:
                rows.append({"family": family, **result})
                kept += 1
    for name, (frame, truth) in real.items():
        rng = np.random.default_rng(2)
        for draw in range(args.cuts):
            result = measure(*cut(frame, truth, rng), seed=draw)
            if result is not None:
                rows.append({"family": f"real:{name}", **result})
    table = pd.DataFrame(rows)
    if args.table:
        table.to_csv(args.table, index=False)
    summary = table.groupby("family", sort=False)[list(COLUMNS)].mean()
    summary.insert(0, "sets", table.groupby("family", sort=False).size())
    for column in COLUMNS[1:]:
        summary[f"{column} - MV"] = (table[column] - table["MV"]).groupby(table["family"], sort=False).mean()
        summary[f"{column} < MV"] = (table[column] < table["MV"] - 1e-9).groupby(table["family"], sort=False).sum()
    print(f"\n{len(table)} sets, each too small to choose on (fewer than {MIN_HELDOUT} answers held out); "
          f"{table.tasks.min()}-{table.tasks.max()} tasks, {table.answers.min()}-{table.answers.max()} answers; "
          f"{time.perf_counter() - started:.0f} s\n")
    print(summary.to_string(float_format=lambda v: f"{v:.2f}"))
    print("\nall sets: " + ", ".join(f"{c} {table[c].mean():.2f}" for c in COLUMNS) +
          "; below MV on: " + ", ".join(f"{c} {int((table[c] < table.MV - 1e-9).sum())}" for c in COLUMNS[1:]))


if __name__ == "__main__":
    main()
