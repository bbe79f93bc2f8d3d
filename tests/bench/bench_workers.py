"""A sync spread over Celery workers: 1, 2 and 4 `tether worker --pool solo` processes take
the units (a pull, plan and write per scope, one assessment) of a sync over the Jira Cloud,
GitHub and Asana sandboxes; wall time, requests per item, peak RSS per worker, CPU per
process and the ratio to the request-latency lower bound.

    python tests/bench/bench_workers.py [--items 200000] [--scopes 50] [--workers 1,2,4]
                                        [--latency 0.02] [--budget N]

Each tracker's sandbox runs in a process of its own (none in the workers' or the
coordinator's, so each RSS is its own), seeded from the same generators every run, with
``--latency`` seconds added to every request and its rate limits turned off. Scopes (Jira
projects, GitHub repositories, Asana projects) are split as evenly as they go (50: 17, 17,
16) and items evenly over the scopes. The state store is a throwaway PostgreSQL cluster
(tests/pg_server.py; a fresh database per worker count), the broker Debian's redis-server
on a Unix socket (tests/redis_server.py). For each worker count: fresh sandboxes, a fresh
store, the workers started, then a first sync and an incremental one (15 minutes of the
trackers' time later, nothing changed but Tether's own writes) run by a coordinator
process (``run_pass(ws, store, "sync")`` with TETHER_BROKER_URL set, on a fixed clock).

The lower bound is requests x latency / workers: what the requests cost if every worker
waited on the network all the time and did nothing else. After each sync: the run's status
must be "ok", no item may carry two Tether comments, and the trackers' labels and comments
(hashed) must be identical across worker counts; PASS or FAIL, exit 1 on FAIL.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: pg_server, redis_server
from bench_kpis import KPIS  # noqa: E402  (beside this file)

T0 = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)  # every sandbox's (frozen) clock
FIRST_AT = T0 + timedelta(minutes=5)  # the coordinator's clock in the first sync
LATER = 15 * 60  # seconds of the trackers' time before the incremental sync
TRACKERS = ("jira", "github", "asana")
TOKENS = {"jira": "BENCH_JIRA_TOKEN", "github": "BENCH_GITHUB_TOKEN",
          "asana": "BENCH_ASANA_TOKEN"}
JIRA_EMAIL = "mia@example.com"
UNLIMITED = ("github", "asana")  # the trackers whose connectors publish a rate budget
SECTIONS = ["Backlog", "In Progress", "Done"]
MARK = "flagged this item:"  # in every comment Tether writes about findings
MARKER = "<!-- tether:comment -->"
TICK = os.sysconf("SC_CLK_TCK")
PHASES = ("pull", "assess", "plan", "write")
# Every tracker's titles start "<word> <number>" ("Item 12: ...", "Task 11"): half the items
# go to growth, three tenths to retention, the rest to neither (untethered).
RULES = """\
mappings:
  - {id: growth-work, kpi: growth, when: {title: {matches: "^\\\\S+ \\\\d*[0-4]\\\\b"}}}
  - {id: retention-work, kpi: retention, when: {title: {matches: "^\\\\S+ \\\\d*[5-7]\\\\b"}}}
