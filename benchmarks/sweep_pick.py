"""Does training at the sweep's pick beat training at the default learning rate? (walkthrough 75)

The Sweep page recommends a learning rate read on energy-difference curves (``deem_core.analysis.recommend``);
a user then trains with it. Walkthrough 75's 900-task Toloka batch: every rate "too small" in the default sweep's
50 updates, a *tentative* pick of 1, and the training at 1 gave 82.67% where the default 0.01 gave 84.22% (majority
vote 82.44). This script measures, per set, the sweep with the Sweep page's defaults (the default grid, 50 epochs or
as many as make 200 updates a run, 1 layer, 1 seed, every task below 20,000 tasks) and then ``DEEM()`` with its defaults (start and depth as the
Train page's defaults choose them) at the sweep's pick and at the default rate; the truth only scores.

Measured first with 50 epochs on every set: training at the pick was less accurate than at the default on 11 of 21
sets, by up to 3.70 points (duck, sparse:800: one update an epoch, every small rate "too small"); with the page's
epochs since (``judged_epochs``: 200 updates a run at least) on 8, by up to 0.90 (``results/sweep_pick.txt``).

Sets: the bundled and shared sets, and generated families (``benchmarks/families.py``) at two sizes, a small one
(600-900 tasks: one mini-batch an epoch, where picks are tentative) and the family's own.

Usage::

    python benchmarks/sweep_pick.py                # writes results/sweep_pick.txt
    python benchmarks/sweep_pick.py --sets duck,families:independent
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import available_sets, load_set, machine  # noqa: E402
from families import FAMILIES  # noqa: E402

from deem_core.analysis.scoring import accuracy  # noqa: E402
from deem_core.data.annotations import AnnotationSet  # noqa: E402
from deem_core.methods.deem import DEEM, DEFAULT_LR  # noqa: E402
from deem_core.methods.sweep import DEFAULT_LRS, judged_epochs, run_sweep  # noqa: E402

FAMILY_SETS = ["independent", "groups", "copies", "sparse", "spammers", "imbalance", "trio"]
SMALL = 800


def make(name: str) -> tuple[pd.DataFrame, pd.Series]:
    if ":" in name:
        family, size = name.split(":")
        return FAMILIES[family](0, n=int(size)) if size != "own" else FAMILIES[family](0)
    return load_set(name)


def score(frame: pd.DataFrame, truth: pd.Series, lr: float) -> float:
    model = DEEM(lr=lr).fit(frame)
    labels = model.labels_
    return 100 * accuracy(labels, truth)


def bench(name: str) -> dict:
    frame, truth = make(name)
    data = AnnotationSet.from_long(frame)
    started = time.perf_counter()
    epochs = judged_epochs(data.n_tasks)  # (the page's default: 200 updates a run at least)
    sweep = run_sweep(data, lrs=DEFAULT_LRS, epochs=epochs)
    seconds = time.perf_counter() - started
    rec = sweep.recommendation
    mv = pd.Series(data.classes[data.majority_vote()], index=data.tasks)
    row = {"set": name, "tasks": data.n_tasks, "epochs": epochs, "updates/run": epochs * -(-data.n_tasks // 1024),
           "pick": rec.lr, "kind": "fallback" if rec.fallback else "settled" if rec.settled else "tentative",
           "MV": 100 * accuracy(mv, truth), "acc@default": score(frame, truth, DEFAULT_LR)}
    row["acc@pick"] = row["acc@default"] if rec.lr is None or np.isclose(rec.lr, DEFAULT_LR) else \
        score(frame, truth, rec.lr)
    row["pick-default"] = row["acc@pick"] - row["acc@default"]
    row["sweep_s"] = seconds
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", help="comma-separated: bundled/shared names, family:size or family:own")
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = args.sets.split(",") if args.sets else (
        available_sets() + [f"{f}:{SMALL}" for f in FAMILY_SETS] + [f"{f}:own" for f in FAMILY_SETS])
    rows = []
    for name in names:
        rows.append(bench(name))
        print({k: (round(v, 2) if isinstance(v, float) else v) for k, v in rows[-1].items()}, flush=True)
    table = pd.DataFrame(rows)
    shown = table.assign(pick=[f"{v:g}" if v is not None else "none" for v in table["pick"]])
    lines = [f"# python benchmarks/sweep_pick.py ({datetime.date.today()}; {machine()}; load average "
             f"{os.getloadavg()[0]:.2f})",
             f"# the Sweep page's defaults (grid {list(DEFAULT_LRS)}, judged_epochs(tasks) epochs: 50, or as many as "
             f"make 200 updates a run; 1 layer, 1 seed, from majority vote), then DEEM() at the pick and at the "
             f"default {DEFAULT_LR}; accuracy in percent",
             shown.to_string(index=False, float_format=lambda v: f"{v:.2f}")]
    for kind, part in table.groupby("kind"):
        diff = part["pick-default"]
        lines.append(f"{kind}: {len(part)} sets; pick - default mean {diff.mean():+.2f}, min {diff.min():+.2f}, "
                     f"max {diff.max():+.2f}; pick below majority vote on {(part['acc@pick'] < part['MV']).sum()}, "
                     f"default below majority vote on {(part['acc@default'] < part['MV']).sum()}")
    diff = table["pick-default"]
    lines.append(f"all: {len(table)} sets; training at the pick above training at the default on "
                 f"{int((diff > 0.005).sum())}, equal on {int((diff.abs() <= 0.005).sum())}, below on "
                 f"{int((diff < -0.005).sum())}; mean {diff.mean():+.2f}, min {diff.min():+.2f}, max {diff.max():+.2f}")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.sets:
        (ROOT / "benchmarks" / "results" / "sweep_pick.txt").write_text(text)


if __name__ == "__main__":
    main()
