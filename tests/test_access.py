"""Owner-only control (issue 14, case 3 and 7): a run link is read-only, the owner key (not the address) controls
cancel / delete / rename, one workspace cannot fill the queue, and a killed server keeps the curves trained so far.

Each ``AppTest`` is one browser session of the same server process (same job manager and run store).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from deem_studio import owners, wording
from deem_studio.jobs import JobManager, QueueFull, get_manager, register_kind
from deem_studio.runs import RunStore, is_run_id

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 60


def csv_of(n_tasks: int) -> bytes:
    df = pd.read_csv(ROOT / "sample_data" / "condind.csv")
    return df[df["task"] < n_tasks].to_csv(index=False).encode()


def session(key: str | None = None, **params: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if key is not None:  # the browser's cookie (AppTest has none): the key the session starts with
        at.session_state["owner_key"] = key
    for name, value in params.items():
        at.query_params[name] = value
    return at.run()


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def button_keys(at: AppTest) -> set[str]:
    return {b.key for b in at.button}


def captions(at: AppTest) -> str:
    import re  # noqa: PLC0415

    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", "\n".join(str(c.value) for c in at.caption))


def launch_long_training(at: AppTest, epochs: int = 5000) -> str:
    at.file_uploader(key="upload_annotations").set_value(("owned.csv", csv_of(150), "text/csv")).run()
    at.button(key="load_files").click().run()
    at.switch_page("pages/train.py").run()
    at.multiselect(key="train_methods").set_value(["deem"])
    at.number_input(key="train_epochs").set_value(epochs)
    at.button(key="train_launch").click().run()
    ok(at)
    return at.session_state["train_run"]


# --------------------------------------------------------------------------- the owners module
def test_owner_keys_and_workspaces():
    key = owners.new_owner_key()
    assert owners.is_owner_key(key) and len(key) == 32 and key != owners.new_owner_key()
    ws = owners.workspace_of(key)
    assert owners.is_workspace_id(ws) and ws == owners.workspace_of(key) and key not in ws
    assert owners.can_control(key, ws)
    assert not owners.can_control(owners.new_owner_key(), ws)
    assert not owners.can_control(None, ws) and not owners.can_control(key, None)
    assert not owners.can_control(ws, ws)  # a workspace id (which a page may show) is not a key
    # an old workspace value of the address bar (16 hex) matches no key: such runs stay read-only
    assert not owners.can_control(key, "0123456789abcdef")
    assert owners.normalise_key(f' "{key.upper()}"\n') == key  # as pasted
    for bad in (None, "", key[:-1], "g" * 32, key + "0", key[:16] + " " + key[16:]):
        assert owners.normalise_key(bad) is None
    assert not owners.is_owner_key(key + "\n")


def test_owner_only_actions_are_checked_by_the_service(tmp_path):
    store = RunStore(tmp_path)
    alice, mallory = owners.new_owner_key(), owners.new_owner_key()
    run_id = store.create("train", {}, owner=owners.workspace_of(alice), status="finished")
    cli_run = store.create("train", {}, owner=None, status="finished")
    legacy = store.create("train", {}, owner="0123456789abcdef", status="finished")
    for action, call in (("renamed", lambda k, r: owners.rename_run(store, r, k, "x")),
                         ("deleted", lambda k, r: owners.delete_run(store, r, k))):
        with pytest.raises(owners.AccessDenied, match=f"cannot be {action} from here: it belongs to another"):
            call(mallory, run_id)
        with pytest.raises(owners.AccessDenied, match="not launched from a browser workspace"):
            call(alice, cli_run)
        with pytest.raises(owners.AccessDenied):
            call(alice, legacy)
    manager = JobManager(store)
    with pytest.raises(owners.AccessDenied, match="cannot be cancelled"):
        owners.cancel_run(manager, run_id, mallory)
    assert store.exists(run_id) and store.get(run_id)["name"] is None
    assert owners.rename_run(store, run_id, alice, "  my\nfirst   run ") == "my first run"
    assert store.get(run_id)["name"] == "my first run"
    assert store.list(owner=owners.workspace_of(alice))["name"].tolist() == ["my first run"]
    # its finished diagnostics go with it, its workspace's (left behind, listed, impossible to open; walkthrough 26)
    # and a link's visitor's (they kept the deleted run's figures, their files counted; attack round 17); a running
    # one (it goes when it ends) and another run's stay
    mine = store.create("diagnostics", {"source_run": run_id}, owner=owners.workspace_of(alice), status="finished")
    busy = store.create("diagnostics", {"source_run": run_id}, owner=owners.workspace_of(alice), status="running")
    other_run = store.create("diagnostics", {"source_run": cli_run}, owner=owners.workspace_of(alice),
                             status="finished")
    theirs = store.create("diagnostics", {"source_run": run_id}, owner=owners.workspace_of(mallory), status="finished")
    assert sorted(owners.delete_run(store, run_id, alice)) == sorted([mine, theirs])
    assert not store.exists(run_id) and not store.exists(mine) and not store.exists(theirs)
    assert store.exists(busy) and store.exists(other_run)


def test_run_id_check_refuses_a_trailing_newline(tmp_path):
    """Case 7: ``$`` in the id pattern accepted "<16 hex>\\n"; ids are matched whole now."""
    store = RunStore(tmp_path)
    run_id = store.create("train", {})
    assert is_run_id(run_id) and not is_run_id(run_id + "\n") and not is_run_id(" " + run_id)
    with pytest.raises(KeyError, match="not a run id"):
        store.get(run_id + "\n")
    with pytest.raises(KeyError) as info:
        store.get("0123456789abcdef")
    assert str(tmp_path) not in str(info.value)  # no server path in a message a page may show


GATES: dict[str, threading.Event] = {}


def _gated(ctx):
    gate = GATES.setdefault(ctx.config["name"], threading.Event())
    while not gate.wait(0.01):
        if ctx.cancel_event.is_set():
            return "cancelled", "cancelled while waiting"
    return "finished", "ok"


register_kind("owned_gate", _gated, device=lambda config: "cpu", steps=lambda config, data: 1)


def test_one_workspace_cannot_fill_the_queue(tmp_path):
    """Case 7: one session could queue jobs up to the server-wide limit (64); now at most N per workspace."""
    manager = JobManager(RunStore(tmp_path), max_pending=10, max_pending_per_owner=3)
    GATES["w"] = threading.Event()
    mine = [manager.submit("owned_gate", {"name": "w"}, owner="a" * 24) for _ in range(3)]
    with pytest.raises(QueueFull, match=r"your workspace already has 3 jobs queued or running \(at most 3"):
        manager.submit("owned_gate", {"name": "w"}, owner="a" * 24)
    # another workspace still gets in
    other = manager.submit("owned_gate", {"name": "w"}, owner="b" * 24)
    # and once one of mine ends, I may submit again
    assert manager.cancel(mine[0])
    manager.wait(mine[0], timeout=10)
    mine.append(manager.submit("owned_gate", {"name": "w"}, owner="a" * 24))
    GATES["w"].set()
    for run_id in [*mine, other]:
        assert manager.wait(run_id, timeout=20).done
    manager.shutdown()


def test_concurrent_submits_respect_the_workspace_limit(tmp_path):
    manager = JobManager(RunStore(tmp_path), max_pending=50, max_pending_per_owner=2)
    GATES["c"] = threading.Event()
    results: list[str] = []

    def submit() -> None:
        try:
            results.append(manager.submit("owned_gate", {"name": "c"}, owner="c" * 24))
        except QueueFull:
            results.append("refused")

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(r != "refused" for r in results) == 2 and results.count("refused") == 6
    GATES["c"].set()
    manager.shutdown()


def test_workspace_limit_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DEEM_MAX_JOBS_PER_WORKSPACE", "7")
    assert JobManager(RunStore(tmp_path)).max_pending_per_owner == 7
    monkeypatch.setenv("DEEM_MAX_JOBS_PER_WORKSPACE", "nonsense")
    assert owners.max_active_per_workspace() == owners.DEFAULT_MAX_ACTIVE_PER_WORKSPACE


# --------------------------------------------------------------------------- the dashboard
def test_a_finished_runs_visitor_is_told_on_train_and_sweep_too_and_gets_no_trace_of_its_gold(runs_dir):
    """Walkthrough 41: a link's visitor read "belongs to another workspace: you see it read-only" on Results and Runs
    but not on the Train and Sweep pages, beside an active form; the run's configuration download named the owner's
    gold file and its fingerprint."""
    alice = session()
    alice.file_uploader(key="upload_annotations").set_value(("owned.csv", csv_of(150), "text/csv")).run()
    alice.button(key="load_files").click().run()
    truth = pd.read_csv(ROOT / "sample_data" / "condind.truth.csv")
    alice.file_uploader(key="upload_gold").set_value(
        ("secret_gold.csv", truth[truth["task"] < 150].to_csv(index=False).encode(), "text/csv")).run()
    runs = {}
    for kind, launch, settings in (("sweep", "sweep_launch", {"sweep_epochs": 2}),
                                   ("train", "train_launch", {"train_epochs": 2})):
        alice.switch_page(f"pages/{kind}.py").run()
        for key, value in settings.items():
            alice.number_input(key=key).set_value(value)
        alice.button(key=launch).click().run()
        ok(alice)
        runs[kind] = alice.session_state[f"{kind}_run"]
        assert get_manager().wait(runs[kind], timeout=120).status == "finished"
    config = get_manager().store.get(runs["train"])["config"]
    assert config["gold_file"] == "secret_gold.csv" and "gold_fingerprint" in config
    assert not [k for k in wording.without_gold(config) if "gold" in k]
    assert wording.without_gold(config)["methods"] == config["methods"]
    alice.switch_page("pages/train.py").run()
    assert "belongs to another workspace" not in captions(alice)  # the owner
    for kind, run_id in runs.items():
        bob = session(run=run_id)
        bob.switch_page(f"pages/{kind}.py").run()
        ok(bob)
        assert (f"Run {run_id} belongs to another workspace: you see it read-only (only its owner can cancel, rename or "
                f"delete it); what you launch here is your own run, in your workspace.") in captions(bob), kind


def test_a_run_link_is_read_only_and_the_owner_keeps_control(runs_dir):
    """Case 3: a session that knew only the run id cancelled the owner's job; the owner's address let anyone
    list and delete their runs."""
    alice = session()
    key = alice.session_state["owner_key"]
    run_id = launch_long_training(alice)
    assert "ws" not in alice.query_params and key not in str(dict(alice.query_params))
    assert f"train_cancel_{run_id}" in button_keys(alice)  # the owner sees the cancel button

    # a colleague with the link (/train?run=<id>) sees the run, read-only
    bob = session(run=run_id)
    bob.switch_page("pages/train.py").run()
    ok(bob)
    assert bob.session_state["train_run"] == run_id
    assert f"train_cancel_{run_id}" not in button_keys(bob)
    assert f"Run {run_id} belongs to another workspace: you see it read-only" in captions(bob)
    # the service refuses too (not only a hidden button)
    with pytest.raises(owners.AccessDenied):
        owners.cancel_run(get_manager(), run_id, bob.session_state["owner_key"])
    assert get_manager().snapshot(run_id).status in ("queued", "running")
    # the old kind of address, with the owner's workspace id, gives nothing either
    carol = session(ws=alice.session_state["ws"], run=run_id)
    carol.switch_page("pages/runs.py").run()
    assert "No runs in this workspace yet" in "\n".join(str(i.value) for i in carol.info)
    assert {"runs_delete", "runs_cancel", "runs_rename"}.isdisjoint(button_keys(carol))

    # the owner after a refresh (same browser: the cookie's key) still controls it, and cancels it
    again = session(key=key, run=run_id)
    again.switch_page("pages/train.py").run()
    ok(again)
    again.button(key=f"train_cancel_{run_id}").click().run()
    snap = get_manager().wait(run_id, timeout=60)
    assert snap.status == "cancelled"

    # finished: bob cannot delete or rename it, the owner can
    with pytest.raises(owners.AccessDenied):
        owners.delete_run(get_manager().store, run_id, bob.session_state["owner_key"])
    with pytest.raises(owners.AccessDenied):
        owners.rename_run(get_manager().store, run_id, bob.session_state["owner_key"], "pwned")
    again.switch_page("pages/runs.py").run()
    again.button(key="runs_rename").click().run()
    again.text_input(key="runs_new_name").set_value("first try")
    again.button(key="runs_rename_save").click().run()
    ok(again)
    assert get_manager().store.get(run_id)["name"] == "first try"
    again.button(key="runs_delete").click().run()
    again.button(key="runs_delete_yes").click().run()
    ok(again)
    assert not get_manager().store.exists(run_id)
    # (said nothing; walkthrough 23); this session had opened the run by its link: its answers go with it
    notice = str(again.info[0].value).replace("\\", "")  # (Markdown escapes)
    assert notice == f"Run {run_id} deleted with its files; its annotations are no longer loaded here."  # (no period before)


def test_the_queue_limit_per_workspace_in_the_dashboard(runs_dir, monkeypatch):
    monkeypatch.setenv("DEEM_MAX_JOBS_PER_WORKSPACE", "2")
    at = session()
    first = launch_long_training(at)
    at.number_input(key="train_epochs").set_value(4999)  # other settings each time: not the same job again
    at.button(key="train_launch").click().run()
    second = at.session_state["train_run"]
    assert second != first
    at.number_input(key="train_epochs").set_value(4998)
    at.button(key="train_launch").click().run()
    ok(at)
    errors = "\n".join(str(e.value) for e in at.error)
    assert "your workspace already has 2 job" in errors.replace("\\", "")
    assert at.session_state["train_run"] == second
    for run_id in (first, second):
        get_manager().cancel(run_id)


# --------------------------------------------------------------------------- a killed server keeps its curves
_TRAINER = textwrap.dedent("""
    import sys, time
    import pandas as pd
    from deem_core import AnnotationSet
    from deem_studio.jobs import JobManager
    df = pd.read_csv(sys.argv[2])
    data = AnnotationSet.from_long(df[df["task"] < 300], source="condind.csv")
    manager = JobManager(sys.argv[1])
    run_id = manager.submit("train", {"methods": ["deem"], "epochs": 100000, "device": "cpu"}, data=data)
    print(run_id, flush=True)
    time.sleep(600)
