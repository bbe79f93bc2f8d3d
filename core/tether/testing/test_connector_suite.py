"""One suite, every tracker: each connector must behave the same against its sandbox."""

from __future__ import annotations

import pytest

from tether.errors import SourceError
from tether.model import Finding, Mapping, OpKind, WriteOp
from tether.pipeline.plan import desired_annotations, plan_ops
from tether.pipeline.render import MARKER
from tether.sandbox import Fault
from tether.testing import Driver, writes

PREFIX = "tether"


def test_full_pull_uses_the_fewest_requests(driver: Driver) -> None:
    keys = driver.seed(1000)
    connector = driver.connector()
    seen: list[int] = []
    connector.progress = lambda done, total: seen.append(done)  # what draws the progress bar
    result = connector.pull(None)
    assert seen == sorted(seen) and seen[-1] == 1000
    assert len(seen) >= min(2, driver.pages(1000))  # a bar moves on every page
    assert sorted(t.key for t in result.tasks) == sorted(keys)
    assert result.complete and result.cursor
    assert len(driver.server.log) == driver.pages(1000) + driver.setup_calls, \
        [(r.method, r.path, r.query) for r in driver.server.log]


def test_incremental_pull_returns_exactly_the_edited_items(driver: Driver) -> None:
    keys = driver.seed(50)
    connector = driver.connector()
    cursor = connector.pull(None).cursor
    edited = keys[3:6]
    for key in edited:
        driver.edit(key)
    result = connector.pull(cursor)
    assert sorted(t.key for t in result.tasks) == sorted(edited)
    assert not result.complete
    assert {t.title for t in result.tasks} != {""}


def test_a_new_connector_resumes_from_the_stored_cursor(driver: Driver) -> None:
    """A cursor is all a new process has: no item is news twice, every edit is news once."""
    keys = driver.seed(50)
    cursor = driver.connector().pull(None).cursor
    quiet = driver.connector().pull(cursor)
    assert quiet.tasks == [] and not quiet.complete and quiet.cursor == cursor
    edited = keys[3:6] + keys[-1:]  # the last sits in the overlap the cursor re-reads
    for key in edited:
        driver.edit(key)
    result = driver.connector().pull(cursor)
    assert sorted(t.key for t in result.tasks) == sorted(edited)
    assert not result.complete and result.cursor != cursor
    assert driver.connector().pull(result.cursor).tasks == []


def test_an_unreadable_cursor_means_a_full_pull(driver: Driver) -> None:
    keys = driver.seed(5)
    result = driver.connector().pull('{"at": "not a time"}')
    assert result.complete and sorted(t.key for t in result.tasks) == sorted(keys)
    assert driver.connector().pull(result.cursor).tasks == []


def test_unicode_and_null_fields_normalise(driver: Driver) -> None:
    driver.seed(5)
    tasks = {t.key: t for t in driver.connector().pull(None).tasks}
    odd = tasks[driver.unicode_key]
    assert odd.title == "Ünïcødé ✓ 数据"
    assert odd.assignee is None and odd.estimate is None
    assert odd.url.startswith("http") and odd.updated is not None


def test_labels_added_and_removed_without_touching_others(driver: Driver) -> None:
    key = driver.seed(3)[1]
    connector = driver.connector()
    connector.pull(None)
    before = driver.labels(key)
    results = connector.apply([
        WriteOp("src", key, OpKind.ADD_LABEL, f"{PREFIX}:kpi:nps", "test"),
        WriteOp("src", key, OpKind.ADD_LABEL, f"{PREFIX}:untethered", "test"),
    ])
    assert all(r.ok for r in results), results
    assert driver.labels(key) >= before | {f"{PREFIX}:kpi:nps", f"{PREFIX}:untethered"}
    connector.apply([WriteOp("src", key, OpKind.REMOVE_LABEL, f"{PREFIX}:untethered", "test")])
    assert driver.labels(key) == before | {f"{PREFIX}:kpi:nps"}


