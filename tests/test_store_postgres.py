"""What differs between the store's backends and must not show: key order under a language
collation, bound-parameter limits in bulk, big sums, upserts, and (on a real PostgreSQL
server) URLs with a password and without a driver name."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from tether.errors import TetherError
from tether.model import Finding, Mapping, Measurement, Task, Written
from tether.rules.tally import Share, Tally
from tether.store.db import Store

T0 = datetime(2025, 5, 5, 9, 0, tzinfo=UTC)
# Byte order ("B" < "_" < "a"); en-US would give "_x", "a", "A-1", "A1", "b", "B", ...
KEYS = ["a", "B", "b", "A-1", "A1", "_x", "é", "Z", "10", "9"]
MANY = 2_500  # rows per call: over SQLite's 999 bound parameters, in every bulk path


@pytest.fixture
def url(state_backend) -> str:
    return state_backend.new_url()


def test_keys_come_back_in_byte_order_whatever_the_databases_collation(url: str) -> None:
    with Store(url) as store:
        store.save_tasks("jira", [Task(source="jira", key=k, title=k) for k in KEYS], True)
        store.save_tasks("Jira", [Task(source="Jira", key="x", title="x")], True)
        assert [t.ref for t in store.load_tasks()] == ["Jira:x"] + [f"jira:{k}" for k in sorted(KEYS)]
        assert [t.key for t in store.load_tasks(refs=[f"jira:{k}" for k in KEYS])] == sorted(KEYS)
        store.save_mappings([Mapping(f"jira:{k}", "kpi", "r", 1.0, "label") for k in KEYS])
        assert [m.task for m in store.load_mappings()] == [f"jira:{k}" for k in sorted(KEYS)]


@contextmanager
def statements() -> Iterator[list[str]]:
    """The SQL statements sent (one per executemany) while the block runs."""
    sent: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)


def test_bulk_calls_are_batched_and_stay_under_the_bound_parameter_limits(url: str) -> None:
    tasks = [Task(source="jira", key=f"K-{i:05d}", title=f"task {i}") for i in range(MANY)]
    refs = [t.ref for t in tasks]
    with Store(url) as store:
        with statements() as sent:
            assert store.save_tasks("jira", tasks, complete=True) == MANY
            store.save_written({ref: Written("v", frozenset({"tether:x"})) for ref in refs})
        assert len(sent) < 40  # not a statement per row: upserts of ~250 rows each
        renamed = [Task(source="jira", key=t.key, title=t.title + "!") for t in tasks]
        assert store.save_tasks("jira", renamed, complete=True) == MANY  # every row updated
        assert store.save_tasks("jira", renamed, complete=True) == 0
        assert len(store.load_tasks(refs=refs)) == MANY
        store.save_written({ref: Written("w", frozenset()) for ref in refs[::2]})
        kept = store.load_written(refs)
        assert len(kept) == MANY and kept[refs[0]].labels_verdict == "w"
        assert kept[refs[1]].labels_verdict == "v"
        store.save_mappings([Mapping(ref, "kpi", "r", 1.0, "label") for ref in refs])
        assert len(store.load_mappings()) == MANY
        findings = [Finding("stale", "warning", ref, "old", "drift.stale") for ref in refs]
        assert len(store.record_findings(findings, T0).new) == MANY
        assert len(store.open_findings(subjects=refs)) == MANY
        assert len(store.record_findings([], T0 + timedelta(hours=1)).cleared) == MANY
        assert store.add_measurements([Measurement("nps", T0 + timedelta(hours=i), i)
                                       for i in range(MANY)]) == MANY
        # One task renamed back, every other one deleted.
        assert store.save_tasks("jira", tasks[:1], complete=True) == MANY


def test_kpi_sums_past_32_bits_are_exact(url: str) -> None:
    big = 5_000_000_000  # millionths: an item of 5,000 points
    with Store(url) as store:
        store.save_places(None, {"jira:A": {"k": Share(1, big, 1, 0)},
                                 "jira:B": {"k": Share(1, big + 1, 1, 1)}}, None)
        assert store.kpi_tallies() == {"k": Tally(2, 2, 2 * big + 1, 2, 1)}


def test_upserts_replace_in_place(url: str) -> None:
    with Store(url) as store:
        for n in range(3):
            store.set_cursor("jira", f"c{n}")
            store.save_memory("jira", {"n": n})
        store.save_written({"jira:A": Written("v1")})
        store.save_written({"jira:A": Written("v2"), "jira:B": Written("v1")})
        assert (store.get_cursor("jira"), store.load_memory("jira")) == ("c2", {"n": 2})
        assert {k: w.labels_verdict for k, w in store.load_written().items()} == {
            "jira:A": "v2", "jira:B": "v1"}
        store.set_cursor("jira", None)
        store.save_memory("jira", {})
        assert (store.get_cursor("jira"), store.load_memory("jira")) == (None, {})
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM written")).scalar() == 2
            assert conn.execute(sa.text("SELECT count(*) FROM cursors")).scalar() == 0
        engine.dispose()


# -- a real PostgreSQL server only ------------------------------------------------------------


def test_a_newer_team_store_is_refused_without_showing_the_password(pg_databases) -> None:
    name = pg_databases.new()
    url = pg_databases.server.url(name, password="s3cret")  # the test server trusts the socket
    Store(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE schema_version SET version = 99"))
    engine.dispose()
    with pytest.raises(TetherError, match=r"newer Tether \(schema 99\)") as err:
        Store(url)
    assert f"tether:***@/{name}?host=" in str(err.value) and "s3cret" not in str(err.value)


def test_a_server_that_cannot_be_reached_is_named_without_the_password(pg_databases,
                                                                         tmp_path) -> None:
    url = f"postgresql://tether:hunter2@/nowhere?host={tmp_path}"  # no server on that socket
    with pytest.raises(TetherError, match="cannot open state store at postgresql://tether:") as err:
        Store(url)
    assert "hunter2" not in str(err.value)


def test_a_plain_postgresql_url_uses_psycopg(pg_databases) -> None:
    url = pg_databases.new_url().replace("postgresql+psycopg://", "postgresql://")
    with Store(url) as store:
        store.save_memory("jira", {"ok": True})
        assert store.url.startswith("postgresql://")  # shown as the user wrote it
    with Store(url) as store:
        assert json.dumps(store.load_memory("jira")) == '{"ok": true}'
