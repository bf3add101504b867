"""Time estimates before launch (deem_studio.estimate): a timed probe of the job's own code, scaled."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import threading
from dataclasses import replace

import pytest

from deem_core.data.annotations import AnnotationSet
from deem_core.methods.sweep import sample_positions
from deem_studio.estimate import Estimate, Line, estimate_sweep, estimate_train, format_seconds

from conftest import read_sample


@pytest.fixture(scope="module")
def data():
    df, _ = read_sample("condind", n_tasks=400)
    return AnnotationSet.from_long(df)


def test_format_seconds():
    assert format_seconds(3.25) == "3.2 s" and format_seconds(42) == "42 s"
    assert format_seconds(185) == "3 min 05 s" and format_seconds(3720) == "1 h 02 min"
    assert format_seconds(None) == "?" and format_seconds(float("nan")) == "?"
    # an epoch of a small set is shown, not rounded to nothing ("0.0 s per epoch")
    assert format_seconds(0.0225) == "0.02 s" and format_seconds(0.001) == "< 0.01 s" and format_seconds(0) == "0.0 s"


def test_each_part_is_a_line_in_the_tasks():
    line = Line.through((500, 1.5), (2000, 3.0))  # 1 s fixed + 1 ms per task
    assert math.isclose(line.fixed, 1.0) and math.isclose(line.per_task, 0.001) and math.isclose(line.at(60_000), 61.0)
    assert Line.through((500, 3.0), (2000, 2.0)) == Line(0.0, 0.001)  # a noisy pair: in proportion to the big one
    assert Line.through((2000, 1.0), (2000, 2.0)) == Line(0.0, 0.001)  # one probe (the data itself)
    e = Estimate(kind="train", n_tasks=10_000, sample_tasks=2_000, setup=Line(1.0, 0.001),
                 per_epoch=Line(0.01, 0.0001), baselines=Line(0.0, 0.00002), epochs=100)
    assert math.isclose(e.total_s, 11.0 + 0.2 + 100 * 1.01)
    assert math.isclose(e.with_epochs(10).total_s, 11.0 + 0.2 + 10.1)
    assert math.isclose(e.with_tasks(2_000).total_s, 3.0 + 0.04 + 100 * 0.21)
    assert "samples of up to 2,000 tasks" in e.describe() and "per epoch" in e.describe()
    # timed on the whole of what the job works on: said with its size (a sweep on a sample read "all tasks")
    assert e.with_tasks(2_000).describe().endswith("per epoch, timed on the job's 2,000 tasks)")
    # the device is named as a user knows it (a GPU server said "on this CUDA")
    assert e.describe().startswith("about 1 min 52 s on this CPU")
    assert replace(e, device="cuda").describe().startswith("about 1 min 52 s on this GPU")
    # majority vote alone on a small set: "under", never "about < 0.01 s"
    quick = Estimate(kind="train", n_tasks=300, sample_tasks=300, setup=Line(0.0, 0.0), per_epoch=Line(0.0, 0.0),
                     baselines=Line(0.001, 0.0), epochs=0)
    assert quick.describe().startswith("under 0.01 s on this CPU (timed on the job's 300 tasks)")
    # baselines alone with the form's epochs kept: no time per epoch (it read "(0.0 s per epoch"; walkthrough 94)
    assert "per epoch" not in replace(quick, epochs=100, baselines=Line(2.0, 0.0)).describe()


def test_sample_positions_are_sorted_distinct_and_seeded():
    a = sample_positions(1000, 100, seed=3)
    assert len(set(a)) == 100 and list(a) == sorted(a) and (a == sample_positions(1000, 100, seed=3)).all()
    assert list(sample_positions(50, 100)) == list(range(50))


def test_probes_time_the_real_jobs(data):
    sweep = estimate_sweep(data, lrs=[0.01, 0.1], epochs=50, sample=200)
    assert sweep.sample_tasks == 200 and sweep.n_tasks == 400 and sweep.n_runs == 2
    assert sweep.seconds_per_epoch > 0 and sweep.total_s > sweep.seconds_per_epoch * 49
    whole = estimate_sweep(data, lrs=[0.01, 0.1], epochs=50, sample=1000)  # data smaller than a probe: probed whole
    assert whole.sample_tasks == 400 and whole.setup.fixed == 0.0
    train = estimate_train(data, deem_methods=("deem",), baselines=("mv", "ds"), epochs=20, sample=200)
    assert train.seconds_per_epoch > 0 and train.baselines_s > 0 and train.total_s > 0
    assert train.to_dict()["seconds"] == pytest.approx(train.total_s, abs=1e-3)


def test_the_baselines_are_timed_once_on_a_few_tasks_and_scaled(data, monkeypatch):
    # they were fitted on every probe (64, 2,000 and 500 tasks): GLAD's 66 s on a 3,000-task set held the Train
    # button (walkthrough, tenth session)
    from deem_studio import estimate

    sizes = []
    real = estimate._baselines_seconds

    def counted(probe, methods, seed, stop=None, each=None):
        sizes.append(probe.n_tasks)
        return real(probe, methods, seed, stop, each)

    monkeypatch.setattr(estimate, "_baselines_seconds", counted)
    monkeypatch.setattr(estimate, "BASELINE_PROBE_TASKS", 60)
    train = estimate.estimate_train(data, deem_methods=("deem",), baselines=("mv", "ds"), epochs=5, sample=300)
    assert sizes == [15, 60]  # once, at two sizes (not in the warm-up, nor on the 300-task probes)
    assert train.baselines_s > 0
    stopped = threading.Event()
    stopped.set()
    # (the job they time, launched before they end, is said as one cause: "a long job, or a busy server" stood beside
    # a 27 s training, the only job running; walkthrough 128)
    with pytest.raises(estimate.ProbeSkipped, match=r"the timing probes alone took more than .* s: a long job, or a "
                       r"busy server \(a job running beside them, one launched before they ended too\)"):
        real(data, ["mv", "ds"], 0, stopped)  # the probes' time is out: the next method does not start


def test_the_baselines_probe_holds_a_bounded_number_of_answers_x_classes(monkeypatch):
    """A crowd-kit fit cannot be stopped: GLAD probed on 240 tasks of 100 answers in 200 classes held the probe lock
    (every visitor's estimate waits on it) for 173 s (attack round 19). The larger probe now holds at most
    BASELINE_PROBE_CELLS answers x classes; a usual set is probed on BASELINE_PROBE_TASKS tasks as before."""
    from deem_core import AnnotationSet
    from deem_studio import estimate

    def data_of(n_tasks: int, answers: int, n_classes: int) -> AnnotationSet:
        tasks = np.repeat(np.arange(n_tasks), answers)
        workers = np.tile(np.arange(answers), n_tasks)
        return AnnotationSet.from_long(pd.DataFrame({"task": tasks, "worker": workers,
                                                     "label": (tasks + workers) % n_classes}))

    sizes = []
    monkeypatch.setattr(estimate, "_baselines_seconds", lambda data, *args: sizes.append(data.n_tasks) or 0.1)
    wide = data_of(100, 50, 200)
    estimate_train(wide, deem_methods=(), baselines=("mv",), sample=500)
    assert wide.n_classes > 100 and max(sizes) == estimate.BASELINE_PROBE_CELLS // (50 * wide.n_classes) < 20
    sizes.clear()
    estimate_train(data_of(3_000, 5, 3), deem_methods=(), baselines=("mv",), sample=2_000)
    assert max(sizes) == estimate.BASELINE_PROBE_TASKS


def test_a_flat_baseline_cost_stays_fixed(data, monkeypatch):
    """The baselines' line was read back through the probes: one whose cost is all fixed (the same seconds on both
    probe sizes, as a loaded machine can measure them) came out with no fixed part, in proportion to the tasks, so a
    job on 100 times the tasks was estimated 100 times as long (and the child-start test failed under load)."""
    from deem_studio import estimate

    monkeypatch.setattr(estimate, "_baselines_seconds", lambda data, *args: 2.0)
    est = estimate_train(data, deem_methods=(), baselines=("mv",), sample=300)
    assert est.baselines == Line(2.0, 0.0)
    assert math.isclose(est.with_tasks(100 * data.n_tasks).baselines_s, 2.0)


def test_the_methods_fitted_apart_are_timed_in_one_child_process(data, monkeypatch):
    """Walkthrough 55: each method a job fits in a child process (crowd-kit's loops) was timed in a child of its own
    at both probe sizes, two seconds or so of starting each: with five of them the probes ran out of time and the
    Train page gave no estimate. They are timed in one child, and what starting one costs is counted once for each."""
    from deem_core.methods import child

    started = []
    real = child.subprocess.Popen
    monkeypatch.setattr(child.subprocess, "Popen", lambda *a, **k: started.append(a) or real(*a, **k))
    estimate = estimate_train(data, deem_methods=(), baselines=("mv", "mmsr", "zbs"), sample=300)
    assert len(started) == 1
    # the fixed part holds two child starts (a job starts one for M-MSR and one for Zero-based skill), each more
    # than 0.1 s (an interpreter's start and imports)
    assert estimate.baselines.fixed > 0.2 and estimate.baselines.per_task >= 0


def test_choosing_the_depth_times_each_depth_it_trains(data, monkeypatch):
    """Walkthrough 64: the choice of the depth, which trains 0, 1 and 2 layers in turn, was timed as three 1-layer
    trainings and took 1.36x its estimate. Each depth is timed now (iRBM, no layers, once), and an epoch of the
    estimate is one of each."""
    from deem_core.methods import deem as deem_module

    trained: list[int] = []
    real = deem_module.DEEM

    class Recording(real):
        def fit(self, *args, **kwargs):
            trained.append(self.n_layers)
            return super().fit(*args, **kwargs)

    monkeypatch.setattr(deem_module, "DEEM", Recording)
    chosen = estimate_train(data, deem_methods=("deem", "irbm"), n_layers="auto", epochs=10, sample=1000,
                            device="cpu")
    assert trained[: len(trained) // 2] == [0, 1, 2, 0] and trained[len(trained) // 2:] == [0, 1, 2, 0]  # (warm-up)
    trained.clear()
    fixed = estimate_train(data, deem_methods=("deem",), n_layers=1, epochs=10, sample=1000, device="cpu")
    assert trained == [1, 1]
    assert chosen.seconds_per_epoch > 1.5 * fixed.seconds_per_epoch  # (0 + 1 + 2 layers and an iRBM, against 1 layer)
    # an epoch of each depth, for the job's time left as the deeper depths come (walkthrough 116), within the epoch of
    # all of them (an iRBM's beside); none where the depth is fixed
    each = chosen.to_dict()["depth_epoch_s"]
    assert sorted(each) == ["0", "1", "2"] and all(t > 0 for t in each.values())
    assert sum(each.values()) <= chosen.seconds_per_epoch * 1.01 and fixed.to_dict()["depth_epoch_s"] == {}


def test_a_probe_that_falls_back_writes_nothing_to_the_servers_log(tmp_path):
    """Walkthroughs 70 and 71: each time-estimate probe whose few epochs on a sample ended in the safety rule wrote a
    FallbackWarning into the server's log as if a run had fallen back. A fresh process (the warning filters as a
    server has them): the probe's fit returns the reference and nothing reaches stderr; a fit of the job's own still
    warns."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415
    import textwrap  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from test_app import copied_groups_csv  # noqa: PLC0415

    path = tmp_path / "copies.csv"
    path.write_bytes(copied_groups_csv())
    script = textwrap.dedent("""
        import sys
        from deem_core.data.formats import read_dataset
        from deem_studio.estimate import estimate_train
        data = read_dataset(sys.argv[1]).data
        estimate_train(data, device="cpu")
        print("PROBED", file=sys.stderr)
        from deem_core import DEEM
        DEEM(epochs=3, device="cpu").fit(data)
    """)
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[1], check=True)
    probed, fitted = done.stderr.split("PROBED", 1)
    assert "Warning" not in probed, probed[-2000:]
    assert "FallbackWarning: the safety rule returned" in fitted, fitted[-2000:]


