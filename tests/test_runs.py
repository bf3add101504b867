"""The run store: folders + SQLite index, atomic files, stale runs, many threads."""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deem_core import DEEM, AnnotationSet
from deem_studio.runs import RunNotFound, RunStore, default_runs_dir, is_run_id

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


def tiny(n_tasks: int = 60) -> tuple[AnnotationSet, pd.Series]:
    df = pd.read_csv(SAMPLE / "condind.csv")
    df = df[df["task"] < n_tasks]
    truth = pd.read_csv(SAMPLE / "condind.truth.csv").set_index("task")["truth"]
    return AnnotationSet.from_long(df, source="condind.csv"), truth[truth.index < n_tasks]


def test_create_load_round_trip(tmp_path):
    store = RunStore(tmp_path / "runs")
    data, gold = tiny()
    run_id = store.create("train", {"epochs": 2, "lr": 0.1, "methods": ["deem"]}, data=data, gold=gold,
                          owner="alice", dataset="condind")
    assert is_run_id(run_id)
    assert (tmp_path / "runs" / "runs.sqlite").exists()
    with sqlite3.connect(tmp_path / "runs" / "runs.sqlite") as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    loaded = store.load(run_id)
    assert loaded.status == "queued" and loaded.kind == "train"
    assert loaded.config == {"epochs": 2, "lr": 0.1, "methods": ["deem"]}
    assert loaded.data.fingerprint() == data.fingerprint()
    pd.testing.assert_frame_equal(loaded.data.to_long(), data.to_long())
    assert loaded.gold.to_dict() == gold.to_dict()
    record = store.get(run_id)
    assert record["fingerprint"] == data.fingerprint()
    assert (record["n_tasks"], record["n_workers"], record["n_classes"]) == (60, 10, 3)
    assert not list((tmp_path / "runs" / run_id).rglob("*.tmp"))  # atomic writes leave no temp files


def test_results_history_model_and_summary(tmp_path):
    store = RunStore(tmp_path)
    data, gold = tiny()
    run_id = store.create("train", {}, data=data)
    model = DEEM(n_layers=0, epochs=1, seed=0, device="cpu").fit(data)
    store.save_model(run_id, model, name="deem")
    store.save_history(run_id, model.history_)
    store.save_result(run_id, "deem", model.results_frame())
    store.save_json(run_id, "metrics", {"deem": {"accuracy": float("nan"), "epochs": np.int64(1)}})
    store.update_summary(run_id, accuracy_deem=0.9)
    store.update_summary(run_id, methods=["deem"])
    store.update_status(run_id, "finished", message="done", messages=["a note"])
    loaded = store.load(run_id)
    assert loaded.summary == {"accuracy_deem": 0.9, "methods": ["deem"]}
    assert loaded.record["messages"] == ["a note"] and loaded.record["message"] == "done"
    assert loaded.record["finished_at"] >= loaded.record["created_at"]
    assert list(loaded.results) == ["deem"]
    pd.testing.assert_frame_equal(loaded.results["deem"], model.results_frame(), check_names=False)
    assert len(loaded.history) == len(model.history_)
    assert loaded.extras["metrics"] == {"deem": {"accuracy": None, "epochs": 1}}  # NaN stored as null
    reopened = loaded.load_model("deem")
    pd.testing.assert_frame_equal(reopened.predict_proba(), model.predict_proba())
    assert loaded.model_names() == ["deem"]


def test_a_run_keeps_its_answers_as_encoded_soft_labels_and_long_names_alike(tmp_path):
    """Attack round 53: the answers were stored as a long table of names, a copy of each name per answer: a 29 KB
    Parquet file of 50 workers named with 10,000 characters took +1 GB of the server to store and +1.9 GB at each
    view of the run's link (a name per answer, written and read back); and soft labels were lost, the reloaded set
    another one (its fingerprint: "made on another data set" on its owner's own pages)."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    rng = np.random.default_rng(0)
    n, d, k = 300, 50, 3
    tasks, workers = np.repeat(np.arange(n), 10), np.concatenate([rng.choice(d, 10, replace=False) for _ in range(n)])
    names = pd.Index([f"{i:02d}" + "w" * 10_000 for i in range(d)])
    soft = rng.dirichlet(np.ones(k), size=len(tasks)).astype(np.float32)
    data = AnnotationSet.from_codes(pd.Index([f"t{i}" for i in range(n)]), names, pd.Index(["a", "b", "c"]), tasks,
                                    workers, soft.argmax(1), soft_labels=soft)
    store = RunStore(tmp_path)
    run_id = store.create("train", {}, data=data)
    back, _ = store.load_data(run_id)
    assert back.fingerprint() == data.fingerprint()
    np.testing.assert_array_equal(back.soft_labels, data.soft_labels)
    assert list(back.workers) == list(names) and sum(f.stat().st_size for f in (tmp_path / run_id).iterdir()) < 1e6
    # each vocabulary named as before (they came back named "value"; read 53)
    assert [back.tasks.name, back.workers.name, back.classes.name] == ["task", "worker", "label"]
    assert list(back.to_long().columns[:3]) == list(data.to_long().columns[:3])
    # the server's memory to store and read back 50,000 answers of those names (before: 1.1 GB and more; a name
    # per answer is 500 MB by itself), in a process of its own
    script = f"""
