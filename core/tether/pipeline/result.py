"""What a pass produced: its verdicts, its plan and what it wrote, for the CLI to render."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from tether.kpi.status import KpiStatus
from tether.model import Finding, Mapping, Task, WriteOp
from tether.pipeline.apply import ApplyReport
from tether.pipeline.verdicts import Totals
from tether.store.records import LedgerEntry
from tether.store.work import WorkRecord


@dataclass(frozen=True)
class Unread:
    """A source whose tracker could not be read this pass: judged on its last snapshot,
    nothing written to it."""

    error: str
    since: datetime  # the start of the first pass in a row that could not read it


@dataclass
class RunResult:
    """Everything a pass produced; the CLI renders it as text or JSON."""

    run_id: int
    mode: str
    started: datetime
    finished: datetime | None = None
    status: str = "running"
    packs: dict[str, str] = field(default_factory=dict)
    pulled: dict[str, int] = field(default_factory=dict)
    unread: dict[str, Unread] = field(default_factory=dict)  # by source: a partial pass
    tasks: list[Task] = field(default_factory=list)  # the items judged, planned or flagged
    items: int = 0  # items in the portfolio
    judged: int = 0  # of those, the items judged again (all, unless only some changed)
    mappings: list[Mapping] = field(default_factory=list)  # of the items listed (see totals)
    findings: list[Finding] = field(default_factory=list)  # of those items and every KPI
    listed: bool = True  # every item's mappings and findings are listed (else: judged ones)
    totals: Totals = field(default_factory=Totals)  # over the whole portfolio
    new_findings: set[tuple[str, str, str]] = field(default_factory=set)
    cleared: list[tuple[str, str, str]] = field(default_factory=list)
    ops: list[WriteOp] = field(default_factory=list)
    held: list[WriteOp] = field(default_factory=list)  # a person's override, respected
    interrupted: list[LedgerEntry] = field(default_factory=list)  # writes a crash cut short
    not_annotated: int = 0  # items left alone by writeback.since
    deferred: list[WriteOp] = field(default_factory=list)  # over the write budget
    notices: list[str] = field(default_factory=list)  # connectors' word on how they wrote
    budget: int = 0
    applied: ApplyReport | None = None
    kpi_statuses: dict[str, KpiStatus] = field(default_factory=dict)  # by KPI id, config order
    rematched: dict[str, int] = field(default_factory=dict)  # by stage: facts the engine saw
    requests: dict[str, dict[str, int]] = field(default_factory=dict)  # by source and answer
    units: list[WorkRecord] = field(default_factory=list)  # on workers: its units, as run
