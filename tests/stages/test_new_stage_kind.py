"""A new stage kind is its own file: registered from this test module, with its own manifest
section, it validates, plans, builds through the real CLI, reports its events, is locked and adds
its file to the published release, without a line of opensem changed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import Field

from opensem.settings.fields import Section
from opensem.settings.sections import section
from opensem.stages import STAGES
from opensem.stages.base import ReleasePart, StageContext, StageParams, StageResult
from opensem.stages.wiring import Wiring
from tests.e2e.test_shared_cache import clone


class Shout(Section):
    times: int = Field(
        2, gt=0, le=10, description="How often each record's first words are repeated."
    )


class ShoutParams(StageParams):
    shout: Shout


class ShoutStage:
    name = "shout"
    version = "1"
    Params = ShoutParams
    sections = (
        section(
            "shout",
            Shout | None,
            None,
            description="Shout the first words of every training record; omit for none.",
        ),
    )

    def wire(self, wiring: Wiring) -> None:
        config = wiring.section("shout")
        if config is not None:
            wiring.add(self, ShoutParams(shout=config), {"split": wiring.channel("split")})

    def run(
        self, params: ShoutParams, inputs: dict[str, Path], out_dir: Path, ctx: StageContext
    ) -> StageResult:
        lines = (Path(inputs["split"]) / "train.jsonl").read_text(encoding="utf-8").splitlines()
        words = [
            " ".join(json.loads(line).get("instruction", "").split()[:2]).upper() for line in lines
        ]
        (out_dir / "shout.txt").write_text(
            "\n".join(" ".join([w] * params.shout.times) for w in words) + "\n"
        )
        return StageResult(summary=f"shouted {len(words)} records x{params.shout.times}")

    def release(self, out_dir: Path, slot: str) -> ReleasePart:
        return ReleasePart({"shout.txt": out_dir / "shout.txt"})


@pytest.fixture
def registered() -> Iterator[None]:
    from opensem.manifest.models import manifest_model

    STAGES.register(ShoutStage)
    manifest_model.cache_clear()
    yield
    STAGES._entries.pop("shout")
    manifest_model.cache_clear()


def test_a_stage_kind_from_outside_builds_with_its_own_section(
    registered: None, tmp_path: Path
) -> None:
    project = clone(tmp_path / "p")
    project.manifest.write_text(
        project.manifest.read_text()
        + "shout: {times: 3}\ntraining: {max_steps: 2}\npublish_target: {registry: registry, tag: v1}\n"
    )
    code, output = project.run("validate", str(project.manifest))
    assert code == 0 and "shout" in output, output
    code, output = project.run("build", str(project.manifest), "--until", "shout", "--json")
    built = [
        json.loads(line)
        for line in output.splitlines()
        if line.startswith("{") and '"built"' in line
    ]
    assert (
        code == 0 and built[-1]["stage"] == "shout" and built[-1]["detail"].startswith("shouted ")
    ), output
    assert "shout" in json.loads(project.lock.read_text())["stages"]
    code, output = project.run("build", str(project.manifest))
    assert code == 0, output
    shouted = (project.root / "registry" / "twice" / "v1" / "shout.txt").read_text()
    assert shouted.splitlines()[0].count(" ") >= 2, shouted  # the stage's own file, in the release
    project.manifest.write_text(project.manifest.read_text().replace("times: 3", "times: 0"))
    code, output = project.run("validate", str(project.manifest))
    assert (
        code == 2 and "shout.times" in output
    )  # its own field's bounds, with the manifest's key path
