"""Asana task payloads (as GET /tasks returns them with PULL_FIELDS) -> tether Tasks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tether.sdk import Link, Task, parse_datetime

from .options import AsanaOptions

# Exactly what to_task reads; gids come with every nested object anyway.
PULL_FIELDS = (
    "name", "notes", "completed", "completed_at", "created_at", "modified_at",
    "permalink_url", "resource_subtype", "assignee.name", "memberships.project.name",
    "memberships.section.name", "tags.name", "parent.name", "dependencies", "dependents",
    "custom_fields.name", "custom_fields.resource_subtype", "custom_fields.number_value",
    "custom_fields.text_value", "custom_fields.enum_value.name",
    "custom_fields.multi_enum_values.name", "custom_fields.date_value",
    "custom_fields.people_value.name", "custom_fields.display_value",
)
TYPES = {"default_task": "task"}  # milestone, approval and custom types keep their name


def iso(moment: datetime) -> str:
    """Asana's timestamp form: UTC, milliseconds, a Z."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def to_task(item: dict[str, Any], source: str, options: AsanaOptions) -> Task:
    """One task payload as a Task; fields Asana leaves out or null become empty, not errors."""
    home = membership(item, options.projects)
    project = home.get("project") or {}
    section = (home.get("section") or {}).get("name") or ""
    completed = bool(item.get("completed"))
    fields = item.get("custom_fields") or []
    parent = item.get("parent") or {}
    return Task(
        source=source, key=str(item["gid"]), title=item.get("name") or "",
        url=item.get("permalink_url") or "", body=item.get("notes") or "",
        type=TYPES.get(item.get("resource_subtype") or "default_task",
                       item.get("resource_subtype") or "task"),
        status=section or ("Completed" if completed else ""),
        status_category=status_category(completed, section, options.in_progress_sections),
        assignee=(item.get("assignee") or {}).get("name") or None,
        project=project.get("name") or project.get("gid") or "",
        labels=tuple(labels_of(item, options)),
        parent=parent.get("gid") or None,
        links=tuple([Link("is blocked by", d["gid"]) for d in item.get("dependencies") or []]
                    + [Link("blocks", d["gid"]) for d in item.get("dependents") or []]),
        estimate=_estimate(fields, options.estimate_field),
        created=parse_datetime(item.get("created_at")),
        updated=parse_datetime(item.get("modified_at")),
        resolved=parse_datetime(item.get("completed_at")) if completed else None,
        custom={name: field_value(_field(fields, gid)) for name, gid in options.custom_fields.items()},
        raw=item,
    )


def status_category(completed: bool, section: str, in_progress: list[str]) -> str:
    """done when completed; in_progress when the section is one of ``in_progress``; else todo."""
    if completed:
        return "done"
    wanted = {name.strip().casefold() for name in in_progress}
    return "in_progress" if section.strip().casefold() in wanted else "todo"


def labels_of(item: dict[str, Any], options: AsanaOptions) -> list[str]:
    """Tag names, then (custom-field mode) the names chosen in the label field; no repeats."""
    names = [t.get("name") or "" for t in item.get("tags") or []]
    if options.label_mode == "custom_field" and options.label_field:
        chosen = _field(item.get("custom_fields") or [], options.label_field) or {}
        names += [v.get("name") or "" for v in chosen.get("multi_enum_values") or []]
    return list(dict.fromkeys(n for n in names if n))


def field_value(field: dict[str, Any] | None) -> Any:
    """A custom field value as rules see it: number, text, option name(s), date or names."""
    if not field:
        return None
    kind = field.get("resource_subtype") or field.get("type")
    if kind == "number":
        return field.get("number_value")
    if kind == "text":
        return field.get("text_value")
    if kind == "enum":
        return (field.get("enum_value") or {}).get("name")
    if kind == "multi_enum":
        return [v.get("name") for v in field.get("multi_enum_values") or []]
    if kind == "date":
        date = field.get("date_value") or {}
        return date.get("date_time") or date.get("date")
    if kind == "people":
        return [p.get("name") for p in field.get("people_value") or []]
    return field.get("display_value")


def membership(item: dict[str, Any], projects: list[str]) -> dict[str, Any]:
    """The membership in a configured project (a task can live in several projects)."""
    memberships = [m for m in item.get("memberships") or [] if m.get("project")]
    for m in memberships:
        if m["project"].get("gid") in projects:
            return m
    return memberships[0] if memberships else {}


def _field(fields: list[dict[str, Any]], gid_or_name: str) -> dict[str, Any] | None:
    by_gid = next((f for f in fields if f.get("gid") == gid_or_name), None)
    return by_gid or next((f for f in fields if f.get("name") == gid_or_name), None)


def _estimate(fields: list[dict[str, Any]], wanted: str | None) -> float | None:
    field = _field(fields, wanted) if wanted else None
    if not field:
        return None
    if field.get("number_value") is not None:
        return float(field["number_value"])
    try:  # an enum of point sizes ("1", "2", "3", "5", ...) shows its choice as display_value
        return float(field.get("display_value") or "")
    except ValueError:
        return None
