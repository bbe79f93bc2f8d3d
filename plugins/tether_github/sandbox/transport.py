"""Shared pieces of the GitHub sandbox's HTTP answers: error bodies, headers, aborting."""

from __future__ import annotations

from typing import Any

from tether.sandbox import Response, json_response

DOC = "https://docs.github.com/rest/issues/"
UA_REQUIRED = ("Request forbidden by administrative rules. Please make sure your request has a "
               "User-Agent header (https://docs.github.com/en/rest/overview/"
               "resources-in-the-rest-api#user-agent-required). Check "
               "https://developer.github.com for other possible causes.\n")
COMMON = {
    "x-github-media-type": "github.v3; format=json",
    "access-control-expose-headers": (
        "ETag, Link, Location, Retry-After, X-GitHub-OTP, X-RateLimit-Limit, "
        "X-RateLimit-Remaining, X-RateLimit-Used, X-RateLimit-Resource, X-RateLimit-Reset, "
        "X-OAuth-Scopes, X-Accepted-OAuth-Scopes, X-Poll-Interval, X-GitHub-Media-Type, "
        "X-GitHub-SSO, X-GitHub-Request-Id, Deprecation, Sunset"),
    "access-control-allow-origin": "*",
    "x-content-type-options": "nosniff",
    "x-frame-options": "deny",
    "x-xss-protection": "0",
    "referrer-policy": "origin-when-cross-origin, strict-origin-when-cross-origin",
    "content-security-policy": "default-src 'none'",
    "vary": "Accept, Authorization, Cookie, X-GitHub-OTP, Accept-Encoding, Accept, "
            "X-Requested-With",
}


class Abort(Exception):
    """Raised by handlers to answer with ``response`` at once."""

    def __init__(self, response: Response):
        super().__init__(response.status)
        self.response = response


def gh_json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON response as GitHub sends it."""
    return json_response(status, body, headers)


def error(status: int, message: str, doc: str) -> Response:
    """GitHub's error body: message, documentation_url and the status as a string."""
    return gh_json(status, {"message": message, "documentation_url": doc, "status": str(status)})


def invalid(doc: str, *errors: dict[str, Any]) -> Response:
    """422 Validation Failed with GitHub's ``errors`` entries."""
    return gh_json(422, {"message": "Validation Failed", "errors": list(errors),
                         "documentation_url": doc, "status": "422"})


def weak_match(header: str, etag: str) -> bool:
    """If-None-Match uses weak comparison: ``W/"x"`` matches ``"x"``; ``*`` matches all."""
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags
