"""Worker names of up to the value limit (10,000 characters) in outputs that repeat them (attack round 46): a 1.6 MB
wide CSV of 150 copying workers so named took one Diagnostics job to 9.5 GB of server memory and 1.8 GB of files, and
the worker table's partner column grew as the square of the cluster (223 million characters, a 450 MB page message)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deem_core.analysis.agreement import cluster_partners
from deem_core.analysis.diagnostics import mutual_information as mi_module
from deem_core.analysis.diagnostics.mutual_information import MutualInformationResult
from deem_core.analysis.diagnostics.quality import QualityResult
from deem_core.cli import main
from deem_core.data.text import names_text
from deem_core.plots import report as report_module
from deem_core.plots.report import confusion_long_frame


def test_a_cluster_of_long_names_gives_each_worker_a_bounded_partner_list():
    names = [f"{i:03d}" + "x" * 10_000 for i in range(150)]
    partners = cluster_partners({"clusters": [{"workers": names}]}, names + ["alone"])
    assert len(partners) == 151 and partners[-1] == ""
    # eight names cut to 40 characters, then how many more: the column grows as the cluster, not its square
    assert all(p.endswith(" and 141 more") and len(p) < 8 * 42 + 20 for p in partners[:-1])
    assert partners[0].startswith("001xxx") and "000xxx" not in partners[0]  # a worker is not its own partner
    assert partners[1].startswith("000xxx")
    small = cluster_partners({"clusters": [{"workers": ["w1", "w2", "w3"]}]}, ["w1", "w2", "w3", "w4"])
    assert small == ["w2, w3", "w1, w3", "w1, w2", ""]
    # whole names while a cell stays short (the review: hashes of 64 characters and clusters of 10 or more were cut)
    hashes = [f"{i:064x}" for i in range(12)]
    whole = cluster_partners({"clusters": [{"workers": hashes}]}, hashes)
    assert whole[0] == ", ".join(hashes[1:]) and "..." not in "".join(whole) and "more" not in "".join(whole)


def test_names_holding_a_comma_are_quoted_where_names_are_listed():
    """Two copiers renamed "w01, w02" and "w05, w06" read as four innocent workers among the copiers."""
    assert names_text(["w01, w02", "w38"]) == "“w01, w02”, “w38”"
    assert names_text(["a and b", "c"]) == "“a and b”, “c”"
    assert names_text(["w1", "w2"]) == "w1, w2"
    # a semicolon or parenthesis too: groups are listed joined by "; ", each with its figures in parentheses, and a
    # worker named "x; 2 workers: alice" read as a second group (read 41)
    assert names_text(["x; 2 workers: alice", "w2"]) == "“x; 2 workers: alice”, “w2”"
    assert names_text(["w (agree +0.9)", "w2"]) == "“w (agree +0.9)”, “w2”"
    assert cluster_partners({"clusters": [{"workers": ["w01, w02", "w38", "w39"]}]}, ["w39"]) == ["“w01, w02”, “w38”"]


def _mi_result(names: list[str], n_layers: int = 2) -> MutualInformationResult:
    d, c = len(names), 2
    rng = np.random.default_rng(0)
    mi = rng.random((n_layers + 1, c, d, d))
    common = rng.integers(10, 100, size=(c, d, d))
    return MutualInformationResult(mi=mi, n_common=common, classes=["a", "b"], class_counts=np.array([50, 50]),
                                   workers=names, layers=[f"L{i}" for i in range(n_layers + 1)], class_source="DEEM",
                                   min_common=10, run=0)


def test_messages_naming_columns_cut_each_long_name_and_count_the_rest(tmp_path):
    """Walkthrough 113: a wide file of 2,400-character column names read as long gave one 73 KB error line (the
    CLI's; a 73,466-character warning on the Data page), every column quoted whole; an ignored column of notes was
    named whole too. Each name is cut (head and tail), at most a dozen named."""
    from deem_core.data.annotations import DataError
    from deem_core.data.formats import read_dataset

    names = [f"annotator-{i:02d}-" + "n" * 2_400 for i in range(30)]
    wide = tmp_path / "wide.csv"
    wide.write_text("task," + ",".join(names) + "\n" + "".join(f"t{t}," + ",".join("ab"[(t + w) % 2] for w in
                                                                                  range(30)) + "\n" for t in range(6)))
    with pytest.raises(DataError) as caught:
        read_dataset(wide, format="long")
    said = str(caught.value)
    assert len(said) < 2_000 and "and 19 more" in said and "'annotator-00-" in said, (len(said), said[:300])
    notes = tmp_path / "notes.csv"
    notes.write_text("task,worker,label,comment " + "c" * 3_000 + "\n" + "".join(f"t{t},w{w},a,x\n" for t in range(3)
                                                                            for w in range(2)))
    warned = [w for w in read_dataset(notes).data.warnings if "comment" in w]
    assert warned and all(len(w) < 1_000 for w in warned), [len(w) for w in warned]


def test_many_workers_heatmaps_stack_their_layers_and_draw_a_readable_number_of_names():
    """Walkthrough 112: 105 workers with long names made each layer's heatmap cells 3 px wide and 20 px high side by
    side, every name drawn on the axes into one grey smear. Past 40 workers the layers stand one above the other,
    each as wide as the page, and at most 40 names are drawn an axis (the whole names on hover)."""
    from deem_core.plots.axes import MAX_NAMED_TICKS
    from deem_core.plots.diagnostics import importance_bars, mi_heatmaps

    names = [f"w{i}-" + "очень-длинное-имя-" + "x" * 20 for i in range(105)]
    fig = mi_heatmaps(_mi_result(names), "a")
    assert fig.layout.xaxis.domain == fig.layout.xaxis2.domain and fig.layout.yaxis2.domain[1] < fig.layout.yaxis.domain[0]
    for axis in (fig.layout.xaxis, fig.layout.yaxis, fig.layout.xaxis2, fig.layout.yaxis2):
        assert 0 < len(axis.tickvals) <= MAX_NAMED_TICKS and len(axis.tickvals) == len(axis.ticktext)
    assert list(fig.data[0].x) == names  # (every cell, named whole on hover)
    few = mi_heatmaps(_mi_result(names[:12]), "a")  # (a few: side by side, as before)
    assert few.layout.xaxis.domain[1] < few.layout.xaxis2.domain[0]
    table = pd.DataFrame({"worker": names * 2, "subset": ["selected"] * 105 + ["rest"] * 105, "importance": 0.1,
                          "std_error": 0.01, "n_answered": 5})
    bars = importance_bars(table)
    assert 0 < len(bars.layout.xaxis.tickvals) <= MAX_NAMED_TICKS and 0 < len(bars.layout.xaxis2.tickvals) <= 40
    # the two panels one above the other (109 bars a panel side by side; walkthrough 113)
    assert bars.layout.xaxis.domain == bars.layout.xaxis2.domain and bars.layout.yaxis2.domain[1] < bars.layout.yaxis.domain[0]
    side = importance_bars(table[table["worker"].isin(names[:10])])
    assert side.layout.xaxis.domain[1] < side.layout.xaxis2.domain[0]


def test_the_all_pairs_mi_table_is_bounded_by_the_characters_of_its_names(monkeypatch):
    short = _mi_result([f"w{i}" for i in range(30)])
    assert len(short.long_frame()) == 30 * 29 * 3 * 2 and short.table_note() is None  # (as before: all pairs)
    names = [f"{i:02d}" + "x" * 2_000 for i in range(30)]
    monkeypatch.setattr(mi_module, "MI_MAX_NAME_CHARS", 1_000_000)
    result = _mi_result(names)
    table = result.long_frame()
    chars = int((table["worker_a"].str.len() + table["worker_b"].str.len()).sum())
    assert 900_000 < chars <= 1_000_000 and len(table) < 30 * 29 * 3 * 2
    # the pairs kept are those with the most tasks in common, each with its every row (layer x class)
    shared = result.n_common.sum(axis=0)
    kept = set(zip(table["worker_a"], table["worker_b"]))
    index = {name: i for i, name in enumerate(names)}
    kept_min = min(shared[index[a], index[b]] for a, b in kept)
    left_max = max(shared[i, j] for i in range(30) for j in range(30)
                   if i != j and (names[i], names[j]) not in kept)
    assert kept_min >= left_max and len(table) == len(kept) * 3 * 2
    note = result.table_note()
    assert note == table.attrs["note"] and f"the {len(kept):,} ordered worker pairs" in note
    assert "1 million characters of names at most" in note


def test_the_all_confusion_matrices_table_is_bounded_by_its_characters(monkeypatch):
    d, k = 20, 3
    names = [f"{i:02d}" + "y" * 5_000 for i in range(d)]
    matrices = np.full((d, k, k), 1 / k)
    quality = QualityResult(table=pd.DataFrame({"worker": names}), empirical=matrices, empirical_counts=matrices * 10,
                            irbm=matrices, gold=None, workers=names, classes=["a", "b", "c"], n_layers=1)
    assert len(confusion_long_frame(quality)) == 2 * d * k * k and "note" not in confusion_long_frame(quality).attrs
    monkeypatch.setattr(report_module, "CONFUSION_MAX_CHARS", 500_000)
    table = confusion_long_frame(quality)
    assert 0 < table["worker"].nunique() < d and int(table["worker"].str.len().sum()) <= 500_000
    assert table["worker"].unique().tolist() == names[:table["worker"].nunique()]  # the first workers, whole
    assert table.attrs["note"].startswith(f"the first {table['worker'].nunique()} of the {d} workers only")


def test_deem_diagnose_on_long_copying_names_writes_bounded_files_and_lines(tmp_path, capsys):
    """The CLI of the same: 7.0 GB, 128 s and 1.8 GB of files, and twenty 10,000-character lines on stderr."""
    rng = np.random.default_rng(1)
    n, copiers = 150, 30
    truth = rng.integers(3, size=n)
    opinion = np.where(rng.random(n) < 0.6, truth, rng.integers(3, size=n))
    columns = {"task": np.arange(n)}
    for i in range(copiers):
        columns[f"{i:02d}" + "z" * 3_000] = np.where(rng.random(n) < 0.95, opinion, rng.integers(3, size=n))
    for i in range(4):
        columns[f"own{i}"] = np.where(rng.random(n) < 0.7, truth, rng.integers(3, size=n))
    path = tmp_path / "wide.csv"
    pd.DataFrame(columns).to_csv(path, index=False)
    out = tmp_path / "diag"
    assert main(["diagnose", str(path), "-o", str(out), "--epochs", "3", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert max(len(line) for line in err.splitlines()) < 1_500, max(err.splitlines(), key=len)[:300]
    workers = pd.read_csv(out / "workers.csv")
    assert "dependent_with" in workers and workers["dependent_with"].notna().sum() >= 20  # the copiers found
    assert workers["dependent_with"].fillna("").str.len().max() < 8 * 42 + 20  # eight partners named at most
    assert (out / "workers.csv").stat().st_size < 34 * 3_100 + 100_000  # each name once, not once per partner


def test_the_dialect_note_cuts_long_column_names():
    from deem_core.data.formats.dialects import QUOTED_CHARS, _quoted  # noqa: PLC0415

    assert _quoted("task") == "'task'"
    long = _quoted("q" * 10_000)
    assert len(long) <= QUOTED_CHARS + 2 and long.endswith("...'")


def test_labels_json_of_long_class_names_is_refused_before_it_is_made_and_made_in_small_chunks(monkeypatch):
    """Attack round 47: every record repeats each class's name (``p_<class>``): 4,000 tasks of 40 classes named in
    10,000 characters (a 31 KB upload) made a 1.6 GB "Labels JSON" and took the server to 6.5 GB, from a run link's
    visitor too."""
    import json  # noqa: PLC0415

    from deem_core.data.annotations import DataError  # noqa: PLC0415
    from deem_core.data.formats import writers  # noqa: PLC0415

    names = [f"{i}" + "c" * 2_000 for i in range(5)]
    table = pd.DataFrame(np.full((40, 5), 0.2), columns=[f"p_{n}" for n in names],
                         index=pd.Index([f"t{i}" for i in range(40)], name="task"))
    table.insert(0, "label", names[0])
    whole = json.dumps(writers._records(table), ensure_ascii=False, allow_nan=False, indent=1).encode()
    monkeypatch.setattr(writers, "JSON_CHUNK_CHARS", 25_000)  # a few records a chunk: the same bytes
    made = writers.serialise(table, "json")
    assert made == whole and 0.8 < writers.json_row_chars(table) * 40 / len(made) < 1.3
    monkeypatch.setenv("DEEM_MAX_INPUT_BYTES", str(len(made) // 2))
    with pytest.raises(DataError, match=r"the labels as JSON would be about .* CSV and Parquet write each name once"):
        writers.serialise(table, "json")
    assert len(writers.serialise(table, "csv")) < len(made) / 5  # (the names once, in the header)


@pytest.mark.parametrize("name_chars", [1, 10_000])
def test_a_labels_files_expected_size_counts_its_long_texts(name_chars):
    """A download's expected size is read before the file is made, to send a large one to a line of its own (attack
    round 56): at 20 bytes a cell, labels of classes named with 10,000 characters were taken for a small file (attack
    round 57). The estimate is never below the file, and near it; the JSON bound of the same figure counts the labels'
    texts, of pandas' own text type too."""
    from deem_core.data.formats import writers  # noqa: PLC0415

    names = [f"{i}" + "c" * (name_chars - 1) for i in range(4)]
    rng = np.random.default_rng(1)
    table = pd.DataFrame(rng.dirichlet(np.ones(4), 300), columns=[f"p_{n}" for n in names],
                         index=pd.Index([f"task-{i}" for i in range(300)], name="task"))
    table.insert(0, "label", [names[i % 4] for i in range(300)])
    table.insert(1, "confidence", table.iloc[:, 1:].max(axis=1))
    for fmt in ("csv", "json", "parquet"):
        made = len(writers.serialise(table, fmt))
        expected = writers.expected_sizes(table)[fmt]
        # (Parquet writes repeated texts once: at most the CSV's)
        assert made <= expected and (fmt == "parquet" or expected < 3 * made + 4_000), (fmt, made, expected)


