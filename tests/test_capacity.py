"""The shared server's budgets (found attacking main): uploaded bytes per session and in all, checked before a
request's body is read; data sets held in memory; one read and one timing probe at a time; a run opened by many
sessions held once. Browser-level checks of the same: ``tests/test_browser_capacity.py``."""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from deem_core.data.annotations import AnnotationSet, DataError
from deem_studio import capacity, estimate, uploads
from deem_studio.runs import LoadedRun, RunStore

ROOT = Path(__file__).resolve().parents[1]
MB = 1 << 20


def annotations(n_tasks: int = 200, n_workers: int = 5, n_classes: int = 3, prefix: str = "t") -> AnnotationSet:
    rng = np.random.default_rng(0)
    rows = [(f"{prefix}{t}", f"w{w}", int(rng.integers(0, n_classes))) for t in range(n_tasks) for w in range(n_workers)]
    return AnnotationSet.from_long(pd.DataFrame(rows, columns=["task", "worker", "label"]))


# --------------------------------------------------------------------------- uploads
def test_upload_guard_bounds_each_session_and_the_server():
    guard = uploads.UploadGuard(per_session=100 * MB, total=150 * MB, max_file=80 * MB)
    guard.admit("a", 60 * MB)
    guard.added("a", "f1", 60 * MB)
    with pytest.raises(uploads.CapacityError, match="this browser session already holds 60 MiB"):
        guard.admit("a", 50 * MB)  # refused before its body is read
    streaming = guard.admit("b", 60 * MB)
    guard.grow(streaming, 60 * MB)  # what has come counts for the server while it streams in
    with pytest.raises(uploads.CapacityError, match="the server holds 120 MiB of uploaded files"):
        guard.admit("c", 40 * MB)
    guard.added("b", "f2", 60 * MB)
    guard.removed("a", "f1")  # the user took the file out of the uploader
    guard.admit("c", 40 * MB)
    guard.added("c", "f3", 40 * MB)
    guard.closed("b")  # the session ended
    assert guard.held() == 40 * MB
    # an unknown size (no Content-Length, chunked) is let in where the largest file Streamlit accepts fits
    chunked = guard.admit("d", None)
    guard.grow(chunked, 80 * MB)
    assert guard.held() == 120 * MB
    with pytest.raises(uploads.CapacityError):
        guard.admit("e", None)
    with pytest.raises(uploads.CapacityError, match="this browser session already holds 80 MiB"):
        guard.grow(chunked, 40 * MB)  # what comes past a budget is refused as it comes


def test_an_upload_that_stops_arriving_frees_its_reservation():
    guard = uploads.UploadGuard(per_session=100 * MB, total=100 * MB, max_file=80 * MB, reserve_seconds=0.05)
    guard.grow(guard.admit("a", 80 * MB), 80 * MB)
    with pytest.raises(uploads.CapacityError):
        guard.admit("b", 80 * MB)
    time.sleep(0.1)
    guard.admit("b", 80 * MB)


def test_a_declared_size_holds_nothing_until_its_bytes_come():
    # attack round 32: four requests declaring the two parties' halves of the budget and sending 20 KB a second
    # held all of it for hours; every other visitor's upload was refused
    guard = uploads.UploadGuard(per_session=60 * MB, total=120 * MB, max_file=50 * MB)
    drips = [guard.admit(f"tab{i}", 50 * MB, party) for i, party in enumerate(["203.0.113.5", "198.51.100.7"])]
    for entry in drips:
        guard.grow(entry, 20_000)  # what came in the first second
    assert guard.held() == 40_000
    victim = guard.admit("victim", 50 * MB, "2001:db8::/64")  # a third visitor is served
    guard.grow(victim, 50 * MB)
    guard.added("victim", "f1", 50 * MB)
    assert guard.held() == 50 * MB + 40_000


def test_a_file_stored_without_a_reservation_is_counted_too():
    """Streamlit stores files through add_file: one that does not fit is refused there as well."""
    guard = uploads.UploadGuard(per_session=100 * MB, total=1000 * MB, max_file=80 * MB)
    guard.added("a", "f1", 70 * MB)
    guard.added("a", "f1", 70 * MB)  # the same file id again replaces it
    with pytest.raises(uploads.CapacityError):
        guard.added("a", "f2", 70 * MB)
    assert guard.held() == 70 * MB


class _Request:
    def __init__(self, length: int):
        self.headers = {"content-length": str(length)}


def _upload_handler(runtime, session_id: str, length: int) -> bool:
    """What Streamlit's upload handler does first: it holds the request and asks whether the session is active."""
    request = _Request(length)  # noqa: F841 - the guard reads the size of the body from here
    return runtime.is_active_session(session_id)


class _FakeRuntime:
    def __init__(self, manager):
        self.uploaded_file_mgr = manager

    @staticmethod
    def is_active_session(session_id: str) -> bool:
        return session_id != "gone"


def test_the_guard_sits_between_streamlits_upload_handler_and_its_file_store(monkeypatch):
    from starlette.exceptions import HTTPException
    from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
    from streamlit.runtime.uploaded_file_manager import UploadedFileRec

    monkeypatch.setattr(uploads, "_UPLOAD_GUARD", [])
    monkeypatch.setenv("DEEM_MAX_UPLOAD_BYTES_PER_SESSION", "3.5M")
    manager = MemoryUploadedFileManager("/_stcore/upload_file")
    runtime = _FakeRuntime(manager)
    guard = uploads.install_upload_guard(runtime)
    assert guard is not None and uploads.install_upload_guard(runtime) is guard  # once per process
    assert runtime.is_active_session("gone") is False
    for i in range(3):
        assert _upload_handler(runtime, "s", MB + 200)  # before the body is read: its size from the request
        manager.add_file("s", UploadedFileRec(f"f{i}", "x.csv", "text/csv", b"x" * MB))
    with pytest.raises(HTTPException) as refused:
        _upload_handler(runtime, "s", MB + 200)
    assert refused.value.status_code == 413 and "already holds 3 MiB" in refused.value.detail
    with pytest.raises(HTTPException):  # a file id no widget asked for, stored directly
        manager.add_file("s", UploadedFileRec("orphan", "x.csv", "text/csv", b"x" * MB))
    assert len(manager.get_files("s", ["f0", "f1", "f2", "orphan"])) == 3
    manager.remove_session_files("s")
    assert guard.held() == 0 and _upload_handler(runtime, "s", MB)


def test_one_visitor_reserves_at_most_half_the_upload_budget():
    """Three tabs of one visitor reserved the whole budget and every other visitor's upload was refused for 15
    minutes (attack round 30): a party (an address; the server's own machine) holds at most half, stored and
    reserved."""
    guard = uploads.UploadGuard(per_session=60 * MB, total=120 * MB, max_file=50 * MB)
    guard.grow(guard.admit("tab1", 50 * MB, "203.0.113.5"), 50 * MB)
    second = guard.admit("tab2", 10 * MB, "203.0.113.5")
    guard.grow(second, 10 * MB)
    with pytest.raises(uploads.CapacityError, match="the uploads of your tabs already hold 60 MiB of the 60 MiB"):
        guard.admit("tab3", 10 * MB, "203.0.113.5")
    with pytest.raises(uploads.CapacityError, match="already hold 60 MiB"):
        guard.grow(second, 1)  # nor a byte more as it comes
    guard.admit("victim", 50 * MB, "198.51.100.7")  # another visitor is served
    guard.added("tab1", "f1", 50 * MB)  # a stored file counts for its party too
    guard.closed("tab2")
    guard.admit("tab3", 10 * MB, "203.0.113.5")
    with pytest.raises(uploads.CapacityError, match="already hold 50 MiB"):
        guard.added("tab3", "f2", 20 * MB)  # larger than it said


def test_a_declared_size_streamlit_refuses_reserves_nothing():
    """A request declaring more than the largest file is refused by Streamlit at once ("File too large"); each
    reserved the largest file for 15 minutes (attack round 30)."""
    guard = uploads.UploadGuard(per_session=60 * MB, total=100 * MB, max_file=50 * MB)
    for _ in range(5):
        assert guard.admit("a", 2 << 30, "203.0.113.5") is None
    assert guard.held() == 0
    guard.admit("b", 50 * MB, "198.51.100.7")


@contextlib.contextmanager
def _upload_server(runtime, manager):
    """Streamlit's own upload routes, behind the guard, served by uvicorn on a free port of 127.0.0.1."""
    import asyncio  # noqa: PLC0415
    import socket  # noqa: PLC0415

    import uvicorn  # noqa: PLC0415
    from starlette.applications import Starlette  # noqa: PLC0415
    from streamlit.web.server.starlette.starlette_routes import create_upload_routes  # noqa: PLC0415

    routes = create_upload_routes(runtime, manager, "")
    guard = uploads.install_upload_guard(runtime, routes=routes)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=routes), log_level="critical", lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.02)
        yield guard, sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _raw_put(port: int, path: str, length: int, body: bytes = b"") -> str:
    import socket  # noqa: PLC0415

    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(f"PUT {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=zz\r\n"
                     f"Content-Length: {length}\r\n\r\n".encode() + body)
        conn.settimeout(0.5)
        try:
            return conn.recv(200).decode(errors="replace").split("\r\n")[0]
        except TimeoutError:
            return ""  # the server waits for the body: the client closes


