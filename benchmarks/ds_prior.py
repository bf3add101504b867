"""How the Dawid-Skene start's shared prior (``ds_prior``) changes accuracy, by strength, on every kind of set.

Two tables:

* **Dawid-Skene alone** (cheap): majority vote, plain Dawid-Skene and Dawid-Skene with the shared prior at
  several strengths (``fit_dawid_skene(prior_strength=...)``) on the bundled sample sets, the shared real sets,
  the generated validation families (benchmarks/families.py) and platform-shaped long-tail sets
  (sample_data/make_platform_data.py: 3-5 answers per task, Zipf-like activity, half as many workers as tasks);
* **DEEM default** (``--deem``): ``DEEM(ds_prior=s)`` with everything else at its default, 3 seeds, on the sets
  named with ``--deem-sets``.

Usage::

    python benchmarks/ds_prior.py                                   # the Dawid-Skene table
    python benchmarks/ds_prior.py --deem --deem-sets duck dog ampdata digits_experts
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
sys.path.insert(0, str(HERE.parent / "sample_data"))
from accuracy import run_row  # noqa: E402
from common import available_sets, load_set, machine  # noqa: E402
from families import FAMILIES, make_set  # noqa: E402
from make_platform_data import PlatformShape, make_platform_data  # noqa: E402

from deem_core.analysis.scoring import accuracy  # noqa: E402
from deem_core.data.annotations import AnnotationSet  # noqa: E402
from deem_core.methods.dawid_skene import DEFAULT_DS_PRIOR, fit_dawid_skene  # noqa: E402

STRENGTHS = [0.0, 1.0, 2.0, 5.0, 10.0, 20.0]
#: platform-shaped long tails: (tasks, workers, classes, answers per task, Zipf exponent), 2 seeds each
PLATFORM = [(6000, 3000, 4, (3, 3), 1.0), (4000, 2000, 3, (3, 5), 1.0), (10000, 5000, 5, (3, 3), 0.8)]


def all_sets() -> list[str]:
    families = [f"{name}:{seed}" for name in FAMILIES if name != "mnist_like" for seed in range(3)]
    platform = [f"platform:{i}:{seed}" for i in range(len(PLATFORM)) for seed in (10, 11)]
    return available_sets() + families + platform


def load(spec: str) -> tuple[pd.DataFrame, pd.Series]:
    if spec.startswith("platform:"):
        _, i, seed = spec.split(":")
        n, d, k, answers, zipf = PLATFORM[int(i)]
        df, truth, _ = make_platform_data(PlatformShape(n, d, k, answers, zipf=zipf, seed=int(seed)))
        return df, truth
    if ":" in spec:
        name, seed = spec.split(":")
        return make_set(name, int(seed))
    return load_set(spec)


def ds_table(sets: list[str]) -> pd.DataFrame:
    rows = []
    for spec in sets:
        df, truth = load(spec)
        data = AnnotationSet.from_long(df)
        row = {"set": spec, "tasks": data.n_tasks, "workers": data.n_workers, "K": data.n_classes,
               "answers/worker": data.n_answers / data.n_workers,
               "MV": 100 * accuracy(pd.Series(data.classes.take(data.majority_vote()), index=data.tasks), truth)}
        for strength in STRENGTHS:
            fit = fit_dawid_skene(data, prior_strength=strength)
            labels = pd.Series(data.classes.take(fit.posterior.argmax(1)), index=data.tasks)
            row["DS" if strength == 0 else f"s={strength:g}"] = 100 * accuracy(labels, truth)
        rows.append(row)
        print(f"{spec:22s} " + " ".join(f"{k} {v:.2f}" for k, v in row.items() if k not in ("set", "tasks", "workers", "K")),
              file=sys.stderr, flush=True)
    return pd.DataFrame(rows)


def deem_table(sets: list[str], strengths: list[float], epochs: int, seeds: int) -> pd.DataFrame:
    rows = []
    for spec in sets:
        df, truth = load(spec)
        data = AnnotationSet.from_long(df)
        for strength in strengths:
            cpu = time.process_time()
            accs, _ = run_row("deem", {"ds_prior": strength}, df, truth, epochs, seeds, data=data)
            accs = 100 * np.asarray(accs)
            rows.append({"set": spec, "ds_prior": strength, "mean": float(np.mean(accs)), "std": float(np.std(accs)),
                         "cpu_s": time.process_time() - cpu})
            print(f"{spec:22s} ds_prior {strength:g}: {np.mean(accs):.2f} ± {np.std(accs):.2f}", file=sys.stderr,
                  flush=True)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="*", default=None, help="sets of the Dawid-Skene table (default: all)")
    parser.add_argument("--deem", action="store_true", help="also the DEEM-default table")
    parser.add_argument("--deem-sets", nargs="*", default=["duck", "dog", "ampdata", "digits_experts"])
    parser.add_argument("--deem-strengths", nargs="*", type=float, default=[0.0, 2.0, DEFAULT_DS_PRIOR])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"# python benchmarks/ds_prior.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {machine()}; load average {os.getloadavg()[0]:.1f}")
    print(f"# accuracy in %; DS = plain Dawid-Skene (prior strength 0); s=... = the shared prior at that strength "
          f"(pseudo-answers per true class); the default is {DEFAULT_DS_PRIOR:g}")
    frame = ds_table(args.sets or all_sets())
    print("\n## Dawid-Skene alone\n")
    print(frame.round(2).to_string(index=False))
    family = frame["set"].str.split(":").str[0]
    means = frame.drop(columns=["set", "tasks", "workers", "K"]).groupby(family).mean()
    print("\n## Mean per family (bundled and real sets are their own family)\n")
    print(means.round(2).to_string())
    print("\nmean of all sets: " + ", ".join(f"{k} {v:.2f}" for k, v in
                                           frame.drop(columns=["set", "tasks", "workers", "K", "answers/worker"]).mean().items()))
    if args.deem:
        deem = deem_table(args.deem_sets, args.deem_strengths, args.epochs, args.seeds)
        print(f"\n## DEEM default by ds_prior ({args.epochs} epochs, {args.seeds} seeds; mean ± std over seeds)\n")
        wide = deem.assign(cell=deem["mean"].map("{:.2f}".format) + " ± " + deem["std"].map("{:.2f}".format))
        print(wide.pivot(index="set", columns="ds_prior", values="cell").to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
