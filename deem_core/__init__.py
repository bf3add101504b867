"""DEEM Studio's engine: aggregate many workers' labels with DEEM (deep energy-based unsupervised
ensemble model). No UI code lives here; the dashboard and the ``deem`` command call into it.

The names below are imported on first use (PEP 562), so that ``import deem_core.cli`` (``deem --help``,
``deem --version``) does not load torch, scipy and pandas."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["AnnotationSet", "DataError", "DEEM", "DEFAULT_LR", "DependenceWarning", "FallbackWarning", "LabelWarning",
           "NewTasksWarning", "NotFittedError"]
__version__ = "0.1.0"

_LAZY = {"AnnotationSet": "deem_core.data.annotations", "DataError": "deem_core.data.annotations",
         "DEEM": "deem_core.methods.deem", "DEFAULT_LR": "deem_core.methods.deem",
         "NotFittedError": "deem_core.methods.deem",
         # the warnings a fit or a prediction gives, to filter them (walkthrough 113: importable from the module only)
         **dict.fromkeys(("DependenceWarning", "FallbackWarning", "LabelWarning", "NewTasksWarning"),
                         "deem_core.methods.deem")}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'deem_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
