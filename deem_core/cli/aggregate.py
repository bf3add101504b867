"""``deem aggregate INPUT... -o OUT [--method M]``: aggregate with DEEM (or a classic method) and write one
label per task: columns ``task, label, confidence`` then ``p_<class>`` per class (DEEM adds
``seed_agreement`` and ``free_energy``, empty where a fallback returned the labels untrained). With ``--truth`` it prints ``accuracy: NN.NN`` (percent of the tasks
that have a truth) on standard output; everything else goes to standard error."""

from __future__ import annotations

import argparse
from pathlib import Path

from deem_core.cli.common import (ProgressBar, add_input_arguments, add_training_arguments, budget_note, no_task_text,
                                  number, read_input, report_fit, say, say_tie_luck, truth_for, warn, writing)
from deem_core.data.text import counted, in_natural_order
from deem_core.methods import registry
from deem_core.analysis.selection import safety_rule_reference

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "aggregate", help="aggregate labels with DEEM (or a classic method)",
        description="Train DEEM on the annotations (or run a classic aggregator) and write the aggregated label, "
                    "confidence and class probabilities of every task.")
    add_input_arguments(parser)
    parser.add_argument("--method", default="deem", choices=registry.method_keys(),
                        help="deem (default) or: " + "; ".join(
                            f"{spec.key} ({spec.name}: {spec.description})" if spec.description else
                            f"{spec.key} ({spec.name})" for spec in registry.METHODS.values() if spec.key != "deem"))
    add_training_arguments(parser)
    parser.add_argument("-o", "--output", required=True,
                        help="output file; the extension picks the format: .csv (spreadsheet-safe), .parquet, .json")
    parser.add_argument("--output-format", default=None, choices=["csv", "parquet", "json", "label-studio"],
                        help="write this format whatever the extension; label-studio: tasks with predictions[] to "
                             "import back into Label Studio (keeps the tasks' ids and data when the input was a Label "
                             "Studio export)")
    parser.add_argument("--model", default=None, help="also save the fitted model to this file")
    parser.add_argument("--truth", default=None, help="CSV task,truth: report accuracy (and use as gold with --gold-weight)")
    parser.add_argument("--gold-weight", type=number, default=_default_gold_weight(),
                        help="weight of the supervised term on --truth labels (default 0: truth only scores); "
                             "measured on nine sets the other tasks' accuracy moved by -0.1 to +4.5 points at weight "
                             "1, -0.3 to +6.3 at 10 (benchmarks/results/gold_weight.txt)")
    parser.set_defaults(func=run)


def _default_gold_weight() -> float:
    from deem_core.methods.base import defaults_of  # noqa: PLC0415
    from deem_core.methods.deem import DEEM  # noqa: PLC0415

    return float(defaults_of(DEEM)["supervised_weight"])


#: classes up to which ``deem aggregate`` prints the labeling config of a Label Studio file not made from an export
CLI_CONFIG_CLASSES = 30


def write_labels(results, path: Path, fmt: str | None = None, context=None, model_version: str = "DEEM") -> Path:
    from deem_core.data.formats.writers import write_results  # noqa: PLC0415

    return write_results(results, path, fmt, context=context, model_version=model_version)


def _model_version(args: argparse.Namespace, spec, model=None, gold: bool = False) -> str:
    """What a Label Studio prediction's model_version says: the method and its settings, and the fallback its
    labels come from when they are not the trained model's (it said "DEEM (...)" for cluster-weighted Dawid-Skene's
    labels while the dashboard's file named them; walkthrough, tenth session)."""
    from deem_core.data.formats.writers import model_version  # noqa: PLC0415

    if not spec.trains:
        return model_version(spec.name, {"seed": args.seed})
    layers = 0 if args.method == "irbm" else args.layers
    fallback = getattr(model, "fallback_", None)
    used = getattr(model, "n_layers_", None)
    if fallback:  # (as the dashboard's file says them: a reference's labels have no layers)
        layers = f"{layers} → none"
    elif layers == "auto" and used is not None:
        layers = f"auto → {used}"
    lr = args.lr if str(args.lr).lower() == "auto" else _options(args)["lr"]
    # the gold weight where gold labels trained (the dashboard's file says it; walkthrough 113)
    weight = {"gold weight": float(args.gold_weight)} if gold and spec.uses_gold else {}
    return model_version(spec.name, {"layers": layers, "epochs": args.epochs, "lr": lr, "init": args.init,
                                     "seeds": args.seeds, "seed": args.seed, **weight}, fallback)


