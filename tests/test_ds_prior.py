"""The Dawid-Skene start's shared prior (``fit_dawid_skene(prior_strength=...)``, ``DEEM(ds_prior=...)``)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from deem_core import DEEM
from deem_core.cli import main as cli_main
from deem_core.data.annotations import AnnotationSet
from deem_core.methods.dawid_skene import fit_dawid_skene
from deem_core.model.network import DEEMNetwork

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sample_data"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_platform_data import PlatformShape, make_platform_data  # noqa: E402


def _rare_and_frequent() -> tuple[AnnotationSet, int, int]:
    """300 tasks, 3 classes; five workers answer every task (right 75% of the time), worker ``rare`` answers two
    tasks, both right."""
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 3, size=300)
    rows = []
    for w in range(5):
        right = rng.random(300) < 0.75
        given = np.where(right, truth, (truth + rng.integers(1, 3, size=300)) % 3)
        rows += [(f"t{t}", f"w{w}", int(given[t])) for t in range(300)]
    rows += [(f"t{t}", "rare", int(truth[t])) for t in (0, 1)]
    data = AnnotationSet.from_long(pd.DataFrame(rows, columns=["task", "worker", "label"]))
    return data, list(data.workers).index("rare"), list(data.workers).index("w0")


def test_the_prior_reads_a_worker_with_two_answers_as_a_typical_worker_and_leaves_frequent_workers_alone():
    data, rare, frequent = _rare_and_frequent()
    plain = fit_dawid_skene(data)
    shared = fit_dawid_skene(data, prior_strength=5.0)
    seen = sorted({int(c) for c in np.asarray(data.label_codes)[np.asarray(data.worker_codes) == rare]})
    # maximum likelihood: right on both answers -> certain to be right on those classes
    assert all(plain.confusion[rare, m, m] > 0.95 for m in seen)
    # with the prior: close to the crowd's own accuracy (~0.75), not 1
    for m in seen:
        assert 0.6 < shared.confusion[rare, m, m] < 0.85
    # a worker with 300 answers keeps their estimate
    np.testing.assert_allclose(shared.confusion[frequent], plain.confusion[frequent], atol=0.02)
    assert (np.abs(shared.posterior.argmax(1) - plain.posterior.argmax(1)) > 0).mean() < 0.02


def test_on_long_tailed_platform_data_the_prior_lifts_dawid_skene_above_majority_vote():
    # 6,000 tasks x 3,000 workers x 4 classes, 3 answers per task, Zipf-like activity: most workers answer a handful
    df, truth, _ = make_platform_data(PlatformShape(6000, 3000, 4, (3, 3), zipf=1.0, seed=0))
    data = AnnotationSet.from_long(df)
    y = data.classes.get_indexer(truth.reindex(data.tasks).to_numpy())
    mv = (data.majority_vote() == y).mean()
    plain = (fit_dawid_skene(data).posterior.argmax(1) == y).mean()
    shared = (fit_dawid_skene(data, prior_strength=5.0).posterior.argmax(1) == y).mean()
    assert plain < mv  # maximum-likelihood Dawid-Skene over-trusts workers seen a few times
    assert shared > mv + 0.02 and shared > plain + 0.05


def _lemma1_network(fit) -> DEEMNetwork:
    network = DEEMNetwork(1, fit.confusion.shape[0], fit.confusion.shape[-1], 0)
    network.set_from_dawid_skene(torch.as_tensor(fit.confusion, dtype=torch.float32),
                                 torch.as_tensor(fit.prior, dtype=torch.float32))
    return network


@pytest.mark.parametrize("strength", [0.0, 5.0])
def test_deem_starts_from_the_dawid_skene_fit_with_its_ds_prior(strength):
    data, _, _ = _rare_and_frequent()
    model = DEEM(n_layers=0, init="ds", epochs=1, lr=1e-12, device="cpu", ds_prior=strength).fit(data)
    want = fit_dawid_skene(data, prior_strength=strength)
    np.testing.assert_allclose(model.dawid_skene_.confusion, want.confusion)
    # a step of 1e-12 leaves the start as it was: the iRBM is the Lemma-1 image of that fit
    start = _lemma1_network(want)
    trained = model.network_
    np.testing.assert_allclose(trained.irbm_weight.detach()[0].numpy(), start.irbm_weight.detach()[0].numpy(), atol=1e-5)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), "5", True])
def test_a_bad_ds_prior_is_refused(bad):
    data, _, _ = _rare_and_frequent()
    with pytest.raises(ValueError, match="ds_prior"):
        DEEM(ds_prior=bad, epochs=1, device="cpu").fit(data)


def test_the_command_line_takes_and_checks_ds_prior(tmp_path, capsys):
    data, _, _ = _rare_and_frequent()
    source = tmp_path / "answers.csv"
    data.to_long().to_csv(source, index=False)
    assert cli_main(["aggregate", str(source), "-o", str(tmp_path / "out.csv"), "--ds-prior", "-1"]) == 2
    assert capsys.readouterr().err.startswith("error: argument --ds-prior: must be 0 or more")
    assert not (tmp_path / "out.csv").exists()
    code = cli_main(["aggregate", str(source), "-o", str(tmp_path / "out.csv"), "--ds-prior", "0", "--init", "ds",
                     "--layers", "0", "--epochs", "1", "--no-progress", "--device", "cpu"])
    assert code == 0 and len(pd.read_csv(tmp_path / "out.csv")) == data.n_tasks


def test_a_model_file_written_before_the_prior_reads_as_plain_dawid_skene(tmp_path):
    from deem_cases import MODEL_V1  # noqa: PLC0415

    assert DEEM.load(MODEL_V1, device="cpu").ds_prior == 0.0
    data, _, _ = _rare_and_frequent()
    model = DEEM(n_layers=0, init="ds", epochs=1, device="cpu", ds_prior=2.5).fit(data)
    assert DEEM.load(model.save(tmp_path / "m.deem"), device="cpu").ds_prior == 2.5


def test_the_shared_prior_method_is_registered_and_matches_the_fit(capsys, tmp_path):
    from deem_core.methods.registry import display_name, fit_method  # noqa: PLC0415

    df, truth, _ = make_platform_data(PlatformShape(6000, 3000, 4, (3, 3), zipf=1.0, seed=0))
    data = AnnotationSet.from_long(df)
    assert display_name("ds_shared") == "Dawid-Skene (shared prior)"
    for strength in (0.0, 5.0):
        method = fit_method("ds_shared", df, ds_prior=strength)
        want = fit_dawid_skene(data, prior_strength=strength).posterior.argmax(1)
        assert (data.classes.get_indexer(method.labels_.reindex(data.tasks)) == want).all()
    assert fit_method("ds_shared", data).get_params()["ds_prior"] == 5.0
    # the command line passes --ds-prior to it, and says when the chosen method has no use for the option
    source = tmp_path / "answers.csv"
    df.to_csv(source, index=False)
    assert cli_main(["aggregate", str(source), "-o", str(tmp_path / "a.csv"), "--method", "ds_shared", "--ds-prior", "0"]) == 0
    assert (pd.read_csv(tmp_path / "a.csv").set_index("task")["label"].reindex(data.tasks).to_numpy()
            == data.classes.take(fit_dawid_skene(data).posterior.argmax(1))).all()
    capsys.readouterr()
    assert cli_main(["aggregate", str(source), "-o", str(tmp_path / "b.csv"), "--method", "ds", "--ds-prior", "2"]) == 0
    assert "--ds-prior is not used by --method ds (it is used by: deem, irbm, ds_shared)" in capsys.readouterr().err
    # typed with its default value it is still said; left out, nothing is said
    assert cli_main(["aggregate", str(source), "-o", str(tmp_path / "b.csv"), "--method", "mv", "--ds-prior", "5"]) == 0
    assert "--ds-prior is not used by --method mv" in capsys.readouterr().err
    assert cli_main(["aggregate", str(source), "-o", str(tmp_path / "b.csv"), "--method", "mv"]) == 0
    assert "ds-prior" not in capsys.readouterr().err
    assert cli_main(["aggregate", str(source), "-o", str(tmp_path / "b.csv"), "--init", "mv", "--layers", "0",
                     "--epochs", "1", "--no-progress", "--device", "cpu", "--ds-prior", "2"]) == 0
    assert "--ds-prior is not used with --init mv" in capsys.readouterr().err
    with pytest.raises(ValueError, match="ds_prior"):
        fit_method("ds_shared", df, ds_prior=float("inf"))
    assert cli_main(["aggregate", str(source), "-o", str(tmp_path / "c.csv"), "--ds-prior", "1e308"]) == 2
