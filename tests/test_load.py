"""Load (issue 5 and issue 6, marked slow): many browser sessions on one server, and a 1,000,000-row upload.

Both start ``streamlit run app.py`` on 127.0.0.1 only (a free port, a temporary runs directory) and drive
Debian's Chromium with Playwright (see ``test_browser.py`` for the helpers). Sessions are Playwright browser
contexts: separate cookies and storage, so separate Streamlit sessions, like separate users.

* ``test_many_sessions_upload_and_train``: N sessions (``DEEM_LOAD_SESSIONS``, default 8, at most 16) each
  upload their own small CSV and launch a short training at about the same time. With the default one CPU
  job at a time the jobs queue; the test checks that every run finished, that no page showed an error, and
  that no run was lost (the SQLite index holds exactly the launched runs, each finished, each owned by the
  workspace of the session that launched it). It prints: sessions, uploads OK, jobs OK, lost runs, max queue
  length, total time.
* ``test_million_row_upload_and_summary``: a 1,000,000-row long CSV uploaded and summarised in the browser;
  prints the times.

Every wait is bounded; the whole load test is bounded by ``DEADLINE`` seconds.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from test_browser import (VIEWPORT, LiveServer, button, chromium, chromium_missing, explain_failure, heading,
                          main_text, measured, metric, nav, no_traceback, until, upload, workspace_shown)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
DEADLINE = 420.0  # seconds for the many-sessions test, start to end
TASKS_PER_SESSION = 150
EPOCHS = 40


def sessions_wanted() -> int:
    import os  # noqa: PLC0415

    return max(2, min(16, int(os.environ.get("DEEM_LOAD_SESSIONS", "8") or 8)))


@pytest.fixture(scope="module", autouse=True)
def _need_chromium():
    reason = chromium_missing()
    if reason:
        pytest.skip(reason)


def session_files(directory: Path, n: int) -> list[Path]:
    """One small long-format CSV per session, each a different slice of condind (distinct data sets)."""
    df = pd.read_csv(ROOT / "sample_data" / "condind.csv")
    paths = []
    for i in range(n):
        part = df[(df["task"] >= i * TASKS_PER_SESSION) & (df["task"] < (i + 1) * TASKS_PER_SESSION)]
        path = directory / f"user{i:02d}.csv"
        part.to_csv(path, index=False)
        paths.append(path)
    return paths


def queued_now(runs_dir: Path) -> int:
    from deem_studio.runs import RunStore  # noqa: PLC0415

    try:
        runs = RunStore(runs_dir).list(all_owners=True)
    except Exception:  # noqa: BLE001 - the server may be writing; next poll
        return 0
    return int((runs["status"] == "queued").sum())


def test_many_sessions_upload_and_train(tmp_path):
    from deem_studio.runs import RunStore  # noqa: PLC0415

    n = sessions_wanted()
    files = session_files(tmp_path, n)
    runs_dir = tmp_path / "runs"
    started = time.perf_counter()
    deadline = started + DEADLINE

    def left(cap: float) -> float:
        remaining = deadline - time.perf_counter()
        assert remaining > 0, f"the load test ran past its {DEADLINE:.0f} s bound"
        return min(cap, remaining)

    with LiveServer(runs_dir) as server, chromium() as browser:
        contexts = [browser.new_context(viewport=VIEWPORT) for _ in range(n)]
        pages = [c.new_page() for c in contexts]
        for page in pages:
            page.set_default_timeout(60_000)
        with explain_failure(pages[0], server):
            # every session opens the dashboard
            for page in pages:
                page.goto(server.url, timeout=90_000, wait_until="commit")
            for page in pages:
                heading(page, "Data", left(120))
            # every session uploads its file (the uploads run concurrently in the browser), then loads it
            t_upload = time.perf_counter()
            for page, path in zip(pages, files):
                upload(page, path)
            for page in pages:
                until(lambda p=page: "read as long layout" in main_text(p), left(120), "the preview of an upload")
                button(page, "Load these files").click()
            uploads_ok = 0
            for page in pages:
                until(lambda p=page: metric(p, "Tasks") is not None, left(180), "a summary")
                uploads_ok += metric(page, "Tasks") == str(TASKS_PER_SESSION)
            upload_seconds = time.perf_counter() - t_upload
            workspaces = [workspace_shown(p) for p in pages]
            assert len(set(workspaces)) == n  # one workspace per session

            # every session launches a short training (DEEM only) at about the same time
            for page in pages:
                nav(page, "Train", left(60))
            for page in pages:
                page.get_by_role("combobox", name="Methods", exact=True).press("Backspace")
                page.get_by_role("combobox", name="Methods", exact=True).press("Backspace")
                box = page.get_by_label("Epochs", exact=True)
                box.fill(str(EPOCHS))
                box.press("Enter")
            for page in pages:
                until(lambda p=page: p.get_by_label("Epochs", exact=True).input_value() == str(EPOCHS), left(30),
                      "the epochs set")
            max_queue = 0
            t_jobs = time.perf_counter()
            for page in pages:
                button(page, "Train").click()
                max_queue = max(max_queue, queued_now(runs_dir))
            run_ids: list[str | None] = [None] * n

            store = RunStore(runs_dir)
            clicked_at = [time.perf_counter()] * n
            retried = 0

            def launched() -> bool:
                # the run id from the page (Playwright's unfocused windows may apply address changes late)
                nonlocal retried
                for i, page in enumerate(pages):
                    if run_ids[i] is None:
                        found = re.search(r"Run ([0-9a-f]{16})", main_text(page))
                        run_ids[i] = found.group(1) if found else None
                    if (run_ids[i] is None and time.perf_counter() - clicked_at[i] > 20
                            and not len(store.list(owner=workspaces[i]))):
                        # the click was lost (no run in the index for this session): click again, as a user would
                        button(page, "Train").click()
                        clicked_at[i] = time.perf_counter()
                        retried += 1
                return all(run_ids)

            try:
                until(launched, left(120), "every session's run on its Train page")
            except AssertionError:
                for i, page in enumerate(pages):
                    if run_ids[i] is None:
                        print(f"--- session {i} ({page.url}):\n{main_text(page)[:400]}")
                raise
            saw_queue_message = False

            def all_done() -> bool:
                nonlocal max_queue, saw_queue_message
                max_queue = max(max_queue, queued_now(runs_dir))
                done = 0
                for page in pages:
                    text = main_text(page)
                    saw_queue_message |= " ahead on the " in text
                    done += "labels from DEEM" in text
                return done == n

            until(all_done, left(DEADLINE), "every session's training to finish", every=1.0)
            job_seconds = time.perf_counter() - t_jobs
            for page, run_id in zip(pages, run_ids):
                no_traceback(page)
                page.bring_to_front()  # the address a user sees (and bookmarks) names the run
                until(lambda p=page, r=run_id: f"run={r}" in p.url, left(30), "the run id in the address")

        # zero lost runs: the index holds exactly the launched runs, each finished and owned by its session
        index = RunStore(runs_dir).list(all_owners=True).set_index("run_id")
        jobs_ok = sum(1 for rid in run_ids if rid in index.index and index.loc[rid, "status"] == "finished")
        lost = sum(1 for rid in run_ids if rid not in index.index)
        owners_ok = all(index.loc[rid, "owner"] == ws for rid, ws in zip(run_ids, workspaces) if rid in index.index)
        total = time.perf_counter() - started
        for context in contexts:
            context.close()

    table = pd.DataFrame([{"sessions": n, "uploads OK": uploads_ok, "jobs OK": jobs_ok, "lost runs": lost,
                           "max queue length": max_queue, "Train clicks repeated": retried,
                           "total time (s)": round(total, 1)}])
    print("\nLOAD TEST\n" + table.to_string(index=False))
    measured(f"{n} uploads + summaries, concurrent", f"{upload_seconds:.1f}", "s")
    measured(f"{n} trainings ({EPOCHS} epochs, {TASKS_PER_SESSION} tasks), queued on one CPU slot",
             f"{job_seconds:.1f}", "s")
    assert uploads_ok == n and jobs_ok == n and lost == 0 and owners_ok
    assert len(index) == n and set(index.index) == set(run_ids)  # no extra, no missing run
    assert max_queue >= 1 or saw_queue_message, "with one CPU slot some jobs must have waited"


def million_rows(path: Path, n_tasks: int = 100_000, n_workers: int = 10, seed: int = 0) -> Path:
    """A long CSV of 1,000,000 answers: 100,000 tasks x 10 workers, 3 classes, workers 60-90 % right."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, n_tasks)
    skill = rng.uniform(0.6, 0.9, n_workers)
    right = rng.random((n_tasks, n_workers)) < skill
    labels = np.where(right, truth[:, None], (truth[:, None] + rng.integers(1, 3, (n_tasks, n_workers))) % 3)
    frame = pd.DataFrame({"task": np.repeat(np.arange(n_tasks), n_workers),
                          "worker": np.tile([f"w{j:02d}" for j in range(n_workers)], n_tasks),
                          "label": labels.ravel()})
    frame.to_csv(path, index=False)
    return path


