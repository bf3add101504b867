"""Per-layer, per-class mutual information between workers (paper §5.2 / App. L, Table 10, Fig. 13).

For every layer output of a fitted DEEM, input first and the iRBM's input last, each worker's output
is reduced to its argmax class (a discrete variable, as in the paper). Tasks are grouped by a class
(gold label when given, otherwise DEEM's own prediction) and, within each group, the d x d matrix of
mutual information between every pair of workers is computed in nats, exactly as
``sklearn.metrics.mutual_info_score`` computes it from the pair's contingency table (natural log,
empirical co-occurrence counts).

Missing annotations
-------------------
A worker that did not answer a task has no output on any layer (the network keeps missing workers
missing up to the iRBM). The MI of a pair ``(i, j)`` is computed **over the tasks where both workers
answered** (pairwise-complete observations); both marginals come from those common tasks, so the value
equals ``mutual_info_score`` on that subset. A pair with fewer than ``min_common`` common tasks in a
class is *skipped*: its entry is NaN, it is counted in ``skipped_pairs`` and left out of the summary.
On dense data nothing is skipped. Because the missingness pattern is the same on every layer, the
values of one class are comparable across layers even on sparse data.

Vectorisation and memory
------------------------
Contingency tables of all pairs at once: with ``Z`` the (tasks x d*K) sparse one-hot matrix of the argmax
outputs of the tasks of class ``c`` (one entry per answer), ``Z.T @ Z`` is the (d*K, d*K) matrix whose
(i, j) block is the K x K contingency table of workers i and j over their common tasks: one sparse
product per class and layer (:func:`deem_core.data.pairs.pair_table`; dense chunks of tasks when the
data are dense) replaces d^2 / 2 calls to ``mutual_info_score``, and the MI is summed over its nonzero
cells only (:func:`pair_mutual_information`). Its cost grows with the pairs of answers
that share a task, never with tasks x workers; the layer outputs are kept per answer ((L+1, answers) int16),
each task evaluated on its own answers in bounded batches. The result holds (L+1) x C tables of d x d: beyond
:data:`MI_MAX_BYTES` the workers with the most answers are kept (``max_workers``), and a note says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from deem_core.data.annotations import AnnotationSet
from deem_core.data.pairs import pair_table
from deem_core.data.text import natural_positions
from deem_core.analysis.diagnostics._slots import layer_outputs

__all__ = [
    "MI_MAX_BYTES", "MI_MAX_NAME_CHARS", "MI_MAX_ROWS", "MutualInformationResult", "answer_contingency", "contingency_tables", "layer_argmax_codes",
    "layer_names", "pair_mutual_information",
    "mutual_information_from_counts", "mutual_information_matrix", "per_layer_mutual_information",
]

#: default minimum number of tasks two workers must share (within one class) for their MI to be reported
DEFAULT_MIN_COMMON = 10
#: memory the per-layer MI tables (and one contingency table) may take; more workers than fit are cut to the
#: most active ones
MI_MAX_BYTES = 512 << 20
#: the most rows of the all-pairs table (``long_frame``: the CSV written and downloaded); ~60 MB of CSV
MI_MAX_ROWS = 500_000
#: the most characters of worker and class names the all-pairs table may repeat (two names a row): the row cap alone
#: let 150 workers of 10,000-character names make a 1.39 GB CSV and 8.5-9.5 GB of server memory (attack round 46)
MI_MAX_NAME_CHARS = 64_000_000


def layer_names(n_layers: int) -> list[str]:
    """Display names of the ``n_layers + 1`` layer outputs: input first, iRBM input last."""
    if n_layers == 0:
        return ["Layer 0 (the answers, straight into the iRBM)"]  # ("input = iRBM input" read as jargon; walk 31)
    # (layer 0 as the axes name it, "0: answers": it read "input" beside them; walkthrough 112)
    names = ["Layer 0 (the answers)"] + [f"Layer {i}" for i in range(1, n_layers)]
    return names + [f"Layer {n_layers} (iRBM input)"]


def _one_hot(rows: np.ndarray, workers: np.ndarray, values: np.ndarray, n_rows: int, d: int, k: int) -> sp.csr_matrix:
    """(n_rows, d*K) one-hot matrix of answers ``(row, worker, value)``: column ``worker * K + value``."""
    return sp.csr_matrix((np.ones(len(rows)), (np.asarray(rows), np.asarray(workers) * k + np.asarray(values))),
                         shape=(int(n_rows), d * k))


def answer_contingency(rows: np.ndarray, workers: np.ndarray, values: np.ndarray, n_rows: int, n_workers: int,
                       n_values: int, chunk_size: int | None = None) -> np.ndarray:
    """Contingency tables of every pair of workers from answers ``(row, worker, value)`` (one per answer, at
    most one per (row, worker)): (d, d, K, K) int64, ``[i, j, l, m]`` = rows where worker i gave l and j gave m.
    chunk_size: rows per dense chunk when the dense path is taken (default: by memory)."""
    d, k = int(n_workers), int(n_values)
    total = np.rint(pair_table(_one_hot(rows, workers, values, n_rows, d, k), chunk_rows=chunk_size)).astype(np.int64)
    return total.reshape(d, k, d, k).transpose(0, 2, 1, 3)


def contingency_tables(codes: np.ndarray, n_values: int, chunk_size: int | None = None) -> np.ndarray:
    """Contingency tables of every pair of columns of a code matrix over their jointly observed rows.

    codes: (n, d) int, values in ``0..n_values-1``, ``-1`` = missing.
    Returns (d, d, K, K) int64 with ``[i, j, l, m]`` = number of rows where column i is l and column j is m.
    """
    codes = np.asarray(codes)
    rows, cols = np.nonzero(codes >= 0)
    return answer_contingency(rows, cols, codes[rows, cols], codes.shape[0], codes.shape[1], n_values, chunk_size)


def mutual_information_from_counts(counts: np.ndarray, min_common: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """MI (nats) of every pair from its contingency table, as ``sklearn.metrics.mutual_info_score``.

    counts: (..., K, K) int contingency tables. Returns ``mi`` (...) float64, NaN where the table holds
    fewer than ``min_common`` observations, and ``n_common`` (...) int64 (the table totals).
    """
    counts = np.asarray(counts, dtype=np.float64)
    n_common = counts.sum(axis=(-1, -2))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = counts / n_common[..., None, None]
        pa = p.sum(axis=-1, keepdims=True)
        pb = p.sum(axis=-2, keepdims=True)
        terms = np.where(p > 0, p * (np.log(p) - np.log(pa) - np.log(pb)), 0.0)
    mi = terms.sum(axis=(-1, -2))
    mi = np.maximum(mi, 0.0)  # sklearn clips tiny negative rounding errors the same way
    mi[n_common < max(1, min_common)] = np.nan
    return mi, n_common.astype(np.int64)


def pair_mutual_information(rows: np.ndarray, workers: np.ndarray, values: np.ndarray, n_rows: int, n_workers: int,
                            n_values: int, min_common: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """MI (nats) and common rows of every pair of workers from answers ``(row, worker, value)``: what
    ``mutual_information_from_counts(answer_contingency(...), min_common)`` returns, from the nonzero cells of the
    contingency tables only. A pair's MI is ``sum over its cells of c/n log(c n / (a b))`` (``c`` the cell, ``n``
    the pair's common rows, ``a``, ``b`` the cell's row and column totals), so the cost follows the cells that
    occur, not d^2 x K^2: with many classes most of every K x K table is zero (300 classes and 6 workers took
    12 s per layer as dense tables, d^2 K^3 in all). Returns ``(mi (d, d), n_common (d, d) int64)``."""
    d, k = int(n_workers), int(n_values)
    table = pair_table(_one_hot(rows, workers, values, n_rows, d, k), to_dense=False)
    if sp.issparse(table):
        coo = table.tocoo()
        left, right, count = coo.row.astype(np.int64), coo.col.astype(np.int64), np.rint(coo.data)
    else:  # dense data: the BLAS path returned the whole (dK, dK) table
        left, right = np.nonzero(table)
        count = np.rint(table[left, right])
    cell = count > 0
    left, right, count = left[cell], right[cell], count[cell]
    i, j = left // k, right // k
    pair = i * d + j
    n_common = np.bincount(pair, weights=count, minlength=d * d)
    row_total = np.bincount(left * d + j, weights=count, minlength=d * k * d)  # [(i, l), j]: sum over m
    column_total = np.bincount(i * (d * k) + right, weights=count, minlength=d * d * k)  # [i, (j, m)]: sum over l
    n = n_common[pair]
    terms = count / n * (np.log(count) + np.log(n) - np.log(row_total[left * d + j])
                         - np.log(column_total[i * (d * k) + right]))
    mi = np.maximum(np.bincount(pair, weights=terms, minlength=d * d).reshape(d, d), 0.0)  # as sklearn clips
    n_common = np.rint(n_common).astype(np.int64).reshape(d, d)
    mi[n_common < max(1, min_common)] = np.nan
    return mi, n_common


def mutual_information_matrix(codes: np.ndarray, n_values: int, min_common: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """d x d MI matrix of the columns of ``codes`` (n, d) (-1 = missing): ``(mi (d, d), n_common (d, d))``."""
    return mutual_information_from_counts(contingency_tables(codes, n_values), min_common)


@torch.no_grad()
def layer_argmax_codes(network, data: AnnotationSet, run: int = 0, batch_size: int | None = None) -> np.ndarray:
    """Argmax class of every answer's worker at every layer output of one run.

    Returns (n_layers + 1, n_answers) int16 in the set's answer (CSR) order: input first, iRBM input last.
    Hidden-unit/class order does not matter here: layer outputs are indexed by the workers' own classes. Each
    task is evaluated on its own answers (:func:`deem_core.analysis.diagnostics._slots.layer_outputs`);
    ``batch_size`` caps the tasks per batch.
    """
    out = np.full((network.n_layers + 1, data.n_answers), -1, dtype=np.int16)
    for answers, outputs, real in layer_outputs(network, data, batch_size):
        for layer, value in enumerate(outputs):
            out[layer, answers] = value[run].argmax(dim=-1)[real].cpu().numpy()
    return out


def _mi_workers(data: AnnotationSet, n_outputs: int, max_workers: int | None) -> tuple[np.ndarray, str | None]:
    """Worker codes the MI is computed for: all of them, or the most active ones that fit in MI_MAX_BYTES."""
    from deem_core.analysis.agreement import most_active_workers  # noqa: PLC0415

    d, k = data.n_workers, data.n_classes
    # float64 per worker pair: the MI tables (L+1 layers x K classes) and n_common (K), and while one
    # contingency table is turned into MI, about 7 arrays of K x K (counts, probabilities, logs, terms)
    per_pair = 8 * ((n_outputs + 1) * k + 7 * k * k)
    fits = int(np.sqrt(MI_MAX_BYTES / per_pair))
    limit = fits if max_workers is None else min(int(max_workers), fits)
    if d <= limit:
        return np.arange(d), None
    keep = most_active_workers(data, limit)
    return keep, (f"mutual information computed for the {limit:,} workers with the most answers (of {d:,}): the "
                  f"tables of every pair would need {per_pair * d * d / (1 << 30):.1f} GiB")


@dataclass
class MutualInformationResult:
    """Per-layer, per-class MI matrices of a fitted model.

    mi: (n_layers + 1, C, d, d) float64 nats, NaN for skipped pairs and empty classes (diagonal = entropy
    of the worker's output over the tasks it answered; excluded from every summary).
    n_common: (C, d, d) int64 tasks of the class where both workers answered (the same on every layer).
    classes: the C class values (original labels) the tasks were grouped by; class_counts: (C,) tasks.
    """

    mi: np.ndarray
    n_common: np.ndarray
    classes: list
    class_counts: np.ndarray
    workers: list
    layers: list[str]
    class_source: str
    min_common: int
    run: int
    notes: list[str] = field(default_factory=list)

    @property
    def skipped_pairs(self) -> int:
        """Worker pairs (unordered, i < j) over all non-empty classes with fewer than ``min_common`` common tasks."""
        d = self.n_common.shape[-1]
        upper = np.triu(np.ones((d, d), dtype=bool), 1)
        present = self.class_counts > 0
        return int(((self.n_common[present] < self.min_common) & upper).sum())

    def median_common(self, class_index: int) -> float:
        """The median of the common tasks of the pairs (i < j) with a value in class ``class_index`` (0.0 if none), as
        it is: an even count's median may end in .5 (367.5 was said as 367; walkthrough 127)."""
        common = self.n_common[class_index][np.triu_indices(self.n_common.shape[-1], 1)]
        common = common[common >= self.min_common]
        return float(np.median(common)) if len(common) else 0.0

    def off_diagonal(self) -> np.ndarray:
        """``mi`` with the diagonal set to NaN: (L+1, C, d, d)."""
        out = self.mi.copy()
        d = out.shape[-1]
        out[..., np.arange(d), np.arange(d)] = np.nan
        return out

    def per_class_summary(self) -> pd.DataFrame:
        """One row per (layer, class): max off-diagonal MI, Frobenius norm of the off-diagonal matrix
        (both triangles, skipped pairs left out), its root mean square over the pairs with a value, pairs used."""
        off = self.off_diagonal()
        rows = []
        for layer_index, layer in enumerate(self.layers):
            for c, value in enumerate(self.classes):
                block = off[layer_index, c]
                valid = np.isfinite(block)
                if not valid.any():
                    continue
                rows.append({"layer": layer_index, "layer_name": layer, "class": value,
                             "max_mi": float(np.nanmax(block)),
                             "frobenius": float(np.sqrt(np.nansum(block ** 2))),
                             "rms_mi": float(np.sqrt(np.nansum(block ** 2) / valid.sum())),
                             "pairs": int(valid.sum() // 2), "tasks": int(self.class_counts[c])})
        return pd.DataFrame(rows, columns=["layer", "layer_name", "class", "max_mi", "frobenius", "rms_mi", "pairs",
                                           "tasks"])

    def summary(self) -> pd.DataFrame:
        """The paper's Table 10: per layer, mean and std (ddof=0) over classes of max MI and Frobenius norm."""
        per_class = self.per_class_summary()
        rows = []
        for layer_index, layer in enumerate(self.layers):
            part = per_class[per_class["layer"] == layer_index]
            rows.append({
                "layer": layer_index, "layer_name": layer,
                "max_mi_mean": float(part["max_mi"].mean()) if len(part) else np.nan,
                "max_mi_std": float(part["max_mi"].std(ddof=0)) if len(part) else np.nan,
                "frobenius_mean": float(part["frobenius"].mean()) if len(part) else np.nan,
                "frobenius_std": float(part["frobenius"].std(ddof=0)) if len(part) else np.nan,
                # per pair: the Frobenius norm grows with the pairs that have a value, which in sparse answers are
                # fewer at the answers than in the layers' outputs
                "rms_mi_mean": float(part["rms_mi"].mean()) if len(part) else np.nan,
                "n_classes": int(len(part)), "class_source": self.class_source,
            })
        return pd.DataFrame(rows)

    def long_frame(self, include_diagonal: bool = False, max_rows: int | None = None) -> pd.DataFrame:
        """``layer, class, worker_a, worker_b, mi, n_common, class_source``: every ordered pair a != b
        (both orders, as in the heatmaps) that has a value (enough tasks in common) in some layer and class, with
        its row in every non-empty class (``mi`` NaN where that class has too few). Pairs without any value are
        left out: on a platform's set (3,896 workers) the pairs sharing no task were 99.9% of 5.6 M rows, a 216 MB
        file of empty values (walkthrough 45), and 1,234 workers each pair sharing one to nine tasks gave 21.3 M
        rows of which none held a value (782 MB, 6.6 GB of memory; attack round 23).

        At most ``max_rows`` rows (default :data:`MI_MAX_ROWS`) and :data:`MI_MAX_NAME_CHARS` characters of names:
        past either the pairs with the most tasks in common are kept, and ``attrs["note"]`` says how many were left
        out (the heatmaps keep every pair)."""
        a_idx, b_idx, classes, note = self._table_pairs(include_diagonal, max_rows)
        # the pairs in the workers' natural order, as the heatmaps draw them (text order put w10 before w2)
        rank = np.empty(len(self.workers), dtype=np.int64)
        rank[natural_positions(self.workers)] = np.arange(len(self.workers))
        order = np.lexsort((rank[b_idx], rank[a_idx]))
        a_idx, b_idx = a_idx[order], b_idx[order]
        n_layers = self.mi.shape[0]
        workers = np.asarray(self.workers, dtype=object)
        frames = []
        for layer in range(n_layers):
            for c in classes:
                frames.append(pd.DataFrame({
                    "layer": layer, "class": [self.classes[c]] * len(a_idx),
                    "worker_a": workers[a_idx], "worker_b": workers[b_idx],
                    "mi": self.mi[layer, c][a_idx, b_idx], "n_common": np.asarray(self.n_common[c])[a_idx, b_idx],
                }))
        columns = ["layer", "class", "worker_a", "worker_b", "mi", "n_common"]
        out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
        out["class_source"] = self.class_source
        if note:
            out.attrs["note"] = note
        return out

    def table_note(self, max_rows: int | None = None) -> str | None:
        """What :meth:`long_frame` leaves out past ``max_rows`` (None: nothing), without building it."""
        return self._table_pairs(False, max_rows)[3]

    def _table_pairs(self, include_diagonal: bool, max_rows: int | None
                     ) -> tuple[np.ndarray, np.ndarray, list[int], str | None]:
        """The (a, b) pairs of :meth:`long_frame`, its non-empty classes and the note on the pairs left out."""
        max_rows = MI_MAX_ROWS if max_rows is None else int(max_rows)
        n_layers, n_classes, d, _ = self.mi.shape
        keep = np.ones((d, d), dtype=bool) if include_diagonal else ~np.eye(d, dtype=bool)
        keep &= ~np.isnan(self.mi).all(axis=(0, 1))  # a value in some layer and class
        classes = [c for c in range(n_classes) if self.class_counts[c] != 0]
        per_pair = max(1, n_layers * len(classes))
        a_idx, b_idx = np.nonzero(keep)
        note = None
        # characters of names a pair's rows repeat: both workers' on every row, and each class's once per layer
        name_chars = np.fromiter((len(str(w)) for w in self.workers), dtype=np.int64, count=d)
        class_chars = n_layers * sum(len(str(self.classes[c])) for c in classes)
        longest = 2 * int(name_chars.max(initial=0)) * per_pair + class_chars
        # (the per-pair count only where a bound says the characters may pass their cap)
        pair_chars = ((name_chars[a_idx] + name_chars[b_idx]) * per_pair + class_chars
                      if len(a_idx) * longest > MI_MAX_NAME_CHARS else None)
        room = max_rows // per_pair
        if len(a_idx) > room or (pair_chars is not None and int(pair_chars.sum()) > MI_MAX_NAME_CHARS):
            # the pairs with the most tasks in common, as many as the rows and the names' characters allow
            order = np.argsort(-np.asarray(self.n_common).sum(axis=0)[a_idx, b_idx], kind="stable")
            if pair_chars is not None:
                room = min(room, int(np.searchsorted(np.cumsum(pair_chars[order]), MI_MAX_NAME_CHARS, side="right")))
            picked = np.zeros(len(a_idx), dtype=bool)
            picked[order[:room]] = True
            note = (f"the all-pairs table holds the {room:,} ordered worker pairs with the most tasks in common: "
                    f"{len(a_idx) - room:,} more pairs with a value are left out of it ({max_rows:,} rows and "
                    f"{MI_MAX_NAME_CHARS // 1_000_000:,} million characters of names at most), not of the heatmaps")
            a_idx, b_idx = a_idx[picked], b_idx[picked]
        return a_idx, b_idx, classes, note

    def matrix(self, layer: int, class_value: Any) -> pd.DataFrame:
        """One d x d MI matrix as a DataFrame (rows/columns = workers)."""
        c = self.classes.index(class_value)
        return pd.DataFrame(self.mi[layer, c], index=pd.Index(self.workers, name="worker_a"),
                            columns=pd.Index(self.workers, name="worker_b"))


def per_layer_mutual_information(model, data, gold: Any = None, run: int | None = None,
                                 min_common: int = DEFAULT_MIN_COMMON,
                                 max_workers: int | None = None) -> MutualInformationResult:
    """MI between workers' argmax outputs, per layer (input .. iRBM input) and per class.

    model: a fitted :class:`deem_core.DEEM`; data: its annotations (long DataFrame or AnnotationSet with
    the model's workers and classes); gold: optional task -> label (Series or ``task,truth`` frame):
    tasks are grouped by gold class when given (tasks without gold are left out), else by DEEM's
    prediction. run: which of the model's runs (default: the first that did not diverge). max_workers:
    compute the tables for at most that many workers (those with the most answers; also applied when the
    tables of every worker would exceed :data:`MI_MAX_BYTES`).
    """
    from deem_core.analysis.diagnostics._common import class_groups, prepare, usable_runs  # noqa: PLC0415

    data = prepare(model, data)
    run = usable_runs(model)[0] if run is None else int(run)
    groups, source, notes = class_groups(model, data, gold)
    codes = layer_argmax_codes(model.network_, data, run=run)  # (L+1, answers)
    n_out = codes.shape[0]
    k = data.n_classes
    keep, cut_note = _mi_workers(data, n_out, max_workers)
    if cut_note:
        notes.append(cut_note)
    d = len(keep)
    new_code = np.full(data.n_workers, -1, dtype=np.int64)
    new_code[keep] = np.arange(d)
    answer_worker = new_code[data.worker_codes]
    answer_group = groups[data.task_codes]
    mi = np.full((n_out, k, d, d), np.nan)
    n_common = np.zeros((k, d, d), dtype=np.int64)
    counts = np.bincount(groups[groups >= 0], minlength=k)
    for c in range(k):
        if counts[c] == 0:
            continue
        chosen = (answer_group == c) & (answer_worker >= 0)
        rows, workers = data.task_codes[chosen], answer_worker[chosen]
        for layer in range(n_out):
            mi[layer, c], n_common[c] = pair_mutual_information(rows, workers, codes[layer, chosen], data.n_tasks, d,
                                                                k, min_common)
    result = MutualInformationResult(mi=mi, n_common=n_common, classes=list(data.classes), class_counts=counts,
                                     workers=list(data.workers[keep]), layers=layer_names(model.network_.n_layers),
                                     class_source=source, min_common=int(min_common), run=run, notes=notes)
    result.notes.append("MI of a pair is computed over the tasks of the class where both workers answered "
                        f"(pairwise-complete); pairs with fewer than {min_common} common tasks are skipped")
    if n_out > 1:
        # a layer's mutual information is that of the labels it outputs (each answer's largest entry): a layer that
        # changes no answer's label shows the input's figures, which read as a bug on the page (walkthrough 19)
        changed = [float((codes[layer] != codes[0]).mean()) if codes.shape[1] else 0.0 for layer in range(1, n_out)]
        shares = ", ".join(f"{name.split(' (')[0].lower()} {share:.1%}" for name, share in zip(result.layers[1:],
                                                                                                  changed))
        result.notes.append(f"answers whose label a layer changes (the largest entry of its output against the "
                            f"answer): {shares}" + ("; a layer that changes none has the input's mutual information "
                                                    "exactly (it may still weigh the answers differently)"
                                                    if min(changed) == 0.0 else ""))
    if result.skipped_pairs:
        d = result.n_common.shape[-1]
        looked = int((result.class_counts > 0).sum()) * d * (d - 1) // 2
        # (4,900 skipped read as a part where it was every pair; walkthrough 76)
        every = " (all of them)" if result.skipped_pairs == looked else f" of {looked:,}"
        result.notes.append(f"skipped {result.skipped_pairs:,}{every} worker pair x class combinations with fewer than "
                            f"{min_common} common tasks")
    return result
