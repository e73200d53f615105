"""A merge side by side with what went into it: the base model, each source expert and the merge,
each scored on every golden set the merge inherits (one per expert).

This is the question a merge has to answer: does the merged adapter keep each expert's skill?
The table reads per golden set (skill), with a column per model. Written as compare.json (the
record), compare.md and compare.png (for people); the CLI prints it after a build.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from opensem.core.stage import Progress
from opensem.evaluation.items import Item
from opensem.evaluation.metrics import CATALOGUE
from opensem.evaluation.report import fmt
from opensem.plotting import agg_figure
from opensem.training.generation import GenerationSettings

SHOWN = ("golden.token_f1", "golden.rouge_l", "golden.judge_score", "golden.perplexity")
BASE = "base"


def compare_models(
    base: Any,
    tokenizer: Any,
    models: dict[str, tuple[str, Path]],
    sets: dict[str, list[Item]],
    settings: GenerationSettings,
    judge: Any,
    bar: Progress,
) -> dict[str, Any]:
    """{"sets", "models", "scores": {set: {model: {metric: value}}}} for the base and each model.

    models maps a name to ("adapter" | "model", folder): adapters share the one loaded base.
    """
    from peft import PeftModel

    from opensem.evaluation.suite import EvalSets, judge_side, run_side
    from opensem.training.methods.base import load_model

    scores: dict[str, dict[str, dict[str, float]]] = {name: {} for name in sets}

    def measure(name: str, model: Any) -> None:
        for expert, items in sets.items():
            side = run_side(model, tokenizer, EvalSets(golden=items), settings, bar)
            if judge is not None:
                judge_side(side, items, judge)
            scores[expert][name] = {
                metric: side.metrics[metric] for metric in SHOWN if metric in side.metrics
            }

    measure(BASE, base)  # first: loading an adapter wraps the base in place
    wrapped: Any = None
    for name, (kind, folder) in models.items():
        if kind == "model":
            measure(name, load_model(str(folder), "compare"))
            continue
        if wrapped is None:
            wrapped = PeftModel.from_pretrained(base, str(folder), adapter_name=name)
        else:
            wrapped.load_adapter(str(folder), adapter_name=name)
        wrapped.set_adapter(name)
        measure(name, wrapped)
    return {"sets": list(sets), "models": [BASE, *models], "scores": scores}


def work(sets: dict[str, list[Item]], models: int, batch_size: int) -> int:
    """Progress units of a comparison: per model, every set's scoring batches and answers."""
    from opensem.evaluation.suite import EvalSets

    return (models + 1) * sum(EvalSets(golden=items).work(batch_size) for items in sets.values())


def markdown(comparison: dict[str, Any], title: str) -> str:
    """The comparison as a Markdown table, for the report and the model card."""
    models = comparison["models"]
    lines = [
        f"# {title}: the merge beside its sources",
        "",
        f"| golden set | metric | {' | '.join(models)} |",
        f"| --- | --- |{' --- |' * len(models)}",
    ]
    for expert in comparison["sets"]:
        for metric in SHOWN:
            row = comparison["scores"][expert]
            if any(metric in row.get(model, {}) for model in models):
                cells = [fmt(metric, row.get(model, {}).get(metric)) for model in models]
                lines.append(
                    f"| {expert or 'own'} | {metric.split('.', 1)[1]} | {' | '.join(cells)} |"
                )
    return "\n".join([*lines, "", "Higher is better for every metric but perplexity.", ""])


def plot(comparison: dict[str, Any], path: Path, title: str) -> None:
    """Grouped bars per golden set: one bar per model, a panel per metric."""
    metrics = [
        m
        for m in SHOWN
        if any(
            m in row.get(model, {})
            for row in comparison["scores"].values()
            for model in comparison["models"]
        )
    ]
    with agg_figure(figsize=(4.2 * max(1, len(metrics)), 3.2), dpi=100) as figure:
        figure.suptitle(f"{title}: the merge beside its sources, per golden set")
        models, sets = comparison["models"], comparison["sets"]
        width = 0.8 / max(1, len(models))
        for index, metric in enumerate(metrics):
            axes = figure.add_subplot(1, len(metrics), index + 1)
            for offset, model in enumerate(models):
                values = [comparison["scores"][s].get(model, {}).get(metric) or 0.0 for s in sets]
                axes.bar([i + offset * width for i in range(len(sets))], values, width, label=model)
            axes.set_xticks(
                [i + width * (len(models) - 1) / 2 for i in range(len(sets))],
                [s or "own" for s in sets],
                fontsize=8,
            )
            arrow = "higher is better" if CATALOGUE[metric].higher_is_better else "lower is better"
            axes.set_title(f"{metric}\n({arrow})", fontsize=9)
            axes.tick_params(labelsize=8)
        if metrics:
            figure.axes[0].legend(fontsize=7)
        figure.tight_layout()
        figure.savefig(path, format="png", metadata={"Software": None})


def write(comparison: dict[str, Any], out_dir: Path, title: str) -> None:
    """compare.json, compare.md and the plot into out_dir."""
    (out_dir / "compare.json").write_text(
        json.dumps(comparison, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    (out_dir / "compare.md").write_text(markdown(comparison, title), encoding="utf-8")
    plot(comparison, out_dir / "compare.png", title)


def rich_table(comparison: dict[str, Any], title: str) -> Any:
    """The CLI table: a row per golden set and metric, a column per model; the best model in bold."""
    from rich.table import Table

    table = Table(title=f"{title}: the merge beside its sources", title_justify="left")
    table.add_column("golden set")
    table.add_column("metric")
    for model in comparison["models"]:
        table.add_column(model, justify="right")
    for expert in comparison["sets"]:
        for metric in SHOWN:
            row = comparison["scores"][expert]
            values = [row.get(model, {}).get(metric) for model in comparison["models"]]
            if all(v is None for v in values):
                continue
            known = [v for v in values if v is not None]
            best = (max if CATALOGUE[metric].higher_is_better else min)(known)
            cells = [
                f"[bold]{fmt(metric, v)}[/]"
                if v == best and len(set(known)) > 1
                else fmt(metric, v)
                for v in values
            ]
            table.add_row(expert or "own", metric.split(".", 1)[1], *cells)
    return table
