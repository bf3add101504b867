"""Data page: upload annotation files (or load a sample set), check the detected layout, see a summary."""

from __future__ import annotations

from pages.shell import require_shell

require_shell()  # first, before the heavy imports below (pages/shell.py)

import hashlib  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import plotly.express as px  # noqa: E402
import streamlit as st  # noqa: E402

from deem_core.analysis.scoring import left_out_text  # noqa: E402
from deem_core.data.annotations import BeyondLimitError, DataError  # noqa: E402
from deem_core.methods.clusters import MIN_COMMON  # noqa: E402
from deem_core.data.text import counted, is_are, names_text, natural_positions, shortened  # noqa: E402
from deem_core.plots.axes import category_axes, cut_ticks  # noqa: E402
from deem_studio import capacity  # noqa: E402
from deem_studio.jobs import readable_error  # noqa: E402
from deem_studio import wording  # noqa: E402
from pages import common  # noqa: E402


SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_data"
FORMATS = {"auto": "detect automatically", "long": "long: task, worker, label",
           "wide": "wide: task + one column per worker", "per_annotator": "one file per worker: task, label",
           "mturk": "Amazon Mechanical Turk batch results", "toloka": "Toloka results (TSV)",
           "label_studio": "Label Studio JSON export", "label_studio_min": "Label Studio JSON-MIN export",
           "label_studio_csv": "Label Studio CSV export"}
CONFLICTS = {"error": "stop and tell me", "first": "keep the first answer", "last": "keep the last answer"}
MAX_HEATMAP = common.MAX_PAIRWISE_WORKERS
#: the class balance table's columns in words (legend and table)
BALANCE_COLUMNS = {"answers": "answers", "answer_share": "share of the answers",
                   "majority_vote_tasks": "tasks (majority vote; a tie shared)",
                   "majority_vote_share": "share of the tasks (majority vote; a tie shared)"}
#: annotator rows the coverage table shows (the most active ones; a platform can have a million annotators)
MAX_COVERAGE_ROWS = 5000


def _upload_limits() -> str:
    from deem_studio.uploads import describe, upload_guard  # noqa: PLC0415

    guard = upload_guard()
    if guard is None:
        return ""
    return (f"The server keeps at most {describe(guard.per_session)} of files per browser session and "
            f"{describe(guard.total)} for all its users together; a file over a limit is refused (the uploader says "
            f"\"status code 413\"): remove files, or try again later.")


UPLOAD_LIMITS = _upload_limits()

#: the engine's messages name its Python and CLI options; on this page the same choice is a control above
_HINTS = [
    (re.compile(r"\(on_conflict='first' or 'last', CLI --on-conflict\)"),
     "(choose 'keep the first answer' or 'keep the last answer' under 'When one worker gave one task different "
     "labels')"),
    (re.compile(r"\(or pass columns=\{'(\w+)': \.\.\.\}, CLI --\w+-column\)"), r"(or choose the \1 column under Mapping)"),
    (re.compile(r"pass columns=\{'task': \.\.\.\} \(CLI --task-column\)"), "choose the task column under Mapping"),
    (re.compile(r"\(columns=\{'task': 'data\.<field>'\}, CLI --task-column data\.<field>\)"),
     "(choose the task key under Mapping)"),
    (re.compile(r"with keep_missing=True \(CLI --keep-missing-labels\)"),
     "with the switch 'Keep None, NaN, null, NA, N/A as labels'"),
    # (not where the file reads as another layout: columns picked by hand then read a wide file's labels as worker
    # names; walkthrough 112)
    (re.compile(r"^(?!.*check the format chosen first)(.*missing column\(s\) .* for the long layout \(task, worker, "
                r"label\); found .*)$"), r"\1: choose them under Mapping"),
    (re.compile(r"is read on its own: give one file"), "is read on its own: remove the other files above"),
    (re.compile(r"name the layout to read them as \(format=\.\.\., CLI --format\)"), "choose the layout under Format"),
    (re.compile(r"\(columns=\{'label': \.\.\.\}, CLI --label-column\)"), "(choose the label column under Mapping)"),
    (re.compile(r"\(columns=\{'ignore': \[\.\.\.\]\}, CLI --ignore-column\)"),
     "(choose them under Mapping, “Columns that are no worker (left out)”)"),
    (re.compile(r"or merge them \(with_spellings_merged\(\), CLI --merge-spellings\)"),
     "or merge them with the button “Merge the labels spelled alike” below"),
]


def gold_columns_text(columns: Any) -> str:
    """The columns a gold file was read from, in words ("column 'id' as the task, 'gold' as the gold label"), "" where
    they are the "task, truth" the uploader asks for (or unknown)."""
    if not (isinstance(columns, (list, tuple)) and len(columns) == 2) or tuple(map(str, columns)) == ("task", "truth"):
        return ""
    return f"column {shortened(str(columns[0]), 40)!r} as the task, {shortened(str(columns[1]), 40)!r} as the gold label"


def page_words(message: Any) -> str:
    """An engine message (a DataError, a reading note) with its option hints in this page's words, as safe
    Markdown text."""
    text = str(message)
    for pattern, words in _HINTS:
        text = pattern.sub(words, text)
    return common.safe(text)


def sample_sets() -> list[str]:
    return sorted(p.name[:-4] for p in SAMPLE_DIR.glob("*.csv") if not p.name.endswith(".truth.csv"))


def load_sample(name: str) -> None:
    from deem_core.data.readers import read_annotations, read_truth  # noqa: PLC0415

    data = read_annotations(SAMPLE_DIR / f"{name}.csv")
    truth_path = SAMPLE_DIR / f"{name}.truth.csv"
    gold = read_truth(truth_path, like=data) if truth_path.exists() else None
    common.set_dataset(name, data, gold, files=[f"{name}.csv"], origin="sample")
    st.session_state.pop("_label_studio", None)



#: columns the preview grid shows (the read-as line names what is read; a wide file's workers are its columns)
PREVIEW_COLUMNS = 200


def read_first(frame, columns: dict):
    """The preview's cells with the columns read as task, worker, label (and status) first: an MTurk export's are its
    16th, 28th and 30th, and the grid opened on HITId, HITTypeId, Title, ... (walkthrough, tenth session)."""
    first: list = []
    for role in ("task", "worker", "label", "status"):
        value = (columns or {}).get(role)
        for name in value if isinstance(value, (list, tuple)) else [] if value is None else [value]:
            # (a checkbox group's label is its columns "<name>.<option>")
            group = [name] if name in frame.columns else [c for c in frame.columns if str(c).startswith(f"{name}.")]
            first += [c for c in group if c not in first]
    return frame[first + [c for c in frame.columns if c not in first]] if first else frame


