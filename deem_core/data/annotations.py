"""The annotations as the engine sees them: one entry per answer, in CSR order by task, plus vocabularies.

Input is crowd-kit's long format (one row per answer: ``task, worker, label``). ``AnnotationSet``
encodes it once and never builds a dense tasks x workers table: crowd data are >99% missing (a million
tasks with 3-10 answers each, thousands of workers), so every statistic, every aggregator and the model
work on the answers themselves.

Vocabularies
------------
``tasks`` / ``workers`` / ``classes``: pandas Indexes holding the *original* identifiers and label values
(sorted when the values can be sorted, in order of first appearance otherwise), so every output can be
mapped back to what the user gave us. A code is a position in one of these Indexes.

CSR layout (the contract every consumer relies on)
-------------------------------------------------
With ``n = n_tasks``, ``d = n_workers``, ``K = n_classes`` and ``N = n_answers``:

* ``task_codes``   (N,) int64, values in ``0..n-1``, non-decreasing;
* ``worker_codes`` (N,) int64, values in ``0..d-1``, strictly increasing *within* a task (one answer per
  (task, worker) pair: duplicates and conflicts are resolved while reading);
* ``label_codes``  (N,) int64, values in ``0..K-1`` (a missing answer is simply absent, never a class);
* ``task_offsets`` (n + 1,) int64: the answers of task ``t`` are positions ``task_offsets[t] :
  task_offsets[t + 1]``; ``task_offsets[0] == 0``, ``task_offsets[-1] == N``, and
  ``task_codes == np.repeat(np.arange(n), np.diff(task_offsets))``. A task may have no answer (tasks kept
  by :meth:`AnnotationSet.encode_like` whose workers are all unknown); a worker may have none too;
* ``soft_labels`` (optional) (N, K) float32 probabilities (App. G.6 soft labels), each row summing to 1,
  aligned with the answers; ``label_codes`` is then their argmax (or the label given beside them).

So the answers are sorted by task, then by worker: the same order as ``np.nonzero`` of the dense table
would give. All arrays are C-contiguous and owned by the set; treat them as read-only.

Dense access
------------
:meth:`AnnotationSet.dense_labels` / :meth:`AnnotationSet.dense_soft` build the old (tasks x workers)
tables for code that truly needs them on small data, after a size check that raises :class:`DataError`
*before* allocating (default limit :data:`DENSE_LIMIT_BYTES`); :meth:`AnnotationSet.iter_dense` yields
them in bounded chunks of tasks.

``warnings``: what was fixed silently (dropped empty labels, repeated answers, resolved conflicts),
with counts. Readers for files (long, wide, one file per worker) live in :mod:`deem_core.data.readers`;
this module only validates and encodes a DataFrame.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pa_compute

from deem_core.data.text import ASCII_CONTROLS_RE2, INVISIBLE_RE2, counted, is_are, is_invisible, middle_cut, quoted_list

__all__ = [
    "AnnotationSet", "BeyondLimitError", "DENSE_CHUNK_BYTES", "DENSE_LIMIT_BYTES", "DataError", "as_annotation_set",
    "majority_vote_codes", "ReadOutgrown", "sorted_index",
]

CONFLICT_POLICIES = ("error", "first", "last")

#: largest dense table :meth:`AnnotationSet.dense_labels` / ``dense_soft`` build without being asked for more
DENSE_LIMIT_BYTES = 1 << 30
#: size of one chunk of :meth:`AnnotationSet.iter_dense` (labels and soft labels together)
DENSE_CHUNK_BYTES = 64 << 20


class DataError(ValueError):
    """A problem with the user's annotations, phrased for the user (names the file/column/row)."""

    def anew(self) -> "DataError":
        """The same error, of the same type, without a traceback: kept or raised again, it holds none of the frames
        of the code that raised it (a failed read's frames hold what it read); its plain attributes kept (``finding``,
        ``spelled_alike``: the command line's --merge-spellings reads on past a conflict they mark; walkthrough 117)."""
        error = type(self)(*self.args)
        error.__dict__.update({k: v for k, v in self.__dict__.items() if isinstance(v, (str, bool, int, float))})
        return error


class BeyondLimitError(DataError):
    """The data passes one of the reader's limits: no other column mapping or format reads it (a preview raises it
    where it returns a layout problem a mapping can mend)."""


class ReadOutgrown(BeyondLimitError):
    """A read under provisional limits (:attr:`deem_core.data.formats.limits.Limits.provisional`) went past their bytes
    or seconds: the file is to be read again under the full ones."""


def _sort_order(values: Any) -> np.ndarray | None:
    """The permutation that sorts distinct values, or None when they cannot be compared with each other."""
    array = np.asarray(values)
    if array.dtype.kind in "biuf":
        return np.argsort(array, kind="stable")
    if pd.api.types.infer_dtype(array, skipna=False) == "string":
        try:  # Arrow compares UTF-8 bytes: the order of code points, as Python compares str
            return np.asarray(pa_compute.sort_indices(pa.array(array, type=pa.string())), dtype=np.int64)
        except (pa.ArrowException, UnicodeEncodeError):  # e.g. lone surrogates: Python's comparison below
            pass
    try:
        return np.asarray(sorted(range(len(array)), key=array.__getitem__), dtype=np.int64)
    except TypeError:
        return None


def _sort_values(values: Any) -> list | np.ndarray:
    """Unique values sorted when they are mutually comparable, else in the given (first-seen) order."""
    array = np.asarray(values)
    order = _sort_order(array)
    if order is None:
        return list(array)
    return array[order] if array.dtype.kind in "biuf" else list(array[order])


def sorted_index(values: Iterable[Hashable], name: str) -> pd.Index:
    """Unique values as an Index: sorted when the values are mutually comparable, else first-seen order."""
    unique = pd.unique(pd.Series(values))
    return pd.Index(_sort_values(unique), name=name)


#: labels a conflicting (task, worker) pair's error quotes (the rest counted)
CONFLICT_LABELS_QUOTED = 5


def _show(value: Any) -> str:
    """repr of a value as the user wrote it (numpy scalars shown as plain Python values)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _show_short(value: Any, chars: int = 40) -> str:
    """:func:`_show`, a text longer than ``chars`` cut around "…" (:func:`~deem_core.data.text.middle_cut`): a warning quoting four free-text labels of
    150-400 characters ran to 12 lines (walkthrough 23). Its head and its tail: ids that differ at their end (URLs
    of images) read alike cut after their head, and a conflict's task could not be found in its file (walkthrough
    105)."""
    value = value.item() if isinstance(value, np.generic) else value
    if not (isinstance(value, str) and len(value) > chars):
        return repr(value)
    return repr(middle_cut(value, chars))


def _check_mixed_types(uniques: Any, column: str, source: str) -> None:
    """Refuse values that differ in type but print the same (``1`` and ``"1"``): they would look like one
    label (or task, or worker) in every output yet be two. ``uniques``: the column's distinct values."""
    if getattr(uniques, "dtype", None) != object or len(uniques) < 2:
        return
    if len({type(v) for v in uniques}) < 2:
        return
    seen: dict[str, Any] = {}
    for value in uniques:
        text = str(value)
        if text in seen and seen[text] is not value and type(seen[text]) is not type(value):
            raise DataError(
                f"{source}: column '{column}' mixes value types that print the same: "
                f"{seen[text]!r} ({type(seen[text]).__name__}) and {value!r} ({type(value).__name__}); "
                f"convert the column to one type first"
            )
        seen[text] = value


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / (1 << 30):.1f} GiB" if n_bytes >= (1 << 30) else f"{n_bytes / (1 << 20):.0f} MiB"


def _share(value: float) -> str:
    return f"{value:.2%}" if value >= 1e-3 else f"{value:.1e}"


def majority_vote_codes(votes: np.ndarray) -> np.ndarray:
    """Majority vote per task from per-task class votes: (n,) int64, ties towards the smallest code, -1 for
    a task without votes. votes: (n, K) counts or summed soft labels (:meth:`AnnotationSet.class_votes`)."""
    votes = np.asarray(votes)
    winner = votes.argmax(axis=1).astype(np.int64)
    winner[votes.sum(axis=1) <= 0] = -1
    return winner


def dense_table_is_small(data: "AnnotationSet") -> bool:
    """Whether a dense (tasks x classes) float64 table of ``data`` is at most 8 cells per answer (or 1 Mi cells):
    then it costs about what the answers cost, else it is built from the (task, class) pairs that occur."""
    return data.n_tasks * data.n_classes <= max(8 * data.n_answers, 1 << 20)


def counting_is_small(n_keys: int, size: int) -> bool:
    """Whether counting ``n_keys`` integer keys in [0, ``size``) into a table of ``size`` cells costs no more than
    sorting them does (at most 2 cells per key, or 1 Mi cells): then :func:`key_counts` counts, else it sorts."""
    return size <= max(2 * n_keys, 1 << 20)


