"""Classic label aggregators from crowd-kit behind one small interface.

Every method takes the long format used everywhere in DEEM Studio (columns ``task``, ``worker``,
``label``; labels may be any hashable values: ints, strings, bools, ...) or an AnnotationSet, and returns
results in the *original* label values and types, so any baseline can be compared with DEEM directly::

    agg = make_aggregator("ds", seed=0)   # deem_core.methods.registry
    labels = agg.fit_predict(df)          # pd.Series, index "task", original labels
    proba = agg.predict_proba()           # pd.DataFrame, index "task", columns = agg.classes_

Display names and capabilities live in the registry (:mod:`deem_core.methods.registry`).

The algorithms themselves are crowd-kit's (crowd-kit 1.4.x); this module only

* maps the labels to integer codes ``0..K-1`` (in sorted order of the original values, or in order of
  first appearance when the values cannot be sorted) before calling crowd-kit and maps the results
  back, so outputs always carry the original label values and dtype;
* passes the seed to the methods that have randomness (MACE, M-MSR, KOS) and offers a seeded random
  tie-break for majority vote (crowd-kit's own is deterministic, see :class:`MajorityVoteAggregator`);
* works around one ordering bug in crowd-kit 1.4.2's MACE (see :class:`MACEAggregator`);
* turns the scikit-learn >= 1.8 incompatibility of Wawa / ZeroBasedSkill into a clear ``RuntimeError``.

Majority vote and Dawid-Skene fitted on an :class:`~deem_core.data.annotations.AnnotationSet` do not call
crowd-kit: they compute crowd-kit's very algorithm on the sparse answers (a ``bincount``; two sparse products
per EM iteration, :func:`deem_core.methods.dawid_skene.crowdkit_dawid_skene`), with crowd-kit's tie-breaks,
floors and stopping rule: the same labels and probabilities to ~1e-12, in a fraction of the time and memory
(6,000,000 answers: crowd-kit's majority vote takes 24 s and 1.9 GB; see benchmarks/results/scale.txt).
A long DataFrame still goes to crowd-kit itself.

``predict_proba``: DS, one-coin DS, GLAD, MACE return the method's posterior; MV, Wawa and ZBS
return (weighted) vote shares, which is what crowd-kit calls ``probas_`` for them (a tie gives equal
shares); M-MSR and KOS have no probabilities and return a one-hot matrix of their labels
(``probas_`` is ``None`` for them; M-MSR's raw weighted scores are kept in ``scores_``).

The aggregators are transductive: ``fit`` infers the labels of the tasks in ``df``.
``predict_proba(df)`` / ``predict(df)`` reuse the last fit when ``df`` holds the same data, and
refit otherwise.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from deem_core.analysis.scoring import accuracy, truth_series
from deem_core.data.annotations import AnnotationSet, DataError, as_annotation_set
from deem_core.data.export import label_table
from deem_core.errors import NotFittedError
from deem_core.methods.base import Aggregator
from deem_core.methods.dawid_skene import DEFAULT_DS_PRIOR, check_ds_prior, fit_dawid_skene
from deem_core.methods.registry import display_name

__all__ = [
    "CrowdKitAggregator",
    "MajorityVoteAggregator",
    "WawaAggregator",
    "DawidSkeneAggregator",
    "OneCoinDawidSkeneAggregator",
    "GLADAggregator",
    "MACEAggregator", "MAX_GLAD_CELLS", "MAX_GLAD_CLASSES", "MAX_MACE_CLASSES", "MAX_ONECOIN_CELLS",
    "MAX_ONECOIN_CLASSES",
    "MMSRAggregator",
    "KOSAggregator",
    "ZeroBasedSkillAggregator",
    "run_baselines",
]

_REQUIRED = ("task", "worker", "label")


# --------------------------------------------------------------------------- helpers
def _check_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Validate the long format and drop answers without a label."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in _REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(
            f"annotations need the columns task, worker, label; missing: {', '.join(missing)}"
        )
    data = df.loc[:, list(_REQUIRED)]
    data = data[data["label"].notna()]
    if data.empty:
        raise ValueError("no annotations with a label to aggregate")
    return data.reset_index(drop=True)


#: workers M-MSR runs on at most (crowd-kit's tables and loops over every pair of workers; MMSRAggregator)
MAX_MMSR_WORKERS = 150
#: classes MACE runs on at most: crowd-kit's variational updates go class by class in pandas, 50 iterations of 3
#: restarts (on this 2-core CPU, 60 tasks with one answer a class: 100 classes 26.8 s, 300 classes 96.1 s; 10,000
#: classes held the CPU queue past 495 s; attack round 17)
MAX_MACE_CLASSES = 200
#: GLAD's bounds: crowd-kit spreads every answer over every class in pandas frames, 100 iterations (this 2-core CPU:
#: 4,000 answers x 200 classes 31 s / 382 MB; 10,000 x 500 122 s / 1.34 GB; 20,000 x 1,000 past 150 s and 3.9 GB,
#: from a 225 KB upload; attack round 18; 24,000 x 200 past 300 s, attack round 19): at most MAX_GLAD_CLASSES
#: classes and MAX_GLAD_CELLS answers x classes
MAX_GLAD_CLASSES = 200
MAX_GLAD_CELLS = 1_000_000
#: crowd-kit's one-coin Dawid-Skene (pandas, every class of every answer each of 100 iterations) had no bound: 250
#: tasks x 3 workers in 200 classes, 7.5 KB, ran past 100 s, and 100 classes took 39 s on this CPU (attack round 20;
#: 50 classes 4.1 s, 20,000 answers of 30 classes 9.8 s): at most MAX_ONECOIN_CLASSES classes and
#: MAX_ONECOIN_CELLS answers x classes
MAX_ONECOIN_CLASSES = 50
MAX_ONECOIN_CELLS = 1_000_000

#: (tasks x classes) float64 tables a crowd-kit fit holds at once (its probabilities, their copies in pandas
#: operations, the results table): what :func:`check_label_tables` counts
TABLE_COPIES = 6


def check_label_tables(data: AnnotationSet, budget_bytes: int | None = None) -> int:
    """Refuse (DataError) a fit whose (tasks x classes) tables would not fit in memory; the estimated bytes
    otherwise. Every method here holds a probability per task and class; the DataFrame path skipped every size
    check (attack round 11: 7,000 tasks x 21,000 classes took 4.1 GB for majority vote, 18.6 GB for
    Dawid-Skene)."""
    from deem_core.model.sizes import within_budget  # noqa: PLC0415

    return within_budget(8 * TABLE_COPIES * int(data.n_tasks) * int(data.n_classes), budget_bytes, lambda need, have: (
        f"{data.source}: {data.n_tasks:,} tasks x {data.n_classes:,} classes: the probability tables would need about "
        f"{need} but {have} is available; check that the label column holds class labels (not ids or free text)"))


def _classes(labels: pd.Series) -> pd.Index:
    """Distinct label values with their original dtype: sorted, or in order of first appearance
    when the values cannot be compared (e.g. a mix of ints and strings)."""
    classes = pd.Index(pd.unique(labels))
    try:
        classes = classes.sort_values()
    except TypeError:
        pass
    return classes


def _fingerprint(df: pd.DataFrame) -> tuple[int, int]:
    try:
        h = int(pd.util.hash_pandas_object(df.loc[:, list(_REQUIRED)], index=False).sum())
    except (TypeError, ValueError):  # unhashable cells: no cache
        h = -1
    return len(df), h


def _sort_tasks(obj):
    try:
        return obj.sort_index()
    except TypeError:
        return obj


def _is_sklearn_tags_error(exc: BaseException) -> bool:
    return isinstance(exc, AttributeError) and "__sklearn_tags__" in str(exc)


# --------------------------------------------------------------------------- base class
class CrowdKitAggregator(Aggregator):
    """A crowd-kit method behind the :class:`~deem_core.methods.base.Aggregator` interface.

    Attributes after ``fit``: ``labels_`` (pd.Series, index ``task``, original labels),
    ``probas_`` (pd.DataFrame over ``classes_`` or ``None`` for methods without probabilities),
    ``classes_`` (pd.Index of the original label values, sorted), ``fit_seconds_``.
    """

    key: str = "base"
    #: crowd-kit constructor defaults of this wrapper (overridable with keyword arguments)
    defaults: dict[str, Any] = {}

    def __init__(self, seed: int = 0, **params: Any) -> None:
        self.seed = int(seed)
        self.params = {**self.defaults, **params}
        self.labels_: pd.Series | None = None
        self.probas_: pd.DataFrame | None = None
        self.classes_: pd.Index | None = None
        self.model_: Any = None
        self.fit_seconds_: float | None = None
        self._fitted_on: tuple[int, int] | None = None
        self._tasks: pd.Index | None = None  # every task of the data, in its order (results_frame)
        self._vocabulary: pd.Index | None = None  # the data's classes (may hold classes nobody chose)

    @property
    def name(self) -> str:
        """The method's display name (from the registry)."""
        return display_name(self.key)

    # -- sklearn-ish niceties
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"seed": self.seed, **self.params}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- to be provided by subclasses: work on integer codes 0..K-1
    def _fit_codes(self, data: pd.DataFrame, n_classes: int) -> tuple[pd.Series, pd.DataFrame | None]:
        """Fit on ``data`` whose labels are codes 0..K-1; return (labels as codes indexed by task,
        probabilities with columns 0..K-1 or None)."""
        raise NotImplementedError

    # -- public API
    def fit(self, data: pd.DataFrame | AnnotationSet, gold: Any = None) -> "CrowdKitAggregator":
        """Fit on a long frame ``task, worker, label`` or an AnnotationSet (``gold`` is not used)."""
        if isinstance(data, AnnotationSet):
            self._tasks, self._vocabulary = data.tasks, data.classes
            self.check_size(data)
            df = data.to_long()
        else:
            self._tasks, self._vocabulary = None, None
            # the one validation every method shares (DEEM's): empty ids, a worker's two labels for one task, cells
            # that are not one value, and the sizes, each a DataError (crowd-kit counted a conflict's two answers and
            # gave pandas' KeyError on a NaN id; attack round 11); crowd-kit then fits the frame as given, less its
            # exact repeats (which the answers count once)
            try:  # answers without a label go first, as they always did (a blank ",," row at a CSV's end)
                labelled = _check_frame(data)
            except (KeyError, TypeError, ValueError):
                labelled = data  # what is wrong with it is said by the validation below
            self.check_size(as_annotation_set(labelled))
            df = labelled.drop_duplicates()
        data = _check_frame(df)
        classes = _classes(data["label"])
        codes = classes.get_indexer(data["label"])
        coded = data.assign(label=codes.astype(np.int64))
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                label_codes, proba_codes = self._fit_codes(coded, len(classes))
        except AttributeError as exc:
            if _is_sklearn_tags_error(exc):
                import sklearn

                raise RuntimeError(
                    f"{self.name} ({self.key}) does not work with the installed scikit-learn "
                    f"{sklearn.__version__}: crowd-kit 1.4.x needs scikit-learn < 1.8 for this method "
                    f"({exc})"
                ) from exc
            raise
        self.fit_seconds_ = time.perf_counter() - start

        label_codes = pd.Series(label_codes)
        values = classes.take(label_codes.to_numpy(dtype=np.int64))
        labels = pd.Series(values, index=pd.Index(label_codes.index, name="task"), name="label")
        self.labels_ = _sort_tasks(labels)
        if proba_codes is not None:
            proba = proba_codes.reindex(columns=range(len(classes)), fill_value=0.0).astype(float)
            proba = proba.div(proba.sum(axis=1), axis=0)
            proba.columns = classes
            proba.index = pd.Index(proba.index, name="task")
            proba = _sort_tasks(proba).reindex(self.labels_.index)
            self.probas_ = proba
        else:
            self.probas_ = None
        self.classes_ = classes
        self._fitted_on = _fingerprint(data)
        return self

    def check_size(self, data: AnnotationSet) -> None:
        """DataError before fitting ``data`` when its tables would not fit in memory (:func:`check_label_tables`)."""
        check_label_tables(data)

    def _fit_answers(self, data: AnnotationSet, labels: np.ndarray, proba: np.ndarray, seconds: float) -> None:
        """Store a fit computed on the answers the way :meth:`fit` stores crowd-kit's: ``labels`` (n,) data class
        codes (-1: task without answers, left out as crowd-kit never sees it), ``proba`` (n, K) over the data's
        classes. ``classes_`` are the classes the answers use (sorted, or in order of first appearance)."""
        from deem_core.methods.dawid_skene import first_appearance_order  # noqa: PLC0415

        self._tasks, self._vocabulary = data.tasks, data.classes
        seen = first_appearance_order(data)
        classes = _classes(pd.Series(data.classes.take(seen)))
        columns = data.classes.get_indexer(classes)  # data code of every column of classes_
        answered = labels >= 0
        tasks = pd.Index(data.tasks[answered], name="task")
        self.labels_ = _sort_tasks(pd.Series(data.classes.take(labels[answered]), index=tasks, name="label"))
        frame = pd.DataFrame(proba[np.ix_(answered, columns)], index=tasks, columns=classes)
        frame = frame.div(frame.sum(axis=1), axis=0)
        self.probas_ = _sort_tasks(frame).reindex(self.labels_.index)
        self.classes_ = classes
        self.model_ = None
        self.fit_seconds_ = seconds
        self._fitted_on = None  # predict(df) refits on a frame

    def _ensure_fitted(self, df: pd.DataFrame | AnnotationSet | None) -> None:
        if isinstance(df, AnnotationSet):
            df = df.to_long()
        if df is None:
            if self.labels_ is None:
                raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit(df) first")
            return
        if self.labels_ is None or self._fitted_on != _fingerprint(_check_frame(df)):
            self.fit(df)

    def results_frame(self) -> pd.DataFrame:
        """One row per task: label, confidence, p_<class> (see :func:`deem_core.data.export.label_table`)."""
        self._ensure_fitted(None)
        tasks = self._tasks if self._tasks is not None else self.labels_.index
        classes = self._vocabulary if self._vocabulary is not None else self.classes_
        return label_table(tasks, classes, self.labels_, self.predict_proba())

    def predict(self, df: pd.DataFrame | None = None) -> pd.Series:
        self._ensure_fitted(df)
        return self.labels_.copy()

    def predict_proba(self, df: pd.DataFrame | None = None) -> pd.DataFrame:
        """Probabilities per task (rows sum to 1, columns = ``classes_``). One-hot of ``labels_``
        for methods without probabilities (M-MSR, KOS)."""
        self._ensure_fitted(df)
        if self.probas_ is not None:
            return self.probas_.copy()
        return self._one_hot()

    def fit_predict_proba(self, data: pd.DataFrame | AnnotationSet, gold: Any = None) -> pd.DataFrame:
        return self.fit(data, gold=gold).predict_proba()

    def _one_hot(self) -> pd.DataFrame:
        codes = self.classes_.get_indexer(self.labels_)
        eye = np.zeros((len(codes), len(self.classes_)))
        eye[np.arange(len(codes)), codes] = 1.0
        return pd.DataFrame(eye, index=self.labels_.index.copy(), columns=self.classes_.copy())


