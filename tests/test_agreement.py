"""Agreement statistics: Krippendorff's alpha against the published example, pairwise agreement, tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from deem_core import AnnotationSet
from deem_core.analysis.scoring import accuracy_and_count
from deem_core.analysis.agreement import (class_balance, confusion_against_gold, identical_groups,
                                         krippendorff_alpha,
                                         labels_per_task, method_agreement, pairwise_agreement, single_label_workers,
                                         worker_coverage)

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


def copied_trio(n_tasks: int = 400, seed: int = 1, copied_share: float = 0.3) -> pd.DataFrame:
    """4 classes; three workers answer as one (right 55%, else one fixed wrong class) on a share of the tasks, each
    task also answered by two of five independent workers right 80% (one of them 96%)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 4, n_tasks)
    rows = []
    for task in range(n_tasks):
        for w in rng.choice(5, 2, replace=False):
            right = 0.96 if w == 0 else 0.8
            label = truth[task] if rng.random() < right else rng.integers(0, 4)
            rows.append((f"t{task}", f"ind{w}", int(label)))
        if rng.random() < copied_share:
            label = truth[task] if rng.random() < 0.55 else (truth[task] + 1) % 4
            rows += [(f"t{task}", f"copy{c}", int(label)) for c in range(3)]
    return pd.DataFrame(rows, columns=["task", "worker", "label"])


def test_identical_groups_find_copies_and_no_independent_pair():
    frame = copied_trio()
    data = AnnotationSet.from_long(frame)
    table, overlap = pairwise_agreement(data)
    groups = identical_groups(table, overlap)
    common = int(overlap.loc["copy0", "copy1"])
    assert common >= 50 and groups == [(["copy0", "copy1", "copy2"], common)]
    assert identical_groups(table, overlap, min_common=common + 1) == []
    # a chain links a group: a and b alike, b and c alike, a and c never met
    chain = pd.DataFrame([(f"t{i}", w, i % 3) for i in range(60) for w in ("a", "b")]
                         + [(f"u{i}", w, i % 2) for i in range(60) for w in ("b", "c")],
                         columns=["task", "worker", "label"])
    table, overlap = pairwise_agreement(AnnotationSet.from_long(chain))
    assert identical_groups(table, overlap) == [(["a", "b", "c"], 60)]
    # one disagreement in 400 common tasks: not identical
    frame = pd.DataFrame([(f"t{i}", w, i % 2 if (w == "a" or i) else 1 - i % 2) for i in range(400) for w in "ab"],
                         columns=["task", "worker", "label"])
    table, overlap = pairwise_agreement(AnnotationSet.from_long(frame))
    assert table.loc["a", "b"] == pytest.approx(399 / 400) and identical_groups(table, overlap) == []
    # workers who give one label on every answer agree without copying: left out when named (walkthrough 102)
    frame = pd.DataFrame([(f"t{i}", w, 0) for i in range(80) for w in "ab"] + [(f"t{i}", "c", i % 2) for i in range(80)],
                         columns=["task", "worker", "label"])
    data = AnnotationSet.from_long(frame)
    table, overlap = pairwise_agreement(data)
    assert identical_groups(table, overlap) == [(["a", "b"], 80)]
    assert single_label_workers(data) == ["a", "b"]
    assert identical_groups(table, overlap, exclude=single_label_workers(data)) == []


def test_constant_workers_are_those_with_one_label_on_every_answer_against_majority_vote():
    # walkthrough 37: a worker who always said "dog" was caught on Diagnostics only, after training
    from deem_core.analysis.agreement import constant_workers

    rng = np.random.default_rng(3)
    truth = rng.integers(0, 3, 200)
    rows = []
    for t, y in enumerate(truth):
        for w in range(4):
            rows.append((t, f"good{w}", int(y) if rng.random() < 0.85 else int(rng.integers(0, 3))))
        rows.append((t, "dog", 1))
        if t < 15:
            rows.append((t, "few", 2))  # constant, but too few answers to say so
        if truth[t] == 0:
            rows.append((t, "right", 0))  # constant on tasks that are all its class: nothing to say
    data = AnnotationSet.from_long(pd.DataFrame(rows, columns=["task", "worker", "label"]))
    found = constant_workers(data)
    assert [(w, label, n) for w, label, n, _ in found] == [("dog", "1", 200)]
    assert found[0][3] == _others_favour_another_by_hand(data, "dog") and found[0][3] > 100
    assert constant_workers(data, min_answers=10)[-1][0] == "few"


