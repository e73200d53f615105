"""The ingest stage: raw documents and ready datasets in, one file of normalized records out.

Documents (.txt, .md, and .pdf through pypdf) are cut into chunks (data.chunking) and become
document records whose id is the digest of the chunk's text, with whitespace normalized, so an
edit that only touches whitespace yields identical bytes and nothing after ingest is rebuilt.
Dataset files (.jsonl, .json) are converted record by record from their detected or named format.
A source is a file or folder (an input slot), a glob filtered inside its base folder, or an fsspec
URL downloaded here and checked against the listing fingerprint that planning put in the lot.
"""

from __future__ import annotations

import json
import shutil
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any, Iterator, Literal

from pydantic import Field

from opensem.build.digests import sha256_text, usable_cores, walk_files
from opensem.build.graph import Input
from opensem.data.chunking import ChunkingConfig, chunk_text, normalize_text
from opensem.data.pages import drop_running_lines
from opensem.data.formats import detect_format, normalize, record_kind
from opensem.data.parallel import ordered_map
from opensem.data.records import render_records
from opensem.data.sources import DataSource, SourceSpec, glob_base, glob_matches, is_glob, is_url, remote_fingerprint
from opensem.errors import DataError, Location, StageError
from opensem.feedback.records import read_folder
from opensem.feedback.rules import FeedbackConfig, to_training_records, use_for
from opensem.manifest.fields import unset_keeps_lots
from opensem.manifest.sections import section, sections_from
from opensem.stages import register
from opensem.stages.base import StageContext, StageParams, StageResult
from opensem.stages.wiring import Wiring

TEXT_SUFFIXES = (".txt", ".md")
PDF_SUFFIXES = (".pdf",)
DOCUMENT_SUFFIXES = TEXT_SUFFIXES + PDF_SUFFIXES
DATASET_SUFFIXES = (".jsonl", ".json")
PARALLEL_BYTES = 32 << 20  # a corpus this large is parsed on every core; a smaller one here, as starting workers costs more


class IngestParams(StageParams):
    sources: list[SourceSpec]
    chunking: ChunkingConfig = Field(default_factory=ChunkingConfig, description="How documents are cut into chunks (characters).")
    feedback: FeedbackConfig | None = unset_keeps_lots(description="How feedback on the expert's answers becomes training data.")
    feedback_use: Literal["sft", "preference", "kto"] | None = unset_keeps_lots(description="What the feedback becomes, resolved for the training method.")


def _source_name(file: Path, root: Path, spec: SourceSpec, project_root: Path) -> str:
    """The file's path relative to the project root, or named from the manifest's path or URL."""
    if spec.remote is None:
        for path, base in ((file.absolute(), project_root.absolute()), (file.resolve(), project_root.resolve())):
            if path.is_relative_to(base):
                return path.relative_to(base).as_posix()
    inner = file.relative_to(root).as_posix() if file != root else ""
    if spec.remote is not None:
        return f"{spec.path.rstrip('/')}/{inner}" if inner and inner != PurePosixPath(spec.path).name else spec.path
    return (PurePosixPath(spec.path) / inner).as_posix() if inner else PurePosixPath(spec.path).as_posix()


def _read_text(file: Path, source: str) -> str:
    """The file as text; a UTF-8 byte order mark is dropped so it cannot change the output."""
    try:
        return file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        where = Location(file=source)
        raise DataError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", where, hint="re-save the file as UTF-8") from exc


