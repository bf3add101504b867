"""Generate platform export files and, for each, the long CSV of the answers it must read as.

Written from the platforms' public format descriptions (Amazon Mechanical Turk batch results CSV, Toloka
results TSV, Label Studio JSON / JSON-MIN / CSV exports); nothing is copied from their examples. One
seeded set of answers (unicode task texts, several workers, three sentiment classes and a topic) is written
in every format with the awkward cases each format has:

* MTurk: two ``Input.*`` columns (the task is their combination), three answer fields (a checkbox group
  ``Answer.sentiment.<option>``, a categorical ``Answer.topic``, a free-text ``Answer.comment``),
  rejected assignments, an assignment with no box ticked and one with two ticked;
* Toloka: ``INPUT:text`` + ``INPUT:lang``, ``OUTPUT:result`` + ``OUTPUT:comment``, golden tasks
  (``GOLDEN:result``), rejected, skipped and expired assignments, blank separator lines;
* Label Studio JSON: two choice controls (sentiment, topic) and a textarea, cancelled annotations,
  ground-truth annotations, predictions of two model versions, an annotation with two choices, one with no
  sentiment result;
* Label Studio JSON-MIN and CSV: one record per annotation, e-mail annotators, a multi-choice cell;
* Parquet: the long, wide and per-worker layouts.

    python tests/platform_files/make_fixtures.py OUT_DIR
"""

from __future__ import annotations

import csv
import io
import json
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

SENTIMENTS = ("positive", "negative", "neutral")
TOPICS = ("food", "travel", "other")
TEXTS = [
    "Café crème, très bon", "naïve review 🙂", "東京の夜", "a \"quoted\" word, and a comma", "Zoë's ümlaut",
    "plain text", "ça va?", "Ελληνικά", "emoji 🍜 noodles", "tab\tinside", "new\nline", "=1+1 formula-looking",
]


@dataclass
class Fixture:
    name: str  # short name of the case
    files: dict[str, bytes]  # the platform's export
    long_csv: bytes  # the answers it must read as (task, worker, label)
    options: dict = field(default_factory=dict)  # keyword arguments of read_annotations
    gold: dict | None = None  # task -> gold label the export carries
    skipped: dict[str, int] = field(default_factory=dict)  # warning fragment -> count expected
    format: str = ""  # what the detection must say


def _long(rows: list[tuple]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["task", "worker", "label"])
    for row in rows:
        writer.writerow(row)
    return out.getvalue().encode("utf-8")


def _base(seed: int = 17) -> list[dict]:
    """Tasks with their text and three or four answers each (worker index, sentiment, topic)."""
    rng = random.Random(seed)
    tasks = []
    for position, text in enumerate(TEXTS):
        truth = SENTIMENTS[position % 3]
        workers = rng.sample(range(6), 3 + position % 2)
        answers = []
        for worker in workers:
            sentiment = truth if rng.random() < 0.75 else rng.choice(SENTIMENTS)
            answers.append((worker, sentiment, TOPICS[(position + worker) % 3]))
        tasks.append({"position": position, "text": text, "lang": ["fr", "en", "ja", "en"][position % 4],
                      "truth": truth, "answers": answers})
    return tasks


# ---------------------------------------------------------------------------------------------- MTurk
MTURK_WORKERS = [f"A{n:02d}XWORKER{n * 7 % 10}" for n in range(6)]


def mturk(label: str = "sentiment") -> Fixture:
    tasks = _base()
    header = ["HITId", "HITTypeId", "Title", "Reward", "CreationTime", "MaxAssignments", "AssignmentId", "WorkerId",
              "AssignmentStatus", "AcceptTime", "SubmitTime", "WorkTimeInSeconds", "LifetimeApprovalRate",
              "Input.text", "Input.image_url", "Answer.comment", "Answer.sentiment.negative",
              "Answer.sentiment.neutral", "Answer.sentiment.positive", "Answer.topic", "Approve", "Reject"]
    rows, expected = [], []
    skipped = {"rejected assignment": 0, "several options of Answer.sentiment ticked": 0}
    assignment = 0
    for task in tasks:
        url = f"https://img.example/{task['position']}.jpg"
        key = f"{task['text']} | {url}"
        for n, (worker, sentiment, topic) in enumerate(task["answers"]):
            assignment += 1
            status = "Approved" if assignment % 5 else "Rejected"
            ticks = {s: "true" if s == sentiment else "false" for s in SENTIMENTS}
            if assignment == 7:  # no box ticked: a missing label
                ticks = {s: "false" for s in SENTIMENTS}
            if assignment == 9:  # two boxes ticked: ambiguous, skipped
                ticks = {"positive": "true", "negative": "true", "neutral": "false"}
            rows.append([f"HIT{task['position']:03d}", "TYPE1", "Rate the text", "$0.05", "Mon Jan 06 2025", "4",
                         f"ASSIGN{assignment:04d}", MTURK_WORKERS[worker], status, "Mon Jan 06 2025",
                         "Mon Jan 06 2025", "31", "100% (12/12)", task["text"], url,
                         f"free text {assignment} ✍" if n % 3 == 1 else "", ticks["negative"], ticks["neutral"],
                         ticks["positive"], topic, "", ""])
            if status == "Rejected":
                skipped["rejected assignment"] += 1
                continue
            if assignment == 9 and label == "sentiment":
                skipped["several options of Answer.sentiment ticked"] += 1
                continue
            if assignment == 7 and label == "sentiment":
                continue
            expected.append((key, MTURK_WORKERS[worker], sentiment if label == "sentiment" else topic))
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    options = {} if label == "sentiment" else {"columns": {"label": "Answer.topic"}}
    if label != "sentiment":
        skipped.pop("several options of Answer.sentiment ticked")
    return Fixture(f"mturk_{label}", {"Batch_123_batch_results.csv": out.getvalue().encode("utf-8")},
                   _long(expected), options, skipped=skipped, format="mturk")


