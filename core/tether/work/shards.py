"""Shards: the pieces of a portfolio a worker takes on its own, one source scope each (a Jira
project, a GitHub repository, an Asana project), or a whole source that does not split."""

from __future__ import annotations

from dataclasses import dataclass, replace

from tether.pipeline.pull import cursor_key
from tether.store.db import Store
from tether.workspace import Workspace


@dataclass(frozen=True, order=True)
class Shard:
    source: str
    scope: str | None = None  # None: the source is pulled and written whole

    @property
    def name(self) -> str:
        """How status, locks, cursors and memory name it: ``github@acme/web``, or ``jira``."""
        return cursor_key(self.source, self.scope)

    @classmethod
    def parse(cls, name: str) -> Shard:
        source, _, scope = name.partition("@")
        return cls(source, scope or None)


def shards_of(ws: Workspace, sources: set[str] | None = None) -> list[Shard]:
    """Every shard of the workspace's sources, in config order then scope order; with
    ``sources``, those it names (a source: all its shards; ``source@scope``: that one)."""
    scopes: dict[str, list[str | None]] = {
        name: list(c.shards()) or [None] for name, c in ws.connectors.items()}
    every = [Shard(name, scope) for name, each in scopes.items() for scope in each]
    return [s for s in every if sources is None or s.source in sources or s.name in sources]


def narrowed(ws: Workspace, shard: Shard) -> Workspace:
    """The workspace with one connector: ``shard``'s, its memory loaded by the caller."""
    connector = ws.connectors[shard.source]
    if shard.scope is not None:
        connector = connector.narrowed(shard.scope)
    return replace(ws, connectors={shard.source: connector})


def shard_refs(ws: Workspace, store: Store, refs: list[str]) -> dict[Shard, list[str]]:
    """``refs`` grouped by the shard that writes them: their source's, or the scope the store
    holds for them (an item whose scope none can tell goes to its source's first shard)."""
    first = {s.source: s for s in reversed(shards_of(ws))}
    split = {name for name, c in ws.connectors.items() if c.shards()}
    scopes = store.task_scopes([r for r in refs if r.split(":", 1)[0] in split])
    out: dict[Shard, list[str]] = {}
    for ref in refs:
        source = ref.split(":", 1)[0]
        if source not in first:
            continue
        scope = scopes.get(ref)
        out.setdefault(Shard(source, scope) if scope else first[source], []).append(ref)
    return out
