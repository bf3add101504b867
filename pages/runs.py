"""Runs page: this workspace's past runs from the SQLite index; reopen, cancel, rename or delete them (owner
only, see ``deem_studio/owners.py``); open any run by id (read-only); the owner key to take to another browser."""

from __future__ import annotations

from pages.shell import require_shell

require_shell()  # first, before the heavy imports below (pages/shell.py)

import time  # noqa: E402

import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from deem_core.data.text import counted  # noqa: E402
from deem_studio import owners  # noqa: E402
from deem_studio.jobs import method_name, status_line, train_epochs, trained_methods  # noqa: E402
from deem_studio.runs import ACTIVE_STATUSES, is_run_id  # noqa: E402
from deem_studio import wording  # noqa: E402
from pages import common  # noqa: E402


st.title("Runs")
mgr = common.manager()
st.caption("Runs are kept on the server across restarts. This list shows the runs launched from this browser "
           "(your workspace); only you can cancel, rename or delete them. Anyone you send a run's link "
           "(its address, with `run=`) can open that run read-only.")


#: the runs grid's epochs column in px: "392 of 2,000" whole (65 px showed "392 of 2,0"; walkthrough 127)
EPOCHS_WIDTH = 100


def _drop_pick_of(run_id: str) -> None:
    """Forget the learning rate picked on ``run_id`` or taken from its settings (it was just deleted)."""
    pick = st.session_state.get("lr_pick") or {}
    if pick.get("sweep") == run_id or pick.get("source") == f"the settings of run {run_id}":
        st.session_state.pop("lr_pick")


def describe(row: pd.Series) -> str:
    summary = row["summary"] or {}
    bits = []
    if row["kind"] == "diagnostics" and summary.get("source_run"):  # whose (its row said only the data set's name;
        # walkthrough 29)
        method = summary.get("method")
        bits.append(f"Diagnostics of run {summary['source_run']}" + (f" ({method_name(method)})" if method else ""))
    if summary.get("recommended_lr") is not None:  # (a pick of a grid that never settled read "recommended" here,
        # "Tentative learning rate" on its Sweep page; walkthrough 122)
        bits.append(f"{'tentative' if summary.get('tentative') else 'recommended'} lr "
                    f"{wording.fmt_lr(summary['recommended_lr'])}")
    # the safety rule's reference named as on Results
    accuracies = {key[9:]: value for key, value in summary.items() if key.startswith("accuracy_") and value is not None}
    scores = [f"{wording.method_label(method, summary.get(f'labels_from_{method}'))} {value:.3f}"
              for method, value in accuracies.items()]
    scored = summary.get("gold_tasks")
    if scores and scored:  # (0.800 on 15 tasks and 0.877 on 300 side by side read as an improvement; walkthrough 23)
        # (how far so few tasks can be off: the grid repeated 0.817 on 60 as a fact; walkthrough 79)
        margins = wording.gold_margins([float(v) for v in accuracies.values() if isinstance(v, (int, float))],
                                       int(scored))
        bits.append(f"accuracy on {int(scored):,} gold task{'s' if int(scored) != 1 else ''}"
                    + (f" (each {wording.gold_margin_text(margins)} at 95% confidence)" if margins else "") + ": " + ", ".join(scores))
        if gold_weight_text(row["config"], row["kind"], summary) not in ("", "0"):
            # (read as a test of unseen tasks; the Train page and the CLI said otherwise; walkthrough 65)
            returned = summary.get("labels_from_deem")
            # (the safety rule's reference trained with none of them: it read "DEEM trained with half" beside Train's
            # "which used none of them"; walkthrough 66)
            bits.append(f"DEEM's labels from {returned}, which used none of these gold labels (the safety rule "
                        f"checked it on half of them)" if returned else
                        "DEEM trained with half of these gold labels (gold weight above 0): not a test of unseen tasks")
    else:
        bits.extend(scores)
    return ", ".join(bits)


def setting(config: dict, key: str) -> str:
    """One setting of a run's configuration as short text (empty when the run has none)."""
    value = (config or {}).get(key)
    if value is None:
        return ""
    if key == "lr":
        return wording.fmt_lr(value)
    if key == "lrs":
        return ", ".join(wording.fmt_lr(v) for v in value)
    if key == "methods":
        return ", ".join(method_name(m) for m in value)
    return str(value)


