"""Choosing the learning rate from energy curves, without any ground truth (App. G.4.1 of the paper).

:func:`recommend` is a pure function of the curves of a sweep (one row per run and epoch, see
:data:`CURVE_COLUMNS`). It codifies the paper's reading of three curves per learning rate (energy
difference, positive energy, negative energy) and gives every learning rate a verdict with a one-line
reason. The rules, in order (every threshold is a multiple of the *scale*, the median over runs of
``|energy difference|`` at epoch 1, so they do not depend on the data set's energy units; the values
are module constants, chosen on the measurements of ``benchmarks/sweep.py``):

1. **Diverged**: a run whose energies became NaN/inf (status ``"diverged"``) is dropped.
2. **Dead units** (App. G.4): a run whose last epoch predicts fewer classes than majority vote does
   (``n_reference_classes``; by default the most classes any run predicted at epoch 1) is dropped.
3. **Explodes / leaves the band**: a run is dropped when its energy difference moves further from zero
   than ``band`` x the settled level (the paper: curves stay within 2-2.5x their initial value). The
   settled level is the largest ``|difference|`` of the *reference run*, the smallest learning rate of
   the same seed: with persistent sampler chains (this engine's sampler) the model samples first drift
   away from the data, which by itself takes every curve to about 2.5x its epoch-1 value (measured on
   Tree3k, Dog, digits), whatever the learning rate. So the grid should start at a learning rate
   that hardly learns (the default grid does).
4. **Positive or negative energy rises**: the paper expects both curves not to go up. A run is dropped
   when, over the second half of the epochs (after the dip), a smoothed energy ends more than
   ``rise_tolerance`` x scale above its lowest value. The negative energy is measured in excess of the
   reference run's (the sampler drift of rule 3 raises every run's negative energy).
5. **Falls or rises off its tail**: a run whose difference was steady over the middle third (moves
   less than ``tail_tolerance`` x scale) and then moves away from zero by more than twice that over the
   last third is dropped. (Moving *towards* zero after the dip is the paper's recovery, not a fault.)
6. **Stagnant**: a kept run whose positive energy went down by less than ``max(move_floor x scale,
   move_fraction x the largest drop among the kept runs)`` hardly learnt (learning rate too small).
7. **Shape** of the remaining, learning runs: *dip and tail* when the difference dropped at least
   ``dip_depth`` x scale below its start (a U, V or L: the paper's dip, whether or not it rose again)
   and its last third is steady (moves less than ``tail_tolerance`` x scale, and is not still falling: a
   last third that falls by more than half that tolerance and at least half as far as the middle third did
   is the dip going on, :data:`STILL_FALLING`); otherwise *no steady tail yet* (still moving, or a wide dip:
   the paper's second choice).

**Mirrored case**: when the curves mostly move *up* from their start instead of down, every rule on
the energy difference is applied to its mirror image (the paper: "all curves start high and decrease,
in that case the inverse of all guidelines apply"). The positive/negative energy rules are not
mirrored (lower energy always means more probable).

**Choice**: the smallest learning rate with a dip and a steady tail (stability first); if none, the
smallest moving learning rate without a steady tail (the paper's second choice); if every kept run is
stagnant, the one that moved most. Ties between seeds: a learning rate is kept only when every one of
its seeds' runs is kept. **Fallback** when every learning rate was dropped: the learning rate whose
runs kept all classes and broke the fewest rules, smallest first (its verdict says so); the result's
``fallback`` is True. If every run diverged there is nothing to recommend: ``lr`` is None and
``reason`` says why (no exception, so a dashboard can still show the curves).

"Approaching zero" (the paper's rule of thumb, "not granular") is not used to choose: on Tree3k the
curve of a too-large learning rate (0.1, 12 points worse) rises towards zero while the good ones keep a
flat tail, and on Dog the best curves end further from zero. Each run's ``tail_level`` is reported.

Smoothing: an exponential moving average with weight ``alpha`` on the past (TensorBoard-style, with
bias correction, so the first point is not dragged towards zero); the paper reads curves with
alpha 0.7-0.99. The rules read the smoothed curves; ``smoothing=0`` reads the raw ones.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from deem_core.data.export import to_safe_csv
from deem_core.data.text import counted

__all__ = [
    "CURVE_COLUMNS", "CSV_COLUMNS", "LABELS", "Recommendation", "RunAnalysis", "Verdict", "analyse_run", "curves_csv",
    "ema", "lr_key", "recommend",
]

#: columns of a sweep's curves (one row per run and epoch)
CURVE_COLUMNS = ["run", "lr", "seed", "epoch", "positive_energy", "negative_energy", "energy_difference",
                 "acceptance_rate", "n_predicted_classes", "status"]
#: columns of ``curves.csv`` written by ``deem sweep``
CSV_COLUMNS = ["run", "lr", "seed", "epoch", "positive_energy", "negative_energy", "energy_difference",
               "acceptance_rate"]



def curves_csv(curves: pd.DataFrame) -> str:
    """A sweep's curves as the text of ``curves.csv`` (:data:`CSV_COLUMNS`, one row per run and epoch,
    spreadsheet-safe): what ``deem sweep`` writes and the Sweep page's download gives."""
    return to_safe_csv(curves[CSV_COLUMNS], index=False)


