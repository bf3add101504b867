"""No injection (issue 14, case 4): user-derived strings are shown as text on every page, in report.html, in
charts and on the terminal.

The dashboard half walks every page in ``AppTest`` with a data set whose file, worker, class and task names
carry Markdown links and images, HTML, Streamlit directives, LaTeX, an autolink and control characters. Every
string a page hands to a Markdown-rendering element (bodies, labels, help texts, tab and expander labels,
radio options) is rendered with markdown-it (CommonMark, HTML allowed: stricter than Streamlit) and must give
no link, no image and no HTML tag of the payload; every plotly spec must carry the payload's ``<`` only as
``&lt;``. The real-browser half (``tests/test_browser.py``) checks the rendered page itself.
"""

from __future__ import annotations

import html
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import pytest
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from deem_studio.jobs import get_manager

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 90

LINK = "[Session expired - log in](http://127.0.0.1:9/login)"
IMAGE = "![x](http://127.0.0.1:9/t.png)"
HTML = "<b>bold</b><img src=x onerror=alert(1)><a href=\"http://127.0.0.1:9/a\">a</a>"
DIRECTIVES = ":red[red] :material/warning: $x^2$ www.evil.test me@evil.test"
CONTROL = "\x1b]0;pwned\x07\x1b[31m\u202e"
PAYLOAD = f"{IMAGE}{LINK} {HTML} {DIRECTIVES}"
#: raw substrings that must never reach a Markdown source unescaped
MARKERS = ["](http", "<b>", "<img", "<a ", ":red[", ":material/warning", "$x^2$", "www.evil", "@evil", "\x1b", "\u202e"]

MD = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
#: the literal-autolink patterns of mdast-util-gfm-autolink-literal (what Streamlit's Markdown links in text)
AUTOLINKS = [re.compile(r"(https?://|www(?=\.))([-.\w]+)", re.IGNORECASE),
             re.compile(r"([-.\w+]+)@([-\w]+(?:\.[-\w]+)+)")]
PLAIN_TYPES = {"text", "code", "json", "arrow_data_frame", "dataframe", "plotly_chart", "bidi_component",
               "selectbox", "multiselect", "file_uploader", "text_input", "number_input", "download_button_data"}
MARKDOWN_FIELDS = ("body", "label", "help", "text", "caption", "placeholder")


def injected_csv(n_tasks: int = 120) -> bytes:
    """condind's first tasks with every name injected: workers, classes and task ids."""
    df = pd.read_csv(ROOT / "sample_data" / "condind.csv")
    df = df[df["task"] < n_tasks].copy()
    df["worker"] = [f"{PAYLOAD} {CONTROL}{w}" for w in df["worker"]]
    df["label"] = [f"{LINK}<b>c{y}</b>\u202e" for y in df["label"]]  # (a class name heads a column of Results)
    df["task"] = [f"t{t}<img src=x>{IMAGE}" for t in df["task"]]
    return df.to_csv(index=False).encode()


def injected_truth(n_tasks: int = 120) -> bytes:
    truth = pd.read_csv(ROOT / "sample_data" / "condind.truth.csv")
    truth = truth[truth["task"] < n_tasks].copy()
    truth["task"] = [f"t{t}<img src=x>{IMAGE}" for t in truth["task"]]
    truth["truth"] = [f"{LINK}<b>c{y}</b>\u202e" for y in truth["truth"]]
    return truth.to_csv(index=False).encode()


# no "/" in a file name (a browser sends the base name only)
FILE_NAME = f"![x](http:evil.test)[Session expired - log in](https:evil.test) <img src=x onerror=alert(1)><b>b :red[x] {CONTROL}.csv"


# --------------------------------------------------------------------------- walking an AppTest page
def nodes(node: Any) -> Iterator[Any]:
    yield node
    for child in getattr(node, "children", {}).values():
        yield from nodes(child)


def markdown_sources(at: AppTest) -> list[tuple[str, str]]:
    """(element type, text) of every string the page hands to a Markdown-rendering element."""
    out = []
    for root in (at.main, at.sidebar):
        for node in nodes(root):
            kind = getattr(node, "type", "")
            proto = getattr(node, "proto", None)
            if proto is None or kind in PLAIN_TYPES or not hasattr(proto, "DESCRIPTOR"):
                continue
            for name in MARKDOWN_FIELDS:
                field = proto.DESCRIPTOR.fields_by_name.get(name)
                if field is not None and field.type == field.TYPE_STRING and not getattr(field, "is_repeated", False):
                    value = getattr(proto, name)
                    if value:
                        out.append((f"{kind}.{name}", value))
            if kind == "radio":  # radio options are Markdown too
                out += [("radio.option", option) for option in proto.options]
    for toast in at.toast:
        out.append(("toast", toast.proto.body))
    return out


