"""Incremental cursors re-read an overlap but never report an unchanged item twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
