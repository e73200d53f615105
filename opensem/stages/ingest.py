"""The ingest stage: raw documents and ready datasets in, one file of normalized records out.

Documents (.txt, .md, and .pdf through pypdf) are cut into chunks (data.chunking) and become
document records whose id is the digest of the chunk's text, with whitespace normalized, so an
edit that only touches whitespace yields identical bytes and nothing after ingest is rebuilt.
Dataset files (.jsonl, .json) are converted record by record from their detected or named format
(opensem.data.corpus, on every core for a large corpus). A source is a file or folder (an input
slot), a glob filtered inside its base folder, or an fsspec URL downloaded here and checked
against the listing fingerprint that planning put in the lot.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Literal

from pydantic import Field

from opensem.core.digests import walk_files
from opensem.core.graph import Input
from opensem.data.chunking import ChunkingConfig
from opensem.data.corpus import (
    DATASET_SUFFIXES,
    DOCUMENT_SUFFIXES,
    PDF_SUFFIXES,
    BatchRead,
    SourceFile,
    batches,
    read_batch,
    record_lines,
)
from opensem.data.parallel import ordered_map, workers_for
from opensem.data.sources import (
    DataSource,
    SourceSpec,
    glob_base,
    glob_matches,
    is_glob,
    is_url,
    remote_fingerprint,
)
from opensem.errors import DataError, Location, StageError
from opensem.feedback.records import read_folder
from opensem.feedback.rules import FeedbackConfig, to_training_records, use_for
from opensem.settings.fields import unset_keeps_lots
from opensem.settings.sections import section, sections_from
from opensem.stages import register
from opensem.stages.base import StageContext, StageParams, StageResult
from opensem.stages.wiring import Wiring


class IngestParams(StageParams):
    sources: list[SourceSpec]
    chunking: ChunkingConfig = Field(
        default_factory=ChunkingConfig,
        description="How documents are cut into chunks (characters).",
    )
    feedback: FeedbackConfig | None = unset_keeps_lots(
        description="How feedback on the expert's answers becomes training data."
    )
    feedback_use: Literal["sft", "preference", "kto"] | None = unset_keeps_lots(
        description="What the feedback becomes, resolved for the training method."
    )


def _source_name(file: Path, root: Path, spec: SourceSpec, project_root: Path) -> str:
    """The file's path relative to the project root, or named from the manifest's path or URL."""
    if spec.remote is None:
        for way in (Path.absolute, Path.resolve):  # resolve (a syscall per folder) only when needed
            path, base = way(file), way(project_root)
            if path.is_relative_to(base):
                return path.relative_to(base).as_posix()
    inner = file.relative_to(root).as_posix() if file != root else ""
    if spec.remote is not None:
        return (
            f"{spec.path.rstrip('/')}/{inner}"
            if inner and inner != PurePosixPath(spec.path).name
            else spec.path
        )
    return (
        (PurePosixPath(spec.path) / inner).as_posix()
        if inner
        else PurePosixPath(spec.path).as_posix()
    )


class KeptRecords:
    """The output file and the ids written to it: a record whose id was already written is dropped."""

    def __init__(self, out: BinaryIO, counts: dict[str, int]) -> None:
        self.out, self.counts = out, counts
        self.ids: set[str] = set()
        self.kinds = {"instruction": 0, "document": 0, "preference": 0, "feedback": 0}

    def add(self, record_id: str, kind: str, line: bytes) -> None:
        """Keep a record unless its id was seen (counted as a duplicate)."""
        if record_id in self.ids:
            self.counts["duplicates"] += 1
            return
        self.ids.add(record_id)
        self.kinds[kind] += 1
        self.out.write(line)

    def add_part(self, read: BatchRead) -> None:
        """A batch's part file: copied whole in the usual case, line by line when it repeats an id."""
        records = [record for file in read.records for record in file]
        ids = [record_id for record_id, _ in records]
        if self.ids.isdisjoint(ids) and len(set(ids)) == len(ids):
            self.ids.update(ids)
            for _, kind in records:
                self.kinds[kind] += 1
            with read.part.open("rb") as part:
                shutil.copyfileobj(part, self.out, 1 << 20)
            return
        with read.part.open("rb") as part:
            for (record_id, kind), line in zip(records, part):
                self.add(record_id, kind, line)


