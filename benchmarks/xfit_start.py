"""Would a cross-fitted score choose DEEM's start better than the held-out log-likelihood? (issue 15; an exploration,
not a rule of the engine)

On two real crowd sets (CF_amt, ZenCrowd_us; ``results/real_sets.txt``) plain Dawid-Skene is below majority vote, a
fixed majority-vote start is the most accurate DEEM, and the choice keeps the Dawid-Skene start: the held-out
log-likelihood prefers it. ``criterion_signs.py`` found that a *cross-fitted* agreement points the right way far more
often than an in-sample score when it scores a Dawid-Skene fit; this script scores DEEM's own starts the same way.

Each task is given one of 5 folds at random (independent draws: the folds' sizes vary). For each fold, DEEM is
trained on the other folds' tasks (the defaults but the start: ``init="ds"`` and ``init="mv"``, 1 layer, 100 epochs),
and every answer of the fold's tasks is compared with the label its task gets from its *other* answers (one
pseudo-task per answer, ``predict_proba`` of the model trained without that task; ties share the agreement); majority
vote of the other answers likewise. No answer helps fit the model that labels its own task. Answers of workers absent
from the other folds, answers of a label no answer of the other folds gave, and answers alone on their task (no other
answer to label it from) are left out. Per set: each method's accuracy on all answers (majority vote as the
registry's method breaks its ties; ids and labels are read as text here, so ties and DEEM's random draws can differ
from ``real_sets.py``'s run on the same files by a task or two), and the cross-fitted gain of the Dawid-Skene start
over majority vote and over the majority-vote start, with its z (standard error counted by task).

Usage: ``python benchmarks/xfit_start.py SPEC [SPEC ...]``, SPEC ``NAME=ANSWERS.csv,TRUTH.csv`` (as ``real_sets.py``;
repeated (task, worker) pairs keep the first) or ``FAMILY:SEED`` (``families.py``).
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
from families import make_set  # noqa: E402
from real_sets import read  # noqa: E402

from deem_core import DEEM  # noqa: E402
from deem_core.analysis.scoring import accuracy  # noqa: E402
from deem_core.analysis.selection import paired_gain_by_task  # noqa: E402
from deem_core.methods.registry import fit_method  # noqa: E402

FOLDS = 5


def load(spec: str) -> tuple[pd.DataFrame, pd.Series]:
    if "=" in spec:
        frame, truth = read(*spec.split("=", 1)[1].split(",", 1))
    else:
        family, seed = spec.split(":")
        frame, truth = make_set(family, int(seed))
    frame.attrs, truth.attrs = {}, {}
    frame = frame.drop_duplicates(["task", "worker"]).astype(str).reset_index(drop=True)
    return frame, pd.Series(truth.astype(str).to_numpy(), index=truth.index.astype(str))


def leave_one_out(answers: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the answers with an id each, one pseudo-task per answer holding its task's other answers)."""
    answers = answers.reset_index(drop=True).assign(aid=lambda f: np.arange(len(f)).astype(str))
    pairs = answers.merge(answers, on="task", suffixes=("", "_other"))
    pairs = pairs[pairs["aid"] != pairs["aid_other"]]
    pseudo = pd.DataFrame({"task": pairs["aid"], "worker": pairs["worker_other"], "label": pairs["label_other"]})
    return answers[answers["aid"].isin(set(pseudo["task"]))], pseudo


def agreement(proba: pd.DataFrame, given: np.ndarray) -> np.ndarray:
    """Share of the top label(s) of each row that is the answer given (ties share it)."""
    values = proba.to_numpy(dtype=np.float64)
    top = values >= values.max(axis=1, keepdims=True) - 1e-9
    top = top / top.sum(axis=1, keepdims=True)
    column = {str(c): i for i, c in enumerate(proba.columns)}
    index = np.array([column.get(str(a), -1) for a in given])
    return np.where(index >= 0, top[np.arange(len(index)), np.clip(index, 0, None)], 0.0)


def measure(frame: pd.DataFrame, truth: pd.Series) -> dict[str, float]:
    tasks = frame["task"].unique()
    fold = pd.Series(np.random.default_rng(0).integers(0, FOLDS, len(tasks)), index=tasks)
    frame = frame.assign(fold=frame["task"].map(fold).to_numpy())
    scores: dict[str, list[np.ndarray]] = {"mv": [], "ds": [], "mv_start": []}
    task_of = []
    for k in range(FOLDS):
        train = frame.loc[frame["fold"] != k, ["task", "worker", "label"]]
        seen = frame["worker"].isin(set(train["worker"])) & frame["label"].isin(set(train["label"]))
        test = frame.loc[(frame["fold"] == k) & seen, ["task", "worker", "label"]]
        base, pseudo = leave_one_out(test)
        ids, given = base["aid"], base["label"].to_numpy()
        votes = pseudo.groupby(["task", "label"]).size().unstack(fill_value=0).reindex(ids)
        scores["mv"].append(agreement(votes, given))
        for key, init in (("ds", "ds"), ("mv_start", "mv")):
            model = DEEM(init=init, seed=0).fit(train)
            scores[key].append(agreement(model.predict_proba(pseudo).reindex(ids), given))
        task_of.append(base["task"].to_numpy())
    joined = {key: np.concatenate(value) for key, value in scores.items()}
    task = np.concatenate(task_of)
    whole = frame[["task", "worker", "label"]]
    out = {"acc_mv": 100 * accuracy(fit_method("mv", whole, seed=0).labels_, truth),
           "acc_ds": 100 * accuracy(DEEM(init="ds", seed=0).fit(whole).labels_, truth),
           "acc_mv_start": 100 * accuracy(DEEM(init="mv", seed=0).fit(whole).labels_, truth)}
    for name, other in (("ds_vs_mv", "mv"), ("ds_vs_mv_start", "mv_start")):
        gain, se = paired_gain_by_task(joined[other], joined["ds"], task)
        out[name], out[name + "_z"] = gain, gain / se if se > 0 else 0.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="+", help="NAME=ANSWERS.csv,TRUTH.csv or FAMILY:SEED")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print(f"# {machine()}")
    print("# accuracy in %; cross-fitted agreement gains of the Dawid-Skene start (z counted by task)")
    print(f"{'set':<18} {'MV':>6} {'ds':>6} {'mv st':>6}   {'ds - MV (z)':>17}   {'ds - mv start (z)':>17}  {'s':>4}")
    for spec in args.sets:
        started = time.perf_counter()
        name = spec.split("=", 1)[0]
        row = measure(*load(spec))
        print(f"{name:<18} {row['acc_mv']:6.2f} {row['acc_ds']:6.2f} {row['acc_mv_start']:6.2f}   "
              f"{row['ds_vs_mv']:+.4f} ({row['ds_vs_mv_z']:+6.2f})   {row['ds_vs_mv_start']:+.4f} "
              f"({row['ds_vs_mv_start_z']:+6.2f})  {time.perf_counter() - started:4.0f}", flush=True)


if __name__ == "__main__":
    main()
