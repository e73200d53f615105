"""`opensem serve --accounts`: many people's releases on one server, each reached only with its
owner's API keys, through the official OpenAI client. Ana and Bo both have an expert called
`coffee`; Ana also has `tea`. Everything Bo tries on Ana's answers exactly as a model, or a
completion, that does not exist."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest
import requests

from opensem.accounts.api_keys import ApiKeys
from opensem.accounts.database import open_database, sqlite_url
from opensem.accounts.homes import default_database, home
from opensem.accounts.models import User
from opensem.accounts.service import Accounts
from opensem.core.lock import write_lock
from opensem.errors import UsageError
from opensem.serving.config import ServeConfig
from opensem.serving.server import Server
from opensem.serving.tenancy import Tenancy, unscoped
from tests.cli import run_cli
from tests.serving.releases import publish

QUESTION = [{"role": "user", "content": "How fine should the grind be?"}]
LOTS = {"ana": "a" * 64, "bo": "b" * 64}


def person(accounts: Accounts, email: str) -> User:
    token = accounts.request_link(email, "127.0.0.1")
    return accounts.sign_in(token, "127.0.0.1")[0]


def expert(base: Path, user: User, name: str, release: Path, lot: str) -> Path:
    """A person's manifest of a published expert, as `opensem ui --accounts` makes and builds it."""
    root = home(base, user)
    (root / "manifests").mkdir(parents=True, exist_ok=True)
    manifest = root / "manifests" / f"{name}.yaml"
    manifest.write_text(
        f"job_id: {name}\nbase_model: ./tiny\npublish_target:\n  registry: build/registry\n",
        encoding="utf-8",
    )
    publish(release, root / "build" / "registry", name, "v1", lot)
    write_lock(manifest.with_suffix(".lock"), {"stages": {}, "published": {"tag": "v1"}})
    return manifest


@dataclass
class People:
    server: Server
    accounts: Accounts
    keys: dict[str, str]
    users: dict[str, User]
    base: Path

    def client(self, who: str) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=self.server.url + "/v1", api_key=self.keys[who], max_retries=0
        )


