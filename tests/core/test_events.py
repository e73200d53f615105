"""The core reports typed events and never prints: a reporter decides what a person (or a program) sees."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from opensem.core.events import EVENTS, BuildEvent, CollectingReporter, JsonReporter
from tests.core.fake import FakeRunner, chain


def build_with(graph, reporter) -> None:  # type: ignore[no-untyped-def]
    from opensem.core.digests import DigestCache
    from opensem.core.doit_run import run_doit
    from opensem.core.engine import BuildSession

    session = BuildSession(
        graph,
        DigestCache(graph.project_root / "build" / "cache" / "digests.json"),
        FakeRunner(),
        reporter=reporter,
    )
    assert run_doit([session], [graph.job_id], 1) == 0 and session.error is None
    session.write_lock()


def test_a_build_is_a_stream_of_events_and_prints_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    graph = chain(tmp_path)
    first = CollectingReporter()
    build_with(graph, first)
    assert [(e.event, e.stage) for e in first.events] == [
        ("started", "a"),
        ("built", "a"),
        ("started", "b"),
        ("built", "b"),
        ("started", "c"),
        ("built", "c"),
    ]
    assert all(e.job == "fake" and e.lot and len(e.lot) == 64 for e in first.events)
    assert (
        first.events[0].detail == "not built yet (no entry in the lock)"
        and first.events[1].seconds is not None
    )
    again = CollectingReporter()
    build_with(graph, again)
    assert [(e.event, e.stage) for e in again.events] == [
        ("up-to-date", "a"),
        ("up-to-date", "b"),
        ("up-to-date", "c"),
    ]
    captured = capsys.readouterr()
    assert "fake" not in captured.out + captured.err  # no line of the build reached the terminal


def test_json_lines_carry_stable_names_and_throttled_progress() -> None:
    stream = io.StringIO()
    reporter = JsonReporter(stream, interval_s=3600)
    reporter.report(BuildEvent("built", "demo", "train", "a" * 64, "3 steps", 1.5))
    bar = reporter.progress("demo", "train", "training", 100)
    for _ in range(100):
        bar.advance()
    bar.close()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert (
        lines[0]["event"] == "built" and lines[0]["seconds"] == 1.5 and lines[0]["stage"] == "train"
    )
    progress = [line for line in lines if line["event"] == "progress"]
    assert (
        len(progress) == 2 and progress[-1]["done"] == 100 and progress[-1]["total"] == 100
    )  # the first advance, and the close
    assert {line["event"] for line in lines} <= set(EVENTS)
