"""Requests, responses and routing for a sandbox API; each tracker subclasses SandboxApi."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from typing import Any, TypeVar, overload
from urllib.parse import parse_qs

# A route handler: a method of a SandboxApi subclass, so its self is that subclass (Any here:
# a Callable taking SandboxApi would not accept a method of a subclass).
Handler = Callable[[Any, "Request"], "Response"]
H = TypeVar("H", bound=Handler)


@dataclass
class Request:
    """One HTTP request as a handler sees it; ``params`` are the route's named groups."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    base_url: str
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, method: str, target: str, headers: Message, body: bytes, base_url: str
              ) -> Request:
        path, _, query = target.partition("?")
        return cls(method, path, parse_qs(query, keep_blank_values=True), headers, body, base_url)

    @overload
    def arg(self, name: str) -> str | None: ...
    @overload
    def arg(self, name: str, default: str) -> str: ...
    @overload
    def arg(self, name: str, default: str | None) -> str | None: ...

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        """Every value of a repeated or comma-separated query parameter."""
        return [v for raw in self.query.get(name, []) for v in raw.split(",") if v]

    def json(self) -> Any:
        """The JSON body, or None when empty; invalid JSON raises ValueError."""
        return json.loads(self.body) if self.body.strip() else None


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-encoded unless bytes or str
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, body, {"Content-Type": "application/json; charset=utf-8",
                                   **(headers or {})})


def route(method: str, pattern: str) -> Callable[[H], H]:
    """Mark a SandboxApi method as the handler of ``method`` on paths fully matching ``pattern``."""
    def mark(fn: H) -> H:
        fn.__dict__.setdefault("_routes", []).append((method, re.compile(pattern)))
        return fn
    return mark


class SandboxApi:
    """A fake tracker API: subclasses add ``@route`` handlers, auth and the service's state."""

    name = "sandbox"

    def __init__(self) -> None:
        self._routes = [(m, rx, getattr(self, n)) for n in dir(type(self))
                        for m, rx in getattr(getattr(type(self), n), "_routes", [])]

    def dispatch(self, req: Request) -> Response:
        """Route ``req``: 401 from ``authenticate``, 404/405 as the service would answer."""
        denied = self.authenticate(req)
        return denied if denied is not None else self.route(req)

    def route(self, req: Request) -> Response:
        """Route an authenticated ``req`` to its handler; 404/405 as the service answers."""
        allowed = False
        for method, rx, handler in self._routes:
            found = rx.fullmatch(req.path)
            if found:
                allowed = True
                if method == req.method:
                    req.params = found.groupdict()
                    return handler(req)
        return self.not_found(req) if not allowed else self.method_not_allowed(req)

    def authenticate(self, req: Request) -> Response | None:
        """None when the request may proceed, else the service's auth error response."""
        return None

    def decorate(self, req: Request, resp: Response) -> None:
        """Add headers every response of the service carries (rate-limit headers, ...)."""

    def now(self) -> datetime | None:
        """The service's own time, which every response's ``Date`` header shows (an injected
        fault's too), as a real tracker's does; None: this machine's clock."""
        return None

    def not_found(self, req: Request) -> Response:
        return json_response(404, {"message": "Not Found"})

    def method_not_allowed(self, req: Request) -> Response:
        return json_response(405, {"message": "Method Not Allowed"})
