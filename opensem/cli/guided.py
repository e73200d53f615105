"""`opensem init --guided`: a new expert from a few plain questions, for someone who has documents
and knows what the expert should sound like, but has never written a manifest.

It asks for the documents, a one-line description, a persona (how answers should sound), who
writes the training questions (offline templates, or an OpenAI-compatible teacher), the base
model, whether to build a knowledge base of the documents, and a few example questions with
their answers (the golden set the expert is scored on).
The documents are copied into data/NAME/raw/, the manifest is written by the same template as
`opensem init`, and validated before the next steps are shown.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from opensem.data import corpus
from opensem.errors import UsageError

DOCUMENT_SUFFIXES = corpus.DOCUMENT_SUFFIXES + corpus.DATASET_SUFFIXES  # what ingest reads
Ask = Callable[..., str]


def guided(root: Path, name: str, ask: Ask, say: Callable[[str], None]) -> Path:
    """Ask, copy, write and validate; returns the manifest's path."""
    from opensem.manifest.scaffold import scaffold

    documents = Path(ask("Folder with your documents (.txt, .md, .pdf)")).expanduser()
    files = (
        sorted(
            p for p in documents.rglob("*") if p.is_file() and p.suffix.lower() in DOCUMENT_SUFFIXES
        )
        if documents.is_dir()
        else []
    )
    if not files:
        raise UsageError(
            f"no documents found in {documents}",
            hint=f"point at a folder holding {', '.join(DOCUMENT_SUFFIXES)} files",
        )
    say(f"found {len(files)} documents")
    description = ask("In one line, what does this expert know?").strip()
    persona = ask(
        "How should it answer? (a style guide, e.g. 'Friendly and brief, like a shop assistant'; empty for none)",
        default="",
    ).strip()
    teacher = (
        ask(
            "Who writes the training questions from your documents? offline (no account needed) or openai",
            default="offline",
        )
        .strip()
        .lower()
    )
    filled = {
        "description": json.dumps(description or f"{name} expert"),
        "persona": _persona(persona),
        "publish_note": ":",
        "publish": 'publish_target:\n  registry: build/registry\n  tag: "v1-{lot}"\n',
    }
    if teacher == "openai":
        model = ask("Teacher model", default="gpt-4o-mini")
        base_url = ask("Teacher API base URL", default="https://api.openai.com/v1")
        key_env = ask("Environment variable holding the API key", default="OPENAI_API_KEY")
        filled["teacher"] = (
            f"provider: openai\n  model: {model}\n  base_url: {base_url}\n  api_key_env: {key_env}"
        )
    elif teacher != "offline":
        raise UsageError(f"unknown teacher {teacher!r}", hint="answer offline or openai")
    base = ask(
        "Base model to adapt: smollm2 (SmolLM2-135M-Instruct, a real model fetched from the package index), "
        "tiny (a small random test model, seconds on any laptop) or a hub id like Qwen/Qwen2.5-0.5B-Instruct",
        default="tiny",
    ).strip()
    filled["base_model"] = _base_model(base)
    knowledge = (
        ask(
            "Also build a knowledge base of the documents, so `opensem ask` answers cite them? yes or no",
            default="yes",
        )
        .strip()
        .lower()
        .startswith("y")
    )
    golden: list[dict[str, str]] = []
    say(
        "Now a few questions the expert must answer well, with the right answers (they are how it is scored; empty "
        "question to stop)."
    )
    while True:
        question = ask(f"Example question {len(golden) + 1}", default="").strip()
        if not question:
            break
        golden.append({"question": question, "answer": ask("Its right answer").strip()})
    made = scaffold(root, name, filled)
    raw = root / "data" / name / "raw"
    for file in files:
        target = raw / file.relative_to(documents)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, target)
    if golden:
        (root / "data" / name / "golden" / "golden.jsonl").write_text(
            "".join(json.dumps(g, ensure_ascii=False) + "\n" for g in golden), encoding="utf-8"
        )
    manifest = next(path for path in made if path.suffix == ".yaml")
    if knowledge:
        with manifest.open("a", encoding="utf-8") as handle:
            handle.write(
                "\n# The documents, chunked and embedded: `opensem ask` answers with numbered sources.\n"
                "knowledge: {}\n"
            )
    _validate(manifest)
    return manifest


def _base_model(answer: str) -> str:
    """The base_model value as YAML after the key: a tiny spec, SmolLM2's GGUF source, or the hub id given."""
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
        "\n# How every answer should sound (the system message in training, evaluation and serving).\npersona:\n  "
        f"system: {json.dumps(text)}\n"
        if text
        else ""
    )


def _validate(manifest: Path) -> None:
    from opensem.project import load_graph

    load_graph(
        manifest
    )  # a manifest the guided flow wrote must build; any problem is shown as usual
