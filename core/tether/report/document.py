"""The run document: one stable, JSON-ready shape for `--json` and for text output."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tether.pipeline.run import RunResult

SCHEMA = "tether.run/1"


def run_document(r: RunResult) -> dict[str, Any]:
    """The stable document for a pass: run, mappings, findings, ops, writes counts, and each
    KPI's status (in config order)."""
    new = r.new_findings
    applied = r.applied
    later = {id(o) for o in r.deferred}
    failures = [
        {"source": x.op.source, "key": x.op.key, "kind": x.op.kind.value, "error": x.error}
        for x in (applied.results if applied else []) if not x.ok
    ]
    return {
        "schema": SCHEMA,
        "run": {
            "id": r.run_id, "mode": r.mode, "status": r.status,
            "started": r.started.isoformat(),
            "as_of": r.started.isoformat(),  # the moment judged (--as-of, else the start)
            "finished": r.finished.isoformat() if r.finished else None,
            "rule_packs": r.packs, "pulled": r.pulled, "tasks": r.items, "judged": r.judged,
            # Sources whose tracker could not be read: judged on their last snapshot.
            "unread": {name: {"error": u.error, "since": u.since.isoformat()}
                       for name, u in r.unread.items()},
            # False: mappings and findings list only the items judged again (and every KPI);
            # the summary counts the whole portfolio either way.
            "listed_all": r.listed,
            "rematched": r.rematched,  # by stage: tasks whose facts changed, so were matched
            "requests": r.requests,  # by source, the tracker's answers: ok, throttled, ...
            # On workers: each unit (pull, assess, plan, write of a shard), as it ran.
            "units": [{"unit": u.unit, "state": u.state, "tries": u.tries, "worker": u.worker,
                       "seconds": _seconds(u.started, u.finished), **u.counts}
                      for u in r.units],
        },
        "mappings": [
            {"task": m.task, "kpi": m.kpi, "rule_id": m.rule_id, "weight": m.weight,
             "reason": m.reason} for m in r.mappings
        ],
        "findings": [
            {"signal": f.signal, "severity": f.severity, "subject": f.subject,
             "reason": f.reason, "advice": f.advice, "rule_id": f.rule_id,
             "value_at_risk": f.value_at_risk,
             "state": "new" if (f.signal, f.subject, f.rule_id) in new else "ongoing"}
            for f in r.findings
        ],
        "cleared": [{"signal": s, "subject": subj, "rule_id": rid} for s, subj, rid in r.cleared],
        "ops": [
            {"source": o.source, "key": o.key, "kind": o.kind.value, "value": o.value,
             "reason": o.reason, "value_at_risk": o.value_at_risk,
             "deferred": id(o) in later} for o in r.ops
        ],
        "writes": {
            "planned": len(r.ops),
            "applied": applied.applied if applied else 0,
            "failed": applied.failed if applied else 0,
            "deferred": len(r.deferred),
            "held": len(r.held),
            "interrupted": len(r.interrupted),
            "not_annotated": r.not_annotated,
            "failures": failures,
            "notices": r.notices,
        },
        "held": [
            {"source": o.source, "key": o.key, "kind": o.kind.value, "value": o.value,
             "reason": o.reason} for o in r.held
        ],
        "kpis": [
            {"id": st.kpi, "status": st.status, "value": st.value, "target": st.target,
             "attainment": _round(st.attainment), "forecast": _round(st.forecast),
             "value_at_risk": _round(st.value_at_risk), "reason": st.reason}
            for st in r.kpi_statuses.values()
        ],
        "summary": {
            "items_linked": r.totals.linked,
            "kpis_linked": r.totals.links,
            "signals": r.totals.signals,
        },
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


def _seconds(started: datetime | None, finished: datetime | None) -> float | None:
    return round((finished - started).total_seconds(), 3) if started and finished else None
