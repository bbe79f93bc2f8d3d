"""The whole pass (pull -> judge (map, assess) -> plan -> apply) over the Jira, GitHub and
Asana sandboxes, through the real clients: wall time, CPU per stage and peak RSS for a first
sync, the pass that reads its writes back, then a re-run with 0 % and with 1 % of the items
changed (a title edit, which here also changes the item's KPI). "1 h later": nothing changed
but the clock, so the items whose age in whole days grew are judged again.

    python tests/bench/bench_pipeline.py [--sizes 1000,10000] [--changed 0.01]

Items are spread evenly over the three sandboxes; the sandboxes run in this process, so
peak RSS includes them. Ratios against the smallest size show how each cost grows.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from tether.pipeline.apply import apply_pass
from tether.pipeline.delta import judge_pass
from tether.pipeline.kept import settle
from tether.pipeline.plan import plan_pass
from tether.pipeline.pull import pull_all
from tether.testing import Driver, installed_drivers
from tether.workspace import load_workspace

sys.path.insert(0, str(Path(__file__).parent))
from bench_kpis import KPIS  # noqa: E402
from bench_sync import tracker_clock  # noqa: E402

TRACKERS = ("jira-cloud", "github", "asana")
CONFIG = """\
version: 1
sources:
  - {name: jira, type: files, options: {path: none.json, format: tether-json}}
  - {name: github, type: files, options: {path: none.json, format: tether-json}}
  - {name: asana, type: files, options: {path: none.json, format: tether-json}}
""" + KPIS + """\
rules:
  packs: [rules]
writeback: {budget: 1000000}
"""
RULES = """\
mappings:
  - {id: growth-work, kpi: growth, when: {title: {matches: "[0-4]$"}}}
  - {id: retention-work, kpi: retention, when: {title: {matches: "[5-7]$"}}}
"""


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Stages:
    """CPU and wall seconds per stage of one pass."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}
        self.wall = 0.0
        self.rematched = 0  # items whose facts went to the mapping rules
        self.judged = 0  # items judged again
        self.writes = 0

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        cpu, wall = time.process_time(), time.perf_counter()
        yield
        self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - cpu
        self.wall += time.perf_counter() - wall


def one_pass(folder: Path, drivers: dict[str, Driver], clock: Callable[[], Any]) -> Stages:
    """pull -> map -> assess -> plan, as `tether plan` runs them, each stage timed."""
    ws = load_workspace(folder / "tether.yaml")
    connectors = {}
    for name, drv in drivers.items():
        connector = drv.connector()
        connector.name = name
        connectors[name] = connector
    ws = replace(ws, connectors=connectors)
    times = Stages()
    now = clock()
    with ws.open_store() as store:
        changed: set[str] = set()
        with times.stage("pull"):
            pulled = pull_all(ws, store, changed)
        with times.stage("judge"):  # map and assess: only what changed, when nothing else did
            judged = judge_pass(ws, store, changed, now)
        times.rematched = judged.verdicts.rematched["map"]
        times.judged = judged.judged
        with times.stage("plan"):
            planned = plan_pass(ws, store, judged.tasks, judged.verdicts.mappings,
                                judged.verdicts.findings, set(), pulled)
        with times.stage("apply"):  # as sync does: every item then shows its verdict
            run_id = store.start_run("sync", ws.rules.packs, now)
            applied = apply_pass(ws, store, run_id, planned, judged.verdicts, now, clock)
            times.writes = applied.applied
        settle(store, applied.unfinished(), planned.held + judged.held, True,
               judged.verdicts.scope)
        for name, connector in ws.connectors.items():
            store.save_memory(name, connector.memory)
    return times


def bench(size: int, changed: float) -> list[tuple[str, Stages]]:
    drivers_found = installed_drivers()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "ws"
        (folder / "rules").mkdir(parents=True)
        (folder / "none.json").write_text('{"tasks": []}')
        (folder / "tether.yaml").write_text(CONFIG)
        (folder / "rules" / "mapping.yaml").write_text(RULES)
        drivers: dict[str, Driver] = {}
        keys: dict[str, list[str]] = {}
        for tracker in TRACKERS:
            drv = drivers_found[tracker].load()(root / tracker)
            drivers[tracker.split("-")[0]] = drv
            keys[tracker.split("-")[0]] = drv.seed(size // len(TRACKERS))
        for drv in drivers.values():  # writing every item at once is set-up, not measured:
            if isinstance(getattr(drv.server.api, "rate_limit", None), int):  # Asana's per minute
                drv.server.api.rate_limit = 0
        anchor = drivers["github"]
        clocks = [tracker_clock(drv) for drv in drivers.values()]

        def clock() -> Any:
            return anchor.now() + timedelta(minutes=5)

        def later(minutes: float) -> None:  # passes run as cron runs them
            for tracker in clocks:
                tracker.sleep(minutes * 60)

        try:
            runs = [("first pass", one_pass(folder, drivers, clock))]
            later(15)
            runs.append(("read-back pass", one_pass(folder, drivers, clock)))
            later(15)
            runs.append(("re-run, 0% changed", one_pass(folder, drivers, clock)))
            later(60)
            runs.append(("same, 1 h later", one_pass(folder, drivers, clock)))
            for name, drv in drivers.items():
                for key in keys[name][: max(1, int(len(keys[name]) * changed))]:
                    drv.edit(key)
            later(15)
            runs.append((f"re-run, {changed:.0%} changed", one_pass(folder, drivers, clock)))
        finally:
            for drv in drivers.values():
                drv.server.stop()
    gc.collect()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--changed", type=float, default=0.01)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    stages = ("pull", "judge", "plan", "apply")
    print(f"{'items':>7} {'run':<20} {'wall s':>7} " + " ".join(f"{s + ' cpu':>10}"
                                                            for s in stages) + f" {'peak MB':>8}")
    print("(pull cpu includes the in-process sandboxes answering. 'of first': the pass's judge "
          "and plan CPU over the first pass's, which judges every item; 'per item': the first "
          "pass's judge and plan CPU per item over the smallest size's, i.e. how a full pass "
          "grows with items)")
    per_item = 0.0
    for size in sizes:
        first = 0.0
        for label, times in bench(size, args.changed):
            cpu = times.cpu.get("judge", 0.0) + times.cpu.get("plan", 0.0)
            growth = ""
            if not first:
                first = cpu
                per_item = per_item or cpu / size
                growth = f", per item x{cpu / size / per_item:.2f}"
            print(f"{size:>7} {label:<20} {times.wall:>7.2f} "
                  + " ".join(f"{times.cpu.get(s, 0.0):>10.2f}" for s in stages)
                  + f" {peak_mb():>8.0f}   of first x{cpu / first:.3f}{growth}, "
                  f"{times.judged} judged, {times.writes} writes")


if __name__ == "__main__":
    main()
