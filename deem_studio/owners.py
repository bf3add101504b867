"""Who may change a run: owner keys, workspaces and the owner-only actions (cancel, delete, rename).

The access model of the dashboard (decided for issue 14; the README's dashboard section says the same):

* **A run link is read-only.** ``/train?run=<run id>`` (likewise ``/sweep``, ``/results``, ``/diagnostics``)
  opens a run for anyone who has the link: its data, settings, curves, labels and downloads. A run id is
  an unguessable 64-bit random value, so only people who were sent the link can open it.
* **Changing a run needs its owner's key.** Every browser gets an *owner key* (128 random bits, 32 hex
  characters) the first time it opens the dashboard. It is kept in the session and in the site's local storage
  (``deem_owner``; written and read by a tiny script of the page, which reports it to the server at the start of
  each session), never in a cookie (sent to every port of the host) nor in the address bar, so a shared or
  bookmarked address carries no control and no page of another origin reads or replaces it. The runs it launches are
  stored with its *workspace id*, a one-way hash of the key (:func:`workspace_of`): the index holds no key,
  and showing a workspace id gives nothing away. Cancel, delete and rename check that the caller's key hashes
  to the run's owner (:func:`require_owner`), here in the service layer and not only by hiding buttons.
* **Regaining control elsewhere.** A browser refresh or a server restart keeps the key (the site's storage). In
  another browser, or after clearing the site's data, the owner pastes the key shown on their Runs page ("Owner key");
  anyone holding the key is the owner, so it is to be kept like a password.
* **Fair share.** At most :data:`DEFAULT_MAX_ACTIVE_PER_WORKSPACE` jobs of one workspace may be queued or
  running at once (``DEEM_MAX_JOBS_PER_WORKSPACE``), so one session cannot fill the server's queue. A workspace
  costs nothing (a browser without a kept key gets a new one), so jobs are also counted per network address of
  the browser: at most :data:`DEFAULT_MAX_ACTIVE_PER_CLIENT` from one address (``DEEM_MAX_JOBS_PER_CLIENT``; 0:
  no such limit). Found attacking main: 16 browser sessions from one machine filled the server's 64 places and
  every other user got "64 jobs are already queued or running on this server". Browsers on the server's own
  machine (and so all users behind a reverse proxy on it) have no address here and are not counted this way.

Runs created before owner keys existed were stored under the old ``ws`` value of the address bar (16 hex
characters): that value was shared in links, so it proves nothing; such runs stay readable by their id and
no browser can change them (an administrator removes their folders by hand if needed).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import os
import re
import secrets
from typing import Any, Mapping
from urllib.parse import urlsplit

from deem_studio.settings import env_value

__all__ = [
    "AccessDenied", "STORAGE_NAME", "allowed_origins", "same_origin",
    "DEFAULT_MAX_ACTIVE_PER_CLIENT", "DEFAULT_MAX_ACTIVE_PER_WORKSPACE", "can_control",
    "cancel_run", "delete_run", "is_owner_key", "is_workspace_id", "max_active_per_client", "max_active_per_workspace", "new_owner_key", "rename_run", "require_owner",
    "workspace_of",
]

#: the name under which a browser keeps its owner key in the site's local storage (``localStorage``, which belongs to
#: one origin: scheme, host and port). It was a cookie: cookies keep no port apart, and a page served on another port
#: of the host read it (attack round 28), set its own beside it (round 29) or evicted it by filling the browser's
#: cookie jar, then put its own in its place (round 30)
STORAGE_NAME = "deem_owner"
DEFAULT_MAX_ACTIVE_PER_WORKSPACE = 4
DEFAULT_MAX_ACTIVE_PER_CLIENT = 8
_KEY = re.compile(r"[0-9a-f]{32}")
_WORKSPACE = re.compile(r"[0-9a-f]{24}")
_SALT = b"deem-studio workspace v1\x00"


_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _host_port(authority: str, scheme: str) -> tuple[str | None, int | None] | None:
    """(host, port) of ``authority`` (``host[:port]``, an IPv6 host in brackets), the scheme's default port when none
    is given; None when it is no authority."""
    try:
        parts = urlsplit(f"//{authority.strip().rstrip('/')}")
        return parts.hostname, parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # (a port that is no number)
        return None


def allowed_origins() -> set[str]:
    """Origins other than the server's own address that its pages are served from (``DEEM_ALLOWED_ORIGINS``,
    comma-separated, e.g. ``https://deem.example.org`` behind a reverse proxy that rewrites ``Host``)."""
    return _origins(os.environ.get("DEEM_ALLOWED_ORIGINS", ""))


