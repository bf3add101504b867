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
import contextvars
import gc
import logging
import sys
import threading
import time
from typing import Any, Callable

from deem_studio.server_log import LogThrottle, TokenBucket
from deem_studio.settings import env_value

_LOG = logging.getLogger(__name__)

__all__ = ["CapacityError", "ConnectionLimit", "HttpConnectionLimit", "UploadGuard", "connection_limit",
           "http_connection_limit", "install_connection_limit", "install_http_connection_limit",
           "install_message_kinds", "install_message_limit", "install_upload_guard", "live_instances", "physical_memory", "upload_guard"]


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
#: share of the upload budget one party (a network address; the server's own machine) may hold, stored and reserved:
#: one visitor's three tabs reserved the whole budget without sending a byte and every other visitor's upload was
#: refused for 15 minutes (attack round 30); half, as the data ledger's share (``capacity.PARTY_SHARE``)
UPLOAD_PARTY_SHARE = 0.5

#: the party of every browser on the server's own machine (no address): a workspace costs nothing, so counted by
#: workspace a second browser profile there was a new half of the data budget (attack round 29)
THIS_MACHINE = "the server's own machine"


class _Reservation:
    """Bytes reserved for one upload request of ``session`` (counted for ``party``) until ``until``."""

    __slots__ = ("party", "session", "size", "until")

    def __init__(self, session: str, party: str, size: int, until: float):
        self.session, self.party, self.size, self.until = session, party, size, until


#: the reservations made while the current upload request is handled (set by :func:`_releasing` around Streamlit's
#: upload route): what is left of them when the request ends is released
_REQUEST_RESERVATIONS: contextvars.ContextVar[list[_Reservation] | None] = contextvars.ContextVar(
    "deem_upload_reservations", default=None)


class UploadGuard:
    """Byte budgets of uploaded files: per session, per party and for the whole server, stored plus in flight.

    ``admit(session, size, party)`` runs before a request's body is read: it refuses a declared ``size`` that does
    not fit now and opens an empty reservation, which ``grow`` extends by the bytes as they arrive (refusing the part
    that does not fit); ``added`` (the file is stored) turns the request's reservation (else the session's oldest)
    into stored bytes; ``release`` lets go of a reservation whose request ended without storing a file (refused,
    closed by the client, failed); one left anyway lapses ``reserve_seconds`` after its last bytes. Reserved up front,
    the declared sizes of four requests sending 20 KB a second held the whole budget of two parties for hours, and
    every other visitor's upload was refused (attack round 32)."""

    def __init__(self, per_session: int, total: int, max_file: int, reserve_seconds: float = 900.0):
        self.per_session, self.total, self.max_file = int(per_session), int(total), int(max_file)
        self.reserve_seconds = float(reserve_seconds)
        self._lock = threading.Lock()
        self._stored: dict[str, dict[str, int]] = {}
        self._pending: dict[str, list[_Reservation]] = {}
        self._party: dict[str, str] = {}  # session -> the party its stored files count for

    def _expire(self, now: float) -> None:
        for session in list(self._pending):
            alive = [entry for entry in self._pending[session] if entry.until > now]
            if alive:
                self._pending[session] = alive
            else:
                del self._pending[session]

    def _session_bytes(self, session: str) -> int:
        return sum(self._stored.get(session, {}).values()) + sum(e.size for e in self._pending.get(session, ()))

    def _party_bytes(self, party: str) -> int:
        return (sum(sum(files.values()) for session, files in self._stored.items() if self._party.get(session) == party)
                + sum(e.size for entries in self._pending.values() for e in entries if e.party == party))

    def _server_bytes(self) -> int:
        return (sum(sum(files.values()) for files in self._stored.values())
                + sum(e.size for entries in self._pending.values() for e in entries))

    def held(self) -> int:
        """Bytes stored and reserved by every session together."""
        with self._lock:
            self._expire(time.monotonic())
            return self._server_bytes()

    def _check(self, session: str, size: int, server_held: int, party: str | None = None) -> None:
        mine = self._session_bytes(session)
        if mine + size > self.per_session:
            raise CapacityError(f"this browser session already holds {describe(mine)} of uploaded files; at "
                                f"most {describe(self.per_session)} at a time: remove files from the uploader "
                                f"first")
        if party is not None:
            own, share = self._party_bytes(party), int(self.total * UPLOAD_PARTY_SHARE)
            if own + size > share:
                raise CapacityError(f"the uploads of your tabs already hold {describe(own)} of the {describe(share)} "
                                    f"one visitor may hold (half of what the server keeps for uploads): remove files "
                                    f"from the uploaders of other tabs, or try again in a few minutes")
        if server_held + size > self.total:
            raise CapacityError(f"the server holds {describe(server_held)} of uploaded files for its users "
                                f"(at most {describe(self.total)}); try again in a few minutes")

    def admit(self, session: str, size: int | None, party: str | None = None) -> _Reservation | None:
        """Open an empty reservation for an upload of ``session`` by ``party`` (its network address, or
        :data:`THIS_MACHINE`; None: not counted for a party) that :meth:`grow` extends as its body arrives, or
        CapacityError when the declared ``size`` (unknown: the largest file) does not fit now. A declared size above
        the largest file Streamlit stores opens none (None): Streamlit refuses the request at once ("File too
        large"), and each such request reserved the largest file for 15 minutes (attack round 30)."""
        if size is not None and size > self.max_file:
            return None
        largest = min(self.max_file, self.per_session)  # what Streamlit will store at most
        size = largest if size is None or size <= 0 or size > largest else int(size)
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            party = self._party.get(session, party) if party is not None else None
            self._check(session, size, self._server_bytes(), party)
            entry = _Reservation(session, party, 0, now + self.reserve_seconds)
            self._pending.setdefault(session, []).append(entry)
            if party is not None:
                self._party.setdefault(session, party)
            held = _REQUEST_RESERVATIONS.get()
            if held is not None:
                held.append(entry)
            return entry

    def grow(self, entry: _Reservation, size: int) -> None:
        """``size`` more bytes of ``entry``'s body arrived: count them (its lapse restarts), or CapacityError when
        they do not fit. Nothing when the reservation is gone (stored, released or lapsed)."""
        with self._lock:
            now = time.monotonic()
            self._expire(now)
            if entry not in self._pending.get(entry.session, ()):
                return
            self._check(entry.session, int(size), self._server_bytes(), entry.party)
            entry.size += int(size)
            entry.until = now + self.reserve_seconds

    def release(self, entry: _Reservation) -> None:
        """Let go of ``entry`` unless a stored file took it already (its request ended without a file)."""
        with self._lock:
            entries = self._pending.get(entry.session)
            if entries and entry in entries:
                entries.remove(entry)
                if not entries:
                    del self._pending[entry.session]

    def _take(self, session: str) -> str | None:
        """Remove the reservation a file of ``session`` is stored on (the current request's, else the oldest); its
        party. With the lock held."""
        entries = self._pending.get(session)
        if not entries:
            return None
        mine = [e for e in _REQUEST_RESERVATIONS.get() or () if e.session == session and e in entries]
        entry = mine[0] if mine else entries[0]
        entries.remove(entry)
        if not entries:
            del self._pending[session]
        return entry.party

    def added(self, session: str, file_id: str, size: int) -> None:
        """A file is about to be stored: CapacityError when it does not fit (then it is not stored)."""
        with self._lock:
            self._expire(time.monotonic())
            party = self._take(session) or self._party.get(session)
            files = self._stored.get(session, {})
            previous = files.get(file_id, 0)
            server = self._server_bytes() - previous
            if previous:
                files.pop(file_id)
            try:
                self._check(session, int(size), server, party)
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
            self._party.pop(session, None)


