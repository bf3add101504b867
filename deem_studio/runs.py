"""The run store: every run (sweep, training, baselines) kept on disk and indexed in SQLite.

Layout under the runs directory (``DEEM_RUNS_DIR``, default ``./runs``)::

    runs.sqlite                 index of all runs (WAL mode; one row per run)
    <run_id>/config.json        the configuration the run was launched with
    <run_id>/annotations.npz    the annotations themselves as encoded (task, worker and label codes, soft
                                labels) so the run can be reopened without the original files, and
    <run_id>/annotations_{tasks,workers,classes}.parquet  their vocabularies (runs stored before these:
                                annotations.parquet, the long table)
    <run_id>/gold.parquet       gold labels, when the user gave some
    <run_id>/history.parquet    training curves (one row per method, run and epoch)
    <run_id>/results/<name>.parquet   one label table per method (label, confidence, p_<class>, ...)
    <run_id>/<name>.json        any JSON side file (recommendation, metrics, worker table, ...)
    <run_id>/model_<name>.pt    fitted DEEM models (``DEEM.load``)
    <run_id>/error.txt          the traceback of a failed run (for maintainers; never shown on a page)

Every file is written atomically (:mod:`deem_core.data.export`): a crash mid-write never leaves a half file
that looks complete. A table whose cells mix Python types that Parquet cannot hold in one column (e.g.
the labels ``1`` and ``"a"``) is written as ``<name>.table.json`` instead, which keeps each value's type.

The SQLite index is safe for several threads and processes: each operation opens its own connection
(``timeout`` waits for a writer), writes are serialised by a process lock, and the database runs in WAL
mode so readers never block the writer. Run ids are 16 lowercase hex characters (random, unguessable);
every public method checks an id before it touches a path, so a run id typed by a user (or read from a
URL) cannot escape the runs directory.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
import os
import re
import secrets
import shutil
import socket
import sqlite3
import stat
import tempfile
import threading
import time
import contextlib
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from deem_core.data.annotations import AnnotationSet, DataError
from deem_core.data.export import atomic_write_bytes, atomic_write_text, write_json

__all__ = [
    "ACTIVE_STATUSES", "LoadedRun", "RunNotFound", "RunStore", "STATUSES", "TERMINAL_STATUSES",
    "default_runs_dir", "is_run_id", "new_run_id",
]

STATUSES = ("queued", "running", "finished", "cancelled", "failed")
ACTIVE_STATUSES = ("queued", "running")
TERMINAL_STATUSES = ("finished", "cancelled", "failed")
# fullmatch everywhere: "$" would also accept a trailing newline ("0123456789abcdef\n")
_RUN_ID = re.compile(r"[0-9a-f]{16}")
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,80}")
MAX_RUN_NAME = 120
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id       TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    status       TEXT NOT NULL,
    owner        TEXT,
    dataset      TEXT,
    fingerprint  TEXT,
    n_tasks      INTEGER,
    n_workers   INTEGER,
    n_classes    INTEGER,
    device       TEXT,
    created_at   REAL NOT NULL,
    started_at   REAL,
    finished_at  REAL,
    message      TEXT,
    messages     TEXT,
    config       TEXT,
    summary      TEXT,
    host         TEXT,
    pid          INTEGER,
    name         TEXT,
    client       TEXT
);
CREATE INDEX IF NOT EXISTS runs_owner ON runs(owner, created_at);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status);
CREATE TABLE IF NOT EXISTS picks (
    owner        TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    pick         TEXT NOT NULL,
    saved_at     REAL NOT NULL,
    PRIMARY KEY (owner, fingerprint)
);
CREATE INDEX IF NOT EXISTS picks_saved ON picks(saved_at);
"""
#: picked learning rates kept per owner (one per data set, the latest ones), and in all (the oldest go first: a
#: script making owner keys would otherwise grow the index without end)
PICKS_PER_OWNER = 50
PICKS_KEPT = 100_000
#: characters of a stored pick (a rate, where it comes from, a run id and a time)
MAX_PICK_CHARS = 1_000
_COLUMNS = ("run_id", "kind", "status", "owner", "dataset", "fingerprint", "n_tasks", "n_workers", "n_classes",
            "device", "created_at", "started_at", "finished_at", "message", "messages", "config", "summary",
            "host", "pid", "name")


def make_private(folder: Path) -> None:
    """Nobody but this process's user may enter ``folder`` (mode 0700 when this user owns it): every visitor's
    uploads, gold labels, models and the index are below the runs folder, and files are written with the usual
    0644 (attack round 5: any account on the host could read them all)."""
    try:
        info = folder.stat()
        if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
            folder.chmod(stat.S_IMODE(info.st_mode) & 0o700)
    except (OSError, AttributeError):  # not the owner's to change, or no POSIX owners
        pass


class RunNotFound(KeyError):
    """No run with this id in the store (or the id is not a valid run id)."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want a readable sentence
        return str(self.args[0]) if self.args else "run not found"


def default_runs_dir() -> Path:
    """``$DEEM_RUNS_DIR`` when set, else ``./runs``."""
    return Path(os.environ.get("DEEM_RUNS_DIR") or "runs")


def client_key(client: str | None, salt: str = "") -> str | None:
    """What the index keeps of a network party (``owners.client_party``): a one-way hash, not the address, salted
    with the run store's secret (unsalted, the 2^32 IPv4 addresses were hashed back in minutes; attack round 6)."""
    if not client:
        return None
    return hashlib.sha256(f"deem-studio client {salt} {client}".encode()).hexdigest()[:24]


def _store_salt(root: Path) -> str:
    """The run store's secret for :func:`client_key`, made once (``.client_salt``, readable by its user only)."""
    path = root / ".client_salt"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    salt = secrets.token_hex(16)
    fd, tmp = tempfile.mkstemp(prefix=".client_salt.", dir=root)  # (0600) written whole, then linked in place
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(salt)
        os.link(tmp, path)
    except FileExistsError:  # another process made it first: theirs
        return path.read_text().strip()
    finally:
        os.unlink(tmp)
    return salt


def new_run_id() -> str:
    return secrets.token_hex(8)


