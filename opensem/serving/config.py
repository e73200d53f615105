"""How `opensem serve` serves: one model of settings; the command's options are derived from it.
The HTTP settings are shared with the router (opensem.routing.config)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from opensem.settings.fields import Section, invalid

MIN_KEY_CHARS = 32


class HttpConfig(Section):
    """What every opensem HTTP service takes (the model server, the router)."""

    host: str = Field("127.0.0.1", description="Address to listen on; 0.0.0.0 for every interface.")
    port: int = Field(8000, ge=0, le=65535, description="Port to listen on (0: any free port).")
    api_key_env: str | None = Field(
        "OPENSEM_API_KEY",
        description=(
            "Environment variable holding the API key clients send (Authorization: Bearer); at "
            f"least {MIN_KEY_CHARS} characters."
        ),
    )
    insecure_no_auth: bool = Field(
        False, description="Serve without an API key (loopback experiments only)."
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins browsers may call from (CORS); none by default."
    )
    rate_limit: int | None = Field(
        None, gt=0, description="Requests per minute per API key; unlimited when unset."
    )
    request_timeout_s: float = Field(
        120.0, gt=0, description="A request not finished in this time gets 504."
    )
    max_request_bytes: int = Field(
        1_048_576,
        ge=1024,
        description="Largest request body accepted (413 beyond); prompts are cut to their end anyway.",
    )

    @model_validator(mode="after")
    def _auth_is_explicit(self) -> HttpConfig:
        if self.api_key_env is None and not self.insecure_no_auth:
            raise invalid(
                "no API key variable: set api_key_env, or insecure_no_auth for loopback experiments"
            )
        return self


class ServeConfig(HttpConfig):
    backend: Literal["auto", "transformers", "vllm"] = Field(
        "auto", description="auto: vLLM when CUDA and vllm are present, else transformers."
    )
    max_batch_size: int = Field(
        16,
        gt=0,
        le=1024,
        description="Requests generated together in one batch (transformers backend).",
    )
    batch_wait_ms: float = Field(
        5.0, ge=0, le=1000, description="How long a batch waits for more requests once one arrived."
    )
    max_queue: int = Field(
        256,
        gt=0,
        description="Requests waiting per model beyond which new ones get 503 (overloaded).",
    )
    default_max_tokens: int = Field(
        256, gt=0, description="Tokens generated when a request does not say."
    )
    max_tokens_limit: int = Field(2048, gt=0, description="Most tokens one request may ask for.")
    max_prompt_tokens: int = Field(
        2048, gt=0, description="Longer prompts keep their end (the question)."
    )
    log_prompts: bool = Field(
        False, description="Also write prompts and answers into the request log."
    )
    record_answers: bool = Field(
        False,
        description=(
            "Save every answer given with sources to data/<job_id>/answers/ (a release served "
            "from its manifest), as `opensem ask` does."
        ),
    )
    watch: bool = Field(
        False,
        description="Poll the releases' registries and swap in newly published tags without a restart.",
    )
    watch_interval_s: float = Field(
        10.0, gt=0, description="Seconds between two looks at the registries when watching."
    )
