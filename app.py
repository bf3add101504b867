"""DEEM Studio dashboard: ``streamlit run app.py``.

Thin shell: routes the pages (``views/``) with ``st.navigation``, restores the session from the URL
(workspace and run id), draws the sidebar, and turns any exception of a page into a readable message.
All computing is in ``deem_core``; training runs in background jobs (``deem_core.jobs``).

Why ``views/`` and not ``pages/``: with a folder named ``pages`` next to the main script, Streamlit 1.67
starts in its legacy multipage mode (``PagesManager.uses_pages_directory``) until some session has run
``st.navigation``. If the first request after a server start is a page URL (a refresh of
``/train?run=...``), Streamlit runs ``pages/train.py`` alone, without this shell: no session restore, no
sidebar, and the legacy page list (every file of the folder) in the sidebar (seen in a real browser).
"""

from __future__ import annotations

import streamlit as st

from views import common

st.set_page_config(page_title="DEEM Studio", page_icon=":material/hub:", layout="wide")

PAGES = [
    st.Page("views/data.py", title="Data", icon=":material/folder_open:", default=True),
    st.Page("views/sweep.py", title="Sweep", icon=":material/show_chart:"),
    st.Page("views/train.py", title="Train", icon=":material/model_training:"),
    st.Page("views/results.py", title="Results", icon=":material/label:"),
    st.Page("views/diagnostics.py", title="Diagnostics", icon=":material/biotech:"),
    st.Page("views/runs.py", title="Runs", icon=":material/history:"),
]

page = st.navigation(PAGES)
try:
    common.init_session()
    common.sidebar()
    common.notices()
except Exception as exc:  # noqa: BLE001 - never a traceback on the page
    common.show_error(exc, "could not restore the session")

try:
    page.run()
except Exception as exc:  # noqa: BLE001 - st.rerun/st.stop are BaseException and pass through
    common.show_error(exc, f"the {page.title} page failed")
