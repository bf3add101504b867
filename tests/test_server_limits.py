"""What a browser (or anything that speaks its protocol) can make the dashboard server hold (found attacking main).

The server accepted a websocket message of up to ``server.maxMessageSize`` (1,024 MB) into memory before Streamlit
refused anything over 25 MB: one 950 MB message took it from 79 MB to 1.94 GB. ``deem_studio.uploads.
install_message_limit`` bounds the message before its body is read."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import pytest

from deem_studio import uploads

MB = 1 << 20


def test_a_browser_message_is_bounded_by_what_streamlit_accepts(monkeypatch):
    uvicorn = pytest.importorskip("uvicorn")
    from streamlit import config

    server_config = uvicorn.Config(app=lambda *a: None, ws_max_size=1024 * 1_000_000)
    monkeypatch.setattr(uploads, "_MESSAGE_LIMIT", [])
    limit = uploads.install_message_limit()
    expected = int(config.get_option("server.maxWidgetStateSize")) * 1_000_000 + MB
    assert limit == expected
    assert server_config.ws_max_size == expected  # was 1,024 MB: every new connection now gets this
    smaller = uvicorn.Config(app=lambda *a: None, ws_max_size=MB)
    assert uploads.install_message_limit() == expected  # once per process; a smaller limit is never raised
    assert smaller.ws_max_size == MB


def test_the_server_reads_small_messages_from_its_start_and_sends_large_ones(monkeypatch):
    # the read limit was set at the first page only: a connection opened before kept 1,024 MB (a 400 MB message
    # raised the server from 422 MB to 1,245 MB; attack round 5). The setting uvicorn takes at start is now small,
    # and what the server sends (tables, charts) is allowed Streamlit's default once the app runs
    import tomllib

    from streamlit.runtime import runtime_util

    root = Path(__file__).resolve().parents[1]
    settings = tomllib.loads((root / ".streamlit" / "config.toml").read_text())["server"]
    assert settings["maxMessageSize"] * 1_000_000 <= 30 * 1_000_000
    assert settings["maxMessageSize"] * 1_000_000 >= 25 * 1_000_000 + MB  # what Streamlit itself accepts still fits
    monkeypatch.setattr(runtime_util, "_max_message_size_bytes", settings["maxMessageSize"] * 1_000_000)
    monkeypatch.setattr(uploads, "_MESSAGE_LIMIT", [])
    uploads.install_message_limit()
    assert runtime_util.get_max_message_size_bytes() == uploads.SEND_LIMIT_BYTES == 200 * 1_000_000


def _rss_mib(pid: int, field: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith(field)) >> 10


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the server's memory from /proc")
def test_a_huge_websocket_message_costs_the_live_server_nothing(tmp_path):
    websockets = pytest.importorskip("websockets")
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    from tests.test_browser import LiveServer

    async def run_page(url: str) -> None:
        """A first script run (what a browser's first page load does): app.py installs its limits."""
        async with websockets.connect(url, max_size=None) as ws:
            rerun = BackMsg()
            rerun.rerun_script.query_string = ""
            rerun.rerun_script.page_script_hash = ""
            await ws.send(rerun.SerializeToString())
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                message = ForwardMsg()
                message.ParseFromString(await asyncio.wait_for(ws.recv(), 90))
                if message.WhichOneof("type") == "script_finished":
                    return
            raise AssertionError("the first page never finished")

    async def send_huge(url: str, size: int) -> str:
        async with websockets.connect(url, max_size=None) as ws:
            try:
                await ws.send(b"\x0a" + bytes(size))
                await asyncio.wait_for(ws.recv(), 60)
            except websockets.ConnectionClosed as exc:
                return str(exc)
        return "not closed"

    with LiveServer(tmp_path / "runs") as server:
        url = f"ws://127.0.0.1:{server.port}/_stcore/stream"
        pid = server.process.pid
        before = _rss_mib(pid, "VmHWM")
        # before any page ran (a freshly started server): refused from its header too (attack round 5)
        assert "1009" in asyncio.run(send_huge(url, 300 * MB))
        held = _rss_mib(pid, "VmHWM") - before  # the process's peak
        assert held < 100, f"the server held {held} MiB of a message sent before the first page"
        asyncio.run(run_page(url))
        before = peak = _rss_mib(pid)
        done = threading.Event()

        def watch() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _rss_mib(pid))
                time.sleep(0.05)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            reason = asyncio.run(send_huge(url, 300 * MB))
        finally:
            done.set()
            watcher.join()
        print(f"server RSS {before} MiB before, {peak} MiB peak while a 300 MB message was sent: {reason}")
        assert "1009" in reason  # message too big
        assert peak - before < 100, f"the server held {peak - before} MiB of a refused message"
        asyncio.run(run_page(url))  # and it keeps serving
