"""A fake GitHub REST API (issues, labels, comments) that PyGithub cannot tell from the service.

Served by ``tether.sandbox.SandboxServer``. Faithful where Tether depends on it: auth
and error bodies, ``x-ratelimit-*`` headers and both rate limits, weak ETags with 304s that
cost no rate limit, ``Link`` pagination whose next pages live under
``/repositories/{id}/...``, per_page capped at 100, labels auto-created in grey on add,
422 ``already_exists``, ``updated_at`` bumped by label and comment writes, and a GHES-style
``/api/v3`` prefix when asked. Repository webhooks are registered through the API and
their deliveries queued in ``deliveries`` (see hooks.py), posted when a test calls
``deliveries.deliver()``.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from tether.sandbox import Request, Response, route

from .hooks import Deliveries
from .payloads import Renderer
from .ratelimit import DOCS as RATE_DOCS
from .ratelimit import RateLimits
from .routes import GitHubRoutes
from .transport import COMMON, UA_REQUIRED, Abort, error, gh_json, weak_match
from .world import Token, World

API_VERSIONS = ("2022-11-28", "2026-03-10")
WRITES = ("POST", "PATCH", "PUT", "DELETE")


class GitHubApi(GitHubRoutes):
    """GitHubRoutes behind GitHub's admission rules, rate limits and conditional requests."""

    name = "github"

    def __init__(self, world: World, prefix: str = "", rate_limit: int = 5000,
                 writes_per_minute: int = 80, on_write: Callable[[], None] | None = None):
        super().__init__(world)
        self.on_write = on_write  # called after each successful write (to persist the world)
        self.prefix = prefix.rstrip("/")  # "/api/v3" makes a GHES-style sandbox
        self.limits = RateLimits(world.clock, rate_limit, writes_per_minute=writes_per_minute)
        self._request_ids = itertools.count(1)
        self.api_versions: Counter[str | None] = Counter()  # X-GitHub-Api-Version values seen
        self._version = API_VERSIONS[0]
        self.deliveries = Deliveries.of(world, self.prefix)

    # -- admission: prefix, user agent, API version, auth, rate limits ---------------------

    def dispatch(self, req: Request) -> Response:
        """Admit (prefix, User-Agent, API version, token, rate limits), route, count."""
        self._caller = None
        if self.prefix:
            if not req.path.startswith(self.prefix + "/"):
                return error(404, "Not Found", "https://docs.github.com/enterprise-server/rest")
            req.path = req.path[len(self.prefix):]
        if not req.headers.get("User-Agent"):
            return Response(403, UA_REQUIRED, {"Content-Type": "text/plain; charset=utf-8"})
        self.api_versions[req.headers.get("X-GitHub-Api-Version")] += 1
        self._version = req.headers.get("X-GitHub-Api-Version") or API_VERSIONS[0]
        if self._version not in API_VERSIONS:
            return error(400, f"Unsupported 'X-GitHub-Api-Version' header value "
                              f"'{self._version}'. Supported versions: "
                              f"{', '.join(API_VERSIONS)}.", "https://docs.github.com/rest/"
                              "about-the-rest-api/api-versions")
        token, denied = self._token(req)
        caller = token.login if token else None
        self._caller = token
        self.deliveries.base_url = req.base_url  # payload URLs point where callers reach us
        self._render = Renderer(self.world, req.base_url + self.prefix, req.base_url,
                                self._version)
        write = req.method in WRITES
        if denied is None and self.limits.exhausted(caller):
            user = self.world.user(caller).id if caller else "this IP"
            denied = error(403, f"API rate limit exceeded for user ID {user}.", RATE_DOCS)
        elif denied is None and write and self.limits.writes_blocked(caller):
            denied = error(403, "You have exceeded a secondary rate limit and have been "
                                "temporarily blocked from content creation. Please retry your "
                                "request again later.", RATE_DOCS)
            denied.headers["retry-after"] = "60"
        if denied is not None:
            denied.headers.update(self.limits.headers(caller))
            return denied
        self.world.actor = caller  # webhooks name the token's user as the sender
        try:
            response = super().dispatch(req)
        except Abort as abort:
            response = abort.response
        finally:
            self.world.actor = None
        if req.path != "/rate_limit":  # checking the limit is free
            self.limits.count(caller, write)
        if write and response.status < 400 and self.on_write is not None:
            self.on_write()
        response = self._conditional(req, response, caller)
        response.headers.update(self.limits.headers(caller))
        return response

    def _token(self, req: Request) -> tuple[Token | None, Response | None]:
        """The caller's token; a 401 for a bad one (a missing one is anonymous)."""
        header = req.headers.get("Authorization") or ""
        if not header:
            return None, None
        scheme, _, secret = header.partition(" ")
        token = self.world.tokens.get(secret.strip()) \
            if scheme.lower() in ("token", "bearer") else None
        if token is None:
            return None, error(401, "Bad credentials", "https://docs.github.com/rest")
        return token, None

    def _conditional(self, req: Request, resp: Response, caller: str | None) -> Response:
        """Weak ETag over token and body; a matching If-None-Match gets a free 304."""
        if req.method != "GET" or resp.status != 200:
            return resp
        secret = (req.headers.get("Authorization") or "").encode()
        digest = hashlib.sha256(secret + b"\n" + resp.encode()).hexdigest()[:32]
        etag = f'W/"{digest}"'
        resp.headers["ETag"] = etag
        resp.headers["cache-control"] = "private, max-age=60, s-maxage=60"
        sent = req.headers.get("If-None-Match")
        if sent and weak_match(sent, etag):
            self.limits.refund(caller)
            return Response(304, None, {"ETag": etag, "cache-control": resp.headers[
                "cache-control"]})
        return resp

    def decorate(self, req: Request, resp: Response) -> None:
        """Headers every GitHub response carries."""
        number = next(self._request_ids)
        resp.headers.update(COMMON)
        resp.headers["x-github-api-version-selected"] = self._version
        resp.headers["x-github-request-id"] = f"{number:04X}:{number:05X}:{number:07X}:0000000"
        if self._caller is not None and not self._caller.fine_grained:
            # Only classic tokens have OAuth scopes to show; fine-grained ones get none.
            resp.headers["x-oauth-scopes"] = ", ".join(self._caller.scopes)
            resp.headers["x-accepted-oauth-scopes"] = "repo" if "/repos" in req.path else ""

    def now(self) -> datetime:
        """The world's clock, which GitHub's Date header shows on every response (304s too)."""
        return self.world.clock.now()

    # -- rate limit ------------------------------------------------------------------------

    @route("GET", r"/rate_limit")
    def rate_limit(self, req: Request) -> Response:
        """GET /rate_limit: the caller's core limit; free, as on GitHub."""
        headers = self.limits.headers(self._caller.login if self._caller else None)
        core = {"limit": int(headers["x-ratelimit-limit"]),
                "used": int(headers["x-ratelimit-used"]),
                "remaining": int(headers["x-ratelimit-remaining"]),
                "reset": int(headers["x-ratelimit-reset"])}
        body: dict[str, Any] = {"resources": {"core": core}}
        if self._version < "2026-03-10":
            body["rate"] = {**core, "resource": "core"}
        return gh_json(200, body)
