"""Memory and CPU of the Data page's checks when several sessions open one large data set at once (attack round 56:
25 tabs of one browser on a 20 M-answer set each made the checks, +1.2 GB a tab, and the server ran out of memory).

Each mode runs in a child process of its own (so that each peak, VmHWM, is its own): ``each`` -- every session makes
the checks itself (the pages before the fix); ``shared`` -- the sessions ask the server's shared store
(:func:`deem_studio.capacity.shared_summary`, a large set's under a read slot), as the pages do now. Prints a table.

Usage::

    python benchmarks/summary_sessions.py [--tasks 500000] [--answers 10] [--sessions 4]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from run_pages_memory import memory as memory_mb  # noqa: E402  (VmRSS, VmHWM) in MB


def attack_set(n_tasks: int, per_task: int, n_workers: int = 1000, n_classes: int = 5):
    """The attack's shape: ``per_task`` answers a task from ``n_workers`` workers, uniform labels."""
    import numpy as np  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415

    from deem_core.data.annotations import AnnotationSet  # noqa: PLC0415

    t = np.repeat(np.arange(n_tasks), per_task)
    w = (t * 7 + np.tile(np.arange(per_task), n_tasks) * 13) % n_workers
    y = np.random.default_rng(0).integers(0, n_classes, size=len(t))
    return AnnotationSet.from_codes(pd.Index(np.arange(n_tasks), name="task"),
                                    pd.Index(np.arange(n_workers), name="worker"),
                                    pd.Index(np.arange(n_classes), name="label"), t, w, y)


def child(mode: str, n_tasks: int, per_task: int, sessions: int) -> None:
    from deem_core.analysis.agreement import data_checks  # noqa: PLC0415
    from deem_studio import capacity  # noqa: PLC0415

    data = attack_set(n_tasks, per_task)
    before, _ = memory_mb()
    cpu0, wall0 = time.process_time(), time.perf_counter()

    def session() -> None:
        if mode == "each":
            data_checks(data)
        else:
            capacity.shared_summary(data.fingerprint(), lambda: data_checks(data), heavy=True, party="192.0.2.2")

    threads = [threading.Thread(target=session) for _ in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after, peak = memory_mb()
    print(f"{mode}\t{sessions}\t{data.n_annotations}\t{time.perf_counter() - wall0:.1f}\t"
          f"{time.process_time() - cpu0:.1f}\t{before}\t{peak}\t{peak - before}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=500_000)
    parser.add_argument("--answers", type=int, default=10)
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--child", default=None)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.tasks, args.answers, args.sessions)
        return
    load = os.getloadavg()[0]
    print(f"# machine: {os.cpu_count()} CPUs, load average {load:.1f} at the start; one child process per row")
    print(f"# data: {args.tasks:,} tasks x {args.answers} answers, 1,000 workers, 5 classes (attack round 56's shape)")
    print("mode\tsessions\tanswers\twall_s\tcpu_s\trss_before_mb\tpeak_mb\tpeak_minus_before_mb")
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    for mode in ("each", "shared"):
        for sessions in (1, args.sessions):
            subprocess.run([sys.executable, __file__, "--child", mode, "--tasks", str(args.tasks), "--answers",
                            str(args.answers), "--sessions", str(sessions)], check=True, env=env)


if __name__ == "__main__":
    main()
