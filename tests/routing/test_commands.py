"""`opensem route query|eval|serve` on a registry of the three shipped experts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.routing.test_registry import REPO, run


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("project") / "experts.yaml"
    for job in ("tiny-demo", "houseplants", "bike-repair"):
        code, output = run(
            "expert", "add", str(REPO / "manifests" / f"{job}.yaml"), "--registry", str(path)
        )
        assert code == 0, output
    return path


def test_query_names_the_expert_with_its_scores(registry: Path) -> None:
    code, output = run("route", "query", "my", "derailleur", "rattles", "--registry", str(registry))
    decision = json.loads(output)
    assert (
        code == 0
        and decision["expert"] == "bike-repair"
        and set(decision["scores"]) == {"tiny-demo", "houseplants", "bike-repair"}
    )
    code, output = run(
        "route",
        "query",
        "water",
        "my",
        "fern",
        "--registry",
        str(registry),
        "--classifier",
        "keyword",
    )
    assert code == 0 and json.loads(output)["classifier"] == "keyword"


def test_eval_scores_every_classifier_on_held_out_questions(registry: Path) -> None:
    code, output = run("route", "eval", "--registry", str(registry), "--json")
    scores = {c["classifier"]: c for c in json.loads(output)["classifiers"]}
    assert (
        code == 0
        and set(scores) == {"keyword", "neural", "hybrid"}
        and scores["hybrid"]["accuracy"] >= 0.95
    )
    code, output = run("route", "eval", "--registry", str(registry))
    assert code == 0 and "held out to score" in output and "expert \\ routed to" in output


def test_serve_refuses_a_short_key_and_an_empty_registry(
    registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENSEM_API_KEY", "short")
    code, output = run("route", "serve", "--registry", str(registry))
    assert code == 2 and "at least 32 characters" in output and "Traceback" not in output
    code, output = run("route", "query", "x", "--registry", str(tmp_path / "none.yaml"))
    assert (
        code == 2 and "the registry holds no experts" in output and "opensem expert add" in output
    )
    code, output = run("route", "serve", "--help")
    assert (
        code == 0 and "--registry" in output and "--port" in output and "[default: 8100]" in output
    )


def test_eval_on_a_question_file_reports_each_expert_and_off_topic_rejection(
    registry: Path, tmp_path: Path
) -> None:
    code, output = run(
        "route",
        "eval",
        "--registry",
        str(registry),
        "--questions",
        str(REPO / "data" / "routing" / "held-out.jsonl"),
        "--json",
    )
    hybrid = {c["classifier"]: c for c in json.loads(output)["classifiers"]}["hybrid"]
    assert code == 0 and set(hybrid["per_expert"]) == {"tiny-demo", "houseplants", "bike-repair"}
    assert (
        hybrid["off_topic_rejected"] >= 0.85
        and hybrid["p50_ms"] > 0
        and "(off-topic)" in hybrid["confusion"]
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"question": "hi", "expert": "tiny-demo"}\n{"question": "q", "expert": "nobody"}\n'
    )
    code, output = run("route", "eval", "--registry", str(registry), "--questions", str(bad))
    assert (
        code != 0
        and "bad.jsonl:2" in output
        and "'nobody' is not in the registry" in output
        and "Traceback" not in output
    )


def test_route_set_changes_settings_through_their_fields_and_list_keeps_names_whole(
    registry: Path,
) -> None:
    copy = registry.parent / "copy.yaml"
    copy.write_text(registry.read_text())
    code, output = run(
        "route",
        "set",
        "classifier=neural",
        "classifier.threshold=0.45",
        "fallback=houseplants",
        "--registry",
        str(copy),
    )
    assert (
        code == 0
        and "router.classifier.type: 'hybrid' -> 'neural'" in output
        and "router.fallback: None -> 'houseplants'" in output
    )
    code, output = run("route", "settings", "--registry", str(copy))
    assert (
        code == 0
        and "classifier.threshold" in output
        and "0.45" in output
        and "houseplants" in output
    )
    code, output = run(
        "route",
        "set",
        "classifier.threshold=2",
        "fallback=nobody",
        "bogus=1",
        "--registry",
        str(copy),
    )
    assert (
        code != 0
        and "invalid expert registry: 2 problems" in output
        and "router.bogus: unknown key" in output
    )
    code, output = run("route", "set", "fallback=", "classifier=hybrid", "--registry", str(copy))
    assert code == 0 and "fallback" not in copy.read_text().split("experts:")[0]
    code, output = run("expert", "list", "--registry", str(copy))
    assert code == 0 and "bike-repair" in output and "…" not in output
