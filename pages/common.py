"""What every page shares: session state, the URL (run id), the owner key, the sidebar, error messages, and the
one way to show a user-derived string (:func:`safe`, :func:`plotly_chart`).

State model (all per browser session, in ``st.session_state``; nothing of one user is visible to another):

* ``owner_key`` this browser's secret owner key (:mod:`deem_studio.owners`): read from the ``deem_owner``
               cookie when the session starts (``st.context.cookies``), else new; written back to the cookie by
               a tiny script component (:func:`remember_owner`). Never in the URL. It alone allows cancelling,
               deleting and renaming the runs it launched (:func:`can_control`).
* ``ws``       the workspace id: a one-way hash of the owner key. Runs are stored with it as their owner; the
               Runs page lists the runs of this workspace.
* ``dataset``  the active data: ``{"name", "data" (AnnotationSet), "gold" (Series or None), "files",
               "origin"}``.
* ``run``      the current run id, the only thing kept in the URL (``?run=...``) so that a browser refresh, or
               the link sent to a colleague, reopens it (read-only for anyone but its owner); ``sweep_run`` /
               ``train_run`` the latest sweep and training of this session; ``chosen_lr`` the learning rate
               picked on the Sweep page.

Every user-derived string (file, data-set, worker, class and task names, query parameters, messages that quote
them) reaches a Markdown-rendering call (``st.markdown``, ``caption``, ``info``/``warning``/``error``, labels,
``help``, toasts) only through :func:`safe`; charts go through :func:`plotly_chart`. Plain text
(``st.text``, ``st.code``), dataframe cells and selectbox options need nothing.

Jobs themselves live in the process-wide :class:`deem_studio.jobs.JobManager`, looked up by run id.
"""

from __future__ import annotations

import contextlib
import functools
import re
import string
import threading
import types
from pathlib import Path
from typing import Any, Callable

import streamlit as st

from deem_core.data.text import escape_controls
from deem_core.plots.safety import escape_figure
from deem_studio import owners
from deem_studio.jobs import device_info, get_manager, readable_error
from deem_studio.runs import RunNotFound, is_run_id

STATUS_ICON = {"queued": ":material/hourglass_top:", "running": ":material/sync:",
               "finished": ":material/check_circle:", "cancelled": ":material/stop_circle:",
               "failed": ":material/error:"}


def manager():
    """The process-wide job manager (shared by every session; jobs are found by run id)."""
    return get_manager()


# --------------------------------------------------------------------------- the shell guard
# Why a guard: with a folder named ``pages`` next to ``app.py``, Streamlit 1.67 starts in its legacy
# multipage mode (``PagesManager.uses_pages_directory`` is True until some session calls ``st.navigation``;
# see ``_mpa_v1`` in streamlit/runtime/scriptrunner/script_runner.py). In that mode the first request of a
# freshly started server to a page address (``/train?ws=..&run=..``: a refresh, a bookmark, a shared link)
# runs ``pages/train.py`` alone: no session restore, no sidebar, every file of the folder listed as a page.
# (``AppTest`` even starts every run in that mode.)
#
# ``app.py`` marks the script run while it runs a page (``shell()``). Every page calls ``require_shell()``
# before drawing anything; a page that finds no mark switches the legacy mode off for the whole server
# (what ``st.navigation`` itself does) and runs ``app.py`` in its place, in the same script run: the shell
# routes to the same page (same address, same widget states, so a click is never lost), and the legacy
# run then stops. Nothing was drawn before, and the shell's ``st.navigation`` replaces the legacy page list.
_SHELL = threading.local()
_APP_PATH = Path(__file__).resolve().parents[1] / "app.py"
_APP_CODE: list[Any] = []


@contextlib.contextmanager
def shell():
    """``app.py`` runs the selected page inside this: pages know they were reached through the shell."""
    previous = getattr(_SHELL, "active", False)
    _SHELL.active = True
    try:
        yield
    finally:
        _SHELL.active = previous