# --------------------------------------------------------------------------- the methods
class MajorityVoteAggregator(CrowdKitAggregator):
    """crowd-kit ``MajorityVote``. ``probas_`` are the vote shares (a tie gives equal shares).

    Ties: crowd-kit has no randomness here. It takes ``idxmax`` over the columns of
    ``value_counts().unstack("label")``; with pandas 3 those columns are in order of first
    appearance of each label in the data, so a tie goes to the tied label that occurs first in the
    rows of ``df`` (deterministic, but it depends on the row order; dog has 50 tied tasks).
    ``tie_break="first"`` (default) keeps exactly that, which reproduces crowd-kit's accuracies;
    ``tie_break="random"`` picks uniformly among the tied labels with
    ``numpy.random.default_rng(seed)``, so only then does the seed matter. ``n_ties_`` counts the
    tied tasks.
    """

    key = "mv"

    def __init__(self, seed: int = 0, tie_break: str = "first", **params: Any) -> None:
        if tie_break not in ("first", "random"):
            raise ValueError("tie_break must be 'first' (crowd-kit's behaviour) or 'random'")
        self.tie_break = tie_break
        super().__init__(seed=seed, **params)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {**super().get_params(deep), "tie_break": self.tie_break}

    def fit(self, data: pd.DataFrame | AnnotationSet, gold: Any = None) -> "MajorityVoteAggregator":
        """On an AnnotationSet: counts per task by one ``bincount`` over the answers, ties as crowd-kit breaks
        them (the tied class whose first answer comes first); a long frame goes to crowd-kit."""
        if not isinstance(data, AnnotationSet) or self.params:
            return super().fit(data, gold=gold)
        from deem_core.methods.dawid_skene import first_appearance_order  # noqa: PLC0415

        self.check_size(data)
        start = time.perf_counter()
        n, k = data.n_tasks, data.n_classes
        votes = np.bincount(data.task_codes * k + data.label_codes, minlength=n * k).reshape(n, k)
        order = first_appearance_order(data)
        totals = votes.sum(axis=1)
        labels = np.where(totals > 0, order[votes[:, order].argmax(axis=1)], -1)
        top = votes.max(axis=1, keepdims=True)
        tied = (votes == top) & (totals[:, None] > 0)
        multi = tied.sum(axis=1) > 1
        self.n_ties_ = int(multi.sum())
        if self.tie_break == "random" and self.n_ties_:
            rng = np.random.default_rng(self.seed)
            for task in np.flatnonzero(multi):  # in task order, one draw per tied task (as the crowd-kit path)
                labels[task] = int(rng.choice(np.flatnonzero(tied[task])))
        with np.errstate(invalid="ignore", divide="ignore"):
            shares = votes / totals[:, None]
        self._fit_answers(data, labels, shares, time.perf_counter() - start)
        return self

    def _fit_codes(self, data, n_classes):
        from crowdkit.aggregation import MajorityVote

        self.model_ = MajorityVote(**self.params).fit(data)
        proba = self.model_.probas_.reindex(columns=range(n_classes), fill_value=0.0)
        labels = self.model_.labels_
        tied = proba.eq(proba.max(axis=1), axis=0)
        multi = tied.sum(axis=1) > 1
        self.n_ties_ = int(multi.sum())
        if self.tie_break == "random" and self.n_ties_:
            rng = np.random.default_rng(self.seed)
            labels = pd.Series(proba.to_numpy().argmax(axis=1), index=proba.index)
            for task in proba.index[multi.to_numpy()]:
                options = np.flatnonzero(tied.loc[task].to_numpy())
                labels.loc[task] = int(rng.choice(options))
        return labels, proba


