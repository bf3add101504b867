"""The server's DEEM_* limits: one parser; a bad value never lifts a limit, and deem-studio refuses to start with
one (attack round 11: nan, inf or -1 gave jobs no time limit, 'abc' broke every page, '1G' fell back silently)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from deem_studio import capacity, owners
from deem_studio.jobs import DEFAULT_MAX_JOB_SECONDS, DEFAULT_MAX_TABLE_BYTES, job_time_limit, max_table_bytes
from deem_studio.serve import AGENT_API_REFUSED, agent_api_asked, main
from deem_studio.settings import SETTINGS, check_environment, env_value


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "-1", "abc", "1.5e3x", "٣", " ", "0x10"])
def test_a_bad_time_limit_keeps_the_default(monkeypatch, raw):
    monkeypatch.setenv("DEEM_MAX_JOB_SECONDS", raw)
    assert job_time_limit() == DEFAULT_MAX_JOB_SECONDS  # (nan, inf and -1 were "no limit")


@pytest.mark.parametrize("raw, limit", [("0", None), ("90", 90.0), ("1.5", 1.5), (" 30 ", 30.0)])
def test_a_good_time_limit_is_taken_and_0_means_none(monkeypatch, raw, limit):
    monkeypatch.setenv("DEEM_MAX_JOB_SECONDS", raw)
    assert job_time_limit() == limit


@pytest.mark.parametrize("name, read, default", [
    ("DEEM_MAX_CONNECTIONS", lambda: int(env_value("DEEM_MAX_CONNECTIONS", 500)), 500),
    ("DEEM_MAX_JOBS_PER_CLIENT", owners.max_active_per_client, owners.DEFAULT_MAX_ACTIVE_PER_CLIENT),
    ("DEEM_MAX_JOBS_PER_WORKSPACE", owners.max_active_per_workspace, owners.DEFAULT_MAX_ACTIVE_PER_WORKSPACE),
    ("DEEM_MAX_RUNS_PER_WORKSPACE", owners.max_runs_per_workspace, owners.DEFAULT_MAX_RUNS_PER_WORKSPACE),
    ("DEEM_MAX_READ_SECONDS_PER_CLIENT", capacity._read_budget, capacity.DEFAULT_READ_SECONDS_PER_CLIENT),
])
def test_a_negative_count_is_not_no_limit(monkeypatch, name, read, default):
    monkeypatch.setenv(name, "-1")  # (each was used as "0 < cap": no limit)
    assert read() == default
    monkeypatch.setenv(name, "nan")
    assert read() == default


def test_sizes_take_units_everywhere(monkeypatch):
    monkeypatch.setenv("DEEM_MAX_TABLE_BYTES", "1G")  # (fell back to the default without a word)
    assert max_table_bytes() == 1 << 30
    monkeypatch.setenv("DEEM_MAX_TABLE_BYTES", "0")
    assert max_table_bytes() == DEFAULT_MAX_TABLE_BYTES  # a table of 0 bytes is no limit the server can use
    monkeypatch.setenv("DEEM_MAX_WORKSPACE_BYTES", "1.5")
    assert owners.max_workspace_bytes() == 1  # bytes, as written: (no unit, 1.5 bytes)
    monkeypatch.setenv("DEEM_MAX_WORKSPACE_BYTES", "1.5G")
    assert owners.max_workspace_bytes() == int(1.5 * (1 << 30))


def test_a_bad_cpu_job_count_still_lets_jobs_run(monkeypatch, tmp_path):
    from deem_studio.jobs import JobManager

    monkeypatch.setenv("DEEM_MAX_CPU_JOBS", "abc")  # ("could not restore the session: invalid literal for int()")
    manager = JobManager(tmp_path / "runs")  # (it raised ValueError here)
    try:
        assert manager._queues["cpu"].capacity == 1
    finally:
        manager.shutdown()


def test_deem_studio_refuses_to_start_with_a_bad_limit(monkeypatch, capsys):
    monkeypatch.setenv("DEEM_MAX_JOB_SECONDS", "nan")
    monkeypatch.setenv("DEEM_MAX_CPU_JOBS", "1.5")
    monkeypatch.setenv("DEEM_MAX_TABLE_BYTES", "1G")  # good
    assert main(["--server.port", "1"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["error: DEEM_MAX_JOB_SECONDS='nan': seconds a job may run (0: no limit) must be a number of "
                   "seconds",
                   "error: DEEM_MAX_CPU_JOBS='1.5': jobs training on the CPU at once must be a whole number"]


def test_deem_studio_help_is_its_own_and_a_relative_runs_folder_is_the_one_it_was_started_in(monkeypatch, capsys,
                                                                                              tmp_path):
    """Walkthrough 79: ``deem-studio --help`` printed Streamlit's help ("Usage: streamlit run ...") with no word of
    the dashboard, its runs folder or its settings; and a relative DEEM_RUNS_DIR was taken from the project's folder
    (deem-studio changes to it), not the one it was started in."""
    import streamlit.web.cli as streamlit_cli

    from deem_studio import serve

    monkeypatch.delenv("DEEM_RUNS_DIR", raising=False)
    assert main(["--help"]) == 0
    said = capsys.readouterr().out
    assert said.startswith("usage: deem-studio [STREAMLIT OPTIONS]") and "streamlit run --help" in said
    assert f"Runs (settings, data, curves, labels, models) are kept in {serve.ROOT / 'runs'} (set DEEM_RUNS_DIR" in said
    assert all(f"  {name} " in said for name in SETTINGS)
    started = tmp_path / "here"
    started.mkdir()
    monkeypatch.chdir(started)
    monkeypatch.setenv("DEEM_RUNS_DIR", "my_runs")
    assert main(["-h"]) == 0 and f"kept in {started / 'my_runs'} (DEEM_RUNS_DIR" in capsys.readouterr().out
    served = []
    monkeypatch.setattr(serve, "install_before_serving", lambda: None)
    monkeypatch.setattr(streamlit_cli, "main", lambda prog_name: served.append((os.getcwd(), list(sys.argv))))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    assert main(["--server.port", "8999"]) == 0
    assert served == [(str(serve.ROOT), ["streamlit", "run", str(serve.ROOT / "app.py"), "--server.port", "8999"])]
    assert os.environ["DEEM_RUNS_DIR"] == str(started / "my_runs")


def test_every_limit_the_code_reads_is_in_the_table():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    read = set()
    for path in list((root / "deem_studio").glob("*.py")) + list((root / "deem_core").rglob("*.py")):
        read |= set(re.findall(r"\"(DEEM_MAX_[A-Z_]+|DEEM_MIN_[A-Z_]+|DEEM_PROBE_[A-Z_]+|DEEM_HISTORY_[A-Z_]+)\"",
                               path.read_text(encoding="utf-8")))
    assert read - set(SETTINGS) == set()
    assert check_environment({name: "1" for name in SETTINGS}) == []
    assert env_value("DEEM_MAX_COLUMNS", 7, {"DEEM_MAX_COLUMNS": "2K"}) == 2048


@pytest.mark.parametrize("name, raw", [
    ("DEEM_MAX_CPU_JOBS", "9" * 400),  # (OverflowError: a traceback at the start, every page at run time)
    ("DEEM_MAX_JOBS_PER_WORKSPACE", "9" * 5000),  # (int()'s digit cap: ValueError)
    ("DEEM_MAX_TABLE_BYTES", "9" * 400 + "G"),
    ("DEEM_MAX_WORKSPACE_BYTES", "0.5"),  # (half a byte was 0: no limit; attack round 12)
    ("DEEM_MAX_JOB_SECONDS", "0." + "0" * 400 + "1"),  # (underflowed to 0: no time limit)
    ("DEEM_MAX_READ_SECONDS", "-0.0"), ("DEEM_MAX_READ_SECONDS", "1e-400"), ("DEEM_MAX_READ_SECONDS", "1_0"),
])
def test_values_that_overflow_or_come_to_zero_are_refused_alike_at_the_start_and_at_run_time(monkeypatch, name, raw):
    from deem_core.data.formats.limits import Limits

    assert len(check_environment({name: raw})) == 1
    monkeypatch.setenv(name, raw)
    assert env_value(name, 7) == 7
    if name == "DEEM_MAX_READ_SECONDS":  # the engine's own read of it keeps its default too (it read "no limit")
        assert Limits.from_env().max_seconds == Limits().max_seconds


@pytest.mark.parametrize("args, environ, asked", [
    (["--server.enableAgentApi", "true"], {}, True),
    (["--server.enableAgentApi=True", "--server.port", "1"], {}, True),
    (["--server.enableAgentApi"], {}, True),
    (["--server.enableAgentApi", "false"], {}, False),
    ([], {"STREAMLIT_SERVER_ENABLE_AGENT_API": "true"}, True),
    (["--server.enableAgentApi=false"], {"STREAMLIT_SERVER_ENABLE_AGENT_API": "true"}, False),
    (["--server.port", "1"], {}, False),
])
def test_the_agent_api_is_found_on_the_command_line_and_in_the_environment(args, environ, asked):
    assert agent_api_asked(args, environ) is asked


def test_deem_studio_refuses_to_start_with_streamlits_agent_api(runs_dir, capsys):
    """Its sessions open over HTTP, outside the per-address connection limit (attack round 16): refused at the start,
    and by the app when it was turned on another way."""
    assert main(["--server.enableAgentApi", "true", "--server.port", "1"]) == 2
    assert capsys.readouterr().err.splitlines() == [f"error: {AGENT_API_REFUSED}"]
    from streamlit import config
    from streamlit.testing.v1 import AppTest

    before = config.get_option("server.enableAgentApi")
    config.set_option("server.enableAgentApi", True)
    try:
        at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=60).run()
    finally:
        config.set_option("server.enableAgentApi", before)
    assert [e.value for e in at.error] == [AGENT_API_REFUSED + "."]
    assert not at.exception and not at.get("file_uploader")


def test_deem_studio_help_into_a_closed_pipe_ends_without_a_traceback():
    """Walkthrough 117: ``deem-studio --help | head -30`` ended in a BrokenPipeError traceback."""
    import subprocess  # noqa: PLC0415

    code = ("import os, sys; r, w = os.pipe(); os.close(r); os.dup2(w, 1); "
            "from deem_studio.serve import main; sys.exit(main(['--help']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
