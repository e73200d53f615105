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
        code, output = run("expert", "add", str(REPO / "manifests" / f"{job}.yaml"), "--registry", str(path))
        assert code == 0, output
    return path


def test_query_names_the_expert_with_its_scores(registry: Path) -> None:
    code, output = run("route", "query", "my", "derailleur", "rattles", "--registry", str(registry))
    decision = json.loads(output)
    assert code == 0 and decision["expert"] == "bike-repair" and set(decision["scores"]) == {"tiny-demo", "houseplants", "bike-repair"}
    code, output = run("route", "query", "water", "my", "fern", "--registry", str(registry), "--classifier", "keyword")
    assert code == 0 and json.loads(output)["classifier"] == "keyword"


def test_eval_scores_every_classifier_on_held_out_questions(registry: Path) -> None:
    code, output = run("route", "eval", "--registry", str(registry), "--json")
    scores = {c["classifier"]: c for c in json.loads(output)["classifiers"]}
    assert code == 0 and set(scores) == {"keyword", "neural", "hybrid"} and scores["hybrid"]["accuracy"] >= 0.95
    code, output = run("route", "eval", "--registry", str(registry))
    assert code == 0 and "held out to score" in output and "expert \\ routed to" in output


def test_serve_refuses_a_short_key_and_an_empty_registry(registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENSEM_API_KEY", "short")
    code, output = run("route", "serve", "--registry", str(registry))
    assert code == 2 and "at least 32 characters" in output and "Traceback" not in output
    code, output = run("route", "query", "x", "--registry", str(tmp_path / "none.yaml"))
    assert code == 2 and "the registry holds no experts" in output and "opensem expert add" in output
    code, output = run("route", "serve", "--help")
    assert code == 0 and "--registry" in output and "--port" in output and "[default: 8100]" in output