class WawaAggregator(CrowdKitAggregator):
    """crowd-kit ``Wawa`` (majority vote weighted by agreement with the majority). Needs
    scikit-learn < 1.8 with crowd-kit 1.4.x (otherwise ``RuntimeError``). Deterministic."""

    key = "wawa"

    def _fit_codes(self, data, n_classes):
        from crowdkit.aggregation import Wawa

        self.model_ = Wawa(**self.params)
        proba = self.model_.fit_predict_proba(data)  # fit() alone leaves labels_ unset
        self.skills_ = self.model_.skills_
        return self.model_.labels_, proba


class DawidSkeneAggregator(CrowdKitAggregator):
    """crowd-kit ``DawidSkene(n_iter=100)``. Deterministic (initialised from majority vote).

    Extra attributes, in original label values: ``errors_`` (crowd-kit's confusion matrices:
    index (worker, observed label), columns true label; each worker's column sums to 1) and
    ``priors_`` (class priors, index = label)."""

    key = "ds"
    defaults = {"n_iter": 100}

    def check_size(self, data: AnnotationSet) -> None:
        """Also the (workers x classes x classes) confusion arrays (:func:`check_dawid_skene_size`)."""
        from deem_core.methods.dawid_skene import check_dawid_skene_size  # noqa: PLC0415

        super().check_size(data)
        check_dawid_skene_size(data)

    def _make(self):
        from crowdkit.aggregation import DawidSkene

        return DawidSkene(**self.params)

    def _fit_codes(self, data, n_classes):
        self.model_ = self._make().fit(data)
        return self.model_.labels_, self.model_.probas_

    def fit(self, data: pd.DataFrame | AnnotationSet, gold: Any = None) -> "DawidSkeneAggregator":
        """On an AnnotationSet (and crowd-kit's options n_iter, tol only): crowd-kit's EM computed on the sparse
        answers (:func:`deem_core.methods.dawid_skene.crowdkit_dawid_skene`); a long frame goes to crowd-kit."""
        if isinstance(data, AnnotationSet) and self.key == "ds" and set(self.params) <= {"n_iter", "tol"}:
            check_label_tables(data)
            self._fit_sparse(data)
            return self
        super().fit(data, gold=gold)
        self._decode_extras()
        return self

    def _fit_sparse(self, data: AnnotationSet) -> None:
        from deem_core.methods.dawid_skene import crowdkit_dawid_skene, first_appearance_order  # noqa: PLC0415

        start = time.perf_counter()
        fit = crowdkit_dawid_skene(data, **self.params)
        self._fit_answers(data, fit.labels, np.nan_to_num(fit.posterior), time.perf_counter() - start)
        self.n_iter_ = fit.n_iter
        # errors_ / priors_ as the crowd-kit path gives them: rows (worker, label given) that occur, columns the
        # classes_ (true label), in original values
        columns = data.classes.get_indexer(self.classes_)
        workers, given = np.nonzero(fit.present[:, columns])
        index = pd.MultiIndex.from_arrays([data.workers.take(workers), self.classes_.take(given)],
                                          names=["worker", "label"])
        errors = fit.errors[workers[:, None], columns[given][:, None], columns[None, :]]
        self.errors_ = _sort_tasks(pd.DataFrame(errors, index=index, columns=pd.Index(self.classes_)))
        order = first_appearance_order(data)  # crowd-kit keeps its priors in its column order
        self.priors_ = pd.Series(fit.prior[order], index=pd.Index(data.classes.take(order), name="label"), name="prior")

    def _decode_extras(self) -> None:
        classes = self.classes_
        dec = lambda c: classes[int(c)]  # noqa: E731
        errors = getattr(self.model_, "errors_", None)
        if errors is not None:
            errors = errors.copy()
            if isinstance(errors.index, pd.MultiIndex) and "label" in errors.index.names:
                level = errors.index.names.index("label")
                errors.index = errors.index.set_levels(
                    errors.index.levels[level].map(dec), level=level, verify_integrity=False
                )
            name = errors.columns.name
            errors.columns = pd.Index([dec(c) for c in errors.columns], name=name)
            errors = _sort_tasks(errors.reindex(columns=[c for c in classes if c in errors.columns]))
        self.errors_ = errors
        priors = getattr(self.model_, "priors_", None)
        if priors is not None:
            priors = priors.copy()
            priors.index = pd.Index([dec(c) for c in priors.index], name=priors.index.name)
        self.priors_ = priors


