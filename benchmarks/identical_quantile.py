"""Which identical groups are one source: those agreeing with the crowd less often than its median worker (the rule of
the fifty-third session) or than its best tenth (``agreement.RIGHT_ON_EVERY_TASK_QUANTILE``, the fifty-fourth).

Workers identical on every one of many shared tasks are copies, or each right on all of them; a worker right on every
task agrees with the other workers' answers as often as the best of them. Walkthrough 124's copying pair (identical on
77 shared tasks) agreed with the crowd exactly as often as its median worker and was kept apart. For each set: the
identical groups counted once under each rule; where they differ, majority vote and DEEM's defaults under each.

Sets: ``identical_groups.py``'s families (copy_ring and experts, 8 seeds; sparse_pairs, 3), the 58 validation sets
(``sparse_groups.validation_sets``), and files given with ``--files`` (walkthroughs' own, not in the repository).

Usage: ``python benchmarks/identical_quantile.py [--files A.csv ...]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import identical_groups  # noqa: E402
from common import machine, with_attribute  # noqa: E402
from sparse_groups import validation_sets  # noqa: E402

from deem_core import DEEM  # noqa: E402
from deem_core.data.annotations import as_annotation_set  # noqa: E402
from deem_core.data.readers import read_annotations  # noqa: E402
from deem_core.methods import clusters  # noqa: E402
from deem_core.methods.registry import fit_method  # noqa: E402

RULES = {"median": 0.5, "best tenth": 0.9}


def with_quantile(quantile: float, call):
    return with_attribute(clusters, "RIGHT_ON_EVERY_TASK_QUANTILE", quantile, call)


def accuracy(labels: pd.Series, truth: pd.Series) -> float:
    return 100 * float((labels.reindex(truth.index).astype(str).to_numpy() == truth.astype(str).to_numpy()).mean())


def sets(files: list[str]):
    for family, make in identical_groups.FAMILIES.items():
        for seed in range(3 if family == "sparse_pairs" else 8):
            frame, truth = make(seed)
            yield f"{family}:{seed}", frame, truth
    for path in files:
        yield Path(path).name[:28], read_annotations(path).to_long(), None
    for name, frame in validation_sets():
        yield name, frame, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", nargs="*", default=[])
    args = parser.parse_args(argv)
    import torch  # noqa: PLC0415

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    print(f"# python benchmarks/identical_quantile.py; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"{machine()}; load average {os.getloadavg()[0]:.1f}")
    same = 0
    for name, frame, truth in sets(args.files):
        data = as_annotation_set(frame)
        found = {rule: with_quantile(q, lambda: [list(g["members"]) for g in clusters.find_dependence_clusters(
            data).identical]) for rule, q in RULES.items()}
        if found["median"] == found["best tenth"]:
            same += 1
            continue
        line = f"{name}: one source against the median {found['median']}, against the best tenth {found['best tenth']}"
        if truth is not None:
            frame = frame.assign(task=frame["task"].astype(str))
            truth = pd.Series(truth.to_numpy(), index=truth.index.astype(str))
            line += f"; MV {accuracy(fit_method('mv', frame).labels_, truth):.2f}" + "".join(
                f"; DEEM, {rule} {accuracy(with_quantile(q, lambda: DEEM(device='cpu').fit(frame)).predict(), truth):.2f}"
                for rule, q in RULES.items())
        print(line, flush=True)
    print(f"the same groups on the other {same} sets")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
