"""What one dashboard server lets its sessions hold in memory at once, so that no visitor (nor many) can take
it down. (Uploaded files: :mod:`deem_studio.uploads`.)

Found attacking main (2-core, 23 GB machine):

* **Loaded data.** Every session keeps its data set in memory (a 31 MB ``.csv.gz`` of 5 M answers holds
  0.5 GB; twenty sessions, twenty such files) and a queued job keeps its data after the browser is gone.
  :class:`DataLedger` counts the annotation sets that sessions and jobs hold (weak references: a set counts
  until its last holder lets go) and refuses a new one beyond ``DEEM_MAX_LOADED_BYTES`` (default a quarter of
  the machine's memory). A run opened by several sessions (a shared link) is held once (:func:`run_data`).
* **A run's stored tables.** The Results and Train pages of a run read its tables (one (tasks x classes) table per
  method): every session kept its own copy of all of them (three sessions on one 60,000 x 200-class run's link
  held 3.3 GB; attack round 14). :func:`run_tables` reads only what a page asks for (one method's table, or
  every method's labels), once for every session, counted by the same ledger, the last few kept.
* **Reading.** Reading a large file costs about twice what it holds at the end: at most
  ``DEEM_MAX_CONCURRENT_READS`` (default 1) reads of large files run at once, and as many of small ones
  (:func:`reading`); the others wait up to a minute, the parties that read least lately first.

No page code here: the pages call :func:`reading`, :func:`admit_data`, :func:`run_data` and :func:`run_tables`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import os
import threading
import sys
import time
import weakref
from collections import Counter, OrderedDict, deque
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd

from deem_core.data.formats.limits import describe_bytes
from deem_core.data.formats.sources import release_memory
from deem_studio.settings import env_value
from deem_studio.server_log import LogThrottle
from deem_studio.uploads import CapacityError, physical_memory

__all__ = ["CapacityError", "DataLedger", "admit_data", "data_bytes", "ledger", "reading", "run_data", "run_tables",
           "time_limit"]


# --------------------------------------------------------------------------- loaded data
def data_bytes(data: Any) -> int:
    """Memory an annotation set holds: its arrays and the indexes of task, worker and class names, and what is kept
    with it (``held_bytes``: a Label Studio export's bytes, kept to write its predictions file; counted nowhere, three
    tabs each kept a 216 MB export after its upload was removed and released; attack round 53). A diagnostics
    result's parts are counted the same way: their arrays, tables and lists of names."""
    return _bytes_of(list(vars(data).values())) + max(0, int(getattr(data, "held_bytes", 0) or 0))


def _bytes_of(values: list[Any]) -> int:
    """Memory of the arrays, indexes, series and frames among ``values`` (and inside dicts of them)."""
    total = 0
    for value in values:
        if isinstance(value, np.ndarray):
            total += int(value.nbytes)
        elif isinstance(value, (pd.Index, pd.Series)):
            total += int(value.memory_usage(deep=True))
        elif isinstance(value, pd.DataFrame):
            total += int(value.memory_usage(deep=True).sum())
        elif isinstance(value, dict):
            total += _bytes_of(list(value.values()))
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):  # (a diagnostics result's parts)
            total += _bytes_of(list(vars(value).values()))
        elif isinstance(value, (list, tuple)) and value and isinstance(value[0], str):  # (names kept as a list)
            total += sum(sys.getsizeof(v) for v in value) + 8 * len(value)
    return total


#: share of the data budget one party (a network address; a workspace on the server's own machine) may hold: one
#: visitor's three tabs took 53.1 of 53.4 MiB and every other visitor's load was refused (attack round 28)
PARTY_SHARE = 0.5


