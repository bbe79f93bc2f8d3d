"""The report as one self-contained HTML page: plotly.js inlined once, no network fetches.

Everything from trackers and the config reaches the page through Jinja2's autoescape, and
links only when they are http(s) URLs."""

from __future__ import annotations

from collections import Counter

import jinja2
from markupsafe import Markup

from tether import __version__
from tether.report import charts, formatting
from tether.report.data import UNTETHERED, ReportData


def environment() -> jinja2.Environment:
    """The report's template environment, escaping everything it is given."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("tether.report", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(status=formatting.status_label, pct=formatting.pct,
                       attainment=formatting.attainment, amount=formatting.amount,
                       day=formatting.day, minute=formatting.minute, link=formatting.safe_url)
    env.globals.update(value=formatting.value, target=formatting.target,
                       forecast=formatting.forecast, at_risk=formatting.at_risk, risk=formatting.risk,
                       colour=lambda status: charts.STATUS_COLOURS.get(status, "#455a64"))
    return env


def render(data: ReportData) -> str:
    """The whole page."""
    trends = {card.kpi.id: charts.trend_chart(card) for card in data.kpis}
    statuses = Counter(card.status.status for card in data.kpis)
    severities = Counter(f.severity for f in data.findings)
    return environment().get_template("report.html.j2").render(
        data=data, version=__version__, workspace=data.config_file.parent.name,
        plotly_js=Markup(charts.plotly_js()),
        trend_charts={kid: Markup(c) if c else None for kid, c in trends.items()},
        trend_id=charts.trend_id, untethered=UNTETHERED,
        alignment_chart=Markup(charts.alignment_chart(data.alignment)),
        allocation_chart=Markup(charts.allocation_chart(data.allocation)),
        statuses=[(s, statuses[s]) for s in formatting.STATUS_LABELS if statuses[s]],
        severities=[(s, severities[s]) for s in formatting.SEVERITIES if severities[s]],
    )
