"""Where an item sits in the portfolio for the guardrail and conflict joins: the items that
share an entity key or a link with it, found through the join keys the store keeps."""

from __future__ import annotations

from datetime import datetime

from tether.kpi.status import KpiStatus
from tether.model import Mapping, Task
from tether.pipeline.incremental import Recall
from tether.rules.entities import EntityKeys
from tether.rules.language import Rule
from tether.rules.signals import JOIN_FIELDS, link_facts
from tether.rules.tally import portfolio_shares
from tether.store.db import Store
from tether.workspace import Workspace


def kept_mappings(ref: str, ids: tuple[str, ...], by_id: dict[str, Rule]) -> list[Mapping]:
    """The mappings of ``ref`` from the ids of the mapping rules it matched."""
    return [Mapping(ref, by_id[i].kpi or "", i, by_id[i].weight,
                    by_id[i].description or f"matched rule {i}") for i in ids]


def join_keys(task: Task, keys: EntityKeys) -> set[str]:
    """What other items' join facts read from ``task``: its entity keys and its link targets."""
    out = {f"e|{kind}|{value}" for kind, value in keys.of(task)}
    out.update(f"l|{task.source}:{link.target}" for link in task.links)
    return out


class Places:
    """Where the items that changed what others read (``moved``) sit in the portfolio: the
    items whose join facts they may change, and the items those facts are computed from."""

    def __init__(self, ws: Workspace, store: Store, tasks: list[Task], fresh: list[Mapping],
                 moved: set[str], recall: Recall, by_id: dict[str, Rule]):
        self.ws, self.store, self.moved, self.recall, self.by_id = ws, store, moved, recall, by_id
        self.loaded = {t.ref: t for t in tasks}
        self.mapped = set(self.loaded)  # mapped this pass: ``fresh`` holds their mappings
        self.fresh = fresh
        self.keys = store.join_keys(moved)  # as stored: where they were
        self.new_keys = {t.ref: join_keys(t, ws.config.judgement.entities) for t in tasks
                         if t.ref in moved}

    def _around(self, refs: set[str], keys: dict[str, set[str]]) -> set[str]:
        """``refs``, the items sharing a join key with one of them, and those linked to or
        from one of them."""
        mine = {k for r in refs for k in keys.get(r, ())}
        wanted = mine | {f"l|{r}" for r in refs}
        return refs | self.store.holders(wanted) | {k[2:] for k in mine if k.startswith("l|")}

    def near(self) -> set[str]:
        """The items whose join facts may change: the moved ones and those around them,
        where they were and where they are."""
        if not self.moved:
            return set()
        return self._around(self.moved, self.keys) | self._around(self.moved, self.new_keys)

    def tasks(self, refs: set[str]) -> list[Task]:
        """The current snapshots of those of ``refs`` still in the portfolio, in ref order."""
        missing = refs - self.loaded.keys()
        self.loaded.update((t.ref, t) for t in self.store.load_tasks(refs=missing)
                           if t.source in self.ws.connectors)
        return [self.loaded[r] for r in sorted(refs) if r in self.loaded]

    def mappings(self, refs: set[str], kept: bool = False) -> list[Mapping]:
        """The mappings of ``refs`` as they are now (fresh for the items mapped this pass),
        or as the last judgement kept them (``kept``)."""
        mapped = set() if kept else self.mapped
        self.recall.recall(self.store, refs - mapped)
        out = [] if kept else [m for m in self.fresh if m.task in refs]
        for ref in sorted(refs - mapped):
            if ref in self.recall.seen:
                out += kept_mappings(ref, self.recall.seen[ref][1], self.by_id)
        return out

    def joins(self, near: set[str], statuses: dict[str, KpiStatus]) -> dict[str, dict]:
        """The join facts of the ``near`` items, computed on every item they read."""
        if not near:
            return {}
        keys = {**self.store.join_keys(near - self.moved), **self.new_keys}
        tasks = self.tasks(self._around(near, keys))
        cfg = self.ws.config
        facts = link_facts(tasks, self.mappings({t.ref for t in tasks}),
                           {k.id: k for k in cfg.kpis}, statuses, cfg.judgement)
        return {r: {n: facts[r][n] for n in JOIN_FIELDS} for r in near if r in facts}

    def reshare(self, refs: set[str], now: datetime) -> None:
        """Take the KPI shares of ``refs`` (items whose window moment passed) again."""
        tasks = self.tasks(refs)
        if tasks:
            shares = portfolio_shares(self.ws.config.kpis, tasks, self.mappings(set(refs)), now,
                                      self.ws.config.judgement.window_days)
            self.store.save_places(None, shares, {t.ref for t in tasks})

    def save(self, now: datetime) -> None:
        """Keep where the moved items are now, and their shares in the KPIs' counts."""
        moved = [t for r, t in self.loaded.items() if r in self.new_keys]
        judgement = self.ws.config.judgement
        shares = portfolio_shares(self.ws.config.kpis, moved, self.fresh, now,
                                  judgement.window_days)
        self.store.save_places(self.new_keys, shares, self.moved)


