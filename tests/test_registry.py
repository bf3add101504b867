"""One method registry: a method registered in one place appears in the CLI, the Train page, the job manager
and the benchmark runner; every built-in method implements the Aggregator interface."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pandas as pd
import pytest

from deem_core.analysis.scoring import accuracy, accuracy_and_count, accuracy_interval, calibration
from deem_core.data.annotations import AnnotationSet
from deem_core.data.export import label_table
from deem_core.methods import registry
from deem_core.methods.base import Aggregator

from conftest import ROOT, read_sample


class FirstAnswer(Aggregator):
    """Toy method: each task's first answer."""

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, data, gold=None):
        long = data.to_long() if isinstance(data, AnnotationSet) else data
        self.labels_ = long.groupby("task", sort=True)["label"].first().rename("label")
        self.classes_ = pd.Index(sorted(long["label"].unique()))
        return self

    def predict_proba(self):
        codes = self.classes_.get_indexer(self.labels_)
        return pd.DataFrame(np.eye(len(self.classes_))[codes], index=self.labels_.index, columns=self.classes_)

    def results_frame(self):
        return label_table(self.labels_.index, self.classes_, self.labels_, self.predict_proba())


@pytest.fixture
def toy():
    spec = registry.register(registry.MethodSpec("toy", "Toy first answer", FirstAnswer, "the first answer"))
    yield spec
    registry.unregister("toy")


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("bench_accuracy", ROOT / "benchmarks" / "accuracy.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return module


def test_toy_method_reaches_the_cli(toy, tmp_path, capsys):
    from deem_core.cli import build_parser, main  # noqa: PLC0415

    parser = build_parser()
    aggregate = parser._subparsers._group_actions[0].choices["aggregate"]
    method = next(a for a in aggregate._actions if a.dest == "method")
    assert "toy" in method.choices and "Toy first answer" in method.help
    df, truth = read_sample("condind", n_tasks=60)
    df.to_csv(tmp_path / "ann.csv", index=False)
    truth.rename("truth").reset_index().to_csv(tmp_path / "truth.csv", index=False)
    assert main(["aggregate", str(tmp_path / "ann.csv"), "-o", str(tmp_path / "out.csv"), "--method", "toy",
                 "--truth", str(tmp_path / "truth.csv")]) == 0
    out = pd.read_csv(tmp_path / "out.csv")
    first = df.groupby("task")["label"].first()
    assert (out.set_index("task")["label"] == first).all()
    assert f"accuracy: {100 * accuracy(first, truth):.2f}" in capsys.readouterr().out


def test_toy_method_reaches_the_train_page_and_the_jobs(toy, runs_dir):
    from streamlit.testing.v1 import AppTest  # noqa: PLC0415

    from deem_studio.jobs import get_manager  # noqa: PLC0415

    df, _ = read_sample("condind", n_tasks=50)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.file_uploader(key="upload_annotations").set_value(("t.csv", df.to_csv(index=False).encode(), "text/csv")).run()
    at.button(key="load_files").click().run()
    at.switch_page("pages/train.py").run()
    assert not at.exception
    widget = at.multiselect(key="train_methods")
    assert "Toy first answer" in widget.options and "iRBM" in widget.options
    widget.set_value(["toy", "mv"])
    at.button(key="train_launch").click().run()
    snap = get_manager().wait(at.session_state["train_run"], timeout=60)
    assert snap.status == "finished", snap.message
    loaded = get_manager().store.load(snap.run_id)
    assert loaded.extras["metrics"]["toy"]["name"] == "Toy first answer"
    assert (loaded.results["toy"]["label"] == df.groupby("task")["label"].first()).all()


def test_toy_method_reaches_the_benchmark_runner(toy):
    bench = _load_benchmark()
    rows = bench.table_rows(["toy", "Majority vote"])
    assert rows["Toy first answer"][0] == "toy" and rows["Majority vote"][0] == "mv"
    df, truth = read_sample("condind", n_tasks=80)
    accs, _ = bench.run_row("toy", {}, df, truth, epochs=1, seeds=1)
    assert accs == [accuracy(df.groupby("task")["label"].first(), truth)]


def test_the_benchmark_runner_gives_majority_vote_and_dawid_skene_the_answers(monkeypatch, capsys):
    """benchmarks/accuracy.py reads each set once as an AnnotationSet too and gives it to the methods the registry
    marks ``sparse``: majority vote and Dawid-Skene score as crowd-kit does, without crowd-kit being called."""
    import crowdkit.aggregation  # noqa: PLC0415

    bench = _load_benchmark()
    df, truth = read_sample("condind", n_tasks=150)
    expected = {name: 100 * accuracy(registry.fit_method(key, df).labels_, truth)  # crowd-kit on the frame
                for key, name in (("mv", "Majority vote"), ("ds", "Dawid-Skene"))}

    class Refused:
        def __init__(self, *args, **kwargs):
            raise AssertionError("crowd-kit's class was built")

    monkeypatch.setattr(crowdkit.aggregation, "MajorityVote", Refused)
    monkeypatch.setattr(crowdkit.aggregation, "DawidSkene", Refused)
    monkeypatch.setattr(bench, "available_sets", lambda names: ["small"])
    monkeypatch.setattr(bench, "load_set", lambda name: (df, truth))
    assert bench.main(["--methods", "mv", "ds", "--no-gold"]) == 0
    printed = capsys.readouterr().out.splitlines()
    for name, value in expected.items():
        line = next(line for line in printed if line.startswith(name))
        assert f"{value:>9.2f} ± 0.00" in line, line


def test_default_benchmark_rows_use_registry_names():
    rows = _load_benchmark().table_rows(None)
    assert list(rows)[:3] == ["Majority vote", "Dawid-Skene", "GLAD"]
    assert rows["iRBM (mv)"] == ("irbm", {"init": "mv"}, 0.0)
    assert rows["DEEM default + gold 5%"] == ("deem", {}, 0.05)


def test_registry_builds_with_run_options():
    irbm = registry.make_aggregator("irbm", n_layers=3, epochs=7, seed=2, tie_break="random")
    assert irbm.n_layers == 0 and irbm.epochs == 7 and irbm.seed == 2  # fixed option wins, unknown ones left out
    mv = registry.make_aggregator("MV", epochs=7, seed=2, tie_break="random")
    assert mv.get_params() == {"seed": 2, "tie_break": "random"}
    deem_defaults = registry.get_method("deem").defaults()
    assert deem_defaults["n_layers"] == 1 and deem_defaults["epochs"] == 100
    assert "n_layers" not in registry.get_method("irbm").defaults()
    with pytest.raises(ValueError, match="valid methods: deem, irbm, mv"):
        registry.get_method("nope")
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.MethodSpec("mv", "again", FirstAnswer))


