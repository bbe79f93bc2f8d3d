"""The service behind `tether serve`: loads the workspace for each pass, runs passes on its
runner, takes webhook deliveries (verified by the source's connector) and keeps the numbers
the health, readiness and metrics endpoints report."""

from __future__ import annotations

import base64
import copy
import hmac
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tether.codec import parse_datetime
from tether.connector import Connector
from tether.errors import TetherError
from tether.model import Measurement
from tether.pipeline.pull import cursor_key
from tether.pipeline.run import run_pass
from tether.report.formats import render_report
from tether.serve.metrics import Metrics
from tether.serve.runner import EVERYTHING, JUDGE_ONLY, KPI_SOURCES, Runner
from tether.serve.schedule import Schedule
from tether.store.db import Store
from tether.webhook import Delivery, Hook, Refused
from tether.work import broker_url
from tether.workspace import Workspace, load_workspace

log = logging.getLogger("tether.serve")


@dataclass(frozen=True)
class Settings:
    """How the service runs (``tether serve`` options)."""

    config: Path
    interval: float | str | None = 900.0  # seconds, or cron, between passes; None: webhooks only
    debounce: float = 5.0  # seconds a burst of webhooks settles before its pass
    max_body: int = 1_048_576  # bytes: larger deliveries are refused (413)
    report_token_env: str = "TETHER_REPORT_TOKEN"  # no token: no live report
    kpi_token_env: str = "TETHER_KPI_TOKEN"  # no token: no measurements taken over HTTP
    kpis_every: float | str | None = None  # KPI sources read on their own schedule too

    def schedules(self) -> dict[str, Schedule]:
        """The runner's schedules: passes on every source, and KPI sources on their own."""
        asked = {EVERYTHING: self.interval, KPI_SOURCES: self.kpis_every}
        return {name: Schedule.of(when) for name, when in asked.items() if when is not None}


