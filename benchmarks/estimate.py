"""Time estimates shown before launch (``deem_studio.estimate``) against the measured time of the job.

For each size: the estimate the Sweep / Train page shows (timed probes on up to 2,000 tasks, a line in the
tasks), then the job itself run through the dashboard's job manager (``deem_studio.jobs``), timed from start
to end of its work. Target: every estimate within 2x of the measured time (ratio 0.5-2). Diagnostics have no
estimate before launch: for them the row compares the time left their progress shows once a quarter of the
worker importance is done with the time they then really took.

Sizes: condind (3,000 tasks x 10 workers x 3 classes, sample_data) and the MnistE-shaped synthetic set
(make_mnist_like: 15 workers x 10 classes) at 20,000 and 60,000 tasks. The larger sizes run fewer epochs
(the estimate is per epoch, so this checks the same thing in less time); the default form settings
otherwise (8 learning rates, 1 layer, 1 seed; DEEM + majority vote + Dawid-Skene, start auto).

Usage::

    python benchmarks/estimate.py                  # all sizes (about 10 min on one idle core)
    python benchmarks/estimate.py --sizes 3000     # one size
    python benchmarks/estimate.py --sizes 3000 --train-only --methods deem,mv,ds,glad,mace,zbs,mmsr,onecoin
                                                   # the training alone, with these methods
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "sample_data"))

from benchmarks.common import load_set, machine  # noqa: E402
from deem_core.data.annotations import AnnotationSet  # noqa: E402
from deem_studio.estimate import estimate_sweep, estimate_train  # noqa: E402
from deem_studio.jobs import JobManager  # noqa: E402

#: tasks -> (sweep epochs, train epochs)
PLAN = {3000: (50, 100), 20000: (10, 20), 60000: (5, 10), 40000: (10, 100)}
#: sizes run without --sizes (40,000: the platform-shaped set, run on its own: --sizes 40000)
DEFAULT_SIZES = (3000, 20000, 60000)


def data_of(n_tasks: int) -> tuple[AnnotationSet, str]:
    if n_tasks == 3000:
        df, _ = load_set("condind")
        return AnnotationSet.from_long(df), "condind 3,000 x 10 x 3"
    if n_tasks == 40000:  # platform-shaped: sparse, 2,500 workers of long-tail activity (walkthrough 53's shape)
        from make_platform_data import PlatformShape, make_platform_data  # noqa: PLC0415

        df, _, _ = make_platform_data(PlatformShape(40_000, 2_500, 4, (3, 4), zipf=1.0, seed=53))
        return AnnotationSet.from_long(df), "platform 40,000 x 2,500 x 4, 3-4 answers/task"
    from make_sample_data import make_mnist_like  # noqa: PLC0415

    df, _ = make_mnist_like(n_tasks=n_tasks, n_workers=15, n_classes=10, seed=0)
    return AnnotationSet.from_long(df), f"mnist_like {n_tasks:,} x 15 x 10"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measured(manager: JobManager, kind: str, config: dict, data: AnnotationSet) -> float:
    run_id = manager.submit(kind, config, data=data)
    snap = manager.wait(run_id, timeout=3600)
    assert snap is not None and snap.status == "finished", (snap.status, snap.message)
    return snap.elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=",".join(str(n) for n in DEFAULT_SIZES))
    parser.add_argument("--csv", default=None, help="time these long-format answers (task, worker, label) instead")
    parser.add_argument("--methods", default="deem,mv,ds", help="the training's methods (default: the form's)")
    parser.add_argument("--train-only", action="store_true", help="time the training alone (no sweep, no diagnostics)")
    parser.add_argument("--layers", default="1", help="DEEM's layers for the training: a number, or 'auto' (the depth "
                                                      "chosen: 0, 1 and 2 layers trained in turn on the CPU)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds of the training")
    args = parser.parse_args()
    layers = "auto" if args.layers == "auto" else int(args.layers)
    methods = args.methods.split(",")
    trained = tuple(m for m in methods if m in ("deem", "irbm"))
    others = tuple(m for m in methods if m not in trained)
    manager = JobManager(Path(tempfile.mkdtemp(prefix="deem_estimate_")) / "runs")
    print(machine())
    print("| data | job | estimate s | measured s | measured / estimate | probe s | load avg | CPU s of this process |")
    print("|---|---|---:|---:|---:|---:|---|---:|")
    for n_tasks in ([None] if args.csv else [int(x) for x in args.sizes.split(",")]):
        if args.csv:
            import pandas as pd  # noqa: PLC0415

            data = AnnotationSet.from_long(pd.read_csv(args.csv))
            name, n_tasks = f"{Path(args.csv).name} {data.n_tasks:,} x {data.n_workers:,} x {data.n_classes}", 40000
        else:
            data, name = data_of(n_tasks)
        sweep_epochs, train_epochs = PLAN.get(n_tasks, (10, 20))
        jobs = [
            ("sweep", f"sweep 8 lrs x {sweep_epochs} ep",
             lambda: estimate_sweep(data, epochs=sweep_epochs),
             {"epochs": sweep_epochs, "device": "cpu"}),
            ("train", f"train {'+'.join(m.upper() for m in methods)} x {train_epochs} ep"
             + (f", layers {layers}" if layers != 1 else "") + (f", {args.seeds} seeds" if args.seeds > 1 else ""),
             lambda: estimate_train(data, deem_methods=trained, baselines=others, epochs=train_epochs, device="cpu",
                                    n_layers=layers, n_seeds=args.seeds),
             {"methods": methods, "epochs": train_epochs, "device": "cpu", "n_layers": layers,
              "n_seeds": args.seeds}),
        ][1 if args.train_only else 0:]
        train_run = None
        for kind, label, estimate_of, config in jobs:
            cpu0 = cpu_seconds()
            estimate = estimate_of()
            seconds = measured(manager, kind, {**config, "estimate": estimate.to_dict()}, data)
            if kind == "train":
                train_run = manager.store.list(owner=None, kinds=["train"], limit=1)["run_id"].iloc[0]
            print(f"| {name} | {label} | {estimate.total_s:.1f} | {seconds:.1f} | {seconds / estimate.total_s:.2f} | "
                  f"{estimate.probe_s:.1f} | {' '.join(f'{x:.2f}' for x in os.getloadavg())} | "
                  f"{cpu_seconds() - cpu0:.1f} |", flush=True)
        if args.train_only or not trained:
            continue
        # diagnostics of the trained DEEM: no estimate before launch; the time left it shows once a quarter of
        # the worker importance (the long part) is done, against the time it then really took
        cpu0 = cpu_seconds()
        run_id = manager.submit("diagnostics", {"source_run": train_run, "method": "deem"}, data=data)
        eta_at = None
        while True:
            snap = manager.snapshot(run_id)
            if snap.done:
                break
            if (eta_at is None and snap.phase == "worker importance" and snap.phase_total
                    and snap.phase_done >= 0.25 * snap.phase_total and snap.eta is not None):
                eta_at = (time.time(), snap.eta, snap.elapsed)
            time.sleep(0.2)
        assert snap.status == "finished", snap.message
        if eta_at is None:
            print(f"| {name} | diagnostics | - | {snap.elapsed:.1f} | - | - | (ended before a quarter of the "
                  f"importance was read) | {cpu_seconds() - cpu0:.1f} |", flush=True)
        else:
            left = snap.finished_at - eta_at[0]
            print(f"| {name} | diagnostics: time left shown at {eta_at[2]:.0f} s (importance 25% done) | "
                  f"{eta_at[1]:.1f} | {left:.1f} | {left / max(eta_at[1], 1e-9):.2f} | - | "
                  f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} | {cpu_seconds() - cpu0:.1f} |", flush=True)
    manager.shutdown()
    print("(probe: at most 2,000 tasks, 3 epochs; measured = the job's own elapsed time in the job manager)")


if __name__ == "__main__":
    main()
