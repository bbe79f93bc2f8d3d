"""Facts drift rules see besides task fields, computed in Python before posting."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ..model import KPI, Mapping, Measurement, Task
from .fields import BOOL, LIST, NUM, STR, TASK_CATALOG, Catalog, Field
from .impact import impact

LIFECYCLES = ("active", "paused", "achieved", "missed", "dropped", "retired")

DRIFT_FIELDS: dict[str, Field] = {f.name: f for f in (
    Field("kpis", LIST, "ids of the KPIs the task is mapped to"),
    Field("active_kpis", LIST, "ids of the mapped KPIs whose lifecycle is active"),
    Field("kpi_count", NUM, "how many KPIs the task is mapped to"),
    Field("active_kpi_count", NUM, "how many of them are active"),
    Field("closed_kpis", LIST, "mapped KPIs that are achieved, paused, missed, dropped or retired"),
    Field("touched_since_close", BOOL,
          "the item changed after every one of its closed KPIs closed (unknown dates: false)"),
    Field("slipping_kpis", LIST, "mapped active KPIs whose status is at_risk or off_track"),
    Field("guardrail_breaches", LIST,
          "guardrail KPIs past their limit while a KPI this item serves is improving"),
    Field("guardrail_owners", LIST, "owners of those guardrail KPIs"),
    Field("conflicts_with", LIST, "up to 5 items serving a trade-off KPI that touch the same entity "
          "(component, vendor, customer, account) or are linked to this one"),
    Field("conflict_kpis", LIST, "the trade-off KPIs those items serve"),
)}

# Fields whose shared values mean two items touch the same thing in the world.
ENTITY_CUSTOM_FIELDS = ("vendor", "supplier", "customer", "account")
CONFLICTS_LISTED = 5  # refs named per item; enough to act on, bounded in memory

KPI_FIELDS: dict[str, Field] = {f.name: f for f in (
    Field("kpi", STR, "the KPI's id"),
    Field("name", STR, "the KPI's name"),
    Field("owner", STR, "who answers for the KPI"),
    Field("lifecycle", STR, "active, paused, achieved, missed, dropped or retired", LIFECYCLES),
    Field("weight", NUM, "the KPI's priority weight"),
    Field("weight_share", NUM, "its weight over the weight of all active KPIs (0 to 1)"),
    Field("open_items", NUM, "open items mapped to it"),
    Field("open_effort", NUM, "estimate of those items (1 per item without an estimate)"),
    Field("effort_share", NUM, "its open effort over all open effort mapped to active KPIs"),
    Field("share_gap", NUM, "effort_share minus weight_share: + over-fed, - starved"),
    Field("linked_items", NUM, "items mapped to it, open and done"),
    Field("done_items", NUM, "of those, the done ones"),
    Field("done_share", NUM, "share of its linked effort that is done (0 to 1)"),
    Field("done_pct", NUM, "done_share as a whole percentage, for messages"),
    Field("impact_correlation", NUM, "Spearman rho of weekly done effort against the KPI's "
          "weekly change (read lag_days later), over the last 8 weeks; none if undefined"),
    Field("impact_weeks", NUM, "weeks that comparison could use (KPI values known)"),
    Field("allocation_tvd", NUM, "total variation distance between effort and weight shares, "
          "over all active KPIs (0: effort follows priorities; 1: opposite)"),
    Field("effort_pct", NUM, "effort_share as a whole percentage, for messages"),
    Field("weight_pct", NUM, "weight_share as a whole percentage, for messages"),
    Field("status", STR, "on_track, at_risk, off_track, achieved, paused, retired or unknown",
          ("on_track", "at_risk", "off_track", "achieved", "paused", "retired", "unknown")),
    Field("attainment", NUM, "share of the planned change achieved so far"),
    Field("forecast_attainment", NUM, "share of the planned change the trend reaches by the deadline"),
    Field("value_at_risk", NUM, "stake (or weight) times the forecast shortfall"),
    Field("in_band", BOOL, "whether the value is inside the tolerance band of the expected path"),
    Field("trend", STR, "improving, worsening or flat", ("improving", "worsening", "flat")),
    Field("status_reason", STR, "the status in one plain line, with its numbers"),
)}

TASK_SIGNAL_CATALOG = TASK_CATALOG.extended(DRIFT_FIELDS)
KPI_CATALOG = Catalog(KPI_FIELDS)
SIGNAL_CATALOGS = {"task": TASK_SIGNAL_CATALOG, "kpi": KPI_CATALOG}


SLIPPING = ("at_risk", "off_track")


def link_facts(tasks: Iterable[Task], mappings: Iterable[Mapping], kpis: dict[str, KPI],
               statuses: dict[str, Any] | None = None) -> dict[str, dict]:
    """Per task ref, the drift fields derived from its mappings and its KPIs' state."""
    by_task: dict[str, set[str]] = {}
    for m in mappings:
        by_task.setdefault(m.task, set()).add(m.kpi)
    statuses = statuses or {}
    out = {}
    for task in tasks:
        ids = by_task.get(task.ref, set())
        active = sorted(i for i in ids if i in kpis and kpis[i].is_active)
        closed = sorted(i for i in ids if i in kpis and not kpis[i].is_active)
        closed_at = [kpis[i].lifecycle_changed for i in closed]
        touched = bool(closed) and task.updated is not None and all(
            when is not None and task.updated > when for when in closed_at)
        slipping = [i for i in active if getattr(statuses.get(i), "status", None) in SLIPPING]
        breaches = _guardrail_breaches(active, kpis, statuses)
        out[task.ref] = {"kpis": sorted(ids), "active_kpis": active, "kpi_count": len(ids),
                         "active_kpi_count": len(active), "closed_kpis": closed,
                         "touched_since_close": touched, "slipping_kpis": slipping,
                         "guardrail_breaches": breaches,
                         "guardrail_owners": sorted({kpis[g].owner or g for g in breaches}),
                         "conflicts_with": [], "conflict_kpis": []}
    _conflicts(tasks, out, kpis)
    return out


