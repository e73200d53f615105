"""Stage kind compare: a merge beside its sources, on every golden set it inherits.

Present when the manifest merges adapters of this graph (its own, or other manifests'): the base
model, each source and the merged artifact answer the golden set of every expert, with the same
evaluation settings as baseline and evaluate. Writes compare.json, compare.md and compare.png.
Sources taken from a registry are not in the graph and not re-scored: their own reports travel
with their releases.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from opensem.errors import StageError
from opensem.evaluation.items import golden_slots
from opensem.evaluation.params import EvalParams
from opensem.stages import register
from opensem.stages.base import MODEL_LIBRARIES, ReleasePart, StageContext, StageResult
from opensem.stages.eval_wiring import eval_params, eval_sources
from opensem.stages.wiring import Wiring

MERGED = "merged"


@register
class Compare:
    name = "compare"
    libraries = MODEL_LIBRARIES
    heavy = True  # loads a model: one at a time under build -j
    version = "1"
    Params = EvalParams
    sections = ()  # present with `merge`; it reads `evaluation`

    def wire(self, wiring: Wiring) -> None:
        """The merge beside its sources on the golden sets, when this manifest merges."""
        sources = wiring.collection("merge-sources")
        golden = {
            slot: value for slot, value in eval_sources(wiring).items() if slot.startswith("golden")
        }
        params = eval_params(wiring, EvalParams)
        if not sources or not golden or params is None:
            return
        wiring.add(
            self,
            params,
            {
                **wiring.base_inputs(),
                **golden,
                **sources,
                f"model:{MERGED}": wiring.channel("adapter"),
            },
            provides=("comparison",),
        )

    def show(self, out_dir: Path, title: str, console: Any) -> None:
        """After a build: the merge beside its sources."""
        from opensem.evaluation.compare import rich_table

        console.print(rich_table(json.loads((out_dir / "compare.json").read_text()), title))

    def release(self, out_dir: Path, slot: str) -> ReleasePart:
        """The merge beside its sources: the tables, the plot, and the card's comparison."""
        files = {
            name: out_dir / name
            for name in ("compare.json", "compare.md", "compare.png")
            if (out_dir / name).is_file()
        }
        return ReleasePart(files, {"comparison": (out_dir / "compare.md").read_text()})

    def run(
        self, params: EvalParams, inputs: dict[str, Path], out_dir: Path, ctx: StageContext
    ) -> StageResult:
        """Answer the golden sets with the merge and each source, and score them side by side."""
        from opensem.evaluation.compare import compare_models, work, write
        from opensem.evaluation.items import load_golden
        from opensem.evaluation.judge import judge_for
        from opensem.release.merge import find_part
        from opensem.training.methods.base import (
            load_model,
            load_tokenizer,
            quiet_libraries,
            resolve_base_model,
        )

        sets = {expert: load_golden(path, expert) for expert, path in golden_slots(inputs)}
        models: dict[str, tuple[str, Path]] = {}
        for slot, folder in sorted(
            inputs.items(), key=lambda item: (item[0] == f"model:{MERGED}", item[0])
        ):
            if slot.startswith("model:"):
                part = find_part(slot.removeprefix("model:"), Path(folder), 1.0)
                models[part.name] = (part.kind, part.path)
        if MERGED not in models:
            raise StageError(
                "compare: no merged artifact among the inputs",
                hint="the plan and the stage disagree; please report it",
            )
        base_path = resolve_base_model(inputs, params.base_model, self.name)
        judge = (
            judge_for(params.evaluation.judge, ctx) if params.evaluation.judge is not None else None
        )
        with quiet_libraries():
            tokenizer = load_tokenizer(
                str(models[MERGED][1])
                if (models[MERGED][1] / "tokenizer_config.json").is_file()
                else base_path,
                self.name,
            )
            bar = ctx.progress(
                "comparing the merge with its sources",
                work(sets, len(models), params.evaluation.batch_size),
            )
            try:
                comparison = compare_models(
                    load_model(base_path, self.name),
                    tokenizer,
                    models,
                    sets,
                    params.generation(),
                    judge,
                    bar,
                )
            finally:
                bar.close()
        write(comparison, out_dir, ctx.job_id)
        best = {
            expert: max(
                comparison["models"],
                key=lambda m: comparison["scores"][expert].get(m, {}).get("golden.token_f1", -1.0),
            )
            for expert in sets
        }
        summary = "; ".join(
            f"{expert or 'own'}: best token F1 {model}" for expert, model in best.items()
        )
        return StageResult(summary=summary, metrics={"scores": comparison["scores"]})
