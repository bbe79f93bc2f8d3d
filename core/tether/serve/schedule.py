"""When scheduled passes run: so many seconds apart, or at the moments a cron expression
names (croniter reads it; UTC)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from croniter import croniter


@dataclass(frozen=True)
class Schedule:
    """``every`` seconds apart, or on ``cron`` (five fields, in UTC)."""

    every: float | None = None
    cron: str | None = None

    @classmethod
    def of(cls, value: float | str) -> Schedule:
        """A number of seconds, or a cron expression (as ``serve.every`` holds them)."""
        return cls(cron=value) if isinstance(value, str) else cls(every=float(value))

    def wait(self, now: datetime) -> float:
        """Seconds from ``now`` to the next run."""
        if self.cron is None:
            return self.every or 0.0
        return (croniter(self.cron, now).get_next(datetime) - now).total_seconds()

    def period(self, now: datetime) -> float:
        """Seconds between the next two runs after ``now``."""
        if self.cron is None:
            return self.every or 0.0
        runs = croniter(self.cron, now)
        first = runs.get_next(datetime)
        return (runs.get_next(datetime) - first).total_seconds()

    def __str__(self) -> str:
        return f"every {self.every:g} s" if self.cron is None else f"on cron '{self.cron}' (UTC)"