class DataLedger:
    """The annotation sets held in this process (by sessions and jobs), counted until their last holder lets go; one
    party's sets at most :data:`PARTY_SHARE` of the budget."""

    def __init__(self, budget: int):
        self.budget = int(budget)
        self._lock = threading.Lock()
        self._held: dict[int, int] = {}
        self._party: dict[int, str] = {}

    def _forget(self, key: int) -> None:
        with self._lock:
            self._held.pop(key, None)
            self._party.pop(key, None)
        release_soon()  # (three closed sessions' sets stayed in the process until another read; attack round 40)

    def held(self) -> int:
        with self._lock:
            return sum(self._held.values())

    def admit(self, data: Any, replacing: Any = None, party: str | None = None) -> int:
        """Count ``data`` (once); CapacityError when the sets already held leave no room for it, or when ``party``'s
        sets would pass its share. ``replacing``: a set the caller lets go of in exchange (not counted against the
        room)."""
        key = id(data)
        with self._lock:
            if key in self._held:
                return self._claim(key, self._held[key], replacing, party)
        size = data_bytes(data)
        with self._lock:
            if key in self._held:
                return self._claim(key, self._held[key], replacing, party)
            swapped = id(replacing) if replacing is not None else None
            held = sum(self._held.values()) - self._held.get(swapped, 0)
            if held + size > self.budget:
                raise CapacityError(f"this data set needs {describe_bytes(size)} of memory and the server already "
                                    f"holds {describe_bytes(held)} of data sets for its users (at most "
                                    f"{describe_bytes(self.budget)}); try again later, or load a smaller data set")
            self._claim(key, size, replacing, party)
            self._held[key] = size
        weakref.finalize(data, self._forget, key)
        return size

    def _claim(self, key: int, size: int, replacing: Any, party: str | None) -> int:
        """Count a set of ``size`` for ``party`` (with the lock held) unless a party holds it already; CapacityError
        past the party's share. A set already held for no party is claimed too: a run's annotations, counted by the
        shared copy first, were never counted for the visitor whose tabs opened them (four tabs of one visitor held
        21.9 of 24 MiB again; attack round 29)."""
        if party is None or key in self._party:
            return size
        swapped = id(replacing) if replacing is not None else None
        own = sum(n for k, n in self._held.items() if self._party.get(k) == party and k not in (swapped, key))
        share = int(self.budget * PARTY_SHARE)
        if own + size > share:
            raise CapacityError(f"this data set needs {describe_bytes(size)} of memory, and the data sets open in "
                                f"your tabs already hold {describe_bytes(own)} of the {describe_bytes(share)} one "
                                f"visitor may hold (half of what the server keeps for its users); close other tabs "
                                f"of DEEM Studio, or load a smaller data set")
        self._party[key] = party
        return size


_LEDGER: list[DataLedger] = []
_LOCK = threading.Lock()


