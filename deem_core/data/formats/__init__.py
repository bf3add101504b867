"""Input and output formats: files -> :class:`~deem_core.data.annotations.AnnotationSet`, labels -> files.

Inputs (``read_annotations`` / ``read_dataset``; the format is detected, ``format=`` forces it)
--------------------------------------------------------------------------------------------
=====================  =====================================================================================
``long``               CSV/TSV/Parquet/JSON records, one answer per row: ``task, worker, label`` (or
                       ``prob_<class>`` soft labels); columns are recognised by name (task, item, id ...;
                       worker, annotator, rater, user ...; label, answer, class ...)
``wide``               ``task`` + one column per worker (header = the worker's name; empty = no answer)
``per_annotator``      one file per worker ``task, label``; the worker is named after the file
``mturk``              Amazon Mechanical Turk batch results: ``WorkerId``; the ``Input.*`` column(s) are the
                       task (several: the one named like a task id, else their combination, or choose one); an
                       ``Answer.*`` field is the label
                       (several: the one named like a label, else the one with the fewest distinct answers in
                       the first rows, or choose); checkbox groups ``Answer.<field>.<option>`` (true/false)
                       become one label (several ticked: skipped); the JSON column ``Answer.taskAnswers``
                       (crowd-html-elements forms) is read as its fields; ``AssignmentStatus`` Rejected excluded
``toloka``             Toloka results TSV: ``INPUT:*`` task, ``OUTPUT:<field>`` label, ``ASSIGNMENT:worker_id``
                       worker, ``GOLDEN:<field>`` gold labels; rejected, skipped and expired assignments excluded
``label_studio``       Label Studio JSON export (see :mod:`.labelstudio`): annotations, ground truth -> gold,
                       predictions -> workers named by ``model_version``, cancelled skipped
``label_studio_min``   Label Studio JSON-MIN export (one record per annotation)
``label_studio_csv``   Label Studio CSV export (one row per annotation); a cell with several choices is skipped
=====================  =====================================================================================

Containers are recognised by content: gzip (magic bytes, any name), Parquet (``PAR1``; read with pyarrow,
only the needed columns), JSON (a list of objects or JSON Lines, streamed), else CSV text (see
:mod:`.tables`, decoding in :mod:`.text`). Every file of one call must be read as the same format.
Whatever is skipped is counted in ``AnnotationSet.warnings``; a problem that cannot be fixed raises
:class:`~deem_core.data.annotations.DataError` naming the file and, where it applies, the line and column.

Values (:mod:`.values`): each role is typed over all its values (integers when every value is a canonical
integer, else text); one set of missing-label spellings for annotations and truth files alike.
Limits (:mod:`.limits`): decompressed bytes and rows, enforced while streaming.
Outputs (:mod:`.writers`): CSV (spreadsheet-safe), Parquet, JSON records, Label Studio predictions.
"""

from deem_core.data.formats.limits import Limits
from deem_core.data.formats.reading import (
    FORMATS, Preview, Reading, align_truth, detect_format, preview, read_annotations, read_dataset, read_table,
    read_truth,
)
from deem_core.data.formats.values import MISSING_LABELS

__all__ = [
    "FORMATS", "Limits", "MISSING_LABELS", "Preview", "Reading", "align_truth", "detect_format", "preview",
    "read_annotations", "read_dataset", "read_table", "read_truth",
]