st.title("Data")
st.caption("Upload the workers' labels: one or more files (long, wide or one file per worker; or an Amazon "
           "Mechanical Turk, Toloka or Label Studio export; CSV, TSV, JSON or Parquet, gzipped or not), or start from "
           "a bundled sample set.")

# ------------------------------------------------------------------ sample sets
with st.container(border=True):
    st.markdown("**Sample data sets** (with gold labels, from the DEEM paper's recipes)")
    names = sample_sets()
    row = st.container(horizontal=True)  # each button its name's width, wrapping (in columns: "amp…" at 900 px)
    for name in names:
        if row.button(name, key=f"sample_{name}"):
            try:
                with st.spinner(f"loading {name}"):
                    load_sample(name)
                st.session_state["_notice"] = f"loaded the sample set {name}"
                st.rerun()
            except DataError as exc:
                st.error(common.safe(exc))
            except Exception as exc:  # noqa: BLE001
                common.show_error(exc, f"sample {name}")

# ------------------------------------------------------------------ upload
DETECTED = "(as detected)"
#: the most columns the Mapping lists to leave out of a wide file
MAX_IGNORE_CHOICES = 2_000
COMBINED = "(all of them together)"


def _mapping_controls(shown, fmt: str) -> dict:
    """Selectboxes to override what the detection chose; returns the ``columns=`` mapping to read with."""
    columns: dict = {}
    effective = shown.layout or (fmt if fmt != "auto" else "long")
    choices = shown.choices or {}
    header = [str(c) for c in shown.frame.columns]
    if effective in ("long", "wide", "per_annotator"):
        roles = {"long": ["task", "worker", "label"], "per_annotator": ["task", "label"], "wide": ["task"]}[effective]
        options = {role: header for role in roles}
        titles = {"task": "task column", "worker": "worker column", "label": "label column"}
    elif effective == "label_studio":
        roles = ["label", "task"]
        options = {"label": choices.get("label", []), "task": choices.get("task", [])}
        titles = {"label": "labelling control (from_name)", "task": "task key"}
    else:
        roles = ["label", "task"]
        options = {"label": choices.get("label", []), "task": choices.get("task", [])}
        titles = {"label": "answer field (the label)", "task": "task column"}
    detected = shown.columns or {}
    cells = st.columns(len(roles))
    for cell, role in zip(cells, roles):
        found = detected.get(role)
        listed = list(dict.fromkeys(str(o) for o in options.get(role, []) if o is not None))
        extra = [COMBINED] if role == "task" and effective not in ("long", "wide", "per_annotator", "label_studio") \
            and len([o for o in listed if o.startswith(("Input.", "INPUT:"))]) > 1 else []
        chosen = cell.selectbox(titles[role], [DETECTED, *extra, *listed], key=f"map_{role}",
                                format_func=common.picker_names([DETECTED, *extra, *listed]),
                                help="what the detection chose is named in the 'read as' line above")
        if chosen == COMBINED:
            columns[role] = [o for o in listed if o.startswith(("Input.", "INPUT:"))]
        elif chosen != DETECTED and chosen != (found if isinstance(found, str) else None):
            columns[role] = chosen
    if effective == "wide":
        # a column that is no worker (a "notes" column's remarks became classes, and nothing could leave it out;
        # walkthrough 97): those named as dates, notes or item text go by themselves, the others here
        task = columns.get("task") or detected.get("task")
        others = [c for c in header if c != task]
        if len(others) > MAX_IGNORE_CHOICES:  # (a list of 20,000 workers is no list to pick from)
            st.caption(f"{len(others):,} worker columns: too many to list here; leave columns out with the deem "
                       f"command's --ignore-column, or in the file")
        else:
            ignored = st.multiselect("Columns that are no worker (left out)", others, key="map_ignore",
                                     format_func=common.picker_names(others),
                                     placeholder="none",
                                     help="a wide file reads every column but the task as a worker: pick those that "
                                          "are not (notes, flags, the item's text); a column named as a date, notes "
                                          "or item text that holds them is left out by itself, and said in the "
                                          "'read as' line")
            if ignored:
                columns["ignore"] = list(ignored)
    return columns


def _preview(file, **options):
    """The preview of an uploaded ``file`` read with ``options``, kept for this session while the file and the options
    stay the same (the last two: without and with the mapping chosen). Every rerun of this page read it again,
    the one of the click on "Load these files" and the one after loading too: a file of 20,000 worker columns
    said "loaded in 18.3 s" where the page took 46 s (walkthrough 18). A preview reads at most a few MB (one Parquet
    row group: 128 MiB), under a read slot of its file's size (:func:`common.reading`)."""
    from deem_core.data.readers import preview  # noqa: PLC0415

    key = (file.file_id, file.size, repr(sorted(options.items(), key=lambda item: item[0])))
    kept = dict(st.session_state.get("_previews", []))
    found = kept.pop(key, None)
    if found is None:
        try:
            with common.reading(size=common.upload_bytes(file)):
                found = preview(file, **options)
        except DataError as exc:  # a file that cannot be read is not read again on every click either (kept as a new
            # error of its own: with its traceback it would keep the failed read's frames, and what they hold)
            found = exc.anew()
    # the latest counted for this visitor, those before it within a few MB (attack round 48)
    st.session_state["_previews"] = capacity.kept_previews(
        [*list(kept.items())[-MAX_FILES_CHECKED:], (key, found)], st.session_state.setdefault("_preview_bytes", {}),
        party=common.visitor())
    if isinstance(found, DataError):
        raise found.anew()  # (a copy: the kept one gets no traceback)
    return found


#: files checked one by one when the first cannot be read (each a preview of a few MB)
MAX_FILES_CHECKED = 10


def _content_ids(files) -> list[tuple[str, str]]:
    """Each upload's name and a hash of its bytes, computed once per upload (the uploader's id) and kept for the
    uploads now chosen only."""
    kept = st.session_state.get("_content_ids") or {}
    ids = {f.file_id: kept.get(f.file_id) or hashlib.blake2b(f.getbuffer(), digest_size=16).hexdigest() for f in files}
    st.session_state["_content_ids"] = ids
    return [(f.name, ids[f.file_id]) for f in files]


def _read_with(files, shown, predictions: bool, conflict: str, keep_missing: bool) -> tuple:
    """What a load reads: the uploads and the format and columns their first file is read with (the preview's: a
    format chosen that reads it as detection did is no change; walkthrough 106), the predictions toggle and the
    choices of how to read repeated answers and missing-label spellings."""
    read = (None, None) if shown is None else (shown.layout, repr(sorted((shown.columns or {}).items(), key=str)))
    # the files by name and content: the same file chosen again is a new upload to the uploader (walkthrough 107),
    # and one edited to the same size is another file (read 53)
    return (tuple(_content_ids(files)), *read, bool(predictions), str(conflict), bool(keep_missing))


