"""The learning-rate recommendation (App. G.4.1) on hand-made energy curves, one test per rule."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from deem_core.analysis.recommend import CURVE_COLUMNS, Recommendation, ema, lr_key, recommend

T = 40
EPOCHS = np.arange(1, T + 1)


def ramp(start: float, end: float, until: int, after: float | None = None) -> np.ndarray:
    """A value going linearly from ``start`` (epoch 1) to ``end`` (epoch ``until``), then flat (or to ``after``)."""
    t = np.clip((EPOCHS - 1) / max(until - 1, 1), 0.0, 1.0)
    values = start + (end - start) * t
    if after is not None:
        tail = EPOCHS > until
        values[tail] = end + (after - end) * (EPOCHS[tail] - until) / (T - until)
    return values


def dip(start: float, bottom: float, tail: float, bottom_at: int = 8, settle_at: int = 16) -> np.ndarray:
    """Energy difference with a dip: start -> bottom (epoch ``bottom_at``) -> tail (from ``settle_at`` on)."""
    values = np.full(T, tail, dtype=float)
    down = EPOCHS <= bottom_at
    values[down] = start + (bottom - start) * (EPOCHS[down] - 1) / (bottom_at - 1)
    up = (EPOCHS > bottom_at) & (EPOCHS < settle_at)
    values[up] = bottom + (tail - bottom) * (EPOCHS[up] - bottom_at) / (settle_at - bottom_at)
    return values


def run_rows(run: int, lr: float, difference, positive, seed: int = 0, n_predicted=3, status="running"):
    difference = np.asarray(difference, dtype=float)
    positive = np.asarray(positive, dtype=float)
    n_predicted = np.broadcast_to(np.asarray(n_predicted), (T,))
    return pd.DataFrame({
        "run": run, "lr": lr, "seed": seed, "epoch": EPOCHS, "positive_energy": positive,
        "negative_energy": positive - difference, "energy_difference": difference, "acceptance_rate": 0.5,
        "n_predicted_classes": n_predicted, "status": status,
    })[CURVE_COLUMNS]


def flat(value: float) -> np.ndarray:
    return np.full(T, value, dtype=float)


# a "no learning" reference (smallest lr: the sampler's burn-in only) and a good dip-and-tail run;
# the scale (median |difference| at epoch 1) is 1.0 in every test below
REFERENCE = dict(difference=ramp(-1.0, -1.3, 10), positive=flat(-10.0))
GOOD = dict(difference=dip(-1.0, -2.0, -1.6), positive=ramp(-10.0, -12.0, 20))


def curves_of(*runs: dict) -> pd.DataFrame:
    return pd.concat([run_rows(i, **r) for i, r in enumerate(runs)], ignore_index=True)


def test_dip_and_tail_prefers_the_smallest_learning_rate():
    bigger = dict(difference=dip(-1.0, -2.3, -1.5, bottom_at=5, settle_at=12), positive=ramp(-10.0, -12.5, 15))
    curves = curves_of(dict(lr=0.001, **REFERENCE), dict(lr=0.01, **GOOD), dict(lr=0.1, **bigger))
    rec = recommend(curves, smoothing=0.0)
    assert rec.lr == 0.01
    assert rec.orientation == "normal" and not rec.fallback
    assert rec.verdicts[0.01].keep and rec.verdicts[0.01].category == "recommended"
    assert rec.verdicts[0.1].keep and rec.verdicts[0.1].category == "dip-and-tail"
    # the reference hardly learns: kept out as "too small"
    assert not rec.verdicts[0.001].keep and rec.verdicts[0.001].category == "stagnant"
    assert "hardly learns" in rec.verdicts[0.001].reason


def test_rising_positive_energy_is_dropped():
    # learns first, then the data energy climbs back up by 3 (3x the scale) in the second half
    rising = dict(difference=dip(-1.0, -2.0, -1.6), positive=ramp(-10.0, -12.0, 20, after=-9.0))
    curves = curves_of(dict(lr=0.001, **REFERENCE), dict(lr=0.01, **GOOD), dict(lr=0.03, **rising))
    rec = recommend(curves, smoothing=0.0)
    verdict = rec.verdicts[0.03]
    assert not verdict.keep and verdict.category == "energy-rises"
    assert "positive energy (data) rises" in verdict.reason and verdict.label == "too large"
    assert rec.lr == 0.01
    # the same run alone with a flat data energy is fine: the rise is what drops it
    calm = dict(difference=rising["difference"], positive=ramp(-10.0, -12.0, 20))
    assert recommend(curves_of(dict(lr=0.001, **REFERENCE), dict(lr=0.03, **calm)), smoothing=0.0).verdicts[0.03].keep


def test_a_positive_energy_that_swings_up_and_back_is_too_large_not_too_small():
    # the data energy rose from 4.1 to 5.5 by epoch 11 and came back to 4.3: its small net fall made a rate of 3
    # "too small - hardly learns" beside a good 1 (walkthrough, tenth session)
    swing = np.concatenate([ramp(-10.0, -7.0, 11)[:11], ramp(-7.0, -10.2, T - 11)[: T - 11]])
    swinging = dict(difference=dip(-1.0, -2.0, -1.6), positive=swing)
    curves = curves_of(dict(lr=0.001, **REFERENCE), dict(lr=0.01, **GOOD), dict(lr=3.0, **swinging))
    rec = recommend(curves, smoothing=0.0)
    verdict = rec.verdicts[3.0]
    assert not verdict.keep and verdict.label == "too large", verdict
    assert "swings up by 3" in verdict.reason and "epoch 11" in verdict.reason
    assert rec.lr == 0.01
    # up in the first half and highest at the last epoch, the second half's rise too small to say it: it has not
    # come back, and the reason does not say it did (forty-second session's read)
    risen = dict(difference=dip(-1.0, -2.0, -1.6), positive=ramp(-10.0, -7.0, T // 2, after=-6.9))
    verdict = recommend(curves_of(dict(lr=0.001, **REFERENCE), dict(lr=0.01, **GOOD), dict(lr=3.0, **risen)),
                        smoothing=0.0).verdicts[3.0]
    assert not verdict.keep and verdict.label == "too large", verdict
    assert verdict.reason == (f"the positive energy (data) ends 3.1 above its start, highest at the last epoch ({T}): "
                              "the model explains the data less than when it began"), verdict.reason
    # highest one epoch before the end and hardly down since: not "come back" either (read 49)
    risen["positive"] = risen["positive"].copy()
    risen["positive"][-1] -= 0.05
    verdict = recommend(curves_of(dict(lr=0.001, **REFERENCE), dict(lr=0.01, **GOOD), dict(lr=3.0, **risen)),
                        smoothing=0.0).verdicts[3.0]
    assert verdict.reason == (f"the positive energy (data) ends 3.05 above its start, highest at epoch {T - 1}, 3.09 "
                              "above it: the model explains the data less than when it began"), verdict.reason


def test_rising_negative_energy_is_dropped_but_sampler_burn_in_is_not():
    # every run's negative energy rises with the reference's (sampler burn-in): not a reason to drop;
    # a run whose negative energy keeps rising beyond the reference in the second half is dropped
    good = curves_of(dict(lr=0.001, **REFERENCE), dict(lr=0.01, **GOOD))
    assert recommend(good, smoothing=0.0).verdicts[0.01].keep
    positive = ramp(-10.0, -12.0, 20)
    difference = ramp(-1.0, -2.0, 20, after=-3.2)  # negative energy = positive - difference keeps rising
    curves = curves_of(dict(lr=0.001, **REFERENCE), dict(lr=0.01, **GOOD),
                       dict(lr=0.03, difference=difference, positive=positive))
    verdict = recommend(curves, smoothing=0.0).verdicts[0.03]
    assert not verdict.keep and "negative energy (model samples) rises" in verdict.reason


def test_exploding_difference_is_dropped():
    exploding = dict(difference=ramp(-1.0, -12.0, 30), positive=ramp(-10.0, -12.0, 20))
    curves = curves_of(dict(lr=0.001, **REFERENCE), dict(lr=0.01, **GOOD), dict(lr=1.0, **exploding))
    rec = recommend(curves, smoothing=0.0)
    verdict = rec.verdicts[1.0]
    assert not verdict.keep and verdict.category == "explodes"
    assert "swings out" in verdict.reason and "more than 2.5 times is too far" in verdict.reason
    # in size, against what the least-trained rates reach (it named a level "where the smallest rate settles" beside a
    # Why that no rate settles, and a positive level beside negative curves; walkthrough 52)
    assert re.search(r"swings out to [\d.]+ in size, [\d.]+ times the largest size the least-trained learning rates "
                     r"reach \([\d.]+\)", verdict.reason), verdict.reason
    # a wider band lets it through (the threshold is the band, not something else)
    assert recommend(curves, smoothing=0.0, band=20.0).verdicts[1.0].category != "explodes"


def test_dip_that_falls_off_its_tail_is_dropped():
    # dip, steady tail through the middle third, then the difference falls away from zero
    values = dip(-1.0, -2.0, -1.6, bottom_at=5, settle_at=10)
    late = EPOCHS > 27
    values[late] = -1.6 - 0.12 * (EPOCHS[late] - 27)
    positive = ramp(-10.0, -12.0, 20)
    positive[late] -= 0.12 * (EPOCHS[late] - 27)  # both energies keep their course: only the difference leaves
    falling = dict(difference=values, positive=positive)
    curves = curves_of(dict(lr=0.001, **REFERENCE), dict(lr=0.01, **GOOD), dict(lr=0.1, **falling))
    rec = recommend(curves, smoothing=0.0)
    assert rec.verdicts[0.1].category == "off-tail" and not rec.verdicts[0.1].keep
    assert "levelled off, then moved away from zero" in rec.verdicts[0.1].reason
    assert rec.verdicts[0.1].label == "unstable"
    assert rec.lr == 0.01


def test_mirrored_curves_apply_the_rules_upside_down():
    bigger = dict(difference=dip(-1.0, -2.3, -1.5, bottom_at=5, settle_at=12), positive=ramp(-10.0, -12.5, 15))
    runs = [dict(lr=0.001, **REFERENCE), dict(lr=0.01, **GOOD), dict(lr=0.1, **bigger)]
    mirrored = [dict(r, difference=-r["difference"]) for r in runs]  # start high, rise first, come down
    rec = recommend(curves_of(*mirrored), smoothing=0.0)
    assert rec.orientation == "mirrored"
    assert rec.lr == 0.01
    assert rec.verdicts[0.01].category == "recommended" and "dip" in rec.verdicts[0.01].reason
    assert recommend(curves_of(*runs), smoothing=0.0).orientation == "normal"


def test_dead_units_are_flagged_and_dropped():
    n_pred = np.where(EPOCHS >= 12, 2, 3)
    curves = curves_of(dict(lr=0.001, **REFERENCE), dict(lr=0.01, **GOOD),
                       dict(lr=0.03, n_predicted=n_pred, **GOOD))
    rec = recommend(curves, smoothing=0.0)  # reference = most classes predicted at epoch 1 = 3
    verdict = rec.verdicts[0.03]
    assert not verdict.keep and verdict.category == "dead-units"
    assert "2 of the 3 classes" in verdict.reason and "epoch 12" in verdict.reason
    # an explicit reference of 2 classes (majority vote predicts only 2): nothing is dead
    assert recommend(curves, smoothing=0.0, n_reference_classes=2).verdicts[0.03].category != "dead-units"


def test_nan_and_diverged_runs_are_dropped_and_never_recommended():
    nan_diff = dip(-1.0, -2.0, -1.6)
    nan_diff[20:] = np.nan
    nan_pos = ramp(-10.0, -12.0, 20)
    nan_pos[20:] = np.nan
    curves = curves_of(dict(lr=0.001, **REFERENCE), dict(lr=0.01, **GOOD),
                       dict(lr=0.003, difference=nan_diff, positive=nan_pos))
    rec = recommend(curves, smoothing=0.9)
    assert rec.verdicts[0.003].category == "diverged" and not rec.verdicts[0.003].keep
    assert "epoch 21" in rec.verdicts[0.003].reason
    assert rec.lr == 0.01
    # a run the engine marked diverged (finite rows up to then) is dropped too
    rec = recommend(curves_of(dict(lr=0.001, **REFERENCE), dict(lr=0.01, **GOOD)), smoothing=0.0,
                    run_status={1: "diverged"})
    assert rec.verdicts[0.01].category == "diverged" and rec.lr != 0.01


def test_every_run_diverged_gives_no_learning_rate_and_says_why():
    bad = run_rows(0, 0.1, flat(np.nan), flat(np.nan))
    rec = recommend(pd.concat([bad, run_rows(1, 1.0, flat(np.nan), flat(np.nan))]), smoothing=0.9)
    assert rec.lr is None
    assert "every run diverged" in rec.reason
    assert set(rec.verdicts) == {0.1, 1.0} and not any(v.keep for v in rec.verdicts.values())
    assert json.loads(rec.to_json())["lr"] is None


def test_fallback_when_every_learning_rate_breaks_a_rule():
    rising = dict(difference=REFERENCE["difference"], positive=ramp(-10.0, -12.0, 20, after=-9.0))
    exploding = dict(difference=ramp(-1.0, -12.0, 30), positive=ramp(-10.0, -12.0, 20))
    dead = dict(GOOD, n_predicted=np.where(EPOCHS > 5, 1, 3))
    rec = recommend(curves_of(dict(lr=0.001, **rising), dict(lr=0.1, **exploding), dict(lr=0.3, **dead)),
                    smoothing=0.0)
    assert [v.category for v in rec.verdicts.values()] == ["fallback", "explodes", "dead-units"]
    # the fewest broken rules among the runs that kept all classes
    assert rec.fallback and rec.lr == 0.001
    assert "least bad" in rec.reason and "positive energy (data) rises" in rec.verdicts[0.001].reason
    assert rec.verdicts[0.001].label == "least bad"
    assert not rec.verdicts[0.001].keep
    # with only a dead run left besides a diverged one, the dead one is still a (fallback) answer
    nan = dict(difference=flat(np.nan), positive=flat(np.nan))
    rec = recommend(curves_of(dict(lr=0.001, **nan), dict(lr=0.3, **dead)), smoothing=0.0)
    assert rec.fallback and rec.lr == 0.3
    # said as it is (it read "it keeps all classes" beside a verdict that it lost one; walkthrough 45)
    assert "every one loses a class; this one breaks the fewest rules" in rec.reason
    assert "keeps all classes" not in rec.reason


def test_second_choice_when_no_run_has_a_steady_tail():
    still_falling = dict(difference=ramp(-1.0, -2.2, T), positive=ramp(-10.0, -12.0, T))
    rising_back = dict(difference=dip(-1.0, -2.0, -0.5, bottom_at=10, settle_at=T + 1), positive=ramp(-10.0, -12.5, T))
    rec = recommend(curves_of(dict(lr=0.001, **REFERENCE), dict(lr=0.03, **still_falling),
                              dict(lr=0.1, **rising_back)), smoothing=0.0)
    assert rec.verdicts[0.1].category == "no-steady-tail" and rec.verdicts[0.1].keep
    assert rec.lr == 0.03 and "the smallest learning rate that learns" in rec.verdicts[0.03].reason
    assert "no learning rate settles" in rec.reason
    assert "(" not in rec.reason  # (`deem sweep` says it in parentheses: "... more))"; walkthrough 104)
    assert rec.verdicts[0.1].label == "usable"
    # a tentative pick, said so (walkthrough 67: "Recommended" above its own row's "has not levelled off"), in its
    # row too (walkthrough 68)
    assert not rec.settled and rec.to_dict()["settled"] is False and rec.verdicts[0.03].label == "tentative"
    assert recommend(curves_of(dict(lr=0.001, **REFERENCE)), smoothing=0.0).to_dict()["settled"] is True


def test_only_stagnant_runs_pick_the_one_that_moved_most():
    a = dict(difference=ramp(-1.0, -1.3, 10), positive=flat(-10.0))
    b = dict(difference=ramp(-1.0, -1.3, 10), positive=ramp(-10.0, -10.1, T))
    c = dict(difference=ramp(-1.0, -1.3, 10), positive=ramp(-10.0, -10.2, T))
    rec = recommend(curves_of(dict(lr=0.001, **a), dict(lr=0.003, **b), dict(lr=0.01, **c)), smoothing=0.0)
    assert rec.lr == 0.01 and "learns slowly" in rec.reason
    assert rec.verdicts[0.01].keep and not rec.verdicts[0.003].keep
    # the recommended rate is not also called "too small" (the contradiction a user saw), and it is a tentative pick:
    # its own fall is under the threshold every other row names (walkthrough 84: "recommended" beside "less than the
    # 0.0935 that counts as learning" in every row)
    assert rec.verdicts[0.01].label == "tentative" and "hardly" not in rec.verdicts[0.01].reason
    assert not rec.settled and not rec.fallback
    # and why it is tentative, for the headline (it said "no learning rate was seen to settle"; the diff's read)
    assert rec.to_dict()["tentative_reason"] == ("every stable learning rate learns slowly: none fell as far as counts "
                                                 "as learning")
    needed = re.search(r"less than the (\S+) that counts as learning", rec.verdicts[0.003].reason).group(1)
    assert f"under the {needed} that counts as learning, so a tentative pick" in rec.verdicts[0.01].reason
    assert rec.verdicts[0.003].label == "too small" and "hardly learns" in rec.verdicts[0.003].reason


def test_a_slow_grid_does_not_call_larger_rates_too_small_nor_advise_them():
    """Seven classifiers that agree on most tasks: every stable rate hardly moves the energies, the ones above
    the recommended rate no more than it. They are not "too small" (a larger rate than the recommended one),
    and the advice is not "try larger learning rates" (they were tried)."""
    a = dict(difference=ramp(-1.0, -1.3, 10), positive=flat(-10.0))
    b = dict(difference=ramp(-1.0, -1.3, 10), positive=ramp(-10.0, -10.2, T))
    c = dict(difference=ramp(-1.0, -1.3, 10), positive=ramp(-10.0, -10.05, T))
    rec = recommend(curves_of(dict(lr=0.001, **a), dict(lr=0.003, **b), dict(lr=0.01, **c), dict(lr=0.03, **a)),
                    smoothing=0.0)
    assert rec.lr == 0.003
    assert rec.verdicts[0.001].label == "too small"
    assert rec.verdicts[0.01].label == rec.verdicts[0.03].label == "hardly learns"
    assert not rec.verdicts[0.01].keep and "hardly learns" in rec.verdicts[0.01].reason
    assert "try larger" not in rec.reason and "try larger" not in rec.verdicts[0.003].reason
    assert "up to 0.03, learned no more" in rec.reason


def test_a_learning_rate_is_kept_only_if_all_its_seeds_are():
    rows = [run_rows(0, 0.001, **REFERENCE, seed=0), run_rows(1, 0.01, **GOOD, seed=0),
            run_rows(2, 0.001, **REFERENCE, seed=1),
            run_rows(3, 0.01, **GOOD, seed=1, n_predicted=np.where(EPOCHS > 30, 2, 3)),
            run_rows(4, 0.03, **GOOD, seed=0), run_rows(5, 0.03, **GOOD, seed=1)]
    rec = recommend(pd.concat(rows, ignore_index=True), smoothing=0.0)
    assert not rec.verdicts[0.01].keep and rec.verdicts[0.01].reason.startswith("seed 1: predicts only 2 of the 3 classes")
    assert rec.lr == 0.03


def test_verdicts_cover_every_learning_rate_with_one_line_and_json_schema():
    curves = curves_of(dict(lr=0.001, **REFERENCE), dict(lr=0.01, **GOOD),
                       dict(lr=1.0, difference=ramp(-1.0, -12.0, 30), positive=ramp(-10.0, -12.0, 20)))
    rec = recommend(curves)
    assert isinstance(rec, Recommendation)
    assert list(rec.verdicts) == [0.001, 0.01, 1.0]
    for verdict in rec.verdicts.values():
        assert verdict.reason and "\n" not in verdict.reason
    payload = json.loads(rec.to_json())
    assert set(payload) == {"lr", "reason", "fallback", "settled", "smoothing", "verdicts"}
    assert payload["smoothing"] == rec.smoothing  # (the page says the reasons were read on smoothed curves; walkthrough 99)
    assert payload["lr"] == rec.lr and payload["reason"] == rec.reason
    assert list(payload["verdicts"]) == ["0.001", "0.01", "1"]
    for value in payload["verdicts"].values():
        assert set(value) == {"keep", "verdict", "reason"} and isinstance(value["keep"], bool)
    assert rec.table()["recommended"].sum() == 1


JARGON = ("off-tail", "band", "second choice", "stagnant", "dip-and-tail", "fallback", "explodes", "tail_",
          "energy-rises", "dead-units", "x its")


def _every_kind_of_verdict() -> list[Recommendation]:
    rising = dict(difference=REFERENCE["difference"], positive=ramp(-10.0, -12.0, 20, after=-9.0))
    exploding = dict(difference=ramp(-1.0, -12.0, 30), positive=ramp(-10.0, -12.0, 20))
    dead = dict(GOOD, n_predicted=np.where(EPOCHS > 5, 1, 3))
    still_falling = dict(difference=ramp(-1.0, -2.2, T), positive=ramp(-10.0, -12.0, T))
    rising_back = dict(difference=dip(-1.0, -2.0, -0.5, bottom_at=10, settle_at=T + 1), positive=ramp(-10.0, -12.5, T))
    nan = dict(difference=flat(np.nan), positive=flat(np.nan))
    slow = [dict(difference=ramp(-1.0, -1.3, 10), positive=ramp(-10.0, -10.0 - 0.1 * i, T)) for i in range(3)]
    grids = [
        [dict(lr=0.001, **REFERENCE), dict(lr=0.01, **GOOD), dict(lr=0.03, **GOOD), dict(lr=0.1, **rising),
         dict(lr=0.3, **exploding), dict(lr=1.0, **dead), dict(lr=3.0, **nan)],
        [dict(lr=0.001, **REFERENCE), dict(lr=0.03, **still_falling), dict(lr=0.1, **rising_back)],
        [dict(lr=0.001 * 3 ** i, **run) for i, run in enumerate(slow)],
        [dict(lr=0.001, **rising), dict(lr=0.1, **exploding), dict(lr=0.3, **dead)],
    ]
    return [recommend(curves_of(*grid), smoothing=0.0) for grid in grids]


def test_verdicts_are_plain_and_never_contradict_themselves():
    """One rule set, plain words: a kept or recommended rate is never called too small, the threshold a
    'too small' verdict names is one the recommended rate reaches (or the grid is all slow), no jargon."""
    labels = set()
    for rec in _every_kind_of_verdict():
        assert sum(v.label in ("recommended", "tentative", "least bad")
                   for v in rec.verdicts.values()) == (rec.lr is not None)
        for lr, verdict in rec.verdicts.items():
            labels.add(verdict.label)
            assert not any(word in verdict.reason for word in JARGON), verdict.reason
            if verdict.keep:
                assert verdict.label in ("recommended", "tentative", "good", "usable"), verdict
                assert "hardly" not in verdict.reason and "too small" not in verdict.reason
            if verdict.label in ("recommended", "tentative"):
                assert math.isclose(lr, rec.lr) and rec.settled == (verdict.label == "recommended")
        assert not any(word in rec.reason for word in JARGON), rec.reason
    assert labels == {"recommended", "tentative", "good", "usable", "too small", "too large", "failed", "least bad"}


def test_smoothing_hides_a_one_epoch_spike():
    # a single bad epoch near the end: raw curves call it a rising energy, smoothed ones do not
    spiky = ramp(-10.0, -12.0, 20)
    spiky[-1] += 3.0
    curves = curves_of(dict(lr=0.001, **REFERENCE), dict(lr=0.01, difference=GOOD["difference"], positive=spiky))
    assert recommend(curves, smoothing=0.0).verdicts[0.01].category == "energy-rises"
    assert recommend(curves, smoothing=0.9).verdicts[0.01].keep


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="lack column"):
        recommend(pd.DataFrame({"run": [0], "lr": [0.1]}))
    with pytest.raises(ValueError, match="smoothing"):
        recommend(curves_of(dict(lr=0.01, **GOOD)), smoothing=1.5)
    with pytest.raises(ValueError, match="no curves"):
        recommend(pd.DataFrame(columns=CURVE_COLUMNS))


# ------------------------------------------------------------------ EMA smoothing
def test_ema_is_bias_corrected_and_keeps_constants():
    assert np.allclose(ema(np.full(10, 3.5), 0.9), 3.5)
    x = np.array([1.0, 0.0, 0.0])
    out = ema(x, 0.5)
    assert out[0] == 1.0  # no pull towards 0 at the start
    # m1 = .5, m2 = .25, m3 = .125; weights .5, .75, .875
    assert np.allclose(out, [1.0, 0.25 / 0.75, 0.125 / 0.875])


def test_ema_smooths_noise_and_skips_nan():
    rng = np.random.default_rng(0)
    noisy = 1.0 + rng.normal(0, 1, 500)
    smooth = ema(noisy, 0.95)
    assert smooth[100:].std() < 0.3 * noisy[100:].std()
    assert abs(smooth[100:].mean() - 1.0) < 0.2
    with_nan = np.array([np.nan, 2.0, np.nan, 4.0])
    out = ema(with_nan, 0.5)
    assert math.isnan(out[0]) and out[1] == 2.0 and out[2] == 2.0
    assert out[3] == pytest.approx((0.5 * 0.5 * 2 + 0.5 * 4) / 0.75)
    assert np.array_equal(ema([1.0, 5.0], None), [1.0, 5.0])
    with pytest.raises(ValueError):
        ema([1.0], 1.0)


def test_lr_key_round_trips():
    for lr in (0.001, 0.003, 1.0, 3.0, 1e-5, 0.1 + 0.2):
        assert float(lr_key(lr)) == pytest.approx(lr, rel=1e-11)
    assert lr_key(1.0) == "1" and lr_key(0.003) == "0.003"


def test_no_rate_is_recommended_when_none_lowered_the_positive_energy():
    """A walkthrough's 300-task set: every stable rate's positive energy only rose, each "falls by 0"; the
    smallest won the tie of zeros and was recommended as the one that "learned the most"."""
    rows = []
    for run, lr in enumerate((0.001, 0.01, 0.1)):
        for epoch in range(1, 21):
            positive = -3.9 + 0.0001 * epoch * (1 + run)  # rises a little from the first epoch on
            rows.append({"run": run, "lr": lr, "seed": 0, "epoch": epoch, "positive_energy": positive,
                         "negative_energy": positive + 0.05, "energy_difference": -0.05,
                         "n_predicted_classes": 2})
    rec = recommend(pd.DataFrame(rows), n_reference_classes=2)
    assert rec.lr is None and not rec.fallback
    assert rec.reason.startswith("no learning rate lowered the positive energy")
    assert {v.category for v in rec.verdicts.values()} == {"stagnant"}
    # one rate that does lower it, however little, is still the one recommended
    rows += [{**row, "run": 3, "lr": 0.03, "positive_energy": -3.9 - 0.001 * row["epoch"],
              "negative_energy": -3.85 - 0.001 * row["epoch"]} for row in rows if row["run"] == 0]
    assert recommend(pd.DataFrame(rows), n_reference_classes=2).lr == 0.03


def test_a_rate_that_settles_over_a_few_epochs_is_a_tentative_pick():
    """Walkthrough 68: a sweep of 6 epochs recommended the grid's largest rate as one that "dips and then levels
    off", read on a last third of 2 epochs. Below MIN_EPOCHS_TO_SETTLE epochs the pick is tentative, said why."""
    from deem_core.analysis.recommend import MIN_EPOCHS_TO_SETTLE  # noqa: PLC0415

    n = 6
    assert n < MIN_EPOCHS_TO_SETTLE
    settles = dict(difference=dip(-1.0, -2.0, -1.8, bottom_at=2, settle_at=3), positive=ramp(-10.0, -12.0, 3))
    curves = curves_of(dict(lr=0.001, **REFERENCE), dict(lr=3.0, **settles), dict(lr=5.0, **settles))
    whole = recommend(curves, smoothing=0.0)  # (40 epochs: the same curve settles, recommended)
    assert whole.lr == 3.0 and whole.settled and whole.verdicts[3.0].label == "recommended"
    assert whole.verdicts[5.0].label == "good" and "then settles" in whole.verdicts[5.0].reason
    short = recommend(curves[curves["epoch"] <= n], smoothing=0.0)
    assert short.lr == 3.0 and not short.settled and short.verdicts[3.0].label == "tentative"
    assert "looks level over the last third of the epochs (2 of 6: too few to show that it stays level)" in (
        short.verdicts[3.0].reason)
    assert short.verdicts[3.0].reason.endswith("the smallest learning rate that looks level, so a tentative pick")
    # no row of a short sweep says a rate settles under the headline's "no learning rate was seen to settle"
    # (walkthrough 69: "learns, then settles ... levels off" on the row beside the tentative pick)
    for verdict in short.verdicts.values():
        assert "settles" not in verdict.reason and "levels off" not in verdict.reason, verdict.reason
    assert short.reason.endswith("tentative: over 6 epochs a curve cannot show that it stays level (sweep 15 or more)")


