"""Diagnostics page: what a fitted DEEM learnt about the workers (deem_core.analysis.diagnostics, in a background job).

Per-layer mutual information heatmaps (side by side, one colour scale), worker importance on a chosen subset
of tasks against the rest (paper Fig. 5), and worker quality with each worker's confusion matrices. The
result is saved with its run (``deem_studio.diagnostics_state``) and read back after a server restart;
widgets that show one result carry its run id in their key, so a new result never shows old choices.
"""

from __future__ import annotations

from pages.shell import require_shell

require_shell()  # first, before the heavy imports below (pages/shell.py)

import dataclasses  # noqa: E402

import numpy as np  # noqa: E402
import streamlit as st  # noqa: E402

from deem_core.analysis.diagnostics import GOLD_SOURCE  # noqa: E402
from deem_core.analysis.diagnostics.importance import class_names_text  # noqa: E402
from deem_core.analysis.diagnostics.quality import FOLLOWED_NOTE  # noqa: E402
from deem_core.data.export import to_safe_csv  # noqa: E402
from deem_core.data.formats.writers import expected_sizes  # noqa: E402
from deem_core.data.text import middle_cut  # noqa: E402
from deem_studio import capacity  # noqa: E402
from deem_studio.jobs import load_diagnostics_result, method_name, returned_model_sentence, status_line  # noqa: E402
from deem_studio import wording  # noqa: E402
from pages import common  # noqa: E402


LIVE_EVERY = 1.0

st.title("Diagnostics")
mgr = common.manager()
common.show_page_run("train")  # the training these diagnostics are of (a link to it opens them)
run_id = st.session_state.get("train_run")
if not run_id:
    st.info("Train a DEEM model first (Train page), or reopen a training run on the Runs page.", icon=":material/biotech:")
    st.stop()
snap = mgr.snapshot(run_id, history=False)
if snap is None or not snap.done:
    st.info(f"Run {run_id} is {snap.status if snap else 'missing'}; diagnostics need a finished model.", icon=":material/hourglass_top:")
    st.stop()
if not common.run_of_this_data(run_id):
    common.other_data_note(run_id)
record = mgr.store.get(run_id)
models = [p.name[len("model_"):-3] for p in sorted(mgr.store.run_dir(run_id).glob("model_*.pt"))]
if not models:
    if snap.status != "finished":  # (a failed or cancelled DEEM run was said to have "only baselines")
        st.info(f"Run {run_id} {'failed' if snap.status == 'failed' else 'was cancelled'} before a model was saved"
                f"; there is nothing to diagnose. Its message: " + common.safe(snap.message or "none"))
    else:
        st.info(f"Run {run_id} has no DEEM or iRBM model (only baselines); train DEEM to see its diagnostics.")
    st.stop()

ds = common.dataset()
classes = [str(c) for c in ds["data"].classes] if ds else []
has_gold = bool(ds and ds.get("gold") is not None)
#: the share of the tasks gold labels must cover to group the diagnostics by default: with gold labels on a few tasks
#: the grouping by them drew no mutual information and weighed importance on those tasks only, while the model's
#: labels group every task (walkthroughs 64 and 66: 10% and 5% gold, "gold labels" the default)
GOLD_DEFAULT_SHARE = 0.5
gold_first = has_gold and len(ds["gold"]) >= GOLD_DEFAULT_SHARE * max(1, ds["data"].n_tasks)
summary = record.get("summary") or {}


#: characters of the longest model name that still fit the picker at half a row at 900 px
MAX_PAIRED_NAME = 30
#: notes shown as they are above the charts; more go in a closed box of their own
MOST_NOTES_SHOWN = 3
#: characters of a worker's name the confusion matrix's title shows (head and tail): the chart stays within a 552 px
#: column at 900 px (walkthrough 124)
CONFUSION_TITLE_CHARS = 40


def model_name(model: str) -> str:
    """A model's name in the picker, as on Results: "DEEM (labels from cluster-weighted Dawid-Skene)" when the run's
    DEEM labels are the safety rule's reference, which its saved model holds (the picker said "DEEM")."""
    return wording.method_label(model, summary.get(f"labels_from_{model}"))