# thresholds, in units of the scale (median |energy difference| at epoch 1); see the module docstring
BAND = 2.5
RISE_TOLERANCE = 1.0
TAIL_TOLERANCE = 0.25
MOVE_FLOOR = 0.25
MOVE_FRACTION = 0.5
#: the share of rule 5's threshold under which the largest fall of a slow grid is noise: no tentative pick is read
#: from it (:func:`_decide`)
NOISE_SHARE = 0.1
DIP_DEPTH = 0.5
TAIL_FRACTION = 1 / 3
#: a last third within the tail tolerance still falls, so has not settled, when it falls by more than this share of
#: the tolerance and by at least this share of what the middle third fell: a curve falling at an even pace to its
#: last epoch read "then levels off (moves 0.0574 over the last third ...)" beside a middle third that moved 0.065
#: (walkthrough 125; ``tests/test_recommend.py``)
STILL_FALLING = 0.5


def lr_key(lr: float) -> str:
    """The learning rate as the text used for keys and labels: ``0.003``, ``1``, ``1e-05``."""
    return format(float(lr), ".12g")


def ema(values: Any, alpha: float | None) -> np.ndarray:
    """Bias-corrected exponential moving average, weight ``alpha`` on the past: (T,) -> (T,).

    ``s_t = m_t / (1 - alpha^t)`` with ``m_t = alpha m_{t-1} + (1 - alpha) x_t``, ``m_0 = 0``; the first
    output equals the first input and a constant series stays constant. NaN inputs are skipped (the
    output repeats the last smoothed value; leading NaN stay NaN). ``alpha`` None or 0: a float copy.
    """
    x = np.asarray(values, dtype=float).reshape(-1)
    if not alpha:
        return x.copy()
    if not 0.0 <= float(alpha) < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {alpha!r}")
    out = np.full_like(x, np.nan)
    mean, weight = 0.0, 0.0
    for t, value in enumerate(x):
        if math.isfinite(value):
            mean = alpha * mean + (1.0 - alpha) * value
            weight = alpha * weight + (1.0 - alpha)
        if weight > 0:
            out[t] = mean / weight
    return out


#: what the sweep's pick did to the labels, measured (``benchmarks/sweep_pick.py`` -> ``results/sweep_pick.txt``, its
#: "all:" line): the sweep with its defaults, then ``DEEM()`` trained at the pick and at the default learning rate, on
#: the bundled, shared and generated sets. The pick is the rate whose curves settle (the paper's reading of training,
#: App. G.4.1), not one chosen on accuracy; walkthrough 75 trained at a tentative pick of 1 and got 82.67% where the
#: default gave 84.22%. With 50 epochs on every set (one update an epoch on the small ones) it was 1 above, 9 equal,
#: 11 below, by up to 3.70 points; with the page's epochs now (200 updates a run at least, ``judged_epochs``) as
#: below. ``tests/test_recommend.py`` holds these figures to the results file.
PICK_VS_DEFAULT = {"sets": 21, "above": 2, "equal": 11, "below": 8, "mean": -0.14, "worst": -0.90, "best": 0.12}


def pick_vs_default(default_lr: float) -> str:
    """The measured record of training at the sweep's pick against the default learning rate, in one sentence."""
    r = PICK_VS_DEFAULT
    # (it said "a sweep recommends the rate whose curves settle" under "no learning rate was seen to settle";
    # walkthrough 77)
    return (f"the sweep's rate is read from how its curves behave, not chosen on accuracy: on {r['sets']} data sets "
            f"(benchmarks/results/sweep_pick.txt) training at the sweep's rate gave labels as accurate as at the "
            f"default {default_lr:g} on {r['equal']}, less accurate on {r['below']} (by up to {-r['worst']:.1f} "
            f"points) and more accurate on {r['above']} (by up to {r['best']:.2f} points)")


#: epochs a sweep needs before a learning rate is said to settle (its last third, where "levels off" is read, of 5
#: epochs or more); below it the pick is tentative
MIN_EPOCHS_TO_SETTLE = 15

#: the plain verdict a person reads, per category (the category names are codes for programs and tests)
LABELS = {
    "recommended": "recommended", "tentative": "tentative", "dip-and-tail": "good", "no-steady-tail": "usable",
    "stagnant": "too small",
    "dead-units": "too large", "energy-rises": "too large", "explodes": "too large", "off-tail": "unstable",
    "diverged": "failed", "fallback": "least bad", "flat": "hardly learns",
}
#: what each broken rule means, in a few plain words (for "also: ..." when a run broke several)
_PROBLEM_WORDS = {
    "dead-units": "loses classes", "explodes": "the energy difference swings too far",
    "energy-rises": "an energy rises again", "off-tail": "leaves its level at the end",
}


