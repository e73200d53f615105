"""Fine-tuning through a provider, against the OpenAI-compatible test server on 127.0.0.1 driven by
the real openai client: upload, job, polling, failure, resume, budget; then a whole build whose
evaluation calls the tuned model through the provider layer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from opensem.errors import StageError
from opensem.training.provider import (
    JOB_FILE,
    PROVIDER_MODEL,
    ProviderTuning,
    chat_rows,
    estimate,
    fine_tune,
)
from tests.e2e.conftest import REPO, Project
from tests.servers.openai_compatible import OpenAICompatibleServer

CHATS = [
    {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": f"q{i}"},
            {"role": "assistant", "content": f"a{i}"},
        ]
    }
    for i in range(5)
]


@pytest.fixture
def config(
    openai_server: OpenAICompatibleServer, monkeypatch: pytest.MonkeyPatch
) -> ProviderTuning:
    monkeypatch.setenv("TUNE_KEY", "sk-test")
    return ProviderTuning(
        base_url=openai_server.url,
        api_key_env="TUNE_KEY",
        n_epochs=2,
        suffix="espresso",
        poll_interval_s=0.01,
    )


def test_upload_job_poll_and_the_model_id(
    openai_server: OpenAICompatibleServer, config: ProviderTuning, tmp_path: Path
) -> None:
    said: list[str] = []
    model = fine_tune(
        chat_rows(CHATS, "lora"),
        "gpt-4o-mini-2024-07-18",
        "lora",
        7,
        config,
        tmp_path / "work",
        tmp_path / "out",
        said.append,
        "lot-1",
    )
    service = openai_server.fine_tuning
    assert (
        model["model"] == "ft:gpt-4o-mini-2024-07-18:opensem:espresso:ftjob-1"
        and model["trained_tokens"] > 0
    )
    assert json.loads((tmp_path / "out" / PROVIDER_MODEL).read_text())["job_id"] == "ftjob-1"
    body = service.created[0]
    assert (
        body["model"] == "gpt-4o-mini-2024-07-18"
        and body["seed"] == 7
        and body["suffix"] == "espresso"
    )
    assert body["method"] == {
        "type": "supervised",
        "supervised": {"hyperparameters": {"n_epochs": 2}},
    }
    uploaded = [json.loads(line) for line in service.files["file-1"].decode().splitlines()]
    assert uploaded == CHATS  # chat format, system message (the persona) included
    assert any("running" in line for line in said) and any("succeeded" in line for line in said)
    assert (
        openai_server.authorization == []
        and "sk-test" not in (tmp_path / "work" / JOB_FILE).read_text()
    )


def test_an_interrupted_build_resumes_its_job_instead_of_starting_another(
    openai_server: OpenAICompatibleServer, config: ProviderTuning, tmp_path: Path
) -> None:
    service = openai_server.fine_tuning
    service.polls_to_finish = 1000
    quick = config.model_copy(update={"poll_interval_s": 0.01})
    with pytest.raises(KeyboardInterrupt):
        fine_tune(
            chat_rows(CHATS, "lora"),
            "gpt-4o-mini",
            "lora",
            1,
            quick,
            tmp_path / "work",
            tmp_path / "out",
            lambda line: _interrupt_when("running", line),
            "lot-1",
        )
    assert len(service.created) == 1 and (tmp_path / "work" / JOB_FILE).is_file()
    service.polls_to_finish = 0
    service.retrieve_errors = (
        4  # unreachable beyond the client's own 2 retries: polling backs off and goes on
    )
    said: list[str] = []
    model = fine_tune(
        chat_rows(CHATS, "lora"),
        "gpt-4o-mini",
        "lora",
        1,
        quick,
        tmp_path / "work",
        tmp_path / "out",
        said.append,
        "lot-1",
    )
    assert (
        len(service.created) == 1 and len(service.files) == 1 and model["job_id"] == "ftjob-1"
    )  # no second job, no second upload
    assert said[0] == "resuming job ftjob-1 (started by an earlier build of this lot)" and any(
        "cannot reach the provider" in s for s in said
    )


def _interrupt_when(status: str, line: str) -> None:
    if status in line:
        raise KeyboardInterrupt


def test_a_failed_job_says_why_and_the_next_build_starts_a_new_one(
    openai_server: OpenAICompatibleServer, config: ProviderTuning, tmp_path: Path
) -> None:
    openai_server.fine_tuning.fail_with = "line 3: missing assistant message"
    with pytest.raises(
        StageError, match="ftjob-1 failed: line 3: missing assistant message"
    ) as failed:
        fine_tune(
            chat_rows(CHATS, "lora"),
            "gpt-4o-mini",
            "lora",
            1,
            config,
            tmp_path / "work",
            tmp_path / "out",
            lambda line: None,
            "lot-1",
        )
    assert (
        "a new job is started" in failed.value.hint and not (tmp_path / "work" / JOB_FILE).exists()
    )
    assert (
        fine_tune(
            chat_rows(CHATS, "lora"),
            "gpt-4o-mini",
            "lora",
            1,
            config,
            tmp_path / "work",
            tmp_path / "out",
            lambda line: None,
            "lot-1",
        )["job_id"]
        == "ftjob-2"
    )


def test_budget_key_and_data_are_checked_before_anything_is_uploaded(
    openai_server: OpenAICompatibleServer,
    config: ProviderTuning,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = chat_rows(CHATS * 200, "lora")
    tokens, dollars = estimate(rows, config)
    with pytest.raises(StageError, match=r"estimated cost \$.* is above max_cost_usd \$0\.01"):
        fine_tune(
            rows,
            "gpt-4o-mini",
            "lora",
            1,
            config.model_copy(update={"max_cost_usd": 0.01}),
            tmp_path / "work",
            tmp_path / "out",
            lambda line: None,
            "lot-1",
        )
    assert (
        tokens > 0
        and dollars == pytest.approx(tokens * 2 * 3.0 / 1e6)
        and openai_server.fine_tuning.files == {}
    )
    with pytest.raises(StageError, match="trains on chats; 1 records are documents"):
        chat_rows([*CHATS, {"text": "a document"}], "lora")
    assert (
        chat_rows(
            [{"prompt": "q", "chosen": "good", "rejected": "bad", "system": "Be brief."}], "dpo"
        )[0]["input"]["messages"][0]["role"]
        == "system"
    )
    monkeypatch.delenv("TUNE_KEY")
    with pytest.raises(StageError, match=r"\$TUNE_KEY is empty"):
        fine_tune(
            rows[:5],
            "gpt-4o-mini",
            "lora",
            1,
            config,
            tmp_path / "work",
            tmp_path / "out",
            lambda line: None,
            "lot-1",
        )


MANIFEST = """\
job_id: espresso-api
base_model: gpt-4o-mini-2024-07-18
persona: {system: Answer like a patient barista.}
data:
  sources:
    - path: data/tiny-demo/instructions.jsonl
      format: alpaca