def in_shell() -> bool:
    return bool(getattr(_SHELL, "active", False))


def require_shell() -> None:
    """First call of every page: a page started without ``app.py`` (legacy multipage mode) is run again
    through ``app.py`` within this script run, then this run stops."""
    if in_shell():
        return
    from streamlit.runtime.pages_manager import PagesManager  # noqa: PLC0415

    PagesManager.uses_pages_directory = False  # later runs of every session go through app.py directly
    if not _APP_CODE:
        _APP_CODE.append(compile(_APP_PATH.read_text(encoding="utf-8"), str(_APP_PATH), "exec"))
    module = types.ModuleType("__main__")
    module.__file__ = str(_APP_PATH)
    exec(_APP_CODE[0], module.__dict__)  # noqa: S102 - our own shell script
    st.stop()  # the shell has drawn the page; what remains of the legacy run is skipped


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


def plotly_chart(figure: Any, **kwargs: Any) -> Any:
    """``st.plotly_chart`` of a figure whose names, labels, titles and hover texts are shown as text (plotly
    would render ``<a href>``, ``<b>`` ... in them): :func:`deem_core.plots.safety.escape_figure`."""
    return st.plotly_chart(escape_figure(figure), **kwargs)


def message(kind: str, text: Any, **kwargs: Any) -> None:
    """``st.info``/``success``/``warning``/``error`` of a whole message that may quote user strings."""
    getattr(st, kind)(safe(text), **kwargs)


# --------------------------------------------------------------------------- errors
def show_error(exc: BaseException, what: str = "") -> None:
    """A readable one-line message instead of a traceback (file names and values in it shown as text)."""
    prefix = f"{what}: " if what else ""
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
def workspace() -> str:
    """This session's workspace id (the hash of its owner key; runs are stored with it as their owner)."""
    return st.session_state["ws"]


def owner_key() -> str:
    return st.session_state["owner_key"]


def use_owner_key(key: str) -> None:
    """Make ``key`` this session's owner key (and, through :func:`remember_owner`, this browser's)."""
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
            st.toast("cancelling: the run stops after the current mini-batch and keeps what it has")
        else:
            st.warning("This run is not running in this server process; it will be marked failed at the next start.")
    except owners.AccessDenied as exc:
        st.error(safe(exc), icon=":material/lock:")


def read_only_note(run_id: str) -> None:
    st.caption(safe(f"Run {run_id} belongs to another workspace: you see it read-only (only its owner can cancel, "
                    f"rename or delete it)."))


# A v2 component (no iframe: it runs in the page itself) that writes the owner key into this site's cookie, so
# the next session of this browser (a refresh, a new tab, after a server restart) starts with the same key. The
# server reads it back from the request (st.context.cookies). Only hex characters ever reach the cookie string.
_OWNER_COOKIE_JS = """
export default function ({ data }) {
  if (!data || !/^[0-9a-f]{32}$/.test(data.value)) return;
  const secure = window.location.protocol === "https:" ? "; Secure" : "";
  document.cookie = `${data.name}=${data.value}; path=/; max-age=${data.maxAge}; SameSite=Strict${secure}`;
}
"""
_COOKIE_WRITER: list[Any] = []


def remember_owner() -> None:
    """Write this session's owner key into the browser's cookie (an invisible element; every script run)."""
    if not _COOKIE_WRITER:
        _COOKIE_WRITER.append(st.components.v2.component("deem_owner_cookie", js=_OWNER_COOKIE_JS))
    _COOKIE_WRITER[0](data={"name": owners.COOKIE_NAME, "value": owner_key(), "maxAge": owners.COOKIE_MAX_AGE},
                      key="deem_owner_cookie", height=0)


def _cookie(name: str) -> str | None:
    try:
        return st.context.cookies.get(name)
    except Exception:  # noqa: BLE001 - no browser request (bare mode, tests)
        return None


# --------------------------------------------------------------------------- session + URL