def diagnostics_of(config: dict | None, model: str) -> bool:
    """Whether a diagnostics run's ``config`` is of this training run's ``model``."""
    config = config or {}
    return config.get("source_run") == run_id and (config.get("method") or "deem") == model


def config_of(diag_id: str | None) -> dict | None:
    try:
        return mgr.store.get(diag_id).get("config") if diag_id else None
    except Exception:  # noqa: BLE001 - deleted since: none
        return None


def shown_diagnostics(model: str) -> str | None:
    """The diagnostics to show: this session's latest when they are of this run's ``model``, else this workspace's
    latest saved ones of it (after a reload, or when another run was trained since: never another run's, which
    showed under this run's name and in its downloads' file names), else those its owner saved (someone with the
    run's link was asked to compute them again; walkthrough, tenth session)."""
    mine = st.session_state.get("diag_run")
    if diagnostics_of(config_of(mine), model):
        return mine
    owners_of = [common.workspace()] + [o for o in [record.get("owner")] if o and o != common.workspace()]
    for owner in owners_of:
        found = common.latest_diagnostics(owner, run_id, model, statuses=["queued", "running", "finished"])
        if found:
            return found
    return None


def restore_pickers(diag_id: str | None, by_options: list[str]) -> None:
    """Set "Classes from" and the importance's classes to those the shown diagnostics were computed with, once each
    time other diagnostics come to be shown (before the pickers are drawn): a saved run reopened after a reload or from
    the Runs page showed its charts of classes 1 and 2 under pickers back at "all tasks", and a note that the choice
    differed (walkthrough 114). A change made after that is kept while the pickers are on the page (Streamlit forgets
    them on another page: set back then too)."""
    if not diag_id or (st.session_state.get("_diag_pickers_of") == diag_id and "diag_subset" in st.session_state):
        return
    st.session_state["_diag_pickers_of"] = diag_id
    config = config_of(diag_id) or {}
    st.session_state["diag_subset"] = [c for c in classes if c in {str(v) for v in config.get("subset_classes") or []}]
    if config.get("subset_by") in by_options:
        st.session_state["diag_by"] = config["subset_by"]


with st.container(border=True):
    # two pickers a row, the classes below: three in a row cut "Classes from" to "DEEM's" at 900 px (walkthroughs
    # 17 and 22)
    # one a row when a name is long: "DEEM (labels from cluster-weighted Dawid-Skene)" was cut in half a row at 900 px
    wide = max((len(model_name(m)) for m in models), default=0) > MAX_PAIRED_NAME
    c = [st.container(), st.container()] if wide else st.columns(2)
    method = c[0].selectbox("Model", models, key=f"diag_method_{run_id}", format_func=model_name)
    returned = summary.get(f"labels_from_{method}")
    own_labels = f"{method_name(method)}'s labels" + (f" (from {returned})" if returned else "")
    by_options = (["gold", "predicted"] if gold_first else ["predicted", "gold"]) if has_gold else ["predicted"]
    diag_id = shown_diagnostics(method)
    restore_pickers(diag_id, by_options)
    by = c[1].selectbox("Classes from", by_options, key="diag_by",
                        format_func={"gold": "gold labels", "predicted": own_labels}.get)
    subset = st.multiselect("Importance: tasks of the classes", classes, key="diag_subset", placeholder="all tasks",
                            format_func=common.picker_names(classes),
                            help="worker importance on these tasks (selected) against the others (rest); "
                                 "empty = all tasks")
    if returned:
        st.caption(common.safe(returned_model_sentence(run_id, method_name(method), returned)))
    if st.button("Compute diagnostics", type="primary", key="diag_launch"):
        config = {"source_run": run_id, "method": method, "subset_classes": list(subset) or None,
                  "subset_by": by}
        # the loaded data set only when it is the run's (attack round 23: with the server's data budget full, a run of
        # other data opened beside the session's own, and its diagnostics were computed on the session's data and
        # shown as the run's); otherwise the job reads the run's stored answers
        same = ds is not None and ds.get("fingerprint") == record.get("fingerprint")
        try:
            # (the twin is looked for by the run read, whoever's data are loaded here; attack round 37)
            diag_id, _ = mgr.submit_once("diagnostics", config, record.get("fingerprint") or run_id,
                                         data=ds["data"] if same else None, gold=ds.get("gold") if same else None,
                                         owner=common.workspace(), dataset=record.get("dataset"), store_data=False,
                                         client=common.client_address())
            st.session_state["diag_run"] = diag_id
            st.rerun()
        except Exception as exc:  # noqa: BLE001
            common.show_error(exc, "launching the diagnostics")

