"""Which Jira failures are worth retrying, and the message a user sees for the rest.

Messages never include ``str(JIRAError)``: it dumps the request headers, Authorization
included. They are built from the status code and Jira's own error text only."""

from __future__ import annotations

from dataclasses import dataclass

import requests
from jira.exceptions import JIRAError

from .options import JiraOptions

# What each kind of call needs, to name the missing permission on a 403.
PERMISSIONS = {
    "search": "Browse Projects",
    "labels": "Edit Issues",
    "marker": "Edit Issues",
    "comment": "Add Comments",
    "edit-comment": "Edit Own Comments",
    "comments": "Browse Projects",
}
_NETWORK = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


def status_of(exc: BaseException) -> int | None:
    return exc.status_code if isinstance(exc, JIRAError) else None


def transient(exc: Exception) -> float | None:
    """Seconds to wait before retrying ``exc`` (0: use backoff), or None if it is permanent.

    429 and 5xx are transient, honouring Retry-After; so are resets and timeouts."""
    if isinstance(exc, _NETWORK):
        return 0.0
    status = status_of(exc)
    if status is None or not (status == 429 or status >= 500):
        return None
    assert isinstance(exc, JIRAError)  # status_of gives a status only for a JIRAError
    headers = getattr(exc.response, "headers", None) or {}
    try:
        return max(0.0, float(headers.get("Retry-After", "")))
    except ValueError:
        return 0.0  # absent, or an HTTP date: fall back to backoff


def quiet_refused(exc: BaseException) -> bool:
    """Whether Jira refused ``notifyUsers=false``: a 403 saying that discarding the
    notification needs admin or project admin rights (the whole edit was refused)."""
    return status_of(exc) == 403 and "notification" in service_message(exc).lower()


def service_message(exc: BaseException) -> str:
    """Jira's own error text (errorMessages / errors), one line."""
    text = exc.text if isinstance(exc, JIRAError) else None
    return " ".join(str(text or "").split())[:300]


@dataclass(frozen=True)
class Context:
    """Where a call was aimed, for the message: the scope, an item, a kind of call."""

    options: JiraOptions
    kind: str = "search"
    item: str | None = None
    project: str | None = None

    def where(self) -> str:
        flavour = "Cloud" if self.options.flavour == "cloud" else "Data Center"
        item = f", issue {self.item}" if self.item else ""
        return f"Jira {flavour} at {self.options.base_url} ({self.options.scope}{item})"


def describe(exc: BaseException, ctx: Context) -> str:
    """One message naming the tracker, scope, item, HTTP status and what to do next."""
    opts = ctx.options
    if isinstance(exc, _NETWORK):
        return (f"{ctx.where()}: cannot reach Jira ({type(exc).__name__}); check options.url "
                "and the network, then run again")
    status = status_of(exc)
    said = service_message(exc)
    if status == 401:
        how = ("options.email with an API token (basic auth)" if opts.flavour == "cloud" else
               "a personal access token (bearer)")
        return (f"{ctx.where()}: HTTP 401, Jira refused the credentials; check the token in "
                f"${opts.token_env} (this source sends {how}; check options.flavour too)")
    if status == 403:
        permission = PERMISSIONS.get(ctx.kind, "Browse Projects")
        project = ctx.project or (ctx.item.rsplit("-", 1)[0] if ctx.item else opts.scope)
        return (f"{ctx.where()}: HTTP 403, the token's user lacks the '{permission}' "
                f"permission in project {project}; grant it in the project's permission "
                f"scheme or use another token ({said or 'no detail from Jira'})")
    if status == 404:
        if ctx.item:
            return (f"{ctx.where()}: HTTP 404, issue {ctx.item} not found; it was deleted or "
                    "moved, or the token cannot see it")
        if ctx.project:
            return (f"{ctx.where()}: HTTP 404, project {ctx.project} not found; check "
                    "options.projects (and that the token's user can browse it)")
        return (f"{ctx.where()}: HTTP 404, not found; check options.url"
                f" ({said or 'no detail from Jira'})")
    if status is not None and (status >= 500 or status == 429):
        return (f"{ctx.where()}: HTTP {status} after retrying; Jira is unavailable or "
                f"rate-limiting, try again later ({said or 'no detail from Jira'})")
    if status is not None:
        return f"{ctx.where()}: HTTP {status}, Jira says: {said or 'no detail'}"
    return f"{ctx.where()}: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