_UPLOAD_GUARD: list[UploadGuard] = []
_INSTALL_LOCK = threading.Lock()


def upload_guard() -> UploadGuard | None:
    """The guard installed into this process's Streamlit runtime (None before :func:`install_upload_guard`)."""
    return _UPLOAD_GUARD[0] if _UPLOAD_GUARD else None


def _request_length_and_party() -> tuple[int | None, str]:
    """Content-Length of the upload request being admitted and the party it counts for (its network address, or
    :data:`THIS_MACHINE`; Streamlit's upload handler is the caller's caller)."""
    from deem_studio.owners import client_party  # noqa: PLC0415 - standard library only

    try:
        request = sys._getframe(2).f_locals.get("request")  # noqa: SLF001 - the handler's own argument
    except Exception:  # noqa: BLE001
        request = None
    try:
        length = int(request.headers.get("content-length") or 0) or None
    except Exception:  # noqa: BLE001 - unknown: the largest file is reserved
        length = None
    try:
        party = client_party(request.client.host, request.headers.get("x-forwarded-for"))
    except Exception:  # noqa: BLE001 - no address: the server's own machine
        party = None
    return length, party or THIS_MACHINE


#: an upload's body must keep coming: a part at least every UPLOAD_STALL_SECONDS, and past them on average at least
#: MIN_UPLOAD_BYTES_PER_SECOND; a request that ends so is answered 408 and releases its reservation. Two addresses'
#: four requests of 740 MiB declared, sending a line a minute, held 2.89 of the 2.94 GiB budget for 15 minutes at a
#: time (attack round 31)
UPLOAD_STALL_SECONDS = 30.0
MIN_UPLOAD_BYTES_PER_SECOND = 16 * 1024


class _UploadTooSlow(Exception):
    """An upload's body stopped coming, or came slower than :data:`MIN_UPLOAD_BYTES_PER_SECOND`."""


