"""The service's Prometheus metrics, in a registry of their own (one per service)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from tether.pipeline.run import RunResult


class Metrics:
    """What operations people watch: passes and their duration, items judged, open findings
    by signal, writes by result, webhook deliveries by source and verdict, unread sources,
    tracker requests by source and answer."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.passes = Counter("tether_passes", "Passes run, by how they ended", ["status"],
                              registry=registry)
        self.duration = Histogram("tether_pass_duration_seconds", "Wall time of a pass",
                                  registry=registry,
                                  buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600))
        self.judged = Counter("tether_items_judged", "Items judged again by passes",
                              registry=registry)
        self.findings = Gauge("tether_findings", "Open findings after the last pass, by signal",
                              ["signal"], registry=registry)
        self.writes = Counter("tether_writes", "Writes to trackers, by result", ["result"],
                              registry=registry)
        self.deliveries = Counter("tether_webhook_deliveries",
                                  "Webhook deliveries, by source and verdict",
                                  ["source", "verdict"], registry=registry)
        self.unread = Gauge("tether_source_unread_since_seconds",
                            "Unix time since which a source could not be read (0: it can)",
                            ["source"], registry=registry)
        self.requests = Counter("tether_tracker_requests",
                                "Requests sent to trackers, by source and answer (ok, "
                                "throttled: 429 or a rate limit, refused, failed)",
                                ["source", "answer"], registry=registry)
        self.units = Counter("tether_work_units", "Units of passes run on workers, by phase "
                             "(pull, assess, plan, write) and how they ended",
                             ["phase", "state"], registry=registry)
        self.unit_tries = Counter("tether_work_unit_retries", "Units taken again (a worker "
                                  "died, or a tracker error was tried again), by phase",
                                  ["phase"], registry=registry)
        self.unit_seconds = Histogram("tether_work_unit_seconds", "Wall time of a unit, by "
                                      "phase", ["phase"], registry=registry,
                                      buckets=(0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300))
        self.last_pass = Gauge("tether_last_pass_finished_seconds",
                               "Unix time the last pass finished", registry=registry)
        self._signals: set[str] = set()  # gauges set once read 0 when no longer raised
        self._sources: set[str] = set()

    def record(self, result: RunResult, seconds: float) -> None:
        """Count one finished pass."""
        self.passes.labels(result.status).inc()
        self.duration.observe(seconds)
        self.judged.inc(result.judged)
        self._signals |= result.totals.signals.keys()
        for signal in self._signals:
            self.findings.labels(signal).set(result.totals.signals.get(signal, 0))
        applied = result.applied
        if applied is not None:
            self.writes.labels("applied").inc(applied.applied)
            self.writes.labels("failed").inc(applied.failed)
            self.writes.labels("deferred").inc(len(applied.deferred))
        self.writes.labels("held").inc(len(result.held))
        self._sources |= result.unread.keys()
        for name in self._sources:
            unread = result.unread.get(name)
            self.unread.labels(name).set(unread.since.timestamp() if unread else 0)
        for name, answers in result.requests.items():
            for answer, n in answers.items():
                self.requests.labels(name, answer).inc(n)
        for unit in result.units:
            phase = unit.unit.partition(" ")[0]
            self.units.labels(phase, unit.state).inc()
            if unit.tries > 1:
                self.unit_tries.labels(phase).inc(unit.tries - 1)
            if unit.started and unit.finished:
                self.unit_seconds.labels(phase).observe(
                    (unit.finished - unit.started).total_seconds())
        if result.finished is not None:
            self.last_pass.set(result.finished.timestamp())

    def text(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
