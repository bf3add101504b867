"""Diagnostics page: what the fitted DEEM learnt about the annotators (built on deem_core.diagnostics)."""

from __future__ import annotations

import streamlit as st

from pages import common

st.title("Diagnostics")
run_id = st.session_state.get("train_run")
if not run_id:
    st.info("Train a DEEM model first (Train page), or reopen a training run on the Runs page.", icon="🔬")
    st.stop()
st.info("Per-layer mutual information, learner importance and learner quality will appear here.", icon="🚧")
