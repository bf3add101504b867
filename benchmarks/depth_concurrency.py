"""Could the three depths of ``DEEM(n_layers="auto")`` train side by side? A probe, not the engine's path.

``DEEM(n_layers="auto")`` trains its candidates as one batched model per depth (0, 1, 2 layers, each holding
both starts), one depth after the other. On a GPU a step's time is set by dispatching operators, not by the
batch (8 batched runs cost about what one does), so each depth costs about one run. This probe trains the same
three two-run models (1) one after the other and (2) in three threads, each on its own CUDA stream, and prints
both wall times: if (2) is well under (1), the engine can overlap its depths.

Usage::

    python benchmarks/depth_concurrency.py --device cuda
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import machine  # noqa: E402
from families import make_set  # noqa: E402

from deem_core.data.annotations import AnnotationSet  # noqa: E402
from deem_core.model.engine import train_annotations  # noqa: E402
from deem_core.model.training import TrainingConfig, resolve_device  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--sets", nargs="+", default=["groups:0", "apph:0"])
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    torch.set_num_threads(1)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    print(f"# machine: {machine()}; {args.epochs} epochs; three models (0, 1, 2 layers) of two runs each")
    print("| set | one after the other s | three threads s | ratio |")
    print("|---|---:|---:|---:|")
    for spec in args.sets:
        name, seed = spec.split(":")
        data = AnnotationSet.from_long(make_set(name, int(seed))[0])

        def train(depth: int) -> None:
            stream = torch.cuda.Stream() if device.type == "cuda" else None
            with torch.cuda.stream(stream) if stream is not None else nullcontext():
                train_annotations(data, [0.01, 0.01], [0, 1],
                                  TrainingConfig(n_layers=depth, epochs=args.epochs, device=str(device)))
            if stream is not None:
                stream.synchronize()

        train(1)  # warm-up
        sync()
        started = time.perf_counter()
        for depth in (0, 1, 2):
            train(depth)
        sync()
        sequential = time.perf_counter() - started
        started = time.perf_counter()
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(train, (0, 1, 2)))
        sync()
        threaded = time.perf_counter() - started
        print(f"| {spec} | {sequential:.2f} | {threaded:.2f} | {threaded / sequential:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
