"""The diagnostics' data access: a fitted network evaluated on each task's own answers, in bounded batches.

Tasks are grouped by their number of answers ``a`` (so a batch has no padded slots) and evaluated through
:class:`deem_core.model.sparse.GatheredNetwork`, which gathers only the K x K weight blocks between a task's
own workers (either weight layout). A batch's gathered blocks stay within :data:`SLOT_BATCH_BYTES`: the
cost follows the answers (O(a^2 K^2) per task and layer), never tasks x workers.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from deem_core.data.annotations import AnnotationSet
from deem_core.model.engine import answers_of
from deem_core.model.sparse import GatheredNetwork

__all__ = ["SLOT_BATCH_BYTES", "layer_outputs", "leave_one_out_bytes", "leave_one_out_posteriors", "task_batches"]

#: memory the gathered weight blocks of one batch may take
SLOT_BATCH_BYTES = 32 << 20
#: float32 copies of a task's leave-one-out blocks alive at once (:func:`leave_one_out_bytes`)
LOO_COPIES = 5


def task_batches(data: AnnotationSet, bytes_per_task, batch_size: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """``(a, tasks)``: the set's tasks grouped by their answer count ``a``, in batches of at most ``batch_size``
    tasks whose cost ``bytes_per_task(a) * len(tasks)`` stays within :data:`SLOT_BATCH_BYTES`."""
    counts = data.answers_per_task()
    for a in np.unique(counts):
        tasks = np.flatnonzero(counts == a)
        size = max(1, SLOT_BATCH_BYTES // max(1, int(bytes_per_task(int(a)))))
        if batch_size is not None:
            size = max(1, min(size, int(batch_size)))
        for start in range(0, len(tasks), size):
            yield int(a), tasks[start:start + size]


def _slots(network, answers, tasks: np.ndarray):
    device = network.irbm_weight.device
    batch = torch.as_tensor(tasks, dtype=torch.long, device=device).unsqueeze(0).expand(network.n_runs, -1)
    slots = answers.slots(batch)
    return slots, answers.one_hot_fm(slots.answer, slots.mask, network.n_classes)


@torch.no_grad()
def layer_outputs(network, data: AnnotationSet, batch_size: int | None = None
                  ) -> Iterator[tuple[np.ndarray, list[torch.Tensor], torch.Tensor]]:
    """Every layer's output on the tasks' answers: yields ``(answer indices (B*a,), outputs, real)`` with
    ``outputs`` a list (input first) of (R, B, a, K) tensors and ``real`` (B, a) bool (False on the padded
    slot of a task without answers)."""
    answers = answers_of(data, network.irbm_weight.device)
    k, r, layers = network.n_classes, network.n_runs, network.n_layers
    for a, tasks in task_batches(data, lambda a: 4 * r * max(a, 1) ** 2 * k * k * max(layers, 1) * 3, batch_size):
        slots, x = _slots(network, answers, tasks)
        gathered = GatheredNetwork(network, slots.workers, slots.mask)
        outputs = [value.permute(0, 3, 1, 2) for value in gathered.propagate(x, slots.mask_fm)]  # (R, B, A, K)
        real = slots.mask[0].bool()
        yield slots.answer[0][real].cpu().numpy(), outputs, real


def leave_one_out_bytes(n_runs: int, n_answers: int, n_classes: int, n_layers: int) -> int:
    """What one task of ``n_answers`` answers takes in :func:`leave_one_out_posteriors`: its a leave-one-out
    copies, each with a x a gathered blocks of K x K per layer (float32, with the propagation's temporaries);
    a batch is never smaller than one task, so this is also the least a task with that many answers needs. Five
    copies: a task of 170 answers x 6 classes took +2,707 MiB where three said 2,024 (about four; attack round 67)."""
    return 4 * int(n_runs) * max(int(n_answers), 1) ** 3 * int(n_classes) ** 2 * max(int(n_layers), 1) * LOO_COPIES


@torch.no_grad()
def leave_one_out_posteriors(network, data: AnnotationSet, batch_size: int | None = None
                             ) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor | None, np.ndarray]]:
    """Hidden log-posteriors of every task with all its answers and with each answer left out.

    Yields ``(tasks (B,), full (R, B, K), loo (R, B, a, K) or None, answers (B*a,))``: ``loo[:, b, s]`` is
    ``log p(h | x)`` of task ``tasks[b]`` with its answer in slot ``s`` treated as missing (its worker's input
    zeroed, its unit summed out), and ``answers`` the answer indices of the slots in (task, slot) order. Tasks
    without answers come with ``loo=None``.
    """
    answers = answers_of(data, network.irbm_weight.device)
    k, r, layers = network.n_classes, network.n_runs, network.n_layers
    eye_cache: dict[int, torch.Tensor] = {}
    for a, tasks in task_batches(data, lambda a: leave_one_out_bytes(r, a, k, layers), batch_size):
        slots, x = _slots(network, answers, tasks)
        full = GatheredNetwork(network, slots.workers, slots.mask)
        _, logits = full.free_energy_and_logits(x, slots.mask_fm)
        full_log = torch.log_softmax(logits, dim=1).transpose(1, 2)  # (R, B, K)
        if a == 0:
            yield tasks, full_log, None, np.zeros(0, dtype=np.int64)
            continue
        b = len(tasks)
        if a not in eye_cache:
            eye_cache[a] = 1.0 - torch.eye(a, dtype=slots.mask.dtype, device=slots.mask.device)
        keep = eye_cache[a]  # row s: every slot but s
        workers = slots.workers.repeat_interleave(a, dim=1)  # (R, B*a, a): copy s of task b at b*a + s
        mask = (slots.mask.unsqueeze(2) * keep).reshape(r, b * a, a)  # (R, B*a, a)
        copies = x.repeat_interleave(a, dim=3) * mask.transpose(1, 2).unsqueeze(2)  # (R, a, K, B*a)
        loo = GatheredNetwork(network, workers, mask)
        _, loo_logits = loo.free_energy_and_logits(copies, mask.transpose(1, 2).contiguous())
        loo_log = torch.log_softmax(loo_logits, dim=1).transpose(1, 2).reshape(r, b, a, k)
        yield tasks, full_log, loo_log, slots.answer[0].reshape(-1).cpu().numpy()
