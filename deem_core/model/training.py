"""Training loop for R batched DEEM runs (different learning rates and/or seeds) at once.

Algorithm 1 of the paper: per mini-batch, draw negative samples with DMALA from persistent chains
(one chain per task, started at the data and keeping that task's missing pattern), compute the loss
``mean F(x_data) - mean F(x_neg)`` per run and take one SGD step per run with that run's learning
rate. The iRBM's identifiability constants never move (they are masked in, see ``model.py``).

Training reports only through callbacks; nothing here prints.
"""

from __future__ import annotations

import math
import threading
from contextlib import contextmanager
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol, Sequence

import numpy as np
import torch

from deem_core.model.classmap import hungarian_class_map
from deem_core.model.network import DEEMNetwork
from deem_core.model.sampler import DMALASampler, one_hot_fm, one_hot_state

__all__ = [
    "Callback", "TrainingConfig", "TrainingResult", "train_runs", "resolve_device", "HISTORY_COLUMNS",
]

HISTORY_COLUMNS = [
    "run", "lr", "seed", "epoch", "positive_energy", "negative_energy", "energy_difference",
    "acceptance_rate", "changed_fraction", "n_predicted_classes", "status", "seconds",
]


class Callback(Protocol):
    """skorch-style hook. ``on_epoch_end`` returns True to stop training after this epoch."""

    def on_epoch_end(self, epoch: int, logs: list[dict[str, Any]]) -> bool | None: ...


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/None -> CUDA when available, else CPU. ``"cuda"`` without a GPU raises ValueError."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but no CUDA GPU is available (use --device cpu or auto)")
    return device


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


@dataclass
class TrainingResult:
    """What a batched training leaves behind."""

    network: DEEMNetwork
    history: list[dict[str, Any]]  # rows with HISTORY_COLUMNS
    status: list[str]  # per run: "finished", "stopped", "cancelled", "diverged"
    messages: list[str]  # per run: human explanation ('' when finished normally)
    epochs_run: int
    seconds: float
    lrs: list[float]
    seeds: list[int]

    def select_runs(self, picked: Sequence[int]) -> "TrainingResult":
        """The same result restricted to the runs at ``picked`` (renumbered 0..len-1, in that order)."""
        source = self.network
        network = DEEMNetwork(len(picked), source.n_workers, source.n_classes, source.n_layers)
        network = network.to(next(source.parameters()).device)
        with torch.no_grad():
            for target, param in zip(network.parameters(), source.parameters()):
                target.copy_(param[list(picked)])
        new_run = {old: new for new, old in enumerate(picked)}
        history = [{**row, "run": new_run[row["run"]]} for row in self.history if row["run"] in new_run]
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
def _cpu_threads(device: torch.device, threads: int | None):
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


def train_runs(*args: Any, **kwargs: Any) -> TrainingResult:
    """Train ``R = len(lrs)`` DEEM runs at once (see :func:`_train_runs` for the arguments)."""
    config = kwargs.get("config") if "config" in kwargs else (args[4] if len(args) > 4 else None)
    device = resolve_device((config or TrainingConfig()).device)
    with _cpu_threads(device, (config or TrainingConfig()).cpu_threads):
        return _train_runs(*args, **kwargs)


