"""Candidates of several depths as one batched model (runs of several depths, ``DEEMNetwork.run_depths``): the
same numbers as each depth's own network, and the same choice as training the depths one after another."""

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import read_sample
from deem_core import DEEM
from deem_core.methods import deem as deem_module
from deem_core.methods.choose import depths_together
from deem_core.methods.starts import stack_networks
from deem_core.model.network import DEEMNetwork
from deem_studio import jobs


def _random(n_layers: int, n_runs: int = 2, d: int = 4, k: int = 3, seed: int = 0) -> DEEMNetwork:
    gen = torch.Generator().manual_seed(seed)
    net = DEEMNetwork(n_runs, d, k, n_layers)
    net.initialise(gen)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.3)
    return net


def _batch(n_runs: int, b: int = 50, d: int = 4, k: int = 3, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, k, (b, d), generator=gen)
    mask = (torch.rand(b, d, generator=gen) > 0.3).float()
    x = torch.nn.functional.one_hot(labels, k).float() * mask.unsqueeze(-1)
    return x.expand(n_runs, -1, -1, -1).contiguous(), mask.expand(n_runs, -1, -1).contiguous()


def test_a_run_computes_what_a_network_of_its_own_depth_computes():
    nets = [_random(depth, seed=depth) for depth in (0, 1, 2)]
    mixed = stack_networks(nets)
    assert mixed.n_layers == 2 and mixed.run_depths == [0, 0, 1, 1, 2, 2]
    x, mask = _batch(6)
    energy, logits = mixed.free_energy_and_logits(x, mask)
    fm_x, fm_mask = DEEMNetwork.to_feature_major(x, mask)
    u, grad = mixed.sampler_energy()(fm_x, fm_mask)
    for index, net in enumerate(nets):
        runs = slice(2 * index, 2 * index + 2)
        own_energy, own_logits = net.free_energy_and_logits(x[runs], mask[runs])
        own_u, own_grad = net.sampler_energy()(fm_x[runs], fm_mask[runs])
        assert torch.allclose(energy[runs], own_energy, atol=1e-5)
        assert torch.allclose(logits[runs], own_logits, atol=1e-5)
        assert torch.allclose(u[runs], own_u, atol=1e-5)
        # the sampler's gradient through the layers a shallow run skips is its own network's gradient (a
        # sparsemax layer at a one-hot input would otherwise zero it)
        assert torch.allclose(grad[runs], own_grad, atol=1e-5), index
        back = mixed.select([2 * index + 1, 2 * index])
        assert back.n_layers == index and back.run_depths is None
        for name, param in net.named_parameters():
            assert torch.equal(dict(back.named_parameters())[name], param[[1, 0]])


def test_a_shallow_run_gets_no_gradient_in_the_layers_it_skips():
    mixed = stack_networks([_random(0, n_runs=1), _random(2, n_runs=1, seed=2)])
    x, mask = _batch(2)
    mixed.free_energy(x, mask).sum().backward()
    for weight in mixed.layer_weights:
        assert weight.grad[0].abs().max() == 0 and weight.grad[1].abs().max() > 0


def test_depths_train_together_only_on_a_gpu():
    assert depths_together(3, "cuda", "dense") and depths_together(3, "cuda", "sparse")
    assert not depths_together(3, "cpu", "dense") and not depths_together(3, "cpu", "sparse")
    assert not depths_together(1, "cuda", "dense")
    blocks = DEEMNetwork(2, 3, 3, 2, layout="blocks", run_depths=[0, 2])  # the sparse path's layout too
    assert blocks.run_depths == [0, 2] and blocks.to_layout("matrix").run_depths == [0, 2]


def _both_ways(df: pd.DataFrame, **options):
    """``n_layers="auto"`` trained depth by depth (the CPU's way) and all depths together (the GPU's way, forced
    here on the CPU), with the progress rows each way reported."""
    fits, rows = {}, {}
    for together in (False, True):
        seen = []
        original = deem_module.DEEM._depths_together
        deem_module.DEEM._depths_together = lambda self, data, depths, runs, t=together: t and len(depths) > 1
        try:
            fits[together] = DEEM(n_layers="auto", seed=0, **options,
                                  callbacks=[lambda epoch, logs, seen=seen: seen.append((epoch, logs))]).fit(df)
        finally:
            deem_module.DEEM._depths_together = original
        rows[together] = seen
    return fits, rows


@pytest.fixture(scope="module")
def together_and_apart():
    return _both_ways(read_sample("tree3k", n_tasks=600)[0], epochs=8)


def test_seeds_keep_their_order_when_depths_train_together():
    fits, rows = _both_ways(read_sample("condind", n_tasks=300)[0], epochs=3, n_seeds=2)
    assert [row["candidate_layers"] for row in rows[True][0][1]] == [0] * 4 + [1] * 4 + [2] * 4
    for a, b in zip(fits[False].candidates_, fits[True].candidates_):
        assert b.result.seeds == a.result.seeds == [0, 1]
        np.testing.assert_allclose(a.loglik, b.loglik, atol=1e-4)


def test_depths_trained_together_score_and_choose_as_depth_by_depth(together_and_apart):
    fits, _ = together_and_apart
    apart, together = fits[False].candidates_, fits[True].candidates_
    assert [c.name for c in apart] == [c.name for c in together] and len(apart) == 6
    for a, b in zip(apart, together):
        assert b.result.network.n_layers == b.depth and b.result.network.run_depths is None
        np.testing.assert_allclose(a.loglik, b.loglik, atol=1e-4)
        np.testing.assert_allclose(a.lco_loglik, b.lco_loglik, atol=1e-4)
        assert a.collapsed_at == b.collapsed_at
    assert (fits[False].init_, fits[False].n_layers_) == (fits[True].init_, fits[True].n_layers_)
    pd.testing.assert_frame_equal(fits[False].results_frame(), fits[True].results_frame(), atol=1e-4)


