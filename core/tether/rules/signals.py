"""Facts drift rules see besides task fields, computed in Python before posting.

Task facts come from the task's links to KPIs and from the portfolio around it (guardrail
and conflict joins); KPI facts are aggregates over the KPI's linked work. The definitions
are the README's drift signal table; the rules in ``rules/drift`` only compare them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tether.model import KPI, Mapping, Measurement, Task
from tether.rules.entities import EntityKeys
from tether.rules.fields import BOOL, LIST, NUM, STR, TASK_CATALOG, Catalog, Field
from tether.rules.joins import conflicts, guardrail_drivers
from tether.rules.window import window_facts

LIFECYCLES = ("active", "paused", "achieved", "missed", "dropped", "retired")
SLIPPING = ("at_risk", "off_track")


@dataclass(frozen=True)
class Judgement:
    """Workspace settings of the portfolio aggregates (``judgement:`` in tether.yaml)."""

    entities: EntityKeys = field(default_factory=EntityKeys)
    window_days: int = 90  # no_impact's trailing window, ending lag_days before now


DRIFT_FIELDS: dict[str, Field] = {f.name: f for f in (
    Field("kpis", LIST, "ids of the KPIs the task is mapped to"),
    Field("active_kpis", LIST, "ids of the mapped KPIs whose lifecycle is active"),
    Field("kpi_count", NUM, "how many KPIs the task is mapped to"),
    Field("active_kpi_count", NUM, "how many of them are active"),
    Field("closed_kpis", LIST, "mapped KPIs that are achieved, paused, missed, dropped or retired"),
    Field("changed_after_close_days", NUM,
          "for an item serving only closed KPIs: whole days from the last of them closing to the "
          "item's last change (negative: it last changed before; none: a close date is unknown)"),
    Field("slipping_kpis", LIST, "mapped active KPIs whose status is at_risk or off_track"),
    Field("guardrail_pushes", LIST,
          "mapped active KPIs that improve while a guardrail of theirs is breached, where this "
          "item drives the breach (it serves the guardrail too, or shares an entity key or a "
          "link with work on it)"),
    Field("guardrail_breaches", LIST, "those breached guardrail KPIs"),
    Field("guardrail_owners", LIST, "owners of those guardrail KPIs"),
    Field("guardrail_via", LIST, "how the item touches the guardrail's work, in words"),
    Field("conflicts_with", LIST, "up to 5 open items serving a trade-off KPI that share an "
          "entity key (judgement.entities) or a link with this one"),
    Field("conflict_kpis", LIST, "the trade-off KPIs those items serve"),
    Field("conflict_keys", LIST, "the entity keys (or links) they share, in words"),
)}

KPI_FIELDS: dict[str, Field] = {f.name: f for f in (
    Field("kpi", STR, "the KPI's id"),
    Field("name", STR, "the KPI's name"),
    Field("owner", STR, "who answers for the KPI"),
    Field("lifecycle", STR, "active, paused, achieved, missed, dropped or retired", LIFECYCLES),
    Field("weight", NUM, "the KPI's priority weight (0: tracked, unweighted, like a guardrail)"),
    Field("weight_share", NUM, "its weight over the weight of all active weighted KPIs (0 to 1)"),
    Field("open_items", NUM, "open items mapped to it"),
    Field("open_work", STR, "open_items in words, for messages (\"1 open item\")"),
    Field("open_effort", NUM, "estimate of those items (1 per item without an estimate), split "
          "across the active weighted KPIs each serves"),
    Field("effort_share", NUM, "its open effort over all open effort on active weighted KPIs"),
    Field("share_gap", NUM, "effort_share minus weight_share: + over-fed, - under-fed "
          "(0 for unweighted KPIs)"),
    Field("effort_to_weight", NUM, "effort_share over weight_share (weighted KPIs only)"),
    Field("allocation_tvd", NUM, "total variation distance between effort and weight shares "
          "over the active weighted KPIs (0: effort follows priorities; 1: opposite)"),
    Field("effort_pct", NUM, "effort_share as a whole percentage, for messages"),
    Field("weight_pct", NUM, "weight_share as a whole percentage, for messages"),
    Field("linked_items", NUM, "items mapped to it, open and done"),
    Field("done_items", NUM, "of those, the done ones"),
    Field("window_days", NUM, "length of the trailing window (judgement.window_days)"),
    Field("window_start", STR, "first day of the window (lag_days before now, minus its length)"),
    Field("window_end", STR, "last day of the window: lag_days before now"),
    Field("window_items", NUM, "linked items open at some time in the window"),
    Field("window_done", NUM, "of those, the ones closed in the window"),
    Field("window_done_share", NUM, "window_done over window_items (0 to 1)"),
    Field("window_done_pct", NUM, "window_done_share as a whole percentage, for messages"),
    Field("window_moved_share", NUM, "how far the KPI moved toward its target from the window's "
          "start (read lag_days later) to its latest value, over the distance that remained "
          "then; negative: it moved away; none: unknown or nothing remained"),
    Field("window_moved_pct", NUM, "window_moved_share as a whole percentage, for messages"),
    Field("status", STR, "on_track, at_risk, off_track, achieved, paused, retired or unknown",
          ("on_track", "at_risk", "off_track", "achieved", "paused", "retired", "unknown")),
    Field("status_text", STR, "the status in words (\"off track\"), for messages"),
    Field("attainment", NUM, "share of the planned change achieved so far"),
    Field("forecast_attainment", NUM, "share of the planned change the trend reaches by the deadline"),
    Field("value_at_risk", NUM, "stake (or weight) times the forecast shortfall"),
    Field("in_band", BOOL, "not behind the expected path by more than the tolerance (band KPIs: "
          "inside the band); a KPI ahead of its path stays in its band"),
    Field("ahead", BOOL, "ahead of the expected path by more than the tolerance"),
    Field("trend", STR, "improving, worsening or flat (within noise)",
          ("improving", "worsening", "flat")),
    Field("status_reason", STR, "the status in one plain line, with its numbers"),
    Field("breached_guardrails", LIST, "its guardrail KPIs past their floor or ceiling, while it "
          "improves"),
    Field("guardrail_text", STR, "each of them with its value, its limit and its owner"),
    Field("guardrail_owners", LIST, "owners of those guardrail KPIs"),
)}

TASK_SIGNAL_CATALOG = TASK_CATALOG.extended(DRIFT_FIELDS)
KPI_CATALOG = Catalog(KPI_FIELDS)
SIGNAL_CATALOGS = {"task": TASK_SIGNAL_CATALOG, "kpi": KPI_CATALOG}


def is_open(task: Task) -> bool:
    return task.status_category != "done"


def task_effort(task: Task) -> float:
    """An item's size in the allocation shares: its estimate (0 counts as 0), 1 without one."""
    return 1.0 if task.estimate is None else task.estimate


