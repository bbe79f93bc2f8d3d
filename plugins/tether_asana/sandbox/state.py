"""The Asana sandbox's world: one workspace, its users, projects, custom fields, tags, tasks
and stories, as plain JSON-ready dicts, and every change a person or the API can make.

Changes follow the real service's bookkeeping: each change that Asana records as a story
(rename, tag added or removed, custom field changed, completion, comment) adds that story
and bumps the task's ``modified_at`` (the OpenAPI ``modified_at`` description: "story is
created on a task ... custom field value is changed"); editing a comment does not (it is
not in that list). Commenting makes the author a follower (collaborator), as in the app.
Every change is also an event on the streams GET /events serves (see sandbox.feed): on the
task and its projects (and its parent task's), with the story it adds, if any; each event
is also handed to the ``listeners`` (the webhooks, sandbox.hooks). The webhooks themselves
(``webhooks``: gid -> record, its secret included) are kept with the state.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from tether.sdk import Clock

from ..normalise import iso
from .feed import Feed

FIELD_KINDS = ("number", "text", "enum", "multi_enum", "date", "people")
ACCESS_LEVELS = ("viewer", "commenter", "editor", "admin")  # a project member's, ascending
Record = dict[str, Any]


class StateError(ValueError):
    """A change the service would refuse; the message is the service's error text."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class AsanaState:
    """Everything the sandbox serves; ``me`` is the user the token "good" belongs to (while
    a request runs: the user of the token it came with)."""

    def __init__(self, clock: Clock | None = None, workspace: str = "Sandbox workspace"):
        self.clock = clock or Clock()
        self.next_gid = 1200000000000001  # real gids are 16-digit decimal strings
        self.workspace: Record = {"gid": self.gid(), "name": workspace}
        self.users: dict[str, Record] = {}
        self.tokens: dict[str, str] = {}  # token -> user gid
        self.projects: dict[str, Record] = {}
        self.fields: dict[str, Record] = {}
        self.tags: dict[str, Record] = {}
        self.tasks: dict[str, Record] = {}
        self.stories: dict[str, Record] = {}
        self.feed = Feed(self.clock)
        self.webhooks: dict[str, Record] = {}  # gid -> webhook (sandbox.hooks), in gid order
        # Called with each event as recorded and the gids whose streams hold it.
        self.listeners: list[Callable[[Record, list[str]], None]] = []
        self.me = self.add_user("Tether Bot", "tether-bot@example.com")["gid"]
        self.tokens["good"] = self.me

    # -- identity and time ---------------------------------------------------------------

    def gid(self, pinned: str | None = None) -> str:
        """A new gid, or ``pinned`` (a seed's own), keeping later gids above it."""
        if pinned:
            tables = (self.users, self.projects, self.fields, self.tags, self.tasks, self.stories)
            if any(pinned in t for t in tables) or pinned == self.workspace["gid"]:
                raise ValueError(f"gid {pinned} is already in use")
            if pinned.isdigit():
                self.next_gid = max(self.next_gid, int(pinned) + 1)
            return pinned
        value = str(self.next_gid)
        self.next_gid += 1
        return value

    def now(self) -> str:
        return iso(self.clock.now())

    def ago(self, days: float) -> str:
        return iso(self.clock.now() - timedelta(days=days))

    # -- setup (seeding) -----------------------------------------------------------------

    def add_user(self, name: str, email: str | None = None, gid: str | None = None) -> Record:
        user = {"gid": self.gid(gid), "name": name,
                "email": email or f"{name.lower().replace(' ', '.')}@example.com"}
        self.users[user["gid"]] = user
        return user

    def add_token(self, token: str, user: str) -> None:
        """Another token the sandbox accepts, acting as ``user`` (a gid)."""
        if user not in self.users:
            raise ValueError(f"no user {user}")
        self.tokens[token] = user

    def add_project(self, name: str, sections: list[str] | None = None,
                    fields: list[str] | None = None, gid: str | None = None) -> Record:
        """A project with its sections (Asana gives every project at least one). Every
        workspace user is an editor of it until ``share`` or ``others`` says otherwise."""
        project: Record = {
            "gid": self.gid(gid), "name": name, "created_at": self.now(),
            "sections": [{"gid": self.gid(), "name": s} for s in (sections or ["Untitled section"])],
            "fields": list(fields or []),
            # user gid -> access level, for users with their own membership
            "members": {},
            # the level of every other workspace user (None: no access), the sandbox's
            # stand-in for a project shared with the whole workspace
            "others": "editor",
            "membership_gids": {}}
        self.projects[project["gid"]] = project
        return project

    def add_field(self, name: str, kind: str, options: list[str] | None = None,
                  gid: str | None = None, precision: int = 0) -> Record:
        if kind not in FIELD_KINDS:
            raise ValueError(f"custom field type must be one of {', '.join(FIELD_KINDS)}")
        field: Record = {"gid": self.gid(gid), "name": name, "kind": kind, "precision": precision,
                         "options": [self._option(o) for o in options or []]}
        self.fields[field["gid"]] = field
        return field

    def add_option(self, field: Record, name: str, color: str = "none") -> Record:
        """A new enum option (POST /custom_fields/{gid}/enum_options)."""
        if field["kind"] not in ("enum", "multi_enum"):
            raise StateError(400, "custom_field: Only enum and multi_enum custom fields have "
                                  "enum options")
        if len(field["options"]) >= 500:
            raise StateError(400, "custom_field: A custom field can have at most 500 enum options")
        if any(o["name"] == name for o in field["options"]):
            raise StateError(400, f"name: An enum option named {name!r} already exists")
        option = self._option(name, color)
        field["options"].append(option)
        return option

    def _option(self, name: str, color: str = "none") -> Record:
        return {"gid": self.gid(), "name": name, "enabled": True, "color": color}

    def add_tag(self, name: str, by: str | None = None, gid: str | None = None,
                color: str | None = None) -> Record:
        """A workspace tag; Asana does not make tag names unique, and neither does this."""
        tag: Record = {"gid": self.gid(gid), "name": name, "color": color, "notes": "",
                       "created_at": self.now(), "followers": [by or self.me]}
        self.tags[tag["gid"]] = tag
        return tag

    def add_task(self, project: str, name: str, *, notes: str = "", section: str | None = None,
                 assignee: str | None = None, creator: str | None = None,
                 completed: bool = False, tags: list[str] | None = None,
                 values: dict[str, Any] | None = None, parent: str | None = None,
                 dependencies: list[str] | None = None, subtype: str = "default_task",
                 created_at: str | None = None, modified_at: str | None = None,
                 gid: str | None = None) -> Record:
        """A task in ``project`` (gid); ``section`` is a section name (default: the first)."""
        proj = self.projects[project]
        sect = next((s for s in proj["sections"] if s["name"] == section), proj["sections"][0])
        created = created_at or self.now()
        creator = creator or self.me
        task: Record = {
            "gid": self.gid(gid), "name": name, "notes": notes, "resource_subtype": subtype,
            "completed": completed, "completed_at": (modified_at or created) if completed else None,
            "completed_by": (assignee or creator) if completed else None,
            "created_at": created, "modified_at": modified_at or created, "created_by": creator,
            "assignee": assignee, "memberships": [{"project": project, "section": sect["gid"]}],
            "tags": list(tags or []), "followers": list(dict.fromkeys(
                [u for u in (creator, assignee) if u])),
            "parent": parent, "dependencies": list(dependencies or []),
            "values": dict(values or {}), "due_on": None, "due_at": None, "start_on": None,
            "start_at": None, "likes": [], "stories": [],
        }
        self.tasks[task["gid"]] = task
        self._event("added", task, creator, parent=self._ref("project", proj))
        return task

    # -- changes a person or the API makes -----------------------------------------------

    def _story(self, task: Record, by: str, subtype: str, text: str,
               html_text: str | None = None, **extra: Any) -> Record:
        """Record a story on ``task``; like Asana, any new story bumps modified_at."""
        story = {"gid": self.gid(), "task": task["gid"], "created_at": self.now(),
                 "created_by": by, "resource_subtype": subtype,
                 "type": "comment" if subtype == "comment_added" else "system",
                 "text": text, "html_text": html_text, "is_edited": False,
                 "is_pinned": False, "source": "api", **extra}
        self.stories[story["gid"]] = story
        task["stories"].append(story["gid"])
        task["modified_at"] = story["created_at"]
        self._event("added", task, by, story=story, parent=self._ref("task", task))
        return story

    def _event(self, action: str, task: Record, by: str | None, story: Record | None = None,
               parent: Record | None = None, change: Record | None = None) -> None:
        """An event on ``task`` (or on ``story``, one of its stories), as GET /events shows
        it: compact resources with their names; on the streams of the task, its parent
        tasks and their projects ("events bubble up")."""
        resource = self._ref("task", task) if story is None else {
            "gid": story["gid"], "resource_type": "story",
            "resource_subtype": story["resource_subtype"]}
        scope: list[str] = []
        up: Record | None = task
        while up is not None:
            scope += [up["gid"], *(m["project"] for m in up["memberships"])]
            up = self.tasks.get(up["parent"] or "")
        user = self.users.get(by or "")
        event = self.feed.record(action, resource,
                                 None if user is None else self._ref("user", user), scope,
                                 parent, change, self.now())
        for listener in list(self.listeners):
            listener(event, event["scope"])

    def _changed(self, task: Record, by: str | None, field: str, action: str = "changed",
                 value: Record | None = None) -> None:
        """A change of one of the task's fields; ``value`` is the Asana resource set, added
        or removed (new_value, added_value, removed_value), when there is one."""
        change: Record = {"field": field, "action": action}
        if value is not None:
            change[{"changed": "new_value", "added": "added_value",
                    "removed": "removed_value"}[action]] = value
        self._event("changed", task, by, change=change)

    @staticmethod
    def _ref(kind: str, record: Record) -> Record:
        ref = {"gid": record["gid"], "name": record["name"], "resource_type": kind}
        if kind == "task":
            ref["resource_subtype"] = record["resource_subtype"]
        return ref

    def rename(self, task: Record, name: str, by: str) -> None:
        if name == task["name"]:
            return
        old, task["name"] = task["name"], name
        self._changed(task, by, "name")
        self._story(task, by, "name_changed", f'changed the name to "{name}"',
                    old_name=old, new_name=name)

    def set_notes(self, task: Record, notes: str, by: str) -> None:
        if notes == task["notes"]:
            return
        task["notes"] = notes
        self._changed(task, by, "notes")
        self._story(task, by, "notes_changed", "changed the description")

    def set_completed(self, task: Record, done: bool, by: str) -> None:
        if task["completed"] == done:
            return
        task["completed"] = done
        task["completed_at"] = self.now() if done else None
        task["completed_by"] = by if done else None
        self._changed(task, by, "completed")
        self._story(task, by, "marked_complete" if done else "marked_incomplete",
                    "marked this task complete" if done else "marked incomplete")

    def assign(self, task: Record, user: str | None, by: str) -> None:
        task["assignee"] = user
        if user and user not in task["followers"]:
            task["followers"].append(user)
        name = self.users[user]["name"] if user else "nobody"
        self._changed(task, by, "assignee", value=self._ref("user", self.users[user]) if user
                      else None)
        self._story(task, by, "assigned" if user else "unassigned", f"assigned to {name}")

    def move(self, task: Record, section_name: str, by: str) -> None:
        """Move ``task`` to another section of its (first) project."""
        member = task["memberships"][0]
        proj = self.projects[member["project"]]
        sect = next(s for s in proj["sections"] if s["name"] == section_name)
        old = next(s for s in proj["sections"] if s["gid"] == member["section"])
        member["section"] = sect["gid"]
        self._event("removed", task, by, parent=self._ref("section", old))
        self._event("added", task, by, parent=self._ref("section", sect))
        self._story(task, by, "section_changed", f"moved this task to {section_name}")

    def add_tag_to(self, task: Record, tag: Record, by: str) -> None:
        """Idempotent, like POST /tasks/{gid}/addTag: a tag already there changes nothing."""
        if tag["gid"] not in task["tags"]:
            task["tags"].append(tag["gid"])
            self._changed(task, by, "tags", "added", self._ref("tag", tag))
            self._story(task, by, "added_to_tag", f"added to {tag['name']}", tag=tag["gid"])

    def remove_tag_from(self, task: Record, tag: Record, by: str) -> None:
        if tag["gid"] in task["tags"]:
            task["tags"].remove(tag["gid"])
            self._changed(task, by, "tags", "removed", self._ref("tag", tag))
            self._story(task, by, "removed_from_tag", f"removed from {tag['name']}",
                        tag=tag["gid"])

    def add_followers(self, task: Record, users: list[str], by: str | None = None) -> None:
        for user in users:
            if user not in task["followers"]:
                task["followers"].append(user)
                self._changed(task, by or self.me, "followers", "added",
                              self._ref("user", self.users[user]))

    def remove_followers(self, task: Record, users: list[str], by: str | None = None) -> None:
        for user in [u for u in task["followers"] if u in users]:
            task["followers"].remove(user)
            self._changed(task, by or self.me, "followers", "removed",
                          self._ref("user", self.users[user]))

    def set_value(self, task: Record, field: Record, value: Any, by: str) -> None:
        """Set one custom field value (already validated); records the change story."""
        if task["values"].get(field["gid"]) == value:
            return
        task["values"][field["gid"]] = value
        self._changed(task, by, "custom_fields", value={"gid": field["gid"],
                                                        "resource_type": "custom_field"})
        self._story(task, by, f"{field['kind']}_custom_field_changed",
                    f"changed {field['name']}")

    def comment(self, task: Record, by: str, text: str, html_text: str | None = None
                ) -> Record:
        """A comment story; its author becomes a follower (collaborator) of the task."""
        story = self._story(task, by, "comment_added", text, html_text)
        self.add_followers(task, [by], by)
        return story

    def edit_comment(self, story: Record, text: str, html_text: str) -> None:
        """Edit a comment in place: marked edited; the task's modified_at stays. Its event
        names the story only (parent is null on a change): the task is the story's target."""
        story.update(text=text, html_text=html_text, is_edited=True)
        self._event("changed", self.tasks[story["task"]], story["created_by"], story=story,
                    change={"field": "text", "action": "changed"})

    def delete_story(self, story: Record, by: str | None = None) -> None:
        """A story removed from its task (by ``by``, default: the caller)."""
        task = self.tasks[story["task"]]
        task["stories"].remove(story["gid"])
        del self.stories[story["gid"]]
        task["modified_at"] = self.now()  # "story is trashed on a task" bumps modified_at
        self._event("removed", task, by or self.me, story=story, parent=self._ref("task", task))

    # -- access --------------------------------------------------------------------------

    def share(self, project: str, user: str, level: str | None) -> None:
        """Make ``user`` a member of ``project`` at ``level`` (viewer, commenter, editor,
        admin), or take its own membership away (None)."""
        if level is not None and level not in ACCESS_LEVELS:
            raise ValueError(f"access level must be one of {', '.join(ACCESS_LEVELS)}")
        members = self.projects[project].setdefault("members", {})
        if level is None:
            members.pop(user, None)
        else:
            members[user] = level

    def access(self, project: str, user: str | None = None) -> str | None:
        """``user``'s (default: the caller's) access level in ``project``; None: no access."""
        proj = self.projects[project]
        who = user or self.me
        members = proj.get("members") or {}
        return members[who] if who in members else proj.get("others", "editor")

    def task_access(self, task: Record) -> str | None:
        """The caller's best access level over the projects ``task`` is in."""
        levels = [self.access(m["project"]) for m in task["memberships"]]
        known = [lvl for lvl in levels if lvl is not None]
        return max(known, key=ACCESS_LEVELS.index) if known else None

    def membership_gid(self, project: str, user: str) -> str:
        """The gid of ``user``'s membership of ``project``, given on first use."""
        gids = self.projects[project].setdefault("membership_gids", {})
        if user not in gids:
            gids[user] = self.gid()
        return str(gids[user])

    # -- queries ---------------------------------------------------------------------------

    def user_ref(self, ref: str) -> str | None:
        """A user named by gid, e-mail or "me" (as Asana accepts in request bodies)."""
        if ref == "me":
            return self.me
        if ref in self.users:
            return ref
        return next((u["gid"] for u in self.users.values() if u["email"] == ref), None)

    def project_tasks(self, project: str) -> list[Record]:
        return sorted((t for t in self.tasks.values()
                       if any(m["project"] == project for m in t["memberships"])),
                      key=lambda t: int(t["gid"]))

    def task_fields(self, task: Record) -> list[Record]:
        """The custom fields a task shows: those of its projects, in project order."""
        gids: list[str] = []
        for member in task["memberships"]:
            gids += [g for g in self.projects[member["project"]]["fields"] if g not in gids]
        return [self.fields[g] for g in gids]

    # -- persistence -----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return copy.deepcopy({**{name: getattr(self, name) for name in _SAVED},
                              "feed": self.feed.to_json(), "webhooks": self.webhooks})

    @classmethod
    def from_json(cls, data: dict[str, Any], clock: Clock | None = None) -> AsanaState:
        state = cls(clock)
        for name in _SAVED:
            setattr(state, name, copy.deepcopy(data[name]))
        state.feed.load(copy.deepcopy(data.get("feed")))
        # a state saved before webhooks existed has none
        state.webhooks = copy.deepcopy(data.get("webhooks") or {})
        return state


_SAVED = ("next_gid", "workspace", "users", "tokens", "projects", "fields", "tags", "tasks",
          "stories", "me")