@pytest.fixture(scope="module")
def people(releases: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[People]:
    base = tmp_path_factory.mktemp("accounts")
    default_database(base).parent.mkdir(parents=True)
    accounts = Accounts(open_database(sqlite_url(default_database(base))))
    users = {who: person(accounts, f"{who}@example.org") for who in ("ana", "bo", "admin")}
    accounts.set_admin(users["admin"].id, True)
    expert(base, users["ana"], "coffee", releases["alpha"], LOTS["ana"])
    expert(base, users["ana"], "tea", releases["alpha"], LOTS["ana"])
    expert(base, users["bo"], "coffee", releases["beta"], LOTS["bo"])
    keys = {who: ApiKeys(accounts).make(user.id, "tests") for who, user in users.items()}
    server = Server(
        [],
        ServeConfig(port=0),
        base / "cache",
        logging.getLogger("opensem.serve"),
        tenancy=Tenancy(base, accounts),
    )
    server.start()
    server.wait_ready()
    yield People(server, accounts, keys, users, base)
    server.close()


def test_each_key_sees_and_uses_only_its_owners_experts(people: People) -> None:
    ana, bo = people.client("ana"), people.client("bo")
    assert sorted(m.id for m in ana.models.list()) == ["coffee", "tea"]
    assert [m.id for m in bo.models.list()] == ["coffee"]
    # The same name is each person's own expert
    assert ana.models.retrieve("coffee").model_dump()["lot"] == LOTS["ana"]
    assert bo.models.retrieve("coffee").model_dump()["lot"] == LOTS["bo"]
    answer = bo.chat.completions.create(model="coffee", messages=QUESTION, max_tokens=4)
    assert answer.model == "coffee" and answer.choices[0].message.content is not None
    # An admin's key is a person's key too: they have no experts, so they reach none
    assert list(people.client("admin").models.list()) == []


def _error(call: object) -> tuple[int, str]:
    try:
        call()  # type: ignore[operator]
    except openai.APIStatusError as error:
        body = error.response.json()["error"]
        return error.status_code, json.dumps(body, sort_keys=True)
    raise AssertionError("no error")


def test_another_persons_expert_is_as_unknown_as_one_that_does_not_exist(people: People) -> None:
    bo = people.client("bo")
    ana_answer = people.client("ana").chat.completions.create(
        model="tea", messages=QUESTION, max_tokens=4
    )
    tried = {
        "retrieve": lambda model: bo.models.retrieve(model),
        "chat": lambda model: bo.chat.completions.create(
            model=model, messages=QUESTION, max_tokens=4
        ),
        "stream": lambda model: list(
            bo.chat.completions.create(model=model, messages=QUESTION, max_tokens=4, stream=True)
        ),
        "completion": lambda model: bo.completions.create(
            model=model, prompt="Grind size?", max_tokens=4
        ),
        "embeddings": lambda model: bo.embeddings.create(model=model, input="grind"),
    }
    disclosed = []
    for operation, call in tried.items():
        theirs = _error(lambda call=call: call("tea"))
        nobodys = _error(lambda call=call: call("tee"))
        assert theirs[0] == 404, operation
        if theirs != (nobodys[0], nobodys[1].replace("tee", "tea")):
            disclosed.append(operation)
    feedback = {"completion_id": ana_answer.id, "rating": 1}
    theirs = _error(lambda: bo.post("/feedback", body=feedback, cast_to=object))
    nobodys = _error(
        lambda: bo.post(
            "/feedback", body={**feedback, "completion_id": "chatcmpl-x"}, cast_to=object
        )
    )
    assert theirs[0] == 404
    if theirs[1].replace(ana_answer.id, "chatcmpl-x") != nobodys[1]:
        disclosed.append("feedback")
    assert disclosed == []
    # Ana's own feedback on her answer is kept, in her folder
    people.client("ana").post("/feedback", body=feedback, cast_to=object)
    kept = list((home(people.base, people.users["ana"]) / "data" / "tea" / "feedback").rglob("*"))
    assert any(path.is_file() for path in kept)


def test_what_anyone_can_reach_names_no_ones_experts(people: People) -> None:
    url = people.server.url
    health = requests.get(url + "/health").json()
    assert health["models"] == 3 and "coffee" not in json.dumps(health)
    assert requests.get(url + "/metrics").status_code == 401
    ana = {"Authorization": f"Bearer {people.keys['ana']}"}
    assert requests.get(url + "/metrics", headers=ana).status_code == 401
    admin = {"Authorization": f"Bearer {people.keys['admin']}"}
    metrics = requests.get(url + "/metrics", headers=admin)
    assert metrics.status_code == 200 and people.users["bo"].folder + "/coffee" in metrics.text


def test_a_revoked_key_and_a_disabled_person_are_refused(people: People) -> None:
    keys = ApiKeys(people.accounts)
    ana = people.users["ana"]
    spare = keys.make(ana.id, "spare")
    client = openai.OpenAI(base_url=people.server.url + "/v1", api_key=spare, max_retries=0)
    assert len(client.models.list().data) == 2
    assert not keys.revoke(people.users["bo"].id, keys.of(ana.id)[0].number)  # not Bo's to revoke
    assert keys.revoke(ana.id, keys.of(ana.id)[0].number)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    people.accounts.set_disabled(ana.id, True)
    try:
        with pytest.raises(openai.AuthenticationError):
            people.client("ana").models.list()
    finally:
        people.accounts.set_disabled(ana.id, False)
    assert len(people.client("ana").models.list().data) == 2


def test_a_release_outside_every_persons_folder_is_refused(
    people: People, releases: dict[str, Path], tmp_path: Path
) -> None:
    tenancy = Tenancy(people.base, people.accounts)
    with pytest.raises(UsageError, match="belongs to someone"):
        tenancy.owner_of(str(releases["alpha"]))
    stray = home(people.base, people.users["bo"]) / "manifests" / "stray.yaml"
    stray.write_text(
        "job_id: coffee\nbase_model: ./tiny\npublish_target:\n"
        f"  registry: ../{people.users['ana'].folder}/build/registry\n",
        encoding="utf-8",
    )
    try:
        with pytest.raises(UsageError, match="outside its owner's folder"):
            tenancy.owner_of(str(stray))
    finally:
        stray.unlink()
    code, output = run_cli(
        "serve", "--accounts", str(people.base), str(releases["alpha"]), "--port", "0"
    )
    assert code == 2 and "belongs to someone" in output and "Traceback" not in output


def test_watching_serves_what_people_publish_later_and_stops_what_goes(
    people: People, releases: dict[str, Path], tmp_path: Path
) -> None:
    import time

    server = Server(
        [],
        ServeConfig(port=0, watch=True, watch_interval_s=0.2),
        tmp_path / "cache",
        logging.getLogger("opensem.serve"),
        tenancy=Tenancy(people.base, people.accounts),
    )
    server.start()
    try:
        server.wait_ready()
        bo = openai.OpenAI(base_url=server.url + "/v1", api_key=people.keys["bo"], max_retries=0)
        assert [m.id for m in bo.models.list()] == ["coffee"]
        broken = tmp_path / "broken"
        shutil.copytree(releases["beta"], broken)
        for weights in (broken / "adapter").glob("*.safetensors"):
            weights.write_bytes(b"not weights")
        expert(people.base, people.users["bo"], "broken", broken, "d" * 64)  # fails to load
        expert(people.base, people.users["bo"], "mate", releases["beta"], "c" * 64)
        deadline = time.monotonic() + 30
        while len(bo.models.list().data) < 2:
            assert time.monotonic() < deadline, "mate was never served"
            time.sleep(0.2)
        assert sorted(m.id for m in bo.models.list()) == ["coffee", "mate"]  # broken is not
        ana = openai.OpenAI(base_url=server.url + "/v1", api_key=people.keys["ana"], max_retries=0)
        assert "mate" not in [m.id for m in ana.models.list()]

        def bos() -> list[str]:
            folder = people.users["bo"].folder
            return unscoped(folder, server.state.pool.names())

        def until(done: Callable[[], bool]) -> None:
            deadline = time.monotonic() + 30
            while not done():
                assert time.monotonic() < deadline
                time.sleep(0.1)

        (home(people.base, people.users["bo"]) / "manifests" / "mate.yaml").unlink()
        until(lambda: bos() == ["coffee"])  # deleted by its owner: no longer served
        people.accounts.set_disabled(people.users["bo"].id, True)
        try:
            until(lambda: bos() == [])  # a disabled person's experts are unloaded
        finally:
            people.accounts.set_disabled(people.users["bo"].id, False)
        until(lambda: bos() == ["coffee"])  # and served again once enabled
        assert sorted(m.id for m in ana.models.list()) == ["coffee", "tea"]  # hers all along
    finally:
        server.close()
        (home(people.base, people.users["bo"]) / "manifests" / "broken.yaml").unlink()
