"""Diagnostics with known answers: mutual information, worker importance, worker quality, report, CLI."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import entropy
from sklearn.metrics import mutual_info_score

from deem_core import DEEM, AnnotationSet
from deem_core.plots import diagnostics as plots
from deem_core.analysis.scoring import accuracy_interval
from deem_core.analysis.diagnostics import (
    GOLD_SOURCE, PREDICTED_SOURCE, contingency_tables, empirical_confusion, layer_argmax_codes, worker_importance,
    worker_quality, leave_one_out_drops, mutual_information_matrix, per_layer_mutual_information, run_diagnostics,
    select_tasks, spammer_score,
)
from deem_core.plots.report import write_diagnostics
from deem_core.model.sampler import one_hot_state

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"


def _long(labels: np.ndarray, workers: list[str]) -> pd.DataFrame:
    rows, cols = np.nonzero(labels >= 0)
    return pd.DataFrame({"task": rows, "worker": np.asarray(workers)[cols], "label": labels[rows, cols]})


def _ds_labels(n: int, d: int, k: int, accuracy: float, seed: int, density: float = 1.0):
    """(n, d) one-coin Dawid-Skene labels (-1 = missing) and the truth (n,)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    correct = rng.random((n, d)) < accuracy
    wrong = (truth[:, None] + rng.integers(1, k, (n, d))) % k
    labels = np.where(correct, truth[:, None], wrong)
    labels[rng.random((n, d)) > density] = -1
    return labels, truth


@pytest.fixture(scope="module")
def condind():
    df = pd.read_csv(SAMPLE / "condind.csv")
    truth = pd.read_csv(SAMPLE / "condind.truth.csv").set_index("task")["truth"]
    conf = json.loads((SAMPLE / "condind.confusion.json").read_text())
    # Dawid-Skene start (Lemma 1 inverse) + 5 epochs of DEEM training: ~2 s on one core
    model = DEEM(n_layers=0, epochs=5, lr=0.1, init="ds", device="cpu", seed=0).fit(df)
    return df, truth, conf, model


@pytest.fixture(scope="module")
def layered():
    """A 1-layer DEEM on small dense data with gold labels."""
    labels, truth = _ds_labels(400, 5, 3, 0.75, seed=1)
    df = _long(labels, [f"w{i}" for i in range(5)])
    model = DEEM(n_layers=1, epochs=3, lr=0.05, init="ds", device="cpu", seed=0, batch_size=200).fit(df)
    return df, pd.Series(truth, index=pd.Index(range(400), name="task"), name="truth"), model


# ---------------------------------------------------------------------------------------------- MI
def test_mi_matches_sklearn_on_pairwise_complete_rows():
    rng = np.random.default_rng(0)
    n, d, k = 500, 5, 4
    base = rng.integers(0, k, n)
    codes = np.where(rng.random((n, d)) < 0.6, base[:, None], rng.integers(0, k, (n, d)))
    codes[rng.random((n, d)) < 0.3] = -1
    codes[:480, 4] = -1  # worker 4 shares only ~20 rows with the others
    mi, n_common = mutual_information_matrix(codes, k, min_common=15)
    for i in range(d):
        for j in range(d):
            both = (codes[:, i] >= 0) & (codes[:, j] >= 0)
            assert n_common[i, j] == both.sum()
            if both.sum() >= 15:
                assert mi[i, j] == pytest.approx(mutual_info_score(codes[both, i], codes[both, j]), abs=1e-10)
            else:
                assert np.isnan(mi[i, j])
    assert np.isnan(mutual_information_matrix(codes, k, min_common=25)[0][0, 4])


def test_contingency_tables_by_hand():
    codes = np.array([[0, 1], [0, 1], [1, 1], [1, -1], [-1, 0]])
    table = contingency_tables(codes, 2, chunk_size=2)  # chunks must add up
    assert table.shape == (2, 2, 2, 2)
    np.testing.assert_array_equal(table[0, 1], [[0, 2], [0, 1]])
    np.testing.assert_array_equal(table[1, 0], [[0, 0], [2, 1]])
    np.testing.assert_array_equal(table[0, 0], [[2, 0], [0, 2]])


def test_mi_of_identical_workers_is_entropy_and_of_independent_is_near_zero():
    rng = np.random.default_rng(3)
    n, k = 20000, 5
    a = rng.integers(0, k, n)
    codes = np.stack([a, a.copy(), rng.integers(0, k, n)], axis=1)
    mi, _ = mutual_information_matrix(codes, k)
    h = entropy(np.bincount(a, minlength=k) / n)  # nats, ~log 5 = 1.609
    assert mi[0, 1] == pytest.approx(h, abs=1e-10)
    assert mi[0, 0] == pytest.approx(h, abs=1e-10)
    assert mi[0, 2] < 0.005  # plug-in bias ~ (K-1)^2 / (2n) = 4e-4
    assert mi[1, 2] == pytest.approx(mi[0, 2])


def test_per_layer_mi_input_layer_equals_direct_computation(layered):
    df, truth, model = layered
    result = per_layer_mutual_information(model, df, gold=truth, min_common=5)
    assert result.mi.shape == (2, 3, 5, 5)
    assert result.class_source == GOLD_SOURCE
    assert result.layers == ["Layer 0 (the answers)", "Layer 1 (iRBM input)"]
    data = AnnotationSet.from_long(df)
    dense = data.dense_labels()
    for c in range(3):
        members = truth.to_numpy() == c
        expected, _ = mutual_information_matrix(dense[members], 3)
        np.testing.assert_allclose(result.mi[0, c], expected, atol=1e-12)
        assert result.class_counts[c] == members.sum()
    # layer 1 = argmax of the network's layer output, by hand
    codes = layer_argmax_codes(model.network_, data, batch_size=37)  # (layers, answers), chunks must add up
    assert codes.shape == (2, data.n_answers)
    labels = torch.as_tensor(dense)
    mask = (labels >= 0).float()
    with torch.no_grad():
        out = model.network_.propagate(one_hot_state(labels, mask, 3)[None], mask[None])[1][0]
    np.testing.assert_array_equal(codes[1], out.argmax(-1).numpy()[data.task_codes, data.worker_codes])
    np.testing.assert_array_equal(codes[0], data.label_codes)
    layer1 = np.full(dense.shape, -1)
    layer1[data.task_codes, data.worker_codes] = codes[1]
    members = truth.to_numpy() == 2
    np.testing.assert_allclose(result.mi[1, 2], mutual_information_matrix(layer1[members], 3)[0], atol=1e-12)
    # how many answers each layer relabels, said beside the figures (identical layers read as a bug; walkthrough 19)
    share = float((codes[1] != codes[0]).mean())
    said = [n for n in result.notes if n.startswith("answers whose label a layer changes")]
    assert said == [f"answers whose label a layer changes (the largest entry of its output against the answer): "
                    f"layer 1 {share:.1%}" + ("; a layer that changes none has the input's mutual information "
                                              "exactly (it may still weigh the answers differently)" if share == 0
                                              else "")]
    # without gold: classes from DEEM's predictions, and every output says so
    predicted = per_layer_mutual_information(model, df)
    assert predicted.class_source == PREDICTED_SOURCE
    assert predicted.class_counts.sum() == 400
    assert (predicted.summary()["class_source"] == PREDICTED_SOURCE).all()
    assert (predicted.long_frame()["class_source"] == PREDICTED_SOURCE).all()


def test_mi_summary_excludes_diagonal_and_long_frame_shape(layered):
    df, truth, model = layered
    result = per_layer_mutual_information(model, df, gold=truth)
    per_class = result.per_class_summary()
    off = result.mi[0, 1].copy()
    np.fill_diagonal(off, np.nan)
    row = per_class[(per_class["layer"] == 0) & (per_class["class"] == 1)].iloc[0]
    assert row["max_mi"] == pytest.approx(np.nanmax(off))
    assert row["frobenius"] == pytest.approx(np.sqrt(np.nansum(off ** 2)))
    assert row["rms_mi"] == pytest.approx(np.sqrt(np.nanmean(off ** 2)))  # per pair with a value (both triangles)
    assert row["max_mi"] < np.nanmax(np.diagonal(result.mi[0, 1]))  # the entropies would dominate
    summary = result.summary()
    layer0 = per_class[per_class["layer"] == 0]
    assert summary.loc[0, "max_mi_mean"] == pytest.approx(layer0["max_mi"].mean())
    assert summary.loc[0, "frobenius_std"] == pytest.approx(layer0["frobenius"].std(ddof=0))
    frame = result.long_frame()
    assert list(frame.columns[:5]) == ["layer", "class", "worker_a", "worker_b", "mi"]
    assert len(frame) == 2 * 3 * 5 * 4  # layers x classes x ordered pairs without the diagonal


def test_mi_on_sparse_data_skips_pairs_with_few_common_tasks():
    labels, truth = _ds_labels(300, 4, 2, 0.8, seed=5, density=0.9)
    labels[:, 3] = -1
    labels[:12, 3] = truth[:12]  # worker w3 answers only 12 tasks
    df = _long(labels, [f"w{i}" for i in range(4)])
    model = DEEM(n_layers=0, epochs=2, lr=0.05, device="cpu", seed=0).fit(df)
    gold = pd.Series(truth, index=range(300))
    result = per_layer_mutual_information(model, df, gold=gold, min_common=10)
    # w3 shares < 10 tasks with everybody within each class: 3 pairs x 2 classes skipped
    assert result.skipped_pairs == 6
    assert np.isnan(result.mi[0, :, 3, :3]).all()
    assert np.isfinite(result.mi[0, :, :3, :3]).all()
    assert any("skipped 6" in note for note in result.notes)
    members = truth == 0
    both = (labels[members, 0] >= 0) & (labels[members, 1] >= 0)
    assert result.n_common[0, 0, 1] == both.sum()


def test_the_mi_table_leaves_out_pairs_without_a_value_and_stops_at_its_row_bound():
    """Walkthrough 45: on a platform's set every pair of 3,896 workers was written, 99.9% of them sharing no task (5.6 M
    rows, 216 MB of empty values). Attack round 23: 1,234 workers, each pair sharing one to nine tasks, gave 21.3 M
    rows of which none held a value (782 MB; 6.6 GB of memory in the server, a press of the download 7.4 GB). A pair
    is written when it has a value somewhere; at most ``max_rows`` rows, the pairs with the most tasks in common."""
    labels, truth = _ds_labels(300, 4, 2, 0.8, seed=5, density=1.0)
    labels[20:, 3] = -1  # w3 answers tasks 0-19 only: fewer than min_common with anyone
    labels[:20, 2] = -1  # w2 answers tasks 20-299 only: w2 and w3 share nothing
    df = _long(labels, [f"w{i}" for i in range(4)])
    model = DEEM(n_layers=0, epochs=2, lr=0.05, device="cpu", seed=0).fit(df)
    result = per_layer_mutual_information(model, df, gold=pd.Series(truth, index=range(300)), min_common=30)
    frame = result.long_frame()
    pairs = set(zip(frame["worker_a"], frame["worker_b"]))
    assert pairs == {(a, b) for a in ("w0", "w1", "w2") for b in ("w0", "w1", "w2") if a != b}
    assert frame["mi"].notna().any() and result.table_note() is None and "note" not in frame.attrs
    assert len(frame) == result.mi.shape[0] * 2 * len(pairs)  # layers x classes x pairs
    # bounded: the pairs with the most tasks in common (w0-w1 share 300, w0-w2 and w1-w2 280), said
    capped = result.long_frame(max_rows=5)
    assert set(zip(capped["worker_a"], capped["worker_b"])) == {("w0", "w1"), ("w1", "w0")} and len(capped) == 4
    said = "holds the 2 ordered worker pairs with the most tasks in common: 4 more pairs with a value are left out"
    assert said in capped.attrs["note"] and said in result.table_note(max_rows=5)


def test_the_mi_table_lists_the_pairs_in_the_workers_natural_order_as_the_heatmaps():
    """The All MI values CSV listed w10 and w11 before w2 (text order) where the heatmaps above it draw w2 first."""
    labels, truth = _ds_labels(200, 12, 2, 0.8, seed=3, density=1.0)
    df = _long(labels, [f"w{i}" for i in range(12)])
    model = DEEM(n_layers=0, epochs=2, lr=0.05, device="cpu", seed=0).fit(df)
    frame = per_layer_mutual_information(model, df, gold=pd.Series(truth, index=range(200))).long_frame()
    part = frame[(frame["layer"] == 0) & (frame["class"] == frame["class"].iloc[0])]
    numbers = list(zip(part["worker_a"].str[1:].astype(int), part["worker_b"].str[1:].astype(int)))
    assert numbers == [(a, b) for a in range(12) for b in range(12) if a != b]


# ---------------------------------------------------------------------------------------------- importance
def _brute_force_drops(model, data: AnnotationSet) -> tuple[np.ndarray, np.ndarray]:
    """Remove each worker by masking its column and calling the network: the definition, slowly."""
    dense = data.dense_labels()
    labels = torch.as_tensor(dense)
    mask = (labels >= 0).float()
    k = data.n_classes

    def consensus(m):
        with torch.no_grad():
            hidden = model.network_.posterior(one_hot_state(labels, m, k)[None].expand(model.network_.n_runs, -1, -1, -1),
                                              m[None].expand(model.network_.n_runs, -1, -1))
        return model.to_class_order(hidden).mean(axis=0)

    def log_odds(p, rows):
        chosen = p[rows, decided[rows]].astype(np.float64)
        return np.log(chosen) - np.log1p(-chosen)

    full = consensus(mask)
    decided = full.argmax(1)
    drops = np.full(dense.shape, np.nan)
    odds = np.full(dense.shape, np.nan)
    for i in range(data.n_workers):
        m = mask.clone()
        m[:, i] = 0
        loo = consensus(m)
        rows = dense[:, i] >= 0
        drops[rows, i] = full[rows, decided[rows]] - loo[rows, decided[rows]]
        odds[rows, i] = log_odds(full, rows) - log_odds(loo, rows)
    return drops, odds


