"""The platform-shaped generator (sample_data/make_platform_data.py) and its committed example."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT

SAMPLE = ROOT / "sample_data"


def _generator():
    spec = importlib.util.spec_from_file_location("make_platform_data", SAMPLE / "make_platform_data.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


gen = _generator()


def test_the_committed_example_is_regenerated_byte_for_byte(tmp_path):
    paths = gen.write_preset("platform_small", tmp_path)
    assert [p.name for p in paths] == ["platform_small.csv.gz", "platform_small.truth.csv.gz",
                                       "platform_small.workers.csv.gz"]
    total = 0
    for path in paths:
        committed = SAMPLE / path.name
        assert path.read_bytes() == committed.read_bytes(), path.name
        total += committed.stat().st_size
    assert total < 1_000_000


@pytest.fixture(scope="module")
def example():
    answers = pd.read_csv(SAMPLE / "platform_small.csv.gz")
    truth = pd.read_csv(SAMPLE / "platform_small.truth.csv.gz").set_index("task")["truth"]
    workers = pd.read_csv(SAMPLE / "platform_small.workers.csv.gz").set_index("worker")
    return answers, truth, workers


def test_the_example_has_the_platform_shape(example):
    answers, truth, workers = example
    shape = gen.PRESETS["platform_small"]
    assert list(answers.columns) == ["task", "worker", "label"]
    assert answers["task"].nunique() == len(truth) == shape.n_tasks
    assert answers["worker"].nunique() == len(workers) == shape.n_workers  # everybody answers at least once
    assert sorted(answers["label"].unique()) == list(range(shape.n_classes))
    per_task = answers.groupby("task").size()
    assert per_task.min() == 3 and per_task.max() == 10
    assert not answers.duplicated(["task", "worker"]).any()
    per_worker = answers.groupby("worker").size().sort_values(ascending=False)
    assert (per_worker.to_numpy() == workers["answers"].reindex(per_worker.index).to_numpy()).all()
    # long tail: the busiest 5% of the workers give a large share, the median worker little
    top = per_worker.iloc[: shape.n_workers // 20].sum() / len(answers)
    assert top > 0.35 and per_worker.median() < len(answers) / shape.n_workers / 1.5
    assert per_worker.max() <= shape.n_tasks / 2
    assert workers["kind"].value_counts().to_dict() == {"normal": 480, "spammer": 15, "adversary": 5}


def test_each_kind_of_worker_answers_as_described(example):
    answers, truth, workers = example
    right = answers["label"].to_numpy() == truth.reindex(answers["task"]).to_numpy()
    observed = pd.Series(right, index=answers["worker"]).groupby(level=0).mean()
    busy = workers.index[workers["answers"] >= 200]
    kinds = workers.loc[busy, "kind"]
    normal = busy[kinds == "normal"]
    # a normal worker's accuracy is its drawn skill (binomial noise only)
    assert np.abs(observed[normal] - workers.loc[normal, "accuracy"]).max() < 0.12
    assert 0.65 < workers.loc[workers["kind"] == "normal", "accuracy"].mean() < 0.85
    adversaries = workers.index[workers["kind"] == "adversary"]
    assert observed[adversaries].max() < 0.25  # below the chance level of 1/4
    # majority vote is good, and Dawid-Skene (which learns the spammers and adversaries) better
    from deem_core.data.readers import read_annotations
    from deem_core.methods.dawid_skene import fit_dawid_skene

    data = read_annotations(str(SAMPLE / "platform_small.csv.gz"))
    codes = data.classes.get_indexer(truth.reindex(data.tasks).to_numpy())
    mv = (data.majority_vote() == codes).mean()
    ds = (fit_dawid_skene(data).posterior.argmax(1) == codes).mean()
    assert 0.9 < mv < ds, (mv, ds)


def test_pathological_shapes():
    frame, truth = gen.make_new_every_row(1000, seed=1)
    assert frame["task"].nunique() == frame["worker"].nunique() == len(frame) == len(truth) == 1000
    frame, truth = gen.make_distinct_workers(5000, answers_per_task=5)
    assert frame["worker"].nunique() == 5000 and frame["task"].nunique() == len(truth) == 1000
    assert (frame.groupby("task").size() == 5).all()
    with pytest.raises(ValueError, match="answers per task"):
        gen.make_platform_data(gen.PlatformShape(10, 3, 2, (4, 5)))