def _train_runs(
    labels: np.ndarray,
    n_classes: int,
    lrs: Sequence[float],
    seeds: Sequence[int],
    config: TrainingConfig | None = None,
    soft: np.ndarray | None = None,
    callbacks: Iterable[Callback | Callable[[int, list], bool | None]] = (),
    stop_event: threading.Event | None = None,
    initial_network: DEEMNetwork | None = None,
    gold: np.ndarray | None = None,
    supervised_weight: float = 0.0,
) -> TrainingResult:
    """Train ``R = len(lrs)`` DEEM runs at once.

    labels: (n, d) int class indices, -1 = missing. soft: optional (n, d, K) probabilities used as the
    positive inputs. lrs, seeds: one per run. ``initial_network`` (R runs) replaces the default
    majority-vote initialisation (e.g. a Dawid-Skene start). gold: optional (n,) class codes (-1 = unknown);
    with ``supervised_weight > 0`` the loss of each run gains ``supervised_weight * CE(p(h | x), gold)``
    over the gold tasks of the batch (hidden unit m read as class m, as both initialisations make it). Divergent runs (non-finite energy) are
    restored to their last good epoch, frozen and marked "diverged"; the others go on.
    """
    config = config or TrainingConfig()
    if len(lrs) != len(seeds):
        raise ValueError(f"need one seed per learning rate, got {len(lrs)} lrs and {len(seeds)} seeds")
    device = resolve_device(config.device)
    n_tasks, n_workers = labels.shape
    r, k = len(lrs), n_classes
    labels_t = torch.as_tensor(np.asarray(labels), dtype=torch.long, device=device)
    mask_t = (labels_t >= 0).float()  # (n, d)
    dense = bool(mask_t.all())  # every worker labelled every task: the missing-unit terms are skipped
    soft_t = torch.as_tensor(soft, dtype=torch.float32, device=device) if soft is not None else None
    use_gold = gold is not None and supervised_weight > 0 and bool((np.asarray(gold) >= 0).any())
    gold_t = torch.as_tensor(np.asarray(gold), dtype=torch.long, device=device) if use_gold else None

    run_gens = [_generator(s, device) for s in seeds]
    # one sampler stream per run: a run trains the same alone or batched with other runs
    sampler_gens = [_generator(int(s) * 7919 + 17, device) for s in seeds]
    if initial_network is None:
        network = DEEMNetwork(r, n_workers, k, config.n_layers).to(device)
        # one initialisation per run from its own seed, so a run does not depend on its batch-mates
        per_run = [DEEMNetwork(1, n_workers, k, config.n_layers).to(device) for _ in range(r)]
        with torch.no_grad():
            for idx, single in enumerate(per_run):
                single.initialise(run_gens[idx], config.layer_noise, config.irbm_noise)
                for target, source in zip(network.parameters(), single.parameters()):
                    target[idx].copy_(source[0])
    else:
        network = initial_network.to(device)
    lr_t = torch.as_tensor(list(lrs), dtype=torch.float32, device=device)
    active = torch.ones(r, dtype=torch.bool, device=device)
    momentum_buffers = [torch.zeros_like(p) for p in network.parameters()]
    sampler = DMALASampler(step_size=config.step_size, n_steps=config.sampler_steps)
    chains = labels_t.clamp_min(0).unsqueeze(0).repeat(r, 1, 1)  # (R, n, d) persistent negative chains
    mask_runs = mask_t.unsqueeze(0).expand(r, -1, -1)
    status = ["running"] * r
    messages = [""] * r
    history: list[dict[str, Any]] = []
    callbacks = list(callbacks)
    snapshot = _snapshot(network)
    started = time.perf_counter()
    epochs_run = 0
    stop_reason = None
    batch_size = max(1, min(config.batch_size, n_tasks))

    for epoch in range(1, config.epochs + 1):
        perms = torch.stack([torch.randperm(n_tasks, generator=g, device=device) for g in run_gens])  # (R, n)
        sums = torch.zeros(5, r, device=device)  # pos, neg, acceptance, changed, batches
        predicted_counts = torch.zeros(r, k, device=device)  # (R, K) tasks per predicted hidden unit
        for start in range(0, n_tasks, batch_size):
            if stop_event is not None and stop_event.is_set():
                stop_reason = "cancelled"
                break
            idx = perms[:, start:start + batch_size]  # (R, b)
            batch_mask = mask_t[idx]  # (R, b, d)
            chain_state = chains.gather(1, idx.unsqueeze(-1).expand(-1, -1, n_workers))
            chain_state, stats = sampler.sample(network.sampler_energy(dense), chain_state, batch_mask, k,
                                                sampler_gens)
            chains.scatter_(1, idx.unsqueeze(-1).expand(-1, -1, n_workers), chain_state)
            # positive and negative samples in one feature-major pass: (R, d, K, 2b)
            mask_fm = batch_mask.transpose(1, 2)  # (R, d, b)
            if soft_t is not None:
                x_pos = soft_t[idx].permute(0, 2, 3, 1)
            else:
                x_pos = one_hot_fm(labels_t[idx].transpose(1, 2), mask_fm, k)
            x_neg = one_hot_fm(chain_state.transpose(1, 2), mask_fm, k)
            energy, logits = network.free_energy_and_logits_fm(
                torch.cat([x_pos, x_neg], dim=-1), None if dense else torch.cat([mask_fm, mask_fm], dim=-1))
            b = idx.shape[1]
            energy_pos = energy[:, :b].mean(1)  # (R,)
            energy_neg = energy[:, b:].mean(1)  # (R,)
            loss_per_run = energy_pos - energy_neg
            with torch.no_grad():  # classes the model predicts on this epoch's data (dead-unit check)
                predicted_counts += torch.zeros_like(predicted_counts).scatter_add_(
                    1, logits[:, :, :b].argmax(1), torch.ones(r, b, device=device))
            if gold_t is not None:
                batch_gold = gold_t[idx]  # (R, b), -1 = unknown
                known = (batch_gold >= 0).float()
                log_post = torch.log_softmax(logits[:, :, :b], dim=1)  # (R, K, b)
                nll = -log_post.gather(1, batch_gold.clamp_min(0).unsqueeze(1)).squeeze(1)
                loss_per_run = loss_per_run + supervised_weight * (nll * known).sum(1) / known.sum(1).clamp_min(1)
            finite = torch.isfinite(loss_per_run)
            newly_bad = active & ~finite
            if bool(newly_bad.any()):
                _restore_runs(network, snapshot, newly_bad)
                for run in torch.nonzero(newly_bad).flatten().tolist():
                    status[run] = "diverged"
                    messages[run] = (f"energy became non-finite at epoch {epoch}; parameters restored to the "
                                     f"end of epoch {epoch - 1} and the run was stopped")
                active &= finite
            network.zero_grad(set_to_none=False)
            torch.where(active, loss_per_run, torch.zeros_like(loss_per_run)).sum().backward()
            with torch.no_grad():
                for param, buf in zip(network.parameters(), momentum_buffers):
                    grad = torch.nan_to_num(param.grad, nan=0.0, posinf=0.0, neginf=0.0)
                    shape = (-1,) + (1,) * (param.dim() - 1)
                    grad = grad * active.view(shape)
                    if config.momentum:
                        buf.mul_(config.momentum).add_(grad)
                        grad = buf
                    param.sub_(lr_t.view(shape) * grad)
                sums[0] += torch.where(active, energy_pos.detach(), 0.0)
                sums[1] += torch.where(active, energy_neg.detach(), 0.0)
                sums[2] += stats.acceptance_rate
                sums[3] += stats.changed_fraction
                sums[4] += 1
        if stop_reason == "cancelled" and sums[4].max() == 0:
            break
        epochs_run = epoch
        with torch.no_grad():
            # dead-unit check: hidden units that won at least one task during this epoch (posteriors
            # taken in the positive pass of each batch, so no extra pass over the data is needed)
            n_predicted = predicted_counts.gt(0).sum(dim=1)  # (R,)
            params_finite = torch.stack([
                torch.isfinite(p.reshape(r, -1)).all(dim=1) for p in network.parameters()
            ]).all(dim=0)
        means = (sums[:4] / sums[4].clamp_min(1)).cpu().numpy()
        bad_after = (active & ~params_finite)
        if bool(bad_after.any()):
            _restore_runs(network, snapshot, bad_after)
            for run in torch.nonzero(bad_after).flatten().tolist():
                status[run] = "diverged"
                messages[run] = f"parameters became non-finite at epoch {epoch}; restored to epoch {epoch - 1}"
            active &= params_finite
        elapsed = time.perf_counter() - started
        logs = []
        active_list = active.tolist()
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
                "status": "running" if alive else status[run],
                "seconds": elapsed,
            })
        history.extend(logs)
        snapshot = _snapshot(network)
        if stop_reason == "cancelled":
            break
        stop_requested = False
        for cb in callbacks:
            hook = getattr(cb, "on_epoch_end", cb)
            if hook(epoch, logs):
                stop_requested = True
        if stop_requested:
            stop_reason = "stopped"
            break
        if not bool(active.any()):
            break

    for run in range(r):
        if status[run] == "running":
            status[run] = stop_reason or "finished"
            if stop_reason == "cancelled":
                messages[run] = f"cancelled by the user after {epochs_run} epoch(s)"
            elif stop_reason == "stopped":
                messages[run] = f"stopped by a callback after epoch {epochs_run}"
    return TrainingResult(network=network, history=history, status=status, messages=messages,
                          epochs_run=epochs_run, seconds=time.perf_counter() - started,
                          lrs=[float(x) for x in lrs], seeds=[int(s) for s in seeds])


def class_maps_against(hidden_argmax: torch.Tensor, reference: np.ndarray, n_classes: int) -> list[np.ndarray]:
    """Hungarian class map per run: (R, n) hidden argmax vs (n,) reference labels -> list of (K,) maps."""
    return [hungarian_class_map(h.cpu().numpy(), reference, n_classes) for h in hidden_argmax]
