"""Sparse-aware DEEM: the network evaluated on each task's own answers only.

A worker missing at the input stays missing up to the iRBM (its layer outputs are zeroed) and its
visible unit is summed out (see :mod:`deem_core.model.network`). So a task answered by the workers
``S`` (``|S| = a``) only involves

* the ``a x a`` blocks of ``K x K`` layer weights between members of ``S`` (and their biases), and
* the iRBM parameters of the members of ``S``; with the hidden bias in the paper's meaning
  (``bias="irbm"``, see :mod:`deem_core.model.network`) also the missing workers' summed-out term
  ``sum_{i not in S} log sum_l exp(a_i^l + w_i^{lm})``, computed as the sum over *all* workers (once per
  batch, ``O(d K^2)``) minus the sum over ``S`` (``O(a K)`` per task); with the class-prior meaning
  (``bias="prior"``, what data with missing answers train) nothing else at all.

Per task the work is ``O(a^2 K^2)`` instead of ``O((d K)^2)``, and the result is the same number.

Batches of answer slots
-----------------------
A batch of ``B`` tasks (per run) is laid out as *answer slots*: ``workers`` (R, B, A) int64, the worker
of each answer, tasks padded to the batch's largest answer count ``A`` with the task's own first answer,
and a slot ``mask`` (R, B, A) float, 1 for a real answer. (Padding with the task's own worker keeps every
gathered pair one that co-occurs, so it is stored in every layout.) Inputs are feature-major like the dense
path: ``x`` (R, A, K, B) and ``mask`` (R, A, B), so :class:`~deem_core.model.sampler.DMALASampler` runs
unchanged on slots instead of workers, and the negative chains become one label per answer.

:class:`GatheredNetwork` gathers a batch's blocks once (layer weights in the ``"blocks"`` layout: one
``index_select`` of ``K x K`` rows; the ``"matrix"`` layout works too, element by element, about 10x
slower) and evaluates the free energy, its hand-written input gradient for DMALA and, through autograd on
the gathered leaves, the parameter gradients; :meth:`GatheredNetwork.layer_gradients` gives the layer
gradients back as ``(index, values)`` to scatter into the stored weights with ``index_add_``.

What storing only co-occurring pairs means
------------------------------------------
In the ``"blocks"`` layout with ``pair_keys`` (:func:`cooccurring_pairs`), only the blocks of worker pairs
that answer at least one common task exist. On the training data nothing changes: no training task's
energy, gradient or sampler step ever reads another block, so a pair that never co-occurs would keep its
initial value forever in the full model and never influence a training task. On a *new* task, two workers
who never shared a task interact through a zero block, where the full model would use that block's
initial value (identity-initialised layers: ``N(0, 0.005^2)`` noise off the diagonal). Both are
uninformed; neither has been learned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from deem_core.model.network import DEEMNetwork
from deem_core.model.sparsemax import sparsemax, sparsemax_backward

__all__ = [
    "Answers", "GatheredNetwork", "Slots", "cooccurring_pairs", "dense_rows_to_slots", "free_energy_of_tasks",
    "take_rows",
]


# ---------------------------------------------------------------------------------------------- answers
def take_rows(source: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``source[index]`` for an int64 ``index`` of any shape, through ``index_select`` (on the CPU about 3x faster than
    advanced indexing for a batch's few thousand answers): shape ``index.shape + source.shape[1:]``."""
    return source.index_select(0, index.reshape(-1)).view(*index.shape, *source.shape[1:])


@dataclass
class Answers:
    """Answers in CSR order by task: task ``t``'s answers are ``offsets[t]:offsets[t+1]``.

    ``workers``, ``labels`` (nnz,) int64 codes (workers sorted within each task); ``soft`` (nnz, K) float32
    probabilities or None; ``n_workers`` the number of worker codes.
    """

    offsets: torch.Tensor
    workers: torch.Tensor
    labels: torch.Tensor
    soft: torch.Tensor | None
    n_workers: int

    @property
    def n_tasks(self) -> int:
        return int(self.offsets.numel()) - 1

    @property
    def n_answers(self) -> int:
        return int(self.workers.numel())

    def counts(self) -> torch.Tensor:
        """Answers per task: (n,) int64."""
        return self.offsets[1:] - self.offsets[:-1]

    @classmethod
    def from_arrays(cls, offsets, workers, labels, n_workers: int, soft=None, device=None) -> "Answers":
        """From CSR arrays (numpy or torch): ``offsets`` (n+1,), ``workers``/``labels`` (nnz,), ``soft`` (nnz, K)."""
        def long(values):
            return torch.as_tensor(np.asarray(values) if not torch.is_tensor(values) else values,
                                   dtype=torch.long, device=device)

        soft_t = None if soft is None else torch.as_tensor(soft, dtype=torch.float32, device=device)
        return cls(long(offsets), long(workers), long(labels), soft_t, int(n_workers))

    @classmethod
    def from_dense(cls, labels, soft=None, device=None) -> "Answers":
        """From a dense (n, d) code matrix (-1 = missing) and optional (n, d, K) soft labels."""
        labels = np.asarray(labels)
        rows, cols = np.nonzero(labels >= 0)  # row-major: sorted by task, then worker
        offsets = np.zeros(labels.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=labels.shape[0]), out=offsets[1:])
        answer_soft = None if soft is None else np.asarray(soft)[rows, cols]
        return cls.from_arrays(offsets, cols, labels[rows, cols], labels.shape[1], answer_soft, device)

    def slots(self, tasks: torch.Tensor) -> "Slots":
        """Answer slots of the tasks ``tasks`` (R, B) int64 (see the module docstring)."""
        start = take_rows(self.offsets, tasks)
        count = take_rows(self.offsets, tasks + 1) - start
        width = max(int(count.max()) if count.numel() else 0, 1)
        position = torch.arange(width, device=tasks.device)
        real = position < count.unsqueeze(-1)  # (R, B, A)
        answer = start.unsqueeze(-1) + position * real  # padding: the task's first answer
        if self.n_answers:
            answer = answer.clamp_max_(self.n_answers - 1)  # (a task without answers points anywhere, masked)
            workers = take_rows(self.workers, answer)
        else:
            answer = torch.zeros_like(answer)
            workers = torch.zeros_like(answer)
        return Slots(answer=answer, workers=workers, mask=real.float())

    def one_hot_fm(self, answer: torch.Tensor, mask: torch.Tensor, n_classes: int,
                   labels: torch.Tensor | None = None) -> torch.Tensor:
        """The inputs of the slots ``answer`` (R, B, A) as feature-major (R, A, K, B): the soft labels when there
        are any (and no ``labels`` are given), else one-hot ``labels`` (default: the answers' labels), zero
        where ``mask`` (R, B, A) is 0."""
        if labels is None and self.soft is not None:
            return (take_rows(self.soft, answer) * mask.unsqueeze(-1)).permute(0, 2, 3, 1).contiguous()
        codes = take_rows(self.labels, answer) if labels is None else labels
        r, b, a = codes.shape
        onehot = torch.zeros(r, a, n_classes, b, dtype=mask.dtype, device=codes.device)
        return onehot.scatter_(2, codes.transpose(1, 2).unsqueeze(2), mask.transpose(1, 2).unsqueeze(2))


