"""``deem aggregate INPUT... -o OUT``: train DEEM and write one aggregated label per task."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import ProgressBar, add_input_arguments, add_training_arguments, load_input

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "aggregate", help="aggregate labels with DEEM",
        description="Train DEEM on the annotations and write the aggregated label, confidence and class "
                    "probabilities of every task.")
    add_input_arguments(parser)
    add_training_arguments(parser)
    parser.add_argument("-o", "--output", required=True,
                        help="output file; the extension picks the format: .csv (spreadsheet-safe), .parquet, .json")
    parser.add_argument("--model", default=None, help="also save the fitted model to this file")
    parser.add_argument("--truth", default=None, help="CSV task,truth: report accuracy (and use as gold with --gold-weight)")
    parser.add_argument("--gold-weight", type=float, default=0.0,
                        help="weight of the supervised term on --truth labels (default 0: truth only scores)")
    parser.set_defaults(func=run)


def write_labels(results, path: Path) -> Path:
    from ..export import write_csv, write_json, write_parquet  # noqa: PLC0415
    from . import UsageError  # noqa: PLC0415

    suffix = "".join(path.suffixes[-1:]).lower()
    if suffix == ".csv":
        return write_csv(results, path)
    if suffix == ".parquet":
        return write_parquet(results, path)
    if suffix == ".json":
        records = results.reset_index().to_dict(orient="records")
        return write_json(records, path)
    raise UsageError(f"cannot tell the output format from {path.name!r}: use .csv, .parquet or .json")


def run(args: argparse.Namespace) -> int:
    from ..estimator import DEEM  # noqa: PLC0415
    from ..io import read_truth  # noqa: PLC0415
    from .common import parse_float_list  # noqa: PLC0415

    output = Path(args.output)
    if output.suffix.lower() not in (".csv", ".parquet", ".json"):
        from . import UsageError  # noqa: PLC0415

        raise UsageError(f"cannot tell the output format from {output.name!r}: use .csv, .parquet or .json")
    data = load_input(args)
    truth = read_truth(args.truth, like=data) if args.truth else None
    lr = "auto" if str(args.lr).lower() == "auto" else parse_float_list(args.lr, "--lr")[0]
    progress = ProgressBar(args.epochs, "DEEM", disable=args.no_progress)
    model = DEEM(n_layers=args.layers, epochs=args.epochs, lr=lr, batch_size=args.batch_size, init=args.init,
                 n_seeds=args.seeds, seed=args.seed, device=args.device, supervised_weight=args.gold_weight,
                 callbacks=[progress])
    try:
        model.fit(data, gold=truth if (truth is not None and args.gold_weight > 0) else None)
    finally:
        progress.close()
    results = model.results_frame()
    write_labels(results, output)
    if args.model:
        model.save(args.model)
    print(f"wrote {len(results)} labels to {output} (lr {model.lr_:g}, {model.n_epochs_} epochs, "
          f"{model.fit_seconds_:.1f} s on {model.device_})", file=sys.stderr)
    for status, message in zip(model.run_status_, model.run_messages_):
        if message:
            print(f"warning: {message}", file=sys.stderr)
    if model.dead_units_:
        print(f"warning: the model predicts {model.dead_units_} fewer class(es) than majority vote finds "
              f"(dead units); try a smaller learning rate", file=sys.stderr)
    if truth is not None:
        common = results.index.intersection(truth.index)
        accuracy = float((results.loc[common, "agg_label"].to_numpy() == truth.loc[common].to_numpy()).mean())
        print(f"accuracy on {len(common)} truth task(s): {accuracy:.4f}", file=sys.stderr)
    return 0
