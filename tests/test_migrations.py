"""Migrations: a store written by an older Tether (before Alembic: ``schema_version`` only) is
adopted at its number and upgraded, keeping its ledger, cursors, memory and write records;
a new store is exactly the schema the code declares. On SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from tether.errors import TetherError
from tether.model import OpKind, WriteOp, Written
from tether.store import tables
from tether.store.db import Store
from tether.store.migrate import HEAD, MIGRATIONS

T0 = datetime(2024, 11, 20, 9, 30, tzinfo=UTC)
LATER = WriteOp("jira", "OPS-9", OpKind.REMOVE_LABEL, "tether:untethered", "mapped now")


@pytest.fixture
def url(state_backend) -> str:
    return state_backend.new_url()


def legacy_schema(version: int) -> sa.MetaData:
    """The tables Tether made with create_all at schema ``version`` (1, 2, 4, 5 or 6), as its
    code declared them then."""
    meta = sa.MetaData()
    name, when = sa.String(255), sa.DateTime(timezone=True)
    sa.Table("schema_version", meta, sa.Column("version", sa.Integer, nullable=False))
    sa.Table("cursors", meta, sa.Column("source", name, primary_key=True),
             sa.Column("cursor", sa.Text, nullable=False))
    sa.Table("tasks", meta, sa.Column("source", name, primary_key=True),
             sa.Column("key", name, primary_key=True), sa.Column("data", sa.Text, nullable=False),
             sa.Column("hash", sa.String(64), nullable=False))
    sa.Table("mappings", meta, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("task", sa.String(512), nullable=False),
             sa.Column("kpi", name, nullable=False), sa.Column("rule_id", name, nullable=False),
             sa.Column("weight", sa.Float, nullable=False),
             sa.Column("reason", sa.Text, nullable=False))
    sa.Table("measurements", meta, sa.Column("kpi", name, nullable=False),
             sa.Column("at", when, nullable=False), sa.Column("value", sa.Float, nullable=False),
             sa.UniqueConstraint("kpi", "at", name="uq_measurement"))
    sa.Table("findings", meta, sa.Column("id", sa.Integer, primary_key=True),
             *(sa.Column(c, name, nullable=False) for c in ("signal", "subject", "rule_id")),
             sa.Column("severity", sa.String(32), nullable=False),
             sa.Column("reason", sa.Text, nullable=False),
             sa.Column("value_at_risk", sa.Float, nullable=False),
             sa.Column("first_seen", when, nullable=False),
             sa.Column("last_seen", when, nullable=False),
             sa.Column("cleared_at", when, nullable=True),
             sa.Index("ix_findings_subject", "subject"))
    sa.Table("ledger", meta, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("run_id", sa.Integer, nullable=False),
             sa.Column("source", name, nullable=False), sa.Column("key", name, nullable=False),
             sa.Column("kind", sa.String(32), nullable=False),
             sa.Column("value", sa.Text, nullable=False),
             sa.Column("comment_id", name, nullable=True),
             sa.Column("status", sa.String(16), nullable=False),
             sa.Column("error", sa.Text, nullable=True),
             sa.Column("started", when, nullable=False),
             sa.Column("finished", when, nullable=True),
             sa.Index("ix_ledger_task", "source", "key"))
    sa.Table("runs", meta, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("mode", sa.String(32), nullable=False),
             sa.Column("started", when, nullable=False),
             sa.Column("finished", when, nullable=True),
             sa.Column("status", sa.String(16), nullable=False),
             sa.Column("packs", sa.Text, nullable=False),
             sa.Column("counts", sa.Text, nullable=False))
    if version >= 2:
        sa.Table("written", meta, sa.Column("task", sa.String(512), primary_key=True),
                 sa.Column("data", sa.Text, nullable=False))
    if version >= 4:
        sa.Table("connector_memory", meta, sa.Column("source", name, primary_key=True),
                 sa.Column("data", sa.Text, nullable=False))
        sa.Table("matches", meta, sa.Column("stage", sa.String(32), primary_key=True),
                 sa.Column("task", sa.String(512), primary_key=True),
                 sa.Column("hash", sa.String(64), nullable=False),
                 sa.Column("rules", sa.Text, nullable=False))
        sa.Table("match_books", meta, sa.Column("stage", sa.String(32), primary_key=True),
                 sa.Column("book", sa.String(64), nullable=False))
    if version >= 5:
        sa.Table("judged", meta, sa.Column("task", sa.String(512), primary_key=True),
                 sa.Column("row", sa.String(64), nullable=False),
                 sa.Column("age_tick", sa.Integer, nullable=True, index=True),
                 sa.Column("idle_tick", sa.Integer, nullable=True, index=True),
                 sa.Column("joins", sa.Text, nullable=True),
                 sa.Column("findings", sa.Text, nullable=True))
        sa.Table("judgement", meta, sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("data", sa.Text, nullable=False))
    if version >= 6:
        sa.Table("judged_keys", meta, sa.Column("task", sa.String(512), primary_key=True),
                 sa.Column("key", sa.String(1024), primary_key=True, index=True))
        sa.Table("judged_kpis", meta, sa.Column("task", sa.String(512), primary_key=True),
                 sa.Column("kpi", name, primary_key=True),
                 sa.Column("open", sa.Integer, nullable=False),
                 sa.Column("effort", sa.BigInteger, nullable=False),
                 sa.Column("in_window", sa.Integer, nullable=False),
                 sa.Column("done_in_window", sa.Integer, nullable=False))
    return meta


COLLATIONS = ("SELECT DISTINCT collation_name FROM information_schema.columns WHERE table_name "
              "IN ('tasks', 'ledger', 'written') AND column_name IN ('source', 'key', 'task')")
WRITTEN = {"labels_verdict": "v1", "labels": ["tether:untethered"], "comment_verdict": "v1",
           "comment_id": "c-7", "comment_gone": False, "held": [], "unmasked": False,
           "own_updated": None, "activity": "2024-11-20T09:30:00+00:00"}


def write_legacy_store(url: str, version: int) -> None:
    """A store as a Tether of schema ``version`` left it, after a sync that crashed mid-write."""
    meta = legacy_schema(version)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        meta.create_all(conn)
        t = meta.tables
        conn.execute(t["schema_version"].insert().values(version=version))
        conn.execute(t["cursors"].insert().values(source="jira", cursor="2024-11-20T09:00"))
        # No ids given: old Tethers let the database number rows (a sequence on PostgreSQL).
        conn.execute(t["runs"].insert().values(mode="sync", started=T0, status="running",
                                               packs='{"drift": "abc"}', counts="{}"))
        conn.execute(t["ledger"].insert(), [
            {"run_id": 1, "source": "jira", "key": "OPS-9", "kind": "add_label",
             "value": "tether:untethered", "comment_id": None, "status": "done", "error": None,
             "started": T0, "finished": T0},
            {"run_id": 1, "source": "jira", "key": "OPS-9", "kind": "create_comment",
             "value": "<!-- tether:comment -->", "comment_id": None, "status": "pending",
             "error": None, "started": T0, "finished": None}])
        if version >= 2:
            conn.execute(t["written"].insert().values(task="jira:OPS-9", data=json.dumps(WRITTEN)))
        if version >= 4:
            conn.execute(t["connector_memory"].insert().values(
                source="github", data=json.dumps({"etag": 'W/"1"'})))
    engine.dispose()


@pytest.mark.parametrize("version", [1, 2, 6])
def test_a_store_from_before_alembic_is_upgraded_and_keeps_its_history(
        url: str, version: int) -> None:
    write_legacy_store(url, version)
    with Store(url) as store:
        history = store.ledger_for("jira:OPS-9")
        assert [(e.id, e.run_id, e.kind, e.status, e.started, e.finished) for e in history] == [
            (1, 1, "add_label", "done", T0, T0), (2, 1, "create_comment", "pending", T0, None)]
        assert [e.id for e in store.ledger_pending()] == [2]
        assert store.get_cursor("jira") == "2024-11-20T09:00"
        assert [(r.id, r.status, r.packs) for r in store.runs()] == [(1, "running", {"drift": "abc"})]
        written = store.load_written()
        assert written == ({"jira:OPS-9": Written("v1", frozenset({"tether:untethered"}), "v1",
                                                  "c-7", False, frozenset(), False, None, T0)}
                           if version >= 2 else {})
        assert store.load_memory("github") == ({"etag": 'W/"1"'} if version >= 4 else {})
        # The tables of later schemas are there and work.
        store.save_memory("asana", {"sync": "t1"})
        store.save_matches("map", "book", {"jira:OPS-9": ("h", ("r1",))}, keep=None)
        store.save_judgement({"as_of": "2024-11-20"})
        with store.run_lock("sync", wait=False):
            pass
        assert store.ledger_begin(2, LATER, T0) == 3  # the ledger's ids go on from the old rows
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert set(sa.inspect(conn).get_table_names()) == set(tables.meta.tables) | {"alembic_version"}
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [(HEAD,)]
        assert conn.execute(sa.text("SELECT version FROM schema_version")).all() == [
            (tables.SCHEMA_VERSION,)]  # what Tethers before Alembic check
        if conn.dialect.name == "postgresql":  # the old key columns now sort byte by byte
            assert conn.execute(sa.text(COLLATIONS)).all() == [("C",)]
    engine.dispose()
    with Store(url) as store:  # opening it again changes nothing
        assert len(store.ledger_for("jira:OPS-9")) == 3


def test_a_new_store_is_the_schema_the_code_declares(url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    Store(url).close()
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, tables.meta) == []
        if conn.dialect.name == "postgresql":  # keys sort byte by byte, as on SQLite
            assert conn.execute(sa.text(COLLATIONS)).all() == [("C",)]
    engine.dispose()


def test_the_revisions_are_numbered_up_to_the_schema_version() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS))
    assert script.get_heads() == [HEAD] == [f"{tables.SCHEMA_VERSION:04d}"]
    chain = [rev.revision for rev in script.walk_revisions()]
    assert chain == [f"{n:04d}" for n in range(tables.SCHEMA_VERSION, 0, -1)]


def test_a_store_a_newer_tether_migrated_is_refused_untouched(url: str) -> None:
    Store(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099'"))
    with pytest.raises(TetherError, match=r"written by a newer Tether \(schema 99\); upgrade"):
        Store(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [("0099",)]
    engine.dispose()


def test_tethers_opening_one_new_store_at_once_take_turns(url: str) -> None:
    opened: list[str] = []
    failed: list[BaseException] = []
    start = threading.Barrier(4, timeout=60)

    def open_store() -> None:
        try:
            start.wait()
            with Store(url) as store:
                opened.append(store.url)
        except BaseException as exc:
            failed.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failed == [] and len(opened) == 4


def test_webhook_secrets_schema_7_kept_in_connector_memory_move_to_their_table(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    engine = sa.create_engine(url)
    with engine.begin() as conn:  # a store as Tether left it at schema 7
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, "0007")
        memory = sa.table("connector_memory", sa.column("source"), sa.column("data"))
        conn.execute(memory.insert(), [
            {"source": "hooks:asana", "data": json.dumps({"1200": "s-1200", "1300": "s-1300"})},
            {"source": "asana", "data": json.dumps({"sync": "t1"})}])
    engine.dispose()
    with Store(url) as store:
        assert (store.hook_secret("asana", "1200"), store.hook_secret("asana", "1300"),
                store.hook_secret("github", "1200")) == ("s-1200", "s-1300", None)
        assert store.load_memory("hooks:asana") == {}
        assert store.load_memory("asana") == {"sync": "t1"}
