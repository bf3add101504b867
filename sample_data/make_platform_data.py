"""Generate crowdsourcing data shaped like a real labelling platform (sparse, long-tailed, deterministic).

Usage::

    python sample_data/make_platform_data.py                       # the committed example (platform_small)
    python sample_data/make_platform_data.py --preset netease --out /tmp/scale
    python sample_data/make_platform_data.py --tasks 50000 --workers 800 --classes 4 --answers 3-10 \\
        --zipf 0.9 --spammers 0.03 --adversaries 0.01 --seed 7 --name mine --out /tmp

Every set ``NAME`` is written as three gzipped CSV files (gzip header without a time stamp, so the same seed
gives the same bytes):

* ``NAME.csv.gz``         -- crowd-kit long format ``task,worker,label`` (integer tasks, workers ``w000001``,
                             labels 0..K-1), one row per answer, rows in random order;
* ``NAME.truth.csv.gz``   -- ``task,truth``;
* ``NAME.workers.csv.gz`` -- ``worker,kind,accuracy,answers``: kind ``normal``, ``spammer`` or ``adversary``,
                             the worker's probability of answering the true class, and its number of answers.

The model (all of it drawn from ``numpy.random.default_rng(seed)``):

* **classes**: prior ~ Dirichlet(4, ..., 4) (mildly unbalanced); every task's truth is drawn from it;
* **answers per task**: uniform on ``answers = (low, high)`` (3-10 on real platforms);
* **activity** (answers per worker) is long-tailed, Zipf-like: the worker of rank r is chosen with probability
  proportional to ``r^-zipf``, capped so that nobody answers more than half of the tasks; every worker gets at
  least one answer when there are more answers than workers; one worker answers a task at most once;
* **skill**: a normal worker answers the true class with probability ``1/K + (1 - 1/K) * Beta(3, 1.5)``
  (mean 0.78 for K = 3, 0.70 for K = 10) and, when wrong, picks among the other classes from its own
  Dirichlet(1, ..., 1) distribution per true class (class-dependent confusions);
* **spammers** (``spammers`` share of the workers): half answer uniformly at random, half always give one
  class of their own; **adversaries** (``adversaries`` share): answer a fixed wrong permutation of the
  truth ``(truth + s) mod K`` 80% of the time and at random otherwise.

Two pathological shapes of the scale issue are also here: :func:`make_new_every_row` (every row a new task and
a new worker) and :func:`make_distinct_workers` (every answer by a new worker: a million distinct workers).
"""

from __future__ import annotations

import argparse
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["PRESETS", "PlatformShape", "make_distinct_workers", "make_new_every_row", "make_platform_data",
           "write_set"]

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class PlatformShape:
    n_tasks: int
    n_workers: int
    n_classes: int
    answers: tuple[int, int] = (3, 10)
    zipf: float = 1.0
    spammers: float = 0.03
    adversaries: float = 0.01
    seed: int = 0


#: named shapes: ``platform_small`` is committed in sample_data/; the others are the scale benchmark's
PRESETS: dict[str, PlatformShape] = {
    "platform_small": PlatformShape(20_000, 500, 4, (3, 10), zipf=1.0, seed=0),
    "netease": PlatformShape(1_000_000, 2_400, 3, (6, 6), zipf=0.6, seed=1),
    "longtail": PlatformShape(200_000, 50_000, 5, (3, 3), zipf=1.0, seed=2),
    "medium": PlatformShape(100_000, 2_000, 3, (5, 5), zipf=0.8, seed=3),
}


