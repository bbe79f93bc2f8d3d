"""Passes one at a time, on a thread of their own: on a schedule, and a debounce after the
first of a burst of requests (webhooks); a request that arrives while a pass runs is kept
for the next one, never lost."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("tether.serve")
JUDGE_ONLY = "\0judge"  # a request that needs no source pulled (a KPI measurement came)


@dataclass
class Outcome:
    """How the last pass ended, for readiness and metrics."""

    finished: float  # the runner's clock (monotonic seconds)
    status: str  # the pass's status, or "error"
    error: str = ""


class Runner:
    """Runs ``one_pass`` every ``interval`` seconds (None: only when asked) and ``debounce``
    seconds after the first ``request`` of a burst. ``stop`` lets the pass in flight finish."""

    def __init__(self, one_pass: Callable[[set[str] | None], str], interval: float | None,
                 debounce: float,
                 clock: Callable[[], float] = time.monotonic):
        self._one_pass, self.interval, self.debounce, self._clock = (
            one_pass, interval, debounce, clock)
        self._cond = threading.Condition()
        self._asked: float | None = None  # when the first request of a burst came
        self._sources: set[str] = set()  # the sources the requests named
        self._next = clock()  # the first scheduled pass runs at once
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.running = False
        self.last: Outcome | None = None
        self.passes = 0

    def request(self, source: str | None = None) -> None:
        """Something changed in ``source`` (None: anywhere; JUDGE_ONLY: no source, the KPI
        facts): run a pass on the sources asked for once the burst settles (``debounce``)."""
        with self._cond:
            if self._asked is None:
                self._asked = self._clock()
            self._sources.add(source or "")
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
        due = self._next if self.interval is not None else float("inf")
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
                scheduled = self.interval is not None and self._clock() >= self._next
                # A scheduled pass, or a request naming no source, pulls every source.
                sources = (None if scheduled or "" in self._sources
                           else self._sources - {JUDGE_ONLY})
                self._asked, self._sources = None, set()  # later requests: the next pass
                if scheduled and self.interval is not None:
                    self._next = self._clock() + self.interval
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
