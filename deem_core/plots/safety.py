"""Plotly figures that show user strings as text: :func:`escape_figure`.

Plotly draws its labels with a small HTML subset (``<b>``, ``<br>``, ``<a href=...>`` ...) and decodes
entities, so a worker named ``<a href="http://x">me</a>`` becomes a live link in a tick label, a legend, a
hover box, a table cell or a subplot title. :func:`escape_figure` rewrites every *displayed string* of a
finished figure with :func:`deem_core.data.text.html_text` (``&`` ``<`` ``>`` as entities, control characters
escaped): plotly then shows exactly the characters of the name. Numbers are left alone (no axis changes type).

Templates (``hovertemplate``, ``texttemplate``) are code written by the figure builders and are not touched;
what they substitute (``%{x}``, ``%{customdata}``) is data, which is escaped. The builders therefore put no
markup in titles, names or labels (they would be shown as text) and never escape data themselves (it would be
escaped twice): the dashboard calls this once per chart (``pages/common.py: plotly_chart``) and
``report.html`` once per figure.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deem_core.data.text import html_text

__all__ = ["escape_figure", "escape_values"]

#: trace properties that hold displayed text (data arrays included: axis ticks and hover boxes show them)
_TRACE_PROPS = ("x", "y", "z", "text", "hovertext", "name", "labels", "customdata", "parents", "ids")
#: nested trace properties (a path of attribute names)
_TRACE_PATHS = (("header", "values"), ("cells", "values"), ("legendgrouptitle", "text"),
                ("colorbar", "title", "text"), ("marker", "colorbar", "title", "text"), ("title", "text"))
_LAYOUT_PATHS = (("title", "text"), ("title", "subtitle", "text"), ("legend", "title", "text"),
                 ("coloraxis", "colorbar", "title", "text"))


def _needs(text: str) -> bool:
    return "&" in text or "<" in text or ">" in text or not text.isprintable()


def escape_values(value: Any) -> Any:
    """The same value with every string in it (scalars, lists, tuples, numpy arrays) made safe for plotly."""
    if isinstance(value, str):
        return html_text(value) if _needs(value) else value
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "US":
            value = value.astype(object)
        if value.dtype.kind != "O":
            return value  # numbers, booleans, dates: nothing to escape
        out = np.empty(value.shape, dtype=object)
        for index, item in np.ndenumerate(value):
            out[index] = escape_values(item)
        return out
    if isinstance(value, (list, tuple)):
        if not any(isinstance(v, (str, list, tuple, np.ndarray)) for v in value):
            return value
        return type(value)(escape_values(v) for v in value)
    return value


def _changed(before: Any, after: Any) -> bool:
    if before is after:
        return False
    if isinstance(before, np.ndarray) or isinstance(after, np.ndarray):
        return True
    return before != after


def _escape_path(obj: Any, path: tuple[str, ...]) -> None:
    for name in path[:-1]:
        if name not in obj:  # not a property of this trace type (cheap; a failed lookup builds a long error)
            return
        obj = obj[name]
        if obj is None:
            return
    if path[-1] not in obj:
        return
    value = obj[path[-1]]
    if value is None:
        return
    safe = escape_values(value)
    if _changed(value, safe):
        obj[path[-1]] = safe


def escape_figure(figure):
    """Make every displayed string of a plotly figure literal text (in place); returns the figure."""
    for trace in figure.data:
        for prop in _TRACE_PROPS:
            _escape_path(trace, (prop,))
        for path in _TRACE_PATHS:
            _escape_path(trace, path)
    layout = figure.layout
    for path in _LAYOUT_PATHS:
        _escape_path(layout, path)
    for select in (figure.select_xaxes, figure.select_yaxes):
        for axis in select():
            _escape_path(axis, ("title", "text"))
            _escape_path(axis, ("ticktext",))
            _escape_path(axis, ("tickvals",))  # (the categories they name, escaped as the trace's x and y are)
    annotations = layout.annotations or ()
    for annotation in annotations:
        _escape_path(annotation, ("text",))
    return figure