def run(args: argparse.Namespace) -> int:
    from deem_core.analysis.scoring import accuracy_and_count, accuracy_interval  # noqa: PLC0415
    from deem_core.data.formats.writers import output_format  # noqa: PLC0415

    spec = registry.get_method(args.method)
    _note_unused_prior(args, spec)
    output = Path(args.output)
    try:
        out_format = output_format(output, args.output_format)
    except ValueError as exc:
        from deem_core.cli import UsageError  # noqa: PLC0415

        raise UsageError(str(exc)) from None
    if args.model and not spec.trains:
        from deem_core.cli import UsageError  # noqa: PLC0415

        raise UsageError(f"--model saves a fitted DEEM model; --method {args.method} has none to save")
    reading = read_input(args)
    data = reading.data
    if not args.truth and reading.gold is None and spec.uses_gold and args.gold_weight > 0:
        from deem_core.cli import UsageError  # noqa: PLC0415

        # (ignored without a word; walkthrough 64)
        raise UsageError(f"--gold-weight {args.gold_weight:g} weighs gold labels, and there are none: give them with "
                         f"--truth (a CSV task,truth), or leave --gold-weight out")
    truth = truth_for(args, reading, data)  # (said before the training, not after it; walkthrough 82)
    matched = truth is None or not len(truth) or bool(truth.index.isin(data.tasks).any())
    model = None
    # the majority labels every method's file compares with, before the method: majority vote's tables are freed
    # before the method builds its own (after it, they came on top: +391 MB on 100,000 x 500; attack round 13)
    reference = None if spec.key == "mv" else registry.majority_reference(data)
    if spec.trains:
        results, model = _run_trained(args, spec, data, truth)
    else:
        results = _run_classic(args, spec, data)
    # (the dashboard's label files had the two majority columns, the command line's not)
    results = registry.with_majority(results, data, reference=reference, method=spec.key)
    results = in_natural_order(results)  # (as the dashboard's files: q2 before q10; walkthrough 108)
    # the labels first, then the model (both paths were checked before training): a model that cannot be written
    # (a disk that filled up meanwhile) leaves the labels written and says so in its one error line
    with writing(output):
        write_labels(results, output, out_format, context=reading.label_studio,
                     model_version=_model_version(args, spec, model, gold=truth is not None and len(truth) > 0))
    say(f"wrote {counted(len(results), 'label')} to {output}")  # ("3000" beside "3,000"; walkthrough 81; "1 labels": read 54)
    if reading.label_studio is None and out_format == "label_studio":
        # (the control's names are this program's own: a project made otherwise matched none; walkthrough 116)
        from deem_core.data.formats.writers import labeling_config, placeholder_control_note  # noqa: PLC0415

        config, why = labeling_config(data.classes) if data.n_classes <= CLI_CONFIG_CLASSES else (
            None, f"the config of its {data.n_classes:,} classes is not printed past {CLI_CONFIG_CLASSES}: write a "
                  f"<Choice value=\"...\"/> for each class as the file's predictions name it; the dashboard's Results "
                  f"page shows it")  # (nothing said past 30 classes; walkthrough 118)
        say(f"note: {placeholder_control_note()}" + ("; this one does:" if config else f" ({why})" if why else ""))
        for line in (config.splitlines() if config else ()):  # (a line each: say writes a line break as its escape)
            say(line)
    if args.model and model is not None:
        with writing(args.model, what=f"wrote the labels to {output}, but "):
            model.save(args.model)
        say(f"wrote the fitted model to {args.model}")
    if truth is not None:
        value, n_scored = accuracy_and_count(results["label"], truth)
        if n_scored:
            print(f"accuracy: {100 * value:.2f}")
            weighted = spec.uses_gold and args.gold_weight > 0  # (the page said so, the command line not; walkthrough 59)
            # with --lr auto the sweep trains on no truth label and the check reads all of them ("checked it on half"
            # beside "on the 800 gold tasks the supervised term did not train on"; walkthrough 103)
            swept = getattr(model, "sweep_", None) is not None
            trained = weighted and not swept
            returned = safety_rule_reference(getattr(model, "fallback_", None)) if weighted else None
            if returned:  # (it said "the model trained on those labels" of a reference that used none)
                why = (f"; the labels come from {returned}, which used none of them; the safety rule checked it on "
                       f"{'all' if swept else 'half'} of them")
            elif swept and weighted:
                # (the weight turns their check on: "--gold-weight is not used there" read as no use at all; read 52)
                why = "; with --lr auto the sweep trained on none of them: --gold-weight only turns on their check"
            elif trained:
                why = (f"; the model trained on those labels (--gold-weight {args.gold_weight:g}), so on them it is "
                       f"not a test of unseen tasks: hold some truth labels out of --truth to measure one")
            else:
                why = ""
            low, high = accuracy_interval(value, n_scored)  # (how far a few truth labels can be off; walkthrough 79)
            say(f"(accuracy on the {counted(n_scored, 'task')} that {'has' if n_scored == 1 else 'have'} a truth, 95% interval {100 * low:.2f}%-{100 * high:.2f}%"
                f"{why})")
            if spec.key == "mv":
                say_tie_luck(data, results["label"], truth)
        elif truth.attrs.get("not_classes"):  # (they were left out, not unannotated; attack round 30)
            warn(f"no truth label is left to score with once the {truth.attrs['not_classes']:,} that are no class of "
                 f"the answers were left out" + (f" (the other {len(truth):,} are of tasks nobody annotated)"
                                                 if len(truth) else "") + ": no accuracy")
        elif matched:
            warn(no_task_text(truth, data.tasks))
    return 0


