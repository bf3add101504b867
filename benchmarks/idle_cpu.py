"""CPU used by an idle dashboard server with one browser connected (target: at most 2% of one core).

Starts ``streamlit run app.py`` with the repository's ``.streamlit/config.toml`` (a fresh runs folder),
opens the dashboard in Debian's Chromium (Playwright), loads a small data set and opens the Sweep page,
waits until the page is drawn, then reads the server process's CPU time (utime + stime of
``/proc/<pid>/stat`` and its threads) over ``--seconds`` of idling. ``--watcher auto`` shows what
Streamlit's default file watcher costs (it walks every folder under the app, a ``.venv`` included).

Usage::

    python benchmarks/idle_cpu.py                      # the shipped settings, 60 s
    python benchmarks/idle_cpu.py --watcher auto       # Streamlit's default watcher, for comparison
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_browser import (VIEWPORT, LiveServer, button, chromium, heading, metric, nav, tiny_files,  # noqa: E402
                          until, upload)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14, 15 of proc(5))


def measure(seconds: float, watcher: str | None) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="deem_idle_"))
    data_path, _ = tiny_files(work, 300)
    extra = ["--server.fileWatcherType", watcher] if watcher else []
    with LiveServer(work / "runs", extra_args=extra) as server, chromium() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(server.url, timeout=90_000)
        heading(page, "Data", 120)
        upload(page, data_path)
        until(lambda: button(page, "Load these files").is_enabled(), 60, "the upload")
        button(page, "Load these files").click()
        until(lambda: metric(page, "Tasks") == "300", 90, "the summary")
        nav(page, "Sweep")
        time.sleep(5.0)  # let the last script run and the browser settle
        pid = server.process.pid
        load_before = os.getloadavg()[0]
        cpu0, wall0 = cpu_seconds(pid), time.monotonic()
        time.sleep(seconds)
        cpu1, wall1 = cpu_seconds(pid), time.monotonic()
        log = server.log(200_000)
    return {"cpu_s": cpu1 - cpu0, "wall_s": wall1 - wall0, "share": (cpu1 - cpu0) / (wall1 - wall0),
            "load_before": load_before, "load_after": os.getloadavg()[0],
            "overflow_lines": log.count("Inotify queue overflowed")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--watcher", default=None, help="override server.fileWatcherType (default: the config's)")
    args = parser.parse_args()
    result = measure(args.seconds, args.watcher)
    setting = args.watcher or "as in .streamlit/config.toml"
    print(f"idle dashboard server, one browser on the Sweep page, file watcher {setting}; {os.cpu_count()} cores")
    print("| seconds | server CPU s | share of one core | load avg before / after | inotify overflow lines |")
    print("|---:|---:|---:|---|---:|")
    print(f"| {result['wall_s']:.1f} | {result['cpu_s']:.2f} | {100 * result['share']:.2f}% | "
          f"{result['load_before']:.2f} / {result['load_after']:.2f} | {result['overflow_lines']} |")


if __name__ == "__main__":
    main()
