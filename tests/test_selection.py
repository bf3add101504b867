"""The held-out criterion: split rules and the exactness of p(x_i = l | x_-i) from the free energy."""

import itertools
import re

import numpy as np
import torch

from deem_core.analysis.selection import hold_out_answers, heldout_log_probs, observed_log_likelihood
from deem_core.data.annotations import AnnotationSet
from deem_core.data.text import counted
from deem_core.methods.dawid_skene import fit_dawid_skene
from deem_core.model.network import DEEMNetwork


def test_hold_out_keeps_one_answer_per_task_and_never_the_last():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=(500, 6))
    labels[rng.random(labels.shape) < 0.6] = -1
    labels[:50, 1:] = -1  # tasks with a single answer are never held out
    labels[:50, 0] = 1
    train_set, held = hold_out_answers(AnnotationSet.from_dense(labels), share=0.3, seed=1)
    train = train_set.dense_labels()
    assert len(np.unique(held.task)) == len(held)
    assert not np.isin(held.task, np.arange(50)).any()
    assert ((train >= 0).sum(axis=1) >= 1)[(labels >= 0).any(axis=1)].all()
    assert (labels[held.task, held.worker] == held.label).all() and (train[held.task, held.worker] == -1).all()
    assert (train >= 0).sum() + len(held) == (labels >= 0).sum()


def _random_network(n_layers: int, d: int = 3, k: int = 3, seed: int = 0) -> DEEMNetwork:
    torch.manual_seed(seed)
    net = DEEMNetwork(1, d, k, n_layers)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.8)
    return net


def test_conditional_matches_enumeration_of_the_joint_for_every_depth():
    d, k = 3, 3
    for n_layers in (0, 1, 2):
        net = _random_network(n_layers, d, k, seed=n_layers)
        states = torch.tensor(list(itertools.product(range(k), repeat=d)))  # (27, d)
        x = torch.nn.functional.one_hot(states, k).float().unsqueeze(0)
        with torch.no_grad():
            energy = net.free_energy(x, torch.ones(1, len(states), d))[0]
        joint = torch.softmax(-energy, dim=0).view(*(k,) * d)  # p(x) by enumeration
        labels = np.array([[0, 2, 1], [1, 1, 0], [2, 0, 2]])
        train, held = hold_out_answers(AnnotationSet.from_dense(labels), share=0.99, seed=3)
        assert len(held) == 3
        got = heldout_log_probs(net, train, held).exp()[0]  # (h, K)
        for row, (task, worker) in enumerate(zip(held.task, held.worker)):
            index = list(labels[task])
            index[worker] = slice(None)
            expected = joint[tuple(index)] / joint[tuple(index)].sum()
            assert torch.allclose(got[row], expected, atol=1e-5), (n_layers, row)


def test_depth_zero_from_dawid_skene_gives_the_dawid_skene_predictive():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 400)
    labels = np.where(rng.random((400, 5)) < 0.7, truth[:, None], rng.integers(0, 3, (400, 5)))
    labels[rng.random(labels.shape) < 0.3] = -1
    labels[:, 0] = truth
    train, held = hold_out_answers(AnnotationSet.from_dense(labels), share=0.2, seed=0)
    ds = fit_dawid_skene(train)
    net = DEEMNetwork(1, 5, 3, 0)
    net.set_from_dawid_skene(torch.as_tensor(ds.confusion, dtype=torch.float32),
                             torch.as_tensor(ds.prior, dtype=torch.float32))
    ll = observed_log_likelihood(heldout_log_probs(net, train, held), held)[0]
    # Dawid-Skene's own predictive: sum_m p(y = m | x_-i) psi_i[l, m]
    expected = np.array([np.log((ds.posterior[t] * ds.confusion[w, l]).sum())
                         for t, w, l in zip(held.task, held.worker, held.label)])
    assert np.allclose(ll, expected, atol=1e-4)


# ---------------------------------------------------------------------------------------------- the rule
from dataclasses import replace  # noqa: E402

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from conftest import read_sample  # noqa: E402
from deem_core import DEEM  # noqa: E402
from deem_core.cli import main  # noqa: E402
from deem_core.methods import deem as deem_module  # noqa: E402
from deem_core.methods.choose import (CLUSTER_WEIGHTED, MAJORITY_VOTE, CandidateFit,  # noqa: E402
                                      Reference, choose, majority_vote_network)
from deem_core.model.training import TrainingResult, predict_hidden  # noqa: E402


def test_majority_vote_network_is_majority_vote_with_its_ties():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, size=(300, 7))
    labels[rng.random(labels.shape) < 0.5] = -1
    labels[:5] = -1
    labels[:5, :2] = [[0, 1], [1, 0], [2, 3], [3, 3], [1, 1]]  # ties go to the smallest class, as MV's
    net = majority_vote_network(1, 7, 4)
    t = torch.as_tensor(labels)
    hidden = predict_hidden(net, t, (t >= 0).float(), None)[0].argmax(-1).numpy()
    expected = AnnotationSet.from_dense(labels, classes=range(4)).majority_vote()
    answered = expected >= 0
    assert (hidden[answered] == expected[answered]).all()


def _candidate(start, depth, loglik, agreement, collapsed=False, score=None):
    result = TrainingResult(network=None, history=[], status=["finished"], messages=[""], epochs_run=1,
                            seconds=0.0, lrs=[0.01], seeds=[0])
    return CandidateFit(start=start, depth=depth, result=result, loglik=np.asarray(loglik)[None, :],
                        agreement=np.asarray(agreement, dtype=float), collapsed_at=[3 if collapsed else None],
                        seconds=0.0, score=None if score is None else np.asarray(score)[None, :])


def test_where_clusters_are_found_the_safety_rule_weighs_the_training_answers():
    """A copying trio among 60 workers, found, led every candidate below majority vote and 5-16 points below the
    cluster-weighted Dawid-Skene, which 10% of the answers held out could not tell apart (+0.007 +- 0.026 nats): where
    clusters are found the rule reads the training answers' predictive scores (ten times the answers, their error
    counted by task); without clusters the held-out ones (an in-sample Dawid-Skene scored above more accurate choices
    on sparse sets)."""
    from deem_core.analysis.selection import paired_gain_by_task  # noqa: PLC0415

    rng = np.random.default_rng(3)
    held = rng.normal(-1.0, 0.3, 300)
    agree = (rng.random(300) < 0.7).astype(float)
    task = np.repeat(np.arange(1000), 3)  # 3,000 training answers, three a task
    pairs = rng.normal(-1.0, 0.3, 3000)
    refs = [Reference("mv", "majority vote", held, agree, pair_score=pairs, pair_task=task),
            Reference("cwds", "cluster-weighted Dawid-Skene", held, agree, pair_score=pairs + 0.05, pair_task=task)]

    def candidate(clustered: bool) -> CandidateFit:
        fit = _candidate("ds", 0, held, agree, score=held)
        fit.lco_loglik = (held - 0.1 if clustered else held)[None, :]  # (what tells a clustered selection)
        fit.pair_score = pairs[None, :]
        return fit

    choice = choose([candidate(True)], refs)  # the held-out scores tie; the training answers' do not
    assert choice.index == CLUSTER_WEIGHTED and "predicts the training answers, each from the other clusters' answers," \
        in choice.reason
    kept = choose([candidate(False)], refs)
    assert kept.index == 0 and "predictive score is higher" in kept.safety and "training answers" not in kept.safety
    # each training answer is predicted with its own answer left out of its worker's confusion (brute force here)
    from deem_core.analysis.selection import ClusterPairs, pair_scores  # noqa: PLC0415

    n_pairs, d, k = 40, 3, 3
    posterior = rng.random((n_pairs, k))
    scored = ClusterPairs(data=None, pair=rng.integers(0, n_pairs, 90), worker=rng.integers(0, d, 90),
                          label=rng.integers(0, k, 90))
    hard = posterior.argmax(1)[scored.pair]
    expected = []
    for i in range(90):
        others = np.arange(90) != i
        mine = others & (scored.worker == scored.worker[i]) & (hard == hard[i])
        expected.append(np.log((0.5 + (scored.label[mine] == scored.label[i]).sum()) / (0.5 * k + mine.sum())))
    np.testing.assert_allclose(pair_scores(posterior, scored, d), expected, rtol=1e-12)
    # the error of the mean gain counts a task's answers together
    diff_by_task = np.repeat(rng.normal(0.0, 1.0, 1000), 3)  # one value a task, three answers
    _, clustered_se = paired_gain_by_task(np.zeros(3000), diff_by_task, task)
    _, naive_se = paired_gain_by_task(np.zeros(3000), diff_by_task, np.arange(3000))
    assert clustered_se == pytest.approx(naive_se * np.sqrt(3), rel=0.05)


