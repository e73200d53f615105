"""Stage kind evaluate: the base model and base+adapter on the test split, the fine-tuned model on
the golden set and refusal prompts, and the report that compares them with the baseline.

Both models score the same token sequences, rendered by the code the train stage used
(opensem.training.data.encode_records), and answer the same questions with the same generation
settings, so every difference is the adapter's doing. The base model's golden-set and safety
results come from the baseline stage (they do not depend on the data); its test-split results are
computed here, because the test split does. Writes report.json, report.md, report.png and
predictions.jsonl (every answer of both models, with its scores).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from opensem.data.persona import items_with_persona, records_with_persona
from opensem.data.records import write_records
from opensem.errors import DataError, Location, StageError
from opensem.evaluation.config import EvaluationConfig
from opensem.evaluation.items import (
    Item,
    load_golden_sets,
    load_refusal_prompts,
    scorable,
    split_items,
)
from opensem.evaluation.params import EvaluateParams
from opensem.evaluation.report import build_report, fmt, write_report
from opensem.evaluation.suite import Side
from opensem.settings.sections import section
from opensem.stages import register
from opensem.stages.base import MODEL_LIBRARIES, StageContext, StageResult
from opensem.stages.baseline import BASELINE_FILE
from opensem.stages.eval_wiring import eval_params, eval_sources
from opensem.stages.wiring import Wiring
from opensem.training.methods.base import SFT_SHAPES, artifact_in, load_model


@register
class Evaluate:
    name = "evaluate"
    libraries = MODEL_LIBRARIES
    heavy = True  # loads a model: one at a time under build -j
    version = "3"  # 3: params are views of the evaluation and training sections; the judge's rubric unresolved
    Params = EvaluateParams
    sections = (
        section(
            "evaluation",
            EvaluationConfig,
            default_factory=EvaluationConfig,
            description="How the base and fine-tuned models are evaluated, judged and gated.",
        ),
    )

    def wire(self, wiring: Wiring) -> None:
        """Base and tuned model on the test split; the baseline's golden and safety results merged in."""
        params = eval_params(wiring, EvaluateParams)
        if params is None or wiring.channel("adapter") is None:
            return  # no model to evaluate: the problem that stopped training or merging says why
        inputs = {
            "adapter": wiring.channel("adapter"),
            **wiring.original_base_inputs(),
            **eval_sources(wiring),
        }
        # Pretrained here: the adapter sits on that base
        if wiring.base_inputs() != wiring.original_base_inputs():
            inputs["tuned_base"] = wiring.base_inputs()["base"]
        # A merge of other experts has no test split of its own
        for slot, channel in (("test", "split"), ("baseline", "baseline"), ("tokens", "tokens")):
            if wiring.channel(channel) is not None:
                inputs[slot] = wiring.channel(channel)
        if "test" not in inputs and not any(slot.startswith("golden") for slot in inputs):
            wiring.problem(
                ("evaluation",),
                "nothing to evaluate on: no test split and no golden set",
                "add a golden set (data/<job_id>/golden/)",
            )
            return
        wiring.add(self, params, inputs, provides=("report",))

    def show(self, out_dir: Path, title: str, console: Any) -> None:
        """After a build: base against fine-tuned, with the headline."""
        from opensem.evaluation.report import print_report

        print_report(out_dir / "report.json", title, console)

    def run(
        self, params: EvaluateParams, inputs: dict[str, Path], out_dir: Path, ctx: StageContext
    ) -> StageResult:
        """Evaluate both models, merge in the baseline, and write the report."""
        from opensem.evaluation.judge import judge_for
        from opensem.evaluation.suite import judge_side

        records = _test_records(inputs, params.evaluation.max_records)
        golden = items_with_persona(load_golden_sets(inputs), params.persona)
        safety = items_with_persona(
            load_refusal_prompts(inputs["refusals"]) if "refusals" in inputs else [], params.persona
        )
        baseline = _baseline(inputs)
        questions = items_with_persona(split_items(records.records), params.persona)
        if params.provider is not None:
            base_side, tuned_side = _remote_sides(params, inputs, golden, safety, questions, ctx)
        else:
            base_side, tuned_side = _local_sides(
                params, inputs, records, golden, safety, questions, ctx, self.name
            )
        judge_info = None
        if params.evaluation.judge is not None:
            judge = judge_for(params.evaluation.judge, ctx)
            judge_side(base_side, questions, judge)
            judge_side(tuned_side, [*golden, *questions], judge)
            judge_info = {"model": judge.describe()}
        base_all = baseline.merged(base_side)
        rows = prediction_rows([*golden, *questions, *safety], base_all, tuned_side)
        report = build_report(base_all, tuned_side, judge_info, rows)
        write_records(out_dir / "predictions.jsonl", rows)
        write_report(report, rows, out_dir, ctx.job_id)
        return StageResult(
            summary=_summary(report),
            metrics={
                "headline": report["headline"],
                "base": base_all.metrics,
                "tuned": tuned_side.metrics,
            },
        )


