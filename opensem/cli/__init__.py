"""The opensem command line; the only place that turns errors into exit codes.

Exit codes: 0 ok, 1 a stage failed or verify found a mismatch, 2 invalid manifest or usage,
3 a quality gate failed.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from opensem.console import console
from opensem.errors import (
    GateFailed,
    ManifestError,
    OpensemError,
    UsageError,
    VerifyError,
    error_json,
)

EXIT_CODES: list[tuple[type[OpensemError], int]] = [
    (ManifestError, 2),
    (UsageError, 2),
    (GateFailed, 3),
    (VerifyError, 1),
    (OpensemError, 1),
]

manifest_argument = click.argument("manifest", type=click.Path(path_type=Path, dir_okay=False))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="opensem")
@click.option("-v", "--verbose", is_flag=True, help="Show debug logs from stages.")
@click.pass_context
def cli(context: click.Context, verbose: bool) -> None:
    """Make for small expert models.

    A TrainingManifest (YAML) says what to train, on what data, how to evaluate it and where to
    publish it. opensem plans it as a graph of stages keyed by SHA256 lot numbers, runs only the
    stale ones, and records every result in build/store and the manifest's .lock file.

    \b
    Typical use:
      opensem validate manifests/my-expert.yaml
      opensem plan manifests/my-expert.yaml
      opensem build manifests/my-expert.yaml
      opensem verify manifests/my-expert.yaml     # in CI
    """
    context.obj = {"verbose": verbose}


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    handler = RichHandler(console=console, show_time=False, show_path=False, markup=False)
    logger = logging.getLogger("opensem")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False


def session_for(manifest: Path, force: tuple[str, ...] = (), reporter: Any = None) -> Any:
    """A build session of a manifest (opensem.project), with logging set up for the stages."""
    from opensem.project import load_graph, open_session

    _setup_logging(bool((click.get_current_context().find_root().obj or {}).get("verbose")))
    graph = load_graph(manifest)
    unknown = [s for s in force if s not in graph.names]
    if unknown:
        raise UsageError(
            f"no stage named {', '.join(unknown)} in {graph.job_id}",
            hint=f"stages: {', '.join(graph.names)}",
        )
    return open_session(graph, frozenset(force), reporter=reporter)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run a command and map its outcome to an exit code."""
    try:
        code = cli.main(args=argv, prog_name="opensem", standalone_mode=False)
    except click.exceptions.Abort:
        console.print("aborted")
        code = 130
    except click.ClickException as exc:
        exc.show()
        code = 2
    except OpensemError as exc:
        code = next(c for kind, c in EXIT_CODES if isinstance(exc, kind))
        if "--json" in (sys.argv[1:] if argv is None else argv):  # a JSON reader gets JSON
            print(json.dumps(error_json(exc, code), ensure_ascii=False), flush=True)
        else:
            console.print(exc.render(), markup=False)
    except KeyboardInterrupt:
        console.print("interrupted: finished stages stay in the store; nothing half-built counts")
        code = 130
    sys.exit(code if isinstance(code, int) else 0)


# The commands register themselves on import.
from opensem.cli import accounts as _accounts  # noqa: E402,F401
from opensem.cli import ask as _ask  # noqa: E402,F401
from opensem.cli import build as _build  # noqa: E402,F401
from opensem.cli import cache as _cache  # noqa: E402,F401
from opensem.cli import feedback as _feedback  # noqa: E402,F401
from opensem.cli import route as _route  # noqa: E402,F401
from opensem.cli import serve as _serve  # noqa: E402,F401
from opensem.cli import tools as _tools  # noqa: E402,F401
from opensem.cli import ui as _ui  # noqa: E402,F401
