"""Shared helpers for the benchmark scripts: where the data sets live and how to read them.

Sample sets come from ``sample_data/``; the real crowdsourcing sets are read from ``../shared/data``
(never copied into the project). Truth files are used only to score.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "sample_data"
SHARED_DATA = Path(os.environ.get("DEEM_SHARED_DATA", ROOT.parent / "shared" / "data"))

#: the start of a script a memory benchmark runs in a fresh process: quiet warnings, one torch thread, and the
#: process's peak resident memory (``hwm``, MB) with a way to start measuring it afresh (``reset_peak``)
PEAK_PRELUDE = """
import json, time, warnings
warnings.simplefilter("ignore")
import numpy as np, pandas as pd, torch
torch.set_num_threads(1)
from deem_core import AnnotationSet
def hwm():
    return int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]) / 1024
def reset_peak():  # the peak from here on (Linux: clear_refs 5 resets VmHWM to the current resident memory)
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
"""

SAMPLE_SETS = ["condind", "tree3k", "ampdata", "digits", "digits_experts"]
SHARED_SETS = ["duck", "dog"]
ALL_SETS = SAMPLE_SETS + SHARED_SETS


def load_set(name: str) -> tuple[pd.DataFrame, pd.Series]:
    """(long annotations, truth Series indexed by task) of a sample or shared set."""
    if name in SHARED_SETS:
        df = pd.read_csv(SHARED_DATA / f"{name}.csv.gz")
        truth = pd.read_csv(SHARED_DATA / f"{name}.truth.csv.gz")
    else:
        df = pd.read_csv(SAMPLE_DIR / f"{name}.csv")
        truth = pd.read_csv(SAMPLE_DIR / f"{name}.truth.csv")
    return df, truth.set_index("task")["truth"]


def available_sets(names: list[str] | None = None) -> list[str]:
    names = names or ALL_SETS
    return [n for n in names if n not in SHARED_SETS or (SHARED_DATA / f"{n}.csv.gz").exists()]


def machine() -> str:
    """One line naming the machine the figures come from."""
    import torch  # noqa: PLC0415

    if torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    from deem_core.model.training import TrainingConfig  # noqa: PLC0415

    return (f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"torch {torch.__version__} (training uses {TrainingConfig().cpu_threads} CPU thread)")


def with_attribute(owner: object, name: str, value: object, call):
    """``call()`` with ``owner.name`` set to ``value`` for its duration (a module's switch or threshold, for an A/B
    of one rule), restored after."""
    kept = getattr(owner, name)
    setattr(owner, name, value)
    try:
        return call()
    finally:
        setattr(owner, name, kept)


def run_fresh(script: str, timeout: int = 900) -> dict:
    """Run ``script`` (Python source) in a fresh process at the project's root on one thread and return the JSON
    object its last line prints, or ``{"error": its last line of stderr}``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=timeout)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])
