"""Options and helpers shared by the subcommands (input files, training options, progress bar)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tqdm.auto import tqdm

__all__ = ["add_input_arguments", "add_training_arguments", "load_input", "ProgressBar", "parse_float_list"]


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="annotation file(s): long (task,worker,label), wide (task + one column per "
                             "annotator) or one file per annotator (task,label); .csv or .csv.gz")
    parser.add_argument("--format", default="auto", choices=["auto", "long", "wide", "per-annotator"],
                        help="input layout (default: detected)")
    parser.add_argument("--task-column", default=None, help="name of the task column (default: detected)")
    parser.add_argument("--worker-column", default=None, help="name of the annotator column (long format)")
    parser.add_argument("--label-column", default=None, help="name of the label column (long format)")
    parser.add_argument("--on-conflict", default="error", choices=["error", "first", "last"],
                        help="one annotator giving one task different labels: stop (default) or keep one")


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


def load_input(args: argparse.Namespace):
    """Read the INPUT files with the format/column options: returns an AnnotationSet."""
    from deem_core.data.readers import read_annotations  # noqa: PLC0415

    columns = {key: value for key, value in (("task", args.task_column), ("worker", args.worker_column),
                                              ("label", args.label_column)) if value}
    fmt = args.format.replace("-", "_")
    loaded = read_annotations(args.inputs, format=fmt, columns=columns or None, on_conflict=args.on_conflict)
    for message in loaded.warnings:
        print(f"warning: {message}", file=sys.stderr)
    return loaded


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