def check_page(at: AppTest, where: str) -> int:
    """No payload link, image, tag or directive in any Markdown source or chart of the page; returns how many
    strings were checked."""
    assert not at.exception, [e.value for e in at.exception]
    sources = markdown_sources(at)
    for kind, text in sources:
        for marker in MARKERS:
            assert not unescaped(marker, text), f"{where}: {kind} shows {marker!r} unescaped: {text!r}"
        rendered = MD.render(text)
        assert not re.search(r"<(a|img)\b", rendered), f"{where}: {kind} renders a link or image: {rendered!r}"
        # remark-gfm (Streamlit) links bare URLs and e-mail addresses in the parsed text, after escapes are gone
        shown = html.unescape(re.sub(r"<[^>]+>", "", rendered))
        for pattern in AUTOLINKS:
            found = pattern.search(shown)
            assert not found, f"{where}: {kind} would autolink {found.group(0)!r}: {text!r}"
        assert "<b>bold" not in rendered and "<b>c" not in rendered, f"{where}: {kind} renders HTML: {rendered!r}"
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        for text in _strings(spec):
            for tag in ("<b>", "<img", "<a ", "\x1b", "\u202e"):
                assert tag not in text, f"{where}: a chart shows {tag!r} raw: {text[:200]!r}"
    for element in [*at.text, *at.code]:  # plain text, but a browser still obeys a bidi override in it
        for tag in ("\x1b", "\u202e"):
            assert tag not in str(element.value), f"{where}: a text line holds {tag!r} raw: {element.value[:200]!r}"
    for grid in at.dataframe:  # the grid shows text as text, but a browser still obeys a bidi override in it
        frame = grid.value
        cells = [*map(str, frame.columns), *map(str, frame.index)]
        cells += list(_strings(json.loads(grid.proto.columns or "{}")))  # the column labels of its column_config
        for column in frame.columns:
            if not pd.api.types.is_numeric_dtype(frame[column].dtype):
                cells += [v for v in frame[column].astype(object) if isinstance(v, str)]
        for tag in ("\x1b", "\u202e"):
            raw = next((c for c in cells if tag in c), None)
            assert raw is None, f"{where}: a table cell holds {tag!r} raw: {raw[:200]!r}"
    return len(sources)


