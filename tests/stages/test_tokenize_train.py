"""The tokenize stage feeding training: packed sequences train, and a validation share stops a run
that gets worse and keeps its best checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

from opensem.stages.tokenize import Tokenize, TokenizeParams
from opensem.stages.train import Train
from tests.params import params
from tests.stages.test_train_evaluate import context, facts, write_jsonl
from tests.training.params import train_params


def tokenized(root: Path, base: Path, **settings: object) -> Path:
    split = write_jsonl(root / "split", "train.jsonl", facts(0, 60))
    write_jsonl(root / "split", "test.jsonl", facts(60, 66))
    out = root / "tokens"
    out.mkdir(parents=True)
    fraction = settings.pop("validation_fraction", None)
    Tokenize().run(
        params(TokenizeParams, validation_fraction=fraction, **settings),
        {"train": split, "test": split, "base": base},
        out,
        context(root, "tokenize"),
    )
    return out


def test_packed_training_takes_fewer_longer_sequences(tiny_model_dir: Path, tmp_path: Path) -> None:
    tokens = tokenized(tmp_path, tiny_model_dir.parent, max_seq_length=128, packing=True)
    meta = json.loads((tokens / "train.json").read_text())
    assert meta["packing"] and meta["sequences"] < meta["records"] == 60
    assert json.loads((tokens / "test.json").read_text())["sequences"] == 6
    out = tmp_path / "out"
    out.mkdir()
    result = Train().run(
        train_params(
            rank=4, max_steps=6, logging_steps=2, batch_size=4, max_seq_length=128, packing=True
        ),
        {"tokens": tokens, "base": tiny_model_dir.parent},
        out,
        context(tmp_path, "train"),
    )
    assert (
        f"6 steps on {meta['sequences']} packed sequences" in result.summary
        and (out / "adapter" / "adapter_config.json").is_file()
    )


def test_validation_loss_is_logged_and_a_worsening_run_stops_on_its_best_step(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    tokens = tokenized(tmp_path, tiny_model_dir.parent, validation_fraction=0.2)
    assert json.loads((tokens / "validation.json").read_text())["records"] > 0
    out = tmp_path / "out"
    out.mkdir()
    settings = train_params(
        "sft",
        max_steps=80,
        learning_rate=0.3,
        logging_steps=2,
        batch_size=4,
        eval_steps=2,
        early_stopping_patience=2,
    )  # far too hot: it diverges
    result = Train().run(
        settings, {"tokens": tokens, "base": tiny_model_dir.parent}, out, context(tmp_path, "train")
    )
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [row for row in rows if "eval_loss" in row]
    assert len(evals) >= 3 and result.metrics["steps"] < 80  # stopped early
    best = min(evals, key=lambda row: row["eval_loss"])
    assert (
        result.metrics["best_eval_loss"] == best["eval_loss"]
        and f"best {best['eval_loss']:.3f} at step {best['step']} (kept)" in result.summary
    )
    assert evals[-1]["eval_loss"] > best["eval_loss"]  # it stopped because it got worse
    import torch
    from transformers import AutoModelForCausalLM

    from opensem.training.tokenized import read_sequences

    model = AutoModelForCausalLM.from_pretrained(
        out / "model"
    ).eval()  # the artifact is the best checkpoint, not the last step
    total = count = 0.0
    with torch.no_grad():
        for sequence in read_sequences(tokens, "validation"):
            ids = torch.tensor([sequence.ids])
            loss = model(input_ids=ids, labels=ids).loss
            total, count = (
                total + float(loss) * (len(sequence.ids) - 1),
                count + len(sequence.ids) - 1,
            )
    assert abs(total / count - best["eval_loss"]) < 0.05
