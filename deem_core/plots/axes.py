"""Axis helpers shared by the figures of workers, tasks and classes."""

from __future__ import annotations

from typing import Any

from deem_core.data.text import middle_cut

__all__ = ["TICK_CHARS", "category_axes", "cut_ticks", "plain_exponents"]


def category_axes(figure: Any, x: bool = True, y: bool = True, **where: Any) -> Any:
    """``figure`` with its x and/or y axes (those ``where`` selects, e.g. ``row=1, col=2``; all by default) drawn as
    categories: one equal cell or bar per worker, task or class, in the order the traces give them.

    Plotly reads ids that look like numbers (200, "1766") as a number line: 39 workers with ids from 200 to 1766
    made cells as wide as the gap to the next id, some 20 workers in a sliver and overlapping bars (walkthrough 67).
    """
    if x:
        figure.update_xaxes(type="category", **where)
    if y:
        figure.update_yaxes(type="category", **where)
    return figure


#: characters of a worker's, task's or class's name drawn as a tick label (the whole name on hover)
TICK_CHARS = 30


#: tick labels drawn at most on an axis of cut names (every n-th name past it): 105 names, each drawn, ran into one
#: grey smear (walkthrough 112)
MAX_NAMED_TICKS = 40


def cut_ticks(figure: Any, names: list[str], x: bool = True, y: bool = False, **where: Any) -> Any:
    """``figure`` with the category ticks of ``names`` drawn cut to :data:`TICK_CHARS` (head and tail), the
    categories themselves (and so the hover texts) whole: 40 worker names of 3,000 characters took the whole
    importance chart, its bars squeezed into a corner (walkthrough 107). Past :data:`MAX_NAMED_TICKS` names every
    n-th is drawn (as plotly thins names that fit). Nothing changes where every name fits."""
    if all(len(name) <= TICK_CHARS for name in names):
        return figure
    shown = list(names)[::-(-len(names) // MAX_NAMED_TICKS) or 1]
    ticks = {"tickmode": "array", "tickvals": shown, "ticktext": [middle_cut(n, TICK_CHARS) for n in shown]}
    if x:
        figure.update_xaxes(**ticks, **where)
    if y:
        figure.update_yaxes(**ticks, **where)
    return figure


def plain_exponents(figure: Any) -> Any:
    """``figure`` (in place) with small and large numbers on its axes and colour bars written as powers of ten
    (5×10⁻⁵) instead of plotly's default SI prefixes: a mutual-information scale read "50μ" (forty-second session's
    read), and "2G" for two billion. The pages' charts and the report's go through this."""
    figure.update_xaxes(exponentformat="power")
    figure.update_yaxes(exponentformat="power")
    figure.update_coloraxes(colorbar_exponentformat="power")  # (the shared colour axes of plotly express)
    for trace in figure.data:
        # only a colour bar that is drawn: setting one on a marker of one colour drew a stray colour bar beside every
        # bar and line chart (walkthrough 98; "colorbar" is a property of every marker, set or not)
        if trace.type in _SCALE_TRACES and trace.showscale is not False and trace.coloraxis is None:
            trace.colorbar.exponentformat = "power"
        marker = getattr(trace, "marker", None)
        if marker is not None and getattr(marker, "showscale", None) is True:
            marker.colorbar.exponentformat = "power"
    return figure


#: traces that draw a colour bar of their own unless told not to
_SCALE_TRACES = frozenset({"heatmap", "histogram2d", "contour", "histogram2dcontour", "surface", "choropleth",
                           "densitymapbox", "densitymap"})
