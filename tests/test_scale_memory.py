"""Pathological sparse shapes load and aggregate with bounded memory (issues 14 and 16).

Each case runs in a fresh Python process that reports its resident memory after the imports ("idle") and
its peak (``VmHWM``: its own; ``ru_maxrss`` would carry pytest's over) after the work: the dense tasks x workers
table these shapes used to build was 40,000 x 40,000 (12 GiB) and 200,000 x 1,000,000 (1.46 TiB).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

PRELUDE = f"""
import json, resource, sys, time
sys.path.insert(0, {str(ROOT / 'sample_data')!r})
import numpy as np, pandas as pd
from deem_core.analysis import agreement
from deem_core.data.annotations import AnnotationSet, DataError
from deem_core.data.readers import read_annotations
from deem_core.methods.registry import fit_method
from make_platform_data import make_distinct_workers, make_new_every_row
def rss_mb():
    # VmHWM (KiB): this process's own peak; ru_maxrss carries the forking parent's over
    return int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]) / 1024
idle = rss_mb()
started = time.process_time()
"""

WORK = """
data.summary()
mv = fit_method("mv", data)
ds = fit_method("ds", data)
alpha = agreement.krippendorff_alpha(data)
coverage = agreement.worker_coverage(data)
pairwise, overlap = agreement.pairwise_agreement(data, max_workers=60)
try:
    data.dense_labels(purpose="DEEM training")
    refused = None
except DataError as exc:
    refused = str(exc)
mv_accuracy = float((mv.labels_.reindex(truth.index).to_numpy() == truth.to_numpy()).mean())
print(json.dumps({"idle": idle, "peak": rss_mb(), "cpu": time.process_time() - started, "tasks": data.n_tasks,
                  "workers": data.n_workers, "answers": data.n_answers, "mv_tasks": len(mv.labels_),
                  "ds_tasks": len(ds.labels_), "mv_accuracy": mv_accuracy, "coverage_rows": len(coverage),
                  "refused": refused}))
"""


def _run(script: str, timeout: int = 600) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_new_task_and_a_new_worker_on_every_row(tmp_path):
    """The 578 KB file of issue 14: 40,000 rows, each a new task and a new worker (measured: +35 MB)."""
    path = tmp_path / "rows.csv"
    script = PRELUDE + f"""
frame, truth = make_new_every_row(40_000)
frame.to_csv({str(path)!r}, index=False)
idle = rss_mb()
data = read_annotations({str(path)!r})
""" + WORK
    out = _run(script)
    assert (out["tasks"], out["workers"], out["answers"]) == (40_000, 40_000, 40_000)
    assert out["mv_tasks"] == out["ds_tasks"] == 40_000 and out["coverage_rows"] == 40_000
    assert 0.65 < out["mv_accuracy"] < 0.75  # one answer per task from workers of 70% accuracy
    assert "40,000 tasks x 40,000 workers (11.9 GiB)" in out["refused"]
    assert out["peak"] - out["idle"] < 300, out


@pytest.mark.slow
def test_a_million_distinct_workers():
    """1,000,000 workers answering one task each (200,000 tasks x 5): the 1.46 TiB table of issue 14
    (measured: +480 MB, 4 s CPU after the imports)."""
    script = PRELUDE + """
frame, truth = make_distinct_workers(1_000_000)
data = AnnotationSet.from_long(frame)
del frame
""" + WORK
    out = _run(script)
    assert (out["tasks"], out["workers"], out["answers"]) == (200_000, 1_000_000, 1_000_000)
    assert out["mv_tasks"] == out["ds_tasks"] == 200_000 and out["coverage_rows"] == 1_000_000
    assert out["mv_accuracy"] > 0.8  # 5 answers per task from workers of 78% mean accuracy
    assert "200,000 tasks x 1,000,000 workers (1490.1 GiB)" in out["refused"]
    assert out["peak"] - out["idle"] < 1200, out


@pytest.mark.slow
def test_a_million_distinct_workers_through_the_command(tmp_path):
    """The same set as a .csv.gz file through ``deem aggregate --method mv`` and ``--method ds``."""
    path = tmp_path / "workers.csv.gz"
    script = PRELUDE + f"""
