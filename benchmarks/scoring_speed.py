"""Time of the one accuracy function (``deem_core.analysis.scoring.accuracy_and_count``) on text task ids: the
Results page scores every method of a run on gold labels given after it, on each rerun until kept (attack round
12: 57 s a rerun for 1,000,000 tasks x 9 methods, pandas' ``Index.isin`` taking 6 s per method).

Target: a million tasks x 9 methods in under 10 s on the 2-core CPU when the methods' frames share one task index
(as the Results page gives them); each frame with an index of its own is timed too.

Usage::

    python benchmarks/scoring_speed.py            # 100,000 and 1,000,000 tasks, 9 methods
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

from deem_core.analysis.scoring import accuracy_and_count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--methods", type=int, default=9)
    args = parser.parse_args()
    print(f"# accuracy_and_count on text task ids, {args.methods} methods; load average {os.getloadavg()[0]:.1f}")
    print(f"{'tasks':>10}  {'index':>8}  {'seconds':>8}  {'per method':>10}")
    for n in args.tasks:
        rng = np.random.default_rng(0)
        ids = np.array([f"t{i}" for i in range(n)], dtype=object)
        truth = pd.Series(rng.integers(0, 3, n), index=pd.Index(rng.permutation(ids)))  # another order, another index
        shared = pd.Index(ids, name="task")
        for kind in ("shared", "own"):
            frames = [pd.Series(rng.integers(0, 3, n), index=shared if kind == "shared" else
                                pd.Index(ids.copy(), name="task")) for _ in range(args.methods)]
            started = time.perf_counter()
            for labels in frames:
                accuracy, scored = accuracy_and_count(labels, truth)
                assert scored == n and 0.0 <= accuracy <= 1.0
            seconds = time.perf_counter() - started
            print(f"{n:>10,}  {kind:>8}  {seconds:>8.2f}  {seconds / args.methods:>10.3f}")


if __name__ == "__main__":
    main()
