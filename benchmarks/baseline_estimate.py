"""The Train page's estimate of the baselines' time (``deem_studio.estimate``) against the time they take, with the
probe sizes before and after the fifty-fourth session (``BASELINE_PROBE_TASKS`` 240 and now).

The baselines are fitted on a sample of ``BASELINE_PROBE_TASKS`` tasks and on a quarter of it, and read off the line
through the two. Walkthrough 123 saw "about 18 s" for a training whose baselines took 3.7 s, and 2.4 s for 11.4 s:
GLAD runs 10-11 iterations on samples of 125-250 tasks and 2 on 500 or more, so its cost per task falls as the
sample grows. Each row: the estimate of the baselines' seconds on the whole data, the seconds they then take (each
method's fit and its results frame, in this process; GLAD and MACE in the child process a job uses), their ratio, and
the estimate's own probing time (the page waits for it; its limit is ``PROBE_MAX_SECONDS``).

Usage: ``python benchmarks/baseline_estimate.py [--files A.csv ...] [--methods mv,ds,glad,cwds]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine  # noqa: E402
from deem_core.data.readers import read_annotations  # noqa: E402
from deem_core.methods.registry import fit_method, method_keys  # noqa: E402
from deem_studio import estimate  # noqa: E402

BEFORE = 240


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", nargs="*", default=[])
    parser.add_argument("--methods", default="mv,ds,glad,cwds", help="comma-separated, or 'all' (every baseline)")
    args = parser.parse_args(argv)
    import torch  # noqa: PLC0415

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    methods = ([m for m in method_keys() if m not in ("deem", "irbm", "kos")] if args.methods == "all"
               else args.methods.split(","))
    now = estimate.BASELINE_PROBE_TASKS
    paths = [ROOT / "sample_data" / f"{n}.csv" for n in ("condind", "tree3k", "digits")] + [Path(f) for f in args.files]
    print(f"# python benchmarks/baseline_estimate.py --methods {args.methods}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {machine()}; load average {os.getloadavg()[0]:.1f}")
    print(f"# baselines: {', '.join(methods)}")
    print("| data | tasks | probe tasks | estimate s | taken s | taken / estimate | probing s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for path in paths:
        data = read_annotations(path)
        started = time.perf_counter()
        for method in methods:
            fit_method(method, data, seed=0).results_frame()
        taken = time.perf_counter() - started
        for size in (BEFORE, now):
            estimate.BASELINE_PROBE_TASKS = size
            started = time.perf_counter()
            said = estimate.estimate_train(data, ("deem",), methods, epochs=1).baselines.at(data.n_tasks)
            probing = time.perf_counter() - started
            print(f"| {path.name[:28]} | {data.n_tasks:,} | {size:,}{' (before)' if size == BEFORE else ''} | "
                  f"{said:.1f} | {taken:.1f} | {taken / said:.2f} | {probing:.1f} |", flush=True)
        estimate.BASELINE_PROBE_TASKS = now
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