class _UploadRefused(Exception):
    """An upload's body refused as it came (``status``, ``detail``: the answer)."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = int(status), str(detail)


_QUIET_LOG = LogThrottle()


def _quiet_log(line: str) -> None:
    """``line`` on the server's log, one a second at most (with how many were left out since the last)."""
    left_out = _QUIET_LOG.due()
    if left_out is not None:
        _LOG.warning("%s (%d more such since the last line, not logged)", line, left_out)


def _paced(receive: Any, stall_seconds: float, min_rate: float, on_bytes: Callable[[int], None] | None = None) -> Any:
    """``receive`` (an ASGI request's) raising :class:`_UploadTooSlow` when a body part takes ``stall_seconds``, or
    when, past them, the parts have come slower than ``min_rate`` bytes a second on average; ``on_bytes(n)`` is
    told the size of every part (it may raise to end the request)."""
    loop = asyncio.get_running_loop()
    started, got = loop.time(), [0]

    async def paced_receive() -> dict:
        try:
            message = await asyncio.wait_for(receive(), timeout=stall_seconds)
        except asyncio.TimeoutError:
            raise _UploadTooSlow(f"no part of the file came for {stall_seconds:g} s") from None
        part = len(message.get("body", b"") or b"")
        got[0] += part
        if part and on_bytes is not None:
            on_bytes(part)
        elapsed = loop.time() - started
        if message.get("more_body") and elapsed > stall_seconds and got[0] < min_rate * elapsed:
            raise _UploadTooSlow(f"the file came at {got[0] / elapsed:,.0f} bytes a second, under "
                                 f"{min_rate:,.0f}")
        return message

    return paced_receive


