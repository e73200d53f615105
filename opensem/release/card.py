"""The model card of a release: a Hugging Face style README with provenance by lot number, the
evaluation, what was merged, and how to load each artifact the release ships."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opensem.evaluation.report import comparison_lines


@dataclass(frozen=True)
class Release:
    """What a release holds, as the card describes it."""

    job_id: str
    tag: str
    base_model: str  # a hub id, or base_model/model for a tiny base shipped alongside
    lineage: dict[str, dict[str, str]]  # stage -> {lot, output}, every source's stages included
    report: dict[str, Any]
    gates: list[dict[str, Any]] = field(default_factory=list)
    full_model: bool = False  # method sft (or a merge of whole models): model/ instead of adapter/
    folded: bool = False  # folded/ holds the adapter folded into its base
    quantized: list[dict[str, Any]] = field(default_factory=list)  # each format's quantize.json
    merged_from: list[dict[str, Any]] = field(default_factory=list)  # the merge stage's sources
    comparison: str = ""  # compare.md, when the release is a merge


def model_card(release: Release) -> str:
    """The release's README.md: lineage, metrics, gates and how to load it."""
    r = release
    shipped = r.base_model.startswith("base_model/")
    base_ref = f'f"{{release}}/{r.base_model}"' if shipped else f'"{r.base_model}"'
    kind = "merge" if r.merged_from else "sft" if r.full_model else "lora"
    lines = [
        "---",
        f"base_model: {r.base_model}",
        f"library_name: {'transformers' if r.full_model else 'peft'}",
        f"tags: [opensem, {kind}{', gguf' if any(q['format']['format'] == 'gguf' for q in r.quantized) else ''}]",
        "---",
        "",
        f"# {r.job_id} ({r.tag})",
        "",
        "Built by opensem. Every stage is identified by its SHA256 lot number: the digest of its code",
        "version, parameters and input bytes. `opensem verify` rechecks them against the manifest and data.",
        "",
        "| stage | lot number |",
        "| --- | --- |",
        *(f"| {stage} | `{entry['lot']}` |" for stage, entry in r.lineage.items()),
        "",
    ]
    if r.merged_from:
        lines += ["## Merged from", ""]
        lines += [
            f"- {s['name']} (weight {s['weight']:g})"
            + (f", release lot `{s['release']['lot']}`" if s.get("release") else "")
            for s in r.merged_from
        ]
        lines += [
            "",
            "Stages named `<expert>/<stage>` above are the sources' own, with their lot numbers.",
            "",
        ]
    lines += [
        "## Evaluation: baseline (base model) vs fine-tuned",
        "",
        f"**{r.report['headline']}**",
        "",
        *comparison_lines(r.report),
        "",
        *(
            f"- quality gate passed: `{g['metric']}` {g['rule']} {g['threshold']:g} ({g['detail']})"
            for g in r.gates
        ),
        *([""] if r.gates else []),
        "Details: report.md, report.png and predictions.jsonl.",
        "",
    ]
    if r.comparison:
        lines += [
            line.replace("# ", "## ", 1) if line.startswith("# ") else line
            for line in r.comparison.splitlines()
        ] + [""]
    lines += [
        "## Use",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        'release = "path/to/this/folder"',
    ]
    if r.full_model:
        lines += [
            'model = AutoModelForCausalLM.from_pretrained(f"{release}/model")',
            'tokenizer = AutoTokenizer.from_pretrained(f"{release}/model")',
        ]
    else:
        lines += [
            "from peft import PeftModel",
            f"base = AutoModelForCausalLM.from_pretrained({base_ref})",
            'model = PeftModel.from_pretrained(base, f"{release}/adapter")',
            'tokenizer = AutoTokenizer.from_pretrained(f"{release}/adapter")',
        ]
    if r.folded:
        lines += [
            "# or, folded into the base (no peft needed):",
            'model = AutoModelForCausalLM.from_pretrained(f"{release}/folded")',
        ]
    lines += ["```", ""]
    for q in r.quantized:
        fmt, change = q["format"], q["perplexity_change"]
        lines += [
            f"- quantized/{fmt['format']}/{q['artifact'].removeprefix('quantized/')}: {q['compression_ratio']:.2f}x "
            "smaller than the unquantized weights, "
            f"perplexity {q['perplexity']['unquantized']:.2f} -> {q['perplexity']['quantized']:.2f} ({change:+.2%}) "
            f"on {q['perplexity']['measured_on']}"
        ]
    if any(q["format"]["format"] == "gguf" for q in r.quantized):
        lines += [
            "",
            "GGUF loads in llama.cpp, Ollama and LM Studio, or in transformers with "
            '`AutoModelForCausalLM.from_pretrained(f"{release}/quantized/gguf", gguf_file=...)`.',
        ]
    return "\n".join([*lines, ""])