def unescaped_text(markdown: str) -> str:
    """Markdown source as it reads (``common.safe`` escapes every punctuation character and joins autolinks)."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown).replace("\u2060", "")


def unescaped(marker: str, text: str) -> bool:
    """Whether ``marker`` occurs in ``text`` without a backslash escaping its first character (an even number
    of backslashes before it escape each other, not the marker)."""
    start = text.find(marker)
    while start >= 0:
        slashes = len(text[:start]) - len(text[:start].rstrip("\\"))
        if slashes % 2 == 0:
            return True
        start = text.find(marker, start + 1)
    return False


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def payload_shown(at: AppTest) -> bool:
    """The injected names do reach the page (as escaped Markdown, or in a plain-text element such as the Data
    page's "read as" line): the walk is not vacuous."""
    return any("Session expired" in text for _, text in markdown_sources(at)) or any(
        "Session expired" in str(t.value) for t in at.text)


def wait(run_id: str, timeout: float = 180.0):
    snap = get_manager().wait(run_id, timeout=timeout)
    assert snap is not None and snap.done, snap
    return snap


def test_every_page_shows_injected_names_as_text(runs_dir):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.file_uploader(key="upload_annotations").set_value((FILE_NAME, injected_csv(), "text/csv")).run()
    check_page(at, "data preview")
    assert payload_shown(at)
    at.button(key="load_files").click().run()
    assert at.session_state["dataset"]["data"].n_tasks == 120
    at.file_uploader(key="upload_gold").set_value((FILE_NAME, injected_truth(), "text/csv")).run()
    checked = check_page(at, "data summary")
    assert payload_shown(at) and len(at.get("plotly_chart")) >= 3

    at.switch_page("pages/sweep.py").run()
    at.text_input(key="sweep_lrs").set_value("0.01, 0.1")
    at.number_input(key="sweep_epochs").set_value(2)
    at.button(key="sweep_launch").click().run()
    wait(at.session_state["sweep_run"])
    at.run()
    checked += check_page(at, "sweep")

    at.switch_page("pages/train.py").run()
    at.multiselect(key="train_methods").set_value(["deem", "mv", "ds"])
    at.number_input(key="train_epochs").set_value(2)
    at.button(key="train_launch").click().run()
    run_id = at.session_state["train_run"]
    assert wait(run_id).status == "finished", get_manager().snapshot(run_id).message
    at.run()
    checked += check_page(at, "train")
    assert len(at.get("plotly_chart")) >= 3

    at.switch_page("pages/results.py").run()
    checked += check_page(at, "results")
    assert payload_shown(at)  # the data set's name in the caption

    at.switch_page("pages/diagnostics.py").run()
    at.button(key="diag_launch").click().run()
    assert wait(at.session_state["diag_run"]).status == "finished"
    at.run()
    checked += check_page(at, "diagnostics")
    assert len(at.get("plotly_chart")) >= 3

    at.switch_page("pages/runs.py").run()
    checked += check_page(at, "runs")
    assert checked > 50

    # another session opening the run by its link: the run's data-set name in its sidebar and pages
    other = AppTest.from_file(APP, default_timeout=TIMEOUT)
    other.query_params["run"] = run_id
    other.run()
    check_page(other, "a colleague's first page")
    assert payload_shown(other)
    for page in ("pages/train.py", "pages/results.py", "pages/diagnostics.py", "pages/runs.py", "pages/data.py"):
        other.switch_page(page).run()
        check_page(other, f"a colleague's {page}")


@pytest.mark.parametrize("value", [
    f"{IMAGE}{LINK}",
    "0123456789abcdef\n",  # case 7: a trailing newline passed the id check
    "<img src=x onerror=alert(1)>" + "x" * 500,
])
def test_a_bogus_run_id_in_the_address_is_shown_as_text(runs_dir, value):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["run"] = value
    at.run()
    check_page(at, "first page")
    notice = "\n".join(str(i.value) for i in at.info)
    assert "which is not a run id; it was ignored" in re.sub(r"\\(.)", r"\1", notice)
    assert len(notice) < 400 and "img" not in notice and "onerror" not in notice  # the value is not quoted


def test_a_failed_time_probe_shows_the_names_its_message_quotes_as_text(runs_dir, monkeypatch):
    """Attack round 21: a file of one class made the Train page's time probe fail with a message quoting the class,
    and the page showed that message as Markdown: the class's link and image were drawn. (One class is now refused
    before any probe; any probe failure quoting the data's names is shown as text.)"""
    from deem_studio import estimate  # noqa: PLC0415

    def failing(data, *args, **kwargs):
        raise ValueError(f"{data.source}: class {data.classes[0]} could not be timed")

    monkeypatch.setattr(estimate, "estimate_train", failing)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.file_uploader(key="upload_annotations").set_value(("named.csv", injected_csv(), "text/csv")).run()
    at.button(key="load_files").click().run()
    at.switch_page("pages/train.py").run()
    check_page(at, "train, probe failed")
    failed = [c for _, c in markdown_sources(at) if "no time estimate" in c]
    assert failed and "Session expired" in failed[0], markdown_sources(at)  # (the message does quote the class)
    # kept for every session of these data: not with the file name of the one who timed them first (attack 21)
    assert "named.csv" not in failed[0] and "these data: class" in unescaped_text(failed[0]), failed[0]
    at.run()  # a later run of the page shows the kept message
    check_page(at, "train, probe failed, again")


def test_messages_do_not_show_the_servers_runs_folder(runs_dir):
    """Case 7: notices and the Runs page showed the runs folder's path to web users."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["run"] = "0123456789abcdef"
    at.run()
    assert "No run with id 0123456789abcdef" in "\n".join(str(i.value) for i in at.info)
    at.switch_page("pages/runs.py").run()
    for _, text in markdown_sources(at):
        assert str(runs_dir) not in text and str(runs_dir.resolve()) not in text


def test_the_dataframe_toolbar_cannot_export():
    """Case 2: Streamlit's dataframe toolbar wrote cells raw (=1+1); it is switched off for every table, the
    pages' own downloads are formula-safe."""
    import tomllib  # noqa: PLC0415

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["client"]["disableDataExport"] is True
    from deem_core.data.export import to_safe_csv  # noqa: PLC0415

    text = to_safe_csv(pd.DataFrame({"label": ["=1+1", "=cmd|' /C calc'!A0", "+1", "@x", "-2", "ok"]},
                                    index=pd.Index(["=HYPERLINK(\"x\")", "t", "t2", "t3", "t4", "t5"], name="task")))
    cells = pd.read_csv(io.StringIO(text), dtype=str)
    assert not any(str(v)[:1] in "=+-@" for v in cells.to_numpy().ravel())


def condind_run() -> tuple[AppTest, str]:
    """A session that trained majority vote and Dawid-Skene on the bundled CondInd sample: (session, run id)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.button(key="sample_condind").click().run()
    at.switch_page("pages/train.py").run()
    at.multiselect(key="train_methods").set_value(["mv", "ds"])
    at.button(key="train_launch").click().run()
    run_id = at.session_state["train_run"]
    assert wait(run_id).status == "finished"
    return at, run_id


def test_one_damaged_method_file_does_not_break_the_results_page(runs_dir):
    """Case 7: one unreadable results/<method>.parquet made the whole Results page fail."""
    at, run_id = condind_run()
    (runs_dir / run_id / "results" / "ds.parquet").write_bytes(b"PAR1 not really parquet")
    at.switch_page("pages/results.py").run()
    assert not at.exception
    warnings = "\n".join(str(w.value) for w in at.warning).replace("\\", "")
    assert "ds: its stored file could not be read" in warnings and str(runs_dir) not in warnings
    assert at.selectbox(key=f"results_method_{run_id}").options == ["Majority vote"]  # only mv: ds is the damaged one
    assert len(at.dataframe[0].value) == 3000


def test_reasons_read_from_a_run_folder_are_shown_as_text(runs_dir):
    """The Train page showed a method's stored start reason as Markdown (attack round 46: a hand-edited metrics.json
    rendered bold text and a live link). (The stored sweep reason and the safety rule's reference were given
    ``common.safe`` with it; this test plants the start reason only.)"""
    at, run_id = condind_run()
    path = runs_dir / run_id / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics["ds"]["start_reason"] = f"**BOLD** {LINK} <img src=x onerror=alert(1)>"
    path.write_text(json.dumps(metrics))
    at.switch_page("pages/results.py").run()
    at.switch_page("pages/train.py").run()
    check_page(at, "train with a planted start reason")
    shown = [text for _, text in markdown_sources(at) if "BOLD" in text]
    assert shown and all("\\*\\*BOLD" in text for text in shown), shown


# --------------------------------------------------------------------------- report.html and plotly
def test_report_html_shows_worker_names_as_text(tmp_path):
    from deem_core import DEEM  # noqa: PLC0415
    from deem_core.analysis.diagnostics import run_diagnostics  # noqa: PLC0415
    from deem_core.plots.report import write_diagnostics  # noqa: PLC0415
    from deem_core.data.readers import read_annotations  # noqa: PLC0415

    path = tmp_path / "inject.csv"
    path.write_bytes(injected_csv(80))
    data = read_annotations(path)
    model = DEEM(epochs=1, device="cpu").fit(data)
    diagnostics = run_diagnostics(model, data)
    paths = write_diagnostics(diagnostics, tmp_path / "out", experts=[data.workers[0]])
    report = paths["report"].read_text(encoding="utf-8")
    # plotly.js itself holds "<a" in its source: look for the payload's link as markup, raw or JSON-escaped
    assert not re.search(r"(<|\\u003c)a href=\\?\"http://127\.0\.0\.1:9", report), "a live link in report.html"
    assert not re.search(r"(<|\\u003c)img src=x", report), "an image tag in report.html"
    assert "&lt;a href=" in report or "\\u0026lt;a href=" in report  # the name is there, as text
    assert "\x1b" not in report


def test_escape_figure_keeps_numbers_and_templates():
    import plotly.graph_objects as go  # noqa: PLC0415

    from deem_core.plots.safety import escape_figure  # noqa: PLC0415

    figure = go.Figure(go.Bar(x=["<b>w</b>", "a&b", 3], y=[1, 2, 3], name="<a href='x'>n</a>",
                              hovertemplate="%{x}<br>%{y}<extra></extra>"))
    figure.update_layout(title={"text": "<img src=x>", "subtitle": {"text": "<a href='x'>s</a>"}})
    escape_figure(figure)
    assert list(figure.data[0].x) == ["&lt;b&gt;w&lt;/b&gt;", "a&amp;b", 3]
    assert figure.data[0].name == "&lt;a href='x'&gt;n&lt;/a&gt;" and list(figure.data[0].y) == [1, 2, 3]
    assert figure.data[0].hovertemplate == "%{x}<br>%{y}<extra></extra>"  # our template keeps its markup
    assert figure.layout.title.text == "&lt;img src=x&gt;"
    assert figure.layout.title.subtitle.text == "&lt;a href='x'&gt;s&lt;/a&gt;"  # (the diagnostics' details)


# --------------------------------------------------------------------------- the terminal
def test_deem_diagnose_escapes_control_characters(tmp_path):
    """``deem diagnose`` printed worker names raw: ANSI/OSC sequences reached the terminal."""
    names = ["\x1b]0;pwned\x07evil", "\x1b[31mred", "ok\u202eright", "calm"]
    rows = [[t, *[(t + (w == 0) * (t % 2)) % 2 for w in range(len(names))]] for t in range(60)]
    path = tmp_path / "ansi.csv"  # wide: each name once, in the header (a file full of escapes is refused)
    pd.DataFrame(rows, columns=["task", *names]).to_csv(path, index=False)
    result = subprocess.run([sys.executable, "-c", "import sys; from deem_core.cli import main; sys.exit(main())",
                             "diagnose", str(path), "-o", str(tmp_path / "d"), "--epochs", "2", "--no-progress",
                             "--device", "cpu"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    assert "\x1b]" not in output and "\x1b[31m" not in output and "\u202e" not in output
    assert "worker \\x1b]0;pwned\\x07evil" in output  # shown, escaped (it is the spammer here)


def test_names_that_escape_to_one_text_keep_their_grids(runs_dir):
    """ "a\\u202e" (the override character) and the typed text "a\\\\u202e" show as one escape: two equal column
    names made the grid fail, and with it the Data page (no Load button) and the Results page (attack round of the
    eighth session). The later one is shown as "... (2)"."""
    from pages.common import visible_names  # noqa: PLC0415

    assert visible_names(["a\u202e", "a\\u202e", "b", 3]) == ["a\\u202e", "a\\u202e (2)", "b", 3]
    # 2^15 names that all escape to one text: each numbered in one pass (counted up from 2 for every one, 30,000 took
    # 140 s of a Results page; attack round 48)
    import itertools  # noqa: PLC0415
    import time  # noqa: PLC0415

    many = ["".join(parts) for parts in itertools.product(("\u202e", "\\u202e"), repeat=15)]
    started = time.perf_counter()
    shown = visible_names(many)
    assert len(set(shown)) == len(many) and shown[-1] == shown[0] + f" ({len(many)})"
    assert time.perf_counter() - started < 2.0
    rows = [f"t{t},{'xy'[t % 2]},{'yx'[t % 2]},{'xy'[(t // 2) % 2]}" for t in range(40)]
    wide = ("task,a\u202e,a\\u202e,c\n" + "\n".join(rows) + "\n").encode()
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.file_uploader(key="upload_annotations").set_value(("wide.csv", wide, "text/csv")).run()
    check_page(at, "preview")
    assert not at.button(key="load_files").disabled
    at.button(key="load_files").click().run()
    assert at.session_state["dataset"]["data"].n_workers == 3
    check_page(at, "data summary")
    long = "task,worker,label\n" + "".join(f"t{t},w{w},{['a' + chr(0x202e), 'a' + chr(92) + 'u202e'][(t + w) % 2]}\n"
                                           for t in range(30) for w in range(4))
    at.file_uploader(key="upload_annotations").set_value(("long.csv", long.encode(), "text/csv")).run()
    at.button(key="load_files").click().run()
    assert at.session_state["dataset"]["data"].n_classes == 2
    at.switch_page("pages/train.py").run()
    at.multiselect(key="train_methods").set_value(["mv", "ds"])
    at.button(key="train_launch").click().run()
    assert wait(at.session_state["train_run"]).status == "finished"
    at.switch_page("pages/results.py").run()
    check_page(at, "results")
    assert len(at.dataframe) >= 1
    # each class's probability column headed apart (both were "p(a\u202e)": walkthrough 93)
    heads = [config.get("label") for grid in at.dataframe
             for config in json.loads(grid.proto.columns or "{}").values() if str(config.get("label")).startswith("p(")]
    assert heads == ["p(a\\u202e)", "p(a\\u202e (2))"], heads


def test_a_character_past_u_ffff_is_escaped_as_python_writes_it():
    """Attack round 51: U+E0041 (a tag character) was written "\\ue0041", which reads as U+E004 and a "1"."""
    from deem_core.data.text import escape_controls

    assert escape_controls("a\U000e0041b") == "a\\U000e0041b"
    assert escape_controls("a\u200eb") == "a\\u200eb" and escape_controls("a\x1bb") == "a\\x1bb"
    assert escape_controls("a\U000e0041b").encode().decode("unicode_escape") == "a\U000e0041b"  # (read back whole)
