"""DEEM (the estimator) on data sparse enough for the sparse path: fit, predict, free energy, save/load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from deem_core.data.annotations import AnnotationSet
from deem_core.methods.deem import DEEM
from deem_core.model.engine import path_for, task_outputs


def _platform_frame(n_tasks=1500, n_workers=120, n_classes=3, answers=4, seed=0):
    """Each task answered by ``answers`` of ``n_workers`` one-coin workers (density ~3%)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_classes, n_tasks)
    skill = rng.uniform(0.55, 0.95, n_workers)
    rows = []
    for task in range(n_tasks):
        for worker in rng.choice(n_workers, answers, replace=False):
            right = rng.random() < skill[worker]
            label = truth[task] if right else (truth[task] + rng.integers(1, n_classes)) % n_classes
            rows.append((f"t{task}", f"w{worker:03d}", int(label)))
    return pd.DataFrame(rows, columns=["task", "worker", "label"]), pd.Series(truth, index=[f"t{t}" for t in
                                                                                           range(n_tasks)])


def test_deem_fits_sparse_data_on_the_sparse_path_and_round_trips(tmp_path):
    frame, truth = _platform_frame()
    data = AnnotationSet.from_long(frame)
    assert path_for(data) == "sparse"
    model = DEEM(epochs=3, n_seeds=2, seed=1, init="mv", lr=0.01, device="cpu").fit(data)
    assert model.network_.layout == "blocks"
    labels = model.predict()
    mv = pd.Series(data.classes[data.majority_vote()], index=data.tasks)
    accuracy = (labels.loc[truth.index].to_numpy() == truth.to_numpy()).mean()
    mv_accuracy = (mv.loc[truth.index].to_numpy() == truth.to_numpy()).mean()
    assert accuracy >= mv_accuracy - 0.01, (accuracy, mv_accuracy)
    assert np.isfinite(model.free_energy_).all()
    # predictions on a subset of the tasks (new data) equal the training outputs for those tasks
    subset = frame[frame["task"].isin([f"t{t}" for t in range(50)])]
    proba = model.predict_proba(subset)
    np.testing.assert_allclose(proba.to_numpy(), model.predict_proba().loc[proba.index].to_numpy(), atol=1e-5)
    path = tmp_path / "model.deem"
    model.save(path)
    loaded = DEEM.load(path, device="cpu")  # the device the model was fitted on (default: the GPU where there is one)
    assert loaded.network_.layout == "blocks"
    for a, b in zip(loaded.network_.parameters(), model.network_.parameters()):
        torch.testing.assert_close(a, b)
    energy, _ = task_outputs(loaded.network_, data)
    np.testing.assert_allclose(energy.mean(0).numpy(), model.free_energy_, rtol=1e-5, atol=1e-4)
