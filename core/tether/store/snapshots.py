"""The task snapshots half of the Store: what each pull brought, per source and scope (it
shares the Store's engine)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

import sqlalchemy as sa

from tether.codec import task_from_dict, task_to_dict
from tether.model import Task
from tether.store import tables


class TaskState:
    """Task snapshots as pulls saved them."""

    _engine: sa.engine.Engine

    def save_tasks(self, source: str, tasks: list[Task], complete: bool,
                   changed_refs: set[str] | None = None,
                   scopes: dict[str, str | None] | None = None,
                   shard: str | None = None) -> int:
        """Upsert snapshots (``raw`` is not kept); complete=True also drops the source's
        other tasks (with ``shard``: those of that scope only). Each task's scope is
        ``shard``, else ``scopes[key]``. Returns rows inserted, updated or deleted (their
        refs are added to ``changed_refs``); unchanged tasks cost none."""
        if not tasks and not complete:
            return 0
        touched = changed_refs if changed_refs is not None else set()
        rows: dict[str, tuple[str, str]] = {}
        for task in tasks:
            if task.source != source:
                raise ValueError(f"task {task.ref} is not from source {source!r}")
            data = json.dumps(task_to_dict(task), sort_keys=True, default=str)
            rows[task.key] = (data, hashlib.sha256(data.encode()).hexdigest())
        scopes = scopes or {}
        scope_of = {key: shard if shard is not None else scopes.get(key) for key in rows}
        changed = 0
        t = tables.tasks.c
        with self._engine.begin() as conn:
            query = sa.select(t.key, t.hash, t.scope).where(t.source == source)
            if shard is None:
                old = {key: (digest, scope) for key, digest, scope in conn.execute(query)}
            else:  # a shard reads its own rows, and those it pulled now: never the source's
                old = {key: (digest, scope) for key, digest, scope
                       in conn.execute(query.where(t.scope == shard))}
                others = sorted(rows.keys() - old.keys())
                for i in range(0, len(others), 500):
                    old.update((key, (digest, scope)) for key, digest, scope in conn.execute(
                        query.where(t.key.in_(others[i:i + 500]))))
            fresh = [{"source": source, "key": key, "data": data, "hash": digest,
                      "scope": scope_of[key]}
                     for key, (data, digest) in rows.items() if old.get(key, ("",))[0] != digest]
            tables.upsert(conn, tables.tasks, fresh)
            changed += len(fresh)
            touched.update(f"{source}:{row['key']}" for row in fresh)
            # A task another shard pulled too (an Asana task in two projects) changes hands
            # without counting as changed: its snapshot is the same.
            moved = [key for key, (digest, scope) in old.items()
                     if key in rows and digest == rows[key][1] and scope != scope_of[key]]
            for key in moved:
                conn.execute(tables.tasks.update().where(t.source == source, t.key == key)
                             .values(scope=scope_of[key]))
            if complete:
                gone = [key for key, (_, scope) in old.items() if key not in rows
                        and (shard is None or scope == shard)]
                touched.update(f"{source}:{key}" for key in gone)
                for i in range(0, len(gone), 500):  # stay under bound-parameter limits
                    changed += conn.execute(tables.tasks.delete().where(
                        tables.tasks.c.source == source, tables.tasks.c.key.in_(gone[i:i + 500]))).rowcount
        return changed

    def patch_labels(self, changes: dict[str, tuple[set[str], set[str]]]) -> None:
        """Apply Tether's own successful label writes (ref -> (added, removed)) to the stored
        snapshots, so the cache never shows a label Tether has since removed, even when the
        next pull does not return the item (same ``updated`` stamp as already seen)."""
        with self._engine.begin() as conn:
            for ref, (added, removed) in changes.items():
                source, _, key = ref.partition(":")
                where = (tables.tasks.c.source == source, tables.tasks.c.key == key)
                data = conn.execute(sa.select(tables.tasks.c.data).where(*where)).scalar()
                if data is None:
                    continue
                task = json.loads(data)
                labels = [x for x in task.get("labels") or [] if x not in removed]
                task["labels"] = labels + sorted(added - set(labels))
                text = json.dumps(task, sort_keys=True, default=str)
                conn.execute(tables.tasks.update().where(*where).values(
                    data=text, hash=hashlib.sha256(text.encode()).hexdigest()))

    def load_tasks(self, source: str | None = None, refs: Iterable[str] | None = None,
                   scope: str | None = None) -> list[Task]:
        """Saved snapshots, of one source or all (or only ``refs``; of ``source`` only those
        of ``scope``), sorted by (source, key)."""
        t = tables.tasks.c
        query = sa.select(t.source, t.key, t.data).order_by(t.source, t.key)
        if source is not None:
            query = query.where(tables.tasks.c.source == source)
        if scope is not None:
            query = query.where(t.scope == scope)
        with self._engine.begin() as conn:
            if refs is None:
                rows = list(conn.execute(query))
            else:
                pairs = sorted(tuple(r.split(":", 1)) for r in refs)
                # Chunks come back each in order; sorted again by (source, key) together.
                rows = sorted((row for i in range(0, len(pairs), 500) for row in conn.execute(
                    query.where(sa.tuple_(t.source, t.key).in_(pairs[i:i + 500])))),
                    key=lambda row: (row.source, row.key))
            return [task_from_dict(json.loads(data), src) for src, _, data in rows]

    def task_scopes(self, refs: Iterable[str]) -> dict[str, str]:
        """The scope kept for each of ``refs`` that has one (see save_tasks)."""
        t = tables.tasks.c
        pairs = sorted(tuple(r.split(":", 1)) for r in refs)
        with self._engine.begin() as conn:
            return {f"{source}:{key}": scope for i in range(0, len(pairs), 500)
                    for source, key, scope in conn.execute(
                        sa.select(t.source, t.key, t.scope).where(
                            sa.tuple_(t.source, t.key).in_(pairs[i:i + 500]),
                            t.scope.is_not(None)))}

    def drop_scopes(self, source: str, keep: set[str], changed_refs: set[str]) -> int:
        """Forget ``source``'s tasks of a scope no longer in ``keep`` (taken out of the
        config); their refs go to ``changed_refs``."""
        t = tables.tasks.c
        where = (t.source == source, t.scope.is_not(None), t.scope.not_in(sorted(keep)))
        with self._engine.begin() as conn:
            gone = [key for (key,) in conn.execute(sa.select(t.key).where(*where))]
            if gone:
                conn.execute(tables.tasks.delete().where(*where))
        changed_refs.update(f"{source}:{key}" for key in gone)
        return len(gone)

    def count_tasks(self) -> int:
        with self._engine.begin() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(tables.tasks))
                       .scalar() or 0)