def _releasing(app: Any) -> Any:
    """``app`` (the ASGI app of Streamlit's upload route) releasing what its request reserved and did not store
    when the request ends: refused at once, closed by the client before its body, failed, or too slow (its body
    paced by :func:`_paced`). Such reservations were kept for 15 minutes: three tabs reserved the whole budget with
    requests they closed at once (attack round 30), or kept open sending a line a minute (attack round 31)."""

    try:
        from starlette.requests import ClientDisconnect  # noqa: PLC0415
    except Exception:  # noqa: BLE001 - another server
        ClientDisconnect = _UploadTooSlow  # noqa: N806 - (only a name to catch)

    async def upload_request(scope: dict, receive: Any, send: Any) -> None:
        reserved: list[_Reservation] = []
        token = _REQUEST_RESERVATIONS.set(reserved)
        started = [False]

        async def tracked_send(message: dict) -> None:
            started[0] = started[0] or message.get("type") == "http.response.start"
            await send(message)

        def arrived(size: int) -> None:  # the bytes of the body count as they come (the declared size held none)
            guard = upload_guard()
            if guard is not None and reserved:
                try:
                    guard.grow(reserved[-1], size)
                except CapacityError as exc:
                    raise _UploadRefused(413, str(exc)) from None

        paced = _paced(receive, UPLOAD_STALL_SECONDS, MIN_UPLOAD_BYTES_PER_SECOND, arrived)
        try:
            await app(scope, paced, tracked_send)
        except (_UploadTooSlow, _UploadRefused, ClientDisconnect) as exc:
            # one quiet line a second at most: a client closing mid-body logged a 4.7 KB traceback each time (29,710
            # in 30 s; attack round 32)
            _quiet_log(f"upload ended: {type(exc).__name__}: {exc}")
            if not started[0] and not isinstance(exc, ClientDisconnect):
                status, said = ((408, f"the upload was too slow: {exc}") if isinstance(exc, _UploadTooSlow)
                                else (exc.status, exc.detail))
                body = said.encode()
                await send({"type": "http.response.start", "status": status,
                            "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                        (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
                await send({"type": "http.response.body", "body": body})
        finally:
            _REQUEST_RESERVATIONS.reset(token)
            guard = upload_guard()
            for entry in reserved if guard is not None else ():
                guard.release(entry)

    upload_request.__wrapped__ = app  # type: ignore[attr-defined]
    return upload_request


def _wrap_routes(routes: list, part: str, wrapper: Any) -> int:
    """Wrap the app of every Starlette route among ``routes`` whose path holds ``part`` in ``wrapper`` (once each:
    a wrapped app has ``__wrapped__``); how many were wrapped."""
    try:
        from starlette.routing import Route  # noqa: PLC0415
    except Exception:  # noqa: BLE001 - another server
        return 0
    wrapped = 0
    for route in routes:
        if (issubclass(type(route), Route) and part in str(getattr(route, "path", ""))
                and not hasattr(route.app, "__wrapped__")):
            route.app = wrapper(route.app)
            wrapped += 1
    return wrapped


def wrap_upload_routes(routes: list) -> int:
    """Wrap Streamlit's upload routes among ``routes`` in :func:`_releasing` (once each); how many were wrapped."""
    return _wrap_routes(routes, "_stcore/upload_file", _releasing)


#: bytes of a media answer (a download, an image) handed to the connection at a time: the whole answer was, and a client
#: that read none of it kept a copy in the server's send buffer (20 unread downloads of a 44 MB file took the server
#: from 722 to 1,527 MB; attack round 31). In pieces, the server waits for the client to read each before the next.
ANSWER_PIECE = 256 * 1024


def _in_pieces(app: Any, piece: int | None = None) -> Any:
    """``app`` (the ASGI app of Streamlit's media route) sending its answer's body in pieces of at most ``piece``
    bytes (:data:`ANSWER_PIECE`): the server waits at each piece until the client has read the one before."""
    size = int(piece or ANSWER_PIECE)

    async def media_request(scope: dict, receive: Any, send: Any) -> None:
        async def piecewise(message: dict) -> None:
            body = message.get("body", b"") or b""
            if message.get("type") != "http.response.body" or len(body) <= size:
                await send(message)
                return
            view, more = memoryview(body), bool(message.get("more_body", False))
            for start in range(0, len(view), size):
                await send({"type": "http.response.body", "body": bytes(view[start:start + size]),
                            "more_body": more or start + size < len(view)})

        await app(scope, receive, piecewise)

    media_request.__wrapped__ = app  # type: ignore[attr-defined]
    return media_request


def wrap_media_routes(routes: list) -> int:
    """Wrap Streamlit's media routes among ``routes`` in :func:`_in_pieces` (once each); how many were wrapped."""
    return _wrap_routes(routes, "/media/", _in_pieces)


def install_upload_guard(runtime: Any = None, routes: list | None = None) -> UploadGuard | None:
    """Put an :class:`UploadGuard` between Streamlit's upload handler and its in-memory file store (once per
    process). The handler asks ``runtime.is_active_session`` before it reads a body (only it calls that), and
    stores files through the uploaded-file manager: both are wrapped on the instances. Its route (``routes``, else
    found among the live objects) releases what a request reserved and did not store (:func:`_releasing`)."""
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
                guard.admit(session_id, *_request_length_and_party())
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
        if routes is None:
            try:
                from starlette.routing import Route  # noqa: PLC0415

                routes = live_instances(Route)  # the server's routes exist before any page
            except Exception:  # noqa: BLE001 - another server
                routes = []
        wrap_upload_routes(routes)
        wrap_media_routes(routes)
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


#: file names one request for upload addresses may name (Streamlit makes a uuid and two URLs for each, with no bound,
#: on the thread that serves every session: 1.45 million names in one 2.9 MB message froze a server for 10 s and
#: added 1 GB; attack round 64). A person's selection of files is far below it; the upload guard bounds their bytes.
MAX_FILE_URLS_PER_REQUEST = 1_000
_MESSAGE_KINDS: list[bool] = []


def install_message_kinds() -> bool:
    """Bound the browser messages the pages never need (once per process; True once installed).

    * ``file_urls_request`` naming more than :data:`MAX_FILE_URLS_PER_REQUEST` files is answered with no address
      (the browser says the upload failed) and one log line, instead of a uuid and two URLs per name;
    * ``load_git_info`` is answered with nothing: Streamlit ran ``git`` on the serving thread for each one (a burst
      at the allowed pace froze a server for 2-17 s) and sent any visitor the repository, its branch and the names
      of untracked and modified files (attack round 64). The dashboard shows no git information."""
    with _INSTALL_LOCK:
        if _MESSAGE_KINDS:
            return True
        try:
            from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: PLC0415
            from streamlit.runtime.app_session import AppSession  # noqa: PLC0415
        except ImportError:  # bare mode, or another Streamlit
            return False
        if not hasattr(AppSession, "_handle_file_urls_request") or not hasattr(
                AppSession, "_handle_git_information_request"):
            return False
        original = AppSession._handle_file_urls_request  # noqa: SLF001

        def bounded_file_urls(session: Any, request: Any) -> None:
            count = len(request.file_names)
            if count <= MAX_FILE_URLS_PER_REQUEST:
                original(session, request)
                return
            _quiet_log(f"a request for upload addresses of {count:,} files (more than "
                       f"{MAX_FILE_URLS_PER_REQUEST:,}): answered with none")
            msg = ForwardMsg()
            msg.file_urls_response.response_id = request.request_id
            msg.file_urls_response.error_msg = (f"{count:,} files at once: this server takes at most "
                                                f"{MAX_FILE_URLS_PER_REQUEST:,} in one selection")
            session._enqueue_forward_msg(msg)  # noqa: SLF001

        def no_git_information(session: Any) -> None:
            return None

        AppSession._handle_file_urls_request = bounded_file_urls  # noqa: SLF001
        AppSession._handle_git_information_request = no_git_information  # noqa: SLF001
        _MESSAGE_KINDS.append(True)
        return True


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
#: new websocket connections (each a new session of the app, about 0.13 s of the server's time to set up) one party
#: may open a minute, sustained, and at once: one address opening and closing 7.8 sessions a second held a core and
#: slowed every other visitor's page fivefold (attack round 34). A reload or a new tab is one; the browser retries a
#: refused one by itself.
DEFAULT_NEW_CONNECTIONS_PER_MINUTE = 60
NEW_CONNECTION_BURST = 30
_CONNECTION_LIMIT: list[ConnectionLimit] = []
_ROUTES_SEARCHED: list[bool] = []  # the live objects are searched for the route once per process


#: messages the websocket connections of one party (an address; the server's own machine) may send a second,
#: sustained, and at once: past them the server reads their next message later (the tab waits; nothing is dropped).
#: A tab sent 40,000 download presses in 1 s over its websocket: each ran on the thread pool every download shares
#: before it could be refused, and every other visitor's download waited 44.6 s (attack round 26). A person's clicks
#: and keys send a few a second.
MESSAGES_PER_SECOND = 20.0
MESSAGE_BURST = 200
#: a connection whose next message would wait longer than this for its turn is closed: 30,000 two-byte messages sent
#: in 1 s queued 25 minutes of handling that went on after the client had left, holding a place and keeping the
#: server from stopping (attack round 34); a person's tab never comes near it
MAX_MESSAGE_WAIT_SECONDS = 10.0


def _one_less(counts: dict, party: Any) -> None:
    """One connection of ``party`` fewer in ``counts`` (its entry gone at none; the caller holds the lock)."""
    left = counts.get(party, 0) - 1
    if left > 0:
        counts[party] = left
    else:
        counts.pop(party, None)


class ConnectionLimit:
    """Counts the open websocket connections per party (:func:`deem_studio.owners.client_party`) and in all, and
    refuses one past either limit. Runs on the server's event loop; the lock keeps it right if it ever does not."""

    def __init__(self, per_client: int, total: int, new_per_minute: float = DEFAULT_NEW_CONNECTIONS_PER_MINUTE,
                 clock: Callable[[], float] = time.monotonic):
        self.per_client, self.total = per_client, total
        self.new_per_minute, self.clock = float(new_per_minute), clock
        self.open: dict[str | None, int] = {}
        self.rates: dict[str | None, TokenBucket] = {}
        self.openings: dict[str | None, TokenBucket] = {}  # each party's pace of new connections
        self._lock = threading.Lock()
        self._refusals = LogThrottle()  # (each refused handshake logged a line: 263 KB/s, 21.7 GiB a day; attack round 33)

    def _log_refusal(self, reason: str) -> None:
        """One line a second at most, with how many were left out since the last."""
        left_out = self._refusals.due()
        if left_out is not None:
            _LOG.warning("websocket refused: %s (%d more refused since the last such line, not logged)", reason,
                         left_out)

    def admit(self, party: str | None) -> str | None:
        """Count a new connection and return None, or the reason it is refused (nothing counted). The server's own
        machine (party None: a local browser, an SSH tunnel, a proxy that names no visitor) is held to the
        per-address limit too: one local process held all 500 places and every visitor was refused (attack round
        27)."""
        with self._lock:
            if self.total > 0 and sum(self.open.values()) >= self.total:
                return f"the server has {self.total} connections open (DEEM_MAX_CONNECTIONS)"
            if 0 < self.per_client <= self.open.get(party, 0):
                where = "this address" if party is not None else THIS_MACHINE
                return f"{self.per_client} connections are open from {where} (DEEM_MAX_CONNECTIONS_PER_CLIENT)"
            if self.new_per_minute > 0:
                pace = self.openings.get(party)
                if pace is None:
                    if len(self.openings) >= 10_000:
                        self.openings.pop(next(iter(self.openings)))
                    pace = self.openings[party] = TokenBucket(self.new_per_minute / 60.0, NEW_CONNECTION_BURST,
                                                               self.clock)
                if not pace.take():
                    where = "this address" if party is not None else THIS_MACHINE
                    return (f"{where} opened more than {self.new_per_minute:g} new connections a minute "
                            f"(DEEM_NEW_CONNECTIONS_PER_MINUTE)")
            self.open[party] = self.open.get(party, 0) + 1
            return None

    def rate(self, party: str | None) -> TokenBucket:
        """The message pace of ``party``'s connections together: kept past their close (a connection of its own
        gave each reconnect a fresh burst: 29,000 presses in 16 s; attack round 27); the oldest of 10,000 dropped."""
        with self._lock:
            rate = self.rates.get(party)
            if rate is None:
                if len(self.rates) >= 10_000:
                    self.rates.pop(next(iter(self.rates)))
                rate = self.rates[party] = TokenBucket(MESSAGES_PER_SECOND, MESSAGE_BURST)
            return rate

    def closed(self, party: str | None) -> None:
        with self._lock:
            _one_less(self.open, party)

    def guard(self, app: Any) -> Any:
        """``app`` (the ASGI app of Streamlit's websocket route) behind this limit: a connection past it is
        refused before it is accepted (the browser's handshake gets HTTP 403; it retries as after any drop)."""
        from deem_studio.owners import client_party, request_host, same_origin  # noqa: PLC0415

        async def guarded(scope: dict, receive: Any, send: Any) -> None:
            client = scope.get("client") or (None, None)
            headers = {name.lower(): value.decode("latin-1") for name, value in scope.get("headers") or []}
            forwarded = headers.get(b"x-forwarded-for")
            origin = headers.get(b"origin")
            host, allowed = request_host(scope.get("headers"))
            if not allowed:  # (DNS rebinding: attack round 33; not_framed says more)
                self._log_refusal(f"host {str(host)[:100]!r} is not this server's")
                await send({"type": "websocket.close", "code": 1008, "reason": "another host"})
                return
            if origin is not None and not same_origin(origin, host, scope.get("scheme") or "ws"):
                # a browser page of another origin (another port of this host: Streamlit's own check lets any port
                # of localhost in) opened the websocket with this site's cookies, read the owner key and drove the
                # app as its visitor (attack round 29); a browser always sends Origin, other clients carry no cookie
                self._log_refusal(f"a page of another origin ({origin[:100]!r})")
                await send({"type": "websocket.close", "code": 1008, "reason": "another origin"})
                return
            party = client_party(client[0], forwarded)
            refused = self.admit(party)
            if refused is not None:
                self._log_refusal(refused)
                await send({"type": "websocket.close", "code": 1013, "reason": "try again later"})
                return
            rate = self.rate(party)

            ahead = [0.0]  # seconds this connection's messages have waited for their turn, less its own pauses

            async def paced() -> dict:
                loop = asyncio.get_running_loop()
                asked = loop.time()
                message = await receive()
                if message.get("type") == "websocket.receive":
                    # a message already there when asked for is a client ahead of its pace: the socket holds a
                    # backlog the pace would read for minutes, also after the client has gone (attack round 34)
                    ahead[0] = max(0.0, ahead[0] - (loop.time() - asked))
                    wait = rate.delay()
                    ahead[0] += wait
                    if ahead[0] > MAX_MESSAGE_WAIT_SECONDS:  # a backlog, not a person: the connection ends here
                        self._log_refusal(f"a connection kept {ahead[0]:.0f} s ahead of its pace of "
                                          f"{MESSAGES_PER_SECOND:g} messages a second: closed")
                        return {"type": "websocket.disconnect", "code": 1008}
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
            total=int(env_value("DEEM_MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS)) if total is None else total,
            new_per_minute=float(env_value("DEEM_NEW_CONNECTIONS_PER_MINUTE", DEFAULT_NEW_CONNECTIONS_PER_MINUTE)))
        for route in routes:
            route.app = limit.guard(route.app)
        _CONNECTION_LIMIT.append(limit)
        return limit


# --------------------------------------------------------------------------- plain HTTP connections
#: HTTP connections (not yet websockets) one network address may hold at once, and all addresses together (the
#: total also at most half the descriptors the process may open beside its websockets), and the seconds a connection
#: has to send a whole request head. 20,000 connections each holding an unfinished head (``X-a: ``) took the server
#: to its descriptor limit: every other visitor's request timed out and the server spent 94% of a core failing to
#: accept (attack round 30); uvicorn counted none of them and timed none out. A browser opens 6 to 10.
DEFAULT_MAX_HTTP_CONNECTIONS_PER_CLIENT = 100
DEFAULT_MAX_HTTP_CONNECTIONS = 2000
HEAD_SECONDS = 10.0
#: seconds a response may wait on a client that reads none of it (the server's send buffer full): 100 requests for a
#: 4.7 MB script, none read, held an address's 100 places past 35 s and every other visitor there was refused (attack
#: round 31); a client that reads on, however slowly, resumes the response and restarts the count
STALL_SECONDS = 30.0


def descriptor_limit() -> int | None:
    """The files this process may open at once (None where unknown)."""
    try:
        import resource  # noqa: PLC0415 - not on Windows

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except Exception:  # noqa: BLE001
        return None
    return None if soft == resource.RLIM_INFINITY else int(soft)


class HttpConnectionLimit:
    """Counts the open HTTP connections per party (:func:`deem_studio.owners.client_party` of the peer's address:
    no header is read before a connection is counted) and in all, closes one past either limit as it is accepted,
    and closes one that has not sent a whole request head within ``head_seconds`` (of its opening, or of its last
    response), or that has read nothing of a response for ``stall_seconds``. A connection that becomes a websocket
    leaves this count for :class:`ConnectionLimit`'s. Runs on the server's event loop."""

    def __init__(self, per_client: int, total: int, head_seconds: float = HEAD_SECONDS,
                 stall_seconds: float = STALL_SECONDS):
        self.per_client, self.total, self.head_seconds = int(per_client), int(total), float(head_seconds)
        self.stall_seconds = float(stall_seconds)
        self.open: dict[str | None, int] = {}
        self._refusals = LogThrottle()
        self._lock = threading.Lock()

    def admit(self, party: str | None) -> str | None:
        """Count a new connection and return None, or the reason it is refused (nothing counted). The server's own
        machine (None) is held to the per-address limit too, unless a trusted proxy there speaks for every visitor
        (``DEEM_TRUST_PROXY``): then only the total binds."""
        from deem_studio.owners import proxy_trusted  # noqa: PLC0415

        with self._lock:
            if self.total > 0 and sum(self.open.values()) >= self.total:
                return f"the server has {self.total} HTTP connections open (DEEM_MAX_HTTP_CONNECTIONS)"
            if 0 < self.per_client <= self.open.get(party, 0) and (party is not None or not proxy_trusted()):
                where = "this address" if party is not None else THIS_MACHINE
                return (f"{self.per_client} HTTP connections are open from {where} "
                        f"(DEEM_MAX_HTTP_CONNECTIONS_PER_CLIENT)")
            self.open[party] = self.open.get(party, 0) + 1
            return None

    def closed(self, party: str | None) -> None:
        with self._lock:
            _one_less(self.open, party)

    def held(self) -> int:
        with self._lock:
            return sum(self.open.values())

    def _log_refusal(self, reason: str) -> None:
        """One line a second at most (a flood of connections is refused thousands of times a second)."""
        if self._refusals.due() is not None:
            _LOG.warning("HTTP connection refused: %s (%d refused so far)", reason, self.refused)

    @property
    def refused(self) -> int:
        """Connections refused so far."""
        return self._refusals.count

    def protocol(self, base: type) -> type:
        """``base`` (uvicorn's HTTP protocol class: h11's or httptools') counting its connections here."""
        if getattr(base, "_deem_limit", None) is self:
            return base
        from deem_studio.owners import client_party  # noqa: PLC0415

        limit = self

        class Limited(base):  # type: ignore[misc, valid-type]
            _deem_limit = limit
            _deem_counted = False
            _deem_timer: Any = None
            _deem_stall: Any = None

            def connection_made(self, transport: Any) -> None:
                super().connection_made(transport)
                if hasattr(self, "app") and not hasattr(self.app, "_deem_not_framed"):
                    self.app = not_framed(self.app)  # (each request of the connection is answered through it)
                peer = transport.get_extra_info("peername")
                self._deem_party = client_party(peer[0] if isinstance(peer, tuple) and peer else None, trust=False)
                refused = limit.admit(self._deem_party)
                if refused is not None:
                    limit._log_refusal(refused)  # noqa: SLF001
                    transport.close()
                    return
                self._deem_counted = True
                self._deem_wait_for_head()

            def _deem_wait_for_head(self) -> None:
                if self._deem_timer is not None:
                    self._deem_timer.cancel()
                self._deem_timer = self.loop.call_later(limit.head_seconds, self._deem_head_timeout)

            def _deem_head_timeout(self) -> None:
                self._deem_timer = None
                cycle = getattr(self, "cycle", None)
                if cycle is None or cycle.response_complete:  # no request head has come whole since
                    self.transport.close()

            def pause_writing(self) -> None:  # the client reads nothing more: the send buffer is full
                super().pause_writing()
                if self._deem_stall is None:
                    self._deem_stall = self.loop.call_later(limit.stall_seconds, self._deem_stalled)

            def resume_writing(self) -> None:
                super().resume_writing()
                if self._deem_stall is not None:
                    self._deem_stall.cancel()
                    self._deem_stall = None

            def _deem_stalled(self) -> None:
                self._deem_stall = None
                self.transport.abort()  # (close() would wait for the buffer the client does not read)

            def on_response_complete(self) -> None:
                super().on_response_complete()
                if self._deem_counted and not self.transport.is_closing():
                    self._deem_wait_for_head()

            def _deem_release(self) -> None:
                for name in ("_deem_timer", "_deem_stall"):
                    timer = getattr(self, name)
                    if timer is not None:
                        timer.cancel()
                        setattr(self, name, None)
                if self._deem_counted:
                    self._deem_counted = False
                    limit.closed(self._deem_party)

            def handle_websocket_upgrade(self, *args: Any) -> None:
                self._deem_release()  # a websocket from here: ConnectionLimit counts it
                super().handle_websocket_upgrade(*args)

            def connection_lost(self, exc: Exception | None) -> None:
                self._deem_release()
                super().connection_lost(exc)

        Limited.__name__ = Limited.__qualname__ = f"Limited{base.__name__}"
        return Limited

    def install(self, server_config: Any) -> None:
        """Have ``server_config`` (a uvicorn Config, loaded) make its HTTP connections with :meth:`protocol`: the
        server reads the class at every connection."""
        base = getattr(server_config, "http_protocol_class", None)
        if isinstance(base, type):
            server_config.http_protocol_class = self.protocol(base)


#: headers on every HTTP answer: no page of another origin may show the app in a frame. A page on another port of
#: the host framed it invisibly, and the framed app read the visitor's owner key (a browser's storage partitions by
#: site, which ignores the port): two clicks on the decoy deleted the visitor's run (attack round 32)
FRAME_HEADERS = ((b"content-security-policy", b"frame-ancestors 'self'"), (b"x-frame-options", b"SAMEORIGIN"))


#: Streamlit's endpoints no page uses and no visitor should read: its metrics told anyone the sessions open and the
#: bytes of another session's upload still held (attack round 33)
CLOSED_PATHS = ("/_stcore/metrics",)


async def _refuse(send: Any, status: int, text: str) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                            *FRAME_HEADERS]})
    await send({"type": "http.response.body", "body": body})