def test_million_row_upload_and_summary(tmp_path):
    path = million_rows(tmp_path / "million.csv")
    size_mb = path.stat().st_size / 1e6
    with LiveServer(tmp_path / "runs") as server, chromium() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(120_000)
        with explain_failure(page, server):
            page.goto(server.url, timeout=90_000)
            heading(page, "Data", 120)
            started = time.perf_counter()
            upload(page, path)
            until(lambda: "read as long layout" in main_text(page), 300, "the preview of the 1,000,000-row file")
            uploaded = time.perf_counter() - started
            button(page, "Load these files").click()
            until(lambda: metric(page, "Tasks") == "100,000", 300, "the summary of 1,000,000 answers")
            total = time.perf_counter() - started
            assert metric(page, "Answers") == "1,000,000" and metric(page, "Workers") == "10"
            text = main_text(page)
            read = re.search(r"Loaded 1,000,000 answers from 1 file in ([0-9.]+) s", text)
            summary = re.search(r"summary computed in ([0-9.]+) s", text)
            no_traceback(page)
    measured("1,000,000-row CSV size", f"{size_mb:.1f}", "MB")
    measured("upload to preview shown", f"{uploaded:.1f}", "s")
    measured("reading the file on the server", read.group(1) if read else "n/a", "s")
    measured("summary statistics on the server", summary.group(1) if summary else "n/a", "s")
    measured("upload -> summary shown in the browser (total)", f"{total:.1f}", "s")
    assert total < 300