def ledger() -> DataLedger:
    """The process-wide ledger (``DEEM_MAX_LOADED_BYTES``, default a quarter of the machine's memory)."""
    with _LOCK:
        if not _LEDGER:
            _LEDGER.append(DataLedger(int(env_value("DEEM_MAX_LOADED_BYTES", physical_memory() // 4))))
        return _LEDGER[0]


def admit_data(data: Any, replacing: Any = None, party: str | None = None) -> int:
    """Count a data set a session is about to keep (instead of ``replacing``; ``party``: whose, for its share);
    CapacityError when the server has no room for it, even after letting go of the runs' tables kept for the pages
    (:func:`run_tables`)."""
    try:
        return ledger().admit(data, replacing, party)
    except CapacityError:
        if not _release_kept_tables():
            raise
        return ledger().admit(data, replacing, party)


#: bytes of the previews a session keeps besides the latest and its file's one before it (:func:`kept_previews`)
KEPT_PREVIEW_BYTES = 16 * 2**20


def kept_previews(entries: list[tuple[Any, Any]], sizes: dict[Any, int], party: str | None = None,
                  room: int | None = None) -> list[tuple[Any, Any]]:
    """Of a session's previews (``(key, preview or error)``, oldest first; a key's first item names the file), those it
    keeps: the latest and the one of its file before it (the page reads the first file without and with the mapping
    chosen on every run: with either dropped, both were read again each time; read 44), each counted in the data
    ledger for ``party`` when it comes (refused there, by the server's room or the party's share, none is kept: read
    again on the next click), and of the others those that fit ``room`` bytes (:data:`KEPT_PREVIEW_BYTES`). ``sizes``:
    the bytes of each kept preview, by key, kept up to date here. Eleven previews of wide files, 65 MB each, were kept
    per tab and counted nowhere: about 1 GB of the server a tab for a 2.2 MB upload (attack round 48)."""
    *older, (key, latest) = entries
    if not isinstance(latest, BaseException) and key not in sizes:  # (an error holds no frame: kept as it is)
        try:  # (the ledger itself: admit_data lets go of every session's kept run tables to make room)
            sizes[key] = ledger().admit(latest, party=party)
        except CapacityError:
            sizes.clear()
            return []
    sizes.setdefault(key, 0)
    kept = [(key, latest)]
    room = KEPT_PREVIEW_BYTES if room is None else int(room)
    partner = True  # the latest's file's one before it is kept whatever its size
    for old_key, old in reversed(older):  # the latest first
        if old_key not in sizes:
            sizes[old_key] = 0 if isinstance(old, BaseException) else data_bytes(old)
        if partner and old_key[0] == key[0]:
            partner = False
        elif sizes[old_key] <= room:
            room -= sizes[old_key]
        else:
            continue
        kept.insert(0, (old_key, old))
    for gone in set(sizes) - {k for k, _ in kept}:
        del sizes[gone]
    return kept


# --------------------------------------------------------------------------- reading
READ_WAIT_SECONDS = 60.0
#: bytes of files from which a read goes in the line of large reads (``DEEM_READ_LARGE_BYTES``): one read at a time
#: in all kept a visitor's 13 KB file waiting 31-33 s behind two or three tabs re-pressing "Load" on a 63 MB one
#: (attack round 62); a small read now waits only for small ones
READ_LARGE_BYTES = 8 * 2**20
#: reads that may wait in one line beside those running, server-wide (a read past them is refused at once): 16 fresh
#: browser contexts each previewing a 10 KB file behind one slow read got every other visitor's read refused in 0.5 s
#: (attack round 63)
MAX_WAITING_READS = 64
#: reads one party (a workspace, a network address) may have waiting in one line (16 from one address filled it)
READS_WAITING_PER_PARTY = 2


def read_large_bytes() -> int:
    return int(env_value("DEEM_READ_LARGE_BYTES", READ_LARGE_BYTES))


#: seconds a read sized small may take in the line of small reads before it is read again in the line of large ones
#: (a file's size says little of its reading time: a 1.3 MB gzip of 99,999 columns read for 245 s; attack round 9)
SMALL_READ_SECONDS = 15.0


def small_read_limits(size: int) -> Any:
    """The provisional limits of a read sized at ``size`` bytes in the line of small reads: twice its size (and 1 MiB)
    and :data:`SMALL_READ_SECONDS`, within the server's own limits; past them the read raises ``ReadOutgrown``
    (:func:`deem_core.data.formats.limits.Limits`)."""
    from deem_core.data.formats.limits import Limits  # noqa: PLC0415

    limits = Limits.from_env()
    seconds = min(limits.max_seconds, SMALL_READ_SECONDS) if limits.max_seconds else SMALL_READ_SECONDS
    return dataclasses.replace(limits, max_bytes=min(limits.max_bytes, 2 * int(size) + 2**20), max_seconds=seconds,
                               provisional=True)


class _ReadLine:
    """One line of read slots (``DEEM_MAX_CONCURRENT_READS`` at once, default 1). A slot that comes free goes to the
    waiting read whose parties (its workspace and network address) have read the least in the last
    :data:`READ_WINDOW_SECONDS`, the time of their reads still running counted, then to the oldest: a semaphore gave
    it to whichever thread woke first, and a visitor re-pressing "Load" in two or three tabs held the slot while
    another visitor waited (attack round 62)."""

    def __init__(self, size: int):
        self.size = size
        self.running: dict[int, tuple[tuple[str, ...], float]] = {}  # ticket -> (parties, when it started)
        self.waiting: dict[int, tuple[str, ...]] = {}  # ticket -> parties
        self.tickets = 0
        self.changed = threading.Condition()

    def _cost(self, parties: tuple[str, ...], now: float) -> float:
        """(lock held) Seconds ``parties`` read in the window, their running reads' time counted."""
        spent = max((read_seconds_spent(party, now) for party in parties), default=0.0)
        return spent + sum(now - started for others, started in self.running.values()
                           if set(others) & set(parties))

    def _next(self) -> int:
        """(lock held) The waiting read that gets the next free slot."""
        now = time.monotonic()
        return min(self.waiting, key=lambda ticket: (self._cost(self.waiting[ticket], now), ticket))

    @contextlib.contextmanager
    def turn(self, parties: tuple[str, ...], wait: float) -> Iterator[None]:
        with self.changed:
            if len(self.waiting) >= MAX_WAITING_READS:
                raise CapacityError("the server is busy reading other users' files; try again in a minute")
            for party in parties:
                if sum(party in waiting for waiting in self.waiting.values()) >= READS_WAITING_PER_PARTY:
                    raise CapacityError(f"you have {READS_WAITING_PER_PARTY} reads waiting for the server already; "
                                        f"wait for them")
            ticket = self.tickets = self.tickets + 1
            self.waiting[ticket] = parties
            ready = self.changed.wait_for(lambda: len(self.running) < self.size and self._next() == ticket,
                                          timeout=wait)
            del self.waiting[ticket]
            if not ready:
                self.changed.notify_all()  # (it may have been the one the others waited behind)
                raise CapacityError("the server is busy reading other users' files; try again in a minute")
            self.running[ticket] = (parties, time.monotonic())
        try:
            yield
        finally:
            with self.changed:
                del self.running[ticket]
                self.changed.notify_all()

    def in_flight(self) -> int:
        with self.changed:
            return len(self.running) + len(self.waiting)


_READS: list[_ReadLine] = []


def small_read(size: int | None) -> bool:
    """Whether a read of ``size`` bytes (None: not known) goes in the line of small reads."""
    return size is not None and size < read_large_bytes()


def reads_ahead(size: int | None) -> int:
    """The reads running or waiting in the line a read of ``size`` bytes goes in (:func:`reading`)."""
    return _read_line(not small_read(size)).in_flight()


def _read_line(large: bool = True) -> _ReadLine:
    """The line of reads of files under :func:`read_large_bytes` (``large``: of larger ones, and of reads whose size
    is not known). Each has its own slots, so that a slow read of a large file never keeps a small one waiting."""
    with _LOCK:
        while len(_READS) < 2:
            _READS.append(_ReadLine(max(1, int(env_value("DEEM_MAX_CONCURRENT_READS", 1)))))
        return _READS[1 if large else 0]


#: seconds of reading one network address may spend in the read slots per hour (``DEEM_MAX_READ_SECONDS_PER_CLIENT``):
#: one visitor chaining slow uploads (a 1.3 MB gzip of 99,999 columns read for 245 s) kept every other visitor's
#: loads failing after their wait (attack round 9)
DEFAULT_READ_SECONDS_PER_CLIENT = 900.0
READ_WINDOW_SECONDS = 3600.0
_SPENT: dict[str, list[tuple[float, float]]] = {}  # party -> (when a read ended, its seconds) in the last window


def _read_budget() -> float:
    return float(env_value("DEEM_MAX_READ_SECONDS_PER_CLIENT", DEFAULT_READ_SECONDS_PER_CLIENT))


def read_seconds_spent(party: str, now: float | None = None) -> float:
    """Seconds ``party`` held a read slot in the last :data:`READ_WINDOW_SECONDS`."""
    now = time.monotonic() if now is None else now
    with _LOCK:
        kept = [(at, seconds) for at, seconds in _SPENT.get(party, []) if now - at < READ_WINDOW_SECONDS]
        if kept:
            _SPENT[party] = kept
        else:
            _SPENT.pop(party, None)
        return sum(seconds for _, seconds in kept)


@contextlib.contextmanager
def reading(wait: float | None = None, party: str | None = None, parties: Sequence[Any] = (),
            size: int | None = None) -> Iterator[None]:
    """Hold one of the server's read slots while reading files into annotations (CapacityError after ``wait``
    seconds without one). ``party`` (a network address, :func:`deem_studio.owners.client_party`; None: the
    server's own machine) may hold the slots for at most ``DEEM_MAX_READ_SECONDS_PER_CLIENT`` seconds an hour
    (0: no limit). ``parties``: who reads (the session's workspace and network address; ``party`` when none): a free
    slot goes to the waiting read of the parties that read least lately (:class:`_ReadLine`). ``size``: the bytes of
    the files read; reads under :func:`read_large_bytes` have a line of their own (None: a large read)."""
    budget = _read_budget()
    if party is not None and budget > 0:
        spent = read_seconds_spent(party)
        if spent >= budget:
            minutes = max(1, round(spent / 60))  # (it said "for 0 min" under a minute; attack round 25)
            raise CapacityError(f"this address has read files for {minutes} min in the last hour, this "
                                f"server's share for one address (DEEM_MAX_READ_SECONDS_PER_CLIENT); try again later")
    named = tuple(dict.fromkeys(str(who) for who in (*parties, party) if who))
    line = _read_line(not small_read(size))
    with line.turn(named, READ_WAIT_SECONDS if wait is None else wait):
        started = time.monotonic()
        try:
            yield
        finally:
            ended = time.monotonic()
            with _LOCK:
                for who in named:
                    _SPENT.setdefault(who, []).append((ended, ended - started))
                while len(_SPENT) > 100_000:  # (made-up parties: the oldest first)
                    _SPENT.pop(next(iter(_SPENT)))


# --------------------------------------------------------------------------- data summaries
#: data sets whose summary (the Data page's checks) the server keeps, shared by every session
SUMMARIES_KEPT = 8
#: answers from which a summary is made under a read slot (one at a time, counted in the party's read time): 25 tabs
#: of one browser on a 20 M-answer set each made its own (+1.2 GB and 12 s of CPU a tab) and the server ran out of
#: memory (attack round 56)
SUMMARY_SLOT_ANSWERS = 500_000
#: seconds a session waits for another session's summary of the same data before making it itself
SUMMARY_WAIT_SECONDS = 600.0
_SUMMARIES: "OrderedDict[str, Any]" = OrderedDict()
_SUMMARY_FLIGHTS: dict[str, threading.Event] = {}
_SUMMARY_LOCK = threading.Lock()


def shared_summary(key: str, compute: Callable[[], Any], heavy: bool = False, party: str | None = None,
                   parties: Sequence[Any] = ()) -> Any:
    """``compute()``'s value for the data set ``key`` (its fingerprint), made once and shared by every session: a
    session asking while another makes it waits for that one (``heavy``: made under a read slot, as a read, and
    counted in ``party``'s read time, in the line of large reads, ``parties`` its place there). The
    :data:`SUMMARIES_KEPT` latest are kept. CapacityError where no read slot
    comes free."""
    while True:
        with _SUMMARY_LOCK:
            if key in _SUMMARIES:
                _SUMMARIES.move_to_end(key)
                return _SUMMARIES[key]
            flight = _SUMMARY_FLIGHTS.get(key)
            mine = flight is None
            if mine:
                flight = _SUMMARY_FLIGHTS[key] = threading.Event()
        if not mine:
            if not flight.wait(timeout=SUMMARY_WAIT_SECONDS):
                raise CapacityError("another session is still making this data set's summary; try again in a minute")
            continue  # (made: shared; failed: this session makes it in its turn)
        try:
            with reading(party=party, parties=parties) if heavy else contextlib.nullcontext():
                value = compute()
            with _SUMMARY_LOCK:
                _SUMMARIES[key] = value
                while len(_SUMMARIES) > SUMMARIES_KEPT:
                    _SUMMARIES.popitem(last=False)
            return value
        finally:
            with _SUMMARY_LOCK:
                _SUMMARY_FLIGHTS.pop(key, None)
            flight.set()
            release_memory()  # (what the checks freed goes back to the system; attack round 39)


# --------------------------------------------------------------------------- downloads
#: download files one party (a workspace, a network address) may have in the making or waiting at once: 3 let one
#: visitor hold 3 of the server's 4 places and keep every other visitor's presses refused (attack round 25); at 2 a
#: third press at once is refused (walkthrough 51 pressed seven buttons at once)
DOWNLOADS_PER_PARTY = 2
#: download files that may wait for a slot beside those in the making, server-wide: Streamlit makes each press's
#: file on a thread of a small shared pool (6 threads on 2 cores), which also serves every other download and the
#: tables' rows, and a press waiting for a slot holds its thread (eight tabs pressing "Label Studio predictions" made
#: another visitor's "Labels CSV" take 26.8 s and "Run configuration", which takes no slot, 15.0 s: attack round 24)
MAX_WAITING_DOWNLOADS = 3
#: seconds a press waits for a slot before it fails ("try again")
DOWNLOAD_WAIT_SECONDS = 60.0


class _Press:
    """A press waiting in the download line: its parties, and whether another party's press took its place."""

    __slots__ = ("parties", "displaced")

    def __init__(self, parties: tuple[str, ...]):
        self.parties, self.displaced = parties, False


class _DownloadQueue:
    """Download slots handed out in the order presses came (a semaphore let the releasing thread take its slot again
    before a waiting visitor's press ran: one visitor re-pressing kept another's waiting 60 s and refused; attack
    round 25), with each party's presses and the waiting ones counted. A press that finds every place taken takes
    the place of the newest waiting press of a party that holds more places than its own and at least two (two
    parties holding two places each, pressing again as each file came, kept every other visitor's presses refused
    for as long as they went on: 30 of 30 in 60 s; attack round 26)."""

    def __init__(self, size: int):
        self.size = size
        self.building = 0
        self.queue: deque = deque()
        self.by_party: Counter = Counter()
        self.changed = threading.Condition()

    def _held(self, parties: tuple[str, ...]) -> int:
        return max((self.by_party[party] for party in parties), default=0)

    def _displace(self, parties: tuple[str, ...]) -> bool:
        """(with the lock held) Make room for ``parties``' press by refusing the newest waiting press of a party
        holding more places than they do, and at least two; False when there is none."""
        held = self._held(parties)
        for press in reversed(self.queue):
            if self._held(press.parties) >= max(2, held + 1):
                press.displaced = True
                self.queue.remove(press)
                self._leave(press.parties)
                return True
        return False

    @contextlib.contextmanager
    def turn(self, parties: tuple[str, ...]) -> Iterator[None]:
        press = _Press(parties)
        with self.changed:
            if any(self.by_party[party] >= DOWNLOADS_PER_PARTY for party in parties):
                raise CapacityError(f"you are making {DOWNLOADS_PER_PARTY} download files already; wait for them")
            if self.building + len(self.queue) >= self.size + MAX_WAITING_DOWNLOADS and not self._displace(parties):
                raise CapacityError("the server is making other download files; try again in a minute")
            self.by_party.update(parties)
            self.queue.append(press)
            ready = self.changed.wait_for(
                lambda: press.displaced or (self.queue[0] is press and self.building < self.size),
                timeout=DOWNLOAD_WAIT_SECONDS)
            if press.displaced:  # (its places were given up by the press that took its place)
                raise CapacityError("another visitor's file took your place in the line (you have another in the "
                                    "making); press again when it is done")
            self.queue.remove(press)
            if ready:
                self.building += 1
            else:
                self._leave(parties)
                raise CapacityError("the server is making other download files; try again in a minute")
        try:
            yield
        finally:
            with self.changed:
                self.building -= 1
                self._leave(parties)

    def _leave(self, parties: tuple[str, ...]) -> None:
        """(with the lock held) ``parties``' press is over; the waiting presses look again."""
        self.by_party.subtract(parties)
        for party in parties:
            if self.by_party[party] <= 0:
                del self.by_party[party]
        self.changed.notify_all()

    def in_flight(self) -> int:
        with self.changed:
            return self.building + len(self.queue)


_BUILDS: list[_DownloadQueue] = []

#: the logger Streamlit writes a failed download's traceback to
STREAMLIT_DOWNLOAD_LOGGER = "streamlit.runtime.backend_operation_handler"


class _QuietRefusals(logging.Filter):
    """A download this app refused (CapacityError: said and counted here) logged as one line without Streamlit's
    traceback, at most one line a second with the number left out: a tab's 40,000 refused presses wrote 72 MB of
    tracebacks to the server's log and spent most of the 44.8 s of CPU they took there (attack round 26)."""

    def __init__(self) -> None:
        super().__init__()
        self.throttle = LogThrottle()

    def filter(self, record: logging.LogRecord) -> bool:
        exc = _refusal(record.exc_info[1] if record.exc_info else None)
        if exc is None:
            return True
        left_out = self.throttle.due()
        if left_out is None:
            return False
        record.msg, record.args = "download refused: %s (%d more refused since the last such line, not logged)", (
            str(exc), left_out)
        record.exc_info, record.exc_text = None, None
        return True


def _refusal(exc: BaseException | None) -> CapacityError | None:
    """The CapacityError ``exc`` is or was raised from (Streamlit raises its own error from the callable's; the
    filter matched the outer one only, and every refusal still wrote its traceback: walkthrough 54)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, CapacityError):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _quiet_refusals() -> None:
    """Put :class:`_QuietRefusals` on Streamlit's download logger (once per process)."""
    logger = logging.getLogger(STREAMLIT_DOWNLOAD_LOGGER)
    with _LOCK:
        if not any(isinstance(f, _QuietRefusals) for f in logger.filters):
            logger.addFilter(_QuietRefusals())


def _download_queue(large: bool = False) -> _DownloadQueue:
    """The line of the downloads expected at most :func:`download_large_bytes` (``large``: of those expected larger).
    Each has its own slots: a 1 GB Label Studio file took 2 minutes to make, and a visitor pressing it again as each
    came kept every other visitor's "Labels CSV" refused after its minute's wait, 3 of 3 (attack round 56)."""
    with _LOCK:
        while len(_BUILDS) < 2:
            _BUILDS.append(_DownloadQueue(max(1, int(env_value("DEEM_MAX_CONCURRENT_DOWNLOADS", 1)))))
        return _BUILDS[1 if large else 0]


#: bytes from which a download is made in the line of large ones (``DEEM_DOWNLOAD_LARGE_BYTES``)
DOWNLOAD_LARGE_BYTES = 64 * 2**20


#: ``expected_bytes`` of a download whose size is known only once it is made: the line of large ones
SIZE_UNKNOWN = -1


def download_large_bytes() -> int:
    return int(env_value("DEEM_DOWNLOAD_LARGE_BYTES", DOWNLOAD_LARGE_BYTES))


#: seconds between two of the presses' sweeps of built downloads: a file is dropped at the second sweep after it was
#: built, so it has at least this long to be fetched
DOWNLOAD_FETCH_SECONDS = 5.0
#: when the presses last swept (time.monotonic; 0: never)
_LAST_SWEEP = [0.0]


def _drop_built_downloads() -> None:
    """Let go of the files built by earlier presses once they had time to be fetched. Streamlit keeps a pressed
    download's bytes until two script runs have passed (any session's): on a quiet server a visitor pressing download
    after download without a rerun (``on_click="ignore"``) kept each one, +1.3 GB of one 768 MB file with the tab left
    open and +0.8 GB more for three methods' files (attack round 54). A press sweeps as a script run does (Streamlit's
    own two steps: a file no session shows is marked, one marked before is deleted), at most once every
    :data:`DOWNLOAD_FETCH_SECONDS`: a file is deleted no sooner than that after its build ended, and a press never
    waits (waiting held the download slot, and presses a second apart were refused past the visitor's two places in
    the queue; walkthrough 109). A fetched file is made again if pressed again."""
    from streamlit import runtime  # noqa: PLC0415

    now = time.monotonic()
    if now - _LAST_SWEEP[0] < DOWNLOAD_FETCH_SECONDS or not runtime.exists():
        return
    _LAST_SWEEP[0] = now
    runtime.get_instance().media_file_mgr.remove_orphaned_files()


def building_download(build: Callable[[], Any], parties: Sequence[Any] = (),
                      expected_bytes: int | None = None) -> Callable[[], Any]:
    """``build`` (a download button's deferred callable) made to hold one of the server's download slots
    (``DEEM_MAX_CONCURRENT_DOWNLOADS``, default 1) while it makes the file's bytes. Streamlit runs each press's
    callable on a thread of its own, every press again: three link visitors pressing "Labels JSON" of a
    100,000 x 80-class run together took the server from 1.4 to 6.5 GB, four presses of "All MI values CSV" from
    1.3 to 8.0 GB (attack round 23); one at a time, the server holds one file in the making. ``parties``: who
    presses (the session's workspace and network address), each with at most :data:`DOWNLOADS_PER_PARTY` files
    in the making or waiting; a press refused fails (Streamlit says the file could not be made) and holds nothing.
    The files built by earlier presses are dropped from memory first (:func:`_drop_built_downloads`).
    ``expected_bytes``: about how large the file will be; one above :func:`download_large_bytes` is made in a line of
    its own, so that the slow making of large files never keeps the small ones waiting (None: a small one;
    :data:`SIZE_UNKNOWN`: a large one)."""
    parties = tuple(str(party) for party in parties if party)
    large = expected_bytes is not None and (expected_bytes == SIZE_UNKNOWN or expected_bytes > download_large_bytes())
    _quiet_refusals()

    def held() -> Any:
        from deem_studio.runs import RunNotFound  # noqa: PLC0415

        with _download_queue(large).turn(parties):
            try:
                _drop_built_downloads()
                return build()
            except RunNotFound as exc:
                # deleted since the page was drawn: a refusal, logged in one line (two tracebacks a press, and the
                # page's advice to press again later; walkthrough 119)
                raise CapacityError(f"{exc}: it was deleted after this page was drawn") from None
            finally:  # (what the build freed: a 2 GB JSON's making left 2.2 GB in the process; attack round 40)
                release_memory()

    return held


#: seconds after a data set is let go of before the memory freed with it goes back to the system: a closed session
#: frees its set, its summary and its tables one after another, and one trim covers them
RELEASE_DELAY_SECONDS = 2.0
_RELEASE: list[threading.Timer] = []
_RELEASE_LOCK = threading.Lock()


def release_soon() -> None:
    """:func:`release_memory` on a timer thread in :data:`RELEASE_DELAY_SECONDS` (one pending at a time). Called from
    a finalizer, which may run inside any allocation: it never waits for a lock (one held by the same thread would
    never come free)."""
    if not _RELEASE_LOCK.acquire(blocking=False):
        return
    try:
        if _RELEASE and _RELEASE[0].is_alive():
            return
        timer = threading.Timer(RELEASE_DELAY_SECONDS, release_memory)
        timer.daemon = True
        _RELEASE[:] = [timer]
        timer.start()
    finally:
        _RELEASE_LOCK.release()


#: seconds between two looks for sessions whose browser left more than ``server.disconnectedSessionTTL`` ago
REAP_SECONDS = 30.0
_REAPER: list[threading.Thread] = []


def reap_departed(storage: Any) -> int:
    """Drop the sessions ``storage`` (Streamlit's store of disconnected sessions, kept for a reconnection) holds past
    their time, then collect the garbage they leave and hand the memory back: Streamlit drops them only when the store
    is next used, and with ``runner.postScriptGC`` off their state (a data set, its checks, previews) waits for a rare
    full collection; a visitor who loaded a 228 MB file and closed the tab left the server 1.3 GB larger for 6 minutes
    and more, and their set counted against the next visitor's share (attack round 61). Returns the sessions
    dropped."""
    cache = getattr(storage, "_cache", None)
    expire = getattr(cache, "expire", None)
    if not callable(expire):
        return 0
    dropped = len(expire())
    if dropped:
        gc.collect()
        release_memory()
    return dropped


def start_session_reaper() -> None:
    """Look for departed sessions every :data:`REAP_SECONDS` in this process (:func:`reap_departed`; once)."""
    with _LOCK:
        if _REAPER:
            return

        def loop() -> None:
            from streamlit.runtime import Runtime  # noqa: PLC0415

            while True:
                time.sleep(REAP_SECONDS)
                try:
                    if Runtime.exists():
                        reap_departed(getattr(Runtime.instance()._session_mgr, "_session_storage", None))
                except Exception:  # noqa: BLE001 - best effort: Streamlit's own lazy drop stays
                    logging.getLogger(__name__).debug("session reaper", exc_info=True)

        thread = threading.Thread(target=loop, name="deem-session-reaper", daemon=True)
        _REAPER.append(thread)
        thread.start()


_RUN_DATA: "weakref.WeakValueDictionary[str, Any]" = weakref.WeakValueDictionary()
_RUN_GOLD: dict[str, Any] = {}
_RUN_LOCK = threading.Lock()


def run_bytes(store: Any, run_id: str) -> int | None:
    """The bytes of a stored run's files (its read's line, :func:`reading`); None where the folder cannot be
    walked (a large read)."""
    try:
        total = 0
        for folder, _, names in os.walk(store.run_dir(run_id)):  # (links to folders not followed)
            for name in names:
                path = os.path.join(folder, name)
                if not os.path.islink(path):
                    total += os.path.getsize(path)
        return total
    except Exception:  # noqa: BLE001 - a run deleted meanwhile, a bad id: the loader says what is wrong
        return None


def run_data(store: Any, run_id: str) -> tuple[Any, Any]:
    """``store.load_data(run_id)``, shared: sessions that open one run (a shared link) hold one copy of its
    annotations (read under :func:`reading`, counted by :func:`admit_data`)."""
    with _RUN_LOCK:
        data = _RUN_DATA.get(run_id)
        if data is not None:
            return data, _RUN_GOLD.get(run_id)
    with reading(size=run_bytes(store, run_id)):
        with _RUN_LOCK:  # another session may have read it while this one waited
            data = _RUN_DATA.get(run_id)
            if data is not None:
                return data, _RUN_GOLD.get(run_id)
        data, gold = store.load_data(run_id)
        if data is None:
            return None, gold
        admit_data(data)
        with _RUN_LOCK:  # still holding the read slot: a session waiting for it finds this copy
            _RUN_DATA[run_id] = data
            _RUN_GOLD[run_id] = gold
            weakref.finalize(data, _RUN_GOLD.pop, run_id, None)
    return data, gold


_DIAGNOSTICS: "weakref.WeakValueDictionary[str, Any]" = weakref.WeakValueDictionary()


def diagnostics_result(store: Any, run_id: str, load: Callable[[Any, str], Any]) -> Any:
    """``load(store, run_id)`` (a finished diagnostics run read back from its folder), shared: every session that
    shows it holds the same object while any does (each Diagnostics session kept a copy of its own, ~115 MB at 700
    workers, and six link visitors took the server from 156 MB to 1.1 GB; attack round 23). Read under
    :func:`reading`; the object is read-only for the pages."""
    with _RUN_LOCK:
        found = _DIAGNOSTICS.get(run_id)
    if found is not None:
        return found
    with reading(size=run_bytes(store, run_id)):
        with _RUN_LOCK:  # another session may have read it while this one waited
            found = _DIAGNOSTICS.get(run_id)
        if found is not None:
            return found
        result = load(store, run_id)
        if result is not None:
            admit_data(result)  # (arrays up to the mutual information's 512 MB bound: counted as data sets are)
            with _RUN_LOCK:
                with contextlib.suppress(TypeError):  # (an object without weak references is not shared)
                    _DIAGNOSTICS[run_id] = result
    return result


#: the runs' tables kept read for the pages (the last few asked for; each counted by the ledger while held)
MAX_KEPT_TABLES = 4
_TABLES: "OrderedDict[tuple, Any]" = OrderedDict()


def run_tables(store: Any, run_id: str, methods: Iterable[str] | None = None, columns: Iterable[str] | None = None,
               prepare: Callable[[pd.DataFrame], pd.DataFrame] | None = None) -> Any:
    """``store.load(run_id, with_data=False, methods=..., result_columns=..., with_gold=True)`` of a run, shared:
    every session that shows it gets the same object (read-only: a page never changes it), read under
    :func:`reading` and counted by the ledger (CapacityError when the server has no room). ``prepare``: applied
    once to each results table as read (the pages' task order). The last :data:`MAX_KEPT_TABLES` are kept."""
    record = store.get(run_id)
    key = (run_id, record.get("status"), record.get("finished_at"),
           None if methods is None else tuple(sorted(methods)), None if columns is None else tuple(columns))
    with _RUN_LOCK:
        if key in _TABLES:
            _TABLES.move_to_end(key)
            return _TABLES[key]
    with reading(size=run_bytes(store, run_id)):
        with _RUN_LOCK:  # another session may have read it while this one waited
            if key in _TABLES:
                return _TABLES[key]
        loaded = store.load(run_id, with_data=False, methods=key[3], result_columns=key[4], with_gold=True)
        if prepare is not None:
            loaded.results = {m: prepare(table) for m, table in loaded.results.items()}
        with _RUN_LOCK:  # the oldest let go of first (a new one was counted before: kept ones took the room)
            while len(_TABLES) >= MAX_KEPT_TABLES:
                _TABLES.popitem(last=False)
        admit_data(loaded)  # (under pressure the kept tables go before it is refused; attack round 15)
        with _RUN_LOCK:
            _TABLES[key] = loaded
    return loaded


def _release_kept_tables() -> bool:
    """Let go of every kept table (a cache: read again when asked for); True when there were any. What no session
    holds any more leaves the ledger at once."""
    with _RUN_LOCK:
        had = bool(_TABLES)
        _TABLES.clear()
    if had:
        gc.collect()
    return had


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[threading.Event]:
    """A stop event set after ``seconds`` (a daemon timer, cancelled on leaving): what a step the visitor waits for
    passes to work that reads a stop (the timing probes, the Data page's group test)."""
    stop = threading.Event()
    timer = threading.Timer(seconds, stop.set)
    timer.daemon = True
    timer.start()
    try:
        yield stop
    finally:
        timer.cancel()