def methods_text(config: dict | None, summary: dict | None = None) -> str:
    """A run's methods as asked; those that gave no labels (a training cancelled before them, a method that failed)
    said so (a cancelled run listed GLAD and Wawa, which never ran; walkthrough 128)."""
    asked = list((config or {}).get("methods") or [])
    done = (summary or {}).get("methods")
    if not asked or done is None:
        return setting(config, "methods")
    missing = [m for m in asked if m not in done]
    if not missing:
        return setting(config, "methods")
    ran = ", ".join(method_name(m) for m in asked if m in done) or "none"
    return f"{ran} ({', '.join(method_name(m) for m in missing)}: no labels)"


def layers_text(config: dict | None, kind: str, summary: dict | None = None) -> str:
    """A run's layers: a sweep's, a train run's DEEM's ("0" for an iRBM alone; none when nothing trains); asked for
    as "auto", the depth used with it ("auto → 0": the grid said "auto" alone; walkthrough 28); "→ none" when the
    labels came from a reference (no layers)."""
    if kind == "sweep":
        return setting(config, "n_layers")
    trained = trained_methods(config or {}) if kind == "train" else []
    if not trained:
        return ""
    return _asked_and_used(config, summary, "n_layers", "layers", "deem") if "deem" in trained else "0"


def start_text(config: dict | None, kind: str, summary: dict | None = None) -> str:
    """A train run's start of its first trained method, with the one used when asked for as "auto" (named as on the
    Train form: the grid said "ds"; walkthrough 30)."""
    trained = trained_methods(config or {}) if kind == "train" else []
    return _asked_and_used(config, summary, "init", "start", trained[0], common.STARTS) if trained else ""


def _asked_and_used(config: dict | None, summary: dict | None, key: str, used_key: str, method: str,
                    names: dict[str, str] | None = None) -> str:
    """The setting asked for, named by ``names`` where it has a name; asked as "auto", the value used after it (the
    start of a run whose labels are the safety rule's reference: that reference's)."""
    names = names or {}
    asked = setting(config, key)
    used = (summary or {}).get(f"{used_key}_{method}")
    returned = (summary or {}).get(f"labels_from_{method}")
    if returned and key == "init":  # (it read "auto" as if a start had trained; walkthrough 50)
        return f"{names.get(asked, asked)} → {returned}'s labels"
    if returned:  # the labels have no layers ("1" read as a 1-layer model's labels; walkthrough 59)
        return f"{names.get(asked, asked)} → none"
    if asked != "auto" or used is None or returned:
        return names.get(asked, asked)
    return f"auto → {names.get(str(used), used)}"


def epochs_text(config: dict | None, kind: str, n_tasks, summary: dict | None = None) -> str:
    """A run's epochs (none for a train run of methods that do not train); one whose update budget cut them, or
    cancelled before they were trained (``summary``'s ``epochs_<method>``), says how many of how many ("81 of 100")."""
    config = config or {}
    if config.get("epochs") is None:
        return ""
    epochs = int(config["epochs"])
    if kind != "train":
        return f"{epochs:,}"
    methods = trained_methods(config)
    if not methods:
        return ""
    planned = epochs
    if "max_updates" in config and not pd.isna(n_tasks):
        planned = min(epochs, train_epochs(config, int(n_tasks)))
    done = next((int(v) for m in methods if isinstance(v := (summary or {}).get(f"epochs_{m}"), (int, float))), None)
    if done is not None and done < planned:
        return f"{done:,} of {epochs:,}"
    return f"{epochs:,}" if planned >= epochs else f"{planned:,} of {epochs:,}"


def gold_weight_text(config: dict | None, kind: str, summary: dict | None = None) -> str:
    """A train run's gold-label weight when it was scored on gold labels (given with it) and something trained (""
    otherwise)."""
    config = config or {}
    if kind != "train" or not trained_methods(config) or not (summary or {}).get("gold_tasks"):
        return ""
    weight = config.get("supervised_weight")
    return "" if weight is None else f"{float(weight):g}"


def tasks_text(config: dict, n_tasks: object) -> str:
    """The tasks a run trained on: the data set's count, or "250 of 300" for a sweep on a task sample."""
    if pd.isna(n_tasks):
        return ""
    sample = (config or {}).get("sample_tasks")
    return f"{int(sample):,} of {int(n_tasks):,}" if sample else f"{int(n_tasks):,}"


