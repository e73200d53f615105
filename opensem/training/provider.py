"""Fine-tuning through a provider (compute.backend: openai): the OpenAI fine-tuning API, or any
server that speaks it.

The train split goes up as chat JSONL (the persona as each example's system message), a job is
created on the manifest's base model with the hyperparameters set here, and the stage polls it
with backoff, saying each status change. The job's id is written to the lot's work dir before
the first poll, so a build killed while it waits picks the same job up again: a rebuild never
starts or pays for a second job of one lot. The job carries its lot in its metadata, and the
create call is never retried blindly: when its reply is lost, or a build died between the call
and the record, the provider's job of this lot is found and resumed instead of paying for two.
A failed job is reported with the provider's reason and forgotten, so the next build starts a
new one. The cost is estimated from the token count (about 4 characters a token) before anything
is uploaded and checked against max_cost_usd. The key comes only from the environment variable
api_key_env. The artifact is provider_model.json: the fine-tuned model's id, which evaluation
then calls through the same provider layer.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import Field

from opensem.core.files import write_json
from opensem.errors import Location, StageError
from opensem.settings.fields import Section, run_setting

PROVIDER_MODEL = "provider_model.json"
JOB_FILE = "provider_job.json"
LOT_KEY = "opensem_lot"  # the job's metadata key naming the lot it trains, so a lost reply can be found again
CREATE_ATTEMPTS = 3
CHARS_PER_TOKEN = 4
DONE, FAILED = {"succeeded"}, {"failed", "cancelled"}


class ProviderTuning(Section):
    """compute.provider: where and how a provider fine-tunes (compute.backend: openai)."""

    base_url: str = Field(
        "https://api.openai.com/v1", description="The fine-tuning API's base URL."
    )
    api_key_env: str = run_setting(
        "OPENAI_API_KEY",
        description="Environment variable holding the API key (never written anywhere).",
    )
    n_epochs: int | None = Field(
        None, gt=0, le=50, description="Passes over the data; the provider chooses when unset."
    )
    learning_rate_multiplier: float | None = Field(
        None,
        gt=0,
        description="Scales the provider's learning rate; the provider chooses when unset.",
    )
    batch_size: int | None = Field(
        None, gt=0, description="Examples per step; the provider chooses when unset."
    )
    suffix: str | None = Field(
        None, min_length=1, max_length=18, description="Added to the fine-tuned model's name."
    )
    max_cost_usd: float | None = run_setting(
        None, gt=0, description="Refuse to start a job whose estimated cost is above this."
    )
    usd_per_million_tokens: float = run_setting(
        3.0, gt=0, description="Training price per million tokens, for the estimate."
    )
    poll_interval_s: float = run_setting(
        10.0,
        gt=0,
        description="Seconds between two looks at a running job (doubled after an error, up to 10x).",
    )


def client_for(config: ProviderTuning, timeout_s: float = 60.0) -> Any:
    """An OpenAI client for the provider's endpoint and key."""
    import openai

    key = os.environ.get(config.api_key_env)
    if not key:
        raise StageError(
            f"the provider's API key is not set: ${config.api_key_env} is empty",
            Location(key="compute.provider.api_key_env"),
            f"export {config.api_key_env}=... (keys are read from the environment only)",
        )
    return openai.OpenAI(base_url=config.base_url, api_key=key, max_retries=2, timeout=timeout_s)


def chat_rows(records: list[dict[str, Any]], method: str) -> list[dict[str, Any]]:
    """The training file's rows: {"messages"} for supervised jobs; preference rows for dpo."""
    if method == "dpo":
        return [
            {
                "input": {
                    "messages": [
                        *([{"role": "system", "content": r["system"]}] if r.get("system") else []),
                        {"role": "user", "content": r["prompt"]},
                    ]
                },
                "preferred_output": [{"role": "assistant", "content": r["chosen"]}],
                "non_preferred_output": [{"role": "assistant", "content": r["rejected"]}],
            }
            for r in records
        ]
    chats = [r for r in records if "messages" in r]
    if len(chats) != len(records):
        raise StageError(
            f"provider fine-tuning trains on chats; {len(records) - len(chats)} records are documents",
            hint="turn documents into questions and answers first (synthesis: {mode: instructions})",
        )
    return [{"messages": r["messages"]} for r in chats]


