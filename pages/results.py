"""Results page: the label table with confidence, a review queue, and every download."""

from __future__ import annotations

from pages.shell import require_shell

require_shell()  # first, before the heavy imports below (pages/shell.py)

import functools  # noqa: E402
import json  # noqa: E402

import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from deem_core.data.export import to_safe_csv  # noqa: E402
from deem_core.data.text import in_natural_order  # noqa: E402
from deem_core.analysis.agreement import PARTNERS_WORDS  # noqa: E402
from deem_core.analysis.selection import followed_text, selection_lines, selection_table  # noqa: E402
from deem_core.methods import registry  # noqa: E402
from deem_studio import capacity  # noqa: E402
from deem_studio.jobs import method_name, status_line  # noqa: E402
from deem_studio import wording  # noqa: E402
from pages import common  # noqa: E402

#: the filter of the tasks whose label differs from majority vote's ("and ties" added where majority vote ties)
DISAGREE_TOGGLE = "Disagreements"


st.title("Results")
mgr = common.manager()

common.show_page_run("train")  # (the address named the sweep when Results was opened from it)
run_id = st.session_state.get("train_run")
if not run_id:
    # the Runs page is named only where it lists a training to reopen (it listed none; walkthrough 26)
    reopen = (", or reopen a training on the Runs page"
              if not mgr.store.list(owner=common.workspace(), kinds=["train"], limit=1).empty else "")
    if common.dataset() is None:  # ("on these data" with none loaded, under a deleted run's notice; walkthrough 25)
        st.info(f"No training run open: load annotations on the Data page and train on the Train page{reopen}.",
                icon=":material/label:")
    else:
        st.info(f"No training run on these data yet: train on the Train page{reopen}.", icon=":material/label:")
    st.stop()


def _load(run_id: str):
    """A finished run's stored tables this page needs at once: every method's labels (the picker, the scores), the
    worker table and metrics; one method's whole table is read when it is shown (:func:`common.run_tables`: one
    copy for every session; each session kept all of a run's tables, 3.3 GB for three on one link; attack 14)."""
    loaded = common.run_tables(run_id, labels_only=True)
    # runs saved before the engine said "worker" everywhere call that table "learners"
    workers = loaded.extras.get("workers", loaded.extras.get("learners"))
    metrics = loaded.extras.get("metrics") if isinstance(loaded.extras.get("metrics"), dict) else {}
    return loaded.record, loaded.config, loaded.results, workers, loaded.model_names(), loaded.problems, metrics


# RunNotFound when its owner deleted it (the page kept showing it, the model download failing; walkthrough 23): the
# shell says so; its index row read on every page run (a rename showed the data set's name; walkthrough 28)
fresh_record = mgr.store.get(run_id)
snap = mgr.snapshot(run_id, history=False)
if snap is None:
    st.warning(f"Run {run_id} no longer exists")
    st.stop()
if not snap.done:
    st.info(f"Run {run_id} is {snap.status}; its labels appear here when it ends.", icon=":material/hourglass_top:")
    if st.button("Watch it on the Train page"):
        common.go("pages/train.py")
    st.stop()
record, config, results, workers, models, problems, metrics = _load(run_id)
if not common.run_of_this_data(run_id):
    common.other_data_note(run_id)
name = fresh_record.get("name") or record.get("dataset") or ""
st.caption(f"Run `{run_id}` · " + common.safe(f"{name} · {status_line(snap)}"))
if not common.can_control(run_id):
    common.read_only_note(run_id)
for part, problem in problems.items():  # one damaged file never hides the rest of the run
    if part == "gold":  # (read with the labels for the Train page's chart; not used here: a visitor was warned of
        continue  # gold labels they never see; attack round 15)
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
    # the address's method when it is of this run's address as the session began (a reload, a link): a reload went
    # back to DEEM's labels, and "Labels CSV" then gave those (walkthrough 31)
    asked = st.query_params.get("method") if st.session_state.get("_url_run_seen") == run_id else None
    kept = common.kept_pick("method", run_id)  # (chosen before a visit to another page)
    st.session_state[method_key] = asked if asked in results else kept if kept in results else primary