# ---------------------------------------------------------------------------------------------- Toloka
TOLOKA_WORKERS = [f"{n:x}f3a9c{n * 31 % 97:02d}e" for n in range(1, 7)]


def toloka() -> Fixture:
    tasks = _base()
    header = ["INPUT:text", "INPUT:lang", "OUTPUT:comment", "OUTPUT:result", "GOLDEN:result", "HINT:text",
              "ASSIGNMENT:link", "ASSIGNMENT:task_id", "ASSIGNMENT:assignment_id", "ASSIGNMENT:worker_id",
              "ASSIGNMENT:status", "ASSIGNMENT:started"]
    rows, expected, gold = [], [], {}
    skipped = {"of rejected assignments": 0, "of assignments the worker skipped": 0,
               "of expired assignments": 0}
    n = 0
    for task in tasks:
        golden = task["position"] % 4 == 0
        key = f"{task['text']} | {task['lang']}"
        if golden:
            gold[key] = task["truth"]
        for worker, sentiment, _ in task["answers"]:
            n += 1
            status = {3: "REJECTED", 8: "SKIPPED", 13: "EXPIRED"}.get(n, "APPROVED" if n % 2 else "SUBMITTED")
            result = "" if status in ("SKIPPED", "EXPIRED") else sentiment
            rows.append([task["text"].replace("\t", " ").replace("\n", " "), task["lang"],
                         "ок" if n % 3 == 0 else "", result, task["truth"] if golden else "",
                         "look at the tone" if golden else "", f"https://toloka.example/task/{n}",
                         f"00001a{task['position']:04x}--{n:04d}", f"0000abc{n:05d}", TOLOKA_WORKERS[worker],
                         status, "2025-01-06T10:00:00"])
            if status != "APPROVED" and status != "SUBMITTED":
                skipped[{"REJECTED": "of rejected assignments",
                         "SKIPPED": "of assignments the worker skipped",
                         "EXPIRED": "of expired assignments"}[status]] += 1
                continue
            expected.append((key.replace("\t", " ").replace("\n", " "), TOLOKA_WORKERS[worker], sentiment))
        rows.append([""] * len(header))  # a blank separator line, as between task suites
    gold = {k.replace("\t", " ").replace("\n", " "): v for k, v in gold.items()}
    lines = ["\t".join(header)] + ["\t".join(row) for row in rows]
    return Fixture("toloka", {"assignments_from_pool_123.tsv": ("\n".join(lines) + "\n").encode("utf-8")},
                   _long(expected), gold=gold, skipped=skipped, format="toloka")


# ---------------------------------------------------------------------------------------------- Label Studio
LS_EMAILS = [f"annotator{n}@example.org" for n in range(6)]


_RESULT_IDS = iter(range(10**6))


def _choice(from_name: str, value: str | list[str], to_name: str = "text") -> dict:
    return {"id": f"r{next(_RESULT_IDS):06d}", "type": "choices", "from_name": from_name,
            "to_name": to_name, "origin": "manual", "value": {"choices": value if isinstance(value, list) else [value]}}


