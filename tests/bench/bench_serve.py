"""`tether serve` under a load of webhooks: people's edits in the Jira Cloud, GitHub and Asana
sandboxes arrive as signed deliveries on the service's loopback endpoint, and the passes they
ask for bring each item's annotation up to date.

    python tests/bench/bench_serve.py [--events 2000] [--items 300] [--bursts 20]
                                      [--debounce 0.5] [--seed 7]

Set-up: the three sandboxes (their conformance drivers), ``--items`` spread evenly; a
workspace whose rule flags every item whose title carries an even number of " (edited)"
suffixes (label ``tether:flipped`` and a comment), so that every edit (the drivers' edit
appends " (edited)" to the title, as a person other than Tether's account) flips the item's
annotation: raised (label added, comment written back) or cleared (label removed, comment
turned into a resolved note). Closed items carry no annotation (write-back leaves closed
work alone): their edits still come as deliveries and ask for passes, but flip nothing. The
service (``tether.serve.service.Service``, no schedule, ``--debounce``) is served by uvicorn
on a port the OS picks, each driver's webhook registered to it (Asana's handshake expected,
as `tether webhooks install` does). A first pass annotates every item; the echoes of its
writes are then delivered (each must be answered 200 "echo" and ask for no pass).

Then bursts, until ``--events`` signed deliveries have been posted (about ``--bursts`` bursts;
more when fewer deliveries come per edit than expected): a random sample of items over the
three trackers is edited, then each driver in turn (Jira, GitHub, Asana) delivers what is
queued (Jira and GitHub: one delivery per edit; Asana: one per webhook, up to 100 events
each); a pass may start while later deliveries still come. The bench waits until the runner
is idle (nothing running, nothing asked for), checks that every edited item's annotation
follows its edit, then delivers the echoes of the passes' writes (again: 200, no pass). The
tracker clocks move together (Jira's driver moves its own a minute per edit: the others
follow), 60 s between bursts; the service's clock is the trackers' time plus 5 minutes.

Printed, per tracker and in all: deliveries posted in bursts, accepted (202), answered 200
(duplicate, echo or noted) or otherwise; deliveries/s (deliveries over the wall time spent
inside the drivers' ``deliver()``, which posts one at a time, a new connection each: the
endpoint's sequential throughput, sharing the CPU with passes, sandboxes and uvicorn; a
tracker delivered later in a burst sees more passes running); tracker API requests made by
Tether during the bursts (the sandboxes' request logs, which hold only requests made to
them, never the webhook posts they send) per accepted delivery and per edit; passes run.
Latency: for each accepted delivery, from the moment the service began to take it (server
side, ``Service.deliver``) to the end of the first pass that started after it was accepted
and pulled its source: an upper bound on when its item's annotation was written (that pass,
or an earlier one that already saw the edit, wrote it), debounce included; p50 and p99. The
endpoint's own handling time (``Service.deliver``, p50/p99) is printed too, apart for
deliveries taken while a pass ran. Timings depend on the machine's load; the counts do not,
but for how passes happen to split a burst.

Finally the service stops and a fresh workspace (fresh connectors) runs ``run_pass(...,
"plan", full=True)`` against the sandboxes: it must read every tracker and plan no write
(the trackers are exactly what one full sync would leave), and no item may carry two Tether
comments. PASS, or MISMATCH and exit 1 (also on lost events: an edited item whose annotation
did not follow once its burst's passes ended; an echo not answered 200 "echo" or that asked
for a pass; a delivery answered neither 200 nor 202; a pass that did not end ok).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from tether.pipeline.render import MARKER
from tether.pipeline.run import run_pass
from tether.serve.app import create_app
from tether.serve.service import Service, Settings, StoreSecrets
from tether.testing import Driver, installed_drivers
from tether.webhook import Delivery, Refused
from tether.workspace import Workspace, load_workspace

sys.path.insert(0, str(Path(__file__).parent))
from bench_sync import tracker_clock  # noqa: E402

TRACKERS = {"jira": "jira-cloud", "github": "github", "asana": "asana"}  # source -> driver
SECRET = "a-long-random-hook-secret-for-the-bench"
PREFIX = "tether"
LABEL = f"{PREFIX}:flipped"
ODD = r"(?<!\(edited\)) \(edited\)( \(edited\) \(edited\))*$"  # an odd number of edits
CONFIG = """\
version: 1
sources:
  - {name: jira, type: files, options: {path: none.json, format: tether-json}}
  - {name: github, type: files, options: {path: none.json, format: tether-json}}
  - {name: asana, type: files, options: {path: none.json, format: tether-json}}
