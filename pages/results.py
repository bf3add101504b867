"""Results page: the label table with confidence, a review queue, and every download."""

from __future__ import annotations

from pages.shell import require_shell

require_shell()  # first, before the heavy imports below (pages/shell.py)

import json  # noqa: E402

import streamlit as st  # noqa: E402

from deem_core.data.export import to_safe_csv  # noqa: E402
from deem_core.methods import registry  # noqa: E402
from deem_studio.jobs import method_name, status_line  # noqa: E402
from pages import common  # noqa: E402


st.title("Results")
mgr = common.manager()

run_id = st.session_state.get("train_run")
if not run_id:
    st.info("No training run yet: train on the Train page, or reopen a run on the Runs page.", icon=":material/label:")
    st.stop()


@st.cache_data(max_entries=8, show_spinner=False)
def _load(run_id: str, status: str, finished_at: float | None):
    """A finished run's stored tables (cached per run id and state; results never change once written)."""
    loaded = mgr.store.load(run_id, with_data=False)
    # runs saved before the engine said "worker" everywhere call that table "learners"
    workers = loaded.extras.get("workers", loaded.extras.get("learners"))
    return loaded.record, loaded.config, loaded.results, workers, loaded.model_names(), loaded.problems


snap = mgr.snapshot(run_id)
if snap is None:
    st.warning(f"run {run_id} no longer exists")
    st.stop()
if not snap.done:
    st.info(f"Run {run_id} is {snap.status}; its labels appear here when it ends.", icon=":material/hourglass_top:")
    if st.button("Watch it on the Train page"):
        common.go("pages/train.py")
    st.stop()
record, config, results, workers, models, problems = _load(run_id, snap.status, snap.finished_at)
if not common.run_of_this_data(run_id):
    common.other_data_note(run_id)
name = record.get("name") or record.get("dataset") or ""
st.caption(f"Run `{run_id}` · " + common.safe(f"{name} · {status_line(snap)}"))
if not common.can_control(run_id):
    common.read_only_note(run_id)
for part, problem in problems.items():  # one damaged file never hides the rest of the run
    st.warning(common.safe(f"{part.removeprefix('results/')}: {problem}; the other results are shown"),
               icon=":material/broken_image:")
if not results:
    st.info(common.safe("This run has no labels." + (f" ({snap.message})" if snap.message else "")))
    st.stop()

# the run's own choice first: the first DEEM model it trained (else its first method); the picker is keyed by
# the run, so a new run never opens on the method picked for an earlier one
ordered = [m for m in (config.get("methods") or []) if m in results] + [m for m in results
                                                                          if m not in (config.get("methods") or [])]
primary = next((m for m in ordered if m in registry.METHODS and registry.get_method(m).trains), ordered[0])
method_key = f"results_method_{run_id}"
if st.session_state.get(method_key) not in results:
    st.session_state[method_key] = primary
method = st.selectbox("Method", ordered, key=method_key, format_func=method_name)
frame = results[method]
proba_cols = [c for c in frame.columns if str(c).startswith("p_")]

c = st.columns([3, 2, 2])
max_conf = c[0].slider("Show tasks with confidence at most", 0.0, 1.0, 1.0, 0.01, key="results_max_conf",
                       persist_state="session")
only_disagree = c[1].toggle("Only disagreements", key="results_disagree", persist_state="session",
                            help="only the tasks whose label differs from majority vote's")
review = c[2].toggle("Least confident first", key="results_review", persist_state="session",
                     help="a review queue: the tasks most worth a second look come first")
view = frame
if "confidence" in view and view["confidence"].notna().any():
    view = view[view["confidence"].fillna(0.0) <= max_conf + 1e-12]
if only_disagree and "disagrees_with_majority" in view:
    view = view[view["disagrees_with_majority"]]
if review and "confidence" in view:
    view = view.sort_values("confidence", kind="stable")
st.caption(f"{len(view):,} of {len(frame):,} tasks")
shown = view.reset_index()
shown["task"] = shown["task"].astype(str)
st.dataframe(shown.head(5000), hide_index=True, height=420, column_config={
    "confidence": st.column_config.ProgressColumn("confidence", min_value=0.0, max_value=1.0, format="%.3f"),
    **{col: st.column_config.NumberColumn(f"p({str(col)[2:]})", format="%.3f") for col in proba_cols},
    "free_energy": st.column_config.NumberColumn("free energy", format="%.3f",
                                                 help="high = an unusual pattern of answers"),
    "seed_agreement": st.column_config.NumberColumn("seed agreement", format="%.3f",
                                                    help="share of the seeds that give this label"),
    "majority_vote": st.column_config.Column("majority vote"),
    "disagrees_with_majority": st.column_config.CheckboxColumn("disagrees with majority vote")})
if len(view) > 5000:
    st.caption("showing the first 5,000 rows; the downloads hold all of them")

st.subheader("Downloads")
stem = f"deem_{run_id}_{method}"
d = st.columns(6)
d[0].download_button("Labels CSV", data=lambda: to_safe_csv(frame), file_name=f"{stem}_labels.csv",
                     mime="text/csv", on_click="ignore", key="dl_csv",
                     help="spreadsheet-safe: cells that would run as formulas are neutralised")


def _parquet() -> bytes:
    import io  # noqa: PLC0415

    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return buffer.getvalue()


def _json() -> str:
    records = frame.reset_index().to_dict(orient="records")
    return json.dumps(records, default=lambda v: v.item() if hasattr(v, "item") else str(v), allow_nan=True)


try:
    frame.head(0).to_parquet(__import__("io").BytesIO())
    d[1].download_button("Labels Parquet", data=_parquet, file_name=f"{stem}_labels.parquet",
                         mime="application/octet-stream", on_click="ignore", key="dl_parquet")
except Exception:  # noqa: BLE001 - mixed-type labels: Parquet cannot hold them, the other formats can
    d[1].caption("Parquet: not available for labels of mixed types")
d[2].download_button("Labels JSON", data=_json, file_name=f"{stem}_labels.json", mime="application/json",
                     on_click="ignore", key="dl_json")
if workers is not None:
    d[3].download_button("Worker table CSV", data=lambda: to_safe_csv(workers, index=False),
                         file_name=f"deem_{run_id}_workers.csv", mime="text/csv", on_click="ignore", key="dl_workers")
if method in models:
    model_path = mgr.store.run_dir(run_id) / f"model_{method}.pt"
    d[4].download_button("Fitted model", data=lambda: model_path.read_bytes(), file_name=f"{stem}.pt",
                         mime="application/octet-stream", on_click="ignore", key="dl_model",
                         help="load with deem_core.DEEM.load(path)")
d[5].download_button("Run configuration", data=lambda: json.dumps({"run_id": run_id, "kind": record["kind"],
                                                                   "dataset": record.get("dataset"),
                                                                   "fingerprint": record.get("fingerprint"),
                                                                   "config": config}, indent=2),
                     file_name=f"deem_{run_id}_config.json", mime="application/json", on_click="ignore",
                     key="dl_config")
if workers is not None:
    with st.expander("Worker table"):
        st.dataframe(common.readable_table(workers), hide_index=True)
