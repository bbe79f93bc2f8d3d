"""The report's findings as one CSV table, ranked by value at risk."""

from __future__ import annotations

import csv
import io

from tether.report.data import ReportData

COLUMNS = ("signal", "severity", "subject", "title", "url", "value_at_risk", "value_at_risk_unit",
           "reason", "advice", "rule_id", "first_seen")
# A cell starting with one of these is a formula to a spreadsheet: tracker titles must not run.
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def render(data: ReportData) -> str:
    """One row per finding (largest value at risk first) under a header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for f in data.findings:
        writer.writerow([f.signal, f.severity, f.subject, _text(f.title), f.url,
                         f"{f.value_at_risk:.2f}", f.unit, _text(f.reason), _text(f.advice), f.rule_id,
                         f.first_seen.isoformat() if f.first_seen else ""])
    return buffer.getvalue()


def _text(value: str) -> str:
    """Free text, made inert for spreadsheets (OWASP's advice: a leading apostrophe)."""
    return "'" + value if value.startswith(_FORMULA) else value
