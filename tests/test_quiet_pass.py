"""A quiet pass costs one list request per scope plus at most one check (issue 12).

The cursor starts the next pull from when the last one ran by the tracker's clock (its
``Date`` header), not from the newest change, so Tether's own burst of writes is not
listed again on every later pass; Jira keeps what serverInfo and /field said in the
connector's memory and asks only /myself. Through the real client libraries against the
sandboxes, each on an injected clock that the passes move on as cron would.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest
import requests
from test_asana_connector import TOKEN as ASANA_TOKEN
from test_asana_connector import World as AsanaWorld
from tether.connector import Connector
from tether.model import OpKind, Task, WriteOp
from tether.pipeline.render import MARKER
from tether.sandbox import Fault, SandboxServer
from tether.sdk import FakeClock
from tether.watermark import OVERLAP, Watermark
from tether_asana.normalise import iso
from tether_github.conformance import GitHubDriver
from tether_jira.conformance import JiraDriver

PREFIX = "tether"
CRON = timedelta(minutes=15)  # between passes, as a cron job runs them
TRACKERS = ["jira-cloud", "jira-dc", "github", "asana"]


@dataclass
class Site:
    """One tracker's sandbox, as the tests here need it."""

    server: SandboxServer
    clock: FakeClock  # the tracker's: it stamps changes and the Date of every answer
    keys: list[str]
    connector: Callable[[], Connector]
    edit: Callable[[str], None]  # a person changes the item now
    stamp: Callable[[str, datetime], None]  # the item's last change is stamped then
    quiet: list[str]  # the last path segment of each request a quiet pass makes
    drv: Any = None


def jira(tmp_path: Path, flavour: str) -> Site:
    drv = JiraDriver(tmp_path, flavour)
    keys = drv.seed(250)

    def stamp(key: str, when: datetime) -> None:
        drv.world.edit(key, summary="changed, searchable late")
        drv.world.issues[key].updated = when

    search = "jql" if flavour == "cloud" else "search"
    return Site(drv.server, drv.site_clock, keys, drv.connector, drv.edit, stamp,
                ["myself", search], drv)


def github(tmp_path: Path) -> Site:
    drv = GitHubDriver(tmp_path)
    keys = drv.seed(250)

    def stamp(key: str, when: datetime) -> None:
        drv.edit(key)
        drv.issue(key).updated = when

    return Site(drv.server, drv.retry_clock, keys, drv.connector, drv.edit, stamp,
                ["issues"], drv)


def asana(tmp_path: Path) -> Site:
    world = AsanaWorld(tmp_path)
    tasks = [world.task(f"T{i}", modified_at=world.state.ago(30 + i / 1440)) for i in range(250)]
    by_key = {t["gid"]: t for t in tasks}

    def edit(key: str) -> None:
        world.state.rename(by_key[key], by_key[key]["name"] + " (edited)", world.ada)

    def stamp(key: str, when: datetime) -> None:
        edit(key)
        by_key[key]["modified_at"] = iso(when)

    return Site(world.server, world.clock, list(by_key), world.connector, edit, stamp,
                ["tasks", "events"], world)  # the pull's page, the read's events call


@pytest.fixture(params=TRACKERS)
def site(request, tmp_path: Path, monkeypatch) -> Iterator[Site]:
    for variable in ("JIRA_TOKEN", "GITHUB_TOKEN", ASANA_TOKEN):
        monkeypatch.setenv(variable, "good")
    name = request.param
    made = (jira(tmp_path, "cloud" if name == "jira-cloud" else "datacenter")
            if name.startswith("jira") else github(tmp_path) if name == "github"
            else asana(tmp_path))
    yield made
    made.server.stop()


