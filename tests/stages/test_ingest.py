"""The ingest stage: sources in, one deterministic records.jsonl out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from opensem.data.chunking import ChunkingConfig, chunk_text, normalize_text
from opensem.data.sources import SourceSpec
from opensem.errors import DataError
from opensem.stages.base import StageContext, StageResult
from opensem.stages.ingest import Ingest, IngestParams

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "data" / "tiny-demo"


def context(root: Path) -> StageContext:
    return StageContext(
        project_root=root,
        job_id="t",
        stage_name="ingest",
        work_dir=root / "work",
        cache_dir=root / "cache",
    )


def run_ingest(
    root: Path, sources: dict[str, str], out: str = "out", fmt: str = "auto"
) -> tuple[StageResult, Path]:
    """Run ingest over {slot: path relative to root} and return the result and records.jsonl."""
    specs = [SourceSpec(slot=slot, path=path, format=fmt) for slot, path in sources.items()]  # type: ignore[arg-type]
    inputs = {slot: root / path for slot, path in sources.items()}
    out_dir = root / out
    result = Ingest().run(IngestParams(sources=specs), inputs, out_dir, context(root))
    return result, out_dir / "records.jsonl"


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    docs = tmp_path / "data" / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text(
        "# Grind\n\nGrind finer when the shot runs fast.\n", encoding="utf-8"
    )
    (docs / "sub" / "b.txt").write_text("Steam milk to 60 degrees.\n", encoding="utf-8")
    (docs / "notes.png").write_bytes(b"\x89PNG not read")
    write_jsonl(
        tmp_path / "data" / "pairs.jsonl",
        [
            {"instruction": "What is crema?", "input": "", "output": "The foam."},
            {"instruction": "What is a lungo?", "input": "", "output": "A long shot."},
            {"instruction": "What is crema?", "input": "", "output": "The foam."},
        ],
    )
    write_jsonl(
        tmp_path / "data" / "prefs.jsonl",
        [{"prompt": "Best temp?", "chosen": "93 C", "rejected": "100 C"}],
    )
    return tmp_path


SOURCES = {"source0": "data/docs", "source1": "data/pairs.jsonl", "source2": "data/prefs.jsonl"}


def test_ingest_mixed_sources(project: Path) -> None:
    result, path = run_ingest(project, SOURCES)
    records = read(path)
    assert [r["source"] for r in records] == [
        "data/docs/a.md",
        "data/docs/sub/b.txt",
        "data/pairs.jsonl",
        "data/pairs.jsonl",
        "data/prefs.jsonl",
    ]
    assert records[0]["text"] == "# Grind\n\nGrind finer when the shot runs fast."
    assert records[2]["messages"][0] == {"role": "user", "content": "What is crema?"}
    assert records[4]["chosen"] == "93 C"
    assert result.metrics["duplicates"] == 1
    assert result.metrics["ignored_files"] == 1
    assert result.summary == "5 records (2 instructions, 2 documents, 1 preferences) from 4 files"
    assert path.read_bytes().endswith(b"\n")


def test_ingest_is_byte_identical_across_runs(project: Path) -> None:
    _, first = run_ingest(project, SOURCES, out="one")
    _, second = run_ingest(project, SOURCES, out="two")
    assert first.read_bytes() == second.read_bytes()


def test_whitespace_only_edit_gives_identical_bytes(project: Path) -> None:
    _, before = run_ingest(project, SOURCES, out="before")
    doc = project / "data" / "docs" / "a.md"
    doc.write_text(
        "\ufeff\n\n# Grind   \r\n\n\n\n\nGrind finer when the shot runs fast.\t \n\n\n",
        encoding="utf-8",
    )
    _, after = run_ingest(project, SOURCES, out="after")
    assert before.read_bytes() == after.read_bytes()


def test_ids_stable_when_another_record_changes(project: Path) -> None:
    _, before = run_ingest(project, SOURCES, out="before")
    write_jsonl(
        project / "data" / "pairs.jsonl",
        [
            {"instruction": "What is crema?", "input": "", "output": "The golden foam."},
            {"instruction": "What is a lungo?", "input": "", "output": "A long shot."},
        ],
    )
    _, after = run_ingest(project, SOURCES, out="after")
    old = {r["id"] for r in read(before)}
    new = {r["id"] for r in read(after)}
    assert len(old - new) == 1 and len(new - old) == 1
    lungo = [
        r["id"]
        for r in read(after)
        if r.get("messages", [{}])[0].get("content") == "What is a lungo?"
    ]
    assert lungo and lungo[0] in old


def test_bad_record_reports_file_and_line(project: Path) -> None:
    bad = project / "data" / "pairs.jsonl"
    bad.write_text(
        '{"instruction": "q", "output": "a"}\n\n{"instruction": "q2"}\n', encoding="utf-8"
    )
    with pytest.raises(DataError, match="'output'") as info:
        run_ingest(project, {"source0": "data/pairs.jsonl"})
    assert (info.value.location.file, info.value.location.line) == ("data/pairs.jsonl", 3)


def test_invalid_json_reports_line(project: Path) -> None:
    (project / "data" / "pairs.jsonl").write_text('{"text": "ok"}\n{not json\n', encoding="utf-8")
    with pytest.raises(DataError, match="invalid JSON") as info:
        run_ingest(project, {"source0": "data/pairs.jsonl"})
    assert info.value.location.line == 2


def test_named_format_overrides_detection(project: Path) -> None:
    path = project / "data" / "mixed.jsonl"
    write_jsonl(path, [{"text": "a document", "instruction": "unused"}])
    _, out = run_ingest(project, {"source0": "data/mixed.jsonl"}, fmt="text")
    assert read(out)[0]["text"] == "a document"
    with pytest.raises(DataError, match="'output'"):
        run_ingest(project, {"source0": "data/mixed.jsonl"}, out="auto")


def test_json_array_file(project: Path) -> None:
    path = project / "data" / "set.json"
    path.write_text(
        json.dumps(
            [
                {
                    "messages": [
                        {"role": "user", "content": "q"},
                        {"role": "assistant", "content": "a"},
                    ]
                },
                {"messages": []},
            ]
        )
    )
    with pytest.raises(DataError) as info:
        run_ingest(project, {"source0": "data/set.json"})
    assert info.value.location.key == "[1]"


def test_empty_sources_fail_with_hint(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "image.png").write_bytes(b"\x89PNG")
    with pytest.raises(DataError, match="no records") as info:
        run_ingest(tmp_path, {"source0": "empty"})
    assert "1 other files were ignored" in info.value.hint


def test_long_documents_are_chunked_on_paragraphs(tmp_path: Path) -> None:
    paragraphs = [f"Paragraph {i}. " + "Tamp level and grind fine. " * 20 for i in range(12)]
    (tmp_path / "long.md").write_text("\n\n".join(paragraphs), encoding="utf-8")
    result, path = run_ingest(tmp_path, {"source0": "long.md"})
    texts = [r["text"] for r in read(path)]
    assert len(texts) > 1 and result.metrics["documents"] == len(texts)
    assert all(len(t) <= ChunkingConfig().size for t in texts)
    assert "\n\n".join(texts) == normalize_text("\n\n".join(paragraphs))


def test_chunk_text_cuts_oversized_paragraphs() -> None:
    sentence = "Purge the steam wand after every use. "
    chunks = chunk_text((sentence * 200).strip(), limit=500)
    assert all(len(c) <= 500 for c in chunks)
    assert " ".join(chunks) == (sentence * 200).strip()
    assert chunk_text("x" * 1200, limit=500) == ["x" * 500, "x" * 500, "x" * 200]
    assert chunk_text("", limit=500) == []


def test_demo_corpus_ingests(tmp_path: Path) -> None:
    specs = [
        SourceSpec(slot="docs", path="data/tiny-demo/docs"),
        SourceSpec(slot="pairs", path="data/tiny-demo/instructions.jsonl"),
    ]
    inputs = {"docs": DEMO / "docs", "pairs": DEMO / "instructions.jsonl"}
    result = Ingest().run(IngestParams(sources=specs), inputs, tmp_path / "out", context(REPO))
    assert result.metrics["documents"] >= 12
    assert result.metrics["instructions"] >= 90
    assert result.metrics["duplicates"] == 0
    golden = [
        json.loads(line)
        for line in (DEMO / "golden" / "golden.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert len(golden) == 12 and all(set(g) == {"question", "answer"} for g in golden)


def test_a_large_corpus_parsed_in_worker_processes_gives_the_same_bytes(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import opensem.data.parallel as parallel

    sources = {"docs": "data/docs", "pairs": "data/pairs.jsonl", "prefs": "data/prefs.jsonl"}
    serial, serial_file = run_ingest(project, sources, out="serial")
    monkeypatch.setattr(
        parallel, "PARALLEL_BYTES", 0
    )  # as if the corpus were large: every core, in worker processes
    monkeypatch.setattr(parallel, "usable_cores", lambda: 2)
    parallel, parallel_file = run_ingest(project, sources, out="parallel")
    assert (
        parallel_file.read_bytes() == serial_file.read_bytes()
        and parallel.metrics == serial.metrics
    )

    write_jsonl(project / "data" / "broken.jsonl", [{"instruction": "fine", "output": "yes"}])
    (project / "data" / "broken.jsonl").write_text(
        '{"instruction": "fine", "output": "yes"}\n{oops\n', encoding="utf-8"
    )
    with pytest.raises(DataError) as caught:  # an error raised in a worker keeps its file and line
        run_ingest(project, {"broken": "data/broken.jsonl"}, out="broken")
    assert caught.value.location.line == 2 and "broken.jsonl" in str(caught.value.location)


@pytest.mark.parametrize(
    "chunk",
    [
        "plain words",
        'quotes " and \\ backslashes',
        "línea\nnueva\tand tabs",
        "emoji ☕ and \u2028 separators",
        "",
    ],
)
def test_document_lines_are_the_bytes_make_record_and_write_records_give(chunk: str) -> None:
    from opensem.data.corpus import document_lines
    from opensem.data.formats import make_record
    from opensem.data.records import render_records

    record = make_record('docs/"odd" ñame.md', text=chunk)
    assert document_lines('docs/"odd" ñame.md', [chunk]) == [
        (record["id"], "document", render_records([record]).encode())
    ]