def _format_chosen() -> None:
    """Remember which files the format was chosen for (see the reset above the Format box)."""
    st.session_state["_format_files"] = [f.file_id for f in st.session_state.get("upload_annotations") or []]


with st.container(border=True):
    st.markdown("**Your files**")
    files = st.file_uploader("Annotation files", type=["csv", "gz", "tsv", "txt", "json", "jsonl", "parquet", "pq"],
                             accept_multiple_files=True, key="upload_annotations",
                             help="Long: task, worker, label. Wide: task + one column per worker. One file per "
                                  "worker: task, label (the worker is named after the file). Or a platform's export: "
                                  "Amazon Mechanical Turk batch results, Toloka results, Label Studio JSON / JSON-MIN "
                                  "/ CSV. CSV, TSV, JSON or Parquet, gzipped or not. " + UPLOAD_LIMITS)
    # a format (and mapping) chosen for other files does not carry over to new ones: they start from detection
    current = [f.file_id for f in files or []]
    chosen_for = st.session_state.get("_format_files") or []
    reset = bool(current and chosen_for and set(current).isdisjoint(chosen_for)
                 and st.session_state.get("upload_format", "auto") != "auto")
    if reset:
        st.session_state["upload_format"] = "auto"
        for role in ("task", "worker", "label", "ignore"):
            st.session_state.pop(f"map_{role}", None)
        st.session_state["_format_files"] = []
    fmt = st.selectbox("Format", list(FORMATS), format_func=FORMATS.get, key="upload_format", persist_state="session",
                       on_change=_format_chosen)
    if reset:
        st.caption("Format set back to 'detect automatically': the one chosen before was for other files.")
    columns: dict = {}
    predictions = True
    unreadable = False  # the first file could not be read at all with this format: loading would fail the same way
    beyond = False  # ... nor with any other format or mapping (past a limit)
    previewed = None  # the "read as" line shown for the first file (the summary below does not say it again)
    if files:
        try:
            shown = _preview(files[0], format=fmt)
        except DataError as exc:
            shown, unreadable, beyond = None, True, isinstance(exc, BeyondLimitError)
            st.error(page_words(exc), icon=":material/warning:")
        except Exception as exc:  # noqa: BLE001
            shown, unreadable = None, True
            common.show_error(exc, file=files[0].name)
        if shown is not None:
            note_box = st.empty()  # the "read as" line goes above the controls that can change it
            with st.expander("Mapping: which columns or fields are the task, worker and label",
                             expanded=bool(shown.problem)):
                columns = _mapping_controls(shown, fmt)
                if shown.has_predictions:
                    predictions = st.toggle("Read the model predictions as workers (one per model_version)",
                                            value=True, key="upload_predictions")
            if columns or not predictions:
                try:  # the note and the cells as they will be read with the choices made
                    shown = _preview(files[0], format=fmt, columns=columns, predictions=predictions)
                except (DataError, capacity.CapacityError) as exc:
                    st.error(page_words(exc), icon=":material/warning:")
            if shown.note:
                more = ""
                if len(files) > 1:  # (40 per-worker files read as "worker 'annotator_00' (the file name)" alone;
                    # walkthrough 23)
                    # ("read the same way" stood above the refusal of files of other layouts; walkthrough 37)
                    # (with no column chosen each file is read through its own columns: "read with this mapping"
                    # stood above a second file keyed by another column; walkthrough 121)
                    more = (f" — the first of {len(files):,} files; the others are read "
                            + ("with this mapping" if columns or shown.layout == "per_annotator"
                               else "in this layout, each through its own columns")
                            + (", each file one worker named after it" if shown.layout == "per_annotator" else "")
                            + ": they need the same layout")
                note_box.text(common.plain_text(shown.note + more))  # "<file>: read as ...": user strings, as text
                previewed = shown.note
            if shown.problem:
                st.warning(page_words(shown.problem))
            separators = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
            details = []
            if shown.delimiter:
                details.append(f"{separators.get(shown.delimiter, repr(shown.delimiter))}-separated")
            if shown.container != "csv":
                details.append(shown.container)
            if shown.encoding:
                details.append(shown.encoding)
            if details:
                st.caption(common.safe(", ".join(details)))
            for note in shown.warnings:  # (of the rows previewed: "skipped 2 blank lines" stood beside the whole
                # file's "skipped 14 blank lines" below; walkthrough 108)
                st.caption(page_words(f"note, in the rows previewed: {note}"))
            cells = read_first(shown.frame, shown.columns)
            if cells.shape[1] > PREVIEW_COLUMNS:  # (20,000 columns took the grid 14 s to draw; walkthrough 18)
                st.caption(f"The preview shows the first {PREVIEW_COLUMNS} of the {cells.shape[1]:,} columns.")
                cells = cells.iloc[:, :PREVIEW_COLUMNS]
            common.dataframe(cells, height=220, hide_index=True)
        if len(files) > 1:
            st.caption(common.safe(f"{len(files)} files: " + ", ".join(f.name for f in files)))
    c = [st.container(), st.container()]  # one above the other: beside the box the switch read "Keep None, NaN, nul…"
    conflict = c[0].selectbox("When one worker gave one task different labels", list(CONFLICTS),
                              format_func=CONFLICTS.get, key="upload_conflict", persist_state="session")
    keep_missing = c[1].toggle("Keep None, NaN, null, NA, N/A as labels", key="upload_keep_missing",
                               help="by default these spellings (any case) and empty cells are missing answers: "
                                    "dropped, with a warning that counts the answers and the tasks lost")
    if files and len(files) > 1 and shown is not None and shown.layout == "label_studio" and not unreadable:
        # (the refusal came only after "Load these files", and the old data set stayed loaded; walkthrough 52)
        unreadable = True
        st.warning("A Label Studio JSON export is read on its own: remove the other files above to load it.",
                   icon=":material/warning:")
    if unreadable:  # ("this file" where two were named; walkthrough 65)
        st.caption(f"Remove {'the files named' if files and len(files) > 1 and shown is None else 'this file'}"
                   + ("" if beyond else " or choose another format above") + "; the files load once they can be read.")
    elif files and shown is not None and shown.layout is None:  # loading would fail with the problem shown above
        unreadable = True
        if "check the format chosen first" in (shown.problem or ""):  # (another layout reads it: walkthrough 112)
            st.caption("Choose the format it reads as above, or, where it is in the long layout, its columns under "
                       "'Mapping'; the files load once the task, worker and label are known.")
        else:
            st.caption("Choose the columns under 'Mapping' above (or another format); the files load once the task, "
                       "worker and label are known.")
    if unreadable and files and len(files) > 1:
        # the other files' problems too: each came to light only once the one before was removed (walkthrough 64)
        for other in files[1:MAX_FILES_CHECKED]:
            try:
                _preview(other, format=fmt)
            except DataError as exc:
                st.error(page_words(exc), icon=":material/warning:")
            except Exception as exc:  # noqa: BLE001
                common.show_error(exc, file=other.name)
        if len(files) > MAX_FILES_CHECKED:
            st.caption(f"The first {MAX_FILES_CHECKED} of {len(files):,} files were checked.")
    failed_now = False  # (a press whose read failed: said in the note below the error)
    if st.button("Load these files", type="primary", disabled=not files or unreadable, key="load_files"):
        from deem_core.data.readers import read_dataset  # noqa: PLC0415

        started = time.perf_counter()
        try:
            # a read slot in the line of the files' size, and a share of the reading time per address
            with st.spinner("reading the files"):
                reading = common.read_uploads(files, lambda limits: read_dataset(
                    list(files), format=fmt, columns=columns or None, on_conflict=conflict, keep_missing=keep_missing,
                    predictions=predictions, limits=limits))
            data = reading.data
            name = files[0].name if len(files) == 1 else f"{files[0].name} + {len(files) - 1} more"
            chosen = {role: " + ".join(map(str, v)) if isinstance(v, list) else str(v)
                      for role, v in (columns or {}).items() if role in ("task", "label") and v}
            said = [f"{'tasks' if role == 'task' else 'labels'} from {shortened(v, 40)!r}" for role, v in chosen.items()]
            if (columns or {}).get("ignore"):  # (read with and without a column were two data sets of one name; read 49)
                said.append(f"{wording.counted(len(columns['ignore']), 'column')} left out")
            if said:  # (one file read with two task columns was two data sets of one name; walkthrough 81)
                name += " (" + ", ".join(said) + ")"
            before = common.dataset() or {}
            # the same files loaded again after their labels spelled alike were merged read them as they are: the merge
            # went without a word (walkthrough 116)
            unmerged = bool(before.get("spellings_merged")) and before.get("file_ids") == _content_ids(files)
            kept = reading.label_studio.source if reading.label_studio is not None else None
            if kept is not None:  # (the export kept with the set, counted with it: capacity.data_bytes)
                data.held_bytes = int(kept.raw_size() or 0)
            common.set_dataset(name, data, reading.gold, files=[f.name for f in files], origin="upload",
                               read_gold=0 if reading.gold is None else len(reading.gold))
            # the files it was read from, by content: the same file uploaded again (the uploader is emptied when the
            # page is left) and read with another task column kept the gold file's refusal (walkthrough 81)
            common.dataset()["file_ids"] = _content_ids(files)
            common.dataset()["read_with"] = _read_with(files, shown, predictions, conflict, keep_missing)
            # the line goes with the data set (kept in the session, it stood under a run's data opened later, naming
            # the file read before; walkthrough 108)
            common.dataset()["reading_note"] = reading.note
            st.session_state["_label_studio"] = (data.fingerprint(), reading.label_studio)
            st.session_state["_load_seconds"] = time.perf_counter() - started
            # ("Loaded 6,097 answers from 1 file(s) in 0.3 s and 138 gold labels." read badly; walkthrough 70)
            gold_part = f" and {wording.counted(len(reading.gold), 'gold label')}" if reading.gold is not None else ""
            kept_gold = common.dataset()["gold"]
            if reading.gold is not None and len(reading.gold) > (0 if kept_gold is None else len(kept_gold)):
                # those of no class are left out (the notice counted them among those read, unsaid; walkthrough 91)
                used = 0 if kept_gold is None else len(kept_gold)
                gold_part += (f" ({used:,} {'is' if used == 1 else 'are'} used, {len(reading.gold) - used:,} "
                              f"{'is' if len(reading.gold) - used == 1 else 'are'} not among the classes)")
            st.session_state["_notice"] = (f"loaded {data.n_annotations:,} answers{gold_part} from "
                                           f"{len(files)} file{'s' if len(files) != 1 else ''} in "
                                           f"{time.perf_counter() - started:.1f} s")
            if unmerged and data.alike_label_groups():
                them = "the file has them, its" if len(files) == 1 else "the files have them, their"
                st.session_state["_notice"] += (f"; read as {them} labels spelled alike are separate classes again "
                                                f"(“Merge the labels spelled alike” below merges them)")
            st.rerun()
        except (DataError, capacity.CapacityError) as exc:
            st.error(page_words(exc), icon=":material/warning:")
            failed_now = True
        except Exception as exc:  # noqa: BLE001
            common.show_error(exc, "reading the files")
            failed_now = True

