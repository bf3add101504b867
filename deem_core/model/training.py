"""Training loop for R batched DEEM runs (different learning rates and/or seeds) at once.

Algorithm 1 of the paper: per mini-batch, draw negative samples with DMALA from persistent chains
(one chain per task, started at the data and keeping that task's missing pattern), compute the loss
``mean F(x_data) - mean F(x_neg)`` per run and take one SGD step per run with that run's learning
rate. The iRBM's identifiability constants never move (they are masked in, see ``network.py``).

The loop in named steps (:func:`train_on`):

* :func:`initialise_runs` -> :class:`RunState` (network, random streams, persistent chains);
* per epoch :func:`epoch_order`, then per batch :func:`batch_step` (sampling, positive/negative energies,
  supervised term, divergence freeze, SGD update), which returns per-run :class:`BatchStats`;
* :func:`epoch_end` (dead units, parameter check, log rows) and :func:`notify` (callbacks).

The loop reads the answers only through a :class:`TaskData` object (batches of positive inputs and
masks, the chains' layout); :class:`DenseTaskData` is the (n, d) code-matrix implementation and
:func:`train_runs` the entry point on a code matrix. Training reports only through callbacks; nothing here
prints.
"""

from __future__ import annotations

import math
import threading
from contextlib import contextmanager
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol, Sequence

import numpy as np
import torch

from deem_core.data.text import counted
from deem_core.model.history import HISTORY_COLUMNS, History
from deem_core.model.network import DEEMNetwork
from deem_core.model.sampler import DMALASampler, one_hot_fm, one_hot_state

__all__ = [
    "Batch", "BatchStats", "Callback", "DenseEvaluator", "DenseTaskData", "EnergyTerms", "Evaluator", "HISTORY_COLUMNS",
    "MAX_EPOCHS", "MAX_LAYERS", "MAX_LR", "MAX_SAMPLER_STEPS", "MAX_SEEDS", "RunState", "TaskData", "TrainingConfig",
    "TrainingResult", "batch_step", "choose_path", "budget_text", "check_training_bounds", "cpu_threads", "epoch_end",
    "epochs_within_budget",
    "initialise_runs", "labels_path", "predict_hidden", "resolve_device", "train_on", "train_runs",
]

#: the largest learning rate accepted anywhere (estimators, sweeps, the command line, the pages). The parameters are
#: float32: a step of 1e39 is infinite there and a run with the majority-vote start wrote every label 0 with
#: probabilities 0 (attack round, ninth session); the default sweep grid ends at 3
MAX_LR = 100.0
#: the most multinomial layers before the iRBM anywhere (estimators, sweeps, the command line, the pages; the paper's
#: networks have up to 2, the automatic choice tries 0, 1 and 2)
MAX_LAYERS = 6
#: the most DMALA steps per mini-batch anywhere (default 5): 100,000,000 ran for minutes without finishing one epoch
#: or saying a word (the command line took any number)
MAX_SAMPLER_STEPS = 1000


#: the most epochs anywhere (the pages offer up to 5,000; the paper trains 100): 10**12 epochs with no update budget
#: held a job's queue until the server's time limit (attack round 13)
MAX_EPOCHS = 100_000
#: the most seeds trained together anywhere: 100,000 seeds of 30 tasks from the command line ran past a minute, the
#: memory check refusing only far more (attack round 42)
MAX_SEEDS = 16


def check_training_bounds(*, n_layers: Any = None, sampler_steps: Any = None, epochs: Any = None,
                          n_seeds: Any = None) -> None:
    """ValueError unless each value given is a whole number within its bound: ``n_layers`` 0 to :data:`MAX_LAYERS`,
    ``sampler_steps`` 0 to :data:`MAX_SAMPLER_STEPS`, ``epochs`` 1 to :data:`MAX_EPOCHS`, ``n_seeds`` 1 to
    :data:`MAX_SEEDS` (compared as ``int``: an int subclass cannot answer the comparison itself). None: not checked."""
    for name, value, least, most in (("n_layers", n_layers, 0, MAX_LAYERS),
                                     ("sampler_steps", sampler_steps, 0, MAX_SAMPLER_STEPS),
                                     ("epochs", epochs, 1, MAX_EPOCHS), ("n_seeds", n_seeds, 1, MAX_SEEDS)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not least <= int(value) <= most:
            raise ValueError(f"{name} must be a whole number from {least} to {most:,}, got {value!r}")



class Callback(Protocol):
    """skorch-style hook. ``on_epoch_end`` returns True to stop training after this epoch. A callback may also
    have ``on_train_begin(network)``, called once with the network being trained (after its initialisation)."""

    def on_epoch_end(self, epoch: int, logs: list[dict[str, Any]]) -> bool | None: ...


def device_name(device: str | torch.device) -> str:
    """How a device is named to a user: ``"GPU"`` for CUDA, else ``"CPU"``."""
    return "GPU" if torch.device(device).type == "cuda" else "CPU"


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/None -> CUDA when available, else CPU. ``"cuda"`` without a GPU raises ValueError."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but no CUDA GPU is available (use --device cpu or auto)")
    return device


