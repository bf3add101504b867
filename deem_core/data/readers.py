"""Reading annotation files and truth files (kept as the import path used across the project).

The readers live in :mod:`deem_core.data.formats` (formats, rules and limits are described there)."""

from deem_core.data.formats import (
    FORMATS, MISSING_LABELS, Limits, Preview, Reading, align_truth, detect_format, preview, read_annotations,
    read_dataset, read_table, read_truth,
)
from deem_core.data.formats.dialects import LAYOUTS, SOFT_PREFIX, SYNONYMS

__all__ = [
    "FORMATS", "LAYOUTS", "Limits", "MISSING_LABELS", "Preview", "Reading", "SOFT_PREFIX", "SYNONYMS", "align_truth",
    "detect_format", "preview", "read_annotations", "read_dataset", "read_table", "read_truth",
]
