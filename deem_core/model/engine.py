"""DEEM on an :class:`~deem_core.data.annotations.AnnotationSet`: training data in the faster layout, and
free energies / posteriors of tasks from their answers.

* :func:`task_data` builds the training loop's data: a dense (tasks x workers) code matrix for the
  feature-major path when the data are dense enough for it to be faster, else the CSR answers for the
  sparse path (:func:`deem_core.model.training.choose_path`, or ``TrainingConfig.path``).
* :func:`train_annotations` trains on it (:func:`deem_core.model.training.train_on`).
* :func:`task_outputs` scores tasks with a trained network in chunks: through dense rows for a network in
  the matrix layout (as training did), through answer slots for the block layout.
"""

from __future__ import annotations

import threading
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from deem_core.data.annotations import AnnotationSet
from deem_core.model.network import DEEMNetwork
from deem_core.model.sampler import one_hot_state
from deem_core.model.sparse import SCORE_COPIES, TASK_BATCH_BYTES, Answers, free_energy_of_tasks
from deem_core.model.sizes import check_problem_size
from deem_core.model.sparse_training import SparseTaskData
from deem_core.model.training import (
    Callback, DenseTaskData, TaskData, TrainingConfig, TrainingResult, choose_path, resolve_device, train_on,
)

__all__ = ["DENSE_PURPOSE", "answers_of", "check_training_size", "path_for", "task_data", "task_outputs",
           "train_annotations"]

#: what the dense (tasks x workers) table is for, in AnnotationSet's size-check message
DENSE_PURPOSE = "DEEM training"


def answers_of(data: AnnotationSet, device: torch.device | str | None = None) -> Answers:
    """The annotation set's CSR answers as tensors on ``device``."""
    return Answers.from_arrays(data.task_offsets, data.worker_codes, data.label_codes, data.n_workers,
                               soft=data.soft_labels, device=device)


def path_for(data: AnnotationSet, path: str = "auto") -> str:
    """``"dense"`` or ``"sparse"``: ``path`` itself, or with ``"auto"`` the faster one for these data."""
    if path in ("dense", "sparse"):
        return path
    if path != "auto":
        raise ValueError(f"path must be 'auto', 'dense' or 'sparse', got {path!r}")
    counts = np.diff(data.task_offsets)
    if not counts.size:
        return "dense"
    return choose_path(data.n_workers, data.n_classes, float(counts.mean()), int(counts.max()))


def check_training_size(data: AnnotationSet, config: TrainingConfig, n_runs: int,
                        memory_bytes: int | None = None, kept_runs: int = 0) -> int:
    """:func:`~deem_core.model.sizes.check_problem_size` for training ``n_runs`` runs on ``data`` with
    ``config`` (its path, batch size, layers and momentum): DataError before anything big is allocated.
    ``kept_runs``: runs' worth of weights kept beside the training (a collapse guard's states)."""
    counts = np.diff(data.task_offsets)
    device = resolve_device(config.device)
    if memory_bytes is None and device.type == "cuda":
        memory_bytes = torch.cuda.get_device_properties(device).total_memory
    return check_problem_size(
        data.n_workers, data.n_classes, config.n_layers, n_runs, memory_bytes=memory_bytes, source=data.source,
        n_tasks=data.n_tasks, n_answers=data.n_answers, max_answers=int(counts.max()) if counts.size else 0,
        sum_squared_answers=int((counts.astype(np.int64) ** 2).sum()), batch_size=config.batch_size,
        path=path_for(data, config.path), momentum=bool(config.momentum), soft=data.soft_labels is not None,
        device=device.type, answer_counts=counts, kept_runs=kept_runs)


def task_data(data: AnnotationSet, config: TrainingConfig, device: torch.device | str,
              gold: np.ndarray | None = None, n_runs: int = 1) -> TaskData:
    """The training loop's data for ``data`` on the path ``config.path`` resolves to (see :func:`path_for`);
    ``n_runs``: the runs that will train on it together (the sparse path's storage of worker pairs counts them)."""
    device = torch.device(device)
    if path_for(data, config.path) == "dense":
        return DenseTaskData(data.dense_labels(purpose=DENSE_PURPOSE), data.n_classes, device,
                             soft=data.dense_soft(purpose=DENSE_PURPOSE), gold=gold)
    return SparseTaskData(answers_of(data, device), data.n_classes, device, gold=gold, n_layers=config.n_layers,
                          batching=config.batching, n_runs=n_runs)


def train_annotations(data: AnnotationSet, lrs: Sequence[float], seeds: Sequence[int],
                      config: TrainingConfig | None = None, *, gold: np.ndarray | None = None,
                      callbacks: Iterable[Callback | Callable[[int, list], bool | None]] = (),
                      stop_event: threading.Event | None = None, initial_network: DEEMNetwork | None = None,
                      supervised_weight: float = 0.0, prepared: TaskData | None = None) -> TrainingResult:
    """Train ``R = len(lrs)`` DEEM runs on an annotation set (:func:`train_on` on :func:`task_data`, or on
    ``prepared``, the task data already built for these annotations)."""
    config = config or TrainingConfig()
    prepared = prepared or task_data(data, config, resolve_device(config.device), gold=gold, n_runs=len(lrs))
    return train_on(prepared, lrs, seeds, config, callbacks=callbacks, stop_event=stop_event,
                    initial_network=initial_network, supervised_weight=supervised_weight)


@torch.no_grad()
def task_outputs(network: DEEMNetwork, data: AnnotationSet, batch_size: int = 8192,
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Free energy (R, n) and posterior p(h | x) (R, n, K, hidden-unit order) of every task of ``data``
    (encoded with the network's workers and classes), ``batch_size`` tasks at a time."""
    device = network.irbm_weight.device
    if network.layout == "blocks":
        return free_energy_of_tasks(network, answers_of(data, device), batch_size=batch_size)
    r, k = network.n_runs, network.n_classes
    energies, posteriors = [], []
    # rows a batch within TASK_BATCH_BYTES, as the sparse path's: 8,192 rows of 200 workers x 60 classes, their
    # one-hot inputs and each layer's outputs, took +673 MiB while the held-out answers were scored (attack round 67)
    per_row = 4 * SCORE_COPIES * r * max(1, data.n_workers) * k * (network.n_layers + 1)
    batch_size = max(1, min(int(batch_size), TASK_BATCH_BYTES // per_row))
    for start in range(0, data.n_tasks, batch_size):
        positions = np.arange(start, min(start + batch_size, data.n_tasks))
        labels = torch.as_tensor(data.dense_labels(positions, purpose=DENSE_PURPOSE), dtype=torch.long,
                                 device=device)
        mask = (labels >= 0).float()
        soft = data.dense_soft(positions, purpose=DENSE_PURPOSE)
        x = torch.as_tensor(soft, device=device) if soft is not None else one_hot_state(labels, mask, k)
        energy, logits = network.free_energy_and_logits(x.unsqueeze(0).expand(r, -1, -1, -1),
                                                        mask.unsqueeze(0).expand(r, -1, -1))
        energies.append(energy)
        posteriors.append(torch.softmax(logits, dim=-1))
    if not energies:
        return torch.zeros(r, 0, device=device), torch.zeros(r, 0, k, device=device)
    return torch.cat(energies, dim=1), torch.cat(posteriors, dim=1)
