"""`opensem ui --accounts`: sign-in by an emailed link through a real SMTP server, each person in
their own project, and a second person who tries every route on the first one's expert, job and
files gets 404 for each, with nothing of theirs in any answer."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from email import message_from_string
from pathlib import Path

import pytest
import requests

from opensem.accounts.database import sqlite_url
from opensem.accounts.homes import default_database
from tests.accounts.conftest import Inbox, smtp  # noqa: F401 (the SMTP server fixture)
from tests.cli import run_cli
from tests.servers.github_oauth import GitHubOAuthServer
from tests.ui.conftest import RunningUI, job_ends, start_ui

SECRET_TEXT = "Descale the Gaggia with citric acid every 41 days."
DOCUMENT = "\n\n".join(
    [SECRET_TEXT]
    + [
        f"Step {n}: rinse the group head, purge the steam wand and wipe the drip tray {n} times."
        for n in range(1, 13)
    ]
)


def csrf_of(client: requests.Session, url: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)"', client.get(url).text)
    assert found is not None, url
    return found.group(1)


def sign_in(ui: RunningUI, inbox: Inbox, email: str) -> requests.Session:
    client = requests.Session()
    token = csrf_of(client, ui.url + "/sign-in")
    sent = client.post(ui.url + "/sign-in", data={"csrf": token, "email": email})
    assert sent.status_code == 200 and email in sent.text
    deadline = time.monotonic() + 10
    while not any(email in m for m in inbox.messages) and time.monotonic() < deadline:
        time.sleep(0.05)
    mail = message_from_string(next(m for m in inbox.messages if email in m))
    link = re.search(r"http\S+/sign-in/link\?token=\S+", str(mail.get_payload()))
    assert link is not None
    landed = client.get(link.group(0).replace("http://x", ui.url))
    assert landed.status_code == 200 and landed.url == ui.url + "/"
    cookie = next(c for c in client.cookies if c.name == "opensem_account")
    assert cookie.has_nonstandard_attr("HttpOnly")
    return client


def gated(root: Path, inbox: Inbox) -> RunningUI:
    """`opensem ui --accounts` mailing through inbox's server; links name http://x."""
    return start_ui(
        root, "--accounts", "--smtp", f"127.0.0.1:{inbox.port}", "--public-url", "http://x"
    )