def served(mappings: Iterable[Mapping]) -> dict[str, set[str]]:
    """The KPIs each task is mapped to, by task ref."""
    out: dict[str, set[str]] = defaultdict(set)
    for m in mappings:
        out[m.task].add(m.kpi)
    return out


def link_facts(tasks: Iterable[Task], mappings: Iterable[Mapping], kpis: dict[str, KPI],
               statuses: dict[str, Any] | None = None, judgement: Judgement = Judgement()
               ) -> dict[str, dict]:
    """Per task ref, the drift fields derived from its mappings, its KPIs' state and the
    work around it."""
    tasks = list(tasks)
    serves = served(mappings)
    statuses = statuses or {}
    out = {task.ref: own_links(task, serves.get(task.ref, set()), kpis, statuses)
           for task in tasks}
    breaches = breached_guardrails(kpis, statuses)
    guardrail_drivers(tasks, serves, kpis, breaches, judgement.entities, out)
    conflicts(tasks, out, kpis, judgement.entities)
    return out


# The drift fields joins with other items fill (guardrail_drivers, conflicts).
JOIN_FIELDS = ("guardrail_pushes", "guardrail_breaches", "guardrail_owners", "guardrail_via",
               "conflicts_with", "conflict_kpis", "conflict_keys")


def own_links(task: Task, ids: set[str], kpis: dict[str, KPI], statuses: dict[str, Any]
              ) -> dict[str, Any]:
    """The drift fields of ``task`` that come from its own KPIs (``ids``) alone; the join
    fields start empty."""
    active = sorted(i for i in ids if i in kpis and kpis[i].is_active)
    closed = sorted(i for i in ids if i in kpis and not kpis[i].is_active)
    facts: dict[str, Any] = {
        "kpis": sorted(ids), "active_kpis": active, "kpi_count": len(ids),
        "active_kpi_count": len(active), "closed_kpis": closed,
        "changed_after_close_days": _after_close(task, [kpis[i] for i in closed])
        if closed and not active else None,
        "slipping_kpis": [i for i in active
                          if getattr(statuses.get(i), "status", None) in SLIPPING]}
    facts.update((name, []) for name in JOIN_FIELDS)
    return facts


def _after_close(task: Task, closed: list[KPI]) -> int | None:
    """Whole days from the last of ``closed`` closing to the task's last change."""
    dates = [k.closed_on for k in closed]
    changed = max((d for d in (task.updated, task.created) if d is not None), default=None)
    if changed is None or any(d is None for d in dates):
        return None
    return (changed - max(d for d in dates if d is not None)).days


def breached_guardrails(kpis: dict[str, KPI], statuses: dict[str, Any]) -> dict[str, list[str]]:
    """Per active KPI that is improving, its guardrail KPIs whose latest value is past the
    guardrail's floor or ceiling."""
    out: dict[str, list[str]] = {}
    for kid, kpi in kpis.items():
        if not kpi.is_active or getattr(statuses.get(kid), "trend", None) != "improving":
            continue
        crossed = sorted(rail.kpi for rail in kpi.guardrails
                         if (value := getattr(statuses.get(rail.kpi), "value", None)) is not None
                         and rail.crossed(value))
        if crossed:
            out[kid] = crossed
    return out


