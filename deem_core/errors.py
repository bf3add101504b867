"""Errors shared by every layer of the engine (this module imports only scikit-learn's exceptions, so any module
may use it)."""

from __future__ import annotations

from sklearn.exceptions import NotFittedError as _SklearnNotFitted

__all__ = ["NotFittedError"]


class NotFittedError(_SklearnNotFitted, RuntimeError):
    """An estimator was used before ``fit``: scikit-learn's ``NotFittedError`` (so code written for any
    scikit-learn estimator catches it), and a ``RuntimeError`` as it was before."""