def test_an_upload_request_that_ends_without_a_file_keeps_no_reservation(monkeypatch):
    """A request closed before its body, or refused, kept its reservation for 15 minutes (attack round 30): a real
    HTTP request to Streamlit's upload route releases what it reserved when it ends without a file."""
    from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
    from streamlit.web.server.starlette import starlette_routes

    monkeypatch.setattr(uploads, "_UPLOAD_GUARD", [])
    monkeypatch.setattr(starlette_routes, "is_xsrf_enabled", lambda: False)
    monkeypatch.setenv("DEEM_MAX_UPLOAD_BYTES", "8M")
    monkeypatch.setenv("DEEM_MAX_UPLOAD_BYTES_PER_SESSION", "8M")
    manager = MemoryUploadedFileManager("/_stcore/upload_file")
    with _upload_server(_FakeRuntime(manager), manager) as (guard, port):
        assert _raw_put(port, "/_stcore/upload_file/s/f1", 3 * MB) == ""  # closed without a byte of its body
        deadline = time.monotonic() + 5
        while guard.held() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert guard.held() == 0
        assert _raw_put(port, "/_stcore/upload_file/s/f2", 5 << 30).startswith("HTTP/1.1 413")
        assert guard.held() == 0
        body = b"--zz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\nx,y\r\n--zz--\r\n"
        assert _raw_put(port, "/_stcore/upload_file/s/f3", len(body), body).startswith("HTTP/1.1 204")
        assert guard.held() == 3  # the stored file only
        assert len(manager.get_files("s", ["f1", "f2", "f3"])) == 1


def test_an_upload_whose_body_stops_or_drips_is_ended_and_keeps_no_reservation(monkeypatch):
    """Attack round 31: four requests of 740 MiB declared, sending a line a minute, held 2.89 of the 2.94 GiB upload
    budget for 15 minutes at a time. A body part must come within the stall time, and past it on average at the
    least pace: a request that stops or drips is answered 408 and releases its reservation."""
    import socket  # noqa: PLC0415

    from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
    from streamlit.web.server.starlette import starlette_routes

    monkeypatch.setattr(uploads, "_UPLOAD_GUARD", [])
    monkeypatch.setattr(starlette_routes, "is_xsrf_enabled", lambda: False)
    monkeypatch.setattr(uploads, "UPLOAD_STALL_SECONDS", 0.6)
    monkeypatch.setattr(uploads, "MIN_UPLOAD_BYTES_PER_SECOND", 100_000)
    monkeypatch.setenv("DEEM_MAX_UPLOAD_BYTES", "8M")
    monkeypatch.setenv("DEEM_MAX_UPLOAD_BYTES_PER_SESSION", "8M")
    manager = MemoryUploadedFileManager("/_stcore/upload_file")
    head = (b"PUT /_stcore/upload_file/s/%s HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=zz\r\n"
            b"Content-Length: %d\r\n\r\n--zz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\n")
    with _upload_server(_FakeRuntime(manager), manager) as (guard, port):
        for name, drip in ((b"f1", False), (b"f2", True)):
            with socket.create_connection(("127.0.0.1", port)) as conn:
                conn.sendall(head % (name, 3 * MB))
                started, answer = time.monotonic(), b""
                conn.settimeout(0.1)
                while time.monotonic() - started < 5 and not answer:
                    if drip:
                        conn.sendall(b"x,y\r\n")  # 5 bytes every 0.1 s: a part comes, far too slowly
                    try:
                        answer = conn.recv(200)
                    except TimeoutError:
                        assert guard.held() < 3 * MB  # what came is held while it waits, not what it declared
                assert answer.startswith(b"HTTP/1.1 408"), answer
                assert time.monotonic() - started < 3
            deadline = time.monotonic() + 5
            while guard.held() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert guard.held() == 0
        body = b"--zz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\nx,y\r\n--zz--\r\n"
        assert _raw_put(port, "/_stcore/upload_file/s/f3", len(body), body).startswith("HTTP/1.1 204")  # a whole one


def test_streamlit_run_s_upload_route_is_found_at_the_first_page(monkeypatch):
    """``streamlit run app.py`` installs the guard at the first page, when the server's routes exist already: its
    upload route is found among the live objects and releases what a request did not store (attack round 30)."""
    from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
    from streamlit.web.server.starlette.starlette_routes import create_upload_routes

    monkeypatch.setattr(uploads, "_UPLOAD_GUARD", [])
    manager = MemoryUploadedFileManager("/_stcore/upload_file")
    routes = create_upload_routes(_FakeRuntime(manager), manager, "")
    assert uploads.install_upload_guard(_FakeRuntime(manager)) is not None
    assert all(route.app.__wrapped__ for route in routes)


# --------------------------------------------------------------------------- loaded data
def test_the_ledger_counts_data_sets_until_their_last_holder_lets_go():
    book = capacity.DataLedger(budget=10 * MB)
    first = annotations(prefix="a")
    size = book.admit(first)
    assert size == capacity.data_bytes(first) > 0 and book.held() == size
    assert book.admit(first) == size and book.held() == size  # counted once
    second = annotations(prefix="b")
    small = capacity.DataLedger(budget=int(size * 1.5))
    small.admit(first)
    with pytest.raises(capacity.CapacityError, match="the server already holds"):
        small.admit(second)
    small.admit(second, replacing=first)  # a session swapping its data set
    del first
    gc.collect()
    assert small.held() == size


def test_a_data_set_the_server_has_no_room_for_is_refused_on_the_page(runs_dir, monkeypatch):
    monkeypatch.setattr(capacity, "_LEDGER", [capacity.DataLedger(budget=1000)])
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    data = pd.read_csv(ROOT / "sample_data" / "condind.csv")
    at.file_uploader(key="upload_annotations").set_value(("big.csv", data.to_csv(index=False).encode(),
                                                          "text/csv")).run()
    at.button(key="load_files").click().run()
    assert not at.exception
    errors = " ".join(str(e.value) for e in at.error).replace("\\", "")
    assert "this data set needs" in errors and "try again later" in errors, errors
    assert at.session_state["dataset"] is None if "dataset" in at.session_state else True