def test_the_record_of_training_at_the_sweeps_pick_is_the_measured_one():
    """The Sweep page and ``deem sweep`` say how training at the sweep's pick compared with the default rate
    (walkthrough 75); the figures they say are those of the benchmark's results file, not typed apart from it."""
    import re
    from pathlib import Path

    from deem_core.analysis.recommend import PICK_VS_DEFAULT, pick_vs_default

    text = (Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "sweep_pick.txt").read_text()
    line = next(row for row in text.splitlines() if row.startswith("all: "))
    found = re.fullmatch(r"all: (\d+) sets; training at the pick above training at the default on (\d+), equal on "
                         r"(\d+), below on (\d+); mean ([-+]\d+\.\d\d), min ([-+]\d+\.\d\d), max ([-+]\d+\.\d\d)", line)
    assert found, line
    sets, above, equal, below = (int(found.group(i)) for i in range(1, 5))
    assert (sets, above, equal, below) == tuple(PICK_VS_DEFAULT[k] for k in ("sets", "above", "equal", "below"))
    assert [float(found.group(i)) for i in (5, 6, 7)] == [PICK_VS_DEFAULT[k] for k in ("mean", "worst", "best")]
    assert above + equal + below == sets
    said = pick_vs_default(0.01)
    assert f"on {sets} data sets" in said and f"less accurate on {below} (by up to {-PICK_VS_DEFAULT['worst']:.1f}" in said