def dataset() -> dict[str, Any] | None:
    return st.session_state.get("dataset")


def set_dataset(name: str, data: Any, gold: Any = None, files: list[str] | None = None, origin: str = "upload"
                ) -> None:
    st.session_state["dataset"] = {"name": name, "data": data, "gold": gold, "files": list(files or []),
                                   "origin": origin}
    st.session_state.pop("summary_cache", None)


def set_gold(gold: Any) -> None:
    if dataset() is not None:
        st.session_state["dataset"]["gold"] = gold


def set_current_run(run_id: str | None, kind: str | None = None) -> None:
    st.session_state["run"] = run_id
    if run_id and kind in ("sweep", "train"):
        st.session_state[f"{kind}_run"] = run_id
    elif run_id and kind == "diagnostics":
        st.session_state["diag_run"] = run_id
    sync_url()


PAGE_OF_KIND = {"sweep": "pages/sweep.py", "train": "pages/train.py", "diagnostics": "pages/diagnostics.py"}


def init_session() -> None:
    """Once per script run, before the page: workspace and run from the URL, then the URL from the state."""
    ss, params = st.session_state, st.query_params
    key = ss.get("owner_key")
    if not owners.is_owner_key(key):
        key = owners.normalise_key(_cookie(owners.COOKIE_NAME)) or owners.new_owner_key()
    if ss.get("ws") != owners.workspace_of(key):
        use_owner_key(key)
    if "ws" in params:
        # addresses of older versions carried the workspace (then also the key to its runs): ignored, dropped
        del params["ws"]
        ss["_notice"] = ("This address carries an old workspace id (ws=...): it no longer gives access to any runs. "
                         "Runs are now controlled by the owner key of the browser that launched them (Runs page).")
    url_run = params.get("run")
    if url_run and url_run != ss.get("run") and url_run != ss.get("_url_run_seen"):
        ss["_url_run_seen"] = url_run
        if is_run_id(url_run):
            open_run(url_run, quiet=True)
        else:
            shown = url_run if len(url_run) <= 80 else url_run[:80] + "…"
            ss["_notice"] = f"the address names run {shown!r}, which is not a run id; it was ignored"
    sync_url()


def sync_url() -> None:
    """Keep ``run`` in the address bar (page switches drop query parameters); nothing else goes there."""
    params = st.query_params
    wanted = url_params()
    for key, value in wanted.items():
        if params.get(key) != value:
            params[key] = value
    if "run" not in wanted and "run" in params:
        del params["run"]


def url_params() -> dict[str, str]:
    run_id = st.session_state.get("run")
    return {"run": run_id} if run_id else {}


def go(page: str) -> None:
    """Switch page keeping the run in the URL."""
    st.switch_page(page, query_params=url_params())


def open_run(run_id: str, quiet: bool = False, restore_data: bool = True) -> bool:
    """Make ``run_id`` the current run (and its kind's run); bring back its data when none is loaded or
    another data set is. Returns False (with a message) when there is no such run."""
    store = manager().store
    try:
        record = store.get(run_id)
    except RunNotFound as exc:
        st.session_state["_notice"] = str(exc)
        return False
    set_current_run(run_id, record["kind"])
    restore_form(record)
    if record["kind"] == "diagnostics":
        source = (record.get("config") or {}).get("source_run")
        if not is_run_id(source):
            return True
        st.session_state["train_run"] = source
        try:
            record = store.get(source)
            run_id = source
        except RunNotFound:
            return True
    current = dataset()
    if restore_data and (current is None or current["data"].fingerprint() != record.get("fingerprint")):
        try:
            data, gold = store.load_data(run_id)
        except Exception as exc:  # noqa: BLE001
            st.session_state["_notice"] = f"run {run_id}: its annotations could not be read ({readable_error(exc)})"
            return True
        if data is not None:
            set_dataset(record.get("dataset") or data.source, data, gold, origin=f"run {run_id}")
            if not quiet:
                st.session_state["_notice"] = (f"loaded the annotations of run {run_id} "
                                               f"({data.n_tasks:,} tasks) as the active data set")
    return True


