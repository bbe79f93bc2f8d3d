"""The findings half of the Store: each finding's episodes, open until a pass no longer raises
it (it shares the Store's engine)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

import sqlalchemy as sa

from tether.model import Finding
from tether.store import records, tables
from tether.store.records import FindingChanges, FindingRecord


class FindingState:
    """Findings as passes recorded them."""

    _engine: sa.engine.Engine

    def record_findings(self, findings: list[Finding], now: datetime,
                        subjects: Iterable[str] | None = None) -> FindingChanges:
        """Record the full current set of findings at ``now`` (on ``subjects``, when given:
        the open findings on other subjects are left as they are, and stay open).

        An open finding (same signal, subject, rule_id) still present is ongoing: its
        last_seen, severity, reason and value at risk are updated. Open ones absent now get
        cleared_at=now. A finding that was cleared and reappears is new again and gets a
        fresh row (first_seen=now); the cleared row stays as history of the earlier episode.
        """
        now = tables.utc(now)
        current: dict[tuple[str, str, str], Finding] = {}
        for f in findings:
            current.setdefault(records.key(f), f)
        t = tables.findings.c
        new: list[Finding] = []
        ongoing: list[Finding] = []
        cleared: list[FindingRecord] = []
        with self._engine.begin() as conn:
            open_rows = {records.key(row): row for row in sorted(tables.rows_where(
                conn, sa.select(tables.findings).where(t.cleared_at.is_(None)), t.subject,
                subjects), key=lambda row: row.id)}
            gone = [row for key, row in open_rows.items() if key not in current]
            for i in range(0, len(gone), 500):
                conn.execute(tables.findings.update().where(
                    t.id.in_([row.id for row in gone[i:i + 500]])).values(cleared_at=now))
            cleared = [replace(records.finding_record(row), cleared_at=now) for row in gone]
            # The open rows left were all seen now: one statement. A row is rewritten on its
            # own only when its words or value changed, which a quiet pass never does.
            conn.execute(tables.findings.update().where(t.cleared_at.is_(None))
                         .values(last_seen=now))
            inserts = []
            for key, f in current.items():
                values = {"severity": tables.text(f.severity), "reason": f.reason,
                          "value_at_risk": f.value_at_risk, "last_seen": now}
                row = open_rows.get(key)
                if row is None:
                    inserts.append({"signal": f.signal, "subject": f.subject,
                                    "rule_id": f.rule_id, "first_seen": now, **values})
                    new.append(f)
                    continue
                if (row.severity, row.reason, row.value_at_risk) != (
                        values["severity"], f.reason, f.value_at_risk):
                    conn.execute(tables.findings.update().where(t.id == row.id).values(**values))
                ongoing.append(f)
            if inserts:
                conn.execute(tables.findings.insert(), inserts)
        return FindingChanges(new=new, ongoing=ongoing, cleared=cleared)

    def open_findings(self, subjects: Iterable[str] | None = None,
                      rule_ids: Iterable[str] | None = None) -> list[FindingRecord]:
        """Findings not cleared (only those on ``subjects``, or else raised by ``rule_ids``,
        when given), sorted by (subject, signal, rule_id)."""
        t = tables.findings.c
        query = sa.select(tables.findings).where(t.cleared_at.is_(None))
        with self._engine.begin() as conn:
            rows = (tables.rows_where(conn, query, t.rule_id, rule_ids) if subjects is None
                    and rule_ids is not None else tables.rows_where(conn, query, t.subject, subjects))
        found = [records.finding_record(row) for row in rows]
        return sorted(found, key=lambda f: (f.subject, f.signal, f.rule_id))

    def finding_history(self, subject: str) -> list[FindingRecord]:
        """Every episode of every finding on ``subject``, oldest first."""
        t = tables.findings.c
        with self._engine.begin() as conn:
            return [records.finding_record(row) for row in conn.execute(
                sa.select(tables.findings).where(t.subject == subject).order_by(t.first_seen, t.id))]

    # -- retention ------------------------------------------------------------------------
