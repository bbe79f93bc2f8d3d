"""GitLab REST API v4 over ``requests``: the token, retries on the connector's clock, pages,
and failures users can act on. The token goes in ``PRIVATE-TOKEN`` and is never shown."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import requests
from tether.sdk import Clock, SourceError, with_retries

from .options import GitLabOptions

T = TypeVar("T")
PER_PAGE = 100  # GitLab's maximum per_page
TRACKER = "GitLab"


class HttpError(Exception):
    """A 4xx or 5xx answer: its status, GitLab's message and headers."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str]):
        said = message if message.startswith(str(status)) else f"{status} {message}"
        super().__init__(f"HTTP {said}".rstrip())  # GitLab's messages start with the status
        self.status, self.message, self.headers = status, message, headers


class NotFound(SourceError):
    """A 404: the project, issue or note is gone, or hidden from this token."""


def message_of(resp: requests.Response) -> str:
    """GitLab's ``message`` (or ``error``) from an error body, which may be text or empty."""
    try:
        data = resp.json()
    except ValueError:
        return resp.text.strip()[:200]
    if isinstance(data, dict):
        return str(data.get("message") or data.get("error") or "").strip()
    return str(data or "").strip()[:200]


class GitLabClient:
    """One source's view of ``options.url``; the token is read on every request."""

    def __init__(self, options: GitLabOptions, clock: Clock):
        self.options = options
        self.clock = clock
        self.session = requests.Session()
        self.project = f"/projects/{options.project_ref}"
        self.headers: Mapping[str, str] = {}  # the last answer's, for the doctor

    def token(self) -> str:
        """The token from ``$token_env``; SourceError naming the variable when it is unset."""
        token = os.environ.get(self.options.token_env, "").strip()
        if not token:
            raise SourceError(f"{TRACKER}: no token: set the environment variable "
                              f"${self.options.token_env} to a GitLab access token with the "
                              "api scope")
        return token

    def send(self, method: str, path: str, params: Mapping[str, Any] | None = None,
             body: Mapping[str, Any] | None = None) -> tuple[Any, Mapping[str, str]]:
        """One request, no retry: (JSON body, headers); HttpError for 4xx/5xx."""
        resp = self.session.request(method, f"{self.options.url}/api/v4{path}", params=params,
                                    json=body, headers={"PRIVATE-TOKEN": self.token()},
                                    timeout=30)
        self.headers = resp.headers
        if resp.status_code >= 400:
            raise HttpError(resp.status_code, message_of(resp), resp.headers)
        return (resp.json() if resp.content else None), resp.headers

    def transient(self, exc: Exception) -> float | None:
        """The wait before retrying ``exc`` (0: back off), or None when retrying cannot help."""
        if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
            return 0.0
        if not isinstance(exc, HttpError) or (exc.status != 429 and exc.status < 500):
            return None
        try:  # GitLab's 429 says how long to wait; a 5xx does not
            return max(0.0, float(exc.headers.get("Retry-After") or 0))
        except ValueError:
            return 0.0

    def call(self, fn: Callable[[], T], where: str, missing: str) -> T:
        """``fn()`` retried on transient failures; what is left becomes a SourceError naming
        ``where`` (the project or item) and, for a 404, what is ``missing``."""
        self.token()
        try:
            return with_retries(fn, self.transient, self.clock)
        except HttpError as exc:
            raise self.error(exc, where, missing) from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
            raise SourceError(f"{TRACKER} {where}: cannot reach {self.options.url} ({kind}, "
                              "retried); check options.url and the network") from None
        except ValueError:  # a 2xx whose body is not JSON: not GitLab's API at all
            raise SourceError(f"{TRACKER} {where}: {self.options.url} answered something other "
                              "than JSON; check options.url (the GitLab root)") from None

    def request(self, method: str, path: str, where: str, missing: str,
                **kwargs: Any) -> tuple[Any, Mapping[str, str]]:
        return self.call(lambda: self.send(method, path, **kwargs), where, missing)

    def pages(self, path: str, params: Mapping[str, Any], where: str = "", missing: str = "",
              retried: bool = True) -> Iterator[tuple[list[Any], int | None]]:
        """Each page of a list as (items, X-Total), following X-Next-Page; ``retried`` False
        sends each page once (the caller retries a whole operation)."""
        page = "1"
        while page:
            query = {**params, "per_page": PER_PAGE, "page": page}
            data, headers = (self.request("GET", path, where, missing, params=query) if retried
                             else self.send("GET", path, params=query))
            total = headers.get("X-Total", "")
            yield (data if isinstance(data, list) else []), int(total) if total.isdigit() else None
            page = headers.get("X-Next-Page", "")

    def error(self, exc: HttpError, where: str, missing: str) -> SourceError:
        head, env = f"{TRACKER} {where}: {exc}", self.options.token_env
        if exc.status == 401:
            return SourceError(f"{head}: the token was refused; check the token in ${env}")
        if exc.status == 403:
            return SourceError(f"{head}: the token in ${env} lacks permission here; it needs "
                               "the api scope and at least the Reporter role on the project")
        if exc.status == 404:
            return NotFound(f"{head}: {missing}")
        if exc.status == 429 or exc.status >= 500:
            return SourceError(f"{head}: GitLab kept failing after retries; try again later")
        return SourceError(head)
