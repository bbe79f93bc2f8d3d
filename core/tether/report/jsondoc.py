"""The report as one stable JSON document (``schema: tether.report/1``)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from tether.report.data import FindingRow, KpiCard, ReportData
from tether.report.formatting import risk_unit

SCHEMA = "tether.report/1"


def document(data: ReportData) -> dict[str, Any]:
    """The JSON-ready report: KPIs in config order, findings ranked by value at risk, runs
    newest first."""
    a = data.alignment
    return {
        "schema": SCHEMA,
        "as_of": data.as_of.isoformat(),
        "config": str(data.config_file),
        "items": {"total": data.items, "open": data.open_items,
                  "open_linked": data.linked_open_items},
        "kpis": [_kpi(card) for card in data.kpis],
        "findings": [_finding(f) for f in data.findings],
        "alignment": {
            "unit": "open effort: estimate, 1 per item without one, split by mapping weight",
            "sources": a.sources, "kpis": a.kpis,
            "cells": [{"source": src, "kpi": kid, "effort": a.effort[r][c], "items": a.items[r][c]}
                      for r, src in enumerate(a.sources) for c, kid in enumerate(a.kpis)
                      if a.items[r][c]],
        },
        "allocation": [{"kpi": x.kpi, "weight": x.weight, "weight_share": x.weight_share,
                        "open_effort": x.effort, "effort_share": x.effort_share,
                        "open_items": x.open_items} for x in data.allocation],
        "runs": [{"id": r.id, "mode": r.mode, "status": r.status, "started": _iso(r.started),
                  "finished": _iso(r.finished), "counts": r.counts, "rule_packs": r.packs}
                 for r in data.runs],
    }


def render(data: ReportData) -> str:
    """The document as indented JSON text, ending in a newline."""
    return json.dumps(document(data), indent=2) + "\n"


def _kpi(card: KpiCard) -> dict[str, Any]:
    k, st = card.kpi, card.status
    row: dict[str, Any] = {"id": k.id, "name": k.name, "owner": k.owner, "unit": k.unit,
                           "weight": k.weight, "stake": k.stake, "currency": k.currency,
                           "deadline": _iso(k.deadline), "anchor_url": card.anchor_url or None}
    row.update({key: value for key, value in st.to_dict().items() if key != "kpi"})
    row["value_at_risk_unit"] = risk_unit(k) or None
    row["history"] = [{"at": at.isoformat(), "value": value} for at, value in card.history]
    return row


def _finding(f: FindingRow) -> dict[str, Any]:
    return {"signal": f.signal, "severity": f.severity, "subject": f.subject, "title": f.title,
            "url": f.url or None, "value_at_risk": f.value_at_risk,
            "value_at_risk_unit": f.unit or None, "reason": f.reason,
            "advice": f.advice, "rule_id": f.rule_id, "first_seen": _iso(f.first_seen)}


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None
