"""What the github connector keeps between passes, in ``Connector.memory`` (plain JSON).

- ``pages``: per issues-list request (its exact URL), the ETag GitHub last answered with, the
  Link to the page after it and whether the page was full. An incremental pull sends it as
  ``If-None-Match``; a 304 (free: GitHub does not count it against the rate limit) means the
  page is what that earlier pass read and handled, so it yields no items. Only the last
  pass's requests are kept.
- ``comments``: per issue whose comments Tether listed, its comment there (id, digest; none
  when the listing found none) and the issue's ``comments`` count and ``updated_at`` when
  Tether last read or wrote it. While the payload still shows both, nothing touched the
  issue's comments since: a person's edit or deletion of a comment, or a new one, moves
  ``updated_at`` (and a deletion or a new one the count), so they need not be listed again.

- ``account``: the login Tether's token acts as, taken from the answer to its last comment
  write (GitHub names the comment's author there: no request of its own). Webhook
  deliveries made by that account are Tether's echo.

A hint to save requests, never a fact to write on (a create still looks first): anything
missing, unreadable or from another version is dropped, which only costs requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tether.sdk import Task, parse_datetime

VERSION = 1


@dataclass(frozen=True)
class IssueState:
    """What an issue payload says of its comments: their count and the issue's last update."""

    comments: int
    updated_at: datetime

    @classmethod
    def of(cls, task: Task) -> IssueState | None:
        """From the payload, or (stored tasks keep no payload) the custom fields it left."""
        source = task.raw if task.raw else task.custom
        return cls.parse(source.get("comments"), source.get("updated_at"))

    @classmethod
    def parse(cls, comments: Any, updated_at: Any) -> IssueState | None:
        if not isinstance(comments, int) or isinstance(comments, bool) or comments < 0:
            return None
        if not isinstance(updated_at, str | datetime):
            return None
        try:
            at = parse_datetime(updated_at)
        except ValueError:
            return None
        return cls(comments, at) if at is not None else None


@dataclass(frozen=True)
class Seen:
    """Tether's comment on one issue, and the issue's state when Tether last saw it."""

    comment_id: str | None  # None: the listing found no comment of Tether's
    digest: str
    state: IssueState


@dataclass(frozen=True)
class PageMark:
    """An issues-list page as GitHub last answered it with 200."""

    etag: str
    next_url: str | None
    full: bool


class Memory:
    """A typed view over ``Connector.memory``; changes go into that dict in place."""

    def __init__(self, data: dict[str, Any]):
        if data.get("version") != VERSION:
            data.clear()
            data["version"] = VERSION
        for part in ("pages", "comments"):
            if not isinstance(data.get(part), dict):
                data[part] = {}
        self.data = data

    # -- issues-list pages -------------------------------------------------------------------

    def page(self, url: str) -> PageMark | None:
        entry = self.data["pages"].get(url)
        if not isinstance(entry, dict) or not isinstance(entry.get("etag"), str):
            return None
        following = entry.get("next")
        return PageMark(entry["etag"], following if isinstance(following, str) else None,
                        entry.get("full") is True)

    def set_pages(self, pages: dict[str, PageMark]) -> None:
        """Keep ``pages`` (this pass's requests) and forget every other."""
        self.data["pages"] = {url: {"etag": m.etag, "next": m.next_url, "full": m.full}
                              for url, m in pages.items()}

    # -- Tether's comment per issue ----------------------------------------------------------

    def seen(self, key: str) -> Seen | None:
        entry = self.data["comments"].get(key)
        if not isinstance(entry, dict):
            return None
        comment_id, digest = entry.get("id"), entry.get("digest")
        state = IssueState.parse(entry.get("comments"), entry.get("updated_at"))
        if not (comment_id is None or isinstance(comment_id, str) and comment_id.isdigit()) \
                or not isinstance(digest, str) or state is None:
            return None
        return Seen(comment_id, digest, state)

    def remember(self, key: str, seen: Seen) -> None:
        self.data["comments"][key] = {
            "id": seen.comment_id, "digest": seen.digest, "comments": seen.state.comments,
            "updated_at": seen.state.updated_at.isoformat()}

    def forget(self, key: str) -> None:
        self.data["comments"].pop(key, None)

    # -- Tether's account ---------------------------------------------------------------------

    def account(self) -> str | None:
        """The login Tether's token acted as when it last wrote a comment, if known."""
        return self.account_in(self.data)

    @staticmethod
    def account_in(data: dict[str, Any]) -> str | None:
        """The account in a connector's memory, read without touching it (a webhook read
        may run beside a pass and must change nothing)."""
        login = data.get("account") if data.get("version") == VERSION else None
        return login if isinstance(login, str) and login else None

    def set_account(self, login: str) -> None:
        self.data["account"] = login

