"""``deem baselines INPUT... [--methods mv,ds,glad] [--truth T] [-o OUT]``: classic aggregators (crowd-kit)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from deem_core.cli.common import (add_input_arguments, read_input, say, say_tie_luck, seed_value, truth_for, warn,
                                  writing)
from deem_core.data.text import counted, in_natural_order

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    from deem_core.methods.registry import method_keys  # noqa: PLC0415

    parser = subparsers.add_parser(
        "baselines", help="run classic aggregators (majority vote, Dawid-Skene, GLAD, ...)",
        description="Run crowd-kit's classic aggregators on the annotations; print a table of accuracy (with "
                    "--truth) and wall time, and optionally write every method's labels.")
    add_input_arguments(parser)
    parser.add_argument("--methods", default="mv,ds,glad",
                        help=f"comma-separated, from: {', '.join(method_keys(trains=False))}; or all (default "
                             f"mv,ds,glad)")
    parser.add_argument("--truth", default=None, help="CSV task,truth to score the methods")
    parser.add_argument("--seed", type=seed_value, default=0)
    parser.add_argument("-o", "--output", default=None, help="CSV with one column of labels per method")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import pandas as pd  # noqa: PLC0415

    from deem_core.methods.baselines import run_baselines  # noqa: PLC0415
    from deem_core.methods.registry import method_keys  # noqa: PLC0415
    from deem_core.data.export import write_csv  # noqa: PLC0415
    from deem_core.cli import UsageError  # noqa: PLC0415

    methods = [m.strip().lower() for m in args.methods.split(",") if m.strip()]
    classic = method_keys(trains=False)
    if methods == ["all"]:  # (refused as an unknown method; walkthrough 112)
        methods = list(classic)
    unknown = [m for m in methods if m not in classic]
    if unknown or not methods:
        raise UsageError(f"unknown method(s) {', '.join(unknown) or '(none given)'}; choose from "
                         f"{', '.join(classic)}")
    reading = read_input(args)
    data = reading.data
    # the input's own gold labels (a Toloka or Label Studio export's) where --truth is not given, as `deem aggregate`
    # reads them (they were left unread here, no accuracy shown; walkthrough 105)
    truth = truth_for(args, reading, data)
    if truth is not None and not len(truth):
        warn("no truth label is left to score with: no accuracy")
    labels: dict[str, pd.Series] = {}

    from deem_core.methods.registry import display_name  # noqa: PLC0415

    started = {}

    def begin(method):  # (GLAD ran 10 minutes on 40,000 tasks with nothing on the screen; walkthrough 45)
        started[method] = time.perf_counter()
        say(f"{display_name(method)}: fitting on {data.n_answers:,} answers of {data.n_tasks:,} tasks ...")

    def keep(method, aggregator):
        if aggregator is not None:
            labels[method] = aggregator.labels_
        say(f"{display_name(method)}: {'done' if aggregator is not None else 'failed'} in "
            f"{time.perf_counter() - started[method]:.1f} s")

    table = run_baselines(data, methods, truth=truth, seed=args.seed, on_result=keep, on_start=begin)
    # (two decimals always, as every other table prints them: a lone 95.20 read "95.2"; walkthrough 110)
    # a failure's message below the table, not in a column: its width padded every row to 150 characters, and its
    # exception's name stood before it ("ValueError: kos supports only 2 classes"; walkthrough 112)
    failed = table["error"].notna()
    shown = table.assign(accuracy=table["accuracy"].map(lambda v: f"{v:.2f}" if v == v else ""),
                         seconds=table["seconds"].round(3),
                         # (a method that ran read "None" there beside one that failed; walkthrough 111)
                         error=failed.map({True: "failed (below)", False: ""}))
    # (without a truth file every row read "NaN" and "None", as if every method had failed; walkthrough 46)
    # (and where no truth label is left once those that are no class are out: a NaN in every row; the diff's read)
    # (nor where none of them is of an annotated task: a column of NaN under the warning that said so; walkthrough 109)
    scored = truth is not None and len(truth) > 0 and bool(truth.index.isin(data.tasks).any())
    shown = shown.drop(columns=[c for c, empty in (("accuracy", not scored), ("error", table["error"].isna().all()))
                                if empty])
    print(shown.to_string(index=False))
    if failed.any() and not failed.all():
        for row in table[failed].itertuples():
            warn(f"{display_name(row.method)} did not run: {_message(row.error)}")
    if truth is not None and "mv" in labels:
        say_tie_luck(data, labels["mv"], truth)
    if not table["error"].isna().any():
        # no method ran: one error line, and no empty file in place of the output (exit 1 with no error line, and an
        # empty file written; attack round 20)
        from deem_core.data.annotations import DataError  # noqa: PLC0415

        said = "; ".join(f"{row.method}: {_message(row.error)}" for row in table.itertuples())
        raise DataError(f"no method could run on these data ({said})"
                        + ("; nothing was written" if args.output else ""))
    if args.output:
        frame = in_natural_order(pd.DataFrame(labels))  # (as the dashboard's files: q2 before q10; walkthrough 108)
        frame.index.name = "task"
        with writing(args.output):
            write_csv(frame, Path(args.output))
        say(f"wrote {counted(len(frame), 'task')} x {counted(len(labels), 'method')} to {args.output}")
    return 0


def _message(error: str) -> str:
    """A method's failure as the user reads it: the message, without the name of a ValueError (DataError's too)."""
    kind, _, message = str(error).partition(": ")
    return message if kind in ("ValueError", "DataError") and message else str(error)
