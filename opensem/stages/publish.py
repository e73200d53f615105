"""publish: the adapter, its model card, the manifest, a lock of its lineage and the evaluation
report go to the registry under <job_id>/<tag>/."""

from __future__ import annotations

import json
import posixpath
import tempfile
from pathlib import Path
from typing import Any

from pydantic import Field

from opensem.build.digests import walk_files
from opensem.build.files import write_json
from opensem.evaluation.report import comparison_lines
from opensem.manifest.fields import Section
from opensem.manifest.sections import section
from opensem.release.registry import open_registry, publish_files
from opensem.stages import register
from opensem.stages.base import StageContext, StageResult
from opensem.stages.wiring import Wiring

# A tag may carry `{lot}`, replaced by the first 12 characters of the publish stage's lot.
TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]*(\{lot\}[A-Za-z0-9._+-]*)?$"


class PublishTarget(Section):
    registry: str = Field(description="fsspec URL or a path relative to the project root.")
    tag: str = Field(pattern=TAG_PATTERN, description="Immutable release tag; `{lot}` expands to the publish lot.")
    trigger_deployment: bool = Field(False, description="Recorded in the registry index for deployment hooks.")


class PublishParams(PublishTarget):
    job_id: str
    base_model: str  # a hub id, or base_model/model for a tiny base shipped with the release


@register
class PublishStage:
    name = "publish"
    version = "3"  # 3: what was published reaches the lock through the stage result
    Params = PublishParams
    sections = (section("publish_target", PublishTarget | None, None, description="Where finished adapters go; omit to skip publishing."),)

    def wire(self, wiring: Wiring) -> None:
        """The adapter, its report and the manifest; after the gates, when there are any."""
        target = wiring.section("publish_target")
        if target is None:
            return
        m = wiring.manifest
        tiny = not isinstance(m.base_model, str)  # a tiny base model is small enough to ship beside its adapter
        params = PublishParams(**target.model_dump(), job_id=m.job_id, base_model="base_model/model" if tiny else m.base_model)
        inputs = {
            "adapter": wiring.channel("adapter"),
            "report": wiring.channel("report"),
            "manifest": wiring.source(str(wiring.loaded.path.resolve()), ()),
            **(wiring.base_inputs() if tiny else {}),
        }
        if wiring.channel("gate") is not None:
            inputs["gate"] = wiring.channel("gate")  # nothing is published before the gates pass
        wiring.add(self, params, inputs)

    def run(self, params: PublishParams, inputs: dict[str, Path], out_dir: Path, ctx: StageContext) -> StageResult:
        tag = params.tag.replace("{lot}", ctx.lot[:12])
        report = json.loads((inputs["report"] / "report.json").read_text())
        lineage = {**ctx.lineage, "publish": {"lot": ctx.lot}}
        with tempfile.TemporaryDirectory() as scratch:
            extras = Path(scratch)
            gates = json.loads((inputs["gate"] / "gates.json").read_text())["gates"] if "gate" in inputs else []
            full_model = (inputs["adapter"] / "model").is_dir()  # method sft ships the whole model
            (extras / "README.md").write_text(model_card(params, tag, lineage, report, gates, full_model=full_model))
            (extras / f"{params.job_id}.lock").write_text(json.dumps({"job_id": params.job_id, "stages": lineage}, indent=2, sort_keys=True) + "\n")
            files: dict[str, Path] = {
                "README.md": extras / "README.md",
                f"{params.job_id}.lock": extras / f"{params.job_id}.lock",
                "manifest.yaml": inputs["manifest"],
                "report.json": inputs["report"] / "report.json",
            }
            for name in ("report.md", "report.png", "predictions.jsonl"):  # the evaluation report, for people
                if (inputs["report"] / name).is_file():
                    files[name] = inputs["report"] / name
            if "gate" in inputs:
                files["gates.json"] = inputs["gate"] / "gates.json"
            for path in walk_files(inputs["adapter"]):
                files[path.relative_to(inputs["adapter"]).as_posix()] = path
            if "base" in inputs:  # a tiny local base model travels with its adapter
                for path in walk_files(inputs["base"]):
                    files[f"base_model/{path.relative_to(inputs['base']).as_posix()}"] = path
            fs, root = open_registry(params.registry, ctx.project_root)
            receipt = publish_files(fs, root, params.job_id, tag, ctx.lot, files, {"trigger_deployment": params.trigger_deployment})
        # The registry as the manifest writes it, so the lock never holds a machine's absolute path.
        receipt["uri"] = posixpath.join(params.registry, params.job_id, tag)
        write_json(out_dir / "published.json", receipt)
        published = {"tag": tag, "uri": receipt["uri"], "digest": receipt["digest"], "lot": ctx.lot}
        return StageResult(summary=f"{len(files)} files -> {receipt['uri']}", metrics={"published": published}, lock={"published": published})


def model_card(
    params: PublishParams,
    tag: str,
    lineage: dict[str, dict[str, str]],
    report: dict[str, Any],
    gates: list[dict[str, Any]] | None = None,
    full_model: bool = False,
) -> str:
    """A Hugging Face style README: front matter, provenance by lot number, evaluation, how to load.

    A full fine-tune (method sft) ships model/ instead of adapter/, and loads without peft.
    """
    shipped = params.base_model.startswith("base_model/")
    base_ref = f'f"{{release}}/{params.base_model}"' if shipped else f'"{params.base_model}"'
    lines = [
        "---",
        f"base_model: {params.base_model}",
        f"library_name: {'transformers' if full_model else 'peft'}",
        f"tags: [opensem, {'sft' if full_model else 'lora'}]",
        "---",
        "",
        f"# {params.job_id} ({tag})",
        "",
        "Built by opensem. Every stage is identified by its SHA256 lot number: the digest of its code",
        "version, parameters and input bytes. `opensem verify` rechecks them against the manifest and data.",
        "",
        "| stage | lot number |",
        "| --- | --- |",
        *(f"| {stage} | `{entry['lot']}` |" for stage, entry in lineage.items()),
        "",
        "## Evaluation: baseline (base model) vs fine-tuned",
        "",
        f"**{report['headline']}**",
        "",
        *comparison_lines(report),
        "",
        *(f"- quality gate passed: `{g['metric']}` {g['rule']} {g['threshold']:g} ({g['detail']})" for g in gates or []),
        *([""] if gates else []),
        "Details: report.md, report.png and predictions.jsonl.",
    ]
    if full_model:
        lines += ["", "## Use", "", "```python", "from transformers import AutoModelForCausalLM, AutoTokenizer",
                  'release = "path/to/this/folder"', 'model = AutoModelForCausalLM.from_pretrained(f"{release}/model")',
                  'tokenizer = AutoTokenizer.from_pretrained(f"{release}/model")', "```", ""]
        return "\n".join(lines)
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "from peft import PeftModel",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        'release = "path/to/this/folder"',
        f'base = AutoModelForCausalLM.from_pretrained({base_ref})',
        'model = PeftModel.from_pretrained(base, f"{release}/adapter")',
        'tokenizer = AutoTokenizer.from_pretrained(f"{release}/adapter")',
        "```",
        "",
    ]
    return "\n".join(lines)
