"""Depth chosen without labels on the MnistE rebuild of the issue (60,000 x 15 x 10, ``make_mnist_like`` seed 0).

The issue measured 2 layers, 100 epochs at 95.06% there (DS 91.33): the place where layers should help. This runs
``DEEM(n_layers="auto", init="auto")`` (6 candidates on 90% of the answers) and prints every candidate's criterion
beside its accuracy, the choice, majority vote, Dawid-Skene and the cost; ``--fixed`` also trains the explicit
depths a user could choose (``DEEM(n_layers=d)``, the start chosen) on all answers.

Usage::

    python benchmarks/mnist_depth.py [--tasks 60000] [--fixed 0 1 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "sample_data"))
from common import machine  # noqa: E402
from make_sample_data import make_mnist_like  # noqa: E402

from deem_core import DEEM  # noqa: E402
from deem_core.analysis.selection import evidence_lines  # noqa: E402
from deem_core.data.annotations import AnnotationSet  # noqa: E402
from deem_core.methods.choose import labels_of  # noqa: E402
from deem_core.methods.registry import fit_method  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=60000)
    parser.add_argument("--fixed", type=int, nargs="*", default=[])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"# python benchmarks/mnist_depth.py --tasks {args.tasks} --fixed {' '.join(map(str, args.fixed))}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {machine()}; load average {os.getloadavg()[0]:.1f}")
    frame, truth = make_mnist_like(n_tasks=args.tasks, n_workers=15, n_classes=10, seed=0)
    data = AnnotationSet.from_long(frame)
    y = data.classes.get_indexer(truth.reindex(data.tasks).to_numpy())

    def acc(codes) -> float:
        return 100 * float((np.asarray(codes) == y).mean())

    mv = data.majority_vote()
    ds = data.classes.get_indexer(fit_method("ds", data, seed=0).labels_.reindex(data.tasks))
    print(f"MV {acc(mv):.2f} | DS (crowd-kit) {acc(ds):.2f}", flush=True)
    cpu = time.process_time()
    model = DEEM(n_layers="auto", init="auto", device="cpu").fit(data)
    cpu = time.process_time() - cpu
    summary = model.selection_summary()
    chosen = "fallback: " + model.fallback_ if model.fallback_ else f"{model.init_} start, {model.n_layers_} layer(s)"
    print(f"\n## n_layers='auto', init='auto': {acc(data.classes.get_indexer(model.predict())):.2f} ({chosen}); "
          f"{cpu:.0f} s CPU; rule: {summary['reason']}")
    print("clusters: " + "; ".join(",".join(map(str, g["workers"])) for g in summary["clusters"]["clusters"]))
    lines = evidence_lines(summary)
    print(lines[0] + "  accuracy")
    accuracy = [acc(labels_of(c.result.network, data, mv, model.device_)) for c in model.candidates_]
    for line, value in zip(lines[1:], accuracy):
        print(f"{line:<100}  {value:.2f}")
    for line in lines[1 + len(accuracy):]:
        print(line)
    for depth in args.fixed:
        cpu = time.process_time()
        fixed = DEEM(n_layers=depth, device="cpu").fit(data)
        cpu = time.process_time() - cpu
        print(f"\n## n_layers={depth} (start chosen: {fixed.init_}{', fallback: ' + fixed.fallback_ if fixed.fallback_ else ''}):"
              f" {acc(data.classes.get_indexer(fixed.predict())):.2f}; {cpu:.0f} s CPU", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
