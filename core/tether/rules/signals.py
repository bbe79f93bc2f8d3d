"""Facts drift rules see besides task fields, computed in Python before posting.

Task facts come from the task's links to KPIs and from the portfolio around it (guardrail
and conflict joins); KPI facts are aggregates over the KPI's linked work. The definitions
are the README's drift signal table; the rules in ``rules/drift`` only compare them.
"""

from __future__ import annotations

from collections import abc, defaultdict
from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tether.model import KPI, Mapping, Measurement, Task
from tether.rules.entities import EntityKeys
from tether.rules.fields import BOOL, LIST, NUM, STR, TASK_CATALOG, Catalog, Field
from tether.rules.joins import conflicts, guardrail_drivers
from tether.rules.tally import (
    MICRO,
    Tally,
    portfolio_shares,
    tallies,
    weighted_kpis,
)
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


def served(mappings: Iterable[Mapping], shared: bool = False) -> dict[str, set[str]]:
    """The KPIs each task is mapped to, by task ref. With ``shared``, tasks mapped to the
    same KPIs share one set (read it, do not change it; a ref not mapped is absent)."""
    out: dict[str, set[str]] = defaultdict(set)
    for m in mappings:
        out[m.task].add(m.kpi)
    if not shared:
        return out
    # A portfolio has few distinct sets: one set per task is most of this dict's memory.
    pool: dict[frozenset[str], set[str]] = {}
    return {ref: pool.setdefault(frozenset(ids), ids) for ref, ids in out.items()}


def link_facts(tasks: Iterable[Task], mappings: Iterable[Mapping], kpis: dict[str, KPI],
               statuses: dict[str, Any] | None = None, judgement: Judgement = Judgement()
               ) -> dict[str, dict]:
    """Per task ref, the drift fields derived from its mappings, its KPIs' state and the
    work around it (TaskLinks gives the same values one task at a time)."""
    tasks = list(tasks)
    serves = served(mappings)
    statuses = statuses or {}
    out = {task.ref: own_links(task, serves.get(task.ref, _NONE), kpis, statuses)
           for task in tasks}
    for ref, joined in join_facts(tasks, serves, kpis, statuses, judgement).items():
        out[ref].update(joined)
    return out


# The drift fields joins with other items fill (guardrail_drivers, conflicts).
JOIN_FIELDS = ("guardrail_pushes", "guardrail_breaches", "guardrail_owners", "guardrail_via",
               "conflicts_with", "conflict_kpis", "conflict_keys")
_NONE: frozenset[str] = frozenset()


def own_links(task: Task, ids: AbstractSet[str], kpis: dict[str, KPI],
              statuses: dict[str, Any]) -> dict[str, Any]:
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


def join_facts(tasks: list[Task], serves: dict[str, set[str]], kpis: dict[str, KPI],
               statuses: dict[str, Any], judgement: Judgement = Judgement()
               ) -> dict[str, dict[str, list[str]]]:
    """Per task ref, its join fields that are not empty (guardrail_drivers, conflicts),
    for the tasks that have any: what link_facts adds to own_links."""
    breaches = breached_guardrails(kpis, statuses)
    joined = breaches.keys() | {i for k in kpis.values() if k.tradeoffs
                                for i in (k.id, *k.tradeoffs)}
    if not joined:
        return {}
    # Only open items serving an active KPI that has a breached guardrail or a trade-off
    # can be flagged: the joins get entries for those alone, not for the whole portfolio.
    facts: dict[str, dict[str, Any]] = {}
    subjects = []
    for t in tasks:
        if t.status_category == "done":
            continue
        ids = serves.get(ref := t.ref)
        if not ids or joined.isdisjoint(ids):
            continue
        active = sorted(i for i in ids if i in kpis and kpis[i].is_active)
        if not joined.isdisjoint(active):
            facts[ref] = {"active_kpis": active, **{name: [] for name in JOIN_FIELDS}}
            subjects.append(t)
    guardrail_drivers(tasks, serves, kpis, breaches, judgement.entities, facts)
    # Items that are not subjects take no part in conflicts: they need not be read.
    conflicts(subjects, facts, kpis, judgement.entities)
    return {ref: found for ref, fact in facts.items()
            if (found := {name: fact[name] for name in JOIN_FIELDS if fact[name]})}