def scored_name(m: str) -> str:
    """The method's name; a method whose labels are the safety rule's reference says whose they are."""
    return wording.labelled_method_name(m, metrics.get(m))


def late_scores(methods: list[str], frames: dict, named, stored: dict[str, float]) -> None:
    """Every method's accuracy on the gold labels loaded on the Data page when they are not those the run was
    scored on (``stored``: its accuracies), said as given after the run; where to give them when there are none
    (a walkthrough found no way to score a run on Results, walkthrough 22; a run scored on an export's 15 golden
    tasks ignored a full truth given later, walkthrough 23)."""
    from deem_core.analysis.scoring import accuracy_and_count  # noqa: PLC0415

    gold = (common.dataset() or {}).get("gold") if common.run_of_this_data(run_id) else None
    scores = {}
    if gold is not None and len(gold):
        # once per run and gold labels in this session, the task ids made text once (every rerun took 6 s per
        # million tasks and method; attack round 12)
        # (the gold labels themselves in the key, compared as the same object: by their id, a new file's could take
        # the id of the freed one, and its scores were those of the file before)
        key = (run_id, tuple(methods))
        kept = st.session_state.get("_late_scores")
        if kept and kept[0] == key and kept[2] is gold:
            scores = kept[1]
        else:
            truth = gold.set_axis(gold.index.astype(str))  # (a stored table's task ids may read back as another type)
            shared = None  # the methods' frames share their tasks: their ids as text once
            for m in methods:
                labels = frames[m]["label"]
                if shared is None or not labels.index.equals(shared[0]):
                    shared = (labels.index, labels.index.astype(str))
                scores[m] = accuracy_and_count(labels.set_axis(shared[1]), truth)
            st.session_state["_late_scores"] = (key, scores, gold)
    scores = {m: (a, n) for m, (a, n) in scores.items() if n}
    if stored:  # the run was scored: a line only when the loaded gold labels score it otherwise
        n_stored = wording.gold_count(metrics)
        if not scores or all(n == n_stored and abs(a - stored[m]) < 1e-9 for m, (a, n) in scores.items()
                             if m in stored):
            return
    if not scores:
        st.caption("No gold labels were given to this run: a file of true labels (task, truth) on the Data page's "
                   "Gold labels tab scores every method here.")
        return
    n = max(count for _, count in scores.values())
    spread = wording.gold_spread([a for a, _ in scores.values()], [c for _, c in scores.values()])
    st.caption(common.safe(f"Accuracy against the gold labels loaded on the Data page (on the {n:,} task"
                           f"{'s' if n != 1 else ''} with a gold label; given after this run was trained"
                           f"{'; ' + spread if spread else ''}): "
                           + " · ".join(f"{named(m)} {a:.4f}" for m, (a, _) in scores.items())))


method = st.selectbox("Method", ordered, key=method_key, format_func=scored_name)
common.keep_pick("method", run_id, method)
if method != primary:  # kept in the address (above); the run's own first method needs no word there
    st.query_params["method"] = method
elif "method" in st.query_params:
    del st.query_params["method"]
frame = common.run_tables(run_id, [method]).results.get(method)
if frame is None:  # (its file went between the two reads)
    st.warning(common.safe(f"{method}: its stored table could not be read"), icon=":material/broken_image:")
    st.stop()
has_ties = "majority_vote_tied" in frame
#: the disagreements toggle's name, as the notes above it name it ("Disagreements" of "Disagreements and ties";
#: walkthrough 111)
disagree_label = DISAGREE_TOGGLE + (" and ties" if has_ties else "")


scored = {m: (metrics.get(m) or {}).get("accuracy") for m in ordered}
scored = {m: float(v) for m, v in scored.items() if isinstance(v, (int, float)) and v == v}
if method in scored:  # gold labels were given: every method's accuracy on them, as on the Train page
    on = wording.gold_scored(metrics, config)
    st.caption(common.safe(f"Accuracy against the gold labels{' (' + on + ')' if on else ''}: "
                           + " · ".join(f"{scored_name(m)} {v:.4f}" for m, v in scored.items())))
    if "mv" in scored and common.can_control(run_id) and (luck := wording.tie_luck_sentence(metrics)):  # (the owner's)
        st.caption(luck)
