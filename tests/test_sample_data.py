"""Tests for the shipped sample data sets and their generator (sample_data/make_sample_data.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import sample_generator

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_data"


msd = sample_generator()

# name -> (tasks, workers, classes)
SHAPES = {
    "condind": (3000, 10, 3),
    "tree3k": (3000, 12, 3),
    "ampdata": (5000, 6, 5),
    "digits": (1797, 15, 10),
    "digits_experts": (1797, 15, 10),
}


def _read(name: str) -> tuple[pd.DataFrame, pd.Series]:
    df = pd.read_csv(SAMPLE_DIR / f"{name}.csv")
    truth = pd.read_csv(SAMPLE_DIR / f"{name}.truth.csv").set_index("task")["truth"]
    return df, truth


def _worker_class_accuracy(df: pd.DataFrame, truth: pd.Series) -> pd.DataFrame:
    """Accuracy of every worker (rows) on every true class (columns)."""
    y = truth.reindex(df["task"]).to_numpy()
    return (
        pd.DataFrame({"worker": df["worker"].to_numpy(), "y": y, "ok": df["label"].to_numpy() == y})
        .groupby(["worker", "y"])["ok"].mean().unstack()
    )


@pytest.mark.parametrize("name", ["condind", "ampdata"])
def test_generation_is_byte_identical_to_shipped_files(name, tmp_path):
    msd.write_set(name, tmp_path)
    written = sorted(p.name for p in tmp_path.iterdir())
    assert f"{name}.csv" in written and f"{name}.truth.csv" in written
    for fname in written:
        assert (tmp_path / fname).read_bytes() == (SAMPLE_DIR / fname).read_bytes(), fname


@pytest.mark.parametrize("name", list(SHAPES))
def test_schema_and_density(name):
    n_tasks, n_workers, k = SHAPES[name]
    df, truth = _read(name)
    assert list(df.columns) == ["task", "worker", "label"]
    assert list(pd.read_csv(SAMPLE_DIR / f"{name}.truth.csv").columns) == ["task", "truth"]
    assert df["task"].dtype == np.int64 and df["label"].dtype == np.int64 and truth.dtype == np.int64
    assert pd.api.types.is_string_dtype(df["worker"]) or df["worker"].dtype == object
    assert df["label"].between(0, k - 1).all() and truth.between(0, k - 1).all()
    assert truth.nunique() == k
    # dense: every task answered exactly once by every worker
    assert df["worker"].nunique() == n_workers
    assert len(df) == n_tasks * n_workers
    assert not df.duplicated(["task", "worker"]).any()
    assert (df.groupby("task")["worker"].nunique() == n_workers).all()
    assert sorted(df["task"].unique()) == sorted(truth.index) == list(range(n_tasks))


def test_generators_return_what_is_shipped():
    for name, fn in [("condind", msd.make_condind), ("tree3k", msd.make_tree), ("ampdata", msd.make_ampdata)]:
        df, truth = fn()
        shipped_df, shipped_truth = _read(name)
        pd.testing.assert_frame_equal(df.astype({"worker": object}), shipped_df.astype({"worker": object}))
        assert (truth.to_numpy() == shipped_truth.to_numpy()).all()
        assert truth.name == "truth" and truth.index.name == "task"


def test_condind_accuracies_match_true_confusion():
    df, truth = _read("condind")
    meta = json.loads((SAMPLE_DIR / "condind.confusion.json").read_text())
    assert "layout" in meta and np.allclose(meta["prior"], [1 / 3] * 3)
    acc = _worker_class_accuracy(df, truth)
    informative = meta["informative"]
    assert informative == ["clf_01", "clf_02", "clf_03", "clf_04"]
    for w, conf in meta["confusion"].items():
        conf = np.asarray(conf)
        assert conf.shape == (3, 3) and np.allclose(conf.sum(axis=0), 1.0)  # columns = true class
        diag = np.diag(conf)
        if w in informative:
            assert (diag >= 2 / 3).all() and (diag <= 1).all()
        else:
            assert np.allclose(conf, 1 / 3)
        np.testing.assert_allclose(acc.loc[w].to_numpy(), diag, atol=0.05, err_msg=w)
    overall = (df["label"].to_numpy() == truth.reindex(df["task"]).to_numpy())
    noise_acc = pd.Series(overall).groupby(df["worker"].to_numpy()).mean().drop(informative)
    assert len(noise_acc) == 6 and (noise_acc.sub(1 / 3).abs() < 0.05).all()


def test_ampdata_expert_is_oracle_on_its_classes():
    df, truth = _read("ampdata")
    meta = json.loads((SAMPLE_DIR / "ampdata.experts.json").read_text())
    assert meta == {"experts": ["expert"], "expert_classes": [0, 1]}
    acc = _worker_class_accuracy(df, truth)
    assert (acc.loc["expert", [0, 1]] == 1.0).all()
    assert (acc.loc["expert", [2, 3, 4]] < 0.4).all()  # random (1/5) elsewhere
    regular = acc.drop(index="expert")
    assert (regular[[2, 3, 4]] > 0.85).all().all()
    assert (regular[[0, 1]] < 0.4).all().all()


def test_digits_experts_are_oracles_on_568():
    df, truth = _read("digits_experts")
    meta = json.loads((SAMPLE_DIR / "digits_experts.experts.json").read_text())
    assert meta["expert_classes"] == [5, 6, 8] and len(meta["experts"]) == 3
    acc = _worker_class_accuracy(df, truth)
    assert (acc.loc[meta["experts"], [5, 6, 8]] == 1.0).all().all()
    assert (acc.drop(index=meta["experts"])[[5, 6, 8]] < 1.0).all().all()


def test_tree3k_structure():
    df, _ = _read("tree3k")
    meta = json.loads((SAMPLE_DIR / "tree3k.structure.json").read_text())
    assert meta["layers"] == [1, 3, 4]
    assert meta["leaves"] == list(dict.fromkeys(df["worker"]))
    assert len(meta["nodes"]) == 3 + 12
    for node in meta["nodes"].values():
        m = np.asarray(node["matrix"])
        assert 0.7 <= node["psi"] <= 1.0
        assert np.allclose(np.diag(m), node["psi"]) and np.allclose(m.sum(axis=0), 1.0)


def test_tree_keeps_the_hidden_nodes_the_leaves_are_drawn_from():
    df, truth = msd.make_tree(n_tasks=2000, n_classes=4, layers=(1, 2, 5), seed=8001)
    hidden = df.attrs["node_labels"]
    assert sorted(hidden) == ["g1", "g2"] and all(len(v) == len(truth) for v in hidden.values())
    wide = df.pivot(index="task", columns="worker", values="label").loc[truth.index]
    for node, values in hidden.items():
        other = "g2" if node == "g1" else "g1"
        for leaf in [w for w in wide.columns if w.startswith(node + "_")]:
            # a leaf is a noisy copy of its own node: it agrees with it more than with the truth or the other node
            own = (wide[leaf].to_numpy() == np.asarray(values)).mean()
            assert own > (wide[leaf] == truth).mean() and own > (wide[leaf].to_numpy() == hidden[other]).mean()


def test_make_mnist_like_small_is_deterministic_and_dense():
    df1, t1 = msd.make_mnist_like(n_tasks=500, n_workers=15, n_classes=10, seed=1)
    df2, t2 = msd.make_mnist_like(n_tasks=500, n_workers=15, n_classes=10, seed=1)
    pd.testing.assert_frame_equal(df1, df2)
    assert len(df1) == 500 * 15 and df1["worker"].nunique() == 15
    assert df1["label"].between(0, 9).all() and (t1 == t2).all()
    # copies of one family agree much more with each other than with other families
    wide = df1.pivot(index="task", columns="worker", values="label")
    assert (wide["fam1_1"] == wide["fam1_2"]).mean() > (wide["fam1_1"] == wide["fam2_1"]).mean() + 0.1
