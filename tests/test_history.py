"""The training's log rows held as arrays (deem_core.model.history)."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pandas as pd

from deem_core.model.history import HISTORY_COLUMNS, History


def rows_of(epochs: int, runs: int) -> list[dict]:
    rng = np.random.default_rng(0)
    return [{"run": run, "lr": 0.001 * (run + 1), "seed": 7 + run, "epoch": epoch,
             "positive_energy": float(rng.normal()), "negative_energy": math.nan if run == 1 else float(rng.normal()),
             "energy_difference": float(rng.normal()), "acceptance_rate": float(rng.random()),
             "changed_fraction": float(rng.random()), "n_predicted_classes": int(rng.integers(1, 4)),
             "status": "diverged" if run == 1 else "running", "seconds": 0.01 * epoch}
            for epoch in range(1, epochs + 1) for run in range(runs)]


def same(a: list[dict], b: list[dict]) -> bool:
    """Rows equal value for value and type for type (NaN equal to NaN)."""
    return len(a) == len(b) and all(
        list(x) == list(y) and all(type(x[k]) is type(y[k]) and (x[k] == y[k] or x[k] != x[k] and y[k] != y[k])
                                   for k in x) for x, y in zip(a, b))


def test_rows_come_back_as_they_were_given():
    rows = rows_of(600, 3)  # (past JOIN_EVERY epochs: joined blocks and a tail)
    history = History()
    for epoch in range(600):
        history.extend(rows[3 * epoch:3 * epoch + 3])
    assert len(history) == 1800 and history.epochs() == 600
    assert same(list(history), rows)
    assert same([history[0], history[-1], history[1000]], [rows[0], rows[-1], rows[1000]])
    pd.testing.assert_frame_equal(history.frame(), pd.DataFrame(rows, columns=HISTORY_COLUMNS))
    # what the training loop and the collapse guard derive from it, as the lists of dicts did
    new_run = {2: 0, 0: 1}
    assert same(list(history.select_runs(new_run)),
                [{**row, "run": new_run[row["run"]]} for row in rows if row["run"] in new_run])
    assert same(list(history.shifted(40)), [{**row, "epoch": row["epoch"] + 40} for row in rows])
    assert same(list(history.until(17)), [row for row in rows if row["epoch"] <= 17])
    joined = History(rows[:30])
    joined.extend_history(History(rows[30:]))
    assert same(list(joined), rows) and same(list(History.of(rows)), rows) and History.of(joined) is joined


def test_a_row_takes_a_fourth_of_what_it_took_as_a_dict():
    """Attack round 70: a sweep's 384,000 rows held as dicts took +560 MiB; as arrays a row of many runs is about 100
    bytes."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        rows = rows_of(100, 192)  # (as the training loop made them: a dict and its numbers a row)
        as_dicts = tracemalloc.get_traced_memory()[0] - before
        history = History()
        for epoch in range(100):
            history.extend(rows[192 * epoch:192 * (epoch + 1)])
        held = tracemalloc.get_traced_memory()[0] - before - as_dicts
    finally:
        tracemalloc.stop()
    assert len(history) == len(rows) == 19_200
    assert held / len(rows) < 150 and 4 * held < as_dicts, (held / len(rows), as_dicts / len(rows))
