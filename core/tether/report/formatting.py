"""Numbers, dates and statuses written for people; shared by the HTML and Markdown reports."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from urllib.parse import urlsplit

from tether.kpi.status import KpiStatus, fmt_number
from tether.model import KPI, Finding, Mapping

SEVERITIES = ("critical", "warning", "info")
# A value at risk is money (the KPI's stake x its shortfall, in the KPI's currency) or, for a
# KPI without a stake, priority weight x shortfall: written "0.4 wt", never a bare number.
WEIGHT = "wt"
STATUS_LABELS = {"on_track": "on track", "at_risk": "at risk", "off_track": "off track",
                 "achieved": "achieved", "paused": "paused", "retired": "retired",
                 "unknown": "unknown"}


def status_label(status: str) -> str:
    """``off_track`` -> ``off track``: statuses in prose; JSON keeps the codes."""
    return STATUS_LABELS.get(status, status.replace("_", " "))


def value(k: KPI, x: float | None) -> str:
    """A KPI value with its unit: ``94.1%``, ``6.2 $M``; ``-`` when unknown."""
    if x is None:
        return "-"
    text = fmt_number(x)
    return text if not k.unit else (f"{text}%" if k.unit == "%" else f"{text} {k.unit}")


def target(k: KPI) -> str:
    """The target, or the band a band KPI must stay inside."""
    if k.is_band and k.band:
        return f"[{fmt_number(k.band[0])}, {fmt_number(k.band[1])}]"
    return value(k, k.target)


def pct(x: float | None) -> str:
    """A share as a whole percentage; ``-`` when unknown."""
    return "-" if x is None else f"{x:.0%}"


def attainment(x: float | None) -> str:
    """How much of the planned change is done: ``45%``; a negative share says what it means,
    ``moved away from the target by 209%`` (of the planned change)."""
    if x is not None and x < 0 and f"{-x:.0%}" != "0%":
        return f"moved away from the target by {-x:.0%}"
    return pct(None if x is None else max(x, 0.0))


def forecast(st: KpiStatus, k: KPI) -> str:
    """``8.1 $M by 2025-12-31 (81%)``; ``-`` without a trend or once the KPI is no longer
    pursued (achieved, paused, retired)."""
    if st.forecast is None or st.status in ("achieved", "paused", "retired"):
        return "-"
    by = f" by {st.forecast_at.date().isoformat()}" if st.forecast_at else ""
    share = f" ({attainment(st.forecast_attainment)})" if st.forecast_attainment is not None else ""
    return f"{value(k, st.forecast)}{by}{share}"


def risk_unit(k: KPI) -> str:
    """The unit of a KPI's value at risk: its currency when it has a stake ("" when the stake
    names no currency), else ``wt``."""
    return (k.currency or "") if k.stake is not None else WEIGHT


def finding_units(findings: Iterable[Finding], mappings: Iterable[Mapping],
                  kpis: Iterable[KPI], statuses: dict[str, KpiStatus]) -> dict[str, str]:
    """The unit of each finding's value at risk, by subject: a KPI finding's is its KPI's; an
    item's is that of the KPIs it serves with something at risk (``USD+wt`` when they mix)."""
    by_id = {k.id: k for k in kpis}
    served: dict[str, set[str]] = {}
    for m in mappings:
        served.setdefault(m.task, set()).add(m.kpi)
    units: dict[str, str] = {}
    for f in findings:
        kind, _, kid = f.subject.partition(":")
        if kind == "kpi" and kid in by_id:
            units[f.subject] = risk_unit(by_id[kid])
            continue
        found = {risk_unit(by_id[k]) for k in served.get(f.subject, ()) if k in by_id
                 and (statuses.get(k) is not None and (statuses[k].value_at_risk or 0) > 0)}
        units[f.subject] = "+".join(sorted(found, key=lambda u: (u == WEIGHT, u)))
    return units


def risk(x: float | None, unit: str) -> str:
    """A value at risk with its unit, short: ``2.5M USD``, ``690k USD``, ``0.47 wt``; ``-``
    for nothing at risk."""
    if not x:
        return "-"
    if unit == WEIGHT:
        return f"{fmt_number(x)} {WEIGHT}"
    text = _short(x)
    return f"{text} {unit}" if unit else text


def _short(x: float) -> str:
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= size:
            return f"{x / size:.1f}{suffix}".replace(".0" + suffix, suffix)
    if abs(x) >= 1:
        return f"{x:.0f}"
    return fmt_number(x) if abs(x) >= 0.01 else "<0.01"


def at_risk(st: KpiStatus, k: KPI) -> str:
    """A KPI's value at risk in full: ``4,010,000 USD`` (money in its currency when it has a
    stake), else weight x shortfall: ``0.93 wt``."""
    if st.value_at_risk is None:
        return "-"
    unit = risk_unit(k)
    number = (f"{st.value_at_risk:,.0f}" if unit != WEIGHT or not st.value_at_risk
              else fmt_number(st.value_at_risk))
    return f"{number} {unit}".strip()


def amount(x: float) -> str:
    """A finding's value at risk as a plain number: ``2,500,000``, ``0.75``, ``0``."""
    return fmt_number(x)


def day(when: datetime | None) -> str:
    """``2025-06-16``, or ``-``."""
    return when.date().isoformat() if when else "-"


def minute(when: datetime | None) -> str:
    """``2025-06-16 09:00`` (UTC), or ``-``."""
    return when.strftime("%Y-%m-%d %H:%M") if when else "-"


def safe_url(url: str) -> str:
    """``url`` if it is an http(s) address, else "" (no ``javascript:`` from a tracker)."""
    return url if urlsplit(url).scheme in ("http", "https") else ""


def natural(text: str) -> list[tuple[int, int, str]]:
    """Sort key that puts OPS-9 before OPS-10 (numbers and words never compared)."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", text)]
