"""The annotation table as the engine sees it: a dense (tasks x workers) code matrix plus vocabularies.

Input is crowd-kit's long format (one row per answer: ``task, worker, label``). ``AnnotationSet``
encodes it once:

* ``tasks`` / ``workers`` / ``classes``: pandas Indexes holding the *original* identifiers and label
  values (sorted when the values can be sorted, in order of first appearance otherwise), so every
  output can be mapped back to what the user gave us;
* ``labels``: (n_tasks, n_workers) int64 class codes, ``-1`` where the worker gave no answer. A
  missing answer is never a class;
* ``soft`` (optional): (n_tasks, n_workers, K) float32 probabilities (App. G.6 soft labels), zero
  rows where missing;
* ``warnings``: what was fixed silently (dropped empty labels, exact duplicate rows), with counts.

Readers for files (long, wide, one file per annotator) live in :mod:`deem_core.data.readers`; this module only
validates and encodes a DataFrame.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Hashable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["AnnotationSet", "DataError", "majority_vote_codes", "sorted_index"]

CONFLICT_POLICIES = ("error", "first", "last")


class DataError(ValueError):
    """A problem with the user's annotations, phrased for the user (names the file/column/row)."""


def sorted_index(values: Iterable[Hashable], name: str) -> pd.Index:
    """Unique values as an Index: sorted when the values are mutually comparable, else first-seen order."""
    unique = pd.unique(pd.Series(values))
    try:
        ordered = sorted(unique)
    except TypeError:
        ordered = list(unique)
    return pd.Index(ordered, name=name)