def test_hardly_learns_says_why_beside_a_curve_that_falls_as_far_as_the_chosen_one():
    """A sweep on tree3k called 0.001 "hardly learns" while its energy difference fell by 0.89, as far as the
    recommended rate's dip (0.98): the sampler's drift moves every curve. The verdict now says so; a reference whose
    difference hardly moves is told without it."""
    drifting = dict(difference=ramp(-1.0, -1.9, 12), positive=flat(-10.0))
    curves = curves_of(dict(lr=0.001, **drifting), dict(lr=0.003, **REFERENCE), dict(lr=0.01, **GOOD))
    rec = recommend(curves, smoothing=0.0)
    assert rec.lr == 0.01 and rec.verdicts[0.001].category == rec.verdicts[0.003].category == "stagnant"
    assert rec.verdicts[0.001].reason.endswith("; its energy difference falls by 0.9 all the same: the model samples "
                                               "drift away from the data at any learning rate, so the difference "
                                               "alone does not show learning")
    assert "all the same" not in rec.verdicts[0.003].reason


def test_hardly_learns_never_says_falls_by_0_of_a_curve_that_rose():
    """Walkthrough 109: lr 0.3 read "hardly learns: the positive energy (data) falls by 0" where it rose from 3.795 to
    3.897 (within the rise allowed): the verdict says it never fell below its start and how far above it ended."""
    rising = dict(difference=ramp(-1.0, -1.2, 12), positive=ramp(-10.0, -9.9, 20))
    curves = curves_of(dict(lr=0.001, **REFERENCE), dict(lr=0.01, **GOOD), dict(lr=0.3, **rising))
    rec = recommend(curves, smoothing=0.0)
    verdict = rec.verdicts[0.3]
    # (above 0.01, which learns: "hardly learns", not "too small"; walkthrough 133)
    assert verdict.category == "flat" and "falls by 0" not in verdict.reason, verdict
    assert verdict.reason.startswith("hardly learns: the positive energy (data) never falls below its start (it ends "
                                     "0.1 above it, within the rise of 1 read as noise before a rate is called too "
                                     "large); a fall of "), verdict.reason