@dataclass(frozen=True)
class Verdict:
    """The judgement of one learning rate: keep it as a candidate or not, and why (one plain sentence).

    category: "recommended", "dip-and-tail", "no-steady-tail", "stagnant", "flat" (stagnant above the
    recommended rate of a grid where every stable rate is slow), "dead-units", "energy-rises",
    "explodes", "off-tail", "diverged" or "fallback". label: the verdict in one or two plain words
    (:data:`LABELS`: recommended, good, usable, too small, hardly learns, too large, unstable, failed, least bad).
    """

    keep: bool
    reason: str
    category: str = ""

    @property
    def label(self) -> str:
        return LABELS.get(self.category, self.category)

    def to_dict(self) -> dict[str, Any]:
        return {"keep": bool(self.keep), "verdict": self.label, "reason": self.reason}


@dataclass
class RunAnalysis:
    """Numbers read off one run's smoothed curves (energies in the data set's units)."""

    run: int
    lr: float
    seed: int
    epochs: int
    diverged: bool = False
    diverged_epoch: int | None = None
    dead_units: bool = False
    n_predicted: int | None = None
    dead_since: int | None = None
    positive_rise: float = 0.0
    positive_swing: float = 0.0  # how far the positive energy went above its first value, at any epoch
    positive_swing_epoch: int | None = None
    positive_swing_ends: bool = False  # it has not come back: highest at the last epoch, or still past half the rise
    positive_end: float = 0.0  # how far the positive energy's last value is above its first
    positive_rise_epoch: int | None = None
    negative_rise: float = 0.0
    negative_rise_epoch: int | None = None
    positive_drop: float = 0.0
    start: float = math.nan  # oriented energy difference at epoch 1
    lowest: float = math.nan  # oriented minimum
    largest_excursion: float = 0.0  # max |difference| (unoriented)
    tail_drift: float = 0.0  # oriented change over the last third
    middle_drift: float = 0.0  # oriented change over the middle third
    tail_growth: float = 0.0  # growth of |difference| over the last third (moving away from zero)
    tail_level: float = math.nan  # |difference| at the end
    problems: list[str] = field(default_factory=list)
    category: str = ""
    reason: str = ""


@dataclass
class Recommendation:
    """Result of :func:`recommend`.

    lr: the recommended learning rate (None only if every run diverged). verdicts: ``{lr: Verdict}`` for
    every learning rate of the curves, in increasing order. reason: one line on how ``lr`` was chosen.
    orientation: "normal" (dips go down) or "mirrored". fallback: True when no learning rate passed the
    rules and ``lr`` is the least bad one. settled: False when no learning rate of the grid settles within the
    epochs swept and ``lr`` is the smallest that learns (a tentative pick: walkthrough 67 read "Recommended" above its
    own "has not levelled off"). scale: the unit of every threshold (median |difference| at epoch 1). runs: the
    per-run numbers behind the verdicts.
    """

    lr: float | None
    verdicts: dict[float, Verdict]
    reason: str
    orientation: str = "normal"
    fallback: bool = False
    settled: bool = True
    smoothing: float = 0.9
    #: why a slow grid's pick is tentative, in words after its rate ("": a curve not seen to settle, or no pick)
    tentative_reason: str = ""
    scale: float = math.nan
    runs: list[RunAnalysis] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """``{"lr": float | None, "reason": str, "fallback": bool, "settled": bool, "smoothing": float (the EMA α the
        reasons' figures were read with, 0: raw), "verdicts": {"<lr>": {"keep": bool, "verdict": str, "reason":
        str}}}`` (``verdict``: the plain label, see :data:`LABELS`)."""
        # (the smoothing the figures of every reason were read with: without it the Sweep page never said that the
        # "why" column's figures came from smoothed curves while its chart showed the raw ones; walkthrough 99)
        return {"lr": None if self.lr is None else float(self.lr), "reason": self.reason,
                "fallback": bool(self.fallback), "settled": bool(self.settled),
                "smoothing": float(self.smoothing or 0.0),
                **({"tentative_reason": self.tentative_reason} if self.tentative_reason else {}),
                "verdicts": {lr_key(lr): v.to_dict() for lr, v in self.verdicts.items()}}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def table(self) -> pd.DataFrame:
        """One row per learning rate: lr, verdict (plain words), keep, category, reason, recommended."""
        rows = [{"lr": lr, "verdict": v.label, "keep": v.keep, "category": v.category, "reason": v.reason,
                 "recommended": self.lr is not None and math.isclose(lr, self.lr)} for lr, v in self.verdicts.items()]
        return pd.DataFrame(rows, columns=["lr", "verdict", "keep", "category", "reason", "recommended"])


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _oriented_series(curves: pd.DataFrame, smoothing: float | None) -> dict[int, dict[str, np.ndarray]]:
    series = {}
    for run, frame in curves.sort_values(["run", "epoch"]).groupby("run", sort=True):
        series[int(run)] = {
            "epoch": frame["epoch"].to_numpy(dtype=int),
            "lr": float(frame["lr"].iloc[0]),
            "seed": int(frame["seed"].iloc[0]) if "seed" in frame else 0,
            "raw_difference": frame["energy_difference"].to_numpy(dtype=float),
            "difference": ema(frame["energy_difference"].to_numpy(dtype=float), smoothing),
            "positive": ema(frame["positive_energy"].to_numpy(dtype=float), smoothing),
            "negative": ema(frame["negative_energy"].to_numpy(dtype=float), smoothing),
            "n_predicted": (frame["n_predicted_classes"].to_numpy(dtype=float)
                            if "n_predicted_classes" in frame else None),
            "status": (frame["status"].astype(str).to_numpy() if "status" in frame else None),
        }
    return series


