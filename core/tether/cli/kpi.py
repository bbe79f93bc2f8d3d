"""`tether kpi ...`: each KPI's status from its measured history, and manual measurements."""

from __future__ import annotations

import difflib
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from tether.cli.options import DATE, config_option, json_option, out
from tether.errors import TetherError
from tether.kpi.sources import store_measurements
from tether.kpi.status import KpiStatus, fmt_number, kpi_statuses
from tether.model import KPI, Measurement
from tether.report.formatting import at_risk, attainment, natural, status_label
from tether.workspace import load_workspace

SCHEMA = "tether.kpi-status/1"
WIDE = 150  # columns from which the owner and the reason fit in the table
_STYLE = {"on_track": "green", "at_risk": "yellow", "off_track": "red", "achieved": "cyan",
          "paused": "dim", "retired": "dim", "unknown": "magenta"}
_SEVERITY = {"off_track": 0, "at_risk": 1, "unknown": 2, "on_track": 3, "achieved": 4,
             "paused": 5, "retired": 6}


@click.group()
def kpi() -> None:
    """KPI status (attainment, pace, forecast, value at risk) and manual measurements."""


@kpi.command("status")
@config_option
@json_option
@click.option("--at", "at", type=DATE, default=None,
              help="Judge as of this date (YYYY-MM-DD or ISO 8601). Default: now.")
def status_cmd(config_path: Path, as_json: bool, at: datetime | None) -> None:
    """Read every KPI source into the state store and show each KPI's status, the largest
    value at risk first."""
    ws = load_workspace(config_path)
    now = at or datetime.now(UTC)
    with ws.open_store() as store:
        store_measurements(ws.config, ws.plugins, store)
        statuses = kpi_statuses(ws.config.kpis, store.measurements(), now, ws.config.status)
    kpis = {k.id: k for k in ws.config.kpis}
    if as_json:
        click.echo(json.dumps(status_document(list(kpis.values()), statuses, now), indent=2))
        return
    if not kpis:
        out.print("No KPIs configured: add them under `kpis:` in tether.yaml.")
        return
    # A wide terminal shows everything in one table; a narrow one (or a pipe, 80 columns)
    # lists each KPI's owner and reason under it, where they have room.
    wide = out.width >= WIDE
    table = Table(title=f"KPI status at {now.isoformat(timespec='minutes')}",
                  title_justify="left")
    columns = [("KPI", False), ("owner", True), ("status", False), ("value / target", True),
               ("attain.", True), ("forecast", True), ("value at risk", True), ("reason", True)]
    for col, wrap in columns if wide else [c for c in columns if c[0] not in ("owner", "reason")]:
        table.add_column(col, overflow="fold", no_wrap=not wrap,
                         ratio=3 if col == "reason" else None)
    rows = ranked(statuses.values())
    for st in rows:
        k = kpis[st.kpi]
        style = _STYLE.get(st.status, "")
        cells = [escape(k.id), escape(k.owner or "-"),
                 f"[{style}]{status_label(st.status)}[/{style}]" if style
                 else status_label(st.status),
                 escape(_value_target(k, st)), attainment(st.attainment), _forecast(k, st),
                 escape(at_risk(st, k)), escape(st.reason)]
        table.add_row(*(cells if wide else [c for i, c in enumerate(cells) if i not in (1, 7)]))
    out.print(table)
    if not wide:
        for st in rows:
            owner = kpis[st.kpi].owner
            out.print(f"[bold]{escape(st.kpi)}[/bold]{escape(f' ({owner})' if owner else '')}: "
                      f"{escape(st.reason)}", soft_wrap=True)


def ranked(statuses: Any) -> list[KpiStatus]:
    """Largest value at risk first; unknown values at risk after the known ones."""
    return sorted(statuses, key=lambda s: (s.value_at_risk is None, -(s.value_at_risk or 0.0),
                                           _SEVERITY.get(s.status, 9), natural(s.kpi)))


def status_document(kpis: list[KPI], statuses: dict[str, KpiStatus], now: datetime
                    ) -> dict[str, Any]:
    """The stable `tether kpi status --json` document; KPIs in config order."""
    rows = []
    for k in kpis:
        st = statuses[k.id]
        row: dict[str, Any] = {"id": k.id, "name": k.name, "owner": k.owner,
                               "objective": k.objective, "unit": k.unit,
                               "direction": k.direction,
                               "band": list(k.band) if k.band else None,
                               "baseline": k.baseline, "target": k.target,
                               "deadline": k.deadline.isoformat() if k.deadline else None,
                               "weight": k.weight, "stake": k.stake, "currency": k.currency}
        row.update({key: value for key, value in st.to_dict().items() if key != "kpi"})
        rows.append(row)
    return {"schema": SCHEMA, "at": now.isoformat(), "kpis": rows}


def _unit(k: KPI, x: float | None) -> str:
    if x is None:
        return "-"
    text = fmt_number(x)
    return text if not k.unit else (f"{text}%" if k.unit == "%" else f"{text} {k.unit}")


def _value_target(k: KPI, st: KpiStatus) -> str:
    if k.band:
        return f"{_unit(k, st.value)} in [{fmt_number(k.band[0])}, {fmt_number(k.band[1])}]"
    return f"{_unit(k, st.value)} / {_unit(k, k.target)}"


def _forecast(k: KPI, st: KpiStatus) -> str:
    if st.forecast is None:
        return "-"
    return f"{_unit(k, st.forecast)} ({attainment(st.forecast_attainment)})"


@kpi.command("record")
@config_option
@click.argument("kpi_id", metavar="KPI")
@click.argument("value", metavar="VALUE")
@click.option("--at", "at", type=DATE, default=None,
              help="When it was measured (YYYY-MM-DD or ISO 8601). Default: now.")
@json_option
def record_cmd(config_path: Path, kpi_id: str, value: str, at: datetime | None,
               as_json: bool) -> None:
    """Add one measured VALUE of KPI to the state store (write -- before a negative value)."""
    ws = load_workspace(config_path)
    ids = [k.id for k in ws.config.kpis]
    if kpi_id not in ids:
        close = difflib.get_close_matches(kpi_id, ids, n=1)
        hint = f"did you mean '{close[0]}'?" if close else (
            f"known KPIs: {', '.join(ids)}" if ids else "no KPIs are configured")
        raise click.BadParameter(f"unknown KPI '{kpi_id}'; {hint}", param_hint="KPI")
    try:
        number = float(value)
        if not math.isfinite(number):
            raise ValueError
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a number", param_hint="VALUE") from None
    when = at or datetime.now(UTC).replace(microsecond=0)
    with ws.open_store() as store:
        if not store.add_measurements([Measurement(kpi_id, when, number)]):
            kept = next((m.value for m in store.measurements(kpi_id) if m.at == when), None)
            raise TetherError(f"{kpi_id} already has the value {fmt_number(kept)} at "
                              f"{when.isoformat()}; stored values are never overwritten, so "
                              "record it with another --at")
        count = len(store.measurements(kpi_id))
    if as_json:
        click.echo(json.dumps({"schema": "tether.kpi-record/1", "kpi": kpi_id, "value": number,
                               "at": when.isoformat(), "stored": count}, indent=2))
        return
    out.print(f"Recorded {kpi_id} = {fmt_number(number)} at {when.isoformat()} "
              f"({count} value{'s' if count != 1 else ''} stored for {kpi_id}).", soft_wrap=True)