def test_no_tentative_pick_is_read_from_falls_of_noise():
    """Walkthrough 123: every stable rate learned "slowly", the largest fall of the positive energy 0.0001 against the
    0.055 that counts as learning, and 0.001 was starred as the tentative rate over 0.003's 0.00008. A fall under
    NOISE_SHARE of the threshold is none: no rate is recommended (the default rate is advised). A slow grid whose
    best rate falls by a real share of the threshold keeps its tentative pick."""
    from deem_core.analysis.recommend import NOISE_SHARE  # noqa: PLC0415

    def grid(falls: tuple[float, ...]) -> pd.DataFrame:
        rows = []
        for run, (lr, fall) in enumerate(zip((0.001, 0.003, 0.01), falls)):
            for epoch in range(1, 41):
                positive = -3.9 - fall * (epoch - 1) / 39
                rows.append({"run": run, "lr": lr, "seed": 0, "epoch": epoch, "positive_energy": positive,
                             "negative_energy": positive + 0.5 + 0.01 * (epoch % 2), "energy_difference": -0.5,
                             "n_predicted_classes": 3})
        return pd.DataFrame(rows)

    noise = recommend(grid((1.0e-4, 7.9e-5, 2.9e-5)), n_reference_classes=3)
    assert noise.lr is None and not noise.fallback, noise.verdicts
    assert noise.reason.startswith("no learning rate lowered the positive energy (data) on these curves by more than "
                                   "a sliver of what counts as learning")
    assert {v.category for v in noise.verdicts.values()} == {"stagnant"}
    slow = recommend(grid((0.02, 0.004, 0.001)), n_reference_classes=3)
    assert slow.lr == 0.001 and not slow.settled, (slow.reason, slow.verdicts)
    assert 0 < NOISE_SHARE < 1


