"""Where a training step's time goes, on the CPU and on a GPU of the same machine.

For three shapes -- a small dense set (2,000 tasks x 12 workers x 3 classes, the ``groups`` family), the
MnistE-sized dense set (60,000 x 15 x 10) and a platform-shaped sparse set (100,000 tasks x 2,000 workers x 3
classes, 5 answers per task: the sparse path) -- this times one run of DEEM training (1 layer, batch 1,024, the
majority-vote start) per mini-batch step on each device asked for, and on CUDA profiles a few epochs with
``torch.profiler``: operators dispatched per step, kernels launched per step, synchronising calls per step
(cudaStreamSynchronize, cudaDeviceSynchronize, cudaEventSynchronize and cudaMemcpyAsync: host-GPU copies count),
and the share of the wall time the GPU spends running kernels. A GPU that is busy a small share of the time is
waiting for the host to dispatch the next operator (the step is launch-bound, not compute-bound).

Usage::

    python benchmarks/step_profile.py --devices cpu cuda
    python benchmarks/step_profile.py --devices cpu --shapes small
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "sample_data"))
from common import machine  # noqa: E402

from deem_core.data.annotations import AnnotationSet  # noqa: E402
from deem_core.model.engine import train_annotations  # noqa: E402
from deem_core.model.training import TrainingConfig, resolve_device  # noqa: E402

SHAPES = {"small": "2,000 x 12 x 3 dense (groups:0)", "mnist_e": "60,000 x 15 x 10 dense",
          "medium": "100,000 x 2,000 x 3, 5 answers/task (sparse path)"}
SYNC_CALLS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaMemcpyAsync", "cudaEventSynchronize")


def make(shape: str) -> AnnotationSet:
    if shape == "small":
        from families import make_set  # noqa: PLC0415

        return AnnotationSet.from_long(make_set("groups", 0)[0])
    if shape == "mnist_e":
        from make_sample_data import make_mnist_like  # noqa: PLC0415

        return AnnotationSet.from_long(make_mnist_like(n_tasks=60000, n_workers=15, n_classes=10, seed=0)[0])
    from make_platform_data import PRESETS, make_platform_data  # noqa: PLC0415

    return AnnotationSet.from_long(make_platform_data(PRESETS["medium"])[0])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def seconds_per_step(data: AnnotationSet, device: torch.device, epochs: int) -> float:
    """Wall seconds per mini-batch step of one run: (time of 1 + epochs epochs - time of 1 epoch) / steps."""
    steps = epochs * -(-data.n_tasks // 1024)

    def timed(n: int) -> float:
        _sync(device)
        started = time.perf_counter()
        train_annotations(data, [0.01], [0], TrainingConfig(n_layers=1, epochs=n, device=str(device)))
        _sync(device)
        return time.perf_counter() - started

    timed(1)  # warm-up
    return (timed(1 + epochs) - timed(1)) / steps


def profile_cuda(data: AnnotationSet, device: torch.device, epochs: int) -> dict[str, float]:
    from torch.profiler import ProfilerActivity, profile  # noqa: PLC0415

    config = TrainingConfig(n_layers=1, epochs=epochs, device=str(device))
    train_annotations(data, [0.01], [0], config)  # warm-up
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        started = time.perf_counter()
        train_annotations(data, [0.01], [0], config)
        torch.cuda.synchronize()
        wall = time.perf_counter() - started
    steps = epochs * -(-data.n_tasks // 1024)
    events = prof.key_averages()
    count = {e.key: e.count for e in events}
    kernel_us = sum(e.self_device_time_total for e in events if e.device_type == torch.autograd.DeviceType.CUDA)
    return {"aten_per_step": sum(n for k, n in count.items() if k.startswith("aten::")) / steps,
            "launches_per_step": sum(n for k, n in count.items() if k in ("cudaLaunchKernel", "cuLaunchKernel",
                                                                           "cudaLaunchKernelExC")) / steps,
            "syncs_per_step": sum(count.get(k, 0) for k in SYNC_CALLS) / steps,
            "gpu_busy": kernel_us / 1e6 / wall, "profiled_ms_per_step": 1000 * wall / steps}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed (after a warm-up epoch)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"# machine: {machine()}; {os.cpu_count()} cores; training on 1 CPU thread; load {os.getloadavg()[0]:.1f}")
    print("# ms/step: wall time per mini-batch step of one run (1 layer, batch 1,024, majority-vote start), "
          "warm; on CUDA also ops per step, kernel launches, host-device syncs and the GPU's busy share")
    print("| shape | device | ms/step | ms/epoch | aten ops/step | launches/step | syncs/step | GPU busy |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for shape in args.shapes:
        data = make(shape)
        steps_per_epoch = -(-data.n_tasks // 1024)
        for name in args.devices:
            device = resolve_device(name)
            per_step = seconds_per_step(data, device, args.epochs)
            extra = "| - | - | - | - |"
            if device.type == "cuda":
                try:
                    p = profile_cuda(data, device, args.epochs)
                except Exception as exc:  # noqa: BLE001 - the timing row stays; say why the profile is missing
                    print(f"# profiler failed on {shape}: {type(exc).__name__}: {exc}", flush=True)
                    p = dict.fromkeys(("aten_per_step", "launches_per_step", "syncs_per_step", "gpu_busy"), float("nan"))
                extra = (f"| {p['aten_per_step']:,.0f} | {p['launches_per_step']:,.0f} | {p['syncs_per_step']:.1f} | "
                         f"{100 * p['gpu_busy']:.0f}% |")
            print(f"| {shape} ({SHAPES[shape]}) | {device.type} | {1000 * per_step:.2f} | "
                  f"{1000 * per_step * steps_per_epoch:,.0f} {extra}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
