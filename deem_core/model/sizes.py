"""Size checks made before a model is trained: refuse what would not fit, with a clear message.

:func:`estimate_training_bytes` counts what one batched DEEM training allocates on top of the annotations it
reads, by part: the training copy of the data, the persistent chains, the layer weights and what training
keeps beside them (gradients, the end-of-epoch snapshot, momentum buffers, a collapse guard's states), one batch's
activations (or gathered blocks on the sparse path), the per-task outputs and the start's Dawid-Skene fit. :func:`check_problem_size` compares the total
with a budget and raises :class:`DataError` naming the largest part and what to change.
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np

from deem_core.data.annotations import DataError
from deem_core.data.text import counted

__all__ = ["MAX_CLASSES", "check_problem_size", "choose_storage", "estimate_training_bytes"]

#: more classes than this is almost certainly a free-text or id column read as labels
MAX_CLASSES = 1000

#: float32 copies of a batch's feature-major activations alive at once (inputs, proposals, proposal weights,
#: cumulative sums, gradients, each layer's saved output and sparsemax temporaries), and of the sparse path's
#: gathered blocks (feature-major copy, gathered rows, product temporary, gradient in gathered order)
ACTIVATION_COPIES = 12
BLOCK_COPIES = 4
#: float32 copies of the sparse path's per-slot iRBM parameters alive at once in a training step (each answer slot
#: gathers its worker's K x K weights and K + K (layers + 1) biases: the gathered rows, their feature-major copy, the
#: weights scaled, their sum with the visible biases, the partition's temporaries, and autograd's saved tensors).
#: Measured on 0-layer trainings of 20-60 classes: 7.5-8.3 copies of slots x K^2 x 4 bytes above the data (600
#: tasks of 50 answers x 60 classes: +3.07 GB where the estimate said 182 MB, and a 2 MB upload of 40 classes took
#: the server past 5 GB; attack round 66)
SLOT_PARAM_COPIES = 9
#: the sparse path stores every worker pair's K x K block while the layers of the runs trained together stay
#: under this many bytes, only the pairs that share a task beyond (:func:`choose_storage`)
ALL_PAIRS_MAX_BYTES = 512 << 20
#: ... and, above PAIRS_WORTH_BYTES of all-pairs layers, only the co-occurring pairs when they are at most
#: PAIRS_MAX_SHARE of all pairs: on 100,000 tasks x 2,000 workers x 3 classes (20% of the pairs co-occur) that stores
#: 5x fewer blocks for 1.5x the CPU time per epoch and the same accuracy (95.21% vs 95.22% after 20 epochs,
#: benchmarks/results/scale_budget.txt); below PAIRS_WORTH_BYTES memory is not worth the time
PAIRS_WORTH_BYTES = 64 << 20
PAIRS_MAX_SHARE = 1 / 3


#: where a container's or service's memory limit is read (cgroup v2, then v1)
CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def machine_memory() -> int:
    """The memory this process may use: the machine's physical memory, or less where a cgroup (a container, a
    systemd unit) or an address-space limit says so. The physical memory alone let a 4 GB container on a 256 GB
    host accept a 128 GB training, and the kernel killed the server instead of the size check refusing it
    (attack round 6)."""
    try:
        limits = [int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))]
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        limits = [8 << 30]
    for path in CGROUP_LIMITS:
        try:
            with open(path) as handle:
                text = handle.read().strip()
        except OSError:
            continue
        if text.isdigit():  # "max" (v2) or a huge number (v1): no limit
            limits.append(int(text))
        break
    try:
        import resource  # noqa: PLC0415 - POSIX only

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY and soft > 0:
            limits.append(int(soft))
    except (ImportError, OSError, ValueError):  # pragma: no cover
        pass
    return min(limits)


def _memory_bytes() -> int:
    return machine_memory()


def memory_budget() -> int:
    """What one training (or one model's diagnostics) may take by default: half the machine's physical memory."""
    return _memory_bytes() // 2


def within_budget(estimate: int, budget_bytes: int | None, refusal: Callable[[str, str], str]) -> int:
    """``estimate`` (bytes) when it fits ``budget_bytes`` (default :func:`memory_budget`); else DataError with
    ``refusal(estimate, budget)``, both written in GiB. The one comparison of the methods' size checks."""
    budget = int(budget_bytes) if budget_bytes is not None else memory_budget()
    if estimate > budget:
        raise DataError(refusal(f"{estimate / (1 << 30):.1f} GiB", f"{budget / (1 << 30):.1f} GiB"))
    return estimate


def _gib(n: float) -> str:
    return f"{n / (1 << 30):,.1f} GiB"


def _size(n: float) -> str:
    return _gib(n) if n >= (1 << 30) else f"{n / (1 << 20):,.0f} MiB"


def choose_storage(n_workers: int, n_classes: int, n_layers: int = 1, n_runs: int = 1,
                   n_pairs: Callable[[], int] | int | None = None) -> str:
    """``"all"`` (every worker pair's block) or ``"pairs"`` (only the pairs that answer a common task).

    ``"pairs"`` when the layers of the ``n_runs`` runs trained together would pass :data:`ALL_PAIRS_MAX_BYTES` with
    every pair, or when they would pass :data:`PAIRS_WORTH_BYTES` and the co-occurring pairs (``n_pairs``, a count
    or a function counting them, asked only then) are at most :data:`PAIRS_MAX_SHARE` of all pairs; else ``"all"``
    (faster per epoch). With no layer there is nothing to store. Counting the runs matters for sweeps: 8 learning
    rates on 2,400 workers x 3 classes hold 8 x 207 MB of all-pairs layers, most of them never read when the data
    are a few thousand tasks.

    What storing only the co-occurring pairs means for the model: a block between two workers who never answer a
    common task is never read in training (a task touches only the blocks between its own workers, in the data
    and in the sampler's chains, which keep its missing pattern), so the trained model is the same; such a block
    stays zero instead of its initial noise, which only matters for new tasks that bring such a pair together."""
    if n_layers == 0:
        return "all"
    all_bytes = max(1, int(n_runs)) * 4 * (n_workers * n_classes) ** 2
    if all_bytes > ALL_PAIRS_MAX_BYTES:
        return "pairs"
    if all_bytes <= PAIRS_WORTH_BYTES or n_pairs is None:
        return "all"
    count = n_pairs() if callable(n_pairs) else int(n_pairs)
    return "pairs" if count <= PAIRS_MAX_SHARE * n_workers ** 2 else "all"


def width_parts(widths: np.ndarray, n_classes: int, fixed_units: float = 0.0) -> list[tuple[int, int]]:
    """The parts [a, e) a sparse batch is computed in, for its tasks' answer counts ``widths`` sorted ascending:
    ranks whose counts round up to one power of 2, each part padded to its own widest task, when that costs less
    than half of padding the whole batch to its widest (cost: ``(width * K)^2`` per task, plus ``fixed_units`` per
    part); else the whole batch, ``[(0, b)]`` (at exactly half, the whole batch). One source for the training
    (``SparseTaskData.parts``) and for its memory estimate (:func:`estimate_training_bytes`)."""
    w = np.maximum(np.asarray(widths, dtype=np.float64), 1.0)
    b = len(w)
    if b < 2:
        return [(0, b)]
    group = np.ceil(np.log2(np.maximum(w, 2.0)))  # 0-2 answers one group, then 3-4, 5-8, ...
    cuts = [0] + (np.flatnonzero(group[1:] != group[:-1]) + 1).tolist() + [b]
    k2 = float(n_classes) ** 2
    whole = fixed_units + float(w[-1]) ** 2 * k2 * b
    split = sum(fixed_units + float(w[e - 1]) ** 2 * k2 * (e - a) for a, e in zip(cuts[:-1], cuts[1:]))
    if len(cuts) <= 2 or 2 * split >= whole:
        return [(0, b)]
    return list(zip(cuts[:-1], cuts[1:]))


def estimate_training_bytes(n_tasks: int, n_workers: int, n_classes: int, n_answers: int, max_answers: int,
                            n_layers: int = 1, n_runs: int = 1, batch_size: int = 1024, path: str = "dense",
                            n_pairs: int | None = None, sum_squared_answers: int | None = None,
                            momentum: bool = False, soft: bool = False,
                            answer_counts: np.ndarray | None = None, kept_runs: int = 0) -> dict[str, int]:
    """Bytes one batched training allocates, by part (see the module docstring).

    ``path``: ``"dense"`` (a tasks x workers table, matrix-layout weights) or ``"sparse"`` (answer slots,
    block-layout weights: ``n_pairs`` stored pairs per layer, default every pair while that stays under
    :data:`ALL_PAIRS_MAX_BYTES`, else at most ``sum_squared_answers`` co-occurring ones; an upper bound when the
    training stores fewer, see :func:`choose_storage`). ``answer_counts``: every task's answers; where one batch
    holds every task (and without momentum), its gathered blocks are counted in the parts they are computed in
    (:func:`width_parts`), not as ``batch_size`` tasks of ``max_answers`` each, plus the whole batch's padded inputs
    (built before the parts). ``kept_runs``: runs' worth of weights kept beside the training (a collapse guard's
    start and healthy states: ``GUARD_STATES`` copies of every run, ``methods/choose.py``).

    The dense path's layer weights are held about four times while a step runs (the weights, their gradient, the
    backward pass's product before it is added to the gradient, the end-of-epoch snapshot): 60 classes x 120 workers, 1
    layer, 2 runs measured 8.5 copies of one run's layer with the batch's activations (attack round 67: the former
    count of three was 2x under the peak).
    """
    n, d, k, layers, r = int(n_tasks), int(n_workers), int(n_classes), int(n_layers), int(n_runs)
    b = max(1, min(int(batch_size), max(n, 1)))
    a = max(1, int(max_answers))
    units = d * k
    if path == "dense":
        data = n * d * (8 + 4) + (n * d * k * 4 if soft else 0)  # codes, mask, soft labels
        chains = r * n * d * 8
        layer_floats = units * units
        activations = ACTIVATION_COPIES * r * units * 2 * b * 4 * (layers + 1)
        gathered = 0
    else:
        data = (n + 1) * 8 + 2 * n_answers * 8 + (n_answers * k * 4 if soft else 0)  # offsets, workers, labels
        chains = r * (n_answers + 1)  # int8 labels
        if n_pairs is None:
            pairs_bound = n_answers * a if sum_squared_answers is None else int(sum_squared_answers)
            bound = min(d * d, pairs_bound + d)  # each task's ordered pairs, plus every worker's own
            # the training's own decision, with the co-occurring pairs' upper bound for their count: when even the
            # bound is few enough, training stores at most that many; otherwise every pair is counted
            n_pairs = bound if choose_storage(d, k, layers, r, n_pairs=bound) == "pairs" else d * d
        layer_floats = int(n_pairs) * k * k
        slots, slots_squared = b * a, b * a * a  # the batch's answer slots, and its tasks' slots squared
        whole_inputs = 0
        if answer_counts is not None and 0 < len(answer_counts) <= b and not momentum:  # one batch of all: in parts
            from deem_core.model.sparse_training import PART_FIXED_UNITS  # noqa: PLC0415

            widest = np.sort(np.maximum(np.asarray(answer_counts, dtype=np.int64), 1))
            cuts = width_parts(widest, k, PART_FIXED_UNITS)
            slots = sum(int(widest[e - 1]) * (e - s0) for s0, e in cuts)
            slots_squared = sum(int(widest[e - 1]) ** 2 * (e - s0) for s0, e in cuts)
            if len(cuts) > 1:  # the whole batch's padded inputs are built before its parts, and kept through the step
                whole_inputs = r * b * a * (4 * k + 4 + 4 + 3 * 8)  # one-hot floats, two masks, workers/answers/labels
        activations = (ACTIVATION_COPIES * r * slots * k * 2 * 4 * (layers + 1)
                       + SLOT_PARAM_COPIES * r * slots * (k * k + k * (layers + 2) + 1) * 4)
        gathered = BLOCK_COPIES * layers * r * slots_squared * k * k * 4 + whole_inputs
    order = r * n * 8  # each run's task order of the epoch
    weights = r * 4 * (layers * (layer_floats + units) + d * k * k + d * k + k)
    # gradients (the dense path's layer weights get one; the sparse path's only the small parameters),
    # the end-of-epoch snapshot and momentum buffers
    layer_bytes = r * 4 * layers * layer_floats
    small_bytes = weights - layer_bytes
    # (the dense path: the layers' gradient and the backward product added to it)
    kept = weights + small_bytes + (2 * layer_bytes if path == "dense" else 0) + (weights if momentum else 0)
    kept += int(kept_runs) * weights // max(r, 1)
    outputs = 2 * r * n * (k + 1) * 4  # free energies and posteriors, chunks and their concatenation
    # a Dawid-Skene fit's (d, K, K) float64 confusions (the start of Lemma 1, the references) kept while the runs train,
    # and one more array of that size while it is fitted or set into the network: the 0-layer sparse path of 2,273
    # workers x 100 classes measured 1.24x over an estimate without them (attack round 67)
    start_fit = 2 * d * k * k * 8
    return {"data": data, "chains": chains + order, "weights": weights, "training copies": kept,
            "batch": activations + gathered, "outputs": outputs, "start fit": start_fit}


def check_problem_size(n_workers: int, n_classes: int, n_layers: int = 1, n_runs: int = 1,
                       memory_bytes: int | None = None, max_classes: int = MAX_CLASSES,
                       source: str = "annotations", *, n_tasks: int | None = None, n_answers: int | None = None,
                       max_answers: int | None = None, sum_squared_answers: int | None = None,
                       batch_size: int = 1024, path: str = "dense", momentum: bool = False, soft: bool = False,
                       device: str = "cpu", answer_counts: np.ndarray | None = None, kept_runs: int = 0) -> int:
    """Refuse (DataError) a training that would not fit: returns the estimated bytes otherwise.

    Without ``n_tasks`` only the model is counted (weights, gradients, snapshot and optimiser state: four
    float32 copies of the weights). With the data's shape (``n_tasks``, ``n_answers``, ``max_answers``) the
    whole training is (:func:`estimate_training_bytes`) on the path it will take. ``memory_bytes``: the
    budget (default: half the machine's physical memory; pass the GPU's memory when training there).
    """
    d, k, layers, runs = int(n_workers), int(n_classes), int(n_layers), int(n_runs)
    if k > max_classes:
        raise DataError(f"{source}: {k:,} classes is more than DEEM handles (at most {max_classes:,}); check that "
                        f"the label column holds class labels, not free text, scores or ids")
    units = d * k
    budget = int(memory_bytes) if memory_bytes is not None else memory_budget()
    if n_tasks is None:
        floats = runs * (layers * (units * units + units) + d * k * k + d * k + k)
        estimate = 4 * 4 * floats
        if estimate > budget:
            raise DataError(
                f"{source}: the model would need about {_size(estimate)} ({counted(layers, 'layer')} of {units:,} x "
                f"{units:,} weights for {d:,} workers x {k:,} classes, {counted(runs, 'run')}) but {_size(budget)} is "
                f"available; use fewer layers (--layers 0), fewer seeds, or fewer workers/classes")
        return estimate
    parts = estimate_training_bytes(n_tasks, d, k, n_answers if n_answers is not None else n_tasks * d,
                                    max_answers if max_answers is not None else d, layers, runs, batch_size, path,
                                    sum_squared_answers=sum_squared_answers, momentum=momentum, soft=soft,
                                    answer_counts=answer_counts, kept_runs=kept_runs)
    estimate = sum(parts.values())
    if estimate <= budget:
        return estimate
    largest = max(parts, key=parts.get)
    breakdown = ", ".join(f"{name} {_size(size)}" for name, size in sorted(parts.items(), key=lambda kv: -kv[1]))
    advice = []
    if parts["weights"] + parts["training copies"] + parts["batch"] >= parts["data"] + parts["chains"] and layers:
        advice.append("fewer layers (--layers 0 trains the iRBM alone, without the worker-pair weights)")
    if runs > 1:
        advice.append(f"fewer runs ({runs} are trained together: fewer seeds or a single learning rate)")
    advice.append("a sample of the tasks")
    if parts["batch"] > budget // 4:
        advice.append(f"a smaller batch (now {batch_size:,})")
    if device == "cpu":
        advice.append("a GPU with more memory" if memory_bytes is not None else "a GPU")
    else:
        advice.append("the CPU (--device cpu), whose memory is usually larger")
    raise DataError(
        f"{source}: training would need about {_size(estimate)} ({breakdown}; the {largest} part is the largest) "
        f"for {n_tasks:,} tasks x {d:,} workers x {k:,} classes on the {path} path, {counted(layers, 'layer')}, "
        f"{counted(runs, 'run')}, but {_size(budget)} is available; try " + ", or ".join(advice))
