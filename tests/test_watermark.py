"""Incremental cursors re-read an overlap but never report an unchanged item twice."""

from __future__ import annotations

import json
import random
from collections import Counter
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


# -- the last pull's time (the tracker's clock) ------------------------------------------------

P = T0 + timedelta(hours=3)  # when the tracker says the pull ran: long after the newest stamp


def test_the_next_pull_starts_from_the_last_pulls_time_not_the_newest_stamp() -> None:
    """A burst (Tether's own first sync) stamped at T0 is not re-listed hours later."""
    burst = [task(f"K{i}", 0) for i in range(300)]
    listed = Watermark().advance(burst, pulled_at=T0 + timedelta(seconds=5))
    assert listed.since() == T0 + timedelta(seconds=5) - OVERLAP and len(listed.seen) == 300
    again = Watermark.parse(listed.advance(burst, pulled_at=P).encode())  # hours later
    assert again.at == T0 and again.pulled_at == P and again.seen == {}
    assert again.since() == P - OVERLAP
    assert not any(again.is_new(t) for t in burst)  # a coarse filter may still return them


def test_a_change_landing_in_the_overlap_after_the_pull_is_reported_once() -> None:
    mark = Watermark().advance([task("A", 0)], pulled_at=P)
    change = Task("s", "B", "B", updated=P + timedelta(seconds=30))  # after the pull ran
    assert change.updated is not None and change.updated >= (mark.since() or P)
    assert mark.is_new(change)
    after = mark.advance([change], pulled_at=P + timedelta(minutes=1))
    assert not after.is_new(change)  # listed again by the overlap: not news twice
    assert not after.advance([change], pulled_at=P + timedelta(minutes=3)).is_new(change)


def test_a_change_visible_late_is_not_missed() -> None:
    """Stamped 90 s before the pull ran, searchable only after it: the next pull's overlap
    reaches back to it, and the mark never saw it."""
    mark = Watermark().advance([task("A", 0)], pulled_at=P)
    late = Task("s", "B", "B", updated=P - timedelta(seconds=90))
    assert late.updated is not None and late.updated >= (mark.since() or P)
    assert mark.is_new(late)


def test_a_tracker_clock_ahead_of_or_behind_the_newest_stamp() -> None:
    ahead = Watermark().advance([task("A", -1), task("B", 0)], pulled_at=P)
    assert ahead.since() == P - OVERLAP and ahead.seen == {}
    assert not ahead.is_new(task("B", 0)) and not ahead.is_new(task("B", 1))  # seen by then
    assert ahead.is_new(task("B", 179))  # stamped a minute before the pull: maybe not seen
    behind = Watermark().advance([task("A", -1), task("B", 0)], pulled_at=T0 - timedelta(hours=1))
    assert behind.since() == T0 - OVERLAP and set(behind.seen) == {"A", "B"}  # as without it


def test_a_quiet_pull_returns_the_cursor_it_was_given() -> None:
    mark = Watermark().advance([task("A", 0)], pulled_at=P)
    later = P + timedelta(hours=1)
    assert mark.advance([], pulled_at=later) == mark  # nothing the new time would skip
    assert mark.advance([], pulled_at=P - timedelta(seconds=1)) == mark  # an earlier reading
    assert mark.advance([], pulled_at=None) == mark
    # Items in the overlap: the new time is kept where it lets the next pull skip them.
    near = Watermark().advance([task("A", 0)], pulled_at=T0 + timedelta(seconds=1))
    assert near.advance([task("A", 0)], pulled_at=later).pulled_at == later
    assert near.advance([task("A", 0)], pulled_at=T0 + timedelta(seconds=2)) == near


def test_cursors_without_the_pull_time_still_work_and_gain_it() -> None:
    old = json.dumps({"at": T0.isoformat(), "seen": {"A": T0.isoformat()}})
    for cursor in (old, T0.isoformat()):
        mark = Watermark.parse(cursor)
        assert mark.pulled_at is None and mark.since() == T0 - OVERLAP  # as before
        assert not mark.is_new(task("A", -2.5))
        upgraded = Watermark.parse(mark.advance([], pulled_at=P).encode())
        assert upgraded.pulled_at == P and upgraded.since() == P - OVERLAP
    assert Watermark.parse(json.dumps({"at": T0.isoformat(), "seen": {}, "pulled_at": None})
                           ).pulled_at is None
    for bad in ('{"at": "2025-05-05T09:00:00Z", "pulled_at": "soon"}',
                '{"at": "2025-05-05T09:00:00Z", "pulled_at": ""}'):
        with pytest.raises(ValueError, match="not a Tether cursor"):
            Watermark.parse(bad)


def test_tracker_time_reads_the_date_header_less_the_requests_duration() -> None:
    date = "Mon, 05 May 2025 09:00:00 GMT"
    assert Watermark.tracker_time(date) == T0
    assert Watermark.tracker_time(date, timedelta(milliseconds=300)) == T0 - timedelta(seconds=1)
    assert Watermark.tracker_time(date, timedelta(seconds=2.5)) == T0 - timedelta(seconds=3)
    assert Watermark.tracker_time("Mon, 05 May 2025 11:00:00 +0200") == T0
    for missing in (None, "", "yesterday", "Mon, 99 May 2025 09:00:00 GMT"):
        assert Watermark.tracker_time(missing) is None


def test_no_change_is_missed_or_reported_twice_across_many_pulls() -> None:
    """A tracker whose changes become searchable up to just under OVERLAP late and whose
    filter floors to the minute (Jira), pulled at random times: every version of an item
    that was the newest one visible at some pull is reported exactly once."""
    rng = random.Random(12)
    keys = [f"K{i}" for i in range(40)]
    versions: list[tuple[str, datetime, datetime]] = []  # key, stamp, visible from
    moment = T0
    for _ in range(400):
        moment += timedelta(seconds=rng.choice([0, 1, 5, 40, 300, 3600]))
        lag = timedelta(seconds=rng.uniform(0, OVERLAP.total_seconds() - 1))
        versions.append((rng.choice(keys), moment, moment + lag))
    end = moment + OVERLAP * 2
    pulls = sorted(T0 + (end - T0) * rng.random() for _ in range(60)) + [end]
    mark, reported = Watermark(), Counter[tuple[str, datetime]]()
    shown_at_some_pull: set[tuple[str, datetime]] = set()
    for now in pulls:
        newest: dict[str, datetime] = {}
        for key, stamp, visible in versions:
            if visible <= now:
                newest[key] = max(stamp, newest.get(key, stamp))
        since = mark.since()
        floor = None if since is None else since.replace(second=0, microsecond=0)
        listed = [Task("s", k, k, updated=u) for k, u in newest.items()
                  if floor is None or u >= floor]
        shown_at_some_pull |= set(newest.items())
        reported.update((t.key, t.updated) for t in listed if mark.is_new(t)
                        and t.updated is not None)
        mark = Watermark.parse(mark.advance(listed, pulled_at=now.replace(microsecond=0)
                                            ).encode())
    assert max(reported.values()) == 1
    assert set(reported) == shown_at_some_pull  # the first pull reports what it shows, too
    assert mark.advance([], pulled_at=end + OVERLAP).since() == end - OVERLAP