"""


# -- /proc ------------------------------------------------------------------------------------

def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat from field 3 (state) on: utime is [11], stime [12], cutime [13],
    cstime [14], ppid [1]."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_of(pid: int, reaped: bool = False) -> float:
    """CPU seconds ``pid`` used (with its reaped children's when ``reaped``); 0 once gone."""
    try:
        f = _stat(pid)
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    ticks = int(f[11]) + int(f[12]) + (int(f[13]) + int(f[14]) if reaped else 0)
    return ticks / TICK


def tree_cpu(root: int) -> float:
    """CPU of ``root`` and its reaped children, plus its live children's (PostgreSQL: the
    postmaster and its backends)."""
    total = cpu_of(root, reaped=True)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                f = _stat(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(f[1]) == root:
                total += (int(f[11]) + int(f[12])) / TICK
    return total


def machine_busy() -> float:
    """CPU seconds every process on the machine used so far (all cores; /proc/stat)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9])
    return (user + nice + system + irq + softirq + steal) / TICK


def peak_rss_mb(pid: int | None = None) -> float:
    """VmHWM of ``pid`` (this process if None) in MB; 0 once gone."""
    try:
        status = Path(f"/proc/{pid or 'self'}/status").read_text()
    except FileNotFoundError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def reset_peak_rss(pid: int) -> None:
    """Start ``pid``'s VmHWM again from its current RSS (Linux: 5 into clear_refs), so a
    worker's peak is that of the next sync alone."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


# -- the sandbox process ------------------------------------------------------------------------

def build(kind: str, counts: list[int]) -> tuple[Any, dict[str, Any], Any]:
    """A sandbox API for ``kind`` with one scope per entry of ``counts`` holding that many
    generated items, on a frozen clock at T0; returns (api, source options, state reader)."""
    from tether.sdk import FakeClock

    clock = FakeClock(T0)
    if kind == "jira":
        from tether_jira.markup import adf_to_text
        from tether_jira.sandbox.api import JiraSandboxApi
        from tether_jira.sandbox.seed import generate as jira_items
        from tether_jira.sandbox.state import World as JiraWorld

        site = JiraWorld("cloud", "good", clock)
        site.add_user("5b10a2844c20165700ede21g", "mia", "Mia Krystof", JIRA_EMAIL, me=True)
        site.add_user("5b10ac8d82e05b22cc7d4ef5", "ravi", "Ravi Rao", "ravi@example.com",
                      admin=False)
        keys = [f"J{i:02d}" for i in range(len(counts))]
        for key, n in zip(keys, counts, strict=True):
            jira_items(site, key, n)

        def jira_state() -> dict[str, tuple[list[str], list[str]]]:
            return {key: (sorted(issue.labels),
                          [adf_to_text(c.body) if isinstance(c.body, dict) else str(c.body)
                           for c in issue.comments]) for key, issue in site.issues.items()}

        return (JiraSandboxApi(site), {"flavour": "cloud", "email": JIRA_EMAIL,
                                       "projects": keys}, jira_state)
    if kind == "github":
        from tether_github.sandbox.api import GitHubApi
        from tether_github.sandbox.seed import generate as github_items
        from tether_github.sandbox.world import World as GitHubWorld

        world = GitHubWorld(clock)
        world.add_token("good", "tether-bot")
        repos = [f"bench/repo-{i:02d}" for i in range(len(counts))]
        for name, n in zip(repos, counts, strict=True):
            github_items(world, world.add_repo(name), n, T0 - timedelta(days=60))

        def github_state() -> dict[str, tuple[list[str], list[str]]]:
            return {f"{repo.full_name}#{number}": (
                sorted(issue.labels), [world.comments[c].body for c in issue.comments])
                for repo in world.repos.values() for number, issue in repo.issues.items()}

        # Both of GitHub's limits (5,000 an hour, 80 writes a minute) off: not measured here.
        return (GitHubApi(world, rate_limit=10**9, writes_per_minute=10**9),
                {"repos": repos}, github_state)
    from tether_asana.sandbox.api import AsanaApi
    from tether_asana.sandbox.state import AsanaState

    state = AsanaState(clock)
    human = state.add_user("Ada Lovelace")["gid"]
    points = state.add_field("Story Points", "number")
    gids = []
    for p, n in enumerate(counts):  # as the conformance driver seeds its one project
        project = state.add_project(f"Project {p:02d}", SECTIONS, [points["gid"]])
        gids.append(project["gid"])
        for i in range(n):
            stamp = state.ago(30 + (n - i) / 1440)
            state.add_task(project["gid"], f"Task {i}", notes=f"Details of task {i}.",
                           section=SECTIONS[i % 3], assignee=human, creator=human,
                           completed=i % 3 == 2, values={points["gid"]: i % 8 + 1},
                           created_at=stamp, modified_at=stamp)

    def asana_state() -> dict[str, tuple[list[str], list[str]]]:
        return {gid: (sorted(state.tags[g]["name"] for g in task["tags"]),
                      [state.stories[s]["text"] for s in task["stories"]
                       if state.stories[s]["resource_subtype"] == "comment_added"])
                for gid, task in state.tasks.items()}

    return (AsanaApi(state, rate_limit=0),  # Asana's 1,500 a minute off: not measured here
            {"projects": gids, "workspace": state.workspace["gid"], "label_mode": "tags",
             "estimate_field": "Story Points"}, asana_state)


def serve_sandbox(kind: str, counts: list[int], latency: float) -> None:
    """The sandbox process: build, serve, print the source options as one JSON line, then
    answer one JSON command per line on stdin (count, state, advance, stop)."""
    from tether.sandbox import Fault, SandboxServer

    api, options, read_state = build(kind, counts)
    server = SandboxServer(api).start()
    if hasattr(api, "deliveries"):
        api.deliveries.base_url = server.base_url
    server.faults.add(Fault("latency", rate=1.0, seconds=latency))
    prefix = "/api/1.0" if kind == "asana" else ""
    options = {"url": server.base_url + prefix, "token_env": TOKENS[kind], **options}
    out = sys.stdout
    _say(out, {"options": options, "items": sum(counts)})
    clock = api.world.clock if kind != "asana" else api.state.clock
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "count":
            log = list(server.log)
            bad = Counter(f"{r.status} {r.method} {re.sub(r'[0-9]+', 'N', r.path)}"
                          for r in log if r.status >= 400 or r.status == 0)
            _say(out, {"requests": len(log), "failed": sum(bad.values()), "why": dict(bad)})
        elif cmd["cmd"] == "advance":
            clock.sleep(cmd["seconds"])
            _say(out, {})
        elif cmd["cmd"] == "state":
            _say(out, digest(read_state()))
        elif cmd["cmd"] == "stop":
            server.stop()
            _say(out, {})
            return


def _say(out: TextIO, doc: dict[str, Any]) -> None:
    out.write(json.dumps(doc) + "\n")
    out.flush()


def digest(state: dict[str, tuple[list[str], list[str]]]) -> dict[str, Any]:
    """What a person sees of Tether's work, hashed: every item's labels and comments."""
    ours = {key: sum(MARK in c or MARKER in c for c in comments)
            for key, (_, comments) in state.items()}
    text = json.dumps(sorted((k, labels, comments) for k, (labels, comments) in state.items()))
    return {"hash": hashlib.sha256(text.encode()).hexdigest()[:16], "items": len(state),
            "labelled": sum(any(x.startswith("tether") for x in labels)
                            for labels, _ in state.values()),
            "commented": sum(n > 0 for n in ours.values()),
            "twice": sorted(k for k, n in ours.items() if n > 1)[:5],
            "twice_n": sum(n > 1 for n in ours.values())}


class SandboxProcess:
    """One tracker's sandbox in a child process, driven over its stdin and stdout."""

    def __init__(self, kind: str, counts: list[int], latency: float, log: Path):
        self.kind = kind
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--sandbox", kind, "--counts",
             ",".join(map(str, counts)), "--latency", str(latency)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log.open("wb"), text=True)
        self.ready: dict[str, Any] | None = None

    def wait_ready(self) -> dict[str, Any]:
        if self.ready is None:
            self.ready = self._read()
        return self.ready

    def ask(self, cmd: str, **args: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.process.stdin.flush()
        return self._read()

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.kind} sandbox died: "
                               f"{self.log.read_text()[-2000:]}")
        return json.loads(line)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> float:
        """Stop it; returns its peak RSS in MB."""
        peak = peak_rss_mb(self.pid)
        if self.process.poll() is None:
            try:
                self.ask("stop")
                self.process.wait(30)
            except (RuntimeError, OSError, subprocess.TimeoutExpired):
                self.process.kill()
        return peak


