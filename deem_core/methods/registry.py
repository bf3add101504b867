"""The one registry of aggregation methods: key, display name, factory and capabilities.

Everything that offers a choice of method reads this table: ``deem aggregate --method`` and
``deem baselines --methods``, the dashboard's Train page and job manager, and ``benchmarks/accuracy.py``.
Adding a method = one :class:`MethodSpec` in :data:`BUILTIN` (or :func:`register` at run time) plus its
module; the method implements :class:`deem_core.methods.base.Aggregator`.

Factories are given as ``"module:attribute"`` strings and imported on first use, so listing the methods
(for ``--help`` or a page's options) never imports torch or crowd-kit.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from deem_core.data.annotations import AnnotationSet
from deem_core.methods.base import Aggregator, defaults_of

__all__ = [
    "BUILTIN", "METHODS", "MethodSpec", "display_name", "fit_method", "get_method", "majority_reference",
    "make_aggregator", "method_keys", "register", "unregister", "with_majority",
]


@dataclass(frozen=True)
class MethodSpec:
    """One aggregation method.

    key: the identifier used on the command line, in run configurations and in result tables.
    name: the display name (the one table of names every interface uses).
    factory: the class (or ``"module:attribute"``) building the :class:`Aggregator`; its keyword parameters are
        the method's options, with their defaults.
    description: one line for help texts.
    fixed: options always set for this method (iRBM = DEEM with ``n_layers=0``).
    binary_only: works on two classes only.
    uses_gold: ``fit`` can use gold labels (class map, start choice, supervised term).
    probabilistic: ``predict_proba`` is a real posterior (False: one-hot of the labels).
    trains: trained by gradient steps over epochs: reports every epoch to ``callbacks``, can be cancelled
        with ``fit(..., stop_event=...)``, trains on the GPU when there is one, and has ``save``/``load``,
        ``history_`` and ``run_status_``.
    sparse: fitted on an :class:`~deem_core.data.annotations.AnnotationSet`, computes on its coded answers (no
        long DataFrame, no crowd-kit); callers that hold an AnnotationSet give it to these methods and build the
        long frame only for the others.
    isolated: its fit checks nothing while it runs (crowd-kit's loops): given a ``stop_event``, it is fitted in a
        child process that the event ends (:mod:`deem_core.methods.child`).
    """

    key: str
    name: str
    factory: Callable[..., Aggregator] | str
    description: str = ""
    fixed: Mapping[str, Any] = field(default_factory=dict)
    binary_only: bool = False
    uses_gold: bool = False
    probabilistic: bool = True
    trains: bool = False
    sparse: bool = False
    isolated: bool = False

    def resolve(self) -> Callable[..., Aggregator]:
        """The factory itself (imported on first use when given as ``"module:attribute"``)."""
        if isinstance(self.factory, str):
            module, _, attribute = self.factory.partition(":")
            return getattr(importlib.import_module(module), attribute)
        return self.factory

    def parameters(self) -> dict[str, inspect.Parameter]:
        """The factory's keyword parameters (the method's options), without the fixed ones."""
        signature = inspect.signature(self.resolve())
        return {name: p for name, p in signature.parameters.items()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name not in self.fixed}

    def defaults(self) -> dict[str, Any]:
        """Default value of every option, read from the factory's signature (the one source of defaults)."""
        accepted = self.parameters()
        return {name: value for name, value in defaults_of(self.resolve()).items() if name in accepted}

    def build(self, **options: Any) -> Aggregator:
        """A new, unfitted aggregator. Options the method does not take are left out, so one set of run
        options (seed, epochs, device, ...) can build every method of a run."""
        accepted = self.parameters()
        return self.resolve()(**{k: v for k, v in options.items() if k in accepted}, **self.fixed)


