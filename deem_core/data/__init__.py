"""Data: reading annotation files, the encoded annotation set, and writing results.

* :mod:`.annotations` — :class:`AnnotationSet` (the encoded answers) and :class:`DataError`;
* :mod:`.readers` — file readers (long, wide, one file per worker, soft labels) and truth files;
* :mod:`.export` — atomic writers and spreadsheet-safe tables.
"""

from deem_core.data.annotations import AnnotationSet, DataError

__all__ = ["AnnotationSet", "DataError"]