# -- the coordinator process ----------------------------------------------------------------------

def coordinate(config: str, at: str, patience: float) -> None:
    """The coordinator process: one sync on the workers as of ``at``; prints a JSON line.
    ``patience``: seconds the coordinator waits on a phase before it pings the workers (0:
    run_pass's own executor, which pings after 30 s)."""
    from tether.pipeline.run import run_pass
    from tether.work import broker_url
    from tether.work.queue import OnWorkers
    from tether.workspace import load_workspace

    moment = datetime.fromisoformat(at)
    ws = load_workspace(Path(config))
    url = broker_url(ws.config)  # None: the whole pass runs here (the baseline)
    executor = OnWorkers(ws.config, url, patience) if patience and url else None
    with ws.open_store() as store:
        cpu, wall = time.process_time(), time.perf_counter()
        result = run_pass(ws, store, "sync", lambda: moment, executor=executor)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        units = [{"unit": u.unit, "state": u.state, "worker": u.worker, "tries": u.tries,
                  "queued": u.queued.timestamp(),
                  "started": u.started.timestamp() if u.started else None,
                  "finished": u.finished.timestamp() if u.finished else None,
                  "counts": u.counts} for u in store.work(result.run_id)]
    applied = result.applied
    import tether

    print(json.dumps({
        "code": str(Path(tether.__file__).parent),
        "wall": wall, "cpu": cpu, "rss": peak_rss_mb(), "run_id": result.run_id,
        "status": result.status, "items": result.items, "judged": result.judged,
        "ops": len(result.ops), "deferred": len(result.deferred),
        "written": applied.applied if applied else 0,
        "failed": applied.failed if applied else 0, "requests": result.requests,
        "unread": sorted(result.unread), "units": units}))


# -- the bench --------------------------------------------------------------------------------------

def snapshot(root: Path) -> str:
    """Copy Tether's code (core, rules, examples, the tracker plugins) into ``root`` and put
    it first on every process's path: a commit landing while the bench runs (hours) must
    not give the coordinator and the workers different versions. Returns what was copied."""
    repo = HERE.parent.parent
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(repo / "core" / "tether", root / "tether", ignore=skip)
    shutil.copytree(repo / "rules", root / "tether" / "rulepacks", ignore=skip)
    shutil.copytree(repo / "examples", root / "tether" / "examples", ignore=skip)
    for plugin in sorted((repo / "plugins").glob("tether_*")):
        shutil.copytree(plugin, root / plugin.name, ignore=skip)
    sys.path.insert(0, str(root))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(root), *filter(None, [os.environ.get("PYTHONPATH")])])

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                              check=False).stdout.strip()

    dirty = git("status", "--porcelain", "--", "core", "plugins", "rules", "examples")
    return (f"commit {git('rev-parse', '--short', 'HEAD')}"
            + (f" + {len(dirty.splitlines())} uncommitted file(s)" if dirty else "")
            + ", copied when the bench started")


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


