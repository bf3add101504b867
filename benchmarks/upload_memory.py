"""Dashboard server memory while one session uploads each resource case of issue 14, and whether another
session keeps being served meanwhile.

A real ``streamlit run app.py`` (tests/test_browser.py's LiveServer) and Debian's Chromium (Playwright). For
each case, one browser session opens the Data page, selects the file in the uploader (the preview reads it),
presses "Load these files" when the page allows it and waits for the outcome (the summary, or the message
that refuses the file). Meanwhile a second session, in its own browser, keeps asking the Runs page to open a
(malformed) run id and times each answer.

Server memory comes from ``/proc/<pid>``: the peak is the kernel's high-water mark (``VmHWM``, reset before
each case by writing ``5`` to ``clear_refs``; root only, else the 20 Hz samples of ``VmRSS``), ``idle`` is the
resident size before the case and ``after`` 15 s after the uploading session left. A guard stops the server
when it passes ``--guard-gb`` above idle (the machine is shared). The last column runs ``deem aggregate FILE
--method mv`` on the same file in a fresh process: exit status and peak (``VmHWM``) above ``deem aggregate
--help``.

Cases (generated into ``--data-dir``, never committed; the bomb is written compressed, as repeated gzip
members of one 1 MiB block):

* ``gzip_bomb``: a 1.6 MB ``.csv.gz`` that expands to 1.5 GiB (above the 1 GiB read limit);
* ``gzip_bomb_long_rows``: 1.5 GiB again, in 3 million rows of 500-byte labels (the byte limit applies);
* ``new_every_row_10k`` / ``new_every_row_40k``: long CSVs where every row is a new task and a new worker
  (10,000 rows: 128 KB, the issue's dashboard case; 40,000: its command-line case);
* ``distinct_workers_1m``: 1,000,000 rows, each a new worker (200,000 tasks x 5 answers).

Usage::

    nice -n 10 python benchmarks/upload_memory.py                 # every case; writes results/upload_memory.txt
    python benchmarks/upload_memory.py --cases gzip_bomb          # one case (results file untouched)
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_browser import (VIEWPORT, LiveServer, button, chromium, heading, main_text, metric,  # noqa: E402
                          until, upload)

CASES = ("gzip_bomb", "gzip_bomb_long_rows", "new_every_row_10k", "new_every_row_40k", "distinct_workers_1m")


# --------------------------------------------------------------------------- the files
def write_case(name: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if name == "gzip_bomb":
        path = folder / "bomb.csv.gz"
        if not path.exists():
            header = b"task,worker,label\n"
            # one row over and over: about 1,000:1, what a bomb is built for
            block = gzip.compress(b"t1,w1,a\n" * (1 << 17), compresslevel=9)
            with path.open("wb") as handle:
                handle.write(gzip.compress(header))
                for _ in range(1536):  # 1.5 GiB once decompressed; concatenated gzip members read as one stream
                    handle.write(block)
        return path
    if name == "gzip_bomb_long_rows":  # 1.5 GiB in 3 M rows of 500-byte labels: the byte limit, not the rows
        path = folder / "bomb_long_rows.csv.gz"
        if not path.exists():
            block = gzip.compress((b"t1,w1," + b"x" * 500 + b"\n") * 2048, compresslevel=9)
            with path.open("wb") as handle:
                handle.write(gzip.compress(b"task,worker,label\n"))
                for _ in range(1536):  # 1 MiB per member
                    handle.write(block)
        return path
    if name.startswith("new_every_row"):
        n = 10_000 if name.endswith("10k") else 40_000
        path = folder / f"new_every_row_{n}.csv"
        if not path.exists():
            with path.open("w") as handle:
                handle.write("task,worker,label\n")
                for i in range(n):
                    handle.write(f"task{i:06d},worker{i:06d},{'abc'[i % 3]}\n")
        return path
    if name == "distinct_workers_1m":
        path = folder / "distinct_workers_1m.csv"
        if not path.exists():
            with path.open("w") as handle:
                handle.write("task,worker,label\n")
                for i in range(1_000_000):
                    handle.write(f"t{i // 5},w{i:07d},{(i // 5 + (i % 5 == 0)) % 3}\n")
        return path
    raise ValueError(name)


# --------------------------------------------------------------------------- server memory
def _status(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0]) * 1024
    return out


def reset_peak(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


class Sampler(threading.Thread):
    """VmRSS every 50 ms; stops the server past ``guard`` bytes."""

    def __init__(self, server: LiveServer, guard: int):
        super().__init__(daemon=True)
        self.server, self.guard, self.peak, self.stop_flag, self.tripped = server, guard, 0, False, False

    def run(self) -> None:
        pid = self.server.process.pid
        while not self.stop_flag:
            try:
                rss = _status(pid)["VmRSS"]
            except OSError:
                return
            self.peak = max(self.peak, rss)
            if rss > self.guard and not self.tripped:
                self.tripped = True
                self.server.process.kill()  # our own server, by its pid
                return
            time.sleep(0.05)


# --------------------------------------------------------------------------- the other session
@dataclass(eq=False)
class Prober(threading.Thread):
    """A second browser session asking the Runs page for a malformed run id, over and over; each answer timed."""

    url: str
    answers: list[tuple[float, float]] = field(default_factory=list)  # (when, seconds)
    failures: list[float] = field(default_factory=list)
    stop_flag: bool = False
    ready: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        threading.Thread.__init__(self, daemon=True)

    def run(self) -> None:
        with chromium() as browser:  # its own Playwright: the sync API belongs to one thread
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(f"{self.url}/runs", timeout=90_000)
            heading(page, "Runs", 90)
            self.ready.set()
            n = 0
            while not self.stop_flag:
                n += 1
                token = f"zz{n}"
                started = time.perf_counter()
                try:
                    box = page.get_by_label("Run id", exact=True)
                    box.fill(token)
                    box.press("Enter")
                    button(page, "Open this run").click(timeout=30_000)
                    until(lambda: token in main_text(page), 30, f"the answer for {token}", every=0.05)
                    self.answers.append((time.time(), time.perf_counter() - started))
                except Exception:  # noqa: BLE001 - a missed answer is what this measures
                    self.failures.append(time.time())
                time.sleep(0.5)

    def window(self, start: float, end: float) -> tuple[int, int, float]:
        inside = [s for t, s in self.answers if start <= t <= end]
        missed = sum(1 for t in self.failures if start <= t <= end)
        return len(inside), missed, max(inside) if inside else float("nan")


# --------------------------------------------------------------------------- one case
def run_case(name: str, path: Path, server: LiveServer, browser, prober: Prober, guard_gb: float) -> dict:
    pid = server.process.pid
    exact = reset_peak(pid)
    idle = _status(pid)["VmRSS"]
    sampler = Sampler(server, idle + int(guard_gb * (1 << 30)))
    sampler.start()
    started = time.time()
    page = browser.new_page(viewport=VIEWPORT)
    outcome = "?"
    try:
        page.goto(server.url, timeout=90_000)
        heading(page, "Data", 90)
        upload(page, path)

        def refused() -> bool:
            alerts = page.locator("[data-testid='stAlert']").all_inner_texts()
            return any(path.name in a.replace("\u2060", "") or "limit" in a for a in alerts)

        until(lambda: "read as" in main_text(page) or refused(), 300, "the preview or a message")
        load = button(page, "Load these files")
        until(lambda: refused() or (load.count() and load.is_enabled()), 120, "the load button or a message")
        if not refused():
            load.click()
            until(lambda: metric(page, "Tasks") is not None or refused(), 600, "the summary or a message")
            until(lambda: page.locator("[data-stale='true']").count() == 0, 120, "a settled page")
            time.sleep(2.0)  # the summary's charts and tables
        tasks = metric(page, "Tasks")
        alerts = [a.replace("\n", " ") for a in page.locator("[data-testid='stAlert']").all_inner_texts()]
        if tasks is not None:
            outcome = f"loaded: {tasks} tasks x {metric(page, 'Annotators')} workers"
        elif alerts:
            outcome = "refused: " + alerts[0]
    except Exception as exc:  # noqa: BLE001
        outcome = f"FAILED: {type(exc).__name__}: {str(exc)[:120]}"
    finished = time.time()
    page.close()  # the uploading session leaves
    time.sleep(15.0)
    sampler.stop_flag = True
    sampler.join(5)
    after = _status(pid)["VmRSS"] if server.process.poll() is None else 0
    peak = max(_status(pid)["VmHWM"] if exact and server.process.poll() is None else 0, sampler.peak)
    answered, missed, worst = prober.window(started, finished)
    return {"case": name, "file MB": path.stat().st_size / 1e6, "seconds": finished - started, "outcome": outcome,
            "idle MB": idle / 1e6, "peak MB": peak / 1e6, "peak - idle MB": (peak - idle) / 1e6,
            "after MB": after / 1e6, "other session answers": answered, "missed": missed, "slowest s": worst,
            "guard tripped": sampler.tripped}


#: the process's own peak resident KiB (VmHWM; ru_maxrss would carry the forking parent's over)
_PEAK_KIB = "int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])"
_CLI = ("import sys\nfrom deem_core.cli import main\nstatus = main(sys.argv[1:])\n"
        f"print('MAXRSS', {_PEAK_KIB}, file=sys.stderr)\nsys.exit(status)")


def cli_peak(args: list[str]) -> tuple[int, float, str]:
    """``deem ARGS`` in its own process: exit status, peak resident MB (VmHWM), its last stderr line."""
    import subprocess  # noqa: PLC0415

    result = subprocess.run([sys.executable, "-c", _CLI, *args], capture_output=True, text=True, cwd=ROOT,
                            timeout=1800)
    lines = result.stderr.strip().splitlines()
    peak = next((int(line.split()[1]) * 1024 / 1e6 for line in lines if line.startswith("MAXRSS")), float("nan"))
    last = next((line for line in reversed(lines) if not line.startswith("MAXRSS")), "")
    return result.returncode, peak, last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--data-dir", default="/tmp/deem-upload-memory")
    parser.add_argument("--guard-gb", type=float, default=6.0)
    args = parser.parse_args(argv)
    import tempfile  # noqa: PLC0415

    paths = {name: write_case(name, Path(args.data_dir)) for name in args.cases}
    rows = []
    with tempfile.TemporaryDirectory() as tmp, LiveServer(Path(tmp) / "runs") as server, chromium() as browser:
        prober = Prober(server.url)
        prober.start()
        prober.ready.wait(120)
        time.sleep(3)
        for name in args.cases:
            if server.process.poll() is not None:
                rows.append({"case": name, "outcome": "not run: the server was stopped by the guard"})
                continue
            row = run_case(name, paths[name], server, browser, prober, args.guard_gb)
            rows.append(row)
            print(f"{name}: {row}", file=sys.stderr, flush=True)
        prober.stop_flag = True
        prober.join(60)
    # the command line on the same files: deem aggregate --method mv (a fresh process each; idle = --help)
    idle_cli = cli_peak(["aggregate", "--help"])[1]
    for row in rows:
        if "idle MB" in row:
            with tempfile.TemporaryDirectory() as tmp:
                status, peak, last = cli_peak(["aggregate", str(paths[row["case"]]), "--method", "mv",
                                               "-o", str(Path(tmp) / "out.csv")])
            row["cli"] = f"exit {status}, +{peak - idle_cli:.0f} MB"
    load = os.getloadavg()
    lines = [f"# benchmarks/upload_memory.py on {os.cpu_count()} CPU(s); load average {load[0]:.1f} {load[1]:.1f} "
             f"{load[2]:.1f}; VmHWM peaks{'' if os.geteuid() == 0 else ' (sampled: not root)'}",
             "| case | file MB | s | idle MB | peak MB | peak - idle MB | after MB | other session: answers, missed, "
             f"slowest s | outcome | CLI (mv; idle {idle_cli:.0f} MB) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if "idle MB" not in row:
            lines.append(f"| {row['case']} | | | | | | | | {row['outcome']} | |")
            continue
        lines.append(f"| {row['case']} | {row['file MB']:.1f} | {row['seconds']:.0f} | {row['idle MB']:.0f} | "
                     f"{row['peak MB']:.0f} | {row['peak - idle MB']:.0f} | {row['after MB']:.0f} | "
                     f"{row['other session answers']}, {row['missed']}, {row['slowest s']:.2f} | "
                     f"{row['outcome'][:150]}{' (guard tripped)' if row['guard tripped'] else ''} | {row['cli']} |")
    text = "\n".join(lines)
    print(text)
    if set(args.cases) == set(CASES):
        (ROOT / "benchmarks" / "results" / "upload_memory.txt").write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