def estimate(rows: list[dict[str, Any]], config: ProviderTuning) -> tuple[int, float]:
    """(tokens per epoch, estimated dollars) from characters; epochs default to 3 as providers' auto often picks."""
    tokens = sum(len(json.dumps(row, ensure_ascii=False)) for row in rows) // CHARS_PER_TOKEN + len(
        rows
    )
    return tokens, tokens * (config.n_epochs or 3) * config.usd_per_million_tokens / 1e6


def usd(dollars: float) -> str:
    """Dollars for a person: cents as usual, two significant digits below a cent (never a misleading $0.00)."""
    if dollars == 0 or dollars >= 0.01:
        return f"${dollars:.2f}"
    return f"${dollars:.{1 - math.floor(math.log10(dollars))}f}"


def fine_tune(
    rows: list[dict[str, Any]],
    base_model: str,
    method: str,
    seed: int,
    config: ProviderTuning,
    work_dir: Path,
    out_dir: Path,
    say: Callable[[str], None],
    lot: str,
) -> dict[str, Any]:
    """Run (or resume) the job of this lot and write provider_model.json; returns what it recorded."""
    job_file = work_dir / JOB_FILE
    client = client_for(config)
    recorded = json.loads(job_file.read_text()) if job_file.is_file() else {}
    if recorded.get("job_id"):
        job_id = recorded["job_id"]
        say(f"resuming job {job_id} (started by an earlier build of this lot)")
    elif (
        found := _job_of_lot(client, lot)
    ) is not None:  # created by an earlier build whose reply (or record) was lost
        job_id = found
        write_json(
            job_file, {**recorded, "job_id": job_id, "lot": lot, "base_url": config.base_url}
        )
        say(f"resuming job {job_id}: the provider has a job of this lot from an earlier build")
    else:
        tokens, dollars = estimate(rows, config)
        if config.max_cost_usd is not None and dollars > config.max_cost_usd:
            raise StageError(
                f"estimated cost {usd(dollars)} ({tokens:,} tokens x {config.n_epochs or 3} epochs) is above "
                f"max_cost_usd {usd(config.max_cost_usd)}",
                Location(key="compute.provider.max_cost_usd"),
                "raise the budget, lower n_epochs, or train on fewer records; nothing was uploaded",
            )
        say(
            f"{'reusing the upload of' if recorded.get('file_id') else 'uploading'} {len(rows)} examples "
            f"(~{tokens:,} tokens, estimated {usd(dollars)})"
        )
        file_id = recorded.get("file_id") or _upload(client, rows, work_dir)
        write_json(
            job_file, {"file_id": file_id, "lot": lot, "base_url": config.base_url}
        )  # the intent, before the create call
        hyper = {
            k: v
            for k, v in (
                ("n_epochs", config.n_epochs),
                ("learning_rate_multiplier", config.learning_rate_multiplier),
                ("batch_size", config.batch_size),
            )
            if v is not None
        }
        kind = "dpo" if method == "dpo" else "supervised"
        job_id = _create(
            client,
            lot,
            say,
            config.poll_interval_s,
            model=base_model,
            training_file=file_id,
            suffix=config.suffix,
            seed=seed,
            method={"type": kind, kind: {"hyperparameters": hyper}},
        )
        write_json(
            job_file,
            {"job_id": job_id, "file_id": file_id, "lot": lot, "base_url": config.base_url},
        )  # before the first poll: a kill resumes it
        say(f"job {job_id} created on {base_model}")
    job = _wait(client, job_id, config, say, job_file)
    model = {
        "provider": "openai",
        "base_url": config.base_url,
        "model": job.fine_tuned_model,
        "job_id": job_id,
        "base_model": base_model,
        "trained_tokens": getattr(job, "trained_tokens", None),
    }
    write_json(out_dir / PROVIDER_MODEL, model)
    return model