@dataclass
class Cron:
    """Passes as a cron job runs them, ``CRON`` of the tracker's time apart: a fresh
    connector each, given the memory, the cursor and the comment ids the last pass left, and
    reading every snapshot the state store keeps."""

    site: Site
    cursor: str | None = None
    memory: dict[str, Any] = field(default_factory=dict)
    known: dict[str, str | None] = field(default_factory=dict)
    snapshots: dict[str, Task] = field(default_factory=dict)

    def run(self, ops: list[WriteOp] = (), read: list[str] | None = None
            ) -> tuple[list[str], list[str]]:
        """One pass after ``CRON``: pull, read (every item, or those ``read`` names: what a
        pass plans; none, as a pass with nothing of this source to plan still asks), apply
        ``ops``; the keys the pull reported and the last path segment of each request the
        pull and the read made."""
        self.site.clock.sleep(CRON.total_seconds())
        connector = self.site.connector()
        connector.memory, connector.known_comments = self.memory, dict(self.known)
        before = len(self.site.server.log)
        result = connector.pull(self.cursor)
        self.snapshots.update({t.key: replace(t, raw={}) for t in result.tasks})
        connector.read_annotations([t for t in self.snapshots.values()
                                    if read is None or t.key in read], PREFIX)
        paths = [r.path.rstrip("/").rsplit("/", 1)[1] for r in self.site.server.log[before:]]
        if ops:
            done = connector.apply(ops)
            assert all(r.ok for r in done), [r.error for r in done if not r.ok]
            self.known.update({r.op.key: r.comment_id for r in done if r.comment_id})
        self.memory, self.cursor = connector.memory, result.cursor or self.cursor
        return [t.key for t in result.tasks], paths

    def mark(self) -> Watermark:
        return Watermark.parse(self.cursor)


def burst(keys: list[str]) -> list[WriteOp]:
    """Tether's first sync: its comment on many items at once (over pages of the list)."""
    return [WriteOp("src", k, OpKind.CREATE_COMMENT, f"{MARKER}\nNo KPI.", "t") for k in keys]


def test_a_quiet_pass_after_tethers_burst_asks_one_page_and_one_check(site: Site) -> None:
    cron = Cron(site)
    reported, _ = cron.run(burst(site.keys[::2]))  # the full pull, then 125 comments
    assert len(reported) == 250
    reported, _ = cron.run()  # reads back what the writes touched
    assert set(reported) <= set(site.keys[::2])
    for _ in range(2):
        given = cron.cursor
        reported, paths = cron.run()
        assert reported == [] and paths == site.quiet
    assert cron.cursor == given  # nothing to skip any more: the cursor stands


def test_passes_with_nothing_to_read_keep_notes_the_next_pass_can_use(site: Site) -> None:
    cron = Cron(site)
    cron.run(burst(site.keys[::2]))
    cron.run()
    daily = {"serverInfo", "field"}  # Jira asks these once a day
    for _ in range(100):  # a day and more of quiet passes with nothing of it to plan
        reported, paths = cron.run(read=[])
        assert reported == [] and [p for p in paths if p not in daily] == site.quiet
    site.edit(site.keys[4])
    # The pass plans the edited item and two it did not pull (its neighbours, say).
    reported, paths = cron.run(read=site.keys[4:9:2])
    assert reported == [site.keys[4]]
    assert paths[:len(site.quiet)] == site.quiet  # the notes held: no scope listed again
    assert paths.count(site.quiet[0]) == 1, paths


def test_an_edit_and_a_change_searchable_late_are_each_reported_once(site: Site) -> None:
    cron = Cron(site)
    cron.run(burst(site.keys[:120]))
    cron.run()
    cron.run()
    pulled_at = cron.mark().pulled_at
    assert pulled_at is not None and pulled_at <= site.clock.now()  # the tracker's Date
    # One item is edited now; another's change is stamped 90 s before that quiet pass ran
    # but only now shows in searches (within the overlap, so the next pull must find it).
    site.clock.sleep(60)
    site.edit(site.keys[200])
    site.stamp(site.keys[201], pulled_at - timedelta(seconds=90))
    reported, _ = cron.run()
    assert sorted(reported) == sorted(site.keys[200:202])
    for _ in range(2):
        reported, paths = cron.run()
        assert reported == [] and paths == site.quiet


def test_a_cursor_from_before_pulls_were_dated_resumes_as_it_did(site: Site) -> None:
    cron = Cron(site)
    cron.run()
    # What the code before dated pulls wrote after this full pull: no pulled_at, and the
    # items stamped in the overlap before the newest stamp.
    cron.cursor = Watermark().advance(cron.snapshots.values()).encode()
    assert cron.cursor is not None and "pulled_at" not in json.loads(cron.cursor)
    assert cron.mark().since() == cron.mark().at - OVERLAP
    site.edit(site.keys[7])
    reported, _ = cron.run()
    assert reported == [site.keys[7]]
    assert cron.mark().pulled_at is not None  # the cursor learns when its pull ran
    assert cron.run()[0] == []


