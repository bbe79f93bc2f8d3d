"""Saving and restoring a sandbox Jira site as JSON, so a demo sandbox keeps Tether's writes.

The snapshot holds what a seed can set and what requests can change: users, projects,
fields, issues (with comments and properties), links, admin webhooks (with their secrets:
the sandbox's own), limits, the rate limit's settings and a frozen clock's time. Issue
types, statuses and link types are fixed in every site."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

from tether.sdk import Clock, FakeClock, parse_datetime

from .http import RateLimit
from .state import Comment, FieldDef, Issue, Limits, Link, Project, User, WebHook, World

VERSION = 1
_ISSUE_DATES = ("created", "updated", "resolved")


def _plain(obj: Any) -> Any:
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, set | frozenset):
        return sorted(_plain(v) for v in obj)  # sorted, so snapshots diff cleanly
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def dump(world: World, rate_limit: RateLimit | None = None) -> dict[str, Any]:
    """A JSON-ready copy of ``world`` (and the settings of its rate limit, if any)."""
    frozen = world.clock.now().isoformat() if isinstance(world.clock, FakeClock) else None
    return {
        "version": VERSION,
        "flavour": world.flavour,
        "token": world.token,
        "time_zone": world.time_zone,
        "now": frozen,  # a seed's frozen clock stays frozen where it stood; else real time
        "limits": dataclasses.asdict(world.limits),
        "rate_limit": None if rate_limit is None else {
            "capacity": rate_limit.capacity, "fill_rate": rate_limit.fill_rate,
            "interval": rate_limit.interval},
        "users": [_plain(dataclasses.asdict(u)) for u in world.users.values()],
        "me": world.me.account_id if world.me else None,
        "tokens": dict(world.tokens),
        "projects": [_plain(dataclasses.asdict(p)) for p in world.projects.values()],
        "fields": [dataclasses.asdict(f) for f in world.fields.values()],
        "story_points": world.story_points,
        "epic_link": world.epic_link,
        "issues": [_plain(dataclasses.asdict(i)) for i in world.issues.values()],
        "links": [dataclasses.asdict(link) for link in world.links],
        "hooks": [_plain(dataclasses.asdict(h)) for h in world.hooks.values()],
        "ids": dict(world._ids),
    }


def load(data: dict[str, Any]) -> tuple[World, RateLimit | None]:
    """The site a :func:`dump` describes; ValueError (or KeyError, TypeError) if it is not one."""
    if data.get("version") != VERSION:
        raise ValueError(f"not a version {VERSION} Jira sandbox snapshot")
    clock = FakeClock(parse_datetime(data["now"])) if data.get("now") else Clock()
    world = World(data["flavour"], str(data["token"]), clock, data.get("time_zone", "UTC"))
    world.limits = Limits(**data["limits"])
    world.users = {u["account_id"]: _user(u) for u in data["users"]}
    world.me = world.users[data["me"]] if data.get("me") else None
    world.tokens = {str(t): str(a) for t, a in (data.get("tokens") or {}).items()}
    world.projects = {}
    for raw in data["projects"]:
        world.projects[raw["key"]] = Project(**{**raw, "permissions": frozenset(
            raw["permissions"])})
    world.fields = {f["id"]: FieldDef(**f) for f in data["fields"]}
    world.story_points = data["story_points"]
    world.epic_link = data.get("epic_link")
    world.issues = {}
    for raw in data["issues"]:
        comments = [Comment(**{**c, "created": parse_datetime(c["created"]),
                               "updated": parse_datetime(c["updated"])})
                    for c in raw.get("comments") or []]
        dates = {name: parse_datetime(raw.get(name)) for name in _ISSUE_DATES}
        world.issues[raw["key"]] = Issue(**{**raw, **dates, "comments": comments})
    world.links = [Link(**link) for link in data["links"]]
    # Webhooks came later: older snapshots have none.
    world.hooks = {int(h["id"]): WebHook(**{**h, "updated": parse_datetime(h.get("updated"))})
                   for h in data.get("hooks") or []}
    world._ids.update({k: int(v) for k, v in data["ids"].items()})
    rate = RateLimit(**data["rate_limit"]) if data.get("rate_limit") else None
    return world, rate


def _user(raw: dict[str, Any]) -> User:
    cap = raw.get("permissions")
    return User(**{**raw, "permissions": None if cap is None else frozenset(cap)})


def save(world: World, rate_limit: RateLimit | None, path: Path) -> None:
    """Write the snapshot atomically: a crash leaves the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(dump(world, rate_limit), out, ensure_ascii=False, default=_plain_value)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _plain_value(obj: Any) -> Any:
    """Dates a YAML seed put in custom fields or properties are kept as ISO text."""
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    raise TypeError(f"{type(obj).__name__} is not JSON")
