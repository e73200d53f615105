"""The baseline vs fine-tuned report: JSON (the record), Markdown and PNG (for people), CLI table.

"Accuracy" in the headline is the first measured of ACCURACY_ORDER (the golden judge score when a
judge is configured, else golden token F1, else the test split's), and the report always names
which one it used. Its change is relative: (fine-tuned - baseline) / baseline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opensem.evaluation.metrics import ACCURACY_ORDER, CATALOGUE, DIGITS, improvement, mean
from opensem.plotting import agg_figure

if TYPE_CHECKING:  # the CLI prints reports without loading pydantic (the no-op build path)
    from opensem.evaluation.suite import Side

REPORT_FORMAT = 1


def build_report(
    base: Side,
    tuned: Side,
    judge: dict[str, Any] | None = None,
    rows: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The comparison of two sides: every metric measured on either, with deltas, the headline and,
    when golden items carry tags, the golden scores per tag (rows as evaluate's predictions.jsonl)."""
    metrics: dict[str, dict[str, Any]] = {}
    for name, spec in CATALOGUE.items():
        before, after = base.metrics.get(name), tuned.metrics.get(name)
        if before is None and after is None:
            continue
        row: dict[str, Any] = {
            "base": before,
            "tuned": after,
            "higher_is_better": spec.higher_is_better,
            "delta": None,
            "change": None,
        }
        if before is not None and after is not None:
            row["delta"] = round(after - before, DIGITS)
            gain = improvement(name, before, after)
            row["change"] = "better" if gain > 0 else "worse" if gain < 0 else "same"
        metrics[name] = row
    accuracy = _accuracy(metrics)
    return {
        "format": REPORT_FORMAT,
        "headline": _headline(accuracy, metrics),
        "accuracy": accuracy,
        "metrics": metrics,
        "counts": {
            "base": dict(sorted(base.counts.items())),
            "tuned": dict(sorted(tuned.counts.items())),
        },
        "judge": None
        if judge is None
        else {**judge, "invalid": {"base": base.judge_invalid, "tuned": tuned.judge_invalid}},
        "by_tag": tag_breakdown(rows or []),
    }