import resource, numpy as np, pandas as pd
from deem_core import AnnotationSet
from deem_studio.runs import RunStore
rng = np.random.default_rng(0)
n = 5_000
tasks, workers = np.repeat(np.arange(n), 10), np.concatenate([rng.choice(50, 10, replace=False) for _ in range(n)])
data = AnnotationSet.from_codes(pd.Index(range(n)), pd.Index([f"{{i:02d}}" + "w" * 10_000 for i in range(50)]),
                                pd.Index(["a", "b", "c"]), tasks, workers, rng.integers(0, 3, len(tasks)))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
store = RunStore({str(tmp_path / "big")!r})
store.load_data(store.create("train", {{}}, data=data))
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)
"""
    grown = int(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                               timeout=300).stdout.split()[-1])
    assert grown < 150, f"+{grown} MB"


def test_mixed_type_labels_keep_their_types(tmp_path):
    df = pd.DataFrame({"task": ["t1", "t1", "t2", "t2"], "worker": ["a", "b", "a", "b"],
                       "label": [1, "x", 1, 1]}, dtype=object)
    data = AnnotationSet.from_long(df)
    store = RunStore(tmp_path)
    run_id = store.create("train", {}, data=data)
    assert (tmp_path / run_id / "annotations_classes.table.json").exists()  # parquet cannot hold 1 and "x"
    back = store.load(run_id).data
    assert sorted(map(repr, back.to_long()["label"])) == sorted(map(repr, data.to_long()["label"]))
    assert back.fingerprint() == data.fingerprint()


def test_bad_run_ids_never_touch_the_disk(tmp_path):
    store = RunStore(tmp_path)
    for bad in ("../../etc", "", "ZZZZZZZZZZZZZZZZ", "0123456789abcdef/..", None):
        with pytest.raises(RunNotFound):
            store.load(bad)
    with pytest.raises(RunNotFound, match="no run with id"):
        store.get("0123456789abcdef")
    assert not store.exists("0123456789abcdef")


def test_status_timestamps_and_list_filters(tmp_path):
    store = RunStore(tmp_path)
    a = store.create("train", {}, owner="alice")
    b = store.create("sweep", {}, owner="bob")
    c = store.create("train", {})
    store.update_status(a, "running")
    assert store.get(a)["started_at"] is not None and store.get(a)["finished_at"] is None
    store.update_status(a, "failed", message="boom")
    assert store.get(a)["finished_at"] is not None
    assert list(store.list(owner="alice")["run_id"]) == [a]
    assert list(store.list(owner="bob")["run_id"]) == [b]
    assert list(store.list()["run_id"]) == [c]  # owner None = runs without an owner (CLI)
    assert set(store.list(all_owners=True)["run_id"]) == {a, b, c}
    assert list(store.list(all_owners=True, kinds=["sweep"])["run_id"]) == [b]
    assert list(store.list(all_owners=True, statuses=["failed"])["run_id"]) == [a]
    with pytest.raises(ValueError):
        store.update_status(a, "exploded")


def test_a_run_folder_left_without_its_index_row_is_removed_when_the_server_starts(tmp_path):
    """A server killed while a run was being written left its folder (written before its index row): a full copy of
    the uploaded answers, counted by no quota, listed nowhere, removed by nothing (attack round 59). A server starting
    removes such folders once they are older than a grace period; fresh ones (another process may be writing them),
    indexed runs, other folders and links stay. So does any folder holding a job's output: an index restored from a
    backup removed the finished runs it did not list (attack round 60); and nothing is removed while the index holds
    no run at all."""
    import time

    from deem_studio.jobs import JobManager

    empty = tmp_path.parent / f"{tmp_path.name}-empty"
    (empty / "0123456789abcdef").mkdir(parents=True)
    os.utime(empty / "0123456789abcdef", (time.time() - 86_400,) * 2)
    assert JobManager(empty).removed_unindexed == [] and (empty / "0123456789abcdef").exists()  # (no index to judge)
    store = RunStore(tmp_path)
    kept = store.create("train", {"methods": ["mv"]}, status="finished")
    old = time.time() - 2 * RunStore.UNINDEXED_GRACE_SECONDS
    for name in ("0123456789abcdef", "fedcba9876543210", "notes", "abcdefabcdef0000"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "annotations.npz").write_bytes(b"x" * 1000)
        (tmp_path / name / "results").mkdir()
    (tmp_path / "0123456789abcdef" / ".config.json.x1.tmp").write_text("{")
    (tmp_path / "abcdefabcdef0000" / "results" / "mv.parquet").write_bytes(b"labels")  # a run whose row was lost
    os.utime(tmp_path / "abcdefabcdef0000", (old, old))
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("not the store's")
    os.symlink(outside, tmp_path / "00000000deadbeef")
    for name in ("0123456789abcdef", "notes", kept):
        os.utime(tmp_path / name, (old, old))
    manager = JobManager(tmp_path)
    assert manager.removed_unindexed == ["0123456789abcdef"]
    assert not (tmp_path / "0123456789abcdef").exists()
    assert (tmp_path / "fedcba9876543210").exists() and (tmp_path / "notes").exists()  # fresh; not a run's
    assert (tmp_path / "abcdefabcdef0000" / "results" / "mv.parquet").exists()  # a job's output: kept
    assert (outside / "keep.txt").exists() and os.path.islink(tmp_path / "00000000deadbeef")
    assert store.get(kept)["status"] == "finished" and (tmp_path / kept / "config.json").exists()
    manager.shutdown()
    # a delete cut short between its row and its folder (a server killed there) left the folder, results and model,
    # counted by no quota (attack round 61): marked before the row goes, it is removed at the next start, at once
    gone = store.create("train", {"methods": ["mv"]}, status="finished")
    (tmp_path / gone / "results" / "mv.parquet").parent.mkdir(exist_ok=True)
    (tmp_path / gone / "results" / "mv.parquet").write_bytes(b"labels")
    real_rmtree = shutil.rmtree
    shutil.rmtree = lambda *args, **kwargs: None  # (killed before the folder went)
    try:
        store.delete(gone)
    finally:
        shutil.rmtree = real_rmtree
    assert (tmp_path / gone).exists() and store.exists(gone) is False
    again = JobManager(tmp_path)
    assert again.removed_unindexed == [gone] and not (tmp_path / gone).exists()
    assert (tmp_path / "abcdefabcdef0000" / "results" / "mv.parquet").exists()  # (unmarked output still kept)
    again.shutdown()


def test_stale_running_runs_are_marked_failed(tmp_path):
    store = RunStore(tmp_path)
    dead = store.create("train", {}, status="running")
    mine_active = store.create("train", {}, status="running")
    mine_lost = store.create("train", {}, status="queued")
    done = store.create("train", {}, status="finished")
    with sqlite3.connect(tmp_path / "runs.sqlite") as con:  # pretend a crashed process owned it
        con.execute("UPDATE runs SET pid = 999999999 WHERE run_id = ?", (dead,))
    marked = store.mark_stale_running_as_failed(active_ids=[mine_active])
    assert set(marked) == {dead, mine_lost}
    assert store.get(dead)["status"] == "failed"
    assert "server stopped" in store.get(dead)["message"]
    assert store.get(mine_active)["status"] == "running"
    assert store.get(done)["status"] == "finished"
    # a second store on the same folder (a restarted server) finds nothing left to fix but the active one
    assert RunStore(tmp_path).mark_stale_running_as_failed(active_ids=[mine_active]) == []


def test_many_threads_write_safely(tmp_path):
    store = RunStore(tmp_path)
    errors: list[BaseException] = []
    ids: list[str] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        try:
            other = RunStore(tmp_path)  # a second connection pool on the same database
            run_id = other.create("train", {"i": i}, owner=f"user{i % 3}")
            for status in ("running", "finished"):
                other.update_status(run_id, status)
            other.update_summary(run_id, i=i)
            with lock:
                ids.append(run_id)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    listed = store.list(all_owners=True)
    assert len(listed) == 12 and set(listed["run_id"]) == set(ids)
    assert (listed["status"] == "finished").all()
    assert sorted(s["i"] for s in listed["summary"]) == list(range(12))


def test_delete_refuses_active_runs(tmp_path):
    store = RunStore(tmp_path)
    active = store.create("train", {}, status="running")
    with pytest.raises(ValueError, match="cancel it"):
        store.delete(active)
    store.update_status(active, "cancelled")
    store.delete(active)
    assert not store.exists(active) and not (tmp_path / active).exists()


def test_a_run_deleted_while_it_is_read_is_said_to_be_deleted(tmp_path, monkeypatch):
    """A page opening a run while its owner deleted it failed with "FileNotFoundError: ... 'results'" (the folder
    listed after the check that it exists; 1 in 120 opens; attack round 16): it is a RunNotFound, as any deleted run."""
    store = RunStore(tmp_path)
    data, _ = tiny()
    run_id = store.create("train", {"methods": ["mv"]}, data=data)
    store.save_result(run_id, "mv", pd.DataFrame({"label": [0, 1]}, index=pd.Index(["a", "b"], name="task")))
    store.update_status(run_id, "finished")
    listing = Path.iterdir

    def deleted_meanwhile(path: Path):
        if path.name == "results" and store.exists(run_id):
            store.delete(run_id)  # between the check that the folder exists and its listing
        return listing(path)

    monkeypatch.setattr(Path, "iterdir", deleted_meanwhile)
    with pytest.raises(RunNotFound):
        store.load(run_id)


def test_default_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DEEM_RUNS_DIR", str(tmp_path / "elsewhere"))
    assert default_runs_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("DEEM_RUNS_DIR")
    assert default_runs_dir() == Path("runs")


def test_stored_tables_carry_no_attrs(tmp_path):
    """A results frame's attrs (DEEM puts its selection summary there, NaN included) reached the browser as
    Arrow metadata that the dataframe widget parses as strict JSON: the Results page's table failed with
    "SyntaxError: Unexpected token 'N'". Stored tables keep no attrs, and old ones lose them when read."""
    import math

    store = RunStore(tmp_path)
    run_id = store.create("train", {})
    frame = pd.DataFrame({"label": ["a", "b"], "confidence": [0.9, 0.8]}, index=pd.Index([1, 2], name="task"))
    frame.attrs["selection"] = {"held_out_loglik": math.nan}
    store.save_result(run_id, "deem", frame)
    assert frame.attrs  # the caller's frame is left as it was
    assert store.load(run_id).results["deem"].attrs == {}
    frame.to_parquet(store.run_dir(run_id) / "results" / "old.parquet")  # written before: attrs in the file
    assert store.load(run_id).results["old"].attrs == {}


def test_the_runs_folder_is_private_to_the_server_user(tmp_path):
    # every visitor's uploads, gold labels, models and the index lie below it, written 0644: a folder of 0755 let any
    # account on the host read them all (attack round 5)
    import stat

    root = tmp_path / "shared_runs"
    root.mkdir(mode=0o755)
    root.chmod(0o755)
    store = RunStore(root)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    created = RunStore(tmp_path / "new" / "runs").root  # created by the store
    assert stat.S_IMODE(created.stat().st_mode) & 0o077 == 0
    assert store.list().empty


def test_the_index_keeps_a_salted_hash_of_the_address(tmp_path):
    # unsalted, the 2^32 IPv4 addresses were hashed back in minutes (attack round 6): each run store has its secret
    from deem_studio.runs import client_key

    first, second = RunStore(tmp_path / "a"), RunStore(tmp_path / "b")
    data, _ = tiny()
    run = first.create("train", {}, data=data, owner="o" * 24, client="203.0.113.9")
    stored = first.get(run)["client"]
    assert stored not in (client_key("203.0.113.9"), client_key("203.0.113.9", second._salt))
    assert stored == client_key("203.0.113.9", RunStore(tmp_path / "a")._salt)  # the same store: the same secret
    assert first.usage(client="203.0.113.9")[0] == 1 and second.usage(client="203.0.113.9")[0] == 0
    assert oct((tmp_path / "a" / ".client_salt").stat().st_mode & 0o777) == "0o600"


def test_a_picked_learning_rate_is_kept_per_owner_and_data_set_and_bounded(tmp_path, monkeypatch):
    from deem_studio import runs

    store = RunStore(tmp_path / "runs")
    assert store.pick("alice", "f1") is None
    store.save_pick("alice", "f1", {"lr": 0.03, "source": "picked on sweep x", "fingerprint": "f1"})
    store.save_pick("alice", "f1", {"lr": 0.1, "source": "typed", "fingerprint": "f1"})  # replaces
    store.save_pick("bob", "f1", {"lr": 0.3, "source": "typed", "fingerprint": "f1"})
    assert store.pick("alice", "f1")["lr"] == 0.1 and store.pick("alice", "f1")["source"] == "typed"
    assert store.pick("bob", "f1")["lr"] == 0.3 and store.pick("alice", "f2") is None
    store.save_pick("alice", "f2", {"lr": 0.01, "source": "x" * runs.MAX_PICK_CHARS})  # too long: not kept
    assert store.pick("alice", "f2") is None
    store.save_pick("alice", "f3", {"lr": float("nan"), "source": "typed"})  # kept, but not a rate: none comes back
    assert store.pick("alice", "f3") is None
    for i in range(runs.PICKS_PER_OWNER + 5):  # only the latest data sets' picks of one owner are kept
        store.save_pick("carol", f"d{i}", {"lr": 0.01 * (i + 1), "source": "typed"})
    kept = [i for i in range(runs.PICKS_PER_OWNER + 5) if store.pick("carol", f"d{i}")]
    assert kept == list(range(5, runs.PICKS_PER_OWNER + 5))
    assert store.pick("alice", "f1")["lr"] == 0.1  # another owner's picks are not dropped
    again = RunStore(tmp_path / "runs")  # kept across a restart of the server
    assert again.pick("bob", "f1")["lr"] == 0.3
    # and at most PICKS_KEPT in all, the oldest dropped first (owner keys cost nothing to make)
    monkeypatch.setattr(runs, "PICKS_KEPT", 10)
    for i in range(12):
        store.save_pick(f"visitor{i}", "f", {"lr": 0.01, "source": "typed"})
    with sqlite3.connect(store.db_path) as con:
        assert con.execute("SELECT COUNT(*) FROM picks").fetchone()[0] == 10
    assert store.pick("visitor11", "f") and store.pick("visitor2", "f") and not store.pick("visitor1", "f")
    # a workspace that launched runs keeps its pick while made-up ones (no run) are dropped first (attack round 9)
    store.create("train", {}, owner="dora", status="finished")
    store.save_pick("dora", "f", {"lr": 0.05, "source": "typed"})
    for i in range(30):
        store.save_pick(f"made-up{i}", "f", {"lr": 0.01, "source": "typed"})
    assert store.pick("dora", "f")["lr"] == 0.05 and store.pick("made-up29", "f") and not store.pick("made-up0", "f")
    with sqlite3.connect(store.db_path) as con:
        assert con.execute("SELECT COUNT(*) FROM picks").fetchone()[0] == 10


def test_a_stored_runs_status_reads_its_curves_alone(tmp_path, monkeypatch):
    """A run no longer in memory: its snapshot reads the history, never the results tables (it parsed every one on
    each call, three times a page run: 0.5-5 s and +580 MB a call on a 60,000 x 200-class run; attack round 14)."""
    import deem_studio.runs as runs_module
    from deem_studio.jobs import JobManager

    store = RunStore(tmp_path)
    data, _ = tiny()
    run_id = store.create("train", {"epochs": 1}, data=data)
    model = DEEM(n_layers=0, epochs=1, seed=0, device="cpu").fit(data)
    store.save_history(run_id, model.history_)
    store.save_result(run_id, "deem", model.results_frame())
    store.save_result(run_id, "mv", model.results_frame())
    store.update_status(run_id, "finished")
    read = []
    real = runs_module._read_table
    monkeypatch.setattr(runs_module, "_read_table", lambda stem: read.append(stem.name) or real(stem))
    snap = JobManager(store).snapshot(run_id)
    assert read == ["history"]
    assert snap.status == "finished" and not snap.live and len(snap.history) == len(model.history_)
    # a damaged history shows no curves; the run's state is still read
    (store.run_dir(run_id) / "history.parquet").write_bytes(b"PAR1 not parquet")
    snap = JobManager(store).snapshot(run_id)
    assert snap.status == "finished" and len(snap.history) == 0


def test_a_results_table_without_labels_is_a_problem_of_its_own(tmp_path):
    """A stored results table with no label column failed the Train page ("KeyError: 'label'"; attack round 15): it
    is left out with a problem of its own, the other tables read."""
    store = RunStore(tmp_path)
    data, _ = tiny()
    run_id = store.create("train", {}, data=data)
    model = DEEM(n_layers=0, epochs=1, seed=0, device="cpu").fit(data)
    store.save_result(run_id, "deem", model.results_frame())
    store.save_result(run_id, "mv", model.results_frame().drop(columns="label"))
    loaded = store.load(run_id, with_data=False)
    assert list(loaded.results) == ["deem"]
    assert loaded.problems == {"results/mv": "its stored table has no label column"}
    assert list(store.load(run_id, result_columns=["label"]).results) == ["deem"]


def test_a_run_folder_damaged_by_hand_is_read_around_its_damage_without_the_servers_path(tmp_path):
    """Attack round 20: a dataset.json of numbers raised TypeError, a truncated gold.parquet a raw pyarrow error naming
    the server's path, a file in place of the results folder NotADirectoryError."""
    import shutil

    from deem_core.data.annotations import DataError

    store = RunStore(tmp_path)
    data, gold = tiny()
    run_id = store.create("train", {}, data=data, gold=gold)
    folder = tmp_path / run_id
    (folder / "dataset.json").write_text('{"classes": 5, "warnings": 7, "layout": 3}', encoding="utf-8")
    loaded, _ = store.load_data(run_id)
    assert loaded.fingerprint() == data.fingerprint() and loaded.warnings == []
    shutil.rmtree(folder / "results", ignore_errors=True)
    (folder / "results").write_text("not a folder")
    read = store.load(run_id, with_data=False)
    assert read.problems == {"results": "its stored results are not a folder"} and read.results == {}
    gold_file = next(folder.glob("gold.*"))
    gold_file.write_bytes(gold_file.read_bytes()[:40])
    with pytest.raises(DataError, match=r"^its stored gold labels could not be read \(\w+\)$") as caught:
        store.load_data(run_id)
    assert str(tmp_path) not in str(caught.value)
    assert "annotations" in store.load(run_id).problems  # (the page says it; it does not fail)


