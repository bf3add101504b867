"""Sparse-aware DEEM (deem_core/model/sparse.py) equals the dense model: energies, posteriors, the sampler's
energy and input gradient, parameter gradients and SGD steps, with 0-2 layers, missing answers and soft
labels, in every weight layout; DMALA on answer slots samples the exact distribution."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from deem_core.model.network import DEEMNetwork, blocks_to_matrix, matrix_to_blocks
from deem_core.model.sampler import DMALASampler, one_hot_state
from deem_core.model.sparse import Answers, GatheredNetwork, cooccurring_pairs, free_energy_of_tasks

D, K = 6, 3


#: two runs of different depths in one network (DEEMNetwork.run_depths): the run of depth 0 or 1 passes its
#: answers through the layers it skips, as candidates of every depth trained together do
MIXED = [(0, 2), (1, 2)]


def _random_network(layers, seed, d=D, k=K, runs=2, scale=0.7, bias="irbm"):
    """``layers``: a number of layers, or one depth per run (a network of runs of several depths)."""
    torch.manual_seed(seed)
    depths = list(layers) if isinstance(layers, tuple) else None
    net = DEEMNetwork(runs, d, k, max(depths) if depths else layers, bias=bias, run_depths=depths)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(scale * torch.randn_like(p))
    return net


def _random_data(n=40, d=D, k=K, seed=0, soft=False):
    """(n, d) codes with -1 = missing: varied answer counts, one task with a single answer, one with all."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, (n, d))
    labels[rng.random((n, d)) < 0.5] = -1
    labels[0, 1:] = -1
    labels[0, 0] = 1  # a single answer
    labels[1] = rng.integers(0, k, d)  # every worker
    labels[(labels >= 0).sum(1) == 0, 2] = 0  # every task has an answer
    probs = None
    if soft:
        probs = rng.dirichlet(np.ones(k), size=(n, d)).astype(np.float32) * (labels >= 0)[..., None]
    return labels, probs


def _dense_inputs(labels, probs, runs, k=K):
    labels_t = torch.as_tensor(labels)
    mask = (labels_t >= 0).float()
    x = torch.as_tensor(probs) if probs is not None else one_hot_state(labels_t, mask, k)
    return x.unsqueeze(0).expand(runs, -1, -1, -1).contiguous(), mask.unsqueeze(0).expand(runs, -1, -1).contiguous()


def _layouts(net, answers):
    """The same network in every layout: matrix, all-pairs blocks, co-occurring-pairs blocks."""
    return {"matrix": net, "blocks": net.to_layout("blocks"),
            "pairs": net.to_layout("blocks", cooccurring_pairs(answers))}


def _sparse_batch(answers, runs, order_seed=None):
    n = answers.n_tasks
    tasks = torch.arange(n)
    if order_seed is not None:  # a different task order per run, as training draws
        gen = torch.Generator().manual_seed(order_seed)
        tasks = torch.stack([torch.randperm(n, generator=gen) for _ in range(runs)])
    else:
        tasks = tasks.unsqueeze(0).expand(runs, -1)
    return tasks, answers.slots(tasks)