def test_comment_created_then_edited_in_place(driver: Driver) -> None:
    key = driver.seed(3)[0]
    connector = driver.connector()
    tasks = connector.pull(None).tasks
    first = f"{MARKER}\nTether flagged this item: **untethered**."
    [created] = connector.apply([WriteOp("src", key, OpKind.CREATE_COMMENT, first, "test")])
    assert created.ok and created.comment_id
    task = next(t for t in tasks if t.key == key)
    shown = connector.read_annotations([task], PREFIX)[key]
    assert shown.comment_id == created.comment_id and "untethered" in (shown.comment or "")
    [edited] = connector.apply([WriteOp("src", key, OpKind.UPDATE_COMMENT,
                                        f"{MARKER}\nResolved.", "test", created.comment_id)])
    assert edited.ok
    bodies = driver.comments(key)
    assert len(bodies) == 1 and "Resolved." in bodies[0] and "untethered" not in bodies[0]


def test_second_identical_pass_writes_nothing(driver: Driver) -> None:
    driver.seed(20)
    connector = driver.connector()
    tasks = connector.pull(None).tasks
    mappings = [Mapping(t.ref, "nps", "r", 1.0, "") for t in tasks[:10]]
    findings = [Finding("untethered", "warning", t.ref, "No KPI.", "untethered", 0.0, "untethered")
                for t in tasks[10:]]

    def one_pass() -> int:
        current = connector.read_annotations(tasks, PREFIX)
        shown = {f"src:{k}": v for k, v in current.items()}
        desired = desired_annotations(tasks, mappings, findings, {}, PREFIX, True, shown)
        ops = plan_ops(tasks, desired, shown)
        results = connector.apply(ops)
        assert all(r.ok for r in results), [r.error for r in results if not r.ok]
        return len(ops)

    # A KPI label on each open served item, a signal label and a comment on each open
    # flagged one; closed items get no new writes.
    open_ = [t.status_category != "done" for t in tasks]
    assert any(not o for o in open_)
    assert one_pass() == sum(open_[:10]) + 2 * sum(open_[10:20])
    before = writes(driver)
    assert one_pass() == 0
    assert writes(driver) == before


def test_429_with_retry_after_is_retried_after_that_wait(driver: Driver) -> None:
    driver.seed(5)
    connector = driver.connector()
    after_setup = len(driver.server.log) + driver.setup_calls + 1
    driver.server.faults.add(Fault("status", at=frozenset({after_setup}), status=429,
                                   headers={"Retry-After": "7"}))
    assert len(connector.pull(None).tasks) == 5
    assert driver.retry_clock.slept == [7]


def test_5xx_is_retried_with_backoff_within_a_bound(driver: Driver) -> None:
    driver.seed(5)
    connector = driver.connector()
    driver.server.faults.add(Fault("status", at=frozenset({driver.setup_calls + 1}), status=503))
    assert len(connector.pull(None).tasks) == 5
    assert len(driver.retry_clock.slept) == 1
    driver.server.faults.add(Fault("status", rate=1.0, status=502))
    with pytest.raises(SourceError) as info:
        driver.connector().pull(None)
    assert "502" in str(info.value)
    assert sum(driver.retry_clock.slept) <= 130  # the default retry budget bounds the wait


def test_401_names_the_token_variable(driver: Driver) -> None:
    driver.seed(1)
    with pytest.raises(SourceError) as info:
        driver.connector(token="wrong").pull(None)
    message = str(info.value)
    assert "401" in message and driver.token_variable in message and "wrong" not in message


def test_missing_token_variable_is_named_before_any_request(driver: Driver) -> None:
    with pytest.raises(SourceError) as info:
        driver.connector(token=None).pull(None)
    assert driver.token_variable in str(info.value)


def test_404_names_the_missing_scope(driver: Driver) -> None:
    with pytest.raises(SourceError) as info:
        driver.missing_scope_connector().pull(None)
    assert "404" in str(info.value) and "not found" in str(info.value)


def test_a_connection_reset_is_retried(driver: Driver) -> None:
    driver.seed(5)
    connector = driver.connector()
    driver.server.faults.add(Fault("reset", at=frozenset({driver.setup_calls + 1})))
    assert len(connector.pull(None).tasks) == 5
    assert len(driver.retry_clock.slept) == 1
    assert driver.server.log[driver.setup_calls].status == 0  # the reset really happened
