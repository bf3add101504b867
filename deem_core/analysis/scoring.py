"""The one accuracy rule used by every interface (CLI, dashboard, baselines table, benchmarks).

Accuracy = the share of the *scored tasks* whose aggregated label equals the truth, where the scored tasks
are the tasks that have a truth and belong to the aggregated data (``tasks``; by default the tasks that
``labels`` covers). A scored task without a label counts as wrong; a truth task that nobody annotated is
not scored (no method could label it). Labels compare as text, so ``1`` read from one file and ``"1"``
from another are the same label (the readers refuse data in which two labels print the same).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from deem_core.data.text import shortened

__all__ = ["accuracy", "accuracy_and_count", "accuracy_interval", "accuracy_intervals", "calibration", "left_out_text",
           "tie_luck", "tie_luck_text", "truth_of_classes", "truth_series"]


def truth_series(truth: Any) -> pd.Series:
    """Truth given as a Series (index task), a frame with columns ``task`` and ``truth`` (or one other
    column), a one-column frame indexed by task, or a dict."""
    if isinstance(truth, pd.Series):
        return truth
    if isinstance(truth, pd.DataFrame):
        if "task" in truth.columns:
            rest = [c for c in truth.columns if c != "task"]
            col = "truth" if "truth" in rest else (rest[0] if len(rest) == 1 else None)
            if col is None:
                raise ValueError("truth frame needs columns task and truth")
            return truth.set_index("task")[col]
        if truth.shape[1] == 1:
            return truth.iloc[:, 0]
        raise ValueError("truth frame needs columns task and truth")
    if isinstance(truth, Mapping):
        return pd.Series(dict(truth))
    raise TypeError("truth must be a Series (index task), a frame with task,truth, or a dict")


def truth_of_classes(truth: pd.Series, classes: Iterable) -> pd.Series:
    """``truth`` without the labels that are no class of the answers (compared as text), which no method can give:
    counted as every method's wrong answer, they took an accuracy from 0.853 to 0.640 (walkthrough 36). What was
    left out is counted in ``attrs["not_classes"]``, one of them kept in ``attrs["not_class"]``; those that are a
    class but for letter case are counted in ``attrs["case_only"]``, one kept with its class in
    ``attrs["case_example"]`` (only one example was named, and 'Cat' for 'cat' went unsaid; walkthrough 36)."""
    if truth is None or not len(truth):
        return truth
    text = truth.astype(str)
    names = [str(c) for c in classes]
    keep = text.isin(names)
    if bool(keep.all()):
        return truth
    kept = truth[keep].copy()
    left = text[~keep]
    folded = {name.casefold(): name for name in names}
    case = left[left.str.casefold().isin(folded)]
    kept.attrs.update(truth.attrs, not_classes=int(len(left)), not_class=str(left.iloc[0]), case_only=int(len(case)),
                      case_example=(str(case.iloc[0]), folded[case.iloc[0].casefold()]) if len(case) else None)
    return kept


def left_out_text(attrs: Mapping[str, Any]) -> str:
    """What :func:`truth_of_classes` left out, in words after a count: an example, and how many are a class but for
    letter case ("" when nothing was left out). One sentence for the Data page and ``deem aggregate --truth``."""
    from deem_core.data.annotations import odd_letters  # noqa: PLC0415

    if not attrs.get("not_classes"):
        return ""
    example = str(attrs.get("not_class", ""))
    said = f"e.g. “{shortened(example, 40)}”{odd_letters(example)}"  # (a look-alike letter named; attack round 30)
    case_only, n = int(attrs.get("case_only") or 0), int(attrs["not_classes"])
    if case_only and attrs.get("case_example"):
        given, name = attrs["case_example"]
        who = (("it differs" if n == 1 else "all of them differ") if case_only == n else
               f"{case_only:,} of them {'differs' if case_only == 1 else 'differ'}")
        said += f"; {who} from a class only in letter case: “{shortened(given, 40)}” for “{shortened(name, 40)}”"
    return said


def accuracy_and_count(labels: pd.Series, truth: Any, tasks: Iterable | None = None) -> tuple[float, int]:
    """(accuracy as a fraction in [0, 1], number of scored tasks); accuracy is NaN when no task is scored."""
    truth = truth_series(truth).dropna()
    if tasks is None and labels.index.is_unique:
        # one pass of the labels' hash table over the truth's tasks: Index.isin then reindex took 6.5 s a method on a
        # million text ids (the Results page scores every method; attack round 12)
        positions = labels.index.get_indexer(truth.index)
        known = positions >= 0
        truth = truth[known]
        if len(truth) == 0:
            return float("nan"), 0
        predicted = pd.Series(labels.to_numpy()[positions[known]], index=truth.index)
    else:
        universe = labels.index if tasks is None else pd.Index(tasks)
        truth = truth[truth.index.isin(universe)]
        if len(truth) == 0:
            return float("nan"), 0
        predicted = labels.reindex(truth.index)
    right = _right(predicted, truth)
    return float(np.mean(right)), int(len(truth))


def accuracy_interval(accuracy: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson's score interval (95% by default) of an ``accuracy`` measured on ``n`` tasks: what a few gold tasks
    say of it (walkthrough 79: 0.8167 on 60 gold tasks against 0.7667 on all 1,200, printed to four decimals with
    no word of how far 60 tasks can be off). (nan, nan) when nothing was scored."""
    low, high = accuracy_intervals(np.array([accuracy], dtype=np.float64), np.array([n or 0], dtype=np.float64), z)
    return float(low[0]), float(high[0])


