"""The job manager: background training, queueing, cancel, crash, lookup by run id."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deem_core import AnnotationSet
from deem_core.analysis.diagnostics import GOLD_SOURCE, PREDICTED_SOURCE
from deem_studio.jobs import (JobManager, QueueFull, device_info, get_manager, load_diagnostics_result, register_kind,
                              status_line)
from deem_studio.runs import RunStore

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


def tiny(n_tasks: int = 120) -> tuple[AnnotationSet, pd.Series]:
    df = pd.read_csv(SAMPLE / "condind.csv")
    df = df[df["task"] < n_tasks]
    truth = pd.read_csv(SAMPLE / "condind.truth.csv").set_index("task")["truth"]
    return AnnotationSet.from_long(df, source="condind.csv"), truth[truth.index < n_tasks]


def wait_for(predicate, timeout: float = 60.0, every: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not reached in time")


# A controllable job kind: waits until released (or cancelled), records the order it ran in.
GATES: dict[str, threading.Event] = {}
RAN: list[str] = []


def _gated(ctx):
    RAN.append(ctx.config["name"])
    gate = GATES[ctx.config["name"]]
    while not gate.wait(0.01):
        if ctx.cancel_event.is_set():
            return "cancelled", "cancelled while waiting"
    ctx.progress.add_rows([{"epoch": 1, "energy_difference": 0.0}])
    return "finished", "ok"


def _crash(ctx):
    raise RuntimeError("the engine exploded\nsecond line of detail")


register_kind("gated", _gated, device=lambda config: "cpu", steps=lambda config, data: 1)
register_kind("crash", _crash, device=lambda config: "cpu")


@pytest.fixture
def manager(tmp_path):
    m = JobManager(RunStore(tmp_path / "runs"), max_cpu_jobs=1)
    yield m
    for gate in GATES.values():
        gate.set()
    m.shutdown()


def test_train_job_stores_everything(manager, monkeypatch):
    from deem_core.methods import registry

    real = registry.fit_method

    def wawa_breaks(method, *args, **kwargs):  # (KOS on 3 classes failed here; it is now refused before the job)
        if method == "wawa":
            raise ValueError("wawa cannot run here")
        return real(method, *args, **kwargs)

    monkeypatch.setattr(registry, "fit_method", wawa_breaks)
    data, gold = tiny()
    run_id = manager.submit("train", {"methods": ["deem", "irbm", "mv", "wawa"], "epochs": 2, "n_layers": 1,
                                      "lr": 0.1, "device": "cpu"}, data=data, gold=gold, owner="alice",
                            dataset="condind")
    snap = manager.wait(run_id, timeout=120)
    assert snap.status == "finished", snap.message
    assert snap.steps_done == snap.steps_total == 2 + 2 + 2  # 2 epochs x 2 DEEM models + 2 baselines
    assert set(snap.history["method"]) == {"deem", "irbm"}
    assert snap.seconds_to_first_point is not None and snap.seconds_to_first_point > 0
    assert "wawa cannot run here" in snap.message  # one method fails, the others go on, the message says so
    # and the Train page reads it as partly failed (read 46: it looked for "method(s) failed", gone from the message)
    from deem_studio.jobs import some_failed
    assert "; 1 method failed: " in snap.message and some_failed(snap.message)
    assert some_failed("labels from DEEM; 2 method(s) failed: x: y")  # (the message of a run stored before)
    assert not some_failed("labels from DEEM, Majority vote") and not some_failed(None)
    loaded = manager.store.load(run_id)
    assert loaded.status == "finished" and loaded.record["owner"] == "alice"
    assert set(loaded.results) == {"deem", "irbm", "mv"}
    deem = loaded.results["deem"]
    assert len(deem) == data.n_tasks
    assert {"label", "confidence", "p_0", "p_1", "p_2", "free_energy", "majority_vote",
            "disagrees_with_majority"} <= set(deem.columns)
    metrics = loaded.extras["metrics"]
    assert metrics["wawa"]["status"] == "failed" and "wawa cannot run here" in metrics["wawa"]["message"]
    assert 0.5 < metrics["mv"]["accuracy"] <= 1.0 and metrics["mv"]["gold_tasks"] == data.n_tasks
    assert loaded.summary["accuracy_mv"] == metrics["mv"]["accuracy"]
    # the depth and start used, for the Runs grid (walkthrough 28)
    assert (loaded.summary["layers_deem"], loaded.summary["layers_irbm"]) == (1, 0)
    assert loaded.summary["start_deem"] in ("mv", "ds") and "layers_mv" not in loaded.summary
    assert loaded.model_names() == ["deem", "irbm"]
    assert loaded.load_model("irbm").n_layers == 0
    workers = loaded.extras["workers"]
    assert len(workers) == 10 and "estimated_accuracy" in workers
    assert loaded.extras["comparison"]["methods"] == ["deem", "irbm", "mv"]
    assert len(loaded.history) == 2 * 2  # one run per model, 2 epochs


def test_crash_marks_the_run_failed(manager):
    run_id = manager.submit("crash", {})
    snap = manager.wait(run_id, timeout=10)
    assert snap.status == "failed"
    assert snap.message == "RuntimeError: the engine exploded"  # one line, no traceback
    record = manager.store.get(run_id)
    assert record["status"] == "failed" and record["message"] == snap.message
    assert "Traceback" in (manager.store.run_dir(run_id) / "error.txt").read_text()


def test_bad_data_fails_with_a_readable_message(manager):
    df = pd.DataFrame({"task": [1, 2], "worker": ["a", "a"], "label": ["cat", "cat"]})
    run_id = manager.submit("train", {"methods": ["deem"], "epochs": 1, "device": "cpu"},
                            data=AnnotationSet.from_long(df, source="one_class.csv"))
    snap = manager.wait(run_id, timeout=30)
    assert snap.status == "failed"
    assert snap.message.startswith("one_class.csv: only one class")


def test_unavailable_gpu_fails_cleanly(manager):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    data, _ = tiny(40)
    run_id = manager.submit("train", {"methods": ["deem"], "epochs": 1, "device": "cuda"}, data=data)
    snap = manager.wait(run_id, timeout=30)
    assert snap.status == "failed" and "no CUDA GPU" in snap.message


def test_cancel_leaves_a_consistent_reopenable_run(manager):
    data, _ = tiny(200)
    run_id = manager.submit("train", {"methods": ["deem", "ds", "mv"], "epochs": 500, "device": "cpu"}, data=data)
    wait_for(lambda: manager.snapshot(run_id).steps_done >= 1)
    assert manager.cancel(run_id)
    snap = manager.wait(run_id, timeout=60)
    assert snap.status == "cancelled"
    # majority vote (milliseconds; everything is compared with it) still runs after a cancel, the others do not
    # (a cancel left nothing to compare with; walkthrough, tenth session)
    # the model stopped part-way says so where its labels are listed, and the method never started is named
    # (Results said "labels kept for: DEEM" of 280 of 1,500 epochs, and Dawid-Skene was in no list; walkthrough 70)
    epochs_run = manager.store.load(run_id, with_data=False).extras["metrics"]["deem"]["epochs"]
    assert snap.message == (f"cancelled during DEEM; labels kept for: DEEM (partial: cancelled after {epochs_run} of "
                            f"500 epochs), Majority vote; methods not started: Dawid-Skene"), snap.message
    loaded = manager.store.load(run_id)
    assert loaded.status == "cancelled"
    assert list(loaded.results) == ["deem", "mv"]  # ds never started
    assert loaded.extras["comparison"]["methods"] == ["deem", "mv"]
    epochs = int(loaded.history["epoch"].max())
    assert 1 <= epochs < 500
    # the epochs trained, in the summary the runs list reads (it said 500 of a training cancelled after a few;
    # walkthrough 126)
    assert manager.store.get(run_id)["summary"]["epochs_deem"] == epochs_run
    model = loaded.load_model("deem")
    assert model.run_status_ == ["cancelled"] and len(model.predict_proba()) == 200
    assert not manager.cancel(run_id)  # nothing left to cancel


def test_a_cancelled_choice_of_the_layers_is_not_called_finished(manager):
    # cancelled while choosing the depth: DEEM said "finished" though its 2-layer candidates never trained, and the
    # run said "cancelled during before Majority vote" (walkthrough, tenth session)
    data, _ = tiny(200)
    run_id = manager.submit("train", {"methods": ["deem", "mv"], "n_layers": "auto", "epochs": 300,
                                      "device": "cpu"}, data=data)
    wait_for(lambda: manager.snapshot(run_id).steps_done >= 320, timeout=120)  # into the second depth
    assert manager.cancel(run_id)
    snap = manager.wait(run_id, timeout=60)
    assert snap.status == "cancelled"
    assert snap.message.startswith("cancelled during DEEM; labels kept for: DEEM (partial: cancelled while its "
                                   "candidates trained; the labels are the choice among those trained by then (layers "
                                   ), snap.message
    assert snap.message.endswith("), Majority vote"), snap.message
    entry = manager.store.load(run_id, with_data=False).extras["metrics"]["deem"]
    assert entry["status"] == "cancelled" and entry["message"].startswith("cancelled"), entry


def test_jobs_queue_in_order_and_say_behind_whom(manager):
    for name in "abc":
        GATES[name] = threading.Event()
    RAN.clear()
    a = manager.submit("gated", {"name": "a"})
    wait_for(lambda: manager.snapshot(a).status == "running")
    b = manager.submit("gated", {"name": "b"})
    c = manager.submit("gated", {"name": "c"})
    wait_for(lambda: manager.snapshot(c).queued_behind == b)
    snap_b = manager.snapshot(b)
    assert snap_b.status == "queued" and snap_b.queued_behind == a
    assert f"queued behind your run {a}" in status_line(snap_b, owner=True)
    assert manager.store.get(b)["status"] == "queued"
    assert f"queued behind your run {b}" in status_line(manager.snapshot(c), owner=True)
    assert manager.queues()["cpu"] == {"running": [a], "waiting": [b, c], "capacity": 1}
    # cancel a queued job: it never runs, c moves up
    assert manager.cancel(b)
    assert manager.wait(b, timeout=5).status == "cancelled"
    wait_for(lambda: manager.snapshot(c).queued_behind == a)
    GATES["a"].set()
    GATES["c"].set()
    assert manager.wait(c, timeout=10).status == "finished"
    assert RAN == ["a", "c"]
    assert manager.store.get(b)["message"] == "cancelled before it started"


def test_refresh_finds_the_job_by_run_id(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEM_RUNS_DIR", str(tmp_path / "shared_runs"))
    GATES["r"] = threading.Event()
    first = get_manager()
    run_id = first.submit("gated", {"name": "r"}, owner="session-1")
    # a new browser session (refresh) only has the run id from the URL
    again = get_manager()
    assert again is first
    wait_for(lambda: again.snapshot(run_id).status == "running")
    assert again.snapshot(run_id).live
    GATES["r"].set()
    assert again.wait(run_id, timeout=10).status == "finished"
    # after the job left memory (or a restart) the snapshot comes from the store
    restarted = JobManager(RunStore(tmp_path / "shared_runs"))
    snap = restarted.snapshot(run_id)
    assert snap.status == "finished" and not snap.live and len(snap.history) == 0
    assert restarted.snapshot("0123456789abcdef") is None
    first.shutdown()


def test_restart_marks_crashed_runs_failed(tmp_path):
    store = RunStore(tmp_path)
    lost = store.create("train", {}, status="running")
    import sqlite3

    with sqlite3.connect(tmp_path / "runs.sqlite") as con:
        con.execute("UPDATE runs SET pid = 999999999 WHERE run_id = ?", (lost,))
    manager = JobManager(store)
    assert manager.recovered == [lost]
    assert manager.snapshot(lost).status == "failed"


def test_queue_limit(tmp_path):
    manager = JobManager(RunStore(tmp_path), max_pending=1)
    GATES["q"] = threading.Event()
    manager.submit("gated", {"name": "q"})
    with pytest.raises(QueueFull, match="already queued or running"):
        manager.submit("gated", {"name": "q"})
    GATES["q"].set()
    manager.shutdown()


def test_a_job_that_cannot_start_leaves_no_run_queued_for_good(manager, monkeypatch):
    """A run written and then left without a job (its steps or estimate unreadable, no thread left) stayed "queued":
    neither cancelled nor deleted, counted against its owner's storage until a restart (attack round 16)."""
    data, _ = tiny(60)
    with pytest.raises((TypeError, ValueError)):
        manager.submit("train", {"methods": ["mv"], "estimate": {"seconds": "soon"}}, data=data, owner="alice")
    assert manager.store.list(owner="alice").empty  # refused before anything was written
    started = threading.Thread.start

    def no_thread_left(thread):
        if thread.name.startswith("deem-job-"):
            raise RuntimeError("can't start new thread")
        return started(thread)

    monkeypatch.setattr(threading.Thread, "start", no_thread_left)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        manager.submit("train", {"methods": ["mv"]}, data=data, owner="alice")
    listed = manager.store.list(owner="alice")
    assert list(listed["status"]) == ["failed"] and "it could not start" in listed["message"].iloc[0]
    assert manager.active_ids() == []
    manager.store.delete(listed["run_id"].iloc[0])  # it can go
    monkeypatch.setattr(threading.Thread, "start", started)
    for _ in range(manager.max_pending_per_owner):  # and it holds none of the owner's places
        manager.submit("train", {"methods": ["mv"]}, data=data, owner="alice")


