"""The Data page with the platforms' exports (AppTest): the "read as" line, the mapping controls, the
predictions toggle, gold labels from the export, and the Results page's Label Studio download."""

from __future__ import annotations

import re

import json
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

sys.path.insert(0, str(Path(__file__).resolve().parent / "platform_files"))

import make_fixtures  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")


def new_app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=60).run()


def upload(at: AppTest, fixture) -> AppTest:
    files = [(name, content, "application/octet-stream") for name, content in fixture.files.items()]
    at.file_uploader(key="upload_annotations").set_value(files if len(files) > 1 else files[0]).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def majority_vote_on_the_export() -> AppTest:
    """A new session that loads the Label Studio fixture and launches majority vote on it (the Train page)."""
    at = upload(new_app(), make_fixtures.label_studio())
    at.button(key="load_files").click().run()
    at.switch_page("pages/train.py").run()
    at.multiselect(key="train_methods").set_value(["mv"])
    at.button(key="train_launch").click().run()
    assert not at.exception
    return at


def note(at: AppTest) -> str:
    return "\n".join(t.value for t in at.text)


@pytest.mark.parametrize("name, expected", [
    ("mturk_sentiment", "read as Amazon Mechanical Turk batch results: tasks from columns 'Input.text' + "
                        "'Input.image_url' together, workers from column 'WorkerId', labels from the checkboxes "
                        "'Answer.sentiment' (negative, neutral, positive)"),
    ("toloka", "read as Toloka results: tasks from columns 'INPUT:text' + 'INPUT:lang' together, workers from column "
               "'ASSIGNMENT:worker_id', labels from column 'OUTPUT:result', gold labels from column 'GOLDEN:result' (the "
               "export's control tasks: often easier and given to more workers than the others, so accuracies on them can "
               "read high)"),
    ("label_studio", "read as Label Studio JSON export: tasks from 'id', workers from 'completed_by' (and each "
                     "prediction's 'model_version'), labels from the control 'sentiment' (choices); other controls: "
                     "topic"),
    ("label_studio_min", "read as Label Studio JSON-MIN export: tasks from column 'id', workers from column "
                         "'annotator', labels from column 'sentiment'"),
    ("label_studio_csv", "read as Label Studio CSV export: tasks from column 'id', workers from column 'annotator', "
                         "labels from column 'sentiment'"),
    ("parquet_long", "answers.parquet: read as long layout (task, worker, label) from Parquet"),
])
def test_each_export_shows_how_it_is_read(runs_dir, name, expected):
    at = upload(new_app(), make_fixtures.fixtures()[[f.name for f in make_fixtures.fixtures()].index(name)])
    assert expected in note(at)
    assert not at.error


def test_mturk_label_field_is_chosen_on_the_page_and_loaded(runs_dir):
    at = upload(new_app(), make_fixtures.mturk())
    assert at.selectbox(key="map_label").options == ["(as detected)", "Answer.comment", "Answer.sentiment",
                                                     "Answer.topic"]
    assert "(all of them together)" in at.selectbox(key="map_task").options
    at.selectbox(key="map_label").set_value("Answer.topic").run()
    assert "labels from column 'Answer.topic'" in note(at)
    at.button(key="load_files").click().run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Classes"] == "3" and metrics["Tasks"] == "12"
    assert any("skipped 8 rejected assignments" in str(w.value).replace("\\", "") for w in at.warning)


def test_the_preview_shows_the_columns_read_first(runs_dir):
    # an MTurk export's task, worker and label are far to the right: the grid opened on HITId, HITTypeId, Title, ...
    # (walkthrough, tenth session)
    at = upload(new_app(), make_fixtures.mturk())
    shown = list(at.dataframe[0].value.columns)
    assert shown[:7] == ["Input.text", "Input.image_url", "WorkerId", "Answer.sentiment.negative",
                         "Answer.sentiment.neutral", "Answer.sentiment.positive", "AssignmentStatus"], shown[:8]
    assert "HITId" in shown[4:]


def test_the_label_studio_preview_shows_workers_as_read_and_values_as_json(runs_dir):
    """Walkthrough 79: an export's ``completed_by`` user object showed in the preview grid as Python's
    ``{'id': 3, 'first_name': 'Maya', ...}`` (the reader names the worker by its email), and each result's value as
    ``{'choices': ['pos']}``; the worker is shown as read, the value as the file's JSON."""
    user = {"id": 3, "first_name": "Maya", "email": "maya@labs.example"}
    tasks = [{"id": t, "data": {"text": f"item {t}"},
              "annotations": [{"completed_by": user if w == 0 else {"id": 4 + w, "email": f"w{w}@labs.example"},
                               "result": [{"from_name": "s", "to_name": "text", "type": "choices",
                                           "value": {"choices": ["pos" if (t + w) % 3 else "neg"]}}]}
                              for w in range(3)]} for t in range(1, 21)]
    at = new_app()
    at.file_uploader(key="upload_annotations").set_value(
        ("export.json", json.dumps(tasks).encode(), "application/json")).run()
    assert not at.exception, [e.value for e in at.exception]
    cells = at.dataframe[0].value
    assert list(cells["worker"][:3]) == ["maya@labs.example", "w1@labs.example", "w2@labs.example"]
    assert list(cells["results"][:3]) == ['s: {"choices": ["pos"]}', 's: {"choices": ["pos"]}', 's: {"choices": ["neg"]}']


@pytest.mark.parametrize("odd", [{"result": 3}, {"result": True}, {"result": -1.5}, {"result": "pos"}])
def test_a_label_studio_result_that_is_no_list_is_skipped_in_the_preview_as_in_the_read(runs_dir, odd):
    """Attack round 50: an annotation whose "result" was a number made the Data page say "Result_int.json: TypeError:
    'int' object is not iterable" (the file's name capitalised) and kept Load off, where the CLI skips that answer
    and reads the rest."""
    tasks = [{"id": t, "data": {"text": f"item {t}"},
              "annotations": [{"completed_by": w, "result": [{"from_name": "s", "to_name": "text", "type": "choices",
                                                              "value": {"choices": ["pos" if (t + w) % 3 else "neg"]}}]}
                              for w in range(3)]} for t in range(1, 21)]
    tasks[0]["annotations"][0] = {"completed_by": 0, **odd}
    at = new_app()
    at.file_uploader(key="upload_annotations").set_value(
        ("result_int.json", json.dumps(tasks).encode(), "application/json")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    # the preview says that answer is not read (its row's results cell was empty)
    assert at.dataframe[0].value["results"].iloc[0] == "(no result: not read)"
    assert at.dataframe[0].value["results"].iloc[1].startswith("s: ")
    assert not at.button(key="load_files").disabled
    at.button(key="load_files").click().run()
    assert not at.error, [e.value for e in at.error]
    assert at.session_state["dataset"]["data"].n_answers == 59  # (20 x 3, less the odd one)


def test_label_studio_predictions_toggle_and_gold(runs_dir):
    fixture = make_fixtures.label_studio()
    at = upload(new_app(), fixture)
    assert at.toggle(key="upload_predictions").value is True
    at.toggle(key="upload_predictions").set_value(False).run()
    assert "workers from 'completed_by', labels" in note(at)  # predictions no longer read as workers
    at.button(key="load_files").click().run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Workers"] == "6"
    assert "2 gold labels match tasks" in "\n".join(str(s.value) for s in at.success)


def test_a_gold_file_says_it_replaces_the_export_s_own_gold_labels(runs_dir):
    at = upload(new_app(), make_fixtures.label_studio())
    at.button(key="load_files").click().run()
    data = at.session_state["dataset"]["data"]
    gold = f"task,truth\n{data.tasks[0]},{data.classes[0]}\n{data.tasks[1]},{data.classes[1]}\n{data.tasks[2]},x\n"
    at.file_uploader(key="upload_gold").set_value(("truth.csv", gold.encode(), "text/csv")).run()
    assert not at.exception
    # (the export's 2 were set aside without a word; walkthrough 22)
    # (its "x" is no class of the data: left out, said; walkthroughs 35 and 36)
    assert ["2 gold labels match tasks of this data set (from truth.csv); they are used in place of the 2 gold labels read with the "
            "data; 1 more names no class of these data (e.g. “x”) and is left out"] == [
                re.sub(r"\\(.)", r"\1", str(s.value)) for s in at.success]  # (shown as text: Markdown escaped)


def test_removing_an_uploaded_gold_file_brings_back_the_export_s_own_and_counts_only_classes(runs_dir):
    """Walkthrough 92: after "Remove the gold labels" of a file uploaded in place of a Toloka export's own gold labels,
    the export's did not come back (the data had to be read again); and "in place of the 3 gold labels read with the
    data" counted one that is no class (left out of every accuracy)."""
    rows = ["INPUT:text\tOUTPUT:result\tGOLDEN:result\tASSIGNMENT:worker_id"]
    for task in range(30):
        golden = {0: "pos", 1: "neg", 2: "maybe"}.get(task, "")  # "maybe" is no label any worker gave
        rows += [f"t{task}\t{'pos' if (task + worker) % 3 else 'neg'}\t{golden}\tw{worker}" for worker in range(4)]
    at = new_app()
    at.file_uploader(key="upload_annotations").set_value(("pool.tsv", ("\n".join(rows) + "\n").encode(),
                                                          "text/tab-separated-values")).run()
    at.button(key="load_files").click().run()
    assert not at.exception
    own = at.session_state["dataset"]["gold"]
    assert dict(own) == {"t0": "pos", "t1": "neg"}
    gold = "task,truth\nt3,pos\nt4,pos\nt5,neg\n"
    at.file_uploader(key="upload_gold").set_value(("mine.csv", gold.encode(), "text/csv")).run()
    shown = [re.sub(r"\\(.)", r"\1", str(s.value)) for s in at.success]
    assert shown == ["3 gold labels match tasks of this data set (from mine.csv); they are used in place of the 2 gold "
                     "labels read with the data"], shown
    at.button(key="drop_gold").click().run()
    assert not at.exception
    assert dict(at.session_state["dataset"]["gold"]) == {"t0": "pos", "t1": "neg"}  # the export's own, back
    said = "\n".join(re.sub(r"\\(.)", r"\1", str(e.value)) for e in [*at.info, *at.success, *at.caption])
    assert "The gold labels of mine.csv were removed; the 2 gold labels read with the data are used again." in said, said
    assert "2 gold labels match tasks of this data set (read with the data)" in said, said
    assert "The gold labels of mine.csv were removed and are not used (those above were read with the data)" in said
    at.button(key="drop_gold").click().run()  # a second removal removes the export's own too
    assert at.session_state["dataset"]["gold"] is None and not at.exception
    # and a file uploaded after it is not said to replace them (read 46)
    at.file_uploader(key="upload_gold").set_value(("again.csv", gold.encode(), "text/csv")).run()
    shown = [re.sub(r"\\(.)", r"\1", str(s.value)) for s in at.success]
    assert shown == ["3 gold labels match tasks of this data set (from again.csv)"], shown


def test_an_uploaded_gold_file_stays_in_use_when_the_export_is_loaded_again(runs_dir):
    """Attack round 49: loading the same export again replaced the uploaded file's gold labels by the export's own
    without a word (the box still showing the file), and "Remove the gold labels" then removed the export's."""
    rows = ["INPUT:text\tOUTPUT:result\tGOLDEN:result\tASSIGNMENT:worker_id"]
    for task in range(30):
        golden = {0: "pos", 1: "neg"}.get(task, "")
        rows += [f"t{task}\t{'pos' if (task + worker) % 3 else 'neg'}\t{golden}\tw{worker}" for worker in range(4)]
    at = new_app()
    at.file_uploader(key="upload_annotations").set_value(("pool.tsv", ("\n".join(rows) + "\n").encode(),
                                                          "text/tab-separated-values")).run()
    at.button(key="load_files").click().run()
    at.file_uploader(key="upload_gold").set_value(("mine.csv", b"task,truth\nt3,pos\nt4,pos\nt5,neg\n",
                                                   "text/csv")).run()
    at.button(key="load_files").click().run()  # the same export again
    assert not at.exception
    assert dict(at.session_state["dataset"]["gold"]) == {"t3": "pos", "t4": "pos", "t5": "neg"}
    shown = [re.sub(r"\\(.)", r"\1", str(s.value)) for s in at.success]
    assert shown == ["3 gold labels match tasks of this data set (from mine.csv); they are used in place of the 2 gold "
                     "labels read with the data"], shown
    at.button(key="drop_gold").click().run()
    assert dict(at.session_state["dataset"]["gold"]) == {"t0": "pos", "t1": "neg"}  # the export's own, back
    # the same after another data set was loaded between (its gold labels put aside with it; read 48)
    at.file_uploader(key="upload_gold").set_value(("again.csv", b"task,truth\nt6,pos\nt7,neg\n", "text/csv")).run()
    other = "task,worker,label\n" + "".join(f"x{t},v{w},{'ab'[(t + w) % 2]}\n" for t in range(20) for w in range(3))
    at.file_uploader(key="upload_annotations").set_value(("other.csv", other.encode(), "text/csv")).run()
    at.button(key="load_files").click().run()
    assert at.session_state["dataset"]["data"].n_tasks == 20
    at.file_uploader(key="upload_annotations").set_value(("pool.tsv", ("\n".join(rows) + "\n").encode(),
                                                          "text/tab-separated-values")).run()
    at.button(key="load_files").click().run()
    assert not at.exception
    assert dict(at.session_state["dataset"]["gold"]) == {"t6": "pos", "t7": "neg"}, dict(at.session_state["dataset"]["gold"])


def test_an_export_whose_own_gold_labels_are_no_class_has_none_to_bring_back(runs_dir):
    """Read 46: an export whose gold labels were all of no class kept an empty set "to bring back": removing an
    uploaded file's labels said "the 0 gold labels read with the data are used again"."""
    rows = ["INPUT:text\tOUTPUT:result\tGOLDEN:result\tASSIGNMENT:worker_id"]
    for task in range(30):
        golden = {0: "maybe", 1: "perhaps"}.get(task, "")  # labels no worker gave
        rows += [f"t{task}\t{'pos' if (task + worker) % 3 else 'neg'}\t{golden}\tw{worker}" for worker in range(4)]
    at = new_app()
    at.file_uploader(key="upload_annotations").set_value(("pool.tsv", ("\n".join(rows) + "\n").encode(),
                                                          "text/tab-separated-values")).run()
    at.button(key="load_files").click().run()
    assert not at.exception and at.session_state["dataset"]["own_gold"] is None
    at.file_uploader(key="upload_gold").set_value(("mine.csv", b"task,truth\nt3,pos\n", "text/csv")).run()
    at.button(key="drop_gold").click().run()
    assert at.session_state["dataset"]["gold"] is None and not at.exception
    said = "\n".join(str(e.value) for e in [*at.info, *at.success])
    assert "used again" not in said, said


def test_results_page_offers_label_studio_predictions_keyed_by_the_export(runs_dir):
    import pandas as pd

    from deem_core.data.formats.writers import serialise
    from deem_studio.jobs import get_manager

    from deem_studio import capacity

    at = majority_vote_on_the_export()
    run_id = at.session_state["train_run"]
    manager = get_manager()
    deadline = time.time() + 60
    while time.time() < deadline and not manager.snapshot(run_id).done:
        time.sleep(0.2)
    sizes = []
    real = capacity.building_download

    def recording(build, parties=(), expected_bytes=None):
        sizes.append(expected_bytes)
        return real(build, parties, expected_bytes)

    with pytest.MonkeyPatch.context() as patch:  # each file's expected size, as the page passes it (attack round 56)
        patch.setattr(capacity, "building_download", recording)
        at.switch_page("pages/results.py").run()
    assert not at.exception
    assert "Label Studio predictions" in {b.proto.label for b in at.get("download_button")}
    # the Label Studio file's expected size counts the export's own task data, which it carries (a 1.1 MB upload's
    # 1 GB file went in the line of the small ones)
    sizes = [size for size in sizes if size is not None]
    source_bytes = int(at.session_state["_label_studio"][1].source.raw_size())
    assert len(sizes) >= 4 and max(sizes) >= source_bytes > 0 and min(sizes) < source_bytes, sizes
    # what the button serialises: the run's labels as tasks of the export (ids and data kept)
    fingerprint, context = at.session_state["_label_studio"]
    assert fingerprint == manager.store.get(run_id)["fingerprint"]
    results = manager.store.load(run_id, with_data=False).results["mv"]
    tasks = json.loads(serialise(results, "label_studio", context, "test"))
    assert [t["id"] for t in tasks] == list(range(100, 112))
    assert tasks[0]["data"]["text"] == "Café crème, très bon"
    assert tasks[0]["predictions"][0]["result"][0]["from_name"] == "sentiment"
    assert isinstance(results, pd.DataFrame)
    # kept with the run: opened again in another session (a link, the Runs page, a new tab) the file is the same
    # (walkthrough 48: no ids, no data, the control "label"/"task")
    kept = manager.store.load_label_studio(run_id)
    assert serialise(results, "label_studio", kept, "test") == serialise(results, "label_studio", context, "test")
    # streamed when the file is made, never read with the run's tables (every page view parsed them whole, ~23x the
    # upload, uncounted; attack round 24)
    extras = manager.store.load(run_id, with_data=False).extras
    assert "label_studio_tasks" not in extras and "label_studio" not in extras
    # a link's visitor: the export's control, not its task data
    visitor = json.loads(serialise(results, "label_studio", manager.store.load_label_studio(run_id, tasks=False),
                                   "test"))
    assert [t["data"] for t in visitor[:2]] == [{"task": 100}, {"task": 101}]
    # with the export's task ids, as the Labels CSV has them (walkthrough 119: without, nothing matched the owner's)
    assert [t["id"] for t in visitor] == list(range(100, 112))
    assert visitor[0]["predictions"][0]["result"][0]["from_name"] == "sentiment"
    # a run whose data came from elsewhere keeps none
    assert manager.store.load_label_studio(manager.store.create("train", {"methods": ["mv"]})) is None
    # and a link's visitor is told that their file has no task data (walkthrough 49: it differed without a word)
    visitor_page = AppTest.from_file(APP, default_timeout=60)
    visitor_page.query_params["run"] = run_id
    visitor_page.run()
    visitor_page.switch_page("pages/results.py").run()
    said = "Label Studio predictions: you get the labels under the export's control and task ids, without the export's"
    assert any(said in str(c.value) for c in visitor_page.caption)
    assert not any(said in str(c.value) for c in at.caption)  # (the owner's file keeps them)


def test_the_label_studio_copy_kept_with_a_run_stays_within_the_room_left(runs_dir, tmp_path, monkeypatch):
    """Attack round 24: the copy was written after the storage check and unbounded (a 10 MB export of ``1E15``
    numbers kept as 40 MB past a 5 MB workspace cap); a lone surrogate in a task's data failed it (and the download)
    with UnicodeEncodeError; a run deleted meanwhile had its folder made again."""
    from deem_core.data.annotations import DataError
    from deem_core.data.formats import read_dataset
    from deem_core.data.formats.writers import serialise
    from deem_studio.jobs import JobManager, get_manager
    import pandas as pd

    one = '{"completed_by": %d, "result": [{"from_name": "s", "to_name": "img", "type": "choices", "value": ' \
          '{"choices": ["%s"]}}]}'
    tasks = [f'{{"id": {t}, "data": {{"text": "x\\udfff{t}", "v": [{",".join(["1E15"] * 200)}]}}, '
             f'"annotations": [{",".join(one % (w, ("a", "b")[(t + w) % 2]) for w in range(3))}]}}' for t in range(6)]
    export = tmp_path / "export.json"
    export.write_text("[" + ",".join(tasks) + "]")
    context = read_dataset(export).label_studio
    store = get_manager(runs_dir).store
    run_id = store.create("train", {"methods": ["mv"]}, status="finished")
    with pytest.raises(DataError, match="take more than"):
        store.save_label_studio(run_id, context, max_bytes=4_000)
    folder = store.run_dir(run_id)
    assert not (folder / "label_studio_tasks.json").exists() and not list(folder.glob(".*.tmp"))
    kept = store.load_label_studio(run_id)  # the control kept, no task data
    assert kept.source is None and kept.from_name == "s" and kept.to_name == "img"
    store.save_label_studio(run_id, context)  # unbounded: the lone surrogate written as its escape
    again = store.load_label_studio(run_id)
    labels = pd.DataFrame({"label": ["a"] * 6, "confidence": [1.0] * 6}, index=pd.Index(list(range(6)), name="task"))
    written = json.loads(serialise(labels, "label_studio", again, "test"))
    assert [t["data"]["text"] for t in written[:2]] == ["x\udfff0", "x\udfff1"]
    assert json.loads(serialise(labels, "label_studio", context, "test")) == written  # (the download failed too)
    store.delete(run_id)  # a run deleted while its copy is written: its folder is not made again
    with pytest.raises(OSError):
        store.save_label_studio(run_id, context)
    assert not folder.exists()
    # through the page: past the room left, the training is kept and the page says the task data are not
    monkeypatch.setattr(JobManager, "storage_room", lambda self, owner, client=None: 300)
    at = majority_vote_on_the_export()
    launched = at.session_state["train_run"]
    shown = [re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", str(e.value)) for e in at.info]  # (shown as text: escaped)
    assert any(f"The export's task ids and data are not kept with run {launched}" in text for text in shown), shown
    assert store.load_label_studio(launched).source is None
    # no room for the control either (attack round 26: it is bounded too): nothing kept, said so
    monkeypatch.setattr(JobManager, "storage_room", lambda self, owner, client=None: 10)
    at = majority_vote_on_the_export()
    launched = at.session_state["train_run"]
    shown = [re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", str(e.value)) for e in at.info]
    assert any(f"The export's control, task ids and data are not kept with run {launched}" in text
               for text in shown), shown
    assert store.load_label_studio(launched) is None


def test_the_label_studio_task_data_kept_with_a_run_are_compressed_and_read_back_as_they_were(runs_dir, tmp_path):
    """Each training on a Label Studio export stored the export's task data whole: a 1.1 MB gzipped export kept 954 MB
    at every press (walkthrough, forty-eighth session). Kept gzip-compressed; read back the same, and a run kept
    before (plain JSON) still reads."""
    import gzip

    from deem_core.data.formats import read_dataset
    from deem_core.data.formats.writers import serialise
    from deem_studio.jobs import get_manager
    import pandas as pd

    one = '{"completed_by": %d, "result": [{"from_name": "s", "to_name": "t", "type": "choices", "value": ' \
          '{"choices": ["%s"]}}]}'
    page = "a long page of text " * 500  # (10 KB of task data each, as a document's text is)
    tasks = [json.dumps({"id": t, "data": {"text": f"{page}{t}"}})[:-1] + ', "annotations": [' +
             ",".join(one % (w, ("a", "b")[(t + w) % 2]) for w in range(3)) + "]}" for t in range(300)]
    export = tmp_path / "export.json.gz"
    export.write_bytes(gzip.compress(("[" + ",".join(tasks) + "]").encode()))
    context = read_dataset(export).label_studio
    store = get_manager(runs_dir).store
    labels = pd.DataFrame({"label": ["a"] * 300, "confidence": [1.0] * 300},
                          index=pd.Index(list(range(300)), name="task"))
    expected = json.loads(serialise(labels, "label_studio", context, "test"))
    run_id = store.create("train", {"methods": ["mv"]}, status="finished")
    store.save_label_studio(run_id, context)
    kept = store.run_dir(run_id) / "label_studio_tasks.json"
    text = gzip.decompress(kept.read_bytes())
    assert len(text) > 3_000_000 and kept.stat().st_size < len(text) / 50, (kept.stat().st_size, len(text))
    assert json.loads(serialise(labels, "label_studio", store.load_label_studio(run_id), "test")) == expected
    # the size of its text, not of the compressed file, says which download line its predictions file is made in (a
    # 904 MB file went in the small files' line, counted at 1.8 MB; attack round 60); the upload's too, once read
    assert store.load_label_studio(run_id).source.text_size() == len(text)
    assert context.source.text_size() >= len(text) > 50 * export.stat().st_size
    kept.write_bytes(text)  # a run kept before: the same text, not compressed
    assert json.loads(serialise(labels, "label_studio", store.load_label_studio(run_id), "test")) == expected
    assert store.load_label_studio(run_id).source.text_size() == len(text)


def _nested_taxonomy_export(path, tasks: int, workers: int, depth: int):
    """A Label Studio export whose every answer is a class of its own: a taxonomy path nested ``depth`` lists deep."""
    def answer(t, w):
        leaf = json.dumps(f"c{t}_{w}")
        return ('{"completed_by":%d,"result":[{"from_name":"label","to_name":"text","type":"taxonomy",'
                '"value":{"taxonomy":[["x",%s]]}}]}' % (w, "[" * depth + leaf + "]" * depth))
    task = '{"id":%d,"data":{"text":"t%d"},"annotations":[%s]}'
    path.write_text("[" + ",".join(task % (t, t, ",".join(answer(t, w) for w in range(workers)))
                                   for t in range(tasks)) + "]")
    return path


def test_the_label_studio_control_kept_with_a_run_is_compact_and_bounded(runs_dir, tmp_path, monkeypatch):
    """Attack round 26: the control's class values (taxonomy paths nested 900 deep) were written indented, each
    level a line of its own: a 192 KB export made a 164 MB file, unbounded, read again by every view of the run.
    Written compact, within the room left and MAX_SETTINGS_BYTES."""
    from deem_core.data.annotations import DataError
    from deem_core.data.formats import labelstudio, read_dataset
    from deem_studio.jobs import get_manager

    export = _nested_taxonomy_export(tmp_path / "nested.json", tasks=3, workers=10, depth=2)
    context = read_dataset(export).label_studio
    assert len(context.values) == 30
    store = get_manager(runs_dir).store
    run_id = store.create("train", {"methods": ["mv"]}, status="finished")
    store.save_label_studio(run_id, context)
    folder = store.run_dir(run_id)
    kept = (folder / "label_studio.json").stat().st_size
    # compact: 0.29x the export (indented 0.96x here; 256x with values nested 300 deep, now kept as text)
    assert kept < export.stat().st_size / 2, (kept, export.stat().st_size)
    assert store.load_label_studio(run_id).values == context.values
    # past the room left or the control's own bound: nothing kept, the run reads as one without an export
    other = store.create("train", {"methods": ["mv"]}, status="finished")
    with pytest.raises(DataError, match="control and class values take more than"):
        store.save_label_studio(other, context, max_bytes=500)
    monkeypatch.setattr(labelstudio, "MAX_SETTINGS_BYTES", 500)
    with pytest.raises(DataError, match="control and class values take more than"):
        store.save_label_studio(other, context)
    assert not list(store.run_dir(other).iterdir()) or not (store.run_dir(other) / "label_studio.json").exists()
    assert store.load_label_studio(other) is None
    assert store.load_label_studio(run_id) is None  # a larger file (of an earlier version) is not read
    # values nested too deep to be written: said, not a RecursionError
    monkeypatch.setattr(labelstudio, "MAX_SETTINGS_BYTES", 1 << 20)
    value: list = []
    for _ in range(5000):
        value = [value]
    deep = labelstudio.LabelStudioContext(values={"c": value})
    with pytest.raises(DataError, match="nest too deep"):
        store.save_label_studio(other, deep)


def test_label_studio_answers_nested_deeper_than_a_taxonomy_are_left_out_and_counted(tmp_path):
    """Attack round 26: each class's value (taxonomy paths nested 900 deep) was kept as it was parsed with the data
    set: a 24 KB upload held 162.6 MB of a session; kept as text, such values were classes no control gives, which
    DEEM then returned at 0.99 confidence and the predictions file wrote as no valid path (walkthrough 54). An answer
    whose value nests deeper than MAX_VALUE_DEPTH is left out, counted."""
    from deem_core.data.formats import labelstudio, read_dataset

    def answer(t, w, depth):
        path = "[" * depth + json.dumps(["Animal", ("Cat", "Dog")[(t + w) % 2]]) + "]" * depth
        return ('{"completed_by":%d,"result":[{"from_name":"label","to_name":"text","type":"taxonomy",'
                '"value":{"taxonomy":[%s]}}]}' % (w, path))
    tasks = ['{"id":%d,"data":{"text":"t%d"},"annotations":[%s]}'
             % (t, t, ",".join(answer(t, w, 200 if w == 0 and t < 4 else 0) for w in range(3))) for t in range(6)]
    export = tmp_path / "deep.json"
    export.write_text("[" + ",".join(tasks) + "]")
    read = read_dataset(export)
    assert list(read.data.classes) == ["Animal / Cat", "Animal / Dog"] and read.data.n_answers == 14
    assert any("4 answers whose 'label' value nests more than 4 levels deep" in w for w in read.data.warnings), \
        read.data.warnings
    # where: the task id first (an export is one line: "first on line 1" did not help find it; walkthrough 55), and
    # every one up to five (only the first was named, the second junk answer not found; walkthrough 57)
    assert any(w.endswith("(no value a control gives) (first on task '0', line 1; then task '1', line 1; "
                          "task '2', line 1; task '3', line 1)") for w in read.data.warnings), read.data.warnings
    assert read.label_studio.values == {"Animal / Cat": [["Animal", "Cat"]], "Animal / Dog": [["Animal", "Dog"]]}
    shallow = '{"taxonomy": [[[["a"]]]]}'  # (5 levels with its own object: the deepest kept)
    assert not labelstudio._nests_deeper(json.loads(shallow), labelstudio.MAX_VALUE_DEPTH + 1)  # noqa: SLF001
    assert labelstudio._nests_deeper(json.loads(shallow.replace('"a"', '["a"]')),  # noqa: SLF001
                                     labelstudio.MAX_VALUE_DEPTH + 1)
    # nor wide (attack round 27: 1,951 empty lists two levels deep, one a class, held ~160 KB a class)
    wide = {"taxonomy": [["c", *[[] for _ in range(labelstudio.MAX_VALUE_ITEMS)]]]}
    assert labelstudio._nests_deeper(wide, labelstudio.MAX_VALUE_DEPTH + 1, labelstudio.MAX_VALUE_ITEMS)  # noqa: SLF001
    assert not labelstudio._nests_deeper({"taxonomy": [["a", "b"]]}, labelstudio.MAX_VALUE_DEPTH + 1,  # noqa: SLF001
                                         labelstudio.MAX_VALUE_ITEMS)
    tasks = ['{"id":%d,"annotations":[{"completed_by":1,"result":[{"from_name":"l","to_name":"t","type":"taxonomy",'
             '"value":{"taxonomy":[["c%d"%s]]}}]},{"completed_by":2,"result":[{"from_name":"l","to_name":"t",'
             '"type":"taxonomy","value":{"taxonomy":[["ok"]]}}]}]}' % (t, t, ",[]" * 300 if t < 3 else "")
             for t in range(6)]
    export.write_text("[" + ",".join(tasks) + "]")
    read = read_dataset(export)
    assert set(read.data.classes) == {"ok", "c3", "c4", "c5"} and len(read.label_studio.values) == 4
    assert any("3 answers whose 'l' value nests more than 4 levels deep or holds more than 100 items" in w
               for w in read.data.warnings), read.data.warnings


def test_a_label_studio_export_with_another_file_keeps_load_off(runs_dir):
    # the refusal came only after "Load these files", and the data set loaded before stayed (walkthrough 52)
    export = make_fixtures.label_studio()
    files = [(name, content, "application/json") for name, content in export.files.items()]
    files.append(("more.csv", b"task,worker,label\n1,a,x\n", "text/csv"))
    at = new_app()
    at.file_uploader(key="upload_annotations").set_value(files).run()
    assert not at.exception
    assert at.button(key="load_files").disabled
    assert any("A Label Studio JSON export is read on its own: remove the other files above to load it."
               in str(w.value) for w in at.warning)


def test_a_file_whose_columns_are_not_recognised_loads_once_they_are_chosen(runs_dir):
    """Load stays off while the preview says the file cannot be read as it is (it would only fail with the message
    already shown); choosing the columns under Mapping turns it on, and the file loads as chosen."""
    at = new_app()
    content = b"item_no,rater,verdict\n" + b"".join(f"{t},r{w},{(t + w) % 3}\n".encode() for t in range(40)
                                                      for w in range(4))
    at.file_uploader(key="upload_annotations").set_value(("odd.csv", content, "text/csv")).run()
    assert not at.exception
    assert at.button(key="load_files").disabled
    assert any("no task column" in str(w.value) for w in at.warning)
    assert any("Choose the columns under 'Mapping'" in str(c.value) for c in at.caption)
    for role, column in (("task", "item_no"), ("worker", "rater"), ("label", "verdict")):
        at.selectbox(key=f"map_{role}").set_value(column).run()
    assert not at.button(key="load_files").disabled
    at.button(key="load_files").click().run()
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Tasks"] == "40" and metrics["Workers"] == "4" and metrics["Classes"] == "3"


def test_files_of_two_layouts_are_refused_in_the_pages_words(runs_dir):
    """The engine's hint names its keyword and option (format=..., CLI --format); the page names its own box."""
    at = new_app()
    long = b"task,worker,label\n" + b"".join(f"{t},w{w},{(t + w) % 2}\n".encode() for t in range(20) for w in range(3))
    wide = b"task,alice,bob\n" + b"".join(f"{t},{t % 2},{(t + 1) % 2}\n".encode() for t in range(20))
    at.file_uploader(key="upload_annotations").set_value([("long.csv", long, "text/csv"),
                                                          ("wide.csv", wide, "text/csv")]).run()
    if not at.button(key="load_files").disabled:
        at.button(key="load_files").click().run()
    shown = " ".join(str(e.value) for e in [*at.error, *at.warning]).replace("\\", "")  # (Markdown escapes)
    assert "different layouts (long.csv is long, wide.csv is wide)" in shown, shown
    assert "choose the layout under Format" in shown and "format=" not in shown and "--format" not in shown, shown


def test_the_preview_is_read_once_per_file_and_choice(runs_dir, spy):
    """Every rerun read the preview again, the click on "Load these files" and the rerun after it too: a file of
    20,000 worker columns said "loaded in 18.3 s" where the page took 46 s (walkthrough 18)."""
    import deem_core.data.readers as readers

    calls = spy(readers, "preview")
    at = upload(new_app(), make_fixtures.mturk())
    assert len(calls) == 1
    at.selectbox(key="map_label").set_value("Answer.topic").run()
    assert len(calls) == 2 and calls[-1][1].get("columns") == {"label": "Answer.topic"}  # the mapping's own preview
    at.button(key="load_files").click().run()
    assert not at.exception and {m.label: m.value for m in at.metric}["Classes"] == "3"
    assert len(calls) == 2, calls  # loading read no preview again
    assert "labels from column 'Answer.topic'" in note(at)
    at.selectbox(key="map_label").set_value("(as detected)").run()
    assert len(calls) == 2  # both previews of this file are kept
    assert "labels from the checkboxes 'Answer.sentiment'" in note(at)
    at.selectbox(key="map_label").set_value("Answer.comment").run()
    assert len(calls) == 3


def test_an_unreadable_file_is_said_on_every_rerun_but_read_once(runs_dir, spy):
    import deem_core.data.readers as readers

    calls = spy(readers, "preview")
    at = new_app()
    at.file_uploader(key="upload_annotations").set_value(("bad.csv", bytes(range(256)) * 16, "text/csv")).run()
    assert at.error and "bad\\.csv" in at.error[0].value and at.button(key="load_files").disabled
    at.toggle(key="upload_keep_missing").set_value(True).run()
    assert at.error and "bad\\.csv" in at.error[0].value and len(calls) == 1
    kept = at.session_state["_previews"][-1][1]
    assert kept.__traceback__ is None and kept.__context__ is None  # (no frames of the failed read are kept)


def test_the_preview_of_several_per_worker_files_says_each_is_a_worker(runs_dir):
    # the line under Format named the first file's worker only: "worker 'annotator_00' (the file name)" for 40 files
    # (walkthrough 23)
    files = [(f"annotator_{i:02d}.csv", f"task,label\n1,yes\n2,no\n{i + 3},yes\n".encode(), "text/csv")
             for i in range(5)]
    at = new_app()
    at.file_uploader(key="upload_annotations").set_value(files).run()
    assert not at.exception
    assert ("annotator_00.csv: read as one file per worker (task, label): tasks from column 'task', labels from column "
            "'label', worker 'annotator_00' (the file name) — the first of 5 files; the others are read with this "
            "mapping, each file one worker named after it: they need the same layout") in note(at)


def test_the_preview_of_several_files_read_through_their_own_columns_says_so(runs_dir):
    """Walkthrough 121: two wide files keyed by 'filepath' and by 'img_path' were said to be "read with this mapping"
    under the first file's note, which named 'filepath' (the second was read through its own 'img_path')."""
    files = [("a.csv", b"filepath,m1,m2\nx/1.jpg,a,b\nx/2.jpg,b,b\n", "text/csv"),
             ("b.csv", b"img_path,m1,m2\ny/1.jpg,a,a\ny/2.jpg,b,a\n", "text/csv")]
    at = new_app()
    at.file_uploader(key="upload_annotations").set_value(files).run()
    assert not at.exception
    assert note(at).endswith("— the first of 2 files; the others are read in this layout, each through its own "
                             "columns: they need the same layout"), note(at)


def test_a_file_past_a_limit_is_refused_without_pointing_to_the_mapping(runs_dir):
    """Walkthrough 71: 1,200 soft-label columns were refused (DEEM's class limit), and below the refusal the page said
    "Choose the columns under 'Mapping' above (or another format)", which no mapping or format mends. A layout problem
    a mapping can mend still points to it."""
    from types import SimpleNamespace

    header = "task,worker," + ",".join(f"prob_c{j}" for j in range(1_200))
    rows = [f"t{t},w{w}," + ",".join("1" if j == t else "0" for j in range(1_200)) for t in range(3) for w in range(2)]
    at = upload(new_app(), SimpleNamespace(files={"soft.csv": ("\n".join([header, *rows]) + "\n").encode()}))
    errors = [str(e.value).replace("\\", "") for e in at.error]
    assert any("1,200 soft-label columns" in error for error in errors), errors
    said = " ".join(str(c.value) for c in at.caption)
    assert "Remove this file; the files load once they can be read." in said
    assert "Mapping" not in said and "another format" not in said
    assert at.button(key="load_files").disabled

    at = upload(new_app(), SimpleNamespace(files={"odd.csv": b"item,who,answer_given\n1,a,x\n2,b,y\n"}))
    at.selectbox(key="upload_format").set_value("long").run()  # (no column is named as a worker or a label)
    said = " ".join(str(c.value) for c in at.caption)
    # (it reads as wide with no layout named, said first; its columns are picked under Mapping)
    assert "Choose the format it reads as above, or, where it is in the long layout, its columns under 'Mapping'" \
        in said, said
    # a wide file chosen as long: the format first (the Mapping's columns, picked, read a worker's labels as worker
    # names; walkthrough 112)
    wide = "task,w1,w2,w3\n" + "".join(f"t{t},{'ab'[t % 2]},{'ab'[(t + 1) % 2]},a\n" for t in range(8))
    at = upload(new_app(), SimpleNamespace(files={"wide.csv": wide.encode()}))
    at.selectbox(key="upload_format").set_value("long").run()
    said = (" ".join(str(c.value) for c in at.caption) + " ".join(str(w.value) for w in at.warning)).replace("\\", "")
    assert "with no layout named it reads as wide layout (task + one column per worker): check the format chosen" \
        in said and "Choose the format it reads as above" in said, said
    assert "choose them under Mapping" not in said, said
    assert at.button(key="load_files").disabled


def test_the_read_as_line_stands_once_after_loading(runs_dir):
    """Walkthrough 70: once loaded, the "read as" line stood twice, above (the preview's) and in the summary (the
    read's); the summary says only what the read found besides (its gold labels), and its whole line where the
    files above are others."""
    at = upload(new_app(), make_fixtures.toloka())
    at.button(key="load_files").click().run()
    lines = [t.value for t in at.text if "read as Toloka results" in t.value]
    assert len(lines) == 1, lines
    assert "Read as the line above says; 3 gold labels" in [str(c.value).replace("\\", "") for c in at.caption]
    at = upload(at, make_fixtures.mturk())  # (other files above, the Toloka export still loaded)
    assert [t.value for t in at.text if "read as" in t.value][-1].endswith("; 3 gold labels")
    assert any("read as Amazon Mechanical Turk" in t.value for t in at.text)


def test_accuracies_on_an_export_s_control_tasks_say_what_those_tasks_are(runs_dir):
    """Walkthrough 82: the caveat that a Toloka export's control tasks read easy (DEEM 1.0000 on 60 of them, 94.50%
    on all 800; walkthrough 81) stood on the Data page only; the accuracies on them, on Train and Results, said
    nothing. A gold file uploaded in their place is no control task, and is not said to be one."""
    caveat = ("they are the export's control tasks: often easier and given to more workers than the others, so "
              "accuracies on them can read high")
    at = upload(new_app(), make_fixtures.toloka())
    at.button(key="load_files").click().run()
    at.switch_page("pages/train.py").run()
    at.multiselect(key="train_methods").set_value(["mv"])
    at.button(key="train_launch").click().run()
    from deem_studio.jobs import get_manager  # noqa: PLC0415

    assert get_manager().wait(at.session_state["train_run"], timeout=60).status == "finished"
    at.run()
    assert not at.exception
    said = " ".join(str(c.value) for c in at.caption).replace("\\", "")
    assert f"accuracy vs gold: on the 3 tasks with a gold label; {caveat}" in said, said
    at.switch_page("pages/results.py").run()
    assert caveat in " ".join(str(c.value) for c in at.caption).replace("\\", "")
    # the same export, with a gold file of the user's own in place of the control tasks' labels
    data = at.session_state["dataset"]["data"]
    import pandas as pd  # noqa: PLC0415

    mine = pd.DataFrame({"task": list(data.tasks)[4:8], "truth": str(data.classes[0])}).to_csv(index=False)
    at.switch_page("pages/data.py").run()
    at.file_uploader(key="upload_gold").set_value(("mine.csv", mine.encode(), "text/csv")).run()
    assert at.session_state["dataset"]["gold"].size == 4
    at.switch_page("pages/train.py").run()
    at.button(key="train_launch").click().run()
    assert get_manager().wait(at.session_state["train_run"], timeout=60).status == "finished"
    at.run()
    said = " ".join(str(c.value) for c in at.caption).replace("\\", "")
    assert "accuracy vs gold: on the 4 tasks with a gold label" in said and caveat not in said, said


def test_a_run_s_gold_labels_brought_back_keep_what_they_are():
    """The gold labels brought back from a run (a data set opened from it, or loaded again) keep their file's name and
    whether they are an export's control tasks, so the next run's accuracies still say so."""
    sys.path.insert(0, str(ROOT))
    from pages.common import gold_attrs  # noqa: PLC0415

    assert gold_attrs({"gold_file": "pool.tsv", "gold_control": True}) == {"file": "pool.tsv", "control": True}
    assert gold_attrs({"gold_file": "g.csv", "gold_columns": ["id", "gold"]}) == {"file": "g.csv",
                                                                                "columns": ("id", "gold")}
    assert gold_attrs({"gold_file": "mine.csv"}) == {"file": "mine.csv"}
    assert gold_attrs({"gold_control": "yes"}) == {} and gold_attrs(["gold_control"]) == {}


def test_a_label_studio_export_kept_with_its_data_set_is_counted_with_it():
    """Attack round 53: the export a loaded set keeps (to write its predictions file) stayed in memory after its upload
    was removed and released, counted nowhere: three tabs each kept a 216 MB export. It is counted with the set in
    the data ledger, and let go with it."""
    from deem_studio import capacity

    fixture = make_fixtures.label_studio()
    at = upload(new_app(), fixture)
    at.button(key="load_files").click().run()
    data = at.session_state["dataset"]["data"]
    # (the summary's format in words, as the "read as" line: "Format: label_studio" read as a code; walkthrough 107)
    assert any(str(c.value).replace("\\", "").startswith("Format: Label Studio JSON export · from ") for c in at.caption)
    size = len(next(iter(fixture.files.values())))
    assert data.held_bytes == size > 0
    assert capacity.data_bytes(data) >= size + capacity.data_bytes(
        type(data).from_codes(data.tasks, data.workers, data.classes, data.task_codes, data.worker_codes,
                              data.label_codes))
