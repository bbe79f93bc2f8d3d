"""What the gitlab connector keeps between passes, in ``Connector.memory`` (plain JSON).

``notes``: per issue carrying Tether's note, that note (id, digest) and the issue's
``user_notes_count`` and ``updated_at`` when Tether last listed its notes. While the issue
payload still shows both, no note was added, deleted or edited since, so they need not be
listed again: GitLab saves a note (created or edited) with ``after_save :touch_noteable``,
and a deletion changes the count.

One catch: GitLab's Issue includes ``ThrottledTouch``, so that touch moves ``updated_at``
only when the issue was last updated more than a minute before (``TOUCH_INTERVAL``). An edit
within a minute of the issue's last update leaves no trace in the payload. So a listing is
remembered only when GitLab's own clock (the answer's ``Date``) shows it was made more than
that minute after the issue's ``updated_at``: any later edit then does move it.

A hint to save requests, never a fact to write on (a create still looks first): anything
missing, unreadable or from another version is dropped, which only costs requests. Every
write to an issue forgets it, so the next pass lists its notes once more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from tether.sdk import Task, parse_datetime

VERSION = 1
# GitLab's ThrottledTouch::TOUCH_INTERVAL, and a margin for the Date header's whole seconds
# (stamped after the notes were read) and for clock skew between GitLab's hosts.
TOUCH_INTERVAL = timedelta(minutes=1)
MARGIN = timedelta(seconds=10)


@dataclass(frozen=True)
class IssueState:
    """What an issue payload says of its notes: the user notes' count and its last update."""

    notes: int
    updated_at: datetime

    @classmethod
    def of(cls, task: Task) -> IssueState | None:
        """From the payload, or (stored tasks keep no payload) the custom fields it left."""
        if task.raw:
            return cls.parse(task.raw.get("user_notes_count"), task.raw.get("updated_at"))
        return cls.parse(task.custom.get("notes"), task.custom.get("updated_at"))

    @classmethod
    def parse(cls, notes: Any, updated_at: Any) -> IssueState | None:
        if not isinstance(notes, int) or isinstance(notes, bool) or notes < 0 \
                or not isinstance(updated_at, str):
            return None
        try:
            at = parse_datetime(updated_at)
        except ValueError:
            return None
        return cls(notes, at) if at is not None else None

    def settled_by(self, headers: Mapping[str, str]) -> bool:
        """Whether the answer carrying ``headers`` came late enough after the issue's last
        update that any later note edit moves ``updated_at`` (see the module's catch)."""
        try:
            answered = parsedate_to_datetime(headers.get("Date") or "")
        except (TypeError, ValueError):
            return False
        if answered.tzinfo is None:
            return False
        return answered - self.updated_at > TOUCH_INTERVAL + MARGIN


@dataclass(frozen=True)
class Seen:
    """Tether's note on one issue, and the issue's state when Tether last listed it."""

    note_id: str
    digest: str
    state: IssueState


class Memory:
    """A typed view over ``Connector.memory``; changes go into that dict in place."""

    def __init__(self, data: dict[str, Any]):
        if data.get("version") != VERSION:
            data.clear()
            data["version"] = VERSION
        if not isinstance(data.get("notes"), dict):
            data["notes"] = {}
        self.notes: dict[str, Any] = data["notes"]

    def seen(self, iid: str) -> Seen | None:
        entry = self.notes.get(iid)
        if not isinstance(entry, dict):
            return None
        note_id, digest = entry.get("id"), entry.get("digest")
        state = IssueState.parse(entry.get("notes"), entry.get("updated_at"))
        if not isinstance(note_id, str) or not note_id.isdigit() \
                or not isinstance(digest, str) or state is None:
            return None
        return Seen(note_id, digest, state)

    def remember(self, iid: str, seen: Seen) -> None:
        self.notes[iid] = {"id": seen.note_id, "digest": seen.digest,
                           "notes": seen.state.notes,
                           "updated_at": seen.state.updated_at.isoformat()}

    def forget(self, iid: str) -> None:
        self.notes.pop(iid, None)

    def keep_only(self, iids: set[str]) -> None:
        """Drop issues not among ``iids`` (gone from the store, or out of scope)."""
        for iid in [k for k in self.notes if k not in iids]:
            del self.notes[iid]