kpis:
  - {id: nps, name: Net Promoter Score, owner: Dana Lee}
rules:
  packs: [rules]
  builtin: false
writeback: {label_prefix: tether, budget: 1000000}
"""
RULES = """\
signals:
  - id: flipped
    signal: flipped
    label: flipped
    message: "{title} has been edited an even number of times."
    advice: Edit it once more.
    when:
      not: {title: {matches: 'ODD'}}
""".replace("ODD", ODD.replace("'", "''"))


@dataclass
class Taken:
    """One delivery as the service took it (server side)."""

    source: str
    id: str
    verdict: str  # accepted, duplicate, echo, noted, handshake..., or refused_<status>
    started: float  # perf_counter when Service.deliver began
    ended: float  # ... and when it returned (an accepted one has asked for its pass)


@dataclass
class Pass:
    sources: set[str] | None  # None: every source
    started: float
    ended: float
    status: str


class TimedService(Service):
    """The service, recording when it takes each delivery and runs each pass."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.taken: list[Taken] = []
        self.passes: list[Pass] = []

    def deliver(self, source: str, headers: Mapping[str, str], body: bytes,
                query: Mapping[str, str]) -> tuple[Delivery, str]:
        started = time.perf_counter()
        try:
            delivery, verdict = super().deliver(source, headers, body, query)
        except Refused as refused:
            self.taken.append(Taken(source, "", f"refused_{refused.status}", started,
                                    time.perf_counter()))
            raise
        self.taken.append(Taken(source, delivery.id, verdict, started, time.perf_counter()))
        return delivery, verdict

    def one_pass(self, sources: set[str] | None = None) -> str:
        started = time.perf_counter()
        status = "error"
        try:
            status = super().one_pass(sources)
            return status
        finally:
            self.passes.append(Pass(None if sources is None else set(sources), started,
                                    time.perf_counter(), status))


@dataclass
class Tally:
    """One tracker's deliveries in the bursts."""

    posted: int = 0
    accepted: int = 0
    answered_200: int = 0
    other: int = 0  # neither 200 nor 202: errors
    wall: float = 0.0  # seconds inside deliver()
    edits: int = 0
    requests: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)


def delivery_id(item: Any) -> str:
    """The id the service keys a sandbox delivery by (Asana: its signature)."""
    headers = {k.lower(): v for k, v in item.headers.items()}
    for name in ("x-atlassian-webhook-identifier", "x-github-delivery"):
        if name in headers:
            return str(headers[name])
    return str(headers.get("x-hook-signature", "")).strip().lower()


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def tether_comments(drv: Driver, key: str) -> int:
    """Tether's comments on the item: its marker in the stored body, or its words."""
    plain = drv.comments(key)
    stored = drv.stored_comments(key)
    return sum(1 for text, raw in zip(plain, stored, strict=True)
               if MARKER in str(raw) or "Tether" in text)