def test_rule_drops_collapsed_prefers_fewer_layers_when_tied_and_returns_the_reference_that_predicts_better():
    rng = np.random.default_rng(0)
    base = rng.normal(-1.0, 0.3, 2000)
    agree = (rng.random(2000) < 0.7).astype(float)
    score = rng.normal(-1.0, 0.3, 2000)
    refs = [Reference("mv", "majority vote", score - 0.01, agree), Reference("cwds", "Dawid-Skene", score, agree)]
    shallow = _candidate("ds", 0, base, agree, score=score)
    deep_tied = _candidate("ds", 2, base + rng.normal(0.001, 0.05, 2000), agree, score=score)
    deep_better = _candidate("ds", 2, base + 0.05, agree, score=score)
    collapsed = _candidate("mv", 1, base + 1.0, agree, collapsed=True, score=score)
    choice = choose([shallow, deep_tied, collapsed], refs)
    assert choice.index == 0 and "fewer layers" in choice.reason and not choice.safety_applied
    assert list(choice.table["chosen"]) == [True, False, False, False, False]  # last rows: the references
    assert choose([shallow, deep_better, collapsed], refs).index == 1
    # the choice predicts the other clusters' held-out answers clearly worse than both references: the better
    # reference by that score (here the cluster-weighted Dawid-Skene) is returned, and said
    beaten = _candidate("ds", 0, base, agree, score=score - rng.uniform(0.0, 0.2, 2000))
    choice = choose([beaten], refs)
    assert choice.index == CLUSTER_WEIGHTED and choice.safety_applied and "safety rule" in choice.reason
    assert choice.reference is refs[1] and list(choice.table["chosen"]) == [False, False, True]
    refs_mv_best = [Reference("mv", "majority vote", score + 0.01, agree), refs[1]]
    assert choose([beaten], refs_mv_best).index == MAJORITY_VOTE
    # only a reference that beat the choice is returned: one ahead on average but within its noise of the choice is
    # not (it was, named after the one that beat it; read 54)
    steady = _candidate("ds", 0, base, agree, score=score)
    noisy_ahead = [Reference("mv", "majority vote", score + 0.1 + np.tile([1e-3, -1e-3], 1000), agree),
                   Reference("cwds", "cluster-weighted Dawid-Skene", score + 0.2 + np.tile([10.0, -10.0], 1000), agree)]
    choice = choose([steady], noisy_ahead)
    assert choice.index == MAJORITY_VOTE and choice.reference is noisy_ahead[0], choice.reason
    assert choice.reason.endswith("so majority vote's labels are returned"), choice.reason
    # a reference scoring every answer as the choice does is said to be the same ("0.0000 ± 0.0000 s.e. lower" read
    # oddly; walkthrough 30)
    same = choose([_candidate("ds", 0, base, agree, score=score)], refs)
    assert "Dawid-Skene the same, answer for answer" in same.safety and "0.0000 ± 0.0000" not in same.safety
    assert "majority vote 0.0100 ± " in same.safety
    noisy = choose([_candidate("ds", 0, base, agree, score=score + 1e-14)], refs)  # (float noise: still the same)
    assert "Dawid-Skene the same, answer for answer" in noisy.safety
    # within noise of the references: the candidate stays
    assert choose([_candidate("ds", 0, base, agree, score=score + rng.normal(0, 0.05, 2000))], refs).index == 0
    assert choose([replace(collapsed)], refs).index == -1


# ------------------------------------------------------------------------------------- collapse, end to end
COLLAPSING = ["--layers", "2", "--init", "mv", "--lr", "30", "--epochs", "15", "--no-progress"]


@pytest.fixture(scope="module")
def expert_files(tmp_path_factory):
    """900 tasks of the digits_experts sample (MnistE-568 recipe): 2 layers at lr 30 collapse at epoch 2."""
    df, truth = read_sample("digits_experts", n_tasks=900)
    folder = tmp_path_factory.mktemp("experts")
    df.to_csv(folder / "ann.csv", index=False)
    truth.rename("truth").reset_index().to_csv(folder / "truth.csv", index=False)
    return folder / "ann.csv", folder / "truth.csv", df, truth


def test_cli_recovers_a_collapsing_configuration(expert_files, tmp_path, capsys):
    annotations, truth_path, df, truth = expert_files
    out = tmp_path / "labels.csv"
    code = main(["aggregate", str(annotations), "-o", str(out), "--truth", str(truth_path), *COLLAPSING])
    captured = capsys.readouterr()
    assert code == 0
    assert "collapse: mv start: collapse at epoch 2" in captured.err and "restarted from" in captured.err
    labels = pd.read_csv(out)
    assert labels["label"].nunique() == 10  # every class majority vote finds, not two
    mv = df.groupby("task")["label"].agg(lambda s: s.value_counts().sort_index().idxmax())
    # recovered (at least as accurate as majority vote here), or the fallback is said on stderr
    recovered = float(captured.out.split()[-1]) >= 100 * (mv == truth.reindex(mv.index)).mean()
    assert recovered or "FALLBACK: the labels come from" in captured.err


def test_a_restarted_training_numbers_its_epochs_as_the_models_and_says_the_rate_it_finished_with(expert_files):
    """Read 54: after a collapse restart the callbacks heard epochs 1, 2, 1, 1, 2, ... 30 (33 calls; a progress bar
    and the dashboard's count said "epoch 33 of 30") and ``lr_`` kept the rate asked for, not the one the model
    finished with. Epochs go on from the restart now, a callback hears of it first (``on_restart``), and ``lr_`` is
    the rate of the model returned."""
    from deem_core.cli.common import ProgressBar
    from deem_studio.jobs import Progress, _ProgressCallback

    _, _, df, _ = expert_files
    heard: list = []

    class Listener:
        def on_epoch_end(self, epoch, logs):
            heard.append(epoch)
            assert all(row["epoch"] == epoch for row in logs)

        def on_restart(self, epoch):
            heard.append(("restart", epoch))

    progress = Progress("r", "train")
    progress.start_phase("training DEEM", 15, unit="epoch")
    bar = ProgressBar(15, disable=True)
    model = DEEM(n_layers=2, init="mv", lr=30, epochs=15, device="cpu",
                 callbacks=[Listener(), bar, _ProgressCallback(progress, method="deem")]).fit(df)
    restarts = [h for h in heard if isinstance(h, tuple)]
    assert restarts, heard  # this configuration collapses (test_cli_recovers_a_collapsing_configuration)
    # after each restart the epochs go on from where it restarted, and the last one heard is the model's last
    for i, h in enumerate(heard):
        if isinstance(h, tuple) and i + 1 < len(heard) and not isinstance(heard[i + 1], tuple):
            assert heard[i + 1] == h[1] + 1, heard
    assert heard[-1] == model.n_epochs_ == 15 and max(h for h in heard if not isinstance(h, tuple)) <= 15, heard
    assert bar.done == 15  # (the bar and its piped lines count from it)
    snap = progress.snapshot()
    assert snap.phase_done == 15 and snap.steps_done == 15, (snap.phase_done, snap.steps_done)
    assert snap.history["epoch"].tolist() == list(range(1, 16))  # the live curve: each epoch once, of the model
    assert model.lr_ < 30 and model.lr_ == pytest.approx(model.history_["lr"].iloc[-1]), model.lr_
    assert any("restarted from" in note for note in model.selection_summary()["collapse_notes"])


