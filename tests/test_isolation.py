"""Sessions are isolated (issue 6, "many users"): two users of one server never see each other's data, runs or
state; a run is shared only by its id (read-only), and a workspace only by its owner key (issue 14).

Each ``AppTest`` is a separate browser session of the same process (same job manager, same run store), which is
what two users of one ``streamlit run`` server are.
"""

from __future__ import annotations

import re

from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from deem_studio.jobs import get_manager

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 60


def csv_of(first_task: int, n_tasks: int) -> bytes:
    df = pd.read_csv(ROOT / "sample_data" / "condind.csv")
    return df[(df["task"] >= first_task) & (df["task"] < first_task + n_tasks)].to_csv(index=False).encode()


def session(**params: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


def state(at: AppTest, key: str):
    return at.session_state[key] if key in at.session_state else None


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    parts = []
    for kind in ("markdown", "caption", "info", "success", "warning", "error", "title", "subheader", "header"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def load(at: AppTest, name: str, content: bytes) -> AppTest:
    at.file_uploader(key="upload_annotations").set_value((name, content, "text/csv")).run()
    at.button(key="load_files").click().run()
    return ok(at)


def train_mv(at: AppTest) -> str:
    """A quick training (majority vote only) from this session; returns its run id once it ended."""
    at.switch_page("pages/train.py").run()
    at.multiselect(key="train_methods").set_value(["mv"])
    at.button(key="train_launch").click().run()
    ok(at)
    run_id = at.session_state["train_run"]
    assert get_manager().wait(run_id, 60).status == "finished"
    return run_id


def runs_listed(at: AppTest) -> list[str]:
    at.switch_page("pages/runs.py").run()
    ok(at)
    if "No runs in this workspace yet" in texts(at):
        return []
    return list(at.dataframe[0].value["run id"])


def test_two_sessions_do_not_share_data_runs_or_state(runs_dir):
    alice, bob = session(), session()
    assert alice.session_state["ws"] != bob.session_state["ws"]  # each session gets its own workspace
    load(alice, "alice.csv", csv_of(0, 120))
    load(bob, "bob.csv", csv_of(1000, 80))
    assert alice.session_state["dataset"]["name"] == "alice.csv"
    assert bob.session_state["dataset"]["name"] == "bob.csv"
    assert alice.session_state["dataset"]["data"].n_tasks == 120
    assert bob.session_state["dataset"]["data"].n_tasks == 80

    alice_run = train_mv(alice)
    assert runs_listed(alice) == [alice_run]
    assert runs_listed(bob) == []  # bob's Runs page does not list alice's run
    # nothing of alice's run in bob's session: no current run, results empty, URL without it
    assert state(bob, "train_run") is None and state(bob, "run") is None
    bob.switch_page("pages/results.py").run()
    assert "No training run on these data yet: train on the Train page." in texts(ok(bob))  # no Runs page named:
    # bob has no training there to reopen (walkthrough 26)
    assert "run" not in bob.query_params

    bob_run = train_mv(bob)
    assert runs_listed(alice) == [alice_run] and runs_listed(bob) == [bob_run]
    # the index agrees: one owner per run
    index = get_manager().store.list(all_owners=True).set_index("run_id")["owner"]
    assert index[alice_run] == alice.session_state["ws"] and index[bob_run] == bob.session_state["ws"]
    # alice's session still holds her own data after all of bob's activity
    assert alice.session_state["dataset"]["name"] == "alice.csv"
    # bob on another data set: now the Runs page lists a training of his to reopen, and Results names it
    bob.switch_page("pages/data.py").run()
    load(bob, "bob2.csv", csv_of(2000, 50))
    bob.switch_page("pages/results.py").run()
    assert ("No training run on these data yet: train on the Train page, or reopen a training on the Runs page."
            in texts(ok(bob)))


def test_a_run_is_shared_only_by_its_id(runs_dir):
    alice = session()
    load(alice, "alice.csv", csv_of(0, 100))
    run_id = train_mv(alice)

    carol = session()
    carol.switch_page("pages/runs.py").run()
    carol.text_input(key="runs_by_id").set_value(run_id)
    carol.button(key="runs_open_id").click().run()
    ok(carol)
    assert carol.session_state["train_run"] == run_id
    assert carol.session_state["dataset"]["data"].n_tasks == 100  # the run's data come with it
    # opening a run does not make it carol's: her workspace still lists none, alice's still lists it
    assert runs_listed(carol) == []
    assert runs_listed(alice) == [run_id]

    # the same with a link carrying the run id (what a refresh or a shared address does)
    dave = session(run=run_id)
    assert dave.session_state["train_run"] == run_id and dave.session_state["ws"] != alice.session_state["ws"]
    assert runs_listed(dave) == []


def test_a_link_opens_the_answers_but_not_the_gold_labels(runs_dir):
    """A visitor's own training with a large gold-label weight gave back a linked run's gold labels (72% of 60
    secret labels; majority vote 23%; attack round 14): they stay with the owner; the run's accuracy still shows."""
    alice = session()
    load(alice, "alice.csv", csv_of(0, 100))
    truth = pd.read_csv(ROOT / "sample_data" / "condind.truth.csv")
    truth = truth[truth["task"] < 100].to_csv(index=False).encode()
    alice.file_uploader(key="upload_gold").set_value(("truth.csv", truth, "text/csv")).run()
    ok(alice)
    assert alice.session_state["dataset"]["gold"] is not None
    run_id = train_mv(alice)

    carol = session()  # opened by its id on the Runs page: the notice says where the gold labels are
    carol.switch_page("pages/runs.py").run()
    carol.text_input(key="runs_by_id").set_value(run_id)
    carol.button(key="runs_open_id").click().run()
    assert "its 100 gold labels stay with its owner" in texts(ok(carol))
    assert carol.session_state["dataset"]["data"].n_tasks == 100 and carol.session_state["dataset"]["gold"] is None
    dave = session(run=run_id)  # by its link (said too: walkthrough 29)
    assert dave.session_state["dataset"]["data"].n_tasks == 100 and dave.session_state["dataset"]["gold"] is None
    assert (f"The annotations of run {run_id} are loaded; its 100 gold labels stay with its owner: its accuracies "
            f"show, the labels themselves are not loaded here.") in texts(ok(dave)).replace("\\", "")
    # a sweep of the same data by its link: no accuracies to speak of (walkthrough 42: "its accuracies show" there)
    alice.switch_page("pages/sweep.py").run()
    alice.text_input(key="sweep_lrs").set_value("0.01, 0.1")
    alice.number_input(key="sweep_epochs").set_value(2)
    alice.button(key="sweep_launch").click().run()
    sweep = alice.session_state["sweep_run"]
    assert get_manager().wait(sweep, 120).status == "finished"
    erin = session(run=sweep)
    said = texts(ok(erin)).replace("\\", "")
    assert (f"The annotations of run {sweep} are loaded; its 100 gold labels stay with its owner: the labels "
            f"themselves are not loaded here.") in said and "accuracies" not in said
    dave.switch_page("pages/results.py").run()
    shown = texts(ok(dave)).replace("\\", "")  # (Markdown escapes) the run's own scores still show
    assert ("Accuracy against the gold labels (on the 100 tasks with a gold label; on that many tasks each accuracy is "
            "known to within about 0.09 below and 0.06 above at 95% confidence, so methods closer than that may not differ): "
            "Majority vote 0.8100"
            ) in shown
    # the Train page's confusion against the gold labels would pin the gold label of every task of a predicted class
    # whose column holds one gold class: the visitor gets the accuracies, the owner the matrix too
    dave.switch_page("pages/train.py").run()
    shown = texts(ok(dave))
    assert "**Against the gold labels**" not in shown
    assert not any('"gold"' in chart.proto.spec for chart in dave.get("plotly_chart"))  # (the matrix's axis)
    assert "The confusion matrices against the gold labels stay with the run's owner" in shown
    alice.switch_page("pages/train.py").run()
    assert "**Against the gold labels**" in texts(ok(alice))
    # the owner, in another browser with the owner key (same session state here): the gold labels come back
    again = session()
    again.session_state["owner_key"] = alice.session_state["owner_key"]
    again.run()
    again.switch_page("pages/runs.py").run()
    again.text_input(key="runs_by_id").set_value(run_id)
    again.button(key="runs_open_id").click().run()
    assert ok(again).session_state["dataset"]["gold"] is not None


def test_the_owner_key_not_the_address_is_the_key_to_a_workspace(runs_dir):
    alice = session()
    load(alice, "alice.csv", csv_of(0, 60))
    run_id = train_mv(alice)
    workspace, key = alice.session_state["ws"], alice.session_state["owner_key"]
    # an address with the workspace id (what older versions put in the URL) gives nothing: dropped, not used
    visitor = session(ws=workspace)
    assert visitor.session_state["ws"] != workspace and "ws" not in visitor.query_params
    assert runs_listed(visitor) == []
    # the same person tomorrow in the same browser (its cookie holds the key): the runs are listed again
    tomorrow = AppTest.from_file(APP, default_timeout=TIMEOUT)
    tomorrow.session_state["owner_key"] = key
    tomorrow.run()
    assert tomorrow.session_state["ws"] == workspace
    assert runs_listed(tomorrow) == [run_id]
    # and the latest run's data with it (it came back only with a run's address: a new tab said "none loaded";
    # walkthrough 19)
    assert state(tomorrow, "dataset")["name"] == "alice.csv" and tomorrow.session_state["train_run"] == run_id
    # another browser: the owner pastes the key on the Runs page
    elsewhere = session()
    assert runs_listed(elsewhere) == []
    load(elsewhere.switch_page("pages/data.py").run(), "own.csv", csv_of(1, 60))
    own = train_mv(elsewhere)  # a run of that browser's own key
    own_key = elsewhere.session_state["owner_key"]
    elsewhere.switch_page("pages/runs.py").run()
    elsewhere.text_input(key="runs_owner_key").set_value(f"  {key.upper()} ")
    elsewhere.button(key="runs_use_key").click().run()
    said = re.sub(r"\\(.)", r"\1", texts(ok(elsewhere)))  # (the page escapes Markdown)
    assert elsewhere.session_state["ws"] == workspace and runs_listed(elsewhere) == [run_id]
    # its own run went out of the list: the notice gives its key back (it said nothing of it; walkthrough 34)
    assert "now uses that owner key: 1 run in its workspace; the 1 run of this browser's" in said, said
    assert f"previous key stays with it: to come back to it, use that key again ({own_key})" in said
    assert own != run_id
    # a wrong key is refused with a message and changes nothing
    elsewhere.text_input(key="runs_owner_key").set_value("not-a-key")
    elsewhere.button(key="runs_use_key").click().run()
    assert "not an owner key" in texts(ok(elsewhere)) and elsewhere.session_state["ws"] == workspace


@pytest.mark.parametrize("bad", ["../../etc", "ABCDEF0123456789", "0123", "x" * 16, "0123456789abcdef'--",
                                 "0123456789abcdef"])
def test_any_workspace_in_the_url_is_dropped(runs_dir, bad):
    at = session(ws=bad)
    ok(at)
    assert at.session_state["ws"] != bad and len(at.session_state["ws"]) == 24
    assert "ws" not in at.query_params
    assert runs_listed(at) == []
