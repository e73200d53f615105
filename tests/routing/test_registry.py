"""The expert registry: filled from manifests, saved as hand-editable YAML, validated like a manifest."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from opensem.errors import ManifestError, UsageError
from opensem.project import expert_from_manifest
from opensem.routing.registry import ExpertRegistry, load_registry, remove_expert
from tests.cli import run_cli as run

REPO = Path(__file__).resolve().parents[2]


def test_an_expert_comes_from_its_manifest() -> None:
    expert = expert_from_manifest(REPO / "manifests" / "houseplants.yaml")
    assert expert.name == expert.job_id == "houseplants" and expert.description.startswith(
        "Houseplant care expert"
    )
    assert (
        "houseplants" in expert.domains and "repot" in expert.keywords and len(expert.examples) == 4
    )
    assert expert.golden == str(REPO / "data" / "houseplants" / "golden")
    assert (
        expert.keyword_rules()[0].compiled().search("My PLANT wilts") is not None
    )  # case-insensitive, whole words
    assert expert.keyword_rules()[0].compiled().search("planted") is None


def test_cli_add_list_show_remove_and_the_file_stays_readable(tmp_path: Path) -> None:
    registry = tmp_path / "experts.yaml"
    for job in ("houseplants", "bike-repair"):
        code, output = run(
            "expert", "add", str(REPO / "manifests" / f"{job}.yaml"), "--registry", str(registry)
        )
        assert code == 0 and f"added {job}" in output, output
    code, output = run(
        "expert",
        "add",
        str(REPO / "manifests" / "bike-repair.yaml"),
        "--registry",
        str(registry),
        "--endpoint",
        "http://127.0.0.1:9001",
        "--replica",
        "http://127.0.0.1:9002",
        "--priority",
        "2",
    )
    assert code == 0 and "updated bike-repair" in output
    data = yaml.safe_load(registry.read_text())
    bikes = data["experts"][1]
    assert (
        list(bikes)[:5] == ["name", "model_path", "description", "endpoint", "replicas"]
        and bikes["priority"] == 2
    )
    assert bikes["model_path"] == os.path.relpath(
        REPO / "manifests" / "bike-repair.yaml", tmp_path
    )  # relative to the registry's folder
    code, output = run("expert", "list", "--registry", str(registry))
    assert code == 0 and "houseplants" in output and "bike-repair" in output
    code, output = run("expert", "show", "bike-repair", "--registry", str(registry))
    assert code == 0 and json.loads(output)["replicas"] == ["http://127.0.0.1:9002"]
    code, output = run("expert", "remove", "houseplants", "--registry", str(registry))
    assert code == 0 and [e.name for e in load_registry(registry).experts] == ["bike-repair"]
    code, output = run("expert", "remove", "houseplants", "--registry", str(registry))
    assert code == 2 and "no expert 'houseplants'" in output and "experts: bike-repair" in output


def test_a_manifest_with_nothing_to_route_by_is_refused(tmp_path: Path) -> None:
    manifest = tmp_path / "bare.yaml"
    manifest.write_text("job_id: bare\nbase_model: org/model\n")
    with pytest.raises(UsageError, match="nothing a router could recognise") as refused:
        expert_from_manifest(manifest)
    assert "expert:" in refused.value.hint


def test_every_problem_in_a_hand_edited_registry_at_once(tmp_path: Path) -> None:
    registry = tmp_path / "experts.yaml"
    registry.write_text(
        "router:\n"
        "  classifier: {type: hybird}\n"
        "  fallback: nobody\n"
        "experts:\n"
        "  - name: plants\n"
        "    model_path: manifests/houseplants.yaml\n"
        "    keywords: [{pattern: 'leaf(', regex: true}]\n"
        "  - name: bikes\n"
        "    model_path: manifests/bike-repair.yaml\n"
        "    priorty: 2\n"
    )
    with pytest.raises(ManifestError) as caught:
        load_registry(registry)
    text = caught.value.render()
    assert (
        f"{registry}:2: router.classifier.type: unknown type 'hybird'" in text
        and "did you mean `hybrid`?" in text
    )
    assert (
        f"{registry}:7: experts[0].keywords[0].pattern" in text
        and "not a regular expression" in text
    )
    assert (
        f"{registry}:10: experts[1].priorty: unknown key" in text
        and "did you mean `priority`?" in text
    )
    registry.write_text(
        "router: {fallback: nobody}\nexperts:\n  - {name: a, model_path: x}\n  - {name: a, model_path: y}\n"
    )
    with pytest.raises(ManifestError, match="experts named twice: a"):
        load_registry(registry)


def test_the_fallback_cannot_be_removed() -> None:
    registry = ExpertRegistry.model_validate(
        {
            "router": {"fallback": "a"},
            "experts": [{"name": "a", "model_path": "x"}, {"name": "b", "model_path": "y"}],
        }
    )
    with pytest.raises(UsageError, match="is the router's fallback"):
        remove_expert(registry, "a", Path("experts.yaml"))
    assert [e.name for e in remove_expert(registry, "b", Path("experts.yaml")).experts] == ["a"]
