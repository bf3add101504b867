"""DEEM's defaults against the classic methods on real crowd sets kept outside the project (issue 15).

Each set is two CSV files given on the command line: the answers (task, worker, label: the first three columns,
whatever their names) and the truth (task, truth: the first two). The figures in ``benchmarks/results/real_sets.txt``
come from two public sets of the truth-inference benchmark of Zheng et al. (VLDB 2017), as published in the GitHub
repository zhydhkcws/crowd_truth_infer (``datasets/s4_Face Sentiment Identification`` and ``datasets/d_jn-product``),
and from public sets collected in the GitHub repository yuan-li/truth-inference-at-scale (``data/``: RTE, TEMP and
the CrowdFlower weather-sentiment set in the thirty-ninth session; bluebird, MS, CF_amt, SP_amt, ZenCrowd_in,
ZenCrowd_us, web and d_sentiment in the fortieth); none is copied into this project.

Usage::

    python benchmarks/real_sets.py [--on-conflict first] NAME=ANSWERS.csv,TRUTH.csv [NAME=...]

(``--on-conflict``: what to keep where one worker gave one task different labels, as the CLI's option; by default
such a set is refused, as the engine refuses it.)

Prints per set: majority vote and the registry's classic methods, DEEM's defaults (``DEEM()``: 1 layer, start
chosen), every explicit depth (``n_layers=0/1/2``), ``n_layers="auto"`` and each fixed start, with the choice made
and the seconds taken.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import machine  # noqa: E402

from deem_core import DEEM  # noqa: E402
from deem_core.data.annotations import AnnotationSet, DataError  # noqa: E402
from deem_core.methods.registry import fit_method  # noqa: E402

CLASSIC = ("mv", "wawa", "ds", "glad", "mmsr")
DEEM_SETTINGS = (("defaults", {}), ("n_layers=0", {"n_layers": 0}), ("n_layers=2", {"n_layers": 2}),
                 ("n_layers=auto", {"n_layers": "auto"}), ("init=ds", {"init": "ds"}), ("init=mv", {"init": "mv"}))


def read(answers: str, truth: str) -> tuple[pd.DataFrame, pd.Series]:
    frame = pd.read_csv(answers).iloc[:, :3]
    frame.columns = ["task", "worker", "label"]
    gold = pd.read_csv(truth).iloc[:, :2]
    gold.columns = ["task", "truth"]
    return frame, gold.set_index("task")["truth"]


def accuracy(labels: pd.Series, truth: pd.Series) -> float:
    labels = labels.reindex(truth.index)
    known = labels.notna()
    return float(100 * (labels[known].astype(str).to_numpy() == truth[known].astype(str).to_numpy()).mean())


def run(name: str, answers: str, truth_path: str, on_conflict: str = "error") -> None:
    frame, truth = read(answers, truth_path)
    try:
        data = AnnotationSet.from_long(frame, on_conflict=on_conflict)
    except DataError as exc:  # (repeated answers that differ, by default: the other sets still run)
        print(f"\n## {name}: not read: {exc}", flush=True)
        return
    print(f"\n## {name}: {data.n_tasks:,} tasks x {data.n_workers:,} workers x {data.n_classes} classes, "
          f"{data.n_annotations:,} answers ({len(frame):,} rows; on_conflict={on_conflict!r}), truth for "
          f"{int(truth.index.isin(data.tasks).sum()):,} tasks")
    for method in CLASSIC:
        started = time.perf_counter()
        try:
            labels = fit_method(method, data, seed=0).labels_
        except DataError as exc:  # (M-MSR past its size limit)
            print(f"  {method:14s}  not run: {exc}", flush=True)
            continue
        print(f"  {method:14s} {accuracy(labels, truth):6.2f}   {time.perf_counter() - started:6.1f} s", flush=True)
    for label, settings in DEEM_SETTINGS:
        started = time.perf_counter()
        model = DEEM(seed=0, **settings).fit(data)
        seconds = time.perf_counter() - started
        summary = model.selection_summary_ or {}
        choice = summary.get("fallback") or f"{summary.get('start') or model.init_} start, {model.n_layers_} layer(s)"
        print(f"  DEEM {label:14s} {accuracy(model.predict(), truth):6.2f}   {seconds:6.1f} s   {choice}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="+", help="NAME=ANSWERS.csv,TRUTH.csv")
    parser.add_argument("--on-conflict", default="error", choices=("error", "first", "last"),
                        help="a worker who gave one task different labels (as the CLI's --on-conflict)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    print(f"# python benchmarks/real_sets.py ...; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"{machine()}; load average {os.getloadavg()[0]:.1f}")
    for spec in args.sets:
        name, files = spec.split("=", 1)
        answers, truth = files.split(",", 1)
        run(name, answers, truth, args.on_conflict)


if __name__ == "__main__":
    main()
