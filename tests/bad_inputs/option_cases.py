"""Bad command-line options and unwritable outputs (issue 14, case 6 and the terminal half of case 4).

Each :class:`OptionCase` runs one ``deem`` command on a small valid input and declares the outcome: exit status
2 with exactly one ``error:`` line (the last line of stderr) matching ``message``, and which output files exist
afterwards. ``check_option_case`` asserts it; ``tests/test_cli_errors.py`` runs every case, ``report.py`` adds
them to the table of bad inputs. A "full disk" and a read-only folder are simulated (the tests run as root,
which writes anywhere): the write raises the ``OSError`` the system would raise.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parents[2]
SMALL = "task,worker,label\n" + "".join(f"{t},{w},{(t + (w == 'c') * (t % 3 == 0)) % 2}\n"
                                        for t in range(40) for w in "abc")


@dataclass
class OptionCase:
    name: str
    description: str
    args: list[str]  # placeholders: {input} {out} {model} {dir} {tmp}
    message: str | None = None  # regex for the one error line (without "error: "); None = must succeed
    written: list[str] = field(default_factory=list)  # outputs that must exist afterwards ({out}, {model})
    not_written: list[str] = field(default_factory=lambda: ["{out}", "{model}"])
    setup: Callable[[Path], contextlib.AbstractContextManager] | None = None
    input_name: str = "small.csv"
    input_text: str = SMALL
    subprocess: bool = False  # run as a real process (what a terminal shows, warnings included)
    max_stderr_lines: int | None = None
    needs_no_gpu: bool = False


# --------------------------------------------------------------------------- simulated system failures
@contextlib.contextmanager
def _patched(target: Any, name: str, replacement: Any) -> Iterator[None]:
    original = getattr(target, name)
    setattr(target, name, replacement)
    try:
        yield
    finally:
        setattr(target, name, original)


def read_only_folder(tmp: Path) -> contextlib.AbstractContextManager:
    """``{dir}`` behaves as a read-only folder: not writable to os.access, and creating a file in it fails."""
    folder = str(tmp / "readonly")
    real_access = os.access

    def access(path, mode, *args, **kwargs):
        if str(path).startswith(folder) and mode & os.W_OK:
            return False
        return real_access(path, mode, *args, **kwargs)

    return _patched(os, "access", access)


def _failing_writes(tmp: Path, code: int, only: str | None = None) -> contextlib.AbstractContextManager:
    """Every atomic write fails as the system would fail it: ``os.fsync`` of the temporary file raises (on a
    full disk the write or its flush fails). ``only``: just for files whose name ends so (found through
    /proc/self/fd)."""
    real = os.fsync

    def fsync(fd):
        try:
            name = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            name = ""
        if only is None or name.endswith(only) or f"{only}." in Path(name).name:
            raise OSError(code, os.strerror(code))
        return real(fd)

    return _patched(os, "fsync", fsync)


def disk_full(tmp: Path) -> contextlib.AbstractContextManager:
    return _failing_writes(tmp, errno.ENOSPC)


def permission_denied_at_write(tmp: Path) -> contextlib.AbstractContextManager:
    return _failing_writes(tmp, errno.EACCES)


def model_disk_full(tmp: Path) -> contextlib.AbstractContextManager:
    """The disk fills up after the labels were written, while the model is written."""
    return _failing_writes(tmp, errno.ENOSPC, only=".pt")


def input_in_folder(folder: str, name: str) -> Callable[[Path], contextlib.AbstractContextManager]:
    """``{dir}/<folder>/<name>`` is a copy of the input (a file an output folder's command writes by that name)."""
    @contextlib.contextmanager
    def setup(tmp: Path) -> Iterator[None]:
        (tmp / folder).mkdir(exist_ok=True)
        copy = tmp / folder / name
        copy.write_text(SMALL, encoding="utf-8")
        try:
            yield
        finally:
            assert copy.read_text(encoding="utf-8") == SMALL, f"{copy} was changed"
    return setup


def in_the_way(folder: str, name: str, pipe: bool = False) -> Callable[[Path], contextlib.AbstractContextManager]:
    """``{dir}/<folder>/<name>`` is a folder (or a named pipe) where a command writes the file ``name``."""
    @contextlib.contextmanager
    def setup(tmp: Path) -> Iterator[None]:
        (tmp / folder).mkdir(exist_ok=True)
        target = tmp / folder / name
        os.mkfifo(target) if pipe else target.mkdir()
        written = [p.name for p in (tmp / folder).iterdir()]
        try:
            yield
        finally:
            # refused before anything ran: nothing else was written there (curves.csv was, attack round 42)
            assert sorted(p.name for p in (tmp / folder).iterdir()) == sorted(written)
    return setup


@contextlib.contextmanager
def named_pipe(tmp: Path) -> Iterator[None]:
    """``{dir}/pipe.csv`` is a named pipe (what ``<(cat a.csv)`` gives), with nobody writing to it."""
    os.mkfifo(tmp / "pipe.csv")
    try:
        yield
    finally:
        (tmp / "pipe.csv").unlink()


@contextlib.contextmanager
def link_loop(tmp: Path) -> Iterator[None]:
    (tmp / "loop1").symlink_to(tmp / "loop2")
    (tmp / "loop2").symlink_to(tmp / "loop1")
    try:
        yield
    finally:
        (tmp / "loop1").unlink()
        (tmp / "loop2").unlink()


@contextlib.contextmanager
def link_loop_kept(tmp: Path) -> Iterator[None]:
    """``{dir}/loop1`` and ``loop2`` point at each other (an output there replaces the link)."""
    (tmp / "loop1").symlink_to(tmp / "loop2")
    (tmp / "loop2").symlink_to(tmp / "loop1")
    yield


def _cuda() -> bool:
    try:
        import torch  # noqa: PLC0415

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001
        return False


AGG = ["aggregate", "{input}", "--epochs", "1", "--no-progress"]


def cases() -> list[OptionCase]:
    out = [
        OptionCase("opt_readonly_folder", "-o in a read-only folder", [*AGG, "-o", "{dir}/readonly/out.csv"],
                   r"-o .*readonly/out\.csv: the folder .*readonly is not writable$", setup=read_only_folder,
                   not_written=["{dir}/readonly/out.csv"]),
        OptionCase("opt_write_denied", "the write itself is refused (permission)", [*AGG, "-o", "{out}"],
                   r"could not write .*out\.csv: Permission denied$", setup=permission_denied_at_write),
        OptionCase("opt_disk_full", "full disk while writing the labels (simulated ENOSPC)", [*AGG, "-o", "{out}"],
                   r"could not write .*out\.csv: No space left on device$", setup=disk_full),
        OptionCase("opt_output_under_a_file", "-o /etc/passwd/out.csv", [*AGG, "-o", "/etc/passwd/out.csv"],
                   r"-o /etc/passwd/out\.csv: /etc/passwd is not a folder$"),
        OptionCase("opt_output_is_a_folder", "-o names an existing folder", [*AGG, "-o", "{dir}"],
                   r"-o .*: is a folder, not a file$"),
        OptionCase("opt_output_no_format", "-o with an unknown extension", [*AGG, "-o", "{dir}/out.xlsx"],
                   r"cannot tell the output format from 'out\.xlsx'"),
        OptionCase("opt_epochs_0", "--epochs 0", [*AGG[:-3], "--epochs", "0", "--no-progress", "-o", "{out}"],
                   r"argument --epochs: must be at least 1, got 0"),
        OptionCase("opt_batch_size_0", "--batch-size 0", [*AGG, "--batch-size", "0", "-o", "{out}"],
                   r"argument --batch-size: must be at least 1, got 0"),
        OptionCase("opt_lr_inf", "--lr inf", [*AGG, "--lr", "inf", "-o", "{out}"],
                   r"argument --lr: must be a finite number, got inf"),
        OptionCase("opt_lr_nan", "--lr nan", [*AGG, "--lr", "nan", "-o", "{out}"],
                   r"argument --lr: must be a finite number, got nan"),
        OptionCase("opt_lr_negative", "--lr -0.1", [*AGG, "--lr=-0.1", "-o", "{out}"],
                   r"argument --lr: must be greater than 0, got -0\.1"),
        OptionCase("opt_lr_too_large", "--lr 1e39 (infinite in float32: every label 0 with probability 0 before)",
                   [*AGG, "--lr", "1e39", "--init", "mv", "-o", "{out}"], r"argument --lr: must be at most 100, got 1e39"),
        OptionCase("opt_sweep_lrs_too_large", "deem sweep --lrs with a rate above the largest accepted",
                   ["sweep", "{input}", "--lrs", "0.1,1e39", "--epochs", "1", "--no-progress", "-o", "{dir}/sweep"],
                   r"--lrs must be at most 100, got '0\.1,1e39'", not_written=["{dir}/sweep"]),
        OptionCase("opt_output_is_the_input", "-o names the input file (the annotations were replaced, exit 0)",
                   [*AGG, "-o", "{input}"], r"-o .*: is also an input file; it would be replaced"),
        OptionCase("opt_model_is_the_input", "--model names the input file",
                   [*AGG, "-o", "{out}", "--model", "{input}"], r"--model .*: is also an input file"),
        OptionCase("opt_output_is_the_truth", "-o names the --truth file",
                   [*AGG, "--truth", "{dir}/truth.csv", "-o", "{dir}/truth.csv"], r"-o .*truth\.csv: is also an input"),
        OptionCase("opt_baselines_output_is_the_input", "deem baselines -o the input file",
                   ["baselines", "{input}", "--methods", "mv", "-o", "{input}"], r"-o .*: is also an input file"),
        OptionCase("opt_sweep_folder_holds_the_input", "deem sweep -o a folder holding the input (curves.csv replaced it)",
                   ["sweep", "{dir}/sw/curves.csv", "--lrs", "0.1", "--epochs", "1", "--no-progress", "-o", "{dir}/sw"],
                   r"-o .*sw: holds the input file .*curves\.csv, which the files written there could replace",
                   setup=input_in_folder("sw", "curves.csv")),
        OptionCase("opt_diagnose_folder_holds_the_input", "deem diagnose -o a folder holding the input",
                   ["diagnose", "{dir}/dg/workers.csv", "--epochs", "1", "--no-progress", "-o", "{dir}/dg"],
                   r"-o .*dg: holds the input file .*workers\.csv", setup=input_in_folder("dg", "workers.csv")),
        OptionCase("opt_input_is_a_pipe", "a named pipe as input (process substitution): named, not 'not seekable'",
                   [*AGG[:1], "{dir}/pipe.csv", *AGG[2:], "-o", "{out}"],
                   r"pipe\.csv: not a regular file \(a pipe or a device\)", setup=named_pipe),
        OptionCase("opt_input_is_a_link_loop", "a symbolic link loop as input (it called itself a bug)",
                   [*AGG[:1], "{dir}/loop1", *AGG[2:], "-o", "{out}"], r"Too many levels of symbolic links: .*loop1",
                   setup=link_loop),
        OptionCase("opt_model_is_a_link_loop", "--model naming a link loop: written in its place (the same-file test "
                   "called itself a bug)", [*AGG, "-o", "{out}", "--model", "{dir}/loop1"], None,
                   written=["{out}", "{dir}/loop1"], not_written=[], setup=link_loop_kept),
        OptionCase("opt_one_column_two_roles", "--task-column and --worker-column the same column",
                   [*AGG, "--task-column", "worker", "--worker-column", "worker", "-o", "{out}"],
                   r"the task and worker columns are both 'worker'; each needs a column of its own"),
        OptionCase("opt_one_column_two_roles_by_case", "--task-column TASK --worker-column task (one column: the "
                   "lookup ignores case)", [*AGG, "--task-column", "TASK", "--worker-column", "task", "-o", "{out}"],
                   r"the task and worker columns are both 'task'; each needs a column of its own"),
        OptionCase("opt_worker_column_is_the_label_column", "--worker-column label alone (said 'label' was missing)",
                   [*AGG, "--worker-column", "label", "-o", "{out}"],
                   r".*small\.csv: the label column would be 'label', but that is the worker column; name the label column"),
        # a folder or a pipe by the name of a file written into -o: refused before the sweep or the diagnostics
        # ran (they failed after it, naming the folder, with curves.csv or five files written; attack round 42)
        OptionCase("opt_sweep_file_is_a_folder", "deem sweep -o a folder whose recommendation.json is a folder",
                   ["sweep", "{input}", "--epochs", "1", "--no-progress", "-o", "{dir}/sw"],
                   r"-o .*sw: .*recommendation\.json is a folder, where the file recommendation\.json is written",
                   setup=in_the_way("sw", "recommendation.json")),
        OptionCase("opt_sweep_file_is_a_pipe", "deem sweep -o a folder whose recommendation.json is a named pipe",
                   ["sweep", "{input}", "--epochs", "1", "--no-progress", "-o", "{dir}/sw"],
                   r"-o .*sw: .*recommendation\.json is not a regular file \(a pipe or a device\)",
                   setup=in_the_way("sw", "recommendation.json", pipe=True)),
        OptionCase("opt_diagnose_file_is_a_folder", "deem diagnose -o a folder whose report.html is a folder",
                   ["diagnose", "{input}", "--epochs", "1", "--no-progress", "-o", "{dir}/dg"],
                   r"-o .*dg: .*report\.html is a folder, where the file report\.html is written",
                   setup=in_the_way("dg", "report.html")),
        OptionCase("opt_experts_unknown", "deem diagnose --experts naming no worker (drawn as no one before)",
                   ["diagnose", "{input}", "--experts", "nobody", "--epochs", "1", "--no-progress", "-o", "{dir}/dg"],
                   r"--experts: 1 name is not a worker of these annotations: 'nobody'",
                   not_written=["{dir}/dg"]),
        OptionCase("opt_seeds_0", "--seeds 0", [*AGG, "--seeds", "0", "-o", "{out}"],
                   r"argument --seeds: must be at least 1, got 0"),
        # (100,000 seeds of 30 tasks ran past a minute; attack round 42)
        OptionCase("opt_seeds_huge", "--seeds 100000", [*AGG, "--seeds", "100000", "-o", "{out}"],
                   r"argument --seeds: must be at most 16, got 100000"),
        OptionCase("sweep_seeds_huge", "sweep --seeds 1000",
                   ["sweep", "{input}", "--seeds", "1000", "--no-progress", "-o", "{dir}/sw"],
                   r"argument --seeds: must be at most 16, got 1000"),
        OptionCase("opt_layers_negative", "--layers -1", [*AGG, "--layers", "-1", "-o", "{out}"],
                   r"argument --layers: must be 0 or more, got -1"),
        OptionCase("opt_sampler_steps_negative", "--sampler-steps -1", [*AGG, "--sampler-steps", "-1", "-o", "{out}"],
                   r"argument --sampler-steps: must be 0 or more, got -1"),
        OptionCase("opt_layers_7", "--layers 7 (any depth trained, 50 for minutes)", [*AGG, "--layers", "7", "-o", "{out}"],
                   r"argument --layers: must be at most 6, got 7"),
        OptionCase("opt_layers_5000_digits", "a 5,000-digit --layers (was called 'expected a number of layers')",
                   [*AGG, "--layers", "7" * 5000, "-o", "{out}"],
                   r"argument --layers: got a whole number of 5,000 digits, far past any value accepted"),
        OptionCase("opt_batch_size_long_text", "a 5,000-character --batch-size (quoted whole before)",
                   [*AGG, "--batch-size", "x" * 5000, "-o", "{out}"],
                   r"argument --batch-size: must be a whole number, got 'xxxxxxxxxxxxxxxxxxxx\.\.\.' \(see"),
        OptionCase("opt_layers_5000_arabic_digits", "5,000 Arabic-Indic digits for --layers (called 'not a whole number')",
                   [*AGG, "--layers", "\u0667" * 5000, "-o", "{out}"],
                   r"argument --layers: got a whole number of 5,000 digits, far past any value accepted"),
        OptionCase("opt_long_values_cut", "100,000-character values of float options (printed whole before)",
                   [*AGG, "--ds-prior", "9" * 100000, "-o", "{out}"],
                   r"argument --ds-prior: must be a finite number, got 9{20}\.\.\. \(see"),
        OptionCase("opt_gold_weight_text", "a 100,000-character --gold-weight (argparse's float() quoted it whole)",
                   [*AGG, "--gold-weight", "x" * 100000, "-o", "{out}"],
                   r"argument --gold-weight: must be a number, got 'x{20}\.\.\.' \(see"),
        OptionCase("opt_max_input_bytes_text", "a 100,000-character --max-input-bytes (quoted whole)",
                   [*AGG, "--max-input-bytes", "x" * 100000, "-o", "{out}"],
                   r"--max-input-bytes must be a number of bytes, optionally ending in K, M or G; got 'x{20}\.\.\.'$"),
        OptionCase("opt_sweep_layers_7", "deem sweep --layers 7",
                   ["sweep", "{input}", "--layers", "7", "--no-progress", "-o", "{dir}/sw"],
                   r"argument --layers: must be at most 6, got 7", not_written=["{dir}/sw"]),
        OptionCase("opt_sampler_steps_huge", "--sampler-steps 100000000 (ran minutes without one epoch or a word)",
                   [*AGG, "--sampler-steps", "100000000", "-o", "{out}"],
                   r"argument --sampler-steps: must be at most 1,000, got 100000000"),
        OptionCase("opt_epochs_huge", "--epochs 1000000000 (said 'unexpected ValueError ... this is a bug')",
                   [*AGG, "--epochs", "1000000000", "-o", "{out}"],
                   r"argument --epochs: must be at most 100,000, got 1000000000"),
        OptionCase("opt_device_foo", "--device foo", [*AGG, "--device", "foo", "-o", "{out}"],
                   r"argument --device: must be auto, cpu, cuda or cuda:N, got 'foo'"),
        OptionCase("opt_seed_20_digits", "a 20-digit --seed", [*AGG, "--seed", "12345678901234567890", "-o", "{out}"],
                   r"argument --seed: must be between 0 and 2147483647"),
        OptionCase("opt_seed_text", "--seed abc", [*AGG, "--seed", "abc", "-o", "{out}"],
                   r"argument --seed: must be a whole number, got 'abc'"),
        OptionCase("opt_gold_weight_nan", "--gold-weight nan (was accepted silently)",
                   [*AGG, "--gold-weight", "nan", "-o", "{out}"], r"--gold-weight must be a finite number >= 0, got nan"),
        OptionCase("opt_gold_weight_negative", "--gold-weight -1 (was accepted silently)",
                   [*AGG, "--gold-weight", "-1", "-o", "{out}"], r"--gold-weight must be a finite number >= 0, got -1"),
        OptionCase("opt_ds_prior_nan", "--ds-prior nan", [*AGG, "--ds-prior", "nan", "-o", "{out}"],
                   r"argument --ds-prior: must be a finite number, got nan"),
        OptionCase("opt_ds_prior_huge", "--ds-prior 1e308 (overflowed the pseudo-counts)",
                   [*AGG, "--ds-prior", "1e308", "-o", "{out}"], r"argument --ds-prior: must be at most 1,000,000, got 1e308"),
        OptionCase("opt_ds_prior_negative", "--ds-prior -1", [*AGG, "--ds-prior", "-1", "-o", "{out}"],
                   r"argument --ds-prior: must be 0 or more, got -1"),
        OptionCase("opt_model_unwritable", "--model under a file: checked before training, neither file written",
                   [*AGG, "-o", "{out}", "--model", "/etc/passwd/m.pt"],
                   r"--model /etc/passwd/m\.pt: /etc/passwd is not a folder$"),
        OptionCase("opt_model_disk_full", "disk full while writing the model: the labels are kept, the line says so",
                   [*AGG, "-o", "{out}", "--model", "{model}"],
                   r"wrote the labels to .*out\.csv, but could not write .*model\.pt: No space left on device$",
                   written=["{out}"], not_written=["{model}"], setup=model_disk_full),
        OptionCase("opt_model_and_output_same", "--model and -o the same file",
                   [*AGG, "-o", "{dir}/same.csv", "--model", "{dir}/same.csv"], r"--model and -o name the same file"),
        OptionCase("opt_missing_input", "an input file that does not exist", [*AGG[:1], "{dir}/nosuch.csv",
                                                                           *AGG[2:], "-o", "{out}"],
                   r"No such file or directory: .*nosuch\.csv$"),
        OptionCase("opt_missing_truth", "--truth that does not exist", [*AGG, "-o", "{out}", "--truth", "{dir}/no.csv"],
                   r"No such file or directory: .*no\.csv$"),
        OptionCase("opt_newline_in_input_name", "an input named with a newline (one error line, escaped)",
                   [*AGG, "-o", "{out}"], r"^bad\\nname\.csv: the file is empty$", input_name="bad\nname.csv",
                   input_text=""),
        OptionCase("opt_escape_in_input_name", "an input named with ANSI/OSC escape sequences",
                   [*AGG, "-o", "{out}"], r"^\\x1b\]0;pwned\\x07\\x1b\[31mred\.csv: the file is empty$",
                   input_name="\x1b]0;pwned\x07\x1b[31mred.csv", input_text=""),
        OptionCase("opt_unknown_option", "an option that does not exist", [*AGG, "-o", "{out}", "--no-such-option", "3"],
                   r"unrecognized arguments: --no-such-option 3"),
        OptionCase("opt_sweep_lrs_inf", "deem sweep --lrs 0.1,inf",
                   ["sweep", "{input}", "-o", "{dir}/sw", "--lrs", "0.1,inf", "--epochs", "1", "--no-progress"],
                   r"--lrs must be positive finite numbers, got '0\.1,inf'", not_written=["{dir}/sw"]),
        OptionCase("opt_sweep_epochs_0", "deem sweep --epochs 0",
                   ["sweep", "{input}", "-o", "{dir}/sw", "--epochs", "0"], r"argument --epochs: must be at least 1",
                   not_written=["{dir}/sw"]),
        OptionCase("opt_sweep_output_file", "deem sweep -o an existing file",
                   ["sweep", "{input}", "-o", "{input}", "--epochs", "1", "--no-progress"],
                   r"-o .*small\.csv: exists and is not a folder$", not_written=[]),
        OptionCase("opt_diagnose_output_under_file", "deem diagnose -o /etc/passwd/report",
                   ["diagnose", "{input}", "-o", "/etc/passwd/report", "--epochs", "1", "--no-progress"],
                   r"-o /etc/passwd/report: /etc/passwd is not a folder$"),
        OptionCase("opt_baselines_unknown_method", "deem baselines --methods mv,nope",
                   ["baselines", "{input}", "--methods", "mv,nope"], r"unknown method\(s\) nope"),
        OptionCase("opt_k1000_mv_quiet", "1,000 classes with --method mv: no pandas PerformanceWarning flood",
                   ["aggregate", "{input}", "--method", "mv", "-o", "{out}"], None, written=["{out}"], not_written=[],
                   # 334 tasks x 3 workers give every one of the 1,000 classes (c0 ... c999) at least once
                   input_text=("task,worker,label\n" + "".join(f"{t},w{w},c{(t * 3 + w) % 1000}\n"
                                                              for t in range(334) for w in range(3))),
                   subprocess=True, max_stderr_lines=4),
    ]
    if not _cuda():
        out.insert(14, OptionCase("opt_device_cuda_without_gpu", "--device cuda on a machine without a GPU",
                                  [*AGG, "--device", "cuda", "-o", "{out}"],
                                  r"--device cuda: no CUDA GPU is available here; use --device cpu or auto"))
    return out


# --------------------------------------------------------------------------- running a case
def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def run_deem(args: list[str], as_process: bool = False) -> tuple[int, str]:
    if as_process:
        result = subprocess.run([sys.executable, "-c", "import sys; from deem_core.cli import main; sys.exit(main())",
                                 *args], capture_output=True, text=True, cwd=ROOT, timeout=600)
        return result.returncode, result.stderr
    from deem_core.cli import main  # noqa: PLC0415

    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = main(args)
        except SystemExit as exc:  # argparse exits with status 2 on a bad option
            status = exc.code if isinstance(exc.code, int) else 1
    return status, stderr.getvalue()


def check_option_case(case: OptionCase, tmp: Path) -> str:
    """Run the case in ``tmp``; raise AssertionError with the reason, or return what happened (one line)."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "readonly").mkdir(exist_ok=True)
    source = tmp / case.input_name
    source.write_text(case.input_text, encoding="utf-8")
    values = {"input": str(source), "out": str(tmp / "out.csv"), "model": str(tmp / "model.pt"), "dir": str(tmp),
              "tmp": str(tmp)}
    args = [_fill(a, values) for a in case.args]
    context = case.setup(tmp) if case.setup else contextlib.nullcontext()
    with context:
        status, stderr = run_deem(args, as_process=case.subprocess)
    lines = stderr.splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert "Traceback" not in stderr, f"a traceback: {stderr[-800:]!r}"
    for path in case.written:
        assert Path(_fill(path, values)).exists(), f"{_fill(path, values)} was not written"
    for path in case.not_written:
        assert not Path(_fill(path, values)).exists(), f"{_fill(path, values)} was written although the command failed"
    assert source.read_text(encoding="utf-8") == case.input_text, "the input file was changed"
    leftovers = [p.name for p in tmp.rglob("*.tmp")]
    assert not leftovers, f"temporary files left behind: {leftovers}"
    if case.message is None:
        assert status == 0, f"exit status {status}; stderr: {stderr[-800:]!r}"
        assert not errors, f"error lines on success: {errors}"
        if case.max_stderr_lines is not None:
            assert len(lines) <= case.max_stderr_lines, f"{len(lines)} lines on stderr: {stderr[:600]!r}"
            assert "Warning" not in stderr, f"a warning on stderr: {stderr[:600]!r}"
        return f"exit 0, {len(lines)} stderr line(s)"
    assert status == 2, f"exit status {status}, expected 2; stderr: {stderr[-800:]!r}"
    assert len(errors) == 1, f"expected exactly one 'error:' line, got {errors} in {stderr[-800:]!r}"
    assert lines[-1] == errors[0], f"the error line is not the last line of stderr: {lines[-3:]}"
    pattern = "^error: " + case.message.removeprefix("^")
    assert re.search(pattern, errors[0]), f"{errors[0]!r} does not match {pattern!r}"
    assert "\x1b" not in stderr and "\x07" not in stderr, "a control character reached the terminal"
    return "exit 2: " + errors[0]