def test_each_person_sees_only_their_own_experts(
    tmp_path: Path,
    smtp: Inbox,  # noqa: F811
) -> None:
    ui = gated(tmp_path, smtp)
    try:
        assert requests.get(ui.url + "/", allow_redirects=False).headers["location"] == "/sign-in"
        ana = sign_in(ui, smtp, "ana@example.org")
        token = csrf_of(ana, ui.url + "/experts/new")
        made = ana.post(
            ui.url + "/experts/new",
            data={
                "csrf": token,
                "name": "coffee",
                "base": "tiny",
                "question": ["How often is the Gaggia descaled?"],
                "answer": ["Every 41 days."],
            },
            files=[("documents", ("care.txt", DOCUMENT.encode(), "text/plain"))],
            allow_redirects=False,
        )
        assert made.status_code == 303
        job = ana.post(
            ui.url + "/experts/coffee/build", data={"csrf": token}, allow_redirects=False
        ).headers["location"]
        homes = list((tmp_path / "users").iterdir())
        assert len(homes) == 1 and (homes[0] / "data" / "coffee" / "raw" / "care.txt").exists()
        assert (
            job_ends(homes[0], job, database=sqlite_url(default_database(tmp_path))) == "done"
        )  # a release of Ana's to reach for
        page = ana.get(ui.url + "/experts/coffee").text
        tag = re.search(r"/experts/coffee/releases/([^/\"]+)\"", page)
        assert tag is not None
        release = f"/experts/coffee/releases/{tag.group(1)}"
        file = re.search(rf"{release}/files/([^\"]+)\"", ana.get(ui.url + release).text)
        assert file is not None and ana.get(ui.url + f"{release}/files/{file.group(1)}").ok

        bo = sign_in(ui, smtp, "bo@example.org")
        assert "coffee" not in bo.get(ui.url + "/").text
        bo_token = csrf_of(bo, ui.url + "/experts/new")
        tried = {
            ("GET", path): bo.get(ui.url + path, allow_redirects=False)
            for path in (
                "/experts/coffee",
                "/experts/coffee/data",
                "/experts/coffee/chat",
                "/experts/coffee/export",
                "/experts/coffee/delete",
                "/experts/coffee/confirm",
                "/experts/coffee/chat/state",
                release,
                f"{release}/files/{file.group(1)}",
                job,
                job + "/events",
                "/experts/../users/" + homes[0].name + "/data/coffee/raw/care.txt",
            )
        }
        form = {"csrf": bo_token, "confirm": "coffee", "until": "ingest", "accept": "on"}
        for path in (
            "/experts/coffee/build",
            "/experts/coffee/generate",
            "/experts/coffee/delete",
            "/experts/coffee/export",
            "/experts/coffee/golden",
            "/experts/coffee/golden/suggest",
            "/experts/coffee/serve",
            "/experts/coffee/chat",
            "/experts/coffee/feedback",
            f"{release}/delete",
            job + "/cancel",
        ):
            tried["POST", path] = bo.post(ui.url + path, data=form, allow_redirects=False)
        tried["POST", "/experts/coffee/pairs"] = bo.post(
            ui.url + "/experts/coffee/pairs",
            json={"id": "x", "action": "delete"},
            headers={"x-csrf-token": bo_token},
        )
        disclosed = [
            f"{method} {path}: {answer.status_code}"
            for (method, path), answer in tried.items()
            if answer.status_code != 404 or SECRET_TEXT in answer.text or "care.txt" in answer.text
        ]
        assert disclosed == [], disclosed
        assert (homes[0] / "manifests" / "coffee.yaml").exists()  # nothing of Ana's was touched
        assert len(list((tmp_path / "users").iterdir())) == 2

        api_tries = _api_keys_reach_only_their_owners_releases(ui, ana, bo, tmp_path)
        assert api_tries == {"tried": 7, "disclosed": 0}

        sign_out = re.search(
            r'action="/sign-out".*?name="csrf" value="([0-9a-f]+)"', ana.get(ui.url + "/").text
        )
        assert sign_out is not None
        ana.post(ui.url + "/sign-out", data={"csrf": sign_out.group(1), "everywhere": "on"})
        assert ana.get(ui.url + "/", allow_redirects=False).status_code == 303

        stranger = requests.Session()
        asked = [
            stranger.post(
                ui.url + "/sign-in",
                data={"csrf": csrf_of(stranger, ui.url + "/sign-in"), "email": "ana@example.org"},
            )
            for _ in range(3)
        ]
        assert [a.status_code for a in asked] == [200, 200, 429]  # 3 links per email a window
        assert "too many sign-in requests" in asked[-1].text

        code, listed = run_cli("accounts", "list", "--project", str(tmp_path))
        assert code == 0 and "ana@example.org" in listed and "bo@example.org" in listed
        code, log = run_cli("accounts", "audit", "ana@example.org", "--project", str(tmp_path))
        assert code == 0 and "sign-in" in log and "job" in log and "signed out everywhere" in log
        bo_home = next(h for h in (tmp_path / "users").iterdir() if h != homes[0])
        code, said = run_cli(
            "accounts", "delete", "bo@example.org", "--yes", "--project", str(tmp_path)
        )
        assert code == 0 and "deleted: the account, its sessions" in said and not bo_home.exists()
        assert bo.get(ui.url + "/", allow_redirects=False).status_code == 303  # signed out for good
        assert "Traceback" not in ui.log.read_text()
    finally:
        ui.stop()


def _make_key(ui: RunningUI, client: requests.Session) -> tuple[str, str]:
    """(the key, its number) made on a person's account page."""
    token = csrf_of(client, ui.url + "/account")
    page = client.post(ui.url + "/account/api-keys", data={"csrf": token, "label": "laptop"})
    assert page.ok and page.headers["cache-control"] == "no-store"
    key = re.search(r'<code id="key-value">(osk_[^<]+)</code>', page.text)
    ids = re.findall(r'data-key="(\d+)"', page.text)
    assert key is not None and len(ids) == 1
    assert key.group(1) not in client.get(ui.url + "/account").text  # shown that once
    return key.group(1), ids[0]


