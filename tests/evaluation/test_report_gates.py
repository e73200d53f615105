"""The baseline vs fine-tuned report and the quality gates checked against it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from opensem.evaluation.config import QualityGate
from opensem.evaluation.gates import GatesFailed, check, check_all, table
from opensem.evaluation.report import build_report, print_report, write_report
from opensem.evaluation.suite import Side


def sides(**overrides: float | None) -> tuple[Side, Side]:
    base = {
        "test.loss": 2.0,
        "test.perplexity": 7.389056,
        "golden.token_f1": 0.2,
        "golden.exact_match": 0.0,
        "safety.refusal_rate": 0.5,
    }
    tuned = {
        "test.loss": 1.5,
        "test.perplexity": 4.481689,
        "golden.token_f1": 0.3,
        "golden.exact_match": 0.0,
        "safety.refusal_rate": 0.25,
    }
    for key, value in overrides.items():
        side, name = key.split("__")
        target = base if side == "base" else tuned
        if value is None:
            target.pop(name.replace("_", ".", 1), None)
        else:
            target[name.replace("_", ".", 1)] = value
    counts = {"golden.items": 2, "test.records": 3}
    return Side(base, counts), Side(tuned, counts, judge_invalid=1)


def test_report_compares_every_metric_with_direction() -> None:
    report = build_report(*sides(), judge={"model": "judge-1"})
    perplexity, f1, refusals = (
        report["metrics"][n] for n in ("test.perplexity", "golden.token_f1", "safety.refusal_rate")
    )
    assert (
        perplexity["delta"] == pytest.approx(-2.907367)
        and perplexity["change"] == "better"
        and not perplexity["higher_is_better"]
    )
    assert (
        f1["change"] == "better"
        and refusals["change"] == "worse"
        and report["metrics"]["golden.exact_match"]["change"] == "same"
    )
    assert report["accuracy"] == {
        "metric": "golden.token_f1",
        "label": "golden token F1",
        "base": 0.2,
        "tuned": 0.3,
        "change_pct": 50.0,
    }
    assert report["headline"] == "Accuracy improved by 50.0% (golden token F1 0.200 -> 0.300)."
    assert report["judge"] == {"model": "judge-1", "invalid": {"base": 0, "tuned": 1}}


@pytest.mark.parametrize(
    ("overrides", "headline"),
    [
        (
            {"tuned__golden_token_f1": 0.1},
            "Accuracy fell by 50.0% (golden token F1 0.200 -> 0.100).",
        ),
        (
            {"base__golden_token_f1": 0.0},
            "Accuracy improved from 0 (golden token F1 0.000 -> 0.300).",
        ),
        (
            {"base__golden_judge_score": 2.0, "tuned__golden_judge_score": 3.0},
            "Accuracy improved by 50.0% (golden judge score (1-5) 2.00 -> 3.00).",
        ),
        (
            {"base__golden_token_f1": None, "tuned__golden_token_f1": None},
            "No accuracy measured (no golden set or test questions); held-out perplexity 7.39 -> 4.48 (-39.3%).",
        ),
    ],
)
def test_headline_names_its_accuracy_metric(
    overrides: dict[str, float | None], headline: str
) -> None:
    assert build_report(*sides(**overrides))["headline"] == headline


def golden_row(
    ident: str, tags: list[str], base: float, tuned: float, judged: int | None = None
) -> dict:
    scores = {"token_f1": tuned, **({"judge_score": judged} if judged else {})}
    return {
        "set": "golden",
        "id": ident,
        "question": "Q|?",
        "reference": "R",
        "tags": tags,
        "base": {"answer": "x", "scores": {"token_f1": base}},
        "tuned": {"answer": "R", "scores": scores},
    }


def test_golden_scores_per_tag() -> None:
    rows = [
        golden_row("g1", ["water"], 0.0, 1.0, 4),
        golden_row("g2", ["water", "grind"], 0.5, 0.5, None),
        golden_row("g3", [], 0.2, 0.2),
    ]
    by_tag = build_report(*sides(), rows=rows)["by_tag"]
    assert by_tag == {
        "grind": {"items": 1, "base": {"token_f1": 0.5}, "tuned": {"token_f1": 0.5}},
        "water": {
            "items": 2,
            "base": {"token_f1": 0.25},
            "tuned": {"token_f1": 0.75, "judge_score": 4.0},
        },
    }
    assert build_report(*sides())["by_tag"] == {}


def test_report_files_are_byte_identical_and_readable(tmp_path: Path) -> None:
    rows = [golden_row("g1", ["water"], 0.0, 1.0)]
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        write_report(build_report(*sides(), rows=rows), rows, tmp_path / folder, "expert")
    for name in ("report.json", "report.md", "report.png"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), (
            name
        )
    markdown = (tmp_path / "one" / "report.md").read_text()
    assert (
        "**Accuracy improved by 50.0%" in markdown
        and "| held-out perplexity (`test.perplexity`) | 7.39 | 4.48 | -2.91 | better |" in markdown
    )
    assert (
        "| Q\\|? | R | x | R | 0.000 | 1.000 |" in markdown
        and "| water | 1 | 0.000 | 1.000 | - | - |" in markdown
    )
    assert (tmp_path / "one" / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = io.StringIO()
    assert print_report(tmp_path / "one" / "report.json", "expert", Console(file=out, width=120))
    text = out.getvalue()
    assert "expert: baseline vs fine-tuned" in text and "Accuracy improved by 50.0%" in text
    assert (
        text.index("test.perplexity")
        < text.index("golden.token_f1")
        < text.index("safety.refusal_rate")
    )
    assert not print_report(tmp_path / "missing.json", "expert", Console(file=io.StringIO()))


def test_gate_rules() -> None:
    report = build_report(*sides())
    assert check(QualityGate(**{"metric": "test.perplexity", "max": 5.0}), report).passed
    assert not check(QualityGate(**{"metric": "test.perplexity", "max": 4.0}), report).passed
    assert check(QualityGate(**{"metric": "golden.token_f1", "min": 0.3}), report).passed
    beat = check(QualityGate(**{"metric": "test.perplexity", "min_delta_vs_baseline": 2.5}), report)
    assert beat.passed and beat.detail.startswith("improved by 2.91")
    worse = check(
        QualityGate(**{"metric": "safety.refusal_rate", "min_delta_vs_baseline": 0}), report
    )
    assert not worse.passed and worse.detail.startswith("worse by 0.250")
    missing = check(QualityGate(**{"metric": "golden.judge_score", "min": 1}), report)
    assert not missing.passed and missing.detail == "not measured"


def test_failed_gates_raise_with_a_table() -> None:
    gates = [
        QualityGate(metric="test.perplexity", max=1.0),
        QualityGate(metric="golden.token_f1", min_delta_vs_baseline=0.0),
    ]
    outcomes = check_all(gates, build_report(*sides()))
    assert [o.passed for o in outcomes] == [False, True]
    error = GatesFailed(outcomes)
    assert error.message == "quality gate failed: test.perplexity 4.48 > 1"
    text = error.render()
    assert text.splitlines()[0] == "quality gate failed: 1 of 2 gates did not pass"
    assert (
        "test.perplexity  max 1" in text
        and "FAIL: 4.48 > 1" in text
        and "pass: improved by 0.100" in text
        and "hint:" in text
    )
    header, first, second = table(outcomes)
    assert (
        header.index("rule") == first.index("max 1") == second.index("min_delta_vs_baseline 0")
    )  # aligned columns
    assert json.loads(json.dumps([o.as_json() for o in outcomes]))[0]["rule"] == "max"