# ------------------------------------------------------------------ summary
ds = common.dataset()
if ds is None:
    st.stop()

data = ds["data"]
st.header(f"Summary: {common.safe(ds['name'])}")
now = _read_with(files, shown, predictions, conflict, keep_missing) if files and not unreadable else None
if now is not None and ds.get("read_with") != now:
    # (the summary of the set loaded before stood under the new file's "read as" line as if it were that file's;
    # walkthrough 103; not where the files cannot be loaded: the button is off; walkthrough 106)
    them = "them" if len(files) != 1 else "it"
    chosen = "the files chosen above" if len(files) != 1 else "the file chosen above"
    before = ds.get("read_with")
    if before and before[0] == now[0]:
        chosen += (f" as the format and mapping now read {them}" if before[1:3] != now[1:3] else
                   " with the choices now made")
    # (not "press Load" right below that press's error: pressed again, it failed again; walkthrough 112)
    again = ("; read as now chosen, it failed (above): change the choices above, then load" if failed_now else
             f": press “Load these files” to read {them}")
    st.info(common.safe(f"This is the summary of the data set loaded before ({shortened(ds['name'], 80)}), not of "
                        f"{chosen}{again}."), icon=":material/info:")


#: data sets whose group test a session keeps (their results, not their data)
MAX_KEPT_TESTS = 8
#: seconds the group test may hold its read slot: the search's work is bounded (about a minute at its bound on this
#: CPU: 200 workers x 20 classes; benchmarks/results/cluster_search.txt) and the validation sets' searches take 0.4-8 s;
#: a visitor's press held a read slot for the whole bound with no stop (read 51)
DEPENDENCE_TEST_SECONDS = 30