def label_studio(predictions: bool = True) -> Fixture:
    tasks = _base()
    export, expected, gold = [], [], {}
    skipped = {"cancelled annotation": 0, "several results": 0, "without a 'sentiment' result": 0}
    annotation_id = 0
    for task in tasks:
        task_id = 100 + task["position"]
        annotations = []
        for n, (worker, sentiment, topic) in enumerate(task["answers"]):
            annotation_id += 1
            result = [_choice("sentiment", sentiment), _choice("topic", topic)]
            if n == 0 and task["position"] % 3 == 1:
                result.append({"id": "c1", "type": "textarea", "from_name": "comment", "to_name": "text",
                               "value": {"text": ["déjà vu"]}})
            cancelled = annotation_id % 11 == 0
            ground_truth = task["position"] in (2, 5) and n == 0 and not cancelled
            if annotation_id == 5:  # two choices in a single-answer field: ambiguous
                result[0] = _choice("sentiment", ["positive", "negative"])
            if annotation_id == 6:  # no sentiment result at all
                result = [_choice("topic", topic)]
            annotations.append({"id": annotation_id, "completed_by": worker + 1, "result": result,
                                "was_cancelled": cancelled, "ground_truth": ground_truth,
                                "created_at": "2025-01-06T10:00:00Z", "updated_at": "2025-01-06T10:00:00Z",
                                "lead_time": 3.5, "task": task_id})
            if cancelled:
                skipped["cancelled annotation"] += 1
            elif annotation_id == 5:
                skipped["several results"] += 1
            elif annotation_id == 6:
                skipped["without a 'sentiment' result"] += 1
            elif ground_truth:
                gold[task_id] = sentiment
            else:
                expected.append((task_id, worker + 1, sentiment))
        preds = []
        for version, shift in (("model-a v1", 0), ("model-b 2.0", 1)):
            label = SENTIMENTS[(SENTIMENTS.index(task["truth"]) + (shift if task["position"] % 4 == 0 else 0)) % 3]
            preds.append({"model_version": version, "score": 0.5 + 0.04 * task["position"],
                          "result": [_choice("sentiment", label)]})
            if predictions:
                expected.append((task_id, version, label))
        export.append({"id": task_id, "data": {"text": task["text"], "lang": task["lang"]},
                       "annotations": annotations, "predictions": preds, "meta": {}, "project": 7,
                       "created_at": "2025-01-06T09:00:00Z"})
    options = {} if predictions else {"predictions": False}
    return Fixture("label_studio" + ("" if predictions else "_no_predictions"),
                   {"project-7-at-2025-01-06.json": json.dumps(export, ensure_ascii=False, indent=1).encode("utf-8")},
                   _long(expected), options, gold=gold, skipped=skipped, format="label_studio")


def _min_records() -> tuple[list[dict], list[tuple], dict]:
    tasks = _base()
    records, expected = [], []
    skipped = {"several values for sentiment": 0}
    annotation_id = 0
    for task in tasks:
        for worker, sentiment, topic in task["answers"]:
            annotation_id += 1
            value: object = sentiment
            if annotation_id == 4:
                value = {"choices": ["neutral", "positive"]}
                skipped["several values for sentiment"] += 1
            else:
                expected.append((500 + task["position"], LS_EMAILS[worker], sentiment))
            records.append({"id": 500 + task["position"], "text": task["text"], "sentiment": value, "topic": topic,
                            "annotator": LS_EMAILS[worker], "annotation_id": annotation_id,
                            "created_at": "2025-01-06T10:00:00Z", "updated_at": "2025-01-06T10:00:00Z",
                            "lead_time": 2.25})
    return records, expected, skipped


def label_studio_min() -> Fixture:
    records, expected, skipped = _min_records()
    return Fixture("label_studio_min", {"project-7-min.json": json.dumps(records, ensure_ascii=False).encode("utf-8")},
                   _long(expected), skipped=skipped, format="label_studio_min")


def label_studio_csv() -> Fixture:
    records, expected, skipped = _min_records()
    out = io.StringIO()
    columns = ["annotation_id", "annotator", "created_at", "id", "lead_time", "sentiment", "text", "topic",
               "updated_at"]
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for record in records:
        row = dict(record)
        if isinstance(row["sentiment"], dict):
            row["sentiment"] = json.dumps(row["sentiment"])
        writer.writerow(row)
    return Fixture("label_studio_csv", {"project-7.csv": out.getvalue().encode("utf-8")}, _long(expected),
                   skipped=skipped, format="label_studio_csv")


# ---------------------------------------------------------------------------------------------- Parquet
def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def parquet_layouts() -> list[Fixture]:
    tasks = _base()
    rows = [(task["position"] + 1, f"w{worker}", sentiment) for task in tasks
            for worker, sentiment, _ in task["answers"]]
    long = pd.DataFrame(rows, columns=["item_id", "annotator", "answer"])
    long["extra"] = "ignored"
    wide = long.pivot(index="item_id", columns="annotator", values="answer").reset_index()
    wide.columns.name = None
    wide = wide.astype(object).where(wide.notna(), None)
    per = {f"{w}.parquet": _parquet(g[["item_id", "answer"]].rename(columns={"answer": "label"}))
           for w, g in long.groupby("annotator")}
    expected = _long(rows)
    return [Fixture("parquet_long", {"answers.parquet": _parquet(long)}, expected, format="long"),
            Fixture("parquet_wide", {"wide.parquet": _parquet(wide)}, expected, format="wide"),
            Fixture("parquet_per_worker", per, expected, format="per_annotator")]


def fixtures() -> list[Fixture]:
    return [mturk(), mturk("topic"), toloka(), label_studio(), label_studio(predictions=False), label_studio_min(),
            label_studio_csv(), *parquet_layouts()]


def write(fixture: Fixture, directory: Path) -> tuple[list[Path], Path]:
    """Write one fixture's export files and its long CSV; returns (export paths, long CSV path)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, content in fixture.files.items():
        path = directory / name
        path.write_bytes(content)
        paths.append(path)
    long_path = directory.parent / f"{fixture.name}.expected.csv"
    long_path.write_bytes(fixture.long_csv)
    return paths, long_path


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_fixtures.py OUT_DIR")
    for item in fixtures():
        written, long_file = write(item, Path(sys.argv[1]) / item.name)
        print(f"{item.name}: {', '.join(str(p) for p in written)} (answers: {long_file})")
