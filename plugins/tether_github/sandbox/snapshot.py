"""Saving and restoring a sandbox World as JSON, so a demo sandbox keeps Tether's writes."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from tether.sdk import parse_datetime

from .world import Comment, Hook, Issue, Label, Milestone, Repo, Token, User, World

VERSION = 1
_DATES = {"created", "updated", "closed", "merged", "due_on"}


def _plain(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _dated(data: dict[str, Any]) -> dict[str, Any]:
    return {k: parse_datetime(v) if k in _DATES and v else v for k, v in data.items()}


def dump(world: World, enterprise: bool = False) -> dict[str, Any]:
    """A JSON-ready copy of everything in ``world`` (and how it is served)."""
    return {
        "version": VERSION,
        "enterprise": enterprise,
        "next_id": world.next_id(),
        "users": [dataclasses.asdict(u) for u in world.users.values()],
        "tokens": {t: dataclasses.asdict(tok) for t, tok in world.tokens.items()},
        "repos": [_plain(dataclasses.asdict(r)) for r in world.repos.values()],
        "comments": [_plain(dataclasses.asdict(c)) for c in world.comments.values()],
    }


def load(data: dict[str, Any], world: World) -> bool:
    """Replace ``world``'s content with a :func:`dump`; ValueError if it is not one.
    Returns whether it was served like GitHub Enterprise Server (under /api/v3)."""
    if data.get("version") != VERSION:
        raise ValueError(f"not a version {VERSION} GitHub sandbox snapshot")
    world.users = {u["login"]: User(**u) for u in data["users"]}
    world.tokens = {t: Token(v["login"], tuple(v["scopes"]), v["write"],
                             bool(v.get("fine_grained", not v["write"])))
                    for t, v in data["tokens"].items()}
    world.repos = {}
    for raw in data["repos"]:
        repo = Repo(raw["id"], raw["owner"], raw["name"], roles=dict(raw.get("roles") or {}))
        repo.labels = {k: Label(**v) for k, v in raw["labels"].items()}
        repo.milestones = {int(k): Milestone(**_dated(v)) for k, v in raw["milestones"].items()}
        repo.issues = {int(k): Issue(**_dated(v)) for k, v in raw["issues"].items()}
        # Hooks (and their secrets: the sandbox's own) came later; older snapshots have none.
        repo.hooks = {int(k): Hook(**_dated(v)) for k, v in (raw.get("hooks") or {}).items()}
        world.repos[repo.full_name.lower()] = repo
    world.comments = {c["id"]: Comment(**_dated(c)) for c in data["comments"]}
    world.reset_ids(int(data["next_id"]))
    return bool(data.get("enterprise", False))


def save(world: World, path: Path, enterprise: bool = False) -> None:
    """Write the snapshot atomically: a crash leaves the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(dump(world, enterprise), out, ensure_ascii=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
