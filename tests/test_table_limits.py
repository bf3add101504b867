"""A run's (tasks x classes) tables are bounded before the job starts (found attacking main: a 3.8 MB CSV of
100,000 tasks and 2,000 classes, trained with majority vote, took 5 GB inside the shared server; the readers
accept any number of classes and only DEEM stopped at 1,000)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deem_core.data.annotations import AnnotationSet, DataError
from deem_studio import jobs
from deem_studio.jobs import JobManager
from deem_studio.runs import RunStore


def _codes(n_tasks: int, n_classes: int) -> AnnotationSet:
    rng = np.random.default_rng(0)
    return AnnotationSet.from_codes(pd.RangeIndex(n_tasks), pd.Index(["w1", "w2"]), pd.RangeIndex(n_classes),
                                    np.repeat(np.arange(n_tasks), 2), np.tile([0, 1], n_tasks),
                                    rng.integers(0, n_classes, 2 * n_tasks))


def test_a_run_of_too_many_tasks_x_classes_is_refused_before_it_is_queued(tmp_path):
    manager = JobManager(RunStore(tmp_path))
    data = _codes(100_000, 2_000)
    for kind in ("train", "sweep"):
        with pytest.raises(DataError, match=r"100,000 tasks x 2,000 classes: .* \(1\.5 GiB a table\), more than this "
                                            r"server allows \(512 MiB, DEEM_MAX_TABLE_BYTES\)"):
            manager.submit(kind, {"methods": ["mv"], "epochs": 1}, data=data, owner="a" * 24)
    assert len(manager.store.list()) == 0  # no run was made
    manager.shutdown()


def test_the_table_limit_from_the_environment(monkeypatch):
    data = _codes(1_000, 20)  # 160,000 bytes a table
    jobs.check_table_size(data)
    monkeypatch.setenv("DEEM_MAX_TABLE_BYTES", "100000")
    with pytest.raises(DataError, match="1,000 tasks x 20 classes"):
        jobs.check_table_size(data)
    monkeypatch.setenv("DEEM_MAX_TABLE_BYTES", "nonsense")
    assert jobs.max_table_bytes() == jobs.DEFAULT_MAX_TABLE_BYTES
