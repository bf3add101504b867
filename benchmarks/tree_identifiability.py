"""Which latent variable do the aggregators recover on App. H's tree [1, 2, 5]?

The tree draws the true class Y, two hidden nodes g1 and g2 from it (each a noisy copy of Y), and five workers
from each node. The answers are then a latent tree in which Y and one of the two nodes are a chain with nothing
else hanging off it: conditionally on g1, the five g1 workers and the whole g2 side are independent, exactly as
the ``copies`` family's independent workers and its copied group are independent given the truth. The answers
cannot say whether the truth is Y or g1 (or g2): two views of Y are not enough to identify it.

This script scores majority vote, Dawid-Skene (crowd-kit), the cluster-weighted Dawid-Skene and DEEM's default
against Y and against each hidden node (``df.attrs['node_labels']`` of ``make_tree``), for the tree seeds of the
``apph`` validation family (``apph:1`` is seed 8001; the others are new). It is the measurement behind the
closing note's claim that apph:1 being below majority vote is not something a rule without labels can fix: the
default recovers the hidden node of the group the dependence test could not test (about 99%), whichever it is,
and says beside the choice that this group could not be tested.

Usage::

    python benchmarks/tree_identifiability.py [--seeds 1 4 7 10 13 16]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "sample_data"))
from common import machine  # noqa: E402
from make_sample_data import make_tree  # noqa: E402

from deem_core import DEEM  # noqa: E402
from deem_core.data.annotations import AnnotationSet  # noqa: E402
from deem_core.methods.clusters import ClusterWeightedDawidSkene  # noqa: E402
from deem_core.methods.registry import fit_method  # noqa: E402

METHODS = ("MV", "DS", "CWDS", "DEEM default")


def run_seed(seed: int) -> tuple[list[str], dict[str, dict[str, float]], float]:
    frame, truth = make_tree(n_tasks=2000, n_classes=4, layers=(1, 2, 5), seed=8000 + seed)
    data = AnnotationSet.from_long(frame)
    references = {"Y (the truth)": truth}
    references.update({f"node {name}": pd.Series(values, index=truth.index)
                       for name, values in frame.attrs["node_labels"].items()})
    cwds = ClusterWeightedDawidSkene().fit(data)
    summary = cwds.clusters_.summary(data.workers)
    found = [",".join(str(w) for w in group["workers"]) for group in summary["clusters"]]
    found += [f"not testable: {','.join(str(w) for w in group)}" for group in summary["untestable"]]
    cpu = time.process_time()
    deem = DEEM(device="cpu").fit(data)
    cpu = time.process_time() - cpu
    labels = {"MV": pd.Series(data.classes.take(data.majority_vote()), index=data.tasks),
              "DS": fit_method("ds", data, seed=0).labels_, "CWDS": cwds.labels_,
              "DEEM default": pd.Series(deem.predict(), index=data.tasks)}
    table = {ref: {name: 100 * float((labels[name].reindex(target.index).to_numpy() == target.to_numpy()).mean())
                   for name in METHODS} for ref, target in references.items()}
    return found, table, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 4, 7, 10, 13, 16])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"# python benchmarks/tree_identifiability.py --seeds {' '.join(map(str, args.seeds))}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {machine()}; load average {os.getloadavg()[0]:.1f}")
    print("# tree [1, 2, 5], K=4, 2,000 tasks x 10 workers; accuracy in % against the truth Y and each hidden node")
    against_y = {name: [] for name in METHODS}
    for seed in args.seeds:
        found, table, cpu = run_seed(seed)
        print(f"\n## apph:{seed} (seed {8000 + seed}); dependence cluster found: {' | '.join(found) or '-'}; "
              f"DEEM default {cpu:.1f} s CPU")
        print("| against | " + " | ".join(METHODS) + " |")
        print("|---|" + "---:|" * len(METHODS))
        for ref, row in table.items():
            print(f"| {ref} | " + " | ".join(f"{row[name]:.2f}" for name in METHODS) + " |")
        for name in METHODS:
            against_y[name].append(table["Y (the truth)"][name])
    print(f"\n## mean over {len(args.seeds)} seeds, against Y")
    print("| " + " | ".join(METHODS) + " | seeds where DEEM default < MV |")
    print("|" + "---:|" * (len(METHODS) + 1))
    below = sum(d < m - 0.05 for d, m in zip(against_y["DEEM default"], against_y["MV"]))
    print("| " + " | ".join(f"{np.mean(against_y[name]):.2f}" for name in METHODS) + f" | {below} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
