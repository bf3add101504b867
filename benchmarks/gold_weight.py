"""What the gold-label weight does (``DEEM(supervised_weight=w)``, the Train page's "Gold-label weight", the CLI's
``--gold-weight``): gold labels on a random 20% of the tasks, the defaults otherwise, and the accuracy of the labels
on the other 80% (tasks the gold labels did not train on) and on the gold tasks themselves, for w = 0, 1, 10, 100.

Reading: the gold tasks' own accuracy rises with the weight (the model fits them), the others' does not keep rising
with it; the page's help text gives the scale from this table. A line names the weights whose labels a reference
gave (the safety rule: with gold labels it compares the trained model with majority vote and the cluster-weighted
Dawid-Skene on the gold tasks the supervised term did not train on).

Usage: ``python benchmarks/gold_weight.py [--sets tree3k dog ...] [--share 0.2]``
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

from common import available_sets, load_set, machine  # noqa: E402
from families import make_set  # noqa: E402

from deem_core import DEEM  # noqa: E402

WEIGHTS = (0.0, 1.0, 10.0, 100.0)
SETS = ["condind", "tree3k", "ampdata", "digits", "dog", "duck", "copies:0", "trio:0", "sparse:0"]


def load(spec: str) -> tuple[pd.DataFrame, pd.Series]:
    if ":" in spec:
        name, seed = spec.split(":")
        return make_set(name, int(seed))
    return load_set(spec)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=None)
    parser.add_argument("--share", type=float, default=0.2, help="share of the tasks given a gold label")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    sets = args.sets or [s for s in SETS if ":" in s or s in available_sets(SETS)]
    print(f"# python benchmarks/gold_weight.py --share {args.share}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())};"
          f" {machine()}; load average {os.getloadavg()[0]:.1f}")
    print(f"# accuracy % of the labels on the tasks without a gold label (other) and on the gold tasks (gold), gold "
          f"labels on a random {args.share:.0%} of the tasks; DEEM's defaults otherwise")
    rows = []
    for spec in sets:
        frame, truth = load(spec)
        frame = frame.astype({"task": str, "label": str})
        truth = truth.astype(str)
        truth.index = truth.index.astype(str)
        rng = np.random.default_rng(0)
        gold = truth.loc[rng.choice(truth.index.to_numpy(), int(args.share * len(truth)), replace=False)]
        other = truth.drop(gold.index)
        row, returned = {"set": spec}, []
        for weight in WEIGHTS:
            model = DEEM(supervised_weight=weight).fit(frame, gold=gold if weight else None)
            if model.fallback_:  # the safety rule's reference (or a collapse fallback) gave the labels
                returned.append(f"w={weight:g}: {model.fallback_}")
            labels = model.predict().astype(str)
            labels.index = labels.index.astype(str)
            row[f"other w={weight:g}"] = 100 * float((labels.reindex(other.index) == other).mean())
            row[f"gold w={weight:g}"] = 100 * float((labels.reindex(gold.index) == gold).mean())
        rows.append(row)
        print(f"{spec}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items() if k != "set")
              + (f"; labels returned by {'; '.join(returned)}" if returned else ""), flush=True)
    table = pd.DataFrame(rows).set_index("set")
    table.loc["mean"] = table.mean()
    print()
    print(table.round(2).to_string())
    sets_only = table.drop(index="mean")
    best = {f"{w:g}": int((sets_only[[f"other w={v:g}" for v in WEIGHTS]].idxmax(axis=1) == f"other w={w:g}").sum())
            for w in WEIGHTS}
    print(f"sets where each weight gives the best accuracy on the other tasks: {best}")


if __name__ == "__main__":
    main()
