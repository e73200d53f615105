"""`opensem feedback add|import|list`: feedback on an expert's answers, kept with its data."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import click

from opensem.cli import cli, manifest_argument
from opensem.console import console


@cli.group("feedback")
def feedback_group() -> None:
    """Feedback on an expert's answers: ratings and edits that become training data on the next build."""


def _folder(manifest: Path) -> Path:
    from opensem.feedback.rules import feedback_folder
    from opensem.manifest.loader import load_manifest

    return Path(feedback_folder(load_manifest(manifest)))


@feedback_group.command("add")
@manifest_argument
@click.option("--prompt", help="The question the expert was asked (asked for when missing).")
@click.option("--answer", help="The answer it gave (asked for when missing).")
@click.option("--rating", type=click.IntRange(1, 5), help="1 (bad) to 5 (good).")
@click.option("--edited", help="The answer as it should have been.")
@click.option("--tag", "tags", multiple=True, help="A label (repeatable).")
@click.option(
    "--lot",
    help="Lot number of the release that answered. Default: the manifest's latest published release (from its lock).",
)
def feedback_add(
    manifest: Path,
    prompt: str | None,
    answer: str | None,
    rating: int | None,
    edited: str | None,
    tags: tuple[str, ...],
    lot: str | None,
) -> None:
    """Record one piece of feedback; asks for what the flags leave out."""
    from opensem.feedback.records import append_feedback, parse_rows

    folder = _folder(manifest)
    lot, assumed = (lot, "") if lot else _published_lot(manifest)
    prompt = prompt or click.prompt("Question asked")
    answer = answer if answer is not None else click.prompt("Answer given")
    if rating is None and edited is None:
        rating = click.prompt(
            "Rating, 1 (bad) to 5 (good); empty to skip",
            default="",
            show_default=False,
            value_proc=lambda v: int(v) if v else None,
        )
        edited = (
            click.prompt("Better answer; empty to skip", default="", show_default=False) or None
        )
    record = parse_rows(
        [
            {
                "prompt": prompt,
                "answer": answer,
                "rating": rating,
                "edited": edited,
                "tags": list(tags),
                "lot": lot,
            }
        ],
        "feedback add",
    )[0]
    path = append_feedback(folder, [record])
    console.print(
        f"recorded in {path}{assumed}; `opensem build {manifest}` turns it into training data"
    )


def _published_lot(manifest: Path) -> tuple[str | None, str]:
    """The lot of the manifest's latest published release and a note saying it was assumed."""
    from opensem.core.layout import lock_path
    from opensem.core.lock import read_lock

    published = (read_lock(lock_path(manifest)) or {}).get("published") or {}
    if not published.get("lot"):
        return (
            None,
            " (no published release of this manifest yet: recorded without a lot, so no build reviews it against one)",
        )
    return (
        published["lot"],
        f" against release {published.get('tag')} (lot {published['lot'][:12]}, the latest published; --lot names "
        "another)",
    )


@feedback_group.command("import")
@manifest_argument
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
def feedback_import(manifest: Path, file: Path) -> None:
    """Append feedback records from a JSONL file, every one checked first (nothing is appended if one is bad)."""
    from opensem.errors import DataError, Location
    from opensem.feedback.records import append_feedback, parse_rows

    rows = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"not JSON: {exc.msg}",
                    Location(file=str(file), line=number),
                    "each line is one JSON object",
                ) from None
    records = parse_rows(rows, str(file))
    path = append_feedback(_folder(manifest), records)
    console.print(f"imported {len(records)} records into {path}")


@feedback_group.command("list")
@manifest_argument
def feedback_list(manifest: Path) -> None:
    """How much feedback an expert has: ratings, edits, tags, and the latest records."""
    from rich.table import Table

    from opensem.feedback.records import read_folder

    records, warnings = read_folder(_folder(manifest))
    for warning in warnings:
        console.print(f"[yellow]{warning}[/]")
    ratings = Counter(r.rating for r in records if r.rating is not None)
    tags = Counter(tag for r in records for tag in r.tags)
    console.print(
        f"{len(records)} records: {sum(r.edited is not None for r in records)} edits; ratings "
        + (", ".join(f"{k}: {ratings[k]}" for k in sorted(ratings)) or "none")
        + (f"; tags {dict(tags.most_common(5))}" if tags else "")
    )
    table = Table(title="latest", title_justify="left")
    for column in ("when", "rating", "prompt", "edited", "lot"):
        table.add_column(column)
    for r in sorted(records, key=lambda r: r.created)[-10:]:
        table.add_row(
            r.created,
            str(r.rating or "-"),
            r.prompt[:50],
            "yes" if r.edited else "",
            (r.lot or "-")[:12],
        )
    console.print(table)
