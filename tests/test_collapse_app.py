"""A collapsing configuration driven through the Train page: recovery is shown; when nothing healthy is left the
page says so clearly (the run fails with the reason, no labels)."""

from __future__ import annotations

from conftest import read_sample
from deem_core.methods import deem as deem_module
from test_app import new_app, no_problem, texts, unescape, upload, wait_done


def _experts_csv() -> bytes:
    df, _ = read_sample("digits_experts", n_tasks=900)
    return df.to_csv(index=False).encode()


def _launch_collapsing(at, epochs: int = 15):
    at.switch_page("pages/train.py").run()
    no_problem(at)
    at.multiselect(key="train_methods").set_value(["deem"])
    at.number_input(key="train_layers").set_value(2)
    at.number_input(key="train_epochs").set_value(epochs)
    at.number_input(key="train_lr").set_value(30.0)
    at.selectbox(key="train_init").set_value("mv")
    at.button(key="train_launch").click().run()
    no_problem(at)
    return at.session_state["train_run"]


def test_train_page_shows_the_recovery_of_a_collapsing_run(runs_dir):
    at = upload(new_app(), "experts.csv", _experts_csv())
    run_id = _launch_collapsing(at)
    snap = wait_done(run_id, timeout=300)
    assert snap.status == "finished", snap.message
    at.run()
    no_problem(at)
    notes = texts(at)
    assert "collapse at epoch" in notes and "restarted from" in notes
    shown = "\n".join(str(t.value) for t in at.code)  # the evidence, in monospace
    assert "collapse: mv start: collapse at epoch 2" in shown
    # the choice is said once, in words (the caption); the text keeps the collapse evidence
    assert "started from majority vote, 2 layers" in notes or "FALLBACK: the labels come from" in notes
    at.switch_page("pages/results.py").run()
    no_problem(at)
    # the choice, shown beside the labels, a note as the others there
    assert any(unescape(str(t.value)).startswith("Started from ") for t in at.caption), [t.value for t in at.caption]


def test_train_page_says_clearly_when_it_refuses(runs_dir, monkeypatch):
    monkeypatch.setattr(deem_module, "major_classes", lambda *args, **kwargs: 11)  # never healthy
    at = upload(new_app(), "experts.csv", _experts_csv())
    run_id = _launch_collapsing(at, epochs=2)
    snap = wait_done(run_id, timeout=300)
    assert snap.status == "failed"
    at.run()
    no_problem(at)
    errors = [str(e.value).replace("\\", "") for e in at.error]  # as rendered (the text is Markdown-escaped)
    assert any(e.startswith("The training failed:") and "collapsed" in e and "no healthy model" in e for e in errors)
