"""The sparse training path: DEEM trained on each task's own answers (answer slots, gathered blocks).

:class:`SparseTaskData` implements the training loop's :class:`~deem_core.model.training.TaskData` on CSR
answer arrays (:class:`~deem_core.model.sparse.Answers`): a batch is the answer slots of its tasks, the
persistent negative chains are one label per answer, and its evaluator is a
:class:`~deem_core.model.sparse.GatheredNetwork` built once per batch (the sampler's steps and the loss
reuse its gathered blocks; the layer gradients are scattered back into the touched blocks only).

:func:`deem_core.model.training.choose_path` picks the dense feature-major path or this one from the
measured crossover, and :func:`choose_storage` stores all ``d*d`` worker pairs' blocks while they are small and only the co-occurring
pairs beyond that (``benchmarks/results/scale.txt``).
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from deem_core.model.network import DEEMNetwork
from deem_core.model.sizes import ALL_PAIRS_MAX_BYTES, choose_storage, width_parts
from deem_core.model.sparse import Answers, GatheredNetwork, cooccurring_pairs, take_rows
from deem_core.model.training import (
    SPARSE_FIXED, SPARSE_PER_UNIT, Batch, Callback, EnergyTerms, RunState, TrainingConfig,
    TrainingResult, resolve_device, sgd_update, train_on,
)

__all__ = [
    "ALL_PAIRS_MAX_BYTES", "SlotBatch", "SparseEvaluator", "SparseTaskData", "choose_batching", "choose_storage",
    "train_answers",
]



@dataclass
class SlotBatch(Batch):
    """A :class:`Batch` of answer slots: ``positive`` (R, A, K, b), ``mask`` (R, b, A), ``mask_fm`` (R, A, b),
    plus ``workers`` (R, b, A) the worker of each slot, ``answer`` (R, b, A) its index in the answer arrays and
    ``labels`` (R, b, A) its answer's class code."""

    workers: torch.Tensor | None = None
    answer: torch.Tensor | None = None
    labels: torch.Tensor | None = None


class SparseEvaluator:
    """One batch's :class:`GatheredNetwork` as the training loop's evaluator."""

    def __init__(self, network: DEEMNetwork, data: "SparseTaskData", batch: SlotBatch):
        self.data = data
        # gathered without autograd: the loss's parameter gradients are written by hand (training_energies)
        self.gathered = GatheredNetwork(network, batch.workers, batch.mask)

    def sampler_energy(self):
        return self.gathered.sampler_energy()

    def energies(self, batch: SlotBatch, negative_states: torch.Tensor) -> EnergyTerms:
        negative = self.data.answers.one_hot_fm(batch.answer, batch.mask, self.data.n_classes, labels=negative_states)
        # F up to each task's missing-worker offset, which cancels in the loss; the reported means add it back
        # in float64 (it is O(d) large, the difference of the two means is not)
        answers = self.data.answers
        # one-hot inputs (hard labels) let the first layer's gradient be collected row by row
        positive_labels = batch.labels if answers.soft is None else None
        energy_pos, energy_neg, logits = self.gathered.training_energies(
            batch.positive, negative, batch.mask_fm, positive_labels, negative_states)
        offset = self.gathered.offset.mean(1)  # (R,) float64
        return EnergyTerms(loss=energy_pos.mean(1) - energy_neg.mean(1),
                           positive_energy=energy_pos.detach().double().mean(1) - offset,
                           negative_energy=energy_neg.detach().double().mean(1) - offset, logits=logits)

    @torch.no_grad()
    def update(self, state: RunState, momentum: float) -> None:
        scale = -(state.lrs * state.active)
        if momentum or state.network.bias == "irbm":
            # momentum moves every entry, and the iRBM bias's all-workers term is dense anyway: as the dense path
            self.gathered.materialise_gradients()
            sgd_update(state, momentum)  # every parameter with a .grad (all but the layer weights)
        else:
            self.gathered.apply_small_step(scale)  # only the rows of this batch's workers: O(batch), not O(d)
        buffers = None
        if momentum:
            layer_ids = {id(w) for w in state.network.layer_weights}
            buffers = [buf for p, buf in zip(state.network.parameters(), state.momentum_buffers) if id(p) in layer_ids]
        self.gathered.apply_layer_step(scale, momentum, buffers)


#: the fixed cost of one more part in the units of :func:`width_parts` ((answer slots x classes)^2 of one task): the
#: cost model's fixed seconds and per-unit seconds are per batch of 1,024 tasks
PART_FIXED_UNITS = SPARSE_FIXED / SPARSE_PER_UNIT * 1024


