"""The server's limits from ``DEEM_*`` environment variables: one parser and one table of what each one is.

Every limit the dashboard reads from the environment goes through :func:`env_value`. A value is a plain ASCII
number: a count (an integer), seconds (a number) or bytes (an integer, optionally ending in K, M, G or T). 0 means
"no limit" where the table says so, and nothing else does: a negative number, NaN, infinity, text or a size where a
count is wanted is an error. ``deem-studio`` checks every variable before it starts the server
(:func:`check_environment`: one ``error:`` line per bad value, exit status 2); a value that is bad at run time (set
after the start, or a server started by ``streamlit run``) falls back to the default, so a typo never lifts a limit
(attack round 11: ``DEEM_MAX_JOB_SECONDS=nan`` or ``-1`` gave jobs no time limit, ``DEEM_MAX_CPU_JOBS=abc`` broke
every page, ``DEEM_MAX_TABLE_BYTES=1G`` fell back to the default without a word).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

__all__ = ["SETTINGS", "Setting", "SettingError", "check_environment", "env_value", "parse_setting"]


class SettingError(ValueError):
    """A ``DEEM_*`` variable whose value is not one the server can use."""


@dataclass(frozen=True)
class Setting:
    kind: str  # "count", "seconds" or "bytes"
    zero: bool  # whether 0 is allowed (it means "no limit", or none needed)
    what: str


SETTINGS: dict[str, Setting] = {
    # the run store and jobs
    "DEEM_MAX_JOB_SECONDS": Setting("seconds", True, "seconds a job may run (0: no limit)"),
    "DEEM_MAX_CPU_JOBS": Setting("count", False, "jobs training on the CPU at once"),
    "DEEM_MAX_JOBS_PER_WORKSPACE": Setting("count", False, "jobs one workspace may have queued or running"),
    "DEEM_MAX_JOBS_PER_CLIENT": Setting("count", True, "jobs one network address may have queued or running "
                                                       "(0: no limit)"),
    "DEEM_MAX_RUNS_PER_WORKSPACE": Setting("count", True, "runs one workspace may keep (0: no limit)"),
    "DEEM_MAX_RUNS_PER_CLIENT": Setting("count", True, "runs one network address may keep (0: no limit)"),
    "DEEM_MAX_WORKSPACE_BYTES": Setting("bytes", True, "bytes one workspace's runs may take (0: no limit)"),
    "DEEM_MAX_CLIENT_BYTES": Setting("bytes", True, "bytes one network address's runs may take (0: no limit)"),
    "DEEM_MIN_FREE_DISK": Setting("bytes", True, "free disk below which no run is stored"),
    "DEEM_MAX_TABLE_BYTES": Setting("bytes", False, "bytes of one (tasks x classes) table of a run (8 a cell, 16 KiB a "
                                                   "class column; a job's memory peaks at 4-5 times it)"),
    "DEEM_MAX_JOB_MEMORY": Setting("bytes", False, "bytes one training or sweep on the CPU may take by the engine's "
                                                  "estimate, checked before it is queued (default: 40% of the "
                                                  "machine's memory)"),
    "DEEM_PROBE_MAX_BYTES": Setting("bytes", False, "bytes of a timing probe's model"),
    "DEEM_HISTORY_SAVE_SECONDS": Setting("seconds", True, "seconds between saves of a job's curves"),
    # uploads, connections and reading
    "DEEM_MAX_UPLOAD_BYTES": Setting("bytes", False, "bytes of uploads the server holds"),
    "DEEM_MAX_UPLOAD_BYTES_PER_SESSION": Setting("bytes", False, "bytes of uploads one session holds"),
    "DEEM_TRUST_PROXY": Setting("count", True, "1: a reverse proxy on this machine appends each visitor's address to "
                                               "X-Forwarded-For, which is read; 0 (the default): the header is "
                                               "ignored"),
    "DEEM_MAX_CONNECTIONS": Setting("count", True, "websocket connections in all (0: no limit)"),
    "DEEM_MAX_CONNECTIONS_PER_CLIENT": Setting("count", True, "websocket connections per address (0: no limit)"),
    "DEEM_NEW_CONNECTIONS_PER_MINUTE": Setting("count", True, "new websocket connections (sessions) one address may "
                                                              "open a minute, after a burst of 30 (0: no limit)"),
    "DEEM_MAX_HTTP_CONNECTIONS": Setting("count", True, "HTTP connections in all (0: no limit)"),
    "DEEM_MAX_HTTP_CONNECTIONS_PER_CLIENT": Setting("count", True, "HTTP connections per address (0: no limit)"),
    "DEEM_MAX_LOADED_BYTES": Setting("bytes", False, "bytes of loaded data sets in all"),
    "DEEM_MAX_CONCURRENT_READS": Setting("count", False, "files read at once (in each of the two lines)"),
    "DEEM_READ_LARGE_BYTES": Setting("bytes", False, "bytes of files from which a read waits in the line of large "
                                                     "ones"),
    "DEEM_MAX_CONCURRENT_DOWNLOADS": Setting("count", False, "download files made at once (in each of the two lines)"),
    "DEEM_DOWNLOAD_LARGE_BYTES": Setting("bytes", False, "bytes from which a download is made in the line of large "
                                                         "ones"),
    "DEEM_MAX_READ_SECONDS_PER_CLIENT": Setting("seconds", True, "seconds of reading per address and hour "
                                                                 "(0: no limit)"),
    # the engine's input limits (deem_core.data.formats.limits reads them; checked here at the start)
    "DEEM_MAX_INPUT_BYTES": Setting("bytes", False, "decompressed bytes of one input"),
    "DEEM_MAX_INPUT_ROWS": Setting("bytes", False, "rows of one input"),
    "DEEM_MAX_VALUE_CHARS": Setting("bytes", False, "characters of one value"),
    "DEEM_MAX_COLUMNS": Setting("bytes", False, "columns of one table"),
    "DEEM_MAX_READ_SECONDS": Setting("seconds", True, "seconds of one read (0: no limit)"),
    "DEEM_MAX_READ_MEMORY": Setting("bytes", True, "memory one read may add, at most (0: not checked)"),
}

def parse_setting(name: str, raw: str) -> float | int:
    """The value of ``name`` written ``raw``; SettingError (one sentence naming the variable) when unusable. The
    engine's parser (:func:`deem_core.data.formats.limits.parse_limit`), which its own input limits use too: the
    start check and the values read at run time cannot differ."""
    # (imported here: app.py reads the connection limits before the engine is loaded, and the formats package
    # brings pandas)
    from deem_core.data.formats.limits import parse_limit  # noqa: PLC0415

    setting = SETTINGS.get(name, Setting("count", True, name))
    text = str(raw).strip()
    try:
        return parse_limit(text, setting.kind, zero=setting.zero)
    except ValueError as exc:
        raise SettingError(f"{name}={text[:40]!r}{'...' if len(text) > 40 else ''}: {setting.what} must be "
                           f"{exc}") from None


def env_value(name: str, default: float | int, environ: Mapping[str, str] | None = None) -> float | int:
    """``name``'s value from the environment; ``default`` when it is unset, empty or unusable (a bad value never
    lifts a limit; ``deem-studio`` refuses to start with one: :func:`check_environment`)."""
    from deem_core.data.formats.limits import limit_from_env  # noqa: PLC0415 - (see parse_setting)

    setting = SETTINGS.get(name, Setting("count", True, name))
    return limit_from_env(name, default, setting.kind, setting.zero, environ)


def check_environment(environ: Mapping[str, str] | None = None) -> list[str]:
    """One sentence per ``DEEM_*`` limit set to a value the server cannot use (none: the list is empty)."""
    environ = os.environ if environ is None else environ
    problems = []
    for name in SETTINGS:
        raw = environ.get(name, "")
        if str(raw).strip():
            try:
                parse_setting(name, raw)
            except SettingError as exc:
                problems.append(str(exc))
    return problems