def test_a_run_opened_by_many_sessions_is_held_once(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create("train", {}, data=annotations(), status="finished")
    got = []
    threads = [threading.Thread(target=lambda: got.append(capacity.run_data(store, run_id))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(data) for data, _ in got}) == 1
    assert got[0][0].n_tasks == 200


def test_reads_wait_for_a_free_slot():
    with capacity.reading():
        with pytest.raises(capacity.CapacityError, match="busy reading other users' files"):
            with capacity.reading(wait=0.05):
                pass
    with capacity.reading(wait=0.05):
        pass


def test_a_small_read_never_waits_behind_a_large_one():
    """Attack round 62: two or three tabs re-pressing "Load" on a 63 MB file held the one read slot and another
    visitor's 13 KB load waited 31-33 s. Reads of files under DEEM_READ_LARGE_BYTES have a line of their own."""
    large, small = capacity.read_large_bytes(), 13_000
    with capacity.reading(size=large, parties=("attacker",)):
        started = time.monotonic()
        with capacity.reading(wait=0.05, size=small, parties=("visitor",)):
            pass
        assert time.monotonic() - started < 0.05
        with pytest.raises(capacity.CapacityError, match="busy reading other users' files"):
            with capacity.reading(wait=0.05, size=large, parties=("visitor",)):
                pass
        with pytest.raises(capacity.CapacityError, match="busy reading"):  # (a size not known: a large read)
            with capacity.reading(wait=0.05):
                pass
    with capacity.reading(size=small):  # two small reads: one line
        with pytest.raises(capacity.CapacityError, match="busy reading"):
            with capacity.reading(wait=0.05, size=small):
                pass


def test_a_compressed_upload_is_sized_by_the_text_it_holds():
    """A 4 MB gzip of 60 MB of CSV is a large read (its trailer's count), Parquet one of unknown size."""
    import gzip
    import io

    from pages import common

    text = b"task,worker,label\n" + b"1,a,x\n" * 200_000
    packed = gzip.compress(text)
    assert len(packed) < len(text) // 50
    assert common.upload_bytes(io.BytesIO(packed)) == len(text)
    assert common.upload_bytes([io.BytesIO(text[:100]), io.BytesIO(packed)]) == 100 + len(text)
    assert common.upload_bytes(io.BytesIO(b"PAR1" + b"\0" * 100 + b"PAR1")) is None
    assert common.upload_bytes(io.BytesIO(b"a")) == 1
    assert common.upload_bytes(object()) is None  # (not an upload: a large read)
    held = io.BytesIO(text[:10])
    common.upload_bytes(held)
    held.write(b"more")  # (the buffer let go of: the upload can still grow)


def test_a_small_read_that_outgrows_its_size_is_read_again_in_the_large_line(monkeypatch):
    """A gzip's trailer counts the text of its last member only: two members concatenated (or a forged trailer) say
    less than they hold. Sized small, such a read runs under provisional limits (twice its size, SMALL_READ_SECONDS)
    in the line of small reads and, past them, is read again in the line of large ones, so that it never holds the
    small line longer than that."""
    import gzip
    import io

    from deem_core.data.annotations import ReadOutgrown
    from deem_core.data.formats.reading import read_dataset
    from pages import common

    body = "".join(f"t{t},w{w},{'xy'[(t + w) % 2]}\n" for t in range(60_000) for w in range(3)).encode()
    packed = gzip.compress(b"task,worker,label\n" + body) + gzip.compress(b"t-last,w0,x\n")  # two members
    assert 2 * common.upload_bytes(io.BytesIO(packed)) + 2**20 < len(body)  # (its trailer says 12 bytes)
    with pytest.raises(ReadOutgrown, match="holds more than"):
        read_dataset(io.BytesIO(packed), limits=capacity.small_read_limits(common.upload_bytes(io.BytesIO(packed))))
    lines = []
    real = capacity.reading

    def watched(*args, **kwargs):
        lines.append(kwargs.get("size"))
        return real(*args, **kwargs)

    monkeypatch.setattr(capacity, "reading", watched)
    given = []

    def read(limits):
        given.append(limits)
        return read_dataset(io.BytesIO(packed), limits=limits)

    data = common.read_uploads(io.BytesIO(packed), read).data
    assert data.n_tasks == 60_001 and data.n_annotations == 180_001
    assert lines == [common.upload_bytes(io.BytesIO(packed)), None]  # the small line, then the large one
    assert given[0].provisional and given[0].max_seconds == capacity.SMALL_READ_SECONDS and given[1] is None
    # a small file is read once, in the small line; a file past the server's own limits is refused as before
    lines.clear()
    assert common.read_uploads(io.BytesIO(b"task,worker,label\n1,a,x\n"),
                               lambda limits: read_dataset(io.BytesIO(b"task,worker,label\n1,a,x\n"),
                                                           limits=limits)).data.n_tasks == 1
    assert len(lines) == 1 and lines[0] is not None
    monkeypatch.setenv("DEEM_MAX_INPUT_BYTES", "1M")
    with pytest.raises(DataError, match="the input limit") as refused:
        common.read_uploads(io.BytesIO(packed), read)
    assert not isinstance(refused.value, ReadOutgrown)


def test_a_read_that_waits_for_its_slot_says_so(monkeypatch):
    """Walkthrough 122: a read waiting its turn showed only the spinner's "reading the files". The page says how many
    reads run or wait before it, and clears the line once read."""
    import io

    from pages import common

    said = []

    class Slot:
        def caption(self, text):
            said.append(text)

        def empty(self):
            said.append(None)

    monkeypatch.setattr(common.st, "empty", Slot)
    body = b"task,worker,label\n1,a,x\n"
    assert common.read_uploads(io.BytesIO(body), lambda limits: 1) == 1 and said == [None]  # nothing ahead: no line
    said.clear()
    done = threading.Event()
    with capacity.reading(size=10):  # another visitor's small read
        assert capacity.reads_ahead(10) == 1 and capacity.reads_ahead(None) == 0
        thread = threading.Thread(target=lambda: (common.read_uploads(io.BytesIO(body), lambda limits: 1),
                                                  done.set()))
        thread.start()
        time.sleep(0.3)
        assert not done.is_set()
    thread.join(10)
    assert done.is_set()
    assert said == ["Waiting for the server's read slot: 1 read of other files runs or waits before this one (one "
                    "small file is read at a time).", None]


def test_a_slow_small_read_outgrows_its_seconds(monkeypatch):
    import io

    from deem_core.data.annotations import ReadOutgrown
    from deem_core.data.formats.reading import read_dataset

    monkeypatch.setattr(capacity, "SMALL_READ_SECONDS", 1e-9)
    text = b"task,worker,label\n" + b"".join(b"%d,w,x\n" % t for t in range(50_000))
    with pytest.raises(ReadOutgrown, match="read for more than"):
        read_dataset(io.BytesIO(text), limits=capacity.small_read_limits(len(text)))
    assert read_dataset(io.BytesIO(text)).data.n_tasks == 50_000  # (under the server's own limits it reads)


def test_a_free_read_slot_goes_to_the_party_that_read_least(monkeypatch):
    """A slot went to whichever waiting thread woke first: the visitor who re-pressed "Load" in three tabs kept
    getting it. Now the waiting read whose parties read least in the last hour goes first, then the oldest."""
    monkeypatch.setattr(capacity, "_SPENT", {"tabs": [(time.monotonic(), 30.0)]})
    order, holding = [], threading.Event()
    release = threading.Event()

    def hold():
        with capacity.reading(parties=("tabs",)):
            holding.set()
            release.wait(5)
            order.append("first")

    def read(who):
        with capacity.reading(parties=(who,)):
            order.append(who)

    threads = [threading.Thread(target=hold)]
    threads[0].start()
    assert holding.wait(5)
    for who in ("tabs", "tabs", "visitor"):  # the tabs press first, the visitor last
        threads.append(threading.Thread(target=read, args=(who,)))
        threads[-1].start()
        time.sleep(0.05)
    assert capacity._read_line().in_flight() == 4  # noqa: SLF001
    release.set()
    for thread in threads:
        thread.join(10)
    assert order == ["first", "visitor", "tabs", "tabs"]
    assert capacity._read_line().in_flight() == 0  # noqa: SLF001
    assert capacity.read_seconds_spent("visitor") >= 0  # (counted for every party named)
    assert "visitor" in capacity._SPENT  # noqa: SLF001


def test_reads_past_the_waiting_places_are_refused_at_once(monkeypatch):
    monkeypatch.setattr(capacity, "MAX_WAITING_READS", 1)
    ready = threading.Event()

    def wait_for_slot():
        ready.set()
        with contextlib.suppress(capacity.CapacityError):
            with capacity.reading(wait=0.5):
                pass

    with capacity.reading():
        waiter = threading.Thread(target=wait_for_slot)
        waiter.start()
        ready.wait(5)
        time.sleep(0.05)
        started = time.monotonic()
        with pytest.raises(capacity.CapacityError, match="busy reading"):
            with capacity.reading(wait=5):
                pass
        assert time.monotonic() - started < 1
    waiter.join(5)
    assert capacity._read_line().in_flight() == 0  # noqa: SLF001


def test_one_party_cannot_fill_the_waiting_places(monkeypatch):
    """Attack round 63: sixteen browser contexts of one address, each previewing a 10 KB file behind one slow read,
    took every waiting place of the line and another visitor's read was refused in 0.5 s. A party (workspace,
    address) has at most READS_WAITING_PER_PARTY reads waiting in a line."""
    monkeypatch.setattr(capacity, "MAX_WAITING_READS", 4)
    started, release = threading.Event(), threading.Event()
    got = []

    def hold():
        with capacity.reading(size=100, parties=("slow",)):
            started.set()
            release.wait(5)

    def wait(parties):
        try:
            with capacity.reading(size=100, parties=parties, wait=5):
                got.append(parties[-1])
        except capacity.CapacityError as exc:
            got.append(str(exc))

    threads = [threading.Thread(target=hold)]
    threads[0].start()
    assert started.wait(5)
    for n in range(capacity.READS_WAITING_PER_PARTY):  # fresh workspaces of one address
        threads.append(threading.Thread(target=wait, args=((f"workspace {n}", "203.0.113.9"),)))
        threads[-1].start()
    time.sleep(0.2)
    with pytest.raises(capacity.CapacityError, match=f"you have {capacity.READS_WAITING_PER_PARTY} reads waiting"):
        with capacity.reading(size=100, parties=("workspace x", "203.0.113.9"), wait=5):
            pass
    threads.append(threading.Thread(target=wait, args=(("victim", "198.51.100.7"),)))  # another visitor waits
    threads[-1].start()
    time.sleep(0.2)
    release.set()
    for thread in threads:
        thread.join(10)
    assert "198.51.100.7" in got and all("reads waiting" not in str(g) for g in got)


def test_a_small_run_opens_while_a_large_file_is_read(tmp_path):
    """A link visitor's small run is read in the line of small reads (its folder's bytes)."""
    store = RunStore(tmp_path)
    run_id = store.create("train", {}, data=annotations(), status="finished")
    assert 0 < capacity.run_bytes(store, run_id) < capacity.read_large_bytes()
    assert capacity.run_bytes(store, "0" * 16) == 0 and capacity.run_bytes(store, "../x") is None
    with capacity.reading(size=capacity.read_large_bytes()):
        done = []
        thread = threading.Thread(target=lambda: done.append(capacity.run_data(store, run_id)))
        thread.start()
        thread.join(10)
        assert done and done[0][0].n_tasks == 200


def test_an_address_has_a_share_of_the_reading_time(monkeypatch):
    """One visitor chaining slow uploads (245 s each) kept everyone else's loads failing after their wait (attack
    round 9): an address may hold the read slots DEEM_MAX_READ_SECONDS_PER_CLIENT seconds an hour."""
    monkeypatch.setenv("DEEM_MAX_READ_SECONDS_PER_CLIENT", "0.2")
    monkeypatch.setattr(capacity, "_SPENT", {})
    with capacity.reading(party="203.0.113.5"):
        time.sleep(0.25)
    assert capacity.read_seconds_spent("203.0.113.5") >= 0.25
    with pytest.raises(capacity.CapacityError, match=r"this address has read files for 1 min in the last hour"):
        with capacity.reading(party="203.0.113.5"):
            pass
    with capacity.reading(party="198.51.100.7"):  # another address reads
        pass
    with capacity.reading():  # the server's own machine has no share
        pass
    monkeypatch.setattr(capacity, "READ_WINDOW_SECONDS", 0.1)  # an hour later
    time.sleep(0.15)
    with capacity.reading(party="203.0.113.5"):
        pass
    monkeypatch.setenv("DEEM_MAX_READ_SECONDS_PER_CLIENT", "0")  # 0: no share
    monkeypatch.setattr(capacity, "READ_WINDOW_SECONDS", 3600.0)
    with capacity.reading(party="203.0.113.5"):
        pass


def test_the_data_page_reads_on_the_visitors_share(runs_dir, monkeypatch):
    from pages import common

    monkeypatch.setattr(common, "client_address", lambda: "203.0.113.5")
    monkeypatch.setattr(capacity, "_SPENT", {"203.0.113.5": [(time.monotonic(), 10_000.0)]})
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.file_uploader(key="upload_annotations").set_value(("a.csv", b"task,worker,label\n1,a,x\n", "text/csv")).run()
    assert not at.exception
    shown = " ".join(str(e.value) for e in at.error).replace("\\", "")
    assert "this address has read files for 167 min in the last hour" in shown, shown


def test_the_data_page_loads_a_small_file_while_another_visitor_reads_a_large_one(runs_dir, monkeypatch):
    """The page's preview and "Load these files" go in the line of their files' size, in the session's own place."""
    from pages import common

    monkeypatch.setattr(common, "client_address", lambda: None)  # (the server's own machine)
    seen = []
    real = capacity.reading

    def watched(*args, **kwargs):
        seen.append((kwargs.get("size"), kwargs.get("parties")))
        return real(*args, **kwargs)

    monkeypatch.setattr(capacity, "reading", watched)
    monkeypatch.setattr(capacity, "READ_WAIT_SECONDS", 0.5)
    body = b"task,worker,label\n" + b"".join(b"%d,w%d,%s\n" % (t, w, b"xy"[(t + w) % 2:][:1]) for t in range(30)
                                           for w in range(3))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    with real(size=capacity.read_large_bytes(), parties=("another visitor",)):
        at.file_uploader(key="upload_annotations").set_value(("small.csv", body, "text/csv")).run()
        at.button(key="load_files").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.session_state["dataset"]["data"].n_tasks == 30
    assert (len(body), (at.session_state["ws"], None)) in seen


# --------------------------------------------------------------------------- timing probes
def test_a_probe_too_large_for_a_page_is_not_run():
    """1,000 classes x 8 workers: the probe's model alone needs ~5 GiB (main ran it in the page: > 4 GB,
    100 s, in every session at once); at no batch down to 16 does it fit a probe."""
    rng = np.random.default_rng(0)
    rows = [(t, f"w{w}", f"c{rng.integers(0, 1000)}") for t in range(2500) for w in range(8)]
    data = AnnotationSet.from_long(pd.DataFrame(rows, columns=["task", "worker", "label"]))
    assert data.n_classes == 1000
    started = time.perf_counter()
    with pytest.raises(estimate.ProbeSkipped, match=r"too large to time while you wait .* about [45]\.\d GiB"):
        estimate.estimate_train(data, n_layers=1)
    assert time.perf_counter() - started < 10


def test_one_probe_at_a_time(monkeypatch):
    monkeypatch.setattr(estimate, "PROBE_WAIT_SECONDS", 0.05)
    with estimate._PROBES:  # another session's probe
        with pytest.raises(estimate.ProbeSkipped, match="another timing is running on this server") as skipped:
            estimate.estimate_train(annotations(), epochs=5)
    assert skipped.value.retry
    assert estimate.estimate_train(annotations(), epochs=5).seconds_per_epoch > 0


def test_the_probe_queue_is_bounded_and_a_shared_probe_is_not_cancelled_by_one_session():
    """Attack round 21: 40 sessions queued 40 probes in 30 s and left; another visitor's estimate waited 243 s behind
    them. And one session changing a setting cancelled a probe other sessions shared, sending them to the back."""
    import threading  # noqa: PLC0415

    probes = estimate.BackgroundProbes(max_pending=3)
    release = threading.Event()
    running = probes.ask("running", lambda: release.wait(30))
    shared = probes.ask("shared", lambda: "shared done")
    assert probes.ask("shared", lambda: "not run") is shared  # a second session asks the same
    third = probes.ask("third", lambda: "third done")
    refused = probes.ask("fourth", lambda: "never")  # three pending: the fourth is told the server is busy
    with pytest.raises(estimate.ProbeSkipped, match="this server is timing 3 other jobs right now") as busy:
        refused.result(timeout=1)
    assert busy.value.retry
    probes.withdraw("shared")  # one of its two sessions changed a setting: the other still waits for it
    assert not shared.cancelled()
    probes.withdraw("third")  # its one session left it: cancelled before it began
    assert third.cancelled() and probes.pending() == 2
    release.set()
    assert running.result(timeout=30) and shared.result(timeout=30) == "shared done"
    deadline = time.monotonic() + 10
    while probes.pending() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert probes.pending() == 0 and probes.ask("fourth", lambda: "now run").result(timeout=10) == "now run"


def test_one_party_holds_at_most_two_places_in_the_probe_queue():
    """Attack round 22: eight tabs of one visitor, changing a setting again and again, kept the queue of eight full,
    and another visitor read "no time estimate: this server is timing 8 other jobs right now" for 224 s."""
    import threading  # noqa: PLC0415

    probes = estimate.BackgroundProbes(max_pending=8)
    release = threading.Event()
    held = [probes.ask(f"tab {i}", lambda: release.wait(30), parties=("ws-a", "10.0.0.1")) for i in range(2)]
    for party in (("ws-a", None), ("ws-b", "10.0.0.1")):  # the same workspace, or the same address, is one party
        with pytest.raises(estimate.ProbeSkipped, match="you are timing 2 other settings on this server") as busy:
            probes.ask("tab 3", lambda: "never", parties=party).result(timeout=1)
        assert busy.value.retry
    other = probes.ask("another visitor", lambda: "timed", parties=("ws-c", "10.0.0.2"))
    assert not other.done() and probes.pending() == 3
    assert probes.ask("tab 0", lambda: "not run", parties=("ws-d", "10.0.0.3")) is held[0]  # a shared probe joins
    probes.withdraw("tab 1", ("ws-a", "10.0.0.1"))  # one tab's settings changed: its place is free again
    assert held[1].cancelled()
    third = probes.ask("tab 3", lambda: "now queued", parties=("ws-a", "10.0.0.1"))
    release.set()
    assert other.result(timeout=30) == "timed" and third.result(timeout=30) == "now queued"


def test_one_party_runs_a_bounded_share_of_probe_time():
    """Attack round 28: one visitor typing new settings again and again kept a probe running beside another user's
    job, which ran 2.3-3.0x slower; each party has PROBE_SECONDS_PER_PARTY of probes in a window."""
    import time as clock  # noqa: PLC0415

    probes = estimate.BackgroundProbes(seconds_per_party=0.2, window=60)
    assert probes.ask("first", lambda: clock.sleep(0.3) or "timed", parties=("ws-a", "10.0.0.1")).result(10) == "timed"
    with pytest.raises(estimate.ProbeSkipped, match="your estimates have used 0 s of this server's time") as spent:
        probes.ask("second", lambda: "never", parties=("ws-b", "10.0.0.1")).result(timeout=1)  # the same address
    assert spent.value.retry
    assert probes.ask("third", lambda: "timed", parties=("ws-c", "10.0.0.2")).result(10) == "timed"  # another party
    # a party that stops waiting while its probe runs is charged too (attack round 29: 12 probes, 12.1 s, none counted)
    import threading  # noqa: PLC0415

    going, release = threading.Event(), threading.Event()
    left = estimate.BackgroundProbes(seconds_per_party=0.2, window=60)
    running = left.ask("first", lambda: (going.set(), release.wait(10), clock.sleep(0.3)), parties=("ws-x",))
    going.wait(10)
    left.withdraw("first", ("ws-x",))  # its settings changed
    release.set()
    running.result(10)
    with pytest.raises(estimate.ProbeSkipped, match="your estimates have used"):
        left.ask("second", lambda: "never", parties=("ws-x",)).result(timeout=1)
    late = estimate.BackgroundProbes(seconds_per_party=0.2, window=0.01)  # once the window has passed: timed again
    late.ask("first", lambda: clock.sleep(0.3), parties=("ws-a",)).result(10)
    clock.sleep(0.05)
    assert late.ask("second", lambda: "timed", parties=("ws-a",)).result(10) == "timed"


# --------------------------------------------------------------------------- a run's stored tables
def _run_with_tables(store: RunStore, methods=("mv", "ds", "wawa"), n_classes: int = 4) -> str:
    data = annotations(n_classes=n_classes)
    run_id = store.create("train", {"methods": list(methods)}, data=data)
    for method in methods:
        frame = pd.DataFrame({"label": data.classes[np.arange(data.n_tasks) % n_classes],
                              **{f"p_{c}": np.full(data.n_tasks, 1.0 / n_classes) for c in data.classes}},
                             index=pd.Index(data.tasks, name="task"))
        store.save_result(run_id, method, frame)
    store.update_status(run_id, "finished")
    return run_id


def _spy_reads(monkeypatch) -> list[tuple[str, tuple | None]]:
    import deem_studio.runs as runs_module

    reads, real = [], runs_module._read_table
    monkeypatch.setattr(runs_module, "_read_table", lambda stem, columns=None: reads.append(
        (f"{stem.parent.name}/{stem.name}", None if columns is None else tuple(columns))) or real(stem, columns))
    return reads


def test_a_runs_tables_are_read_once_for_every_session_and_only_what_is_asked(tmp_path, monkeypatch):
    """Every session kept its own copy of every (tasks x classes) table of a run it showed (three sessions on one
    link: 3.3 GB; attack round 14): the labels alone or one method's table, one copy, counted by the ledger."""
    store = RunStore(tmp_path)
    run_id = _run_with_tables(store)
    reads = _spy_reads(monkeypatch)
    labels = capacity.run_tables(store, run_id, columns=("label",))
    assert capacity.run_tables(store, run_id, columns=("label",)) is labels  # the same object for every session
    results = [(name, columns) for name, columns in reads if name.startswith("results/")]
    assert results == [(f"results/{m}", ("label", "agg_label")) for m in ("ds", "mv", "wawa")]
    assert all(list(frame.columns) == ["label"] for frame in labels.results.values())
    assert list(labels.classes) == [0, 1, 2, 3] and labels.gold is None
    reads.clear()
    one = capacity.run_tables(store, run_id, ["mv"])
    assert [name for name, _ in reads if name.startswith("results/")] == ["results/mv"]
    assert list(one.results) == ["mv"] and len(one.results["mv"].columns) == 5
    assert capacity.ledger().held() >= capacity.data_bytes(one) > 4 * 200 * 8  # counted while held
    # a server with no room says so
    monkeypatch.setattr(capacity, "_LEDGER", [capacity.DataLedger(budget=1000)])
    with pytest.raises(capacity.CapacityError, match="the server already holds"):
        capacity.run_tables(store, run_id, ["ds"])


def test_a_links_pages_read_the_labels_and_the_shown_table_once(runs_dir, monkeypatch):
    """Two visitors on one run's link, Results then Train: every method's labels read once, only the shown method's
    table read whole, once; nothing of the run's tables kept in a session."""
    from deem_studio.jobs import get_manager

    store = get_manager(runs_dir).store
    run_id = _run_with_tables(store)
    reads = _spy_reads(monkeypatch)
    sessions = []
    for _ in range(2):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        at.query_params["run"] = run_id
        at.run()
        at.switch_page("pages/results.py").run()
        at.run()  # a click
        at.switch_page("pages/train.py").run()
        assert not at.exception, [e.value for e in at.exception]
        kept = [at.session_state[k] for k in at.session_state if not str(k).startswith("$$")]
        assert not [v for v in kept if isinstance(v, LoadedRun) or (isinstance(v, tuple) and any(
            isinstance(part, LoadedRun) for part in v))]  # (the Train page kept one per session)
        sessions.append(at)
    whole = [name for name, columns in reads if name.startswith("results/") and columns is None]
    labels = [name for name, columns in reads if name.startswith("results/") and columns is not None]
    assert whole == ["results/mv"], whole  # the run's first method, shown on Results
    assert sorted(labels) == ["results/ds", "results/mv", "results/wawa"], labels


def test_kept_tables_never_take_the_room_of_new_data(tmp_path, monkeypatch):
    """The last kept tables, viewed by no one, held 250 MB of a 286 MB budget and a new visitor's upload was refused
    (attack round 15): under pressure they go first, and the oldest goes before a new one is counted."""
    store = RunStore(tmp_path)
    run_id = _run_with_tables(store, methods=("mv", "ds", "wawa", "glad", "mace"), n_classes=50)
    one = capacity.data_bytes(capacity.run_tables(store, run_id, ["mv"]))
    capacity._release_kept_tables()
    book = capacity.DataLedger(budget=int(one * 4.5))
    monkeypatch.setattr(capacity, "_LEDGER", [book])
    for method in ("mv", "ds", "wawa", "glad", "mace"):  # a fifth fits: the first went before it was counted
        capacity.run_tables(store, run_id, [method])
    gc.collect()
    assert len(capacity._TABLES) == capacity.MAX_KEPT_TABLES and book.held() <= 4 * one
    data = annotations(n_tasks=int(one * 2 / 200))  # more than the room the kept tables leave
    assert capacity.data_bytes(data) > book.budget - book.held()
    capacity.admit_data(data)  # admitted: the kept tables were let go of
    assert not capacity._TABLES and book.held() == capacity.data_bytes(data)


def test_a_results_page_keeps_no_table_alive_after_its_run(runs_dir):
    """Each Results session kept its table and two copies of it alive after its page run, through the downloads
    that closed over the page (8 sessions: +620 MB the ledger never saw; attack round 15)."""
    import weakref

    from deem_studio.jobs import get_manager

    store = get_manager(runs_dir).store
    run_id = _run_with_tables(store, n_classes=20)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["run"] = run_id
    at.run()
    at.switch_page("pages/results.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert {b.proto.label for b in at.get("download_button")} >= {"Labels CSV", "Labels Parquet"}
    tables = [weakref.ref(t) for kept in capacity._TABLES.values() for t in kept.results.values()]
    assert len(tables) >= 4  # the labels of the 3 methods and the shown one's table
    capacity._release_kept_tables()
    gc.collect()
    assert [t for t in tables if t() is not None] == []


def test_download_files_are_made_one_at_a_time(monkeypatch):
    """Attack round 23: Streamlit runs every press of a download button on a thread of its own; three link visitors
    pressing "Labels JSON" of a large run together took the server from 1.4 to 6.5 GB."""
    import threading  # noqa: PLC0415
    import time  # noqa: PLC0415

    from deem_studio import capacity  # noqa: PLC0415

    inside, most = [0], [0]
    lock = threading.Lock()

    def build():
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.2)
        with lock:
            inside[0] -= 1
        return b"x"

    monkeypatch.setattr(capacity, "_BUILDS", [])
    held = capacity.building_download(build)
    monkeypatch.setattr(capacity, "MAX_WAITING_DOWNLOADS", 8)  # (three waiting: none refused)
    threads = [threading.Thread(target=held) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert most[0] == 1 and held() == b"x"


def test_a_visitor_s_presses_cannot_hold_every_download_thread(monkeypatch):
    """Attack round 24: eight tabs pressing "Label Studio predictions" (a 6 s file each) waited for the one download
    slot on the threads Streamlit makes every file on, and another visitor's "Run configuration", which takes no
    slot, took 15.0 s, "Labels CSV" 26.8 s. A party has at most DOWNLOADS_PER_PARTY files in the making or waiting,
    the server MAX_WAITING_DOWNLOADS waiting; a refused press fails at once and holds nothing. Attack round 25: at 3 a
    party one visitor held 3 of the 4 places, and a semaphore let the re-presses pass a waiting visitor: the slots
    go in the order of the presses."""
    import threading  # noqa: PLC0415

    from deem_studio import capacity  # noqa: PLC0415
    from deem_studio.uploads import CapacityError  # noqa: PLC0415

    monkeypatch.setattr(capacity, "DOWNLOAD_WAIT_SECONDS", 5.0)
    monkeypatch.setattr(capacity, "_BUILDS", [])  # (a queue of this test's own)
    queue = capacity._download_queue()  # noqa: SLF001
    release, started = threading.Event(), threading.Event()
    order = []

    def slow(name: str):
        def build():
            started.set()
            order.append(name)
            release.wait(10)
            return name.encode()
        return build

    def wait_for(in_flight: int) -> None:
        deadline = time.monotonic() + 5
        while queue.in_flight() < in_flight and time.monotonic() < deadline:
            time.sleep(0.01)
        assert queue.in_flight() == in_flight

    per_party, waiting = capacity.DOWNLOADS_PER_PARTY, capacity.MAX_WAITING_DOWNLOADS
    assert 1 < per_party < 1 + waiting  # (another visitor always finds a place beside one visitor's presses)
    attacker = ("ws-attacker", "10.0.0.9")
    results = []
    threads = []

    def press(name: str, parties: tuple[str, str]) -> None:
        def run() -> None:
            try:
                results.append(capacity.building_download(slow(name), parties)())
            except CapacityError as exc:
                results.append(f"{name} refused: {exc}")
        threads.append(threading.Thread(target=run))
        threads[-1].start()

    press("attacker 0", attacker)
    assert started.wait(5)
    for n in range(1, per_party):  # the same visitor's further presses wait for the slot
        press(f"attacker {n}", attacker)
        wait_for(n + 1)
    t0 = time.monotonic()
    with pytest.raises(CapacityError, match=f"making {per_party} download files already"):  # another tab of theirs
        capacity.building_download(lambda: b"x", ("ws-attacker-2", "10.0.0.9"))()
    assert time.monotonic() - t0 < 1.0  # refused at once, no thread held waiting
    others = 1 + waiting - per_party
    for n in range(others):  # other visitors take the server's waiting places left
        press(f"other {n}", (f"ws-{n}", f"10.0.1.{n}"))
        wait_for(per_party + n + 1)
    # every place taken: a visitor holding none takes the place of the newest waiting press of the visitor holding
    # two (attack round 26: two visitors holding two each kept every other visitor refused)
    press("third", ("ws-third", "10.0.0.8"))
    deadline = time.monotonic() + 5
    while not any("refused" in str(r) for r in results) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert results == [f"attacker {per_party - 1} refused: another visitor's file took your place in the line (you "
                       f"have another in the making); press again when it is done"]
    wait_for(1 + waiting)
    with pytest.raises(CapacityError, match="other download files"):  # no one holds two now: refused
        capacity.building_download(lambda: b"x", ("ws-fourth", "10.0.0.7"))()
    release.set()
    for thread in threads:
        thread.join(10)
    # served in the order pressed: the other visitors' files are not passed by the attacker's later presses
    assert order == ([f"attacker {n}" for n in range(per_party - 1)] + [f"other {n}" for n in range(others)]
                     + ["third"])
    assert sorted(map(str, results[1:])) == sorted(str(name.encode()) for name in order)
    assert queue.in_flight() == 0 and not queue.by_party  # nothing left held
    assert capacity.building_download(lambda: b"again", attacker)() == b"again"


def test_download_slots_go_in_the_order_of_the_presses(monkeypatch):
    """Attack round 25: with a semaphore, a visitor re-pressing as soon as a file came took the slot again before
    another visitor's waiting press ran, which was refused after its 60 s wait."""
    import threading  # noqa: PLC0415

    from deem_studio import capacity  # noqa: PLC0415

    monkeypatch.setattr(capacity, "DOWNLOAD_WAIT_SECONDS", 5.0)
    monkeypatch.setattr(capacity, "_BUILDS", [])
    served, stop = [], threading.Event()

    def attacker() -> None:  # presses again the moment a file comes back
        while not stop.is_set():
            capacity.building_download(lambda: served.append("attacker") or time.sleep(0.05), ("a", "10.0.0.9"))()

    hog = threading.Thread(target=attacker)
    hog.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    capacity.building_download(lambda: served.append("victim"), ("v", "10.0.0.7"))()
    waited = time.monotonic() - t0
    stop.set()
    hog.join(5)
    assert waited < 0.5, waited  # behind one file, not starved
    assert "victim" in served


def test_two_visitors_holding_their_places_do_not_keep_a_third_refused(monkeypatch):
    """Attack round 26: two parties each keeping DOWNLOADS_PER_PARTY presses in the line (pressing again as each
    file came) held all of the server's places, and every press of a third visitor was refused (30 of 30 in 60 s)."""
    import threading  # noqa: PLC0415

    from deem_studio import capacity  # noqa: PLC0415
    from deem_studio.uploads import CapacityError  # noqa: PLC0415

    monkeypatch.setattr(capacity, "DOWNLOAD_WAIT_SECONDS", 5.0)
    monkeypatch.setattr(capacity, "_BUILDS", [])
    assert capacity.DOWNLOADS_PER_PARTY * 2 >= 1 + capacity.MAX_WAITING_DOWNLOADS  # (two parties fill the line)
    stop = threading.Event()

    def hog(parties: tuple[str, str]) -> None:
        while not stop.is_set():
            try:
                capacity.building_download(lambda: time.sleep(0.03), parties)()
            except CapacityError:
                time.sleep(0.001)

    hogs = [threading.Thread(target=hog, args=(parties,)) for parties in
            [("a", "10.0.0.9"), ("a", "10.0.0.9"), ("b", "10.0.0.8"), ("b", "10.0.0.8")]]
    for thread in hogs:
        thread.start()
    time.sleep(0.2)
    served, refused = 0, []
    for _ in range(5):
        try:
            capacity.building_download(lambda: b"victim", ("v", "10.0.0.7"))()
            served += 1
        except CapacityError as exc:
            refused.append(str(exc))
        time.sleep(0.05)
    stop.set()
    for thread in hogs:
        thread.join(5)
    assert served == 5, refused
    assert capacity._download_queue().in_flight() == 0 and not capacity._download_queue().by_party  # noqa: SLF001


def _download_presses(monkeypatch):
    """(press, log): ``press(build)`` makes one download press of ``build`` through Streamlit's own deferred-file
    handler and returns its error message; ``log`` holds what Streamlit's download logger wrote (the app's filter
    alone on it), the filter's clock standing still."""
    import asyncio  # noqa: PLC0415
    import io  # noqa: PLC0415
    import logging  # noqa: PLC0415

    from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: PLC0415
    from streamlit.runtime.backend_operation_handler import DeferredFileHandler  # noqa: PLC0415
    from streamlit.runtime.media_file_manager import MediaFileManager  # noqa: PLC0415
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage  # noqa: PLC0415

    from deem_studio import capacity  # noqa: PLC0415

    logger = logging.getLogger(capacity.STREAMLIT_DOWNLOAD_LOGGER)
    monkeypatch.setattr(logger, "filters", [])
    monkeypatch.setattr(logger, "handlers", [])
    stream = io.StringIO()
    logger.addHandler(logging.StreamHandler(stream))
    monkeypatch.setattr(capacity, "_BUILDS", [])
    # (200 presses on a loaded machine can take more than a second)
    monkeypatch.setattr(capacity, "LogThrottle", lambda: uploads.LogThrottle(clock=lambda: 1_000.0))
    files = MediaFileManager(MemoryMediaFileStorage("/media"))
    handler = DeferredFileHandler(lambda: files)

    def press(build) -> str:  # one download press, as the browser sends it
        file_id = files.add_deferred(build, "text/csv", "coordinates", "f.csv")
        request = BackMsg().backend_operation_request
        request.request_id = "r"
        request.deferred_file.file_id = file_id
        return asyncio.run(handler.handle(request, "session")).error_msg

    return press, stream


def test_refused_downloads_are_logged_in_one_line_a_second(monkeypatch):
    """Attack round 26: Streamlit logged each refused press with its whole traceback (1.9 KB): a tab's 40,000 presses
    wrote 72 MB to the server's log. The app's refusal is one line a second, counting the rest; any other failure
    of a download keeps its traceback. Driven through Streamlit's own download handler, which raises its error from
    the callable's (walkthrough 54: a filter on the outer error matched nothing)."""
    from deem_studio import capacity  # noqa: PLC0415

    press, stream = _download_presses(monkeypatch)
    monkeypatch.setattr(capacity, "DOWNLOADS_PER_PARTY", 0)  # every press refused
    refused = capacity.building_download(lambda: b"x", ("ws", "10.0.0.9"))
    for _ in range(200):
        assert press(refused) == "Failed to generate file for download"
    lines = stream.getvalue().splitlines()
    assert lines == ["download refused: you are making 0 download files already; wait for them (0 more refused "
                     "since the last such line, not logged)"], lines[:5]
    press(capacity.building_download(lambda: 1 / 0, ()))  # another failure: its traceback kept
    assert "ZeroDivisionError" in stream.getvalue() and "Traceback" in stream.getvalue()


def test_saved_diagnostics_are_one_copy_for_every_session():
    """Attack round 23: each Diagnostics session read a finished diagnostics run back into a copy of its own (~115 MB
    at 700 workers; six link visitors took the server from 156 MB to 1.1 GB)."""
    from deem_studio import capacity  # noqa: PLC0415

    class Result:
        pass

    calls = []

    def load(store, run_id):
        calls.append(run_id)
        return Result()

    first = capacity.diagnostics_result(None, "0123456789abcdef", load)
    assert capacity.diagnostics_result(None, "0123456789abcdef", load) is first and calls == ["0123456789abcdef"]
    del first  # (kept while a session holds it, not after)
    import gc  # noqa: PLC0415

    gc.collect()
    capacity.diagnostics_result(None, "0123456789abcdef", load)
    assert len(calls) == 2


def test_the_readme_states_the_download_limits_the_server_keeps():
    # the README said 3 files a visitor, the page and the server 2 (walkthrough 56)
    from pathlib import Path

    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    assert (f"a visitor has at most {capacity.DOWNLOADS_PER_PARTY} files in the making or waiting in each line, "
            f"{capacity.MAX_WAITING_DOWNLOADS} wait in each server-wide") in readme
    assert f"files expected above {capacity.DOWNLOAD_LARGE_BYTES // 2**20} MiB" in readme


def test_one_visitor_holds_at_most_half_the_data_budget():
    """Attack round 28: one visitor's three tabs took 53.1 of 53.4 MiB and another visitor's load was refused."""
    first, second, third = (annotations(prefix=p) for p in "abc")
    size = capacity.data_bytes(first)
    book = capacity.DataLedger(budget=int(size * 3.5))
    book.admit(first, party="203.0.113.5")
    with pytest.raises(capacity.CapacityError, match="the data sets open in your tabs already hold"):
        book.admit(second, party="203.0.113.5")  # a second of one visitor would pass half of 3.5 sets
    book.admit(second, replacing=first, party="203.0.113.5")  # a tab swapping its set
    book.admit(third, party="198.51.100.7")  # another visitor is served
    assert book.held() == 3 * size


def test_a_data_set_held_for_no_party_is_counted_for_the_visitor_who_opens_it():
    """Attack round 29: a run's annotations, held first by the shared copy (no party), were never counted for the
    visitor whose tabs opened them: four tabs held 21.9 of 24 MiB and another visitor was refused."""
    first, second = annotations(prefix="a"), annotations(prefix="b")
    size = capacity.data_bytes(first)
    book = capacity.DataLedger(budget=int(size * 3.5))
    book.admit(first)  # the shared copy of a run's data
    book.admit(second)
    book.admit(first, party="203.0.113.5")  # one tab opens the first run
    with pytest.raises(capacity.CapacityError, match="the data sets open in your tabs already hold"):
        book.admit(second, party="203.0.113.5")  # a second tab of the same visitor, the second run
    book.admit(second, party="198.51.100.7")  # another visitor opens it
    assert book.held() == 2 * size


def test_a_media_answer_is_sent_in_pieces_the_client_must_read(monkeypatch):
    """Attack round 31: a download's whole answer went to the connection at once, and a client that read none of it
    kept a copy in the server's send buffer (20 unread 44 MB downloads: 722 -> 1,527 MB). Streamlit's media routes
    send it in pieces, and the server waits for each to be read before the next (uvicorn's send drains first)."""
    import asyncio  # noqa: PLC0415

    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
    from streamlit.web.server.starlette.starlette_routes import create_media_routes

    routes = create_media_routes(MemoryMediaFileStorage("/media"), "")
    assert uploads.wrap_media_routes(routes) == len(routes) > 0
    assert uploads.wrap_media_routes(routes) == 0  # once each
    body = bytes(range(256)) * (5 * 1024 + 7)  # 1.25 MiB and a bit

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    sent = []

    async def send(message):
        sent.append(message)

    asyncio.run(uploads._in_pieces(app, piece=256 * 1024)({"type": "http"}, None, send))  # noqa: SLF001
    parts = sent[1:]
    assert len(parts) == 6 and all(len(p["body"]) <= 256 * 1024 for p in parts)
    assert b"".join(p["body"] for p in parts) == body
    assert [p["more_body"] for p in parts] == [True] * 5 + [False]


def test_an_upload_closed_mid_body_logs_one_quiet_line_not_a_traceback(monkeypatch):
    # attack round 32: each upload a client closed mid-body logged a 4.7 KB traceback (29,710 aborted in 30 s)
    import logging  # noqa: PLC0415
    import socket  # noqa: PLC0415

    from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
    from streamlit.web.server.starlette import starlette_routes

    monkeypatch.setattr(uploads, "_UPLOAD_GUARD", [])
    monkeypatch.setattr(starlette_routes, "is_xsrf_enabled", lambda: False)
    # its clock stands still: five uploads 0.2 s apart can take more than a second on a loaded machine
    monkeypatch.setattr(uploads, "_QUIET_LOG", uploads.LogThrottle(clock=lambda: 1_000.0))
    quiet = []
    monkeypatch.setattr(uploads._LOG, "warning", lambda *args: quiet.append(args[0] % args[1:]))
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    manager = MemoryUploadedFileManager("/_stcore/upload_file")
    head = (b"PUT /_stcore/upload_file/s/f%d HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=zz\r\n"
            b"Content-Length: 100000\r\n\r\n--zz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\n")
    with _upload_server(_FakeRuntime(manager), manager) as (guard, port):
        error_log = logging.getLogger("uvicorn.error")
        level, keep = error_log.level, Keep()
        error_log.setLevel(logging.DEBUG)
        error_log.addHandler(keep)
        try:
            for i in range(5):
                with socket.create_connection(("127.0.0.1", port)) as conn:
                    conn.sendall(head % i + b"x,y\r\n" * 10)
                    time.sleep(0.2)
            deadline = time.monotonic() + 5
            while guard.held() and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            error_log.removeHandler(keep)
            error_log.setLevel(level)
    assert not [r for r in records if "Exception in ASGI application" in r], records
    assert len(quiet) == 1 and quiet[0].startswith("upload ended: ClientDisconnect"), quiet
    assert guard.held() == 0


def test_memory_freed_with_a_data_set_or_a_download_goes_back_to_the_system(monkeypatch):
    """Attack round 40: three closed sessions' data sets stayed in the server's process (1.2 GB for 435 MiB counted)
    until another visitor's read trimmed it; making a 2 GB Labels JSON left 2.2 GB behind. Letting go of a counted
    set trims the process's memory shortly after (once for a burst), and a download trims after its file is made."""
    trims = []
    monkeypatch.setattr(capacity, "release_memory", lambda: trims.append(time.monotonic()))
    monkeypatch.setattr(capacity, "RELEASE_DELAY_SECONDS", 0.05)
    monkeypatch.setattr(capacity, "_RELEASE", [])  # (a trim an earlier test's sets started may still be pending)
    book = capacity.DataLedger(budget=10 * MB)
    sets = [annotations(prefix=p) for p in "abc"]
    for data in sets:
        book.admit(data)
    assert trims == []
    del data
    sets.clear()  # (three let go of at once: one trim)
    gc.collect()
    deadline = time.monotonic() + 5
    while not trims and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    assert len(trims) == 1 and book.held() == 0
    made = capacity.building_download(lambda: b"x" * 10)()
    assert made == b"x" * 10 and len(trims) == 2


def test_a_session_keeps_its_latest_preview_counted_and_a_few_mb_of_the_others(monkeypatch):
    """Attack round 48: eleven previews of wide files (65 MB each) were kept per tab and counted nowhere, about 1 GB
    of the server a tab for a 2.2 MB upload. The latest is counted with the visitor's data sets, and kept with the one
    of its file before it (without and with the mapping: read 44, dropped, both were read again on every run); the
    others while they fit a few MB; past the visitor's share none is kept."""
    from deem_core.data.formats.reading import Preview  # noqa: PLC0415

    def wide(columns: int) -> Preview:
        frame = pd.DataFrame(np.full((11, columns), "ab", dtype=object), columns=[f"w{c}" for c in range(columns)])
        return Preview(name="f.csv", frame=frame, layout="wide", columns={}, delimiter=",", encoding="utf-8",
                       warnings=[])

    def key(file: str, options: str = "") -> tuple:
        return (file, 1, options)

    small, big = wide(10), wide(20_000)
    big_size = capacity.data_bytes(big)
    assert big_size > 2 * MB
    book = capacity.DataLedger(budget=100 * big_size)
    monkeypatch.setattr(capacity, "_LEDGER", [book])
    sizes: dict = {}
    entries = [(key("a"), small), (key("b"), wide(20_000)), (key("c"), ValueError("unreadable")), (key("d"), big)]
    kept = capacity.kept_previews(entries, sizes, party="203.0.113.5", room=big_size - 1)
    assert [k[0] for k, _ in kept] == ["a", "c", "d"]  # "b" does not fit beside the latest
    assert book.held() == big_size and sizes[key("d")] == big_size  # (only the latest counted here)
    # the first file read without, then with a mapping, on every run: both kept, each read once
    mapped = capacity.kept_previews([*kept, (key("d", "mapped"), wide(20_000))], sizes, party="203.0.113.5", room=0)
    assert [k for k, _ in mapped] == [key("c"), key("d"), key("d", "mapped")]
    again = capacity.kept_previews([*mapped[:1], *mapped[2:], mapped[1]], sizes, party="203.0.113.5", room=0)
    assert [k for k, _ in again] == [key("c"), key("d", "mapped"), key("d")] and set(sizes) == set(dict(again))
    # past the visitor's share: nothing kept (read again on the next click)
    monkeypatch.setattr(capacity, "_LEDGER", [capacity.DataLedger(budget=big_size)])
    assert capacity.kept_previews([(key("f"), wide(20_000))], sizes, party="203.0.113.5") == [] and sizes == {}


def test_a_built_download_is_dropped_from_memory_by_later_presses(monkeypatch):
    """Attack round 54: Streamlit keeps a pressed download's bytes until two script runs have passed; on a quiet server
    a visitor pressing download after download without a rerun kept each (+1.3 GB for a 768 MB file, +0.8 GB more
    for three methods' files). Presses sweep as script runs do, at most once every DOWNLOAD_FETCH_SECONDS, so a file
    goes at the second sweep after its build, having had those seconds to be fetched; a press never waits (waiting
    held the download slot, and presses a second apart were refused; walkthrough 109); a file a page shows is kept."""
    from streamlit import runtime
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    storage = MemoryMediaFileStorage("/media")
    files = MediaFileManager(storage)
    monkeypatch.setattr(runtime, "exists", lambda: True)
    monkeypatch.setattr(runtime, "get_instance", lambda: type("Runtime", (), {"media_file_mgr": files})())
    monkeypatch.setattr(capacity, "_BUILDS", [])
    monkeypatch.setattr(capacity, "_LAST_SWEEP", [0.0], raising=False)
    monkeypatch.setattr(capacity, "DOWNLOAD_FETCH_SECONDS", 0.3, raising=False)
    shown = files.add(b"an image the page shows", "image/png", "coordinates-0")  # (a session's own file: kept)

    def press(size: int) -> float:
        started = time.monotonic()
        files.execute_deferred(files.add_deferred(capacity.building_download(lambda: b"x" * size), "text/csv",
                                                  f"coordinates-{size}", file_name=f"{size}.csv"))
        return time.monotonic() - started

    def held() -> list[int]:
        return sorted(len(f.content) for f in storage._files_by_id.values())

    image = len(b"an image the page shows")
    assert press(1_000) < 0.2 and press(2_000) < 0.2  # (no wait: the second press comes before the gap)
    assert held() == [image, 1_000, 2_000]
    time.sleep(0.35)
    press(3_000)  # a sweep: the two before are marked
    assert held() == [image, 1_000, 2_000, 3_000]
    time.sleep(0.35)
    press(4_000)  # the next sweep deletes them, 0.35 s or more after their builds; the third is marked
    assert held() == [image, 3_000, 4_000]
    assert shown.split("/")[-1].split(".")[0] in storage._files_by_id


def test_a_data_sets_summary_is_made_once_for_every_session_asking(monkeypatch):
    """Attack round 56: 25 tabs of one browser on a 20 M-answer set each made the Data page's checks (+1.2 GB and 12 s
    of CPU a tab) and the server ran out of memory. Sessions asking for one set's summary at once get one made by one
    of them; a large set's is made under a read slot and counted in the party's read time; the latest few are kept."""
    monkeypatch.setattr(capacity, "_SUMMARIES", capacity.OrderedDict())
    monkeypatch.setattr(capacity, "_SPENT", {})
    made = []
    release = threading.Event()

    def compute():
        made.append(threading.get_ident())
        release.wait(5)
        return {"made": len(made)}

    got = []
    threads = [threading.Thread(target=lambda: got.append(capacity.shared_summary("fp", compute))) for _ in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    release.set()
    for thread in threads:
        thread.join()
    assert len(made) == 1 and len(got) == 6 and all(value is got[0] for value in got)
    # one that fails leaves the next session to make it
    def failing():
        raise RuntimeError("no")
    with pytest.raises(RuntimeError):
        capacity.shared_summary("other", failing)
    assert capacity.shared_summary("other", lambda: 7) == 7
    # a heavy one waits for a read slot, and counts in the party's read time
    with capacity.reading():
        with pytest.raises(capacity.CapacityError, match="busy reading"):
            monkeypatch.setattr(capacity, "READ_WAIT_SECONDS", 0.05)
            capacity.shared_summary("heavy", lambda: 1, heavy=True, party="203.0.113.9")
    assert capacity.shared_summary("heavy", lambda: 1, heavy=True, party="203.0.113.9") == 1
    assert "203.0.113.9" in capacity._SPENT
    for i in range(capacity.SUMMARIES_KEPT + 2):
        capacity.shared_summary(f"k{i}", lambda i=i: i)
    assert len(capacity._SUMMARIES) == capacity.SUMMARIES_KEPT and "fp" not in capacity._SUMMARIES


def test_sessions_on_one_data_set_share_its_summary_on_the_data_and_train_pages(runs_dir, monkeypatch):
    """Attack round 56: each new tab made the Data page's checks for itself; the Train page made its own pairwise
    table and constant-worker check too; and each session found the workers of one label for the copies warning
    (attack round 57). One set, three sessions, two pages: each check made once."""
    from deem_core.analysis import agreement
    from test_app import new_app, no_problem, upload

    monkeypatch.setattr(capacity, "_SUMMARIES", capacity.OrderedDict())
    calls = Counter()
    for name in ("contrary_workers", "pairwise_agreement", "constant_workers", "single_label_workers"):
        real = getattr(agreement, name)
        monkeypatch.setattr(agreement, name, lambda *a, _real=real, _name=name, **k: calls.update([_name]) or _real(*a, **k))
    for _ in range(3):
        at = upload(new_app())
        no_problem(at)
        at.switch_page("pages/train.py").run()
        no_problem(at)
    assert calls == Counter({"contrary_workers": 1, "pairwise_agreement": 1, "constant_workers": 1,
                             "single_label_workers": 1}), calls


def test_a_large_files_making_keeps_no_small_download_waiting(monkeypatch):
    """Attack round 56: a visitor pressing "Label Studio predictions" of a 1 GB export in two tabs, again as each file
    came (2 minutes a file), kept every other visitor's "Labels CSV" refused after its minute's wait, 3 of 3. Files
    expected large (or of a size known only once made) are made in a line of their own."""
    monkeypatch.setattr(capacity, "DOWNLOAD_WAIT_SECONDS", 1.0)
    monkeypatch.setattr(capacity, "_BUILDS", [])
    big = capacity.download_large_bytes() + 1
    stop, started = threading.Event(), threading.Event()

    def slow_large() -> bytes:
        started.set()
        stop.wait(10)
        return b"large"

    tabs = [threading.Thread(target=lambda: capacity.building_download(slow_large, ("a", "10.0.0.9"), big)())
            for _ in range(2)]
    for tab in tabs:
        tab.start()
    assert started.wait(5)
    t0 = time.monotonic()
    assert capacity.building_download(lambda: b"labels", ("v", "10.0.0.7"), 30_000)() == b"labels"
    assert capacity.building_download(lambda: b"queue", ("v", "10.0.0.7"))() == b"queue"  # (no size: a small one)
    waited = time.monotonic() - t0
    # another large file waits in its own line, behind the one in the making (refused after its wait here)
    with pytest.raises(capacity.CapacityError, match="making other download files"):
        capacity.building_download(lambda: b"mi", ("v", "10.0.0.7"), capacity.SIZE_UNKNOWN)()
    stop.set()
    for tab in tabs:
        tab.join(10)
    assert waited < 0.5, waited
    assert capacity._download_queue(True).in_flight() == 0 == capacity._download_queue().in_flight()  # noqa: SLF001


def test_departed_sessions_are_dropped_when_their_time_is_up_and_their_memory_collected():
    """Attack round 61: a visitor who loaded a 228 MB file and closed the tab left the server 1.3 GB larger for 6
    minutes and more, its set counted against the next visitor's share: Streamlit keeps a departed session for a
    reconnection and drops it only when its store is next used, and with ``runner.postScriptGC`` off the state it held
    waits for a rare full collection. The reaper drops those past their time and collects what they held."""
    import gc  # noqa: PLC0415
    import weakref  # noqa: PLC0415

    from streamlit.runtime.memory_session_storage import MemorySessionStorage  # noqa: PLC0415

    class Held:  # a session's state, in a reference cycle as Streamlit's are
        def __init__(self):
            self.me = self

    class Session:
        def __init__(self, name):
            self.id, self.state = name, Held()

    class Info:
        def __init__(self, name):
            self.session = Session(name)

    storage = MemorySessionStorage(ttl_seconds=0.05)
    storage.save(Info("gone"))
    held = weakref.ref(storage._cache["gone"].session.state)
    gc.disable()  # (as the server runs: no collection after a script run)
    try:
        time.sleep(0.1)
        assert held() is not None  # past its time, and still in memory until something looks
        assert capacity.reap_departed(storage) == 1
        assert held() is None and capacity.reap_departed(storage) == 0
    finally:
        gc.enable()
    assert capacity.reap_departed(object()) == 0  # (another store: nothing done)


def test_a_download_of_a_run_deleted_after_the_page_was_drawn_is_one_quiet_line(monkeypatch):
    """Walkthrough 119: a link visitor pressing "Labels CSV" of a run its owner had deleted meanwhile got Streamlit's
    "Failed to generate file" and the server log two tracebacks a press (RunNotFound, then Streamlit's own)."""
    from deem_studio import capacity  # noqa: PLC0415
    from deem_studio.runs import RunNotFound  # noqa: PLC0415

    press, stream = _download_presses(monkeypatch)

    def gone() -> bytes:
        raise RunNotFound("no run with id 0123456789abcdef")

    assert press(capacity.building_download(gone, ("ws", "10.0.0.9"))) == "Failed to generate file for download"
    logged = stream.getvalue()
    assert "Traceback" not in logged and logged.startswith("download refused: no run with id 0123456789abcdef: it was "
                                                           "deleted after this page was drawn"), logged