def _long_named_diagnostics(n_tasks: int, n_classes: int, seed: int):
    """The diagnostics of a 2-epoch DEEM on ``n_tasks`` tasks of ``n_classes`` classes by 8 workers right 80% of the
    time, each named with 302 characters ("00nnn...")."""
    from deem_core import DEEM  # noqa: PLC0415
    from deem_core.analysis.diagnostics import run_diagnostics  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    truth = rng.integers(n_classes, size=n_tasks)
    rows = [(t, f"{w:02d}" + "n" * 300, int(truth[t]) if rng.random() < 0.8 else int(rng.integers(n_classes)))
            for t in range(n_tasks) for w in range(8)]
    frame = pd.DataFrame(rows, columns=["task", "worker", "label"])
    return run_diagnostics(DEEM(epochs=2, device="cpu").fit(frame), frame)


def test_report_html_stops_adding_class_heatmaps_past_its_size(tmp_path, monkeypatch):
    """Attack round 47: report.html drew every class's heatmaps, each repeating every worker's name and a hover text
    a cell: 30 classes of 150 workers named in 10,000 characters made 167 MB a press of Compute diagnostics."""
    diagnostics = _long_named_diagnostics(300, 4, seed=3)
    full = report_module.write_report(diagnostics, tmp_path / "all")["report"].read_text(encoding="utf-8")
    assert full.count("<h2>Mutual information, class ") == 4 and "left out of this report" not in full
    one = len(full) // 6  # room for the summary figure and about one class's heatmaps
    monkeypatch.setattr(report_module, "REPORT_MAX_CHARS", one)
    cut = report_module.write_report(diagnostics, tmp_path / "cut")["report"].read_text(encoding="utf-8")
    shown = cut.count("<h2>Mutual information, class ")
    assert shown < 4 and f"heatmaps of {4 - shown} of the 4 classes are left out of this report" in cut
    # the importance and quality figures within the bound too, or said left out (written whole past it: 8,000 workers
    # named with 10,000 characters made a 568 MB report; attack round 58); the tables' names cut
    assert len(cut) < len(full) and "<h2>Worker quality</h2>" in full and "<h2>Worker quality</h2>" not in cut
    assert "Worker quality: left out, past the report's size" in cut, cut[-600:]
    assert "0" + "n" * 300 not in full.split("<h2>Dependence per layer</h2>")[0]  # (the tables above the figures)
    assert "(302 characters)" in full


