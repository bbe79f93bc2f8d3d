"""Passes one at a time, on a thread of their own: on a schedule, and a debounce after the
first of a burst of requests (webhooks); a request that arrives while a pass runs is kept
for the next one, never lost."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from tether.serve.schedule import Schedule

log = logging.getLogger("tether.serve")
# What a pass is asked for, besides source names: everything (a scheduled pass, a request
# naming no source), no source at all (a KPI measurement came: judge again), the KPI sources.
EVERYTHING, JUDGE_ONLY, KPI_SOURCES = "", "\0judge", "\0kpis"


@dataclass
class Outcome:
    """How the last pass ended, for readiness and metrics."""

    finished: float  # the runner's clock (monotonic seconds)
    status: str  # the pass's status, or "error"
    error: str = ""


class Runner:
    """Runs ``one_pass`` on each of its ``schedules`` (by what it asks for: EVERYTHING, or
    KPI_SOURCES; the first run of each at once) and ``debounce`` seconds after the first
    ``request`` of a burst. ``one_pass`` gets None (everything) or what was asked for.
    ``stop`` lets the pass in flight finish."""

    def __init__(self, one_pass: Callable[[set[str] | None], str],
                 schedules: dict[str, Schedule], debounce: float,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self._one_pass, self.schedules, self.debounce = one_pass, schedules, debounce
        self._clock, self._wall = clock, wall
        self._cond = threading.Condition()
        self._asked: float | None = None  # when the first request of a burst came
        self._sources: set[str] = set()  # what the requests asked for
        self._next = dict.fromkeys(schedules, clock())  # each schedule's next run
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.running = False
        self.last: Outcome | None = None
        self.passes = 0

    def request(self, source: str | None = None) -> None:
        """Something changed in ``source`` (None: anywhere; or JUDGE_ONLY, KPI_SOURCES): run
        a pass on what was asked for once the burst settles (``debounce``)."""
        with self._cond:
            if self._asked is None:
                self._asked = self._clock()
            self._sources.add(source or EVERYTHING)
            self._cond.notify()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="tether-passes", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the pass in flight (the ledger stays consistent); no new pass starts."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    def _due(self) -> float:
        due = min(self._next.values(), default=float("inf"))
        if self._asked is not None:
            due = min(due, self._asked + self.debounce)
        return due

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and self._clock() < self._due():
                    wait = self._due() - self._clock()
                    self._cond.wait(None if wait == float("inf") else wait)
                if self._stopping:
                    return
                now = self._clock()
                for name in [n for n, at in self._next.items() if now >= at]:
                    self._sources.add(name)
                    self._next[name] = now + self.schedules[name].wait(self._wall())
                sources = None if EVERYTHING in self._sources else self._sources
                self._asked, self._sources = None, set()  # later requests: the next pass
                self.running = True
            try:
                status = self._one_pass(sources)
                self.last = Outcome(self._clock(), status)
            except Exception as exc:  # a pass that fails must not stop the service
                log.error("pass failed: %s", exc)
                self.last = Outcome(self._clock(), "error", str(exc))
            finally:
                with self._cond:
                    self.running = False
                    self.passes += 1
                    self._cond.notify_all()

    @property
    def state(self) -> str:
        """"running" (a pass is), "waiting" (one is asked for: a burst settling, or a
        request that came during a pass) or "idle"."""
        with self._cond:
            return "running" if self.running else "waiting" if self._asked else "idle"

    def wait_for(self, passes: int, timeout: float) -> bool:
        """Block until ``passes`` passes have finished in all (for callers that must know)."""
        with self._cond:
            return self._cond.wait_for(lambda: self.passes >= passes, timeout)
