"""Plausible misreadings of the signal definitions, one per class: a drift pack that made one of them
would raise a different set of findings. The generator must plant decoys that tell each one
apart from the definitions, or the benchmark could not catch it (see ``coverage``)."""

from __future__ import annotations

import fnmatch
from datetime import datetime, timedelta

from .kpiplan import KpiPlan, moved_share
from .portfolio import Item, Portfolio
from .truth import Judge


class ClosedItemsJudged(Judge):
    """Task signals on closed items too."""

    def judged(self, item: Item) -> bool:
        return True


class WeightZeroUntethers(Judge):
    """Work serving only a weight-0 (guardrail) KPI counted as untethered."""

    def counts_as_active(self, k: KpiPlan) -> bool:
        return k.active and k.weight > 0


class NoGrace(Judge):
    """Zombie without the grace period: winding-down work flagged."""

    grace_days = 0


class EarliestClose(Judge):
    """Zombie measured from the earliest close of the KPIs an item serves, not the latest."""

    def last_close(self, closes: list[datetime]) -> datetime:
        return min(closes)


class LifecycleChangedOnly(Judge):
    """A KPI achieved and later retired closed when it was retired (achieved_on ignored)."""

    def closed_on(self, k: KpiPlan) -> datetime | None:
        return k.lifecycle_changed or k.retired_on or k.achieved_on


class ReactivatedClosed(Judge):
    """An active KPI with a lifecycle_changed date (paused, then re-activated) read as closed."""

    def counts_as_active(self, k: KpiPlan) -> bool:
        return k.active and k.lifecycle_changed is None

    def untethered_or_zombie(self, item: Item, closed: list[KpiPlan]) -> None:
        more = [self.kpis[kid] for kid in item.serves if self.kpis[kid].active]
        super().untethered_or_zombie(item, closed + more)

    def closed_on(self, k: KpiPlan) -> datetime | None:
        return k.closed_on or k.lifecycle_changed


class StalledAnyKpi(Judge):
    """Idle work flagged as stalled whatever its KPI's status."""

    def stalls(self, k: KpiPlan) -> bool:
        return k.active


class StalledWeightedOnly(Judge):
    """Idle work on a slipping weight-0 KPI not flagged."""

    def stalls(self, k: KpiPlan) -> bool:
        return k.active and k.slipping and k.weight > 0


class StalledAfterAWeek(Judge):
    idle_days = 7


class GuardrailAllWork(Judge):
    """Every open item on the improving KPI flagged, not only the work driving the breach."""

    def drives(self, a: Item, g: KpiPlan, partners: list[Item]) -> str | None:
        return "serves the improving KPI"


class GuardrailAnyTrend(Judge):
    """A breached guardrail flags its KPI's work whether or not that KPI improves."""

    def pushes(self, k: KpiPlan) -> bool:
        return k.active


class GuardrailClosedKpi(Judge):
    """A closed KPI's guardrails still watched (its work is all zombie or winding down)."""

    def pushes(self, k: KpiPlan) -> bool:
        return k.trend == "improving"


class NoLinks(Judge):
    """Links between items ignored (guardrail and conflict)."""

    def touches(self, a: Item, b: Item) -> str | None:
        shared = self.keys[a.ref] & self.keys[b.ref]
        return sorted(shared)[0][-1] if shared else None


class LinkedViaNeighbour(Judge):
    """Two items linked to the same third item taken as linked to each other."""

    def touches(self, a: Item, b: Item) -> str | None:
        return super().touches(a, b) or ("a common link" if self.linked[a.ref] & self.linked[b.ref]
                                         else None)


class LooseLabels(Judge):
    """Any label starting with an entity word is a key (segmentation, customer-success...)."""

    def keys_of(self, item: Item) -> frozenset[tuple[str, ...]]:
        keys = set(super().keys_of(item))
        for label in item.labels:
            if label.lower().startswith(("customer", "account", "vendor", "supplier", "segment",
                                         "region")):
                keys.add(("label", label.lower()))
        return frozenset(keys)


class CaseSensitiveLabels(Judge):
    """Entity label patterns matched with case (Segment:SMB missed)."""

    def keys_of(self, item: Item) -> frozenset[tuple[str, ...]]:
        keys = {k for k in super().keys_of(item) if k[0] != "label"}
        for label in item.labels:
            if any(fnmatch.fnmatchcase(label, p) for p in self.entities.labels):
                keys.add(("label", label.lower()))
        return frozenset(keys)


class NoComponents(Judge):
    def keys_of(self, item: Item) -> frozenset[tuple[str, ...]]:
        return frozenset(k for k in super().keys_of(item) if k[0] != "component")


class NoFields(Judge):
    def keys_of(self, item: Item) -> frozenset[tuple[str, ...]]:
        return frozenset(k for k in super().keys_of(item) if k[0] != "field")


class ListFieldWhole(Judge):
    """A multi-valued custom field compared as a whole list, not value by value."""

    def keys_of(self, item: Item) -> frozenset[tuple[str, ...]]:
        keys = {k for k in super().keys_of(item) if k[0] != "field"}
        fields = {f.lower() for f in self.entities.fields}
        keys.update(("field", n.lower(), str(v).lower()) for n, v in item.custom.items()
                    if n.lower() in fields and v not in (None, ""))
        return frozenset(keys)


class AnyFieldIsKey(Judge):
    """Every custom field a key (Team, Priority, customer_tier...)."""

    def keys_of(self, item: Item) -> frozenset[tuple[str, ...]]:
        keys = set(super().keys_of(item))
        keys.update(("field", n.lower(), str(v).lower()) for n, v in item.custom.items()
                    if n != "initiative")
        return frozenset(keys)


