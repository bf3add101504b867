"""The DEEM network: Definition 1's constants, initialisation, Lemma 1 both ways, missing units."""

from __future__ import annotations

import numpy as np
import torch

from deem_core.data.annotations import AnnotationSet
from deem_core.methods.dawid_skene import dawid_skene_posterior, fit_dawid_skene
from deem_core.model.network import DEEMNetwork
from deem_core.model.sampler import one_hot_state
from deem_core.model.training import TrainingConfig, train_runs

from conftest import make_ds_data


def _random_ds(d, k, seed):
    rng = np.random.default_rng(seed)
    psi = rng.dirichlet(np.ones(k), size=(d, k)).transpose(0, 2, 1)  # (d, K, K) columns sum to 1
    prior = rng.dirichlet(np.ones(k))
    return psi, prior


def test_identifiability_constants_stay_fixed_during_training():
    df, _ = make_ds_data(300, 5, 3, seed=1)
    data = AnnotationSet.from_long(df)
    result = train_runs(data.dense_labels(), 3, [0.5, 0.05], [0, 1], TrainingConfig(n_layers=1, epochs=3, device="cpu"))
    with torch.no_grad():
        w, a, b = result.network.effective_irbm()
    assert torch.all(a[:, :, 0] == 0) and torch.all(b[:, 0] == 0)
    assert torch.all(w[:, :, 0, 0] == 1)
    assert torch.all(w[:, :, 0, 1:] == 0) and torch.all(w[:, :, 1:, 0] == 0)
    # and the free entries did move
    assert float((w[:, :, 1:, 1:] - torch.eye(2)).abs().max()) > 0.01


@torch.no_grad()
def test_initialisation_is_identity_plus_small_noise():
    net = DEEMNetwork(2, 4, 3, n_layers=2)
    net.initialise(torch.Generator().manual_seed(0))
    for weight in net.layer_weights:
        deviation = weight - torch.eye(12)
        assert 0.002 < float(deviation.std()) < 0.008  # N(0, 0.005^2)
    w, _, _ = net.effective_irbm()
    off = w[:, :, 1:, 1:] - torch.eye(2)
    assert float(off.abs().max()) < 0.06  # majority vote: identity iRBM + N(0, 0.01^2)


def test_lemma1_round_trip_ds_to_irbm_to_ds():
    psi, prior = _random_ds(6, 4, seed=0)
    net = DEEMNetwork(1, 6, 4, n_layers=0)
    net.set_from_dawid_skene(torch.as_tensor(psi, dtype=torch.float64).float(), torch.as_tensor(prior).float())
    psi_back, prior_back = net.confusion_matrices()
    np.testing.assert_allclose(psi_back[0].numpy(), psi, atol=1e-5)
    np.testing.assert_allclose(prior_back[0].numpy(), prior, atol=1e-5)


def _posterior_matches_ds(density, seed):
    df, _ = make_ds_data(200, 7, 3, density=density, seed=seed)
    data = AnnotationSet.from_long(df)
    fit = fit_dawid_skene(data)
    net = DEEMNetwork(1, data.n_workers, 3, n_layers=0)
    net.set_from_dawid_skene(torch.as_tensor(fit.confusion).float(), torch.as_tensor(fit.prior).float())
    labels = torch.as_tensor(data.dense_labels())
    mask = (labels >= 0).float()
    post = net.posterior(one_hot_state(labels, mask, 3).unsqueeze(0), mask.unsqueeze(0))[0].detach().numpy()
    expected, _ = dawid_skene_posterior(data, fit.confusion, fit.prior)
    np.testing.assert_allclose(post, expected, atol=1e-4)
    return data


def test_irbm_from_ds_gives_ds_posteriors_on_dense_data():
    data = _posterior_matches_ds(1.0, seed=2)
    assert data.density == 1.0


def test_irbm_from_ds_gives_ds_posteriors_on_sparse_data():
    data = _posterior_matches_ds(0.35, seed=3)
    assert data.density < 0.5