BUILTIN: tuple[MethodSpec, ...] = (
    MethodSpec("deem", "DEEM", "deem_core.methods.deem:DEEM",
               "deep energy-based unsupervised ensemble model (multinomial layers + iRBM)",
               uses_gold=True, trains=True, sparse=True),
    MethodSpec("irbm", "iRBM", "deem_core.methods.deem:DEEM",
               "DEEM without layers: the identifiable RBM, i.e. Dawid-Skene as an RBM (Lemma 1)",
               fixed={"n_layers": 0}, uses_gold=True, trains=True, sparse=True),
    MethodSpec("mv", "Majority vote", "deem_core.methods.baselines:MajorityVoteAggregator",
               "the most frequent answer (crowd-kit)", sparse=True),
    MethodSpec("wawa", "Wawa", "deem_core.methods.baselines:WawaAggregator",
               "worker agreement with aggregate: majority vote weighted by agreement (crowd-kit)"),
    MethodSpec("ds", "Dawid-Skene", "deem_core.methods.baselines:DawidSkeneAggregator",
               "one confusion matrix per worker, fitted by EM (crowd-kit)", sparse=True),
    MethodSpec("ds_shared", "Dawid-Skene (shared prior)", "deem_core.methods.baselines:SharedPriorDawidSkeneAggregator",
               "Dawid-Skene whose workers share a prior: a worker seen a few times counts as a typical worker (the "
               "fit DEEM starts from)", sparse=True),
    MethodSpec("cwds", "Cluster-weighted Dawid-Skene", "deem_core.methods.clusters:ClusterWeightedDawidSkene",
               "Dawid-Skene in which each group of workers who copy each other counts once (the reference DEEM's "
               "choice falls back to; equal to Dawid-Skene when no group is found)", sparse=True),
    MethodSpec("onecoin", "One-coin Dawid-Skene", "deem_core.methods.baselines:OneCoinDawidSkeneAggregator",
               "one accuracy per worker, fitted by EM (crowd-kit)", isolated=True),
    MethodSpec("glad", "GLAD", "deem_core.methods.baselines:GLADAggregator",
               "worker expertise and task difficulty (crowd-kit)", isolated=True),
    MethodSpec("mace", "MACE", "deem_core.methods.baselines:MACEAggregator",
               "multi-annotator competence estimation (crowd-kit)", isolated=True),
    MethodSpec("mmsr", "M-MSR", "deem_core.methods.baselines:MMSRAggregator",
               "matrix mean-subsequence-reduced (crowd-kit; no probabilities)", probabilistic=False, isolated=True),
    MethodSpec("kos", "KOS", "deem_core.methods.baselines:KOSAggregator",
               "Karger-Oh-Shah message passing (crowd-kit; two classes only, no probabilities)",
               binary_only=True, probabilistic=False, isolated=True),
    MethodSpec("zbs", "Zero-based skill", "deem_core.methods.baselines:ZeroBasedSkillAggregator",
               "skill-weighted majority vote with skills learnt from zero (crowd-kit)", isolated=True),
)

#: every registered method by key, in registration order (the order interfaces list them in)
METHODS: dict[str, MethodSpec] = {spec.key: spec for spec in BUILTIN}


def register(spec: MethodSpec, replace: bool = False) -> MethodSpec:
    """Add a method; a key that exists already needs ``replace=True``."""
    if spec.key in METHODS and not replace:
        raise ValueError(f"method {spec.key!r} is already registered")
    METHODS[spec.key] = spec
    return spec


def unregister(key: str) -> None:
    METHODS.pop(key, None)


def get_method(key: str) -> MethodSpec:
    """The method registered as ``key`` (case-insensitive); ValueError naming the valid keys otherwise."""
    spec = METHODS.get(str(key).strip().lower())
    if spec is None:
        raise ValueError(f"unknown aggregation method {key!r}; valid methods: {', '.join(METHODS)}")
    return spec


def method_keys(trains: bool | None = None) -> list[str]:
    """Registered keys in order; ``trains=True``/``False`` keeps only the trained (DEEM-like) or the other ones."""
    return [key for key, spec in METHODS.items() if trains is None or spec.trains == trains]


def display_name(key: str) -> str:
    """The display name of a method key (the key itself when it is not registered, e.g. in an old run)."""
    spec = METHODS.get(str(key).strip().lower())
    return spec.name if spec is not None else str(key)


