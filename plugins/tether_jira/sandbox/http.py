"""The envelope of every fake-Jira request: authentication as the flavour does it, rate
limiting with Jira's headers, Jira's 404/405 bodies, and helpers the routes share."""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from tether.sandbox import Request, Response, SandboxApi, json_response, page_size

from .render import Renderer
from .state import Issue, SandboxError, User, World

API = r"/rest/api/(?P<v>[^/]+)"
ISSUE = API + r"/issue/(?P<issue>[^/]+)"
READ_ONLY_POSTS = ("/search", "/search/jql", "/comment/list")  # POSTs that change nothing
# Jira's answer to notifyUsers=false from a user who administers neither Jira nor the project:
# measured on issue edits (Cloud and Server, quoted in public reports); the sandbox answers
# comment edits the same way, which is our assumption (Cloud documents the parameter there
# without saying who may use it).
QUIET_REFUSED = ("To discard the user notification either admin or project admin permissions "
                 "are required.")
CLOUD_401 = "Client must be authenticated to access this resource."
DC_401 = ("<html><head><title>Unauthorized (401)</title></head><body><h1>Unauthorized (401)"
          "</h1><p>Encountered a <code>&quot;401 - Unauthorized&quot;</code> error while "
          "loading this page.</p></body></html>")


@dataclass
class RateLimit:
    """A token bucket on the site's clock: ``capacity`` requests, ``fill_rate`` per
    ``interval`` seconds. Cloud calls its refusals burst limits; Data Center shows the bucket."""

    capacity: int
    fill_rate: float = 1.0
    interval: float = 1.0
    tokens: float = -1.0
    last: datetime | None = None

    def take(self, now: datetime) -> float:
        """0 when the request may go ahead (one token spent), else seconds to wait."""
        if self.tokens < 0:
            self.tokens = float(self.capacity)
        if self.last is not None:
            gained = (now - self.last).total_seconds() / self.interval * self.fill_rate
            self.tokens = min(float(self.capacity), self.tokens + max(gained, 0.0))
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.fill_rate * self.interval


