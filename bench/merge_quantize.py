"""Merge and quantization: opensem's merge stage against peft's add_weighted_adapter in a script,
and what quantizing the real model costs in size and perplexity.

Merge: the same two LoRA adapters (rank 16 on every linear layer, random nonzero weights) of the
same base, merged with dare_ties (density 0.5, seed 0), on the tiny Llama, on a randomly
initialised Llama of about 100M parameters built locally, and on SmolLM2-135M-Instruct:

- peer: the script a user writes with peft alone: load the base, load both adapters,
  add_weighted_adapter, save the merged adapter;
- opensem: `Merge().run(...)`, the stage as the engine calls it: artifact inspection and the
  refusal checks, the merge, adapter normalization and the tokenizer copy.

Each run is a fresh process (imports included); the two alternate. Wall time is the best of
--runs, peak memory the process's maximum RSS. Target: opensem within 1.1x of peft on both.

Quantization: the quantize stage on SmolLM2, per format this machine can write (gguf q8_0 and
f16 on a CPU; gptq and awq need CUDA), reporting the size ratio against the float32 safetensors
and the perplexity change: on the folded espresso expert and its golden set when the demo
(manifests/espresso.yaml) has been built, else on the bare base and the demo's instructions.

Run from the project root:  .venv/bin/python bench/merge_quantize.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / ".work" / "merge"
TARGET = 1.10
# A shape builds a random Llama; None is SmolLM2-135M-Instruct, the real model (bench/real_model.py).
MODELS: dict[str, dict[str, int] | None] = {
    "tiny": {"hidden_size": 64, "num_layers": 2, "num_heads": 4},
    "100M": {"hidden_size": 896, "num_layers": 12, "num_heads": 14},
    "smollm2": None,
}

PEER = """
import time; started = time.perf_counter()
import json, shutil, sys, torch, warnings
warnings.simplefilter("ignore")
from peft import PeftModel
from transformers import AutoModelForCausalLM
work, name = sys.argv[1], sys.argv[2]
out = f"{work}/{name}/peer-out"
shutil.rmtree(out, ignore_errors=True)
work_started = time.perf_counter()
model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(f"{work}/{name}/base", dtype=torch.float32), f"{work}/{name}/a/adapter", adapter_name="a")
model.load_adapter(f"{work}/{name}/b/adapter", adapter_name="b")
torch.manual_seed(0)
model.add_weighted_adapter(["a", "b"], [1.0, 1.0], "merged", combination_type="dare_ties", density=0.5, majority_sign_method="total")
model.save_pretrained(out, selected_adapters=["merged"])
now = time.perf_counter()
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))  # ru_maxrss keeps the parent's peak across exec
print(json.dumps({"seconds": now - started, "work_s": now - work_started, "rss_mb": int(hwm.split()[1]) / 1024}))
"""

OPENSEM = """
import time; started = time.perf_counter()
import json, shutil, sys, torch, peft, transformers  # imported before the clock, as the peer does
from pathlib import Path
from opensem.stages.base import StageContext
from opensem.stages.merge import Merge, MergeParams
work, name = Path(sys.argv[1]), sys.argv[2]
out = work / name / "opensem-out"
shutil.rmtree(out, ignore_errors=True)
out.mkdir(parents=True)
params = MergeParams.model_validate({"method": "dare_ties", "density": 0.5, "seed": 0, "sources": [
    {"manifest": "a.yaml", "name": "a", "slot": "source0"}, {"manifest": "b.yaml", "name": "b", "slot": "source1"}]})
