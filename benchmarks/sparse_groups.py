"""Copying groups of four to six workers in sparse answers: the dependence search's second split (issue 15).

The tree of the search (``deem_core/methods/clusters.py``) splits a group one worker against the rest; in 3-5
answers a task the tasks where that worker, the rest and both halves of the other workers answered are too few to
test, and the group is not found (walkthrough 117's MTurk batch: a group of four unfound, DEEM 74.40 vs majority vote
76.60). Where the tree's split is not tested or not accepted, a merge of four or more is tested once more on the
split of its members on which both sides answered the most tasks, each group found kept whole.

Two tables, each with the search as it is (``both splits``) and with the second split switched off (``tree split
only``, the search before the change):

1. ``sparse_group`` sets (own generator, one per seed; written for this change, so not held out from it): 400-900
   tasks, 2-5 classes, 25-44 workers right 55-90%, 3-5 answers a task; on 25-45% of the tasks 2-4 members of a group
   of 4-6 answer, one shared opinion (right 40-65% of the time) that each gives 92% of the time. Majority vote,
   crowd-kit's Dawid-Skene, DEEM's defaults and whether the whole group was found.
2. The groups found on the selection table's 38 sets, the weak-sparse and held-out-shape families: every set where
   the two searches differ is printed, with the count of sets where they agree.

Usage: ``python benchmarks/sparse_groups.py [--seeds 12] [--no-validation]``.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from common import machine  # noqa: E402

from deem_core import DEEM  # noqa: E402
from deem_core.data.annotations import as_annotation_set  # noqa: E402
from deem_core.methods import clusters as module  # noqa: E402
from deem_core.methods.registry import fit_method  # noqa: E402

SEARCHES = {"both splits": module._other_split, "tree split only": lambda *args: None}


def sparse_group(seed: int) -> tuple[pd.DataFrame, pd.Series, list[str]]:
    """The set of table 1 for ``seed``: answers, truth and the group's workers."""
    rng = np.random.default_rng(5300 + seed)
    k, d, size, n = int(rng.integers(2, 6)), int(rng.integers(25, 45)), int(rng.integers(4, 7)), int(rng.integers(400, 900))
    truth = rng.integers(k, size=n)
    accuracy = rng.uniform(0.55, 0.9, d)
    group = np.arange(d - size, d)
    share, opinion_right = rng.uniform(0.25, 0.45), rng.uniform(0.4, 0.65)
    rows = []
    for t in range(n):
        answers = int(rng.integers(3, 6))
        copiers = (rng.choice(group, int(rng.integers(2, min(4, size) + 1)), replace=False) if rng.random() < share
                   else np.array([], dtype=int))[:answers - 1]
        others = rng.choice(d - size, answers - len(copiers), replace=False)
        wrong = [c for c in range(k) if c != truth[t]]
        opinion = int(truth[t]) if rng.random() < opinion_right else int(rng.choice(wrong))
        for w in np.concatenate([copiers, others]):
            if w in group and rng.random() < 0.92:
                label = opinion
            else:
                label = int(truth[t]) if rng.random() < accuracy[w] else int(rng.choice(wrong))
            rows.append((t, f"w{int(w):02d}", label))
    return (pd.DataFrame(rows, columns=["task", "worker", "label"]), pd.Series(truth),
            [f"w{int(w):02d}" for w in group])


def accuracy(labels: pd.Series, truth: pd.Series) -> float:
    return 100 * float((labels.reindex(truth.index).to_numpy() == truth.to_numpy()).mean())


def groups_found(data, search) -> list[list[str]]:
    module._other_split = search
    try:
        return [c["workers"] for c in module.find_dependence_clusters(data).summary(data.workers)["clusters"]]
    finally:
        module._other_split = SEARCHES["both splits"]


def family_table(seeds: int) -> pd.DataFrame:
    rows = []
    for seed in range(seeds):
        frame, truth, group = sparse_group(seed)
        row = {"seed": seed, "tasks": len(truth), "workers": frame["worker"].nunique(), "group": len(group),
               "MV": accuracy(fit_method("mv", frame).labels_, truth),
               "DS": accuracy(fit_method("ds", frame).labels_, truth)}
        for name, search in SEARCHES.items():
            module._other_split = search
            try:
                model = DEEM(device="cpu").fit(frame)
            finally:
                module._other_split = SEARCHES["both splits"]
            found = [c["workers"] for c in model.selection_summary_["clusters"]["clusters"]]
            row[f"DEEM, {name}"] = accuracy(model.predict(), truth)
            row[f"found, {name}"] = "whole" if [sorted(group)] == [sorted(g) for g in found] else (
                "part" if any(set(g) <= set(group) for g in found) else "no")
        rows.append(row)
    return pd.DataFrame(rows)


def validation_sets():
    import heldout_shapes  # noqa: PLC0415
    import selection  # noqa: PLC0415
    import weak_sparse  # noqa: PLC0415

    for spec in selection.default_sets():
        yield spec, selection.load(spec)[0]
    for seed in range(10):
        yield f"weak_sparse:{seed}", weak_sparse.weak_sparse(seed)[0]
    for shape, make in heldout_shapes.SHAPES.items():
        for seed in range(3):
            tasks, workers, labels, _ = make(np.random.default_rng(seed))
            yield f"{shape}:{seed}", pd.DataFrame({"task": tasks, "worker": workers, "label": labels})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=12)
    parser.add_argument("--no-validation", action="store_true")
    args = parser.parse_args(argv)
    import torch  # noqa: PLC0415

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    print(f"# python benchmarks/sparse_groups.py --seeds {args.seeds}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"{machine()}; load average {os.getloadavg()[0]:.1f}\n")
    table = family_table(args.seeds)
    print("1. sparse_group sets: accuracy (%) and whether the group was found")
    print(table.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    for name in SEARCHES:
        below = int((table[f"DEEM, {name}"] < table["MV"] - 1e-9).sum())
        whole = int((table[f"found, {name}"] == "whole").sum())
        print(f"DEEM, {name}: mean {table[f'DEEM, {name}'].mean():.2f} (MV {table['MV'].mean():.2f}, "
              f"DS {table['DS'].mean():.2f}); below MV on {below} of {len(table)}; group found whole on {whole}")
    if args.no_validation:
        return 0
    print("\n2. groups found on the validation sets, where the two searches differ")
    same = 0
    for name, frame in validation_sets():
        data = as_annotation_set(frame)
        found = {key: groups_found(data, search) for key, search in SEARCHES.items()}
        if found["both splits"] == found["tree split only"]:
            same += 1
            continue
        print(f"{name}: both splits {found['both splits']}; tree split only {found['tree split only']}")
    print(f"the same groups on the other {same} sets")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
