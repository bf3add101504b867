"""The Sweep page's typed grid (found attacking main): any number of learning rates was accepted (each is a run
trained at once: 1,000 values on a 3,000-task set passed the memory check, 5.8 GiB in one job of the shared
server), and the error about a bad value quoted the typed text as Markdown (an image from another site, a link)."""

from __future__ import annotations

import re

import pytest

from pages.common import safe
from tests.test_app import new_app, no_problem, upload


@pytest.fixture
def sweep_page(runs_dir):
    at = upload(new_app())
    at.switch_page("pages/sweep.py").run()
    no_problem(at)
    return at


def test_a_grid_longer_than_the_limit_is_refused_on_the_page(sweep_page):
    at = sweep_page
    at.text_input(key="sweep_lrs").set_value(", ".join(f"{0.001 * (i + 1):g}" for i in range(1000))).run()
    no_problem(at)
    assert any("at most 24 learning rates per sweep" in str(e.value) for e in at.error), at.error
    assert at.button(key="sweep_launch").disabled


def test_the_grid_error_shows_the_typed_text_as_text(sweep_page):
    at = sweep_page
    payload = "![x](http://127.0.0.1:9/t.png)"
    at.text_input(key="sweep_lrs").set_value(f"0.01, {payload}").run()
    no_problem(at)
    shown = [str(e.value) for e in at.error if "learning rates must be numbers" in str(e.value)]
    assert shown and all(payload not in text for text in shown), shown  # main: the raw Markdown image
    assert safe(repr(payload)) in shown[0]


def test_a_refused_grid_is_not_priced_as_the_default_grid(sweep_page):
    """Seen in the browser: with 30 rates typed and refused, the caption beside the form still read '8 learning
    rate(s) (0.001, 0.003, ..., 3) ... about 1.7 s', the default grid's cost, as if that grid would run."""
    at = sweep_page
    assert any("8 learning rates" in str(c.value) for c in at.caption)  # the default grid, nothing typed
    at.text_input(key="sweep_lrs").set_value(", ".join(f"{0.001 * (i + 1):g}" for i in range(30))).run()
    no_problem(at)
    assert at.button(key="sweep_launch").disabled
    captions = [str(c.value) for c in at.caption]
    assert not any(re.search(r"\d learning rates? \(", text) for text in captions), captions  # (no price)
    assert any("once the learning rates are fixed" in text for text in captions), captions
    at.text_input(key="sweep_lrs").set_value("0.01, 0.1").run()
    assert any("2 learning rates (0.01, 0.1)" in str(c.value) for c in at.caption)


@pytest.mark.parametrize(("typed", "said"), [("1e999", "got 1e999 (infinite)"), ("nan", "got nan (not a number)"),
                                             ("-0.1", "got -0.1")])
def test_a_value_that_is_not_a_usable_rate_is_named_for_what_it_is(sweep_page, typed, said):
    at = sweep_page
    at.text_input(key="sweep_lrs").set_value(f"0.01, {typed}").run()
    no_problem(at)
    shown = [str(e.value) for e in at.error if "must be positive finite numbers" in str(e.value)]
    assert shown and shown[0].endswith(safe(said)), [str(e.value) for e in at.error]
    assert at.button(key="sweep_launch").disabled
