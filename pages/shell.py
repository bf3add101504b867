"""The shell guard: every page's first call, before its heavy imports.

Why a guard: with a folder named ``pages`` next to ``app.py``, Streamlit 1.67 starts in its legacy
multipage mode (``PagesManager.uses_pages_directory`` is True until some session calls ``st.navigation``;
see ``_mpa_v1`` in streamlit/runtime/scriptrunner/script_runner.py). In that mode the first request of a
freshly started server to a page address (``/train?ws=..&run=..``: a refresh, a bookmark, a shared link)
runs ``pages/train.py`` alone: no session restore, no sidebar, every file of the folder listed as a page.
(``AppTest`` even starts every run in that mode.)

``app.py`` marks the script run while it runs a page (:func:`shell`). Every page calls :func:`require_shell`
first, before it imports the engine (torch, pandas: seconds on a fresh server, while the browser would
show the legacy list of module names "app, common, data, ..."); a page that finds no mark switches the
legacy mode off for the whole server (what ``st.navigation`` itself does) and runs ``app.py`` in its place,
in the same script run: the shell routes to the same page (same address, same widget states, so a click
is never lost), and the legacy run then stops. Nothing was drawn before, and the shell's
``st.navigation`` replaces the legacy page list at once.

This module imports only the standard library and streamlit.
"""

from __future__ import annotations

import contextlib
import threading
import types
from pathlib import Path
from typing import Any

import streamlit as st

__all__ = ["in_shell", "require_shell", "shell"]

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


if __name__ == "__main__":  # run as a page: Streamlit's legacy mode lists every file of pages/, this one too
    require_shell()
