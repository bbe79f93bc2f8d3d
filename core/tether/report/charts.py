"""The report's charts, drawn by plotly: each a ``<div>`` with a stable id and its script.

plotly.js itself is not in these snippets: the page inlines it once (``plotly_js``), so the
file works offline and carries the 4.8 MB library a single time."""

from __future__ import annotations

import html
from datetime import datetime

import plotly.graph_objects as go
import plotly.io as pio
import plotly.offline

from tether.kpi.status import fmt_number
from tether.report.data import Alignment, Allocation, KpiCard

STATUS_COLOURS = {"on_track": "#2e7d32", "at_risk": "#b26a00", "off_track": "#c62828",
                  "achieved": "#00838f", "paused": "#757575", "retired": "#757575",
                  "unknown": "#6a1b9a"}
_CONFIG = {"displaylogo": False, "responsive": True,
           "modeBarButtonsToRemove": ["select2d", "lasso2d"]}
_FONT = {"family": "system-ui, -apple-system, 'Segoe UI', sans-serif", "size": 12}


def plotly_js() -> str:
    """The plotly.js bundle shipped with the plotly package, to inline in a <script>."""
    return plotly.offline.get_plotlyjs()


def _label(text: str) -> str:
    # Plotly reads a subset of HTML (<b>, <a href>) in labels; show names literally.
    return html.escape(text, quote=False)


def _snippet(fig: go.Figure, div_id: str, height: int, toolbar: bool = True) -> str:
    fig.update_layout(height=height, template="plotly_white", font=_FONT,
                      margin={"l": 48, "r": 12, "t": 28, "b": 36})
    return pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={**_CONFIG, "displayModeBar": toolbar},
                       default_height=f"{height}px", default_width="100%")


def trend_id(kpi_id: str) -> str:
    """The element id of a KPI's trend chart."""
    return f"chart-trend-{kpi_id}"


def trend_chart(card: KpiCard) -> str | None:
    """Measured values, the expected path, the fitted trend to the forecast date, and the
    target (or the band); None when the KPI has no measurements to draw."""
    if not card.history:
        return None
    k, st = card.kpi, card.status
    colour = STATUS_COLOURS.get(st.status, "#455a64")
    unit = f" {k.unit}" if k.unit and k.unit != "%" else (k.unit or "")
    fig = go.Figure()
    if card.path:
        fig.add_trace(_line(card.path, "expected path", "#90a4ae", "dot", unit))
    if card.trend_line:
        fig.add_trace(_line(card.trend_line, "trend to forecast", colour, "dash", unit,
                            markers=True))
    fig.add_trace(_line(card.history, "measured", colour, "solid", unit, markers=True))
    if k.is_band and k.band:
        fig.add_hrect(y0=k.band[0], y1=k.band[1], fillcolor="#2e7d32", opacity=0.08,
                      line_width=0, annotation_text="band", annotation_position="top left")
    elif k.target is not None:
        fig.add_hline(y=k.target, line={"color": "#607d8b", "width": 1, "dash": "dot"},
                      annotation_text=_label(f"target {fmt_number(k.target)}{unit}"),
                      annotation_position="top left", annotation_font_size=11)
    fig.update_layout(showlegend=False, hovermode="x unified")
    fig.update_xaxes(type="date", tickformat="%b %Y")
    return _snippet(fig, trend_id(k.id), 220, toolbar=False)  # small: hover is enough


def _line(points: list[tuple[datetime, float]], name: str, colour: str, dash: str, unit: str,
          markers: bool = False) -> go.Scatter:
    return go.Scatter(x=[at.isoformat() for at, _ in points], y=[v for _, v in points],
                      name=name, mode="lines+markers" if markers else "lines",
                      line={"color": colour, "dash": dash, "width": 2}, marker={"size": 5},
                      hovertemplate=f"{name}: %{{y:.4~g}}{_label(unit)}<extra></extra>")


def alignment_chart(a: Alignment) -> str:
    """A heatmap of open effort, sources down and KPIs across; empty cells stay blank."""
    z = [[effort if count else None for effort, count in zip(erow, irow, strict=True)]
         for erow, irow in zip(a.effort, a.items, strict=True)]
    fig = go.Figure(go.Heatmap(
        z=z, x=[_label(k) for k in a.kpis], y=[_label(s) for s in a.sources], text=a.items,
        colorscale="Blues", texttemplate="%{z:.3~g}", hoverongaps=False,
        colorbar={"title": {"text": "effort"}, "thickness": 12},
        hovertemplate="%{y} → %{x}<br>open effort %{z:.3~g}, %{text} items<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return _snippet(fig, "chart-alignment", 140 + 44 * len(a.sources))


def allocation_chart(rows: list[Allocation]) -> str:
    """Grouped bars per active KPI: its share of the total weight and of open effort."""
    ids = [_label(r.kpi) for r in rows]
    fig = go.Figure([
        go.Bar(x=ids, y=[100 * r.weight_share for r in rows], name="share of weight",
               marker_color="#90a4ae", hovertemplate="%{x}: %{y:.0f}% of weight<extra></extra>"),
        go.Bar(x=ids, y=[100 * r.effort_share for r in rows], name="share of open effort",
               marker_color="#1565c0",
               hovertemplate="%{x}: %{y:.0f}% of open effort<extra></extra>"),
    ])
    fig.update_layout(barmode="group", legend={"orientation": "h", "y": 1.15, "x": 0})
    fig.update_yaxes(ticksuffix="%", rangemode="tozero")
    return _snippet(fig, "chart-effort", 300)
