"""Ingest's sources beyond plain paths (PDFs, globs, fsspec URLs) and chunking with overlap."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opensem.data.chunking import chunk_text, normalize_text
from opensem.data.formats import record_id
from opensem.data.sources import SourceSpec
from opensem.errors import DataError
from opensem.stages.base import StageContext
from opensem.stages.ingest import Ingest, IngestParams
from tests.e2e.conftest import Project
from tests.pdf import write_pdf

PARAGRAPHS = [
    f"Paragraph {i} begins here. " + f"Sentence {i} tells about tamping and grinding. " * 8
    for i in range(10)
]


def ingest(root: Path, specs: list[SourceSpec], **params: Any) -> list[dict[str, Any]]:
    ctx = StageContext(
        project_root=root,
        job_id="t",
        stage_name="ingest",
        work_dir=root / "work",
        cache_dir=root / "cache",
    )
    inputs = {s.slot: root / s.path for s in specs if s.slot}
    Ingest().run(
        IngestParams(sources=specs, **({"chunking": params} if params else {})),
        inputs,
        root / "out",
        ctx,
    )
    return [json.loads(line) for line in (root / "out" / "records.jsonl").read_text().splitlines()]


def test_pdf_text_is_ingested_page_by_page(tmp_path: Path) -> None:
    write_pdf(
        tmp_path / "docs" / "manual.pdf",
        [
            ["Espresso basics.", "Grind finer when the shot runs fast."],
            ["Steam milk to 60 degrees."],
        ],
    )
    records = ingest(tmp_path, [SourceSpec(slot="s", path="docs")])
    assert records == [
        {
            "id": records[0]["id"],
            "source": "docs/manual.pdf",
            "text": "Espresso basics.\nGrind finer when the shot runs fast.\n\nSteam milk to 60 degrees.",
        }
    ]
    assert records[0]["id"] == record_id({"text": records[0]["text"]})


def test_running_headers_footers_and_page_numbers_leave_pdf_text(tmp_path: Path) -> None:
    body = [
        "Grind finer when the shot runs fast.",
        "Tamp level.",
        "Steam milk to 60 degrees.",
        "Descale monthly.",
    ]
    pages = [
        [
            "Shared MIME-info Database",
            body[i],
            "Shared MIME-info Database is named in the body once.",
            f"Page {i + 1} of 4",
        ]
        if i == 1
        else ["Shared MIME-info Database", body[i], f"Page {i + 1} of 4"]
        for i in range(4)
    ]
    write_pdf(tmp_path / "docs" / "spec.pdf", pages)
    [record] = ingest(tmp_path, [SourceSpec(slot="s", path="docs")])
    assert (
        "Page" not in record["text"] and record["text"].count("Shared MIME-info Database") == 1
    )  # the body's mention stays
    assert all(line in record["text"] for line in body)


def test_a_broken_pdf_is_a_data_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a pdf")
    with pytest.raises(DataError, match="cannot read PDF") as info:
        ingest(tmp_path, [SourceSpec(slot="s", path="docs")])
    assert info.value.location.file == "docs/broken.pdf"


def test_overlap_repeats_the_previous_chunks_end_within_size() -> None:
    text = normalize_text("\n\n".join(PARAGRAPHS))
    plain = chunk_text(text, 1000)
    chunks = chunk_text(text, 1000, overlap=200)
    assert len(chunks) > 2 and all(len(c) <= 1000 for c in chunks)
    for previous, current in zip(chunks, chunks[1:]):
        head = current.split("\n\n")[0]
        assert 0 < len(head) <= 200 and previous.endswith(head)
    assert chunk_text(text, 1000, overlap=0) == plain
    with pytest.raises(ValueError, match="less than half"):
        chunk_text(text, 1000, overlap=500)


def test_unchanged_chunks_keep_their_ids_after_an_edit(tmp_path: Path) -> None:
    doc = tmp_path / "docs" / "a.md"
    doc.parent.mkdir()
    doc.write_text("\n\n".join(PARAGRAPHS))
    before = [
        r["id"]
        for r in ingest(tmp_path, [SourceSpec(slot="s", path="docs")], size=900, overlap=100)
    ]
    doc.write_text("\n\n".join([*PARAGRAPHS[:-1], PARAGRAPHS[-1].replace("tamping", "dosing")]))
    after = [
        r["id"]
        for r in ingest(tmp_path, [SourceSpec(slot="s", path="docs")], size=900, overlap=100)
    ]
    assert len(before) == len(after) > 3 and before[:-1] == after[:-1] and before[-1] != after[-1]


def manifest(root: Path, sources: list[str], extra: str = "") -> Path:
    path = root / "manifests" / "forge.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    listed = "".join(f"    - path: {s}\n" for s in sources)
    path.write_text(f"job_id: forge\nbase_model: org/model\ndata:\n  sources:\n{listed}{extra}")
    return path


def built_records(project: Project, path: Path, stage: str = "ingest") -> list[dict[str, Any]]:
    code, output = project.run("build", str(path), "--until", stage)
    assert code == 0, output
    lot = project.lock_data_of(path)["stages"][stage]["lot"]
    store = project.root / "build" / "store" / lot[:2] / lot / "out" / "records.jsonl"
    return [json.loads(line) for line in store.read_text().splitlines()]


class ForgeProject(Project):
    def lock_data_of(self, path: Path) -> dict[str, Any]:
        return json.loads(path.with_suffix(".lock").read_text())


def test_globs_and_several_sources(tmp_path: Path) -> None:
    for name in ("a.md", "b.txt", "sub/c.md", "sub/d.pdf"):
        (tmp_path / "data" / "docs" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / "docs" / name).write_text(f"Notes from {name} about espresso.")
    (tmp_path / "data" / "pairs.jsonl").write_text(
        json.dumps({"instruction": "What is crema?", "output": "Foam."}) + "\n"
    )
    project = ForgeProject(tmp_path)
    path = manifest(tmp_path, ["data/docs/**/*.md", "data/pairs.jsonl"])
    records = built_records(project, path)
    assert [r["source"] for r in records] == [
        "data/docs/a.md",
        "data/docs/sub/c.md",
        "data/pairs.jsonl",
    ]
    bad = manifest(tmp_path, ["data/docs/*.rst"])
    code, output = project.run("validate", str(bad))
    assert (
        code == 2
        and "glob 'data/docs/*.rst' matches no file" in output
        and "forge.yaml:5" in output
    )


@pytest.fixture
def memory_docs() -> Iterator[str]:
    import fsspec

    fs = fsspec.filesystem("memory")
    root = "/forge-tests/docs"
    fs.pipe(
        {
            f"{root}/a.md": b"# Alpha\n\nAlpha is about grinding.",
            f"{root}/b/c.txt": b"Gamma is about steaming.",
        }
    )
    yield f"memory://{root}"
    fs.rm(root, recursive=True)


def test_fsspec_url_sources_enter_the_lot_through_their_listing(
    tmp_path: Path, memory_docs: str
) -> None:
    import fsspec

    project = ForgeProject(tmp_path)
    path = manifest(tmp_path, [memory_docs])
    records = built_records(project, path)
    assert [r["source"] for r in records] == [f"{memory_docs}/a.md", f"{memory_docs}/b/c.txt"]
    code, output = project.run("plan", str(path), "--json")
    assert json.loads(output)["stages"][0]["status"] == "up-to-date"
    fsspec.filesystem("memory").pipe(
        f"{memory_docs.removeprefix('memory://')}/a.md", b"# Alpha\n\nAlpha is about dosing."
    )
    code, output = project.run("plan", str(path), "--json")
    ingest_plan = json.loads(output)["stages"][0]
    assert ingest_plan["status"] == "stale" and any(
        "sources" in reason["text"] for reason in ingest_plan["reasons"]
    )
    assert "dosing" in built_records(project, path)[0]["text"]


def test_an_unlistable_url_is_reported_at_its_line(tmp_path: Path) -> None:
    path = manifest(tmp_path, ["data", "memory://forge-tests/nothing-here"])
    (tmp_path / "data").mkdir()
    code, output = ForgeProject(tmp_path).run("plan", str(path))
    assert (
        code == 2
        and "cannot list memory://forge-tests/nothing-here" in output
        and "forge.yaml:6" in output
    )


def test_s3_sources_through_a_real_s3_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        import fsspec.config

        for name, value in {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(name, value)
        # what FSSPEC_S3_ENDPOINT_URL would set in a fresh process (fsspec reads it once, at import)
        monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": f"http://{host}:{port}"})
        import fsspec

        fs = fsspec.filesystem("s3", skip_instance_cache=True)
        fs.mkdir("forge-bucket")
        write_pdf(tmp_path / "manual.pdf", [["Descale the machine every month."]])
        fs.put_file(str(tmp_path / "manual.pdf"), "forge-bucket/docs/manual.pdf")
        records = built_records(
            ForgeProject(tmp_path), manifest(tmp_path, ["s3://forge-bucket/docs/"])
        )
        assert [(r["source"], r["text"]) for r in records] == [
            ("s3://forge-bucket/docs/manual.pdf", "Descale the machine every month.")
        ]
    finally:
        server.stop()