class StoreSecrets:
    """Per-webhook secrets a tracker handed over (Asana's handshake), kept in the store."""

    WAIT = timedelta(minutes=10)  # how long an install waits for its handshakes at most

    def __init__(self, store: Store, source: str,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.store, self.source, self.clock = store, source, clock

    def get(self, hook: str) -> str | None:
        return self.store.hook_secret(self.source, hook)

    def put(self, hook: str, secret: str) -> None:
        self.store.keep_hook_secret(self.source, hook, secret)

    def expected(self) -> bool:
        return self.store.handshake_expected(self.source, self.clock())

    @contextmanager
    def expecting(self) -> Iterator[None]:
        """Take the handshakes of webhooks made in the ``with`` block (WAIT at most)."""
        self.store.expect_handshakes(self.source, self.clock() + self.WAIT)
        try:
            yield
        finally:
            self.store.expect_handshakes(self.source, None)

    def forget(self, hook: str) -> None:
        """Drop a removed webhook's secret, so that a new one can shake hands again."""
        self.store.forget_hook(self.source, hook)


def install_hooks(ws: Workspace, connector: Connector, target: str) -> list[Hook]:
    """``connector``'s webhooks to ``target``, made while the store says an install waits:
    a tracker that shakes hands (Asana) does so while its webhook is made, and `tether
    serve` takes a handshake only then."""
    with ws.open_store() as store, StoreSecrets(store, connector.name).expecting():
        return connector.install_hooks(target)


def remove_hooks(ws: Workspace, connector: Connector, target: str) -> list[Hook]:
    """Remove ``connector``'s webhooks to ``target`` and forget their secrets, so that a
    webhook made again shakes hands afresh."""
    gone = connector.remove_hooks(target)
    with ws.open_store() as store:
        secrets = StoreSecrets(store, connector.name)
        for hook in gone:
            secrets.forget(hook.scope)
    return gone


class Service:
    """One workspace served: passes on a runner, webhooks taken, numbers kept."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 load: Callable[[Path], Workspace] = load_workspace):
        self.settings, self.clock, self.load = settings, clock, load
        self.metrics = Metrics()
        self.runner = Runner(self.one_pass, settings.schedules(), settings.debounce,
                             wall=clock)
        self.workspace: Workspace = load(settings.config)  # fails fast on a bad config
        self.config_error = ""
        self._reports: dict[tuple[str, int], str] = {}
        self._store: tuple[str, Store] | None = None  # see store()
        self._lock = threading.RLock()

    def store(self) -> Store:
        """The state store for requests (webhooks, readiness, the report), kept open: opening
        one per request would cost an engine and a schema check each time. Passes open
        their own."""
        url = self.workspace.config.state_url
        with self._lock:
            if self._store is None or self._store[0] != url:
                self.close()
                self._store = (url, Store(url))
            return self._store[1]

    def close(self) -> None:
        """Release the store kept for requests."""
        if self._store is not None:
            self._store[1].close()
            self._store = None

    def one_pass(self, asked: set[str] | None = None) -> str:
        """A sync pass on the workspace as its files are now (pulling only the sources
        ``asked`` names, and the KPI sources when it says so, when given); returns how it
        ended."""
        try:
            self.workspace = self.load(self.settings.config)
            self.config_error = ""
        except TetherError as exc:  # keep serving on the config that loaded last
            self.config_error = str(exc)
            log.error("config not reloaded: %s", exc)
        started = time.monotonic()
        ws = self.workspace
        sources = None if asked is None else asked - {JUDGE_ONLY, KPI_SOURCES}
        with ws.open_store() as store:
            result = run_pass(ws, store, "sync", self.clock, sources=sources,
                              kpis=asked is not None and KPI_SOURCES in asked)
        self.metrics.record(result, time.monotonic() - started)
        log.info("pass %s: %s, %d items judged again", result.run_id, result.status,
                 result.judged)
        return result.status

    def report(self, fmt: str) -> str:
        """The report of the latest pass in ``fmt``, rendered once per pass."""
        key = (fmt, self.runner.passes)
        if key not in self._reports:
            self._reports = {key: render_report(self.workspace, self.store(), fmt,
                                                self.clock())[0]}
        return self._reports[key]

    def report_allowed(self, authorization: str | None) -> bool:
        """Whether ``authorization`` (a Bearer token, or Basic with the token as password)
        carries the report token from the environment; Refused(404) when none is set."""
        return _allowed(authorization, self.settings.report_token_env,
                        "the report is business data, so it is served only behind a token")

    def record_measurement(self, kpi_id: str, body: bytes, authorization: str | None
                           ) -> Measurement:
        """Keep one measured value of ``kpi_id`` (JSON ``{"value": 42.5, "at": "2025-06-01"}``,
        ``at`` defaulting to now) and ask for a pass that pulls nothing, to judge the KPI
        facts again. Refused: 404 with no token set, 401 without it, 404 for an unknown KPI,
        400 for a malformed value, 409 for a value already kept at that moment."""
        if not _allowed(authorization, self.settings.kpi_token_env,
                        "measurements are taken only from a system holding a token"):
            raise Refused(401, "a valid KPI token is needed")
        ws = self.workspace
        ids = [k.id for k in ws.config.kpis]
        if kpi_id not in ids:
            raise Refused(404, f"no KPI '{kpi_id}' in {ws.config.file}; the KPIs are "
                               f"{', '.join(ids) or 'none'}")
        try:
            data = json.loads(body)
            value, at = data["value"], data.get("at")
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value):
                raise ValueError
            when = parse_datetime(at) if at is not None else self.clock()
            if when is None:
                raise ValueError
        except (ValueError, TypeError, KeyError, AttributeError):
            raise Refused(400, 'send JSON like {"value": 42.5, "at": "2025-06-01"}: a finite '
                               "number, and when it was measured (optional: now)") from None
        measured = Measurement(kpi_id, when, float(value))
        if not self.store().add_measurements([measured]):
            raise Refused(409, f"{kpi_id} already has a value at {when.isoformat()}; "
                               "stored values are never overwritten")
        self.runner.request(JUDGE_ONLY)
        return measured

    def readiness(self) -> tuple[bool, dict[str, object]]:
        """Whether the service is ready, and why: the store answers, the config loaded and
        the last pass is recent (within three intervals) and did not fail."""
        checks: dict[str, object] = {}
        try:
            checks["items"] = self.store().count_tasks()
            checks["store"] = "ok"
        except Exception as exc:  # readiness reports, it does not raise
            checks["store"] = f"unreachable: {exc}"
        checks["config"] = self.config_error or "ok"
        checks["passes"] = {"run": self.runner.passes, "now": self.runner.state}
        last = self.runner.last
        if last is None:
            checks["last_pass"] = "none yet"
        else:
            age = time.monotonic() - last.finished
            checks["last_pass"] = {"status": last.status, "seconds_ago": round(age, 1)}
            if last.error:
                checks["last_error"] = last.error
        every = self.runner.schedules.get(EVERYTHING)
        stale = last is None or (every is not None and time.monotonic() - last.finished
                                 > 3 * every.period(self.clock()))
        ready = (checks["store"] == "ok" and not self.config_error and not stale
                 and last is not None and last.status != "error")
        return ready, checks

    def deliver(self, source: str, headers: Mapping[str, str], body: bytes,
                query: Mapping[str, str]) -> tuple[Delivery, str]:
        """Take one webhook delivery for ``source`` and say what became of it: verified by
        its connector, a repeat ("duplicate"), Tether's own echo ("echo") or one that touches
        no item ("noted") changes nothing; anything else asks the runner for a pass
        ("accepted"). Raises Refused (with the HTTP status) for what must change nothing."""
        ws = self.workspace
        connector = ws.connectors.get(source)
        if connector is None:
            raise Refused(404, f"no source named '{source}' in {ws.config.file}")
        if len(body) > self.settings.max_body:
            raise Refused(413, f"{source}: delivery of {len(body)} bytes is over the "
                               f"{self.settings.max_body}-byte cap")
        # A copy of its own: a pass may be using the connector (and its memory) right now.
        connector = copy.copy(connector)
        store = self.store()
        connector.memory = remembered(store, ws, source)  # who Tether's account is
        delivery = connector.receive(headers, body, query, StoreSecrets(store, source, self.clock),
                                     ws.config.writeback.label_prefix)
        if delivery.id and not store.first_delivery(source, delivery.id, self.clock()):
            # 2xx: a tracker retrying what it already sent must stop; nothing changes.
            return delivery, "duplicate"
        if delivery.own:
            return delivery, "echo"
        if not delivery.keys:
            return delivery, "noted"
        if broker_url(ws.config) is None:
            self.runner.request(source)
        else:  # workers pull only the scopes the delivery touched (new items: every one)
            scopes = store.task_scopes(f"{source}:{key}" for key in delivery.keys)
            known = all(f"{source}:{key}" in scopes for key in delivery.keys)
            for name in {cursor_key(source, s) for s in scopes.values()} if known else {source}:
                self.runner.request(name)
        return delivery, "accepted"


def remembered(store: Store, ws: Workspace, source: str) -> dict[str, Any]:
    """What ``source``'s connector keeps between passes: its own, or (passes spread over
    workers keep it per scope) its first scope's."""
    names = [source, *(cursor_key(source, scope) for scope in ws.connectors[source].shards())]
    return next((m for m in map(store.load_memory, names) if m), {})


def _allowed(authorization: str | None, variable: str, why: str) -> bool:
    """Whether ``authorization`` (a Bearer token, or Basic with the token as password)
    carries the token in ``$variable``; Refused(404) when none is set (``why`` says why)."""
    token = os.environ.get(variable, "")
    if not token:
        raise Refused(404, f"{why}: set {variable} where tether serve runs")
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() == "basic":
        try:
            given = base64.b64decode(given).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return False
    elif scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.encode(), token.encode())
