"""The fake GitLab's state. A seed (``gitlab.yaml``) and a saved snapshot share one shape;
a seed may leave out ids, iids and stamps (the next number; now)::

    tokens: {good: tether-bot}            # token -> username
    users: {dana-lee: Dana Lee}
    projects:
      - path: acme/widgets
        members: {tether-bot: 30}         # username -> access level (20 Reporter, ...)
        issues: [{title: Checkout fails, author: dana-lee, labels: [bug], weight: 3,
                  created: "2025-05-01T09:00:00Z", notes: [{author: sam, body: Same here}]}]
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from tether.sdk import Clock, parse_datetime


@dataclass
class Note:
    id: int
    author: str
    body: str
    created: datetime
    updated: datetime
    system: bool = False  # GitLab's own record of a change ("added ~bug label")


@dataclass
class Issue:
    iid: int
    title: str
    author: str
    created: datetime
    updated: datetime
    description: str = ""
    state: str = "opened"  # or closed
    closed: datetime | None = None
    assignees: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    weight: int | None = None
    notes: list[Note] = field(default_factory=list)


@dataclass
class Project:
    id: int
    path: str
    members: dict[str, int] = field(default_factory=dict)
    issues: dict[int, Issue] = field(default_factory=dict)


class World:
    """Everything the fake GitLab holds; its writes stamp ``clock.now()``."""

    def __init__(self, clock: Clock):
        self.clock = clock
        self.users: dict[str, str] = {}
        self.tokens: dict[str, str] = {}
        self.projects: dict[int, Project] = {}
        self.last_id = 0

    def now(self) -> datetime:
        now = self.clock.now()  # GitLab keeps milliseconds
        return now.replace(microsecond=now.microsecond // 1000 * 1000)

    def project(self, ref: str) -> Project | None:
        """By numeric id or (URL-encoded) path, as the API's ``:id`` names it."""
        path = unquote(ref).lower()
        return next((p for p in self.projects.values()
                     if str(p.id) == path or p.path.lower() == path), None)

    def add_issue(self, project: Project, title: str, author: str, **fields: Any) -> Issue:
        notes = fields.pop("notes", [])
        stamps = {k: parse_datetime(fields.pop(k, None)) for k in ("created", "updated", "closed")}
        created = stamps["created"] or self.now()
        iid = fields.pop("iid", None) or max(project.issues, default=0) + 1
        issue = project.issues[iid] = Issue(iid, title, author, created,
                                            stamps["updated"] or created,
                                            closed=stamps["closed"], **fields)
        for note in notes:
            when = parse_datetime(note.get("created")) or created
            note_id = int(note.get("id") or self.last_id + 1)
            self.last_id = max(self.last_id, note_id)
            issue.notes.append(Note(note_id, note["author"], note["body"], when,
                                    parse_datetime(note.get("updated")) or when,
                                    bool(note.get("system"))))
        return issue

    def touch(self, issue: Issue) -> None:
        issue.updated = self.now()

    def relabel(self, issue: Issue, add: list[str], remove: list[str], by: str) -> None:
        """Labels changed as GitLab does: a system note says what changed, and when."""
        added = [x for x in dict.fromkeys(add) if x not in issue.labels]
        removed = [x for x in dict.fromkeys(remove) if x in issue.labels and x not in added]
        if added or removed:
            issue.labels = [x for x in issue.labels if x not in removed] + added
            said = [f"{verb} {' '.join(f'~{x}' for x in names)} label{'s' * (len(names) > 1)}"
                    for verb, names in (("added", added), ("removed", removed)) if names]
            self.add_note(issue, by, " and ".join(said), system=True)

    def add_note(self, issue: Issue, author: str, body: str, system: bool = False) -> Note:
        self.last_id += 1
        issue.notes.append(note := Note(self.last_id, author, body, self.now(), self.now(),
                                        system))
        self.touch(issue)  # a note touches its issue's updated_at
        return note

    def edit_note(self, issue: Issue, note: Note, body: str) -> None:
        note.body, note.updated = body, self.now()
        self.touch(issue)

    def delete_note(self, issue: Issue, note: Note) -> None:
        issue.notes.remove(note)
        self.touch(issue)

    def dump(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, dict):
                return {str(k): plain(v) for k, v in value.items()}
            if isinstance(value, list):
                return [plain(v) for v in value]
            return value.isoformat() if isinstance(value, datetime) else value

        return plain({"last_id": self.last_id, "tokens": self.tokens, "users": self.users,
                      "projects": [{"id": p.id, "path": p.path, "members": p.members,
                                    "issues": [dataclasses.asdict(i) for i in p.issues.values()]}
                                   for p in self.projects.values()]})

    def load(self, data: dict[str, Any]) -> None:
        """Add a seed's or a snapshot's content; KeyError/TypeError/ValueError if malformed."""
        self.tokens.update(data.get("tokens") or {"good": "tether-bot"})
        self.users.update(data.get("users") or {})
        self.last_id = max(self.last_id, int(data.get("last_id") or 0))
        for raw in data.get("projects") or []:
            pid = int(raw.get("id") or self.last_id + 1)
            self.last_id = max(self.last_id, pid)
            project = self.projects[pid] = Project(pid, raw["path"], dict(raw.get("members") or {}))
            for issue in raw.get("issues") or []:
                self.add_issue(project, **issue)