def _rise(values: np.ndarray, epochs: np.ndarray, start: int) -> tuple[float, int | None]:
    """How far the end of ``values[start:]`` lies above their minimum, and the epoch of that minimum."""
    part = values[start:]
    if part.size < 2:
        return 0.0, None
    low = int(np.argmin(part))
    return float(part[-1] - part[low]), int(epochs[start + low])


def analyse_run(s: dict[str, Any], run: int, sign: float, n_reference: int | None,
                reference: dict[str, Any] | None = None) -> RunAnalysis:
    """The numbers of one run (``s`` from :func:`_oriented_series`); ``sign`` -1 mirrors the difference.

    reference: the series of the same seed's smallest learning rate; the negative-energy rise is measured
    in excess of it (the drift that the sampler's persistent chains cause whatever the learning rate).
    """
    epochs = s["epoch"]
    a = RunAnalysis(run=run, lr=s["lr"], seed=s["seed"], epochs=int(epochs.size))
    finite = np.isfinite(s["raw_difference"])
    status = s["status"]
    if (status is not None and (status == "diverged").any()) or not finite.all():
        a.diverged = True
        bad = np.flatnonzero(~finite)
        a.diverged_epoch = int(epochs[bad[0]]) if bad.size else None
    if s["n_predicted"] is not None and n_reference:
        n_pred = s["n_predicted"]
        a.n_predicted = int(n_pred[-1])
        if n_pred[-1] < n_reference:
            a.dead_units = True
            healthy = np.flatnonzero(n_pred >= n_reference)
            a.dead_since = int(epochs[healthy[-1] + 1]) if healthy.size and healthy[-1] + 1 < epochs.size else int(epochs[0])
    keep = np.isfinite(s["difference"]) & np.isfinite(s["positive"]) & np.isfinite(s["negative"])
    if not keep.any():
        return a
    epochs = epochs[keep]
    u = sign * s["difference"][keep]
    pos, neg = s["positive"][keep], s["negative"][keep]
    late = epochs.size // 2  # "curves that increase over time": the second half, after the dip
    a.positive_rise, a.positive_rise_epoch = _rise(pos, epochs, late)
    if reference is not None and reference is not s:
        ref_neg = pd.Series(reference["negative"], index=reference["epoch"]).reindex(epochs).to_numpy()
        excess = neg - ref_neg
        ok = np.isfinite(excess)
        a.negative_rise, a.negative_rise_epoch = _rise(excess[ok], epochs[ok], int(ok[:late].sum()))
    elif reference is None:
        a.negative_rise, a.negative_rise_epoch = _rise(neg, epochs, late)
    a.positive_drop = float(pos[0] - np.min(pos))
    high = int(np.argmax(pos))
    a.positive_swing, a.positive_swing_epoch = float(pos[high] - pos[0]), int(epochs[high])
    # (not come back: the last epoch is the highest, or its energy stays above half the rise; read 49: a peak one
    # epoch before the end read "before it comes back")
    a.positive_end = float(pos[-1] - pos[0])
    a.positive_swing_ends = high == pos.size - 1 or a.positive_end > 0.5 * a.positive_swing
    a.start = float(u[0])
    a.lowest = float(np.min(u))
    a.largest_excursion = float(np.max(np.abs(u)))
    k = max(2, int(math.ceil(TAIL_FRACTION * epochs.size)))
    tail = u[-k:] if epochs.size >= 2 else u
    a.tail_drift = float(tail[-1] - tail[0])
    a.tail_growth = float(abs(tail[-1]) - abs(tail[0]))
    middle = u[-2 * k:-k] if epochs.size >= 2 * k + 1 else u[:1]
    a.middle_drift = float(middle[-1] - middle[0]) if middle.size >= 2 else 0.0
    a.tail_level = float(abs(u[-1]))
    return a


def _orientation(series: Mapping[int, dict[str, Any]]) -> float:
    """+1 when the difference curves mostly dip (go down first), -1 when they mostly rise (mirrored)."""
    votes = []
    for s in series.values():
        d = s["difference"][np.isfinite(s["difference"])]
        if d.size < 2:
            continue
        votes.append((d.max() - d[0]) - (d[0] - d.min()))
    return -1.0 if votes and float(np.median(votes)) > 0 else 1.0