def _read_pdf(file: Path, source: str) -> str:
    """The text layer of a PDF, page by page (pages become paragraphs), without running headers and footers."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(file)
        if reader.is_encrypted and not reader.decrypt(""):
            raise DataError("the PDF is encrypted", Location(file=source), hint="save an unencrypted copy of it")
        pages = [page.extract_text() or "" for page in reader.pages]
    except DataError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise DataError(f"cannot read PDF: {exc}", Location(file=source), hint="check that the file is a valid PDF") from exc
    pages, _ = drop_running_lines(pages)  # running headers and footers, page numbers: noise inside chunks
    return "\n\n".join(normalize_text(page) for page in pages)


def _chunks(file: Path, source: str, chunking: ChunkingConfig) -> list[str]:
    text = _read_pdf(file, source) if file.suffix.lower() in PDF_SUFFIXES else _read_text(file, source)
    return chunk_text(normalize_text(text), chunking.size, chunking.overlap)


def document_lines(source: str, chunks: list[str]) -> list[tuple[str, str, str]]:
    """(id, kind, jsonl line) of each chunk's document record: the bytes make_record and write_records
    give, with each chunk encoded once for both its id and its line (most of ingest's time on a corpus)."""
    name = json.dumps(source, ensure_ascii=False)
    found = []
    for chunk in chunks:
        text = json.dumps(chunk, ensure_ascii=False)
        record_id = sha256_text(f'{{"text":{text}}}')[:16]  # canonical_json({"text": chunk})
        found.append((record_id, "document", f'{{"id": "{record_id}", "source": {name}, "text": {text}}}\n'))
    return found


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


def _rendered(records: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(id, kind, jsonl line) of each record, the line exactly as write_records writes it."""
    return [(record["id"], record_kind(record), render_records([record])) for record in records]


def _read_file(chunking: ChunkingConfig, task: tuple[Path, str, str]) -> list[tuple[str, str, str]]:
    """One source file's records, rendered (runs in a worker process for a large corpus)."""
    file, source, fmt = task
    if file.suffix.lower() in DOCUMENT_SUFFIXES:
        return document_lines(source, _chunks(file, source, chunking))
    return _rendered(_dataset(file, source, fmt))


@register
class Ingest:
    """Stage kind `ingest`: sources (files, folders, globs, URLs) -> records.jsonl."""

    name = "ingest"
    version = "3"  # 3: PDFs lose their running headers and footers; 2: chunking as the data.chunking section
    Params = IngestParams
    sections = (
        section(
            "data.sources", list[DataSource] | None, None, min_length=1,
            description="Where the data is; defaults to data/<job_id>/raw/ (every file in it).",
        ),
        *sections_from(IngestParams, "chunking", under="data."),
        section("feedback", FeedbackConfig | None, None, description="Feedback on the expert's answers as training data; on by default when data/<job_id>/feedback/ exists."),
    )

    def wire(self, wiring: Wiring) -> None:
        """Local paths and glob bases become input slots; a URL is listed now, so its fingerprint keys the lot."""
        slots: dict[str, Input | None] = {}
        specs: list[SourceSpec] = []
        explicit = wiring.manifest.data.sources is not None
        for index, source in enumerate(wiring.loaded.sources()):
            key = ("data", "sources", index, "path") if explicit else ("data", "sources")
            slot = f"source{index}"
            spec = SourceSpec(**source.model_dump(), slot=slot)
            if is_url(source.path):
                try:
                    spec = spec.model_copy(update={"slot": None, "remote": remote_fingerprint(source.path)})
                except Exception as exc:  # any backend error (missing bucket, no network, no credentials)
                    wiring.problem(key, f"cannot list {source.path}: {type(exc).__name__}: {exc}", "check the URL, the network and the credentials fsspec reads from the environment")
            elif is_glob(source.path):
                base = glob_base(source.path)
                slots[slot] = found = wiring.source(base, key)
                if found is not None:  # the base is inside the project: read only what matches below it
                    if not glob_matches(wiring.loaded.project_root, source.path):
                        wiring.problem(key, f"glob {source.path!r} matches no file", f"fix the pattern; it is matched against paths relative to {wiring.loaded.project_root} (** spans folders)")
                    rest = PurePosixPath(source.path).relative_to(base).as_posix() if base != "." else source.path
                    spec = spec.model_copy(update={"pattern": rest if found.path == "." else f"{found.path}/{rest}"})
            elif not explicit and not (wiring.loaded.project_root / source.path).exists():
                # No data of its own: fine for a manifest whose model comes from elsewhere (a merge).
                hint = "put the expert's documents and datasets there, list them under data.sources, or merge other experts (merge)"
                wiring.unless_provided("adapter", key, f"path {source.path!r} does not exist (the default when data.sources is not set)", hint)
                return
            else:
                slots[slot] = wiring.source(source.path, key)
            specs.append(spec)
        feedback, use = self._feedback(wiring, slots)
        params = IngestParams(sources=specs, chunking=wiring.section("data.chunking"), feedback=feedback, feedback_use=use)
        wiring.add(self, params, slots, provides=("records", "documents"), volatile=any(spec.remote for spec in specs))

    @staticmethod
    def _feedback(wiring: Wiring, slots: dict[str, Input | None]) -> tuple[FeedbackConfig | None, Any]:
        """The feedback folder as an input (its records key the lot) and the shape the method trains on."""
        from opensem.training.methods import get_method

        config = wiring.manifest.feedback
        folder = config.path if config is not None and config.path else f"data/{wiring.manifest.job_id}/feedback"
        if not wiring.exists(folder) and config is None:
            return None, None
        config = config or FeedbackConfig()
        slots["feedback"] = wiring.source(folder, ("feedback", "path"))
        return config, use_for(config, get_method(wiring.manifest.method_config.type).shapes)

    def run(self, params: IngestParams, inputs: dict[str, Path], out_dir: Path, ctx: StageContext) -> StageResult:
        seen: set[str] = set()
        kinds = {"instruction": 0, "document": 0, "preference": 0, "feedback": 0}
        counts = {"files": 0, "ignored_files": 0, "empty_files": 0, "duplicates": 0, "pdf_files": 0}
        files: list[tuple[Path, str, str]] = []  # (file, source name, dataset format)
        for index, spec in enumerate(params.sources):
            for file, root in self._files(spec, inputs, ctx.work_dir / "remote" / str(index)):
                if file.suffix.lower() not in DOCUMENT_SUFFIXES + DATASET_SUFFIXES:
                    counts["ignored_files"] += 1
                    ctx.log.debug("ingest: ignoring %s", file)
                    continue
                files.append((file, _source_name(file, root, spec, ctx.project_root), spec.format))
        workers = usable_cores() if sum(file.stat().st_size for file, _, _ in files) >= PARALLEL_BYTES else 1
        out_dir.mkdir(parents=True, exist_ok=True)
        with (out_dir / "records.jsonl").open("w", encoding="utf-8") as out:

            def keep(found: list[tuple[str, str, str]]) -> None:
                for record_id, kind, line in found:
                    if record_id in seen:
                        counts["duplicates"] += 1
                        continue
                    seen.add(record_id)
                    kinds[kind] += 1
                    out.write(line)

            if params.feedback is not None and params.feedback_use is not None and "feedback" in inputs:
                found, warnings = read_folder(inputs["feedback"])
                for warning in warnings:
                    ctx.log.warning("ingest: %s", warning)
                converted = to_training_records(found, params.feedback, params.feedback_use, "feedback")
                ctx.log.info("ingest: %d feedback records -> %d %s examples", len(found), len(converted), params.feedback_use)
                keep(_rendered(converted))
            bar = ctx.progress("ingest: files", len(files))
            for (file, source, _), found in zip(files, ordered_map(partial(_read_file, params.chunking), files, workers)):
                is_pdf = file.suffix.lower() in PDF_SUFFIXES
                counts["files"] += 1
                counts["pdf_files"] += is_pdf
                counts["empty_files"] += 0 if found else 1
                if not found and is_pdf:
                    ctx.log.warning("ingest: %s has no text layer (a scan?); it adds nothing", source)
                keep(found)
                bar.advance()
            bar.close()
        shutil.rmtree(ctx.work_dir / "remote", ignore_errors=True)
        records = len(seen)
        if not records:
            raise DataError(
                f"no records found in {', '.join(s.path for s in params.sources) or 'no sources'}",
                hint=f"sources need .txt/.md/.pdf documents or .jsonl/.json datasets; {counts['ignored_files']} other files were ignored",
            )
        metrics = {"records": records, "instructions": kinds["instruction"], "documents": kinds["document"], "preferences": kinds["preference"], **counts}
        summary = (
            f"{records} records ({kinds['instruction']} instructions, {kinds['document']} documents, "
            f"{kinds['preference']} preferences) from {counts['files']} files"
        )
        return StageResult(summary=summary, metrics=metrics)

    @staticmethod
    def _files(spec: SourceSpec, inputs: dict[str, Path], download_to: Path) -> Iterator[tuple[Path, Path]]:
        """(file, source root) pairs of one source, in sorted order."""
        if spec.remote is not None:
            yield from _remote_files(spec, download_to)
            return
        if spec.slot is None or spec.slot not in inputs:
            raise StageError(f"source {spec.path!r} has no input for slot {spec.slot!r}", hint="the plan and the stage disagree; please report it")
        root = Path(inputs[spec.slot])
        if not root.exists():
            raise DataError(f"source does not exist: {root}", Location(file=spec.path), hint="check the path in the manifest")
        files = walk_files(root) if root.is_dir() else [root]
        if spec.pattern is not None:
            from opensem.data.sources import glob_regex

            regex, base = glob_regex(spec.pattern), PurePosixPath(glob_base(spec.pattern))
            files = [f for f in files if regex.match((base / f.relative_to(root).as_posix()).as_posix() if f != root else base.as_posix())]
        for file in files:
            yield file, root


def _remote_files(spec: SourceSpec, download_to: Path) -> Iterator[tuple[Path, Path]]:
    """Download a URL source and check it is still what planning fingerprinted."""
    from opensem.data.sources import fetch

    shutil.rmtree(download_to, ignore_errors=True)
    download_to.mkdir(parents=True)
    try:
        files, fingerprint = fetch(spec.path, download_to)
    except (OSError, ValueError, ImportError) as exc:
        raise DataError(f"cannot download {spec.path}: {exc}", Location(file=spec.path), hint="check the URL, the network and credentials") from exc
    if fingerprint != spec.remote:
        raise DataError(
            f"{spec.path} changed since the build was planned",
            Location(file=spec.path),
            hint="build again: the new listing gets a new lot number",
        )
    for file in files:
        yield file, download_to