@pytest.mark.parametrize("layers", [0, 1, 2, *MIXED])
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("bias", ["irbm", "prior"])
def test_sparse_free_energy_and_posterior_equal_the_dense_model(layers, soft, bias):
    layers_seed = layers if isinstance(layers, int) else 3 + layers[0]
    labels, probs = _random_data(soft=soft, seed=layers_seed)
    answers = Answers.from_dense(labels, probs)
    net = _random_network(layers, seed=10 + layers_seed, bias=bias)
    x, mask = _dense_inputs(labels, probs, 2)
    with torch.no_grad():
        dense_energy, dense_logits = net.free_energy_and_logits(x, mask)
    tasks, slots = _sparse_batch(answers, 2, order_seed=layers_seed)
    for name, variant in _layouts(net, answers).items():
        gathered = GatheredNetwork(variant, slots.workers, slots.mask)
        x_slots = answers.one_hot_fm(slots.answer, slots.mask, K)
        with torch.no_grad():
            energy, logits = gathered.free_energy_and_logits(x_slots, slots.mask_fm)
        expected_energy = dense_energy.gather(1, tasks)
        torch.testing.assert_close(energy, expected_energy, atol=1e-4, rtol=1e-5, msg=name)
        expected_post = torch.softmax(dense_logits, -1).gather(1, tasks.unsqueeze(-1).expand(-1, -1, K))
        torch.testing.assert_close(torch.softmax(logits, 1).transpose(1, 2), expected_post, atol=1e-5, rtol=1e-5)
        # the natural-layout methods give the same numbers in every layout
        with torch.no_grad():
            torch.testing.assert_close(variant.free_energy(x, mask), dense_energy, atol=1e-4, rtol=1e-5)
            torch.testing.assert_close(variant.posterior(x, mask), torch.softmax(dense_logits, -1),
                                       atol=1e-5, rtol=1e-5)
            for got, want in zip(variant.propagate(x, mask), net.propagate(x, mask)):
                torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        # and the whole-data helper
        whole_energy, whole_post = free_energy_of_tasks(variant, answers, batch_size=16)
        torch.testing.assert_close(whole_energy, dense_energy, atol=1e-4, rtol=1e-5)
        torch.testing.assert_close(whole_post, torch.softmax(dense_logits, -1), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("layers", [0, 1, 2, *MIXED])
@pytest.mark.parametrize("bias", ["irbm", "prior"])
def test_sparse_sampler_energy_and_input_gradient_equal_the_dense_ones(layers, bias):
    layers_seed = layers if isinstance(layers, int) else 3 + layers[0]
    labels, _ = _random_data(seed=20 + layers_seed)
    answers = Answers.from_dense(labels)
    net = _random_network(layers, seed=30 + layers_seed, bias=bias)
    x, mask = _dense_inputs(labels, None, 2)
    x_fm, mask_fm = DEEMNetwork.to_feature_major(x, mask)
    dense_value, dense_grad = net.sampler_energy()(x_fm, mask_fm)  # (R, n), (R, d, K, n)
    tasks, slots = _sparse_batch(answers, 2, order_seed=1)
    run = torch.arange(2).view(2, 1, 1)
    for name, variant in _layouts(net, answers).items():
        gathered = GatheredNetwork(variant, slots.workers, slots.mask)
        x_slots = answers.one_hot_fm(slots.answer, slots.mask, K)
        value, grad = gathered.sampler_energy()(x_slots, slots.mask_fm)
        # U = -F up to the per-task offset of the missing workers
        torch.testing.assert_close(value + gathered.offset.float(), dense_value.gather(1, tasks), atol=1e-4, rtol=1e-5)
        # the dense gradient at (worker w_s of task b) is the sparse one at slot s
        expected = dense_grad.permute(0, 3, 1, 2)[run, tasks.unsqueeze(-1), slots.workers]  # (R, B, A, K)
        got = grad.permute(0, 3, 1, 2)
        real = slots.mask.bool().unsqueeze(-1).expand_as(got)
        torch.testing.assert_close(got[real], expected[real], atol=1e-5, rtol=1e-5, msg=name)


@pytest.mark.parametrize("layers", [0, 1, 2, *MIXED])
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("bias", ["irbm", "prior"])
def test_sparse_parameter_gradients_and_sgd_step_equal_the_dense_ones(layers, soft, bias):
    """The loss mean F(x_pos) - mean F(x_neg) of a batch (negatives: random labels on the same answers):
    autograd on the dense matrix layout vs gathered leaves scattered back, in every layout."""
    layers_seed = layers if isinstance(layers, int) else 3 + layers[0]
    labels, probs = _random_data(seed=40 + layers_seed, soft=soft)
    answers = Answers.from_dense(labels, probs)
    net = _random_network(layers, seed=50 + layers_seed, scale=0.4, bias=bias)
    gen = torch.Generator().manual_seed(3)
    negative = torch.where(torch.as_tensor(labels) >= 0, torch.randint(0, K, labels.shape, generator=gen), -1)
    x_pos, mask = _dense_inputs(labels, probs, 2)
    x_neg, _ = _dense_inputs(negative.numpy(), None, 2)
    tasks, slots = _sparse_batch(answers, 2, order_seed=2)
    batch = tasks[:, :25]  # a batch: part of the tasks, in a different order per run
    run = torch.arange(2).view(2, 1)

    net.zero_grad()
    loss = net.free_energy(x_pos[run, batch], mask[run, batch]).mean(1) - \
        net.free_energy(x_neg[run, batch], mask[run, batch]).mean(1)
    loss.sum().backward()
    dense_grads = {name: p.grad.clone() for name, p in net.named_parameters()}
    lr = torch.tensor([0.3, 0.05])
    stepped = {}
    with torch.no_grad():
        for name, p in net.named_parameters():
            stepped[name] = p - lr.view(-1, *([1] * (p.dim() - 1))) * p.grad

    slots = answers.slots(batch)
    neg_answers = Answers(answers.offsets, answers.workers, negative[negative >= 0], None, D)
    pos = answers.one_hot_fm(slots.answer, slots.mask, K)
    neg = neg_answers.one_hot_fm(slots.answer, slots.mask, K)
    # hard labels: the first layer's gradient is collected row by row (the labels say x is one-hot)
    pos_labels = None if soft else answers.labels[slots.answer]
    neg_labels = None if soft else neg_answers.labels[slots.answer]
    keys = cooccurring_pairs(answers)
    for name, method in itertools.product(("matrix", "blocks", "pairs"), ("autograd", "by hand")):
        variant = {"matrix": lambda: net.to_layout("matrix"), "blocks": lambda: net.to_layout("blocks"),
                   "pairs": lambda: net.to_layout("blocks", keys)}[name]()
        variant.zero_grad()
        if method == "autograd":  # gathered per-worker parameters through autograd, blocks by _BlockProduct
            gathered = GatheredNetwork(variant, slots.workers, slots.mask, train=True)
            sparse_loss = gathered.free_energy_and_logits(pos, slots.mask_fm, pos_labels)[0].mean(1) - \
                gathered.free_energy_and_logits(neg, slots.mask_fm, neg_labels)[0].mean(1)
        else:  # what training runs: every gradient written by hand (GatheredNetwork.training_energies)
            gathered = GatheredNetwork(variant, slots.workers, slots.mask)
            energy_pos, energy_neg, _ = gathered.training_energies(pos, neg, slots.mask_fm, pos_labels, neg_labels)
            sparse_loss = energy_pos.mean(1) - energy_neg.mean(1)
        torch.testing.assert_close(sparse_loss, loss.detach(), atol=1e-4, rtol=1e-5)
        sparse_loss.sum().backward()
        if method == "by hand":
            gathered.materialise_gradients()
        for pname, p in variant.named_parameters():
            if pname.startswith("layer_weights."):
                assert p.grad is None  # their gradient lives on the gathered blocks, scattered by the step
                continue
            torch.testing.assert_close(p.grad, dense_grads[pname], atol=1e-5, rtol=1e-5,
                                       msg=f"{name} {method} {pname}")
        with torch.no_grad():
            for pname, p in variant.named_parameters():
                if not pname.startswith("layer_weights."):
                    p -= lr.view(-1, *([1] * (p.dim() - 1))) * p.grad
        gathered.apply_layer_step(-lr)
        for layer in range(net.n_layers):
            want = stepped[f"layer_weights.{layer}"]
            got = variant.layer_matrix(layer)
            if name == "pairs":  # pairs that never co-occur are not stored: compare the stored ones
                got = matrix_to_blocks(got, D, K)[:, keys]
                want = matrix_to_blocks(want, D, K)[:, keys]
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5, msg=f"{name} {method} layer {layer}")
        for pname in ("irbm_weight", "visible_bias", "hidden_bias"):
            torch.testing.assert_close(getattr(variant, pname), stepped[pname], atol=1e-5, rtol=1e-5)