if not diag_id:
    st.caption(common.safe(f"No diagnostics of {method_name(method)} of run {run_id} yet: press “Compute "
                           f"diagnostics”."))
    st.stop()
dsnap = mgr.snapshot(diag_id, history=False)


@st.fragment(run_every=LIVE_EVERY)
def waiting(diag_id: str) -> None:
    s = mgr.snapshot(diag_id, history=False)
    if s is None or s.done:
        common.redraw_page()
    if s.status == "queued":
        st.info(common.safe(wording.sentence(status_line(s, owner=common.can_control(diag_id)))),
                icon=":material/hourglass_top:")
    else:
        fraction = s.phase_done / s.phase_total if s.unit == "task" and s.phase_total else 0.0
        st.progress(min(1.0, fraction), text=common.safe(status_line(s)))
    if not common.can_control(diag_id):
        common.read_only_note(diag_id)
    elif st.button("Cancel", key=f"diag_cancel_{diag_id}"):
        common.cancel(diag_id)


if dsnap is None:
    st.stop()
if not dsnap.done:
    waiting(diag_id)
    st.stop()
if dsnap.status != "finished":
    st.error(common.safe(f"Diagnostics {dsnap.status}: {dsnap.message}"))
    st.stop()
# read back from the run folder (the job keeps none: attack round 58), one copy for every session that shows it (each
# kept its own: attack round 23), counted by the server's data budget while shown
cache = st.session_state.get("_diag_cache")
if cache and cache[0] == diag_id:
    result = cache[1]
else:
    st.session_state.pop("_diag_cache", None)  # (the one shown before is let go of first)
    try:
        result = capacity.diagnostics_result(mgr.store, diag_id, load_diagnostics_result)
    except capacity.CapacityError as exc:
        common.show_error(exc, "These diagnostics cannot be read now")
        st.stop()
    st.session_state["_diag_cache"] = (diag_id, result)
if result is None:
    st.info("These diagnostics were saved in an older format that cannot be shown again; press “Compute "
            "diagnostics” to compute them anew (their CSV tables are still kept with the run on the server).")
    st.stop()
st.caption(f"run `{diag_id}` · " + common.safe(status_line(dsnap)))
quality = result.quality
notes = list(result.notes)
shown_config = config_of(diag_id) or {}
with_gold = (quality.gold is not None or result.mutual_information.class_source == GOLD_SOURCE
             or (shown_config.get("subset_by") == "gold" and bool(shown_config.get("subset_classes"))))
if with_gold and not (common.can_control(diag_id) and common.can_control(run_id)):
    # diagnostics computed with the owner's gold labels give them back to a link's visitor, with the answers the link
    # loads: each worker's confusion against them (83% of 3,000 pinned; attack round 15), the pairs' common tasks
    # per gold class of the MI tables (300 of 300 on a sparse set; attack round 17), the importance's tasks per gold
    # class. None of them is shown: the visitor computes their own (never with the owner's gold labels)
    st.info(common.safe(f"These diagnostics of run {run_id} were computed with its gold labels, which stay with "
                        f"its owner: press “Compute diagnostics” above for your own (classes from "
                        f"{own_labels})."), icon=":material/lock:")
    st.stop()
if quality.gold is None and "accuracy" in quality.table and quality.table["accuracy"].isna().all():
    # no gold labels: no accuracy column (it stood empty, unexplained; walkthrough 30)
    quality = dataclasses.replace(quality, table=quality.table.drop(columns=["accuracy"]))