@torch.no_grad()
def test_missing_units_are_summed_out_not_left_out():
    """With a missing worker, F equals -log of the sum of exp(-F) over that worker's classes (iRBM)."""
    psi, prior = _random_ds(3, 3, seed=4)
    net = DEEMNetwork(1, 3, 3, n_layers=0)
    net.set_from_dawid_skene(torch.as_tensor(psi).float(), torch.as_tensor(prior).float())
    state = torch.tensor([[2, 0, 1]])
    full_mask = torch.ones(1, 3)
    energies = []
    for label in range(3):
        s = state.clone()
        s[0, 1] = label
        energies.append(net.free_energy(one_hot_state(s, full_mask, 3).unsqueeze(0), full_mask.unsqueeze(0)))
    marginal = -torch.logsumexp(-torch.cat(energies, dim=-1), dim=-1)
    missing = torch.tensor([[1.0, 0.0, 1.0]])
    summed_out = net.free_energy(one_hot_state(state, missing, 3).unsqueeze(0), missing.unsqueeze(0))
    assert torch.allclose(summed_out[0], marginal[0], atol=1e-5)


@torch.no_grad()
def test_hidden_bias_from_ds_reproduces_the_prior_by_enumeration():
    """Set the iRBM from a DS model and enumerate every (x, h): the marginal of h is the DS prior and
    p(x | h) is the product of the DS confusion columns."""
    import itertools

    psi, prior = _random_ds(3, 3, seed=8)
    net = DEEMNetwork(1, 3, 3, n_layers=0)
    net.set_from_dawid_skene(torch.as_tensor(psi).float(), torch.as_tensor(prior).float())
    w, a, b = (t[0].double() for t in net.effective_irbm())  # (d, K, K), (d, K), (K,)
    states = list(itertools.product(range(3), repeat=3))
    log_joint = torch.empty(len(states), 3, dtype=torch.float64)
    for row, x in enumerate(states):
        for m in range(3):
            log_joint[row, m] = b[m] + sum(a[i, x[i]] + w[i, x[i], m] for i in range(3))
    joint = torch.softmax(log_joint.flatten(), 0).reshape(len(states), 3)
    np.testing.assert_allclose(joint.sum(0).numpy(), prior, atol=1e-6)
    for row, x in enumerate(states):
        expected = prior * np.prod([psi[i, x[i], :] for i in range(3)], axis=0)
        np.testing.assert_allclose(joint[row].numpy(), expected, atol=1e-6)


def _random_network(layers, seed, d=4, k=5, runs=2):
    torch.manual_seed(seed)
    net = DEEMNetwork(runs, d, k, layers)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.7 * torch.randn_like(p))
    return net


def test_hand_written_input_gradient_equals_autograd_with_missing_workers():
    """The sampler's energy (one hand-written backward pass) against autograd on -F, 0-2 layers."""
    gen = torch.Generator().manual_seed(0)
    for layers in (0, 1, 2):
        net = _random_network(layers, seed=layers)
        labels = torch.randint(0, 5, (2, 30, 4), generator=gen)
        mask = (torch.rand(2, 30, 4, generator=gen) > 0.3).float()
        x = one_hot_state(labels, mask, 5).requires_grad_(True)  # (R, B, d, K)
        log_density = -net.free_energy(x, mask)
        (expected_grad,) = torch.autograd.grad(log_density.sum(), x)
        x_fm, mask_fm = DEEMNetwork.to_feature_major(x.detach(), mask)
        value, grad = net.sampler_energy()(x_fm, mask_fm)
        torch.testing.assert_close(value, log_density.detach(), atol=1e-5, rtol=1e-5)
        # missing workers never move, so only the observed workers' gradients matter
        observed = mask_fm.unsqueeze(2).bool().expand_as(grad)
        torch.testing.assert_close(grad[observed], expected_grad.permute(0, 2, 3, 1)[observed], atol=1e-5, rtol=1e-5)


def test_dense_shortcut_equals_the_masked_computation():
    net = _random_network(1, seed=7)
    labels = torch.randint(0, 5, (2, 20, 4), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(2, 20, 4)
    x_fm, mask_fm = DEEMNetwork.to_feature_major(one_hot_state(labels, mask, 5), mask)
    for masked, dense in zip(net.free_energy_and_logits_fm(x_fm, mask_fm), net.free_energy_and_logits_fm(x_fm, None)):
        torch.testing.assert_close(masked, dense)
    for masked, dense in zip(net.sampler_energy()(x_fm, mask_fm), net.sampler_energy(dense=True)(x_fm, mask_fm)):
        torch.testing.assert_close(masked, dense)
