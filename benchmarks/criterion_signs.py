"""Which way do scores without ground truth point, majority vote against the cluster-weighted Dawid-Skene?

An exploration for issue 15 (not a rule of the engine): the safety rule of ``deem_core/methods/choose.py`` reads a
leave-cluster-out *predictive score* (each answer's log-probability through its worker's confusion against the
method's labels of its task without its cluster's answers). On weak, sparse crowds (walkthrough 87) it favoured the
Dawid-Skene family where majority vote was more accurate. Two scores that do not model the workers' confusions were
measured beside it, each on every answer seen leave-cluster-out (:func:`deem_core.analysis.selection.cluster_pairs`):

- ``agree``: 0-1 agreement of each answer with the label of its task without its cluster, the Dawid-Skene fit on
  every answer (in sample, as the safety rule's training-answer score);
- ``xfit``: the same agreement cross-fitted: the tasks dealt into 5 folds, each fold's labels from a fit on the other
  folds (no answer helps fit the parameters that label its own task); ``xfit5`` with the Dawid-Skene start's shared
  prior (``DEFAULT_DS_PRIOR`` pseudo-answers per class) in both the fits and the accuracy column.

For each set: the accuracy gain of the cluster-weighted Dawid-Skene (fitted on all answers) over majority vote
(``CW-MV``; ``CW5-MV`` with the shared prior), and each score's gain with its z (gain / standard error counted by
task). Summary: on sets where the two differ by at least one point (``CW5-MV`` for ``xfit5``), how often each score
points the right way with z >= 2, and the wrong way with z >= 2. The families' ``mnist_like`` (20,000 tasks, kept
for the depth check) is left out: the shared 2-core machine.

Usage: ``python benchmarks/criterion_signs.py [--seeds 3] [--dir DIR]``; ``--dir`` adds every ``NAME.csv`` (long:
task, worker, label) with a ``NAME.truth.csv`` (task, truth) beside it.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import machine  # noqa: E402
from families import FAMILIES, make_set  # noqa: E402

from deem_core.analysis.scoring import accuracy  # noqa: E402
from deem_core.analysis.selection import _hard, cluster_pairs, paired_gain_by_task, pair_scores  # noqa: E402
from deem_core.data.annotations import AnnotationSet  # noqa: E402
from deem_core.methods.choose import cluster_weighted_posterior  # noqa: E402
from deem_core.methods.clusters import cluster_weights, find_dependence_clusters  # noqa: E402
from deem_core.methods.dawid_skene import DEFAULT_DS_PRIOR, fit_dawid_skene  # noqa: E402

FOLDS = 5
SCORES = ("logscore", "agree", "xfit", "xfit5")


def _votes(data: AnnotationSet) -> np.ndarray:
    """(n, K) majority vote's label as a distribution (ties share it; a task with no answer uniform)."""
    counts = np.zeros((data.n_tasks, data.n_classes))
    np.add.at(counts, (data.task_codes, data.label_codes), 1.0)
    return _hard(counts)


def measure(data: AnnotationSet, truth: pd.Series) -> dict[str, float]:
    clusters = np.asarray(find_dependence_clusters(data, seed=0).labels)
    weights = cluster_weights(clusters)
    pairs = cluster_pairs(data, clusters, seed=0)
    pair_task = np.zeros(pairs.data.n_tasks, dtype=np.int64)
    pair_task[pairs.pair] = pairs.task
    mv_post = _votes(pairs.data)
    out: dict[str, float] = {"groups": float((np.bincount(clusters) > 1).sum())}

    def gain(score_mv: np.ndarray, score_cw: np.ndarray, name: str) -> None:
        mean, se = paired_gain_by_task(score_mv, score_cw, pairs.task)
        out[name], out[name + "_z"] = mean, mean / se if se > 0 else 0.0

    def agreement(post: np.ndarray) -> np.ndarray:
        return _hard(post)[pairs.pair, pairs.label]

    full = fit_dawid_skene(data, worker_weights=weights)
    in_sample = cluster_weighted_posterior(full, pairs.data, weights)
    gain(pair_scores(mv_post, pairs, data.n_workers), pair_scores(in_sample, pairs, data.n_workers), "logscore")
    gain(agreement(mv_post), agreement(in_sample), "agree")
    fold = np.random.default_rng(0).integers(0, FOLDS, data.n_tasks)
    for name, prior in (("xfit", 0.0), ("xfit5", DEFAULT_DS_PRIOR)):
        crossed = np.zeros_like(in_sample)
        for f in range(FOLDS):
            fit = fit_dawid_skene(data.subset_tasks(np.flatnonzero(fold != f)), worker_weights=weights,
                                  prior_strength=prior)
            rows = np.flatnonzero(fold[pair_task] == f)
            crossed[rows] = cluster_weighted_posterior(fit, pairs.data.subset_tasks(rows), weights)
        gain(agreement(mv_post), agreement(crossed), name)

    def acc(codes: np.ndarray) -> float:
        return 100 * accuracy(pd.Series(np.asarray(data.classes)[codes], index=data.tasks), truth)

    out["mv"] = acc(data.majority_vote())
    out["cwds"] = acc(full.posterior.argmax(1))
    out["cwds5"] = acc(fit_dawid_skene(data, worker_weights=weights, prior_strength=DEFAULT_DS_PRIOR)
                       .posterior.argmax(1))
    return out