def _upload(client: Any, rows: list[dict[str, Any]], work_dir: Path) -> str:
    upload = work_dir / "train.jsonl"
    upload.parent.mkdir(parents=True, exist_ok=True)
    upload.write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8"
    )
    with upload.open("rb") as handle:
        return str(_call(lambda: client.files.create(file=handle, purpose="fine-tune")).id)


def _create(client: Any, lot: str, say: Callable[[str], None], pause_s: float, **job: Any) -> str:
    """Create the lot's job exactly once. The create call is never retried blindly: when its reply is
    lost (no answer, a 5xx after the provider may have made the job), the provider is asked for a
    job of this lot (its metadata) before another create is sent."""
    import openai

    once = client.with_options(max_retries=0)
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        try:
            return str(
                _call(
                    lambda: once.fine_tuning.jobs.create(**job, metadata={LOT_KEY: lot}),
                    reraise_lost=True,
                ).id
            )
        except (openai.APIConnectionError, openai.InternalServerError) as exc:
            say(
                f"creating the job: no usable reply ({type(exc).__name__}); asking the provider whether it made one "
                f"(attempt {attempt} of {CREATE_ATTEMPTS})"
            )
        time.sleep(pause_s)
        found = _job_of_lot(client, lot)
        if found is not None:
            say(f"the provider did make job {found}; using it")
            return found
    raise StageError(
        f"the provider gave no usable reply to {CREATE_ATTEMPTS} attempts to create the fine-tuning job, and holds "
        "no job of this lot",
        Location(key="compute.provider.base_url"),
        "check the provider's status page and build again; no job of this lot was left running",
    )


def _job_of_lot(client: Any, lot: str) -> str | None:
    """The id of a live (not failed or cancelled) job the provider holds for this lot, if any."""
    jobs = _call(lambda: client.fine_tuning.jobs.list(metadata={LOT_KEY: lot}, limit=100))
    for job in jobs:  # pages through them; a provider that ignores the filter is checked here
        if (getattr(job, "metadata", None) or {}).get(LOT_KEY) == lot and job.status not in FAILED:
            return str(job.id)
    return None


def _wait(
    client: Any, job_id: str, config: ProviderTuning, say: Callable[[str], None], job_file: Path
) -> Any:
    import openai

    status, delay = None, config.poll_interval_s
    while True:
        try:
            job = client.fine_tuning.jobs.retrieve(job_id)
            delay = config.poll_interval_s
        except (
            openai.APIConnectionError,
            openai.APITimeoutError,
            openai.InternalServerError,
            openai.RateLimitError,
        ) as exc:
            say(
                f"job {job_id}: cannot reach the provider ({type(exc).__name__}); trying again in {delay:.0f} s"
            )
            time.sleep(delay)
            delay = min(delay * 2, config.poll_interval_s * 10)
            continue
        if job.status != status:
            status = job.status
            say(f"job {job_id}: {status}")
        if status in DONE:
            return job
        if status in FAILED:
            job_file.unlink(missing_ok=True)  # the next build starts a new job
            reason = getattr(getattr(job, "error", None), "message", None) or "no reason given"
            raise StageError(
                f"the provider's fine-tuning job {job_id} {status}: {reason}",
                Location(key="compute.backend"),
                "fix what the provider names (data format, model name, quota) and build again; a new job is started",
            )
        time.sleep(delay)


def _call(action: Callable[[], Any], reraise_lost: bool = False) -> Any:
    """A provider call whose refusal becomes a StageError with the provider's message; with
    reraise_lost, a reply that may have been lost (no answer, a 5xx) is raised as it is."""
    import openai

    try:
        return action()
    except openai.APIConnectionError as exc:  # timeouts included
        if reraise_lost:
            raise
        raise StageError(
            f"cannot reach the provider: {type(exc).__name__}: {exc}",
            Location(key="compute.provider.base_url"),
            "check base_url and the network",
        ) from None
    except openai.APIStatusError as exc:
        if reraise_lost and exc.status_code >= 500:
            raise
        raise StageError(
            f"the provider refused: HTTP {exc.status_code}: {exc.message}",
            Location(key="compute.provider"),
            "check the base model name, the key's permissions and the data",
        ) from None
