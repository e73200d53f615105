"""YAML files into pydantic models, with every problem at once: file, line, key path and a hint.

The manifest, the expert registry and anything else a person writes in YAML load through here.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from opensem.errors import Location, ManifestError, Problem
from opensem.settings.fields import union_tag

KeyPath = tuple[Any, ...]


def load_yaml_model(
    path: Path, model: type[BaseModel], what: str, first_key_hint: str
) -> tuple[Any, dict[KeyPath, int]]:
    """A YAML file validated against a model, with every problem at once as file:line, key path and hint
    (manifests, the expert registry); returns the instance and the line of every key path."""
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(
            [Problem(f"{what} file not found", Location(file=shown), "check the path")]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(
            [Problem(f"cannot read {what}: {exc}", Location(file=shown), "")]
        ) from None
    data, lines, problems = _parse_yaml(text, shown)
    if problems:
        raise ManifestError(problems)
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise ManifestError(
            [
                Problem(
                    f"a {what} must be a mapping of keys, got {got}",
                    Location(file=shown, line=1),
                    first_key_hint,
                )
            ]
        )
    return validate_data(data, model, shown, lines, what), lines


def validate_data(
    data: dict[str, Any],
    model: type[BaseModel],
    shown: str,
    lines: dict[KeyPath, int] | None = None,
    what: str = "manifest",
) -> Any:
    """data validated against model; ManifestError lists every problem with its key path (and line, when known)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [
            _problem_from(err, data, lines or {}, shown, model)
            for err in _without_union_noise(exc.errors())
        ]
        raise ManifestError(_merge_same_key(problems), what) from None


def _parse_yaml(text: str, shown: str) -> tuple[Any, dict[KeyPath, int], list[Problem]]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        reason = exc.problem or str(exc)
        return (
            None,
            {},
            [
                Problem(
                    f"not valid YAML: {reason}",
                    Location(file=shown, line=line),
                    "fix the YAML syntax at this line (indentation, colons, quotes)",
                )
            ],
        )
    except yaml.YAMLError as exc:
        return (
            None,
            {},
            [Problem(f"not valid YAML: {exc}", Location(file=shown), "fix the YAML syntax")],
        )
    finally:
        loader.dispose()
    lines: dict[KeyPath, int] = {}
    problems: list[Problem] = []
    if node is not None:
        lines[()] = node.start_mark.line + 1
        _collect_lines(node, (), lines, problems, shown)
    return data, lines, problems


def _collect_lines(
    node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], problems: list[Problem], shown: str
) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.append(
                    Problem(
                        f"key {key!r} appears twice",
                        Location(shown, line, dotted((*path, key))),
                        "keep one of them",
                    )
                )
            seen.add(key)
            lines[(*path, key)] = line
            _collect_lines(value_node, (*path, key), lines, problems, shown)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _collect_lines(item, (*path, index), lines, problems, shown)


