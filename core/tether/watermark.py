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

from .codec import parse_datetime
from .model import Task

OVERLAP = timedelta(minutes=2)


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
        if cursor.startswith("{"):
            data = json.loads(cursor)
            return cls(parse_datetime(data["at"]), dict(data.get("seen", {})))
        return cls(parse_datetime(cursor))

    def since(self) -> datetime | None:
        """Ask the tracker for changes from here on (the mark minus the overlap)."""
        return None if self.at is None else self.at - OVERLAP

    def is_new(self, task: Task) -> bool:
        """False for an item this mark already saw with the same update time."""
        return task.updated is None or self.seen.get(task.key) != task.updated.isoformat()

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
        return Watermark(newest, {k: v for k, v in stamps.items() if parse_datetime(v) >= floor})

    def encode(self) -> str | None:
        if self.at is None:
            return None
        return json.dumps({"at": self.at.isoformat(), "seen": self.seen}, sort_keys=True)
