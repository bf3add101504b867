"""DEEM steps of the platform-scale benchmark (``benchmarks/scale.py`` registers them in its ``STEPS``).

Each step runs in scale.py's fresh single-thread subprocess on the cached AnnotationSet of a set:

* ``deem_epoch`` -- the engine alone: DEEM with one layer, majority-vote start, the default learning rate and
  batch size, three epochs; reports seconds per epoch (wall and CPU: the mean of epochs 2 and 3; the first
  includes the runs' initialisation, the total with set-up is in the result), the path
  and weight storage the data took, and the size check's estimate beside the measured peak;
* ``deem``       -- the default run, ``DEEM()`` through the method registry (what ``deem aggregate`` runs:
  the start choice, 100 epochs, the outputs), scored against the truth;
* ``deem_mv``    -- the same with ``init="mv"`` (the start the default's dependence rule passes over on
  some sets);
* ``deem_converge`` -- the engine alone from the Dawid-Skene start (the start the default picks on these sets),
  one run, ``--converge-epochs`` epochs (default 30): accuracy against the truth after epochs 1, 2, 5, 10, 15,
  ... and the CPU seconds per epoch (the scoring passes excluded): whether a default run of 100 epochs is
  needed on large data;
* ``deem_storage`` -- on a set whose every worker pair fits (``medium``): the same training (one layer,
  majority-vote start, 20 epochs) with all ``d*d`` pair blocks stored and with only the co-occurring
  pairs, accuracy and time of each (the stored-pairs model must train identically on the training tasks,
  ``tests/test_sparse_training.py``; here the two start from different noise).

``scale.py --device`` sets :data:`DEVICE` (default ``cpu``); ``--deem-epochs N`` makes the ``deem`` steps train N
epochs instead of the default 100 (said in their result: they are then not the default run).
"""

from __future__ import annotations

import pickle
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable

__all__ = ["DEEM_STEPS", "DEEM_TARGETS", "DEVICE"]

#: the device the DEEM steps train on (scale.py --device)
DEVICE = "cpu"
#: epochs of the ``deem`` steps (None: the estimator's default) and of ``deem_converge`` (scale.py options)
DEEM_EPOCHS: int | None = None
CONVERGE_EPOCHS = 30
#: epochs of ``deem_epoch`` (the first is left out of the figure)
EPOCH_STEP_EPOCHS = 3

#: (set, step) -> (seconds, MB) targets of issue 16 (DEEM rows)
DEEM_TARGETS = {("netease", "deem_epoch"): (10, 4096), ("netease", "deem"): (1200, 4096),
                ("netease", "deem_converge"): (None, 4096),
                ("medium", "deem_epoch"): (2, 1024), ("longtail", "deem"): (None, 4096),
                ("longtail", "deem_epoch"): (None, 4096),
                # MnistE-sized dense data: the dense path, no slower than before the sparse path (+10%): the
                # pre-sparse engine (commit 54a8f7a) measured beside this one, benchmarks/results/scale_deem.txt
                ("mnist_e", "deem_epoch"): (1.1 * 1.32, 4096)}


def _device_peak() -> str:
    """The accelerator's peak allocation, when the steps ran on one."""
    import torch  # noqa: PLC0415

    if not DEVICE.startswith("cuda"):
        return ""
    return f"; GPU peak {torch.cuda.max_memory_allocated() / 2**20:,.0f} MB"


def _peak_mb() -> float:
    # VmHWM (KiB): this process's own peak; ru_maxrss keeps the forking parent's
    return int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]) / 1024.0


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


def _engine_accuracy(network, data, truth_codes, run: int = 0) -> float:
    """Accuracy of run ``run`` of ``network`` (Hungarian map against majority vote, as DEEM maps its classes)."""
    from deem_core.model.classmap import hungarian_class_map  # noqa: PLC0415
    from deem_core.model.engine import task_outputs  # noqa: PLC0415

    hidden = task_outputs(network, data)[1][run].argmax(-1).cpu().numpy()
    mapped = hungarian_class_map(hidden, data.majority_vote(), data.n_classes)[hidden]
    known = truth_codes >= 0
    return 100.0 * float((mapped[known] == truth_codes[known]).mean())


