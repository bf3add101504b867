"""DEEM Studio dashboard: ``streamlit run app.py``.

Thin shell: routes the pages (``pages/``) with ``st.navigation``, restores the session from the URL
(workspace and run id), draws the sidebar, and turns any exception of a page into a readable message.
All computing is in ``deem_core``; training runs in background jobs (``deem_studio.jobs``).

The pages live in ``pages/``. With such a folder next to the main script, Streamlit 1.67 starts in its
legacy multipage mode until a session calls ``st.navigation``: a first request to ``/train?run=...`` after
a server start would run ``pages/train.py`` alone, without this shell. Every page therefore starts with
``require_shell()`` (pages/shell.py), and this script marks its page run with ``shell()``: a page reached
without the shell switches the legacy mode off and runs this script in its place, in the same script
run, on the same address (see ``pages/shell.py``).

First load: the navigation is sent before anything heavy is imported (``pages.common`` brings the engine:
torch, scipy, pandas, ~2-10 s on a fresh server), and a spinner says what is happening meanwhile. Started with
``deem-studio`` (``deem_studio.serve.no_legacy_pages``) the server is out of the legacy mode from its start, and
no browser is sent the legacy page list ("app, common, data, ..."). Started as ``streamlit run app.py``, the
first page view of a fresh server is sent that list and shows it until this script's ``st.navigation`` replaces
it (1-4 s on a loaded machine; attack round 57): ``deem-studio`` is the way to serve it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

from deem_studio.serve import AGENT_API, AGENT_API_REFUSED
from deem_studio.server_log import install_log_bounds
from deem_studio.uploads import (install_connection_limit, install_http_connection_limit, install_message_kinds,
                                  install_message_limit, install_upload_guard)
from pages.shell import shell

install_log_bounds()  # once per server process: no log line a client can make long or repeat at will
install_upload_guard()  # once per server process: uploads are bounded per session and in all (deem_studio/uploads.py)
install_message_limit()  # once per server process: a browser's websocket message is bounded before it is read
install_message_kinds()  # once per server process: no git commands for a visitor, upload addresses bounded per request
install_connection_limit()  # once per server process: websocket connections per address and in all
install_http_connection_limit()  # once per server process: HTTP connections per address, in all, heads timed
# the page icon from this folder: ":material/hub:" made every page view fetch it from fonts.gstatic.com (13 console
# errors an hour on a server with no internet, and a request to Google from a tool meant to run locally; walkthrough 37)
st.set_page_config(page_title="DEEM Studio", page_icon=str(Path(__file__).resolve().parent / "assets" / "favicon.png"),
                   layout="wide")
# narrow windows: the wide layout's side padding (5rem a side) left 440 px of a 900 px window beside the sidebar
# (walkthrough 123); our own style, no user text in it
st.html("<style>@media (max-width: 1200px) { [data-testid='stMainBlockContainer'] "
        "{ padding-left: 1.5rem; padding-right: 1.5rem; } }</style>")
if st.get_option(AGENT_API):  # turned on some other way than deem-studio's options (which refuse it)
    st.error(AGENT_API_REFUSED + ".")
    st.stop()

PAGES = [
    # (the root page reserves the name it is given, even though it is served at "/": not "data", kept for the
    # page below)
    st.Page("pages/data.py", title="Data", icon=":material/folder_open:", default=True, url_path="start"),
    st.Page("pages/sweep.py", title="Sweep", icon=":material/show_chart:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/results.py", title="Results", icon=":material/label:"),
    st.Page("pages/diagnostics.py", title="Diagnostics", icon=":material/biotech:"),
    st.Page("pages/runs.py", title="Runs", icon=":material/history:"),
    # the Data page is the app's root; /data, typed by whoever knows the other pages' addresses, opens it too
    # instead of "Page not found" (walkthrough 18)
    st.Page("pages/data.py", title="Data", url_path="data", visibility="hidden"),
]

page = st.navigation(PAGES)
if "pages.common" in sys.modules:
    from pages import common
else:  # the first script run of this server process
    with st.spinner("Starting DEEM Studio: loading the engine (a few seconds, once per server start)…"):
        from pages import common
# the notice's own place, drawn on every run before anything that could fail: the elements below it keep their
# places whether a notice is shown or not (pages/common.py: notices)
notice_slot = st.container()
try:
    common.init_session()
    common.forget_deleted_data()
    common.sidebar()
    common.notices(notice_slot)
except Exception as exc:  # noqa: BLE001 - never a traceback on the page
    with notice_slot:  # (in the notice's place: drawn below it, it moved the page as a notice did; read 42)
        common.show_error(exc, "could not restore the session")

with shell():
    try:
        page.run()
    except Exception as exc:  # noqa: BLE001 - st.rerun/st.stop are BaseException and pass through
        from deem_studio.runs import RunNotFound  # (loaded by then; not before the first navigation is sent)

        if isinstance(exc, RunNotFound):  # deleted by its owner while open here (it read "the Train page failed:
            # RunNotFound: no run with id ..."; attack round 11)
            from deem_studio import wording  # (pandas: not imported before the navigation is sent)

            st.info(common.safe(wording.sentence(f"{exc}: {common.GONE}. The Runs page lists this browser's runs.")),
                    icon=":material/delete:")
        else:
            common.show_error(exc, f"the {page.title} page failed")
