"""Shared helpers for the benchmark scripts: where the data sets live and how to read them.

Sample sets come from ``sample_data/``; the real crowdsourcing sets are read from ``../shared/data``
(never copied into the project). Truth files are used only to score.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "sample_data"
SHARED_DATA = Path(os.environ.get("DEEM_SHARED_DATA", ROOT.parent / "shared" / "data"))

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
