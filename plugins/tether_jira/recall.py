"""What the connector keeps between passes on Data Center (``Connector.memory``).

Data Center's search returns no issue property (JRASERVER-62898), so the ``tether``
property cannot tell a pull which comment is Tether's. Instead the connector remembers, per
issue, Tether's comment as it last saw it (one comment listing) together with the issue's
``updated`` at that moment, and the comment id the issue's ``tether`` property names. While
an issue's ``updated`` stands still and the state store still knows the same comment, the
comment is taken from memory with no request; once ``updated`` moves (a person commented,
deleted Tether's comment, or Tether wrote), it is listed again.

Memory is a hint to save requests, never a fact to write on: an edit of a remembered comment
that is gone reports it gone, a create still asks Jira for the issue's marker first, and
``recover`` never reads memory. Losing it (or a memory from another site or an older shape)
costs one listing per commented issue on the next pass, nothing else.

Shape (JSON)::

    {"v": 1, "site": "https://jira.example.com",
     "seen": {"OPS-1": {"known": "10001", "comment": "10001", "digest": "…",
                        "updated": "2025-05-05T11:00:00.000+0200"}},
     "markers": {"OPS-1": "10001"}}
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from .annotations import Marker

VERSION = 1


@dataclass(frozen=True)
class Seen:
    """Tether's comment on an issue as last listed (None: it was not there)."""

    marker: Marker | None


class Recall:
    """A view over ``Connector.memory`` that edits it in place (the pipeline saves it)."""

    def __init__(self, memory: dict[str, Any], site: str):
        if (memory.get("v") != VERSION or memory.get("site") != site
                or not isinstance(memory.get("seen"), dict)
                or not isinstance(memory.get("markers"), dict)):
            memory.clear()  # another site, an older shape, or nothing yet: start afresh
            memory.update({"v": VERSION, "site": site, "seen": {}, "markers": {}})
        self._seen: dict[str, Any] = memory["seen"]
        self._markers: dict[str, Any] = memory["markers"]

    def seen(self, key: str, known: str | None, updated: str | None) -> Seen | None:
        """What the last listing of ``key`` found, if it still holds: the issue's ``updated``
        has not moved since, and the state store knew the same comment then as now."""
        entry = self._seen.get(key)
        if updated is None or not isinstance(entry, dict):
            return None
        if entry.get("updated") != updated or entry.get("known") != known:
            return None
        comment = entry.get("comment")
        if not comment:
            return Seen(None)
        return Seen(Marker(str(comment), str(entry.get("digest") or "")))

    def saw(self, key: str, known: str | None, marker: Marker | None,
            updated: str | None) -> None:
        """Note what a listing of ``key`` found, with the issue's ``updated`` at the time."""
        if updated is None:
            self._seen.pop(key, None)
            return
        self._seen[key] = {"known": known, "updated": updated,
                           "comment": marker.comment_id if marker else None,
                           "digest": marker.digest if marker else None}

    def forget(self, key: str) -> None:
        """Tether wrote on ``key``: its ``updated`` moves, the next pass lists it again."""
        self._seen.pop(key, None)

    def marker(self, key: str) -> str | None:
        """The comment id the issue's ``tether`` property names, as last written or read."""
        value = self._markers.get(key)
        return str(value) if value else None

    def marked(self, key: str, comment_id: str | None) -> None:
        if comment_id:
            self._markers[key] = comment_id
        else:
            self._markers.pop(key, None)

    def keep_only(self, keys: Collection[str]) -> None:
        """Drop what is kept of issues a full pull no longer finds in scope."""
        for table in (self._seen, self._markers):
            for key in [k for k in table if k not in keys]:
                del table[key]
