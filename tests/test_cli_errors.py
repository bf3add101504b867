"""Issue 14, case 6 (and the terminal half of case 4): every bad option and every output that cannot be
written ends the command with exit status 2 and one ``error:`` line, before any training where it can be known
early; names from the data never send control characters to the terminal. The cases are declared in
``tests/bad_inputs/option_cases.py`` (``report.py`` prints them in the table of bad inputs)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "bad_inputs"))

import option_cases  # noqa: E402

CASES = {case.name: case for case in option_cases.cases()}


@pytest.mark.parametrize("name", list(CASES))
def test_option_case(name, tmp_path):
    option_cases.check_option_case(CASES[name], tmp_path)


def test_the_issue_list_is_covered():
    names = set(CASES)
    required = {"opt_readonly_folder", "opt_disk_full", "opt_output_under_a_file", "opt_epochs_0", "opt_batch_size_0",
                "opt_lr_inf", "opt_seeds_0", "opt_layers_negative", "opt_sampler_steps_negative", "opt_device_foo",
                "opt_seed_20_digits", "opt_gold_weight_nan", "opt_gold_weight_negative", "opt_model_unwritable",
                "opt_model_disk_full", "opt_newline_in_input_name", "opt_k1000_mv_quiet"}
    assert required <= names
    assert "opt_device_cuda_without_gpu" in names or option_cases._cuda()


def test_the_check_fails_on_a_wrong_expectation(tmp_path):
    """Not vacuous: a case expecting another message, or success, is reported."""
    import dataclasses

    wrong = dataclasses.replace(CASES["opt_epochs_0"], message="something else")
    with pytest.raises(AssertionError, match="does not match"):
        option_cases.check_option_case(wrong, tmp_path / "a")
    wrong = dataclasses.replace(CASES["opt_epochs_0"], message=None)
    with pytest.raises(AssertionError, match="exit status 2"):
        option_cases.check_option_case(wrong, tmp_path / "b")


def test_a_late_model_failure_keeps_the_labels_and_early_checks_write_nothing(tmp_path):
    """--model: the paths are checked before training (neither file is written when one cannot be); at the end
    the labels are written first, then the model."""
    case = CASES["opt_model_disk_full"]
    option_cases.check_option_case(case, tmp_path)
    assert (tmp_path / "out.csv").read_text().startswith("task,label,confidence")
    assert not (tmp_path / "model.pt").exists()
    option_cases.check_option_case(CASES["opt_model_unwritable"], tmp_path / "early")
    assert not (tmp_path / "early" / "out.csv").exists()
