"""``deem diagnose INPUT... -o DIR``: mutual information per layer, worker importance, worker quality."""

from __future__ import annotations

import argparse
from pathlib import Path

from deem_core.cli.common import (ProgressBar, add_input_arguments, add_training_arguments, budget_note, read_input,
                                  report_fit, say, truth_for, warn, whole_number, writing)
from deem_core.data.text import counted, shortened

__all__ = ["add_parser", "run"]

#: flagged workers named one per line on stderr at most (the rest, and every worker, are in workers.csv)
WORKER_LINES = 20


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "diagnose", help="look inside a fitted DEEM: per-layer mutual information, worker importance and quality",
        description="Train DEEM (or load a saved model with --model) and write DIR/mutual_information.csv, "
                    "DIR/mi_summary.csv, DIR/importance.csv, DIR/workers.csv, DIR/confusion_matrices.csv and "
                    "DIR/report.html (charts).")
    add_input_arguments(parser)
    add_training_arguments(parser)
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder (created if needed)")
    parser.add_argument("--model", default=None, help="use this saved model (deem aggregate --model) instead of training")
    parser.add_argument("--truth", default=None,
                        help="CSV task,truth: group tasks by gold class for the mutual information (else DEEM's "
                             "predictions), score workers' accuracy, and define --subset-classes by gold class "
                             "(unless --subset-by predicted)")
    parser.add_argument("--subset-classes", default=None, metavar="C1,C2,...",
                        help="importance on the tasks of these classes vs the rest (e.g. 5,6,8)")
    parser.add_argument("--subset-by", default=None, choices=["gold", "predicted"],
                        help="classes of the mutual information's task groups and of --subset-classes taken from "
                             "the truth or from DEEM (default: truth if given)")
    parser.add_argument("--subset-worker", default=None, metavar="WORKER",
                        help="importance on the tasks where WORKER answered --subset-label vs the rest")
    parser.add_argument("--subset-label", default=None, metavar="LABEL")
    parser.add_argument("--experts", default=None, metavar="L1,L2,...", help="workers drawn in red in the importance chart")
    parser.add_argument("--min-common", type=whole_number, default=None,
                        help="skip worker pairs with fewer common tasks than this in a class (default 10)")
    parser.add_argument("--max-tasks", type=whole_number, default=None,
                        help="estimate importance on at most this many random tasks per subset (faster with layers)")
    parser.set_defaults(func=run)


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    return parts or None