def _done_effort(tasks: list[Task], mappings: Iterable[Mapping]) -> dict[str, dict[str, Any]]:
    """Per KPI: linked and done items, and the done share of linked effort."""
    by_ref = {t.ref: t for t in tasks}
    linked: dict[str, set[str]] = defaultdict(set)
    for m in mappings:
        if m.task in by_ref:
            linked[m.kpi].add(m.task)
    out: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"linked_items": 0, "done_items": 0, "done_share": 0.0, "done_pct": 0})
    for kpi, refs in linked.items():
        sizes = {r: by_ref[r].estimate or 1.0 for r in refs}
        finished = [r for r in refs if by_ref[r].status_category == "done"]
        share = sum(sizes[r] for r in finished) / sum(sizes.values())
        out[kpi] = {"linked_items": len(refs), "done_items": len(finished),
                    "done_share": round(share, 4), "done_pct": round(100 * share)}
    return out


def _guardrail_breaches(active: list[str], kpis: dict[str, KPI], statuses: dict[str, Any]
                        ) -> list[str]:
    """Guardrail KPIs past their limit, of the active KPIs here that are improving."""
    breached = set()
    for kid in active:
        if getattr(statuses.get(kid), "trend", None) != "improving":
            continue
        for rail in kpis[kid].guardrails:
            value = getattr(statuses.get(rail.kpi), "value", None)
            if value is not None and rail.crossed(value):
                breached.add(rail.kpi)
    return sorted(breached)


def _entities(task: Task) -> set[tuple[str, str]]:
    found = {("component", c) for c in task.components}
    for name, value in task.custom.items():
        if name.lower() in ENTITY_CUSTOM_FIELDS and value not in (None, "", []):
            for v in value if isinstance(value, list) else [value]:
                found.add((name.lower(), str(v)))
    return found


