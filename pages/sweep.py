"""Sweep page: train a grid of learning rates at once, watch the energy curves live, pick a learning rate."""

from __future__ import annotations

import math
import re
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from deem_studio.jobs import SWEEP_DEFAULTS
from pages import common

common.require_shell()

LIVE_EVERY = 1.0  # seconds between redraws while the sweep runs
QUEUED_EVERY = 3.0  # ... while it waits in the queue


def parse_lrs(text: str) -> list[float] | None:
    """'1e-3, 3e-3' -> [0.001, 0.003]; empty -> None (the engine's default grid)."""
    parts = [p for p in re.split(r"[,\s;]+", text.strip()) if p]
    if not parts:
        return None
    values = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise ValueError(f"learning rates must be numbers separated by commas; {part!r} is not") from None
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"learning rates must be positive; got {part}")
        values.append(value)
    return sorted(set(values))


def curves_figure(curves: pd.DataFrame, recommended: float | None, smoothing: float | None,
                  metrics: tuple[str, ...], selected: float | None) -> go.Figure:
    from deem_core.plots.curves import energy_curves_figure  # noqa: PLC0415

    return energy_curves_figure(curves, recommended_lr=recommended, smoothing=smoothing, metrics=metrics,
                                selected_lr=selected)


def trace_lr(trace: Any) -> float | None:
    """The learning rate a plotly trace belongs to (meta, customdata, or the number in its name)."""
    meta = getattr(trace, "meta", None)
    if isinstance(meta, dict) and "lr" in meta:
        return float(meta["lr"])
    if isinstance(meta, (int, float)):
        return float(meta)
    custom = getattr(trace, "customdata", None)
    if custom is not None and len(custom):
        first = custom[0]
        first = first[0] if hasattr(first, "__len__") and not isinstance(first, str) and len(first) else first
        try:
            return float(first)
        except (TypeError, ValueError):
            pass
    name = str(getattr(trace, "name", "") or getattr(trace, "legendgroup", "") or "")
    found = re.search(r"[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?", name.split("=")[-1])
    return float(found.group()) if found else None


def picked_lr(event: Any, figure: go.Figure, choices: list[float]) -> float | None:
    """The grid value nearest to the learning rate of the clicked curve, if any point was selected."""
    try:
        points = event.selection.points if hasattr(event, "selection") else event["selection"]["points"]
    except (KeyError, TypeError, AttributeError):
        return None
    for point in points or []:
        curve = point.get("curve_number") if isinstance(point, dict) else getattr(point, "curve_number", None)
        if curve is None or curve >= len(figure.data):
            continue
        lr = trace_lr(figure.data[curve])
        if lr is not None and choices:
            return min(choices, key=lambda c: abs(math.log(c) - math.log(lr)) if lr > 0 else abs(c - lr))
    return None


st.title("Learning-rate sweep")
st.caption("DEEM's accuracy hinges on the learning rate. Train a grid of learning rates as one batched model and "
           "read the energy curves (paper App. G.4.1): keep runs whose energy difference dips and settles into a "
           "steady tail near zero; drop runs whose energies rise or whose difference explodes.")
ds = common.need_dataset()
if ds is None:
    st.stop()
mgr = common.manager()
if not st.session_state.get("sweep_run"):
    # a new browser session (a refresh, a bookmark): bring back this workspace's latest sweep of these data
    # (before the form is drawn, so that the form shows that sweep's settings)
    try:
        earlier = mgr.store.list(owner=common.workspace(), kinds=["sweep"], limit=50)
        earlier = earlier[earlier["fingerprint"] == ds["data"].fingerprint()]
    except Exception:  # noqa: BLE001 - no index yet: nothing to bring back
        earlier = []
    if len(earlier):
        st.session_state["sweep_run"] = str(earlier["run_id"].iloc[0])
        common.restore_form(mgr.store.get(st.session_state["sweep_run"]))

with st.container(border=True):
    lrs_text = st.text_input("Learning rates", key="sweep_lrs",
                             persist_state="session", placeholder="empty = the default grid",
                             help="comma-separated, e.g. 0.003, 0.01, 0.03, 0.1, 0.3")
    c = st.columns(4)
    epochs = c[0].number_input("Epochs", min_value=1, max_value=2000, value=SWEEP_DEFAULTS["epochs"], step=5,
                               key="sweep_epochs", persist_state="session")
    layers = c[1].number_input("Layers", min_value=0, max_value=6, value=SWEEP_DEFAULTS["n_layers"], key="sweep_layers",
                               persist_state="session")
    seeds = c[2].number_input("Seeds per learning rate", min_value=1, max_value=8, value=SWEEP_DEFAULTS["n_seeds"],
                              key="sweep_seeds", persist_state="session")
    devices = common.device_choices()
    device = c[3].selectbox("Device", devices, index=devices.index(SWEEP_DEFAULTS["device"]), key="sweep_device",
                            persist_state="session", help="auto = the GPU when there is one")
    if st.button("Launch sweep", type="primary", key="sweep_launch"):
        try:
            config = {"lrs": parse_lrs(lrs_text), "epochs": int(epochs), "n_layers": int(layers),
                      "n_seeds": int(seeds), "device": device, "seed": SWEEP_DEFAULTS["seed"]}
            run_id = mgr.submit("sweep", config, data=ds["data"], owner=common.workspace(), dataset=ds["name"])
            common.set_current_run(run_id, "sweep")
            st.rerun()
        except ValueError as exc:
            st.error(common.safe(exc), icon=":material/warning:")
        except Exception as exc:  # noqa: BLE001
            common.show_error(exc, "launching the sweep")

