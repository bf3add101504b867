"""Would a one-coin start help where Dawid-Skene's start lags majority vote? An experiment, not the engine.

Walkthrough 41's MTurk batch (800 tasks, 40 workers, 4 classes, ~4.3 answers a task, symmetric workers) read
below majority vote with the defaults: Dawid-Skene's K x K confusion per worker, fitted on ~90 answers each,
lags the vote there, and the candidates start from Dawid-Skene or the vote only. This script generates that shape
(seeds; the set itself was not kept) and asks two questions:

1. does a start from a **one-coin** fit (one accuracy per worker, errors spread evenly: K*K -> 1 parameter per
   worker) give DEEM a better answer on it, and what does it cost on sets of other shapes?
2. would the engine's criterion (held-out log-likelihood, leave-cluster-out) **choose** it?

The one-coin start is put in by replacing the Dawid-Skene fit the engine's ``ds`` start reads
(``deem_core.methods.starts.fit_dawid_skene``) for one ``DEEM(n_layers="auto")`` fit; the held-out split is the
same in both fits (same seed), so their criteria are comparable row by row. Nothing here changes the engine.

    python benchmarks/symmetric_start.py [--seeds 0 1 2 3 4 5] [--others imbalance:0 spammers:0 ...]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import machine  # noqa: E402
from families import make_set  # noqa: E402

import deem_core.methods.starts as starts  # noqa: E402
from deem_core import DEEM  # noqa: E402
from deem_core.analysis.scoring import accuracy  # noqa: E402
from deem_core.methods import dawid_skene as dsm  # noqa: E402
from deem_core.methods.registry import fit_method  # noqa: E402


def symmetric_crowd(seed: int, n: int = 800, d: int = 40, k: int = 4) -> tuple[pd.DataFrame, pd.Series]:
    """An MTurk-batch shape: 3-6 answers a task from 40 workers of Pareto activity; 30 symmetric workers
    (accuracy U[0.6, 0.85], errors spread evenly), 6 mediocre (U[0.5, 0.65]), 2 answering at random, 2 giving one
    label always; the last worker copies the one before on 90% of the tasks they share."""
    rng = np.random.default_rng(90_000 + seed)
    truth = rng.integers(k, size=n)
    kinds = ["good"] * 28 + ["mid"] * 6 + ["random"] * 2 + ["const"] * 2 + ["good"] * 2
    acc = np.array([rng.uniform(0.6, 0.85) if t == "good" else rng.uniform(0.5, 0.65) if t == "mid" else 1 / k
                    for t in kinds])
    const = {i: int(rng.integers(k)) for i, t in enumerate(kinds) if t == "const"}
    activity = rng.pareto(2.0, size=d) + 0.5
    activity /= activity.sum()
    answers: dict[tuple[int, int], int] = {}
    for t in range(n):
        for w in rng.choice(d, size=int(rng.integers(3, 7)), replace=False, p=activity):
            if w in const:
                answers[(t, w)] = const[w]
            elif rng.random() < acc[w]:
                answers[(t, w)] = int(truth[t])
            else:
                answers[(t, w)] = int(rng.choice([c for c in range(k) if c != truth[t]]))
    for (t, w), label in list(answers.items()):
        if w == d - 2 and (t, d - 1) in answers and rng.random() < 0.9:
            answers[(t, d - 1)] = label
    frame = pd.DataFrame([(f"t{t}", f"w{w}", f"c{lab}") for (t, w), lab in answers.items()],
                         columns=["task", "worker", "label"])
    return frame, pd.Series([f"c{x}" for x in truth], index=[f"t{t}" for t in range(n)])


def one_coin_fit(data, max_iter: int = 100, tol: float = 1e-4, smoothing: float = 0.01, **_ignored):
    """One-coin Dawid-Skene by EM (one accuracy per worker, with one right and one wrong pseudo-answer), returned
    as the engine's ``DawidSkeneFit`` (its confusion matrices symmetric)."""
    k, d = data.n_classes, data.n_workers
    votes = dsm.answer_matrix(data)
    votes_t = votes.T.tocsr()
    shares = data.class_votes()
    totals = shares.sum(axis=1, keepdims=True)
    posterior = np.where(totals > 0, shares / np.where(totals > 0, totals, 1.0), 1.0 / k)
    previous, n_answers = -np.inf, max(float(votes.sum()), 1.0)
    for iteration in range(1, max_iter + 1):
        counts = np.asarray(votes_t @ posterior).reshape(d, k, k)
        p = (np.einsum("ill->i", counts) + 1.0) / (counts.sum(axis=(1, 2)) + 2.0)
        confusion = np.broadcast_to(((1 - p) / (k - 1))[:, None, None], (d, k, k)).copy()
        confusion[:, np.arange(k), np.arange(k)] = p[:, None]
        prior = posterior.sum(axis=0) + smoothing
        prior /= prior.sum()
        posterior, log_lik = dsm.dawid_skene_posterior(data, confusion, prior, votes=votes)
        if abs(log_lik - previous) / n_answers < tol:
            break
        previous = log_lik
    return dsm.DawidSkeneFit(confusion=confusion, prior=prior, posterior=posterior, n_iter=iteration,
                             log_likelihood=log_lik)


