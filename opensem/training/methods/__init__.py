"""The registry of training methods: one module per method, each registering itself by name.

Method modules import nothing heavy at module level, so loading them all to list names (or to
build the `method_config` union of their options) is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

from opensem.plugins import Registry
from opensem.settings.fields import tagged_union
from opensem.training.methods.base import Method
from opensem.training.methods.options import DEFAULT_METHOD

METHODS: Registry[Method] = Registry(
    "training method",
    "opensem.training.methods",
    ("lora", "sft", "dora", "qlora", "preference", "distill"),
)
register_method = METHODS.register


def method_names() -> list[str]:
    """Names of all registered methods, in registry order."""
    return METHODS.names()


def get_method(name: str) -> Method:
    """The method registered under name; UsageError listing the known ones otherwise."""
    return METHODS.get(name)


def method_config_union() -> Any:
    """`method_config`: one method's own options, chosen by `type` (lora when left out)."""
    return tagged_union([method.Options for method in METHODS.all()], "type", DEFAULT_METHOD)


def default_method_options() -> Any:
    """The default method's options."""
    return get_method(DEFAULT_METHOD).Options()  # type: ignore[call-arg]  # each method defaults its type


if TYPE_CHECKING:  # a tagged union built at import
    MethodConfig: TypeAlias = Any
else:
    MethodConfig = method_config_union()
