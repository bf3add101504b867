"""The ``deem`` command: ``deem aggregate``, ``deem sweep``, ``deem diagnose``, ``deem baselines``.

Every subcommand lives in a module of this package exposing ``add_parser(subparsers)`` (which sets
``func`` on its parser). Only the module of the subcommand on the command line is imported (with its
torch, scipy, pandas); ``deem --help`` and ``deem --version`` list the others from :data:`SUMMARIES`, so
they answer in well under a second. Errors a user can fix (bad input files, bad options) end the command with exit
status 2 and one line ``error: ...`` on stderr; progress goes to stderr (tqdm), results to files.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from deem_core import __version__

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

    parser = argparse.ArgumentParser(prog="deem", description="Aggregate workers' labels with DEEM.")
    parser.add_argument("--version", action="version", version=f"deem-studio {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = _wanted(argv)
    for name in SUBCOMMANDS:
        if name in wanted:
            importlib.import_module(f".{name}", __name__).add_parser(subparsers)
        else:
            subparsers.add_parser(name, help=SUMMARIES[name])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    from deem_core.data.annotations import DataError  # noqa: PLC0415 - the subcommand loaded it already

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
