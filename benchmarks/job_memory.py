"""A whole DEEM training as the dashboard runs it, against the estimate its job is checked with before it is queued.

Attack round 67 found trainings that held more than ``deem_studio.jobs.check_job_memory`` counted: on the dense path
the collapse guard's start and healthy states (two copies of the network, kept even where only its collapses were
read), the backward pass's product beside the gradient and the start networks' temporaries (120 workers x 60
classes, 1 layer: estimated at 1.46 GiB, +2.93 GiB measured); with thousands of workers x 100 classes and no layers
the Dawid-Skene start's (workers, K, K) float64 arrays and every network's two per-worker copies of the iRBM's
constant masks (5,441 workers: estimated at 2.9 GiB, past 5.4 GB before training began).

Each row fits ``DEEM`` in a fresh process (the registry's ``fit_method``, as a train job does) on random answers of
the shape given (``tasks x answers a task``, of ``workers`` workers and ``classes`` classes) for two epochs, and
prints its peak resident memory above the data ("peak") beside ``jobs.job_memory_estimate`` (what the job's check
compares with its bound) and the path taken.

Usage: ``python benchmarks/job_memory.py`` (about ten minutes on two cores, most of it the search for clusters of the
rows that choose their start).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PEAK_PRELUDE, machine, run_fresh  # noqa: E402

FIT = PEAK_PRELUDE + """
from deem_core.methods.registry import fit_method
from deem_core.model.engine import path_for
from deem_studio import jobs
n, per_task, d, k = SHAPE
config = CONFIG
rng = np.random.default_rng(67)
workers = np.concatenate([rng.choice(d, per_task, replace=False) for _ in range(n)])
truth = rng.integers(k, size=n)
right = rng.random(n * per_task) < 0.7
labels = np.where(right, np.repeat(truth, per_task), rng.integers(k, size=n * per_task))
data = AnnotationSet.from_long(pd.DataFrame({"task": np.repeat(np.arange(n), per_task), "worker": workers,
                                             "label": labels}), classes=range(k))
estimate = jobs.job_memory_estimate("train", config, data)
reset_peak()
idle = hwm()
started = time.perf_counter()
options = {key: value for key, value in config.items() if key != "methods"}
fit_method("deem", data, **options)
print(json.dumps({"peak": hwm() - idle, "estimate": estimate / 2**20, "path": path_for(data),
                  "seconds": time.perf_counter() - started}))
"""

#: (tasks, answers a task, workers, classes), the DEEM settings of the job
ROWS = [
    ((100, 50, 120, 60), {"n_layers": 1}),
    ((100, 50, 120, 60), {"n_layers": 1, "init": "ds"}),
    ((100, 50, 120, 60), {"n_layers": 1, "init": "mv", "n_seeds": 2}),
    ((300, 30, 60, 40), {"n_layers": "auto"}),
    ((300, 30, 60, 40), {"n_layers": 2, "init": "ds"}),
    ((2000, 3, 2500, 100), {"n_layers": 0}),
    ((2000, 3, 2500, 100), {"n_layers": 0, "init": "ds"}),
    ((4000, 3, 6400, 100), {"n_layers": 0, "init": "ds"}),
]


def main() -> int:
    print(f"# python benchmarks/job_memory.py; {machine()}; load average {os.getloadavg()[0]:.1f}")
    print("# a DEEM fit of two epochs as a train job runs it: peak above the data vs the job check's estimate (MB)")
    print(f"{'tasks':>6} {'answers':>8} {'workers':>8} {'classes':>8} {'settings':<34} {'path':>7} {'peak':>7} "
          f"{'estimate':>9} {'est/peak':>9} {'seconds':>8}")
    for shape, settings in ROWS:
        config = {"methods": ["deem"], "epochs": 2, **settings}
        out = run_fresh(FIT.replace("SHAPE", repr(shape)).replace("CONFIG", repr(config)), timeout=1800)
        text = ", ".join(f"{key}={value}" for key, value in settings.items())
        if "error" in out:
            print(f"{shape} {text}: {out['error']}")
            continue
        print(f"{shape[0]:>6} {shape[1]:>8} {shape[2]:>8} {shape[3]:>8} {text:<34} {out['path']:>7} "
              f"{out['peak']:>7.0f} {out['estimate']:>9.0f} {out['estimate'] / out['peak']:>9.2f} "
              f"{out['seconds']:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
