"""What a new user tripped over on the Data page (found walking through the dashboard with files of our own):
a long file whose columns have names the detection does not know, a format chosen for one file that stuck to
the next, the engine's Python/CLI option names in the page's messages, and column names as chart legends."""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from test_app import APP, TIMEOUT

from deem_core.data.readers import preview


def ensemble_csv(columns=("sample_id", "classifier", "predicted_class"), by_task: bool = False) -> bytes:
    """Predictions of 3 classifiers on 30 samples, one row per prediction, sorted by classifier (or by task)."""
    rows = [(f"s-{i:03d}", model, ("malignant", "benign")[(i + k) % 3 == 0])
            for k, model in enumerate(("logreg", "tree", "knn")) for i in range(30)]
    frame = pd.DataFrame(rows, columns=list(columns))
    if by_task:
        frame = frame.sort_values(columns[0], kind="stable")
    return frame.to_csv(index=False).encode()


def named(content: bytes, name: str) -> io.BytesIO:
    source = io.BytesIO(content)
    source.name = name
    return source


def text_of(at: AppTest) -> str:
    return "\n".join(str(t.value) for t in at.text)


def unescaped(markdown: str) -> str:
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown).replace("\u2060", "")


def test_the_read_as_line_says_which_column_became_which():
    note = preview(named(ensemble_csv(("task", "worker", "label")), "a.csv")).note
    assert note == ("a.csv: read as long layout (task, worker, label): tasks from column 'task', workers from column "
                    "'worker', labels from column 'label'")


def test_an_ensemble_file_named_by_classifier_and_prediction_is_read_long():
    shown = preview(named(ensemble_csv(), "ensemble.csv"))
    assert shown.layout == "long" and shown.problem is None
    assert "workers from column 'classifier', labels from column 'predicted_class'" in shown.note


@pytest.mark.parametrize("by_task, says", [(False, "share no answer"), (True, "is on 3 of the first 20 rows")])
def test_a_long_file_with_unknown_column_names_is_not_silently_read_as_wide(by_task, says):
    """Read as wide, the model names would be 'answers' of a worker called 'clf': the preview says it looks long."""
    shown = preview(named(ensemble_csv(("sample_id", "clf", "out"), by_task), "x.csv"))
    assert shown.layout == "wide"
    assert shown.problem and says in shown.problem and "choose the format 'long'" in shown.problem


def test_a_real_wide_file_raises_no_such_problem():
    wide = b"item,ann_1,ann_2,ann_3\nq0,yes,no,yes\nq1,no,no,yes\nq2,yes,,no\n"
    assert preview(named(wide, "w.csv")).problem is None


def upload(at: AppTest, name: str, content: bytes) -> AppTest:
    at.file_uploader(key="upload_annotations").set_value((name, content, "text/csv")).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_format_chosen_for_one_file_does_not_stick_to_the_next(runs_dir):
    at = upload(AppTest.from_file(APP, default_timeout=TIMEOUT).run(), "first.csv",
                ensemble_csv(("sample_id", "clf", "out")))
    at.selectbox(key="upload_format").set_value("long").run()
    assert at.selectbox(key="upload_format").value == "long"
    at.file_uploader(key="upload_annotations").set_value(
        ("Batch_1_batch_results.csv", b"HITId,WorkerId,AssignmentStatus,Input.text,Answer.sentiment\n"
                                      b"H1,W1,Approved,good,positive\nH1,W2,Approved,good,negative\n", "text/csv")).run()
    assert not at.exception
    assert at.selectbox(key="upload_format").value == "auto"
    assert "read as Amazon Mechanical Turk batch results" in text_of(at)
    assert any("set back to 'detect automatically'" in str(c.value) for c in at.caption)


def test_the_page_names_its_own_controls_not_the_python_or_cli_options(runs_dir):
    """A conflict read with 'stop and tell me' says which control keeps one answer, not on_conflict / --on-conflict."""
    conflicting = b"task,worker,label\n1,a,x\n1,a,y\n2,a,x\n2,b,y\n"
    at = upload(AppTest.from_file(APP, default_timeout=TIMEOUT).run(), "c.csv", conflicting)
    at.button(key="load_files").click().run()
    errors = [unescaped(str(e.value)) for e in at.error]
    assert any("conflicting labels" in e for e in errors), errors
    said = next(e for e in errors if "conflicting labels" in e)
    assert "under 'When one worker gave one task different labels'" in said
    assert "on_conflict" not in said and "CLI" not in said
    missing = b"task,worker,label\n1,a,x\n1,b,N/A\n2,a,y\n2,b,y\n"
    at = upload(AppTest.from_file(APP, default_timeout=TIMEOUT).run(), "m.csv", missing)
    at.button(key="load_files").click().run()
    warnings = [unescaped(str(w.value)) for w in at.warning]
    said = next(w for w in warnings if "missing label" in w)
    assert "the switch 'Keep None, NaN, null, NA, N/A as labels'" in said and "keep_missing" not in said


