"""Jobs per network address (found attacking main): a workspace costs nothing (a browser without a kept owner key
gets a new one), so 16 sessions from one machine, 4 jobs each, filled the server's 64 places and every other
user was refused ("64 jobs are already queued or running on this server")."""

from __future__ import annotations

import functools

import re
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deem_studio import owners
from deem_studio.jobs import JobManager, QueueFull, register_kind
from deem_studio.runs import RunStore

ROOT = Path(__file__).resolve().parents[1]
GATE = threading.Event()


def _gated(ctx):
    while not GATE.wait(0.01):
        if ctx.cancel_event.is_set():
            return "cancelled", "cancelled while waiting"
    return "finished", "ok"


register_kind("client_gate", _gated, device=lambda config: "cpu", steps=lambda config, data: 1)


def test_many_workspaces_from_one_address_cannot_fill_the_queue(tmp_path):
    GATE.clear()
    manager = JobManager(RunStore(tmp_path), max_pending=64, max_pending_per_owner=4, max_pending_per_client=8)
    attacker, accepted, refused = "203.0.113.5", [], 0
    for session in range(16):  # 16 fresh browser sessions: 16 workspaces
        workspace = f"{session:024x}"
        for _ in range(4):
            try:
                accepted.append(manager.submit("client_gate", {}, owner=workspace, client=attacker))
            except QueueFull as exc:
                assert "from your network address" in str(exc) and "at most 8" in str(exc)
                refused += 1
    assert len(accepted) == 8 and refused == 56
    # another user is served
    other = manager.submit("client_gate", {}, owner="f" * 24, client="198.51.100.7")
    # browsers without an address (the server's own machine) keep the workspace limit only
    local = [manager.submit("client_gate", {}, owner="e" * 24) for _ in range(4)]
    with pytest.raises(QueueFull, match="your workspace already has 4"):
        manager.submit("client_gate", {}, owner="e" * 24)
    # once a job of the address ends, it may submit again
    assert manager.cancel(accepted[0])
    manager.wait(accepted[0], timeout=10)
    accepted.append(manager.submit("client_gate", {}, owner="d" * 24, client=attacker))
    GATE.set()
    for run_id in [*accepted[1:], other, *local]:
        assert manager.wait(run_id, timeout=30).done
    manager.shutdown()