@dataclass
class Slots:
    """One batch's answer slots: ``answer`` (R, B, A) indices into the answer arrays, ``workers`` (R, B, A),
    ``mask`` (R, B, A) float (1 = a real answer)."""

    answer: torch.Tensor
    workers: torch.Tensor
    mask: torch.Tensor

    def widths(self) -> list[int]:
        """Per run, the largest answer count among its tasks (the slots it uses)."""
        return self.mask.sum(-1).amax(-1).long().tolist()

    @property
    def mask_fm(self) -> torch.Tensor:
        """The slot mask feature-major: (R, A, B)."""
        return self.mask.transpose(1, 2).contiguous()


#: :func:`cooccurring_pairs` marks pairs in a d x d boolean map while it is at most this many bytes (a scatter, no
#: sort; 5.8 MB for 2,400 workers), else sorts and deduplicates the keys chunk by chunk
PAIR_MAP_MAX_BYTES = 256 << 20


@torch.no_grad()
def cooccurring_pairs(answers: Answers, chunk: int = 1 << 22) -> torch.Tensor:
    """Sorted keys ``i*d + j`` of every ordered worker pair that answers a common task (diagonal included),
    plus every worker's own pair ``(i, i)``: (P,) int64. Works through tasks grouped by answer count, at most
    ``chunk`` pair keys at a time, marking them in a d x d map while that is small (:data:`PAIR_MAP_MAX_BYTES`;
    on 1,000,000 tasks x 2,400 workers the sorting way peaked ~300 MB higher), else deduplicating them."""
    d = answers.n_workers
    device = answers.workers.device
    counts = answers.counts()
    own = torch.arange(d, device=device) * (d + 1)
    seen = torch.zeros(d * d, dtype=torch.bool, device=device) if d * d <= PAIR_MAP_MAX_BYTES else None
    pieces = [own]
    for a in torch.unique(counts).tolist():
        if a < 2:
            continue
        tasks = torch.nonzero(counts == a).flatten()
        step = max(1, chunk // (a * a))
        for start in range(0, tasks.numel(), step):
            first = answers.offsets[tasks[start:start + step]]
            workers = answers.workers[first.unsqueeze(-1) + torch.arange(a, device=device)]  # (t, a)
            keys = (workers.unsqueeze(-1) * d + workers.unsqueeze(-2)).flatten()
            if seen is not None:
                seen[keys] = True
            else:
                pieces.append(torch.unique(keys))
    if seen is not None:
        seen[own] = True
        return torch.nonzero(seen).flatten()
    return torch.unique(torch.cat(pieces))


def dense_rows_to_slots(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Natural-layout rows x (R, B, d, K), mask (R, B, d) -> slots: workers (R, B, A), slot mask (R, B, A),
    x (R, A, K, B) feature-major, with each row's observed workers first (in worker order)."""
    order = torch.sort(mask, dim=-1, descending=True, stable=True).indices
    width = max(int(mask.sum(-1).max()) if mask.numel() else 0, 1)
    workers = order[..., :width].contiguous()
    slot_mask = mask.gather(-1, workers)
    k = x.shape[-1]
    slot_x = x.gather(2, workers.unsqueeze(-1).expand(-1, -1, -1, k)) * slot_mask.unsqueeze(-1)
    return workers, slot_mask, slot_x.permute(0, 2, 3, 1).contiguous()


# ---------------------------------------------------------------------------------------------- gathered network
def _scatter_rows(target: torch.Tensor, index: torch.Tensor, values: torch.Tensor) -> None:
    """``target.view(-1, w).index_add_(0, index, values)`` for values (N, w), as one flat ``scatter_add_`` of
    element indices: on the CPU, ``index_add_`` of rows only ``w = K`` wide costs about twice as much (74,000
    rows of 3 into a 207 MB weight: 1.28 ms vs 0.47 + 0.21 ms to build the element index). Each element
    receives its additions in the same order either way."""
    width = values.shape[-1]
    if width == 1:
        target.view(-1).index_add_(0, index, values.view(-1))
        return
    elements = (index.unsqueeze(1) * width + torch.arange(width, device=index.device)).view(-1)
    target.view(-1).scatter_add_(0, elements, values.reshape(-1))


class _BlockGradient:
    """Collects one layer's gradient with respect to its gathered blocks, in the gathered order (so it is
    scattered back without a transpose): full ``K x K`` blocks ``x[s, l] g[t, m]`` (R, B, A_s, A_t, K, K) for
    general inputs, and, for one-hot inputs, only the rows ``l = label[s]`` of each block, ``g[t, :]``
    (K times less to compute and scatter)."""

    def __init__(self):
        self.blocks: torch.Tensor | None = None
        self.rows: list[tuple[torch.Tensor, torch.Tensor]] = []  # (labels (R, B, A), g (R, B, A, K))

    def add(self, contribution: torch.Tensor) -> None:
        self.blocks = contribution if self.blocks is None else self.blocks.add_(contribution)


class _BlockProduct(torch.autograd.Function):
    """``z[r, t*K+m, b] = sum_{s, l} blocks[r, s*K+l, t*K+m, b] x[r, s*K+l, b]`` on gathered feature-major
    blocks (R, AK, AK, B). The blocks' gradient goes to a :class:`_BlockGradient` instead of autograd (the
    blocks are copies, not parameters): as outer products ``x[s, l] g[t, m]``, or, when ``labels`` (R, B, A)
    says that ``x`` is one-hot, as the gradient rows ``g[t, :]`` of the blocks' rows ``labels[s]``."""

    @staticmethod
    def forward(ctx, x, blocks, sink, shape, labels):
        ctx.save_for_backward(x, blocks)
        ctx.sink, ctx.shape, ctx.labels = sink, shape, labels
        return (blocks * x.unsqueeze(2)).sum(1)

    @staticmethod
    def backward(ctx, grad_out):
        x, blocks = ctx.saved_tensors
        r, a, k, b = ctx.shape
        grad_x = (blocks * grad_out.unsqueeze(1)).sum(2) if ctx.needs_input_grad[0] else None
        # (R, B, A, K) copies (small), so that what is built from them comes out contiguous in the gathered order
        g_b = grad_out.view(r, a, k, b).permute(0, 3, 1, 2).contiguous()
        if ctx.labels is not None:
            ctx.sink.rows.append((ctx.labels, g_b))
        else:
            x_b = x.view(r, a, k, b).permute(0, 3, 1, 2).contiguous()
            ctx.sink.add(x_b[:, :, :, None, :, None] * g_b[:, :, None, :, None, :])  # (R, B, A_s, A_t, K_l, K_m)
        return grad_x, None, None, None, None


class GatheredNetwork:
    """A :class:`DEEMNetwork`'s parameters restricted to one batch's answer slots.

    ``workers`` (R, B, A) int64 and ``mask`` (R, B, A) float (see the module docstring). With
    ``train=True`` the per-worker parameters (layer biases, iRBM) are gathered through autograd, so
    ``backward`` fills their ``.grad`` (they are small: ``O(d K^2)``), and the layer blocks' gradient is
    collected in the gathered order for :meth:`layer_gradients` / :meth:`apply_layer_step` (the stored
    layer weights never get a ``.grad``: that would be a full-size tensor per batch).

    Gathered once per batch and reused by the sampler's steps and the loss. Build it anew after every
    parameter update.
    """

    def __init__(self, network: DEEMNetwork, workers: torch.Tensor, mask: torch.Tensor, train: bool = False,
                 shared: tuple | None = None):
        """``shared``: :meth:`irbm_table` of ``network`` made once for many batches of an unchanged network (it is
        O(d K^2); made per batch, scoring 240,000 completed tasks of 500 workers x 200 classes took minutes and
        GBs; attack round 6)."""
        self.network = network
        r, b, a = workers.shape
        k, d, n_layers = network.n_classes, network.n_workers, network.n_layers
        self.shape = (r, b, a, k)
        self.workers = workers
        self.mask = mask
        self.train = train
        grad_mode = torch.enable_grad() if train else torch.no_grad()
        with grad_mode:
            # ---- layer blocks (R, A*K, A*K, B): [r, s*K+l, t*K+m, b] = w_{w_s, w_t}^{lm} of task b
            self._index, self._present = self._block_index(network, workers)
            self.blocks: list[torch.Tensor] = []
            for weight in network.layer_weights:
                gathered = self._gather_blocks(network, weight.detach())  # (R, B, A, A, K, K)
                if r == 1 and gathered.is_contiguous():
                    # one 2-D transpose (tasks x block entries) and a copy of whole task rows: faster on the CPU
                    # than one 6-D permute with the tasks innermost
                    fm = gathered.view(b, -1).t().contiguous().view(1, a, a, k, k, b).transpose(2, 3)
                    fm = fm.reshape(1, a * k, a * k, b)
                else:
                    fm = gathered.permute(0, 2, 4, 3, 5, 1).reshape(r, a * k, a * k, b).contiguous()
                # requires_grad only makes autograd call _BlockProduct.backward, which routes this gradient
                # to the layer's _BlockGradient (returning None for the blocks themselves)
                self.blocks.append(fm.requires_grad_(train))
            self._sinks = [_BlockGradient() for _ in range(n_layers)]
            # runs of several depths (DEEMNetwork.run_depths): (R, 1, 1, 1) bool per layer, True where the run
            # uses the layer; a run shallower than a layer passes its slots through it unchanged
            self._active = [network._layer_active(layer) for layer in range(n_layers)]
            run = torch.arange(r, device=workers.device).view(r, 1, 1)
            self._rows = (workers + run * d).flatten()  # each slot's row in a (R*d, ...) view of a parameter
            # per-slot parameters are laid out feature-major, (R, A, F, B) with the batch last, before any arithmetic:
            # the per-class reductions below then run over a middle axis with the long batch axis contiguous
            if network.bias == "prior":
                # every per-worker parameter gathered first (Definition 1's pattern is the same for every
                # worker): nothing here grows with the number of workers
                gathered_rows = torch.cat(
                    [param.reshape(r * d, -1).index_select(0, self._rows).view(r, b, a, -1)
                     for param in (network.irbm_weight, network.visible_bias, *network.layer_biases)], dim=-1)
                per_slot = gathered_rows.permute(0, 2, 3, 1).contiguous()  # (R, A, F, B)
                free = network.weight_free[0].view(1, 1, k, k, 1)
                w = per_slot[:, :, :k * k].view(r, a, k, k, b) * free + network.weight_fixed[0].view(1, 1, k, k, 1)
                a_vis = per_slot[:, :, k * k:k * k + k] * network.visible_free[0].view(1, 1, k, 1)
                b_hid = network.hidden_bias * network.hidden_free
                partition = torch.logsumexp(a_vis.unsqueeze(3) + w, dim=2)  # (R, A, K, B)
                own_base = partition[:, :, :1]
                own_centred = partition - own_base
                irbm_w, irbm_a = w, a_vis
                biases = per_slot[:, :, k * k + k:]
            else:
                # ---- every per-worker parameter in one table (R, d, F), gathered with one index_select
                table, b_hid, centred_sum, base_sum, dtype = shared if shared is not None else self.irbm_table(network)
                gathered_rows = table.reshape(r * d, -1).index_select(0, self._rows).view(r, b, a, -1)
                per_slot = gathered_rows.permute(0, 2, 3, 1).contiguous()  # (R, A, F, B)
                irbm_w, irbm_a, own_centred, own_base, biases = per_slot.split([k * k, k, k, 1, n_layers * k], dim=2)
            # ---- iRBM: weights (R, A*K, K, B) [s*K+l, m], visible bias (R, A, K, B)
            self.irbm_w = irbm_w.reshape(r, a * k, k, b)
            self.irbm_a = irbm_a.contiguous()
            # ---- layer biases (R, A, K, B)
            self.biases = list(biases.split(k, dim=2)) if n_layers else []
            # ---- the workers' partitions log sum_l exp(a_i^l + w_i^{lm}), split into a class-independent part
            # (base) and the rest (centred): bias="irbm" adds those of the missing workers (all workers minus
            # the task's own), bias="prior" subtracts those of the task's own workers
            # (summed over the slots in the slot-major layout (R, B, A, K): a sum over a middle axis of the
            # feature-major layout adds the slots in another order, which changes the last bit of the results)
            own = mask.unsqueeze(-1)  # (R, B, A, 1)
            own_centred = (own_centred.permute(0, 3, 1, 2).contiguous() * own).sum(2).transpose(1, 2)  # (R, K, B)
            own_base = (own_base.permute(0, 3, 1, 2).contiguous() * own).sum((2, 3))  # (R, B)
            if network.bias == "prior":
                self.hidden_bias = b_hid.unsqueeze(-1) - own_centred  # (R, K, B)
                #: class-independent part of the logits left out of them, per task (R, B) in float64:
                #: F = F_rel - offset
                self.offset = -own_base.double()
            else:
                # the sums over all d workers are O(d) large: added up in float64 and rounded once
                total = (b_hid.double() + centred_sum).unsqueeze(-1)
                self.hidden_bias = (total - own_centred).to(dtype)
                self.offset = base_sum.unsqueeze(-1) - own_base

    @staticmethod
    def irbm_table(network: DEEMNetwork) -> tuple:
        """For ``bias="irbm"``: every worker's iRBM parameters and partition in one (R, d, F) table, the hidden bias,
        and the partitions' sums over all workers (float64): what every batch of tasks reads."""
        r, d, k = network.n_runs, network.n_workers, network.n_classes
        w, a_vis, b_hid = network.effective_irbm()
        missing = torch.logsumexp(a_vis.unsqueeze(-1) + w, dim=2)  # (R, d, K)
        base = missing[..., :1]  # class-independent part, kept apart (it is large when d is)
        centred = missing - base  # (R, d, K), centred[..., 0] = 0
        table = torch.cat([w.reshape(r, d, k * k), a_vis, centred, base]
                          + [bias.view(r, d, k) for bias in network.layer_biases], dim=2)
        return (table, b_hid, centred.sum(1, dtype=torch.float64), base.sum((1, 2), dtype=torch.float64),
                a_vis.dtype)

    # ------------------------------------------------------------------ gather / scatter
    @staticmethod
    def _block_index(network: DEEMNetwork, workers: torch.Tensor):
        """Flat index of every slot pair's block or weight elements, and the stored-pair mask (or None)."""
        r, b, a = workers.shape
        k, d = network.n_classes, network.n_workers
        if network.n_layers == 0:
            return None, None
        run = torch.arange(r, device=workers.device).view(r, 1, 1, 1)
        if network.layout == "blocks":
            index, present = network.pair_index(workers.unsqueeze(-1), workers.unsqueeze(-2))  # (R, B, A, A)
            return (index + run * network.n_pairs if r > 1 else index).flatten(), present
        # matrix layout: one index per weight element, (R, B, A, K, A, K) -> flat into (R, dK, dK)
        units = (workers.unsqueeze(-1) * k + torch.arange(k, device=workers.device)).view(r, b, a * k)
        flat = units.unsqueeze(-1) * (d * k) + units.unsqueeze(-2) + run * (d * k) ** 2  # (R, B, AK, AK)
        return flat.flatten(), None

    def _gather_blocks(self, network: DEEMNetwork, weight: torch.Tensor) -> torch.Tensor:
        r, b, a, k = self.shape
        if network.layout == "blocks":
            rows = weight.view(-1, k * k).index_select(0, self._index).view(r, b, a, a, k, k)
            if self._present is not None:
                rows = rows * self._present.view(r, b, a, a, 1, 1).to(rows.dtype)
            return rows
        values = torch.take(weight, self._index).view(r, b, a, k, a, k)
        return values.permute(0, 1, 2, 4, 3, 5)

    def layer_gradients(self, layer: int, scale: torch.Tensor | None = None,
                        ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The gradient of layer ``layer``'s gathered blocks as ``(index, values)`` pairs, values (N, w), for
        ``weight.view(-1, w).index_add_(0, index, values)``: ``w = K*K`` (whole blocks, block layout), ``K``
        (block rows of one-hot inputs) or 1 (matrix layout, whole blocks element by element). ``scale`` (R,)
        multiplies each run's values (e.g. minus its learning rate); non-finite gradients count as 0."""
        r, b, a, k = self.shape
        sink = self._sinks[layer]
        present = None if self._present is None else self._present.to(self.mask.dtype)
        out = []
        if sink.rows:
            out.extend(self._row_gradients(sink.rows, scale, present))
        if sink.blocks is not None:
            grad = sink.blocks.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
            if scale is not None:
                grad = grad.mul_(scale.view(r, 1, 1, 1, 1, 1))
            if self.network.layout == "blocks":
                if present is not None:
                    grad = grad.mul_(present.view(r, b, a, a, 1, 1))
                out.append((self._index, grad.view(-1, k * k)))
            else:
                out.append((self._index, grad.permute(0, 1, 2, 4, 3, 5).reshape(-1, 1)))
        return out

    def _row_index(self, labels: torch.Tensor, slots: torch.Tensor | None = None) -> torch.Tensor:
        """(R, B, A_s, A_t) index of the block row ``labels[s]`` of every slot pair, in ``weight.view(-1, K)``;
        with ``slots`` (n,) flat positions in (R, B, A_s), only those slots' rows: (n, A_t)."""
        r, b, a, k = self.shape
        if self.network.layout == "blocks":
            if slots is not None:
                pairs = take_rows(self._index.view(r * b * a, a), slots)
                return pairs * k + take_rows(labels.reshape(-1), slots).unsqueeze(-1)
            return self._index.view(r, b, a, a) * k + labels.unsqueeze(-1)  # row of the block: pair * K + l
        # matrix layout: element (i*K+l, j*K) starts row ((i*K+l)*d*K + j*K) / K
        d = self.network.n_workers
        run = torch.arange(r, device=labels.device).view(r, 1, 1, 1)
        rows = (self.workers * k + labels).unsqueeze(-1)
        index = rows * d + self.workers.unsqueeze(-2) + run * (d * k * d)
        return index if slots is None else take_rows(index.view(r * b * a, a), slots)

    def _row_gradients(self, rows: list[tuple[torch.Tensor, torch.Tensor]], scale: torch.Tensor | None,
                       present: torch.Tensor | None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """One-hot inputs: block (s, t)'s row ``labels[s]`` gains ``g[t, :]``, for every ``(labels, g)`` of
        ``rows`` (the positive and the negative pass). Where a later pass has the first one's label at slot
        ``s`` (a chain that still agrees with the data), its gradient joins the first pass's row instead of
        being scattered separately: the scatter, the costly part, then writes each such row once."""
        r, b, a, k = self.shape
        weight_s = self.mask if scale is None else self.mask * scale.view(r, 1, 1)  # (R, B, A_s), 0 = padding
        first_labels = rows[0][0]
        grads = [torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0) for _, grad in rows]  # (R, B, A_t, K)
        values = grads[0].unsqueeze(2).expand(r, b, a, a, k)  # (R, B, A_s, A_t, K)
        apart = []
        for (labels, _), grad in zip(rows[1:], grads[1:]):
            same = labels == first_labels  # (R, B, A_s)
            values = values + same.to(grad.dtype)[..., None, None] * grad.unsqueeze(2)
            apart.append((labels, grad, ~same & (self.mask > 0)))
        pair_weight = weight_s.unsqueeze(-1) if present is None else weight_s.unsqueeze(-1) * present  # (R,B,A,1|A)
        out = [(self._row_index(first_labels).flatten(), (pair_weight.unsqueeze(-1) * values).reshape(-1, k))]
        for labels, grad, keep in apart:
            where = torch.nonzero(keep.reshape(-1)).squeeze(1)  # flat (run, task, slot) of the rows written apart
            if not where.numel():
                continue
            index = self._row_index(labels, where)  # (n, A_t)
            weight = take_rows(pair_weight.reshape(r * b * a, -1), where)  # (n, 1 | A_t)
            values = take_rows(grad.view(r * b, a, k), torch.div(where, a, rounding_mode="floor"))  # (n, A_t, K)
            out.append((index.flatten(), (weight.unsqueeze(-1) * values).reshape(-1, k)))
        return out

    @torch.no_grad()
    def apply_layer_step(self, scale: torch.Tensor, momentum: float = 0.0,
                         buffers: list[torch.Tensor] | None = None) -> None:
        """SGD on the layer weights: ``weight += scale[r] * gradient`` (``scale = -lr``, 0 for a frozen run).
        Without momentum only the blocks this batch touched change; with momentum (``buffers``: one
        zero-initialised tensor per layer, shaped like the weights) every stored block moves, as in the dense
        update ``buf = momentum * buf + grad; weight -= lr * buf``."""
        r = self.shape[0]
        for layer, weight in enumerate(self.network.layer_weights):
            if momentum and buffers is not None:
                buffer = buffers[layer]
                buffer.mul_(momentum)
                for index, values in self.layer_gradients(layer):
                    _scatter_rows(buffer, index, values)
                weight.data.add_(buffer * scale.view(r, *([1] * (weight.dim() - 1))))
                continue
            for index, values in self.layer_gradients(layer, scale):
                _scatter_rows(weight.data, index, values)

    # ------------------------------------------------------------------ evaluation
    def _layer(self, blocks: torch.Tensor, bias: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        r, b, a, k = self.shape
        bsz = x.shape[-1]
        logits = (blocks * x.reshape(r, a * k, 1, bsz)).sum(1)  # (R, A*K, B)
        return logits.view(r, a, k, bsz).add_(bias)

    def propagate(self, x: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Every layer's output of ``x`` (R, A, K, B), mask (R, A, B), input first; padded slots zeroed.
        ``labels`` (R, B, A): ``x`` is the one-hot of these labels (the first layer's gradient is then
        collected row by row, see :class:`_BlockGradient`)."""
        r, b, a, k = self.shape
        outputs = [x]
        current = x
        for layer, (blocks, bias) in enumerate(zip(self.blocks, self.biases)):
            if self.train and torch.is_grad_enabled():
                product = _BlockProduct.apply(current.reshape(r, a * k, b), blocks, self._sinks[layer], (r, a, k, b),
                                              labels if layer == 0 else None)
                logits = product.view(r, a, k, b) + bias
            else:
                logits = self._layer(blocks, bias, current)
            out = sparsemax(logits, dim=2) * mask.unsqueeze(2)
            active = self._active[layer]
            current = out if active is None else torch.where(active, out, current)
            outputs.append(current)
        return outputs

    def hidden_logits(self, v: torch.Tensor) -> torch.Tensor:
        """Hidden logits (R, K, B) of the iRBM input ``v`` (R, A, K, B), missing workers summed out, less the
        class-independent :attr:`offset` (the softmax is the posterior p(h | x))."""
        r, b, a, k = self.shape
        return self.hidden_bias + (self.irbm_w * v.reshape(r, a * k, 1, v.shape[-1])).sum(1)

    def energy_and_logits(self, x: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor | None = None,
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """``F + offset`` (R, B) and the hidden logits (R, K, B) of ``x`` (R, A, K, B): the free energy up to a
        per-task constant (the same for every input of the task, so it cancels in ``F(x) - F(x')``).
        ``labels``: see :meth:`propagate`."""
        v = self.propagate(x, mask, labels)[-1]
        logits = self.hidden_logits(v)
        return -(self.irbm_a * v).sum((1, 2)) - torch.logsumexp(logits, dim=1), logits

    def free_energy_and_logits(self, x: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor | None = None,
                               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Free energy F(x) (R, B) with the hidden unit and the missing workers summed out, and the hidden
        logits (R, K, B), of ``x`` (R, A, K, B), mask (R, A, B). Equal to the dense model's. ``labels``: see
        :meth:`propagate`."""
        energy, logits = self.energy_and_logits(x, mask, labels)
        return energy - self.offset.to(energy.dtype), logits

    @torch.no_grad()
    def sampler_energy(self):
        """``fn(x (R, A, K, B), mask (R, A, B)) -> (U, dU/dx)`` for DMALA, with ``U = -F`` up to the per-task
        constant :attr:`offset` (which cancels in the Metropolis-Hastings ratio); the hand-written backward
        pass of :meth:`DEEMNetwork.sampler_energy` on the gathered blocks."""
        r, b, a, k = self.shape
        blocks = self.blocks
        biases = [bias.detach() for bias in self.biases]
        irbm_w, irbm_a = self.irbm_w.detach(), self.irbm_a.detach()
        hidden_bias = self.hidden_bias.detach()

        @torch.no_grad()
        def log_density_and_grad(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            bsz = x.shape[-1]
            outputs = self._layer_outputs(x, mask, blocks, biases)
            v = outputs[-1]
            logits = (irbm_w * v.reshape(r, a * k, 1, bsz)).sum(1).add_(hidden_bias)  # (R, K, B)
            log_partition = torch.logsumexp(logits, dim=1)
            posterior = logits.sub_(log_partition.unsqueeze(1)).exp_()  # (R, K, B)
            grad = (irbm_w * posterior.unsqueeze(1)).sum(2).view(r, a, k, bsz).add_(irbm_a)  # dU/dv
            for layer in range(len(blocks) - 1, -1, -1):
                grad_logits = sparsemax_backward(outputs[layer + 1], grad, dim=2)
                through = (blocks[layer] * grad_logits.reshape(r, 1, a * k, bsz)).sum(2).view(r, a, k, bsz)
                active = self._active[layer]  # a run shallower than this layer: the gradient passes on
                grad = through if active is None else torch.where(active, through, grad)
            return (irbm_a * v).sum((1, 2)).add_(log_partition), grad

        return log_density_and_grad


    # ------------------------------------------------------------------ training pass, gradients by hand
    def training_energies(self, positive: torch.Tensor, negative: torch.Tensor, mask: torch.Tensor,
                          positive_labels: torch.Tensor | None = None,
                          negative_labels: torch.Tensor | None = None,
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``F + offset`` of the positive and of the negative inputs (R, B) each, and the positive inputs' hidden
        logits (R, K, B), as outputs of one autograd node whose backward computes every parameter gradient by
        hand (:class:`_TrainingPass`): the layer blocks' go to :meth:`apply_layer_step`, the others to
        :attr:`small_gradients`. Nothing of the gather is recorded by autograd. ``*_labels``: the inputs are the
        one-hot of these labels (R, B, A), or None (soft inputs). After ``backward``, :meth:`apply_small_step` (plain
        SGD) or :meth:`materialise_gradients` (into ``.grad``) take the small parameters' gradients."""
        trigger = torch.ones((), device=positive.device, requires_grad=True)
        return _TrainingPass.apply(trigger, self, positive, negative, mask, positive_labels, negative_labels)

    def _partition_softmax(self) -> torch.Tensor:
        """``softmax_l(a_s^l + w_s^{lm})`` of every slot's worker: (R, A, K_l, K_m, B)."""
        r, b, a, k = self.shape
        z = self.irbm_a.unsqueeze(3) + self.irbm_w.view(r, a, k, k, b)
        return torch.softmax(z, dim=2)

    def _forward_pass(self, x: torch.Tensor, mask: torch.Tensor):
        """Layer outputs, hidden logits, posterior and ``F + offset`` of x (R, A, K, B) without autograd."""
        r, b, a, k = self.shape
        outputs = self._layer_outputs(x, mask, self.blocks, self.biases)
        v = outputs[-1]
        logits = self.hidden_bias + (self.irbm_w * v.reshape(r, a * k, 1, b)).sum(1)  # (R, K, B)
        log_partition = torch.logsumexp(logits, dim=1)
        posterior = torch.exp(logits - log_partition.unsqueeze(1))
        return outputs, logits, posterior, -(self.irbm_a * v).sum((1, 2)) - log_partition

    def _layer_outputs(self, x: torch.Tensor, mask: torch.Tensor, blocks: list[torch.Tensor],
                       biases: list[torch.Tensor]) -> list[torch.Tensor]:
        """Every layer's output of ``x`` (R, A, K, B) without autograd, input first (a run passes its slots
        through the layers it skips)."""
        outputs = [x]
        current = x
        for layer, (blk, bias) in enumerate(zip(blocks, biases)):
            out = sparsemax(self._layer(blk, bias, current), dim=2).mul_(mask.unsqueeze(2))
            active = self._active[layer]
            current = out if active is None else torch.where(active, out, current)
            outputs.append(current)
        return outputs

    def _backward_pass(self, saved, grad_energy: torch.Tensor, grad_logits_extra: torch.Tensor | None,
                       labels: torch.Tensor | None, mask: torch.Tensor, sums: dict) -> None:
        """Gradients of ``sum_b grad_energy[b] * (F + offset)[b] + sum grad_logits_extra * logits`` for one pass,
        added into ``sums`` (per-slot terms) and the layers' block sinks."""
        r, b, a, k = self.shape
        outputs, _, posterior, _ = saved
        v = outputs[-1]
        g_logits = posterior * (-grad_energy).unsqueeze(1)  # dLoss/dlogits (R, K, B)
        if grad_logits_extra is not None:
            g_logits = g_logits + grad_logits_extra
        sums["hidden"] = sums["hidden"] + g_logits.sum(-1)  # (R, K)
        g_e = grad_energy.view(r, 1, 1, b)
        # iRBM, direct terms: F = -sum a.v - logsumexp(logits), logits = ... + sum_s v_s . w_s[:, m]
        sums["w"] = sums["w"] + v.reshape(r, a * k, 1, b) * g_logits.unsqueeze(1)  # (R, AK, K, B)
        sums["a"] = sums["a"] - g_e * v  # (R, A, K, B)
        # the task's own workers' partitions: logits carry -(M_s[m] - M_s[0]) for every real slot s
        g_total = g_logits.sum(1, keepdim=True)  # (R, 1, B)
        g_own = (-g_logits).unsqueeze(1).expand(r, a, k, b).clone()  # dLoss/dM_s[m] (R, A, K_m, B)
        g_own[:, :, :1] += g_total.unsqueeze(1)
        sums["own"] = sums["own"] + g_own * mask.unsqueeze(2)
        sums["total"] = sums["total"] + g_logits.sum(-1)  # (R, K): the all-workers term (bias="irbm")
        sums["total"][:, :1] -= g_total.sum(-1)
        # back through the layers
        grad_v = (self.irbm_w * g_logits.unsqueeze(1)).sum(2).view(r, a, k, b) - g_e * self.irbm_a  # dLoss/dv
        for layer in range(len(self.blocks) - 1, -1, -1):
            grad_z = sparsemax_backward(outputs[layer + 1], grad_v, dim=2)  # 0 on padded slots
            active = self._active[layer]
            if active is not None:  # a run that skips this layer: no gradient for its blocks and biases
                grad_z = grad_z * active
            sums["biases"][layer] = sums["biases"][layer] + grad_z
            x_in = outputs[layer]
            g_b = grad_z.permute(0, 3, 1, 2).contiguous()  # (R, B, A, K)
            if layer == 0 and labels is not None:
                self._sinks[layer].rows.append((labels, g_b))
            else:
                x_b = x_in.permute(0, 3, 1, 2).contiguous()
                self._sinks[layer].add(x_b[:, :, :, None, :, None] * g_b[:, :, None, :, None, :])
            if layer:
                through = (self.blocks[layer] * grad_z.reshape(r, 1, a * k, b)).sum(2).view(r, a, k, b)
                grad_v = through if active is None else torch.where(active, through, grad_v)

    @torch.no_grad()
    def _collect_parameter_gradients(self, sums: dict) -> None:
        """Per-slot gradient terms -> :attr:`small_gradients`: ``(parameter, values (N, w))`` rows for the slots'
        workers (Definition 1's masks applied), plus the hidden bias's (R, K) and, with ``bias="irbm"``, the
        dense all-workers term. Applied by :meth:`apply_small_step` or written to ``.grad`` by
        :meth:`materialise_gradients`."""
        net = self.network
        r, b, a, k = self.shape
        sigma = self._partition_softmax()  # (R, A, K_l, K_m, B)
        own = sums["own"].unsqueeze(2)  # (R, A, 1, K_m, B): dLoss/dM_s[m]
        own_sigma = own * sigma
        grad_w = sums["w"].view(r, a, k, k, b) + own_sigma  # (R, A, K, K, B)
        grad_a = sums["a"] + own_sigma.sum(3)  # (R, A, K, B)

        def per_row(per_slot: torch.Tensor, width: int) -> torch.Tensor:
            return per_slot.reshape(r, a, width, b).permute(0, 3, 1, 2).reshape(-1, width)

        rows = [(net.irbm_weight, per_row(grad_w, k * k) * net.weight_free[0].reshape(1, k * k)),
                (net.visible_bias, per_row(grad_a, k) * net.visible_free[0].reshape(1, k))]
        rows += [(bias, per_row(grad, k)) for bias, grad in zip(net.layer_biases, sums["biases"])]
        dense = {net.hidden_bias: sums["hidden"] * net.hidden_free}
        if net.bias == "irbm":  # every worker's partition enters each task that it did not answer
            w_all, a_all, _ = net.effective_irbm()
            sigma_all = torch.softmax(a_all.unsqueeze(-1) + w_all, dim=2)  # (R, d, K_l, K_m)
            total = sums["total"].view(r, 1, 1, k) * sigma_all
            dense[net.irbm_weight] = total * net.weight_free
            dense[net.visible_bias] = total.sum(-1) * net.visible_free
        self.small_gradients = {"rows": rows, "dense": dense}

    @torch.no_grad()
    def materialise_gradients(self) -> None:
        """Add :attr:`small_gradients` into the parameters' ``.grad`` (dense, as autograd would)."""
        for param, values in self.small_gradients["rows"]:
            if param.grad is None:
                param.grad = torch.zeros_like(param)
            _scatter_rows(param.grad, self._rows, values)
        for param, values in self.small_gradients["dense"].items():
            if param.grad is None:
                param.grad = torch.zeros_like(param)
            param.grad.add_(values)

    @torch.no_grad()
    def apply_small_step(self, scale: torch.Tensor) -> None:
        """Plain SGD on the small parameters from :attr:`small_gradients`: ``param += scale[r] * gradient``,
        touching only the rows of this batch's workers (plus the dense terms); non-finite values count as 0."""
        r = self.shape[0]
        for param, values in self.small_gradients["rows"]:
            width = values.shape[-1]
            step = torch.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0).view(r, -1, width) * scale.view(r, 1, 1)
            _scatter_rows(param.data, self._rows, step.view(-1, width))
        for param, values in self.small_gradients["dense"].items():
            step = torch.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
            param.data.add_(step * scale.view(r, *([1] * (param.dim() - 1))))


class _TrainingPass(torch.autograd.Function):
    """The loss's two passes (positive and negative inputs) on gathered blocks, forward and backward by hand."""

    @staticmethod
    def forward(ctx, trigger, gathered, positive, negative, mask, positive_labels, negative_labels):
        with torch.no_grad():
            saved_pos = gathered._forward_pass(positive, mask)
            saved_neg = gathered._forward_pass(negative, mask)
        ctx.gathered, ctx.mask = gathered, mask
        ctx.saved = (saved_pos, saved_neg)
        ctx.labels = (positive_labels, negative_labels)
        return saved_pos[3], saved_neg[3], saved_pos[1]

    @staticmethod
    def backward(ctx, grad_pos, grad_neg, grad_logits):
        gathered = ctx.gathered
        r, b, a, k = gathered.shape
        device = grad_pos.device
        with torch.no_grad():
            sums = {"hidden": torch.zeros(r, k, device=device), "total": torch.zeros(r, k, device=device),
                    "w": 0.0, "a": 0.0, "own": 0.0, "biases": [0.0] * len(gathered.blocks)}
            gathered._backward_pass(ctx.saved[0], grad_pos, grad_logits, ctx.labels[0], ctx.mask, sums)
            gathered._backward_pass(ctx.saved[1], grad_neg, None, ctx.labels[1], ctx.mask, sums)
            gathered._collect_parameter_gradients(sums)
        ctx.saved = None
        return (None,) * 7


# ---------------------------------------------------------------------------------------------- whole data
#: memory the gathered per-slot parameters of one batch of tasks may take in :func:`free_energy_of_tasks`
TASK_BATCH_BYTES = 256 << 20
#: float32 copies of a slot's gathered parameters alive at once while a batch is scored: held-out scoring of 60
#: classes took +673 MiB in batches sized at four copies for 256 MiB (attack round 67)
SCORE_COPIES = 10


@torch.no_grad()
def free_energy_of_tasks(network: DEEMNetwork, answers: Answers, tasks: torch.Tensor | None = None,
                         batch_size: int = 8192, inputs: torch.Tensor | None = None,
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Free energy (R, n) and posterior p(h | x) (R, n, K, hidden-unit order) of every task in ``tasks``
    (default: all), from their answers only, ``batch_size`` tasks at a time.

    ``inputs``: optional (nnz, K) per-answer input vectors replacing the answers' own (one-hot labels or soft
    labels), e.g. to score a task with one answer changed.
    """
    device = network.irbm_weight.device
    k, r = network.n_classes, network.n_runs
    if tasks is None:
        tasks = torch.arange(answers.n_tasks, device=device)
    energies, posteriors = [], []
    # tasks per batch within TASK_BATCH_BYTES: each slot gathers its worker's K x K weights (and a layer a x a
    # blocks of them), several copies: 8,192 tasks of 3 answers x 200 classes took 8 GB (attack round 6). The tasks
    # go in order of their answer counts, each batch sized for its own widest task: sized for the data's widest,
    # ten control tasks answered by 200 workers cut a 3,000-task set of 3 answers a task into batches of 15 tasks,
    # each padded to whichever was widest in it (tests/test_sparse_training.py counts the batches)
    counts = answers.counts()[tasks]
    order = torch.argsort(counts, stable=True)
    widths = counts[order].clamp_min(1).cpu().numpy().astype(np.float64)
    per_task = (4 * SCORE_COPIES * r * widths
                * (k * k * (1 + network.n_layers * widths) + k * (2 + network.n_layers) + 1))
    limit = max(1, int(batch_size))
    # (the iRBM bias's all-workers table, shared by the batches where there will be more than one)
    several = tasks.numel() > limit or (tasks.numel() and tasks.numel() * per_task[-1] > TASK_BATCH_BYTES)
    shared = GatheredNetwork.irbm_table(network) if network.bias != "prior" and several else None
    start = 0
    while start < tasks.numel():
        # the widest task of tasks[start:end] is its last: the largest end whose end - start tasks of that width fit
        # (at least one task), by bisection (the bytes grow with end)
        low, high = start + 1, min(tasks.numel(), start + limit)
        while low < high:
            middle = (low + high + 1) // 2
            if (middle - start) * per_task[middle - 1] <= TASK_BATCH_BYTES:
                low = middle
            else:
                high = middle - 1
        end = low
        batch = tasks[order[start:end]].unsqueeze(0).expand(r, -1)
        start = end
        slots = answers.slots(batch)
        if inputs is not None:
            x = (inputs[slots.answer] * slots.mask.unsqueeze(-1)).permute(0, 2, 3, 1).contiguous()
        else:
            x = answers.one_hot_fm(slots.answer, slots.mask, k)
        gathered = GatheredNetwork(network, slots.workers, slots.mask, shared=shared)
        energy, logits = gathered.free_energy_and_logits(x, slots.mask_fm)
        energies.append(energy)
        posteriors.append(torch.softmax(logits, dim=1).transpose(1, 2))
    if not energies:
        return torch.zeros(r, 0, device=device), torch.zeros(r, 0, k, device=device)
    back = torch.empty_like(order)
    back[order] = torch.arange(order.numel(), device=order.device)  # the outputs in the order of ``tasks``
    return torch.cat(energies, dim=1)[:, back], torch.cat(posteriors, dim=1)[:, back]