def tag_breakdown(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean golden token F1 and judge score of each model per tag: where the adapter helps, and where not."""
    golden = [row for row in rows if row["set"] == "golden"]
    breakdown: dict[str, dict[str, Any]] = {}
    for tag in sorted({tag for row in golden for tag in row.get("tags", [])}):
        tagged = [row for row in golden if tag in row.get("tags", [])]
        entry: dict[str, Any] = {"items": len(tagged)}
        for side in ("base", "tuned"):
            scores = [row.get(side, {}).get("scores", {}) for row in tagged]
            entry[side] = {
                m: round(v, DIGITS)
                for m in ("token_f1", "judge_score")
                if (v := mean(score.get(m) for score in scores)) is not None
            }
        breakdown[tag] = entry
    return breakdown


def _accuracy(metrics: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    for name in ACCURACY_ORDER:
        row = metrics.get(name)
        if row and row["delta"] is not None:
            change = round(100.0 * row["delta"] / row["base"], 2) if row["base"] else None
            return {
                "metric": name,
                "label": CATALOGUE[name].label,
                "base": row["base"],
                "tuned": row["tuned"],
                "change_pct": change,
            }
    return None


def _headline(accuracy: dict[str, Any] | None, metrics: dict[str, dict[str, Any]]) -> str:
    if accuracy is None:
        row = metrics.get("test.perplexity")
        if row is None or row["delta"] is None:
            return "No accuracy measured: no golden set and no test questions."
        change = 100.0 * row["delta"] / row["base"]
        return (
            "No accuracy measured (no golden set or test questions); held-out perplexity "
            f"{row['base']:.2f} -> {row['tuned']:.2f} ({change:+.1f}%)."
        )
    what = (
        f"{accuracy['label']} {fmt(accuracy['metric'], accuracy['base'])} -> "
        f"{fmt(accuracy['metric'], accuracy['tuned'])}"
    )
    change = accuracy["change_pct"]
    if change is None:
        return (
            f"Accuracy improved from 0 ({what})."
            if accuracy["tuned"] > 0
            else f"Accuracy unchanged ({what})."
        )
    if change > 0:
        return f"Accuracy improved by {change:.1f}% ({what})."
    if change < 0:
        return f"Accuracy fell by {-change:.1f}% ({what})."
    return f"Accuracy unchanged ({what})."


def fmt(name: str, value: float | None) -> str:
    """A metric value as people read it: perplexity with 2 decimals, losses 4, scores and rates 3."""
    if value is None:
        return "-"
    measure = name.split(".", 1)[-1]
    digits = {"perplexity": 2, "loss": 4, "judge_score": 2}.get(measure, 3)
    return f"{value:.{digits}f}"


def fmt_delta(name: str, row: dict[str, Any]) -> str:
    """A metric's change as text: signed, and marked when it is a regression."""
    if row["delta"] is None:
        return "-"
    text = fmt(name, abs(row["delta"]))
    return f"{'+' if row['delta'] >= 0 else '-'}{text}"


def write_report(
    report: dict[str, Any], rows: list[dict[str, Any]], out_dir: Path, title: str
) -> None:
    """report.json, report.md and report.png into out_dir; the same report gives the same bytes."""
    (out_dir / "report.json").write_text(
        json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    (out_dir / "report.md").write_text(markdown(report, rows, title), encoding="utf-8")
    plot(report, out_dir / "report.png", title)


def comparison_lines(report: dict[str, Any]) -> list[str]:
    """The Markdown table of baseline vs fine-tuned (also used in the model card)."""
    lines = [
        "| metric | baseline | fine-tuned | delta | change |",
        "| --- | ---: | ---: | ---: | :---: |",
    ]
    for name, row in ordered(report):
        lines.append(
            f"| {CATALOGUE[name].label} (`{name}`) | {fmt(name, row['base'])} | {fmt(name, row['tuned'])} | "
            f"{fmt_delta(name, row)} | {row['change'] or '-'} |"
        )
    return lines


def ordered(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The report's metrics in catalogue order (test, golden, safety), whatever order JSON kept."""
    return [(name, report["metrics"][name]) for name in CATALOGUE if name in report["metrics"]]


def _cell(text: str, width: int = 100) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def markdown(report: dict[str, Any], rows: list[dict[str, Any]], title: str) -> str:
    """The human-readable report: headline, comparison table, counts, and the golden answers side by side."""
    accuracy = report["accuracy"]
    lines = [f"# Evaluation: {title}", "", f"**{report['headline']}**", ""]
    if accuracy:
        lines += [
            f"Accuracy is `{accuracy['metric']}` ({accuracy['label']}); the change is relative to the baseline (the "
            "base model).",
            "",
        ]
    lines += ["## Baseline vs fine-tuned", "", *comparison_lines(report), ""]
    counts = report["counts"]["tuned"]
    lines += [
        "Measured on: " + ", ".join(f"{key} {value}" for key, value in counts.items()) + ".",
        "",
    ]
    if report["judge"]:
        judge = report["judge"]
        lines += [
            f"Judge: `{judge['model']}`; verdicts that stayed invalid after retries: baseline "
            f"{judge['invalid']['base']}, fine-tuned {judge['invalid']['tuned']}.",
            "",
        ]
    if report.get("by_tag"):
        lines += [
            "## Golden set by tag",
            "",
            "| tag | items | F1 baseline | F1 fine-tuned | judge baseline | judge fine-tuned |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for tag, entry in report["by_tag"].items():
            base, tuned = entry["base"], entry["tuned"]
            lines.append(
                f"| {_cell(tag, 40)} | {entry['items']} | {fmt('f1', base.get('token_f1'))} | "
                f"{fmt('f1', tuned.get('token_f1'))} "
                f"| {fmt('judge_score', base.get('judge_score'))} | {fmt('judge_score', tuned.get('judge_score'))} |"
            )
        lines.append("")
    golden = [row for row in rows if row["set"] == "golden"]
    if golden:
        lines += [
            "## Golden set answers",
            "",
            "| question | reference | baseline | fine-tuned | F1 base | F1 tuned |",
            "| --- | --- | --- | --- | ---: | ---: |",
        ]
        for row in golden:
            base, tuned = row.get("base", {}), row.get("tuned", {})
            lines.append(
                f"| {_cell(row['question'], 80)} | {_cell(row['reference'], 80)} | {_cell(base.get('answer', ''))} "
                f"| {_cell(tuned.get('answer', ''))} "
                f"| {fmt('f1', base.get('scores', {}).get('token_f1'))} | "
                f"{fmt('f1', tuned.get('scores', {}).get('token_f1'))} |"
            )
        lines.append("")
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path, title: str) -> None:
    """One small bar chart per metric, baseline beside fine-tuned; Agg canvas, no pyplot state."""
    names = [name for name, _ in ordered(report)] or ["(none)"]
    columns = min(4, len(names))
    lines = (len(names) + columns - 1) // columns
    with agg_figure(figsize=(3.0 * columns, 2.6 * lines + 0.6), dpi=100) as figure:
        figure.suptitle(f"{title}: baseline vs fine-tuned")
        for index, name in enumerate(names):
            axes = figure.add_subplot(lines, columns, index + 1)
            row = report["metrics"].get(name, {})
            values = [row.get("base"), row.get("tuned")]
            heights = [value if value is not None else 0.0 for value in values]
            bars = axes.bar(["baseline", "fine-tuned"], heights, color=["#9e9e9e", "#1f77b4"])
            for bar, value in zip(bars, values):
                axes.annotate(
                    fmt(name, value),
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=8,
                )
            arrow = "higher is better" if row.get("higher_is_better", True) else "lower is better"
            axes.set_title(f"{name}\n({arrow})", fontsize=9)
            axes.tick_params(labelsize=8)
            measure = name.split(".", 1)[-1]
            bounded = {
                "judge_score": 5.0,
                "exact_match": 1.0,
                "token_f1": 1.0,
                "rouge_l": 1.0,
                "refusal_rate": 1.0,
            }
            axes.set_ylim(0, 1.15 * (bounded.get(measure) or max([*heights, 1e-9])))
        figure.tight_layout()
        figure.savefig(path, format="png", metadata={"Software": None})


def rich_table(report: dict[str, Any], title: str) -> Any:
    """The CLI table: baseline vs fine-tuned per metric, the delta coloured by whether it is better."""
    from rich.table import Table

    table = Table(title=f"{title}: baseline vs fine-tuned", title_justify="left")
    for column, justify in (
        ("metric", "left"),
        ("baseline", "right"),
        ("fine-tuned", "right"),
        ("delta", "right"),
        ("", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    colours = {"better": "green", "worse": "red"}
    for name, row in ordered(report):
        colour = colours.get(row["change"] or "")
        delta = fmt_delta(name, row)
        table.add_row(
            name,
            fmt(name, row["base"]),
            fmt(name, row["tuned"]),
            f"[{colour}]{delta}[/]" if colour else delta,
            row["change"] or "",
        )
    accuracy = report["accuracy"]
    note = f"accuracy = {accuracy['metric']}" if accuracy else "no accuracy metric measured"
    table.caption = f"{note}; delta = fine-tuned - baseline"
    return table


def print_report(report_file: Path, title: str, console: Any) -> bool:
    """Print the CLI table and the headline of a stored report; False when there is none."""
    try:
        report = json.loads(Path(report_file).read_text(encoding="utf-8"))
        table = rich_table(report, title)
    except (OSError, ValueError, KeyError):
        return False
    console.print(table)
    from opensem.evaluation.answers import side_by_side

    answers = side_by_side(Path(report_file).with_name("predictions.jsonl"))
    if answers is not None:
        console.print(answers)
    console.print(f"[bold]{report['headline']}[/]")
    return True