def test_the_time_per_epoch_is_said_with_two_figures_below_a_second():
    """Walkthrough 78: "0.3 s per epoch" beside "about 13 s" for 50 epochs did not add up (0.26 s rounded); below a
    second the time per epoch has two figures, so that it times the epochs makes the total."""
    e = Estimate(kind="sweep", n_tasks=6_000, sample_tasks=2_000, setup=Line(0.0, 0.0), per_epoch=Line(0.0, 0.26 / 6000),
                 baselines=Line(0.0, 0.0), epochs=50)
    assert "about 13 s on this" in e.describe() and "(0.26 s per epoch," in e.describe()
    assert "(0.02 s per epoch," in Estimate(kind="sweep", n_tasks=600, sample_tasks=600, setup=Line(0.0, 0.0),
                                             per_epoch=Line(0.02, 0.0), baselines=Line(0.0, 0.0), epochs=50).describe()
    assert "(2.5 s per epoch," in Estimate(kind="sweep", n_tasks=600, sample_tasks=600, setup=Line(0.0, 0.0),
                                            per_epoch=Line(2.5, 0.0), baselines=Line(0.0, 0.0), epochs=50).describe()


def test_an_iterative_baseline_that_needs_fewer_iterations_on_more_tasks_is_not_overestimated(monkeypatch):
    """Walkthrough 123: GLAD ran 10-11 iterations on the probes' 60 and 240 tasks and 2 on 500 or more, so the line
    through them put its 3.1 s on 2,000 tasks at 17.5 s (the Train page's "about 18 s" for 5.3 s), and an ensemble's
    11.4 s at 2.4 s. Here a baseline costs (iterations x tasks), its iterations 11 below 400 tasks and 2 from there:
    the estimate on 2,000 tasks is within 2x of its cost (5.5x over with probes of 240 and 60 tasks)."""
    from deem_core import AnnotationSet
    from deem_studio import estimate

    def cost(n_tasks: int) -> float:
        return 0.001 * n_tasks * (11 if n_tasks < 400 else 2)

    monkeypatch.setattr(estimate, "_baselines_seconds", lambda data, *args: cost(data.n_tasks))
    tasks = np.repeat(np.arange(2_000), 4)
    workers = (tasks * 7 + np.tile(np.arange(4), 2_000)) % 30
    data = AnnotationSet.from_long(pd.DataFrame({"task": tasks, "worker": workers, "label": (tasks + workers) % 3}))
    # (a method fitted in the job's own process: the cost above stands for its fit; GLAD is fitted apart)
    said = estimate_train(data, deem_methods=(), baselines=("mv",), sample=2_000).baselines_s
    assert 0.5 <= cost(2_000) / said <= 2.0, (said, cost(2_000))