def test_files_planted_in_a_run_folder_are_not_served_or_read_whole(tmp_path):
    """Attack round 43 (with write access to the runs folder): a model file linked to /etc/passwd was served by the
    "Fitted model" download, and a 400 MB metrics.json took the server from 2.4 to 7.6 GB when its run was opened.
    The server writes neither a link nor a side file of that size: both are refused, the rest of the run read."""
    from deem_studio.runs import MAX_SIDE_JSON_BYTES

    store = RunStore(tmp_path)
    data, gold = tiny()
    run_id = store.create("train", {}, data=data, gold=gold)
    folder = tmp_path / run_id
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0")
    (folder / "model_deem.pt").symlink_to(secret)
    (folder / "metrics.json").symlink_to(secret)
    with open(folder / "notes.json", "wb") as big:  # (sparse: no disk taken)
        big.truncate(MAX_SIDE_JSON_BYTES + 1)
    (folder / "fine.json").write_text('{"a": 1}')
    os.mkfifo(folder / "pipe.json")  # (a FIFO blocked the read; the diff's read)
    (tmp_path / "secret.json").write_text('{"api_key": "s3cr3t"}')
    (folder / "config.json").unlink()
    (folder / "config.json").symlink_to(tmp_path / "secret.json")  # (served by the "Run configuration" download)
    loaded = store.load(run_id, with_data=False)
    assert loaded.model_path("deem") is None and loaded.model_names() == []
    assert set(loaded.problems) == {"metrics", "notes", "pipe", "config"} and "metrics" not in loaded.extras
    assert loaded.extras["fine"] == {"a": 1} and "s3cr3t" not in str(loaded.config)