def run(args: argparse.Namespace) -> int:
    from deem_core.analysis.diagnostics import DEFAULT_MIN_COMMON, run_diagnostics  # noqa: PLC0415
    from deem_core.analysis.selection import returned_model_note, safety_rule_reference  # noqa: PLC0415
    from deem_core.plots.report import confusion_table_workers, mi_layers_sentence, write_diagnostics  # noqa: PLC0415
    from deem_core.methods.deem import DEEM  # noqa: PLC0415
    from deem_core.cli import UsageError  # noqa: PLC0415
    from deem_core.cli.common import parse_float_list  # noqa: PLC0415

    subset_classes = _split(args.subset_classes)
    if subset_classes and args.subset_worker:
        raise UsageError("choose the importance subset with --subset-classes or --subset-worker, not both")
    if bool(args.subset_worker) != (args.subset_label is not None):
        raise UsageError("--subset-worker and --subset-label go together")
    if args.subset_by == "gold" and not args.truth:
        raise UsageError("--subset-by gold needs --truth")
    if args.min_common is not None and args.min_common < 1:
        raise UsageError("--min-common must be at least 1")
    if args.max_tasks is not None and args.max_tasks < 1:
        raise UsageError("--max-tasks must be at least 1")
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise UsageError(f"{output} exists and is not a folder")
    reading = read_input(args)
    data = reading.data
    experts = _split(args.experts) or []
    names = {str(worker) for worker in data.workers}
    unknown = [name for name in experts if name not in names]
    if unknown:  # (it was drawn as no one, silently)
        from deem_core.data.text import escape_controls  # noqa: PLC0415

        raise UsageError(f"--experts: {counted(len(unknown), 'name')} {'is not a worker' if len(unknown) == 1 else 'are not workers'} of these annotations{':' if len(unknown) == 1 else ', e.g.'} "
                         f"{escape_controls(unknown[0])!r}")
    # the truth as every command that scores reads it: labels of no class and tasks not annotated left out, said (the
    # whole model was trained before "gold labels: 10 labels are not among the classes" and exit 2; read 54), and
    # the input's own gold labels where --truth is not given (as the Diagnostics page reads a loaded export's)
    truth = truth_for(args, reading, data)
    if truth is not None and not truth.index.isin(data.tasks).any():
        truth = None  # (said by truth_for)
    if truth is None and args.subset_by == "gold":
        raise UsageError("--subset-by gold: none of the truth labels is of an annotated task and a class")
    if args.model:
        model = DEEM.load(args.model, device=args.device)
        if model.data_fingerprint_ != data.fingerprint():
            warn("the model was trained on other annotations; the diagnostics use its workers and "
                 "classes on these annotations")
    else:
        lr = "auto" if str(args.lr).lower() == "auto" else parse_float_list(args.lr, "--lr")[0]
        model = DEEM(n_layers=args.layers, epochs=args.epochs, max_updates=args.max_updates, lr=lr,
                     batch_size=args.batch_size, init=args.init, ds_prior=args.ds_prior, sampler_steps=args.sampler_steps,
                     n_seeds=args.seeds, seed=args.seed, device=args.device)
        note = budget_note(data.n_tasks, args.epochs, args.batch_size, args.max_updates)
        if note:
            say(note)
        progress = ProgressBar(model.planned_epochs(data.n_tasks), "DEEM", disable=args.no_progress)
        model.set_params(callbacks=[progress])
        try:
            model.fit(data)
        finally:
            progress.close()
        report_fit("DEEM", model, data)  # (a fallback of no layers was diagnosed without a word; walkthrough, tenth session)
        if model.n_layers_ != args.layers and args.layers != "auto":
            say(f"the diagnostics are of the model as fitted: {counted(model.n_layers_, 'layer')}, not the {args.layers} "
                f"asked for (the choice lines above say why)")
    from deem_core.methods.clusters import clusters_for_diagnostics  # noqa: PLC0415

    diagnostics = run_diagnostics(
        model, data, gold=truth, subset_classes=subset_classes, subset_by=args.subset_by,
        subset_worker=args.subset_worker, subset_label=args.subset_label,
        min_common=args.min_common or DEFAULT_MIN_COMMON, max_tasks=args.max_tasks,
        clusters=clusters_for_diagnostics(model, data))
    returned = safety_rule_reference(getattr(model, "fallback_", None))
    lead = returned_model_note("DEEM", returned, "DEEM's labels") if returned else None
    if lead:
        say(lead)
    with writing(output):
        paths = write_diagnostics(diagnostics, output, experts=experts, lead=lead)
    mi = diagnostics.mutual_information
    say(f"classes for the mutual information: {mi.class_source}")
    note = mi.table_note()
    if note:  # (mutual_information.csv is bounded: said where it is written)
        say(f"mutual_information.csv: {note}")
    note = confusion_table_workers(diagnostics.quality)[1]
    if note:  # (so is confusion_matrices.csv)
        say(f"confusion_matrices.csv: {note}")
    table = mi.summary()[["layer_name", "max_mi_mean", "max_mi_std", "frobenius_mean", "frobenius_std", "rms_mi_mean"]]
    for line in table.to_string(index=False, float_format=lambda v: f"{v:.3f}").splitlines():
        say(line)
    change = mi_layers_sentence(mi.summary())
    if change:  # (as the Diagnostics page says it)
        say(change)
    flagged = diagnostics.quality.table
    flagged = flagged[flagged["flag"] != "ok"]
    if len(flagged):  # (one line per worker: 3,896 of them on a platform's set, 3,162 "too few labels"; walkthrough 45)
        counts = flagged["flag"].value_counts()
        say("workers flagged: " + ", ".join(f"{n:,} {flag}" for flag, n in counts.items())
            + f" (every worker in {Path(output).name}/workers.csv)")
        named = flagged[flagged["flag"] != "too few labels"]
        for _, row in named.head(WORKER_LINES).iterrows():  # worker names come from the data: say() escapes them
            figures = (f"gold accuracy {row['accuracy']:.3f}" if row["flag"] == "gold disagrees"
                       else f"spammer score {row['spammer_score']:.3f}")
            # (a name cut: twenty 10,000-character names filled 200 KB of stderr; attack round 46)
            say(f"worker {shortened(row['worker'], 80)}: {row['flag']} (agreement {row['agreement']:.3f}, {figures})")
        if len(named) > WORKER_LINES:
            say(f"... and {counted(len(named) - WORKER_LINES, 'more flagged worker')} in workers.csv")
        for note in diagnostics.quality.notes:  # what the flag means and what to do (as the Diagnostics page says)
            if note.startswith("gold disagrees:"):
                say(note)
    seconds = sum(diagnostics.seconds.values())
    say(f"wrote {counted(len(paths), 'file')} to {output} (diagnostics {seconds:.1f} s)")
    return 0
