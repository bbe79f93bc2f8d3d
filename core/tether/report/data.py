"""What a report shows, gathered from the config and the state store alone (no tracker
requests): KPI status and history, the alignment of open work, findings and past runs."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tether.errors import TetherError
from tether.kpi.status import KpiStatus
from tether.model import KPI, Finding, Mapping, Measurement, Task
from tether.pipeline.assess import judge
from tether.report.formatting import finding_units, natural
from tether.rules.signals import kpi_facts
from tether.rules.tally import task_effort
from tether.store.db import Store
from tether.store.records import RunRecord, unread_since
from tether.workspace import Workspace

UNTETHERED = "(no KPI)"  # the alignment matrix's column for open work no rule links
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
RUNS_SHOWN = 20
# Statuses with a forecast worth drawing: achieved, paused and retired KPIs are not pursued.
JUDGED = ("on_track", "at_risk", "off_track")


@dataclass(frozen=True)
class KpiCard:
    """One KPI: its definition, its status at the report's date and its measured history."""

    kpi: KPI
    status: KpiStatus
    history: list[tuple[datetime, float]]  # measurements up to the report's date, oldest first
    path: list[tuple[datetime, float]]  # the expected path: baseline, interim targets, target
    trend_line: list[tuple[datetime, float]]  # the fitted trend, last value to forecast_at
    anchor_url: str = ""  # the item that stands for the KPI, where its findings are written


@dataclass(frozen=True)
class FindingRow:
    """One finding as the report lists it; ``url`` is the item's (a KPI's: its anchor's)."""

    signal: str
    severity: str
    subject: str
    title: str
    url: str
    value_at_risk: float
    reason: str
    advice: str
    rule_id: str
    first_seen: datetime | None  # None: found by a plan, not yet recorded by a sync
    kpi: str | None = None  # set for findings on a KPI
    unit: str = ""  # of value_at_risk: a currency, "wt" (weight x shortfall), or "" for none


@dataclass(frozen=True)
class Alignment:
    """Open effort per source (rows) and KPI (columns, then UNTETHERED)."""

    sources: list[str]
    kpis: list[str]
    effort: list[list[float]]  # estimate (1 per item without one), split by mapping weight
    items: list[list[int]]  # open items counted in each cell


@dataclass(frozen=True)
class Allocation:
    """An active KPI's share of open effort against its share of priority weight."""

    kpi: str
    name: str
    weight: float
    weight_share: float
    effort: float
    effort_share: float
    open_items: int


@dataclass
class ReportData:
    """Everything every report format renders; findings ranked by value at risk."""

    config_file: Path
    as_of: datetime
    kpis: list[KpiCard]
    findings: list[FindingRow]
    alignment: Alignment
    allocation: list[Allocation]
    runs: list[RunRecord]
    items: int = 0
    open_items: int = 0
    linked_open_items: int = 0
    unread: dict[str, datetime] = field(default_factory=dict)  # sources the last run missed


def gather(ws: Workspace, store: Store, as_of: datetime) -> ReportData:
    """The report's data as of ``as_of``: items are re-mapped and re-assessed from their
    stored snapshots, so a report after `tether plan` shows what that plan found, and each
    finding keeps the advice its rule gives (the store does not keep advice)."""
    cfg = ws.config
    runs = store.runs(RUNS_SHOWN)
    if not runs:
        raise TetherError(f"No sync or plan has run yet for {cfg.file}; run `tether plan` first.")
    as_of = as_of.astimezone(UTC)
    tasks = [t for t in store.load_tasks() if t.source in ws.connectors]
    measurements = known_measurements(cfg.kpis, store.measurements())
    first_seen = {(f.signal, f.subject, f.rule_id): f.first_seen for f in store.open_findings()}
    statuses, mappings, findings = judge(ws, tasks, measurements, first_seen, as_of)
    by_ref = {t.ref: t for t in tasks}
    cards = [_card(k, statuses[k.id], measurements, as_of, by_ref) for k in cfg.kpis]
    open_refs = {t.ref for t in tasks if t.status_category != "done"}
    return ReportData(
        config_file=cfg.file, as_of=as_of, kpis=cards,
        findings=_rank(findings, by_ref, {c.kpi.id: c for c in cards}, first_seen,
                       finding_units(findings, mappings, cfg.kpis, statuses)),
        alignment=alignment(tasks, mappings, cfg.kpis, [s.name for s in cfg.sources]),
        allocation=allocation(tasks, mappings, cfg.kpis), runs=runs, items=len(tasks),
        open_items=len(open_refs),
        linked_open_items=len({m.task for m in mappings if m.task in open_refs}),
        unread={s.name: since for s in cfg.sources
                if (since := unread_since(runs, s.name)) is not None},
    )


