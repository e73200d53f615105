"""A new expert from plain answers: what `opensem init --guided` asks and the browser's form fills.

Both end here, so a manifest made in the browser is byte for byte the one the terminal would
write for the same answers, and the CLI builds it identically. The documents are copied into
data/NAME/raw/, the golden questions into data/NAME/golden/golden.jsonl, and the manifest is
validated before anyone is told it exists.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from opensem.errors import OpensemError, UsageError

BASE_MODELS = {
    "smollm2": "SmolLM2-135M-Instruct, a real model fetched from the package index",
    "tiny": "a small random test model, seconds on any laptop",
}
Teacher = Literal["offline", "local", "openai"]


@dataclass(frozen=True)
class Document:
    """A document for the new expert: its name inside data/NAME/raw/ and where its bytes are."""

    name: str
    source: Path


@dataclass
class ExpertAnswers:
    """Everything a new expert needs that a person can say without knowing the manifest."""

    name: str
    description: str = ""
    persona: str = ""
    teacher: Teacher = "offline"
    teacher_model: str = "gpt-4o-mini"
    teacher_base_url: str = "https://api.openai.com/v1"
    teacher_key_env: str = "OPENAI_API_KEY"
    # Prices in the unit providers quote (per million tokens) and the most one build may spend
    teacher_price_in: float = 0.0
    teacher_price_out: float = 0.0
    teacher_max_cost: float | None = None
    base: str = "tiny"  # a BASE_MODELS key or a hub id
    knowledge: bool = True
    golden: list[dict[str, str]] = field(default_factory=list)


def create_expert(
    root: Path, answers: ExpertAnswers, documents: list[Document], check: Callable[[Path], object]
) -> Path:
    """Write the expert's folders, documents, golden set and manifest, and check the manifest
    (project.load_graph); returns the manifest. On a problem nothing written stays."""
    from opensem.manifest.scaffold import scaffold

    if not documents:
        raise UsageError(
            "a new expert needs at least one document",
            hint="add .txt, .md or .pdf files it should learn from",
        )
    made = scaffold(root, answers.name, _filled(answers))
    try:
        return _fill(root, answers, documents, made, check)
    except OpensemError:
        (root / "manifests" / f"{answers.name}.yaml").unlink(missing_ok=True)
        shutil.rmtree(root / "data" / answers.name, ignore_errors=True)
        raise


def _fill(
    root: Path,
    answers: ExpertAnswers,
    documents: list[Document],
    made: list[Path],
    check: Callable[[Path], object],
) -> Path:
    raw = root / "data" / answers.name / "raw"
    for document in documents:
        target = raw / document.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(document.source, target)
    if answers.golden:
        (root / "data" / answers.name / "golden" / "golden.jsonl").write_text(
            "".join(json.dumps(g, ensure_ascii=False) + "\n" for g in answers.golden),
            encoding="utf-8",
        )
    manifest = next(path for path in made if path.suffix == ".yaml")
    if answers.knowledge:
        with manifest.open("a", encoding="utf-8") as handle:
            handle.write(
                "\n# The documents, chunked and embedded: `opensem ask` answers with numbered "
                "sources.\nknowledge: {}\n"
            )
    check(manifest)
    return manifest


def _filled(answers: ExpertAnswers) -> dict[str, str]:
    """The template's parts these answers replace."""
    filled = {
        "description": json.dumps(answers.description or f"{answers.name} expert"),
        "persona": _persona(answers.persona),
        "publish_note": ":",
        "publish": 'publish_target:\n  registry: build/registry\n  tag: "v1-{lot}"\n',
        "base_model": _base_model(answers.base.strip()),
    }
    if answers.teacher == "openai":
        filled["teacher"] = (
            f"provider: openai\n  model: {answers.teacher_model}\n  base_url: "
            f"{answers.teacher_base_url}\n  api_key_env: {answers.teacher_key_env}"
        )
        budget = ["max_requests: 1000"]
        if answers.teacher_max_cost is not None:
            budget.append(f"max_cost: {answers.teacher_max_cost:g}")
        for key, per_million in (
            ("price_per_1k_input_tokens", answers.teacher_price_in),
            ("price_per_1k_output_tokens", answers.teacher_price_out),
        ):
            if per_million:
                budget.append(f"{key}: {per_million / 1000:g}")
        filled["budget"] = "\n    ".join(budget)
    elif answers.teacher == "local":
        filled["teacher"] = f"provider: local\n  model: {json.dumps(answers.teacher_model)}"
    elif answers.teacher != "offline":
        raise UsageError(
            f"unknown teacher {answers.teacher!r}", hint="answer offline, local or openai"
        )
    return filled


def _base_model(answer: str) -> str:
    """The base_model value as YAML after the key: a tiny spec, SmolLM2's GGUF source, or a hub id."""
    if answer == "tiny":
        return "\n  tiny: {}"
    if answer.lower() == "smollm2":
        from opensem.training.gguf import SMOLLM2

        return "\n  gguf:\n" + "".join(
            f"    {key}: {value}\n" for key, value in SMOLLM2.model_dump(exclude_none=True).items()
        ).rstrip("\n")
    return f" {answer}"


def _persona(text: str) -> str:
    return (
        "\n# How every answer should sound (the system message in training, evaluation and "
        f"serving).\npersona:\n  system: {json.dumps(text)}\n"
        if text
        else ""
    )
