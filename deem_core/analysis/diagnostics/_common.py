"""Helpers shared by the diagnostics: align data with a fitted model, usable runs, class groups."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from deem_core.data.annotations import AnnotationSet, DataError, as_annotation_set
from deem_core.data.text import counted
from deem_core.errors import NotFittedError

GOLD_SOURCE = "gold labels"
PREDICTED_SOURCE = "DEEM predictions"


def returned_reference(model) -> str | None:
    """The reference (e.g. "cluster-weighted Dawid-Skene") whose labels a fitted DEEM holds as a network of no layers
    when its safety rule returned it instead of a trained candidate; None for a trained model."""
    from deem_core.analysis.selection import safety_rule_reference  # noqa: PLC0415 - (selection imports much)

    return safety_rule_reference(getattr(model, "fallback_", None))


def predictions_source(model) -> str:
    """Where a model's predicted classes come from, in words: "DEEM predictions", naming the returned reference's
    labels when the safety rule returned one (they read "DEEM predictions" for cluster-weighted Dawid-Skene's;
    walkthrough, eleventh session)."""
    returned = returned_reference(model)
    return PREDICTED_SOURCE + (f" ({RETURNED_HEAD}{returned}{RETURNED_TAIL})" if returned else "")


#: how :func:`predictions_source` names a returned reference's labels, around the reference's name
RETURNED_HEAD, RETURNED_TAIL = "the labels of ", ", returned by the safety rule"


def short_class_source(source: str) -> str:
    """A class source (:func:`predictions_source`, :data:`GOLD_SOURCE`) in few words, for a chart's subtitle:
    "cluster-weighted Dawid-Skene (safety rule)" where the safety rule's reference gave the labels (the subtitles
    said "DEEM predictions" of them, cut before the bracket that named it; walkthrough 131)."""
    head, _, rest = str(source).partition(f" ({RETURNED_HEAD}")
    if rest.endswith(f"{RETURNED_TAIL})"):
        return f"{rest[:-len(RETURNED_TAIL) - 1]} (safety rule)"
    return head


def check_fitted(model) -> None:
    if not hasattr(model, "network_"):
        raise NotFittedError("this DEEM model is not fitted yet: call fit(annotations) first")


def prepare(model, data: Any) -> AnnotationSet:
    """``data`` encoded with the model's workers and classes (columns/codes the network expects)."""
    check_fitted(model)
    if isinstance(data, pd.DataFrame):
        try:
            encoded = as_annotation_set(data, on_conflict=getattr(model, "on_conflict", "error"))
        except DataError:
            encoded = None
        if encoded is not None and _aligned(model, encoded):
            return encoded
        return model.encode(data)
    if isinstance(data, AnnotationSet):
        if _aligned(model, data):
            return data
        return model.encode(data)
    raise TypeError(f"expected a long DataFrame (task, worker, label) or an AnnotationSet, got {type(data).__name__}")


def _aligned(model, data: AnnotationSet) -> bool:
    return list(data.workers) == list(model.workers_) and list(data.classes) == list(model.classes_)


def usable_runs(model) -> list[int]:
    """Runs that did not diverge (all runs if every one diverged), as the estimator's consensus uses."""
    status = list(getattr(model, "run_status_", []))
    runs = [r for r, s in enumerate(status) if s != "diverged"]
    return runs or list(range(model.network_.n_runs))


def consensus_posterior(model, data: AnnotationSet) -> np.ndarray:
    """DEEM's posterior (n, K) in class order for ``data``, computed by its network: the stored one of a model file
    was read as it was, and a made-up one (flipped classes) was diagnosed as the model's (attack round 28); on the
    training set the two are equal (measured on three settings: 0.0 apart)."""
    mapped = model.run_posteriors(data)  # (R, n, K)
    return mapped[usable_runs(model)].mean(axis=0)


def gold_codes(model, data: AnnotationSet, gold: Any) -> np.ndarray | None:
    """Gold labels (Series task -> label, or a ``task,truth`` frame) as (n,) class codes, -1 = unknown."""
    if gold is None:
        return None
    return model.gold_codes(data, gold)


def class_groups(model, data: AnnotationSet, gold: Any = None) -> tuple[np.ndarray, str, list[str]]:
    """Class code of every task (n,) int64 (-1 = left out), where it came from, and notes for the user."""
    notes: list[str] = []
    codes = gold_codes(model, data, gold)
    if codes is not None:
        known = int((codes >= 0).sum())
        if known == 0:
            raise DataError("gold labels: none of the tasks has a gold label")
        if known < len(codes):
            # (a gold label that is no class counts here too: "37 task(s) without a gold label" read wrong of a file
            # whose 37 labels were misspelled classes; walkthrough 91)
            missing = len(codes) - known
            notes.append(f"{counted(missing, 'task')} without a gold label among the classes "
                         f"{'is' if missing == 1 else 'are'} left out of the class groups")
        return codes, GOLD_SOURCE, notes
    return consensus_posterior(model, data).argmax(axis=1).astype(np.int64), predictions_source(model), notes
