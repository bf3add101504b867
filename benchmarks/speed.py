"""Training speed on a MnistE-sized problem (60,000 tasks x 15 workers x 10 classes, generated).

Prints seconds per epoch and the projected time of 100 epochs for one run (1 layer, batch 1024, 5 sampler
steps), and for a sweep of 8 learning rates trained as one batched model versus one run. CPU time of the
process is printed beside wall time: on a shared machine wall time includes waiting for the cores.

Usage::

    python benchmarks/speed.py                      # 3 epochs per measurement, device auto
    python benchmarks/speed.py --epochs 100         # the full 100 epochs
    python benchmarks/speed.py --device cuda --runs 1 8
    python benchmarks/speed.py --threads 2          # both cores (faster only on an otherwise idle machine)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "sample_data"))
from common import machine  # noqa: E402
from make_sample_data import make_mnist_like  # noqa: E402

from deem_core.data.annotations import AnnotationSet  # noqa: E402
from deem_core.model.training import TrainingConfig, resolve_device, train_runs  # noqa: E402


def measure(data: AnnotationSet, n_runs: int, epochs: int, layers: int, device: str,
            threads: int | None = None) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of ``epochs`` epochs of ``n_runs`` batched runs."""
    lrs = [10 ** (-3 + 0.3 * r) for r in range(n_runs)]
    config = TrainingConfig(n_layers=layers, epochs=epochs, device=device)
    if threads:
        config.cpu_threads = threads
    if resolve_device(device).type == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    train_runs(data.dense_labels(), data.n_classes, lrs, list(range(n_runs)), config)
    if resolve_device(device).type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=60000)
    parser.add_argument("--epochs", type=int, default=3, help="epochs measured (projected to 100)")
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--runs", type=int, nargs="*", default=[1, 8], help="batched run counts to time")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads while training (default: the library's default, 1)")
    args = parser.parse_args(argv)
    df, _ = make_mnist_like(n_tasks=args.tasks, n_workers=15, n_classes=10, seed=0)
    data = AnnotationSet.from_long(df)
    override = f"; --threads {args.threads}" if args.threads else ""
    print(f"# machine: {machine()}; device {resolve_device(args.device)}{override}; "
          f"load average before: {os.getloadavg()[0]:.2f}")
    print(f"# data: {data.n_tasks} tasks x {data.n_workers} workers x {data.n_classes} classes; "
          f"{args.layers} layer(s); {args.epochs} epoch(s) measured")
    print(f"{'runs':>5} {'wall s/epoch':>13} {'cpu s/epoch':>12} {'100 epochs (wall)':>18} {'per run':>9}")
    for n_runs in args.runs:
        if resolve_device(args.device).type == "cuda":
            measure(data, n_runs, 1, args.layers, args.device)  # warm-up: CUDA context and kernels
        wall, cpu = measure(data, n_runs, args.epochs, args.layers, args.device, args.threads)
        per_epoch = wall / args.epochs
        print(f"{n_runs:>5} {per_epoch:>13.2f} {cpu / args.epochs:>12.2f} {100 * per_epoch:>17.0f}s "
              f"{100 * per_epoch / n_runs:>8.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
