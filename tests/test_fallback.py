"""GPU out-of-memory fallback (simulated: no GPU is needed)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch

from deem_core.model.fallback import train_with_memory_fallback


def test_halves_the_batch_then_moves_to_cpu_and_says_so():
    calls = []

    def train(batch_size, device):
        calls.append((batch_size, device.type))
        if device.type == "cuda":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return "trained"

    notes = []
    result, batch, device = train_with_memory_fallback(train, 1024, torch.device("cuda"), notes)
    assert result == "trained" and batch == 128 and device.type == "cpu"
    assert calls == [(1024, "cuda"), (512, "cuda"), (256, "cuda"), (128, "cuda"), (128, "cpu")]
    assert notes[0] == "GPU out of memory with batch size 1024: retrying with batch size 512"
    assert notes[-1] == "GPU out of memory even with batch size 128: training on the CPU instead"


def test_stops_shrinking_when_a_smaller_batch_fits():
    def train(batch_size, device):
        if batch_size > 300:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return batch_size

    notes = []
    assert train_with_memory_fallback(train, 1024, torch.device("cuda"), notes)[:2] == (256, 256)
    assert len(notes) == 2


def test_other_errors_and_cpu_errors_propagate():
    def broken(batch_size, device):
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        train_with_memory_fallback(broken, 1024, torch.device("cuda"), [])

    def cpu_oom(batch_size, device):
        raise torch.cuda.OutOfMemoryError("odd")

    with pytest.raises(torch.cuda.OutOfMemoryError):
        train_with_memory_fallback(cpu_oom, 1024, torch.device("cpu"), [])


def test_a_fit_whose_labels_are_a_fallback_warns_from_python():
    """Walkthrough 47: from Python a fit whose labels the safety rule took from the cluster-weighted Dawid-Skene said
    nothing (the reason kept in warnings_ only); the command line says it in its own lines, not twice."""
    import warnings  # noqa: PLC0415

    from deem_core import DEEM  # noqa: PLC0415
    from deem_core.methods.deem import FallbackWarning  # noqa: PLC0415

    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 600)
    rows = []
    for t, y in enumerate(truth):  # four independent workers and a pair (w5 copies w4)
        labels = [y if rng.random() < 0.75 else rng.integers(0, 3) for _ in range(5)]
        labels.append(labels[4] if rng.random() < 0.85 else rng.integers(0, 3))
        rows += [(f"t{t}", f"w{w}", int(label)) for w, label in enumerate(labels)]
    frame = pd.DataFrame(rows, columns=["task", "worker", "label"])
    with pytest.warns(FallbackWarning, match="the safety rule returned cluster-weighted Dawid-Skene"):
        model = DEEM(epochs=2, seed=0, device="cpu").fit(frame)
    assert model.fallback_ == "cluster-weighted Dawid-Skene (safety rule)"
    # the command line says how to train DEEM's own model instead (said nowhere; walkthrough 50)
    from deem_core.cli.common import print_selection  # noqa: PLC0415

    said = io.StringIO()
    print_selection(model, said)
    assert said.getvalue().splitlines()[-1] == (
        "choice: --init ds (or mv) with a number of --layers trains DEEM's own model without this check (nothing "
        "held out, no reference compared)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fit of its own model warns nothing
        DEEM(init="ds", epochs=2, seed=0, device="cpu").fit(frame)


def test_labels_spelled_two_ways_warn_from_python():
    """Walkthrough 49: from Python a fit on labels with a Cyrillic "А" beside "A" trained six classes for four
    without a word (the Data page says so; warnings_ only kept it)."""
    from deem_core import DEEM  # noqa: PLC0415
    from deem_core.methods.deem import LabelWarning  # noqa: PLC0415

    rng = np.random.default_rng(1)
    rows = [(f"t{t}", f"w{w}", str(rng.choice(["A", "B", "\u0410"]))) for t in range(60) for w in range(4)]
    frame = pd.DataFrame(rows, columns=["task", "worker", "label"])
    with pytest.warns(LabelWarning, match="spelled in more than one way"):
        DEEM(init="ds", epochs=2, seed=0, device="cpu").fit(frame)
