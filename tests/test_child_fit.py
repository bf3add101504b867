"""Fits that cannot be stopped in this process run in a child process a stop event ends (methods/child.py)."""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from deem_core.data.annotations import AnnotationSet, DataError
from deem_core.methods import registry
from deem_core.methods.child import FitStopped, fit_in_child
from deem_studio.jobs import JobManager
from deem_studio.runs import RunStore

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


def lopsided(n_big: int = 10_000, n_small: int = 200, seed: int = 0) -> AnnotationSet:
    """Attack round 21's set: one task answered by ``n_big`` workers, ``n_small`` tasks by five of them, 2 classes
    (11,000 answers: within GLAD's bounds; its fit took 208 s here)."""
    rng = random.Random(seed)
    rows = [("big", f"w{w}", rng.choice("ab")) for w in range(n_big)]
    for t in range(n_small):
        rows += [(f"t{t}", f"w{w}", rng.choice("ab")) for w in rng.sample(range(n_big), 5)]
    return AnnotationSet.from_long(pd.DataFrame(rows, columns=["task", "worker", "label"]))


def many_classes(n_tasks: int = 2000, per_task: int = 5, n_workers: int = 1000, k: int = 50) -> AnnotationSet:
    """Attack round 22's set: 2,000 tasks x 50 classes, 5 answers each from 1,000 workers (a 111 KB CSV within
    one-coin Dawid-Skene's bounds; its fit ran past 591 s in the server's own process, through a cancel)."""
    rng = random.Random(1)
    rows = {(t, rng.randrange(n_workers)): rng.randrange(k) for t in range(n_tasks) for _ in range(per_task)}
    return AnnotationSet.from_long(pd.DataFrame([(t, w, lab) for (t, w), lab in rows.items()],
                                                columns=["task", "worker", "label"]))


def children() -> int:
    """This process's fit children still alive (other processes on the machine may run their own)."""
    found = subprocess.run(["pgrep", "-P", str(os.getpid()), "-f", "deem_core.methods.child"], capture_output=True,
                           text=True)
    return len(found.stdout.split())


@pytest.mark.parametrize("n_tasks", [200, 4000])
def test_a_fit_in_a_child_gives_the_fit_of_this_process(n_tasks):
    """Walkthrough 43: answers of more than a pipe's buffer (~64 KB) never fully reached the child, which waited for
    them until stopped: a small set and one of ~1 MB pickled."""
    import pickle  # noqa: PLC0415

    frame = pd.read_csv(SAMPLE / "condind.csv")
    frame = frame[frame["task"] < n_tasks]
    assert (len(pickle.dumps(frame)) > 1 << 19) == (n_tasks > 1000)
    here = registry.fit_method("mmsr", frame, seed=3).results_frame()
    stop = threading.Event()
    timer = threading.Timer(120.0, stop.set)  # (a child left waiting ends the test, not the suite)
    timer.start()
    try:
        there = registry.fit_method("mmsr", frame, seed=3, stop_event=stop).results_frame()
    finally:
        timer.cancel()
    pd.testing.assert_frame_equal(here, there)


@pytest.mark.parametrize(("method", "make"), [("glad", lopsided), ("onecoin", many_classes)])
def test_a_stop_event_ends_a_long_fit_and_its_process(method, make):
    data = make()
    stop = threading.Event()
    threading.Timer(2.0, stop.set).start()
    started = time.monotonic()
    with pytest.raises(FitStopped):
        registry.fit_method(method, data, stop_event=stop)
    assert time.monotonic() - started < 15  # (unstopped: GLAD 208 s, one-coin past 591 s)
    assert children() == 0


def test_the_childs_error_is_raised_here():
    wide = pd.DataFrame({"task": range(300), "worker": ["w"] * 300, "label": range(300)})  # 300 classes: refused
    with pytest.raises(DataError, match="GLAD"):
        fit_in_child("glad", wide, {}, threading.Event())


