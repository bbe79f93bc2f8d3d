"""`tether worker` and `tether status`: passes spread over Celery workers, and where they are."""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click
from rich.markup import escape
from rich.table import Table

from tether.cli.options import config_option, json_option, out
from tether.config.model import Config
from tether.errors import TetherError
from tether.store.work import WorkRecord
from tether.work import broker_url
from tether.workspace import load_workspace

PHASES = ("pull", "plan", "write")


def shown_url(url: str) -> str:
    """The broker's URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def _broker(config: Config) -> str:
    url = broker_url(config)
    if url is None:
        env = config.workers.broker_env
        raise TetherError(f"no broker: set {env} to its URL (e.g. redis://host:6379/0) on "
                          "this machine and where passes start; without it every pass runs "
                          "in the process that starts it, and no worker is needed")
    return url


@click.command()
@config_option
@click.option("--concurrency", "-j", type=click.IntRange(min=1), default=1, show_default=True,
              help="Units this worker runs at once (processes, or threads with --pool).")
@click.option("--pool", type=click.Choice(["prefork", "threads", "solo"]), default="prefork",
              show_default=True, help="How the units run: child processes, threads, or in "
              "this process one at a time.")
@click.option("--queues", "-Q", metavar="NAMES", help="Comma-separated queues to take units "
              "from (default: workers.queue and workers.assess_queue).")
def worker(config_path: Path, concurrency: int, pool: str, queues: str | None) -> None:
    """Take the units of passes (pull, assess, plan, write) from the broker and run them."""
    ws = load_workspace(config_path)
    url = _broker(ws.config)
    try:
        from tether.work.queue import configure
    except ImportError:
        raise TetherError("Celery is not installed: pip install 'tether[workers]'") from None
    app = configure(ws.config, url)
    known = ws.config.workers.queues
    taken = [q.strip() for q in queues.split(",") if q.strip()] if queues else list(known)
    strange = [q for q in taken if q not in known]
    if strange or not taken:
        raise TetherError(f"--queues {queues!r}: Tether's units go only to "
                          f"{', '.join(known)} (workers.queue, workers.assess_queue in "
                          f"{config_path}); name one or more of those")
    queue = ",".join(taken)
    # Celery logs each unit's result on success: plans carry whole comments. Failures stay.
    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
    out.print(f"Worker for {escape(str(config_path))}: {_plural('queue', taken)} {queue} on "
              f"{escape(shown_url(url))}; Ctrl-C stops after the units under way.")
    app.worker_main(["worker", "--queues", queue, "--pool", pool,
                     "--concurrency", str(concurrency), "--hostname", f"tether.{os.getpid()}@%h",
                     "--without-gossip", "--without-mingle", "--loglevel", "INFO"])


@click.command()
@config_option
@json_option
def status(config_path: Path, as_json: bool) -> None:
    """Show each shard's work: queued, running and failed units, and its last pass."""
    ws = load_workspace(config_path)
    url = broker_url(ws.config)
    with ws.open_store() as store:
        work = store.work()
        runs = {r.id: r for r in store.runs(limit=500)}
    queued = _queued(ws.config, url) if url else None
    latest: dict[str, dict[str, WorkRecord]] = {}
    for w in work:  # by run, then unit: the last record of each shard's phase wins
        phase, _, shard = w.unit.partition(" ")
        latest.setdefault(shard or "portfolio", {})[phase] = w
    doc = {
        "broker": shown_url(url) if url else None, "queues": list(ws.config.workers.queues),
        "queued": queued,
        "states": dict(Counter(w.state for w in work if runs.get(w.run_id) is not None
                               and runs[w.run_id].status == "running")),
        "shards": {shard: {phase: _record(w, runs) for phase, w in phases.items()}
                   for shard, phases in sorted(latest.items())},
    }
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    if url is None:
        out.print(f"No broker ({ws.config.workers.broker_env} is not set): passes run in the "
                  "process that starts them.")
    else:
        queues = ws.config.workers.queues
        out.print(f"Broker {escape(shown_url(url))}, {_plural('queue', queues)} "
                  f"{', '.join(queues)}: "
                  f"{'unreachable' if queued is None else f'{queued} unit(s) waiting'}.")
    if not latest:
        out.print("No pass has run on workers yet; `tether sync` starts one.")
        return
    assess = latest.pop("portfolio", {}).get("assess")
    if assess is not None:
        out.print(f"Assessment of pass {assess.run_id}: {_cell(assess)}.")
    table = Table("shard", *PHASES, "pass", "error", box=None, header_style="bold")
    for shard, phases in sorted(latest.items()):
        last = max(w.run_id for w in phases.values())
        errors = [f"{w.unit}: {w.error}" for w in phases.values() if w.error]
        table.add_row(escape(shard), *(_cell(phases.get(p)) for p in PHASES),
                      f"{last} {runs[last].status}" if last in runs else str(last),
                      escape("; ".join(errors)))
    out.print(table)


def _plural(noun: str, items: Any) -> str:
    return noun if len(items) == 1 else f"{noun}s"


def _cell(w: WorkRecord | None) -> str:
    if w is None:
        return ""
    took = (w.finished - w.started).total_seconds() if w.finished and w.started else None
    extra = f" x{w.tries}" if w.tries > 1 else ""
    return f"{w.state}{extra}" + (f" {took:.1f}s" if took is not None else "")


def _record(w: WorkRecord, runs: dict[int, Any]) -> dict[str, Any]:
    took = (w.finished - w.started).total_seconds() if w.finished and w.started else None
    run = runs.get(w.run_id)
    return {"run": w.run_id, "pass": run.status if run else None, "state": w.state,
            "tries": w.tries, "worker": w.worker, "seconds": took, "counts": w.counts,
            "error": w.error}


def _queued(config: Config, url: str) -> int | None:
    """Units waiting in the broker's queue (None: it cannot be reached)."""
    try:
        from tether.work.queue import configure

        with configure(config, url).connection_for_write() as conn:
            return sum(int(conn.default_channel.client.llen(q)) for q in config.workers.queues)
    except Exception:  # an unreachable broker is reported, not raised
        return None