run_id, snap = common.current_snapshot("sweep_run")

st.subheader(f"Sweep `{run_id}`")
c = st.columns([2, 2, 3])
smooth_on = c[0].toggle("Smooth curves", key="sweep_smooth_on", persist_state="session")
smoothing = c[1].slider("Smoothing (EMA α)", 0.70, 0.99, 0.90, 0.01, key="sweep_smoothing", persist_state="session",
                        disabled=not smooth_on)
both = c[2].toggle("Show positive and negative energy", key="sweep_energies", persist_state="session")
metrics = ("energy_difference", "positive_energy", "negative_energy") if both else ("energy_difference",)
alpha = float(smoothing) if smooth_on else None


# a queued sweep redraws every few seconds only (many waiting sessions must not slow the running job)
interval = QUEUED_EVERY if snap.status == "queued" else LIVE_EVERY


@st.fragment(run_every=interval)
def live(run_id: str) -> None:
    snapshot = mgr.snapshot(run_id)
    if snapshot is None or snapshot.done or (snapshot.status == "running" and interval != LIVE_EVERY):
        st.rerun()  # the whole page redraws once: the final view without the timer, or the live pace
    try:
        if snapshot.status == "queued":
            st.info(common.safe(snapshot.message or "queued"), icon=":material/hourglass_top:")
        else:
            first = snapshot.seconds_to_first_point
            extra = f" · first point after {first:.1f} s" if first is not None else ""
            st.progress(snapshot.fraction, text=f"epoch {snapshot.steps_done} of {snapshot.steps_total}{extra}")
        if len(snapshot.history):
            common.plotly_chart(curves_figure(snapshot.history, None, alpha, metrics, None), key=f"live_{run_id}")
        else:
            st.caption("waiting for the first epoch…")
    except Exception as exc:  # noqa: BLE001
        common.show_error(exc, "live view")
    if not owner:
        common.read_only_note(run_id)
    elif st.button("Cancel sweep", key=f"cancel_{run_id}"):
        common.cancel(run_id)


owner = common.can_control(run_id)  # only the owner's session may cancel (the link alone is read-only)
if not snap.done:
    live(run_id)
    st.stop()

# ------------------------------------------------------------------ finished (or cancelled / failed)
if snap.status == "failed":
    st.error(common.safe(f"The sweep failed: {snap.message}"), icon=":material/error:")
    st.stop()
if snap.status == "cancelled":
    st.warning(common.safe(snap.message or "cancelled"), icon=":material/stop_circle:")


def load_final(run_id: str):
    cache = st.session_state.get("_sweep_cache")
    if cache and cache[0] == run_id:
        return cache[1]
    loaded = mgr.store.load(run_id, with_data=False)
    st.session_state["_sweep_cache"] = (run_id, loaded)
    return loaded


loaded = load_final(run_id)
curves = loaded.history if loaded.history is not None else pd.DataFrame()
if not len(curves):
    st.info("No curve points were recorded.")
    st.stop()
rec = loaded.extras.get("recommendation") or {}
recommended = rec.get("lr")
verdicts = {float(k): v for k, v in (rec.get("verdicts") or {}).items()}
grid = sorted({float(x) for x in curves["lr"]})
choice_key = f"sweep_choice_{run_id}"
if choice_key not in st.session_state:
    chosen = st.session_state.get("chosen_lr")
    st.session_state[choice_key] = (chosen if chosen in grid else
                                    (recommended if recommended in grid else grid[len(grid) // 2]))

left, right = st.columns([3, 2])
with left:
    figure = curves_figure(curves, recommended, alpha, metrics, st.session_state[choice_key])
    # plotly selects nothing on lines-only traces: give the clickable curves small markers
    for trace in figure.data:
        if getattr(trace, "hoverinfo", None) != "skip" and trace.mode == "lines":
            trace.mode = "lines+markers"
            trace.marker.size = 5
    event = common.plotly_chart(figure, key=f"pick_{run_id}", on_select="rerun", selection_mode=("points",))
    st.caption("Click a curve to choose its learning rate (or pick one from the list).")
    clicked = picked_lr(event, figure, grid)
    if clicked is not None and clicked != st.session_state.get(f"_clicked_{run_id}"):
        st.session_state[f"_clicked_{run_id}"] = clicked
        st.session_state[choice_key] = clicked
        st.session_state["chosen_lr"] = float(clicked)
        st.rerun()
with right:
    if recommended is not None:
        st.success(f"Recommended learning rate: **{common.fmt_lr(recommended)}**", icon=":material/star:")
    else:
        st.warning("No learning rate of the grid passed the checks; see the verdicts, or try smaller ones.")
    rows = [{"lr": common.fmt_lr(lr), "keep": "keep" if v.get("keep") else "drop", "reason": v.get("reason", "")}
            for lr, v in sorted(verdicts.items())]
    if rows:
        st.table(pd.DataFrame(rows).set_index("lr"))
    st.caption(common.safe(f"{snap.message} · {loaded.record.get('device') or ''}"))



def _picked() -> None:
    """Only a pick (a click on a curve, this list, the button below) carries a rate over to the Train page;
    showing a sweep (e.g. the recommended rate, preselected) does not."""
    st.session_state["chosen_lr"] = float(st.session_state[choice_key])


lr = st.radio("Learning rate for training", grid, key=choice_key, horizontal=True, format_func=common.fmt_lr,
              on_change=_picked)
if st.button(f"Train with learning rate {common.fmt_lr(lr)}", type="primary", key="sweep_to_train"):
    st.session_state["chosen_lr"] = float(lr)
    common.go("pages/train.py")
