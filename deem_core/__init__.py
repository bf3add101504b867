"""DEEM Studio's engine: aggregate many workers' labels with DEEM (deep energy-based unsupervised
ensemble model). No UI code lives here; the dashboard and the ``deem`` command call into it."""

from deem_core.data.annotations import AnnotationSet, DataError
from deem_core.methods.deem import DEEM, DEFAULT_LR, NotFittedError

__all__ = ["AnnotationSet", "DataError", "DEEM", "DEFAULT_LR", "NotFittedError"]
__version__ = "0.1.0"
