"""Accuracy of the default DEEM on the two one-answer shapes of the scale issue, beside majority vote and Dawid-Skene.

* ``distinct_workers``: every worker answers exactly one task (200,000 workers, 40,000 tasks x 5 answers);
* ``new_every_row``: every row a new task and a new worker (20,000 rows: one answer per task, nothing to aggregate).

Plain Dawid-Skene has nothing to estimate a worker from in either; the shared prior of the Dawid-Skene start
(``ds_prior``) reads every worker as the crowd's typical worker, which is majority vote with a class prior. With one
answer per task the Dawid-Skene start collapses and the default falls back to the majority-vote start, labelled.

Usage::

    python benchmarks/one_answer_shapes.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "sample_data"))
from common import machine  # noqa: E402
from make_platform_data import make_distinct_workers, make_new_every_row  # noqa: E402

from deem_core import DEEM  # noqa: E402
from deem_core.data.annotations import AnnotationSet  # noqa: E402
from deem_core.methods.dawid_skene import DEFAULT_DS_PRIOR, fit_dawid_skene  # noqa: E402


def main() -> int:
    torch.set_num_threads(1)
    print(f"# python benchmarks/one_answer_shapes.py; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {machine()}; "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| set | MV | DS | DS + shared prior | DEEM default | start used | CPU s (DEEM) |")
    print("|---|---:|---:|---:|---:|---|---:|")
    shapes = {"distinct_workers (200,000 workers x 1 answer; 40,000 tasks x 5)": make_distinct_workers(200_000),
              "new_every_row (20,000 rows, each a new task and worker)": make_new_every_row(20_000)}
    for name, (frame, truth) in shapes.items():
        data = AnnotationSet.from_long(frame)
        y = data.classes.get_indexer(truth.reindex(data.tasks).to_numpy())

        def acc(codes) -> float:
            return 100 * float((np.asarray(codes) == y).mean())

        cpu = time.process_time()
        model = DEEM(device="cpu").fit(data)
        cpu = time.process_time() - cpu
        start = model.init_ + (f" (fallback: {model.fallback_})" if model.fallback_ else "")
        print(f"| {name} | {acc(data.majority_vote()):.2f} | {acc(fit_dawid_skene(data).posterior.argmax(1)):.2f} | "
              f"{acc(fit_dawid_skene(data, prior_strength=DEFAULT_DS_PRIOR).posterior.argmax(1)):.2f} | "
              f"{acc(data.classes.get_indexer(model.predict())):.2f} | {start} | {cpu:.0f} |", flush=True)
    with open("/proc/self/status") as status:  # VmHWM: this process's own peak (KiB)
        peak = int(status.read().split("VmHWM:")[1].split()[0]) / 1024
    print(f"\npeak memory of the process: {peak:,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