def accuracy_intervals(accuracy: np.ndarray, n: np.ndarray, z: float = 1.959964) -> tuple[np.ndarray, np.ndarray]:
    """:func:`accuracy_interval` of arrays of accuracies and counts (NaN where a count is 0 or an accuracy NaN)."""
    p, n = np.asarray(accuracy, dtype=np.float64), np.asarray(n, dtype=np.float64)
    scored = (n > 0) & np.isfinite(p)
    p, n, z2 = np.where(scored, p, 0.5), np.where(scored, n, 1.0), z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return (np.where(scored, np.maximum(0.0, centre - half), np.nan),
            np.where(scored, np.minimum(1.0, centre + half), np.nan))


def tie_luck(data: Any, labels: pd.Series, truth: Any) -> dict[str, float] | None:
    """What majority vote's accuracy owes to its tie rule: on the scored tasks where two or more classes share the
    most answers, ``ties`` (how many), ``right`` (how many of ``labels``, majority vote's, equal the truth there) and
    ``expected`` (how many a pick at random among each task's tied classes would get right, on average). None when
    no scored task is a tie. (Majority vote led DEEM by 0.01 on 80 gold tasks where its class order won 9 of 12 ties;
    said nowhere beside the accuracies: walkthrough 82.) ``data`` is the :class:`AnnotationSet` the labels came from;
    ``labels`` is indexed by task."""
    truth = truth_series(truth).dropna()
    if not len(truth) or not data.n_tasks:
        return None
    positions = data.tasks.get_indexer(truth.index) if data.tasks.is_unique else np.full(len(truth), -1)
    tied = data.tied_tasks()
    keep = positions >= 0
    keep[keep] = tied[positions[keep]]
    if not keep.any():
        return None
    rows, gold = positions[keep], truth[keep]
    predicted = labels.reindex(gold.index) if labels.index.is_unique else pd.Series(np.nan, index=gold.index)
    right = int(_right(predicted, gold).sum())
    task, cls = data.most_voted_pairs()
    n_tied = np.bincount(task, minlength=data.n_tasks)
    names = pd.Index([str(c) for c in data.classes])
    gold_codes = names.get_indexer(gold.astype(str))
    # each tied gold task's classes: a hit where the gold class is among them, worth 1 / (how many tie)
    pair_keys = task * max(1, len(names)) + cls
    asked = rows * max(1, len(names)) + gold_codes
    hit = (gold_codes >= 0) & np.isin(asked, pair_keys)
    expected = float(np.sum(hit / np.maximum(n_tied[rows], 1)))
    return {"ties": int(keep.sum()), "right": right, "expected": expected}


def tie_luck_text(luck: Mapping[str, float], n_scored: int, scored: str = "gold tasks", percent: bool = False) -> str:
    """:func:`tie_luck` in one sentence for the pages and the CLI, beside majority vote's accuracy on ``n_scored``
    tasks (``scored``: what they are called there; ``percent``: the accuracy beside it is in percent, as the CLI's:
    "0.009" beside "74.50" read as a hundredth of a point; walkthrough 85)."""
    ties, right, expected = int(luck["ties"]), int(luck["right"]), float(luck["expected"])
    text = (f"majority vote is a tie on {ties:,} of the {n_scored:,} {scored}; its tie rule's order of the classes "
            f"picked the right label on {right:,} of them, where a pick at random among the tied labels would be right "
            f"on about {expected:,.1f}")
    gain = (right - expected) / max(1, n_scored)
    if abs(gain) >= 0.0005:
        # (a fraction beside the pages' fractions, with its points: "0.008" read as 0.008 points; walkthrough 86)
        # (the points from the fraction as shown: "0.002 (0.1 points)" for 1.5 of 1,000; walkthrough 87)
        size = (f"{100 * abs(gain):.1f} points" if percent else
                f"{round(abs(gain), 3):.3f} ({100 * round(abs(gain), 3):.1f} points)")
        text += (f": the order {'adds' if gain > 0 else 'takes'} about {size} "
                 f"{'to' if gain > 0 else 'from'} its accuracy, by chance rather than from the answers")
    return text


def _right(predicted: pd.Series, truth: pd.Series) -> np.ndarray:
    """The one rule of a right label, aligned by position: a label, equal to the truth as text."""
    return predicted.notna().to_numpy() & (predicted.astype(str).to_numpy() == truth.astype(str).to_numpy())


def calibration(labels: pd.Series, confidence: pd.Series, truth: Any,
                confident: float = 0.99) -> dict[str, float] | None:
    """How the confidences of ``labels`` hold on the tasks with a truth: ``tasks`` scored, ``accuracy``,
    ``mean_confidence``, ``wrong`` labels and ``wrong_confident`` (wrong with confidence at least ``confident``),
    ``hard`` (every confidence 1: labels without a measure of doubt). None when no task is scored. ``labels`` and
    ``confidence`` share their index (one row per task)."""
    truth = truth_series(truth).dropna()
    positions = labels.index.get_indexer(truth.index) if labels.index.is_unique else np.full(len(truth), -1)
    known = positions >= 0
    if not known.any():
        return None
    where = positions[known]
    sure = pd.to_numeric(confidence, errors="coerce").to_numpy(dtype=float)[where]
    right = _right(pd.Series(labels.to_numpy()[where]), truth[known])  # (accuracy's own rule)
    finite = np.isfinite(sure)
    return {"tasks": int(known.sum()), "accuracy": float(right.mean()),
            "mean_confidence": float(sure[finite].mean()) if finite.any() else float("nan"),
            "wrong": int((~right).sum()), "wrong_confident": int(((~right) & (sure >= confident)).sum()),
            "hard": bool(np.all(sure >= 1.0 - 1e-9))}


def accuracy(labels: pd.Series, truth: Any, tasks: Iterable | None = None) -> float:
    """Accuracy as a fraction in [0, 1] (NaN when no task is scored); see the module docstring for the rule."""
    return accuracy_and_count(labels, truth, tasks)[0]