def known_measurements(kpis: tuple[KPI, ...], stored: list[Measurement]) -> list[Measurement]:
    """Stored values plus any inline `measurements:` added to the config since the last run
    (a stored value wins at the same time, as in the store)."""
    seen = {(m.kpi, m.at) for m in stored}
    extra = [m for k in kpis for m in k.measurements if (m.kpi, m.at) not in seen]
    return stored + extra


def _card(k: KPI, st: KpiStatus, measurements: list[Measurement], as_of: datetime,
          by_ref: dict[str, Task]) -> KpiCard:
    start = k.baseline_date
    history = sorted({m.at: m.value for m in reversed(measurements)
                      if m.kpi == k.id and m.at <= as_of and (start is None or m.at >= start)
                      }.items())
    path: list[tuple[datetime, float]] = []
    if (not k.is_band and k.baseline is not None and k.baseline_date is not None
            and k.target is not None and k.deadline is not None):
        # Shifted right by lag_days, as the status judges it: work shows in the number later.
        lag = timedelta(days=k.lag_days)
        knots = [(k.baseline_date, k.baseline), *((c.at, c.value) for c in k.interim),
                 (k.deadline, k.target)]
        path = [(at + lag, value) for at, value in knots]
    trend: list[tuple[datetime, float]] = []
    if (st.status in JUDGED and st.slope_per_day is not None and st.forecast is not None
            and st.forecast_at and history):
        last = history[-1][0]
        days = (st.forecast_at - last).total_seconds() / 86400
        trend = [(last, st.forecast - st.slope_per_day * days), (st.forecast_at, st.forecast)]
    anchor = next((by_ref[f"{src}:{key}"].url for src, key in k.anchors.items()
                   if f"{src}:{key}" in by_ref), "")
    return KpiCard(k, st, history, path, trend, anchor)


def _rank(findings: list[Finding], by_ref: dict[str, Task], cards: dict[str, KpiCard],
          first_seen: dict[tuple[str, str, str], datetime], units: dict[str, str]
          ) -> list[FindingRow]:
    """Largest value at risk first, then the most severe, then by item."""
    rows = []
    for f in findings:
        kind, _, kid = f.subject.partition(":")
        task = by_ref.get(f.subject)
        card = cards.get(kid) if kind == "kpi" else None
        title = task.title if task else (card.kpi.name if card else "")
        url = task.url if task else (card.anchor_url if card else "")
        rows.append(FindingRow(
            signal=f.signal, severity=f.severity, subject=f.subject, title=title, url=url,
            value_at_risk=f.value_at_risk, reason=f.reason, advice=f.advice, rule_id=f.rule_id,
            first_seen=first_seen.get((f.signal, f.subject, f.rule_id)),
            kpi=kid if card else None, unit=units.get(f.subject, "")))
    return sorted(rows, key=lambda r: (-r.value_at_risk, SEVERITY_RANK.get(r.severity, 9),
                                       natural(r.subject), r.signal))


def alignment(tasks: list[Task], mappings: list[Mapping], kpis: tuple[KPI, ...],
              sources: list[str]) -> Alignment:
    """Open effort per source and KPI (every KPI, closed ones too: work still going to a
    closed KPI is what the matrix should show); an item serving several KPIs is split by
    its mapping weights, so each item counts once."""
    open_tasks = {t.ref: t for t in tasks if t.status_category != "done"}
    weights: dict[str, dict[str, float]] = defaultdict(dict)
    for m in mappings:
        if m.task in open_tasks:
            weights[m.task][m.kpi] = max(weights[m.task].get(m.kpi, 0.0), m.weight)
    columns = [k.id for k in kpis] + [UNTETHERED]
    col = {kid: i for i, kid in enumerate(columns)}
    row = {name: i for i, name in enumerate(sources)}
    effort = [[0.0] * len(columns) for _ in sources]
    items = [[0] * len(columns) for _ in sources]
    for ref, task in open_tasks.items():
        served = {kid: w for kid, w in weights.get(ref, {}).items() if kid in col} or {
            UNTETHERED: 1.0}
        total = sum(served.values())
        r = row[task.source]
        for kid, w in served.items():
            effort[r][col[kid]] += task_effort(task) * (w / total if total else 1 / len(served))
            items[r][col[kid]] += 1
    return Alignment(list(sources), columns, [[round(x, 3) for x in line] for line in effort],
                     items)


def allocation(tasks: list[Task], mappings: list[Mapping], kpis: tuple[KPI, ...]
               ) -> list[Allocation]:
    """Each active KPI's share of open effort and of weight, as the `misallocated` rule
    computes them (the same function), in config order."""
    facts = kpi_facts(kpis, tasks, mappings)
    return [Allocation(k.id, k.name, k.weight, facts[k.id]["weight_share"],
                       facts[k.id]["open_effort"], facts[k.id]["effort_share"],
                       facts[k.id]["open_items"]) for k in kpis if k.is_active]
