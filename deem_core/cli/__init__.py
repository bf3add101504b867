"""The ``deem`` command: ``deem aggregate``, ``deem sweep``, ``deem diagnose``, ``deem baselines``.

Every subcommand lives in a module of this package exposing ``add_parser(subparsers)`` (which sets
``func`` on its parser). Errors a user can fix (bad input files, bad options) end the command with exit
status 2 and one line ``error: ...`` on stderr; progress goes to stderr (tqdm), results to files.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from deem_core.data.annotations import DataError

__all__ = ["main", "build_parser", "UsageError"]

SUBCOMMANDS = ("aggregate", "sweep", "diagnose", "baselines")


class UsageError(ValueError):
    """A bad combination of options, phrased for the user."""


def build_parser() -> argparse.ArgumentParser:
    import importlib  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="deem", description="Aggregate annotators' labels with DEEM.")
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except (DataError, UsageError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, (FileNotFoundError, IsADirectoryError, PermissionError)) and exc.filename:
            message = f"{exc.strerror or type(exc).__name__}: {exc.filename}"
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
