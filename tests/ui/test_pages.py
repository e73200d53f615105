"""The interface's pages as a client sees them over HTTP: errors are pages, forms need their
token, uploads are checked, and a new expert's manifest is the one guided init writes."""

from __future__ import annotations

import re
from pathlib import Path

import requests

from opensem.manifest.new_expert import Document, ExpertAnswers, create_expert
from opensem.project import load_graph
from tests.pdf import write_pdf
from tests.ui.conftest import RunningUI


def _session(ui: RunningUI) -> tuple[requests.Session, str]:
    """A client with the interface's session cookie and the CSRF token its pages carry."""
    client = requests.Session()
    page = client.get(ui.url + "/experts/new")
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert token is not None
    return client, token.group(1)


def test_errors_are_pages_that_say_what_to_do(ui: RunningUI) -> None:
    for path, status in (("/experts/nope", 404), ("/jobs/999", 404), ("/jobs/abc", 400)):
        answer = requests.get(ui.url + path)
        assert answer.status_code == status, path
        assert answer.headers["content-type"].startswith("text/html")
        assert "Traceback" not in answer.text and "Back to the experts" in answer.text
    assert "there is no such page" in requests.get(ui.url + "/experts/nope").text


def test_a_form_needs_its_pages_token(ui: RunningUI) -> None:
    client, token = _session(ui)
    assert client.post(ui.url + "/experts/nope/build").status_code == 403
    assert client.post(ui.url + "/experts/nope/build", data={"csrf": "0" * 64}).status_code == 403
    other = requests.Session()  # another browser's session with this one's token
    other.get(ui.url + "/")
    assert other.post(ui.url + "/experts/nope/build", data={"csrf": token}).status_code == 403
    refused = client.post(ui.url + "/experts/nope/build", data={"csrf": token})
    assert refused.status_code == 404  # past the token, to the missing expert
    cookie = next(c for c in client.cookies if c.name == "opensem_session")
    assert cookie.has_nonstandard_attr("HttpOnly")


def test_uploads_are_named_safely_and_checked(ui: RunningUI, tmp_path: Path) -> None:
    client, token = _session(ui)
    pdf = write_pdf(tmp_path / "a.pdf", [["Brush the burrs weekly."]]).read_bytes()
    form = {"csrf": token, "name": "coffee", "base": "tiny", "knowledge": "on"}
    bad = client.post(
        ui.url + "/experts/new",
        data=form,
        files=[
            ("documents", ("tool.exe", b"MZ", "application/octet-stream")),
            ("documents", ("big.txt", b"x" * (20 * 1024 * 1024 + 1), "text/plain")),
        ],
    )
    assert bad.status_code == 400
    assert "not a document this expert can read" in bad.text and "larger than 20 MB" in bad.text
    assert not (ui.root / "manifests" / "coffee.yaml").exists()
    assert not (ui.root / "data" / "coffee").exists()

    made = client.post(
        ui.url + "/experts/new",
        data=form,
        files=[("documents", ("../../../escape me.pdf", pdf, "application/pdf"))],
        allow_redirects=False,
    )
    assert made.status_code == 303 and made.headers["location"] == "/experts/coffee"
    assert (ui.root / "data" / "coffee" / "raw" / "escape-me.pdf").read_bytes() == pdf
    assert not list(ui.root.parent.glob("escape*"))

    again = client.post(
        ui.url + "/experts/new", data=form, files=[("documents", ("a.pdf", pdf, "application/pdf"))]
    )
    assert again.status_code == 400 and "already exists" in again.text


def test_the_form_writes_the_manifest_guided_init_writes(ui: RunningUI, tmp_path: Path) -> None:
    client, token = _session(ui)
    pdf = write_pdf(tmp_path / "a.pdf", [["Brush the burrs weekly."]])
    answer = client.post(
        ui.url + "/experts/new",
        data={
            "csrf": token,
            "name": "coffee",
            "description": "Home espresso care",
            "persona": "Brief.",
            "base": "smollm2",
            "teacher": "openai",
            "teacher_model": "qwen2.5:7b",
            "teacher_base_url": "http://127.0.0.1:11434/v1",
            "teacher_key_env": "",  # left empty: the default variable
            "question": ["How often are burrs brushed?", ""],
            "answer": ["Weekly.", ""],
        },
        files=[("documents", ("a.pdf", pdf.read_bytes(), "application/pdf"))],
        allow_redirects=False,
    )
    assert answer.status_code == 303
    terminal = tmp_path / "terminal"
    (terminal / "manifests").mkdir(parents=True)
    answers = ExpertAnswers(
        name="coffee",
        description="Home espresso care",
        persona="Brief.",
        base="smollm2",
        teacher="openai",
        teacher_model="qwen2.5:7b",
        teacher_base_url="http://127.0.0.1:11434/v1",
        knowledge=False,  # the checkbox was not sent
        golden=[{"question": "How often are burrs brushed?", "answer": "Weekly."}],
    )
    create_expert(terminal, answers, [Document("a.pdf", pdf)], load_graph)
    for relative in ("manifests/coffee.yaml", "data/coffee/golden/golden.jsonl"):
        assert (ui.root / relative).read_bytes() == (terminal / relative).read_bytes(), relative


def test_a_local_teacher_is_named_in_the_manifest_and_checked(
    ui: RunningUI, tmp_path: Path
) -> None:
    client, token = _session(ui)
    pdf = write_pdf(tmp_path / "a.pdf", [["Brush the burrs weekly."]]).read_bytes()
    form = {"csrf": token, "name": "coffee", "base": "tiny", "teacher": "local"}
    files = [("documents", ("a.pdf", pdf, "application/pdf"))]
    unnamed = client.post(ui.url + "/experts/new", data=form, files=files)
    assert unnamed.status_code == 400 and "name the local model" in unnamed.text
    missing = client.post(
        ui.url + "/experts/new",
        data={**form, "teacher_local_model": "./models/teacher"},
        files=files,
    )
    assert missing.status_code == 400 and "Traceback" not in missing.text
    assert "models/teacher" in missing.text and not (ui.root / "data" / "coffee").exists()