# the notes name columns as the grids head them ("dependent with", not `dependent_with`; walkthrough 35), the
# workers' names as they are; the CSVs and report.html keep the files' names
# the labels following one cluster first: two notes stood above it (walkthrough 71)
notes = sorted(notes, key=lambda note: not note.startswith(FOLLOWED_NOTE))
headed = wording.headed_notes(notes, quality.table.columns, quality.workers)
plain = [note for note in headed if not note.startswith(FOLLOWED_NOTE)]
for note in headed:
    if note.startswith(FOLLOWED_NOTE):  # (a grey note under the charts it undoes went unread; walkthrough 70)
        st.warning(common.safe(wording.sentence(note) + "."), icon=":material/group_work:")
# past a few, the notes in a box of their own, closed: eight to ten paragraphs stood before the first chart
# (walkthrough 102)
box = (st.expander(f"Notes on these diagnostics ({len(plain)})", key=f"diag_notes_{diag_id}")
       if len(plain) > MOST_NOTES_SHOWN else st.container())
with box:
    for note in plain:
        st.caption(common.safe(f"note: {note.replace('irbm_* columns', 'irbm columns')}"))

from deem_core.plots import diagnostics as plots  # noqa: E402
from deem_core.plots.report import (confusion_long_frame, confusion_table_workers, importance_frame,  # noqa: E402
                                    REPORT_FILES, mi_layers_sentence, mi_summary_frame)

# keyed: an element coming or going above them made new tabs, back on the first (as on the Data page)
TABS = ["Mutual information per layer", "Worker importance", "Worker quality"]

tab_key = f"diag_tabs_{diag_id}"
# the open tab is kept in the address, so a reload opens it again (it went back to the first; walkthrough 31)
asked_tab = st.query_params.get("tab") if tab_key not in st.session_state else None
if tab_key not in st.session_state and asked_tab not in TABS:  # (the tab open before a visit to another page)
    asked_tab = common.kept_pick("tab", diag_id)
if tab_key not in st.session_state and asked_tab in TABS:
    # the tab to open set as the widget's value, not as its ``default``: the default is part of the widget's identity,
    # so the next run (default None, the key now held) made new tabs, and the browser's first click after a return
    # to the page landed on the first tab and the address lost its tab (walkthrough 125)
    st.session_state[tab_key] = asked_tab
tab_mi, tab_imp, tab_quality = st.tabs(TABS, key=tab_key, on_change="rerun")
common.keep_pick("tab", diag_id, st.session_state.get(tab_key))
if st.session_state.get(tab_key) in TABS[1:]:
    st.query_params["tab"] = st.session_state[tab_key]
elif "tab" in st.query_params:
    del st.query_params["tab"]