# gold labels given after the run (or none): scored here on the loaded ones, or where to give them is said
late_scores(ordered, results, scored_name, scored if method in scored else {})
def cwds_advice() -> str:
    """Where to compare labels that follow a cluster: the cluster-weighted Dawid-Skene of the run, or how to add it."""
    return (f" {method_name('cwds')} is in this run: pick it above to compare." if "cwds" in metrics else
            f" Add {method_name('cwds')} under Methods on the Train page.")


choice = selection_lines((metrics.get(method) or {}).get("selection") or {}, table=False)
if choice:  # the chosen start/depth (and any fallback) in a line; the evidence on request, as plain text
    said = (metrics.get(method) or {}).get("start_reason")  # the same choice in words ("started from ...")
    first = f"{said[:1].upper()}{said[1:]}." if said else choice[0]
    held = ((metrics.get(method) or {}).get("selection") or {}).get("heldout_answers")
    if isinstance(held, int) and held > 0 and said and not wording.labels_from(metrics.get(method)):
        # (the model never saw the held-out answers, said in the expander only: a surprise; walkthrough 41)
        candidates_scored = bool(((metrics.get(method) or {}).get("selection") or {}).get("candidates"))
        # (of a run stopped before the candidates were scored, nothing was chosen: "the model chosen" beside
        # "nothing chosen" contradicted it; walkthrough 110)
        first += (f" The model chosen was trained without the {held:,} answers held out to choose it; its labels "
                  f"are then computed from all the answers, those included." if candidates_scored else
                  f" Its runs were trained without the {held:,} answers held out for the choice; their labels are "
                  f"computed from all the answers, those included.")
    # a note as the others around it (as plain text it was larger than they; stop 62's list)
    st.caption(common.safe(first))
    if len(choice) > 1 and choice[1].startswith("FALLBACK") and "FALLBACK" not in first:
        st.caption(common.safe(choice[1]))
    if followed := followed_text((metrics.get(method) or {}).get("selection") or {}):  # (walkthrough 84)
        st.warning(common.safe(wording.sentence(followed) + cwds_advice()), icon=":material/group:")
    for line in choice:  # a group the dependence test could not test: the labels rest on a convention, said here
        if line.startswith("not testable:"):
            st.caption(common.safe(f"{line[:1].upper()}{line[1:]} (\"{disagree_label}\" below lists those tasks.)"))
    if len(choice) > 1:
        chose = "the start and depth were" if config.get("n_layers") == "auto" else "the start was"
        # (of a run stopped before its candidates were scored, nothing was chosen: "How the start was chosen" stood
        # above "nothing chosen"; walkthrough 112)
        picked = (metrics.get(method) or {}).get("selection") or {}
        stopped = str(picked.get("reason") or "").startswith("stopped before") and not picked.get("candidates")
        with st.expander("What the choice did before the run stopped" if stopped else f"How {chose} chosen"):
            st.code(common.plain_text("\n".join(line for line in choice[1:] if not line.startswith("not testable:"))),
                    language=None, wrap_lines=True)
            evidence = selection_table((metrics.get(method) or {}).get("selection") or {})
            if len(evidence):  # the criterion per candidate and reference, as a table
                common.evidence_table(evidence, ((metrics.get(method) or {}).get("selection") or {}).get("clusters"))
elif followed := followed_text(metrics.get(method) or {}):
    # a classic method's labels following a cluster the trained model found (One-coin Dawid-Skene and MACE gave a
    # copied pair's labels, 72.40% where majority vote was 90.47, without a word; walkthrough 128)
    st.warning(common.safe(f"{method_name(method)}: {followed}{cwds_advice()}"), icon=":material/group:")
