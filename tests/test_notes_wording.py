"""The Diagnostics page's notes name the columns as its grids head them, and the workers as they are named."""

from __future__ import annotations

from deem_studio import wording

COLUMNS = ["worker", "n_labels", "dependent_with", "irbm_accuracy", "flag"]


def test_columns_are_written_as_headed_but_a_worker_s_name_is_kept():
    """Walkthrough 91: a worker named ``n_labels`` was shown "n labels" in the note that named it."""
    notes = ["dependent_with: the other workers of its dependence cluster; 1 dependence cluster: 3 workers: "
             "n_labels, x_dependent_with_y, w3",
             "irbm_accuracy is the trained model's own estimate"]
    workers = ["n_labels", "x_dependent_with_y", "w3", "w4"]
    assert wording.headed_notes(notes, COLUMNS, workers) == [
        "dependent with: the other workers of its dependence cluster; 1 dependence cluster: 3 workers: "
        "n_labels, x_dependent_with_y, w3",
        "irbm accuracy is the trained model's own estimate"]
    # a name is kept as a list cuts it (40 characters) too; one the notes do not hold changes nothing
    long = "n_labels_" + "z" * 60
    assert wording.headed_notes([f"workers: {long[:36]}... and n_labels"], COLUMNS, [long]) == [
        f"workers: {long[:36]}... and n labels"]
    # a name holding a quote mark is listed in “ ” with the mark doubled: kept as listed (read 44)
    odd = "a“n_labels"
    assert wording.headed_notes(["workers: “a““n_labels”, w3; n_labels"], COLUMNS, [odd, "w3"]) == [
        "workers: “a““n_labels”, w3; n labels"]
    # no worker holding a column's name: every column written as headed
    assert wording.headed_notes(["n_labels of dependent_with"], COLUMNS, ["a", "b"]) == ["n labels of dependent with"]


def test_many_workers_holding_a_column_s_name_leave_the_notes_as_they_are():
    """Each such name is looked for in each note: past a bound the notes keep the files' names, in no time."""
    import time  # noqa: PLC0415

    names = [f"n_labels_{i}" for i in range(wording.MOST_NAMES_HOLDING_COLUMNS + 1)]
    notes = [f"dependent_with: {', '.join(names[:8])} and 993 more"] * 10
    started = time.perf_counter()
    assert wording.headed_notes(notes, COLUMNS, names) == notes
    assert time.perf_counter() - started < 1.0
    assert wording.headed_notes(notes, COLUMNS, names[:-1])[0].startswith("dependent with: n_labels_0, n_labels_1")