mi, importance = result.mutual_information, result.importance
with tab_mi:
    if has_gold and (mi.class_source == GOLD_SOURCE) != (by == "gold"):
        # ("Classes from" groups the mutual information's tasks too; it changed nothing here before, walkthrough 62)
        st.info(common.safe(f"The heatmaps group the tasks by {mi.class_source}; the choice above now asks for "
                            f"{'gold labels' if by == 'gold' else own_labels}: press “Compute diagnostics” to see "
                            f"them grouped so."), icon=":material/info:")
    asked = (record.get("config") or {}).get("n_layers")
    of_deem = ((mgr.store.get(diag_id).get("config") or {}).get("method") or "deem") == "deem"  # (iRBM: 0 layers)
    if of_deem and len(mi.layers) == 1 and asked not in (0, None):  # (it showed "Layer 0" alone without a word; walkthrough)
        why = (f"it is {returned}, returned by the safety rule (the caption above)" if returned else
               "its training chose 0 layers or returned a fallback (the Train page says which)")
        # (with "auto" it read "although the run asked for auto", beside the Train page's "layers chosen (0-2)";
        # walkthrough 31)
        wanted = "let the depth be chosen (0 to 2)" if asked == "auto" else f"asked for {asked}"
        st.caption(common.safe(f"This model has no layers although the run {wanted}: {why}, so layer 0, the answers, "
                               f"is the only one shown."))
    c = st.columns([2, 3])
    class_value = c[0].selectbox("Tasks of class", list(mi.classes), key=f"diag_mi_class_{diag_id}",
                                 format_func=common.picker_names(list(mi.classes)))
    toggles = c[1].container(horizontal=True)  # (in narrow columns they read "One col…", "Show t…" at 900 px)
    shared = toggles.toggle("One colour scale for every class", value=True, key=f"diag_mi_shared_{diag_id}")
    diagonal = toggles.toggle("Show the diagonal (entropy)", key=f"diag_mi_diag_{diag_id}")
    zmax = None  # default: the largest value over every layer and class
    if not shared:
        index = list(mi.classes).index(class_value)
        values = mi.off_diagonal()[:, index]
        zmax = float(np.nanmax(values)) if np.isfinite(values).any() else 1.0
    off = mi.off_diagonal()
    index = list(mi.classes).index(class_value)
    pairs = f"pair of workers answered {mi.min_common} or more of the same tasks"
    few = "each worker answers too few tasks in common with another (usual when tasks have a few answers each)"
    gold_only = mi.class_source == GOLD_SOURCE and (ds is None or int(np.sum(mi.class_counts)) < ds["data"].n_tasks)
    if gold_only:
        # (grouped by 150 gold tasks of 1,500, every pair fell short, and the note blamed the answers while the
        # model's labels, which group every task, showed the copying pair; walkthrough 64)
        few = (f"grouped by gold labels, only the {int(np.sum(mi.class_counts)):,} tasks with one count here. "
               f"“Classes from”: {own_labels}, then “Compute diagnostics”, groups every task")
    if np.isfinite(off[:, index]).any():
        common.plotly_chart(plots.mi_heatmaps(mi, class_value, zmax=zmax, show_diagonal=diagonal), key="diag_mi_heat")
        # why most cells are blank, beside them (on a sparse crowd 2 cells of 40 x 40 showed, the reason in a closed
        # box of notes; walkthrough 108)
        upper = np.triu_indices(len(mi.workers), 1)
        blank = int((np.asarray(mi.n_common[index])[upper] < mi.min_common).sum())
        if len(upper[0]) and blank >= len(upper[0]) / 2:
            st.caption(f"{blank:,} of the {len(upper[0]):,} pairs of workers are blank in this class: they share fewer "
                       f"than {mi.min_common} of its tasks (usual when tasks have a few answers each).")
        # the plug-in MI's bias in numbers: a random worker's bright cell read as copying (walkthrough 31). Simulated,
        # 4,000 pairs of independent uniform workers on 10 tasks of 3 classes: mean 0.26 nats, 95th percentile 0.53
        # (the first-order bias says 0.20); less where workers mostly give one class (walkthrough 32)
        # (within a class of the labels: a copying ring the model's labels followed was dark, and a random worker's
        # cell the brightest; walkthrough 79)
        k = len(mi.classes)
        # the bias at this class's own pairs (the 10-task figure stood beside pairs of 495 common tasks and made a
        # copying group's signal read as chance; walkthrough 81)
        middle = mi.median_common(index)
        middle_text = f"{middle:,.0f}" if middle.is_integer() else f"{middle:,.1f}"
        # (its chance level is not said: within a class of the model's labels both workers mostly give that class,
        # and (K - 1)^2 / 2n said 0.41 nats where shuffled answers gave 0.12; walkthrough 82)
        # ("drawn": past 150 workers the heatmap draws some of them; the median is of every pair with a value; the
        # diff's read)
        # the bias at that median as a bound, not a level (the 10-task 1.25 nats stood beside a colour scale topping
        # at 0.065 over pairs of 368 tasks, where the bound is 0.034: half the scale may be chance; walkthrough 125)
        typical = (f" (the pairs with a value in this class share a median of {middle_text} tasks: there the bias is at "
                   f"most {(k - 1) ** 2 / (2 * middle):.3g} nats, and cells not well above that may be chance)"
                   if middle > mi.min_common else "")
        st.caption(f"An MI from few common tasks is biased upward: two independent workers who spread their answers "
                   f"over all {k} classes show about {(k - 1) ** 2 / (2 * mi.min_common):.2f} nats on average by "
                   f"chance on {mi.min_common} common tasks (the estimate's bias, (K − 1)² / 2n), single pairs two to "
                   f"three times that; less on more tasks, or when they mostly give one class{typical}. Hover a "
                   f"cell for its common tasks."
                   + ("" if mi.class_source == GOLD_SOURCE else
                      " Each matrix is read within one class of the model's labels: a group whose shared opinion "
                      "those labels follow agrees with them within every class and shows little here; the dependence "
                      "test of the Train page's evidence and the Worker quality tab's “dependent with” look for "
                      "copying on the answers themselves."))
    else:  # (sparse answers: every pair was skipped, and the heatmaps were blank; walkthrough, ninth session)
        st.info(common.safe(f"No {pairs} of class {class_value} ({int(mi.class_counts[index]):,} tasks), so there is "
                            f"no mutual information to draw for it: {few}."), icon=":material/info:")
    summary = mi_summary_frame(mi)
    if np.isfinite(off).any():
        # the layer's name beside its number (sixth of eight, it was out of sight at 900 px; walkthrough 39); the
        # CSV keeps its documented order
        common.table(summary[["layer", "layer_name", *(c for c in summary.columns if c not in ("layer", "layer_name"))]])
        if len(mi.layers) > 1:  # (of layer 0 alone it drew two panels of one point each; walkthrough 126)
            common.plotly_chart(plots.mi_summary_figure(mi), key="diag_mi_summary")
        change = mi_layers_sentence(summary)
        if change:
            st.caption(change)
    else:
        st.caption(common.safe(f"No {pairs} of any class: the summary per layer is empty"
                               + (f" ({few})." if gold_only else ".")))
    # every file through the download line (three were made outside it: no slot, no cap per visitor, no sweep of
    # built files; 81 MB a press of a run of long names; attack round 58); none where no pair gave a value (two
    # empty files were offered under "the summary per layer is empty"; walkthrough 123)
    if np.isfinite(off).any():
        d = st.columns(2)
        d[0].download_button("MI summary CSV", data=capacity.building_download(
                                 lambda: to_safe_csv(summary, index=False), common.parties(),
                                 expected_sizes(summary)["csv"]),
                             file_name=f"deem_{run_id}_{REPORT_FILES['mi_summary']}",
                             mime="text/csv", on_click="ignore",
                             key="diag_dl_mi_summary")
        d[1].download_button("All MI values CSV", data=capacity.building_download(
                                 lambda: to_safe_csv(mi.long_frame(), index=False), common.parties(),
                                 capacity.SIZE_UNKNOWN),  # (bounded, but its size is known only once made: large line)
                             file_name=f"deem_{run_id}_{REPORT_FILES['mutual_information']}",
                             mime="text/csv", on_click="ignore",
                             key="diag_dl_mi")
        left_out = mi.table_note()
        if left_out:  # (bounded: 21.3 M rows of 1,234 workers took the server to 7 GB a press; attack round 23)
            st.caption(common.safe(f"All MI values CSV: {left_out}."))
