"""Where Dawid-Skene's EM stops, and what that does to its accuracy on sets with a flat likelihood.

For each set: accuracy (%) of ``fit_dawid_skene`` run for a fixed number of EM iterations (no tolerance), without
and with the shared prior of the Dawid-Skene start (``prior_strength`` 0 and 5), the engine's own stopping rule
(tol 1e-4 per answer, at most 100 iterations) with its log-likelihood, and crowd-kit's DawidSkene (100 iterations).
On the AmpData-like sets (5 experts x 5 classes) the answer moves by points with the iteration count, in opposite
directions on two sets: the apph line of issue 15 is read with this in mind (closing note).

    PYTHONPATH=. python benchmarks/ds_convergence.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_set, machine  # noqa: E402
from families import make_set  # noqa: E402

from deem_core.data.annotations import AnnotationSet  # noqa: E402
from deem_core.methods.dawid_skene import fit_dawid_skene  # noqa: E402

SETS = [("apph", 2), ("ampdata", None), ("apph", 0), ("apph", 1), ("experts", 0), ("independent", 1),
        ("digits_experts", None)]
ITERATIONS = (20, 50, 100, 200, 1000)


def accuracy(data: AnnotationSet, posterior: np.ndarray, truth) -> float:
    labels = np.asarray(data.classes[posterior.argmax(1)])
    return 100.0 * float(np.mean(labels == truth.reindex(data.tasks).to_numpy()))


def main() -> None:
    from crowdkit.aggregation import DawidSkene  # noqa: PLC0415

    print(f"# {machine()}")
    head = " ".join(f"{'p0 it' + str(i):>9}" for i in ITERATIONS) + " " + " ".join(f"{'p5 it' + str(i):>9}"
                                                                                    for i in ITERATIONS)
    print(f"{'set':16} {head} {'engine':>7} {'loglik':>11} {'crowdkit':>8}")
    for name, seed in SETS:
        df, truth = make_set(name, seed) if seed is not None else load_set(name)
        data = AnnotationSet.from_long(df)
        cells = [accuracy(data, fit_dawid_skene(data, max_iter=it, tol=0.0, prior_strength=prior).posterior, truth)
                 for prior in (0.0, 5.0) for it in ITERATIONS]
        engine = fit_dawid_skene(data)
        kit = DawidSkene(n_iter=100).fit_predict(df)
        kit_acc = 100.0 * float(np.mean(kit.to_numpy() == truth.reindex(kit.index).to_numpy()))
        label = f"{name}:{seed}" if seed is not None else name
        print(f"{label:16} " + " ".join(f"{v:9.2f}" for v in cells)
              + f" {accuracy(data, engine.posterior, truth):7.2f} {engine.log_likelihood:11.1f} {kit_acc:8.2f}",
              flush=True)


if __name__ == "__main__":
    main()