def dependence_test(data) -> None:
    """The dependence test DEEM's automatic start runs before training (``find_dependence_clusters``), on request:
    groups that answer alike beyond what the tasks explain. The page's own warning names workers who gave the same
    label on every shared task only: copiers agreeing on 95% went unsaid until training (walkthrough 100)."""
    from deem_core.analysis.selection import cluster_texts, none_found, search_cut  # noqa: PLC0415
    from deem_core.methods.clusters import MAX_TASKS, MAX_WORKERS, find_dependence_clusters  # noqa: PLC0415

    if data.n_classes < 2:
        return
    key = data.fingerprint()
    # (per data set: loading another set and this one again lost it, where its gold labels and runs came back;
    # walkthrough 101)
    kept = common.dependence_tests()
    found = kept.get(key)
    if found is None:
        if not st.button("Test for groups that answer alike", key="data_dependence_test",
                         help=f"the test DEEM's automatic start runs before training: worker pairs that agree beyond "
                              f"chance are merged where their agreement beats what the other workers' answers "
                              f"predict (on at most {MAX_TASKS:,} tasks, a random sample above, and the {MAX_WORKERS} "
                              f"workers with the most answers); seconds on most sets"):
            return
        try:
            # (a read slot and its time share: the test is bounded, but not free, and any visitor can press it)
            with st.spinner("testing the workers for groups that answer alike"), \
                    common.reading():
                with capacity.time_limit(DEPENDENCE_TEST_SECONDS) as limit:
                    found = find_dependence_clusters(data, stop=limit).summary(data.workers)
        except capacity.CapacityError as exc:
            st.error(common.safe(f"The test did not run: {exc}."), icon=":material/hourglass_empty:")
            return
        kept.pop(key, None)
        kept[key] = found
        while len(kept) > MAX_KEPT_TESTS:  # (a few KB each: the latest sets' only)
            kept.pop(next(iter(kept)))
        st.rerun()  # (drawn again without the button: it stood under the result until the next redraw)
    groups = cluster_texts(found)
    cut = search_cut(found)
    took = f"tested in {float(found.get('seconds') or 0):.1f} s" + (
        f"; found in the {counted(int(found.get('tests') or 0), 'test')} {cut}" if cut and groups else "") + (
        f"; stopped at the test's {DEPENDENCE_TEST_SECONDS} s limit, so a group that copies may go unseen here"
        if found.get("stopped") and groups else "")
    if groups:
        st.warning(common.safe(
            f"{counted(len(groups), 'group')} of workers {'answers' if len(groups) == 1 else 'answer'} alike beyond "
            f"what the tasks explain ({took}): " + "; ".join(groups) + ". They may copy one another or share one "
            "source. Majority vote and Dawid-Skene count every member as an independent vote. Trained with its "
            "automatic start, DEEM runs this test itself and checks its labels against methods that count each "
            "group as one vote, such as the cluster-weighted Dawid-Skene (a method you can pick on the Train "
            "page)."), icon=":material/group:")
    else:
        said = none_found(found)
        if found.get("stopped"):  # (the page's own limit: "a cancel or a time limit" read as if someone cancelled)
            said = said.replace("(a cancel or a time limit)", f"at the test's {DEPENDENCE_TEST_SECONDS} s limit")
        # (nothing looked for: no "tested in 0.0 s" after "none looked for"; walkthrough 103)
        st.caption(common.safe(f"Groups that answer alike beyond what the tasks explain: {said}"
                               + ("." if found.get("beyond_bound") else f" ({took}).")))
    for group in found.get("untestable") or []:
        st.caption(common.safe(f"Not testable: {counted(len(group), 'worker')} ({names_text(group)}) agree with each "
                               f"other, but everyone else is one source and a test needs two: they are counted as independent "
                               f"sources (workers who agree because they are right look the same)."))


try:
    stats = common.data_summary(data)  # (made once a data set for every session)
except Exception as exc:  # noqa: BLE001
    common.show_error(exc, "summary")
    st.stop()

m = st.columns(3) + st.columns(3)  # two rows of three: six in a row read "1…" at 900 px (walkthrough)
m[0].metric("Tasks", f"{data.n_tasks:,}")
m[1].metric("Workers", f"{data.n_workers:,}")
m[2].metric("Classes", f"{data.n_classes:,}")
m[3].metric("Answers", f"{data.n_annotations:,}")
m[4].metric("Density", wording.share_text(data.density), help="share of (task, worker) cells with an answer")
alpha = stats["alpha"]
m[5].metric("Krippendorff's α", "n/a" if np.isnan(alpha) else f"{alpha:.3f}",
            help="nominal; 1 = perfect agreement, 0 = chance level")
read_note = ds.get("reading_note")
# in a place of its own, there on every run: the line comes and goes with the upload box above, and an element coming
# or going above the tabs below opened them on their first tab again (walkthrough 90)
read_slot = st.container()
if read_note and read_note != previewed:  # (the same line stood above and here once loaded; walkthrough 70)
    if previewed and read_note.startswith(previewed + "; "):  # (what the whole read found besides: gold labels)
        read_slot.caption(common.safe(f"Read as the line above says; {read_note[len(previewed) + 2:]}"))
    else:
        read_slot.text(common.plain_text(read_note))
st.caption(common.safe(f"Format: {FORMATS.get(getattr(data, 'layout', 'long'), getattr(data, 'layout', 'long'))} · from {', '.join(ds['files']) or ds['origin']} · "
                       f"summary computed in {stats['seconds']:.2f} s"))
for message in data.warnings:
    st.warning(page_words(message), icon=":material/cleaning_services:")
if data.soft_labels is None and data.alike_label_groups():
    # the file's fix in one press (the warning alone left a careless file's 9 classes of 3, DEEM 45% where one
    # spelling gave 89%; walkthrough 115)
    if st.button("Merge the labels spelled alike", key="merge_spellings",
                 help="each group of labels that differ only in upper and lower case, spaces or characters that look "
                      "alike becomes one class, written as its most given spelling; gold labels are written the same "
                      "way. The file is not changed: load it again to undo."):
        merged = data.with_spellings_merged()
        if merged is not data:
            try:
                common.set_dataset(f"{ds['name']} (spellings merged)", merged, merged.spelled_as_merged(ds.get("gold")),
                                   files=ds["files"], origin=ds["origin"],
                                   read_gold=len(ds["own_gold"]) if ds.get("own_gold") is not None else 0)
            except capacity.CapacityError as exc:
                common.show_error(exc, "merging the spellings")
                st.stop()
            for key in ("file_ids", "read_with", "reading_note"):  # (read from the same files as before)
                if ds.get(key) is not None:
                    common.dataset()[key] = ds[key]
            common.dataset()["spellings_merged"] = True
            kept = st.session_state.get("_label_studio")
            if kept and kept[0] == data.fingerprint():  # (the export's tasks go with the merged set)
                st.session_state["_label_studio"] = (merged.fingerprint(), kept[1])
            if st.session_state.get("_gold_file_data") == data.fingerprint():  # (the gold file read goes with it too:
                # "read for another data set" stood under the labels in use; walkthrough 116)
                st.session_state["_gold_file_data"] = merged.fingerprint()
            respelled = "; the gold labels written the same way" if ds.get("gold") is not None else ""
            # (the notice writes its first letter large: the file's name went "Careless.csv"; walkthrough 116)
            # (the merge's own note stands first among the data's notes below: said twice, once in each, before;
            # walkthrough 118)
            st.session_state["_notice"] = f"merged the labels spelled alike{respelled} (the first note below says how)"
            st.rerun()