proba_cols = [c for c in frame.columns if str(c).startswith("p_")]
classes = [str(c)[len("p_"):] for c in proba_cols]  # (every class, as the files write them: the table may leave them out)
#: the most classes whose probability columns the table shows: 8,000 classes made a 258 MB message that the browser
#: refused ("MessageSizeError") and took the server +2.2 GB for one view of a 140 KB upload (walkthrough 96)
MAX_SHOWN_CLASS_COLUMNS = 100
classes_left_out = len(proba_cols) > MAX_SHOWN_CLASS_COLUMNS


def _file_sizes(table: pd.DataFrame) -> dict[str, int]:
    """The expected bytes of the picked method's whole file in each format (``table``: every column, as the files
    hold them), found once a run and method in this session (its texts' lengths are read over every row)."""
    from deem_core.data.formats.writers import expected_sizes  # noqa: PLC0415

    kept = st.session_state.get("_file_sizes")
    if not kept or kept[0] != (run_id, method):
        kept = st.session_state["_file_sizes"] = ((run_id, method), expected_sizes(table))
    return kept[1]


# (before the class columns are dropped: the files hold them all; _expected_bytes)
file_sizes, stored_rows = _file_sizes(frame), len(frame)
if classes_left_out:
    frame = frame.drop(columns=proba_cols)
    proba_cols = []


def hard_labels(frame: pd.DataFrame) -> bool:
    """Whether the method's confidence is 1 on every task (M-MSR, ...): nothing to filter or rank by."""
    sure = pd.to_numeric(frame["confidence"], errors="coerce") if "confidence" in frame else pd.Series(dtype=float)
    return bool(len(sure)) and bool((sure >= 1.0 - 1e-9).all())


def calibration_note(frame: pd.DataFrame, hard: bool) -> None:
    """How far the picked method's confidences can be trusted, measured on the gold labels this session holds (the
    owner's; a link's visitor has none): DEEM read 0.966 on average where it was right on 0.857 of 266 gold tasks,
    and 43 of its wrong labels stood at 0.99 or more, out of reach of the review queue (walkthrough 41)."""
    from deem_core.analysis.scoring import calibration  # noqa: PLC0415

    name = scored_name(method)
    if hard:  # (said with or without gold labels; the two controls are then off)
        st.caption(common.safe(f"{name} gives hard labels: its confidence is 1 on every task, so there is nothing "
                               f"to filter or sort by confidence."))
        return
    gold = (common.dataset() or {}).get("gold") if common.run_of_this_data(run_id) else None
    if gold is None or not len(gold) or "confidence" not in frame or "label" not in frame:
        return
    held = calibration(frame["label"], frame["confidence"], gold)
    if held is None or held["mean_confidence"] != held["mean_confidence"]:
        return
    st.caption(common.safe(wording.calibration_sentence(name, held)))


shown_frame = frame if frame is not None else pd.DataFrame()
hard = hard_labels(shown_frame)  # (the note said the controls rank nothing while they stayed on; walkthrough 42)
calibration_note(shown_frame, hard)
c = st.columns([3, 4])
max_conf = c[0].slider("Show tasks with confidence at most", 0.0, 1.0, 1.0, 0.01, key="results_max_conf",
                       disabled=hard,
                       persist_state="session")
# the toggles at their own widths, wrapping when narrow (at 900 px in columns they read "Only d…", "Least c…")
toggles = c[1].container(horizontal=True)
# (named for what it lists: "Only disagreements" listed 155 agreeing tied tasks beside 65 disagreeing; walkthrough 64)
only_disagree = toggles.toggle(disagree_label, key="results_disagree",
                               persist_state="session",
                               help="only the tasks whose label is not among the most answered labels of the task"
                                    + (", and the tasks where majority vote is tied (two or more labels share the "
                                       "most answers: its column shows its tie rule's pick), where a person may "
                                       "look too" if has_ties else ""))
review = toggles.toggle("Least confident first", key="results_review", persist_state="session", disabled=hard,
                        help="a review queue: the tasks most worth a second look come first")
