"""The report as Markdown: short enough for a weekly status e-mail or a wiki page."""

from __future__ import annotations

import re
from collections import Counter

import jinja2

from tether.pipeline.render import neutralise
from tether.report import formatting
from tether.report.data import UNTETHERED, ReportData

FINDINGS_SHOWN = 20  # the rest are in the HTML, CSV and JSON reports
NEXT_STEPS = 5
RUNS_SHOWN = 5
# Characters that would end a table cell or start HTML, a link or code in a cell.
_CELL_SPECIAL = re.compile(r"([\\|<>\[\]`])")
_URL_SPECIAL = {" ": "%20", "(": "%28", ")": "%29", "<": "%3C", ">": "%3E"}


def cell(value: object) -> str:
    """Tether's own text in a table cell: one line, no cell breaks, HTML, links or code."""
    return _CELL_SPECIAL.sub(r"\\\1", " ".join(str(value).split()))


def link(text: str, url: str) -> str:
    """``[text](url)`` for an http(s) URL, else the text alone."""
    url = formatting.safe_url(url)
    if not url:
        return cell(text)
    return f"[{cell(text)}]({''.join(_URL_SPECIAL.get(c, c) for c in url)})"


def environment() -> jinja2.Environment:
    """Plain-text templates: cells are escaped by the filters, tracker text quoted inert."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("tether.report", "templates"),
                             autoescape=False, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(cell=cell, quote=neutralise, status=formatting.status_label,
                       pct=formatting.pct, attainment=formatting.attainment,
                       amount=formatting.amount, day=formatting.day, minute=formatting.minute)
    env.globals.update(value=formatting.value, target=formatting.target,
                       forecast=formatting.forecast, at_risk=formatting.at_risk,
                       risk=formatting.risk, link=link)
    return env


def render(data: ReportData) -> str:
    """The Markdown report."""
    a = data.alignment
    used = [c for c, _ in enumerate(a.kpis) if any(row[c] for row in a.items)]
    statuses = Counter(card.status.status for card in data.kpis)
    severities = Counter(f.severity for f in data.findings)
    return environment().get_template("report.md.j2").render(
        data=data, workspace=data.config_file.parent.name, untethered=UNTETHERED,
        findings=data.findings[:FINDINGS_SHOWN], more=max(0, len(data.findings) - FINDINGS_SHOWN),
        next_steps=[f for f in data.findings if f.advice][:NEXT_STEPS],
        columns=[a.kpis[c] for c in used],
        matrix=[(src, [(a.effort[r][c], a.items[r][c]) for c in used])
                for r, src in enumerate(a.sources)],
        runs=data.runs[:RUNS_SHOWN],
        statuses=", ".join(f"{statuses[s]} {formatting.status_label(s)}"
                           for s in formatting.STATUS_LABELS if statuses[s]),
        severities=", ".join(f"{severities[s]} {s}" for s in formatting.SEVERITIES if severities[s]),
    )
