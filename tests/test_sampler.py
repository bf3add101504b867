"""DMALA sampler: exact distribution on an enumerable model, missing workers, statistics."""

from __future__ import annotations

import itertools

import numpy as np
import torch

from deem_core.model.network import DEEMNetwork
from deem_core.model.sampler import DMALASampler, one_hot_state


def _tiny_network(d=3, k=3, layers=1, seed=0, scale=0.8):
    torch.manual_seed(seed)
    net = DEEMNetwork(1, d, k, layers)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(scale * torch.randn_like(p))
    return net


def _exact(net, d, k, mask_row):
    """p(x) ∝ exp(-F(x)) over all states of the observed workers: dict state tuple -> prob."""
    observed = [i for i in range(d) if mask_row[i] > 0]
    states = list(itertools.product(range(k), repeat=len(observed)))
    full = torch.zeros(len(states), d, dtype=torch.long)
    for row, state in enumerate(states):
        full[row, observed] = torch.tensor(state)
    mask = torch.tensor(mask_row, dtype=torch.float32).expand(len(states), d)
    with torch.no_grad():
        energy = net.free_energy(one_hot_state(full, mask, k).unsqueeze(0), mask.unsqueeze(0))[0]
    prob = torch.softmax(-energy, dim=0).numpy()
    return {s: p for s, p in zip(states, prob)}, observed


def _empirical_tv(net, d, k, mask_row, n_chains=20000, n_steps=40, step_size=1.0):
    exact, observed = _exact(net, d, k, mask_row)
    gen = torch.Generator().manual_seed(1)
    mask = torch.tensor(mask_row, dtype=torch.float32).expand(1, n_chains, d).contiguous()
    state = torch.randint(0, k, (1, n_chains, d), generator=gen)
    sampler = DMALASampler(step_size=step_size, n_steps=n_steps)
    final, stats = sampler.sample(net.sampler_energy(), state, mask, k, gen)
    picked = final[0][:, observed].numpy()
    codes = (picked * (k ** np.arange(len(observed))[::-1])).sum(1)
    counts = np.bincount(codes, minlength=k ** len(observed)) / n_chains
    tv = 0.5 * sum(abs(counts[int("".join(map(str, s)), k) if s else 0] - p) for s, p in exact.items())
    return tv, stats, final, state


def test_dmala_matches_exact_distribution_of_enumerable_model():
    net = _tiny_network()
    tv, stats, _, _ = _empirical_tv(net, 3, 3, [1, 1, 1])
    # 27 states, 20,000 chains: sampling noise alone gives TV about 0.015
    assert tv < 0.04, tv
    assert 0.2 < float(stats.acceptance_rate[0]) <= 1.0
    assert float(stats.changed_fraction[0]) > 0.05


def test_dmala_with_a_missing_worker_samples_the_summed_out_model_and_keeps_it_absent():
    net = _tiny_network(layers=0, seed=3)
    tv, _, final, start = _empirical_tv(net, 3, 3, [1, 0, 1])
    assert tv < 0.04, tv
    # the missing worker has nothing to sample: its entry never changes
    assert torch.equal(final[0][:, 1], start[0][:, 1])


def test_small_step_size_barely_moves_chains():
    net = _tiny_network()
    gen = torch.Generator().manual_seed(0)
    state = torch.randint(0, 3, (1, 2000, 3), generator=gen)
    mask = torch.ones(1, 2000, 3)
    _, stats = DMALASampler(step_size=0.05, n_steps=5).sample(net.sampler_energy(), state, mask, 3, gen)
    # each change costs 1/alpha = 20 nats in the proposal
    assert float(stats.changed_fraction[0]) < 0.01


def test_batched_runs_sample_independently_per_run():
    """Two runs with different parameters in one batch: each matches its own exact distribution."""
    nets = [_tiny_network(seed=s, layers=0) for s in (5, 6)]
    both = DEEMNetwork(2, 3, 3, 0)
    with torch.no_grad():
        for target, a, b in zip(both.parameters(), nets[0].parameters(), nets[1].parameters()):
            target.copy_(torch.cat([a, b]))
    n = 20000
    gen = torch.Generator().manual_seed(2)
    mask = torch.ones(2, n, 3)
    state = torch.randint(0, 3, (2, n, 3), generator=gen)
    final, _ = DMALASampler(1.0, 40).sample(both.sampler_energy(), state, mask, 3, gen)
    for run, net in enumerate(nets):
        exact, _ = _exact(net, 3, 3, [1, 1, 1])
        codes = (final[run].numpy() * np.array([9, 3, 1])).sum(1)
        counts = np.bincount(codes, minlength=27) / n
        tv = 0.5 * sum(abs(counts[s[0] * 9 + s[1] * 3 + s[2]] - p) for s, p in exact.items())
        assert tv < 0.04, (run, tv)
