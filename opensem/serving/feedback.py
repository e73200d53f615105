"""What people say of the answers a server gave: feedback on a recent completion (by its id), kept
in the answering expert's feedback folder, and answers given with sources, kept in its answers
log when the server records them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from opensem.serving.openai_api import ApiError
from opensem.serving.tenancy import unscoped

if TYPE_CHECKING:
    from opensem.serving.app import ServerState
    from opensem.serving.completions import Outcome

RECENT = 10_000  # completions remembered for feedback


class FeedbackRequest(BaseModel):
    """Feedback on a completion this server gave: a rating, an edited answer, or both."""

    model_config = ConfigDict(extra="forbid")

    completion_id: str = Field(min_length=1)
    rating: int | None = Field(None, ge=1, le=5)
    edited: str | None = Field(None, min_length=1)
    tags: list[str] = Field(default_factory=list)


def record_feedback(state: ServerState, owner: str | None, body: FeedbackRequest) -> dict[str, Any]:
    """Append the feedback to the answering expert's feedback folder, with the prompt and answer it refers to."""
    from opensem.errors import OpensemError
    from opensem.feedback.records import append_feedback, parse_rows

    completion = state.recent.get(body.completion_id)
    if completion is not None and not unscoped(owner, [completion["served_as"]]):
        completion = None  # another person's completion: as unknown as one never given
    if completion is None:
        raise ApiError(
            404,
            f"no recent completion {body.completion_id!r} on this server (it keeps the last {RECENT})",
            param="completion_id",
            code="completion_not_found",
        )
    served = state.pool.served.get(completion["served_as"])
    folder = served.release.feedback_dir if served is not None else None
    if folder is None:
        raise ApiError(
            400,
            f"{completion['model']!r} was not served from a manifest, so its feedback has no expert folder to go to",
            param="completion_id",
            code="feedback_unsupported",
        )
    row = {
        **body.model_dump(exclude={"completion_id"}),
        "prompt": completion["prompt"],
        "answer": completion["answer"],
        "model": completion["model"],
        "lot": completion["lot"],
        "completion_id": body.completion_id,
    }
    try:
        record = parse_rows([row], "feedback")[0]
        append_feedback(folder, [record])
    except OpensemError as exc:
        raise ApiError(400, exc.message, code="invalid_feedback") from None
    return {
        "object": "feedback",
        "id": record.id,
        "completion_id": body.completion_id,
        "model": completion["model"],
        "stored": True,
    }


def record_answer_with_sources(state: ServerState, outcome: Outcome, served: Any) -> None:
    """With --record-answers, an answer given with sources joins the expert's answers log."""
    folder = served.release.feedback_dir
    if not (state.config.record_answers and outcome.sources and folder is not None):
        return
    from opensem.knowledge.answers import AnswerRecord, record_answer, source_records

    question = state.recent.get(outcome.id, {}).get("prompt", outcome.prompt)
    record = AnswerRecord(
        question=question,
        answer=outcome.text,
        sources=source_records(outcome.sources),
        model=outcome.model,
        lot=served.release.lot,
    )
    record_answer(folder.parent / "answers", record)
