"""Retrying transient tracker errors with backoff that honours Retry-After, within a bound."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tether.clock import Clock

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``attempts`` tries and ``budget`` seconds of waiting in all for one call."""

    attempts: int = 5
    budget: float = 120.0
    base: float = 1.0  # first backoff when the server gives no Retry-After; doubles each time
    cap: float = 60.0  # no single wait is longer


def with_retries(call: Callable[[], T], transient: Callable[[Exception], float | None],
                 clock: Clock, policy: RetryPolicy = RetryPolicy()) -> T:
    """Run ``call``; when ``transient(exc)`` gives a wait (its Retry-After, or 0 for "use
    backoff"), sleep and try again; re-raise permanent errors and the last transient one."""
    waited = 0.0
    for attempt in range(policy.attempts):
        try:
            return call()
        except Exception as exc:
            hint = transient(exc)
            if hint is None or attempt == policy.attempts - 1:
                raise
            wait = min(policy.cap, hint if hint > 0 else policy.base * 2 ** attempt)
            if waited + wait > policy.budget:
                raise
            clock.sleep(wait)
            waited += wait
    raise AssertionError("unreachable")  # the loop returns or raises
