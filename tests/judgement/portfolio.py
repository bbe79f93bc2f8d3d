"""The benchmark's portfolio: the items and KPIs the generator planted, where it wrote them,
and the ground truth (what the signal definitions say must be flagged) with the pairs left unscored."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .kpiplan import KpiPlan

ENTITY_LABELS = ("customer:*", "account:*", "vendor:*", "supplier:*", "segment:*", "region:*")
ENTITY_FIELDS = ("vendor", "supplier", "customer", "account", "segment", "region")
Pair = tuple[str, str]  # (subject, signal): "<source>:<key>" or "kpi:<id>", and the signal
TASK_SIGNALS = ("untethered", "zombie", "stalled", "guardrail", "conflict")
KPI_SIGNALS = ("guardrail", "starved", "misallocated", "no_impact", "gate")
ROWS = ("untethered", "zombie", "stalled", "guardrail/task", "conflict",
        "guardrail/kpi", "starved", "misallocated", "no_impact", "gate")


def row(subject: str, signal: str) -> str:
    """The score row of a finding: its signal, with guardrail split by subject kind."""
    if signal == "guardrail":
        return "guardrail/kpi" if subject.startswith("kpi:") else "guardrail/task"
    return signal


@dataclass(frozen=True)
class Entities:
    """What makes two items touch the same thing (tether.yaml `judgement.entities`); the
    defaults are the signal definitions'."""

    labels: tuple[str, ...] = ENTITY_LABELS  # patterns, compared without case
    components: bool = True
    fields: tuple[str, ...] = ENTITY_FIELDS  # custom field names, compared without case
    links: bool = True

    @property
    def default(self) -> bool:
        return self == Entities()


@dataclass
class Item:
    """One tracker item as planted; ``serves`` is what the mapping rules must link it to
    (KPI id -> mapping weight), ``role`` why the generator made it (for debugging)."""

    source: str
    key: str
    title: str
    category: str  # todo, in_progress or done
    created: datetime
    updated: datetime
    resolved: datetime | None = None
    project: str = ""
    type: str = "Task"
    status: str = ""
    labels: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    custom: dict[str, Any] = field(default_factory=dict)
    links: list[tuple[str, str]] = field(default_factory=list)  # (type, target key)
    estimate: float | None = None
    assignee: str | None = None
    serves: dict[str, float] = field(default_factory=dict)
    role: str = ""

    @property
    def ref(self) -> str:
        return f"{self.source}:{self.key}"

    @property
    def open(self) -> bool:
        return self.category != "done"

    @property
    def effort(self) -> float:
        return self.estimate if self.estimate is not None else 1.0


@dataclass
class Portfolio:
    """A generated workspace in ``folder`` judged as of ``as_of``: ``expected`` maps each
    (subject, signal) that must be flagged to why; ``ignore`` holds the few pairs whose
    truth depends on a reading the definitions leave open (scored neither way); ``names``
    what a finding's message must name (every group, by any of its spellings)."""

    seed: int
    folder: Path
    as_of: datetime
    kpis: list[KpiPlan]
    items: list[Item]
    rules: list[dict[str, Any]]
    expected: dict[Pair, str]
    ignore: set[Pair]
    names: dict[Pair, list[set[str]]] = field(default_factory=dict)  # what messages must name
    entities: Entities = Entities()
    settings: dict[str, Any] = field(default_factory=dict)

    def kpi(self, kid: str) -> KpiPlan:
        return next(k for k in self.kpis if k.id == kid)
