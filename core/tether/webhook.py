"""Webhook deliveries as a connector reads them: verified exactly as its tracker signs them,
then what they touch. The service routes deliveries to the connector of their source; only
the connector knows how its tracker signs and shapes them."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from tether.errors import TetherError


@dataclass(frozen=True)
class Reply:
    """What to answer instead of a plain 200 (a handshake, a ping)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Delivery:
    """One verified delivery: which items of the source it touches, and whether it is only
    the echo of Tether's own writes (then it triggers nothing)."""

    id: str  # the tracker's delivery id, "" when it sends none: a repeat is refused by it
    event: str  # the tracker's event name, e.g. "issues.labeled" or "jira:issue_updated"
    keys: tuple[str, ...] = ()  # item keys in this source (as Task.key) it touches
    actor: str | None = None  # who made the change, as the tracker names them
    own: bool = False  # made by Tether's account, or only inside its labels or its comment
    reply: Reply | None = None  # the answer the tracker expects, when not a plain 200


@dataclass(frozen=True)
class Hook:
    """A webhook the tracker keeps for Tether: which scope it covers, where it posts."""

    id: str
    scope: str  # the repository, project, ... as the source's options name it
    url: str
    events: tuple[str, ...] = ()


class HooksByHand(TetherError):
    """The tracker's webhooks for Tether are set up by hand; the message says how."""


class Refused(TetherError):
    """A delivery that must change nothing. ``status`` is the HTTP answer: 401 unsigned or
    wrongly signed, 400 malformed, 404 a source that takes no webhooks, 413 too large."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class HookSecrets(Protocol):
    """Secrets a tracker hands over itself (Asana's handshake), kept per webhook."""

    def get(self, hook: str) -> str | None: ...

    def put(self, hook: str, secret: str) -> None: ...

    def expected(self) -> bool:
        """Whether `tether webhooks install` is waiting for handshakes now: one at any
        other time is nobody's install, and is refused."""
        ...


def signature(secret: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``body`` keyed with ``secret``, as GitHub, Jira and Asana sign."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_by(secret: str, body: bytes, given: str | None) -> bool:
    """Whether ``given`` (hex, an optional ``sha256=`` in front) signs ``body`` with
    ``secret``; compared in constant time."""
    if not given or not secret:
        return False
    given = given.removeprefix("sha256=")
    return hmac.compare_digest(signature(secret, body), given.strip().lower())


def check_signed(where: str, headers: Mapping[str, str], body: bytes, name: str,
                 variable: str, hook: str) -> None:
    """Refuse (401) a delivery that header ``name`` does not sign with the secret held in
    ``$variable`` (``hook`` says which webhook holds it, for the message): no secret set
    here, none given, another method than sha256, or no match. Messages name the
    variable, never the secret."""
    secret = os.environ.get(variable, "")
    if not secret:
        raise Refused(401, f"{where}: no secret to check it with: set the environment "
                           f"variable ${variable} to the secret of the {hook}")
    given = header(headers, name)
    if not given:
        raise Refused(401, f"{where} is not signed (no {name}): give the {hook} the secret "
                           f"held in ${variable}")
    method, signed, _ = given.partition("=")
    if signed and method.strip().lower() != "sha256":
        raise Refused(401, f"{where}: signed with {method.strip()[:20]!r}; Tether checks "
                           "sha256 signatures")
    if not signed_by(secret, body, given):
        raise Refused(401, f"{where}: the signature does not match: the {hook}'s secret "
                           f"differs from the one in ${variable}")


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value, whatever the case of its name."""
    lower = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lower), None)