frame, truth = make_distinct_workers(1_000_000)
frame.to_csv({str(path)!r}, index=False)
del frame
idle = rss_mb()
from deem_core.cli import main
codes = [main(["aggregate", {str(path)!r}, "-o", {str(tmp_path / 'out.csv')!r}, "--method", method, "--no-progress"])
         for method in ("mv", "ds")]
out = pd.read_csv({str(tmp_path / 'out.csv')!r})
print(json.dumps({{"idle": idle, "peak": rss_mb(), "codes": codes, "rows": len(out)}}))
"""
    out = _run(script)
    assert out["codes"] == [0, 0] and out["rows"] == 200_000
    assert out["peak"] - out["idle"] < 1500, out


def test_deem_trains_the_long_tail_shape_on_the_sparse_path_without_a_dense_table():
    """200,000 tasks x 50,000 workers x 5 classes, 3 answers per task (issue 16's long-tail set): the dense table
    would be 112 GiB and the all-pairs layer (250,000 units squared) 233 GiB; DEEM must take the sparse path,
    store only the co-occurring pairs, and train an epoch within the size check's estimate (measured: +230 MB
    over the data, estimate 401 MB; 10 s wall for the whole test at load 5)."""
    script = PRELUDE + """
import torch
from make_platform_data import PRESETS, make_platform_data
from deem_core.methods.deem import DEFAULT_LR
from deem_core.model.engine import check_training_size, path_for, task_data, train_annotations
from deem_core.model.training import TrainingConfig
frame, truth, _ = make_platform_data(PRESETS["longtail"])
data = AnnotationSet.from_long(frame)
del frame
idle = rss_mb()
config = TrainingConfig(n_layers=1, epochs=1, device="cpu")
estimate = check_training_size(data, config, 1)
prepared = task_data(data, config, torch.device("cpu"))
result = train_annotations(data, [DEFAULT_LR], [0], config, prepared=prepared)
network = result.network
print(json.dumps({"idle": idle, "peak": rss_mb(), "path": path_for(data), "layout": network.layout,
                  "pairs": network.n_pairs, "stored_all": network.pair_keys is None, "estimate": estimate / 2**20,
                  "shape": [data.n_tasks, data.n_workers, data.n_classes, data.n_answers],
                  "status": result.status, "epochs": result.epochs_run}))
"""
    out = _run(script)
    assert out["shape"] == [200_000, 50_000, 5, 600_000]
    assert (out["path"], out["layout"], out["stored_all"]) == ("sparse", "blocks", False)
    # each task's 3 x 3 ordered worker pairs at most, plus every worker's own pair
    assert out["pairs"] <= 9 * 200_000 + 50_000
    assert out["status"] == ["finished"] and out["epochs"] == 1
    assert out["estimate"] < 1024  # the whole training, counted before allocating
    assert out["peak"] - out["idle"] < out["estimate"] + 200, out


def test_the_training_estimate_counts_each_answer_slots_k_by_k_weights():
    """Each answer slot of the sparse path gathers its worker's K x K iRBM weights, several copies in a step: a 2 MB
    upload of 2,000 tasks x 250 answers x 40 classes was estimated at 1.9 GiB and took the server past 5 GB (attack
    round 66), and 600 tasks of 50 answers x 60 classes took +3.07 GB where the estimate said 182 MB. 300 tasks of 50
    answers x 40 classes, 0 layers, one epoch: the estimate covers the peak (measured +727 MB, estimate 928 MB;
    before, 61 MB)."""
    script = PRELUDE + """
import torch
from deem_core.methods.deem import DEFAULT_LR
from deem_core.model.engine import check_training_size, path_for, task_data, train_annotations
from deem_core.model.training import TrainingConfig
rng = np.random.default_rng(66)
n, per_task, d, k = 300, 50, 400, 40
workers = np.concatenate([rng.choice(d, per_task, replace=False) for _ in range(n)])
frame = pd.DataFrame({"task": np.repeat(np.arange(n), per_task), "worker": workers,
                      "label": rng.integers(k, size=n * per_task)})
data = AnnotationSet.from_long(frame, classes=range(k))
del frame
idle = rss_mb()
config = TrainingConfig(n_layers=0, epochs=1, device="cpu")
estimate = check_training_size(data, config, 1, memory_bytes=1 << 62)
result = train_annotations(data, [DEFAULT_LR], [0], config)
print(json.dumps({"idle": idle, "peak": rss_mb(), "path": path_for(data), "estimate": estimate / 2**20,
                  "status": result.status}))