evaluation:
  golden: data/tiny-demo/golden
  max_new_tokens: 16
compute:
  backend: openai
  provider: {base_url: URL, api_key_env: TUNE_KEY, poll_interval_s: 0.01, suffix: espresso}
publish_target:
  registry: build/registry
  tag: "v-{lot}"
"""


def test_a_build_trains_and_evaluates_through_the_provider_once(
    openai_server: OpenAICompatibleServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TUNE_KEY", "sk-test")
    openai_server.answer = lambda body: (
        "Grind finer for espresso." if body["model"].startswith("ft:") else "I do not know."
    )
    (tmp_path / "manifests").mkdir()
    shutil.copytree(REPO / "data" / "tiny-demo", tmp_path / "data" / "tiny-demo")
    (tmp_path / "manifests" / "espresso-api.yaml").write_text(
        MANIFEST.replace("URL", openai_server.url)
    )
    project = Project(tmp_path, "espresso-api")
    ran, output = project.build()
    assert ran == ["ingest", "split", "train", "baseline", "evaluate", "gate", "publish"] or {
        "train",
        "baseline",
        "evaluate",
        "publish",
    } <= set(ran), output
    assert (
        "through " + openai_server.url in output
        and "ft:gpt-4o-mini-2024-07-18:opensem:espresso:ftjob-1" in output
    )
    tuned_models = {body["model"] for body in openai_server.answered}
    assert tuned_models == {
        "gpt-4o-mini-2024-07-18",
        "ft:gpt-4o-mini-2024-07-18:opensem:espresso:ftjob-1",
    }  # the base and the tuned model answered
    assert all(
        body["messages"][0] == {"role": "system", "content": "Answer like a patient barista."}
        for body in openai_server.answered
    )
    release = tmp_path / project.lock_data()["published"]["uri"]
    assert (
        json.loads((release / PROVIDER_MODEL).read_text())["model"].startswith("ft:")
        and (release / "report.json").is_file()
    )
    created = len(openai_server.fine_tuning.created)
    assert (
        project.build()[0] == [] and len(openai_server.fine_tuning.created) == created == 1
    )  # a rebuild never starts a second job
    project.set_section(
        "compute",
        "compute:\n  backend: openai\n  provider: {base_url: "
        + openai_server.url
        + ", api_key_env: TUNE_KEY, poll_interval_s: 0.01}\n"
        "fold: {}\n",
    )
    code, output = project.run("validate", str(project.manifest))
    assert code == 2 and "fold needs the weights" in output


def test_validate_refuses_gates_a_provider_backend_cannot_measure(tmp_path: Path) -> None:
    (tmp_path / "manifests").mkdir()
    shutil.copytree(REPO / "data" / "tiny-demo", tmp_path / "data" / "tiny-demo")
    gates = (
        "  gates:\n    - {metric: test.perplexity, max: 50}\n    - {metric: golden.loss, max: 3}\n "
        "   - {metric: golden.token_f1, min: 0.1}\n"
    )
    manifest = MANIFEST.replace("URL", "http://127.0.0.1:9").replace(
        "  max_new_tokens: 16\n", "  max_new_tokens: 16\n" + gates
    )
    (tmp_path / "manifests" / "espresso-api.yaml").write_text(manifest)
    code, output = Project(tmp_path, "espresso-api").run(
        "validate", str(tmp_path / "manifests" / "espresso-api.yaml")
    )
    assert code == 2, output
    assert (
        "evaluation.gates[0].metric" in output
        and "test.perplexity cannot be measured" in output
        and "golden.loss cannot be measured" in output
    )
    assert "gates[2]" not in output and "train locally" in output


def test_costs_below_a_cent_keep_their_digits() -> None:
    from opensem.training.provider import usd

    assert [usd(d) for d in (0, 0.0042, 0.000051, 0.01, 12.345)] == [
        "$0.00",
        "$0.0042",
        "$0.000051",
        "$0.01",
        "$12.35",
    ]


@pytest.mark.parametrize("lost", ["500", "drop"])
def test_a_lost_reply_to_create_never_makes_a_second_job(
    openai_server: OpenAICompatibleServer, config: ProviderTuning, tmp_path: Path, lost: str
) -> None:
    service = openai_server.fine_tuning
    service.lose_create = [lost]  # the provider makes the job, and the answer never arrives
    said: list[str] = []
    model = fine_tune(
        chat_rows(CHATS, "lora"),
        "gpt-4o-mini",
        "lora",
        1,
        config,
        tmp_path / "work",
        tmp_path / "out",
        said.append,
        "lot-7",
    )
    assert (
        len(service.created) == 1
        and model["job_id"] == "ftjob-1"
        and service.created[0]["metadata"] == {"opensem_lot": "lot-7"}
    )
    assert (
        any("asking the provider whether it made one" in line for line in said)
        and "the provider did make job ftjob-1; using it" in said
    )


def test_a_build_that_died_before_recording_its_job_finds_it(
    openai_server: OpenAICompatibleServer, config: ProviderTuning, tmp_path: Path
) -> None:
    service = openai_server.fine_tuning
    fine_tune(
        chat_rows(CHATS, "lora"),
        "gpt-4o-mini",
        "lora",
        1,
        config,
        tmp_path / "work",
        tmp_path / "out",
        lambda line: None,
        "lot-8",
    )
    (tmp_path / "work" / JOB_FILE).write_text(
        json.dumps({"file_id": "file-1", "lot": "lot-8"})
    )  # the intent only: killed before the id was written
    said: list[str] = []
    assert (
        fine_tune(
            chat_rows(CHATS, "lora"),
            "gpt-4o-mini",
            "lora",
            1,
            config,
            tmp_path / "work",
            tmp_path / "out2",
            said.append,
            "lot-8",
        )["job_id"]
        == "ftjob-1"
    )
    assert len(service.created) == 1 and said[0].startswith(
        "resuming job ftjob-1: the provider has a job of this lot"
    )
    fine_tune(
        chat_rows(CHATS, "lora"),
        "gpt-4o-mini",
        "lora",
        1,
        config,
        tmp_path / "other",
        tmp_path / "out3",
        lambda line: None,
        "lot-9",
    )
    assert len(service.created) == 2  # another lot is another job
