"""Platform exports and Parquet against the equivalent long CSV, the Label Studio round trip, the writers,
and the resource limits (bombs are built small: repeated gzip members that expand only while streamed)."""

from __future__ import annotations

import gzip
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deem_core.data.annotations import DataError, label_doubts
from deem_core.data.formats import Limits, preview, read_annotations, read_dataset, read_truth
from deem_core.data.formats.writers import label_studio_tasks, output_format, serialise, write_results

sys.path.insert(0, str(Path(__file__).resolve().parent / "platform_files"))

import make_fixtures  # noqa: E402

FIXTURES = {f.name: f for f in make_fixtures.fixtures()}


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, tuple[list[Path], Path]]:
    root = tmp_path_factory.mktemp("platform_files")
    return {name: make_fixtures.write(f, root / name) for name, f in FIXTURES.items()}


def _plain(values) -> list:
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def assert_same_set(got, expected) -> None:
    assert _plain(got.tasks) == _plain(expected.tasks)
    assert [type(v) for v in _plain(got.tasks)] == [type(v) for v in _plain(expected.tasks)]
    assert _plain(got.workers) == _plain(expected.workers)
    assert _plain(got.classes) == _plain(expected.classes)
    assert got.n_answers == expected.n_answers
    np.testing.assert_array_equal(got.task_codes, expected.task_codes)
    np.testing.assert_array_equal(got.worker_codes, expected.worker_codes)
    np.testing.assert_array_equal(got.label_codes, expected.label_codes)
    assert got.fingerprint() == expected.fingerprint()


@pytest.mark.parametrize("name", list(FIXTURES))
def test_export_reads_as_its_long_csv(name, written):
    fixture = FIXTURES[name]
    paths, long_path = written[name]
    reading = read_dataset([str(p) for p in paths], **fixture.options)
    expected = read_annotations(long_path)
    assert reading.format == fixture.format
    assert reading.note.split(": read as ", 1)[1]  # one line saying what it was read as
    assert "\n" not in reading.note
    assert_same_set(reading.data, expected)
    for fragment, count in fixture.skipped.items():
        if count:
            assert any(f"skipped {count} " in w and fragment.rstrip("s") in w for w in reading.data.warnings), (
                fragment, count, reading.data.warnings)
    if fixture.gold is not None:
        assert reading.gold is not None
        assert {k: v for k, v in zip(_plain(reading.gold.index), reading.gold)} == fixture.gold


@pytest.mark.parametrize("name", ["mturk_sentiment", "toloka", "label_studio", "label_studio_csv", "parquet_wide"])
def test_seeded_deem_gives_the_same_results_from_the_export_and_the_long_csv(name, written):
    from deem_core.methods.deem import DEEM

    fixture = FIXTURES[name]
    paths, long_path = written[name]
    exported = read_annotations([str(p) for p in paths], **fixture.options)
    plain = read_annotations(long_path)
    one = DEEM(epochs=5, seed=3, device="cpu").fit(exported)
    two = DEEM(epochs=5, seed=3, device="cpu").fit(plain)
    pd.testing.assert_frame_equal(one.predict_proba(), two.predict_proba())
    pd.testing.assert_series_equal(one.predict(), two.predict())


def test_mturk_choices_task_columns_and_label_fields(written):
    paths, _ = written["mturk_sentiment"]
    by_hit = read_dataset(paths[0], columns={"task": "HITId"})
    assert by_hit.data.tasks[0] == "HIT000"
    one_input = read_dataset(paths[0], columns={"task": "Input.image_url", "label": "Answer.topic"})
    assert one_input.data.tasks[0].startswith("https://img.example/")
    assert set(one_input.data.classes) == set(make_fixtures.TOPICS)
    with pytest.raises(DataError, match=r"the label field 'Answer.mood' is not in the file; the answer fields are "
                                        r"Answer.comment, Answer.sentiment, Answer.topic"):
        read_dataset(paths[0], columns={"label": "Answer.mood"})
    shown = preview(paths[0])
    assert shown.layout == "mturk"
    assert shown.choices["label"] == ["Answer.comment", "Answer.sentiment", "Answer.topic"]
    assert shown.choices["task"] == ["Input.text", "Input.image_url", "HITId"]
    assert "read as Amazon Mechanical Turk batch results" in shown.note


def test_an_id_input_column_that_tells_the_tasks_apart_names_them():
    # an MTurk batch of Input.review_id and Input.text made task ids of both joined ("rev-0001 | Review number 1,
    # ...") and a gold file keyed by the review id matched no task (walkthrough 31)
    rows = ["HITId,WorkerId,AssignmentStatus,Input.review_id,Input.text,Input.batch_id,Answer.sentiment"]
    for task in range(6):
        for worker in range(3):
            rows.append(f"H{task},W{worker},Approved,rev-{task:04d},\"Review {task}, it was fine\",b1,"
                        f"{'positive' if (task + worker) % 3 else 'negative'}")
    text = "\n".join(rows).encode()
    read = read_dataset(("batch.csv", text))
    assert list(read.data.tasks) == [f"rev-{task:04d}" for task in range(6)]
    assert "tasks from column 'Input.review_id'," in read.note
    assert read_truth(("truth.csv", b"task,truth\nrev-0001,positive\n"), like=read.data).index.isin(
        read.data.tasks).all()
    # an id that does not tell the tasks apart (one batch for all) names nothing: all the inputs together, as before
    shared = text.replace(b"rev-0001", b"rev-0000")  # two texts under one id
    joined = read_dataset(("batch.csv", shared))
    assert joined.data.n_tasks == 6 and "'Input.review_id' + 'Input.text' + 'Input.batch_id' together" in \
        joined.note
    # a batch of two rounds whose review id restarts: the id column was chosen on the first rows, and different
    # tasks were read as one without a word (attack round 17): now said, with the id, the columns and the line
    rounds = [rows[0]] + [f"H{r}-{t},W{r}{w},Approved,rev-{t:04d},\"Round {r}, review {t}\",b1,positive"
                          for r in range(2) for t in range(150) for w in range(3)]
    said = read_dataset(("rounds.csv", "\n".join(rounds).encode()))
    assert said.data.n_tasks == 150 and "tasks from column 'Input.review_id'," in said.note
    clash = [w for w in said.data.warnings if "named by column 'Input.review_id' alone" in w]
    assert len(clash) == 1, said.data.warnings
    assert ("'rev-0000' comes with different 'Input.text', 'Input.batch_id' (line 452): different tasks may have "
            "been read as one") in clash[0]
    assert not [w for w in read.data.warnings if "alone" in w]  # one round: nothing to say
    # Toloka's INPUT: columns alike
    toloka = ("INPUT:item_id\tINPUT:text\tOUTPUT:result\tASSIGNMENT:worker_id\tASSIGNMENT:status\n"
              + "".join(f"i{t}\ttext {t}\t{'a' if (t + w) % 2 else 'b'}\tw{w}\tAPPROVED\n" for t in range(4)
                        for w in range(3)))
    assert list(read_dataset(("t.tsv", toloka.encode())).data.tasks) == [f"i{t}" for t in range(4)]


def test_mturk_checkbox_cells_must_be_booleans():
    text = ("WorkerId,AssignmentStatus,Input.id,Answer.s.a,Answer.s.b\nW1,Approved,1,true,false\n"
            "W2,Approved,1,maybe,false\n")
    with pytest.raises(DataError, match=r"^b\.csv: line 3: column 'Answer\.s\.a' should hold true or false"):
        read_annotations(("b.csv", text.encode()))


