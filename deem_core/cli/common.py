"""Options and helpers shared by the subcommands (input files, training options, option checks, output paths,
messages, progress bar).

Everything a subcommand tells the user goes through :func:`say` / :func:`warn`: file, worker and class names
come from the data and may hold control characters (ANSI/OSC escape sequences, newlines), which are printed
as visible escapes (:func:`deem_core.data.text.escape_controls`). Bad option values are refused by the
``type=`` checks below while parsing (one ``error:`` line, exit status 2) or by :func:`check_arguments`
right after, before any file is read; output paths are checked before training (:func:`check_output_file`,
:func:`check_output_folder`) and written through :func:`writing`, which turns an ``OSError`` into a
:class:`OutputError` naming the file.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator

from tqdm.auto import tqdm

from deem_core.data.text import counted, escape_controls, shortened

__all__ = ["add_input_arguments", "add_training_arguments", "budget_note", "layers_argument", "print_selection", "input_limits", "load_input", "read_input", "ProgressBar",
           "parse_float_list", "OutputError", "check_arguments", "check_output_file", "check_output_folder", "say", "warn", "writing",
           "positive_int", "non_negative_int", "number", "whole_number", "seed_value", "learning_rate", "device_name",
           "MAX_SEED"]

#: the largest --seed (seeds are offset per run and handed to numpy and torch generators)
MAX_SEED = 2 ** 31 - 1


class OutputError(OSError):
    """An output could not be written; the message names the file and the reason."""


# --------------------------------------------------------------------------- messages
def say(text: Any, stream=None) -> None:
    """One message line on stderr (default) with control characters shown as escapes."""
    print(escape_controls(text), file=stream or sys.stderr)


def warn(text: Any) -> None:
    say(f"warning: {text}")


# --------------------------------------------------------------------------- option types (argparse ``type=``)
def _quoted(text: Any) -> str:
    """Typed text as an error quotes it: control characters escaped, at most 24 characters."""
    return repr(escape_controls(shortened(text)))


def _as_typed(text: Any) -> str:
    """Typed text as a number's error repeats it unquoted: stripped, control characters escaped, at most 24
    characters (a 100,000-character value was printed whole; attack round 15)."""
    return escape_controls(shortened(str(text).strip()))


def whole_number(text: str) -> int:
    """An option's whole number, any size (its bounds are checked after parsing)."""
    return _integer(text)