def recommend(
    curves: pd.DataFrame,
    smoothing: float | None = 0.9,
    n_reference_classes: int | None = None,
    run_status: Mapping[int, str] | None = None,
    band: float = BAND,
) -> Recommendation:
    """Recommend a learning rate from a sweep's curves (rules in the module docstring).

    curves: rows with at least ``run, lr, epoch, positive_energy, negative_energy, energy_difference``
    (optional ``seed``, ``n_predicted_classes``, ``status``). smoothing: EMA alpha, 0.7-0.99 as in the
    paper (0/None: raw curves). n_reference_classes: classes majority vote predicts (dead-unit
    reference; default: the most classes any run predicted at epoch 1). run_status: optional final
    status per run (``"diverged"`` drops the run). band: the allowed excursion of the energy
    difference, in multiples of its settled level (the paper: 2-2.5).
    """
    needed = ["run", "lr", "epoch", "positive_energy", "negative_energy", "energy_difference"]
    missing = [c for c in needed if c not in curves.columns]
    if missing:
        raise ValueError(f"curves lack column(s) {missing}; expected {CURVE_COLUMNS}")
    if smoothing and not 0.0 <= float(smoothing) < 1.0:
        raise ValueError(f"smoothing must be in [0, 1) (the paper uses 0.7-0.99), got {smoothing!r}")
    if curves.empty:
        raise ValueError("no curves to read: the sweep recorded no epoch")
    curves = curves.copy()
    if "seed" not in curves:
        curves["seed"] = 0
    if n_reference_classes is None and "n_predicted_classes" in curves:
        first = curves[curves["epoch"] == curves["epoch"].min()]["n_predicted_classes"]
        n_reference_classes = int(first.max()) if first.notna().any() else None
    series = _oriented_series(curves, smoothing)
    if run_status:
        for run, status in run_status.items():
            if status == "diverged" and int(run) in series:
                series[int(run)]["status"] = np.array(["diverged"])
    sign = _orientation(series)
    orientation = "normal" if sign > 0 else "mirrored"
    references = _reference_runs(series)
    runs = [analyse_run(s, run, sign, n_reference_classes, series.get(references.get(s["seed"])))
            for run, s in series.items()]

    first_epoch = curves["epoch"].min()
    start_levels = curves.loc[curves["epoch"] == first_epoch, "energy_difference"].abs()
    start_levels = start_levels[np.isfinite(start_levels)]
    scale = float(start_levels.median()) if len(start_levels) else math.nan
    energy_size = curves.loc[curves["epoch"] == first_epoch, "positive_energy"].abs()
    floor = 1e-3 * float(energy_size[np.isfinite(energy_size)].median()) if np.isfinite(energy_size).any() else 1e-6
    scale = max(scale if math.isfinite(scale) else 0.0, floor, 1e-9)
    # the level the sampler alone takes the difference to: the largest |difference| of the least-trained runs
    ref_levels = [float(np.nanmax(np.abs(series[r]["difference"]))) for r in references.values()
                  if np.isfinite(series[r]["difference"]).any()]
    settled_level = max(float(np.median(ref_levels)) if ref_levels else scale, scale)

    # rules 1-4: stability
    for a in runs:
        if a.diverged:
            a.category = "diverged"
            a.reason = ("the energies became infinite" + (f" at epoch {a.diverged_epoch}" if a.diverged_epoch else "")
                        + ": the training broke down")
            continue
        if a.dead_units:
            a.problems.append("dead-units")
            a.reason = (f"predicts only {a.n_predicted} of the {n_reference_classes} classes that majority vote "
                        f"finds (since epoch {a.dead_since}): the model stopped using a class")
        if a.largest_excursion > band * settled_level:
            a.problems.append("explodes")
            # (it said "the level where the smallest learning rate settles" beside a Why that no rate settles, and a
            # positive level beside a chart of negative values; walkthrough 52)
            ratio = a.largest_excursion / settled_level
            # (as many digits as tell it from the bound: "2.5 times ...; more than 2.5 times is too far" of 2.53;
            # walkthrough 133)
            times = next((f"{ratio:.{digits}f}" for digits in (1, 2, 3) if float(f"{ratio:.{digits}f}") > band),
                         f"{ratio:.6g}")
            a.reason = a.reason or (f"the energy difference swings out to {_fmt(a.largest_excursion)} in size, "
                                    f"{times} times the largest size the least-trained learning rates reach "
                                    f"({_fmt(settled_level)}); more than {band:g} times is too far")
        if a.positive_rise > RISE_TOLERANCE * scale:
            a.problems.append("energy-rises")
            a.reason = a.reason or (f"the positive energy (data) rises by {_fmt(a.positive_rise)} after epoch "
                                    f"{a.positive_rise_epoch}: the model explains the data less and less")
        if a.positive_swing > RISE_TOLERANCE * scale and not a.problems:
            # up and back down again within the epochs: the second half's rise above missed it, and the small net
            # fall made a learning rate of 3 "too small" next to a good 1 (walkthrough, tenth session)
            a.problems.append("energy-rises")
            # (highest at the last epoch it has not come back: "before it comes back" said what the chart did not
            # show; forty-second session's read)
            highest = (f"highest at the last epoch ({a.positive_swing_epoch})" if a.positive_end >= a.positive_swing
                       else f"highest at epoch {a.positive_swing_epoch}, {_fmt(a.positive_swing)} above it")
            a.reason = (f"the positive energy (data) ends {_fmt(a.positive_end)} above its start, {highest}: the model "
                        f"explains the data less than when it began"
                        if a.positive_swing_ends else
                        f"the positive energy (data) swings up by {_fmt(a.positive_swing)} above its start (epoch "
                        f"{a.positive_swing_epoch}) before it comes back: the steps overshoot")
        if a.negative_rise > RISE_TOLERANCE * scale:
            a.problems.append("energy-rises")
            a.reason = a.reason or (f"the negative energy (model samples) rises by {_fmt(a.negative_rise)} after "
                                    f"epoch {a.negative_rise_epoch}, more than at the smallest learning rate: the "
                                    f"sampler cannot keep up with the model")
        if abs(a.middle_drift) <= TAIL_TOLERANCE * scale < a.tail_growth / 2 and a.start - a.lowest >= DIP_DEPTH * scale:
            a.problems.append("off-tail")
            a.reason = a.reason or (f"the energy difference had levelled off, then moved away from zero again by "
                                    f"{_fmt(a.tail_growth)} in the last third of the epochs")
        if a.problems:
            a.category = a.problems[0]
            others = sorted({_PROBLEM_WORDS[p] for p in a.problems[1:] if p != a.category})
            if others:
                a.reason += f" (also: {'; '.join(others)})"

    stable = [a for a in runs if not a.diverged and not a.problems]
    move_needed = _move_needed(runs, scale)
    for a in stable:
        if a.positive_drop < move_needed:
            a.category = "stagnant"
            if a.positive_drop > 0 or a.positive_end <= 0:
                a.reason = (f"hardly learns: the positive energy (data) falls by {_fmt(a.positive_drop)}, less than "
                            f"the {_fmt(move_needed)} that counts as learning on these curves")
            else:  # (one that rose a little, within the rise allowed, read "falls by 0"; walkthrough 109)
                # (the bar said: "0.152 above it, less than counts as rising" read as a rise three times the fall
                # that counts as learning called too small to count; walkthrough 131)
                a.reason = (f"hardly learns: the positive energy (data) never falls below its start (it ends "
                            f"{_fmt(a.positive_end)} above it, within the rise of {_fmt(RISE_TOLERANCE * scale)} "
                            f"read as noise before a rate is called too large); a fall of "
                            f"{_fmt(move_needed)} counts as learning on these curves")
            if a.start - a.lowest >= DIP_DEPTH * scale:  # (beside a curve dipping as far as the chosen rate's did)
                a.reason += (f"; its energy difference {'falls' if sign > 0 else 'rises'} by "
                             f"{_fmt(a.start - a.lowest)} all the same: the model samples drift away from the data at "
                             f"any learning rate, so the difference alone does not show learning")
        elif a.start - a.lowest >= DIP_DEPTH * scale and abs(a.tail_drift) <= TAIL_TOLERANCE * scale \
                and not _still_falling(a, scale):
            a.category = "dip-and-tail"
            # (a climb back from the dip read as a fault beside "then stays level"; walkthrough 37)
            if a.epochs < MIN_EPOCHS_TO_SETTLE:  # ("then settles ... levels off" under the headline's "no learning
                # rate was seen to settle" of a 6-epoch sweep; walkthrough 69)
                a.reason = (f"learns: the energy difference dips by {_fmt(a.start - a.lowest)} and looks level over "
                            f"the last third of the epochs ({a.epochs // 3} of {a.epochs}: too few to show that it "
                            f"stays level)")
                continue
            a.reason = (f"learns, then settles: the energy difference dips by {_fmt(a.start - a.lowest)} and then "
                        f"levels off (moves {_fmt(abs(a.tail_drift))} over the last third of the epochs; a climb "
                        f"back from the dip before that is the sampler catching up with the model)")
        else:
            a.category = "no-steady-tail"
            what = ("the energy difference shows no dip yet" if a.start - a.lowest < DIP_DEPTH * scale else
                    f"the energy difference is still {'falling' if sign > 0 else 'rising'} (by "
                    f"{_fmt(abs(a.tail_drift))} over the last third of the epochs, {_fmt(abs(a.middle_drift))} over "
                    f"the middle third)" if _still_falling(a, scale) else
                    f"the energy difference has not levelled off (moves {_fmt(abs(a.tail_drift))} over the last "
                    f"third of the epochs)")
            a.reason = f"learns, but {what}"

    return _decide(runs, curves, smoothing, orientation, scale)