runs = mgr.store.list(owner=common.workspace())
if len(runs):
    # a queued run names the run of this workspace it waits behind (its stored message names none: a visitor of its
    # link reads that; attack round 55, walkthrough 109)
    queued = runs["status"] == "queued"
    if queued.any():
        runs = runs.copy()
        runs.loc[queued, "message"] = [status_line(snap, owner=True) if (snap := mgr.snapshot(r, history=False)) is not None
                                       else m for r, m in zip(runs.loc[queued, "run_id"], runs.loc[queued, "message"])]
    configs = runs["config"]
    shown_name = runs["name"].where(runs["name"].notna() & (runs["name"] != ""), runs["dataset"])
    table = pd.DataFrame({
        # (to the minute: at 1,400 px the grid ended at "epo", the gold weight and the methods out of sight;
        # walkthrough 64)
        # (a time past what a date holds, 1e308 in a damaged index, broke the whole grid; attack round 43)
        "started (UTC)": pd.to_datetime(runs["created_at"].where(runs["created_at"].between(0, 4e9)), unit="s",
                                        errors="coerce").dt.strftime("%Y-%m-%d %H:%M"),
        "run id": runs["run_id"], "kind": runs["kind"],
        "status": runs["status"],
        # what tells runs of one data set apart first: the accuracy, the layers and the start (they were off to the
        # right or missing; walkthrough, tenth session)
        # (the learning rate and epochs too: to the right of the long summary and methods, a walkthrough at 1,400
        # px never saw them; walkthrough 19)
        # (before the summary: beyond its width a walkthrough at 1,400 px saw none of them; walkthrough 20)
        "name": shown_name,
        # a train run's DEEM settings only when something trained (a Dawid-Skene run listed 1 layer, auto, 0.01;
        # walkthrough 25), an iRBM alone with its 0 layers
        "layers": [layers_text(c, k, m) for c, k, m in zip(configs, runs["kind"], runs["summary"])],
        "start": [start_text(c, k, m) for c, k, m in zip(configs, runs["kind"], runs["summary"])],
        "learning rate": [setting(c, "lr") if k == "train" and trained_methods(c or {}) else
                          (setting(c, "lrs") or "default grid") if k == "sweep" else ""
                          for c, k in zip(configs, runs["kind"])],
        "epochs": [epochs_text(c, k, n, m) for c, k, n, m in zip(configs, runs["kind"], runs["n_tasks"],
                                                                 runs["summary"])],
        # (runs with gold-label weights 0 and 1 read alike; walkthrough 62)
        "gold weight": [gold_weight_text(c, k, m) for c, k, m in zip(configs, runs["kind"], runs["summary"])],
        "methods": [methods_text(c, m) for c, m in zip(configs, runs["summary"])],  # (far right: walkthrough 64)
        "summary": runs.apply(describe, axis=1),
        "tasks": [tasks_text(c, n) for c, n in zip(configs, runs["n_tasks"])],
        "seconds": runs["seconds"].fillna(time.time() - runs["started_at"]).round(1),  # running: so far
        "message": runs["message"]})
    common.dataframe(table, hide_index=True, width="stretch",
                     column_config={"run id": st.column_config.TextColumn(pinned=True),  # (in sight when scrolled)
                                    # (pixels: at 1,400 px the grid ended at "epo"; walkthrough 64)
                                    **{name: st.column_config.TextColumn(width=width) for name, width in
                                       (("kind", 85), ("status", 75), ("learning rate", 95), ("epochs", EPOCHS_WIDTH),
                                        ("name", 110))},
                                    "start": st.column_config.TextColumn(width=130),  # (whole on hover)
                                    "methods": st.column_config.TextColumn(width="medium"),
                                    "tasks": st.column_config.TextColumn(alignment="right"),  # "60,000"; "" not "None"
                                    "summary": st.column_config.TextColumn(width="large"),
                                    # ("1 → none" had no word; walkthrough 62)
                                    "layers": st.column_config.TextColumn(
                                        width=75,
                                        help="DEEM's layers as asked → as used: 'auto → 2' the depth chosen, "
                                             "'→ none' where the safety rule returned a reference's labels (majority "
                                             "vote or the cluster-weighted Dawid-Skene, no layers)"),
                                    "gold weight": st.column_config.TextColumn(
                                        width=90,
                                        help="the gold-label weight DEEM trained with (0: the gold labels only "
                                             "scored the results; empty: none given or nothing trained)")})
    # selectbox options are shown as plain text (no Markdown): names need no escaping here
    labels = {rid: f"{rid} · {kind} · {status} · {name or ''}" for rid, kind, status, name in
              zip(runs["run_id"], runs["kind"], runs["status"], shown_name)}
    # the options are the texts themselves: with run ids and a format_func, a browser kept showing a renamed run's
    # old text until another run was picked; the run picked before is picked again under its new text
    # a visit starts on the run this session has open (it started on the newest row, often the diagnostics of the
    # run a user had just looked at; walkthrough 33), else on the newest
    previous = (st.session_state.get("_runs_chosen") if "runs_choice" in st.session_state
                else st.session_state.get("run"))
    if st.session_state.get("runs_choice") not in labels.values():
        # always set where the box holds no option of this list: left unset after a delete, the box kept showing the
        # deleted run's text while the page below (and its buttons) went to the first run (walkthrough 123)
        st.session_state["runs_choice"] = labels[previous] if previous in labels else next(iter(labels.values()))
    picked = st.selectbox("Run", list(labels.values()), key="runs_choice")
    chosen = next(rid for rid, text in labels.items() if text == picked)
    st.session_state["_runs_chosen"] = chosen
    status = runs.loc[runs["run_id"] == chosen, "status"].iloc[0]
    kind = runs.loc[runs["run_id"] == chosen, "kind"].iloc[0]
    # the picked run's summary and message in full: in the grid's cells they were cut after the first method at
    # 1,400 px (walkthrough 24); shown as text (a message may quote a file name)
    for title, column in (("Summary", "summary"), ("Message", "message")):
        text = table.loc[runs["run_id"] == chosen, column].iloc[0]
        if isinstance(text, str) and text.strip():
            st.text(f"{title}: {text}")
    row = st.container(horizontal=True)  # buttons as wide as their words (fixed columns cut them to "O..")
    if row.button("Open", type="primary", key="runs_open"):
        if common.open_run(chosen, quiet=False):
            common.go(common.PAGE_OF_KIND.get(kind, "pages/train.py"))
    if status in ACTIVE_STATUSES and row.button("Cancel", key="runs_cancel"):
        common.cancel(chosen)
    if status not in ACTIVE_STATUSES and row.button("Delete", key="runs_delete"):
        st.session_state["_confirm_delete"] = chosen
    if row.button("Rename", key="runs_rename"):
        st.session_state["_rename"] = chosen
        st.session_state.pop("runs_new_name", None)  # the box starts from this run's name, not the last one typed
    # the link to send (the page said to send a run's link, and gave none to copy; walkthrough 22)
    st.caption("Its link, read-only for anyone you send it to:")
    st.code(common.run_link(chosen, kind), language=None)
    if st.session_state.get("_rename") == chosen:
        current = runs.loc[runs["run_id"] == chosen, "name"].iloc[0]
        current = current if isinstance(current, str) else ""  # (a run without a name: NaN, shown as "nan"; walk 25)
        # in a form, Enter in the box saves the name as the button does (it saved nothing and said nothing;
        # walkthrough 22)
        with st.form("runs_rename_form", border=False):
            new_name = st.text_input("New name (empty: the data set's name)", value=current,
                                     key="runs_new_name", max_chars=120)
            save = st.form_submit_button("Save the name", key="runs_rename_save")
        if save:
            try:
                owners.rename_run(mgr.store, chosen, common.owner_key(), new_name)
                st.session_state.pop("_rename", None)
                st.session_state["_notice"] = (f"run {chosen} renamed to “{new_name.strip()}”" if new_name.strip()
                                               else f"run {chosen} is named after its data set again")
                st.rerun()
            except Exception as exc:  # noqa: BLE001 - AccessDenied, RunNotFound: a message
                common.show_error(exc, "rename")
    if st.session_state.get("_confirm_delete") == chosen:
        # (a visitor's own runs on its data, launched from its link, are not the owner's to delete; attack round 14)
        st.warning(f"Delete run {chosen} and all its files? Runs that others launched on its data from its link are "
                   f"theirs: they stay.")
        if st.button("Yes, delete it", key="runs_delete_yes"):
            try:
                with_it = owners.delete_run(mgr.store, chosen, common.owner_key())
                if st.session_state.get("run") in [chosen, *with_it]:  # (its diagnostics open: "belongs to another
                    common.set_current_run(None)  # workspace" was said of the owner's own deleted run; walkthrough 123)
                for key in ("sweep_run", "train_run", "diag_run"):
                    if st.session_state.get(key) in [chosen, *with_it]:
                        st.session_state.pop(key)
                # the latest runs left on the data set come in their place: Results and Diagnostics said "no
                # training run on these data yet" beside another training of them (walkthrough 37)
                shown = {key: st.session_state.get(key) for key in ("sweep_run", "train_run")}
                common.restore_latest_runs()
                # the pick the session held, or the kept one the restore brought back, may cite the deleted run (the
                # Train form cited it; walkthrough 37)
                _drop_pick_of(chosen)
                train = st.session_state.get("train_run")
                if train and "lr_pick" not in st.session_state and not shown.get("train_run"):
                    # its rate too, as a reload of its address gives it (the rate read "the engine's default" until
                    # a reload, then "the settings of run ..."; walkthrough 39)
                    common.restore_form(mgr.store.get(train))
                if st.session_state.get("run") is None:
                    common.set_current_run(st.session_state.get("train_run") or st.session_state.get("sweep_run"))
                # which run now stands in its place, said (Results switched to it without a word; walkthrough 38)
                kinds = {"train_run": "training", "sweep_run": "sweep"}
                instead = [f"{kinds[key]} {st.session_state[key]}" for key in kinds
                           if st.session_state.get(key) and not shown.get(key)]
                st.session_state.pop("_confirm_delete", None)
                # the box goes to the run the pages now show (it went to the newest run of the list, while the
                # address named another: a second Delete would have deleted that one; walkthrough 41)
                st.session_state.pop("_runs_chosen", None)
                st.session_state.pop("runs_choice", None)
                st.session_state["_notice"] = (f"run {chosen} deleted with its files"  # (said nothing; walkthrough 23)
                                               + (f" and its diagnostics (run {', '.join(with_it)})" if with_it else "")
                                               + (f"; the pages now show your latest {' and '.join(instead)} left on "
                                                  f"these data" if instead else ""))
                st.rerun()
            except Exception as exc:  # noqa: BLE001
                common.show_error(exc, "delete")
