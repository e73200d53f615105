"""The ingest stage: raw documents and ready datasets in, one file of normalized records out.

Text files (.txt, .md) become document records with their whitespace normalized, so an edit that
only touches whitespace yields identical bytes and the stages after ingest are not rebuilt.
Dataset files (.jsonl, .json) are converted record by record from their detected or named format.
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath
from typing import Any, Iterator, Literal

from opensem.errors import DataError, Location, StageError
from opensem.formats import detect_format, make_record, normalize, record_kind
from opensem.lots import walk_files
from opensem.stages import register
from opensem.stages.base import StageContext, StageParams, StageResult

TEXT_SUFFIXES = (".txt", ".md")
DATASET_SUFFIXES = (".jsonl", ".json")
# Documents longer than this are cut on paragraph boundaries so a tiny model sees short texts.
MAX_CHUNK_CHARS = 2000
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class SourceSpec(StageParams):
    """One source of the manifest: the input slot carrying it, and how to read dataset files."""

    slot: str
    path: str  # as written in the manifest; only used in messages and as a fallback source name
    format: Literal["auto", "text", "alpaca", "sharegpt", "messages", "dpo"] = "auto"


class IngestParams(StageParams):
    sources: list[SourceSpec]


def normalize_text(text: str) -> str:
    """Strip trailing spaces per line, collapse runs of blank lines to one, strip the ends."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def chunk_text(text: str, limit: int = MAX_CHUNK_CHARS) -> list[str]:
    """Pack paragraphs greedily into chunks of at most limit characters; oversized ones are cut at sentences, then words."""
    if len(text) <= limit:
        return [text] if text else []
    pieces = [piece for paragraph in text.split("\n\n") for piece in _split_long(paragraph, limit)]
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current}\n\n{piece}" if current else piece
        if len(candidate) <= limit:
            current = candidate
        else:
            chunks.append(current)
            current = piece
    if current:
        chunks.append(current)
    return chunks


def _split_long(paragraph: str, limit: int) -> list[str]:
    if len(paragraph) <= limit:
        return [paragraph]
    parts: list[str] = []
    for sentence in _SENTENCE_END.split(paragraph):
        units = [sentence] if len(sentence) <= limit else _split_words(sentence, limit)
        for unit in units:
            if parts and len(parts[-1]) + 1 + len(unit) <= limit:
                parts[-1] = f"{parts[-1]} {unit}"
            else:
                parts.append(unit)
    return parts


def _split_words(sentence: str, limit: int) -> list[str]:
    """Cut a run-on sentence at spaces; a single word longer than limit is cut hard."""
    out: list[str] = []
    for word in sentence.split():
        while len(word) > limit:
            out.append(word[:limit])
            word = word[limit:]
        if out and len(out[-1]) + 1 + len(word) <= limit:
            out[-1] = f"{out[-1]} {word}"
        else:
            out.append(word)
    return out


def _source_name(file: Path, root: Path, spec: SourceSpec, project_root: Path) -> str:
    """The file's path relative to the project root, or as named in the manifest when outside it."""
    for path, base in ((file.absolute(), project_root.absolute()), (file.resolve(), project_root.resolve())):
        if path.is_relative_to(base):
            return path.relative_to(base).as_posix()
    inner = file.relative_to(root).as_posix() if file != root else ""
    return (PurePosixPath(spec.path) / inner).as_posix() if inner else PurePosixPath(spec.path).as_posix()


def _read_text(file: Path, source: str) -> str:
    """The file as text; a UTF-8 byte order mark is dropped so it cannot change the output."""
    try:
        return file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        where = Location(file=source)
        raise DataError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", where, hint="re-save the file as UTF-8") from exc


def _documents(file: Path, source: str) -> list[dict[str, Any]]:
    return [make_record(source, text=chunk) for chunk in chunk_text(normalize_text(_read_text(file, source)))]


