"""Write the diagnostics to a folder: four CSV tables, a long confusion-matrix table and ``report.html``.

>>> from deem_core.analysis.diagnostics import run_diagnostics
>>> from deem_core.plots.report import write_diagnostics
>>> write_diagnostics(run_diagnostics(model, df), "out/")   # CSVs + report.html
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from deem_core.data.export import atomic_write_text, write_csv
from deem_core.data.text import escape_controls, middle_cut
from deem_core.plots import diagnostics as plots
from deem_core.plots.axes import plain_exponents
from deem_core.plots.safety import escape_figure

__all__ = ["REPORT_FILES", "REPORT_MAX_CHARS", "CONFUSION_MAX_CHARS", "confusion_long_frame", "confusion_table_workers", "importance_frame", "mi_layers_sentence", "mi_summary_frame",
           "write_diagnostics", "write_report"]

MI_SUMMARY_COLUMNS = ["layer", "max_mi_mean", "max_mi_std", "frobenius_mean", "frobenius_std", "rms_mi_mean",
                      "layer_name", "n_classes", "class_source"]


def mi_summary_frame(result) -> pd.DataFrame:
    """``layer,max_mi_mean,max_mi_std,frobenius_mean,frobenius_std,rms_mi_mean`` + layer name, classes used, class
    source."""
    return result.summary()[MI_SUMMARY_COLUMNS]


def mi_layers_sentence(summary: pd.DataFrame) -> str | None:
    """What the layers did to the dependence between workers, in words: the mean max MI at the answers (layer 0)
    and at the iRBM's input (the last layer), and the same of the root mean square MI of all pairs. The heatmaps of a
    2-layer model showed two copying groups as bright in every layer, the max MI 0.915 → 0.944, and no line said the
    layers had not lowered it (walkthrough 50); the max alone read "left it about as it was" where the layers made
    every pair dependent, the Frobenius norm 4.2 → 10.4 (walkthrough 81)."""
    def verdict(first: float, last: float) -> str:
        # within a tenth, which way and how far (1.027 -> 1.074 read "about as it was" of a rise; walkthrough 128)
        change = f" ({abs(last / first - 1):.1%} {'higher' if last > first else 'lower'})" if first > 0 else ""
        return ("lowered it" if last < 0.9 * first else "raised it" if last > first / 0.9 else
                "left it exactly as it was" if math.isclose(first, last, rel_tol=1e-9, abs_tol=1e-12) else
                "left it about as it was" + change)

    values = summary.set_index("layer")["max_mi_mean"].dropna()
    if len(values) < 2:
        return None
    first, last = float(values.iloc[0]), float(values.iloc[-1])
    said = (f"Max MI (mean over classes): {first:.3f} between the answers (layer 0), {last:.3f} at the iRBM's input "
            f"(layer {int(values.index[-1])}): the layers {verdict(first, last)}")
    spread = summary.set_index("layer")["rms_mi_mean"].dropna() if "rms_mi_mean" in summary else pd.Series()
    if len(spread) >= 2 and spread.index[0] == values.index[0] and spread.index[-1] == values.index[-1]:
        low, high = float(spread.iloc[0]), float(spread.iloc[-1])
        said += f"; over all pairs (root mean square) {low:.3f} → {high:.3f}: the layers {verdict(low, high)}"
        if verdict(first, last) == verdict(low, high) == "left it exactly as it was":
            # ("about as it was" of figures equal to 16 digits: the layers had passed the answers on unchanged, as
            # their identity start does, and a reader took them for weighing the copies down a little; walkthrough 110;
            # their weights do move a little, their outputs not: "has not moved them" overstated; walkthrough 111)
            said = said.removesuffix(": the layers left it exactly as it was") + (
                ": the same, so the layers pass each answer on as it came (they start as the identity, and training "
                "has not moved them far enough to change an output), and every dependence between the workers reaches "
                "the iRBM as it is")
    return said + "."


def importance_frame(importance) -> pd.DataFrame:
    """``worker,subset,importance`` + std_error, n_tasks, n_answered and the subset's definition."""
    out = importance.table.copy()
    out["subset_definition"] = np.where(out["subset"] == "selected", importance.description,
                                        np.where(out["subset"] == "rest", f"not ({importance.description})", "all tasks"))
    return out


#: the most characters the all-confusion-matrices table may hold (estimated: its names and ~40 for the numbers of a
#: row): every row repeats a worker's name, K x K rows a matrix, and 150 workers of 10,000-character names made a 27 MB
#: table of 3 classes (attack round 46), 10 classes 11 times that
CONFUSION_MAX_CHARS = 128_000_000
#: characters counted for the kind and numbers of one row
_CONFUSION_ROW_CHARS = 40


