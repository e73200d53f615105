"""`opensem init NAME`: a new expert in the project, in the multi-expert layout.

One project holds many experts side by side (seed 000, section 4.1): data/NAME/raw/ for the
documents and datasets, data/NAME/golden/ for the golden set, manifests/NAME.yaml for the
manifest, with build/ shared. Nothing that exists is ever overwritten.
"""

from __future__ import annotations

import re
from pathlib import Path

from opensem.errors import UsageError
from opensem.settings.names import JOB_ID_PATTERN

SCHEMA_FILE = Path("schemas") / "training-manifest.schema.json"

MANIFEST = """\
# yaml-language-server: $schema=../schemas/training-manifest.schema.json
# {name}: a small expert model. Every key is documented in the schema above (`opensem schema`).
#   opensem validate manifests/{name}.yaml   # check it
#   opensem plan manifests/{name}.yaml       # see what would run, and why
#   opensem build manifests/{name}.yaml      # build it; the lock beside this file records the result
job_id: {name}
description: {description}
{persona}
# The model to adapt: a hub id (org/name), a local folder (./models/base), or a tiny local
# model for trying the pipeline out on a CPU. Replace it when the data is in place.
base_model:{base_model}

# Documents (.txt .md .pdf) and datasets (.jsonl/.json in alpaca, sharegpt, messages or dpo
# format) go in data/{name}/raw/. A source may also be a glob (data/{name}/raw/**/*.pdf) or an
# fsspec URL (s3://bucket/docs/).
data:
  sources:
    - path: data/{name}/raw
  chunking:
    size: 2000     # characters per document chunk
    overlap: 200   # characters repeated from the previous chunk
  split:
    test_fraction: 0.1

# Data Forge: a teacher turns document chunks into training records. `offline` needs no key and no
# server (a template generator, not a language model). For a real teacher:
#   provider: openai, model: gpt-4o-mini, base_url: http://localhost:8000/v1 (vLLM, Ollama, ...),
#   api_key_env: OPENAI_API_KEY (the variable's name; the key never goes in this file)
synthesis:
  {teacher}
  mode: instructions   # or preferences (for dpo/orpo), refusals (safety triplets)
  pairs_per_chunk: 3
  budget:
    {budget}

# How to train: the method and the adapter's shape.
method_config:
  type: lora
  rank: 16

training:
  epochs: 1
  learning_rate: 0.0002

# The golden set: jsonl files of {{"question": ..., "answer": ...}} in data/{name}/golden/.
evaluation:
  batch_size: 8

# Where finished adapters go{publish_note}
{publish}"""

DEFAULTS = {
    "description": "What this expert knows, in one line.",
    "persona": "",
    "base_model": "\n  tiny: {}",
    "teacher": "provider: offline",
    "budget": "max_requests: 1000",
    "publish_note": "; uncomment to publish.",
    "publish": "# publish_target:\n#   registry: build/registry\n#   tag: v0.1.0\n",
}


def scaffold(project_root: Path, name: str, filled: dict[str, str] | None = None) -> list[Path]:
    """Create the folders and manifest of expert name under project_root; returns what was made.
    filled replaces parts of the template (DEFAULTS' keys), as the guided flow answers them."""
    if not re.match(JOB_ID_PATTERN, name):
        raise UsageError(
            f"invalid expert name {name!r}",
            hint="use letters, digits, '.', '_' and '-', starting with a letter or digit",
        )
    root = Path(project_root)
    manifest = root / "manifests" / f"{name}.yaml"
    data = root / "data" / name
    existing = [p for p in (manifest, data) if p.exists()]
    if existing:
        shown = ", ".join(str(p.relative_to(root)) for p in existing)
        raise UsageError(
            f"expert {name!r} already exists here: {shown}",
            hint="pick another name, or edit the existing files; init never overwrites",
        )
    made: list[Path] = []
    for folder in (data / "raw", data / "golden"):
        folder.mkdir(parents=True)
        (folder / ".gitkeep").touch()
        made.append(folder)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    with open(manifest, "x", encoding="utf-8") as handle:  # "x": never overwrite, even in a race
        handle.write(MANIFEST.format(name=name, **{**DEFAULTS, **(filled or {})}))
    made.append(manifest)
    schema = root / SCHEMA_FILE
    if not schema.exists():  # editor completion needs the schema the comment points at
        from opensem.manifest.schema import manifest_schema_text

        schema.parent.mkdir(parents=True, exist_ok=True)
        schema.write_text(manifest_schema_text(), encoding="utf-8")
        made.append(schema)
    return made
