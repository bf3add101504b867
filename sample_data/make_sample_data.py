"""Generate the DEEM Studio sample data sets (deterministic, fixed seeds).

Usage::

    python sample_data/make_sample_data.py [--out DIR] [--only NAME ...] [--with-mnist-like]

Every set ``NAME`` is written as

* ``NAME.csv``        -- crowd-kit long format, columns ``task,worker,label``
                         (``task`` and ``label`` are integers, labels in 0..K-1);
* ``NAME.truth.csv``  -- columns ``task,truth``;

plus, for some sets, a JSON side file with the generating parameters
(``condind.confusion.json``, ``tree3k.structure.json``, ``*.experts.json``).
All sets are dense: every task has an answer from every worker.

The recipes follow the DEEM paper (``/work/shared/seeds/deem-paper.md``),
Appendix H ("Datasets") and Appendix I ("MoE Analysis"):

``condind``  (App. H, CondInd)
    K=3, uniform truth, n=3000, 10 classifiers.  Classifiers 1-4 are
    informative: for every true class m the diagonal P(X=m|Y=m) is drawn from
    U[(K-1)/K, 1] and the remaining mass is spread uniformly over the K-1 wrong
    classes.  Classifiers 5-10 answer uniformly at random (1/K each).  The true
    confusion matrices are written to ``condind.confusion.json`` with layout
    ``matrix[l][m] = P(X=l | Y=m)`` (rows = given label, columns = true class,
    so every *column* sums to 1).

``tree3k``  (App. H, Tree3K)
    K=3, uniform truth, n=3000, tree [1, 3, 4]: Y -> 3 intermediate nodes ->
    4 leaves each.  Every node has its own psi ~ U[0.7, 1] and copies its
    parent's label with probability psi; for every row (parent label) of the
    node's K x K matrix the remainder 1-psi is split over the K-1 other classes
    with a uniformly random split (Dirichlet(1, ..., 1)).  Only the 12 leaves
    are output as workers (``g{i}_leaf{j}``: leaf j of intermediate node i).
    The matrices are written to ``tree3k.structure.json`` (same layout as
    above, with "parent label" in place of "true class").

``ampdata``  (App. I, AmpData)
    d=6, K=5, uniform truth, n=5000.  Classifiers ``clf_01``..``clf_05`` have an
    accuracy a_i ~ U[0.90, 0.92] when the truth is class 2, 3 or 4 (errors are
    uniform over the 4 wrong classes) and answer uniformly over all K classes
    when the truth is class 0 or 1.  The worker ``expert`` is an oracle on
    classes 0 and 1 and answers uniformly over all K classes on classes 2-4.

``digits``  (App. H, MnistE recipe on scikit-learn's bundled digits)
    ``load_digits`` (1797 images, K=10; no download).  A stratified 30% split
    trains DecisionTreeClassifier(max_depth=5), GaussianNB and
    MLPClassifier(alpha=1, max_iter=100) (random_state=0; the MLP stops before
    convergence, as in the paper, and its ConvergenceWarning is silenced).
    Each predicts all 1797 samples; each is copied 5 times and in every copy a
    random 10% of the predictions (exactly round(0.1 n) tasks, chosen per copy)
    are replaced by uniformly random labels (which may coincide with the
    original one).  Workers ``tree_1..5``, ``nb_1..5``, ``mlp_1..5``.

``digits_experts``  (App. I, MnistE-568 recipe on the digits ensemble)
    Interpretation of "introduced some label noise, selecting 10% of examples
    at random and assigning random labels to them": the ground truth is NOT
    changed; instead, for a random 10% of the tasks *all* 15 workers'
    predictions are replaced by independent uniformly random labels (this
    makes the workers less dependent, which is the stated purpose).  Then one
    copy of each family (``tree_1``, ``nb_1``, ``mlp_1``) is given oracle
    performance on classes 5, 6 and 8: its prediction equals the truth on every
    task whose truth is 5, 6 or 8 (including the noised tasks).  Written to
    ``digits_experts.experts.json``.

``make_mnist_like``  (synthetic MnistE-sized set for speed benchmarks)
    Not written by default (``--with-mnist-like`` writes ``mnist_like.*``).
    3 base families with their own per-class confusion matrices (diagonal
    ~ U[0.55, 0.7], U[0.65, 0.8], U[0.8, 0.9] per class for the three families,
    the error mass split over the wrong classes with a Dirichlet(0.5) draw so
    errors are structured), each duplicated n_workers/3 times with 10% of the
    predictions randomised per copy.

Benchmarks can import the generators::

    import sys; sys.path.insert(0, "sample_data")
    from make_sample_data import make_condind
    df, truth = make_condind()

Each ``make_*`` returns ``(df, truth)``: ``df`` is the long DataFrame
(``task`` int64, ``worker`` str, ``label`` int64, sorted by task then worker
order) and ``truth`` an int64 Series named ``truth`` indexed by ``task``.
Generating parameters are attached as ``df.attrs`` (e.g.
``df.attrs["confusion"]``, ``df.attrs["experts"]``).

Majority-vote accuracies printed by the script break ties towards the smallest
label (deterministic).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent

SEEDS = {
    "condind": 20240101,
    "tree3k": 20240102,
    "ampdata": 20240103,
    "digits": 20240104,
    "digits_experts": 20240105,
    "mnist_like": 0,
}

SET_NAMES = ["condind", "tree3k", "ampdata", "digits", "digits_experts"]


# --------------------------------------------------------------------------- helpers
def _to_long(preds: np.ndarray, workers: list[str], truth: np.ndarray):
    """(n, d) prediction matrix -> (long df sorted by task then worker, truth Series)."""
    n, d = preds.shape
    assert len(workers) == d
    df = pd.DataFrame(
        {
            "task": np.repeat(np.arange(n, dtype=np.int64), d),
            "worker": np.tile(np.asarray(workers, dtype=object), n),
            "label": preds.astype(np.int64).ravel(),
        }
    )
    t = pd.Series(truth.astype(np.int64), index=pd.Index(np.arange(n, dtype=np.int64), name="task"), name="truth")
    return df, t


def _sample_from_columns(conf: np.ndarray, given: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw X ~ conf[:, given] for every entry of ``given`` (conf[l, m] = P(X=l | parent=m))."""
    cdf = np.cumsum(conf[:, given].T, axis=1)  # (n, K)
    cdf[:, -1] = 1.0
    u = rng.random(len(given))
    return (u[:, None] >= cdf).sum(axis=1).astype(np.int64)


