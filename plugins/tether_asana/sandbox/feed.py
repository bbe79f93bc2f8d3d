"""The Asana sandbox's event stream, as ``GET /events`` serves it: every change recorded as an
event (EventResponse in the OpenAPI file: user, resource, type, action, parent, created_at and,
for ``changed``, change), kept 24 hours, and the sync tokens that page through it.

As Asana documents (developers.asana.com/reference/getevents): events bubble up, so a
project's stream holds its tasks' events and their stories'; a call answers at most 100
events and ``has_more``; a token is bound to its resource and lives at most 24 hours; asking
without one, or with an unknown or expired one, answers 412 with a fresh token; asking again
with the same token answers the same events.
"""

from __future__ import annotations

import uuid
from typing import Any

from tether.sdk import Clock

Record = dict[str, Any]
KEEP = 24 * 3600.0  # seconds an event, and a sync token, lives
PAGE = 100  # "Asana limits a single sync token to 100 events"
SYNC_MESSAGE = ("Sync token invalid or too old. If you are attempting to keep resources in "
                "sync, you must fetch the full dataset for this query now and use the new "
                "sync token for the next sync.")
# opt_fields the operation offers (its enum in the OpenAPI file)
EVENT_FIELDS = {"action", "change", "created_at", "parent", "resource", "type", "user"}


class Feed:
    """Events oldest first, each with a sequence number and the gids whose streams hold it."""

    def __init__(self, clock: Clock):
        self.clock = clock
        self.events: list[Record] = []
        self.syncs: dict[str, Record] = {}  # token -> {"resource", "after" (seq), "at" (ts)}
        self.seq = 0
        self.dropped = 0  # events up to this sequence number are no longer kept

    def record(self, action: str, resource: Record, user: Record | None, scope: list[str],
               parent: Record | None = None, change: Record | None = None, at: str = ""
               ) -> Record:
        """One event, visible on the streams of the gids in ``scope``; returns it."""
        self.seq += 1
        event: Record = {"seq": self.seq, "ts": self._now(), "scope": list(dict.fromkeys(scope)),
                         "user": user, "created_at": at, "action": action,
                         "resource": resource, "type": resource["resource_type"],
                         "parent": parent}
        if action == "changed":  # "only present when the value of the property action ... is changed"
            event["change"] = change
        self.events.append(event)
        self._forget()
        return event

    def issue(self, resource: str, after: int | None = None) -> str:
        """A new sync token on ``resource``: its next call answers events after ``after``
        (default: now)."""
        token = uuid.uuid4().hex
        self.syncs[token] = {"resource": resource, "after": self.seq if after is None else after,
                             "at": self._now()}
        return token

    def since(self, token: str | None, resource: str) -> tuple[list[Record], str, bool] | None:
        """(events, next token, has_more) after ``token``; None when it is missing, unknown,
        bound to another resource or expired (the caller answers 412)."""
        sync = self.syncs.get(token or "")
        if sync is None or sync["resource"] != resource or sync["after"] < self.dropped \
                or self._now() - sync["at"] > KEEP:
            return None
        found = [e for e in self.events if e["seq"] > sync["after"] and resource in e["scope"]]
        page, more = found[:PAGE], len(found) > PAGE
        return page, self.issue(resource, page[-1]["seq"] if more else None), more

    def _forget(self) -> None:
        cut = self._now() - KEEP
        while self.events and self.events[0]["ts"] < cut:
            self.dropped = self.events.pop(0)["seq"]
        if len(self.syncs) > 1000:
            self.syncs = {t: s for t, s in self.syncs.items() if s["at"] >= cut}

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def to_json(self) -> Record:
        return {"events": self.events, "syncs": self.syncs, "seq": self.seq,
                "dropped": self.dropped}

    def load(self, data: Record | None) -> None:
        """Restore what ``to_json`` saved (a state saved before events existed has none)."""
        if data:
            self.events, self.syncs = list(data["events"]), dict(data["syncs"])
            self.seq, self.dropped = int(data["seq"]), int(data["dropped"])


def view(event: Record, fields: list[str] | None) -> Record:
    """An event as GET /events shows it (compact resources, with names where they have one)."""
    out = {k: event[k] for k in ("user", "created_at", "action", "resource", "type", "parent")}
    if "change" in event:
        out["change"] = event["change"]
    if not fields:
        return out
    heads = {f.split(".")[0] for f in fields}
    return {k: v for k, v in out.items() if k in heads}
