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


def test_a_class_costs_its_column_not_only_its_cells():
    # 60 tasks x 300,000 classes is 144 MB of cells, a third of the limit, but a column per class: majority vote
    # took the job to 3.4 GB and the Results page's read past 3.5 GB (attack round 16). A column costs ~10.6 KB
    jobs.check_table_size(_codes(60, 20_000))  # ~330 MB: within the 512 MiB
    with pytest.raises(DataError, match=r"60 tasks x 40,000 classes: every method's results hold a probability per "
                                        r"task and class, a column per class \(0\.6 GiB a table\), more than this "
                                        r"server allows \(512 MiB"):
        jobs.check_table_size(_codes(60, 40_000))


def test_the_table_limit_from_the_environment(monkeypatch):
    data = _codes(1_000, 20)  # 160,000 bytes a table
    jobs.check_table_size(data)
    monkeypatch.setenv("DEEM_MAX_TABLE_BYTES", "100000")
    with pytest.raises(DataError, match="1,000 tasks x 20 classes"):
        jobs.check_table_size(data)
    monkeypatch.setenv("DEEM_MAX_TABLE_BYTES", "nonsense")
    assert jobs.max_table_bytes() == jobs.DEFAULT_MAX_TABLE_BYTES


def test_a_deem_job_on_more_classes_than_deem_handles_is_refused_before_it_is_queued(tmp_path):
    """Seen in the browser: a sampled sweep (no table check) of a 3,000-class file was queued and 'failed in
    0.01 s', leaving a failed run on the Runs page. A sweep, or a training with DEEM, is refused before the run
    exists; a training without DEEM is not (majority vote handles any number of classes). The iRBM alone is DEEM
    without layers: it was queued and failed there (forty-third session); the pages say it before a launch."""
    manager = JobManager(RunStore(tmp_path))
    data = _codes(2_000, 1_500)  # 24 MB a table: under the table limit
    assert jobs.deem_refusal(data).endswith("1,500 classes is more than DEEM handles (at most 1,000); check that the "
                                            "label column holds class labels, not free text, scores or ids")
    assert jobs.deem_refusal(_codes(2_000, 1_000)) is None
    for kind, config in (("sweep", {"sample_tasks": 500, "epochs": 1}), ("train", {"methods": ["mv", "deem"]}),
                         ("train", {}), ("train", {"methods": ["irbm"]})):
        with pytest.raises(DataError, match=r"1,500 classes is more than DEEM handles \(at most 1,000\)"):
            manager.submit(kind, config, data=data, owner="a" * 24)
    assert len(manager.store.list()) == 0  # no run was made
    run_id = manager.submit("train", {"methods": ["mv"]}, data=data, owner="a" * 24)
    assert manager.wait(run_id, timeout=120).status == "finished"
    manager.shutdown()


def test_a_job_whose_confusion_arrays_are_too_large_is_refused_before_it_is_queued(tmp_path):
    """Attack round 49: 6,000 tasks x 8,000 classes pass the (tasks x classes) bound (491 MiB a table), but
    Dawid-Skene's (workers x classes x classes) confusion arrays took the server +5.8 GB in 37 s with 4 workers; here
    2 workers: 977 MiB an array. Majority vote alone needs none and goes on; a config without methods trains the
    defaults and is checked as such (read 48)."""
    manager = JobManager(RunStore(tmp_path))
    data = _codes(6_000, 8_000)
    jobs.check_table_size(data)  # (within the table bound)
    with pytest.raises(DataError, match=r"2 workers x 8,000 classes: Dawid-Skene fits a confusion matrix of every class "
                                        r"against every class for each worker \(976\.6 MiB an array, held several times\), "
                                        r"more than this server allows \(512 MiB, DEEM_MAX_TABLE_BYTES\)"):
        manager.submit("train", {"methods": ["mv", "ds"], "epochs": 1}, data=data, owner="a" * 24)
    assert len(manager.store.list()) == 0  # no run was made
    with pytest.raises(DataError, match="DEEM fits a confusion matrix"):
        manager.submit("train", {"epochs": 1}, data=AnnotationSet.from_codes(  # (the default: DEEM; 70 workers x
            pd.RangeIndex(100), pd.Index([f"w{w}" for w in range(70)]), pd.RangeIndex(1_000),  # 1,000 classes)
            np.repeat(np.arange(100), 70), np.tile(np.arange(70), 100), np.arange(7_000) % 1_000), owner="a" * 24)
    jobs.check_methods_fit(data, ["mv"])
    with pytest.raises(DataError, match="Cluster-weighted Dawid-Skene fits"):
        jobs.check_methods_fit(data, ["cwds"])
    manager.shutdown()


def test_a_job_whose_label_text_is_too_large_is_refused_before_it_is_queued(tmp_path):
    """Attack round 54: 20,000 tasks of two classes named with 10,000 characters (a 135 KB Parquet file) took a job of
    three methods +2.0 GB, each results table repeating the label's text per task in several columns, where the
    (tasks x classes) bound counted 0.3 MB. The text is counted too; short names on as many tasks go on."""
    manager = JobManager(RunStore(tmp_path))
    long_names = pd.Index(["a" * 10_000, "b" * 10_000])

    def named(classes: pd.Index, n_tasks: int) -> AnnotationSet:
        return AnnotationSet.from_codes(pd.RangeIndex(n_tasks), pd.Index(["w1", "w2"]), classes,
                                        np.repeat(np.arange(n_tasks), 2), np.tile([0, 1], n_tasks),
                                        np.tile([0, 1], n_tasks))

    for kind in ("train", "sweep"):
        with pytest.raises(DataError, match=r"20,000 tasks and class labels of up to 10,000 bytes: every method's "
                                            r"results repeat the label's text for each task, in several columns \(763 "
                                            r"MiB a table\), more than this server allows \(512 MiB"):
            manager.submit(kind, {"methods": ["mv"], "epochs": 1}, data=named(long_names, 20_000), owner="a" * 24)
    assert len(manager.store.list()) == 0  # no run was made
    jobs.check_table_size(named(long_names, 10_000))  # 381 MiB: within the bound
    jobs.check_table_size(named(pd.Index(["a", "b"]), 1_000_000))
    manager.shutdown()