def _api_keys_reach_only_their_owners_releases(
    ui: RunningUI, ana: requests.Session, bo: requests.Session, project: Path
) -> dict[str, int]:
    """Keys made on the account pages, used through `opensem serve --accounts`: Bo's reaches
    nothing of Ana's, and every refusal reads as one for a model that does not exist."""
    import subprocess
    import sys

    import openai

    from tests.servers.ray_cluster import free_port

    ana_key, ana_key_number = _make_key(ui, ana)
    # Key numbers are each person's own: Bo, who has none, can name none of Ana's
    token = csrf_of(bo, ui.url + "/account")
    revoke = bo.post(f"{ui.url}/account/api-keys/{ana_key_number}/revoke", data={"csrf": token})
    assert revoke.status_code == 404 and ana_key[:10] not in bo.get(ui.url + "/account").text
    bo_key, bo_key_number = _make_key(ui, bo)
    assert bo_key_number == ana_key_number == "1"  # nothing says Ana made one first

    port = free_port()
    log = (project / "serve.log").open("wb")
    command = [sys.executable, "-m", "opensem", "serve", "--accounts", str(project)]
    server = subprocess.Popen(
        [*command, "--port", str(port)], cwd=project, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(url + "/health/ready", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert server.poll() is None, (project / "serve.log").read_text()
            time.sleep(0.3)
        mine = openai.OpenAI(base_url=url + "/v1", api_key=ana_key, max_retries=0)
        theirs = openai.OpenAI(base_url=url + "/v1", api_key=bo_key, max_retries=0)
        assert [m.id for m in mine.models.list()] == ["coffee"]
        question = [{"role": "user", "content": "How often is the Gaggia descaled?"}]
        answer = mine.chat.completions.create(model="coffee", messages=question, max_tokens=8)
        assert list(theirs.models.list()) == []
        tries = {
            "retrieve": lambda model: theirs.models.retrieve(model),
            "chat": lambda model: theirs.chat.completions.create(
                model=model, messages=question, max_tokens=4
            ),
            "completion": lambda model: theirs.completions.create(
                model=model, prompt="Descale?", max_tokens=4
            ),
            "embeddings": lambda model: theirs.embeddings.create(model=model, input="descale"),
            "feedback": lambda model: theirs.post(
                "/feedback",
                body={
                    "completion_id": answer.id if model == "coffee" else "chatcmpl-0",
                    "rating": 1,
                },
                cast_to=object,
            ),
            "list": lambda model: [m.id for m in theirs.models.list() if m.id == model],
            "metrics": lambda model: _metrics(url, bo_key, model),
        }
        disclosed = 0
        for name, call in tries.items():
            real, unknown = _outcome(call, "coffee"), _outcome(call, "nothing")
            normal = real.replace("coffee", "nothing").replace(answer.id, "chatcmpl-0")
            disclosed += normal != unknown or not real.startswith(("401", "404", "200 []"))
            assert normal == unknown, (name, real, unknown)
        return {"tried": len(tries), "disclosed": disclosed}
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _metrics(url: str, key: str, model: str) -> str:
    answer = requests.get(url + "/metrics", headers={"Authorization": f"Bearer {key}"})
    return f"{answer.status_code} {'names it' if model in answer.text else answer.text}"


def _outcome(call: Callable[[str], object], model: str) -> str:
    """What a call on model answered: its status and error body, or what it returned."""
    import json

    import openai

    try:
        result = call(model)
    except openai.APIStatusError as error:
        return f"{error.status_code} {json.dumps(error.body, sort_keys=True)}"
    return result if isinstance(result, str) else f"200 {result}"


def test_github_sign_in_through_the_interface(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENSEM_GITHUB_SECRET", "s3cret")
    profile = {"id": 4242, "login": "octo"}
    with GitHubOAuthServer("opensem-test", "s3cret", profile) as github:
        ui = start_ui(
            tmp_path,
            "--accounts",
            "--github-client-id",
            "opensem-test",
            "--github-url",
            github.url,
            "--public-url",
            "http://x",
        )
        try:
            client = requests.Session()
            assert 'id="github"' in client.get(ui.url + "/sign-in").text
            away = client.get(ui.url + "/sign-in/github", allow_redirects=False)
            assert away.status_code == 303 and away.headers["location"].startswith(github.url)
            back = requests.get(away.headers["location"], allow_redirects=False)
            callback = back.headers["location"].replace("http://x", ui.url)
            landed = client.get(callback)
            assert landed.status_code == 200 and landed.url == ui.url + "/"
            assert "octo" in landed.text  # signed in, in their own interface
            forged = requests.Session().get(callback)  # another browser, no state cookie
            assert forged.status_code == 400 and "not valid any more" in forged.text
            code, listed = run_cli("accounts", "list", "--project", str(tmp_path))
            assert code == 0 and "4242" in listed and "octo" in listed
        finally:
            ui.stop()


def test_an_admin_lists_disables_and_deletes_people_and_no_one_else_sees_the_page(
    tmp_path: Path,
    smtp: Inbox,  # noqa: F811
) -> None:
    ui = gated(tmp_path, smtp)
    try:
        ana = sign_in(ui, smtp, "ana@example.org")
        bo = sign_in(ui, smtp, "bo@example.org")
        assert bo.get(ui.url + "/").ok  # bo's own folder exists now
        assert ana.get(ui.url + "/admin").status_code == 404  # not an admin yet
        code, said = run_cli("accounts", "admin", "ana@example.org", "--project", str(tmp_path))
        assert code == 0 and "is an admin" in said
        listed = ana.get(ui.url + "/admin").text
        assert "bo@example.org" in listed and "ana@example.org" in listed
        assert bo.get(ui.url + "/admin").status_code == 404
        bo_id = re.search(r'<tr data-user="(\d+)">\s*<td>\d+</td><td>bo@', listed)
        assert bo_id is not None
        token = csrf_of(ana, ui.url + "/admin")
        user = f"{ui.url}/admin/users/{bo_id.group(1)}"
        assert ana.post(f"{user}/budget", data={"csrf": token, "usd": "7.5"}).ok
        assert 'value="7.50"' in ana.get(ui.url + "/admin").text
        wrong = ana.post(f"{user}/budget", data={"csrf": token, "usd": "lots"})
        assert wrong.status_code == 400 and "not an amount of dollars" in wrong.text
        assert bo.post(f"{user}/budget", data={"csrf": token, "usd": "1e9"}).status_code == 404
        assert ana.post(f"{user}/disable").status_code == 403  # the form's token is needed
        assert ana.post(f"{user}/disable", data={"csrf": token}).ok
        assert bo.get(ui.url + "/", allow_redirects=False).status_code == 303
        homes = list((tmp_path / "users").iterdir())
        deleted = ana.post(f"{user}/delete", data={"csrf": token})
        assert deleted.ok and "bo@example.org is deleted: the account, its sessions" in deleted.text
        assert len(list((tmp_path / "users").iterdir())) == len(homes) - 1
        assert "bo@example.org" not in ana.get(ui.url + "/admin").text
        code, log = run_cli("accounts", "audit", "--project", str(tmp_path))
        assert "disabled" in log and "account deleted" in log
    finally:
        ui.stop()


def test_builds_queued_when_the_interface_stopped_go_on_before_their_owner_is_back(
    tmp_path: Path,
) -> None:
    from opensem.accounts.database import open_database, sqlite_url
    from opensem.accounts.homes import home
    from opensem.accounts.mail import MailSettings
    from opensem.accounts.service import Accounts
    from opensem.ui.gate import Gate, GateSettings
    from opensem.ui.jobs import JobQueue

    default_database(tmp_path).parent.mkdir(parents=True)
    url = sqlite_url(default_database(tmp_path))
    accounts = Accounts(open_database(url))
    ana, _ = accounts.sign_in(accounts.request_link("ana@example.org", "a"), "a")
    accounts.sign_in(accounts.request_link("bo@example.org", "b"), "b")  # nothing queued
    (home(tmp_path, ana) / "manifests").mkdir(parents=True)
    (home(tmp_path, ana) / "manifests" / "broken.yaml").write_text("job_id: broken\n")
    queued = JobQueue(home(tmp_path, ana), database=accounts.engine, owner=ana.id).submit(
        "manifests/broken.yaml"
    )
    gate = Gate(GateSettings(tmp_path, url, MailSettings(), "http://x"), accounts)
    gate.resume()  # what the interface does as it starts
    try:
        assert list(gate.apps) == [ana.id]
        jobs = gate.apps[ana.id].state.jobs
        deadline = time.monotonic() + 60
        while (job := jobs.get(queued.id)) is not None and job.state in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert job is not None and job.state == "failed" and job.exit_code == 2
    finally:
        gate.forget(ana.id)


def test_the_session_cookie_is_secure_http_only_and_same_site_behind_https(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from opensem.accounts.database import open_database, sqlite_url
    from opensem.accounts.mail import MailSettings
    from opensem.accounts.service import Accounts
    from opensem.ui.gate import Gate, GateSettings

    default_database(tmp_path).parent.mkdir(parents=True)
    url = sqlite_url(default_database(tmp_path))
    accounts = Accounts(open_database(url))
    settings = GateSettings(tmp_path, url, MailSettings(), "https://opensem.example.org")
    with TestClient(Gate(settings, accounts), base_url="https://opensem.example.org") as client:
        token = accounts.request_link("ana@example.org", "a")
        landed = client.get(f"/sign-in/link?token={token}", follow_redirects=False)
        assert landed.status_code == 303
        cookies = {
            c.split("=")[0]: {p.strip() for p in c.lower().split(";")}
            for c in landed.headers.get_list("set-cookie")
        }
        assert {"secure", "httponly", "samesite=lax"} <= cookies["opensem_account"]
        assert {"secure", "httponly", "samesite=strict"} <= cookies["opensem_session"]
        again = client.get(f"/sign-in/link?token={token}", follow_redirects=False)
        assert again.status_code == 400 and "not valid any more" in again.text