def step_deem_epoch(paths: dict[str, Path]) -> dict[str, Any]:
    import torch  # noqa: PLC0415

    from deem_core.methods.deem import DEFAULT_LR  # noqa: PLC0415
    from deem_core.model.engine import check_training_size, path_for, task_data, train_annotations  # noqa: PLC0415
    from deem_core.model.training import TrainingConfig  # noqa: PLC0415

    data, load = _load(paths)
    config = TrainingConfig(n_layers=1, epochs=EPOCH_STEP_EPOCHS, device=DEVICE)
    marks = []  # (wall, CPU) at the start and after every epoch

    def mark(epoch, logs):
        marks.append((time.perf_counter(), time.process_time()))

    wall, cpu = time.perf_counter(), time.process_time()
    estimate = check_training_size(data, config, 1)
    prepared = task_data(data, config, torch.device(DEVICE))
    marks.append((time.perf_counter(), time.process_time()))
    result = train_annotations(data, [DEFAULT_LR], [0], config, prepared=prepared, callbacks=[mark])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    network = result.network
    storage = "matrix" if network.layout == "matrix" else (
        "all pairs" if network.pair_keys is None else f"{network.n_pairs:,} co-occurring pairs")
    last = result.history[-1]
    # an epoch: the mean of the epochs after the first (the first includes the runs' initialisation)
    n = len(marks) - 2
    epoch_wall, epoch_cpu = ((marks[-1][i] - marks[1][i]) / n for i in (0, 1))
    batching = f", {prepared.batching} batching" if hasattr(prepared, "batching") else ""
    return {"wall": epoch_wall, "cpu": epoch_cpu, "peak": _peak_mb(), "load": load,
            "result": f"{path_for(data)} path, {storage}, {network.bias} bias, batch {config.batch_size}{batching}; "
                      f"estimate {estimate / 2**20:,.0f} MB; acceptance {last['acceptance_rate']:.2f}; s per epoch: "
                      f"mean of epochs 2-{result.epochs_run}; all {result.epochs_run} epochs with set-up {wall:.1f} s "
                      f"wall / {cpu:.1f} s CPU{_device_peak()}"}


def _fit_step(**params) -> Callable[[dict[str, Path]], dict[str, Any]]:
    def step(paths: dict[str, Path]) -> dict[str, Any]:
        import numpy as np  # noqa: PLC0415

        from deem_core.methods.registry import fit_method  # noqa: PLC0415

        data, load = _load(paths)
        truth = _truth_codes(data, paths)
        extra = {} if DEEM_EPOCHS is None else {"epochs": DEEM_EPOCHS}
        ends: list[float] = []  # CPU time at the end of every epoch

        def mark(epoch, logs):
            ends.append(time.process_time())

        wall, cpu = time.perf_counter(), time.process_time()
        model = fit_method("deem", data, device=DEVICE, callbacks=[mark], **params, **extra)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        epoch_cpu = float(np.median(np.diff(ends))) if len(ends) > 1 else float("nan")
        default_epochs = type(model)().epochs
        projected = cpu + (default_epochs - len(ends)) * epoch_cpu
        labels = data.classes.get_indexer(model.labels_.loc[data.tasks].to_numpy())
        known = truth >= 0
        accuracy = 100.0 * float((labels[known] == truth[known]).mean())
        epoch_seconds = model.history_.groupby("epoch")["seconds"].first().diff().dropna()
        runs = int(model.history_["run"].nunique())
        chosen = f"start {model.init_}, {model.n_layers_} layer(s)"
        what = "default run" if DEEM_EPOCHS is None else (
            f"NOT the default run: {DEEM_EPOCHS} epochs (--deem-epochs); with the default {default_epochs} "
            f"epochs ~{projected:,.0f} s CPU (projected: this run + {default_epochs - len(ends)} x the median epoch)")
        budget = (f" ({model.epochs_} of {model.epochs} epochs fit in the budget of {model.max_updates:,} updates)"
                  if model.epochs_ < model.epochs else "")
        return {"wall": wall, "cpu": cpu, "peak": _peak_mb(), "load": load, "accuracy": accuracy,
                **({} if DEEM_EPOCHS is None else {"projected": projected}),
                "result": f"accuracy {accuracy:.2f}%; {what}{budget}; chose {chosen}; {model.n_epochs_} epochs of "
                          f"{runs} run(s) kept (median {epoch_cpu:.1f} s CPU / {epoch_seconds.median():.1f} s wall per "
                          f"epoch), "
                          f"{model.network_.layout} layout{_device_peak()}"}
    return step


