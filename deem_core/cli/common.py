"""Options and helpers shared by the subcommands (input files, training options, progress bar)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tqdm.auto import tqdm

__all__ = ["add_input_arguments", "add_training_arguments", "input_limits", "load_input", "read_input", "ProgressBar",
           "parse_float_list"]


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
    parser.add_argument("--no-predictions", action="store_true",
                        help="Label Studio: leave out model predictions (by default each model_version is a worker)")
    parser.add_argument("--keep-missing-labels", action="store_true",
                        help="keep labels spelled None, NaN, null, NA, N/A, <NA>, #N/A (any case) as answers instead of "
                             "dropping them as missing")
    parser.add_argument("--on-conflict", default="error", choices=["error", "first", "last"],
                        help="one worker giving one task different labels: stop (default) or keep one")
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

    default = defaults_of(DEEM)
    parser.add_argument("--layers", type=int, default=default["n_layers"],
                        help=f"multinomial layers before the iRBM (0 = iRBM; default {default['n_layers']})")
    parser.add_argument("--epochs", type=int, default=default["epochs"],
                        help=f"training epochs (default {default['epochs']})")
    parser.add_argument("--lr", default=str(default["lr"]),
                        help=f"learning rate (default {default['lr']})" + ("; 'auto' runs a sweep first" if lr_auto else ""))
    parser.add_argument("--batch-size", type=int, default=default["batch_size"],
                        help=f"tasks per mini-batch (default {default['batch_size']})")
    parser.add_argument("--sampler-steps", type=int, default=default["sampler_steps"],
                        help=f"DMALA steps per mini-batch (default {default['sampler_steps']})")
    parser.add_argument("--init", default=default["init"], choices=list(INIT_METHODS),
                        help="start from Dawid-Skene (ds) or majority vote (mv); auto: ds unless the annotators "
                             "agree more than Dawid-Skene predicts, then mv (with gold labels, --truth and "
                             f"--gold-weight, both are trained and gold may overrule); default {default['init']}")
    parser.add_argument("--seed", type=int, default=default["seed"], help=f"first seed (default {default['seed']})")
    parser.add_argument("--seeds", type=int, default=default["n_seeds"],
                        help=f"independent runs trained together (consensus; default {default['n_seeds']})")
    parser.add_argument("--device", default=default["device"], help="auto (GPU when available), cpu or cuda")
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
                         f"{args.max_input_rows!r}") from None
    if max_rows is not None and max_rows <= 0:
        raise UsageError(f"--max-input-rows must be positive, got {args.max_input_rows!r}")
    return Limits.from_env(max_bytes=max_bytes, max_rows=max_rows)


def read_input(args: argparse.Namespace):
    """Read the INPUT files with the format/column options: returns a Reading (annotation set, format, note,
    gold labels the export carries, Label Studio context). Prints the 'read as' note and the warnings."""
    from deem_core.data.formats import read_dataset  # noqa: PLC0415
    from deem_core.data.formats.sources import printable  # noqa: PLC0415

    task = args.task_column
    if isinstance(task, list):
        task = task[0] if len(task) == 1 else task
    columns = {key: value for key, value in (("task", task), ("worker", args.worker_column),
                                              ("label", args.label_column)) if value}
    fmt = args.format.replace("-", "_")
    reading = read_dataset(args.inputs, format=fmt, columns=columns or None, on_conflict=args.on_conflict,
                           keep_missing=getattr(args, "keep_missing_labels", False),
                           predictions=not getattr(args, "no_predictions", False), limits=input_limits(args))
    print(printable(reading.note), file=sys.stderr)
    for message in reading.data.warnings:
        print(f"warning: {printable(message)}", file=sys.stderr)
    return reading


def load_input(args: argparse.Namespace):
    """Read the INPUT files with the format/column options: returns an AnnotationSet."""
    return read_input(args).data


def parse_float_list(text: str, what: str) -> list[float]:
    from deem_core.cli import UsageError  # noqa: PLC0415

    try:
        values = [float(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"{what} must be comma-separated numbers, got {text!r}") from None
    if not values or any(not v > 0 for v in values):
        raise UsageError(f"{what} must be positive numbers, got {text!r}")
    return values


class ProgressBar:
    """A training callback drawing a tqdm bar on stderr (``on_epoch_end`` never stops training)."""

    def __init__(self, total: int, description: str = "training", disable: bool = False):
        self.bar = tqdm(total=total, desc=description, unit="epoch", file=sys.stderr, disable=disable,
                        dynamic_ncols=True)

    def on_epoch_end(self, epoch: int, logs: list[dict[str, Any]]) -> bool:
        alive = [row for row in logs if row["status"] == "running"]
        if alive:
            self.bar.set_postfix(energy_diff=f"{alive[0]['energy_difference']:.3f}",
                                 accept=f"{alive[0]['acceptance_rate']:.2f}")
        self.bar.update(1)
        return False

    def close(self) -> None:
        self.bar.close()