with tab_imp:
    present = list(dict.fromkeys(importance.table["subset"]))
    shown_classes = sorted(str(c) for c in shown_config.get("subset_classes") or [])
    if shown_classes != sorted(subset) or (subset and shown_config.get("subset_by") != by):
        # (one note, here: it said nothing when only "Classes from" changed, and it came twice; walkthrough 25)
        names = class_names_text(subset) if subset else ""
        asked = ("all tasks" if not subset else f"tasks whose gold label is {names}" if by == "gold"
                 else f"tasks {method_name(method)} labels {names}")  # (the engine's words for the shown subset)
        st.info(common.safe(f"The chart shows the importance on "
                            f"{importance.description if shown_classes else 'all tasks'}; the choice above now asks "
                            f"for {asked}: press “Compute diagnostics” to see it there."), icon=":material/info:")
    panels = st.multiselect("Panels", present, default=[p for p in ("selected", "rest") if p in present] or present,
                            key=f"diag_imp_panels_{diag_id}")
    worker_names = [str(w) for w in quality.workers]
    highlight = st.multiselect("Highlight workers", worker_names, key=f"diag_imp_highlight_{diag_id}",
                               format_func=common.picker_names(worker_names))
    # the chart draws what the caption below says to rank workers by: the log-odds fall (it drew the probability's,
    # which flattens out where many workers agree; walkthrough 62), the probability's on request
    measures = {"importance_log_odds": "fall in log-odds (to rank workers)",
                "importance": "fall in probability"}
    measures = {k: v for k, v in measures.items() if k in importance.table.columns}
    measure = st.radio("Bars", list(measures), format_func=measures.get, horizontal=True,
                       key=f"diag_imp_measure_{diag_id}") if len(measures) > 1 else next(iter(measures), "importance")
    # most important first by default, as the caption below says to rank workers by the chart (walkthrough 123)
    orders = {"importance": "most important first", "name": "by name"}
    order = st.radio("Order", list(orders), format_func=orders.get, horizontal=True, key=f"diag_imp_order_{diag_id}")
    if panels:
        common.plotly_chart(plots.importance_bars(importance, highlight=highlight, subsets=panels, column=measure,
                                                  order=order),
                            key=f"diag_imp_bars_{diag_id}")
    # the table in the chart's order (it stayed in name order under bars ranked most important first; walk 124)
    table = plots.ordered_importance(importance_frame(importance), measure, order, panels[0] if panels else None)
    if measure in table:  # the chart's measure and its error first after the worker (the log-odds column it is
        # ranked by was the seventh, off screen at 900 px, behind the probability's; walkthrough 125)
        error = "std_error" + measure[len("importance"):]
        lead = [c for c in ("worker", "subset", measure, error) if c in table]
        table = table[lead + [c for c in table.columns if c not in lead]]
    # which column to read, why copies score low under a cluster-weighted reference (walkthrough 50), and what a
    # negative importance means
    st.caption(common.safe(wording.importance_caption(
        importance.table, measure, cluster_weighted=bool(returned and "cluster-weighted" in str(returned)),
        flagged="flag" in quality.table and quality.table["flag"].astype(str).str.contains("worse than chance").any())))
    common.table(table)
    # the table `deem diagnose` writes as importance.csv, in its columns and order (the one shown, in the order picked
    # above, had the same name and another layout; walkthrough 134)
    written = importance_frame(importance)
    st.download_button("Importance CSV", data=capacity.building_download(
                           lambda: to_safe_csv(written, index=False), common.parties(), expected_sizes(written)["csv"]),
                       file_name=f"deem_{run_id}_{REPORT_FILES['importance']}", mime="text/csv", on_click="ignore",
                       key="diag_dl_imp")