if data.n_classes < 2:
    st.warning("Only one class was given: there is nothing to aggregate. DEEM needs at least two classes.")
for sentence in common.alike_workers(data):
    st.warning(common.safe(sentence), icon=":material/content_copy:")
shared = common.most_shared_tasks(stats["pairwise"])
if shared is not None and shared < MIN_COMMON:
    # (a copying group of 5 of 50 workers, 4 answers a task, went unsaid here and "none found" after training;
    # walkthrough 76)
    among = len(stats["pairwise"][1])
    who = "workers" if among >= data.n_workers else f"of the {among:,} workers with the most answers"
    st.info(f"No two {who} share {MIN_COMMON} tasks (the most two share: {shared:,}): whether some copy one another "
            f"cannot be checked on these data, neither on this page nor by DEEM's automatic start nor on Diagnostics, "
            f"and copiers, if any, count as independent votes in every method. To check for copying, give pairs of "
            f"workers {MIN_COMMON} or more tasks in common.",
            icon=":material/visibility_off:")
constant = common.constant_warning(data, stats["constant"])
if constant:  # (caught on Diagnostics only, after training; walkthrough 37)
    st.warning(common.safe(constant), icon=":material/block:")

contrary = stats.get("contrary") or []
if contrary:  # (two workers answering wrong on purpose went unsaid; walkthrough 64)
    # (as "'w03' 9% of the time" it read as how often it answered against them; walkthrough 65)
    named = "; ".join(f"{shortened(str(worker), 40)!r}: the other answers on its tasks give its label {share:.0%} of the time (on "
                      f"{n:,} of its answers), where a worker answering at random with its label shares would see {chance:.0%}"
                      for worker, n, share, chance in contrary[:5])
    more = f"; and {counted(len(contrary) - 5, 'more such worker')}" if len(contrary) > 5 else ""
    st.warning(common.safe(f"Answering against the others: {named}{more}. Adversarial, or with the classes swapped "
                           f"(a random worker is not named here: Diagnostics flags it as a likely spammer after "
                           f"training). DEEM, Dawid-Skene and the "
                           f"other methods that learn each worker's confusions read such answers as evidence (a "
                           f"reliably wrong answer still tells the class apart); majority vote counts them as votes "
                           f"for the wrong class."), icon=":material/swap_horiz:")

# tabs that do not track their state (on_change="rerun" lost a file uploaded while the tab's click reran the page)
# open on their first tab again whenever they are drawn at another place: the key did not keep them (walkthrough 24,
# the CI run of stop 49). Nothing above them may come or go on what is done inside them (a gold upload, its removal)
# or in the upload box above: the notice and the read-as line have places of their own, drawn on every run (app.py,
# ``read_slot``).
# the Gold labels tab second: last, it was behind the tab row's scroll arrow at 900 px, and it is the only place to
# add gold labels (walkthrough 34)
DATA_TABS = ["Labels per task", "Gold labels", "Class balance", "Workers", "Pairwise agreement", "Answers"]
tab = dict(zip(DATA_TABS, st.tabs(DATA_TABS, key="data_tabs")))
with tab["Labels per task"]:
    counts = stats["per_task"]
    fig = px.bar(x=counts.index.astype(int), y=counts.to_numpy(), labels={"x": "answers per task", "y": "tasks"})
    if len(counts) <= 40:  # whole numbers only: one bar per count, no 9.8 / 10.2 ticks
        fig.update_xaxes(type="category")
    fig.update_layout(height=320, margin={"t": 20, "b": 20})
    common.plotly_chart(fig, key="per_task_hist")
with tab["Class balance"]:
    balance = stats["balance"].rename(columns=BALANCE_COLUMNS)
    if len(balance) > common.MAX_DRAWN_CLASSES:  # (300,000 bars froze the browser)
        st.caption(f"the {common.MAX_DRAWN_CLASSES} classes with the most answers (of {len(balance):,}); the table "
                   f"lists up to {MAX_COVERAGE_ROWS:,}")
        balance = balance.nlargest(MAX_COVERAGE_ROWS, BALANCE_COLUMNS["answers"], keep="first")
    fig = px.bar(balance.head(common.MAX_DRAWN_CLASSES), x="class", y=[BALANCE_COLUMNS["answer_share"], BALANCE_COLUMNS["majority_vote_share"]],
                 barmode="group", labels={"value": "share", "variable": ""})
    # (plotly's own hover read "=share of the answers / class=A / share=0.6446281"; walkthrough 96)
    fig.update_traces(hovertemplate="%{fullData.name}<br>class %{x}: %{y:.3f}<extra></extra>")
    category_axes(fig, y=False)
    # (cut: classes named with 4,015 characters left the bars 60 px high; walkthrough 113)
    cut_ticks(fig, [str(c) for c in balance.head(common.MAX_DRAWN_CLASSES)["class"]])
    common.plotly_chart(fig, key="class_balance")
    common.dataframe(balance, hide_index=True, column_config={
        **common.count_config(balance),
        # a tie's share of a task makes fractions: one decimal, not "306.6667" (walkthrough 37)
        BALANCE_COLUMNS["majority_vote_tasks"]: st.column_config.NumberColumn(BALANCE_COLUMNS["majority_vote_tasks"],
                                                                              format="%.1f")})
with tab["Workers"]:
    coverage = stats["coverage"]
    if len(coverage) > MAX_COVERAGE_ROWS:
        st.caption(f"the {MAX_COVERAGE_ROWS:,} workers with the most answers (of {len(coverage):,})")
        coverage = coverage.nlargest(MAX_COVERAGE_ROWS, "answers", keep="first")
    # in percent with one decimal everywhere ("percent" read "29%", "29.5%", "28.13%" in one column; walkthrough 62)
    coverage = coverage.assign(coverage=100.0 * coverage["coverage"])
    common.dataframe(coverage, hide_index=True, column_config={**common.count_config(coverage),
        # (emails read "ann1@example" in the default width; walkthrough 80)
        "worker": st.column_config.TextColumn("worker", width="large"),
        "coverage": st.column_config.ProgressColumn("coverage", format="%.1f%%", min_value=0.0, max_value=100.0),
        "agreement_with_majority": st.column_config.NumberColumn(
            "agreement with majority", format="%.3f", help="share of its answers equal to the task's majority vote, "
            "its own answer one of the votes; on a tie an answer naming a tied class counts its share (a half of "
            "two, a third of three)"),
        "agreement_with_others": st.column_config.NumberColumn(
            "agreement with the others", format="%.3f", help="per answer, the share of the task's other answers that "
            "give its label, averaged over its answers on tasks others answered too (blank: none)")})
    st.caption("Agreement with majority counts the worker's own answer among the votes (with few answers a task, "
               "its own vote can make the majority), and on a tie an answer naming a tied class counts its share "
               "(a half of two, a third of three); agreement with the others leaves the worker's own answer out. "
               "Workers who copy one another agree with the majority they make, and can read as the best of their "
               "crowd: “Test for groups that answer alike” on the Pairwise agreement "
               "tab looks for such groups.")
