"""Task <-> plain dict (JSON-ready), shared by the state store and the Tether file format."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from tether.model import STATUS_CATEGORIES, Link, Task

_DATES = ("created", "updated", "resolved")
_LISTS = ("labels", "components")


def task_to_dict(task: Task, with_raw: bool = False) -> dict[str, Any]:
    """A JSON-ready dict of ``task``; ``raw`` only when asked (it can be large)."""
    out: dict[str, Any] = {
        "source": task.source, "key": task.key, "title": task.title, "url": task.url,
        "body": task.body, "type": task.type, "status": task.status,
        "status_category": task.status_category, "assignee": task.assignee,
        "project": task.project, "labels": list(task.labels),
        "components": list(task.components), "parent": task.parent, "epic": task.epic,
        "links": [{"type": link.type, "target": link.target} for link in task.links],
        "estimate": task.estimate, "custom": dict(task.custom),
    }
    for name in _DATES:
        value = getattr(task, name)
        out[name] = value.isoformat() if value else None
    if with_raw:
        out["raw"] = task.raw
    return out


def parse_datetime(value: Any) -> datetime | None:
    """ISO 8601 text, a date or a datetime -> an aware datetime (UTC when no zone given)."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip().replace("Z", "+00:00")
        # Jira and GitHub write "+0000"; fromisoformat wants "+00:00".
        if len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit():
            text = f"{text[:-2]}:{text[-2:]}"
        dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def task_from_dict(data: dict[str, Any], source: str | None = None) -> Task:
    """Build a Task from :func:`task_to_dict` output; raises ValueError naming the bad field."""
    category = data.get("status_category") or "todo"
    if category not in STATUS_CATEGORIES:
        raise ValueError(f"status_category must be one of {', '.join(STATUS_CATEGORIES)}, "
                         f"not {category!r}")
    for name in ("key", "title"):
        if not data.get(name):
            raise ValueError(f"{name} is required")
    estimate = data.get("estimate")
    dates = {}
    for name in _DATES:
        try:
            dates[name] = parse_datetime(data.get(name))
        except ValueError:
            raise ValueError(f"{name} is not an ISO 8601 date: {data.get(name)!r}") from None
    return Task(
        source=source or data["source"], key=str(data["key"]), title=str(data["title"]),
        url=data.get("url") or "", body=data.get("body") or "", type=data.get("type") or "",
        status=data.get("status") or "", status_category=category,
        assignee=data.get("assignee") or None, project=data.get("project") or "",
        labels=tuple(data.get("labels") or ()), components=tuple(data.get("components") or ()),
        parent=data.get("parent") or None, epic=data.get("epic") or None,
        links=tuple(Link(str(li["type"]), str(li["target"])) for li in data.get("links") or ()),
        estimate=float(estimate) if estimate not in (None, "") else None,
        custom=dict(data.get("custom") or {}), raw=dict(data.get("raw") or {}), **dates,
    )
