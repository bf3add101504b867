"""Step 5 of the choice of start and depth (``deem_core/methods/choose.py``): where the kept model's labels follow a
dependence cluster it found, the cluster-weighted Dawid-Skene replaces it on any lead on the training answers.

DEEM's defaults with the step and without it (``FOLLOWED_ANY_LEAD``), beside majority vote, crowd-kit's Dawid-Skene
and the cluster-weighted Dawid-Skene (``--method cwds``), on three generated shapes with several seeds each:

- ``copy_group``: the shape walkthroughs 84-86 met (the step was made for it): 1,000 tasks, 5 classes (30/25/20/15/10%),
  40 workers right 55-90%, three answering at random, 4 answers a task; on half the tasks two of four workers w36-w39
  (right 60-75%) answer, the second copying the first 90% of the time.
- ``copy_expert``: the same, with the copied workers right 92-95%: following them is right here, and the step must
  not cost accuracy.
- ``busy_experts``: the copied workers right 88-92%, three of the four on 90% of the tasks (5 answers there): labels
  that follow an accurate group, where the step reads the reference against them.
- ``trio``: the ``trio`` family of ``families.py`` (a platform batch of 60 workers with a copying trio), seeds 3 and
  up (the 38-set table has seeds 0-2).

Usage: ``python benchmarks/followed_rule.py [--seeds 6]``; prints the table (accuracy in %).
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
from families import trio  # noqa: E402

from deem_core import DEEM  # noqa: E402
from deem_core.methods import choose as choose_module  # noqa: E402
from deem_core.methods.registry import fit_method  # noqa: E402


def copy_group(seed: int, expert: bool = False, busy: bool = False, n: int = 1000) -> tuple[pd.DataFrame, pd.Series]:
    """The shapes of the module docstring (``expert``: the copied workers right 92-95%; ``busy``: right 88-92%, and
    three of the four answer 90% of the tasks)."""
    rng = np.random.default_rng(31_000 + seed + (500 if expert else 0) + (900 if busy else 0))
    k, d = 5, 40
    truth = rng.choice(k, size=n, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    accuracy = rng.uniform(0.55, 0.9, d)
    accuracy[33:36] = 1.0 / k
    accuracy[36:] = (rng.uniform(0.88, 0.92, 4) if busy else rng.uniform(0.92, 0.95, 4) if expert
                     else rng.uniform(0.6, 0.75, 4))
    members, share = (3, 0.9) if busy else (2, 0.5)
    tasks, workers, labels = [], [], []
    for t in range(n):
        group = rng.random() < share
        chosen = (np.concatenate([rng.choice(np.arange(36, 40), members, replace=False),
                                  rng.choice(36, 2, replace=False)])
                  if group else rng.choice(36, 4, replace=False))
        shared = None
        for w in chosen:
            right = rng.random() < accuracy[w]
            label = int(truth[t]) if right else int(rng.choice([c for c in range(k) if c != truth[t]]))
            if w >= 36:
                if shared is None:
                    shared = label
                elif rng.random() < 0.9:
                    label = shared
            tasks.append(t)
            workers.append(f"w{w:02d}")
            labels.append(label)
    frame = pd.DataFrame({"task": tasks, "worker": workers, "label": labels})
    return frame, pd.Series(truth, index=pd.Index(np.arange(n), name="task"), name="truth")


SHAPES = {"copy_group": lambda seed: copy_group(seed), "copy_expert": lambda seed: copy_group(seed, expert=True),
          "busy_experts": lambda seed: copy_group(seed, busy=True), "trio": lambda seed: trio(3 + seed)}


def accuracy(labels: pd.Series, truth: pd.Series) -> float:
    return 100 * float((labels.reindex(truth.index).to_numpy() == truth.to_numpy()).mean())


def fit_deem(frame: pd.DataFrame, step: bool) -> tuple[DEEM, float]:
    started = time.process_time()
    choose_module.FOLLOWED_ANY_LEAD = step
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = DEEM(device="cpu").fit(frame)
    finally:
        choose_module.FOLLOWED_ANY_LEAD = True
    return model, time.process_time() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6)
    args = parser.parse_args(argv)
    import torch  # noqa: PLC0415

    torch.set_num_threads(1)
    rows = []
    for shape, make in SHAPES.items():
        for seed in range(args.seeds):
            frame, truth = make(seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                base = {name: accuracy(fit_method(name, frame).labels_, truth) for name in ("mv", "ds", "cwds")}
            off, off_s = fit_deem(frame, False)
            on, on_s = fit_deem(frame, True)
            fired = str(on.selection_summary_["reason"]).startswith("safety rule (labels following")
            rows.append({"shape": shape, "seed": seed, **base, "off": accuracy(off.labels_, truth),
                         "on": accuracy(on.labels_, truth), "fired": fired,
                         "off_followed": bool(off.selection_summary_.get("followed")),
                         "on_followed": bool(on.selection_summary_.get("followed")),
                         "off_cpu_s": off_s, "on_cpu_s": on_s, "load": os.getloadavg()[0]})
            r = rows[-1]
            print(f"{shape:12s} {seed}  MV {r['mv']:.2f} DS {r['ds']:.2f} CWDS {r['cwds']:.2f}  without the step "
                  f"{r['off']:.2f}{' (follows)' if r['off_followed'] else ''}  with it {r['on']:.2f}"
                  f"{' (fired)' if fired else ''}", flush=True)
    table = pd.DataFrame(rows)
    print(f"\n# {machine()}; DEEM defaults (1 layer, start chosen, 100 epochs), accuracy in %")
    print("# 'without' = FOLLOWED_ANY_LEAD off (the rule before the step); 'follows' = the kept labels follow a found "
          "cluster (the warning); 'fired' = the step returned the cluster-weighted Dawid-Skene")
    print(table.drop(columns=["off_cpu_s", "on_cpu_s", "load"]).round(2).to_string(index=False))
    summary = table.groupby("shape", sort=False).agg(
        sets=("seed", "size"), MV=("mv", "mean"), DS=("ds", "mean"), CWDS=("cwds", "mean"), without=("off", "mean"),
        with_step=("on", "mean"), fired=("fired", "sum"),
        below_mv_without=("off", lambda s: int((s < table.loc[s.index, "mv"] - 0.05).sum())),
        below_mv_with=("on", lambda s: int((s < table.loc[s.index, "mv"] - 0.05).sum())))
    print("\n## Per shape (means; below_mv = sets below majority vote by more than 0.05 points)")
    print(summary.round(2).to_string())
    print(f"\nCPU seconds per fit: without {table['off_cpu_s'].median():.1f}, with {table['on_cpu_s'].median():.1f} "
          f"(median); load average {table['load'].min():.1f}-{table['load'].max():.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
