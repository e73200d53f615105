"""`opensem ask` and `opensem answers`: questions answered from the knowledge base, with sources."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from opensem.cli import cli, manifest_argument
from opensem.console import console


def _answers_folder(manifest: Path) -> Path:
    from opensem.manifest.loader import load_manifest

    loaded = load_manifest(manifest)
    return loaded.project_root / "data" / loaded.manifest.job_id / "answers"


@cli.command("ask")
@manifest_argument
@click.argument("question")
@click.option("--search-only", is_flag=True, help="Print the chunks found; ask no model.")
@click.option(
    "--mode",
    type=click.Choice(["dense", "keyword", "hybrid"]),
    help="How to search (default: the manifest's knowledge.search.mode).",
)
@click.option(
    "--top-k", type=click.IntRange(1, 50), help="Chunks to use (default: the manifest's)."
)
@click.option("--embedder", help="Check that the index was embedded with this model.")
@click.option("--max-tokens", type=click.IntRange(1, 4096), default=256, show_default=True)
@click.option("--no-record", is_flag=True, help="Do not save the answer to data/<job_id>/answers/.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer and its sources as JSON.")
def ask(
    manifest: Path,
    question: str,
    search_only: bool,
    mode: str | None,
    top_k: int | None,
    embedder: str | None,
    max_tokens: int,
    no_record: bool,
    as_json: bool,
) -> None:
    """Answer QUESTION with the manifest's latest published release and its knowledge base.

    The chunks that match the question best are given to the model as numbered sources; the
    answer cites them and is printed with each source's file, page, snippet and score. Below
    knowledge.search.min_score the expert says it does not know instead of guessing.
    """
    from opensem.errors import Location, UsageError
    from opensem.knowledge.answers import (
        DONT_KNOW,
        AnswerRecord,
        record_answer,
        source_records,
        sources_line,
    )
    from opensem.knowledge.config import SearchSettings
    from opensem.knowledge.index import KnowledgeIndex
    from opensem.knowledge.retriever import query_encoder
    from opensem.manifest.loader import load_manifest
    from opensem.serving.releases import resolve

    if not question.strip():
        raise UsageError("the question is empty", Location(key="QUESTION"), hint="ask something")
    loaded = load_manifest(manifest)
    root = loaded.project_root
    release = resolve(str(manifest), root / "build" / "cache" / "releases")
    if release.knowledge is None:
        raise UsageError(
            f"release {release.tag} of {release.job_id} has no knowledge base to search",
            Location(file=str(manifest), key="knowledge"),
            hint="add a `knowledge:` section, build and publish, then ask again",
        )
    config = loaded.manifest.knowledge
    search = config.search if config is not None else SearchSettings()
    index = KnowledgeIndex(release.knowledge)
    encode = query_encoder(index, root / "build" / "cache" / "embeddings", embedder).encode
    hits = index.search(
        question,
        encode,
        top_k or search.top_k,
        mode or search.mode,  # type: ignore[arg-type]  # click checked the choice
        search.min_score,
    )
    if search_only:
        _print_hits(hits, as_json)
        return
    text = _generate(release, question, hits, max_tokens) if hits else DONT_KNOW
    answer = f"{text}\n\n{sources_line(hits)}" if hits else text
    record = AnswerRecord(
        question=question,
        answer=answer,
        sources=source_records(hits),
        model=release.name,
        lot=release.lot,
        index_lot=(loaded_lock_lot(manifest, "index")),
    )
    if not no_record:
        record_answer(_answers_folder(manifest), record)
    if as_json:
        from opensem.knowledge.answers import as_json as record_json

        click.echo(json.dumps(record_json(record), ensure_ascii=False, indent=2))
        return
    console.print(answer, markup=False, highlight=False)
    if hits:
        console.print()
        _print_hits(hits, False)
    if not no_record:
        console.print(f"[dim]saved as answer {record.id} (opensem answers list {manifest})[/dim]")


def loaded_lock_lot(manifest: Path, stage: str) -> str | None:
    """The lot the manifest's lock records for a stage, if any."""
    from opensem.core.layout import lock_path
    from opensem.core.lock import read_lock

    entry = ((read_lock(lock_path(manifest)) or {}).get("stages") or {}).get(stage) or {}
    return entry.get("lot")