def test_a_job_is_counted_once_while_it_starts(monkeypatch, tmp_path):
    """Attack round 35: ten tabs of one address pressing Train at once stored 7 jobs of the 8 allowed: the job joined
    the active ones before its reserved place was given back, so for a moment it counted twice. At the moment its
    thread starts, the job counts and its place is given back."""
    GATE.clear()
    manager = JobManager(RunStore(tmp_path), max_pending=64, max_pending_per_owner=4, max_pending_per_client=8)
    seen = []
    real = threading.Thread.start

    def start(thread):
        if thread.name.startswith("deem-job-"):
            seen.append((dict(manager._reserved), dict(manager._reserved_clients)))
        return real(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    run_id = manager.submit("client_gate", {}, owner="a" * 24, client="203.0.113.9")
    assert seen == [({}, {})]
    GATE.set()
    assert manager.wait(run_id, timeout=30).done
    manager.shutdown()


def test_the_address_limit_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DEEM_MAX_JOBS_PER_CLIENT", "3")
    assert JobManager(RunStore(tmp_path)).max_pending_per_client == 3
    monkeypatch.setenv("DEEM_MAX_JOBS_PER_CLIENT", "nonsense")
    assert owners.max_active_per_client() == owners.DEFAULT_MAX_ACTIVE_PER_CLIENT
    monkeypatch.setenv("DEEM_MAX_JOBS_PER_CLIENT", "0")  # no limit
    GATE.clear()
    manager = JobManager(RunStore(tmp_path / "runs"), max_pending=20, max_pending_per_owner=1)
    runs = [manager.submit("client_gate", {}, owner=f"{i:024x}", client="203.0.113.5") for i in range(12)]
    GATE.set()
    for run_id in runs:
        assert manager.wait(run_id, timeout=30).done
    manager.shutdown()


def test_every_page_that_launches_a_job_says_from_which_address():
    calls = 0
    for page in (ROOT / "pages").glob("*.py"):
        for call in re.findall(r"\.submit(?:_once)?\((.*?)\)\n", page.read_text(), flags=re.S):
            calls += 1
            # pages/common.py's launch (Train, Sweep) is in the same module as client_address
            assert "client=common.client_address()" in call or (
                page.name == "common.py" and "client=client_address()" in call), (page.name, call)
    assert calls >= 2
    launches = sum(len(re.findall(r"common\.launch\(", p.read_text())) for p in (ROOT / "pages").glob("*.py"))
    assert launches >= 2  # the Train and Sweep pages launch through it


def test_a_full_queue_is_told_in_words_without_the_internal_error_name():
    from deem_studio.jobs import readable_error  # noqa: PLC0415

    shown = readable_error(QueueFull("your workspace already has 4 jobs queued or running (at most 4)"))
    assert shown == "your workspace already has 4 jobs queued or running (at most 4)"
    assert "QueueFull" not in shown


def test_an_ipv6_visitor_counts_by_its_network_not_by_each_address():
    # one IPv6 host holds a whole /64: counted address by address, a visitor of 2^64 addresses was never limited
    # (attack round, ninth session)
    party = owners.client_party
    assert party("2001:db8:1:2::1") == party("2001:db8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::/64"
    assert party("2001:db8:1:3::1") != party("2001:db8:1:2::1")
    assert party("203.0.113.5") == "203.0.113.5" and party("::ffff:203.0.113.5") == "203.0.113.5"
    assert party(None) is None and party("") is None and party("not an address") == "not an address"
    assert party("fe80::1%eth0") == "fe80::/64"


def test_the_servers_own_machine_is_no_party():
    # a server listening on every interface sees a local browser, and every visitor of a reverse proxy on the same
    # machine that does not pass their address on, as ::ffff:127.0.0.1 (measured with Streamlit 1.67): counted as
    # one party, they all shared one address's limits (attack round 5)
    party = owners.client_party
    assert party("::ffff:127.0.0.1") is None and party("127.0.0.1") is None and party("::1") is None
    assert party("127.8.9.10") is None
    assert party("::ffff:198.51.100.7") == "198.51.100.7"  # a forwarded or remote address still counts


def test_a_local_proxys_visitor_is_the_address_it_forwards_and_ipv4_inside_ipv6_is_ipv4():
    # behind a reverse proxy on the server's machine every visitor came from ::ffff:127.0.0.1 and, as loopback, had no
    # per-address limit; IPv6 forms holding an IPv4 address put all of a translator's visitors in one /64 (attack
    # round 6)
    party = functools.partial(owners.client_party, trust=True)  # (DEEM_TRUST_PROXY=1: a proxy is said to be there)
    assert party("::ffff:127.0.0.1", "198.51.100.7") == "198.51.100.7"
    assert party("127.0.0.1", "10.9.8.7, 198.51.100.7") == "198.51.100.7"  # the one the proxy appended
    assert party("::1", "[2001:db8:5::9]:443") == "2001:db8:5::/64"
    assert party("::ffff:127.0.0.1", "198.51.100.7:5555, 127.0.0.1") == "198.51.100.7"  # a second local proxy
    assert party("::ffff:127.0.0.1", "127.0.0.1") == party("127.0.0.1", "::1, 127.0.0.2") == "127.0.0.1"
    assert party("::ffff:127.0.0.1", "") is None  # a browser on the server's machine
    assert party("203.0.113.5", "127.0.0.1") == "203.0.113.5"  # a remote peer's header is not read


def test_x_forwarded_for_is_read_only_where_a_proxy_is_said_to_be(monkeypatch):
    """Attack round 28: any process on the server's machine (an SSH tunnel's user) wrote a made-up X-Forwarded-For on
    every connection, each a party of its own, and took all 30 of 30 places; any text was a party ("x")."""
    party = owners.client_party
    monkeypatch.delenv("DEEM_TRUST_PROXY", raising=False)
    assert party("127.0.0.1", "198.18.0.1") is None and party("::ffff:127.0.0.1", "198.18.0.2") is None
    monkeypatch.setenv("DEEM_TRUST_PROXY", "1")
    assert party("127.0.0.1", "198.18.0.1") == "198.18.0.1"
    # entries that are no address are no party: the rightmost address is the visitor
    assert party("127.0.0.1", "198.18.0.1, made-up") == "198.18.0.1" and party("127.0.0.1", "x") == "127.0.0.1"
    assert party("64:ff9b::cb00:7105") == party("::ffff:0:cb00:7105") == party("::cb00:7105") == "203.0.113.5"
    assert party("2002:cb00:7105::1") == "203.0.113.5"  # 6to4
    assert party("64:ff9b::cb00:7106") == "203.0.113.6" != party("64:ff9b::cb00:7105")


def test_a_method_for_two_classes_is_refused_before_the_job_on_more(tmp_path):
    # KOS was offered for 5 classes, ran after the others and failed at the end inside a green "finished" box
    # (walkthrough, tenth session): the Train page leaves it out, and a launch that asks for it is refused
    from deem_core import AnnotationSet
    from deem_core.data.annotations import DataError
    from deem_studio.jobs import JobManager

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"task": np.repeat(np.arange(40), 3), "worker": np.tile(["a", "b", "c"], 40),
                          "label": rng.integers(0, 5, 120)})
    manager = JobManager(tmp_path / "runs")
    with pytest.raises(DataError, match="KOS works on two classes only; these data have 5 classes: leave it out"):
        manager.submit("train", {"methods": ["mv", "kos"]}, data=AnnotationSet.from_long(frame), owner="a" * 24)
    assert manager.store.list(all_owners=True).empty  # nothing queued, no run left behind
    binary = frame.assign(label=frame["label"] % 2)
    run = manager.submit("train", {"methods": ["kos"]}, data=AnnotationSet.from_long(binary), owner="a" * 24)
    assert manager.wait(run, timeout=60).status == "finished"