class SharedPriorDawidSkeneAggregator(CrowdKitAggregator):
    """Dawid-Skene with a shared prior on the workers' confusion matrices: the fit DEEM's Dawid-Skene start uses
    (:func:`deem_core.methods.dawid_skene.fit_dawid_skene` with ``prior_strength=ds_prior``). Every worker's column
    ``m`` gets ``ds_prior`` pseudo-answers spread as the whole crowd answers class ``m``, so a worker seen a few
    times counts as a typical worker of the crowd; ``ds_prior=0`` is plain maximum likelihood (``ds`` fits it as
    crowd-kit does). Not a crowd-kit method: EM on the answers, from majority-vote shares. Deterministic.

    Extra attributes: ``confusion_`` (d, K, K) ``[worker, given, true]`` in the data's worker and class order,
    ``prior_`` (K,), ``n_iter_``."""

    key = "ds_shared"

    def __init__(self, seed: int = 0, ds_prior: float = DEFAULT_DS_PRIOR, n_iter: int = 100) -> None:
        self.ds_prior = check_ds_prior(ds_prior)
        if not isinstance(n_iter, (int, np.integer)) or isinstance(n_iter, bool) or n_iter < 1:
            raise ValueError(f"n_iter must be an integer >= 1, got {n_iter!r}")
        self.n_iter = int(n_iter)
        super().__init__(seed=seed)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"seed": self.seed, "ds_prior": self.ds_prior, "n_iter": self.n_iter}

    def fit(self, data: pd.DataFrame | AnnotationSet, gold: Any = None) -> "SharedPriorDawidSkeneAggregator":
        """Fit on an AnnotationSet or a long frame ``task, worker, label`` (``gold`` is not used)."""
        answers = as_annotation_set(data)
        start = time.perf_counter()
        fit = fit_dawid_skene(answers, max_iter=self.n_iter, prior_strength=self.ds_prior)
        labels = fit.posterior.argmax(axis=1)
        labels[answers.answers_per_task() == 0] = -1  # a task without answers gets no label
        self._fit_answers(answers, labels, fit.posterior, time.perf_counter() - start)
        self.confusion_, self.prior_, self.n_iter_ = fit.confusion, fit.prior, fit.n_iter
        return self


