"""Incremental-pull cursors: the newest change seen, plus the items seen near it.

Trackers filter by "updated since", often at a coarse precision (Jira: minutes), and a
change can become visible late. So each incremental pull re-reads a small overlap before
the mark; the items already seen there with the same timestamp are dropped, so an
unchanged item is never reported twice, across runs as well (the cursor is stored).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tether.codec import parse_datetime
from tether.model import Task

OVERLAP = timedelta(minutes=2)


def _stamp(text: str) -> datetime:
    """A ``seen`` stamp's time; ValueError when it names none (empty text)."""
    at = parse_datetime(text)
    if at is None:
        raise ValueError(f"not a time: {text!r}")
    return at


@dataclass(frozen=True)
class Watermark:
    at: datetime | None = None
    seen: dict[str, str] = field(default_factory=dict)  # key -> updated (ISO) near `at`

    @classmethod
    def parse(cls, cursor: str | None) -> Watermark:
        """The mark a cursor encodes; a bare ISO timestamp (older cursors) works too.
        Raises ValueError for anything else."""
        if not cursor:
            return cls()
        try:
            if not cursor.startswith("{"):
                return cls(parse_datetime(cursor))
            data = json.loads(cursor)
            seen = {str(k): str(v) for k, v in dict(data.get("seen") or {}).items()}
            for stamp in seen.values():
                _stamp(stamp)  # fail here, not in a later is_new or advance
            at = parse_datetime(data["at"])
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"not a Tether cursor: {cursor[:80]!r} ({exc})") from None
        if at is None:
            raise ValueError(f"not a Tether cursor: {cursor[:80]!r} (no mark)")
        return cls(at, seen)

    @classmethod
    def resume(cls, cursor: str | None) -> Watermark:
        """The mark to pull from: ``parse(cursor)``, except that a cursor this code cannot
        read (damaged, or written by something else) means a full pull, which is always
        correct and leaves a good cursor behind, rather than an error the user must fix."""
        try:
            return cls.parse(cursor)
        except ValueError:
            return cls()

    def since(self) -> datetime | None:
        """Ask the tracker for changes from here on (the mark minus the overlap)."""
        return None if self.at is None else self.at - OVERLAP

    def is_new(self, task: Task) -> bool:
        """False for an item this mark already saw with the same update time (the same
        instant: a tracker printing it in another zone offset does not make it news), and
        for one updated before ``since()``: a tracker filtering more coarsely than the mark
        (Jira: whole minutes) returns those too, but the mark forgot having seen them and
        never promised to re-read them."""
        if task.updated is None or self.at is None:
            return True
        if task.updated < self.at - OVERLAP:
            return False
        stamp = self.seen.get(task.key)
        return stamp is None or parse_datetime(stamp) != task.updated

    def advance(self, tasks: Iterable[Task]) -> Watermark:
        """The mark after seeing ``tasks`` (all pulled, repeats included)."""
        stamps = dict(self.seen)
        newest = self.at
        for task in tasks:
            if task.updated is not None:
                stamps[task.key] = task.updated.isoformat()
                newest = task.updated if newest is None else max(newest, task.updated)
        if newest is None:
            return self
        floor = newest - OVERLAP
        return Watermark(newest, {k: v for k, v in stamps.items() if _stamp(v) >= floor})

    def encode(self) -> str | None:
        if self.at is None:
            return None
        return json.dumps({"at": self.at.isoformat(), "seen": self.seen}, sort_keys=True)
