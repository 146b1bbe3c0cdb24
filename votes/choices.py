"""The one definition of a vote's choice, used by the store, the statistics and the UI."""

from __future__ import annotations

from enum import Enum


class Choice(str, Enum):
    LEFT = "left"
    RIGHT = "right"
    TIE = "tie"
    BOTH_BAD = "both_bad"

    @classmethod
    def parse(cls, value: str) -> "Choice":
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"choice must be one of {', '.join(c.value for c in cls)}, not {value!r}") from None


class RoundStatus(str, Enum):
    SHOWN = "shown"
    VOTED = "voted"
    SKIPPED = "skipped"
    AUTO_SKIPPED = "auto_skipped"  # both methods returned the same list: nothing to judge