class Bench:
    def __init__(self, root: Path, items: int, debounce: float, seed: int, timeout: float):
        self.rng = random.Random(seed)
        self.timeout = timeout
        self.folder = root / "ws"
        (self.folder / "rules").mkdir(parents=True)
        (self.folder / "none.json").write_text('{"tasks": []}')
        (self.folder / "tether.yaml").write_text(CONFIG)
        (self.folder / "rules" / "flipped.yaml").write_text(RULES)
        found = installed_drivers()
        self.drivers: dict[str, Driver] = {}
        self.keys: dict[str, list[str]] = {}
        for source, tracker in TRACKERS.items():
            drv = found[tracker].load()(root / tracker)
            os.environ[drv.token_variable] = "good"
            self.drivers[source] = drv
            self.keys[source] = drv.seed(max(1, items // len(TRACKERS)))
        # Annotating every item at once is set-up: lift Asana's per-minute limit meanwhile.
        self.api_limits: dict[str, int] = {}
        for source, drv in self.drivers.items():
            limit = getattr(drv.server.api, "rate_limit", None)
            if isinstance(limit, int):
                self.api_limits[source] = limit
                drv.server.api.rate_limit = 0  # type: ignore[attr-defined]
        self.clocks = [tracker_clock(drv) for drv in self.drivers.values()]
        self.align(0)
        self.anchor = self.drivers["github"]
        self.edits: dict[tuple[str, str], int] = {}  # (source, key) -> edits so far
        self.flagged: set[tuple[str, str]] = set()  # items the first pass annotated
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    # -- the world ---------------------------------------------------------------------------

    def clock(self) -> datetime:
        return self.anchor.now() + timedelta(minutes=5)

    def align(self, seconds: float) -> None:
        """Move every tracker clock to the latest of them plus ``seconds`` (Jira's edits
        move its own clock a minute each)."""
        target = max(c.now() for c in self.clocks) + timedelta(seconds=seconds)
        for c in self.clocks:
            c.sleep((target - c.now()).total_seconds())

    def workspace(self, path: Path | None = None) -> Workspace:
        """The workspace with fresh connectors aimed at the sandboxes (a fresh process)."""
        ws = load_workspace(path or self.folder / "tether.yaml")
        connectors = {}
        for name, drv in self.drivers.items():
            connector = drv.connector()
            connector.name = name
            connectors[name] = connector
        return replace(ws, connectors=connectors)

    def requests(self) -> dict[str, int]:
        return {name: len(drv.server.log) for name, drv in self.drivers.items()}

    # -- the service ---------------------------------------------------------------------------

    def start(self, debounce: float) -> TimedService:
        service = TimedService(Settings(self.folder / "tether.yaml", interval=None,
                                        debounce=debounce),
                               clock=self.clock, load=lambda path: self.workspace(path))
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))  # the OS chooses the port
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(create_app(service), log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [listener]},
                                       name="bench-uvicorn")
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise SystemExit("uvicorn did not start")
            time.sleep(0.01)
        with service.workspace.open_store() as store:  # as `tether webhooks install` does
            store.expect_handshakes("asana", service.clock() + StoreSecrets.WAIT)
            for name, drv in self.drivers.items():
                drv.register_hook(f"{url}/webhooks/{name}", SECRET)  # type: ignore[attr-defined]
            store.expect_handshakes("asana", None)
        return service

    def stop_service(self) -> None:
        """Stop uvicorn; its lifespan lets the pass in flight finish and stops the runner."""
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(60)
            if self.thread.is_alive():
                raise SystemExit("uvicorn did not stop within 60 s")
        self.server = self.thread = None

    def stop(self) -> None:
        self.stop_service()
        for drv in self.drivers.values():
            drv.server.stop()
        self.drivers = {}

    def deliver(self, source: str) -> tuple[list[Any], float]:
        started = time.perf_counter()
        sent = list(self.drivers[source].deliver())  # type: ignore[attr-defined]
        return sent, time.perf_counter() - started

    def settle(self, service: TimedService) -> None:
        """Wait until no pass runs and none is asked for."""
        deadline = time.monotonic() + self.timeout
        while service.runner.state != "idle":
            if time.monotonic() > deadline:
                raise SystemExit(f"passes still {service.runner.state} after {self.timeout} s")
            time.sleep(0.01)

    def flush(self, service: TimedService, verdicts: dict[str, int]) -> tuple[int, int]:
        """Deliver the echoes of Tether's writes, counting them in ``verdicts``: (answered
        otherwise than 200 "echo", passes they asked for)."""
        bad = asked = 0
        for _ in range(5):  # an echo taken for a person's edit runs a pass: flush its echoes
            before = len(service.taken)
            passes = service.runner.passes
            sent = [d for name in self.drivers for d in self.deliver(name)[0]]
            taken = {t.id: t for t in service.taken[before:]}
            for item in sent:
                verdict = getattr(taken.get(delivery_id(item)), "verdict", "unmatched")
                verdicts[verdict] = verdicts.get(verdict, 0) + 1
                bad += item.status != 200 or verdict != "echo"
            if service.runner.state == "idle":
                break
            self.settle(service)
            asked += service.runner.passes - passes
        return bad, asked

    def annotated(self) -> set[tuple[str, str]]:
        return {(name, key) for name, drv in self.drivers.items() for key in self.keys[name]
                if LABEL in drv.labels(key)}

    def behind(self, edited: list[tuple[str, str]]) -> int:
        """Edited items whose annotation does not show their edit count (even: flagged)."""
        wrong = 0
        for name, key in edited:
            want = (name, key) in self.flagged and self.edits[(name, key)] % 2 == 0
            wrong += (LABEL in self.drivers[name].labels(key)) != want
        return wrong


