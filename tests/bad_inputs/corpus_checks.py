"""Checks of one bad-input case against the library and the ``deem aggregate`` command.

``check_library`` and ``check_cli`` raise AssertionError with the reason when the outcome is not the
expected one, and return a short description of what happened otherwise. ``tests/test_bad_inputs.py``
calls them per case; ``report.py`` turns them into the table of outcomes.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from make_corpus import Case

#: no network, Dawid-Skene fit or one-hot table with more (workers x classes) than this is built in these
#: checks: a missing size check must fail the test, not exhaust the machine's memory (with 10,000 classes
#: the Dawid-Skene start alone would take gigabytes)
MAX_TEST_UNITS = 5_000
#: engine functions taking (data: AnnotationSet, ...) whose memory grows with d x K x K
GUARDED_FUNCTIONS = ("fit_dawid_skene",)


def _too_big(what: str, n_workers: int, n_classes: int) -> AssertionError:
    return AssertionError(f"a {what} of {n_workers} workers x {n_classes} classes was about to be allocated: "
                          f"the problem size was not checked first")


@contextlib.contextmanager
def no_huge_network(limit: int = MAX_TEST_UNITS) -> Iterator[None]:
    import sys  # noqa: PLC0415

    import deem_core.methods.deem  # noqa: F401, PLC0415 - loads every engine module that could allocate
    from deem_core.model import network as model  # noqa: PLC0415

    original = model.DEEMNetwork.__init__

    def guarded_init(self, n_runs, n_workers, n_classes, *args, **kwargs):
        if n_workers * n_classes > limit:
            raise _too_big("DEEMNetwork", n_workers, n_classes)
        original(self, n_runs, n_workers, n_classes, *args, **kwargs)

    def guard(name, function):
        def guarded(data, *args, **kwargs):
            if data.n_workers * data.n_classes > limit:
                raise _too_big(name, data.n_workers, data.n_classes)
            return function(data, *args, **kwargs)
        return guarded

    patched = []  # (module, attribute, original)
    for module in [m for n, m in list(sys.modules.items()) if n.startswith("deem_core") and m is not None]:
        for name in GUARDED_FUNCTIONS:
            function = getattr(module, name, None)
            if callable(function):
                patched.append((module, name, function))
                setattr(module, name, guard(name, function))
    model.DEEMNetwork.__init__ = guarded_init
    try:
        yield
    finally:
        model.DEEMNetwork.__init__ = original
        for module, name, function in patched:
            setattr(module, name, function)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def triples(data) -> set[tuple]:
    long = data.to_long()
    return {(_plain(t), _plain(w), _plain(y)) for t, w, y in long.itertuples(index=False)}


def kind(value: Any) -> str:
    """'int' for Python and numpy integers, 'str' for text, else the type's name: 1 and '1' differ."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return "int"
    return "str" if isinstance(value, str) else type(value).__name__


def _typed(values: set[tuple]) -> set[tuple]:
    return {tuple((kind(v), _plain(v)) for v in row) for row in values}


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _library_source(case: Case, paths: list[Path], for_cli_file: bool = False) -> Any:
    if case.frame is not None and not for_cli_file:
        return case.frame
    return [str(p) for p in paths] if len(paths) > 1 else str(paths[0])


def _expect_error(call, pattern: str, what: str) -> str:
    from deem_core.data.annotations import DataError  # noqa: PLC0415

    try:
        call()
    except DataError as exc:
        text = str(exc)
        assert re.search(pattern, text), f"{what}: DataError {text!r} does not match {pattern!r}"
        assert "\n" not in text, f"{what}: the message spans several lines: {text!r}"
        return f"DataError: {_first_line(exc)}"
    raise AssertionError(f"{what}: expected a DataError matching {pattern!r}, got none")


def check_loaded(case: Case, data) -> None:
    got = triples(data) if case.triples is not None else None
    if case.triples is not None:
        assert _typed(got) == _typed(set(case.triples)), (
            f"answers differ: missing {sorted(map(repr, set(case.triples) - got))[:5]}, "
            f"unexpected {sorted(map(repr, got - set(case.triples)))[:5]}")
    if case.n_tasks is not None:
        assert data.n_tasks == case.n_tasks, f"{data.n_tasks} tasks, expected {case.n_tasks}"
    if case.n_workers is not None:
        assert data.n_workers == case.n_workers, f"{data.n_workers} annotators, expected {case.n_workers}"
    if case.classes is not None:
        got_classes = [_plain(c) for c in data.classes]
        assert got_classes == case.classes and [type(c) for c in got_classes] == [type(c) for c in case.classes], (
            f"classes {got_classes!r}, expected {case.classes!r}")
    for pattern in case.warnings:
        assert any(re.search(pattern, w) for w in data.warnings), (
            f"no warning matches {pattern!r}; warnings: {data.warnings}")


