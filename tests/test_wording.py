"""The one name for those who label is "worker": no string of the engine or the command line (help texts,
messages, table columns, docstrings) says "annotator", except where it names what is accepted as input."""

from __future__ import annotations

import ast
import re

from conftest import ROOT

#: "annotator" as input: a column alias or Label Studio's field, quoted ('annotator', ``annotator``) or listed
#: after "worker" as one of its aliases, the alias annotator_id, the per-annotator layout, and MACE's title
#: (multi-annotator competence estimation)
ACCEPTED = re.compile(r"per[_-]annotator|annotator_id|multi-annotator|``annotator``|(['\"])annotator\1|"
                      r"worker, annotator\b", re.I)


def _string_constants(path):
    """Every string constant of a module, the literal parts of f-strings included, with its line."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def _says_annotator(text: str) -> bool:
    """Uses "annotator" other than for an accepted input name (a string that is just the alias is one)."""
    return text.strip().lower() != "annotator" and "annotator" in ACCEPTED.sub("", text).lower()


def _found(paths, texts) -> list[str]:
    """``path:line: text`` of every text ``texts(path)`` yields (``(line, text)`` pairs) in ``paths``."""
    return [f"{path.relative_to(ROOT)}:{line}: {text[:90]!r}" for path in paths for line, text in texts(path)]


def test_engine_and_command_line_strings_say_worker():
    found = _found(sorted((ROOT / "deem_core").rglob("*.py")),
                   lambda path: ((line, text) for line, text in _string_constants(path) if _says_annotator(text)))
    assert not found, "say 'worker':\n" + "\n".join(found)


def test_the_rule_catches_a_message_and_spares_the_aliases(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('ALIASES = ("annotator", "annotator_id")\n'
                      'def f(n):\n'
                      '    """Reads ``annotator`` (Label Studio), the per_annotator layout and the columns worker, annotator,\n'
                      '    rater ..."""\n'
                      '    raise ValueError(f"{n} annotator(s) gave no label")\n')
    flagged = [text for _, text in _string_constants(module) if _says_annotator(text)]
    assert flagged == [" annotator(s) gave no label"]


#: a count put in a message followed by a noun written "noun(s)" ("the 1 task(s) that have a truth"; read 45)
COUNT_THEN_S = re.compile(r"^ (more |such |more such |fewer )?[A-Za-z][\w\- ,()]{0,40}?\((e?s|ies)\)")


def _counts_with_s(path):
    """The literal parts of f-strings that follow a formatted value and open with a noun written "noun(s)"."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.JoinedStr):
            for before, after in zip(node.values, node.values[1:]):
                if (isinstance(before, ast.FormattedValue) and isinstance(after, ast.Constant)
                        and COUNT_THEN_S.match(str(after.value))):
                    yield node.lineno, after.value


def test_no_count_is_followed_by_a_noun_of_both_numbers():
    """Counts say their noun in the number they take (``deem_core.data.text.counted``): "(accuracy on the 1 task(s)
    that have a truth" stood in the CLI, "1 run(s) in its workspace" on the Runs page."""
    found = _found([*sorted((ROOT / "deem_core").rglob("*.py")), *sorted((ROOT / "deem_studio").rglob("*.py")),
                    *sorted((ROOT / "pages").glob("*.py")), ROOT / "app.py"], _counts_with_s)
    assert not found, "use counted(n, noun):\n" + "\n".join(found)


def test_the_count_rule_catches_a_message(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('def f(n, name):\n'
                      '    a = f"{n} task(s) have a truth"\n'
                      '    b = f"{name}: the column name(s) {n} occur"\n'
                      '    c = f"; and {n} more such worker(s)"\n'
                      '    d = f"predicts {n} class(es) fewer"\n')
    assert [text for _, text in _counts_with_s(module)] == [" task(s) have a truth", " more such worker(s)",
                                                            " class(es) fewer"]


def test_a_count_that_is_no_whole_number_is_written_as_it_is_and_never_raises():
    """Attack round 49: ``counted(None, ...)`` raised TypeError, NaN ValueError, infinity OverflowError, and 2.7 was
    cut to "2 ..." without a word."""
    import numpy as np

    from deem_core.data.text import counted, in_number, is_are

    assert counted(1, "task") == "1 task" and counted(np.int64(1), "task") == "1 task"
    assert counted(1_234_567, "task") == "1,234,567 tasks" and counted(np.float64(2.0), "class", "classes") == "2 classes"
    assert counted(2.7, "task") == "2.7 tasks" and counted(None, "task") == "None tasks"
    assert counted(float("nan"), "task") == "nan tasks" and counted(float("inf"), "task") == "inf tasks"
    assert in_number(None, "answer(s)") == "answers" and in_number(1, "answer(s)") == "answer"
    assert is_are(float("nan")) == "are" and is_are(None) == "are" and is_are(np.int32(1)) == "is"