def test_method_names_are_stored_as_the_job_reads_them(tmp_path):
    # " DEEM " trained DEEM, but the queue and the step count read the raw names: CPU queue, 1 step (attack round 6)
    from deem_core import AnnotationSet
    from deem_studio.jobs import JobManager

    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"task": np.repeat(np.arange(40), 3), "worker": np.tile(["a", "b", "c"], 40),
                          "label": rng.integers(0, 3, 120)})
    manager = JobManager(tmp_path / "runs")
    run = manager.submit("train", {"methods": [" DEEM ", "MV"], "epochs": 3, "device": "cpu"},
                         data=AnnotationSet.from_long(frame), owner="b" * 24)
    assert manager.store.get(run)["config"]["methods"] == ["deem", "mv"]
    snap = manager.wait(run, timeout=60)
    assert snap.status == "finished" and snap.steps_total == 3 + 1  # 3 epochs of DEEM, then majority vote


@pytest.mark.parametrize("exc, shown", [
    (ValueError("Could not open Parquet input source '/srv/runs/ab12/cd34/annotations.parquet': Invalid"),
     "Could not open Parquet input source 'annotations.parquet': Invalid"),
    (OSError(28, "No space left on device", "/srv/runs/x/metrics.json"),
     "OSError: [Errno 28] No space left on device: 'metrics.json'"),
    (ValueError("learning rates must be numbers, got 1/2"), "learning rates must be numbers, got 1/2"),
    (OSError("Could not open Parquet input source '/tmp/my run store/runs/ab/annotations.parquet': Invalid"),
     "OSError: Could not open Parquet input source 'annotations.parquet': Invalid"),  # (kept "my run store")
])
def test_a_librarys_message_never_shows_the_servers_folders(exc, shown):
    # pyarrow's message named the run store's path to a link's visitor (attack round 11)
    from deem_studio.jobs import readable_error  # noqa: PLC0415

    assert readable_error(exc) == shown


def test_a_training_with_a_method_past_its_own_size_is_refused_before_it_is_queued():
    # M-MSR on hundreds of workers went past 3 GB inside the shared server (attack round 12)
    import numpy as np  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415

    from deem_core import AnnotationSet  # noqa: PLC0415
    from deem_core.data.annotations import DataError  # noqa: PLC0415
    from deem_core.methods.baselines import MAX_MMSR_WORKERS  # noqa: PLC0415
    from deem_studio.jobs import check_methods_fit  # noqa: PLC0415

    n = MAX_MMSR_WORKERS + 1
    data = AnnotationSet.from_long(pd.DataFrame({"task": np.repeat([0, 1], n), "worker": np.tile(np.arange(n), 2),
                                                 "label": np.tile([0, 1], n)}))
    check_methods_fit(data, ["deem", "mv", "ds"])
    with pytest.raises(DataError, match=r"M-MSR compares every pair of workers"):
        check_methods_fit(data, ["deem", "mv", "mmsr"])


def test_a_page_of_another_origin_is_no_page_of_this_site(monkeypatch):
    """Attack round 29: Streamlit lets any port of localhost open its websocket; a page on another port did so with
    the visitor's cookies, read the owner key from the page it was sent and drove the app as the visitor."""
    same = owners.same_origin
    monkeypatch.delenv("DEEM_ALLOWED_ORIGINS", raising=False)
    assert same("http://localhost:8580", "localhost:8580") and same("https://deem.example.org", "deem.example.org",
                                                                     "https")
    assert same("http://LOCALHOST:8580/", "localhost:8580", "ws") and same("http://[::1]:8501", "[::1]:8501")
    assert not same("http://localhost:8581", "localhost:8580") and not same("http://127.0.0.1:8580", "localhost:8580")
    assert not same("https://deem.example.org:8443", "deem.example.org", "https") and not same(None, "x:1")
    assert not same("null", "localhost:8580")
    # behind a proxy that rewrites Host, the public origin is named
    assert not same("https://deem.example.org", "127.0.0.1:8580")
    monkeypatch.setenv("DEEM_ALLOWED_ORIGINS", "https://deem.example.org, https://other.example.org")
    assert same("https://deem.example.org", "127.0.0.1:8580")