def test_a_curve_still_falling_at_the_middle_thirds_pace_has_not_settled():
    # walkthrough 125: a difference falling at an even pace to its last epoch, each third by less than the tail
    # tolerance (0.25 x scale here), read "learns, then settles ... levels off (moves 0.0574 over the last third)"
    steady_fall = dict(difference=ramp(-1.0, -1.6, T), positive=ramp(-10.0, -12.0, 20))
    curves = curves_of(dict(lr=0.001, **REFERENCE), dict(lr=0.01, **steady_fall), dict(lr=0.03, **GOOD))
    rec = recommend(curves, smoothing=0.0)
    falling = rec.verdicts[0.01]
    assert falling.category == "no-steady-tail" and falling.keep
    assert "still falling" in falling.reason and "levels off" not in falling.reason, falling.reason
    # the smallest rate that has settled is the pick, not the smaller one still falling
    assert rec.lr == 0.03 and rec.verdicts[0.03].category == "recommended"
    # alone, the falling rate is only a tentative pick: none settles
    alone = recommend(curves_of(dict(lr=0.001, **REFERENCE), dict(lr=0.01, **steady_fall)), smoothing=0.0)
    assert alone.lr == 0.01 and alone.verdicts[0.01].category == "tentative"
    assert "no learning rate settles" in alone.reason