def sets(seeds: int, folder: str | None):
    for family in FAMILIES:
        if family == "mnist_like":
            continue
        for seed in range(seeds):
            yield f"{family}:{seed}", lambda family=family, seed=seed: make_set(family, seed)
    if folder:
        for path in sorted(Path(folder).glob("*.truth.csv")):
            name = path.name[: -len(".truth.csv")]
            answers = path.with_name(f"{name}.csv")
            if answers.exists():
                def load(answers=answers, path=path):
                    frame = pd.read_csv(answers, dtype=str)
                    truth = pd.read_csv(path, dtype=str)
                    return frame, truth.set_index(truth.columns[0])[truth.columns[1]]
                yield f"dir:{name}", load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print(f"# {machine()}")
    print("# accuracy in %; CW-MV, CW5-MV: accuracy gains over MV; each score's gain (z) on every answer seen "
          "leave-cluster-out: of CWDS over MV, of CWDS5 (the shared prior) for xfit5")
    header = (f"{'set':<20} {'groups':>6} {'MV':>6} {'CWDS':>6} {'CWDS5':>6} {'CW-MV':>6} {'CW5-MV':>6} "
              + " ".join(f"{name + ' (z)':>16}" for name in SCORES) + f" {'s':>4}")
    print(header)
    rows = []
    for name, make in sets(args.seeds, args.dir):
        started = time.perf_counter()
        frame, truth = make()
        frame.attrs, truth.attrs = {}, {}
        data = AnnotationSet.from_long(frame.astype(str))
        truth = pd.Series(truth.astype(str).to_numpy(), index=truth.index.astype(str))
        row = measure(data, truth)
        row["set"] = name
        rows.append(row)
        print(f"{name:<20} {int(row['groups']):>6} {row['mv']:6.2f} {row['cwds']:6.2f} {row['cwds5']:6.2f} "
              f"{row['cwds'] - row['mv']:+6.2f} {row['cwds5'] - row['mv']:+6.2f} "
              + " ".join(f"{row[s]:+.4f} ({row[s + '_z']:+6.2f})" for s in SCORES)
              + f" {time.perf_counter() - started:4.0f}", flush=True)
    print()
    print("# on the sets where CWDS and MV differ by >= 1 point (CWDS5 for xfit5): the score's z >= 2 the right way /"
          " the wrong way / neither")
    for score in SCORES:
        column = "cwds5" if score == "xfit5" else "cwds"
        for part, keep in (("generated families", lambda r: not r["set"].startswith("dir:")),
                           ("--dir sets", lambda r: r["set"].startswith("dir:"))):
            chosen = [r for r in rows if keep(r) and abs(r[column] - r["mv"]) >= 1.0]
            if not chosen:
                continue
            right = sum(1 for r in chosen if np.sign(r[column] - r["mv"]) * r[score + "_z"] >= 2)
            wrong = sum(1 for r in chosen if np.sign(r[column] - r["mv"]) * r[score + "_z"] <= -2)
            print(f"{score:<9} {part:<19} {len(chosen):>3} sets: right {right:>3}, wrong {wrong:>3}, "
                  f"neither {len(chosen) - right - wrong:>3}")


if __name__ == "__main__":
    main()
