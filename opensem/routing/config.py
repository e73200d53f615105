"""The router's settings: how it classifies and forwards (in the registry file, `router:`), and how
`opensem route serve` listens (its command-line options, derived from RouteServeConfig)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

from pydantic import Field

from opensem.routing.classifiers import classifier_union
from opensem.serving.config import HttpConfig
from opensem.settings.fields import Section


def _default_classifier() -> Any:
    from opensem.routing.classifiers.hybrid import HybridOptions

    return HybridOptions()


if TYPE_CHECKING:  # a tagged union built at import
    ClassifierConfig: TypeAlias = Any
else:
    ClassifierConfig = classifier_union()


class RouterSettings(Section):
    classifier: ClassifierConfig = Field(
        default_factory=_default_classifier,
        description="keyword, neural or hybrid (the default), with its options.",
    )
    fallback: str | None = Field(
        None,
        description="Expert that answers when no expert is confident enough; without one such a request gets 404.",
    )
    train_on_golden: bool = Field(
        True,
        description="Fit the neural head on every expert's golden questions when the router starts.",
    )
    failures_to_open: int = Field(
        3,
        gt=0,
        description="Consecutive failures after which an endpoint's circuit opens (no traffic).",
    )
    open_for_s: float = Field(
        30.0,
        gt=0,
        description="Seconds an open circuit waits before one probe request may try the endpoint again.",
    )
    expert_api_key_env: str | None = Field(
        "OPENSEM_API_KEY",
        description="Environment variable with the key the router sends to expert endpoints.",
    )


class RouteServeConfig(HttpConfig):
    port: int = Field(8100, ge=0, le=65535, description="Port to listen on (0: any free port).")
    request_timeout_s: float = Field(
        120.0,
        gt=0,
        description=(
            "Seconds the router waits for an expert endpoint (each attempt at a replica): past it "
            "that endpoint counts a failure toward its circuit and the next replica is tried; with "
            "none left the client gets 503."
        ),
    )
