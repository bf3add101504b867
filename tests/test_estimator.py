"""The DEEM estimator: sklearn/crowd-kit conventions, outputs in original labels, save/load, seeds,
callbacks, gold labels, prediction on new tasks, Lemma 1 on CondInd."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from deem_core import DEEM, DataError, NotFittedError
from deem_core.data.annotations import AnnotationSet

from conftest import SAMPLE_DIR, make_ds_data, read_sample


def _string_labels(df):
    names = {0: "cat", 1: "dog", 2: "=bird"}
    out = df.copy()
    out["label"] = out["label"].map(names)
    out["task"] = "item-" + out["task"].astype(str)
    return out


def test_fit_predict_returns_series_indexed_by_task_in_original_labels(small_condind):
    df, truth = small_condind
    model = DEEM(epochs=3, device="cpu", seed=0)
    labels = model.fit_predict(_string_labels(df))
    assert model.fit(_string_labels(df)) is model
    assert isinstance(labels, pd.Series) and labels.index.name == "task"
    assert labels.index[0] == "item-0" and len(labels) == 400
    assert set(labels.unique()) <= {"cat", "dog", "=bird"}
    proba = model.predict_proba()
    assert list(proba.columns) == ["=bird", "cat", "dog"]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert (proba.idxmax(axis=1) == model.predict()).all()
    assert model.history_.shape[0] == 3 and model.n_epochs_ == 3


def test_default_training_beats_majority_vote_on_condind(small_condind):
    df, truth = small_condind
    data = AnnotationSet.from_long(df)
    mv_acc = (data.classes.take(data.majority_vote()) == truth.reindex(data.tasks).to_numpy()).mean()
    labels = DEEM(epochs=30, device="cpu", seed=0).fit_predict(df)
    acc = (labels.reindex(truth.index) == truth).mean()
    assert acc > mv_acc + 0.05, (acc, mv_acc)


def test_same_seed_same_labels_on_cpu(small_condind):
    df, _ = small_condind
    a = DEEM(epochs=4, device="cpu", seed=3, init="mv").fit(df)
    b = DEEM(epochs=4, device="cpu", seed=3, init="mv").fit(df)
    pd.testing.assert_frame_equal(a.predict_proba(), b.predict_proba())
    pd.testing.assert_frame_equal(a.history_.drop(columns="seconds"), b.history_.drop(columns="seconds"))


def test_save_and_load_round_trip(tmp_path, small_condind):
    df, _ = small_condind
    model = DEEM(epochs=2, device="cpu", n_seeds=2).fit(_string_labels(df))
    path = model.save(tmp_path / "model.deem")
    loaded = DEEM.load(path, device="cpu")
    pd.testing.assert_frame_equal(loaded.predict_proba(), model.predict_proba())
    new = _string_labels(df).head(50)
    pd.testing.assert_frame_equal(loaded.predict_proba(new), model.predict_proba(new), atol=1e-6)
    assert loaded.get_params()["n_seeds"] == 2 and loaded.lr_ == model.lr_
    (tmp_path / "junk.deem").write_bytes(b"not a model")
    with pytest.raises(DataError, match="junk.deem: not a DEEM model file"):
        DEEM.load(tmp_path / "junk.deem")


def test_predicting_unseen_tasks_matches_training_posterior_for_the_same_answers(small_condind):
    df, _ = small_condind
    model = DEEM(epochs=2, device="cpu").fit(df)
    subset = df[df["task"].isin([0, 1, 2])].assign(task=lambda f: f["task"] + 10_000)
    proba = model.predict_proba(subset)
    assert list(proba.index) == [10_000, 10_001, 10_002]
    np.testing.assert_allclose(proba.to_numpy(), model.predict_proba().loc[[0, 1, 2]].to_numpy(), atol=1e-5)



def test_a_diverged_run_is_left_out_on_new_tasks_as_in_the_training_consensus(small_condind, monkeypatch):
    """The consensus averages the runs that did not diverge, whether the tasks are the training tasks
    (``posterior_``, ``free_energy_``) or given again (``predict_proba(data)``, ``free_energy(data)``)."""
    from deem_core.methods import deem as deem_module  # noqa: PLC0415

    real_training = deem_module.train_annotations

    def second_run_diverges(*args, **kwargs):
        result = real_training(*args, **kwargs)
        with torch.no_grad():  # the state a diverged run is left in: finite, far from a trained run
            for parameter in result.network.parameters():
                parameter[1] = 3 * torch.randn_like(parameter[1])
        result.status[1], result.messages[1] = "diverged", "energy became non-finite (simulated)"
        return result

    monkeypatch.setattr(deem_module, "train_annotations", second_run_diverges)
    df, _ = small_condind
    model = DEEM(epochs=2, n_seeds=2, init="mv", device="cpu").fit(df)
    assert model.run_status_ == ["finished", "diverged"]
    per_run = model.run_posteriors(model.encode(df))  # (2, n, K) in the order of the encoded tasks
    assert np.abs(per_run[1] - per_run[0]).max() > 0.1  # the diverged run would move an average of both
    again = model.predict_proba(df).reindex(model.tasks_)
    np.testing.assert_allclose(again.to_numpy(), model.predict_proba().to_numpy(), atol=1e-6)
    np.testing.assert_allclose(model.posterior_, per_run[0][model.encode(df).tasks.get_indexer(model.tasks_)],
                               atol=1e-6)
    np.testing.assert_allclose(model.free_energy(df).reindex(model.tasks_).to_numpy(), model.free_energy_,
                               rtol=1e-6, atol=1e-4)

def test_callback_can_stop_training_and_sees_every_run(small_condind):
    df, _ = small_condind
    seen = []

    def stop_after_two(epoch, logs):
        seen.append((epoch, len(logs)))
        return epoch >= 2

    model = DEEM(epochs=10, n_seeds=3, init="ds", device="cpu", callbacks=[stop_after_two]).fit(df)
    assert seen == [(1, 3), (2, 3)]
    assert model.n_epochs_ == 2 and model.run_status_ == ["stopped"] * 3
    assert model.seed_agreement_.shape == (400,)
    assert 0.0 <= model.seed_agreement_.min() <= model.seed_agreement_.max() == 1.0


def test_parameter_validation_and_not_fitted():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        DEEM().predict()
    # scikit-learn's own exception, as every scikit-learn estimator raises it (and still a RuntimeError)
    from sklearn.exceptions import NotFittedError as SklearnNotFitted  # noqa: PLC0415

    from deem_core.methods.baselines import DawidSkeneAggregator, MajorityVoteAggregator  # noqa: PLC0415

    for unfitted in (DEEM(), MajorityVoteAggregator(), DawidSkeneAggregator()):
        with pytest.raises(SklearnNotFitted, match="not fitted yet"):
            unfitted.results_frame()
        with pytest.raises(RuntimeError):
            unfitted.predict_proba()
    df, _ = make_ds_data(20, 3, 2)
    with pytest.raises(ValueError, match="lr must be a number above 0 and at most 100, or 'auto', got -1"):
        DEEM(lr=-1).fit(df)
    with pytest.raises(ValueError, match="at most 100, or 'auto', got 1e[+]39"):  # infinite in float32
        DEEM(lr=1e39, init="mv").fit(df)
    from deem_core.methods.sweep import run_sweep  # noqa: PLC0415

    with pytest.raises(ValueError, match=r"learning rates must be numbers above 0 and at most 100, got \[1e[+]39\]"):
        run_sweep(df, lrs=[0.1, 1e39], epochs=1)
    with pytest.raises(ValueError, match=r"init must be one of \('mv', 'ds', 'auto'\), got 'xx'"):
        DEEM(init="xx").fit(df)
    # depth and sampler steps have one bound everywhere (the command line took 100,000,000 steps and ran silently)
    with pytest.raises(ValueError, match="n_layers must be a whole number from 0 to 6, got 7"):
        DEEM(n_layers=7).fit(df)
    with pytest.raises(ValueError, match="sampler_steps must be a whole number from 0 to 1,000, got 1001"):
        DEEM(sampler_steps=1001).fit(df)
    with pytest.raises(ValueError, match="n_layers must be a whole number from 0 to 6, got 7"):
        run_sweep(df, lrs=[0.1], epochs=1, n_layers=7)
    with pytest.raises(ValueError, match=r"sampler_steps must be a whole number from 0 to 1,000, got 1000\.9"):
        run_sweep(df, lrs=[0.1], epochs=1, sampler_steps=1000.9)  # (int() cut it to 1,000; attack round 13)
    with pytest.raises(ValueError, match="n_layers must be a whole number from 0 to 6, got True"):
        DEEM(n_layers=True).fit(df)
    # seeds too (100,000 seeds of 30 tasks ran past a minute from the command line; attack round 42)
    with pytest.raises(ValueError, match="n_seeds must be a whole number from 1 to 16, got 17"):
        DEEM(n_seeds=17).fit(df)
    with pytest.raises(ValueError, match="n_seeds must be a whole number from 1 to 16, got 1000"):
        run_sweep(df, lrs=[0.1], epochs=1, n_seeds=1000)
    one_class = df.assign(label=0)
    with pytest.raises(DataError, match="only one class"):
        DEEM(epochs=1).fit(one_class)


def test_ds_init_starts_at_dawid_skene_and_works_on_sparse_data():
    df, truth = make_ds_data(300, 30, 3, density=0.2, seed=5)
    model = DEEM(n_layers=0, epochs=1, lr=1e-6, init="ds", device="cpu").fit(df)
    ds_labels = model.dawid_skene_.posterior.argmax(1)
    np.testing.assert_array_equal(model.classes_.get_indexer(model.predict()), ds_labels)
    acc = (model.predict().reindex(truth.index) == truth).mean()
    assert acc > 0.8


def test_gold_labels_drive_the_class_map_and_are_scored(small_condind):
    df, truth = small_condind
    gold = truth.iloc[:40]
    model = DEEM(epochs=3, device="cpu", supervised_weight=1.0).fit(df, gold=gold)
    assert model.class_map_source_ == "gold labels"
    expected = (model.predict().loc[gold.index] == gold).mean()
    assert model.gold_accuracy_ == pytest.approx(expected)
    with pytest.raises(DataError, match="gold labels: 1 label"):
        DEEM(epochs=1, device="cpu").fit(df, gold=pd.Series({0: 9}))


def test_free_energy_flags_planted_random_items():
    df, _ = make_ds_data(600, 12, 3, seed=7, accuracy=(0.8, 0.95))
    rng = np.random.default_rng(0)
    planted = rng.choice(600, 20, replace=False)
    rows = df["task"].isin(planted)
    df.loc[rows, "label"] = rng.integers(0, 3, rows.sum())
    model = DEEM(n_layers=0, epochs=20, device="cpu", init="ds").fit(df)
    energy = model.free_energy()
    top = set(energy.sort_values(ascending=False).index[:40])
    assert len(top & set(planted)) >= 15


@pytest.mark.slow
def test_lemma1_irbm_recovers_condind_confusion_matrices():
    """A 0-layer DEEM (the iRBM) trained from majority vote on CondInd, read back through Lemma 1,
    recovers the true confusion matrices of the informative workers: max abs error per entry below
    0.12 after 60 epochs at batch 256 (measured 0.04-0.11; about 40 s on one core)."""
    df, _ = read_sample("condind")
    spec = json.loads((SAMPLE_DIR / "condind.confusion.json").read_text())
    model = DEEM(n_layers=0, epochs=60, lr=0.3, batch_size=256, init="mv", device="cpu", seed=0).fit(df)
    matrices = model.confusion_matrices()
    informative = spec["informative"]
    errors = []
    for worker in informative:
        true = np.asarray(spec["confusion"][worker])
        errors.append(np.abs(matrices[worker].to_numpy() - true).max())
    assert max(errors) < 0.12, errors


def test_auto_lr_keeps_the_sweep_run_which_equals_direct_training(small_condind):
    df, _ = small_condind
    auto = DEEM(lr="auto", epochs=3, n_seeds=2, device="cpu", seed=1).fit(df)
    assert auto.lr_ == auto.sweep_.recommendation.lr
    assert auto.history_["run"].tolist() == [0, 1] * 3 and set(auto.history_["lr"]) == {auto.lr_}
    direct = DEEM(lr=auto.lr_, init=auto.init_, epochs=3, n_seeds=2, device="cpu", seed=1).fit(df)
    np.testing.assert_allclose(auto.posterior_, direct.posterior_, atol=1e-5)


def test_non_finite_energy_stops_the_run_and_keeps_the_last_good_state(small_condind, monkeypatch):
    # a step far above any accepted one (training.MAX_LR) is the way to make the energy overflow here
    import deem_core.methods.deem as deem_module  # noqa: PLC0415

    monkeypatch.setattr(deem_module, "MAX_LR", float("inf"))
    df, _ = small_condind
    model = DEEM(lr=1e38, epochs=4, init="mv", device="cpu").fit(df)
    assert model.run_status_ == ["diverged"]
    assert model.run_messages_ == ["energy became non-finite at epoch 2; parameters restored to the end of "
                                   "epoch 1 and the run was stopped"]
    assert model.history_["status"].tolist() == ["running", "diverged"]
    assert all(bool(torch.isfinite(p).all()) for p in model.network_.parameters())
    assert np.isfinite(model.posterior_).all() and model.predict().notna().all()


def test_auto_init_with_gold_trains_both_starts_and_keeps_the_better_one(small_condind):
    df, truth = small_condind
    gold = truth.iloc[:60]
    model = DEEM(init="auto", epochs=3, n_seeds=2, device="cpu").fit(df, gold=gold)
    assert set(model.init_scores_) == {"ds", "mv"}
    evidence = model.init_evidence_
    # CondInd's workers are independent: the unsupervised choice is the DS start, kept unless gold says otherwise
    assert evidence["unsupervised_choice"] == "ds" and evidence["challenger"] == "mv"
    assert model.init_ == ("mv" if evidence["p_value"] < 0.05 else "ds")
    assert model.network_.n_runs == 2 and len(model.run_status_) == 2
    assert model.gold_accuracy_ == pytest.approx((model.predict().loc[gold.index] == gold).mean())
    alone = DEEM(init=model.init_, epochs=3, n_seeds=2, device="cpu").fit(df, gold=gold)
    np.testing.assert_allclose(model.posterior_, alone.posterior_, atol=1e-5)
    without_gold = DEEM(init="auto", epochs=1, device="cpu").fit(df)
    assert without_gold.init_ == "ds" and without_gold.init_scores_ == {}


def test_gold_overrules_the_unsupervised_start_only_on_significant_evidence():
    from deem_core.methods.deem import challenger_wins

    default = np.ones(300)
    one_task_better = default.copy()
    default[0] = 0  # the challenger is right on one more task out of 300 (CondInd's case): keep the default
    switch, evidence = challenger_wins(default, one_task_better)
    assert not switch and evidence == {"challenger_better": 1, "challenger_worse": 0, "p_value": 0.5}
    challenger = np.ones(300)
    default = np.ones(300)
    default[:12] = 0
    challenger[12:14] = 0  # better on 12 tasks, worse on 2: p = P(X >= 12 | n=14, 1/2) = 106/16384
    switch, evidence = challenger_wins(default, challenger)
    assert switch and evidence["p_value"] == pytest.approx(106 / 16384)
    assert challenger_wins(np.ones(5), np.ones(5)) == (False, {"challenger_better": 0, "challenger_worse": 0,
                                                               "p_value": 1.0})


def test_gold_labels_train_a_run_whose_start_is_set(small_condind):
    # a run whose start was set trained without its gold labels: weight 100 gave the posteriors of weight 0
    df, truth = small_condind
    gold = truth.iloc[:100]
    plain = DEEM(init="ds", epochs=3, device="cpu").fit(df, gold=gold)
    weighted = DEEM(init="ds", epochs=3, device="cpu", supervised_weight=100.0).fit(df, gold=gold)
    assert plain.fallback_ is None and weighted.fallback_ is None
    on_gold = weighted.predict_proba().index.isin(gold.index)
    assert not np.allclose(weighted.predict_proba().to_numpy()[on_gold], plain.predict_proba().to_numpy()[on_gold],
                           atol=1e-3)
