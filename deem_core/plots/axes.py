"""Axis helpers shared by the figures of workers, tasks and classes."""

from __future__ import annotations

from typing import Any

__all__ = ["category_axes", "plain_exponents"]


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


def plain_exponents(figure: Any) -> Any:
    """``figure`` (in place) with small and large numbers on its axes and colour bars written as powers of ten
    (5×10⁻⁵) instead of plotly's default SI prefixes: a mutual-information scale read "50μ" (forty-second session's
    read), and "2G" for two billion. The pages' charts and the report's go through this."""
    figure.update_xaxes(exponentformat="power")
    figure.update_yaxes(exponentformat="power")
    for trace in figure.data:
        if "colorbar" in trace:
            trace.colorbar.exponentformat = "power"
        marker = getattr(trace, "marker", None)
        if marker is not None and "colorbar" in marker:
            marker.colorbar.exponentformat = "power"
    return figure
