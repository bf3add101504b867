"""What every page shares: session state, the URL (run id), the owner key, the sidebar, error messages, and the
one way to show a user-derived string (:func:`safe`, :func:`plotly_chart`).

State model (all per browser session, in ``st.session_state``; nothing of one user is visible to another):

* ``owner_key`` this browser's secret owner key (:mod:`deem_studio.owners`): reported by a tiny script component
               from the site's local storage when the session starts, else new; written back there by the same
               component (:func:`_owner_store`). Never in a cookie nor in the URL. It alone allows cancelling,
               deleting and renaming the runs it launched (:func:`can_control`).
* ``ws``       the workspace id: a one-way hash of the owner key. Runs are stored with it as their owner; the
               Runs page lists the runs of this workspace.
* ``dataset``  the active data: ``{"name", "data" (AnnotationSet), "gold" (Series or None), "files",
               "origin"}``.
* ``run``      the current run id, the only thing kept in the URL (``?run=...``) so that a browser refresh, or
               the link sent to a colleague, reopens it (read-only for anyone but its owner).

Everything else belongs to one data set (:data:`DATA_KEYS`): ``sweep_run`` / ``train_run`` / ``diag_run``
(the latest sweep, training and diagnostics of this session on these data) and ``lr_pick``, the one picked
learning rate (``{"lr", "fingerprint", "source", "sweep", "at"}``; the Sweep page's choice and the Train
page's field both show it). Loading another data set puts these aside (``_shelf``, by data fingerprint)
and brings back those of the new data set, if it was loaded before in this session; nothing of one data
set is shown as if it belonged to another. Widget states tied to a run carry the run id in their key.

Every user-derived string (file, data-set, worker, class and task names, query parameters, messages that quote
them) reaches a Markdown-rendering call (``st.markdown``, ``caption``, ``info``/``warning``/``error``, labels,
``help``, toasts) only through :func:`safe`; charts go through :func:`plotly_chart`. Plain text
(``st.text``, ``st.code``), dataframe cells and selectbox options need nothing.

Jobs themselves live in the process-wide :class:`deem_studio.jobs.JobManager`, looked up by run id.
"""

from __future__ import annotations

import functools
import logging
import re
import sqlite3
import string
import threading
import time
from collections import Counter, OrderedDict
from typing import Any, Callable

import numpy as np
import pandas as pd
import streamlit as st

from deem_core.analysis.agreement import PAIRWISE_WORKERS
from deem_core.analysis.selection import EVIDENCE_HELP, evidence_caption
from deem_core.data.annotations import DataError
from deem_core.data.text import escape_controls, in_natural_order, middle_cut
from deem_core.model import training
from deem_core.plots.axes import plain_exponents
from deem_core.plots.safety import escape_figure
from deem_studio import capacity, owners
from deem_studio.estimate import BackgroundProbes
from deem_studio.jobs import device_info, get_manager, readable_error, status_line
from deem_studio.runs import LABEL_STUDIO_SETTINGS, RunNotFound, is_run_id
from deem_studio.uploads import THIS_MACHINE
from deem_studio.wording import counted, sentence, fmt_lr, out_of_range

STATUS_ICON = {"queued": ":material/hourglass_top:", "running": ":material/sync:",
               "finished": ":material/check_circle:", "cancelled": ":material/stop_circle:",
               "failed": ":material/error:"}


def manager():
    """The process-wide job manager (shared by every session; jobs are found by run id)."""
    return get_manager()


# the shell guard lives in pages/shell.py (light: a page calls it before importing anything heavy)
from pages.shell import in_shell, require_shell, shell  # noqa: E402, F401


# --------------------------------------------------------------------------- user strings
# Every ASCII punctuation character can be backslash-escaped in CommonMark, and an escaped one is always literal:
# no link, image, autolink (http:, www., @), emphasis, heading, list, table, HTML, LaTeX ($), emoji or colour
# directive (:red[...], :material/...:) can start. Control characters (newlines included) become visible escapes
# first, so a name cannot open a new block either.
_MARKDOWN_ESCAPES = str.maketrans({c: "\\" + c for c in string.punctuation})
# Streamlit's Markdown (remark-gfm) also turns bare URLs and e-mail addresses into links *after* parsing, in the
# text itself, where an escape is already gone: "http://", "www." and "x@y.z" are broken up with an invisible
# WORD JOINER (U+2060), which the autolink patterns do not accept (measured in Chromium: no link is made).
_AUTOLINK = re.compile(r"(?<=:)(?=//)|(?i:(?<=www))(?=\.)|(?<=@)")
_JOINER = "\u2060"


def safe(value: Any) -> str:
    """A user-derived value as literal text inside Markdown (the one helper for showing user strings).

    Use it for every user string interpolated into ``st.markdown``, ``st.caption``, ``st.info``/``success``/
    ``warning``/``error``, ``st.toast``, widget labels and ``help``, expander and tab labels, progress texts.
    ``st.text``/``st.code``, dataframe cells and selectbox options show text as it is and need nothing."""
    return _AUTOLINK.sub(_JOINER, escape_controls(value)).translate(_MARKDOWN_ESCAPES)


def plain_text(text: Any) -> str:
    """Text for ``st.text``/``st.code`` (shown as it is, no Markdown) with each line's control and bidi characters
    escaped, the lines kept: a right-to-left override in a column name reversed the Data page's "read as" line
    (walkthrough of the eighth session)."""
    return "\n".join(escape_controls(line) for line in str(text).split("\n"))


#: the characters a picker shows of one user-given option (a worker's or a class's name; the value picked stays whole)
PICKER_CHARS = 80


def picker_names(options: Any, most: int = PICKER_CHARS) -> Callable[[Any], str]:
    """A ``format_func`` for a picker whose options are user-given names: each shown as text with its controls
    escaped, cut to ``most`` characters (head and tail, its length said), cut names that would read alike told
    apart by their order among themselves ("(#1)", "(#2)", ...; by their place in the whole list, "(#4)" of the
    third column counted the Mapping's own first choice; walkthrough 113). A picker sends the text of every option
    to the browser each time it is drawn: 3,000 workers named with 10,000 characters made the Diagnostics page's
    "Highlight workers" and "Confusion matrix of" pickers a 29.9 MB message, +2.35 GB on the server for 16 tabs
    (attack round 57). The widgets map what the browser sends back by this text, so no two options may share one."""
    base: dict[Any, str] = {}
    for option in options:
        if option not in base:
            text = str(option)
            text = text if text.isprintable() else escape_controls(text)
            base[option] = f"{middle_cut(text, most)} ({len(str(option)):,} characters)" if len(text) > most else text
    alike = Counter(base.values())
    seen: Counter = Counter()
    shown: dict[Any, str] = {}
    taken = {text for text, n in alike.items() if n == 1}
    for option, text in base.items():
        if alike[text] > 1:
            seen[text] += 1
            tagged = f"{text} (#{seen[text]:,})"
            while tagged in taken:  # (a name may itself read "… (#2)")
                tagged += "′"
            text = tagged
            taken.add(text)
        shown[option] = text
    return lambda option: shown[option] if option in shown else middle_cut(str(option), most)


#: the characters of text a page's table may hold in all (its cells' share of them each, at least CELL_MIN_CHARS)
TABLE_TEXT_CHARS = 2_000_000
CELL_MIN_CHARS = 100


def visible_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its text cells, column names and index values through :func:`escape_controls`.

    The grid of ``st.dataframe`` shows text as text (no Markdown, no HTML), but the browser still applies the
    characters that steer it: a right-to-left override in a worker's name made the rest of its cell read backwards
    (a name ending "\u202etxt.exe" showed as "exe.txt"; attack round of the seventh session). Those become visible
    escapes, as on every other part of the pages. Only columns holding text are copied.

    A table's text is bounded too (:data:`TABLE_TEXT_CHARS`): a cell longer than its share is cut, its length said
    (the file downloads keep it whole). 4,914 workers named with 10,000 characters, a 64 KB upload, sent 99 MB to
    every visitor of the Data page and 20 MB of the Results page (attack round 53)."""
    changed: dict[Any, Any] = {}
    texts = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype) or frame[c].dtype == object
             or pd.api.types.is_string_dtype(frame[c].dtype)]
    most = max(CELL_MIN_CHARS, TABLE_TEXT_CHARS // max(1, len(frame) * len(texts)))

    def cell(v: Any) -> Any:
        if not isinstance(v, str):
            return v
        # escaped first, then cut: an escape is six characters, and names of controls cut before it passed the
        # bound six-fold (read 53)
        shown = v if v.isprintable() else escape_controls(v)
        if len(shown) > most:  # (its head and its tail: names that differ at their end read alike; walkthrough 107)
            shown = f"{middle_cut(shown, most)} ({len(v):,} characters)"
        return shown

    for column in texts:
        values = frame[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            if not any(isinstance(v, str) and (not v.isprintable() or len(v) > most) for v in values.cat.categories):
                continue
            values = values.astype(object)  # two categories could become one escape
        shown = values.map(cell)
        if not shown.equals(values) or shown.dtype != frame[column].dtype:
            changed[column] = shown
    names = visible_names(frame.columns)
    index_text = frame.index.dtype == object and any(isinstance(v, str) and not v.isprintable() for v in frame.index)
    if not changed and names == list(frame.columns) and not index_text:
        return frame
    out = frame.copy()
    for column, shown in changed.items():
        out[column] = shown
    out.columns = names
    if index_text:
        out.index = pd.Index([escape_controls(v) if isinstance(v, str) else v for v in frame.index],
                             name=frame.index.name)
    return out


def visible_names(columns: Any) -> list[Any]:
    """Column names through :func:`escape_controls`, kept distinct: "a\u202e" and the typed text "a\\u202e" escape
    to one name, and two equal column names made the grid fail ("Duplicate column names found": the Data and
    Results pages of such a file showed nothing; attack round of the eighth session). A later one gets " (2)"."""
    out: list[Any] = []
    taken: set[Any] = set()
    given = set(columns)
    tried: dict[Any, int] = {}  # per name, the last number given: counting up from 2 for every repeat took 140 s a
    # page for 30,000 classes that escape to one name (attack round 48)
    for column in columns:
        name = escape_controls(column) if isinstance(column, str) else column
        if name in taken:
            number = tried.get(name, 1) + 1
            while f"{name} ({number})" in taken or f"{name} ({number})" in given:
                number += 1
            tried[name] = number
            name = f"{name} ({number})"
        taken.add(name)
        out.append(name)
    return out


#: pixels of a grid's header and of each of its rows (Streamlit's data grid)
GRID_HEADER_PX, GRID_ROW_PX = 38, 35


def grid_height(rows: int, most: int) -> int:
    """The height of a grid of ``rows`` rows, at most ``most`` pixels (it scrolls past that)."""
    return min(most, GRID_HEADER_PX + GRID_ROW_PX * max(1, rows))


def dataframe(frame: pd.DataFrame, column_config: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """``st.dataframe`` of a frame whose text is :func:`visible_cells` (the one way the pages draw a grid)."""
    data = getattr(frame, "data", None)
    if data is not None:  # a Styler: its frame is made visible before it was styled (:func:`readable_table`)
        return st.dataframe(frame, column_config=column_config, **kwargs)
    shown = dict(zip(frame.columns, visible_names(frame.columns)))
    config = {shown.get(k, k): v for k, v in (column_config or {}).items()}
    return st.dataframe(visible_cells(frame), column_config=config or None, **kwargs)


def latest_fallback() -> tuple[str, str, bool] | None:
    """(run id, the reference, whether it is the latest) when the training open here (the session's, of the loaded
    data and finished), else this workspace's latest finished training of the loaded data, returned a safety-rule
    reference's labels for DEEM; None otherwise. (After an older training was opened from the Runs page, the pages
    spoke of the latest beside the sidebar's open one: two trainings on one screen; walkthrough 126.)"""
    try:
        trained = manager().store.list(owner=workspace(), kinds=["train"], statuses=["finished"], limit=50)
    except Exception:  # noqa: BLE001 - no index yet
        return None
    trained = trained[trained["fingerprint"] == data_key()]
    if not len(trained):
        return None
    open_here = trained[trained["run_id"] == st.session_state.get("train_run")]
    row = open_here.iloc[0] if len(open_here) else trained.iloc[0]
    summary = row["summary"] or {}
    reference = summary.get("labels_from_deem") if isinstance(summary, dict) else None
    latest = str(row["run_id"]) == str(trained["run_id"].iloc[0])
    return (str(row["run_id"]), str(reference), latest) if reference else None


