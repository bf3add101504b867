"""Writing an output only ever replaces a regular file (found attacking main: the atomic write renamed its temporary
file over whatever the path was, so ``deem aggregate ... -o /dev/null`` run as root replaced the machine's
/dev/null with a regular file; /dev/full and /dev/stdout likewise). These tests use nodes in a temporary folder
only, never the real /dev."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from deem_core.cli import main
from deem_core.data.export import atomic_write_bytes


def _labels_cli(tmp_path, output) -> int:
    data = tmp_path / "a.csv"
    data.write_text("task,worker,label\nt1,w1,a\nt1,w2,a\nt2,w1,b\n")
    return main(["aggregate", str(data), "--method", "mv", "-o", str(output), "--output-format", "csv",
                 "--no-progress"])


def test_a_pipe_is_written_in_place(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    assert _labels_cli(tmp_path, fifo) == 0
    reader.join(30)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # main: a regular file now, the reader left waiting
    assert got and got[0].startswith(b"task,label")


def test_a_pipe_nothing_reads_is_an_error_not_a_wait_forever(tmp_path, monkeypatch, capsys):
    # opened as usual, the write waited in open() for a reader that never came, with no word (attack round 20)
    import time

    from deem_core.data import export

    monkeypatch.setattr(export, "PIPE_READER_WAIT", 0.3)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    assert _labels_cli(tmp_path, fifo) == 2
    assert time.monotonic() - started < 20
    assert f"error: could not write {fifo}: it is a pipe that nothing read within 0.3 s" in capsys.readouterr().err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="making a device node needs root")
def test_a_device_is_written_in_place_never_replaced(tmp_path):
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null of our own
    assert _labels_cli(tmp_path, null) == 0
    assert stat.S_ISCHR(os.lstat(null).st_mode)  # main: a regular file holding the labels


def test_a_link_is_replaced_never_followed(tmp_path):
    """A link planted where an output goes (a shared folder) cannot send the bytes to its target, not even to a
    device or a pipe."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for target in (tmp_path / "real.csv", fifo):
        if target.suffix:
            target.write_text("old")
        link = tmp_path / f"link_to_{target.name}"
        link.symlink_to(target)
        atomic_write_bytes(link, b"new")
        assert not link.is_symlink() and link.read_bytes() == b"new"
    assert (tmp_path / "real.csv").read_text() == "old" and stat.S_ISFIFO(os.lstat(fifo).st_mode)
