"""Incremental-pull cursors: the newest change seen, when the pull ran, and the items seen
near the point the next pull starts from.

Trackers filter by "updated since", often at a coarse precision (Jira: minutes), and a
change can become visible late. So each incremental pull re-reads an overlap; the items
already seen there with the same timestamp are dropped, so an unchanged item is never
reported twice, across runs as well (the cursor is stored).

The overlap is needed only before the moment the last pull ran: a change visible then was
listed, one that became visible later was stamped at most ``OVERLAP`` before that moment.
So the next pull starts from ``max(at, pulled_at) - OVERLAP``, where ``pulled_at`` is the
*tracker's* time at the pull (from its responses' ``Date`` header, see ``tracker_time``),
never this machine's: a skewed local clock would skip changes. Without it (older cursors,
a tracker that sends no date) the mark is the newest stamp seen, as it always was; after a
burst of writes (Tether's own first sync) that meant every later pass re-listed the burst
until something newer moved the mark.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from tether.codec import parse_datetime
from tether.model import Task

OVERLAP = timedelta(minutes=2)


def _stamp(text: str) -> datetime:
    """A ``seen`` stamp's time; ValueError when it names none (empty text)."""
    at = parse_datetime(text)
    if at is None:
        raise ValueError(f"not a time: {text!r}")
    return at


def _floor(at: datetime, pulled_at: datetime | None) -> datetime:
    """Where the next pull starts, ``at`` seen by a pull run at ``pulled_at``."""
    return (at if pulled_at is None else max(at, pulled_at)) - OVERLAP


@dataclass(frozen=True)
class Watermark:
    """Where the next incremental pull starts, and what it need not report again.

    ``at``: the newest update stamp seen. ``pulled_at``: the tracker's time when a pull
    began (None: unknown); every change stamped more than ``OVERLAP`` before it was visible
    to that pull. ``seen``: key -> update stamp (ISO) of the items seen from ``since()`` on."""

    at: datetime | None = None
    seen: dict[str, str] = field(default_factory=dict)
    pulled_at: datetime | None = None

    @classmethod
    def parse(cls, cursor: str | None) -> Watermark:
        """The mark a cursor encodes; a bare ISO timestamp or a cursor without ``pulled_at``
        (older cursors) works too. Raises ValueError for anything else."""
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
            pulled = data.get("pulled_at")
            pulled_at = None if pulled is None else _stamp(str(pulled))
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"not a Tether cursor: {cursor[:80]!r} ({exc})") from None
        if at is None:
            raise ValueError(f"not a Tether cursor: {cursor[:80]!r} (no mark)")
        return cls(at, seen, pulled_at)

    @classmethod
    def resume(cls, cursor: str | None) -> Watermark:
        """The mark to pull from: ``parse(cursor)``, except that a cursor this code cannot
        read (damaged, or written by something else) means a full pull, which is always
        correct and leaves a good cursor behind, rather than an error the user must fix."""
        try:
            return cls.parse(cursor)
        except ValueError:
            return cls()

    @staticmethod
    def tracker_time(date: str | None, elapsed: timedelta | None = None) -> datetime | None:
        """The tracker's clock, at the latest, when it received a request: the response's
        HTTP ``Date`` header (whole seconds, stamped once the answer was ready) less how long
        the request took (``elapsed``, measured here: a duration, which skew does not touch),
        floored to the second. None when the header is missing or unreadable."""
        if not date:
            return None
        try:
            answered = parsedate_to_datetime(date)
        except (TypeError, ValueError, IndexError):
            return None
        if answered.tzinfo is None:  # "-0000" or an obsolete form: HTTP dates are GMT
            answered = answered.replace(tzinfo=UTC)
        took = math.ceil(elapsed.total_seconds()) if elapsed and elapsed > timedelta(0) else 0
        return answered.astimezone(UTC).replace(microsecond=0) - timedelta(seconds=took)

    def since(self) -> datetime | None:
        """Ask the tracker for changes from here on: the later of the newest stamp and the
        last pull's time, less the overlap."""
        return None if self.at is None else _floor(self.at, self.pulled_at)

    def is_new(self, task: Task) -> bool:
        """False for an item this mark already saw with the same update time (the same
        instant: a tracker printing it in another zone offset does not make it news), and
        for one updated before ``since()``: a tracker filtering more coarsely than the mark
        (Jira: whole minutes) returns those too, but they were visible to an earlier pull,
        which reported them."""
        since = self.since()
        if task.updated is None or since is None:
            return True
        if task.updated < since:
            return False
        stamp = self.seen.get(task.key)
        return stamp is None or parse_datetime(stamp) != task.updated

    def advance(self, tasks: Iterable[Task], pulled_at: datetime | None = None) -> Watermark:
        """The mark after seeing ``tasks`` (all pulled, repeats included) in a pull that
        began at ``pulled_at`` by the tracker's clock (None: unknown; see ``tracker_time``).

        Once every change stamped before ``pulled_at - OVERLAP`` was visible to a pull, that
        stays true, so a later pull's time replaces the kept one only where it lets the next
        pull skip items it would re-list; else the cursor stays as it was, and a quiet pull
        returns the cursor it was given (conditional requests and memories keyed on it keep
        working). A time earlier than the kept one changes nothing: the kept one holds."""
        stamps = dict(self.seen)
        newest = self.at
        for task in tasks:
            if task.updated is not None:
                stamps[task.key] = task.updated.isoformat()
                newest = task.updated if newest is None else max(newest, task.updated)
        if newest is None:
            return self
        times = {k: _stamp(v) for k, v in stamps.items()}
        kept = self.pulled_at
        if pulled_at is not None:
            old, new = _floor(newest, kept), _floor(newest, pulled_at)
            if kept is None or new > old and any(old <= t < new for t in times.values()):
                kept = pulled_at
        floor = _floor(newest, kept)
        return Watermark(newest, {k: stamps[k] for k, t in times.items() if t >= floor}, kept)

    def encode(self) -> str | None:
        if self.at is None:
            return None
        data: dict[str, object] = {"at": self.at.isoformat(), "seen": self.seen}
        if self.pulled_at is not None:
            data["pulled_at"] = self.pulled_at.isoformat()
        return json.dumps(data, sort_keys=True)


class PullDate:
    """The tracker's time when a pull's first request reached it (see
    ``Watermark.tracker_time``): ``begin()`` before the pull, then every answer goes to
    ``answered`` (or, on a requests session, to ``hook``); ``at`` is the first one's time,
    None when it sent no Date header."""

    def __init__(self) -> None:
        self.at: datetime | None = None
        self._waiting = False

    def begin(self) -> None:
        self.at, self._waiting = None, True

    def answered(self, date: str | None, elapsed: timedelta | None) -> None:
        if self._waiting:
            self._waiting = False
            self.at = Watermark.tracker_time(date, elapsed)

    def hook(self, response: Any, *args: Any, **kwargs: Any) -> None:
        """A requests response hook: ``session.hooks["response"].append(dated.hook)``."""
        self.answered(response.headers.get("Date"), response.elapsed)