def _origins(text: str) -> set[str]:
    return {origin.strip().rstrip("/").lower() for origin in text.split(",") if origin.strip()}


def same_origin(origin: str | None, host: str | None, scheme: str = "http") -> bool:
    """Whether a request's ``Origin`` is the server's own address (its ``Host``, default ports written out) or one of
    :func:`allowed_origins`. Streamlit's own check lets any port of localhost or of the server's address open its
    websocket: a page on another port then read the owner key and drove the app as its visitor (attack round 29)."""
    if not origin or origin == "null":
        return False
    origin = origin.strip().rstrip("/").lower()
    if origin in allowed_origins():
        return True
    if not host or "://" not in origin:
        return False
    origin_scheme, authority = origin.split("://", 1)
    own = _host_port(host, {"ws": "http", "wss": "https"}.get(scheme, scheme))
    return own is not None and _host_port(authority, origin_scheme) == own


def allowed_hosts() -> frozenset[str]:
    """Host names (lower case, no port) this server answers for besides its automatic ones (:func:`host_allowed`):
    ``DEEM_ALLOWED_HOSTS`` (comma-separated; ``*``: any) and the hosts of :func:`allowed_origins` (read once for
    each value of the two settings: every request asks)."""
    return _allowed_hosts(os.environ.get("DEEM_ALLOWED_HOSTS", ""), os.environ.get("DEEM_ALLOWED_ORIGINS", ""))


@functools.lru_cache(maxsize=8)
def _allowed_hosts(hosts: str, origins: str) -> frozenset[str]:
    names = {name.strip().lower().rstrip(".") for name in hosts.split(",") if name.strip()}
    for origin in _origins(origins):
        parts = _host_port(origin.split("://", 1)[-1], origin.split("://", 1)[0] if "://" in origin else "http")
        if parts is not None and parts[0]:
            names.add(parts[0].rstrip("."))
    return frozenset(names)


@functools.lru_cache(maxsize=1)
def _machine_names() -> frozenset[str]:
    """This machine's host name and fully qualified name (read once: the latter may ask the DNS)."""
    import socket  # noqa: PLC0415

    names = {"localhost"}
    for read in (socket.gethostname, socket.getfqdn):
        try:
            names.add(read().strip().lower().rstrip("."))
        except OSError:
            pass
    return frozenset(n for n in names if n)


def host_allowed(host: str | None) -> bool:
    """Whether a request's ``Host`` names this server: an address written as such (a browser that opened it by
    address), ``localhost`` and its subdomains, this machine's own names, or :func:`allowed_hosts`. A name
    nobody configured is a DNS-rebinding page: ``attacker.example`` pointed at 127.0.0.1 was served the app, its
    websocket accepted (its Origin matched the Host it also wrote), and drove it as a visitor of the server's own
    machine from any browser there (attack round 33). A request without a Host (HTTP/1.0) is not a browser's."""
    if not host:
        return True
    parts = _host_port(host, "http")
    if parts is None or not parts[0]:
        return False
    name = parts[0].lower().rstrip(".")
    try:
        ipaddress.ip_address(name.split("%")[0])
        return True
    except ValueError:
        pass
    allowed = allowed_hosts()
    return ("*" in allowed or name in allowed or name == "localhost" or name.endswith(".localhost")
            or name in _machine_names())


def request_host(headers: Any) -> tuple[str | None, bool]:
    """(the first ``Host``, whether every ``Host`` of the request is allowed by :func:`host_allowed`) from an ASGI
    scope's ``headers`` (name, value byte pairs): the one reading of both guards, the HTTP one and the websocket one,
    so that a request carrying two ``Host`` headers cannot pass one guard by the first and the other by the last."""
    hosts = [bytes(value).decode("latin-1") for name, value in headers or () if bytes(name).lower() == b"host"]
    return (hosts[0] if hosts else None), all(host_allowed(host) for host in hosts)


class AccessDenied(PermissionError):
    """The caller's owner key does not own this run (the message says what was refused and why)."""


def new_owner_key() -> str:
    """A fresh owner key: 128 random bits as 32 lowercase hex characters."""
    return secrets.token_hex(16)


def is_owner_key(value: Any) -> bool:
    return isinstance(value, str) and _KEY.fullmatch(value) is not None


def is_workspace_id(value: Any) -> bool:
    return isinstance(value, str) and _WORKSPACE.fullmatch(value) is not None


