"""The ``deem`` command: ``deem aggregate``, ``deem sweep``, ``deem diagnose``, ``deem baselines``.

Every subcommand lives in a module of this package exposing ``add_parser(subparsers)`` (which sets
``func`` on its parser). Only the module of the subcommand on the command line is imported (with its
torch, scipy, pandas); ``deem --help`` and ``deem --version`` list the others from :data:`SUMMARIES`, so
they answer in well under a second. Errors a user can fix (bad input files, bad option values, outputs that cannot be
written, a missing GPU) end the command with exit status 2 and one line ``error: ...`` on stderr, the last
line, never a traceback; anything unexpected ends with exit status 1 and one ``error:`` line too (the
traceback only with ``DEEM_DEBUG=1``); ``deem sweep`` whose curves recommend no learning rate writes its files, says why
and exits 1. Names from the data are printed with control characters escaped, so a
file or worker name cannot split that line or send escape sequences to the terminal. Progress goes to stderr
(tqdm), results to files.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings
from typing import NoReturn, Sequence

from deem_core import __version__
from deem_core.data.text import escape_controls  # standard library only (deem_core.data imports lazily)

__all__ = ["main", "build_parser", "UsageError", "SUBCOMMANDS", "SUMMARIES"]

#: one line per subcommand for ``deem --help`` (the module's own parser says the same; a test checks it)
SUMMARIES = {
    "aggregate": "aggregate labels with DEEM (or a classic method)",
    "sweep": "train a grid of learning rates and recommend one",
    "diagnose": "look inside a fitted DEEM: per-layer mutual information, worker importance and quality",
    "baselines": "run classic aggregators (majority vote, Dawid-Skene, GLAD, ...)",
}
SUBCOMMANDS = tuple(SUMMARIES)


class UsageError(ValueError):
    """A bad combination of options, phrased for the user."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one ``error:`` line (argparse prints the usage and ``prog: error:``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {escape_controls(message)} (see: {self.prog} --help)\n")


def _wanted(argv: Sequence[str] | None) -> set[str]:
    """The subcommands whose full parser is needed: the first non-option word of the command line
    (``None``: all of them, e.g. for a test or a documentation tool)."""
    if argv is None:
        return set(SUBCOMMANDS)
    for word in argv:
        if word == "--":
            break
        if not word.startswith("-"):
            return {word} & set(SUBCOMMANDS)
    return set()


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``deem`` parser. With ``argv``, only the subcommand named there gets its full parser (its
    module imported); the others are listed with their one-line summary."""
    import importlib  # noqa: PLC0415

    parser = _Parser(prog="deem", description="Aggregate workers' labels with DEEM.")
    parser.add_argument("--version", action="version", version=f"deem-studio {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = _wanted(argv)
    for name in SUBCOMMANDS:
        if name in wanted:
            importlib.import_module(f".{name}", __name__).add_parser(subparsers)
        else:
            subparsers.add_parser(name, help=SUMMARIES[name])
    return parser


def _error(message: str) -> None:
    print(f"error: {escape_controls(message)}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a bad option (its one error line is printed) or --help / --version
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    # a subcommand runs: its module (loaded above) has imported these already
    from deem_core.cli.common import OutputError, check_arguments  # noqa: PLC0415
    from deem_core.data.annotations import DataError  # noqa: PLC0415

    try:
        check_arguments(args)
        with warnings.catch_warnings():  # (a fallback and the labels' doubts are said in the command's own lines)
            warnings.filterwarnings("ignore", category=UserWarning, module=r"deem_core\.")
            return int(args.func(args) or 0)
    except (DataError, UsageError, OutputError) as exc:
        _error(str(exc) or type(exc).__name__)
        return 2
    except OSError as exc:  # an input that cannot be read, an output folder that cannot be made, a full disk
        if exc.filename:
            _error(f"{exc.strerror or type(exc).__name__}: {exc.filename}")
        else:
            _error(str(exc) or type(exc).__name__)
        return 2
    except MemoryError:
        _error("out of memory: the problem is too large for this machine")
        return 2
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug, not the user's: still one line, traceback on request
        if os.environ.get("DEEM_DEBUG"):
            traceback.print_exc()
        text = str(exc).strip()
        _error(f"unexpected {type(exc).__name__}" + (f": {text}" if text else "")
               + " (this is a bug; DEEM_DEBUG=1 shows the traceback)")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