with tab["Pairwise agreement"]:
    pairwise, overlap = stats["pairwise"]
    # in natural order, as Diagnostics draws its heatmaps: w2 before w10 (text order here beside natural order there;
    # walkthrough 103)
    order = natural_positions(pairwise.index)
    pairwise = pairwise.iloc[order, order]
    if data.n_workers > MAX_HEATMAP:
        st.caption(f"the {MAX_HEATMAP} workers with the most answers (of {data.n_workers:,})")
    fig = px.imshow(pairwise, zmin=0, zmax=1, color_continuous_scale="Viridis", aspect="auto",
                    labels={"color": "agreement"})
    category_axes(fig)  # one cell per worker: ids 200 ... 1766 were a number line (walkthrough 67)
    # every worker named on both axes, 18 px a row: at plotly's height the ticks of 30 workers named every other one
    # (walkthrough 72)
    fig.update_xaxes(dtick=1)
    fig.update_yaxes(dtick=1)
    fig.update_layout(height=max(420, 18 * len(pairwise) + 160))
    # the common tasks of each cell on hover: a pair of 3 common tasks read 1.0, as bright as a copying group of
    # hundreds, and nothing said how many (walkthrough 84)
    shared = overlap.reindex(index=pairwise.index, columns=pairwise.columns).to_numpy()
    # each cell's words ("on 1 common tasks"; read 46), none of agreement where no task is shared ("agreement NaN on
    # no common task"; walkthrough 95)
    fig.update_traces(customdata=np.vectorize(
                          lambda z, n: "no common task" if not np.isfinite(n) or n == 0 or not np.isfinite(z) else
                          f"agreement {z:.3f} on {counted(n, 'common task')}",
                          otypes=[object])(pairwise.to_numpy(dtype=float), shared.astype(float)),
                      hovertemplate="%{y} / %{x}<br>%{customdata}<extra></extra>")
    common.plotly_chart(fig, key="pairwise")
    st.caption("Share of common tasks on which two workers gave the same label (blank: no common task); hover a cell "
               "for how many tasks the two share: on a few, a pair reads 0 or 1 by chance.")
    dependence_test(data)
with tab["Answers"]:
    common.dataframe(data.to_long(limit=1000), hide_index=True, height=300)
    st.caption("first 1,000 answers as read")
