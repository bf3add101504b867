"""The ``deem`` command: aggregate (CSV/Parquet/JSON, model file, truth), baselines, usage errors."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from deem_core import DEEM
from deem_core.cli import main

from conftest import read_sample


@pytest.fixture
def small_files(tmp_path):
    df, truth = read_sample("condind", n_tasks=200)
    df = df.assign(label=df["label"].map({0: "red", 1: "green", 2: "=blue"}))
    truth = truth.map({0: "red", 1: "green", 2: "=blue"})
    annotations = tmp_path / "ann.csv"
    df.to_csv(annotations, index=False)
    truth_path = tmp_path / "truth.csv"
    truth.rename("truth").reset_index().to_csv(truth_path, index=False)
    return annotations, truth_path, df


def test_aggregate_writes_safe_csv_model_and_reports_accuracy(tmp_path, small_files, capsys):
    annotations, truth_path, _ = small_files
    out = tmp_path / "labels.csv"
    model_path = tmp_path / "model.deem"
    code = main(["aggregate", str(annotations), "-o", str(out), "--epochs", "2", "--no-progress",
                 "--truth", str(truth_path), "--model", str(model_path), "--sampler-steps", "3"])
    assert code == 0
    captured = capsys.readouterr()
    assert "wrote 200 labels to" in captured.err and "on the 200 tasks that have a truth" in captured.err
    table = pd.read_csv(out)
    assert list(table.columns) == ["task", "label", "confidence", "p_=blue", "p_green", "p_red",
                                   "seed_agreement", "free_energy", "majority_vote", "disagrees_with_majority",
                                   "majority_vote_tied"]
    assert set(table["label"]) <= {"red", "green", "'=blue"}  # formula cell neutralised
    assert set(table["majority_vote"]) <= {"red", "green", "'=blue"}
    # (a label among a tie's most answered classes does not disagree: tested in test_registry)
    assert (table["disagrees_with_majority"] <= (table["label"] != table["majority_vote"])).all()
    # the accuracy line on standard output: percent with two decimals, over the tasks with a truth
    truth = pd.read_csv(truth_path).set_index("task")["truth"]
    written = table.set_index("task")["label"].replace("'=blue", "=blue")
    expected = 100 * (written.loc[truth.index] == truth).mean()
    assert captured.out.splitlines() == [f"accuracy: {expected:.2f}"]
    model = DEEM.load(model_path)
    assert len(model.predict()) == 200 and model.sampler_steps == 3


@pytest.mark.parametrize("method", ["mv", "ds", "irbm"])
def test_aggregate_method_option_runs_classic_aggregators_and_the_irbm(tmp_path, small_files, capsys, method):
    annotations, truth_path, df = small_files
    out = tmp_path / f"{method}.csv"
    assert main(["aggregate", str(annotations), "-o", str(out), "--method", method, "--epochs", "2",
                 "--no-progress", "--truth", str(truth_path)]) == 0
    table = pd.read_csv(out)
    assert list(table.columns[:6]) == ["task", "label", "confidence", "p_=blue", "p_green", "p_red"]
    probabilities = table[["p_=blue", "p_green", "p_red"]]
    assert probabilities.sum(axis=1).to_numpy() == pytest.approx(1.0, abs=1e-6)
    assert (table["confidence"] == probabilities.max(axis=1)).all()
    if method == "mv":  # vote shares: task 0's label is its most frequent answer
        first = df[df["task"] == table["task"][0]]["label"].value_counts()
        assert table["confidence"][0] == pytest.approx(first.max() / first.sum())
    line = capsys.readouterr().out.strip()
    assert line.startswith("accuracy: ") and 0 <= float(line.split()[1]) <= 100


def test_a_label_column_of_text_written_for_each_task_is_said_before_anything_trains(tmp_path, capsys):
    """Walkthrough 115: ``--label-column Input.text`` on an MTurk batch read 480 classes for 480 tasks (each task's
    own text) and began a training of 3 hours with nothing said but its time left. Said with the data's warnings,
    before training; the answers' own column reads without it."""
    rows = [{"HITId": f"h{t}", "WorkerId": f"W{(3 * t + i) % 32}", "Input.text": f"review number {t} of the batch",
             "Answer.sentiment": ("pos", "neg", "neu")[(t + (i == 2)) % 3]} for t in range(60) for i in range(3)]
    batch = tmp_path / "Batch_1_batch_results.csv"
    pd.DataFrame(rows).to_csv(batch, index=False)
    code = main(["aggregate", str(batch), "-o", str(tmp_path / "wrong.csv"), "--label-column", "Input.text",
                 "--method", "mv", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0 and "60 of the 60 classes are each given on one task only: the label column reads as text " \
                         "written for each task" in err, err
    assert main(["aggregate", str(batch), "-o", str(tmp_path / "right.csv"), "--method", "mv", "--no-progress"]) == 0
    assert "given on one task only" not in capsys.readouterr().err
    # a wide file's column of file paths read as a worker: named, and the way to leave it out (the advice to pick the
    # label column fits no control of a wide file; walkthrough 117)
    wide = pd.DataFrame({"item": range(60), **{f"model_{m}": [(t + (m == t % 5)) % 3 for t in range(60)]
                                               for m in range(5)}, "filepath": [f"/img/{t:04d}.png" for t in range(60)]})
    wide.to_csv(tmp_path / "wide.csv", index=False)
    assert main(["aggregate", str(tmp_path / "wide.csv"), "-o", str(tmp_path / "w.csv"), "--method", "mv",
                 "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert ("60 of the 63 classes are each given on one task only, nearly all given by 'filepath': a column of text "
            "written for each task (a file path, an id, a free-text field) read as a worker, not the answers of one. "
            "Leave it out (columns={'ignore': [...]}, CLI --ignore-column)") in err, err
    assert main(["aggregate", str(tmp_path / "wide.csv"), "-o", str(tmp_path / "w.csv"), "--method", "mv",
                 "--no-progress", "--ignore-column", "filepath"]) == 0
    assert "given on one task only" not in capsys.readouterr().err


def test_aggregate_method_errors_are_one_line(tmp_path, small_files, capsys):
    annotations, _, _ = small_files
    assert main(["aggregate", str(annotations), "-o", str(tmp_path / "k.csv"), "--method", "kos"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("ann.csv: read as long layout")  # the one-line note of how the input was read
    assert err[-1] == "error: --method kos: kos supports only 2 classes (binary labels); this data has 3 classes"
    assert main(["aggregate", str(annotations), "-o", str(tmp_path / "m.csv"), "--method", "mv",
                 "--model", str(tmp_path / "m.deem")]) == 2
    assert capsys.readouterr().err.strip() == "error: --model saves a fitted DEEM model; --method mv has none to save"


def test_a_wide_file_s_column_that_is_no_worker_is_left_out_with_ignore_column(tmp_path, capsys):
    """Walkthrough 97: a wide CSV's column that was no worker could not be left out on the command line."""
    path = tmp_path / "wide.csv"
    path.write_text("item,w1,w2,flag\n" + "".join(f"t{i},{'ab'[i % 2]},{'ab'[i % 2]},x{i % 3}\n" for i in range(30)))
    out = tmp_path / "labels.csv"
    assert main(["aggregate", str(path), "-o", str(out), "--method", "mv", "--ignore-column", "flag"]) == 0
    err = capsys.readouterr().err
    assert "one worker per column (2: 'w1', 'w2'), left out 1 column as asked ('flag')" in err, err
    assert set(pd.read_csv(out)["label"]) == {"a", "b"}  # (with "flag" a worker, its x0, x1, x2 were classes)
    assert main(["aggregate", str(path), "-o", str(out), "--method", "mv", "--ignore-column", "nope"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: wide.csv: the column to leave out, 'nope', is not in the file; found 'item', 'w1', 'w2', 'flag'")


@pytest.mark.parametrize("suffix", [".parquet", ".json"])
def test_aggregate_other_formats_keep_original_labels(tmp_path, small_files, suffix):
    annotations, _, _ = small_files
    out = tmp_path / f"labels{suffix}"
    assert main(["aggregate", str(annotations), "-o", str(out), "--epochs", "1", "--no-progress"]) == 0
    table = pd.read_parquet(out) if suffix == ".parquet" else pd.DataFrame(json.loads(out.read_text()))
    assert len(table) == 200
    assert set(table["label"]) <= {"red", "green", "=blue"}


def test_usage_errors_exit_2_with_one_line(tmp_path, small_files, capsys):
    annotations, _, _ = small_files
    assert main(["aggregate", str(annotations), "-o", str(tmp_path / "x.xlsx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: cannot tell the output format from 'x.xlsx': use .csv, .parquet or .json (or "
                   "--output-format label-studio)"]
    assert main(["aggregate", str(tmp_path / "missing.csv"), "-o", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "missing.csv" in err[0]
    assert main(["aggregate", str(annotations), "-o", str(tmp_path / "x.csv"), "--lr", "fast"]) == 2
    assert capsys.readouterr().err.strip() == ("error: argument --lr: must be a number, got 'fast' "
                                               "(see: deem aggregate --help)")
    assert main(["baselines", str(annotations), "--methods", "mv,nope"]) == 2
    assert "unknown method(s) nope" in capsys.readouterr().err


def test_baselines_prints_table_and_writes_labels(tmp_path, small_files, capsys):
    annotations, truth_path, df = small_files
    out = tmp_path / "baselines.csv"
    code = main(["baselines", str(annotations), "--methods", "mv,ds", "--truth", str(truth_path), "-o", str(out)])
    assert code == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert "Majority vote" in printed and "Dawid-Skene" in printed
    # each method says when it begins and how long it took (GLAD ran 10 minutes on 40,000 tasks with nothing on the
    # screen; walkthrough 45)
    said = [line for line in captured.err.splitlines() if line.startswith(("Majority vote:", "Dawid-Skene:"))]
    assert [line.split(":")[0] + ":" + line.split(":")[1][:8] for line in said] == [
        "Majority vote: fitting", "Majority vote: done in", "Dawid-Skene: fitting", "Dawid-Skene: done in"]
    assert said[0] == "Majority vote: fitting on 2,000 answers of 200 tasks ..."
    assert printed.splitlines()[0].split() == ["method", "name", "accuracy", "seconds"]  # no failure: no error column
    # without a truth no accuracy column (every row read "NaN" and "None", as if every method had failed; walk 46)
    assert main(["baselines", str(annotations), "--methods", "mv,ds"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split() == ["method", "name", "seconds"]
    table = pd.read_csv(out)
    assert list(table.columns) == ["task", "mv", "ds"] and len(table) == 200


def test_baselines_gives_majority_vote_and_dawid_skene_the_answers_not_crowdkit(tmp_path, small_files, monkeypatch):
    """The methods the registry marks ``sparse`` get the AnnotationSet read from the file and compute crowd-kit's
    algorithms on its answers (crowd-kit's own classes are never built); the labels are crowd-kit's. The other
    methods still get the long frame."""
    import crowdkit.aggregation  # noqa: PLC0415

    from deem_core.methods.baselines import DawidSkeneAggregator, MajorityVoteAggregator  # noqa: PLC0415

    annotations, truth_path, df = small_files
    expected = {"mv": MajorityVoteAggregator().fit(df), "ds": DawidSkeneAggregator().fit(df)}
    assert all(model.model_ is not None for model in expected.values())  # fitted by crowd-kit itself

    class Refused:
        def __init__(self, *args, **kwargs):
            raise AssertionError("crowd-kit's class was built")

    monkeypatch.setattr(crowdkit.aggregation, "MajorityVote", Refused)
    monkeypatch.setattr(crowdkit.aggregation, "DawidSkene", Refused)
    out = tmp_path / "baselines.csv"
    assert main(["baselines", str(annotations), "--methods", "mv,ds,onecoin", "--truth", str(truth_path),
                 "-o", str(out)]) == 0
    table = pd.read_csv(out, index_col="task").replace("'=blue", "=blue")  # as written: formula-safe
    assert list(table.columns) == ["mv", "ds", "onecoin"]
    for method, model in expected.items():
        pd.testing.assert_series_equal(table[method], model.labels_.rename(method), check_index_type=False)


@pytest.mark.parametrize("given", [False, True])
def test_a_truth_file_says_it_replaces_the_export_s_own_gold_labels(tmp_path, capsys, given):
    rows = ["INPUT:text\tOUTPUT:result\tGOLDEN:result\tASSIGNMENT:worker_id"]
    rows += [f"t{t}\t{'ab'[(t + w) % 2 if w else t % 2]}\t{'ab'[t % 2] if t < 3 and w == 0 else ''}\tw{w}"
             for t in range(12) for w in range(3)]
    export = tmp_path / "pool.tsv"
    export.write_text("\n".join(rows) + "\n")
    truth = tmp_path / "mine.csv"
    truth.write_text("task,truth\n" + "".join(f"t{t},{'ab'[t % 2]}\n" for t in range(12)))
    code = main(["aggregate", str(export), "-o", str(tmp_path / "out.csv"), "--method", "mv"]
                + (["--truth", str(truth)] if given else []))
    err = capsys.readouterr().err
    assert code == 0 and "3 gold labels" in err
    # (a --truth file set the export's own aside without a word; walkthrough 22)
    assert ("using mine.csv as truth, in place of the 3 gold labels of the input" in err) == given
    assert ("using the 3 gold labels of the input as truth (the export's control tasks: often easier and given to "
            "more workers than the others, so accuracies on them can read high)" in err) == (not given)
    assert f"on the {12 if given else 3} tasks that have a truth" in err
    # deem baselines reads them as deem aggregate does (it left them unread: no accuracy; walkthrough 105)
    code = main(["baselines", str(export), "--methods", "mv,ds"] + (["--truth", str(truth)] if given else []))
    out, err = capsys.readouterr()
    assert code == 0 and "accuracy" in out.splitlines()[0], out
    assert ("using mine.csv as truth, in place of the 3 gold labels of the input" in err) == given
    assert ("using the 3 gold labels of the input as truth (the export's control tasks" in err) == (not given)


@pytest.mark.parametrize("method", ["mv", "ds"])
def test_the_command_lines_labels_file_is_the_dashboards(tmp_path, small_files, method):
    """One method on one data set: ``deem aggregate`` writes the table a dashboard run stores and offers as its
    Labels CSV (the dashboard's had majority_vote and disagrees_with_majority, the command line's did not)."""
    from deem_core.data.formats.writers import serialise  # noqa: PLC0415
    from deem_core.data.formats import read_dataset  # noqa: PLC0415
    from deem_studio.jobs import JobManager  # noqa: PLC0415

    annotations, _, _ = small_files
    out = tmp_path / "labels.csv"
    assert main(["aggregate", str(annotations), "-o", str(out), "--method", method, "--no-progress"]) == 0
    manager = JobManager(tmp_path / "runs")
    try:
        run_id = manager.submit("train", {"methods": [method]}, data=read_dataset([annotations]).data)
        assert manager.wait(run_id, timeout=120).status == "finished"
        stored = manager.store.load(run_id).results[method]
    finally:
        manager.shutdown()
    assert out.read_bytes() == serialise(stored, "csv")
    assert "disagrees_with_majority" in pd.read_csv(out).columns


def test_truth_labels_that_are_no_class_are_left_out_of_the_accuracy_and_said(tmp_path, capsys):
    # labels no method can give counted as every method's wrong answer (0.853 read 0.640; walkthrough 36): the
    # accuracy is over the usable truth, as on the dashboard (one function: scoring.truth_of_classes)
    answers = tmp_path / "answers.csv"
    answers.write_text("task,worker,label\n1,a,x\n1,b,x\n2,a,y\n2,b,y\n3,a,x\n3,b,y\n")
    truth = tmp_path / "truth.csv"
    truth.write_text("task,truth\n1,x\n2,Y\n3,zz\n")
    assert main(["aggregate", str(answers), "--truth", str(truth), "-o", str(tmp_path / "out.csv"),
                 "--method", "mv"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "accuracy: 100.00"
    assert ("warning: 2 truth labels are not among the classes of the answers (e.g. “Y”; 1 of them differs from a "
            "class only in letter case: “Y” for “y”): left out of the accuracy" in err and "(accuracy on the 1 task that has a truth, 95% interval 20.65%-100.00%)" in err)


def test_truth_labels_all_left_out_are_said_so_and_a_look_alike_letter_is_named(tmp_path, capsys):
    """Attack round 30: every truth label capitalised ("Yes" for "yes") was left out, and then "no task of the truth
    file is among the annotated tasks" was said, though every task was annotated; a truth "yеs" with a Cyrillic "е"
    was quoted as if it read "yes"."""
    answers = tmp_path / "answers.csv"
    answers.write_text("task,worker,label\n" + "".join(f"t{t},w{w},{'yes' if t % 2 else 'no'}\n" for t in range(6)
                                                        for w in range(3)))
    truth = tmp_path / "truth.csv"
    truth.write_text("task,truth\n" + "".join(f"t{t},{'Yes' if t % 2 else 'No'}\n" for t in range(6)))
    assert main(["aggregate", str(answers), "--truth", str(truth), "-o", str(tmp_path / "out.csv"),
                 "--method", "mv"]) == 0
    err = capsys.readouterr().err
    assert ("warning: no truth label is left to score with once the 6 that are no class of the answers were left "
            "out: no accuracy") in err and "no task of the truth file" not in err, err
    cyrillic_yes = "y\u0435s"
    truth.write_text("task,truth\n" + "".join(f"t{t},{cyrillic_yes if t % 2 else 'no'}\n" for t in range(6)))
    assert main(["aggregate", str(answers), "--truth", str(truth), "-o", str(tmp_path / "out.csv"),
                 "--method", "mv"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "accuracy: 100.00"
    assert "(e.g. “y\u0435s” [cyrillic small letter ie U+0435]): left out of the accuracy" in err, err
    truth.write_text("task,truth\nother,yes\n")
    assert main(["aggregate", str(answers), "--truth", str(truth), "-o", str(tmp_path / "out.csv"),
                 "--method", "mv"]) == 0
    # which ids, and what to do (walkthrough 81: a truth keyed by HITId beside tasks read from Input.image_url)
    err = capsys.readouterr().err
    many = tmp_path / "many.csv"  # counts with their thousands separator ("wrote 3000 labels"; walkthrough 81)
    many.write_text("task,worker,label\n" + "".join(f"t{t},w{w},{t % 2}\n" for t in range(1200) for w in range(2)))
    assert main(["aggregate", str(many), "-o", str(tmp_path / "many_out.csv"), "--method", "mv"]) == 0
    assert "wrote 1,200 labels to" in capsys.readouterr().err
    assert ("no task of the truth file is among the annotated tasks (its first: 'other'; the input's first task: "
            "'t0'): no accuracy; if another column of the input names the tasks, give it with --task-column") in err
    # said before the training, once (it came after the labels were written; walkthrough 82)
    assert err.index("no task of the truth file") < err.index("wrote") and err.count("no task of the truth") == 1
    # deem baselines chooses its truth as deem aggregate does: it printed no accuracy column without a word (read 53)
    assert main(["baselines", str(answers), "--truth", str(truth), "--methods", "mv"]) == 0
    out, err = capsys.readouterr()
    assert "no task of the truth file is among the annotated tasks (its first: 'other'" in err, err
    assert "accuracy" not in out and "NaN" not in out, out  # (a column of NaN under it; walkthrough 109)


def test_deem_baselines_whose_every_method_fails_says_error_and_keeps_the_output(tmp_path, capsys):
    # KOS alone on three classes: exit 1 with no error line, and an empty file written over the output (attack
    # round 20)
    answers = tmp_path / "three.csv"
    answers.write_text("task,worker,label\n1,a,x\n1,b,y\n2,a,z\n2,b,x\n3,a,y\n3,b,y\n")
    out = tmp_path / "labels.csv"
    out.write_text("a good file\n")
    assert main(["baselines", str(answers), "--methods", "kos", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: no method could run on these data (kos: ") and err[-1].endswith(
        "; nothing was written")
    assert out.read_text() == "a good file\n"
    # one method that runs: its labels are written, as before
    assert main(["baselines", str(answers), "--methods", "kos,mv", "-o", str(out)]) == 0
    assert out.read_text().startswith("task,mv")


def test_a_piped_progress_line_says_the_time_left(monkeypatch, capsys):
    """Piped to a file, the progress lines gave the time spent only (the terminal's bar gives the time left too)."""
    from deem_core.cli import common  # noqa: PLC0415

    clock = iter([100.0, 131.0, 161.0, 400.0])  # started; then the ends of epochs 1, 2 and 10
    monkeypatch.setattr(common.time, "monotonic", lambda: next(clock))
    bar = common.ProgressBar(10, "DEEM")
    row = {"status": "running", "energy_difference": 0.25, "acceptance_rate": 0.5}
    for epoch in range(10):
        if epoch in (0, 1, 9):
            bar.on_epoch_end(epoch + 1, [row])
        else:
            bar.done += 1  # (epochs in between: no clock read)
    bar.close()
    lines = [line for line in capsys.readouterr().err.splitlines() if "epoch" in line]
    assert lines == ["DEEM: epoch 1 of 10 (10%), 31 s, about 279 s left, energy difference 0.250",
                     "DEEM: epoch 2 of 10 (20%), 61 s, about 244 s left, energy difference 0.250",
                     "DEEM: epoch 10 of 10 (100%), 300 s, energy difference 0.250"], lines


def test_an_accuracy_on_the_labels_the_model_trained_on_says_so(tmp_path, small_files, capsys):
    # walkthrough 59: with --gold-weight 1 the command line printed the accuracy on the labels DEEM had trained on
    # without a word (the page says it is no test of unseen tasks)
    annotations, truth_path, _ = small_files
    base = ["aggregate", str(annotations), "--epochs", "2", "--no-progress", "--truth", str(truth_path)]
    assert main(base + ["-o", str(tmp_path / "a.csv"), "--gold-weight", "1"]) == 0
    err = capsys.readouterr().err
    assert "the model trained on those labels (--gold-weight 1), so on them it is not a test of unseen tasks" in err
    assert main(base + ["-o", str(tmp_path / "b.csv")]) == 0
    assert "trained on those labels" not in capsys.readouterr().err
    assert main(base + ["-o", str(tmp_path / "c.csv"), "--method", "mv", "--gold-weight", "1"]) == 0
    assert "trained on those labels" not in capsys.readouterr().err  # (majority vote trains on nothing)


def test_a_gold_weight_without_gold_labels_is_refused_and_the_truth_columns_are_said(tmp_path, small_files, capsys):
    """Walkthrough 64: ``--gold-weight 1`` without ``--truth`` trained without gold labels and exited 0 without a
    word, and a truth file of columns ``task,gold`` was read with no line saying which column was the truth."""
    annotations, truth_path, _ = small_files
    base = ["aggregate", str(annotations), "--epochs", "2", "--no-progress"]
    assert main(base + ["-o", str(tmp_path / "a.csv"), "--gold-weight", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("error: --gold-weight 1 weighs gold labels, and there are none: give them with --truth (a CSV "
                       "task,truth), or leave --gold-weight out"), err
    assert not (tmp_path / "a.csv").exists()
    assert main(base + ["-o", str(tmp_path / "b.csv"), "--method", "mv", "--gold-weight", "1"]) == 0  # (unused)
    renamed = tmp_path / "renamed.csv"
    renamed.write_text(truth_path.read_text().replace("truth", "gold", 1))
    assert main(base + ["-o", str(tmp_path / "c.csv"), "--truth", str(renamed)]) == 0
    err = capsys.readouterr().err
    assert "truth: read " in err and "from renamed.csv (column 'task' as the task, 'gold' as the truth)" in err, err


def test_labels_the_safety_rule_took_from_a_reference_with_gold_labels_are_not_called_trained_on_them(tmp_path, capsys):
    # a copied weak model: with --gold-weight 1 the safety rule returns the cluster-weighted Dawid-Skene, which used
    # no gold label; the accuracy line said "the model trained on those labels", the choice told how to train
    # DEEM's own model "without this check" (with gold labels a set start is checked too)
    from test_clusters import copied_group_set  # noqa: PLC0415

    labels, truth = copied_group_set(n=500, seed=5)
    rows = [(t, f"w{w}", int(labels[t, w])) for t in range(labels.shape[0]) for w in range(labels.shape[1])]
    pd.DataFrame(rows, columns=["task", "worker", "label"]).to_csv(tmp_path / "a.csv", index=False)
    pd.DataFrame({"task": range(150), "truth": truth[:150]}).to_csv(tmp_path / "gold.csv", index=False)
    assert main(["aggregate", str(tmp_path / "a.csv"), "--epochs", "2", "--layers", "0", "--no-progress", "--truth",
                 str(tmp_path / "gold.csv"), "--gold-weight", "1", "-o", str(tmp_path / "out.csv")]) == 0
    err = capsys.readouterr().err
    assert ("the labels come from cluster-weighted Dawid-Skene, which used none of them; the safety rule checked it "
            "on half of them") in err
    assert "trained on those labels" not in err
    assert "choice: --gold-weight 0 and --init ds (or mv) with a number of --layers trains DEEM's own model" in err


def test_majority_vote_s_accuracy_says_what_its_tie_rule_won(tmp_path, capsys):
    """Walkthrough 82: majority vote's lead on the truth came from its ties, said nowhere beside its accuracy. Both
    commands that score it say how many scored tasks are ties, how many its class order got right there and what a
    pick at random among the tied labels would (here the order picks "x", right on both ties; a coin would win 1)."""
    answers = tmp_path / "answers.csv"
    answers.write_text("task,worker,label\n1,a,x\n1,b,y\n2,a,x\n2,b,y\n3,a,y\n3,b,y\n4,a,x\n4,b,x\n")
    truth = tmp_path / "truth.csv"
    truth.write_text("task,truth\n1,x\n2,x\n3,y\n4,y\n")
    said = ("(majority vote is a tie on 2 of the 4 tasks that have a truth; its tie rule's order of the classes picked "
            "the right label on 2 of them, where a pick at random among the tied labels would be right on about 1.0: "
            "the order adds about 25.0 points to its accuracy, by chance rather than from the answers)")
    # (in points beside the accuracy in percent: "0.009" beside "74.50" read as a hundredth of a point; walkthrough 85)
    assert main(["aggregate", str(answers), "--truth", str(truth), "-o", str(tmp_path / "out.csv"),
                 "--method", "mv"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "accuracy: 75.00" and said in err
    assert main(["baselines", str(answers), "--truth", str(truth), "--methods", "mv,ds"]) == 0
    assert said in capsys.readouterr().err
    # another method's accuracy says nothing of majority vote's ties
    assert main(["aggregate", str(answers), "--truth", str(truth), "-o", str(tmp_path / "ds.csv"),
                 "--method", "ds"]) == 0
    assert "tie rule" not in capsys.readouterr().err


def test_baselines_leave_truth_labels_that_are_no_class_out_as_aggregate_does(tmp_path, capsys):
    """Attack round 45: ``deem baselines`` scored truth labels that are no class of the answers (0.0 for every method)
    and its tie line counted them ("a tie on 33 of the 100 tasks ... about 0.0"); ``deem aggregate`` left them out
    and said so. Both now do the same."""
    answers = tmp_path / "answers.csv"
    answers.write_text("task,worker,label\n1,a,x\n1,b,y\n2,a,x\n2,b,x\n3,a,y\n3,b,y\n")
    truth = tmp_path / "truth.csv"
    truth.write_text("task,truth\n1,zz\n2,x\n3,qq\n")
    assert main(["baselines", str(answers), "--truth", str(truth), "--methods", "mv,ds"]) == 0
    out, err = capsys.readouterr()
    assert "warning: 2 truth labels are not among the classes of the answers" in err
    table = [line.split() for line in out.splitlines()[1:]]
    assert [row[-2] for row in table] == ["100.00", "100.00"], out  # on task 2 alone, two decimals as every table (walkthrough 110)
    assert "tie rule" not in err  # task 1, the one tie, has no usable truth
    # none left: no column of NaN (the diff's read), said once
    truth.write_text("task,truth\n1,zz\n2,ww\n")
    assert main(["baselines", str(answers), "--truth", str(truth), "--methods", "mv,ds"]) == 0
    out, err = capsys.readouterr()
    assert "accuracy" not in out and "NaN" not in out and "no truth label is left to score with: no accuracy" in err


def test_the_command_line_writes_labels_in_the_dashboards_order(tmp_path, capsys):
    """Walkthrough 108: `deem aggregate` wrote q0, q1, q10, q100 where the dashboard's download read q0, q1, q2 (text
    order against natural order): a diff of the two files changed nearly every line. Both follow one rule now."""
    from deem_core.data.text import in_natural_order  # the dashboard's tables' order (pages.common.run_tables)

    answers = tmp_path / "q.csv"
    answers.write_text("task,worker,label\n" + "".join(f"q{t},w{w},{(t + w) % 2}\n" for t in range(12) for w in range(3)))
    for command in (["aggregate", str(answers), "--method", "mv", "-o", str(tmp_path / "a.csv")],
                    ["baselines", str(answers), "--methods", "mv", "-o", str(tmp_path / "b.csv")]):
        assert main(command) == 0
    capsys.readouterr()
    expected = [f"q{t}" for t in range(12)]
    for name in ("a.csv", "b.csv"):
        written = pd.read_csv(tmp_path / name)
        assert written["task"].tolist() == expected, written["task"].tolist()
    frame = pd.read_csv(tmp_path / "a.csv").set_index("task")
    assert in_natural_order(frame.sample(frac=1.0, random_state=0)).index.tolist() == expected


def test_the_written_lines_count_in_the_singular_too(tmp_path, capsys):
    """Read 54: "wrote 1 labels to tworows.out.csv" (and "wrote 1 tasks x 1 method")."""
    answers = tmp_path / "one.csv"
    answers.write_text("task,worker,label\nq,a,x\nq,b,y\n")
    assert main(["aggregate", str(answers), "--method", "mv", "-o", str(tmp_path / "a.csv")]) == 0
    assert f"wrote 1 label to {tmp_path / 'a.csv'}" in capsys.readouterr().err
    assert main(["baselines", str(answers), "--methods", "mv", "-o", str(tmp_path / "b.csv")]) == 0
    assert "wrote 1 task x 1 method to" in capsys.readouterr().err


def test_baselines_leave_the_error_cell_of_a_method_that_ran_empty(tmp_path, capsys):
    """Walkthrough 111: where one method failed (KOS on 4 classes), every method that ran read "None" in the error
    column."""
    answers = tmp_path / "four.csv"
    answers.write_text("task,worker,label\n" + "".join(f"t{t},w{w},{'abcd'[(t + w) % 4]}\n" for t in range(12)
                                                         for w in range(3)))
    assert main(["baselines", str(answers), "--methods", "mv,kos"]) == 0
    captured = capsys.readouterr()
    out, err = captured.out, captured.err
    rows = out.splitlines()
    assert rows[0].split()[-1] == "error", out
    assert "None" not in out and rows[1].split()[:2] == ["mv", "Majority"], out
    assert "kos" in rows[2] and len(rows[2].split()) > len(rows[1].split()), out  # the failure said, the other empty
    # the failure's message below the table, without its exception's name; no row padded to its width (walkthrough
    # 112: "ValueError: ..." in a column of 150 characters)
    assert rows[2].rstrip().endswith("failed (below)") and max(len(r) for r in rows) < 80, out
    assert "warning: KOS did not run: kos supports only 2 classes (binary labels); this data has 4 classes" in err, err
    assert "ValueError" not in out + err
    # every classic method by one word (it was refused as an unknown method)
    assert main(["baselines", str(answers), "--methods", "all"]) == 0
    out = capsys.readouterr().out
    assert all(f" {m} " in f" {out} " for m in ("mv", "ds", "glad", "kos", "mmsr")), out


def test_truth_labels_of_tasks_nobody_annotated_are_said_and_a_file_naming_some_is_not_called_one_of_none(tmp_path,
                                                                                                           capsys):
    """Walkthrough 111: 50 truth labels of tasks not in the data were left out without a word; and a truth whose
    annotated tasks all had labels of no class read "no task of the truth file is among the annotated tasks"."""
    answers = tmp_path / "an.csv"
    answers.write_text("task,worker,label\n1,a,x\n1,b,x\n2,a,y\n2,b,y\n3,a,x\n3,b,y\n")
    truth = tmp_path / "tr.csv"
    truth.write_text("task,truth\n1,x\n2,y\nghost,x\n")
    assert main(["baselines", str(answers), "--methods", "mv", "--truth", str(truth)]) == 0
    err = capsys.readouterr().err
    assert "warning: 1 truth label names a task nobody annotated (e.g. 'ghost'): left out of the accuracy" in err, err
    truth.write_text("task,truth\n1,horse\n2,horse\nghost1,x\n")
    assert main(["aggregate", str(answers), "--method", "mv", "--truth", str(truth), "-o", str(tmp_path / "o.csv")]) == 0
    err = capsys.readouterr().err
    assert "no task of the truth file is among the annotated tasks" not in err, err
    assert "2 truth labels are not among the classes of the answers" in err and "names a task nobody annotated" in err
    # a label of no class on a task nobody annotated is counted once, with the tasks (11 + 2 of 12 left out; the
    # dashboard said 2 and 10 more; walkthrough 112)
    truth.write_text("task,truth\n1,horse\n2,y\nghost1,horse\nghost2,x\n")
    assert main(["baselines", str(answers), "--methods", "mv", "--truth", str(truth)]) == 0
    err = capsys.readouterr().err
    assert "2 truth labels name tasks nobody annotated" in err and "1 truth label is not among the classes" in err, err


def test_the_label_studio_model_version_of_the_command_says_the_gold_weight_and_numbers_as_the_dashboard(tmp_path,
                                                                                                        capsys):
    """Walkthrough 113: the command's file read "lr 3" and no gold weight where the dashboard's read "lr 3.0, ..., gold
    weight 1.0" of the same settings."""
    from deem_studio.wording import model_version

    df, truth = read_sample("condind", n_tasks=120)
    df.to_csv(tmp_path / "a.csv", index=False)
    truth.rename("truth").reset_index().to_csv(tmp_path / "t.csv", index=False)
    assert main(["aggregate", str(tmp_path / "a.csv"), "--truth", str(tmp_path / "t.csv"), "--gold-weight", "1",
                 "--layers", "1", "--init", "ds", "--epochs", "2", "--lr", "0.3", "--no-progress", "-o",
                 str(tmp_path / "ls.json"), "--output-format", "label-studio"]) == 0
    err = capsys.readouterr().err
    # the control's names are this program's own (the data were not an export): said, with the config that takes them
    # (walkthrough 116)
    assert "so the file's predictions name the control 'label' on 'task'" in err
    assert '<Choices name="label" toName="task" choice="single">' in [line.strip() for line in err.splitlines()]
    assert sum(line.strip().startswith("<Choice value=") for line in err.splitlines()) == df["label"].nunique()
    # past 30 classes not printed, and said so (nothing was; walkthrough 118)
    many = pd.DataFrame({"task": [t for t in range(62) for _ in range(2)], "worker": ["a", "b"] * 62,
                         "label": [f"c{t % 31}" for t in range(62) for _ in range(2)]})
    many.to_csv(tmp_path / "many.csv", index=False)
    assert main(["aggregate", str(tmp_path / "many.csv"), "--method", "mv", "--no-progress", "-o",
                 str(tmp_path / "many.json"), "--output-format", "label-studio"]) == 0
    err = capsys.readouterr().err
    assert "(the config of its 31 classes is not printed past 30: write a <Choice value=\"...\"/> for each class" in err
    assert "<View>" not in err
    version = json.loads((tmp_path / "ls.json").read_text())[0]["predictions"][0]["model_version"]
    assert version.startswith("DEEM Studio DEEM (layers 1, epochs 2, lr 0.3, init ds, seeds 1, seed 0, gold weight 1)"), \
        version
    dashboard = model_version("deem", {"n_layers": 1, "epochs": 2, "lr": 0.3, "init": "ds", "n_seeds": 1, "seed": 0,
                                       "supervised_weight": 1.0}, {}, None, "r")
    assert dashboard.startswith(version.split(")")[0] + ")"), (dashboard, version)


def test_the_command_line_warns_of_copying_workers_and_of_one_label_for_everything(tmp_path, capsys):
    """Walkthrough 118: the Data and Train pages said that two workers gave the same label on every task they share
    and that a worker gave one label for everything; the command line said neither."""
    import numpy as np  # noqa: PLC0415

    rng = np.random.default_rng(0)
    truth = rng.integers(3, size=80)
    answers = {f"w{m}": np.where(rng.random(80) < 0.8, truth, rng.integers(3, size=80)) for m in range(4)}
    answers["copy"] = answers["w0"]
    answers["lazy"] = np.zeros(80, dtype=int)
    wide = pd.DataFrame({"task": range(80), **{w: [f"c{v}" for v in labels] for w, labels in answers.items()}})
    wide.to_csv(tmp_path / "wide.csv", index=False)
    for command in (["aggregate", str(tmp_path / "wide.csv"), "-o", str(tmp_path / "out.csv"), "--method", "mv"],
                    ["baselines", str(tmp_path / "wide.csv"), "--methods", "mv"]):
        assert main(command + ["--no-progress"] if command[0] == "aggregate" else command) == 0
        err = capsys.readouterr().err
        # (a copy of a worker who agrees with the others as often as the best of the four others: said as possibly
        # right, as the Data and Train pages say it)
        assert ("warning: Workers 'copy', 'w0' gave the same label on all the 80 tasks they share, and agree with the "
                "other workers' answers as often as the best tenth of those other workers do") in err, err
        assert ("warning: One label for everything: 'lazy' gave “c0” on all 80 of its answers (the other answers "
                "favour another class on ") in err and "deem diagnose flags these workers" in err, err
