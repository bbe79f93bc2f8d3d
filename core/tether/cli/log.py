"""`tether log`: past runs, or one item's history of findings and writes (the audit trail)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from tether.cli.options import config_option, json_option, out
from tether.config.load import load_config
from tether.errors import TetherError
from tether.plugins import Plugins
from tether.store.db import Store

SCHEMA = "tether.log/1"


@click.command()
@click.argument("item", required=False, metavar="[SOURCE:KEY]")
@config_option
@json_option
@click.option("--limit", default=20, show_default=True, help="How many runs to list.")
def log(item: str | None, config_path: Path, as_json: bool, limit: int) -> None:
    """List past runs, or the history of findings and writes of one item (SOURCE:KEY).
    History older than state.retention_days is pruned at each sync."""
    config = load_config(config_path, Plugins())
    with Store(config.state_url) as store:
        if item is None:
            _runs(store, limit, as_json)
        else:
            if ":" not in item:
                raise TetherError(f"'{item}' is not an item; name it as SOURCE:KEY, for example "
                                  f"{config.sources[0].name if config.sources else 'jira'}:OPS-3.")
            _item(store, item, as_json)


def _runs(store: Store, limit: int, as_json: bool) -> None:
    runs = store.runs(limit)
    if as_json:
        click.echo(json.dumps({"schema": SCHEMA, "runs": [
            {"id": r.id, "mode": r.mode, "status": r.status, "started": _iso(r.started),
             "finished": _iso(r.finished), "rule_packs": r.packs, "counts": r.counts}
            for r in runs]}, indent=2))
        return
    if not runs:
        out.print("No runs yet. Run `tether plan` or `tether sync` first.")
        return
    table = Table(title=f"Last {len(runs)} runs", title_justify="left")
    for col in ("run", "started (UTC)", "mode", "status", "items", "findings", "written",
                "failed", "deferred", "held", "rule packs"):
        table.add_column(col, overflow="fold")
    for r in runs:
        c = r.counts
        packs = ", ".join(f"{name} {digest[:8]}" for name, digest in sorted(r.packs.items()))
        table.add_row(str(r.id), r.started.strftime("%Y-%m-%d %H:%M"), r.mode, r.status,
                      str(c.get("tasks", "")), str(c.get("findings", "")),
                      f"{c.get('applied', 0)} of {c.get('planned', 0)}",
                      *(str(c.get(k, 0)) for k in ("failed", "deferred", "held")), escape(packs))
    out.print(table)


def _item(store: Store, ref: str, as_json: bool) -> None:
    events: list[dict[str, Any]] = []
    for f in store.finding_history(ref):
        events.append({"at": f.first_seen, "what": "finding raised", "detail":
                       f"{f.signal} ({f.rule_id}): {f.reason}"})
        if f.cleared_at is not None:
            events.append({"at": f.cleared_at, "what": "finding cleared",
                           "detail": f"{f.signal} ({f.rule_id})"})
    for e in store.ledger_for(ref):
        value = e.value if "comment" not in e.kind else f"{e.value.count(chr(10)) + 1} lines"
        detail = f"{e.kind} {value}" + (f": {e.error}" if e.error else "")
        events.append({"at": e.started, "what": f"write {e.status}", "detail": detail,
                       "run": e.run_id})
    events.sort(key=lambda ev: ev["at"])
    if as_json:
        click.echo(json.dumps({"schema": SCHEMA, "item": ref, "events": [
            {**ev, "at": _iso(ev["at"])} for ev in events]}, indent=2))
        return
    if not events:
        out.print(f"Nothing recorded for {escape(ref)}: Tether has found nothing and written "
                  "nothing there (or that history is older than state.retention_days).")
        return
    table = Table(title=f"History of {escape(ref)}", title_justify="left")
    for col in ("when (UTC)", "what", "detail"):
        table.add_column(col, overflow="fold")
    for ev in events:
        table.add_row(ev["at"].strftime("%Y-%m-%d %H:%M"), ev["what"], escape(ev["detail"]))
    out.print(table)


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None
