"""Record loading and the one rendering shared by training and evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest

from opensem.data.formats import record_kind
from opensem.errors import DataError
from opensem.training.data import encode_record, load_records, render_text


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_load_records_reports_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text('{"id": "a", "text": "fine"}\n\n{"id": "b", "text": \n', encoding="utf-8")
    with pytest.raises(DataError, match="not valid JSON") as info:
        load_records(path)
    assert info.value.location.line == 3
    path.write_text('{"id": "a", "text": "fine"}\n\n{"id": "b", "text": "ok"}\n', encoding="utf-8")
    loaded = load_records(path)
    assert [r["id"] for r in loaded.records] == ["a", "b"] and loaded.lines == [1, 3]


def test_empty_and_missing_files_are_data_errors(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(DataError, match="empty"):
        load_records(tmp_path / "empty.jsonl")
    with pytest.raises(DataError, match="no such records file"):
        load_records(tmp_path / "absent.jsonl")


def test_record_kinds() -> None:
    assert record_kind({"messages": []}) == "instruction"
    assert record_kind({"text": ""}) == "document"
    assert record_kind({"prompt": "", "chosen": "", "rejected": ""}) == "preference"
    assert record_kind({"id": "x"}, unknown="unknown") == "unknown"
    with pytest.raises(DataError, match="not a normalized record"):
        record_kind({"id": "x"})


def test_chats_render_through_the_template_with_a_single_bos(tokenizer) -> None:  # type: ignore[no-untyped-def]
    record = {
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    }
    assert render_text(record, tokenizer) == tokenizer.apply_chat_template(
        record["messages"], tokenize=False
    )
    ids = encode_record(record, tokenizer, 512)
    assert ids[0] == tokenizer.bos_token_id and ids[1] != tokenizer.bos_token_id
    assert ids[-1] == tokenizer.eos_token_id


def test_documents_get_bos_and_eos_and_truncate(tokenizer) -> None:  # type: ignore[no-untyped-def]
    record = {"text": "The library opens at nine in the morning."}
    assert render_text(record, tokenizer) == record["text"]
    ids = encode_record(record, tokenizer, 512)
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == record["text"]
    assert encode_record(record, tokenizer, 4) == ids[:4]


def test_preference_records_are_not_language_modeling_data(tokenizer) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DataError, match="preference record is not language-modeling data"):
        render_text({"prompt": "p", "chosen": "c", "rejected": "r"}, tokenizer)


def test_batched_encoding_gives_each_records_own_ids(tokenizer) -> None:  # type: ignore[no-untyped-def]
    from opensem.training.data import encode_records

    chats = [
        {
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "espresso " * n},
            ]
        }
        for n in range(12)
    ]
    docs = [{"text": "crema " * n} for n in range(6)]
    records = [r for pair in zip(chats, docs + docs) for r in pair]
    assert encode_records(records, tokenizer, 24, batch=5) == [
        encode_record(r, tokenizer, 24) for r in records
    ]
