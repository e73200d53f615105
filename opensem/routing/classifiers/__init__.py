"""Classifiers that pick an expert for a query, one file each, registered by name: keyword,
neural, hybrid. Each declares its options (a model with a `type` literal); the router's settings
take one of them (`classifier_union`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from opensem.plugins import Registry

if TYPE_CHECKING:
    from opensem.routing.classifiers.base import Classifier
    from opensem.routing.registry import Expert

CLASSIFIERS: Registry[Any] = Registry(
    "classifier", "opensem.routing.classifiers", ["keyword", "neural", "hybrid"], instantiate=False
)


def classifier_union() -> Any:
    """The classifier settings as a union tagged by `type`."""
    from opensem.settings.fields import tagged_union

    return tagged_union([cls.Options for cls in CLASSIFIERS.all()], "type", "hybrid")


def build_classifier(
    options: Any, experts: list[Expert], cache_dir: Path | None = None
) -> Classifier:
    """The classifier its options name, knowing the experts (and trained on nothing yet)."""
    cls = CLASSIFIERS.get(options.type)
    return cls(options, experts) if options.type == "keyword" else cls(options, experts, cache_dir)