def test_class_balance_speaks_words_not_column_names(runs_dir):
    at = upload(AppTest.from_file(APP, default_timeout=TIMEOUT).run(), "e.csv", ensemble_csv())
    at.button(key="load_files").click().run()
    assert not at.exception
    charts = [c for c in at.get("plotly_chart") if "share of the answers" in str(c.proto.spec)]
    assert charts and "answer_share" not in str(charts[0].proto.spec)


def test_gold_labels_with_missing_truths_say_what_was_skipped(runs_dir):
    """A gold file with an empty and an N/A truth: the page said '2 gold labels match' and nothing about the 2
    skipped; now it says so, in the page's words."""
    at = upload(AppTest.from_file(APP, default_timeout=TIMEOUT).run(), "e.csv", ensemble_csv())
    at.button(key="load_files").click().run()
    at.file_uploader(key="upload_gold").set_value(
        ("gold.csv", b"sample_id,truth\ns-000,benign\ns-001,\ns-002,N/A\ns-003,malignant\n", "text/csv")).run()
    assert not at.exception
    warnings = [unescaped(str(w.value)) for w in at.warning]
    said = next((w for w in warnings if "skipped 2 tasks with a missing truth" in w), None)
    assert said is not None, warnings
    assert "the switch 'Keep None, NaN, null, NA, N/A as labels'" in said
    assert any("2 gold labels match" in str(s.value) for s in at.success)


def test_gold_labels_of_other_tasks_are_not_a_success(runs_dir):
    at = upload(AppTest.from_file(APP, default_timeout=TIMEOUT).run(), "e.csv", ensemble_csv())
    at.button(key="load_files").click().run()
    at.file_uploader(key="upload_gold").set_value(("gold.csv", b"task,truth\nq0,yes\nq3,no\n", "text/csv")).run()
    assert not at.exception
    assert not any("gold labels match" in str(s.value) for s in at.success)
    # said at the top, not only in the Gold labels tab, with both sides' first ids; nothing kept, so the sidebar
    # does not say "gold labels" (walkthrough 31). The unknown tasks' labels are counted, not kept: 3 M such rows
    # held 2.3 GB in the session (attack round)
    first = at.session_state["dataset"]["data"].tasks[0]
    assert (f"Read 2 gold labels from gold.csv, but none names a task of these data (its first: “q0”; these data's "
            f"first task: “{first}”); they are not kept: is it the gold file of these data, or does another column "
            f"name the tasks (Mapping, above)?") in [unescaped(str(i.value)) for i in at.warning]  # (a refusal, not
    # news in blue; walkthrough 67)
    assert not any("none names a task" in unescaped(str(i.value)) for i in at.info)
    assert at.session_state["dataset"]["gold"] is None
    assert "gold labels" not in " ".join(str(m.value) for m in [*at.sidebar.markdown, *at.sidebar.caption])
    # and beside the file, where it was uploaded (the notice alone stood at the top; walkthrough 32)
    assert any("but none names a task of these data" in unescaped(str(w.value)) for w in at.warning)


def test_a_gold_file_refused_is_matched_again_when_the_same_files_are_read_with_another_task_column(runs_dir):
    """Walkthrough 41: an MTurk batch read its tasks from an item-id column; the gold file named the HITs. Read again
    with the HIT column as the task, the Gold labels tab kept the refusal of the first reading ("these data's first
    task: R0000") and no gold label was used until the file was removed and uploaded again."""
    rng = np.random.default_rng(41)
    rows = [{"item": f"R{t:04d}", "hit": f"H{t:04d}", "worker": f"w{w}", "label": ["a", "b"][int(rng.random() < 0.5)]}
            for t in range(60) for w in range(3)]
    at = upload(AppTest.from_file(APP, default_timeout=TIMEOUT).run(), "batch.csv",
                pd.DataFrame(rows).to_csv(index=False).encode())
    at.selectbox(key="map_task").set_value("item").run()
    at.button(key="load_files").click().run()
    assert at.session_state["dataset"]["data"].tasks[0] == "R0000"
    gold = "hit,truth\n" + "".join(f"H{t:04d},{'a' if t % 2 else 'b'}\n" for t in range(0, 60, 3))
    at.file_uploader(key="upload_gold").set_value(("gold.csv", gold.encode(), "text/csv")).run()
    assert at.session_state["dataset"]["gold"] is None  # none names a task: refused, and said
    assert any("but none names a task of these data" in unescaped(str(w.value)) for w in at.warning)
    # the same file uploaded again (the uploader is emptied when the page is left; walkthrough 81), the HITs as tasks
    at.file_uploader(key="upload_annotations").set_value(
        ("batch.csv", pd.DataFrame(rows).to_csv(index=False).encode(), "text/csv")).run()
    at.selectbox(key="map_task").set_value("hit").run()
    at.button(key="load_files").click().run()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["dataset"]["data"].tasks[0] == "H0000"
    # the two readings of one file are two data sets, named apart (walkthrough 81: both "batch.csv: 600 tasks ...")
    assert at.session_state["dataset"]["name"] == "batch.csv (tasks from 'hit')"
    gold_now = at.session_state["dataset"]["gold"]
    assert gold_now is not None and len(gold_now) == 20 and gold_now.attrs["file"] == "gold.csv"
    assert not any("none names a task" in unescaped(str(w.value)) for w in at.warning)
    assert any("20 gold labels match" in unescaped(str(m.value)) for m in at.success)
    # another file is no remapping: its data set does not take the gold file of the first one
    other = pd.DataFrame(rows).assign(worker=lambda f: f["worker"] + "x").to_csv(index=False).encode()
    at.file_uploader(key="upload_annotations").set_value(("other.csv", other, "text/csv")).run()
    at.selectbox(key="map_task").set_value("hit").run()
    at.button(key="load_files").click().run()
    at.run()
    assert at.session_state["dataset"]["gold"] is None
    assert any("was read for another data set" in unescaped(str(c.value)) for c in at.caption)


