"""Issue 6: the bad-input corpus against the library and the ``deem aggregate`` command.

The files are generated into a temporary folder by ``tests/bad_inputs/make_corpus.py`` (nothing is
committed); what each case must give is declared next to it there, and ``corpus_checks.py`` asserts it:
a DataError / one ``error:`` line with exit status 2 whose text matches the case's message, or the
exact answers loaded (and, through the CLI, one output row per task).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "bad_inputs"))

import corpus_checks  # noqa: E402
import make_corpus  # noqa: E402

CASES = {case.name: case for case in make_corpus.cases()}
SLOW = [name for name, case in CASES.items() if case.slow]
# cases whose expected answer depends on work not merged yet: strict, so they fail the day they pass
PENDING: dict[str, str] = {}  # cases waiting on a fix elsewhere (none now)
FAST = [pytest.param(name, marks=pytest.mark.xfail(strict=True, raises=AssertionError, reason=PENDING[name]))
        if name in PENDING else name for name, case in CASES.items() if not case.slow]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, list[Path]]:
    return make_corpus.make_corpus(tmp_path_factory.mktemp("bad_inputs"))


@pytest.mark.parametrize("name", FAST)
def test_library(name, corpus):
    corpus_checks.check_library(CASES[name], corpus[name])


@pytest.mark.parametrize("name", FAST)
def test_cli(name, corpus, tmp_path):
    corpus_checks.check_cli(CASES[name], corpus[name], tmp_path)


def test_corpus_covers_the_issue_list():
    """Every input the issue names has a case (the list is the contract of this corpus)."""
    required = {
        "empty", "header_only", "semicolon", "tab", "bom", "latin1", "quoted", "missing_label_column",
        "missing_task_column", "extra_columns", "blank_lines", "single_class", "single_annotator", "one_task",
        "duplicate_rows", "conflicting_duplicates", "mixed_types", "empty_labels", "classes_10000",
        "large_200mb", "binary_garbage", "wide_empty_columns", "csv_injection",
        # issue 14, the readers: bombs streamed and refused, per-line decoding, repeated headers, missing
        # spellings, a file name that would cut the error line; issue 17: platform exports gone wrong
        "bomb_bytes", "bomb_rows", "bomb_line", "bomb_quote", "bomb_json", "bomb_parquet", "mixed_encoding",
        "repeated_header", "repeated_header_reordered", "missing_spellings", "missing_spellings_kept",
        "newline_in_name", "mturk_all_rejected", "label_studio_regions", "parquet_nested",
    }
    assert required <= set(CASES)
    assert all(case.expect in ("ok", "error") for case in CASES.values())
    assert all(case.message for case in CASES.values() if case.expect == "error")


def test_guard_refuses_a_huge_network():
    """The allocation guard the corpus checks rely on does fire (so a missing size check cannot eat the
    machine's memory in these tests), and is gone afterwards."""
    import numpy as np

    from deem_core.data.annotations import AnnotationSet
    from deem_core.methods import dawid_skene

    from deem_core.methods import starts as initial
    from deem_core.model.network import DEEMNetwork

    labels = np.zeros((4, 3), dtype=np.int64)
    many, few = AnnotationSet.from_dense(labels, classes=range(50)), AnnotationSet.from_dense(labels, classes=range(4))
    with corpus_checks.no_huge_network(limit=100):
        with pytest.raises(AssertionError, match="a DEEMNetwork of 3 workers x 50 classes was about to be allocated"):
            DEEMNetwork(1, 3, 50, 1)
        with pytest.raises(AssertionError, match="a fit_dawid_skene of 3 workers x 50 classes"):
            initial.fit_dawid_skene(many)
        with pytest.raises(AssertionError, match="a fit_dawid_skene of 3 workers x 50 classes"):
            dawid_skene.fit_dawid_skene(many)
        DEEMNetwork(1, 3, 4, 1)  # small ones still build
        assert initial.fit_dawid_skene(few).confusion.shape == (3, 4, 4)
    DEEMNetwork(1, 3, 50, 0)
    assert dawid_skene.fit_dawid_skene(many).confusion.shape == (3, 50, 50)


def test_bombs_are_small_on_disk(corpus):
    """The bombs are generated small and only ever expanded while a reader streams them."""
    for name in ("bomb_bytes", "bomb_rows", "bomb_line", "bomb_quote", "bomb_json", "bomb_parquet"):
        assert sum(p.stat().st_size for p in corpus[name]) < 1_000_000, name


def test_check_library_fails_on_a_wrong_expectation(corpus):
    """The checks are not vacuous: a case whose expected answers are wrong is reported."""
    import dataclasses

    wrong = dataclasses.replace(CASES["semicolon"], triples=make_corpus.BASE_TRIPLES | {(9, "z", "cat")})
    with pytest.raises(AssertionError, match=r"answers differ: missing \[\"\(9, 'z', 'cat'\)\"\]"):
        corpus_checks.check_library(wrong, corpus["semicolon"])
    wrong = dataclasses.replace(CASES["empty"], message=r"^empty\.csv: something else$")
    with pytest.raises(AssertionError, match="does not match"):
        corpus_checks.check_library(wrong, corpus["empty"])


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_large_file(name, tmp_path):
    """A 200 MB long CSV loads with every annotation and trains one epoch; the command aggregates it."""
    case = CASES[name]
    paths = make_corpus.write_case(case, tmp_path / "in")
    assert paths[0].stat().st_size > 190e6
    corpus_checks.check_library(case, paths, batch_size=8192)
    corpus_checks.check_cli(case, paths, tmp_path, extra=["--batch-size", "8192"])