def test_registry_table_is_complete():
    names = [spec.name for spec in registry.METHODS.values()]
    assert len(set(names)) == len(names)
    assert registry.method_keys(trains=True) == ["deem", "irbm"]
    assert registry.get_method("kos").binary_only and not registry.get_method("kos").probabilistic
    assert registry.get_method("deem").uses_gold and not registry.get_method("ds").uses_gold
    for spec in registry.METHODS.values():
        assert issubclass(spec.resolve(), Aggregator), spec.key


@pytest.mark.parametrize("key", ["deem", "irbm", "mv", "ds", "onecoin"])
def test_every_method_implements_the_aggregator_interface(key, small_condind):
    df, truth = small_condind
    data = AnnotationSet.from_long(df)
    model = registry.make_aggregator(key, epochs=2, seed=0, device="cpu")
    assert model.fit(data) is model
    assert isinstance(model.labels_, pd.Series) and list(model.labels_.index) == list(data.tasks)
    proba = model.predict_proba()
    np.testing.assert_allclose(proba.sum(axis=1).to_numpy(), 1.0, rtol=1e-5)
    frame = model.results_frame()
    assert list(frame.columns[:3]) == ["label", "confidence", "p_0"]
    assert (frame["label"] == model.labels_.reindex(frame.index)).all()
    assert accuracy(model.labels_, truth) > 0.6