def _with_one_wide_task(n: int, per_task: int, d: int, k: int, seed: int = 68) -> AnnotationSet:
    """``n`` tasks of ``per_task`` answers from ``d`` workers, and one more task every worker answered."""
    rng = np.random.default_rng(seed)
    workers = np.concatenate([rng.choice(d, per_task, replace=False) for _ in range(n)] + [np.arange(d)])
    tasks = np.concatenate([np.repeat(np.arange(n), per_task), np.full(d, n)])
    return AnnotationSet.from_long(pd.DataFrame({"task": tasks, "worker": workers,
                                                 "label": rng.integers(k, size=len(tasks))}))


def test_a_probe_holds_the_widest_task_and_trains_on_the_jobs_path():
    """The engine takes its path from the widest task: 20,000 tasks of 5 answers and one every one of 1,000 workers
    answered train on the dense path, but a random sample of 2,000 tasks missed that one task and timed the sparse
    path: "about 38 s" said of a training that ran to the 2-hour limit (attack round 68). Every probe now holds the
    widest task, and a probe that would still take another path is not timed."""
    from deem_core.model.engine import path_for
    from deem_studio import estimate

    data = _with_one_wide_task(3_000, 5, 400, 3)
    assert path_for(data) == "dense"
    for size in (100, 500, 2_000):
        probe = estimate._probe_data(data, size, 0)
        assert probe.n_tasks == size and str(data.tasks[-1]) in set(map(str, probe.tasks))
        assert path_for(probe) == "dense"
    narrow = data.subset_tasks(np.arange(3_000))  # (the wide task left out: the sparse path)
    assert path_for(narrow) == "sparse"
    with pytest.raises(estimate.ProbeSkipped, match="sparse path and these data train on the dense"):
        estimate._check_probe_path(data, narrow)


