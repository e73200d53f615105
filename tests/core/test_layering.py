"""The floors of the house, checked: each package imports only from floors below it, no two
packages import each other (directly or round about), and the light entry points load no ML library.

Ground floor: the build core (`core`) and the settings toolkit (`settings`), with the error root
and the plugin registry. Above: the domain packages. Above them: `stages`. On top: the assembled
`manifest`, the `project` and the `cli`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "opensem"
# What the core may import from opensem: itself and the error root.
CORE_MAY_IMPORT = (
    "opensem.core",
    "opensem.errors",
)  # never the console: the core reports events, a reporter shows them


def opensem_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every opensem import in a file, at any depth (function bodies too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = (
                [node.module]
                if node.module != "opensem"
                else [f"opensem.{alias.name}" for alias in node.names]
            )
            found += [(node.lineno, name) for name in names if name.startswith("opensem")]
        elif isinstance(node, ast.Import):
            found += [
                (node.lineno, alias.name)
                for alias in node.names
                if alias.name.startswith("opensem")
            ]
    return found


def test_the_build_core_imports_nothing_from_the_domain() -> None:
    core = sorted((PACKAGE / "core").glob("*.py"))
    assert len(core) >= 10, "the core modules moved?"
    wrong = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}"
        for path in core
        for line, module in opensem_imports(path)
        if module != "opensem"
        and not module.startswith(CORE_MAY_IMPORT)
        and module != "opensem.__version__"
    ]
    assert wrong == [], "\n".join(wrong)


GROUND = {"core", "settings", "errors", "plugins", "__init__", "__main__"}
DOMAIN = {
    "accounts",
    "data",
    "teachers",
    "forge",
    "training",
    "curate",
    "evaluation",
    "knowledge",
    "release",
    "feedback",
    "serving",
    "routing",
    "plotting",
}
TOP = {"manifest", "project", "cli", "console", "entry", "noop", "ui"}
# Which floors each floor may import from (its own package always).
MAY_IMPORT = {
    "settings": {"errors"},
    "domain": GROUND | DOMAIN,
    "stages": GROUND | DOMAIN,
    "top": GROUND | DOMAIN | TOP | {"stages"},
}


def package_imports() -> dict[str, dict[str, list[str]]]:
    """{package: {imported package: [file:line, ...]}} over opensem, imports inside functions included."""
    found: dict[str, dict[str, list[str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        package = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for line, module in opensem_imports(path):
            target = module.split(".")[1] if module.count(".") else "__init__"
            if target != package:
                found.setdefault(package, {}).setdefault(target, []).append(
                    f"{path.relative_to(PACKAGE.parent)}:{line}"
                )
    return found


def floor_of(package: str) -> str:
    if package == "settings":
        return "settings"
    if package in DOMAIN:
        return "domain"
    if package == "stages":
        return "stages"
    if package in TOP:
        return "top"
    return "ground"


def test_every_package_imports_only_from_floors_below_it() -> None:
    known = GROUND | DOMAIN | TOP | {"stages"}
    wrong = []
    for package, targets in package_imports().items():
        assert package in known, f"opensem/{package} belongs to no floor: add it to this test"
        floor = floor_of(package)
        if floor in MAY_IMPORT:
            wrong += [
                f"{where} ({package} -> {target})"
                for target, places in targets.items()
                if target not in MAY_IMPORT[floor]
                for where in places
            ]
    assert wrong == [], "\n".join(wrong)


def test_no_two_packages_import_each_other() -> None:
    graph = {package: set(targets) for package, targets in package_imports().items()}

    def reaches(start: str, goal: str) -> bool:
        seen, pending = set(), [start]
        while pending:
            current = pending.pop()
            if current == goal:
                return True
            if current not in seen:
                seen.add(current)
                pending.extend(graph.get(current, ()))
        return False

    loops = sorted(
        {tuple(sorted((a, b))) for a, targets in graph.items() for b in targets if reaches(b, a)}
    )
    assert loops == [], f"import loops between packages: {loops}"


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "def f():\n    from opensem.stages import get_stage\n    import opensem.training.tiny\n"
    )
    assert opensem_imports(bad) == [(2, "opensem.stages"), (3, "opensem.training.tiny")]


def test_cli_and_package_import_no_ml_or_web_library() -> None:
    code = (
        "import sys, opensem, opensem.cli\n"
        "heavy = {'torch', 'transformers', 'peft', 'trl', 'datasets', 'fastapi', 'uvicorn', "
        "'sentence_transformers'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
