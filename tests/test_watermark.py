"""Incremental cursors re-read an overlap but never report an unchanged item twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from tether.model import Task
from tether.watermark import OVERLAP, Watermark

T0 = datetime(2025, 5, 5, 9, 0, tzinfo=UTC)


def task(key: str, minutes: float) -> Task:
    return Task("s", key, key, updated=T0 + timedelta(minutes=minutes))


def test_overlap_repeats_are_dropped_but_real_changes_kept() -> None:
    first = [task("A", -30), task("B", -1), task("C", 0)]
    mark = Watermark.parse(Watermark().advance(first).encode())  # through storage
    assert mark.at == T0 and mark.since() == T0 - OVERLAP
    assert set(mark.seen) == {"B", "C"}  # A is older than the overlap: forgotten
    again = [task("B", -1), task("C", 0), task("D", 0), task("C2", 1)]
    assert [t.key for t in again if mark.is_new(t)] == ["D", "C2"]
    edited = task("B", 5)
    assert mark.is_new(edited)
    assert mark.advance(again + [edited]).at == T0 + timedelta(minutes=5)


def test_nothing_pulled_keeps_the_mark() -> None:
    mark = Watermark().advance([task("A", 0)])
    assert mark.advance([]) == mark
    assert Watermark().encode() is None and Watermark.parse(None) == Watermark()


def test_a_bare_timestamp_cursor_is_understood() -> None:
    assert Watermark.parse(T0.isoformat()).at == T0


def test_an_unreadable_cursor_is_a_value_error_and_resumes_as_a_full_pull() -> None:
    for bad in ("etag-1", "{", '{"seen": {}}', '{"at": "soon"}', '{"at": null}',
                '{"at": "2025-05-05T09:00:00Z", "seen": {"A": "later"}}', '{"at": 1, "seen": 2}'):
        with pytest.raises(ValueError, match="not a Tether cursor"):
            Watermark.parse(bad)
        assert Watermark.resume(bad) == Watermark()
    good = Watermark().advance([task("A", 0)])
    assert Watermark.resume(good.encode()) == good


def test_the_same_instant_in_another_offset_is_not_news() -> None:
    mark = Watermark().advance([task("A", 0)])
    berlin = T0.astimezone(timezone(timedelta(hours=2)))
    assert not mark.is_new(Task("s", "A", "A", updated=berlin))


def test_items_from_before_the_overlap_are_not_news() -> None:
    """A coarse filter (Jira floors to the minute) returns items older than since()."""
    mark = Watermark().advance([task("A", -2.5), task("B", 0)])
    assert set(mark.seen) == {"B"}  # A is older than the overlap: forgotten
    assert not mark.is_new(task("A", -2.5)) and mark.is_new(task("A", -1.5))
    assert Watermark().is_new(task("A", -60))  # a full pull: everything is news
