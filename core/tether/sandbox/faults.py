"""Faults a sandbox injects on demand: latency, error statuses with headers, resets."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Fault:
    """What to do instead of (or before) answering a request.

    ``kind`` is "latency" (wait ``seconds``, then answer normally), "status" (answer
    ``status`` with ``headers`` and ``body`` instead) or "reset" (drop the connection).
    It applies to the requests numbered in ``at`` (1-based, counting every request the
    server receives), or to each request with probability ``rate``; ``path`` restricts it
    to paths starting with that prefix.
    """

    kind: str
    at: frozenset[int] = frozenset()
    rate: float = 0.0
    seconds: float = 0.0
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict, hash=False)
    body: object = None
    path: str = ""


class FaultPlan:
    """The faults in force; thread-safe, deterministic for a given seed."""

    def __init__(self, seed: int = 0):
        self._faults: list[Fault] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pick(self, number: int, path: str) -> list[Fault]:
        """The faults that apply to request ``number`` on ``path`` (latency first)."""
        with self._lock:
            chosen = [f for f in self._faults if path.startswith(f.path) and
                      (number in f.at or (f.rate and self._rng.random() < f.rate))]
        return sorted(chosen, key=lambda f: f.kind != "latency")
