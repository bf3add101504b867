"""Can a penalised likelihood tell, without ground truth, where one-coin Dawid-Skene beats the full one? (issue 15)

On two public real sets Dawid-Skene, and DEEM's automatic start with it, is below majority vote (CF_amt, ZenCrowd_us;
``results/real_sets.txt``), while one-coin Dawid-Skene (one accuracy a worker) is above both. A one-coin start or
reference would help there only if something the data show picks it. This script fits both models with crowd-kit
(100 iterations) on every set given, reads each fit's marginal log-likelihood of the answers,
``sum_task log sum_k prior_k prod_answers confusion_worker[k, label]``, and compares BIC and AIC (parameters: a
K x (K - 1) confusion per worker against one accuracy, plus the K - 1 prior); the truth only scores. Same sets and
command line as ``benchmarks/real_sets.py`` (none is copied into the project).

Usage::

    python benchmarks/onecoin_bic.py NAME=ANSWERS.csv,TRUTH.csv [NAME=...]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import machine  # noqa: E402
from real_sets import read  # noqa: E402

from deem_core.analysis.scoring import accuracy_and_count  # noqa: E402
from deem_core.data.annotations import AnnotationSet  # noqa: E402


def log_likelihood(frame: pd.DataFrame, errors: pd.DataFrame, priors: pd.Series) -> float:
    """The marginal log-likelihood of the answers under a crowd-kit fit (``errors_``: (worker, label) x true class)."""
    classes = list(priors.index)
    log_conf = np.log(np.clip(errors[classes].to_numpy(dtype=float), 1e-12, 1.0))
    rows = errors.index.get_indexer(pd.MultiIndex.from_frame(frame[["worker", "label"]]))
    _, task_of = np.unique(frame["task"].to_numpy(), return_inverse=True)
    per_task = np.zeros((task_of.max() + 1, len(classes)))
    np.add.at(per_task, task_of, log_conf[rows])
    per_task += np.log(priors[classes].to_numpy(dtype=float))
    top = per_task.max(axis=1, keepdims=True)
    return float((top[:, 0] + np.log(np.exp(per_task - top).sum(axis=1))).sum())


def main() -> None:
    from crowdkit.aggregation import DawidSkene, OneCoinDawidSkene  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="+", metavar="NAME=ANSWERS.csv,TRUTH.csv")
    args = parser.parse_args()
    print(f"# python benchmarks/onecoin_bic.py ...; {machine()}")
    print("# accuracy in %; MV = the engine's majority vote (ties to the smallest class); LL/answer in nats; "
          "a criterion is right where it picks the more accurate of DS and one-coin")
    rows = []
    for spec in args.sets:
        name, files = spec.split("=", 1)
        frame, truth = read(*files.split(","))
        frame = frame.drop_duplicates(["task", "worker"])  # (the first answer of a repeated pair, as --on-conflict first)
        data = AnnotationSet.from_long(frame)
        n, k, d = len(frame), data.n_classes, data.n_workers
        mv = pd.Series(np.asarray(data.classes)[data.majority_vote()], index=data.tasks)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = DawidSkene(n_iter=100).fit(frame)
            oc = OneCoinDawidSkene(n_iter=100).fit(frame)
        scored = {m: 100 * accuracy_and_count(labels, truth)[0] for m, labels in
                  (("MV", mv), ("DS", ds.labels_), ("one-coin", oc.labels_))}
        ll_ds, ll_oc = log_likelihood(frame, ds.errors_, ds.priors_), log_likelihood(frame, oc.errors_, oc.priors_)
        p_ds, p_oc = d * k * (k - 1) + k - 1, d + k - 1
        bic = "one-coin" if -2 * ll_oc + p_oc * np.log(n) < -2 * ll_ds + p_ds * np.log(n) else "DS"
        aic = "one-coin" if -2 * ll_oc + 2 * p_oc < -2 * ll_ds + 2 * p_ds else "DS"
        better = "one-coin" if scored["one-coin"] > scored["DS"] else "DS"
        rows.append({"set": name, "answers": n, "workers": d, "K": k, **{m: round(a, 2) for m, a in scored.items()},
                     "LL/answer DS": round(ll_ds / n, 4), "LL/answer one-coin": round(ll_oc / n, 4),
                     "BIC picks": bic, "AIC picks": aic, "more accurate": better})
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    for crit in ("BIC picks", "AIC picks"):
        right = int((table[crit] == table["more accurate"]).sum())
        print(f"{crit[:3]}: right on {right} of {len(table)} sets")


if __name__ == "__main__":
    main()
