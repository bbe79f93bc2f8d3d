"""What the state store hands back: finding episodes, ledger entries and runs, read from rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from tether.model import Finding, Written
from tether.store import tables


@dataclass(frozen=True)
class FindingRecord:
    """One episode of a finding: open while ``cleared_at`` is None."""

    signal: str
    subject: str
    rule_id: str
    severity: str
    reason: str
    value_at_risk: float
    first_seen: datetime
    last_seen: datetime
    cleared_at: datetime | None


@dataclass(frozen=True)
class FindingChanges:
    """How the current findings differ from the open ones recorded before."""

    new: list[Finding]
    ongoing: list[Finding]
    cleared: list[FindingRecord]


@dataclass(frozen=True)
class LedgerEntry:
    """One write Tether began on a tracker, and how it ended (``finished`` None if never)."""

    id: int
    run_id: int
    source: str
    key: str
    kind: str
    value: str
    comment_id: str | None
    status: str  # "pending" | "done" | "failed" | "interrupted" | "held"
    error: str | None
    started: datetime
    finished: datetime | None


@dataclass(frozen=True)
class RunRecord:
    """One run of Tether: its mode, rule pack versions and what it counted."""

    id: int
    mode: str
    started: datetime
    finished: datetime | None
    status: str  # "running" | "ok" | "partial" | "failed"
    packs: dict[str, str]
    counts: dict[str, int]


class FindingKeyed(Protocol):
    """What names a finding: a Finding, a FindingRecord or a row of the findings table."""

    @property
    def signal(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def rule_id(self) -> str: ...


def key(f: FindingKeyed) -> tuple[str, str, str]:
    return (f.signal, f.subject, f.rule_id)


def finding_record(row: Any) -> FindingRecord:
    return FindingRecord(
        signal=row.signal, subject=row.subject, rule_id=row.rule_id, severity=row.severity,
        reason=row.reason, value_at_risk=row.value_at_risk, first_seen=tables.read_set(row.first_seen),
        last_seen=tables.read_set(row.last_seen), cleared_at=tables.read(row.cleared_at),
    )


def ledger_entry(row: Any) -> LedgerEntry:
    return LedgerEntry(
        id=row.id, run_id=row.run_id, source=row.source, key=row.key, kind=row.kind,
        value=row.value, comment_id=row.comment_id, status=row.status, error=row.error,
        started=tables.read_set(row.started), finished=tables.read(row.finished),
    )


def written_to(w: Written) -> dict[str, Any]:
    return {"labels_verdict": w.labels_verdict, "labels": sorted(w.labels),
            "comment_verdict": w.comment_verdict, "comment_id": w.comment_id,
            "comment_gone": w.comment_gone, "held": sorted(w.held), "unmasked": w.unmasked,
            "own_updated": w.own_updated.isoformat() if w.own_updated else None,
            "activity": w.activity.isoformat() if w.activity else None}


def written_from(d: dict[str, Any]) -> Written:
    return Written(d["labels_verdict"], frozenset(d["labels"]), d["comment_verdict"],
                   d["comment_id"], d["comment_gone"], frozenset(d["held"]), d["unmasked"],
                   tables.read(d["own_updated"]), tables.read(d["activity"]))


def unread_since(runs: list[RunRecord], source: str) -> datetime | None:
    """When the latest runs in ``runs`` (newest first) that could not read ``source``, in a
    row, began; None when the latest could read it."""
    since = None
    for run in runs:
        if f"unread:{source}" not in run.counts:
            break
        since = run.started
    return since
