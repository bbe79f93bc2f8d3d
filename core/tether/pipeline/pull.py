"""Stage 1, pull: each source's tasks (from its cursor) and the KPI measurements into the
state store, and what each item shows of Tether now (its labels and comment)."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from tether.connector import Connector, PullResult
from tether.errors import SourceError
from tether.kpi.sources import store_measurements
from tether.model import CurrentAnnotation, Task, Written
from tether.pipeline.memory import mask_own_edits
from tether.store.db import Store
from tether.workspace import Workspace


def pull_all(ws: Workspace, store: Store, changed: set[str] | None = None,
             unread: dict[str, str] | None = None, only: set[str] | None = None,
             kpis: bool = False) -> dict[str, int]:
    """Pull every source (concurrently: each waits on its own tracker), save them in config
    order, then read every KPI source (inline values first) into ``store``; returns the
    items pulled by source, and adds the refs whose snapshot changed to ``changed``. With
    ``unread``, a source whose tracker cannot be read is noted there (what went wrong) and
    keeps its last snapshot; without, the first that fails (in config order) fails the pass,
    after the sources before it are saved, as a sequential pull would. With ``only``, just
    those sources are pulled and no KPI source is read (unless ``kpis``)."""
    prefix = ws.config.writeback.label_prefix
    for connector in ws.connectors.values():
        connector.memory = store.load_memory(connector.name)
    pulling = {name: c for name, c in ws.connectors.items() if only is None or name in only}
    cursors = {name: store.get_cursor(name) for name in pulling}
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(pulling)))) as pool:
        futures = {name: pool.submit(c.pull, cursors[name]) for name, c in pulling.items()}
        pulled = {}
        for name, future in futures.items():
            try:
                got = future.result()
            except SourceError as exc:
                if unread is None:
                    raise
                unread[name] = str(exc)
                continue
            pulled[name] = save_pull(ws.connectors[name], got, store, prefix, changed)
    if only is None or kpis:
        store_measurements(ws.config, ws.plugins, store)
    return pulled


def pull_source(connector: Connector, store: Store, prefix: str) -> int:
    """Pull one source from its stored cursor, save snapshot and cursor; return items pulled."""
    connector.memory = store.load_memory(connector.name)
    return save_pull(connector, connector.pull(store.get_cursor(connector.name)), store, prefix)


def save_pull(connector: Connector, result: PullResult, store: Store, prefix: str,
              changed: set[str] | None = None, shard: str | None = None) -> int:
    """Save one source's pull, or one ``shard``'s (snapshots and cursor); return the items
    it brought (the refs whose snapshot changed go to ``changed``). Tether's own last write
    is taken out of each item's ``updated`` (see mask_own_edits)."""
    tasks = result.tasks
    written = store.load_written(t.ref for t in tasks) if tasks else {}
    if written:
        before = {t.ref: t for t in store.load_tasks(connector.name, written)}
        tasks, learnt = mask_own_edits(tasks, before, written, prefix)
        store.save_written(learnt)
    if shard is None:
        store.save_tasks(connector.name, tasks, result.complete, changed,
                         scopes={t.key: connector.scope_of(t) for t in result.tasks})
    else:
        store.save_tasks(connector.name, tasks, result.complete, changed, shard=shard)
    store.set_cursor(cursor_key(connector.name, shard), result.cursor)
    return len(result.tasks)


def cursor_key(source: str, shard: str | None) -> str:
    """Where a source's cursor and memory are kept: by source, or by source and scope for a
    shard pulled on its own (a source pulled both ways keeps both)."""
    return source if shard is None else f"{source}@{shard}"


def read_current(ws: Workspace, tasks: list[Task], suspect: set[str],
                  written: dict[str, Written], pulled: Iterable[str] = ()
                  ) -> dict[str, CurrentAnnotation]:
    """What each task shows now, by ref. Items whose last write was cut short or failed are
    recovered (looked up past any cache or index), so a comment that landed unseen is edited,
    not duplicated; so are items whose comment seems gone, before Tether concludes a person
    deleted it (a missing index is not a deletion). The sources ``pulled`` this pass are
    asked even with no item to read, so that they keep their notes current (Asana's
    events, whose sync tokens expire)."""
    by_source: dict[str, list[Task]] = {name: [] for name in pulled}
    for task in tasks:
        by_source.setdefault(task.source, []).append(task)
    current: dict[str, CurrentAnnotation] = {}
    prefix = ws.config.writeback.label_prefix
    for name, group in by_source.items():
        connector = ws.connectors[name]
        connector.known_comments = {t.key: written[t.ref].comment_id for t in group
                                    if t.ref in written}
        shown = connector.read_annotations([t for t in group if t.ref not in suspect], prefix)
        careful = [t for t in group if t.ref in suspect or seems_deleted(
            written.get(t.ref), shown.get(t.key))]
        if careful:
            shown.update(connector.recover(careful, prefix))
        current.update({f"{name}:{key}": value for key, value in shown.items()})
    return current


def seems_deleted(w: Written | None, shown: CurrentAnnotation | None) -> bool:
    """Tether kept a comment here and the read shows none, not yet confirmed as deleted."""
    return (w is not None and w.comment_id is not None and not w.comment_gone
            and "comment" not in w.held and shown is not None and shown.comment_id is None)