def _check_classes_and_cells(data: AnnotationSet, what: str, max_classes: int, max_cells: int, measured: str,
                             instead: str) -> None:
    """DataError when ``data`` has more than ``max_classes`` classes or ``max_cells`` answers x classes: a method whose
    time grows with both (``what`` it does, a ``measured`` case, what to do ``instead``)."""
    if data.n_classes > max_classes or data.n_annotations * data.n_classes > max_cells:
        raise DataError(f"{data.source}: {what}: it runs on at most {max_classes} classes and {max_cells:,} answers x "
                        f"classes ({measured}; these data have {data.n_annotations:,} answers of {data.n_classes:,} "
                        f"classes); {instead}")


class OneCoinDawidSkeneAggregator(DawidSkeneAggregator):
    """crowd-kit ``OneCoinDawidSkene(n_iter=100)`` (one accuracy per worker). Deterministic.
    ``skills_`` are the worker accuracies; ``errors_``/``priors_`` as for Dawid-Skene."""

    key = "onecoin"
    defaults = {"n_iter": 100}

    def check_size(self, data: AnnotationSet) -> None:
        """Also its time, which grows faster than answers x classes (:data:`MAX_ONECOIN_CLASSES`,
        :data:`MAX_ONECOIN_CELLS`)."""
        super().check_size(data)
        _check_classes_and_cells(data, "one-coin Dawid-Skene weighs every answer against every class",
                                 MAX_ONECOIN_CLASSES, MAX_ONECOIN_CELLS, "750 answers of 100 classes took 39 s",
                                 "use Dawid-Skene instead")

    def _make(self):
        from crowdkit.aggregation import OneCoinDawidSkene

        return OneCoinDawidSkene(**self.params)

    def _fit_codes(self, data, n_classes):
        labels, proba = super()._fit_codes(data, n_classes)
        self.skills_ = getattr(self.model_, "skills_", None)
        return labels, proba


