"""Stage kind baseline: the base model alone on the golden set and the refusal prompts.

Its inputs are the base model, the golden set and the refusal prompts, and its params the
evaluation settings: nothing from the training data. So editing the data, retraining or changing
the training method never reruns it; the test split, which does depend on the data, is scored for
the base model inside the evaluate stage. Writes baseline.json: the base model's side of the
comparison (metrics, counts and every answer with its scores).
"""

from __future__ import annotations

from pathlib import Path

from opensem.core.files import write_json
from opensem.data.persona import items_with_persona
from opensem.errors import StageError
from opensem.evaluation.items import load_golden_sets, load_refusal_prompts
from opensem.evaluation.params import EvalParams
from opensem.stages import register
from opensem.stages.base import MODEL_LIBRARIES, StageContext, StageResult
from opensem.stages.eval_wiring import eval_params, eval_sources
from opensem.stages.wiring import Wiring

BASELINE_FILE = "baseline.json"


@register
class Baseline:
    name = "baseline"
    libraries = MODEL_LIBRARIES
    heavy = True  # loads a model: one at a time under build -j
    version = "2"  # 2: params are views of the evaluation and training sections; the judge's rubric unresolved
    Params = EvalParams
    sections = ()  # reads `evaluation`, which the evaluate stage declares

    def wire(self, wiring: Wiring) -> None:
        """Only the base model, the golden set and the refusal prompts: no data, so data edits never rerun it."""
        sources = eval_sources(wiring)
        params = eval_params(wiring, EvalParams)
        if sources and params is not None:
            wiring.add(
                self, params, {**wiring.original_base_inputs(), **sources}, provides=("baseline",)
            )

    def run(
        self, params: EvalParams, inputs: dict[str, Path], out_dir: Path, ctx: StageContext
    ) -> StageResult:
        """Generate and score the base model's answers; judge them when a judge is configured."""
        from opensem.evaluation.judge import judge_for
        from opensem.evaluation.suite import EvalSets, judge_side, run_side
        from opensem.training.methods.base import (
            load_model,
            load_tokenizer,
            quiet_libraries,
            resolve_base_model,
        )

        golden = items_with_persona(load_golden_sets(inputs), params.persona)
        safety = items_with_persona(
            load_refusal_prompts(inputs["refusals"]) if "refusals" in inputs else [], params.persona
        )
        if not golden and not safety:
            raise StageError(
                "baseline: neither a golden set nor refusal prompts to evaluate",
                hint="wire a 'golden' or 'refusals' input",
            )
        sets = EvalSets(golden=golden, safety=safety)
        if params.provider is not None:  # the base model answers through the provider
            from opensem.evaluation.remote import provider_answers
            from opensem.evaluation.suite import remote_side

            bar = ctx.progress("evaluating base model", len(golden) + len(safety))
            try:
                side = remote_side(
                    provider_answers(
                        params.provider,
                        str(params.base_model),
                        params.generation(),
                        ctx.cache_dir,
                        bar.advance,
                    ),
                    sets,
                )
            finally:
                bar.close()
        else:
            model_path = resolve_base_model(inputs, params.base_model, self.name)
            with quiet_libraries():
                tokenizer = load_tokenizer(model_path, self.name)
                bar = ctx.progress("evaluating base model", sets.work(params.evaluation.batch_size))
                try:
                    side = run_side(
                        load_model(model_path, self.name), tokenizer, sets, params.generation(), bar
                    )
                finally:
                    bar.close()
        judge = None
        if params.evaluation.judge is not None and golden:
            judge = judge_for(params.evaluation.judge, ctx)
            judge_side(side, golden, judge)
        data = {**side.as_json(), "judge": judge.describe() if judge else None}
        write_json(out_dir / BASELINE_FILE, data)
        shown = [
            f"{name} {value:.3f}"
            for name, value in side.metrics.items()
            if name.endswith(("token_f1", "judge_score", "refusal_rate"))
        ]
        return StageResult(
            summary="base model: " + (", ".join(shown) or "measured"),
            metrics={"base": side.metrics, "counts": side.counts},
        )
