"""A second process for the run lock tests: opens the store at $TETHER_LOCK_URL, takes the run
lock named on the command line (recording a fixed ``since``), prints "held", and keeps it
until a line arrives on stdin (or until it is killed)."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime

from tether.store.db import Store

SINCE = datetime(2025, 5, 5, 9, 0, tzinfo=UTC)

if __name__ == "__main__":
    with Store(os.environ["TETHER_LOCK_URL"]) as store, \
            store.run_lock(sys.argv[1], wait=True, clock=lambda: SINCE):
        print("held", flush=True)
        sys.stdin.readline()
