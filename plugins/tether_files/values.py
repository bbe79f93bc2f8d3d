"""Cell-level parsing shared by the formats: dates, numbers, status categories."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from tether.sdk import parse_datetime

_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
# Jira's export format ("12/Mar/24 3:04 PM"); parsed by hand because strptime's %b
# follows the process locale while Jira always writes English month names.
_JIRA_DATE = re.compile(
    r"(\d{1,2})/([A-Za-z]{3})/(\d{2}|\d{4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?)?")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_DONE = {"done", "closed", "resolved", "complete", "completed", "released", "cancelled",
         "canceled", "won't do", "won't fix", "merged"}
_IN_PROGRESS = {"in progress", "in review", "in development", "in qa", "in test", "review",
                "code review", "testing", "doing"}
_CATEGORY_NAMES = {"to do": "todo", "todo": "todo", "new": "todo", "in progress": "in_progress",
                   "in_progress": "in_progress", "indeterminate": "in_progress", "done": "done"}


def parse_date(text: str) -> datetime | None:
    """Jira's ``12/Mar/24 3:04 PM`` or ISO 8601 -> aware datetime (UTC when no zone is given)."""
    text = text.strip()
    if not text:
        return None
    match = _JIRA_DATE.fullmatch(text)
    if not match:
        try:
            return parse_datetime(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a date; use Jira's '12/Mar/24 3:04 PM' "
                             "or ISO 8601 like '2024-03-12T15:04:00Z'") from None
    day, mon, year, hour, minute, second, ampm = match.groups()
    if mon.lower() not in _MONTHS:
        raise ValueError(f"{text!r} has an unknown month {mon!r}; use Jan..Dec")
    h = int(hour or 0)
    if ampm:
        if not 1 <= h <= 12:
            raise ValueError(f"{text!r} has hour {h} with {ampm}; use 1-12 with AM/PM")
        h = h % 12 + (12 if ampm.lower() == "pm" else 0)
    y = int(year) + (2000 if len(year) == 2 else 0)
    try:
        return datetime(y, _MONTHS[mon.lower()], int(day), h, int(minute or 0), int(second or 0),
                        tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid date: {exc}") from None


def parse_number(text: str) -> float | None:
    """``"3"``/``"2.5"`` -> float, empty -> None; anything else raises ValueError."""
    text = text.strip()
    if not text:
        return None
    if not _NUMBER.fullmatch(text):
        raise ValueError(f"{text!r} is not a number; write it like 3 or 2.5")
    return float(text)


def scalar(text: str) -> Any:
    """A free-form cell: a float when it looks numeric, else the stripped text."""
    text = text.strip()
    return float(text) if _NUMBER.fullmatch(text) else text


def infer_category(status: str) -> str:
    """Guess todo/in_progress/done from a workflow status name; unknown names are todo."""
    name = status.strip().lower()
    return "done" if name in _DONE else "in_progress" if name in _IN_PROGRESS else "todo"


def category_from_name(name: str) -> str:
    """Jira's status category name (``To Do``/``In Progress``/``Done``) -> ours; else ValueError."""
    try:
        return _CATEGORY_NAMES[name.strip().lower()]
    except KeyError:
        raise ValueError(f"{name!r} is not a status category; use todo, in_progress or done "
                         "(Jira's To Do, In Progress, Done work too), or leave it empty to "
                         "infer it from the status") from None