class SparseTaskData:
    """Answers in CSR arrays (:class:`Answers`) as the training loop's data; see the module docstring.

    ``gold``: optional (n,) class codes (-1 = unknown). ``pair_keys``: the stored worker pairs of the layer
    weights (None: all ``d*d``; default: :func:`choose_storage`).
    """

    def __init__(self, answers: Answers, n_classes: int, device: torch.device, gold: np.ndarray | None = None,
                 n_layers: int = 1, pair_keys: torch.Tensor | None | str = "auto", batching: str = "auto",
                 n_runs: int = 1):
        self.answers = answers
        self.n_tasks, self.n_workers, self.n_classes = answers.n_tasks, answers.n_workers, int(n_classes)
        self.all_observed = False  # the slots are always masked (padding), even when every worker answered
        self.all_answered = bool((answers.counts() == self.n_workers).all())
        self.has_gold = gold is not None and bool((np.asarray(gold) >= 0).any())
        self.gold = torch.as_tensor(np.asarray(gold), dtype=torch.long, device=device) if self.has_gold else None
        if isinstance(pair_keys, str):
            keys = functools.cache(lambda: cooccurring_pairs(answers))  # found at most once, only when needed
            storage = choose_storage(self.n_workers, self.n_classes, n_layers, n_runs,
                                     n_pairs=lambda: int(keys().numel()))
            pair_keys = None if storage == "all" else keys()
        self.pair_keys = pair_keys
        counts = answers.counts()
        self.batching = choose_batching(counts, n_classes) if batching == "auto" else batching
        if self.batching not in ("pad", "bucket"):
            raise ValueError(f"batching must be 'auto', 'pad' or 'bucket', got {batching!r}")
        self._counts = counts
        self._part_cuts: list[tuple[int, int]] | None = None  # (a batch of every task: the same cuts every step)
        # chain labels in the smallest integer type; one extra column takes the padded slots' writes
        self.chain_dtype = torch.int8 if n_classes <= 127 else torch.int16 if n_classes <= 32767 else torch.int32

    def batch(self, index: torch.Tensor, with_gold: bool) -> SlotBatch:
        slots = self.answers.slots(index)
        labels = take_rows(self.answers.labels, slots.answer)
        positive = self.answers.one_hot_fm(slots.answer, slots.mask, self.n_classes,
                                           labels=labels if self.answers.soft is None else None)
        gold = self.gold[index] if with_gold and self.gold is not None else None
        return SlotBatch(index=index, positive=positive, mask=slots.mask, mask_fm=slots.mask_fm, gold=gold,
                         widths=slots.widths(), workers=slots.workers, answer=slots.answer, labels=labels)

    def arrange(self, order: torch.Tensor, batch_size: int, generators) -> torch.Tensor:
        """Each run's epoch order (R, n) regrouped for ``batching="bucket"``: the run's random order stably
        sorted by answer count, cut into batches, and the batches shuffled with the run's own stream (so a run
        still trains the same alone or batched). Unchanged with ``"pad"``."""
        if self.batching != "bucket":
            return order
        out = []
        for row, gen in zip(order, generators):
            grouped = row[torch.sort(self._counts[row], stable=True).indices]
            batches = list(grouped.split(batch_size))
            shuffle = torch.randperm(len(batches), generator=gen, device=gen.device).tolist()
            out.append(torch.cat([batches[i] for i in shuffle]))
        return torch.stack(out)

    def parts(self, batch: SlotBatch, momentum: float = 0.0) -> list[SlotBatch]:
        """A batch that holds every task, in parts of similar answer counts when padding it whole would cost more than
        twice its parts (the cost model of :func:`choose_batching`, :func:`width_parts`); else the batch itself. A part
        is a rank range of every run's tasks sorted by answer count, of widths within a factor of 2. Without them one
        task answered by many (a control question every worker saw) padded every task to its width: 300 tasks, one of
        58 answers and the rest of 5-17 (the CrowdFlower weather-sentiment set) trained at 3 s an epoch, 315 s for the
        default fit; in parts, 7-15 s (benchmarks/results/real_sets.txt). ``batch_step`` takes one SGD step over all
        parts. Only a batch of every task: then each run's tasks sorted are the same counts, the parts the same
        whatever runs share the batch, and a run trains the same alone or batched (smaller batches are grouped by
        answer count already, ``batching="bucket"``). With momentum (whose buffers move once a step) the batch stays
        whole."""
        if momentum or self.all_answered or batch.size < 2 or batch.size < self.n_tasks:
            return [batch]  # (every worker on every task: one width, and the iRBM bias's update writes .grad)
        if self._part_cuts is None:  # every run's batch is every task: its counts sorted are the data's, once
            widths = torch.sort(self._counts).values.cpu().numpy()
            self._part_cuts = width_parts(widths, self.n_classes, PART_FIXED_UNITS)
        if len(self._part_cuts) == 1:
            return [batch]
        index = batch.index.gather(1, torch.sort(self._counts[batch.index], dim=1, stable=True).indices)
        return [self.batch(index[:, a:e], with_gold=batch.gold is not None) for a, e in self._part_cuts]

    def network_spec(self) -> dict:
        # the paper's iRBM bias when every worker answered every task, the class prior otherwise (network.py)
        return {"layout": "blocks", "pair_keys": self.pair_keys, "bias": "irbm" if self.all_answered else "prior"}

    def evaluator(self, network: DEEMNetwork, batch: SlotBatch) -> SparseEvaluator:
        return SparseEvaluator(network, self, batch)

    def new_chains(self, n_runs: int) -> torch.Tensor:
        labels = torch.cat([self.answers.labels, self.answers.labels.new_zeros(1)]).to(self.chain_dtype)
        return labels.unsqueeze(0).repeat(n_runs, 1)  # (R, nnz + 1)

    def chain_states(self, chains: torch.Tensor, batch: SlotBatch) -> torch.Tensor:
        r = chains.shape[0]
        return chains.gather(1, batch.answer.reshape(r, -1)).view(batch.answer.shape).long()

    def store_chain_states(self, chains: torch.Tensor, batch: SlotBatch, states: torch.Tensor) -> None:
        r = chains.shape[0]
        # padded slots repeat their task's first answer: their (unchanged) state goes to the spare column
        target = torch.where(batch.mask > 0, batch.answer, self.answers.n_answers)
        chains.scatter_(1, target.reshape(r, -1), states.reshape(r, -1).to(chains.dtype))


