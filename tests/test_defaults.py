"""One source of defaults: the estimators' signatures. The dashboard forms, the job configurations, the
command line and the engine's TrainingConfig all show the same values."""

from __future__ import annotations

import argparse

from streamlit.testing.v1 import AppTest

from deem_core.cli import build_parser
from deem_core.methods.base import defaults_of
from deem_core.methods.deem import DEEM
from deem_core.methods.sweep import judged_epochs, run_sweep
from deem_core.model.training import TrainingConfig
from deem_studio.jobs import SWEEP_DEFAULTS, TRAIN_DEFAULTS

from conftest import ROOT, read_sample

DEEM_DEFAULTS = defaults_of(DEEM)
SWEEP_ENGINE = defaults_of(run_sweep)


def _form_app() -> AppTest:
    df, truth = read_sample("condind", n_tasks=40)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.file_uploader(key="upload_annotations").set_value(("a.csv", df.to_csv(index=False).encode(), "text/csv")).run()
    at.button(key="load_files").click().run()
    gold = truth.rename("truth").reset_index().to_csv(index=False).encode()
    at.file_uploader(key="upload_gold").set_value(("truth.csv", gold, "text/csv")).run()
    return at


def test_every_dashboard_form_default_is_the_engines(runs_dir):
    at = _form_app()
    at.switch_page("pages/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    train_form = {"train_layers": "n_layers", "train_epochs": "epochs", "train_seeds": "n_seeds", "train_lr": "lr",
                  "train_seed": "seed", "train_gold_weight": "supervised_weight"}
    for key, name in train_form.items():
        assert at.number_input(key=key).value == DEEM_DEFAULTS[name], key
    assert at.selectbox(key="train_init").value == DEEM_DEFAULTS["init"]
    assert at.selectbox(key="train_device").value == DEEM_DEFAULTS["device"]
    at.switch_page("pages/sweep.py").run()
    assert not at.exception, [e.value for e in at.exception]
    sweep_form = {"sweep_layers": "n_layers", "sweep_seeds": "n_seeds"}
    for key, name in sweep_form.items():
        assert at.number_input(key=key).value == SWEEP_ENGINE[name], key
    # the epochs: the engine's 50 where an epoch makes 4 updates or more, else as many as make 200 updates a run (40
    # tasks: one update an epoch; walkthrough 77)
    assert at.number_input(key="sweep_epochs").value == judged_epochs(40) == 200
    assert judged_epochs(4096) == judged_epochs(10 ** 6) == SWEEP_ENGINE["epochs"] == 50 and judged_epochs(1500) == 100
    assert at.selectbox(key="sweep_device").value == SWEEP_ENGINE["device"]
    assert at.text_input(key="sweep_lrs").value == "" and SWEEP_ENGINE["lrs"] is None  # empty = the default grid


def test_job_defaults_come_from_the_signatures():
    for key, value in TRAIN_DEFAULTS.items():
        if key != "methods":
            assert value == DEEM_DEFAULTS[key], key
    assert {k: v for k, v in SWEEP_DEFAULTS.items()} == {k: SWEEP_ENGINE[k] for k in SWEEP_DEFAULTS}
    assert SWEEP_DEFAULTS["epochs"] == 50 and TRAIN_DEFAULTS["epochs"] == 100  # the values the issue named


def _subcommand(name: str) -> argparse.ArgumentParser:
    return build_parser()._subparsers._group_actions[0].choices[name]


def test_command_line_defaults_are_the_engines():
    args = vars(_subcommand("aggregate").parse_args(["x.csv", "-o", "y.csv"]))
    cli_to_param = {"layers": "n_layers", "epochs": "epochs", "max_updates": "max_updates", "batch_size": "batch_size",
                    "seeds": "n_seeds", "ds_prior": "ds_prior",
                    "sampler_steps": "sampler_steps", "init": "init", "seed": "seed", "device": "device",
                    "gold_weight": "supervised_weight"}
    for option, param in cli_to_param.items():
        assert args[option] == DEEM_DEFAULTS[param], option
    assert float(args["lr"]) == DEEM_DEFAULTS["lr"]
    args = vars(_subcommand("sweep").parse_args(["x.csv", "-o", "out"]))
    assert args["epochs"] is None  # (the Sweep page's: sweep.judged_epochs of the tasks swept)
    for option, param in {"seeds": "n_seeds", "seed": "seed", "layers": "n_layers",
                          "batch_size": "batch_size", "sampler_steps": "sampler_steps", "init": "init",
                          "smoothing": "smoothing", "device": "device"}.items():
        assert args[option] == SWEEP_ENGINE[param], option


def test_training_config_agrees_with_the_estimators():
    config = TrainingConfig()
    for name in ("n_layers", "epochs", "batch_size", "sampler_steps", "step_size", "momentum", "device"):
        assert getattr(config, name) == DEEM_DEFAULTS[name], name
    for name in ("n_layers", "batch_size", "sampler_steps", "step_size", "device"):
        assert SWEEP_ENGINE[name] == DEEM_DEFAULTS[name], name