@register
class Ingest:
    """Stage kind `ingest`: sources (files, folders, globs, URLs) -> records.jsonl."""

    name = "ingest"
    holds = "documents"
    version = "3"  # 3: PDFs lose their running headers and footers; 2: chunking as the data.chunking section
    Params = IngestParams
    sections = (
        section(
            "data.sources",
            list[DataSource] | None,
            None,
            min_length=1,
            description="Where the data is; defaults to data/<job_id>/raw/ (every file in it).",
        ),
        *sections_from(IngestParams, "chunking", under="data."),
        section(
            "feedback",
            FeedbackConfig | None,
            None,
            description=(
                "Feedback on the expert's answers as training data; on by default when "
                "data/<job_id>/feedback/ exists."
            ),
        ),
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
                    spec = spec.model_copy(
                        update={"slot": None, "remote": remote_fingerprint(source.path)}
                    )
                # Any backend error (missing bucket, no network, no credentials)
                except Exception as exc:
                    wiring.problem(
                        key,
                        f"cannot list {source.path}: {type(exc).__name__}: {exc}",
                        "check the URL, the network and the credentials fsspec reads from the environment",
                    )
            elif is_glob(source.path):
                base = glob_base(source.path)
                slots[slot] = found = wiring.source(base, key)
                # The base is inside the project: read only what matches below it
                if found is not None:
                    if not glob_matches(wiring.loaded.project_root, source.path):
                        wiring.problem(
                            key,
                            f"glob {source.path!r} matches no file",
                            f"fix the pattern; it is matched against paths relative to {wiring.loaded.project_root} "
                            "(** spans folders)",
                        )
                    rest = (
                        PurePosixPath(source.path).relative_to(base).as_posix()
                        if base != "."
                        else source.path
                    )
                    spec = spec.model_copy(
                        update={"pattern": rest if found.path == "." else f"{found.path}/{rest}"}
                    )
            elif not explicit and not (wiring.loaded.project_root / source.path).exists():
                # No data of its own: fine for a manifest whose model comes from elsewhere (a merge).
                hint = (
                    "put the expert's documents and datasets there, list them under data.sources, "
                    "or merge other experts (merge)"
                )
                wiring.unless_provided(
                    "adapter",
                    key,
                    f"path {source.path!r} does not exist (the default when data.sources is not set)",
                    hint,
                )
                return
            else:
                slots[slot] = wiring.source(source.path, key)
            specs.append(spec)
        feedback, use = self._feedback(wiring, slots)
        params = IngestParams(
            sources=specs,
            chunking=wiring.section("data.chunking"),
            feedback=feedback,
            feedback_use=use,
        )
        wiring.add(
            self,
            params,
            slots,
            provides=("records", "documents"),
            volatile=any(spec.remote for spec in specs),
        )

    @staticmethod
    def _feedback(
        wiring: Wiring, slots: dict[str, Input | None]
    ) -> tuple[FeedbackConfig | None, Any]:
        """The feedback folder as an input (its records key the lot) and the shape the method trains on."""
        from opensem.training.methods import get_method

        config = wiring.manifest.feedback
        folder = (
            config.path
            if config is not None and config.path
            else f"data/{wiring.manifest.job_id}/feedback"
        )
        if not wiring.exists(folder) and config is None:
            return None, None
        config = config or FeedbackConfig()
        slots["feedback"] = wiring.source(folder, ("feedback", "path"))
        return config, use_for(config, get_method(wiring.manifest.method_config.type).shapes)

    def run(
        self, params: IngestParams, inputs: dict[str, Path], out_dir: Path, ctx: StageContext
    ) -> StageResult:
        """Read every source file into records (documents chunked, datasets converted), in parallel."""
        counts = {"files": 0, "ignored_files": 0, "empty_files": 0, "duplicates": 0, "pdf_files": 0}
        files: list[SourceFile] = []
        for index, spec in enumerate(params.sources):
            for path, root in self._files(spec, inputs, ctx.work_dir / "remote" / str(index)):
                if path.suffix.lower() not in DOCUMENT_SUFFIXES + DATASET_SUFFIXES:
                    counts["ignored_files"] += 1
                    ctx.log.debug("ingest: ignoring %s", path)
                    continue
                files.append(
                    SourceFile(path, _source_name(path, root, spec, ctx.project_root), spec.format)
                )
        workers = workers_for(sum(file.path.stat().st_size for file in files))
        parts = ctx.work_dir / "parts"
        shutil.rmtree(parts, ignore_errors=True)
        parts.mkdir(parents=True)
        out_dir.mkdir(parents=True, exist_ok=True)
        with (out_dir / "records.jsonl").open("wb") as out:
            kept = KeptRecords(out, counts)
            if (
                params.feedback is not None
                and params.feedback_use is not None
                and "feedback" in inputs
            ):
                found, warnings = read_folder(inputs["feedback"])
                for warning in warnings:
                    ctx.log.warning("ingest: %s", warning)
                converted = to_training_records(
                    found, params.feedback, params.feedback_use, "feedback"
                )
                ctx.log.info(
                    "ingest: %d feedback records -> %d %s examples",
                    len(found),
                    len(converted),
                    params.feedback_use,
                )
                for record_id, kind, line in record_lines(converted):
                    kept.add(record_id, kind, line)
            bar = ctx.progress("ingest: files", len(files))
            grouped = batches(files)
            tasks = [(parts / f"{number}.jsonl", batch) for number, batch in enumerate(grouped)]
            for batch, read in zip(
                grouped, ordered_map(partial(read_batch, params.chunking), tasks, workers)
            ):
                for file, records in zip(batch, read.records):
                    is_pdf = file.path.suffix.lower() in PDF_SUFFIXES
                    counts["files"] += 1
                    counts["pdf_files"] += is_pdf
                    counts["empty_files"] += 0 if records else 1
                    if not records and is_pdf:
                        ctx.log.warning(
                            "ingest: %s has no text layer (a scan?); it adds nothing", file.source
                        )
                kept.add_part(read)
                bar.advance(len(batch))
            bar.close()
        shutil.rmtree(ctx.work_dir / "remote", ignore_errors=True)
        shutil.rmtree(parts, ignore_errors=True)
        if not kept.ids:
            raise DataError(
                f"no records found in {', '.join(s.path for s in params.sources) or 'no sources'}",
                hint=(
                    "sources need .txt/.md/.pdf documents or .jsonl/.json datasets; "
                    f"{counts['ignored_files']} other files were ignored"
                ),
            )
        kinds = kept.kinds
        metrics = {
            "records": len(kept.ids),
            "instructions": kinds["instruction"],
            "documents": kinds["document"],
            "preferences": kinds["preference"],
            **counts,
        }
        summary = (
            f"{len(kept.ids)} records ({kinds['instruction']} instructions, {kinds['document']} documents, "
            f"{kinds['preference']} preferences) from {counts['files']} files"
        )
        return StageResult(summary=summary, metrics=metrics)

    @staticmethod
    def _files(
        spec: SourceSpec, inputs: dict[str, Path], download_to: Path
    ) -> Iterator[tuple[Path, Path]]:
        """(file, source root) pairs of one source, in sorted order."""
        if spec.remote is not None:
            yield from _remote_files(spec, download_to)
            return
        if spec.slot is None or spec.slot not in inputs:
            raise StageError(
                f"source {spec.path!r} has no input for slot {spec.slot!r}",
                hint="the plan and the stage disagree; please report it",
            )
        root = Path(inputs[spec.slot])
        if not root.exists():
            raise DataError(
                f"source does not exist: {root}",
                Location(file=spec.path),
                hint="check the path in the manifest",
            )
        files = walk_files(root) if root.is_dir() else [root]
        if spec.pattern is not None:
            from opensem.data.sources import glob_regex

            regex, base = glob_regex(spec.pattern), PurePosixPath(glob_base(spec.pattern))
            files = [
                f
                for f in files
                if regex.match(
                    (base / f.relative_to(root).as_posix()).as_posix()
                    if f != root
                    else base.as_posix()
                )
            ]
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
        raise DataError(
            f"cannot download {spec.path}: {exc}",
            Location(file=spec.path),
            hint="check the URL, the network and credentials",
        ) from exc
    if fingerprint != spec.remote:
        raise DataError(
            f"{spec.path} changed since the build was planned",
            Location(file=spec.path),
            hint="build again: the new listing gets a new lot number",
        )
    for file in files:
        yield file, download_to
