"""Memory a run's shared link costs the dashboard server: N visitor sessions (AppTest, in this one process, as in the
server) open a finished run's Results page, rerun it (any click), then its Train page; the process's resident
memory (VmRSS) and peak (VmHWM) after each step, and each step's time.

Usage (a run with several methods on a wide table; attack round 14 made one of 60,000 tasks x 200 classes with
4 methods in one click)::

    python benchmarks/run_pages_memory.py --make 60000 200 mv,wawa,zbs,ds_shared --runs-dir /tmp/pm_runs
    python benchmarks/run_pages_memory.py --runs-dir /tmp/pm_runs --run <id> --sessions 3 [--app other/app.py]
    python benchmarks/run_pages_memory.py --runs-dir /tmp/pm_runs --run <id> --sessions 8 --mix  # a method each

``--app`` measures another checkout's pages (run with that checkout on PYTHONPATH) for a before/after table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def memory() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in MB."""
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(("VmRSS", "VmHWM")):
                key, value = line.split(":")
                values[key] = int(value.split()[0]) // 1024
    return values["VmRSS"], values["VmHWM"]


def make_run(runs_dir: str, n_tasks: int, n_classes: int, methods: list[str]) -> str:
    import numpy as np  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415

    from deem_core.data.annotations import AnnotationSet  # noqa: PLC0415
    from deem_studio.jobs import JobManager  # noqa: PLC0415

    rng = np.random.default_rng(0)
    label = rng.integers(0, n_classes, 3 * n_tasks)
    label[:n_classes] = np.arange(n_classes)
    frame = pd.DataFrame({"task": np.repeat(np.arange(n_tasks), 3), "worker": np.tile(["a", "b", "c"], n_tasks),
                          "label": [f"c{v}" for v in label]})
    data = AnnotationSet.from_long(frame, source="wide.csv")
    manager = JobManager(runs_dir)
    started = time.time()
    run_id = manager.submit("train", {"methods": methods, "epochs": 1}, data=data, owner="b" * 24, dataset="wide.csv")
    snap = manager.wait(run_id)
    print(f"run {run_id}: {snap.status} in {time.time() - started:.1f} s ({n_tasks:,} tasks x {n_classes} classes, "
          f"{len(methods)} methods)")
    return run_id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", required=True)
    parser.add_argument("--make", nargs=3, metavar=("TASKS", "CLASSES", "METHODS"))
    parser.add_argument("--run")
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--app", default=str(ROOT / "app.py"))
    parser.add_argument("--mix", action="store_true", help="session i picks the run's i-th method on Results")
    args = parser.parse_args()
    os.environ["DEEM_RUNS_DIR"] = args.runs_dir
    if args.make:
        make_run(args.runs_dir, int(args.make[0]), int(args.make[1]), args.make[2].split(","))
        return 0
    from streamlit.testing.v1 import AppTest  # noqa: PLC0415

    rss, hwm = memory()
    print(f"app {args.app}; run {args.run}; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"{'step':34s} {'seconds':>8s} {'RSS MB':>8s} {'peak MB':>8s}")
    print(f"{'start':34s} {'':>8s} {rss:8d} {hwm:8d}")
    sessions = []
    for i in range(args.sessions):
        at = AppTest.from_file(args.app, default_timeout=900)
        at.query_params["run"] = args.run
        at.run()
        for step, page in (("Results", "pages/results.py"), ("Results, a click", None), ("Train", "pages/train.py")):
            started = time.time()
            if page:
                at.switch_page(page)
            elif args.mix:  # the click: another method on the picker
                picker = at.selectbox(key=f"results_method_{args.run}")
                picker.set_value(picker.options[i % len(picker.options)])
                step = f"Results, {picker.options[i % len(picker.options)]}"
            at.run()
            problems = [str(e.value)[:80] for e in list(at.exception) + list(at.error)]
            rss, hwm = memory()
            print(f"{f'session {i + 1}: {step}':34s} {time.time() - started:8.1f} {rss:8d} {hwm:8d}"
                  + (f"  {problems}" if problems else ""), flush=True)
        sessions.append(at)  # every session stays open, as browsers on the link would
    return 0


if __name__ == "__main__":
    sys.exit(main())
