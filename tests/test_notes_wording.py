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
    # no worker holding a column's name: every column written as headed
    assert wording.headed_notes(["n_labels of dependent_with"], COLUMNS, ["a", "b"]) == ["n labels of dependent with"]