def _local_sides(
    params: EvaluateParams,
    inputs: dict[str, Path],
    records: Any,
    golden: list[Item],
    safety: list[Item],
    questions: list[Item],
    ctx: StageContext,
    stage: str,
) -> tuple[Side, Side]:
    """Both models loaded here: the test split scored and answered by each, golden and safety by the tuned one."""
    from opensem.evaluation.suite import EvalSets, run_side
    from opensem.training.data import encode_records
    from opensem.training.methods.base import load_tokenizer, quiet_libraries, resolve_base_model

    tuned_kind, tuned_dir = tuned_model(inputs)
    model_path = resolve_base_model(inputs, params.base_model, stage)
    with quiet_libraries():
        # The adapter (or fine-tuned model) carries the tokenizer it was trained with, chat template included.
        has_tokenizer = (tuned_dir / "tokenizer_config.json").is_file()
        tokenizer = load_tokenizer(str(tuned_dir) if has_tokenizer else model_path, stage)
        if "tokens" in inputs:  # the tokenize stage rendered the test split already, in order
            from opensem.training.tokenized import read_sequences

            sequences = [
                s.ids
                for s in read_sequences(Path(inputs["tokens"]), "test")[: len(records)]
                if len(s.ids) > 1
            ]
        else:
            sequences = [
                ids
                for ids in encode_records(
                    records_with_persona(records.records, params.persona),
                    tokenizer,
                    params.training.max_seq_length,
                )
                if len(ids) > 1
            ]
        if records.records and not sequences:
            raise DataError(
                "evaluate: no test record has two or more tokens to score",
                Location(file=str(records.path)),
            )
        # The base model's golden and safety results are the baseline stage's; only the test split is scored here.
        base_sets = EvalSets(test_sequences=sequences, test_records=len(records), test=questions)
        tuned_sets = EvalSets(
            test_sequences=sequences,
            test_records=len(records),
            test=questions,
            golden=golden,
            safety=safety,
        )
        bar = ctx.progress(
            "evaluating",
            base_sets.work(params.evaluation.batch_size)
            + tuned_sets.work(params.evaluation.batch_size),
        )
        try:
            model = load_model(model_path, stage)
            base_side = run_side(model, tokenizer, base_sets, params.generation(), bar)
            if "tuned_base" in inputs:  # the adapter was trained on the pretrained base
                model = load_model(
                    resolve_base_model({"base": inputs["tuned_base"]}, None, stage), stage
                )
            tuned = load_tuned(model, tuned_kind, tuned_dir)
            tuned_side = run_side(tuned, tokenizer, tuned_sets, params.generation(), bar)
        finally:
            bar.close()
    return base_side, tuned_side


def _remote_sides(
    params: EvaluateParams,
    inputs: dict[str, Path],
    golden: list[Item],
    safety: list[Item],
    questions: list[Item],
    ctx: StageContext,
) -> tuple[Side, Side]:
    """Both models behind the provider: the base answers the test questions, the tuned one everything."""
    from opensem.evaluation.remote import provider_answers, provider_model
    from opensem.evaluation.suite import EvalSets, remote_side

    tuned = provider_model(Path(inputs["adapter"]))
    if tuned is None:
        raise StageError(
            "evaluate: the train output names no provider model (provider_model.json)",
            hint="the plan and the stage disagree; please report it",
        )
    bar = ctx.progress(
        "evaluating through the provider", 2 * len(questions) + len(golden) + len(safety)
    )
    try:
        generation = params.generation()
        base_side = remote_side(
            provider_answers(
                params.provider, str(params.base_model), generation, ctx.cache_dir, bar.advance
            ),
            EvalSets(test=questions),
        )
        tuned_side = remote_side(
            provider_answers(
                params.provider, str(tuned["model"]), generation, ctx.cache_dir, bar.advance
            ),
            EvalSets(test=questions, golden=golden, safety=safety),
        )
    finally:
        bar.close()
    return base_side, tuned_side


