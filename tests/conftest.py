"""Shared fixtures: small annotation sets and the paths of the shipped/benchmark data."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "sample_data"
SHARED_DATA = ROOT.parent / "shared" / "data"

torch.set_num_threads(1)


def read_sample(name: str, n_tasks: int | None = None) -> tuple[pd.DataFrame, pd.Series]:
    """A shipped sample set (optionally its first ``n_tasks`` tasks) and its truth Series."""
    df = pd.read_csv(SAMPLE_DIR / f"{name}.csv")
    truth = pd.read_csv(SAMPLE_DIR / f"{name}.truth.csv").set_index("task")["truth"]
    if n_tasks is not None:
        keep = np.sort(df["task"].unique())[:n_tasks]
        df = df[df["task"].isin(keep)].reset_index(drop=True)
        truth = truth.loc[keep]
    return df, truth


def sample_generator():
    """The module sample_data/make_sample_data.py (the generators of the bundled sets), imported from its file."""
    spec = importlib.util.spec_from_file_location("make_sample_data", SAMPLE_DIR / "make_sample_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_shared(name: str) -> tuple[pd.DataFrame, pd.Series]:
    """A real crowdsourcing set from ../shared/data (skips the test when it is not there)."""
    path = SHARED_DATA / f"{name}.csv.gz"
    if not path.exists():
        pytest.skip(f"{path} not available")
    df = pd.read_csv(path)
    truth = pd.read_csv(SHARED_DATA / f"{name}.truth.csv.gz").set_index("task")["truth"]
    return df, truth


def copies_of_a_weak_classifier(seed: int = 7) -> pd.DataFrame:
    """1,500 tasks x 4 classes: a classifier right on 45% of them, two near-copies of it (98% alike) and three
    independent ones right on 65-75%, in long form. Dawid-Skene follows the copies (57%); the cluster-weighted
    Dawid-Skene, counting them once, and DEEM's defaults do not (92%)."""
    rng = np.random.default_rng(seed)
    n, k = 1500, 4
    truth = rng.integers(k, size=n)

    def noisy(accuracy: float) -> np.ndarray:
        return np.where(rng.random(n) < accuracy, truth, rng.integers(k, size=n))

    weak = noisy(0.45)
    columns = {"weak": weak, **{f"weak_copy{i}": np.where(rng.random(n) < 0.98, weak, rng.integers(k, size=n))
                                for i in (1, 2)},
               **{f"good{i}": noisy(a) for i, a in enumerate((0.7, 0.75, 0.65))}}
    return pd.DataFrame([(t, w, int(v[t])) for w, v in columns.items() for t in range(n)],
                        columns=["task", "worker", "label"])


def make_ds_data(n_tasks: int, n_workers: int, n_classes: int, density: float = 1.0, seed: int = 0,
                 accuracy: tuple[float, float] = (0.6, 0.9)) -> tuple[pd.DataFrame, pd.Series]:
    """Annotations drawn from a Dawid-Skene model (one-coin workers), optionally sparse."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_classes, n_tasks)
    acc = rng.uniform(*accuracy, n_workers)
    rows = []
    for t in range(n_tasks):
        for w in range(n_workers):
            if rng.random() > density:
                continue
            if rng.random() < acc[w]:
                label = truth[t]
            else:
                label = rng.choice([c for c in range(n_classes) if c != truth[t]])
            rows.append((t, f"w{w:02d}", int(label)))
    df = pd.DataFrame(rows, columns=["task", "worker", "label"])
    return df, pd.Series(truth, index=pd.Index(range(n_tasks), name="task"), name="truth")


@pytest.fixture
def spy(monkeypatch):
    """``spy(module, "name")``: the calls of ``module.name`` from then on, as (args, kwargs), each still made."""
    def install(module, name: str) -> list:
        calls: list = []
        real = getattr(module, name)

        def recorded(*args, **kwargs):
            calls.append((args, kwargs))
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, recorded)
        return calls

    return install


@pytest.fixture
def small_condind():
    return read_sample("condind", n_tasks=400)


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """A fresh run store for the dashboard (DEEM_RUNS_DIR), its job manager shut down afterwards."""
    from deem_studio.jobs import get_manager  # noqa: PLC0415

    from pages import common  # noqa: PLC0415

    path = tmp_path / "runs"
    monkeypatch.setenv("DEEM_RUNS_DIR", str(path))
    common._ESTIMATES.clear()  # (the server process keeps estimates: each test probes as a fresh server would)
    common._TIMED_BUSY.clear()
    common._GIVEN_UP.clear()
    # a page's run waits for its probe here (a server's waits 1 s, then the estimate follows: test_estimate_app.py),
    # so that one AppTest run shows the estimate as before
    monkeypatch.setattr(common, "ESTIMATE_WAIT_SECONDS", 300.0)
    yield path
    get_manager(path).shutdown()