@dataclass
class Sync:
    """One sync as measured."""

    label: str
    error: str | None = None
    doc: dict[str, Any] = field(default_factory=dict)  # the coordinator's report
    requests: int = 0
    by_tracker: dict[str, int] = field(default_factory=dict)
    failed_requests: int = 0
    failures: Counter[str] = field(default_factory=Counter)  # "status METHOD /path"
    cpu: dict[str, float] = field(default_factory=dict)  # by process group
    worker_cpu: list[float] = field(default_factory=list)
    worker_pids: list[int] = field(default_factory=list)
    worker_rss: list[float] = field(default_factory=list)  # VmHWM during the sync
    sandbox_rss: dict[str, float] = field(default_factory=dict)
    state: dict[str, dict[str, Any]] = field(default_factory=dict)  # by tracker

    @property
    def wall(self) -> float:
        return float(self.doc.get("wall", 0.0))


@dataclass
class Run:
    workers: int
    syncs: list[Sync] = field(default_factory=list)
    worker_rss: list[float] = field(default_factory=list)  # VmHWM just before stopping
    sandbox_rss: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Fixtures:
    """The servers every run shares: a PostgreSQL cluster and a redis-server."""

    def __init__(self, root: Path):
        import pg_server
        from redis_server import RedisServer

        why = pg_server.unavailable() or (None if pg_server.bin_dir() else "no PostgreSQL")
        if why:
            raise SystemExit(f"PostgreSQL is needed for this bench: {why}")
        binaries = pg_server.bin_dir()
        assert binaries is not None
        self.cluster = pg_server.Cluster(binaries)
        self.pg = pg_server.Server(self.cluster.start())
        self.pg_version = (binaries.parent.name)
        self.redis = RedisServer()
        self.root = root

    def postmaster(self) -> int:
        return int((self.cluster.data / "postmaster.pid").read_text().split()[0])

    def stop(self) -> None:
        self.redis.stop()
        try:
            self.pg.close()
        finally:
            self.cluster.stop()


def write_workspace(folder: Path, options: dict[str, dict[str, Any]], state_url: str,
                    budget: int) -> Path:
    import yaml

    (folder / "rules").mkdir(parents=True)
    (folder / "rules" / "mapping.yaml").write_text(RULES)
    config = {"version": 1,
              "sources": [{"name": kind, "type": kind, "options": options[kind]}
                          for kind in TRACKERS],
              "rules": {"packs": ["rules"]},
              "writeback": {"label_prefix": "tether", "comments": True, "budget": budget},
              "state": {"url": state_url},
              # Tether's own shared budgets (a token bucket in Redis per token) so high they
              # never make a request wait: each request still takes its token from Redis.
              "workers": {"rate_limits": dict.fromkeys(UNLIMITED, "1000000/1s")}}
    text = yaml.safe_dump(config, sort_keys=False) + KPIS
    (folder / "tether.yaml").write_text(text)
    return folder / "tether.yaml"


class Workers:
    """`tether worker -c <config> --pool solo` processes: one unit at a time each."""

    def __init__(self, config: Path, env: dict[str, str], logs: Path, url: str):
        from tether.work.queue import configure
        from tether.workspace import load_workspace

        self.config, self.env, self.logs = config, env, logs
        self.app = configure(load_workspace(config).config, url)
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, n: int) -> None:
        for i in range(n):
            log = (self.logs / f"worker-{i}.log").open("wb")
            self.processes.append(subprocess.Popen(
                [sys.executable, "-c", "from tether.cli import main; main()", "worker", "-c",
                 str(self.config), "--pool", "solo"], env=self.env, stdout=log,
                stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if len(self.app.control.ping(timeout=0.5)) >= n:
                return
            if any(p.poll() is not None for p in self.processes):
                break
        raise RuntimeError(f"workers did not come up:\n{self.tail()}")

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}"
                         for p in sorted(self.logs.glob("worker-*.log")))

    def stop(self) -> list[float]:
        """SIGTERM each (a warm shutdown); returns each one's VmHWM read just before."""
        peaks = [peak_rss_mb(pid) for pid in self.pids]
        for p in self.processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.processes:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
        return peaks


