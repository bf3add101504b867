"""How long a visitor's small load waits while other visitors keep the server reading a large file (attack round 62:
two or three tabs re-pressing "Load these files" on a 63 MB file held the one read slot, and another visitor's 13 KB
load waited 31-33 s).

A real server (``python -m deem_studio.serve`` of ``--repo``, its own runs folder) and Chromium (Playwright, Debian's
``/usr/bin/chromium``): ``--attackers`` browsers each load a large long CSV and press "Load these files" again as
each read ends; after ``--settle`` seconds a visitor in a browser of its own loads a small CSV ``--visits`` times, and
the seconds from its press to the page's "Loaded" are printed with the attackers' loads. Run it once on a checkout
before a change (``--repo``) and once on this one to compare.

Usage::

    python benchmarks/read_line.py [--repo PATH] [--port 9131] [--rows 3000000] [--attackers 3] [--visits 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"


def write_files(folder: Path, rows: int) -> tuple[Path, Path]:
    """A large long CSV of ``rows`` answers and a small one (600 answers, about 13 KB)."""
    import numpy as np  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415

    rng = np.random.default_rng(0)

    def frame(start: int, n: int) -> pd.DataFrame:
        """Answers ``start`` .. ``start + n`` of three a task, each task's three workers distinct (a pair given twice
        is a conflict the read refuses)."""
        answer = np.arange(start, start + n)
        task, seat = answer // 3, answer % 3
        return pd.DataFrame({"task": [f"item{t}" for t in task],
                             "worker": [f"annotator{w}" for w in (task * 13 + seat * 101) % 500],
                             "label": rng.choice(["positive", "negative", "neutral"], n)})

    large, small = folder / "large.csv", folder / "small.csv"
    chunk = 500_000
    with open(large, "w", encoding="utf-8") as out:
        for start in range(0, rows, chunk):
            frame(start, min(chunk, rows - start)).to_csv(out, index=False, header=start == 0)
    frame(0, 600).to_csv(small, index=False)
    return large, small


def free_port(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]


def main_text(page) -> str:
    return page.locator("[data-testid='stMain']").first.inner_text(timeout=10_000)


def until(check, timeout: float, what: str) -> None:
    end = time.time() + timeout
    while time.time() < end:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - the page is redrawing
            pass
        time.sleep(0.2)
    raise TimeoutError(what)


def open_data_page(browser, url: str):
    page = browser.new_context().new_page()
    page.set_default_timeout(120_000)
    page.goto(url)
    until(lambda: "Data" in page.locator("h1").all_inner_texts(), 120, "the Data page")
    return page


def load(page, path: Path, timeout: float = 300) -> Any:
    """Upload ``path`` (the page previews it, under a read slot), press "Load these files"; the button."""
    page.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(str(path))
    button = page.get_by_role("button", name="Load these files", exact=True)
    until(lambda: button.is_enabled(), timeout, "the upload and its preview")
    button.click()
    return button


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=str(ROOT), help="the checkout whose dashboard is served")
    parser.add_argument("--port", type=int, default=9131)
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--attackers", type=int, default=3)
    parser.add_argument("--visits", type=int, default=3)
    parser.add_argument("--settle", type=float, default=25.0)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    work = Path(tempfile.mkdtemp(prefix="read_line_"))
    large, small = write_files(work, args.rows)
    port = free_port(args.port)
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DEEM_RUNS_DIR": str(work / "runs"), "PYTHONPATH": args.repo}
    repo = Path(args.repo).resolve()
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    log = open(work / "server.log", "wb")  # noqa: SIM115
    server = subprocess.Popen([sys.executable, "-m", "deem_studio.serve", "--server.headless", "true",
                               "--server.address", "127.0.0.1", "--server.port", str(port)],
                              cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT)
    print(f"# machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start; served: {repo} "
          f"({commit})")
    print(f"# large file {large.stat().st_size / 2**20:.1f} MiB ({args.rows:,} rows), small file "
          f"{small.stat().st_size / 1024:.1f} KiB; {args.attackers} attacking browsers, each its own workspace, "
          f"pressing Load again as each read ends")
    stop = threading.Event()
    counts = [0] * args.attackers
    try:
        until(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() or True, 60, "the server")

        def attack(number: int) -> None:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
                page = open_data_page(browser, url)
                button = load(page, large)
                while not stop.is_set():
                    until(lambda: button.is_enabled(), 300, "a read's end")
                    counts[number] += 1
                    if not stop.is_set():
                        button.click()
                        time.sleep(1.0)
                browser.close()

        threads = [threading.Thread(target=attack, args=(n,), daemon=True) for n in range(args.attackers)]
        for thread in threads:
            thread.start()
        time.sleep(args.settle)
        print("visit\tpreviewed_s\tloaded_s\tpage_said")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            for visit in range(args.visits):
                page = open_data_page(browser, url)
                started = time.time()
                try:  # (seconds from the upload: its preview, then the press on Load)
                    load(page, small)
                    previewed = time.time() - started
                    until(lambda: "Loaded" in main_text(page) or "busy" in main_text(page), 300, "the visitor's load")
                    said = next((line for line in main_text(page).splitlines() if "Loaded" in line or "busy" in line),
                                "")
                    print(f"{visit + 1}\t{previewed:.1f}\t{time.time() - started:.1f}\t{said[:90]}", flush=True)
                except TimeoutError as exc:
                    print(f"{visit + 1}\t-\t>{time.time() - started:.0f}\t(waited in vain for {exc})", flush=True)
                page.context.close()
                time.sleep(5)
            browser.close()
        stop.set()
        for thread in threads:
            thread.join(120)
        print(f"# attackers' presses of Load meanwhile: {sum(counts)}")
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