def check_library(case: Case, paths: list[Path], epochs: int = 1, **fit_options: Any) -> str:
    """read_annotations (and DEEM.fit where the data is usable) give the expected outcome."""
    from deem_core.methods.deem import DEEM  # noqa: PLC0415
    from deem_core.data.readers import read_annotations  # noqa: PLC0415

    source = _library_source(case, paths)
    if case.expect == "error":
        return _expect_error(lambda: read_annotations(source, **case.load_kwargs), case.message, "read_annotations")
    data = read_annotations(source, **case.load_kwargs)
    check_loaded(case, data)
    model = DEEM(epochs=epochs, device="cpu", **fit_options)
    with no_huge_network():
        if case.fit_error is not None:
            outcome = _expect_error(lambda: model.fit(data), case.fit_error, "DEEM.fit")
            return f"loaded {data.n_tasks}x{data.n_workers}, K={data.n_classes}; fit refused: {outcome}"
        model.fit(data)
    predicted = model.predict()
    assert list(predicted.index) == list(data.tasks), "predictions are not one per task in task order"
    assert set(map(_plain, predicted)) <= set(map(_plain, data.classes)), "a prediction is not one of the classes"
    if case.predicted is not None:
        got = {_plain(t): _plain(y) for t, y in predicted.items()}
        assert got == case.predicted, f"predicted {got}, expected {case.predicted}"
    return f"loaded {data.n_tasks}x{data.n_workers}, K={data.n_classes}; fitted"


def run_cli(args: list[str]) -> tuple[int, str]:
    from deem_core.cli import main  # noqa: PLC0415

    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), no_huge_network():
        status = main(args)
    return status, stderr.getvalue()


def check_cli(case: Case, paths: list[Path], out_dir: Path, epochs: int = 1, extra: list[str] | None = None) -> str:
    """``deem aggregate FILES -o out.csv --epochs 1``: exit 2 with exactly one ``error:`` line where the
    data is refused, exit 0 and one output row per task where it is usable."""
    output = Path(out_dir) / f"{case.name}.out.csv"
    args = ["aggregate", *[str(p) for p in paths], "-o", str(output), "--epochs", str(epochs), "--no-progress",
            "--device", "cpu", *case.cli_args, *(extra or [])]
    status, stderr = run_cli(args)
    lines = stderr.splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    expect = case.cli_expect or case.expect
    pattern = case.cli_message or (case.message if expect == "error" else case.fit_error)
    if pattern is not None:
        assert status == 2, f"exit status {status}, expected 2; stderr: {stderr[-500:]!r}"
        assert len(errors) == 1, f"expected exactly one 'error:' line, got {errors}"
        assert lines[-1] == errors[0], f"the error line is not the last line of stderr: {lines[-3:]}"
        cli_pattern = "^error: " + pattern.removeprefix("^")
        assert re.search(cli_pattern, errors[0]), f"{errors[0]!r} does not match {cli_pattern!r}"
        assert not output.exists(), "an output file was written although the command failed"
        return "exit 2: " + errors[0]
    assert status == 0, f"exit status {status}; stderr: {stderr[-500:]!r}"
    assert not errors, f"error lines on success: {errors}"
    written = pd.read_csv(output, dtype=str, keep_default_na=False)
    assert list(written.columns[:3]) == ["task", "label", "confidence"], list(written.columns)
    if case.n_tasks is not None:
        assert len(written) == case.n_tasks, f"{len(written)} output rows, expected {case.n_tasks}"
    if case.triples is not None:
        tasks = {str(t) for t, _, _ in case.triples}
        shown = {t[1:] if t.startswith("'") and t[1:2] in "=+-@\t\r\n" else t for t in written["task"]}
        assert shown == tasks, f"output tasks {sorted(shown)[:5]} differ from {sorted(tasks)[:5]}"
    text = output.read_text(encoding="utf-8")
    for needle in case.output_contains:
        assert needle in text, f"{needle!r} not in the output file"
    leftovers = [p.name for p in Path(out_dir).iterdir() if p.name.endswith(".tmp")]
    assert not leftovers, f"temporary files left behind: {leftovers}"
    return f"exit 0: {len(written)} rows"