def epochs_within_budget(n_tasks: int, epochs: int, batch_size: int, max_updates: int | None) -> int:
    """The epochs a run trains: ``epochs``, or fewer when that many passes over ``n_tasks`` tasks in mini-batches of
    ``batch_size`` would take more than ``max_updates`` updates (always at least one epoch; ``None``: no budget).

    Stochastic gradient descent converges in updates, not in passes over the data: a pass over 1,000,000 tasks
    takes 977 updates of 1,024 tasks, one over 10,000 tasks 10 (the measurements behind the default budget:
    benchmarks/results/scale_deem.txt)."""
    if max_updates is None:
        return int(epochs)
    return max(1, min(int(epochs), int(max_updates) // _updates_per_epoch(n_tasks, batch_size)))


def _updates_per_epoch(n_tasks: int, batch_size: int) -> int:
    return max(1, math.ceil(int(n_tasks) / max(1, int(batch_size))))


def budget_text(n_tasks: int, epochs: int, batch_size: int, max_updates: int | None) -> str | None:
    """What the update budget does on ``n_tasks`` tasks, in one sentence (None when it cuts no epoch)."""
    planned = epochs_within_budget(n_tasks, epochs, batch_size, max_updates)
    if max_updates is None or planned >= epochs:
        return None
    per_epoch = _updates_per_epoch(n_tasks, batch_size)
    if per_epoch > max_updates:
        return (f"{n_tasks:,} tasks take {per_epoch:,} updates (mini-batches) per epoch, more than the budget of "
                f"{max_updates:,} updates per model run: 1 of the {epochs:,} epochs trains (a run trains at least one)")
    return (f"{n_tasks:,} tasks take {per_epoch:,} updates (mini-batches) per epoch: {planned:,} of the {epochs:,} "
            f"epochs fit in the budget of {max_updates:,} updates per model run")


@dataclass
class TrainingConfig:
    """Hyperparameters shared by all runs of one batched training."""

    n_layers: int = 1
    epochs: int = 100
    batch_size: int = 1024
    sampler_steps: int = 5
    step_size: float = 1.0  # DMALA alpha
    momentum: float = 0.0
    layer_noise: float = 0.005
    irbm_noise: float = 0.01
    device: str = "auto"
    #: intra-op threads on the CPU while training (None = leave torch's setting). DEEM runs many small
    #: operations per batch, where a second thread mostly waits: measured on the 2-core machine under load,
    #: one epoch of 20,000 x 15 x 10 took 5.3 s wall / 2.8 s CPU with 1 thread and 32 s / 21.5 s with 2.
    cpu_threads: int | None = 1
    #: how the batches are evaluated: "dense" (every worker of every task, feature-major matrix products),
    #: "sparse" (each task's own answers only, deem_core.model.sparse_training) or "auto" (the measured
    #: crossover, :func:`choose_path`)
    path: str = "auto"
    #: sparse path only: "pad" (random batches, each padded to its largest task), "bucket" (each batch drawn
    #: from tasks of one answer count, the batches in random order) or "auto" (bucket when padding would
    #: cost more than 20% extra, :func:`deem_core.model.sparse_training.choose_batching`)
    batching: str = "auto"

    def __post_init__(self) -> None:
        check_training_bounds(n_layers=self.n_layers, sampler_steps=self.sampler_steps, epochs=self.epochs)


@dataclass
class TrainingResult:
    """What a batched training leaves behind."""

    network: DEEMNetwork
    history: History  # rows with HISTORY_COLUMNS (a list of such dicts is taken as one)
    status: list[str]  # per run: "finished", "stopped", "cancelled", "diverged"
    messages: list[str]  # per run: human explanation ('' when finished normally)
    epochs_run: int
    seconds: float
    lrs: list[float]
    seeds: list[int]

    def __post_init__(self) -> None:
        self.history = History.of(self.history)

    def select_runs(self, picked: Sequence[int]) -> "TrainingResult":
        """The same result restricted to the runs at ``picked`` (renumbered 0..len-1, in that order)."""
        network = self.network.select(picked)
        new_run = {old: new for new, old in enumerate(picked)}
        history = self.history.select_runs(new_run)
        return TrainingResult(network=network, history=history, status=[self.status[i] for i in picked],
                              messages=[self.messages[i] for i in picked], epochs_run=self.epochs_run,
                              seconds=self.seconds, lrs=[self.lrs[i] for i in picked],
                              seeds=[self.seeds[i] for i in picked])


def _generator(seed: int, device: torch.device) -> torch.Generator:
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return gen


def _snapshot(network: DEEMNetwork) -> list[torch.Tensor]:
    return [p.detach().clone() for p in network.parameters()]


@torch.no_grad()
def _finite_runs(param: torch.Tensor, n_runs: int) -> torch.Tensor:
    """(R,) bool: every entry of the run's slice of ``param`` is finite. A finite sum proves it (a NaN or an
    infinity makes the sum non-finite) at a fraction of the cost of ``isfinite`` on a large layer; only a
    non-finite sum (which finite values can also reach by overflow) is checked entry by entry."""
    flat = param.reshape(n_runs, -1)
    finite = torch.isfinite(flat.sum(dim=1))
    if not bool(finite.all()):
        finite = torch.isfinite(flat).all(dim=1)
    return finite


@torch.no_grad()
def _restore_runs(network: DEEMNetwork, snapshot: list[torch.Tensor], runs: torch.Tensor) -> None:
    """Copy the snapshot back into the parameters of the runs flagged in ``runs`` (R,) bool."""
    for param, saved in zip(network.parameters(), snapshot):
        keep = runs.view(-1, *([1] * (param.dim() - 1)))
        param.copy_(torch.where(keep, saved, param))


@torch.no_grad()
def predict_hidden(network: DEEMNetwork, labels: torch.Tensor, mask: torch.Tensor, soft: torch.Tensor | None,
                   batch_size: int = 8192) -> torch.Tensor:
    """Posterior p(h | x) for every task and run in hidden-unit order: (R, n, K)."""
    r, k = network.n_runs, network.n_classes
    chunks = []
    for start in range(0, labels.shape[0], batch_size):
        sl = slice(start, start + batch_size)
        m = mask[sl].unsqueeze(0).expand(r, -1, -1)
        x = soft[sl] if soft is not None else one_hot_state(labels[sl], mask[sl], k)
        chunks.append(network.posterior(x.unsqueeze(0).expand(r, -1, -1, -1), m))
    return torch.cat(chunks, dim=1)


@contextmanager
def cpu_threads(device: torch.device, threads: int | None):
    """Use ``threads`` intra-op threads for the duration (CPU only), then restore the previous count."""
    if device.type != "cpu" or not threads:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# ---------------------------------------------------------------------------------------------- the data seam
@dataclass
class Batch:
    """One mini-batch as the batch step sees it (every run draws its own tasks: ``index`` is (R, b)).

    ``positive`` (R, d, K, b) feature-major positive inputs (one-hot codes or soft labels, zero where missing);
    ``mask`` (R, b, d) float observed mask, ``mask_fm`` its (R, d, b) feature-major view; ``gold`` (R, b)
    class codes, -1 where unknown (None without a supervised term).
    """

    index: torch.Tensor
    positive: torch.Tensor
    mask: torch.Tensor
    mask_fm: torch.Tensor
    gold: torch.Tensor | None
    #: per run, how many leading columns of the worker axis its tasks use (answer slots padded to the batch's
    #: largest task); None = all. The sampler draws only those, so batch-mates do not change a run's draws.
    widths: list[int] | None = None

    @property
    def size(self) -> int:
        return int(self.index.shape[1])


class TaskData(Protocol):
    """What the training loop needs from the answers: batches of positive inputs and the persistent chains.

    The loop never indexes the answers itself: a data layout (dense code matrix, sparse answer arrays)
    implements this protocol and the loop trains on it unchanged.
    """

    n_tasks: int
    n_workers: int
    n_classes: int
    #: every worker answered every task: the missing-unit terms of the energy can be skipped
    all_observed: bool
    #: at least one task has a gold label (the supervised term has something to fit)
    has_gold: bool

    def batch(self, index: torch.Tensor, with_gold: bool) -> Batch:
        """The :class:`Batch` of the tasks ``index`` (R, b) (one row of task positions per run)."""
        ...

    def network_spec(self) -> dict:
        """``layout``, ``pair_keys`` and ``bias`` of the network this data trains (see :class:`DEEMNetwork`)."""
        ...

    def evaluator(self, network: DEEMNetwork, batch: Batch) -> "Evaluator":
        """The network evaluated on one batch (the sampler's energy, the loss, the update)."""
        ...

    def new_chains(self, n_runs: int) -> torch.Tensor:
        """Persistent negative chains of ``n_runs`` runs, started at the data."""
        ...

    def chain_states(self, chains: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The chains of the batch's tasks as the sampler takes them: (R, b, d) class codes."""
        ...

    def store_chain_states(self, chains: torch.Tensor, batch: Batch, states: torch.Tensor) -> None:
        """Write the sampler's new (R, b, d) states back into ``chains``."""
        ...


@dataclass
class EnergyTerms:
    """The energies of one batch: ``loss`` (R,) ``mean F(positive) - mean F(negative)`` (differentiable);
    ``positive_energy``/``negative_energy`` (R,) the two means as reported (detached); ``logits`` (R, K, b)
    hidden logits of the positive inputs."""

    loss: torch.Tensor
    positive_energy: torch.Tensor
    negative_energy: torch.Tensor
    logits: torch.Tensor


class Evaluator(Protocol):
    """The network on one batch, as the batch step uses it."""

    def sampler_energy(self) -> Callable: ...

    def energies(self, batch: Batch, negative_states: torch.Tensor) -> EnergyTerms: ...

    def update(self, state: "RunState", momentum: float) -> None: ...


class DenseEvaluator:
    """Every worker of every task in the feature-major matrix products (``layout="matrix"``)."""

    def __init__(self, network: DEEMNetwork, all_observed: bool):
        self.network, self.all_observed = network, all_observed

    def sampler_energy(self):
        return self.network.sampler_energy(self.all_observed)

    def energies(self, batch: Batch, negative_states: torch.Tensor) -> EnergyTerms:
        # positive and negative samples in one feature-major pass: (R, d, K, 2b)
        negative = one_hot_fm(negative_states.transpose(1, 2), batch.mask_fm, self.network.n_classes)
        mask = None if self.all_observed else torch.cat([batch.mask_fm, batch.mask_fm], dim=-1)
        energy, logits = self.network.free_energy_and_logits_fm(torch.cat([batch.positive, negative], dim=-1), mask)
        b = batch.size
        energy_pos = energy[:, :b].mean(1)  # (R,)
        energy_neg = energy[:, b:].mean(1)  # (R,)
        return EnergyTerms(loss=energy_pos - energy_neg, positive_energy=energy_pos.detach(),
                           negative_energy=energy_neg.detach(), logits=logits[:, :, :b])

    def update(self, state: "RunState", momentum: float) -> None:
        sgd_update(state, momentum)


class DenseTaskData:
    """Answers as an (n, d) code matrix (-1 = missing), optional (n, d, K) soft labels and (n,) gold codes.

    Negative chains are one (R, n, d) code tensor started at the data; a chain keeps its task's missing
    pattern (the sampler never moves a missing worker).
    """

    def __init__(self, labels: np.ndarray, n_classes: int, device: torch.device, soft: np.ndarray | None = None,
                 gold: np.ndarray | None = None):
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.long, device=device)
        self.n_tasks, self.n_workers = (int(n) for n in self.labels.shape)
        self.n_classes = int(n_classes)
        self.mask = (self.labels >= 0).float()  # (n, d)
        self.all_observed = bool(self.mask.all())
        self.soft = torch.as_tensor(soft, dtype=torch.float32, device=device) if soft is not None else None
        self.has_gold = gold is not None and bool((np.asarray(gold) >= 0).any())
        self.gold = torch.as_tensor(np.asarray(gold), dtype=torch.long, device=device) if self.has_gold else None

    def batch(self, index: torch.Tensor, with_gold: bool) -> Batch:
        mask = self.mask[index]  # (R, b, d)
        mask_fm = mask.transpose(1, 2)  # (R, d, b)
        if self.soft is not None:
            positive = self.soft[index].permute(0, 2, 3, 1)
        else:
            positive = one_hot_fm(self.labels[index].transpose(1, 2), mask_fm, self.n_classes)
        gold = self.gold[index] if with_gold and self.gold is not None else None
        return Batch(index=index, positive=positive, mask=mask, mask_fm=mask_fm, gold=gold)

    def network_spec(self) -> dict:
        # the paper's iRBM bias when every worker answered every task, the class prior otherwise (network.py)
        return {"layout": "matrix", "pair_keys": None, "bias": "irbm" if self.all_observed else "prior"}

    def evaluator(self, network: DEEMNetwork, batch: Batch) -> DenseEvaluator:
        return DenseEvaluator(network, self.all_observed)

    def new_chains(self, n_runs: int) -> torch.Tensor:
        return self.labels.clamp_min(0).unsqueeze(0).repeat(n_runs, 1, 1)  # (R, n, d)

    def chain_states(self, chains: torch.Tensor, batch: Batch) -> torch.Tensor:
        return chains.gather(1, batch.index.unsqueeze(-1).expand(-1, -1, self.n_workers))

    def store_chain_states(self, chains: torch.Tensor, batch: Batch, states: torch.Tensor) -> None:
        chains.scatter_(1, batch.index.unsqueeze(-1).expand(-1, -1, self.n_workers), states)


# ---------------------------------------------------------------------------------------------- the R runs
@dataclass
class RunState:
    """The R runs while they train: their network, learning rates, random streams, chains and status."""

    network: DEEMNetwork
    lrs: torch.Tensor  # (R,)
    run_generators: list[torch.Generator]  # initialisation and the per-epoch task order
    sampler_generators: list[torch.Generator]  # the sampler's draws
    chains: torch.Tensor  # persistent negative chains, as the data object lays them out
    momentum_buffers: list[torch.Tensor | None]  # one per parameter, None without momentum
    active: torch.Tensor  # (R,) bool: not diverged
    status: list[str]
    messages: list[str]
    snapshot: list[torch.Tensor]  # parameters at the end of the last good epoch

    @property
    def n_runs(self) -> int:
        return int(self.lrs.shape[0])

    def freeze_diverged(self, runs: torch.Tensor, message: str) -> None:
        """Restore the runs flagged in ``runs`` (R,) to the last epoch end and stop training them."""
        if not bool(runs.any()):
            return
        _restore_runs(self.network, self.snapshot, runs)
        for run in torch.nonzero(runs).flatten().tolist():
            self.status[run] = "diverged"
            self.messages[run] = message


@dataclass
class BatchStats:
    """Per-run statistics of one batch step (diverged runs contribute 0 energy)."""

    positive_energy: torch.Tensor  # (R,)
    negative_energy: torch.Tensor  # (R,)
    acceptance_rate: torch.Tensor  # (R,)
    changed_fraction: torch.Tensor  # (R,)
    predicted_counts: torch.Tensor  # (R, K) tasks of the batch per most probable hidden unit
    tasks: int = 1  # the batch's tasks: its weight in the epoch's means


class EpochTotals:
    """Sums of the batch statistics over one epoch."""

    def __init__(self, n_runs: int, n_classes: int, device: torch.device):
        self.n_runs, self.device = n_runs, device
        self.sums: torch.Tensor | None = None  # pos, neg, acceptance, changed, tasks
        self.dtype = torch.float32 if torch.device(device).type == "mps" else torch.float64
        self.batches = 0
        self.predicted_counts = torch.zeros(n_runs, n_classes, device=device)

    @torch.no_grad()
    def add(self, stats: BatchStats) -> None:
        if self.sums is None:  # float64: a diverging run's energies near float32's largest, times a batch's tasks,
            # overflowed to inf (and its energy difference to NaN); float32 on a device without float64 (Apple's MPS)
            self.sums = torch.zeros(5, self.n_runs, device=self.device, dtype=self.dtype)
        self.predicted_counts += stats.predicted_counts
        # each batch weighted by its tasks: the epoch's means are over its tasks, each once (an unweighted mean of a
        # 1,024-task and a 476-task batch jumped between 2.76 and 2.96 nats from epoch to epoch at any learning rate,
        # as the tasks fell into the batches, and the sweep's verdicts read that; walkthrough 123's Toloka pool)
        weight = float(stats.tasks)
        self.sums[0] += weight * stats.positive_energy.to(self.dtype)
        self.sums[1] += weight * stats.negative_energy.to(self.dtype)
        self.sums[2] += weight * stats.acceptance_rate.to(self.dtype)
        self.sums[3] += weight * stats.changed_fraction.to(self.dtype)
        self.sums[4] += weight
        self.batches += 1

    @property
    def n_batches(self) -> int:
        return self.batches

    def means(self) -> np.ndarray:
        """(4, R): mean positive energy, negative energy, acceptance rate, changed fraction (over the epoch's tasks)."""
        if self.sums is None:
            return np.zeros((4, self.n_runs), dtype=np.float32)
        return (self.sums[:4] / self.sums[4].clamp_min(1)).cpu().numpy()


def initialise_runs(data: TaskData, lrs: Sequence[float], seeds: Sequence[int], config: TrainingConfig,
                    device: torch.device, initial_network: DEEMNetwork | None = None) -> RunState:
    """Network (App. G.1 majority-vote start per run from its own seed, unless ``initial_network`` is given),
    random streams and persistent chains of R = len(lrs) runs."""
    r = len(lrs)
    run_gens = [_generator(s, device) for s in seeds]
    # one sampler stream per run: a run trains the same alone or batched with other runs
    sampler_gens = [_generator(int(s) * 7919 + 17, device) for s in seeds]
    spec = data.network_spec()
    if initial_network is None:
        network = DEEMNetwork(r, data.n_workers, data.n_classes, config.n_layers, **spec).to(device)
        # one initialisation per run from its own seed, so a run does not depend on its batch-mates
        if r == 1:
            network.initialise(run_gens[0], config.layer_noise, config.irbm_noise)
        else:
            single = network.like(1)  # one scratch run at a time: no second copy of every run's weights
            with torch.no_grad():
                for idx in range(r):
                    single.initialise(run_gens[idx], config.layer_noise, config.irbm_noise)
                    for target, source in zip(network.parameters(), single.parameters()):
                        target[idx].copy_(source[0])
            del single
    else:
        network = initial_network.to(device)
        pair_keys = spec["pair_keys"]
        same_pairs = (pair_keys is None) == (network.pair_keys is None) and (
            pair_keys is None or torch.equal(pair_keys.to(device), network.pair_keys))
        if network.layout != spec["layout"] or not same_pairs:
            network = network.to_layout(spec["layout"], pair_keys)
        if network.bias != spec["bias"]:
            network = network.with_bias(spec["bias"])
    return RunState(
        network=network, lrs=torch.as_tensor(list(lrs), dtype=torch.float32, device=device),
        run_generators=run_gens, sampler_generators=sampler_gens, chains=data.new_chains(r),
        momentum_buffers=[torch.zeros_like(p) if config.momentum else None for p in network.parameters()],
        active=torch.ones(r, dtype=torch.bool, device=device), status=["running"] * r, messages=[""] * r,
        snapshot=_snapshot(network))


def epoch_order(state: RunState, n_tasks: int) -> torch.Tensor:
    """This epoch's task order of every run, from the run's own stream: (R, n)."""
    device = state.lrs.device
    return torch.stack([torch.randperm(n_tasks, generator=g, device=device) for g in state.run_generators])


def supervised_sums(logits: torch.Tensor, gold: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross-entropy of p(h | x) against the gold codes of a batch's gold tasks and how many gold tasks
    there are, per run: (R,), (R,); the supervised term is their quotient (0 without gold tasks).

    logits (R, K, b) hidden logits of the positive inputs; gold (R, b), -1 = unknown (hidden unit m is read
    as class m, as both initialisations make it).
    """
    known = (gold >= 0).float()
    log_post = torch.log_softmax(logits, dim=1)  # (R, K, b)
    nll = -log_post.gather(1, gold.clamp_min(0).unsqueeze(1)).squeeze(1)
    return (nll * known).sum(1), known.sum(1)


@torch.no_grad()
def sgd_update(state: RunState, momentum: float) -> None:
    """One SGD step per run with its own learning rate; diverged runs do not move."""
    active = state.active
    for param, buf in zip(state.network.parameters(), state.momentum_buffers):
        if param.grad is None:  # the sparse path's layer weights: updated from their gathered blocks
            continue
        # in place on the gradient (zeroed before the next backward): no temporary as large as the weights
        grad = torch.nan_to_num_(param.grad, nan=0.0, posinf=0.0, neginf=0.0)
        shape = (-1,) + (1,) * (param.dim() - 1)
        grad.mul_(active.view(shape))
        if momentum:
            buf.mul_(momentum).add_(grad)
            grad = buf
        param.addcmul_(state.lrs.view(shape), grad, value=-1)


def batch_step(state: RunState, data: TaskData, batch: Batch, sampler: DMALASampler, epoch: int,
               momentum: float = 0.0, supervised_weight: float = 0.0) -> BatchStats:
    """Algorithm 1 on one batch for every run: move the batch's chains with DMALA, loss
    ``mean F(positive) - mean F(negative)`` (+ the supervised term), freeze runs whose loss is not finite,
    one SGD step. Returns the batch's per-run statistics.

    A layout may compute one batch in parts (``data.parts``: the sparse path's tasks of very different answer
    counts, so that a few widely answered tasks do not pad every task of the batch to their width): each part's
    chains move and its energies are read, the loss is the batch's mean over all parts, and the one SGD step is
    taken after every part's gradient is collected (the same step as the whole batch's)."""
    network, r, k = state.network, state.n_runs, data.n_classes
    parts = data.parts(batch, momentum) if hasattr(data, "parts") else [batch]
    b = batch.size
    models = []
    loss_per_run = energy_pos = energy_neg = acceptance = changed = 0.0
    predicted = None
    gold_nll, gold_known = 0.0, 0.0
    for part in parts:
        model = data.evaluator(network, part)
        chain_state = data.chain_states(state.chains, part)
        chain_state, sampler_stats = sampler.sample(model.sampler_energy(), chain_state, part.mask,
                                                    k, state.sampler_generators, part.widths)
        data.store_chain_states(state.chains, part, chain_state)
        terms = model.energies(part, chain_state)
        share = part.size / b
        loss_per_run = loss_per_run + share * terms.loss
        energy_pos = energy_pos + share * terms.positive_energy
        energy_neg = energy_neg + share * terms.negative_energy
        acceptance = acceptance + share * sampler_stats.acceptance_rate
        # (a per-slot rate: weighted by the part's observed answer slots, as the acceptance by its tasks)
        slots = part.mask.sum((1, 2)) / batch.mask.sum((1, 2)).clamp_min(1)
        changed = changed + slots * sampler_stats.changed_fraction
        logits = terms.logits
        with torch.no_grad():  # classes the model predicts on this epoch's data (dead-unit check)
            counts = torch.zeros(r, k, device=logits.device).scatter_add_(
                1, logits.argmax(1), torch.ones(r, part.size, device=logits.device))
        predicted = counts if predicted is None else predicted + counts
        if part.gold is not None:
            nll, known = supervised_sums(logits, part.gold)
            gold_nll, gold_known = gold_nll + nll, gold_known + known
        models.append(model)
    if batch.gold is not None:
        loss_per_run = loss_per_run + supervised_weight * gold_nll / gold_known.clamp_min(1)
    finite = torch.isfinite(loss_per_run)
    state.freeze_diverged(state.active & ~finite,
                          f"energy became non-finite at epoch {epoch}; parameters restored to the "
                          f"end of epoch {epoch - 1} and the run was stopped")
    state.active &= finite
    if any(param.grad is not None for param in network.parameters()):  # (the sparse path writes none)
        network.zero_grad(set_to_none=False)
    torch.where(state.active, loss_per_run, torch.zeros_like(loss_per_run)).sum().backward()
    for model in models:  # every part's gradient was collected before any is applied: one step
        model.update(state, momentum)
    return BatchStats(positive_energy=torch.where(state.active, energy_pos, 0.0),
                      negative_energy=torch.where(state.active, energy_neg, 0.0),
                      acceptance_rate=acceptance, changed_fraction=changed, predicted_counts=predicted,
                      tasks=int(b))


def epoch_end(state: RunState, totals: EpochTotals, epoch: int, elapsed: float, lrs: Sequence[float],
              seeds: Sequence[int]) -> list[dict[str, Any]]:
    """Close an epoch: dead-unit count, freeze runs whose parameters are no longer finite, one log row per
    run (HISTORY_COLUMNS), and the snapshot a later divergence restores to."""
    network, r = state.network, state.n_runs
    with torch.no_grad():
        # dead-unit check: hidden units that won at least one task during this epoch (posteriors
        # taken in the positive pass of each batch, so no extra pass over the data is needed)
        n_predicted = totals.predicted_counts.gt(0).sum(dim=1)  # (R,)
        params_finite = torch.stack([_finite_runs(p, r) for p in network.parameters()]).all(dim=0)
    means = totals.means()
    state.freeze_diverged(state.active & ~params_finite,
                          f"parameters became non-finite at epoch {epoch}; restored to epoch {epoch - 1}")
    state.active &= params_finite
    logs = []
    active_list = state.active.tolist()
    for run in range(r):
        alive = active_list[run]
        logs.append({
            "run": run, "lr": float(lrs[run]), "seed": int(seeds[run]), "epoch": epoch,
            "positive_energy": float(means[0, run]) if alive else math.nan,
            "negative_energy": float(means[1, run]) if alive else math.nan,
            "energy_difference": float(means[0, run] - means[1, run]) if alive else math.nan,
            "acceptance_rate": float(means[2, run]) if alive else math.nan,
            "changed_fraction": float(means[3, run]) if alive else math.nan,
            "n_predicted_classes": int(n_predicted[run]),
            "status": "running" if alive else state.status[run],
            "seconds": elapsed,
        })
    with torch.no_grad():
        for saved, param in zip(state.snapshot, network.parameters()):
            saved.copy_(param)  # in place: no second copy of the weights while the new one is made
    return logs


def notify(callbacks: Sequence[Callback | Callable[[int, list], bool | None]], epoch: int,
           logs: list[dict[str, Any]]) -> bool:
    """Call every callback with the epoch's logs (all of them, even after one asks to stop); True = stop."""
    stop = False
    for cb in callbacks:
        hook = getattr(cb, "on_epoch_end", cb)
        if hook(epoch, logs):
            stop = True
    return stop


def _final_status(state: RunState, stop_reason: str | None, epochs_run: int) -> None:
    for run in range(state.n_runs):
        if state.status[run] == "running":
            state.status[run] = stop_reason or "finished"
            if stop_reason == "cancelled":
                state.messages[run] = f"cancelled by the user after {counted(epochs_run, 'epoch')}"
            elif stop_reason == "stopped":
                state.messages[run] = f"stopped by a callback after epoch {epochs_run}"


def train_runs(labels: np.ndarray, n_classes: int, lrs: Sequence[float], seeds: Sequence[int],
               config: TrainingConfig | None = None, *, soft: np.ndarray | None = None,
               callbacks: Iterable[Callback | Callable[[int, list], bool | None]] = (),
               stop_event: threading.Event | None = None, initial_network: DEEMNetwork | None = None,
               gold: np.ndarray | None = None, supervised_weight: float = 0.0) -> TrainingResult:
    """Train ``R = len(lrs)`` DEEM runs at once on an (n, d) code matrix.

    labels: (n, d) int class indices, -1 = missing. soft: optional (n, d, K) probabilities used as the
    positive inputs. lrs, seeds: one per run. ``initial_network`` (R runs) replaces the default
    majority-vote initialisation (e.g. a Dawid-Skene start). gold: optional (n,) class codes (-1 = unknown);
    with ``supervised_weight > 0`` the loss of each run gains ``supervised_weight * CE(p(h | x), gold)``
    over the gold tasks of the batch. See :func:`train_on` for the rest.
    """
    config = config or TrainingConfig()
    device = resolve_device(config.device)
    labels = np.asarray(labels)
    if labels_path(labels, n_classes, config.path) == "sparse":
        from deem_core.model.sparse import Answers  # noqa: PLC0415 (the sparse path imports this module)
        from deem_core.model.sparse_training import train_answers  # noqa: PLC0415

        return train_answers(Answers.from_dense(labels, soft, device=device), n_classes, lrs, seeds, config,
                             gold=gold, callbacks=callbacks, stop_event=stop_event, initial_network=initial_network,
                             supervised_weight=supervised_weight)
    data = DenseTaskData(labels, n_classes, device, soft=soft, gold=gold)
    return train_on(data, lrs, seeds, config, callbacks=callbacks, stop_event=stop_event,
                    initial_network=initial_network, supervised_weight=supervised_weight)


#: CPU seconds per batch of 1,024 tasks (1 layer, 5 sampler steps, 1 thread) ~ fixed + per_unit * units^2,
#: units = d*K (dense path) or A*K (sparse path, A the batch's largest answer count), fitted by
#: benchmarks/path_crossover.py (results: benchmarks/results/path_crossover.txt)
DENSE_FIXED, DENSE_PER_UNIT = 5.8e-3, 5.6e-7
SPARSE_FIXED, SPARSE_PER_UNIT = 4.3e-3, 1.5e-5


def choose_path(n_workers: int, n_classes: int, mean_answers: float, max_answers: int | None = None) -> str:
    """``"dense"`` or ``"sparse"``: the path with the lower measured cost per batch for tasks answered by
    ``mean_answers`` of ``n_workers`` workers (``max_answers`` at most: a batch is padded to its largest task).

    The sparse path's per-unit cost is about 27 times the dense path's (gathered blocks and elementwise
    products instead of one matrix product), so it wins below about 1/5 of the workers per task, and on any
    data whose dense (d*K)^2 layer would be large.
    """
    if mean_answers >= n_workers:  # every worker answered every task: the paper's dense setting
        return "dense"
    padded = max_answers if max_answers is not None else mean_answers
    dense_cost = DENSE_FIXED + DENSE_PER_UNIT * (n_workers * n_classes) ** 2
    sparse_cost = SPARSE_FIXED + SPARSE_PER_UNIT * (padded * n_classes) ** 2
    return "sparse" if sparse_cost < dense_cost else "dense"


def labels_path(labels: np.ndarray, n_classes: int, path: str = "auto") -> str:
    """The path (``"dense"``/``"sparse"``) ``path`` resolves to for an (n, d) code matrix."""
    if path in ("dense", "sparse"):
        return path
    if path != "auto":
        raise ValueError(f"path must be 'auto', 'dense' or 'sparse', got {path!r}")
    counts = (labels >= 0).sum(1)
    if not counts.size:
        return "dense"
    return choose_path(labels.shape[1], n_classes, float(counts.mean()), int(counts.max()))


def train_on(data: TaskData, lrs: Sequence[float], seeds: Sequence[int], config: TrainingConfig | None = None, *,
             callbacks: Iterable[Callback | Callable[[int, list], bool | None]] = (),
             stop_event: threading.Event | None = None, initial_network: DEEMNetwork | None = None,
             supervised_weight: float = 0.0) -> TrainingResult:
    """Train ``R = len(lrs)`` DEEM runs at once on any :class:`TaskData` (Algorithm 1).

    Each epoch visits every task once in each run's own order. Divergent runs (non-finite energy or
    parameters) are restored to their last good epoch, frozen and marked "diverged"; the others go on.
    ``stop_event`` cancels between batches; a callback returning True stops after its epoch.
    """
    config = config or TrainingConfig()
    if len(lrs) != len(seeds):
        raise ValueError(f"need one seed per learning rate, got {len(lrs)} lrs and {len(seeds)} seeds")
    device = resolve_device(config.device)
    with cpu_threads(device, config.cpu_threads):
        return _train(data, lrs, seeds, config, device, list(callbacks), stop_event, initial_network,
                      supervised_weight)


def _train(data: TaskData, lrs: Sequence[float], seeds: Sequence[int], config: TrainingConfig, device: torch.device,
           callbacks: list, stop_event: threading.Event | None, initial_network: DEEMNetwork | None,
           supervised_weight: float) -> TrainingResult:
    state = initialise_runs(data, lrs, seeds, config, device, initial_network)
    for cb in callbacks:  # skorch-style: a callback that watches the parameters gets the live network once
        begin = getattr(cb, "on_train_begin", None)
        if begin is not None:
            begin(state.network)
    sampler = DMALASampler(step_size=config.step_size, n_steps=config.sampler_steps)
    supervised = supervised_weight > 0 and data.has_gold
    batch_size = max(1, min(config.batch_size, data.n_tasks))
    history = History()  # (rows as arrays: as dicts a sweep's 384,000 rows held 560 MiB; attack round 70)
    started = time.perf_counter()
    epochs_run = 0
    stop_reason = None
    for epoch in range(1, config.epochs + 1):
        order = epoch_order(state, data.n_tasks)
        if hasattr(data, "arrange"):  # a layout may regroup each run's order into batches (bucketing)
            order = data.arrange(order, batch_size, state.run_generators)
        totals = EpochTotals(state.n_runs, data.n_classes, device)
        for start in range(0, data.n_tasks, batch_size):
            if stop_event is not None and stop_event.is_set():
                stop_reason = "cancelled"
                break
            batch = data.batch(order[:, start:start + batch_size], with_gold=supervised)
            totals.add(batch_step(state, data, batch, sampler, epoch, config.momentum, supervised_weight))
        if stop_reason == "cancelled" and totals.n_batches == 0:
            break
        epochs_run = epoch
        logs = epoch_end(state, totals, epoch, time.perf_counter() - started, lrs, seeds)
        history.extend(logs)
        if stop_reason == "cancelled":
            break
        if notify(callbacks, epoch, logs):
            stop_reason = "stopped"
            break
        if not bool(state.active.any()):
            break
    _final_status(state, stop_reason, epochs_run)
    return TrainingResult(network=state.network, history=history, status=state.status, messages=state.messages,
                          epochs_run=epochs_run, seconds=time.perf_counter() - started,
                          lrs=[float(x) for x in lrs], seeds=[int(s) for s in seeds])