def prediction_rows(items: list[Item], base: Side, tuned: Side) -> list[dict[str, Any]]:
    """One row per item: the question, the reference, and each model's answer with its scores."""
    rows: list[dict[str, Any]] = []
    for item in items:
        key = f"{item.set}:{item.id}"
        row: dict[str, Any] = {
            "set": item.set,
            "id": item.id,
            "question": item.question,
            "reference": item.reference,
        }
        if item.tags:
            row["tags"] = list(item.tags)
        for name, side in (("base", base), ("tuned", tuned)):
            if key in side.items:
                row[name] = side.items[key]
        rows.append(row)
    return rows


def _summary(report: dict[str, Any]) -> str:
    row = report["metrics"].get("test.perplexity")
    perplexity = (
        f"perplexity {fmt('test.perplexity', row['base'])} -> {fmt('test.perplexity', row['tuned'])}"
        if row
        else ""
    )
    return "; ".join(part for part in (perplexity, report["headline"].rstrip(".")) if part)


def _baseline(inputs: dict[str, Path]) -> Side:
    if "baseline" not in inputs:
        return Side()
    path = Path(inputs["baseline"]) / BASELINE_FILE
    try:
        return Side.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError) as exc:
        raise StageError(
            f"evaluate: cannot read the baseline's {BASELINE_FILE}: {exc}",
            Location(file=str(path)),
            hint="rebuild with --force baseline",
        ) from None


def _test_records(inputs: dict[str, Path], limit: int | None) -> Any:
    """The test split's records as a causal LM is scored on them (none when the graph has no test split).

    Preference and feedback records (dpo, orpo, kto) are scored on their good answer.
    """
    from opensem.training.data import RecordSet, check_shapes, load_records

    if "test" not in inputs:
        return RecordSet(Path("."), [], [])
    loaded = load_records(_input_file(inputs, "test", "test.jsonl")).head(limit)
    kept = [
        (record, line)
        for raw, line in zip(loaded.records, loaded.lines)
        if (record := scorable(raw)) is not None
    ]
    if not kept:
        raise DataError(
            "evaluate: no test record can be scored (chats, documents, preferences, or feedback labelled good)",
            Location(file=str(loaded.path)),
        )
    records = RecordSet(loaded.path, [record for record, _ in kept], [line for _, line in kept])
    check_shapes(records, SFT_SHAPES, "evaluate")
    return records


def _input_file(inputs: dict[str, Path], slot: str, name: str) -> Path:
    if slot not in inputs:
        raise DataError(
            f"evaluate: no {slot!r} input", hint="wire the split stage's output into it"
        )
    path = Path(inputs[slot])
    path = path / name if path.is_dir() else path
    if not path.is_file():
        raise DataError(
            f"evaluate: the {slot} input has no {name}",
            Location(file=str(path)),
            hint="check the split stage",
        )
    return path


def tuned_model(inputs: dict[str, Path]) -> tuple[str, Path]:
    """("adapter", dir) for a PEFT adapter, ("model", dir) for a fully fine-tuned model."""
    if "adapter" not in inputs:
        raise StageError(
            "evaluate: no 'adapter' input",
            hint="wire the train stage's output into the 'adapter' slot",
        )
    root = Path(inputs["adapter"])
    found = artifact_in(root)
    if found is not None:
        return found
    raise StageError(
        "evaluate: the train output holds neither an adapter (adapter_config.json) nor a model (config.json)",
        Location(file=str(root)),
    )


def load_tuned(base: Any, kind: str, path: Path) -> Any:
    """base+adapter (the base is wrapped in place, so base results must be taken first), or the full model."""
    if kind == "adapter":
        from peft import PeftModel

        return PeftModel.from_pretrained(base, str(path))
    return load_model(str(path), "evaluate")