def step_deem_converge(paths: dict[str, Path], start_name: str = "ds") -> dict[str, Any]:
    import torch  # noqa: PLC0415

    from deem_core.methods.deem import DEFAULT_LR  # noqa: PLC0415
    from deem_core.methods.starts import initial_network  # noqa: PLC0415
    from deem_core.model.engine import task_data, train_annotations  # noqa: PLC0415
    from deem_core.model.training import TrainingConfig  # noqa: PLC0415

    data, load = _load(paths)
    truth = _truth_codes(data, paths)
    device = torch.device(DEVICE)
    config = TrainingConfig(n_layers=1, epochs=CONVERGE_EPOCHS, device=DEVICE)
    wall, cpu = time.perf_counter(), time.process_time()
    prepared = task_data(data, config, device)
    start, _ = initial_network(data, [0], 1, start_name, device, config, spec=prepared.network_spec(),
                               explicit=True)
    checkpoints = sorted({1, 2, 5, *range(10, CONVERGE_EPOCHS + 1, 5), CONVERGE_EPOCHS})
    curve: list[str] = []
    scoring = {"cpu": 0.0, "wall": 0.0}

    class Score:  # accuracy of the live network at the checkpoints (its CPU time kept apart)
        network = None

        def on_train_begin(self, network):
            self.network = network

        def on_epoch_end(self, epoch, logs):
            if epoch in checkpoints:
                w, c = time.perf_counter(), time.process_time()
                curve.append(f"{epoch}: {_engine_accuracy(self.network, data, truth):.2f}")
                scoring["wall"] += time.perf_counter() - w
                scoring["cpu"] += time.process_time() - c

    prepared_at = time.process_time() - cpu
    result = train_annotations(data, [DEFAULT_LR], [0], config, prepared=prepared, initial_network=start,
                               callbacks=[Score()])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    per_epoch = (cpu - scoring["cpu"] - prepared_at) / result.epochs_run
    return {"wall": wall, "cpu": cpu, "peak": _peak_mb(), "load": load,
            "accuracy": float(curve[-1].split(": ")[1]),
            "result": f"{start_name.upper()} start, 1 layer, {result.epochs_run} epochs; accuracy after epoch "
                      + ", ".join(curve)
                      + f"; {per_epoch:.2f} s CPU per epoch (start {prepared_at:.1f} s and scoring "
                        f"{scoring['cpu']:.1f} s CPU excluded){_device_peak()}"}