@pytest.mark.parametrize("n_layers", [0, 1, 2])
def test_batched_leave_one_out_equals_brute_force(n_layers):
    labels, _ = _ds_labels(150, 4, 3, 0.6, seed=2, density=0.8)
    df = _long(labels, [f"w{i}" for i in range(4)])
    model = DEEM(n_layers=n_layers, epochs=2, lr=0.05, device="cpu", seed=0, n_seeds=2).fit(df)
    if n_layers:  # move the layers away from the identity start so that they mix workers
        with torch.no_grad():
            for weight in model.network_.layer_weights:
                weight.add_(0.3 * torch.randn(weight.shape, generator=torch.Generator().manual_seed(0)))
        model.data_fingerprint_ = None  # posterior_ is stale now
    data = AnnotationSet.from_long(df)
    out = leave_one_out_drops(model, df, batch_size=37)
    drops, odds = _brute_force_drops(model, data)
    assert np.abs(drops[np.isfinite(drops)]).max() > 0.01  # something to compare
    # one entry per answer, in CSR order
    np.testing.assert_array_equal(out["task"], data.task_codes)
    np.testing.assert_array_equal(out["worker"], data.worker_codes)
    np.testing.assert_allclose(out["drop"], drops[data.task_codes, data.worker_codes], atol=2e-5)
    np.testing.assert_allclose(out["drop_log_odds"], odds[data.task_codes, data.worker_codes], atol=2e-3, rtol=1e-3)
    assert np.isfinite(drops).sum() == data.n_answers  # the brute force has nothing where nobody answered
    expected = model.predict_proba(df).to_numpy() if n_layers else model.posterior_
    np.testing.assert_array_equal(out["decided"], expected.argmax(1))
    np.testing.assert_allclose(out["confidence"], expected.max(1), atol=1e-5)


def test_diagnostics_read_a_block_layout_network_as_the_matrix_one():
    """Importance and layer codes evaluate each task on its own answers: the same numbers whether the layers
    are stored as one matrix, as blocks of every pair, or as blocks of the co-occurring pairs only."""
    from deem_core.model.engine import answers_of
    from deem_core.model.sparse import cooccurring_pairs

    labels, _ = _ds_labels(200, 6, 3, 0.6, seed=3, density=0.5)
    df = _long(labels, [f"w{i}" for i in range(6)])
    model = DEEM(n_layers=1, epochs=2, lr=0.05, device="cpu", seed=0).fit(df)
    with torch.no_grad():
        for weight in model.network_.layer_weights:
            weight.add_(0.3 * torch.randn(weight.shape, generator=torch.Generator().manual_seed(1)))
    model.data_fingerprint_ = None
    data = AnnotationSet.from_long(df)
    matrix = leave_one_out_drops(model, df)
    codes = layer_argmax_codes(model.network_, data)
    assert (codes[1] != codes[0]).any()  # the layer changes some answers' argmax
    network = model.network_
    for blocks in (network.to_layout("blocks"), network.to_layout("blocks", cooccurring_pairs(answers_of(data)))):
        model.network_ = blocks
        out = leave_one_out_drops(model, df)
        np.testing.assert_allclose(out["drop"], matrix["drop"], atol=1e-5)
        np.testing.assert_array_equal(out["decided"], matrix["decided"])
        np.testing.assert_array_equal(layer_argmax_codes(blocks, data), codes)


def test_log_odds_importance_does_not_saturate():
    """20 good workers: p(decided) is 1 to float precision with or without any one of them, so the
    probability drop is 0, while the log-odds drop still equals each worker's vote weight."""
    labels, _ = _ds_labels(300, 20, 3, 0.9, seed=6)
    df = _long(labels, [f"w{i:02d}" for i in range(20)])
    model = DEEM(n_layers=0, epochs=1, lr=0.01, device="cpu", seed=0).fit(df)
    psi = torch.full((20, 3, 3), 0.05) + 0.85 * torch.eye(3)
    model.network_.set_from_dawid_skene(psi, torch.full((3,), 1 / 3))
    model.class_maps_ = np.array([[0, 1, 2]])
    model.data_fingerprint_ = None
    out = leave_one_out_drops(model, df)
    unanimous = (labels == labels[:, :1]).all(axis=1)[out["task"]]  # per answer: its task is unanimous
    assert unanimous.sum() > 10 * 20
    assert np.abs(out["drop"][unanimous]).max() < 1e-6
    # removing one of 20 agreeing workers: log-odds fall by log(0.9 / 0.05) + log of the 2-class normaliser
    expected = (20 * np.log(18) - np.log(2)) - (19 * np.log(18) - np.log(2))
    np.testing.assert_allclose(out["drop_log_odds"][unanimous], expected, rtol=1e-3)


def test_worker_with_constant_confusion_columns_has_exactly_zero_importance():
    """Hand-set iRBM (Lemma 1 inverse): worker 2's answer carries no information about the class."""
    labels, _ = _ds_labels(200, 3, 3, 0.8, seed=4)
    df = _long(labels, ["a_good", "b_fair", "c_spam"])  # workers are sorted: psi rows follow this order
    model = DEEM(n_layers=0, epochs=1, lr=0.01, device="cpu", seed=0).fit(df)
    psi = torch.stack([torch.full((3, 3), 0.05) + 0.85 * torch.eye(3),
                       torch.full((3, 3), 0.2) + 0.4 * torch.eye(3),
                       torch.tensor([[0.5] * 3, [0.3] * 3, [0.2] * 3])])
    model.network_.set_from_dawid_skene(psi, torch.full((3,), 1 / 3))
    model.class_maps_ = np.array([[0, 1, 2]])
    model.data_fingerprint_ = None  # posterior_ is stale: force recomputation
    result = worker_importance(model, df)
    table = result.pivot()["all"]
    assert table["c_spam"] == pytest.approx(0.0, abs=1e-6)
    assert result.pivot("importance_log_odds")["all"]["c_spam"] == pytest.approx(0.0, abs=1e-4)
    # removing the 0.9 worker moves the decision far more than removing the 0.6 one (hand computation:
    # agreeing answers drop p(decided) by 0.364 vs 0.064)
    assert table["a_good"] > 0.2
    assert table["a_good"] > 10 * table["b_fair"] > 0


def test_importance_of_consensus_copy_vs_pure_noise():
    labels, truth = _ds_labels(1500, 6, 3, 0.7, seed=7)
    mv = np.array([np.bincount(row, minlength=3).argmax() for row in labels])
    noise = np.random.default_rng(8).integers(0, 3, 1500)
    all_labels = np.column_stack([labels, mv, noise])
    df = _long(all_labels, [f"w{i}" for i in range(6)] + ["copy", "noise"])
    model = DEEM(n_layers=0, epochs=5, lr=0.1, init="ds", device="cpu", seed=0).fit(df)
    gold = pd.Series(truth, index=range(1500))
    result = worker_importance(model, df, subset=select_tasks(model, df, classes=[0], gold=gold))
    wide = result.pivot()
    assert set(wide.columns) == {"selected", "rest", "all"}
    # DS reads the copy of the majority vote as a near-oracle: it is the worker DEEM relies on (measured
    # 0.081; the others' answers are already summarised by it); pure noise changes nothing (measured 0.0000)
    assert wide["all"].idxmax() == "copy"
    assert wide.loc["copy", "all"] > 0.05
    assert abs(wide.loc["noise", "all"]) < 0.005
    counts = result.table.set_index(["worker", "subset"])
    assert counts.loc[("copy", "selected"), "n_tasks"] == (truth == 0).sum()
    assert counts.loc[("copy", "rest"), "n_tasks"] == (truth != 0).sum()


def test_select_tasks_variants(layered):
    df, truth, model = layered
    by_gold = select_tasks(model, df, classes=["1", 2], gold=truth)  # text as typed on a command line works
    np.testing.assert_array_equal(by_gold.selected, np.isin(truth.to_numpy(), [1, 2]))
    assert by_gold.eligible.all()
    partial = truth.iloc[:100]
    some_gold = select_tasks(model, df, classes=[0], gold=partial)
    assert some_gold.eligible.sum() == 100 and (some_gold.rest.sum() + some_gold.selected.sum()) == 100
    by_pred = select_tasks(model, df, classes=[0], by="predicted")
    np.testing.assert_array_equal(by_pred.selected, model.posterior_.argmax(1) == 0)
    by_worker = select_tasks(model, df, worker="w2", label=1)
    data = AnnotationSet.from_long(df)
    np.testing.assert_array_equal(by_worker.selected, data.dense_labels()[:, 2] == 1)
    assert "w2" in by_worker.description
    with pytest.raises(ValueError):
        select_tasks(model, df, classes=[7], by="predicted")
    with pytest.raises(ValueError):
        select_tasks(model, df, classes=[0], by="gold")


def test_importance_sampling_estimates_the_full_mean(condind):
    df, truth, _, model = condind
    full = worker_importance(model, df).pivot()["all"]
    sampled = worker_importance(model, df, max_tasks=1000, seed=1)
    assert sampled.sampled and (sampled.table["n_tasks"] == 1000).all()
    est = sampled.table.set_index("worker")
    assert (np.abs(est["importance"] - full) < 4 * est["std_error"] + 1e-4).all()


# ---------------------------------------------------------------------------------------------- quality
def test_spammer_score_known_values():
    k = 4
    assert spammer_score(np.eye(k)) == pytest.approx(1.0)
    constant_columns = np.tile(np.array([[0.4], [0.3], [0.2], [0.1]]), (1, k))
    assert spammer_score(constant_columns) == pytest.approx(0.0)
    half = 0.5 * np.eye(2) + 0.25
    assert spammer_score(half) == pytest.approx(0.25)  # ||(.75,.25)-(.25,.75)||^2 = 0.5, /(K(K-1)) = /2
    nan_col = np.eye(3)
    nan_col[:, 2] = np.nan
    assert spammer_score(nan_col) == pytest.approx(1.0)  # unused class skipped
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(spammer_score(np.full((3, 3), np.nan), np.zeros(3)))  # a worker with no labels


def test_spammer_score_finite_sample_correction_centres_random_guessers():
    rng = np.random.default_rng(0)
    k, n_per_class = 3, 20
    raw, corrected = [], []
    for _ in range(200):
        counts = np.stack([rng.multinomial(n_per_class, [1 / 3] * 3) for _ in range(k)], axis=1)
        psi = counts / counts.sum(0, keepdims=True)
        raw.append(spammer_score(psi))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            corrected.append(spammer_score(psi, counts.sum(0)))
    # raw: biased upwards by sampling noise, expected 2 (1 - 1/K) / n / 2 = 0.033 (measured 0.031);
    # corrected: unbiased before the clip at 0 (measured mean 0.008)
    assert np.mean(raw) > 0.025
    assert np.mean(corrected) < 0.012


def test_empirical_confusion_by_hand():
    labels = np.array([[0, 1], [1, 1], [0, -1], [1, 0]])
    reference = np.array([0, 0, 1, -1])
    counts, psi = empirical_confusion(AnnotationSet.from_dense(labels, classes=[0, 1]), reference)
    np.testing.assert_array_equal(counts[0], [[1, 1], [1, 0]])
    np.testing.assert_array_equal(counts[1], [[0, 0], [2, 0]])
    np.testing.assert_allclose(psi[0], [[0.5, 1.0], [0.5, 0.0]])
    assert np.isnan(psi[1][:, 1]).all()


def test_confusion_matrices_recovered_on_condind(condind):
    """Lemma 1 read-off within 0.06 and the empirical matrix vs DEEM labels within 0.08 (max abs entry) for
    the 4 informative workers (measured: 0.031 and 0.053)."""
    df, truth, conf, model = condind
    quality = worker_quality(model, df, gold=truth)
    for name in conf["informative"]:
        true_matrix = np.array(conf["confusion"][name])
        assert np.abs(quality.confusion(name, "irbm").to_numpy() - true_matrix).max() < 0.06, name
        assert np.abs(quality.confusion(name, "empirical").to_numpy() - true_matrix).max() < 0.08, name
        assert np.abs(quality.confusion(name, "gold").to_numpy() - true_matrix).max() < 0.08, name
    lemma = model.confusion_matrices()
    np.testing.assert_allclose(quality.confusion("clf_01", "irbm").to_numpy(), lemma["clf_01"].to_numpy(), atol=1e-6)


def test_spammers_flagged_on_condind(condind):
    df, truth, conf, model = condind
    quality = worker_quality(model, df, gold=truth)
    table = quality.table.set_index("worker")
    noise = [w for w in table.index if w not in conf["informative"]]
    assert len(noise) == 6
    # the rule said in words ("spammer score under 7 / labels" read as 7 divided by something; walkthrough 28)
    assert "(spammer score times its number of labels under 7, and its kappa within 1.645 standard errors of a " \
           "guesser's 0; or its kappa at or below 0 and its spammer score under 0.1, short of worse than chance)" \
           in quality.notes[0]
    # the iRBM's accuracy column says it is an estimate without gold labels (read as a gold comparison beside the
    # gold accuracy; walkthrough 33)
    assert any(n.startswith("irbm_accuracy is the trained ") and "own estimate" in n and "without gold labels" in n
               for n in quality.notes), quality.notes
    assert set(table.index[table["flag"] == "likely spammer"]) == set(noise)
    assert (table.loc[conf["informative"], "flag"] == "ok").all()
    assert (table.loc[noise, "kappa"].abs() < 0.05).all()
    assert (table.loc[conf["informative"], "kappa"] > 0.4).all()
    assert (table["n_labels"] == 3000).all()
    agreement = (df.merge(model.predict().rename("deem"), left_on="task", right_index=True)
                 .assign(ok=lambda f: f["label"] == f["deem"]).groupby("worker")["ok"].mean())
    np.testing.assert_allclose(table["agreement"], agreement.loc[table.index], atol=1e-12)


