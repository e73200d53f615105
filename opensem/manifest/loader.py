"""Load a manifest from YAML with line numbers, and report every problem at once.

Paths in a manifest are relative to the project root, never to the current directory: the
project root is the manifest's folder, or its parent when that folder is named `manifests`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from opensem.errors import Location, ManifestError, Problem
from opensem.build.layout import project_root_of
from opensem.manifest.models import DataSource, TrainingManifest, is_local_model_path
from opensem.data.sources import glob_matches, is_glob, is_url

KeyPath = tuple[Any, ...]


@dataclass(frozen=True)
class LoadedManifest:
    """A validated manifest together with where it came from."""

    manifest: TrainingManifest
    path: Path
    project_root: Path
    lines: dict[KeyPath, int]

    def line_of(self, key: KeyPath) -> int | None:
        return _line_for(self.lines, key)

    def sources(self) -> list[DataSource]:
        return self.manifest.data.sources or [DataSource(path=f"data/{self.manifest.job_id}/raw")]

    def golden(self) -> str | None:
        """The golden set's path as written (or the conventional one when it exists), else None."""
        if self.manifest.evaluation.golden is not None:
            return self.manifest.evaluation.golden
        conventional = f"data/{self.manifest.job_id}/golden"
        return conventional if (self.project_root / conventional).exists() else None

    def refusal_prompts(self) -> str | None:
        """The refusal prompts' path as written (or data/<job_id>/refusals/ when it exists), else None."""
        if self.manifest.evaluation.refusal_prompts is not None:
            return self.manifest.evaluation.refusal_prompts
        conventional = f"data/{self.manifest.job_id}/refusals"
        return conventional if (self.project_root / conventional).exists() else None


