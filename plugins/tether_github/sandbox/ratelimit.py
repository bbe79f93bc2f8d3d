"""The sandbox's rate limits: GitHub's hourly primary limit and its content-creation limit.

Primary: each caller has ``limit`` requests per window; the window opens on its first
counted request and resets an hour later (``x-ratelimit-reset``, epoch seconds). A 304
answer to a conditional request is refunded, as GitHub does not count it. Secondary: at
most ``writes_per_minute`` writes in any 60 seconds, else 403 with ``retry-after``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tether.sdk import Clock

WINDOW = timedelta(hours=1)
DOCS = "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"


@dataclass
class Bucket:
    """One caller's use of the current window and its recent writes."""

    limit: int
    used: int = 0
    opened: datetime | None = None
    writes: list[datetime] = field(default_factory=list)

    def reset_at(self, now: datetime) -> datetime:
        """When this window resets (an hour after it opened; from ``now`` if unused)."""
        return (self.opened or now) + WINDOW


class RateLimits:
    """Per-caller counters; ``caller`` is a login, or ``None`` for unauthenticated calls."""

    def __init__(self, clock: Clock, limit: int = 5000, anonymous_limit: int = 60,
                 writes_per_minute: int = 80):
        self.clock = clock
        self.limit = limit
        self.anonymous_limit = anonymous_limit
        self.writes_per_minute = writes_per_minute
        self._buckets: dict[str | None, Bucket] = {}

    def bucket(self, caller: str | None) -> Bucket:
        """The caller's bucket, a fresh one once its window has passed."""
        now = self.clock.now()
        found = self._buckets.get(caller)
        if found is None or (found.opened is not None and now >= found.reset_at(now)):
            found = Bucket(self.anonymous_limit if caller is None else self.limit,
                           writes=found.writes if found else [])
            self._buckets[caller] = found
        return found

    def exhausted(self, caller: str | None) -> bool:
        """True when the caller has no requests left in this window."""
        bucket = self.bucket(caller)
        return bucket.used >= bucket.limit

    def writes_blocked(self, caller: str | None) -> bool:
        """True when one more write would exceed the content-creation limit."""
        now = self.clock.now()
        bucket = self.bucket(caller)
        bucket.writes = [t for t in bucket.writes if now - t < timedelta(minutes=1)]
        return len(bucket.writes) >= self.writes_per_minute

    def count(self, caller: str | None, write: bool) -> None:
        """Count one request (and a write) against the caller; opens the window."""
        bucket = self.bucket(caller)
        now = self.clock.now()
        if bucket.opened is None:
            bucket.opened = now
        bucket.used += 1
        if write:
            bucket.writes.append(now)

    def refund(self, caller: str | None) -> None:
        """Give back the last counted request (a 304 is free)."""
        bucket = self.bucket(caller)
        bucket.used = max(0, bucket.used - 1)

    def headers(self, caller: str | None) -> dict[str, str]:
        """The ``x-ratelimit-*`` headers every GitHub REST response carries."""
        now = self.clock.now()
        bucket = self.bucket(caller)
        return {
            "x-ratelimit-limit": str(bucket.limit),
            "x-ratelimit-remaining": str(max(0, bucket.limit - bucket.used)),
            "x-ratelimit-reset": str(int(bucket.reset_at(now).timestamp())),
            "x-ratelimit-used": str(bucket.used),
            "x-ratelimit-resource": "core",
        }