def test_layouts_convert_both_ways_and_all_pairs_initialise_like_the_matrix():
    matrix = DEEMNetwork(2, 4, 3, 2)
    matrix.initialise(torch.Generator().manual_seed(5))
    blocks = DEEMNetwork(2, 4, 3, 2, layout="blocks")
    blocks.initialise(torch.Generator().manual_seed(5))
    for layer in range(2):
        torch.testing.assert_close(blocks.layer_matrix(layer), matrix.layer_matrix(layer))
        torch.testing.assert_close(blocks_to_matrix(matrix_to_blocks(matrix.layer_matrix(layer), 4, 3), 4, 3),
                                   matrix.layer_matrix(layer))
    back = blocks.to_layout("matrix")
    for a, b in zip(back.parameters(), matrix.parameters()):
        torch.testing.assert_close(a, b)
    restored = DEEMNetwork.from_state_dict(blocks.to_layout("blocks", torch.tensor([0, 5, 10, 15, 1])).state_dict())
    assert restored.layout == "blocks" and restored.n_pairs == 5
    # stored pairs: identity diagonal blocks + noise, nothing else
    pairs = DEEMNetwork(1, 4, 3, 1, layout="blocks", pair_keys=torch.tensor([0, 1, 5, 10, 15]))
    pairs.initialise(torch.Generator().manual_seed(0))
    diagonal = pairs.layer_weights[0].detach()[0, [0, 2, 3, 4]]
    assert float((diagonal - torch.eye(3)).abs().max()) < 0.03
    assert float(pairs.layer_weights[0][0, 1].detach().abs().max()) < 0.03
    with pytest.raises(ValueError, match="own pair"):
        DEEMNetwork(1, 4, 3, 1, layout="blocks", pair_keys=torch.tensor([0, 1])).initialise()


