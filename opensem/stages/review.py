"""Stage kind review: the new adapter against the release that received the feedback, each scored
exactly as it is served (its own base, adapter and persona).

Present when the expert has feedback with edited answers and the release that gave those answers
(the lot most of them name) is published in the manifest's registry. That release is read from
the index while planning, so its digest keys the lot, and is pulled and checked when the stage
runs. Writes review.json and review.md; the build prints the comparison.
"""

from __future__ import annotations

import json
import posixpath
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import Field

from opensem.core.files import write_json
from opensem.data.persona import with_system
from opensem.errors import StageError
from opensem.evaluation.params import EvalParams
from opensem.stages import register
from opensem.stages.base import MODEL_LIBRARIES, ReleasePart, StageContext, StageResult
from opensem.stages.eval_wiring import eval_params
from opensem.stages.wiring import Wiring


class ReviewParams(EvalParams):
    previous: dict[str, str] = Field(
        description="The release that answered: registry folder, tag, lot and digest from its index."
    )


@register
class Review:
    name = "review"
    libraries = MODEL_LIBRARIES
    heavy = True  # loads a model: one at a time under build -j
    local = True  # reads the registry, which may be a folder of this machine
    version = "2"  # 2: each release on its own base and persona, as served
    Params = ReviewParams
    sections = ()  # present with feedback; reads `evaluation` and `publish_target`

    def wire(self, wiring: Wiring) -> None:
        """The review stage, when edited feedback names a published release."""
        from opensem.feedback.records import read_folder
        from opensem.feedback.rules import feedback_folder

        m = wiring.manifest
        folder = feedback_folder(wiring.loaded)
        adapter = wiring.channel("adapter")
        if (
            m.publish_target is None
            or adapter is None
            or m.compute.backend == "openai"
            or not wiring.exists(str(folder.relative_to(wiring.loaded.project_root)))
        ):
            return
        try:
            records, _ = read_folder(folder)
        # Ingest reports bad feedback; without readable feedback there is nothing to review
        except Exception:
            return
        lots = Counter(r.lot for r in records if r.edited is not None and r.lot)
        previous = (
            _published(wiring, m.publish_target.registry, m.job_id, lots.most_common(1)[0][0])
            if lots
            else None
        )
        base = eval_params(wiring, EvalParams)
        if previous is None or base is None:
            return
        params = ReviewParams(**base.model_dump(), previous=previous)
        feedback = wiring.source(
            str(folder.relative_to(wiring.loaded.project_root)), ("feedback", "path")
        )
        wiring.add(
            self,
            params,
            {**wiring.base_inputs(), "adapter": adapter, "feedback": feedback},
            provides=("review",),
        )

    def show(self, out_dir: Path, title: str, console: Any) -> None:
        """After a build: the release that got the feedback against this build."""
        print_review(out_dir / "review.json", console)

    def release(self, out_dir: Path, slot: str) -> ReleasePart:
        """How this release does on the feedback its predecessor got."""
        return ReleasePart({name: out_dir / name for name in ("review.json", "review.md")})

    def run(
        self, params: ReviewParams, inputs: dict[str, Path], out_dir: Path, ctx: StageContext
    ) -> StageResult:
        """Score the previous release and this build, each as served, on the edited feedback."""
        from opensem.data.persona import SYSTEM_PROMPT_FILE
        from opensem.evaluation.review import review_markdown, score_release
        from opensem.feedback.records import read_folder
        from opensem.release.registry import pull_checked
        from opensem.serving.releases import release_folder
        from opensem.training.methods.base import (
            load_model,
            load_tokenizer,
            quiet_libraries,
            resolve_base_model,
        )

        previous = params.previous
        records, _ = read_folder(inputs["feedback"])
        edits = sorted(
            {
                (r.prompt, str(r.edited))
                for r in records
                if r.edited is not None and r.lot == previous["lot"]
            }
        )
        if not edits:
            raise StageError(
                "review: no edited answers of the previous release",
                hint="the plan and the stage disagree; please report it",
            )
        pulled = pull_checked(
            previous["registry"],
            ctx.project_root,
            previous["tag"],
            previous["digest"],
            ctx.work_dir / "previous",
            self.name,
        )
        served = release_folder(pulled, ctx.project_root)
        if served.kind != "adapter" or served.base is None:
            raise StageError(
                f"review: {previous['tag']} is a whole model",
                hint="feedback review compares adapters; whole-model training is not reviewed yet",
            )
        persona_file = served.artifact / SYSTEM_PROMPT_FILE
        # Each release exactly as it is served: its own base (a pretrained one travels with it), adapter and persona.
        sides = {
            "previous": (
                served.base,
                served.artifact,
                persona_file.read_text(encoding="utf-8").strip()
                if persona_file.is_file()
                else None,
            ),
            "new": (
                resolve_base_model(inputs, params.base_model, self.name),
                _adapter_dir(inputs["adapter"]),
                params.persona,
            ),
        }
        scores: dict[str, Any] = {}
        with quiet_libraries():
            from peft import PeftModel

            bar = ctx.progress("reviewing the feedback prompts", 4 * len(edits))
            try:
                for name, (base, adapter, persona) in sides.items():
                    items = [
                        {
                            "messages": with_system([{"role": "user", "content": p}], persona),
                            "edited": e,
                        }
                        for p, e in edits
                    ]
                    model = PeftModel.from_pretrained(
                        load_model(str(base), self.name), str(adapter)
                    )
                    scores[name] = score_release(
                        model,
                        load_tokenizer(str(adapter), self.name),
                        items,
                        params.generation(),
                        bar,
                    )
                    del model
            finally:
                bar.close()
        review = {
            "prompts": len(edits),
            "previous": {**scores["previous"], "tag": previous["tag"], "lot": previous["lot"]},
            "new": scores["new"],
            "questions": [prompt for prompt, _ in edits],
        }
        write_json(out_dir / "review.json", review)
        (out_dir / "review.md").write_text(review_markdown(review), encoding="utf-8")
        old, new = review["previous"], review["new"]
        summary = (
            f"{len(edits)} edited answers: perplexity {old['perplexity']:.1f} -> {new['perplexity']:.1f}, "
            f"token F1 {old['token_f1']:.3f} -> {new['token_f1']:.3f} ({previous['tag']} -> this build)"
        )
        return StageResult(
            summary=summary,
            metrics={
                k: {"perplexity": v["perplexity"], "token_f1": v["token_f1"]}
                for k, v in scores.items()
            },
        )