def deem_fit(frame: pd.DataFrame, truth: pd.Series, start_fit) -> tuple[float, pd.DataFrame, str]:
    original = starts.fit_dawid_skene
    starts.fit_dawid_skene = start_fit
    try:
        model = DEEM(n_layers="auto", seed=0).fit(frame)
    finally:
        starts.fit_dawid_skene = original
    table = model._selection["table"]
    chosen = table[table["chosen"]]
    name = "-" if chosen.empty else f"{chosen['start'].iloc[0]}{int(chosen['layers'].iloc[0])}"
    return 100 * accuracy(model.predict(), truth), table, name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--others", nargs="*", default=["independent:1", "imbalance:0", "spammers:0", "sparse:0",
                                                        "experts:0"])
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    sets = [(f"symmetric:{s}", lambda s=s: symmetric_crowd(s)) for s in args.seeds]
    sets += [(name, lambda name=name: make_set(name.split(":")[0], int(name.split(":")[1]))) for name in args.others]
    print(f"# python benchmarks/symmetric_start.py {' '.join(sys.argv[1:])}")
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {machine()}")
    print("# accuracy in %; DEEM = DEEM(n_layers='auto') with its default starts (majority vote, Dawid-Skene with the "
          "shared prior); DEEM oc = the same with the one-coin fit in the Dawid-Skene start's place; "
          "crit = the chosen candidate's leave-cluster-out held-out log-likelihood (nats per answer, higher is "
          "better) in each fit; prefers = the start the criterion ranks higher at the chosen depth\n")
    rows = []
    for name, make in sets:
        frame, truth = make()
        row = {"set": name, "tasks": frame["task"].nunique(), "answers/task": len(frame) / frame["task"].nunique()}
        for method in ("mv", "ds", "onecoin"):
            row[method] = 100 * accuracy(pd.Series(fit_method(method, frame).predict()), truth)
        started = time.perf_counter()
        row["DEEM"], t_ds, row["chose"] = deem_fit(frame, truth, starts.fit_dawid_skene)
        row["DEEM oc"], t_oc, row["chose oc"] = deem_fit(frame, truth, one_coin_fit)
        depth = int(t_ds[t_ds["chosen"]]["layers"].iloc[0]) if t_ds["chosen"].any() else 1
        crit = {}
        for label, table in (("ds", t_ds), ("oc", t_oc)):
            hit = table[(table["start"] == "ds") & (table["layers"] == depth)]
            crit[label] = float(hit["lco_loglik"].iloc[0])
        row["crit ds"], row["crit oc"] = crit["ds"], crit["oc"]
        row["prefers"] = "ds" if crit["ds"] >= crit["oc"] else "oc"
        row["s"] = time.perf_counter() - started
        rows.append(row)
        print(pd.DataFrame([row]).to_string(index=False, float_format=lambda v: f"{v:.2f}" if abs(v) > 2 else f"{v:.4f}"),
              file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}" if abs(v) > 2 else f"{v:.4f}"))
    sym = table[table["set"].str.startswith("symmetric")]
    print(f"\nsymmetric family ({len(sym)} seeds): MV {sym['mv'].mean():.2f}, DS {sym['ds'].mean():.2f}, one-coin "
          f"{sym['onecoin'].mean():.2f}, DEEM {sym['DEEM'].mean():.2f} (below MV on {(sym['DEEM'] < sym['mv']).sum()}), "
          f"DEEM with the one-coin start {sym['DEEM oc'].mean():.2f}; the criterion prefers the one-coin start on "
          f"{(sym['prefers'] == 'oc').sum()} of {len(sym)}")
    rest = table[~table["set"].str.startswith("symmetric")]
    if len(rest):
        print(f"other sets ({len(rest)}): DEEM {rest['DEEM'].mean():.2f}, DEEM with the one-coin start "
              f"{rest['DEEM oc'].mean():.2f}; the criterion prefers the one-coin start on "
              f"{(rest['prefers'] == 'oc').sum()} of {len(rest)}")


if __name__ == "__main__":
    main()
