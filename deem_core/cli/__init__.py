"""The ``deem`` command: ``deem aggregate``, ``deem sweep``, ``deem diagnose``, ``deem baselines``.

Every subcommand lives in a module of this package exposing ``add_parser(subparsers)`` (which sets
``func`` on its parser). Errors a user can fix (bad input files, bad option values, outputs that cannot be
written, a missing GPU) end the command with exit status 2 and one line ``error: ...`` on stderr, the last
line, never a traceback; anything unexpected ends with exit status 1 and one ``error:`` line too (the
traceback only with ``DEEM_DEBUG=1``). Names from the data are printed with control characters escaped, so a
file or worker name cannot split that line or send escape sequences to the terminal. Progress goes to stderr
(tqdm), results to files.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import NoReturn, Sequence

from deem_core.data.annotations import DataError
from deem_core.data.text import escape_controls

__all__ = ["main", "build_parser", "UsageError"]

SUBCOMMANDS = ("aggregate", "sweep", "diagnose", "baselines")


class UsageError(ValueError):
    """A bad combination of options, phrased for the user."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one ``error:`` line (argparse prints the usage and ``prog: error:``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {escape_controls(message)} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    import importlib  # noqa: PLC0415

    parser = _Parser(prog="deem", description="Aggregate workers' labels with DEEM.")
    parser.add_argument("--version", action="version", version="deem-studio 0.1.0")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:  # a subcommand module not written yet
            if exc.name and exc.name.endswith(f"cli.{name}"):
                continue
            raise
        module.add_parser(subparsers)
    return parser


def _error(message: str) -> None:
    print(f"error: {escape_controls(message)}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    from deem_core.cli.common import OutputError, check_arguments  # noqa: PLC0415

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a bad option (its one error line is printed) or --help / --version
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        check_arguments(args)
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
