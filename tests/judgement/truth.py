"""Ground truth straight from the README's drift signal table (the drift signals' contract), never
from the drift pack: which (subject, signal) pairs a portfolio must raise.

Where the definitions leave a reading open (may the guardrail partner item be closed? which
measurement is the value at the window's start? a date a day off a boundary?), the truth is
computed under each reading and the pairs the readings disagree on are left unscored.
Each step of the definitions is a small method, so ``mutants.py`` can misread one at a time."""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import combinations

from .kpiplan import NO_IMPACT_DAYS, KpiPlan, moved_share
from .portfolio import Entities, Item, Pair

DAY = timedelta(days=1)


@dataclass(frozen=True)
class Reading:
    """One way of reading the parts the definitions leave open; the default is the plain one."""

    closed_guard_partner: bool = True  # "an item serving g" may be a closed item
    start: str = "before"  # no_impact's start value: before / interp / after the start time
    baseline_point: bool = True  # the baseline counts as a value at its date
    window_slack: float = 0.0  # days the no_impact window is widened (or narrowed, < 0)
    idle_slack: int = 0
    grace_slack: int = 0
    share_slack: float = 0.0  # starved's half and misallocated's 0.15 and 0.1 moved by this
    move_slack: float = 0.0  # no_impact's 10 % moved by this


READINGS = (
    Reading(), Reading(closed_guard_partner=False), Reading(start="interp"),
    Reading(start="after"), Reading(baseline_point=False), Reading(window_slack=2.0),
    Reading(window_slack=-2.0), Reading(idle_slack=1), Reading(idle_slack=-1),
    Reading(grace_slack=1), Reading(grace_slack=-1), Reading(share_slack=0.012),
    Reading(share_slack=-0.012), Reading(move_slack=0.02), Reading(move_slack=-0.02),
)


DEFAULT_ENTITIES = Entities()


def entity_keys(item: Item, entities: Entities = DEFAULT_ENTITIES) -> frozenset[tuple[str, ...]]:
    """The item's entity keys (the signal definitions): labels matching the entity patterns
    (case-insensitive), components, and custom fields named like an entity."""
    keys: set[tuple[str, ...]] = set()
    patterns = [p.lower() for p in entities.labels]
    for label in item.labels:
        if any(fnmatch.fnmatchcase(label.lower(), p) for p in patterns):
            keys.add(("label", label.lower()))
    if entities.components:
        keys.update(("component", c.lower()) for c in item.components)
    fields = {f.lower() for f in entities.fields}
    for name, value in item.custom.items():
        if name.lower() in fields:  # a multi-valued field names each of its values
            keys.update(("field", name.lower(), str(v).lower())
                        for v in (value if isinstance(value, list) else [value]) if v not in (None, ""))
    return frozenset(keys)


def key_text(key: tuple[str, ...]) -> str:
    """How a shared key reads in a message: the label, the component, or the field's value."""
    return key[-1]


