"""How well a fitted DEEM's per-worker accuracy reading tracks the workers' true accuracies, on the real crowd sets
with ground truth in ``../shared/data`` (read from there, never copied).

Two readings of the same model: Lemma 1 (``DEEM.estimated_accuracy()``: the iRBM's confusion matrices weighted by
its class prior; with layers, the iRBM's view of the last layer's output) and the posterior's
(``estimated_accuracy(data=...)``, what the worker table and the quality table show for a layered model: the mean
posterior probability of the labels the worker gave). Printed: the mean absolute error against each worker's
accuracy on the truth and the correlation with it (Pearson, over workers).

Usage::

    python benchmarks/worker_accuracy.py     # writes results/worker_accuracy.txt
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
CASES = [("duck", 0.01, 100), ("dog", 0.01, 100), ("dog", 0.3, 1000)]  # (the last: walkthrough 67's sweep pick)


def measure(name: str, lr: float, epochs: int) -> dict:
    from deem_core import DEEM  # noqa: PLC0415
    from deem_core.data.formats import read_dataset  # noqa: PLC0415

    data = read_dataset(SHARED / f"{name}.csv.gz").data
    truth = pd.read_csv(SHARED / f"{name}.truth.csv.gz")
    truth = pd.Series(truth.iloc[:, 1].astype(str).to_numpy(), index=truth.iloc[:, 0].astype(str))
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = DEEM(lr=lr, epochs=epochs, device="cpu").fit(data)
    seconds = time.perf_counter() - started
    tasks = pd.Index(data.tasks).astype(str)[data.task_codes]
    given = pd.Index(data.classes).astype(str)[data.label_codes]
    right = pd.Series(np.asarray(given) == truth.reindex(tasks).to_numpy(), dtype=float)
    known = truth.reindex(tasks).notna().to_numpy()
    workers = pd.Index(data.workers)[data.worker_codes]
    true = right[known].groupby(np.asarray(workers)[known]).mean()
    row = {"set": name, "lr": lr, "epochs": epochs, "layers": int(model.n_layers_), "workers": len(true),
           "fit_s": round(seconds, 1)}
    for label, reading in (("lemma1", model.estimated_accuracy()), ("posterior", model.estimated_accuracy(data=data))):
        values = reading.reindex(true.index).to_numpy()
        row[f"{label}_mae"] = round(float(np.nanmean(np.abs(values - true.to_numpy()))), 3)
        row[f"{label}_corr"] = round(float(pd.Series(values).corr(pd.Series(true.to_numpy()))), 3)
    return row


def main() -> None:
    rows = []
    for case in CASES:
        rows.append(measure(*case))
        print(rows[-1], flush=True)
    text = (f"per-worker accuracy read by DEEM vs the truth (CPU, load average {os.getloadavg()[0]:.2f}; "
            f"{os.cpu_count()} CPUs)\n{pd.DataFrame(rows).to_string(index=False)}\n")
    print(text)
    (ROOT / "benchmarks" / "results" / "worker_accuracy.txt").write_text(text)


if __name__ == "__main__":
    main()
