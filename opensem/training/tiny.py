"""Build a tiny Llama-architecture causal LM with a locally trained tokenizer, entirely offline.

Tests, demos and CI need a real model that loads through the same Auto classes as a hub model
(so the code paths under test are the production ones) but builds in seconds on a CPU with no
network. The weights are random; the tokenizer is a byte-level BPE trained on a small bundled
English corpus, with special tokens and a chat template so chat records render like on a real
instruct model.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from opensem.settings.fields import Section, invalid

PAD_TOKEN = "<|pad|>"
BOS_TOKEN = "<|bos|>"
EOS_TOKEN = "<|eos|>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS = (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, *ROLE_TOKENS)

# Llama-3 style: bos_token first, then per message a role marker, a newline, the content and
# eos_token as end of turn, so a model trained on rendered chats learns to stop. The tokenizer's
# post-processor also adds BOS to plain text (documents); opensem.training.data tokenizes rendered
# chats without adding it a second time, as it must for real instruct models too.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- for message in messages -%}"
    "{%- if message['role'] not in ['system', 'user', 'assistant'] -%}"
    "{{ raise_exception('unsupported chat role: ' + message['role']) }}"
    "{%- endif -%}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|assistant|>\\n' }}{%- endif -%}"
)

MAX_POSITIONS = 2048
MIN_VOCAB_SIZE = 256 + len(SPECIAL_TOKENS)  # every byte plus the special tokens


class TinyModelSpec(Section):
    """A tiny randomly initialized Llama with a locally trained tokenizer, built as a stage."""

    hidden_size: int = Field(64, gt=0, description="Width of the model.")
    num_layers: int = Field(2, gt=0, le=32, description="Transformer blocks.")
    num_heads: int = Field(
        4, gt=0, description="Attention heads; must divide hidden_size into an even head size."
    )
    vocab_size: int = Field(
        2000,
        ge=MIN_VOCAB_SIZE,
        le=65536,
        description="Most BPE vocabulary entries; the bundled corpus decides the exact size.",
    )
    seed: int = Field(0, description="Seed of the random initialization.")

    @model_validator(mode="after")
    def _head_shape(self) -> TinyModelSpec:
        if self.hidden_size % self.num_heads:
            raise invalid(
                f"num_heads ({self.num_heads}) must divide hidden_size ({self.hidden_size})"
            )
        if (self.hidden_size // self.num_heads) % 2:
            raise invalid(
                f"hidden_size / num_heads must be even for rotary embeddings, got {self.hidden_size} / "
                f"{self.num_heads} = {self.hidden_size // self.num_heads}"
            )
        return self


def corpus_text() -> str:
    """The bundled English prose the tokenizer is trained on."""
    return (
        resources.files("opensem.training").joinpath("tiny_corpus.txt").read_text(encoding="utf-8")
    )


def _train_tokenizer(vocab_size: int) -> Any:
    """Train a byte-level BPE on the bundled corpus; deterministic for a given vocab size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    lines = [line for line in corpus_text().splitlines() if line.strip()]
    tokenizer.train_from_iterator(lines, trainer=trainer)
    bos_id = tokenizer.token_to_id(BOS_TOKEN)
    tokenizer.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(
                single=f"{BOS_TOKEN} $A",
                pair=f"{BOS_TOKEN} $A {BOS_TOKEN} $B",
                special_tokens=[(BOS_TOKEN, bos_id)],
            ),
        ]
    )
    return tokenizer


def make_tiny_model(out_dir: Path, spec: TinyModelSpec | None = None, **shape: Any) -> Path:
    """Write a tiny random Llama, its tokenizer and generation config into out_dir; return out_dir.

    The shape is spec, or TinyModelSpec(**shape) (its defaults, with the fields given here). The
    result loads offline with AutoModelForCausalLM / AutoTokenizer.from_pretrained(out_dir). Same
    shape, same bytes. The model's vocabulary is the tokenizer's actual size, which is at most
    vocab_size (the bundled corpus may not yield that many merges), so no token id the model can
    emit is unknown to the tokenizer.
    """
    spec = spec or TinyModelSpec(**shape)
    hidden_size, num_layers, num_heads = spec.hidden_size, spec.num_layers, spec.num_heads
    import torch
    from transformers import (
        GenerationConfig,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
    )

    from opensem.training.methods.base import quiet_libraries

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    backend = _train_tokenizer(spec.vocab_size)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        chat_template=CHAT_TEMPLATE,
        model_max_length=MAX_POSITIONS,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )
    pad_id, bos_id, eos_id = (backend.token_to_id(t) for t in (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN))
    config = LlamaConfig(
        vocab_size=backend.get_vocab_size(),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=MAX_POSITIONS,
        pad_token_id=pad_id,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        tie_word_embeddings=False,
    )
    # fork_rng keeps the caller's global RNG stream untouched while the init is seeded.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        do_sample=False,
        max_new_tokens=64,
    )
    with quiet_libraries():
        model.save_pretrained(out_dir, safe_serialization=True)
        tokenizer.save_pretrained(out_dir)
    return out_dir


def count_parameters(model_dir: Path) -> int:
    """Number of parameters stored in a saved model's safetensors files, read without torch."""
    from safetensors import safe_open

    total = 0
    for path in sorted(Path(model_dir).glob("*.safetensors")):
        with safe_open(str(path), framework="numpy") as handle:
            for name in handle.keys():
                shape = handle.get_slice(name).get_shape()
                count = 1
                for dim in shape:
                    count *= dim
                total += count
    return total