def run(args: argparse.Namespace) -> int:
    for variable in ("GITHUB_WEBHOOK_SECRET", "JIRA_WEBHOOK_SECRET"):  # Asana hands its own
        os.environ[variable] = SECRET
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp), args.items, args.debounce, args.seed, args.timeout)
        try:
            return measure(bench, args)
        finally:
            bench.stop()


def measure(bench: Bench, args: argparse.Namespace) -> int:
    service = bench.start(args.debounce)
    problems: list[str] = []
    for name in bench.drivers:  # GitHub's ping (Asana's handshake came as it registered)
        for item in bench.deliver(name)[0]:
            if item.status != 200:
                problems.append(f"{name}: a set-up delivery was answered {item.status}")
    setup: dict[str, int] = {}
    for taken in service.taken:
        setup[f"{taken.source} {taken.verdict}"] = setup.get(f"{taken.source} {taken.verdict}",
                                                             0) + 1

    # The first pass annotates every item; then its echoes come back.
    before = bench.requests()
    started = time.perf_counter()
    service.runner.request()
    if not service.runner.wait_for(1, timeout=args.timeout):
        raise SystemExit("the first pass did not finish")
    first_wall = time.perf_counter() - started
    first_requests = sum(bench.requests().values()) - sum(before.values())
    bench.settle(service)
    echo_verdicts: dict[str, int] = {}
    bad_echoes, echo_passes = bench.flush(service, echo_verdicts)
    first_echoes = dict(echo_verdicts)
    bench.flagged = bench.annotated()
    first_status = service.passes[0].status if service.passes else "?"
    for name, limit in bench.api_limits.items():  # set-up over: Asana's limit again
        bench.drivers[name].server.api.rate_limit = limit  # type: ignore[attr-defined]
    print(f"items={sum(len(k) for k in bench.keys.values())} events={args.events} "
          f"bursts={args.bursts} debounce={args.debounce:g} s seed={args.seed}")
    print(f"set-up deliveries (ping, handshake): {counted(setup)}")
    print(f"first pass: {first_wall:.1f} s ({first_status}), {first_requests} tracker "
          f"requests, {len(bench.flagged)} items flagged (open ones); its echoes: "
          f"{counted(first_echoes)}, {echo_passes} passes asked for")

    # Bursts of people's edits.
    tallies = {name: Tally() for name in bench.drivers}
    all_keys = [(name, key) for name, keys in bench.keys.items() for key in keys]
    posted = edits_made = burst = behind = 0
    first_burst_pass = len(service.passes)
    burst_wall = 0.0
    requests_before = bench.requests()
    echo_verdicts = {}
    while posted < args.events:
        burst += 1
        bench.align(60)
        left = max(1, args.bursts - burst + 1)
        per_edit = posted / edits_made if edits_made else 1.0
        want = math.ceil((args.events - posted) / left / max(per_edit, 0.05))
        sample = bench.rng.sample(all_keys, min(len(all_keys), max(1, want)))
        for name, key in sample:
            bench.drivers[name].edit(key)
            bench.edits[(name, key)] = bench.edits.get((name, key), 0) + 1
            tallies[name].edits += 1
        edits_made += len(sample)
        bench.align(0)  # the service's clock is the trackers' time again
        started = time.perf_counter()
        for name in bench.drivers:
            mark = len(service.taken)
            sent, wall = bench.deliver(name)
            tally = tallies[name]
            tally.posted += len(sent)
            tally.wall += wall
            posted += len(sent)
            by_id = {t.id: t for t in service.taken[mark:]}
            for item in sent:
                verdict = getattr(by_id.get(delivery_id(item)), "verdict", "unmatched")
                tally.verdicts[verdict] = tally.verdicts.get(verdict, 0) + 1
                if item.status == 202:
                    tally.accepted += 1
                elif item.status == 200:
                    tally.answered_200 += 1
                else:
                    tally.other += 1
        bench.settle(service)
        burst_wall += time.perf_counter() - started
        behind += bench.behind(sample)
        bad, asked = bench.flush(service, echo_verdicts)
        bad_echoes += bad
        echo_passes += asked
    after = bench.requests()
    for name, tally in tallies.items():
        tally.requests = after[name] - requests_before[name]
    passes = service.passes[first_burst_pass:]

    # Latency: accepted delivery -> end of the first pass that started after it was
    # accepted and pulled its source.
    latencies: list[float] = []
    handling: dict[bool, list[float]] = {False: [], True: []}  # by: a pass was running
    unserved = 0
    for taken in service.taken:
        busy = any(p.started <= taken.started <= p.ended for p in service.passes)
        handling[busy].append(taken.ended - taken.started)
        if taken.verdict != "accepted":
            continue
        done = next((p.ended for p in passes if p.started >= taken.ended
                     and (p.sources is None or taken.source in p.sources)), None)
        if done is None:
            unserved += 1
        else:
            latencies.append(done - taken.started)
    not_ok = sum(1 for p in service.passes if p.status != "ok")
    by_sources: dict[str, int] = {}
    for p in passes:
        shown = "all" if p.sources is None else "+".join(sorted(p.sources))
        by_sources[shown] = by_sources.get(shown, 0) + 1
    limited = sum(1 for drv in bench.drivers.values() for r in drv.server.log
                  if r.status == 429)

    print_table(tallies)
    print(f"bursts: {burst}, {edits_made} edits; passes run: {len(service.passes)} in all, "
          f"{len(passes)} in bursts ({len(passes) / burst:.1f} a burst; by sources pulled: "
          f"{counted(by_sources)}), {not_ok} not ok; {burst_wall:.1f} s from a burst's first "
          f"delivery to idle, summed")
    print(f"latency, accepted delivery -> end of the next pass pulling its source: "
          f"p50 {quantile(latencies, 0.5):.2f} s, p99 {quantile(latencies, 0.99):.2f} s, "
          f"max {max(latencies, default=float('nan')):.2f} s over {len(latencies)}")
    for busy, label in ((False, "no pass running"), (True, "a pass running")):
        values = handling[busy]
        print(f"endpoint handling (Service.deliver), {label}: "
              f"p50 {quantile(values, 0.5) * 1000:.1f} ms, "
              f"p99 {quantile(values, 0.99) * 1000:.1f} ms over {len(values)} deliveries")
    print(f"echoes of the bursts' passes: {counted(echo_verdicts)}; {echo_passes} passes asked "
          f"for; tracker requests answered 429: {limited}")
    print(f"edited items whose annotation lagged once their burst's passes ended: {behind}")

    # The final check: with the service stopped, one full plan on fresh connectors.
    bench.stop_service()
    ws = bench.workspace()
    with ws.open_store() as store:
        check = run_pass(ws, store, "plan", bench.clock, full=True)
    doubled = [(name, key) for name, drv in bench.drivers.items() for key in bench.keys[name]
               if tether_comments(drv, key) > 1]
    print(f"full plan after the bursts ({check.status}): {len(check.ops)} writes planned, "
          f"{check.judged} items judged, {sum(check.pulled.values())} pulled; items with two "
          f"Tether comments: {len(doubled)}")
    if check.status != "ok" or check.unread:
        problems.append(f"the full plan did not read every tracker: {check.status}, "
                        f"{ {name: u.error for name, u in check.unread.items()} }")
    if check.ops:
        shown = ", ".join(f"{o.source}:{o.key} {o.kind}" for o in check.ops[:5])
        problems.append(f"the full plan after the bursts plans {len(check.ops)} writes: {shown}")
    if doubled:
        problems.append(f"{len(doubled)} items carry two Tether comments: {doubled[:5]}")
    if behind:
        problems.append(f"{behind} edited items' annotations lagged after their burst")
    if bad_echoes or echo_passes:
        problems.append(f"{bad_echoes} echoes not answered 200 \"echo\"; {echo_passes} passes "
                        "asked for by echoes")
    other = sum(t.other for t in tallies.values())
    if other:
        problems.append(f"{other} deliveries answered neither 200 nor 202")
    if unserved:
        problems.append(f"{unserved} accepted deliveries had no pass after them")
    if sum(t.accepted for t in tallies.values()) == 0:
        problems.append("no delivery was accepted")
    if not_ok:
        problems.append(f"{not_ok} passes did not end ok")
    for problem in problems:
        print(f"  {problem}")
    print("MISMATCH" if problems else "PASS")
    return 1 if problems else 0


