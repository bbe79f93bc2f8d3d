"""What a judgement keeps for the next pass, so that it can judge only what changed.

After every full judgement the store keeps, per item, the hash of what other items and KPIs
read from it (its KPIs and weights, state, size, dates, links, entity keys), the second of
the day its ages grow, its guardrail and conflict facts, its findings, its join keys and its
shares of the KPIs' counts; and for the portfolio a digest of the rules, config, measurements
and the KPI status fields task rules read, the KPI findings, how many flagged items share
each KPI's value at risk, and the moments within a day at which a KPI's trailing window gains
or loses an item.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta

from tether.kpi.status import KpiStatus
from tether.model import Finding, Mapping, Measurement, Task, WriteOp
from tether.pipeline.assess import Examination, at_risk, flagged_counts
from tether.pipeline.incremental import fingerprint
from tether.pipeline.places import join_keys
from tether.pipeline.verdicts import Totals
from tether.rules.entities import EntityKeys
from tether.rules.evaluate import conditions, fields_shown
from tether.rules.signals import served
from tether.rules.window import closed_at
from tether.store.db import Store
from tether.store.judged import JudgedRow
from tether.store.tables import utc
from tether.workspace import Workspace

VERSION = 4
# What task facts read of a KPI's status (own_links, the guardrail join); the KPI facts read
# all of STATUS_FIELDS, and some of those (the expected value in ``reason``) move by the minute.
TASK_STATUS = ("status", "value", "trend")
STATUS_FIELDS = ("status", "lifecycle", "value", "attainment", "forecast_attainment",
                 "value_at_risk", "in_band", "ahead", "trend", "reason")


def status_digest(statuses: dict[str, KpiStatus], fields: tuple[str, ...]) -> str:
    return fingerprint({k: [getattr(s, f) for f in fields] for k, s in statuses.items()})


def inputs(ws: Workspace, measurements: list[Measurement], statuses: dict[str, KpiStatus],
           now: datetime) -> str:
    """Digest of everything besides the items that a judgement depends on, as of ``now``.
    How sources and KPI sources are reached (URLs, tokens) is not: only what they gave."""
    config = {**asdict(ws.config), "sources": [s.name for s in ws.config.sources],
              "kpi_sources": []}
    return fingerprint({
        "v": VERSION, "day": utc(now).date().isoformat(), "config": config,
        "rules": [repr(r) for r in (*ws.rules.mappings, *ws.rules.signals)],
        "markup": {n: repr(c.capabilities) for n, c in ws.connectors.items()},
        "measurements": [(m.kpi, m.at, m.value) for m in measurements],
        "statuses": status_digest(statuses, TASK_STATUS)})


def portfolio_row(task: Task, weights: Iterable[tuple[str, float]], keys: EntityKeys) -> str:
    """Hash of what other items and the KPIs read from ``task`` (its KPIs and weights)."""
    return fingerprint([sorted(weights), task.status_category, task.estimate, task.created,
                  closed_at(task), sorted(link.target for link in task.links),
                  sorted(f"{k[0]}|{k[1]}|{v}" for k, v in keys.of(task).items())])


def minute(moment: datetime) -> int:
    """Whole minutes since the Unix epoch: when an item's age next matters is kept so."""
    return int(utc(moment).timestamp() // 60)


DAILY = "daily"  # an age shown in a message, or compared with no constant: every day counts


@dataclass(frozen=True)
class Aging:
    """For ``age_days`` and ``idle_days``: None (no rule reads it), DAILY, or the ages at
    which a rule's test of it can turn (``t`` and ``t + 1`` for each constant ``t``)."""

    age: frozenset[int] | str | None
    idle: frozenset[int] | str | None


def aging(ws: Workspace) -> Aging:
    """When the rules care that an item's ages grew (a rule change judges everything again
    anyway)."""
    rules = (*ws.rules.mappings, *ws.rules.signals)

    def turns(name: str) -> frozenset[int] | str | None:
        shown = any(name in fields_shown(r) for r in rules)
        tests = [c for r in rules for c in conditions(r.when) if c.field == name]
        if shown:
            return DAILY
        values: set[int] = set()
        for cond in tests:
            args = cond.arg if isinstance(cond.arg, list | tuple) else [cond.arg]
            if not all(isinstance(a, int | float) and not isinstance(a, bool) for a in args):
                return DAILY
            values.update(v for a in args for v in (math.floor(a), math.floor(a) + 1))
        return frozenset(values) if tests else None

    return Aging(turns("age_days"), turns("idle_days"))


def due(since: datetime | None, turns: frozenset[int] | str | None, now: datetime
        ) -> int | None:
    """The minute an age counted from ``since`` next reaches a value in ``turns`` after
    ``now`` (see Aging); None when it never will."""
    if since is None or turns is None:
        return None
    age = (utc(now) - utc(since)).days
    ahead = age + 1 if isinstance(turns, str) else min((v for v in turns if v > age),
                                                        default=None)
    return None if ahead is None else minute(utc(since) + timedelta(days=ahead))


def ticks(task: Task, ages: Aging, now: datetime) -> tuple[int | None, int | None]:
    """The minutes at which ``task``'s age and idle days next matter to a rule."""
    return (due(task.created, ages.age, now),
            due(task.updated or task.created, ages.idle, now))


def weights_of(mappings: Iterable[Mapping]) -> dict[str, list[tuple[str, float]]]:
    out: dict[str, list[tuple[str, float]]] = {}
    for m in mappings:
        out.setdefault(m.task, []).append((m.kpi, m.weight))
    return out


def window_moments(ws: Workspace, tasks: list[Task], mappings: list[Mapping],
             measurements: list[Measurement], now: datetime) -> list[tuple[float, str]]:
    """Moments in the next day at which a KPI's trailing window gains or loses an item (with
    its ref) or a measurement (with ""): a pass after one counts that KPI again."""
    by_ref = {t.ref: t for t in tasks}
    span = timedelta(days=ws.config.judgement.window_days)
    found: set[tuple[datetime, str]] = set()
    kpis = {k.id: k for k in ws.config.kpis}
    for m in mappings:
        task, kpi = by_ref.get(m.task), kpis.get(m.kpi)
        if task is None or kpi is None:
            continue
        lag = timedelta(days=kpi.lag_days)
        closed = closed_at(task)
        found.update((x, task.ref) for x in (task.created and task.created + lag,
                                             closed and closed + lag,
                                             closed and closed + lag + span) if x is not None)
    found.update((x, "") for m in measurements for x in (m.at, m.at + span))
    start, end = utc(now), utc(now) + timedelta(days=1)
    return sorted((utc(x).timestamp(), ref) for x, ref in found if start < utc(x) <= end)


def record_full(ws: Workspace, store: Store, tasks: list[Task], seen: Examination,
                measurements: list[Measurement], now: datetime) -> None:
    """Keep what a full judgement of ``tasks`` found, for the next pass to judge only what
    changes; unsettled until ``settle``."""
    mappings, findings, joins, statuses = seen.mappings, seen.findings, seen.joins, seen.statuses
    keys, weights = ws.config.judgement.entities, weights_of(mappings)
    store.save_places({t.ref: join_keys(t, keys) for t in tasks}, seen.shares, None)
    mine: dict[str, list[Finding]] = {}
    for f in findings:
        mine.setdefault(f.subject, []).append(replace(f, value_at_risk=0.0))
    ages = aging(ws)
    store.save_judged({t.ref: JudgedRow(portfolio_row(t, weights.get(t.ref, []), keys),
                                        *ticks(t, ages, now), joins.get(t.ref),
                                        mine.get(t.ref, []))
                       for t in tasks}, everything=True)
    store.save_judgement({
        "v": VERSION, "at": utc(now).isoformat(), "settled": False, "items": len(tasks),
        "inputs": inputs(ws, measurements, statuses, now),
        "moments": window_moments(ws, tasks, mappings, measurements, now),
        "kpi_findings": [asdict(f) for f in findings if f.subject.startswith("kpi:")],
        "flagged": flagged_counts(findings, served(mappings)), "at_risk": at_risk(statuses),
        "kpi_inputs": status_digest(statuses, STATUS_FIELDS),
        "totals": asdict(Totals.of(mappings, findings)), "held": [], "pending": [],
        "unsaved": []})


def settle(store: Store, pending: set[str], held: list[WriteOp], recorded: bool,
           judged: set[str] | None) -> None:
    """After planning (and applying): the pass finished, so the next may judge only what
    changes. Keeps the items that do not show their verdict yet (the next pass plans them
    again), the writes held back for a person, and, unless the pass ``recorded`` its
    verdicts (a sync), the items it listed (``judged``; None: every one), so that the next
    sync records theirs."""
    record = store.load_judgement()
    if record is None:
        return
    unsaved = record.get("unsaved", [])
    if recorded:
        unsaved = []
    elif judged is None or unsaved is True:
        unsaved = True
    else:
        unsaved = sorted(set(unsaved) | judged)
    record.update(settled=True, pending=sorted(pending), held=[asdict(op) for op in held],
                  unsaved=unsaved)
    store.save_judgement(record)


