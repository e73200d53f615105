"""Throughput and memory of every training method, per backend available here, on two model sizes.

For each method (sft, lora, dora, qlora, dpo, orpo, kto) and model (the tiny demo Llama, and a
larger randomly initialized one) a fresh process trains --steps steps through the method registry
(the train stage's own path) and reports tokens per second of training (the tokens its optimizer
steps put through the model, padding excluded) and peak memory: the process's peak RSS on a CPU,
torch.cuda.max_memory_allocated on a GPU. qlora runs as its CPU fallback (plain LoRA in float32)
where there is no CUDA. With CUDA, each method runs under both backends (`unsloth`, `hf`) where
unsloth imports. The peer line is a bare trl SFT + peft LoRA script on the same data, so the lora
rows can be read against it.

Run from the project root:  .venv/bin/python bench/train_methods.py [--steps 20] [--methods lora,dpo]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / ".work" / "methods"
METHODS = ("sft", "lora", "dora", "qlora", "dpo", "orpo", "kto")
MODELS = {
    "tiny": {"hidden_size": 64, "num_layers": 2, "num_heads": 4},
    "larger": {"hidden_size": 512, "num_layers": 8, "num_heads": 8},
}

CHILD = """
import json, resource, sys, time
from pathlib import Path
from opensem.training.methods import get_method
from opensem.training.config import TrainParams
from opensem.training.methods.base import Runtime, TrainRequest
method, model, backend, steps, work = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), Path(sys.argv[5])
kind = "prefs" if method in ("dpo", "orpo", "kto") else "chats"
records = [json.loads(line) for line in (work / f"{kind}.jsonl").read_text().splitlines()]
adapter = {} if method == "sft" else {"rank": 16}
params = TrainParams.model_validate({"method_config": {"type": method, **adapter}, "seed": 42,
    "training": {"max_steps": steps, "logging_steps": steps, "learning_rate": 1e-4, "max_seq_length": 256, "save_steps": 10**6},
    "compute": {"batch_size": 8, "backend": backend, "allow_cpu_fallback": True}})
request = TrainRequest(str(work / model), records, work / "out" / method, work / "scratch" / method, params, runtime=Runtime(cpu_fallback=True))
outcome = get_method(method).train(request)
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"tokens": outcome.tokens, "seconds": outcome.runtime_s, "backend": outcome.backend, "device": outcome.device,
                  "peak_mb": outcome.peak_memory_mb if outcome.peak_memory_mb is not None else rss_mb}))
"""

PEER = """
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer
import torch
model_name, steps, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
records = [json.loads(line) for line in open(f"{work}/chats.jsonl")]
tokenizer = AutoTokenizer.from_pretrained(f"{work}/{model_name}")
cuda = torch.cuda.is_available()
model = AutoModelForCausalLM.from_pretrained(f"{work}/{model_name}", dtype="auto" if cuda else torch.float32)
args = SFTConfig(output_dir=f"{work}/peer", max_steps=steps, learning_rate=1e-4, per_device_train_batch_size=8, logging_steps=steps,
                 max_length=256, gradient_checkpointing=False, bf16=cuda and torch.cuda.is_bf16_supported(), report_to="none",
                 disable_tqdm=True, save_strategy="no", use_cpu=not cuda)
dataset = Dataset.from_list([{"messages": r["messages"]} for r in records])
peft = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=peft)
if cuda:
    torch.cuda.reset_peak_memory_stats()
output = trainer.train()
lengths = [len(ids) for ids in trainer.train_dataset["input_ids"]]
tokens = sum(lengths) / len(lengths) * steps * 8
peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"tokens": tokens, "seconds": output.metrics["train_runtime"], "backend": "trl", "device": "cuda" if cuda else "cpu", "peak_mb": peak}))
"""


def prepare() -> None:
    """Two base models and chat and preference records from the demo data."""
    from opensem.data.formats import normalize
    from opensem.training.tiny import make_tiny_model

    for name, shape in MODELS.items():
        if not (WORK / name / "config.json").is_file():
            make_tiny_model(WORK / name, vocab_size=2000, **shape)
    lines = (
        (ROOT / "data" / "tiny-demo" / "instructions.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()
    )
    chats = [normalize(json.loads(line), "alpaca", "demo") for line in lines if line.strip()]
    prefs = [
        {
            "id": f"p{i}",
            "source": "demo",
            "prompt": c["messages"][-2]["content"],
            "chosen": c["messages"][-1]["content"],
            "rejected": chats[(i + 1) % len(chats)]["messages"][-1]["content"],
        }
        for i, c in enumerate(chats)
    ]
    for name, records in (("chats", chats), ("prefs", prefs)):
        (WORK / f"{name}.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8"
        )


def run(code: str, *args: str) -> dict[str, object] | str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return lines[-1][:100] if lines else f"exit {done.returncode}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def backends() -> list[str]:
    import torch

    if not torch.cuda.is_available():
        return ["hf"]
    from opensem.training.backends import unsloth_import_error

    return ["unsloth", "hf"] if unsloth_import_error() is None else ["hf"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--methods", default=",".join(METHODS))
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    prepare()
    print(f"{args.steps} steps, batch 8, up to 256 tokens per sequence, rank 16\n")
    print(f"{'model':<7} {'method':<6} {'backend':<8} {'device':<6} {'tokens/s':>9} {'peak MB':>8}")
    for model in MODELS:
        for backend in backends():
            for method in args.methods.split(","):
                result = run(CHILD, method, model, backend, str(args.steps), str(WORK))
                if isinstance(result, str):
                    print(f"{model:<7} {method:<6} {backend:<8} failed: {result}")
                    continue
                rate = float(result["tokens"]) / float(result["seconds"])  # type: ignore[arg-type]
                print(
                    f"{model:<7} {method:<6} {result['backend']:<8} {result['device']:<6} {rate:9.0f} "
                    f"{float(result['peak_mb']):8.0f}",
                    flush=True,
                )  # type: ignore[arg-type]
        peer = run(PEER, model, str(args.steps), str(WORK))
        if isinstance(peer, dict):
            rate = float(peer["tokens"]) / float(peer["seconds"])  # type: ignore[arg-type]
            print(
                f"{model:<7} {'peer':<6} {'trl':<8} {peer['device']:<6} {rate:9.0f} {float(peer['peak_mb']):8.0f}   "
                "(bare trl SFT + peft LoRA)",
                flush=True,
            )  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
