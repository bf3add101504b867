"""The memory a job's curves take, beside what its check counts.

Attack round 70: a sweep of 24 learning rates x 8 seeds x 2,000 epochs on a 200-task set was admitted on an
estimate of 44 MiB and held +560 MiB: every curve row (one a run and epoch) was a Python dict of about 1.5 KB in the
engine's history, again in the job's live progress and in its recorder; and each ended job kept its last 20,000 rows
and a table of them among the 256 jobs the server keeps (about 14.5 MiB a sweep, 3.7 GiB in all, uncounted).

Part 1 runs a sweep job (``deem_studio.jobs.JobManager``, as the dashboard's) in a fresh process on a 200-task set of
3 workers and 2 classes with 24 rates x 8 seeds for each number of epochs given, and prints the rows it wrote, the
peak resident memory above the process before the job ("peak"), the job check's estimate
(``jobs.job_memory_estimate``) and their ratio. Part 2 runs ``JOBS`` such sweeps one after another in one process and
prints the resident memory kept after each has ended (after a garbage collection and
``deem_studio.capacity.release_memory``).

Usage: ``python benchmarks/history_memory.py [EPOCHS ...]`` (default 250 1000 2000; about 10 minutes on two cores).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PEAK_PRELUDE, machine, run_fresh  # noqa: E402

SETUP = PEAK_PRELUDE + """
import gc, tempfile
from deem_studio import jobs
from deem_studio.capacity import release_memory
def rss():
    return int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0]) / 1024
rng = np.random.default_rng(70)
n, d = 200, 3
truth = rng.integers(2, size=n)
labels = np.where(rng.random((n, d)) < 0.8, truth[:, None], 1 - truth[:, None])
data = AnnotationSet.from_long(pd.DataFrame({"task": np.repeat(np.arange(n), d), "worker": np.tile(np.arange(d), n),
                                             "label": labels.ravel()}), classes=[0, 1])
lrs = [0.001 * (i + 1) for i in range(24)]
manager = jobs.JobManager(store=jobs.RunStore(tempfile.mkdtemp()), max_cpu_jobs=1)
def sweep(epochs):
    config = {"lrs": lrs, "n_seeds": 8, "epochs": epochs, "n_layers": 1, "device": "cpu", "sample_tasks": None}
    run = manager.submit("sweep", config, data=data)
    snap = manager.wait(run, timeout=3600)
    assert snap.status == "finished", (snap.status, snap.message)
    return run, config
"""

PEAK = SETUP + """
config = {"lrs": lrs, "n_seeds": 8, "epochs": EPOCHS, "n_layers": 1, "device": "cpu", "sample_tasks": None}
estimate = jobs.job_memory_estimate("sweep", config, data) / 2**20
gc.collect(); release_memory()
reset_peak()
idle = hwm()
started = time.perf_counter()
run, _ = sweep(EPOCHS)
rows = len(manager.store.load_history(run))
print(json.dumps({"rows": rows, "peak": hwm() - idle, "estimate": estimate, "seconds": time.perf_counter() - started}))
"""

TRAIN = SETUP + """
n = 400
truth = rng.integers(2, size=n)
labels = np.where(rng.random((n, d)) < 0.8, truth[:, None], 1 - truth[:, None])
data = AnnotationSet.from_long(pd.DataFrame({"task": np.repeat(np.arange(n), d), "worker": np.tile(np.arange(d), n),
                                             "label": labels.ravel()}), classes=[0, 1])
config = {"methods": ["deem", "irbm"], "n_seeds": 16, "epochs": EPOCHS, "n_layers": "auto", "init": "auto",
          "device": "cpu"}
estimate = jobs.job_memory_estimate("train", config, data) / 2**20
rows_counted = jobs.job_curve_rows("train", config, data) if hasattr(jobs, "job_curve_rows") else 0
gc.collect(); release_memory()
reset_peak()
idle = hwm()
started = time.perf_counter()
run = manager.submit("train", config, data=data)
snap = manager.wait(run, timeout=3600)
assert snap.status == "finished", (snap.status, snap.message)
rows = len(manager.store.load_history(run))
print(json.dumps({"rows": rows, "counted": rows_counted, "peak": hwm() - idle, "estimate": estimate,
                  "seconds": time.perf_counter() - started}))
"""

KEPT = SETUP + """
gc.collect(); release_memory()
base = rss()
kept = []
for _ in range(JOBS):
    sweep(EPOCHS)
    gc.collect(); release_memory()
    kept.append(round(rss() - base, 1))
print(json.dumps({"kept": kept}))
"""

JOBS = 8
#: epochs of the train jobs of part 1b
TRAIN_EPOCHS = [300]


def rows_of_peaks(script: str, epochs: list[int], counted: bool) -> None:
    """One row a number of epochs: ``script`` run fresh with them, its rows, peak and estimate."""
    print(f"{'epochs':>7} {'rows':>9}" + (f" {'counted':>9}" if counted else "")
          + f" {'peak':>8} {'estimate':>9} {'est/peak':>9} {'seconds':>8}")
    for count in epochs:
        out = run_fresh(script.replace("EPOCHS", str(count)), timeout=3600)
        if "error" in out:
            print(f"{count:>7} {out['error']}")
            continue
        print(f"{count:>7} {out['rows']:>9,}" + (f" {out['counted']:>9,}" if counted else "")
              + f" {out['peak']:>8.0f} {out['estimate']:>9.0f} {out['estimate'] / out['peak']:>9.2f} "
              f"{out['seconds']:>8.1f}")


def main(argv: list[str]) -> int:
    epochs = [int(a) for a in argv] or [250, 1000, 2000]
    print(f"# python benchmarks/history_memory.py {' '.join(argv)}; {machine()}; load average {os.getloadavg()[0]:.1f}")
    print("# part 1: a sweep job of 24 rates x 8 seeds on 200 tasks x 3 workers x 2 classes, 1 layer (MiB)")
    rows_of_peaks(PEAK, epochs, counted=False)
    print("# part 1b: a train job of DEEM and the iRBM, 16 seeds, both starts, the layers chosen, on 400 tasks x 3 workers "
          "x 2 classes (rows: those stored; counted: the rows the check counts, every candidate's and the guard's)")
    rows_of_peaks(TRAIN, TRAIN_EPOCHS, counted=True)
    count = 105
    print(f"# part 2: {JOBS} sweep jobs of {count} epochs ({24 * 8 * count:,} rows each) one after another in one "
          f"process: resident memory kept after each has ended, above the process before the first (MiB)")
    out = run_fresh(KEPT.replace("EPOCHS", str(count)).replace("JOBS", str(JOBS)), timeout=3600)
    print(out.get("error") or "  " + " ".join(f"{value:.0f}" for value in out["kept"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
