"""Seeding the sandbox: from a workspace file (``github.yaml``) or generated for tests.

The workspace file, in the seed folder as ``github.yaml``/``github.yml``/``github.json``::

    enterprise: false            # true: serve under /api/v3 like GitHub Enterprise Server
    tokens:                      # default: {good: {login: tether-bot}}
      good: {login: tether-bot, scopes: [repo], write: true}
    users:
      - {login: alice, name: Alice Doe}
    repos:
      - name: acme/shop
        roles: {tether-bot: admin}     # repository roles (default: write; the owner admin)
        labels: [{name: bug, color: d73a4a, description: Something isn't working}]
        milestones: [{title: v1.0, due_on: +30d}]
        issues:
          - title: Checkout fails on Safari     # number: optional, else the next one
            body: Steps to reproduce ...
            user: alice                        # author (default: the repo owner)
            assignees: [alice]
            labels: [bug]
            milestone: v1.0
            state: open                        # or closed (+ state_reason)
            pull_request: false                # true for a PR (+ draft, merged)
            created: -20d                      # ISO 8601, or relative to now: -20d, -3h, +2d
            updated: -12d
            comments: [{user: bob, body: Same here, created: -11d}]

Timestamps default to ``created`` = now and ``updated`` = ``created``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tether.sdk import TetherError, parse_datetime

from .world import Issue, Repo, World

SEED_FILES = ("github.yaml", "github.yml", "github.json")
_RELATIVE = re.compile(r"([+-])(\d+)([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


class _Model(BaseModel):
    """Seed models refuse unknown keys, so typos are reported."""

    model_config = ConfigDict(extra="forbid")


class SeedComment(_Model):
    """A comment in a seeded issue."""

    user: str
    body: str
    created: str | None = None


class SeedIssue(_Model):
    """An issue or pull request in the seed."""

    title: str = Field(min_length=1)
    number: int | None = Field(None, ge=1)
    body: str | None = None
    user: str | None = None
    assignees: list[str] = []
    labels: list[str] = []
    milestone: str | None = None
    state: Literal["open", "closed"] = "open"
    state_reason: Literal["completed", "not_planned", "reopened", "duplicate"] | None = None
    pull_request: bool = False
    draft: bool = False
    merged: str | None = None
    created: str | None = None
    updated: str | None = None
    closed: str | None = None
    comments: list[SeedComment] = []


class SeedLabel(_Model):
    """A repository label."""

    name: str = Field(min_length=1, max_length=50)
    color: str = Field("ededed", pattern=r"^[0-9a-fA-F]{6}$")
    description: str | None = Field(None, max_length=100)


class SeedMilestone(_Model):
    """A repository milestone."""

    title: str
    description: str | None = None
    due_on: str | None = None
    state: Literal["open", "closed"] = "open"


class SeedRepo(_Model):
    """A repository and what it holds."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
    # Roles by login; admin lets a token manage the repository's webhooks.
    roles: dict[str, Literal["read", "triage", "write", "maintain", "admin"]] = {}
    labels: list[SeedLabel] = []
    milestones: list[SeedMilestone] = []
    issues: list[SeedIssue] = []


class SeedToken(_Model):
    """A token the sandbox accepts."""

    login: str
    scopes: list[str] = ["repo"]
    write: bool = True


class SeedUser(_Model):
    """A user with a display name."""

    login: str
    name: str | None = None


class SeedFile(_Model):
    """The whole workspace file."""

    enterprise: bool = False
    tokens: dict[str, SeedToken] = {"good": SeedToken(login="tether-bot")}
    users: list[SeedUser] = []
    repos: list[SeedRepo] = Field(min_length=1)


def find_seed(folder: Path) -> Path:
    """The workspace file in ``folder``; TetherError naming the expected names if none."""
    for name in SEED_FILES:
        if (folder / name).is_file():
            return folder / name
    raise TetherError(f"The GitHub sandbox needs a seed file in {folder}: one of "
                      f"{', '.join(SEED_FILES)} (see tether_github.seed for the format).")


