"""What changed in a project since the last pass (Asana's Events API), and what Tether last
saw of its own story on each task (kept in ``Connector.memory``): together they let a quiet
pass skip every task's story list.

``GET /events?resource=<project>&sync=<token>`` answers the events since the token was made
(at most 100 a call; ``has_more`` says there are more) and a new ``sync`` token; events bubble
up from the project's tasks and their stories. A missing, unknown or expired token (they live
at most 24 hours) answers 412 with a fresh ``sync`` token in the body: then everything is read
once. Asana delivers events at most once, so the memory stays a hint: a create still looks
for an existing story, an edit of a deleted story reports it gone, and ``recover`` never
skips (developers.asana.com/reference/getevents; research/tracker-apis.md 3.1, 3.6).
The events also name the tasks that left a project (``moved``), for the labels and follows
noted in ``memory["shown"]`` (see tether_asana.shown).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tether.sdk import CurrentAnnotation

from .client import AsanaClient
from .failures import AsanaHTTPError, Where

SYNC = "sync"  # memory: project gid -> the sync token to ask with next
STORIES = "stories"  # memory: task gid -> [story gid, digest] of Tether's story, or None
MAX_CALLS = 10  # beyond 1,000 events one fresh read is cheaper than replaying them
Event = dict[str, Any]
Seen = dict[str, list[str] | None]


@dataclass(frozen=True)
class Feed:
    """A project's events since the token; ``complete`` False when they cannot be known (no
    token, an expired or unknown one, too many): read everything, ask with ``sync`` next."""

    events: list[Event]
    sync: str | None
    complete: bool


def changes(client: AsanaClient, project: str, token: str | None, where: Where) -> Feed:
    """Every event on ``project`` since ``token``, with retries (asking again with the same
    token is safe: Asana answers the same events)."""
    def unit() -> Feed:
        events: list[Event] = []
        sync = token
        for _ in range(MAX_CALLS):
            if sync is None:
                break
            try:
                body = client.send("GET", "/events", {"resource": project, "sync": sync})
            except AsanaHTTPError as exc:
                if exc.status == 412:  # "Sync token invalid or too old": a fresh one inside
                    return Feed([], _token(exc.body), False)
                raise
            events += [e for e in body.get("data") or [] if isinstance(e, dict)]
            sync = _token(body) or sync
            if not body.get("has_more"):
                return Feed(events, sync, True)
        return Feed([], _start(client, project), False)

    return client.retrying(unit, where)


def _start(client: AsanaClient, project: str) -> str | None:
    """A token for now: a request without one answers 412 with a fresh token."""
    try:
        body = client.send("GET", "/events", {"resource": project})
    except AsanaHTTPError as exc:
        if exc.status == 412:
            return _token(exc.body)
        raise
    return _token(body)


def _token(body: dict[str, Any]) -> str | None:
    sync = body.get("sync")
    return sync if isinstance(sync, str) and sync else None


def tokens(memory: dict[str, Any]) -> dict[str, str]:
    """The sync token per project, kept in ``memory`` (replaced when it is not a mapping)."""
    found = memory.get(SYNC)
    if not isinstance(found, dict):
        found = memory[SYNC] = {}
    return found


def stories(memory: dict[str, Any]) -> Seen:
    """Tether's story per task as last seen, kept in ``memory``; malformed entries dropped."""
    found = memory.get(STORIES)
    if not isinstance(found, dict):
        found = memory[STORIES] = {}
    for key, entry in list(found.items()):
        if entry is not None and not (isinstance(entry, list) and len(entry) == 2
                                      and all(isinstance(x, str) for x in entry)):
            del found[key]
    return found


def shown(labels: frozenset[str], entry: list[str] | None) -> CurrentAnnotation:
    """What a task shows, its story taken from memory."""
    if entry is None:
        return CurrentAnnotation(labels)
    return CurrentAnnotation(labels, None, entry[0], entry[1])


def touched(event: Event, seen: Seen, by_story: dict[str, str]) -> str | None:
    """The task whose Tether story ``event`` may have changed, or None: a comment added,
    changed or removed (but not Tether's own story being added, which memory already
    holds), or the task deleted, undeleted, added to or removed from a project or section.
    System stories (tag added, renamed, ...) and field changes never change a comment."""
    resource, parent = _ref(event.get("resource")), _ref(event.get("parent"))
    action = event.get("action")
    kind = resource.get("resource_type") or event.get("type")
    gid = resource.get("gid")
    if kind == "story":
        task = by_story.get(gid or "")
        if task is not None:
            entry = seen.get(task)
            mine = action == "added" and entry is not None and entry[0] == gid
            return None if mine else task
        subtype = resource.get("resource_subtype")
        if parent.get("resource_type") == "task" and subtype in (None, "comment_added"):
            return parent.get("gid")
        return None  # a system story, or a change to a comment that is not Tether's
    if kind == "task" and action in ("added", "removed", "deleted", "undeleted"):
        return gid
    return None


def moved(event: Event) -> str | None:
    """The task ``event`` says was added to, removed from or deleted from a project (or
    undeleted), or None; section moves stay inside the project and are not moves."""
    resource, parent = _ref(event.get("resource")), _ref(event.get("parent"))
    kind = resource.get("resource_type") or event.get("type")
    if kind == "task" and event.get("action") in ("added", "removed", "deleted", "undeleted") \
            and parent.get("resource_type") != "section":
        gid = resource.get("gid")
        return str(gid) if gid else None
    return None


def _ref(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
