"""Sweep page: train a grid of learning rates at once, watch the energy curves live, pick a learning rate."""

from __future__ import annotations

from pages.shell import require_shell

require_shell()  # first, before the heavy imports below (pages/shell.py)

import math  # noqa: E402
import re  # noqa: E402
from typing import Any  # noqa: E402

import pandas as pd  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
import streamlit as st  # noqa: E402

from deem_core.analysis.recommend import curves_csv, pick_vs_default  # noqa: E402
from deem_core.data.annotations import DataError  # noqa: E402
from deem_core.data.export import json_text  # noqa: E402
from deem_core.data.text import counted  # noqa: E402
from deem_core.methods.base import defaults_of  # noqa: E402
from deem_core.methods.deem import DEEM  # noqa: E402
from deem_core.methods.sweep import DEFAULT_LRS, MIN_JUDGED_UPDATES, judged_epochs, run_sweep  # noqa: E402
from deem_core.model.training import MAX_LR, MAX_SEEDS  # noqa: E402
from deem_studio.jobs import (SWEEP_DEFAULTS, SWEEP_SAMPLE_ABOVE, SWEEP_SAMPLE_TASKS, deem_refusal,  # noqa: E402
                              sample_batch_size, status_line)
from deem_studio import capacity, wording  # noqa: E402
from pages import common  # noqa: E402


LIVE_EVERY = 1.0  # seconds between redraws while the sweep runs
QUEUED_EVERY = 3.0  # ... while it waits in the queue


#: learning rates one sweep of the dashboard may try (the default grid has 8). Every one is a run trained at once:
#: found attacking main, a typed grid of 1,000 values on a 3,000-task set passed the memory check (5.8 GiB of the
#: server's 11.8) in one job of the shared server.
MAX_LRS = 24
SWEEP_MAX_EPOCHS = 2000
#: about how many bytes a row of the curves CSV takes at most (8 columns of numbers, ~20 characters each): the file's
#: expected size routes a large one to the line of large downloads
CURVE_ROW_BYTES = 170


def parse_lrs(text: str) -> list[float] | None:
    """'1e-3, 3e-3' -> [0.001, 0.003]; empty -> None (the engine's default grid). ValueError beyond
    :data:`MAX_LRS` values (the message quotes the text: show it through ``common.safe``)."""
    parts = [p for p in re.split(r"[,\s;]+", text.strip()) if p]
    if not parts:
        return None
    if len(parts) > MAX_LRS:
        raise ValueError(f"at most {MAX_LRS} learning rates per sweep; got {len(parts):,}")
    values = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise ValueError(f"learning rates must be numbers separated by commas; {part!r} is not") from None
        if not (math.isfinite(value) and value > 0):
            why = "" if math.isfinite(value) else " (not a number)" if math.isnan(value) else " (infinite)"
            raise ValueError(f"learning rates must be positive finite numbers; got {part}{why}")
        if value > MAX_LR:
            raise ValueError(f"learning rates must be at most {MAX_LR:g}; got {part}")
        values.append(value)
    return sorted(set(values))


def curves_figure(curves: pd.DataFrame, recommended: float | None, smoothing: float | None,
                  metrics: tuple[str, ...], selected: float | None, word: str = "recommended") -> go.Figure:
    from deem_core.plots.curves import energy_curves_figure  # noqa: PLC0415

    return energy_curves_figure(curves, recommended_lr=recommended, smoothing=smoothing, metrics=metrics,
                                selected_lr=selected, recommended_word=word)


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
st.caption("DEEM's accuracy hinges on the learning rate. The sweep trains a grid of learning rates at once and "
           "reads their energy curves (paper App. G.4.1). A good learning rate makes the energy difference dip "
           "early and then stay level, at whatever height, while the positive energy (the data's) falls; one too "
           "large makes it swing far out, makes the positive or negative energy rise again (the difference may "
           "climb back from its dip before it levels off: that is no fault), or loses classes; one too small hardly "
           "lowers the positive energy, even where its energy difference dips at first while the sampler settles "
           "(the same dip for every small rate: show the positive and negative energy to see it). The table below "
           "gives each rate its verdict in these words. Every run starts from majority vote, as `deem sweep` does; "
           "`deem aggregate --lr auto` sweeps from the Dawid-Skene start over the training's epochs instead, so the "
           "two can recommend different rates.")  # (1 here, 0.01 there on one file; walkthrough, tenth session)