def bench_one(n_workers: int, fx: Fixtures, args: argparse.Namespace, root: Path,
              db: int) -> Run:
    run = Run(n_workers)
    folder = root / f"workers-{n_workers}"
    folder.mkdir()
    scopes = dict(zip(TRACKERS, split(args.scopes, 3), strict=True))
    counts = split(args.items, args.scopes)
    by_kind, at = {}, 0
    for kind in TRACKERS:
        by_kind[kind] = counts[at:at + scopes[kind]]
        at += scopes[kind]
    boxes = {kind: SandboxProcess(kind, by_kind[kind], args.latency,
                                  folder / f"sandbox-{kind}.log") for kind in TRACKERS}
    workers: Workers | None = None
    database = fx.pg.create()
    try:
        options = {kind: box.wait_ready()["options"] for kind, box in boxes.items()}
        config = write_workspace(folder / "ws", options, fx.pg.url(database), args.budget)
        broker = fx.redis.url(db)
        fx.redis.client(db).flushdb()
        env = {**os.environ, **{TOKENS[k]: "good" for k in TRACKERS},
               "TETHER_BROKER_URL": broker}
        if not n_workers:  # the baseline: the whole sync in the coordinator's process
            del env["TETHER_BROKER_URL"]
        workers = Workers(config, env, folder, broker)
        workers.start(n_workers)
        for label, at_time in (("first", FIRST_AT), ("incremental", FIRST_AT + timedelta(
                seconds=LATER))):
            if label == "incremental":
                for box in boxes.values():
                    box.ask("advance", seconds=LATER)
            sync = measure(label, config, at_time, env, fx, boxes, workers, folder,
                           args.patience)
            run.syncs.append(sync)
            if sync.error:
                break
    except Exception as exc:  # a run that could not be set up: reported, the others go on
        run.notes.append(f"{type(exc).__name__}: {exc}")
        traceback.print_exc()
    finally:
        if workers is not None:
            run.worker_rss = workers.stop()
        for kind, box in boxes.items():
            run.sandbox_rss[kind] = box.stop()
        fx.pg.drop(database)
    return run


def measure(label: str, config: Path, at: datetime, env: dict[str, str], fx: Fixtures,
            boxes: dict[str, SandboxProcess], workers: Workers, folder: Path,
            patience: float) -> Sync:
    sync = Sync(label)

    def cpu() -> dict[str, float]:
        got = {kind: cpu_of(box.pid) for kind, box in boxes.items()}
        got.update({f"worker{i}": cpu_of(pid) for i, pid in enumerate(workers.pids)})
        got["postgres"] = tree_cpu(fx.postmaster())
        got["redis"] = cpu_of(fx.redis.process.pid)
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # the coordinator, once reaped
        got["bench"] = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
        got["machine"] = machine_busy()
        return got

    counted = {kind: box.ask("count") for kind, box in boxes.items()}
    before = {kind: c["requests"] for kind, c in counted.items()}
    failed_before = {kind: Counter(c["why"]) for kind, c in counted.items()}
    for pid in workers.pids:
        reset_peak_rss(pid)
    cpu_before = cpu()
    done = subprocess.run(
        [sys.executable, __file__, "--coordinate", str(config), "--at", at.isoformat(),
         "--patience", str(patience)],
        env=env, capture_output=True, text=True, check=False, timeout=6 * 3600)
    cpu_after = cpu()
    (folder / f"coordinator-{label}.log").write_text(done.stderr)
    for kind, box in boxes.items():
        counted = box.ask("count")
        sync.by_tracker[kind] = counted["requests"] - before[kind]
        why = Counter(counted["why"]) - failed_before[kind]
        sync.failures.update({f"{kind}: {k}": n for k, n in why.items()})
        sync.failed_requests += sum(why.values())
    sync.requests = sum(sync.by_tracker.values())
    spent = {k: cpu_after[k] - cpu_before.get(k, 0.0) for k in cpu_after}
    sync.worker_cpu = [spent[f"worker{i}"] for i in range(len(workers.pids))]
    sync.worker_pids = list(workers.pids)
    sync.cpu = {"workers": sum(sync.worker_cpu), "sandboxes": sum(spent[k] for k in TRACKERS),
                **{k: spent[k] for k in (*TRACKERS, "postgres", "redis")}}
    # What processes outside the bench used meanwhile (the machine's busy time less every
    # process above, this one and the coordinator's whole life included): other load.
    sync.cpu["others"] = max(0.0, spent["machine"] - spent["bench"] - sync.cpu["workers"]
                             - sync.cpu["sandboxes"] - spent["postgres"] - spent["redis"])
    sync.worker_rss = [peak_rss_mb(pid) for pid in workers.pids]
    if done.returncode or not done.stdout.strip():
        sync.error = (f"the coordinator exited {done.returncode}: "
                      f"{done.stderr.strip()[-3000:]}\n{workers.tail()}")
        return sync
    sync.doc = json.loads(done.stdout.strip().splitlines()[-1])
    code = os.environ["PYTHONPATH"].split(os.pathsep)[0]
    if not sync.doc["code"].startswith(code):
        sync.error = f"the coordinator ran {sync.doc['code']}, not the snapshot in {code}"
    sync.cpu["coordinator"] = sync.doc["cpu"]
    sync.state = {kind: box.ask("state") for kind, box in boxes.items()}
    return sync


