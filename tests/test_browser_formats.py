"""The platforms' exports in a real browser (Playwright + Debian's Chromium; ``pytest -m browser``): upload
each format on the Data page, see the "read as" line and the mapping controls, load; for the Label Studio
export, train and download the Label Studio predictions, then check the file goes back (read as one
worker's answers, the same labels). Helpers are those of ``test_browser.py``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from test_browser import (VIEWPORT, LiveServer, button, chromium, chromium_missing, explain_failure, heading,
                          main_text, metric, nav, no_traceback, shot, until, upload)

sys.path.insert(0, str(Path(__file__).resolve().parent / "platform_files"))

import make_fixtures  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.skipif(chromium_missing() is not None, reason=str(chromium_missing()))]

#: fixture -> (what the "read as" line says, the mapping control that must be offered, tasks once loaded)
CASES = {
    "mturk_sentiment": ("read as Amazon Mechanical Turk batch results: tasks from columns 'Input.text' + "
                        "'Input.image_url' together",
                        "answer field (the label)", "12"),
    "toloka": ("read as Toloka results: tasks from columns 'INPUT:text' + 'INPUT:lang' together", "answer field (the label)", "12"),
    "label_studio_min": ("read as Label Studio JSON-MIN export: tasks from column 'id', workers from column "
                         "'annotator'", "answer field (the label)",
                         "12"),
    "label_studio_csv": ("read as Label Studio CSV export: tasks from column 'id', workers from column "
                         "'annotator'", "answer field (the label)",
                         "12"),
    "parquet_wide": ("read as wide layout (task + one column per worker) from Parquet", "task column", "12"),
    "label_studio": ("read as Label Studio JSON export: tasks from 'id', workers from 'completed_by' (and each "
                     "prediction's 'model_version')",
                     "labelling control (from_name)", "12"),
}


def test_each_export_uploads_reads_and_label_studio_goes_back(tmp_path):
    from deem_core.data.formats import read_dataset  # noqa: PLC0415

    fixtures = {f.name: f for f in make_fixtures.fixtures()}
    with LiveServer(tmp_path / "runs") as server, chromium() as browser:
        context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(30_000)
        with explain_failure(page, server):
            for name, (said, control, tasks) in CASES.items():
                paths, _ = make_fixtures.write(fixtures[name], tmp_path / name)
                page.goto(server.url, timeout=60_000)
                heading(page, "Data", 90)
                upload(page, paths if len(paths) > 1 else paths[0])
                until(lambda: said in main_text(page), 60, f"the 'read as' line of {name}")
                mapping = page.get_by_text("Mapping: which columns or fields are the task, worker and label")
                mapping.first.click()
                until(lambda: page.get_by_label(control, exact=True).count() > 0, 20, f"the control {control!r}")
                if name == "label_studio":
                    assert page.get_by_text("Read the model predictions as workers").count() > 0
                    shot(page, "20_data_label_studio_read_as")
                button(page, "Load these files").click()
                until(lambda: metric(page, "Tasks") == tasks, 90, f"the summary of {name}")
                no_traceback(page)
            # the Label Studio export is loaded: train quickly and download the predictions
            nav(page, "Train")
            box = page.get_by_label("Epochs", exact=True)
            box.fill("5")
            box.press("Enter")
            button(page, "Train").click()
            until(lambda: "finished in" in main_text(page).lower() and "labels from" in main_text(page), 300, "the end of training")
            nav(page, "Results")
            until(lambda: page.get_by_role("button", name="Label Studio predictions").count() > 0, 60,
                  "the Label Studio download")
            with page.expect_download(timeout=60_000) as caught:
                button(page, "Label Studio predictions").click()
            saved = tmp_path / "label_studio_predictions.json"
            caught.value.save_as(saved)
            shot(page, "21_results_label_studio_download")
            no_traceback(page)
    tasks = json.loads(saved.read_text(encoding="utf-8"))
    assert [t["id"] for t in tasks] == list(range(100, 112))  # keyed by the export's task ids
    assert tasks[0]["data"]["text"] == "Café crème, très bon"
    prediction = tasks[0]["predictions"][0]
    assert prediction["model_version"].startswith("DEEM Studio DEEM")
    assert prediction["result"][0]["from_name"] == "sentiment" and 0 < prediction["score"] <= 1
    back = read_dataset(saved)  # the round trip: one worker whose answers are the predicted labels
    assert list(back.data.workers) == [prediction["model_version"]]
    labels = {t["id"]: t["predictions"][0]["result"][0]["value"]["choices"][0] for t in tasks}
    assert back.data.to_long().set_index("task")["label"].to_dict() == labels