class Judge:
    """The definitions applied to one portfolio under one reading."""

    grace_days = 7
    idle_days = 14
    window_days = NO_IMPACT_DAYS
    var_gate = 1_000_000.0

    def __init__(self, kpis: list[KpiPlan], items: list[Item], now: datetime,
                 reading: Reading = Reading(), entities: Entities = DEFAULT_ENTITIES):
        self.kpis = {k.id: k for k in kpis}
        self.items = items
        self.now = now
        self.r = reading
        self.entities = entities
        self.by_ref = {i.ref: i for i in items}
        self.keys = {i.ref: self.keys_of(i) for i in items}
        self.linked: dict[str, set[str]] = defaultdict(set)
        for i in items if entities.links else ():
            for _, target in i.links:
                other = f"{i.source}:{target}"
                if other in self.by_ref and other != i.ref:
                    self.linked[i.ref].add(other)
                    self.linked[other].add(i.ref)
        self.found: dict[Pair, str] = {}
        self.unclear: set[Pair] = set()
        # What a finding's message must name: every group, by any one of its spellings.
        self.names: dict[Pair, list[set[str]]] = {}

    # -- the small steps (mutants.py overrides these) ---------------------------------------

    def keys_of(self, item: Item) -> frozenset[tuple[str, ...]]:
        return entity_keys(item, self.entities)

    def touches(self, a: Item, b: Item) -> str | None:
        """What two items share: an entity key or a link; None when nothing."""
        shared = self.keys[a.ref] & self.keys[b.ref]
        if shared:
            return key_text(sorted(shared)[0])
        return "a link" if b.ref in self.linked[a.ref] else None

    def judged(self, item: Item) -> bool:
        """Task signals look at open items only."""
        return item.open

    def counts_as_active(self, k: KpiPlan) -> bool:
        """Serving this KPI keeps an item tethered."""
        return k.active

    def closed_on(self, k: KpiPlan) -> datetime | None:
        return k.closed_on

    def last_close(self, closes: list[datetime]) -> datetime:
        return max(closes)

    def stalls(self, k: KpiPlan) -> bool:
        """Idle work on this KPI is stalled work."""
        return k.active and k.slipping

    def pushes(self, k: KpiPlan) -> bool:
        """An active KPI whose trend is improving: its guardrails are watched."""
        return k.active and k.trend == "improving"

    def guard_partners(self, g: KpiPlan) -> list[Item]:
        return [i for i in self.items if g.id in i.serves and (i.open or self.r.closed_guard_partner)]

    def drives(self, a: Item, g: KpiPlan, partners: list[Item]) -> str | None:
        """Why open item ``a`` on the improving KPI drives guardrail ``g``'s breach, if it does."""
        if g.id in a.serves:
            return f"also serves {g.id}"
        for b in partners:
            via = self.touches(a, b) if b.ref != a.ref else None
            if via:
                return f"shares {via} with {b.ref} on {g.id}"
        return None

    def tradeoff_pairs(self) -> set[frozenset[str]]:
        return {frozenset((k.id, r)) for k in self.kpis.values() for r in k.tradeoffs
                if k.active and self.kpis[r].active}

    def conflict_items(self) -> list[Item]:
        return [i for i in self.items if i.open and any(self.kpis[k].active for k in i.serves)]

    def weighted(self) -> dict[str, KpiPlan]:
        return {k.id: k for k in self.kpis.values() if k.active and k.weight > 0}

    def judged_for_allocation(self, k: KpiPlan) -> bool:
        return k.active and k.weight > 0

    def effort(self, item: Item) -> float:
        return item.effort

    def split(self, item: Item, weighted: dict[str, KpiPlan]) -> dict[str, float]:
        """An open item's effort on each weighted KPI it serves, split by mapping weights."""
        mine = {kid: w for kid, w in item.serves.items() if kid in weighted}
        total = sum(mine.values())
        return {kid: self.effort(item) * w / total for kid, w in mine.items()}

    def starved(self, share: float, weight_share: float, open_items: int) -> bool:
        """Given that the KPI is weighted and slipping."""
        return share < weight_share / 2 + self.r.share_slack or open_items <= 2

    def misallocated(self, gap: float, tvd: float) -> bool:
        s = self.r.share_slack
        return tvd > 0.1 + s and gap > 0.15 + s

    def window(self, k: KpiPlan) -> tuple[datetime, datetime]:
        end = self.now - timedelta(days=k.lag_days)
        slack = timedelta(days=self.r.window_slack)
        return end - timedelta(days=self.window_days) - slack, end + slack

    def in_window(self, k: KpiPlan, lo: datetime, hi: datetime) -> tuple[list[Item], list[Item]]:
        """(items active in the window, those of them closed in it)."""
        linked = [i for i in self.items if k.id in i.serves]
        active = [i for i in linked if i.created <= hi and (i.resolved is None or i.resolved >= lo)]
        return active, [i for i in active if i.resolved is not None and lo <= i.resolved <= hi]

    def moved(self, k: KpiPlan) -> float | None:
        return moved_share(k, self.now, self.r.start, self.r.baseline_point)

    def gates(self, k: KpiPlan) -> bool:
        return k.gate

    # -- the signals ----------------------------------------------------------------------

    def flag(self, subject: str, signal: str, why: str, names: list[set[str]] | None = None) -> None:
        """Raise (subject, signal); ``names`` adds to what its message must name (a second
        reason to raise it widens each group: any of them will do)."""
        pair = (subject, signal)
        self.found.setdefault(pair, why)
        if names:
            have = self.names.setdefault(pair, [set() for _ in names])
            for group, more in zip(have, names, strict=True):
                group.update(more)

    def run(self) -> tuple[dict[Pair, str], set[Pair]]:
        self.task_signals()
        self.guardrail()
        self.conflict()
        self.allocation()
        self.no_impact()
        for k in self.kpis.values():
            if self.gates(k):
                why = "outside its tolerance band" if k.behind else f"value at risk {k.var:,.0f}"
                self.flag(f"kpi:{k.id}", "gate", why)
        return self.found, self.unclear

    def task_signals(self) -> None:
        for item in self.items:
            if not self.judged(item):
                continue
            served = [self.kpis[k] for k in item.serves]
            if not any(self.counts_as_active(k) for k in served):
                self.untethered_or_zombie(item, [k for k in served if not k.active])
            idle = int((self.now - item.updated) / DAY)
            slipping = [k.id for k in served if self.stalls(k)]
            if slipping and idle >= self.idle_days + self.r.idle_slack:
                self.flag(item.ref, "stalled", f"idle {idle} days on slipping {', '.join(slipping)}")

    def untethered_or_zombie(self, item: Item, closed: list[KpiPlan]) -> None:
        if not closed:
            self.flag(item.ref, "untethered", "serves no active KPI")
            return
        closes = [self.closed_on(k) for k in closed]
        if any(c is None for c in closes):
            self.unclear.update({(item.ref, "untethered"), (item.ref, "zombie")})
            return
        close = self.last_close([c for c in closes if c is not None])
        last = max(item.created, item.updated)
        if last - close > timedelta(days=self.grace_days + self.r.grace_slack):
            self.flag(item.ref, "zombie", f"changed {(last - close).days} days after the "
                      f"close ({close.date()}) of {', '.join(k.id for k in closed)}")
        elif last < close:  # neither a zombie nor winding down: the definitions do not say
            self.unclear.update({(item.ref, "untethered"), (item.ref, "zombie")})

    def guardrail(self) -> None:
        for k in self.kpis.values():
            if not self.pushes(k):
                continue
            breached = []
            for gr in k.guardrails:
                g = self.kpis[gr["kpi"]]
                v = g.latest
                if v is not None and (("floor" in gr and v < gr["floor"])
                                      or ("ceiling" in gr and v > gr["ceiling"])):
                    breached.append(g)
            if not breached:
                continue
            self.flag(f"kpi:{k.id}", "guardrail", "improving while " + ", ".join(
                f"{g.id} is past its limit" for g in breached),
                [{part} for g in breached for part in (g.id, g.owner)])
            for g in breached:
                partners = self.guard_partners(g)
                for a in self.items:
                    if self.judged(a) and k.id in a.serves:
                        why = self.drives(a, g, partners)
                        if why:
                            self.flag(a.ref, "guardrail", f"serves {k.id}; {why} (breached)",
                                      [{g.owner}])

    def spellings(self, a: Item, b: Item) -> set[str]:
        """How a message may name what two items share: a shared key as the item shows it
        (the label, the component, the field's value), or for a link either item."""
        out = set()
        values = [v for value in a.custom.values() for v in (value if isinstance(value, list) else [value])]
        for key in self.keys[a.ref] & self.keys[b.ref]:
            out.add(key_text(key))
            out.update(label for label in a.labels if label.lower() == key_text(key))
            out.update(str(v) for v in values if str(v).lower() == key_text(key))
        if b.ref in self.linked[a.ref]:
            out.update({a.ref, b.ref, a.key, b.key})
        return out

    def conflict(self) -> None:
        pairs = self.tradeoff_pairs()
        if not pairs:
            return
        for a, b in combinations(self.conflict_items(), 2):
            via = self.touches(a, b)
            if not via:
                continue
            for ka in a.serves:
                hit = next((kb for kb in b.serves if frozenset((ka, kb)) in pairs), None)
                if hit:
                    said = self.spellings(a, b)
                    self.flag(a.ref, "conflict", f"{ka} vs {hit}: shares {via} with {b.ref}", [said])
                    self.flag(b.ref, "conflict", f"{hit} vs {ka}: shares {via} with {a.ref}", [said])
                    break

    def allocation(self) -> None:
        weighted = self.weighted()
        if not weighted:
            return
        effort: dict[str, float] = defaultdict(float)
        open_items: dict[str, int] = defaultdict(int)
        for item in self.items:
            if item.open:
                for kid in item.serves:
                    open_items[kid] += 1
                for kid, e in self.split(item, weighted).items():
                    effort[kid] += e
        total_e = sum(effort.values())
        total_w = sum(k.weight for k in weighted.values())
        p = {kid: k.weight / total_w for kid, k in weighted.items()}
        a = {kid: (effort[kid] / total_e if total_e else 0.0) for kid in weighted}
        tvd = 0.5 * sum(abs(a[kid] - p[kid]) for kid in weighted)
        for kid, k in self.kpis.items():
            if not self.judged_for_allocation(k):
                continue
            ak, pk = a.get(kid, 0.0), p.get(kid, 0.0)
            if k.slipping and self.starved(ak, pk, open_items[kid]):
                self.flag(f"kpi:{kid}", "starved", f"slipping; effort share {ak:.3f} vs weight "
                          f"share {pk:.3f}, {open_items[kid]} open items")
            if self.misallocated(abs(ak - pk), tvd):
                self.flag(f"kpi:{kid}", "misallocated", f"effort share {ak:.3f} vs weight "
                          f"share {pk:.3f}, total variation {tvd:.3f}")

    def no_impact(self) -> None:
        for k in self.kpis.values():
            if not k.slipping:
                continue
            lo, hi = self.window(k)
            active, done = self.in_window(k, lo, hi)
            if len(active) < 3 or 2 * len(done) < len(active):
                continue
            share = self.moved(k)
            if share is None:
                self.unclear.add((f"kpi:{k.id}", "no_impact"))
            elif share < 0.1 + self.r.move_slack:
                self.flag(f"kpi:{k.id}", "no_impact", f"{len(done)} of {len(active)} items in the "
                          f"window closed; moved {share:.1%} of the remaining distance")


@dataclass
class Truth:
    """What must be raised (with why), what is left unscored, and what messages must name."""

    expected: dict[Pair, str]
    ignore: set[Pair]
    names: dict[Pair, list[set[str]]]


def ground_truth(kpis: list[KpiPlan], items: list[Item], now: datetime,
                 entities: Entities = DEFAULT_ENTITIES) -> Truth:
    """The definitions' verdict, scoring only the pairs every reading in READINGS agrees on."""
    judge = Judge(kpis, items, now, entities=entities)
    base, unclear = judge.run()
    ignore = set(unclear)
    for reading in READINGS[1:]:
        other, other_unclear = Judge(kpis, items, now, reading, entities).run()
        ignore |= set(base) ^ set(other)
        ignore |= other_unclear
    expected = {pair: why for pair, why in base.items() if pair not in ignore}
    return Truth(expected, ignore, {p: n for p, n in judge.names.items() if p in expected})