def test_no_recommendation_says_the_larger_rates_read_too_large_only_raised_the_energy():
    """Walkthrough 126: "no learning rate to recommend ... train with the default rate" above a table calling the
    default 0.01 "too large" for a rise of its positive energy by 0.0097 nats. The headline says that the rates read
    too large only raised the energies: none learned, and training at any of them stays near its start."""
    rows = []
    for run, (lr, change) in enumerate(zip((0.001, 0.003, 0.01), (-1e-4, 1.5, 2.0))):
        for epoch in range(1, 41):
            positive = -3.9 + change * max(0, epoch - 20) / 20  # a rise over the second half (fall: -1e-4 all along)
            if change < 0:
                positive = -3.9 + change * (epoch - 1) / 39
            rows.append({"run": run, "lr": lr, "seed": 0, "epoch": epoch, "positive_energy": positive,
                         "negative_energy": positive + 0.5, "energy_difference": -0.5, "n_predicted_classes": 3})
    rec = recommend(pd.DataFrame(rows), n_reference_classes=3)
    assert rec.lr is None
    assert rec.verdicts[0.01].category == "energy-rises" and rec.verdicts[0.003].category == "energy-rises"
    assert rec.reason.endswith("; the larger rates (0.003, 0.01) are read too large because the positive energy went "
                               "up (by at most 1.23): they did not learn either, so training at any of them stays near "
                               "its start too"), rec.reason  # (1.23: the rise of 2.0 on the curves smoothed at 0.9)


