"""Train-stage overhead: opensem's train stage against a bare trl script doing the same training.

Both train the same LoRA (rank 8 on every linear layer) on the tiny demo Llama, on the demo's
instruction records, for the same steps, batch, sequence length and learning rate, on the CPU:

- peer: the script a user would write with trl alone: a messages dataset, SFTTrainer with a
  peft LoraConfig, train, save the adapter;
- opensem: `Train().run(...)`, the stage as the engine calls it: record loading and shape checks,
  the hardware preflight, backend choice, training, adapter normalization, metrics.jsonl and the
  loss-curve PNG.

Each run is a fresh process (imports included, as a build pays them); the two alternate so a
slow moment of the machine hits both. Each side's cost is its best wall time of --runs (medians
and CPU times are printed too; on a shared machine they swing with its other work). Target:
opensem's wall time within 10% of the peer's. Work files go to bench/.work/train/ (git-ignored).

With --model smollm2 both train on SmolLM2-135M-Instruct (bench/real_model.py) instead, rank 16,
batch 4, 256 tokens: the real model's figure.

Run from the project root:  .venv/bin/python bench/train_overhead.py [--runs 5] [--steps 60] [--model smollm2]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / ".work" / "train"
TARGETS = {
    "tiny": 1.10,
    "smollm2": 1.05,
}  # the real model's steps are long enough that overhead must vanish

PEER = """
import time; started = time.perf_counter()
import json, sys, warnings
warnings.simplefilter("ignore")
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer
work, steps, base, rank, batch = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
records = [json.loads(line) for line in open(f"{work}/split/train.jsonl")]
tokenizer = AutoTokenizer.from_pretrained(f"{base}/model")
model = AutoModelForCausalLM.from_pretrained(f"{base}/model")
args = SFTConfig(output_dir=f"{work}/peer-out", max_steps=steps, learning_rate=3e-3, per_device_train_batch_size=batch,
                 logging_steps=5, max_length=256, bf16=False, gradient_checkpointing=False, report_to="none",
                 disable_tqdm=True, seed=42, use_cpu=True)
peft = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
dataset = Dataset.from_list([{"messages": r["messages"]} for r in records])
trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=peft)
trainer.train()
trainer.save_model(f"{work}/peer-out/adapter")
print(json.dumps({"seconds": time.perf_counter() - started, "steps": trainer.state.global_step}))
"""

OPENSEM = """
import time; started = time.perf_counter()
import json, shutil, sys
from pathlib import Path
from opensem.stages.base import StageContext
from opensem.stages.train import Train
work, steps, base, rank, batch = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
out = work / "opensem-out"
shutil.rmtree(out, ignore_errors=True)
shutil.rmtree(work / "opensem-work", ignore_errors=True)
out.mkdir()
params = Train.Params.model_validate({"method_config": {"rank": rank, "alpha": 2 * rank, "dropout": 0.0}, "seed": 42,
    "training": {"max_steps": steps, "learning_rate": 3e-3, "logging_steps": 5, "max_seq_length": 256}, "compute": {"batch_size": batch}})
ctx = StageContext(project_root=work, job_id="bench", stage_name="train", work_dir=work / "opensem-work", cache_dir=work / "cache")
result = Train().run(params, {"train": work / "split", "base": base}, out, ctx)
print(json.dumps({"seconds": time.perf_counter() - started, "steps": result.metrics["steps"]}))
"""


def prepare(model: str) -> list[str]:
    """The base model (tiny, or SmolLM2) and the demo's instruction records as a train split;
    returns the scripts' arguments after the steps: base folder, rank, batch size."""
    from opensem.data.formats import normalize
    from opensem.training.tiny import make_tiny_model

    if model == "smollm2":
        sys.path.insert(0, str(BENCH))
        from real_model import smollm2_dir

        base, rank, batch = smollm2_dir().parent, 16, 4
    else:
        base, rank, batch = WORK / "base", 8, 8
        if not (base / "model" / "config.json").is_file():
            make_tiny_model(base / "model", hidden_size=64, num_layers=2, vocab_size=2000)
    lines = (
        (ROOT / "data" / "tiny-demo" / "instructions.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()
    )
    records = [
        normalize(json.loads(line), "alpaca", "instructions.jsonl")
        for line in lines
        if line.strip()
    ]
    (WORK / "split").mkdir(parents=True, exist_ok=True)
    (WORK / "split" / "train.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8"
    )
    return [str(base), str(rank), str(batch)]


def timed(code: str, steps: int, extra: list[str]) -> tuple[float, float]:
    """(process wall seconds, process CPU seconds) of one fresh run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), str(WORK), str(steps), *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"run failed:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["steps"] == steps, report
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--model", choices=("tiny", "smollm2"), default="tiny")
    args = parser.parse_args()
    extra = prepare(args.model)
    (
        timed(PEER, 2, extra),
        timed(OPENSEM, 2, extra),
    )  # warm the page cache and any first-run compilation
    peer: list[tuple[float, float]] = []
    ours: list[tuple[float, float]] = []
    for run in range(args.runs):
        for name, code, into in (("peer", PEER, peer), ("opensem", OPENSEM, ours))[
            :: 1 if run % 2 == 0 else -1
        ]:
            into.append(timed(code, args.steps, extra))
            print(
                f"run {run + 1} {name:<8} wall {into[-1][0]:6.2f} s  cpu {into[-1][1]:6.2f} s",
                flush=True,
            )
    print(
        f"\n{args.steps} LoRA steps on {'SmolLM2-135M-Instruct' if args.model == 'smollm2' else 'the tiny Llama'}, "
        f"CPU, {args.runs} fresh processes each (median / best)"
    )
    rows = {}
    for name, runs in (("bare trl script", peer), ("opensem train", ours)):
        walls, cpus = [w for w, _ in runs], [c for _, c in runs]
        rows[name] = (statistics.median(walls), min(walls), statistics.median(cpus))
        print(
            f"  {name:<16} wall {rows[name][0]:6.2f} / {rows[name][1]:6.2f} s   cpu {rows[name][2]:6.2f} s"
        )
    (pw, pb, pc), (ow, ob, oc) = rows["bare trl script"], rows["opensem train"]
    pairs = statistics.median(o[0] / p[0] for p, o in zip(peer, ours))
    print(
        f"  ratio opensem / trl: wall best {ob / pb:.3f}, wall median {ow / pw:.3f}, median of run pairs "
        f"{pairs:.3f}, cpu {oc / pc:.3f}"
    )
    # The best of several runs is each side's cost without the machine's other work (as timeit reports);
    # medians swing with whatever else runs on a shared machine.
    target = TARGETS[args.model]
    print(
        f"  target: wall (best of {args.runs}) within {target:.2f}x: {'met' if ob / pb <= target else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
