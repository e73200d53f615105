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

from collections.abc import Callable
from pathlib import Path

from opensem.data import corpus
from opensem.errors import UsageError

DOCUMENT_SUFFIXES = corpus.DOCUMENT_SUFFIXES + corpus.DATASET_SUFFIXES  # what ingest reads
Ask = Callable[..., str]


def guided(root: Path, name: str, ask: Ask, say: Callable[[str], None]) -> Path:
    """Ask, then write and check the expert (as the browser's form does); returns the manifest."""
    from opensem.manifest.new_expert import BASE_MODELS, Document, ExpertAnswers, create_expert
    from opensem.project import load_graph

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
    answers = ExpertAnswers(name=name)
    answers.description = ask("In one line, what does this expert know?").strip()
    answers.persona = ask(
        "How should it answer? (a style guide, e.g. 'Friendly and brief, like a shop assistant'; "
        "empty for none)",
        default="",
    ).strip()
    teacher = (
        ask(
            "Who writes the training questions from your documents? offline (no account needed), "
            "local (a model on this machine) or openai (an OpenAI-compatible API)",
            default="offline",
        )
        .strip()
        .lower()
    )
    if teacher not in ("offline", "local", "openai"):
        raise UsageError(f"unknown teacher {teacher!r}", hint="answer offline, local or openai")
    answers.teacher = (
        "openai" if teacher == "openai" else "local" if teacher == "local" else "offline"
    )
    if answers.teacher == "local":
        answers.teacher_model = ask("The local model: a folder, a release folder or a hub id")
    if answers.teacher == "openai":
        answers.teacher_model = ask("Teacher model", default=answers.teacher_model)
        answers.teacher_base_url = ask("Teacher API base URL", default=answers.teacher_base_url)
        answers.teacher_key_env = ask(
            "Environment variable holding the API key", default=answers.teacher_key_env
        )
    choices = " or ".join(f"{key} ({text})" for key, text in BASE_MODELS.items())
    answers.base = ask(
        f"Base model to adapt: {choices}, or a hub id like Qwen/Qwen2.5-0.5B-Instruct",
        default=answers.base,
    ).strip()
    answers.knowledge = (
        ask(
            "Also build a knowledge base of the documents, so `opensem ask` answers cite them? "
            "yes or no",
            default="yes",
        )
        .strip()
        .lower()
        .startswith("y")
    )
    say(
        "Now a few questions the expert must answer well, with the right answers (they are how it "
        "is scored; empty question to stop)."
    )
    while True:
        question = ask(f"Example question {len(answers.golden) + 1}", default="").strip()
        if not question:
            break
        answers.golden.append({"question": question, "answer": ask("Its right answer").strip()})
    named = [Document(file.relative_to(documents).as_posix(), file) for file in files]
    return create_expert(root, answers, named, load_graph)
