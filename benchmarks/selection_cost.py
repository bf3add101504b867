"""What choosing DEEM's start and depth costs (issue 15): wall time of the default fit against one fixed run.

Per set, on the device named, three fits at the same epochs and learning rate:

* ``one``: ``DEEM(n_layers=1, init="ds")`` -- a Dawid-Skene fit, then one network of one layer trained on every
  answer (the old default's single run);
* ``default``: ``DEEM()`` -- one layer, the start chosen (``init="auto"``): the dependence statistic, the
  dependence clusters, both starts trained as one batched model on 90% of the answers, the references, the choice;
* ``auto``: ``DEEM(n_layers="auto")`` -- start and depth chosen: six candidates (two starts x 0 / 1 / 2 layers,
  one batched model per depth on a CPU, every depth in one batched model on a GPU: ``depths_together``).

 the GPU is synchronised around each fit, and a small fit runs first so that neither
pays for starting CUDA.

The choosing fit is split into its phases from the fitted model: the dependence clusters (``dependence_clusters_
.seconds``), the training of each depth's batched candidates (``candidates_[i].seconds``, summed over the starts),
and the rest (the dependence statistic's Dawid-Skene fit, holding out, scoring the held-out answers, the
references). The accuracy of both fits is printed beside (truth used only to score), so a reader can see the
device changed no choice.

Usage::

    python benchmarks/selection_cost.py --device cuda --out benchmarks/results/selection_cost_h200.txt
    python benchmarks/selection_cost.py --device cpu --sets groups:0 condind --epochs 20
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
from common import machine  # noqa: E402
from selection import load  # noqa: E402

from deem_core import DEEM  # noqa: E402
from deem_core.data.annotations import AnnotationSet  # noqa: E402
from deem_core.model.training import resolve_device  # noqa: E402

DEFAULT_SETS = ["independent:0", "groups:0", "copies:0", "sparse:0", "longtail:0", "spammers:0", "imbalance:0",
                "experts:0", "apph:0", "apph:1", "condind", "tree3k", "ampdata", "digits", "digits_experts",
                "mnist_like:0"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed_fit(model: DEEM, data: AnnotationSet, device: torch.device) -> tuple[DEEM, float]:
    _sync(device)
    started = time.perf_counter()
    model.fit(data)
    _sync(device)
    return model, time.perf_counter() - started


def measure(spec: str, device: torch.device, epochs: int, lr: float) -> dict:
    df, truth = load(spec)
    data = AnnotationSet.from_long(df)
    y = data.classes.get_indexer(truth.reindex(data.tasks).to_numpy())
    known = y >= 0

    def accuracy(model: DEEM) -> float:
        return float(100 * (data.classes.get_indexer(model.predict())[known] == y[known]).mean())

    one, one_s = _timed_fit(DEEM(n_layers=1, init="ds", epochs=epochs, lr=lr, device=str(device)), data, device)
    default, default_s = _timed_fit(DEEM(epochs=epochs, lr=lr, device=str(device)), data, device)
    auto, auto_s = _timed_fit(DEEM(n_layers="auto", epochs=epochs, lr=lr, device=str(device)), data, device)
    summary = auto.selection_summary()
    by_depth = {}
    for c in auto.candidates_:
        by_depth[c.depth] = by_depth.get(c.depth, 0.0) + c.seconds
    clusters_s = float(auto.dependence_clusters_.seconds)
    choosing_s = float(summary["seconds"] or auto_s)

    def chosen(model: DEEM) -> str:
        if model.fallback_:
            return "MV" if model.fallback_.startswith("majority") else "CWDS"
        return f"{model.init_}{model.n_layers_}"

    return {"set": spec, "tasks": data.n_tasks, "workers": data.n_workers, "classes": data.n_classes,
            "answers": int(data.n_answers), "one_s": one_s, "default_s": default_s, "auto_s": auto_s,
            "default_ratio": default_s / one_s, "ratio": auto_s / one_s,
            "clusters_s": clusters_s, "train0_s": by_depth.get(0, np.nan), "train1_s": by_depth.get(1, np.nan),
            "train2_s": by_depth.get(2, np.nan),
            "rest_s": choosing_s - clusters_s - sum(by_depth.values()), "one_acc": accuracy(one),
            "default_acc": accuracy(default), "default_chosen": chosen(default), "auto_acc": accuracy(auto),
            "chosen": chosen(auto), "load": os.getloadavg()[0]}


def table(rows: list[dict], device: torch.device, epochs: int, lr: float) -> str:
    lines = [f"# machine: {machine()}; device {device}; {epochs} epochs, lr {lr:g}, 1 seed, batch 1,024",
             "# one = DEEM(n_layers=1, init='ds') on every answer (the old default's single run); default = DEEM() "
             "(start chosen, 1 layer); auto = DEEM(n_layers='auto') (start and depth chosen: six candidates on 90% "
             "of the answers, one batched model per depth)",
             "# wall seconds, the device synchronised around each fit; phases of the auto fit: clusters, the "
             "training of the depth-0/1/2 candidates, rest (dependence statistic, hold-out, scoring, references)",
             "",
             "| set | tasks x workers x classes | one s | default s | default / one | auto s | auto / one | "
             "clusters s | depth 0 s | depth 1 s | depth 2 s | rest s | one acc | default acc (chosen) | "
             "auto acc (chosen) | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['set']} | {r['tasks']:,} x {r['workers']:,} x {r['classes']} | {r['one_s']:.1f} | "
                     f"{r['default_s']:.1f} | {r['default_ratio']:.2f}x | {r['auto_s']:.1f} | {r['ratio']:.2f}x | "
                     f"{r['clusters_s']:.1f} | {r['train0_s']:.1f} | {r['train1_s']:.1f} | {r['train2_s']:.1f} | "
                     f"{r['rest_s']:.1f} | {r['one_acc']:.2f} | {r['default_acc']:.2f} ({r['default_chosen']}) | "
                     f"{r['auto_acc']:.2f} ({r['chosen']}) | {r['load']:.1f} |")
    for key, name in (("default_ratio", "default / one"), ("ratio", "auto / one")):
        if rows:
            ratios = np.array([r[key] for r in rows])
            lines.append(f"\n{name} over {len(rows)} sets: median {np.median(ratios):.2f}x, range "
                         f"{ratios.min():.2f}-{ratios.max():.2f}x; sets at or under 2x: {int((ratios <= 2).sum())}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--sets", nargs="+", default=DEFAULT_SETS)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--out", default=None, help="also write the table here")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    torch.set_num_threads(1)
    warm, _ = load("groups:0")  # CUDA's start-up and the first kernels' compilation are paid here
    DEEM(epochs=2, device=str(device)).fit(AnnotationSet.from_long(warm))
    rows = []
    for spec in args.sets:
        rows.append(measure(spec, device, args.epochs, args.lr))
        r = rows[-1]
        print(f"{spec:16s} one {r['one_s']:.1f}s default {r['default_s']:.1f}s auto {r['auto_s']:.1f}s ({r['ratio']:.2f}x) clusters "
              f"{r['clusters_s']:.1f}s train {r['train0_s']:.1f}/{r['train1_s']:.1f}/{r['train2_s']:.1f}s rest "
              f"{r['rest_s']:.1f}s acc {r['one_acc']:.2f}/{r['auto_acc']:.2f} {r['chosen']}", flush=True)
        text = table(rows, device, args.epochs, args.lr)
        if args.out:
            Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
