"""How right the "time left" of a train job is while it runs (``ProgressSnapshot.eta``).

One train job (DEEM choosing its depth, 0/1/2 layers one after another on a CPU, plus majority vote and
Dawid-Skene) runs in an in-process job manager with the launch estimate the Train page attaches
(``deem_studio.estimate``); its snapshot is read every second. Printed per sample: the time left shown, the
measured-pace-only figure the dashboard showed before (the current phase's pace), and the true time left.

Usage::

    python benchmarks/eta.py --set spammers:0 --epochs 2000 --out benchmarks/results/eta.txt
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import machine  # noqa: E402
from selection import load  # noqa: E402

from deem_core import AnnotationSet  # noqa: E402
from deem_studio import estimate as est  # noqa: E402
from deem_studio.jobs import JobManager  # noqa: E402
from deem_studio.runs import RunStore  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", default="spammers:0")
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    data = AnnotationSet.from_long(load(args.set)[0])
    # as the Train page times it: each depth's epoch, an epoch of the estimate one of each
    estimate = est.estimate_train(data, deem_methods=("deem",), baselines=("mv", "ds"), n_layers="auto",
                                  epochs=args.epochs, device="cpu").with_epochs(args.epochs)
    manager = JobManager(RunStore(tempfile.mkdtemp() + "/runs"), max_cpu_jobs=1)
    config = {"methods": ["deem", "mv", "ds"], "n_layers": "auto", "epochs": args.epochs, "device": "cpu",
              "estimate": estimate.to_dict()}
    started = time.time()
    run_id = manager.submit("train", config, data=data)
    samples = []
    while True:
        snap = manager.snapshot(run_id)
        if snap.done:
            break
        if snap.status == "running" and snap.rate_s is not None and snap.phase_total:
            pace = max(0.0, (snap.phase_total - snap.phase_done) * snap.rate_s + snap.then_s)
            samples.append((time.time() - started, snap.eta, pace, snap.fraction))
        time.sleep(1.0)
    total = time.time() - started
    manager.shutdown()
    lines = [f"# python benchmarks/eta.py --set {args.set} --epochs {args.epochs}; "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {machine()}; load average {os.getloadavg()[0]:.1f}",
             f"# {data.n_tasks:,} tasks x {data.n_workers} workers x {data.n_classes} classes; n_layers='auto' (3 "
             f"depths one after another) + MV + DS; launch estimate {estimate.to_dict().get('seconds'):.1f} s; ran "
             f"{total:.1f} s ({snap.status})",
             f"{'elapsed s':>9} {'shown left':>10} {'pace only':>9} {'true left':>9} {'done':>5}"]
    for t, eta, pace, done in samples[:: max(1, len(samples) // 12)]:
        lines.append(f"{t:9.1f} {eta:10.1f} {pace:9.1f} {total - t:9.1f} {done:5.2f}")
    errors = [(abs(eta - (total - t)), abs(pace - (total - t))) for t, eta, pace, _ in samples]
    lines.append(f"# mean |error| over {len(errors)} samples: shown {sum(e[0] for e in errors) / len(errors):.1f} s, "
                 f"pace only {sum(e[1] for e in errors) / len(errors):.1f} s")
    print("\n".join(lines))
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