view = frame
if not hard and "confidence" in view and view["confidence"].notna().any():  # (hard: the slider is off, not 0)
    view = view[view["confidence"].fillna(0.0) <= max_conf + 1e-12]
if only_disagree and "disagrees_with_majority" in view:
    # the tied tasks too (walkthroughs 47 and 48: the queue left out two thirds of the tasks whose label differs from
    # the majority vote column, all ties, "exactly the ones that need a human")
    keep = view["disagrees_with_majority"].to_numpy(dtype=bool)
    if has_ties:
        keep = keep | view["majority_vote_tied"].to_numpy(dtype=bool)
    view = view[keep]
if review and not hard and "confidence" in view:
    view = view.sort_values("confidence", kind="stable")
# (majority vote's own labels with "Only disagreements" read "0 of 800 tasks" with no word why; walkthrough 34)
itself = " (majority vote agrees with itself: pick another method to see where it differs)" if (
    only_disagree and method == "mv") else ""
# (a tie's label agreeing read as a broken filter: "0 of 800 tasks" beside rows whose label differs from the majority
# vote column, all of them ties; walkthrough 46): how many of each the queue holds
ties = ""
if only_disagree and has_ties:
    n_disagree = int(view["disagrees_with_majority"].sum())
    n_tied = int((view["majority_vote_tied"] & ~view["disagrees_with_majority"]).sum())
    ties = (f": {n_disagree:,} {'disagrees' if n_disagree == 1 else 'disagree'} with majority vote, {n_tied:,} more "
            f"{'is a tie' if n_tied == 1 else 'are ties'} of majority vote (a label "
            f"among the tied ones agrees with it, whichever of them its column shows)")
elif only_disagree and method != "mv":
    ties = " (on a tie, a label among the tied ones agrees with majority vote, whichever of them its column shows)"
st.caption(f"{len(view):,} of {len(frame):,} tasks{ties}{itself}")
shown = view.reset_index()
# a column with no value at all (a fallback's seed agreement) is left out: its cells read "None" (walkthrough, tenth
# session); the downloads keep it, empty
shown = shown.drop(columns=[c for c in ("seed_agreement", "free_energy") if c in shown and shown[c].isna().all()])
if "seed_agreement" in shown and int(config.get("n_seeds") or 1) <= 1:  # (one seed agrees with itself: a column of
    shown = shown.drop(columns=["seed_agreement"])  # 1.000 that read as a finding; walkthrough 70)
if not pd.api.types.is_integer_dtype(shown["task"]):  # whole-number task ids stay numbers (they sort as numbers)
    shown["task"] = shown["task"].astype(str)
# (a grid of 3 tasks drew about 8 empty rows at a fixed 420 px; walkthrough 119): the rows' own height up to 420 px
common.dataframe(shown.head(5000), hide_index=True, height=common.grid_height(len(shown), 420), column_config={
    "task": (st.column_config.NumberColumn("task", format="%d") if pd.api.types.is_integer_dtype(shown["task"])
             else st.column_config.TextColumn("task")),  # an id: no thousands separator
    "confidence": st.column_config.ProgressColumn("confidence", min_value=0.0, max_value=1.0, format="%.3f"),
    # each class's column headed by its visible name, numbered where two escape to one text (all 8 of 8 such classes
    # were headed alike; walkthrough 93)
    **{col: st.column_config.NumberColumn(f"p({seen[2:]})", format="%.3f")
       for col, seen in zip(proba_cols, common.visible_names(list(proba_cols)))},
    "free_energy": st.column_config.NumberColumn("free energy", format="%.3f",
                                                 help="high = an unusual pattern of answers under the model the labels "
                                                      "come from (a fallback's own model; none for majority "
                                                      "vote)"),
    "seed_agreement": st.column_config.NumberColumn("seed agreement", format="%.3f",
                                                    help="share of the seeds that give this label (always 1 "
                                                         "with one seed: set Seeds above 1 on Train to use it; "
                                                         "empty when a fallback returned the labels untrained)"),
    "majority_vote": st.column_config.Column("majority vote"),
    "majority_vote_tied": st.column_config.CheckboxColumn(
        "majority vote tied", help="two or more labels share the task's most answers: majority vote's column shows "
                                   "its tie rule's pick among them"),
    "disagrees_with_majority": st.column_config.CheckboxColumn(
        "disagrees with majority vote", help="the label is not among the task's most answered labels (on a tie, "
                                             "majority vote's column shows one of the tied labels)")})