def make_aggregator(method: str, **options: Any) -> Aggregator:
    """A new aggregator for ``method`` built from run options (options it does not take are ignored)."""
    return get_method(method).build(**options)


def majority_reference(data: Any) -> pd.Series:
    """The majority vote every method's labels are compared with: the "mv" method's own labels (one tie rule, so
    majority vote never disagrees with itself). Only the labels: its table of vote shares, one column per class,
    held one more tasks x classes table at the end of ``deem aggregate`` (+391 MB on 100,000 tasks x 500 classes;
    attack round 13)."""
    return make_aggregator("mv").fit(data).labels_


def with_majority(frame: pd.DataFrame, data: Any = None, reference: pd.Series | None = None,
                  method: str | None = None) -> pd.DataFrame:
    """A method's label table with ``majority_vote`` (the task's majority label) and ``disagrees_with_majority``
    appended (and ``majority_vote_tied`` with ``data``: two or more classes share the task's highest count), as the
    command line writes it and the dashboard stores and downloads it (the dashboard's files had the
    two columns and the command line's did not). ``reference``: :func:`majority_reference` of ``data``, computed
    once for several methods; ``method="mv"``: the table is majority vote's own, its labels are the reference.
    With ``data`` (an AnnotationSet), a label that is one of the task's most answered classes does not disagree,
    whichever class the tie rule gave majority vote. The table's columns are shared with ``frame``, not copied."""
    if reference is None:
        reference = frame["label"] if method == "mv" else majority_reference(data)
    if not reference.index.equals(frame.index):
        reference = reference.reindex(frame.index)
    values = reference.to_numpy()
    out = frame.copy(deep=False)
    out["majority_vote"] = values
    # one vectorised comparison of the labels as text (a loop of str() per task took 0.7 s a million tasks)
    differs = frame["label"].astype(str).to_numpy() != reference.astype(str).to_numpy()
    positions = data.tasks.get_indexer(frame.index) if isinstance(data, AnnotationSet) else None
    if positions is not None and differs.any() and method != "mv":
        # majority vote's label is always among a task's most answered: a label disagrees when it is not among them
        known = positions >= 0
        codes = np.full(data.n_tasks, -1, dtype=np.int64)
        codes[positions[known]] = data.classes.get_indexer(frame["label"])[known]
        differs[known] = ~data.among_most_voted(codes)[positions[known]]
    out["disagrees_with_majority"] = differs
    if positions is not None:  # where majority vote's label is its tie rule's pick (walkthroughs 47, 48: the
        # review queue left out the tied tasks, where a label differs from that column without disagreeing)
        tied = data.tied_tasks()
        out["majority_vote_tied"] = np.where(positions >= 0, tied[np.clip(positions, 0, None)], False) \
            if data.n_tasks else np.zeros(len(frame), dtype=bool)
    return out


def fit_method(method: str, data: Any, gold: Any = None, *, stop_event: Any = None,
               callbacks: Iterable[Any] | None = None, **options: Any) -> Aggregator:
    """Build ``method`` from ``options`` and fit it on ``data``.

    Gold labels reach a method only when it ``uses_gold`` and ``options["supervised_weight"] > 0`` (without a
    supervised weight the gold labels only score the result). ``callbacks`` and ``stop_event`` go to the
    methods that train; with ``stop_event`` an ``isolated`` method is fitted in a child process that the event
    ends (``deem_core.methods.child.FitStopped``).
    """
    spec = get_method(method)
    if spec.isolated and stop_event is not None:  # (crowd-kit's loops cannot be stopped in this process)
        from deem_core.methods.child import fit_in_child  # noqa: PLC0415

        return fit_in_child(spec.key, data, options, stop_event)
    if spec.trains and callbacks is not None:
        options = {**options, "callbacks": list(callbacks)}
    model = spec.build(**options)
    use_gold = gold if spec.uses_gold and float(options.get("supervised_weight") or 0.0) > 0 else None
    if spec.trains or getattr(model, "stoppable", False):
        return model.fit(data, gold=use_gold, stop_event=stop_event)
    return model.fit(data, gold=use_gold)