else:
    st.info("No runs in this workspace yet.")

current = st.session_state.get("run")
if current and not common.can_control(current):
    common.read_only_note(current)

st.subheader("Open a run by id")
with st.form("runs_by_id_form", border=False):  # (Enter in the box opens it, as the button does)
    typed = st.text_input("Run id", key="runs_by_id",
                          placeholder="16 hexadecimal characters, e.g. from a shared link")
    opened = st.form_submit_button("Open this run", key="runs_open_id")
if opened:
    text = typed.strip().lower()
    if not text:
        st.error("Type or paste a run id first.")
    elif not is_run_id(text):
        shown = typed if len(typed) <= 80 else typed[:80] + "…"
        st.error(common.safe(f"{shown!r} is not a run id (16 hexadecimal characters)"))
    elif not common.open_run(text, quiet=False):
        st.error(common.safe(wording.sentence(st.session_state.pop("_notice", f"no run with id {text}"))))
    else:
        kind = mgr.store.get(text)["kind"]
        common.go(common.PAGE_OF_KIND.get(kind, "pages/train.py"))

st.subheader("Owner key")
with st.expander("Your owner key: control your runs from another browser"):
    st.caption("This key is what makes you the owner of the runs listed above. This browser keeps it in this "
               "site's storage (a refresh or a server restart keeps it; no other site or port reads it). To cancel, "
               "rename or delete your runs from another browser, or after clearing this site's data, paste it below "
               "there. Keep it like a password: "
               "whoever has it controls your runs. Pasting another key here replaces this one in this browser: "
               "copy this one first if runs are listed under it.")
    st.code(common.owner_key(), language=None)
    with st.form("runs_owner_key_form", border=False):
        pasted = st.text_input("Use an owner key", key="runs_owner_key", type="password",
                               placeholder="32 hexadecimal characters")
        used = st.form_submit_button("Use this key in this browser", key="runs_use_key")
    if used:
        key = owners.normalise_key(pasted)
        if key is None:
            st.error("That is not an owner key (32 hexadecimal characters).")
        else:
            previous, left = common.owner_key(), len(mgr.store.list(owner=common.workspace()))
            common.use_owner_key(key)
            n = len(mgr.store.list(owner=common.workspace()))
            # the browser's own runs went out of its list without a word, and their key with them (walkthrough 34)
            kept = (f"; the {counted(left, 'run')} of this browser's previous key {'stays' if left == 1 else 'stay'} with it: to come back to {'it' if left == 1 else 'them'}, use "
                    f"that key again ({previous})" if left and previous != key else "")
            st.session_state["_notice"] = f"this browser now uses that owner key: {counted(n, 'run')} in its workspace{kept}"
            st.rerun()