def test_quote_marks_inside_listed_names_are_escaped():
    """Attack round 47: workers renamed ``w01”, “w02`` and ``w05”, “w06`` read, once quoted, as four innocent workers
    in a copying group's list."""
    import re  # noqa: PLC0415

    from deem_core.data.text import all_names_text  # noqa: PLC0415

    given = ["w01”, “w02", "w05”, “w06", "w38"]
    shown = names_text(given)
    assert shown == "“w01””, ““w02”, “w05””, ““w06”, “w38”"  # (“ ” doubled inside a name, as CSV doubles its quotes)
    read = [n.replace("““", "“").replace("””", "”") for n in re.findall(r"“((?:““|””|[^“”])*)”", shown)]
    assert read == given  # three names, as given
    # other quote marks stay as written: the names read as the worker column spells them (walkthrough 88)
    assert all_names_text(['a"b', "it's", "x,y"]) == "“a\"b”, “it's”, “x,y”"


def test_a_label_studio_control_name_past_its_limit_is_refused(tmp_path, capsys):
    """Attack round 47: one answer's 100,000-character ``to_name`` went into every prediction written back (a 966 KB
    export, a 200 MB file)."""
    import json  # noqa: PLC0415

    for long_at in ((0, 0), (8, 2)):  # the first answer's, and one further on (walkthrough 88: that one was taken)
        tasks = [{"id": i, "data": {"text": f"t{i}"}, "annotations": [
            {"completed_by": w, "result": [{"from_name": "sentiment",
                                            "to_name": "text" + ("x" * 5_000 if (i, w) == long_at else ""),
                                            "type": "choices", "value": {"choices": ["a" if (i + w) % 3 else "b"]}}]}
            for w in range(3)]} for i in range(20)]
        path = tmp_path / "export.json"
        path.write_text(json.dumps(tasks))
        assert main(["aggregate", str(path), "-o", str(tmp_path / "out.json"), "--method", "mv", "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert "a control name (to_name) of 5,004 characters, more than the 1,000" in err and len(err) < 400


def test_saved_diagnostics_of_long_names_keep_meta_json_small_and_read_back(tmp_path, monkeypatch):
    """Attack round 58: 8,000 workers named with 10,000 characters made the saved diagnostics' meta.json 94 MB, past
    what the page reads back (after a restart it said the diagnostics were "saved in an older format"). Long lists of
    names go to tables of their own; the result reads back the same."""
    from deem_studio import diagnostics_state  # noqa: PLC0415

    monkeypatch.setattr(diagnostics_state, "NAMES_IN_META_CHARS", 2_000)  # (8 names of 301 characters pass it)
    result = _long_named_diagnostics(200, 3, seed=5)
    folder = diagnostics_state.save_diagnostics(tmp_path / "diag", result)
    assert "n" * 300 not in (folder / "meta.json").read_text(encoding="utf-8")
    back = diagnostics_state.load_diagnostics(folder)
    assert back is not None
    assert list(back.mutual_information.workers) == list(result.mutual_information.workers)
    assert list(back.quality.workers) == list(result.quality.workers)


def test_class_names_in_the_importance_words_are_cut_head_and_tail():
    """Walkthrough 114: the Diagnostics note "the choice above now asks for tasks whose gold label is ..." quoted a
    class of ~3,000 characters whole. The engine's words name each class cut to 60 characters, head and tail."""
    from deem_core.analysis.diagnostics.importance import class_names_text

    said = class_names_text(["Beta " + "x" * 3_000 + " ENDONE", "Beta " + "x" * 3_000 + " ENDTWO"])
    assert len(said) < 140 and "ENDONE" in said and "ENDTWO" in said, said
    assert class_names_text(["0", "2"]) == "0 or 2"
