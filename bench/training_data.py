"""Training data preparation: the tokenize stage's cache, packing, and distillation against SFT.

1. Tokenize cache, 100,000 chat records, the tiny Llama's tokenizer:
   - the tokenize stage (`Tokenize().run`, as the engine calls it) against a bare
     `datasets.Dataset.map` applying the same chat template (batched, one process): records/s;
   - a retrain after a learning-rate change, `Train().run` for --steps LoRA steps: reading the
     stored token ids (the tokenize stage's lot is a store hit) against the same run tokenizing its
     records itself (what the peers do on every run): wall time of each, and the ratio.
2. Packing on/off: the same records at max_seq_length 256, --steps LoRA steps each: padding
   fraction of the batches and real (non-padding) tokens per second.
3. Distillation against SFT: the demo project (copied to bench/.work/distill/) is built as the
   teacher; two students (the demo with a tenth of its pretraining, so they start weak) train
   the same LoRA with method lora and with method distill (teacher: the demo's model); their
   golden metrics side by side, as `opensem build` prints them.

Run from the project root:  .venv/bin/python bench/training_data.py [--records 100000] [--steps 20] [--parts 123]
"""

from __future__ import annotations

import argparse
import logging
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / ".work" / "training-data"
sys.path.insert(0, str(ROOT))

WORDS = (
    "espresso grind dose shot crema tamp puck basket water temperature pressure beans roast milk steam "
    "latte ratio seconds bitter sour extraction burr grinder pour body flavour"
).split()


def chats(count: int) -> list[dict]:
    """Deterministic chat records of varied length (8 to 120 words an answer)."""
    rng = random.Random(7)
    out = []
    for i in range(count):
        question = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14))) + "?"
        answer = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 120))) + "."
        out.append(
            {
                "id": f"r{i}",
                "source": "bench",
                "messages": [
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": answer},
                ],
            }
        )
    return out


def context(stage: str):
    from opensem.core.stage import StageContext

    return StageContext(
        project_root=WORK,
        job_id="bench",
        stage_name=stage,
        work_dir=WORK / "work" / stage,
        cache_dir=WORK / "cache",
        log=logging.getLogger("bench"),
    )


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def tokenize_stage(split: Path, base: Path, packing: bool) -> tuple[Path, float]:
    from opensem.stages.tokenize import Tokenize, TokenizeParams

    out = fresh(WORK / ("tokens-packed" if packing else "tokens"))
    params = TokenizeParams.model_validate(
        {"training": {"max_seq_length": 256, "packing": packing, "loss_on": "all"}}
    )
    started = time.perf_counter()
    Tokenize().run(params, {"train": split, "base": base}, out, context("tokenize"))
    return out, time.perf_counter() - started


def datasets_map(records: list[dict], base: Path) -> float:
    """The peer: what a trl/axolotl-style script does before every run."""
    from datasets import Dataset, disable_progress_bars
    from transformers import AutoTokenizer

    disable_progress_bars()
    tokenizer = AutoTokenizer.from_pretrained(base / "model")
    started = time.perf_counter()
    dataset = Dataset.from_list([{"messages": r["messages"]} for r in records])

    def encode(batch: dict) -> dict:
        texts = [tokenizer.apply_chat_template(m, tokenize=False) for m in batch["messages"]]
        return {
            "input_ids": tokenizer(
                texts, truncation=True, max_length=256, add_special_tokens=False
            )["input_ids"]
        }

    dataset.map(encode, batched=True, remove_columns=["messages"])
    return time.perf_counter() - started


def train(inputs: dict[str, Path], steps: int, packing: bool, name: str) -> tuple[float, object]:
    from opensem.stages.train import Train
    from opensem.training.config import TrainParams

    params = TrainParams.model_validate(
        {
            "method_config": {"type": "lora", "rank": 8, "dropout": 0.0},
            "training": {
                "max_steps": steps,
                "learning_rate": 0.002,
                "max_seq_length": 256,
                "packing": packing,
                "logging_steps": steps,
            },
            "compute": {"batch_size": 8},
            "seed": 1,
        }
    )
    out = fresh(WORK / "out" / name)
    shutil.rmtree(WORK / "work" / "train", ignore_errors=True)
    started = time.perf_counter()
    result = Train().run(params, inputs, out, context("train"))
    return time.perf_counter() - started, result


