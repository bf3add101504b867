"""Upload budgets for the dashboard server: Streamlit keeps every uploaded file in memory, so they are bounded.

Found attacking main: Streamlit keeps every uploaded file in memory for the life of its session, accepts any
number of files per session (also under file ids no widget asked for: five 100 MB ``PUT``\\ s to one session
took the server from 0.15 to 0.92 GB, kept after the browser closed) and reads a request's whole body into
memory before storing it. :class:`UploadGuard` (installed into Streamlit's runtime by ``app.py``, once per
process) counts the bytes each session stores and the server's total, reserves a request's size *before its
body is read*, and refuses with HTTP 413 beyond ``DEEM_MAX_UPLOAD_BYTES_PER_SESSION`` (default: the largest
file Streamlit accepts plus 64 MiB) or ``DEEM_MAX_UPLOAD_BYTES`` (every session together; default an eighth of
the machine's memory, at least 2 GiB). The uploader shows the refusal's text beside the file.

Standard library only (``app.py`` installs it before the engine is imported).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import time
from typing import Any

from deem_studio.settings import env_value

_LOG = logging.getLogger(__name__)

__all__ = ["CapacityError", "ConnectionLimit", "UploadGuard", "connection_limit", "install_connection_limit",
           "install_message_limit", "install_upload_guard", "live_instances", "physical_memory", "upload_guard"]


class CapacityError(RuntimeError):
    """The server is too full for this now; the message says what, and what to do."""


def describe(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}".replace(".0 ", " ")
    return f"{n} bytes"


def physical_memory() -> int:
    """The memory the server may use (``deem_core.model.sizes.machine_memory``: a container's limit counts)."""
    from deem_core.model.sizes import machine_memory  # noqa: PLC0415

    return machine_memory()


# --------------------------------------------------------------------------- uploads
class UploadGuard:
    """Byte budgets of uploaded files: per session and for the whole server, stored plus in flight.

    ``admit(session, size)`` runs before a request's body is read and reserves ``size``; ``added`` (the file is
    stored) turns the session's oldest reservation into stored bytes; a reservation whose upload never arrives
    (refused by Streamlit, the client went away) lapses after ``reserve_seconds``."""

    def __init__(self, per_session: int, total: int, max_file: int, reserve_seconds: float = 900.0):
        self.per_session, self.total, self.max_file = int(per_session), int(total), int(max_file)
        self.reserve_seconds = float(reserve_seconds)
        self._lock = threading.Lock()
        self._stored: dict[str, dict[str, int]] = {}
        self._pending: dict[str, list[tuple[int, float]]] = {}

    def _expire(self, now: float) -> None:
        for session in list(self._pending):
            alive = [(size, until) for size, until in self._pending[session] if until > now]
            if alive:
                self._pending[session] = alive
            else:
                del self._pending[session]

    def _session_bytes(self, session: str) -> int:
        return sum(self._stored.get(session, {}).values()) + sum(s for s, _ in self._pending.get(session, ()))

    def held(self) -> int:
        """Bytes stored and reserved by every session together."""
        with self._lock:
            self._expire(time.monotonic())
            return (sum(sum(files.values()) for files in self._stored.values())
                    + sum(s for entries in self._pending.values() for s, _ in entries))

    def _check(self, session: str, size: int, server_held: int) -> None:
        mine = self._session_bytes(session)
        if mine + size > self.per_session:
            raise CapacityError(f"this browser session already holds {describe(mine)} of uploaded files; at "
                                f"most {describe(self.per_session)} at a time: remove files from the uploader "
                                f"first")
        if server_held + size > self.total:
            raise CapacityError(f"the server holds {describe(server_held)} of uploaded files for its users "
                                f"(at most {describe(self.total)}); try again in a few minutes")

    def admit(self, session: str, size: int | None) -> None:
        """Reserve ``size`` bytes (unknown: the largest file) for an upload of ``session``, or CapacityError."""
        largest = min(self.max_file, self.per_session)  # what Streamlit will store at most
        size = largest if size is None or size <= 0 or size > largest else int(size)
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            server = (sum(sum(files.values()) for files in self._stored.values())
                      + sum(s for entries in self._pending.values() for s, _ in entries))
            self._check(session, size, server)
            self._pending.setdefault(session, []).append((size, now + self.reserve_seconds))

    def added(self, session: str, file_id: str, size: int) -> None:
        """A file is about to be stored: CapacityError when it does not fit (then it is not stored)."""
        with self._lock:
            self._expire(time.monotonic())
            entries = self._pending.get(session)
            if entries:
                entries.pop(0)
                if not entries:
                    del self._pending[session]
            files = self._stored.get(session, {})
            previous = files.get(file_id, 0)
            server = (sum(sum(f.values()) for f in self._stored.values())
                      + sum(s for e in self._pending.values() for s, _ in e)) - previous
            if previous:
                files.pop(file_id)
            try:
                self._check(session, int(size), server)
            finally:
                if previous:
                    files[file_id] = previous
            self._stored.setdefault(session, {})[file_id] = int(size)

    def removed(self, session: str, file_id: str) -> None:
        with self._lock:
            files = self._stored.get(session)
            if files is not None:
                files.pop(file_id, None)
                if not files:
                    del self._stored[session]

    def closed(self, session: str) -> None:
        with self._lock:
            self._stored.pop(session, None)
            self._pending.pop(session, None)


_UPLOAD_GUARD: list[UploadGuard] = []
_INSTALL_LOCK = threading.Lock()


def upload_guard() -> UploadGuard | None:
    """The guard installed into this process's Streamlit runtime (None before :func:`install_upload_guard`)."""
    return _UPLOAD_GUARD[0] if _UPLOAD_GUARD else None


def _request_length() -> int | None:
    """Content-Length of the upload request being admitted (Streamlit's upload handler is the caller's caller)."""
    try:
        request = sys._getframe(2).f_locals.get("request")  # noqa: SLF001 - the handler's own argument
        return int(request.headers.get("content-length") or 0) or None
    except Exception:  # noqa: BLE001 - unknown: the largest file is reserved
        return None


def install_upload_guard(runtime: Any = None) -> UploadGuard | None:
    """Put an :class:`UploadGuard` between Streamlit's upload handler and its in-memory file store (once per
    process). The handler asks ``runtime.is_active_session`` before it reads a body (only it calls that), and
    stores files through the uploaded-file manager: both are wrapped on the instances."""
    with _INSTALL_LOCK:
        if _UPLOAD_GUARD:
            return _UPLOAD_GUARD[0]
        try:
            if runtime is None:
                from streamlit import runtime as st_runtime  # noqa: PLC0415

                if not st_runtime.exists():
                    return None
                runtime = st_runtime.get_instance()
            from streamlit import config  # noqa: PLC0415
            from starlette.exceptions import HTTPException  # noqa: PLC0415

            max_file = int(config.get_option("server.maxUploadSize")) << 20
        except Exception:  # noqa: BLE001 - bare mode, tests without a server
            return None
        manager = runtime.uploaded_file_mgr
        guard = UploadGuard(per_session=int(env_value("DEEM_MAX_UPLOAD_BYTES_PER_SESSION", max_file + (64 << 20))),
                            total=int(env_value("DEEM_MAX_UPLOAD_BYTES", max(2 << 30, physical_memory() // 8))),
                            max_file=max_file)
        is_active, add_file = runtime.is_active_session, manager.add_file
        remove_file, remove_session_files = manager.remove_file, manager.remove_session_files

        def guarded_is_active(session_id: str) -> bool:
            if not is_active(session_id):
                return False
            try:
                guard.admit(session_id, _request_length())
            except CapacityError as exc:
                raise HTTPException(status_code=413, detail=str(exc)) from None
            return True

        def guarded_add_file(session_id: str, file: Any) -> None:
            try:
                guard.added(session_id, file.file_id, len(file.data))
            except CapacityError as exc:
                raise HTTPException(status_code=413, detail=str(exc)) from None
            add_file(session_id, file)

        def guarded_remove_file(session_id: str, file_id: str) -> None:
            remove_file(session_id, file_id)
            guard.removed(session_id, file_id)

        def guarded_remove_session_files(session_id: str) -> None:
            remove_session_files(session_id)
            guard.closed(session_id)

        runtime.is_active_session = guarded_is_active
        manager.add_file = guarded_add_file
        manager.remove_file = guarded_remove_file
        manager.remove_session_files = guarded_remove_session_files
        _UPLOAD_GUARD.append(guard)
        return guard




# --------------------------------------------------------------------------- websocket messages from browsers
_MESSAGE_LIMIT: list[int] = []


#: the largest message the server may send a browser (a table or a chart): Streamlit's own default
SEND_LIMIT_BYTES = 200 * 1_000_000


def install_message_limit(limit: int | None = None) -> int | None:
    """Bound what one browser message may make the server hold (once per process; returns the limit set).

    Found attacking main: uvicorn accepts a websocket message up to ``server.maxMessageSize`` and holds all of it
    in memory; only then does Streamlit refuse anything over ``server.maxWidgetStateSize`` (25 MB) and close the
    connection. One 950 MB message from a client that had not even opened a page took the server from 79 MB to
    1.94 GB. ``server.maxMessageSize`` (``.streamlit/config.toml``) is now 27 MB, which uvicorn takes when the
    server starts, so every connection has it from the first one (this function ran at the first page only, and a
    connection opened before kept 1,024 MB: a 400 MB message raised the server from 422 MB to 1,245 MB; attack
    round 5). Here, for a server started with a larger setting, the running server's uvicorn config is lowered to
    what Streamlit would accept anyway (``maxWidgetStateSize`` plus 1 MiB for the message's envelope), and what
    the server *sends* is allowed :data:`SEND_LIMIT_BYTES`: Streamlit checks that against the same setting, read
    once into ``runtime_util._max_message_size_bytes``, and big tables and charts are larger than 27 MB."""
    with _INSTALL_LOCK:
        if _MESSAGE_LIMIT:
            return _MESSAGE_LIMIT[0]
        try:
            import uvicorn  # noqa: PLC0415
            from streamlit import config  # noqa: PLC0415
            from streamlit.runtime import runtime_util  # noqa: PLC0415

            if limit is None:
                limit = int(config.get_option("server.maxWidgetStateSize")) * 1_000_000 + (1 << 20)
        except Exception:  # noqa: BLE001 - no uvicorn (another server), bare mode
            return None
        for obj in live_instances(uvicorn.Config):  # the server's Config is not reachable from the runtime
            if obj.ws_max_size is None or obj.ws_max_size > limit:
                obj.ws_max_size = int(limit)
        if runtime_util.get_max_message_size_bytes() < SEND_LIMIT_BYTES:
            runtime_util._max_message_size_bytes = SEND_LIMIT_BYTES  # noqa: SLF001 - sending only (above)
        _MESSAGE_LIMIT.append(int(limit))
        return _MESSAGE_LIMIT[0]


def live_instances(cls: type) -> list:
    """The live objects whose type is ``cls`` or one of its subclasses.

    Found among the objects that refer to those classes (an instance of a Python class refers to its class), never
    in a list of every live object (``gc.get_objects``): such a list also holds tuples that other threads are still
    building, and CPython then fails in that thread when it resizes one ("SystemError: Objects/tupleobject.c:927:
    bad argument to internal function"). A training job failed so in the project's test run, where every page ran
    that search; the list of referrers is made in one call and holds none of them."""
    kinds, todo = {cls}, [cls]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in kinds:
                kinds.add(sub)
                todo.append(sub)
    return [obj for obj in gc.get_referrers(*kinds) if type(obj) in kinds]


# --------------------------------------------------------------------------- websocket connections
#: websocket connections (browser tabs) one network address may hold at once, and all addresses together; each may
#: keep up to the message limit of an unfinished message in the server's memory (attack round 9: 100 connections
#: each holding 24 MiB of a message they never finished kept 2.9 GB until they chose to close)
DEFAULT_MAX_CONNECTIONS_PER_CLIENT = 64
DEFAULT_MAX_CONNECTIONS = 500
_CONNECTION_LIMIT: list[ConnectionLimit] = []
_ROUTES_SEARCHED: list[bool] = []  # the live objects are searched for the route once per process


#: messages the websocket connections of one party (an address; the server's own machine) may send a second,
#: sustained, and at once: past them the server reads their next message later (the tab waits; nothing is dropped).
#: A tab sent 40,000 download presses in 1 s over its websocket: each ran on the thread pool every download shares
#: before it could be refused, and every other visitor's download waited 44.6 s (attack round 26). A person's clicks
#: and keys send a few a second.
MESSAGES_PER_SECOND = 20.0
MESSAGE_BURST = 200


class _MessageRate:
    """A token bucket: :meth:`delay` is how long the next message must wait to keep within the rate."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = float(rate), float(burst)
        self.tokens, self.at = float(burst), time.monotonic()

    def delay(self) -> float:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate) - 1.0
        self.at = now
        return max(0.0, -self.tokens / self.rate)


class ConnectionLimit:
    """Counts the open websocket connections per party (:func:`deem_studio.owners.client_party`) and in all, and
    refuses one past either limit. Runs on the server's event loop; the lock keeps it right if it ever does not."""

    def __init__(self, per_client: int, total: int):
        self.per_client, self.total = per_client, total
        self.open: dict[str | None, int] = {}
        self.rates: dict[str | None, _MessageRate] = {}
        self._lock = threading.Lock()

    def admit(self, party: str | None) -> str | None:
        """Count a new connection and return None, or the reason it is refused (nothing counted). The server's own
        machine (party None: a local browser, an SSH tunnel, a proxy that names no visitor) is held to the
        per-address limit too: one local process held all 500 places and every visitor was refused (attack round
        27)."""
        with self._lock:
            if self.total > 0 and sum(self.open.values()) >= self.total:
                return f"the server has {self.total} connections open (DEEM_MAX_CONNECTIONS)"
            if 0 < self.per_client <= self.open.get(party, 0):
                where = "this address" if party is not None else "the server's own machine"
                return f"{self.per_client} connections are open from {where} (DEEM_MAX_CONNECTIONS_PER_CLIENT)"
            self.open[party] = self.open.get(party, 0) + 1
            return None

    def rate(self, party: str | None) -> _MessageRate:
        """The message pace of ``party``'s connections together: kept past their close (a connection of its own
        gave each reconnect a fresh burst: 29,000 presses in 16 s; attack round 27); the oldest of 10,000 dropped."""
        with self._lock:
            rate = self.rates.get(party)
            if rate is None:
                if len(self.rates) >= 10_000:
                    self.rates.pop(next(iter(self.rates)))
                rate = self.rates[party] = _MessageRate(MESSAGES_PER_SECOND, MESSAGE_BURST)
            return rate

    def closed(self, party: str | None) -> None:
        with self._lock:
            left = self.open.get(party, 0) - 1
            if left > 0:
                self.open[party] = left
            else:
                self.open.pop(party, None)

    def guard(self, app: Any) -> Any:
        """``app`` (the ASGI app of Streamlit's websocket route) behind this limit: a connection past it is
        refused before it is accepted (the browser's handshake gets HTTP 403; it retries as after any drop)."""
        from deem_studio.owners import client_party, same_origin  # noqa: PLC0415

        async def guarded(scope: dict, receive: Any, send: Any) -> None:
            client = scope.get("client") or (None, None)
            headers = {name.lower(): value.decode("latin-1") for name, value in scope.get("headers") or []}
            forwarded = headers.get(b"x-forwarded-for")
            origin = headers.get(b"origin")
            if origin is not None and not same_origin(origin, headers.get(b"host"), scope.get("scheme") or "ws"):
                # a browser page of another origin (another port of this host: Streamlit's own check lets any port
                # of localhost in) opened the websocket with this site's cookies, read the owner key and drove the
                # app as its visitor (attack round 29); a browser always sends Origin, other clients carry no cookie
                _LOG.warning("websocket refused: a page of another origin (%s)", origin[:100])
                await send({"type": "websocket.close", "code": 1008, "reason": "another origin"})
                return
            party = client_party(client[0], forwarded)
            refused = self.admit(party)
            if refused is not None:
                _LOG.warning("websocket refused: %s", refused)
                await send({"type": "websocket.close", "code": 1013, "reason": "try again later"})
                return
            rate = self.rate(party)

            async def paced() -> dict:
                message = await receive()
                if message.get("type") == "websocket.receive":
                    wait = rate.delay()
                    if wait > 0:
                        await asyncio.sleep(wait)
                return message

            try:
                await app(scope, paced, send)
            finally:
                self.closed(party)

        guarded.__wrapped__ = app  # type: ignore[attr-defined]
        return guarded


def connection_limit() -> ConnectionLimit | None:
    """The limit installed into this server process (None before :func:`install_connection_limit`)."""
    return _CONNECTION_LIMIT[0] if _CONNECTION_LIMIT else None


def install_connection_limit(per_client: int | None = None, total: int | None = None,
                             routes: list | None = None) -> ConnectionLimit | None:
    """Put a :class:`ConnectionLimit` in front of Streamlit's websocket route (once per process; limits from
    ``DEEM_MAX_CONNECTIONS_PER_CLIENT`` and ``DEEM_MAX_CONNECTIONS``, 0: none). ``routes``: the server's routes as
    it builds them (``deem-studio``, :mod:`deem_studio.serve`); else the route is found among the live objects at
    the first page, as the server's uvicorn config is (:func:`install_message_limit`), and connections opened before
    that are not counted (they were accepted before the limit existed)."""
    with _INSTALL_LOCK:
        if _CONNECTION_LIMIT:
            return _CONNECTION_LIMIT[0]
        try:
            from starlette.routing import WebSocketRoute  # noqa: PLC0415
        except Exception:  # noqa: BLE001 - another server
            return None
        if routes is None:
            if _ROUTES_SEARCHED:
                return None  # searched at the first page already: the server's routes exist before any page
            _ROUTES_SEARCHED.append(True)
            routes = live_instances(WebSocketRoute)
        routes = [obj for obj in routes if issubclass(type(obj), WebSocketRoute)  # (no __class__ lookups)
                  and str(getattr(obj, "path", "")).endswith("_stcore/stream")]
        if not routes:
            return None  # bare mode, AppTest
        limit = ConnectionLimit(
            per_client=int(env_value("DEEM_MAX_CONNECTIONS_PER_CLIENT", DEFAULT_MAX_CONNECTIONS_PER_CLIENT))
            if per_client is None else per_client,
            total=int(env_value("DEEM_MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS)) if total is None else total)
        for route in routes:
            route.app = limit.guard(route.app)
        _CONNECTION_LIMIT.append(limit)
        return limit