_HOST_REFUSALS = LogThrottle()


def not_framed(app: Any) -> Any:
    """``app`` (an ASGI app) answering every HTTP request with :data:`FRAME_HEADERS` (in place of any it sets);
    a request for another host than this server's (:func:`deem_studio.owners.host_allowed`: DNS rebinding) is
    refused (403), and one for :data:`CLOSED_PATHS` answered 404."""
    from deem_studio.owners import request_host  # noqa: PLC0415

    names = {name for name, _ in FRAME_HEADERS}

    async def framed_guard(scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await app(scope, receive, send)
            return
        host, allowed = request_host(scope.get("headers"))
        if not allowed:
            left_out = _HOST_REFUSALS.due()
            if left_out is not None:
                _LOG.warning("HTTP request refused: host %r is not this server's (DEEM_ALLOWED_HOSTS) (%d more such "
                             "since the last line, not logged)", host[:100], left_out)
            await _refuse(send, 403, "This DEEM Studio server does not answer for this host name (a page of another "
                                     "site may point its name at this server). Its administrator can name the host in "
                                     "DEEM_ALLOWED_HOSTS.")
            return
        if str(scope.get("path") or "").rstrip("/").endswith(CLOSED_PATHS):
            await _refuse(send, 404, "Not found")
            return

        async def send_guarded(message: dict) -> None:
            if message.get("type") == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers") or () if bytes(k).lower() not in names]
                message = {**message, "headers": headers + list(FRAME_HEADERS)}
            await send(message)

        await app(scope, receive, send_guarded)

    framed_guard._deem_not_framed = True  # type: ignore[attr-defined]
    framed_guard.__wrapped__ = app  # type: ignore[attr-defined]
    return framed_guard


_HTTP_LIMIT: list[HttpConnectionLimit] = []
_HTTP_SEARCHED: list[bool] = []  # the live configs are searched once per process


def http_connection_limit() -> HttpConnectionLimit:
    """This process's limit (``DEEM_MAX_HTTP_CONNECTIONS_PER_CLIENT``, ``DEEM_MAX_HTTP_CONNECTIONS``; 0: none)."""
    with _INSTALL_LOCK:
        if not _HTTP_LIMIT:
            total = int(env_value("DEEM_MAX_HTTP_CONNECTIONS", DEFAULT_MAX_HTTP_CONNECTIONS))
            files = descriptor_limit()
            if files is not None and total > 0:  # room beside the websockets for files, runs, the database
                websockets = int(env_value("DEEM_MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS)) or files // 2
                total = max(16, min(total, (files - websockets) // 2))
            _HTTP_LIMIT.append(HttpConnectionLimit(
                int(env_value("DEEM_MAX_HTTP_CONNECTIONS_PER_CLIENT", DEFAULT_MAX_HTTP_CONNECTIONS_PER_CLIENT)), total))
        return _HTTP_LIMIT[0]


def install_http_connection_limit(configs: list | None = None) -> HttpConnectionLimit | None:
    """Put :class:`HttpConnectionLimit` into the server's uvicorn config (``configs``, else the live ones: from the
    first page under ``streamlit run``; ``deem-studio`` installs it as the server loads its config)."""
    try:
        import uvicorn  # noqa: PLC0415
    except Exception:  # noqa: BLE001 - another server
        return None
    if configs is None:
        with _INSTALL_LOCK:
            if _HTTP_SEARCHED:
                return _HTTP_LIMIT[0] if _HTTP_LIMIT else None  # searched at the first page already
            _HTTP_SEARCHED.append(True)
        configs = [obj for obj in live_instances(uvicorn.Config) if getattr(obj, "loaded", False)]
        if not configs:
            return None
    limit = http_connection_limit()
    for obj in configs:
        limit.install(obj)
    return limit
