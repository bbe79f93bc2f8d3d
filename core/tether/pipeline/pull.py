"""Stage 1, pull: fetch each source's tasks (from its cursor) into the state store."""

from __future__ import annotations

from tether.connector import Connector
from tether.pipeline.memory import mask_own_edits
from tether.store.db import Store


def pull_source(connector: Connector, store: Store, prefix: str) -> int:
    """Pull one source from its stored cursor, save snapshot and cursor; return items pulled.
    Tether's own last write is taken out of each item's ``updated`` (see mask_own_edits)."""
    result = connector.pull(store.get_cursor(connector.name))
    written = store.load_written()
    tasks = result.tasks
    if any(t.ref in written for t in tasks):
        before = {t.ref: t for t in store.load_tasks(connector.name)}
        tasks, learnt = mask_own_edits(tasks, before, written, prefix)
        store.save_written(learnt)
    store.save_tasks(connector.name, tasks, result.complete)
    store.set_cursor(connector.name, result.cursor)
    return len(result.tasks)
