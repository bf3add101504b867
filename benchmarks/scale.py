"""Platform scale: time and peak memory of every step on generated sparse sets (one CPU thread).

Sets (sample_data/make_platform_data.py; generated once into ``--data-dir`` and reused):

==================  ==========================================================================
``netease``         1,000,000 tasks x 2,400 workers x 3 classes, 6 answers per task (NetEaseCrowd's shape)
``longtail``        200,000 tasks x 50,000 workers x 5 classes, 3 answers per task (most workers < 10 tasks)
``medium``          100,000 tasks x 2,000 workers x 3 classes, 5 answers per task
``new_every_row``   40,000 rows, each a new task and a new worker
``distinct_workers``  1,000,000 distinct workers, each answering one task (200,000 tasks x 5 answers)
``mnist_e``         60,000 tasks x 15 workers x 10 classes, every worker answers every task (MnistE-sized dense
                    data, sample_data/make_sample_data.py ``make_mnist_like``): must stay on the dense path
==================  ==========================================================================

Steps, each in a fresh subprocess (so the peak resident memory, ``VmHWM``, is the step's own):

* ``read``  -- ``read_annotations`` of the ``.csv.gz`` + ``summary()``; the AnnotationSet is then cached
  (pickle) for the other steps;
* ``stats`` -- the dashboard's data summary: Krippendorff's alpha, labels per task, class balance, worker
  coverage, pairwise agreement of the 60 most active workers;
* ``mv``, ``ds`` -- majority vote and Dawid-Skene through the method registry (what ``deem aggregate --method``
  runs), scored against the generated truth;
* ``deem_epoch``, ``deem``, ``deem_mv``, ``deem_converge`` (DS start), ``deem_converge_mv`` (MV start),
  ``deem_heldout`` (held-out log-likelihood vs accuracy, both starts), ``deem_storage`` -- DEEM
  (``benchmarks/scale_deem.py``): seconds per epoch of one layer, the default run, the default with the
  majority-vote start, accuracy over the epochs, all vs co-occurring pair storage.

After the table, the accuracy of every method that ran on a set, side by side (DEEM >= majority vote and within
0.5 points of Dawid-Skene is issue 16's target).

The cached set is loaded before the timed part of mv/ds/stats (``load s``); ``peak MB`` is the whole
process's, loading included. Targets (issue 16, 1 thread, 1,000,000 tasks): read + summary <= 60 s, MV and
DS <= 60 s each, peak <= 4 GB. More steps (DEEM) register in :data:`STEPS`.

Usage::

    nice -n 10 python benchmarks/scale.py                    # every set and step; writes results/scale.txt
    python benchmarks/scale.py --sets medium --steps read mv # a part (results/scale.txt untouched)
    python benchmarks/scale.py --data-dir /tmp/deem-scale    # where the generated sets are cached
    python benchmarks/scale.py --device cuda                 # DEEM steps on a GPU (default: cpu)
    python benchmarks/scale.py --sets netease --steps deem --deem-epochs 10   # shorter than the default run
    python benchmarks/scale.py --sets medium --steps deem_epoch --out results/scale_deem.txt  # write a part
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "scale.txt"
SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                 "NUMEXPR_NUM_THREADS": "1"}

SETS = {
    "netease": "1,000,000 tasks x 2,400 workers x 3 classes, 6 answers/task",
    "longtail": "200,000 tasks x 50,000 workers x 5 classes, 3 answers/task",
    "medium": "100,000 tasks x 2,000 workers x 3 classes, 5 answers/task",
    "new_every_row": "40,000 rows, each a new task and a new worker",
    "distinct_workers": "1,000,000 distinct workers (200,000 tasks x 5 answers)",
    "mnist_e": "60,000 tasks x 15 workers x 10 classes, every worker answers every task (MnistE-sized, dense)",
}
#: (set, step) -> (seconds, MB) targets of issue 16
TARGETS = {("netease", "read"): (60, 4096), ("netease", "mv"): (60, 4096), ("netease", "ds"): (60, 4096),
           ("longtail", "read"): (None, 4096), ("longtail", "mv"): (None, 4096), ("longtail", "ds"): (None, 4096)}


def _peak_mb() -> float:
    # VmHWM (KiB): this process's own peak; ru_maxrss keeps the forking parent's
    return int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]) / 1024.0


def _paths(data_dir: Path, name: str) -> dict[str, Path]:
    return {"csv": data_dir / f"{name}.csv.gz", "truth": data_dir / f"{name}.truth.csv.gz",
            "cache": data_dir / f"{name}.annotations.pkl"}


def _load(paths: dict[str, Path]):
    with open(paths["cache"], "rb") as handle:
        return pickle.load(handle)


def _accuracy(data, labels, paths: dict[str, Path]) -> str:
    import pandas as pd  # noqa: PLC0415

    truth = pd.read_csv(paths["truth"]).set_index("task")["truth"]
    common = labels.index.intersection(truth.index)
    return f"accuracy {100 * float((labels.loc[common].to_numpy() == truth.loc[common].to_numpy()).mean()):.2f}%"


# ---------------------------------------------------------------------------------------------- the steps
@dataclass
class Step:
    """``run(paths)`` returns ``wall``, ``cpu`` (the timed part), ``peak`` (MB), ``result`` (text) and, when it
    loads the cached set first, ``load`` (seconds)."""

    description: str
    run: Callable[[dict[str, Path]], dict[str, Any]]


def _timed(function: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = function()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def step_read(paths: dict[str, Path]) -> dict[str, Any]:
    from deem_core.data.readers import read_annotations  # noqa: PLC0415

    def run():
        data = read_annotations(str(paths["csv"]))
        return data, data.summary()

    (data, summary), wall, cpu = _timed(run)
    peak = _peak_mb()
    with open(paths["cache"], "wb") as handle:
        pickle.dump(data, handle, protocol=5)
    return {"wall": wall, "cpu": cpu, "peak": peak,
            "result": f"{summary['tasks']:,} x {summary['workers']:,} x {summary['classes']}, "
                      f"{summary['annotations']:,} answers"}


def step_stats(paths: dict[str, Path]) -> dict[str, Any]:
    from deem_core.analysis import agreement  # noqa: PLC0415

    data, load, _ = _timed(lambda: _load(paths))

    def run():
        return (agreement.krippendorff_alpha(data), agreement.labels_per_task(data), agreement.class_balance(data),
                agreement.worker_coverage(data), agreement.pairwise_agreement(data, max_workers=60))

    (alpha, *_), wall, cpu = _timed(run)
    return {"wall": wall, "cpu": cpu, "peak": _peak_mb(), "load": load, "result": f"alpha {alpha:.3f}"}


def _method_step(method: str) -> Callable[[dict[str, Path]], dict[str, Any]]:
    def step(paths: dict[str, Path]) -> dict[str, Any]:
        from deem_core.methods.registry import fit_method  # noqa: PLC0415

        data, load, _ = _timed(lambda: _load(paths))
        model, wall, cpu = _timed(lambda: fit_method(method, data))
        peak = _peak_mb()
        result = _accuracy(data, model.labels_, paths)
        return {"wall": wall, "cpu": cpu, "peak": peak, "load": load, "result": result,
                "accuracy": float(result.split()[1].rstrip("%"))}
    return step


STEPS: dict[str, Step] = {
    "read": Step("read .csv.gz + summary", step_read),
    "stats": Step("data page statistics", step_stats),
    "mv": Step("majority vote", _method_step("mv")),
    "ds": Step("Dawid-Skene", _method_step("ds")),
}
# DEEM: deem_epoch (seconds per epoch), deem (the default run), deem_mv, deem_storage (benchmarks/scale_deem.py)
sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale_deem  # noqa: E402
from scale_deem import DEEM_STEPS, DEEM_TARGETS  # noqa: E402

STEPS.update({name: Step(description, run) for name, (description, run) in DEEM_STEPS.items()})
TARGETS.update(DEEM_TARGETS)


# ---------------------------------------------------------------------------------------------- driver
def _child(step: str, name: str, data_dir: Path) -> None:
    started = os.getloadavg()[0]
    try:
        out = STEPS[step].run(_paths(data_dir, name))
    except Exception as exc:  # noqa: BLE001 - reported in the table
        out = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}", "peak": _peak_mb()}
    out.update(load_before=started, load_after=os.getloadavg()[0])
    print("RESULT " + json.dumps(out))


def _ensure_set(name: str, data_dir: Path) -> None:
    paths = _paths(data_dir, name)
    if paths["csv"].exists() and paths["truth"].exists():
        return
    sys.path.insert(0, str(ROOT / "sample_data"))
    from make_platform_data import write_preset, write_set  # noqa: PLC0415
    from make_sample_data import make_mnist_like  # noqa: PLC0415

    started = time.perf_counter()
    if name == "mnist_e":
        write_set(name, *make_mnist_like(n_tasks=60000, n_workers=15, n_classes=10, seed=0), data_dir)
    else:
        write_preset(name, data_dir)
    print(f"# generated {name} in {time.perf_counter() - started:.0f} s", flush=True)


def _run_child(step: str, name: str, data_dir: Path, timeout: float, options: list[str]) -> dict[str, Any]:
    env = {**os.environ, **SINGLE_THREAD, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", step, name, "--data-dir", str(data_dir),
               *options]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        return {"error": f"exit {done.returncode}: {tail[0][:200]}"}
    return json.loads(lines[-1][len("RESULT "):])


def _row(name: str, step: str, out: dict[str, Any]) -> str:
    if "error" in out:
        return f"| {name} | {step} | - | - | {out.get('peak', float('nan')):,.0f} | - | - | {out['error']} | FAIL |"
    target = ""
    if (name, step) in TARGETS:
        seconds, megabytes = TARGETS[name, step]
        ok = (seconds is None or out["wall"] <= seconds) and out["peak"] <= megabytes
        limits = ([f"<= {seconds:g} s"] if seconds is not None else []) + [f"<= {megabytes / 1024:.0f} GB"]
        target = f"{'ok' if ok else 'MISSED'} ({', '.join(limits)})"
        busy = max(out["load_before"], out["load_after"]) > (os.cpu_count() or 1)
        if "projected" in out and seconds is not None:
            # a shortened run (--deem-epochs): the target applies to the default run it projects (CPU time)
            ok = out["projected"] <= seconds and out["peak"] <= megabytes
            target = f"{'ok' if ok else 'MISSED'} projected {out['projected']:,.0f} s CPU ({', '.join(limits)})"
        elif not ok and busy and out["cpu"] <= seconds and out["peak"] <= megabytes:
            # more runnable processes than cores: the wall time is mostly waiting for a core
            target = f"ok on CPU time, wall MISSED at load {out['load_before']:.0f} ({', '.join(limits)})"
    load = f"{out['load']:.1f}" if "load" in out else "-"
    return (f"| {name} | {step} | {out['wall']:.1f} | {out['cpu']:.1f} | {out['peak']:,.0f} | {load} | "
            f"{out['load_before']:.1f} / {out['load_after']:.1f} | {out['result']} | {target} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="*", default=list(SETS), choices=list(SETS))
    parser.add_argument("--steps", nargs="*", default=list(STEPS), choices=list(STEPS))
    parser.add_argument("--data-dir", default=os.environ.get("DEEM_SCALE_DATA", "/tmp/deem-scale"))
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per step (default 1800)")
    parser.add_argument("--device", default="cpu", help="device of the DEEM steps (default cpu; cuda on a GPU)")
    parser.add_argument("--deem-epochs", type=int, default=None,
                        help="epochs of the deem/deem_mv steps (default: DEEM's default, i.e. the default run)")
    parser.add_argument("--converge-epochs", type=int, default=30, help="epochs of deem_converge (default 30)")
    parser.add_argument("--out", default=None, help="write the table here (default: results/scale.txt, and only "
                                                    "when every set and step ran)")
    parser.add_argument("--child", nargs=2, metavar=("STEP", "SET"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    data_dir = Path(args.data_dir)
    scale_deem.DEVICE, scale_deem.DEEM_EPOCHS = args.device, args.deem_epochs
    scale_deem.CONVERGE_EPOCHS = args.converge_epochs
    options = ["--device", args.device, "--converge-epochs", str(args.converge_epochs)] + (
        ["--deem-epochs", str(args.deem_epochs)] if args.deem_epochs is not None else [])
    if args.child:
        _child(args.child[0], args.child[1], data_dir)
        return 0
    data_dir.mkdir(parents=True, exist_ok=True)
    import platform  # noqa: PLC0415

    steps = ["read"] + [s for s in args.steps if s != "read"]  # the other steps read read's cache
    lines = [f"# python benchmarks/scale.py {' '.join(argv if argv is not None else sys.argv[1:])}".rstrip(),
             f"# {time.strftime('%Y-%m-%d %H:%M')}, {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} cores shared; every step in a fresh process with 1 CPU thread; DEEM on "
             f"{args.device}; load average (1 min) before: {os.getloadavg()[0]:.2f}",
             "# wall/CPU s: the step alone; peak MB: max RSS of its process (loading included); load s: loading "
             "the cached AnnotationSet first; load avg: 1-min load average before / after the step",
             "", "| set | step | wall s | CPU s | peak MB | load s | load avg | result | target |",
             "|---|---|---:|---:|---:|---:|---|---|---|"]
    print("\n".join(lines), flush=True)
    accuracy: dict[str, dict[str, float]] = {}
    for name in args.sets:
        _ensure_set(name, data_dir)
        for step in steps:
            if step == "read" and "read" not in args.steps and _paths(data_dir, name)["cache"].exists():
                continue
            out = _run_child(step, name, data_dir, args.timeout, options)
            if "accuracy" in out:
                accuracy.setdefault(name, {})[step] = out["accuracy"]
            row = _row(name, step, out)
            if step in args.steps:
                lines.append(row)
                print(row, flush=True)
    lines.append("\nsets: " + "; ".join(f"{name} = {SETS[name]}" for name in args.sets))
    lines.extend(_accuracy_table(accuracy))
    print("\n".join(lines[-len(_accuracy_table(accuracy)) - 1:]), flush=True)
    out_path = Path(args.out) if args.out else RESULTS if (set(args.sets) == set(SETS)
                                                            and set(args.steps) == set(STEPS)) else None
    if out_path is not None:
        out_path = out_path if out_path.is_absolute() else ROOT / "benchmarks" / out_path
        out_path.write_text("\n".join(lines) + "\n")
        print(f"wrote {out_path}")
    return 0


def _accuracy_table(accuracy: dict[str, dict[str, float]]) -> list[str]:
    """Accuracy (%) of every method that ran on a set, side by side, with issue 16's verdict for DEEM
    (>= majority vote, and within 0.5 points of Dawid-Skene or ahead)."""
    columns = [step for step in ("mv", "ds", "deem", "deem_mv", "deem_converge", "deem_converge_mv", "deem_heldout")
               if any(step in row for row in accuracy.values())]
    if not columns:
        return []
    lines = ["", "accuracy (%) against the generated truth:", "",
             "| set | " + " | ".join(columns) + " | DEEM >= MV, >= DS - 0.5 |", "|---|" + "---:|" * len(columns) + "---|"]
    for name, row in accuracy.items():
        verdicts = []
        for step in ("deem", "deem_mv", "deem_converge", "deem_converge_mv", "deem_heldout"):
            if step in row and "mv" in row and "ds" in row:
                ok = row[step] >= row["mv"] and row[step] >= row["ds"] - 0.5
                verdicts.append(f"{step} {'ok' if ok else 'MISSED'}")
        cells = [f"{row[c]:.2f}" if c in row else "-" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {', '.join(verdicts) or '-'} |")
    return lines


if __name__ == "__main__":
    sys.exit(main())
