"""A Jira issue payload (REST v2 or v3, Cloud or Data Center) -> ``tether.model.Task``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tether.sdk import Link, Task, parse_datetime

from .markup import adf_to_text

# Jira's three fixed status categories (statusCategory.key) -> Tether's.
CATEGORIES = {"new": "todo", "indeterminate": "in_progress", "done": "done"}
SYSTEM_FIELDS = ("summary", "description", "issuetype", "status", "assignee", "project",
                 "labels", "components", "parent", "issuelinks", "created", "updated",
                 "resolutiondate")


@dataclass(frozen=True)
class FieldMap:
    """Which field ids hold what, resolved once per connection."""

    story_points: str | None = None
    epic_link: str | None = None
    custom: dict[str, str] = field(default_factory=dict)  # Task.custom name -> field id

    def requested(self) -> list[str]:
        """Exactly the fields normalisation reads (never ``*all``)."""
        extra = [f for f in (self.story_points, self.epic_link, *self.custom.values()) if f]
        return list(dict.fromkeys([*SYSTEM_FIELDS, *extra]))


def to_task(issue: dict[str, Any], source: str, base_url: str, fields: FieldMap) -> Task:
    """Normalise one issue; absent or null fields give Task defaults, never errors."""
    f = issue.get("fields") or {}
    key = str(issue.get("key") or issue.get("id"))
    status = f.get("status") or {}
    category = (status.get("statusCategory") or {}).get("key")
    parent = f.get("parent") or None
    epic = _key_of(f.get(fields.epic_link)) if fields.epic_link else None
    if epic is None and parent and _is_epic(parent):
        epic = parent.get("key")  # Cloud (and team-managed) projects put the epic in `parent`
    return Task(
        source=source, key=key, title=str(f.get("summary") or ""),
        url=f"{base_url}/browse/{key}",
        body=adf_to_text(f.get("description")),
        type=_name(f.get("issuetype")), status=_name(status),
        status_category=CATEGORIES.get(category or "", "todo"),
        assignee=_person(f.get("assignee")),
        project=str((f.get("project") or {}).get("key") or key.rsplit("-", 1)[0]),
        labels=tuple(str(label) for label in f.get("labels") or ()),
        components=tuple(_name(c) for c in f.get("components") or () if _name(c)),
        parent=parent.get("key") if parent else None, epic=epic,
        links=tuple(_links(f.get("issuelinks") or ())),
        estimate=_number(f.get(fields.story_points)) if fields.story_points else None,
        created=_date(f.get("created")), updated=_date(f.get("updated")),
        resolved=_date(f.get("resolutiondate")),
        custom={name: plain(f.get(fid)) for name, fid in fields.custom.items()},
        raw=issue,
    )


def _links(entries: Any) -> list[Link]:
    """An ``outwardIssue`` reads "this <outward> that" (this blocks X); ``inwardIssue`` reads
    "this <inward> that" (this is blocked by X)."""
    out = []
    for entry in entries:
        kind = entry.get("type") or {}
        for side, phrase in (("outwardIssue", "outward"), ("inwardIssue", "inward")):
            other = entry.get(side)
            if other and other.get("key"):
                name = kind.get(phrase) or kind.get("name") or "relates to"
                out.append(Link(str(name).lower(), str(other["key"])))
    return out


def _is_epic(parent: dict[str, Any]) -> bool:
    kind = (parent.get("fields") or {}).get("issuetype") or {}
    return kind.get("hierarchyLevel") == 1 or str(kind.get("name", "")).lower() == "epic"


def _name(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("name") or value.get("value") or "")
    return str(value or "")


def _person(user: Any) -> str | None:
    if not isinstance(user, dict):
        return str(user) if user else None
    return user.get("displayName") or user.get("name") or user.get("accountId") or None


def _key_of(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("key") or None
    return str(value) if value else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _date(value: Any) -> datetime | None:
    if isinstance(value, bool) or value in (None, ""):
        return None
    if isinstance(value, int | float):  # Jira's internal form (webhooks): epoch milliseconds
        return datetime.fromtimestamp(value / 1000, UTC)
    try:
        return parse_datetime(value)
    except ValueError:
        return None


def plain(value: Any) -> Any:
    """A custom field value as rules want it: option/user/object -> its name or value,
    ADF -> text, lists element-wise; numbers and strings as they are."""
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        if value.get("type") == "doc":
            return adf_to_text(value)
        for key in ("value", "name", "displayName", "key"):
            if key in value:
                return value[key]
        return value
    return value