def test_accuracy_rule():
    labels = pd.Series(["a", "b", None, "1"], index=[1, 2, 3, 4])
    truth = pd.Series(["a", "a", "b", 1, "z"], index=[1, 2, 3, 4, 99])
    # task 99 was not aggregated: not scored; task 3 has no label: wrong; "1" and 1 are the same label
    assert accuracy_and_count(labels, truth) == (pytest.approx(0.5), 4)
    assert accuracy(labels, truth, tasks=[1, 2]) == 0.5
    assert np.isnan(accuracy(labels, pd.Series(dtype=object)))
    assert accuracy(labels, pd.DataFrame({"task": [1, 2], "truth": ["a", "a"]})) == 0.5


def test_an_accuracy_on_few_tasks_has_its_95_percent_interval():
    """Wilson's interval (walkthrough 79: 0.8167 on 60 gold tasks read as a fact): the textbook figures for 50 of 100
    (0.4038-0.5962) and 0 of 10 (0-0.2775), and the pages' words where it is wide, none where it is narrow."""
    from deem_studio.wording import gold_margin_text, gold_margins, gold_spread

    assert accuracy_interval(0.5, 100) == (pytest.approx(0.4038, abs=1e-4), pytest.approx(0.5962, abs=1e-4))
    assert accuracy_interval(0.0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))
    low, high = accuracy_interval(49 / 60, 60)
    assert low < 0.7667 < 49 / 60 < high  # the walkthrough's all-task figure lies inside the 60 tasks' interval
    assert all(v != v for v in accuracy_interval(float("nan"), 0))
    # (the widest of each side: 49/60's interval 0.70-0.90, below 0.12; 46/60's above 0.09)
    # (said as the widest: majority vote's "0.08 below" read as DEEM's, known within 0.055; walkthrough 105)
    assert gold_spread([49 / 60, 46 / 60], 60) == ("on that many tasks each accuracy is known to within about 0.12 "
                                                   "below and 0.09 above at 95% confidence at worst, so methods "
                                                   "closer than that may not differ")
    # lopsided near 1 (walkthrough 80: "±0.09" on 0.96 of 50 tasks, whose interval is 0.865-0.989): each side said
    low, high = accuracy_interval(0.96, 50)
    assert (round(0.96 - low, 2), round(high - 0.96, 2)) == (0.09, 0.03)
    assert gold_spread([0.96], 50) == ("on that many tasks each accuracy is known to within about 0.09 below and 0.03 "
                                       "above at 95% confidence, so methods closer than that may not differ")
    assert gold_margin_text(gold_margins([0.96], 50)) == "−0.09/+0.03"
    assert gold_margin_text(gold_margins([0.5], 60)) == "±0.12"
    assert gold_spread([0.9], 100_000) == ""
    # methods scored on different tasks: the widest interval is the one on the fewest (the largest count understated it)
    assert gold_spread([0.9, 0.9], [100_000, 60]) == gold_spread([0.9, 0.9], 60) != ""
    assert gold_spread([0.9], 60).endswith("at 95% confidence, so methods closer than that may not differ")
    assert all(v != v for v in accuracy_interval(float("nan"), 50))


def test_calibration_counts_the_confident_wrong_labels_on_the_tasks_with_a_truth():
    labels = pd.Series(["a", "b", "a", "b", "a"], index=["t1", "t2", "t3", "t4", "t5"])
    confidence = pd.Series([0.999, 0.6, 0.995, 0.9, 0.7], index=labels.index)
    truth = pd.Series(["a", "a", "b", "b", "z"], index=["t1", "t2", "t3", "t4", "t9"])  # t5 no truth, t9 no label
    held = calibration(labels, confidence, truth)
    assert held["tasks"] == 4 and held["accuracy"] == pytest.approx(0.5)
    assert held["mean_confidence"] == pytest.approx((0.999 + 0.6 + 0.995 + 0.9) / 4)
    assert held["wrong"] == 2 and held["wrong_confident"] == 1 and not held["hard"]  # t3 wrong at 0.995; t2 at 0.6
    assert calibration(labels, pd.Series(1.0, index=labels.index), truth)["hard"]
    assert calibration(labels, confidence, pd.Series(["a"], index=["elsewhere"])) is None


