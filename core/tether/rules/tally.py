"""The per-KPI counts behind the KPI facts (open items, effort, the trailing window), as sums
of each item's share, so that a later pass can update them from the items that changed.

Sums are of integers (effort in millionths), so adding and taking away shares in any order
gives exactly what counting the whole portfolio again gives."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from tether.model import KPI, Mapping, Task
from tether.rules.window import in_window, window_span

MICRO = 1_000_000


class Share(NamedTuple):
    """One item's part in one KPI's counts (a tuple: a portfolio holds one per mapping)."""

    open: int  # 1 if the item is open
    effort: int  # millionths of its size counted toward the KPI (open, active weighted KPIs)
    in_window: int  # 1 if open at some time in the KPI's trailing window
    done_in_window: int  # 1 if closed in it


@dataclass
class Tally:
    """One KPI's counts over its linked items."""

    linked: int = 0
    open: int = 0
    effort: int = 0  # millionths
    window_items: int = 0
    window_done: int = 0

    def add(self, share: Share) -> None:
        self.linked += 1
        self.open += share.open
        self.effort += share.effort
        self.window_items += share.in_window
        self.window_done += share.done_in_window


def task_effort(task: Task) -> float:
    """An item's size in the allocation shares: its estimate (0 counts as 0), 1 without one."""
    return 1.0 if task.estimate is None else task.estimate


def weighted_kpis(kpis: Iterable[KPI]) -> set[str]:
    """The KPIs effort is shared across: active ones with a weight."""
    return {k.id for k in kpis if k.is_active and k.weight > 0}


def item_shares(task: Task, weights: dict[str, float], spans: dict[str, tuple[datetime, datetime]],
                weighted: set[str]) -> dict[str, Share]:
    """``task``'s share in each KPI it is mapped to (``weights``: the highest mapping weight
    per KPI; ``spans``: each KPI's trailing window, none without a moment to judge at). An
    open item counts its size toward the active weighted KPIs it serves, split by those
    weights, so one item never counts twice."""
    is_open = int(task.status_category != "done")
    split = {k: w for k, w in weights.items() if k in weighted} if is_open else {}
    total = sum(split.values())
    size = task_effort(task)
    out = {}
    for kid in weights:
        effort = 0
        if kid in split:
            effort = round(size * (split[kid] / total if total else 1 / len(split)) * MICRO)
        span = spans.get(kid)
        active, done = in_window(task, *span) if span is not None else (False, False)
        out[kid] = Share(is_open, effort, int(active), int(done))
    return out


def mapping_weights(mappings: Iterable[Mapping]) -> dict[str, dict[str, float]]:
    """Per task ref, the highest weight of its mappings to each KPI."""
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for m in mappings:
        mine = out[m.task]
        mine[m.kpi] = max(mine.get(m.kpi, m.weight), m.weight)
    return out


def portfolio_shares(kpis: Iterable[KPI], tasks: Iterable[Task], mappings: Iterable[Mapping],
                     now: datetime | None, days: int) -> dict[str, dict[str, Share]]:
    """Every mapped task's shares, by task ref."""
    kpis = list(kpis)
    spans = {k.id: window_span(k, now, days) for k in kpis} if now is not None else {}
    weighted, weights = weighted_kpis(kpis), mapping_weights(mappings)
    alike: dict[Share, Share] = {}  # most items share one of a few values: keep one of each
    return {t.ref: {k: alike.setdefault(s, s)
                    for k, s in item_shares(t, weights[t.ref], spans, weighted).items()}
            for t in tasks if t.ref in weights}


def tallies(shares: Iterable[dict[str, Share]]) -> dict[str, Tally]:
    """Each KPI's counts: the sum of its items' shares."""
    out: dict[str, Tally] = defaultdict(Tally)
    for mine in shares:
        for kid, share in mine.items():
            out[kid].add(share)
    return dict(out)