def dotted(path: KeyPath) -> str:
    """A key path as the manifest writes it: `a.b[0].c`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def line_for(lines: dict[KeyPath, int], key: KeyPath) -> int | None:
    """The line of a key, or of its nearest parent that has one."""
    for end in range(len(key), -1, -1):
        if key[:end] in lines:
            return lines[key[:end]]
    return None


def _data_path(loc: tuple[Any, ...], data: Any) -> KeyPath:
    """Pydantic locations include union member names; keep only the parts that are in the data."""
    path: list[Any] = []
    node = data
    for part in loc:
        if isinstance(part, str) and "=" in part:
            continue  # a tagged union's tag ("type=lora"): a choice, not a key
        if isinstance(node, dict) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            path.append(part)
        elif (
            isinstance(node, dict)
            and isinstance(part, str)
            and part[:1].islower()
            and "[" not in part
            and part not in ("str", "list", "literal")
        ):
            path.append(part)  # a key that is missing or unknown: still part of the path
            node = None
    return tuple(path)


def _problem_from(
    err: dict[str, Any], data: Any, lines: dict[KeyPath, int], shown: str, root: type[BaseModel]
) -> Problem:
    path = _data_path(err["loc"], data)
    kind = err["type"]
    given = err.get("input")
    message = err["msg"]
    hint = ""
    if kind == "missing":
        message = "required key is missing"
        hint = f"add `{path[-1]}:` to this section (see `opensem schema`)"
    elif kind == "union_tag_invalid":
        field, chosen = str(err["ctx"]["tag"]).split("=", 1)
        path = (*path, field)
        expected = [
            tag.strip(" '").split("=", 1)[1] for tag in str(err["ctx"]["expected_tags"]).split(",")
        ]
        message = f"unknown {field} {chosen!r}"
        close = difflib.get_close_matches(chosen, expected, n=1)
        hint = (
            f"did you mean `{close[0]}`? " if close else ""
        ) + f"allowed values: {', '.join(expected)}"
    elif kind == "extra_forbidden":
        parent, others = _section_model(path[:-1], data, root), _alternatives_with(path, data, root)
        allowed = sorted(parent.model_fields) if parent else []
        close = difflib.get_close_matches(str(path[-1]), allowed, n=1)
        message = "unknown key"
        hint = (f"did you mean `{close[0]}`? " if close else "") + (
            f"allowed here: {', '.join(allowed)}" if allowed else "remove it"
        )
        if others:
            hint = f"{path[-1]} is an option of {others[0]} {' or '.join(others[1])}; {hint}"
    else:
        message = (
            f"{message[0].lower()}{message[1:]}, got {given!r}"
            if not isinstance(given, (dict, list))
            else message
        )
        context = err.get("ctx", {})
        if "expected" in context:
            hint = f"allowed values: {context['expected']}"
        elif bounds := [
            f"{sym} {context[k]}"
            for k, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))
            if k in context
        ]:
            hint = f"the value must be {' and '.join(bounds)}"
        elif "pattern" in context:
            hint = "use letters, digits, '.', '_' and '-' (a tag may contain `{lot}`)"
        else:
            hint = "see `opensem schema` for the allowed values"
    return Problem(message, Location(shown, line_for(lines, path), dotted(path)), hint)


def _without_union_noise(errors: list[Any]) -> list[Any]:
    """For a value that may be a string or a mapping (base_model), given a mapping, the complaint
    that it is not a string says nothing: keep what is wrong inside the mapping."""
    deeper = {tuple(err["loc"][:1]) for err in errors if len(err["loc"]) > 2}
    return [
        err
        for err in errors
        if not (
            err["type"].endswith("_type")
            and isinstance(err.get("input"), (dict, list))
            and tuple(err["loc"][:1]) in deeper
            and len(err["loc"]) <= 2
        )
    ]


def _merge_same_key(problems: list[Problem]) -> list[Problem]:
    """A value that fits no member of a union yields one error per member: say it once."""
    merged: dict[Location, Problem] = {}
    for problem in problems:
        earlier = merged.get(problem.location)
        if earlier is None:
            merged[problem.location] = problem
        else:
            merged[problem.location] = Problem(
                f"{earlier.message}; or {problem.message}", problem.location, earlier.hint
            )
    return list(merged.values())


def _section_model(path: KeyPath, data: Any, root: type[BaseModel]) -> type[BaseModel] | None:
    """The model behind a key path of the document; a tagged union resolves by the data's tag."""
    found = _field_at(path, data, root)
    return None if found is None else _model_of(*found) if found[0] is not None else root


def _field_at(path: KeyPath, data: Any, root: type[BaseModel]) -> tuple[Any, Any] | None:
    """(pydantic field, data value) at a key path; (None, data) for the top level; None if unknown."""
    model: Any = root
    field: Any = None
    node = parent = data
    for part in path:
        node = node[part] if isinstance(node, (dict, list)) and _has(node, part) else None
        if isinstance(part, int):
            continue
        if field is not None:
            model = _model_of(field, parent)
        field = (
            model.model_fields.get(part)
            if model is not None and hasattr(model, "model_fields")
            else None
        )
        if field is None:
            return None
        parent = node
    return field, node


def _alternatives_with(
    path: KeyPath, data: Any, root: type[BaseModel]
) -> tuple[str, list[str]] | None:
    """For an unknown key inside a tagged union: (tag field, the alternatives that do take it)."""
    found = _field_at(path[:-1], data, root)
    tagged = union_tag(found[0]) if found is not None and found[0] is not None else None
    if tagged is None or found is None:
        return None
    from opensem.settings.fields import union_members

    having = [
        str(m.model_fields[tagged[0]].default)
        for m in union_members(found[0])
        if path[-1] in m.model_fields
    ]
    return (tagged[0], having) if having else None


def _has(node: Any, part: Any) -> bool:
    return part in node if isinstance(node, dict) else isinstance(part, int) and part < len(node)


def _model_of(field: Any, value: Any) -> type[BaseModel] | None:
    """The model a field holds for this value: a tagged union's member by the tag, else the first model."""
    from opensem.settings.fields import union_members

    tagged = union_tag(field)
    members = union_members(field)
    if tagged is not None:
        name, default = tagged
        chosen = value.get(name, default) if isinstance(value, dict) else default
        return next((m for m in members if m.model_fields[name].default == chosen), None)
    return members[0] if members else None