def test_a_label_on_a_tie_does_not_disagree_with_majority_vote():
    """Walkthrough 45: on tasks where the three answers all differ majority vote's column takes the first class, and
    2,189 of the 4,322 tasks marked as disagreeing were such ties (no majority to disagree with)."""
    from deem_core import AnnotationSet  # noqa: PLC0415

    answers = pd.DataFrame([("tie", "x", "p"), ("tie", "y", "q"), ("tie", "z", "r"),  # 1-1-1
                            ("two", "x", "p"), ("two", "y", "p"), ("two", "z", "q"),  # 2-1
                            ("pair", "x", "q"), ("pair", "y", "r")], columns=["task", "worker", "label"])
    data = AnnotationSet.from_long(answers)
    labels = pd.DataFrame({"label": ["r", "r", "r"]}, index=pd.Index(["pair", "tie", "two"], name="task"))
    table = registry.with_majority(labels, data, reference=registry.majority_reference(data))
    assert "r" not in table["majority_vote"].tolist()  # the tie rule's labels, as before
    assert table["disagrees_with_majority"].tolist() == [False, False, True]
    # and where majority vote is tied, a column says so (walkthroughs 47, 48: the review queue left ties out)
    assert table["majority_vote_tied"].tolist() == [True, True, False]  # pair 1-1, tie 1-1-1, two 2-1
    assert data.tied_tasks().tolist() == [True, True, False]  # (tasks in order: pair, tie, two)
    # soft labels: the summed probabilities tie (pair: 0.6 q + 0.4 r against 0.6 r + 0.4 q) or not
    soft = np.eye(3, dtype=np.float32)[data.label_codes]
    soft[data.task_codes == 0] = [[0.0, 0.6, 0.4], [0.0, 0.4, 0.6]]
    soft[data.task_codes == 2] = [[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]  # two: p 1.0, q 1.0, r 1.0
    softened = AnnotationSet.from_codes(data.tasks, data.workers, data.classes, data.task_codes, data.worker_codes,
                                        data.label_codes, soft_labels=soft)
    assert softened.tied_tasks().tolist() == [True, True, True]
    soft[data.task_codes == 0] = [[0.0, 0.7, 0.3], [0.0, 0.4, 0.6]]  # q 1.1 against r 0.9
    assert AnnotationSet.from_codes(data.tasks, data.workers, data.classes, data.task_codes, data.worker_codes,
                                    data.label_codes, soft_labels=soft).tied_tasks().tolist() == [False, True, True]
    numbers = AnnotationSet.from_long(answers.assign(label=answers["label"].map({"p": 0, "q": 1, "r": 2})))
    assert numbers.among_most_voted(np.array([2, 0, 1])).tolist() == [True, True, False]  # pair, tie, two


def test_the_majority_columns_cost_no_second_table(monkeypatch):
    """``with_majority`` (the command line's and the dashboard's label files): majority vote's own table is its own
    reference (it was fitted again), and another method's reference is the majority labels alone (the vote shares
    were built as one more tasks x classes table: +391 MB on 100,000 tasks x 500 classes; attack round 13)."""
    from conftest import read_sample  # noqa: PLC0415
    from deem_core import AnnotationSet  # noqa: PLC0415
    from deem_core.methods.baselines import MajorityVoteAggregator  # noqa: PLC0415

    df, _ = read_sample("condind", n_tasks=300)
    data = AnnotationSet.from_long(df)
    mv_table = registry.make_aggregator("mv").fit(data).results_frame()
    ds_table = registry.make_aggregator("ds").fit(data).results_frame()

    def no_table(self):
        raise AssertionError("a table of vote shares was built")

    monkeypatch.setattr(MajorityVoteAggregator, "results_frame", no_table)
    with_ds = registry.with_majority(ds_table, data)
    assert (with_ds["majority_vote"] == mv_table["label"]).all()
    tied = data.among_most_voted(data.classes.get_indexer(ds_table["label"].reindex(data.tasks)))
    assert (with_ds["disagrees_with_majority"] == ((ds_table["label"] != mv_table["label"]) & ~tied)).all()
    assert with_ds["disagrees_with_majority"].any()
    monkeypatch.setattr(registry, "make_aggregator", lambda *a, **k: pytest.fail("majority vote fitted again"))
    with_mv = registry.with_majority(mv_table, method="mv")
    assert not with_mv["disagrees_with_majority"].any() and (with_mv["majority_vote"] == mv_table["label"]).all()
    assert list(mv_table.columns) == ["label", "confidence", *[c for c in mv_table.columns if c.startswith("p_")]]