def test_diagnostics_of_a_training_deleted_meanwhile_go_with_it(manager):
    """Deleting a training removed its finished diagnostics but not those still queued or running: they finished
    afterwards, listed as "Diagnostics of run <deleted>", their files counted (attack round 16)."""
    from deem_studio import owners  # noqa: PLC0415

    data, _ = tiny(80)
    key = owners.new_owner_key()
    workspace = owners.workspace_of(key)
    train = manager.submit("train", {"methods": ["deem"], "epochs": 1, "device": "cpu"}, data=data, owner=workspace)
    assert manager.wait(train, timeout=120).status == "finished"
    GATES["d"] = threading.Event()
    manager.submit("gated", {"name": "d"})  # holds the one CPU place: the diagnostics wait behind it
    diag = manager.submit("diagnostics", {"source_run": train, "method": "deem"}, owner=workspace, store_data=False)
    assert manager.snapshot(diag).status == "queued"
    owners.delete_run(manager.store, train, key)
    GATES["d"].set()
    manager.wait(diag, timeout=120)
    deadline = time.monotonic() + 10
    while manager.store.exists(diag) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not manager.store.exists(diag) and manager.store.list(owner=workspace).empty


def test_unknown_kind_and_device_info(manager):
    with pytest.raises(ValueError, match="unknown job kind"):
        manager.submit("nope", {})
    info = device_info()
    assert info["type"] in ("cpu", "cuda") and info["name"]


def test_diagnostics_job(manager, monkeypatch):
    from deem_studio import capacity  # noqa: PLC0415

    read = []  # the runs whose answers a job read: through the shared, counted copy (one per job was uncounted;
    shared = capacity.run_data  # attack round 24)
    monkeypatch.setattr(capacity, "run_data", lambda store, run_id: read.append(run_id) or shared(store, run_id))
    data, gold = tiny(80)
    train = manager.submit("train", {"methods": ["deem", "mv"], "epochs": 1, "device": "cpu"}, data=data, gold=gold)
    assert manager.wait(train, timeout=120).status == "finished"
    diag = manager.submit("diagnostics", {"source_run": train, "method": "deem", "subset_classes": [0],
                                          "subset_by": "gold"}, store_data=False)
    snap = manager.wait(diag, timeout=120)
    assert snap.status == "finished", snap.message
    shown = load_diagnostics_result(manager.store, diag)
    assert {"selected", "rest"} <= set(shown.importance.table["subset"])
    assert shown.quality.gold is not None  # gold labels came from the training run's folder
    assert shown.mutual_information.class_source == GOLD_SOURCE
    assert (manager.store.run_dir(diag) / "diagnostics" / "report.html").exists()
    assert manager.store.load(diag).data is None  # the annotations were not copied
    assert read == [train]
    # "Classes from" DEEM's labels groups the mutual information's tasks by them too (walkthrough 62: the tasks without
    # a gold label stayed left out, the gold classes kept), with or without classes for the importance
    for subset in ([0], None):
        by_model = manager.submit("diagnostics", {"source_run": train, "method": "deem", "subset_classes": subset,
                                                  "subset_by": "predicted"}, store_data=False)
        assert manager.wait(by_model, timeout=120).status == "finished"
        mi = load_diagnostics_result(manager.store, by_model).mutual_information
        assert mi.class_source.startswith(PREDICTED_SOURCE), subset
    # the stored gold labels are the owner's: a link's visitor without the data in the session (the server busy)
    # got every worker's accuracy and confusion against them (attack round 16); the owner still gets them
    owned = manager.submit("train", {"methods": ["deem"], "epochs": 1, "device": "cpu"}, data=data, gold=gold,
                           owner="alice")
    assert manager.wait(owned, timeout=120).status == "finished"
    for owner, with_gold in (("bob", False), ("alice", True)):
        diag = manager.submit("diagnostics", {"source_run": owned, "method": "deem"}, owner=owner, store_data=False)
        snap = manager.wait(diag, timeout=120)
        assert snap.status == "finished", snap.message
        shown = load_diagnostics_result(manager.store, diag)
        assert (shown.quality.gold is not None) is with_gold, owner
        table = shown.quality.table
        assert bool("accuracy" in table and table["accuracy"].notna().any()) is with_gold
    # a run without a DEEM model: a readable failure
    baselines_only = manager.submit("train", {"methods": ["mv"]}, data=data)
    manager.wait(baselines_only, timeout=60)
    bad = manager.submit("diagnostics", {"source_run": baselines_only, "method": "deem"}, store_data=False)
    snap = manager.wait(bad, timeout=30)
    assert snap.status == "failed" and "has no fitted deem model" in snap.message


def test_finished_diagnostics_are_held_by_no_job_and_counted_while_a_page_shows_them(manager):
    """Each finished diagnostics job kept its result object in memory until 256 more jobs had run (60 MB a run of 900
    workers, up to the mutual information's 512 MB bound), counted nowhere (attack round 58): the job keeps none, and
    the copy the pages read back is counted by the data ledger while it is held, and let go of after."""
    import gc  # noqa: PLC0415

    from deem_core.analysis.diagnostics import Diagnostics  # noqa: PLC0415
    from deem_studio import capacity  # noqa: PLC0415

    data, _ = tiny(80)
    train = manager.submit("train", {"methods": ["deem"], "epochs": 1, "device": "cpu"}, data=data)
    assert manager.wait(train, timeout=120).status == "finished"
    runs = [manager.submit("diagnostics", {"source_run": train, "method": "deem", "subset_classes": subset},
                           store_data=False) for subset in ([0], [1])]
    assert all(manager.wait(run, timeout=120).status == "finished" for run in runs)
    wait_for(lambda: not any(job.thread.is_alive() for job in manager._jobs.values()))  # noqa: SLF001
    gc.collect()
    assert not [obj for obj in gc.get_objects() if type(obj) is Diagnostics]
    before = capacity.ledger().held()
    shown = capacity.diagnostics_result(manager.store, runs[0], load_diagnostics_result)
    mi = shown.mutual_information
    assert capacity.ledger().held() - before >= mi.mi.nbytes + mi.n_common.nbytes + len(mi.workers) * 8
    del shown, mi
    gc.collect()
    assert wait_for(lambda: capacity.ledger().held() == before)


def test_diagnostics_report_their_phases_and_the_importance_tasks(tmp_path):
    """run_diagnostics tells its phases in order and the worker importance's tasks (the long part); the job
    counts those tasks as its progress, so its page can show the time left."""
    from deem_core.analysis.diagnostics import run_diagnostics  # noqa: PLC0415
    from deem_core.methods.deem import DEEM  # noqa: PLC0415
    from deem_studio.jobs import status_line  # noqa: PLC0415

    data, _ = tiny(300)
    calls = []
    run_diagnostics(DEEM(epochs=2).fit(data), data, progress=lambda phase, done, total: calls.append((phase, done, total)))
    phases = list(dict.fromkeys(phase for phase, _, _ in calls))
    assert phases == ["mutual information", "worker importance", "worker quality"]
    importance = [(done, total) for phase, done, total in calls if phase == "worker importance"]
    assert importance[-1] == (300, 300) and [d for d, _ in importance] == sorted(d for d, _ in importance)

    manager = JobManager(tmp_path / "runs")
    try:
        train = manager.submit("train", {"methods": ["deem"], "epochs": 2, "device": "cpu"}, data=data)
        assert manager.wait(train, timeout=120).status == "finished"
        run_id = manager.submit("diagnostics", {"source_run": train, "method": "deem"}, data=data)
        snap = manager.wait(run_id, timeout=120)
        assert snap.status == "finished", snap.message
        assert snap.steps_done >= 300  # the importance's tasks, counted as they were done
        assert "diagnostics of run" in status_line(snap)
    finally:
        manager.shutdown()


def test_a_sweep_on_a_task_sample_keeps_the_updates_per_epoch(tmp_path):
    """sample_tasks sweeps a random sample with the batch scaled by sample / tasks (as many updates per epoch as
    on all tasks); the stored recommendation says it was a sample."""
    from deem_studio.jobs import sample_batch_size  # noqa: PLC0415

    assert sample_batch_size(5_000, 20_000) == 256 and sample_batch_size(2_000, 60_000) == 34
    assert sample_batch_size(50, 1_000_000) == 32 and sample_batch_size(900, 1_000) == 922
    manager = JobManager(tmp_path / "runs")
    try:
        data, _ = tiny(400)
        run_id = manager.submit("sweep", {"lrs": [0.01, 0.1], "epochs": 2, "sample_tasks": 100, "device": "cpu"},
                                data=data)
        snap = manager.wait(run_id, timeout=120)
        assert snap.status == "finished", snap.message
        rec = manager.store.load(run_id, with_data=False).extras["recommendation"]
        assert rec["sample_tasks"] == 100 and rec["n_tasks"] == 400 and rec["batch_size"] == 256
        assert rec["partial"] is False and rec["epochs_done"] == 2
    finally:
        manager.shutdown()


def _slow_to_stop(ctx):
    """A job that, once asked to cancel, still needs its gate to finish (like scoring after a cancelled training)."""
    time.sleep(0.3)
    ctx.progress.start_phase("training", 10, "epoch")
    while not GATES[ctx.config["name"]].wait(0.01):
        pass
    return ("cancelled", "stopped") if ctx.cancel_event.is_set() else ("finished", "ok")


register_kind("slow_to_stop", _slow_to_stop, device=lambda config: "cpu", steps=lambda config, data: 10)


def test_a_cancelled_job_that_is_still_finishing_says_cancelling(manager):
    from deem_studio.jobs import status_line  # noqa: PLC0415

    GATES["slow"] = threading.Event()
    run_id = manager.submit("slow_to_stop", {"name": "slow"})
    # the job is "running" a moment before it reports its phase (CI, tenth session, saw "starting" here): wait for it
    wait_for(lambda: manager.snapshot(run_id).phase == "training")
    assert manager.snapshot(run_id).status == "running"
    assert status_line(manager.snapshot(run_id)).startswith("training")
    assert manager.cancel(run_id)
    snap = manager.snapshot(run_id)
    assert snap.status == "running" and snap.cancelling and snap.eta is None
    assert status_line(snap).startswith("cancelling: keeping what was trained so far ·")
    assert status_line(snap, short=True) == "cancelling: keeping what was trained so far"
    GATES["slow"].set()
    assert manager.wait(run_id, timeout=10).status == "cancelled"