def test_the_sidebar_counts_the_gold_labels_that_can_be_used(runs_dir):
    # a gold file naming tasks of the data but no class of theirs: the sidebar said "gold labels" (walkthrough 34), a
    # green "2 match" stood above the warning (walkthrough 35), and labels that are no class counted as every method's
    # wrong answers (DEEM 0.640 where 0.853 on the usable ones) and stopped diagnostics (walkthrough 36)
    at = upload(AppTest.from_file(APP, default_timeout=TIMEOUT).run(), "e.csv", ensemble_csv())
    at.button(key="load_files").click().run()

    def sidebar() -> str:
        return " ".join(str(m.value) for m in [*at.sidebar.markdown, *at.sidebar.caption])

    at.file_uploader(key="upload_gold").set_value(("gold.csv", b"task,truth\ns-000,7\ns-001,Benign\n",
                                                   "text/csv")).run()
    assert not at.exception and at.session_state["dataset"]["gold"] is None  # none is a class: not kept
    assert "gold label" not in sidebar()
    assert not any("gold labels match" in unescaped(str(m.value)) for m in at.success)
    assert ("Read 2 gold labels from gold.csv, but none is a class of these data (e.g. “7”; 1 of them differs from a class only "
            "in letter case: “Benign” for “benign”); they are not "
            "kept: is it the gold file of these data?") in [unescaped(str(i.value)) for i in at.warning]
    at.file_uploader(key="upload_gold").set_value(("gold2.csv", b"task,truth\ns-000,benign\ns-001,Malignant\n",
                                                   "text/csv")).run()
    gold = at.session_state["dataset"]["gold"]
    assert list(gold) == ["benign"] and gold.attrs["not_classes"] == 1  # scored on the usable one only
    assert "· 1 gold label" in sidebar() and "1 gold labels" not in sidebar()
    # (one in the singular: "1 more name no class ... and are left out"; walkthrough 91)
    assert any("1 gold label matches a task of this data set (from gold2.csv); 1 more names no class of these data (e.g. “Malignant”; it differs "
               "from a class only in letter case: “Malignant” for “malignant”) "
               "and is left out" in unescaped(str(m.value)) for m in at.success)
    # the letter case named
    assert any("gold2.csv: 1 gold label is not among the classes (e.g. “Malignant”; it differs from a class "
               "only in letter case: “Malignant” for “malignant”): it is left out of every accuracy"
               in unescaped(str(w.value))
               for w in at.warning), [w.value for w in at.warning]
    # and the notice at the top says how many are used: the warning goes at the next click (walkthrough 90)
    assert ("Read 2 gold labels from gold2.csv: 1 is used, 1 is not among the classes and is left out."
            in [unescaped(str(i.value)) for i in at.info])


def test_a_label_studio_export_with_another_file_says_what_to_do(runs_dir):
    export = b'[{"id": 1, "data": {"text": "a"}, "annotations": [{"completed_by": 1, "result": [{"from_name": "s", ' \
             b'"to_name": "text", "type": "choices", "value": {"choices": ["x"]}}]}]}]'
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.file_uploader(key="upload_annotations").set_value(
        [("project.json", export, "application/json"), ("e.csv", ensemble_csv(), "text/csv")]).run()
    # said before "Load these files", which stays off (the refusal came only after it, and the data set loaded
    # before stayed; walkthrough 52)
    assert at.button(key="load_files").disabled
    warnings = [unescaped(str(w.value)) for w in at.warning]
    assert any("remove the other files above" in w for w in warnings), warnings