"""
    out = _run(script)
    assert out["path"] == "sparse" and out["status"] == ["finished"]
    grown = out["peak"] - out["idle"]
    assert grown > 300, out  # (the K x K slots are what this measures)
    assert grown < out["estimate"] < 3 * grown, out


GUARDED_FIT = PRELUDE + """
import os
from deem_studio import jobs
from deem_core.methods.deem import DEEM
from deem_core.model.engine import path_for
rng = np.random.default_rng(67)
n, per_task, d, k = SHAPE
workers = np.concatenate([rng.choice(d, per_task, replace=False) for _ in range(n)])
frame = pd.DataFrame({"task": np.repeat(np.arange(n), per_task), "worker": workers,
                      "label": rng.integers(k, size=n * per_task)})
data = AnnotationSet.from_long(frame, classes=range(k))
del frame
config = json.loads(sys.argv[1])
idle = rss_mb()
model = DEEM(**{key: value for key, value in config.items() if key != "methods"}).fit(data)
grown = rss_mb() - idle
verdicts = {}
for factor in (1.0, 3.0):  # the job's check at a bound of the growth measured, and of three times it
    os.environ["DEEM_MAX_JOB_MEMORY"] = str(int(factor * grown * 2**20))
    try:
        jobs.check_job_memory("train", config, data)
        verdicts[str(factor)] = "passed"
    except DataError:
        verdicts[str(factor)] = "refused"
print(json.dumps({"idle": idle, "grown": grown, "path": path_for(data), "verdicts": verdicts,
                  "init": model.init_, "layers": model.n_layers_}))
"""


@pytest.mark.parametrize("config", [{"methods": ["deem"], "n_layers": 1, "init": "ds", "epochs": 1}], ids=["start set"])
def test_the_job_check_counts_a_dense_training_with_its_guard_states_and_gradient_copies(config):
    """A dense training of many classes held its layer weights more often than the estimate counted: the collapse
    guard's start and healthy states (two copies of the network, also where only its collapses were read), the
    backward pass's product beside the gradient, and the start networks' temporaries. 100 tasks x 50 of 120 workers x
    60 classes, 1 layer: estimated at 1.46 GiB by the job's check, +2.93 GiB measured; the larger variant was past 5.4
    GB before training began (attack round 67). Here 60 tasks x 40 of 100 workers x 40 classes, one epoch, a start set:
    the job's check refuses the training at a bound of the growth measured (+350 MB against 416 estimated; before, +410 MB
    passed a bound of itself) and passes it at three times that growth. (The start chosen: 583 estimated for +552, too close for a
    test whose peak moves with the held-out scoring's allocations; `benchmarks/job_memory.py` measures it.)"""
    script = GUARDED_FIT.replace("json.loads(sys.argv[1])", repr(config)).replace("SHAPE", "60, 40, 100, 40")
    out = _run(script)
    assert out["path"] == "dense" and out["layers"] == 1, out
    assert out["grown"] > 250, out  # (the layer's copies are what this measures: 61 MiB each)
    assert out["verdicts"] == {"1.0": "refused", "3.0": "passed"}, out


def test_the_job_check_counts_the_dawid_skene_start_of_many_workers_and_classes():
    """No layers, thousands of workers x 100 classes, the Dawid-Skene start set: the start's fit (its (d, K, K)
    float64 confusions and their temporaries), the collapse guard's states and every network's two per-worker copies
    of the iRBM's constant masks were not counted; 5,441 workers x 100 classes (185 KB) was estimated at 3.5 GiB and
    passed 5.4 GB as its training began (attack round 67). Here 2,400 workers x 80 classes, 3 answers a task, one
    epoch: the job's check refuses the training at a bound of the growth measured and passes it at three times it."""
    config = {"methods": ["deem"], "n_layers": 0, "init": "ds", "epochs": 1}
    script = GUARDED_FIT.replace("json.loads(sys.argv[1])", repr(config)).replace("SHAPE", "2000, 3, 2400, 80")
    out = _run(script)
    assert out["path"] == "sparse" and out["layers"] == 0, out
    assert out["grown"] > 500, out  # (the (d, K, K) arrays are what this measures: 59 MiB in float32)
    assert out["verdicts"] == {"1.0": "refused", "3.0": "passed"}, out