def _conflicts(tasks: list[Task], facts: dict[str, dict], kpis: dict[str, KPI]) -> None:
    """Fill ``conflicts_with``: open items on trade-off KPIs sharing an entity or a link.

    Work is per group of items touching one entity (or one link), per pair of rival KPIs in
    it, and at most CONFLICTS_LISTED refs are kept per item: a vendor shared by thousands of
    items must not cost memory quadratic in them."""
    rivals: dict[str, set[str]] = defaultdict(set)  # trade-offs, both ways
    for k in kpis.values():
        for other in k.tradeoffs:
            rivals[k.id].add(other)
            rivals[other].add(k.id)
    if not rivals:
        return
    serving = {t.ref: facts[t.ref]["active_kpis"] for t in tasks
               if t.status_category != "done" and facts[t.ref]["active_kpis"]}
    groups: dict[tuple[str, str], set[str]] = defaultdict(set)
    by_key = {(t.source, t.key): t.ref for t in tasks}
    for t in tasks:
        if t.ref not in serving:
            continue
        for entity in _entities(t):
            groups[entity].add(t.ref)
        for link in t.links:
            other = by_key.get((t.source, link.target))
            if other in serving:
                groups[("link", ":".join(sorted((t.ref, other))))] |= {t.ref, other}
    for group in groups.values():
        by_kpi: dict[str, list[str]] = defaultdict(list)
        for ref in sorted(group):
            for kid in serving[ref]:
                by_kpi[kid].append(ref)
        for kid, refs in by_kpi.items():
            for rival in rivals[kid] & by_kpi.keys():
                others = by_kpi[rival]
                for ref in refs:
                    fact = facts[ref]
                    listed = fact["conflicts_with"]
                    for other in others:
                        if len(listed) >= CONFLICTS_LISTED:
                            break
                        if other != ref and other not in listed:
                            listed.append(other)
                    if rival not in fact["conflict_kpis"]:
                        fact["conflict_kpis"].append(rival)
    for fact in facts.values():
        fact["conflicts_with"].sort()
        fact["conflict_kpis"].sort()


def kpi_facts(kpis: Iterable[KPI], tasks: Iterable[Task], mappings: Iterable[Mapping],
              statuses: dict[str, Any] | None = None,
              measurements: Iterable[Measurement] = (), now: datetime | None = None
              ) -> dict[str, dict[str, Any]]:
    """Per KPI id, the fields KPI-subject drift rules see: shares of weight and open effort.

    An open item counts its estimate (1 without one) toward every active KPI it serves,
    split by the mapping rules' weights, so one item never counts twice in the shares."""
    kpis = list(kpis)
    active = {k.id for k in kpis if k.is_active}
    tasks, mappings, measurements = list(tasks), list(mappings), list(measurements)
    open_tasks = {t.ref: t for t in tasks if t.status_category != "done"}
    done = _done_effort(tasks, mappings)
    by_ref = {t.ref: t for t in tasks}
    done_refs: dict[str, set[str]] = defaultdict(set)
    for m in mappings:
        if m.task in by_ref and by_ref[m.task].status_category == "done":
            done_refs[m.kpi].add(m.task)
    links: dict[str, dict[str, float]] = defaultdict(dict)
    for m in mappings:
        if m.task in open_tasks and m.kpi in active:
            links[m.task][m.kpi] = max(links[m.task].get(m.kpi, 0.0), m.weight)
    effort: dict[str, float] = defaultdict(float)
    items: dict[str, int] = defaultdict(int)
    for ref, weights in links.items():
        size = open_tasks[ref].estimate or 1.0
        total = sum(weights.values()) or 1.0
        for kpi, w in weights.items():
            effort[kpi] += size * w / total
            items[kpi] += 1
    all_effort = sum(effort.values())
    all_weight = sum(k.weight for k in kpis if k.id in active)
    tvd = 0.5 * sum(abs((effort[k.id] / all_effort if all_effort else 0.0)
                        - (k.weight / all_weight if all_weight else 0.0))
                    for k in kpis if k.id in active)
    out = {}
    for k in kpis:
        weight_share = k.weight / all_weight if k.id in active and all_weight else 0.0
        effort_share = effort[k.id] / all_effort if all_effort else 0.0
        out[k.id] = {
            "kpi": k.id, "name": k.name, "owner": k.owner, "lifecycle": k.lifecycle,
            "weight": k.weight, "weight_share": round(weight_share, 4),
            "open_items": items[k.id], "open_effort": round(effort[k.id], 3),
            "effort_share": round(effort_share, 4),
            "share_gap": round(effort_share - weight_share, 4),
            "effort_pct": round(100 * effort_share), "weight_pct": round(100 * weight_share),
            "allocation_tvd": round(tvd, 4), **done[k.id],
        }
        if now is not None:
            linked = [by_ref[r] for r in done_refs.get(k.id, ())]
            rho, weeks = impact(k, measurements, linked, now)
            out[k.id].update({"impact_correlation": rho, "impact_weeks": weeks})
        status = (statuses or {}).get(k.id)
        if status is not None:
            out[k.id].update({
                "status": status.status, "attainment": status.attainment,
                "forecast_attainment": status.forecast_attainment,
                "value_at_risk": status.value_at_risk, "in_band": status.in_band,
                "trend": status.trend, "status_reason": status.reason})
    return out
