"""Seeded ``DEEM`` fits pinned in ``tests/data/deem_golden.json`` (posteriors, chosen start, fitted state),
and a model file written by the format-1 ``DEEM.save`` (``tests/data/deem_model_v1.deem``) that every later
version must still load.

Regenerate (only for an intended change of the numerics, saying why in the commit):
    .venv/bin/python tests/deem_cases.py            (the model file is never rewritten once it exists)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from deem_core.methods.deem import DEEM  # noqa: E402

from training_cases import _labels  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
GOLDEN = DATA / "deem_golden.json"
MODEL_V1 = DATA / "deem_model_v1.deem"


def long_frame(n_tasks: int, n_workers: int, n_classes: int, density: float, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    labels, truth = _labels(n_tasks, n_workers, n_classes, density, seed)
    t, w = np.nonzero(labels >= 0)
    df = pd.DataFrame({"task": [f"t{i:03d}" for i in t], "worker": [f"w{j}" for j in w],
                       "label": [f"c{c}" for c in labels[t, w]]})
    truth = pd.Series([f"c{c}" for c in truth], index=pd.Index([f"t{i:03d}" for i in range(n_tasks)], name="task"))
    return df, truth


def _case(name: str) -> tuple[DEEM, pd.DataFrame, pd.Series | None]:
    df, truth = long_frame(160, 6, 3, 0.7, seed=21)
    gold = truth.iloc[::4]
    # the Dawid-Skene start as it was pinned (plain maximum likelihood); the shared prior's own tests are in
    # tests/test_ds_prior.py
    common = dict(epochs=3, batch_size=64, device="cpu", ds_prior=0.0)
    if name == "mv_two_seeds":
        return DEEM(n_layers=1, init="mv", n_seeds=2, seed=3, **common), df, None
    if name == "ds_zero_layers":
        return DEEM(n_layers=0, init="ds", **common), df, None
    if name == "auto_with_gold_supervised":
        return DEEM(n_layers=1, init="auto", n_seeds=2, supervised_weight=0.5, **common), df, gold
    if name == "auto_lr_sweep":
        return DEEM(n_layers=1, lr="auto", n_seeds=1, **{**common, "epochs": 2}), df, None
    raise KeyError(name)


CASES = ["mv_two_seeds", "ds_zero_layers", "auto_with_gold_supervised", "auto_lr_sweep"]


def _plain(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def fitted_summary(model: DEEM) -> dict[str, Any]:
    """What a fit is pinned by: outputs and every scalar of the fitted state."""
    history = model.history_.drop(columns=["seconds"])
    return {
        "posterior": model.posterior_.astype(float).tolist(),
        "class_maps": _plain(model.class_maps_), "seed_agreement": _plain(model.seed_agreement_),
        "free_energy": _plain(model.free_energy_.astype(float)), "run_labels": _plain(model.run_labels_),
        "history": _plain(history.to_dict(orient="list")), "lr": float(model.lr_), "init": model.init_,
        "init_scores": _plain(model.init_scores_), "init_evidence": _plain(model.init_evidence_),
        "dependence": _plain(model.dependence_), "gold_accuracy": _plain(model.gold_accuracy_),
        "dead_units": _plain(model.dead_units_), "run_dead_units": _plain(model.run_dead_units_),
        "run_status": list(model.run_status_), "seeds": list(model.seeds_),
        "class_map_source": model.class_map_source_, "n_epochs": int(model.n_epochs_),
        "parameters": [p.detach().double().reshape(-1).tolist() for p in model.network_.parameters()],
    }


def run_case(name: str) -> tuple[DEEM, dict[str, Any]]:
    torch.set_num_threads(1)
    model, df, gold = _case(name)
    model.fit(df, gold=gold)
    return model, fitted_summary(model)


def main() -> None:
    out = {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cases": {}}
    for name in CASES:
        model, summary = run_case(name)
        out["cases"][name] = summary
        if name == "auto_with_gold_supervised" and not MODEL_V1.exists():
            model.save(MODEL_V1)
            print(f"wrote {MODEL_V1}")
    GOLDEN.write_text(json.dumps(out, allow_nan=True))
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