def test_a_stored_file_is_checked_on_the_file_opened_not_by_its_name(tmp_path, monkeypatch):
    """Attack round 44: the run store checked a file by name (lstat), then opened it by name, so a file swapped for a
    link in between was read; the "Fitted model" download read the model by name when pressed, following a link, with
    no size limit. Every stored JSON and the model's download now open the file without following a link and check
    the file they opened."""
    from deem_studio import runs
    from deem_studio.runs import StoredFileTooLarge, read_plain

    store = RunStore(tmp_path)
    data, gold = tiny()
    run_id = store.create("train", {}, data=data, gold=gold)
    folder = tmp_path / run_id
    (folder / "model_deem.pt").write_bytes(b"model bytes")
    assert store.model_bytes(run_id, "deem") == b"model bytes"
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0")
    (folder / "model_deem.pt").unlink()
    (folder / "model_deem.pt").symlink_to(secret)  # swapped after the page listed it
    with pytest.raises(OSError):
        store.model_bytes(run_id, "deem")
    os.mkfifo(folder / "pipe.json")
    with pytest.raises(StoredFileTooLarge):
        read_plain(folder / "pipe.json")  # (no wait for a writer)
    (folder / "big.pt").write_bytes(b"x" * 100)
    with pytest.raises(StoredFileTooLarge):
        read_plain(folder / "big.pt", 99)
    assert read_plain(folder / "big.pt", 100) == b"x" * 100
    # the check and the read are one: a check by name that passes (the race's first half) lets nothing through
    (tmp_path / "secret.json").write_text('{"api_key": "s3cr3t"}')
    (folder / "swapped.json").symlink_to(tmp_path / "secret.json")
    monkeypatch.setattr(runs, "_plain_file", lambda path, limit=None: path)
    loaded = store.load(run_id, with_data=False)
    assert "swapped" in loaded.problems and "s3cr3t" not in str(loaded.extras)


