"""Stage kind baseline: the base model alone on the golden set and the refusal prompts.

Its inputs are the base model, the golden set and the refusal prompts, and its params the
evaluation settings: nothing from the training data. So editing the data, retraining or changing
the training method never reruns it; the test split, which does depend on the data, is scored for
the base model inside the evaluate stage. Writes baseline.json: the base model's side of the
comparison (metrics, counts and every answer with its scores).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from opensem.errors import StageError
from opensem.evaluation.items import load_golden, load_refusal_prompts
from opensem.evaluation.params import EvalParams
from opensem.stages import register
from opensem.stages.base import StageContext, StageResult

BASELINE_FILE = "baseline.json"


def load_model(model_path: str, stage: str) -> Any:
    """The causal LM for evaluation, on the GPU when there is one."""
    import torch

    from opensem.training.methods.base import load_causal_lm

    model = load_causal_lm(model_path, stage)
    return model.to("cuda") if torch.cuda.is_available() else model


@register
class Baseline:
    name = "baseline"
    version = "1"
    Params = EvalParams

    def run(self, params: EvalParams, inputs: dict[str, Path], out_dir: Path, ctx: StageContext) -> StageResult:
        """Generate and score the base model's answers; judge them when a judge is configured."""
        from opensem.evaluation.judge import judge_for
        from opensem.evaluation.suite import EvalSets, judge_side, run_side
        from opensem.training.methods.base import load_tokenizer, quiet_libraries, resolve_base_model

        golden = load_golden(inputs["golden"]) if "golden" in inputs else []
        safety = load_refusal_prompts(inputs["refusals"]) if "refusals" in inputs else []
        if not golden and not safety:
            raise StageError("baseline: neither a golden set nor refusal prompts to evaluate", hint="wire a 'golden' or 'refusals' input")
        model_path = resolve_base_model(inputs, params.base_model, self.name)
        sets = EvalSets(golden=golden, safety=safety)
        with quiet_libraries():
            tokenizer = load_tokenizer(model_path, self.name)
            bar = ctx.progress("evaluating base model", sets.work(params.batch_size))
            try:
                side = run_side(load_model(model_path, self.name), tokenizer, sets, params.generation(), bar)
            finally:
                bar.close()
        judge = None
        if params.judge is not None and golden:
            judge = judge_for(params.judge, ctx)
            judge_side(side, golden, judge)
        data = {**side.as_json(), "judge": judge.describe() if judge else None}
        (out_dir / BASELINE_FILE).write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
        shown = [f"{name} {value:.3f}" for name, value in side.metrics.items() if name.endswith(("token_f1", "judge_score", "refusal_rate"))]
        return StageResult(summary="base model: " + (", ".join(shown) or "measured"), metrics={"base": side.metrics, "counts": side.counts})
