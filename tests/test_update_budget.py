"""The update budget (``max_updates``): on large data a run trains as many epochs as fit in the budget, the
same number everywhere it is counted (engine, estimator, command line, job progress, Train page)."""

from __future__ import annotations

import math

import pytest

from deem_core import AnnotationSet
from deem_core.cli import main
from deem_core.methods.base import defaults_of
from deem_core.methods.deem import DEEM
from deem_core.model.training import epochs_within_budget
from deem_studio.jobs import TRAIN_DEFAULTS, JobManager, train_epochs
from deem_studio.runs import RunStore

from conftest import read_sample


@pytest.mark.parametrize(("n_tasks", "epochs", "batch", "budget", "expected"), [
    (1_000_000, 100, 1024, 20_000, 20),   # 977 updates per epoch: 20 epochs = 19,540 updates
    (200_000, 100, 1024, 20_000, 100),    # 196 per epoch: 19,600 <= 20,000, all 100 epochs
    (60_000, 100, 1024, 20_000, 100),     # MnistE-sized: 5,900 updates
    (1_000_000, 100, 1024, None, 100),    # no budget
    (5_000_000, 100, 1024, 20_000, 4),
    (50_000_000, 100, 1024, 20_000, 1),   # never fewer than one epoch
    (300, 7, 64, 12, 2),                  # 5 updates per epoch
    (300, 1, 64, 1, 1),
])
def test_epochs_within_budget(n_tasks, epochs, batch, budget, expected):
    planned = epochs_within_budget(n_tasks, epochs, batch, budget)
    assert planned == expected
    if budget is not None and planned > 1:
        assert planned * math.ceil(n_tasks / batch) <= budget  # the budget is never passed (beyond one epoch)


def test_the_default_budget_is_one_source():
    assert TRAIN_DEFAULTS["max_updates"] == defaults_of(DEEM)["max_updates"] == 20_000


@pytest.fixture(scope="module")
def small():
    df, truth = read_sample("condind", n_tasks=300)
    return AnnotationSet.from_long(df, source="condind"), truth


@pytest.mark.parametrize("n_layers", [1, "auto"])
def test_the_estimator_trains_the_epochs_within_its_budget(small, n_layers):
    data, _ = small
    seen: list[int] = []
    model = DEEM(n_layers=n_layers, epochs=7, batch_size=64, max_updates=12, lr=0.01, device="cpu",
                 callbacks=[lambda epoch, logs: seen.append(epoch)]).fit(data)
    assert model.epochs_ == model.planned_epochs(data.n_tasks) == 2  # 300 tasks / 64 = 5 updates per epoch
    groups = 3 if n_layers == "auto" else 1  # the depths train one after the other, each within the budget
    assert len(seen) == 2 * groups and seen == list(range(1, 2 * groups + 1))
    assert model.n_epochs_ == 2 and model.history_["epoch"].max() == 2


def test_no_budget_trains_every_epoch_and_the_budget_is_saved(small, tmp_path):
    data, _ = small
    model = DEEM(epochs=3, batch_size=64, max_updates=None, device="cpu").fit(data)
    assert model.epochs_ == model.n_epochs_ == 3
    model.save(tmp_path / "m.pt")
    loaded = DEEM.load(tmp_path / "m.pt")
    assert loaded.max_updates is None and loaded.epochs_ == 3


@pytest.mark.parametrize("bad", [0, -5, 2.5, "many", True])
def test_a_bad_budget_is_refused(small, bad):
    with pytest.raises(ValueError, match="max_updates"):
        DEEM(max_updates=bad).fit(small[0])


def test_a_train_job_counts_and_trains_the_budgeted_epochs(small, tmp_path):
    data, gold = small
    manager = JobManager(RunStore(tmp_path / "runs"), max_cpu_jobs=1)
    try:
        config = {"methods": ["deem", "mv"], "epochs": 50, "max_updates": 15, "batch_size": 64, "device": "cpu"}
        assert train_epochs(config, data.n_tasks) == 3
        run_id = manager.submit("train", config, data=data, gold=gold)
        snap = manager.wait(run_id, timeout=120)
        assert snap.status == "finished", snap.message
        assert snap.steps_done == snap.steps_total == 3 + 1  # 3 epochs of DEEM, then majority vote
        loaded = manager.store.load(run_id, with_data=False)
        assert loaded.config["max_updates"] == 15 and loaded.extras["metrics"]["deem"]["epochs"] == 3
        assert "DEEM: the update budget (15 updates per model run) allowed 3 of the 50 epochs" in snap.messages
        # None in a job's settings means no budget (not "the default")
        run_id = manager.submit("train", {**config, "epochs": 4, "max_updates": None, "methods": ["deem"]},
                                data=data)
        snap = manager.wait(run_id, timeout=120)
        assert snap.status == "finished" and snap.steps_total == 4
        assert manager.store.load(run_id, with_data=False).extras["metrics"]["deem"]["epochs"] == 4
    finally:
        manager.shutdown()


def test_the_command_line_says_when_the_budget_cuts_epochs(tmp_path, capsys):
    frame, _ = read_sample("condind", n_tasks=300)
    path = tmp_path / "a.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "labels.csv"
    code = main(["aggregate", str(path), "-o", str(out), "--epochs", "9", "--batch-size", "64", "--max-updates",
                 "10", "--no-progress", "--device", "cpu", "--init", "ds"])
    err = capsys.readouterr().err
    assert code == 0
    assert "300 tasks take 5 updates (mini-batches) per epoch: 2 of the 9 epochs fit in the budget of 10 updates" in err
    assert "DEEM: lr 0.01, 2 epochs" in err
    code = main(["aggregate", str(path), "-o", str(out), "--epochs", "2", "--batch-size", "64", "--max-updates",
                 "none", "--no-progress", "--device", "cpu", "--init", "ds"])
    err = capsys.readouterr().err
    assert code == 0 and "fit in the budget" not in err and "DEEM: lr 0.01, 2 epochs" in err
    assert main(["aggregate", str(path), "-o", str(out), "--max-updates", "0"]) == 2
    assert "--max-updates: must be at least 1, got 0 (or none: no budget)" in capsys.readouterr().err
    code = main(["aggregate", str(path), "-o", str(out), "--batch-size", "64", "--max-updates", "3", "--no-progress",
                 "--device", "cpu", "--init", "ds"])
    err = capsys.readouterr().err
    assert code == 0 and ("300 tasks take 5 updates (mini-batches) per epoch, more than the budget of 3 updates per "
                          "model run: 1 of the 100 epochs trains (a run trains at least one)") in err