# ---------------------------------------------------------------------------------------------- choices
def choose_batching(counts: torch.Tensor, n_classes: int, batch_size: int = 1024) -> str:
    """``"bucket"`` when padding every batch to its largest task would cost more than 20% over batches of one
    answer count each (the cost model of :func:`deem_core.model.training.choose_path`), else ``"pad"``.

    Measured on 20,000 tasks with 3-10 answers (4 classes): 0.61 s/epoch padded, 0.40 bucketed, accuracy
    97.99 / 97.97% after 10 epochs (``benchmarks/results/scale_deem.txt``). Sets with one answer count keep
    random batches (identical to padding).
    """
    from deem_core.model.training import SPARSE_FIXED, SPARSE_PER_UNIT  # noqa: PLC0415

    if counts.numel() == 0:
        return "pad"
    units = (counts.double() * n_classes) ** 2
    # padded: a random batch's largest task is about the data's largest once batches are not tiny
    padded = SPARSE_FIXED + SPARSE_PER_UNIT * float(units.max())
    bucketed = SPARSE_FIXED + SPARSE_PER_UNIT * float(units.mean())
    return "bucket" if padded > 1.2 * bucketed else "pad"


# ---------------------------------------------------------------------------------------------- entry points
def train_answers(answers: Answers, n_classes: int, lrs: Sequence[float], seeds: Sequence[int],
                  config: TrainingConfig | None = None, *, gold: np.ndarray | None = None,
                  callbacks: Iterable[Callback | Callable[[int, list], bool | None]] = (),
                  stop_event: threading.Event | None = None, initial_network: DEEMNetwork | None = None,
                  supervised_weight: float = 0.0, pair_keys: torch.Tensor | None | str = "auto") -> TrainingResult:
    """Train ``R = len(lrs)`` DEEM runs at once on CSR answers with the sparse path (see :func:`train_on`)."""
    config = config or TrainingConfig()
    device = resolve_device(config.device)
    answers = Answers(answers.offsets.to(device), answers.workers.to(device), answers.labels.to(device),
                      None if answers.soft is None else answers.soft.to(device), answers.n_workers)
    data = SparseTaskData(answers, n_classes, device, gold=gold, n_layers=config.n_layers, pair_keys=pair_keys,
                          batching=config.batching, n_runs=len(lrs))
    return train_on(data, lrs, seeds, config, callbacks=callbacks, stop_event=stop_event,
                    initial_network=initial_network, supervised_weight=supervised_weight)