def counted(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(counts.items())) or "none"


def print_table(tallies: dict[str, Tally]) -> None:
    print(f"{'tracker':<8} {'edits':>6} {'posted':>7} {'202':>6} {'200':>6} {'other':>5} "
          f"{'deliver s':>9} {'deliv/s':>8} {'requests':>8} {'req/202':>8} {'req/edit':>8}"
          "  verdicts")
    total = Tally()
    for name, t in [*tallies.items(), ("all", total)]:
        if name != "all":
            for attr in ("posted", "accepted", "answered_200", "other", "edits", "requests"):
                setattr(total, attr, getattr(total, attr) + getattr(t, attr))
            total.wall += t.wall
            for verdict, n in t.verdicts.items():
                total.verdicts[verdict] = total.verdicts.get(verdict, 0) + n
        rate = t.posted / t.wall if t.wall else float("nan")
        per_accepted = t.requests / t.accepted if t.accepted else float("nan")
        per_edit = t.requests / t.edits if t.edits else float("nan")
        verdicts = ", ".join(f"{v} {n}" for v, n in sorted(t.verdicts.items()))
        print(f"{name:<8} {t.edits:>6} {t.posted:>7} {t.accepted:>6} {t.answered_200:>6} "
              f"{t.other:>5} {t.wall:>9.2f} {rate:>8.1f} {t.requests:>8} {per_accepted:>8.2f} "
              f"{per_edit:>8.2f}  {verdicts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000,
                        help="signed deliveries to post in bursts (echoes not counted)")
    parser.add_argument("--items", type=int, default=300, help="items over the 3 trackers")
    parser.add_argument("--bursts", type=int, default=20,
                        help="bursts to spread the deliveries over (more if needed)")
    parser.add_argument("--debounce", type=float, default=0.5,
                        help="seconds a burst settles before its pass (tether serve)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the edit sampling")
    parser.add_argument("--timeout", type=float, default=300,
                        help="seconds to wait for passes before giving up")
    sys.exit(run(parser.parse_args()))


if __name__ == "__main__":
    main()
