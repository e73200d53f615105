"""The review stage scores each release exactly as it is served: the previous release on the base,
adapter and persona it shipped with, the new one on this build's, never one on the other's base."""

from __future__ import annotations

import json
import math
from pathlib import Path

from opensem.core.digests import digest_tree
from opensem.release.registry import open_registry, publish_files
from opensem.stages.base import StageContext
from opensem.stages.review import Review, ReviewParams
from opensem.training.tiny import make_tiny_model
from tests.adapters import make_adapter

EDITS = {
    "How long should beans rest?": "Five to ten days after roasting.",
    "Grind for a moka pot?": "A little coarser than espresso.",
}


def score(base: Path, adapter: Path, persona: str | None) -> dict[str, float]:
    from peft import PeftModel

    from opensem.data.persona import with_system
    from opensem.evaluation.review import score_release
    from opensem.training.methods.base import load_model, load_tokenizer

    class Bar:
        def advance(self, n: int = 1) -> None: ...

    items = [
        {"messages": with_system([{"role": "user", "content": p}], persona), "edited": e}
        for p, e in sorted(EDITS.items())
    ]
    model = PeftModel.from_pretrained(load_model(str(base), "test"), str(adapter))
    settings = params(None).generation()
    return score_release(model, load_tokenizer(str(adapter), "test"), items, settings, Bar())


def params(previous: dict[str, str] | None) -> ReviewParams:
    return ReviewParams.model_validate(
        {
            "seed": 0,
            "persona": "New persona.",
            "evaluation": {"max_new_tokens": 6},
            "previous": previous or {"registry": "", "tag": "", "lot": "", "digest": ""},
        }
    )


def test_the_previous_release_is_scored_on_its_own_base_and_persona(tmp_path: Path) -> None:
    old_base, new_base = (
        make_tiny_model(tmp_path / "old-base"),
        make_tiny_model(tmp_path / "new-base", seed=7),
    )  # as if pretraining moved the base
    old_adapter = make_adapter(old_base, tmp_path / "old" / "adapter", seed=1)
    (old_adapter / "system_prompt.txt").write_text("Old persona.\n")
    new_adapter = make_adapter(new_base, tmp_path / "new" / "adapter", seed=2)
    release = {
        f"adapter/{p.relative_to(old_adapter).as_posix()}": p
        for p in old_adapter.rglob("*")
        if p.is_file()
    }
    release.update(
        {
            f"base_model/model/{p.relative_to(old_base).as_posix()}": p
            for p in old_base.rglob("*")
            if p.is_file()
        }
    )
    (tmp_path / "manifest.yaml").write_text("job_id: demo\nbase_model: ./models/base\n")
    release["manifest.yaml"] = tmp_path / "manifest.yaml"
    fs, root = open_registry("build/registry", tmp_path)
    receipt = publish_files(fs, root, "demo", "v1", "L" * 64, release, {})
    feedback = tmp_path / "feedback"
    feedback.mkdir()
    (feedback / "feedback.jsonl").write_text(
        "".join(
            json.dumps({"prompt": p, "answer": "?", "edited": e, "lot": "L" * 64}) + "\n"
            for p, e in EDITS.items()
        )
    )
    out = tmp_path / "out"
    out.mkdir()
    ctx = StageContext(
        project_root=tmp_path,
        job_id="demo",
        stage_name="review",
        work_dir=tmp_path / "work",
        cache_dir=tmp_path / "cache",
    )
    previous = {
        "registry": "build/registry/demo",
        "tag": "v1",
        "lot": "L" * 64,
        "digest": receipt["digest"],
    }
    result = Review().run(
        params(previous),
        {"base": new_base, "adapter": tmp_path / "new", "feedback": feedback},
        out,
        ctx,
    )

    review = json.loads((out / "review.json").read_text())
    as_served = score(old_base, old_adapter, "Old persona.")
    on_the_new_base = score(new_base, old_adapter, "New persona.")
    assert math.isclose(review["previous"]["perplexity"], as_served["perplexity"], rel_tol=1e-6)
    assert not math.isclose(
        review["previous"]["perplexity"], on_the_new_base["perplexity"], rel_tol=1e-3
    )
    assert math.isclose(
        review["new"]["perplexity"],
        score(new_base, new_adapter, "New persona.")["perplexity"],
        rel_tol=1e-6,
    )
    assert (
        review["prompts"] == 2
        and "2 edited answers" in result.summary
        and digest_tree(old_base) != digest_tree(new_base)
    )