class GLADAggregator(CrowdKitAggregator):
    """crowd-kit ``GLAD`` with its defaults (n_iter=100, tol=1e-5). Deterministic.
    ``alphas_`` (worker expertise) and ``betas_`` (task difficulty) are exposed."""

    key = "glad"

    def check_size(self, data: AnnotationSet) -> None:
        """Also its memory and time, which grow with answers x classes (:data:`MAX_GLAD_CLASSES`,
        :data:`MAX_GLAD_CELLS`)."""
        super().check_size(data)
        _check_classes_and_cells(data, "GLAD spreads every answer over every class", MAX_GLAD_CLASSES, MAX_GLAD_CELLS,
                                 "24,000 answers of 200 classes ran past 300 s", "use another method")

    def _fit_codes(self, data, n_classes):
        from crowdkit.aggregation import GLAD

        self.model_ = GLAD(**self.params).fit(data)
        self.alphas_ = getattr(self.model_, "alphas_", None)
        self.betas_ = getattr(self.model_, "betas_", None)
        return self.model_.labels_, self.model_.probas_


class MACEAggregator(CrowdKitAggregator):
    """crowd-kit ``MACE`` (variational Bayes, n_iter=50) with ``n_restarts=3`` seeded restarts.

    Seeds: crowd-kit passes an *int* ``random_state`` to every restart, so all restarts start from
    the same point and ``n_restarts`` is wasted; we pass ``numpy.random.RandomState(seed)`` so the
    restarts really differ and the best marginal likelihood is kept.

    Ordering bug worked around: crowd-kit 1.4.2 indexes its per-worker arrays in order of first
    appearance (``pd.factorize``) but fills them from a ``groupby(["worker", "label"])`` table that
    is in *sorted* order, so a worker gets another worker's spamming distribution whenever the two
    orders differ (result depends on row order and on the type of the worker ids: on duck 80.56%
    with string worker ids, 85.19% with the int ids as read, 72.22% with rows sorted by task).
    We recode workers and labels as integers in order of first appearance, which makes both
    orders agree (duck 86.11%, dog 83.02%, independent of row order and id type).
    """

    key = "mace"
    defaults = {"n_restarts": 3}

    def check_size(self, data: AnnotationSet) -> None:
        """Also its time, which grows with the classes (:data:`MAX_MACE_CLASSES`)."""
        super().check_size(data)
        if data.n_classes > MAX_MACE_CLASSES:
            raise DataError(f"{data.source}: MACE updates its estimates class by class: it runs on at most "
                            f"{MAX_MACE_CLASSES} classes (300 took 96 s of CPU on 300 answers; these data have "
                            f"{data.n_classes:,}); use another method")

    def _fit_codes(self, data, n_classes):
        from crowdkit.aggregation import MACE

        worker_codes, _ = pd.factorize(data["worker"])
        label_codes, label_names = pd.factorize(data["label"])  # label_names: our codes 0..K-1
        coded = data.assign(worker=worker_codes.astype(np.int64), label=label_codes.astype(np.int64))
        params = dict(self.params)
        params.setdefault("random_state", np.random.RandomState(self.seed))
        self.model_ = MACE(**params).fit(coded)
        proba = self.model_.probas_.copy()
        proba.columns = [int(label_names[int(c)]) for c in proba.columns]
        proba.index.name = "task"
        labels = proba.idxmax(axis=1)
        return labels, proba