def load_manifest(path: Path) -> LoadedManifest:
    """Parse, validate and check a manifest file; raise ManifestError listing every problem."""
    path = Path(path)
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError([Problem("manifest file not found", Location(file=shown), "check the path")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError([Problem(f"cannot read manifest: {exc}", Location(file=shown), "")]) from None
    data, lines, problems = _parse_yaml(text, shown)
    if problems:
        raise ManifestError(problems)
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise ManifestError(
            [Problem(f"a manifest must be a mapping of keys, got {got}", Location(file=shown, line=1), "start with `job_id: my-expert`")]
        )
    try:
        manifest = TrainingManifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(_merge_same_key([_problem_from(err, data, lines, shown) for err in exc.errors()])) from None
    loaded = LoadedManifest(manifest, path, project_root_of(path), lines)
    problems = check_paths(loaded)
    if problems:
        raise ManifestError(problems)
    return loaded


def _parse_yaml(text: str, shown: str) -> tuple[Any, dict[KeyPath, int], list[Problem]]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        reason = exc.problem or str(exc)
        return None, {}, [Problem(f"not valid YAML: {reason}", Location(file=shown, line=line), "fix the YAML syntax at this line (indentation, colons, quotes)")]
    except yaml.YAMLError as exc:
        return None, {}, [Problem(f"not valid YAML: {exc}", Location(file=shown), "fix the YAML syntax")]
    finally:
        loader.dispose()
    lines: dict[KeyPath, int] = {}
    problems: list[Problem] = []
    if node is not None:
        lines[()] = node.start_mark.line + 1
        _collect_lines(node, (), lines, problems, shown)
    return data, lines, problems


def _collect_lines(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], problems: list[Problem], shown: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.append(Problem(f"key {key!r} appears twice", Location(shown, line, _dotted((*path, key))), "keep one of them"))
            seen.add(key)
            lines[(*path, key)] = line
            _collect_lines(value_node, (*path, key), lines, problems, shown)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _collect_lines(item, (*path, index), lines, problems, shown)


def _dotted(path: KeyPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _line_for(lines: dict[KeyPath, int], key: KeyPath) -> int | None:
    for end in range(len(key), -1, -1):
        if key[:end] in lines:
            return lines[key[:end]]
    return None


def _data_path(loc: tuple[Any, ...], data: Any) -> KeyPath:
    """Pydantic locations include union member names; keep only the parts that are in the data."""
    path: list[Any] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            path.append(part)
        elif isinstance(node, dict) and isinstance(part, str) and part[:1].islower() and "[" not in part and part not in ("str", "list", "literal"):
            path.append(part)  # a key that is missing or unknown: still part of the path
            node = None
    return tuple(path)


def _problem_from(err: dict[str, Any], data: Any, lines: dict[KeyPath, int], shown: str) -> Problem:
    path = _data_path(err["loc"], data)
    kind = err["type"]
    given = err.get("input")
    message = err["msg"]
    hint = ""
    if kind == "missing":
        message = "required key is missing"
        hint = f"add `{path[-1]}:` to this section (see `opensem schema`)"
    elif kind == "extra_forbidden":
        parent = _section_model(path[:-1])
        allowed = sorted(parent.model_fields) if parent else []
        close = difflib.get_close_matches(str(path[-1]), allowed, n=1)
        message = "unknown key"
        hint = (f"did you mean `{close[0]}`? " if close else "") + (f"allowed here: {', '.join(allowed)}" if allowed else "remove it")
    else:
        message = f"{message[0].lower()}{message[1:]}, got {given!r}" if not isinstance(given, (dict, list)) else message
        context = err.get("ctx", {})
        if "expected" in context:
            hint = f"allowed values: {context['expected']}"
        elif bounds := [f"{sym} {context[k]}" for k, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")) if k in context]:
            hint = f"the value must be {' and '.join(bounds)}"
        elif "pattern" in context:
            hint = "use letters, digits, '.', '_' and '-' (a tag may contain `{lot}`)"
        else:
            hint = "see `opensem schema` for the allowed values"
    return Problem(message, Location(shown, _line_for(lines, path), _dotted(path)), hint)


def _merge_same_key(problems: list[Problem]) -> list[Problem]:
    """A value that fits no member of a union yields one error per member: say it once."""
    merged: dict[Location, Problem] = {}
    for problem in problems:
        earlier = merged.get(problem.location)
        if earlier is None:
            merged[problem.location] = problem
        else:
            merged[problem.location] = Problem(f"{earlier.message}; or {problem.message}", problem.location, earlier.hint)
    return list(merged.values())


def _section_model(path: KeyPath) -> type | None:
    model: Any = TrainingManifest
    for part in path:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        if field is None:
            return None
        model = _first_model(field.annotation)
        if model is None:
            return None
    return model


def _first_model(annotation: Any) -> type | None:
    if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _first_model(arg)
        if found is not None:
            return found
    return None


def check_paths(loaded: LoadedManifest) -> list[Problem]:
    """Paths must exist and stay inside the project; every problem is collected."""
    problems: list[Problem] = []
    root = loaded.project_root
    explicit = loaded.manifest.data.sources is not None
    for index, source in enumerate(loaded.sources()):
        key: KeyPath = ("data", "sources", index, "path") if explicit else ("data",)
        if is_url(source.path):
            continue  # fsspec URLs are listed when the graph is planned (opensem.data.sources), not here
        problem = _check_inside(root, source.path, key, loaded, must_exist=not is_glob(source.path)) or _check_glob(root, source.path, key, loaded)
        if problem:
            problems.append(problem)
    m = loaded.manifest
    named: list[tuple[str | None, KeyPath]] = [
        (m.evaluation.golden, ("evaluation", "golden")),
        (m.evaluation.refusal_prompts, ("evaluation", "refusal_prompts")),
        (m.compute.accelerate_config, ("compute", "accelerate_config")),
    ]
    if isinstance(m.base_model, str) and is_local_model_path(m.base_model):
        named.append((m.base_model, ("base_model",)))
    dedup, decontaminate = (m.curation.dedup, m.curation.decontaminate) if m.curation else (None, None)
    if dedup and dedup.semantic and is_local_model_path(dedup.model):  # an embedding model given as a directory
        named.append((dedup.model, ("curation", "dedup", "model")))
    if decontaminate and decontaminate.embedding_threshold is not None and is_local_model_path(decontaminate.model):
        named.append((decontaminate.model, ("curation", "decontaminate", "model")))
    for raw, key in named:
        problem = _check_inside(root, raw, key, loaded, must_exist=True) if raw is not None else None
        if problem:
            problems.append(problem)
    return problems


def _check_glob(root: Path, raw: str, key: KeyPath, loaded: LoadedManifest) -> Problem | None:
    """A glob source must match at least one file, or it is almost certainly a typo."""
    if not is_glob(raw) or glob_matches(root, raw):
        return None
    where = Location(str(loaded.path), loaded.line_of(key), _dotted(key))
    return Problem(f"glob {raw!r} matches no file", where, f"fix the pattern; it is matched against paths relative to {root} (** spans folders)")


def _check_inside(root: Path, raw: str, key: KeyPath, loaded: LoadedManifest, must_exist: bool) -> Problem | None:
    where = Location(str(loaded.path), loaded.line_of(key), _dotted(key) if key != ("data",) else "data.sources")
    target = (root / Path(raw).expanduser()).resolve()
    if not target.is_relative_to(root):
        return Problem(f"path {raw!r} points outside the project ({root})", where, "keep data inside the project folder so builds are reproducible")
    if must_exist and not target.exists():
        default = "" if key != ("data",) else " (the default when data.sources is not set)"
        return Problem(f"path {raw!r} does not exist{default}", where, f"create {target} or fix the path; paths are relative to {root}")
    return None
