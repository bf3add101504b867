"""Errors shared by every layer of the engine (this module imports nothing, so any module may use it)."""

from __future__ import annotations

__all__ = ["NotFittedError"]


class NotFittedError(RuntimeError):
    """An estimator was used before ``fit``."""
