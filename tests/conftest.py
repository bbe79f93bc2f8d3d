"""Shared fixtures: a private copy of an example workspace, a fixed clock, and the state
store's backends (SQLite, and PostgreSQL on a real server: see pg_server.py)."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pg_server as pg
import pytest
import redis_server

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOW = datetime(2025, 5, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def files_only(tmp_path: Path) -> Path:
    """A copy of examples/files-only that a test may sync into."""
    target = tmp_path / "files-only"
    shutil.copytree(EXAMPLES / "files-only", target)
    return target


@pytest.fixture
def clock():
    return lambda: NOW


@pytest.fixture
def fake_plugins(monkeypatch):
    """A hermetic registry (only Tether's core plugin) plus a `fake` connector type whose
    options are validated by the model given; its methods are never called."""
    import tether
    from tether.connector import Connector, Options
    from tether.plugins import LOAD_ENV, Plugins

    def make(options_model: type[Options] = Options) -> Plugins:
        def never(self, *args):
            raise AssertionError("the fake connector only carries options")

        fake = type("FakeConnector", (Connector,), {
            "type_name": "fake", "options_model": options_model,
            "pull": never, "read_annotations": never, "apply": never})

        class FakePlugin:
            @tether.hookimpl
            def tether_connector_types(self):
                return {"fake": fake}

        monkeypatch.setenv(LOAD_ENV, "core")
        registry = Plugins()
        registry.register(FakePlugin(), name="fakeplug")
        return registry

    return make


# -- the state store's backends ----------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pg.Server]:
    """A PostgreSQL server for the session: TETHER_TEST_DATABASE_URL's, else a throwaway
    cluster. Without either the test skips, except on CI (CI=true), where it fails."""
    why = pg.unavailable()
    if why is not None:
        if pg.on_ci():
            pytest.fail(f"no test is skipped on CI for want of a server: {why}")
        pytest.skip(why)
    url = os.environ.get(pg.ENV_URL)
    cluster = None
    if not url:
        binaries = pg.bin_dir()
        assert binaries is not None  # unavailable() said so
        cluster = pg.Cluster(binaries)
        try:
            url = cluster.start()
        except BaseException:
            cluster.stop()
            raise
    try:
        server = pg.Server(url)
        yield server
        server.close()
    finally:
        if cluster is not None:
            cluster.stop()


@pytest.fixture
def pg_databases(pg_server: pg.Server) -> Iterator[pg.Databases]:
    """This test's PostgreSQL databases: ``new()`` makes one; all are dropped after it."""
    databases = pg.Databases(pg_server)
    yield databases
    databases.drop_all()


# -- Redis (the workers' broker and shared rate limits) -----------------------------------------


@pytest.fixture(scope="session")
def redis_srv() -> Iterator[redis_server.RedisServer]:
    """Debian's redis-server for the session, on a Unix socket. Without it the test skips,
    except on CI (CI=true), where it fails."""
    server = redis_server.start_or_skip()
    yield server
    server.stop()


_redis_dbs = itertools.count()


@pytest.fixture
def redis_db(redis_srv: redis_server.RedisServer) -> tuple[str, Any]:
    """An empty Redis database of its own for this test: (its URL, a client of it)."""
    db = next(_redis_dbs) % redis_server.RedisServer.DATABASES
    client = redis_srv.client(db)
    client.flushdb()
    return redis_srv.url(db), client


@dataclass(frozen=True)
class StateBackend:
    """Where a test's state stores live: ``new_url()`` is the URL of a new, empty one."""

    name: str  # "sqlite" | "postgresql"
    new_url: Callable[[], str]


@pytest.fixture(params=["sqlite", "postgresql"])
def state_backend(request: pytest.FixtureRequest, tmp_path: Path) -> StateBackend:
    """Each backend the state store runs on, in turn (PostgreSQL only when asked for)."""
    if request.param == "postgresql":
        return StateBackend("postgresql", request.getfixturevalue("pg_databases").new_url)
    numbers = itertools.count(1)
    return StateBackend("sqlite", lambda: f"sqlite:///{tmp_path / f'state-{next(numbers)}.db'}")


@pytest.fixture
def routed_state(request: pytest.FixtureRequest, state_backend: StateBackend,
                 monkeypatch: pytest.MonkeyPatch) -> str:
    """The test runs once per backend: on PostgreSQL, every SQLite file store it opens (a
    workspace's ``.tether/state.db`` too) is a PostgreSQL database instead (pg.Router)."""
    if state_backend.name == "postgresql":
        pg.Router(request.getfixturevalue("pg_databases")).install(monkeypatch)
    return state_backend.name
