"""Data: reading annotation files, the encoded annotation set, and writing results.

* :mod:`.annotations` — :class:`AnnotationSet` (the encoded answers) and :class:`DataError`;
* :mod:`.readers` — file readers (long, wide, one file per worker, soft labels) and truth files;
* :mod:`.export` — atomic writers and spreadsheet-safe tables.

``AnnotationSet`` and ``DataError`` are imported on first use (PEP 562): importing a light module of this
package (``deem_core.data.text``, e.g. for ``deem --help``) does not load numpy and pandas.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AnnotationSet", "DataError"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from deem_core.data import annotations  # noqa: PLC0415

        value = getattr(annotations, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'deem_core.data' has no attribute {name!r}")
