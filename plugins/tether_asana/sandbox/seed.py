"""The sandbox's seed: a small YAML/JSON description of an Asana workspace.

``asana.yaml`` (or ``asana.yml`` / ``asana.json``) in the seed folder::

    workspace: Northwind                 # name; optional gid: with {name, gid}
    me: Tether Bot                       # the user behind the token "good"
    users: [Ada Lovelace, {name: Grace Hopper, email: grace@example.com}]
    custom_fields:                       # type: number|text|enum|multi_enum|date|people
      - {name: Story Points, type: number}
      - {name: Tether labels, type: multi_enum, options: []}
    tags: [customer]                     # workspace tags that exist up front
    projects:
      - name: Website
        gid: "1200000000000101"          # any record may pin its gid (configs refer to it)
        sections: [Backlog, In Progress, Done]
        custom_fields: [Story Points, Tether labels]   # names or gids of fields above
        tasks:
          - name: Checkout is slow
            notes: Plain-text description.
            section: In Progress
            assignee: Ada Lovelace       # user name, e-mail or gid; omit for none
            creator: Grace Hopper        # default: the first user listed under users
            completed: false
            tags: [customer]
            custom_fields: {Story Points: 3}
            parent: Another task name    # a task seeded earlier
            blocked_by: [Another task name]
            age_days: 30                 # created this long ago (default 30)
            idle_days: 10                # last modified this long ago (default: age_days)
            # or pin both (a dated example): created_at: 2025-05-20T09:00:00Z and
            # modified_at: 2025-06-13T15:00:00Z (default: created); they win over the above
            comments: [{by: Ada Lovelace, text: "Any news?"}]

Users, fields, tags and tasks are referred to by name; names must then be unique.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from tether.sdk import parse_datetime

from ..normalise import iso
from .state import AsanaState, Record

NAMES = ("asana.yaml", "asana.yml", "asana.json")


class SeedError(ValueError):
    """A seed file the sandbox cannot load; the message names the file and the entry."""


def seed_file(folder: Path) -> Path | None:
    """The seed file in ``folder``, if there is one."""
    return next((folder / n for n in NAMES if (folder / n).is_file()), None)


def load_seed(path: Path, state: AsanaState) -> None:
    """Add everything ``path`` describes to ``state``."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SeedError(f"{path}: cannot read the Asana seed: {exc}") from None
    if not isinstance(data, dict):
        raise SeedError(f"{path}: the Asana seed must be a mapping (workspace, projects, ...)")
    try:
        Seeder(state).load(data)
    except (KeyError, StopIteration, TypeError, ValueError) as exc:
        raise SeedError(f"{path}: {exc}") from None


class Seeder:
    """Builds state from seed data, resolving names to gids as it goes."""

    def __init__(self, state: AsanaState):
        self.state = state
        self.tasks: dict[str, str] = {}  # seeded task name -> gid

    def load(self, data: dict[str, Any]) -> None:
        st = self.state
        ws = data.get("workspace")
        if isinstance(ws, dict):
            st.workspace["name"] = str(ws.get("name") or st.workspace["name"])
            if ws.get("gid"):
                st.workspace["gid"] = st.gid(str(ws["gid"]))
        elif ws:
            st.workspace["name"] = str(ws)
        if data.get("me"):
            st.users[st.me]["name"] = str(data["me"])
        for user in data.get("users") or []:
            user = user if isinstance(user, dict) else {"name": user}
            st.add_user(str(user["name"]), user.get("email"), _gid(user))
        for field in data.get("custom_fields") or []:
            st.add_field(str(field["name"]), str(field.get("type", "text")),
                         [str(o) for o in field.get("options") or []], _gid(field),
                         int(field.get("precision", 0)))
        for tag in data.get("tags") or []:
            tag = tag if isinstance(tag, dict) else {"name": tag}
            st.add_tag(str(tag["name"]), gid=_gid(tag), color=tag.get("color"))
        for project in data.get("projects") or []:
            self.project(project)

    def project(self, data: dict[str, Any]) -> None:
        fields = [self.field(f)["gid"] for f in data.get("custom_fields") or []]
        project = self.state.add_project(str(data["name"]), data.get("sections"), fields,
                                         _gid(data))
        for task in data.get("tasks") or []:
            self.task(project["gid"], task)

    def task(self, project: str, data: dict[str, Any]) -> None:
        st = self.state
        age = float(data.get("age_days", 30))
        created = _moment(data.get("created_at")) or st.ago(age)
        stamp = _moment(data.get("modified_at")) or (
            st.ago(float(data["idle_days"])) if "idle_days" in data else created)
        values = {}
        for name, value in (data.get("custom_fields") or {}).items():
            field = self.field(name)
            values[field["gid"]] = self.value(field, value)
        task = st.add_task(
            project, str(data["name"]), notes=str(data.get("notes") or ""),
            section=data.get("section"), assignee=self.user(data.get("assignee")),
            creator=self.user(data.get("creator")) or self.first_user(),
            completed=bool(data.get("completed")), values=values,
            tags=[self.tag(t)["gid"] for t in data.get("tags") or []],
            parent=self.tasks[data["parent"]] if data.get("parent") else None,
            dependencies=[self.tasks[n] for n in data.get("blocked_by") or []],
            created_at=created, modified_at=stamp, gid=_gid(data))
        self.tasks[task["name"]] = task["gid"]
        for comment in data.get("comments") or []:
            author = self.user(comment.get("by")) or st.me
            st.comment(task, author, str(comment["text"]))
        task["modified_at"] = stamp  # seeded history does not count as a recent change

    def user(self, ref: Any) -> str | None:
        if ref in (None, ""):
            return None
        found = self.state.user_ref(str(ref)) or next(
            (g for g, u in self.state.users.items() if u["name"] == ref), None)
        if found is None:
            raise ValueError(f"unknown user {ref!r}; list it under users")
        return found

    def first_user(self) -> str:
        """The first person seeded (tasks are rarely made by the integration's own user)."""
        return next((g for g in self.state.users if g != self.state.me), self.state.me)

    def field(self, ref: Any) -> Record:
        found = self.state.fields.get(str(ref)) or next(
            (f for f in self.state.fields.values() if f["name"] == ref), None)
        if found is None:
            raise ValueError(f"unknown custom field {ref!r}; list it under custom_fields")
        return found

    def tag(self, ref: Any) -> Record:
        found = next((t for t in self.state.tags.values() if t["name"] == ref), None)
        return found or self.state.add_tag(str(ref))

    def value(self, field: Record, value: Any) -> Any:
        """A seed value (names, numbers, dates) as the state stores it (option/user gids)."""
        by_name = {o["name"]: o["gid"] for o in field["options"]}
        if field["kind"] == "enum":
            return by_name[str(value)]
        if field["kind"] == "multi_enum":
            return [by_name[str(v)] for v in value]
        if field["kind"] == "people":
            return [self.user(v) for v in value]
        return str(value) if field["kind"] in ("text", "date") else value


def _moment(value: Any) -> str | None:
    """A pinned timestamp (ISO text or a YAML datetime) in Asana's form; None when absent."""
    moment = parse_datetime(value)
    return iso(moment) if moment else None


def _gid(data: dict[str, Any]) -> str | None:
    return str(data["gid"]) if data.get("gid") else None
