"""The dependence test's prediction kept to what it is, an agreement rate (issue 15; ``deem_core/methods/clusters.py``,
``_moment_test``, ``FEASIBLE_ONLY``).

H0's prediction ``trace(E[v_A r2^T] E[r1 r2^T]^-1 E[r1 v_B^T])`` is the rate at which A and B would agree were they
independent given the class: a number in [0, 1]. Where the other workers' halves meet the two sides on few tasks,
the inverted moment matrix can give any number; walkthrough 122's batch 3 (560 tasks, 4 classes, 36 workers) gave
-1.437 on 56 tasks, and seven independent workers were taken for a group (observed 0.598, z 6.6). A test whose
prediction lies outside [0, 1] is now not taken (as a test on too few tasks is not: the merge's other split is tried).

Tables, the search (and where its groups change, DEEM's defaults) with the check (``feasible``) and without
(``any``, the engine before the change):

1. The 58 validation sets (the selection table's 38, weak-sparse, held-out shapes; ``sparse_groups.validation_sets``):
   every set whose groups differ, with majority vote, Dawid-Skene and DEEM both ways; the count of the others.
2. Files given with ``--files ANSWERS=TRUTH ...`` (walkthroughs' sets, not in the repository): the same columns.

Usage: ``python benchmarks/feasible_prediction.py [--files a.csv=a.truth.csv ...]``.
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

from common import machine, with_attribute  # noqa: E402
from sparse_groups import validation_sets  # noqa: E402

from deem_core import DEEM  # noqa: E402
from deem_core.data.annotations import as_annotation_set  # noqa: E402
from deem_core.data.readers import read_annotations  # noqa: E402
from deem_core.methods import clusters as module  # noqa: E402
from deem_core.methods.registry import fit_method  # noqa: E402

MODES = {"feasible": True, "any": False}


def with_check(on: bool, call):
    return with_attribute(module, "FEASIBLE_ONLY", on, call)


def accuracy(labels: pd.Series, truth: pd.Series) -> float:
    return 100 * float((labels.reindex(truth.index).astype(str).to_numpy() == truth.astype(str).to_numpy()).mean())


def groups(data) -> dict[str, list]:
    return {key: with_check(on, lambda: sorted(sorted(map(str, c["workers"])) for c in module.find_dependence_clusters(
        data).summary(data.workers)["clusters"])) for key, on in MODES.items()}


def accuracy_row(name: str, frame: pd.DataFrame, truth: pd.Series | None, found: dict[str, list]) -> dict:
    row = {"set": name, "groups, feasible": " ".join(str(len(g)) for g in found["feasible"]) or "-",
           "groups, any": " ".join(str(len(g)) for g in found["any"]) or "-"}
    if truth is None:
        return row
    row["MV"] = accuracy(fit_method("mv", frame).labels_, truth)
    row["DS"] = accuracy(fit_method("ds", frame).labels_, truth)
    for key, on in MODES.items():
        model = with_check(on, lambda: DEEM(device="cpu").fit(frame))
        row[f"DEEM, {key}"] = accuracy(model.predict(), truth)
    return row


def truth_of(path: str) -> pd.Series:
    table = pd.read_csv(path)
    return pd.Series(table.iloc[:, 1].astype(str).to_numpy(), index=table.iloc[:, 0].astype(str))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", nargs="*", default=[], help="ANSWERS=TRUTH pairs")
    args = parser.parse_args(argv)
    import torch  # noqa: PLC0415

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    print(f"# python benchmarks/feasible_prediction.py; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"{machine()}; load average {os.getloadavg()[0]:.1f}\n")
    import selection  # noqa: PLC0415
    import weak_sparse  # noqa: PLC0415

    def truth_for(name: str) -> pd.Series | None:
        if name.startswith("weak_sparse:"):
            return weak_sparse.weak_sparse(int(name.split(":")[1]))[1]
        try:
            return selection.load(name)[1]
        except Exception:  # noqa: BLE001 (held-out shapes: their truth is not kept here)
            return None

    rows, same = [], 0
    for name, frame in validation_sets():
        data = as_annotation_set(frame)
        found = groups(data)
        if found["feasible"] == found["any"]:
            same += 1
            continue
        truth = truth_for(name)
        if truth is not None:
            frame = frame.copy()
            frame["task"] = frame["task"].astype(str)
            truth = pd.Series(truth.to_numpy(), index=truth.index.astype(str))
        rows.append(accuracy_row(name, frame, truth, found))
    print("1. validation sets whose groups differ (sizes of the groups found; accuracy %)")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda x: f"{x:.2f}") if rows else "(none)")
    print(f"the same groups on the other {same} sets\n")
    if args.files:
        rows = []
        for pair in args.files:
            answers, truth_path = pair.split("=")
            frame = read_annotations(answers).to_long()
            frame["task"] = frame["task"].astype(str)
            data = as_annotation_set(frame)
            found = groups(data)
            row = accuracy_row(Path(answers).name[:28], frame, truth_of(truth_path), found)
            row["changed"] = "yes" if found["feasible"] != found["any"] else "no"
            rows.append(row)
        print("2. files given")
        print(pd.DataFrame(rows).to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