""")


def test_a_killed_server_keeps_the_curves_trained_so_far(tmp_path):
    """Case 7: the curves were written only when a method ended; a kill -9 mid-training lost them all."""
    runs = tmp_path / "runs"
    env = {**os.environ, "DEEM_HISTORY_SAVE_SECONDS": "0.5", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-c", _TRAINER, str(runs), str(ROOT / "sample_data" / "condind.csv")],
                               stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        run_id = process.stdout.readline().strip()
        assert is_run_id(run_id), run_id
        history = runs / run_id / "history.parquet"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if history.exists():
                try:
                    if len(pd.read_parquet(history)) >= 20:
                        break
                except Exception:  # noqa: BLE001 - being replaced right now (atomic rename): read again
                    pass
            time.sleep(0.1)
        else:
            raise AssertionError("no history was saved while training")
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(30)
    # the next server start: the run is marked failed, its curves so far are there
    manager = JobManager(RunStore(runs))
    assert run_id in manager.recovered
    snap = manager.snapshot(run_id)
    assert snap.status == "failed"
    saved = snap.history
    assert len(saved) >= 20 and set(saved["method"]) == {"deem"}
    epochs = sorted(saved["epoch"].unique())
    assert epochs == list(range(epochs[0], epochs[0] + len(epochs)))  # no gap: every epoch up to the last save


def test_a_queued_runs_link_does_not_name_the_owners_run_ahead(runs_dir):
    """Attack round 55: a run queued behind its owner's other run said "queued behind your run <id>" to every visitor
    of its link (on the page and in the sidebar), and that id opened the other run, never shared. The owner is told;
    a visitor reads how many jobs are ahead."""
    alice = session()
    first = launch_long_training(alice)
    alice.number_input(key="train_epochs").set_value(4999)  # (other settings: not the same job again)
    alice.button(key="train_launch").click().run()
    second = alice.session_state["train_run"]
    try:
        assert second != first and get_manager().snapshot(second).status == "queued"
        alice.run()
        shown = "\n".join(str(e.value) for e in (*alice.info, *alice.caption))
        assert f"queued behind your run {first}" in shown.replace("\\", ""), shown
        alice.switch_page("pages/runs.py").run()  # (the Runs page read the stored message; walkthrough 109)
        listed = next(t.value for t in alice.dataframe if "message" in t.value.columns)
        assert any(f"queued behind your run {first}" in str(m) for m in listed["message"]), listed["message"].tolist()
        bob = session(run=second)
        bob.switch_page("pages/train.py").run()
        ok(bob)
        seen = "\n".join(str(e.value) for e in (*bob.info, *bob.caption, *bob.markdown)).replace("\\", "")
        assert "1 job ahead on the CPU" in seen and first not in seen, seen
        assert first not in get_manager().store.get(second)["message"]
    finally:
        for run_id in (first, second):
            get_manager().cancel(run_id)