def _still_falling(a: RunAnalysis, scale: float) -> bool:
    """Whether the oriented energy difference is still going down over the last third at about the middle third's
    pace (:data:`STILL_FALLING`): the dip goes on, the curve has not settled."""
    return (a.tail_drift < -STILL_FALLING * TAIL_TOLERANCE * scale
            and a.tail_drift <= STILL_FALLING * min(a.middle_drift, 0.0))


def _reference_runs(series: Mapping[int, dict[str, Any]]) -> dict[int, int]:
    """Per seed, the run with the smallest learning rate that did not diverge (the least-trained run)."""
    best: dict[int, int] = {}
    for run, s in series.items():
        if not np.isfinite(s["raw_difference"]).all() or (s["status"] is not None and (s["status"] == "diverged").any()):
            continue
        seed = s["seed"]
        if seed not in best or s["lr"] < series[best[seed]]["lr"]:
            best[seed] = run
    return best


TIERS = ("dip-and-tail", "no-steady-tail", "stagnant")


def _move_needed(runs: list[RunAnalysis], scale: float) -> float:
    """Rule 5's one threshold for every run (said in each verdict): a fall of the positive energy of at least
    MOVE_FRACTION of the largest fall among the stable runs, and at least MOVE_FLOOR x scale."""
    stable = [a for a in runs if not a.diverged and not a.problems]
    largest_drop = max((a.positive_drop for a in stable), default=0.0)
    return max(MOVE_FLOOR * scale, MOVE_FRACTION * largest_drop)


