"""`opensem validate` is `plan` minus the store: generated from the schema, every enum value and every
bound it offers gets a manifest, and validate, plan and each stage's own parameter check must agree.

A manifest that validate accepts must plan, and every stage of its graph must accept its params
(the check a stage's run starts with), so nothing validate lets through fails later for a reason
knowable before running.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from opensem.cli import main
from opensem.errors import ManifestError
from opensem.manifest.schema import manifest_schema
from opensem.settings.fields import merge_views

BASE: dict[str, Any] = {
    "job_id": "x",
    "base_model": "org/model",
    "data": {"sources": [{"path": "data/x/raw"}]},
    "synthesis": {"provider": "offline"},
    "curation": {"dedup": {}, "decontaminate": {}},
    "evaluation": {"judge": {"provider": "offline"}, "gates": [{"metric": "test.loss", "max": 10}]},
    "publish_target": {"registry": "build/registry", "tag": "v1"},
}
Patch = tuple[tuple[Any, ...], Any]


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    return schema["$defs"][node["$ref"].rsplit("/", 1)[-1]] if "$ref" in node else node


def leaves(
    schema: dict[str, Any], node: dict[str, Any], path: tuple[Any, ...], before: list[Patch]
) -> Iterator[tuple[tuple[Any, ...], dict[str, Any], list[Patch]]]:
    """Every setting the schema offers: (key path, its schema, the patches that reach it)."""
    node = _resolve(schema, node)
    if "oneOf" in node:  # a tagged union: reach each member's options through its tag
        for option in node["oneOf"]:
            member = _resolve(schema, option)
            tag = next(k for k, p in member["properties"].items() if "const" in p)
            needed = [
                ((*path, name), "m")
                for name in member.get("required", [])
                if name != tag and member["properties"][name].get("type") == "string"
            ]
            yield from leaves(
                schema,
                member,
                path,
                [*before, ((*path, tag), member["properties"][tag]["const"]), *needed],
            )
    elif "properties" in node:
        for name, prop in node["properties"].items():
            yield from leaves(schema, prop, (*path, name), before)
    elif node.get("type") == "array" and "properties" in _resolve(schema, node.get("items", {})):
        yield from leaves(schema, node["items"], (*path, 0), before)
    else:
        # An optional section, or a value that may also be a mapping or a list of them
        for option in node.get("anyOf", []):
            inner = _resolve(schema, option)
            if (
                "properties" in inner
                or "oneOf" in inner
                or (
                    inner.get("type") == "array"
                    and "properties" in _resolve(schema, inner.get("items", {}))
                )
            ):
                yield from leaves(schema, option, path, before)
        yield path, node, before


def values(node: dict[str, Any]) -> list[Any]:
    """The enum values and the values at and around each bound of a leaf (also inside anyOf)."""
    found: list[Any] = []
    for option in [node, *node.get("anyOf", [])]:
        found += list(option.get("enum", [])) + (
            [option["const"]] if "const" in option and option is not node else []
        )
        step = 1 if option.get("type") == "integer" else 0.001
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if key in option:
                bound = option[key]
                found += [bound, bound - step, bound + step]
        if option.get("type") == "boolean":
            found += [True, False]
    return found


def dotted(path: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in path)


def cases() -> list[tuple[str, list[Patch]]]:
    schema = manifest_schema()
    made: dict[str, list[Patch]] = {}
    for path, node, before in leaves(schema, schema, (), []):
        reach = " ".join(f"{dotted(p)}={v}" for p, v in before)
        for value in values(node):
            made[f"{reach} {dotted(path)}={value!r}".strip()] = [*before, (path, value)]
    made["the kto format of a dataset"] = [(("data", "sources", 0, "format"), "kto")]
    made["a tiny model whose head size is odd"] = [
        (("base_model",), {"tiny": {"hidden_size": 60, "num_heads": 4}})
    ]
    return sorted(made.items())


CASES = cases()


def test_the_generator_covers_enums_bounds_and_union_members() -> None:
    names = {name for name, _ in CASES}
    assert len(CASES) > 200
    for expected in (
        "method_config.type=kto method_config.rank=0",
        "method_config.type=dpo method_config.beta=0",
        "data.sources.0.format='kto'",
        "synthesis.provider=openai synthesis.model=m synthesis.json_mode=True",
        "evaluation.gates.0.metric='safety.refusal_rate'",
        "base_model.tiny.num_layers=33",
        "training.learning_rate=1",
        "compute.backend='unsloth'",
        "data.split.test_fraction=0",
    ):
        assert expected in names, expected


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("agree")
    for folder, name, text in (
        ("raw", "a.txt", "Espresso is brewed under pressure.\n"),
        ("golden", "g.jsonl", '{"question": "Q?", "answer": "A."}\n'),
        ("refusals", "r.txt", "Do harm.\n"),
    ):
        (root / "data" / "x" / folder).mkdir(parents=True)
        (root / "data" / "x" / folder / name).write_text(text)
    (root / "manifests").mkdir()
    return root


def apply(patches: list[Patch]) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    for path, value in patches:
        target = data
        for part, following in zip(path, path[1:]):
            if isinstance(target, list):
                while len(target) <= part:
                    target.append({})
                target = target[part]
                continue
            if not isinstance(target.get(part), (dict, list)):
                target[part] = [] if isinstance(following, int) else {}
            target = target[part]
        target[path[-1]] = value
    return data


def planned(manifest: Path) -> str:
    """ "ok" when plan succeeds and every stage accepts its params; "invalid" on a manifest error."""
    from opensem.project import load_graph, open_session
    from opensem.stages import get_stage

    try:
        graph = load_graph(manifest)
    except ManifestError:
        return "invalid"
    open_session(graph).plan()
    for node in graph.nodes:  # what each stage's run checks first
        get_stage(node.kind).Params.model_validate(merge_views(node.params, node.settings))
    return "ok"


@pytest.mark.parametrize(("name", "patches"), CASES, ids=[name for name, _ in CASES])
def test_validate_and_plan_agree(
    project: Path, name: str, patches: list[Patch], capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = project / "manifests" / "x.yaml"
    manifest.write_text(yaml.safe_dump(apply(patches), sort_keys=False))
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", str(manifest)])
    output = capsys.readouterr()
    validated = {0: "ok", 2: "invalid"}.get(
        int(exit_info.value.code or 0), f"exit {exit_info.value.code}"
    )
    assert "Traceback" not in output.out + output.err
    assert validated == planned(manifest), output.out + output.err


def test_the_two_reported_cases(project: Path) -> None:
    manifest = project / "manifests" / "x.yaml"
    manifest.write_text(yaml.safe_dump(apply(dict(CASES)["the kto format of a dataset"])))
    assert planned(manifest) == "ok"
    manifest.write_text(yaml.safe_dump(apply(dict(CASES)["a tiny model whose head size is odd"])))
    with pytest.raises(ManifestError, match="hidden_size / num_heads must be even") as info:
        from opensem.project import load_graph

        load_graph(manifest)
    assert info.value.problems[0].location.key == "base_model.tiny"