def _others_favour_another_by_hand(data, worker):
    frame = data.to_long()
    mine = frame[frame["worker"] == worker]
    count = 0
    for task, label in zip(mine["task"], mine["label"]):
        others = frame[(frame["task"] == task) & (frame["worker"] != worker)]["label"].value_counts()
        own = others.get(label, 0)
        count += int(any(n > own for value, n in others.items() if value != label))
    return count


def test_a_constant_worker_is_judged_by_the_other_answers_not_by_a_vote_it_is_part_of():
    """Walkthrough 81: a worker who answered "bird" on all 70 of its tasks, three answers a task, went unwarned (the
    others right on under half their answers here):
    majority vote counted its own vote and gave it the ties (bird the class answered first), so it differed from
    "bird" on 16 tasks, under a quarter. The other answers alone favour another class on most of its tasks."""
    from deem_core.analysis.agreement import constant_workers

    rng = np.random.default_rng(81)
    classes = ["bird", "cat", "dog", "fish", "frog"]
    truth = rng.integers(0, 5, 70)
    rows = [(0, "spam", "bird")]
    for t, y in enumerate(truth):
        if t:
            rows.append((t, "spam", "bird"))
        for w in rng.choice(12, 2, replace=False):  # two fair workers of twelve
            rows.append((t, f"w{w}", classes[y] if rng.random() < 0.3 else classes[rng.integers(0, 5)]))
    data = AnnotationSet.from_long(pd.DataFrame(rows, columns=["task", "worker", "label"]))
    spam = list(data.workers).index("spam")
    mv = np.asarray(data.majority_vote())
    assert (mv[data.task_codes[data.worker_codes == spam]] != list(data.classes).index("bird")).sum() < 0.25 * 70
    found = constant_workers(data)
    assert [(w, label, n) for w, label, n, _ in found] == [("spam", "bird", 70)]
    assert found[0][3] == _others_favour_another_by_hand(data, "spam") >= 0.5 * 70


def test_workers_answering_against_the_others_are_found_and_random_ones_are_not():
    """Walkthrough 64: adversarial workers went unsaid. Thirty honest workers (70% right), ten answering at random and
    two answering a wrong class on purpose, four classes, five answers a task: the two are found, no other, over
    seeds; the sparse computation gives the same chance as a dense one."""
    from deem_core.analysis import agreement as agreement_module
    from deem_core.analysis.agreement import contrary_workers

    for seed in range(3):
        rng = np.random.default_rng(seed)
        n_tasks, k = 1500, 4
        truth = rng.integers(0, k, n_tasks)
        rows = []
        for t in range(n_tasks):
            for w in rng.choice(42, 5, replace=False):
                if w < 30:
                    label = truth[t] if rng.random() < 0.7 else rng.integers(0, k)
                elif w < 40:
                    label = rng.integers(0, k)
                else:
                    label = (truth[t] + 1 + rng.integers(0, k - 1)) % k  # never the truth
                rows.append((t, f"w{w:02d}", int(label)))
        data = AnnotationSet.from_long(pd.DataFrame(rows, columns=["task", "worker", "label"]))
        found = contrary_workers(data)
        assert sorted(w for w, *_ in found) == ["w40", "w41"], (seed, found)
        with pytest.MonkeyPatch.context() as patch:  # a chunk at a time: the same (platform-sized data, bounded memory)
            patch.setattr(agreement_module, "CONTRARY_CHUNK", 997)
            chunked = contrary_workers(data)
        assert [w for w, *_ in chunked] == [w for w, *_ in found]
        assert np.allclose([c for *_, c in chunked], [c for *_, c in found])
        for worker, n, share, chance in found:
            answers = [(t, l) for t, w, l in rows if w == worker]
            others = {}
            for t, w, l in rows:
                if w != worker:
                    others.setdefault(t, []).append(l)
            mine = np.bincount([l for _, l in answers], minlength=k) / len(answers)
            dense = np.mean([sum(mine[c] * others[t].count(c) / len(others[t]) for c in range(k)) for t, _ in answers])
            assert n == len(answers) and chance == pytest.approx(dense) and share < chance