def is_run_id(value: Any) -> bool:
    return isinstance(value, str) and _RUN_ID.fullmatch(value) is not None


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(str(name)) or str(name) in (".", ".."):
        raise ValueError(f"invalid file name {name!r} (letters, digits, '_', '-', '.' only)")
    return str(name)


def _json_value(value: Any) -> Any:
    """JSON-safe copy: numpy scalars/arrays to Python, non-finite floats to None."""
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_json_value(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_json_value(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _dumps(value: Any) -> str:
    return json.dumps(_json_value(value), allow_nan=False)


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _process_started(pid: int | None) -> float | None:
    """When process ``pid`` of this machine started (seconds since the epoch; Linux's /proc), or None when unknown."""
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        with open("/proc/stat", "rb") as handle:
            boot = next(float(line.split()[1]) for line in handle if line.startswith(b"btime "))
        return boot + float(fields[19]) / os.sysconf("SC_CLK_TCK")  # (starttime: field 22, the 20th after the name)
    except (OSError, ValueError, IndexError, StopIteration, TypeError):
        return None


def _run_process_alive(pid: int | None, since: float | None) -> bool:
    """Whether the process that ran a run created at ``since`` may still be alive: ``pid`` exists and did not start
    after the run was created (a pid reused after a reboot is another process: its run stayed "running" for good,
    neither cancelled nor deleted by its owner; attack round 28)."""
    if not _pid_alive(pid):
        return False
    started = _process_started(pid)
    return started is None or since is None or started <= float(since) + 1.0


# --------------------------------------------------------------------------- tables on disk
#: a run's Label Studio tasks (id and data) and control, kept when its data came from a Label Studio export
LABEL_STUDIO_TASKS = "label_studio_tasks.json"
LABEL_STUDIO_SETTINGS = "label_studio.json"
#: the most characters of task data kept with a run (gzip's size field holds their size exactly below 4 GiB)
TASKS_MAX_TEXT = 2**32 - 1


def _write_table(path_stem: Path, frame: pd.DataFrame) -> Path:
    """Parquet when the columns have one type each; otherwise a typed JSON table (keeps 1 vs "1")."""
    if frame.attrs:  # pandas writes attrs into the Parquet metadata and reads them back (see _read_table)
        frame = frame.copy()
        frame.attrs = {}
    buffer = io.BytesIO()
    try:
        frame.to_parquet(buffer)
    except Exception:  # noqa: BLE001 - pyarrow refuses mixed-type object columns
        stale = path_stem.with_suffix(".parquet")
        payload = {
            "index_names": [None if n is None else str(n) for n in frame.index.names],
            "index": [_json_value(list(v) if isinstance(v, tuple) else v) for v in frame.index.tolist()],
            "columns": [_json_value(c) for c in frame.columns],
            "data": [[_json_value(v) for v in row] for row in frame.itertuples(index=False, name=None)],
        }
        target = path_stem.with_suffix(".table.json")
        atomic_write_text(target, json.dumps(payload, allow_nan=False))
        if stale.exists():
            stale.unlink()
        return target
    target = path_stem.with_suffix(".parquet")
    atomic_write_bytes(target, buffer.getvalue())
    stale = path_stem.with_suffix(".table.json")
    if stale.exists():
        stale.unlink()
    return target


#: the files of a run's answers: their codes (``annotations.npz``) and each vocabulary's values, in code order
_VOCABULARIES = {"tasks": "annotations_tasks", "workers": "annotations_workers", "classes": "annotations_classes"}
#: each vocabulary's name, as an annotation set names it (the stored column is "value"; read 53: "value" came back)
_VOCABULARY_NAMES = {"tasks": "task", "workers": "worker", "classes": "label"}
_CODES = ("task_codes", "worker_codes", "label_codes")


def _write_annotations(path: Path, data: AnnotationSet) -> None:
    """A run's answers as they are encoded: the code arrays (and soft labels) and the three vocabularies, each value
    once. Written as a long table of names they cost a copy of a name per answer to write and a Python string per
    answer to read: a 29 KB Parquet file of 50 workers named with 10,000 characters took +1 GB of the server at the
    run's start and +1.9 GB at each view of its link; and soft labels were lost, the reloaded set another one
    (attack round 53)."""
    for part, stem in _VOCABULARIES.items():
        _write_table(path / stem, pd.DataFrame({"value": getattr(data, part)}))
    # each code in the fewest bytes it fits (int64 made a run's copy of its answers ~24 bytes an answer, ~12x a
    # gzipped upload, at every training pressed and kept when cancelled: a tab filled 660 MB a minute within the
    # quotas; attack round 58); read back as int64
    arrays = {name: _narrow(getattr(data, name)) for name in _CODES}
    if data.soft_labels is not None:
        arrays["soft_labels"] = data.soft_labels
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path / "annotations.npz", buffer.getvalue())


def _text_length(values: Any) -> int:
    """Characters of ``values`` written as text (vectorised: a million task names in 0.01 s where a loop took 0.6)."""
    return int(np.asarray(pd.Index(values).astype(str).str.len()).sum()) if len(values) else 0


#: the file :meth:`RunStore.delete` writes in a run's folder before its index row goes
DELETING_MARK = ".deleting"


def _only_created(folder: Path) -> bool:
    """Whether ``folder`` holds nothing but what :meth:`RunStore.create` writes before a run's index row (its
    configuration, answers, gold labels, their temporary files, an empty results folder): a run never indexed."""
    for entry in os.scandir(folder):
        name = entry.name
        if entry.is_dir(follow_symlinks=False):
            if name != "results" or any(os.scandir(entry.path)):
                return False
        elif not (name in ("config.json", "dataset.json", "annotations.npz") or name.startswith(("annotations_", "gold."))
                  or (name.startswith(".") and name.endswith(".tmp"))):
            return False
    return True


def _narrow_type(codes: np.ndarray) -> np.dtype:
    """The smallest signed integer type that holds ``codes`` (non-negative integers)."""
    top = int(codes.max()) if len(codes) else 0
    return np.dtype(next((kind for kind in (np.int8, np.int16, np.int32) if top <= np.iinfo(kind).max), codes.dtype))


def _narrow(codes: np.ndarray) -> np.ndarray:
    """``codes`` in :func:`_narrow_type`."""
    return codes.astype(_narrow_type(codes), copy=False)


def _read_annotations(path: Path) -> AnnotationSet | None:
    """The answers :func:`_write_annotations` stored (None for a run stored before them, as a long table)."""
    if not os.path.lexists(path / "annotations.npz"):
        return None
    with open_plain(path / "annotations.npz") as handle, np.load(handle, allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    vocabularies = {}
    for part, stem in _VOCABULARIES.items():
        table = _read_table(path / stem)
        if table is None or "value" not in table:
            raise ValueError(f"no {part}")
        vocabularies[part] = pd.Index(table["value"], dtype=table["value"].dtype, name=_VOCABULARY_NAMES[part])
    codes = {name: arrays[name].astype(np.int64, copy=False) for name in _CODES}
    return AnnotationSet.from_codes(**vocabularies, **codes,
                                    soft_labels=arrays.get("soft_labels"))


def _read_table(path_stem: Path, columns: Sequence[str] | None = None) -> pd.DataFrame | None:
    """A stored table (None when it was never written); ``columns``: only those of them that it has (the index
    always comes along)."""
    parquet = path_stem.with_suffix(".parquet")
    if os.path.lexists(parquet):
        # through the file opened, never a link (a planted link or FIFO was read by name; attack round 45)
        with open_plain(parquet) as handle:
            if columns is not None:
                import pyarrow.parquet as pq  # noqa: PLC0415

                names = set(pq.read_schema(handle).names)
                columns = [c for c in columns if c in names]
                handle.seek(0)
            frame = pd.read_parquet(handle, columns=columns)
        # no attrs: st.dataframe sends them to the browser as JSON metadata, and a NaN in them (a result frame's
        # attrs["selection"] of runs stored before this) broke the Results page's table with a SyntaxError
        frame.attrs = {}
        return frame
    typed = path_stem.with_suffix(".table.json")
    if os.path.lexists(typed):
        payload = _side_json(typed, MAX_TABLE_JSON_BYTES)
        names = payload["index_names"]
        if len(names) > 1:
            index = pd.MultiIndex.from_tuples([tuple(v) for v in payload["index"]], names=names)
        else:
            index = pd.Index(payload["index"], name=names[0], dtype=object)
        frame = pd.DataFrame(payload["data"], index=index, columns=payload["columns"], dtype=object)
        if columns is not None:
            frame = frame[[c for c in columns if c in frame.columns]]
        return frame.infer_objects()
    return None


def _read_gold(path: Path) -> pd.Series | None:
    """A run's stored gold labels (task -> truth), None when it has none."""
    gold_frame = _read_table(path / "gold")
    if gold_frame is None:
        return None
    return pd.Series(gold_frame["truth"].to_numpy(), index=pd.Index(gold_frame["task"].to_numpy(), name="task"),
                     name="truth")


def _read_classes(path: Path) -> list | None:
    """The classes stored with a run's data set (its ``dataset.json``), None when not there or unreadable."""
    try:
        meta = _side_json(path / "dataset.json")
    except (OSError, ValueError):
        return None
    classes = meta.get("classes") if isinstance(meta, dict) else None
    return list(classes) if isinstance(classes, list) else None


#: the largest side file (metrics.json, ...) a run's pages read: the server writes a few KB; a 400 MB one planted in
#: the runs folder took the server from 2.4 to 7.6 GB when its run was opened (attack round 43)
MAX_SIDE_JSON_BYTES = 64 << 20
#: a table stored as JSON (columns of mixed types) read at most
MAX_TABLE_JSON_BYTES = 512 << 20
#: a saved model served by the "Fitted model" download at most
MAX_MODEL_DOWNLOAD_BYTES = 2 << 30


class StoredFileTooLarge(ValueError):
    """A run's stored file is larger than the server ever writes one, or a link, FIFO or other non-regular file."""


def _plain_file(path: Path, limit: int | None = None) -> Path:
    """``path``, a regular file of the run store that is no link (and of at most ``limit`` bytes); else
    :class:`StoredFileTooLarge` (a ValueError). The server writes no link, FIFO or side file of that size: a linked
    config.json was served by the "Run configuration" download, a FIFO blocked the read (the diff's read)."""
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode) or (limit is not None and info.st_size > limit):
        raise StoredFileTooLarge(path.name)
    return path


def _is_plain(path: Path) -> bool:
    """Whether ``path`` passes :func:`_plain_file` (no size limit): a file to serve, or to read from."""
    try:
        _plain_file(path)
    except (OSError, StoredFileTooLarge):
        return False
    return True


def open_plain(path: str | Path, limit: int | None = None) -> BinaryIO:
    """``path`` opened for reading, checked as :func:`_plain_file` checks it on the file it opened: without following
    a link, a regular file of at most ``limit`` bytes (a check by name, then an open by name, let a file swapped for a
    link in between be read; attack round 44; a FIFO never blocks the open). StoredFileTooLarge or OSError."""
    # (O_BINARY where there is one: without it Windows opens a file as text and translates its bytes)
    nonblocking = getattr(os, "O_NONBLOCK", 0)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | nonblocking | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or (limit is not None and info.st_size > limit):
            raise StoredFileTooLarge(Path(path).name)
        if nonblocking:  # (a regular file: its reads as before; there is no set_blocking on Windows' Python 3.11)
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_plain(path: str | Path, limit: int | None = None) -> bytes:
    """The bytes of ``path`` through :func:`open_plain`, at most ``limit`` (a file grown since its check is refused)."""
    with open_plain(path, limit) as handle:
        data = handle.read() if limit is None else handle.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise StoredFileTooLarge(Path(path).name)
    return data


def _side_json(path: Path, limit: int = MAX_SIDE_JSON_BYTES) -> Any:
    """A run's JSON file (side files, config.json, dataset.json, a sweep's recommendation, a table of mixed types,
    saved diagnostics' meta.json) read through :func:`read_plain`, at most ``limit`` bytes."""
    return json.loads(read_plain(path, limit).decode("utf-8"))


def _read_part(loaded: "LoadedRun", part: str, read):
    """``read()``, or None with the reason kept in ``loaded.problems[part]`` when the stored file is unreadable."""
    try:
        return read()
    except Exception as exc:  # noqa: BLE001 - a damaged file (pyarrow, json, OSError, ...) spoils only itself
        # the type only: the messages of pyarrow and the OS name server paths, which web users never see
        loaded.problems[part] = f"its stored file could not be read ({type(exc).__name__})"
        return None


# --------------------------------------------------------------------------- loaded run
@dataclass
class LoadedRun:
    """Everything stored for one run. Tables that were never written are ``None`` / empty."""

    record: dict[str, Any]
    config: dict[str, Any]
    path: Path
    data: AnnotationSet | None = None
    gold: pd.Series | None = None
    history: pd.DataFrame | None = None
    results: dict[str, pd.DataFrame] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    #: stored files that could not be read (damaged, half-copied, from another version): part -> reason.
    #: One such file never hides the rest of the run (``"results/<method>"``, ``"history"``, ``"<side file>"``).
    problems: dict[str, str] = field(default_factory=dict)
    #: the data set's classes in their order (None when not stored); read with the gold labels without the answers
    classes: list | None = None

    @property
    def run_id(self) -> str:
        return self.record["run_id"]

    @property
    def kind(self) -> str:
        return self.record["kind"]

    @property
    def status(self) -> str:
        return self.record["status"]

    @property
    def summary(self) -> dict[str, Any]:
        return self.record.get("summary") or {}

    def model_path(self, name: str = "deem") -> Path | None:
        path = self.path / f"model_{_check_name(name)}.pt"
        # (a link planted in the runs folder, to /etc/passwd, was served by the "Fitted model" download; attack
        # round 43: the server writes no links)
        return path if _is_plain(path) else None

    def model_names(self) -> list[str]:
        return sorted(p.name[len("model_"):-3] for p in self.path.glob("model_*.pt") if _is_plain(p))

    def load_model(self, name: str = "deem", device: str = "cpu"):
        """The fitted :class:`deem_core.DEEM` saved under ``name`` (``None`` when there is none)."""
        from deem_core.methods.deem import DEEM  # noqa: PLC0415

        path = self.model_path(name)
        return None if path is None else DEEM.load(path, device=device)

    def file(self, name: str) -> Path | None:
        """Path of a stored side file (e.g. ``"config.json"``) when it exists."""
        path = self.path / _check_name(name)
        return path if path.exists() else None


# --------------------------------------------------------------------------- the store
class RunStore:
    """Runs under ``root`` (created when missing), indexed in ``root/runs.sqlite``."""

    def __init__(self, root: str | Path | None = None, timeout: float = 30.0):
        self.root = Path(root) if root is not None else default_runs_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        make_private(self.root)
        self._salt = _store_salt(self.root)
        self.db_path = self.root / "runs.sqlite"
        self.timeout = float(timeout)
        self._write_lock = threading.RLock()
        with self._write_lock, closing(self._connect()) as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(_SCHEMA)
            # indexes written before runs could be renamed have no "name" column
            present = {row[1] for row in con.execute("PRAGMA table_info(runs)")}
            if "name" not in present:
                con.execute("ALTER TABLE runs ADD COLUMN name TEXT")
            if "client" not in present:  # (indexes written before runs were counted per network address)
                con.execute("ALTER TABLE runs ADD COLUMN client TEXT")
            con.commit()

    # -- plumbing
    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.db_path, timeout=self.timeout, isolation_level=None)
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
        return con

    def _execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        with self._write_lock, closing(self._connect()) as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                cursor = con.execute(sql, tuple(params))
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            return cursor.rowcount

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        with closing(self._connect()) as con:
            rows = con.execute(sql, tuple(params)).fetchall()
        return [self._decode(dict(row)) for row in rows]

    @staticmethod
    def _decode(row: dict[str, Any]) -> dict[str, Any]:
        for key in ("config", "summary", "messages"):
            if key in row:
                try:
                    row[key] = json.loads(row[key]) if row[key] else ({} if key != "messages" else [])
                except json.JSONDecodeError:
                    row[key] = {} if key != "messages" else []
        return row

    def gold(self, run_id: str) -> pd.Series | None:
        """The run's stored gold labels alone (task -> truth; None without any), read without its answers. Callers
        check who asks: they are the owner's (``deem_studio.owners``)."""
        return _read_gold(self.run_dir(run_id))

    def recommendation(self, run_id: str) -> dict[str, Any]:
        """A sweep's ``recommendation.json`` ({} when it wrote none), read through :func:`read_plain`, at most
        :data:`MAX_SIDE_JSON_BYTES` (the Sweep page read it by name: a planted link to a 2 GB file took the server
        from 0.5 to 4.6 GB, a FIFO held a visitor's thread for good; attack round 45). RunNotFound for a run deleted
        (its download gave "{}"; attack round 71); OSError or ValueError."""
        self._require(run_id)
        path = self.run_dir(run_id) / "recommendation.json"
        if not os.path.lexists(path):
            return {}
        payload = _side_json(path)
        return payload if isinstance(payload, dict) else {}

    def model_bytes(self, run_id: str, name: str = "deem") -> bytes:
        """A run's saved model file's bytes for its download, read by :func:`read_plain`, at most
        :data:`MAX_MODEL_DOWNLOAD_BYTES` (the page read it by name when clicked: a link swapped in was followed;
        attack round 44)."""
        return read_plain(self.run_dir(run_id) / f"model_{_check_name(name)}.pt", MAX_MODEL_DOWNLOAD_BYTES)

    def run_dir(self, run_id: str) -> Path:
        if not is_run_id(run_id):
            raise RunNotFound("that is not a run id (16 hexadecimal characters)")
        return self.root / run_id

    def _require(self, run_id: str) -> dict[str, Any]:
        self.run_dir(run_id)
        rows = self._query("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            raise RunNotFound(f"no run with id {run_id}")  # the server's folders are not the user's business
        return rows[0]

    # -- creation
    @staticmethod
    def expected_bytes(data: AnnotationSet | None, gold: pd.Series | None = None) -> int:
        """About the bytes :meth:`create` writes for ``data`` and ``gold`` (at least their codes' and names'), found
        without writing or copying anything: what a run being written is counted as before it is in the store."""
        total = 4096  # its config and the data set's description
        if data is not None:
            for name in _CODES:
                codes = getattr(data, name)
                total += _narrow_type(codes).itemsize * len(codes)
            if data.soft_labels is not None:
                total += int(data.soft_labels.nbytes)
            for part in _VOCABULARIES:
                total += _text_length(getattr(data, part))
        if gold is not None:
            total += _text_length(gold.index) + _text_length(gold.to_numpy())
        return total

    def create(self, kind: str, config: Mapping[str, Any] | None = None, data: AnnotationSet | None = None,
               gold: pd.Series | None = None, owner: str | None = None, dataset: str | None = None,
               device: str | None = None, status: str = "queued", client: str | None = None) -> str:
        """Register a new run and write its configuration, annotations and gold labels. Returns its id.
        ``client``: the network party that launched it (stored as a one-way hash, :func:`client_key`)."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        config = dict(config or {})
        run_id = new_run_id()
        path = self.root / run_id
        while path.exists():  # astronomically unlikely
            run_id = new_run_id()
            path = self.root / run_id
        path.mkdir(parents=True)
        (path / "results").mkdir()
        write_json(_json_value(config), path / "config.json")
        if data is not None:
            _write_annotations(path, data)
            meta = {"source": data.source, "layout": getattr(data, "layout", "long"),
                    "classes": _json_value(list(data.classes)), "warnings": list(data.warnings)}
            merged = getattr(data, "spellings_merged", None)
            if merged:  # (a reopened run's merged spellings: gold labels uploaded then are written the same way)
                meta["spellings_merged"] = [[str(a), str(b)] for a, b in merged.items()]
            write_json(meta, path / "dataset.json")
        if gold is not None and len(gold):
            gold_frame = pd.DataFrame({"task": list(gold.index), "truth": list(gold.to_numpy())})
            _write_table(path / "gold", gold_frame)
        now = time.time()
        values = {
            "run_id": run_id, "kind": str(kind), "status": status, "owner": owner,
            "dataset": dataset if dataset is not None else (data.source if data is not None else None),
            "fingerprint": data.fingerprint() if data is not None else None,
            "n_tasks": data.n_tasks if data is not None else None,
            "n_workers": data.n_workers if data is not None else None,
            "n_classes": data.n_classes if data is not None else None,
            "device": device, "created_at": now, "started_at": now if status == "running" else None,
            "finished_at": now if status in TERMINAL_STATUSES else None, "message": "", "messages": "[]",
            "config": _dumps(config), "summary": "{}", "host": socket.gethostname(), "pid": os.getpid(),
            "client": client_key(client, self._salt),
        }
        self._execute(f"INSERT INTO runs ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                      values.values())
        return run_id

    # -- updates
    def update_status(self, run_id: str, status: str, message: str | None = None,
                      messages: Iterable[str] | None = None, device: str | None = None) -> None:
        """Set the status (and message). ``running`` stamps ``started_at``; a terminal status ``finished_at``."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        self._require(run_id)
        sets = ["status = ?"]
        params: list[Any] = [status]
        now = time.time()
        if status == "running":
            sets.append("started_at = COALESCE(started_at, ?)")
            params.append(now)
            sets.append("pid = ?")
            params.append(os.getpid())
            sets.append("host = ?")
            params.append(socket.gethostname())
        if status in TERMINAL_STATUSES:
            sets.append("finished_at = ?")
            params.append(now)
        if message is not None:
            sets.append("message = ?")
            params.append(str(message))
        if messages is not None:
            sets.append("messages = ?")
            params.append(_dumps([str(m) for m in messages]))
        if device is not None:
            sets.append("device = ?")
            params.append(str(device))
        self._execute(f"UPDATE runs SET {', '.join(sets)} WHERE run_id = ?", [*params, run_id])

    def update_summary(self, run_id: str, **values: Any) -> dict[str, Any]:
        """Merge ``values`` into the run's summary (small facts shown in the runs list: accuracy, lr, ...)."""
        with self._write_lock:
            summary = dict(self._require(run_id)["summary"] or {})
            summary.update(_json_value(values))
            self._execute("UPDATE runs SET summary = ? WHERE run_id = ?", (_dumps(summary), run_id))
        return summary

    def rename(self, run_id: str, name: str | None) -> str:
        """Set a run's display name (one line, at most :data:`MAX_RUN_NAME` characters; empty = none).
        Who may rename is checked by :mod:`deem_studio.owners`, not here."""
        self._require(run_id)
        text = " ".join(str(name or "").split())[:MAX_RUN_NAME]
        self._execute("UPDATE runs SET name = ? WHERE run_id = ?", (text or None, run_id))
        return text

    def save_history(self, run_id: str, history: pd.DataFrame) -> Path:
        return _write_table(self.run_dir(run_id) / "history", history.reset_index(drop=True))

    def save_result(self, run_id: str, name: str, frame: pd.DataFrame) -> Path:
        """One method's label table (index = task)."""
        return _write_table(self.run_dir(run_id) / "results" / _check_name(name), frame)

    def save_json(self, run_id: str, name: str, obj: Any) -> Path:
        return write_json(_json_value(obj), self.run_dir(run_id) / f"{_check_name(name)}.json")

    def save_table(self, run_id: str, name: str, frame: pd.DataFrame) -> Path:
        """A side table (e.g. the worker table) under ``<run>/<name>.parquet``."""
        return _write_table(self.run_dir(run_id) / _check_name(name), frame)

    def save_model(self, run_id: str, model: Any, name: str = "deem") -> Path:
        return model.save(self.run_dir(run_id) / f"model_{_check_name(name)}.pt")

    def save_label_studio(self, run_id: str, context: Any, max_bytes: int | None = None) -> Path:
        """Keep the Label Studio tasks (``id`` and ``data``) and control a run's data set was read with, so that
        its predictions file keeps them when the run is opened again in another session (a reopened run's file had
        no task ids, no data and the control names "label"/"task"; walkthrough 48). Each file is written to a
        temporary file in the run's folder, then renamed (a folder deleted meanwhile is not made again). The control
        comes first, compact and within ``max_bytes`` and ``MAX_SETTINGS_BYTES`` (DataError, nothing kept); the tasks
        stop at the room it leaves (DataError, no tasks kept: a 10 MB export of ``1E15`` numbers was kept as 40 MB past
        a 5 MB workspace cap; attack round 24)."""
        from deem_core.data.formats.labelstudio import settings_json, write_tasks  # noqa: PLC0415

        folder = self.run_dir(run_id)
        control = settings_json(context, max_bytes)
        settings = self._write_in(folder, LABEL_STUDIO_SETTINGS, lambda handle: handle.write(control.decode("utf-8")))
        # the tasks compressed (a 1.1 MB gzipped export's 954 MB of task data were stored whole at every training;
        # walkthrough, forty-eighth session), their text within the room left and below 4 GiB (gzip's size field then
        # says their size exactly: what reading them back allows)
        room = min(TASKS_MAX_TEXT, TASKS_MAX_TEXT if max_bytes is None else max_bytes - len(control))
        self._write_in(folder, LABEL_STUDIO_TASKS, lambda handle: write_tasks(context, handle, room), compress=True)
        return settings

    @staticmethod
    def _write_in(folder: Path, name: str, write: Callable[[Any], Any], compress: bool = False) -> Path:
        """``write(handle)`` to a temporary text file (UTF-8; gzip-compressed with ``compress``) in ``folder``,
        synced, then renamed to ``name``; the temporary file is removed when writing fails."""
        handle = tempfile.NamedTemporaryFile("wb", dir=folder, prefix=f".{name}.", suffix=".tmp", delete=False)
        try:
            with handle:
                packed = gzip.GzipFile(fileobj=handle, mode="wb", compresslevel=6, mtime=0) if compress else None
                text = io.TextIOWrapper(packed or handle, encoding="utf-8", newline="")
                write(text)
                text.flush()
                text.detach()  # (the file is closed by its own block)
                if packed is not None:
                    packed.close()  # (its trailer written before the file is synced)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(handle.name, folder / name)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(handle.name)
            raise
        return folder / name

    def load_label_studio(self, run_id: str, tasks: bool = True) -> Any:
        """The Label Studio context kept with a run (:meth:`save_label_studio`), its tasks streamed from the run's
        folder when asked (``tasks``); None when the run's data did not come from a Label Studio export."""
        from deem_core.data.formats.labelstudio import MAX_SETTINGS_BYTES, context_with  # noqa: PLC0415
        from deem_core.data.formats.limits import Limits  # noqa: PLC0415
        from deem_core.data.formats.sources import Source, gzip_text_size  # noqa: PLC0415

        folder = self.run_dir(run_id)
        try:  # (a file of an earlier version may be larger: not read)
            settings = _side_json(folder / LABEL_STUDIO_SETTINGS, MAX_SETTINGS_BYTES)
        except (OSError, ValueError, RecursionError):
            return None
        path = folder / LABEL_STUDIO_TASKS
        if not tasks or not _is_plain(path):
            return context_with(settings)
        limits = Limits.from_env()  # (written here, from a read export: its whole text allowed)
        limits = limits.with_bytes(max(limits.max_bytes, path.stat().st_size, gzip_text_size(path) or 0))
        return context_with(settings, Source(name=LABEL_STUDIO_TASKS, stem="label_studio_tasks", path=path), limits)

    def save_error(self, run_id: str, text: str) -> Path:
        return atomic_write_text(self.run_dir(run_id) / "error.txt", text)

    # -- reading
    def save_pick(self, owner: str, fingerprint: str, pick: Mapping[str, Any]) -> None:
        """Keep ``owner``'s picked learning rate for the data set ``fingerprint`` (replacing the one before; only
        the latest :data:`PICKS_PER_OWNER` data sets' are kept): a reload brings it back, where it was lost with the
        browser's session (walkthrough, tenth session)."""
        text = json.dumps(dict(pick), default=str)
        if not owner or not fingerprint or len(text) > MAX_PICK_CHARS:
            return
        with self._write_lock, closing(self._connect()) as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                con.execute("INSERT OR REPLACE INTO picks (owner, fingerprint, pick, saved_at) VALUES (?, ?, ?, ?)",
                            (str(owner), str(fingerprint), text, time.time()))
                con.execute("DELETE FROM picks WHERE owner = ? AND fingerprint NOT IN (SELECT fingerprint FROM picks "
                            "WHERE owner = ? ORDER BY saved_at DESC, rowid DESC LIMIT ?)",
                            (str(owner), str(owner), PICKS_PER_OWNER))
                over = con.execute("SELECT COUNT(*) FROM picks").fetchone()[0] - PICKS_KEPT
                if over > 0:  # first the picks of workspaces that never launched a run: a workspace costs nothing to
                    # make, and made-up ones pushed every visitor's picks out (attack round 9)
                    over -= con.execute("DELETE FROM picks WHERE rowid IN (SELECT p.rowid FROM picks p WHERE "
                                        "NOT EXISTS (SELECT 1 FROM runs r WHERE r.owner = p.owner) ORDER BY "
                                        "p.saved_at, p.rowid LIMIT ?)", (over,)).rowcount
                if over > 0:
                    con.execute("DELETE FROM picks WHERE rowid IN (SELECT rowid FROM picks ORDER BY saved_at, rowid "
                                "LIMIT ?)", (over,))
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def pick(self, owner: str, fingerprint: str) -> dict[str, Any] | None:
        """``owner``'s last picked learning rate for the data set ``fingerprint`` (None when none was kept)."""
        rows = self._query("SELECT pick FROM picks WHERE owner = ? AND fingerprint = ?", (str(owner), str(fingerprint)))
        if not rows:
            return None
        try:
            pick = json.loads(rows[0]["pick"])
            return pick if isinstance(pick, dict) and math.isfinite(float(pick.get("lr"))) else None
        except (TypeError, ValueError):
            return None

    def get(self, run_id: str) -> dict[str, Any]:
        """The index row of one run (config, summary and messages decoded). Raises :class:`RunNotFound`."""
        return self._require(run_id)

    def exists(self, run_id: str) -> bool:
        try:
            self._require(run_id)
        except RunNotFound:
            return False
        return True

    def list(self, owner: str | None = None, kinds: Iterable[str] | None = None, statuses: Iterable[str] | None = None,
             limit: int | None = None, all_owners: bool = False) -> pd.DataFrame:
        """Runs, newest first, as a DataFrame (one row per run, the index columns).

        By default only the runs of ``owner`` (``None`` = runs without an owner, e.g. from the CLI);
        ``all_owners=True`` lists everyone's (for an administrator or a single-user install).
        """
        clauses, params = [], []
        if not all_owners:
            if owner is None:
                clauses.append("owner IS NULL")
            else:
                clauses.append("owner = ?")
                params.append(owner)
        for column, values in (("kind", kinds), ("status", statuses)):
            if values is not None:
                values = list(values)
                clauses.append(f"{column} IN ({', '.join('?' * len(values))})" if values else "0")
                params.extend(values)
        sql = "SELECT * FROM runs" + (f" WHERE {' AND '.join(clauses)}" if clauses else "")
        sql += " ORDER BY created_at DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = self._query(sql, params)
        frame = pd.DataFrame(rows, columns=list(_COLUMNS))
        for column in ("created_at", "started_at", "finished_at"):
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
        frame["seconds"] = frame["finished_at"] - frame["started_at"]
        return frame

    def usage(self, owner: str | None = None, client: str | None = None) -> tuple[int, int]:
        """(runs, bytes on disk) of ``owner``'s stored runs, or of those launched from the network party
        ``client``."""
        column, value = ("client", client_key(client, self._salt)) if client is not None else ("owner", owner)
        ids = [row["run_id"] for row in self._query(
            f"SELECT run_id FROM runs WHERE {column} " + ("IS NULL" if value is None else "= ?"),
            () if value is None else (value,))]
        total = 0
        for run_id in ids:
            for folder, _, files in os.walk(self.root / run_id):
                for name in files:
                    try:
                        total += os.lstat(os.path.join(folder, name)).st_size
                    except OSError:  # deleted meanwhile
                        pass
        return len(ids), total

    def load_data(self, run_id: str) -> tuple[AnnotationSet | None, pd.Series | None]:
        """The annotations (and gold labels) a run was trained on, re-encoded exactly as before."""
        path = self.run_dir(run_id)
        try:
            coded = _read_annotations(path)
            long = None if coded is not None else _read_table(path / "annotations")  # (a run stored before)
        except Exception as exc:  # noqa: BLE001 - pyarrow's message names the server's path: the type only
            raise DataError(f"its stored answers could not be read ({type(exc).__name__})") from None
        data = None
        if coded is not None or long is not None:
            meta = {}
            try:
                if (path / "dataset.json").exists():
                    meta = _side_json(path / "dataset.json")
            except (OSError, ValueError):  # its classes' order and notes are lost; the answers are not
                meta = {}
            meta = meta if isinstance(meta, dict) else {}
            source = meta.get("source") or self._require(run_id).get("dataset") or "annotations"
            classes = meta.get("classes")  # (a hand-edited dataset.json held numbers: TypeError; attack round 20)
            if coded is not None:
                data = coded
                data.source = str(source)
            else:
                try:
                    data = AnnotationSet.from_long(long, classes=classes if isinstance(classes, list) else None,
                                                   source=str(source))
                except (DataError, TypeError, ValueError):
                    data = AnnotationSet.from_long(long, source=str(source))
            warnings = meta.get("warnings")
            data.warnings = [str(w) for w in warnings] if isinstance(warnings, list) else []
            if isinstance(meta.get("layout"), str):
                data.layout = meta["layout"]
            merged = meta.get("spellings_merged")
            if isinstance(merged, list):  # (only pairs of text naming a class of these data)
                known = {str(c) for c in data.classes}
                data.spellings_merged = {str(pair[0]): str(pair[1]) for pair in merged
                                         if isinstance(pair, list) and len(pair) == 2 and str(pair[1]) in known}
        try:
            gold = _read_gold(path)
        except Exception as exc:  # noqa: BLE001 - pyarrow's message names the server's path: the type only
            raise DataError(f"its stored gold labels could not be read ({type(exc).__name__})") from None
        return data, gold

    def load_history(self, run_id: str) -> pd.DataFrame | None:
        """A run's stored curves alone: None when none were written or the file cannot be read. (A run's status
        read its every results table for them, 0.5-5 s and +580 MB a call on a 60,000 x 200 run; attack round 14.)
        Raises :class:`RunNotFound` for an unknown or malformed id."""
        self._require(run_id)
        try:
            return _read_table(self.run_dir(run_id) / "history")
        except Exception:  # noqa: BLE001 - a damaged history shows no curves, as load() keeps it a problem
            return None

    def load(self, run_id: str, with_data: bool = True, methods: Iterable[str] | None = None,
             result_columns: Sequence[str] | None = None, with_gold: bool = False) -> LoadedRun:
        """Everything stored for a run. Raises :class:`RunNotFound` for an unknown or malformed id.

        ``methods``: only those methods' results tables (default all); ``result_columns``: only those columns of
        them (a page that needs every method's labels read each (tasks x classes) table whole; attack round 14).
        ``with_gold``: the gold labels without the answers (``with_data`` reads both)."""
        try:
            return self._load(run_id, with_data, methods, result_columns, with_gold)
        except (FileNotFoundError, NotADirectoryError):
            # deleted while it was read (its folder listed after the check that it exists): said as deleted, not as
            # "No such file or directory: 'results'" (1 in 120 opens during deletes; attack round 16)
            self._require(run_id)
            raise

    def _load(self, run_id: str, with_data: bool, methods: Iterable[str] | None,
              result_columns: Sequence[str] | None, with_gold: bool) -> LoadedRun:
        record = self._require(run_id)
        path = self.run_dir(run_id)
        config = record.get("config") or {}
        loaded = LoadedRun(record=record, config=config, path=path)
        # a damaged file spoils only itself (a damaged config.json, dataset.json or annotations.parquet failed the
        # Train page for everyone with the link, showing the server's path; attack round 11): the index's copy of the
        # settings stands in for config.json
        if (path / "config.json").exists():
            stored = _read_part(loaded, "config", lambda: _side_json(path / "config.json"))
            if isinstance(stored, dict):
                loaded.config = stored
        if with_data:
            loaded.data, loaded.gold = _read_part(loaded, "annotations", lambda: self.load_data(run_id)) or (None, None)
        elif with_gold:
            loaded.gold = _read_part(loaded, "gold", lambda: _read_gold(path))
        loaded.classes = list(loaded.data.classes) if loaded.data is not None else _read_classes(path)
        loaded.history = _read_part(loaded, "history", lambda: _read_table(path / "history"))
        results_dir = path / "results"
        if results_dir.exists() and not results_dir.is_dir():  # (NotADirectoryError with the path; attack round 20)
            loaded.problems["results"] = "its stored results are not a folder"
        elif results_dir.exists():
            names = sorted({p.name.split(".")[0] for p in results_dir.iterdir() if not p.name.startswith(".")})
            if methods is not None:
                wanted = set(methods)
                names = [name for name in names if name in wanted]
            if result_columns is not None and "label" in result_columns:  # (its name in runs saved before "label")
                result_columns = [*result_columns, "agg_label"]
            for name in names:
                frame = _read_part(loaded, f"results/{name}",
                                   lambda n=name: _read_table(results_dir / n, result_columns))
                if frame is not None:
                    # runs saved before the label column was named "label" called it "agg_label"
                    frame = frame.rename(columns={"agg_label": "label"})
                    if "label" not in frame.columns:  # (the Train page failed on one: KeyError; attack round 15)
                        loaded.problems[f"results/{name}"] = "its stored table has no label column"
                        continue
                    loaded.results[name] = frame
        for json_file in sorted(path.glob("*.json")):
            # (the Label Studio tasks are streamed when a file is made, never read whole: every page view of a run
            # parsed them, ~23x the upload, uncounted and kept in the shared cache; attack round 24)
            if json_file.name in ("config.json", "dataset.json", LABEL_STUDIO_TASKS, LABEL_STUDIO_SETTINGS) or \
                    json_file.name.endswith(".table.json"):
                continue
            value = _read_part(loaded, json_file.stem, lambda f=json_file: _side_json(f))
            if json_file.stem not in loaded.problems:
                loaded.extras[json_file.stem] = value
        for table in sorted(path.glob("*.parquet")) + sorted(path.glob("*.table.json")):
            stem = table.name.split(".")[0]
            if stem in ("annotations", "gold", "history", *_VOCABULARIES.values()) or stem in loaded.extras \
                    or stem in loaded.problems:
                continue
            value = _read_part(loaded, stem, lambda s=stem: _read_table(path / s))
            if stem not in loaded.problems:
                loaded.extras[stem] = value
        return loaded

    # -- maintenance
    def mark_stale_running_as_failed(self, active_ids: Iterable[str] = (), time_limit: float | None = None,
                                     ) -> list[str]:
        """Runs left ``queued``/``running`` by a process that is gone (a crash, a restart) become ``failed``.

        A run is stale when it is not in ``active_ids`` (the jobs this process is running) and either it
        belongs to this process, or its process no longer exists on this host (or the pid now names a process
        started after the run: reused after a reboot), or, of another host, it was created longer ago than a job may
        run (``time_limit`` seconds, and ten minutes more; a recreated container comes back under another host
        name). Runs of a live process on the same host, or of another host within that time, are left alone.
        Returns the ids marked failed.
        """
        active = set(active_ids)
        host, pid = socket.gethostname(), os.getpid()
        stale = []
        now = time.time()
        for row in self._query("SELECT run_id, status, host, pid, created_at FROM runs "
                               "WHERE status IN ('queued', 'running')"):
            if row["run_id"] in active:
                continue
            if row["host"] not in (None, host):
                if time_limit and row["created_at"] and now - float(row["created_at"]) > float(time_limit) + 600:
                    stale.append(row)
                continue
            if row["pid"] == pid or not _run_process_alive(row["pid"], row["created_at"]):
                stale.append(row)
        for row in stale:
            was = row["status"]
            self.update_status(row["run_id"], "failed",
                               message=f"the server stopped while this run was {was}; it did not finish "
                                       f"(launch it again)")
        return [row["run_id"] for row in stale]

    #: seconds a run folder without an index row is left alone (another process may be writing it this moment)
    UNINDEXED_GRACE_SECONDS = 600.0

    def remove_unindexed(self, min_age: float | None = None) -> list[str]:
        """Remove run folders left half-written: no index row, nothing in them but what :meth:`create` writes before
        the row (no result, model, history or log of a job), last changed more than ``min_age`` seconds ago (default
        :data:`UNINDEXED_GRACE_SECONDS`). A server killed between a run's files and its row left a full copy of the
        uploaded answers (18 MB of a 300,000-task set) counted by no quota, listed nowhere, removed by nothing (attack
        round 59). A folder holding a job's output is never removed (an index restored from a backup, or lost,
        removed finished runs; attack round 60), unless :meth:`delete` marked it before its row went, nor anything
        while the index holds no run at all. Returns the ids removed."""
        min_age = self.UNINDEXED_GRACE_SECONDS if min_age is None else float(min_age)
        indexed = {row["run_id"] for row in self._query("SELECT run_id FROM runs")}
        removed, now = [], time.time()
        if not indexed:  # (an index lost, emptied or of another folder: nothing is judged by it)
            return removed
        for entry in os.scandir(self.root):
            if not is_run_id(entry.name) or entry.name in indexed or not entry.is_dir(follow_symlinks=False):
                continue
            try:
                deleting = (Path(entry.path) / DELETING_MARK).is_file()  # (a delete cut short: its row already gone)
                if not deleting and (now - entry.stat(follow_symlinks=False).st_mtime <= min_age
                                     or not _only_created(Path(entry.path))):
                    continue
            except OSError:  # gone meanwhile
                continue
            with self._write_lock:
                if self._query("SELECT run_id FROM runs WHERE run_id = ?", (entry.name,)):
                    continue  # (indexed meanwhile)
                shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.name)
        return removed

    def delete(self, run_id: str) -> None:
        """Remove a run (index row and folder). Refuses while it is queued or running."""
        record = self._require(run_id)
        if record["status"] in ACTIVE_STATUSES:
            raise ValueError(f"run {run_id} is {record['status']}; cancel it before deleting it")
        folder = self.run_dir(run_id)
        with contextlib.suppress(OSError):  # (marked first: a server killed between the row and the folder left the
            # folder, its results and model, counted by no quota and removed by nothing; attack round 61)
            (folder / DELETING_MARK).touch()
        self._execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
        shutil.rmtree(folder, ignore_errors=True)