def test_a_second_launch_of_the_same_job_is_found_as_its_active_twin(manager):
    data, _ = tiny()
    other, _ = tiny(100)
    config = {"methods": ["deem"], "epochs": 100_000, "device": "cpu", "estimate": {"seconds": 1.0}}
    run_id = manager.submit("train", config, data=data, owner="alice")
    wait_for(lambda: manager.snapshot(run_id).status == "running")
    same = {**config, "estimate": {"seconds": 2.0}}  # another estimate: still the same job
    assert manager.active_twin("train", same, "alice", data.fingerprint()) == run_id
    assert manager.active_twin("train", {**config, "epochs": 99_999}, "alice", data.fingerprint()) is None
    assert manager.active_twin("train", config, "bob", data.fingerprint()) is None  # another workspace
    assert manager.active_twin("train", config, "alice", other.fingerprint()) is None  # other data
    assert manager.active_twin("sweep", config, "alice", data.fingerprint()) is None
    manager.cancel(run_id)
    manager.wait(run_id, timeout=60)
    assert manager.active_twin("train", config, "alice", data.fingerprint()) is None  # ended: a new launch is fine


def test_the_same_launch_from_tabs_pressed_at_once_starts_one_job(manager, monkeypatch):
    """Attack round 36: tabs of one browser pressing Train at once each looked for a twin, found none, and launched
    two runs of the same settings 4 ms apart. The look and the submit are one step for the same owner and data."""
    data, _ = tiny()
    config = {"methods": ["deem"], "epochs": 100_000, "device": "cpu"}
    real = manager.store.create

    def slow_create(*args, **kwargs):  # (the run is written while the other tabs look: the race made wide)
        time.sleep(0.2)
        return real(*args, **kwargs)

    monkeypatch.setattr(manager.store, "create", slow_create)
    start, results, errors = threading.Barrier(6), [], []

    def press():
        start.wait()
        try:
            results.append(manager.submit_once("train", config, data.fingerprint(), data=data, owner="alice"))
        except Exception as exc:  # noqa: BLE001 - a refusal would be a second launch counted against the cap
            errors.append(exc)

    threads = [threading.Thread(target=press) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors and len(results) == 6, errors
    assert len({run_id for run_id, _ in results}) == 1 and sum(new for _, new in results) == 1, results
    # another owner, or other data, is not held back by it: a job of its own
    other, new = manager.submit_once("train", config, data.fingerprint(), data=data, owner="bob")
    assert new and other != results[0][0]
    for run_id in (results[0][0], other):
        manager.cancel(run_id)
        manager.wait(run_id, timeout=60)
    assert not manager._launching  # noqa: SLF001 - nothing kept once the launches ended


def test_the_same_diagnostics_pressed_twice_start_one_job(manager):
    """Attack round 37: a diagnostics run keeps no data, so no fingerprint matched it and two identical presses (from
    tabs, or by a visitor of the run's link) queued two. Its config names the run it reads: the same config is the
    same job."""
    data, _ = tiny(80)
    train = manager.submit("train", {"methods": ["mv"], "device": "cpu"}, data=data, owner="alice")
    assert manager.wait(train, timeout=120).status == "finished"
    GATES["twin"] = threading.Event()
    gate = manager.submit("gated", {"name": "twin"})  # holds the one CPU place: the diagnostics wait behind it
    try:
        config = {"source_run": train, "method": "mv"}
        fingerprint = manager.store.get(train)["fingerprint"]
        first, new = manager.submit_once("diagnostics", config, fingerprint, owner="alice", store_data=False)
        again, new_again = manager.submit_once("diagnostics", config, fingerprint, owner="alice", store_data=False)
        assert new and not new_again and again == first
        other, new_other = manager.submit_once("diagnostics", {**config, "subset_classes": [0]}, fingerprint,
                                               owner="alice", store_data=False)
        assert new_other and other != first  # (other settings: another job)
    finally:
        GATES["twin"].set()
    for run_id in (gate, first, other):
        manager.wait(run_id, timeout=120)


def test_choosing_the_depth_counts_every_rounds_epochs_in_its_phase(manager):
    """With n_layers="auto" the three depths train one after another on a CPU: the "training DEEM" phase counts
    their 3 x 20 epochs (a walkthrough saw "epoch 141 of 100 ... about 0.0 s left")."""
    data, _ = tiny(300)
    run_id = manager.submit("train", {"methods": ["deem", "irbm", "mv"], "epochs": 20, "n_layers": "auto",
                                      "device": "cpu"}, data=data)
    seen = []
    while True:
        snap = manager.snapshot(run_id)
        seen.append((snap.phase, snap.phase_done, snap.phase_total))
        if snap.status not in ("queued", "running"):
            break
        time.sleep(0.01)
    assert snap.status == "finished", snap.message
    assert snap.steps_done == snap.steps_total == 3 * 20 + 20 + 1  # DEEM's three depths, iRBM, majority vote
    assert all(done <= total for _, done, total in seen if total), [s for s in seen if s[1] > s[2]][:3]
    # (said in the phase: "epoch 120 of 300" read as a miscount while "the 6 candidates" trained; walkthrough 31)
    assert {total for phase, _, total in seen if phase == "training DEEM (3 depths in turn, both starts at once)"} \
        == {60}


def test_time_left_leans_on_the_launch_estimate_until_the_pace_has_been_measured_long_enough():
    """A walkthrough saw "about 50 s left" with 84 s to go: the pace of the first, cheapest depth's epochs."""
    from deem_studio.jobs import ProgressSnapshot

    now = time.time()

    def left(done: int) -> float:
        return ProgressSnapshot(run_id="r", kind="train", status="running", started_at=now - 1.0, estimate_s=90.0,
                                steps_done=done, steps_total=1000, phase_done=done, phase_total=1000,
                                rate_s=0.05).eta

    assert 85 < left(10) < 89.5  # 1% done: mostly the launch estimate (89 s left), not 0.05 x 990 = 49.5 s
    assert abs(left(990) - 0.5) < 1.0  # 99% done: the measured pace
    no_estimate = ProgressSnapshot(run_id="r", kind="train", status="running", started_at=now - 1.0,
                                   steps_done=10, steps_total=1000, phase_done=10, phase_total=1000, rate_s=0.05)
    assert no_estimate.eta == pytest.approx(49.5)
    # slower than the launch estimate, past a tenth of the job: the pace seen (the machine got busier; walkthrough 108:
    # "about 8.6 s left" at epoch 36 of 100 after 14 s, with 21 s to go); early on, still weighed against it
    def slow(done: int, elapsed: float) -> float:
        return ProgressSnapshot(run_id="r", kind="sweep", status="running", started_at=now - elapsed, estimate_s=20.0,
                                steps_done=done, steps_total=100, phase_done=done, phase_total=100, rate_s=0.39).eta

    assert slow(36, 14.0) == pytest.approx(64 * 0.39, abs=0.5)
    assert slow(5, 2.0) < 0.05 * 95 * 0.39 + 0.95 * 18.0 + 0.5


def test_time_left_of_a_phase_of_steps_of_one_cost_follows_its_pace_early_and_scales_what_follows():
    """Walkthrough 115: a training of 2 fixed layers estimated at 41 s took 28 s; halfway (epoch 403 of 800, 14 s in)
    it said "about 35 s left" with 14 s to go, and 4 s from its end "about 20 s left": the launch estimate weighed in
    long after the pace was known. A phase whose steps cost the same (one fixed depth, a sweep) trusts its pace after
    5% of its steps, and the estimates of the phases after it are scaled as it compares with its own."""
    from deem_studio.jobs import ProgressSnapshot

    now = time.time()

    def left(done: int, elapsed: float, uniform: bool = True, then_s: float = 0.0) -> float:
        return ProgressSnapshot(run_id="r", kind="train", status="running", started_at=now - elapsed, estimate_s=41.0,
                                steps_done=done, steps_total=800, phase_done=done, phase_total=800,
                                rate_s=elapsed / done, uniform=uniform, then_s=then_s, phase_plan_s=36.0,
                                phase_age=elapsed).eta

    assert left(403, 14.0) == pytest.approx(397 * 14.0 / 403, abs=0.1)  # (the blend said 20.5 here)
    assert left(403, 14.0, uniform=False) > 20  # a choice of depths (cheap depths first): still weighed
    assert left(795, 27.6) < 0.5
    # the baselines after it, estimated at 5 s, scaled as this phase ran against its 36 s estimate (14 s for 18.1)
    assert left(403, 14.0, then_s=5.0) == pytest.approx(397 * 14.0 / 403 + 5.0 * 14.0 / (36.0 * 403 / 800), abs=0.1)
    assert left(20, 1.0) > 30  # before 5% of the steps: the launch estimate still counts


def test_time_left_of_a_choice_of_depths_follows_each_depths_pace(monkeypatch):
    """Walkthrough 116: with "Choose the layers" the time left ran short as the deeper depths came (a 2-layer epoch
    costs 1.5-6 times a 0-layer one; 3,000 x 15 x 10, 100 epochs a depth: "about 10 s left" with 18 s to go). The
    launch estimate times an epoch of each depth; each depth's epochs are planned at theirs, the one under way is
    read at its measured pace and those after it scaled as it compares with its plan."""
    from deem_studio import jobs
    from deem_studio.jobs import Progress, depth_plan

    plan, rest = depth_plan({"depth_epoch_s": {"0": 0.04, "1": 0.12, "2": 0.2}}, "deem", 3, 300, 40.0)
    assert plan == [0.04] * 100 + [0.12] * 100 + [0.2] * 100 and rest == pytest.approx(4.0)
    assert depth_plan({"depth_epoch_s": {"0": 0.04, "1": 0.12}}, "deem", 3, 300, 40.0) == ([], 0.0)  # (one missing)
    assert depth_plan({"depth_epoch_s": {"0": 0.04, "1": 0.12, "2": 0.2}}, "irbm", 3, 300, 40.0) == ([], 0.0)
    clock = [1000.0]
    monkeypatch.setattr(jobs.time, "time", lambda: clock[0])
    progress = Progress("r", "train", steps_total=300)
    progress.update(status="running", estimate_s=40.0)
    progress.start_phase("training DEEM (3 depths in turn)", 300, plan=plan, own_s=rest)
    assert progress.snapshot().eta == pytest.approx(40.0)  # nothing done: the plan and the start's work
    clock[0] += 3.0  # the start's work
    real = [0.05] * 100 + [0.14] * 100 + [0.24] * 100  # each depth's epochs as they ran (1.17-1.25 times the plan)
    real[100] += 1.5  # the next depth's first epoch holds the scoring of the one before and its own start (read 56)

    def left_at(step: int) -> tuple[float, float]:
        while progress.phase_done < step:
            clock[0] += real[progress.phase_done]
            progress.add_rows([], steps=1)
        return progress.snapshot().eta, sum(real[step:])

    said = {}
    for step in (50, 99, 101, 103, 150, 199, 201, 250, 290):
        said[step], truth = left_at(step)
        # within a tenth of the truth once a depth's pace is known (a depth just begun: read at the last one's
        # scale), weighed against the launch estimate by the share done
        assert said[step] == pytest.approx(truth, rel=0.1), (step, said[step], truth)
    # slower than the launch estimate (16.5 s in, 23.5 s of it left): the depth under way's pace, the next one scaled
    assert said[150] == pytest.approx(50 * 0.14 + 100 * 0.2 * 0.14 / 0.12, rel=0.01)
    # the methods after the choice (8 s estimated) read at the pace it runs against its plan: on a machine that got
    # busier they took 34 s for 8, and the time left said 17 s with 60 s to go (walkthrough 118)
    from deem_studio.jobs import ProgressSnapshot  # noqa: PLC0415

    busy = ProgressSnapshot(run_id="r", kind="train", status="running", phase_done=150, phase_total=300,
                            plan_s=tuple(plan), stretch_pace_s=0.24, stretch_plan_s=0.12, stretch_counted=49,
                            weigh=True, then_s=8.0)
    assert busy.eta == pytest.approx(50 * 0.24 + 100 * 0.2 * 2 + 8.0 * 2)
    # a training restarted from an earlier epoch (a collapse) times the epochs taken again afresh
    clock[0] += 30.0  # (the discarded epochs' time)
    progress.restart_at(220)
    said_then, truth = left_at(250)
    assert said_then == pytest.approx(truth, rel=0.1)


def test_time_left_counts_the_step_under_way_and_drops_a_pace_the_step_has_outrun():
    """Walkthrough 19, baselines after DEEM with no launch estimate: "about 0.1 s left" stood for 22 s of GLAD (the
    pace of majority vote and Dawid-Skene), then "about 8.0 s left" for 15 s of MACE (a step's time never counted)."""
    from deem_studio.jobs import ProgressSnapshot, Progress, status_line

    now = time.time()

    def snap(age: float, estimate: float | None = None, done: int = 2) -> ProgressSnapshot:
        return ProgressSnapshot(run_id="r", kind="train", status="running", started_at=now - 30.0,
                                estimate_s=estimate, steps_done=done, steps_total=5, phase_done=done, phase_total=5,
                                unit="baseline", rate_s=4.0, step_age=age)

    assert snap(0.0).eta == pytest.approx(12.0)  # 3 methods left at 4 s each
    assert snap(3.0).eta == pytest.approx(9.0)  # 3 s into the next: it counts down
    assert snap(8.0).eta == pytest.approx(8.0)  # past its pace but within reason: the pace's remaining steps
    assert snap(9.5).eta is None  # far past its pace: no figure rather than a wrong one
    assert "left" not in status_line(snap(9.5))
    assert snap(9.5, estimate=50.0).eta == pytest.approx(20.0, abs=0.1)  # the launch estimate's time left, if any
    assert snap(60.0, done=5).eta == pytest.approx(0.0)  # nothing left of the phase: no step is under way
    # the baseline under way is counted ("baseline 3 of 5" while the third runs; it read 2), and nothing left is
    # "finishing", not "about 0.0 s left" (walkthrough 20); "baseline", not "method": "method 3 of 3" in a training
    # of four methods (walkthrough 34)
    assert "baseline 3 of 5" in status_line(snap(0.0)) and "about 12 s left" in status_line(snap(0.0, estimate=42.0))
    # without a launch estimate no figure from the pace of the methods done (walkthrough 42: "about 1.0 s left" with
    # 20 s of slower methods to come; walkthrough 126: "about 1.5 s left if the methods to come take as long as those
    # done" as GLAD began 2.5 minutes): the methods to come counted
    assert status_line(snap(0.0)).endswith("baseline 3 of 5 · 30 s elapsed · no time estimate (none was made before "
                                           "launch): 2 more methods after this one")
    assert status_line(snap(0.0, done=3)).endswith("(none was made before launch): 1 more method after this one")
    assert status_line(snap(0.0, done=4)).endswith("baseline 5 of 5 · 30 s elapsed · no time estimate (none was made "
                                                   "before launch): this is the last method")
    assert status_line(snap(0.0, estimate=50.0)).endswith(" s left")  # (with one, the time left as before)
    assert "baseline 5 of 5" in status_line(snap(60.0, done=5)) and status_line(snap(60.0, done=5)).endswith("finishing")
    # a launch estimate used up while methods remain is no "finishing" (it showed as GLAD began; walkthrough 21)
    spent = ProgressSnapshot(run_id="r", kind="train", status="running", started_at=now - 30.0, estimate_s=20.0,
                             steps_done=0, steps_total=5, phase_done=0, phase_total=5, unit="baseline")
    assert spent.eta == 0.0 and "finishing" not in status_line(spent) and "left" not in status_line(spent)
    # ... and no blank either: GLAD ran 11 s past "about 4.9 s left" with no word of time (walkthrough 37)
    assert status_line(spent).endswith(" · longer than the 20 s estimated"), status_line(spent)
    assert "estimated" not in status_line(snap(9.5))  # (no launch estimate: nothing to be longer than)
    # a pace's time left past the launch estimate says that too (walkthrough 67: a sweep estimated at 39 s counted
    # "about 0.6 s left" at 53 s without a word of it); within a tenth of it, nothing
    over = ProgressSnapshot(run_id="r", kind="sweep", status="running", started_at=now - 53.0, estimate_s=39.0,
                            steps_done=49, steps_total=50, phase_done=49, phase_total=50, unit="epoch", rate_s=1.0,
                            step_age=0.4)
    assert over.eta is not None and status_line(over).endswith(" left · longer than the 39 s estimated"), status_line(over)
    assert "estimated" not in status_line(over, short=True)
    near = ProgressSnapshot(run_id="r", kind="sweep", status="running", started_at=now - 41.0, estimate_s=39.0,
                            steps_done=49, steps_total=50, phase_done=49, phase_total=50, unit="epoch", rate_s=1.0,
                            step_age=0.4)
    assert "estimated" not in status_line(near)
    progress = Progress("r", "train")
    progress.update(status="running")
    progress.start_phase("comparing methods", 5, unit="baseline")
    time.sleep(0.05)
    assert progress.snapshot().step_age >= 0.05  # from the phase's start before its first step
    progress.add_rows([], steps=1)
    assert progress.snapshot().step_age < 0.05


def test_time_left_of_the_baselines_counts_each_method_by_its_own_estimate():
    """Walkthrough 105, every method picked: "baseline 4 of 10 · about 1.8 s left" at 14 s of a job that ended at
    42 s, GLAD's 28 s still to come: the pace of the methods done (majority vote's milliseconds) stood for the rest.
    The launch timed each method: the time left counts those still to run by theirs."""
    from deem_studio.jobs import Progress, ProgressSnapshot, status_line

    now = time.time()
    plan = (0.01, 0.5, 20.0, 5.0)  # majority vote, Dawid-Skene, GLAD, MACE as the probes timed them

    def snap(done: int, age: float, step_age: float, then: float = 0.0) -> ProgressSnapshot:
        return ProgressSnapshot(run_id="r", kind="train", status="running", started_at=now - 30.0, estimate_s=26.0,
                                steps_done=done, steps_total=4, phase_done=done, phase_total=4, unit="baseline",
                                rate_s=0.25 if done >= 2 else None, step_age=step_age, plan_s=plan, phase_age=age,
                                then_s=then)

    # two quick ones done (0.5 s): GLAD just begun, MACE to come, by their own estimates (the pace said 0.5 s)
    assert snap(2, 0.5, 0.0).eta == pytest.approx(25.0)
    assert snap(2, 10.5, 10.0).eta == pytest.approx(15.0)  # ten seconds into GLAD: it counts down
    assert "about 15 s left" in status_line(snap(2, 10.5, 10.0))
    # GLAD took twice its estimate: MACE is read at that scale (done steps of a second or more set it)
    assert snap(3, 41.0, 0.5).eta == pytest.approx(2 * 5.0 - 0.5, rel=0.02)
    assert snap(2, 0.5, 0.0, then=7.0).eta == pytest.approx(32.0)  # the phases after it count too
    # GLAD past its own estimate: said, and the time left of the methods after it said as theirs (an unchanged
    # "about 4.2 s left" stood for 18 s as if GLAD were done; walkthrough 117)
    late = snap(2, 40.5, 40.0)
    assert late.overdue_s == 20.0 and snap(2, 25.0, 24.5).overdue_s is None
    assert "baseline 3 of 4 · 30 s elapsed · this baseline past its estimate of 20 s, then about 5.0 s for what " \
           "follows it" in status_line(late)
    # the last one past its estimate: nothing said to follow it ("then about 6.2 s for the rest" stood there, the one
    # under way's own; walkthrough 118)
    last = snap(3, 58.0, 20.0)  # (GLAD took 1.85x its estimate: MACE read at that scale, 20 s past 9.3)
    assert last.overdue_s == 5.0 and "this baseline past its estimate of 5.0 s · longer than" in status_line(last)
    # the count goes on after a training between baselines (it began at "baseline 1" again)
    progress = Progress("r", "train")
    progress.update(status="running")
    progress.start_phase("running the other methods", 4, unit="baseline", plan=plan)
    progress.add_rows([], steps=1)
    progress.start_phase("training DEEM", 3, unit="epoch")
    progress.add_rows([], steps=3)
    progress.start_phase("running the other methods", 4, unit="baseline", plan=plan, done=1)
    later = progress.snapshot()
    assert (later.phase_done, later.plan_from) == (1, 1) and "baseline 2 of 4" in status_line(later)
    assert later.eta == pytest.approx(25.5, abs=0.1)
    progress.add_rows([], steps=1)
    time.sleep(0.02)
    progress.add_rows([], steps=1)
    assert progress.snapshot().rate_s is not None  # (the pace from the steps since the phase began: two of them)
    # a plan of another length than the phase is none (the pace as before)
    progress.start_phase("running the other methods", 3, unit="baseline", plan=plan)
    assert progress.snapshot().plan_s == ()


def test_a_train_job_plans_its_baselines_from_the_launch_estimate(manager, monkeypatch):
    """The job reads each baseline's estimated seconds from the launch estimate, in the order it runs them, and
    goes on counting after a training between them (walkthrough 105)."""
    from deem_studio import estimate as estimate_module
    from deem_studio.jobs import Progress

    data, _ = tiny(120)
    est = estimate_module.estimate_train(data, deem_methods=("deem",), baselines=("mv", "ds", "glad"), epochs=3,
                                         sample=120)
    each = est.to_dict()["baselines_each_s"]
    assert list(each) == ["mv", "ds", "glad"] and all(t >= 0 for t in each.values())  # (GLAD timed apart, in a child)
    assert sum(each.values()) == pytest.approx(est.baselines_s, rel=0.01, abs=1e-3)
    phases = []
    real = Progress.start_phase
    monkeypatch.setattr(Progress, "start_phase", lambda self, *a, **k: phases.append((a, k)) or real(self, *a, **k))
    run_id = manager.submit("train", {"methods": ["mv", "deem", "ds", "glad"], "epochs": 3, "device": "cpu",
                                      "estimate": est.to_dict()}, data=data)
    manager.wait(run_id, timeout=120)
    assert manager.snapshot(run_id).status == "finished"
    runs = [(k["plan"], k["done"]) for a, k in phases if a[0] == "running the other methods"]
    plan = [each["mv"], each["ds"], each["glad"]]
    assert runs == [(plan, 0), (plan, 1)], runs
    # what follows each phase: DEEM's training after majority vote (left out of the baselines' time left), and only
    # the two baselines still to run after the training (it counted majority vote, run before it, too; read 53)
    trained_s = est.to_dict()["seconds"] - est.to_dict()["baselines_s"]
    assert [k["then_s"] for _, k in phases] == pytest.approx([trained_s, each["ds"] + each["glad"], 0.0]), phases


def test_each_trained_method_counts_its_own_time_in_the_time_left(manager, monkeypatch):
    """Read 54: DEEM choosing its depth (three depths in turn) and iRBM (no layers) in one job were each given half
    of the training's estimate, so DEEM's phase said "about 7.9 s left" with iRBM's 2.2 s to come. The estimate
    times each trained method; the job counts the ones still to run by those."""
    from deem_studio import estimate as estimate_module
    from deem_studio.jobs import Progress

    data, _ = tiny(200)
    est = estimate_module.estimate_train(data, deem_methods=("deem", "irbm"), n_layers="auto", epochs=20, sample=200)
    each = est.to_dict()["trained_each_s"]
    assert set(each) == {"deem", "irbm"}
    assert sum(each.values()) == pytest.approx(est.total_s - est.baselines_s, rel=0.01)
    assert each["deem"] > 1.5 * each["irbm"], each  # three depths against none
    phases = []
    real = Progress.start_phase
    monkeypatch.setattr(Progress, "start_phase", lambda self, *a, **k: phases.append((a, k)) or real(self, *a, **k))
    run_id = manager.submit("train", {"methods": ["deem", "irbm"], "n_layers": "auto", "epochs": 20, "device": "cpu",
                                      "estimate": est.to_dict()}, data=data)
    manager.wait(run_id, timeout=300)
    assert manager.snapshot(run_id).status == "finished"
    trained = [k["then_s"] for a, k in phases if a[2] == "epoch"]  # DEEM's phase, then iRBM's
    assert trained and trained[0] == pytest.approx(each["irbm"]) and trained[-1] == 0.0, phases


def test_time_left_of_a_job_launched_without_an_estimate_says_it_covers_the_phase_only(manager):
    """Walkthrough 41, every method selected and the time probe given up: "training DEEM · epoch 56 of 60 · about
    0.8 s left" with some 50 s of other methods to go. Without a launch estimate the methods after the phase are
    not timed: the line says so."""
    from deem_studio.jobs import ProgressSnapshot, status_line

    line = status_line(ProgressSnapshot(run_id="r", kind="train", status="running", started_at=time.time() - 5.0,
                                        steps_done=56, steps_total=70, phase="training DEEM", phase_done=56,
                                        phase_total=60, unit="epoch", rate_s=0.2, then_untimed=9))
    assert line.endswith("epoch 56 of 60 · 5.0 s elapsed · about 0.8 s left in this phase, then 9 more methods with "
                         "no time estimate (none was made before launch)"), line
    data, _ = tiny(300)
    seen = set()
    for config in ({"methods": ["deem", "mv", "ds"], "epochs": 60, "device": "cpu"},
                   {"methods": ["deem", "mv", "ds"], "epochs": 60, "device": "cpu", "estimate": {"seconds": 9.0}}):
        run_id = manager.submit("train", config, data=data)
        untimed = set()
        while True:
            snap = manager.snapshot(run_id)
            if snap.phase == "training DEEM":
                untimed.add(snap.then_untimed)
            if snap.status not in ("queued", "running"):
                break
            time.sleep(0.005)
        assert snap.status == "finished", snap.message
        seen.add(tuple(sorted(untimed)))
    assert seen == {(2,), (0,)}  # majority vote and Dawid-Skene after DEEM, untimed; none with a launch estimate


def test_a_job_past_the_servers_time_limit_stops_keeping_what_it_trained(tmp_path):
    """One visitor's 5,000-epoch job held the shared server's CPU slot for hours (noticed in issue 14): a job now
    stops at DEEM_MAX_JOB_SECONDS as a cancel does, keeping what it made, and says why; the next job runs."""
    manager = JobManager(RunStore(tmp_path / "runs"), max_cpu_jobs=1, max_job_seconds=1.5)
    try:
        data, _ = tiny(300)
        run_id = manager.submit("train", {"methods": ["mv", "deem"], "epochs": 100_000, "n_layers": 1,
                                          "device": "cpu", "max_updates": None}, data=data)
        waiting = manager.submit("train", {"methods": ["mv"], "device": "cpu"}, data=data)
        wait_for(lambda: manager.snapshot(run_id).status == "running")
        assert manager.snapshot(waiting).status == "queued"  # the one CPU slot is held
        manager.wait(run_id, timeout=60)
        snap = manager.snapshot(run_id)
        assert snap.status == "cancelled" and snap.time_limited
        assert snap.message.startswith("stopped at this server's time limit of 1.5 s per job (DEEM_MAX_JOB_SECONDS); ")
        assert 1.4 < snap.elapsed < 60
        loaded = manager.store.load(run_id)
        assert set(loaded.results) == {"mv", "deem"}  # majority vote's labels and DEEM's after the epochs it ran
        assert 0 < loaded.history["epoch"].max() < 100_000
        assert loaded.record["message"] == snap.message
        assert manager.wait(waiting, timeout=60).status == "finished"  # the slot is free again
    finally:
        manager.shutdown()


def test_the_time_limit_is_read_from_the_environment_and_zero_means_none(tmp_path, monkeypatch):
    from deem_studio.jobs import DEFAULT_MAX_JOB_SECONDS, job_time_limit  # noqa: PLC0415

    monkeypatch.delenv("DEEM_MAX_JOB_SECONDS", raising=False)
    assert job_time_limit() == DEFAULT_MAX_JOB_SECONDS == 2 * 3600
    # 0 is "no limit"; a negative or infinite value keeps the default (they lifted it; attack round 11)
    for value, expected in [("90", 90.0), ("0", None), ("-5", 2 * 3600.0), ("inf", 2 * 3600.0),
                            ("nonsense", 2 * 3600.0)]:
        monkeypatch.setenv("DEEM_MAX_JOB_SECONDS", value)
        assert job_time_limit() == expected
    monkeypatch.setenv("DEEM_MAX_JOB_SECONDS", "30")
    assert JobManager(RunStore(tmp_path / "a")).max_job_seconds == 30.0
    assert JobManager(RunStore(tmp_path / "b"), max_job_seconds=0).max_job_seconds is None
    GATES["unlimited"] = threading.Event()
    manager = JobManager(RunStore(tmp_path / "c"), max_job_seconds=0)
    try:
        run_id = manager.submit("gated", {"name": "unlimited"})
        wait_for(lambda: manager.snapshot(run_id).status == "running")
        time.sleep(0.3)
        GATES["unlimited"].set()
        snap = manager.wait(run_id, timeout=10)
        assert snap.status == "finished" and not snap.time_limited
    finally:
        manager.shutdown()


def test_a_job_stopping_at_the_time_limit_says_so_while_it_finishes(tmp_path):
    from deem_studio.jobs import status_line  # noqa: PLC0415

    GATES["limited"] = threading.Event()
    manager = JobManager(RunStore(tmp_path / "runs"), max_job_seconds=0.3)
    try:
        run_id = manager.submit("slow_to_stop", {"name": "limited"})
        wait_for(lambda: manager.snapshot(run_id).cancelling)  # the limit asked it to stop; it is finishing
        snap = manager.snapshot(run_id)
        assert snap.status == "running" and snap.time_limited and snap.eta is None
        assert status_line(snap, short=True) == "stopping at the server's time limit: keeping what was trained so far"
        GATES["limited"].set()
        snap = manager.wait(run_id, timeout=10)
        assert snap.status == "cancelled"
        assert snap.message == "stopped at this server's time limit of 0.3 s per job (DEEM_MAX_JOB_SECONDS); stopped"
    finally:
        manager.shutdown()


def test_a_queued_job_says_how_long_before_it_starts_by_the_estimates_of_the_jobs_ahead(manager):
    """Attack round 43: a 6 s job read "queued: 1 job(s) ahead on the CPU" for the 2 hours of another visitor's
    training. The wait is the time left of the job running (its estimate less its time so far) and the estimates of
    the jobs queued ahead."""
    from deem_studio.jobs import status_line  # noqa: PLC0415

    for name in ("p", "q", "r"):
        GATES[name] = threading.Event()
    p = manager.submit("gated", {"name": "p", "estimate": {"seconds": 7200.0}}, owner="alice", client="10.0.0.1")
    wait_for(lambda: manager.snapshot(p).status == "running")
    q = manager.submit("gated", {"name": "q", "estimate": {"seconds": 600.0}}, owner="alice", client="10.0.0.1")
    r = manager.submit("gated", {"name": "r", "estimate": {"seconds": 6.0}}, owner="bob", client="10.0.0.2")
    # (the queue is fair between parties: bob's job goes before alice's second)
    wait_for(lambda: "2 jobs ahead" in manager.snapshot(q).message)
    assert "queued: 1 job ahead" in manager.snapshot(r).message
    waited = manager.snapshot(r).wait_s
    assert 7200 - 60 < waited <= 7200  # (the running job's time so far taken off)
    assert status_line(manager.snapshot(r)) == ("queued: 1 job ahead on the CPU · about 2 h 00 min before it "
                                                "starts, by the estimates of the jobs ahead")
    assert 7206 - 60 < manager.snapshot(q).wait_s <= 7206
    for name in ("p", "q", "r"):
        GATES[name].set()
    for run in (p, q, r):
        assert manager.wait(run, timeout=10).status == "finished"


def test_the_wait_plays_the_slots_forward_and_stops_at_the_time_limit(tmp_path):
    """The diff's read: with two slots, jobs of 7,200 s and 6 s running, the next waits for the first slot free (about
    6 s), not for their sum over the slots ("about 1 h"); a job's time is capped at the server's limit per job."""
    manager = JobManager(RunStore(tmp_path / "runs"), max_cpu_jobs=2, max_job_seconds=3600)
    try:
        for name in ("long", "short", "next", "last"):
            GATES[name] = threading.Event()
        long = manager.submit("gated", {"name": "long", "estimate": {"seconds": 7200.0}}, owner="a", client="10.0.0.1")
        short = manager.submit("gated", {"name": "short", "estimate": {"seconds": 6.0}}, owner="b", client="10.0.0.2")
        wait_for(lambda: manager.snapshot(long).status == manager.snapshot(short).status == "running")
        waiting = manager.submit("gated", {"name": "next", "estimate": {"seconds": 100.0}}, owner="c",
                                 client="10.0.0.3")
        last = manager.submit("gated", {"name": "last", "estimate": {"seconds": 5.0}}, owner="d", client="10.0.0.4")
        wait_for(lambda: manager.snapshot(last).status == "queued" and "ahead" in manager.snapshot(last).message)
        assert 0 < manager.snapshot(waiting).wait_s <= 6
        assert 100 - 5 < manager.snapshot(last).wait_s <= 106  # after "next" in the slot the short job freed
        manager.max_job_seconds = 60  # (the long job would stop at the limit: the cap applies to it)
        assert manager.snapshot(waiting).wait_s <= 6 and manager.snapshot(last).wait_s <= 60
    finally:
        for gate in GATES.values():
            gate.set()
        manager.shutdown()


def test_a_queued_job_never_names_another_workspaces_run(manager):
    # a run id opens the run: a visitor queued behind another's job was shown its id and opened their data with it
    # (attack round of the ninth session); a job of the same workspace is still named
    for name in ("x", "y", "z"):
        GATES[name] = threading.Event()
    x = manager.submit("gated", {"name": "x"}, owner="alice", client="10.0.0.1")
    wait_for(lambda: manager.snapshot(x).status == "running")
    y = manager.submit("gated", {"name": "y"}, owner="bob", client="10.0.0.2")
    z = manager.submit("gated", {"name": "z"}, owner="bob", client="10.0.0.2")
    wait_for(lambda: manager.snapshot(z).queued_behind == y)
    snap_y = manager.snapshot(y)
    assert snap_y.status == "queued" and snap_y.queued_behind is None
    for shown in (snap_y.message, manager.store.get(y)["message"]):
        assert x not in shown and shown == "queued: 1 job ahead on the CPU", shown
    assert f"queued behind your run {y} (2 jobs ahead" in status_line(manager.snapshot(z), owner=True)
    # nor its own workspace's run to a visitor of its link: the message, stored and shown to every visitor, names
    # none; the owner's sessions are told (attack round 55: the queued run's link named the run ahead, which opened)
    assert y not in manager.snapshot(z).message and y not in manager.store.get(z)["message"]
    assert y not in status_line(manager.snapshot(z)) and y not in status_line(manager.snapshot(z), short=True)
    # no time before it starts where a job ahead has no estimate

    assert manager.snapshot(y).wait_s is None and status_line(manager.snapshot(y)) == snap_y.message
    for name in ("x", "y", "z"):
        GATES[name].set()
    for run in (x, y, z):
        assert manager.wait(run, timeout=10).status == "finished"


def test_the_queue_takes_turns_between_visitors_and_keeps_each_ones_order(manager):
    """Attack round: one visitor's long jobs made a later visitor wait behind all of them (strict first come, first
    served). The next job now comes from the party with the fewest running, then the one served longest ago."""
    RAN.clear()
    names = ["a1", "a2", "a3", "b1", "c1"]
    for name in names:
        GATES[name] = threading.Event()
    ids = {}
    for name in names:
        party = name[0]
        ids[name] = manager.submit("gated", {"name": name}, owner=f"owner-{party}", client=f"10.0.0.{ord(party)}")
        wait_for(lambda: manager.snapshot(ids[name]).status in ("queued", "running"))
        if name == "a1":
            wait_for(lambda: RAN == ["a1"])
    time.sleep(0.5)  # every job waits in the queue
    assert [manager.snapshot(ids[n]).status for n in names] == ["running", "queued", "queued", "queued", "queued"]
    # the queue says who each waits behind, in the order they will run: b1 and c1 before a's second and third
    waiting = manager.queues()["cpu"]["waiting"]
    assert waiting == [ids["b1"], ids["c1"], ids["a2"], ids["a3"]]
    for name in ["a1", "b1", "c1", "a2"]:
        GATES[name].set()
        assert manager.wait(ids[name], timeout=10).status == "finished"
        time.sleep(0.3)
    GATES["a3"].set()
    assert manager.wait(ids["a3"], timeout=10).status == "finished"
    assert RAN == ["a1", "b1", "c1", "a2", "a3"]


def test_a_workspace_keeps_a_bounded_number_and_size_of_runs_and_the_disk_some_room(manager, monkeypatch):
    # every run stores its own copy of its data and nothing bounded the stored runs: one browser clicking Train on an
    # 8 MB upload stored 77 MB in 7 s (attack round, ninth session)
    from deem_studio.jobs import QueueFull  # noqa: PLC0415

    data, _ = tiny(60)
    monkeypatch.setenv("DEEM_MAX_RUNS_PER_WORKSPACE", "2")
    first = [manager.submit("train", {"methods": ["mv"]}, data=data, owner="alice") for _ in range(2)]
    for run in first:
        assert manager.wait(run, timeout=30).status == "finished"
    with pytest.raises(QueueFull, match=r"your workspace keeps 2 runs \(at most 2\); delete runs"):
        manager.submit("train", {"methods": ["mv"]}, data=data, owner="alice")
    other = manager.submit("train", {"methods": ["mv"]}, data=data, owner="bob")  # another workspace is not held
    assert manager.wait(other, timeout=30).status == "finished"
    runs, used = manager.store.usage("alice")
    assert runs == 2 and used > 0
    monkeypatch.setenv("DEEM_MAX_RUNS_PER_WORKSPACE", "0")
    monkeypatch.setenv("DEEM_MAX_WORKSPACE_BYTES", str(used))
    with pytest.raises(QueueFull, match=r"your workspace's runs take .* \(at most .*\); delete runs"):
        manager.submit("train", {"methods": ["mv"]}, data=data, owner="alice")
    manager.store.delete(first[0])  # deleting a run makes room again
    assert manager.wait(manager.submit("train", {"methods": ["mv"]}, data=data, owner="alice"),
                        timeout=30).status == "finished"
    monkeypatch.setenv("DEEM_MIN_FREE_DISK", str(10 ** 18))  # more than any disk has free
    with pytest.raises(QueueFull, match=r"the server's disk for runs is nearly full"):
        manager.submit("train", {"methods": ["mv"]}, data=data, owner="carol")


def test_submits_at_once_do_not_pass_the_workspaces_run_cap(manager, monkeypatch):
    # the storage check ran outside the lock before the run existed: 8 submits at once stored 8 runs against a cap
    # of 2 (attack round, ninth session)
    from deem_studio.jobs import QueueFull  # noqa: PLC0415

    monkeypatch.setenv("DEEM_MAX_RUNS_PER_WORKSPACE", "2")
    monkeypatch.setattr(manager, "max_pending_per_owner", 100)
    data, _ = tiny(60)
    start = threading.Barrier(8)
    accepted, refused = [], []

    def submit():
        start.wait()
        try:
            accepted.append(manager.submit("train", {"methods": ["mv"]}, data=data, owner="dora"))
        except QueueFull:
            refused.append(1)

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(accepted) <= 2 and len(accepted) + len(refused) == 8, (accepted, refused)
    for run in accepted:
        manager.wait(run, timeout=30)
    assert manager.store.usage("dora")[0] == len(accepted)


def test_submits_at_once_do_not_pass_the_workspaces_or_the_addresss_byte_cap(manager, monkeypatch):
    """The runs being written were counted as runs but not as bytes: submits at once each found the workspace's (and
    the address's) bytes below the cap while the others' files were being written, and all were stored (attack round
    58). Their expected bytes are reserved with their places."""
    from deem_studio.jobs import expected_output_bytes  # noqa: PLC0415

    data, _ = tiny(60)
    one = manager.store.expected_bytes(data) + expected_output_bytes("train", {"methods": ["mv"]}, data)
    real_create = manager.store.create

    def slow_create(*args, **kwargs):  # the files take a while to write, as large data's do
        time.sleep(0.3)
        return real_create(*args, **kwargs)

    monkeypatch.setattr(manager.store, "create", slow_create)
    monkeypatch.setattr(manager, "max_pending_per_owner", 100)
    monkeypatch.setattr(manager, "max_pending_per_client", 100)
    for variable, whose in (("DEEM_MAX_WORKSPACE_BYTES", {"owner": "erin"}),
                            ("DEEM_MAX_CLIENT_BYTES", {"client": "10.9.9.9"})):
        monkeypatch.setenv(variable, str(int(2.5 * one)))
        start = threading.Barrier(6)
        accepted, refused = [], []

        def submit(n):
            start.wait()
            try:  # (a workspace each for the address's cap)
                accepted.append(manager.submit("train", {"methods": ["mv"]}, data=data,
                                               **{"owner": f"w{n}", **whose}))
            except QueueFull:
                refused.append(1)

        threads = [threading.Thread(target=submit, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert len(accepted) == 2 and len(refused) == 4, (variable, accepted, refused)
        for run in accepted:
            manager.wait(run, timeout=30)
        assert manager.store.usage(**whose)[0] == 2
        assert not manager._reserved_bytes and not manager._reserved_client_bytes  # noqa: SLF001 - all given back
        monkeypatch.delenv(variable)


def test_the_results_a_training_will_store_are_counted_before_it_is_queued_and_held_while_it_runs(manager,
                                                                                                    monkeypatch):
    """A burst of trainings of four methods on a 0.74 MB upload of 1,000 classes passed every cap and the disk's floor
    (nothing was stored yet), then wrote 437 MB each: the disk filled, one run failed with "No space left on device"
    and the store was left below its floor for everyone (attack round 59). The results a training will store (a table
    of tasks x classes a method) are counted before it is queued: a run that would pass a cap is refused, and those
    of the runs queued or running are held against the workspace's cap and the disk's floor until they end."""
    import collections  # noqa: PLC0415
    import shutil  # noqa: PLC0415

    from deem_studio.jobs import expected_output_bytes  # noqa: PLC0415

    wide = AnnotationSet.from_long(pd.DataFrame({"task": [t for t in range(2000) for _ in range(3)],
                                                 "worker": [w for _ in range(2000) for w in range(3)],
                                                 "label": [(t * 7 + w) % 1000 for t in range(2000) for w in range(3)]}))
    methods = {"methods": ["mv", "ds", "ds_shared", "cwds"]}
    output = expected_output_bytes("train", methods, wide)
    assert output >= 4 * 2000 * 1000 * 8  # (a probability per task and class, a table per method)
    monkeypatch.setenv("DEEM_MAX_WORKSPACE_BYTES", str(output // 2))  # (nothing stored yet: it passed)
    with pytest.raises(QueueFull, match=r"this run would store about 6\d\.\d MiB .* your workspace's runs take "
                                        r"0 bytes of at most"):
        manager.submit("train", methods, data=wide, owner="fay")
    assert manager.store.usage("fay")[0] == 0
    # a trained method's model file and curves (16 seeds of 200 workers x 10 classes wrote a 258 MB model counted as
    # 8 KB; 5,000 epochs of 16 seeds 9 MB counted as 900 bytes; attack round 60)
    crowd = AnnotationSet.from_long(pd.DataFrame({"task": [t for t in range(100) for _ in range(200)],
                                                  "worker": [f"w{w}" for _ in range(100) for w in range(200)],
                                                  "label": [(t + w) % 10 for t in range(100) for w in range(200)]}))
    seeds = {"methods": ["deem", "mv"], "n_seeds": 16, "n_layers": 1, "epochs": 2}
    assert expected_output_bytes("train", seeds, crowd) >= 16 * 4 * (200 * 10) ** 2
    monkeypatch.setenv("DEEM_MAX_WORKSPACE_BYTES", "50M")
    with pytest.raises(QueueFull, match=r"this run would store about 2\d\d\.\d MiB"):
        manager.submit("train", seeds, data=crowd, owner="fay")
    small = AnnotationSet.from_long(pd.DataFrame({"task": [t for t in range(50) for _ in range(5)],
                                                  "worker": [f"w{w}" for _ in range(50) for w in range(5)],
                                                  "label": [(t * w) % 2 for t in range(50) for w in range(5)]}))
    long = {"methods": ["deem"], "n_seeds": 16, "n_layers": "auto", "epochs": 5000, "max_updates": None}
    assert expected_output_bytes("train", long, small) >= 5000 * 16 * 3 * 2 * 20
    monkeypatch.delenv("DEEM_MAX_WORKSPACE_BYTES")
    # a diagnostics run's files (9.2 MB each at 400 workers, counted as none: four at once passed the cap; attack
    # round 60), from the index row of the training it diagnoses
    diagnosed = {"n_workers": 400, "n_classes": 10, "n_tasks": 2000, "config": {"n_layers": "auto"}}
    assert 9.7e6 < expected_output_bytes("diagnostics", {}, None, diagnosed) < 200e6
    data, _ = tiny(60)
    trained = manager.submit("train", {"methods": ["deem"], "epochs": 1, "device": "cpu"}, data=data, owner="ida")
    assert manager.wait(trained, timeout=60).status == "finished"
    used = manager.store.usage("ida")[1]
    diagnosis = expected_output_bytes("diagnostics", {}, None, manager.store.get(trained))
    assert diagnosis > 0
    monkeypatch.setenv("DEEM_MAX_WORKSPACE_BYTES", str(used + diagnosis // 2))
    with pytest.raises(QueueFull, match=r"this run would store about"):
        manager.submit("diagnostics", {"source_run": trained, "method": "deem"}, owner="ida", store_data=False)
    monkeypatch.setenv("DEEM_MAX_WORKSPACE_BYTES", str(used + 2 * diagnosis))
    assert manager.wait(manager.submit("diagnostics", {"source_run": trained, "method": "deem"}, owner="ida",
                                       store_data=False), timeout=120).status == "finished"
    monkeypatch.delenv("DEEM_MAX_WORKSPACE_BYTES")
    # a sweep's curves: a row per rate, seed and epoch (the Sweep page's bounds, 24 rates x 16 seeds x 2,000 epochs,
    # wrote 18 MB counted as none)
    grid = {"lrs": [0.001 * 1.3 ** i for i in range(24)], "n_seeds": 16, "epochs": 2000, "n_layers": 1}
    assert 24 * 16 * 2000 * 20 < expected_output_bytes("sweep", grid, small) < 40e6
    monkeypatch.setenv("DEEM_MAX_WORKSPACE_BYTES", str(manager.store.usage("jo")[1] + manager.store.expected_bytes(small)
                                                       + (10 << 20)))
    with pytest.raises(QueueFull, match=r"this run would store about 1\d\.\d MiB"):
        manager.submit("sweep", grid, data=small, owner="jo")
    monkeypatch.delenv("DEEM_MAX_WORKSPACE_BYTES")
    # the disk's floor: the results of the runs under way are promised
    data, _ = tiny(60)
    two = {"methods": ["mv", "ds"]}
    output = expected_output_bytes("train", two, data)
    size = manager.store.expected_bytes(data) + output
    floor = 1 << 30
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 * floor, 8 * floor, floor + size + output // 2))
    monkeypatch.setenv("DEEM_MIN_FREE_DISK", str(floor))
    GATES["floor"] = threading.Event()
    gate = manager.submit("gated", {"name": "floor"})  # the trainings wait behind it, their results not yet written
    first = manager.submit("train", two, data=data, owner="gus")
    with pytest.raises(QueueFull, match=r"promised to the runs under way"):
        manager.submit("train", two, data=data, owner="hal")
    GATES["floor"].set()
    assert manager.wait(gate, timeout=30).status == "finished"
    assert manager.wait(first, timeout=60).status == "finished"  # ended: nothing held any more
    assert manager.wait(manager.submit("train", two, data=data, owner="hal"), timeout=60).status == "finished"


def test_one_address_keeps_a_bounded_number_of_runs_whatever_its_workspaces(manager, monkeypatch):
    # a workspace costs nothing: 40 workspaces from one address stored 40 times the per-workspace cap (attack round,
    # ninth session); the index keeps a hash of the address, not the address
    import sqlite3  # noqa: PLC0415

    from deem_studio.jobs import QueueFull  # noqa: PLC0415

    monkeypatch.setenv("DEEM_MAX_RUNS_PER_CLIENT", "3")
    data, _ = tiny(60)
    runs = [manager.submit("train", {"methods": ["mv"]}, data=data, owner=f"ws{i}", client="203.0.113.9")
            for i in range(3)]
    for run in runs:
        assert manager.wait(run, timeout=30).status == "finished"
    with pytest.raises(QueueFull, match=r"the runs launched from your network address take 3 runs and .* "
                                        r"\(at most 3 runs and 50 GiB\)"):
        manager.submit("train", {"methods": ["mv"]}, data=data, owner="ws-new", client="203.0.113.9")
    other = manager.submit("train", {"methods": ["mv"]}, data=data, owner="ws-new", client="198.51.100.7")
    assert manager.wait(other, timeout=30).status == "finished"
    with sqlite3.connect(manager.store.db_path) as con:
        kept = [row[0] for row in con.execute("SELECT client FROM runs")]
    assert len(set(kept)) == 2 and not any("203.0.113.9" in str(k) for k in kept)
    manager.store.delete(runs[0])  # deleting one makes room again
    assert manager.wait(manager.submit("train", {"methods": ["mv"]}, data=data, owner="ws-new",
                                       client="203.0.113.9"), timeout=30).status == "finished"


@pytest.mark.parametrize("kind, setting, value, message", [
    ("train", "n_layers", 6.99, "n_layers must be a whole number, got '6.99'"),  # (trained 6 layers)
    ("train", "n_layers", -0.5, "n_layers must be a whole number, got '-0.5'"),  # (trained 0)
    ("train", "n_layers", "abc", "n_layers must be a whole number, got 'abc'"),  # (failed in the queue with int()'s)
    ("train", "n_layers", 7, "n_layers must be a whole number from 0 to 6, got 7"),  # (a failed run, stored)
    ("train", "epochs", 10**12, "epochs must be a whole number from 1 to 100,000"),  # (trained until the time limit)
    ("train", "epochs", 1e12, "epochs must be a whole number, got '1000000000000.0'"),
    ("train", "sampler_steps", 10**9, "sampler_steps must be a whole number from 0 to 1,000"),  # (dropped silently)
    ("sweep", "epochs", 10**12, "epochs must be a whole number from 1 to 100,000"),
    ("sweep", "n_layers", 7.9, "n_layers must be a whole number, got '7.9'"),
    ("train", "n_seeds", 100_000, "n_seeds must be a whole number from 1 to 16"),  # (attack round 42)
])
def test_a_crafted_setting_is_refused_before_anything_is_stored(manager, kind, setting, value, message):
    """Attack round 13: configurations sent to submit() directly (the pages check their boxes) were coerced by int(),
    dropped, or stored and failed in the queue; now refused at once, nothing queued or stored."""
    data, _ = tiny()
    config = {"methods": ["deem"], "epochs": 1, setting: value} if kind == "train" else {"epochs": 1, setting: value}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        manager.submit(kind, config, data=data)
    assert manager.store.list().empty and not manager.active_ids()


def test_a_train_runs_sampler_steps_reach_the_model(manager, monkeypatch):
    from deem_core.methods import registry  # noqa: PLC0415

    seen = {}
    original = registry.fit_method

    def spy(method, data, gold=None, **options):
        seen.update(options)
        return original(method, data, gold=gold, **options)

    monkeypatch.setattr(registry, "fit_method", spy)
    data, _ = tiny()
    run_id = manager.submit("train", {"methods": ["deem"], "epochs": 1, "sampler_steps": 2, "n_layers": 0}, data=data)
    assert manager.wait(run_id, timeout=120).status == "finished"
    assert seen["sampler_steps"] == 2  # (not passed: the default 5 trained)


def test_a_start_kept_on_gold_labels_is_not_said_to_be_confirmed_by_them():
    """Walkthrough 49: "the gold labels confirmed the Dawid-Skene start (the other start was better on 12 and worse
    on 5 gold tasks, p = 0.0717)" read as the gold favouring it; the start was kept because 12:5 is not significant."""
    from types import SimpleNamespace  # noqa: PLC0415

    from deem_studio.jobs import start_explanation  # noqa: PLC0415

    evidence = {"unsupervised_choice": "ds", "challenger_better": 12, "challenger_worse": 5, "p_value": 0.0717}
    kept = start_explanation(SimpleNamespace(init_="ds", init_evidence_=evidence, selection_summary_={},
                                             fallback_=None), "auto")
    assert ("the Dawid-Skene start was kept on the gold labels (the other start was better on 12 and worse on 5 gold "
            "tasks, p = 0.0717: a switch needs p < 0.05)") in kept and "confirmed" not in kept
    switched = start_explanation(SimpleNamespace(init_="mv", init_evidence_={**evidence, "p_value": 0.01},
                                                 selection_summary_={}, fallback_=None), "auto")
    assert "the gold labels overruled the Dawid-Skene start (the other start was better on 12" in switched
    # the start's Dawid-Skene named as the methods list it (walkthrough 81: the plain one agreed with DEEM on 0.828)
    shared = start_explanation(SimpleNamespace(init_="ds", ds_prior=1.0, selection_summary_={}, fallback_=None), "ds")
    assert shared.startswith("started from Dawid-Skene with the shared prior (1 pseudo-answers per class; among the "
                             "methods “Dawid-Skene (shared prior)”, not the plain “Dawid-Skene”)"), shared


def test_what_the_fit_noted_is_said_with_the_run(manager):
    # with gold labels the ticked "choose the layers" became 1 layer without a word on the pages (the CLI said why;
    # walkthrough 56); the data's own warnings stay on the Data page
    data, gold = tiny(80)
    run_id = manager.submit("train", {"methods": ["deem"], "epochs": 1, "n_layers": "auto", "supervised_weight": 1.0,
                                      "device": "cpu"}, data=data, gold=gold)
    snap = manager.wait(run_id, timeout=120)
    assert snap.status == "finished", snap.message
    said = [m for m in snap.messages if "the layers are not chosen from held-out answers when" in m]
    assert said == ["DEEM: the layers are not chosen from held-out answers when gold labels train the model (a "
                    "gold-label weight above 0): 1 layer is used"], snap.messages
    assert not any(w in m for w in data.warnings for m in snap.messages)


def test_diagnostics_of_a_fixed_start_look_for_copying_workers(manager):
    # walkthrough 56: a run with its start and layers fixed looked for no cluster, and its quality table called four
    # copiers "ok" and ranked them the best workers
    from test_diagnostics import _copying_pair

    from deem_core.data.annotations import AnnotationSet

    data = AnnotationSet.from_long(_copying_pair())
    train = manager.submit("train", {"methods": ["deem"], "epochs": 2, "n_layers": 1, "init": "ds", "device": "cpu"},
                           data=data)
    assert manager.wait(train, timeout=120).status == "finished"
    diag = manager.submit("diagnostics", {"source_run": train, "method": "deem"}, store_data=False)
    snap = manager.wait(diag, timeout=120)
    assert snap.status == "finished", snap.message
    table = load_diagnostics_result(manager.store, diag).quality.table.set_index("worker")
    assert table.loc[["w4", "w5"], "flag"].tolist() == ["dependent", "dependent"]


def test_a_party_never_served_waits_its_turn_behind_one_served_before_it_came(manager):
    """Attack round 58: a party never served sorted before every party ever served (its last start read as the start
    of time), so fresh browser profiles of the server's own machine (each workspace its own party) went first, again
    and again: a visitor's 3 s job waited 58 s behind two. A party never served counts from its job's arrival."""
    for name in ("v1", "x", "v2", "a2", "a3"):
        GATES[name] = threading.Event()
    v1 = manager.submit("gated", {"name": "v1"}, owner="v", client="192.0.2.2")
    wait_for(lambda: manager.snapshot(v1).status == "running")
    GATES["v1"].set()
    assert manager.wait(v1, timeout=10).status == "finished"
    x = manager.submit("gated", {"name": "x"}, owner="x", client="192.0.2.9")
    wait_for(lambda: manager.snapshot(x).status == "running")
    v2 = manager.submit("gated", {"name": "v2"}, owner="v", client="192.0.2.2")
    time.sleep(0.05)
    a2 = manager.submit("gated", {"name": "a2"}, owner="fresh-profile-2")
    a3 = manager.submit("gated", {"name": "a3"}, owner="fresh-profile-3")
    wait_for(lambda: all(manager.snapshot(r).status == "queued" for r in (v2, a2, a3)))
    GATES["x"].set()
    wait_for(lambda: any(manager.snapshot(r).status == "running" for r in (v2, a2, a3)))
    assert [manager.snapshot(r).status for r in (v2, a2, a3)] == ["running", "queued", "queued"]
    GATES["v2"].set()
    wait_for(lambda: manager.snapshot(a2).status == "running")  # (then the fresh ones, first come first served)
    assert manager.snapshot(a3).status == "queued"


def test_a_job_whose_model_would_pass_the_servers_bound_for_one_job_is_refused_before_it_is_queued(manager,
                                                                                                  monkeypatch):
    """Attack round 61: a 164 KB upload (300 tasks x 180 workers x 5 classes) swept with 24 rates x 8 seeds was
    estimated at 11.1 GiB of the 11.8 the engine allows (half the machine), was queued, and took the server past 5 GB
    in a minute and on; with the server's other budgets half the machine for one job passed the machine. A training
    or sweep on the CPU is checked against DEEM_MAX_JOB_MEMORY (40% of the machine by default) before it is queued."""
    from deem_core.data.annotations import DataError  # noqa: PLC0415
    from deem_core.model.sizes import _memory_bytes  # noqa: PLC0415
    from deem_studio.jobs import JOB_MEMORY_SHARE, job_memory_bound  # noqa: PLC0415

    assert job_memory_bound() == int(JOB_MEMORY_SHARE * _memory_bytes())
    wide = AnnotationSet.from_long(pd.DataFrame({"task": [t for t in range(60) for _ in range(40)],
                                                 "worker": [f"w{w}" for _ in range(60) for w in range(40)],
                                                 "label": [(t + w) % 5 for t in range(60) for w in range(40)]}))
    monkeypatch.setenv("DEEM_MAX_JOB_MEMORY", "50M")
    grid = {"lrs": [0.001 * 1.3 ** i for i in range(24)], "n_seeds": 8, "epochs": 2, "n_layers": 1, "device": "cpu"}
    # the bound in the unit it needs and the advice in the pages' words ("0.0 GiB", "--layers 0", "a GPU" and a batch
    # the Train page has no field for; walkthrough 130)
    # (the model's need beside its curves': the bound less theirs is what the model may take; attack round 70)
    with pytest.raises(DataError, match=r"training would need about .* but \d+ MiB is available \(beside its curves' "
                                        r"[\d.]+ MiB; this server lets one job take 50 MiB: "
                                        r"DEEM_MAX_JOB_MEMORY\); try fewer layers \(0: the iRBM alone\), or fewer "
                                        r"learning rates or seeds, or a sample of the tasks \(“Sweep a task sample”\)$"):
        manager.submit("sweep", grid, data=wide, owner="kim")
    with pytest.raises(DataError, match=r"DEEM_MAX_JOB_MEMORY\); try Layers \(DEEM\) 0 \(the iRBM alone, without the "
                                        r"worker-pair weights\), or one start in “Start from” \(the two starts train "
                                        r"together\), or fewer seeds, or fewer tasks or classes in the file \(no batch "
                                        r"from 1,024 down to 16 fits\)$") as refused:
        manager.submit("train", {"methods": ["deem", "mv"], "n_seeds": 16, "n_layers": 2, "device": "cpu"}, data=wide,
                       owner="kim")
    assert "--layers" not in str(refused.value) and "GPU" not in str(refused.value) and "0.0 GiB" not in str(
        refused.value)
    assert manager.store.usage("kim") == (0, 0)  # (nothing stored)
    # within the bound: queued as before (the majority vote alone trains no model)
    assert manager.wait(manager.submit("train", {"methods": ["mv"]}, data=wide, owner="kim"), timeout=60).status \
        == "finished"
    monkeypatch.setenv("DEEM_MAX_JOB_MEMORY", "4G")
    assert manager.wait(manager.submit("sweep", {**grid, "n_seeds": 1, "lrs": [0.01]}, data=wide, owner="kim"),
                        timeout=120).status == "finished"


def test_classic_methods_whose_labels_follow_a_found_cluster_say_so(manager):
    """Walkthrough 128: One-coin Dawid-Skene and MACE gave a copied pair's labels (72.40%, majority vote 90.47) beside
    a group the Train page named, without a word. Three copies of a weak classifier and three fair ones: Dawid-Skene
    follows the copies (57%), the cluster-weighted one counts them once (92%); the metrics say which follows."""
    from conftest import copies_of_a_weak_classifier
    from deem_core.analysis.selection import followed_text

    frame = copies_of_a_weak_classifier()
    run_id = manager.submit("train", {"methods": ["deem", "ds", "cwds"], "device": "cpu"},
                            data=AnnotationSet.from_long(frame))
    assert manager.wait(run_id, timeout=300).status == "finished"
    metrics = manager.store.load(run_id).extras["metrics"]
    followed = metrics["ds"]["followed"]
    assert [group["workers"] for group in followed] == [["weak", "weak_copy1", "weak_copy2"]], followed
    assert followed[0]["agreement"] > 0.95 and followed[0]["others"] < 0.6
    assert "followed" not in metrics["cwds"] and "followed" not in metrics["deem"]
    said = followed_text(metrics["ds"])
    assert said.startswith("the labels follow a dependence cluster: weak, weak_copy1, weak_copy2 agree with them"), said


def test_diagnostics_are_checked_against_this_server_s_bound_for_one_job(manager, monkeypatch):
    """A 27 KB upload (400 tasks of 5 answers and one of 210, 6 classes) had its diagnostics, estimated at 3.8 GB,
    checked against half the machine and take the server past 5.4 GB (attack round 67): they are checked against
    the bound for one job, as a training is, and each task's leave-one-out copies counted five times (four measured)."""
    from deem_core.analysis.diagnostics import check_diagnostics_size
    from deem_core.analysis.diagnostics._slots import leave_one_out_bytes

    assert leave_one_out_bytes(1, 170, 6, 1) == 4 * 170 ** 3 * 36 * 5  # (+2,707 MiB measured; three copies said 2,024)
    data, _ = tiny(80)
    train = manager.submit("train", {"methods": ["deem"], "epochs": 1, "device": "cpu"}, data=data)
    assert manager.wait(train, timeout=120).status == "finished"
    model = manager.store.load(train).load_model("deem")
    need = max(check_diagnostics_size(model, data).values())
    monkeypatch.setenv("DEEM_MAX_JOB_MEMORY", str(need - 1))
    diag = manager.submit("diagnostics", {"source_run": train, "method": "deem"}, store_data=False)
    snap = manager.wait(diag, timeout=120)
    assert snap.status == "failed" and "diagnostics of " in snap.message and "would need about" in snap.message, \
        snap.message
    monkeypatch.setenv("DEEM_MAX_JOB_MEMORY", str(need + 1))
    assert manager.wait(manager.submit("diagnostics", {"source_run": train, "method": "deem"}, store_data=False),
                        timeout=120).status == "finished"


def _two_class_set(n_tasks: int = 200) -> AnnotationSet:
    rng = np.random.default_rng(70)
    truth = rng.integers(2, size=n_tasks)
    labels = np.where(rng.random((n_tasks, 3)) < 0.8, truth[:, None], 1 - truth[:, None])
    return AnnotationSet.from_long(pd.DataFrame({"task": np.repeat(np.arange(n_tasks), 3),
                                                 "worker": np.tile(np.arange(3), n_tasks), "label": labels.ravel()}))


def test_a_jobs_curves_count_in_its_memory_check(manager, monkeypatch):
    """Attack round 70: a sweep of 24 rates x 8 seeds x 2,000 epochs on 200 tasks was admitted on an estimate of 44 MiB
    (the model's alone) and held +560 MiB, nearly all of it its curve rows (+411 MiB since the engine keeps them as
    arrays; benchmarks/results/history_memory.txt). The check counts them: a row a model run and epoch."""
    from deem_core.data.annotations import DataError
    from deem_studio import jobs

    data = _two_class_set()
    grid = {"lrs": [0.001 * (i + 1) for i in range(24)], "n_seeds": 8, "epochs": 2000, "n_layers": 1, "device": "cpu"}
    assert jobs.job_curve_rows("sweep", grid, data) == 24 * 8 * 2000
    assert jobs.job_memory_estimate("sweep", grid, data) >= 411 * 2 ** 20  # (the peak measured above the process)
    monkeypatch.setenv("DEEM_MAX_JOB_MEMORY", "200M")
    with pytest.raises(DataError, match=r"^its curves, 384,000 rows \(a row a model run and epoch\), would take about "
                                        r"[\d.]+ MiB while the job runs \(this server lets one job take 200 MiB: "
                                        r"DEEM_MAX_JOB_MEMORY\); try fewer learning rates, seeds or epochs$"):
        manager.submit("sweep", grid, data=data, owner="kim")
    jobs.check_job_memory("sweep", {**grid, "epochs": 100}, data)  # (19,200 rows: within the bound)
    # a training's rows: every candidate's, at every depth it tries, counted before it runs (not only those it keeps)
    seen = []
    real = jobs.Progress.add_rows

    def counting(self, rows, steps=1, **extra):
        seen.append(len(rows))
        return real(self, rows, steps, **extra)

    monkeypatch.setattr(jobs.Progress, "add_rows", counting)
    monkeypatch.setenv("DEEM_MAX_JOB_MEMORY", "4G")
    config = {"methods": ["deem", "irbm"], "n_seeds": 2, "epochs": 6, "n_layers": "auto", "device": "cpu"}
    trained = _two_class_set(600)
    run = manager.submit("train", config, data=trained, owner="kim")
    assert manager.wait(run, timeout=300).status == "finished"
    counted = jobs.job_curve_rows("train", config, trained)
    assert sum(seen) <= counted <= 3 * sum(seen), (sum(seen), counted)


def test_an_ended_job_lets_go_of_its_curves_and_a_deleted_runs_job_is_forgotten(manager):
    """Attack round 70: every ended job kept its last 20,000 curve rows and a table of them among the 256 jobs the server
    keeps (sweeps of 20,160 rows: +14.5 MiB each, kept after the run was deleted, and its progress with its curves still
    served for the deleted run). An ended job's curves are read from the store; a deleted run's job is gone."""
    data = _two_class_set()
    run = manager.submit("sweep", {"lrs": [0.01, 0.1], "n_seeds": 2, "epochs": 5, "n_layers": 1, "device": "cpu"},
                         data=data, owner="kim")
    assert manager.wait(run, timeout=120).status == "finished"
    job = manager.get(run)
    assert job is not None and job.progress.rows_released
    live = job.progress.snapshot().history  # (what the job itself still holds)
    assert len(live) == 0
    shown = manager.snapshot(run).history
    pd.testing.assert_frame_equal(shown, manager.store.load_history(run))
    assert len(shown) == 2 * 2 * 5
    manager.store.delete(run)
    assert manager.snapshot(run) is None and manager.get(run) is None


def test_a_failed_training_keeps_every_curve_row_it_trained(manager, monkeypatch):
    """An ended job's page reads its curves from the store: a training that fails keeps every row trained before it
    failed there (its recorder wrote them every 5 s only: the last seconds' rows were lost)."""
    from deem_studio import jobs

    monkeypatch.setenv("DEEM_HISTORY_SAVE_SECONDS", "3600")  # (no periodic write before the failure)
    real = jobs._ProgressCallback.on_epoch_end

    def failing(self, epoch, logs):
        real(self, epoch, logs)
        if epoch == 3:
            raise RuntimeError("a disk went away")
        return False

    monkeypatch.setattr(jobs._ProgressCallback, "on_epoch_end", failing)
    run = manager.submit("train", {"methods": ["deem"], "epochs": 10, "n_layers": 1, "init": "mv", "device": "cpu"},
                         data=_two_class_set(60), owner="kim")
    snap = manager.wait(run, timeout=120)
    assert snap.status == "failed" and "a disk went away" in snap.message, snap.message
    assert sorted(set(snap.history["epoch"])) == [1, 2, 3] and set(snap.history["method"]) == {"deem"}
    stored = manager.store.load_history(run)  # (where the page reads them from once the job has let go of its own)
    assert stored is not None and sorted(set(stored["epoch"])) == [1, 2, 3], stored


def test_a_gpu_jobs_curves_are_checked_and_depths_trained_together_counted(manager, monkeypatch):
    """Attack round 71: a job for the GPU had its curves unchecked (they are held in the server's memory whatever the
    device), and where the depths train together (one round, on a GPU) the rows of all three depths were counted as
    one depth's."""
    from deem_core.data.annotations import DataError
    from deem_studio import jobs

    data = _two_class_set()
    config = {"methods": ["deem"], "n_seeds": 16, "epochs": 5000, "n_layers": "auto", "init": "auto"}
    rows = jobs.job_curve_rows("train", {**config, "device": "cpu"}, data)
    assert rows == 16 * (2 * 5000 * 3 + 5000)  # (both starts at each of 3 depths, and the guard's training)
    assert jobs.job_curve_rows("train", {**config, "device": "cuda"}, data) == rows
    monkeypatch.setenv("DEEM_MAX_JOB_MEMORY", "200M")
    with pytest.raises(DataError, match=r"^its curves, 560,000 rows .* try fewer epochs or seeds, or one start in "
                                        r"“Start from”, or the layers fixed rather than chosen$"):
        jobs.check_job_memory("train", {**config, "device": "cuda"}, data)


def test_a_partial_sweeps_best_row_keeps_no_words_of_a_pick():
    """Walkthrough 135: the best row of a cancelled sweep read "... so a tentative pick; try larger learning rates or more
    epochs" beside "so there is no recommendation". The words that call the rate a pick are taken out of it."""
    from deem_studio.jobs import PICK_WORDS

    for said, kept in (
            ("learns slowly, but the most of the stable learning rates: the positive energy (data) falls by 0.000377, "
             "under the 0.00213 that counts as learning, so a tentative pick; try larger learning rates or more epochs",
             "learns slowly, but the most of the stable learning rates: the positive energy (data) falls by 0.000377, "
             "under the 0.00213 that counts as learning; try larger learning rates or more epochs"),
            ("good: learns, then settles: the energy difference dips by 1.36; the smallest learning rate that does",
             "good: learns, then settles: the energy difference dips by 1.36"),
            ("learns: the energy difference dips by 0.5; the smallest learning rate that looks level, so a tentative "
             "pick", "learns: the energy difference dips by 0.5"),
            ("learns: still falling; the smallest learning rate that learns", "learns: still falling")):
        assert PICK_WORDS.sub("", said) == kept