def test_a_model_too_large_to_probe_at_the_jobs_batch_is_timed_at_a_smaller_one(data, monkeypatch):
    """Data whose training at the job's batch needs more than a probe may hold were "too large to time": no estimate,
    no warning, and a 5.8 MB upload's training ran to the 2-hour limit (attack round 68). The probe now times the
    largest half of the batch that fits, an epoch's work being the same products over the same tasks."""
    from deem_core.model.engine import check_training_size
    from deem_core.model.training import TrainingConfig
    from deem_studio import estimate

    at = {b: check_training_size(data, TrainingConfig(n_layers=1, batch_size=b), 2, memory_bytes=1 << 62)
          for b in (1024, 128, 64)}
    assert at[1024] > at[128] > at[64]
    monkeypatch.setenv("DEEM_PROBE_MAX_BYTES", str(at[128]))
    timed = []
    from deem_core.methods.deem import DEEM
    fit = DEEM.fit
    monkeypatch.setattr(DEEM, "fit", lambda self, *a, **kw: (timed.append(self.batch_size), fit(self, *a, **kw))[1])
    est = estimate_train(data, n_layers=1, epochs=3)  # (400 tasks: probed whole)
    assert est.total_s > 0
    assert timed and set(timed) == {128}, timed
    assert estimate._probe_batch(data, [(1, 2, 0)], 1024) == 128
    monkeypatch.setenv("DEEM_PROBE_MAX_BYTES", str(at[64] // 4))  # no batch fits: skipped, the size said
    with pytest.raises(estimate.ProbeSkipped, match="too large to time"):
        estimate_train(data, n_layers=1, epochs=3)


def test_a_sweep_on_a_task_sample_is_probed_on_that_sample(monkeypatch):
    """Attack round 69: the Sweep page probed the whole set, whose one task answered by every worker sends training
    down the dense path, while the job swept a random sample without it on the sparse path (330 s said of a 12 s
    sweep). The job's own sample is probed; a probe stopped at its limit before one epoch is "too slow", not a
    failure ("no curves to read")."""
    from deem_core.methods.sweep import sweep_sample
    from deem_core.model.engine import path_for
    from deem_studio import estimate

    data = _with_one_wide_task(3_000, 5, 400, 3)
    swept = sweep_sample(data, 1_000, 0)[0]
    assert path_for(data) == "dense" and path_for(swept) == "sparse" and swept.n_tasks == 1_000
    probed = []
    real = estimate._probe

    def spy(probe_data, *args, **kwargs):
        probed.append((probe_data.n_tasks, path_for(probe_data)))
        return real(probe_data, *args, **kwargs)

    monkeypatch.setattr(estimate, "_probe", spy)
    est = estimate.estimate_sweep(data, lrs=[0.01], epochs=2, sample_tasks=1_000, sample=200)
    assert probed == [(1_000, "sparse")] and est.n_tasks == 1_000, probed
    monkeypatch.setattr(estimate, "_probe", real)

    def stopped_sweep(*args, stop_event=None, **kwargs):
        stop_event.set()
        raise ValueError("no curves to read: the sweep recorded no epoch")

    import deem_core.methods.sweep as sweep_module
    monkeypatch.setattr(sweep_module, "run_sweep", stopped_sweep)
    with pytest.raises(estimate.ProbeSkipped, match="took more than"):
        estimate.estimate_sweep(swept, lrs=[0.01], epochs=2, sample=200)
