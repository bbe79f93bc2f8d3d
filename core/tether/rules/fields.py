"""The fields rules can test, their kinds, and how each is read from a task."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tether.model import STATUS_CATEGORIES, Task

STR, NUM, DATE, LIST, BOOL, ANY = "text", "number", "date", "list", "boolean", "any"
CUSTOM_PREFIX = "custom."


@dataclass(frozen=True)
class Field:
    """A field rules may name: its kind decides which operators apply to it."""

    name: str
    kind: str
    doc: str
    choices: tuple[str, ...] = ()


def _days(since: datetime | None, now: datetime) -> int | None:
    # Whole days: a message quoting them then changes once a day, not on every run, so an
    # unchanged item's comment is not edited each time Tether runs.
    return None if since is None else (now - since).days


TASK_FIELDS: dict[str, Field] = {f.name: f for f in (
    Field("source", STR, "name of the configured source the task came from"),
    Field("key", STR, "the tracker's key or number (OPS-12, 481)"),
    Field("url", STR, "link to the item"),
    Field("title", STR, "summary or title"),
    Field("body", STR, "description or body text"),
    Field("type", STR, "issue type (Story, Bug, issue, pull request, ...)"),
    Field("status", STR, "the tracker's status name"),
    Field("status_category", STR, "todo, in_progress or done", STATUS_CATEGORIES),
    Field("assignee", STR, "assignee's name or login"),
    Field("project", STR, "project key, repository (owner/name) or Asana project"),
    Field("labels", LIST, "labels or tags"),
    Field("components", LIST, "components"),
    Field("parent", STR, "key of the parent item"),
    Field("epic", STR, "key of the epic"),
    Field("links", LIST, "keys of linked items"),
    Field("link_types", LIST, "types of the item's links (blocks, is blocked by, relates to)"),
    Field("estimate", NUM, "story points or other estimate"),
    Field("created", DATE, "when the item was created"),
    Field("updated", DATE, "when the item last changed"),
    Field("resolved", DATE, "when the item was resolved"),
    Field("age_days", NUM, "whole days since created"),
    Field("idle_days", NUM, "whole days since the last update (Tether's own writes do not count)"),
    Field("idle_since", DATE, "when the item last changed (when it was created, if never since)"),
)}

# Fields computed from a task, as Python source over a task ``t`` as of ``now``: one text
# for read_task_field and for the projectors compiled from rules (task_field_code).
_COMPUTED = {
    "labels": "list(t.labels)",
    "components": "list(t.components)",
    "links": "[link.target for link in t.links]",
    "link_types": "sorted({link.type for link in t.links})",
    "age_days": "_days(t.created, now)",
    "idle_days": "_days(t.updated or t.created, now)",
    "idle_since": "t.updated or t.created",
}
# What the sources in _COMPUTED and task_field_code's expressions refer to besides t and now.
READ_ENV: dict[str, Any] = {"_days": _days}
_READERS: dict[str, Callable[[Task, datetime], Any]] = {
    name: eval(f"lambda t, now: {code}", dict(READ_ENV)) for name, code in _COMPUTED.items()}


class Catalog:
    """The fields one kind of rule may name; ``custom.<x>`` is always allowed."""

    def __init__(self, fields: dict[str, Field]):
        self.fields = fields

    def get(self, name: str) -> Field | None:
        if name.startswith(CUSTOM_PREFIX) and len(name) > len(CUSTOM_PREFIX):
            return Field(name, ANY, "custom field")
        return self.fields.get(name)

    def names(self) -> list[str]:
        return sorted(self.fields)

    def extended(self, more: dict[str, Field]) -> Catalog:
        return Catalog({**self.fields, **more})


TASK_CATALOG = Catalog(TASK_FIELDS)


def read_task_field(task: Task, name: str, now: datetime) -> Any:
    """The value of field ``name`` on ``task``; None when the task has none."""
    if name.startswith(CUSTOM_PREFIX):
        return task.custom.get(name[len(CUSTOM_PREFIX):])
    reader = _READERS.get(name)
    value = reader(task, now) if reader else getattr(task, name)
    return None if value == "" else value


def task_field_code(name: str) -> str:
    """Python source of an expression worth ``read_task_field(t, name, now)``, for code
    generated once per rule set (it may use the names in READ_ENV)."""
    if name.startswith(CUSTOM_PREFIX):
        return f"t.custom.get({name[len(CUSTOM_PREFIX):]!r})"
    if name in _COMPUTED:
        return f"({_COMPUTED[name]})"  # lists and whole days: never ""
    read = f"t.{name}" if name in TASK_FIELDS else f"getattr(t, {name!r})"
    return f'(None if (_v := {read}) == "" else _v)'


def kind_of_value(value: Any) -> str | None:
    """The field kind a literal or a custom field's value belongs to."""
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int | float):
        return NUM
    if isinstance(value, str):
        return STR
    if isinstance(value, datetime):
        return DATE
    if isinstance(value, list | tuple):
        return LIST
    return None