def _randomize_fraction(pred: np.ndarray, frac: float, k: int, rng: np.random.Generator) -> np.ndarray:
    """Copy of ``pred`` with exactly round(frac*n) random entries replaced by uniform labels."""
    out = pred.copy()
    n = len(out)
    idx = rng.choice(n, size=int(round(frac * n)), replace=False)
    out[idx] = rng.integers(k, size=len(idx))
    return out


def majority_vote(df: pd.DataFrame, n_classes: int | None = None) -> pd.Series:
    """Plain majority vote over a long df (ties -> smallest label)."""
    tasks, t_idx = np.unique(df["task"].to_numpy(), return_inverse=True)
    labels = df["label"].to_numpy()
    k = int(labels.max()) + 1 if n_classes is None else n_classes
    counts = np.zeros((len(tasks), k), dtype=np.int64)
    np.add.at(counts, (t_idx, labels), 1)
    return pd.Series(counts.argmax(axis=1), index=pd.Index(tasks, name="task"), name="mv")


def summarize(df: pd.DataFrame, truth: pd.Series) -> dict:
    """MV accuracy and min/mean/max worker accuracy."""
    mv = majority_vote(df, int(max(df["label"].max(), truth.max())) + 1)
    mv_acc = float((mv == truth.reindex(mv.index)).mean())
    correct = df["label"].to_numpy() == truth.reindex(df["task"]).to_numpy()
    w_acc = pd.Series(correct).groupby(df["worker"].to_numpy()).mean()
    return {
        "tasks": int(df["task"].nunique()),
        "workers": int(df["worker"].nunique()),
        "classes": int(truth.nunique()),
        "mv_acc": mv_acc,
        "worker_acc_min": float(w_acc.min()),
        "worker_acc_mean": float(w_acc.mean()),
        "worker_acc_max": float(w_acc.max()),
        "worker_acc": {str(k): float(v) for k, v in w_acc.items()},
    }


