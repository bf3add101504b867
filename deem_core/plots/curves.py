"""Plotly figures of DEEM Studio, shared by the ``deem`` command (HTML files) and the dashboard.

Every function here takes plain data (DataFrames, numbers) and returns a ``plotly.graph_objects.Figure``;
nothing here knows about Streamlit or files, so the same figure serves the CLI and the dashboard.

Energy curves (App. G.4.1): :func:`energy_curves_figure`.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from deem_core.analysis.recommend import ema, lr_key
from deem_core.methods.registry import display_name

__all__ = ["ENERGY_METRICS", "METRIC_TITLES", "energy_curves_figure", "lr_colors", "training_curves_figure"]

ENERGY_METRICS = ("energy_difference", "positive_energy", "negative_energy")
METRIC_TITLES = {
    "energy_difference": "Energy difference (positive - negative)",
    "positive_energy": "Positive energy (data)",
    "negative_energy": "Negative energy (model samples)",
    "acceptance_rate": "Sampler acceptance rate",
    "changed_fraction": "Fraction of workers changed per sampler step",
    "n_predicted_classes": "Classes predicted (dead units below the reference)",
}
#: the metric's name in hover texts (never a column name such as ``energy_difference``)
METRIC_HOVER = {
    "energy_difference": "energy difference", "positive_energy": "positive energy",
    "negative_energy": "negative energy", "acceptance_rate": "acceptance rate",
    "changed_fraction": "workers changed", "n_predicted_classes": "classes predicted",
}
_COLORSCALE = "Viridis"


def lr_colors(lrs: Sequence[float]) -> dict[float, str]:
    """One colour per learning rate along a sequential scale by log(lr) (small = dark, large = light)."""
    values = sorted({float(x) for x in lrs})
    if len(values) == 1:
        return {values[0]: sample_colorscale(_COLORSCALE, [0.35])[0]}
    logs = np.log10(values)
    positions = (logs - logs.min()) / (logs.max() - logs.min())
    colors = sample_colorscale(_COLORSCALE, list(0.9 * positions))  # stop before the pale yellow end
    return dict(zip(values, colors))


def _same_lr(a: float | None, b: float) -> bool:
    return a is not None and math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)


#: the points an energy-curves figure draws in all, its lines' share each (at least LINE_MIN_POINTS): a page redraws
#: the live sweep's every second, and 16 viewers of a long sweep's curves slowed the sweep 5.7-fold (attack round 57)
CURVE_POINTS = 24_000
LINE_MIN_POINTS = 200


def thinned_positions(n: int, most: int) -> np.ndarray:
    """Positions of ``n`` points that keep at most about ``most`` evenly spaced, the first and the last among them."""
    if n <= most:
        return np.arange(n)
    step = -(-n // max(1, most - 1))
    return np.unique(np.append(np.arange(0, n, step), n - 1))


def energy_curves_figure(
    curves: pd.DataFrame,
    recommended_lr: float | None = None,
    smoothing: float | None = None,
    metrics: Sequence[str] = ("energy_difference",),
    selected_lr: float | None = None,
    title: str | None = None,
    recommended_word: str = "recommended",
    max_points: int = CURVE_POINTS,
) -> go.Figure:
    """Energy curves per learning rate: one subplot per metric (stacked, shared epoch axis).

    curves: rows ``run, lr, seed, epoch`` + the metric columns (e.g. ``SweepResult.curves``; a live
    snapshot with fewer epochs works too). smoothing: EMA alpha in [0, 1) (e.g. 0.9) applied to the
    drawn lines; the raw values stay as faint lines behind them. recommended_lr is drawn thick and
    marked "recommended" in the legend; selected_lr (a user's choice) is drawn thick and dashed and marked
    "picked". The legend lies below the chart, in rows, so it shows every learning rate whatever their
    number (a legend beside the chart scrolls and hides some); the epoch axis has whole-number ticks.
    max_points: the points drawn in all, each line's share of them evenly spaced (its first and last epochs kept);
    the smoothing and the value axes are computed on every epoch first.

    Every trace carries ``customdata`` rows ``[lr, seed]`` and ``meta = {"lr", "seed", "metric"}`` and
    is named ``"lr <lr>"`` (plus the seed when there are several), so a click on any point tells the
    caller which learning rate was picked (``points[0].customdata[0]``). Traces of one learning rate
    share a legend group: clicking its legend entry hides all its curves.
    """
    metrics = list(metrics)
    unknown = [m for m in metrics if m not in curves.columns]
    if unknown:
        raise ValueError(f"curves have no column(s) {unknown}; available: {list(curves.columns)}")
    if not metrics:
        raise ValueError("metrics is empty: name at least one column to draw")
    fig = make_subplots(rows=len(metrics), cols=1, shared_xaxes=True, vertical_spacing=0.07,
                        subplot_titles=[METRIC_TITLES.get(m, m) for m in metrics])
    if curves.empty:
        fig.update_layout(title=title or "No epochs recorded yet", template="plotly_white")
        return fig
    colors = lr_colors(curves["lr"].unique())
    several_seeds = curves["seed"].nunique() > 1
    shown_in_legend: set[str] = set()
    extents: dict[int, list[tuple[str, float, float]]] = {row: [] for row in range(1, len(metrics) + 1)}
    n_lines = curves.groupby(["lr", "seed"]).ngroups * len(metrics) * (2 if smoothing else 1)
    line_points = max(LINE_MIN_POINTS, max_points // max(1, n_lines))
    for (lr, seed), run_curves in curves.sort_values("epoch").groupby(["lr", "seed"], sort=True):
        lr, seed = float(lr), int(seed)
        key = lr_key(lr)
        recommended = _same_lr(recommended_lr, lr)
        selected = _same_lr(selected_lr, lr)
        marks = [m for m, on in ((recommended_word, recommended), ("picked", selected)) if on]
        name = f"lr {key}" + (f" (seed {seed})" if several_seeds else "") + (f" · {' & '.join(marks)}" if marks else "")
        width = 4.5 if recommended else (3.5 if selected else 1.6)
        dash = "dash" if (selected and not recommended) else "solid"
        every = run_curves["epoch"].to_numpy()
        kept = thinned_positions(len(every), line_points)
        epochs = every[kept]
        custom = np.column_stack([np.full(len(epochs), lr), np.full(len(epochs), seed)])
        for row, metric in enumerate(metrics, start=1):
            raw = run_curves[metric].to_numpy(dtype=float)
            meta = {"lr": lr, "seed": seed, "metric": metric}
            if smoothing:
                fig.add_trace(go.Scatter(
                    x=epochs, y=raw[kept], mode="lines", line={"color": colors[lr], "width": 1}, opacity=0.25,
                    name=name, legendgroup=key, showlegend=False, customdata=custom, meta=meta,
                    hoverinfo="skip"), row=row, col=1)
            values = ema(raw, smoothing) if smoothing else raw
            finite = values[np.isfinite(values)]
            if len(finite):  # (the drawn run's range, for the value axis)
                extents[row].append((f"lr {key}", float(finite.min()), float(finite.max())))
            fig.add_trace(go.Scatter(
                x=epochs, y=values[kept], mode="lines+markers" if len(epochs) == 1 else "lines",
                line={"color": colors[lr], "width": width, "dash": dash}, name=name, legendgroup=key,
                showlegend=key + str(seed) not in shown_in_legend, customdata=custom, meta=meta,
                hovertemplate=(f"learning rate {key}" + (f", seed {seed}" if several_seeds else "") +
                               f"<br>epoch %{{x}}<br>{METRIC_HOVER.get(metric, metric)} %{{y:.4g}}<extra></extra>")),
                row=row, col=1)
            shown_in_legend.add(key + str(seed))
    off_chart = _fit_value_axes(fig, extents)
    fig.update_xaxes(title_text="epoch", row=len(metrics), col=1)
    last_epoch = float(np.nanmax(curves["epoch"].to_numpy(dtype=float))) if len(curves) else 1.0
    # whole epochs only: plotly puts ticks at 0.5 steps on a short axis; a fixed step of 1 up to 10 epochs
    fig.update_xaxes(tickformat="d", dtick=1 if last_epoch <= 10 else None, rangemode="tozero" if last_epoch <= 1 else None)
    heading = {"text": title or "Energy curves per learning rate"}
    one = ", " not in off_chart  # (one curve "runs" and is seen "whole" as "it"; walkthrough 71)
    subtitle = ([f"EMA smoothing {smoothing:g}"] if smoothing and not title else []) + (
        [f"{off_chart} {'runs' if one else 'run'} off the value axis: double-click the chart to see "
         f"{'it' if one else 'them'} whole"] if off_chart else [])
    if subtitle:
        heading["subtitle"] = {"text": "; ".join(subtitle)}
    # the legend starts 64 px below the plot area, under the tick labels and the axis title (at -0.18 of the area
    # it covered both: walkthrough, ninth session); the bottom margin leaves it three rows
    height, top, bottom = max(420, 300 * len(metrics)), 90, 150
    fig.update_layout(title=heading, template="plotly_white", hovermode="closest", clickmode="event+select",
                      legend={"title": {"text": "learning rate "}, "orientation": "h", "yanchor": "top",
                              "y": -64 / (height - top - bottom), "x": 0.0},
                      margin={"t": top, "b": bottom}, height=height)
    return fig


#: a run's curve is left off the value axis when it reaches further than this many times the spread of the
#: typical run (median of the runs' lowest and highest values) beyond that typical range
OFF_AXIS_SPREADS = 3.0


def _fit_value_axes(fig: go.Figure, extents: dict[int, list[tuple[str, float, float]]]) -> str:
    """Each metric's value axis fitted to the typical runs: one rate that breaks down (energy difference to -40
    where the others move within 1) squeezed every other curve into one band (walkthrough 50). ``extents``: per
    subplot row, each drawn run's (name, lowest, highest) value. Returns the learning rates left (partly) off an
    axis, in words ("lr 1, lr 3"), or ""."""
    off: list[str] = []
    for row, runs in extents.items():
        if len(runs) < 3:  # (too few runs to say which is typical)
            continue
        keys = [key for key, _, _ in runs]
        lows_a, highs_a = np.array([low for _, low, _ in runs]), np.array([high for _, _, high in runs])
        low, high = float(np.median(lows_a)), float(np.median(highs_a))
        spread = max(high - low, 1e-9)
        inside = (lows_a >= low - OFF_AXIS_SPREADS * spread) & (highs_a <= high + OFF_AXIS_SPREADS * spread)
        if inside.all():
            continue
        bottom, top = float(lows_a[inside].min()), float(highs_a[inside].max())
        pad = 0.05 * max(top - bottom, 1e-9)
        fig.update_yaxes(range=[bottom - pad, top + pad], row=row, col=1)
        off += [key for key, kept in zip(keys, inside) if not kept and key not in off]
    return ", ".join(off)


#: how a start is named beside a curve
START_NAMES = {"ds": "Dawid-Skene", "mv": "majority vote"}


def _candidate_name(candidate: dict) -> str:
    """`` (Dawid-Skene start, 2 layers)`` for a candidate of a choice; empty for a run that is none."""
    start, layers = candidate.get("candidate_start"), candidate.get("candidate_layers")
    bits = [f"{START_NAMES.get(start, start)} start" if isinstance(start, str) else "",
            f"{int(layers)} layer{'s' if int(layers) != 1 else ''}" if pd.notna(layers) else ""]
    bits = [b for b in bits if b]
    return f" ({', '.join(bits)})" if bits else ""


def training_curves_figure(history: pd.DataFrame, max_points: int = 1000,
                           chosen: Mapping[str, tuple[Any, Any]] | None = None) -> go.Figure:
    """Energy difference per epoch of a training job's history (a ``method`` column, the training rows): one line
    per method, seed and candidate (start x depth of a choice, the ``candidate_*`` columns of its rows), at most
    ``max_points`` points per line. ``chosen``: per method, the (start, layers) its choice kept, which names a
    method's line that has no candidate columns (a finished training stores the kept candidate's curve: the live
    legend had named "DEEM (Dawid-Skene start, 1 layer)" and the finished one "DEEM", of the majority-vote start that
    was kept; walkthrough 75).

    Built trace by trace with plotly.graph_objects: ~10x cheaper than plotly.express here (measured 10 ms vs
    120 ms for 2 x 600 epochs). That matters: a dashboard redraws it every second in the server process, whose
    Python work competes with the training threads for the GIL. Grouped by method and seed alone, the candidates
    of a choice (same seed, same epochs) made one line jumping between them every epoch (seen in Chromium)."""
    frame = history.dropna(subset=["energy_difference"])
    several = frame["seed"].nunique() > 1
    keys = ["method", "seed"] + [c for c in ("candidate_start", "candidate_layers") if c in frame]
    fig = go.Figure()
    for values, part in frame.groupby(keys, sort=True, dropna=False):
        method, seed, *candidate = values
        step = max(1, -(-len(part) // max_points))
        part = part.iloc[::step]
        named = dict(zip(keys[2:], candidate))
        kept = (chosen or {}).get(str(method))
        if kept is not None and not any(isinstance(v, str) or pd.notna(v) for v in named.values()):
            named = {"candidate_start": kept[0], "candidate_layers": kept[1]}
        name = display_name(str(method)) + _candidate_name(named) + (f" seed {seed}" if several else "")
        fig.add_trace(go.Scatter(x=part["epoch"].to_numpy(), y=part["energy_difference"].to_numpy(), mode="lines",
                                 name=name, hovertemplate=f"{name}<br>epoch %{{x}}<br>energy difference "
                                                          f"%{{y:.4g}}<extra></extra>"))
    # (a legend also for one line: plotly hides it, and the kept candidate's name showed on hover only; walkthrough 76)
    fig.update_layout(height=320, margin={"t": 20, "b": 20}, legend={"title": {"text": ""}}, showlegend=True,
                      xaxis_title="epoch", yaxis_title="energy difference (pos. − neg.)")
    fig.update_xaxes(tickformat="d")
    return fig