def test_label_studio_predictions_can_be_left_out_and_controls_chosen(written):
    paths, _ = written["label_studio"]
    with_models = read_dataset(paths[0])
    assert {"model-a v1", "model-b 2.0"} <= set(with_models.data.workers)
    without = read_dataset(paths[0], predictions=False, columns={"label": "sentiment"})
    assert not {"model-a v1", "model-b 2.0"} & set(without.data.workers)
    assert any("left out 24 model predictions" in w for w in without.data.warnings)
    topic = read_dataset(paths[0], columns={"label": "topic"})
    assert set(topic.data.classes) == set(make_fixtures.TOPICS) | set(make_fixtures.SENTIMENTS) - set(
        make_fixtures.SENTIMENTS)
    with pytest.raises(DataError, match=r"no classification results from the control 'comment'; controls found: "
                                        r"'sentiment', 'topic'"):
        read_dataset(paths[0], columns={"label": "comment"})
    by_text = read_dataset(paths[0], columns={"task": "data.text"})
    assert "Café crème, très bon" in set(by_text.data.tasks)
    shown = preview(paths[0])
    assert shown.layout == "label_studio" and shown.has_predictions
    assert shown.choices["label"] == ["sentiment", "topic"]


def test_label_studio_names_predictions_only_where_there_are_some(tmp_path):
    tasks = [{"id": t, "data": {"text": f"x{t}"}, "predictions": [],
              "annotations": [{"completed_by": w, "result": [{"from_name": "s", "to_name": "text", "type": "choices",
                                                               "value": {"choices": ["ab"[(t + w) % 2]]}}]}
                              for w in (1, 2)]} for t in range(4)]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks))
    # (an export with "predictions": [] read as "workers from 'completed_by' (and each prediction's 'model_version')";
    # walkthrough 22)
    assert read_dataset(path).note.endswith("read as Label Studio JSON export: tasks from 'id', workers from "
                                            "'completed_by', labels from the control 's' (choices)")
    tasks[0]["predictions"] = [{"model_version": "m1", "result": tasks[0]["annotations"][0]["result"]}]
    path.write_text(json.dumps(tasks))
    assert "workers from 'completed_by' (and each prediction's 'model_version')" in read_dataset(path).note


def test_a_label_studio_result_or_value_of_the_wrong_type_is_skipped_and_counted():
    """Attack round 36: a result whose "value" is no object failed the whole export ("not enough values to
    unpack"), and an annotation whose "result" is a number raised TypeError. Each is left out and counted, with
    its task; the rest of the export reads."""
    def answer(t, w):
        return {"completed_by": w, "result": [{"from_name": "s", "to_name": "text", "type": "choices",
                                               "value": {"choices": ["ab"[(t + w) % 2]]}}]}
    tasks = [{"id": t, "data": {"text": f"x{t}"}, "annotations": [answer(t, w) for w in range(3)]} for t in range(4)]
    tasks[1]["annotations"][0]["result"][0]["value"] = "a"
    tasks[2]["annotations"][1]["result"] = 1
    tasks[3]["annotations"][2]["result"] = 2.5
    read = read_dataset(("export.json", json.dumps(tasks).encode()))
    assert read.data.n_answers == 9 and sorted(read.data.classes) == ["a", "b"]
    warnings = read.data.warnings
    assert any(w.startswith("export.json: skipped 1 answer whose 's' result has a 'value' that is not an object")
               and w.endswith("(first on task '1', line 1)") for w in warnings), warnings
    assert "export.json: skipped 2 annotations or predictions whose 'result' is not a list (first on task '2', " \
           "line 1; then task '3', line 1)" in warnings, warnings


def test_label_studio_round_trip(written, tmp_path):
    """predictions out -> read back as one worker's answers -> the same labels, tasks keep id and data."""
    paths, _ = written["label_studio"]
    reading = read_dataset(paths[0])
    from deem_core.methods.deem import DEEM

    model = DEEM(epochs=3, seed=0, device="cpu").fit(reading.data)
    results = model.results_frame()
    out = tmp_path / "predictions.json"
    write_results(results, out, "label-studio", context=reading.label_studio, model_version="DEEM (test)")
    tasks = json.loads(out.read_text(encoding="utf-8"))
    assert [t["id"] for t in tasks] == list(range(100, 112))
    assert tasks[0]["data"] == {"text": "Café crème, très bon", "lang": "fr"}
    prediction = tasks[0]["predictions"][0]
    assert prediction["model_version"] == "DEEM (test)"
    assert prediction["result"][0]["from_name"] == "sentiment" and prediction["result"][0]["to_name"] == "text"
    assert 0 < prediction["score"] <= 1
    back = read_dataset(out)
    assert list(back.data.workers) == ["DEEM (test)"]
    labels = back.data.to_long().set_index("task")["label"]
    assert labels.to_dict() == results["label"].to_dict()


def _label_studio_predictions(tmp_path: Path, data: list[str], separator: str = ", ") -> tuple[Path, Path]:
    """An export of one task per ``data`` (its JSON text) with three annotators, and the CLI's Label Studio
    predictions of it (majority vote): (export, predictions) paths."""
    from deem_core.cli import main

    one = '{"completed_by": %d, "result": [{"from_name": "s", "to_name": "text", "type": "choices", "value": ' \
          '{"choices": ["%s"]}}]}'
    tasks = [f'{{"id": {t}, "data": {text}, "annotations": '
             f'[{separator.join(one % (w, ("pos", "neg")[(t + w) % 2 or w % 2]) for w in range(3))}]}}'
             for t, text in enumerate(data)]
    export = tmp_path / "export.json"
    export.write_text("[" + separator.join(tasks) + "]")
    out = tmp_path / "predictions.json"
    assert main(["aggregate", str(export), "--method", "mv", "--output-format", "label-studio", "-o", str(out)]) == 0
    return export, out


def test_an_export_s_task_data_with_nan_or_infinity_is_written_as_null(tmp_path):
    # Python's reader takes NaN and Infinity in an export's task data; the writer copied them and strict JSON refused
    # the whole file: "unexpected ValueError" in the CLI, a download that silently did nothing (attack round 20)
    data = [f'{{"text": "t{t}", "score": {("NaN", "Infinity", "-Infinity", "1.5")[t % 4]}, "deep": [{{"x": NaN}}]}}'
            for t in range(12)]
    _, out = _label_studio_predictions(tmp_path, data)
    written = json.loads(out.read_text(encoding="utf-8"), parse_constant=lambda c: pytest.fail(f"{c} written"))
    assert len(written) == 12 and [t["id"] for t in written] == list(range(12))
    assert [t["data"]["score"] for t in written[:4]] == [None, None, None, 1.5]
    assert written[0]["data"]["deep"] == [{"x": None}] and written[0]["data"]["text"] == "t0"