# --------------------------------------------------------------------------- generators
def make_condind(n_tasks: int = 3000, n_classes: int = 3, n_informative: int = 4, n_noise: int = 6,
                 seed: int = SEEDS["condind"]):
    """App. H CondInd.  ``df.attrs['confusion']`` = {worker: K x K matrix [l][m] = P(X=l|Y=m)}."""
    rng = np.random.default_rng(seed)
    k = n_classes
    truth = rng.integers(k, size=n_tasks)
    d = n_informative + n_noise
    workers = [f"clf_{i + 1:02d}" for i in range(d)]
    confusion = {}
    preds = np.empty((n_tasks, d), dtype=np.int64)
    for i, w in enumerate(workers):
        if i < n_informative:
            diag = rng.uniform((k - 1) / k, 1.0, size=k)
            conf = np.tile(((1.0 - diag) / (k - 1))[None, :], (k, 1))
            conf[np.arange(k), np.arange(k)] = diag
        else:
            conf = np.full((k, k), 1.0 / k)
        confusion[w] = conf
        preds[:, i] = _sample_from_columns(conf, truth, rng)
    df, t = _to_long(preds, workers, truth)
    df.attrs["confusion"] = {w: c.tolist() for w, c in confusion.items()}
    df.attrs["prior"] = [1.0 / k] * k
    df.attrs["informative"] = workers[:n_informative]
    return df, t


def _random_psi_matrix(psi: float, k: int, rng: np.random.Generator) -> np.ndarray:
    """K x K matrix [l][m] = P(child=l | parent=m): psi on the diagonal, 1-psi split at random per column."""
    conf = np.zeros((k, k))
    for m in range(k):
        split = rng.dirichlet(np.ones(k - 1))
        others = [l for l in range(k) if l != m]
        conf[others, m] = (1.0 - psi) * split
        conf[m, m] = psi
    return conf


def make_tree(n_tasks: int = 3000, n_classes: int = 3, layers: tuple[int, ...] = (1, 3, 4),
              psi_range: tuple[float, float] = (0.7, 1.0), seed: int = SEEDS["tree3k"]):
    """App. H Tree3K.  ``layers[0]`` must be 1 (the root Y); only the last layer is output.

    ``layers[j]`` is the number of children of every node of layer j-1.
    ``df.attrs['nodes']`` = {node: {"parent", "psi", "matrix"}} for every non-root node;
    ``df.attrs['node_labels']`` = {node: its class per task (a list, in the order of the truth's tasks)} for every
    hidden node between the root and the leaves (the latent views the leaves are drawn from).
    """
    if layers[0] != 1:
        raise ValueError("layers must start with 1 (the true label Y)")
    rng = np.random.default_rng(seed)
    k = n_classes
    truth = rng.integers(k, size=n_tasks)
    nodes: dict[str, dict] = {}
    hidden: dict[str, list[int]] = {}
    current = {"Y": truth}
    for depth, n_children in enumerate(layers[1:], start=1):
        last = depth == len(layers) - 1
        nxt = {}
        for p_i, (pname, pvals) in enumerate(current.items(), start=1):
            for c in range(1, n_children + 1):
                if depth == 1:
                    name = f"g{c}"
                elif last:
                    name = f"{pname}_leaf{c}"
                else:
                    name = f"{pname}_{c}"
                psi = float(rng.uniform(*psi_range))
                conf = _random_psi_matrix(psi, k, rng)
                nodes[name] = {"parent": pname, "psi": psi, "matrix": conf.tolist()}
                nxt[name] = _sample_from_columns(conf, pvals, rng)
                if not last:
                    hidden[name] = nxt[name].tolist()
        current = nxt
    workers = list(current)
    preds = np.column_stack([current[w] for w in workers])
    df, t = _to_long(preds, workers, truth)
    df.attrs["layers"] = list(layers)
    df.attrs["nodes"] = nodes
    df.attrs["node_labels"] = hidden
    return df, t


def make_ampdata(n_tasks: int = 5000, n_classes: int = 5, n_regular: int = 5,
                 acc_range: tuple[float, float] = (0.90, 0.92), expert_classes: tuple[int, ...] = (0, 1),
                 seed: int = SEEDS["ampdata"]):
    """App. I AmpData: regular classifiers good on the non-expert classes, random on the expert
    classes; one ``expert`` worker that is an oracle on ``expert_classes`` and random elsewhere."""
    rng = np.random.default_rng(seed)
    k = n_classes
    truth = rng.integers(k, size=n_tasks)
    on_expert = np.isin(truth, expert_classes)
    workers = [f"clf_{i + 1:02d}" for i in range(n_regular)] + ["expert"]
    preds = np.empty((n_tasks, len(workers)), dtype=np.int64)
    accs = {}
    for i in range(n_regular):
        a = float(rng.uniform(*acc_range))
        accs[workers[i]] = a
        correct = rng.random(n_tasks) < a
        wrong = (truth + rng.integers(1, k, size=n_tasks)) % k  # uniform over the K-1 wrong classes
        p = np.where(correct, truth, wrong)
        p = np.where(on_expert, rng.integers(k, size=n_tasks), p)
        preds[:, i] = p
    preds[:, -1] = np.where(on_expert, truth, rng.integers(k, size=n_tasks))
    df, t = _to_long(preds, workers, truth)
    df.attrs["experts"] = ["expert"]
    df.attrs["expert_classes"] = [int(c) for c in expert_classes]
    df.attrs["regular_accuracy"] = accs
    return df, t