class TaskLinks(abc.Mapping[str, dict[str, Any]]):
    """link_facts' value for each task of ``by_ref``, built when it is looked up and not
    kept: the drift fields of the whole portfolio are never alive at once. ``joins`` is
    join_facts' result. Values are shared between tasks: read them, do not change them."""

    def __init__(self, by_ref: dict[str, Task], serves: dict[str, set[str]],
                 kpis: dict[str, KPI], statuses: dict[str, Any],
                 joins: dict[str, dict[str, list[str]]]):
        self._tasks, self._kpis, self._joins = by_ref, kpis, joins
        # All of own_links but changed_after_close_days depends on the task's KPIs alone,
        # and a portfolio has few distinct sets of them: one dict per set, by ref.
        by_set: dict[frozenset[str], dict[str, Any]] = {}
        self._own: dict[str, dict[str, Any]] = {}
        for ref, ids in serves.items():
            if ref in by_ref:
                key = frozenset(ids)
                if key not in by_set:
                    by_set[key] = own_links(by_ref[ref], ids, kpis, statuses)
                self._own[ref] = by_set[key]
        self._unmapped = by_set.get(_NONE)
        self._statuses = statuses

    def __getitem__(self, ref: str) -> dict[str, Any]:
        task = self._tasks[ref]
        own = self._own.get(ref)
        if own is None:
            if self._unmapped is None:
                self._unmapped = own_links(task, _NONE, self._kpis, self._statuses)
            own = self._unmapped
        joined = self._joins.get(ref)
        after_close = own["closed_kpis"] and not own["active_kpis"]
        if not joined and not after_close:
            return own
        facts = own.copy()
        if after_close:  # from the task's own dates
            facts["changed_after_close_days"] = _after_close(
                task, [self._kpis[i] for i in own["closed_kpis"]])
        if joined:
            facts.update(joined)
        return facts

    def __iter__(self) -> Iterator[str]:
        return iter(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)


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
    """Per KPI id, the fields KPI-subject drift rules see, counted over ``tasks``."""
    kpis = list(kpis)
    shares = portfolio_shares(kpis, tasks, mappings, now, judgement.window_days)
    return facts_of_tallies(kpis, tallies(shares.values()), statuses, measurements, now,
                            judgement)


def facts_of_tallies(kpis: Iterable[KPI], counts: dict[str, Tally],
                     statuses: dict[str, Any] | None = None,
                     measurements: Iterable[Measurement] = (), now: datetime | None = None,
                     judgement: Judgement = Judgement()) -> dict[str, dict[str, Any]]:
    """Per KPI id, the fields KPI-subject drift rules see, from each KPI's ``counts``.

    Shares are taken over active weighted KPIs (weight > 0) (see tally.item_shares);
    unweighted KPIs such as guardrails are never over- or under-fed."""
    kpis = list(kpis)
    by_id = {k.id: k for k in kpis}
    weighted = weighted_kpis(kpis)
    empty = Tally()
    all_effort = sum(counts.get(k, empty).effort for k in weighted)
    all_weight = sum(by_id[k].weight for k in weighted)

    def share_of(kid: str) -> tuple[float, float]:
        if kid not in weighted:
            return 0.0, 0.0
        return (counts.get(kid, empty).effort / all_effort if all_effort else 0.0,
                by_id[kid].weight / all_weight if all_weight else 0.0)

    tvd = 0.5 * sum(abs(e - w) for e, w in map(share_of, weighted))
    statuses = statuses or {}
    breaches = breached_guardrails(by_id, statuses)
    measured: dict[str, list[Measurement]] = defaultdict(list)
    for point in measurements:
        measured[point.kpi].append(point)
    out = {}
    for k in kpis:
        count = counts.get(k.id, empty)
        effort_share, weight_share = share_of(k.id)
        facts: dict[str, Any] = {
            "kpi": k.id, "name": k.name, "owner": k.owner, "lifecycle": k.lifecycle,
            "weight": k.weight, "weight_share": round(weight_share, 4),
            "open_items": count.open, "open_work": _plural(count.open, "open item"),
            "open_effort": round(count.effort / MICRO, 3),
            "effort_share": round(effort_share, 4),
            "share_gap": round(effort_share - weight_share, 4),
            "effort_to_weight": round(effort_share / weight_share, 4) if weight_share else None,
            "effort_pct": round(100 * effort_share), "weight_pct": round(100 * weight_share),
            "allocation_tvd": round(tvd, 4), "linked_items": count.linked,
            "done_items": count.linked - count.open,
            "breached_guardrails": breaches.get(k.id, []),
            "guardrail_text": _guardrail_text(k, breaches.get(k.id, []), by_id, statuses),
            "guardrail_owners": sorted({by_id[g].owner or g for g in breaches.get(k.id, [])
                                        if g in by_id}),
        }
        if now is not None:
            facts.update(window_facts(k, count.window_items, count.window_done, measured[k.id],
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