def normalise_key(text: Any) -> str | None:
    """A key as a user pasted it (spaces, upper case, a surrounding quote) -> the key, or None if it is none."""
    if not isinstance(text, str):
        return None
    cleaned = text.strip().strip("'\"` ").lower()
    return cleaned if is_owner_key(cleaned) else None


def workspace_of(key: str) -> str:
    """The workspace id of an owner key: the first 96 bits of a salted SHA-256 (one-way; 24 hex characters,
    never equal to an old 16-character ``ws`` value)."""
    if not is_owner_key(key):
        raise ValueError("not an owner key (32 hexadecimal characters)")
    return hashlib.sha256(_SALT + key.encode("ascii")).hexdigest()[:24]


def can_control(key: str | None, owner: str | None) -> bool:
    """True when ``key`` is the owner key of a run whose index row says ``owner``."""
    if not is_owner_key(key) or not is_workspace_id(owner):
        return False
    return hmac.compare_digest(workspace_of(key), owner)


def require_owner(key: str | None, record: Mapping[str, Any], action: str) -> None:
    """Raise :class:`AccessDenied` unless ``key`` owns the run of ``record`` (an index row)."""
    if can_control(key, record.get("owner")):
        return
    run_id = record.get("run_id", "?")
    if is_workspace_id(record.get("owner")):
        why = "it belongs to another workspace; only its owner (with their owner key) can"
    else:
        why = "it was not launched from a browser workspace (command line or an older version); no one can"
    raise AccessDenied(f"run {run_id} cannot be {action} from here: {why} {_VERB.get(action, action)} it")


_VERB = {"cancelled": "cancel", "deleted": "delete", "renamed": "rename"}


def max_active_per_workspace() -> int:
    """Jobs one workspace may have queued or running at once (``DEEM_MAX_JOBS_PER_WORKSPACE``, default 4)."""
    return int(env_value("DEEM_MAX_JOBS_PER_WORKSPACE", DEFAULT_MAX_ACTIVE_PER_WORKSPACE))


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, translated, compatible, NAT64, 6to4, Teredo), if any:
    grouped by /64 these put every IPv4 visitor of a translator in one party (attack round 6)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64 or ip in _IPV4_TRANSLATED or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def proxy_trusted() -> bool:
    """Whether the server was told that a reverse proxy on its machine appends each visitor's address to
    ``X-Forwarded-For`` (``DEEM_TRUST_PROXY=1``). Read by default, the header let any process on the machine (an SSH
    tunnel's user) name a new party on every connection and take every place (attack round 28)."""
    from deem_studio.settings import env_value  # noqa: PLC0415

    return bool(env_value("DEEM_TRUST_PROXY", 0))


