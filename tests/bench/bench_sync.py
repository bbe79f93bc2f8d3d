"""Sync N items per tracker through the real client libraries against each sandbox with
injected latency; print requests made vs the API's lower bound, and wall time.

    python tests/bench/bench_sync.py [--items 10000] [--latency-ms 20] [--only github]
                                     [--commented 0.3] [--interval-min 15]

A full pull, Tether's read of its own annotations (cold, then with the state store's memory
of where Tether commented: 5 % of items), a second (incremental, unchanged) pull, and a
quiet pass (pull and annotation read, nothing changed, Tether's comment on 30 % of items,
the connector's memory kept between passes, ``--interval-min`` of the tracker's time apart
as a cron job runs them) are measured separately; the drivers are the ones the conformance
suite (tether.testing) uses.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from tether.sandbox import Fault
from tether.sdk import MARKER, FakeClock, OpKind, Task, WriteOp
from tether.testing import Driver, installed_drivers

DRIVERS = installed_drivers()  # driver id -> entry point of the tether.testing group


def make(name: str, tmp_path: Path) -> Driver:
    return DRIVERS[name].load()(tmp_path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--only", choices=sorted(DRIVERS))
    parser.add_argument("--commented", type=float, default=0.3,
                        help="share of items carrying Tether's comment in the quiet pass")
    parser.add_argument("--interval-min", type=float, default=15,
                        help="minutes of the tracker's time between quiet-pass runs")
    args = parser.parse_args()
    print(f"items={args.items} latency={args.latency_ms:g} ms per request")
    print(f"{'tracker':<11} {'stage':<22} {'requests':>8} {'lower bound':>11} {'wall s':>8}")
    for name in sorted(DRIVERS):
        if not args.only or name == args.only:
            bench_one(name, args.items, args.latency_ms / 1000, args.commented,
                      args.interval_min * 60)


def tracker_clock(drv: Driver) -> FakeClock:
    """The clock the driver's tracker stamps changes and ``Date`` headers with, made movable:
    a sandbox on the real clock (Asana's driver) is handed a fake one starting now."""
    for owner in (drv, getattr(drv, "world", None), getattr(drv, "state", None)):
        for name in ("site_clock", "clock"):
            clock = getattr(owner, name, None)
            if isinstance(clock, FakeClock):
                return clock
    state = getattr(drv, "state", None)
    if state is None or not hasattr(state, "clock"):
        raise SystemExit(f"{type(drv).__name__}: no tracker clock found to move on")
    clock = FakeClock(state.clock.now())
    state.clock = clock
    if hasattr(state, "feed"):
        state.feed.clock = clock  # Asana's event feed dates its sync tokens by it
    return clock


def quiet_pass(drv: Driver, tasks: list[Task], share: float, interval: float
               ) -> tuple[int, float]:
    """Tether comments on ``share`` of the items, then passes as a cron job runs them,
    ``interval`` seconds of the tracker's time apart (a fresh connector each, its memory and
    the store's comment ids carried over) until one finds nothing changed; returns that
    quiet pass's requests and wall time."""
    clock = tracker_clock(drv)
    writer = drv.connector()
    cursor = writer.pull(None).cursor
    ops = [WriteOp("src", t.key, OpKind.CREATE_COMMENT, f"{MARKER}\nTether flagged this.", "")
           for i, t in enumerate(tasks) if i < len(tasks) * share]
    known: dict[str, str | None] = {t.key: None for t in tasks}
    # Thousands of comments in one burst is set-up, not what is measured: lift a per-minute
    # request limit (Asana's) while writing them, as if they had come over many runs.
    api = drv.server.api
    limit = getattr(api, "rate_limit", None)
    if limit is not None:
        api.rate_limit = 0
    known.update({r.op.key: r.comment_id for r in writer.apply(ops) if r.ok})
    if limit is not None:
        api.rate_limit = limit
    memory, current = writer.memory, {t.key: t for t in tasks}
    for _ in range(2):  # the first pass after the writes reads back what they touched
        clock.sleep(interval)
        connector = drv.connector()
        connector.memory, connector.known_comments = memory, known
        before, started = len(drv.server.log), time.perf_counter()
        pulled = connector.pull(cursor)
        current.update({t.key: t for t in pulled.tasks})
        connector.read_annotations(list(current.values()), "tether")
        cursor, memory = pulled.cursor or cursor, connector.memory
    return len(drv.server.log) - before, time.perf_counter() - started


def bench_one(name: str, items: int, latency: float, commented: float, interval: float
              ) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        drv = make(name, Path(tmp))
        os.environ[drv.token_variable] = "good"
        try:
            drv.seed(items)
            drv.server.faults.add(Fault("latency", rate=1.0, seconds=latency))
            connector = drv.connector()
            bound = drv.pages(items) + drv.setup_calls
            result, n, wall = measure(drv, lambda: connector.pull(None))
            row(name, "full pull", n, bound, wall)
            _, n, wall = measure(drv, lambda: connector.read_annotations(result.tasks, "tether"))
            row(name, "read annotations", n, 0, wall)
            # After a sync the state store knows where Tether commented: say 5 % of items.
            fresh = drv.connector()
            fresh.known_comments = {t.key: ("1" if i % 20 == 0 else None)
                                    for i, t in enumerate(result.tasks)}
            _, n, wall = measure(drv, lambda: fresh.read_annotations(result.tasks, "tether"))
            row(name, "read, memory known", n, 0, wall)
            _, n, wall = measure(drv, lambda: connector.pull(result.cursor))
            row(name, "incremental, unchanged", n, 1, wall)
            n, wall = quiet_pass(drv, result.tasks, commented, interval)
            row(name, f"quiet pass, {commented:.0%} noted", n, 1, wall)
        finally:
            drv.server.stop()


def measure(drv, call):
    before = len(drv.server.log)
    started = time.perf_counter()
    value = call()
    return value, len(drv.server.log) - before, time.perf_counter() - started


def row(name: str, stage: str, n: int, bound: int, wall: float) -> None:
    print(f"{name:<11} {stage:<22} {n:>8} {bound:>11} {wall:>8.2f}")


if __name__ == "__main__":
    main()
