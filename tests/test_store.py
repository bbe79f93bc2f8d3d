"""The state store keeps everything across a close and reopen, on a SQLite file and on
PostgreSQL (each test that takes ``url`` runs on both)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy
from tether.errors import TetherError
from tether.model import (
    Finding,
    Link,
    Mapping,
    Measurement,
    OpKind,
    OpResult,
    Task,
    WriteOp,
)
from tether.store.db import Store
from tether.store.tables import SCHEMA_VERSION

T0 = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


@pytest.fixture
def url(state_backend) -> str:
    return state_backend.new_url()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


def full_task(key: str = "PROJ-1", title: str = "Ship onboarding") -> Task:
    return Task(
        source="jira", key=key, title=title, url=f"https://x/browse/{key}", body="Body *text*",
        type="Story", status="In Progress", status_category="in_progress", assignee="ana",
        project="PROJ", labels=("tether:kpi-activation", "ux"), components=("web",),
        parent="PROJ-0", epic="PROJ-E", links=(Link("blocks", "PROJ-2"), Link("relates", "X")),
        estimate=5.0, created=at(-48), updated=at(-1),
        resolved=datetime(2024, 5, 1, 12, tzinfo=timezone(timedelta(hours=2))),
        custom={"story_points": 5, "team": {"name": "growth"}, "tags": ["a", "b"]},
    )


def test_tasks_round_trip_with_every_field(url: str) -> None:
    tasks = [full_task("PROJ-1"), full_task("PROJ-2", "Other")]
    gh = Task(source="gh", key="42", title="Issue")
    with Store(url) as store:
        assert store.save_tasks("jira", tasks, complete=True) == 2
        store.save_tasks("gh", [gh], complete=True)
    with Store(url) as store:
        loaded = store.load_tasks()
        assert loaded == [gh, *tasks]  # sorted by (source, key)
        assert loaded[1].custom == tasks[0].custom  # custom is not part of Task equality
        assert loaded[1].resolved == datetime(2024, 5, 1, 10, tzinfo=UTC)
        assert store.load_tasks("gh") == [gh]


def test_save_tasks_complete_removes_vanished_tasks_partial_keeps_them(url: str) -> None:
    a, b, c = full_task("A"), full_task("B"), full_task("C")
    with Store(url) as store:
        store.save_tasks("jira", [a, b, c], complete=True)
        store.save_tasks("gh", [Task(source="gh", key="1", title="t")], complete=True)
        assert store.save_tasks("jira", [a], complete=False) == 0
        assert [t.key for t in store.load_tasks("jira")] == ["A", "B", "C"]
        assert store.save_tasks("jira", [a], complete=True) == 2
    with Store(url) as store:
        assert [t.ref for t in store.load_tasks()] == ["gh:1", "jira:A"]


def test_unchanged_tasks_are_not_rewritten(url: str) -> None:
    with Store(url) as store:
        assert store.save_tasks("jira", [full_task("A"), full_task("B")], complete=True) == 2
    with Store(url) as store:
        assert store.save_tasks("jira", [full_task("A"), full_task("B")], complete=True) == 0
        assert store.save_tasks("jira", [full_task("A", "Renamed"), full_task("B")], True) == 1
        assert store.load_tasks("jira")[0].title == "Renamed"


def test_save_tasks_refuses_a_task_of_another_source(url: str) -> None:
    with Store(url) as store, pytest.raises(ValueError, match="gh:1"):
        store.save_tasks("jira", [Task(source="gh", key="1", title="t")], complete=False)


def test_cursors_round_trip_and_clear(url: str) -> None:
    with Store(url) as store:
        store.set_cursor("jira", "2024-05-01T09:30")
        store.set_cursor("gh", "etag-1")
        store.set_cursor("gh", "etag-2")
    with Store(url) as store:
        assert store.get_cursor("jira") == "2024-05-01T09:30"
        assert store.get_cursor("gh") == "etag-2"
        assert store.get_cursor("asana") is None
        store.set_cursor("jira", None)
    with Store(url) as store:
        assert store.get_cursor("jira") is None


def test_a_connectors_memory_survives_a_reopen_per_source(url: str) -> None:
    with Store(url) as store:
        store.save_memory("gh", {"etag": 'W/"1"', "comments": {"7": [2, "abc"]}})
        store.save_memory("asana", {"sync": "t1"})
        store.save_memory("asana", {"sync": "t2"})
    with Store(url) as store:
        assert store.load_memory("gh") == {"etag": 'W/"1"', "comments": {"7": [2, "abc"]}}
        assert store.load_memory("asana") == {"sync": "t2"}
        assert store.load_memory("jira") == {}
        store.save_memory("gh", {})
        assert store.load_memory("gh") == {}


def test_mappings_replace_the_previous_set(url: str) -> None:
    first = [Mapping("jira:B", "kpi-a", "r1", 0.5, "label"),
             Mapping("jira:A", "kpi-b", "r2", 1.0, "epic")]
    with Store(url) as store:
        store.save_mappings(first)
    with Store(url) as store:
        assert store.load_mappings() == sorted(first, key=lambda m: (m.task, m.kpi))
        store.save_mappings([Mapping("jira:C", "kpi-a", "r1", 1.0, "epic")])
    with Store(url) as store:
        assert store.load_mappings() == [Mapping("jira:C", "kpi-a", "r1", 1.0, "epic")]
        store.save_mappings([])
        assert store.load_mappings() == []


def test_measurements_dedupe_on_kpi_and_time(url: str) -> None:
    with Store(url) as store:
        assert store.add_measurements([Measurement("nps", at(1), 30), Measurement("nps", at(0), 28),
                                       Measurement("arr", at(0), 1e6)]) == 3
    plus_two = timezone(timedelta(hours=2))
    with Store(url) as store:
        # Same instant written in another zone, and an exact repeat, are not new.
        again = [Measurement("nps", at(0).astimezone(plus_two), 99), Measurement("arr", at(0), 1e6),
                 Measurement("nps", at(2), 31), Measurement("nps", at(2), 31)]
        assert store.add_measurements(again) == 1
        assert store.add_measurements([]) == 0
    with Store(url) as store:
        assert store.measurements() == [
            Measurement("arr", at(0), 1e6), Measurement("nps", at(0), 28),
            Measurement("nps", at(1), 30), Measurement("nps", at(2), 31)]
        assert [m.value for m in store.measurements("nps")] == [28, 30, 31]
        assert store.measurements("nps")[0].at.tzinfo == UTC


def test_findings_lifecycle_new_ongoing_cleared_reappears(url: str) -> None:
    stale = Finding("stale", "warning", "jira:A", "no update in 30 days", "drift.stale", 100.0)
    orphan = Finding("orphan", "critical", "jira:B", "no KPI", "drift.orphan")
    with Store(url) as store:
        changes = store.record_findings([stale, orphan], at(0))
        assert (changes.new, changes.ongoing, changes.cleared) == ([stale, orphan], [], [])
    worse = Finding("stale", "critical", "jira:A", "no update in 60 days", "drift.stale", 250.0)
    with Store(url) as store:
        changes = store.record_findings([worse], at(1))
        assert (changes.new, changes.ongoing) == ([], [worse])
        assert [(c.subject, c.cleared_at) for c in changes.cleared] == [("jira:B", at(1))]
    with Store(url) as store:
        [only] = store.open_findings()
        assert (only.subject, only.severity, only.reason, only.value_at_risk) == (
            "jira:A", "critical", "no update in 60 days", 250.0)
        assert (only.first_seen, only.last_seen, only.cleared_at) == (at(0), at(1), None)
        changes = store.record_findings([worse, orphan], at(2))
        assert (changes.new, changes.ongoing, changes.cleared) == ([orphan], [worse], [])
    with Store(url) as store:
        history = store.finding_history("jira:B")
        assert [(h.first_seen, h.last_seen, h.cleared_at) for h in history] == [
            (at(0), at(0), at(1)), (at(2), at(2), None)]
        assert history[0].severity == "critical"  # the enum is stored as its plain value
        assert [f.subject for f in store.open_findings()] == ["jira:A", "jira:B"]
        assert store.record_findings([], at(3)).cleared[0].first_seen == at(0)
        assert store.open_findings() == []


def test_ledger_keeps_a_pending_entry_when_a_write_never_ended(url: str) -> None:
    label = WriteOp("jira", "A", OpKind.ADD_LABEL, "tether:stale", "stale")
    comment = WriteOp("jira", "A", OpKind.CREATE_COMMENT, "Tether says hi", "mapped")
    crashed = WriteOp("jira", "B", OpKind.REMOVE_LABEL, "tether:orphan", "mapped now")
    with Store(url) as store:
        e1 = store.ledger_begin(7, label, at(0))
        e2 = store.ledger_begin(7, comment, at(0))
        e3 = store.ledger_begin(7, crashed, at(1))
        store.ledger_end(e1, OpResult(label, ok=True), at(0.5))
        store.ledger_end(e2, OpResult(comment, ok=False, error="403 Forbidden"), at(0.5))
    with Store(url) as store:
        [pending] = store.ledger_pending()
        assert (pending.id, pending.key, pending.kind, pending.status) == (
            e3, "B", "remove_label", "pending")
        assert (pending.started, pending.finished) == (at(1), None)
        history = store.ledger_for("jira:A")
        assert [(e.kind, e.status, e.error, e.finished) for e in history] == [
            ("add_label", "done", None, at(0.5)),
            ("create_comment", "failed", "403 Forbidden", at(0.5))]
        assert {e.run_id for e in history} == {7}
        store.ledger_end(e3, OpResult(crashed, ok=True), at(2))
        assert store.ledger_pending() == []


def test_ledger_end_stores_the_comment_id_the_tracker_returned(url: str) -> None:
    create = WriteOp("gh", "9", OpKind.CREATE_COMMENT, "body", "r")
    update = WriteOp("gh", "9", OpKind.UPDATE_COMMENT, "body 2", "r", comment_id="c-1")
    with Store(url) as store:
        store.ledger_end(store.ledger_begin(1, create, at(0)),
                         OpResult(create, ok=True, comment_id="c-1"), at(0))
        store.ledger_end(store.ledger_begin(2, update, at(1)), OpResult(update, ok=True), at(1))
        with pytest.raises(ValueError, match="no ledger entry 999"):
            store.ledger_end(999, OpResult(update, ok=True), at(1))
    with Store(url) as store:
        assert [e.comment_id for e in store.ledger_for("gh:9")] == ["c-1", "c-1"]
        assert store.ledger_for("gh:10") == []


def test_runs_newest_first_with_packs_and_counts(url: str) -> None:
    packs = {"core": "abc123def456", "team": "0123456789ab"}
    with Store(url) as store:
        first = store.start_run("dry-run", packs, at(0))
        store.finish_run(first, "ok", {"tasks": 12, "findings": 3}, at(0.1))
        second = store.start_run("apply", {"core": "abc123def456"}, at(1))
        store.finish_run(second, "failed", {"tasks": 12}, at(1.1))
        third = store.start_run("apply", {}, at(2))
    with Store(url) as store:
        runs = store.runs()
        assert [r.id for r in runs] == [third, second, first]
        assert (runs[0].status, runs[0].finished, runs[0].counts) == ("running", None, {})
        assert (runs[1].mode, runs[1].status, runs[1].finished) == ("apply", "failed", at(1.1))
        assert (runs[2].packs, runs[2].counts, runs[2].started) == (
            packs, {"tasks": 12, "findings": 3}, at(0))
        assert [r.id for r in store.runs(limit=2)] == [third, second]
        with pytest.raises(ValueError, match="run status"):
            store.finish_run(third, "done", {}, at(3))


def test_a_newer_schema_is_refused_with_a_clear_message(url: str) -> None:
    Store(url).close()
    db = sqlalchemy.create_engine(url)
    with db.begin() as conn:
        conn.execute(sqlalchemy.text("UPDATE schema_version SET version = 99"))
    with pytest.raises(TetherError) as err:
        Store(url)
    shown = sqlalchemy.make_url(url).render_as_string(hide_password=True)
    assert str(err.value) == (f"state store at {shown} was written by a newer Tether "
                              "(schema 99); upgrade tether")
    with db.begin() as conn:  # refused before touching anything
        assert conn.execute(sqlalchemy.text("SELECT version FROM schema_version")).all() == [(99,)]
    db.dispose()


def test_a_newer_team_store_is_refused_without_showing_the_password(
        sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = sqlite_url
    Store(url).close()
    with sqlite3.connect(tmp_path / "state.db") as db:
        db.execute(f"UPDATE schema_version SET version = {SCHEMA_VERSION + 1}")
    # SQLite URLs cannot carry a password: stand the file in for a PostgreSQL server.
    real = sqlalchemy.create_engine
    monkeypatch.setattr(sqlalchemy, "create_engine", lambda _url, **kw: real(url, **kw))
    with pytest.raises(TetherError, match=rf"newer Tether \(schema {SCHEMA_VERSION + 1}\)") as err:
        Store("postgresql://tether:s3cret@db.example:5432/tether")
    assert "postgresql://tether:***@db.example:5432/tether" in str(err.value)
    assert "s3cret" not in str(err.value)


def test_an_unreachable_store_names_it_without_the_password() -> None:
    with pytest.raises(TetherError, match="cannot open state store") as err:
        Store("postgresql://tether:hunter2@127.0.0.1:1/tether")
    assert "hunter2" not in str(err.value)


def test_the_parent_folder_of_a_sqlite_file_is_created(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "state.db"
    with Store(f"sqlite:///{path}") as store:
        store.set_cursor("jira", "c")
    assert path.is_file()
    with Store(f"sqlite:///{path}") as store:
        assert store.get_cursor("jira") == "c"


def test_in_memory_store_keeps_state_within_one_store() -> None:
    with Store("sqlite://") as store:
        store.set_cursor("jira", "c")
        assert store.get_cursor("jira") == "c"