def test_the_workers_table_gives_agreement_with_the_others_beside_the_majority_its_own_vote_is_in():
    """The Workers tab said 0.196 agreement with majority for a worker the warning above it said the others agree
    with 9% of the time: its own vote made the majority on tasks of three answers. The leave-self-out column is the
    warning's figure."""
    from deem_core.analysis.agreement import contrary_workers  # noqa: PLC0415

    rng = np.random.default_rng(3)
    rows = []
    for t in range(300):
        truth = int(rng.integers(2))
        for w in ("a", "b", "c"):
            right = rng.random() < 0.7
            rows.append((t, w, truth if right else 1 - truth))
        rows.append((t, "bad", 1 - truth))  # answers against the others
    data = AnnotationSet.from_long(pd.DataFrame(rows, columns=["task", "worker", "label"]))
    table = worker_coverage(data).set_index("worker")
    frame = pd.DataFrame(rows, columns=["task", "worker", "label"])
    by_hand = {}
    for w in ("a", "b", "c", "bad"):
        shares = []
        for _, group in frame.groupby("task"):
            own = group.loc[group["worker"] == w, "label"].iloc[0]
            others = group.loc[group["worker"] != w, "label"]
            shares.append(float((others == own).mean()))
        by_hand[w] = np.mean(shares)
    np.testing.assert_allclose(table["agreement_with_others"].to_numpy(), [by_hand[w] for w in table.index])
    assert table.loc["bad", "agreement_with_majority"] > table.loc["bad", "agreement_with_others"] + 0.1
    named = {worker: share for worker, _, share, _ in contrary_workers(data)}
    assert named["bad"] == pytest.approx(table.loc["bad", "agreement_with_others"])  # one figure, one source