def test_label_studio_predictions_of_deeply_nested_task_data_are_about_the_export_s_size(tmp_path):
    # written indented, a task's data nested 200 deep took a line per value and ~200 spaces on each: a 2 MB export
    # of 12 answers made a 206 MB "Label Studio predictions" file (a 10 MB one 1 GB, 2.5 GB peak; attack round 24)
    from deem_core.data.formats.labelstudio import write_tasks

    deep = "[" * 200 + ",".join(["0"] * 5_000) + "]" * 200
    data = [f'{{"text": "t{t}", "v": {deep}}}' for t in range(4)]
    export, out = _label_studio_predictions(tmp_path, data, separator=",")
    assert out.stat().st_size < 1.1 * export.stat().st_size  # (was 99x: 4.29 MB)
    written = json.loads(out.read_text(encoding="utf-8"))
    assert [t["id"] for t in written] == [0, 1, 2, 3] and written[0]["data"] == json.loads(data[0])
    kept = io.StringIO()  # the copy kept with a dashboard run, from which its file is made again
    context = read_dataset(export).label_studio
    assert write_tasks(context, kept) == 4
    assert len(kept.getvalue().encode()) < export.stat().st_size
    # and the file is no larger than the bytes the reader takes in (a 1 MB gzip reads as up to 1 GiB)
    import dataclasses  # noqa: PLC0415

    results = pd.DataFrame({"label": ["pos"] * 4}, index=pd.Index([str(t) for t in range(4)], name="task"))
    small = dataclasses.replace(context, limits=Limits().with_bytes(export.stat().st_size // 2))
    with pytest.raises(DataError, match=r"the Label Studio file would pass [\d.]+ KiB, the most this reads"):
        serialise(results, "label_studio", small)
    assert len(serialise(results, "label_studio", context)) < 1.1 * export.stat().st_size


def test_label_studio_tasks_of_one_id_are_said_and_each_gets_the_label(tmp_path):
    # two projects' exports joined number their tasks alike: read as one task each without a word, and the
    # predictions file labelled the first and left the others out (attack round 24)
    data = [f'{{"text": "p{t // 10} t{t % 10}"}}' for t in range(20)]
    export, out = _label_studio_predictions(tmp_path, data)
    joined = json.loads(export.read_text())
    for index, task in enumerate(joined):
        task["id"] = index % 10 + 1  # (project 2's tasks numbered 1..10 again)
    joined[12]["id"] = "3"  # (a text id with the same digits: the same task too)
    export.write_text(json.dumps(joined))
    reading = read_dataset(export)
    assert reading.data.n_tasks == 10
    said = [w for w in reading.data.warnings if "tasks have the id of an earlier task" in w]
    assert said == [f"{export.name}: 10 tasks have the id of an earlier task (first '1', the file's task 11 on line "
                    f"1): their answers are read as that one task's. An export that joins several projects numbers each project's tasks "
                    f"from 1: key the tasks by a data field that tells them apart (columns={{'task': "
                    f"'data.<field>'}}, CLI --task-column data.<field>)"]
    results = pd.DataFrame({"label": ["pos"] * 10, "confidence": 0.5},
                           index=pd.Index([str(i) for i in range(1, 11)], name="task"))
    written = json.loads(serialise(results, "label_studio", reading.label_studio))
    assert len(written) == 20 and [t["data"]["text"] for t in written] == [f"p{t // 10} t{t % 10}" for t in range(20)]
    keyed = read_dataset(export, columns={"task": "data.text"})  # keyed by a data field that tells them apart
    assert keyed.data.n_tasks == 20 and not any("earlier task" in w for w in keyed.data.warnings)


def test_an_export_whose_first_tasks_fill_the_preview_is_previewed(tmp_path):
    # the preview reads the first bytes of a file: an export of 40 large tasks ended inside one there and was refused
    # as broken JSON (attack round 24: "the JSON list is never closed", Load kept off)
    from deem_core.data.formats.limits import PREVIEW_BYTES

    data = [json.dumps({"text": f"t{t}", "v": [{} for _ in range(80_000)]}) for t in range(24)]  # (320 KB each)
    export, _ = _label_studio_predictions(tmp_path, data)
    assert export.stat().st_size > 1.5 * PREVIEW_BYTES  # (fewer tasks than the preview shows fit in its bytes)
    shown = preview(export)
    assert shown.problem is None and shown.layout == "label_studio" and len(shown.frame) > 0
    assert read_dataset(export).data.n_tasks == 24  # (Load reads it whole)


def test_an_export_whose_first_task_passes_the_preview_bytes_is_still_read_as_label_studio(tmp_path):
    # (attack round 25: read as cut short, the first task looked like no element and the export was taken for JSON
    # records: "label value is 5,242,915 characters long")
    from deem_core.data.formats.limits import PREVIEW_BYTES

    data = [json.dumps({"text": "big", "v": "x" * (PREVIEW_BYTES + 1000)})] + [
        json.dumps({"text": f"t{t}"}) for t in range(1, 12)]
    export, _ = _label_studio_predictions(tmp_path, data)
    shown = preview(export)
    assert shown.layout == "label_studio" and shown.problem is None
    assert read_dataset(export).data.n_tasks == 12


def test_label_studio_writer_without_a_label_studio_input():
    results = pd.DataFrame({"label": [1, 5], "confidence": [0.9, float("nan")]}, index=pd.Index(["a", "b"], name="task"))
    tasks = label_studio_tasks(results)
    assert tasks[0] == {"data": {"task": "a"}, "predictions": [{"model_version": "DEEM", "score": 0.9, "result": [
        {"from_name": "label", "to_name": "task", "type": "choices", "value": {"choices": ["1"]}}]}]}
    assert "score" not in tasks[1]["predictions"][0]  # no confidence, no score


def test_the_labeling_config_of_predictions_without_an_export_reads_back_every_class_as_written():
    """Walkthrough 116 and read 56: the config said beside a Label Studio file of labels with no export's control
    names each class once, as the predictions write it: quotes, ampersands and characters that do not print (a
    zero-width space printed as its escape matched nothing) read back the same; a class XML cannot hold, or too many
    classes, give no config and say why."""
    from xml.etree import ElementTree  # noqa: PLC0415

    from deem_core.data.formats.writers import labeling_config  # noqa: PLC0415

    odd = ['a "b" & <c>', "zero\u200bwidth", "right\u202eleft", "1", "tab\there", "no"]
    config, why = labeling_config(odd + ["no"])
    assert why == "" and config.isprintable() is False and all(ch.isprintable() for ch in config.replace("\n", ""))
    choices = ElementTree.fromstring(config).find("Choices")
    assert [c.get("value") for c in choices] == odd  # (each once: "no" given twice)
    predicted = label_studio_tasks(pd.DataFrame({"label": odd}, index=pd.Index(range(6), name="task")))
    assert [t["predictions"][0]["result"][0]["value"]["choices"][0] for t in predicted] == odd
    assert labeling_config(["ok", "x\x01y"]) == (None, "a class holds a character XML cannot hold (a control "
                                                        "character): name it another way")
    many, why = labeling_config([f"c{i}" for i in range(201)])
    assert many is None and why == "201 classes, more than the 200 listed here"
    assert len(ElementTree.fromstring(labeling_config([f"c{i}" for i in range(150)])[0]).find("Choices")) == 150


def test_label_studio_predictions_write_numeric_classes_as_text_and_read_back_the_same(tmp_path):
    """Walkthrough 67: integer classes went out as "choices": [1]; Label Studio matches a choice as text (<Choice
    value="1">), so the import matched none. Every control but a rating writes the class's text."""
    results = pd.DataFrame({"label": [0, 1, 5], "confidence": [0.9, 0.8, 0.7]},
                           index=pd.Index([10, 11, 12], name="task"))
    written = json.loads(serialise(results, "label_studio"))
    assert [t["predictions"][0]["result"][0]["value"] for t in written] == [
        {"choices": ["0"]}, {"choices": ["1"]}, {"choices": ["5"]}]
    out = tmp_path / "predictions.json"
    write_results(results, out, "label-studio", model_version="DEEM (test)")
    back = read_dataset(out, columns={"task": "data.task"}).data.to_long().set_index("task")["label"]
    assert {int(t): str(v) for t, v in back.items()} == {10: "0", 11: "1", 12: "5"}
    # an export's own numeric choices and taxonomy items go back as text too; a rating stays a number
    export = [{"id": t, "data": {"t": "x"}, "annotations": [{"completed_by": w, "result": [
        {"from_name": "c", "to_name": "t", "type": "choices", "value": {"choices": [t % 2]}},
        {"from_name": "tax", "to_name": "t", "type": "taxonomy", "value": {"taxonomy": [[t % 2, 7]]}},
        {"from_name": "stars", "to_name": "t", "type": "rating", "value": {"rating": 3}}]} for w in (1, 2)]}
        for t in (1, 2)]
    source = ("e.json", json.dumps(export).encode())
    for control, value in (("c", {"choices": ["1"]}), ("tax", {"taxonomy": [["1", "7"]]}), ("stars", {"rating": 3})):
        reading = read_dataset(source, columns={"label": control})
        labels = reading.data.to_long().groupby("task")["label"].first()
        back = label_studio_tasks(pd.DataFrame({"label": labels, "confidence": 1.0}), reading.label_studio)
        assert back[0]["id"] == 1 and back[0]["predictions"][0]["result"][0]["value"] == value, control


def test_a_rating_of_infinity_is_written_as_text_and_the_download_works():
    """Attack round 37: an export's "rating": Infinity went back as a number JSON refuses; every press of the Label
    Studio download failed, two tracebacks logged each. A finite rating stays a number."""
    from deem_core.data.formats.writers import serialise  # noqa: PLC0415

    export = [{"id": t, "data": {"t": "x"}, "annotations": [{"completed_by": w, "result": [
        {"from_name": "stars", "to_name": "t", "type": "rating", "value": {"rating": "INF" if t % 2 else 4}}]}
        for w in (1, 2)]} for t in (1, 2)]
    text = json.dumps(export).replace('"INF"', "Infinity")
    reading = read_dataset(("e.json", text.encode()))
    labels = reading.data.to_long().groupby("task")["label"].first()
    written = json.loads(serialise(pd.DataFrame({"label": labels, "confidence": 1.0}), "label_studio",
                                   reading.label_studio, "test"))
    values = {t["id"]: t["predictions"][0]["result"][0]["value"]["rating"] for t in written}
    assert values[2] == 4 and isinstance(values[1], str), values


def test_rating_and_taxonomy_controls_keep_their_values(tmp_path):
    export = [{"id": 1, "data": {"t": "x"}, "annotations": [
        {"completed_by": 1, "result": [{"from_name": "stars", "to_name": "t", "type": "rating", "value": {"rating": 4}},
                                       {"from_name": "tax", "to_name": "t", "type": "taxonomy",
                                        "value": {"taxonomy": [["Animal", "Dog"]]}}]},
        {"completed_by": 2, "result": [{"from_name": "stars", "to_name": "t", "type": "rating", "value": {"rating": 4}},
                                       {"from_name": "tax", "to_name": "t", "type": "taxonomy",
                                        "value": {"taxonomy": [["Animal", "Dog"]]}}]}]}]
    source = ("e.json", json.dumps(export).encode())
    stars = read_dataset(source)
    assert list(stars.data.classes) == [4]
    tax = read_dataset(source, columns={"label": "tax"})
    assert list(tax.data.classes) == ["Animal / Dog"]
    results = pd.DataFrame({"label": ["Animal / Dog"], "confidence": [1.0]}, index=pd.Index([1], name="task"))
    back = label_studio_tasks(results, tax.label_studio)
    assert back[0]["predictions"][0]["result"][0]["value"] == {"taxonomy": [["Animal", "Dog"]]}
    rated = label_studio_tasks(pd.DataFrame({"label": [4], "confidence": [1.0]}, index=pd.Index([1], name="task")),
                               stars.label_studio)
    assert rated[0]["predictions"][0]["result"][0]["value"] == {"rating": 4}


def test_a_taxonomy_path_and_an_item_named_like_it_stay_two_classes_and_export_their_own_values():
    """Attack round 30: the path ["Animal", "Cat"] and a top-level item named "Animal / Cat" were one class without a
    word, and the predictions export wrote the path for both."""
    def task(t: int, path: list[str]) -> dict:
        return {"id": t, "data": {"text": f"item {t}"}, "annotations": [
            {"completed_by": w, "result": [{"from_name": "tax", "to_name": "text", "type": "taxonomy",
                                            "value": {"taxonomy": [path]}}]} for w in range(1, 4)]}

    export = [task(1, ["Animal", "Cat"]), task(2, ["Animal", "Cat"]), task(3, ["Animal / Cat"]),
              task(4, ["Animal / Cat"]), task(5, ["Animal", "Cat"])]
    reading = read_dataset(("tax.json", json.dumps(export).encode()))
    assert list(reading.data.classes) == ["Animal / Cat", "Animal / Cat (2)"] and reading.data.n_tasks == 5
    said = [w for w in label_doubts(reading.data) if "kept apart as classes of their own" in w]
    assert len(said) == 1 and "'Animal / Cat (2)'" in said[0] and '[["Animal / Cat"]]' in said[0], reading.data.warnings
    labels = reading.data.to_long().groupby("task")["label"].first()
    results = pd.DataFrame({"label": labels, "confidence": 1.0})
    back = label_studio_tasks(results, reading.label_studio)
    assert [t["predictions"][0]["result"][0]["value"]["taxonomy"] for t in back] == [
        [["Animal", "Cat"]], [["Animal", "Cat"]], [["Animal / Cat"]], [["Animal / Cat"]], [["Animal", "Cat"]]]
    plain = read_dataset(("one.json", json.dumps([task(1, ["Animal", "Cat"]), task(2, ["Animal", "Dog"])]).encode()))
    assert list(plain.data.classes) == ["Animal / Cat", "Animal / Dog"] and not [
        w for w in plain.data.warnings if "kept apart" in w]


def test_broken_json_names_the_line():
    with pytest.raises(DataError, match=r"^b\.json: line 3: not valid JSON"):
        read_annotations(("b.json", b'[\n {"id": 1, "annotations": []},\n {"id": 2,, }\n]\n'))
    with pytest.raises(DataError, match=r"^c\.json: the JSON list is never closed"):
        read_annotations(("c.json", b'[{"id": 1, "annotations": []},'))
    with pytest.raises(DataError, match=r"^d\.json: no classification results"):
        read_annotations(("d.json", b'[{"id": 1, "data": {}, "annotations": [{"result": []}]}]'))


def test_json_records_and_json_lines_read_like_csv():
    records = [{"task": 1, "worker": "a", "label": "x"}, {"task": 2, "worker": "a", "label": "y"}]
    as_list = read_dataset(("r.json", json.dumps(records).encode()))
    as_lines = read_dataset(("r.jsonl", "\n".join(json.dumps(r) for r in records).encode()))
    plain = read_annotations(("r.csv", b"task,worker,label\n1,a,x\n2,a,y\n"))
    assert_same_set(as_list.data, plain)
    assert_same_set(as_lines.data, plain)
    assert "from JSON records" in as_list.note


def test_parquet_reads_only_the_columns_it_needs(tmp_path, monkeypatch):
    import json

    from deem_core.data.formats import tables

    frame = pd.DataFrame({"task": [1, 2], "worker": ["a", "b"], "label": ["x", "y"],
                          "notes": ["long text " * 10, "more"]})
    path = tmp_path / "p.parquet"
    frame.to_parquet(path)
    asked = []
    original = tables.subprocess.run

    def spy(command, *args, **kwargs):  # the decoding process's orders (deem_core/data/formats/parquet_decode.py)
        asked.append(json.loads(Path(command[-1]).read_text())["columns"])
        return original(command, *args, **kwargs)

    monkeypatch.setattr(tables.subprocess, "run", spy)
    data = read_annotations(path, soft=False)
    assert asked == [["task", "worker", "label"]]
    assert data.n_answers == 2


def test_parquet_row_limit_is_checked_from_the_metadata_before_reading(tmp_path):
    frame = pd.DataFrame({"task": np.arange(50_000) % 7, "worker": "w", "label": "x"})
    path = tmp_path / "many.parquet"
    frame.to_parquet(path)
    started = time.perf_counter()
    with pytest.raises(DataError, match=r"^many\.parquet: holds more than 1,000 rows, the input limit; raise it with "
                                        r"--max-input-rows"):
        read_annotations(path, limits=Limits(max_rows=1000))
    assert time.perf_counter() - started < 5


def test_a_wide_tables_answers_count_against_the_row_limit():
    """Attack round 33: a wide table makes an answer of every filled cell, and only its rows were counted: a 260 KB
    gzip of 20,000 worker columns (100 million answers in 5,000 rows) took the server past 2 GB unrefused."""
    workers = [f"w{i}" for i in range(100)]
    wide = "task," + ",".join(workers) + "\n" + "".join(f"t{t}," + ",".join("ab"[(t + i) % 2] for i in range(100))
                                                         + "\n" for t in range(50))
    with pytest.raises(DataError, match=r"^wide\.csv: holds more than 1,000 answers \(in a table of a column per worker, "
                                        r"every filled cell is one\), the input limit; raise it with --max-input-rows"):
        read_annotations(("wide.csv", wide.encode()), limits=Limits(max_rows=1000))
    assert read_annotations(("wide.csv", wide.encode()), limits=Limits(max_rows=5000)).n_answers == 5000
    # a long table's answers are its rows: counted once, not twice against the limit
    long = "task,worker,label\n" + "".join(f"t{i},w{i % 7},a\n" for i in range(900))
    assert read_annotations(("long.csv", long.encode()), limits=Limits(max_rows=1000)).n_answers == 900


def test_output_formats_by_extension_and_by_name(tmp_path):
    assert output_format("a.CSV") == "csv" and output_format("a.parquet") == "parquet"
    assert output_format("a.json") == "json" and output_format("a.json", "label-studio") == "label_studio"
    with pytest.raises(ValueError, match="cannot tell the output format from 'a.xlsx'"):
        output_format("a.xlsx")
    results = pd.DataFrame({"label": ["=x", "y"], "confidence": [0.5, float("nan")]},
                           index=pd.Index([1, 2], name="task"))
    assert serialise(results, "csv").decode().splitlines()[1] == "1,'=x,0.5"
    assert json.loads(serialise(results, "json")) == [{"task": 1, "label": "=x", "confidence": 0.5},
                                                      {"task": 2, "label": "y", "confidence": None}]
    parquet = pd.read_parquet(io.BytesIO(serialise(results, "parquet")))
    assert parquet.columns.tolist() == ["task", "label", "confidence"] and parquet["task"].tolist() == [1, 2]
    assert parquet["label"].tolist() == ["=x", "y"]
    mixed = pd.DataFrame({"label": [1, "a"], "confidence": [1.0, 1.0]}, index=pd.Index([1, 2], name="task"))
    with pytest.raises(DataError, match="cannot be written as Parquet"):
        serialise(mixed, "parquet")


# ---------------------------------------------------------------------------------------------- limits, bombs
def gzip_bomb(unit: bytes, expanded: int, header: bytes = b"task,worker,label\n") -> bytes:
    """A gzip file that expands to about ``expanded`` bytes: one 8 MiB member repeated (kilobytes on disk)."""
    block = unit * max(1, (8 << 20) // len(unit))
    member = gzip.compress(block, compresslevel=9)
    return gzip.compress(header) + member * max(1, expanded // len(block))


def test_a_gzip_bomb_is_refused_at_the_byte_limit_while_streaming():
    bomb = gzip_bomb(b"1,a,cat,and a long comment to make the rows wide\n", 256 << 20,
                     header=b"task,worker,label,comment\n")
    assert len(bomb) < 1_000_000  # deflate expands at most ~1000 times
    started = time.perf_counter()
    with pytest.raises(DataError, match=r"^bomb\.csv\.gz: holds more than 16 MiB once decompressed, the input limit; "
                                        r"raise it with --max-input-bytes \(DEEM_MAX_INPUT_BYTES\)"):
        read_annotations(("bomb.csv.gz", bomb), limits=Limits(max_bytes=16 << 20))
    assert time.perf_counter() - started < 10  # stopped early, never expanded the 256 MiB


def test_rows_limit_counts_every_file_together():
    files = [(f"f{i}.csv", b"task,worker,label\n" + b"1,a,x\n" * 600) for i in range(2)]
    with pytest.raises(DataError, match=r"^f1\.csv: the files hold more than 1,000 rows, the input limit"):
        read_annotations(files, limits=Limits(max_rows=1000))
    assert read_annotations(files[:1], limits=Limits(max_rows=1000)).n_answers == 1


def test_one_endless_line_and_an_unclosed_quote_are_refused_without_buffering_them():
    line = gzip_bomb(b"x" * 4096, 128 << 20, header=b"task,worker,label\n1,a,")
    with pytest.raises(DataError, match=r"^line\.csv\.gz: line 2 is longer than 1 MiB"):
        read_annotations(("line.csv.gz", line), limits=Limits(max_record_bytes=1 << 20))
    quote = gzip_bomb(b"x\n" * 2048, 128 << 20, header=b'task,worker,label\n1,a,"')
    with pytest.raises(DataError, match=r"^quote\.csv\.gz: a quoted field that starts on line 2 runs on for more than "
                                        r"1 MiB; is a '\"' missing its closing quote\?"):
        read_annotations(("quote.csv.gz", quote), limits=Limits(max_record_bytes=1 << 20))


def test_a_json_bomb_is_refused_and_a_huge_element_too():
    task = json.dumps({"id": 1, "annotations": [{"completed_by": 1, "result": [
        {"from_name": "s", "to_name": "t", "type": "choices", "value": {"choices": ["a"]}}]}]}).encode()
    bomb = gzip.compress(b"[") + gzip.compress((task + b",") * 20_000) * 40 + gzip.compress(task + b"]")
    with pytest.raises(DataError, match=r"^bomb\.json\.gz: holds more than 100,000 rows, the input limit"):
        read_annotations(("bomb.json.gz", bomb), limits=Limits(max_rows=100_000))
    huge = gzip.compress(b'[{"id": 1, "data": {"text": "') + gzip.compress(b"y" * (1 << 20)) * 8 + gzip.compress(b'"}}]')
    with pytest.raises(DataError, match=r"^huge\.json\.gz: the JSON element on line 1 is larger than 4 MiB"):
        read_annotations(("huge.json.gz", huge), limits=Limits(max_record_bytes=4 << 20))


def test_preview_reads_a_bounded_head_of_a_bomb():
    bomb = gzip_bomb(b"1,a,cat\n2,b,dog\n", 1 << 30)
    started = time.perf_counter()
    shown = preview(("bomb.csv.gz", bomb), nrows=20)
    assert time.perf_counter() - started < 5
    assert len(shown.frame) == 20 and shown.layout == "long"


def test_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("DEEM_MAX_INPUT_BYTES", "2M")
    monkeypatch.setenv("DEEM_MAX_INPUT_ROWS", "5")
    limits = Limits.from_env()
    assert (limits.max_bytes, limits.max_rows) == (2 << 20, 5)
    with pytest.raises(DataError, match="more than 5 rows"):
        read_annotations(("a.csv", b"task,worker,label\n" + b"1,a,x\n" * 6))


# ---------------------------------------------------------------------------------------------- careless input
def test_two_csv_files_joined_repeat_their_header():
    text = b"task,worker,label\n1,a,x\n2,a,y\ntask,worker,label\n3,b,x\n"
    data = read_annotations(("joined.csv", text))
    assert data.n_answers == 3 and "task" not in set(data.tasks)
    assert "joined.csv: skipped 1 line repeating the header (first on line 4; files joined one after the other?)" \
        in data.warnings
    with pytest.raises(DataError, match=r"^j\.csv: line 4 repeats the header in another column order \(worker, task, "
                                        r"label\)"):
        read_annotations(("j.csv", b"task,worker,label\n1,a,x\n2,a,y\nworker,task,label\nb,3,x\n"))


def test_truth_files_use_the_same_missing_spellings():
    truth = read_truth(("t.csv", b"task,truth\n1,cat\n2,nan\n3,None\n4,NA\n5,\n"))
    assert truth.to_dict() == {1: "cat"}
    assert truth.attrs["warnings"] == ["t.csv: skipped 4 tasks with a missing truth (empty or NA, nan, None); keep "
                                       "such labels with keep_missing=True (CLI --keep-missing-labels)"]
    kept = read_truth(("t.csv", b"task,truth\n1,cat\n2,nan\n3,None\n4,NA\n5,\n"), keep_missing=True)
    assert kept.to_dict() == {1: "cat", 2: "nan", 3: "None", 4: "NA"}


def test_a_file_named_with_a_newline_keeps_messages_on_one_line():
    with pytest.raises(DataError) as caught:
        read_annotations(("evil\nname\x1b[31m.csv", b"task,worker\n1,a\n"))
    assert "\n" not in str(caught.value) and "\x1b" not in str(caught.value)
    assert str(caught.value).startswith("evil\\nname\\x1b[31m.csv: missing column(s) 'label'")


def test_mturk_task_answers_json_column_is_read_as_answer_fields():
    """crowd-html-elements forms: every answer of an assignment in one JSON cell ``Answer.taskAnswers``."""
    rows = ["WorkerId,AssignmentStatus,Input.img,Answer.taskAnswers"]
    for task in range(3):
        for worker in range(3):
            answer = [{"animal": {"label": "Cat" if (task + worker) % 3 else "Dog"},
                       "sure": {"yes": worker != 1, "no": worker == 1}}]
            rows.append(f'W{worker},Approved,img{task}.png,"{json.dumps(answer).replace(chr(34), chr(34) * 2)}"')
    text = ("\n".join(rows) + "\n").encode()
    reading = read_dataset(("batch.csv", text))
    assert "labels from column 'Answer.animal.label'" in reading.note and "other label fields: Answer.sure" in reading.note
    assert reading.data.to_long().iloc[0].tolist() == ["img0.png", "W0", "Dog"]
    sure = read_dataset(("batch.csv", text), columns={"label": "Answer.sure"})
    assert sorted(sure.data.classes) == ["no", "yes"]  # a checkbox group inside the JSON


def test_mturk_answer_columns_win_over_task_answers_fields_of_their_name():
    """Attack round 36: a taskAnswers field replaced the real Answer.* column of its name while the note said the
    labels came from the column; a checkbox group both as columns and in taskAnswers had each option twice, every
    answer "several ticked", and the file was refused. The file's own columns are read, and the note says so."""
    def batch(header, cells):
        rows = [f"WorkerId,AssignmentStatus,Input.id,{header},Answer.taskAnswers"]
        for task in range(3):
            for worker in range(3):
                column, answer = cells((task + worker) % 2)
                quoted = json.dumps([answer]).replace('"', '""')
                rows.append(f'W{worker},Approved,{task},{column},"{quoted}"')
        return ("\n".join(rows) + "\n").encode()

    one = read_dataset(("b.csv", batch("Answer.s", lambda k: ("AB"[k], {"s": "xy"[k]}))))
    assert sorted(one.data.classes) == ["A", "B"], one.data.classes
    assert ("labels from column 'Answer.s' (the file's own column(s); the same field(s) in 'Answer.taskAnswers' not "
            "read)") in one.note
    boxes = read_dataset(("b.csv", batch("Answer.s.pos,Answer.s.neg", lambda k: (
        ("true,false", "false,true")[k], {"s": {"pos": not k, "neg": bool(k)}}))))
    assert sorted(boxes.data.classes) == ["neg", "pos"] and boxes.data.n_answers == 9
    assert not any("several" in w for w in boxes.data.warnings), boxes.data.warnings
    # a field only in the JSON is still read from it, and said
    other = read_dataset(("b.csv", batch("Answer.s", lambda k: ("AB"[k], {"t": "xy"[k]}))),
                         columns={"label": "Answer.t"})
    assert sorted(other.data.classes) == ["x", "y"]
    assert "labels from column 'Answer.t' (read from the JSON column 'Answer.taskAnswers')" in other.note


def test_task_answers_bounds_the_field_names_it_builds():
    """A dotted name repeats its parents': 950 levels of 9,000-character keys (a 32 KB gzip) held 4.2 GB of names,
    and 20,000 fields under one long key ~18 MB from a 0.2 MB cell (attack round 9): such a cell is not read as a
    form's answers. A form's own nesting (two or three levels, short names) still is."""
    from deem_core.data.formats.dialects import MAX_FIELD_CHARS, MAX_FIELD_DEPTH, task_answers

    form = json.dumps([{"animal": {"label": "Cat"}, "sure": {"yes": True, "no": False}}])
    assert task_answers(form) == {"Answer.animal.label": "Cat", "Answer.sure.yes": "true", "Answer.sure.no": "false"}
    deep = "[" + '{"k":' * (MAX_FIELD_DEPTH + 1) + '"x"' + "}" * (MAX_FIELD_DEPTH + 1) + "]"
    assert task_answers(deep) == {}
    shallow = "[" + '{"k":' * (MAX_FIELD_DEPTH - 2) + '"x"' + "}" * (MAX_FIELD_DEPTH - 2) + "]"
    assert task_answers(shallow) == {"Answer." + ".".join(["k"] * (MAX_FIELD_DEPTH - 2)): "x"}
    long_key = json.dumps([{"a" * (MAX_FIELD_CHARS + 1): {"b": "x"}}])
    assert task_answers(long_key) == {}
    many = json.dumps([{"a" * 900: {f"b{i}": 1 for i in range(20_000)}}])
    assert task_answers(many) == {}
    # a key with an empty dotted part names no field of a form: skipped (one under "animal" beside "label" made a
    # checkbox group of options "" and "label", nothing ticked; "Answer.s." was picked as the label field)
    empty = json.dumps([{"animal": {"": "Cat", "label": "Dog"}, "s.": "x", ".t": "y", "u..v": "z", "": "w"}])
    assert task_answers(empty) == {"Answer.animal.label": "Dog"}


def test_label_studio_refuses_a_thousand_made_up_controls():
    """Controls were kept in a list: one task of 80,000 made-up controls took 70 s past a 10 s read limit and 100,000
    a preview 200 s (attack round 9). More than MAX_CONTROLS is refused at once; that many still reads."""
    from deem_core.data.formats.labelstudio import MAX_CONTROLS

    def export(n_controls: int) -> bytes:
        results = [{"from_name": f"c{i}", "to_name": "text", "type": "choices", "value": {"choices": ["a"]}}
                   for i in range(n_controls)]
        return json.dumps([{"id": 1, "data": {"text": "x"},
                            "annotations": [{"completed_by": 1, "result": results}]}]).encode()

    assert read_dataset(("ls.json", export(MAX_CONTROLS))).data.n_annotations == 1
    for read in (read_dataset, preview):
        with pytest.raises(DataError, match=f"line 1: more than {MAX_CONTROLS:,} labelling controls"):
            result = read(("ls.json", export(MAX_CONTROLS + 1)))
            if getattr(result, "problem", None):  # (the preview says a file's problem instead of raising)
                raise DataError(result.problem)


def test_an_empty_golden_column_is_not_named_as_gold_labels(tmp_path):
    """A Toloka export whose GOLDEN column is empty was read as "gold labels from column 'GOLDEN:result'"
    (walkthrough 28): the note says the column is empty; one with values still names it."""
    rows = [f"photo_{t}.jpg\t{label}\t\tw{w}\tACCEPTED" for t in range(40) for w, label in ((1, "cat"), (2, "dog"))]
    path = tmp_path / "assignments_from_pool_1.tsv"
    path.write_text("INPUT:image\tOUTPUT:result\tGOLDEN:result\tASSIGNMENT:worker_id\tASSIGNMENT:status\n"
                    + "\n".join(rows) + "\n")
    reading = read_dataset(str(path))
    assert reading.gold is None
    assert "no gold labels (column 'GOLDEN:result' is empty)" in reading.note
    assert "gold labels from column" not in reading.note
    # before Load, the preview's line says what its rows show (it named the column as the source; walkthrough 29)
    shown = preview(str(path)).note
    assert "gold labels from column 'GOLDEN:result', if any (none in the first 80 rows)" in shown, shown
    rows[0] = rows[0].replace("cat\t\t", "cat\tcat\t")
    path.write_text("INPUT:image\tOUTPUT:result\tGOLDEN:result\tASSIGNMENT:worker_id\tASSIGNMENT:status\n"
                    + "\n".join(rows) + "\n")
    reading = read_dataset(str(path))
    assert len(reading.gold) == 1 and "gold labels from column 'GOLDEN:result'" in reading.note
    # control tasks are no sample of the tasks: said (walkthrough 81: DEEM 1.0000 on 60 of them, 94.50% on all 800)
    assert ("gold labels from column 'GOLDEN:result' (the export's control tasks: often easier and given to more workers than "
            "the others, so accuracies on them can read high)") in reading.note
    assert "if any" not in preview(str(path)).note


def test_labels_json_is_made_a_chunk_of_rows_at_a_time(monkeypatch):
    """Attack round 23: "Labels JSON" held every record as Python objects at once, ~230 bytes of memory a cell (a press
    on 100,000 tasks x 80 classes took the server from 1.3 to 3.2 GB). The bytes are the same as one dump of all."""
    import json  # noqa: PLC0415
    import tracemalloc  # noqa: PLC0415

    from deem_core.data.formats import writers  # noqa: PLC0415

    rng = np.random.default_rng(0)

    def table(n: int, k: int) -> pd.DataFrame:
        frame = pd.DataFrame(rng.random((n, k)), columns=[f"p_{i}" for i in range(k)],
                             index=pd.Index([f"t{i}" for i in range(n)], name="task"))
        frame.insert(0, "label", ['q"é'] * n)
        frame.insert(1, "confidence", np.nan)
        return frame

    for n in (0, 1, 4_999, 5_000, 10_007):  # (around the chunk of 5,000 rows)
        frame = table(n, 3)
        whole = json.dumps(writers._records(frame), ensure_ascii=False, allow_nan=False,
                           default=writers._json_default, indent=1).encode("utf-8")
        assert writers.serialise(frame, "json") == whole, n
    frame = pd.DataFrame(rng.random((20_000, 40)), index=pd.Index(range(20_000), name="task"),
                         columns=[f"p_{i}" for i in range(40)])
    monkeypatch.setattr(writers, "JSON_CHUNK_ROWS", 1_000, raising=False)  # (a chunk's records small beside the file here)
    tracemalloc.start()
    try:
        made = writers.serialise(frame, "json")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the file and its one copy, and a chunk's records (all at once: ~240 bytes a cell, 7.9x the file)
    assert peak < 100 * frame.size and peak < 3 * len(made)


def test_a_wide_file_named_long_is_said_as_wide_in_the_read_and_the_preview(tmp_path):
    """Walkthrough 112: a wide file read as long stopped on "missing column(s) 'worker', 'label'", and the Data page
    advised choosing them under Mapping, which, followed, read a worker's labels as worker names. The read and the
    preview say how the file reads with no layout named; a long file missing its label column is said as before."""
    from deem_core.data.formats import preview, read_dataset

    wide = tmp_path / "wide.csv"
    wide.write_text("task,w1,w2,w3\n" + "".join(f"t{t},{'ab'[t % 2]},{'ab'[(t + 1) % 2]},a\n" for t in range(8)))
    start = ("wide.csv was read as the long layout (task, worker, label) asked for, and with no layout named it reads "
             "as wide layout (task + one column per worker): check the format chosen first. Read as asked: wide.csv: "
             "missing column(s) 'worker', 'label'")
    with pytest.raises(DataError) as caught:
        read_dataset(wide, format="long")
    assert str(caught.value).startswith(start), str(caught.value)
    assert preview(wide, format="long").problem.startswith(start)
    assert read_dataset(wide).data.n_workers == 3
    short = tmp_path / "short.csv"
    short.write_text("task,worker\nt1,w1\n")
    with pytest.raises(DataError) as caught:
        read_dataset(short, format="long")
    assert "check the format chosen" not in str(caught.value) and "missing column(s) 'label'" in str(caught.value)


def test_a_layout_named_wrongly_is_said_where_the_read_fails(tmp_path):
    """Walkthrough 110: `--format wide` on a long file stopped on "2,797 (task, worker) pairs have conflicting
    labels, e.g. task ... by worker 'worker'", advising --on-conflict, which would train on worker names as labels.
    The error says how the file reads with no layout named."""
    from deem_core.data.formats import read_dataset

    path = tmp_path / "long.csv"
    path.write_text("task,worker,label\n" + "".join(f"t{t},w{w},{'ab'[(t + w) % 2]}\n" for t in range(6) for w in range(3)))
    with pytest.raises(DataError) as caught:
        read_dataset(path, format="wide")
    said = str(caught.value)
    assert said.startswith("long.csv was read as the wide layout (task + one column per worker) asked for, and with "
                           "no layout named it reads as long layout (task, worker, label): check the format chosen "
                           "first. Read as asked: long.csv: "), said  # (first: walkthrough 111)
    assert "conflicting labels" in said
    # and without the conflict's advice: "keep one answer per pair (CLI --on-conflict)", followed, trained on the
    # worker names as labels (walkthrough 112)
    assert "on-conflict" not in said and "keep one answer" not in said, said
    with pytest.raises(DataError, match="keep one answer per pair"):  # (where the layout is the file's, it stays)
        read_dataset(tmp_path.joinpath("twice.csv").write_text("task,worker,label\nt1,w1,a\nt1,w1,b\n") and
                     tmp_path / "twice.csv", format="long")
    # named rightly, or failing for another reason where the layouts agree: no such hint
    wide = tmp_path / "wide.csv"
    wide.write_text("task,w1,w2\nt1,a,\nt2,,\n")
    assert read_dataset(path, format="long").data.n_tasks == 6
    with pytest.raises(DataError) as caught:
        read_dataset(wide, format="wide", on_conflict="error", classes=["zz"])
    assert "check the format chosen" not in str(caught.value)


def test_a_title_line_above_the_header_is_named_as_such_by_the_reader_the_preview_and_the_command(tmp_path, capsys):
    """Walkthrough 115: a file whose first line is a title ("Sentiment batch export,,") read as "no task column among
    'Sentiment batch export'" on the command line and "column 2 has values but no name in the header" on the Data
    page: two messages, neither naming the cause. One message everywhere, and the file without the title reads."""
    from deem_core.cli import main
    from deem_core.data.formats import preview

    body = "task,worker,label\n1,a,pos\n1,b,neg\n2,a,pos\n2,b,pos\n"
    titled = tmp_path / "titled.csv"
    titled.write_text("Sentiment batch export,,\n" + body)
    said = "titled.csv: the first line names one column of 3 ('Sentiment batch export'): a title above the header?"
    for read in (read_dataset, preview):
        with pytest.raises(DataError) as caught:
            read(titled)
        assert str(caught.value).startswith(said), (read, str(caught.value))
    assert main(["aggregate", str(titled), "-o", str(tmp_path / "out.csv"), "--method", "mv"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: " + said)
    plain = tmp_path / "plain.csv"
    plain.write_text(body)
    assert read_dataset(plain).data.n_tasks == 2
    # a title with no delimiter in it: "found a single column" named no cause (walkthrough 117)
    bare = tmp_path / "bare.csv"
    bare.write_text("Pet photo labelling round 2 - export 2025-04-01\n" + body)
    said = ("bare.csv: the first line has one column ('Pet photo labelling round 2 - export 2025-04-01') and the lines "
            "below it have 3: a title above the header?")
    for read in (read_dataset, preview):
        with pytest.raises(DataError) as caught:
            read(bare)
        assert str(caught.value).startswith(said), (read, str(caught.value))
    one = tmp_path / "one.csv"
    one.write_text("just one column\nfoo\nbar\n")
    with pytest.raises(DataError, match=r"found a single column \('just one column'\); expected columns such as"):
        read_dataset(one)


@pytest.mark.parametrize("key", ["filepath", "file_name", "Path"])
def test_a_wide_file_of_classifiers_keyed_by_the_items_file_reads_as_wide(tmp_path, key):
    """Walkthrough 118: an ensemble's predictions keyed by 'filepath' (no other id column) were refused, "no task
    column among 'filepath', ...", and ``--format wide --ignore-column filepath`` took the first classifier's
    predictions as the task ids."""
    wide = tmp_path / "preds.csv"
    wide.write_text(f"{key},resnet,vgg,vit\n" + "".join(
        f"images/val/{t:04d}.jpg,{'ab'[t % 2]},{'ab'[(t // 2) % 2]},a\n" for t in range(8)))
    read = read_dataset(wide)
    assert read.data.n_tasks == 8 and list(read.data.workers) == ["resnet", "vgg", "vit"]
    assert read.data.tasks[0] == "images/val/0000.jpg"
    assert f"tasks from column '{key}'" in read.note


def test_files_read_alike_through_other_columns_are_each_said(tmp_path):
    """Walkthrough 120: two wide files keyed by 'filepath' and by 'img_path' read right, and the note said both were
    read from 'filepath'. Files read through the same columns are said once, as before."""
    first, second, third = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    first.write_text("filepath,m1,m2\nx/1.jpg,a,b\nx/2.jpg,b,b\n")
    second.write_text("img_path,m1,m2\ny/1.jpg,a,a\ny/2.jpg,b,a\n")
    third.write_text("filepath,m1,m2\nz/1.jpg,a,b\n")
    note = read_dataset([first, second]).note
    assert ("a.csv: tasks from column 'filepath', one worker per other column (2: 'm1', 'm2'); b.csv: tasks from "
            "column 'img_path', one worker per other column (2: 'm1', 'm2')") in note, note
    same = read_dataset([first, third]).note
    assert same.endswith("read as wide layout (task + one column per worker): tasks from column 'filepath', one "
                         "worker per other column (2: 'm1', 'm2')"), same


def _checkbox_batch(n_options: int, rows: int, first_ticked: int = 1) -> bytes:
    """An MTurk batch whose first Answer.taskAnswers cell holds a checkbox group ``g`` of ``n_options`` options, the
    other cells small ones ticking one option of the few they hold."""
    def cell(answer) -> str:
        return '"' + json.dumps([answer]).replace('"', '""') + '"'

    lines = ["WorkerId,AssignmentStatus,Input.id,Answer.taskAnswers",
             f"W0,Approved,0,{cell({'g': {f'o{k}': k == first_ticked for k in range(n_options)}})}"]
    lines += [f"W{r % 7 + 1},Approved,{r // 7},{cell({'g': {f'o{r % 3}': True, f'o{r % 3 + 3}': False}})}"
              for r in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def test_mturk_checkbox_group_of_task_answers_is_bounded_and_read_once_per_distinct_cell():
    """Attack round 65: a checkbox group of thousands of options in the first Answer.taskAnswers cell made a column
    per option over every row of a chunk (a 1.2 MB upload took the server past 5 GB; 40,000 options in a 104 KB file
    held a read slot for hours). Past MAX_CHECKBOX_OPTIONS the field is refused before any chunk is read; within it
    the group is read per distinct cell, its memory that of the rows, not of rows x options."""
    import tracemalloc

    from deem_core.data.formats.dialects import MAX_CHECKBOX_OPTIONS

    started = time.perf_counter()
    with pytest.raises(DataError) as caught:
        read_dataset(("batch.csv", _checkbox_batch(MAX_CHECKBOX_OPTIONS + 1, 50)), columns={"label": "Answer.g"})
    assert str(caught.value) == (
        f"batch.csv: the answer field 'Answer.g' (in the JSON column 'Answer.taskAnswers') is a checkbox group of "
        f"{MAX_CHECKBOX_OPTIONS + 1:,} options, more than the {MAX_CHECKBOX_OPTIONS:,} read as one label's options, so "
        f"it is not read: choose another answer field as the label, or give the group only the classes meant")
    assert time.perf_counter() - started < 10
    # at the bound, 30,000 rows: read as one label a row, the ticked option, in the memory of the rows (a column per
    # option was 1,000 x 30,000 x 8 bytes = 240 MB of objects, and the ticked table 30 MB more)
    text = _checkbox_batch(MAX_CHECKBOX_OPTIONS, 30_000)
    tracemalloc.start()
    try:
        reading = read_dataset(("batch.csv", text), columns={"label": "Answer.g"})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 120e6, peak
    long = reading.data.to_long().astype(str)
    assert len(long) == 30_001 and set(long["label"]) == {"o0", "o1", "o2"}
    given = long.set_index(["task", "worker"])["label"]
    assert given.loc[("0", "W0")] == "o1" and given.loc[("2", "W1")] == f"o{14 % 3}"  # (row 14: task 2, worker W1)


def test_mturk_checkbox_group_task_answers_keep_the_checks_of_a_column_group():
    """Read per distinct cell, a task-answers group keeps what a group of columns does: several ticked left out and
    counted, a value neither true nor false refused with its line, a group both as columns and in the JSON refused."""
    def batch(cells: list[dict], header: str = "", extra: str = "") -> bytes:
        lines = [f"WorkerId,AssignmentStatus,Input.id{header},Answer.taskAnswers"]
        lines += [f'W{i},Approved,{i // 2}{extra},"' + json.dumps([c]).replace('"', '""') + '"'
                  for i, c in enumerate(cells)]
        return ("\n".join(lines) + "\n").encode()

    ok = {"g": {"a": True, "b": False}}
    two = {"g": {"a": True, "b": True}}
    reading = read_dataset(("b.csv", batch([ok, two, ok, {"g": {"a": False, "b": True}}])), columns={"label": "Answer.g"})
    assert reading.data.n_answers == 3 and sorted(reading.data.classes) == ["a", "b"]
    assert any("skipped 1 answer with several options of Answer.g ticked (first on line 3)" in w
               for w in reading.data.warnings), \
        reading.data.warnings
    with pytest.raises(DataError, match=r"line 4: field 'Answer\.g\.b' should hold true or false .*got 'maybe'"):
        read_dataset(("b.csv", batch([ok, ok, {"g": {"a": False, "b": "maybe"}}])), columns={"label": "Answer.g"})
    with pytest.raises(DataError, match="has 1 option as Answer.\\* columns and 1 in Answer.taskAnswers"):
        read_dataset(("b.csv", batch([{"g": {"b": False}}, {"g": {"b": True}}], header=",Answer.g.a",
                                     extra=",true")), columns={"label": "Answer.g"})


def test_mturk_task_answers_keep_only_the_label_field_of_each_cell():
    """Attack round 65: every distinct cell's whole parsed form was kept for a chunk (cells of 1.9 million fields:
    +3.5 GB from a 27.5 MB upload); each cell is parsed and only the label's value kept."""
    import tracemalloc

    lines = ["WorkerId,AssignmentStatus,Input.id,Answer.taskAnswers"]
    for i in range(80):
        answer = {"s": "xy"[i % 2], **{f"f{i}_{k}": "v" for k in range(20_000)}}
        lines.append(f'W{i % 5},Approved,{i // 5},"' + json.dumps([answer]).replace('"', '""') + '"')
    text = ("\n".join(lines) + "\n").encode()
    tracemalloc.start()
    try:
        reading = read_dataset(("b.csv", text), columns={"label": "Answer.s"})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sorted(reading.data.classes) == ["x", "y"] and reading.data.n_answers == 80
    assert peak < 100e6, peak  # (80 parsed cells held at once: 0.23 GB)


def test_task_answers_cell_of_more_values_than_a_form_writes_is_not_read():
    """Attack round 65: cells of 1.9 million fields, each under the JSON bound of 2,000,000 values, made 1.6 GB while
    one was parsed and took 44 s for six of them; past MAX_TASK_ANSWERS_VALUES a cell is not a form's answers."""
    from deem_core.data.formats.dialects import MAX_TASK_ANSWERS_VALUES, task_answers

    form = [{"s": {"label": "x"}, **{f"k{i}": 0 for i in range(MAX_TASK_ANSWERS_VALUES // 2)}}]
    assert task_answers(json.dumps(form))["Answer.s.label"] == "x"
    bomb = [{"s": {"label": "x"}, **{f"k{i}": 0 for i in range(MAX_TASK_ANSWERS_VALUES + 1)}}]
    cell = json.dumps(bomb)  # (made before the clock starts: under a loaded machine's suite it took part of the 1 s)
    started = time.perf_counter()
    assert task_answers(cell) == {}
    assert time.perf_counter() - started < 1.0  # counted, not parsed


def test_label_studio_element_is_counted_before_it_is_decoded_whole():
    """Attack round 65: an element's values were counted only while it was incomplete, so the part that came with the
    last doubling of the buffer went uncounted: a 33 MiB string ahead of 10 million empty objects (63 KB of gzip)
    took the server +2.1 GB before any refusal. Counted before each decode of a grown element, it is refused."""
    limit = 10_000

    def tasks(objects: int) -> bytes:
        # the string first, past the 4 MiB the third try reads; then the objects
        meta = {"pad": "a" * 6_000_000, "items": [{}] * objects}
        return json.dumps([{"id": 1, "meta": meta, "data": {"text": "x"}, "annotations": [{"completed_by": 1, "result": [
            {"from_name": "s", "to_name": "t", "type": "choices", "value": {"choices": ["A"]}}]}]}]).encode()

    with pytest.raises(DataError, match=rf"^tasks\.json: the JSON element on line 1 holds more than {limit:,} values "
                                        r"\(not annotations\)$"):
        read_dataset(("tasks.json", tasks(5 * limit)), limits=Limits(max_json_values=limit))