def test_every_answer_is_dated_by_the_trackers_clock(site: Site) -> None:
    site.clock.sleep(3600 * 24 * 3)  # far from this machine's time, whatever it is
    want = format_datetime(site.clock.now(), usegmt=True)
    site.server.faults.add(Fault("status", at=frozenset({2}), status=503))
    for _ in range(2):  # an answer of the service (a 401 here), then an injected fault
        answer = requests.get(site.server.base_url + "/nowhere", timeout=5)
        assert answer.raw.headers.getlist("Date") == [want], answer.status_code


# -- Jira: serverInfo and /field from memory, /myself every pass ----------------------------

def jql_of(drv: JiraDriver) -> str:
    return parse_qs([r for r in drv.server.log if "/search" in r.path][-1].query)["jql"][0]


@pytest.mark.parametrize("flavour", ["cloud", "datacenter"])
def test_jira_asks_myself_every_pass_and_serverinfo_and_fields_once_a_day(
        tmp_path: Path, monkeypatch, flavour: str) -> None:
    monkeypatch.setenv("JIRA_TOKEN", "good")
    site = jira(tmp_path, flavour)
    drv: JiraDriver = site.drv
    search = site.quiet[1]
    try:
        cron = Cron(site)
        pages = 3 if flavour == "cloud" else 1  # Cloud: 100 issues a page with fields
        assert cron.run()[1] == ["serverInfo", "field", *[search] * pages]  # full pull
        assert cron.run()[1] == ["myself", search]  # the rest from memory
        # The user moves to Tokyo: the very next pass writes its JQL dates in Tokyo time.
        [me] = [u for u in drv.world.users.values() if u.name == "mia"]
        me.time_zone = "Asia/Tokyo"
        since = cron.mark().since()
        assert since is not None and cron.run()[1] == ["myself", search]
        assert f'updated >= "{since.astimezone(ZoneInfo("Asia/Tokyo")):%Y/%m/%d %H:%M}"' \
            in jql_of(drv)
        # A day later by the site's clock, serverInfo and /field are read again, once.
        site.clock.sleep(24 * 3600)
        assert cron.run()[1] == ["myself", "serverInfo", "field", search]
        assert cron.run()[1] == ["myself", search]
        # A full pull reads them afresh; memory lost costs them once more.
        cron.cursor = None
        assert cron.run()[1][:2] == ["serverInfo", "field"]
        cron.memory = {}  # the read searches the scope's labels too (see tether_jira.recall)
        assert cron.run()[1][:4] == ["serverInfo", "myself", "field", search]
        assert cron.run()[1] == ["myself", search]
    finally:
        site.server.stop()


def test_jira_reads_the_fields_again_for_options_naming_another_field(
        tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("JIRA_TOKEN", "good")
    site = jira(tmp_path, "cloud")
    drv: JiraDriver = site.drv
    try:
        cron = Cron(site)
        cron.run()
        assert cron.run()[1] == ["myself", "jql"]
        site.connector = lambda: drv.connector(custom_fields={"points": "Story point estimate"})
        drv.edit(site.keys[3])
        reported, paths = cron.run()
        assert paths == ["serverInfo", "myself", "field", "jql"]
        assert reported == [site.keys[3]]
        assert [t.custom for t in cron.snapshots.values() if t.key == site.keys[3]] == [
            {"points": drv.world.issues[site.keys[3]].custom.get("customfield_10016")}]
        assert cron.run()[1] == ["myself", "jql"]
    finally:
        site.server.stop()


def test_jira_memory_of_the_setup_is_a_hint_never_an_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("JIRA_TOKEN", "good")
    site = jira(tmp_path, "cloud")
    try:
        cron = Cron(site)
        cron.run()
        cron.run()
        for junk in ("nonsense", {"deployment": "Cloud"}, {"read_at": "soon", "names": {}}):
            cron.memory["setup"]["value"] = junk
            assert cron.run()[1] == ["serverInfo", "myself", "field", "jql"]
        assert cron.run()[1] == ["myself", "jql"]
    finally:
        site.server.stop()