def confusion_table_workers(quality) -> tuple[int, str | None]:
    """How many workers (in the table's order) :func:`confusion_long_frame` holds within
    :data:`CONFUSION_MAX_CHARS`, and the note saying who is left out (None: every worker)."""
    d, k, _ = quality.empirical.shape
    kinds = sum(m is not None for m in (quality.empirical, quality.irbm, quality.gold))
    class_chars = 2 * k * sum(len(str(c)) for c in quality.classes)  # given and true, summed over a matrix's rows
    names = np.fromiter((len(str(w)) for w in quality.workers), dtype=np.int64, count=d)
    per_worker = kinds * (k * k * (names + _CONFUSION_ROW_CHARS) + class_chars)
    kept = int(np.searchsorted(np.cumsum(per_worker), CONFUSION_MAX_CHARS, side="right"))
    if kept >= d:
        return d, None
    return kept, (f"the first {kept:,} of the {d:,} workers only (about {CONFUSION_MAX_CHARS // 1_000_000:,} "
                  f"million characters at most: each of a worker's {kinds * k * k:,} rows repeats its name)")


def confusion_long_frame(quality) -> pd.DataFrame:
    """``worker,kind,given,true,probability,count`` for every worker's empirical / iRBM / gold matrix (the workers
    :func:`confusion_table_workers` allows; ``attrs["note"]`` says who is left out)."""
    d, note = confusion_table_workers(quality)
    k = quality.empirical.shape[1]
    workers = np.repeat(np.asarray(quality.workers, dtype=object)[:d], k * k)
    given = np.tile(np.repeat(np.asarray(quality.classes, dtype=object), k), d)
    true = np.tile(np.asarray(quality.classes, dtype=object), d * k)
    frames = []
    for kind, matrix, counts in (("empirical_vs_deem", quality.empirical, quality.empirical_counts),
                                 ("irbm_lemma1", quality.irbm, None), ("empirical_vs_gold", quality.gold, None)):
        if matrix is None:
            continue
        frames.append(pd.DataFrame({"worker": workers, "kind": kind, "given": given, "true": true,
                                    "probability": matrix[:d].reshape(-1),
                                    "count": counts[:d].reshape(-1) if counts is not None else np.nan}))
    out = pd.concat(frames, ignore_index=True)
    if note:
        out.attrs["note"] = note
    return out


def _text(value: Any) -> str:
    """A user string (worker, class, subset name) for the HTML around the charts: entities and visible escapes."""
    return html.escape(escape_controls(value))


#: characters of a name a report's table shows (head and tail, its length said; the CSV files beside it hold it whole):
#: 8,000 workers named with 10,000 characters made a 568 MB report.html (attack round 58)
REPORT_NAME_CHARS = 80


def _cell(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    shown = escape_controls(value)
    return shown if len(shown) <= REPORT_NAME_CHARS else \
        f"{middle_cut(shown, REPORT_NAME_CHARS)} ({len(value):,} characters)"


def _table_html(frame: pd.DataFrame) -> str:
    # cells are worker and class names: control characters made visible, cut, then HTML-escaped (escape=True)
    frame = frame.copy()
    frame.columns = [_cell(str(c)) for c in frame.columns]
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].map(_cell)
    return frame.to_html(index=False, float_format=lambda v: f"{v:.4f}", na_rep="", border=0, classes="table",
                         escape=True)


#: the files :func:`write_report` writes into its folder (checked by the command line before anything runs)
REPORT_FILES = {"mutual_information": "mutual_information.csv", "mi_summary": "mi_summary.csv",
                "importance": "importance.csv", "workers": "workers.csv", "confusion": "confusion_matrices.csv",
                "report": "report.html"}


#: the most characters report.html takes for the classes' heatmaps (the rest of the report is written whole)
REPORT_MAX_CHARS = 48_000_000


def _heatmaps_left_out(left_out: int, drawn: int) -> str:
    return (f"The mutual-information heatmaps of {left_out:,} of the {drawn:,} classes are left out of this report (it "
            f"stops adding them past {REPORT_MAX_CHARS // 1_000_000:,} million characters: each repeats every worker's "
            f"name); mutual_information.csv and the dashboard's Diagnostics page have every class.")