def read_seed(path: Path) -> SeedFile:
    """Parse and validate a workspace file; TetherError locating the first problems."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML too
    except (OSError, yaml.YAMLError) as exc:
        raise TetherError(f"{path}: cannot read the GitHub sandbox seed: {exc}") from None
    try:
        return SeedFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in exc.errors()[:5])
        raise TetherError(f"{path}: invalid GitHub sandbox seed: {problems}") from None


def when(text: str | None, now: datetime) -> datetime | None:
    """ISO 8601, or ``-3d``/``+2h``/``-30m`` relative to ``now``; None stays None."""
    if text is None:
        return None
    match = _RELATIVE.fullmatch(text.strip())
    if match:
        sign, amount, unit = match.groups()
        delta = timedelta(**{_UNITS[unit]: int(amount)})
        return now + delta if sign == "+" else now - delta
    parsed = parse_datetime(text)  # None for empty text, as for none
    return parsed.replace(microsecond=0) if parsed is not None else None


def load_seed(seed: SeedFile, world: World) -> list[str]:
    """Put ``seed`` into ``world``; return the repositories' full names."""
    now = world.now()
    for token, grant in seed.tokens.items():
        world.add_token(token, grant.login, tuple(grant.scopes), grant.write)
    for user in seed.users:
        world.user(user.login, user.name)
    for spec in seed.repos:
        repo = world.add_repo(spec.name)
        for login, role in spec.roles.items():
            world.grant(repo, login, role)
        for label in spec.labels:
            world.create_label(repo, label.name, label.color, label.description)
        for ms in spec.milestones:
            world.add_milestone(repo, ms.title, description=ms.description,
                                due_on=when(ms.due_on, now), state=ms.state)
        for item in spec.issues:
            _add(world, repo, item, now)
    return [spec.name for spec in seed.repos]


def _add(world: World, repo: Repo, item: SeedIssue, now: datetime) -> Issue:
    created = when(item.created, now) or now
    closed = when(item.closed, now) or (created if item.state == "closed" else None)
    issue = world.add_issue(
        repo, item.title, item.user or repo.owner, number=item.number, created=created,
        updated=when(item.updated, now) or max(created, closed or created), body=item.body,
        assignees=list(item.assignees), labels=list(item.labels), state=item.state,
        state_reason=item.state_reason or ("completed" if item.state == "closed" else None),
        closed=closed, closed_by=(item.user or repo.owner) if closed else None,
        pull_request=item.pull_request, draft=item.draft, merged=when(item.merged, now),
        milestone=world.milestone_named(repo, item.milestone).number if item.milestone else None)
    for comment in item.comments:
        world.add_comment(repo, issue, comment.user, comment.body,
                          when(comment.created, now) or issue.created)
    return issue


PEOPLE = ("alice", "bob", "chen")


def generate(world: World, repo: Repo, n: int, start: datetime,
             step: timedelta = timedelta(minutes=10)) -> list[Issue]:
    """``n`` varied items, one every ``step`` from ``start``: issues and PRs, open and closed,
    some assigned, labelled, in a milestone or with a human comment. The first is titled
    "Ünïcødé ✓ 数据" and has no body, assignee, labels or milestone."""
    milestone = world.milestone_named(repo, "v1.0")
    made = []
    for i in range(n):
        created = start + i * step
        pr = i % 7 == 3
        closed = created + step / 2 if i % 5 == 4 else None
        fields: dict = {
            "body": None if i == 0 else f"Details of item {i + 1}.\n\n- [ ] acceptance",
            "assignees": [PEOPLE[i % 3]] if i % 3 and i else [],
            "labels": {1: ["bug"], 2: ["enhancement"]}.get(i % 4, []) if i else [],
            "milestone": milestone.number if i % 6 == 5 else None,
            "pull_request": pr, "draft": pr and i % 2 == 0,
            "state": "closed" if closed else "open", "closed": closed,
            "closed_by": PEOPLE[0] if closed else None,
            "state_reason": "completed" if closed and not pr else None,
            "merged": closed if pr else None,
        }
        title = "Ünïcødé ✓ 数据" if i == 0 else f"Item {i + 1}: {'ship' if pr else 'fix'} part {i}"
        issue = world.add_issue(repo, title, PEOPLE[(i + 1) % 3], created=created,
                                updated=closed or created + step / 3, **fields)
        if i % 9 == 8:
            world.add_comment(repo, issue, PEOPLE[i % 3], "Looking into it.",
                              created + step / 4)
        made.append(issue)
    return made
