"""Does the time of a refusal say whether another person's object exists?

Under `opensem ui --accounts`, Ana makes and builds an expert `coffee` (a job, a release). Bo
then asks, interleaved one request at a time, for Ana's objects and for objects that exist for no
one (`nothing`, job 999999), through the interface and through `opensem serve --accounts` with
his own API key. Both answer 404; this prints the median and p90 of each and the ratio of the
medians (another's / no one's). A ratio within a few percent of 1.00, inside the spread of either,
discloses nothing worth naming.

    .venv/bin/python bench/isolation_timing.py [--requests N]   (default 300 per route and side)
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / ".work" / "isolation"
DOCUMENT = "\n\n".join(
    f"Step {n}: rinse the group head, purge the steam wand and wipe the drip tray."
    for n in range(12)
)


def signed_in(ui_url: str, session: str) -> requests.Session:
    client = requests.Session()
    client.cookies.set("opensem_account", session)
    client.get(ui_url + "/").raise_for_status()
    return client


def timed(call: Callable[[], requests.Response]) -> float:
    begun = time.perf_counter()
    answer = call()
    spent = (time.perf_counter() - begun) * 1000
    if answer.status_code != 404:
        raise AssertionError(f"expected 404, got {answer.status_code}: {answer.text[:200]}")
    return spent


def compare(
    name: str, fetch: Callable[[str], requests.Response], theirs: str, nobodys: str, count: int
) -> None:
    """Time fetch(theirs) and fetch(nobodys), interleaved, and print both and their ratio."""
    for _ in range(10):
        fetch(theirs), fetch(nobodys)
    a, b = [], []
    for _ in range(count):
        a.append(timed(lambda: fetch(theirs)))
        b.append(timed(lambda: fetch(nobodys)))
    a.sort(), b.sort()
    p90 = int(count * 0.9)
    ratio = statistics.median(a) / statistics.median(b)
    print(
        f"{name:44} {statistics.median(a):8.2f} {a[p90]:8.2f} {statistics.median(b):8.2f} "
        f"{b[p90]:8.2f} {ratio:7.3f}"
    )


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from opensem.accounts.api_keys import ApiKeys
    from opensem.accounts.database import open_database, sqlite_url
    from opensem.accounts.homes import default_database
    from opensem.accounts.service import Accounts
    from tests.servers.ray_cluster import free_port
    from tests.ui.conftest import job_ends, start_ui

    count = int(sys.argv[sys.argv.index("--requests") + 1]) if "--requests" in sys.argv else 300
    shutil.rmtree(WORK, ignore_errors=True)
    project = WORK / "project"
    default_database(project).parent.mkdir(parents=True)
    accounts = Accounts(open_database(sqlite_url(default_database(project))))
    sessions = {}
    for who in ("ana", "bo"):
        user, sessions[who] = accounts.sign_in(
            accounts.request_link(f"{who}@example.org", who), who
        )
    ui = start_ui(project, "--accounts", "--smtp", "127.0.0.1:1", "--public-url", "http://x")
    server = None
    try:
        ana, bo = signed_in(ui.url, sessions["ana"]), signed_in(ui.url, sessions["bo"])
        token = re.search(
            r'<meta name="csrf-token" content="([0-9a-f]+)"', ana.get(ui.url + "/experts/new").text
        )
        assert token is not None
        ana.post(
            ui.url + "/experts/new",
            data={
                "csrf": token.group(1),
                "name": "coffee",
                "base": "tiny",
                "question": ["How often is the drip tray wiped?"],
                "answer": ["Every time."],
            },
            files=[("documents", ("care.txt", DOCUMENT.encode(), "text/plain"))],
        ).raise_for_status()
        built = ana.post(
            ui.url + "/experts/coffee/build", data={"csrf": token.group(1)}, allow_redirects=False
        )
        job = built.headers["location"]
        home = next((project / "users").iterdir())
        print("building Ana's expert ...", flush=True)
        assert job_ends(home, job, database=sqlite_url(default_database(project))) == "done"
        tag = re.search(
            r"/experts/coffee/releases/([^/\"]+)\"", ana.get(ui.url + "/experts/coffee").text
        )
        assert tag is not None

        print(f"\n{count} requests each, interleaved; milliseconds")
        print(
            f"{'Bo asks for':44} {'Ana p50':>8} {'Ana p90':>8} {'none p50':>8} {'none p90':>8} {'ratio':>7}"
        )
        for route, other in (
            ("/experts/coffee", "/experts/nothing"),
            ("/experts/coffee/data", "/experts/nothing/data"),
            (
                f"/experts/coffee/releases/{tag.group(1)}",
                f"/experts/nothing/releases/{tag.group(1)}",
            ),
            (job, "/jobs/999999"),
        ):
            compare(f"UI GET {route[:36]}", lambda r: bo.get(ui.url + r), route, other, count)

        keys = ApiKeys(accounts)
        bo_key = keys.make(accounts.users()[1].id, "bench")
        port = free_port()
        log = (WORK / "serve.log").open("wb")
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "opensem",
                "serve",
                "--accounts",
                str(project),
                "--port",
                str(port),
            ],
            cwd=project,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        while True:
            try:
                if requests.get(url + "/health/ready", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.3)
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {bo_key}"
        question = [{"role": "user", "content": "How often?"}]
        for route in ("models", "chat"):

            def call(model: str, route: str = route) -> requests.Response:
                if route == "models":
                    return api.get(f"{url}/v1/models/{model}")
                return api.post(
                    f"{url}/v1/chat/completions",
                    json={"model": model, "messages": question, "max_tokens": 4},
                )

            compare(f"API {route} (Bo's key)", call, "coffee", "nothing", count)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        ui.stop()


if __name__ == "__main__":
    main()