ctx = StageContext(project_root=work, job_id="bench", stage_name="merge", work_dir=work / "scratch", cache_dir=work / "cache")
inputs = {"base": work / name / "base-stage", "source0": work / name / "a", "source1": work / name / "b"}
work_started = time.perf_counter()
Merge().run(params, inputs, out, ctx)
now = time.perf_counter()
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))  # ru_maxrss keeps the parent's peak across exec
print(json.dumps({"seconds": now - started, "work_s": now - work_started, "rss_mb": int(hwm.split()[1]) / 1024}))
"""


def prepare(name: str, shape: dict[str, int] | None) -> None:
    """The base (also as a base_model stage's out/), and two random LoRA adapters of it."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(BENCH))
    from real_model import smollm2_dir

    from opensem.training.tiny import count_parameters, make_tiny_model
    from tests.adapters import make_adapter

    folder = WORK / name
    folder.mkdir(parents=True, exist_ok=True)
    if shape is None and not (folder / "base").exists():
        (folder / "base").symlink_to(smollm2_dir(), target_is_directory=True)
    elif shape is not None and not (folder / "base" / "config.json").is_file():
        make_tiny_model(folder / "base", vocab_size=2000, **shape)
    stage = folder / "base-stage" / "model"
    if not stage.exists():
        stage.parent.mkdir(parents=True, exist_ok=True)
        stage.symlink_to(folder / "base", target_is_directory=True)
    for adapter, seed in (("a", 1), ("b", 2)):
        if not (folder / adapter / "adapter" / "adapter_config.json").is_file():
            make_adapter(
                folder / "base",
                folder / adapter / "adapter",
                rank=16,
                seed=seed,
                targets="all-linear",
            )
    print(f"{name}: {count_parameters(folder / 'base') / 1e6:.1f}M parameters")


def run(code: str, name: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), str(WORK), name],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if done.returncode != 0:
        sys.exit(f"run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def merge_bench(runs: int) -> None:
    print(
        "\nmerge of two rank-16 adapters with dare_ties (fresh processes: best wall time of",
        runs,
        "runs, imports included;",
    )
    print("after imports: best time of the merge itself, base loading to saved adapter; peak RSS)")
    print(
        f"  {'model':<6} {'peft s':>8} {'opensem s':>10} {'ratio':>6}   {'merge: peft':>11} {'opensem':>8} "
        f"{'ratio':>6}   {'peft MiB':>9} {'opensem MiB':>12} {'ratio':>6}"
    )
    for name in MODELS:
        peer, ours = [], []
        for _ in range(runs):
            peer.append(run(PEER, name))
            ours.append(run(OPENSEM, name))
        t_peer, t_ours = min(r["seconds"] for r in peer), min(r["seconds"] for r in ours)
        w_peer, w_ours = min(r["work_s"] for r in peer), min(r["work_s"] for r in ours)
        m_peer, m_ours = max(r["rss_mb"] for r in peer), max(r["rss_mb"] for r in ours)
        verdict = "ok" if t_ours / t_peer <= TARGET and m_ours / m_peer <= TARGET else "MISSED"
        print(
            f"  {name:<6} {t_peer:8.2f} {t_ours:10.2f} {t_ours / t_peer:6.3f}   {w_peer:11.2f} {w_ours:8.2f} "
            f"{w_ours / w_peer:6.3f}"
            f"   {m_peer:9.0f} {m_ours:12.0f} {m_ours / m_peer:6.3f}  (target <= {TARGET}: {verdict})"
        )


def quantize_bench(name: str) -> None:
    """The quantize stage on a model: the folded espresso expert when the demo has published one
    (SmolLM2), measured on its golden set; else the bare base, on 64 demo instruction records."""
    import torch

    sys.path.insert(0, str(ROOT))
    from opensem.data.formats import normalize
    from opensem.stages.base import StageContext
    from opensem.stages.quantize import Quantize, QuantizeParams

    folder = WORK / name
    split = folder / "split"
    split.mkdir(exist_ok=True)
    model, what = folder / "base-stage", f"the {name} base"
    expert = folded_expert(folder) if name == "smollm2" else None
    if expert is not None:
        model, what = (
            expert,
            "the folded espresso expert (SmolLM2-135M-Instruct + its published adapter)",
        )
        golden = ROOT / "data" / "tiny-demo" / "golden" / "golden.jsonl"
        rows = [
            json.loads(line)
            for line in golden.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        records = [
            {
                "messages": [
                    {"role": "user", "content": r["question"]},
                    {"role": "assistant", "content": r["answer"]},
                ]
            }
            for r in rows
        ]
        measured = f"the {len(records)} golden questions and answers"
    else:
        lines = (
            (ROOT / "data" / "tiny-demo" / "instructions.jsonl")
            .read_text(encoding="utf-8")
            .splitlines()
        )
        records = [
            normalize(json.loads(line), "alpaca", "instructions.jsonl")
            for line in lines
            if line.strip()
        ][:64]
        measured = "64 demo instruction records"
    (split / "test.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8"
    )
    ctx = StageContext(
        project_root=folder,
        job_id="bench",
        stage_name="quantize",
        work_dir=folder / "scratch",
        cache_dir=folder / "cache",
    )
    formats = [{"format": "gguf", "type": "q8_0"}, {"format": "gguf", "type": "f16"}]
    formats += (
        [{"format": "gptq", "bits": 4}, {"format": "awq", "bits": 4}]
        if torch.cuda.is_available()
        else []
    )
    print(f"\nquantizing {what} (float32 weights; perplexity on {measured})")
    for options in formats:
        out = folder / f"quantized-{options['format']}-{options.get('type', options.get('bits'))}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        started = time.perf_counter()
        Quantize().run(
            QuantizeParams.model_validate({"format": options, "calibration_records": 64}),
            {"model": model, "test": split},
            out,
            ctx,
        )
        report = json.loads((out / "quantize.json").read_text())
        p = report["perplexity"]
        print(
            f"  {options['format']} {options.get('type', str(options.get('bits')) + ' bits'):<5} "
            f"{report['bytes']['quantized'] / 2**20:8.1f} MiB, "
            f"{report['compression_ratio']:5.2f}x smaller; perplexity {p['unquantized']:.2f} -> "
            f"{p['quantized']:.2f} ({report['perplexity_change']:+.3%}); "
            f"{time.perf_counter() - started:.1f} s"
        )
    if not torch.cuda.is_available():
        print(
            "  gptq, awq: need CUDA and the gpu extra (llm-compressor); not measured on this machine"
        )


def folded_expert(folder: Path) -> Path | None:
    """The espresso demo's published adapter folded into its shipped base (as the fold stage does), or None."""
    import yaml

    releases = [
        project
        / yaml.safe_load((project / "manifests" / "espresso.lock").read_text())["published"]["uri"]
        for project in (ROOT, BENCH / ".work" / "demo-clone")
        if (project / "manifests" / "espresso.lock").is_file()
    ]
    release = next(
        (r for r in releases if (r / "adapter").is_dir()), None
    )  # this project's build, or bench/demo_fresh_clone.py's
    if release is None:
        return None
    stage = folder / "folded-stage"
    if not (stage / "model" / "config.json").is_file():
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        base = AutoModelForCausalLM.from_pretrained(
            release / "base_model" / "model", dtype=torch.float32
        )
        PeftModel.from_pretrained(base, release / "adapter").merge_and_unload().save_pretrained(
            stage / "model"
        )
        AutoTokenizer.from_pretrained(release / "adapter").save_pretrained(stage / "model")
    return stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for name, shape in MODELS.items():
        prepare(name, shape)
    print(
        f"prepared in {time.perf_counter() - started:.0f} s; cpu peak so far "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )
    merge_bench(args.runs)
    quantize_bench("smollm2")


if __name__ == "__main__":
    main()