def test_cooccurring_pairs_are_exactly_the_pairs_that_share_a_task():
    labels, _ = _random_data(n=30, d=7, seed=6)
    answers = Answers.from_dense(labels)
    expected = set(i * 7 + i for i in range(7))
    for row in labels:
        workers = np.flatnonzero(row >= 0)
        expected |= {int(i) * 7 + int(j) for i in workers for j in workers}
    keys = cooccurring_pairs(answers, chunk=10)  # tiny chunks: the chunked path is exercised
    assert keys.tolist() == sorted(expected)


def test_pairs_that_are_not_stored_act_as_zero_blocks():
    net = _random_network(1, seed=8)
    keys = torch.tensor([i * D + i for i in range(D)])  # only the diagonal blocks
    diagonal_only = net.to_layout("blocks", keys)
    zeroed = net.to_layout("matrix")
    with torch.no_grad():
        block_mask = torch.eye(D).repeat_interleave(K, 0).repeat_interleave(K, 1)
        zeroed.layer_weights[0].mul_(block_mask)
    labels, _ = _random_data(seed=9)
    x, mask = _dense_inputs(labels, None, 2)
    with torch.no_grad():
        torch.testing.assert_close(diagonal_only.free_energy(x, mask), zeroed.free_energy(x, mask),
                                   atol=1e-4, rtol=1e-5)


def _exact_slots(net, k, workers):
    """p(x) over every labelling of the answers of one task answered by ``workers``, by the dense model."""
    d = net.n_workers
    states = list(itertools.product(range(k), repeat=len(workers)))
    full = torch.zeros(len(states), d, dtype=torch.long)
    for row, state in enumerate(states):
        full[row, workers] = torch.tensor(state)
    mask = torch.zeros(len(states), d)
    mask[:, workers] = 1.0
    with torch.no_grad():
        energy = net.free_energy(one_hot_state(full, mask, k).unsqueeze(0), mask.unsqueeze(0))[0]
    return dict(zip(states, torch.softmax(-energy, 0).numpy()))


@pytest.mark.parametrize("layers", [0, 1])
def test_dmala_on_answer_slots_samples_the_exact_distribution(layers):
    """A batch mixing tasks with 3 answers and with 2 (padded) answers out of 5 workers: each task's chains
    match the dense model's distribution over its own answers, the padded slot never moves."""
    net = _random_network(layers, seed=60 + layers, d=5, k=3, runs=1, scale=0.8)
    blocks = net.to_layout("blocks")
    task_workers = [[0, 2, 4], [1, 3]]
    n_chains = 20000
    offsets = torch.tensor([0, 3, 5])
    answers = Answers(offsets, torch.tensor([0, 2, 4, 1, 3]), torch.zeros(5, dtype=torch.long), None, 5)
    tasks = torch.tensor([0, 1]).repeat(n_chains).unsqueeze(0)  # (1, 2 * n_chains)
    slots = answers.slots(tasks)
    gen = torch.Generator().manual_seed(4)
    state = torch.randint(0, 3, slots.workers.shape, generator=gen)
    gathered = GatheredNetwork(blocks, slots.workers, slots.mask)
    final, stats = DMALASampler(step_size=1.0, n_steps=40).sample(gathered.sampler_energy(), state, slots.mask, 3,
                                                                  gen)
    assert 0.2 < float(stats.acceptance_rate[0]) <= 1.0
    for task, workers in enumerate(task_workers):
        exact = _exact_slots(net, 3, workers)
        chains = final[0, task::2, :len(workers)].numpy()
        codes = (chains * (3 ** np.arange(len(workers))[::-1])).sum(1)
        counts = np.bincount(codes, minlength=3 ** len(workers)) / n_chains
        tv = 0.5 * sum(abs(counts[int("".join(map(str, s)), 3)] - p) for s, p in exact.items())
        assert tv < 0.04, (task, tv)  # sampling noise alone: about 0.015 (27 states) / 0.007 (9 states)
    # the padded third slot of the 2-answer task never changes
    assert torch.equal(final[0, 1::2, 2], state[0, 1::2, 2])


