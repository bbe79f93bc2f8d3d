"""Facts the drift rules see besides task fields, computed in Python before posting."""

from __future__ import annotations

from collections.abc import Iterable

from ..model import KPI, Mapping
from .fields import LIST, NUM, TASK_CATALOG, Field

DRIFT_FIELDS: dict[str, Field] = {f.name: f for f in (
    Field("kpis", LIST, "ids of the KPIs the task is mapped to"),
    Field("active_kpis", LIST, "ids of the mapped KPIs whose lifecycle is active"),
    Field("kpi_count", NUM, "how many KPIs the task is mapped to"),
    Field("active_kpi_count", NUM, "how many of them are active"),
)}
SIGNAL_CATALOG = TASK_CATALOG.extended(DRIFT_FIELDS)


def link_facts(mappings: Iterable[Mapping], kpis: dict[str, KPI]) -> dict[str, dict]:
    """Per task ref, the drift fields derived from its mappings (absent refs map to nothing)."""
    by_task: dict[str, set[str]] = {}
    for m in mappings:
        by_task.setdefault(m.task, set()).add(m.kpi)
    out = {}
    for ref, ids in by_task.items():
        active = sorted(i for i in ids if i in kpis and kpis[i].is_active)
        out[ref] = {"kpis": sorted(ids), "active_kpis": active,
                    "kpi_count": len(ids), "active_kpi_count": len(active)}
    return out


NO_LINKS = {"kpis": [], "active_kpis": [], "kpi_count": 0, "active_kpi_count": 0}