def client_party(address: str | None, forwarded: str | None = None, trust: bool | None = None) -> str | None:
    """The party a network address counts for in the per-address limits: an IPv6 address by its /64 network (one
    host normally holds a whole /64, so counting addresses one by one did not bind; attack round, ninth session),
    an IPv4 address as it is, also when written inside an IPv6 one (``::ffff:a.b.c.d``, NAT64, 6to4, Teredo).

    A loopback address is the server's own machine: a browser there is no party (None). A reverse proxy there
    connects from loopback too, and a server listening on every interface sees it as ``::ffff:127.0.0.1``, whose
    ``X-Forwarded-For`` uvicorn ignores: ``forwarded`` (that header, read by the page) then names the visitor: its
    rightmost address that is not loopback (what the proxy appended; entries to its left are the client's own
    words). Counted as loopback, every visitor of such a proxy had no limit at all (attack round 6); counted as
    one party before, they shared one (attack round 5). A header of loopback addresses only is one party,
    ``127.0.0.1``, not none. The header is read only when ``trust`` (default: :func:`proxy_trusted`), and only its
    entries that are addresses (any text was a party of its own)."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(str(address).split("%")[0])
    except ValueError:
        return str(address)
    if ip.version == 6:
        ip = _embedded_ipv4(ip) or ip
    if ip.is_loopback:
        if not forwarded or not (proxy_trusted() if trust is None else trust):
            return None
        for entry in reversed([part.strip() for part in str(forwarded).split(",")]):
            try:
                ipaddress.ip_address(_bare_address(entry).split("%")[0])
            except ValueError:
                continue  # not an address: no party of its own
            party = client_party(_bare_address(entry), trust=False)
            if party is not None:
                return party
        return "127.0.0.1"
    if ip.version == 4:
        return str(ip)
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))


def _bare_address(entry: str) -> str:
    """An X-Forwarded-For entry without brackets or port: ``[2001:db8::1]:443`` -> ``2001:db8::1``, ``a.b.c.d:80``
    -> ``a.b.c.d``."""
    entry = entry.strip().strip('"')
    if entry.startswith("["):
        return entry[1:entry.find("]")] if "]" in entry else entry[1:]
    if entry.count(":") == 1:
        return entry.split(":")[0]
    return entry


def max_active_per_client() -> int:
    """Jobs one network address may have queued or running at once (``DEEM_MAX_JOBS_PER_CLIENT``, default 8;
    0: no limit)."""
    return int(env_value("DEEM_MAX_JOBS_PER_CLIENT", DEFAULT_MAX_ACTIVE_PER_CLIENT))


#: runs one workspace may keep in the run store, and their bytes (each run keeps its own copy of its data: one
#: browser clicking Train on an 8 MB upload stored 77 MB in 7 s, and nothing bounded it; attack round, ninth session)
DEFAULT_MAX_RUNS_PER_WORKSPACE = 200
DEFAULT_MAX_WORKSPACE_BYTES = 10 << 30
#: the same per network address (several people may share one; a visitor may make many workspaces)
DEFAULT_MAX_RUNS_PER_CLIENT = 1_000
DEFAULT_MAX_CLIENT_BYTES = 50 << 30
#: free disk space under the run store below which no new run is stored (many workspaces together)
DEFAULT_MIN_FREE_DISK = 512 << 20


def max_runs_per_workspace() -> int:
    """Runs one workspace may keep stored (``DEEM_MAX_RUNS_PER_WORKSPACE``, default 200; 0: no limit)."""
    return int(env_value("DEEM_MAX_RUNS_PER_WORKSPACE", DEFAULT_MAX_RUNS_PER_WORKSPACE))


def max_workspace_bytes() -> int:
    """Bytes one workspace's stored runs may take (``DEEM_MAX_WORKSPACE_BYTES``, default 10G; 0: no limit)."""
    return int(env_value("DEEM_MAX_WORKSPACE_BYTES", DEFAULT_MAX_WORKSPACE_BYTES))


def max_runs_per_client() -> int:
    """Runs one network address may keep stored, whatever its workspaces (``DEEM_MAX_RUNS_PER_CLIENT``, default
    1,000; 0: no limit): a workspace costs nothing, so the per-workspace bound alone did not bind one visitor."""
    return int(env_value("DEEM_MAX_RUNS_PER_CLIENT", DEFAULT_MAX_RUNS_PER_CLIENT))


def max_client_bytes() -> int:
    """Bytes the runs of one network address may take (``DEEM_MAX_CLIENT_BYTES``, default 50G; 0: no limit)."""
    return int(env_value("DEEM_MAX_CLIENT_BYTES", DEFAULT_MAX_CLIENT_BYTES))


def min_free_disk() -> int:
    """Free bytes the run store's disk keeps: no new run is stored below it (``DEEM_MIN_FREE_DISK``, default 512M;
    0: none)."""
    return int(env_value("DEEM_MIN_FREE_DISK", DEFAULT_MIN_FREE_DISK))


# --------------------------------------------------------------------------- owner-only actions
def cancel_run(manager, run_id: str, key: str | None) -> bool:
    """Cancel a queued or running job of the caller's workspace. False when it is not running in this process."""
    require_owner(key, manager.store.get(run_id), "cancelled")
    return manager.cancel(run_id)


def delete_run(store, run_id: str, key: str | None) -> list[str]:
    """Delete a finished run of the caller's workspace (index row and folder), and the finished diagnostics computed
    of it, in any workspace (they were left behind, listed and impossible to open; walkthrough 26; a link's visitor's
    kept the deleted run's figures and their files counted; attack round 17). Returns the ids of those diagnostics
    runs; those still running go when they end (:class:`deem_studio.jobs.JobManager`)."""
    record = store.get(run_id)
    require_owner(key, record, "deleted")
    store.delete(run_id)
    if record.get("owner") is None or record.get("kind") != "train":
        return []
    diagnostics = store.list(all_owners=True, kinds=["diagnostics"], statuses=["finished", "failed", "cancelled"])
    gone = [rid for rid, config in zip(diagnostics["run_id"], diagnostics["config"])
            if (config or {}).get("source_run") == run_id]
    for rid in gone:
        store.delete(rid)
    return gone


def rename_run(store, run_id: str, key: str | None, name: str) -> str:
    """Give a run of the caller's workspace a display name (shown in lists instead of the data set's name)."""
    require_owner(key, store.get(run_id), "renamed")
    return store.rename(run_id, name)
