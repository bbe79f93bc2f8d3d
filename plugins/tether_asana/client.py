"""A thin requests.Session wrapper for Asana: Bearer auth, {"data": ...} envelopes, offset
pagination, retries that sleep only on Tether's clock, and Asana's own time read from the
answers' Date header (``reading``), which dates a pull."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from tether.sdk import Clock, PullDate, SourceError, with_retries

from .failures import AsanaHTTPError, Where, error_message, source_error, transient

T = TypeVar("T")
PAGE = 100  # the most Asana's list endpoints return per page (limit 1..100)
log = logging.getLogger("tether.asana")


class AsanaClient:
    """Calls one Asana API; ``call`` retries transient failures, ``send`` never does."""

    def __init__(self, base_url: str, token_env: str, clock: Clock, timeout: float = 60.0):
        self.base_url = base_url.rstrip("/")
        self.token_env = token_env
        self.clock = clock
        self.timeout = timeout
        self.session = requests.Session()
        # urllib3 must not retry (nor sleep) on its own: with_retries owns both.
        for prefix in ("http://", "https://"):
            self.session.mount(prefix, HTTPAdapter(max_retries=0))
        self.session.headers.update({"Accept": "application/json",
                                     "User-Agent": "tether-asana/0.1"})
        self.dated = PullDate()  # Asana's time when a pull's first request reached it
        self.session.hooks["response"].append(self.dated.hook)

    def token(self) -> str:
        """The token from the environment, read now; SourceError naming the variable if unset."""
        value = os.environ.get(self.token_env, "").strip()
        if not value:
            raise SourceError(f"Asana: no token: set the environment variable ${self.token_env} "
                              "to an Asana personal access token (or change options.token_env)")
        return value

    def send(self, method: str, path: str, params: dict[str, Any] | None = None,
             data: dict[str, Any] | None = None) -> dict[str, Any]:
        """One request, no retry; the decoded JSON body, or AsanaHTTPError for non-2xx."""
        headers = {"Authorization": f"Bearer {self.token()}"}
        body = {"data": data} if data is not None else None
        resp = self.session.request(method, self.base_url + path, params=params, json=body,
                                    headers=headers, timeout=self.timeout)
        log.debug("%s %s -> %s", method, path, resp.status_code)
        if resp.status_code >= 400:
            body = _body(resp)
            raise AsanaHTTPError(resp.status_code, error_message(body) or resp.reason or "",
                                 _retry_after(resp), body)
        try:
            decoded = resp.json()
        except ValueError:
            raise AsanaHTTPError(resp.status_code, "the response is not JSON") from None
        if not isinstance(decoded, dict):
            raise AsanaHTTPError(resp.status_code, "the response has no data envelope")
        return decoded

    def send_pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every item of a list endpoint, page by page (limit=100, next_page.offset); no retry."""
        query = {**params, "limit": PAGE}
        while True:
            body = self.send("GET", path, query)
            yield from body.get("data") or []
            offset = (body.get("next_page") or {}).get("offset")
            if not offset:
                return
            query = {**query, "offset": offset}

    def retrying(self, unit: Callable[[], T], where: Where) -> T:
        """Run ``unit`` (made of ``send`` calls) with retries; failures become SourceErrors.
        A unit is retried whole, so a check-then-create unit never creates twice."""
        self.token()  # a missing token is reported before any request
        try:
            return with_retries(unit, transient, self.clock)
        except (AsanaHTTPError, requests.RequestException) as exc:
            raise source_error(exc, where, self.token_env, self.base_url) from None

    def fetch(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """GET ``path`` with retries; failures propagate as raised (AsanaHTTPError, or the
        network's), for callers that tell them apart (the doctor)."""
        return with_retries(lambda: self.send("GET", path, params), transient, self.clock)

    def call(self, method: str, path: str, where: Where, params: dict[str, Any] | None = None,
             data: dict[str, Any] | None = None) -> dict[str, Any]:
        """``send`` with retries."""
        return self.retrying(lambda: self.send(method, path, params, data), where)

    def pages(self, path: str, params: dict[str, Any], where: Where) -> list[dict[str, Any]]:
        """Every item of a list endpoint; each page is retried on its own, so a failure on
        page 7 does not fetch pages 1-6 again."""
        self.token()
        items: list[dict[str, Any]] = []
        query: dict[str, Any] = {**params, "limit": PAGE}
        while True:
            body = self.call("GET", path, where, dict(query))
            items += body.get("data") or []
            offset = (body.get("next_page") or {}).get("offset")
            if not offset:
                return items
            query["offset"] = offset


def _body(resp: requests.Response) -> dict[str, Any]:
    """An error answer's JSON object ({"errors": [...]}, a 412's "sync"), or {}."""
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _retry_after(resp: requests.Response) -> float | None:
    raw = resp.headers.get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None  # an HTTP-date: Asana sends seconds, so fall back to backoff
