"""Page response times of `opensem ui` under a full dashboard: 50 releases, 10,000 feedback records.

Builds the tiny demo once, publishes its release under 49 more tags (copies of the real release's
files, each with its own index entry and report), appends 10,000 feedback records and 10,000
recorded answers through opensem's own writers, queues 100 finished jobs, then starts `opensem ui`
and asks each page 100 times (after 5 warm-up requests), one request at a time, as a browser
would. Prints p50 and p95 per page (goal: p95 < 200 ms).

    .venv/bin/python bench/ui_pages.py [--reuse]   (--reuse: the project the last run made)
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / ".work" / "ui"
PAGES = [
    "/",
    "/dashboard",
    "/experts/tiny-demo",
    "/experts/tiny-demo/chat",
    "/experts/tiny-demo/data",
    "/experts/tiny-demo/export",
    "/experts/tiny-demo/delete",
    "/jobs",
    "/experts/new",
    "/jobs/1",
]
RELEASES, FEEDBACK, ANSWERS, JOBS = 50, 10_000, 10_000, 100


def build_project() -> Path:
    project = WORK / "project"
    shutil.rmtree(WORK, ignore_errors=True)
    (project / "manifests").mkdir(parents=True)
    shutil.copy(ROOT / "manifests" / "tiny-demo.yaml", project / "manifests")
    shutil.copytree(ROOT / "data" / "tiny-demo", project / "data" / "tiny-demo")
    subprocess.run(
        [sys.executable, "-m", "opensem", "build", "manifests/tiny-demo.yaml", "--json"],
        cwd=project,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return project


def more_releases(project: Path) -> None:
    """RELEASES - 1 more tags: the real release's files, each report with its own figures."""
    expert = project / "build" / "registry" / "tiny-demo"
    index = json.loads((expert / "index.json").read_text())
    (first,) = index["tags"]
    for number in range(1, RELEASES):
        tag = f"v{number + 1}-bench"
        shutil.copytree(expert / first, expert / tag)
        report = json.loads((expert / tag / "report.json").read_text())
        for metric in report["metrics"].values():
            metric["tuned"] = metric["tuned"] * (1 + number / 100)
        (expert / tag / "report.json").write_text(json.dumps(report))
        index["tags"][tag] = index["tags"][first]
    (expert / "index.json").write_text(json.dumps(index, indent=2))


def logs(project: Path) -> None:
    from opensem.core.files import append_lines
    from opensem.feedback.records import FeedbackRecord, append_feedback
    from opensem.knowledge.answers import AnswerRecord, answers_file, record_line

    data = project / "data" / "tiny-demo"
    records = [
        FeedbackRecord(prompt=f"question {n}", answer="an answer", rating=1 + n % 5, lot="a" * 64)
        for n in range(FEEDBACK)
    ]
    append_feedback(data / "feedback", records)
    answers = [AnswerRecord(question=f"q {n}", answer="a", lot="b" * 64) for n in range(ANSWERS)]
    (data / "answers").mkdir(parents=True, exist_ok=True)
    append_lines(answers_file(data / "answers"), [record_line(a) for a in answers])


def jobs(project: Path) -> None:
    from sqlalchemy import text

    from opensem.ui.jobs import JobQueue

    queue = JobQueue(project)
    for _ in range(JOBS):
        job = queue.submit("manifests/tiny-demo.yaml")
        with queue.engine.begin() as db:
            db.execute(
                text(
                    "UPDATE jobs SET state = 'done', started = created, "
                    "finished = created + 40, exit_code = 0 WHERE id = :id"
                ),
                {"id": job.id},
            )


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from tests.ui.conftest import start_ui

    started = time.monotonic()
    project = WORK / "project"
    if "--reuse" not in sys.argv or not (project / "build" / "ui" / "interface.sqlite").is_file():
        project = build_project()
        more_releases(project)
        logs(project)
        jobs(project)
    print(
        f"project ready in {time.monotonic() - started:.0f} s: {RELEASES} releases, "
        f"{FEEDBACK:,} feedback records, {ANSWERS:,} answers, {JOBS} jobs"
    )
    ui = start_ui(project)
    try:
        client = requests.Session()
        print(f"{'page':28} {'p50 ms':>8} {'p95 ms':>8}  (goal p95 < 200 ms)")
        for page in PAGES:
            for _ in range(5):
                client.get(ui.url + page).raise_for_status()
            spent = []
            for _ in range(100):
                begun = time.perf_counter()
                client.get(ui.url + page).raise_for_status()
                spent.append((time.perf_counter() - begun) * 1000)
            spent.sort()
            print(f"{page:28} {statistics.median(spent):8.1f} {spent[94]:8.1f}")
    finally:
        ui.stop()


if __name__ == "__main__":
    main()
