"""Stage 1, pull: fetch each source's tasks (from its cursor) into the state store."""

from __future__ import annotations

from ..connector import Connector
from ..store import Store


def pull_source(connector: Connector, store: Store) -> int:
    """Pull one source from its stored cursor, save snapshot and cursor; return items pulled."""
    result = connector.pull(store.get_cursor(connector.name))
    store.save_tasks(connector.name, result.tasks, result.complete)
    store.set_cursor(connector.name, result.cursor)
    return len(result.tasks)