def test_quality_flags_sparse_worker_and_permuted_worker(monkeypatch):
    labels, truth = _ds_labels(600, 6, 3, 0.8, seed=9)
    permuted = (truth + 1) % 3  # always wrong in a fixed way
    sparse = np.full(600, -1)
    sparse[:8] = truth[:8]
    df = _long(np.column_stack([labels, permuted, sparse]), [f"w{i}" for i in range(6)] + ["perm", "few"])
    model = DEEM(n_layers=0, epochs=3, lr=0.1, init="ds", device="cpu", seed=0).fit(df)
    table = worker_quality(model, df).table.set_index("worker")
    assert table.loc["few", "flag"] == "too few labels" and table.loc["few", "n_labels"] == 8
    assert table.loc["perm", "flag"] == "worse than chance"
    assert table.loc["perm", "spammer_score"] > 0.5  # informative, just permuted
    assert (table.loc[[f"w{i}" for i in range(6)], "flag"] == "ok").all()
    # a random guesser whose kappa falls below 0 by chance is not "worse than chance" (walkthrough 102: -0.053 on 180
    # labels read so beside another guesser's "likely spammer"); classes 60/30/10, guesses on 180 of 600 tasks
    rng = np.random.default_rng(1)
    truth = rng.choice(3, 600, p=[0.6, 0.3, 0.1])
    labels = np.column_stack([np.where(rng.random(600) < 0.8, truth, rng.integers(0, 3, 600)) for _ in range(6)])
    rng = np.random.default_rng(105)
    guess = np.full(600, -1)
    guess[rng.choice(600, 180, replace=False)] = rng.integers(0, 3, 180)
    df = _long(np.column_stack([labels, guess]), [f"w{i}" for i in range(6)] + ["guess"])
    model = DEEM(n_layers=0, epochs=3, lr=0.1, init="ds", device="cpu", seed=0).fit(df)
    from deem_core.analysis.diagnostics import quality as module

    monkeypatch.setattr(module, "SPAMMER_NOISE", 0.0)  # (the kappa's rule alone: its spammer score decides nothing)
    quality = worker_quality(model, df)
    row = quality.table.set_index("worker").loc["guess"]
    assert -0.07 < row["kappa"] < -0.04  # about one guesser's standard error (0.053 here) below 0
    assert row["flag"] == "likely spammer"
    assert any("worse than chance = it agrees with them less often than a random guesser would in all but 0.13% of "
               "draws (binomial, at its chance agreement)" in note for note in quality.notes), quality.notes
    monkeypatch.undo()
    # a permuted labelling of 10 classes on 70 tasks: never agrees, kappa -0.11, under 3 of the normal reading's
    # standard errors; it was called a likely spammer, "no different from random guesses", its spammer score 1 (read
    # 52). On 55 tasks (0.9^55 = 0.3%: not beyond a guesser's 0.13%) it is no likely spammer either
    labels, truth = _ds_labels(400, 6, 10, 0.8, seed=3)
    perm, perm_few = np.full(400, -1), np.full(400, -1)
    perm[:70], perm_few[100:155] = (truth[:70] + 1) % 10, (truth[100:155] + 1) % 10
    df = _long(np.column_stack([labels, perm, perm_few]), [f"w{i}" for i in range(6)] + ["perm", "perm_few"])
    model = DEEM(n_layers=0, epochs=3, lr=0.1, init="ds", device="cpu", seed=0).fit(df)
    table = worker_quality(model, df).table.set_index("worker")
    assert table.loc[["perm", "perm_few"], "agreement"].max() < 0.05, table
    assert table.loc[["perm", "perm_few"], "spammer_score"].min() > 0.5, table
    assert table.loc["perm", "flag"] == "worse than chance", table.loc["perm"]
    # nor "weak", "better than random, but little" (read 53): its own flag, said in the notes
    assert table.loc["perm_few", "flag"] == "no better than chance", table.loc["perm_few"]
    assert any("no better than chance = its kappa at or below 0 short of that" in note
               for note in worker_quality(model, df).notes)


# ---------------------------------------------------------------------------------------------- outputs
def test_figures(layered):
    df, truth, model = layered
    diag = run_diagnostics(model, df, gold=truth, subset_classes=[0])
    mi = diag.mutual_information
    fig = plots.mi_heatmaps(mi, 1)
    assert len(fig.data) == 2 and all(t.type == "heatmap" for t in fig.data)
    assert all(t.coloraxis == "coloraxis" for t in fig.data)  # one shared colour scale
    assert fig.layout.coloraxis.cmax == pytest.approx(np.nanmax(mi.off_diagonal()))
    assert np.isnan(np.asarray(fig.data[0].z, dtype=float)[0, 0])  # diagonal blank
    assert GOLD_SOURCE in fig.layout.title.subtitle.text and "class 1" in fig.layout.title.text
    bars = plots.importance_bars(diag.importance, highlight=["w1"])
    assert len(bars.data) == 2
    assert list(bars.data[0].marker.color).count(plots.EXPERT_COLOR) == 1
    np.testing.assert_allclose(bars.data[1].y, diag.importance.table.query("subset == 'rest'")["importance"])
    # the axis title short (it ran into the chart's title; walkthrough 105), without markup (escaped; walkthrough
    # 106), as drawn
    from deem_core.plots.safety import escape_figure  # noqa: PLC0415

    # long names drawn cut, head and tail, each bar's category whole (40 names of 3,000 characters took the chart;
    # walkthrough 107), escaped alike with the trace's names
    long_names = diag.importance.table.assign(worker=lambda t: "<b>" + "w" * 3_000 + t["worker"].astype(str))
    drawn = escape_figure(plots.importance_bars(long_names))
    axis, first = drawn.layout.xaxis, sorted(set(long_names["worker"]))[0]
    assert list(axis.tickvals) == list(drawn.data[0].x) and max(map(len, axis.ticktext)) <= 40, axis.ticktext[:2]
    assert axis.ticktext[0].startswith("&lt;b&gt;") and axis.ticktext[0].endswith(first[-9:]), axis.ticktext[0]
    assert plots.importance_bars(diag.importance).layout.xaxis.tickvals is None  # (short names: as before)
    title = escape_figure(bars).layout.yaxis.title.text
    assert title == "mean drop in p(decided class)" and len(plots.importance_bars(diag.importance, column="importance_log_odds")
                                              .layout.yaxis.title.text) <= 30, title
    cm = diag.quality.confusion("w0", "empirical")
    heat = plots.confusion_heatmap(cm, "w0")
    # drawn as the Train page's matrix against the gold labels: a row per true class (walkthrough 79: transposed)
    np.testing.assert_allclose(np.asarray(heat.data[0].z, dtype=float), cm.to_numpy().T)
    assert (heat.layout.yaxis.title.text, heat.layout.xaxis.title.text) == ("true class", "given label")
    # against a model's labels the rows are those labels, not "true class" (walkthrough 80)
    assert plots.confusion_heatmap(cm, "w0", rows="class by DEEM's labels").layout.yaxis.title.text == (
        "class by DEEM's labels")
    np.testing.assert_allclose(np.nansum(np.asarray(heat.data[0].z, dtype=float), axis=1), 1.0)
    assert plots.quality_table_figure(diag.quality.table).data[0].type == "table"
    # the per-layer summary: one point per layer output, named as the engine names them, in short lines (whole
    # names of the two panels ran into each other at 900 px; walkthrough 35)
    from deem_core.plots.safety import escape_figure

    summary = escape_figure(plots.mi_summary_figure(mi))  # (as the page draws it: "<br>" in data showed as text)
    layers = list(mi.summary()["layer"])
    assert list(summary.data[0].x) == layers == [0, 1] and list(summary.layout.xaxis.ticktext) == ["0", "1"]
    assert list(summary.data[0].hovertext) == list(mi.summary()["layer_name"])  # the names on hover
    assert summary.layout.xaxis.title.text == "layer (0: answers, 1: iRBM input)"
    assert summary.layout.xaxis2.title.text == "layer"
    assert not any("<" in str(t) or "&lt;" in str(t) for t in summary.layout.xaxis.ticktext)
    # from 0 (from 0.88 a rise of 0.03 looked steep), and what the layers did said in words (walkthrough 50)
    assert summary.layout.yaxis.rangemode == summary.layout.yaxis2.rangemode == "tozero"
    # no bar below 0: neither quantity can be negative (walkthrough 131 saw mean ± std bars reach below 0)
    for trace in summary.data:
        low = np.asarray(trace.y, dtype=float) - np.asarray(trace.error_y.arrayminus, dtype=float)
        assert trace.error_y.symmetric is False and (low >= -1e-12).all(), low
    from deem_core.plots.report import mi_layers_sentence as layers_change  # noqa: PLC0415

    frame = mi.summary()
    first, last = frame["max_mi_mean"].iloc[0], frame["max_mi_mean"].iloc[-1]
    said = layers_change(frame)
    assert said.startswith(f"Max MI (mean over classes): {first:.3f} between the answers (layer 0), {last:.3f} at "
                           f"the iRBM's input (layer 1): the layers ")
    made = pd.DataFrame({"layer": [0, 1, 2], "max_mi_mean": [0.915, 0.915, 0.944]})
    # which way and how far, within the tenth (1.027 -> 1.074 read "about as it was" of a rise; walkthrough 128)
    assert layers_change(made).endswith("the layers left it about as it was (3.2% higher).")
    assert layers_change(made.assign(max_mi_mean=[0.9, 0.9, 0.85])).endswith("it about as it was (5.6% lower).")
    assert layers_change(made.assign(max_mi_mean=[0.9, 0.5, 0.4])).endswith("the layers lowered it.")
    assert layers_change(made.assign(max_mi_mean=[0.4, 0.5, 0.6])).endswith("the layers raised it.")
    assert layers_change(made.iloc[:1]) is None  # one layer: nothing to compare
    # the same figures to the last digit: the layers passed the answers on unchanged, said as such ("about as it was"
    # read as a little weighing down; walkthrough 110); the max alone equal is no such sign
    same = made.assign(max_mi_mean=[0.42, 0.42, 0.42], rms_mi_mean=[0.123, 0.123, 0.123])
    assert layers_change(same) == ("Max MI (mean over classes): 0.420 between the answers (layer 0), 0.420 at the iRBM's "
                                   "input (layer 2): the layers left it exactly as it was; over all pairs (root mean "
                                   "square) 0.123 → 0.123: the same, so the layers pass each answer on as it came (they "
                                   "start as the identity, and training has not moved them far enough to change an "
                                   "output), and every dependence between the workers reaches the iRBM as it is."), \
        layers_change(same)
    assert "pass each answer on" not in layers_change(same.assign(rms_mi_mean=[0.123, 0.124, 0.125]))
    # the max alone said "about as it was" where the layers made every pair dependent (walkthrough 81: Frobenius 4.2
    # -> 10.4): the root mean square over the pairs is said beside it
    both = made.assign(max_mi_mean=[1.249, 1.25, 1.251], rms_mi_mean=[0.2, 0.3, 0.48])
    assert layers_change(both) == ("Max MI (mean over classes): 1.249 between the answers (layer 0), 1.251 at the "
                                   "iRBM's input (layer 2): the layers left it about as it was (0.2% higher); over all "
                                   "pairs (root mean square) 0.200 → 0.480: the layers raised it.")
    assert "rms_mi_mean" in frame and (
        f"; over all pairs (root mean square) {frame['rms_mi_mean'].iloc[0]:.3f} → {frame['rms_mi_mean'].iloc[-1]:.3f}: "
        ) in said, said


def test_write_diagnostics_files(layered, tmp_path):
    df, truth, model = layered
    diag = run_diagnostics(model, df, gold=truth, subset_classes=[2])
    paths = write_diagnostics(diag, tmp_path / "out", experts=["w0"])
    out = tmp_path / "out"
    mi = pd.read_csv(out / "mutual_information.csv")
    assert list(mi.columns[:5]) == ["layer", "class", "worker_a", "worker_b", "mi"]
    assert len(mi) == 2 * 3 * 20
    summary = pd.read_csv(out / "mi_summary.csv")
    assert list(summary.columns[:5]) == ["layer", "max_mi_mean", "max_mi_std", "frobenius_mean", "frobenius_std"]
    assert (summary["class_source"] == GOLD_SOURCE).all()
    importance = pd.read_csv(out / "importance.csv")
    assert list(importance.columns[:3]) == ["worker", "subset", "importance"]
    assert set(importance["subset"]) == {"selected", "rest", "all"}
    workers = pd.read_csv(out / "workers.csv")
    assert {"worker", "n_labels", "agreement", "spammer_score", "flag"} <= set(workers.columns)
    html = (out / "report.html").read_text()
    assert html.count("plotly.js v") >= 1 and "Worker importance" in html and GOLD_SOURCE in html
    assert set(paths) >= {"mutual_information", "mi_summary", "importance", "workers", "report"}


