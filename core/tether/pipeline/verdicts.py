"""A pass's verdicts: the findings with their reminders, how they differ from the open ones
recorded before, and counts over the whole portfolio (a pass may list only some items)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from tether.kpi.status import KpiStatus
from tether.model import Finding, Mapping
from tether.rules.language import Rule
from tether.store.db import Store
from tether.workspace import Workspace


def reminded(ws: Workspace, findings: list[Finding],
             first_seen: dict[tuple[str, str, str], datetime], now: datetime) -> list[Finding]:
    """``findings`` with their reminders as of ``now`` (see with_reminder)."""
    rules = {r.id: r for r in ws.rules.signals}
    return [with_reminder(f, rules.get(f.rule_id), first_seen, now) for f in findings]


def with_reminder(finding: Finding, rule: Rule | None,
                  first_seen: dict[tuple[str, str, str], datetime], now: datetime) -> Finding:
    """A finding still open after its rule's ``sla_days`` says so, once per period: the
    changed text re-raises it (the comment is edited) without a write on every run."""
    sla = rule.params.get("sla_days") if rule is not None else None
    since = first_seen.get((finding.signal, finding.subject, finding.rule_id))
    if not sla or since is None or (now - since).days < sla:
        return finding
    periods = (now - since).days // int(sla)
    note = f" Reminder {periods}: first raised on {since.date().isoformat()}, still open."
    return replace(finding, reason=finding.reason + note)


FindingKey = tuple[str, str, str]  # (signal, subject, rule id)


@dataclass
class Totals:
    """Counts over the whole portfolio, kept whole when a pass lists only some items."""

    linked: int = 0  # items mapped to a KPI
    links: dict[str, int] = field(default_factory=dict)  # mappings, by KPI
    signals: dict[str, int] = field(default_factory=dict)  # findings, by signal

    @classmethod
    def of(cls, mappings: Iterable[Mapping], findings: Iterable[Finding]) -> Totals:
        totals = cls()
        totals.count(mappings, findings)
        return totals

    def count(self, mappings: Iterable[Mapping], findings: Iterable[Finding],
              sign: int = 1) -> None:
        """Add (``sign`` -1: take away) these mappings and findings."""
        mapped = set()
        for m in mappings:
            mapped.add(m.task)
            self.links[m.kpi] = self.links.get(m.kpi, 0) + sign
        self.linked += sign * len(mapped)
        for f in findings:
            self.signals[f.signal] = self.signals.get(f.signal, 0) + sign
        self.links = {k: n for k, n in sorted(self.links.items()) if n}
        self.signals = {k: n for k, n in sorted(self.signals.items()) if n}

    @property
    def findings(self) -> int:
        return sum(self.signals.values())


@dataclass
class Verdicts:
    """A pass's judgement, and how its findings differ from the open ones recorded before.
    With ``scope``, mappings and findings are listed only for those items (and every KPI)."""

    statuses: dict[str, KpiStatus]
    mappings: list[Mapping]
    findings: list[Finding]
    new: set[FindingKey]
    cleared: list[FindingKey]
    rematched: dict[str, int]  # by stage: tasks whose facts went to the rule engine
    totals: Totals
    changed: set[str] | None = None  # the items judged again; None: every item was
    scope: set[str] | None = None  # the items listed; None: every item

    @classmethod
    def of(cls, statuses: dict[str, KpiStatus], mappings: list[Mapping],
           findings: list[Finding], open_before: dict[FindingKey, datetime],
           rematched: dict[str, int], totals: Totals | None = None,
           changed: set[str] | None = None, scope: set[str] | None = None) -> Verdicts:
        keys = [(f.signal, f.subject, f.rule_id) for f in findings]
        return cls(statuses, mappings, findings, {k for k in keys if k not in open_before},
                   sorted(set(open_before) - set(keys)), rematched,
                   totals or Totals.of(mappings, findings), changed, scope)


def open_findings(store: Store, subjects: Iterable[str] | None = None
                  ) -> dict[FindingKey, datetime]:
    """When each open finding (on ``subjects``, or every one) was first raised, by (signal,
    subject, rule id)."""
    return {(f.signal, f.subject, f.rule_id): f.first_seen
            for f in store.open_findings(subjects=subjects)}
