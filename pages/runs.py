"""Runs page: this workspace's past runs from the SQLite index; reopen, cancel or delete; open any run by id."""

from __future__ import annotations

from pages.shell import require_shell

require_shell()  # first, before the heavy imports below (pages/shell.py)

import time  # noqa: E402

import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from deem_studio.jobs import method_name  # noqa: E402
from deem_studio.runs import ACTIVE_STATUSES, is_run_id  # noqa: E402
from pages import common  # noqa: E402


st.title("Runs")
mgr = common.manager()
st.caption(f"Runs are kept on the server across restarts (one folder per run). This list shows the runs of your "
           f"workspace `{common.workspace()}`; another user's run opens only with its run id.")


def describe(row: pd.Series) -> str:
    summary = row["summary"] or {}
    bits = []
    if summary.get("recommended_lr") is not None:
        bits.append(f"recommended lr {common.fmt_lr(summary['recommended_lr'])}")
    for key, value in summary.items():
        if key.startswith("accuracy_") and value is not None:
            bits.append(f"{method_name(key[9:])} {value:.3f}")
    return ", ".join(bits)


def setting(config: dict, key: str) -> str:
    """One setting of a run's configuration as short text (empty when the run has none)."""
    value = (config or {}).get(key)
    if value is None:
        return ""
    if key == "lr":
        return common.fmt_lr(value)
    if key == "lrs":
        return ", ".join(common.fmt_lr(v) for v in value)
    if key == "methods":
        return ", ".join(method_name(m) for m in value)
    return str(value)


runs = mgr.store.list(owner=common.workspace())
if len(runs):
    configs = runs["config"]
    table = pd.DataFrame({
        "started": pd.to_datetime(runs["created_at"], unit="s").dt.strftime("%Y-%m-%d %H:%M:%S"),
        "run id": runs["run_id"], "kind": runs["kind"],
        "status": runs["status"],
        "data set": runs["dataset"], "tasks": runs["n_tasks"],
        "methods": [setting(c, "methods") for c in configs],
        "learning rate": [setting(c, "lr") if k == "train" else
                          (setting(c, "lrs") or "default grid") if k == "sweep" else ""
                          for c, k in zip(configs, runs["kind"])],
        "epochs": [setting(c, "epochs") for c in configs],
        "seconds": runs["seconds"].fillna(time.time() - runs["started_at"]).round(1),  # running: so far
        "summary": runs.apply(describe, axis=1), "message": runs["message"]})
    st.dataframe(table, hide_index=True, width="stretch")
    labels = {rid: f"{rid} · {kind} · {status} · {ds or ''}" for rid, kind, status, ds in
              zip(runs["run_id"], runs["kind"], runs["status"], runs["dataset"])}
    chosen = st.selectbox("Run", list(labels), format_func=labels.get, key="runs_choice")
    status = runs.loc[runs["run_id"] == chosen, "status"].iloc[0]
    kind = runs.loc[runs["run_id"] == chosen, "kind"].iloc[0]
    c = st.columns([1, 1, 6])
    if c[0].button("Open", type="primary", key="runs_open"):
        if common.open_run(chosen, quiet=False):
            common.go(common.PAGE_OF_KIND.get(kind, "pages/train.py"))
    if status in ACTIVE_STATUSES and c[1].button("Cancel", key="runs_cancel"):
        if mgr.cancel(chosen):
            st.toast(f"cancelling run {chosen}")
        else:
            st.warning("This run is not running in this server process; it will be marked failed at the next start.")
    if status not in ACTIVE_STATUSES and c[1].button("Delete", key="runs_delete"):
        st.session_state["_confirm_delete"] = chosen
    if st.session_state.get("_confirm_delete") == chosen:
        st.warning(f"Delete run {chosen} and all its files?")
        if st.button("Yes, delete it", key="runs_delete_yes"):
            try:
                mgr.store.delete(chosen)
                if st.session_state.get("run") == chosen:
                    common.set_current_run(None)
                for key in ("sweep_run", "train_run"):
                    if st.session_state.get(key) == chosen:
                        st.session_state.pop(key)
                st.session_state.pop("_confirm_delete", None)
                st.rerun()
            except Exception as exc:  # noqa: BLE001
                common.show_error(exc, "delete")
else:
    st.info("No runs in this workspace yet.")

st.subheader("Open a run by id")
typed = st.text_input("Run id", key="runs_by_id", placeholder="16 hexadecimal characters, e.g. from a shared link")
if st.button("Open this run", key="runs_open_id"):
    text = typed.strip().lower()
    if not text:
        st.error("Type or paste a run id first.")
    elif not is_run_id(text):
        st.error(f"{typed!r} is not a run id (16 hexadecimal characters)")
    elif not common.open_run(text, quiet=False):
        st.error(st.session_state.pop("_notice", f"no run with id {text}"))
    else:
        kind = mgr.store.get(text)["kind"]
        common.go(common.PAGE_OF_KIND.get(kind, "pages/train.py"))
