"""DEEM steps of the platform-scale benchmark (``benchmarks/scale.py`` registers them in its ``STEPS``).

Each step runs in scale.py's fresh single-thread subprocess on the cached AnnotationSet of a set:

* ``deem_epoch`` -- the engine alone: DEEM with one layer, majority-vote start, the default learning rate,
  two epochs; reports seconds per epoch (the two epochs' training time / 2, start-up included), the path
  and weight storage the data took, and the size check's estimate beside the measured peak;
* ``deem``       -- the default run, ``DEEM()`` through the method registry (what ``deem aggregate`` runs:
  the start choice, 100 epochs, the outputs), scored against the truth;
* ``deem_mv``    -- the same with ``init="mv"`` (the start the default's dependence rule passes over on
  some sets);
* ``deem_storage`` -- on a set whose every worker pair fits (``medium``): the same training (one layer,
  majority-vote start, 20 epochs) with all ``d*d`` pair blocks stored and with only the co-occurring
  pairs, accuracy and time of each (the stored-pairs model must train identically on the training tasks,
  ``tests/test_sparse_training.py``; here the two start from different noise).
"""

from __future__ import annotations

import pickle
import resource
import time
from pathlib import Path
from typing import Any, Callable

__all__ = ["DEEM_STEPS", "DEEM_TARGETS"]

#: (set, step) -> (seconds, MB) targets of issue 16 (DEEM rows)
DEEM_TARGETS = {("netease", "deem_epoch"): (10, 4096), ("netease", "deem"): (1200, 4096),
                ("medium", "deem_epoch"): (2, 1024), ("longtail", "deem"): (None, 4096),
                ("longtail", "deem_epoch"): (None, 4096)}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _load(paths: dict[str, Path]):
    started = time.perf_counter()
    with open(paths["cache"], "rb") as handle:
        data = pickle.load(handle)
    return data, time.perf_counter() - started


def _truth_codes(data, paths: dict[str, Path]):
    import numpy as np  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415

    truth = pd.read_csv(paths["truth"]).set_index("task")["truth"]
    codes = np.full(data.n_tasks, -1, dtype=np.int64)
    known = data.tasks.isin(truth.index)
    values = truth.loc[data.tasks[known]].to_numpy()
    codes[np.flatnonzero(known)] = data.classes.get_indexer(values)
    return codes


def _engine_accuracy(network, data, truth_codes) -> float:
    """Accuracy of run 0 of ``network`` (Hungarian map against majority vote, as DEEM maps its classes)."""
    from deem_core.model.classmap import hungarian_class_map  # noqa: PLC0415
    from deem_core.model.engine import task_outputs  # noqa: PLC0415

    hidden = task_outputs(network, data)[1][0].argmax(-1).cpu().numpy()
    mapped = hungarian_class_map(hidden, data.majority_vote(), data.n_classes)[hidden]
    known = truth_codes >= 0
    return 100.0 * float((mapped[known] == truth_codes[known]).mean())


def step_deem_epoch(paths: dict[str, Path]) -> dict[str, Any]:
    import torch  # noqa: PLC0415

    from deem_core.methods.deem import DEFAULT_LR  # noqa: PLC0415
    from deem_core.model.engine import check_training_size, path_for, task_data, train_annotations  # noqa: PLC0415
    from deem_core.model.training import TrainingConfig  # noqa: PLC0415

    data, load = _load(paths)
    config = TrainingConfig(n_layers=1, epochs=2, device="cpu")
    wall, cpu = time.perf_counter(), time.process_time()
    estimate = check_training_size(data, config, 1)
    prepared = task_data(data, config, torch.device("cpu"))
    result = train_annotations(data, [DEFAULT_LR], [0], config, prepared=prepared)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    network = result.network
    storage = "matrix" if network.layout == "matrix" else (
        "all pairs" if network.pair_keys is None else f"{network.n_pairs:,} co-occurring pairs")
    last = result.history[-1]
    return {"wall": wall / 2, "cpu": cpu / 2, "peak": _peak_mb(), "load": load,
            "result": f"{path_for(data)} path, {storage}, {network.bias} bias; estimate {estimate / 2**20:,.0f} MB; "
                      f"acceptance {last['acceptance_rate']:.2f}; 2 epochs {wall:.1f} s wall / {cpu:.1f} s CPU"}


def _fit_step(**params) -> Callable[[dict[str, Path]], dict[str, Any]]:
    def step(paths: dict[str, Path]) -> dict[str, Any]:
        from deem_core.methods.registry import fit_method  # noqa: PLC0415

        data, load = _load(paths)
        truth = _truth_codes(data, paths)
        wall, cpu = time.perf_counter(), time.process_time()
        model = fit_method("deem", data, **params)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        labels = data.classes.get_indexer(model.labels_.loc[data.tasks].to_numpy())
        known = truth >= 0
        accuracy = 100.0 * float((labels[known] == truth[known]).mean())
        epoch_seconds = model.history_["seconds"].diff().dropna()
        return {"wall": wall, "cpu": cpu, "peak": _peak_mb(), "load": load,
                "result": f"accuracy {accuracy:.2f}%; start {model.init_}, {model.n_epochs_} epochs "
                          f"(median {epoch_seconds.median():.1f} s wall each), {model.network_.layout} layout"}
    return step


def step_deem_storage(paths: dict[str, Path]) -> dict[str, Any]:
    import torch  # noqa: PLC0415

    from deem_core.methods.deem import DEFAULT_LR  # noqa: PLC0415
    from deem_core.model.engine import answers_of, train_annotations  # noqa: PLC0415
    from deem_core.model.sparse import cooccurring_pairs  # noqa: PLC0415
    from deem_core.model.sparse_training import SparseTaskData  # noqa: PLC0415
    from deem_core.model.training import TrainingConfig  # noqa: PLC0415

    data, load = _load(paths)
    truth = _truth_codes(data, paths)
    config = TrainingConfig(n_layers=1, epochs=20, device="cpu", path="sparse")
    answers = answers_of(data)
    parts, total_wall, total_cpu = [], 0.0, 0.0
    for name, keys in (("all pairs", None), ("co-occurring pairs", cooccurring_pairs(answers))):
        prepared = SparseTaskData(answers, data.n_classes, torch.device("cpu"), n_layers=1, pair_keys=keys)
        wall, cpu = time.perf_counter(), time.process_time()
        result = train_annotations(data, [DEFAULT_LR], [0], config, prepared=prepared)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        total_wall, total_cpu = total_wall + wall, total_cpu + cpu
        blocks = result.network.n_pairs
        parts.append(f"{name} ({blocks:,} blocks): {_engine_accuracy(result.network, data, truth):.2f}%, "
                     f"{cpu / 20:.2f} s CPU/epoch")
    return {"wall": total_wall, "cpu": total_cpu, "peak": _peak_mb(), "load": load,
            "result": "; ".join(parts) + " (1 layer, MV start, 20 epochs)"}


DEEM_STEPS: dict[str, tuple[str, Callable[[dict[str, Path]], dict[str, Any]]]] = {
    "deem_epoch": ("DEEM 1 layer, seconds per epoch", step_deem_epoch),
    "deem": ("DEEM default run", _fit_step()),
    "deem_mv": ("DEEM default run, majority-vote start", _fit_step(init="mv")),
    "deem_storage": ("DEEM all pairs vs co-occurring pairs", step_deem_storage),
}