def key_counts(keys: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of ``keys`` (integers in [0, ``size``)), in order, and how often each occurs: as
    ``np.unique(keys, return_counts=True)``, by counting where :func:`counting_is_small` (the sorts were 1.0 of the
    2.2 s of the Data page's check against the others on 4.2 million answers; the count is linear)."""
    if counting_is_small(len(keys), size):
        table = np.bincount(keys, minlength=size)
        found = np.flatnonzero(table)
        return found, table[found]
    return np.unique(keys, return_counts=True)


def counts_at(keys: np.ndarray, size: int) -> np.ndarray:
    """Per key of ``keys`` (integers in [0, ``size``)): how many keys equal it."""
    if counting_is_small(len(keys), size):
        return np.bincount(keys, minlength=size)[keys]
    found, counts = np.unique(keys, return_counts=True)
    return counts[np.searchsorted(found, keys)]


def task_class_counts(data: "AnnotationSet") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(task, class, count) of every (task, class) pair that occurs among the hard answers, by task then class."""
    k = max(1, data.n_classes)
    keys, counts = key_counts(data.task_codes.astype(np.int64) * k + data.label_codes, data.n_tasks * k)
    return keys // k, keys % k, counts


def _sparse_vote(data: "AnnotationSet") -> np.ndarray:
    """:meth:`AnnotationSet.majority_vote` from the (task, class) pairs that occur (hard labels)."""
    out = np.full(data.n_tasks, -1, dtype=np.int64)
    if not data.n_answers:
        return out
    task, label, counts = task_class_counts(data)
    order = np.lexsort((label, -counts, task))  # per task: the most votes first, then the smallest class
    task, label = task[order], label[order]
    first = np.ones(len(task), dtype=bool)
    first[1:] = task[1:] != task[:-1]
    out[task[first]] = label[first]
    return out


@dataclass(eq=False)
class AnnotationSet:
    """Encoded annotations in CSR order by task; the module docstring defines every field precisely.

    Build one with :meth:`from_long` (validates a long DataFrame), :meth:`from_codes` (already-coded
    answers in any order) or :meth:`from_dense` (a (tasks x workers) code matrix, ``-1`` = missing).
    """

    tasks: pd.Index
    workers: pd.Index
    classes: pd.Index
    task_codes: np.ndarray  # (N,) int64, non-decreasing
    worker_codes: np.ndarray  # (N,) int64, increasing within a task
    label_codes: np.ndarray  # (N,) int64 in 0..K-1
    task_offsets: np.ndarray  # (n_tasks + 1,) int64
    soft_labels: np.ndarray | None = None  # (N, K) float32 or None
    warnings: list[str] = field(default_factory=list)
    source: str = "annotations"
    layout: str = "long"  # the input layout it was read from: long, wide or per_annotator
    _fingerprint: str | None = field(default=None, init=False, repr=False)
    _alike: list[list[int]] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.task_codes = np.ascontiguousarray(self.task_codes, dtype=np.int64)
        self.worker_codes = np.ascontiguousarray(self.worker_codes, dtype=np.int64)
        self.label_codes = np.ascontiguousarray(self.label_codes, dtype=np.int64)
        self.task_offsets = np.ascontiguousarray(self.task_offsets, dtype=np.int64)
        n_answers = len(self.label_codes)
        if not (self.task_codes.shape == self.worker_codes.shape == self.label_codes.shape == (n_answers,)):
            raise ValueError("task_codes, worker_codes and label_codes must be 1-d arrays of one length")
        if self.task_offsets.shape != (len(self.tasks) + 1,) or self.task_offsets[0] != 0 \
                or self.task_offsets[-1] != n_answers or (np.diff(self.task_offsets) < 0).any():
            raise ValueError(f"task_offsets must be ({len(self.tasks) + 1},) non-decreasing from 0 to {n_answers}")
        if n_answers:
            if self.task_codes.min() < 0 or self.task_codes.max() >= len(self.tasks) \
                    or self.worker_codes.min() < 0 or self.worker_codes.max() >= len(self.workers) \
                    or self.label_codes.min() < 0 or self.label_codes.max() >= len(self.classes):
                raise ValueError("a task, worker or label code is out of range")
            expected = np.repeat(np.arange(len(self.tasks), dtype=np.int64), np.diff(self.task_offsets))
            if not np.array_equal(expected, self.task_codes):
                raise ValueError("task_codes do not match task_offsets (answers must be sorted by task)")
            same_task = self.task_codes[1:] == self.task_codes[:-1]
            if (same_task & (self.worker_codes[1:] <= self.worker_codes[:-1])).any():
                raise ValueError("within a task, worker_codes must be strictly increasing (sorted, one answer "
                                 "per worker)")
        if self.soft_labels is not None:
            self.soft_labels = np.ascontiguousarray(self.soft_labels, dtype=np.float32)
            if self.soft_labels.shape != (n_answers, len(self.classes)):
                raise ValueError(f"soft_labels must be ({n_answers}, {len(self.classes)}), "
                                 f"got {self.soft_labels.shape}")

    # ------------------------------------------------------------------ the old dense names
    @property
    def labels(self) -> np.ndarray:
        raise AttributeError("AnnotationSet.labels (the dense tasks x workers table) is gone: use the CSR arrays "
                             "task_codes / worker_codes / label_codes / task_offsets, or dense_labels() on small data")

    @property
    def soft(self) -> np.ndarray:
        raise AttributeError("AnnotationSet.soft (dense tasks x workers x classes) is gone: use soft_labels "
                             "(n_answers, K), or dense_soft() on small data")

    @property
    def mask(self) -> np.ndarray:
        raise AttributeError("AnnotationSet.mask (dense) is gone: every entry of the CSR arrays is an answer")

    # ------------------------------------------------------------------ shape
    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    @property
    def n_workers(self) -> int:
        return len(self.workers)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_answers(self) -> int:
        return int(len(self.label_codes))

    @property
    def n_annotations(self) -> int:
        """The number of answers (the name the dashboard and summary use)."""
        return self.n_answers

    @property
    def density(self) -> float:
        """Fraction of (task, worker) cells that hold an answer."""
        return self.n_answers / max(1, self.n_tasks * self.n_workers)

    @property
    def has_soft(self) -> bool:
        return self.soft_labels is not None

    def answers_per_task(self) -> np.ndarray:
        """(n_tasks,) int64 number of answers of every task."""
        return np.diff(self.task_offsets)

    def answers_per_worker(self) -> np.ndarray:
        """(n_workers,) int64 number of answers of every worker."""
        return np.bincount(self.worker_codes, minlength=self.n_workers).astype(np.int64)

    def answer_weights(self) -> np.ndarray:
        """(N, K) float64 one-hot of the hard labels, or the soft labels: what each answer votes for.
        Use it on moderate N only (N x K floats); :meth:`class_votes` sums it per task without building it."""
        if self.soft_labels is not None:
            return self.soft_labels.astype(np.float64)
        out = np.zeros((self.n_answers, self.n_classes), dtype=np.float64)
        out[np.arange(self.n_answers), self.label_codes] = 1.0
        return out

    def class_votes(self) -> np.ndarray:
        """(n_tasks, K) float64 per-task votes: answers of each class, or summed soft labels."""
        n, k = self.n_tasks, self.n_classes
        if self.soft_labels is None:
            flat = self.task_codes * k + self.label_codes
            return np.bincount(flat, minlength=n * k).astype(np.float64).reshape(n, k)
        votes = np.zeros((n, k), dtype=np.float64)
        for c in range(k):
            votes[:, c] = np.bincount(self.task_codes, weights=self.soft_labels[:, c], minlength=n)
        return votes

    def majority_vote(self) -> np.ndarray:
        """(n_tasks,) class codes of plain majority vote (ties towards the smallest class, -1 without answers).

        Hard labels with many classes are counted per (task, class) pair that occurs, never in a dense (tasks x
        classes) table: 100,000 tasks x 2,000 classes (a 3.8 MB file) took that table alone to 1.5 GB."""
        if self.soft_labels is None and not dense_table_is_small(self):
            return _sparse_vote(self)
        return majority_vote_codes(self.class_votes())

    def _task_class_best(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The (task, class, answers) pairs that occur (:func:`task_class_counts`) and each task's highest count."""
        task, cls, count = task_class_counts(self)
        best = np.zeros(self.n_tasks)
        np.maximum.at(best, task, count)
        return task, cls, count, best

    def tied_tasks(self) -> np.ndarray:
        """(n_tasks,) bool: whether two or more classes share task t's highest count (of its summed soft labels),
        so that majority vote's label there is its tie rule's pick among them."""
        return np.bincount(self.most_voted_pairs()[0], minlength=self.n_tasks) >= 2

    def most_voted_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(task, class) codes of every class at its task's highest count (of its summed soft labels), by task: one
        pair a task, or more on a tie. Counted per (task, class) pair that occurs, as :meth:`majority_vote`."""
        if self.soft_labels is None:
            task, cls, count, best = self._task_class_best()
            at_best = (count >= best[task]) & (best[task] > 0)
            return task[at_best], cls[at_best]
        votes = self.class_votes()
        if not votes.shape[1]:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        best = votes.max(axis=1)
        task, cls = np.nonzero((votes >= best[:, None] - 1e-9) & (best[:, None] > 0))
        return task.astype(np.int64), cls.astype(np.int64)

    def among_most_voted(self, codes: np.ndarray) -> np.ndarray:
        """(n_tasks,) bool: whether class ``codes[t]`` is one of task t's most answered classes (of its summed soft
        labels), so a label on a tie is not read as going against a majority that is not there (walkthrough 45: 2,189
        of 4,322 tasks marked as disagreeing had three answers of three classes). Counted per (task, class) pair
        that occurs, as :meth:`majority_vote`."""
        codes = np.asarray(codes, dtype=np.int64)
        n = self.n_tasks
        if self.soft_labels is None:
            task, cls, count, best = self._task_class_best()
            mine = np.zeros(n)
            hit = cls == codes[task]
            mine[task[hit]] = count[hit]
        else:
            votes = self.class_votes()
            best = votes.max(axis=1) if votes.shape[1] else np.zeros(n)
            valid = (codes >= 0) & (codes < votes.shape[1])
            mine = np.where(valid, votes[np.arange(n), np.clip(codes, 0, max(votes.shape[1] - 1, 0))], -1.0)
        return (codes >= 0) & (best > 0) & (mine >= best - 1e-9)

    def fingerprint(self) -> str:
        """SHA-256 of the encoded content (vocabularies + answers): equal data, equal fingerprint."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            for index in (self.tasks, self.workers, self.classes):
                digest.update(repr(list(index)).encode())
            for array in (self.task_offsets, self.worker_codes, self.label_codes):
                digest.update(array.tobytes())
            if self.soft_labels is not None:
                digest.update(self.soft_labels.tobytes())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    # ------------------------------------------------------------------ dense views (guarded)
    def _positions(self, positions: Any) -> np.ndarray:
        if positions is None:
            return np.arange(self.n_tasks, dtype=np.int64)
        positions = np.asarray(positions)
        if positions.dtype == bool:
            if positions.shape != (self.n_tasks,):
                raise ValueError(f"a boolean task selection must have shape ({self.n_tasks},), got {positions.shape}")
            return np.flatnonzero(positions).astype(np.int64)
        return positions.astype(np.int64, copy=False).reshape(-1)

    def _gather(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Answer indices of the tasks at ``positions`` (in that order) and their new offsets (m + 1,)."""
        starts = self.task_offsets[positions]
        counts = self.task_offsets[positions + 1] - starts
        offsets = np.zeros(len(positions) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        # answer index = start of its task + its rank within the task
        index = np.repeat(starts - offsets[:-1], counts) + np.arange(offsets[-1], dtype=np.int64)
        return index, offsets

    def _check_dense(self, n_bytes: int, shape: str, max_bytes: int | None, purpose: str) -> None:
        limit = DENSE_LIMIT_BYTES if max_bytes is None else int(max_bytes)
        if n_bytes > limit:
            raise DataError(
                f"{self.source}: {purpose} needs a dense table of {shape} ({_gib(n_bytes)}), more than the "
                f"{_gib(limit)} allowed: the data are too sparse or too large for it ({self.n_answers:,} answers, "
                f"density {_share(self.density)}); use a method that works on the answers (mv, ds) or a sample of tasks")

    def dense_labels(self, positions: Any = None, max_bytes: int | None = None,
                     purpose: str = "this computation") -> np.ndarray:
        """(m, n_workers) int64 class codes, ``-1`` = no answer, for the tasks at ``positions`` (default all).

        Raises DataError *before allocating* when the table would exceed ``max_bytes`` (default
        :data:`DENSE_LIMIT_BYTES`); ``purpose`` names what needs it in that message.
        """
        pos = self._positions(positions)
        self._check_dense(len(pos) * self.n_workers * 8, f"{len(pos):,} tasks x {self.n_workers:,} workers",
                          max_bytes, purpose)
        out = np.full((len(pos), self.n_workers), -1, dtype=np.int64)
        if positions is None:
            out[self.task_codes, self.worker_codes] = self.label_codes
        else:
            index, offsets = self._gather(pos)
            rows = np.repeat(np.arange(len(pos)), np.diff(offsets))
            out[rows, self.worker_codes[index]] = self.label_codes[index]
        return out

    def dense_soft(self, positions: Any = None, max_bytes: int | None = None,
                   purpose: str = "this computation") -> np.ndarray | None:
        """(m, n_workers, K) float32 soft labels, zero rows where missing (None without soft labels);
        the same size check as :meth:`dense_labels`."""
        if self.soft_labels is None:
            return None
        pos = self._positions(positions)
        k = self.n_classes
        self._check_dense(len(pos) * self.n_workers * k * 4,
                          f"{len(pos):,} tasks x {self.n_workers:,} workers x {k:,} classes", max_bytes, purpose)
        out = np.zeros((len(pos), self.n_workers, k), dtype=np.float32)
        index, offsets = self._gather(pos)
        rows = np.repeat(np.arange(len(pos)), np.diff(offsets))
        out[rows, self.worker_codes[index]] = self.soft_labels[index]
        return out

    def iter_dense(self, positions: Any = None, batch_size: int | None = None,
                   max_bytes: int = DENSE_CHUNK_BYTES) -> Iterator[tuple[slice, np.ndarray, np.ndarray | None]]:
        """Dense tables of consecutive chunks of tasks: yields ``(rows, labels (B, d), soft (B, d, K) or None)``
        where ``rows`` is the chunk's slice of ``positions`` (default all tasks). ``batch_size`` defaults to
        as many tasks as fit in ``max_bytes``; a chunk is never larger than that."""
        pos = self._positions(positions)
        per_task = self.n_workers * 8 + (self.n_workers * self.n_classes * 4 if self.soft_labels is not None else 0)
        fit = max(1, int(max_bytes) // max(1, per_task))
        size = fit if batch_size is None else max(1, min(int(batch_size), fit))
        limit = max(int(max_bytes), per_task)
        for start in range(0, len(pos), size):
            rows = slice(start, min(start + size, len(pos)))
            chunk = pos[rows]
            yield (rows, self.dense_labels(chunk, max_bytes=limit),
                   self.dense_soft(chunk, max_bytes=limit) if self.soft_labels is not None else None)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_codes(cls, tasks: pd.Index, workers: pd.Index, classes: pd.Index, task_codes: Any,
                   worker_codes: Any, label_codes: Any, soft_labels: Any = None, warnings: list[str] | None = None,
                   source: str = "annotations", layout: str = "long") -> "AnnotationSet":
        """A set from coded answers in any order (sorted here into CSR order). One answer per (task, worker)
        pair: a repeated pair is a ValueError (resolve duplicates first, as :meth:`from_long` does)."""
        t = np.asarray(task_codes, dtype=np.int64).reshape(-1)
        w = np.asarray(worker_codes, dtype=np.int64).reshape(-1)
        y = np.asarray(label_codes, dtype=np.int64).reshape(-1)
        n, d = len(tasks), len(workers)
        if len(t) and (t.min() < 0 or t.max() >= n or w.min() < 0 or w.max() >= d):
            raise ValueError("a task or worker code is out of range")
        key = t * max(d, 1) + w
        order = np.argsort(key, kind="stable")
        key = key[order]
        if len(key) > 1 and (key[1:] == key[:-1]).any():
            raise ValueError("one (task, worker) pair has more than one answer")
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(t, minlength=n), out=offsets[1:])
        soft = None if soft_labels is None else np.asarray(soft_labels, dtype=np.float32)[order]
        return cls(tasks=tasks, workers=workers, classes=classes, task_codes=t[order], worker_codes=w[order],
                   label_codes=y[order], task_offsets=offsets, soft_labels=soft, warnings=list(warnings or []),
                   source=source, layout=layout)

    @classmethod
    def from_dense(cls, labels: Any, soft: Any = None, tasks: Sequence[Hashable] | None = None,
                   workers: Sequence[Hashable] | None = None, classes: Sequence[Hashable] | None = None,
                   source: str = "annotations") -> "AnnotationSet":
        """A set from an (n, d) code matrix (``-1`` = missing) and optional (n, d, K) soft labels; default
        vocabularies are ``0..n-1``, ``0..d-1``, ``0..K-1``."""
        labels = np.asarray(labels)
        if labels.ndim != 2:
            raise ValueError(f"labels must be a 2-d (tasks x workers) code matrix, got shape {labels.shape}")
        n, d = labels.shape
        if classes is None:
            k = int(np.shape(soft)[-1]) if soft is not None else int(max(labels.max(initial=-1) + 1, 1))
            classes = range(k)
        rows, cols = np.nonzero(labels >= 0)
        soft_labels = None if soft is None else np.asarray(soft, dtype=np.float32)[rows, cols]
        return cls.from_codes(
            tasks=pd.Index(list(range(n)) if tasks is None else list(tasks), name="task"),
            workers=pd.Index(list(range(d)) if workers is None else list(workers), name="worker"),
            classes=pd.Index(list(classes), name="label"), task_codes=rows, worker_codes=cols,
            label_codes=labels[rows, cols], soft_labels=soft_labels, source=source)

    @classmethod
    def from_long(
        cls,
        df: pd.DataFrame,
        task: str = "task",
        worker: str = "worker",
        label: str = "label",
        soft_columns: Mapping[Hashable, str] | None = None,
        classes: Sequence[Hashable] | None = None,
        on_conflict: str = "error",
        source: str = "annotations",
    ) -> "AnnotationSet":
        """Validate and encode a long table (one row per answer).

        soft_columns: optional ``{class value: column}`` of per-class probabilities (App. G.6); the hard
        label, if the label column is absent, is their argmax. classes: a fixed class vocabulary (e.g. to
        add classes nobody chose); by default the labels seen. on_conflict: what to do when one worker
        gave one task different labels: ``"error"`` (default), or keep the ``"first"`` / ``"last"``.

        Steps (each vectorised; memory a few arrays of the number of rows): check the columns, read the soft
        labels, refuse empty ids, drop empty labels, factorise the three columns into sorted vocabularies,
        remove repeated answers and resolve conflicts, then lay the answers out in CSR order.
        """
        if not isinstance(df, pd.DataFrame):
            raise DataError(f"{source}: expected a table of annotations, got {type(df).__name__}")
        if on_conflict not in CONFLICT_POLICIES:
            raise ValueError(f"on_conflict must be one of {CONFLICT_POLICIES}, got {on_conflict!r}")
        _check_columns(df, task, worker, label, soft_columns, source)
        warnings: list[str] = []
        frame, probs = _read_soft(df, label, soft_columns, source)
        task_codes, task_values = _factorize(frame[task], task, source, "empty")
        worker_codes, worker_values = _factorize(frame[worker], worker, source, "empty")
        label_codes, label_values = _factorize(frame[label], label, source, "label")
        keep = _non_empty_labels(label_codes, label_values)
        if keep is not None:
            warnings.append(f"{source}: dropped {counted(len(keep) - int(keep.sum()), 'answer')} with an empty label")
            task_codes, worker_codes, label_codes = task_codes[keep], worker_codes[keep], label_codes[keep]
            probs = None if probs is None else probs[keep]
            task_codes, task_values = _refactorize(task_codes, task_values)
            worker_codes, worker_values = _refactorize(worker_codes, worker_values)
            label_codes, label_values = _refactorize(label_codes, label_values)
        if len(label_codes) == 0:
            raise DataError(f"{source}: no annotations (the table is empty after removing empty labels)")
        for column, values in ((task, task_values), (worker, worker_values), (label, label_values)):
            _check_mixed_types(values, column, source)

        task_index, task_codes = _sorted_codes(task_values, task_codes, "task")
        worker_index, worker_codes = _sorted_codes(worker_values, worker_codes, "worker")
        warnings.extend(_ids_in_two_forms(task_index, "task", source)
                        + _ids_in_two_forms(worker_index, "worker", source))
        seen_classes = pd.Index(_sort_values(label_values), name="label")
        if soft_columns is not None:
            class_index = sorted_index(list(soft_columns.keys()), "label")
        elif classes is not None:
            class_index = pd.Index(list(classes), name="label")
        else:
            class_index = seen_classes
        unknown = seen_classes.difference(class_index)
        if len(unknown):
            raise DataError(f"{source}: label(s) [{', '.join(map(_show_short, unknown[:5]))}] are not among "
                            f"the classes [{', '.join(map(_show_short, class_index[:10]))}]")
        label_codes = class_index.get_indexer(label_values)[label_codes]

        rows, dedup_warnings = _one_answer_per_pair(task_codes, worker_codes, label_codes, probs, len(worker_index),
                                                    on_conflict, source, task_index, worker_index, class_index)
        warnings.extend(dedup_warnings)
        if class_index is seen_classes and len(rows) < len(label_codes):
            # a label given only in answers a conflict left out is no class: after "keep the first answer" the other
            # spelling of one answer ("DOG", 0 answers) stayed a class of none, a column of zeros (walkthrough 118)
            used = np.bincount(label_codes[rows], minlength=len(class_index)) > 0
            if not used.all():
                gone = class_index[~used]
                warnings.append(f"{source}: {counted(len(gone), 'label')} given only in the answers left out "
                                f"({', '.join(map(_show_short, gone[:5]))}{', ...' if len(gone) > 5 else ''}) "
                                f"{'is no class' if len(gone) == 1 else 'are no classes'}")
                renumber = np.cumsum(used) - 1
                label_codes = renumber[label_codes]  # (only the rows kept are read from here on)
                class_index = seen_classes = class_index[used]
        grouped = _label_groups(worker_codes[rows], label_codes[rows], worker_index, class_index, source)
        warnings.extend(grouped)
        if class_index is seen_classes and not any(LABELS_ALIKE in w for w in grouped):
            warnings.extend(_alike_labels(class_index, label_codes[rows], source, worker_codes[rows], worker_index))
        if class_index is seen_classes:
            warnings.extend(_mixed_script_labels(class_index, label_codes[rows], source, worker_codes[rows],
                                                 worker_index))
            warnings.extend(_on_most_given(_numbers_two_ways, class_index, label_codes[rows], source,
                                           worker_codes[rows], worker_index))
            warnings.extend(_labels_for_others(class_index, task_codes[rows], label_codes[rows], len(task_index),
                                               source, worker_codes[rows], worker_index))
            warnings.extend(_labels_of_one_task(class_index, task_codes[rows], label_codes[rows], source,
                                                worker_codes[rows], worker_index))
        warnings.extend(_long_labels(class_index, source, worker_codes[rows], label_codes[rows], worker_index))
        soft = None
        if probs is not None:
            column_order = class_index.get_indexer(list(soft_columns.keys()))
            soft = np.zeros((len(rows), len(class_index)), dtype=np.float32)
            soft[:, column_order] = probs[rows]
        offsets = np.zeros(len(task_index) + 1, dtype=np.int64)
        np.cumsum(np.bincount(task_codes[rows], minlength=len(task_index)), out=offsets[1:])
        return cls(tasks=task_index, workers=worker_index, classes=class_index, task_codes=task_codes[rows],
                   worker_codes=worker_codes[rows], label_codes=label_codes[rows], task_offsets=offsets,
                   soft_labels=soft, warnings=warnings, source=source)

    # ------------------------------------------------------------------ conversions
    def to_long(self, limit: int | None = None) -> pd.DataFrame:
        """Back to crowd-kit's long format with the original identifiers and labels (hard labels), in CSR
        order (by task, then worker); ``limit``: only the first that many answers."""
        answers = slice(None) if limit is None else slice(0, max(0, int(limit)))
        return pd.DataFrame({
            "task": self.tasks.take(self.task_codes[answers]),
            "worker": self.workers.take(self.worker_codes[answers]),
            "label": self.classes.take(self.label_codes[answers]),
        }).reset_index(drop=True)

    def alike_label_groups(self) -> list[list[int]]:
        """The classes (their codes) that read alike, a list a group (case, spaces, look-alike characters); none past
        :data:`SPELLING_CHECK_CLASSES` classes or for labels that are not text."""
        if self._alike is None:  # (read once a set: the Data page asks on every redraw)
            self._alike = ([] if not _is_text(self.classes) or len(self.classes) > SPELLING_CHECK_CLASSES
                           else _alike_groups(self.classes))
        return self._alike

    def with_spellings_merged(self) -> "AnnotationSet":
        """This set with the labels that read alike (the spelling warning's groups: case, spaces, look-alike
        characters) made one class each, written as its most given spelling; the set itself when none read alike.
        The mixed-case labels of a careless file split its answers into 9 classes where 3 were meant, and nothing in
        the tool put them together (DEEM 45.42% against 88.54% with one spelling; walkthrough 115).
        ``spellings_merged`` maps each spelling merged away to the one kept (apply it to gold labels); a warning
        first among ``warnings`` says what was merged. Hard labels only (DataError with soft labels)."""
        groups = self.alike_label_groups()
        if not groups:
            return self
        if self.soft_labels is not None:
            raise DataError(f"{self.source}: labels spelled alike are merged on hard labels only (these answers are "
                            f"class probabilities)")
        counts = np.bincount(self.label_codes, minlength=len(self.classes))
        mapping: dict[Hashable, Hashable] = {}
        said = []
        target = np.arange(len(self.classes))  # each class's code, the one kept for those merged away
        for group in groups:
            # the most given spelling, among those without spaces around them where there are any (" neutral" was
            # kept as the most given once)
            trimmed = [i for i in group if str(self.classes[i]) == str(self.classes[i]).strip()] or group
            kept = max(trimmed, key=lambda i: (counts[i], -i))
            others = [i for i in group if i != kept]
            mapping.update({self.classes[i]: self.classes[kept] for i in others})
            target[others] = kept
            said.append(f"{_show_short(self.classes[kept])} ({int(counts[group].sum()):,} answers: "
                        + ", ".join(f"{_show_short(self.classes[i])} {int(counts[i]):,}" for i in [kept, *others]) + ")")
        # each answer's class code mapped through the classes' (no copy of the answers' text): rebuilt through
        # to_long/from_long a press took 5.0 s and +1.25 GB on 10 M answers in the server's page thread, and three tabs
        # pressed at once took it past 5 GB (attack round 61); now one array of codes
        keep = np.flatnonzero(target == np.arange(len(self.classes)))
        renumber = np.full(len(self.classes), -1, dtype=np.int64)
        renumber[keep] = np.arange(len(keep))
        note = (f"{self.source}: {counted(len(mapping) + len(groups), 'label')} spelled alike merged into "
                f"{counted(len(groups), 'class', 'classes')}, each written as its most given spelling: "
                + "; ".join(said[:5]) + (f"; and {len(said) - 5:,} more" if len(said) > 5 else ""))
        # the read's own notes and the other checks stay (a column ignored, answers dropped or repeated were gone after
        # the merge; walkthrough 117); the warnings on labels spelled alike are answered by it
        kept_notes = [w for w in self.warnings if SPELLED_TWO_WAYS not in w and LABELS_ALIKE not in w]
        merged = AnnotationSet(tasks=self.tasks, workers=self.workers, classes=self.classes[keep],
                               task_codes=self.task_codes, worker_codes=self.worker_codes,
                               label_codes=renumber[target][self.label_codes], task_offsets=self.task_offsets,
                               warnings=[note, *kept_notes], source=self.source,
                               layout=getattr(self, "layout", "long"))
        merged.spellings_merged = mapping
        if hasattr(self, "held_bytes"):
            merged.held_bytes = self.held_bytes
        return merged

    def spelled_as_merged(self, values: pd.Series) -> pd.Series:
        """``values`` (gold labels) with the spellings :meth:`with_spellings_merged` merged away written as the ones
        kept (the same series when none were merged): a gold "Negative" of a merged "negative" was no class."""
        mapping = getattr(self, "spellings_merged", None)
        if not mapping or values is None:
            return values
        out = values.map(lambda value: mapping.get(value, value))
        out.attrs.update(values.attrs)
        return out

    def encode_like(self, df: pd.DataFrame, task: str = "task", worker: str = "worker",
                    label: str = "label") -> "AnnotationSet":
        """Encode *new* tasks with this set's workers and classes (for prediction on unseen tasks).

        Answers from workers the model never saw are dropped with a warning (their tasks are kept, possibly
        without answers); unknown labels are an error.
        """
        new = AnnotationSet.from_long(df, task=task, worker=worker, label=label, classes=list(self.classes),
                                      source="new tasks")
        known = self.workers.get_indexer(new.workers)  # new worker code -> code here (-1: unknown)
        mapped = known[new.worker_codes]
        seen = mapped >= 0
        warnings = list(new.warnings)
        if not seen.all():
            unknown = known < 0
            warnings.append(f"new tasks: ignored {counted((~seen).sum(), 'answer')} from {counted(unknown.sum(), 'worker')} "
                            f"the model was not trained on: {quoted_list(new.workers[unknown], 5)}")
        return AnnotationSet.from_codes(
            tasks=new.tasks, workers=self.workers, classes=self.classes, task_codes=new.task_codes[seen],
            worker_codes=mapped[seen], label_codes=new.label_codes[seen],
            soft_labels=None if new.soft_labels is None else new.soft_labels[seen], warnings=warnings,
            source="new tasks")

    def subset_tasks(self, positions: Any) -> "AnnotationSet":
        """The same workers and classes on the tasks at ``positions`` (integer positions in the given order, or
        an (n_tasks,) boolean mask)."""
        pos = self._positions(positions)
        index, offsets = self._gather(pos)
        return AnnotationSet(tasks=self.tasks[pos], workers=self.workers, classes=self.classes,
                             task_codes=np.repeat(np.arange(len(pos), dtype=np.int64), np.diff(offsets)),
                             worker_codes=self.worker_codes[index], label_codes=self.label_codes[index],
                             task_offsets=offsets,
                             soft_labels=None if self.soft_labels is None else self.soft_labels[index],
                             warnings=[], source=self.source, layout=self.layout)

    def summary(self) -> dict[str, Any]:
        """Counts a user wants first: tasks, workers, classes, answers, density, answers per task."""
        per_task = self.answers_per_task()
        return {
            "tasks": self.n_tasks, "workers": self.n_workers, "classes": self.n_classes,
            "annotations": self.n_answers, "density": round(self.density, 4),
            "answers_per_task_min": int(per_task.min()) if len(per_task) else 0,
            "answers_per_task_mean": float(per_task.mean()) if len(per_task) else 0.0,
            "answers_per_task_max": int(per_task.max()) if len(per_task) else 0,
        }


# ---------------------------------------------------------------------- the steps of from_long
def _check_columns(df: pd.DataFrame, task: str, worker: str, label: str,
                   soft_columns: Mapping[Hashable, str] | None, source: str) -> None:
    needed = [task, worker] + ([label] if soft_columns is None else [])
    # (a frame of two-level or repeated column names gave pandas' KeyError or TypeError; attack round 11)
    if isinstance(df.columns, pd.MultiIndex):
        raise DataError(f"{source}: the table has {df.columns.nlevels} levels of column names; give one level "
                        f"(task, worker, label)")
    twice = sorted({str(c) for c in df.columns[df.columns.duplicated()] if c in needed})
    if twice:
        raise DataError(f"{source}: the column name(s) {', '.join(repr(c) for c in twice)} occur more than once; "
                        f"which one holds the answers is unclear")
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {', '.join(repr(c) for c in missing)}; found "
            f"{', '.join(repr(str(c)) for c in df.columns) or 'no columns'} (expected task, worker, label)"
        )
    if soft_columns is not None:
        absent = [c for c in soft_columns.values() if c not in df.columns]
        if absent:
            raise DataError(f"{source}: soft-label column(s) {absent} not found")


def _read_soft(df: pd.DataFrame, label: str, soft_columns: Mapping[Hashable, str] | None,
               source: str) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The soft labels as (rows, K) float64 normalised probabilities (in ``soft_columns`` order), and the
    frame with a hard label column (their argmax) when it has none."""
    if soft_columns is None:
        return df, None
    probs = df[list(soft_columns.values())].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    valid = np.isfinite(probs) & (probs >= 0)
    if not valid.all():
        bad = int(np.flatnonzero(~valid.all(axis=1))[0])
        raise DataError(f"{source}: row {bad + 1}: soft labels must be finite, non-negative numbers")
    totals = probs.sum(axis=1, keepdims=True)
    if (totals <= 0).any():
        bad = int(np.flatnonzero(totals[:, 0] <= 0)[0])
        raise DataError(f"{source}: row {bad + 1}: soft labels sum to zero")
    probs = probs / totals
    if label not in df.columns:
        names = np.empty(len(soft_columns), dtype=object)
        names[:] = list(soft_columns.keys())
        df = df.assign(**{label: names[probs.argmax(axis=1)]})
    return df, probs


def _factorize(values: pd.Series, column: str, source: str, missing: str) -> tuple[np.ndarray, np.ndarray]:
    """(rows,) int64 codes into the distinct values (a numpy array, first-seen order), ``-1`` for a missing
    cell. An empty task or worker (``missing="empty"``) is an error naming its first row; missing labels are
    left to :func:`_non_empty_labels`."""
    try:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
    except TypeError:  # unhashable cells (lists, dicts)
        codes, uniques = None, None
    if uniques is None or (uniques.dtype == object and any(isinstance(v, (tuple, frozenset)) for v in uniques)):
        raise DataError(f"{source}: column '{column}' holds lists or tuples; each cell must be one value (text or a "
                        f"number)")
    codes = np.asarray(codes, dtype=np.int64)
    if missing == "empty":
        null = codes < 0
        if null.any():
            row = int(np.flatnonzero(null)[0])
            raise DataError(f"{source}: row {row + 1}: empty '{column}' ({counted(null.sum(), 'row')} in all)")
    return codes, np.asarray(uniques)


def _non_empty_labels(codes: np.ndarray, uniques: np.ndarray) -> np.ndarray | None:
    """Rows whose label is present and not blank (None when every label is): checked on the distinct values,
    not per row."""
    blank = np.zeros(len(uniques) + 1, dtype=bool)  # last entry: code -1 (missing)
    blank[-1] = True
    if uniques.dtype == object or uniques.dtype.kind == "U":
        text = pd.Series(uniques.astype(object)).astype(str).str.strip()
        blank[:-1] = (text == "").to_numpy()
    empty = blank[codes]  # codes == -1 picks the last entry
    return None if not empty.any() else ~empty


def _refactorize(codes: np.ndarray, uniques: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes and distinct values restricted to the values that still occur, in their first-seen order among
    the remaining rows (what factorising the remaining rows afresh would give)."""
    new_codes, old_codes = pd.factorize(codes)
    return np.asarray(new_codes, dtype=np.int64), uniques[np.asarray(old_codes)]


def _sorted_codes(uniques: Any, codes: np.ndarray, name: str) -> tuple[pd.Index, np.ndarray]:
    """The vocabulary as a sorted Index (first-seen order when not sortable) and the codes mapped into it."""
    array = np.asarray(uniques)
    order = _sort_order(array)
    if order is None:
        return pd.Index(list(array), name=name), codes
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    values = array[order] if array.dtype.kind in "biuf" else list(array[order])
    return pd.Index(values, name=name), rank[codes]


#: answers each of two groups of workers sharing no label must hold before the read says so (_label_groups)
LABEL_GROUP_ANSWERS = 20


def _label_groups(worker_codes: np.ndarray, label_codes: np.ndarray, workers: pd.Index, classes: pd.Index,
                  source: str) -> list[str]:
    """A warning when the workers fall into groups that share no label (no worker of one group gave a label that
    a worker of another gave): answers to different questions, or a column that is not answers (a score, a count),
    read as workers. Every group's labels then become classes of their own, and no model can relate them. The
    groups are the connected parts of the graph of workers and the labels they gave (linear in the answers)."""
    from scipy.sparse import coo_matrix  # noqa: PLC0415
    from scipy.sparse.csgraph import connected_components  # noqa: PLC0415

    n_workers, n_classes = len(workers), len(classes)
    # a worker of one answer links no label to another: 7,000 workers of one answer each were said to fall into "2
    # groups that share no label" (those who gave A, those who gave B) on the tasks they shared (walkthrough 99)
    keep = np.bincount(worker_codes, minlength=n_workers)[worker_codes] >= 2 if len(worker_codes) else []
    worker_codes, label_codes = worker_codes[keep], label_codes[keep]
    if n_workers < 2 or not len(worker_codes):
        return []
    edges = coo_matrix((np.ones(len(worker_codes), dtype=np.int8), (worker_codes, n_workers + label_codes)),
                       shape=(n_workers + n_classes,) * 2).tocsr()
    n_parts, part = connected_components(edges, directed=False)
    worker_part = part[:n_workers]
    answers = np.bincount(worker_part[worker_codes], minlength=n_parts)
    parts = np.flatnonzero(answers)
    if (answers >= LABEL_GROUP_ANSWERS).sum() < 2:  # (a few answers apart are chance, not another question)
        return []
    order = parts[np.argsort(-answers[parts], kind="stable")]
    used = np.zeros(n_classes, dtype=bool)
    used[label_codes] = True
    shown = []
    spelled: dict[str, Any] = {}  # a label in lower case -> (its group, the label): the same word in two groups
    alike = None
    for group in order[:3]:
        members = workers[worker_part == group]
        labels = classes[(part[n_workers:] == group) & used]
        names = ", ".join(_show_short(w) for w in members[:4]) + (" ..." if len(members) > 4 else "")
        # (letters of other scripts named: 'yes', 'yеs' read as one label twice; walkthrough 55)
        values = ", ".join(_show_short(c) + (_foreign_letters(c) if isinstance(c, str) and len(c) <= LONG_LABEL_CHARS
                                             else "") for c in labels[:4]) + (" ..." if len(labels) > 4 else "")
        shown.append(f"{counted(len(members), 'worker')} ({names}) gave {counted(len(labels), 'label')} ({values})")
        for label in labels[:1000]:
            key = str(label).strip().casefold()
            if key in spelled and spelled[key][0] != group and alike is None:
                alike = (spelled[key][1], label)
            spelled.setdefault(key, (group, label))
    more = f"; and {counted(len(parts) - 3, 'more group')}" if len(parts) > 3 else ""
    # (two teams' spellings of one label set read as "different questions"; walkthrough 20)
    case = (f" Their labels {LABELS_ALIKE} only ({_show(alike[0])} and {_show(alike[1])}): spell "
            f"them one way in the file." if alike is not None else "")
    return [f"{source}: the workers fall into {len(parts):,} groups that share no label, as if they answered "
            f"different questions: {'; '.join(shown)}{more}.{case} Each group's labels are classes of their own; "
            f"leave out what is not an answer, or spell the same label the same way."]


#: the words of a warning that two labels are one word spelled two ways (_label_groups, _alike_labels)
LABELS_ALIKE = "differ in upper and lower case"
#: the words of the warning on labels spelled alike (what :meth:`AnnotationSet.with_spellings_merged` merges)
SPELLED_TWO_WAYS = "spelled in more than one way"


#: letters of other scripts drawn like a Latin letter (after case folding): a label typed on another keyboard layout
#: reads the same and is another class (attack round 23: "yes" with a Cyrillic "е" split the "yes" answers and majority
#: vote returned "no" 4:3 without a word)
_LOOK_ALIKE = str.maketrans({
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
    "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "һ": "h", "ӏ": "l", "ԛ": "q", "ԝ": "w",
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u",
    "χ": "x", "ω": "w", "ı": "i", "ɑ": "a", "ɡ": "g", "ϲ": "c", "ϳ": "j", "օ": "o", "ո": "n", "ս": "u",
    "հ": "h", "ꜱ": "s", "ᴏ": "o", "ĸ": "k", "ɱ": "m", "ʏ": "y", "ɪ": "i", "ᴄ": "c", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w",
    "ᴢ": "z"})

#: the words of a warning that labels mix letters of several scripts (_mixed_script_labels)
MIXED_SCRIPTS = "letters of more than one script"
#: a word of a label: a run of letters (and the marks that go with them)
_WORDS = re.compile(r"[^\W\d_]+")
#: scripts whose letters one word mixes as a matter of course (Japanese: kanji, hiragana, katakana)
_ONE_SCRIPT = {"HIRAGANA": "CJK", "KATAKANA": "CJK", "CJK": "CJK", "IDEOGRAPHIC": "CJK", "HANGUL": "CJK"}


def _scripts(label: str) -> dict[str, list[str]]:
    """The scripts of ``label``'s letters (the first word of each letter's Unicode name: LATIN, CYRILLIC, ...;
    modifier letters left out) -> up to three distinct letters of that script, the script with the most letters
    first. (Every letter kept, a label of one character NFKC writes as 18 letters took 14 MB: an 8 KB upload 2.95 GB;
    attack round 25.)"""
    counts: Counter = Counter()
    found: dict[str, list[str]] = {}
    for ch in set(unicodedata.normalize("NFKC", label)):
        if ch.isalpha():
            word = unicodedata.name(ch, "").split(" ", 1)[0]
            if word and word != "MODIFIER":
                script = _ONE_SCRIPT.get(word, word)
                counts[script] += 1
                letters = found.setdefault(script, [])
                if len(letters) < 3:
                    letters.append(ch)
    return {script: sorted(found[script]) for script, _ in counts.most_common()}


def _mixed_script_labels(classes: pd.Index, label_codes: np.ndarray, source: str,
                         worker_codes: np.ndarray | None = None, workers: pd.Index | None = None) -> list[str]:
    """A warning when a word of a label mixes letters of several scripts ("no" with an Armenian "օ"): each is a class of its own
    that reads like another, and no table of look-alike letters holds them all (an Armenian "օ" split "no" and
    majority vote returned "yes" on every task without a word; attack round 24). Labels already said to be spelled
    two ways are left to that warning. Past :data:`SPELLING_CHECK_CLASSES` labels, among the most given that many."""
    return _on_most_given(_mixed_among, classes, label_codes, source, worker_codes, workers)


def _mixed_among(classes: pd.Index, label_codes: np.ndarray, source: str, worker_codes: np.ndarray | None = None,
                 workers: pd.Index | None = None) -> list[str]:
    """:func:`_mixed_script_labels` on labels few enough to read one by one."""
    keys = _label_keys(classes)
    said = keys.duplicated(keep=False).to_numpy()
    mixed = []
    for i, label in enumerate(classes):
        if isinstance(label, str) and not said[i] and not isinstance(keys[i], tuple):  # (read: _label_keys)
            # within one word (a run of letters): a letter typed on another layout lands in a word; words each of
            # one script ("chat ñ 猫", "cat/кот") are a label in two languages (walkthrough 112)
            words = [w for w in _WORDS.findall(unicodedata.normalize("NFKC", label)) if len(_scripts(w)) > 1]
            if words:
                mixed.append((i, _scripts(" ".join(words))))
    if not mixed:
        return []
    counts = np.bincount(label_codes, minlength=len(classes))

    def named(i: int, scripts: dict[str, list[str]]) -> str:  # the label, its scripts, the letters of the fewer ones
        fewer = list(dict.fromkeys(ch for letters in list(scripts.values())[1:] for ch in letters))[:3]
        letters = ", ".join(f"{unicodedata.name(ch, 'character').lower()} U+{ord(ch):04X}" for ch in fewer)
        return (f"{_show_short(classes[i])} [{' and '.join(s.lower() for s in scripts)}: {letters}] "
                f"({int(counts[i]):,}{_given_by(i, label_codes, worker_codes, workers)})")

    shown = "; ".join(named(i, scripts) for i, scripts in mixed[:3]) + (
        f"; and {len(mixed) - 3:,} more" if len(mixed) > 3 else "")
    # ("each reads like another label" of one label, beside none like it; walkthrough 113)
    one = len(mixed) == 1
    return [f"{source}: {counted(len(mixed), 'label')} {'mixes' if one else 'mix'} {MIXED_SCRIPTS} in a word, as a "
            f"letter typed on another keyboard layout does: {'it' if one else 'each'} may read like a label written "
            f"otherwise and {'is' if one else 'each is'} a class of its own (answers in brackets): {shown}. Spell each "
            f"class one way in the file if they mean the same."]


#: the words of the warning that ids are written in two Unicode forms (_ids_in_two_forms)
TWO_FORMS = "written in two Unicode forms"


#: the look-alike letters of :data:`_LOOK_ALIKE` as one character class of RE2: the ids holding one are read in Python
_LOOK_ALIKE_RE2 = "[" + "".join(f"\\x{{{code:04X}}}" for code in sorted(_LOOK_ALIKE)) + "]"


def _id_keys(ids: pa.Array) -> pa.Array:
    """Each id as it reads (as :func:`label_key` reads a label, vectorised): NFKC, without format characters and those
    drawn as nothing, every run of Unicode spaces one plain space and none at the ends, lower case, and letters of
    other scripts drawn like Latin ones read as those. (Only what ASCII ids need is done on them: the whole on
    1,000,000 ASCII ids took 0.6 s; and only the ids holding a look-alike letter are read in Python.)"""
    keys = pa_compute.ascii_lower(pa_compute.ascii_trim_whitespace(ids))
    spaced = pa_compute.match_substring(keys, "  ")
    if pa_compute.any(spaced).as_py():
        keys = pa_compute.if_else(spaced, pa_compute.replace_substring_regex(keys, " +", " "), keys)
    # (ids outside ASCII, and ASCII ones holding a control character, are read the slow way)
    other = pa_compute.or_(pa_compute.invert(pa_compute.string_is_ascii(ids)),
                           pa_compute.match_substring_regex(ids, ASCII_CONTROLS_RE2))
    if not pa_compute.any(other).as_py():
        return keys
    rest = pa_compute.replace_substring_regex(pa_compute.utf8_normalize(ids.filter(other), form="NFKC"),
                                              INVISIBLE_RE2, "")
    rest = pa_compute.utf8_lower(pa_compute.utf8_trim_whitespace(
        pa_compute.replace_substring_regex(rest, "[\\s\\p{Z}]+", " ")))
    alike = np.asarray(pa_compute.match_substring_regex(rest, _LOOK_ALIKE_RE2).to_numpy(zero_copy_only=False),
                       dtype=bool)
    if alike.any():
        values = np.asarray(rest.to_numpy(zero_copy_only=False), dtype=object)
        values[alike] = _read_as_latin(values[alike])
        rest = pa.array(values, type=pa.string())
    out = np.asarray(keys.to_numpy(zero_copy_only=False), dtype=object)
    out[np.asarray(other.to_numpy(zero_copy_only=False), dtype=bool)] = np.asarray(
        rest.to_numpy(zero_copy_only=False), dtype=object)
    return pa.array(out, type=pa.string())


#: each character of the Basic Multilingual Plane as :data:`_LOOK_ALIKE` reads it (a table of code points)
_LATIN_OF = np.arange(0x10000, dtype=np.uint32)
_LATIN_OF[list(_LOOK_ALIKE)] = [ord(letter) for letter in _LOOK_ALIKE.values()]


def _read_as_latin(values: np.ndarray) -> list[str]:
    """``value.translate(_LOOK_ALIKE)`` for each of ``values`` (text), through a table of code points on the text as
    fixed-width code points when the texts are short: 1,000,000 Cyrillic ids took 1.4 s one by one."""
    longest = max((len(value) for value in values), default=0)
    if longest > 64 or len(values) < 1000:
        return [value.translate(_LOOK_ALIKE) for value in values]
    points = np.asarray(values, dtype=f"U{longest}").view(np.uint32).reshape(len(values), longest)
    read = np.where(points < 0x10000, _LATIN_OF[np.minimum(points, 0xFFFF)], points)
    return read.view(f"U{longest}").ravel().tolist()


def _ids_in_two_forms(index: pd.Index, what: str, source: str) -> list[str]:
    """A warning when ids differ only in how they are written: their Unicode form ("café" as one character é, and as
    e plus a combining accent, as macOS writes file names), full-width letters or digits, characters drawn as
    nothing, spaces other than the plain one (a no-break or an ideographic space), upper and lower case, or a letter
    of another script drawn like a Latin one (the look-alike letters of the labels' check). Each form is a task or
    worker of its own: the same 200 items in two exports gave 400 rows, 47 of them with two labels, without a word
    (attack round 28; invisible and full-width forms, attack round 29; spaces, case and look-alike letters, attack
    round 30: "t1" and "t1" with a no-break space, "T1", or a Cyrillic "т" were two tasks). The ids are kept as
    written: only the warning says so."""
    if not _is_text(index) or not len(index):
        return []
    try:  # (vectorised: 1,000,000 ids in Python took 0.49 s when every one was ASCII)
        ids = pa.array(index.to_numpy(dtype=object), type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # ids of mixed types: no such pair among them
        return []
    keys = _id_keys(ids)
    # the ids of one key are neighbours once the keys are sorted (Arrow's sort: hashing 1,000,000 keys took 0.3 s)
    order = np.asarray(pa_compute.sort_indices(keys), dtype=np.int64)
    ordered = keys.take(pa.array(order))
    same = np.asarray(pa_compute.equal(ordered[1:], ordered[:-1]).to_numpy(zero_copy_only=False), dtype=bool)
    if not same.any():
        return []
    found = np.zeros(len(keys), dtype=bool)
    found[order[1:][same]] = True
    found[order[:-1][same]] = True
    codes = np.empty(len(keys), dtype=np.int64)
    codes[order] = np.concatenate([[0], np.cumsum(~same)])
    frame = pd.DataFrame({"id": np.asarray(ids.to_numpy(zero_copy_only=False), dtype=object)[found],
                          "key": codes[found]})
    found_keys = pd.unique(frame["key"].to_numpy())
    count = len(found_keys)
    first = frame[frame["key"].isin(set(found_keys[:3]))]

    def form(value: str) -> str:
        odd = _foreign_letters(value) + _odd_spaces(value)
        if odd:
            return f" (with{odd})"
        if value.isascii():
            return ""
        return " (composed)" if unicodedata.is_normalized("NFC", value) else " (decomposed)"

    def case(group: list[str]) -> str:  # (case is one of the differences: casefolding makes two of them one)
        return " (upper and lower case)" if len({v.casefold() for v in group}) < len(group) else ""

    groups = [list(group)[:2] for _, group in first.groupby("key", sort=False)["id"]]
    examples = "; ".join(" and ".join(f"{_show_short(v)}{form(v)}" for v in group) + case(group) for group in groups)
    return [f"{source}: {counted(count, what + ' id')} {TWO_FORMS} or with characters that read the same (an accented letter "
            f"as one character or as a letter and a combining accent, full-width letters, characters drawn as "
            f"nothing, spaces other than the plain one, upper and lower case, letters of another script drawn like "
            f"Latin ones), and each form is a {what} of its own: {examples}"
            f"{f'; and {count - 3:,} more' if count > 3 else ''}. The ids are read as written: write each id one way "
            f"in every file."]


def _odd_spaces(value: str) -> str:
    """The spaces of ``value`` other than the plain one, named (" [no-break space U+00A0]")."""
    named = [f"{unicodedata.name(ch, 'space').lower()} U+{ord(ch):04X}" for ch in dict.fromkeys(value)
             if ch.isspace() and ch != " "]
    return f" [{', '.join(named[:3])}]" if named else ""


def label_key(label: str) -> str:
    """A label as it reads: compatibility forms folded (NFKC: fullwidth, ligatures), invisible characters dropped
    (format characters: zero-width, soft hyphen, direction marks; and those drawn as nothing,
    :func:`deem_core.data.text.is_invisible`: variation selectors, the combining grapheme joiner), case folded,
    runs of spaces made one, and letters of other scripts drawn like Latin ones read as those. Two labels with one
    key read alike."""
    text = unicodedata.normalize("NFKC", label)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf" and not is_invisible(ch))
    return " ".join(text.split()).casefold().translate(_LOOK_ALIKE)


def _label_keys(classes: pd.Index) -> pd.Series:
    """Each class's :func:`label_key`; a label longer than :data:`LONG_LABEL_CHARS` (text, said by its own
    warning), or that NFKC writes longer than that, keeps a key of its own unread: the checks read every character
    in Python, and 16,000 labels of 10,000 characters held the server's read slot 77 s, 43 s of them here (attack
    round 25); 100,000 labels of 100 characters that NFKC writes 18x long, 106 s and 1.6 GB (attack round 26)."""
    return pd.Series([(label_key(c) if _readable(c) else ("long", i)) if isinstance(c, str) else c
                      for i, c in enumerate(classes)])


def _readable(label: str) -> bool:
    """Whether the spelling checks read ``label`` letter by letter: :data:`LONG_LABEL_CHARS` at most, as written and
    as NFKC writes it."""
    return len(label) <= LONG_LABEL_CHARS and len(unicodedata.normalize("NFKC", label)) <= LONG_LABEL_CHARS


#: distinct labels past which the spelling checks are not made: they read each label in Python, and labels that
#: many are no classes a person reads one by one (100,000 labels held the server's read slot 106 s; attack round 26)
SPELLING_CHECK_CLASSES = 10_000


#: the words of the warning that the spelling checks were not made (too many distinct labels)
NOT_COMPARED = "not compared"


def _is_text(classes: pd.Index) -> bool:
    return bool(classes.dtype == object or pd.api.types.is_string_dtype(classes.dtype))


def _on_most_given(check: Callable[..., list[str]], classes: pd.Index, label_codes: np.ndarray, source: str,
                   worker_codes: np.ndarray | None, workers: pd.Index | None) -> list[str]:
    """``check(classes, label_codes, source, worker_codes, workers)`` on text labels, and past
    :data:`SPELLING_CHECK_CLASSES` distinct labels on the most given that many (with their answers only): a "yes"
    with a Cyrillic "е" among one worker's 12,000 free-text labels was not caught (walkthrough 55)."""
    if not _is_text(classes):
        return []
    if len(classes) <= SPELLING_CHECK_CLASSES:
        return check(classes, label_codes, source, worker_codes, workers)
    counts = np.bincount(label_codes, minlength=len(classes))
    kept = np.sort(np.argsort(-counts, kind="stable")[:SPELLING_CHECK_CLASSES])
    position = np.full(len(classes), -1, dtype=np.int64)
    position[kept] = np.arange(len(kept))
    answered = position[label_codes] >= 0
    return check(classes[kept], position[label_codes[answered]], source,
                 None if worker_codes is None else worker_codes[answered], workers)


def _foreign_letters(label: str) -> str:
    """The characters of ``label`` that a reader cannot tell from others: letters outside ASCII that read as Latin
    ones and invisible characters, named (" [Cyrillic small letter ie U+0435]")."""
    named = []
    for ch in dict.fromkeys(label):
        if (ord(ch) > 127 and ch.casefold().translate(_LOOK_ALIKE) != ch.casefold()) or (
                unicodedata.category(ch) == "Cf") or is_invisible(ch) or (
                ch != unicodedata.normalize("NFKC", ch) and not ch.isspace()):
            named.append(f"{unicodedata.name(ch, 'character').lower()} U+{ord(ch):04X}")
    return f" [{', '.join(named[:3])}]" if named else ""


def odd_letters(label: str) -> str:
    """The characters of ``label`` a reader cannot tell from others, named as the labels' checks name them
    (:func:`_foreign_letters`: " [cyrillic small letter ie U+0435]"; "" when none), for other modules' messages (a truth
    label "yеs" with a Cyrillic "е" was quoted as if it read "yes"; attack round 30). At most 200 characters read."""
    return _foreign_letters(str(label)[:200])


def _given_by(label: int, label_codes: np.ndarray, worker_codes: np.ndarray | None, workers: pd.Index | None) -> str:
    """"; given by w03 25, w07 2" : the workers who gave class ``label`` most (the worker table otherwise ranked two
    who typed a look-alike spelling as the worst, and nothing pointed from one to the other; walkthrough 52)."""
    if worker_codes is None or workers is None:
        return ""
    given = np.bincount(worker_codes[label_codes == label], minlength=len(workers))
    who = np.flatnonzero(given)
    who = who[np.argsort(-given[who], kind="stable")]
    return ("; given by " + ", ".join(f"{_show_short(workers[w])} {int(given[w]):,}" for w in who[:3])
            + (f" and {len(who) - 3:,} more" if len(who) > 3 else "")) if len(who) else ""


def _alike_labels(classes: pd.Index, label_codes: np.ndarray, source: str, worker_codes: np.ndarray | None = None,
                  workers: pd.Index | None = None) -> list[str]:
    """A warning when labels differ only in upper and lower case or in spaces ("Positive", "POSITIVE",
    "positive"): each is a class of its own, and a model then finds more classes than the crowd meant; the only sign
    was a "dead units" warning about the learning rate (walkthrough 45). Past :data:`SPELLING_CHECK_CLASSES`
    labels, among the most given that many, and the others are said not to be compared."""
    found = _on_most_given(_alike_among, classes, label_codes, source, worker_codes, workers)
    if _is_text(classes) and len(classes) > SPELLING_CHECK_CLASSES:
        # (past the cap the warnings vanished without a word: a "yes" with a Cyrillic "е" split the answers and
        # majority vote returned "no" on all 300 tasks; attack round 27)
        found.append(f"{source}: {len(classes):,} distinct labels: the spellings of the {SPELLING_CHECK_CLASSES:,} "
                     f"most given were compared, and the other {len(classes) - SPELLING_CHECK_CLASSES:,} labels' "
                     f"spellings are {NOT_COMPARED}, so one of them spelled like another would be a class of its own "
                     f"without a word; check the label column")
    return found


def _alike_groups(classes: pd.Index) -> list[list[int]]:
    """The classes (their positions) that read alike, a list a group: differing only in case, spaces or characters
    that look alike (:func:`label_key`)."""
    keys = _label_keys(classes)
    repeated = keys[keys.duplicated(keep=False)]
    return [list(idx) for _, idx in repeated.groupby(repeated, sort=False).groups.items()] if len(repeated) else []


def _alike_among(classes: pd.Index, label_codes: np.ndarray, source: str, worker_codes: np.ndarray | None = None,
                 workers: pd.Index | None = None) -> list[str]:
    """:func:`_alike_labels` on labels few enough to read one by one."""
    groups = _alike_groups(classes)
    if not groups:
        return []
    def spelled(label) -> str:  # (a browser shows two spaces as one: two spellings read alike; walkthrough 46)
        run = max((len(part) for part in re.findall(r" +", str(label))), default=0)
        return _show_short(label) + (f" [{run} spaces in a row]" if run > 1 else "") + _foreign_letters(str(label))

    shown = _groups_shown(groups, classes, label_codes, worker_codes, workers, spelled)
    return [f"{source}: {counted(len(groups), 'label')} {SPELLED_TWO_WAYS} (the spellings {LABELS_ALIKE}, in "
            f"spaces, or in characters that look alike or cannot be seen only), and each spelling is a class of its own "
            f"(answers in brackets): {shown}. Spell each class one way in the file if they mean the same, or merge "
            f"them (with_spellings_merged(), CLI --merge-spellings)."]


def _groups_shown(groups: list[list[int]], classes: pd.Index, label_codes: np.ndarray, worker_codes: np.ndarray | None,
                  workers: pd.Index | None, name: Any) -> str:
    """The first three groups of classes that read alike, four classes each, every class written by ``name`` with its
    answers in brackets, and the workers of every class in its group but the most given one."""
    counts = np.bincount(label_codes, minlength=len(classes))

    def answers(i: int, group: list[int]) -> str:
        most = max(group, key=lambda j: counts[j])
        return f"{int(counts[i]):,}" + ("" if i == most else _given_by(i, label_codes, worker_codes, workers))

    return "; ".join(" and ".join(f"{name(classes[i])} ({answers(i, group)})" for i in group[:4])
                     for group in groups[:3]) + (f"; and {len(groups) - 3:,} more" if len(groups) > 3 else "")


#: the words of the warning that labels are one number written two ways (_numbers_two_ways)
NUMBERS_TWO_WAYS = "one number written in more than one way"


def _numbers_two_ways(classes: pd.Index, label_codes: np.ndarray, source: str,
                      worker_codes: np.ndarray | None = None, workers: pd.Index | None = None) -> list[str]:
    """A warning when text labels are one number written two ways ("1" and "1.0", "01" and "1"): each is a class of
    its own, and the classes were ['1', '1.0', '2'] without a word (attack round 30). The labels are kept as given.
    (Vectorised on the distinct labels.)"""
    numbers = pd.to_numeric(pd.Series(np.asarray(classes, dtype=object)), errors="coerce").to_numpy(dtype=float)
    finite = np.flatnonzero(np.isfinite(numbers))
    if len(finite) < 2:
        return []
    values = pd.Series(numbers[finite], index=finite)
    repeated = values[values.duplicated(keep=False)]
    if repeated.empty:
        return []
    groups = [list(group.index) for _, group in repeated.groupby(repeated, sort=False)]
    shown = _groups_shown(groups, classes, label_codes, worker_codes, workers, _show_short)
    return [f"{source}: {counted(len(groups), 'label')} {is_are(len(groups))} {NUMBERS_TWO_WAYS} (as \"1\" and \"1.0\", or \"01\" and \"1\"), "
            f"and each writing is a class of its own (answers in brackets): {shown}. Write each number one way in the "
            f"file if they mean the same."]


#: the words of the warning that a label's answers stand where the others give another label (_labels_for_others)
STANDS_FOR = "where the other answers on their tasks give"
#: the most classes whose (class x class) co-occurrence is counted for that warning, and the answers a label needs
STANDS_FOR_MAX_CLASSES = 200
STANDS_FOR_MIN_ANSWERS = 20


#: classes from which :func:`_labels_of_one_task` looks, and the share of them given on one task only that it says
ONE_TASK_MIN_CLASSES = 20
ONE_TASK_SHARE = 0.9
#: the words of that warning (a doubt on the labels, said again where a training is launched)
ONE_TASK_ONLY = "are each given on one task only"


def _labels_of_one_task(classes: pd.Index, task_codes: np.ndarray, label_codes: np.ndarray, source: str,
                        worker_codes: np.ndarray | None = None, workers: pd.Index | None = None) -> list[str]:
    """A warning when nearly every class is given on one task only: the label column holds text written for each task
    (a question, an id, a free-text field), not classes the workers choose among. ``deem aggregate --label-column
    Input.text`` on an MTurk batch read 480 classes for 480 tasks and began a training of 3 hours, with nothing said
    but its time left (walkthrough 115). Where a few workers give nearly all such labels, they are named: a wide
    file's column of file paths read as a worker (walkthrough 117, where the advice to pick the label column fitted
    no control of a wide file)."""
    k = len(classes)
    if k < ONE_TASK_MIN_CLASSES or not len(label_codes):
        return []
    stride = int(task_codes.max()) + 1  # (each class's distinct tasks, from one code a (class, task) pair)
    pairs = np.unique(label_codes.astype(np.int64) * stride + task_codes)
    tasks_per_class = np.bincount(pairs // stride, minlength=k)
    single = int((tasks_per_class == 1).sum())
    if single < ONE_TASK_SHARE * k:
        return []
    head = f"{source}: {single:,} of the {k:,} classes {ONE_TASK_ONLY}"
    givers = _one_task_givers(tasks_per_class == 1, label_codes, worker_codes, workers)
    if givers:
        return [f"{head}, nearly all given by {quoted_list(givers, 5)}"
                + f": {'a column' if len(givers) == 1 else 'columns'} of text written for each task (a file path, an "
                f"id, a free-text field) read as {'a worker' if len(givers) == 1 else 'workers'}, not the answers of "
                f"one. Leave {'it' if len(givers) == 1 else 'them'} out (columns={{'ignore': [...]}}, CLI "
                f"--ignore-column)"]
    return [f"{head}: the label column reads as "
            f"text written for each task (a question, an id, a free-text field), not classes the workers choose among. "
            f"The methods that learn how each worker uses the classes (DEEM, Dawid-Skene) learn nothing shared from "
            f"such labels, and take long at this many classes; pick the column of the answers (columns={{'label': ...}}, "
            f"CLI --label-column)"]


def _one_task_givers(single: np.ndarray, label_codes: np.ndarray, worker_codes: np.ndarray | None,
                     workers: pd.Index | None) -> list[Any]:
    """The workers, at most half of them, who give ONE_TASK_SHARE of the answers of a class given on one task only
    (``single``, by class), each with that share of their own answers such labels; [] when no few workers do."""
    if worker_codes is None or workers is None or len(workers) < 2:
        return []
    odd = single[label_codes]
    given = np.bincount(worker_codes, minlength=len(workers))
    odd_given = np.bincount(worker_codes[odd], minlength=len(workers))
    who = np.flatnonzero((given > 0) & (odd_given >= ONE_TASK_SHARE * given))
    if not len(who) or len(who) > len(workers) // 2 or odd_given[who].sum() < ONE_TASK_SHARE * odd.sum():
        return []
    return [workers[w] for w in who]


def _labels_for_others(classes: pd.Index, task_codes: np.ndarray, label_codes: np.ndarray, n_tasks: int,
                       source: str, worker_codes: np.ndarray, workers: pd.Index) -> list[str]:
    """A warning when a label's answers stand where the other answers on their tasks give another label, at least
    twice as often as they give it: one class written two ways by different workers ("one", "two" by two workers
    beside everyone's "1", "2": seven classes where three were meant, and only "1.0" was said; walkthrough 108). The
    other label must be its own answers' most frequent company, so a class the crowd often confuses with another is
    not called a spelling of it; numbers written two ways are said by :func:`_numbers_two_ways`. From the (class x
    class) counts of answers sharing a task (a sparse product; at most :data:`STANDS_FOR_MAX_CLASSES` classes)."""
    k = len(classes)
    if k < 2 or k > STANDS_FOR_MAX_CLASSES or not len(label_codes):
        return []
    import scipy.sparse as sp  # noqa: PLC0415

    per_task = sp.csr_matrix((np.ones(len(label_codes), dtype=np.float32), (task_codes, label_codes)),
                             shape=(max(n_tasks, 1), k))
    counts = np.asarray(per_task.sum(axis=0)).ravel()
    together = (per_task.T @ per_task).toarray() - np.diag(counts)  # pairs of answers on one task, none with itself
    total = together.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = together / total[:, None]
    numbers = pd.to_numeric(pd.Series(np.asarray(classes, dtype=object)), errors="coerce").to_numpy(dtype=float)
    answered = np.bincount(worker_codes, minlength=len(workers)).astype(np.float64)
    found = []
    for a in np.flatnonzero((counts >= STANDS_FOR_MIN_ANSWERS) & (total >= STANDS_FOR_MIN_ANSWERS)):
        others = share[a].copy()
        others[a] = -1.0
        b = int(np.argmax(others))
        if not (share[a, b] >= 2 * share[a, a] and share[a, b] >= 0.3 and share[b, b] >= np.max(share[b])
                and not (np.isfinite(numbers[a]) and numbers[a] == numbers[b])):
            continue
        # and written by other hands: the workers giving it give the other label at most half as often as answers
        # do overall (under class imbalance a rare class's answers stand mostly where the others give the common
        # class, from workers who give that class as often as anyone: the imbalance family, all three seeds)
        rate = np.bincount(worker_codes[label_codes == b], minlength=len(workers)) / np.maximum(answered, 1.0)
        if float(rate[worker_codes[label_codes == a]].mean()) <= 0.5 * counts[b] / counts.sum():
            found.append((a, b))
    if not found:
        return []
    found.sort(key=lambda pair: -counts[pair[0]])
    shown = "; ".join(f"{_show_short(classes[a])} ({int(counts[a]):,} answers{_given_by(a, label_codes, worker_codes, workers)}"
                      f") {STANDS_FOR} {_show_short(classes[b])} on {share[a, b]:.0%} of them, {_show_short(classes[a])} "
                      f"on {max(share[a, a], 0.0):.0%}" for a, b in found[:4])
    more = f"; and {len(found) - 4:,} more" if len(found) > 4 else ""
    return [f"{source}: {counted(len(found), 'label')} may be another label written another way: {shown}{more}. If "
            f"they mean the same class, write it one way in the file; each writing is a class of its own."]


#: characters past which a label reads as text rather than a class name (_long_labels)
LONG_LABEL_CHARS = 100


def _long_labels(classes: pd.Index, source: str, worker_codes: np.ndarray, label_codes: np.ndarray,
                 workers: pd.Index) -> list[str]:
    """A warning when some labels are longer than a class name is (a text or a comment column read as the labels,
    or a worker's free-text answer): each distinct text becomes a class of its own (walkthrough 17 saw 1,500-character
    values counted as classes without a word); it names the workers who gave them (walkthrough 23: one worker's
    comments, and the fix is to leave that worker's rows out)."""
    lengths = classes.astype(str).str.len().to_numpy()
    is_long = lengths > LONG_LABEL_CHARS
    long = np.flatnonzero(is_long)
    if not len(long):
        return []
    example = str(classes[long[0]])
    given = np.bincount(worker_codes[is_long[label_codes]], minlength=len(workers))
    who = np.flatnonzero(given)
    who = who[np.argsort(-given[who], kind="stable")]
    named = ", ".join(f"{_show_short(workers[w])} {int(given[w]):,}" for w in who[:3]) + (" ..." if len(who) > 3 else "")
    return [f"{source}: class labels longer than {LONG_LABEL_CHARS} characters: {len(long):,} of {len(classes):,} "
            f"(the first: {example[:60]!r}..., {len(example):,} characters), given by {counted(len(who), 'worker')} "
            f"({named} answers); each distinct text is a class of its own. Check that the label column holds class "
            f"labels, not free text; if these workers wrote comments, leave their rows out of the file."]


#: the words of the warning that two values of a Label Studio control read as one class text and are kept apart
#: (deem_core.data.formats.labelstudio; attack round 30)
KEPT_APART = "kept apart as classes of their own"


#: the warnings of a read that say the labels themselves look wrong (not one answer or one row): the Train page
#: repeats them before a training (a run trained 202 "classes" of one worker's comments without a word there;
#: walkthrough 23)
LABEL_DOUBTS = ("groups that share no label", "class labels longer than", LABELS_ALIKE, MIXED_SCRIPTS,
                f"spellings are {NOT_COMPARED}", TWO_FORMS, NUMBERS_TWO_WAYS, KEPT_APART, STANDS_FOR, ONE_TASK_ONLY)


def label_doubts(data: "AnnotationSet") -> list[str]:
    """The warnings of ``data``'s read that doubt its labels (:data:`LABEL_DOUBTS`)."""
    return [w for w in data.warnings if any(marker in w for marker in LABEL_DOUBTS)]


#: how the readers begin a warning about answers or lines they left out ("a.json: skipped 2 answer(s) whose ...",
#: "a.csv: dropped 1 answer(s) with a missing label ...")
#: (the repeated answers removed and the conflicting answers set aside were left out of the Train page's list of what
#: the read left out; walkthrough 110)
_LEFT_OUT = re.compile(r": (?:(?:skipped|dropped|removed) [\d,]+ |[\d,]+ conflicting \(task, worker\) pairs? resolved)")


def left_out_notes(data: "AnnotationSet") -> list[str]:
    """The warnings of ``data``'s read that say answers or lines were left out."""
    return [w for w in data.warnings if _LEFT_OUT.search(w)]


def _one_answer_per_pair(task_codes: np.ndarray, worker_codes: np.ndarray, label_codes: np.ndarray,
                         probs: np.ndarray | None, n_workers: int, on_conflict: str, source: str,
                         task_index: pd.Index, worker_index: pd.Index, class_index: pd.Index
                         ) -> tuple[np.ndarray, list[str]]:
    """Rows to keep, in CSR order (task, then worker), with one answer per (task, worker) pair.

    Exact duplicates (same pair, same label, and same soft labels to 9 decimals) keep their first row. Pairs
    that still have several rows conflict: an error (``on_conflict="error"``), or the first / last of the
    remaining rows in the input's order is kept.
    """
    warnings: list[str] = []
    k = len(class_index)
    cell = task_codes * max(n_workers, 1) + worker_codes
    rows = np.arange(len(cell), dtype=np.int64)
    if probs is None:
        order = np.argsort(cell * k + label_codes, kind="stable")  # by (cell, label), then input order
        same_answer = np.zeros(len(order), dtype=bool)
        sorted_key = (cell * k + label_codes)[order]
        same_answer[1:] = sorted_key[1:] == sorted_key[:-1]
    else:
        rounded = np.round(probs, 9)
        order = np.lexsort((rows, *rounded.T[::-1], label_codes, cell))
        same_answer = np.zeros(len(order), dtype=bool)
        same_answer[1:] = ((cell[order][1:] == cell[order][:-1]) & (label_codes[order][1:] == label_codes[order][:-1])
                           & (rounded[order][1:] == rounded[order][:-1]).all(axis=1))
    n_duplicates = int(same_answer.sum())
    if n_duplicates:
        # (not "exact duplicate": a Toloka worker given one task in two assignments has no repeated row; walkthrough 51)
        warnings.append(f"{source}: removed {counted(n_duplicates, 'repeated answer')} (the same worker, task and label again; "
                        f"one of each is kept)")
    kept = order[~same_answer]  # first row of every distinct answer, grouped by cell
    kept_cell = cell[kept]
    group_start = np.ones(len(kept), dtype=bool)
    group_start[1:] = kept_cell[1:] != kept_cell[:-1]
    if group_start.all():
        return kept, warnings
    starts = np.flatnonzero(group_start)
    sizes = np.diff(np.append(starts, len(kept)))
    conflicting = np.repeat(sizes > 1, sizes)
    n_cells = int((sizes > 1).sum())
    if on_conflict == "error":
        first_row = int(kept[conflicting].min())  # the first conflicting row in the input's order
        in_cell = kept[kept_cell == cell[first_row]]
        given = class_index.take(label_codes[np.sort(in_cell)[:CONFLICT_LABELS_QUOTED + 1]])
        ti, wi = int(task_codes[first_row]), int(worker_codes[first_row])
        # a few labels quoted short: one pair given 1,000,000 labels of 100 characters (a 2.7 MB upload) made a
        # message of 104 MB, 1.7 GB of the server's memory (attack round 26)
        quoted = ", ".join(map(_show_short, given[:CONFLICT_LABELS_QUOTED]))
        more = len(in_cell) - CONFLICT_LABELS_QUOTED
        quoted += f", and {more:,} more" if more > 0 else ""
        finding = (f"{source}: {counted(n_cells, '(task, worker) pair')} {'has' if n_cells == 1 else 'have'} "
                   f"conflicting labels, e.g. task {_show_short(task_index[ti])} by worker "
                   f"{_show_short(worker_index[wi])}: [{quoted}]")
        alike = _conflicts_spelled_alike(class_index, label_codes[kept], starts, sizes)
        if alike:  # ("dog" and "DOG" by one worker on one task stopped the read, merge asked for or not; walkthrough 117)
            finding += (f"; {'its labels differ' if n_cells == 1 else 'the labels of each differ'} only in case, spaces "
                        f"or characters that look alike: one answer spelled two ways")
        error = DataError(f"{finding}; keep one answer per pair (on_conflict='first' or 'last', CLI --on-conflict)"
                          + (", then merge the labels spelled alike" if alike else ""))
        error.finding = finding  # (without its advice: a read under a wrongly named layout says the finding alone)
        error.spelled_alike = alike
        raise error
    reduce = np.minimum if on_conflict == "first" else np.maximum
    chosen = reduce.reduceat(kept, starts)  # one row per cell, cells in sorted (CSR) order
    warnings.append(f"{source}: {counted(n_cells, 'conflicting (task, worker) pair')} resolved by keeping the "
                    f"{on_conflict} answer")
    return chosen, warnings


def _conflicts_spelled_alike(classes: pd.Index, codes: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> bool:
    """Whether every (task, worker) pair given more than one label (``codes`` of the distinct answers, grouped by
    pair from ``starts``, ``sizes`` each) was given labels that read alike (:func:`label_key`): one answer spelled two
    ways, not two answers. Not read past :data:`SPELLING_CHECK_CLASSES` classes."""
    if not _is_text(classes) or len(classes) > SPELLING_CHECK_CLASSES:
        return False
    keys = pd.factorize(_label_keys(classes))[0][codes]
    lowest, highest = np.minimum.reduceat(keys, starts), np.maximum.reduceat(keys, starts)
    several = sizes > 1
    return bool(several.any() and (lowest[several] == highest[several]).all())


def as_annotation_set(data: Any, **kwargs: Any) -> AnnotationSet:
    """Accept an AnnotationSet or a long DataFrame (keyword arguments go to ``from_long``)."""
    if isinstance(data, AnnotationSet):
        return data
    if isinstance(data, pd.DataFrame):
        return AnnotationSet.from_long(data, **kwargs)
    raise TypeError(f"expected a long DataFrame (task, worker, label) or an AnnotationSet, got {type(data).__name__}")
