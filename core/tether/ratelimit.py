"""A tracker's request budget and what enforces it: every process using one token draws on
one shared budget (see tether.work.limits for the Redis one), so N workers together stay
within the tracker's limit, and a 429 anywhere holds all of them back."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

_UNITS = {"second": 1.0, "minute": 60.0, "hour": 3600.0}
_BUDGET = re.compile(r"\s*(\d+)\s*/\s*(?:(second|minute|hour)|(\d+(?:\.\d+)?)\s*s)\s*",
                     re.IGNORECASE)


class Limiter(Protocol):
    """A budget shared by everyone sending with one token."""

    def wait(self) -> float:
        """Take one request's token: 0.0 when granted now, else the seconds to wait before
        asking again (nothing is taken then). Never sleeps itself."""
        ...

    def pause(self, seconds: float) -> None:
        """The tracker said to wait (Retry-After, a rate-limit reset): nobody sharing this
        budget is granted a request for ``seconds`` from now."""
        ...


@dataclass(frozen=True)
class Budget:
    """At most ``requests`` in a burst, refilled at ``requests`` per ``per_seconds``."""

    requests: int
    per_seconds: float

    def __post_init__(self) -> None:
        if self.requests < 1 or not self.per_seconds > 0:
            raise ValueError(f"a budget needs at least one request per a positive time, not "
                             f"{self.requests} per {self.per_seconds} s")

    @property
    def rate(self) -> float:
        """Requests a second, in the long run."""
        return self.requests / self.per_seconds

    @classmethod
    def parse(cls, text: str) -> Budget:
        """``"5000/hour"``, ``"1500/minute"``, ``"10/second"`` or ``"20/2s"``; ValueError
        saying what is accepted otherwise."""
        found = _BUDGET.fullmatch(text)
        if found is None:
            raise ValueError(f"{text!r} is not a rate-limit budget: write N/second, N/minute, "
                             "N/hour or N/<seconds>s (e.g. 5000/hour, 20/2s)")
        count, unit, seconds = found.groups()
        return cls(int(count), _UNITS[unit.lower()] if unit else float(seconds))

    def __str__(self) -> str:
        return f"{self.requests}/{self.per_seconds:g}s"
