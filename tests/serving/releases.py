"""Release folders and registries of the tiny model, made without a build: what `opensem build`
publishes, in the same layout (adapter/, base_model/model/, manifest.yaml)."""

from __future__ import annotations

import shutil
from pathlib import Path

KEY = "opensem-test-key-" + "x" * 24  # long enough for the server's 32-character rule


def release_folder(folder: Path, adapter: Path, base: Path, job_id: str) -> Path:
    """A release of an adapter on the tiny base, shipped with the base as tiny-model releases are."""
    shutil.copytree(adapter, folder / "adapter")
    shutil.copytree(base, folder / "base_model" / "model")
    (folder / "manifest.yaml").write_text(
        f"job_id: {job_id}\nbase_model: ./tiny\n", encoding="utf-8"
    )
    return folder


def publish(folder: Path, registry: Path | str, job_id: str, tag: str, lot: str) -> None:
    """Publish a release folder into a registry (a folder or an fsspec URL), as the publish stage does."""
    from opensem.release.registry import open_registry, publish_files

    fs, root = open_registry(str(registry), folder)
    files = {
        str(path.relative_to(folder)): path for path in sorted(folder.rglob("*")) if path.is_file()
    }
    publish_files(fs, root, job_id, tag, lot, files, {})


def greedy_answer(
    base: Path, adapter: Path | None, messages: list[dict[str, str]], max_tokens: int
) -> tuple[str, int]:
    """The answer model.generate gives (greedy), and the prompt's token count: what the server must match."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(adapter or base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
    ids = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.inference_mode():
        out = model.eval().generate(
            **ids, max_new_tokens=max_tokens, do_sample=False, pad_token_id=tokenizer.eos_token_id
        )
    prompt = ids["input_ids"].shape[1]
    return tokenizer.decode(out[0, prompt:], skip_special_tokens=True), prompt