def test_a_run_of_a_reused_pid_or_of_another_host_past_the_time_limit_is_not_running_for_good(tmp_path):
    """Attack round 28: a run left "running" by a server under another host name (a recreated container), or whose
    old pid now names another live process (after a reboot), stayed "running" after every restart, and its owner
    could neither cancel nor delete it."""
    import time as clock

    from deem_studio.runs import _process_started

    store = RunStore(tmp_path)
    reused = store.create("train", {}, status="running")
    away = store.create("train", {}, status="running")
    recent_away = store.create("train", {}, status="running")
    alive = store.create("train", {}, status="running")
    booted = _process_started(1)
    if booted is None:
        pytest.skip("no /proc here")
    with sqlite3.connect(tmp_path / "runs.sqlite") as con:
        # created before process 1 started (before the reboot), pid 1 alive now: another process
        con.execute("UPDATE runs SET pid = 1, created_at = ? WHERE run_id = ?", (booted - 100, reused))
        con.execute("UPDATE runs SET host = 'old-container', created_at = ? WHERE run_id = ?",
                    (clock.time() - 3 * 3600, away))
        con.execute("UPDATE runs SET host = 'old-container' WHERE run_id = ?", (recent_away,))
        con.execute("UPDATE runs SET pid = ? WHERE run_id = ?", (os.getppid(), alive))  # a live server's run
    marked = RunStore(tmp_path).mark_stale_running_as_failed(time_limit=2 * 3600)
    assert set(marked) == {reused, away}
    assert store.get(recent_away)["status"] == "running" and store.get(alive)["status"] == "running"
    store.delete(reused)  # its owner can delete it now


def test_a_runs_copy_of_its_answers_keeps_each_code_in_the_fewest_bytes_and_reads_back_the_same(tmp_path):
    """Attack round 58: each training stored its answers' codes as int64 (~24 bytes an answer, ~12x a gzipped upload),
    kept when cancelled: one tab filled 660 MB a minute within the quotas. The codes go in the fewest bytes they fit
    and read back as int64, the same data set."""
    rng = np.random.default_rng(2)
    n = 60_000
    df = pd.DataFrame({"task": rng.integers(0, 20_000, n), "worker": rng.integers(0, 300, n),
                       "label": rng.integers(0, 4, n)}).drop_duplicates(["task", "worker"])
    data = AnnotationSet.from_long(df)
    store = RunStore(tmp_path)
    run_id = store.create("train", {}, data=data)
    size = (tmp_path / run_id / "annotations.npz").stat().st_size
    assert size < data.n_answers * 8, (size, data.n_answers)  # (int64: 24 bytes an answer; now 2 + 2 + 1)
    back = store.load(run_id).data
    assert back.fingerprint() == data.fingerprint()
    assert back.task_codes.dtype == back.worker_codes.dtype == back.label_codes.dtype == np.int64
