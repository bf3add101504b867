"""``deem --help`` and ``deem --version`` answer fast: they import neither torch, scipy nor pandas."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import pytest

from deem_core.cli import SUBCOMMANDS, SUMMARIES, build_parser

HEAVY = ("torch", "scipy", "pandas", "numpy", "sklearn", "crowdkit", "plotly")
_PROBE = """
import sys, time
started = time.perf_counter()
from deem_core.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
heavy = [m for m in {heavy!r} if m in sys.modules]
print("HEAVY", ",".join(heavy), file=sys.stderr)
"""


@pytest.mark.parametrize("argv", [["--version"], ["--help"], []])
def test_help_and_version_import_no_heavy_library(argv):
    code = _PROBE.format(argv=argv, heavy=HEAVY)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    seconds = time.perf_counter() - started
    line = [x for x in done.stderr.splitlines() if x.startswith("HEAVY")]
    assert line, done.stderr
    assert line[-1] == "HEAVY ", f"deem {' '.join(argv)} imported {line[-1][6:]}"
    text = done.stdout + done.stderr
    if argv == ["--version"]:
        assert "deem-studio" in text
    else:
        assert all(name in text for name in SUBCOMMANDS)
    print(f"MEASURED deem {' '.join(argv) or '(no arguments)'}: {seconds:.2f} s (load {os.getloadavg()[0]:.2f})")


def _subparser_helps(parser: argparse.ArgumentParser) -> dict[str, str]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    return {choice.dest: choice.help for choice in action._choices_actions}  # noqa: SLF001


def test_short_listing_says_what_each_full_parser_says():
    """The summaries ``deem --help`` shows without importing a subcommand are the subcommands' own."""
    assert _subparser_helps(build_parser(None)) == SUMMARIES  # every module loaded
    assert _subparser_helps(build_parser([])) == SUMMARIES  # none loaded


def test_only_the_named_subcommand_gets_its_full_parser():
    parser = build_parser(["sweep", "x.csv", "-o", "out"])
    args = parser.parse_args(["sweep", "x.csv", "-o", "out"])
    assert args.command == "sweep" and callable(args.func)
    # another subcommand is only listed: it parses nothing of its own
    with pytest.raises(SystemExit):
        parser.parse_args(["aggregate", "x.csv", "-o", "labels.csv"])


def test_python_dash_m_runs_the_command():
    # "No module named deem_core.cli.__main__" (walkthrough 56)
    done = subprocess.run([sys.executable, "-m", "deem_core.cli", "--version"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "deem-studio" in done.stdout + done.stderr, done.stderr
