"""``deem sweep INPUT... -o DIR``: train a grid of learning rates at once and recommend one (App. G.4.1).

Writes ``DIR/curves.csv`` (run, lr, seed, epoch, positive_energy, negative_energy, energy_difference,
acceptance_rate), ``DIR/recommendation.json`` (``{"lr": ..., "verdicts": {"<lr>": {"keep", "reason"}}}``)
and ``DIR/curves.html`` (interactive plotly figure: energy difference, positive and negative energy per
learning rate, the recommended one drawn thick).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from deem_core.cli.common import (ProgressBar, add_input_arguments, device_name, epochs_count, layers_count,
                                  load_input, non_negative_int, number, parse_float_list, positive_int, sampler_steps,
                                  say, say_verdicts, seed_value, seeds_count, warn, writing)

__all__ = ["SWEEP_FILES", "add_parser", "run", "write_sweep"]


def add_parser(subparsers) -> None:
    from deem_core.methods.base import defaults_of  # noqa: PLC0415
    from deem_core.methods.sweep import (DEFAULT_LRS, MIN_JUDGED_UPDATES, SAMPLE_ABOVE, SAMPLE_TASKS,  # noqa: PLC0415
                                         run_sweep)
    from deem_core.model.training import MAX_EPOCHS, MAX_LAYERS, MAX_SAMPLER_STEPS, MAX_SEEDS  # noqa: PLC0415

    default = defaults_of(run_sweep)  # every default below is run_sweep's own
    grid = ",".join(f"{lr:g}" for lr in DEFAULT_LRS)
    parser = subparsers.add_parser(
        "sweep", help="train a grid of learning rates and recommend one",
        description="Train every learning rate of a grid (x seeds) as one batched model, write the energy "
                    "curves and recommend a learning rate by the paper's rules (App. G.4.1).")
    add_input_arguments(parser)
    parser.add_argument("-o", "--output", required=True, metavar="DIR",
                        help="output folder (created): curves.csv, recommendation.json, curves.html")
    parser.add_argument("--lrs", default=grid, help=f"comma-separated learning rates (default {grid})")
    # (the default as the Sweep page's: 50, or as many as make 200 updates a run on a small set; walkthrough 77)
    parser.add_argument("--epochs", type=epochs_count, default=None,
                        help=f"epochs per run, 1 to {MAX_EPOCHS:,} (default {default['epochs']}, or as many as make "
                             f"{MIN_JUDGED_UPDATES} updates a run where an epoch makes fewer: 200 on 1,024 tasks or "
                             f"fewer)")
    parser.add_argument("--seeds", type=seeds_count, default=default["n_seeds"],
                        help=f"seeds per learning rate (1 to {MAX_SEEDS}, default {default['n_seeds']})")
    parser.add_argument("--seed", type=seed_value, default=default["seed"], help=f"first seed (default {default['seed']})")
    parser.add_argument("--layers", type=layers_count, default=default["n_layers"],
                        help=f"multinomial layers before the iRBM, 0 to {MAX_LAYERS} (default {default['n_layers']})")
    parser.add_argument("--batch-size", type=positive_int, default=default["batch_size"],
                        help=f"tasks per mini-batch (default {default['batch_size']})")
    parser.add_argument("--sampler-steps", type=sampler_steps, default=default["sampler_steps"],
                        help=f"DMALA steps per mini-batch, 0 to {MAX_SAMPLER_STEPS:,} (default {default['sampler_steps']})")
    parser.add_argument("--init", default=default["init"], choices=["mv", "ds"],
                        help=f"start from majority vote or Dawid-Skene (default {default['init']})")
    parser.add_argument("--smoothing", type=number, default=default["smoothing"],
                        help="EMA alpha used to read the curves (0.7-0.99 as in the paper; 0 = raw; "
                             f"default {default['smoothing']})")
    parser.add_argument("--sample-tasks", type=sample_size, default="auto", metavar="N",
                        help=f"sweep a random sample of N tasks (at least {MIN_SAMPLE}), the batch scaled so an epoch "
                             f"makes as many updates as on all tasks; 0: all tasks (default auto: a sample of "
                             f"{SAMPLE_TASKS:,} above {SAMPLE_ABOVE:,} tasks, as the dashboard)")
    parser.add_argument("--device", default=default["device"], type=device_name, help="auto (GPU when available), cpu or cuda")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


#: the smallest sample ``--sample-tasks`` takes (the dashboard's sample box starts there too)
MIN_SAMPLE = 200


def sample_size(text: str) -> int | str:
    """``--sample-tasks``: ``auto``, 0 (all tasks) or a number of tasks of at least :data:`MIN_SAMPLE`."""
    if str(text).strip().lower() == "auto":
        return "auto"
    value = non_negative_int(text)
    if 0 < value < MIN_SAMPLE:
        raise argparse.ArgumentTypeError(f"must be auto, 0 (all tasks) or at least {MIN_SAMPLE} tasks, got {value}")
    return value


def sample_of(data, asked: int | str) -> int | None:
    """The tasks to sample for ``--sample-tasks`` (None: all of them)."""
    from deem_core.methods.sweep import SAMPLE_ABOVE, SAMPLE_TASKS  # noqa: PLC0415

    if asked == "auto":
        return SAMPLE_TASKS if data.n_tasks > SAMPLE_ABOVE else None
    return int(asked) if asked and int(asked) < data.n_tasks else None


#: the files :func:`write_sweep` writes into its folder (checked before the sweep runs)
SWEEP_FILES = {"curves": "curves.csv", "recommendation": "recommendation.json", "figure": "curves.html"}


def write_sweep(sweep, folder: Path, about: dict | None = None) -> dict[str, Path]:
    """Write curves.csv, recommendation.json and curves.html of a :class:`SweepResult` into ``folder``; ``about``:
    more keys for recommendation.json (the tasks swept and the settings: the sample is drawn with ``seed``)."""
    from deem_core.data.export import atomic_write_text, write_json  # noqa: PLC0415
    from deem_core.plots.axes import plain_exponents  # noqa: PLC0415
    from deem_core.plots.curves import ENERGY_METRICS, energy_curves_figure  # noqa: PLC0415
    from deem_core.analysis.recommend import curves_csv  # noqa: PLC0415

    folder.mkdir(parents=True, exist_ok=True)
    paths = {key: folder / name for key, name in SWEEP_FILES.items()}
    atomic_write_text(paths["curves"], curves_csv(sweep.curves))
    write_json({**sweep.recommendation.to_dict(), **(about or {})}, paths["recommendation"])
    rec = sweep.recommendation
    title = ("Energy curves per learning rate" +
             (f": recommended lr {rec.lr:g}" if rec.lr is not None else ": no recommendation") +
             f" (EMA smoothing {rec.smoothing:g})" * bool(rec.smoothing))
    figure = energy_curves_figure(sweep.curves, recommended_lr=rec.lr, smoothing=rec.smoothing or None,
                                  metrics=ENERGY_METRICS, title=title)
    atomic_write_text(paths["figure"], plain_exponents(figure).to_html(include_plotlyjs=True, full_html=True))
    return paths


def run(args: argparse.Namespace) -> int:
    from deem_core.analysis.recommend import pick_vs_default  # noqa: PLC0415
    from deem_core.methods.deem import DEFAULT_LR  # noqa: PLC0415
    from deem_core.methods.sweep import judged_epochs, recorded_settings, run_sweep, sweep_sample  # noqa: PLC0415
    from deem_core.model.training import MAX_LR  # noqa: PLC0415
    from deem_core.cli import UsageError  # noqa: PLC0415

    lrs = parse_float_list(args.lrs, "--lrs", maximum=MAX_LR)
    if len(set(lrs)) != len(lrs):
        raise UsageError(f"--lrs repeats a value: {args.lrs!r}")
    if args.epochs is not None and args.epochs < 1:
        raise UsageError(f"--epochs must be >= 1, got {args.epochs}")
    if args.seeds < 1:
        raise UsageError(f"--seeds must be >= 1, got {args.seeds}")
    if not 0.0 <= args.smoothing < 1.0:
        raise UsageError(f"--smoothing must be in [0, 1), got {args.smoothing}")
    folder = Path(args.output)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"-o must name a folder, but {folder} is a file")
    data = load_input(args)
    swept, batch_size = sweep_sample(data, sample_of(data, args.sample_tasks), args.seed, args.batch_size)
    if swept is not data:  # (a sweep of 1,000,000 tasks trained every rate on all of them, the dashboard on 5,000)
        say(f"sweeping a random sample of {swept.n_tasks:,} of {data.n_tasks:,} tasks, batch {batch_size:,} (as "
            f"many updates an epoch as on all tasks); --sample-tasks 0 sweeps all")
    else:
        say(f"sweeping all {data.n_tasks:,} tasks, batch {batch_size:,}")
    epochs = args.epochs
    if epochs is None:
        epochs = judged_epochs(swept.n_tasks, batch_size)
        updates = epochs * -(-swept.n_tasks // batch_size)
        say(f"{epochs} epochs ({updates:,} updates a run; --epochs sets them)")
    progress = ProgressBar(epochs, f"sweep of {len(lrs) * args.seeds} runs", disable=args.no_progress)
    try:
        sweep = run_sweep(swept, lrs=lrs, epochs=epochs, n_layers=args.layers, n_seeds=args.seeds,
                          seed=args.seed, device=args.device, callbacks=[progress], batch_size=batch_size,
                          init=args.init, smoothing=args.smoothing, sampler_steps=args.sampler_steps)
    except ValueError as exc:
        if type(exc) is ValueError:  # a bad option reaching the engine
            raise UsageError(str(exc)) from None
        raise
    finally:
        progress.close()
    with writing(folder):
        # what the sweep ran, so that it can be run again (walkthrough 35: no epochs, grid, layers or seed)
        paths = write_sweep(sweep, folder, {"n_tasks": data.n_tasks, "batch_size": batch_size,
                                            "sample_tasks": swept.n_tasks if swept is not data else None,
                                            **recorded_settings({"lrs": lrs, "epochs": epochs, "n_layers": args.layers,
                                                                 "n_seeds": args.seeds, "seed": args.seed,
                                                                 "init": args.init, "sampler_steps": args.sampler_steps,
                                                                 "smoothing": args.smoothing})})
    rec = sweep.recommendation
    say(f"wrote {paths['curves']}, {paths['recommendation'].name} and {paths['figure'].name} "
        f"({len(sweep.runs)} runs, {sweep.epochs} epochs, {sweep.seconds:.1f} s)")
    for row in sweep.runs.itertuples():
        if row.message:
            warn(f"lr {row.lr:g} seed {row.seed}: {row.message}")
    # each rate's verdict, also where none passed every check (where they matter most; read 50)
    say_verdicts(rec, "recommended" if rec.settled and not rec.fallback else "least bad" if rec.fallback else "tentative")
    if rec.lr is None:
        say(f"no recommendation: {rec.reason}")
        return 1
    if rec.fallback:  # (exit 0 and "recommended learning rate: 3" where every rate broke a rule; walkthrough 45)
        say(f"no recommendation: no learning rate passed every check; the least bad is {rec.lr:g}: {rec.reason}")
        return 1
    # (the reason after a colon: several reasons hold a parenthesis of their own, which read "... level))" inside
    # one; read 52)
    say(f"{'recommended' if rec.settled else 'tentative'} learning rate: {rec.lr:g}: {rec.reason}")
    say(f"note: {pick_vs_default(DEFAULT_LR)}")
    return 0
