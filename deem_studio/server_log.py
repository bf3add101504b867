"""The server's log, bounded: no line a client can make long, no call site a client can make write thousands of
lines a second.

Streamlit writes a client's own words into its log: a websocket message asking for a file id that does not exist is
logged with the id twice and a traceback, a request id of another session with the id. A client sending 60 such
messages of 2 MB ids grew the log by 240 MB in two seconds, and tiny ones wrote 15 bytes of log per byte sent,
about 2 GB a day from one address (attack round 34). :class:`BoundedLog`, a filter on every Streamlit logger's
handler (and this app's), cuts each message and traceback to a length and lets each call site write a burst of
lines, then one a second, saying how many it left out.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

__all__ = ["BoundedLog", "LogThrottle", "TokenBucket", "install_log_bounds"]

#: longest message kept (characters); the rest is counted, not written
MAX_MESSAGE_CHARS = 1000
#: longest traceback kept: its first and last halves (the exception's own message, a client's id, is last)
MAX_TRACE_CHARS = 4000
#: lines a call site may write at once before the pace of one a second holds
BURST = 10


class LogThrottle:
    """One log line a second at most for an event that can come thousands of times a second (refused connections,
    aborted uploads, refused downloads): :meth:`due` counts the event and says whether to log it, with how many were
    left out since the last line logged."""

    def __init__(self, seconds: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.seconds, self.clock, self.last, self.left_out, self.count = float(seconds), clock, None, 0, 0
        self._lock = threading.Lock()

    def due(self) -> int | None:
        """None: not to be logged (counted as left out); else the number left out since the last line."""
        with self._lock:
            now = self.clock()
            self.count += 1
            if self.last is not None and now - self.last < self.seconds:
                self.left_out += 1
                return None
            left_out, self.last, self.left_out = self.left_out, now, 0
            return left_out


class TokenBucket:
    """``rate`` a second, ``burst`` at once: :meth:`delay` takes one and says how long it must wait to keep within the
    rate; :meth:`take` takes one only when it is within it now."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.clock = float(rate), float(burst), clock
        self.tokens, self.at = float(burst), clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now

    def delay(self) -> float:
        self._refill()
        self.tokens -= 1.0
        return max(0.0, -self.tokens / self.rate)

    def take(self) -> bool:
        self._refill()
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


def _cut(text: str, most: int) -> str:
    return text if len(text) <= most else f"{text[:most]}… ({len(text) - most:,} characters more, not logged)"


def _visible(text: str) -> str:
    """``text`` with control characters other than line ends and tabs escaped (a client's escape sequences
    recoloured or cleared an operator's terminal)."""
    from deem_core.data.text import escape_controls  # noqa: PLC0415

    if text.isprintable():
        return text
    return "\n".join(escape_controls(line).replace("\\t", "\t") for line in text.split("\n"))


class BoundedLog(logging.Filter):
    """A handler's filter: every record's message cut to ``max_chars`` (its arguments merged in first), its
    traceback to ``max_trace_chars``, control characters escaped; each call site (logger, file, line) may write
    ``burst`` lines at once, then one every ``seconds``; the next line written says how many were left out."""

    def __init__(self, max_chars: int = MAX_MESSAGE_CHARS, max_trace_chars: int = MAX_TRACE_CHARS,
                 burst: int = BURST, seconds: float = 1.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.max_chars, self.max_trace_chars = int(max_chars), int(max_trace_chars)
        self.burst, self.seconds, self.clock = float(burst), float(seconds), clock
        self._sites: dict[tuple, list] = {}  # site -> [its TokenBucket, lines left out since its last line]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_deem_bounded", False):  # (one record, two handlers: counted once)
            return True
        site = (record.name, record.pathname, record.lineno)
        with self._lock:
            state = self._sites.get(site)
            if state is None:
                state = self._sites[site] = [TokenBucket(1.0 / self.seconds, self.burst, self.clock), 0]
            if not state[0].take():
                state[1] += 1
                return False
            left_out, state[1] = state[1], 0
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a record whose arguments do not fit its format: logged as it is
            message = str(record.msg)
        message = _visible(_cut(message, self.max_chars))
        if left_out:
            message += f" ({int(left_out):,} more such lines since the last one, not logged)"
        record.msg, record.args = message, None
        if record.exc_info and not record.exc_text:
            trace = logging.Formatter().formatException(record.exc_info)
            if len(trace) > self.max_trace_chars:
                half = self.max_trace_chars // 2
                trace = f"{trace[:half]}\n… ({len(trace) - 2 * half:,} characters not logged) …\n{trace[-half:]}"
            record.exc_text = _visible(trace)
        record._deem_bounded = True
        return True


_BOUNDS = BoundedLog()


def _bound(logger: logging.Logger) -> None:
    for handler in logger.handlers:
        if _BOUNDS not in handler.filters:
            handler.addFilter(_BOUNDS)


def install_log_bounds() -> BoundedLog:
    """:class:`BoundedLog` on the handlers of every Streamlit logger made so far and of every one made later
    (Streamlit gives each logger a handler of its own), and on the root logger's (this app's lines); once per
    process."""
    from streamlit import logger as st_logger  # noqa: PLC0415

    setup = st_logger.setup_formatter
    if not getattr(setup, "_deem_bounded", False):
        def bounded_setup(logger: logging.Logger) -> None:
            setup(logger)
            _bound(logger)

        bounded_setup._deem_bounded = True  # type: ignore[attr-defined]
        st_logger.setup_formatter = bounded_setup
    for logger in list(st_logger._loggers.values()) + [logging.getLogger()]:  # noqa: SLF001
        _bound(logger)
    _quiet_engine_warnings()
    return _BOUNDS


def _quiet_engine_warnings() -> None:
    """The engine's warnings about a user's labels and fallbacks are not written to the server's log: Python printed
    each to standard error, outside these bounds, quoting the file's and the workers' names (attack round 41); a run
    keeps every one of them in its messages (``DEEM.warnings_``), where its owner reads them."""
    import warnings  # noqa: PLC0415

    from deem_core.methods.deem import DependenceWarning, FallbackWarning, LabelWarning  # noqa: PLC0415

    for category in (DependenceWarning, FallbackWarning, LabelWarning):
        warnings.filterwarnings("ignore", category=category)
