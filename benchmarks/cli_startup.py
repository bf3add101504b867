"""Start-up time of the ``deem`` command: ``deem --version``, ``deem --help`` and a subcommand's help.

Each command runs ``--repeat`` times in a fresh process (the installed ``deem`` entry point); the table gives
the median and the largest wall time, and the heavy libraries (torch, scipy, pandas) the command imported.
Target (issue 13): ``deem --help`` and ``deem --version`` at most 1.5 s.

Usage::

    python benchmarks/cli_startup.py            # 5 runs each
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

HEAVY = ("torch", "scipy", "pandas")
_PROBE = ("import sys, runpy; sys.argv = ['deem'] + {argv!r}\n"
          "try:\n    from deem_core.cli import main; main({argv!r})\nexcept SystemExit:\n    pass\n"
          "print('HEAVY', ','.join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    deem = shutil.which("deem") or os.path.join(os.path.dirname(sys.executable), "deem")
    print(f"{os.cpu_count()} cores; load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("| command | median s | max s | heavy libraries imported |")
    print("|---|---:|---:|---|")
    for argv in (["--version"], ["--help"], ["sweep", "--help"]):
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            subprocess.run([deem, *argv], capture_output=True, check=False)
            times.append(time.perf_counter() - started)
        probe = subprocess.run([sys.executable, "-c", _PROBE.format(argv=argv, heavy=HEAVY)], capture_output=True,
                               text=True, check=False)
        heavy = next((line[6:] for line in probe.stderr.splitlines() if line.startswith("HEAVY")), "?") or "none"
        print(f"| deem {' '.join(argv)} | {statistics.median(times):.2f} | {max(times):.2f} | {heavy} |", flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