def test_the_headline_names_as_rising_only_the_rates_whose_positive_energy_rose():
    """Walkthrough 131: "the larger rates (0.3, 3) are read too large because the positive energy went up" where 3 was
    too large for its swinging energy difference and its positive energy ended 0.24 below its start. The headline names
    the rates read too large for a rise of the positive energy; the others keep their own verdicts."""
    rows = []
    for run, lr in enumerate((0.001, 0.003, 0.3, 3.0)):
        for epoch in range(1, 41):
            t = (epoch - 1) / 39
            positive, difference = -3.9 - 1e-5 * t, -0.5
            if lr == 0.3:  # a steady rise
                positive = -3.9 + 2.0 * t
            if lr == 3.0:  # up and below its start again, the difference swinging out tenfold
                positive = -3.9 + 2.0 * math.sin(math.pi * t) - 0.5 * t
                difference = -0.5 - 4.5 * t
            rows.append({"run": run, "lr": lr, "seed": 0, "epoch": epoch, "positive_energy": positive,
                         "negative_energy": positive - difference, "energy_difference": difference,
                         "n_predicted_classes": 3})
    rec = recommend(pd.DataFrame(rows), n_reference_classes=3)
    assert rec.lr is None
    assert rec.verdicts[0.3].category == "energy-rises", rec.verdicts[0.3]
    assert rec.verdicts[3.0].category != "energy-rises" and rec.verdicts[3.0].keep is False, rec.verdicts[3.0]
    assert "the larger rate (0.3) is read too large because the positive energy went up" in rec.reason, rec.reason
    assert "(0.3, 3)" not in rec.reason and "rates (" not in rec.reason, rec.reason