_DIGITS_CACHE: dict = {}


def _digits_base_predictions(seed: int = 0):
    """Train the three MnistE families on a 30% stratified split of sklearn's digits."""
    if seed in _DIGITS_CACHE:
        return _DIGITS_CACHE[seed]
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neural_network import MLPClassifier
    from sklearn.tree import DecisionTreeClassifier

    x, y = load_digits(return_X_y=True)
    x_tr, _, y_tr, _ = train_test_split(x, y, train_size=0.3, random_state=seed, stratify=y)
    models = {
        "tree": DecisionTreeClassifier(max_depth=5, random_state=seed),
        "nb": GaussianNB(),
        "mlp": MLPClassifier(alpha=1, max_iter=100, random_state=seed),
    }
    base = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, m in models.items():
            m.fit(x_tr, y_tr)
            base[name] = m.predict(x).astype(np.int64)
    _DIGITS_CACHE[seed] = (base, y.astype(np.int64))
    return _DIGITS_CACHE[seed]


def make_digits_ensemble(n_copies: int = 5, noise_frac: float = 0.10, seed: int = SEEDS["digits"],
                         train_seed: int = 0):
    """App. H MnistE recipe on sklearn's bundled digits: 3 families x ``n_copies`` noisy copies."""
    base, y = _digits_base_predictions(train_seed)
    rng = np.random.default_rng(seed)
    k = 10
    workers, cols = [], []
    for fam, pred in base.items():
        for c in range(1, n_copies + 1):
            workers.append(f"{fam}_{c}")
            cols.append(_randomize_fraction(pred, noise_frac, k, rng))
    df, t = _to_long(np.column_stack(cols), workers, y)
    df.attrs["families"] = {fam: [f"{fam}_{c}" for c in range(1, n_copies + 1)] for fam in base}
    return df, t


def make_digits_experts(expert_classes: tuple[int, ...] = (5, 6, 8), experts: tuple[str, ...] = ("tree_1", "nb_1", "mlp_1"),
                        noise_frac: float = 0.10, seed: int = SEEDS["digits_experts"]):
    """App. I MnistE-568 recipe on the digits ensemble (see the module docstring for the
    interpretation of the 10% "label noise")."""
    df, truth = make_digits_ensemble()
    workers = list(dict.fromkeys(df["worker"]))
    n, d = len(truth), len(workers)
    preds = df["label"].to_numpy().reshape(n, d).copy()
    y = truth.to_numpy()
    rng = np.random.default_rng(seed)
    k = 10
    noisy = np.sort(rng.choice(n, size=int(round(noise_frac * n)), replace=False))
    preds[noisy, :] = rng.integers(k, size=(len(noisy), d))
    on_expert = np.isin(y, expert_classes)
    for w in experts:
        j = workers.index(w)
        preds[on_expert, j] = y[on_expert]
    out, t = _to_long(preds, workers, y)
    out.attrs["experts"] = list(experts)
    out.attrs["expert_classes"] = [int(c) for c in expert_classes]
    out.attrs["noised_tasks"] = noisy.tolist()
    return out, t