def test_the_missing_workers_term_stays_accurate_with_many_workers():
    """With 20,000 workers the summed-out term is O(d) large: the sparse path (sums over all workers in
    float64, rounded once) stays within 1e-4 of a float64 computation, closer than the dense float32 path."""
    d, k = 20000, 3
    net = DEEMNetwork(1, d, k, 0)
    net.initialise(torch.Generator().manual_seed(1))
    with torch.no_grad():
        net.visible_bias.add_(0.5)
    labels = np.full((4, d), -1)
    labels[:, :3] = [[0, 1, 2], [1, 1, 1], [2, 0, 2], [0, 0, 1]]
    x, mask = _dense_inputs(labels, None, 1, k)
    with torch.no_grad():
        dense_energy, dense_logits = net.free_energy_and_logits(x, mask)
        reference = DEEMNetwork(1, d, k, 0).double()
        reference.load_state_dict(net.state_dict())
        ref_energy, ref_logits = reference.double().free_energy_and_logits(x.double(), mask.double())
    energy, post = free_energy_of_tasks(net, Answers.from_dense(labels))
    ref_post = torch.softmax(ref_logits, -1)
    sparse_error = float((post - ref_post).abs().max())
    dense_error = float((torch.softmax(dense_logits, -1) - ref_post).abs().max())
    assert sparse_error < 1e-4 and sparse_error <= dense_error, (sparse_error, dense_error)
    assert float((energy - ref_energy).abs().max()) <= max(2e-3, float((dense_energy - ref_energy).abs().max()))


@pytest.mark.parametrize("layers", [0, 1])
def test_the_two_meanings_of_the_hidden_bias_give_the_same_model(layers):
    """with_bias converts the hidden bias (iRBM b <-> log class prior) without changing any energy or
    posterior, on dense and on sparse rows, and the Lemma 1 reading (confusion matrices, prior) with it."""
    labels, _ = _random_data(seed=70 + layers)
    x, mask = _dense_inputs(labels, None, 2)
    irbm = _random_network(layers, seed=71, scale=0.5)
    prior = irbm.with_bias("prior")
    assert prior.bias == "prior" and irbm.bias == "irbm"
    back = prior.with_bias("irbm")
    def same_model(net, inputs, masks):
        # the same distribution: equal posteriors, free energies equal up to one constant per run (log Z:
        # Definition 1 fixes the first class's bias at 0 in either meaning)
        energy, logits = net.free_energy_and_logits(inputs, masks)
        want_energy, want_logits = irbm.free_energy_and_logits(inputs, masks)
        torch.testing.assert_close(torch.softmax(logits, -1), torch.softmax(want_logits, -1), atol=1e-5, rtol=1e-5)
        shift = energy - want_energy
        torch.testing.assert_close(shift, shift[:, :1].expand_as(shift), atol=1e-4, rtol=1e-5)

    with torch.no_grad():
        for net in (prior, back):
            same_model(net, x, mask)
            full = torch.ones_like(mask)  # every worker answered (the dense shortcut's case too)
            same_model(net, one_hot_state(torch.as_tensor(labels).clamp_min(0), full[0], K).expand(2, -1, -1, -1),
                       full)
    for a, b in zip(prior.confusion_matrices(), irbm.confusion_matrices()):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(back.effective_irbm()[2], irbm.effective_irbm()[2], atol=1e-5, rtol=1e-5)
    # saved and loaded, the meaning travels with the weights; a state saved before it existed is an iRBM one
    restored = DEEMNetwork.from_state_dict(prior.state_dict())
    assert restored.bias == "prior"
    old_state = {k: v for k, v in irbm.state_dict().items() if k != "prior_bias"}
    assert DEEMNetwork.from_state_dict(old_state).bias == "irbm"


