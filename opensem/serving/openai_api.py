"""The OpenAI API as clients use it: request bodies, and errors in OpenAI's shape.

Requests are validated with pydantic; a bad one is answered 400 with the failing field as `param`.
Options this server cannot honour (several choices, log-probabilities, penalties, tools) are
refused with 400 rather than silently ignored; unknown fields a client library adds are ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

# status -> OpenAI's error type
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "server_overloaded",
    504: "timeout",
}
SEEDS = (-(2**63), 2**64 - 1)  # what torch's generators take


def _encodable(text: str) -> str:
    """Text a tokenizer can take: a lone surrogate (JSON's \\ud800) is valid JSON but no UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"not valid Unicode text: a lone surrogate at character {exc.start}"
        ) from None
    return text


Text = Annotated[str, AfterValidator(_encodable)]


class ApiError(Exception):
    """An error the API answers with its status and an OpenAI-shaped body."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.headers = (
            status,
            message,
            param,
            code,
            headers or {},
        )

    def body(self) -> dict[str, Any]:
        """The error as OpenAI's JSON body."""
        return {
            "error": {
                "message": self.message,
                "type": ERROR_TYPES.get(self.status, "server_error"),
                "param": self.param,
                "code": self.code,
            }
        }


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant"]
    content: Text


class StreamOptions(BaseModel):
    include_usage: bool = False


class Settings(BaseModel):
    """What chat completions and completions share."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    max_tokens: int | None = Field(None, gt=0)
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    stop: Text | list[Text] | None = None
    seed: int | None = Field(None, ge=SEEDS[0], le=SEEDS[1])
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1)
    logprobs: bool | int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    tools: list[Any] | None = None
    user: str | None = None

    @model_validator(mode="after")
    def _supported(self) -> Settings:
        unsupported = [
            name
            for name, value, default in (
                ("n", self.n, 1),
                ("presence_penalty", self.presence_penalty, 0.0),
                ("frequency_penalty", self.frequency_penalty, 0.0),
            )
            if value != default
        ] + [name for name in ("logprobs", "tools") if getattr(self, name)]
        if unsupported:
            raise ValueError(f"not supported by this server: {', '.join(unsupported)}")
        if isinstance(self.stop, list) and len(self.stop) > 4:
            raise ValueError("stop takes at most 4 sequences")
        return self

    def stops(self) -> tuple[str, ...]:
        """The stop sequences as a tuple."""
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())

    def usage_in_stream(self) -> bool:
        """Whether a stream ends with a usage chunk."""
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatRequest(Settings):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _ends_with_a_question(self) -> ChatRequest:
        if self.messages[-1].role == "assistant":
            raise ValueError(
                "the last message must be from the user (or system), not the assistant"
            )
        return self

    def asked_tokens(self) -> int | None:
        """The tokens the request asks for (max_completion_tokens wins), or None."""
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(Settings):
    prompt: Text | list[Text]

    @model_validator(mode="after")
    def _one_prompt(self) -> CompletionRequest:
        if isinstance(self.prompt, list) and len(self.prompt) != 1:
            raise ValueError("prompt: one prompt per request (a list of exactly one string)")
        return self

    def text(self) -> str:
        """The prompt (the first, when a list of one is sent)."""
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]

    def asked_tokens(self) -> int | None:
        """The tokens the request asks for, or None."""
        return self.max_tokens


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    """OpenAI's usage object."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


class EmbeddingRequest(BaseModel):
    """OpenAI's embeddings request: one text or a list of them."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    input: Text | list[Text] = Field(description="The text(s) to embed.")
    encoding_format: Literal["float", "base64"] = "float"

    def texts(self) -> list[str]:
        """The input as a list."""
        return [self.input] if isinstance(self.input, str) else list(self.input)