class MMSRAggregator(CrowdKitAggregator):
    """crowd-kit ``MMSR`` (matrix mean-subsequence-reduced, n_iter=10000, tol=1e-10), seeded with
    ``random_state=seed``. No probabilities: ``predict_proba`` is one-hot; crowd-kit's weighted
    vote scores are kept in ``scores_`` (columns = original labels; they may be negative)."""

    key = "mmsr"

    def check_size(self, data: AnnotationSet) -> None:
        """Also crowd-kit's dense (workers x tasks) observations and its tables and loops over every pair of
        workers, which grow far faster than the answers (here: 100 workers x 12 tasks 2.4 s and 0.3 GB, 200 workers
        10.9 s and 1.7 GB, 350 workers past 3 GB; 12,000 workers x 24,000 tasks past 4 GB in 13 s; attack round 12):
        at most :data:`MAX_MMSR_WORKERS` workers, and the observations within the memory budget."""
        from deem_core.model.sizes import within_budget  # noqa: PLC0415

        super().check_size(data)
        if data.n_workers > MAX_MMSR_WORKERS:
            raise DataError(f"{data.source}: M-MSR compares every pair of workers in dense tables: it runs on at most "
                            f"{MAX_MMSR_WORKERS} workers (200 took 1.7 GB and 11 s; these data have "
                            f"{data.n_workers:,}); use another method")
        within_budget(8 * 3 * int(data.n_workers) * int(data.n_tasks), None, lambda need, have: (
            f"{data.source}: M-MSR's {data.n_workers:,} workers x {data.n_tasks:,} tasks tables would need about {need} "
            f"but {have} is available; use another method"))

    def _fit_codes(self, data, n_classes):
        from crowdkit.aggregation import MMSR

        params = {"random_state": self.seed, **self.params}
        self.model_ = MMSR(**params)
        labels = self.model_.fit_predict(data)
        self.skills_ = self.model_.skills_
        self._raw_scores = self.model_.scores_
        return labels, None

    def fit(self, data: pd.DataFrame | AnnotationSet, gold: Any = None) -> "MMSRAggregator":
        super().fit(data, gold=gold)
        scores = self._raw_scores.reindex(columns=range(len(self.classes_)), fill_value=0.0)
        scores.columns = self.classes_
        self.scores_ = _sort_tasks(scores)
        return self