def test_with_thousands_of_workers_the_prior_bias_starts_at_majority_vote():
    """App. G.1's majority-vote start: with the iRBM bias the N(0, 0.01^2) noise of 20,000 missing workers'
    partitions adds up to a prior that overrules one-answer-apart votes; with the prior bias it cannot."""
    d, k, n = 20000, 3, 300
    rng = np.random.default_rng(0)
    labels = np.full((n, d), -1)
    for task in range(n):
        workers = rng.choice(d, 3, replace=False)
        labels[task, workers] = [task % k, task % k, (task + 1) % k]  # a 2-1 vote for class task % k
    answers = Answers.from_dense(labels)
    agree = {}
    for bias in ("irbm", "prior"):
        net = DEEMNetwork(1, d, k, 0, bias=bias)
        net.initialise(torch.Generator().manual_seed(1))
        _, post = free_energy_of_tasks(net, answers)
        agree[bias] = float((post[0].argmax(-1).numpy() == np.arange(n) % k).mean())
    assert agree["prior"] == 1.0
    assert agree["irbm"] < 0.9, agree


def test_ds_start_gives_ds_posteriors_on_sparse_data_with_the_prior_bias():
    from deem_core.data.annotations import AnnotationSet  # noqa: PLC0415
    from deem_core.methods.dawid_skene import fit_dawid_skene  # noqa: PLC0415

    labels, _ = _random_data(n=200, d=7, seed=81)
    data = AnnotationSet.from_dense(labels, classes=range(K))
    fit = fit_dawid_skene(data)
    net = DEEMNetwork(1, 7, K, 0, bias="prior")
    net.set_from_dawid_skene(torch.as_tensor(fit.confusion).float(), torch.as_tensor(fit.prior).float())
    _, post = free_energy_of_tasks(net, Answers.from_dense(labels))
    np.testing.assert_allclose(post[0].numpy(), fit.posterior, atol=1e-4)
    psi, prior = net.confusion_matrices()
    np.testing.assert_allclose(prior[0].numpy(), fit.prior, atol=1e-5)


def test_both_ways_of_finding_co_occurring_pairs_agree(monkeypatch):
    """The d x d map (small d) and the chunked sort (large d) give the same sorted keys."""
    import deem_core.model.sparse as sparse  # noqa: PLC0415

    rng = np.random.default_rng(7)
    n, d = 400, 60
    counts = rng.integers(1, 7, n)
    workers = np.concatenate([rng.choice(d, c, replace=False) for c in counts])
    offsets = np.concatenate([[0], np.cumsum(counts)])
    answers = sparse.Answers(torch.as_tensor(offsets), torch.as_tensor(workers), torch.zeros(len(workers),
                             dtype=torch.long), None, d)
    by_map = sparse.cooccurring_pairs(answers, chunk=50)
    monkeypatch.setattr(sparse, "PAIR_MAP_MAX_BYTES", 0)
    by_sort = sparse.cooccurring_pairs(answers, chunk=50)
    assert torch.equal(by_map, by_sort) and torch.all(by_map[1:] > by_map[:-1])
    expected = {int(i) * d + int(j) for t in range(n) for i in workers[offsets[t]:offsets[t + 1]]
                for j in workers[offsets[t]:offsets[t + 1]]} | {i * d + i for i in range(d)}
    assert set(by_map.tolist()) == expected


def test_the_pair_table_and_the_binary_search_find_the_same_blocks(monkeypatch):
    """A network storing some pairs finds blocks through a d x d table (small d) or a binary search (large d): the
    same blocks, the same stored/not-stored answer; the table follows new keys written into the network."""
    import deem_core.model.network as network_module  # noqa: PLC0415

    d = 9
    keys = torch.tensor(sorted({i * d + i for i in range(d)} | {1 * d + 4, 4 * d + 1, 2 * d + 7, 8 * d + 0}))
    net = DEEMNetwork(1, d, 3, 1, layout="blocks", pair_keys=keys)
    first, second = torch.meshgrid(torch.arange(d), torch.arange(d), indexing="ij")
    by_table = net.pair_index(first, second)
    monkeypatch.setattr(network_module, "PAIR_LOOKUP_MAX_BYTES", 0)
    by_search = net.pair_index(first, second)
    assert torch.equal(by_table[1], by_search[1])
    assert torch.equal(by_table[0][by_table[1]], by_search[0][by_search[1]])
    assert int(by_table[1].sum()) == keys.numel()
    monkeypatch.undo()
    other = keys.clone()
    where = int(torch.nonzero(keys == 8 * d + 0))
    other[where] = 8 * d + 3  # the same number of pairs, (8, 3) stored instead of (8, 0): written in place
    net.pair_keys.copy_(other)
    index, present = net.pair_index(torch.tensor([8, 8]), torch.tensor([0, 3]))
    assert present.tolist() == [False, True] and int(index[1]) == where