def test_cli_refuses_when_nothing_healthy_is_left(expert_files, tmp_path, capsys, monkeypatch):
    annotations, _, _, _ = expert_files
    # no model can ever predict 11 of 10 classes: both starts stay collapsed and so does the fallback
    monkeypatch.setattr(deem_module, "major_classes", lambda *args, **kwargs: 11)
    code = main(["aggregate", str(annotations), "-o", str(tmp_path / "labels.csv"), *COLLAPSING[:-3],
                 "--epochs", "2", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 2
    lines = [line for line in captured.err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0] == lines[-1] and "collapsed" in errors[0] and "no healthy model" in errors[0]
    assert not (tmp_path / "labels.csv").exists()


def test_fallback_is_labelled_when_only_dawid_skene_is_healthy(expert_files, monkeypatch):
    _, _, df, truth = expert_files
    answers = iter([11, 10])  # training never healthy; the Dawid-Skene fallback is judged on the real count
    monkeypatch.setattr(deem_module, "major_classes", lambda *args, **kwargs: next(answers))
    model = DEEM(n_layers=1, init="mv", lr=0.01, epochs=2, device="cpu").fit(df)
    assert model.fallback_.startswith("Dawid-Skene") and model.n_layers_ == 0
    assert any(w.startswith("FALLBACK") for w in model.warnings_)
    assert model.results_frame().attrs["selection"]["fallback"] == model.fallback_
    assert model.run_status_ == ["fallback"]


def test_cli_layers_auto_prints_the_choice_and_every_candidate(expert_files, tmp_path, capsys):
    annotations, _, _, _ = expert_files
    out = tmp_path / "labels.csv"
    code = main(["aggregate", str(annotations), "-o", str(out), "--layers", "auto", "--epochs", "2", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0
    first = next(line for line in err.splitlines() if line.startswith("choice: "))
    reference_chosen = any(line.rstrip().endswith("chosen") and " start, " not in line for line in err.splitlines())
    # the first line says what the labels are: a trained start, or the safety rule's reference (never both)
    assert first.startswith("choice: The labels are " if reference_chosen else "choice: start: ")
    assert "held out 900 answers" in err
    assert "training the 6 candidates on the rest and scoring them took" in err
    assert re.search(r"took [\d.]+ s\. (The labels are the safety rule's reference's|The chosen candidate, as trained on "
                     r"the rest, gives the labels \(nothing is trained again\)), read from all the answers, the held-out "
                     r"ones included", err)
    for depth in (0, 1, 2):
        assert f"mv start, {counted(depth, 'layer')}" in err and f"ds start, {counted(depth, 'layer')}" in err
    assert sum(line.rstrip().endswith("chosen") for line in err.splitlines()) == 1
    assert main(["aggregate", str(annotations), "-o", str(out), "--layers", "deep"]) == 2  # a usage error
    assert "expected a number of layers or 'auto'" in capsys.readouterr().err


def test_a_group_that_cannot_be_tested_is_said_beside_the_choice():
    from conftest import sample_generator
    from deem_core.analysis.selection import selection_lines

    frame, _ = sample_generator().make_tree(n_tasks=2000, n_classes=4, layers=(1, 2, 5), seed=8001)
    model = DEEM(epochs=3, device="cpu").fit(frame)
    summary = model.selection_summary()
    assert [sorted(g) for g in summary["clusters"]["untestable"]] == [[f"g1_leaf{i}" for i in range(1, 6)]]
    lines = selection_lines(summary)
    said = [line for line in lines if "not testable" in line]
    assert len(said) == 1 and said[0].startswith("not testable: 5 workers (g1_leaf1, g1_leaf2")
    # not read as an accusation of good workers (walkthrough 56: eight independent workers, the case that went right)
    assert "Workers who agree because they are right look the same" in said[0] and "gold labels" in said[0]
    # how far the labels are from the "Majority vote" method's, measured here independently
    from deem_core.methods.registry import fit_method

    labels = model.results_frame()["label"]
    mv = fit_method("mv", frame).labels_.reindex(labels.index)
    # (a label among a tie's most answered classes does not differ: registry.with_majority)
    counts = frame.assign(label=frame["label"].astype(str)).groupby(["task", "label"]).size()
    top = counts[counts == counts.groupby(level="task").transform("max")].index
    tied = pd.Series([(task, str(label)) in top for task, label in labels.items()], index=labels.index)
    differ = int(((labels.astype(str) != mv.astype(str)) & ~tied).sum())
    # ... and those of its ties where majority vote's tie rule gave another of the most answered classes: the count
    # is the tasks where the two files differ (the ties were left out of it; walkthrough 133)
    ties = int(((labels.astype(str) != mv.astype(str)) & tied).sum())
    exact = int((labels.astype(str) != mv.astype(str)).sum())
    assert differ > 100 and exact == differ + ties
    assert f"These labels differ from majority vote's on {exact:,} of the 2,000 tasks" in said[0]
    if ties:
        assert (f"({ties:,} of them ties, where majority vote's tie rule gave another of the most answered classes): "
                f"compare the two") in said[0], said[0]
    # the default trains two candidates (majority-vote and Dawid-Skene starts, one layer); the references are not
    trained = [line for line in lines if line.startswith("held out ")]
    assert len(trained) == 1 and "training the 2 candidates on the rest" in trained[0]


def test_labels_returned_by_the_safety_rule_are_not_called_a_trained_start(tmp_path, capsys):
    from conftest import sample_generator
    from deem_core.analysis.selection import selection_lines
    from deem_studio.jobs import start_explanation

    frame, _ = sample_generator().make_tree(n_tasks=2000, n_classes=4, layers=(1, 2, 5), seed=8001)
    model = DEEM(epochs=3, device="cpu").fit(frame)
    assert model.fallback_ == "cluster-weighted Dawid-Skene (safety rule)"
    from deem_core.analysis.diagnostics.quality import worker_quality
    assert any(n.startswith("irbm_* columns are empty: the model is cluster-weighted Dawid-Skene written as a network "
                            "of no layers (copies weighted down), not") for n in worker_quality(model, frame).notes)
    said = start_explanation(model, "auto")  # the pages' sentence
    assert said.startswith("The labels are cluster-weighted Dawid-Skene's — safety rule: ")
    assert said.count("(") == 1  # one aside (the score difference), not brackets inside brackets
    # in words: which model lost to which (it read "..., ds start, 1 layer is beaten (...): ..., the best reference,
    # is returned"; walkthrough, ninth session)
    assert "safety rule: DEEM's own model, the " in said and " start with " in said and "is beaten" not in said
    assert said.endswith("so cluster-weighted Dawid-Skene's labels are returned")
    # an iRBM (no layers fixed, the registry's "irbm") is named as itself (walkthrough 101: "DEEM's own model" in
    # the iRBM's reason)
    irbm = DEEM(n_layers=0, epochs=3, device="cpu").fit(frame)
    assert irbm.fallback_ == "cluster-weighted Dawid-Skene (safety rule)"
    assert "safety rule: iRBM's own model, the " in start_explanation(irbm, "auto")
    assert "DEEM's own model" not in start_explanation(irbm, "auto")
    assert "started from" not in said and not re.search(r", \d+ layers?\b", said)
    assert any(" s. The labels are the safety rule's reference's, read from all the answers, the held-out ones "
               "included" in line
               for line in selection_lines(model.selection_summary()))
    # why it differs from every other method, in plain words (read as a failure; walkthrough 53)
    why = [line for line in selection_lines(model.selection_summary()) if line.startswith("Why these labels differ")]
    assert len(why) == 1 and "1 group of workers answers alike beyond what the tasks explain (its 5 workers: " in why[0]
    assert "counts each group as one source" in why[0] and "the model trained count every member" in why[0]  # (of iRBM too)
    # (every task the two files differ on, ties included and said; walkthrough 133)
    assert re.search(r"differ from majority vote's on [\d,]+ of the [\d,]+ tasks(, [\d,]+ of them ties, where "
                     r"majority vote's tie rule gave another of the most answered classes)?\)\.$", why[0]), why[0]
    # the evidence marks the candidate the criterion put first as replaced (no trained row was marked)
    from deem_core.analysis.selection import selection_table
    notes = selection_table(model.selection_summary()).set_index("candidate")["note"]
    replaced = notes[notes == "ranked first; replaced by the safety rule"]
    assert len(replaced) == 1 and replaced.index[0].endswith(("layer", "layers"))
    assert (notes == "chosen").sum() == 1 and notes[notes == "chosen"].index[0] == "cluster-weighted Dawid-Skene"
    path = tmp_path / "two_teams.csv"
    frame.to_csv(path, index=False)
    assert main(["aggregate", str(path), "-o", str(tmp_path / "labels.csv"), "--epochs", "3", "--no-progress"]) == 0
    first = [line for line in capsys.readouterr().err.splitlines() if line.startswith("DEEM: ")]
    assert len(first) == 1 and "the labels come from cluster-weighted Dawid-Skene, returned by the safety rule" in first[0]
    assert "0 epochs" not in first[0]


def test_an_untrained_fallback_has_no_seed_agreement_and_majority_vote_no_free_energy(tmp_path, monkeypatch):
    # a fallback's copies per seed agree by construction: its table said "seed agreement 1" for labels no seed was
    # trained for, and the majority-vote network's free energy for a method that has none (walkthrough, ninth
    # session); a trained model keeps both
    from conftest import sample_generator

    frame, _ = sample_generator().make_tree(n_tasks=2000, n_classes=4, layers=(1, 2, 5), seed=8001)
    model = DEEM(epochs=3, n_seeds=2, device="cpu").fit(frame)
    assert model.fallback_ == "cluster-weighted Dawid-Skene (safety rule)"
    table = model.results_frame()
    assert table["seed_agreement"].isna().all()
    assert np.isfinite(table["free_energy"]).all() and table["free_energy"].std() > 0  # that model's energy
    path = tmp_path / "two_teams.csv"
    frame.to_csv(path, index=False)
    assert main(["aggregate", str(path), "-o", str(tmp_path / "labels.csv"), "--epochs", "3", "--seeds", "2",
                 "--no-progress"]) == 0
    written = pd.read_csv(tmp_path / "labels.csv")
    assert written["seed_agreement"].isna().all() and written["free_energy"].notna().all()

    real_choose = deem_module.choose

    def majority_vote_wins(*args, **kwargs):
        choice = real_choose(*args, **kwargs)
        choice.index, choice.reference = MAJORITY_VOTE, None
        return choice

    monkeypatch.setattr(deem_module, "choose", majority_vote_wins)
    model = DEEM(epochs=3, n_seeds=2, device="cpu").fit(frame)
    assert model.fallback_ == "majority vote (safety rule)"
    table = model.results_frame()
    assert table["seed_agreement"].isna().all() and table["free_energy"].isna().all()
    # its labels and probabilities are the Majority vote method's (ties broken alike): the vote shares, not the
    # softmax of the counts (0.84 where majority vote said 0.5; read 54)
    from deem_core.methods.registry import fit_method
    mv = fit_method("mv", frame).results_frame()
    assert (table["label"] == mv["label"].reindex(table.index)).all()
    shares = mv[[c for c in mv.columns if c.startswith("p_")]].reindex(table.index)
    ours = table[shares.columns]
    assert np.allclose(ours.to_numpy(), shares.to_numpy(), atol=1e-9), (ours.head(), shares.head())
    assert np.allclose(table["confidence"], mv["confidence"].reindex(table.index), atol=1e-9)
    # the worker table's note names what was returned, and weights nothing down where nothing was (read 54)
    from deem_core.analysis.diagnostics.quality import worker_quality
    said = [n for n in worker_quality(model, frame).notes if n.startswith("irbm_* columns are empty")]
    assert said == ["irbm_* columns are empty: the model is majority vote written as a network of no layers, not a "
                    "trained iRBM, so Lemma 1 does not read worker accuracies from it"], said
    monkeypatch.undo()
    trained = DEEM(init="ds", epochs=3, n_seeds=2, device="cpu").fit(frame)  # the start fixed: no safety rule
    assert trained.fallback_ is None
    assert trained.results_frame()[["seed_agreement", "free_energy"]].notna().all().all()


def test_worker_accuracy_of_the_cluster_weighted_fallback_is_the_fitted_one():
    # the iRBM that holds the cluster-weighted Dawid-Skene tempers a cluster member's matrix by 1 / cluster size;
    # the worker table must show the fitted matrices (a walkthrough saw 0.31-0.34 for workers agreeing 70%)
    from conftest import sample_generator
    from deem_core.analysis.agreement import worker_table
    from deem_core.data.annotations import AnnotationSet

    frame, _ = sample_generator().make_tree(n_tasks=2000, n_classes=4, layers=(1, 2, 5), seed=8001)
    model = DEEM(epochs=3, device="cpu").fit(frame)
    assert model.fallback_ == "cluster-weighted Dawid-Skene (safety rule)"
    from deem_core.analysis.diagnostics.quality import worker_quality
    assert any(n.startswith("irbm_* columns are empty: the model is cluster-weighted Dawid-Skene written as a network "
                            "of no layers (copies weighted down), not") for n in worker_quality(model, frame).notes)
    # what the criterion ranked first is said under the rule's words (they replaced it; walkthrough 64)
    from deem_core.analysis.selection import selection_lines
    summary = model.selection_summary()
    first = next(c for c in summary["candidates"] if c.get("ranked_first"))
    said = [line for line in selection_lines(summary) if line.startswith("Before the safety rule, the criterion ")]
    words = {"ds": "Dawid-Skene", "mv": "majority-vote"}[first["start"]]
    assert len(said) == 1 and f"ranked first the {words} start with {first['layers']} layer" in said[0], said
    assert "log-likelihood" in said[0]
    data = AnnotationSet.from_long(frame)
    codes = data.classes.get_indexer(model.results_frame()["label"].reindex(data.tasks))
    table = worker_table(data, codes, model).set_index("worker")
    gap = (table["estimated_accuracy"] - table["agreement_with_aggregate"]).abs()
    assert gap.max() < 0.1, gap.sort_values().tail(3)
    assert np.allclose(model.confusion_matrices()["g2_leaf1"].to_numpy(), model.dawid_skene_.confusion[5])


def test_the_sentence_says_whether_the_layers_were_chosen_too():
    from conftest import read_sample
    from deem_studio.jobs import start_explanation

    frame, _ = read_sample("condind", n_tasks=600)
    fixed = DEEM(epochs=2, device="cpu").fit(frame)
    chosen = DEEM(n_layers="auto", epochs=2, device="cpu").fit(frame)
    assert fixed.fallback_ is None and chosen.fallback_ is None
    assert ", 1 layer — start chosen: " in start_explanation(fixed, "auto")
    assert f", {counted(chosen.n_layers_, 'layer')} — start and layers chosen: " in start_explanation(chosen, "auto")


def test_cli_diagnose_says_what_model_it_diagnoses_and_a_pipe_gets_plain_progress_lines(tmp_path, capsys):
    # `deem diagnose --layers 1` diagnosed the safety rule's 0-layer model without a word, and the progress bar's
    # carriage returns made a piped log one line of kilobytes (walkthrough, tenth session)
    from conftest import sample_generator

    frame, _ = sample_generator().make_tree(n_tasks=2000, n_classes=4, layers=(1, 2, 5), seed=8001)
    path = tmp_path / "two_teams.csv"
    frame.to_csv(path, index=False)
    assert main(["diagnose", str(path), "-o", str(tmp_path / "diag"), "--layers", "1", "--epochs", "3"]) == 0
    err = capsys.readouterr().err  # (captured: not a terminal)
    assert "DEEM: lr 0.01; the labels come from cluster-weighted Dawid-Skene, returned by the safety rule" in err
    assert "the diagnostics are of the model as fitted: 0 layers, not the 1 asked for" in err
    # and that they are of the reference the safety rule returned (on stderr and in the report)
    lead = ("DEEM's labels come from cluster-weighted Dawid-Skene (the safety rule), and so do these diagnostics: the "
            "model diagnosed is cluster-weighted Dawid-Skene written as a network of no layers, not a trained DEEM.")
    assert lead in err
    assert ("classes for the mutual information: DEEM predictions (the labels of cluster-weighted Dawid-Skene, "
            "returned by the safety rule)") in err
    import html
    assert f"<p><b>{html.escape(lead)}</b></p>" in (tmp_path / "diag" / "report.html").read_text()
    assert "\r" not in err
    lines = [line for line in err.splitlines() if ": epoch " in line]
    assert lines == [lines[-1]] and lines[-1].startswith("DEEM: epoch 3 of 3 (100%), ")  # a short run: the end only
    # with the depth chosen the depths train in turn: said (it read "epoch 300 of 300" for 100 epochs; walkthrough 56)
    assert main(["aggregate", str(path), "-o", str(tmp_path / "auto.csv"), "--layers", "auto", "--epochs", "2",
                 "--device", "cpu"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if ": epoch " in line]
    assert lines[-1].startswith("DEEM (3 depths in turn, 2 epochs each): epoch 6 of 6 (100%), "), lines
    # a Label Studio file of the same labels names the fallback in its model version (walkthrough, tenth session)
    assert main(["aggregate", str(path), "-o", str(tmp_path / "ls.json"), "--output-format", "label-studio",
                 "--epochs", "3", "--no-progress"]) == 0
    import json
    versions = {p["model_version"] for item in json.loads((tmp_path / "ls.json").read_text())
                for p in item["predictions"]}
    version = versions.pop()
    assert not versions and version.endswith(", labels from cluster-weighted Dawid-Skene (safety rule)")
    # in the words of the dashboard's file (one read "DEEM (layers 1, ...", the other "DEEM Studio deem (n_layers 1,
    # ..."; walkthrough 112)
    from deem_studio.wording import model_version

    assert version.startswith("DEEM Studio DEEM (layers 1 → none, epochs 3, lr ")
    assert model_version("deem", {"n_layers": 1, "epochs": 3}, {}, "cluster-weighted Dawid-Skene (safety rule)",
                         "r1").startswith("DEEM Studio DEEM (layers 1 → none, epochs 3), labels from")


def test_a_kept_choice_says_the_safety_rules_margin_and_each_references_gain():
    """The table showed a reference's predictive score above the kept choice's, and the page said only that "a
    reference clearly above the choice replaces it"; "leave-one-worker-out" stood beside "held out 199 answers"
    (walkthrough 31). The kept choice now says the rule's margin and where each reference stands."""
    from deem_core.analysis.selection import selection_lines
    from deem_core.methods.choose import SAFETY_Z

    frame, _ = read_sample("condind")
    model = DEEM(epochs=3, device="cpu").fit(frame[frame["task"] < 600])
    summary = model.selection_summary()
    assert model.fallback_ is None and summary["clusters"]["clusters"] == []
    refs = [row for row in summary["candidates"] if row["heldout_loglik"] != row["heldout_loglik"]]
    assert refs  # majority vote (and the cluster-weighted form)
    said = summary["safety"]
    assert said.startswith(f"safety rule: a reference replaces the choice when its predictive score is higher by "
                           f"more than {SAFETY_Z:g} paired standard errors; kept (")
    for row in refs:  # each reference's gain over the choice, beside its standard error, higher or lower in words
        # ("majority vote +0.0216 ± 0.0153 s.e." was read as majority vote below the kept choice; walkthrough 55)
        found = re.search(rf"{re.escape(row['start'])} (\d\.\d{{4}}) ± (\d\.\d{{4}}) s\.e\. (higher, under the "
                          rf"(\d\.\d{{4}}) it must exceed|lower)[;)]", said)
        assert found, (row["start"], said)
        higher = found.group(3).startswith("higher")
        chosen = next(r for r in summary["candidates"] if r["chosen"])
        assert higher == (row["lco_score"] > chosen["lco_score"]), (row, chosen, said)
        if higher:
            assert float(found.group(4)) == pytest.approx(SAFETY_Z * float(found.group(2)), abs=2e-4)
    lines = selection_lines(summary)
    assert said in lines
    assert "dependence clusters: none found (so the leave-cluster-out scores equal the held-out ones)" in lines
    assert not any("leave-one-worker-out" in line for line in lines)


def test_the_evidence_caption_says_whether_the_leave_cluster_out_column_left_a_cluster_out():
    # walkthrough 36: "with no dependence cluster found it equals the held-out log-lik" stood under a line naming one
    import pandas as pd

    from deem_core.analysis.selection import evidence_caption

    columns = ["candidate", "held-out log-lik", "leave-cluster-out", "predictive score", "agreement", "note"]
    none = pd.DataFrame([["mv start, 1 layer(s)", -0.5, -0.5, -0.4, 0.7, "chosen"],
                         ["majority vote", np.nan, np.nan, -0.45, 0.68, ""]], columns=columns)
    found = none.assign(**{"leave-cluster-out": [-0.62, np.nan]})
    assert "(no dependence cluster was found, so it equals the held-out log-lik)" in evidence_caption(none)
    said = evidence_caption(found)
    assert "(it predicts each held-out answer without the answers of the worker's dependence cluster)" in said
    assert "equals the held-out log-lik" not in said


def test_a_set_too_small_to_choose_on_says_how_many_answers_would_be_held_out():
    # "too few answers to hold out 30 for choosing" read wrong beside 180 answers (walkthrough 52)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame([(f"t{t}", f"w{w}", int(rng.integers(0, 2))) for t in range(60) for w in range(3)],
                         columns=["task", "worker", "label"])
    model = DEEM(epochs=2, seed=0, device="cpu").fit(frame)
    # and what choosing would need, and what follows from not choosing (walkthrough 56)
    assert model.selection_summary()["reason"] == (
        "holding out 10% of the answers (at most one a task) gives 18 here (180 answers), and choosing needs 30 "
        "(about 295 answers or more, and 30 tasks or more with two answers): nothing is chosen or checked against "
        "majority vote, and the "
        "Dawid-Skene start and 1 layer are used; compare the labels with majority vote's before relying on them")
    from deem_studio.jobs import start_explanation
    said = start_explanation(model, "auto")  # (it read "start chosen: ..." before that; walkthrough 56)
    assert said.startswith("started from Dawid-Skene") and "chosen:" not in said and "— holding out 10%" in said
    assert model.init_ == "ds"
    # a start the user set is kept and named (it said "the Dawid-Skene start" beside init="mv")
    fixed = DEEM(epochs=2, seed=0, device="cpu", init="mv", n_layers="auto").fit(frame)
    assert fixed.init_ == "mv" and fixed.n_layers_ == 1
    assert "and the majority-vote start and 1 layer are used" in fixed.selection_summary()["reason"]
    # 100 tasks x 4 answers hold out 40: enough, and the start is chosen
    wider = pd.DataFrame([(f"t{t}", f"w{w}", int(rng.integers(0, 2))) for t in range(100) for w in range(4)],
                         columns=["task", "worker", "label"])
    chosen = DEEM(epochs=2, seed=0, device="cpu").fit(wider)
    assert chosen.selection_summary()["heldout_answers"] == 40


def _tied_set(seed: int = 0) -> tuple:
    """400 tasks, 4 workers, classes "a" < "b" < "c" of which "c" is answered first: many two-two ties."""
    import pandas as pd  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    truth = rng.choice(["a", "b", "c"], size=400)
    rows = [(0, "w0", "c")]
    for t in range(400):
        for w in range(4):
            if t == 0 and w == 0:
                continue
            rows.append((t, f"w{w}", truth[t] if rng.random() < 0.6 else rng.choice(["a", "b", "c"])))
    frame = pd.DataFrame(rows, columns=["task", "worker", "label"])
    return AnnotationSet.from_long(frame), pd.Series(truth, index=pd.RangeIndex(400, name="task"))


def test_the_engine_breaks_majority_vote_ties_as_the_majority_vote_method():
    """Walkthrough 62: the gold path's safety rule read majority vote with ties towards the smallest class, the
    Majority vote method (crowd-kit's order: the class answered first) otherwise; they differed on every tied task,
    and a returned majority vote labelled those tasks unlike the method's column beside it."""
    from deem_core.methods.choose import majority_vote_network  # noqa: PLC0415
    from deem_core.methods.dawid_skene import crowdkit_majority_vote, tie_ranks  # noqa: PLC0415
    from deem_core.methods.registry import fit_method  # noqa: PLC0415
    from deem_core.model.engine import task_outputs  # noqa: PLC0415

    data, _ = _tied_set()
    method = fit_method("mv", data).labels_
    ours = pd_series(data, crowdkit_majority_vote(data))
    assert (ours == method.reindex(ours.index)).all()
    assert (data.majority_vote() != crowdkit_majority_vote(data)).sum() > 20  # ties to "a" there, to "c" here
    network = majority_vote_network(1, data.n_workers, data.n_classes, ties=tie_ranks(data))
    labels = task_outputs(network, data)[1].argmax(-1)[0].numpy()
    assert (labels == crowdkit_majority_vote(data)).all()


def pd_series(data: AnnotationSet, codes: np.ndarray):
    import pandas as pd  # noqa: PLC0415

    return pd.Series(data.classes.take(codes), index=pd.Index(data.tasks, name="task"))


def test_the_gold_safety_rule_reads_the_majority_vote_method_accuracy():
    """Walkthrough 62: "majority vote 81.7%" on the safety rule's gold tasks, where the Majority vote method's labels
    were right on 83.3% of them (the ties broken otherwise)."""
    from deem_core import DEEM  # noqa: PLC0415
    from deem_core.methods.registry import fit_method  # noqa: PLC0415

    data, truth = _tied_set()
    gold = truth.iloc[::2]
    model = DEEM(epochs=2, seed=0).fit(data, gold=gold)  # gold weight 0: every gold task scores
    said = model.selection_summary().get("safety") or model.selection_summary().get("reason")
    shown = float(re.search(r"majority vote (\d+\.\d)%", said).group(1))
    labels = fit_method("mv", data).labels_.reindex(gold.index)
    assert shown == round(100 * float((labels == gold).mean()), 1), said
    # whose side each count is from, and the test's one side (walkthrough 63: "better on 0, worse on 3, p = 1")
    assert re.search(r"majority vote \d+\.\d% \(right where the model is wrong on \d+ tasks?, wrong where it is right "
                     r"on \d+; one-sided sign test p = [\d.e-]+\)", said), said


def test_a_cluster_line_gives_its_strength_and_a_gold_run_no_scores_it_lacks():
    """Walkthrough 62: a cluster found at z 3.4 over a threshold of 3.34 read as sure as one at z 22.5 (the lines gave
    neither), and a gold-label run, which holds out no answers, read "none found (so the leave-cluster-out scores equal
    the held-out ones)" of scores it does not have."""
    from deem_core.analysis.selection import selection_lines  # noqa: PLC0415

    clusters = {"clusters": [{"workers": ["a", "b", "c"], "excess_agreement": 0.591, "z": 22.5},
                             {"workers": ["d", "e"], "excess_agreement": 0.256, "z": 3.4}],
                "z_threshold": 3.34, "tests": 5, "untestable": []}
    lines = selection_lines({"start": "ds", "layers": 1, "heldout_answers": 468, "clusters": clusters,
                             "candidates": []})
    assert "  3 workers: a, b, c (agree +0.591 beyond what the others explain; z 22.5, where a group needs z above 3.34)" in lines
    assert "  2 workers: d, e (agree +0.256 beyond what the others explain; z 3.4, where a group needs z above 3.34)" in lines
    none = {"clusters": [], "z_threshold": 3.34, "tests": 3, "untestable": []}
    gold = selection_lines({"start": "ds", "layers": 1, "heldout_answers": None, "clusters": none, "candidates": []})
    assert "dependence clusters: none found" in gold and not any("leave-cluster-out" in line for line in gold)


def copying_pair_crowd(seed: int = 0, n_tasks: int = 1000) -> tuple[pd.DataFrame, np.ndarray]:
    """Walkthrough 84's shape: 40 workers of 5 classes, 4 answers a task, three spammers, and four workers w36-w39 of
    whom two answer half the tasks, the second copying the first 90% of the time. (answers, truth codes by task)"""
    rng = np.random.default_rng(seed)
    k = 5
    truth = rng.choice(k, size=n_tasks, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    accuracy = np.concatenate([rng.uniform(0.55, 0.9, 33), [0.2] * 3, rng.uniform(0.6, 0.75, 4)])
    rows = []
    for task in range(n_tasks):
        workers = (list(rng.choice([36, 37, 38, 39], 2, replace=False)) + list(rng.choice(36, 2, replace=False))
                   if rng.random() < 0.5 else list(rng.choice(36, 4, replace=False)))
        shared = None
        for worker in workers:
            wrong = [c for c in range(k) if c != truth[task]]
            answer = (int(rng.integers(k)) if 33 <= worker <= 35 else
                      int(truth[task]) if rng.random() < accuracy[worker] else int(rng.choice(wrong)))
            if worker >= 36:
                if shared is None:
                    shared = answer
                elif rng.random() < 0.9:
                    answer = shared
            rows.append((task, f"w{worker:02d}", f"c{answer}"))
    return pd.DataFrame(rows, columns=["task", "worker", "label"]), truth


def test_labels_that_follow_a_cluster_the_choice_found_are_said_where_they_are_taken(tmp_path, capsys, monkeypatch):
    """Walkthrough 84: on a crowd set with a copying pair of four found at z 7.0, the default DEEM's labels agreed
    with the group on 95% of its answers (the others 62%) and were 2.9 points below majority vote's; the safety rule
    kept them (the cluster-weighted Dawid-Skene ahead within the noise) and only Diagnostics said they follow the
    group. The fit now says so: ``selection_summary_["followed"]``, ``warnings_``, a DependenceWarning from Python,
    a warning on the command line. (The rule's step 5 now returns the reference on this set: turned off here, as
    where the reference does not lead, to read the warning of a kept model.)"""
    from deem_core.analysis.selection import FOLLOWED, followed_text  # noqa: PLC0415
    from deem_core.methods import choose as choose_module  # noqa: PLC0415
    from deem_core.methods.deem import DependenceWarning  # noqa: PLC0415

    monkeypatch.setattr(choose_module, "FOLLOWED_ANY_LEAD", False)

    frame, truth = copying_pair_crowd(0)
    with pytest.warns(DependenceWarning, match=f"^{FOLLOWED}: w36, w37, w38, w39 agree with them on 9"):
        model = DEEM().fit(frame)
    assert model.fallback_ is None
    followed = model.selection_summary_["followed"]
    assert [group["workers"] for group in followed] == [["w36", "w37", "w38", "w39"]]
    # the figures, counted here from the labels
    labels = model.results_frame()["label"]
    agree = frame["label"].to_numpy() == labels.reindex(frame["task"]).to_numpy()
    members = frame["worker"].isin(["w36", "w37", "w38", "w39"]).to_numpy()
    assert followed[0]["agreement"] == pytest.approx(agree[members].mean())
    assert followed[0]["others"] == pytest.approx(agree[~members].mean())
    said = followed_text(model.selection_summary_)
    assert said in model.warnings_ and said.endswith("The safety rule kept them: the answers it scores did not tell "
                                                     "DEEM's model from the cluster-weighted Dawid-Skene beyond their "
                                                     "noise.")
    # (these labels are below majority vote's here: what the warning is for)
    assert (labels.str[1:].astype(int).sort_index().to_numpy() == truth).mean() < 0.8
    path = tmp_path / "crowd.csv"
    frame.to_csv(path, index=False)
    assert main(["aggregate", str(path), "-o", str(tmp_path / "out.csv"), "--no-progress"]) == 0
    assert f"warning: {said} (deem aggregate --method cwds)" in capsys.readouterr().err
    # a model that does not follow a cluster says nothing of it: none found, nothing said
    calm = DEEM().fit(frame[~frame["worker"].isin(["w37", "w38", "w39"])])
    assert "followed" not in calm.selection_summary_ and not followed_text(calm.selection_summary_)
    assert followed_text({"followed": [{"workers": ["a"], "agreement": "x", "others": 0.5}]}) == ""
    assert followed_text({"followed": "junk"}) == "" and followed_text({}) == ""
    # how the rule kept them, on the gold path and on the answers (the diff's read: the held-out answers named for both)
    from deem_core.analysis.selection import safety_kept_text  # noqa: PLC0415

    assert safety_kept_text({"safety": "safety rule (gold labels): on the 50 gold task(s) ..."}) == (
        "the safety rule compared them with the cluster-weighted Dawid-Skene on the gold tasks and kept them")
    assert safety_kept_text(model.selection_summary_).startswith("the safety rule kept them: the answers it scores")
    assert safety_kept_text({}) == ""
    # names cut (attack round 45: eight worker names of 10,000 characters made an 80,326-character warning)
    long = followed_text({"followed": [{"workers": [f"{i}" + "x" * 10_000 for i in range(8)], "agreement": 0.97,
                                        "others": 0.6}]})
    assert 500 < len(long) < 1000 and "0xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx..." in long


def test_choose_returns_the_cluster_weighted_reference_on_any_lead_where_the_labels_follow_a_cluster():
    """Step 5 of the rule: a lead of the cluster-weighted Dawid-Skene on the training answers under the 2 s.e. the
    safety rule asks replaces a choice whose labels follow a found cluster, and only then."""
    from deem_core.analysis.selection import FOLLOWED_KEPT, safety_kept_text  # noqa: PLC0415

    rng = np.random.default_rng(5)
    held = rng.normal(-1.0, 0.3, 300)
    agree = (rng.random(300) < 0.7).astype(float)
    task = np.repeat(np.arange(1000), 3)
    pairs = rng.normal(-1.0, 0.3, 3000)
    noise = rng.normal(0.0, 0.3, 3000)

    def references(lead: float) -> list:
        return [Reference("mv", "majority vote", held - 0.2, agree, pair_score=pairs - 0.2, pair_task=task),
                Reference("cwds", "cluster-weighted Dawid-Skene", held, agree, pair_score=pairs + lead + noise,
                          pair_task=task)]

    fit = _candidate("ds", 1, held, agree, score=held)
    fit.lco_loglik = (held - 0.1)[None, :]  # clusters found
    fit.pair_score = pairs[None, :]
    group = [(["w36", "w37"], 0.97, 0.62)]
    asked = []

    def follows(index: int) -> list:
        asked.append(index)
        return group

    small = references(0.004)  # ahead by about one standard error (0.0075): under the safety rule's two
    assert choose([fit], small).index == 0 and choose([fit], small, follows=lambda i: []).index == 0
    choice = choose([fit], small, follows=follows)
    assert asked == [0] and choice.index == CLUSTER_WEIGHTED and choice.reference.key == "cwds"
    assert choice.reason.startswith("safety rule (labels following a cluster): the labels of DEEM's own model, the "
                                    "Dawid-Skene start with 1 layer, follow a dependence cluster (w36, w37 agree with "
                                    "them on 97% of their answers, the other workers on 62%)")
    assert "any lead counts where the labels follow a cluster, 2 s.e. elsewhere" in choice.reason
    assert choice.table.loc[choice.table["chosen"], "start"].tolist() == ["cluster-weighted Dawid-Skene"]
    behind = references(-0.004)  # the reference behind: the followed choice is kept, and the check says why
    kept = choose([fit], behind, follows=follows)
    assert kept.index == 0 and FOLLOWED_KEPT in kept.safety and "s.e. nats per answer lower" in kept.safety
    assert safety_kept_text({"safety": kept.safety}).startswith(
        "the safety rule kept them: the cluster-weighted Dawid-Skene predicts the training answers, each from the "
        "other clusters' answers, no better than DEEM's model")
    assert FOLLOWED_KEPT not in choose([fit], behind).safety  # (not read: not said)


def test_the_default_fit_returns_the_cluster_weighted_dawid_skene_where_its_labels_follow_a_found_group(monkeypatch):
    """Walkthroughs 84-86: DEEM's kept labels followed a copying group of four among 40 workers (members 96-98%,
    others 61-64%) and were 1.6 to 5.1 points below majority vote, the cluster-weighted Dawid-Skene ahead on the
    training answers by less than the safety rule's 2 s.e. On this draw of that shape: 79.4% kept, 85.5% returned
    (majority vote 83.5%)."""
    from deem_core.methods import choose as choose_module  # noqa: PLC0415
    from deem_core.methods.registry import fit_method  # noqa: PLC0415

    frame, truth = copying_pair_crowd(2)

    def accuracy(model) -> float:
        return float((model.labels_.sort_index().str[1:].astype(int).to_numpy() == truth).mean())

    mv = float((fit_method("mv", frame).labels_.sort_index().str[1:].astype(int).to_numpy() == truth).mean())
    model = DEEM().fit(frame)
    assert model.fallback_ == "cluster-weighted Dawid-Skene (safety rule)"
    assert model.selection_summary_["reason"].startswith("safety rule (labels following a cluster): the labels of "
                                                         "DEEM's own model")
    assert "followed" not in model.selection_summary_  # (the returned labels do not follow it: nothing to warn of)
    assert accuracy(model) > mv + 0.01
    monkeypatch.setattr(choose_module, "FOLLOWED_ANY_LEAD", False)
    kept = DEEM().fit(frame)
    assert kept.fallback_ is None and kept.selection_summary_.get("followed")
    assert accuracy(kept) < mv - 0.02


def test_a_cancel_during_the_choice_scores_nothing_and_keeps_the_runs_trained_so_far(monkeypatch):
    """Attack round 51: after a cancel the candidates trained by then were still scored, K completions of every held-out
    answer, which waited for no cancel: 154 s and 373 s after a cancel at 5 s on 314 and 300 classes. A stop ends the
    choice at once; the Dawid-Skene start's runs as trained by then give the labels, and the reason says so."""
    import threading

    from deem_core.analysis import selection as selection_module
    from deem_core.methods import choose as choose_module

    from conftest import sample_generator

    frame, _ = sample_generator().make_tree(n_tasks=400, n_classes=3, layers=(1, 2, 5), seed=8002)
    stop = threading.Event()

    def cancel_at_epoch_2(epoch, logs):
        if epoch >= 2:
            stop.set()
        return False

    scored = []
    real = selection_module.heldout_log_probs
    monkeypatch.setattr(choose_module, "heldout_log_probs",
                        lambda *a, **k: scored.append(1) or real(*a, **k))
    model = DEEM(epochs=50, device="cpu", callbacks=[cancel_at_epoch_2]).fit(frame, stop_event=stop)
    assert not scored  # (no candidate scored after the stop)
    assert set(model.run_status_) == {"cancelled"}
    summary = model.selection_summary()
    assert summary["reason"].startswith("stopped before the candidates were scored: the Dawid-Skene start with 1 "
                                        "layer, as trained by then, gives the labels")
    assert model.init_ == "ds" and model.n_layers_ == 1
    assert len(model.predict()) == frame["task"].nunique()


def test_held_out_scoring_reads_its_stop_between_batches_sized_by_their_work(monkeypatch):
    """Attack round 51: 80 held-out answers of 8 workers x 314 classes were one batch of 25,000 completed inputs that
    ran 50 s past a probe's time limit. Batches are sized by their work and the stop is read between them; the
    values do not depend on the batches."""
    import threading

    from deem_core.analysis import selection as module

    rng = np.random.default_rng(4)
    labels = rng.integers(0, 4, size=(60, 5))
    net = _random_network(1, 5, 4, seed=2)
    train, held = hold_out_answers(AnnotationSet.from_dense(labels), share=0.5, seed=1)
    assert len(held) > 10
    whole = heldout_log_probs(net, train, held)
    calls = []
    real = module.completions
    monkeypatch.setattr(module, "completions", lambda train, part: calls.append(len(part)) or real(train, part))
    monkeypatch.setattr(module, "SCORING_WORK_PER_BATCH", (5 * 4) ** 2 * 4 * 3)  # 3 held-out answers a batch
    small = heldout_log_probs(net, train, held)
    assert max(calls) == 3 and len(calls) == -(-len(held) // 3)
    assert torch.allclose(small, whole, atol=1e-6)
    stop = threading.Event()
    stop.set()
    with pytest.raises(module.ScoringStopped):
        heldout_log_probs(net, train, held, stop=stop)


def test_sparse_path_scoring_batches_follow_each_tasks_answers(monkeypatch):
    """Read 51: on the sparse path a batch was 2,048 held-out answers whatever their work: at 100 classes a stop set
    at 1 s was still unread at 400 s. A batch's work there is runs x K completions x (the task's answers x K)^2: a
    task with many answers makes its batch small, the values do not depend on the batches, a stop is read between
    them."""
    import threading

    from deem_core.analysis import selection as module
    from deem_core.model.engine import answers_of
    from deem_core.model.sparse import cooccurring_pairs

    rng = np.random.default_rng(5)
    d, k = 12, 3
    labels = np.full((90, d), -1)
    for t in range(90):  # three answers a task, and every tenth task answered by all 12 workers
        labels[t, rng.choice(d, d if t % 10 == 0 else 3, replace=False)] = rng.integers(k, size=d if t % 10 == 0 else 3)
    data = AnnotationSet.from_dense(labels)
    train, held = hold_out_answers(data, share=0.5, seed=1)
    torch.manual_seed(3)
    net = DEEMNetwork(2, d, k, 1, layout="blocks", pair_keys=cooccurring_pairs(answers_of(data, torch.device("cpu"))))
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    whole = heldout_log_probs(net, train, held)
    calls = []
    real = module.completions
    monkeypatch.setattr(module, "completions", lambda train, part: calls.append(part.task.copy()) or real(train, part))
    unit = 2 * k ** 3  # runs x K completions x K^2
    monkeypatch.setattr(module, "SPARSE_SCORING_WORK_PER_BATCH", unit * 3 ** 2 * 3)  # three tasks of 3 answers
    small = heldout_log_probs(net, train, held)
    assert torch.allclose(small, whole, atol=1e-5)
    assert np.array_equal(np.concatenate(calls), held.task)
    width = train.answers_per_task()[held.task] + 1
    for part in calls:  # each batch within the bound, or one task alone
        cost = unit * float((width[np.isin(held.task, part)] ** 2).sum())
        assert len(part) == 1 or cost <= unit * 3 ** 2 * 3, (part, cost)
    wide = [part for part in calls if (train.answers_per_task()[part] + 1).max() >= 10]
    assert wide and all(len(part) == 1 for part in wide) and max(len(part) for part in calls) == 3
    stop = threading.Event()
    stop.set()
    with pytest.raises(module.ScoringStopped):
        heldout_log_probs(net, train, held, stop=stop)


def test_a_stop_after_a_depth_was_scored_says_the_safety_rule_did_not_check_and_a_late_stop_is_a_cancel():
    """Read 50: stopped after depth 0 was scored, the choice among the depths scored ran without the references and
    read as a normal choice; stopped during scoring after every epoch had run, the runs and the job read "finished"."""
    import threading

    from conftest import sample_generator

    frame, _ = sample_generator().make_tree(n_tasks=400, n_classes=3, layers=(1, 2, 5), seed=8002)
    stop = threading.Event()

    def stop_in_depth_1(epoch, logs):  # (depths train in turn on a CPU; epochs counted across them)
        if epoch >= 5:
            stop.set()
        return False

    model = DEEM(n_layers="auto", epochs=3, device="cpu", callbacks=[stop_in_depth_1]).fit(frame, stop_event=stop)
    reason = model.selection_summary()["reason"]
    assert reason.endswith("; stopped before the safety rule's check: not compared with majority vote or the "
                           "cluster-weighted Dawid-Skene"), reason
    # every epoch run, then the stop: the runs are a cancelled job's, not finished ones
    late = threading.Event()

    def stop_at_the_last_epoch(epoch, logs):
        if epoch >= 3:
            late.set()
        return False

    model = DEEM(epochs=3, device="cpu", callbacks=[stop_at_the_last_epoch]).fit(frame, stop_event=late)
    assert model.selection_summary()["reason"].startswith("stopped before the candidates were scored")
    assert set(model.run_status_) == {"cancelled"}
    # with gold labels training it, a stop before their check says so (it checked on the clusters found by then)
    frame, truth = sample_generator().make_tree(n_tasks=400, n_classes=3, layers=(1, 2, 5), seed=8002)
    late.clear()
    model = DEEM(epochs=3, device="cpu", supervised_weight=1.0, callbacks=[stop_at_the_last_epoch]).fit(
        frame, gold=truth.iloc[:100], stop_event=late)
    assert any(w.startswith("stopped before the gold-label check") for w in model.warnings_), model.warnings_
    assert set(model.run_status_) == {"cancelled"}
    # a stop that comes while the check's search for clusters runs (read 51: the check went on with the clusters
    # found by then, fitted a reference on them and could return it, the runs "finished", the stop unsaid)
    during = threading.Event()
    real = deem_module.find_dependence_clusters
    searched = []

    def stopped_while_searching(*args, **kwargs):
        during.set()
        found = real(*args, **kwargs)
        searched.append(found.stopped)
        return found

    real_fit = deem_module.fit_dawid_skene

    def no_fit_after_the_search(*args, **kwargs):
        assert not searched, "the check went on with a stopped search's clusters"
        return real_fit(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(deem_module, "find_dependence_clusters", stopped_while_searching)
        patch.setattr(deem_module, "fit_dawid_skene", no_fit_after_the_search)
        model = DEEM(epochs=3, device="cpu", supervised_weight=1.0).fit(frame, gold=truth.iloc[:100],
                                                                        stop_event=during)
    assert searched == [True] and model.fallback_ is None
    assert any(w.startswith("stopped before the gold-label check") for w in model.warnings_), model.warnings_
    assert set(model.run_status_) == {"cancelled"}
    # ... and one whose search returns before its tests read the stop (three workers: none to test; read 52: the
    # check went on, fitted and compared, its runs "finished")
    few = frame[frame["worker"].isin(sorted(frame["worker"].unique())[:3])]
    during.clear()
    searched.clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(deem_module, "find_dependence_clusters", stopped_while_searching)
        patch.setattr(deem_module, "fit_dawid_skene", no_fit_after_the_search)
        model = DEEM(epochs=3, device="cpu", supervised_weight=1.0).fit(few, gold=truth.iloc[:100],
                                                                        stop_event=during)
    assert searched == [False] and model.fallback_ is None  # (the search itself says nothing of the stop)
    assert any(w.startswith("stopped before the gold-label check") for w in model.warnings_), model.warnings_
    assert set(model.run_status_) == {"cancelled"}


def test_the_dead_units_note_names_the_classes_left_out_and_what_they_may_be():
    """Walkthrough 108: two workers wrote "one", "two", "three" for 1, 2, 3; DEEM merged them (0.895 against majority
    vote's 0.818) and the note said only "predicts 4 classes fewer than majority vote finds; try a smaller learning
    rate". It names the classes with their majority-vote tasks and says they may be other spellings."""
    from deem_core.analysis.selection import dead_units_text

    rows = [(t, w, str(t % 3 + 1)) for t in range(60) for w in ("a", "b", "c")]
    rows += [(t, w, ["one", "two", "three"][t % 3]) for t in range(60, 90) for w in ("d", "e")]
    data = AnnotationSet.from_long(pd.DataFrame(rows, columns=["task", "worker", "label"]))
    numbers = np.array([list(data.classes).index(str(t % 3 + 1)) for t in range(90)])
    assert dead_units_text(data, data.majority_vote()) is None
    said = dead_units_text(data, numbers)
    assert said == ("the labels never use 3 classes that majority vote gives to some tasks ('one', 'three', 'two': on "
                    "10, 10, 10 tasks): if they are other spellings of classes, write each class one way in the file; "
                    "else the model may have stopped using a class: try a smaller learning rate"), said


def test_the_dead_units_note_escapes_a_class_once():
    """A class name with a control character is escaped once (repr after the escapes doubled the backslash)."""
    from deem_core.analysis.selection import dead_units_text

    rows = [(t, w, "a" if t % 2 else "b") for t in range(40) for w in ("u", "v")]
    rows += [(t, w, "c\u202e") for t in range(40, 52) for w in ("u", "v")]
    data = AnnotationSet.from_long(pd.DataFrame(rows, columns=["task", "worker", "label"]))
    codes = np.array([list(data.classes).index("a" if t % 2 else "b") for t in range(52)])
    said = dead_units_text(data, codes)
    assert "('c\\u202e': on 12 tasks)" in said and "\\\\" not in said, said


@pytest.mark.parametrize("left_out", [5, 6, 7])
def test_the_dead_units_note_gives_a_count_for_every_class_it_names(left_out):
    """Read 54: with six classes left out the note named six and counted five tasks ("'f', 'g': on 20, 10, 9, 8, 7,
    ... tasks")."""
    from deem_core.analysis.selection import dead_units_text

    names = "abcdefgh"[:left_out + 1]
    rows = [(f"t{c}_{t}", w, names[c]) for c in range(len(names)) for t in range(c + 2) for w in ("u", "v")]
    data = AnnotationSet.from_long(pd.DataFrame(rows, columns=["task", "worker", "label"]))
    said = dead_units_text(data, np.full(data.n_tasks, list(data.classes).index("a")))
    inside = said[said.index("(") + 1:said.index(" tasks)")]
    named, counts = inside.split(": on ")
    shown = named.count("'") // 2
    assert counts.count(",") + 1 - counts.endswith("...") == shown, said
    assert counts.endswith(", ...") == named.endswith("more"), said