class KOSAggregator(CrowdKitAggregator):
    """crowd-kit ``KOS`` (Karger-Oh-Shah message passing, n_iter=100), binary only, seeded with
    ``random_state=seed``. crowd-kit calls ``np.random.seed`` (the global generator); the global
    state is saved and restored around the fit. No probabilities: ``predict_proba`` is one-hot."""

    key = "kos"

    def _fit_codes(self, data, n_classes):
        from crowdkit.aggregation import KOS

        if n_classes != 2:
            raise ValueError(
                f"kos supports only 2 classes (binary labels); this data has {n_classes} classes"
            )
        params = {"random_state": self.seed, **self.params}
        self.model_ = KOS(**params)
        state = np.random.get_state()
        try:
            labels = self.model_.fit_predict(data)
        except KeyError as exc:  # np.sign(0): an exact tie has no label in crowd-kit
            raise RuntimeError(f"kos produced an exact tie it cannot label ({exc!r})") from exc
        finally:
            np.random.set_state(state)
        return labels, None


class ZeroBasedSkillAggregator(CrowdKitAggregator):
    """crowd-kit ``ZeroBasedSkill`` (skill-weighted majority vote with skills learnt from zero).
    Needs scikit-learn < 1.8 with crowd-kit 1.4.x (otherwise ``RuntimeError``). Deterministic;
    ``probas_`` are the weighted vote shares."""

    key = "zbs"

    def _fit_codes(self, data, n_classes):
        from crowdkit.aggregation import ZeroBasedSkill

        self.model_ = ZeroBasedSkill(**self.params)
        proba = self.model_.fit_predict_proba(data)  # fit() alone leaves labels_ unset
        self.skills_ = self.model_.skills_
        return self.model_.labels_, proba


def run_baselines(
    data: pd.DataFrame | AnnotationSet,
    methods: Iterable[str] | str | None = None,
    truth: Any = None,
    seed: int = 0,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    on_result: Callable[[str, CrowdKitAggregator | None], None] | None = None,
    on_start: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Fit several baselines on ``data`` (a long frame or an AnnotationSet); one row per method with columns
    ``method, name, accuracy, seconds, error``.

    An AnnotationSet goes as it is to the methods the registry marks ``sparse`` (majority vote and Dawid-Skene
    then compute on the coded answers, without crowd-kit); the long frame the other methods need is built
    from it once, and only when one of them is asked for. A long frame goes to every method as it is.

    ``accuracy`` is in percent (:func:`deem_core.analysis.scoring.accuracy`; NaN without truth or when the
    method failed); ``seconds`` is the wall time of the fit; ``error`` is ``None`` or the message of
    the exception that method raised (an unknown method name, KOS on multiclass data, ...): one
    failing method never stops the others. ``params`` maps a method key to extra constructor
    arguments; ``on_start(method)`` is called before each method and ``on_result(method, fitted_aggregator_or_None)``
    after it.
    """
    from deem_core.methods.registry import METHODS, make_aggregator, method_keys  # noqa: PLC0415

    if methods is None:
        methods = method_keys(trains=False)
    elif isinstance(methods, str):
        methods = [methods]
    keys = [str(method).strip().lower() for method in methods]
    if isinstance(data, AnnotationSet):
        answers = data
        tasks = data.tasks[np.diff(data.task_offsets) > 0]  # the tasks with an answer, as in the long frame
        long = None
        if any(key not in METHODS or not METHODS[key].sparse for key in keys):
            long = _check_frame(data.to_long())  # once, outside the timings
    else:
        answers, long = None, _check_frame(data)
        tasks = pd.unique(long["task"])
    if long is not None:
        import crowdkit.aggregation  # noqa: F401  - import once, outside the timings
    truth_s = None if truth is None else truth_series(truth)
    rows = []
    for key in keys:
        row = {"method": key, "name": display_name(key),
               "accuracy": float("nan"), "seconds": float("nan"), "error": None}
        agg = None
        if on_start is not None:
            on_start(key)
        start = time.perf_counter()
        try:
            agg = make_aggregator(key, seed=seed, **dict((params or {}).get(key, {})))
            agg.fit(answers if answers is not None and METHODS[key].sparse else long)
            if truth_s is not None:
                row["accuracy"] = 100.0 * accuracy(agg.labels_, truth_s, tasks)
        except Exception as exc:  # noqa: BLE001 - reported in the table, never raised
            row["error"] = f"{type(exc).__name__}: {exc}"
            agg = None
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
        if on_result is not None:
            on_result(key, agg)
    out = pd.DataFrame(rows, columns=["method", "name", "accuracy", "seconds", "error"])
    out["error"] = pd.Series([r["error"] for r in rows], index=out.index, dtype=object)
    return out