def test_progress_of_depths_together_is_one_round_with_each_runs_depth(together_and_apart):
    _, rows = together_and_apart
    assert [epoch for epoch, _ in rows[False]] == list(range(1, 25))  # three rounds of 8 epochs
    assert [epoch for epoch, _ in rows[True]] == list(range(1, 9))  # one round
    assert [row["candidate_layers"] for row in rows[True][0][1]] == [0, 0, 1, 1, 2, 2]


def test_a_train_jobs_progress_counts_the_rounds_the_engine_runs(monkeypatch):
    df, _ = read_sample("tree3k", n_tasks=300)
    data = deem_module.as_annotation_set(df)
    config = {"methods": ["deem", "mv"], "n_layers": "auto", "epochs": 10, "device": "cpu"}
    assert jobs._train_steps(config, data) == 3 * 10 + 1
    monkeypatch.setattr(deem_module, "selection_rounds", lambda data, device, **_: 1)
    assert jobs._train_steps(config, data) == 10 + 1


def test_depths_train_one_after_another_where_together_they_would_not_fit(monkeypatch):
    data = deem_module.as_annotation_set(read_sample("tree3k", n_tasks=300)[0])
    assert deem_module.selection_rounds(data, "cpu") == 3
    monkeypatch.setattr(deem_module, "depths_together", lambda n, device, path: True)  # as on a GPU
    assert deem_module.selection_rounds(data, "cpu") == 1
    asked = []

    def too_large(data, config, n_runs, memory_bytes=None):
        asked.append((config.n_layers, n_runs))
        raise deem_module.DataError("too large")

    monkeypatch.setattr(deem_module, "check_training_size", too_large)
    assert deem_module.selection_rounds(data, "cpu", runs_per_depth=4) == 3
    assert asked == [(2, 12)]  # all six candidates' runs (2 starts x 2 seeds x 3 depths) at the deepest depth


def test_choosing_the_layers_says_when_it_cannot_choose():
    df, truth = read_sample("condind", n_tasks=300)
    model = DEEM(n_layers="auto", epochs=2, supervised_weight=1.0).fit(df, gold=truth)
    assert model.n_layers_ == 1 and model.candidates_ is None
    assert any("the layers are not chosen from held-out answers when gold labels train the model (a gold-label "
               "weight above 0): 1 layer is used" in w for w in model.warnings_)
    chosen = DEEM(n_layers="auto", epochs=2).fit(df)
    assert not any("layers are not chosen" in w for w in chosen.warnings_)


def test_the_training_curves_draw_one_line_per_candidate(together_and_apart):
    """The live curves of a choice: the candidates share seed and epochs, and grouped by method and seed alone they
    were one line jumping between them every epoch (seen in Chromium)."""
    from deem_core.plots.curves import training_curves_figure

    _, rows = together_and_apart
    history = pd.DataFrame([{**row, "method": "deem"} for _, logs in rows[False] for row in logs])
    history = pd.concat([history, pd.DataFrame({"method": "irbm", "seed": 0, "epoch": [1, 2],
                                                "energy_difference": [0.1, 0.05]})], ignore_index=True)
    fig = training_curves_figure(history)
    names = [trace.name for trace in fig.data]
    assert sorted(names) == sorted(["iRBM"] + [f"DEEM ({start} start, {depth} layer{'s' if depth != 1 else ''})"
                                               for start in ("majority vote", "Dawid-Skene") for depth in (0, 1, 2)])
    for trace in fig.data:  # each line goes forward in epochs, one point per epoch
        assert list(trace.x) == sorted(set(trace.x)), trace.name


def _sparse_crowd(n_tasks: int = 400, n_workers: int = 40, per_task: int = 5, seed: int = 0) -> pd.DataFrame:
    """Each task answered by 5 of 40 workers (75% right, else a random other class): the sparse path's data."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, n_tasks)
    rows = []
    for task in range(n_tasks):
        for worker in rng.choice(n_workers, per_task, replace=False):
            label = truth[task] if rng.random() < 0.75 else (truth[task] + rng.integers(1, 3)) % 3
            rows.append((task, f"w{worker}", int(label)))
    return pd.DataFrame(rows, columns=["task", "worker", "label"])


def test_depths_trained_together_on_the_sparse_path_score_and_choose_as_depth_by_depth():
    """The sparse path (answers gathered task by task, layers stored as blocks) with runs of several depths: the
    same candidates, criteria and choice as depth by depth (its GatheredNetwork passes a shallow run's answers
    through the layers it skips; tests/test_sparse_model.py checks each number against the dense model)."""
    df = _sparse_crowd()
    data = deem_module.as_annotation_set(df)
    assert deem_module.path_for(data) == "sparse"
    fits, rows = _both_ways(df, epochs=6)
    assert [row["candidate_layers"] for row in rows[True][0][1]] == [0, 0, 1, 1, 2, 2]
    apart, together = fits[False].candidates_, fits[True].candidates_
    assert [c.name for c in apart] == [c.name for c in together] and len(apart) == 6
    for a, b in zip(apart, together):
        assert b.result.network.layout == "blocks" and b.result.network.n_layers == b.depth
        np.testing.assert_allclose(a.loglik, b.loglik, atol=1e-4)
        np.testing.assert_allclose(a.lco_loglik, b.lco_loglik, atol=1e-4)
    assert (fits[False].init_, fits[False].n_layers_) == (fits[True].init_, fits[True].n_layers_)
    pd.testing.assert_frame_equal(fits[False].results_frame(), fits[True].results_frame(), atol=1e-4)
