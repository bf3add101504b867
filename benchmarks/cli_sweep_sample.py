"""``deem sweep`` on all tasks and on its default sample (``--sample-tasks auto``: 5,000 tasks above 20,000).

Writes an MnistE-shaped set (``make_mnist_like``, 15 workers x 10 classes) of ``--tasks`` tasks to a temporary
folder and runs the command line twice on it, ``--sample-tasks auto`` then ``--sample-tasks 0``, each in a process of
its own: wall seconds, peak memory (the child's maximum RSS), the tasks swept, the batch and the recommendation.

    python benchmarks/cli_sweep_sample.py --tasks 40000 --epochs 20 > benchmarks/results/cli_sweep_sample.txt
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "sample_data"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine  # noqa: E402
from make_sample_data import make_mnist_like  # noqa: E402


def run(source: Path, out: Path, sample: str, epochs: int) -> dict:
    """One ``deem sweep`` in a child process: its seconds, peak RSS and what it wrote."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", "import sys; from deem_core.cli import main; sys.exit(main())",
                           "sweep", str(source), "-o", str(out), "--epochs", str(epochs), "--device", "cpu",
                           "--no-progress", "--sample-tasks", sample],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode not in (0, 1):
        raise SystemExit(done.stderr)
    payload = json.loads((out / "recommendation.json").read_text())
    return {"sample": sample, "seconds": seconds, "peak_mb": max(peak, before) / 1024,
            "tasks": payload.get("sample_tasks") or payload["n_tasks"], "batch": payload["batch_size"],
            "lr": payload["lr"], "verdicts": {lr: v["verdict"] for lr, v in payload["verdicts"].items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=40_000)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "mnist_like.csv"
        frame = make_mnist_like(n_tasks=args.tasks, seed=3)[0]
        frame.to_csv(source, index=False)
        rows = [run(source, Path(folder) / f"out_{s}", s, args.epochs) for s in ("auto", "0")]
    print(f"# machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the end")
    print(f"# deem sweep, default grid (8 learning rates), {args.epochs} epochs, 1 layer, on {args.tasks:,} tasks "
          f"x 15 workers x 10 classes (make_mnist_like, seed 3); peak = the child's maximum RSS")
    print(f"{'--sample-tasks':>15} {'tasks swept':>12} {'batch':>6} {'seconds':>8} {'peak MB':>8} {'recommended':>12}")
    for row in rows:
        print(f"{row['sample']:>15} {row['tasks']:>12,} {row['batch']:>6,} {row['seconds']:>8.1f} "
              f"{row['peak_mb']:>8.0f} {row['lr']!s:>12}")
    same = sum(rows[0]["verdicts"][lr] == rows[1]["verdicts"].get(lr) for lr in rows[0]["verdicts"])
    print(f"# the sample {rows[1]['seconds'] / rows[0]['seconds']:.1f}x faster; the same verdict for {same} of "
          f"{len(rows[0]['verdicts'])} learning rates")
    for row in rows:
        print(f"# verdicts ({row['sample']}): " + ", ".join(f"{lr} {v}" for lr, v in row["verdicts"].items()))


if __name__ == "__main__":
    main()
