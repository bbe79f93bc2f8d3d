"""Numbers, dates and statuses written for people; shared by the HTML and Markdown reports."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from ..kpistatus import KpiStatus, fmt_number
from ..model import KPI

SEVERITIES = ("critical", "warning", "info")
STATUS_LABELS = {"on_track": "on track", "at_risk": "at risk", "off_track": "off track",
                 "achieved": "achieved", "paused": "paused", "retired": "retired",
                 "unknown": "unknown"}


def status_label(status: str) -> str:
    """``off_track`` -> ``off track``."""
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


def forecast(st: KpiStatus, k: KPI) -> str:
    """``8.1 $M by 2025-12-31 (81%)``; ``-`` without a trend or once the KPI is no longer
    pursued (achieved, paused, retired)."""
    if st.forecast is None or st.status in ("achieved", "paused", "retired"):
        return "-"
    by = f" by {st.forecast_at.date().isoformat()}" if st.forecast_at else ""
    share = f" ({pct(st.forecast_attainment)})" if st.forecast_attainment is not None else ""
    return f"{value(k, st.forecast)}{by}{share}"


def at_risk(st: KpiStatus, k: KPI) -> str:
    """Money at risk in the KPI's currency when it has a stake, else weight x shortfall."""
    if st.value_at_risk is None:
        return "-"
    if k.stake is not None:
        money = f"{st.value_at_risk:,.0f}"
        return f"{k.currency} {money}" if k.currency else money
    return f"{fmt_number(st.value_at_risk)} of weight {fmt_number(k.weight)}"


def amount(x: float) -> str:
    """A finding's value at risk: ``2,500,000``, ``0.75``, ``0``."""
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
