"""Generated families of crowd / ensemble sets for validating the choice of start and depth.

Each family is a generator ``make(seed) -> (long DataFrame task, worker, label; truth Series by task)``;
several seeds give several sets of the same kind. ``ROLE`` says which families were looked at while the
criterion and the safety rule were designed ("design") and which were kept out of that and used only for
the final table ("final"). The App. H/I constructions (CondInd, Tree3K, AmpData, MnistE-like) reuse the
sample-data generators with other seeds and other shapes.

Sizes stay moderate (1,500-3,000 tasks) because the benchmark machine is shared; ``mnist_like`` is the
larger MnistE-shaped set for the depth check.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sample_data"))
from make_platform_data import PlatformShape, make_platform_data  # noqa: E402
from make_sample_data import make_ampdata, make_condind, make_mnist_like, make_tree  # noqa: E402

__all__ = ["FAMILIES", "ROLE", "DESCRIPTION", "make_set"]


def _long(preds: np.ndarray, truth: np.ndarray, names: list[str] | None = None) -> tuple[pd.DataFrame, pd.Series]:
    """(n, d) answers (-1 = no answer) -> long frame and truth Series."""
    n, d = preds.shape
    names = names or [f"w{j:03d}" for j in range(d)]
    rows, cols = np.nonzero(preds >= 0)
    df = pd.DataFrame({"task": rows.astype(np.int64), "worker": np.asarray(names, dtype=object)[cols],
                       "label": preds[rows, cols].astype(np.int64)})
    return df, pd.Series(truth.astype(np.int64), index=pd.Index(np.arange(n), name="task"), name="truth")


def _confusion(k: int, acc: float | np.ndarray, rng: np.random.Generator, concentration: float = 1.0) -> np.ndarray:
    """K x K [l, m] = P(answer l | truth m): ``acc`` on the diagonal (scalar or per class), the rest split by a
    Dirichlet(concentration) draw per column (structured errors when concentration < 1)."""
    diag = np.broadcast_to(np.asarray(acc, dtype=float), (k,))
    conf = np.zeros((k, k))
    for m in range(k):
        others = [l for l in range(k) if l != m]
        conf[others, m] = (1 - diag[m]) * rng.dirichlet(np.full(k - 1, concentration))
        conf[m, m] = diag[m]
    return conf


def _draw(conf: np.ndarray, given: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """answer ~ conf[:, given] for every entry."""
    cdf = np.cumsum(conf[:, given].T, axis=1)
    cdf[:, -1] = 1.0
    return (rng.random(len(given))[:, None] >= cdf).sum(axis=1)


# ------------------------------------------------------------------ design families
def independent(seed: int, n: int = 2000) -> tuple[pd.DataFrame, pd.Series]:
    """Dawid-Skene data: 5-9 conditionally independent workers, K in 2..5, accuracy U[1/K + 0.1, 0.8] per
    class, structured errors; every worker answers every task."""
    rng = np.random.default_rng(1000 + seed)
    k, d = int(rng.integers(2, 6)), int(rng.integers(5, 10))
    truth = rng.integers(k, size=n)
    lo = 1.0 / k + 0.1
    preds = np.column_stack([_draw(_confusion(k, rng.uniform(lo, 0.8, size=k), rng, 0.7), truth, rng)
                             for _ in range(d)])
    return _long(preds, truth)


def groups(seed: int, n: int = 2000) -> tuple[pd.DataFrame, pd.Series]:
    """Correlated worker groups of different sizes: each group has a latent 'group opinion' drawn from the
    truth (group accuracy U[0.55, 0.8]); members copy it with probability U[0.75, 0.95] and otherwise answer
    from their own confusion. Group sizes e.g. [6, 3, 2, 1, 1]: the biggest group is not the best."""
    rng = np.random.default_rng(2000 + seed)
    k = int(rng.integers(3, 6))
    sizes = [int(rng.integers(5, 8)), int(rng.integers(2, 4)), 2, 1, 1]
    truth = rng.integers(k, size=n)
    cols = []
    for g, size in enumerate(sizes):
        acc = rng.uniform(0.55, 0.65) if g == 0 else rng.uniform(0.65, 0.8)  # the big group is the weakest
        opinion = _draw(_confusion(k, acc, rng, 0.5), truth, rng)
        for _ in range(size):
            own = _draw(_confusion(k, rng.uniform(0.5, 0.7), rng), truth, rng)
            copy = rng.random(n) < rng.uniform(0.75, 0.95)
            cols.append(np.where(copy, opinion, own))
    return _long(np.column_stack(cols), truth)


def copies(seed: int, n: int = 2000) -> tuple[pd.DataFrame, pd.Series]:
    """Copies of one model: one classifier (per-class accuracy U[0.55, 0.75], structured errors) copied 6-9
    times with 10% of its answers randomised per copy, plus 3-4 independent better classifiers."""
    rng = np.random.default_rng(3000 + seed)
    k = int(rng.integers(4, 8))
    truth = rng.integers(k, size=n)
    base = _draw(_confusion(k, rng.uniform(0.55, 0.75, size=k), rng, 0.4), truth, rng)
    cols = []
    for _ in range(int(rng.integers(6, 10))):
        c = base.copy()
        idx = rng.choice(n, size=n // 10, replace=False)
        c[idx] = rng.integers(k, size=len(idx))
        cols.append(c)
    for _ in range(int(rng.integers(3, 5))):
        cols.append(_draw(_confusion(k, rng.uniform(0.65, 0.85, size=k), rng, 0.7), truth, rng))
    return _long(np.column_stack(cols), truth)


def sparse(seed: int, n: int = 2000) -> tuple[pd.DataFrame, pd.Series]:
    """Crowd-like sparse data: 60 workers of mixed quality (20% near-random), each task gets 3-10 answers from
    random workers (busy workers answer more), K in 2..4."""
    rng = np.random.default_rng(4000 + seed)
    k, d = int(rng.integers(2, 5)), 60
    truth = rng.integers(k, size=n)
    confs = [_confusion(k, rng.uniform(1.0 / k, 1.0 / k + 0.1) if rng.random() < 0.2 else rng.uniform(0.6, 0.9),
                        rng) for _ in range(d)]
    activity = rng.pareto(1.5, size=d) + 0.2
    activity /= activity.sum()
    preds = np.full((n, d), -1, dtype=np.int64)
    for t in range(n):
        chosen = rng.choice(d, size=int(rng.integers(3, 11)), replace=False, p=activity)
        for j in chosen:
            preds[t, j] = _draw(confs[j], truth[t:t + 1], rng)[0]
    return _long(preds, truth)


def longtail(seed: int, n: int = 4000) -> tuple[pd.DataFrame, pd.Series]:
    """Platform-shaped long tail (sample_data/make_platform_data.py): n/2 workers with Zipf-like activity, 3-4
    answers per task, so most workers answer a handful of tasks; K in 3..5, 3% spammers, 1% adversaries."""
    rng = np.random.default_rng(10_000 + seed)
    k = int(rng.integers(3, 6))
    shape = PlatformShape(n, n // 2, k, (3, int(rng.integers(3, 5))), zipf=float(rng.uniform(0.8, 1.1)),
                          seed=10_000 + seed)
    answers, truth, _ = make_platform_data(shape)
    return answers, truth


# ------------------------------------------------------------------ families kept out of the design
def spammers(seed: int, n: int = 2000) -> tuple[pd.DataFrame, pd.Series]:
    """5 good workers (U[0.6, 0.8]), 3 spammers (uniform random or always one class) and 2 adversarial
    workers (accurate, but their labels are a fixed permutation of the truth)."""
    rng = np.random.default_rng(5000 + seed)
    k = int(rng.integers(3, 6))
    truth = rng.integers(k, size=n)
    cols = [_draw(_confusion(k, rng.uniform(0.6, 0.8), rng), truth, rng) for _ in range(5)]
    cols.append(rng.integers(k, size=n))
    cols.append(rng.integers(k, size=n))
    cols.append(np.full(n, int(rng.integers(k))))
    for _ in range(2):
        perm = np.roll(np.arange(k), int(rng.integers(1, k)))
        honest = _draw(_confusion(k, rng.uniform(0.75, 0.9), rng), truth, rng)
        cols.append(perm[honest])
    return _long(np.column_stack(cols), truth)


def imbalance(seed: int, n: int = 2000) -> tuple[pd.DataFrame, pd.Series]:
    """Class imbalance: prior e.g. [0.70, 0.15, 0.10, 0.05]; 5-8 independent workers whose accuracy on
    the rare classes is lower (they lean to the majority class)."""
    rng = np.random.default_rng(6000 + seed)
    k = int(rng.integers(3, 5))
    prior = np.sort(rng.dirichlet(np.full(k, 0.6)))[::-1]
    prior = np.maximum(prior, 0.03)
    prior /= prior.sum()
    truth = rng.choice(k, size=n, p=prior)
    cols = []
    for _ in range(int(rng.integers(5, 9))):
        acc = rng.uniform(0.35, 0.7, size=k)
        acc[0] = rng.uniform(0.75, 0.9)
        conf = _confusion(k, acc, rng)
        # errors on the rare classes go mostly to class 0
        for m in range(1, k):
            wrong = 1 - conf[m, m]
            conf[:, m] = 0.0
            conf[m, m] = 1 - wrong
            conf[0, m] = 0.7 * wrong
            others = [l for l in range(1, k) if l != m]
            if others:
                conf[others, m] = 0.3 * wrong / len(others)
            else:
                conf[0, m] = wrong
        cols.append(_draw(conf, truth, rng))
    return _long(np.column_stack(cols), truth)


def experts(seed: int, n: int = 3000) -> tuple[pd.DataFrame, pd.Series]:
    """App. I, MnistE-568 style on synthetic families: 3 families x 4 copies (10% randomised), 10% of tasks get
    random answers from everybody, then one copy per family is made an oracle on 2-3 expert classes."""
    rng = np.random.default_rng(7000 + seed)
    df, truth = make_mnist_like(n_tasks=n, n_workers=12, n_classes=8, seed=7000 + seed)
    workers = list(dict.fromkeys(df["worker"]))
    y = truth.to_numpy()
    preds = df["label"].to_numpy().reshape(n, len(workers)).copy()
    k = 8
    noisy = rng.choice(n, size=n // 10, replace=False)
    preds[noisy, :] = rng.integers(k, size=(len(noisy), len(workers)))
    expert_classes = rng.choice(k, size=int(rng.integers(2, 4)), replace=False)
    on_expert = np.isin(y, expert_classes)
    for fam in ("fam1_1", "fam2_1", "fam3_1"):
        preds[on_expert, workers.index(fam)] = y[on_expert]
    return _long(preds, y, workers)


def apph(seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """The App. H / I constructions with new seeds and shapes, alternating by seed: CondInd (K=4), Tree
    [1, 2, 5] (K=4), AmpData (K=5, 4 regular workers)."""
    kind = seed % 3
    if kind == 0:
        return make_condind(n_tasks=2000, n_classes=4, n_informative=5, n_noise=5, seed=8000 + seed)
    if kind == 1:
        return make_tree(n_tasks=2000, n_classes=4, layers=(1, 2, 5), seed=8000 + seed)
    return make_ampdata(n_tasks=2000, n_classes=5, n_regular=4, seed=8000 + seed)


def trio(seed: int, n: int = 1500) -> tuple[pd.DataFrame, pd.Series]:
    """A platform batch with a copying trio (the shape of walkthroughs 28, 35 and 44): 60 workers of Pareto activity,
    3-5 answers a task, K=5, accuracy U[0.55, 0.85], 4 answering at random; three busy workers join each other on 70%
    of the tasks one of them takes and give one shared opinion (right half the time) on 90% of their answers."""
    rng = np.random.default_rng(70_000 + seed)
    k, d = 5, 60
    truth = rng.integers(k, size=n)
    acc = rng.uniform(0.55, 0.85, size=d)
    acc[rng.choice(np.arange(3, d), 4, replace=False)] = 1.0 / k
    activity = rng.pareto(1.5, size=d) + 0.3
    activity[:3] = np.sort(activity)[-3:]  # the trio is among the busiest
    activity /= activity.sum()
    preds = np.full((n, d), -1, dtype=np.int64)
    for t in range(n):
        chosen = set(rng.choice(d, size=int(rng.integers(3, 6)), replace=False, p=activity).tolist())
        if chosen & {0, 1, 2} and rng.random() < 0.7:
            chosen |= {0, 1, 2}
        wrong = [c for c in range(k) if c != truth[t]]
        opinion = truth[t] if rng.random() < 0.5 else rng.choice(wrong)
        for w in sorted(chosen):
            if w < 3 and rng.random() < 0.9:
                preds[t, w] = opinion
            else:
                preds[t, w] = truth[t] if rng.random() < acc[w] else rng.choice(wrong)
    return _long(preds, truth)


def mnist_like(seed: int, n: int = 20000) -> tuple[pd.DataFrame, pd.Series]:
    """MnistE-shaped ensemble (App. H: 3 families x 5 copies, 10% randomised, K=10)."""
    return make_mnist_like(n_tasks=n, n_workers=15, n_classes=10, seed=9000 + seed)


FAMILIES: dict[str, Callable[[int], tuple[pd.DataFrame, pd.Series]]] = {
    "independent": independent, "groups": groups, "copies": copies, "sparse": sparse, "longtail": longtail,
    "trio": trio, "spammers": spammers, "imbalance": imbalance, "experts": experts, "apph": apph, "mnist_like": mnist_like,
}
ROLE = {"independent": "design", "groups": "design", "copies": "design", "sparse": "design", "longtail": "design",
        "trio": "design",
        "spammers": "final", "imbalance": "final", "experts": "final", "apph": "final", "mnist_like": "final"}
#: which families have workers that are dependent given the truth (where layers should help)
DEPENDENT = {"groups", "copies", "trio", "experts", "mnist_like"}
DESCRIPTION = {name: (fn.__doc__ or "").strip().splitlines()[0] for name, fn in FAMILIES.items()}


def make_set(name: str, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    return FAMILIES[name](seed)