class JiraApiBase(SandboxApi):
    """One fake site over HTTP; ``world`` is its state, shared with whoever seeds it."""

    def __init__(self, world: World, rate_limit: RateLimit | None = None,
                 on_change: Callable[[], None] | None = None):
        super().__init__()
        self.world = world
        self.rate_limit = rate_limit
        self.on_change = on_change  # called after each successful write (persistence)
        self.served = 0
        self.caller: User | None = None  # who the request being served authenticated as

    # -- the envelope every request goes through ------------------------------------------

    def dispatch(self, req: Request) -> Response:
        self.served += 1
        self.caller = None
        if self.rate_limit is not None:
            wait = self.rate_limit.take(self.world.now())
            if wait > 0:
                return self._too_many(wait)
        owner = self.world.me
        try:  # authenticate() makes the caller the site's "me" for this request only
            response = super().dispatch(req)
        except SandboxError as exc:
            return json_response(exc.status, exc.body)
        finally:
            self.world.me = owner
        if self.on_change and response.status < 400 and req.method not in ("GET", "HEAD") \
                and not req.path.endswith(READ_ONLY_POSTS):
            self.on_change()
        return response

    def authenticate(self, req: Request) -> Response | None:
        header = req.headers.get("Authorization") or ""
        for token, user in self.world.credentials():
            if self.world.flavour == "cloud":
                expected = "Basic " + base64.b64encode(f"{user.email}:{token}".encode()).decode()
            else:
                expected = f"Bearer {token}"
            if header == expected:
                self.world.me = self.caller = user  # the request acts as the token's user
                return None
        if not header and req.path.endswith("/serverInfo"):
            return None  # serverInfo answers anonymous callers too
        realm = quote(req.base_url, safe="")
        headers = {"WWW-Authenticate": f'OAuth realm="{realm}"',
                   "X-Seraph-LoginReason": "AUTHENTICATED_FAILED"}
        if self.world.flavour == "cloud":
            return Response(401, CLOUD_401, {"Content-Type": "text/plain;charset=UTF-8",
                                             **headers})
        return Response(401, DC_401, {"Content-Type": "text/html;charset=UTF-8", **headers})

    def decorate(self, req: Request, resp: Response) -> None:
        n = self.served
        resp.headers.setdefault("X-AREQUESTID", f"{540 + n % 400}x{1000 + n}x1")
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        if self.world.flavour == "cloud":
            resp.headers.setdefault("ATL-TraceId", hashlib.sha1(str(n).encode()).hexdigest()[:16])
            bucket = self.rate_limit
            if bucket is not None and bucket.tokens < bucket.capacity * 0.2:
                resp.headers.setdefault("X-RateLimit-NearLimit", "true")
        else:
            me = self.caller
            authed = resp.status != 401
            resp.headers.setdefault("X-AUSERNAME", me.name if me and authed else "anonymous")
            resp.headers.setdefault("X-Seraph-LoginReason", "OK" if authed else
                                    "AUTHENTICATED_FAILED")
            if self.rate_limit is not None:
                resp.headers.update(self._bucket_headers())

    def _bucket_headers(self) -> dict[str, str]:
        b = self.rate_limit
        assert b is not None
        return {"X-RateLimit-Limit": str(b.capacity),
                "X-RateLimit-Remaining": str(max(0, math.floor(b.tokens))),
                "X-RateLimit-Interval-Seconds": str(int(b.interval)),
                "X-RateLimit-FillRate": str(int(b.fill_rate))}

    def _too_many(self, wait: float) -> Response:
        seconds = max(1, math.ceil(wait))
        headers = {"Retry-After": str(seconds)}
        if self.world.flavour == "cloud":
            reset = self.world.now() + timedelta(seconds=seconds)
            b = self.rate_limit
            headers.update({
                "X-RateLimit-Limit": str(b.capacity if b else 0), "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%MZ"),
                "RateLimit-Reason": "jira-burst-based"})
        else:
            headers.update(self._bucket_headers())
        return json_response(429, {"errorMessages": ["Rate limit exceeded."], "errors": {}},
                             headers)

    def now(self) -> datetime:
        """The site's clock: the Date header of every answer, as serverInfo's serverTime."""
        return self.world.now()

    def not_found(self, req: Request) -> Response:
        return json_response(404, {"message": f"null for uri: {req.base_url}{req.path}",
                                   "status-code": 404})

    def method_not_allowed(self, req: Request) -> Response:
        return Response(405)

    # -- helpers ----------------------------------------------------------------------------

    def _renderer(self, req: Request) -> Renderer:
        """The renderer for this request's REST version; 404 for a version the site lacks."""
        versions = ("2", "3", "latest") if self.world.flavour == "cloud" else ("2", "latest")
        if req.params.get("v") not in versions:
            raise SandboxError(404, [f"null for uri: {req.base_url}{req.path}"])
        return Renderer(self.world, req.base_url, req.params["v"])

    @staticmethod
    def _body(req: Request) -> Any:
        try:
            return req.json()
        except ValueError:
            raise SandboxError(400, ["Unexpected character: the request body is not valid "
                                     "JSON."]) from None

    @staticmethod
    def _list(raw: Any) -> list[str]:
        if raw is None:
            return []
        items = raw if isinstance(raw, list) else [raw]
        return [part.strip() for item in items for part in str(item).split(",") if part.strip()]

    def _can(self, issue: Issue, permission: str) -> bool:
        return self.world.can(issue.project, permission)

    def _check_quiet(self, req: Request) -> None:
        """``notifyUsers=false`` needs Administer Jira or Administer Projects: without them
        Jira refuses the whole edit (it does not just notify anyway)."""
        if (req.arg("notifyUsers") or "true").lower() == "false" and not (
                self.world.me is not None and self.world.me.admin):
            raise SandboxError(403, [QUIET_REFUSED])

    @staticmethod
    def _size(raw: Any, default: int, cap: int) -> int:
        """A page size as the service clamps it; 400 for one it rejects."""
        try:
            return page_size(None if raw is None else str(raw), default, cap)
        except ValueError:
            raise SandboxError(400, [f"The value '{raw}' is not valid for maxResults."]) \
                from None

