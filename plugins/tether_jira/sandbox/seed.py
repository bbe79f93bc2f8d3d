"""Seeding a sandbox Jira site: from a workspace file, or generated for tests.

The workspace file is ``jira.yaml`` (or ``jira.yml`` / ``jira.json``) in the seed folder::

    flavour: cloud                # cloud (default) or datacenter
    token: good                   # the one token the site accepts (default: good)
    time_zone: Europe/Berlin      # the site's zone: REST prints timestamps in it (default UTC)
    now: 2025-05-05T09:00:00Z     # freeze the site's clock here (default: the real clock)
    limits: {dc_max_results: 1000}               # optional, see state.Limits
    rate_limit: {capacity: 100, fill_rate: 10}   # optional token bucket (per second)
    users:                        # the first (or the one with me: true) owns the token
      - {id: 5b10a28, name: alice, display_name: Alice Ops, email: alice@example.com,
         time_zone: America/New_York, me: true}
      # token: another token the site accepts, acting as this user; admin: false (default
      # true) when the user administers neither Jira nor the project, so Jira refuses
      # edits sent with notifyUsers=false
      - {id: 5b10ac8, name: ravi, token: plain, admin: false}
    projects:
      - {key: OPS, name: Operations}             # permissions: [BROWSE_PROJECTS, ...]
    fields:                       # extra custom fields
      - {id: customfield_10050, name: Team, type: string}
    issues:
      - project: OPS              # key: OPS-7 to choose the number
        summary: Fix the login page
        description: plain text
        type: Story               # Epic, Story, Task, Bug, Sub-task
        status: In Progress       # To Do, In Progress, In Review, Done
        assignee: alice           # a user's id, name or email; omit for unassigned
        labels: [frontend]
        components: [Web]
        epic: OPS-1               # Cloud: the parent; Data Center: the Epic Link field
        parent: OPS-2             # a sub-task's parent
        story_points: 3
        custom: {customfield_10050: Platform}
        links: [{type: Blocks, outward: OPS-3}, {type: Relates, inward: OPS-4}]
        comments: [{author: alice, body: Looks good}]
        properties: {some.key: {any: json}}
        created: 2025-04-01T10:00:00Z            # updated defaults to created
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from tether.sdk import Clock, FakeClock, TetherError, parse_datetime

from .api import RateLimit
from .state import ALL_PERMISSIONS, Limits, World

SEED_NAMES = ("jira.yaml", "jira.yml", "jira.json")
UNICODE_TITLE = "Ünïcødé ✓ 数据"


def seed_file(folder: Path) -> Path:
    """The workspace file in ``folder``; TetherError naming the expected names if none."""
    for name in SEED_NAMES:
        if (folder / name).is_file():
            return folder / name
    raise TetherError(f"The Jira sandbox needs a workspace file in {folder}: one of "
                      f"{', '.join(SEED_NAMES)} (see tether_jira/sandbox/seed.py for the format).")


def load(path: Path, clock: Clock | None = None) -> tuple[World, RateLimit | None]:
    """A site built from the workspace file at ``path``."""
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise TetherError(f"{path}: not valid {path.suffix[1:].upper()}: {exc}") from None
    try:
        return build(data or {}, clock)
    except (KeyError, TypeError, ValueError) as exc:
        raise TetherError(f"{path}: {exc}") from None


def build(data: dict[str, Any], clock: Clock | None = None) -> tuple[World, RateLimit | None]:
    """A site from an already-parsed workspace mapping (the format above)."""
    if clock is None:
        start = parse_datetime(data["now"]) if data.get("now") else None
        clock = FakeClock(start) if start else Clock()
    world = World(data.get("flavour", "cloud"), str(data.get("token", "good")), clock,
                  data.get("time_zone", "UTC"))
    for name, value in (data.get("limits") or {}).items():
        if not hasattr(Limits, name):
            raise ValueError(f"limits.{name} is not a known limit")
        setattr(world.limits, name, int(value))
    for u in data.get("users") or [{"id": "557058:tether-sandbox", "name": "tether",
                                    "display_name": "Tether Bot",
                                    "email": "tether@example.com"}]:
        world.add_user(str(u["id"]), u.get("name", u["id"]), u.get("display_name", u["id"]),
                       u.get("email", f"{u['id']}@example.com"), u.get("time_zone", "UTC"),
                       bool(u.get("me")), bool(u.get("admin", True)))
        if u.get("token"):
            world.add_token(str(u["token"]), str(u["id"]))
    for p in data.get("projects") or ():
        perms = frozenset(p["permissions"]) if "permissions" in p else ALL_PERMISSIONS
        world.add_project(p["key"], p.get("name", p["key"]), perms)
    for f in data.get("fields") or ():
        world.add_field(f["id"], f["name"], f.get("type", "string"), f.get("custom"))
    later = [(add_issue(world, item), item) for item in data.get("issues") or ()]
    for key, item in later:  # relations last: they may point at issues defined further down
        relate(world, key, item)
    rate = RateLimit(**data["rate_limit"]) if data.get("rate_limit") else None
    return world, rate


def user_id(world: World, ref: str | None) -> str | None:
    if ref is None:
        return None
    for user in world.users.values():
        if ref in (user.account_id, user.name, user.email):
            return user.account_id
    raise ValueError(f"no user {ref!r}; add it under users")


def add_issue(world: World, item: dict[str, Any]) -> str:
    """Create one issue from a workspace entry (relations are added by ``relate``)."""
    project = item.get("project") or str(item["key"]).rsplit("-", 1)[0]
    if "key" in item:
        world.projects[project].next_number = int(str(item["key"]).rsplit("-", 1)[1])
    created = parse_datetime(item.get("created")) or world.now()
    custom = dict(item.get("custom") or {})
    if item.get("story_points") is not None:
        custom[world.story_points] = float(item["story_points"])
    issue = world.create_issue(
        project, str(item["summary"]), type=item.get("type", "Story"),
        status=item.get("status", "To Do"), created=created,
        updated=parse_datetime(item.get("updated")) or created,
        description=str(item.get("description") or ""),
        assignee=user_id(world, item.get("assignee")),
        reporter=user_id(world, item.get("reporter")) or (world.me.account_id if world.me
                                                          else None),
        labels=list(item.get("labels") or ()), components=list(item.get("components") or ()),
        resolved=parse_datetime(item.get("resolved")), custom=custom,
        properties=dict(item.get("properties") or {}))
    for c in item.get("comments") or ():
        comment = world.comment(issue.key, c["body"], user_id(world, c.get("author")))
        comment.created = comment.updated = issue.updated
    issue.updated = parse_datetime(item.get("updated")) or created  # seeding is not an edit
    return issue.key


def relate(world: World, key: str, item: dict[str, Any]) -> None:
    """Parent, epic and links of one seeded issue."""
    issue = world.issues[key]
    if item.get("parent"):
        issue.parent = item["parent"]
    if item.get("epic"):
        if world.epic_link:
            issue.custom[world.epic_link] = item["epic"]
        else:
            issue.parent = item["epic"]
    for link in item.get("links") or ():
        if "outward" in link:
            world.link(link["type"], key, link["outward"])
        else:
            world.link(link["type"], link["inward"], key)


def generate(world: World, project: str, n: int) -> list[str]:
    """``n`` varied issues in ``project``, updated ten minutes apart, all well in the past.

    The first is an epic holding the next nine; every seventh blocks the next; the third is
    titled ``UNICODE_TITLE`` with no assignee, estimate or description."""
    if project not in world.projects:
        world.add_project(project, f"Project {project}")
    people = list(world.users)
    types, statuses = ("Story", "Task", "Bug"), ("To Do", "In Progress", "In Review", "Done")
    first = world.now() - timedelta(days=2) - timedelta(minutes=10 * n)
    keys = []
    for i in range(n):
        created: datetime = first + timedelta(minutes=10 * i)
        odd = i == 2
        issue = world.create_issue(
            project, UNICODE_TITLE if odd else f"Item {i + 1}: ship part {i % 13} of the plan",
            type="Epic" if i == 0 else types[i % 3], status=statuses[i % 4],
            created=created - timedelta(days=1), updated=created,
            description="" if odd else f"Why: customers asked ({i}).\n\nHow: small steps.",
            assignee=None if odd or not people else people[i % len(people)],
            reporter=people[0] if people else None,
            labels=[] if i % 5 == 0 else [f"team-{'abc'[i % 3]}"],
            components=["API"] if i % 4 == 1 else [],
            custom={} if odd else {world.story_points: float((1, 2, 3, 5, 8)[i % 5])})
        keys.append(issue.key)
    for i, key in enumerate(keys):
        if 1 <= i <= 9:
            relate(world, key, {"epic": keys[0]})
        if i % 7 == 6 and i + 1 < n:
            world.link("Blocks", key, keys[i + 1])
    return keys
