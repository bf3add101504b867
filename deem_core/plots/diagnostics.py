"""Plotly figures of the diagnostics (UI-agnostic: the dashboard and ``report.html`` both use them).

Every function takes the result objects of :mod:`deem_core.analysis.diagnostics` (or plain DataFrames) and
returns a ``plotly.graph_objects.Figure``; nothing here imports a UI library.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from deem_core.data.text import middle_cut, natural_positions
from deem_core.plots.axes import MAX_NAMED_TICKS, TICK_CHARS, category_axes, cut_ticks

__all__ = ["confusion_heatmap", "importance_bars", "mi_heatmaps", "mi_scale_max", "mi_summary_figure", "ordered_importance",
           "quality_table_figure"]

MI_COLORSCALE = "Viridis"
EXPERT_COLOR = "#d62728"
WORKER_COLOR = "#1f77b4"


def mi_scale_max(result) -> float:
    """Largest off-diagonal MI over every layer and class (the shared colour scale's top)."""
    off = result.off_diagonal()
    return float(np.nanmax(off)) if np.isfinite(off).any() else 1.0


#: workers past which the layers' heatmaps are drawn one above the other
STACK_ABOVE = 40
#: workers of an importance panel up to which every name is drawn (in a 9 px font)
MAX_EVERY_NAME = 100
#: the colour scale's top (nats) where every drawn mutual information is 0
EMPTY_MI_SCALE = 0.1
#: workers a heatmap draws at most (those with the most tasks in common with the others in the class): 2,000
#: workers x 3 layers made 236 MB of chart, more than a server sends (attack round 6), and a few px per cell
MI_HEATMAP_MAX_WORKERS = 150


def mi_heatmaps(result, class_value: Any, zmax: float | None = None, show_diagonal: bool = False,
                max_workers: int = MI_HEATMAP_MAX_WORKERS) -> go.Figure:
    """One d x d heatmap per layer (input left, iRBM input right) for the tasks of one class.

    All panels share one colour scale from 0 to ``zmax`` (default: the largest off-diagonal MI over every
    layer *and class*, so switching classes keeps the scale). The diagonal (each worker's entropy) is
    blank unless ``show_diagonal``; skipped pairs (too few common tasks) are blank too. Beyond ``max_workers``
    workers only those with the most tasks in common with the others are drawn, and the subtitle says so.
    """
    c = list(result.classes).index(class_value)
    values = result.mi if show_diagonal else result.off_diagonal()
    top = mi_scale_max(result) if zmax is None else float(zmax)
    # every value 0 (or none): a scale from 0 up, not plotly's -0.4 to 0.4 around an empty range (mutual information
    # is never negative; walkthrough 124)
    top = top if np.isfinite(top) and top > 0 else EMPTY_MI_SCALE
    n_panels = values.shape[0]
    # short panel titles ("Layer 2"), what the first and the last are in the subtitle: "Layer 1Layer 2 (iRBM input)"
    # ran together at 900 px (walkthrough, ninth session)
    titles = [str(name).split(" (")[0] for name in result.layers]
    roles = "; ".join(f"{short}: {str(name).split(' (', 1)[1].rstrip(')')}" for short, name in zip(titles, result.layers)
                      if " (" in str(name))
    order = natural_positions(result.workers)  # w2 before w10 (text order put w10, w11, ... first; walkthrough)
    cut = ""
    if len(order) > max_workers:
        shared = np.asarray(result.n_common[c], dtype=np.float64).sum(axis=1)
        kept = set(np.argsort(-shared, kind="stable")[:max_workers].tolist())
        order = [i for i in order if i in kept]
        cut = f" · the {max_workers:,} of {len(result.workers):,} workers with the most tasks in common (all in the CSV)"
    workers = [str(result.workers[i]) for i in order]
    # many workers: the layers one above the other, each as wide as the page (side by side, 105 workers made cells
    # 3 px wide and 20 px high; walkthrough 112)
    stacked = n_panels > 1 and len(workers) > STACK_ABOVE
    # room below each panel for its names turned by 60 degrees, the cells keeping their size: a fixed height left
    # the plot area to plotly's margins, and at 900 px a 30-character name ran off the chart's edge, the heatmaps
    # 120 px high (walkthrough 127)
    longest = max((min(len(name), TICK_CHARS) for name in workers), default=0)
    below = int(TICK_LABEL_CHAR_PX * (9 / 12 if stacked else 1.0) * np.sin(np.radians(60)) * longest) + 20
    cells = 12 * len(workers)  # one stacked panel's height
    gap = below + 40  # between stacked panels: the names of the one above and the title of the next
    fig = (make_subplots(rows=n_panels, cols=1, subplot_titles=titles,
                         vertical_spacing=gap / (n_panels * cells + (n_panels - 1) * gap)) if stacked
           else make_subplots(rows=1, cols=n_panels, subplot_titles=titles, horizontal_spacing=0.04))
    both = np.ix_(order, order)
    common = result.n_common[c][both]
    def where(layer: int) -> dict[str, int]:
        return {"row": layer + 1, "col": 1} if stacked else {"row": 1, "col": layer + 1}

    for layer in range(n_panels):
        z = values[layer, c][both]
        # a skipped pair says why ("MI NaN nats" stood on its cell; walkthrough 32)
        said = np.where(np.isfinite(z), np.char.add(np.char.add("MI ", np.char.mod("%.3f", np.nan_to_num(z))),
                                                       " nats"),
                        f"skipped: fewer than {result.min_common} common tasks").astype(object)
        if not show_diagonal:
            np.fill_diagonal(said, "the worker itself (its entropy: the toggle above)")
        fig.add_trace(go.Heatmap(
            z=z, x=workers, y=workers, coloraxis="coloraxis", text=said, customdata=common,
            hovertemplate="%{y} / %{x}<br>%{text}<br>%{customdata} common tasks<extra></extra>"),
            **where(layer))
        fig.update_yaxes(autorange="reversed", showticklabels=(layer == 0 or stacked), **where(layer))
        fig.update_xaxes(tickangle=-60, **where(layer))
        category_axes(fig, **where(layer))  # one cell per worker, ids 200 ... 1766 too (walkthrough 67)
        cut_ticks(fig, workers, y=True, **where(layer))  # (long names took the chart; walkthrough 107)
        if stacked:  # every worker named, in a smaller font (Plotly named every other of 48 in rows of 12 px, a row
            # between two names; walkthrough 122)
            fig.update_yaxes(dtick=1, tickfont={"size": 9}, **where(layer))
            fig.update_xaxes(dtick=1, tickfont={"size": 9}, **where(layer))
    fig.update_layout(
        coloraxis={"colorscale": MI_COLORSCALE, "cmin": 0.0, "cmax": top, "colorbar": {"title": {"text": "MI (nats)"}}},
        # a short title and the details below it: one long line was cut at 900 px
        title={"text": f"Mutual information between workers, class {middle_cut(str(class_value), TITLE_CHARS)}",
               "subtitle": {"text": f"{int(result.class_counts[c])} tasks, classes from {short_source(result)}"
                                    + (f" · {roles}" if roles else "") + cut}},
        height=(n_panels * cells + (n_panels - 1) * gap + 150 + below if stacked
                else max(360, 22 * len(workers) + 160) + below),
        width=(max(700, 12 * len(workers) + 200) if stacked else max(700, n_panels * (18 * len(workers) + 120))),
        margin={"l": 40, "r": 40, "t": 110, "b": 40 + below})
    return fig


def short_source(result) -> str:
    """Where a result's classes come from, without what the page says beside the chart in full: "DEEM predictions
    (the labels of cluster-weighted Dawid-Skene, returned by the safety rule)" ran the subtitles past the charts'
    edge at 900 px (walkthrough 126); "cluster-weighted Dawid-Skene (safety rule)" there."""
    from deem_core.analysis.diagnostics import short_class_source  # noqa: PLC0415

    return short_class_source(result.class_source)


def mi_summary_figure(result) -> go.Figure:
    """Max MI and Frobenius norm per layer (mean ± std over classes): the paper's Table 10 as a chart."""
    summary = result.summary()
    # short panel titles: at 900 px "Max MI (off-diagonal)" ran into the other (walkthrough 38)
    fig = make_subplots(rows=1, cols=2, subplot_titles=["Max MI", "Frobenius norm"])
    layers = [int(layer) for layer in summary["layer"]]
    for col, name in ((1, "max_mi"), (2, "frobenius")):
        # the bar below each mean stops at 0: neither can be negative (a mean of 0.02 ± 0.05 drew a bar to -0.03;
        # walkthrough 131)
        mean, std = summary[f"{name}_mean"], summary[f"{name}_std"]
        fig.add_trace(go.Scatter(x=layers, y=mean, mode="lines+markers",
                                 error_y={"type": "data", "array": std, "symmetric": False,
                                          "arrayminus": np.minimum(std, mean.clip(lower=0))}, name=name,
                                 hovertext=list(summary["layer_name"]), showlegend=False), row=1, col=col)
    # the layers by number, what the ends are in the first panel's axis title: the whole names ran into each other
    # at 900 px (walkthrough 35), and broken with "<br>" they showed the tag once the figure's strings were escaped
    # (walkthrough 38); the names themselves on hover
    last = max(layers) if layers else 0
    ends = "layer 0: the answers into the iRBM" if last == 0 else f"layer (0: answers, {last}: iRBM input)"
    fig.update_xaxes(title={"text": "layer"}, tickmode="array", tickvals=layers, ticktext=[str(x) for x in layers])
    fig.update_xaxes(title={"text": ends}, row=1, col=1)  # (said once: the two ran into each other at 900 px)
    fig.update_yaxes(rangemode="tozero")  # (from 0.88, a rise of 0.03 looked steep; walkthrough 50)
    fig.update_layout(title={"text": "Dependence between two workers per layer",
                             "subtitle": {"text": f"mean ± std over classes (bars cut at 0); classes from "
                                                      f"{short_source(result)}"}},
                      height=420, margin={"t": 115})
    return fig


def ordered_importance(table: pd.DataFrame, column: str = "importance", order: str = "name",
                       first: str | None = None) -> pd.DataFrame:
    """The importance table (rows ``subset, worker, ...``) in the order its chart draws the bars: by panel (in the order
    they come), and within each by ``order`` -- ``"name"``: natural order, as the heatmaps (w2 before w10; text order
    here, walkthrough 103); ``"importance"``: the ranking of panel ``first`` (the first panel when None) on ``column``,
    largest first, every panel in it, ties in natural order (bars in name order under "read it to rank workers" left
    80 workers to be ranked by eye; walkthrough 123). The chart and the page's table below it read this one order."""
    if order not in ("importance", "name"):
        raise ValueError(f"order must be 'importance' or 'name', not {order!r}")
    table = table.iloc[natural_positions(table["worker"].to_numpy())]
    panels = list(dict.fromkeys(table["subset"]))
    first = first if first in panels else (panels[0] if panels else None)
    lead = table[table["subset"] == first]
    if order == "importance":
        lead = lead.iloc[np.argsort(-lead[column].fillna(-np.inf).to_numpy(), kind="stable")]
    rank = {str(w): i for i, w in enumerate(lead["worker"])}
    keys = np.lexsort(([rank.get(str(w), len(rank)) for w in table["worker"]],
                       table["subset"].map({p: i for i, p in enumerate(panels)}).to_numpy()))
    return table.iloc[keys]


def importance_bars(importance, highlight: Sequence[Any] = (), subsets: Sequence[str] | None = None,
                    column: str = "importance", order: str = "name") -> go.Figure:
    """Fig. 5: worker importance on the selected tasks (left) and on the rest (right).

    importance: an :class:`~deem_core.analysis.diagnostics.ImportanceResult` or its ``table``. highlight: workers
    drawn in red (e.g. the experts). Without a subset the single ``all`` panel is drawn. column:
    ``importance`` (drop of p(decided class)) or ``importance_log_odds`` (drop of its log-odds, nats).
    order: ``"importance"`` (most important first, on the first panel; every panel in that order) or ``"name"``
    (natural order: w2 before w10). Error bars are one standard error.
    """
    table = importance.table if hasattr(importance, "table") else importance
    description = getattr(importance, "description", "")
    present = list(dict.fromkeys(table["subset"]))
    if subsets is None:
        subsets = [s for s in ("selected", "rest") if s in present] or ["all"]
    # (cut: a class named with 4,015 characters ran over the other panel's title; walkthrough 113)
    titles = {"selected": f"Selected: {middle_cut(description, TITLE_CHARS)}" if description else "Selected tasks",
              "rest": "Rest of the tasks", "all": "All tasks"}
    highlight = {str(h) for h in highlight}
    # many workers: the panels one above the other, each as wide as the page (109 bars a panel side by side, their
    # names ran into each other; walkthrough 113)
    stacked = len(subsets) > 1 and table["worker"].nunique() > STACK_ABOVE
    fig = (make_subplots(rows=len(subsets), cols=1, shared_yaxes=True, vertical_spacing=0.5 / len(subsets),
                         subplot_titles=[titles.get(s, s) for s in subsets]) if stacked else
           make_subplots(rows=1, cols=len(subsets), shared_yaxes=True,
                         subplot_titles=[titles.get(s, s) for s in subsets]))
    table = ordered_importance(table, column, order, subsets[0] if len(subsets) else None)
    for panel, name in enumerate(subsets, start=1):
        row, col = (panel, 1) if stacked else (1, panel)
        part = table[table["subset"] == name]
        workers = [str(w) for w in part["worker"]]
        error = "std_error" + column[len("importance"):]
        fig.add_trace(go.Bar(
            x=workers, y=part[column], marker_color=[EXPERT_COLOR if w in highlight else WORKER_COLOR for w in workers],
            error_y={"type": "data", "array": part[error].fillna(0.0) if error in part else None},
            customdata=part["n_answered"], showlegend=False,
            hovertemplate="%{x}<br>importance %{y:.4f}<br>%{customdata} answered tasks<extra></extra>"),
            row=row, col=col)
        fig.update_xaxes(tickangle=-60, row=row, col=col)
        category_axes(fig, y=False, row=row, col=col)  # one bar per worker, not at its id's number (walkthrough 67)
        cut_ticks(fig, workers, row=row, col=col)  # (40 names of 3,000 characters took the chart; walkthrough 107)
        if MAX_NAMED_TICKS < len(workers) <= MAX_EVERY_NAME and all(len(w) <= TICK_CHARS for w in workers):
            # every name, smaller: plotly drew every other one of 80 (walkthrough 123), so a bar could not be named
            fig.update_xaxes(dtick=1, tickfont={"size": 9}, row=row, col=col)
    unit = "log-odds (nats)" if column.endswith("log_odds") else "p(decided class)"
    # short: "mean drop of the decided class's log-odds (nats) when removed" ran past the plot's height into the
    # chart's title where long names took the room of the rotated ticks (walkthrough 105; a line break is escaped
    # with every title, walkthrough 106); the caption below says what the drop is
    for row in range(1, (len(subsets) if stacked else 1) + 1):
        fig.update_yaxes(title_text=f"mean drop in {unit}", row=row, col=1)
    fig.update_layout(title={"text": "Worker importance" + (" (log-odds)" if column.endswith("log_odds") else "")},
                      height=600 * len(subsets) if stacked else 470, bargap=0.2, margin={"b": 70})  # (the table's toolbar below covered the last
    # worker's name at 1400 px; walkthrough 31)
    return fig


def confusion_heatmap(matrix: pd.DataFrame, title: str | None = None, rows: str = "true class",
                      subtitle: str | None = None) -> go.Figure:
    """One worker's confusion matrix (``matrix``: rows = given label, columns = true class, as
    :meth:`QualityResult.confusion` gives it), drawn as a confusion against gold labels is: a row per true class, a
    column per label given, each row summing to 1 (the two were drawn transposed to each other; walkthrough 79).
    ``rows``: what the classes of the rows are (a model's labels: "true class" read as the truth; walkthrough 80)."""
    shown = matrix.T
    z = shown.to_numpy(dtype=float)
    x = [str(c) for c in shown.columns]
    y = [str(r) for r in shown.index]
    text = np.where(np.isfinite(z), np.vectorize(lambda v: f"{v:.2f}")(np.nan_to_num(z)), "")
    fig = go.Figure(go.Heatmap(z=z, x=x, y=y, zmin=0.0, zmax=1.0, colorscale="Blues", text=text,
                               texttemplate="%{text}", colorbar={"title": {"text": "P(given | row)"}},
                               hovertemplate=f"{rows} %{{y}}, given %{{x}}: %{{z:.3f}}<extra></extra>"))
    category_axes(fig)  # classes 0, 1, 5: three equal cells, not a number line
    cut_ticks(fig, x, y=False)  # (classes of 4,015 characters left the matrix 60 px wide; walkthrough 113)
    cut_ticks(fig, y, x=False, y=True)
    fig.update_xaxes(title_text="given label")
    fig.update_yaxes(title_text=rows, autorange="reversed")
    # tall enough for the rows' title to stand beside the cells: on three rows "class by DEEM's labels (from
    # cluster-weighted Dawid-Skene)" ran up over the chart's title (walkthrough 93); plotly's margins take 180 px
    shown_title = middle_cut(title, 2 * TITLE_CHARS) if title else "Confusion matrix"
    heading: dict = {"text": shown_title}
    if subtitle:
        heading["subtitle"] = {"text": subtitle}
    # wide enough for its title (the chart is 360 px wide on three classes, and at 900 px "...: given label against
    # DEEM's labels (from cluster-weighted Dawid-Ske" was cut at its edge; walkthrough 124)
    fig.update_layout(title=heading,
                      height=max(320, 40 * len(y) + 140, 180 + int(ROTATED_CHAR_PX * len(rows)) + 20),
                      width=max(360, 40 * len(x) + 200, int(TITLE_CHAR_PX * len(shown_title)) + 100,
                                int(SUBTITLE_CHAR_PX * len(subtitle or "")) + 100))
    return fig


#: characters of a user-given name a chart's title repeats (head and tail; the whole name in the pickers' and tables'
#: files): a worker named with 2,398 characters pushed "given label against DEEM's labels" off the chart (walkthrough
#: 113)
TITLE_CHARS = 60
#: the room one character of a chart's title and of its subtitle takes (plotly's 17 px and 13 px fonts; generous)
TITLE_CHAR_PX = 9
SUBTITLE_CHAR_PX = 7
#: the room one character of an axis title takes along the axis (plotly's 14 px font; a generous average)
ROTATED_CHAR_PX = 7.5
#: the room one character of a tick label takes along it (plotly's 12 px font, the pages' theme a little larger)
TICK_LABEL_CHAR_PX = 8


def quality_table_figure(table: pd.DataFrame, digits: int = 3) -> go.Figure:
    """The worker quality table as a plotly table (flagged rows shaded)."""
    shown = table.copy()
    for column in shown.columns:
        if pd.api.types.is_float_dtype(shown[column]):
            shown[column] = shown[column].round(digits)
    flags = shown["flag"].astype(str) if "flag" in shown else pd.Series(["ok"] * len(shown))
    fill = ["#fde0dd" if f == "likely spammer" else "#fff3cd" if f != "ok" else "white" for f in flags]
    fig = go.Figure(go.Table(
        header={"values": [str(c) for c in shown.columns], "fill_color": "#e8e8e8", "align": "left"},
        cells={"values": [shown[c].astype(str).tolist() for c in shown.columns], "fill_color": [fill] * len(shown.columns),
               "align": "left"}))
    fig.update_layout(title={"text": "Worker quality"}, height=min(1200, 60 + 28 * (len(shown) + 2)),
                      margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig
