"""Memory of two steps attack round 66 found unbounded, against what the engine counts before allocating.

1. **The sparse path's per-slot K x K weights.** Each answer slot of a training batch gathers its worker's K x K iRBM
   weights (and biases), several copies in a step. ``estimate_training_bytes`` counted a slot's K activations only: a
   2 MB upload of 2,000 tasks x 250 answers x 40 classes was estimated at 1.9 GiB and took the server past 5 GB. Each
   row trains one 0-layer run for one epoch in a fresh process on random answers of the shape given and prints its
   peak resident memory above the data ("peak"), the estimate now, and the estimate without the per-slot term (the
   former formula).
2. **The excess pairwise agreement** (evidence beside the choice of the start): every pair of workers sharing a task
   was held in a sparse table; 2,000 tasks x 250 answers by 50,000 workers (1.25e8 pairs of answers) took 3.9 GB.
   Each row times the statistic in a fresh process and prints its peak above the data and whether it read a sample of
   the tasks.

Usage: ``python benchmarks/slot_memory.py`` (about a minute on two cores).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PEAK_PRELUDE, machine, run_fresh  # noqa: E402

PRELUDE = PEAK_PRELUDE + """
def answers(n, per_task, d, k, seed=66):
    rng = np.random.default_rng(seed)
    workers = np.concatenate([rng.choice(d, per_task, replace=False) for _ in range(n)])
    frame = pd.DataFrame({"task": np.repeat(np.arange(n), per_task), "worker": workers,
                          "label": rng.integers(k, size=n * per_task)})
    return AnnotationSet.from_long(frame, classes=range(k))
"""

TRAIN = PRELUDE + """
from deem_core.methods.deem import DEFAULT_LR
from deem_core.model import sizes
from deem_core.model.engine import check_training_size, path_for, train_annotations
from deem_core.model.training import TrainingConfig
n, per_task, d, k = SHAPE
data = answers(n, per_task, d, k)
reset_peak()
idle = hwm()
config = TrainingConfig(n_layers=0, epochs=1, device="cpu")
estimate = check_training_size(data, config, 1, memory_bytes=1 << 62)
slots = min(n, config.batch_size) * per_task
slot_term = sizes.SLOT_PARAM_COPIES * slots * (k * k + 2 * k + 1) * 4
started = time.perf_counter()
train_annotations(data, [DEFAULT_LR], [0], config)
print(json.dumps({"peak": hwm() - idle, "estimate": estimate / 2**20, "former": (estimate - slot_term) / 2**20,
                  "path": path_for(data), "seconds": time.perf_counter() - started}))
"""

EXCESS = PRELUDE + """
from deem_core.methods import dawid_skene
n, per_task, d, k = SHAPE
data = answers(n, per_task, d, k)
fit = dawid_skene.fit_dawid_skene(data)
reset_peak()
idle = hwm()
started = time.perf_counter()
value = dawid_skene.excess_pairwise_agreement(data, fit)
import numpy as np
eligible = np.bincount(data.worker_codes, minlength=data.n_workers) >= 20
sample = dawid_skene.excess_sample(data, eligible, k) if eligible.sum() >= 2 else None
print(json.dumps({"peak": hwm() - idle, "seconds": time.perf_counter() - started, "value": value,
                  "tasks_read": data.n_tasks if sample is None else int(sample.sum()),
                  "eligible": int(eligible.sum())}))
"""


def main() -> int:
    print(f"# python benchmarks/slot_memory.py; {machine()}; load average {os.getloadavg()[0]:.1f}")
    print("\n## 1. one 0-layer run, one epoch, default batch (1,024 tasks): peak above the data vs the estimate (MB)")
    print(f"{'tasks':>6} {'answers/task':>12} {'workers':>8} {'classes':>8} {'path':>7} {'peak':>8} {'estimate':>9} "
          f"{'former':>8} {'est/peak':>9} {'seconds':>8}")
    for shape in ((600, 50, 400, 20), (300, 50, 400, 40), (600, 50, 400, 40), (1200, 25, 800, 40),
                  (600, 50, 400, 60), (3000, 5, 500, 100)):
        out = run_fresh(TRAIN.replace("SHAPE", repr(shape)))
        if "error" in out:
            print(f"{shape}: {out['error']}")
            continue
        print(f"{shape[0]:>6} {shape[1]:>12} {shape[2]:>8} {shape[3]:>8} {out['path']:>7} {out['peak']:>8.0f} "
              f"{out['estimate']:>9.0f} {out['former']:>8.0f} {out['estimate'] / out['peak']:>9.2f} "
              f"{out['seconds']:>8.1f}")
    print("\n## 2. the excess pairwise agreement: peak above the data (MB), time, tasks read")
    print(f"{'tasks':>6} {'answers/task':>12} {'workers':>8} {'classes':>8} {'eligible':>9} {'tasks read':>11} "
          f"{'peak':>7} {'seconds':>8}")
    for shape in ((2000, 250, 50_000, 2), (2000, 250, 2000, 40), (2000, 500, 50_000, 2), (8000, 5, 300, 3)):
        out = run_fresh(EXCESS.replace("SHAPE", repr(shape)))
        if "error" in out:
            print(f"{shape}: {out['error']}")
            continue
        print(f"{shape[0]:>6} {shape[1]:>12} {shape[2]:>8} {shape[3]:>8} {out['eligible']:>9} {out['tasks_read']:>11,} "
              f"{out['peak']:>7.0f} {out['seconds']:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
