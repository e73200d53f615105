"""Upload names, paths and CSRF tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from opensem.errors import UsageError
from opensem.ui import security


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("manual.pdf", "manual.pdf"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("C:\\Users\\me\\notes.MD", "notes.MD"),
        ("Crème brûlée.pdf", "Creme-brulee.pdf"),
        (".hidden.md", "hidden.md"),
        ("a" * 300 + ".txt", "a" * 116 + ".txt"),
    ],
)
def test_safe_names_keep_no_folders_and_only_safe_characters(given: str, kept: str) -> None:
    assert security.safe_name(given) == kept


@pytest.mark.parametrize("given", ["tool.exe", "archive.pdf.zip", "..", "", "noext"])
def test_names_of_other_types_are_refused(given: str) -> None:
    with pytest.raises(UsageError, match="not a document"):
        security.safe_name(given)


def test_a_link_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / "out.pdf").symlink_to(tmp_path / "elsewhere.pdf")
    with pytest.raises(UsageError, match="outside raw/"):
        security.inside(folder, "out.pdf")
    assert security.inside(folder, "in.pdf") == (folder / "in.pdf").resolve()


def test_tokens_belong_to_one_session_and_the_secret_is_private(tmp_path: Path) -> None:
    secret = security.project_secret(tmp_path)
    assert secret == security.project_secret(tmp_path)  # made once
    assert (tmp_path / "build" / "ui" / "secret").stat().st_mode & 0o077 == 0
    token = security.csrf_token(secret, "session-a")
    assert security.csrf_valid(secret, "session-a", token)
    assert not security.csrf_valid(secret, "session-b", token)
    assert not security.csrf_valid(secret, None, token)
    assert not security.csrf_valid(b"another secret", "session-a", token)
