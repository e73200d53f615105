"""The expert registry: which experts exist, what they know, where they answer, which lot each serves.

One YAML file in the SRS's shape (`experts: [{name, model_path, description, domains, keywords,
endpoint, priority, ...}]`) plus the router's own settings, hand-editable and validated like a
manifest (every problem at once, with file:line and key path). `opensem expert add` fills an entry
from a manifest (opensem.project.expert_from_manifest): its description, `expert:` section, golden set,
and the lot and tag of its latest published release.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, model_validator

from opensem.errors import Location, UsageError
from opensem.routing.config import RouterSettings
from opensem.routing.profile import ExpertProfile
from opensem.settings.fields import Section, invalid
from opensem.settings.names import JOB_ID_PATTERN


class Expert(ExpertProfile):
    """One expert: a release that answers, and how to recognise its queries."""

    name: str = Field(pattern=JOB_ID_PATTERN, description="Model name clients and the router use.")
    model_path: str = Field(
        description=(
            "What serves it: a manifest, a registry folder (with @tag) or a release folder, as "
            "`opensem serve` takes it."
        )
    )
    description: str = Field(
        "", description="What this expert knows (also part of its neural description)."
    )
    endpoint: str | None = Field(
        None,
        description=(
            "OpenAI-compatible base URL answering for it (http://host:port); none: the router "
            "serves it itself."
        ),
    )
    replicas: list[str] = Field(
        default_factory=list,
        description="Further base URLs serving the same release; requests are balanced across all.",
    )
    priority: int = Field(
        0, description="Breaks ties between equally confident experts (higher wins)."
    )
    max_tokens: int = Field(2048, gt=0, description="Most tokens the router asks this expert for.")
    golden: str | None = Field(
        None,
        description="Golden set of the expert (labelled queries for training and scoring the classifiers).",
    )
    questions: list[str] = Field(
        default_factory=list,
        description=(
            "Dataset files whose user turns the neural classifier also learns from: the questions "
            "the expert was trained on (`expert add` records the manifest's local dataset files)."
        ),
    )
    job_id: str | None = Field(
        None, description="The manifest's job_id (recorded by `expert add`)."
    )
    lot: str | None = Field(
        None, description="Lot number of the release it serves (recorded by `expert add`)."
    )
    tag: str | None = Field(None, description="Registry tag of that release (its version).")

    def endpoints(self) -> list[str]:
        """The URLs that answer for the expert, without trailing slashes."""
        return [
            url.rstrip("/") for url in ([self.endpoint] if self.endpoint else []) + self.replicas
        ]


class ExpertRegistry(Section):
    """The registry file: router settings and the experts."""

    router: RouterSettings = Field(
        default_factory=RouterSettings, description="How the router classifies and forwards."
    )
    experts: list[Expert] = Field(
        default_factory=list, description="The experts, in the order they were added."
    )

    @model_validator(mode="after")
    def _consistent(self) -> ExpertRegistry:
        names = [expert.name for expert in self.experts]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise invalid(f"experts named twice: {', '.join(twice)}")
        if self.router.fallback is not None and self.router.fallback not in names:
            raise invalid(
                f"router.fallback {self.router.fallback!r} is not an expert here (experts: "
                f"{', '.join(names) or 'none'})"
            )
        return self

    def get(self, name: str) -> Expert | None:
        """The expert called name, or None."""
        return next((expert for expert in self.experts if expert.name == name), None)

    def listed(self, domain: str | None = None) -> list[Expert]:
        """The experts of a domain, or all."""
        return [expert for expert in self.experts if domain is None or domain in expert.domains]


def load_registry(path: Path) -> ExpertRegistry:
    """The registry at path (an empty one when the file does not exist yet)."""
    from opensem.settings.yaml import load_yaml_model

    if not path.exists():
        return ExpertRegistry()
    registry, _ = load_yaml_model(path, ExpertRegistry, "expert registry", "start with `experts:`")
    return registry


def save_registry(registry: ExpertRegistry, path: Path) -> None:
    """Write the registry atomically, without defaults, so the file stays short and hand-editable."""
    from opensem.core.files import write_atomic

    data = registry.model_dump(mode="json", exclude_defaults=True)
    # A classifier's type is its default, yet names which one it is
    if "classifier" in data.get("router", {}):
        data["router"]["classifier"]["type"] = registry.router.classifier.type
    first = (
        "name",
        "model_path",
        "description",
        "endpoint",
        "replicas",
    )  # who and where before how to recognise it
    data["experts"] = [
        {**{k: e[k] for k in first if k in e}, **{k: v for k, v in e.items() if k not in first}}
        for e in data.get("experts", [])
    ]
    header = "# Expert registry: `opensem expert add|remove|list|show`, `opensem route serve` (see README)\n"
    write_atomic(
        path,
        header
        + yaml.safe_dump(
            data, sort_keys=False, allow_unicode=True, width=100, default_flow_style=None
        ),
    )


def add_expert(registry: ExpertRegistry, expert: Expert) -> tuple[ExpertRegistry, bool]:
    """The registry with expert added, or replacing the entry of that name; (registry, replaced)."""
    replaced = registry.get(expert.name) is not None
    experts = (
        [expert if e.name == expert.name else e for e in registry.experts]
        if replaced
        else [*registry.experts, expert]
    )
    return registry.model_copy(update={"experts": experts}), replaced


def remove_expert(registry: ExpertRegistry, name: str, path: Path) -> ExpertRegistry:
    """The registry without name, saved to path; UsageError when it is not there."""
    if registry.get(name) is None:
        raise UsageError(
            f"no expert {name!r} in the registry",
            Location(file=str(path)),
            f"experts: {', '.join(e.name for e in registry.experts) or 'none'}",
        )
    if registry.router.fallback == name:
        raise UsageError(
            f"{name!r} is the router's fallback",
            Location(file=str(path), key="router.fallback"),
            "set another fallback (or none) first",
        )
    return registry.model_copy(update={"experts": [e for e in registry.experts if e.name != name]})


def set_router(
    registry: ExpertRegistry, path: Path, assignments: list[str]
) -> tuple[ExpertRegistry, list[tuple[str, Any, Any]]]:
    """The registry with router settings changed by KEY=VALUE assignments (dotted keys under `router:`,
    values in YAML; an empty value returns a key to its default; `classifier=TYPE` switches classifier
    with its defaults); returns (registry, [(key, old, new)]). Every value is checked by the settings' own fields."""
    from opensem.settings.yaml import validate_data

    data = registry.model_dump(mode="json")
    router = data["router"]
    before = _flat(router)
    for assignment in assignments:
        key, equals, text = assignment.partition("=")
        parts = [part for part in key.strip().split(".") if part]
        if not equals or not parts:
            raise UsageError(
                f"not KEY=VALUE: {assignment!r}",
                Location(file=str(path), key="router"),
                "for example: fallback=houseplants classifier.threshold=0.4",
            )
        if parts == ["classifier"]:
            parts = ["classifier", "type"]
        if parts == ["classifier", "type"]:
            router["classifier"] = {}
        node = router
        for part in parts[:-1]:
            node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else {}
        if not text.strip():
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = yaml.safe_load(text)
    changed = validate_data(data, ExpertRegistry, str(path), what="expert registry")
    after = _flat(changed.router.model_dump(mode="json"))
    named = {
        ".".join(
            ["classifier", "type"]
            if a.split("=")[0].strip() == "classifier"
            else a.split("=")[0].strip().split(".")
        )
        for a in assignments
    }
    return changed, [
        (key, before.get(key), after.get(key))
        for key in after
        if before.get(key) != after.get(key) and (key in before or key in named)
    ]


def router_rows(registry: ExpertRegistry) -> list[tuple[str, Any, str]]:
    """(dotted key, value, description) of every router setting, the classifier's options included."""
    rows = []
    for key, value in _flat(registry.router.model_dump(mode="json")).items():
        rows.append((key, value, _description(registry.router, key.split("."))))
    return rows


def _description(model: Any, parts: list[str]) -> str:
    for part in parts[:-1]:
        model = getattr(model, part)
    field = type(model).model_fields.get(parts[-1])
    return (field.description or "") if field else ""


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def describe(expert: Expert) -> dict[str, Any]:
    """What /experts and `expert show` say about an expert (without its keyword rules)."""
    return {
        "name": expert.name,
        "description": expert.description,
        "domains": expert.domains,
        "model_path": expert.model_path,
        "endpoints": expert.endpoints(),
        "priority": expert.priority,
        "job_id": expert.job_id,
        "lot": expert.lot,
        "tag": expert.tag,
    }
