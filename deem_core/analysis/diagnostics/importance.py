"""Worker importance: how much DEEM's decision on a task depends on each worker (paper §5.4, Fig. 5).

Definition
----------
For task ``t`` let ``p(c | x_t)`` be DEEM's consensus posterior (class order, averaged over the usable
runs exactly as the estimator's ``posterior_``) and ``y_t = argmax_c p(c | x_t)`` its decision. Removing
worker ``i`` means treating its answer as *missing*: its input row is zeroed and its mask set to 0, so
the layers ignore it and the iRBM sums its visible unit out exactly (the same treatment as any missing
annotation; valid on sparse data). The per-task drop is

    drop_ti = p(y_t | x_t) - p(y_t | x_t without worker i)

and the **importance of worker i on a set of tasks S** is the mean of ``drop_ti`` over the tasks of S
that worker i answered (removing a worker that did not answer changes nothing, so those tasks are
not counted; ``n_answered`` says how many were). Positive = the worker supports DEEM's decision;
negative = it argues against it on average; a worker whose answers DEEM ignores scores 0. The score is
in probability units (between -1 and 1).

A second column, ``importance_log_odds``, is the mean drop of the decided class's log-odds
``log p(y_t) - log(1 - p(y_t))`` (nats), computed in log space. The probability drop saturates: with many
good workers ``p(y_t | x_t)`` is 1 to float precision with or without any single worker, and every
worker scores ~0 (measured: 100 workers of 60% accuracy, 10 classes). The log-odds drop does not
saturate; for a plain iRBM it is the worker's vote weight, the log-likelihood ratio it contributes
(like the weights of weighted majority voting).

Cost
----
Every task is evaluated on its own answers only (the network's answer-slot path,
:class:`deem_core.model.sparse.GatheredNetwork`, in either weight layout): a task with ``a`` answers and its
``a`` leave-one-out copies cost O(a^3 K^2) per layer instead of O(d (dK)^2), so the cost follows the answers,
not the number of workers. Tasks are batched by answer count, each batch's gathered blocks within
:data:`~deem_core.analysis.diagnostics._slots.SLOT_BATCH_BYTES`; ``max_tasks`` estimates the means on a
random sample of tasks (``std_error`` says how precise).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch

from deem_core.data.annotations import AnnotationSet, DataError
from deem_core.data.text import middle_cut, natural_positions
from deem_core.analysis.diagnostics._slots import leave_one_out_posteriors
from deem_core.analysis.diagnostics._common import class_groups, gold_codes, prepare, usable_runs

__all__ = ["ImportanceResult", "TaskSubset", "class_names_text", "leave_one_out_drops", "select_tasks",
           "worker_importance"]

SUBSETS = ("selected", "rest", "all")


@dataclass
class TaskSubset:
    """A chosen subset of tasks and its complement.

    selected: (n,) bool; eligible: (n,) bool — tasks that belong to ``selected`` or to the rest (e.g.
    tasks without a gold label are neither when the subset is defined by gold class).
    """

    selected: np.ndarray
    eligible: np.ndarray
    description: str

    @property
    def rest(self) -> np.ndarray:
        return self.eligible & ~self.selected


def _class_codes(data: AnnotationSet, classes: Sequence[Any]) -> list[int]:
    """Class values (original labels, or their text as typed on a command line) -> class codes."""
    by_text = {str(value): code for code, value in enumerate(data.classes)}
    codes = []
    for value in classes:
        code = data.classes.get_indexer([value])[0] if value in set(data.classes) else by_text.get(str(value), -1)
        if code < 0:
            raise DataError(f"class {value!r} is not among the classes {list(data.classes)[:20]}")
        codes.append(int(code))
    return codes


def select_tasks(model, data: Any, classes: Sequence[Any] | None = None, by: str | None = None,
                 gold: Any = None, worker: Any = None, label: Any = None) -> TaskSubset:
    """Choose a subset of tasks.

    * ``classes`` + ``by="gold"``: tasks whose gold label is one of ``classes`` (rest: the other tasks
      with a gold label);
    * ``classes`` + ``by="predicted"``: tasks DEEM labels as one of ``classes`` (rest: all others);
    * ``worker`` + ``label``: tasks where that worker gave that label (rest: all others).
    ``by=None`` means gold when ``gold`` is given, else predicted.
    """
    data = prepare(model, data)
    n = data.n_tasks
    if worker is not None:
        if classes is not None:
            raise ValueError("choose the subset either by classes or by worker + label, not both")
        if label is None:
            raise ValueError("a worker subset needs the label too")
        matches = [i for i, w in enumerate(data.workers) if w == worker or str(w) == str(worker)]
        if not matches:
            raise DataError(f"worker {worker!r} is not among the workers {list(data.workers)[:20]}")
        code = _class_codes(data, [label])[0]
        selected = np.zeros(n, dtype=bool)
        selected[data.task_codes[(data.worker_codes == matches[0]) & (data.label_codes == code)]] = True
        return TaskSubset(selected, np.ones(n, dtype=bool),
                          f"tasks where {data.workers[matches[0]]} answered {data.classes[code]!r}")
    if classes is None:
        raise ValueError("give classes (with by='gold' or 'predicted') or a worker and a label")
    codes = _class_codes(data, classes)
    by = by or ("gold" if gold is not None else "predicted")
    shown = [str(data.classes[c]) for c in codes]
    names = class_names_text(shown)
    if by == "gold":
        truth = gold_codes(model, data, gold)
        if truth is None:
            raise ValueError("by='gold' needs gold labels")
        eligible = truth >= 0
        if not eligible.any():
            raise DataError("gold labels: none of the tasks has a gold label")
        return TaskSubset(np.isin(truth, codes) & eligible, eligible, f"tasks whose gold label is {names}")
    if by == "predicted":
        groups, _, _ = class_groups(model, data, None)
        return TaskSubset(np.isin(groups, codes), np.ones(n, dtype=bool), f"tasks DEEM labels {names}")
    raise ValueError(f"by must be 'gold' or 'predicted', got {by!r}")


def class_names_text(names: Sequence[str]) -> str:
    """Class names in plain words, no set notation: "0", "0 or 2", "0, 1 or 2"; each name in quotes when one holds
    a comma or " or " (the classes "a, b" and "a" + "b" read the same; attack round 13)."""
    # each cut to 60 characters, head and tail (a class of ~3,000 characters stood whole in the page's note;
    # walkthrough 114)
    names = [middle_cut(str(name), 60) for name in names]
    if any("," in name or " or " in name for name in names):
        names = [f"“{name}”" for name in names]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _class_order_log(log_hidden: torch.Tensor, class_maps: np.ndarray, runs: Sequence[int]) -> torch.Tensor:
    """Hidden-unit log-probabilities (R, ..., K) -> log of the mean over ``runs`` of the class-order
    probabilities (..., K), computed in log space so confident posteriors do not saturate."""
    parts = []
    for r in runs:
        inverse = torch.as_tensor(np.argsort(np.asarray(class_maps[r])), device=log_hidden.device)
        parts.append(log_hidden[r].index_select(-1, inverse))  # class c <- hidden unit class_map^-1(c)
    stacked = torch.stack(parts)
    return torch.logsumexp(stacked, dim=0) - float(np.log(len(runs)))


def _log_odds(logp: torch.Tensor, decided: torch.Tensor) -> torch.Tensor:
    """log p(y) - log(1 - p(y)) of class ``decided`` from log-probabilities (..., K) (stable in log space)."""
    chosen = logp.gather(-1, decided.unsqueeze(-1)).squeeze(-1)
    others = torch.logsumexp(logp.scatter(-1, decided.unsqueeze(-1), float("-inf")), dim=-1)
    return chosen - others


@torch.no_grad()
def leave_one_out_drops(model, data: Any, positions: np.ndarray | None = None, runs: Sequence[int] | None = None,
                        batch_size: int | None = None,
                        progress: Callable[[str, int, int], None] | None = None) -> dict[str, np.ndarray]:
    """Per-answer drop of the decided class's posterior when the answer's worker is removed from its task.

    positions: which tasks (default all), m of them. Returns, one entry per answer of those tasks (in their
    order, then by worker: the CSR order of ``data.subset_tasks(positions)``): ``task`` (index 0..m-1 into
    ``positions``), ``worker`` (worker codes), ``drop`` float32 — drop of p(decided) — and ``drop_log_odds``
    — drop of the decided class's log-odds ``log p / (1 - p)`` (nats; does not saturate when p is close to
    1); and per task ``decided`` (m,) class codes and ``confidence`` (m,) = p(decided | x). ``batch_size``
    caps the tasks per batch (batches are otherwise sized by memory). ``progress(phase, tasks_done, tasks)`` is
    called after every batch (a dashboard's time left; nothing here prints).
    """
    data = prepare(model, data)
    runs = list(usable_runs(model) if runs is None else runs)
    network = model.network_
    if len(runs) < network.n_runs:  # only the runs asked for are evaluated (each costs a^3 K^2 per task and layer)
        with torch.no_grad():
            network = network.select(runs)
        maps = np.asarray(model.class_maps_)[runs]
        runs = list(range(len(runs)))
    else:
        maps = model.class_maps_
    positions = np.arange(data.n_tasks) if positions is None else np.asarray(positions)
    subset = data.subset_tasks(positions)
    m = len(positions)
    out = {"task": subset.task_codes.copy(), "worker": subset.worker_codes.copy(),
           "drop": np.empty(subset.n_answers, dtype=np.float32),
           "drop_log_odds": np.empty(subset.n_answers, dtype=np.float32),
           "decided": np.empty(m, dtype=np.int64), "confidence": np.empty(m, dtype=np.float32)}
    done = 0
    for tasks, full_hidden, loo_hidden, answers in leave_one_out_posteriors(network, subset, batch_size):
        if progress is not None:
            done += len(tasks)
            progress("worker importance", done, m)
        full = _class_order_log(full_hidden, maps, runs)  # (B, K)
        dec = full.argmax(-1)
        out["decided"][tasks] = dec.cpu().numpy()
        p_full = full.gather(-1, dec.unsqueeze(-1)).exp()  # (B, 1)
        out["confidence"][tasks] = p_full.squeeze(-1).cpu().numpy()
        if loo_hidden is None:  # tasks without answers: nobody to remove
            continue
        loo = _class_order_log(loo_hidden, maps, runs)  # (B, a, K)
        dec_loo = dec.unsqueeze(-1).expand(-1, loo.shape[1])
        p_loo = loo.gather(-1, dec_loo.unsqueeze(-1)).squeeze(-1).exp()  # (B, a)
        out["drop"][answers] = (p_full - p_loo).cpu().numpy().reshape(-1)
        odds = _log_odds(full, dec).unsqueeze(-1) - _log_odds(loo, dec_loo)
        out["drop_log_odds"][answers] = odds.cpu().numpy().reshape(-1)
    return out


@dataclass
class ImportanceResult:
    """``table``: one row per (worker, subset) with ``importance`` (mean drop of p(decided)),
    ``std_error``, ``n_tasks`` (tasks in the subset, or sampled from it), ``n_answered`` (of those,
    answered by the worker; the means run over these), ``importance_log_odds`` and
    ``std_error_log_odds`` (the same for the decided class's log-odds, in nats). ``subset`` is
    ``selected``, ``rest`` or ``all``."""

    table: pd.DataFrame
    description: str
    seconds: float
    sampled: bool = False
    notes: list[str] = field(default_factory=list)

    def pivot(self, column: str = "importance") -> pd.DataFrame:
        """``column`` (``importance`` or ``importance_log_odds``) as workers x subsets (workers in data order)."""
        order = list(dict.fromkeys(self.table["worker"]))
        return self.table.pivot(index="worker", columns="subset", values=column).reindex(
            index=order, columns=[s for s in SUBSETS if s in set(self.table["subset"])])

    def ratio(self, column: str = "importance") -> pd.Series:
        """importance on ``selected`` / importance on ``rest`` per worker (Fig. 5's left vs right panel)."""
        wide = self.pivot(column)
        return (wide["selected"] / wide["rest"]).rename("selected_over_rest")


def _mean_and_error(values: np.ndarray, workers: np.ndarray, n_workers: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per worker: mean of its answers' ``values``, the standard error of that mean, and the count."""
    values = values.astype(np.float64)
    n_answered = np.bincount(workers, minlength=n_workers)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(workers, weights=values, minlength=n_workers) / n_answered
        centred = values - np.where(np.isfinite(mean), mean, 0.0)[workers]
        sq = np.bincount(workers, weights=centred ** 2, minlength=n_workers)
        std_error = np.sqrt(sq / np.maximum(n_answered - 1, 1)) / np.sqrt(n_answered)
    std_error[n_answered < 2] = np.nan
    return mean, std_error, n_answered


def _summarise(workers: list, name: str, drops: dict[str, np.ndarray], rows: np.ndarray) -> pd.DataFrame:
    """One row per worker over the tasks ``rows`` (indices into the tasks ``drops`` was computed for)."""
    in_subset = np.zeros(len(drops["decided"]), dtype=bool)
    in_subset[rows] = True
    chosen = in_subset[drops["task"]]
    who = drops["worker"][chosen]
    mean, std_error, n_answered = _mean_and_error(drops["drop"][chosen], who, len(workers))
    log_mean, log_error, _ = _mean_and_error(drops["drop_log_odds"][chosen], who, len(workers))
    table = pd.DataFrame({"worker": workers, "subset": name, "importance": mean, "std_error": std_error,
                         "n_tasks": len(rows), "n_answered": n_answered.astype(np.int64),
                         "importance_log_odds": log_mean, "std_error_log_odds": log_error})
    # in the workers' natural order, as the bars draw them ("w2" before "w10"; walkthrough 104)
    return table.iloc[natural_positions(np.asarray([str(w) for w in workers], dtype=object))].reset_index(drop=True)


def worker_importance(model, data: Any, subset: TaskSubset | np.ndarray | None = None,
                       max_tasks: int | None = None, seed: int = 0, runs: Sequence[int] | None = None,
                       batch_size: int | None = None,
                      progress: Callable[[str, int, int], None] | None = None) -> ImportanceResult:
    """Importance of every worker on ``selected``, ``rest`` and ``all`` tasks (module docstring).

    subset: a :class:`TaskSubset` (see :func:`select_tasks`), an (n,) bool array (rest = the other tasks)
    or None (only ``all``). max_tasks: estimate each of the three means on at most this many randomly
    chosen tasks (seeded) instead of all of them. runs: which runs (default: the usable ones, as the
    consensus).
    """
    started = time.perf_counter()
    data = prepare(model, data)
    n = data.n_tasks
    if subset is not None and not isinstance(subset, TaskSubset):
        selected = np.asarray(subset, dtype=bool)
        if selected.shape != (n,):
            raise ValueError(f"subset must be a boolean array of shape ({n},), got {selected.shape}")
        subset = TaskSubset(selected, np.ones(n, dtype=bool), "chosen tasks")
    parts = {"all": np.arange(n)}
    if subset is not None:
        parts = {"selected": np.nonzero(subset.selected)[0], "rest": np.nonzero(subset.rest)[0], **parts}
    rng = np.random.default_rng(seed)
    sampled = False
    if max_tasks is not None:
        for name, pos in parts.items():
            if len(pos) > max_tasks:
                parts[name] = np.sort(rng.choice(pos, size=int(max_tasks), replace=False))
                sampled = True
    union = np.unique(np.concatenate(list(parts.values())))
    drops = leave_one_out_drops(model, data, positions=union, runs=runs, batch_size=batch_size, progress=progress)
    frames = []
    workers = list(data.workers)
    for name in [s for s in SUBSETS if s in parts]:
        rows = np.searchsorted(union, parts[name])
        frames.append(_summarise(workers, name, drops, rows))
    table = pd.concat(frames, ignore_index=True)
    notes = []
    if subset is not None and not subset.selected.any():
        notes.append("the selected subset is empty")
    if sampled:
        notes.append(f"importance estimated on at most {max_tasks} randomly chosen tasks per subset")
    return ImportanceResult(table=table, description=subset.description if subset is not None else "all tasks",
                            seconds=time.perf_counter() - started, sampled=sampled, notes=notes)
