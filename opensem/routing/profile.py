"""What a manifest says about routing to its expert: the `expert:` section.

`opensem expert add` copies it into the expert registry; it is never part of a lot (editing the
keywords retrains nothing).
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from opensem.settings.fields import Section, invalid


class Keyword(Section):
    pattern: str = Field(
        min_length=1,
        description="A word or phrase (matched on word boundaries), or a regular expression when regex is true.",
    )
    weight: float = Field(1.0, gt=0, description="How much one match counts toward this expert.")
    regex: bool = Field(False, description="Treat pattern as a Python regular expression.")
    case_sensitive: bool = Field(
        False, description="Match case exactly (case-insensitive by default)."
    )

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise invalid(f"not a regular expression: {exc}") from None
        return pattern

    def compiled(self) -> re.Pattern[str]:
        """The keyword as a regex: whole words, unless it is a regex itself."""
        text = self.pattern if self.regex else r"(?<!\w)" + re.escape(self.pattern) + r"(?!\w)"
        return re.compile(text, 0 if self.case_sensitive else re.IGNORECASE)


class ExpertProfile(Section):
    """Who should be asked what: read by the router's classifiers."""

    domains: list[str] = Field(
        default_factory=list,
        description="Domains this expert covers (shown in /experts; also part of its neural description).",
    )
    keywords: list[Keyword | str] = Field(
        default_factory=list,
        description="Words or patterns that point to this expert; a plain string is a keyword of weight 1.",
    )
    examples: list[str] = Field(
        default_factory=list,
        description="Example queries this expert should get (the neural classifier's references).",
    )

    def keyword_rules(self) -> list[Keyword]:
        """Every keyword as a rule (a plain string is a phrase)."""
        return [Keyword(pattern=k) if isinstance(k, str) else k for k in self.keywords]