def test_a_rate_above_one_that_learns_is_never_called_too_small():
    """Walkthrough 133: 0.01 to 1 were "too small" beside a 0.003 that dipped and settled, each row's own reason saying
    its positive energy never fell below its start: "too small" told the user to go higher than rates that do not
    learn, past one that does. A rate above one that learns and hardly moves "hardly learns"; below every rate that
    learns it stays "too small"."""
    risen = dict(difference=ramp(-1.0, -1.1, 10), positive=ramp(-10.0, -9.8, T))  # (ends 0.2 above its start)
    rec = recommend(curves_of(dict(lr=0.001, **REFERENCE), dict(lr=0.003, **GOOD), dict(lr=0.01, **risen),
                              dict(lr=0.1, **REFERENCE)), smoothing=0.0)
    assert rec.lr == 0.003 and rec.verdicts[0.003].label == "recommended"
    assert rec.verdicts[0.001].label == "too small"
    for lr in (0.01, 0.1):
        assert rec.verdicts[lr].label == "hardly learns" and not rec.verdicts[lr].keep, rec.verdicts[lr]
        assert rec.verdicts[lr].reason.startswith("hardly learns"), rec.verdicts[lr].reason


def test_a_swing_just_past_the_band_is_said_with_the_digits_that_tell_it_from_the_band():
    """Walkthrough 133: "swings out to 0.2 in size, 2.5 times the largest size ... (0.079); more than 2.5 times is too
    far" of a ratio of 2.53: the ratio is said with as many digits as tell it from the bound."""
    swinging = dict(difference=ramp(-1.0, -1.3 * 2.53, 30), positive=ramp(-10.0, -12.0, 20))
    rec = recommend(curves_of(dict(lr=0.001, **REFERENCE), dict(lr=0.01, **GOOD), dict(lr=1.0, **swinging)),
                    smoothing=0.0)
    reason = rec.verdicts[1.0].reason
    assert rec.verdicts[1.0].category == "explodes" and "in size, 2.53 times the largest size" in reason, reason
    assert "more than 2.5 times is too far" in reason