def make_mnist_like(n_tasks: int = 60000, n_workers: int = 15, n_classes: int = 10, seed: int = 0,
                    family_acc_ranges: tuple[tuple[float, float], ...] = ((0.55, 0.7), (0.65, 0.8), (0.8, 0.9)),
                    noise_frac: float = 0.10):
    """Synthetic MnistE-sized set for speed benchmarks: 3 families with their own per-class
    confusion matrices (per-class accuracy of family f ~ U[family_acc_ranges[f]], roughly the
    weak tree / middling NB / strong MLP of MnistE), each duplicated ~n_workers/3 times with
    10% randomised predictions per copy.  Runs in well under a second at the default size."""
    rng = np.random.default_rng(seed)
    k = n_classes
    n_fam = min(3, n_workers)
    truth = rng.integers(k, size=n_tasks)
    copies = [n_workers // n_fam + (1 if f < n_workers % n_fam else 0) for f in range(n_fam)]
    workers, cols, confs = [], [], {}
    for f in range(n_fam):
        diag = rng.uniform(*family_acc_ranges[f % len(family_acc_ranges)], size=k)
        conf = np.zeros((k, k))
        for m in range(k):
            others = [l for l in range(k) if l != m]
            conf[others, m] = (1 - diag[m]) * rng.dirichlet(np.full(k - 1, 0.5))
            conf[m, m] = diag[m]
        fam = f"fam{f + 1}"
        confs[fam] = conf.tolist()
        base = _sample_from_columns(conf, truth, rng)
        for c in range(1, copies[f] + 1):
            workers.append(f"{fam}_{c}")
            cols.append(_randomize_fraction(base, noise_frac, k, rng))
    df, t = _to_long(np.column_stack(cols), workers, truth)
    df.attrs["family_confusion"] = confs
    return df, t


# --------------------------------------------------------------------------- writing
GENERATORS = {
    "condind": make_condind,
    "tree3k": make_tree,
    "ampdata": make_ampdata,
    "digits": make_digits_ensemble,
    "digits_experts": make_digits_experts,
    "mnist_like": make_mnist_like,
}


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=1) + "\n", encoding="utf-8")


def write_set(name: str, out_dir: Path | str) -> tuple[pd.DataFrame, pd.Series]:
    """Generate set ``name`` and write NAME.csv, NAME.truth.csv (+ side JSON) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    df, truth = GENERATORS[name]()
    df.to_csv(out / f"{name}.csv", index=False, lineterminator="\n")
    truth.reset_index().to_csv(out / f"{name}.truth.csv", index=False, lineterminator="\n")
    if name == "condind":
        _write_json(out / "condind.confusion.json", {
            "layout": "confusion[worker][l][m] = P(X=l | Y=m): rows l = given label, columns m = true class (columns sum to 1)",
            "n_classes": 3,
            "prior": df.attrs["prior"],
            "informative": df.attrs["informative"],
            "confusion": df.attrs["confusion"],
        })
    elif name == "tree3k":
        _write_json(out / "tree3k.structure.json", {
            "layout": "matrix[l][m] = P(node=l | parent=m): rows l = node label, columns m = parent label",
            "layers": df.attrs["layers"],
            "leaves": list(dict.fromkeys(df["worker"])),
            "nodes": df.attrs["nodes"],
        })
    elif name in ("ampdata", "digits_experts"):
        _write_json(out / f"{name}.experts.json",
                    {"experts": df.attrs["experts"], "expert_classes": df.attrs["expert_classes"]})
    return df, truth


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(HERE), help="output folder (default: this script's folder)")
    ap.add_argument("--only", nargs="+", choices=list(GENERATORS), help="generate only these sets")
    ap.add_argument("--with-mnist-like", action="store_true", help="also write mnist_like.* (60000 x 15, ~10 MB)")
    args = ap.parse_args(argv)
    names = args.only or (SET_NAMES + (["mnist_like"] if args.with_mnist_like else []))
    print(f"{'set':<16}{'tasks':>7}{'workers':>8}{'K':>4}{'MV acc':>9}{'worker acc min/mean/max':>28}{'s':>6}")
    for name in names:
        t0 = time.perf_counter()
        df, truth = write_set(name, args.out)
        s = summarize(df, truth)
        print(f"{name:<16}{s['tasks']:>7}{s['workers']:>8}{s['classes']:>4}{s['mv_acc']:>9.4f}"
              f"{s['worker_acc_min']:>12.4f} /{s['worker_acc_mean']:>6.4f} /{s['worker_acc_max']:>6.4f}"
              f"{time.perf_counter() - t0:>6.1f}")
        if "experts" in df.attrs:
            on = truth.isin(df.attrs["expert_classes"])
            mv = majority_vote(df, int(truth.max()) + 1)
            print(f"{'':<16}MV acc on expert classes {df.attrs['expert_classes']}: "
                  f"{(mv[on] == truth[on]).mean():.4f}, remaining: {(mv[~on] == truth[~on]).mean():.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