if len(view) > 5000:
    st.caption("showing the first 5,000 rows; the downloads hold all of them")
if classes_left_out:
    st.caption(f"The probability of each class is left out of this table ({MAX_SHOWN_CLASS_COLUMNS:,} classes at most "
               f"are shown, a column each): the downloads hold them.")

st.subheader("Downloads")
if len(view) < len(frame):  # (the filters narrow the table, not the files; walkthrough, ninth session)
    st.caption(f"The label downloads hold all {len(frame):,} tasks, not only the {len(view):,} the filters above show; "
               f"“Review queue CSV” holds those {len(view):,}, in the table's order." if len(view) else
               f"The downloads hold all {len(frame):,} tasks, not only the {len(view):,} the filters above show.")
stem = wording.download_stem(run_id, method, metrics.get(method))
fallback = wording.labels_from(metrics.get(method))
if fallback:
    st.caption(common.safe(f"These labels come from {fallback}: the file names hold “_fallback”, and the Label "
                           f"Studio predictions' model version and the run configuration say so."))


def _label_studio_context():
    """The Label Studio tasks (ids, data, control) of the data set this run was trained on, when it was read
    from a Label Studio export: in this session, or kept with the run (opened again from a link, the Runs page or
    a new tab; walkthrough 48). A link's visitor gets the control only: the export's task data stay with the run's
    owner, as its gold labels do. Otherwise the predictions carry ``{"task": id}`` data."""
    kept = st.session_state.get("_label_studio")
    if kept and kept[1] is not None and kept[0] == record.get("fingerprint"):
        return kept[1]
    return mgr.store.load_label_studio(run_id, tasks=common.can_control(run_id))


def _model_version() -> str:
    """Label Studio's model_version for this run: the method and the settings it was trained with."""
    return wording.model_version(method, config, metrics.get(method) or {}, fallback, run_id)


def _download(cell, title: str, fmt: str, file_name: str, key: str, help_text: str | None = None,
              context=None) -> None:
    """One download button of the picked method's labels in ``fmt`` (``context``: the Label Studio tasks)."""
    from deem_core.data.annotations import DataError  # noqa: PLC0415
    from deem_core.data.formats.writers import OUTPUT_FORMATS  # noqa: PLC0415

    if fmt == "parquet":  # refused for labels of mixed types: say so instead of a broken button
        try:
            _serialise(frame.head(1), "parquet")
        except DataError:
            cell.caption("Parquet: not available for labels of mixed types")
            return
    cell.download_button(title, data=capacity.building_download(
                             lambda: _serialise(_picked_table(), fmt, context), common.parties(),
                             _expected_bytes(fmt, context)),
                         file_name=file_name, mime=OUTPUT_FORMATS[fmt][1], on_click="ignore", key=key, help=help_text)