def write_report(diagnostics, directory, title: str = "DEEM diagnostics", experts: Sequence[Any] = (),
                 lead: str | None = None) -> dict[str, Path]:
    """Write ``mutual_information.csv``, ``mi_summary.csv``, ``importance.csv``, ``workers.csv``,
    ``confusion_matrices.csv`` and ``report.html`` (self-contained: plotly.js is embedded once) into
    ``directory`` (spreadsheet-safe, atomic); ``lead``: a paragraph the report opens with (as text). Returns
    ``{name: path}``."""

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    mi, importance, quality = diagnostics.mutual_information, diagnostics.importance, diagnostics.quality
    names = REPORT_FILES
    paths = {
        "mutual_information": write_csv(mi.long_frame(), directory / names["mutual_information"], index=False),
        "mi_summary": write_csv(mi_summary_frame(mi), directory / names["mi_summary"], index=False),
        "importance": write_csv(importance_frame(importance), directory / names["importance"], index=False),
        "workers": write_csv(quality.table, directory / names["workers"], index=False),
        "confusion": write_csv(confusion_long_frame(quality), directory / names["confusion"], index=False),
    }
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_text(title)}</title>",
             "<style>body{font-family:sans-serif;margin:24px}.table{border-collapse:collapse;font-size:13px}"
             ".table td,.table th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}</style></head><body>",
             f"<h1>{_text(title)}</h1>",
             f"<p><b>{_text(lead)}</b></p>" if lead else "",
             f"<p>Classes for the mutual information come from <b>{_text(mi.class_source)}</b>. "
             f"Importance subset: <b>{_text(importance.description)}</b>.</p>",
             "<h2>Notes</h2><ul>" + "".join(f"<li>{_text(n)}</li>" for n in diagnostics.notes) + "</ul>",
             "<h2>Mutual information summary (mean ± std over classes; diagonal excluded)</h2>",
             _table_html(mi_summary_frame(mi)),
             "<h2>Importance (mean drop of p(decided class); selected / rest / all)</h2>",
             _table_html(importance.pivot().reset_index()),
             "<h2>Importance (mean drop of the decided class's log-odds, nats)</h2>",
             _table_html(importance.pivot("importance_log_odds").reset_index())]
    plotly_js = True  # embedded with the first figure only

    def add(heading: str, figure: Any, room: int | None = None) -> bool:
        """Write one figure under its heading; False (nothing written) when its HTML passes ``room`` characters."""
        nonlocal plotly_js
        # worker, class and subset names are data: shown as text, never as plotly's HTML labels (live links)
        html_part = plain_exponents(escape_figure(figure)).to_html(full_html=False, include_plotlyjs=plotly_js)
        if room is not None and len(html_part) > room:
            return False
        parts.extend([f"<h2>{_text(heading)}</h2>", html_part])
        plotly_js = False
        return True

    add("Dependence per layer", plots.mi_summary_figure(mi))
    # a class's heatmaps only while the report stays within REPORT_MAX_CHARS: each repeats the workers' names and a
    # hover text a cell (30 classes of 150 workers named in 10,000 characters made a 167 MB report a press of Compute
    # diagnostics, from a run link's visitor too; attack round 47); none for a class of no pair with a value
    zmax = plots.mi_scale_max(mi)
    values = mi.off_diagonal()
    drawn = [value for c, value in enumerate(mi.classes)
             if mi.class_counts[c] > 0 and not np.isnan(values[:, c]).all()]
    shown = 0
    for value in drawn:  # (each made as it is written: one class's figure in memory at a time)
        room = REPORT_MAX_CHARS - sum(len(part) for part in parts)
        if room <= 0 or not add(f"Mutual information, class {value}", plots.mi_heatmaps(mi, value, zmax=zmax), room):
            break
        shown += 1
    if shown < len(drawn):
        parts.append(f"<p>{_text(_heatmaps_left_out(len(drawn) - shown, len(drawn)))}</p>")
    # the last figures within REPORT_MAX_CHARS too: each repeats every worker's name (written whole, 8,000 workers
    # named with 10,000 characters made a 568 MB report; attack round 58)
    late = [("Worker importance: drop of p(decided class)", lambda: plots.importance_bars(importance, highlight=experts)),
            ("Worker importance: drop of the decided class's log-odds (does not saturate)",
             lambda: plots.importance_bars(importance, highlight=experts, column="importance_log_odds")),
            ("Worker quality", lambda: plots.quality_table_figure(quality.table))]
    for heading, figure in late:
        if not add(heading, figure(), REPORT_MAX_CHARS - sum(len(part) for part in parts)):
            parts.append(f"<p>{_text(heading)}: left out, past the report's size ({REPORT_MAX_CHARS:,} characters: "
                         f"the names are long); its figures are in the CSV files beside it.</p>")
    parts.append("</body></html>")
    paths["report"] = atomic_write_text(directory / names["report"], "\n".join(parts))
    return paths


#: the name the diagnostics' callers use
write_diagnostics = write_report
