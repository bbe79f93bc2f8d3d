"""Joins across the portfolio for the guardrail and conflict signals: which open items touch
the same thing (a shared entity key, or a link) as work on another KPI.

Both fill task facts in place. Work is per group of items sharing one key, and at most
``LISTED`` refs and keys are kept per item: a vendor shared by thousands of items must not
cost memory quadratic in them."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from tether.model import KPI, Task
from tether.rules.entities import EntityKeys

LISTED = 5  # refs (and keys) named per item; enough to act on, bounded in memory
Key = tuple[str, str]


def _linked(tasks: list[Task]) -> dict[str, set[str]]:
    """Links in both directions, by ref (a link names a key in its own source)."""
    by_key = {(t.source, t.key): t.ref for t in tasks}
    out: dict[str, set[str]] = defaultdict(set)
    for t in tasks:
        for link in t.links:
            other = by_key.get((t.source, link.target))
            if other is not None and other != t.ref:
                out[t.ref].add(other)
                out[other].add(t.ref)
    return out


def _add(listed: list[str], value: str) -> None:
    if value not in listed and len(listed) < LISTED:
        listed.append(value)


def guardrail_drivers(tasks: list[Task], serves: dict[str, set[str]], kpis: dict[str, KPI],
                      breaches: dict[str, list[str]], keys: EntityKeys,
                      facts: dict[str, dict[str, Any]]) -> None:
    """Fill the ``guardrail_*`` facts of the open items that drive a breach: they serve an
    improving KPI whose guardrail is breached and also serve the guardrail, or share an
    entity key or a link with an item that serves it (open or done).

    ``facts`` holds the items that may be flagged (``active_kpis`` and empty join lists);
    an item without an entry is not flagged, though its work on a guardrail still counts."""
    if not breaches:
        return
    rails = {g for crossed in breaches.values() for g in crossed}
    on_rail: dict[str, list[str]] = defaultdict(list)  # guardrail -> refs serving it
    for t in tasks:
        for g in serves.get(t.ref, ()):
            if g in rails:
                on_rail[g].append(t.ref)
    rail_refs = {g: set(refs) for g, refs in on_rail.items()}
    # Entity keys of the items read below only: those on a guardrail and those in facts.
    wanted = facts.keys() | {ref for refs in on_rail.values() for ref in refs}
    entities = {t.ref: keys.of(t) for t in tasks if t.ref in wanted}
    touched: dict[str, dict[Key, str]] = {}  # guardrail -> entity key -> a ref serving it
    for g, refs in on_rail.items():
        index: dict[Key, str] = {}
        for ref in sorted(refs):
            for key in entities[ref]:
                index.setdefault(key, ref)
        touched[g] = index
    linked = _linked(tasks) if keys.links else {}
    none: set[str] = set()
    for t in tasks:
        fact = facts.get(t.ref)
        if fact is None or t.status_category == "done":
            continue
        for k in fact["active_kpis"]:
            for g in breaches.get(k, ()):
                if g == k:
                    continue
                via = _drives(t.ref, g, serves, entities[t.ref], touched.get(g, {}),
                              rail_refs.get(g, none), linked.get(t.ref, none))
                if via is None:
                    continue
                _add(fact["guardrail_pushes"], k)
                _add(fact["guardrail_breaches"], g)
                _add(fact["guardrail_owners"], kpis[g].owner or g)
                _add(fact["guardrail_via"], via)
    for fact in facts.values():
        for name in ("guardrail_pushes", "guardrail_breaches", "guardrail_owners"):
            fact[name].sort()


def _drives(ref: str, g: str, serves: dict[str, set[str]], mine: dict[Key, str],
            touched: dict[Key, str], rail_refs: set[str], links: set[str]) -> str | None:
    """How item ``ref`` touches guardrail ``g``'s work, in words; None if it does not."""
    if g in serves.get(ref, ()):
        return f"it also serves {g}"
    for key in sorted(mine):
        other = touched.get(key)
        if other is not None and other != ref:
            return f"it shares {mine[key]} with {other} on {g}"
    for other in sorted(links & rail_refs):
        return f"it is linked to {other} on {g}"
    return None


def conflicts(tasks: list[Task], facts: dict[str, dict[str, Any]], kpis: dict[str, KPI],
              keys: EntityKeys) -> None:
    """Fill ``conflicts_with``, ``conflict_kpis`` and ``conflict_keys``: open items serving
    active KPIs declared as trade-offs (either side) that share an entity key or a link.

    ``facts`` holds the items that may be flagged (``active_kpis`` and empty join lists);
    an item without an entry takes no part."""
    rivals: dict[str, set[str]] = defaultdict(set)
    for k in kpis.values():
        for other in k.tradeoffs:
            rivals[k.id].add(other)
            rivals[other].add(k.id)
    if not rivals:
        return
    refs = [t.ref for t in tasks]  # a ref is a new text each time it is read
    serving = {ref: fact["active_kpis"] for ref, t in zip(refs, tasks, strict=True)
               if t.status_category != "done" and (fact := facts.get(ref)) is not None
               and not rivals.keys().isdisjoint(fact["active_kpis"])}
    members = [t for ref, t in zip(refs, tasks, strict=True) if ref in serving]
    del refs
    groups: dict[Key, set[str]] = defaultdict(set)
    shown: dict[Key, str] = {}
    for t in members:
        for key, words in keys.of(t).items():
            groups[key].add(t.ref)
            shown[key] = words
    if keys.links:
        for ref, linked in _linked(members).items():
            for other in linked:
                key = ("link", "|".join(sorted((ref, other))))
                groups[key] |= {ref, other}
                shown[key] = "a link"
    # Keys in sorted order, not the items' order: the items listed when more than LISTED
    # conflict are the same whether the whole portfolio is joined or a part around them.
    for key, group in sorted(groups.items()):
        by_kpi: dict[str, list[str]] = defaultdict(list)
        for ref in sorted(group):
            for kid in serving[ref]:
                by_kpi[kid].append(ref)
        for kid, refs in by_kpi.items():
            for rival in sorted(rivals[kid] & by_kpi.keys()):
                across = by_kpi[rival]
                alone = across[0] if len(across) == 1 else None  # no one else serves it
                for ref in refs:
                    if ref == alone:
                        continue
                    fact = facts[ref]
                    _add_all(fact["conflicts_with"], across, ref)
                    _add(fact["conflict_kpis"], rival)
                    _add(fact["conflict_keys"], shown[key])
    for fact in facts.values():
        fact["conflicts_with"].sort()
        fact["conflict_kpis"].sort()


def _add_all(listed: list[str], values: list[str], skip: str) -> None:
    """_add each of ``values`` but ``skip``, in order: stops once ``listed`` is full, so an
    item in a group of thousands costs LISTED steps, not thousands."""
    for value in values:
        if len(listed) >= LISTED:
            return
        if value != skip and value not in listed:
            listed.append(value)