def fallback_rate_note(run: str, reference: str, latest: bool, subject: str) -> str:
    """What a new learning rate does where the training ``run`` (the latest on these data, or the one open here:
    ``latest``, as :func:`latest_fallback` gives the three) returned ``reference``'s labels by the safety rule;
    ``subject``: the rate spoken of ("A rate picked here")."""
    from deem_studio.jobs import method_name  # noqa: PLC0415

    deem = method_name("deem")
    which = "The latest training on these data" if latest else "The training open here"
    # (it said the model "predicted the answers worse" and "nothing is checked then", wrong where gold labels decide:
    # their check is accuracy on the gold tasks, and it runs with a start fixed too; read 50)
    return (f"{which} ({run}) returned {reference}'s labels, by the safety rule: {deem}'s "
            f"own model did not pass its check. {subject} changes {deem}'s own model; the labels change only if that "
            f"model, trained at the rate, passes the check, or, without gold labels training it, when its start and "
            f"layers are fixed on the Train page (not checked then).")


def agreement_height(n_methods: int) -> int:
    """The Train page's agreement heatmap of methods: its height in px, 320 for up to five methods and 34 px more for
    each further one (room for its row and, below, for the rotated names of the columns)."""
    return 320 + 34 * max(0, n_methods - 5)


def plotly_chart(figure: Any, **kwargs: Any) -> Any:
    """``st.plotly_chart`` of a figure whose names, labels, titles and hover texts are shown as text (plotly
    would render ``<a href>``, ``<b>`` ... in them; :func:`deem_core.plots.safety.escape_figure`) and whose numbers'
    exponents are powers of ten, not SI prefixes (:func:`deem_core.plots.axes.plain_exponents`)."""
    return st.plotly_chart(plain_exponents(escape_figure(figure)), **kwargs)


def message(kind: str, text: Any, **kwargs: Any) -> None:
    """``st.info``/``success``/``warning``/``error`` of a whole message that may quote user strings."""
    getattr(st, kind)(safe(text), **kwargs)


# --------------------------------------------------------------------------- errors
def show_error(exc: BaseException, what: str = "", file: str = "") -> None:
    """A readable one-line message instead of a traceback (file names and values in it shown as text). ``what``, the
    app's own words, opens it with a capital ("launching the training: ..." opened in lower case; walkthrough 25);
    ``file``, a file's name, opens it as it is written ("result_int.json" read "Result_int.json"; attack round 50);
    a message without either is left as it is (it may open with a file's name)."""
    prefix = f"{sentence(what)}: " if what else f"{file}: " if file else ""
    st.error(safe(prefix + readable_error(exc)), icon=":material/warning:")


