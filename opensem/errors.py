"""One exception root for everything opensem reports to a user.

Every error carries what is wrong (message), where (location) and what to do (hint). Only the
CLI turns these into exit codes; library code raises and never exits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class Location:
    """Where a problem is: a file, a line in it, and a key path inside a manifest."""

    file: str | None = None
    line: int | None = None
    key: str | None = None

    def __str__(self) -> str:
        where = self.file or ""
        if self.file and self.line:
            where = f"{self.file}:{self.line}"
        if self.key:
            where = f"{where}: {self.key}" if where else self.key
        return where


class OpensemError(Exception):
    """Root of all errors opensem reports; never shown with a traceback."""

    # True for outcomes that hold a build back on purpose (a failed quality gate), as opposed to
    # something broken: plan then says "blocked", and the stages after it wait.
    blocks: ClassVar[bool] = False

    def __init__(self, message: str, location: Location | None = None, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.location = location or Location()
        self.hint = hint

    def render(self) -> str:
        """The error as the CLI prints it: location, message and hint."""
        where = str(self.location)
        text = f"{where}: {self.message}" if where else self.message
        return f"{text}\n  hint: {self.hint}" if self.hint else text

    def __reduce__(self) -> tuple[object, ...]:
        """Pickle with location and hint (an error raised in a worker process or on a Ray worker)."""
        return (_rebuilt, (type(self), self.args, self.__dict__))


def _rebuilt(
    kind: type[OpensemError], args: tuple[object, ...], state: dict[str, object]
) -> OpensemError:
    error = kind.__new__(kind)
    error.args = args
    error.__dict__.update(state)
    return error


@dataclass(frozen=True)
class Problem:
    """One validation problem; a manifest error collects all of them at once."""

    message: str
    location: Location
    hint: str = ""

    def render(self) -> str:
        """The problem as the CLI prints it: location, message and hint."""
        text = f"{self.location}: {self.message}"
        return f"{text}\n  hint: {self.hint}" if self.hint else text


class ManifestError(OpensemError):
    """The manifest is not valid; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem], what: str = "manifest") -> None:
        first = problems[0]
        super().__init__(first.message, first.location, first.hint)
        self.problems, self.what = problems, what

    def render(self) -> str:
        """Every problem, counted, one after the other."""
        count = len(self.problems)
        head = f"invalid {self.what}: {count} problem{'s' if count != 1 else ''}"
        return "\n".join([head, *(p.render() for p in self.problems)])


class UsageError(OpensemError):
    """A command was called with arguments that cannot work (unknown stage, missing file)."""


class StageError(OpensemError):
    """A stage ran and failed; nothing it wrote counts as built."""


class DataError(StageError):
    """Input data a stage was given cannot be read or has the wrong shape."""


class VerifyError(OpensemError):
    """verify found that manifest, data, lock, store or registry disagree."""

    def __init__(self, mismatches: list[str]) -> None:
        super().__init__(
            f"{len(mismatches)} mismatch{'es' if len(mismatches) != 1 else ''}",
            hint="rebuild with `opensem build` and commit the new lock, or restore the edited file",
        )
        self.mismatches = mismatches

    def render(self) -> str:
        """Every lot that no longer matches, one per line."""
        return "\n".join(
            [
                f"verify failed: {self.message}",
                *(f"  - {m}" for m in self.mismatches),
                f"  hint: {self.hint}",
            ]
        )


class RegistryError(OpensemError):
    """Publishing or pulling through the registry was refused or failed."""


class ServeError(OpensemError):
    """A server could not load a release it was asked to serve."""


class HardwareIncompatibleError(OpensemError):
    """The requested training cannot run on this machine's hardware."""


class GateFailed(OpensemError):
    """A quality gate from the manifest did not pass; nothing is published."""

    blocks = True


def error_json(error: OpensemError, code: int) -> dict[str, object]:
    """An error as `--json` commands end with it: message, location, hint and exit code."""
    return {
        "event": "error",
        "error": error.message,
        "location": str(error.location),
        "hint": error.hint,
        "exit_code": code,
        "kind": type(error).__name__,
    }
