"""Stage kind ground: the knowledge base measured with the model, on the golden set.

For each golden question the index is searched as the release searches it; then the base model
and the expert answer it twice, without and with the retrieved sources. out/: grounded.json and
grounded.md (opensem.knowledge.grounding: recall@k, MRR, token F1 of the four, citation
precision, and a judge's faithfulness score when evaluation.judge is set), published with the
release; gates may hold any `knowledge.*` metric.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field

from opensem.core.files import write_json
from opensem.evaluation.params import EvalParams
from opensem.stages import register
from opensem.stages.base import MODEL_LIBRARIES, ReleasePart, StageContext, StageResult
from opensem.stages.eval_wiring import eval_params, golden_input
from opensem.stages.wiring import Wiring

RESULT = "grounded.json"


class GroundParams(EvalParams):
    search: dict[str, Any] = Field(description="knowledge.search: how the release searches.")


@register
class Ground:
    name = "ground"
    libraries = MODEL_LIBRARIES
    heavy = True  # loads the base model and the expert: one at a time under build -j
    version = "1"
    Params = GroundParams
    sections = ()  # present with `knowledge` and a golden set; reads `evaluation`

    def wire(self, wiring: Wiring) -> None:
        """With a knowledge base, a golden set and a local model to answer."""
        golden, index = golden_input(wiring), wiring.channel("knowledge")
        params = eval_params(wiring, EvalParams)
        adapter = wiring.channel("adapter")
        if golden is None or index is None or adapter is None or params is None:
            return
        if wiring.manifest.compute.backend == "openai":
            return  # the provider's model answers only through the provider; evaluate covers it
        search = wiring.section("knowledge").search.model_dump()
        inputs = {"knowledge": index, "golden": golden, "adapter": adapter}
        inputs.update(wiring.original_base_inputs())
        if wiring.base_inputs() != wiring.original_base_inputs():
            inputs["tuned_base"] = wiring.base_inputs()["base"]
        wiring.add(
            self, GroundParams(**params.model_dump(), search=search), inputs, provides=("grounded",)
        )

    def show(self, out_dir: Path, title: str, console: Any) -> None:
        """After a build: the four rows and the retrieval figures."""
        from rich.markdown import Markdown

        console.print(Markdown((out_dir / "grounded.md").read_text(encoding="utf-8")))

    def release(self, out_dir: Path, slot: str) -> ReleasePart:
        """The measurements, beside the evaluation report."""
        return ReleasePart({name: out_dir / name for name in (RESULT, "grounded.md")})

    def run(
        self, params: GroundParams, inputs: dict[str, Path], out_dir: Path, ctx: StageContext
    ) -> StageResult:
        """Search for every golden question, answer it four ways, and score."""
        from opensem.data.persona import with_system
        from opensem.evaluation.items import load_golden
        from opensem.evaluation.metrics import DIGITS, token_f1
        from opensem.knowledge.answers import with_sources
        from opensem.knowledge.config import SearchSettings
        from opensem.knowledge.grounding import (
            ROWS,
            citation_precision,
            grounded_markdown,
            retrieval_scores,
        )
        from opensem.knowledge.index import KnowledgeIndex
        from opensem.knowledge.retriever import query_encoder
        from opensem.stages.evaluate import load_tuned, tuned_model
        from opensem.training.generation import generate_answers
        from opensem.training.methods.base import (
            load_model,
            load_tokenizer,
            quiet_libraries,
            resolve_base_model,
        )

        items = load_golden(Path(inputs["golden"]))
        search = SearchSettings.model_validate(params.search)
        index = KnowledgeIndex(Path(inputs["knowledge"]) / "knowledge")
        encode = query_encoder(index, ctx.cache_dir / "embeddings").encode
        hits = [
            index.search(item.question, encode, search.top_k, search.mode, search.min_score)
            for item in items
        ]
        plain = [with_system(list(item.messages), params.persona) for item in items]
        grounded = [with_sources(chat, found) for chat, found in zip(plain, hits, strict=True)]
        kind, tuned_dir = tuned_model(inputs)
        base_path = resolve_base_model(inputs, params.base_model, self.name)
        answers: dict[str, list[str]] = {}
        bar = ctx.progress("answering the golden set with and without sources", 4 * len(items))
        try:
            with quiet_libraries():
                has_tokenizer = (tuned_dir / "tokenizer_config.json").is_file()
                tokenizer = load_tokenizer(
                    str(tuned_dir) if has_tokenizer else base_path, self.name
                )
                model = load_model(base_path, self.name)
                answers[ROWS[0]] = generate_answers(
                    model, tokenizer, plain, params.generation(), bar
                )
                answers[ROWS[1]] = generate_answers(
                    model, tokenizer, grounded, params.generation(), bar
                )
                if "tuned_base" in inputs:
                    tuned_base = resolve_base_model({"base": inputs["tuned_base"]}, None, self.name)
                    model = load_model(tuned_base, self.name)
                tuned = load_tuned(model, kind, tuned_dir)
                answers[ROWS[2]] = generate_answers(
                    tuned, tokenizer, plain, params.generation(), bar
                )
                answers[ROWS[3]] = generate_answers(
                    tuned, tokenizer, grounded, params.generation(), bar
                )
        finally:
            bar.close()
        references = [item.reference or "" for item in items]
        rows: dict[str, dict[str, Any]] = {
            name: {
                "token_f1": round(
                    sum(token_f1(a, r) for a, r in zip(given, references, strict=True))
                    / max(1, len(items)),
                    DIGITS,
                )
            }
            for name, given in answers.items()
        }
        faithfulness = _faithfulness(params, items, hits, answers[ROWS[3]], ctx)
        rows[ROWS[3]]["judge_score"] = faithfulness
        result = {
            "items": len(items),
            "top_k": search.top_k,
            "mode": search.mode,
            "retrieval": retrieval_scores(items, hits),
            "rows": rows,
            "citation_precision": citation_precision(answers[ROWS[3]], hits, items),
            "answers": [
                {
                    "id": item.id,
                    "question": item.question,
                    "sources": [h.chunk.id for h in found],
                    **{name: answers[name][i] for name in ROWS},
                }
                for i, (item, found) in enumerate(zip(items, hits, strict=True))
            ],
        }
        write_json(out_dir / RESULT, result)
        (out_dir / "grounded.md").write_text(grounded_markdown(result), encoding="utf-8")
        metrics = knowledge_metrics(result)
        return StageResult(
            summary=", ".join(f"{k.split('.', 1)[1]} {v:.3f}" for k, v in metrics.items()),
            metrics=metrics,
        )


def knowledge_metrics(result: dict[str, Any]) -> dict[str, float]:
    """The measured knowledge.* metrics (those a gate may hold) of a grounded.json."""
    rows = result["rows"]
    found = {
        "knowledge.recall_at_k": result["retrieval"]["recall_at_k"],
        "knowledge.mrr": result["retrieval"]["mrr"],
        "knowledge.token_f1": rows["expert + retrieval"]["token_f1"],
        "knowledge.retrieval_gain": round(
            rows["expert + retrieval"]["token_f1"] - rows["expert"]["token_f1"], 6
        ),
        "knowledge.citation_precision": result["citation_precision"],
        "knowledge.faithfulness": rows["expert + retrieval"].get("judge_score"),
    }
    return {name: float(value) for name, value in found.items() if value is not None}


def read_knowledge_metrics(folder: Path) -> dict[str, float]:
    """knowledge_metrics of a ground stage's output folder."""
    return knowledge_metrics(json.loads((folder / RESULT).read_text(encoding="utf-8")))


def _faithfulness(
    params: GroundParams, items: list[Any], hits: list[Any], answers: list[str], ctx: StageContext
) -> float | None:
    """The judge's 1-5 score of each grounded answer against its sources, averaged."""
    if params.evaluation.judge is None:
        return None
    from opensem.evaluation.judge import judge_for

    judge = judge_for(params.evaluation.judge, ctx)
    triples = [
        (item.question, "\n\n".join(h.chunk.text for h in found), answer)
        for item, found, answer in zip(items, hits, answers, strict=True)
        if found
    ]
    scores = [s for s in judge(triples) if s is not None] if triples else []
    return round(sum(scores) / len(scores), 6) if scores else None