def _published(wiring: Wiring, registry: str, job_id: str, lot: str) -> dict[str, str] | None:
    """The registry entry of the release with that lot (its index is read now, so its digest keys the lot)."""
    from opensem.release.registry import open_registry, read_index

    folder = posixpath.join(str(registry), job_id)
    try:
        fs, root = open_registry(folder, wiring.loaded.project_root)
        tags = read_index(fs, posixpath.dirname(root), job_id)["tags"]
    except Exception:  # no registry yet, or unreachable: nothing to review against now
        return None
    tag = next((t for t, entry in tags.items() if entry.get("lot") == lot), None)
    return (
        None
        if tag is None
        else {"registry": folder, "tag": tag, "lot": lot, "digest": str(tags[tag]["digest"])}
    )


def _adapter_dir(folder: Path) -> Path:
    if (folder / "adapter").is_dir():
        return folder / "adapter"
    raise StageError(
        f"review: {folder} holds no adapter",
        hint="feedback review compares adapters; whole-model training is not reviewed yet",
    )


def print_review(path: Path, console: Any) -> None:
    """The review as a table after a build."""
    from rich.table import Table

    review = json.loads(path.read_text())
    old, new = review["previous"], review["new"]
    table = Table(
        title=f"feedback: {review['prompts']} edited answers, the release that gave them against this build",
        title_justify="left",
    )
    for column in ("", f"previous ({old['tag']})", "this build"):
        table.add_column(column, justify="right")
    table.add_row("perplexity of the edits", f"{old['perplexity']:.2f}", f"{new['perplexity']:.2f}")
    table.add_row("token F1 vs the edits", f"{old['token_f1']:.3f}", f"{new['token_f1']:.3f}")
    console.print(table)