# -- reporting ---------------------------------------------------------------------------------

def phases(units: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per phase: units, their summed run time (busy), the phase's span (its first start to
    its last finish) and the requests its units counted."""
    out: dict[str, dict[str, float]] = {}
    for phase in PHASES:
        mine = [u for u in units if u["unit"].split(" ", 1)[0] == phase and u["started"]]
        if not mine:
            continue
        done = [u for u in mine if u["finished"]]
        out[phase] = {
            "units": len(mine),
            "busy": sum(u["finished"] - u["started"] for u in done),
            "longest": max((u["finished"] - u["started"] for u in done), default=0.0),
            "span": (max(u["finished"] for u in done) - min(u["started"] for u in mine))
            if done else 0.0,
            "requests": sum(int(u["counts"].get("requests", 0)) for u in mine),
        }
    return out


def assessor(s: Sync) -> int | None:
    """The pid of the worker that ran the sync's assessment."""
    return next((int(u["worker"].rsplit(":", 1)[1]) for u in s.doc["units"]
                 if u["unit"] == "assess" and u["worker"]), None)


def busy_by_worker(s: Sync, n: int) -> list[float]:
    """Each worker's units' run time summed, in the order the workers were started."""
    busy: Counter[int] = Counter()
    for u in s.doc["units"]:
        if u["worker"] and u["started"] and u["finished"]:
            busy[int(u["worker"].rsplit(":", 1)[1])] += u["finished"] - u["started"]
    return [busy.get(pid, 0.0) for pid in s.worker_pids[:n]]


def by_tracker(s: Sync) -> dict[str, dict[str, Any]]:
    """Requests and busy seconds per tracker and phase; write units that wrote, of the
    tracker's shards."""
    out: dict[str, dict[str, Any]] = {
        k: {"pull": 0, "plan": 0, "write": 0, "wrote": 0, "shards": 0,
            "busy": Counter()} for k in TRACKERS}
    for u in s.doc["units"]:
        phase, _, shard = u["unit"].partition(" ")
        kind = shard.split("@", 1)[0]
        if kind not in out:
            continue
        if u["started"] and u["finished"]:
            out[kind]["busy"][phase] += u["finished"] - u["started"]
        if phase not in ("pull", "write"):
            continue
        out[kind][phase] += int(u["counts"].get("requests", 0))
        if phase == "write":
            out[kind]["shards"] += 1
            out[kind]["wrote"] += int(u["counts"].get("written", 0)) > 0
    for kind in TRACKERS:
        out[kind]["plan"] = s.by_tracker[kind] - out[kind]["pull"] - out[kind]["write"]
    return out


