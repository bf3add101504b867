"""Choosing the depth with every depth's candidates in one batched model, against one depth after another.

``DEEM(n_layers="auto")`` trains six candidates (two starts x 0 / 1 / 2 layers). Depth by depth (the CPU's way)
that is three batched trainings one after another; together (the GPU's way, ``deem_core.methods.choose.
depths_together``) one batched model whose runs have their own depths (``DEEMNetwork.run_depths``). Per set, both
ways on the device named (together is forced on a CPU here -- what a GPU runs, on either path):

* ``ops/step``: operators dispatched per training step of all six candidates, counted with a
  ``TorchDispatchMode`` while the candidates train (a short fit of ``--count-epochs``). On the H200 a step is
  launch-bound (``benchmarks/results/gpu_h200.txt``: ~740 kernel launches, GPU busy 5-7%), so the count of
  operators is what the wall time of a step follows there; on a CPU the arithmetic counts as well.
* ``train s``: wall seconds of the candidates' training (the GPU synchronised), and ``fit s`` of the whole fit,
  ``CPU s`` its process time.
* ``max |d loglik|`` between the two ways' held-out log-likelihoods per answer, ``max |d crit|`` between their
  criteria (the mean per answer) and whether they chose the same candidate: together computes what depth by depth
  computes (each run with its own seed and sampler stream; a batched matrix product of another batch size may round
  differently, and 100 epochs of accept/reject decisions carry such a difference on).

Usage::

    python benchmarks/depths_together.py --device cpu --out benchmarks/results/depths_together_cpu.txt
    python benchmarks/depths_together.py --device cuda --sets groups:0 tree3k
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import machine  # noqa: E402
from selection import load  # noqa: E402

from deem_core import DEEM  # noqa: E402
from deem_core.data.annotations import AnnotationSet  # noqa: E402
from deem_core.methods import deem as deem_module  # noqa: E402
from deem_core.model import training  # noqa: E402
from deem_core.model.training import resolve_device  # noqa: E402

DEFAULT_SETS = ["groups:0", "copies:0", "independent:0", "sparse:0", "experts:0", "spammers:0", "imbalance:0",
                "apph:0", "condind", "tree3k", "digits", "mnist_like:0"]


class _OpCounter(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        return func(*args, **(kwargs or {}))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _fit(data: AnnotationSet, device: torch.device, epochs: int, together: bool, count: bool = False):
    """One ``n_layers="auto"`` fit; returns the model, wall s, CPU s, training wall s, ops and batch steps."""
    counter = _OpCounter() if count else None
    steps = [0]
    train_s = [0.0]
    original_step, original_train = training.batch_step, deem_module.DEEM._train_config

    def counted_step(*args, **kwargs):
        steps[0] += 1
        return original_step(*args, **kwargs)

    def timed_train(self, *args, **kwargs):
        _sync(device)
        started = time.perf_counter()
        if counter is None:
            result = original_train(self, *args, **kwargs)
        else:
            with counter:
                result = original_train(self, *args, **kwargs)
        _sync(device)
        train_s[0] += time.perf_counter() - started
        return result

    original_rule = deem_module.DEEM._depths_together
    training.batch_step = counted_step
    deem_module.DEEM._train_config = timed_train
    # together: what a GPU runs (either path)
    deem_module.DEEM._depths_together = lambda self, d, depths, runs: together and len(depths) > 1
    try:
        _sync(device)
        wall, cpu = time.perf_counter(), time.process_time()
        model = DEEM(n_layers="auto", epochs=epochs, device=str(device)).fit(data)
        _sync(device)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        training.batch_step = original_step
        deem_module.DEEM._train_config = original_train
        deem_module.DEEM._depths_together = original_rule
    # batch steps: one per mini-batch per round (a round trains all its candidates in each step)
    return model, wall, cpu, train_s[0], (counter.ops if counter else 0), steps[0]


def measure(spec: str, device: torch.device, epochs: int, count_epochs: int) -> dict:
    df, truth = load(spec)
    data = AnnotationSet.from_long(df)
    out = {"set": spec, "shape": f"{data.n_tasks:,} x {data.n_workers} x {data.n_classes}",
           "path": deem_module.path_for(data, "auto")}
    fits = {}
    for together in (False, True):
        key = "together" if together else "apart"
        _, _, _, _, ops, steps = _fit(data, device, count_epochs, together, count=True)
        rounds = 1 if together else 3
        out[f"{key}_ops_per_step"] = ops / max(1, steps / rounds)  # per step of all six candidates
        model, wall, cpu, train_s, _, _ = _fit(data, device, epochs, together)
        out[f"{key}_wall"], out[f"{key}_cpu"], out[f"{key}_train"] = wall, cpu, train_s
        fits[key] = model
    a, b = fits["apart"].candidates_, fits["together"].candidates_
    out["max_dloglik"] = max(float(np.abs(x.loglik - y.loglik).max()) for x, y in zip(a, b))
    out["max_dcriterion"] = max(abs(float(x.criterion.mean() - y.criterion.mean())) for x, y in zip(a, b))
    out["same_choice"] = ((fits["apart"].init_, fits["apart"].n_layers_) == (fits["together"].init_,
                                                                             fits["together"].n_layers_))
    out["choice"] = f"{fits['together'].init_}{fits['together'].n_layers_}"
    out["apart_choice"] = f"{fits['apart'].init_}{fits['apart'].n_layers_}"
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sets", nargs="*", default=DEFAULT_SETS)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--count-epochs", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    if device.type == "cuda":  # CUDA's start-up paid once, before any timing
        _fit(AnnotationSet.from_long(load("groups:0")[0]), device, 1, True)
    lines = [f"# python benchmarks/depths_together.py --device {args.device} --epochs {args.epochs}; "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {machine()}; load average "
             f"{os.getloadavg()[0]:.1f}",
             "# ops/step: operators per training step of the six candidates (apart: the three depths' steps summed)",
             f"{'set':<14} {'shape':<20} {'path':<6} {'ops/step apart':>14} {'together':>9} {'ratio':>6} "
             f"{'train s apart':>13} {'together':>9} {'fit s apart':>11} {'together':>9} {'CPU s apart':>11} "
             f"{'together':>9} {'max|dloglik|':>12} {'max|dcrit|':>10} {'same choice':>11}"]
    print("\n".join(lines), flush=True)
    for spec in args.sets:
        r = measure(spec, device, args.epochs, args.count_epochs)
        line = (f"{r['set']:<14} {r['shape']:<20} {r['path']:<6} {r['apart_ops_per_step']:>14,.0f} "
                f"{r['together_ops_per_step']:>9,.0f} {r['together_ops_per_step'] / r['apart_ops_per_step']:>6.2f} "
                f"{r['apart_train']:>13.2f} {r['together_train']:>9.2f} {r['apart_wall']:>11.2f} "
                f"{r['together_wall']:>9.2f} {r['apart_cpu']:>11.2f} {r['together_cpu']:>9.2f} "
                f"{r['max_dloglik']:>12.1e} {r['max_dcriterion']:>10.1e} {('yes ' + r['choice']) if r['same_choice'] else 'no ' + r['apart_choice'] + '/' + r['choice']:>11}")
        print(line, flush=True)
        lines.append(line)
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