def test_cli_diagnose_with_saved_model(layered, tmp_path, capsys):
    pytest.importorskip("deem_core.data.readers")
    from deem_core.cli import main
    from deem_core.plots.report import mi_layers_sentence

    df, truth, model = layered
    df.to_csv(tmp_path / "ann.csv", index=False)
    truth.rename_axis("task").reset_index().to_csv(tmp_path / "truth.csv", index=False)
    model.save(tmp_path / "model.pt")
    out = tmp_path / "diag"
    code = main(["diagnose", str(tmp_path / "ann.csv"), "-o", str(out), "--model", str(tmp_path / "model.pt"),
                 "--truth", str(tmp_path / "truth.csv"), "--subset-classes", "0,2", "--device", "cpu"])
    assert code == 0
    importance = pd.read_csv(out / "importance.csv")
    selected = importance[(importance["subset"] == "selected") & (importance["worker"] == "w0")]
    assert selected["n_tasks"].iloc[0] == int(truth.isin([0, 2]).sum())
    assert (pd.read_csv(out / "mi_summary.csv")["class_source"] == GOLD_SOURCE).all()
    # what the layers did to the dependence, as the page says it (walkthrough 50)
    said = mi_layers_sentence(pd.read_csv(out / "mi_summary.csv"))
    assert said and said in capsys.readouterr().err.splitlines()
    assert main(["diagnose", str(tmp_path / "ann.csv"), "-o", str(out), "--model", str(tmp_path / "model.pt"),
                 "--subset-by", "gold"]) == 2