def report(runs: list[Run], args: argparse.Namespace, fx_desc: str) -> bool:
    scopes = dict(zip(TRACKERS, split(args.scopes, 3), strict=True))
    print(f"items={args.items:,} over {args.scopes} scopes (Jira Cloud {scopes['jira']} "
          f"projects, GitHub {scopes['github']} repos, Asana {scopes['asana']} projects; "
          f"{args.items // args.scopes:,} items per scope), latency "
          f"{args.latency * 1000:g} ms per request, writeback budget {args.budget}, "
          f"{os.cpu_count()} cores")
    print(f"state store: {fx_desc}; broker: redis-server on a Unix socket; sandboxes: one "
          "process per tracker, rate limits off; workers: `tether worker --pool solo`")
    print("coordinator: run_pass(ws, store, 'sync') in a process of its own, "
          + (f"with OnWorkers(patience={args.patience:g} s) as its executor"
             if args.patience else "with its own executor")
          + f"; code: {args.code}")
    print("rate limits: the sandboxes' off; Tether's shared worker budgets "
          f"(workers.rate_limits) for {' and '.join(UNLIMITED)} at 1000000/1s, so no request "
          "waits but each takes its token from Redis (Jira publishes no budget)")
    print()
    base: dict[str, float] = {}
    print(f"{'workers':>7} {'sync':<11} {'wall s':>8} {'speedup':>7} {'requests':>8} "
          f"{'req/item':>8} {'bound s':>8} {'wall/bd':>7} {'ops':>7} {'written':>7} "
          f"{'coord MB':>8}  worker peak RSS MB")
    for run in runs:
        for s in run.syncs:
            if s.error:
                print(f"{run.workers:>7} {s.label:<11} FAILED: {s.error.splitlines()[0]}")
                continue
            bound = s.requests * args.latency / max(1, run.workers)
            base.setdefault(s.label, s.wall)
            d = s.doc
            print(f"{run.workers:>7} {s.label:<11} {s.wall:>8.1f} "
                  f"{base[s.label] / s.wall:>6.2f}x {s.requests:>8} "
                  f"{s.requests / args.items:>8.4f} {bound:>8.1f} {s.wall / bound:>7.2f} "
                  f"{d['ops']:>7} {d['written']:>7} {d['rss']:>8.0f}  "
                  + " ".join(f"{x:.0f}{'*' if pid == assessor(s) else ''}"
                             for x, pid in zip(s.worker_rss, s.worker_pids, strict=True)))
        if run.worker_rss:
            print(f"{'':>7} {'(at stop)':<11} {'':>8} {'':>7} {'':>8} {'':>8} {'':>8} {'':>7} "
                  f"{'':>7} {'':>7} {'':>8}  " + " ".join(f"{x:.0f}" for x in run.worker_rss)
                  + "   sandboxes " + ", ".join(f"{k} {v:.0f}"
                                                 for k, v in run.sandbox_rss.items()))
        for note in run.notes:
            print(f"{run.workers:>7} note: {note}")
    print("(bound: requests x latency / workers; wall/bd: the sync's wall time over it. "
          "speedup: the 1st worker count's wall over this one's. worker RSS: VmHWM during "
          "the sync (reset before it), * the worker that ran the assessment. "
          "0 workers: the baseline, the whole sync in the coordinator's process "
          "with no broker)")

    print()
    print(f"{'workers':>7} {'sync':<11} {'phase':<7} {'units':>5} {'busy s':>8} "
          f"{'longest':>8} {'span s':>8}   busy/(span x workers)")
    for run in runs:
        for s in run.syncs:
            if s.error:
                continue
            spans = 0.0
            if not s.doc["units"]:
                continue  # one process: no units recorded
            for phase, p in phases(s.doc["units"]).items():
                spans += p["span"]
                spread = p["busy"] / (p["span"] * run.workers) if p["span"] else 0.0
                print(f"{run.workers:>7} {s.label:<11} {phase:<7} {int(p['units']):>5} "
                      f"{p['busy']:>8.1f} {p['longest']:>8.1f} {p['span']:>8.1f}   "
                      f"{spread:.2f}")
            print(f"{run.workers:>7} {s.label:<11} {'other':<7} {'':>5} {'':>8} {'':>8} "
                  f"{s.wall - spans:>8.1f}   (the coordinator, and queueing between phases)")
    print("(busy: the phase's units' run time summed; longest: its longest unit; span: its "
          "first start to its last finish)")

    print()
    print(f"{'workers':>7} {'sync':<11} " + " ".join(
        f"{k + ' ' + ph:>12}" for k in TRACKERS for ph in ("pull", "plan", "write"))
        + f" {'failed':>6}   write units that wrote")
    for run in runs:
        for s in run.syncs:
            if s.error:
                continue
            if not s.doc["units"]:
                print(f"{run.workers:>7} {s.label:<11} one process, not split by phase: "
                      + ", ".join(f"{k} {s.by_tracker[k]}" for k in TRACKERS)
                      + f"; failed {s.failed_requests}")
                continue
            by = by_tracker(s)
            print(f"{run.workers:>7} {s.label:<11} " + " ".join(
                f"{by[k][ph]:>6}/{by[k]['busy'][ph]:>4.0f}s" for k in TRACKERS
                for ph in ("pull", "plan", "write"))
                + f" {s.failed_requests:>6}   " + ", ".join(
                    f"{k} {by[k]['wrote']}/{by[k]['shards']}" for k in TRACKERS))
    print("(requests the sandboxes served / the units' run time summed, by tracker and phase: "
          "requests of pull and write as their units counted them, of plan the rest; failed: "
          "answered 4xx/5xx or reset)")
    for run in runs:
        for s in run.syncs:
            if s.failures:
                print(f"  failed requests, {run.workers} worker(s), {s.label}: " + ", ".join(
                    f"{k} x{n}" for k, n in sorted(s.failures.items())))

    print()
    print(f"{'workers':>7} {'sync':<11} {'coord':>7} {'workers':>8} {'jira':>7} {'github':>7} "
          f"{'asana':>7} {'postgres':>8} {'redis':>6} {'total':>7} {'of 2 cores':>10} "
          f"{'others':>6}   per worker: CPU s / busy s")
    cores = os.cpu_count() or 1
    for run in runs:
        for s in run.syncs:
            if s.error:
                continue
            c = s.cpu
            total = sum(c.get(k, 0.0) for k in ("coordinator", "workers", "sandboxes",
                                                "postgres", "redis"))
            print(f"{run.workers:>7} {s.label:<11} {c.get('coordinator', 0):>7.1f} "
                  f"{c['workers']:>8.1f} {c['jira']:>7.1f} {c['github']:>7.1f} "
                  f"{c['asana']:>7.1f} {c['postgres']:>8.1f} {c['redis']:>6.1f} "
                  f"{total:>7.1f} {total / (s.wall * cores):>9.0%} {c['others']:>7.1f}   "
                  + "  ".join(f"{x:.1f}/{b:.1f}" for x, b in zip(
                      s.worker_cpu, busy_by_worker(s, run.workers), strict=True)))
    print(f"(CPU seconds each process used during the sync; 'of {cores} cores': total CPU "
          "over wall x cores; others: CPU seconds processes outside the bench took meanwhile "
          "(other load on the machine); busy: the worker's units' run time summed, from the "
          "store's work table)")

    print()
    return check(runs)