def _show(value: Any) -> str:
    """repr of a value as the user wrote it (numpy scalars shown as plain Python values)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _check_mixed_types(values: pd.Series, column: str, source: str) -> None:
    """Refuse values that differ in type but print the same (``1`` and ``"1"``): they would look like one
    label (or task, or worker) in every output yet be two."""
    if values.dtype != object:
        return
    uniques = pd.unique(values)
    if len(uniques) < 2:
        return
    types = {type(v) for v in uniques}
    if len(types) < 2:
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


def majority_vote_codes(labels: np.ndarray, n_classes: int, soft: np.ndarray | None = None) -> np.ndarray:
    """Majority vote per task as class codes: (n,) int64, ties towards the smallest code, -1 if no answer.

    labels: (n, d) codes with -1 = missing; soft: optional (n, d, K) probabilities (votes are summed).
    """
    if soft is not None:
        votes = soft.sum(axis=1)  # (n, K)
    else:
        n = labels.shape[0]
        votes = np.zeros((n, n_classes), dtype=np.float64)
        rows, cols = np.nonzero(labels >= 0)
        np.add.at(votes, (rows, labels[rows, cols]), 1.0)
    winner = votes.argmax(axis=1).astype(np.int64)
    winner[votes.sum(axis=1) <= 0] = -1
    return winner


@dataclass
class AnnotationSet:
    """Encoded annotations. See the module docstring for the meaning of every field."""

    tasks: pd.Index
    workers: pd.Index
    classes: pd.Index
    labels: np.ndarray  # (n_tasks, n_workers) int64, -1 = missing
    soft: np.ndarray | None = None  # (n_tasks, n_workers, K) float32 or None
    warnings: list[str] = field(default_factory=list)
    source: str = "annotations"
    layout: str = "long"  # the input layout it was read from: long, wide or per_annotator

    # ------------------------------------------------------------------ shape
    @property
    def n_tasks(self) -> int:
        return int(self.labels.shape[0])

    @property
    def n_workers(self) -> int:
        return int(self.labels.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def mask(self) -> np.ndarray:
        """(n_tasks, n_workers) bool, True where an answer exists."""
        return self.labels >= 0

    @property
    def n_annotations(self) -> int:
        return int(self.mask.sum())

    @property
    def density(self) -> float:
        """Fraction of (task, worker) cells that hold an answer."""
        return self.n_annotations / max(1, self.labels.size)

    def majority_vote(self) -> np.ndarray:
        """(n_tasks,) class codes of plain majority vote (ties towards the smallest class)."""
        return majority_vote_codes(self.labels, self.n_classes, self.soft)

    def fingerprint(self) -> str:
        """SHA-256 of the encoded content (vocabularies + codes): equal data, equal fingerprint."""
        digest = hashlib.sha256()
        for index in (self.tasks, self.workers, self.classes):
            digest.update(repr(list(index)).encode())
        digest.update(np.ascontiguousarray(self.labels).tobytes())
        if self.soft is not None:
            digest.update(np.ascontiguousarray(self.soft).tobytes())
        return digest.hexdigest()

    # ------------------------------------------------------------------ construction
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
        """
        if not isinstance(df, pd.DataFrame):
            raise DataError(f"{source}: expected a table of annotations, got {type(df).__name__}")
        if on_conflict not in CONFLICT_POLICIES:
            raise ValueError(f"on_conflict must be one of {CONFLICT_POLICIES}, got {on_conflict!r}")
        needed = [task, worker] + ([label] if soft_columns is None else [])
        missing = [c for c in needed if c not in df.columns]
        if missing:
            raise DataError(
                f"{source}: missing column(s) {', '.join(repr(c) for c in missing)}; found "
                f"{', '.join(repr(str(c)) for c in df.columns) or 'no columns'} (expected task, worker, label)"
            )
        warnings: list[str] = []
        frame = df
        if soft_columns is not None:
            soft_cols = list(soft_columns.values())
            absent = [c for c in soft_cols if c not in frame.columns]
            if absent:
                raise DataError(f"{source}: soft-label column(s) {absent} not found")
            probs = frame[soft_cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
            if not np.isfinite(probs).all() or (probs < 0).any():
                bad = int(np.nonzero(~(np.isfinite(probs) & (probs >= 0)).all(axis=1))[0][0])
                raise DataError(f"{source}: row {bad + 1}: soft labels must be finite, non-negative numbers")
            totals = probs.sum(axis=1, keepdims=True)
            if (totals <= 0).any():
                bad = int(np.nonzero(totals[:, 0] <= 0)[0][0])
                raise DataError(f"{source}: row {bad + 1}: soft labels sum to zero")
            probs = probs / totals
            soft_classes = list(soft_columns.keys())
            if label not in frame.columns:
                frame = frame.assign(**{label: [soft_classes[i] for i in probs.argmax(axis=1)]})
        for column in (task, worker):
            null = frame[column].isna()
            if null.any():
                row = int(np.nonzero(null.to_numpy())[0][0])
                raise DataError(f"{source}: row {row + 1}: empty '{column}' ({int(null.sum())} row(s) in all)")
        empty_label = frame[label].isna() | (frame[label].astype(str).str.strip() == "")
        if empty_label.any():
            count = int(empty_label.sum())
            warnings.append(f"{source}: dropped {count} answer(s) with an empty label")
            keep = ~empty_label.to_numpy()
            frame = frame.loc[keep]
            if soft_columns is not None:
                probs = probs[keep]
        if len(frame) == 0:
            raise DataError(f"{source}: no annotations (the table is empty after removing empty labels)")
        for column in (task, worker, label):
            _check_mixed_types(frame[column], column, source)

        task_index = sorted_index(frame[task].to_numpy(), "task")
        worker_index = sorted_index(frame[worker].to_numpy(), "worker")
        seen_classes = sorted_index(frame[label].to_numpy(), "label")
        if soft_columns is not None:
            class_index = sorted_index(list(soft_columns.keys()), "label")
        elif classes is not None:
            class_index = pd.Index(list(classes), name="label")
        else:
            class_index = seen_classes
        unknown = seen_classes.difference(class_index)
        if len(unknown):
            raise DataError(f"{source}: label(s) [{', '.join(map(_show, list(unknown)[:5]))}] are not among the classes "
                            f"[{', '.join(map(_show, list(class_index)[:10]))}]")

        t = task_index.get_indexer(frame[task].to_numpy())
        w = worker_index.get_indexer(frame[worker].to_numpy())
        y = class_index.get_indexer(frame[label].to_numpy())
        cell = t.astype(np.int64) * len(worker_index) + w
        order = np.arange(len(cell))
        codes = pd.DataFrame({"cell": cell, "y": y, "order": order})
        dup_exact = codes.duplicated(["cell", "y"])
        if soft_columns is not None:
            dup_exact &= pd.DataFrame(probs).round(9).duplicated().to_numpy()
        if dup_exact.any():
            warnings.append(f"{source}: removed {int(dup_exact.sum())} exact duplicate answer(s)")
            codes = codes.loc[~dup_exact.to_numpy()]
        conflict = codes.duplicated("cell", keep=False)
        if conflict.any():
            n_cells = int(codes.loc[conflict, "cell"].nunique())
            first = codes.loc[conflict].iloc[0]
            ti, wi = divmod(int(first["cell"]), len(worker_index))
            if on_conflict == "error":
                given = codes.loc[codes["cell"] == first["cell"], "y"].map(lambda c: class_index[c]).tolist()
                raise DataError(
                    f"{source}: {n_cells} (task, worker) pair(s) have conflicting labels, e.g. task "
                    f"{_show(task_index[ti])} by worker {_show(worker_index[wi])}: [{', '.join(map(_show, given))}]; keep one answer per pair "
                    f"(on_conflict='first' or 'last', CLI --on-conflict)"
                )
            codes = codes.drop_duplicates("cell", keep=on_conflict)
            warnings.append(f"{source}: {n_cells} conflicting (task, worker) pair(s) resolved by keeping the "
                            f"{on_conflict} answer")
        keep_rows = codes["order"].to_numpy()
        matrix = np.full((len(task_index), len(worker_index)), -1, dtype=np.int64)
        matrix[t[keep_rows], w[keep_rows]] = y[keep_rows]
        soft = None
        if soft_columns is not None:
            soft = np.zeros((len(task_index), len(worker_index), len(class_index)), dtype=np.float32)
            column_order = class_index.get_indexer(list(soft_columns.keys()))
            soft[t[keep_rows][:, None], w[keep_rows][:, None], column_order[None, :]] = probs[keep_rows]
        return cls(tasks=task_index, workers=worker_index, classes=class_index, labels=matrix, soft=soft,
                   warnings=warnings, source=source)

    def to_long(self) -> pd.DataFrame:
        """Back to crowd-kit's long format with the original identifiers and labels (hard labels)."""
        rows, cols = np.nonzero(self.labels >= 0)
        return pd.DataFrame({
            "task": self.tasks.take(rows),
            "worker": self.workers.take(cols),
            "label": self.classes.take(self.labels[rows, cols]),
        }).reset_index(drop=True)

    def encode_like(self, df: pd.DataFrame, task: str = "task", worker: str = "worker",
                    label: str = "label") -> "AnnotationSet":
        """Encode *new* tasks with this set's workers and classes (for prediction on unseen tasks).

        Answers from workers the model never saw are dropped with a warning; unknown labels are an error.
        """
        new = AnnotationSet.from_long(df, task=task, worker=worker, label=label, classes=list(self.classes),
                                      source="new tasks")
        known = self.workers.get_indexer(new.workers)
        labels = np.full((new.n_tasks, self.n_workers), -1, dtype=np.int64)
        seen = known >= 0
        labels[:, known[seen]] = new.labels[:, seen]
        warnings = list(new.warnings)
        if (~seen).any():
            dropped = int((new.labels[:, ~seen] >= 0).sum())
            warnings.append(f"new tasks: ignored {dropped} answer(s) from {int((~seen).sum())} worker(s) the "
                            f"model was not trained on: {list(new.workers[~seen])[:5]}")
        return AnnotationSet(tasks=new.tasks, workers=self.workers, classes=self.classes, labels=labels,
                             warnings=warnings, source="new tasks")

    def subset_tasks(self, positions: np.ndarray) -> "AnnotationSet":
        """The same workers and classes on the tasks at ``positions``."""
        positions = np.asarray(positions)
        return AnnotationSet(tasks=self.tasks[positions], workers=self.workers, classes=self.classes,
                             labels=self.labels[positions],
                             soft=None if self.soft is None else self.soft[positions],
                             warnings=[], source=self.source)

    def summary(self) -> dict[str, Any]:
        """Counts a user wants first: tasks, workers, classes, answers, density, answers per task."""
        per_task = self.mask.sum(axis=1)
        return {
            "tasks": self.n_tasks, "workers": self.n_workers, "classes": self.n_classes,
            "annotations": self.n_annotations, "density": round(self.density, 4),
            "answers_per_task_min": int(per_task.min()), "answers_per_task_mean": float(per_task.mean()),
            "answers_per_task_max": int(per_task.max()),
        }


def as_annotation_set(data: Any, **kwargs: Any) -> AnnotationSet:
    """Accept an AnnotationSet or a long DataFrame (keyword arguments go to ``from_long``)."""
    if isinstance(data, AnnotationSet):
        return data
    if isinstance(data, pd.DataFrame):
        return AnnotationSet.from_long(data, **kwargs)
    raise TypeError(f"expected a long DataFrame (task, worker, label) or an AnnotationSet, got {type(data).__name__}")
