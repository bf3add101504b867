"""The sparse training path (deem_core/model/sparse_training.py) trains the same model as the dense path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from deem_core.model.network import DEEMNetwork
from deem_core.model.sparse import Answers, cooccurring_pairs
from deem_core.model.sparse_training import train_answers
from deem_core.model.training import TrainingConfig, choose_path, labels_path, train_runs


def _labels(n_tasks, n_workers, n_classes, density, seed):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_classes, n_tasks)
    accuracy = rng.uniform(0.55, 0.9, n_workers)
    right = rng.random((n_tasks, n_workers)) < accuracy
    wrong = (truth[:, None] + rng.integers(1, n_classes, (n_tasks, n_workers))) % n_classes
    labels = np.where(right, truth[:, None], wrong).astype(np.int64)
    labels[rng.random((n_tasks, n_workers)) > density] = -1
    labels[np.arange(n_tasks), rng.integers(0, n_workers, n_tasks)] = truth  # every task has an answer
    return labels, truth


def _assert_same_training(dense, sparse, atol=1e-4):
    assert dense.status == sparse.status and dense.epochs_run == sparse.epochs_run
    for row_d, row_s in zip(dense.history, sparse.history):
        for key in ("positive_energy", "negative_energy", "energy_difference", "acceptance_rate",
                    "changed_fraction", "n_predicted_classes"):
            if isinstance(row_d[key], float) and math.isnan(row_d[key]):
                assert math.isnan(row_s[key])
            else:
                assert row_s[key] == pytest.approx(row_d[key], rel=1e-4, abs=atol), (row_d["epoch"], key)
    sparse_net = sparse.network.to_layout("matrix") if sparse.network.layout == "blocks" else sparse.network
    dense_net = dense.network
    if sparse.network.pair_keys is not None:  # compare the stored pairs only
        dense_net = dense_net.to_layout("blocks", sparse.network.pair_keys)
        sparse_net = sparse.network
    for (name, a), b in zip(dense_net.named_parameters(), sparse_net.parameters()):
        torch.testing.assert_close(b, a, atol=atol, rtol=1e-4, msg=name)


@pytest.mark.parametrize("layers", [0, 1, 2])
def test_sparse_path_trains_like_the_dense_path_without_sampler_noise(layers):
    """With no sampler steps the chains stay at the data, so both paths see the same batches and inputs:
    histories and parameters agree (two runs per batch, each with its own task order)."""
    labels, _ = _labels(300, 8, 3, 0.4, seed=layers)
    config = TrainingConfig(n_layers=layers, epochs=3, batch_size=64, sampler_steps=0, device="cpu")
    dense = train_runs(labels, 3, [0.05, 0.2], [0, 1], TrainingConfig(**{**config.__dict__, "path": "dense"}))
    sparse = train_runs(labels, 3, [0.05, 0.2], [0, 1],
                        TrainingConfig(**{**config.__dict__, "path": "sparse", "batching": "pad"}))
    assert sparse.network.layout == "blocks" and dense.network.layout == "matrix"
    _assert_same_training(dense, sparse)


def test_sparse_path_with_every_answer_present_reproduces_the_dense_sampler():
    """Every worker answers every task: the slots are the workers in order and the sampler draws the same
    numbers, so the whole training, sampler included, follows the dense path."""
    labels, _ = _labels(200, 5, 3, 1.0, seed=7)
    config = dict(n_layers=1, epochs=3, batch_size=50, device="cpu")
    dense = train_runs(labels, 3, [0.05], [3], TrainingConfig(**config, path="dense"))
    sparse = train_runs(labels, 3, [0.05], [3], TrainingConfig(**config, path="sparse", batching="pad"))
    assert dense.history[-1]["changed_fraction"] > 0.01  # the chains did move
    _assert_same_training(dense, sparse)


def test_sparse_path_with_momentum_gold_and_soft_labels_matches_the_dense_path():
    labels, truth = _labels(240, 7, 4, 0.5, seed=3)
    rng = np.random.default_rng(0)
    soft = rng.dirichlet(np.ones(4), size=labels.shape).astype(np.float32) * (labels >= 0)[..., None]
    gold = np.where(rng.random(240) < 0.3, truth, -1)
    config = dict(n_layers=1, epochs=3, batch_size=64, sampler_steps=0, momentum=0.5, device="cpu")
    kwargs = dict(soft=soft, gold=gold, supervised_weight=0.5)
    dense = train_runs(labels, 4, [0.02, 0.1], [1, 2], TrainingConfig(**config, path="dense"), **kwargs)
    sparse = train_runs(labels, 4, [0.02, 0.1], [1, 2], TrainingConfig(**config, path="sparse", batching="pad"),
                        **kwargs)
    _assert_same_training(dense, sparse)


def test_stored_pairs_train_exactly_like_all_pairs_on_the_training_tasks():
    labels, _ = _labels(300, 10, 3, 0.6, seed=5)
    labels[:150, 5:] = -1  # two groups of workers that never share a task
    labels[150:, :5] = -1
    labels[labels.max(1) < 0, 0] = 1
    answers = Answers.from_dense(labels)
    keys = cooccurring_pairs(answers)
    assert keys.numel() <= 60  # 2 x 25 pairs within the groups (+ a few from the re-filled tasks)
    config = TrainingConfig(n_layers=2, epochs=2, batch_size=64, sampler_steps=2, device="cpu")
    # the stored-pairs layout draws other initial noise: start both from the same weights
    start = DEEMNetwork(1, 10, 3, 2, layout="blocks")
    start.initialise(torch.Generator().manual_seed(9))
    full = train_answers(answers, 3, [0.05], [4], config, pair_keys=None, initial_network=start.to_layout("blocks"))
    assert config.batching == "auto"  # (bucketed here: the answer counts vary; both trainings see the same batches)
    stored = train_answers(answers, 3, [0.05], [4], config, pair_keys=keys, initial_network=start.to_layout("blocks"))
    assert full.history == [{**row, "seconds": full.history[i]["seconds"]} for i, row in enumerate(stored.history)]
    for layer in range(2):
        torch.testing.assert_close(full.network.layer_blocks(layer, keys), stored.network.layer_weights[layer].detach())
        # pairs that never share a task never moved from their start
        never = torch.ones(100, dtype=torch.bool)
        never[keys] = False
        torch.testing.assert_close(full.network.layer_blocks(layer)[:, never], start.layer_blocks(layer)[:, never])


def test_a_run_trains_the_same_alone_or_batched_on_the_sparse_path():
    labels, _ = _labels(300, 12, 3, 0.3, seed=11)
    config = TrainingConfig(n_layers=1, epochs=3, batch_size=64, device="cpu", path="sparse")
    alone = train_runs(labels, 3, [0.1], [3], config)
    batched = train_runs(labels, 3, [0.01, 0.1, 1.0], [5, 3, 3], config)
    for row_a, row_b in zip(alone.history, [row for row in batched.history if row["run"] == 1]):
        for key in ("positive_energy", "negative_energy", "acceptance_rate", "changed_fraction"):
            assert row_b[key] == pytest.approx(row_a[key], rel=1e-5, abs=1e-6), key
    for a, b in zip(alone.network.parameters(), batched.network.parameters()):
        torch.testing.assert_close(b[1:2], a, atol=1e-5, rtol=1e-5)


def test_divergent_run_is_frozen_on_the_sparse_path():
    labels, _ = _labels(150, 9, 3, 0.4, seed=4)
    result = train_runs(labels, 3, [0.01, 3e38], [0, 1],
                        TrainingConfig(n_layers=1, epochs=4, batch_size=64, device="cpu", path="sparse",
                                       batching="pad"))
    assert result.status == ["finished", "diverged"]
    assert all(torch.isfinite(p).all() for p in result.network.parameters())


def test_the_path_choice_follows_density():
    dense_labels, _ = _labels(50, 10, 3, 1.0, seed=0)
    sparse_labels, _ = _labels(50, 200, 3, 0.02, seed=0)
    assert labels_path(dense_labels, 3) == "dense"
    assert labels_path(sparse_labels, 3) == "sparse"
    assert choose_path(15, 10, 15) == "dense" and choose_path(2000, 3, 5, 10) == "sparse"
    with pytest.raises(ValueError, match="path"):
        labels_path(dense_labels, 3, "fast")


def test_bucketed_batches_group_tasks_by_answer_count_and_cover_every_task():
    from deem_core.model.sparse_training import SparseTaskData, choose_batching  # noqa: PLC0415

    labels, _ = _labels(3000, 40, 3, 0.12, seed=12)  # 1 to ~12 answers per task
    answers = Answers.from_dense(labels)
    assert choose_batching(answers.counts(), 3) == "bucket"
    assert choose_batching(torch.full((100,), 6), 3) == "pad"  # one answer count: nothing to gain
    data = SparseTaskData(answers, 3, torch.device("cpu"), batching="bucket")
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    order = torch.stack([torch.randperm(3000, generator=g) for g in gens])
    arranged = data.arrange(order, 256, [torch.Generator().manual_seed(s) for s in (1, 2)])
    counts = answers.counts()
    def padded_units(row):  # what padding every batch to its largest task costs
        return sum(len(batch) * int(counts[batch].max()) ** 2 for batch in row.split(256))

    for run in range(2):
        assert sorted(arranged[run].tolist()) == list(range(3000))
        assert padded_units(arranged[run]) < 0.7 * padded_units(order[run])
    # a bucketed run still trains the same alone or batched with other runs
    config = TrainingConfig(n_layers=1, epochs=2, batch_size=256, device="cpu", path="sparse", batching="bucket")
    alone = train_runs(labels, 3, [0.1], [3], config)
    batched = train_runs(labels, 3, [0.01, 0.1], [5, 3], config)
    for row_a, row_b in zip(alone.history, [row for row in batched.history if row["run"] == 1]):
        assert row_b["positive_energy"] == pytest.approx(row_a["positive_energy"], rel=1e-5, abs=1e-6)


def test_runs_trained_together_count_towards_storing_every_worker_pair(monkeypatch):
    """A sweep's runs share one storage choice: 8 learning rates on data whose one-run all-pairs layer fits the
    budget store only the co-occurring pairs (on 2,400 workers x 3 classes, 5,000 tasks, 4 runs: peak 1,946 ->
    371 MB), while one or two runs keep every pair; the size check counts the same way."""
    import deem_core.model.sizes as sizes  # noqa: PLC0415
    from deem_core.data.annotations import AnnotationSet  # noqa: PLC0415
    from deem_core.methods.sweep import run_sweep  # noqa: PLC0415
    from deem_core.model.engine import task_data  # noqa: PLC0415

    labels, _ = _labels(300, 200, 3, 0.02, seed=3)  # about 5 of 200 workers per task
    task, worker = np.nonzero(labels >= 0)
    data = AnnotationSet.from_long(
        __import__("pandas").DataFrame({"task": task, "worker": worker, "label": labels[task, worker]}))
    layer = 4 * (data.n_workers * data.n_classes) ** 2
    monkeypatch.setattr(sizes, "ALL_PAIRS_MAX_BYTES", 3 * layer)
    config = TrainingConfig(path="sparse")
    assert task_data(data, config, "cpu", n_runs=1).pair_keys is None
    assert task_data(data, config, "cpu", n_runs=3).pair_keys is None
    stored = task_data(data, config, "cpu", n_runs=4).pair_keys
    assert stored is not None and 0 < stored.numel() < data.n_workers ** 2
    def weights_per_run(runs: int) -> float:
        counts = np.diff(data.task_offsets)
        return sizes.estimate_training_bytes(data.n_tasks, data.n_workers, data.n_classes, data.n_answers,
                                             int(counts.max()), n_runs=runs, batch_size=64, path="sparse",
                                             sum_squared_answers=int((counts ** 2).sum()))["weights"] / runs

    assert weights_per_run(4) < weights_per_run(3)  # the size check counts the pairs the training stores
    swept = run_sweep(data, lrs=[0.01, 0.03, 0.1, 0.3], epochs=2, device="cpu")  # trains on the stored pairs
    assert swept.result.network.pair_keys is not None and torch.equal(swept.result.network.pair_keys, stored)
    assert set(swept.runs["status"]) == {"finished"} and len(swept.curves) == 4 * 2


def test_the_storage_keeps_only_co_occurring_pairs_when_they_are_few_and_the_layer_is_large(monkeypatch):
    """Above PAIRS_WORTH_BYTES of all-pairs layers the co-occurring pairs are stored when they are at most a third of
    all pairs (counted only then); below it every pair is kept (faster per epoch), and above ALL_PAIRS_MAX_BYTES only
    the co-occurring ones whatever their share."""
    import deem_core.model.sizes as sizes  # noqa: PLC0415
    import deem_core.model.sparse_training as sparse_training  # noqa: PLC0415
    from deem_core.data.annotations import AnnotationSet  # noqa: PLC0415
    from deem_core.model.engine import task_data  # noqa: PLC0415
    from deem_core.model.sizes import PAIRS_WORTH_BYTES  # noqa: PLC0415

    choose = sparse_training.choose_storage
    asked: list[int] = []

    def count(n: int):
        return lambda: asked.append(n) or n

    # 2,000 workers x 3 classes: one run's all-pairs layer is 144 MB (> 64 MB), two runs 288 MB (< 512 MB)
    assert choose(2000, 3, 1, 1, n_pairs=count(812_906)) == "pairs"  # 20% of the pairs co-occur
    assert choose(2000, 3, 1, 2, n_pairs=count(3_500_000)) == "all"  # 88% co-occur: no saving worth the time
    assert choose(2000, 3, 0, 1, n_pairs=count(10)) == "all"  # no layer, nothing stored
    assert choose(2000, 3, 1, 1) == "all"  # no count given: the all-pairs rule alone
    assert choose(500, 3, 1, 1, n_pairs=count(10)) == "all"  # 9 MB: memory not worth the time
    assert 4 * (500 * 3) ** 2 <= PAIRS_WORTH_BYTES
    assert choose(2400, 3, 1, 4, n_pairs=count(5_000_000)) == "pairs"  # 4 x 207 MB > 512 MB: always pairs
    assert asked == [812_906, 3_500_000]  # counted only where it decides

    labels, _ = _labels(300, 200, 3, 0.02, seed=3)  # about 5 of 200 workers per task: few pairs co-occur
    task, worker = np.nonzero(labels >= 0)
    data = AnnotationSet.from_long(
        __import__("pandas").DataFrame({"task": task, "worker": worker, "label": labels[task, worker]}))
    config = TrainingConfig(path="sparse")
    assert task_data(data, config, "cpu").pair_keys is None  # a 1.4 MB layer: every pair
    monkeypatch.setattr(sizes, "PAIRS_WORTH_BYTES", 1 << 20)
    stored = task_data(data, config, "cpu").pair_keys
    assert stored is not None and stored.numel() <= data.n_workers ** 2 / 3


def test_the_size_estimate_counts_the_co_occurring_pairs_when_training_is_bound_to_store_them(monkeypatch):
    """Between PAIRS_WORTH_BYTES and ALL_PAIRS_MAX_BYTES training stores the co-occurring pairs when they are few; when
    even their upper bound (each task's ordered pairs) is few, the estimate counts that bound, not every pair — and
    stays at least what the training holds (a 3,000-task long tail was refused a time estimate for 0.6 GiB)."""
    import deem_core.model.sizes as sizes  # noqa: PLC0415
    from deem_core.data.annotations import AnnotationSet  # noqa: PLC0415
    from deem_core.model.engine import check_training_size, task_data  # noqa: PLC0415

    labels, _ = _labels(400, 300, 3, 0.012, seed=5)  # about 3-4 of 300 workers per task
    task, worker = np.nonzero(labels >= 0)
    data = AnnotationSet.from_long(
        __import__("pandas").DataFrame({"task": task, "worker": worker, "label": labels[task, worker]}))
    layer = 4 * (data.n_workers * data.n_classes) ** 2
    # the all-pairs layer of 2 runs lies between the two thresholds
    monkeypatch.setattr(sizes, "PAIRS_WORTH_BYTES", layer)
    monkeypatch.setattr(sizes, "ALL_PAIRS_MAX_BYTES", 4 * layer)
    config = TrainingConfig(path="sparse")
    stored = task_data(data, config, "cpu", n_runs=2).pair_keys
    assert stored is not None and stored.numel() < data.n_workers ** 2 / 3
    estimate = check_training_size(data, config, 2, memory_bytes=1 << 62)
    weights_held = 2 * 4 * stored.numel() * data.n_classes ** 2  # the stored layer blocks of the two runs
    assert estimate >= weights_held
    monkeypatch.setattr(sizes, "PAIRS_WORTH_BYTES", 4 * layer)  # the estimate as it was: every pair below the cap
    every_pair = check_training_size(data, config, 2, memory_bytes=1 << 62)
    # the layer weights the estimate counts shrink from every pair to each task's ordered pairs plus each worker's own
    # (at least one float32 copy per run of the blocks dropped)
    counts = np.diff(data.task_offsets)
    bound = int((counts ** 2).sum()) + data.n_workers
    assert every_pair - estimate >= 2 * 4 * (data.n_workers ** 2 - bound) * data.n_classes ** 2


def _widely_answered(seed: int = 3, narrow: int = 60) -> np.ndarray:
    """``narrow`` tasks of 3 answers among 40 workers and one task every worker answered (a control question)."""
    labels, _ = _labels(narrow + 1, 40, 3, 0.0, seed)  # one answer a task
    rng = np.random.default_rng(seed)
    for t in range(narrow):
        labels[t, rng.choice(40, 3, replace=False)] = rng.integers(0, 3, 3)
    labels[narrow] = rng.integers(0, 3, 40)
    return labels


@pytest.mark.parametrize("soft, gold", [(False, False), (True, False), (False, True)])
def test_a_batch_of_every_task_is_computed_in_parts_and_takes_the_step_the_whole_batch_takes(monkeypatch, soft, gold):
    """One task answered by every worker padded every task of the batch to its width (the CrowdFlower weather-sentiment
    set: 300 tasks, one of 58 answers, the rest of 5-17, trained at 3 s an epoch, the default fit 315 s; in parts 7-15
    s). The parts' step is the whole batch's: with chains moved the same way in both (a sampler that shifts every
    answer to the next class), the parameters after one step agree, with hard or soft labels and with a supervised term
    on gold tasks."""
    from deem_core.model.sampler import SamplerStats
    from deem_core.model.sizes import width_parts
    from deem_core.model.sparse_training import PART_FIXED_UNITS, SparseTaskData
    from deem_core.model.training import batch_step, initialise_runs

    class Shift:  # deterministic: every answer slot's chain moves to the next class
        def sample(self, energy, state, mask, k, generators, widths):
            r = state.shape[0]
            moved = torch.where(mask > 0, (state + 1) % k, state)
            return moved, SamplerStats(acceptance_rate=torch.ones(r), changed_fraction=torch.ones(r))

    labels = _widely_answered(narrow=300)
    probabilities = np.random.default_rng(0).dirichlet(np.ones(3), size=labels.shape).astype(np.float32)
    gold_codes = np.r_[np.full(298, -1), 0, 1, 2] if gold else None
    config = TrainingConfig(n_layers=1, epochs=1, batch_size=1024, device="cpu", path="sparse")
    steps = []
    for whole in (False, True):
        data = SparseTaskData(Answers.from_dense(labels, soft=probabilities if soft else None), 3,
                              torch.device("cpu"), gold=gold_codes, n_layers=1, n_runs=2)
        state = initialise_runs(data, [0.5, 0.2], [0, 1], config, torch.device("cpu"))
        start = [p.detach().clone() for p in state.network.parameters()]
        batch = data.batch(torch.stack([torch.randperm(301, generator=torch.Generator().manual_seed(s))
                                        for s in (7, 8)]), with_gold=gold)
        if whole:
            monkeypatch.setattr(data, "parts", lambda b, momentum=0.0: [b])
        else:
            assert [p.size for p in data.parts(batch)] == [300, 1]
            assert [p.size for p in data.parts(batch, momentum=0.9)] == [301]
        batch_step(state, data, batch, Shift(), 1, 0.0, 1.0 if gold else 0.0)
        steps.append([p.detach().clone() for p in state.network.parameters()])
    moved = max(float((w - s0).abs().max()) for w, s0 in zip(steps[1], start))
    assert moved > 1e-3  # the step moves the parameters (chains that stay put make the loss and the step 0)
    for split, whole_step in zip(*steps):
        torch.testing.assert_close(split, whole_step, atol=1e-6, rtol=1e-5)
    assert width_parts(np.array([3] * 300 + [40]), 3, PART_FIXED_UNITS) == [(0, 300), (300, 301)]
    assert width_parts(np.array([3, 4, 5, 5]), 3) == [(0, 4)]  # two groups, but splitting saves less than half
    assert width_parts(np.array([0] + [2] * 200 + [40]), 3) == [(0, 201), (201, 202)]  # 0-2 answers: one group
    # a set where one more part costs more than the padding saves (1,000 tasks of 3 answers, one of 5)
    assert width_parts(np.array([3] * 1000 + [5]), 3, PART_FIXED_UNITS) == [(0, 1001)]


def test_the_memory_of_a_batch_of_every_task_is_counted_in_its_parts():
    from deem_core.model import sizes

    counts = np.array([5] * 300 + [58])
    shape = dict(n_tasks=301, n_workers=461, n_classes=5, n_answers=int(counts.sum()), max_answers=58,
                 path="sparse")
    whole = sizes.estimate_training_bytes(**shape)["batch"]
    parted = sizes.estimate_training_bytes(**shape, answer_counts=counts)["batch"]
    assert parted * 20 < whole
    assert sizes.estimate_training_bytes(**shape, answer_counts=counts, momentum=True)["batch"] == whole  # one batch
    many = np.array([5] * 3000 + [58])  # more tasks than a batch: batches are padded as before
    assert sizes.estimate_training_bytes(**{**shape, "n_tasks": 3001}, answer_counts=many)["batch"] == \
        sizes.estimate_training_bytes(**{**shape, "n_tasks": 3001})["batch"]


def test_the_free_energies_of_tasks_of_many_widths_come_back_in_the_order_asked():
    """The tasks are computed in order of their answer counts (the next test: each batch sized for its own widest);
    the outputs come back in the order of ``tasks``, repeats included, equal to one task at a time."""
    from deem_core.model import sparse

    labels = _widely_answered(5)
    answers = Answers.from_dense(labels)
    network = train_runs(labels, 3, [0.1, 0.3], [0, 1], TrainingConfig(n_layers=1, epochs=1, device="cpu",
                                                                      path="sparse")).network
    tasks = torch.tensor([60, 3, 0, 59, 17, 60, 1])
    energy, posterior = sparse.free_energy_of_tasks(network, answers, tasks)
    for i, t in enumerate(tasks.tolist()):
        alone_energy, alone_posterior = sparse.free_energy_of_tasks(network, answers, torch.tensor([t]))
        torch.testing.assert_close(energy[:, i], alone_energy[:, 0], atol=1e-4, rtol=1e-5)
        torch.testing.assert_close(posterior[:, i], alone_posterior[:, 0], atol=1e-5, rtol=1e-5)


def test_tasks_of_few_answers_are_not_cut_into_batches_sized_for_the_widest(monkeypatch):
    from deem_core.model import sparse

    labels = _widely_answered(5)
    answers = Answers.from_dense(labels)
    network = train_runs(labels, 3, [0.1], [0], TrainingConfig(n_layers=1, epochs=1, device="cpu",
                                                               path="sparse")).network
    per_wide_task = 4 * sparse.SCORE_COPIES * 40 * (9 * (1 + 40) + 3 * 3 + 1)  # the bytes one task of 40 answers gathers
    monkeypatch.setattr(sparse, "TASK_BATCH_BYTES", 2 * per_wide_task)
    built = []
    real = sparse.GatheredNetwork

    class Counted(real):
        def __init__(self, *args, **kwargs):
            built.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(sparse, "GatheredNetwork", Counted)
    sparse.free_energy_of_tasks(network, answers)
    assert len(built) == 2  # the 60 tasks of 3 answers, then the one of 40 (sized for it: 31 batches)


def test_the_memory_estimate_of_a_batch_in_parts_holds_the_whole_padded_batch_built_first():
    """The training builds the whole batch, padded to its widest task, before it cuts it into parts, and keeps it
    through the step: the estimate counted only the parts (11.4 MB beside 16.4 MB of padded inputs for 1,023 tasks of
    2 answers and one answered by all 400 workers; a reader's check)."""
    from deem_core.model import sizes
    from deem_core.model.sparse_training import SparseTaskData

    rng = np.random.default_rng(1)
    labels = np.full((1024, 400), -1, dtype=np.int64)
    for t in range(1023):
        labels[t, rng.choice(400, 2, replace=False)] = rng.integers(0, 2, 2)
    labels[1023] = rng.integers(0, 2, 400)
    answers = Answers.from_dense(labels)
    data = SparseTaskData(answers, 2, torch.device("cpu"), n_layers=1, n_runs=2)
    batch = data.batch(torch.stack([torch.arange(1024)] * 2), with_gold=False)
    assert len(data.parts(batch)) == 2
    built = sum(t.numel() * t.element_size() for t in (batch.positive, batch.mask, batch.mask_fm, batch.workers,
                                                         batch.answer, batch.labels))
    counts = (labels >= 0).sum(1)
    estimate = sizes.estimate_training_bytes(1024, 400, 2, int(counts.sum()), 400, n_layers=1, n_runs=2,
                                             path="sparse", answer_counts=counts)
    assert estimate["batch"] >= built


def test_dense_task_outputs_are_computed_in_batches_within_the_scoring_bound(monkeypatch):
    """The held-out answers of 200 workers x 60 classes were scored in batches of 8,192 rows, their one-hot inputs and
    each layer's outputs alive at once: +673 MiB beside a training estimated at 237 (attack round 67). The dense path
    takes as many rows a batch as TASK_BATCH_BYTES holds; the outputs are those of one batch of all."""
    from deem_core import AnnotationSet
    from deem_core.model import engine

    rng = np.random.default_rng(0)
    labels = rng.integers(4, size=(300, 12))
    data = AnnotationSet.from_dense(labels, classes=range(4))
    config = TrainingConfig(n_layers=1, epochs=1, device="cpu", path="dense")
    network = engine.train_annotations(data, [0.1, 0.3], [0, 1], config).network
    assert network.layout != "blocks"
    whole = engine.task_outputs(network, data)
    per_row = 4 * engine.SCORE_COPIES * 2 * 12 * 4 * 2
    monkeypatch.setattr(engine, "TASK_BATCH_BYTES", 50 * per_row)
    calls = []
    real = type(network).free_energy_and_logits

    def counted(self, x, mask):
        calls.append(x.shape[1])
        return real(self, x, mask)

    monkeypatch.setattr(type(network), "free_energy_and_logits", counted)
    parts = engine.task_outputs(network, data)
    assert calls == [50] * 6, calls
    for a, b in zip(whole, parts):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
