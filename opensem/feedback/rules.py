"""Feedback becomes training data: the manifest's `feedback` section and the conversion.

- sft: each edited answer is an example (the prompt and the edit); well-rated answers that were
  not edited are examples too.
- preference (dpo, orpo): each edit is a pair (edit chosen over the original); for one prompt,
  each well-rated answer is chosen over each badly-rated one. Equal ratings make no pair.
- kto: an edit is a good completion and its original a bad one; well-rated answers are good,
  badly-rated ones bad; ratings in between say nothing.

`auto` picks the shape the manifest's training method trains on. The records are ordinary
normalized records with ids from their content, so new feedback changes the ingest output only by
the examples it adds, and a rebuild reruns only what those reach.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from opensem.data.formats import make_record
from opensem.feedback.records import FeedbackRecord
from opensem.settings.fields import Section, invalid

Use = Literal["sft", "preference", "kto"]


class FeedbackConfig(Section):
    path: str | None = Field(
        None,
        description="Folder (or file) of feedback records; defaults to data/<job_id>/feedback/ when it exists.",
    )
    use: Literal["auto", "sft", "preference", "kto"] = Field(
        "auto",
        description=(
            "What feedback becomes: sft examples, preference pairs or kto labels; auto: what the "
            "training method trains on."
        ),
    )
    min_good_rating: int = Field(
        4, ge=1, le=5, description="A rating at or above this makes an answer good."
    )
    max_bad_rating: int = Field(
        2, ge=1, le=5, description="A rating at or below this makes an answer bad."
    )
    edits: Literal["newest", "all"] = Field(
        "newest",
        description="Several edits of one answer to one prompt: keep the newest, or all of them.",
    )
    dedupe: bool = Field(
        True, description="The same prompt, answer and verdict given twice counts once."
    )

    @model_validator(mode="after")
    def _bands(self) -> FeedbackConfig:
        if self.max_bad_rating >= self.min_good_rating:
            raise invalid(
                f"max_bad_rating ({self.max_bad_rating}) must be below min_good_rating ({self.min_good_rating})"
            )
        return self


def use_for(config: FeedbackConfig, method_shapes: tuple[tuple[str, ...], ...]) -> Use:
    """The shape feedback takes: as configured, or the one the method trains on."""
    if config.use != "auto":
        return config.use
    fields = {f for shape in method_shapes for f in shape}
    return "kto" if "label" in fields else "preference" if "chosen" in fields else "sft"


def to_training_records(
    feedback: list[FeedbackRecord], config: FeedbackConfig, use: Use, source: str
) -> list[dict[str, Any]]:
    """Normalized records (ids from content, in a stable order) from feedback, by the section's rules."""
    edits: dict[tuple[str, str], list[FeedbackRecord]] = {}
    for record in sorted(feedback, key=lambda r: r.created):
        if record.edited is not None:
            edits.setdefault((record.prompt, record.answer), []).append(record)
    kept_edits = [
        (prompt, answer, r.edited)
        for (prompt, answer), found in edits.items()
        for r in (found[-1:] if config.edits == "newest" else found)
    ]
    rated = [(r, r.rating) for r in feedback if r.rating is not None and r.edited is None]
    good = [(r.prompt, r.answer) for r, rating in rated if rating >= config.min_good_rating]
    bad = [(r.prompt, r.answer) for r, rating in rated if rating <= config.max_bad_rating]

    out: list[dict[str, Any]] = []
    if use == "sft":
        out += [
            make_record(
                source,
                messages=[{"role": "user", "content": p}, {"role": "assistant", "content": str(e)}],
            )
            for p, _, e in kept_edits
        ]
        out += [
            make_record(
                source,
                messages=[{"role": "user", "content": p}, {"role": "assistant", "content": a}],
            )
            for p, a in good
        ]
    elif use == "preference":
        out += [make_record(source, prompt=p, chosen=str(e), rejected=a) for p, a, e in kept_edits]
        out += [
            make_record(source, prompt=p, chosen=g, rejected=b)
            for p, g in good
            for q, b in bad
            if q == p and g != b
        ]
    else:
        out += [
            make_record(source, prompt=p, completion=str(e), label=True) for p, _, e in kept_edits
        ]
        out += [make_record(source, prompt=p, completion=a, label=False) for p, a, _ in kept_edits]
        out += [make_record(source, prompt=p, completion=a, label=True) for p, a in good]
        out += [make_record(source, prompt=p, completion=a, label=False) for p, a in bad]
    if config.dedupe:
        unique = {record["id"]: record for record in out}
        out = list(unique.values())
    return sorted(out, key=lambda record: record["id"])


def feedback_folder(loaded: Any) -> Any:
    """Where a manifest's feedback is kept: its `feedback.path`, else data/<job_id>/feedback/."""
    config = loaded.manifest.feedback
    return loaded.project_root / (
        config.path
        if config is not None and config.path
        else f"data/{loaded.manifest.job_id}/feedback"
    )