def _raw_records(file: Path, source: str) -> Iterator[tuple[Any, Location]]:
    """Raw JSON records of a .jsonl (one per non-blank line) or .json (a list, or one object) file."""
    text = _read_text(file, source)
    if file.suffix.lower() == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = Location(file=source, line=number)
            try:
                yield json.loads(line), where
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON: {exc.msg}", where, hint="each line of a .jsonl file must be one JSON object") from exc
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON: {exc.msg}", Location(file=source, line=exc.lineno)) from exc
    items = data if isinstance(data, list) else [data]
    for index, item in enumerate(items):
        yield item, Location(file=source, key=f"[{index}]")


def _dataset(file: Path, source: str, fmt: str) -> list[dict[str, Any]]:
    """Normalize every record of a dataset file; with fmt auto the first record names the format."""
    records: list[dict[str, Any]] = []
    for raw, where in _raw_records(file, source):
        if fmt == "auto":
            fmt = detect_format(raw, where)
        records.append(normalize(raw, fmt, source, line=where.line, key=where.key))
    return records


@register
class Ingest:
    """Stage kind `ingest`: sources (files or directories) -> records.jsonl."""

    name = "ingest"
    version = "1"
    Params = IngestParams

    def run(self, params: IngestParams, inputs: dict[str, Path], out_dir: Path, ctx: StageContext) -> StageResult:
        records: list[dict[str, Any]] = []
        seen: set[str] = set()
        counts = {"files": 0, "ignored_files": 0, "empty_files": 0, "duplicates": 0}
        for spec in params.sources:
            for file, root in self._files(spec, inputs):
                suffix = file.suffix.lower()
                if suffix not in TEXT_SUFFIXES + DATASET_SUFFIXES:
                    counts["ignored_files"] += 1
                    ctx.log.debug("ingest: ignoring %s", file)
                    continue
                source = _source_name(file, root, spec, ctx.project_root)
                found = _documents(file, source) if suffix in TEXT_SUFFIXES else _dataset(file, source, spec.format)
                counts["files"] += 1
                counts["empty_files"] += 0 if found else 1
                for record in found:
                    if record["id"] in seen:
                        counts["duplicates"] += 1
                        continue
                    seen.add(record["id"])
                    records.append(record)
        if not records:
            raise DataError(
                f"no records found in {', '.join(s.path for s in params.sources) or 'no sources'}",
                hint=f"sources need .txt/.md documents or .jsonl/.json datasets; {counts['ignored_files']} other files were ignored",
            )
        kinds = {"instruction": 0, "document": 0, "preference": 0}
        for record in records:
            kinds[record_kind(record)] += 1
        out_dir.mkdir(parents=True, exist_ok=True)
        with open(out_dir / "records.jsonl", "w", encoding="utf-8", newline="\n") as handle:
            for record in records:
                handle.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")
        metrics = {
            "records": len(records),
            "instructions": kinds["instruction"],
            "documents": kinds["document"],
            "preferences": kinds["preference"],
            **counts,
        }
        summary = (
            f"{len(records)} records ({kinds['instruction']} instructions, {kinds['document']} documents, "
            f"{kinds['preference']} preferences) from {counts['files']} files"
        )
        return StageResult(summary=summary, metrics=metrics)

    @staticmethod
    def _files(spec: SourceSpec, inputs: dict[str, Path]) -> Iterator[tuple[Path, Path]]:
        """(file, source root) pairs of one source: the file itself, or its directory walked in sorted order."""
        if spec.slot not in inputs:
            raise StageError(f"source {spec.path!r} has no input for slot {spec.slot!r}", hint="the plan and the stage disagree; please report it")
        root = Path(inputs[spec.slot])
        if not root.exists():
            raise DataError(f"source does not exist: {root}", Location(file=spec.path), hint="check the path in the manifest")
        if root.is_dir():
            for file in walk_files(root):
                yield file, root
        else:
            yield root, root