DEPENDENT_HELP = ("The other workers of its dependence cluster (found before training, or for these diagnostics when "
                  "the training did not look): its agreement, spammer score and iRBM figures may read too high")
with tab_quality:
    # the verdict first: in the last of eleven columns it was cut off at the table's right edge (a walkthrough)
    first = [c for c in ("worker", "flag", "strong_on", "gives_instead", "dependent_with") if c in quality.table.columns]
    common.table(quality.table[[*first, *(c for c in quality.table.columns if c not in first)]],
                 helps={"strong on": "Classes it is right on 90% of the time or more (against the model's labels, "
                                     "10 tasks of the class at least) where it is right on its other classes 60% of "
                                     "the time or less: an expert on some classes, whatever its flag over all its "
                                     "answers",
                        "gives instead": "Classes it gives in place of another (against the model's labels, 10 tasks "
                                         "of the class at least): on most of its tasks, more often than that class "
                                         "itself and than on other tasks, beyond chance, where the other workers "
                                         "mostly give that class: swapped or mixed-up labels",
                        "irbm accuracy": "The trained iRBM's estimate of this worker's accuracy (Lemma 1), from the "
                                         "answers alone: no gold labels",
                        "accuracy": "Against the gold labels, on its n gold answers (a few say little)",
                        "n gold": "Its answers on tasks with a gold label: what its accuracy stands on",
                        "accuracy low": "Its accuracy's 95% interval, lower end (Wilson's, from its n gold answers: "
                                        "on 2 answers, all right, 0.34)",
                        "accuracy high": "Its accuracy's 95% interval, upper end (Wilson's, from its n gold answers)",
                        "gold gap": "On the gold tasks it answered: its agreement with DEEM's labels minus its "
                                    "accuracy against the gold labels (above 0: DEEM's labels side with it where the "
                                    "gold labels do not)",
                        "dependent with": DEPENDENT_HELP},
                 # (the flag read "likely sp" at 1400 px; walkthrough 37)
                 column_config={"flag": st.column_config.TextColumn(
                     "flag", width="medium", help="ok, weak, likely spammer, no better than chance, worse than chance, too few labels, "
                                                  "dependent or gold disagrees: the notes above say what each means"),
                     # the names it is there to show were cut after 15 characters (walkthrough 92)
                     **({"dependent with": st.column_config.TextColumn(
                         "dependent with", width="large", help=DEPENDENT_HELP)}
                        if "dependent_with" in quality.table and quality.table["dependent_with"].astype(bool).any()
                        else {})})
    c = st.columns(2)
    worker = c[0].selectbox("Confusion matrix of", list(quality.workers), key=f"diag_q_worker_{diag_id}",
                            format_func=common.picker_names(list(quality.workers)))
    # (a returned reference is no iRBM: its weights are the reference's, copies down-weighted, and Lemma 1 read
    # them as random workers; walkthrough, eleventh session)
    kinds = ["empirical"] + ([] if returned else ["irbm"]) + (["gold"] if quality.gold is not None else [])
    kind_names = {"empirical": own_labels, "irbm": "the iRBM (Lemma 1)", "gold": "gold labels"}
    kind = c[1].radio("Against", kinds, horizontal=True, key=f"diag_q_kind_{diag_id}", format_func=kind_names.get)
    matrix = quality.confusion(worker, kind)
    rows = {"empirical": f"class by {own_labels}", "irbm": "class by the iRBM", "gold": "gold label"}[kind]
    # (the name cut in the title: 2,398 characters pushed what the matrix is against off the chart; walkthrough 113)
    # the worker as the title, what the matrix is against below it, that without the reference's name (the axis and
    # the "Against" choice say it): one line was cut at the chart's edge at 900 px (walkthrough 124)
    common.plotly_chart(plots.confusion_heatmap(matrix, title=middle_cut(str(worker), CONFUSION_TITLE_CHARS),
                                                subtitle=f"given label against {kind_names[kind].split(' (from ')[0]}",
                                                rows=rows),
                        key=f"diag_q_confusion_{diag_id}")
    d = st.columns(2)
    d[0].download_button("Worker quality CSV", data=capacity.building_download(
                             lambda: to_safe_csv(quality.table, index=False), common.parties(),
                             expected_sizes(quality.table)["csv"]),
                         file_name=f"deem_{run_id}_{REPORT_FILES['workers']}", mime="text/csv", on_click="ignore",
                         key="diag_dl_quality")
    d[1].download_button("All confusion matrices CSV", data=capacity.building_download(
                             lambda: to_safe_csv(confusion_long_frame(quality), index=False), common.parties(),
                             capacity.SIZE_UNKNOWN),
                         file_name=f"deem_{run_id}_{REPORT_FILES['confusion']}", mime="text/csv", on_click="ignore",
                         key="diag_dl_confusion")
    confusion_left_out = confusion_table_workers(quality)[1]
    if confusion_left_out:  # (bounded by its characters: names of 10,000 characters; attack round 46)
        st.caption(common.safe(f"All confusion matrices CSV: {confusion_left_out}."))