def guarded(what: str = "") -> Callable:
    """Decorator for page sections and fragments: any exception becomes a message on the page."""

    def wrap(function: Callable) -> Callable:
        @functools.wraps(function)
        def inner(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - Streamlit's rerun/stop are BaseException, not caught
                show_error(exc, what)
                return None

        return inner

    return wrap


# --------------------------------------------------------------------------- owner key, workspace, access
def client_address() -> str | None:
    """The network address of this session's browser (None on the server's own machine or when unknown): jobs
    are also limited per address (``deem_studio.owners.max_active_per_client``)."""
    try:  # (an IPv6 address by its /64 network; behind a local proxy, the visitor it forwards)
        return owners.client_party(st.context.ip_address, st.context.headers.get("X-Forwarded-For"))
    except Exception:  # noqa: BLE001 - no browser request (bare mode, tests)
        return None


def visitor() -> str:
    """The party this session's shares are counted for: its network address, or :data:`THIS_MACHINE`."""
    return client_address() or THIS_MACHINE


def upload_bytes(files: Any) -> int | None:
    """The bytes reading the uploaded ``files`` goes through (a gzip file's text, not its compressed bytes: a 4 MB
    gzip of 60 MB of CSV is a large read; :func:`deem_core.data.formats.sources.read_bytes_of`); None where one is
    Parquet or not an upload (a large read)."""
    from deem_core.data.formats.sources import read_bytes_of  # noqa: PLC0415

    total = 0
    for file in files if isinstance(files, (list, tuple)) else [files]:
        try:
            held = file.getbuffer()
        except AttributeError:
            return None
        try:
            found = read_bytes_of(bytes(held[:4]), bytes(held[-4:]), len(held))
        finally:
            held.release()
        if found is None:
            return None
        total += found
    return total


def reading(size: int | None = None) -> Any:
    """One of the server's read slots for this session (:func:`deem_studio.capacity.reading`): its address's share of
    the reading time, and its place in the line by its workspace and address (on the server's own machine by its
    workspace alone: every browser there is one party for the shares, and a slot went to whoever woke first). ``size``:
    the bytes of the files read (None: a large read)."""
    address = client_address()
    return capacity.reading(party=address, parties=(st.session_state.get("ws"), address), size=size)


def read_uploads(files: Any, read: Callable[[Any], Any]) -> Any:
    """``read(limits)`` of the uploaded ``files`` under one of the server's read slots (:func:`reading`): files
    holding less than ``DEEM_READ_LARGE_BYTES`` of text in the line of small reads, under provisional limits
    (:func:`deem_studio.capacity.small_read_limits`); one that outgrows them (its gzip trailer understated its text,
    its many columns read slowly) is read again in the line of large ones, under the server's own limits (None)."""
    from deem_core.data.annotations import ReadOutgrown  # noqa: PLC0415

    size = upload_bytes(files)
    small = capacity.small_read(size)
    waiting = st.empty()
    ahead = capacity.reads_ahead(size)
    if ahead:  # (the spinner said only "reading the files" while a read waited its turn; walkthrough 122)
        waiting.caption(f"Waiting for the server's read slot: {counted(ahead, 'read')} of other files "
                        f"{'runs' if ahead == 1 else 'run'} or {'waits' if ahead == 1 else 'wait'} before this one "
                        f"(one {'small' if small else 'large'} file is read at a time).")
    try:
        if small:
            try:
                with reading(size=size):
                    return read(capacity.small_read_limits(size))
            except ReadOutgrown:
                pass
        with reading():
            return read(None)
    finally:
        waiting.empty()


def parties() -> tuple[str | None, str | None]:
    """Who this session is for the server's per-visitor limits (probe places, download files): its workspace and
    its network address, or the server's own machine (one visitor's tabs share them)."""
    return st.session_state.get("ws"), visitor()


def workspace() -> str:
    """This session's workspace id (the hash of its owner key; runs are stored with it as their owner)."""
    return st.session_state["ws"]


def owner_key() -> str:
    return st.session_state["owner_key"]


def use_owner_key(key: str) -> None:
    """Make ``key`` this session's owner key (and, through :func:`_owner_store` on the next script run, this
    browser's)."""
    st.session_state["owner_key"] = key
    st.session_state["ws"] = owners.workspace_of(key)


def can_control(run_id: str | None) -> bool:
    """Whether this session may cancel, delete or rename ``run_id`` (it owns the run's workspace)."""
    if not run_id:
        return False
    try:
        record = manager().store.get(run_id)
    except RunNotFound:
        return False
    return owners.can_control(st.session_state.get("owner_key"), record.get("owner"))


def cancel(run_id: str) -> None:
    """The cancel button's action: only the owner's session gets this far (the service checks again)."""
    try:
        if owners.cancel_run(manager(), run_id, st.session_state.get("owner_key")):
            # (a classic method's fit is ended, not finished: "after the current mini-batch" fit none; walkthrough 43)
            st.toast("cancelling: a training stops after its current mini-batch, a classic method at once; the run "
                     "keeps the labels made so far")
        else:
            st.warning("This run is not running in this server process; it will be marked failed at the next start.")
    except owners.AccessDenied as exc:
        st.error(safe(exc), icon=":material/lock:")


def read_only_note(run_id: str, launch: bool = False) -> None:
    """``launch``: the page has a form that launches a job (it is the visitor's own, in their workspace)."""
    st.caption(safe(f"Run {run_id} belongs to another workspace: you see it read-only (only its owner can cancel, "
                    f"rename or delete it)" + ("; what you launch here is your own run, in your workspace."
                                               if launch else ".")))


# A v2 component (no iframe: it runs in the page itself) that keeps the owner key in this site's local storage, so the
# next session of this browser (a refresh, a new tab, after a server restart) starts with the same key, and reports the
# key kept there (or "none", or "blocked" when the browser keeps no storage for the site) as the component's state.
# Local storage belongs to one origin (scheme, host and port): the key was a cookie, and cookies keep no port apart,
# so a page served on another port of the host read it (attack round 28), set its own beside it (round 29), or
# evicted it by filling the browser's cookie jar and put its own in its place (round 30). Only a key of 32 hex
# characters is ever written or reported.
_OWNER_KEY_JS = """
export default function ({ data, setStateValue }) {
  if (!data) return;
  const valid = (value) => typeof value === "string" && /^[0-9a-f]{32}$/.test(value);
  let kept = null, blocked = false;
  try {
    if (valid(data.write) && window.localStorage.getItem(data.name) !== data.write) {
      window.localStorage.setItem(data.name, data.write);
    }
    kept = window.localStorage.getItem(data.name);
  } catch (e) {
    blocked = true;
  }
  if (data.ask) setStateValue("key", blocked ? "blocked" : (valid(kept) ? kept : "none"));
}
"""
_OWNER_STORE: list[Any] = []
#: what the page shows while the browser reports the owner key it keeps (a fraction of a second)
OPENING = "Opening your workspace…"
#: said when the browser keeps no storage for this site (a private mode that blocks it, a policy)
NO_STORAGE = ("This browser keeps no storage for this site, so it cannot keep your owner key: the runs you launch "
              "are yours for this session only. Copy the key from the Runs page to control them later.")


def _owner_store(known: str | None) -> str | None:
    """Mount the owner-key store (in the sidebar, invisible): ``known`` is written to the browser's storage; without
    it the browser is asked for the key it keeps. Returns the key reported (None: not yet; "none"; "blocked")."""
    if not _OWNER_STORE:
        _OWNER_STORE.append(st.components.v2.component("deem_owner_store", js=_OWNER_KEY_JS))
    with st.sidebar:
        result = _OWNER_STORE[0](data={"name": owners.STORAGE_NAME, "ask": known is None, "write": known},
                                 key="deem_owner_store", default={"key": None}, on_key_change=_nothing, height=0)
    return getattr(result, "key", None)


def _nothing() -> None:
    """A state callback that does nothing (the component's state is read on the rerun it causes)."""


def _browser_session() -> bool:
    """Whether a browser is on the other end of this session (bare mode and script tests have no request headers)."""
    return bool(_header("Host"))


def _header(name: str) -> str | None:
    try:
        return st.context.headers.get(name)
    except Exception:  # noqa: BLE001 - no browser request (bare mode, tests)
        return None


# --------------------------------------------------------------------------- session + URL


def dataset() -> dict[str, Any] | None:
    return st.session_state.get("dataset")


#: session keys that belong to one data set (put aside when another data set is loaded)
DATA_KEYS = ("sweep_run", "train_run", "diag_run", "lr_pick")
#: prefixes of widget keys that show one data set's runs (dropped when another data set is loaded)
# (sweep_sample_size: a 2,500-task set's sample size is out of range on 400 tasks, so a new set starts from its
# default; this widget's persisted value is not brought back when the first set returns, seen in Chromium)
# (sweep_sample_on: a sweep on 600 tasks without a sample left it off for every large set loaded next, which then
# swept all its tasks; walkthrough 35; sweep_epochs: its default depends on the set's size, walkthrough 77)
# (results_max_conf, results_disagree, results_review: a confidence filter of one set showed "0 of 120 tasks" of the
# next set's run; read 54)
DATA_WIDGET_PREFIXES = ("results_method", "train_confusion", "diag_", "sweep_choice_", "_sweep_cache",
                        "sweep_sample_size", "sweep_sample_on", "sweep_epochs", "results_max_conf", "results_disagree",
                        "results_review")


#: workers in the Data page's pairwise table (those with the most answers; the engine's data checks')
MAX_PAIRWISE_WORKERS = PAIRWISE_WORKERS


#: the one sentence of a data set with one class (the Train and Sweep pages refuse to launch on it)
ONE_CLASS = "These data have one class only: there is nothing to aggregate (at least two classes are needed)."


def one_class(data: Any) -> str | None:
    """:data:`ONE_CLASS` when ``data`` has fewer than two classes (a job on them fails at once; walkthrough 42)."""
    return ONE_CLASS if data.n_classes < 2 else None


def data_summary(data: Any) -> dict:
    """The Data page's checks of ``data`` (agreement, balance, coverage, pairwise table, constant and contrary
    workers, answers per task as counts): made once per data set and shared by every session and page (each session
    made its own: 25 tabs on a 20 M-answer set took the server out of memory; attack round 56); a large set's under a
    read slot, as a read. Kept in the session too (the shared store keeps the latest few)."""
    from deem_core.analysis import agreement  # noqa: PLC0415

    key = data.fingerprint()
    cache = st.session_state.get("summary_cache")
    if cache and cache[0] == key:
        return cache[1]

    def compute() -> dict:
        return agreement.data_checks(data, max_pairwise_workers=MAX_PAIRWISE_WORKERS)

    with st.spinner("checking the data (agreement, workers, classes)"):
        values = capacity.shared_summary(key, compute, heavy=data.n_annotations >= capacity.SUMMARY_SLOT_ANSWERS,
                                         party=client_address(), parties=(st.session_state.get("ws"),))
    st.session_state["summary_cache"] = (key, values)
    return values


#: session key of the Data page's "Test for groups that answer alike" results, per data set's fingerprint (read
#: again by the Train page)
DEPENDENCE_TESTS = "_dependence_tests"


def dependence_tests() -> dict:
    """This session's results of the Data page's group test, by data set fingerprint (kept a few data sets)."""
    return st.session_state.setdefault(DEPENDENCE_TESTS, {})


def alike_workers(data: Any) -> list[str]:
    """A sentence per group of workers who gave the same label on every one of 50 or more tasks they share (at most
    5 groups), from the shared summary's pairwise table (:func:`data_summary`), those who gave one label on every
    answer left out (the summary's too: each session found them for itself, 8 tabs on a 20 M-answer set; attack
    round 57). Walkthrough 28's copied trio took Dawid-Skene and DEEM's automatic choice to 54% against majority
    vote's 69.5%, with nothing said."""
    from deem_core.analysis.agreement import copies_sentences  # noqa: PLC0415

    if data.n_classes < 2:  # with one class every worker agrees with every other: nothing to say of copies
        return []
    key = data.fingerprint()
    kept = st.session_state.get("_alike_cache")
    if kept and kept[0] == key:
        return kept[1]
    summary = data_summary(data)  # (the Train page made its own in every session; attack round 56)
    sentences = copies_sentences(summary["pairwise"], summary["single_label"], data)
    st.session_state["_alike_cache"] = (key, sentences)
    return sentences


#: what the Data and Train pages' warning of workers who gave one label for everything ends with
CONSTANT_THEN = "Diagnostics flags these workers after training; you may leave them out of the file."


def constant_warning(data: Any, constant: list | None = None) -> str | None:
    """The sentence naming the workers who gave one label on every answer while the others' answers favour another
    class (:func:`~deem_core.analysis.agreement.constant_workers`; ``constant``: the Data page's, else the shared
    summary's, :func:`data_summary`), None where there are none. Said on the Data page and where a training is
    launched: left out of the copies warning there (walkthrough 102), the Train page said nothing of them (read 52)."""
    from deem_core.analysis.agreement import constant_sentence  # noqa: PLC0415

    if constant is None:  # (the shared summary's: each session made its own; attack round 56)
        constant = data_summary(data)["constant"]
    return constant_sentence(constant, CONSTANT_THEN)


def most_shared_tasks(pairwise: tuple) -> int | None:
    """The most tasks two workers of the Data page's pairwise tables share (None with fewer than 4 workers there: a
    dependence test needs 4)."""
    overlap = np.asarray(pairwise[1], dtype=float)
    if overlap.shape[0] < 4:
        return None
    return int(overlap[np.triu_indices(overlap.shape[0], 1)].max())


def kept_pick(kind: str, run_id: str) -> Any:
    """What this session last chose of ``kind`` on run ``run_id`` (the Results page's method, the Diagnostics page's
    tab): Streamlit drops a widget's state when a script run does not draw it, so a visit to another page (or Runs →
    Open) lost the choice, and the page opened on the run's first method or tab again (walkthrough 33)."""
    return st.session_state.get("_picks", {}).get((kind, run_id))


def keep_pick(kind: str, run_id: str, value: Any) -> None:
    st.session_state.setdefault("_picks", {})[(kind, run_id)] = value


def training_rounds(n_layers: int | str, device: str, has_gold: bool, n_seeds: int = 1) -> int:
    """The trainings one after another that DEEM with these settings runs on the active data set
    (:func:`deem_core.methods.deem.training_rounds`: 3 while it chooses its depth, 1 where the depths train as one
    batched model or the depth is not chosen): what the Train page's time estimate multiplies."""
    from deem_core.methods.deem import SELECTION_DEPTHS, chooses_depth, training_rounds as rounds  # noqa: PLC0415

    ds = dataset()
    if ds is None:
        return len(SELECTION_DEPTHS) if chooses_depth(n_layers, has_gold) else 1
    return rounds(ds["data"], n_layers, device, has_gold, runs_per_depth=2 * int(n_seeds))


def data_key() -> str | None:
    """The fingerprint of the active data set (what runs, picks and widget states are keyed by)."""
    ds = dataset()
    if ds is None:
        return None
    if not ds.get("fingerprint"):
        ds["fingerprint"] = ds["data"].fingerprint()
    return ds["fingerprint"]


def set_dataset(name: str, data: Any, gold: Any = None, files: list[str] | None = None, origin: str = "upload",
                read_gold: int = 0, with_runs: bool = True) -> None:
    """Make ``data`` the active data set. CapacityError (nothing changes) when the server holds too much data for
    its users to keep this set too (``deem_studio.capacity``). ``read_gold``: how many gold labels the data's own
    file carried (a gold file uploaded later is said to replace them, and removing its labels brings these back; they
    are counted as used: those of no class are left out). ``with_runs``: bring back the workspace's
    latest runs on these data that this session does not hold (not when a run is opened: it brings its own)."""
    current = dataset()
    # counted for this visitor's share: its address, or on the server's own machine its workspace (attack round 28)
    capacity.admit_data(data, replacing=current["data"] if current else None, party=visitor())
    previous = data_key()
    previous_gold = current.get("gold") if current else None
    brought = gold is not None  # (the file read brings gold labels of its own)
    if gold is None and previous_gold is not None and previous == data.fingerprint():
        # the same data read again, from a file that brings no gold labels: those it had stay (walkthrough 48: a new
        # tab brought the data back with their 300 gold labels, the same export uploaded there dropped them, and the
        # next run trained without them, unsaid)
        gold = previous_gold
    # the same data read again, bringing their own gold labels, while a file's were used: the file's stay in use (its
    # box still shows it) and the data's own are kept to come back (the file's 30 were replaced by an export's 3
    # without a word, and "Remove" then removed the export's; attack round 49)
    # (or put aside with the data set: loaded again after another, its file's labels were replaced the same way;
    # read 48)
    shelved = (st.session_state.get("_shelf") or {}).get(data.fingerprint(), {}).get("_gold")
    earlier = previous_gold if previous == data.fingerprint() else shelved
    uploaded = earlier if brought and earlier is not None and getattr(earlier, "attrs", {}).get("file") else None
    gold = class_gold(gold, data)
    # the data's own gold labels, kept to come back when a gold file uploaded in their place is removed (they were lost
    # until the data were read again), and counted as used ("in place of the 20 gold labels read with the data" where
    # 3 of the 20 were no class; walkthrough 92)
    own = gold if read_gold and gold is not None and len(gold) else None  # (none of a class: none to bring back)
    if uploaded is not None:
        gold = uploaded.copy()
        gold.attrs.update(uploaded.attrs, replaced=0 if own is None else len(own))
    st.session_state["dataset"] = {"name": name, "data": data, "gold": gold, "files": list(files or []),
                                   "origin": origin, "fingerprint": data.fingerprint(),
                                   "own_gold": own, "gold_with_data": bool(read_gold)}
    st.session_state.pop("summary_cache", None)
    if st.session_state["dataset"]["fingerprint"] != previous:
        _switch_data(previous, st.session_state["dataset"]["fingerprint"], with_runs, previous_gold)


def _switch_data(old: str | None, new: str, with_runs: bool = True, old_gold: Any = None) -> None:
    """Another data set became active: put the previous one's runs, pick and gold labels aside, bring back the new
    one's."""
    ss = st.session_state
    shelf = ss.setdefault("_shelf", {})
    kept = shelf.pop(new, {})  # (first: bounded on the shelf, the set coming back lost its gold labels; read 44)
    if old is not None:
        shelf.pop(old, None)  # (the latest put aside last: the first to go is the one set aside longest)
        shelf[old] = {key: ss[key] for key in DATA_KEYS if ss.get(key) is not None}
        if old_gold is not None:
            shelf[old]["_gold"] = old_gold
        _bound_shelved_gold(shelf)
    for key in DATA_KEYS:
        ss.pop(key, None)
    for key in [k for k in list(ss.keys()) if isinstance(k, str) and k.startswith(DATA_WIDGET_PREFIXES)]:
        del ss[key]
    gold = kept.pop("_gold", None)
    dropped = kept.pop("_gold_dropped", 0)
    ss.update(kept)
    # what this session did not hold of these data (it began after they were put aside: a reload) comes from the
    # workspace's runs on them, as a reload of their run's address brings it (Results said "No training run on these
    # data yet" and the sidebar "none yet"; walkthrough 34)
    if with_runs:
        try:
            restore_latest_runs()
        except (OSError, sqlite3.Error):
            pass
    _bring_back_gold(gold)
    if dropped and (dataset() or {}).get("gold") is None:
        ss["_gold_dropped_note"] = (f"The {counted(dropped, 'gold label')} these data had earlier in this session "
                                    f"{'was' if dropped == 1 else 'were'} not kept while other data sets were "
                                    f"loaded (a session sets aside at most {SHELVED_GOLD_BYTES // 2**20} MiB of gold "
                                    f"labels): upload the gold file again.")
    current = ss.get("run")
    if current and current not in {ss.get(k) for k in ("sweep_run", "train_run", "diag_run")}:
        ss["run"] = ss.get("train_run") or ss.get("sweep_run")
        sync_url()


#: the gold labels of the data sets put aside in one session, at most (twelve exports of 120 KB, each with 10,000 gold
#: labels of long task ids, held 1.9 GB of the server for a session; attack round 48)
SHELVED_GOLD_BYTES = 16 * 2**20


def _bound_shelved_gold(shelf: dict) -> None:
    """Drop the gold labels of the data sets put aside longest until the others take at most
    :data:`SHELVED_GOLD_BYTES`; the latest put aside are kept whatever their size (as the active data set's: bounded
    with the data). A data set loaded again without them says so (their count is kept)."""
    sizes = {key: int(entry["_gold"].memory_usage(index=True, deep=True))
             for key, entry in list(shelf.items())[:-1] if entry.get("_gold") is not None}
    total = sum(sizes.values())
    for key, size in sizes.items():  # (oldest first: the shelf keeps the order they were put aside in)
        if total <= SHELVED_GOLD_BYTES:
            break
        shelf[key]["_gold_dropped"] = len(shelf[key].pop("_gold"))
        total -= size


def _bring_back_gold(kept: Any) -> None:
    """The gold labels of a data set loaded again, when the file brought none: those it had in this session when it
    was put aside, else those stored with this workspace's latest training on it (walkthrough 35: they were dropped,
    while the gold uploader still showed their file and the old run's accuracies stood on the pages)."""
    ds = dataset()
    if ds is None or ds.get("gold") is not None:
        return
    gold, source = kept, "kept from before"
    train = st.session_state.get("train_run")
    if gold is None and train and can_control(train):  # (another owner's gold labels never: attack round 14)
        try:
            gold, source = manager().store.gold(train), f"stored with run {train}"
            config = manager().store.get(train).get("config") or {}
        except (OSError, ValueError, RunNotFound):
            gold = None
        if gold is not None:
            gold = gold[gold.index.isin(ds["data"].tasks)]
            gold.attrs.update(gold_attrs(config))
    if gold is not None and len(gold):
        attrs = dict(gold.attrs)
        gold = gold.copy()
        gold.attrs.update(attrs, brought_back=source)
        set_gold(gold)


def run_fingerprint(run_id: str | None) -> str | None:
    """The fingerprint of the data a run was made on (None when unknown)."""
    if not run_id:
        return None
    cache = st.session_state.setdefault("_run_fingerprints", {})
    if run_id not in cache:
        try:
            record = manager().store.get(run_id)
        except RunNotFound:
            return None
        source = (record.get("config") or {}).get("source_run") if record.get("kind") == "diagnostics" else None
        cache[run_id] = run_fingerprint(source) if is_run_id(source) else record.get("fingerprint")
    return cache[run_id]


def run_of_this_data(run_id: str | None) -> bool:
    """True when the run was made on the active data set (or no data set is loaded to compare with)."""
    key = data_key()
    return key is None or run_fingerprint(run_id) in (None, key)


def other_data_note(run_id: str) -> None:
    """A clear label on a run that was made on another data set than the loaded one."""
    try:
        name = manager().store.get(run_id).get("dataset") or "another data set"
    except RunNotFound:
        name = "another data set"
    st.warning(safe(f"Run {run_id} was made on {name!r}, not on the loaded data set; what follows belongs to that "
                    f"data set."), icon=":material/swap_horiz:")


# --------------------------------------------------------------------------- the picked learning rate
def lr_pick() -> dict[str, Any] | None:
    """The picked learning rate of the active data set (None when none was picked for these data)."""
    pick = st.session_state.get("lr_pick")
    return pick if pick and pick.get("fingerprint") == data_key() else None


def set_lr_pick(lr: float, source: str, sweep: str | None = None, keep: bool = True) -> None:
    """Pick the learning rate training uses on the active data set; ``keep``: also kept for this workspace in the
    run store, so that a reload brings it back (:func:`kept_lr_pick`)."""
    st.session_state.pop("_train_lr_typed_out", None)  # a rate typed out of range on the Train page gives way
    pick = {"lr": float(lr), "fingerprint": data_key(), "source": source, "sweep": sweep, "at": time.time()}
    st.session_state["lr_pick"] = pick
    if keep and pick["fingerprint"]:
        try:
            manager().store.save_pick(workspace(), pick["fingerprint"], pick)
        except (OSError, sqlite3.Error):  # the session keeps it; only a reload would not bring it back
            pass


def kept_lr_pick() -> bool:
    """Bring back this workspace's last pick on the active data set (after a reload: the pick, and where it came
    from, were lost with the browser's session and the address's run put its own rate in their place; walkthrough,
    tenth session). Returns whether one was kept."""
    key = data_key()
    try:
        pick = manager().store.pick(workspace(), key) if key else None
    except (OSError, sqlite3.Error):
        pick = None
    if not pick or pick.get("fingerprint") != key:
        return False
    st.session_state["lr_pick"] = pick
    return True


def sweep_outcome(run_id: str | None) -> dict[str, Any] | None:
    """A finished sweep's recommendation payload plus ``status`` and ``finished_at`` (None if none)."""
    if not run_id:
        return None
    cache = st.session_state.setdefault("_sweep_outcomes", {})
    if run_id not in cache:
        snap = manager().snapshot(run_id, history=False)
        if snap is None or not snap.done:
            return None
        try:
            payload = manager().store.recommendation(run_id)
        except RunNotFound:  # (deleted since its status was read)
            return None
        except (OSError, ValueError):
            payload = {}
        payload.update(status=snap.status, finished_at=snap.finished_at or 0.0)
        payload.setdefault("partial", snap.status != "finished")
        cache[run_id] = payload
    return cache[run_id]


def current_lr(sweep_said: bool = True) -> tuple[float, str]:
    """The learning rate the Train page uses and where it comes from, in words.

    A pick (on the Sweep page or typed on the Train page); else the engine's default. A sweep's recommendation is
    said beside it, never used unasked (``sweep_said=False``: not, where the page shows the sweep and its
    recommendation itself; on the Sweep page it read "... is used only if you pick it on the Sweep page (...),
    which you opened)"; walkthrough 110)."""
    from deem_studio.jobs import TRAIN_DEFAULTS  # noqa: PLC0415

    sweep_id = st.session_state.get("sweep_run")
    outcome = sweep_outcome(sweep_id) if run_of_this_data(sweep_id) else None
    pick = lr_pick()
    unused = ""
    if (sweep_said and outcome and outcome.get("lr") is not None and not outcome.get("partial") and not outcome.get("fallback")
            and (pick is None or (pick.get("sweep") != sweep_id and pick.get("at", 0) < outcome["finished_at"]))):
        # a sweep's pick, settled or tentative, is used only when the user picks it: it became the Train page's rate
        # unasked, and a 30-epoch sweep's tentative "1" trained 118 of 136 wrong labels at confidence 0.99 against 47
        # at the default (walkthrough 70); 82.67% where the default gave 84.22% (walkthrough 75). Measured on 21 data
        # sets, training at the pick was never more than 0.12 points more accurate than at the default, and up to 3.7
        # less with 50-update sweeps, 0.9 with the page's epochs (deem_core.analysis.recommend.PICK_VS_DEFAULT)
        tentative = outcome.get("settled", True) is False
        what = "tentative rate" if tentative else "recommendation"
        why = (str(outcome.get("tentative_reason") or "no learning rate was seen to settle within its epochs")
               if tentative else
               "it is the rate whose curves settle; the default is the rate measured for accurate labels")
        unused = (f"; sweep {sweep_id}'s {what}, {fmt_lr(outcome['lr'])}, is used only if you pick it on the Sweep "
                  f"page ({why})")
    if pick:
        source = pick["source"]
        if pick.get("sweep") and (sweep_outcome(pick["sweep"]) or {}).get("partial"):
            # (a rate picked on a cancelled sweep went to Train without a word; walkthrough 37)
            source += ", a partial sweep: it stopped before its curves were complete"
        if pick.get("sweep") and not _run_exists(pick["sweep"]):
            # the rate stays the user's pick; the page cited a sweep deleted since as if it were there (walkthrough 41)
            source += f"; sweep {pick['sweep']} has since been deleted"
        return float(pick["lr"]), source + unused
    return float(TRAIN_DEFAULTS["lr"]), "the engine's default (no learning rate picked for these data)" + unused


def _run_exists(run_id: str) -> bool:
    try:
        return bool(manager().store.exists(run_id))
    except (OSError, sqlite3.Error):  # the store cannot say: taken as there
        return True


def usable_gold(ds: dict[str, Any]) -> int:
    """Gold labels of the data set ``ds`` that can be used: every way in keeps only those of its classes
    (:func:`class_gold`; the sidebar said "gold labels" for a file of which none could be used; walkthrough 34)."""
    gold = ds.get("gold")
    return 0 if gold is None else len(gold)


def class_gold(gold: Any, data: Any) -> Any:
    """``gold`` without the labels that are no class of ``data`` (``deem_core.analysis.scoring.truth_of_classes``):
    every accuracy counted them as wrong, and diagnostics refused to run at all (walkthrough 36)."""
    from deem_core.analysis.scoring import truth_of_classes  # noqa: PLC0415

    return truth_of_classes(gold, data.classes)


def set_gold(gold: Any) -> None:
    if dataset() is not None:
        st.session_state["dataset"]["gold"] = class_gold(gold, st.session_state["dataset"]["data"])


def show_page_run(kind: str) -> None:
    """The address names the run this page shows (its ``<kind>_run``): after "Train with learning rate" the Sweep
    page's address named the training, and a copied link or a reload opened that (walkthrough, eleventh session)."""
    ss = st.session_state
    run_id = ss.get(f"{kind}_run")
    if run_id and ss.get("run") != run_id:
        set_current_run(run_id, kind)
    elif not run_id and ss.get("run") and ss.get("run") == ss.get("sweep_run" if kind == "train" else "train_run"):
        # none of its own: the address names no run, not the other page's (the browser's Back and Forward brought
        # back a Train address naming the sweep, whose link then opened the sweep; walkthroughs 102-103)
        set_current_run(None)


def set_current_run(run_id: str | None, kind: str | None = None) -> None:
    st.session_state["run"] = run_id
    if run_id and kind in ("sweep", "train"):
        if kind == "train" and st.session_state.get("train_run") != run_id:
            _diagnostics_of(run_id)
        st.session_state[f"{kind}_run"] = run_id
    elif run_id and kind == "diagnostics":
        st.session_state["diag_run"] = run_id
    sync_url()


def _diagnostics_of(train_run: str) -> None:
    """The session's diagnostics run follows the training it shows: this workspace's latest diagnostics of
    ``train_run``, or none. Another training opened from the Runs page kept the diagnostics of the one shown before,
    and the sidebar listed them beside it (walkthrough 64)."""
    current = st.session_state.get("diag_run")
    if current:
        try:
            if (manager().store.get(current).get("config") or {}).get("source_run") == train_run:
                return
        except RunNotFound:
            pass
    found = latest_diagnostics(workspace(), train_run)
    if found:
        st.session_state["diag_run"] = found
    else:
        st.session_state.pop("diag_run", None)


_COPY_LOCK = threading.Lock()


def keep_label_studio(mgr: Any, run_id: str, kind: str, data: Any) -> None:
    """A training on data read from a Label Studio export keeps the export's tasks and control with the run, so that
    its predictions file keeps them when the run is opened again (walkthrough 48: from a link, the Runs page or a new
    tab the file had no task ids, no data, and the control names "label"/"task"). A failure to keep them (disk
    full) is logged for the operator, and the file of the run opened again is then without them; the run itself is
    not touched."""
    kept = st.session_state.get("_label_studio")
    if kind != "train" or not kept or kept[1] is None or data is None or kept[0] != data.fingerprint():
        return
    try:
        with _COPY_LOCK:  # one copy at a time, each within the room the ones before left (four launched together each
            # took the whole room: a workspace at 2.8x its cap; attack round 25)
            mgr.store.save_label_studio(run_id, kept[1], mgr.storage_room(workspace(), client_address()))
    except DataError as exc:  # past the room left to the workspace (attack round 24) or the control's bound: said
        if (mgr.store.run_dir(run_id) / LABEL_STUDIO_SETTINGS).is_file():
            st.session_state["_notice"] = (f"The export's task ids and data are not kept with run {run_id} ({exc}; "
                                           f"the room left to your runs): its Label Studio file, opened again later, "
                                           f"has the labels under the export's control without them.")
        else:
            st.session_state["_notice"] = (f"The export's control, task ids and data are not kept with run {run_id} "
                                           f"({exc}): its Label Studio file, opened again later, has the labels "
                                           f"under a control named \"label\", without the export's tasks.")
    except Exception:  # noqa: BLE001 - logged for the operator; the page goes on
        logging.getLogger(__name__).warning("could not keep the Label Studio tasks of run %s", run_id, exc_info=True)


def gold_attrs(config: dict[str, Any]) -> dict[str, Any]:
    """What a run's settings say of its gold labels, as the labels' ``attrs`` (:func:`launch` writes them): the
    file they were read from, and whether they are an export's control tasks (walkthrough 82)."""
    said: dict[str, Any] = {}
    if not isinstance(config, dict):  # (a run folder edited by hand)
        return said
    if config.get("gold_file"):
        said["file"] = str(config["gold_file"])
    if config.get("gold_control") is True:
        said["control"] = True
    columns = config.get("gold_columns")
    if isinstance(columns, list) and len(columns) == 2:
        said["columns"] = tuple(str(c) for c in columns)
    return said


def launch(kind: str, config: dict[str, Any], data: Any, gold: Any = None) -> None:
    """Submit a train or sweep job on the active data set and show it; when the same job (this workspace, these
    data, these settings) is already queued or running, launch nothing and show that one (a second click)."""
    mgr = manager()
    if gold is not None:  # other gold labels make another job
        config = {**config, "gold_fingerprint": str(int(pd.util.hash_pandas_object(gold).sum()))}
        if gold.attrs.get("file"):  # (named again when the labels are brought back; walkthrough 36)
            config["gold_file"] = str(gold.attrs["file"])
        if gold.attrs.get("control"):  # a platform's control tasks: said beside the accuracies (walkthrough 82)
            config["gold_control"] = True
        columns = gold.attrs.get("columns")  # (named on the Gold labels tab when brought back; the diff's read)
        if isinstance(columns, (list, tuple)) and len(columns) == 2:
            config["gold_columns"] = [str(c) for c in columns]
    if kind == "train" and data is not None and config.get("batch_size") is None:
        from deem_studio.jobs import TRAIN_DEFAULTS, fitted_batch  # noqa: PLC0415

        # past this server's bound for one job at the default batch, the largest batch that fits, said with the run
        # (the refusal's "a smaller batch" had no field on the Train page; walkthrough 129)
        batch = fitted_batch(config, data)
        if batch is not None:
            config = {**config, "batch_size": batch, "batch_fitted_from": int(TRAIN_DEFAULTS["batch_size"])}
    run_id, new = mgr.submit_once(kind, config, data_key(), data=data, gold=gold, owner=workspace(),
                                  dataset=dataset()["name"], client=client_address())
    if not new:
        what = KIND_WORDS.get(kind, kind)
        st.session_state["_notice"] = (f"The same {what} on these data is already queued or running as run {run_id}: "
                                       f"nothing new was launched. Change a setting to start another, or cancel it "
                                       f"first.")
    else:
        keep_label_studio(mgr, run_id, kind, data)
        if kind == "train":  # (the form's settings are this training's now: the note on another run's settings
            # stayed after it; walkthrough 51), said as set for other data later (walkthrough 56; no run id: a data
            # set's page shows nothing of another's runs)
            st.session_state["_train_form_from"] = (None, data_key())
            st.session_state["_train_methods_data"] = data_key()
    set_current_run(run_id, kind)
    st.rerun()  # the whole page, the sidebar's job list included, shows the run


class _EstimateCache(OrderedDict):
    """The last :data:`ESTIMATES_KEPT` estimates of this server process, by data fingerprint and settings: a reload
    (a new session) probed again and held the page's results back for 10 s (walkthrough, ninth session)."""

    def __setitem__(self, key, value) -> None:
        with _ESTIMATES_LOCK:
            super().__setitem__(key, value)
            while len(self) > ESTIMATES_KEPT:
                self.popitem(last=False)


ESTIMATES_KEPT = 256
_ESTIMATES_LOCK = threading.Lock()
_ESTIMATES = _EstimateCache()
_PROBES = BackgroundProbes()  # (one thread: the probes time this machine one at a time)


def cached_estimate(kind: str, **settings: Any):
    """The time estimate of a job on the active data set (``deem_studio.estimate``), probed once per data set
    and settings in this server process; None while the probe runs or when it failed. The probe runs on a thread of
    its own (:data:`_PROBES`): the page waits for it at most :data:`ESTIMATE_WAIT_SECONDS`, then says it is timing
    and redraws when the estimate is there, so the form and its Train button work meanwhile (walkthrough 37)."""
    from concurrent.futures import CancelledError, TimeoutError as FutureTimeout  # noqa: PLC0415

    from deem_studio import estimate  # noqa: PLC0415

    ds = dataset()
    if ds is None:
        return None
    gold = ds.get("gold")
    gold_key = None if gold is None else int(pd.util.hash_pandas_object(gold).sum())
    key = (kind, data_key(), gold_key, tuple(sorted((k, repr(v)) for k, v in settings.items())))
    cache = _ESTIMATES
    if key in _TIMED_BUSY and not _server_busy():  # timed beside a job: timed again now the server is free
        cache.pop(key, None)
        _TIMED_BUSY.discard(key)
    given_up = _GIVEN_UP.get(key)
    if given_up is not None and time.time() - given_up > PROBE_RETRY_SECONDS and not _server_busy():
        # the probes ran out of time once (a busy machine, or a long job): timed again a while later ("no time
        # estimate" stood for the server's life, also after the same job had run in 12 s; walkthrough 41)
        cache.pop(key, None)
        _GIVEN_UP.pop(key, None)
    if key not in cache:
        asked = st.session_state.setdefault("_probes", {})
        asking = parties()  # (one visitor's tabs held every place in the queue; attack 22)
        earlier = asked.get(kind)
        if earlier is not None and earlier[0] != key:
            # (settings changed before their probe began: not run, unless others wait)
            _PROBES.withdraw(earlier[0], earlier[2])
        future = _PROBES.ask(key, functools.partial(_probe_value, kind, ds["data"], gold, settings, key), asking)
        asked[kind] = (key, future, asking)
        try:
            with st.spinner("Timing a short probe of this job on this machine…"):
                future.result(timeout=ESTIMATE_WAIT_SECONDS)
        except (FutureTimeout, CancelledError):
            # ("in a few seconds" stood a minute beside a running job, past the end of the job it was for;
            # walkthrough 81)
            st.caption("Timing a short probe of this job on this machine: the time estimate follows "
                       + ("once the jobs running on this server leave the probe room (a minute or more)" if
                          _server_busy() else
                          # (it stood 33 s on a machine other programs kept busy: the probes stop at their limit,
                          # and the classic methods' are timed after DEEM's; walkthrough 100)
                          f"in a few seconds, or within the probes' {estimate.PROBE_MAX_SECONDS:.0f}-second limit when "
                          f"the machine is busy or the job long") + " (the form works meanwhile).")
            _estimate_follows(future)
            return None
        except estimate.ProbeSkipped as exc:  # another session was probing: not kept, asked again at the next run
            st.caption(safe(f"no time estimate: {exc}"))
            return None
    value = cache.get(key)  # one read: the probe thread may evict it meanwhile (a KeyError; attack round 21)
    if isinstance(value, str):  # (why there is none: the probe's message may quote the data's names)
        st.caption(safe(value))
        return None
    if value is not None and key in _TIMED_BUSY:
        # ("may read high" where it read 4% low, the probe's steps timed beside another's; walkthrough 82)
        st.caption("This estimate was timed while another job ran on this server: it may be off either way (it is "
                   "timed again once the server is free).")
    return value


def _server_busy() -> bool:
    """Whether a job is queued or running in this server process (a probe timed beside it reads high)."""
    try:
        return bool(manager().active_ids())
    except Exception:  # noqa: BLE001 - no manager yet: nothing runs
        return False


#: keys of the estimates timed while a job ran beside the probe: a job timed so read 27 s and took 12 s, and the
#: figure stayed for the server's life (walkthrough 38); timed again once the server is free
_TIMED_BUSY: set = set()


#: when the probes of each key ran out of time (a busy machine or a long job): timed again after
#: :data:`PROBE_RETRY_SECONDS`, on a server with no job running
_GIVEN_UP: dict = {}
PROBE_RETRY_SECONDS = 120.0

def format_minutes(seconds: float) -> str:
    """``2 minutes``, ``1 minute``, ``30 s``."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    return counted(round(seconds / 60), "minute")


#: seconds a page waits for its timing probe before drawing the form without the estimate (it follows)
ESTIMATE_WAIT_SECONDS = 1.0


def _probe_value(kind: str, data: Any, gold: Any, settings: dict[str, Any], key: Any) -> Any:
    """The probe's estimate, or the sentence saying why there is none, kept in the process's cache (on the probes'
    thread: nothing of Streamlit). Another session's probe running raises ``ProbeSkipped`` (retry) uncached."""
    from deem_studio import estimate  # noqa: PLC0415

    busy = _server_busy()
    try:
        if kind == "sweep":
            value = estimate.estimate_sweep(data, **settings)
        elif kind == "train":
            value = estimate.estimate_train(data, gold=gold, **settings)
        else:
            value = None
    except estimate.ProbeSkipped as exc:  # too large or too long (said), or another probe was running (retry)
        if exc.retry:
            raise
        value = f"no time estimate: {exc}"
        if exc.transient:  # (when it is timed again: a user changed a field and back, and nothing came; walkthrough 133)
            value += (f". It is timed again when the page is next drawn {format_minutes(PROBE_RETRY_SECONDS)} from "
                      f"now or later, with no job running on this server")
            if len(_GIVEN_UP) > ESTIMATES_KEPT:
                _GIVEN_UP.clear()
            _GIVEN_UP[key] = time.time()
    except Exception as exc:  # noqa: BLE001 - no estimate is better than a broken form, but say so
        said = readable_error(exc)
        source = str(getattr(data, "source", "") or "")
        if source:  # kept for every session of these data: not the file name of whoever timed them first
            said = said.replace(source, "these data")  # (attack round 21)
        value = f"no time estimate: the timing probe failed ({said})"
    if (busy or _server_busy()) and not isinstance(value, str):
        if len(_TIMED_BUSY) > ESTIMATES_KEPT:
            with _ESTIMATES_LOCK:  # (the dict is evicted from under the same lock)
                kept = list(_ESTIMATES.keys())
            _TIMED_BUSY.intersection_update(kept)
        _TIMED_BUSY.add(key)
    _ESTIMATES[key] = value
    return value


def redraw_page() -> None:
    """Reruns the whole page for a change the user did not make (a job ended, an estimate came, the pace changed),
    keeping the notice the page showed for the run that replaces it: the notice was popped, shown and redrawn away
    (the CI run of stop 41: a training that ended while its page was drawn lost the note that the export's task data
    were not kept with it; walkthrough 68: a fragment's redraw 4 s later took "nothing new was launched" away). The
    next run the user makes shows it no more (:func:`init_session` forgets it)."""
    ss = st.session_state
    if ss.get("_notice_shown") and not ss.get("_notice"):
        ss["_notice"] = ss["_notice_shown"]
    st.rerun()


@st.fragment(run_every=1.0)
def _estimate_follows(future: Any) -> None:
    """Redraws the page once the probe it waits for has ended (its estimate is then in the cache)."""
    if future.done():
        redraw_page()


#: seconds a job just launched is redrawn at the live pace while still "queued": every job is queued for an instant,
#: and a 3 s training on an idle server read "Queued" all its life, redrawn every 3 s (walkthrough 37)
QUEUED_GRACE_SECONDS = 5.0


def redraw_every(snapshot: Any, live: float, queued: float) -> float:
    """Seconds between a job's redraws: ``queued`` once it has waited past the grace, else ``live``."""
    waiting = snapshot.status == "queued" and time.time() - snapshot.created_at > QUEUED_GRACE_SECONDS
    return queued if waiting else live


def pace_changed(snapshot: Any, interval: float, live: float, queued: float) -> bool:
    """Whether a job's fragment, drawn every ``interval`` s, should redraw the page at another pace."""
    return redraw_every(snapshot, live, queued) != interval


def describe_estimate(estimate: Any) -> str:
    """The estimate in one line, and when it is longer than this server lets a job run, that it would stop there."""
    from deem_studio.estimate import format_seconds  # noqa: PLC0415

    text = estimate.describe()
    limit = manager().max_job_seconds
    if limit is not None and estimate.total_s > limit:
        text += (f" — longer than this server's time limit of {format_seconds(limit)} per job: it would stop "
                 f"there, keeping what it made by then")
    return text


def session_runs() -> list[tuple[str, str]]:
    """(label, run id) of this session's sweep, training and diagnostics on the active data set that still exist
    (a run its owner deleted in another browser was listed here once more, from the jobs' memory; walkthrough 24)."""
    out = []
    for label, key in (("Sweep", "sweep_run"), ("Train", "train_run"), ("Diagnostics", "diag_run")):
        run_id = st.session_state.get(key)
        if run_id and manager().store.exists(run_id):
            out.append((label, run_id))
    return out


#: what a run id that names no run means to the one who holds it
GONE = "it was deleted by its owner, or the link is wrong"

#: DEEM's starts as the pages name them (the Train form's choices, the Runs grid's column)
STARTS = {"auto": "auto", "ds": "Dawid-Skene", "mv": "majority vote"}

#: a run's kind in the words a sentence uses
KIND_WORDS = {"train": "training", "sweep": "sweep", "diagnostics": "diagnostics"}
PAGE_OF_KIND = {"sweep": "pages/sweep.py", "train": "pages/train.py", "diagnostics": "pages/diagnostics.py"}
#: the page a shared link of each kind of run opens (a training's labels are on Results)
LINK_PAGE_OF_KIND = {"sweep": "sweep", "train": "results", "diagnostics": "diagnostics"}


def run_link(run_id: str, kind: str) -> str:
    """The address that opens ``run_id`` read-only for whoever it is sent to: this browser's address of the app
    with the run's page (only the page's path when the browser's address is unknown)."""
    from urllib.parse import urlsplit, urlunsplit  # noqa: PLC0415

    page = LINK_PAGE_OF_KIND.get(kind, "train")
    try:
        parts = urlsplit(str(st.context.url or ""))
    except Exception:  # noqa: BLE001 - no browser address (a script run): the path alone
        parts = None
    if not parts or not parts.scheme or not parts.netloc:
        return f"/{page}?run={run_id}"
    base = parts.path.rsplit("/", 1)[0]  # the app's base path, without the page this is
    return urlunsplit((parts.scheme, parts.netloc, f"{base}/{page}", f"run={run_id}", ""))


def init_session() -> None:
    """Once per script run, before the page: workspace and run from the URL, then the URL from the state."""
    ss, params = st.session_state, st.query_params
    capacity.start_session_reaper()  # (once a process: departed sessions' memory handed back; attack round 61)
    ss["_script_run"] = ss.get("_script_run", 0) + 1  # (which script run a value was sent to the address in: sync_url)
    ss.pop("_notice_shown", None)  # (a notice an earlier run showed is not shown again: :func:`redraw_page`)
    key = ss.get("owner_key")
    known = key if owners.is_owner_key(key) else None
    if not _browser_session():  # (bare mode, script tests: nothing keeps a key)
        known = known or owners.new_owner_key()
    elif (reported := _owner_store(known)) is None and known is None:  # (the store written, or asked, every run)
        st.caption(OPENING)  # the browser reports the key it keeps on a rerun, a moment later
        st.stop()
    elif known is None:  # a session's key is never replaced by a later report (a pasted key stays)
        known = owners.normalise_key(reported)
        if known is None:
            known = owners.new_owner_key()
            if reported == "blocked":
                ss["_notice"] = NO_STORAGE
            else:  # a new key: written to the browser's storage by the next run's mount, at once
                use_owner_key(known)
                st.rerun()
    key = known
    if ss.get("ws") != owners.workspace_of(key):
        use_owner_key(key)
    if "ws" in params:
        # addresses of older versions carried the workspace (then also the key to its runs): ignored, dropped
        del params["ws"]
        ss["_notice"] = ("This address carries an old workspace id (ws=...): it no longer gives access to any runs. "
                         "Runs are now controlled by the owner key of the browser that launched them (Runs page).")
    url_run = params.get("run")
    first_run = not ss.get("_session_begun")
    ss["_session_begun"] = True
    if first_run and not url_run and dataset() is None:
        restore_workspace()
    if url_run and url_run != ss.get("run") and url_run != ss.get("_url_run_seen"):
        fresh = not ss.get("_url_run_seen") and not ss.get("run")  # a new session: a reload or a link
        ss["_url_run_seen"] = url_run
        if is_run_id(url_run):
            if not reopen(url_run, with_latest=fresh) and fresh and dataset() is None:
                # a deleted run's link in a new session: the workspace's latest comes back as at a plain address,
                # its notice after the one that says the link's run is gone ("Data set: none loaded"; walkthrough 81)
                gone = ss.get("_notice")
                restore_workspace()
                if gone and ss.get("_notice") != gone:
                    ss["_notice"] = f"{gone}. {ss['_notice']}"
        else:
            # not quoted: a link made up by someone else would put their words on this page (attack round)
            ss["_notice"] = (f"the address holds a run value of {counted(len(url_run), 'character')} which is not a run id; "
                             f"it was ignored (a run id is 16 hexadecimal digits)")
    sync_url()


def sync_url(again: bool = False) -> None:
    """Keep ``run`` in the address bar (page switches drop query parameters); nothing else goes there. The value is
    sent once every script run (and by the sidebar's live view, ``again``), not only when the server's copy differs:
    the message of a run that a rerun ends may never reach the browser (a launch sets the new run and reruns at once),
    and the server's copy then said it was there: the address kept the previous run for a whole training, 2 of 20
    launches (walkthrough 117; sent once more from the next run only, 1 of 16 still did: walkthrough 118). The browser
    changes its address, and its history, only when the value differs from the one it shows."""
    ss, params = st.session_state, st.query_params
    wanted = url_params()
    now = ss.get("_script_run", 0)
    for key, value in wanted.items():
        if params.get(key) != value or ss.get("_url_sent_in") != now or again:
            params[key] = value
            ss["_url_sent_in"] = now
    if "run" not in wanted and "run" in params:
        del params["run"]


def url_params() -> dict[str, str]:
    run_id = st.session_state.get("run")
    return {"run": run_id} if run_id else {}


def go(page: str) -> None:
    """Switch page keeping the run in the URL."""
    st.switch_page(page, query_params=url_params())


def restore_latest_runs() -> None:
    """After a reload: this workspace's latest sweep and training on the active data set besides the address's run
    (the sidebar and the Train page lost the training when the address named the sweep; walkthrough, tenth
    session); a training's settings come back in the form, the kept learning rate stays."""
    key, store = data_key(), manager().store
    if key is None:
        return
    for kind in ("sweep", "train"):
        if st.session_state.get(f"{kind}_run"):
            continue
        runs = store.list(owner=workspace(), kinds=[kind], limit=200)
        found = runs[runs["fingerprint"] == key]
        if len(found):
            latest = str(found["run_id"].iloc[0])
            st.session_state[f"{kind}_run"] = latest
            restore_form(store.get(latest), pick=False)  # (a sweep's grid, epochs, ...)
    train = st.session_state.get("train_run")
    if train and not st.session_state.get("diag_run"):  # its latest diagnostics (the sidebar lost them; walkthrough 28)
        found = latest_diagnostics(workspace(), train)
        if found:
            st.session_state["diag_run"] = found
    kept_lr_pick()


def latest_diagnostics(owner: str | None, source_run: str, model: str | None = None,
                       statuses: list[str] | None = None) -> str | None:
    """The id of ``owner``'s latest diagnostics of ``source_run`` (of its ``model`` when given; a run without a
    method is DEEM's), among ``statuses`` (default any), or None."""
    saved = manager().store.list(owner=owner, kinds=["diagnostics"], statuses=statuses)
    for run_id, config in zip(saved["run_id"], saved["config"]):  # (the listed rows carry their configs)
        config = config or {}
        if config.get("source_run") == source_run and (model is None or (config.get("method") or "deem") == model):
            return str(run_id)
    return None


def reopen(run_id: str, with_latest: bool = True) -> bool:
    """A new session's run (the address's, or the workspace's latest) opened as a reload opens it, and with it
    (``with_latest``) the latest sweep and training on its data; False when there is no such run."""
    opened = open_run(run_id, quiet=True, from_url=True)
    if opened and with_latest:
        restore_latest_runs()
    return opened


def restore_workspace() -> None:
    """A new session at an address that names no run (a new tab, a bookmark of the app's root): this workspace's
    latest run comes back with its data set and the latest sweep and training on it, as the reload of a run's
    address brings them (every page said "Data set: none loaded" while the Runs page listed the runs; walkthrough
    19). Only this browser's own workspace: a visitor without its cookie has none."""
    try:
        runs = manager().store.list(owner=workspace(), limit=1)
    except (OSError, sqlite3.Error):
        return
    if not len(runs):
        return
    latest = str(runs["run_id"].iloc[0])
    if reopen(latest):
        ds = dataset()
        if ds is not None:
            # the latest run named with its kind, and a diagnostics' training (the page shows): "the latest:
            # <a diagnostics id>" stood above another run's results (walkthrough 56)
            kind = str(runs["kind"].iloc[0])
            named = f"the {KIND_WORDS.get(kind, kind)} {latest}"
            train = st.session_state.get("train_run")
            if kind == "diagnostics" and train:
                named += f", of the training {train}"
            # ("your latest data set" named the data of the latest run, not the set loaded last; walkthrough 34)
            st.session_state["_notice"] = (f"Brought back the data set of your latest run, {ds['name']}, with its runs "
                                           f"(the latest: {named}). To work on other data, load it on the Data page.")


def open_run(run_id: str, quiet: bool = False, restore_data: bool = True, from_url: bool = False) -> bool:
    """Make ``run_id`` the current run (and its kind's run); bring back its data when none is loaded or
    another data set is (first: loading the data puts the other data set's runs aside). ``from_url``: opened from
    the address (a reload or a link): the learning rate this workspace last picked on these data stays (else a
    training's own rate becomes the pick). Returns False (with a message) when there is no such run."""
    store = manager().store
    try:
        record = store.get(run_id)
    except RunNotFound as exc:
        # (a reload of a deleted run's link said "no run with id ..." alone; walkthrough 23)
        st.session_state["_notice"] = f"{exc}: {GONE}"
        return False
    data_run, data_record = run_id, record
    if record["kind"] == "diagnostics":
        source = (record.get("config") or {}).get("source_run")
        if is_run_id(source):
            try:
                data_record, data_run = store.get(source), source
            except RunNotFound:
                data_run = None
        else:
            data_run = None
    current = dataset()
    if (restore_data and data_run and
            (current is None or data_key() != data_record.get("fingerprint"))):
        try:
            data, gold = capacity.run_data(store, data_run)  # one copy for every session that opens the run
        except Exception as exc:  # noqa: BLE001
            why = str(exc) if isinstance(exc, DataError) else f"its annotations could not be read ({readable_error(exc)})"
            st.session_state["_notice"] = f"run {data_run}: {why}"
            data, gold = None, None
        kept = ""
        if data is not None and gold is not None and len(gold) and not can_control(data_run):
            # a link opens the run's answers, not its gold labels: a visitor's own training with a large gold-label
            # weight gave them back (72% of 60 secret labels, majority vote 23%; attack round 14); the run's stored
            # accuracies and charts still show
            gold, kept = None, (f"; its {counted(len(gold), 'gold label')} "
                               f"{'stays' if len(gold) == 1 else 'stay'} with its owner")
        said = gold_attrs(data_record.get("config") or {})
        if gold is not None and said:  # (its file named on the Gold labels tab; walkthrough 38) - a copy: the
            gold = gold.copy()  # stored labels are one object for every session that opens the run
            gold.attrs.update(said)
        if data is not None:
            set_dataset(data_record.get("dataset") or data.source, data, gold, origin=f"run {data_run}",
                        with_runs=False)
            if not quiet:
                st.session_state["_notice"] = (f"loaded the annotations of run {data_run} "
                                               f"({data.n_tasks:,} tasks) as the active data set{kept}")
            elif kept:  # (a link opens quietly: its visitor saw accuracies against gold labels that the Data page
                # and the sidebar did not have, and nothing said why; walkthrough 29)
                # (a sweep has no accuracies: "its accuracies show" read wrong on one; walkthrough 42)
                shown = "its accuracies show, " if record["kind"] != "sweep" else ""
                st.session_state["_notice"] = (f"the annotations of run {data_run} are loaded{kept}: {shown}the "
                                               f"labels themselves are not loaded here")
    if record["kind"] == "diagnostics" and data_run:
        st.session_state["train_run"] = data_run
    set_current_run(run_id, record["kind"])
    restore_form(record, pick=not (from_url and kept_lr_pick()))
    return True


#: form widget <- run configuration key, per run kind (a reopened run shows the settings it was launched with)
FORM_OF_CONFIG = {
    "train": {"train_methods": "methods", "train_layers": "n_layers", "train_epochs": "epochs",
              "train_seeds": "n_seeds", "train_init": "init", "train_device": "device",
              "train_seed": "seed", "train_gold_weight": "supervised_weight"},
    "sweep": {"sweep_lrs": "lrs", "sweep_epochs": "epochs", "sweep_layers": "n_layers", "sweep_seeds": "n_seeds",
              "sweep_device": "device"},
}


def restore_form(record: dict[str, Any], pick: bool = True) -> None:
    """Fill the Train or Sweep form with a reopened run's settings (values a form cannot show are skipped);
    ``pick``: a training's learning rate becomes the picked one."""
    from deem_studio.jobs import trained_methods  # noqa: PLC0415

    config = record.get("config") or {}
    ss = st.session_state
    # a training of baselines alone used none of the DEEM fields: the defaults it stored for them replaced what the
    # form held (a picked rate of 0.03 became 0.01 for the next training)
    trained = record.get("kind") != "train" or bool(trained_methods(config))
    if record.get("kind") == "train" and trained:  # whose settings the form holds (said on other data)
        ss["_train_form_from"] = (record.get("run_id"), record.get("fingerprint"))
    if record.get("kind") == "train":  # the data its methods were picked for
        ss["_train_methods_data"] = record.get("fingerprint")
    for key, name in FORM_OF_CONFIG.get(record.get("kind"), {}).items():
        value = config.get(name)
        if value is None or not (trained or key in ("train_methods", "train_seed")):
            continue
        try:
            if key == "train_methods":
                from deem_core.methods.registry import METHODS  # noqa: PLC0415

                value = [m for m in value if m in METHODS]
            elif key == "sweep_lrs":
                value = ", ".join(fmt_lr(v) for v in value)
            elif key in ("train_device", "sweep_device"):
                if value not in device_choices():
                    continue
            elif key == "train_gold_weight":
                value = float(value)
            elif key == "train_init":
                if value not in ("auto", "ds", "mv"):  # the Train page's choices
                    continue
            else:
                value = int(value)
        except (TypeError, ValueError):
            continue
        ss[key] = value
    if record.get("kind") == "sweep":  # a sweep on a sample reopens with its sample (it showed the set's size)
        sample = config.get("sample_tasks")
        ss["sweep_sample_on"] = bool(sample)
        if sample:
            ss["sweep_sample_size"] = int(sample)
    if record.get("kind") == "train" and trained:
        ss["train_layers_auto"] = config.get("n_layers") == "auto"
        ss["train_no_budget"] = "max_updates" in config and config["max_updates"] is None
    if (pick and trained and record.get("kind") == "train" and config.get("lr") is not None
            and record.get("fingerprint") == data_key()):
        try:  # (not kept for the workspace: a reload of another run's address then named this run as its rate's
            # source; walkthrough 19. What is kept is what the user picked: on a sweep, or typed)
            set_lr_pick(float(config["lr"]), f"the settings of run {record['run_id']}", keep=False)
        except (TypeError, ValueError):
            pass


def forget_deleted_data() -> None:
    """A data set this session loaded from a run (a link, the Runs page) whose owner has since deleted it is no
    longer kept here: a visitor kept the owner's answers, trainable, after the owner was told the run was deleted
    with its files (walkthrough 26). An upload of one's own stays."""
    ds = dataset()
    origin = str(ds.get("origin") or "") if ds else ""
    run_id = origin[len("run "):] if origin.startswith("run ") else ""
    if not is_run_id(run_id) or manager().store.exists(run_id):
        return
    ss = st.session_state
    for key in ("dataset", "summary_cache", *DATA_KEYS):
        ss.pop(key, None)
    if ss.get("run") == run_id:
        set_current_run(None)
    pending = ss.get("_notice")  # (the owner who has just deleted it is told so by the Runs page's notice)
    ss["_notice"] = (f"{pending}; its annotations are no longer loaded here" if pending and run_id in str(pending)
                     else f"no run with id {run_id}: {GONE}. Its annotations are no longer loaded here.")


class Refusal(str):
    """A notice that says something given was refused (not kept, not done): shown as a warning, not as news (a gold
    file naming no task of the data was said in the blue of "loaded"; walkthrough 67)."""


def notices(slot: Any = None) -> None:
    """The pending notice (kept as plain text; shown as text: it may quote a file name or a query parameter), in
    ``slot``: a container the frame draws on every run, with or without a notice (a notice drawn straight on the page
    moved every element below it one place down, and the Data page's tabs, moved, opened on their first tab again:
    after a gold upload the reader was taken off the Gold labels tab; the CI run of stop 49). Without one, a
    container of its own is drawn here."""
    text = st.session_state.pop("_notice", None)
    dropped = st.session_state.pop("_gold_dropped_note", None)  # (set with a data set loaded: said after its notice)
    if dropped:
        # (a notice ending in ":" read as if the note were what it introduced; read 45)
        said = str(text).rstrip().removesuffix(":").rstrip()
        joined = (said + ("" if said.endswith((".", "!", "?")) else ".") + " " + dropped) if text else dropped
        text = Refusal(joined) if isinstance(text, Refusal) else joined  # (a refusal stays one; read 44)
    st.session_state["_notice_shown"] = text  # (shown again if this run is redrawn at once: :func:`redraw_page`)
    slot = st.container() if slot is None else slot
    if text:
        refused = isinstance(text, Refusal)
        text = sentence(str(text).rstrip())
        if not text.endswith((".", "!", "?", ":")):  # every notice ends as a sentence (some did not; walkthrough 27)
            text += "."
        if refused:
            slot.warning(safe(text), icon=":material/block:")
        else:
            slot.info(safe(text), icon=":material/info:")


# --------------------------------------------------------------------------- sidebar
@st.cache_data(ttl=10, show_spinner=False)
def _device() -> dict[str, Any]:
    return device_info()


def device_choices() -> list[str]:
    """Devices a user can pick: ``cuda`` only where a GPU is present."""
    return ["auto", "cpu"] + (["cuda"] if _device()["type"] == "cuda" else [])


def sidebar() -> None:
    with st.sidebar:
        ds = dataset()
        st.markdown("**Data set**")
        if ds is None:
            st.caption("none loaded: open the Data page")
        else:
            data = ds["data"]
            usable = usable_gold(ds)
            gold = f" · {usable:,} gold label{'s' * (usable != 1)}" if usable else ""
            st.caption(safe(f"{ds['name']}: {data.n_tasks:,} tasks × {data.n_workers:,} workers × "
                            f"{data.n_classes:,} classes{gold}"))
        st.markdown("**Device**")
        info = _device()
        if info["type"] == "cuda":
            st.caption(f"GPU {info['name']} · {info['free_gb']:.1f} of {info['total_gb']:.1f} GB free")
        else:
            st.caption(info["name"])
        st.markdown("**Jobs on these data**")
        _run_status()
        # (what is kept: "kept by this browser" read as a promise for an uploaded file too; walkthrough 32)
        # ("a file loaded without a run is not" read as cut off; walkthrough 35)
        st.caption(f"Workspace `{workspace()}` · this browser keeps its runs (the owner key is on the Runs page); "
                   f"an uploaded file, answers or truth, is kept only with a run on it")


SIDEBAR_EVERY = 2.0  # seconds between redraws of the sidebar's job lines while a job is queued or running


def _run_status() -> None:
    """One line for each of this session's latest sweep, training and diagnostics on these data (those the pages
    show; every run is on the Runs page), in the words of the pages (``deem_studio.jobs.status_line``); refreshed
    every 2 s while one is queued or running."""
    runs = session_runs()
    first = [manager().snapshot(run_id, history=False) for _, run_id in runs]
    active = any(snap is not None and not snap.done for snap in first)

    @st.fragment(run_every=SIDEBAR_EVERY if active else None)
    def lines() -> None:
        if not runs:
            st.caption("none yet")
            return
        if active:
            sync_url(again=True)  # (a launch's address lost with the run a rerun ended, sent while the job runs)
        for label, run_id in runs:
            snap = manager().snapshot(run_id, history=False)
            icon = STATUS_ICON.get(snap.status, "") if snap else ""
            # (the run ahead named to its owner only: a run link's visitor opened it with the id; attack round 55)
            owner = snap is not None and snap.status == "queued" and can_control(run_id)
            st.caption(f"{icon} {label} `{run_id}` · " + safe(status_line(snap, short=True, owner=owner)))
        if active and all(s is None or s.done
                          for s in (manager().snapshot(r, history=False) for _, r in runs)):
            redraw_page()  # redraw once without the timer

    lines()


def current_snapshot(state_key: str):
    """Progress snapshot of the run kept in ``st.session_state[state_key]``; stops the page when there is
    none (nothing launched yet) or the run no longer exists."""
    run_id = st.session_state.get(state_key)
    if not run_id:
        st.stop()
    snap = manager().snapshot(run_id, history=False)
    if snap is None:
        st.warning(f"Run {run_id} no longer exists")
        st.stop()
    return run_id, snap


def need_dataset() -> dict[str, Any] | None:
    """The active data set, or a message with a link to the Data page (returns None)."""
    ds = dataset()
    if ds is None:
        st.info("Load annotations on the Data page first (or reopen a run on the Runs page).", icon=":material/folder_open:")
        if st.button("Go to the Data page"):
            go("pages/data.py")
    return ds


def table(frame: Any, digits: int = 3, formats: dict[str, str] | None = None,
          column_config: dict[str, Any] | None = None, helps: dict[str, str] | None = None) -> None:
    """``st.dataframe`` of :func:`readable_table` without the index; a number column that had gaps (shown as text)
    stays right-aligned like the other numbers. ``helps``: a tooltip per (renamed) column. Past
    :data:`MAX_TABLE_ROWS` rows the first ones are shown, and said: a run of 400,000 workers made the Results page fail
    ("The dataframe has 2400000 cells, but the maximum number of cells allowed to be rendered by Pandas Styler is
    262144") and took +290 MB a view (attack round 50)."""
    most = min(MAX_TABLE_ROWS, STYLER_CELLS // max(1, frame.shape[1]))  # (the Styler's bound is on cells; read 49)
    if len(frame) > most:
        st.caption(f"The first {most:,} of {len(frame):,} rows (the grid shows no more).")
        frame = frame.iloc[:most]
    shown = readable_table(frame, digits=digits, formats=formats)
    data = getattr(shown, "data", shown)  # a Styler keeps its frame
    helps = helps or {}
    gaps = data.attrs.get("number_text", [])
    config = {column: st.column_config.TextColumn(alignment="right", help=helps.get(column)) for column in gaps}
    config.update({column: st.column_config.Column(help=text) for column, text in helps.items()
                   if column in data.columns and column not in gaps})
    # a short table whole, without a scroll box of its own (the 11th of 11 methods on the Train page was hidden
    # below the grid's 10 rows; walkthrough 41): Streamlit's rows are 35 px, its header one row
    height = (len(data) + 1) * 35 + 3 if 10 < len(data) <= WHOLE_TABLE_ROWS else "auto"
    dataframe(shown, hide_index=True, column_config={**config, **(column_config or {})}, height=height)


#: tables up to this many rows are drawn whole (longer ones scroll in the grid)
WHOLE_TABLE_ROWS = 30
#: the most rows :func:`table` shows (a Styler refuses 262,144 cells: 5,000 rows of up to 52 columns pass)
MAX_TABLE_ROWS = 5_000
#: the most cells pandas' Styler renders (its "styler.render.max_elements")
STYLER_CELLS = 262_144


def whole_number(cell: Any, label: str, low: int, high: int, **kwargs: Any) -> tuple[int, str | None]:
    """A box for a whole number in ``[low, high]`` that takes whatever is typed and says when it is out of range.

    Streamlit's own bounds keep the previous value while the box goes on showing the typed one, the complaint
    hidden behind an icon: a sweep with 3,000 typed as its epochs ran 50. Here the typed number is the value, and
    the second item is the sentence to show (the page keeps its launch button off while there is one)."""
    value = int(cell.number_input(label, step=kwargs.pop("step", 1), **kwargs))
    return value, out_of_range(label, value, low, high)


#: classes drawn one by one in a chart or a matrix (a 3,000-class confusion matrix took 100 s of the server and a
#: 12 MB message per view; 300,000 classes in a bar chart froze the browser: attack round of the seventh session)
MAX_DRAWN_CLASSES = 50


#: layers before the iRBM the Sweep and Train pages run (0 to this; the engine's bound)
MAX_LAYERS = training.MAX_LAYERS


def show_problems(problems: list[str | None]) -> bool:
    """Show the out-of-range sentences of :func:`whole_number` as one error; True when there was one."""
    said = [p for p in problems if p]
    if said:
        st.error(safe(" ".join(said)), icon=":material/warning:")
    return bool(said)


def evidence_table(evidence: Any, clusters: dict | None = None) -> None:
    """How DEEM's start and depth were chosen: the criterion per candidate and reference, with a line on where
    the figures come from and each column's meaning as its help; ``clusters``: the choice's clusters summary."""
    st.caption(evidence_caption(evidence, clusters))
    # (the note read "ranked first; repla…" at 1400 px; walkthrough, tenth session; and "ranked first; replaced by the
    # sa" with five score columns before it, walkthrough 62: beside the candidate's name)
    if "note" in evidence and "candidate" in evidence:
        evidence = evidence[["candidate", "note", *[c for c in evidence.columns if c not in ("candidate", "note")]]]
    table(evidence, digits=4, helps=EVIDENCE_HELP,
          # (as wide as its longest words: "large" left the score on the training answers cut to "s" and the
          # agreement out of sight at 1,400 px; walkthrough 64)
          # (and only then: "chosen" alone in 265 px pushed every score out of sight at 900 px; walkthrough 65)
          column_config={"note": st.column_config.TextColumn(
              width=265 if "note" in evidence and evidence["note"].astype(str).str.len().max() > 12 else None,
              help=EVIDENCE_HELP.get("note"))})


#: the columns of every method's table the Results and Train pages read for all methods: the labels, and which tasks
#: majority vote ties on (one read for both pages)
LABEL_COLUMNS = ("label", "majority_vote_tied")


def run_tables(run_id: str, methods: list[str] | None = None, labels_only: bool = False) -> Any:
    """A finished run's stored tables as the Results and Train pages show them (tasks in natural order): every
    method's table (``methods``: only those), or only their :data:`LABEL_COLUMNS`; one copy for every session
    (:func:`deem_studio.capacity.run_tables`). A server with no room left says so and stops the page."""
    try:
        return capacity.run_tables(manager().store, run_id, methods, LABEL_COLUMNS if labels_only else None,
                                   prepare=in_natural_order)
    except capacity.CapacityError as exc:
        show_error(exc, "This run's tables cannot be read now")
        st.stop()


#: columns that name things (a worker 1001 is not "1,001"): never given thousands separators
NAME_COLUMNS = frozenset({"task", "worker", "class", "label", "truth", "gold", "seed", "run", "run id", "method"})


def count_columns(frame: Any) -> list[str]:
    """The integer columns of ``frame`` that hold counts (not names: :data:`NAME_COLUMNS`, ``... id``)."""
    import pandas as pd  # noqa: PLC0415

    return [c for c in frame.columns
            if pd.api.types.is_integer_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
            and str(c).lower() not in NAME_COLUMNS and not str(c).lower().endswith((" id", "_id"))]


def count_config(frame: Any) -> dict[str, Any]:
    """``column_config`` giving the count columns of a frame shown by ``st.dataframe`` thousands separators."""
    return {c: st.column_config.NumberColumn(format="localized") for c in count_columns(frame)}


def readable_table(frame: Any, digits: int = 3, formats: dict[str, str] | None = None) -> Any:
    """A table for ``st.dataframe`` with column names in words (``free_energy`` -> ``free energy``) and no
    "None" text in numeric columns (a missing number shows as an empty cell). ``formats``: a format string
    per (renamed) column, e.g. ``{"seconds": "{:.2f}"}``; other float columns get ``digits`` decimals, integer
    columns thousands separators."""
    frame = visible_cells(frame).rename(columns=lambda c: str(c).replace("_", " "))
    formats = dict(formats or {})
    for column in count_columns(frame):  # counts with thousands separators (2,000 answers, not 2000)
        formats.setdefault(column, "{:,}")
    numeric = [c for c in frame.columns if pd.api.types.is_float_dtype(frame[c]) or c in formats]
    if not numeric:
        return frame
    # the grid shows a missing number as "None" whatever the Styler says: a column with gaps becomes its text
    gaps = [c for c in numeric if frame[c].isna().any()]
    if gaps:
        frame = frame.copy()
        for column in gaps:
            fmt = formats.pop(column, "{:.%df}" % digits)
            frame[column] = [unsigned_zero(fmt.format(v)) if pd.notna(v) else "" for v in frame[column]]
        frame.attrs["number_text"] = list(gaps)  # (``table`` keeps them right-aligned)
        numeric = [c for c in numeric if c not in gaps]
        if not numeric:
            return frame
    plain = "{:.%df}" % digits
    style = frame.style.format(lambda v: unsigned_zero(plain.format(v)), na_rep="",
                               subset=[c for c in numeric if c not in formats])
    for column, fmt in formats.items():
        if column in frame.columns:
            style = style.format(lambda v, fmt=fmt: unsigned_zero(fmt.format(v)), na_rep="", subset=[column])
    return style


def unsigned_zero(text: str) -> str:
    """A formatted number without the sign of a value that rounds to zero: an importance of -0.00006 read "-0.000",
    as if it were below 0 (walkthrough 104)."""
    if text.startswith("-") and not any(c in "123456789" for c in text) and any(c == "0" for c in text):
        return text[1:]  # (a digit 0 and no other: "-inf" keeps its sign; read 53)
    return text


if __name__ == "__main__":  # run as a page: Streamlit's legacy mode lists every file of pages/, this one too
    require_shell()