def _options(args: argparse.Namespace) -> dict:
    """The run options of the command line, by the names of the estimators' parameters."""
    from deem_core.cli.common import parse_float_list  # noqa: PLC0415

    lr = "auto" if str(args.lr).lower() == "auto" else parse_float_list(args.lr, "--lr")[0]
    return dict(n_layers=args.layers, epochs=args.epochs, max_updates=args.max_updates, lr=lr,
                batch_size=args.batch_size, sampler_steps=args.sampler_steps, init=args.init, ds_prior=args.ds_prior,
                n_seeds=args.seeds, seed=args.seed, device=args.device, supervised_weight=args.gold_weight)


def _note_unused_prior(args: argparse.Namespace, spec) -> None:
    """A ``--ds-prior`` given to a method (or a start) that has no use for it is said once on standard error (not
    silently dropped)."""
    if not getattr(args, "ds_prior_given", False):
        return
    if "ds_prior" not in spec.parameters():
        users = ", ".join(key for key, other in registry.METHODS.items() if "ds_prior" in other.parameters())
        warn(f"--ds-prior is not used by --method {args.method} (it is used by: {users})")
    elif spec.trains and args.init == "mv":
        warn("--ds-prior is not used with --init mv (only the Dawid-Skene start uses it)")


def _run_classic(args: argparse.Namespace, spec, data):
    import time  # noqa: PLC0415

    from deem_core.data.annotations import DataError  # noqa: PLC0415

    started = time.perf_counter()
    try:
        aggregator = registry.fit_method(spec.key, data, **_options(args))
    except ValueError as exc:  # e.g. a binary-only method on more than two classes
        raise DataError(f"--method {args.method}: {exc}") from exc
    results = aggregator.results_frame()
    say(f"{spec.name}: {time.perf_counter() - started:.1f} s")
    return results


def _run_trained(args: argparse.Namespace, spec, data, truth):
    options = _options(args)
    layers = spec.fixed.get("n_layers", options["n_layers"])
    from deem_core.methods.deem import training_rounds  # noqa: PLC0415

    # rounds of training for the depths: one after another, or one batched model on a GPU
    groups = training_rounds(data, layers, options.get("device", "auto"),
                             has_gold=truth is not None and args.gold_weight > 0, lr=options["lr"],
                             runs_per_depth=2 * int(args.seeds))
    from deem_core.model.training import epochs_within_budget  # noqa: PLC0415

    note = budget_note(data.n_tasks, args.epochs, args.batch_size, args.max_updates)
    if note:
        say(note)
    epochs = epochs_within_budget(data.n_tasks, args.epochs, args.batch_size, args.max_updates)
    # (it read "epoch 300 of 300" for a 100-epoch run, with nothing of the depths; walkthrough 56)
    from deem_core.methods.sweep import DEFAULT_LRS  # noqa: PLC0415

    # (it read "DEEM: epoch 58 of 100" while the sweep's runs trained; walkthrough 100)
    what = (f" ({groups} depths in turn, {epochs:,} epochs each)" if groups > 1 else
            f" (learning-rate sweep: {len(DEFAULT_LRS)} rates x {counted(int(args.seeds), 'seed')} at once)"
            if options["lr"] == "auto" and spec.trains else "")
    progress = ProgressBar(epochs * groups, spec.name + what, disable=args.no_progress)
    try:
        model = registry.fit_method(spec.key, data, gold=truth, callbacks=[progress], **options)
    finally:
        progress.close()
    report_fit(spec.name, model, data)
    return model.results_frame(), model
