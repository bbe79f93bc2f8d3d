"""Asana failures as SourceErrors that say where it went wrong and what to do next."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from tether.sdk import SourceError


class AsanaHTTPError(Exception):
    """A non-2xx answer: its status, Asana's own message, any Retry-After (seconds) and the
    decoded body (a 412 from /events carries the fresh sync token there)."""

    def __init__(self, status: int, message: str, retry_after: float | None = None,
                 body: dict[str, Any] | None = None):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.body = body or {}


def error_message(body: Any) -> str:
    """Asana's own error text ({"errors": [{"message": ...}]}), or ""."""
    errors = body.get("errors") if isinstance(body, dict) else None
    messages = [e.get("message", "") for e in errors or [] if isinstance(e, dict)]
    return "; ".join(m for m in messages if isinstance(m, str) and m)


@dataclass(frozen=True)
class Where:
    """What a call was about, for the error message: scope, item, what a 404 means, and the
    OAuth scope the call needs (personal access tokens have every scope)."""

    scope: str  # "project 123", "projects 1, 2", "workspace 9"
    missing: str  # the 404 advice, e.g. "project 123 not found; check options.projects"
    need: str = "tasks:read"
    item: str | None = None  # "task 456"

    def about(self, item: str, missing: str, need: str | None = None) -> Where:
        """The same scope, narrowed to one item."""
        return Where(self.scope, missing, need or self.need, item)

    @property
    def label(self) -> str:
        return f"Asana {self.scope}" + (f", {self.item}" if self.item else "")


def transient(exc: Exception) -> float | None:
    """The retry hint for ``exc``: Retry-After seconds, 0 for "use backoff", None if permanent."""
    if isinstance(exc, AsanaHTTPError):
        if exc.status == 429 or exc.status >= 500:
            return exc.retry_after or 0.0
        return None
    if isinstance(exc, requests.ConnectionError | requests.Timeout
                  | requests.exceptions.ChunkedEncodingError):
        return 0.0
    return None


def source_error(exc: Exception, where: Where, token_env: str, base_url: str) -> SourceError:
    """The SourceError a user sees for ``exc``; it never contains the token."""
    if isinstance(exc, AsanaHTTPError):
        said = f" (Asana said: {exc.message})" if exc.message else ""
        if exc.status == 401:
            advice = f"not authorized; check the token in ${token_env}{said}"
        elif exc.status == 403:
            advice = (f"forbidden: the token's user lacks access to {where.item or where.scope}; "
                      f"add that user to the project, or give the OAuth app the "
                      f"'{where.need}' scope{said}")
        elif exc.status == 404:
            advice = f"{where.missing}{said}"
        elif exc.status == 402:
            advice = f"this needs a paid Asana plan{said}"
        elif exc.status == 429:
            advice = f"rate limited and still limited after retrying; run again later{said}"
        elif exc.status >= 500:
            advice = f"Asana failed and kept failing after retries; run again later{said}"
        else:
            advice = exc.message or "the request was rejected"
        return SourceError(f"{where.label}: HTTP {exc.status}: {advice}")
    kind = type(exc).__name__
    return SourceError(f"{where.label}: cannot reach {base_url} ({kind}) even after retries; "
                       "check options.url and the network")