#: form widget <- run configuration key, per run kind (a reopened run shows the settings it was launched with)
FORM_OF_CONFIG = {
    "train": {"train_methods": "methods", "train_layers": "n_layers", "train_epochs": "epochs",
              "train_seeds": "n_seeds", "train_lr": "lr", "train_init": "init", "train_device": "device",
              "train_seed": "seed", "train_gold_weight": "supervised_weight"},
    "sweep": {"sweep_lrs": "lrs", "sweep_epochs": "epochs", "sweep_layers": "n_layers", "sweep_seeds": "n_seeds",
              "sweep_device": "device"},
}


def restore_form(record: dict[str, Any]) -> None:
    """Fill the Train or Sweep form with a reopened run's settings (values a form cannot show are skipped)."""
    config = record.get("config") or {}
    ss = st.session_state
    for key, name in FORM_OF_CONFIG.get(record.get("kind"), {}).items():
        value = config.get(name)
        if value is None:
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
            elif key in ("train_lr", "train_gold_weight"):
                value = float(value)
            elif key == "train_init":
                if value not in ("auto", "ds", "mv"):  # the Train page's choices
                    continue
            else:
                value = int(value)
        except (TypeError, ValueError):
            continue
        ss[key] = value
    if record.get("kind") == "train" and "lr" in config:
        ss["_train_lr_from"] = ss.get("chosen_lr")  # the run's rate wins over the sweep's until a new pick


def notices() -> None:
    """The pending notice (kept as plain text; shown as text: it may quote a file name or a query parameter)."""
    text = st.session_state.pop("_notice", None)
    if text:
        st.info(safe(text), icon=":material/info:")


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
            gold = " · gold labels" if ds.get("gold") is not None else ""
            st.caption(safe(f"{ds['name']}: {data.n_tasks:,} tasks × {data.n_workers:,} annotators × "
                            f"{data.n_classes:,} classes{gold}"))
        st.markdown("**Device**")
        info = _device()
        if info["type"] == "cuda":
            st.caption(f"GPU {info['name']} · {info['free_gb']:.1f} of {info['total_gb']:.1f} GB free")
        else:
            st.caption(info["name"])
        st.markdown("**Current run**")
        _run_status(st.session_state.get("run"))
        st.caption(f"Workspace `{workspace()}` · kept by this browser (its owner key is on the Runs page)")
        remember_owner()


def _run_status(run_id: str | None) -> None:
    """The current run's status line; while it is queued or running it refreshes itself every 2 s."""
    first = manager().snapshot(run_id) if run_id else None
    active = first is not None and not first.done

    @st.fragment(run_every=2.0 if active else None)
    def line() -> None:
        snap = manager().snapshot(run_id) if run_id else None
        if not run_id:
            st.caption("none yet")
        elif snap is None:
            st.caption(f"`{run_id}` (not found)")
        else:
            detail = f" · {snap.phase}" if snap.status == "running" and snap.phase else ""
            st.caption(f"{STATUS_ICON.get(snap.status, '')} {snap.kind} `{run_id}` · {snap.status}{detail}")
            if active and snap.done:
                st.rerun()  # redraw once without the timer

    line()


def current_snapshot(state_key: str):
    """Progress snapshot of the run kept in ``st.session_state[state_key]``; stops the page when there is
    none (nothing launched yet) or the run no longer exists."""
    run_id = st.session_state.get(state_key)
    if not run_id:
        st.stop()
    snap = manager().snapshot(run_id)
    if snap is None:
        st.warning(f"run {run_id} no longer exists")
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


def fmt_lr(value: Any) -> str:
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return str(value)


if __name__ == "__main__":  # run as a page: Streamlit's legacy mode lists every file of pages/, this one too
    require_shell()