def number(text: str) -> float:
    """An option's number, any value (checked after parsing: NaN and infinities included)."""
    try:
        return float(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {_quoted(text)}") from None


def _integer(text: str, refusal: str = "must be a whole number") -> int:
    """A whole number as ``int()`` reads it. One with more digits than Python converts (4,300 by default) is
    called too long, not "not a number"."""
    stripped = str(text).strip()
    try:
        return int(stripped)
    except ValueError:
        pass
    digits = stripped.lstrip("+-").replace("_", "")
    if digits.isdecimal() and len(digits) > 24:  # (any script's digits, as int() reads them)
        raise argparse.ArgumentTypeError(
            f"got a whole number of {len(digits):,} digits, far past any value accepted") from None
    raise argparse.ArgumentTypeError(f"{refusal}, got {_quoted(text)}") from None


def positive_int(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {_shown(value)}")
    return value


def update_budget(text: str) -> int | None:
    """``--max-updates``: a positive integer, or ``none`` for no budget."""
    if str(text).strip().lower() == "none":
        return None
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (or none: no budget)") from None


def budget_note(n_tasks: int, epochs: int, batch_size: int, max_updates: int | None) -> str | None:
    """What the update budget does to these data (None when it changes nothing): said before training."""
    from deem_core.model.training import budget_text  # noqa: PLC0415

    text = budget_text(n_tasks, epochs, batch_size, max_updates)
    return None if text is None else f"{text} (--max-updates; 'none' trains all {epochs:,})"


def non_negative_int(text: str) -> int:
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {_shown(value)}")
    return value


def _shown(value: int) -> str:
    """A number as an error quotes it: at most 24 characters."""
    return shortened(value)


def _at_most(value: int, most: int) -> int:
    if value > most:
        raise argparse.ArgumentTypeError(f"must be at most {most:,}, got {_shown(value)}")
    return value


def layers_argument(text: str) -> int | str:
    """``--layers``: a number of layers (0 to MAX_LAYERS), or ``auto`` (0, 1 or 2 chosen from held-out answers)."""
    if str(text).strip().lower() == "auto":
        return "auto"
    return layers_count(text, "a number of layers or 'auto'")


def layers_count(text: str, expected: str = "a number of layers") -> int:
    """A number of layers before the iRBM, 0 to :data:`deem_core.model.training.MAX_LAYERS`."""
    from deem_core.model.training import MAX_LAYERS  # noqa: PLC0415

    _integer(text, f"expected {expected}")
    return _at_most(non_negative_int(text), MAX_LAYERS)


def epochs_count(text: str) -> int:
    """``--epochs``: 1 to :data:`deem_core.model.training.MAX_EPOCHS`."""
    from deem_core.model.training import MAX_EPOCHS  # noqa: PLC0415

    return _at_most(positive_int(text), MAX_EPOCHS)


def seeds_count(text: str) -> int:
    """``--seeds``: 1 to :data:`deem_core.model.training.MAX_SEEDS`."""
    from deem_core.model.training import MAX_SEEDS  # noqa: PLC0415

    return _at_most(positive_int(text), MAX_SEEDS)


def sampler_steps(text: str) -> int:
    """``--sampler-steps``: 0 to :data:`deem_core.model.training.MAX_SAMPLER_STEPS`."""
    from deem_core.model.training import MAX_SAMPLER_STEPS  # noqa: PLC0415

    return _at_most(non_negative_int(text), MAX_SAMPLER_STEPS)


def seed_value(text: str) -> int:
    value = _integer(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_SEED}, got {_shown(value)}")
    return value


def _finite(text: str) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {_quoted(text)}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {_as_typed(text)}")
    return value


def positive_float(text: str) -> float:
    value = _finite(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {_as_typed(text)}")
    return value


def non_negative_float(text: str) -> float:
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {_as_typed(text)}")
    return value


class GivenOption(argparse.Action):
    """Stores the value and records that the option was given (``<dest>_given``), so a command can tell an
    option typed with its default value from one left out."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        setattr(namespace, f"{self.dest}_given", True)


def prior_strength(text: str) -> float:
    """``--ds-prior``: a number from 0 to the largest strength accepted."""
    from deem_core.methods.dawid_skene import MAX_DS_PRIOR  # noqa: PLC0415

    value = non_negative_float(text)
    if value > MAX_DS_PRIOR:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_DS_PRIOR:,.0f}, got {_as_typed(text)}")
    return value


def learning_rate(text: str) -> str:
    """'auto' or a finite number > 0 (kept as text: the subcommands read it with :func:`parse_float_list`)."""
    from deem_core.model.training import MAX_LR  # noqa: PLC0415

    if str(text).strip().lower() == "auto":
        return "auto"
    if positive_float(text) > MAX_LR:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_LR:g}, got {_as_typed(text)}")
    return str(text).strip()


def device_name(text: str) -> str:
    """auto, cpu, cuda or cuda:N (whether a GPU is there is checked by :func:`check_arguments`)."""
    value = str(text).strip().lower()
    if value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit()):
        return value
    raise argparse.ArgumentTypeError(f"must be auto, cpu, cuda or cuda:N, got {_quoted(text)}")


# --------------------------------------------------------------------------- checks after parsing
def _usage(message: str):
    from deem_core.cli import UsageError  # noqa: PLC0415

    return UsageError(message)


def check_arguments(args: argparse.Namespace) -> None:
    """Checks that need more than one option or the machine, before any file is read: the device exists,
    option values the subcommands parse themselves are sane, and every output can be written."""
    device = getattr(args, "device", None)
    if isinstance(device, str) and device.startswith("cuda"):
        import torch  # noqa: PLC0415

        if not torch.cuda.is_available():
            raise _usage(f"--device {device}: no CUDA GPU is available here; use --device cpu or auto")
        index = int(device[5:]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise _usage(f"--device {device}: there {'is' if torch.cuda.device_count() == 1 else 'are'} only {counted(torch.cuda.device_count(), 'GPU')}")
    weight = getattr(args, "gold_weight", None)
    if weight is not None and not (math.isfinite(weight) and weight >= 0):
        raise _usage(f"--gold-weight must be a finite number >= 0, got {weight}")
    output = getattr(args, "output", None)
    if output:
        if getattr(args, "command", None) in ("sweep", "diagnose"):
            check_output_folder(output, "-o")
            # and each file written there (a folder or a pipe at recommendation.json failed once the sweep had run,
            # naming the folder, with curves.csv written; attack round 42)
            if args.command == "sweep":
                from deem_core.cli.sweep import SWEEP_FILES as files  # noqa: PLC0415
            else:
                from deem_core.plots.report import REPORT_FILES as files  # noqa: PLC0415
            check_folder_files(output, files.values(), "-o")
        else:
            check_output_file(output, "-o")
    model = getattr(args, "model", None)
    if model and getattr(args, "command", None) == "aggregate":
        check_output_file(model, "--model")
        if output and _same_file(model, output):  # (resolve() raised on a link loop: "this is a bug")
            raise _usage("--model and -o name the same file")
    # an output over an input replaced the annotations with the labels (or a model) and exited 0 (attack round,
    # ninth session)
    inputs = [*(getattr(args, "inputs", None) or []), getattr(args, "truth", None)]
    if getattr(args, "command", None) != "aggregate":
        inputs.append(model)  # (diagnose reads a saved model)
    outputs = [("-o", output), ("--model", model if getattr(args, "command", None) == "aggregate" else None)]
    folder = getattr(args, "command", None) in ("sweep", "diagnose")
    for option, target in outputs:
        for source in inputs:
            if not (target and source):
                continue
            if folder and option == "-o" and _inside(source, target):  # (its files are written into the folder)
                raise _usage(f"-o {escape_controls(target)}: holds the input file {escape_controls(source)}, which "
                             f"the files written there could replace (write to another folder)")
            if not folder and _same_file(target, source):
                raise _usage(f"{option} {escape_controls(target)}: is also an input file; it would be replaced "
                             f"(write to another file)")


def _inside(path: str | Path, folder: str | Path) -> bool:
    """Whether ``path`` lies in ``folder`` or below it (links resolved)."""
    try:
        return Path(path).resolve().is_relative_to(Path(folder).resolve())
    except (OSError, RuntimeError):  # a link loop: the read says so
        return False


def _same_file(one: str | Path, other: str | Path) -> bool:
    try:
        return os.path.samefile(one, other)
    except OSError:  # one of them does not exist (yet): the same path, once resolved
        try:
            return Path(one).resolve() == Path(other).resolve()
        except (OSError, RuntimeError):  # a link loop: the read says so
            return False


def _first_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path(".")


def _check_writable_folder(folder: Path, shown: str, option: str) -> None:
    existing = _first_existing(folder)
    if not existing.is_dir():
        raise _usage(f"{option} {shown}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise _usage(f"{option} {shown}: the folder {existing} is not writable")


def check_output_file(path: str | Path, option: str = "-o") -> None:
    """The file can be created or replaced: not a folder, under folders that exist (or can be made) and are
    writable. (A write can still fail later, e.g. a full disk: :func:`writing` reports that.)"""
    target = Path(path)
    shown = escape_controls(path)
    if target.is_dir():
        raise _usage(f"{option} {shown}: is a folder, not a file")
    if target.exists() and not os.access(target, os.W_OK):
        raise _usage(f"{option} {shown}: the file exists and is not writable")
    from deem_core.data.export import _written_in_place  # noqa: PLC0415

    if _written_in_place(target):  # a device or a pipe (/dev/null, /dev/stdout): written in place
        return
    _check_writable_folder(target.parent if str(target.parent) else Path("."), shown, option)


def check_output_folder(path: str | Path, option: str = "-o") -> None:
    target = Path(path)
    shown = escape_controls(path)
    if target.exists() and not target.is_dir():
        raise _usage(f"{option} {shown}: exists and is not a folder")
    _check_writable_folder(target, shown, option)


def check_folder_files(folder: str | Path, names: Any, option: str = "-o") -> None:
    """Each file a command writes into ``folder`` by ``names`` can be replaced there: no folder, pipe or device by
    that name, no file that is not writable."""
    for name in names:
        target = Path(folder) / name
        shown = escape_controls(target)
        if target.is_dir():
            raise _usage(f"{option} {escape_controls(folder)}: {shown} is a folder, where the file {name} is written")
        if target.exists() and not target.is_file():
            raise _usage(f"{option} {escape_controls(folder)}: {shown} is not a regular file (a pipe or a device), "
                         f"where the file {name} is written")
        if target.exists() and not os.access(target, os.W_OK):
            raise _usage(f"{option} {escape_controls(folder)}: {shown} exists and is not writable")


@contextlib.contextmanager
def writing(path: str | Path, what: str = "") -> Iterator[None]:
    """Around a write: an ``OSError`` (no space left, read-only, permission) becomes one :class:`OutputError`
    that names ``path`` (not the temporary file of the atomic write)."""
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OutputError(f"{what}could not write {escape_controls(path)}: {reason}") from exc


INPUT_FORMATS = ["auto", "long", "wide", "per-annotator", "mturk", "toloka", "label-studio", "label-studio-min",
                 "label-studio-csv"]


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="annotation file(s): long (task,worker,label), wide (task + one column per worker), one "
                             "file per worker (task,label), or a platform's export (Amazon Mechanical Turk batch "
                             "results, Toloka results, Label Studio JSON / JSON-MIN / CSV); CSV, TSV, JSON or Parquet, "
                             "gzipped or not")
    parser.add_argument("--format", default="auto", choices=INPUT_FORMATS,
                        help="input format (default: detected, and said in a 'read as' line)")
    parser.add_argument("--task-column", default=None, action="append",
                        help="the task column (default: detected); repeat it to key tasks by several columns "
                             "(e.g. MTurk Input.* columns); Label Studio JSON: id or data.<field>")
    parser.add_argument("--worker-column", default=None, help="the worker column (default: detected)")
    parser.add_argument("--label-column", default=None,
                        help="the label column, answer field (MTurk Answer.x, Toloka OUTPUT:x) or Label Studio control "
                             "(from_name) when there are several (default: chosen, and said in the 'read as' line)")
    parser.add_argument("--ignore-column", default=None, action="append", metavar="COLUMN",
                        help="a column that is no worker, left out of a wide file (a 'notes' or 'comment' column); "
                             "repeat it for several (columns named as dates, notes or item text are left out by "
                             "themselves, and said)")
    parser.add_argument("--no-predictions", action="store_true",
                        help="Label Studio: leave out model predictions (by default each model_version is a worker)")
    parser.add_argument("--keep-missing-labels", action="store_true",
                        help="keep labels spelled None, NaN, null, NA, N/A, <NA>, #N/A (any case) as answers instead of "
                             "dropping them as missing")
    parser.add_argument("--on-conflict", default="error", choices=["error", "first", "last"],
                        help="one worker giving one task different labels: stop (default) or keep one")
    parser.add_argument("--merge-spellings", action="store_true",
                        help="make labels that differ only in case, spaces or look-alike characters one class each, "
                             "written as the most given spelling (by default each spelling is a class, and said)")
    parser.add_argument("--max-input-bytes", default=None, metavar="SIZE",
                        help="refuse inputs larger than this once decompressed (e.g. 4G; default 1G or "
                             "DEEM_MAX_INPUT_BYTES)")
    parser.add_argument("--max-input-rows", default=None, metavar="N",
                        help="refuse inputs with more rows than this (default 20,000,000 or DEEM_MAX_INPUT_ROWS)")


def add_training_arguments(parser: argparse.ArgumentParser, lr_auto: bool = True) -> None:
    """DEEM's training options; every default is read from ``DEEM``'s signature."""
    from deem_core.methods.base import defaults_of  # noqa: PLC0415
    from deem_core.methods.deem import DEEM  # noqa: PLC0415
    from deem_core.methods.starts import INIT_METHODS  # noqa: PLC0415
    from deem_core.model.training import MAX_EPOCHS, MAX_LAYERS, MAX_SAMPLER_STEPS, MAX_SEEDS  # noqa: PLC0415

    default = defaults_of(DEEM)
    parser.add_argument("--layers", type=layers_argument, default=default["n_layers"],
                        help=f"multinomial layers before the iRBM, 0 to {MAX_LAYERS} (0 = iRBM; 'auto' chooses 0, 1 or 2 "
                             f"from held-out answers; default {default['n_layers']})")
    parser.add_argument("--epochs", type=epochs_count, default=default["epochs"],
                        help=f"training epochs, 1 to {MAX_EPOCHS:,} (default {default['epochs']})")
    parser.add_argument("--max-updates", type=update_budget, default=default["max_updates"],
                        help=f"the most mini-batch updates per run: on large data fewer epochs train, as many as fit "
                             f"(at least one); 'none': no budget (default {default['max_updates']:,})")
    parser.add_argument("--lr", default=str(default["lr"]), type=learning_rate,
                        help=f"learning rate (default {default['lr']})" + ("; 'auto' runs a sweep first" if lr_auto else ""))
    parser.add_argument("--batch-size", type=positive_int, default=default["batch_size"],
                        help=f"tasks per mini-batch (default {default['batch_size']})")
    parser.add_argument("--sampler-steps", type=sampler_steps, default=default["sampler_steps"],
                        help=f"DMALA steps per mini-batch, 0 to {MAX_SAMPLER_STEPS:,} (default {default['sampler_steps']})")
    parser.add_argument("--init", default=default["init"], choices=list(INIT_METHODS),
                        help="start from Dawid-Skene (ds) or majority vote (mv); auto: both train on the answers "
                             "left after holding 10%% out and the one that predicts the held-out answers better is "
                             "kept (with gold labels, --truth and --gold-weight, gold decides); "
                             f"default {default['init']}")
    parser.add_argument("--ds-prior", type=prior_strength, default=default["ds_prior"], action=GivenOption,
                        help=f"the shared prior of DEEM's Dawid-Skene start (and of --method ds_shared): pseudo-answers "
                             f"per true class that pull a worker with few answers towards the crowd's typical worker; "
                             f"0 = plain Dawid-Skene; --method ds is always plain (default {default['ds_prior']:g})")
    parser.add_argument("--seed", type=seed_value, default=default["seed"], help=f"first seed (default {default['seed']})")
    parser.add_argument("--seeds", type=seeds_count, default=default["n_seeds"],
                        help=f"independent runs trained together (consensus; 1 to {MAX_SEEDS}, "
                             f"default {default['n_seeds']})")
    parser.add_argument("--device", default=default["device"], type=device_name, help="auto (GPU when available), cpu or cuda")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def input_limits(args: argparse.Namespace):
    """The read limits from --max-input-bytes / --max-input-rows (and the environment)."""
    from deem_core.cli import UsageError  # noqa: PLC0415
    from deem_core.data.formats.limits import Limits, parse_size  # noqa: PLC0415

    try:
        max_bytes = parse_size(args.max_input_bytes, "--max-input-bytes") if getattr(args, "max_input_bytes", None) \
            else None
        max_rows = getattr(args, "max_input_rows", None)
        max_rows = int(str(max_rows).replace(",", "").replace("_", "")) if max_rows else None
    except ValueError as exc:
        raise UsageError(str(exc) if "must" in str(exc) else f"--max-input-rows must be a whole number, got "
                         f"{_quoted(args.max_input_rows)}") from None
    if max_rows is not None and max_rows <= 0:
        raise UsageError(f"--max-input-rows must be positive, got {_quoted(args.max_input_rows)}")
    return Limits.from_env(max_bytes=max_bytes, max_rows=max_rows)


def read_input(args: argparse.Namespace):
    """Read the INPUT files with the format/column options: returns a Reading (annotation set, format, note,
    gold labels the export carries, Label Studio context). Prints the 'read as' note and the warnings."""
    from deem_core.data.annotations import DataError  # noqa: PLC0415
    from deem_core.data.formats import read_dataset  # noqa: PLC0415

    task = args.task_column
    if isinstance(task, list):
        task = task[0] if len(task) == 1 else task
    columns = {key: value for key, value in (("task", task), ("worker", args.worker_column),
                                              ("label", args.label_column),
                                              ("ignore", getattr(args, "ignore_column", None))) if value}
    fmt = args.format.replace("-", "_")
    options = dict(format=fmt, columns=columns or None, keep_missing=getattr(args, "keep_missing_labels", False),
                   predictions=not getattr(args, "no_predictions", False), limits=input_limits(args))
    try:
        reading = read_dataset(args.inputs, on_conflict=args.on_conflict, **options)
    except DataError as exc:
        # one answer spelled two ways by one worker ("dog", "DOG") stopped the read with --merge-spellings asked for
        # (walkthrough 117): merged, the two are one answer repeated; the first is kept, as a repeat is
        if not (getattr(args, "merge_spellings", False) and getattr(exc, "spelled_alike", False)):
            raise
        reading = read_dataset(args.inputs, on_conflict="first", **options)
    merged = False
    if getattr(args, "merge_spellings", False):
        before = reading.data
        reading.data = reading.data.with_spellings_merged()
        reading.gold = reading.data.spelled_as_merged(reading.gold)
        merged = reading.data is not before
    say(reading.note)
    for i, message in enumerate(reading.data.warnings):
        (say if merged and i == 0 else warn)(message)  # (the merge asked for is no warning; walkthrough 116)
    # workers who answered alike on every shared task, and workers of one label for everything: the dashboard said
    # them, the command line not (walkthrough 118); 0.7 s on 10 M answers
    from deem_core.analysis.agreement import worker_warnings  # noqa: PLC0415

    for message in worker_warnings(reading.data, CONSTANT_THEN):
        warn(message)
    return reading


#: what the warning of workers who gave one label for everything ends with on the command line
CONSTANT_THEN = "deem diagnose flags these workers; you may leave them out of the file."


def read_truth_input(args: argparse.Namespace, data: Any, limits: Any = None):
    """The ``--truth`` file read against ``data`` (None without one), with a line saying which columns were read as
    the task and the truth: a file of ``task,gold`` was read silently (any two columns are, the task first;
    walkthrough 64)."""
    from deem_core.data.readers import read_truth  # noqa: PLC0415
    from deem_core.data.text import escape_controls  # noqa: PLC0415

    if not args.truth:
        return None
    truth = read_truth(args.truth, like=data, limits=limits)
    # (a 5,000-character column name printed whole; attack round 45)
    task, label = (escape_controls(shortened(c, 40)) for c in truth.attrs.get("columns", ("task", "truth")))
    say(f"truth: read {counted(len(truth), 'label')} from {escape_controls(Path(args.truth).name)} (column {task!r} as the "
        f"task, {label!r} as the truth)")
    return truth


def no_task_quoted(value: Any) -> str:
    """A task id in a truth warning: cut, its controls escaped, in quotes (!r after the escapes doubled their
    backslashes; the diff's read)."""
    from deem_core.data.text import escape_controls, shortened  # noqa: PLC0415

    return "'" + escape_controls(shortened(value, 40)) + "'"


def no_task_text(truth: Any, tasks: Any) -> str:
    """The warning for a truth file that names no annotated task: both first ids and what to do (a truth keyed by
    MTurk's HITId beside tasks read from Input.image_url was said without either; walkthrough 81)."""
    firsts = (f" (its first: {no_task_quoted(truth.index[0])}; the input's first task: {no_task_quoted(tasks[0])})"
              if len(truth) and len(tasks) else "")
    return (f"no task of the truth file is among the annotated tasks{firsts}: no accuracy; if another column of the "
            f"input names the tasks, give it with --task-column")


def truth_for(args: argparse.Namespace, reading: Any, data: Any) -> Any:
    """The truth labels that score the methods (None without any): the ``--truth`` file, read with the input's limits,
    else the input's own gold labels; those of no class left out (:func:`usable_truth`), a truth naming no annotated
    task warned of, and whose truth it is said. One choice for every command that scores (``deem baselines`` read the
    file without the input's limits and printed "NaN" silently for a truth of other tasks; read 53)."""
    given = read_truth_input(args, data, input_limits(args)) if args.truth else reading.gold
    if args.truth:  # (the input's own gold labels were when it was read)
        given = data.spelled_as_merged(given)
    if given is not None and len(given):
        annotated = given.index.isin(data.tasks)
        if not annotated.any():
            warn(no_task_text(given, data.tasks))
        elif not annotated.all():  # (left out without a word: "accuracy on the 3,000 tasks" was all; walkthrough 111)
            n = int((~annotated).sum())
            warn(f"{counted(n, 'truth label')} {'names a task' if n == 1 else 'name tasks'} nobody annotated (e.g. "
                 f"{no_task_quoted(given.index[~annotated][0])}): left out of the accuracy")
            # the classes then read on the others: a label of no class on a task nobody annotated was counted in both
            # warnings (11 + 2 of 12 left out; the dashboard said 2 and 10 more; walkthrough 112)
            given = given[annotated]
    truth = usable_truth(given, data)
    say_truth_source(args, reading, truth)
    return truth


def say_truth_source(args: argparse.Namespace, reading: Any, truth: Any) -> None:
    """Whose truth labels score the methods: the input's own gold labels (a platform export's) where ``--truth`` is
    not given, or the ``--truth`` file in their place (replaced, not merged: neither was said; walkthrough 22)."""
    if truth is not None and not args.truth:
        from deem_core.data.formats.dialects import CONTROL_TASKS  # noqa: PLC0415

        say(f"using the {counted(len(truth), 'gold label')} of the input as truth"
            + (f" ({CONTROL_TASKS})" if truth.attrs.get("control") else ""))
    elif args.truth and reading.gold is not None:
        say(f"using {Path(args.truth).name} as truth, in place of the {counted(len(reading.gold), 'gold label')} of the "
            f"input")


def load_input(args: argparse.Namespace):
    """Read the INPUT files with the format/column options: returns an AnnotationSet."""
    return read_input(args).data


def parse_float_list(text: str, what: str, maximum: float | None = None) -> list[float]:
    from deem_core.cli import UsageError  # noqa: PLC0415

    try:
        values = [float(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"{what} must be comma-separated numbers, got {_quoted(text)}") from None
    if not values or any(not (math.isfinite(v) and v > 0) for v in values):
        raise UsageError(f"{what} must be positive finite numbers, got {_quoted(text)}")
    if maximum is not None and max(values) > maximum:
        raise UsageError(f"{what} must be at most {maximum:g}, got {_quoted(text)}")
    return values


def print_selection(model, stream=None) -> None:
    """The start/depth choice and its evidence (criterion per candidate) as plain lines on ``stream`` (default:
    standard error, looked up when called)."""
    from deem_core.analysis.selection import selection_lines  # noqa: PLC0415

    from deem_core.analysis.selection import safety_rule_reference  # noqa: PLC0415

    summary = model.selection_summary()
    for line in selection_lines(summary):
        say(line if line.startswith("  ") else f"choice: {line}", stream)
    # (how to train DEEM's own model: said nowhere; walkthrough 50) - with gold labels a set start is checked too
    # (the hint led back to the same labels; walkthrough 60)
    if safety_rule_reference(summary.get("fallback")):
        say("choice: " + ("" if summary.get("heldout_answers") is not None else "--gold-weight 0 and ")
            + "--init ds (or mv) with a number of --layers trains DEEM's own model without this check (nothing "
            "held out, no reference compared)", stream)


def say_verdicts(recommendation, picked: str = "taken", taken: float | None = None) -> None:
    """Each learning rate of a sweep with its verdict and why, one line each on stderr (``deem sweep`` wrote them to
    recommendation.json only, and ``deem aggregate --lr auto`` said the rate it took and nothing of the others;
    walkthrough 100); the rate picked marked with ``picked`` ("<- taken" where it trains the model; walkthrough 101
    read it in ``deem sweep``, which trains nothing). ``taken``: the rate the model took where it is not the
    recommendation's (none recommended: the default rate's runs; read 53)."""
    chosen = recommendation.lr if taken is None else taken
    for lr, verdict in sorted(recommendation.verdicts.items()):
        mark = f" <- {picked}" if chosen is not None and lr == chosen else ""
        # (a reason that opens with the verdict's own words is not said twice: "hardly learns: hardly learns: ...";
        # walkthrough 103)
        reason = verdict.reason
        said = reason if reason.startswith(f"{verdict.label}:") else f"{verdict.label}: {reason}"
        say(f"  lr {lr:g}: {said}{mark}")


def report_sweep(model, returned: str | None = None) -> None:
    """What ``lr='auto'``'s sweep did, on stderr: its rates, seeds and epochs, each rate's verdict and why the rate
    taken was taken (a tentative or least-bad pick said as such). ``returned``: the reference whose labels the
    gold-label check returned instead of the sweep's runs (it read "its runs are the model" there; read 51)."""
    sweep = getattr(model, "sweep_", None)
    if sweep is None:
        return
    rec = sweep.recommendation
    rates = ", ".join(f"{lr:g}" for lr in sweep.lrs)
    say(f"learning-rate sweep: {counted(len(sweep.lrs), 'rate')} ({rates}) x {counted(len(sweep.seeds), 'seed')}, "
        f"{sweep.epochs} epochs, trained at once; each rate's energy curves read by the paper's rules (App. G.4.1):")
    say_verdicts(rec, taken=getattr(model, "lr_", None))
    said = (f"its runs were trained, and the gold-label check returned {returned}'s labels in their place" if returned
            else "its runs are the model (no second training)")
    if rec.lr is None:  # (none recommended: the default rate's runs taken, the reason in the fit's warning below)
        say(f"no rate is recommended; lr {model.lr_:g}, the default, is taken: {said}")
        return
    kind = ("the least bad (no rate passed every check)" if rec.fallback else
            "recommended" if rec.settled else "a tentative pick")
    say(f"lr {rec.lr:g} is {kind}: {rec.reason}; {said}")


def report_fit(name: str, model, data=None) -> None:
    """What a fitted DEEM is, on stderr: its learning rate, epochs, start and layers (or the fallback its labels come
    from), the choice and its evidence, its warnings from fitting (those of ``data``, the annotation set it was fitted
    on, were printed when it was read), its runs' messages and dead units."""
    from deem_core.analysis.selection import safety_rule_reference  # noqa: PLC0415

    prior = f" (shared prior {model.ds_prior:g})" if model.init_ == "ds" and model.ds_prior else ""
    returned = safety_rule_reference(model.fallback_)
    if returned:  # no candidate is the model
        say(f"{name}: lr {model.lr_:g}; the labels come from {returned}, returned by the safety rule; "
            f"{model.fit_seconds_:.1f} s on {model.device_}")
    else:
        say(f"{name}: lr {model.lr_:g}, {model.n_epochs_} epoch{'' if model.n_epochs_ == 1 else 's'}, start "
            f"{model.init_}{prior}, {counted(model.n_layers_, 'layer')}, {model.fit_seconds_:.1f} s on {model.device_}")
    report_sweep(model, returned)
    print_selection(model)
    # what fitting itself noted (e.g. the layers not chosen with --lr auto, a smaller batch after running out of
    # memory); they were kept in the model and never printed (walkthrough 45). The safety rule's was said above.
    read = set(getattr(data, "warnings", ()) or ())
    from deem_core.analysis.selection import FOLLOWED  # noqa: PLC0415

    for message in model.warnings_:
        if message not in read and not message.startswith("the safety rule returned"):
            # (how to train the method it names; walkthrough 85)
            warn(message + (" (deem aggregate --method cwds)" if message.startswith(FOLLOWED) else ""))
    for message in model.run_messages_:
        if message:
            warn(message)
    if model.dead_units_:
        import numpy as np  # noqa: PLC0415

        from deem_core.analysis.selection import dead_units_text  # noqa: PLC0415

        codes = np.asarray(model.posterior_).argmax(axis=1)
        warn((data is not None and len(codes) == data.n_tasks and dead_units_text(data, codes))
             or f"the model predicts {counted(model.dead_units_, 'fewer class', 'fewer classes')} than majority vote "
                f"finds (dead units); try a smaller learning rate")


class ProgressBar:
    """A training callback showing progress on stderr (``on_epoch_end`` never stops training): a tqdm bar on a
    terminal; on a pipe or a file, a plain line every :attr:`LINE_EVERY_S` seconds and at the end (the bar's
    carriage returns made a piped log one line of kilobytes; walkthrough, tenth session)."""

    LINE_EVERY_S = 30.0

    def __init__(self, total: int, description: str = "training", disable: bool = False):
        self.total, self.description, self.done = int(total), description, 0
        self.lines = not disable and not getattr(sys.stderr, "isatty", lambda: False)()
        self.bar = tqdm(total=total, desc=description, unit="epoch", file=sys.stderr, disable=disable or self.lines,
                        dynamic_ncols=True)
        self.started = time.monotonic()
        self.next_line = self.started + self.LINE_EVERY_S

    def on_epoch_end(self, epoch: int, logs: list[dict[str, Any]]) -> bool:
        alive = [row for row in logs if row["status"] == "running"]
        if alive:
            self.bar.set_postfix(energy_diff=f"{alive[0]['energy_difference']:.3f}",
                                 accept=f"{alive[0]['acceptance_rate']:.2f}")
        self.bar.update(1)
        self.done += 1
        now = time.monotonic()
        if self.lines and (now >= self.next_line or self.done == self.total):
            self.next_line = now + self.LINE_EVERY_S
            energy = f", energy difference {alive[0]['energy_difference']:.3f}" if alive else ""
            spent = now - self.started
            # the time left at this run's own pace so far (a piped log had no estimate at all; the bar shows one)
            left = f", about {spent / self.done * (self.total - self.done):.0f} s left" if self.done < self.total else ""
            say(f"{self.description}: epoch {self.done:,} of {self.total:,} "
                f"({100 * self.done / max(1, self.total):.0f}%), {spent:.0f} s{left}{energy}")
        return False

    def on_restart(self, epoch: int) -> None:
        """A training restarted after a collapse: the epochs after ``epoch`` are counted again."""
        self.done = min(self.done, int(epoch))
        self.bar.n = self.done
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def say_tie_luck(data: Any, labels: Any, truth: Any) -> None:
    """Beside majority vote's accuracy: how much of it its tie rule's class order won (walkthrough 82)."""
    from deem_core.analysis.scoring import accuracy_and_count, tie_luck, tie_luck_text  # noqa: PLC0415

    luck = tie_luck(data, labels, truth)
    if luck is not None:
        say(f"({tie_luck_text(luck, accuracy_and_count(labels, truth)[1], 'tasks that have a truth', percent=True)})")


def usable_truth(truth: Any, data: Any) -> Any:
    """``truth`` without the labels that are no class of the answers, said in a warning (counted as every method's
    wrong answer, they took an accuracy from 0.853 to 0.640; walkthrough 36; ``deem baselines`` still scored them,
    0.0 for every method and a tie line counting them; attack round 45)."""
    if truth is None:
        return None
    from deem_core.analysis.scoring import left_out_text, truth_of_classes  # noqa: PLC0415

    truth = truth_of_classes(truth, data.classes)
    if truth.attrs.get("not_classes"):
        n = int(truth.attrs["not_classes"])
        warn(f"{counted(n, 'truth label')} {'is' if n == 1 else 'are'} not among the classes of the answers "
             f"({left_out_text(truth.attrs)}): left out of the accuracy")
    return truth