def _guardrail_text(kpi: KPI, crossed: list[str], kpis: dict[str, KPI],
                    statuses: dict[str, Any]) -> str:
    parts = []
    for rail in kpi.guardrails:
        if rail.kpi not in crossed:
            continue
        g = kpis.get(rail.kpi)
        value = statuses[rail.kpi].value
        limit = (f"above its ceiling {rail.ceiling:g}" if rail.ceiling is not None
                 and value > rail.ceiling else f"below its floor {rail.floor:g}")
        unit = f" {g.unit}" if g is not None and g.unit and g.unit != "%" else (
            g.unit if g is not None else "")
        owner = f", owner {g.owner}" if g is not None and g.owner else ""
        parts.append(f"{rail.kpi} at {value:g}{unit}, {limit}{owner}")
    return "; ".join(parts)


def _plural(n: int, noun: str) -> str:
    return f"{'no' if n == 0 else n} {noun}{'' if n == 1 else 's'}"


def kpi_facts(kpis: Iterable[KPI], tasks: Iterable[Task], mappings: Iterable[Mapping],
              statuses: dict[str, Any] | None = None,
              measurements: Iterable[Measurement] = (), now: datetime | None = None,
              judgement: Judgement = Judgement()) -> dict[str, dict[str, Any]]:
    """Per KPI id, the fields KPI-subject drift rules see.

    Shares are taken over active weighted KPIs (weight > 0): an open item counts its
    estimate (1 without one) toward the active weighted KPIs it serves, split by the
    mapping rules' weights, so one item never counts twice; unweighted KPIs such as
    guardrails are never over- or under-fed."""
    kpis, tasks, mappings = list(kpis), list(tasks), list(mappings)
    by_id = {k.id: k for k in kpis}
    weighted = {k.id for k in kpis if k.is_active and k.weight > 0}
    by_ref = {t.ref: t for t in tasks}
    linked: dict[str, set[str]] = defaultdict(set)
    for m in mappings:
        if m.task in by_ref:
            linked[m.kpi].add(m.task)
    shares: dict[str, dict[str, float]] = defaultdict(dict)
    for m in mappings:
        if m.kpi in weighted and m.task in by_ref and is_open(by_ref[m.task]):
            shares[m.task][m.kpi] = max(shares[m.task].get(m.kpi, 0.0), m.weight)
    effort: dict[str, float] = defaultdict(float)
    for ref, weights in shares.items():
        size = task_effort(by_ref[ref])
        total = sum(weights.values())
        for kid, w in weights.items():
            effort[kid] += size * (w / total if total else 1 / len(weights))
    all_effort = sum(effort.values())
    all_weight = sum(by_id[k].weight for k in weighted)

    def share_of(kid: str) -> tuple[float, float]:
        if kid not in weighted:
            return 0.0, 0.0
        return (effort[kid] / all_effort if all_effort else 0.0,
                by_id[kid].weight / all_weight if all_weight else 0.0)

    tvd = 0.5 * sum(abs(e - w) for e, w in map(share_of, weighted))
    statuses = statuses or {}
    breaches = breached_guardrails(by_id, statuses)
    measured: dict[str, list[Measurement]] = defaultdict(list)
    for point in measurements:
        measured[point.kpi].append(point)
    out = {}
    for k in kpis:
        refs = linked.get(k.id, set())
        open_items = sum(1 for r in refs if is_open(by_ref[r]))
        effort_share, weight_share = share_of(k.id)
        facts: dict[str, Any] = {
            "kpi": k.id, "name": k.name, "owner": k.owner, "lifecycle": k.lifecycle,
            "weight": k.weight, "weight_share": round(weight_share, 4),
            "open_items": open_items, "open_work": _plural(open_items, "open item"),
            "open_effort": round(effort[k.id], 3), "effort_share": round(effort_share, 4),
            "share_gap": round(effort_share - weight_share, 4),
            "effort_to_weight": round(effort_share / weight_share, 4) if weight_share else None,
            "effort_pct": round(100 * effort_share), "weight_pct": round(100 * weight_share),
            "allocation_tvd": round(tvd, 4), "linked_items": len(refs),
            "done_items": len(refs) - open_items,
            "breached_guardrails": breaches.get(k.id, []),
            "guardrail_text": _guardrail_text(k, breaches.get(k.id, []), by_id, statuses),
            "guardrail_owners": sorted({by_id[g].owner or g for g in breaches.get(k.id, [])
                                        if g in by_id}),
        }
        if now is not None:
            facts.update(window_facts(k, [by_ref[r] for r in sorted(refs)], measured[k.id],
                                      now, judgement.window_days))
        status = statuses.get(k.id)
        if status is not None:
            facts.update({
                "status": status.status, "status_text": status.status.replace("_", " "),
                "attainment": status.attainment,
                "forecast_attainment": status.forecast_attainment,
                "value_at_risk": status.value_at_risk, "in_band": status.in_band,
                "ahead": status.ahead, "trend": status.trend, "status_reason": status.reason})
        out[k.id] = facts
    return out
