"""The build core imports nothing from the domain, and the light entry points load no ML library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "opensem"
# What the core may import from opensem: itself, the error root and the console.
CORE_MAY_IMPORT = ("opensem.core", "opensem.errors")  # never the console: the core reports events, a reporter shows them


def opensem_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every opensem import in a file, at any depth (function bodies too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != "opensem" else [f"opensem.{alias.name}" for alias in node.names]
            found += [(node.lineno, name) for name in names if name.startswith("opensem")]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("opensem")]
    return found


def test_the_build_core_imports_nothing_from_the_domain() -> None:
    core = sorted((PACKAGE / "core").glob("*.py"))
    assert len(core) >= 10, "the core modules moved?"
    wrong = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}"
        for path in core
        for line, module in opensem_imports(path)
        if module != "opensem" and not module.startswith(CORE_MAY_IMPORT) and module != "opensem.__version__"
    ]
    assert wrong == [], "\n".join(wrong)


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from opensem.stages import get_stage\n    import opensem.training.tiny\n")
    assert opensem_imports(bad) == [(2, "opensem.stages"), (3, "opensem.training.tiny")]


def test_cli_and_package_import_no_ml_or_web_library() -> None:
    code = (
        "import sys, opensem, opensem.cli\n"
        "heavy = {'torch', 'transformers', 'peft', 'trl', 'datasets', 'fastapi', 'uvicorn', 'sentence_transformers'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