with tab["Gold labels"]:
    gold = ds.get("gold")
    if gold is not None:
        known = gold.index.isin(data.tasks)
        unknown = int((~known).sum()) + int(gold.attrs.get("unknown_tasks") or 0)  # (dropped when read)
        replaced = gold.attrs.get("replaced")  # (an export's own gold labels set aside without a word; walkthrough 22)
        # which file they came from (tried several, a user could not tell which was used; walkthrough 36)
        named = (f" (from {gold.attrs['file']})" if gold.attrs.get("file")
                 else " (read with the data)" if ds.get("gold_with_data") and not gold.attrs.get("brought_back")
                 else "")
        read_as = gold_columns_text(gold.attrs.get("columns"))  # (said in the notice at the top only, off screen;
        if gold.attrs.get("file") and read_as:  # walkthrough 85)
            named = f" (from {gold.attrs['file']}: {read_as})"
        matched = int(known.sum())  # (counts of one in the singular: "1 gold labels match"; read 43)
        said = (f"{wording.counted(matched, 'gold label')} {'matches a task' if matched == 1 else 'match tasks'} of "
                f"this data set{named}"
                + (f"; {unknown:,} {'names an unknown task and is' if unknown == 1 else 'name unknown tasks and are'} "
                   f"ignored" if unknown else "")
                + (f"; {'it is' if matched == 1 else 'they are'} used in place of the "
                   f"{wording.counted(replaced, 'gold label')} read with the data" if replaced else ""))
        if gold.attrs.get("brought_back"):  # (loaded again with the data; walkthrough 35)
            said += f"; brought back with the data ({gold.attrs['brought_back']})"
        usable = common.usable_gold(ds)
        if gold.attrs.get("not_classes"):  # (a green "300 match" above the warning that none is a class; walk 35)
            extra = int(gold.attrs["not_classes"])  # ("1 more name no class ... and are left out"; walkthrough 91)
            said += (f"; {extra:,} more {'names' if extra == 1 else 'name'} no class of these data "
                     f"({left_out_text(gold.attrs)}) and {'is' if extra == 1 else 'are'} left out")
        if known.any() and usable:
            st.success(common.safe(said))  # (it quotes a label from the file)
        else:  # not a success: the file is for other tasks (or another data set), or of other classes
            st.warning(common.safe(said + ": is this the gold file of these data?"))
        for warning in st.session_state.pop("_gold_warnings", []):  # set while reading the file, before the rerun
            st.warning(page_words(warning))
        own = ds.get("own_gold")  # (the data's own, set aside by an uploaded file's: they come back)
        if st.button("Remove the gold labels", key="drop_gold"):
            if own is not None and gold.attrs.get("file"):
                common.set_gold(own)
                st.session_state["_notice"] = (f"the gold labels of {gold.attrs['file']} were removed; the "
                                               f"{wording.counted(len(own), 'gold label')} read with the data "
                                               f"{is_are(len(own))} used again")
            else:
                common.set_gold(None)
                ds.pop("own_gold", None)  # (removed: a later file is not said to replace them; read 46)
            # the file read stays in the box below, with nothing saying it is unused (walkthrough 91)
            # (per data set: the removal on another data set made this one's file unsaid again; walkthrough 92)
            st.session_state.setdefault("_gold_removed", {})[common.data_key()] = st.session_state.get("_gold_file")
            st.rerun()
    gold_file = st.file_uploader("Gold labels (optional): task, truth", type=["csv", "gz", "tsv", "txt"],
                                 key="upload_gold")
    if (gold_file is not None and ds.get("gold") is None and ds.get("file_ids")
            and st.session_state.get("_gold_file") == gold_file.file_id
            and st.session_state.get("_gold_file_data") != common.data_key()
            and st.session_state.get("_gold_file_sources") == ds["file_ids"]):
        # the same answer files read again with another mapping: the gold file is matched again (walkthrough 41: an
        # MTurk batch read with the HITs as tasks kept the refusal of its first reading, by item ids)
        st.session_state.pop("_gold_file", None)
        st.session_state.pop("_gold_refused", None)
    refused = st.session_state.get("_gold_refused")
    if gold_file is not None and refused and refused[0] == gold_file.file_id:
        st.warning(common.safe(refused[1]), icon=":material/warning:")
    elif (gold_file is not None and st.session_state.get("_gold_file") == gold_file.file_id
          and st.session_state.get("_gold_file_data") != common.data_key()):
        # the box keeps the file read for another data set: said, since its labels are not these data's
        # (walkthrough 37: B's tab showed A's gold file with no word; walkthrough 92: nor where B brought its own)
        # ("the data set loaded before" named the one before the last when two had been loaded since; walkthrough 93)
        st.caption(common.safe(f"{gold_file.name} was read for another data set: its labels are not used "
                               + ("here. Remove it (×) and upload the gold file of these data." if ds.get("gold") is None
                                  else "here (those above are these data's own). Remove it (×) to upload another.")))
    elif (gold_file is not None and (ds.get("gold") is None or not ds["gold"].attrs.get("file"))
          and (st.session_state.get("_gold_removed") or {}).get(common.data_key()) == gold_file.file_id):
        st.caption(common.safe(f"The gold labels of {gold_file.name} were removed and are not used"
                               + (" (those above were read with the data)" if ds.get("gold") is not None else "")
                               + ". To use them again, remove the file (×) and upload it again."))
    if gold_file is not None and st.session_state.get("_gold_file") != gold_file.file_id:
        from deem_core.data.readers import read_truth  # noqa: PLC0415

        try:
            # the switch above applies to the gold labels too (the reader's warning names it)
            # (a read slot, as the answers)
            with st.spinner("reading the gold labels"):
                truth = common.read_uploads(gold_file, lambda limits: read_truth(
                    gold_file, like=data, keep_missing=bool(st.session_state.get("upload_keep_missing")),
                    limits=limits))
            # only the labels of this set's tasks are kept: 3 M rows naming other tasks held 2.3 GB in the session
            # (attack round of the seventh session); how many were dropped is said below
            known = truth.index.isin(data.tasks)
            read_n, first = len(truth), (str(truth.index[0]) if len(truth) else "")
            if not known.all():
                attrs = dict(truth.attrs)
                truth = truth[known].copy()
                truth.attrs.update(attrs, unknown_tasks=int((~known).sum()))
            st.session_state["_gold_file"] = gold_file.file_id
            st.session_state["_gold_file_data"] = common.data_key()  # (the data set it was read for)
            st.session_state["_gold_file_sources"] = ds.get("file_ids")  # (and the uploads that data set came from)
            if read_n and not len(truth):
                # none names a task: not kept (the page said "Read 300 gold labels" and the sidebar "gold labels";
                # only the Gold labels tab said that none matched; walkthrough 31)
                one = read_n == 1  # ("read 1 gold label ..., but none names a task"; walkthrough 92)
                refused = (f"read {wording.counted(read_n, 'gold label')} from {gold_file.name}, but "
                           f"{'it names no task' if one else 'none names a task'} of these data "
                           f"({'its task' if one else 'its first'}: “{shortened(first, 40)}”; these data's first task: "
                           f"“{shortened(data.tasks[0], 40)}”); {'it is' if one else 'they are'} not kept: is it the "
                           f"gold file of these data, or does another column name the tasks (Mapping, above)?")
                st.session_state["_notice"] = common.Refusal(refused)
                # said beside the file too (the notice alone stood at the top, out of sight; walkthrough 32)
                st.session_state["_gold_refused"] = (gold_file.file_id, wording.sentence(refused))
                st.rerun()
            # written as the data's merged spellings (a gold file uploaded after "Merge the labels spelled alike" was
            # refused as of no class, where the same file uploaded before it was kept; walkthrough 116)
            truth = data.spelled_as_merged(truth)
            usable = common.class_gold(truth, data)  # (the labels that are no class, counted in its attrs)
            left_out = int(usable.attrs.get("not_classes") or 0)
            which = left_out_text(usable.attrs)  # (an example, and those that differ in letter case only)
            if not len(usable):  # none is a class: not kept, as a file naming no task (walkthrough 36)
                one = read_n == 1
                refused = (f"read {wording.counted(read_n, 'gold label')} from {gold_file.name}, but "
                           f"{'it is no class' if one else 'none is a class'} of these data ({which}); "
                           f"{'it is' if one else 'they are'} not kept: is it the gold file of these data?")
                st.session_state["_notice"] = common.Refusal(refused)
                st.session_state["_gold_refused"] = (gold_file.file_id, wording.sentence(refused))
                st.rerun()
            if ds.get("own_gold") is not None:  # the data's own file's (a Toloka GOLDEN column, ...) of a class
                usable.attrs["replaced"] = len(ds["own_gold"])
            usable.attrs["file"] = gold_file.name
            common.set_gold(usable)
            warnings = list(truth.attrs.get("warnings") or [])  # skipped missing truths, cleaned lines
            if left_out:
                warnings.append(f"{gold_file.name}: {wording.counted(left_out, 'gold label')} "
                                f"{'is' if left_out == 1 else 'are'} not among the classes ({which}): "
                                f"{'it is' if left_out == 1 else 'they are'} left out of every accuracy")
            st.session_state["_gold_warnings"] = warnings
            unknown_n = int(truth.attrs.get("unknown_tasks") or 0)
            # which columns were read: a file of "id,gold" was read without a word (the CLI said it; walkthrough 84)
            read_as = gold_columns_text(truth.attrs.get("columns"))
            # how many are used, where some are not (the notice said "Read 120 gold labels" of a file whose 42
            # labels of no class were said only in a warning gone at the next click; walkthrough 90)
            parts = ([f"{len(truth):,} {'names a task' if len(truth) == 1 else 'name tasks'} of these data, {unknown_n:,} "
                      f"{'names an unknown task and is' if unknown_n == 1 else 'name unknown tasks and are'} ignored"]
                     if unknown_n else [])
            if left_out:
                used, be = len(usable), "is" if left_out == 1 else "are"
                parts.append(f"{used:,} {'is' if used == 1 else 'are'} used, {left_out:,} {be} not among the classes "
                             f"and {be} left out")
            st.session_state["_notice"] = (f"read {wording.counted(read_n, 'gold label')} from {gold_file.name}"
                                           + (f" ({read_as})" if read_as else "")
                                           + (": " + "; ".join(parts) if parts else ""))
            st.rerun()
        except DataError as exc:
            st.error(page_words(exc), icon=":material/warning:")
        except Exception as exc:  # noqa: BLE001
            st.error(common.safe(f"{gold_file.name}: {readable_error(exc)}"), icon=":material/warning:")