ds = common.need_dataset()
if ds is None:
    st.stop()
mgr = common.manager()
data = ds["data"]
if not st.session_state.get("sweep_run"):
    # a new browser session (a refresh, a bookmark): bring back this workspace's latest sweep of these data
    # (before the form is drawn, so that the form shows that sweep's settings)
    try:
        earlier = mgr.store.list(owner=common.workspace(), kinds=["sweep"], limit=50)
        earlier = earlier[earlier["fingerprint"] == common.data_key()]
    except Exception:  # noqa: BLE001 - no index yet: nothing to bring back
        earlier = []
    if len(earlier):
        st.session_state["sweep_run"] = str(earlier["run_id"].iloc[0])
        common.restore_form(mgr.store.get(st.session_state["sweep_run"]))
common.show_page_run("sweep")

grid_text = ", ".join(wording.fmt_lr(v) for v in DEFAULT_LRS)
large = data.n_tasks > SWEEP_SAMPLE_ABOVE
with st.container(border=True):
    lrs_text = st.text_input("Learning rates", key="sweep_lrs", persist_state="session", max_chars=24 * MAX_LRS,
                             placeholder=f"empty = the default grid: {grid_text}",
                             help="comma-separated, e.g. 0.003, 0.01, 0.03, 0.1, 0.3")
    c = st.columns(4)
    default_epochs = judged_epochs(data.n_tasks)
    epochs, too_many = common.whole_number(
        # (as many as make 200 updates a run on a small set: 50 were 50 updates on 800 tasks, and every rate up to 0.1
        # read "too small"; walkthrough 77. The batch of a sample is scaled to make as many updates an epoch)
        c[0], "Epochs", 1, SWEEP_MAX_EPOCHS, value=default_epochs, step=5, key="sweep_epochs",
        persist_state="session", help=f"passes over the tasks per learning rate, at most {SWEEP_MAX_EPOCHS:,} in a "
                                      f"sweep. The default, {default_epochs} here, is 50, or as many as "
                                      f"make {MIN_JUDGED_UPDATES} updates a run where an epoch makes few (a set of up "
                                      f"to 1,024 tasks is one update an epoch); train longer on the Train page")
    layers, bad_layers = common.whole_number(
        c[1], "Layers", 0, common.MAX_LAYERS, value=int(SWEEP_DEFAULTS["n_layers"]), key="sweep_layers",
        persist_state="session", help=f"multinomial layers before the iRBM, 0 to {common.MAX_LAYERS}")
    seeds, bad_seeds = common.whole_number(c[2], "Seeds per learning rate", 1, 8,
                                           value=int(SWEEP_DEFAULTS["n_seeds"]), key="sweep_seeds",
                                           persist_state="session",
                                           help=f"1 to 8 on this page: each seed trains every rate of the grid "
                                                f"(deem sweep takes up to {MAX_SEEDS})")
    devices = common.device_choices()
    device = c[3].selectbox("Device", devices, index=devices.index(SWEEP_DEFAULTS["device"]), key="sweep_device",
                            persist_state="session", help="auto = the GPU when there is one")
    sample_on = st.toggle("Sweep a task sample", value=large, key="sweep_sample_on", persist_state="session",
                          help=f"sweep a random sample of the tasks, with the batch scaled down so that an epoch "
                               f"makes as many updates as on all tasks; on by default above {SWEEP_SAMPLE_ABOVE:,} "
                               f"tasks: the same recommendation in a fraction of the time")
    c = st.columns([2, 3])  # (the toggle above on its own line: in a column it read "Swe…" at 900 px)
    # no upper bound: a size of the set's or more is every task (said beside the cost), so "+" at the top is no error
    sample_size, _ = common.whole_number(
        c[0], "Tasks in the sample", 200, 200, value=min(SWEEP_SAMPLE_TASKS, max(200, data.n_tasks // 2)),
        step=1000 if data.n_tasks >= 10_000 else 100 if data.n_tasks >= 1_000 else 10,
        key="sweep_sample_size", persist_state="session", disabled=not sample_on,
        help=f"200 or more; {data.n_tasks:,} (the set's size) or more sweeps every task")
    bad_sample = (f"Tasks in the sample: {int(sample_size):,} is below 200, the smallest sample this page sweeps."
                  if sample_on and int(sample_size) < 200 else None)
    try:
        grid = parse_lrs(lrs_text) or list(DEFAULT_LRS)
        grid_error = None
    except ValueError as exc:
        grid, grid_error = list(DEFAULT_LRS), str(exc)
    sample = int(sample_size) if sample_on and not bad_sample and int(sample_size) < data.n_tasks else None
    swept_tasks = sample or data.n_tasks
    batch = sample_batch_size(sample, data.n_tasks) if sample else int(defaults_of(run_sweep)["batch_size"])
    estimate = None
    single = common.one_class(data)  # (a run that fails at once; walkthrough 42)
    single = single or deem_refusal(data)  # (more classes than DEEM handles: refused before the probe and the button)
    if not any((too_many, bad_layers, bad_seeds, bad_sample, single)):  # no timing probe of a sweep that will not launch
        # (the job's own sample probed: the whole set's widest task took the probe down another path; attack 69)
        estimate = common.cached_estimate("sweep", lrs=tuple(grid), n_layers=int(layers), n_seeds=int(seeds),
                                          device=device, batch_size=batch, sample_tasks=sample,
                                          seed=SWEEP_DEFAULTS["seed"])
    whole = sample_on and not bad_sample and sample is None  # a sample as large as the set: no sample is taken
    sample_words = ("the sample size is every task" if int(sample_size) == data.n_tasks else
                    f"{int(sample_size):,} is more than the set's {data.n_tasks:,} tasks")
    cost = (f"{wording.counted(len(grid), 'learning rate')} ({', '.join(wording.fmt_lr(v) for v in grid)}) × "
            f"{wording.counted(seeds, 'seed')} × "
            f"{wording.counted(epochs, 'epoch')} on " + (f"a random sample of {swept_tasks:,} of the {data.n_tasks:,} tasks" if sample
                                            else f"{swept_tasks:,} tasks" + (f" ({sample_words}: no sample is "
                                                                             "taken)" if whole else "")))
    # the updates a run makes: on a few hundred tasks an epoch is one mini-batch, so 50 epochs are 50 updates, in
    # which small rates hardly move and read "too small" (walkthrough, ninth session)
    per_epoch = max(1, math.ceil(swept_tasks / max(1, batch)))
    updates = per_epoch * int(epochs)
    cost += (f" ({per_epoch:,} update{'s' if per_epoch != 1 else ''} an epoch in batches of {batch:,}: {updates:,} "
             f"per run" + (f"; in so few, small learning rates hardly move: set Epochs to "
                           f"{math.ceil(MIN_JUDGED_UPDATES / per_epoch):,} for {MIN_JUDGED_UPDATES} updates a run)"
                           if updates < MIN_JUDGED_UPDATES else ")"))
    if estimate is not None:
        estimate = estimate.with_epochs(int(epochs)).with_tasks(swept_tasks)
    if grid_error:  # not the default grid's cost: the typed grid is refused, not replaced
        c[1].caption("The cost is shown once the learning rates are fixed.")
    elif estimate is not None:
        c[1].caption(f"{cost}: {common.describe_estimate(estimate)}")
    else:
        c[1].caption(cost)
    if grid_error:
        st.error(common.safe(grid_error), icon=":material/warning:")  # it quotes what was typed
    out_of_range = common.show_problems([too_many, bad_layers, bad_seeds, bad_sample, single])
    if st.button("Launch sweep", type="primary", key="sweep_launch", disabled=grid_error is not None or out_of_range):
        try:
            config = {"lrs": parse_lrs(lrs_text), "epochs": int(epochs), "n_layers": int(layers),
                      "n_seeds": int(seeds), "device": device, "seed": SWEEP_DEFAULTS["seed"], "sample_tasks": sample,
                      "estimate": estimate.to_dict() if estimate is not None else None}
            # the gold labels are kept with the run (the sweep does not use them): a reload on a sweep's address
            # brought its data back without them, and the Train page silently lost them (walkthrough, tenth session)
            common.launch("sweep", config, data, ds.get("gold"))
        except ValueError as exc:
            st.error(common.safe(exc), icon=":material/warning:")
        except Exception as exc:  # noqa: BLE001
            common.show_error(exc, "launching the sweep")

run_id, snap = common.current_snapshot("sweep_run")
if not common.run_of_this_data(run_id):
    common.other_data_note(run_id)

st.subheader(f"Sweep `{run_id}`")
c = st.columns([4, 3])
toggles = c[0].container(horizontal=True)  # (in columns they read "Smooth c…", "Show positive and ne…" at 900 px)
smooth_on = toggles.toggle("Smooth curves", key="sweep_smooth_on", persist_state="session")
smoothing = c[1].slider("Smoothing (EMA α)", 0.70, 0.99, 0.90, 0.01, key="sweep_smoothing", persist_state="session",
                        disabled=not smooth_on)
both = toggles.toggle("Show positive and negative energy", key="sweep_energies", persist_state="session")
metrics = ("energy_difference", "positive_energy", "negative_energy") if both else ("energy_difference",)
alpha = float(smoothing) if smooth_on else None


# a queued sweep redraws every few seconds only (many waiting sessions must not slow the running job)
interval = common.redraw_every(snap, LIVE_EVERY, QUEUED_EVERY)  # (a job just launched: the live pace)


@st.fragment(run_every=interval)
def live(run_id: str) -> None:
    snapshot = mgr.snapshot(run_id)
    if snapshot is None or snapshot.done or common.pace_changed(snapshot, interval, LIVE_EVERY, QUEUED_EVERY):
        common.redraw_page()  # the whole page redraws once: the final view without the timer, or the live pace
    try:
        if snapshot.status == "queued":
            st.info(common.safe(wording.sentence(status_line(snapshot, owner=common.can_control(run_id)))),
                    icon=":material/hourglass_top:")
        else:
            st.progress(snapshot.fraction, text=common.safe(status_line(snapshot)))
        if len(snapshot.history):
            common.plotly_chart(curves_figure(snapshot.history, None, alpha, metrics, None), key=f"live_{run_id}")
        else:
            st.caption("waiting for the first epoch…")
    except Exception as exc:  # noqa: BLE001
        common.show_error(exc, "live view")
    if not owner:
        common.read_only_note(run_id)
    elif not snapshot.cancelling and st.button("Cancel sweep", key=f"cancel_{run_id}"):
        common.cancel(run_id)


owner = common.can_control(run_id)  # only the owner's session may cancel (the link alone is read-only)
if not snap.done:
    live(run_id)
    st.stop()
if not owner:  # (said on Results and Runs, not here, beside an active form; walkthrough 41)
    common.read_only_note(run_id, launch=True)

# ------------------------------------------------------------------ finished (or cancelled / failed)
if snap.status == "failed":
    st.error(common.safe(f"The sweep failed: {snap.message}"), icon=":material/error:")
    st.stop()


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
    st.info("No curve points were recorded." + (f" ({snap.message})" if snap.message else ""))
    st.stop()
rec = loaded.extras.get("recommendation") or {}
tentative = rec.get("settled", True) is False  # (no rate seen to settle: its pick is tentative; walkthrough 67)
#: how the sweep's pick is named in its legend and table (walkthrough 68: "Tentative" above, "recommended" below)
REC_WORD = "tentative" if tentative else "recommended"
epochs_done = int(curves["epoch"].max())
planned = int(rec.get("epochs_planned") or (loaded.config or {}).get("epochs") or epochs_done)
partial = bool(rec.get("partial", snap.status != "finished")) or epochs_done < planned
fallback = bool(rec.get("fallback"))
recommended = None if partial or fallback else rec.get("lr")
default_lr = float(defaults_of(DEEM)["lr"])
verdicts = {float(k): v for k, v in (rec.get("verdicts") or {}).items()}
grid_done = sorted({float(x) for x in curves["lr"]})
if rec.get("sample_tasks"):
    st.caption(f"Swept on a random sample of {int(rec['sample_tasks']):,} of {int(rec.get('n_tasks') or 0):,} tasks "
               f"(batch {int(rec.get('batch_size') or 0):,}, so that an epoch makes as many updates as on all tasks).")

# the picked learning rate (one value for the whole session, per data set; see pages/common.py)
current, source = common.current_lr(sweep_said=False)  # (this page shows the sweep's recommendation itself)
pick = common.lr_pick()
# a reopened training's rate is what Train would use, not a pick made here: it was called "picked" on the curves
# and replaced the rate picked on this sweep without a word (walkthrough 37)
from_run = pick is not None and str(source).startswith("the settings of run")
picked = current if pick is not None and not from_run else None
choice_key = f"sweep_choice_{run_id}"
st.session_state[choice_key] = picked if picked in grid_done else None


def _picked() -> None:
    """A pick in the list below (the chart's click and the button do the same)."""
    value = st.session_state.get(choice_key)
    if value is not None:
        common.set_lr_pick(value, f"picked on sweep {run_id}", sweep=run_id)


# the recommendation above the chart, the chart the page's width: beside the box, at 900 px the chart had 256 px, its
# legend taller than its plot and its panel titles cut (walkthrough, ninth session)
right, left = st.container(), st.container()
with left:
    figure = curves_figure(curves, recommended, alpha, metrics, picked, REC_WORD)
    # plotly selects nothing on lines-only traces: give the clickable curves small markers
    for trace in figure.data:
        if getattr(trace, "hoverinfo", None) != "skip" and trace.mode == "lines":
            trace.mode = "lines+markers"
            trace.marker.size = 5
    event = common.plotly_chart(figure, key=f"pick_{run_id}", on_select="rerun", selection_mode=("points",))
    st.caption("Click a curve to pick its learning rate (or pick one in the list below).")
    clicked = picked_lr(event, figure, grid_done)
    if clicked is not None and clicked != st.session_state.get(f"_clicked_{run_id}"):
        st.session_state[f"_clicked_{run_id}"] = clicked  # a selection stays in the chart: act on it once
        common.set_lr_pick(clicked, f"picked on sweep {run_id}", sweep=run_id)
        st.rerun()
with right:
    if partial:
        st.warning(f"Partial sweep: it stopped after {epochs_done:,} of {planned:,} epochs, so there is no "
                   f"recommendation. The verdicts below read incomplete curves; run the sweep to the end "
                   f"before trusting them.", icon=":material/stop_circle:")
    elif recommended is not None and tentative:  # (not "Recommended" above a curve its own row says has not
        # levelled off; walkthrough 67)
        why = str(rec.get("tentative_reason") or "no learning rate was seen to settle within these epochs")
        st.info(f"Tentative learning rate: **{wording.fmt_lr(recommended)}** ({common.safe(why)})",
                icon=":material/star_half:")
        if rec.get("reason"):
            st.caption(common.safe(f"Why: {rec['reason']}."))
    elif recommended is not None:
        st.success(f"Recommended learning rate: **{wording.fmt_lr(recommended)}**", icon=":material/star:")
        if rec.get("reason"):
            st.caption(common.safe(f"Why: {rec['reason']}."))
    elif fallback:
        st.warning(f"No learning rate of the grid passed the checks; the least bad one is "
                   f"{wording.fmt_lr(rec.get('lr'))}. Try smaller learning rates.", icon=":material/warning:")
    else:
        st.warning(common.safe("No learning rate to recommend: " + str(rec.get("reason") or "every run failed") + "."),
                   icon=":material/warning:")
    if recommended is not None:
        # (walkthrough 75 trained at a tentative 1 as the page suggested: 82.67% where the default gave 84.22%)
        # (where a rate is picked or a run's rate is used, "uses the default" stood above "Picked learning rate: 100";
        # walkthrough 111)
        st.caption(f"For the labels: {pick_vs_default(default_lr)}."
                   + (" Training uses the default until you pick a rate below." if pick is None else ""))
    st.caption(common.safe(f"{status_line(snap)} · {loaded.record.get('device') or ''}"))

#: the verdicts of a rate that learns too slowly on a sweep's curves: the default's row then points to the caption
#: below the table that says why it stays the default (the two keep one list)
SLOW_VERDICTS = ("too small", "hardly learns")
rows = []
for lr in grid_done:
    v = verdicts.get(lr) or {}
    label = v.get("verdict") or ("keep" if v.get("keep") else "drop")
    if partial and label in ("recommended", "tentative"):
        label = "best so far"
    elif math.isclose(lr, default_lr) and label in SLOW_VERDICTS:
        # (the caption below the table says why the default stays; three walkthroughs read the column alone, the
        # last 79, as "the default is broken")
        label = f"{label} here, yet the training's default: see below the table"
    # (the default marked: "too small" stood beside it and the button below trained with it unmarked; walkthrough 72)
    marks = [m for m, on in ((REC_WORD, recommended is not None and math.isclose(lr, recommended)),
                             ("picked", picked is not None and math.isclose(lr, picked)),
                             ("the training's default", math.isclose(lr, default_lr))) if on]
    rows.append({"learning rate": wording.fmt_lr(lr) + (f"  ({', '.join(marks)})" if marks else ""),
                 "verdict": label, "why": v.get("reason", "")})
if rows:  # a static table: the reasons wrap instead of being cut off
    st.table(pd.DataFrame(rows).set_index("learning rate"))
    if rec.get("smoothing"):  # the figures in "why" are read on smoothed curves, which the chart may not show
        st.caption(f"The figures in \"why\" are measured on the curves smoothed with EMA α = {float(rec['smoothing']):.2f} "
                   f"(bias-corrected: the first smoothed value is the first raw one; switch on \"Smooth curves\" with "
                   f"that α to see those curves); the raw curves swing more.")
    slow = [lr for lr in grid_done if math.isclose(lr, default_lr)
            and (verdicts.get(lr) or {}).get("verdict") in SLOW_VERDICTS]
    if slow:  # (both walkthroughs of the twentieth session read this as "the default is wrong")
        st.caption(f"{wording.fmt_lr(default_lr)} is the training's default rate, chosen on accuracy, not on these "
                   f"curves (benchmarks/results/defaults.md): at 100 epochs it held steady where faster rates "
                   f"drifted from their best. This sweep starts every run from majority vote; a training starts "
                   f"from majority vote or from Dawid-Skene's fit (chosen on held-out answers), and from that fit a "
                   f"small rate stays near it.")



def _curves_file() -> str:
    """The sweep's curves as ``deem sweep`` writes them, read again from the store when the file is made."""
    stored = mgr.store.load_history(run_id)
    if stored is None or not len(stored):
        raise DataError(f"sweep {run_id} has no stored curves")
    return curves_csv(stored)


# the files `deem sweep` writes, for a dashboard sweep too (the CLI alone wrote curves.csv; walkthroughs read every
# figure of a verdict off the chart or asked for them)
files = st.container(horizontal=True)
files.download_button("Curves CSV", data=capacity.building_download(_curves_file, common.parties(),
                                                                    CURVE_ROW_BYTES * len(curves)),
                      file_name=f"deem_{run_id}_curves.csv", mime="text/csv", on_click="ignore", key="dl_curves",
                      help="every run's energies per epoch (run, lr, seed, epoch, positive_energy, negative_energy, "
                           "energy_difference, acceptance_rate), as `deem sweep` writes curves.csv: the figures in "
                           "\"why\" can be recomputed from it")
files.download_button("Recommendation JSON", data=capacity.building_download(
                          lambda: json_text(mgr.store.recommendation(run_id)), common.parties()),
                      file_name=f"deem_{run_id}_recommendation.json", mime="application/json", on_click="ignore",
                      key="dl_recommendation",
                      help="the recommendation, each rate's verdict and reason and the sweep's settings, as `deem "
                           "sweep` writes recommendation.json")
if picked is not None:
    st.caption(f"Picked learning rate: **{wording.fmt_lr(picked)}** ({source}).")
elif from_run:
    # (not "which you opened": a run brought back with its data set, never opened, was said to be; walkthrough 115)
    st.caption(f"Training would use learning rate {wording.fmt_lr(current)} ({source}, now in the Train "
               f"page's form): pick one below to train with a rate of this sweep.")
elif pick is None and not partial:
    # (the engine's words nested three brackets deep and said "no learning rate picked" twice; walkthrough 73)
    st.caption(f"No learning rate picked yet for these data: training would use {wording.fmt_lr(current)}, the "
               f"training's default, until one is picked below.")
returned = common.latest_fallback()
if returned:  # (a sweep, a pick and three trainings returned the same labels, whatever the rate; walkthrough 100)
    st.info(common.safe(common.fallback_rate_note(*returned, "A rate picked here")), icon=":material/info:")
lr = st.radio("Learning rate for training", grid_done, key=choice_key, horizontal=True, format_func=wording.fmt_lr,
              on_change=_picked, index=None)
chosen = lr if lr is not None else current
swept_layers = (loaded.config or {}).get("n_layers")
form_layers = "auto" if st.session_state.get("train_layers_auto") else st.session_state.get(
    "train_layers", swept_layers)
form_start = st.session_state.get("train_init", "auto")
if (swept_layers is not None and form_layers != swept_layers) or form_start == "ds":
    # (the Train form kept an opened run's 2 layers and Dawid-Skene start, and the rate swept with 1 layer from
    # majority vote gave 45.9% there without a word; walkthrough 51)
    held = "layers chosen (0-2)" if form_layers == "auto" else counted(form_layers, "layer")
    st.caption(f"The Train page keeps its own settings: {held}, start {common.STARTS.get(form_start, form_start)}; "
               f"this sweep ran {'?' if swept_layers is None else counted(swept_layers, 'layer')} from majority vote. "
               f"A rate read on these curves fits the "
               f"sweep's settings best.")
# (with nothing picked the button trains with the form's rate: "Train with learning rate 0.01" below a table calling
# 0.01 too small read as the sweep's advice; walkthrough 72)
whose = ("" if lr is not None or picked is not None else " (the default: none picked)" if pick is None
         else " (the Train form's, from a run)" if from_run else "")
if st.button(f"Train with learning rate {wording.fmt_lr(chosen)}{whose}", type="primary", key="sweep_to_train",
             help="opens the Train page with this rate in its form: press Train there (the run shown below the form "
                  "until then is the one before)"):
    if lr is not None:
        common.set_lr_pick(lr, f"picked on sweep {run_id}", sweep=run_id)
    train_run = st.session_state.get("train_run")
    if train_run and common.run_of_this_data(train_run):
        # the address names the training the Train page shows, not this sweep (a reload brought back the sweep
        # and lost the training; walkthrough, tenth session)
        common.set_current_run(train_run, "train")
    else:  # no training yet: the Train page's address names no run (it named this sweep; walkthrough 102)
        common.set_current_run(None)
    common.go("pages/train.py")
