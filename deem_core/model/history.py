"""A training's log rows (one per run and epoch), held as arrays.

A row held as a Python dict of twelve entries took about 1.5 KB: a sweep of 24 learning rates x 8 seeds x 2,000
epochs (384,000 rows) held +560 MiB beside a model its memory check put at 44 MiB (attack round 70). Here an epoch's
rows are one float64 array and a tuple of their statuses (about 100 bytes a row where many runs train together);
the arrays of a few hundred epochs are joined into one as they come. Reading gives the rows back as dicts with the
types they were given in (:data:`INTEGER_COLUMNS` as ``int``), or a DataFrame (:meth:`History.frame`).
"""

from __future__ import annotations

from itertools import chain
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["HISTORY_COLUMNS", "History", "INTEGER_COLUMNS"]

#: the columns of a training's log rows
HISTORY_COLUMNS = [
    "run", "lr", "seed", "epoch", "positive_energy", "negative_energy", "energy_difference",
    "acceptance_rate", "changed_fraction", "n_predicted_classes", "status", "seconds",
]
#: the columns given and read back as whole numbers
INTEGER_COLUMNS = ("run", "seed", "epoch", "n_predicted_classes")
#: the columns held as numbers (every one but ``status``), in this order in each block's array
NUMBER_COLUMNS = [c for c in HISTORY_COLUMNS if c != "status"]
_POSITION = {name: i for i, name in enumerate(NUMBER_COLUMNS)}
_INTEGER = np.array([name in INTEGER_COLUMNS for name in NUMBER_COLUMNS])
#: small blocks (an epoch's rows) joined into one when this many have come
JOIN_EVERY = 256


class History:
    """Log rows (:data:`HISTORY_COLUMNS`) in blocks of (numbers (rows, 11) float64, statuses)."""

    __slots__ = ("_blocks", "_tail", "_rows")

    def __init__(self, rows: Iterable[Mapping[str, Any]] = ()):
        self._blocks: list[tuple[np.ndarray, tuple[str, ...]]] = []
        self._tail: list[tuple[np.ndarray, tuple[str, ...]]] = []
        self._rows = 0
        self.extend(rows)

    @classmethod
    def of(cls, history: "History | Iterable[Mapping[str, Any]]") -> "History":
        """``history`` itself when it is one, else its rows as one."""
        return history if isinstance(history, History) else cls(history)

    # ------------------------------------------------------------------ adding
    def extend(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Add ``rows`` (dicts with every column of :data:`HISTORY_COLUMNS`)."""
        rows = rows if isinstance(rows, Sequence) else list(rows)
        if not len(rows):
            return
        numbers = np.array([[row[name] for name in NUMBER_COLUMNS] for row in rows], dtype=np.float64)
        self._add(numbers, tuple(str(row["status"]) for row in rows))

    def extend_history(self, other: "History") -> None:
        """Add every row of ``other``."""
        for numbers, statuses in other._all_blocks():
            self._add(numbers, statuses)

    def _add(self, numbers: np.ndarray, statuses: tuple[str, ...]) -> None:
        self._tail.append((numbers, statuses))
        self._rows += len(statuses)
        if len(self._tail) >= JOIN_EVERY:
            self._join_tail()

    def _join_tail(self) -> None:
        if len(self._tail) > 1:
            joined = (np.concatenate([b[0] for b in self._tail]), tuple(chain.from_iterable(b[1] for b in self._tail)))
            self._tail = [joined]
        self._blocks.extend(self._tail)
        self._tail = []

    def _all_blocks(self) -> list[tuple[np.ndarray, tuple[str, ...]]]:
        return self._blocks + self._tail

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return self._rows

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for numbers, statuses in self._all_blocks():
            for values, status in zip(numbers.tolist(), statuses):
                yield _row(values, status)

    def __getitem__(self, index: int) -> dict[str, Any]:
        position = int(index) + (self._rows if int(index) < 0 else 0)
        if not 0 <= position < self._rows:
            raise IndexError(f"history row {index} of {self._rows}")
        for numbers, statuses in self._all_blocks():
            if position < len(statuses):
                return _row(numbers[position].tolist(), statuses[position])
            position -= len(statuses)
        raise IndexError(index)  # (not reached)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (History, list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"History({self._rows:,} rows)"

    def _numbers(self) -> tuple[np.ndarray, list[str]]:
        blocks = self._all_blocks()
        if not blocks:
            return np.zeros((0, len(NUMBER_COLUMNS))), []
        numbers = blocks[0][0] if len(blocks) == 1 else np.concatenate([b[0] for b in blocks])
        return numbers, [s for b in blocks for s in b[1]]

    def column(self, name: str) -> np.ndarray:
        """One column's values (numbers as float64; ``status`` as an object array)."""
        numbers, statuses = self._numbers()
        if name == "status":
            return np.array(statuses, dtype=object)
        return numbers[:, _POSITION[name]]

    def epochs(self) -> int:
        """How many distinct epochs the rows hold."""
        return int(len(np.unique(self.column("epoch")))) if self._rows else 0

    def frame(self) -> pd.DataFrame:
        """The rows as a DataFrame of :data:`HISTORY_COLUMNS` (whole-number columns as int64)."""
        numbers, statuses = self._numbers()
        data: dict[str, Any] = {}
        for name in HISTORY_COLUMNS:
            if name == "status":  # (the type pandas gives text read from rows of dicts)
                data[name] = list(statuses)
            else:
                values = numbers[:, _POSITION[name]]
                data[name] = values.astype(np.int64) if name in INTEGER_COLUMNS else values
        return pd.DataFrame(data, columns=HISTORY_COLUMNS)

    # ------------------------------------------------------------------ deriving
    def _where(self, keep: np.ndarray, numbers: np.ndarray, statuses: list[str]) -> "History":
        out = History()
        if keep.any():
            out._add(numbers[keep], tuple(s for s, k in zip(statuses, keep.tolist()) if k))
        return out

    def select_runs(self, new_run: Mapping[int, int]) -> "History":
        """The rows of the runs ``new_run`` names, renumbered by it."""
        numbers, statuses = self._numbers()
        runs = numbers[:, _POSITION["run"]].astype(np.int64)
        keep = np.isin(runs, np.fromiter(new_run.keys(), dtype=np.int64, count=len(new_run)))
        out = self._where(keep, numbers.copy(), statuses)
        for numbers_out, _ in out._all_blocks():
            numbers_out[:, _POSITION["run"]] = [new_run[int(r)] for r in numbers_out[:, _POSITION["run"]]]
        return out

    def shifted(self, epochs: int) -> "History":
        """The rows with ``epochs`` added to their epoch."""
        numbers, statuses = self._numbers()
        numbers = numbers.copy()
        numbers[:, _POSITION["epoch"]] += int(epochs)
        out = History()
        if len(statuses):
            out._add(numbers, tuple(statuses))
        return out

    def until(self, epoch: int) -> "History":
        """The rows of epochs up to ``epoch``."""
        numbers, statuses = self._numbers()
        return self._where(numbers[:, _POSITION["epoch"]] <= int(epoch), numbers, statuses)


def _row(values: list[float], status: str) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name, value, whole in zip(NUMBER_COLUMNS, values, _INTEGER.tolist()):
        row[name] = int(value) if whole else value
    row["status"] = status
    return {name: row[name] for name in HISTORY_COLUMNS}
