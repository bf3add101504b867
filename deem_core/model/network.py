"""The DEEM network: multinomial layers feeding an identifiable RBM (iRBM) with one hidden unit.

Every parameter carries a leading *run* dimension ``R`` so that ``R`` independent models (different
learning rates and/or seeds) train as one batched model: each layer's ``(K, K, d, d)`` weight tensor
is stored as one ``(d*K, d*K)`` matrix per run and applied with a single batched matrix product.

Flattened unit/class layout: index ``i * K + l`` is worker ``i``, class ``l``.

Missing annotations
-------------------
An input cell that is not observed is a zero vector (never a class). Multinomial layers ignore it
(it contributes nothing to the products) and their output for that worker is zeroed again, so a
worker that is missing at the input stays missing up to the iRBM. The iRBM then *sums the missing
visible units out* of the joint distribution: for a missing worker ``i`` the hidden logit of class
``m`` gains ``log sum_l exp(a_i^l + w_i^{lm})``. This is exact marginalisation, so with no layers the
posterior equals the Dawid-Skene posterior over the observed labels only (Lemma 1 holds on sparse
data). Leaving the unit out instead (as RBMs for collaborative filtering do) would bias the posterior
by the hidden-class-dependent partition of every missing unit.

What the hidden bias means
--------------------------
With ``bias="irbm"`` (the paper's parameterisation, Definition 1) ``hidden_bias`` is the iRBM's ``b``: the
hidden logits of a task add ``log sum_l exp(a_i^l + w_i^{lm})`` of every missing worker, so the class prior
of a task is ``b`` plus the partitions of all the workers who did not answer it. On sparse data that sum
runs over almost every worker: with thousands of workers its initial noise alone shifts the prior by
nats, and every batch's gradient reaches every worker's parameters through it, a step on the prior
``d`` times the learning rate (measured on 200,000 tasks x 50,000 workers: training from either start
collapsed to one class within an epoch). With ``bias="prior"`` ``hidden_bias`` is the log class prior
itself (Dawid-Skene's coordinates, Lemma 1): the logits are ``b^m + sum_{i obs} (sum_l w_i^{lm} v_i^l -
log sum_l exp(a_i^l + w_i^{lm}))``. For the same model both give the same energies and posteriors (the two
biases differ by the sum of every worker's partition, :meth:`DEEMNetwork.with_bias`); only the coordinates
SGD moves in differ, and a worker that did not answer a task takes no part in it. The training data
choose: ``"irbm"`` when every worker answered every task (the paper's setting, unchanged), ``"prior"``
otherwise.

Runs of several depths
----------------------
``run_depths`` lets the runs of one network use different numbers of layers (at most ``n_layers``): a run of
depth ``t`` passes its input unchanged through layers ``t..n_layers-1`` (forward and the sampler's gradient), so
it computes exactly what a ``t``-layer network computes, and those layers' weights of that run never receive a
gradient. Candidates of every depth then train as one batched model, one set of kernel launches per step: on a
GPU a training step is launch-bound (``benchmarks/results/gpu_h200.txt``), so this is what makes choosing the
depth cost about one run there; on a CPU the shallow runs pay for the deepest run's products, so the trainer
batches depths only on a GPU (:func:`deem_core.methods.choose.depths_together`).
Both layouts: the sparse path's :class:`~deem_core.model.sparse.GatheredNetwork` passes a shallow run's slots
through the layers it skips in the same way.

Layer weight layouts
--------------------
``layout="matrix"`` (default) stores each layer as one ``(d*K, d*K)`` matrix per run, for the dense
feature-major path below. ``layout="blocks"`` stores the same weights as ``K x K`` blocks, one per ordered
worker pair ``(i, j)`` (``[r, p, l, m] = w_ij^{lm}``), for the sparse path (:mod:`deem_core.model.sparse`),
which gathers the blocks between a task's own workers: either all ``d*d`` pairs (``pair_keys=None``,
block ``p = i*d + j``) or only the pairs listed in ``pair_keys`` (sorted ``i*d + j``), typically those that
answer a common task. A pair that is not stored acts as a zero block. Since a task's energy only involves
the blocks between its own workers, a pair that never shares a task never receives a gradient and never
changes a training task's energy: the stored-pairs model trains exactly as the all-pairs model would
(see :mod:`deem_core.model.sparse` for what differs on new tasks).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from deem_core.model import memory
from deem_core.model.sparsemax import sparsemax, sparsemax_backward

__all__ = ["BIASES", "DEEMNetwork", "LAYOUTS", "WORKER_MASKS", "irbm_constant_masks"]

#: layer weight layouts: one (d*K, d*K) matrix per run, or K x K blocks per stored worker pair
LAYOUTS = ("matrix", "blocks")
#: meanings of the hidden bias (module docstring): the iRBM's b, or the log class prior
BIASES = ("irbm", "prior")


def irbm_constant_masks(n_workers: int, n_classes: int, device=None) -> dict[str, torch.Tensor]:
    """Masks of Definition 1 (identifiable RBM).

    Returns ``weight_free`` (d, K, K) and ``weight_fixed`` (d, K, K) so that the effective weight is
    ``w * weight_free + weight_fixed``: ``w^{lm} = 0`` when exactly one of ``l, m`` is the first class
    and ``w^{11} = 1``; plus ``visible_free`` (d, K) with ``a^1 = 0`` and ``hidden_free`` (K,) with
    ``b^1 = 0``. The per-worker masks are views of one (K, K) or (K,) pattern, every worker's the same (each
    network held two (d, K, K) copies of it: 415 MB at 5,441 workers x 100 classes, again in every state kept of
    it; attack round 67).
    """
    d, k = n_workers, n_classes
    first_l = torch.zeros(k, k, dtype=torch.bool, device=device)
    first_l[0, :] = True
    first_m = torch.zeros(k, k, dtype=torch.bool, device=device)
    first_m[:, 0] = True
    free = ~(first_l | first_m)  # (K, K): neither index is the first class
    fixed = torch.zeros(k, k, device=device)
    fixed[0, 0] = 1.0
    hidden_free = torch.ones(k, device=device)
    hidden_free[0] = 0.0
    return {
        "weight_free": free.float().expand(d, k, k),
        "weight_fixed": fixed.expand(d, k, k),
        "visible_free": hidden_free.clone().expand(d, k),
        "hidden_free": hidden_free,
    }


#: the masks of :func:`irbm_constant_masks` that are per-worker views: constants of the network's shape, rebuilt with
#: it (a state read back need not carry them, and one that does is not copied into them)
WORKER_MASKS = ("weight_free", "weight_fixed", "visible_free")


def matrix_to_blocks(matrix: torch.Tensor, d: int, k: int) -> torch.Tensor:
    """(R, d*K, d*K) ``[r, i*K+l, j*K+m]`` -> (R, d*d, K, K) ``[r, i*d+j, l, m]`` (a copy)."""
    r = matrix.shape[0]
    return matrix.reshape(r, d, k, d, k).permute(0, 1, 3, 2, 4).reshape(r, d * d, k, k)


def blocks_to_matrix(blocks: torch.Tensor, d: int, k: int) -> torch.Tensor:
    """Inverse of :func:`matrix_to_blocks`: (R, d*d, K, K) -> (R, d*K, d*K)."""
    r = blocks.shape[0]
    return blocks.reshape(r, d, d, k, k).permute(0, 1, 3, 2, 4).reshape(r, d * k, d * k)


#: a network storing only some worker pairs finds a pair's block in a d x d table while the table is at most this size
#: (4 bytes per pair: 23 MB for 2,400 workers), by binary search in the stored keys beyond
PAIR_LOOKUP_MAX_BYTES = 256 << 20


class DEEMNetwork(nn.Module):
    """``R`` independent DEEM models evaluated together.

    Parameters
    ----------
    n_runs, n_workers, n_classes, n_layers:
        ``R``, ``d``, ``K`` and the number of multinomial layers (0 = plain iRBM).
    layout, pair_keys:
        how the layer weights are stored (module docstring): ``"matrix"`` or ``"blocks"``; with ``"blocks"``,
        ``pair_keys`` (P,) sorted int64 ``i*d + j`` of the stored worker pairs, or None for all ``d*d``.
    bias:
        what ``hidden_bias`` means (module docstring): ``"irbm"`` (Definition 1's ``b``) or ``"prior"``
        (the log class prior); kept in the state dict as the buffer ``prior_bias``.

    Attributes
    ----------
    layer_weights: ParameterList of (R, d*K, d*K) — ``[r, i*K+l, j*K+m] = w_ij^{lm}`` — or, with
        ``layout="blocks"``, (R, P, K, K) — ``[r, p, l, m] = w_ij^{lm}`` for the p-th stored pair ``(i, j)``.
    layer_biases: ParameterList of (R, d*K).
    irbm_weight: (R, d, K, K) free iRBM weights ``[r, i, l, m] = w_i^{lm}`` (constants masked in).
    visible_bias: (R, d, K) free ``a_i^l``.  hidden_bias: (R, K) free ``b^m`` (see ``bias``).
    """

    def __init__(self, n_runs: int, n_workers: int, n_classes: int, n_layers: int = 1, layout: str = "matrix",
                 pair_keys: torch.Tensor | None = None, bias: str = "irbm", run_depths: Sequence[int] | None = None):
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        if bias not in BIASES:
            raise ValueError(f"bias must be one of {BIASES}, got {bias!r}")
        self.bias = bias
        self.register_buffer("prior_bias", torch.tensor(bias == "prior"))
        if pair_keys is not None and layout != "blocks":
            raise ValueError("pair_keys only applies to layout='blocks'")
        r, d, k = n_runs, n_workers, n_classes
        self.n_runs, self.n_workers, self.n_classes, self.n_layers = r, d, k, n_layers
        self.layout = layout
        if pair_keys is not None:
            pair_keys = torch.as_tensor(pair_keys, dtype=torch.long)
            self.register_buffer("pair_keys", pair_keys)
        else:
            self.pair_keys = None
        shape = (r, d * k, d * k) if layout == "matrix" else (r, self.n_pairs, k, k)
        # (huge pages when large: the sparse path reads and writes randomly placed blocks, deem_core.model.memory)
        self.layer_weights = nn.ParameterList([nn.Parameter(memory.zeros(*shape)) for _ in range(n_layers)])
        self.layer_biases = nn.ParameterList([nn.Parameter(torch.zeros(r, d * k)) for _ in range(n_layers)])
        self.irbm_weight = nn.Parameter(torch.zeros(r, d, k, k))
        self.visible_bias = nn.Parameter(torch.zeros(r, d, k))
        self.hidden_bias = nn.Parameter(torch.zeros(r, k))
        for name, value in irbm_constant_masks(d, k).items():
            self.register_buffer(name, value)
        self.run_depths: list[int] | None = None
        self._set_run_depths(run_depths)

    def _set_run_depths(self, run_depths: Sequence[int] | None) -> None:
        """Per-run depths (module docstring, "Runs of several depths"); None or all equal to ``n_layers``: none."""
        depths = None if run_depths is None else [int(depth) for depth in run_depths]
        if depths is not None:
            if len(depths) != self.n_runs or min(depths) < 0 or max(depths) > self.n_layers:
                raise ValueError(f"run_depths must give {self.n_runs} depths between 0 and {self.n_layers}, "
                                 f"got {depths}")
            if min(depths) == self.n_layers:
                depths = None
        self.run_depths = depths
        # layer j transforms run r when j < depth of r: (R, 1, 1, 1) bool per layer, None where every run does
        # (not saved: it follows from run_depths; moves with the module)
        for layer in range(self.n_layers):
            active = None
            if depths is not None and min(depths) <= layer:
                active = torch.tensor([layer < depth for depth in depths]).view(-1, 1, 1, 1)
            self.register_buffer(f"_layer_active_{layer}", active, persistent=False)

    def _layer_active(self, layer: int) -> torch.Tensor | None:
        return getattr(self, f"_layer_active_{layer}")

    def depth_of(self, run: int) -> int:
        """The number of layers run ``run`` uses."""
        return self.n_layers if self.run_depths is None else self.run_depths[run]

    @property
    def n_pairs(self) -> int:
        """Stored worker pairs per layer (``d*d`` for the matrix layout and for all-pairs blocks)."""
        return self.n_workers ** 2 if self.pair_keys is None else int(self.pair_keys.numel())

    def spec(self) -> dict:
        """The construction arguments besides the sizes: ``layout``, ``pair_keys``, ``bias``."""
        return {"layout": self.layout, "pair_keys": self.pair_keys, "bias": self.bias}

    def like(self, n_runs: int) -> "DEEMNetwork":
        """A zero network of the same shape, layout and bias with ``n_runs`` runs, on the same device (every run
        with all the layers)."""
        device = self.irbm_weight.device
        return DEEMNetwork(n_runs, self.n_workers, self.n_classes, self.n_layers, **self.spec()).to(device)

    @torch.no_grad()
    def select(self, picked: Sequence[int]) -> "DEEMNetwork":
        """A copy holding the runs at ``picked`` (renumbered 0..len-1, in that order), with as many layers as the
        deepest of them uses (runs of one depth: an ordinary network of that depth)."""
        picked = [int(run) for run in picked]
        depths = [self.depth_of(run) for run in picked]
        n_layers = max(depths, default=self.n_layers)
        out = DEEMNetwork(len(picked), self.n_workers, self.n_classes, n_layers, **self.spec(),
                          run_depths=depths).to(self.irbm_weight.device)
        sources = dict(self.named_parameters())
        for name, target in out.named_parameters():
            target.copy_(sources[name][picked])
        return out

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> "DEEMNetwork":
        """Rebuild a network of the right shape, layout and bias from its ``state_dict()`` and load it (a
        state saved before biases had a meaning to store is an ``"irbm"`` one)."""
        r, d, k, _ = state["irbm_weight"].shape
        layers = sum(1 for key in state if key.startswith("layer_weights."))
        layout = "matrix"
        if layers and state["layer_weights.0"].dim() == 4:
            layout = "blocks"
        bias = "prior" if bool(state.get("prior_bias", torch.tensor(False))) else "irbm"
        network = cls(r, d, k, layers, layout, state.get("pair_keys"), bias)
        network.load_state_dict(state)
        return network

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        key = prefix + "prior_bias"
        if key not in state_dict:  # saved before the bias's meaning was stored: the iRBM's b
            state_dict[key] = torch.tensor(False)
        masks = {prefix + name for name in WORKER_MASKS}
        for mask in masks:  # (constants: a view of one pattern cannot be copied into, and a state may omit them)
            state_dict.pop(mask, None)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        missing_keys[:] = [name for name in missing_keys if name not in masks]
        self.bias = "prior" if bool(self.prior_bias) else "irbm"

    @torch.no_grad()
    def with_bias(self, bias: str) -> "DEEMNetwork":
        """A copy with the hidden bias in the other meaning, the same model: ``prior = irbm + sum_i log sum_l
        exp(a_i^l + w_i^{lm})`` over every worker (then shifted so that its first class is 0)."""
        if bias not in BIASES:
            raise ValueError(f"bias must be one of {BIASES}, got {bias!r}")
        out = DEEMNetwork(self.n_runs, self.n_workers, self.n_classes, self.n_layers,
                          **{**self.spec(), "bias": bias}, run_depths=self.run_depths).to(self.irbm_weight.device)
        out.load_state_dict({**self.state_dict(), "prior_bias": out.prior_bias})
        out.bias = bias
        if bias != self.bias:
            w, a, b = self.effective_irbm()
            total = torch.logsumexp(a.unsqueeze(-1) + w, dim=2).sum(1)  # (R, K)
            converted = b + total if bias == "prior" else b - total
            out.hidden_bias.copy_(converted - converted[:, :1])
        return out

    # ------------------------------------------------------------------ initialisation
    @torch.no_grad()
    def initialise(self, generator: torch.Generator | None = None, layer_noise: float = 0.005,
                   irbm_noise: float = 0.01) -> None:
        """App. G.1: identity layers + N(0, layer_noise^2); iRBM = majority vote + N(0, irbm_noise^2).

        The matrix layout and the all-pairs block layout draw the same numbers (a run starts from the same
        weights in either); stored pairs draw one N(0, layer_noise^2) block per stored pair.
        """
        r, d, k = self.n_runs, self.n_workers, self.n_classes
        dev = self.irbm_weight.device

        def noise(*shape):
            return torch.randn(*shape, generator=generator, device=dev)

        for weight, bias in zip(self.layer_weights, self.layer_biases):
            if self.layout == "matrix":  # in place (the numbers of randn): no temporary as large as the layer
                weight.normal_(0.0, 1.0, generator=generator).mul_(layer_noise)
                weight.diagonal(dim1=-2, dim2=-1).add_(1.0)
            else:
                if self.pair_keys is None:
                    self._blocks_noise_like_matrix(weight, generator, layer_noise)
                else:
                    weight.normal_(0.0, layer_noise, generator=generator)
                weight[:, self.diagonal_pairs()] += torch.eye(k, device=dev)
            bias.copy_(layer_noise * noise(r, d * k))
        # N(0, irbm_noise^2) off the diagonal and 1 on it, drawn in place (the numbers of randn; the temporaries of
        # ``eye + noise * (1 - eye)`` were five (R, d, K, K) arrays: 1 GB at 5,441 workers x 100 classes)
        self.irbm_weight.normal_(0.0, 1.0, generator=generator).mul_(irbm_noise)
        self.irbm_weight.diagonal(dim1=-2, dim2=-1).fill_(1.0)
        self.visible_bias.copy_(irbm_noise * noise(r, d, k))
        self.hidden_bias.copy_(irbm_noise * noise(r, k))

    def _blocks_noise_like_matrix(self, weight: torch.Tensor, generator, scale: float, chunk: int = 1 << 22) -> None:
        """Fill all-pairs blocks (R, d*d, K, K) with the N(0, scale^2) noise the matrix layout draws for the same
        generator state, a few rows of the matrix at a time (no full-size temporary). Rows are drawn in chunks
        of a multiple of 16 workers: CPU ``randn`` yields the same stream in pieces whose sizes are multiples
        of 16 (checked by the layout tests)."""
        r, d, k = self.n_runs, self.n_workers, self.n_classes
        step = max(16, (chunk // max(1, k * d * k)) // 16 * 16)  # workers per chunk
        for run in range(r):
            for first in range(0, d, step):
                last = min(d, first + step)
                rows = torch.randn(last - first, k, d, k, generator=generator, device=weight.device)
                weight[run, first * d:last * d] = rows.permute(0, 2, 1, 3).reshape(-1, k, k) * scale

    # ------------------------------------------------------------------ layouts
    def pair_index(self, first: torch.Tensor, second: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Block index of each worker pair ``(first, second)`` (same shapes, int64) in the block layout.

        Returns ``(index, present)``: ``present`` (bool, same shape) is False for pairs that are not stored
        (their index is then a valid but unrelated block), or None when every pair is stored.
        """
        keys = first * self.n_workers + second
        if self.pair_keys is None:
            return keys, None
        lookup = self._pair_lookup()
        if lookup is not None:
            index = lookup[keys].long()
            present = index >= 0
            return index.clamp_min_(0), present
        index = torch.searchsorted(self.pair_keys, keys).clamp_max_(max(self.n_pairs - 1, 0))
        return index, self.pair_keys[index] == keys

    def _pair_lookup(self) -> torch.Tensor | None:
        """(d*d,) int32 block index of every worker pair (-1: not stored), built once per ``pair_keys`` and device
        while it takes at most :data:`PAIR_LOOKUP_MAX_BYTES` (not saved: it follows from ``pair_keys``). One
        lookup per pair instead of a binary search: the search took 30% of an epoch of 100,000 tasks x 2,400
        workers (benchmarks/results/scale_budget.txt); None beyond that size (the search is used)."""
        d, keys = self.n_workers, self.pair_keys
        if d * d * 4 > PAIR_LOOKUP_MAX_BYTES:
            return None
        cached = self.__dict__.get("_lookup_cache")
        if cached is not None and cached[0] is keys and cached[1] == keys._version:  # same tensor, not written since
            return cached[2]
        with torch.no_grad():
            lookup = torch.full((d * d,), -1, dtype=torch.int32, device=keys.device)
            lookup[keys] = torch.arange(keys.numel(), dtype=torch.int32, device=keys.device)
        object.__setattr__(self, "_lookup_cache", (keys, keys._version, lookup))
        return lookup

    def diagonal_pairs(self) -> torch.Tensor:
        """Block index of every worker's own pair ``(i, i)``: (d,). Every worker's diagonal pair must be stored."""
        workers = torch.arange(self.n_workers, device=self.irbm_weight.device)
        index, present = self.pair_index(workers, workers)
        if present is not None and not bool(present.all()):
            raise ValueError("pair_keys must hold every worker's own pair (i, i)")
        return index

    @torch.no_grad()
    def layer_matrix(self, layer: int) -> torch.Tensor:
        """Layer ``layer``'s weights as (R, d*K, d*K) matrices whatever the layout (pairs not stored: zero)."""
        weight = self.layer_weights[layer]
        if self.layout == "matrix":
            return weight.detach()
        d, k = self.n_workers, self.n_classes
        if self.pair_keys is None:
            return blocks_to_matrix(weight.detach(), d, k)
        full = torch.zeros(self.n_runs, d * d, k, k, device=weight.device, dtype=weight.dtype)
        full[:, self.pair_keys] = weight.detach()
        return blocks_to_matrix(full, d, k)

    @torch.no_grad()
    def layer_blocks(self, layer: int, pair_keys: torch.Tensor | None = None) -> torch.Tensor:
        """Layer ``layer``'s weights as (R, P, K, K) blocks of the pairs ``pair_keys`` (None: all ``d*d``)."""
        weight = self.layer_weights[layer].detach()
        d, k = self.n_workers, self.n_classes
        if self.layout == "matrix":
            blocks = matrix_to_blocks(weight, d, k)
            return blocks if pair_keys is None else blocks[:, pair_keys]
        if pair_keys is None:
            pair_keys = torch.arange(d * d, device=weight.device)
        index, present = self.pair_index(pair_keys // d, pair_keys % d)
        blocks = weight[:, index]
        return blocks if present is None else blocks * present.view(1, -1, 1, 1).to(blocks.dtype)

    @torch.no_grad()
    def to_layout(self, layout: str, pair_keys: torch.Tensor | None = None) -> "DEEMNetwork":
        """A copy of this network with its layer weights stored in another layout (same values; pairs left
        out of ``pair_keys`` are dropped, pairs this network does not store become zero blocks)."""
        d, k = self.n_workers, self.n_classes
        device = self.irbm_weight.device
        keys = None if pair_keys is None else torch.as_tensor(pair_keys, dtype=torch.long, device=device)
        out = DEEMNetwork(self.n_runs, d, k, self.n_layers, layout, keys, self.bias, self.run_depths).to(device)
        for layer in range(self.n_layers):
            out.layer_biases[layer].copy_(self.layer_biases[layer])
            if layout == "matrix":
                out.layer_weights[layer].copy_(self.layer_matrix(layer))
            else:
                out.layer_weights[layer].copy_(self.layer_blocks(layer, keys))
        out.irbm_weight.copy_(self.irbm_weight)
        out.visible_bias.copy_(self.visible_bias)
        out.hidden_bias.copy_(self.hidden_bias)
        return out

    # ------------------------------------------------------------------ effective iRBM parameters
    def effective_irbm(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """iRBM parameters with Definition 1's constants applied.

        Returns ``w`` (R, d, K, K) [i, l, m], ``a`` (R, d, K), ``b`` (R, K). Gradients never reach the
        constant entries because they are multiplied by zero.
        """
        w = self.irbm_weight * self.weight_free + self.weight_fixed
        a = self.visible_bias * self.visible_free
        b = self.hidden_bias * self.hidden_free
        return w, a, b

    # ------------------------------------------------------------------ forward pieces
    # The computations run in *feature-major* layout: inputs (R, d, K, B) and masks (R, d, B), batch last,
    # so that layer products are (d*K, d*K) x (d*K, B) matrix products and the sparsemax over the K classes
    # reduces a strided axis with the batch contiguous (see sparsemax.py). The methods without ``_fm`` take
    # and return the natural (R, B, d, K) layout and convert.

    def _require_matrix(self, name: str) -> None:
        if self.layout != "matrix" and self.n_layers:
            raise ValueError(f"{name} needs the matrix layout; this network stores its layers as blocks "
                             f"(use deem_core.model.sparse.GatheredNetwork, or to_layout('matrix'))")

    def propagate_fm(self, x: torch.Tensor, mask: torch.Tensor | None) -> list[torch.Tensor]:
        """Run ``x`` (R, d, K, B) through the multinomial layers; mask (R, d, B) float, or None when every
        worker is observed.

        Returns every layer's output, input first: ``n_layers + 1`` tensors (R, d, K, B), missing workers
        zeroed; the last is the iRBM's visible input.
        """
        self._require_matrix("propagate_fm")
        r, d, k, bsz = x.shape
        outputs = [x]
        current = x
        for layer, (weight, bias) in enumerate(zip(self.layer_weights, self.layer_biases)):
            logits = torch.baddbmm(bias.unsqueeze(-1), weight.transpose(1, 2), current.reshape(r, d * k, bsz))
            out = sparsemax(logits.view(r, d, k, bsz), dim=2)
            if mask is not None:
                out = out * mask.unsqueeze(2)
            active = self._layer_active(layer)
            # a run shallower than this layer passes its input on unchanged (and its weights get no gradient)
            current = out if active is None else torch.where(active, out, current)
            outputs.append(current)
        return outputs

    def _irbm_terms(self) -> dict[str, torch.Tensor]:
        """The iRBM's effective parameters shaped for feature-major products (computed once per use).

        ``w`` (R, d*K, K) [i*K+l, m], ``a`` (R, d*K, 1), ``b`` (R, K, 1), ``missing`` (R, K, d) [m, i].
        """
        w, a, b = self.effective_irbm()
        r, d, k = a.shape
        missing = torch.logsumexp(a.unsqueeze(-1) + w, dim=2)  # (R, d, K)
        terms = {"w": w.reshape(r, d * k, k), "a": a.reshape(r, d * k, 1), "b": b.unsqueeze(-1),
                 "missing": missing.transpose(1, 2), "prior": self.bias == "prior"}
        if self.bias == "prior":  # the partitions of every worker, for batches where all answered (mask None)
            terms["all_partitions"] = missing.sum(1).unsqueeze(-1)  # (R, K, 1)
        return terms

    @staticmethod
    def _hidden_logits(terms: dict[str, torch.Tensor], v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Hidden logits (R, K, B): ``b^m + sum_{i obs, l} w_i^{lm} v_i^l`` plus, with ``bias="irbm"``,
        ``sum_{i missing} log sum_l exp(a_i^l + w_i^{lm})``, with ``bias="prior"`` minus that partition of
        every observed worker (module docstring)."""
        r, d, k, bsz = v.shape
        logits = torch.baddbmm(terms["b"], terms["w"].transpose(1, 2), v.reshape(r, d * k, bsz))
        if terms["prior"]:
            if mask is None:
                return logits - terms["all_partitions"]
            return logits.baddbmm_(terms["missing"], mask, alpha=-1.0)
        if mask is None:
            return logits
        return logits.baddbmm_(terms["missing"], 1.0 - mask)

    @staticmethod
    def _visible_term(terms: dict[str, torch.Tensor], v: torch.Tensor) -> torch.Tensor:
        """``sum_{i, l} a_i^l v_i^l``: (R, B) (missing workers are zero in ``v``)."""
        r, d, k, bsz = v.shape
        return torch.bmm(terms["a"].transpose(1, 2), v.reshape(r, d * k, bsz)).squeeze(1)

    def free_energy_and_logits_fm(self, x: torch.Tensor, mask: torch.Tensor | None,
                                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """Free energy (R, B) and hidden logits (R, K, B) of x (R, d, K, B), mask (R, d, B) or None (dense).

        ``F = - sum_{i obs, l} a_i^l v_i^l - log sum_m exp(hidden_logits_m)``.
        """
        v = self.propagate_fm(x, mask)[-1]
        terms = self._irbm_terms()
        logits = self._hidden_logits(terms, v, mask)
        return -self._visible_term(terms, v) - torch.logsumexp(logits, dim=1), logits

    @torch.no_grad()
    def sampler_energy(self, dense: bool = False):
        """``U(x) = -F(x)`` and ``dU/dx`` for DMALA with the current parameters, by a hand-written backward pass.

        Returns ``fn(x (R, d, K, B), mask (R, d, B)) -> (U (R, B), dU/dx (R, d, K, B))``; the iRBM's effective
        parameters are read once here, so build it anew after every update. ``dense=True`` promises that every worker is
        observed in the batches it will see (the missing-unit terms are skipped).
        With ``p = softmax(logits)`` (R, K, B): ``dU/dv = a + W_irbm p``; through each layer
        ``g_z = s (g - mean_s g)`` (sparsemax's Jacobian, ``s`` its support, empty for a masked output) and
        ``g_x = W g_z``.
        """
        self._require_matrix("sampler_energy")
        terms = self._irbm_terms()  # the iRBM's effective parameters, once per sampler call

        @torch.no_grad()
        def log_density_and_grad(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            r, d, k, bsz = x.shape
            outputs = self.propagate_fm(x, None if dense else mask)
            v = outputs[-1]
            logits = self._hidden_logits(terms, v, None if dense else mask)  # (R, K, B)
            log_partition = torch.logsumexp(logits, dim=1)  # (R, B)
            posterior = logits.sub_(log_partition.unsqueeze(1)).exp_()  # (R, K, B)
            grad = torch.baddbmm(terms["a"], terms["w"], posterior)  # dU/dv: (R, d*K, B)
            for layer in range(self.n_layers - 1, -1, -1):
                # a masked (all-zero) output has an empty support, so its worker gets no gradient here
                grad_logits = sparsemax_backward(outputs[layer + 1], grad.view(r, d, k, bsz), dim=2)
                through = torch.bmm(self.layer_weights[layer], grad_logits.view(r, d * k, bsz))
                active = self._layer_active(layer)  # a run shallower than this layer: the gradient passes on
                grad = through if active is None else torch.where(active.view(r, 1, 1), through, grad)
            return self._visible_term(terms, v) + log_partition, grad.view(r, d, k, bsz)

        return log_density_and_grad

    @staticmethod
    def to_feature_major(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(R, B, d, K), (R, B, d) -> (R, d, K, B), (R, d, B) (contiguous copies)."""
        return x.permute(0, 2, 3, 1).contiguous(), mask.transpose(1, 2).contiguous()

    def _gathered_rows(self, x: torch.Tensor, mask: torch.Tensor):
        """Natural-layout rows as answer slots for the sparse path (block layout)."""
        from deem_core.model.sparse import GatheredNetwork, dense_rows_to_slots  # noqa: PLC0415

        workers, slot_mask, slot_x = dense_rows_to_slots(x, mask)
        return GatheredNetwork(self, workers, slot_mask), workers, slot_mask, slot_x

    def propagate(self, x: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """:meth:`propagate_fm` in the natural layout: x (R, B, d, K), mask (R, B, d) -> list of (R, B, d, K)."""
        if self.layout == "matrix":
            return [out.permute(0, 3, 1, 2) for out in self.propagate_fm(*self.to_feature_major(x, mask))]
        gathered, workers, slot_mask, slot_x = self._gathered_rows(x, mask)
        outputs = []
        for out in gathered.propagate(slot_x, slot_mask.transpose(1, 2)):
            full = torch.zeros_like(x)
            index = workers.unsqueeze(-1).expand(-1, -1, -1, x.shape[-1])
            outputs.append(full.scatter_add(2, index, out.permute(0, 3, 1, 2) * slot_mask.unsqueeze(-1)))
        return outputs

    def hidden_logits(self, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Hidden-unit logits with missing visible units summed out: v (R, B, d, K), mask (R, B, d) -> (R, B, K)."""
        return self._hidden_logits(self._irbm_terms(), *self.to_feature_major(v, mask)).transpose(1, 2)

    def free_energy_and_logits(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Free energy (R, B) and hidden logits (R, B, K) of x (R, B, d, K), mask (R, B, d)."""
        if self.layout == "matrix":
            energy, logits = self.free_energy_and_logits_fm(*self.to_feature_major(x, mask))
        else:
            gathered, _, slot_mask, slot_x = self._gathered_rows(x, mask)
            energy, logits = gathered.free_energy_and_logits(slot_x, slot_mask.transpose(1, 2))
        return energy, logits.transpose(1, 2)

    def free_energy(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Free energy F(x) with the hidden unit and missing visible units summed out: (R, B)."""
        return self.free_energy_and_logits(x, mask)[0]

    def posterior(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """p(h = m | x) per run: (R, B, K) (hidden-unit order, before the class map)."""
        return torch.softmax(self.free_energy_and_logits(x, mask)[1], dim=-1)

    # ------------------------------------------------------------------ Lemma 1
    @torch.no_grad()
    def confusion_matrices(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Read the iRBM as a Dawid-Skene model (Lemma 1).

        Returns ``psi`` (R, d, K, K) with ``psi[r, i, l, m] = P(X_i = l | Y = m) = softmax_l(a_i^l +
        w_i^{lm})`` and ``prior`` (R, K) with ``pi_m`` proportional to ``exp(b^m) prod_i sum_l
        exp(a_i^l + w_i^{lm})`` (``bias="irbm"``) or to ``exp(b^m)`` (``bias="prior"``) (hidden-unit order;
        valid as a DS reading of the iRBM's own input).
        """
        w, a, b = self.effective_irbm()
        z = a.unsqueeze(-1) + w  # (R, d, K, K)
        psi = torch.softmax(z, dim=2)
        log_prior = b if self.bias == "prior" else b + torch.logsumexp(z, dim=2).sum(dim=1)
        return psi, torch.softmax(log_prior, dim=-1)

    @torch.no_grad()
    def set_from_dawid_skene(self, psi: torch.Tensor, prior: torch.Tensor) -> None:
        """Inverse of Lemma 1: set the iRBM so that it *is* the DS model (psi (d, K, K) [i, l, m], prior (K,)).

        ``a_i^l = log psi_il1 - log psi_i11`` (so that ``w^{l1} = 0``), ``w_i^{lm} = log psi_ilm -
        log psi_i1m - a_i^l`` shifted so ``w^{1m} = 0`` except ``w^{11} = 1``; ``b^m`` reproduces the
        prior. Applied to every run.
        """
        log_psi = torch.log(psi.clamp_min(1e-12)).to(self.irbm_weight)
        log_prior = torch.log(prior.clamp_min(1e-12)).to(self.irbm_weight)
        # z_ilm = a_i^l + w_i^{lm} must equal log psi_ilm + c_im (any per-(i, m) constant).
        # Choose c_im so that z_i1m = w_i^{1m} = [m == 1]; then a_i^l = z_il1 - w_i^{l1} = z_il1 - [l==1].
        c = (torch.tensor([1.0] + [0.0] * (psi.shape[-1] - 1), device=log_psi.device) - log_psi[:, 0, :])
        z = log_psi + c.unsqueeze(1)  # (d, K, K)
        a = z[:, :, 0] - torch.eye(psi.shape[-1], device=z.device)[:, 0]  # (d, K); a^1 = 1 - 1 = 0
        w = z - a.unsqueeze(-1)
        # prior: pi_m ∝ exp(b^m) prod_i sum_l exp(z_ilm) = exp(b^m) prod_i exp(c_im) (bias="irbm"), or
        # pi_m ∝ exp(b^m) itself (bias="prior")
        b = log_prior if self.bias == "prior" else log_prior - c.sum(dim=0)
        b = b - b[0]
        self.irbm_weight.copy_(w.expand_as(self.irbm_weight))
        self.visible_bias.copy_(a.expand_as(self.visible_bias))
        self.hidden_bias.copy_(b.expand_as(self.hidden_bias))

    def extra_repr(self) -> str:
        depths = "" if self.run_depths is None else f", run_depths={self.run_depths}"
        return (f"runs={self.n_runs}, workers={self.n_workers}, classes={self.n_classes}, "
                f"layers={self.n_layers}{depths}, params/run={sum(p[0].numel() for p in self.parameters())}")

