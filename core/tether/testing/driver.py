"""What the conformance suite needs from each tracker's sandbox: one driver per flavour.

A plugin ships a driver as a callable ``make_driver(tmp_path) -> Driver`` and declares it
under the ``tether.testing`` entry-point group; the suite runs every test against every
installed driver (see ``tether.testing``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from tether.clock import FakeClock
from tether.connector import Connector
from tether.sandbox import LoggedRequest, SandboxServer


class Driver(Protocol):
    server: SandboxServer  # already started; the suite stops it
    retry_clock: FakeClock  # the connector's clock: retries sleep on it, never for real
    setup_calls: int  # requests a full pull makes besides list pages (serverInfo, /field, ...)
    unicode_key: str  # key of a seeded item titled "Ünïcødé ✓ 数据" with no assignee, no estimate

    def seed(self, n: int) -> list[str]:
        """Create ``n`` items (one of them the unicode/null one), updated well in the past."""

    def now(self) -> datetime:
        """The tracker's own time: what its writes stamp as ``updated``."""

    def edit(self, key: str) -> None:
        """Change an item as a person would (new title), stamping it updated *now*."""

    def labels(self, key: str) -> set[str]:
        """The item's labels (or tags, or enum values) as the tracker stores them."""

    def comments(self, key: str) -> list[str]:
        """The item's comment bodies, as plain text, oldest first."""

    def person_removes_label(self, key: str, label: str) -> None:
        """Remove ``label`` from the item as a person would, in the tracker's own state."""

    def person_deletes_comment(self, key: str, comment_id: str) -> None:
        """Delete comment ``comment_id`` of the item as a person would."""

    def stored_comments(self, key: str) -> list[object]:
        """The item's comment bodies exactly as the tracker stores them (ADF dict, wiki or
        Markdown string, Asana html_text), oldest first: what an injection test inspects."""

    def is_comment_post(self, request: LoggedRequest) -> bool:
        """Whether ``request`` (from ``server.log``) creates a comment: the etiquette suite
        drops the answer to the first one, as a lost network response would."""

    def mention_handle(self) -> str:
        """A handle of a seeded user as the tracker mentions them (accountId, username,
        login or gid)."""

    def mentioned(self, key: str) -> list[str]:
        """Handles of the people the item's comments mention, as the tracker would notify
        them (ADF mention nodes, [~user], @login, Asana profile links), oldest first."""

    def connector(self, token: str | None = "good") -> Connector:
        """A connector named "src" aimed at the sandbox, with ``retry_clock`` as its clock.
        It sets the token variable to ``token`` first (``None``: unsets it); the sandbox
        accepts only "good"."""

    def missing_scope_connector(self) -> Connector:
        """A connector aimed at a project/repository that does not exist."""

    def pages(self, n: int) -> int:
        """The fewest list-page requests the real API allows for ``n`` items."""

    @property
    def token_variable(self) -> str:
        """Name of the environment variable the connector reads its token from."""


def writes(drv: Driver) -> int:
    """Write requests the sandbox has received."""
    return sum(1 for r in drv.server.log if r.method in ("POST", "PUT", "PATCH", "DELETE"))
