"""build -j: independent stages overlap, heavy ones take turns, and the result is what a serial build makes."""

from __future__ import annotations

from pathlib import Path

from opensem.core.graph import SourceInput, UpstreamInput
from tests.core.fake import FakeRunner, build, chain, node


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def fan(root: Path, heavy: bool) -> object:
    """source -> a, then x and y both after a (independent of each other), then z after both."""
    return chain(
        root,
        node("x", inputs={"up": UpstreamInput(stage="a")}, heavy=heavy, text="x", sleep=0.4),
        node(
            "y",
            inputs={"up": UpstreamInput(stage="a"), "src": SourceInput(path="source.txt")},
            heavy=heavy,
            text="y",
            sleep=0.4,
        ),
        node("z", inputs={"x": UpstreamInput(stage="x"), "y": UpstreamInput(stage="y")}, text="z"),
    )


def test_independent_stages_run_at_once_and_give_the_serial_result(tmp_path: Path) -> None:
    serial_runner, parallel_runner = FakeRunner(), FakeRunner()
    serial, _ = build(fan(tmp_path / "serial", heavy=False), serial_runner)
    parallel, code = build(fan(tmp_path / "parallel", heavy=False), parallel_runner, jobs=2)
    assert code == 0 and sorted(parallel_runner.runs) == sorted(serial_runner.runs)
    assert overlap(parallel_runner.spans["x"], parallel_runner.spans["y"])
    assert parallel_runner.spans["z"][0] >= max(
        parallel_runner.spans["x"][1], parallel_runner.spans["y"][1]
    )  # order kept
    assert (
        parallel.resolver.lots == serial.resolver.lots
        and parallel.resolver.outputs == serial.resolver.outputs
    )


def test_heavy_stages_never_overlap(tmp_path: Path) -> None:
    runner = FakeRunner()
    _, code = build(fan(tmp_path, heavy=True), runner, jobs=2)
    assert code == 0 and not overlap(runner.spans["x"], runner.spans["y"])
