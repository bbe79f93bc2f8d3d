"""A Redis server for the tests: Debian's ``redis-server`` started here on a Unix socket in a
temporary folder (no TCP port, so none to choose), without persistence, stopped and removed at
the end of the session. Each test gets a database of its own (``redis+socket://...?db=N``),
flushed before it is handed out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from pg_server import on_ci


def unavailable() -> str | None:
    """Why no Redis can be had here, or None when one can."""
    try:
        import redis  # noqa: F401
    except ImportError:
        return "the redis client is not installed: pip install '.[workers]'"
    if shutil.which("redis-server") is None:
        return "no redis-server: apt-get install redis-server"
    return None


class RedisServer:
    """One ``redis-server`` process on a Unix socket; ``url(db)`` names one of its databases."""

    DATABASES = 16

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="tether-redis-"))
        self.socket = self.root / "redis.sock"
        self.process = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", str(self.socket),
             "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
             "--databases", str(self.DATABASES), "--dir", str(self.root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        # The server takes a few milliseconds to listen; this waits on the server, not a clock.
        for _ in range(500):
            try:
                redis.Redis(unix_socket_path=str(self.socket)).ping()
                return
            except (redis.ConnectionError, FileNotFoundError):
                if self.process.poll() is not None:
                    break
                time.sleep(0.01)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def url(self, db: int) -> str:
        return f"redis+socket://{self.socket}?virtual_host={db}"

    def client(self, db: int):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis(unix_socket_path=str(self.socket), db=db)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)


def start_or_skip() -> RedisServer:
    why = unavailable()
    if why is not None:
        if on_ci() or os.environ.get("TETHER_REQUIRE_REDIS"):
            pytest.fail(f"no test is skipped on CI for want of a server: {why}")
        pytest.skip(why)
    return RedisServer()
