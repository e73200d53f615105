"""publish: the adapter, its model card, the manifest, a lock of its lineage, the evaluation report
and what other stage kinds add (their `release` method) go to the registry under <job_id>/<tag>/."""

from __future__ import annotations

import json
import posixpath
import tempfile
from pathlib import Path
from typing import Any

from pydantic import Field

from opensem.core.files import write_json
from opensem.core.graph import UpstreamInput
from opensem.release.card import Release, model_card
from opensem.release.registry import open_registry, publish_files
from opensem.settings.fields import Section, run_setting
from opensem.settings.sections import section
from opensem.stages import get_stage, register
from opensem.stages.base import StageContext, StageResult, folder_files
from opensem.stages.wiring import Wiring

# A tag may carry `{lot}`, replaced by the first 12 characters of the publish stage's lot.
TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]*(\{lot\}[A-Za-z0-9._+-]*)?$"


class PublishTarget(Section):
    registry: str = Field(description="fsspec URL or a path relative to the project root.")
    tag: str = Field(
        pattern=TAG_PATTERN,
        description="Immutable release tag; `{lot}` expands to the publish lot.",
    )
    trigger_deployment: bool = Field(
        False, description="Recorded in the registry index for deployment hooks."
    )


def core_files(inputs: dict[str, Path]) -> dict[str, Path]:
    """Release path -> file for what every release holds: the manifest, the evaluation report,
    the adapter (or whole model) and a base this build made."""
    files: dict[str, Path] = {"manifest.yaml": inputs["manifest"]}
    for name in ("report.json", "report.md", "report.png", "predictions.jsonl"):
        if (inputs["report"] / name).is_file():
            files[name] = inputs["report"] / name
    files.update(folder_files(inputs["adapter"]))
    if "base" in inputs:  # a base this build made travels with its adapter
        files.update(folder_files(inputs["base"], "base_model/"))
    return files


class PublishParams(PublishTarget):
    job_id: str
    base_model: str  # a hub id, or base_model/model for a base shipped with the release
    # Slot -> stage kind of each stage adding to the release (how to read its output, not what it is).
    contributors: dict[str, str] = run_setting({})


@register
class PublishStage:
    name = "publish"
    version = "3"  # 3: what was published reaches the lock through the stage result
    local = True  # writes the registry, which may be a folder of this machine
    side_effect = (
        True  # the release must reach this build's registry: never taken from a shared cache
    )
    Params = PublishParams
    sections = (
        section(
            "publish_target",
            PublishTarget | None,
            None,
            description="Where finished adapters go; omit to skip publishing.",
        ),
    )

    def wire(self, wiring: Wiring) -> None:
        """The adapter, its report and the manifest; after the gates, when there are any."""
        target = wiring.section("publish_target")
        if target is None:
            return
        m = wiring.manifest
        # A base made by this build (tiny, converted from GGUF, pretrained here) exists nowhere
        # else: it ships with the adapter.
        shipped = isinstance(wiring.channel("base"), UpstreamInput)
        params = PublishParams(
            **target.model_dump(),
            job_id=m.job_id,
            base_model="base_model/model" if shipped else m.base_model,
        )
        inputs = {
            "adapter": wiring.channel("adapter"),
            "report": wiring.channel("report"),
            "manifest": wiring.source(str(wiring.loaded.path.resolve()), ()),
            **(wiring.base_inputs() if shipped else {}),
        }
        # What other stages add (gates passed, a folded model, quantized formats, a review): nothing
        # is published before the gates pass, since the gate's verdict is an input.
        parts = wiring.collection("release")
        kinds = {node.name: node.kind for node in wiring.nodes}
        params.contributors = {
            slot: kinds[part.stage]
            for slot, part in parts.items()
            if isinstance(part, UpstreamInput)
        }
        wiring.add(self, params, {**inputs, **parts})

    def run(
        self, params: PublishParams, inputs: dict[str, Path], out_dir: Path, ctx: StageContext
    ) -> StageResult:
        """Write the release, its card and its lock to the registry."""
        tag = params.tag.replace("{lot}", ctx.lot[:12])
        report = json.loads((inputs["report"] / "report.json").read_text())
        lineage = {**ctx.lineage, "publish": {"lot": ctx.lot}}
        files = core_files(inputs)
        facts: dict[str, Any] = {}
        for slot, kind in sorted(params.contributors.items()):
            part = get_stage(kind).release(inputs[slot], slot)  # type: ignore[attr-defined]
            files.update(part.files)
            for fact, value in part.facts.items():
                facts[fact] = [*facts.get(fact, []), *value] if isinstance(value, list) else value
        with tempfile.TemporaryDirectory() as scratch:
            extras = Path(scratch)
            release = Release(
                job_id=params.job_id,
                tag=tag,
                base_model=params.base_model,
                lineage=lineage,
                report=report,
                full_model=(inputs["adapter"] / "model").is_dir(),
                merged_from=json.loads((inputs["adapter"] / "merge.json").read_text())["sources"]
                if (inputs["adapter"] / "merge.json").is_file()
                else [],
                **facts,
            )
            (extras / "README.md").write_text(model_card(release))
            (extras / f"{params.job_id}.lock").write_text(
                json.dumps({"job_id": params.job_id, "stages": lineage}, indent=2, sort_keys=True)
                + "\n"
            )
            files.update(
                {
                    "README.md": extras / "README.md",
                    f"{params.job_id}.lock": extras / f"{params.job_id}.lock",
                }
            )
            fs, root = open_registry(params.registry, ctx.project_root)
            receipt = publish_files(
                fs,
                root,
                params.job_id,
                tag,
                ctx.lot,
                files,
                {"trigger_deployment": params.trigger_deployment},
            )
        # The registry as the manifest writes it, so the lock never holds a machine's absolute path.
        receipt["uri"] = posixpath.join(params.registry, params.job_id, tag)
        write_json(out_dir / "published.json", receipt)
        published = {"tag": tag, "uri": receipt["uri"], "digest": receipt["digest"], "lot": ctx.lot}
        return StageResult(
            summary=f"{len(files)} files -> {receipt['uri']}",
            metrics={"published": published},
            lock={"published": published},
        )