def test_the_check_against_the_others_is_bounded_where_a_task_has_many_answers_of_many_labels():
    """Attack round 36: a chunk of answers expanded each into its task's classes, so 100 tasks of 1,000 workers, each
    worker a label of its own per task (a 1.3 MB file), took 24 s and 7.8 GB in the Data page's own thread. Pairs are
    now expanded CONTRARY_CHUNK at a time and at most max_pairs in all (a random share of the tasks past it)."""
    import tracemalloc  # noqa: PLC0415

    from deem_core.analysis.agreement import contrary_workers  # noqa: PLC0415

    n_tasks, n_workers = 60, 400
    t = np.repeat(np.arange(n_tasks), n_workers)
    w = np.tile(np.arange(n_workers), n_tasks)
    data = AnnotationSet.from_codes(pd.RangeIndex(n_tasks), pd.RangeIndex(n_workers), pd.RangeIndex(n_workers), t, w,
                                    (w + t) % n_workers)  # 9.6 million (answer, class) pairs
    tracemalloc.start()
    try:
        contrary_workers(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 400e6, peak  # (one chunk of answers: about 1 GB)
    sampled = contrary_workers(data, min_answers=5, max_pairs=3_000_000)  # 18 of the 60 tasks (160,000 pairs each)
    assert sampled and all(n == 18 for _, n, _, _ in sampled)
    assert sampled == contrary_workers(data, min_answers=5, max_pairs=3_000_000)  # (the same tasks each time)
    # one task of 3,000 answers and labels (9 million pairs) is left out past a sixteenth of the pairs allowed
    big = AnnotationSet.from_codes(pd.RangeIndex(1), pd.RangeIndex(3000), pd.RangeIndex(3000), np.zeros(3000, int),
                                   np.arange(3000), np.arange(3000))
    assert contrary_workers(big, max_pairs=100_000) == []


def test_honest_data_past_the_pairs_allowed_still_name_the_workers_against_the_others():
    """The check on a random share of the tasks (past max_pairs) finds what the whole check finds on crowd data."""
    from deem_core.analysis.agreement import contrary_workers  # noqa: PLC0415

    rng = np.random.default_rng(5)
    rows = []
    truth = rng.integers(0, 3, 4000)
    for t in range(4000):
        for w in rng.choice(24, 5, replace=False):
            label = (truth[t] + 1) % 3 if w >= 22 else truth[t] if rng.random() < 0.75 else rng.integers(0, 3)
            rows.append((t, f"w{w:02d}", int(label)))
    data = AnnotationSet.from_long(pd.DataFrame(rows, columns=["task", "worker", "label"]))
    whole = contrary_workers(data)
    share = contrary_workers(data, max_pairs=15_000)  # about a quarter of the tasks
    assert [w for w, *_ in whole] == [w for w, *_ in share] == ["w22", "w23"] or \
        sorted(w for w, *_ in share) == sorted(w for w, *_ in whole) == ["w22", "w23"]
    assert all(n_share < n_whole for (_, n_share, _, _), (_, n_whole, _, _) in zip(share, whole))


def test_counting_keys_into_a_table_gives_what_sorting_them_gives():
    """The Data page's checks count (task, class) and (worker, class) keys into a table where that is small beside the
    answers (6 million answers' check 4.3 s -> 0.95 s, benchmarks/results/contrary_bound.txt), else sort them: both
    ways give np.unique's keys and counts, and the workers found against the others are the same either way."""
    from deem_core.analysis import agreement as agreement_module
    from deem_core.analysis.agreement import contrary_workers, worker_coverage
    from deem_core.data import annotations as annotations_module
    from deem_core.data.annotations import counting_is_small, counts_at, key_counts, task_class_counts

    rng = np.random.default_rng(5)
    keys = rng.integers(0, 5000, 20_000) * 7
    found, counts = np.unique(keys, return_counts=True)
    assert counting_is_small(len(keys), 35_000) and not counting_is_small(len(keys), 1 << 40)
    for size in (35_000, 1 << 40):  # a table, then a sort
        got, got_counts = key_counts(keys, size)
        assert np.array_equal(got, found) and np.array_equal(got_counts, counts)
        assert np.array_equal(counts_at(keys, size), counts[np.searchsorted(found, keys)])
    empty, none = key_counts(np.zeros(0, dtype=np.int64), 10)
    assert len(empty) == 0 and len(none) == 0

    n_tasks, k = 1500, 5
    truth = rng.integers(0, k, n_tasks)
    rows = [(t, f"w{w:02d}", int(truth[t] if w < 26 and rng.random() < 0.8 else (truth[t] + 1) % k if w >= 28
                                 else rng.integers(0, k)))
            for t in range(n_tasks) for w in rng.choice(30, 4, replace=False)]
    data = AnnotationSet.from_long(pd.DataFrame(rows, columns=["task", "worker", "label"]))
    results = []
    for small in (True, False):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(annotations_module, "counting_is_small", lambda n_keys, size, small=small: small)
            patch.setattr(agreement_module, "counting_is_small", lambda n_keys, size, small=small: small)
            results.append((contrary_workers(data), task_class_counts(data), worker_coverage(data)))
    (found_a, tcc_a, cover_a), (found_b, tcc_b, cover_b) = results
    assert [w for w, *_ in found_a] == [w for w, *_ in found_b] == ["w29", "w28"]
    assert np.allclose([v for *_, v in found_a], [v for *_, v in found_b])
    assert all(np.array_equal(a, b) for a, b in zip(tcc_a, tcc_b))
    pd.testing.assert_frame_equal(cover_a, cover_b)


def test_tie_luck_counts_the_ties_among_gold_tasks_and_what_a_random_pick_would_win():
    """Walkthrough 82: majority vote led DEEM by 0.01 on 80 gold tasks, a lead its tie rule's class order won on 9
    of 12 ties; nothing beside the accuracies said so. ``tie_luck`` counts the gold tasks that are ties, the right
    picks there and what a pick at random among each task's tied labels would win, checked against a count by hand
    and against brute force on random data (hard and soft labels)."""
    from deem_core.analysis.scoring import tie_luck, tie_luck_text  # noqa: PLC0415

    frame = pd.DataFrame({"task": ["a", "a", "b", "b", "b", "c", "c", "d", "e", "e"],
                          "worker": ["w1", "w2", "w1", "w2", "w3", "w1", "w2", "w1", "w1", "w2"],
                          "label": ["x", "y", "x", "y", "z", "x", "x", "y", "z", "y"]})
    data = AnnotationSet.from_long(frame)
    voted = pd.Series([str(data.classes[c]) for c in data.majority_vote()], index=data.tasks)
    # a: x|y, gold y (1/2); b: x|y|z, gold x (1/3, picked); e: y|z, gold x (no tied label is right); c, d: no tie;
    # "zz": no such task
    luck = tie_luck(data, voted, {"a": "y", "b": "x", "c": "x", "d": "y", "e": "x", "zz": "x"})
    assert luck == {"ties": 3, "right": 1, "expected": pytest.approx(1 / 2 + 1 / 3)}
    assert tie_luck(data, voted, {"c": "x", "d": "y"}) is None
    assert tie_luck_text(luck, 5, "gold tasks") == (
        "majority vote is a tie on 3 of the 5 gold tasks; its tie rule's order of the classes picked the right label "
        "on 1 of them, where a pick at random among the tied labels would be right on about 0.8: the order adds about "
        "0.033 (3.3 points) to its accuracy, by chance rather than from the answers")
    # the points from the fraction as shown ("0.002 (0.1 points)" for 1.5 of 1,000; walkthrough 87)
    assert "about 0.002 (0.2 points) to" in tie_luck_text({"ties": 10, "right": 6, "expected": 4.5}, 1000)
    rng = np.random.default_rng(82)
    for soft in (False, True):
        rows = [(t, w, int(rng.integers(4))) for t in range(400) for w in range(6) if rng.random() < 0.4]
        long = pd.DataFrame(rows, columns=["task", "worker", "label"])
        if soft:  # one-hot soft labels: the same votes, counted by the soft path
            long = long.assign(**{f"p{c}": (long["label"] == c).astype(float) for c in range(4)}).drop(columns="label")
            data = AnnotationSet.from_long(long, soft_columns={c: f"p{c}" for c in range(4)})
            assert data.soft_labels is not None
        else:
            data = AnnotationSet.from_long(long)
        truth = pd.Series(rng.integers(4, size=data.n_tasks), index=data.tasks).astype(str)
        voted = pd.Series([str(data.classes[c]) for c in data.majority_vote()], index=data.tasks)
        counts = np.zeros((data.n_tasks, data.n_classes))
        np.add.at(counts, (data.task_codes, data.label_codes if not soft else data.soft_labels.argmax(axis=1)), 1)
        best = counts.max(axis=1, keepdims=True)
        tied = (counts == best).sum(axis=1) >= 2
        gold = np.array([list(map(str, data.classes)).index(g) for g in truth])
        expected = sum(1 / (counts[t] == best[t]).sum() for t in np.flatnonzero(tied) if counts[t, gold[t]] == best[t])
        right = int((voted.to_numpy()[tied] == truth.to_numpy()[tied]).sum())
        assert tied.sum() > 50
        assert tie_luck(data, voted, truth) == {"ties": int(tied.sum()), "right": right,
                                                "expected": pytest.approx(expected)}


def test_agreement_with_majority_shares_a_tie_whatever_the_labels_are_called():
    """A tie went to the smallest label: the worker answering "a" on a task split a/b agreed fully, its partner
    answering "b" not at all, and renaming "a" to "z" swapped them (the Majority vote method breaks ties otherwise)."""
    def table(first: str) -> pd.Series:
        frame = pd.DataFrame({"task": ["t1", "t1", "t2", "t2", "t2"], "worker": ["u", "v", "u", "v", "w"],
                              "label": [first, "b", first, first, "b"]})
        return worker_coverage(AnnotationSet.from_long(frame)).set_index("worker")["agreement_with_majority"]
    for first in ("a", "z"):
        got = table(first)
        assert got["u"] == pytest.approx(0.75) and got["v"] == pytest.approx(0.75)  # half of t1, all of t2
        assert got["w"] == pytest.approx(0.0)


def test_answering_against_the_others_is_said_within_a_family_wise_error_among_many_workers():
    """Walkthrough 129: among 2,000 workers answering 40 classes at random, one was named "Adversarial, or with the
    classes swapped" (z 3.1, about 1 in 1,000 for each worker). Past about 50 workers the bound is Bonferroni's at
    5% over the workers tested: random crowds of this shape named 1-5 workers each (seeds 0-5), now none on this one."""
    from deem_core.analysis.agreement import CONTRARY_FAMILY_ALPHA, CONTRARY_Z, contrary_workers

    rng = np.random.default_rng(3)
    n, d, per_task, k = 2000, 2000, 250, 40
    workers = np.concatenate([rng.choice(d, per_task, replace=False) for _ in range(n)])
    frame = pd.DataFrame({"task": np.repeat(np.arange(n), per_task), "worker": workers,
                          "label": rng.integers(k, size=n * per_task)})
    data = AnnotationSet.from_long(frame)
    assert contrary_workers(data) == []
    from statistics import NormalDist

    assert NormalDist().inv_cdf(1 - CONTRARY_FAMILY_ALPHA / 50) == pytest.approx(CONTRARY_Z, abs=0.02)  # (the seam)


def test_the_label_distribution_lists_the_labels_in_their_natural_order():
    """Walkthrough 132: the Train page's label chart of 15 classes read c0, c1, c10, ..., c2 (text order)."""
    from deem_core.analysis.agreement import label_distribution

    labels = pd.Series([f"c{i % 12}" for i in range(120)])
    dist = label_distribution({"mv": labels}, classes=sorted({f"c{i}" for i in range(12)}))
    assert list(dist.index) == [f"c{i}" for i in range(12)] and dist["mv"].sum() == pytest.approx(1.0)
