"""Browser messages the pages never send, against a live ``deem-studio`` server (attack round 64).

1. ``file_urls_request`` naming 1,450,000 files (2.9 MB, under the message limit), sent three times on one
   connection: Streamlit built a uuid and two URLs per name on the serving thread (the attack measured 10.6 s frozen
   and 931 -> 2,006 MB); now answered with no address past ``uploads.MAX_FILE_URLS_PER_REQUEST`` names.
2. A burst of 200 ``load_git_info`` messages: Streamlit ran ``git`` for each on the serving thread (2-17 s frozen on
   a checkout with a GitHub remote) and sent the repository, branch and untracked file names; now nothing.

Columns: the server's resident size before and at its peak (20 Hz samples of the process), the longest wait of
``/_stcore/health`` polled every 0.1 s meanwhile, what came back.

Usage: ``python benchmarks/message_kinds.py``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_browser import LiveServer  # noqa: E402


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0


def measured(server: LiveServer, attack) -> tuple[float, float, float, str]:
    pid, stop = server.process.pid, threading.Event()
    before, peak, waits = rss_mb(pid), [0.0], []

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mb(pid))
            started = time.perf_counter()
            try:
                urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=60).read()
            except OSError:
                pass
            waits.append(time.perf_counter() - started)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        outcome = asyncio.run(attack(f"ws://127.0.0.1:{server.port}/_stcore/stream"))
        time.sleep(2)
    finally:
        stop.set()
        watcher.join()
    return before, peak[0], max(waits), outcome


async def file_urls(url: str) -> str:
    import websockets  # noqa: PLC0415
    from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: PLC0415
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: PLC0415

    message = BackMsg()
    message.file_urls_request.request_id = "x"
    message.file_urls_request.file_names.extend([""] * 1_450_000)
    raw = message.SerializeToString()
    said = []
    async with websockets.connect(url, max_size=None) as ws:
        for _ in range(3):
            await ws.send(raw)
        while len(said) < 3:
            answer = ForwardMsg()
            answer.ParseFromString(await asyncio.wait_for(ws.recv(), 120))
            if answer.WhichOneof("type") == "file_urls_response":
                said.append(f"{len(answer.file_urls_response.file_urls):,} addresses")
    return f"{len(raw) / 1e6:.1f} MB x 3: " + ", ".join(said)


async def git_info(url: str) -> str:
    import websockets  # noqa: PLC0415
    from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: PLC0415
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: PLC0415

    message = BackMsg()
    message.load_git_info = True
    kinds = set()
    async with websockets.connect(url, max_size=None) as ws:
        for _ in range(200):
            await ws.send(message.SerializeToString())
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline:
            try:
                answer = ForwardMsg()
                answer.ParseFromString(await asyncio.wait_for(ws.recv(), 1))
                kinds.add(answer.WhichOneof("type"))
            except asyncio.TimeoutError:
                continue
            except Exception:  # noqa: BLE001 (closed for its pace)
                break
    return "200 sent; git information sent back: " + ("yes" if "git_info_changed" in kinds else "none")


def main() -> int:
    lines = [f"# python benchmarks/message_kinds.py; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
             f"{os.cpu_count()} CPU(s); load average {os.getloadavg()[0]:.1f}",
             "| message | RSS before MB | RSS peak MB | longest /_stcore/health wait s | outcome |", "|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as folder, LiveServer(Path(folder) / "runs", launcher=True) as server:
        for name, attack in (("file_urls_request", file_urls), ("load_git_info", git_info)):
            before, peak, wait, outcome = measured(server, attack)
            lines.append(f"| {name} | {before:.0f} | {peak:.0f} | {wait:.2f} | {outcome} |")
            print(lines[-1], flush=True)
    (ROOT / "benchmarks" / "results" / "message_kinds.txt").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
