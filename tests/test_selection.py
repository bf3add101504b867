"""The held-out criterion: split rules and the exactness of p(x_i = l | x_-i) from the free energy."""

import itertools

import numpy as np
import torch

from deem_core.analysis.selection import hold_out_answers, heldout_log_probs, observed_log_likelihood
from deem_core.methods.dawid_skene import fit_dawid_skene
from deem_core.model.network import DEEMNetwork


def test_hold_out_keeps_one_answer_per_task_and_never_the_last():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=(500, 6))
    labels[rng.random(labels.shape) < 0.6] = -1
    labels[:50, 1:] = -1  # tasks with a single answer are never held out
    train, _, held = hold_out_answers(labels, share=0.3, seed=1)
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
        train, _, held = hold_out_answers(labels, share=1.0, seed=3)
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
    train, _, held = hold_out_answers(labels, share=0.2, seed=0)
    ds = fit_dawid_skene(train, 3)
    net = DEEMNetwork(1, 5, 3, 0)
    net.set_from_dawid_skene(torch.as_tensor(ds.confusion, dtype=torch.float32),
                             torch.as_tensor(ds.prior, dtype=torch.float32))
    ll = observed_log_likelihood(heldout_log_probs(net, train, held), held)[0]
    # Dawid-Skene's own predictive: sum_m p(y = m | x_-i) psi_i[l, m]
    expected = np.array([np.log((ds.posterior[t] * ds.confusion[w, l]).sum())
                         for t, w, l in zip(held.task, held.worker, held.label)])
    assert np.allclose(ll, expected, atol=1e-4)
