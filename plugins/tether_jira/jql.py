"""The JQL Tether sends: the configured scope, full or since a cursor, in a stable order."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .options import JiraOptions

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


def since(options: JiraOptions, moment: datetime, user_zone: str | None) -> str:
    """Issues updated at or after ``moment`` (the cursor's mark less its overlap).

    JQL dates have minute precision and are read in the *searching user's* time zone (not
    the server's, and not the offset the REST API prints), so ``moment`` is converted to
    that zone and floored to the minute. The caller drops the items the cursor already saw."""
    local = moment.astimezone(_zone(user_zone))
    stamp = local.strftime("%Y/%m/%d %H:%M")
    return f'{scope(options)} AND updated >= "{stamp}" ORDER BY updated ASC, key ASC'


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
