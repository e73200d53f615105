"""The model card says how to load what the release holds: an adapter, or a whole model."""

from opensem.stages.publish import PublishParams, model_card

REPORT = {"headline": "Accuracy improved by 5.0%", "metrics": {}, "accuracy": {"metric": "golden.token_f1"}}
PARAMS = PublishParams(job_id="demo", registry="build/registry", tag="v1", base_model="org/base")
LINEAGE = {"train": {"lot": "a" * 64, "output": "b" * 64}, "publish": {"lot": "c" * 64}}


def test_adapter_card_loads_through_peft_and_carries_the_lots() -> None:
    card = model_card(PARAMS, "v1", LINEAGE, REPORT)
    assert "library_name: peft" in card and "PeftModel.from_pretrained(base, f\"{release}/adapter\")" in card
    assert 'AutoModelForCausalLM.from_pretrained("org/base")' in card
    assert f"`{'a' * 64}`" in card and "Accuracy improved by 5.0%" in card


def test_full_fine_tune_card_loads_the_model_folder_without_peft() -> None:
    card = model_card(PARAMS, "v1", LINEAGE, REPORT, full_model=True)
    assert "library_name: transformers" in card and "peft" not in card.lower().replace("opensem", "")
    assert 'AutoModelForCausalLM.from_pretrained(f"{release}/model")' in card