def test_cancelling_a_glad_job_frees_the_cpu_slot_for_the_next_job(tmp_path):
    """Attack round 21: a GLAD job on the lopsided set, cancelled, read "cancelling" past 4 minutes while another
    visitor's majority vote waited "Queued: 1 job(s) ahead" (one CPU slot)."""
    manager = JobManager(RunStore(tmp_path / "runs"), max_cpu_jobs=1)
    try:
        data = lopsided()
        run_id = manager.submit("train", {"methods": ["mv", "glad"], "device": "cpu"}, data=data)
        deadline = time.monotonic() + 60
        while "GLAD" not in (manager.snapshot(run_id).phase or "") and time.monotonic() < deadline:
            time.sleep(0.05)
        waiting = manager.submit("train", {"methods": ["mv"], "device": "cpu"}, data=data)
        time.sleep(1.0)
        assert manager.snapshot(waiting).status == "queued"
        started = time.monotonic()
        manager.cancel(run_id)
        snap = manager.wait(run_id, timeout=60)
        assert snap.status == "cancelled" and time.monotonic() - started < 20, snap.message
        assert "labels kept for: Majority vote" in snap.message
        assert manager.wait(waiting, timeout=60).status == "finished"
        assert children() == 0
    finally:
        manager.shutdown()


def test_a_time_probe_of_such_a_fit_ends_at_the_probes_limit(monkeypatch):
    from deem_studio import estimate  # noqa: PLC0415

    monkeypatch.setattr(estimate, "PROBE_MAX_SECONDS", 2.0)
    started = time.monotonic()
    with pytest.raises(estimate.ProbeSkipped, match="took more than"):
        estimate.estimate_train(lopsided(), deem_methods=(), baselines=("glad",))
    assert time.monotonic() - started < 20 and children() == 0


def test_a_child_ends_when_the_process_that_started_it_is_killed(tmp_path):
    """A server killed mid-fit left its child fitting on, a core held with nobody to read the result."""
    import os  # noqa: PLC0415
    import signal  # noqa: PLC0415
    import sys  # noqa: PLC0415

    root = Path(__file__).resolve().parents[1]
    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, threading\n"
        f"sys.path[:0] = [{str(root)!r}, {str(root / 'tests')!r}]\n"
        "from test_child_fit import lopsided\n"
        "from deem_core.methods import registry\n"
        "registry.fit_method('glad', lopsided(), stop_event=threading.Event())\n")
    parent = subprocess.Popen([sys.executable, str(script)])
    try:
        deadline = time.monotonic() + 60
        child = ""
        while not child and time.monotonic() < deadline:
            child = subprocess.run(["pgrep", "-P", str(parent.pid), "-f", "deem_core.methods.child"],
                                   capture_output=True, text=True).stdout.strip()
            time.sleep(0.2)
        assert child, "no child started"
        given = Path(open(f"/proc/{int(child)}/cmdline", "rb").read().split(b"\0")[4].decode())
        deadline = time.monotonic() + 30
        while given.exists() and time.monotonic() < deadline:  # (the child removes its answers' file once read)
            time.sleep(0.1)
        assert not given.exists(), "the answers' file stayed"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and os.path.exists(f"/proc/{int(child)}"):
            time.sleep(0.2)
        alive = os.path.exists(f"/proc/{int(child)}")
        if alive:
            os.kill(int(child), signal.SIGKILL)
        assert not alive, "the child outlived its parent"
        assert not given.parent.exists(), "the child's folder stayed"
    finally:
        if parent.poll() is None:
            parent.kill()


def test_the_childs_result_is_read_without_a_second_copy_here():
    """Attack round 22: the fitted model came back on a pipe, held here as bytes and as the model at once (an M-MSR
    fit of 40,000 tasks x 300 classes raised the server's memory by 549 MB against 281 MB fitted in-process)."""
    import pickle  # noqa: PLC0415
    import tracemalloc  # noqa: PLC0415

    rng = random.Random(4)
    frame = pd.DataFrame([(t, rng.randrange(150), rng.randrange(300)) for t in range(1500) for _ in range(5)],
                         columns=["task", "worker", "label"]).drop_duplicates(["task", "worker"])
    tracemalloc.start()
    try:
        model = fit_in_child("mmsr", frame, {}, threading.Event())
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    sent = len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    assert sent > 5e6
    assert peak - held < 0.5 * sent, (peak, held, sent)  # (from a pipe: at least the bytes more)


def test_the_child_imports_no_sitecustomize_from_a_folder_on_the_path(tmp_path, monkeypatch):
    """A ``sitecustomize.py`` in any folder on the server's import path ran in every child before its own code."""
    marker = tmp_path / "ran"
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "sitecustomize.py").write_text(f"open({str(marker)!r}, 'w').write('yes')\n")
    monkeypatch.syspath_prepend(str(planted))
    wide = pd.DataFrame({"task": [0, 0, 1, 1], "worker": ["a", "b", "a", "b"], "label": ["x", "x", "y", "x"]})
    model = fit_in_child("mv", wide, {}, threading.Event())
    assert len(model.results_frame()) == 2
    assert not marker.exists()