def _decide(runs: list[RunAnalysis], curves: pd.DataFrame, smoothing, orientation: str, scale: float) -> Recommendation:
    by_lr: dict[float, list[RunAnalysis]] = {}
    for a in sorted(runs, key=lambda r: (r.lr, r.seed)):
        by_lr.setdefault(a.lr, []).append(a)
    order = {name: i for i, name in enumerate(TIERS)}

    def lr_category(items: list[RunAnalysis]) -> str:
        bad = [a for a in items if a.category not in order]
        if bad:
            return bad[0].category
        return max((a.category for a in items), key=lambda c: order[c])  # the weakest seed decides

    def lr_reason(items: list[RunAnalysis], category: str) -> str:
        chosen = next(a for a in items if a.category == category)
        prefix = f"seed {chosen.seed}: " if len(items) > 1 else ""
        return prefix + chosen.reason

    categories = {lr: lr_category(items) for lr, items in by_lr.items()}
    verdicts: dict[float, Verdict] = {}
    chosen_lr, reason, fallback = None, "", False
    tiered = {tier: [lr for lr, c in categories.items() if c == tier] for tier in TIERS}
    drops = {lr: float(np.mean([a.positive_drop for a in by_lr[lr]])) for lr in tiered["stagnant"]}
    if tiered["dip-and-tail"]:
        chosen_lr = min(tiered["dip-and-tail"])
        reason = "the smallest learning rate that learns and then settles (its energy difference dips, then stays level)"
    elif tiered["no-steady-tail"]:
        chosen_lr = min(tiered["no-steady-tail"])
        # (no parenthesis: `deem sweep` puts the reason in one, "... rule (a longer sweep would show more))";
        # walkthrough 104)
        reason = ("no learning rate settles within these epochs; the smallest one that learns without breaking a "
                  "rule; a longer sweep would show more")
    elif tiered["stagnant"] and max(drops.values()) <= NOISE_SHARE * _move_needed(runs, scale):
        # not one stable rate lowered the positive energy at all, or by a sliver of what counts as learning: the most
        # of nothing is a tie of zeros, broken by the smallest rate (a walkthrough saw 0.001 "learned the most ...
        # falls by 0" recommended and picked), and a fall of 0.0001 against 0.055 picked 0.001 over 0.003's 0.00008
        # (walkthrough 123: a starred "tentative" pick on noise)
        reason = ("no learning rate lowered the positive energy (data) on these curves by more than a sliver of what "
                  "counts as learning, so none is recommended: the start may already explain these answers (train "
                  "with the default rate), or sweep more epochs")
        # the larger rates read "too large" for small rises beside that advice, the default among them (walkthrough
        # 126: "train with the default rate" above a table calling 0.01 "too large" for a rise of 0.0097 nats)
        # (read too large for the positive energy's rise, not for a swing of the difference with a rise beside it:
        # "(0.3, 3) ... because the positive energy went up" named 3, whose positive energy ended 0.24 below its
        # start; walkthrough 131)
        bar = RISE_TOLERANCE * scale
        rising = [a for a in runs if a.category == "energy-rises" and a.lr > max(tiered["stagnant"])
                  and max(a.positive_rise, a.positive_swing) > bar]
        if rising:
            rates = sorted({a.lr for a in rising})
            many = len(rates) > 1
            reason += (f"; the larger rate{'s' if many else ''} ({', '.join(_fmt(lr) for lr in rates)}) "
                       f"{'are' if many else 'is'} read too large because the positive energy went up (by at most "
                       f"{_fmt(max(max(a.positive_rise, a.positive_end) for a in rising))}): "
                       f"{'they' if many else 'it'} did not learn either, so training at "
                       f"{'any of them' if many else 'it'} stays near its start too")
    elif tiered["stagnant"]:
        chosen_lr = max(tiered["stagnant"], key=drops.get)
        flat = sorted(lr for lr in tiered["stagnant"] if lr > chosen_lr)
        reason = ("every stable learning rate learns slowly; the one that learned most "
                  + (f"(the larger ones, up to {_fmt(flat[-1])}, learned no more: the start may already explain "
                     f"these answers)" if flat else "(try larger learning rates or more epochs)"))
    else:
        alive = {lr: items for lr, items in by_lr.items() if categories[lr] != "diverged"}
        if alive:
            fallback = True

            def badness(lr: float) -> tuple:
                items = alive[lr]
                return (any(a.dead_units for a in items), sum(len(a.problems) for a in items), lr)

            chosen_lr = min(alive, key=badness)
            # (it said "it keeps all classes" of a rate that had lost one; walkthrough 45)
            keeps = ("it keeps all classes and breaks the fewest rules" if not badness(chosen_lr)[0] else
                     "every one loses a class; this one breaks the fewest rules")
            reason = (f"every learning rate broke a rule; the least bad one: {keeps} (the smallest first). Try "
                      f"smaller learning rates")
        else:
            reason = "every run diverged: no learning rate to recommend; try smaller learning rates"
    #: the rates seen to learn: the recommended one, and any that dips or is still falling
    learning = [lr for lr, category in categories.items() if category in ("dip-and-tail", "no-steady-tail")] + (
        [chosen_lr] if chosen_lr is not None and not fallback else [])
    for lr, items in by_lr.items():
        category = categories[lr]
        keep = category in ("dip-and-tail", "no-steady-tail") or (category == "stagnant" and chosen_lr == lr)
        text = lr_reason(items, category)
        if chosen_lr is not None and math.isclose(lr, chosen_lr):
            if fallback:
                text = "every learning rate broke a rule; this one the least: " + text
                category = "fallback"
            else:
                # (a pick where none settled is tentative in its row too: "recommended" beside the headline's
                # "Tentative learning rate"; and so is one that "settles" over a tail of a few epochs: 6 epochs
                # recommended the grid's largest rate, 3, on a last third of 2; walkthrough 68)
                shortest = min(a.epochs for a in items)
                short = shortest < MIN_EPOCHS_TO_SETTLE
                if category == "stagnant":  # the one that learned most of a slow grid: no "hardly learns" here
                    drop = drops[lr]
                    larger = any(lr2 > lr for lr2 in tiered["stagnant"])
                    # (tentative: its own fall is under the threshold every other row names; "recommended" beside
                    # "less than the 0.0935 that counts as learning" in every row read as a contradiction;
                    # walkthrough 84)
                    text = (f"learns slowly, but the most of the stable learning rates: the positive energy (data) "
                            f"falls by {_fmt(drop)}, under the {_fmt(_move_needed(runs, scale))} that counts as "
                            f"learning, so a "
                            f"tentative pick; " + ("the larger ones learned no more" if larger
                                                   else "try larger learning rates or more epochs"))
                    if short:
                        text += f"; a tail of {counted(shortest // 3, 'epoch')} cannot show a level curve"
                elif category == "no-steady-tail":
                    text += "; the smallest learning rate that learns"
                elif short:  # (its reason says the tail is too short to show a level curve)
                    text += "; the smallest learning rate that looks level, so a tentative pick"
                else:
                    text += "; the smallest learning rate that does"
                if category in ("no-steady-tail", "stagnant") or short:
                    category = "tentative"
                else:
                    category = "recommended"
        elif category == "stagnant" and learning and lr > min(learning):
            # above the recommended rate of a slow grid, "too small" would contradict the advice: it is flat; and so
            # above any rate that learns (0.01 to 1 were "too small" beside a 0.003 that dips and settles, each row's
            # own reason saying its positive energy never fell: "too small" says go higher; walkthrough 133)
            category = "flat"
        verdicts[lr] = Verdict(keep=bool(keep) and category != "fallback", reason=text, category=category)
    settled = not (chosen_lr is not None and not fallback and verdicts[chosen_lr].category == "tentative")
    if not settled and categories.get(chosen_lr) == "dip-and-tail":  # (too few epochs to see it stay level)
        reason += (f"; tentative: over {min(a.epochs for a in by_lr[chosen_lr])} epochs a curve cannot show that it "
                   f"stays level (sweep {MIN_EPOCHS_TO_SETTLE} or more)")
    # (a slow grid's pick is tentative for another reason than a curve not seen to settle: the pages said the latter
    # of both; the diff's read)
    why = ("every stable learning rate learns slowly: none fell as far as counts as learning"
           if not settled and categories.get(chosen_lr) == "stagnant" else "")  # (else the pages' own words)
    return Recommendation(lr=chosen_lr, verdicts=verdicts, reason=reason, orientation=orientation,
                          fallback=fallback, settled=settled, tentative_reason=why,
                          smoothing=float(smoothing or 0.0), scale=scale, runs=runs)
