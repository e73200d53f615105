"""The checked-in schema and the README's manifest reference are generated from the models."""

from pathlib import Path

import jsonschema
import pytest
import yaml

from opensem.manifest.reference import BEGIN, END, reference_markdown
from opensem.manifest.schema import manifest_schema, manifest_schema_text

REPO = Path(__file__).resolve().parents[2]


def test_checked_in_schema_matches_the_models() -> None:
    checked_in = (REPO / "schemas" / "training-manifest.schema.json").read_text()
    assert checked_in == manifest_schema_text(), (
        "run `opensem schema -o schemas/training-manifest.schema.json`"
    )


def test_readme_reference_matches_the_models() -> None:
    readme = (REPO / "README.md").read_text()
    start, end = readme.index(BEGIN), readme.index(END) + len(END)
    assert readme[start:end] == reference_markdown(), (
        "paste `opensem schema --markdown` into the README"
    )


@pytest.mark.parametrize(
    "manifest", sorted((REPO / "manifests").glob("*.yaml")), ids=lambda p: p.name
)
def test_every_shipped_manifest_is_valid(manifest: Path) -> None:
    from opensem.manifest import load_manifest

    load_manifest(manifest)
    jsonschema.validate(yaml.safe_load(manifest.read_text()), manifest_schema())


def test_schema_rejects_what_the_models_reject() -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {"job_id": "x", "base_model": "a/b", "method_config": {"rank": 0}}, manifest_schema()
        )
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"job_id": "x", "base_model": "a/b", "surprise": 1}, manifest_schema())