def step_deem_heldout(paths: dict[str, Path]) -> dict[str, Any]:
    """Both starts batched on the answers left after the default hold-out (as ``DEEM()`` trains them), for
    ``CONVERGE_EPOCHS`` epochs: at checkpoints, each start's held-out log-likelihood per answer (what the start
    choice reads) beside its accuracy against the truth. Answers whether stopping at the best held-out
    log-likelihood would track accuracy."""
    import torch  # noqa: PLC0415

    from deem_core.analysis.selection import (DEFAULT_HELDOUT_SHARE, heldout_log_probs, hold_out_answers,  # noqa: PLC0415
                                              observed_log_likelihood)
    from deem_core.methods.deem import DEFAULT_LR  # noqa: PLC0415
    from deem_core.methods.starts import initial_network, stack_networks  # noqa: PLC0415
    from deem_core.model.engine import task_data, train_annotations  # noqa: PLC0415
    from deem_core.model.training import TrainingConfig  # noqa: PLC0415

    data, load = _load(paths)
    truth = _truth_codes(data, paths)
    device = torch.device(DEVICE)
    train, held = hold_out_answers(data, DEFAULT_HELDOUT_SHARE, 0)
    config = TrainingConfig(n_layers=1, epochs=CONVERGE_EPOCHS, device=DEVICE)
    wall, cpu = time.perf_counter(), time.process_time()
    prepared = task_data(train, config, device, n_runs=2)
    starts = [initial_network(train, [0], 1, name, device, config, explicit=True, spec=prepared.network_spec())[0]
              for name in ("mv", "ds")]
    network = stack_networks(starts)
    del starts
    checkpoints = sorted({1, 2, 5, *range(10, CONVERGE_EPOCHS + 1, 5), CONVERGE_EPOCHS})
    rows: list[str] = []
    last: dict[str, float] = {}

    class Score:
        network = None

        def on_train_begin(self, network):
            self.network = network

        def on_epoch_end(self, epoch, logs):
            if epoch in checkpoints:
                loglik = observed_log_likelihood(heldout_log_probs(self.network, train, held), held).mean(1)
                cells = []
                for run, name in enumerate(("mv", "ds")):
                    accuracy = _engine_accuracy(self.network, data, truth, run)
                    cells.append(f"{name} {float(loglik[run]):.4f} / {accuracy:.2f}%")
                    last[name] = accuracy
                rows.append(f"{epoch}: " + ", ".join(cells))

    train_annotations(train, [DEFAULT_LR] * 2, [0, 0], config, prepared=prepared, initial_network=network,
                      callbacks=[Score()])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall": wall, "cpu": cpu, "peak": _peak_mb(), "load": load, "accuracy": last.get("mv", float("nan")),
            "result": f"1 layer, both starts on the answers left after holding {DEFAULT_HELDOUT_SHARE:.0%} out; "
                      f"held-out log-likelihood per answer / accuracy after epoch " + "; ".join(rows)}


def step_deem_storage(paths: dict[str, Path]) -> dict[str, Any]:
    import torch  # noqa: PLC0415

    from deem_core.methods.deem import DEFAULT_LR  # noqa: PLC0415
    from deem_core.model.engine import answers_of, train_annotations  # noqa: PLC0415
    from deem_core.model.sparse import cooccurring_pairs  # noqa: PLC0415
    from deem_core.model.sparse_training import SparseTaskData  # noqa: PLC0415
    from deem_core.model.training import TrainingConfig  # noqa: PLC0415

    data, load = _load(paths)
    truth = _truth_codes(data, paths)
    config = TrainingConfig(n_layers=1, epochs=20, device=DEVICE, path="sparse")
    answers = answers_of(data, DEVICE)
    parts, total_wall, total_cpu = [], 0.0, 0.0
    for name, keys in (("all pairs", None), ("co-occurring pairs", cooccurring_pairs(answers))):
        prepared = SparseTaskData(answers, data.n_classes, torch.device(DEVICE), n_layers=1, pair_keys=keys)
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
    "deem_converge": ("DEEM accuracy over epochs, DS start", step_deem_converge),
    "deem_converge_mv": ("DEEM accuracy over epochs, MV start", partial(step_deem_converge, start_name="mv")),
    "deem_storage": ("DEEM all pairs vs co-occurring pairs", step_deem_storage),
    "deem_heldout": ("DEEM held-out log-likelihood vs accuracy over epochs, both starts", step_deem_heldout),
}