def _expected_bytes(fmt: str, context=None, rows: int | None = None) -> int:
    """About how large the picked method's file in ``fmt`` (of ``rows`` rows: all) will be, before it is made: its
    rows at their longest texts (:func:`~deem_core.data.formats.writers.expected_sizes`), and a Label Studio
    export's own task data where the file carries them (a 1 GB file; attack round 56)."""
    size = file_sizes[fmt]
    if rows is not None:  # (a part of the table: its share)
        size = -(-size * rows // max(1, stored_rows))
    source = getattr(context, "source", None) if fmt == "label_studio" else None
    return size + (int(source.text_size() or 0) if source is not None else 0)


def _serialise(table: pd.DataFrame, fmt: str, context=None) -> bytes:
    from deem_core.data.formats.writers import serialise  # noqa: PLC0415

    return serialise(table, fmt, context, _model_version())


def _picked_table():
    """The picked method's table, read (or found kept) again when a download is asked for: a download that held the
    page's tables kept every session's copies alive after its page run, uncounted (attack round 15)."""
    return capacity.run_tables(mgr.store, run_id, [method], prepare=in_natural_order).results[method]


# one row of buttons at their own widths, wrapping as the page narrows (columns cut their names short: "Labels Pa…")
row = st.container(horizontal=True)
label_studio = _label_studio_context()  # (read once a page run: the button and the visitor's note below)
_download(row, "Labels CSV", "csv", f"{stem}_labels.csv", "dl_csv",
          # (which cells, and where the ids stay exact: 300 ids written '=1+1_0 joined none of their source's;
          # walkthrough 123)
          "spreadsheet-safe: a cell a spreadsheet could run as a formula (one starting with =, +, -, @ or a "
          "control character, or holding one after a ; or |) gets a ' in front, task ids too, so such ids no longer "
          "match your source file in a join (deem and this dashboard take the ' away when they read the file); the "
          "Parquet and JSON files keep every id exactly")
reordered = bool(review and not hard and "confidence" in view)  # (the queue's order alone is worth a file; read 50)
if 0 < len(view) and (len(view) < len(frame) or reordered):  # the filtered queue itself (walkthrough 100)
    queue = view.index.copy()  # (the task ids only: the table is read again when the file is made)
    # the filters in the file's name: two queues of one run (disagreements; confidence at most 0.60) downloaded under
    # one name, the second overwriting the first in a downloads folder (walkthrough 102)
    filters = ([f"conf_le_{max_conf:.2f}"] if not hard and max_conf < 1.0 else []) + (
        ["disagreements"] if only_disagree else []) + (["least_confident_first"] if reordered else [])
    row.download_button(f"Review queue CSV ({len(view):,} tasks)", data=capacity.building_download(
                            lambda: _serialise(_picked_table().loc[queue], "csv"),  # (the Labels CSV's writer)
                            common.parties(), _expected_bytes("csv", rows=len(queue))),
                        file_name=f"{stem}_review_queue_{'_'.join(filters) or 'filtered'}.csv", mime="text/csv",
                        on_click="ignore", key="dl_queue",
                        help="the tasks the filters above show, in the table's order, with every column of the "
                             "Labels CSV (spreadsheet-safe)")
_download(row, "Labels Parquet", "parquet", f"{stem}_labels.parquet", "dl_parquet")
_download(row, "Labels JSON", "json", f"{stem}_labels.json", "dl_json")
_download(row, "Label Studio predictions", "label_studio", f"{stem}_label_studio.json", "dl_label_studio",
          "tasks with predictions[] (label, confidence as score, model_version naming the run): import into Label "
          "Studio as pre-annotations; the tasks keep their ids and data when the data came from a Label Studio export "
          "(for the run's owner: a shared link's visitor gets the labels with the export's control and task ids, without "
          "its data)",
          context=label_studio)
if label_studio is None:
    # the control's names are this program's own where the data were not read from an export: a project made
    # otherwise matched none of the predictions (walkthrough 116); the config that takes them, shown as text
    from deem_core.data.formats.writers import labeling_config, placeholder_control_note  # noqa: E402

    with st.expander("Label Studio: the labeling config these predictions need"):
        ls_note = placeholder_control_note()
        st.text(ls_note[:1].upper() + ls_note[1:] + ".")
        # (not "config": the page's name of the run's settings, which the downloads below read)
        ls_config, why = labeling_config(classes)  # (every character that does not print written as a reference)
        if ls_config is not None:
            st.code(ls_config, language="xml")
        else:
            st.text(f"No config is written here: {why}. Write a <Choice> for each class.")
if label_studio is not None and label_studio.source is None and not common.can_control(run_id):
    # (a visitor's file differed from the owner's without a word; walkthrough 49)
    st.caption("Label Studio predictions: you get the labels under the export's control and task ids, without the "
               "export's task data (they stay with the run's owner, as its gold labels do); its owner's file keeps "
               "them. Imported as they are, these tasks show no text: use them on the owner's project (by task id).")
if workers is not None:
    row.download_button("Worker table CSV", data=capacity.building_download(lambda: to_safe_csv(workers, index=False),
                                                                         common.parties()),
                        file_name=f"deem_{run_id}_worker_table.csv", mime="text/csv", on_click="ignore", key="dl_workers")
if method in models:
    row.download_button("Fitted model", data=capacity.building_download(
                            functools.partial(mgr.store.model_bytes, run_id, method), common.parties()),
                        file_name=f"{stem}.pt",
                        mime="application/octet-stream", on_click="ignore", key="dl_model",
                        help="load with deem_core.DEEM.load(path)")
# a link's visitor gets no trace of the owner's gold labels (their file's name and fingerprint; walkthrough 41)
shared_config = config if common.can_control(run_id) else wording.without_gold(config)
row.download_button("Run configuration", data=lambda: json.dumps({"run_id": run_id, "kind": record["kind"],
                                                                  "dataset": record.get("dataset"),
                                                                  "fingerprint": record.get("fingerprint"),
                                                                  "config": shared_config, "labels_from": {
                                                                      m: source for m in ordered
                                                                      if (source := wording.labels_from(metrics.get(m)))}},
                                                                 indent=2),
                    file_name=f"deem_{run_id}_config.json", mime="application/json", on_click="ignore",
                    key="dl_config")
# a refused press says only Streamlit's "Failed to generate file for download" (walkthroughs 51 and 54, attack round
# 27): the limits it meets are said here
st.caption(f"Each file is made when its button is pressed: at most {capacity.DOWNLOADS_PER_PARTY} at a time for you, "
           f"in the order pressed; a press the server cannot take says \"Failed to generate file\": press it again "
           f"when your other files are done, or in a minute. It says so too for a run deleted after this page was "
           f"drawn: reload the page to see.")
if workers is not None:
    # keyed and stateful: it stays open while the method picker changes (it closed; walkthrough 30)
    with st.expander("Worker table", key="results_worker_table", on_change="rerun"):
        # one table per run, whichever method is picked (it looked like the picked method's; walkthrough 29)
        trains = primary in registry.METHODS and registry.get_method(primary).trains
        st.caption(common.safe(f"Measured against the labels of {scored_name(primary)}, the run's first "
                               f"{'trained method' if trains else 'method'}, whichever method is picked above; the "
                               f"Worker table CSV is this table."))
        # what the columns rest on, said beside them (walkthrough 36: copiers ranked first with no caution, and
        # "estimated accuracy" read as another figure than Diagnostics' "irbm accuracy")
        notes = []
        if "estimated_accuracy" in workers:
            origin = wording.labels_from(metrics.get(primary))  # (no iRBM of its own: Diagnostics has no such column)
            # (it said "without gold labels" of a model that trained on half of them; walkthrough 61)
            gold_trained = float(config.get("supervised_weight") or 0) > 0 and wording.gold_count(metrics)
            notes.append("estimated accuracy: " + (f"read from the confusion matrices of {origin}, whose labels these "
                                                   f"are, without gold labels" if origin else
                                                   "the trained model's own reading of each worker, "
                                                   + ("from the answers and the gold labels it trained on"
                                                      if gold_trained else "without gold labels")
                                                   + " (Diagnostics' irbm accuracy)"))
        if "dependent_with" in workers and (workers["dependent_with"].astype(str) != "").any():
            notes.append(f"dependent with: the other workers of its dependence cluster ({PARTNERS_WORDS}; their "
                         "answers agree beyond what the other workers explain): their agreement and estimated "
                         "accuracy count their shared answers as evidence and may read too high")
        notes.append("each worker's flag (spammer, weak, dependent) is on Diagnostics → Worker quality")
        st.caption("; ".join(notes) + ".")
        common.table(workers)
# the page's own copies go with its run (the downloads read the table again when asked)
del frame, view, shown, shown_frame, results