def _activity(n_workers: int, n_tasks: int, n_slots: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Probability of each worker being picked for an answer slot: Zipf-like over a random ranking, capped
    so that the expected answers of one worker stay below half of the tasks."""
    rank = rng.permutation(n_workers) + 1
    p = rank.astype(np.float64) ** -float(exponent)
    p /= p.sum()
    cap = 0.5 * n_tasks / max(1, n_slots)  # share of all answers one worker may hold
    for _ in range(50):
        over = p > cap
        if not over.any():
            break
        excess = (p[over] - cap).sum()
        p[over] = cap
        p[~over] += excess * p[~over] / p[~over].sum()
    return p / p.sum()


def _assign_workers(per_task: np.ndarray, p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One worker per answer slot (slots grouped by task): every worker at least once when there are enough
    slots, the rest drawn from ``p``, never twice on one task."""
    n_slots, d = int(per_task.sum()), len(p)
    task = np.repeat(np.arange(len(per_task)), per_task)
    worker = rng.choice(d, size=n_slots, p=p)
    forced = np.zeros(n_slots, dtype=bool)
    if n_slots >= d:
        slots = rng.choice(n_slots, size=d, replace=False)
        worker[slots] = rng.permutation(d)
        forced[slots] = True
    for _ in range(100):
        order = np.lexsort((~forced, worker, task))  # within a (task, worker) pair the forced slot comes first
        same = (task[order][1:] == task[order][:-1]) & (worker[order][1:] == worker[order][:-1])
        again = order[1:][same]
        if not len(again):
            return worker
        worker[again] = rng.choice(d, size=len(again), p=p)
    raise RuntimeError("could not give every task distinct workers: too few workers for the answers per task")


def _wrong_class(truth: np.ndarray, worker: np.ndarray, wrong: np.ndarray, k: int,
                 rng: np.random.Generator) -> np.ndarray:
    """A wrong class per answer from the worker's own distribution over the K-1 other classes."""
    cumulative = np.cumsum(wrong[worker, truth], axis=1)  # (N, K-1)
    pick = (rng.random(len(truth))[:, None] > cumulative[:, :-1]).sum(axis=1)
    return (truth + 1 + pick) % k


def make_platform_data(shape: PlatformShape) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """(answers ``task, worker, label``, truth Series indexed by task, worker table) for one shape."""
    rng = np.random.default_rng(shape.seed)
    n, d, k = shape.n_tasks, shape.n_workers, shape.n_classes
    low, high = shape.answers
    if not 2 <= k or not 1 <= low <= high <= d:
        raise ValueError(f"need K >= 2 and 1 <= answers per task <= workers, got K={k}, answers={shape.answers}")
    prior = rng.dirichlet(np.full(k, 4.0))
    truth = rng.choice(k, size=n, p=prior)
    per_task = rng.integers(low, high + 1, size=n)
    worker = _assign_workers(per_task, _activity(d, n, int(per_task.sum()), shape.zipf, rng), rng)
    task = np.repeat(np.arange(n), per_task)
    y = truth[task]

    kinds = np.full(d, "normal", dtype=object)
    n_spam, n_adv = int(round(shape.spammers * d)), int(round(shape.adversaries * d))
    special = rng.permutation(d)[: n_spam + n_adv]
    kinds[special[:n_spam]] = "spammer"
    kinds[special[n_spam:]] = "adversary"
    skill = 1.0 / k + (1.0 - 1.0 / k) * rng.beta(3.0, 1.5, size=d)
    wrong = rng.dirichlet(np.ones(k - 1), size=(d, k))  # (d, K, K-1): wrong-class choice per true class
    constant = rng.integers(0, k, size=d)  # the class a constant spammer always gives
    constant_spammer = rng.random(d) < 0.5
    shift = rng.integers(1, k, size=d)  # an adversary's permutation of the classes

    label = np.where(rng.random(len(task)) < skill[worker], y, _wrong_class(y, worker, wrong, k, rng))
    random_label = rng.integers(0, k, size=len(task))
    kind = kinds[worker]
    spam = kind == "spammer"
    label[spam] = np.where(constant_spammer[worker[spam]], constant[worker[spam]], random_label[spam])
    adv = kind == "adversary"
    label[adv] = np.where(rng.random(int(adv.sum())) < 0.8, (y[adv] + shift[worker[adv]]) % k, random_label[adv])

    accuracy = skill.copy()
    accuracy[kinds == "spammer"] = np.where(constant_spammer, prior[constant], 1.0 / k)[kinds == "spammer"]
    accuracy[kinds == "adversary"] = 0.2 / k
    names = np.array([f"w{i:0{max(6, len(str(d)))}d}" for i in range(d)], dtype=object)
    order = rng.permutation(len(task))
    frame = pd.DataFrame({"task": task[order], "worker": names[worker[order]], "label": label[order]})
    frame.attrs.update(shape=shape, prior=prior)
    truth_s = pd.Series(truth, index=pd.Index(np.arange(n), name="task"), name="truth")
    workers = pd.DataFrame({"worker": names, "kind": kinds, "accuracy": np.round(accuracy, 4),
                            "answers": np.bincount(worker, minlength=d)})
    return frame, truth_s, workers


def make_new_every_row(n_rows: int = 40_000, n_classes: int = 3, accuracy: float = 0.7,
                       seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Every row a new task and a new worker (each task has one answer): the shape that made a dense
    tasks x workers table of n_rows^2 cells."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_classes, size=n_rows)
    wrong = (truth + rng.integers(1, n_classes, size=n_rows)) % n_classes
    label = np.where(rng.random(n_rows) < accuracy, truth, wrong)
    ids = np.arange(n_rows)
    frame = pd.DataFrame({"task": ids, "worker": [f"w{i:07d}" for i in ids], "label": label})
    return frame, pd.Series(truth, index=pd.Index(ids, name="task"), name="truth")


def make_distinct_workers(n_workers: int = 1_000_000, answers_per_task: int = 5, n_classes: int = 3,
                          seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """``n_workers`` distinct workers, each answering exactly one task, ``answers_per_task`` answers per task
    (n_workers / answers_per_task tasks); workers' accuracies ~ 1/K + (1 - 1/K) Beta(3, 1.5)."""
    rng = np.random.default_rng(seed)
    n_tasks = n_workers // answers_per_task
    truth = rng.integers(0, n_classes, size=n_tasks)
    task = np.repeat(np.arange(n_tasks), answers_per_task)
    skill = 1.0 / n_classes + (1.0 - 1.0 / n_classes) * rng.beta(3.0, 1.5, size=len(task))
    wrong = (truth[task] + rng.integers(1, n_classes, size=len(task))) % n_classes
    label = np.where(rng.random(len(task)) < skill, truth[task], wrong)
    frame = pd.DataFrame({"task": task, "worker": [f"w{i:07d}" for i in rng.permutation(len(task))], "label": label})
    return frame, pd.Series(truth, index=pd.Index(np.arange(n_tasks), name="task"), name="truth")


def _write_gzip_csv(frame: pd.DataFrame, path: Path) -> Path:
    text = frame.to_csv(index=False, lineterminator="\n").encode()
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=6) as handle:
        handle.write(text)
    path.write_bytes(buffer.getvalue())
    return path


def write_set(name: str, frame: pd.DataFrame, truth: pd.Series, out: Path,
              workers: pd.DataFrame | None = None) -> list[Path]:
    """Write ``NAME.csv.gz``, ``NAME.truth.csv.gz`` (and ``NAME.workers.csv.gz``) into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [_write_gzip_csv(frame, out / f"{name}.csv.gz"),
             _write_gzip_csv(truth.reset_index(), out / f"{name}.truth.csv.gz")]
    if workers is not None:
        paths.append(_write_gzip_csv(workers, out / f"{name}.workers.csv.gz"))
    return paths


def write_preset(name: str, out: Path) -> list[Path]:
    """Generate and write one named set: a :data:`PRESETS` key, ``new_every_row`` or ``distinct_workers``."""
    if name == "new_every_row":
        return write_set(name, *make_new_every_row(), out)
    if name == "distinct_workers":
        return write_set(name, *make_distinct_workers(), out)
    frame, truth, workers = make_platform_data(PRESETS[name])
    return write_set(name, frame, truth, out, workers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default=None,
                        help=f"one of {', '.join([*PRESETS, 'new_every_row', 'distinct_workers'])} "
                             "(default: platform_small); --tasks and the options after it describe a set instead")
    parser.add_argument("--out", default=str(HERE), help="output folder (default: sample_data/)")
    parser.add_argument("--name", default=None, help="file name stem (default: the preset's name, or 'platform')")
    parser.add_argument("--tasks", type=int, default=None)
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--answers", default="3-10", help="answers per task: N or LOW-HIGH (default 3-10)")
    parser.add_argument("--zipf", type=float, default=1.0, help="activity exponent (0 = uniform; default 1)")
    parser.add_argument("--spammers", type=float, default=0.03, help="share of spammers (default 0.03)")
    parser.add_argument("--adversaries", type=float, default=0.01, help="share of adversaries (default 0.01)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.tasks is None:
        name = args.preset or "platform_small"
        paths = write_preset(name, Path(args.out))
        if args.name:
            paths = [p.rename(p.with_name(p.name.replace(name, args.name, 1))) for p in paths]
    else:
        low, _, high = args.answers.partition("-")
        shape = PlatformShape(args.tasks, args.workers, args.classes, (int(low), int(high or low)), args.zipf,
                              args.spammers, args.adversaries, args.seed)
        frame, truth, workers = make_platform_data(shape)
        paths = write_set(args.name or "platform", frame, truth, Path(args.out), workers)
    for path in paths:
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
