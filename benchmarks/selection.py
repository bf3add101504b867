"""Choosing DEEM's start and depth without ground truth: per set, every candidate's criterion beside its accuracy.

For every validation set (generated families of ``benchmarks/families.py`` with several seeds, the bundled
``sample_data`` sets and ``../shared/data``) this fits ``DEEM(n_layers="auto", init="auto")`` once (six
candidates: majority-vote / Dawid-Skene start x 0 / 1 / 2 layers, trained on the answers left after holding
10% out) and writes, per candidate, the held-out log-likelihood (the criterion), the held-out agreement (the
criterion compared with it) and the candidate's accuracy, plus:

* ``chosen``: what ``DEEM(n_layers="auto")`` returns (rule of ``deem_core/methods/choose.py``);
* ``layers=d``: what ``DEEM(n_layers=d)`` (start chosen, ``init="auto"``) returns, for d = 0, 1, 2: the same
  rule applied to the two candidates of that depth, which is exactly what that fit trains;
* ``by agreement``: the candidate with the highest held-out agreement (the second criterion);
* ``old default``: the previous default, ``DEEM(n_layers=1)`` with the start of the dependence threshold
  (majority vote when the excess pairwise agreement over Dawid-Skene is above 0.03), trained on all answers;
* ``MV``, ``DS`` (crowd-kit 1.4.2), and ``best candidate`` (what an oracle picking by truth would get).

Times: process CPU time of the choosing fit and of one old-default run (1 layer, all answers), and the load
average. Truth is used only to score.

Usage (one command each; the lead reruns it on a quiet machine)::

    nice -n 10 python benchmarks/selection.py                      # every set, 100 epochs
    python benchmarks/selection.py --sets groups:0 duck --epochs 30
    python benchmarks/selection.py --report                        # tables from the saved CSV only
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import available_sets, load_set, machine  # noqa: E402
from families import FAMILIES, ROLE, make_set  # noqa: E402

from deem_core import DEEM  # noqa: E402
from deem_core.data.annotations import AnnotationSet  # noqa: E402
from deem_core.methods.registry import fit_method  # noqa: E402
from deem_core.methods.choose import CLUSTER_WEIGHTED, MAJORITY_VOTE, choose, labels_of  # noqa: E402
from deem_core.methods.dawid_skene import excess_pairwise_agreement, fit_dawid_skene  # noqa: E402
from deem_core.analysis.diagnostics.quality import labels_followed  # noqa: E402

RESULTS = HERE / "results"
OLD_THRESHOLD = 0.03
SEEDS_PER_FAMILY = 3
BUNDLED = ["condind", "tree3k", "ampdata", "digits", "digits_experts", "duck", "dog"]


def default_sets() -> list[str]:
    sets = [f"{name}:{seed}" for name in FAMILIES if name != "mnist_like" for seed in range(SEEDS_PER_FAMILY)]
    return sets + available_sets(BUNDLED) + ["mnist_like:0"]


def family_of(spec: str) -> str:
    return spec.split(":")[0] if ":" in spec else spec


def role_of(spec: str) -> str:
    if ":" in spec:
        return ROLE[family_of(spec)]
    return "bundled" if spec in BUNDLED[:5] else "real"


def load(spec: str) -> tuple[pd.DataFrame, pd.Series]:
    if ":" in spec:
        name, seed = spec.split(":")
        return make_set(name, int(seed))
    return load_set(spec)


def run_set(spec: str, epochs: int, lr: float) -> list[dict]:
    df, truth = load(spec)
    data = AnnotationSet.from_long(df)
    y = data.classes.get_indexer(truth.reindex(data.tasks).to_numpy())
    known = y >= 0

    def acc(codes: np.ndarray) -> float:
        return float(100 * (np.asarray(codes)[known] == y[known]).mean())

    mv = data.majority_vote()
    ds_crowdkit = fit_method("ds", data, seed=0).labels_
    ds_acc = float(100 * (ds_crowdkit.reindex(truth.index).to_numpy() == truth.to_numpy()).mean())
    dependence = excess_pairwise_agreement(data, fit_dawid_skene(data))
    old_start = "mv" if dependence > OLD_THRESHOLD else "ds"
    load_before = os.getloadavg()[0]

    cpu0 = time.process_time()
    old = DEEM(n_layers=1, init=old_start, epochs=epochs, lr=lr, device="cpu").fit(data)
    old_cpu = time.process_time() - cpu0
    old_acc = acc(data.classes.get_indexer(old.predict()))

    cpu0, wall0 = time.process_time(), time.perf_counter()
    model = DEEM(n_layers="auto", init="auto", epochs=epochs, lr=lr, device="cpu").fit(data)
    auto_cpu, auto_wall = time.process_time() - cpu0, time.perf_counter() - wall0
    chosen_acc = acc(data.classes.get_indexer(model.predict()))
    summary = model.selection_summary()
    references = model.selection_references_
    cwds_fit = next(r.fit for r in references if r.key == "cwds")
    cwds_acc = acc(cwds_fit.posterior.argmax(1))
    clusters = model.dependence_clusters_
    fallback = {None: "", "majority vote": "(MV)"}.get(None if model.fallback_ is None else
                                                      model.fallback_.split(" (")[0], "(CWDS)")

    base = {"set": spec, "family": family_of(spec), "role": role_of(spec), "tasks": data.n_tasks,
            "workers": data.n_workers, "classes": data.n_classes, "answers": int(data.n_answers),
            "heldout": summary["heldout_answers"], "dependence": dependence, "mv": acc(mv), "ds": ds_acc,
            "cwds": cwds_acc, "clusters": (" ".join("[" + ",".join(str(w) for w in g["workers"]) + "]"
                                                   for g in summary["clusters"]["clusters"]) or "-")
            + "".join(" not testable: [" + ",".join(str(w) for w in g) + "]" for g in summary["clusters"]["untestable"]),
            "cluster_s": clusters.seconds,
            "old_default": old_acc, "old_start": old_start, "chosen": chosen_acc,
            "chosen_name": ("MV" if fallback == "(MV)" else "CWDS" if fallback == "(CWDS)"
                            else f"{model.init_}{model.n_layers_}"),
            "reason": summary["reason"], "followed_rule": str(summary["reason"]).startswith(
                "safety rule (labels following"), "auto_cpu_s": auto_cpu, "auto_wall_s": auto_wall,
            "old_cpu_s": old_cpu, "load": load_before, "epochs": epochs, "lr": lr}
    rows = []
    candidates = model.candidates_
    cand_acc, cand_labels = [], []
    for c in candidates:
        labels = labels_of(c.result.network, data, mv, model.device_)
        cand_labels.append(labels)
        cand_acc.append(acc(labels))
    ref_acc = {"mv": acc(mv), "cwds": cwds_acc}
    for depth in (0, 1, 2):  # what DEEM(n_layers=depth) returns: the same rule on that depth's two candidates
        subset = [i for i, c in enumerate(candidates) if c.depth == depth]
        choice = choose([candidates[i] for i in subset], references,  # (step 5 as the fit applies it)
                        follows=lambda j, subset=subset: labels_followed(summary["clusters"], data,
                                                                         cand_labels[subset[j]]))
        if choice.index in (MAJORITY_VOTE, CLUSTER_WEIGHTED):
            base[f"layers{depth}"] = ref_acc[choice.reference.key]
            base[f"layers{depth}_name"] = "MV" if choice.reference.key == "mv" else "CWDS"
        else:
            base[f"layers{depth}"] = cand_acc[subset[choice.index]] if choice.index >= 0 else float("nan")
            base[f"layers{depth}_name"] = candidates[subset[choice.index]].start if choice.index >= 0 else "none"
    healthy = [i for i, c in enumerate(candidates) if not c.collapsed] or list(range(len(candidates)))
    by_agreement = max(healthy, key=lambda i: candidates[i].agreement.mean())
    base["by_agreement"] = cand_acc[by_agreement]
    base["by_agreement_name"] = f"{candidates[by_agreement].start}{candidates[by_agreement].depth}"
    base["best_candidate"] = max(cand_acc)
    names = [f"{c.start}{c.depth}" for c in candidates] + [
        "MV" if r.key == "mv" else ("CWDS" if "cluster" in r.name else "DS") for r in references]
    accs = cand_acc + [ref_acc[r.key] for r in references]
    for name, a, row in zip(names, accs, summary["candidates"]):
        rows.append({**base, "candidate": name, "cand_loglik": row["heldout_loglik"],
                     "cand_lco": row["lco_loglik"], "cand_score": row["lco_score"],
                     "cand_agreement": row["heldout_agreement"], "cand_collapsed": row["collapsed"],
                     "cand_chosen": row["chosen"], "cand_acc": a, "cand_seconds": row["seconds"]})
    return rows


def compare(before: pd.DataFrame, after: pd.DataFrame) -> str:
    """Per set: the choice and its accuracy in two runs of this script (e.g. depth by depth and together)."""
    first = before.drop_duplicates("set").set_index("set")
    second = after.drop_duplicates("set").set_index("set")
    sets = [s for s in second.index if s in first.index]
    lines = [f"{'set':<16} {'MV':>6} {'choice A':>9} {'acc A':>6} {'choice B':>9} {'acc B':>6} {'B - A':>6}"]
    for spec in sets:
        a, b = first.loc[spec], second.loc[spec]
        lines.append(f"{spec:<16} {a['mv']:6.2f} {a['chosen_name']:>9} {a['chosen']:6.2f} {b['chosen_name']:>9} "
                     f"{b['chosen']:6.2f} {b['chosen'] - a['chosen']:+6.2f}")
    a, b = first.loc[sets], second.loc[sets]
    same = int((a["chosen_name"] == b["chosen_name"]).sum())
    lines.append(f"{len(sets)} sets: the same choice on {same}; mean accuracy A {a['chosen'].mean():.2f}, B "
                 f"{b['chosen'].mean():.2f}; below MV by > 0.05: A {int((a['chosen'] < a['mv'] - 0.05).sum())}, B "
                 f"{int((b['chosen'] < b['mv'] - 0.05).sum())}; largest change {(b['chosen'] - a['chosen']).abs().max():.2f}")
    return "\n".join(lines)


def fmt(x: float) -> str:
    return "   -  " if x != x else f"{x:6.2f}"


def report(frame: pd.DataFrame) -> str:
    sets = frame.drop_duplicates("set").set_index("set")
    lines = [f"# machine: {machine()}",
             f"# DEEM(n_layers='auto', init='auto'): 6 candidates, {int(sets['epochs'].iloc[0])} epochs, lr "
             f"{sets['lr'].iloc[0]:g}, 1 seed, 10% of answers held out (one per task at most); accuracy in %",
             "# 'old default' = DEEM(n_layers=1) with the start of the dependence threshold (0.03), all answers",
             "# CWDS = Dawid-Skene with every dependence cluster counted once (methods/clusters.py; = DS when no "
             "cluster is found); LCO = leave-cluster-out (criterion: LCO loglik; safety rule: LCO score)",
             "# '!' marks a value below majority vote by more than 0.05 points", ""]
    lines.append("## Per set: criterion per candidate beside its accuracy")
    for spec, group in frame.groupby("set", sort=False):
        s = sets.loc[spec]
        lines.append(f"\n### {spec} ({s['role']}): {s['tasks']} tasks x {s['workers']} workers x {s['classes']} classes,"
                     f" {s['answers']} answers ({s['heldout']} held out); dependence {s['dependence']:.3f}")
        lines.append(f"dependence clusters: {s['clusters']} ({s['cluster_s']:.1f} s)")
        lines.append(f"MV {s['mv']:.2f} | DS {s['ds']:.2f} | CWDS {s['cwds']:.2f} | old default ({s['old_start']}1) {s['old_default']:.2f} | "
                     f"chosen {s['chosen_name']} {s['chosen']:.2f} | layers=0 {s['layers0']:.2f} ({s['layers0_name']}) | "
                     f"layers=1 {s['layers1']:.2f} ({s['layers1_name']}) | layers=2 {s['layers2']:.2f} ({s['layers2_name']})")
        lines.append(f"choosing: {s['auto_cpu_s']:.1f} s CPU ({s['auto_wall_s']:.1f} s wall) = "
                     f"{s['auto_cpu_s'] / max(s['old_cpu_s'], 1e-9):.1f}x one old-default run ({s['old_cpu_s']:.1f} s CPU); "
                     f"load {s['load']:.1f}; rule: {s['reason']}")
        lines.append(f"{'candidate':>10} {'held-out loglik':>16} {'LCO loglik':>11} {'LCO score':>10} "
                     f"{'held-out agree':>15} {'accuracy':>9}  note")
        for row in group.itertuples():
            note = "chosen" if row.cand_chosen else ("collapsed" if row.cand_collapsed else "")
            lines.append(f"{row.candidate:>10} {row.cand_loglik:16.4f} {row.cand_lco:11.4f} {row.cand_score:10.4f} "
                         f"{row.cand_agreement:15.4f} {row.cand_acc:9.2f}  {note}")
    cols = ["mv", "ds", "cwds", "old_default", "chosen", "layers0", "layers1", "layers2", "by_agreement", "best_candidate"]
    names = ["MV", "DS", "CWDS", "old def", "chosen", "layers=0", "layers=1", "layers=2", "by agree", "best cand"]
    lines += ["", "## Per family (mean over its sets; '!' = below MV by > 0.05 on the mean, n<MV = sets below MV)"]
    lines.append(f"{'family':<16} {'role':<8} {'sets':>4} " + " ".join(f"{n:>9}" for n in names) + "  chosen n<MV")
    for family, group in sets.groupby("family", sort=False):
        means = group[cols].mean()
        below = int((group["chosen"] < group["mv"] - 0.05).sum())
        lines.append(f"{family:<16} {group['role'].iloc[0]:<8} {len(group):>4} " + " ".join(
            f"{means[c]:8.2f}{'!' if c != 'mv' and means[c] < means['mv'] - 0.05 else ' '}" for c in cols)
            + f"  {below}")
    means = sets[cols].mean()
    lines.append(f"{'ALL':<16} {'':<8} {len(sets):>4} " + " ".join(f"{means[c]:8.2f} " for c in cols))
    lines.append(f"\nsets where the choice is below MV by > 0.05: {int((sets['chosen'] < sets['mv'] - 0.05).sum())} of "
                 f"{len(sets)}; old default: {int((sets['old_default'] < sets['mv'] - 0.05).sum())}; DS: "
                 f"{int((sets['ds'] < sets['mv'] - 0.05).sum())}")
    for depth in (0, 1, 2):
        bad = sets.index[sets[f"layers{depth}"] < sets["mv"] - 0.05].tolist()
        lines.append(f"explicit layers={depth}: below MV on {len(bad)} set(s): {', '.join(bad) or '-'}")
    ratio = sets["auto_cpu_s"] / sets["old_cpu_s"]
    lines.append(f"choosing CPU cost / one old-default run: median {ratio.median():.1f}x, range {ratio.min():.1f}-"
                 f"{ratio.max():.1f}x")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=None, help="family:seed or a bundled/shared set name")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--out", default=str(RESULTS / "selection.csv"))
    parser.add_argument("--report", action="store_true", help="only print the tables of the saved CSV")
    parser.add_argument("--together", action="store_true",
                        help="train every depth's candidates as one batched model (what a GPU runs, either path), "
                             "on this CPU; with --compare, a table of what changed against the saved CSV")
    parser.add_argument("--compare", default=None, help="a CSV of this script to compare --out with, per set")
    args = parser.parse_args(argv)
    out = Path(args.out)
    torch.set_num_threads(1)
    if args.together:
        DEEM._depths_together = lambda self, data, depths, runs: len(depths) > 1
    if not args.report:
        done = pd.read_csv(out) if out.exists() else pd.DataFrame()
        for spec in args.sets or default_sets():
            if len(done) and spec in set(done["set"]):
                continue
            rows = run_set(spec, args.epochs, args.lr)
            done = pd.concat([done, pd.DataFrame(rows)], ignore_index=True)
            done.to_csv(out, index=False)
            s = rows[0]
            print(f"{spec:16s} MV {s['mv']:.2f} DS {s['ds']:.2f} old {s['old_default']:.2f} chosen {s['chosen_name']} "
                  f"{s['chosen']:.2f} best {s['best_candidate']:.2f} cpu {s['auto_cpu_s']:.0f}s/{s['old_cpu_s']:.0f}s",
                  flush=True)
    frame = pd.read_csv(out)
    text = report(frame)
    if args.compare:
        text += (f"\n## Choices against {Path(args.compare).name} (A) — this table is B\n"
                 + compare(pd.read_csv(args.compare), frame) + "\n")
    notes = out.with_suffix(".notes.txt")  # hand-written reading of the table (what is met, what is not)
    if notes.exists():
        text += "\n" + notes.read_text()
    out.with_suffix(".txt").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