def test_cli_diagnose_counts_flagged_workers_instead_of_a_line_each(tmp_path, capsys):
    """Walkthrough 45: one stderr line per flagged worker, 3,896 on a platform's set (3,162 of them "too few
    labels"), drowned the few that matter: a count per flag, the others named."""
    from deem_core.cli import main

    labels, _ = _ds_labels(200, 5, 2, 0.8, seed=3)
    df = _long(labels, [f"w{i}" for i in range(5)])
    rare = pd.DataFrame([(t, f"r{w}", int(labels[t, 0])) for w in range(25) for t in (2 * w, 2 * w + 1)],
                        columns=df.columns)
    pd.concat([df, rare]).to_csv(tmp_path / "ann.csv", index=False)
    assert main(["diagnose", str(tmp_path / "ann.csv"), "-o", str(tmp_path / "d"), "--epochs", "2", "--no-progress",
                 "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "workers flagged: 25 too few labels" in err and "(every worker in d/workers.csv)" in err
    assert "too few labels (agreement" not in err  # no line of its own for each
    flags = pd.read_csv(tmp_path / "d" / "workers.csv").set_index("worker")["flag"]
    assert (flags[[f"r{w}" for w in range(25)]] == "too few labels").all()


def test_diagnostics_on_new_tasks_and_without_subset(layered):
    """Tasks the model was not trained on, one worker absent: encoded with the model's vocabularies."""
    df, truth, model = layered
    labels, new_truth = _ds_labels(120, 5, 3, 0.75, seed=11)
    new = _long(labels, [f"w{i}" for i in range(5)])
    new = new[new["worker"] != "w4"].assign(task=lambda f: f["task"] + 10_000)
    diag = run_diagnostics(model, new)
    assert diag.mutual_information.class_source == PREDICTED_SOURCE
    assert diag.mutual_information.class_counts.sum() == 120
    np.testing.assert_array_equal(diag.mutual_information.n_common[:, 4, :].sum(), 0)
    assert set(diag.importance.table["subset"]) == {"all"}
    w4 = diag.importance.table.set_index("worker").loc["w4"]
    assert w4["n_answered"] == 0 and np.isnan(w4["importance"])
    quality = diag.quality.table.set_index("worker")
    assert quality.loc["w4", "flag"] == "too few labels" and quality.loc["w0", "n_labels"] == 120
    expected = model.predict(new).to_numpy()
    agreement = (labels[:, 0] == expected).mean()
    assert quality.loc["w0", "agreement"] == pytest.approx(agreement)


def test_a_weak_worker_is_weak_and_a_random_guesser_a_likely_spammer():
    """A worker right about half the time on 3 classes (chance 33%) was flagged "likely spammer" (a walkthrough's
    54% worker); its score is far above a random guesser's noise: now "weak". Guessers and a one-class worker stay
    likely spammers."""
    rng = np.random.default_rng(3)
    n, k = 1500, 3
    truth = rng.integers(k, size=n)
    rows = []
    for name, accuracy in [("good1", 0.85), ("good2", 0.8), ("good3", 0.8), ("good4", 0.75), ("weak", 0.5)]:
        right = rng.random(n) < accuracy
        answers = np.where(right, truth, (truth + rng.integers(1, k, size=n)) % k)
        rows += [(t, name, int(a)) for t, a in enumerate(answers)]
    rows += [(t, "guesser", int(a)) for t, a in enumerate(rng.integers(k, size=n))]
    rows += [(t, "always0", 0) for t in range(n)]
    df = pd.DataFrame(rows, columns=["task", "worker", "label"])
    model = DEEM(n_layers=0, epochs=20, init="ds", device="cpu", seed=0).fit(df)
    table = worker_quality(model, df, gold=pd.Series(truth, index=range(n))).table.set_index("worker")
    assert table.loc["weak", "flag"] == "weak" and 0.4 < table.loc["weak", "accuracy"] < 0.6
    assert table.loc["guesser", "flag"] == table.loc["always0", "flag"] == "likely spammer"
    assert (table.loc[["good1", "good2", "good3", "good4"], "flag"] == "ok").all()


def test_the_mi_heatmaps_list_workers_in_natural_order_with_their_values():
    # text order drew w0, w1, w10, w11, ..., w2 (walkthrough, ninth session); each cell keeps its own pair's value
    from deem_core.analysis.diagnostics.mutual_information import MutualInformationResult  # noqa: PLC0415
    from deem_core.data.text import natural_positions  # noqa: PLC0415
    from deem_core.plots.diagnostics import mi_heatmaps  # noqa: PLC0415

    workers = pd.Index(["w0", "w1", "w10", "w11", "w2", "w3"])
    d = len(workers)
    mi = np.arange(d * d, dtype=float).reshape(1, 1, d, d)
    result = MutualInformationResult(mi=mi, n_common=np.full((1, d, d), 20),
                                     layers=["Layer 0 (the answers, straight into the iRBM)"],
                                     classes=["a"], class_counts=np.array([30]), workers=workers,
                                     class_source="predicted", min_common=10, run=0, notes=[])
    figure = mi_heatmaps(result, "a", show_diagonal=True)
    heat = figure.data[0]
    assert list(heat.x) == list(heat.y) == ["w0", "w1", "w2", "w3", "w10", "w11"]
    z = np.asarray(heat.z)
    assert z[2, 4] == mi[0, 0, 4, 2]  # row w2, column w10: the pair's own value
    assert np.asarray(heat.text)[2, 4] == f"MI {mi[0, 0, 4, 2]:.3f} nats"
    # a skipped pair says why on hover, not "MI NaN nats" (walkthrough 32); the diagonal says what it is
    mi[0, 0, 1, 4] = mi[0, 0, 4, 1] = np.nan
    result.n_common[0, 1, 4] = result.n_common[0, 4, 1] = 9
    heat = mi_heatmaps(result, "a").data[0]
    text = np.asarray(heat.text)
    assert text[1, 2] == "skipped: fewer than 10 common tasks" and np.asarray(heat.customdata)[1, 2] == 9
    assert text[0, 0] == "the worker itself (its entropy: the toggle above)"
    assert "%{text}" in heat.hovertemplate and "%{z" not in heat.hovertemplate
    assert list(natural_positions(pd.Index([3, 1, 2]))) == [1, 2, 0]
    # digits of other scripts are text, not numbers (attack round 52: "٣", "１", "𝟕" in a name raised ValueError and
    # took a run's Train, Results and Diagnostics pages down); a name across lines sorts too
    names = pd.Index(["t10", "w٣", "t2", "１", "t𝟕", "a\nb7", "t1"])
    order = [names[i] for i in natural_positions(names)]
    assert sorted(order) == sorted(names) and order.index("t1") < order.index("t2") < order.index("t10")


def test_the_stacked_mi_heatmaps_name_every_worker():
    """Walkthrough 122: at 48 workers the stacked panels named every other worker, a row between two names."""
    from deem_core.analysis.diagnostics.mutual_information import MutualInformationResult  # noqa: PLC0415
    from deem_core.plots.diagnostics import STACK_ABOVE, mi_heatmaps  # noqa: PLC0415

    for d, stacked in ((48, True), (STACK_ABOVE, False)):
        workers = pd.Index([f"worker_{i}" for i in range(d)])
        result = MutualInformationResult(mi=np.ones((2, 1, d, d)), n_common=np.full((1, d, d), 20),
                                         layers=["Layer 0 (the answers)", "Layer 1 (iRBM input)"], classes=["a"],
                                         class_counts=np.array([30]), workers=workers, class_source="predicted",
                                         min_common=10, run=0, notes=[])
        layout = mi_heatmaps(result, "a").layout
        for axis in (layout.yaxis, layout.yaxis2, layout.xaxis, layout.xaxis2):
            assert (axis.dtick == 1 and axis.tickfont.size == 9) if stacked else axis.dtick is None


def test_the_worker_tables_list_workers_in_natural_order_with_their_own_rows():
    # the tables beside the charts were in text order, w1, w10, w11, w2, ... (walkthrough 104): the Data page's and
    # the Results page's worker tables, the quality table with its CSV and confusion-matrix picker, the importance
    # table; each row (and each confusion matrix) stays its own worker's
    from deem_core.analysis.agreement import worker_coverage, worker_table  # noqa: PLC0415
    from deem_core.analysis.diagnostics._common import consensus_posterior  # noqa: PLC0415

    names = [f"w{i}" for i in range(1, 13)]
    labels, truth = _ds_labels(300, len(names), 3, 0.7, seed=4)
    labels[:, 2] = 0  # w3: a constant answer, to tell its row from the others
    df = _long(labels, names)
    data = AnnotationSet.from_long(df)
    assert list(data.workers)[:3] == ["w1", "w10", "w11"]  # (the data's own order is text order)
    model = DEEM(n_layers=0, epochs=2, init="ds", device="cpu", seed=0).fit(df)
    coverage, table = worker_coverage(data), worker_table(data, model=model)
    quality = worker_quality(model, data)
    importance = worker_importance(model, data, select_tasks(model, data, classes=[0], by="predicted"))
    assert list(coverage["worker"]) == list(table["worker"]) == names
    assert list(quality.table["worker"]) == [str(w) for w in quality.workers] == names
    for subset in ("selected", "rest"):
        assert list(importance.table.loc[importance.table["subset"] == subset, "worker"]) == names
    w3 = names.index("w3")
    assert coverage["agreement_with_others"].iloc[w3] == coverage["agreement_with_others"].min()
    assert table["estimated_accuracy"].iloc[w3] == pytest.approx(
        model.estimated_accuracy(data=data)["w3"])
    assert quality.table["spammer_score"].iloc[w3] == quality.table["spammer_score"].min()
    counts, _ = empirical_confusion(data, consensus_posterior(model, data).argmax(axis=1))
    np.testing.assert_array_equal(quality.empirical_counts[w3], counts[list(data.workers).index("w3")])
    assert (quality.confusion("w3").loc[0] == 1.0).all()  # w3 gives 0 whatever the class


# ------------------------------------------------------------------------------- many classes (attack round 5)
def _peak_bytes(function, *args, **kwargs) -> int:
    """Peak bytes numpy allocates while ``function`` runs (numpy reports its buffers to tracemalloc)."""
    import tracemalloc

    tracemalloc.start()
    try:
        function(*args, **kwargs)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_spammer_score_of_many_classes_takes_no_cube_of_classes():
    # the difference of every pair of columns was a (d, K, K, K) float64 temporary: 6 workers x 300 classes took
    # 1.3 GB (20 x 500: 20 GB); the Gram form takes (d, K, K)
    rng = np.random.default_rng(0)
    psi = rng.dirichlet(np.ones(300), size=(6, 300)).transpose(0, 2, 1)
    psi[2, :, 7] = np.nan  # a true class the worker never saw
    assert _peak_bytes(spammer_score, psi) < 100 << 20
    small = psi[:, :40, :40] / psi[:, :40, :40].sum(axis=1, keepdims=True)
    cols = np.moveaxis(small, -1, -2)
    brute = ((cols[..., :, None, :] - cols[..., None, :, :]) ** 2).sum(-1)  # the definition, on 40 classes
    upper = np.triu(np.ones((40, 40), dtype=bool), 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanmean(brute[:, upper], axis=-1) / 2
    np.testing.assert_allclose(spammer_score(small), expected, rtol=1e-12, atol=1e-14)
    counts = rng.integers(0, 30, size=(6, 40))
    assert np.isfinite(spammer_score(small, counts)).all() and (spammer_score(small, counts) >= 0).all()


def test_pair_mutual_information_equals_the_dense_tables_and_takes_only_their_nonzero_cells():
    from deem_core.analysis.diagnostics.mutual_information import (answer_contingency, mutual_information_from_counts,
                                                                      pair_mutual_information)

    rng = np.random.default_rng(3)
    for trial in range(60):
        n, d, k = int(rng.integers(5, 200)), int(rng.integers(2, 8)), int(rng.integers(2, 10))
        codes = rng.integers(0, k, size=(n, d))
        if trial % 3 == 0:
            codes[:, 1] = codes[:, 0]  # a copy
        rows, workers = np.nonzero(rng.random((n, d)) < rng.uniform(0.2, 1.0))
        values = codes[rows, workers]
        min_common = int(rng.integers(1, 12))
        mi, common = pair_mutual_information(rows, workers, values, n, d, k, min_common)
        dense_mi, dense_common = mutual_information_from_counts(answer_contingency(rows, workers, values, n, d, k),
                                                                min_common)
        np.testing.assert_array_equal(common, dense_common)
        np.testing.assert_allclose(mi, dense_mi, rtol=0, atol=1e-12)  # NaN where the dense one has NaN
    # 6 workers x 300 classes, 1,500 tasks: the dense tables (d^2 K^2, ~7 float64 copies) took ~180 MB per class
    n, d, k = 1500, 6, 300
    codes = np.where(rng.random((n, d)) < 0.7, (np.arange(n) % k)[:, None], rng.integers(0, k, (n, d)))
    rows, workers = np.nonzero(np.ones((n, d), dtype=bool))
    assert _peak_bytes(pair_mutual_information, rows, workers, codes[rows, workers], n, d, k, 10) < 20 << 20


def test_diagnostics_that_would_not_fit_are_refused_before_anything_is_computed(layered, tmp_path, monkeypatch):
    from deem_core.analysis.diagnostics import check_diagnostics_size
    from deem_core.cli import main
    from deem_core.data.annotations import DataError
    from deem_core.model import sizes

    df, _, model = layered
    parts = check_diagnostics_size(model, df)
    assert set(parts) == {"leave-one-out copies of a task with 5 answers", "confusion matrices",
                          "their table (the download)"}
    assert parts["leave-one-out copies of a task with 5 answers"] == 4 * 1 * 5**3 * 3**2 * 1 * 5
    with pytest.raises(DataError, match=r"diagnostics of 5 workers x 3 classes would need about 22\.0 KiB for the "
                                        r"leave-one-out copies of a task with 5 answers, but 10 KiB is available"):
        check_diagnostics_size(model, df, memory_bytes=10 << 10)
    monkeypatch.setattr(sizes, "_memory_bytes", lambda: 2 * (10 << 10))  # the default budget: half of "memory"
    computed = []
    monkeypatch.setattr("deem_core.analysis.diagnostics.per_layer_mutual_information",
                        lambda *a, **k: computed.append(1))
    with pytest.raises(DataError):
        run_diagnostics(model, df)
    assert not computed  # refused before the first part
    df.to_csv(tmp_path / "ann.csv", index=False)
    model.save(tmp_path / "model.pt")
    assert main(["diagnose", str(tmp_path / "ann.csv"), "-o", str(tmp_path / "diag"), "--model",
                 str(tmp_path / "model.pt"), "--device", "cpu"]) == 2
    assert not (tmp_path / "diag" / "mi_summary.csv").exists()


def test_importance_of_some_runs_evaluates_only_those_runs(monkeypatch):
    # every run was evaluated and then all but the asked ones dropped: 16 seeds of 6 layers cost 16 times one run
    # (attack round 6); the dashboard's job asks for one run and at most 2,000 tasks per subset
    import deem_core.analysis.diagnostics.importance as importance_module
    from deem_studio import jobs

    labels, _ = _ds_labels(150, 5, 3, 0.75, seed=4)
    df = _long(labels, [f"w{i}" for i in range(5)])
    model = DEEM(n_layers=1, epochs=2, lr=0.05, init="ds", device="cpu", n_seeds=3, seed=0).fit(df)
    evaluated = []
    real = importance_module.leave_one_out_posteriors

    def spy(network, *args, **kwargs):
        evaluated.append(network.n_runs)
        return real(network, *args, **kwargs)

    one = leave_one_out_drops(model, df, runs=[2])
    monkeypatch.setattr(importance_module, "leave_one_out_posteriors", spy)
    again = leave_one_out_drops(model, df, runs=[2])
    every = leave_one_out_drops(model, df)
    assert evaluated == [1, 3]
    np.testing.assert_allclose(again["drop"], one["drop"])
    # the same numbers as run 2 of the whole network: a one-run model made of it
    single = DEEM(n_layers=1, epochs=2, lr=0.05, init="ds", device="cpu", n_seeds=3, seed=0).fit(df)
    single.network_, single.class_maps_ = model.network_.select([2]), np.asarray(model.class_maps_)[[2]]
    single.run_status_ = [model.run_status_[2]]
    np.testing.assert_allclose(leave_one_out_drops(single, df)["drop"], one["drop"], atol=1e-6)
    assert not np.allclose(every["drop"], one["drop"])  # (three runs' mean is another number)
    assert jobs.DIAGNOSTICS_MAX_TASKS == 2000


def test_the_mi_heatmaps_of_many_workers_draw_the_most_connected_ones():
    # 2,000 workers x 3 layers made 236 MB of chart, more than the server sends (attack round 6)
    from deem_core.analysis.diagnostics.mutual_information import MutualInformationResult  # noqa: PLC0415
    from deem_core.plots.diagnostics import mi_heatmaps  # noqa: PLC0415

    d = 400
    workers = pd.Index([f"w{i}" for i in range(d)])
    common = np.full((1, d, d), 10)
    common[0, :, 7] = common[0, 7, :] = 500  # w7 shares the most tasks
    result = MutualInformationResult(mi=np.random.default_rng(0).random((3, 1, d, d)), n_common=common,
                                     layers=["Layer 0 (input)", "Layer 1", "Layer 2 (iRBM input)"], classes=["a"],
                                     class_counts=np.array([900]), workers=workers, class_source="predicted",
                                     min_common=10, run=0, notes=[])
    figure = mi_heatmaps(result, "a", max_workers=50)
    assert len(figure.data) == 3 and all(len(trace.x) == 50 for trace in figure.data)
    assert "w7" in figure.data[0].x
    assert "the 50 of 400 workers with the most tasks in common" in figure.layout.title.subtitle.text
    assert len(figure.to_json()) < 1_000_000
    assert len(mi_heatmaps(result, "a").data[0].x) == 150  # the default


@pytest.mark.parametrize("d, n_layers", [(13, 2), (60, 3)])  # side by side, stacked
def test_the_mi_heatmaps_make_room_for_long_names_turned_below_them(d, n_layers):
    """At 900 px a 30-character worker name turned by 60 degrees ran off the MI heatmap's edge, and the names took
    the plot area of a fixed height, the heatmaps 120 px high (walkthrough 127): the chart grows by the names'
    room, its cells as tall as with short names."""
    from deem_core.analysis.diagnostics.mutual_information import MutualInformationResult  # noqa: PLC0415
    from deem_core.plots.axes import TICK_CHARS  # noqa: PLC0415
    from deem_core.plots.diagnostics import mi_heatmaps  # noqa: PLC0415

    def figure(names: list[str]):
        result = MutualInformationResult(
            mi=np.random.default_rng(0).random((n_layers, 1, d, d)), n_common=np.full((1, d, d), 50),
            layers=[f"Layer {i}" for i in range(n_layers)], classes=["bird"], class_counts=np.array([254]),
            workers=names, class_source="predicted", min_common=10, run=0, notes=[])
        layout = mi_heatmaps(result, "bird").layout
        return layout.height, layout.margin.t, layout.margin.b, layout

    short = figure([f"w{i}" for i in range(d)])
    long = figure(["annotator_with_a_rather_long_name_from_batch_2024"] + [f"w{i}" for i in range(1, d)])
    font = 9 if d > 40 else 12  # (stacked panels name their workers in a 9 px font)
    # the turned name's height below the axis: about 0.55 em a character (plotly's Open Sans), sin 60
    assert long[2] >= 0.55 * font * np.sin(np.radians(60)) * TICK_CHARS
    # the plot area (cells and the gaps of stacked panels) without the room of the bottom names: as with short names
    def plot_area(shape) -> float:
        height, top, bottom, layout = shape
        area = height - top - bottom
        if n_layers > 1 and d > 40:  # stacked: the gaps hold the names of the panels above
            domains = [layout[f"yaxis{'' if i == 0 else i + 1}"].domain for i in range(n_layers)]
            area *= sum(high - low for low, high in domains)
        return area

    assert plot_area(long) == pytest.approx(plot_area(short), abs=1)
    if d > 40:
        domains = sorted(long[3][f"yaxis{'' if i == 0 else i + 1}"].domain for i in range(n_layers))
        gap = (domains[1][0] - domains[0][1]) * (long[0] - long[1] - long[2])
        assert gap >= 0.55 * font * np.sin(np.radians(60)) * TICK_CHARS + 20  # the names, then the next title


def test_the_median_common_tasks_are_said_as_they_are():
    """The MI note's bound is at the median tasks the pairs with a value share: an even count's 367.5 was said, and
    its bound taken, at 367 (walkthrough 127). Pairs below ``min_common`` and the diagonal are not counted."""
    from deem_core.analysis.diagnostics.mutual_information import MutualInformationResult  # noqa: PLC0415

    common = np.array([[[999, 10, 3, 20], [10, 999, 11, 12], [3, 11, 999, 2], [20, 12, 2, 999]],
                       [[50, 4, 4, 4], [4, 50, 4, 4], [4, 4, 50, 4], [4, 4, 4, 50]]])
    result = MutualInformationResult(mi=np.zeros((1, 2, 4, 4)), n_common=common, layers=["Layer 0 (input)"],
                                     classes=["a", "b"], class_counts=np.array([40, 20]), workers=list("wxyz"),
                                     class_source="predicted", min_common=5, run=0, notes=[])
    assert result.median_common(0) == 11.5  # of 10, 11, 12, 20
    assert result.median_common(1) == 0.0  # no pair with a value


def test_class_names_in_words_are_not_ambiguous():
    """The subset's words on the Diagnostics page and in its charts: the classes "a, b" and "a" + "b" read the same
    (attack round 13); names are quoted when one holds a comma or " or "."""
    from deem_core.analysis.diagnostics.importance import class_names_text  # noqa: PLC0415

    assert class_names_text(["0"]) == "0" and class_names_text(["0", "2"]) == "0 or 2"
    assert class_names_text(["0", "1", "2"]) == "0, 1 or 2"
    assert class_names_text(["a, b"]) == "“a, b”"
    assert class_names_text(["a", "b"]) == "a or b" != class_names_text(["a, b"])
    assert class_names_text(["x or y", "z"]) == "“x or y” or “z”"


def _copying_pair() -> pd.DataFrame:
    """600 tasks, 3 classes, six workers right 75% of the time, where w5 copies w4 85% of the time."""
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 600)
    rows = []
    for t, y in enumerate(truth):
        labels = [y if rng.random() < 0.75 else rng.integers(0, 3) for _ in range(5)]
        labels.append(labels[4] if rng.random() < 0.85 else rng.integers(0, 3))  # w5 copies w4
        rows += [(f"t{t}", f"w{w}", int(label)) for w, label in enumerate(labels)]
    return pd.DataFrame(rows, columns=["task", "worker", "label"])


def test_cli_diagnostics_of_a_fixed_start_flag_the_copying_workers(tmp_path):
    # walkthrough 56: with the start and layers fixed, no cluster was looked for and copiers read as the best workers
    from deem_core.cli import main

    _copying_pair().to_csv(tmp_path / "ann.csv", index=False)
    assert main(["diagnose", str(tmp_path / "ann.csv"), "-o", str(tmp_path / "d"), "--init", "ds", "--layers", "1",
                 "--epochs", "2", "--no-progress"]) == 0
    table = pd.read_csv(tmp_path / "d" / "workers.csv", keep_default_na=False).set_index("worker")
    assert table.loc[["w4", "w5"], "dependent_with"].tolist() == ["w5", "w4"]
    assert table.loc[["w4", "w5"], "flag"].tolist() == ["dependent", "dependent"]


def test_workers_of_a_dependence_cluster_are_named_in_the_quality_and_worker_tables():
    """Walkthrough 34: two workers who copy each other ranked first by agreement and by the iRBM's accuracy, flagged
    "ok", while the Train page had found them as a dependence cluster: both tables now name the partners."""
    from deem_core import DEEM
    from deem_core.analysis.agreement import worker_table

    frame = _copying_pair()
    model = DEEM(init="auto", epochs=2, seed=0, device="cpu").fit(frame)
    assert [c["workers"] for c in model.selection_summary_["clusters"]["clusters"]] == [["w4", "w5"]]
    quality = worker_quality(model, frame)
    table = quality.table.set_index("worker")
    assert table["dependent_with"].to_dict() == {"w0": "", "w1": "", "w2": "", "w3": "", "w4": "w5", "w5": "w4"}
    # not "ok" with the best figures: "dependent" (walkthrough 35), said in the flags' note
    assert table["flag"].to_dict() == {"w0": "ok", "w1": "ok", "w2": "ok", "w3": "ok", "w4": "dependent",
                                       "w5": "dependent"}
    assert "; dependent = none of these, but in a dependence cluster (dependent_with)" in quality.notes[0]
    said = [n for n in quality.notes if n.startswith("dependent_with: the other workers of its dependence cluster")]
    assert len(said) == 1 and "agreement, kappa, spammer_score and the irbm_* columns" in said[0]  # (walkthrough 36)
    # the group in one line, as Train and Results list it: the grid showed it only row by row (walkthrough 89)
    listed = [n for n in quality.notes if n.startswith("1 dependence cluster found before training: 2 workers: "
                                                         "w4, w5 (agree +")]
    assert len(listed) == 1 and "beyond what the others explain; z " in listed[0]
    data = AnnotationSet.from_long(frame)
    table = worker_table(data, model=model)
    assert table["dependent_with"].tolist() == ["", "", "", "", "w5", "w4"] and list(table)[:2] == ["worker",
                                                                                                  "dependent_with"]
    assert table["estimated_accuracy"].between(0.0, 1.0).all()
    # here the safety rule returns the cluster-weighted Dawid-Skene (the pair counted once): no iRBM was trained, so
    # the quality table's irbm_* columns are empty while the worker table reads that fit's estimate
    assert model.fallback_ == "cluster-weighted Dawid-Skene (safety rule)"
    assert quality.table["irbm_accuracy"].isna().all()
    # ... nor Lemma 1's matrices: the all-confusion-matrices CSV held them as "irbm_lemma1" (walkthrough 105)
    from deem_core.plots.report import confusion_long_frame  # noqa: PLC0415

    assert quality.irbm is None and set(confusion_long_frame(quality)["kind"]) == {"empirical_vs_deem"}
    with pytest.raises(ValueError, match="no 'irbm' confusion matrix"):
        quality.confusion("w0", "irbm")
    # no clusters looked for (a start given): no such column, and one estimate of each worker's accuracy in both
    # tables (0.671 against 0.674 for one worker; walkthrough 36)
    fixed = DEEM(init="ds", epochs=2, seed=0, device="cpu").fit(frame)
    fixed_quality = worker_quality(fixed, frame)
    assert "dependent_with" not in fixed_quality.table
    np.testing.assert_allclose(worker_table(data, model=fixed)["estimated_accuracy"].to_numpy(),
                               fixed_quality.table["irbm_accuracy"].to_numpy(), rtol=1e-12)
    assert "dependent_with" not in worker_table(data, model=fixed)
    # diagnostics of that fixed-start model look for the clusters themselves (the quality table called four copiers
    # "ok" and ranked them the best workers; walkthrough 56), and say where they were found
    from deem_core.methods.clusters import clusters_for_diagnostics

    found = clusters_for_diagnostics(fixed, frame)
    assert [c["workers"] for c in found["clusters"]] == [["w4", "w5"]]
    assert clusters_for_diagnostics(model, frame) is None  # (the fit looked: its own clusters)
    looked = worker_quality(fixed, frame, clusters=found).table.set_index("worker")
    assert looked.loc[["w4", "w5"], "flag"].tolist() == ["dependent", "dependent"] and looked.loc["w4", "dependent_with"] \
        == "w5"
    fixed_notes = worker_quality(fixed, frame, clusters=found).notes
    said = [n for n in fixed_notes if n.startswith("dependent_with:")]
    assert len(said) == 1 and "found for these diagnostics (the training, its start and layers fixed" in said[0]
    assert sum(n.startswith("1 dependence cluster found for these diagnostics: 2 workers: w4, w5") for n in
               fixed_notes) == 1
    from deem_core.analysis.diagnostics import run_diagnostics

    assert "dependent_with" in run_diagnostics(fixed, frame, clusters=found).quality.table


def test_the_clusters_note_lists_ten_groups_and_counts_the_rest():
    """The one-line list of the dependence clusters (walkthrough 89) stays one line: ten groups named, the rest
    counted (a set of 200 tested workers can hold 100 pairs); eleven are all named ("and 1 more" takes the room of
    the one it counts)."""
    from deem_core import DEEM

    frame = _copying_pair()
    fixed = DEEM(init="ds", epochs=2, seed=0, device="cpu").fit(frame)

    def note(n_more: int) -> str:
        found = {"clusters": [{"workers": ["w4", "w5"], "excess_agreement": 0.3, "z": 9.0}]
                 + [{"workers": [f"x{i}a", f"x{i}b"], "excess_agreement": 0.1, "z": 4.0} for i in range(n_more)],
                 "z_threshold": 3.0}
        notes = [n for n in worker_quality(fixed, frame, clusters=found).notes if "dependence clusters found" in n]
        assert len(notes) == 1
        return notes[0]

    twelve = note(11)
    assert twelve.startswith("12 dependence clusters found for these diagnostics: 2 workers: w4, w5 (agree +0.300 "
                             "beyond what the others explain; z 9.0, where a group needs z above 3.00); 2 workers: x0a, x0b")
    assert twelve.count("2 workers: ") == 10 and twelve.endswith(
        "x8a, x8b (agree +0.100 beyond what the others explain; z 4.0, where a group needs z above 3.00); and 2 more clusters "
        "(each member's row names the others: dependent_with)")
    eleven = note(10)
    assert eleven.startswith("11 dependence clusters") and eleven.count("2 workers: ") == 11 and "more" not in eleven


def _followed_trio(n: int = 600, seed: int = 4) -> tuple[pd.DataFrame, pd.Series]:
    """Three workers who give one shared opinion (right 55% of the time) on every task, beside four better workers
    answering on their own: majority vote, and a DEEM started from it, follow the trio."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, n)
    wrong = (truth + rng.integers(1, 3, n)) % 3
    shared = np.where(rng.random(n) < 0.55, truth, wrong)
    columns = [shared.copy() for _ in range(3)]
    for column in columns[1:]:
        redrawn = rng.random(n) < 0.05
        column[redrawn] = rng.integers(0, 3, int(redrawn.sum()))
    for accuracy in (0.75, 0.72, 0.7, 0.68):
        columns.append(np.where(rng.random(n) < accuracy, truth, (truth + rng.integers(1, 3, n)) % 3))
    workers = ["c0", "c1", "c2", "h0", "h1", "h2", "h3"]
    return _long(np.column_stack(columns), workers), pd.Series(truth, name="truth")


def test_workers_deem_follows_against_the_gold_labels_are_flagged():
    """Walkthrough 57: three copiers agreed with DEEM's labels on 96-100% of their answers and were rated "ok" beside
    a gold accuracy of 59-62%; nothing pointed at the contradiction. With gold labels the gap is a column, and a
    worker whose agreement with DEEM's labels exceeds its gold accuracy by more than GOLD_GAP is flagged and named."""
    from deem_core.analysis.diagnostics.quality import GOLD_GAP

    df, truth = _followed_trio()
    model = DEEM(n_layers=1, init="mv", epochs=30, device="cpu", seed=0).fit(df)
    assert (model.predict().to_numpy() == truth.to_numpy()).mean() < 0.7  # DEEM follows the trio
    quality = worker_quality(model, df, gold=truth)
    table = quality.table.set_index("worker")
    assert (table.loc[["c0", "c1", "c2"], "flag"] == "gold disagrees").all()
    assert (table.loc[["c0", "c1", "c2"], "gold_gap"] > GOLD_GAP).all()
    assert (table.loc[["h0", "h1", "h2", "h3"], "flag"] != "gold disagrees").all()
    gap = table["agreement"] - table["accuracy"]  # every task has a gold label: the gap is the two columns' difference
    np.testing.assert_allclose(table["gold_gap"], gap, atol=1e-12)
    assert any(note.startswith("gold disagrees: DEEM's labels follow c0, c1, c2 where") for note in quality.notes)
    # the flag's whole rule said (walkthrough 74: a worker of gap 0.316 on 19 gold answers read "weak" under a note
    # naming the 0.25 alone)
    assert "by more than 0.25 of its answers (gold_gap) and by more than 3 standard errors of that difference" in \
        quality.notes[0]
    plain = worker_quality(model, df).table  # without gold labels: no column, no such flag
    assert "gold_gap" not in plain.columns and not (plain["flag"] == "gold disagrees").any()
    # how many answers each gold accuracy stands on, beside it (walkthrough 72: 0.333 on 3 gold tasks read as a fact)
    assert "n_gold" not in plain.columns
    part = worker_quality(model, df, gold=truth.iloc[:25]).table.set_index("worker")
    expected = df[df["task"].isin(truth.index[:25])].groupby("worker").size()
    assert part["n_gold"].to_dict() == expected.reindex(part.index, fill_value=0).to_dict()
    assert list(part.columns).index("n_gold") == list(part.columns).index("accuracy") - 1
    # and how far so few answers leave it: Wilson's 95% interval beside it (walkthrough 80: 1.0 on 2 gold answers read
    # as a fact), NaN where a worker has none
    assert "accuracy_low" not in plain.columns
    columns = list(part.columns)
    assert columns[columns.index("accuracy") + 1:columns.index("accuracy") + 3] == ["accuracy_low", "accuracy_high"]
    for _, row in part.iterrows():
        low, high = accuracy_interval(row["accuracy"], row["n_gold"])
        np.testing.assert_allclose([row["accuracy_low"], row["accuracy_high"]], [low, high], rtol=1e-12)
        assert row["n_gold"] == 0 or row["accuracy_low"] <= row["accuracy"] <= row["accuracy_high"]
    few = worker_quality(model, df[~df["task"].isin(truth.index[:25]) | (df["worker"] != "h0")],
                         gold=truth.iloc[:25]).table.set_index("worker")  # h0 answered none of the gold tasks
    assert few.loc["h0", "n_gold"] == 0 and few[["accuracy_low", "accuracy_high"]].isna().sum().tolist() == [1, 1]
    assert accuracy_interval(1.0, 2)[0] == pytest.approx(0.3424, abs=1e-4)  # all right on 2 answers


def test_a_good_model_leaves_no_worker_flagged_against_the_gold_labels():
    labels, truth = _ds_labels(600, 7, 3, 0.75, seed=12)
    df = _long(labels, [f"w{i}" for i in range(7)])
    model = DEEM(n_layers=0, epochs=5, lr=0.1, init="ds", device="cpu", seed=0).fit(df)
    table = worker_quality(model, df, gold=pd.Series(truth)).table
    assert not (table["flag"] == "gold disagrees").any() and (table["gold_gap"] < 0.1).all()


def test_cli_diagnose_names_the_workers_the_gold_labels_disagree_with(tmp_path, capsys):
    from deem_core.cli import main

    df, truth = _followed_trio()
    df.to_csv(tmp_path / "ann.csv", index=False)
    truth.rename_axis("task").reset_index().to_csv(tmp_path / "truth.csv", index=False)
    assert main(["diagnose", str(tmp_path / "ann.csv"), "-o", str(tmp_path / "d"), "--truth", str(tmp_path / "truth.csv"),
                 "--epochs", "30", "--init", "mv", "--no-progress", "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "worker c0: gold disagrees (agreement" in err and "gold accuracy" in err
    assert "gold disagrees: DEEM's labels follow c0, c1, c2 where the gold labels do not" in err
    flags = pd.read_csv(tmp_path / "d" / "workers.csv").set_index("worker")
    assert (flags.loc[["c0", "c1", "c2"], "flag"] == "gold disagrees").all()


def test_cli_diagnose_reads_the_truth_as_the_other_commands_do(tmp_path, capsys, monkeypatch):
    """Read 54: `deem diagnose --truth` read the file raw, trained the whole model, then stopped with exit 2 on truth
    labels that are no class ("gold labels: 10 labels are not among the classes") or a truth naming no annotated
    task, which `deem aggregate`/`baselines` leave out with a warning. It reads the truth as they do now."""
    from deem_core.cli import main
    from deem_core.methods import deem as deem_module

    labels, truth = _ds_labels(300, 5, 3, 0.8, seed=3)
    _long(labels, [f"w{i}" for i in range(5)]).to_csv(tmp_path / "ann.csv", index=False)
    bad = pd.Series(truth).rename_axis("task").rename("truth").astype(object)
    bad.iloc[:10] = 7  # no class of the answers
    bad.reset_index().to_csv(tmp_path / "truth.csv", index=False)
    fits = []
    real_fit = deem_module.DEEM.fit
    monkeypatch.setattr(deem_module.DEEM, "fit", lambda self, *a, **k: fits.append(1) or real_fit(self, *a, **k))
    assert main(["diagnose", str(tmp_path / "ann.csv"), "-o", str(tmp_path / "d"), "--truth", str(tmp_path / "truth.csv"),
                 "--epochs", "2", "--no-progress", "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "10 truth labels are not among the classes of the answers" in err and "error:" not in err, err
    assert "classes for the mutual information: gold labels" in err  # the other 290 used
    pd.DataFrame({"task": ["x1", "x2"], "truth": [0, 1]}).to_csv(tmp_path / "other.csv", index=False)
    assert main(["diagnose", str(tmp_path / "ann.csv"), "-o", str(tmp_path / "d2"), "--truth", str(tmp_path / "other.csv"),
                 "--epochs", "2", "--no-progress", "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "error:" not in err and "warning: " in err and "gold labels" not in err, err
    # asked to take a subset by gold labels there are none of: refused before any training
    fits.clear()
    assert main(["diagnose", str(tmp_path / "ann.csv"), "-o", str(tmp_path / "d3"), "--truth", str(tmp_path / "other.csv"),
                 "--subset-by", "gold", "--epochs", "2", "--no-progress", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("error: --subset-by gold") and not fits, err


@pytest.mark.parametrize("seed", [18, 28])
def test_a_fair_worker_with_few_labels_is_not_called_a_likely_spammer(seed):
    """Walkthrough 58: a worker right on 57% of its 46 answers (4 classes; spammer score 0.109, above the 0.1 below
    which a worker is "weak") was flagged "likely spammer": within a random guesser's noise for 46 labels (0.152)."""
    labels, truth = _ds_labels(400, 6, 4, 0.8, seed=seed)
    rng = np.random.default_rng(seed)
    fair = np.full(400, -1)
    idx = rng.choice(400, 46, replace=False)
    fair[idx] = np.where(rng.random(46) < 0.57, truth[idx], (truth[idx] + rng.integers(1, 4, 46)) % 4)
    df = _long(np.column_stack([labels, fair]), [f"w{i}" for i in range(6)] + ["fair"])
    model = DEEM(n_layers=0, epochs=3, lr=0.1, init="ds", device="cpu", seed=0).fit(df)
    row = worker_quality(model, df).table.set_index("worker").loc["fair"]
    assert 0.1 <= row["spammer_score"] < 7 / 46  # within the noise, above the weak threshold
    # ok, or weak where its kappa is below sqrt(0.1) (seed 28: right on 41% of its answers, kappa 0.17; walkthrough 73)
    assert row["flag"] == ("weak" if row["kappa"] < 0.1 ** 0.5 else "ok")


def test_the_irbm_accuracy_note_says_when_the_model_trained_on_gold_labels():
    # it said "made from the answers alone, without gold labels" of a model trained on half of them (walkthrough 61)
    from conftest import read_sample  # noqa: PLC0415

    df, truth = read_sample("condind", n_tasks=300)
    gold = truth.iloc[:60]
    trained = DEEM(epochs=2, device="cpu", supervised_weight=1.0).fit(df, gold=gold)
    notes = " ".join(worker_quality(trained, df, gold=gold).notes)
    assert "made from the answers and the gold labels the model trained on" in notes and "alone" not in notes
    plain = DEEM(epochs=2, device="cpu").fit(df, gold=gold)  # weight 0: they only score
    assert "made from the answers alone, without gold labels" in " ".join(worker_quality(plain, df, gold=gold).notes)


def test_charts_of_numeric_worker_ids_and_classes_draw_one_equal_cell_or_bar_each():
    """Walkthrough 67: 39 workers with ids from 200 to 1766 were drawn on a number line 200 ... 1600: each cell as
    wide as the gap to the next id, some 20 workers in a sliver, the importance bars overlapping."""
    from deem_core.analysis.diagnostics.mutual_information import MutualInformationResult  # noqa: PLC0415
    from deem_core.plots.diagnostics import confusion_heatmap, importance_bars, mi_heatmaps  # noqa: PLC0415

    workers = pd.Index([1766, 200, 201, 203, 950])
    d = len(workers)
    result = MutualInformationResult(mi=np.random.default_rng(0).random((2, 1, d, d)), n_common=np.full((1, d, d), 20),
                                     layers=["Layer 0 (input)", "Layer 1 (iRBM input)"], classes=[0],
                                     class_counts=np.array([30]), workers=workers, class_source="predicted",
                                     min_common=10, run=0, notes=[])
    figure = mi_heatmaps(result, 0)
    in_order = ["200", "201", "203", "950", "1766"]
    for trace in figure.data:
        assert list(trace.x) == list(trace.y) == in_order
    axes = [figure.layout[name] for name in figure.layout if name.startswith(("xaxis", "yaxis"))]
    assert len(axes) == 4 and all(axis.type == "category" for axis in axes)
    table = pd.DataFrame({"subset": ["selected"] * d + ["rest"] * d, "worker": list(workers) * 2,
                          "importance": np.linspace(0.1, 0.5, 2 * d), "std_error": 0.01, "n_answered": 40})
    bars = importance_bars(table)
    # in natural order, as the heatmaps (they were in the table's order, text order for names; walkthrough 103), each
    # bar with its own value
    assert [list(trace.x) for trace in bars.data] == [in_order] * 2
    assert list(bars.data[0].y) == pytest.approx([0.1 + 0.4 * i / (2 * d - 1) for i in (1, 2, 3, 4, 0)])
    assert bars.layout.xaxis.type == bars.layout.xaxis2.type == "category"
    heat = confusion_heatmap(pd.DataFrame(np.eye(3), index=[0, 1, 5], columns=[0, 1, 5]))
    assert list(heat.data[0].x) == list(heat.data[0].y) == ["0", "1", "5"]
    assert heat.layout.xaxis.type == heat.layout.yaxis.type == "category"  # three equal cells, not 0 ... 5


def test_with_layers_a_workers_estimated_accuracy_is_read_from_the_posterior():
    """Walkthrough 67: with a layer, Lemma 1 reads the iRBM's view of the layer's output; on a real 4-class set whose
    layer changed a fifth of the answers it read 0.05 for a worker 76% right (correlation with the true accuracies
    0.11). Given the answers, the reading is the mean posterior probability of the labels the worker gave (0.78), the
    same in the worker table and the quality table; without layers it stays Lemma 1's."""
    from deem_core.analysis.agreement import worker_table  # noqa: PLC0415

    rng = np.random.default_rng(2)
    truth = rng.integers(0, 3, 300)
    rows = [(t, f"w{w}", int(truth[t] if rng.random() < (0.9 if w < 3 else 0.5) else rng.integers(0, 3)))
            for t in range(300) for w in range(6)]
    data = AnnotationSet.from_long(pd.DataFrame(rows, columns=["task", "worker", "label"]))
    layered = DEEM(n_layers=1, epochs=5, init="mv", device="cpu", seed=0).fit(data)
    read = layered.estimated_accuracy(data=data)
    posterior = np.asarray(layered.posterior_)
    by_hand = pd.DataFrame(rows, columns=["task", "worker", "label"]).assign(
        q=[posterior[layered.tasks_.get_loc(t), layered.classes_.get_loc(y)] for t, _, y in rows]
    ).groupby("worker")["q"].mean()
    np.testing.assert_allclose(read.to_numpy(), by_hand.reindex(read.index).to_numpy(), rtol=1e-6)  # (float32)
    # near the true accuracies (0.93 and 0.67), where Lemma 1's view of the layer read 0.58 for every one of them
    assert (read[["w0", "w1", "w2"]] > 0.85).all() and (read[["w3", "w4", "w5"]] < 0.75).all(), read
    assert np.ptp(layered.estimated_accuracy().to_numpy()) < 0.05
    table = worker_table(data, model=layered).set_index("worker")
    quality = worker_quality(layered, data).table.set_index("worker")
    np.testing.assert_allclose(table["estimated_accuracy"].to_numpy(), read.reindex(table.index).to_numpy())
    np.testing.assert_allclose(quality["irbm_accuracy"].to_numpy(), read.reindex(quality.index).to_numpy())
    flat = DEEM(n_layers=0, epochs=5, init="mv", device="cpu", seed=0).fit(data)
    np.testing.assert_allclose(flat.estimated_accuracy(data=data).to_numpy(), flat.estimated_accuracy().to_numpy())


def test_labels_that_follow_one_dependence_cluster_are_said_first():
    """Walkthrough 70: DEEM trained from a start set by hand on an ensemble with four copies of a weak classifier gave
    the copies' labels (69.9%; the group counted once: 95.5%); its diagnostics read ~0 mutual information for the
    copies, ranked them first and called good classifiers weak, with nothing on the page saying why. The quality
    notes now open with the cluster the labels follow, and a model that does not follow it says nothing of it."""
    from deem_core import DEEM
    from deem_core.analysis.diagnostics.quality import FOLLOWED_NOTE
    from deem_core.methods.clusters import clusters_for_diagnostics

    frame, truth = _followed_trio()
    fixed = DEEM(init="ds", epochs=20, seed=0, device="cpu").fit(frame)
    assert (fixed.predict() == truth.to_numpy()).mean() < 0.6  # (it follows the trio, right 55% of the time)
    notes = worker_quality(fixed, frame, clusters=clusters_for_diagnostics(fixed, frame)).notes
    assert notes[0].startswith(f"{FOLLOWED_NOTE}: c0, c1, c2 agree with DEEM's labels on 98% of their answers, the "
                               f"other workers on 46%. If the group copies one source, that source decided the "
                               f"labels"), notes[0]
    assert sum(n.startswith(FOLLOWED_NOTE) for n in notes) == 1
    checked = DEEM(init="auto", epochs=20, seed=0, device="cpu").fit(frame)  # (the group counted once: 87%)
    assert (checked.predict() == truth.to_numpy()).mean() > 0.85
    assert not any(n.startswith(FOLLOWED_NOTE) for n in worker_quality(checked, frame).notes)


@pytest.mark.parametrize("seed", [0, 3, 4])
def test_a_fair_worker_agreeing_well_above_chance_is_weak_not_a_likely_spammer(seed):
    """Walkthrough 72: a worker right on 47% of its ~80 answers of 4 classes (kappa 0.31 against the labels, about 5 of
    a guesser's standard errors) was flagged "likely spammer", read as "no different from random guesses": its
    spammer score (the chance-corrected accuracy squared) was within a guesser's noise for 80 labels. A guesser with
    as many answers stays a likely spammer."""
    labels, truth = _ds_labels(400, 6, 4, 0.8, seed=seed)
    rng = np.random.default_rng(seed)
    extra = np.full((400, 2), -1)
    for column, accuracy in enumerate([0.47, None]):
        idx = rng.choice(400, 80, replace=False)
        if accuracy is None:
            extra[idx, column] = rng.integers(4, size=80)
        else:
            right = rng.random(80) < accuracy
            extra[idx, column] = np.where(right, truth[idx], (truth[idx] + rng.integers(1, 4, 80)) % 4)
    df = _long(np.column_stack([labels, extra]), [f"w{i}" for i in range(6)] + ["fair", "guesser"])
    model = DEEM(n_layers=0, epochs=3, lr=0.1, init="ds", device="cpu", seed=0).fit(df)
    table = worker_quality(model, df).table.set_index("worker")
    fair = table.loc["fair"]
    assert fair["spammer_score"] < 7 / 80 and fair["kappa"] > 0.15  # (within the score's noise; its kappa is not)
    assert fair["flag"] == "weak"
    assert table.loc["guesser", "flag"] == "likely spammer"


def test_the_flags_follow_the_kappa_a_reader_sees():
    """Walkthrough 73: of two workers right on half their ~90 answers of 3 classes, one with kappa 0.17 read "ok"
    beside one with kappa 0.33 read "weak" (the spammer score, a sum of squared estimated confusions, scatters on so
    few labels); and one with kappa 0.17 on 80 answers was a "likely spammer". Below a kappa of sqrt(0.1) a worker is
    weak at best; a likely spammer's kappa is within 1.645 of a guesser's standard errors."""
    rng = np.random.default_rng(73)
    n, k = 700, 3
    truth = rng.integers(k, size=n)
    rows = []
    for w in range(20):
        accuracy = 0.8 if w < 14 else 0.5
        tasks = rng.choice(n, 90 if w >= 14 else 300, replace=False)
        right = rng.random(len(tasks)) < accuracy
        answers = np.where(right, truth[tasks], (truth[tasks] + rng.integers(1, k, len(tasks))) % k)
        rows += [(int(t), f"w{w:02d}", int(a)) for t, a in zip(tasks, answers)]
    df = pd.DataFrame(rows, columns=["task", "worker", "label"])
    model = DEEM(n_layers=0, epochs=3, lr=0.1, init="ds", device="cpu", seed=0).fit(df)
    table = worker_quality(model, df).table
    low = table["kappa"] < 0.1 ** 0.5
    assert low.any() and not (table.loc[low, "flag"] == "ok").any(), table[["worker", "kappa", "spammer_score", "flag"]]
    se = np.sqrt(table["chance_agreement"] / (table["n_labels"] * (1 - table["chance_agreement"])))
    spammers = table["flag"] == "likely spammer"
    assert (table.loc[spammers, "kappa"] <= 1.645 * se[spammers]).all()


def test_the_skipped_pairs_note_says_when_it_is_every_pair():
    """Walkthrough 76: "skipped 4900 worker pair(s) x class(es) with fewer than 10 common tasks" read as a part,
    where it was every one of 50 workers' pairs in 4 classes. The note says "(all of them)" then, else of how many."""
    rng = np.random.default_rng(3)
    n, d, k = 300, 30, 3
    truth = rng.integers(0, k, n)
    labels = np.full((n, d), -1)
    for t in range(n):  # 3 of 30 workers a task: a pair shares about 3 tasks
        labels[t, rng.choice(d, 3, replace=False)] = truth[t]
    df = _long(labels, [f"w{j:02d}" for j in range(d)])
    model = DEEM(epochs=2, init="mv").fit(df)
    result = per_layer_mutual_information(model, df)
    pairs = k * d * (d - 1) // 2
    assert f"skipped {pairs:,} (all of them) worker pair x class combinations with fewer than 10 common tasks" in result.notes
    labels[:, :4] = truth[:, None]  # four workers answer every task: their pairs are not skipped
    df = _long(labels, [f"w{j:02d}" for j in range(d)])
    result = per_layer_mutual_information(DEEM(epochs=2, init="mv").fit(df), df)
    said = [note for note in result.notes if note.startswith("skipped ")]
    assert len(said) == 1 and f" of {pairs:,} worker pair x class" in said[0] and "all of them" not in said[0], said
    assert said[0] == f"skipped {result.skipped_pairs:,} of {pairs:,} worker pair x class combinations with fewer than 10 " \
                      f"common tasks" and result.skipped_pairs < pairs - 6 * k  # (the four's pairs are kept)


def test_every_column_the_quality_notes_name_is_a_column_of_the_table():
    """Walkthrough 77: a note named "irbm_score", a column no table has (the page turns the table's column names into
    its headers, and left that one raw). Every snake_case name in the notes is a column of the table."""
    import re

    frame = pd.read_csv(SAMPLE / "condind.csv").head(6000)
    truth = pd.read_csv(SAMPLE / "condind.truth.csv").set_index("task")["truth"]
    quality = worker_quality(DEEM(epochs=3).fit(frame), frame, gold=truth)
    named = set(re.findall(r"\b[a-z]+(?:_[a-z]+)+\b", " ".join(quality.notes)))
    assert "irbm_spammer_score" in named and named <= set(quality.table.columns), named - set(quality.table.columns)


def test_tasks_whose_gold_label_is_no_class_are_said_as_such_in_the_class_groups():
    """Walkthrough 91: a gold file whose 37 labels were a misspelled class made Diagnostics say "37 task(s) without a
    gold label", though those tasks had one; it was no class of the data."""
    from deem_core import DEEM
    from deem_core.analysis.diagnostics._common import class_groups

    frame = _copying_pair()
    model = DEEM(init="ds", epochs=2, seed=0, device="cpu").fit(frame)
    tasks = list(dict.fromkeys(frame["task"]))[:7]
    gold = pd.Series([1] * 7, index=pd.Index(tasks, name="task"))  # (the pages keep only the labels that are classes)
    codes, _, notes = class_groups(model, AnnotationSet.from_long(frame), gold)
    assert int((codes >= 0).sum()) == 7
    assert notes == [f"{len(codes) - 7:,} tasks without a gold label among the classes are left out of the class groups"]


def test_a_confusion_matrix_of_three_rows_is_tall_enough_for_a_long_rows_title():
    """Walkthrough 93: on three rows, the rows' title "class by DEEM's labels (from cluster-weighted Dawid-Skene)" ran
    up over the chart's title (a 320 px figure, 140 px of plot for 58 characters); a short one keeps the figure small."""
    import pandas as pd

    from deem_core.plots.diagnostics import confusion_heatmap

    matrix = pd.DataFrame(np.eye(3), index=list("abc"), columns=list("abc"))
    rows = "class by DEEM's labels (from cluster-weighted Dawid-Skene)"
    tall = confusion_heatmap(matrix, title="w: given label", rows=rows)
    assert tall.layout.height - 180 >= 7 * len(rows), tall.layout.height  # (plotly's default margins take 180 px)
    assert confusion_heatmap(matrix, title="w: given label", rows="gold label").layout.height == 320


def test_importance_bars_most_important_first_and_every_one_of_80_names_drawn():
    """Walkthrough 123: 80 workers' bars in name order, every other name left off the axis, under a caption saying to
    rank workers by the chart. Ordered by importance, every panel follows the first panel's ranking; up to
    MAX_EVERY_NAME short names each is drawn."""
    from deem_core.plots.diagnostics import MAX_EVERY_NAME, importance_bars  # noqa: PLC0415

    rng = np.random.default_rng(4)
    workers = [f"w{i}" for i in range(80)]
    values = rng.permutation(80) / 100.0
    table = pd.DataFrame({"subset": ["selected"] * 80 + ["rest"] * 80, "worker": workers * 2,
                          "importance": np.concatenate([values, values[::-1]]), "std_error": 0.01, "n_answered": 40})
    ranked = importance_bars(table, order="importance")
    first = [workers[i] for i in np.argsort(-values, kind="stable")]
    assert list(ranked.data[0].x) == first and list(ranked.data[1].x) == first
    assert list(ranked.data[0].y) == sorted(values, reverse=True)
    by_name = importance_bars(table, order="name")
    assert list(by_name.data[0].x) == workers  # natural order: w2 before w10
    for figure in (ranked, by_name):  # (stacked panels, each as wide as the page)
        assert figure.layout.xaxis.dtick == 1 and figure.layout.xaxis2.dtick == 1
    assert 80 <= MAX_EVERY_NAME
    with pytest.raises(ValueError, match="order must be"):
        importance_bars(table, order="size")


def test_an_all_zero_mutual_information_heatmap_is_scaled_from_zero_up():
    """Walkthrough 124: on sparse answers every value was 0 and the colour bar ran from -0.4 to 0.4 nats; mutual
    information is never negative."""
    from deem_core.analysis.diagnostics.mutual_information import MutualInformationResult  # noqa: PLC0415
    from deem_core.plots.diagnostics import EMPTY_MI_SCALE, mi_heatmaps  # noqa: PLC0415

    d = 4
    result = MutualInformationResult(mi=np.zeros((2, 1, d, d)), n_common=np.full((1, d, d), 20),
                                     layers=["Layer 0 (input)", "Layer 1 (iRBM input)"], classes=[0],
                                     class_counts=np.array([30]), workers=pd.Index([f"w{i}" for i in range(d)]),
                                     class_source="predicted", min_common=10, run=0, notes=[])
    axis = mi_heatmaps(result, 0).layout.coloraxis
    assert (axis.cmin, axis.cmax) == (0.0, EMPTY_MI_SCALE) and EMPTY_MI_SCALE > 0


def test_a_classifier_expert_on_some_classes_says_which_beside_its_weak_flag():
    """Walkthrough 124: a classifier right 94-98% of the time on three of eight classes and guessing on the others read
    "weak", the flag of two copies of a 42% model, and nothing on the quality tab said where it was strong; shown for
    workers not flagged ok only, an expert of kappa 0.33 ("ok") still went unsaid (walkthrough 125): said whatever the
    flag, where the worker is far from strong on its other classes."""
    from deem_core.analysis.diagnostics.quality import strong_classes

    k, n = 4, 400
    rng = np.random.default_rng(0)
    truth = rng.integers(k, size=n)
    expert = np.where(truth < 2, truth, rng.integers(k, size=n))  # right on classes 0 and 1, guessing elsewhere
    constant = np.zeros(n, dtype=int)  # class 0 on every task: right on all of class 0, but no expert
    good = np.where(rng.random(n) < 0.95, truth, rng.integers(k, size=n))  # strong on every class: nothing said
    # right 88% of the time on every class: over 0.9 on some by chance, no expert (the digits ensemble's classifiers)
    decent = np.where(rng.random(n) < 0.84, truth, rng.integers(k, size=n))
    counts = np.zeros((4, k, k), dtype=np.int64)
    for w, given in enumerate((expert, constant, good, decent)):
        np.add.at(counts[w], (given, truth), 1)
    assert strong_classes(counts, ["cat", "dog", "fox", "owl"]) == ["cat, dog", "", "", ""]


def test_the_quality_table_names_an_expert_s_classes_whatever_its_flag():
    """Walkthrough 125: a classifier right 97% of the time on two of six classes and guessing on the others read "ok"
    (kappa 0.33) and its "strong on" cell was empty: it was filled for workers flagged otherwise only."""
    from deem_core import DEEM

    rng = np.random.default_rng(3)
    n, k = 1_500, 6
    truth = rng.integers(k, size=n)
    columns = {f"clf{i}": np.where(rng.random(n) < acc, truth, rng.integers(k, size=n))
               for i, acc in enumerate((0.75, 0.8, 0.85, 0.9, 0.78, 0.82))}
    columns["expert"] = np.where(truth < 2, np.where(rng.random(n) < 0.97, truth, rng.integers(k, size=n)),
                                 rng.integers(k, size=n))
    frame = pd.DataFrame([(t, w, int(v[t])) for w, v in columns.items() for t in range(n)],
                         columns=["task", "worker", "label"])
    model = DEEM(epochs=5, device="cpu", seed=0).fit(frame)
    table = run_diagnostics(model, frame).quality.table.set_index("worker")
    assert table.loc["expert", "strong_on"] == "0, 1", table.loc["expert"]
    assert (table.drop(index="expert")["strong_on"] == "").all(), table["strong_on"]


def test_swapped_classes_are_read_from_the_confusion_counts():
    """Walkthrough 128: workers who swap cat and dog (right on every other class) read "weak", "strong on bird". A
    worker gives l for m when it does so more often than m beyond a fair coin, on enough tasks of m, and the crowd
    gives m there, and it gives l on m's tasks more often than elsewhere; the expert guessing elsewhere, good workers, a
    constant one and a crowd calling class m by another name give nothing."""
    from deem_core.analysis.diagnostics.quality import swapped_classes

    k, n = 4, 600
    rng = np.random.default_rng(0)
    truth = rng.choice(k, size=n, p=[0.5, 0.2, 0.2, 0.1])
    swap = np.array([1, 0, 2, 3])[truth]  # dog for cat, cat for dog
    one_way = np.where(truth == 2, 3, truth)  # fox named owl
    expert = np.where(truth < 2, truth, rng.integers(k, size=n))  # guesses on fox and owl: no class given instead
    constant = np.zeros(n, dtype=int)  # cat on every task: "cat for dog" more often than dog, and so on
    good = [np.where(rng.random(n) < 0.85, truth, rng.integers(k, size=n)) for _ in range(6)]
    rows = [swap, one_way, expert, constant, *good]
    counts = np.zeros((len(rows), k, k), dtype=np.int64)
    for w, given in enumerate(rows):
        np.add.at(counts[w], (given, truth), 1)
    said = swapped_classes(counts, ["cat", "dog", "fox", "owl"])
    per = np.bincount(truth, minlength=k)
    assert said[0] == (f"dog for cat (100% of {per[0]}), cat for dog (100% of {per[1]})"), said[0]
    assert said[1] == f"owl for fox (100% of {per[2]})", said[1]
    assert said[2] == ""
    assert said[3] == ""  # (cat on every task: more often than dog on dog's tasks, but as often as everywhere)
    assert said[4:] == [""] * 6
    # where most workers give owl on the reference's fox tasks, that class is the crowd's owl: nothing said
    named = counts.copy()
    named[4:, 3, 2] += named[4:, 2, 2]
    named[4:, 2, 2] = 0
    assert "for fox" not in swapped_classes(named, ["cat", "dog", "fox", "owl"])[1]
    # too few tasks of the class, or no clear majority against a fair coin: nothing
    few = np.zeros((1, 2, 2), dtype=np.int64)
    few[0] = [[3, 9], [6, 0]]  # 9 of 9 tasks of class 1 given 0: under 10 tasks; 6 of 9 of class 0 given 1: a coin
    assert swapped_classes(few, ["a", "b"]) == [""]


def test_the_quality_table_flags_workers_who_swap_two_classes():
    """Walkthrough 128: two workers swapping cat and dog (30% of their answers right, where "cat" alone is right on
    50%) read "weak", "strong on bird"; a third swapping two pairs read "worse than chance". Now
    "mixes up classes", with what they give instead; no other worker of the crowd is flagged so."""
    from deem_core import DEEM

    rng = np.random.default_rng(128)
    n, names = 1_200, np.array(["cat", "dog", "bird", "fish", "frog"])
    truth = rng.choice(5, size=n, p=[0.5, 0.2, 0.15, 0.1, 0.05])
    rows = []
    for w in range(30):
        for t in rng.choice(n, 200, replace=False):
            if w < 2:
                given = {0: 1, 1: 0}.get(int(truth[t]), int(truth[t]))
            else:
                given = int(truth[t]) if rng.random() < rng.uniform(0.65, 0.9) else int(rng.integers(5))
            rows.append((t, f"w{w:02d}", names[given]))
    frame = pd.DataFrame(rows, columns=["task", "worker", "label"])
    model = DEEM(epochs=5, device="cpu", seed=0).fit(frame)
    table = run_diagnostics(model, frame).quality.table.set_index("worker")
    for w in ("w00", "w01"):
        assert table.loc[w, "flag"] == "mixes up classes", table.loc[w]
        assert table.loc[w, "gives_instead"].startswith("dog for cat") and "cat for dog" in table.loc[w, "gives_instead"]
    others = table.drop(index=["w00", "w01"])
    assert (others["gives_instead"] == "").all() and (others["flag"] != "mixes up classes").all(), others


def test_confusion_matrix_is_wide_enough_for_its_title_and_subtitle():
    """Walkthrough 124: at 900 px a three-class matrix was 360 px wide and its one-line title, "...: given label
    against DEEM's labels (from cluster-weighted Dawid-Ske", was cut at the chart's edge."""
    import pandas as pd

    from deem_core.plots.diagnostics import SUBTITLE_CHAR_PX, TITLE_CHAR_PX, confusion_heatmap

    matrix = pd.DataFrame(np.eye(3), index=list("abc"), columns=list("abc"))
    name = "n" * 40
    fig = confusion_heatmap(matrix, title=name, subtitle="given label against DEEM's labels")
    assert fig.layout.title.text == name and fig.layout.title.subtitle.text == "given label against DEEM's labels"
    assert fig.layout.width >= TITLE_CHAR_PX * len(name) + 100 and fig.layout.width <= 552
    assert fig.layout.width >= SUBTITLE_CHAR_PX * len("given label against DEEM's labels")
    assert confusion_heatmap(matrix, title="w").layout.width == 360  # (a short title leaves it as small as it was)


def test_hex_ids_are_in_text_order_and_counters_in_natural_order():
    """Walkthrough 126: Toloka's hex worker ids were ordered by their leading digits (0a05..., 2c65..., 21b8...,
    0340f..., 16904...): random to a reader. Codes whose digits run into letters are in text order; counters
    ("w2", "img10.png", "worker_3") keep the natural order."""
    from deem_core.data.text import natural_positions  # noqa: PLC0415

    hex_ids = pd.Index(["2c65e1", "0a05ff", "21b8aa", "0340f1", "16904c", "a7b9e0"])
    assert [hex_ids[i] for i in natural_positions(hex_ids)] == sorted(hex_ids)
    counters = pd.Index(["w10", "w2", "img10.png", "img9.png", "worker_3", "worker_12"])
    assert [counters[i] for i in natural_positions(counters)] == ["img9.png", "img10.png", "w2", "w10", "worker_3",
                                                                  "worker_12"]


def test_mi_subtitles_name_the_class_source_short():
    """Walkthrough 126: at 900 px the subtitles "... classes from DEEM predictions (the labels of cluster-weighted
    Dawid-Skene, returned by the safety rule) · Laye" ran past the charts' edge; the page says whose labels they are."""
    from deem_core.analysis.diagnostics._common import PREDICTED_SOURCE  # noqa: PLC0415
    from deem_core.analysis.diagnostics.mutual_information import MutualInformationResult  # noqa: PLC0415
    from deem_core.plots.diagnostics import mi_heatmaps, mi_summary_figure  # noqa: PLC0415

    source = PREDICTED_SOURCE + " (the labels of cluster-weighted Dawid-Skene, returned by the safety rule)"
    workers = pd.Index([f"w{i}" for i in range(4)])
    result = MutualInformationResult(mi=np.ones((1, 1, 4, 4)), n_common=np.full((1, 4, 4), 20),
                                     layers=["Layer 0 (the answers into the iRBM)"], classes=["a"],
                                     class_counts=np.array([30]), workers=workers, class_source=source,
                                     min_common=10, run=0, notes=[])
    for fig in (mi_heatmaps(result, "a"), mi_summary_figure(result)):
        subtitle = fig.layout.title.subtitle.text
        # ... and names the reference whose labels they are, not "DEEM predictions" (cut before its bracket, it said
        # the model's predictions of labels the safety rule's reference gave; walkthrough 131)
        assert "classes from cluster-weighted Dawid-Skene (safety rule)" in subtitle, subtitle
        assert PREDICTED_SOURCE not in subtitle and "returned by" not in subtitle, subtitle
    result.class_source = PREDICTED_SOURCE  # (a trained model's: as it was)
    for fig in (mi_heatmaps(result, "a"), mi_summary_figure(result)):
        assert f"classes from {PREDICTED_SOURCE}" in fig.layout.title.subtitle.text
