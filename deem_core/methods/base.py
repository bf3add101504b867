"""The one interface every aggregation method implements (crowd-kit / scikit-learn conventions).

* ``fit(data, gold=None)`` learns from the answers (a long DataFrame ``task, worker, label`` or an
  :class:`~deem_core.data.annotations.AnnotationSet`) and returns ``self``; ``gold`` (task -> label) is
  used by methods whose registry entry says ``uses_gold`` and ignored by the others;
* ``labels_``: the aggregated label per task (pd.Series indexed by ``task``, original label values);
* ``predict_proba()``: tasks x classes probabilities (rows sum to 1; a method without probabilities
  returns the one-hot matrix of its labels);
* ``results_frame()``: the table every writer shares (``task`` index, ``label``, ``confidence``,
  ``p_<class>`` per class; see :func:`deem_core.data.export.label_table`).

Hyperparameters are keyword arguments of ``__init__`` stored as given; fitted state ends in ``_``.
Register a method in :mod:`deem_core.methods.registry` to make it appear everywhere.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import pandas as pd

__all__ = ["Aggregator", "defaults_of"]


def defaults_of(function: Callable[..., Any]) -> dict[str, Any]:
    """The keyword defaults of a function or class signature: the one source of every default value that
    the command line, the dashboard forms and the job configurations show."""
    return {name: p.default for name, p in inspect.signature(function).parameters.items()
            if p.default is not inspect.Parameter.empty}


class Aggregator:
    """Base class of the aggregation methods (see the module docstring for the contract)."""

    labels_: pd.Series

    def fit(self, data: Any, gold: Any = None) -> "Aggregator":
        raise NotImplementedError

    def predict_proba(self) -> pd.DataFrame:
        raise NotImplementedError

    def results_frame(self) -> pd.DataFrame:
        raise NotImplementedError

    def fit_predict(self, data: Any, gold: Any = None) -> pd.Series:
        """``fit(data, gold)`` then the aggregated labels."""
        return self.fit(data, gold=gold).labels_.copy()
