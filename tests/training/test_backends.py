"""Backend choice: unsloth where CUDA and unsloth allow, hf otherwise, with the reason logged."""

from __future__ import annotations

import sys

import pytest

from opensem.errors import UsageError
from opensem.training.backends import (
    choose_backend,
    get_backend,
    resolve_backend,
    unsloth_import_error,
)
from tests.logs import recording_logger


def importable() -> str | None:
    return None


def broken() -> str | None:
    return "NotImplementedError: Unsloth cannot find any torch accelerator? You need a GPU."


def never() -> str | None:
    raise AssertionError("unsloth must not be imported without CUDA or when hf is asked for")


def test_auto_takes_unsloth_on_cuda_when_it_imports() -> None:
    choice = choose_backend("auto", cuda=True, import_error=importable)
    assert (choice.name, choice.warn) == ("unsloth", False)
    assert choose_backend("unsloth", cuda=True, import_error=importable).name == "unsloth"


def test_auto_without_cuda_picks_hf_and_says_why_without_importing_unsloth() -> None:
    choice = choose_backend("auto", cuda=False, import_error=never)
    assert (choice.name, choice.warn) == ("hf", False)
    assert choice.reason.startswith("no CUDA device: backend auto picks hf")


def test_hf_is_taken_as_asked_even_on_cuda() -> None:
    assert choose_backend("hf", cuda=True, import_error=never) == choose_backend(
        "hf", cuda=False, import_error=never
    )
    assert choose_backend("hf", cuda=True, import_error=never).name == "hf"


@pytest.mark.parametrize(
    ("requested", "cuda", "importer", "phrase"),
    [
        (
            "auto",
            True,
            broken,
            "unsloth would have been chosen for this GPU but does not import (NotImplementedError",
        ),
        ("unsloth", True, broken, "unsloth was asked for but does not import"),
        ("unsloth", False, never, "backend unsloth needs a CUDA GPU and this machine has none"),
    ],
)
def test_falling_back_from_unsloth_warns(
    requested: str, cuda: bool, importer: object, phrase: str
) -> None:
    choice = choose_backend(requested, cuda=cuda, import_error=importer)  # type: ignore[arg-type]
    assert (choice.name, choice.warn) == ("hf", True)
    assert phrase in choice.reason and "hf (transformers + peft + trl)" in choice.reason


def test_resolve_logs_the_choice_at_its_level() -> None:
    log, recorder = recording_logger("backends")
    backend = resolve_backend("auto", cuda=False, log=log)
    resolve_backend("unsloth", cuda=False, log=log)
    assert backend.name == "hf"
    assert [(r.levelname, r.getMessage().split(":")[0]) for r in recorder.records] == [
        ("INFO", "no CUDA device"),
        (
            "WARNING",
            "backend unsloth needs a CUDA GPU and this machine has none; training with hf (transformers + peft + trl)",
        ),
    ]
    assert "unsloth" not in sys.modules


def test_unknown_backends_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="unknown training backend 'tpu'"):
        choose_backend("tpu", cuda=False)
    with pytest.raises(UsageError, match="unknown training backend 'auto'"):
        get_backend("auto")
    assert get_backend("hf").name == "hf"


def test_the_real_unsloth_probe_reports_why_it_cannot_be_used_here() -> None:
    import importlib.util

    import torch

    if torch.cuda.is_available() and importlib.util.find_spec("unsloth") is not None:
        pytest.skip("unsloth may import on this machine")
    error = unsloth_import_error()
    assert error is not None and error.split(":")[0] in (
        "ModuleNotFoundError",
        "ImportError",
        "NotImplementedError",
    )


def test_the_unsloth_backend_passes_the_run_shape_to_fast_language_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """unsloth cannot import without a GPU, so a recording stand-in checks the calls the backend makes."""
    import types

    from opensem.training.backends import AdapterSpec, LoadSpec
    from opensem.training.backends.unsloth import UnslothBackend

    calls: dict[str, dict[str, object]] = {}

    class Tokenizer:
        pad_token = None
        eos_token = "<|eos|>"

    class FastLanguageModel:
        @staticmethod
        def from_pretrained(**kwargs: object) -> tuple[str, Tokenizer]:
            calls["load"] = kwargs
            return "model", Tokenizer()

        @staticmethod
        def get_peft_model(model: str, **kwargs: object) -> str:
            calls["peft"] = kwargs
            return f"wrapped {model}"

    monkeypatch.setitem(
        sys.modules, "unsloth", types.SimpleNamespace(FastLanguageModel=FastLanguageModel)
    )
    spec = LoadSpec(
        "org/model", 1024, seed=7, cuda=True, quantized=True, gradient_checkpointing=True
    )
    backend = UnslothBackend()
    model, tokenizer = backend.load(spec, "qlora")
    assert tokenizer.pad_token == "<|eos|>"
    assert calls["load"] == {
        "model_name": "org/model",
        "max_seq_length": 1024,
        "dtype": None,
        "load_in_4bit": True,
        "full_finetuning": False,
        "use_gradient_checkpointing": "unsloth",
        "random_state": 7,
    }
    wrapped, config = backend.add_adapter(
        model, AdapterSpec(8, 16, 0.0, ("q_proj", "v_proj"), use_dora=True), spec
    )
    assert (wrapped, config) == ("wrapped model", None)
    assert calls["peft"]["use_dora"] is True and calls["peft"]["target_modules"] == [
        "q_proj",
        "v_proj",
    ]
    assert (
        calls["peft"]["use_gradient_checkpointing"] == "unsloth"
        and calls["peft"]["random_state"] == 7
    )
    assert (
        backend.trainer_checkpointing(spec) is False
    )  # unsloth's own checkpointing is in the model
