"""Size checks count the whole training (data, chains, weights and their copies, a batch, outputs) before
anything is allocated, on the path the data take, and refuse with the largest part and what to change."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deem_core.data.annotations import AnnotationSet, DataError
from deem_core.methods.deem import DEEM
from deem_core.model.sizes import check_problem_size, estimate_training_bytes

GIB = 1 << 30


def test_platform_scale_fits_in_4_gib_on_the_sparse_path_and_not_on_the_dense_one():
    # 1,000,000 tasks x 2,400 workers x 3 classes, 6 answers per task, one layer
    shape = dict(n_tasks=1_000_000, n_workers=2400, n_classes=3, n_answers=6_000_000, max_answers=6)
    sparse = estimate_training_bytes(**shape, path="sparse")
    dense = estimate_training_bytes(**shape, path="dense")
    assert sum(sparse.values()) < 2 * GIB
    assert sparse["weights"] == 4 * (2400 * 2400 * 9 + 2400 * 3 + 2400 * 9 + 2400 * 3 + 3)
    assert sparse["chains"] == 6_000_001 + 8_000_000  # int8 chain per answer, the epoch's task order
    assert sum(dense.values()) > 20 * GIB  # the (tasks x workers) table and its chains alone
    # 200,000 x 50,000 x 5, 3 answers per task: only the co-occurring pairs (at most 9 per task) are stored
    long_tail = estimate_training_bytes(200_000, 50_000, 5, 600_000, 3, path="sparse",
                                        sum_squared_answers=9 * 200_000)
    assert long_tail["weights"] < 0.3 * GIB and sum(long_tail.values()) < GIB


def test_refusal_names_the_largest_part_and_suggests_what_to_change():
    with pytest.raises(DataError, match=r"^big\.csv: training would need about .* GiB \(.*weights.*\).*"
                                        r"dense path.*but 1\.0 GiB is available; try fewer layers.*a sample of the "
                                        r"tasks.*a GPU"):
        check_problem_size(5000, 3, 1, 1, memory_bytes=GIB, source="big.csv", n_tasks=1000, n_answers=5000,
                           max_answers=5, path="dense")
    assert check_problem_size(5000, 3, 1, 1, memory_bytes=GIB, n_tasks=1000, n_answers=5000, max_answers=5,
                              path="sparse") < GIB


def test_deem_refuses_before_training_when_the_budget_is_too_small(monkeypatch):
    from deem_core.model import sizes  # noqa: PLC0415

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"task": np.repeat(np.arange(300), 3), "worker": rng.integers(0, 40, 900),
                          "label": rng.integers(0, 3, 900)}).drop_duplicates(["task", "worker"])
    monkeypatch.setattr(sizes, "_memory_bytes", lambda: 2 * 40_000)  # a 40 kB budget (half of "memory")
    with pytest.raises(DataError, match="training would need about"):
        DEEM(epochs=1, lr=0.01, init="mv", device="cpu").fit(AnnotationSet.from_long(frame))


def test_the_memory_budget_follows_a_containers_limit(tmp_path, monkeypatch):
    # the physical memory alone let a 4 GB container on a big host accept trainings of half the host (attack round 6)
    import os

    from deem_core.model import sizes

    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    limit = tmp_path / "memory.max"
    limit.write_text(f"{3 << 30}\n")
    monkeypatch.setattr(sizes, "CGROUP_LIMITS", (str(limit),))
    assert sizes.machine_memory() == min(physical, 3 << 30)
    assert sizes.memory_budget() == sizes.machine_memory() // 2
    limit.write_text("max\n")  # cgroup v2 without a limit
    assert sizes.machine_memory() == physical