def _print_hits(hits: list[Any], as_json: bool) -> None:
    from rich.table import Table

    if as_json:
        click.echo(json.dumps([h.as_json() for h in hits], ensure_ascii=False, indent=2))
        return
    if not hits:
        console.print("no chunk is close enough to the question (knowledge.search.min_score)")
        return
    table = Table(title="sources", title_justify="left")
    for column in ("#", "file", "page", "score", "snippet"):
        table.add_column(column, overflow="fold")
    for n, hit in enumerate(hits, 1):
        snippet = " ".join(hit.chunk.text.split()[:16]) + " ..."
        page = str(hit.chunk.page) if hit.chunk.page is not None else "-"
        table.add_row(f"[{n}]", hit.chunk.source, page, f"{hit.score:.3f}", snippet)
    console.print(table)


def _generate(release: Any, question: str, hits: list[Any], max_tokens: int) -> str:
    """The release's answer to the question given the sources (greedy, in this process)."""
    from opensem.core.stage import silent_progress
    from opensem.data.persona import SYSTEM_PROMPT_FILE, with_system
    from opensem.knowledge.answers import with_sources
    from opensem.training.generation import GenerationSettings, generate_answers
    from opensem.training.methods.base import load_model, load_tokenizer, quiet_libraries

    persona_file = release.artifact / SYSTEM_PROMPT_FILE
    persona = persona_file.read_text(encoding="utf-8") if persona_file.is_file() else None
    messages = with_sources(with_system([{"role": "user", "content": question}], persona), hits)
    with quiet_libraries():
        if release.kind == "adapter":
            from peft import PeftModel

            model = PeftModel.from_pretrained(
                load_model(release.base, "ask"), str(release.artifact)
            )
        else:
            model = load_model(str(release.artifact), "ask")
        tokenizer = load_tokenizer(str(release.artifact), "ask")
        settings = GenerationSettings(
            max_new_tokens=max_tokens, temperature=0.0, seed=0, batch_size=1, max_seq_length=2048
        )
        return generate_answers(model, tokenizer, [messages], settings, silent_progress("", None))[
            0
        ]


@cli.group("answers")
def answers_group() -> None:
    """Answers given with sources (`opensem ask`, or a server asked to record): list them, rate them."""


@answers_group.command("list")
@manifest_argument
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def answers_list(manifest: Path, as_json: bool) -> None:
    """Every recorded answer, newest last: id, when, question, and the sources it cited."""
    from rich.table import Table

    from opensem.knowledge.answers import as_json as record_json
    from opensem.knowledge.answers import read_answers

    records = read_answers(_answers_folder(manifest))
    if as_json:
        for record in records:
            click.echo(json.dumps(record_json(record), ensure_ascii=False))
        return
    if not records:
        console.print(f'no answers recorded yet: `opensem ask {manifest} "..."` records them')
        return
    table = Table(title=f"{len(records)} answers", title_justify="left")
    for column in ("id", "when", "question", "answer", "sources"):
        table.add_column(column, overflow="fold")
    for r in records:
        cited = ", ".join(f"{s.source}" + (f" p. {s.page}" if s.page else "") for s in r.sources)
        table.add_row(r.id, r.created, r.question, r.answer.split("\n\nSources:")[0][:120], cited)
    console.print(table)


@answers_group.command("feedback")
@manifest_argument
@click.argument("answer_id")
@click.option("--rating", type=click.IntRange(1, 5), help="1 (bad) to 5 (good).")
@click.option("--edited", help="The answer as it should have been.")
@click.option("--tag", "tags", multiple=True, help="A label (repeatable).")
def answers_feedback(
    manifest: Path, answer_id: str, rating: int | None, edited: str | None, tags: tuple[str, ...]
) -> None:
    """Turn a recorded answer into feedback (a rating, an edit or both), as `feedback add` would."""
    from pydantic import ValidationError

    from opensem.errors import Location, UsageError
    from opensem.feedback.records import FeedbackRecord, append_feedback
    from opensem.feedback.rules import feedback_folder
    from opensem.knowledge.answers import find_answer
    from opensem.manifest.loader import load_manifest

    record = find_answer(_answers_folder(manifest), answer_id)
    try:
        feedback = FeedbackRecord(
            prompt=record.question,
            answer=record.answer,
            rating=rating,
            edited=edited,
            tags=list(tags),
            model=record.model,
            lot=record.lot,
        )
    except ValidationError as exc:
        raise UsageError(
            exc.errors()[0]["msg"].removeprefix("Value error, "),
            Location(key="--rating/--edited"),
            hint="give --rating 1-5, --edited TEXT, or both",
        ) from None
    path = append_feedback(Path(feedback_folder(load_manifest(manifest))), [feedback])
    console.print(f"answer {record.id} -> feedback {feedback.id} in {path}")
