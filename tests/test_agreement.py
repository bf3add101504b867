"""Agreement statistics: Krippendorff's alpha against the published example, pairwise agreement, tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from deem_core import AnnotationSet
from deem_core.analysis.scoring import accuracy_and_count
from deem_core.analysis.agreement import (class_balance, confusion_against_gold, krippendorff_alpha,
                                         labels_per_task, method_agreement, pairwise_agreement, worker_coverage)

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", section C: 4 observers x 12 units,
# nominal alpha = 0.743 ("." = missing).
KRIPP = """
1 2 3 3 2 1 4 1 2 . . .
1 2 3 3 2 2 4 1 2 5 . 3
. 3 3 3 2 3 4 2 2 5 1 .
1 2 3 3 2 4 4 1 2 5 1 .
"""


def kripp_set() -> AnnotationSet:
    rows = []
    for observer, line in enumerate(KRIPP.strip().splitlines()):
        for unit, value in enumerate(line.split()):
            if value != ".":
                rows.append({"task": unit, "worker": f"obs{observer}", "label": int(value)})
    return AnnotationSet.from_long(pd.DataFrame(rows))


def test_krippendorff_alpha_matches_the_published_example():
    assert krippendorff_alpha(kripp_set()) == pytest.approx(0.743, abs=5e-4)


def test_krippendorff_alpha_edge_cases():
    perfect = np.array([[0, 0, 0], [1, 1, -1], [2, 2, 2]])
    assert krippendorff_alpha(perfect, n_classes=3) == pytest.approx(1.0)
    assert math.isnan(krippendorff_alpha(np.array([[0, -1], [1, -1]]), n_classes=2))  # nothing pairable
    assert math.isnan(krippendorff_alpha(np.array([[0, 0], [0, 0]]), n_classes=2))  # no variation


def test_pairwise_agreement_and_tables():
    data = kripp_set()
    agreement, overlap = pairwise_agreement(data)
    assert overlap.loc["obs0", "obs1"] == 9  # units 1-9 both answered
    assert agreement.loc["obs0", "obs1"] == pytest.approx(8 / 9)  # they differ on unit 6 only
    assert agreement.loc["obs2", "obs2"] == 1.0
    per_task = labels_per_task(data)
    assert per_task.sum() == data.n_annotations and per_task.max() == 4
    balance = class_balance(data)
    assert balance["answers"].sum() == data.n_annotations
    assert balance["majority_vote_tasks"].sum() == data.n_tasks
    coverage = worker_coverage(data)
    assert list(coverage.columns[:2]) == ["worker", "answers"]  # the one name, in the Data page and the download
    assert list(coverage["answers"]) == [9, 11, 10, 11]


def test_method_comparison_and_gold():
    a = pd.Series(["x", "y", "x", "y"], index=[1, 2, 3, 4])
    b = pd.Series(["x", "y", "y", "y"], index=[1, 2, 3, 4])
    table = method_agreement({"a": a, "b": b})
    assert table.loc["a", "b"] == 0.75 and table.loc["a", "a"] == 1.0
    gold = pd.Series(["x", "y", "x"], index=[1, 2, 3])
    assert accuracy_and_count(b, gold) == (pytest.approx(2 / 3), 3)
    confusion = confusion_against_gold(b, gold, classes=["x", "y"])
    assert confusion.loc["x", "y"] == 1 and confusion.to_numpy().sum() == 3
    assert accuracy_and_count(a, pd.Series(dtype=object))[1] == 0


def test_the_majority_vote_share_splits_a_tie_among_the_tied_classes():
    """A tie went to the first class: 51 tied tasks of 200 made 'Not sure' 0.45 of the tasks where it was 0.34 of
    the answers (walkthrough 19)."""
    rows = [("t1", "u", "b"), ("t1", "v", "a"),  # a tie: half each
            ("t2", "u", "b"), ("t2", "v", "b"), ("t2", "w", "a"),  # b
            ("t3", "u", "c"), ("t3", "v", "b"), ("t3", "w", "a"),  # a three-way tie: a third each
            ("t4", "u", "c")]  # c
    data = AnnotationSet.from_long(pd.DataFrame(rows, columns=["task", "worker", "label"]))
    balance = class_balance(data).set_index("class")
    np.testing.assert_allclose(balance["majority_vote_tasks"], [0.5 + 1 / 3, 1.5 + 1 / 3, 1 + 1 / 3])
    assert balance["majority_vote_tasks"].sum() == pytest.approx(data.n_tasks)
    np.testing.assert_allclose(balance["majority_vote_share"], balance["majority_vote_tasks"] / 4)
