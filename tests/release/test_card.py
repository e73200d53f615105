"""The model card says how to load what the release holds: an adapter, a whole model, a folded
model, quantized copies; and for a merge, what went into it."""

from dataclasses import replace

from opensem.release.card import Release, model_card

REPORT = {
    "headline": "Accuracy improved by 5.0%",
    "metrics": {},
    "accuracy": {"metric": "golden.token_f1"},
}
LINEAGE = {"train": {"lot": "a" * 64, "output": "b" * 64}, "publish": {"lot": "c" * 64}}
RELEASE = Release(job_id="demo", tag="v1", base_model="org/base", lineage=LINEAGE, report=REPORT)
GGUF = {
    "format": {"format": "gguf", "type": "q8_0"},
    "artifact": "quantized/model-q8_0.gguf",
    "compression_ratio": 3.2,
    "perplexity": {"unquantized": 100.0, "quantized": 101.0, "measured_on": "the test split"},
    "perplexity_change": 0.01,
}


def test_adapter_card_loads_through_peft_and_carries_the_lots() -> None:
    card = model_card(RELEASE)
    assert (
        "library_name: peft" in card
        and 'PeftModel.from_pretrained(base, f"{release}/adapter")' in card
    )
    assert 'AutoModelForCausalLM.from_pretrained("org/base")' in card
    assert f"`{'a' * 64}`" in card and "Accuracy improved by 5.0%" in card


def test_full_fine_tune_card_loads_the_model_folder_without_peft() -> None:
    card = model_card(replace(RELEASE, full_model=True))
    assert "library_name: transformers" in card and "peft" not in card.lower().replace(
        "opensem", ""
    )
    assert 'AutoModelForCausalLM.from_pretrained(f"{release}/model")' in card


def test_merged_folded_and_quantized_releases_say_what_they_hold() -> None:
    sources = [
        {"name": "plants", "weight": 1.0},
        {"name": "safety:v2", "weight": 0.5, "release": {"lot": "d" * 64, "digest": "e" * 64}},
    ]
    card = model_card(
        replace(
            RELEASE,
            folded=True,
            quantized=[GGUF],
            merged_from=sources,
            comparison="# demo: the merge beside its sources\n\n| a | b |",
        )
    )
    assert "tags: [opensem, merge, gguf]" in card and "## Merged from" in card
    assert (
        "- plants (weight 1)" in card
        and f"- safety:v2 (weight 0.5), release lot `{'d' * 64}`" in card
    )
    assert "## demo: the merge beside its sources" in card
    assert 'AutoModelForCausalLM.from_pretrained(f"{release}/folded")' in card
    assert (
        "quantized/gguf/model-q8_0.gguf: 3.20x smaller" in card
        and "perplexity 100.00 -> 101.00 (+1.00%) on the test split" in card
    )
