"""Print the table of outcomes of the bad-input corpus: input | library | CLI | outcome (the input files of
make_corpus.py, then the bad options and unwritable outputs of option_cases.py).

    python tests/bad_inputs/report.py [--slow] [--width 70]
    python tests/bad_inputs/report.py --rss      # peak memory of `deem aggregate` on the full-size bombs

"clear message": the library raises a DataError and the command exits with status 2 and one ``error:``
line, both naming the file (and line/column where it applies) as the case expects. "handled
correctly": the data loads with exactly the expected answers, DEEM trains one epoch, and the command
writes one row per task. Anything else is "FAIL" with the reason. Exit status 1 when a case fails.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
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
    parser.add_argument("--rss", action="store_true",
                        help="instead: peak resident memory of `deem aggregate` (own process each) on full-size bombs "
                             "with the default limits, against an idle run on a tiny file")
    args = parser.parse_args(argv)
    if args.rss:
        return rss_table()
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


#: the process's own peak resident KiB (VmHWM; ru_maxrss would carry the forking pytest's over)
_PEAK_KIB = "int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])"
#: run the command in a fresh interpreter and print its own peak RSS (KiB on Linux) on the last line of stderr
_MEASURE = ("import sys\nfrom deem_core.cli import main\ncode = main(sys.argv[1:])\n"
            f"print('rss_kib', {_PEAK_KIB}, file=sys.stderr)\n"
            "sys.exit(code)\n")


def _measure(inputs: list[str], extra: list[str], out: Path) -> tuple[int, float, float, str]:
    """(exit status, peak RSS MiB, wall s, last error line) of one ``deem aggregate --method mv`` run."""
    args = [sys.executable, "-c", _MEASURE, "aggregate", *inputs, "-o", str(out), "--method", "mv", *extra]
    started = time.perf_counter()
    before = os.times()
    done = subprocess.run(args, capture_output=True, text=True, timeout=1800)
    after = os.times()
    wall = time.perf_counter() - started
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    lines = done.stderr.strip().splitlines()
    rss = next((int(line.split()[1]) for line in reversed(lines) if line.startswith("rss_kib ")), 0) / 1024
    error = next((line for line in reversed(lines) if line.startswith("error:")), "")
    return done.returncode, rss, wall, f"{error} (cpu {cpu:.1f} s)"


_PREVIEW = ("import sys\nfrom deem_core.data.annotations import DataError\n"
            "from deem_core.data.formats import preview\n"
            "try:\n    p = preview(sys.argv[1])\n    print(f'{len(p.frame)} rows shown, read as {p.layout}, problem: '\n"
            "          f'{(p.problem or \"none\")[:60]}')\n"
            "except DataError as exc:\n    print(f'DataError: {str(exc)[:80]}')\n"
            f"print('rss_kib', {_PEAK_KIB}, file=sys.stderr)\n")


def _measure_preview(path: str) -> tuple[int, float, float, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _PREVIEW, path], capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - started
    lines = done.stderr.strip().splitlines()
    rss = next((int(line.split()[1]) for line in reversed(lines) if line.startswith("rss_kib ")), 0) / 1024
    return done.returncode, rss, wall, done.stdout.strip()


def rss_table() -> int:
    import make_corpus  # noqa: PLC0415 - on sys.path above

    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}; {os.cpu_count()} CPUs; default limits "
          f"(DEEM_MAX_INPUT_BYTES={os.environ.get('DEEM_MAX_INPUT_BYTES', '1G')}, "
          f"DEEM_MAX_INPUT_ROWS={os.environ.get('DEEM_MAX_INPUT_ROWS', '20000000')})")
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tiny = folder / "tiny.csv"
        tiny.write_text("task,worker,label\n1,a,x\n1,b,y\n2,a,x\n")
        refused = folder / "refused.csv"
        refused.write_text("task,worker\n1,a\n")
        status, idle, wall, _ = _measure([str(refused)], [], folder / "idle.csv")
        print(f"idle (the command refusing a 2-line file): exit {status}, peak RSS {idle:.0f} MiB, {wall:.1f} s")
        status, done, wall, _ = _measure([str(tiny)], [], folder / "tiny_out.csv")
        print(f"for scale (majority vote on a 3-answer file): exit {status}, peak RSS {done:.0f} MiB, {wall:.1f} s\n")
        print(f"{'input':72} | {'size':>9} | {'exit':>4} | {'peak RSS':>9} | {'above idle':>10} | {'wall':>6} | message")
        print("-" * 160)
        for description, inputs, extra in make_corpus.rss_cases(folder / "bombs"):
            size = sum(Path(p).stat().st_size for p in inputs)
            status, rss, wall, error = _measure(inputs, extra, folder / "out.csv")
            above = rss - idle
            ok = status == 2 and above <= 1536
            failures += not ok
            print(f"{description:72} | {size / 1e6:7.2f}MB | {status:>4} | {rss:6.0f}MiB | {above:7.0f}MiB | "
                  f"{wall:5.1f}s | {error}" + ("" if ok else "  <-- FAIL"), flush=True)
        _, preview_idle, _, _ = _measure_preview(str(tiny))
        print(f"\nthe Data page's preview (deem_core.data.formats.preview, its own process each; idle: the preview of "
              f"a 3-answer file, {preview_idle:.0f} MiB):")
        for path in sorted((folder / "bombs").iterdir()):
            status, rss, wall, shown = _measure_preview(str(path))
            above = rss - preview_idle
            failures += above > 1536
            print(f"  preview of {path.name:16} | peak RSS {rss:6.0f}MiB | above idle {above:6.0f}MiB | {wall:5.1f}s | "
                  f"{shown}", flush=True)
    print(f"\n{failures} case(s) over 1.5 GiB above idle or not refused")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
