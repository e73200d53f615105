"""A paid teacher through the interface: the estimate is shown and confirmed before anything is
sent, the budget stops a build before it spends, and the key typed into the form reaches the
provider and nowhere else (no file of the project, no log)."""

from __future__ import annotations

import json
import re
import secrets
import zipfile
from pathlib import Path

import requests

from tests.pdf import write_pdf
from tests.servers.openai_compatible import OpenAICompatibleServer
from tests.stages.test_synthesize import teacher_answer
from tests.ui.conftest import RunningUI, job_ends


def _session(ui: RunningUI) -> tuple[requests.Session, str]:
    client = requests.Session()
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get(ui.url + "/experts/new").text)
    assert token is not None
    return client, token.group(1)


def _create(
    ui: RunningUI, server: OpenAICompatibleServer, name: str, key: str, budget: str, pdf: Path
) -> None:
    client, token = _session(ui)
    made = client.post(
        ui.url + "/experts/new",
        data={
            "csrf": token,
            "name": name,
            "base": "tiny",
            "teacher": "openai",
            "teacher_model": "teacher",
            "teacher_base_url": server.url,
            "teacher_key": key,
            "teacher_key_env": "COFFEE_TEACHER_KEY",
            "teacher_price_in": "150",
            "teacher_price_out": "600",
            "teacher_max_cost": budget,
        },
        files=[("documents", ("grinder.pdf", pdf.read_bytes(), "application/pdf"))],
        allow_redirects=False,
    )
    assert made.status_code == 303, made.text


def test_a_paid_teacher_is_confirmed_budgeted_and_its_key_kept_secret(
    ui: RunningUI, tmp_path: Path
) -> None:
    key = "sk-planted-" + secrets.token_hex(16)
    pdf = write_pdf(tmp_path / "g.pdf", [["Brush the burrs weekly.", "Descale every month."]])
    with OpenAICompatibleServer() as server:
        server.answer = teacher_answer
        _create(ui, server, "coffee", key, "5", pdf)
        manifest = (ui.root / "manifests" / "coffee.yaml").read_text()
        assert "max_cost: 5" in manifest and "price_per_1k_input_tokens: 0.15" in manifest
        client, token = _session(ui)

        asked = client.post(
            ui.url + "/experts/coffee/generate",
            data={"csrf": token, "until": "synthesize"},
            allow_redirects=False,
        )
        assert asked.headers["location"] == "/experts/coffee/confirm?until=synthesize"
        assert (
            "the documents are not read yet" in client.get(ui.url + asked.headers["location"]).text
        )
        read = client.post(
            ui.url + "/experts/coffee/generate",
            data={"csrf": token, "until": "ingest"},
            allow_redirects=False,
        )
        assert job_ends(ui.root, read.headers["location"]) == "done" and server.count == 0
        page = client.get(ui.url + "/experts/coffee/confirm?until=synthesize").text
        assert "requests to send" in page and "at most $" in page
        assert "synthesis.budget.max_cost 5" in page

        built = client.post(
            ui.url + "/experts/coffee/build",
            data={"csrf": token, "until": "synthesize", "accept": "on"},
            allow_redirects=False,
        )
        assert job_ends(ui.root, built.headers["location"]) == "done"
        assert server.count > 0 and set(server.authorization) == {f"Bearer {key}"}

        other = write_pdf(tmp_path / "t.pdf", [["Steep green tea for two minutes."]])
        _create(ui, server, "tea", key, "0.000001", other)  # nothing of it in the answer cache
        before = server.count
        refused = client.post(
            ui.url + "/experts/tea/build",
            data={"csrf": token, "until": "synthesize", "accept": "on"},
            allow_redirects=False,
        )
        assert job_ends(ui.root, refused.headers["location"]) == "failed"
        assert server.count == before  # stopped before sending anything
        job = refused.headers["location"].rsplit("/", 1)[1]
        events = (ui.root / "build" / "ui" / "jobs" / f"{job}.jsonl").read_text().splitlines()
        assert "teacher budget is exceeded" in json.loads(events[-1])["error"]

        exported = client.post(
            ui.url + "/experts/coffee/export",
            data={"csrf": token, "documents": "on", "dataset": "on", "format": "sharegpt"},
        )
        assert exported.status_code == 200 and exported.content[:2] == b"PK"
        assert list((ui.root / "build" / "ui" / "exports").glob("coffee-*.zip"))

    planted = key.encode()
    holding = [p for p in ui.root.rglob("*") if p.is_file() and planted in p.read_bytes()]
    assert holding == []  # lock, store, manifests, job logs and events, the key files
    for made in (ui.root / "build" / "ui" / "exports").glob("*.zip"):  # compressed: look inside
        with zipfile.ZipFile(made) as archive:
            assert not [n for n in archive.namelist() if planted in archive.read(n)]
    assert (ui.root / "build" / "ui" / "keys" / "coffee.json").stat().st_mode & 0o077 == 0