class ZombieAlsoUntethered(Judge):
    """An item on closed KPIs only is untethered as well as a zombie (or winding down)."""

    def untethered_or_zombie(self, item: Item, closed: list[KpiPlan]) -> None:
        super().untethered_or_zombie(item, closed)
        if closed:
            self.flag(item.ref, "untethered", "serves only closed KPIs")


class WindingDownUntethered(Judge):
    """Winding-down work (changed within the grace period after the close) untethered."""

    def untethered_or_zombie(self, item: Item, closed: list[KpiPlan]) -> None:
        super().untethered_or_zombie(item, closed)
        if closed and (item.ref, "zombie") not in self.found:
            self.flag(item.ref, "untethered", "winding down")


class ConflictClosedPartner(Judge):
    def conflict_items(self) -> list[Item]:
        return [i for i in self.items if any(self.kpis[k].active for k in i.serves)]


class ConflictClosedKpis(Judge):
    """Trade-offs with a closed KPI still conflict."""

    def tradeoff_pairs(self) -> set[frozenset[str]]:
        return {frozenset((k.id, r)) for k in self.kpis.values() for r in k.tradeoffs}

    def conflict_items(self) -> list[Item]:
        return [i for i in self.items if i.open and i.serves]


class ConflictOneSided(Judge):
    """Only the KPI that declares the trade-off is checked (A on k, B on r, k lists r)."""

    def conflict(self) -> None:
        for k in self.kpis.values():
            for rid in k.tradeoffs:
                r = self.kpis[rid]
                if not (k.active and r.active):
                    continue
                for a in self.conflict_items():
                    for b in self.conflict_items():
                        if a is not b and k.id in a.serves and rid in b.serves and self.touches(a, b):
                            self.flag(a.ref, "conflict", f"{k.id} vs {rid}")


class WeightZeroJudged(Judge):
    """Starved and misallocated judge weight-0 KPIs too, their work in the effort shares."""

    def weighted(self) -> dict[str, KpiPlan]:
        return {k.id: k for k in self.kpis.values() if k.active}

    def judged_for_allocation(self, k: KpiPlan) -> bool:
        return k.active


class ClosedKpisInShares(Judge):
    """Closed KPIs with a weight count in the weight and effort shares."""

    def weighted(self) -> dict[str, KpiPlan]:
        return {k.id: k for k in self.kpis.values() if k.weight > 0}


class ZeroEstimateIsOne(Judge):
    """An estimate of 0 read as no estimate (1)."""

    def effort(self, item: Item) -> float:
        return item.estimate or 1.0


class EffortIsCount(Judge):
    """Estimates ignored: every open item counts 1."""

    def effort(self, item: Item) -> float:
        return 1.0


class EvenSplit(Judge):
    """Effort split evenly across an item's KPIs, ignoring mapping weights."""

    def split(self, item: Item, weighted: dict[str, KpiPlan]) -> dict[str, float]:
        mine = [kid for kid in item.serves if kid in weighted]
        return {kid: self.effort(item) / len(mine) for kid in mine}


class StarvedShareOnly(Judge):
    """Starved only on the effort share (two or fewer open items not enough)."""

    def starved(self, share: float, weight_share: float, open_items: int) -> bool:
        return share < weight_share / 2


class StarvedCountOnly(Judge):
    """Starved only on the count of open items (the share ignored)."""

    def starved(self, share: float, weight_share: float, open_items: int) -> bool:
        return open_items <= 2


class NoImpactAbsMoved(Judge):
    """Movement away from the target counted as movement."""

    def moved(self, k: KpiPlan) -> float | None:
        share = super().moved(k)
        return None if share is None else abs(share)


class NoImpactUnshiftedStart(Judge):
    """The start value read at the window's start, not shifted by the lag."""

    def moved(self, k: KpiPlan) -> float | None:
        return moved_share(k, self.now, self.r.start, self.r.baseline_point,
                           back_days=self.window_days + k.lag_days)


class NoLag(Judge):
    """no_impact's window ends now, not lag_days before."""

    def window(self, k: KpiPlan) -> tuple[datetime, datetime]:
        return self.now - timedelta(days=self.window_days), self.now


class AllLinkedWork(Judge):
    """no_impact counts every linked item, not those active in the window."""

    def in_window(self, k: KpiPlan, lo: datetime, hi: datetime) -> tuple[list[Item], list[Item]]:
        linked = [i for i in self.items if k.id in i.serves]
        return linked, [i for i in linked if not i.open]


class GateBothSides(Judge):
    """Far ahead of the path gates too."""

    def gates(self, k: KpiPlan) -> bool:
        return k.active and bool(k.series) and (k.behind or k.ahead or (k.var or 0) >= self.var_gate)


class GateNoValueAtRisk(Judge):
    def gates(self, k: KpiPlan) -> bool:
        return k.active and not k.ahead and bool(k.series) and k.behind


class GateWhenSlipping(Judge):
    """Every slipping KPI gates, in its band or not."""

    def gates(self, k: KpiPlan) -> bool:
        return k.slipping


MUTANTS: dict[str, type[Judge]] = {cls.__name__: cls for cls in Judge.__subclasses__()}


def coverage(portfolio: Portfolio) -> dict[str, int]:
    """For each misreading, how many scored (subject, signal) pairs it gets wrong here."""
    p = portfolio
    base = set(Judge(p.kpis, p.items, p.as_of, entities=p.entities).run()[0]) - p.ignore
    out = {}
    for name, cls in MUTANTS.items():
        mutant = set(cls(p.kpis, p.items, p.as_of, entities=p.entities).run()[0]) - p.ignore
        out[name] = len(base ^ mutant)
    return out
