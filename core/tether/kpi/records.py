"""Checks shared by the KPI sources that read records (HTTP JSON, SQL): one record becomes a
Measurement or a list of problems, and many bad records one readable error."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from tether.errors import SourceError
from tether.kpi.definitions import KPI_ID, parse_when
from tether.model import Measurement

_MAX_LISTED = 10  # bad records listed in one message; the rest are counted

def measurement(kpi: Any, at: Any, value: Any) -> tuple[Measurement | None, list[str]]:
    """A Measurement from raw fields, or the problems with them (field: what is wrong)."""
    problems = []
    if not isinstance(kpi, str) or not re.fullmatch(KPI_ID, kpi):
        problems.append(f"kpi {show(kpi)} is not a KPI id (set `kpi` if every record is "
                        "one KPI's)")
    when = parse_when(at)
    if when is None:
        problems.append(f"date {show(at)} is not a date; use YYYY-MM-DD or ISO 8601")
    number: float | None = None
    if not isinstance(value, bool):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
    if number is None or not math.isfinite(number):
        problems.append(f"value {show(value)} is not a number")
    if problems:
        return None, problems
    assert when is not None and number is not None
    return Measurement(kpi, when, number), []


def show(value: Any) -> str:
    if value is None:
        return "missing"
    return f"'{value}'" if isinstance(value, str) else repr(value)


Row = tuple[str, tuple[Any, Any, Any] | str]  # (label, (kpi, date, value) or what is wrong)


def collect(rows: Iterable[Row], where: str, what: str) -> list[Measurement]:
    """Each row's (kpi, date, value) as a Measurement; raises one SourceError naming every
    bad row by its label (a row given as a text is bad for that reason)."""
    out, bad = [], []
    for label, fields in rows:
        m, problems = (None, [fields]) if isinstance(fields, str) else measurement(*fields)
        if m is None:
            bad.append(f"{label}: " + "; ".join(problems))
        else:
            out.append(m)
    if bad:
        raise fail(where, bad, what)
    return out


def fail(where: str, bad: list[str], what: str) -> SourceError:
    listed = bad[:_MAX_LISTED]
    more = f"\n  ... and {len(bad) - len(listed)} more" if len(bad) > len(listed) else ""
    return SourceError(f"{where}: {len(bad)} bad {what}{'s' if len(bad) != 1 else ''}:\n  "
                       + "\n  ".join(listed) + more)


