"""Print the table of outcomes of the bad-input corpus: input | library | CLI | outcome (the input files of
make_corpus.py, then the bad options and unwritable outputs of option_cases.py).

    python tests/bad_inputs/report.py [--slow] [--width 70]

"clear message": the library raises a DataError and the command exits with status 2 and one ``error:``
line, both naming the file (and line/column where it applies) as the case expects. "handled
correctly": the data loads with exactly the expected answers, DEEM trains one epoch, and the command
writes one row per task. Anything else is "FAIL" with the reason. Exit status 1 when a case fails.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus_checks  # noqa: E402
import make_corpus  # noqa: E402
import option_cases  # noqa: E402


def _cell(text: str, width: int) -> str:
    text = " ".join(text.replace("|", "/").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", action="store_true", help="include the 200 MB file")
    parser.add_argument("--width", type=int, default=70, help="width of the library and CLI columns")
    args = parser.parse_args(argv)
    import torch  # noqa: PLC0415

    torch.set_num_threads(1)
    rows, counts = [], {"clear message": 0, "handled correctly": 0, "FAIL": 0}
    header = ("input", "library", "CLI", "outcome")
    widths = [44, args.width, args.width, 17]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("-|-".join("-" * w for w in widths))
    with tempfile.TemporaryDirectory() as tmp:
        for case in make_corpus.cases():
            if case.slow and not args.slow:
                continue
            folder = Path(tmp) / case.name
            paths = make_corpus.write_case(case, folder)
            results = []
            failed = False
            extra = {"batch_size": 8192} if case.slow else {}
            for check in (lambda: corpus_checks.check_library(case, paths, **extra),
                          lambda: corpus_checks.check_cli(case, paths, folder,
                                                          extra=["--batch-size", "8192"] if case.slow else None)):
                try:
                    results.append(check())
                except Exception as exc:  # noqa: BLE001 - a report shows every failure
                    failed = True
                    results.append(f"FAIL {type(exc).__name__}: {exc}")
            refused = case.expect == "error" or case.fit_error is not None
            outcome = "FAIL" if failed else ("clear message" if refused else "handled correctly")
            counts[outcome] += 1
            if case.cli_expect and not failed:
                outcome = "clear message (DataFrame), handled correctly (CSV)"
            row = (f"{case.name}: {case.description}", *results, outcome)
            rows.append(row)
            print(" | ".join(_cell(v, w).ljust(w) for v, w in zip(row[:3], widths)) + " | " + outcome, flush=True)
        # bad options and outputs that cannot be written (option_cases.py): the command only
        for case in option_cases.cases():
            try:
                result, outcome = option_cases.check_option_case(case, Path(tmp) / case.name), None
            except Exception as exc:  # noqa: BLE001 - a report shows every failure
                result, outcome = f"FAIL {type(exc).__name__}: {exc}", "FAIL"
            outcome = outcome or ("clear message" if case.message is not None else "handled correctly")
            counts[outcome] += 1
            row = (f"{case.name}: {case.description}", "(a command-line option or output)", result, outcome)
            rows.append(row)
            print(" | ".join(_cell(v, w).ljust(w) for v, w in zip(row[:3], widths)) + " | " + outcome, flush=True)
    total = len(rows)
    tracebacks = sum("Traceback" in " ".join(map(str, row)) for row in rows)
    print(f"\n{total} inputs: {counts['clear message']} clear message, {counts['handled correctly']} handled "
          f"correctly, {counts['FAIL']} failed, {tracebacks} tracebacks")
    return 1 if counts["FAIL"] or tracebacks else 0


if __name__ == "__main__":
    sys.exit(main())