def retrain(kind: str, steps: int) -> float:
    """Wall time of `Train().run` in a fresh process: from the stored ids (hit) or from the split (miss)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--retrain", kind, "--steps", str(steps)], check=True)
    return time.perf_counter() - started


def tokenize_cache(count: int, steps: int, base: Path) -> None:
    from opensem.data.records import write_records

    records = chats(count)
    split = fresh(WORK / "split")
    write_records(split / "train.jsonl", records)
    import datasets  # noqa: F401,E401  (imported before any timing: both sides pay them equally otherwise)

    tokens, stage_s = tokenize_stage(split, base, packing=False)
    peer_s = datasets_map(records, base)
    print(f"\n1. tokenize {count:,} records (tiny Llama tokenizer, chat template, max 256)")
    print(f"   tokenize stage  {stage_s:7.2f} s  {count / stage_s:9,.0f} records/s")
    print(
        f"   datasets.map    {peer_s:7.2f} s  {count / peer_s:9,.0f} records/s   stage / map time: "
        f"{stage_s / peer_s:.2f}x"
    )
    del records  # the retrains run in fresh processes, as a build's train stage does
    hit_s, miss_s = retrain("hit", steps), retrain("miss", steps)
    print(
        f"   retrain after a learning-rate change ({steps} LoRA steps, a fresh process each, imports included):"
    )
    print(f"   from stored tokens (store hit)  {hit_s:7.2f} s")
    print(
        f"   re-tokenizing in the run        {miss_s:7.2f} s   re-tokenizing / store hit: {miss_s / hit_s:.2f}x"
    )


def packing(count: int, steps: int, base: Path) -> None:
    from opensem.data.records import write_records
    from opensem.training.tokenized import padding_fraction, read_sequences

    split = fresh(WORK / "split-small")
    write_records(split / "train.jsonl", chats(count))
    print(f"\n2. packing on/off ({count:,} records, max 256, batch 8, {steps} LoRA steps)")
    for packed in (False, True):
        tokens, _ = tokenize_stage(split, base, packing=packed)
        sequences = read_sequences(tokens, "train")
        seconds, result = train({"tokens": tokens, "base": base}, steps, packed, f"pack-{packed}")
        print(
            f"   packing {'on ' if packed else 'off'}  {len(sequences):6,} sequences  padding "
            f"{padding_fraction(sequences, 8):5.1%}  "
            f"{result.metrics['tokens_per_s']:8,.0f} real tokens/s  ({seconds:.1f} s with loading)"
        )


def golden(output: str) -> dict[str, str]:
    rows = {}
    for name in ("golden.loss", "golden.token_f1", "golden.rouge_l", "golden.judge_score"):
        match = re.search(rf"{re.escape(name)}\s*│\s*([-\d.]+)\s*│\s*([-\d.]+)", output)
        rows[name] = f"{match.group(1)} -> {match.group(2)}" if match else "?"
    return rows


def distillation() -> None:
    project = WORK / "distill"
    if not (project / "manifests" / "tiny-demo.lock").is_file():
        fresh(project)
        shutil.copytree(ROOT / "data" / "tiny-demo", project / "data" / "tiny-demo")
        (project / "manifests").mkdir()
        shutil.copy(ROOT / "manifests" / "tiny-demo.yaml", project / "manifests" / "tiny-demo.yaml")
    demo = (project / "manifests" / "tiny-demo.yaml").read_text()
    student = (
        demo.replace("max_steps: 400", "max_steps: 40")
        .replace("learning_rate: 0.0003", "learning_rate: 0.003")
        .replace("max_steps: 30", "max_steps: 60")
    )
    (project / "manifests" / "student-lora.yaml").write_text(
        student.replace("job_id: tiny-demo", "job_id: student-lora")
    )
    distilled = student.replace(
        "type: lora",
        "type: distill\n  teacher: {manifest: manifests/tiny-demo.yaml}\n  temperature: 2.0\n  distill_alpha: 0.7",
    )
    (project / "manifests" / "student-distill.yaml").write_text(
        distilled.replace("job_id: tiny-demo", "job_id: student-distill")
    )
    for job in ("student-lora", "student-distill"):  # the golden set lives at data/<job_id>/golden/
        if not (project / "data" / job / "golden").is_dir():
            shutil.copytree(
                ROOT / "data" / "tiny-demo" / "golden", project / "data" / job / "golden"
            )
    opensem = str(Path(sys.executable).parent / "opensem")
    print(
        "\n3. distillation against SFT (students: the demo with 40 pretraining steps instead of 400; 60 LoRA steps, "
        "lr 0.003)"
    )
    print(f"   {'':18} {'teacher (demo)':>18} {'student lora':>18} {'student distill':>18}")
    outputs = {}
    for name in ("tiny-demo", "student-lora", "student-distill"):
        done = subprocess.run(
            [opensem, "build", f"manifests/{name}.yaml"],
            cwd=project,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            print(done.stdout[-3000:], done.stderr[-3000:])
            raise SystemExit(f"building {name} failed")
        outputs[name] = golden(done.stderr)  # the console (and its tables) is stderr
    for metric in outputs["tiny-demo"]:
        print(f"   {metric:18} " + " ".join(f"{outputs[name][metric]:>18}" for name in outputs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument(
        "--parts",
        default="123",
        help="which parts to run: 1 tokenize cache, 2 packing, 3 distillation",
    )
    parser.add_argument(
        "--retrain", choices=("hit", "miss"), help=argparse.SUPPRESS
    )  # part 1's child process
    args = parser.parse_args()
    if args.retrain:
        inputs = {"tokens": WORK / "tokens"} if args.retrain == "hit" else {"train": WORK / "split"}
        train({**inputs, "base": WORK / "base"}, args.steps, False, args.retrain)
        return
    logging.basicConfig(level=logging.WARNING)
    from opensem.training.tiny import make_tiny_model

    base = WORK / "base"
    if not (base / "model" / "config.json").is_file():
        make_tiny_model(fresh(base) / "model")
    if "1" in args.parts:
        tokenize_cache(args.records, args.steps, base)
    if "2" in args.parts:
        packing(2_000, args.steps * 2, base)
    if "3" in args.parts:
        distillation()


if __name__ == "__main__":
    main()
