"""Benchmark of the diagnostics (issue 4). Run from the repository root:

    python benchmarks/diagnostics.py                 # all parts, ~10 min on one CPU core
    python benchmarks/diagnostics.py --only a c      # some parts

(a) per-layer MI summary of a 2-layer DEEM on sample_data/digits (paper's Table 10);
(b) importance of the expert workers on their expert subset vs the rest on digits_experts and ampdata
    (paper §5.4: experts get 3-7x more weight where they are experts);
(c) time of all diagnostics on 60,000 tasks x 15 workers x 10 classes (make_mnist_like);
(d) importance cost at 100 workers x 100,000 tasks (iRBM exact; 1 layer on a sample, extrapolated).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "sample_data"))

from deem_core import DEEM, AnnotationSet  # noqa: E402
from deem_core.analysis.scoring import accuracy as scored_accuracy  # noqa: E402
from deem_core.analysis.diagnostics import (  # noqa: E402
    worker_importance, per_layer_mutual_information, run_diagnostics, select_tasks,
)
from deem_core.plots.report import write_diagnostics  # noqa: E402

pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 20)


def read(name: str):
    df = pd.read_csv(ROOT / "sample_data" / f"{name}.csv")
    truth = pd.read_csv(ROOT / "sample_data" / f"{name}.truth.csv").set_index("task")["truth"]
    return df, truth


def fit(df, n_layers: int, epochs: int, lr: float, seed: int = 0):
    started = time.perf_counter()
    model = DEEM(n_layers=n_layers, epochs=epochs, lr=lr, device="cpu", seed=seed).fit(df)
    return model, time.perf_counter() - started


def part_a(epochs: int) -> None:
    print("\n(a) per-layer mutual information, 2-layer DEEM on digits (1797 x 15 x 10)")
    df, truth = read("digits")
    model, seconds = fit(df, 2, epochs, 0.03)
    accuracy = scored_accuracy(model.predict(), truth)
    print(f"trained {epochs} epochs in {seconds:.0f} s, lr 0.03, accuracy {accuracy:.4f}, run status {model.run_status_}")
    for gold in (truth, None):
        result = per_layer_mutual_information(model, df, gold=gold)
        print(f"classes from {result.class_source}:")
        print(result.summary()[["layer_name", "max_mi_mean", "max_mi_std", "frobenius_mean", "frobenius_std"]]
              .to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("paper (MnistE, Table 10): layer 0 0.827±0.294 / 4.428±1.796; layer 1 0.981±0.272 / 3.504±1.439; "
          "layer 2 0.314±0.068 / 2.687±0.985")


def part_b(epochs: int) -> None:
    print("\n(b) worker importance of the experts: expert subset (gold class) vs the rest")
    for name, layers, lr in (("digits_experts", 2, 0.03), ("ampdata", 2, 0.03)):
        df, truth = read(name)
        spec = json.loads((ROOT / "sample_data" / f"{name}.experts.json").read_text())
        model, seconds = fit(df, layers, epochs, lr)
        accuracy = scored_accuracy(model.predict(), truth)
        subset = select_tasks(model, df, classes=spec["expert_classes"], by="gold", gold=truth)
        in_subset = truth.isin(spec["expert_classes"]).to_numpy()
        pred = model.predict().loc[truth.index].to_numpy() == truth.to_numpy()
        result = worker_importance(model, df, subset=subset)
        print(f"{name}: {layers}-layer DEEM, {epochs} epochs in {seconds:.0f} s, accuracy {accuracy:.4f} "
              f"(expert subset {pred[in_subset].mean():.4f}, rest {pred[~in_subset].mean():.4f}); "
              f"subset: {subset.description} ({int(subset.selected.sum())} tasks); importance {result.seconds:.1f} s")
        for column, unit in (("importance", "drop of p(decided)"), ("importance_log_odds", "drop of log-odds, nats")):
            wide = result.pivot(column)
            wide["selected/rest"] = wide["selected"] / wide["rest"]
            experts = wide.loc[spec["experts"]]
            others = wide.drop(index=spec["experts"])
            print(f"  {unit}:")
            print("  " + wide.round(4).to_string().replace("\n", "\n  "))
            print(f"  experts: selected/rest = {', '.join(f'{v:.2f}' for v in experts['selected/rest'])}; "
                  f"on the subset, expert / mean non-expert = "
                  f"{', '.join(f'{v:.2f}' for v in experts['selected'] / others['selected'].mean())}; "
                  f"on the rest = {', '.join(f'{v:.2f}' for v in experts['rest'] / others['rest'].mean())}")


def part_c(epochs: int, out: Path | None) -> None:
    from make_sample_data import make_mnist_like  # noqa: PLC0415

    print("\n(c) all diagnostics on 60,000 tasks x 15 workers x 10 classes (make_mnist_like), CPU, 1 thread")
    df, truth = make_mnist_like(n_tasks=60000, n_workers=15, n_classes=10, seed=0)
    for layers in (0, 2):
        model, seconds = fit(df, layers, epochs, 0.03)
        started = time.perf_counter()
        diag = run_diagnostics(model, df, gold=truth, subset_classes=[5, 6, 8])
        total = time.perf_counter() - started
        line = ", ".join(f"{k} {v:.2f} s" for k, v in diag.seconds.items())
        print(f"{layers}-layer DEEM ({epochs} epochs, {seconds:.0f} s to train): diagnostics {total:.2f} s "
              f"({line}; the rest is encoding the data)")
        if out is not None and layers == 2:
            started = time.perf_counter()
            write_diagnostics(diag, out)
            print(f"  writing the CSVs + report.html to {out}: {time.perf_counter() - started:.2f} s")


def part_d() -> None:
    print("\n(d) importance at 100 workers x 100,000 tasks x 10 classes (one-coin workers of 60% accuracy)")
    rng = np.random.default_rng(0)
    n, d, k = 100_000, 100, 10
    truth = rng.integers(0, k, n)
    labels = np.where(rng.random((n, d)) < 0.6, truth[:, None], (truth[:, None] + rng.integers(1, k, (n, d))) % k)
    data = AnnotationSet.from_dense(labels, workers=[f"w{i:03d}" for i in range(d)], classes=range(k))
    train = data.subset_tasks(np.arange(2000))
    for layers, max_tasks in ((0, None), (1, 1000)):
        model, _ = fit(train, layers, 1, 0.05)
        result = worker_importance(model, data, max_tasks=max_tasks)
        done = int(result.table["n_tasks"].max())
        estimate = result.seconds * n / done
        p = result.table["importance"]
        lo = result.table["importance_log_odds"]
        print(f"{layers} layer(s): {done} tasks in {result.seconds:.1f} s"
              + (f" -> {estimate:.0f} s extrapolated to all {n}" if done < n else "")
              + f"; drop of p: mean {p.mean():.2e}, max {p.max():.2e} (saturated); "
                f"log-odds drop: mean {lo.mean():.3f} nats")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=["a", "b", "c", "d"], choices=["a", "b", "c", "d"])
    parser.add_argument("--epochs", type=int, default=50, help="training epochs for (a) and (b)")
    parser.add_argument("--timing-epochs", type=int, default=2, help="training epochs for (c)")
    parser.add_argument("--out", type=Path, default=None, help="also write the (c) report here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = time.perf_counter()
    if "a" in args.only:
        part_a(args.epochs)
    if "b" in args.only:
        part_b(args.epochs)
    if "c" in args.only:
        part_c(args.timing_epochs, args.out)
    if "d" in args.only:
        part_d()
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
