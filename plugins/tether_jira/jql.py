"""The JQL Tether sends: the configured scope, full or since a cursor, in a stable order."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tether.codec import parse_datetime

from .options import JiraOptions

OVERLAP = timedelta(minutes=2)
_ORDER_BY = re.compile(r"\s+order\s+by\s+.*$", re.IGNORECASE | re.DOTALL)


def quote(value: str) -> str:
    """A JQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def scope(options: JiraOptions) -> str:
    """The configured restriction, without ORDER BY (Tether appends its own)."""
    parts = []
    if options.projects:
        parts.append("project in (" + ", ".join(quote(k) for k in options.projects) + ")")
    if options.jql and options.jql.strip():
        own = _ORDER_BY.sub("", " " + options.jql.strip()).strip()
        if own:
            parts.append(f"({own})")
    return " AND ".join(parts)


def full(options: JiraOptions) -> str:
    """Every issue in scope, by key: a stable order while issues change during paging."""
    return f"{scope(options)} ORDER BY key ASC"


def since(options: JiraOptions, cursor: datetime, user_zone: str | None) -> str:
    """Issues updated since ``cursor`` less the overlap window.

    JQL dates have minute precision and are read in the *searching user's* time zone (not
    the server's, and not the offset the REST API prints), so the cursor is converted to
    that zone and floored to the minute; the two-minute overlap covers rounding and
    search-index lag. The caller drops the items it already saw at the cursor."""
    local = (cursor - OVERLAP).astimezone(_zone(user_zone))
    stamp = local.strftime("%Y/%m/%d %H:%M")
    return f'{scope(options)} AND updated >= "{stamp}" ORDER BY updated ASC, key ASC'


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def later(a: str | None, b: str | None) -> str | None:
    """The later of two Jira timestamps, kept as Jira wrote it."""
    if a is None or b is None:
        return a or b
    return a if _instant(a) >= _instant(b) else b


def _instant(value: str) -> datetime:
    parsed = parse_datetime(value)
    assert parsed is not None
    return parsed
