"""Which GitHub failures are worth a retry (and after how long), and what users read otherwise."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import requests
from github.GithubException import GithubException
from tether.sdk import Clock, SourceError

TRACKER = "GitHub"


class NotFound(SourceError):
    """A 404: the repository or item is gone (or hidden from this token)."""


PRIMARY = "api rate limit exceeded"
SECONDARY_WAIT = 60.0  # GitHub: "wait for at least one minute" when no header says more
# Text of GitHub's secondary-limit messages (PyGithub matches the same phrases).
_SECONDARY = ("secondary rate limit", "please retry your request again later",
              "please wait a few minutes before you try again")


def message_of(exc: GithubException) -> str:
    """The service's own message, with any validation details it gave."""
    data: Any = exc.data
    if not isinstance(data, dict):
        return str(data or "").strip()
    text = str(data.get("message") or "").strip()
    details = [e.get("message") or f"{e.get('field')} {e.get('code')}"
               for e in data.get("errors") or [] if isinstance(e, dict)]
    return f"{text} ({'; '.join(details)})" if details else text


def _headers(exc: GithubException) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (exc.headers or {}).items()}


def reset_wait(exc: GithubException, clock: Clock) -> float | None:
    """Seconds until ``x-ratelimit-reset`` when the primary limit is spent, else None."""
    headers = _headers(exc)
    if headers.get("x-ratelimit-remaining") != "0" or "x-ratelimit-reset" not in headers:
        return None
    try:
        reset = float(headers["x-ratelimit-reset"])
    except ValueError:
        return None
    # Whole seconds on both sides: wait at least one so a retry never races the reset.
    return max(1.0, reset - clock.now().timestamp())


def is_secondary(exc: GithubException) -> bool:
    text = message_of(exc).lower()
    return any(phrase in text for phrase in _SECONDARY)


def transient(exc: Exception, clock: Clock, max_wait: float) -> float | None:
    """The wait before retrying ``exc`` (0: use backoff), or None when retrying cannot help."""
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return 0.0
    if not isinstance(exc, GithubException):
        return None
    if exc.status >= 500:
        return 0.0
    if exc.status not in (403, 429):
        return None
    retry_after = _headers(exc).get("retry-after")
    if retry_after is not None:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            return 0.0
    wait = reset_wait(exc, clock)
    if wait is not None:
        return wait if wait <= max_wait else None  # too far off: fail now, say when
    if is_secondary(exc):
        return SECONDARY_WAIT
    return 0.0 if exc.status == 429 else None  # a plain 403 is a permission problem


def source_error(exc: Exception, where: str, subject: str, token_env: str, url: str,
                 clock: Clock) -> SourceError:
    """A SourceError naming tracker, scope/item, HTTP status and what to do next.

    ``where`` is the repository or item (``acme/shop#12``); ``subject`` what a 404 means is
    missing plus the option to check. The token never appears: only its variable's name.
    """
    head = f"{TRACKER} {where}"
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
        return SourceError(f"{head}: cannot reach {url} ({kind}, retried); check options.url "
                           "and the network, then run again")
    if not isinstance(exc, GithubException):
        return SourceError(f"{head}: {type(exc).__name__}: {exc}")
    status, text = exc.status, message_of(exc)
    said = f"HTTP {status} {text}".rstrip()
    if status == 401:
        return SourceError(f"{head}: {said}: the token was refused; check the token in "
                           f"${token_env}")
    if status in (403, 429) and (PRIMARY in text.lower() or reset_wait(exc, clock)):
        reset = _headers(exc).get("x-ratelimit-reset")
        when = (datetime.fromtimestamp(float(reset), UTC).strftime("%H:%M:%S UTC")
                if reset and reset.replace(".", "").isdigit() else "the next hour")
        return SourceError(f"{head}: {said}: the token's rate limit is used up until {when}; "
                           "run again after that, or raise options.max_rate_limit_wait")
    if status in (403, 429) and is_secondary(exc):
        return SourceError(f"{head}: {said}: GitHub's secondary rate limit kept refusing; "
                           "run again in a few minutes")
    if status == 403:
        accepted = _headers(exc).get("x-accepted-oauth-scopes")
        needs = f"the {accepted} scope" if accepted else "the repo scope"
        return SourceError(f"{head}: {said}: the token in ${token_env} lacks permission here; "
                           f"it needs Issues: read and write (fine-grained token) or {needs} "
                           "(classic token)")
    if status == 404:
        return NotFound(f"{head}: {said}: {subject}")
    if status >= 500 or status == 429:
        return SourceError(f"{head}: {said}: GitHub kept failing after retries; try again later")
    return SourceError(f"{head}: {said}")