def check(runs: list[Run]) -> bool:
    ok = True
    seen: dict[str, tuple[int, dict[str, str]]] = {}
    for run in runs:
        if run.notes or not run.syncs:
            print(f"FAIL {run.workers} worker(s): {'; '.join(run.notes) or 'no sync ran'}")
            ok = False
        for s in run.syncs:
            where = f"{run.workers} worker(s), {s.label} sync"
            if s.error:
                print(f"FAIL {where}: {s.error}")
                ok = False
                continue
            problems = []
            if s.doc["status"] != "ok":
                problems.append(f"status {s.doc['status']!r} (unread: {s.doc['unread']})")
            if s.doc["failed"]:
                problems.append(f"{s.doc['failed']} writes failed")
            twice = {k: v["twice"] for k, v in s.state.items() if v["twice_n"]}
            if twice:
                problems.append(f"items with two Tether comments: {twice}")
            undone = [u["unit"] for u in s.doc["units"] if u["state"] != "done"]
            if undone:
                problems.append(f"units not done: {undone[:5]}")
            hashes = {k: v["hash"] for k, v in s.state.items()}
            first = seen.setdefault(s.label, (run.workers, hashes))
            if first[1] != hashes:
                problems.append(f"trackers differ from {first[0]} worker(s)': {hashes} vs "
                                f"{first[1]}")
            shown = ", ".join(f"{k} {v['hash']} ({v['labelled']} labelled, {v['commented']} "
                              f"commented)" for k, v in s.state.items())
            if problems:
                ok = False
                print(f"FAIL {where}: " + "; ".join(problems))
            else:
                print(f"PASS {where}: status ok, {s.doc['written']} written, none commented "
                      f"twice, retries {sum(u['tries'] - 1 for u in s.doc['units'])}; "
                      f"trackers {shown}")
    print("PASS" if ok else "FAIL")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--scopes", type=int, default=50)
    parser.add_argument("--workers", default="1,2,4",
                        help="worker counts; 0: the baseline, the sync in one process")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per request")
    parser.add_argument("--budget", type=int, default=None,
                        help="writeback budget (default: items / 100, at least 50)")
    parser.add_argument("--patience", type=float, default=0.0, help=(
        "seconds the coordinator waits on a phase between checks that a worker is alive; "
        "0 (default): run_pass's own executor (30 s)"))
    # The child processes' modes.
    parser.add_argument("--sandbox", choices=TRACKERS, help=argparse.SUPPRESS)
    parser.add_argument("--counts", help=argparse.SUPPRESS)
    parser.add_argument("--coordinate", help=argparse.SUPPRESS)
    parser.add_argument("--at", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sandbox:
        serve_sandbox(args.sandbox, [int(n) for n in args.counts.split(",")], args.latency)
        return
    if args.coordinate:
        coordinate(args.coordinate, args.at, args.patience)
        return
    if args.scopes < 3 or args.items < args.scopes:
        parser.error("at least 3 scopes (one per tracker) and one item per scope")
    if args.budget is None:
        args.budget = max(50, args.items // 100)
    counts = [int(n) for n in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="tether-bench-workers-") as tmp:
        root = Path(tmp)
        args.code = snapshot(root / "code")
        fx = Fixtures(root)
        runs = []
        try:
            for db, n in enumerate(counts):
                started = time.perf_counter()
                runs.append(bench_one(n, fx, args, root, db % fx.redis.DATABASES))
                print(f"# {n} worker(s) done in {time.perf_counter() - started:.0f} s",
                      file=sys.stderr, flush=True)
            desc = (f"PostgreSQL {fx.pg_version} (throwaway cluster on a Unix socket, fsync "
                    "off)")
        finally:
            fx.stop()
        ok = report(runs, args, desc)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
