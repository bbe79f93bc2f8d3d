"""Jira-specific behaviour of the connector and its sandbox (the shared suite covers the rest)."""

from __future__ import annotations

import base64
import json
import os
import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest
import requests
from tether.errors import SourceError, TetherError
from tether.model import CurrentAnnotation, Finding, Link, OpKind, WriteOp
from tether.pipeline.plan import desired_annotations, plan_ops
from tether.pipeline.render import MARKER, digest, mention
from tether.sandbox import Fault
from tether.testing import writes
from tether.testing.test_writeback_suite import Tracker
from tether.watermark import Watermark
from tether_jira import JiraSandbox
from tether_jira.conformance import PLAIN_TOKEN, PROJECT, RAVI, JiraDriver
from tether_jira.connector import JiraConnector
from tether_jira.markup import to_wiki
from tether_jira.options import JiraOptions
from tether_jira.sandbox.api import REMOVED_SEARCH, RateLimit
from tether_jira.sandbox.http import QUIET_REFUSED
from tether_jira.sandbox.state import ALL_PERMISSIONS
from tether_jira.writes import WORKERS

PREFIX = "tether"
FLAVOURS = ["cloud", "datacenter"]


@pytest.fixture
def site(request, tmp_path: Path, monkeypatch):
    """A sandbox site of the flavour given by ``@pytest.mark.parametrize("site", ...)``."""
    drv = JiraDriver(tmp_path, getattr(request, "param", "cloud"))
    monkeypatch.setenv(drv.token_variable, "good")
    yield drv
    drv.server.stop()


def auth(drv: JiraDriver, token: str = "good") -> dict[str, str]:
    """The Authorization header the site expects for ``token`` (Ravi's for PLAIN_TOKEN)."""
    if drv.flavour != "cloud":
        return {"Authorization": f"Bearer {token}"}
    email = "ravi@example.com" if token == PLAIN_TOKEN else "mia@example.com"
    return {"Authorization": "Basic " + base64.b64encode(f"{email}:{token}".encode()).decode()}


def searches(drv: JiraDriver) -> list[dict[str, list[str]]]:
    return [parse_qs(r.query) for r in drv.server.log if "/search" in r.path]


def comment_op(key: str, text: str, kind: OpKind = OpKind.CREATE_COMMENT,
               comment_id: str | None = None) -> WriteOp:
    return WriteOp("src", key, kind, f"{MARKER}\n{text}", "test", comment_id)


# -- search endpoints -------------------------------------------------------------------------

def test_cloud_legacy_search_answers_410_and_the_connector_never_calls_it(site) -> None:
    site.seed(30)
    site.connector().pull(None)
    paths = {r.path for r in site.server.log}
    assert "/rest/api/3/search/jql" in paths
    assert not {"/rest/api/2/search", "/rest/api/3/search"} & paths
    auth = "Basic " + base64.b64encode(b"mia@example.com:good").decode()
    for version in ("2", "3", "latest"):
        answer = requests.get(f"{site.server.base_url}/rest/api/{version}/search",
                              params={"jql": f"project = {PROJECT}"},
                              headers={"Authorization": auth}, timeout=5)
        assert answer.status_code == 410
        assert answer.json() == {"errorMessages": [REMOVED_SEARCH], "errors": {}}


def test_cloud_pages_follow_next_page_token_until_it_is_omitted(site) -> None:
    site.seed(250)
    tasks = site.connector().pull(None).tasks
    assert len(tasks) == 250 and len({t.key for t in tasks}) == 250
    tokens = [q.get("nextPageToken") for q in searches(site)]
    assert tokens[0] is None and all(tokens[1:]) and len(tokens) == 3
    assert all(q["maxResults"] == ["5000"] for q in searches(site))  # asks for the maximum


@pytest.mark.parametrize("site", ["datacenter"], indirect=True)
def test_dc_pages_by_start_at_with_a_server_clamped_max_results(site) -> None:
    site.world.limits.dc_max_results = 40  # an admin lowered jira.search.views.default.max
    site.seed(100)
    tasks = site.connector().pull(None).tasks
    assert sorted(t.key for t in tasks) == sorted(site.world.issues)
    pages = searches(site)
    assert [q["startAt"] for q in pages] == [["0"], ["40"], ["80"]]
    assert all(q["maxResults"] == ["1000"] for q in pages)  # asked for more than it got


@pytest.mark.parametrize("site", FLAVOURS, indirect=True)
def test_incremental_jql_is_written_in_the_token_users_time_zone(site) -> None:
    keys = site.seed(10)
    connector = site.connector()
    cursor = connector.pull(None).cursor
    last = site.world.issues[keys[-1]].updated
    mark = Watermark.parse(cursor)
    assert mark.at == last and mark.at.utcoffset() == timedelta(hours=2)  # Berlin, user in NY
    assert mark.pulled_at is not None and mark.pulled_at > last  # the site's Date, not ours
    site.edit(keys[4])  # a minute later
    result = connector.pull(cursor)
    assert [t.key for t in result.tasks] == [keys[4]]
    assert Watermark.parse(result.cursor).at == site.world.issues[keys[4]].updated
    jql = searches(site)[-1]["jql"][0]
    new_york = (mark.pulled_at - timedelta(minutes=2)).astimezone(ZoneInfo("America/New_York"))
    assert f'updated >= "{new_york:%Y/%m/%d %H:%M}"' in jql
    assert "ORDER BY updated ASC, key ASC" in jql
    quiet = connector.pull(result.cursor)
    assert quiet.tasks == [] and quiet.cursor == result.cursor and not quiet.complete


# -- normalisation ----------------------------------------------------------------------------

@pytest.mark.parametrize("site", FLAVOURS, indirect=True)
def test_epic_link_on_dc_and_parent_on_cloud_become_task_epic(site) -> None:
    keys = site.seed(12)
    tasks = {t.key: t for t in site.connector().pull(None).tasks}
    story = tasks[keys[3]]
    assert story.epic == keys[0] and tasks[keys[0]].type == "Epic"
    assert story.parent == (keys[0] if site.flavour == "cloud" else None)
    assert tasks[keys[11]].epic is None


def test_dc_sub_task_parent_is_kept_apart_from_its_epic(tmp_path: Path, monkeypatch) -> None:
    drv = JiraDriver(tmp_path, "datacenter")
    monkeypatch.setenv(drv.token_variable, "good")
    try:
        keys = drv.seed(5)
        sub = drv.world.create_issue(PROJECT, "A sub-task", type="Sub-task", parent=keys[3])
        sub.custom[drv.world.epic_link] = keys[0]
        tasks = {t.key: t for t in drv.connector().pull(None).tasks}
        assert (tasks[sub.key].parent, tasks[sub.key].epic) == (keys[3], keys[0])
    finally:
        drv.server.stop()


@pytest.mark.parametrize("site", FLAVOURS, indirect=True)
def test_issue_links_keep_their_direction(site) -> None:
    keys = site.seed(10)
    site.world.link("Relates", keys[1], keys[2])
    tasks = {t.key: t for t in site.connector().pull(None).tasks}
    assert Link("blocks", keys[7]) in tasks[keys[6]].links
    assert Link("is blocked by", keys[6]) in tasks[keys[7]].links
    assert tasks[keys[2]].links == (Link("relates to", keys[1]),)


@pytest.mark.parametrize("site", FLAVOURS, indirect=True)
def test_story_points_field_becomes_the_estimate(site) -> None:
    keys = site.seed(6)
    tasks = {t.key: t for t in site.connector().pull(None).tasks}
    assert [tasks[k].estimate for k in keys] == [1.0, 2.0, None, 5.0, 8.0, 1.0]
    other = site.world.add_field("customfield_10200", "Effort", "number")
    site.world.issues[keys[0]].custom[other] = 13
    tasks = {t.key: t for t in site.connector(story_points_field="Effort").pull(None).tasks}
    assert tasks[keys[0]].estimate == 13.0 and tasks[keys[1]].estimate is None


def test_custom_fields_are_pulled_by_id_or_name_and_flattened(site) -> None:
    keys = site.seed(3)
    team = site.world.add_field("customfield_10050", "Team", "option")
    site.world.issues[keys[0]].custom[team] = {"self": "x", "value": "Platform", "id": "1"}
    connector = site.connector(custom_fields={"team": "Team", "points": "customfield_10016"})
    tasks = {t.key: t for t in connector.pull(None).tasks}
    assert tasks[keys[0]].custom == {"team": "Platform", "points": 1.0}
    assert tasks[keys[1]].custom == {"team": None, "points": 2.0}


# -- comments and the marker ------------------------------------------------------------------

@pytest.mark.parametrize("site", FLAVOURS, indirect=True)
def test_comment_is_adf_on_cloud_and_wiki_on_dc_without_the_html_marker(site) -> None:
    key = site.seed(3)[0]
    connector = site.connector()
    connector.pull(None)
    [done] = connector.apply([comment_op(key, "Tether flagged this item: **untethered** "
                                              "(rule `r1`).\n\n- What to do: *link* it")])
    assert done.ok, done.error
    [stored] = site.world.issues[key].comments
    if site.flavour == "cloud":
        assert stored.body["type"] == "doc"
        first = stored.body["content"][0]["content"]
        assert {"type": "text", "text": "untethered", "marks": [{"type": "strong"}]} in first
        assert {"type": "text", "text": "r1", "marks": [{"type": "code"}]} in first
        assert stored.body["content"][1]["type"] == "bulletList"
    else:
        assert stored.body == ("Tether flagged this item: *untethered* (rule {{r1}}).\n\n"
                               "* What to do: _link_ it")
    assert "<!--" not in str(stored.body)
    assert site.world.issues[key].properties["tether"] == {
        "v": 1, "comment_id": stored.id, "digest": digest(f"{MARKER}\nTether flagged this "
                                                          "item: **untethered** (rule `r1`)."
                                                          "\n\n- What to do: *link* it")}


@pytest.mark.parametrize("site", FLAVOURS, indirect=True)
def test_the_marker_survives_a_person_editing_the_comment(site) -> None:
    keys = site.seed(4)
    first = site.connector()
    tasks = first.pull(None).tasks
    findings = [Finding("untethered", "warning", f"src:{keys[1]}", "No KPI.", "u", 0.0)]
    task = [t for t in tasks if t.key == keys[1]]

    def plan(connector: JiraConnector, found: list[Finding]) -> list[WriteOp]:
        shown = {f"src:{k}": v for k, v in connector.read_annotations(task, PREFIX).items()}
        desired = desired_annotations(task, [], found, {}, PREFIX, True, shown)
        return plan_ops(task, desired, shown)

    assert all(r.ok for r in first.apply(plan(first, findings)))
    [comment] = site.world.issues[keys[1]].comments
    site.world.edit_comment(keys[1], comment.id, "I disagree, this is tethered.",
                            author="5b10ac8d82e05b22cc7d4ef5")
    later = site.connector()  # a new run: knows only what Jira and the state store show
    later.known_comments = {keys[1]: comment.id}
    tasks = later.pull(None).tasks
    task = [t for t in tasks if t.key == keys[1]]
    assert plan(later, findings) == []  # same verdict: the person's words stay
    changed = [Finding("stalled", "critical", f"src:{keys[1]}", "No move.", "s", 0.0)]
    [op] = plan(later, changed)
    assert op.kind is OpKind.UPDATE_COMMENT and op.comment_id == comment.id
    assert later.apply([op])[0].ok
    assert [c.id for c in site.world.issues[keys[1]].comments] == [comment.id]
    assert "stalled" in site.comments(keys[1])[0]


def test_an_edit_of_a_deleted_comment_is_gone_and_a_create_writes_it_again(site) -> None:
    key = site.seed(3)[0]
    connector = site.connector()
    connector.pull(None)
    [created] = connector.apply([comment_op(key, "first")])
    site.world.delete_comment(key, created.comment_id)
    posts = site.server.count("POST", f"/rest/api/3/issue/{key}/comment")
    [edit] = connector.apply([comment_op(key, "second", OpKind.UPDATE_COMMENT,
                                         created.comment_id)])
    assert edit.ok and edit.gone and edit.comment_id is None
    assert site.comments(key) == []  # the person's deletion stands
    assert site.server.count("POST", f"/rest/api/3/issue/{key}/comment") == posts
    task = next(t for t in connector.pull(None).tasks if t.key == key)
    # The issue's marker still names the deleted comment: a create writes a new one.
    [again] = connector.apply([comment_op(key, "third")])
    assert again.ok and again.comment_id != created.comment_id
    assert site.comments(key) == ["third"]
    assert site.world.issues[key].properties["tether"]["comment_id"] == again.comment_id
    assert connector.read_annotations([task], PREFIX)[key].comment_id == again.comment_id


def test_a_create_without_a_pull_edits_the_marked_comment_instead(site) -> None:
    key = site.seed(3)[0]
    site.connector().apply([comment_op(key, "first")])
    asked = site.server.count("GET", f"/rest/api/3/issue/{key}/properties/tether")
    fresh = site.connector()  # never pulled: it must ask Jira before writing
    [result] = fresh.apply([comment_op(key, "again")])
    assert result.ok and site.comments(key) == ["again"]
    assert site.server.count("GET", f"/rest/api/3/issue/{key}/properties/tether") == asked + 1


def test_snapshots_without_payload_cost_one_scope_search_not_one_request_each(site) -> None:
    keys = site.seed(30)
    writer = site.connector()
    writer.pull(None)
    writer.apply([WriteOp("src", keys[5], OpKind.ADD_LABEL, f"{PREFIX}:kpi:nps", "t"),
                  comment_op(keys[5], "hello")])
    snapshots = [replace(t, raw={}) for t in site.connector().pull(None).tasks]  # as stored
    reader = site.connector()
    before = len(site.server.log)
    shown = reader.read_annotations(snapshots, PREFIX)
    assert len(site.server.log) - before == 3  # serverInfo, field, one page of labels
    assert shown[keys[5]].labels == {f"{PREFIX}:kpi:nps"}
    assert shown[keys[5]].comment_id == site.world.issues[keys[5]].comments[0].id
    assert shown[keys[5]].comment_digest == digest(f"{MARKER}\nhello")
    assert shown[keys[6]].comment_id is None and len(shown) == 30


def test_pulled_tasks_are_read_with_no_request(site) -> None:
    site.seed(20)
    connector = site.connector()
    tasks = connector.pull(None).tasks
    before = len(site.server.log)
    assert len(connector.read_annotations(tasks, PREFIX)) == 20
    assert len(site.server.log) == before


# -- write-back etiquette: the comment's own marker, recovery, quiet edits, mentions --------

def posted(drv: JiraDriver, key: str) -> int:
    return drv.server.count("POST", f"/rest/api/{api(drv)}/issue/{key}/comment")


def api(drv: JiraDriver) -> str:
    return "3" if drv.flavour == "cloud" else "2"


@pytest.mark.parametrize("site", FLAVOURS, indirect=True)
def test_the_comment_carries_tethers_property_from_the_same_post(site) -> None:
    key = site.seed(3)[0]
    connector = site.connector()
    connector.pull(None)
    [done] = connector.apply([comment_op(key, "hello")])
    [stored] = site.world.issues[key].comments
    assert stored.properties == {"tether": {"v": 1, "digest": digest(f"{MARKER}\nhello")}}
    assert posted(site, key) == 1
    assert site.server.count("PUT", f"/rest/api/{api(site)}/comment/") == 0  # no second call
    [edited] = connector.apply([comment_op(key, "again", OpKind.UPDATE_COMMENT, done.comment_id)])
    assert edited.ok and stored.properties["tether"]["digest"] == digest(f"{MARKER}\nagain")


@pytest.mark.parametrize("site", FLAVOURS, indirect=True)
def test_recover_finds_the_comment_when_the_issue_marker_was_never_set(site) -> None:
    key = site.seed(3)[0]
    site.world.projects[PROJECT].permissions = ALL_PERMISSIONS - {"EDIT_ISSUES"}
    first = site.connector()
    tasks = first.pull(None).tasks
    [made] = first.apply([comment_op(key, "hello")])
    # The comment landed; the issue property PUT was refused: reported, with the comment id.
    assert not made.ok and made.comment_id and "comment property" in made.error
    assert "tether" not in site.world.issues[key].properties
    site.world.comment(key, "A person's comment, after Tether's", author=RAVI)
    fresh = site.connector()
    task = next(t for t in fresh.pull(None).tasks if t.key == key)
    assert fresh.read_annotations([task], PREFIX)[key].comment_id is None  # the index misses it
    before = len(site.server.log)
    shown = fresh.recover([task], PREFIX)[key]
    assert shown.comment_id == made.comment_id and shown.comment == "hello"
    assert shown.comment_digest == digest(f"{MARKER}\nhello")
    paths = [r.path for r in site.server.log[before:]]
    heal = f"/rest/api/{api(site)}/issue/{key}/properties/tether"  # tried: refused here
    if site.flavour == "cloud":  # ids from the listing, properties from comment/list
        assert paths == [f"/rest/api/3/issue/{key}/comment", "/rest/api/3/comment/list", heal]
    else:  # Data Center: the marker (its search cannot show it), then one listing with
        # expand=properties; the marker is written only because it does not name the comment
        assert paths == [heal, f"/rest/api/2/issue/{key}/comment", heal]
    other = next(t for t in tasks if t.key != key)
    assert fresh.recover([other], PREFIX)[other.key].comment_id is None


def test_recover_keeps_an_older_comment_the_issue_marker_names(site) -> None:
    key = site.seed(3)[0]
    legacy = site.world.comment(key, {"type": "doc", "version": 1, "content": []})
    site.world.issues[key].properties["tether"] = {"v": 1, "comment_id": legacy.id,
                                                   "digest": "d1"}
    connector = site.connector()
    task = next(t for t in connector.pull(None).tasks if t.key == key)
    shown = connector.recover([task], PREFIX)[key]
    assert (shown.comment_id, shown.comment_digest) == (legacy.id, "d1")
    [edit] = connector.apply([comment_op(key, "now marked", OpKind.UPDATE_COMMENT, legacy.id)])
    assert edit.ok and legacy.properties["tether"]["digest"] == digest(f"{MARKER}\nnow marked")


@pytest.mark.parametrize("site", FLAVOURS, indirect=True)
def test_a_lost_post_is_found_by_its_property_not_posted_again(site) -> None:
    key = site.seed(3)[0]
    connector = site.connector()
    connector.pull(None)
    site.server.after_handling = lambda r: r.method == "POST" and r.path.endswith("/comment")
    try:
        [made] = connector.apply([comment_op(key, "hello")])
    finally:
        site.server.after_handling = None
    assert made.ok, made.error
    [stored] = site.world.issues[key].comments
    assert made.comment_id == stored.id and posted(site, key) == 1
    assert site.world.issues[key].properties["tether"]["comment_id"] == stored.id
    assert len(site.retry_clock.slept) == 1  # the retry waited on the injected clock


def test_a_429_on_the_post_is_retried_without_looking_first(site) -> None:
    key = site.seed(3)[0]
    connector = site.connector()
    connector.pull(None)
    site.server.faults.add(Fault("status", at=frozenset({len(site.server.log) + 1}),
                                 status=429, headers={"Retry-After": "3"}))
    [made] = connector.apply([comment_op(key, "hello")])
    assert made.ok and site.comments(key) == ["hello"] and site.retry_clock.slept == [3]
    assert posted(site, key) == 2 and site.server.count("GET", f"/rest/api/3/issue/{key}/"
                                                               "comment") == 0


@pytest.mark.parametrize("site", FLAVOURS, indirect=True)
def test_edits_ask_jira_not_to_notify_when_the_token_may(site) -> None:
    key = site.seed(3)[0]
    connector = site.connector()
    connector.pull(None)
    assert connector.notify_mode == "unknown"
    [made] = connector.apply([comment_op(key, "one")])  # a new comment always notifies
    assert connector.notify_mode == "unknown"
    results = connector.apply([WriteOp("src", key, OpKind.ADD_LABEL, f"{PREFIX}:x", "t"),
                               comment_op(key, "two", OpKind.UPDATE_COMMENT, made.comment_id)])
    assert all(r.ok for r in results) and connector.notify_mode == "quiet"
    assert connector.notices() == []
    edits = [parse_qs(r.query) for r in site.server.log if r.method == "PUT"
             and "/properties/" not in r.path]
    # Data Center documents notifyUsers on issue edits only, not on comment edits.
    quiet = [{"notifyUsers": ["false"]}, {"notifyUsers": ["false"]}]
    assert edits == (quiet if site.flavour == "cloud" else quiet[:1] + [{}])
    assert site.labels(key) >= {f"{PREFIX}:x"} and site.comments(key) == ["two"]


@pytest.mark.parametrize("site", FLAVOURS, indirect=True)
def test_a_refused_quiet_edit_is_sent_again_once_and_then_never_asked(site) -> None:
    keys = site.seed(4)
    connector = site.connector(PLAIN_TOKEN, email="ravi@example.com")
    connector.pull(None)
    before = len(site.server.log)
    results = connector.apply([WriteOp("src", k, OpKind.ADD_LABEL, f"{PREFIX}:x", "t")
                               for k in keys[:3]])
    assert all(r.ok for r in results), results
    assert connector.notify_mode == "notifying"
    [notice] = connector.notices()  # said after the sync, with what to do about it
    assert "notified watchers" in notice and "project admin" in notice
    answered = [(r.status, parse_qs(r.query)) for r in site.server.log[before:]]
    assert answered == [(403, {"notifyUsers": ["false"]}), (204, {}), (204, {}), (204, {})]
    assert all(f"{PREFIX}:x" in site.labels(k) for k in keys[:3])  # the edits still landed
    refused = requests.put(f"{site.server.base_url}/rest/api/{api(site)}/issue/{keys[3]}",
                           params={"notifyUsers": "false"}, headers=auth(site, PLAIN_TOKEN),
                           json={"update": {"labels": [{"add": "y"}]}}, timeout=5)
    assert refused.status_code == 403 and refused.json() == {
        "errorMessages": [QUIET_REFUSED], "errors": {}}
    assert "y" not in site.labels(keys[3])  # Jira refuses the whole edit, not just the quiet


def test_a_refused_quiet_comment_edit_falls_back_too(site) -> None:
    key = site.seed(3)[0]
    connector = site.connector(PLAIN_TOKEN, email="ravi@example.com")
    connector.pull(None)
    [made] = connector.apply([comment_op(key, "one")])
    [edit] = connector.apply([comment_op(key, "two", OpKind.UPDATE_COMMENT, made.comment_id)])
    assert edit.ok and site.comments(key) == ["two"] and connector.notify_mode == "notifying"
    assert site.world.issues[key].comments[0].author == RAVI  # the token's own user wrote it
    assert [r.status for r in site.server.log if r.method == "PUT" and "/comment/" in r.path] \
        == [403, 200]


@pytest.mark.parametrize("site", FLAVOURS, indirect=True)
def test_a_mention_token_becomes_a_mention_and_escaped_text_stays_text(site) -> None:
    key = site.seed(3)[0]
    connector = site.connector()
    connector.pull(None)
    handle = site.mention_handle()
    text = f"Decision needed from {mention(handle)}; not from \\<@admin\\> or `<@code>`."
    [done] = connector.apply([comment_op(key, text)])
    assert done.ok, done.error
    assert site.mentioned(key) == [handle]
    [stored] = site.stored_comments(key)
    if site.flavour == "cloud":
        nodes = stored["content"][0]["content"]
        assert {"type": "mention", "attrs": {"id": RAVI, "text": f"@{RAVI}"}} in nodes
        assert "<@admin>" in nodes[-3]["text"] and nodes[-2]["text"] == "<@code>"
    else:
        assert stored == "Decision needed from [~ravi]; not from <@admin> or {{<@code>}}."


@pytest.mark.parametrize("site", FLAVOURS, indirect=True)
def test_sandbox_shows_comment_properties_only_where_jira_does(site) -> None:
    key = site.seed(2)[0]
    base = f"{site.server.base_url}/rest/api/{api(site)}"
    mine = site.world.comment(key, "x")
    mine.properties = {"tether": {"v": 1}}
    listing = requests.get(f"{base}/issue/{key}/comment", headers=auth(site), timeout=5).json()
    assert "properties" not in listing["comments"][0] and listing["maxResults"] == 100
    expanded = requests.get(f"{base}/issue/{key}/comment", params={"expand": "properties"},
                            headers=auth(site), timeout=5).json()
    assert expanded["comments"][0]["properties"] == [{"key": "tether", "value": {"v": 1}}]
    bulk = requests.post(f"{base}/comment/list", params={"expand": "properties"},
                         json={"ids": [int(mine.id)]}, headers=auth(site), timeout=5)
    if site.flavour == "cloud":
        assert bulk.json()["values"][0]["properties"] == [{"key": "tether", "value": {"v": 1}}]
        assert requests.post(f"{base}/comment/list", json={"ids": []}, headers=auth(site),
                             timeout=5).status_code == 400
    else:
        assert bulk.status_code == 404  # Data Center has no comment/list


def test_wiki_escapes_what_would_link_mention_or_embed() -> None:
    wiki = to_wiki(f"{MARKER}\nSee \\[~admin\\] \\!x.png\\! \\{{html\\}} a\\|b "
                   "https://evil.example mailto:a@b.c <a href='x'>")
    assert wiki == ("See \\[\\~admin\\] \\!x.png\\! \\{html\\} a\\|b "
                    "https:\u200b//evil.example mailto\u200b:a@b.c <\u200ba h\u200bref='x'>")
    assert to_wiki(f"{MARKER}\nAsk <@odd]name> now") == "Ask @odd\\]name now"  # not [~odd]


# -- Data Center: its search shows no issue property, so Tether's comment comes from memory ---

def touched(drv: JiraDriver) -> list[tuple[str, str]]:
    """Requests about comments or issue properties: what a quiet re-run must not send."""
    return [(r.method, r.path) for r in drv.server.log
            if "/comment" in r.path or "/properties/" in r.path]


@pytest.mark.parametrize("site", ["datacenter"], indirect=True)
def test_a_quiet_dc_rerun_writes_nothing_and_reads_no_comment(site, tmp_path: Path) -> None:
    tracker = Tracker(site, tmp_path)
    tracker.run()
    commented = {k for k in tracker.keys if site.world.issues[k].comments}
    assert commented
    tracker.run()  # lists, once, the comments on issues Tether's own writes touched
    site.server.log.clear()
    assert tracker.run().ops == [] and writes(site) == 0
    assert touched(site) == []
    assert [r.path.rsplit("/", 1)[1] for r in site.server.log] == [
        "myself", "search"]  # the page; the rest (serverInfo, /field) comes from memory
    # Memory lost: at most the labels searched and one listing per commented issue (only
    # for the items the pass reads), still nothing written; then quiet again.
    with tracker.workspace().open_store() as store:
        store.save_memory("src", {})
    site.server.log.clear()
    assert tracker.run().ops == [] and writes(site) == 0
    assert set(touched(site)) <= {("GET", f"/rest/api/2/issue/{k}/comment") for k in commented}
    assert [r.path.rsplit("/", 1)[1] for r in site.server.log].count("search") <= 2
    site.server.log.clear()
    assert tracker.run().ops == [] and writes(site) == 0 and touched(site) == []
    assert [r.path.rsplit("/", 1)[1] for r in site.server.log].count("search") == 1


@pytest.mark.parametrize("site", ["datacenter"], indirect=True)
def test_a_person_deleting_tethers_comment_on_dc_is_still_noticed(site, tmp_path: Path) -> None:
    tracker = Tracker(site, tmp_path)
    tracker.run()
    tracker.run()
    key = sorted(tracker.idle())[0]
    [comment] = site.world.issues[key].comments
    site.person_deletes_comment(key, comment.id)  # moves `updated`: activity, no longer idle
    site.server.log.clear()
    after = tracker.run()
    # Memory no longer holds for that issue: its comments are listed and the deletion seen,
    # so Tether neither edits nor writes a comment there (nor a resolved note); only its
    # idle label goes.
    assert ("GET", f"/rest/api/2/issue/{key}/comment") in touched(site)
    assert [(o.key, o.kind) for o in after.ops] == [(key, OpKind.REMOVE_LABEL)]
    assert not [r for r in site.server.log if r.method != "GET" and "/comment" in r.path]
    assert site.comments(key) == [] and f"{PREFIX}:idle" not in site.labels(key)
    site.server.log.clear()
    assert tracker.run().ops == [] and writes(site) == 0
    # Only that issue is looked at again (the state store still names the deleted comment,
    # so the pass confirms its absence with recover(), which never trusts memory).
    assert {path for _, path in touched(site)} <= {
        f"/rest/api/2/issue/{key}/comment", f"/rest/api/2/issue/{key}/properties/tether"}


@pytest.mark.parametrize("site", ["datacenter"], indirect=True)
def test_a_dc_create_asks_jira_for_the_marker_and_never_writes_it_again(site) -> None:
    key = site.seed(3)[0]
    connector = site.connector()
    connector.pull(None)  # the search cannot tell whether Tether has a comment here
    [made] = connector.apply([comment_op(key, "one")])
    marker = f"/rest/api/2/issue/{key}/properties/tether"
    assert [(r.method, r.path) for r in site.server.log if r.path == marker] == [
        ("GET", marker), ("PUT", marker)]  # asked first (404), then set
    [edit] = connector.apply([comment_op(key, "two", OpKind.UPDATE_COMMENT, made.comment_id)])
    assert edit.ok and site.comments(key) == ["two"]
    assert site.server.count("PUT", marker) == 1  # it already names this comment
    assert site.world.issues[key].comments[0].properties["tether"]["digest"] == \
        digest(f"{MARKER}\ntwo")  # the digest Data Center reads lives on the comment


# -- memory of what issues show: a quiet pass costs the incremental search alone ---------------

class Passes:
    """Passes as a cron job runs them against one site: a fresh connector each, given the
    memory, the state store's comment ids and the cursor the pass before left, and reading
    every snapshot the store keeps (no payload)."""

    def __init__(self, drv: JiraDriver, n: int = 30):
        self.drv = drv
        self.keys = drv.seed(n)
        self.memory: dict = {}
        self.cursor: str | None = None
        self.known: dict[str, str | None] = {k: None for k in self.keys}
        self.snapshots: dict = {}
        self.pulled: list[str] = []  # keys the last pass's pull brought (new to the cursor)
        self.connector: JiraConnector | None = None

    def run(self, ops: list[WriteOp] = ()) -> tuple[dict, list[str]]:
        """One pass: pull, read, apply ``ops``; what it read, and the paths it requested."""
        connector = self.connector = self.drv.connector()
        connector.memory, connector.known_comments = self.memory, dict(self.known)
        before = len(self.drv.server.log)
        result = connector.pull(self.cursor)
        self.pulled = [t.key for t in result.tasks]
        self.snapshots.update({t.key: replace(t, raw={}) for t in result.tasks})
        shown = connector.read_annotations(list(self.snapshots.values()), PREFIX)
        paths = [r.path.rsplit("/", 1)[1] for r in self.drv.server.log[before:]]
        if ops:
            done = connector.apply(ops)
            assert all(r.ok for r in done), [r.error for r in done if not r.ok]
            self.known.update({r.op.key: r.comment_id for r in done if r.comment_id})
        self.memory, self.cursor = connector.memory, result.cursor or self.cursor
        return shown, paths

    def cold(self) -> dict:
        """What a connector with no memory reads for the same snapshots (one scope search;
        on Data Center one comment listing per comment the store knows)."""
        connector = self.drv.connector()
        connector.known_comments = dict(self.known)
        return connector.read_annotations(list(self.snapshots.values()), PREFIX)


def same(shown: dict) -> dict:
    """Annotations as the plan compares them: a Data Center listing also returns the text."""
    return {k: replace(v, comment=None) for k, v in shown.items()}


def tether_writes(keys: list[str]) -> list[WriteOp]:
    return ([WriteOp("src", k, OpKind.ADD_LABEL, f"{PREFIX}:kpi:nps", "t") for k in keys[:8]]
            + [WriteOp("src", k, OpKind.ADD_LABEL, f"{PREFIX}:idle", "t") for k in keys[3:6]]
            + [comment_op(k, f"about {k}") for k in keys[5:12]])


def settled(drv: JiraDriver) -> Passes:
    """A first pass that wrote labels and comments, and the pass that read them back; a
    person's later edit moves the cursor's mark past the overlap holding Tether's writes."""
    passes = Passes(drv)
    passes.run(tether_writes(passes.keys))
    drv.site_clock.sleep(300)
    drv.edit(passes.keys[29])
    passes.run()
    return passes


def incremental(drv: JiraDriver, paths: list[str]) -> list[str]:
    """``paths`` less the one setup call (memory keeps what serverInfo and /field said),
    after checking every search in them is incremental."""
    assert paths[:1] == ["myself"], paths
    n = sum(p in ("jql", "search") for p in paths)
    jqls = [q["jql"][0] for q in searches(drv)[len(searches(drv)) - n:]]
    assert n and all("updated >=" in j for j in jqls), jqls
    return paths[1:]


@pytest.mark.parametrize("site", FLAVOURS, indirect=True)
def test_a_quiet_pass_costs_the_incremental_search_and_reads_what_a_cold_read_does(site
                                                                                   ) -> None:
    passes = settled(site)
    shown, paths = passes.run()
    assert incremental(site, paths) == ["jql" if site.flavour == "cloud" else "search"]
    connector = passes.connector
    assert connector is not None and connector._from_memory == set(passes.keys[:29])
    assert set(shown) == set(passes.keys)
    assert same(shown) == same(passes.cold())
    keys = passes.keys
    assert shown[keys[4]].labels == {f"{PREFIX}:kpi:nps", f"{PREFIX}:idle"}
    assert shown[keys[6]].comment_id == passes.known[keys[6]]
    assert shown[keys[6]].comment_digest == digest(f"{MARKER}\nabout {keys[6]}")
    assert shown[keys[20]] == CurrentAnnotation()
    # The memory is compact: an entry only for the issues that show something of Tether.
    assert set(passes.memory["shown"]) == set(keys[:12])
    assert {k for k, e in passes.memory["shown"].items() if "c" in e} == set(keys[5:12])
    # recover never trusts memory: it searches the scope (and lists the comments) itself.
    before = len(site.server.log)
    [task] = [t for t in passes.snapshots.values() if t.key == keys[6]]
    assert connector.recover([task], PREFIX)[keys[6]].comment_id == passes.known[keys[6]]
    assert any("/search" in r.path for r in site.server.log[before:])


@pytest.mark.parametrize("site", FLAVOURS, indirect=True)
def test_what_a_person_changes_between_passes_is_what_the_quiet_pass_reads(site) -> None:
    passes = settled(site)
    keys = passes.keys
    site.site_clock.sleep(60)
    site.world.edit(keys[20], labels=[*site.labels(keys[20]), f"{PREFIX}:by-hand"])
    site.person_removes_label(keys[4], f"{PREFIX}:idle")
    for key in (keys[7], keys[9]):  # keys[9] shows no label of Tether's
        [comment] = site.world.issues[key].comments
        site.person_deletes_comment(key, comment.id)
    shown, paths = passes.run()
    assert set(passes.pulled) == {keys[20], keys[4], keys[7], keys[9]}
    search = "jql" if site.flavour == "cloud" else "search"
    listed = [] if site.flavour == "cloud" else ["comment"] * 2  # DC: the changed issues'
    assert incremental(site, paths) == [search, *listed]
    assert f"{PREFIX}:by-hand" in shown[keys[20]].labels
    assert shown[keys[4]].labels == {f"{PREFIX}:kpi:nps"}
    if site.flavour != "cloud":  # Cloud's marker property outlives the comment it names
        assert shown[keys[7]].comment_id is None and shown[keys[9]].comment_id is None
    assert same(shown) == same(passes.cold())
    site.site_clock.sleep(300)
    site.edit(keys[29])  # the changes leave the cursor's overlap
    passes.run()
    shown, paths = passes.run()  # the passes after that read the same from memory
    assert incremental(site, paths) == [search]  # no listing again for the deleted comments
    assert same(shown) == same(passes.cold())


@pytest.mark.parametrize("site", FLAVOURS, indirect=True)
def test_an_issue_tether_writes_is_pulled_again_not_read_from_memory(site) -> None:
    passes = settled(site)
    keys = passes.keys
    site.site_clock.sleep(60)
    _, paths = passes.run([WriteOp("src", keys[25], OpKind.ADD_LABEL, f"{PREFIX}:late", "t"),
                           WriteOp("src", keys[2], OpKind.REMOVE_LABEL, f"{PREFIX}:kpi:nps",
                                   "t"),
                           comment_op(keys[26], "late"),
                           comment_op(keys[6], "edited", OpKind.UPDATE_COMMENT,
                                      passes.known[keys[6]])])
    assert len(incremental(site, paths)) == 1  # those issues were read from memory
    shown, _ = passes.run()
    assert {keys[25], keys[2], keys[26], keys[6]} <= set(passes.pulled)
    assert shown[keys[25]].labels == {f"{PREFIX}:late"} and shown[keys[2]].labels == set()
    assert shown[keys[26]].comment_id == passes.known[keys[26]] is not None
    assert shown[keys[6]].comment_digest == digest(f"{MARKER}\nedited")
    assert same(shown) == same(passes.cold())


@pytest.mark.parametrize("site", FLAVOURS, indirect=True)
@pytest.mark.parametrize("broken", ["crash", "older shape"])
def test_memory_kept_as_of_another_cursor_costs_one_scope_search_then_holds_again(
        site, broken: str) -> None:
    passes = Passes(site)
    passes.run(tether_writes(passes.keys))
    stale = json.loads(json.dumps(passes.memory))  # as saved after the first pass
    passes.run()  # the store saves this pass's cursor, then the pass dies before its memory
    if broken == "crash":
        assert stale["asof"] != passes.memory["asof"]
        passes.memory = stale
    else:
        passes.memory = {**passes.memory, "v": 1}
    shown, paths = passes.run()
    search = "jql" if site.flavour == "cloud" else "search"
    assert paths.count(search) == 2  # the incremental search, then the scope's labels
    assert searches(site)[-1]["jql"][0] == f'project in ("{PROJECT}") ORDER BY key ASC'
    assert same(shown) == same(passes.cold())
    shown, paths = passes.run()  # memory rebuilt: quiet again
    assert incremental(site, paths) == [search]
    assert same(shown) == same(passes.cold())


# -- labels -----------------------------------------------------------------------------------

@pytest.mark.parametrize("site", FLAVOURS, indirect=True)
def test_three_label_changes_on_one_issue_are_one_request(site) -> None:
    key = site.seed(3)[1]  # labelled team-b
    connector = site.connector()
    connector.pull(None)
    before = len(site.server.log)
    results = connector.apply([
        WriteOp("src", key, OpKind.ADD_LABEL, f"{PREFIX}:kpi:nps", "t"),
        WriteOp("src", key, OpKind.REMOVE_LABEL, "team-b", "t"),
        WriteOp("src", key, OpKind.ADD_LABEL, f"{PREFIX}:idle", "t"),
    ])
    assert all(r.ok for r in results) and [r.op.value for r in results] == [
        f"{PREFIX}:kpi:nps", "team-b", f"{PREFIX}:idle"]
    assert [(r.method, r.path) for r in site.server.log[before:]] == [
        ("PUT", f"/rest/api/{api(site)}/issue/{key}")]
    assert site.labels(key) == {f"{PREFIX}:kpi:nps", f"{PREFIX}:idle"}


@pytest.mark.parametrize("site", FLAVOURS, indirect=True)
def test_writes_to_different_issues_run_at_once_and_each_issue_in_order(site, monkeypatch
                                                                         ) -> None:
    keys = site.seed(WORKERS + 2)
    connector = site.connector()
    connector.pull(None)
    together = threading.Barrier(WORKERS, timeout=10)
    send = connector.client.edit_labels

    def edit_labels(key: str, changes: list[dict[str, str]]) -> None:
        if key in keys[:WORKERS]:
            together.wait()  # passes only while WORKERS issues are being written at once
        send(key, changes)

    monkeypatch.setattr(connector.client, "edit_labels", edit_labels)
    ops = [op for k in keys for op in (WriteOp("src", k, OpKind.ADD_LABEL, f"{PREFIX}:x", "t"),
                                       comment_op(k, f"about {k}"))]
    results = connector.apply(ops)
    assert [r.op for r in results] == ops
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    base = f"/rest/api/{api(site)}/issue/"
    for k in keys:  # per issue: its labels, then its comment, then the comment's marker
        mine = [r.path for r in site.server.log if r.method != "GET"
                and r.path.startswith(base + k + "/") or r.path == base + k]
        assert mine == [base + k, base + k + "/comment", base + k + "/properties/tether"]
        assert site.comments(k) == [f"about {k}"] and f"{PREFIX}:x" in site.labels(k)


def test_a_write_that_breaks_unexpectedly_fails_only_its_own_ops(site, monkeypatch) -> None:
    keys = site.seed(3)
    connector = site.connector()
    connector.pull(None)
    send = connector.client.edit_labels

    def edit_labels(key: str, changes: list[dict[str, str]]) -> None:
        if key == keys[0]:
            raise KeyError("boom")
        send(key, changes)

    monkeypatch.setattr(connector.client, "edit_labels", edit_labels)
    ops = [WriteOp("src", k, OpKind.ADD_LABEL, f"{PREFIX}:{n}", "t")
           for k in keys[:2] for n in ("a", "b")]
    results = connector.apply(ops)
    assert [r.ok for r in results] == [False, False, True, True]
    assert "KeyError" in (results[0].error or "")


def test_label_changes_of_one_issue_go_in_one_put_and_spaces_are_refused_locally(site) -> None:
    key = site.seed(3)[1]
    connector = site.connector()
    connector.pull(None)
    results = connector.apply([
        WriteOp("src", key, OpKind.ADD_LABEL, f"{PREFIX}:kpi:nps", "t"),
        WriteOp("src", key, OpKind.ADD_LABEL, f"{PREFIX}:bad label", "t"),
        WriteOp("src", key, OpKind.REMOVE_LABEL, "team-b", "t"),  # not Tether's: still asked
    ])
    assert [r.ok for r in results] == [True, False, True]
    assert "spaces" in (results[1].error or "")
    assert site.server.count("PUT", f"/rest/api/3/issue/{key}") == 1
    assert site.labels(key) == {f"{PREFIX}:kpi:nps"}


def test_label_writes_bump_updated_but_the_marker_property_does_not(site) -> None:
    key = site.seed(3)[0]
    connector = site.connector()
    connector.pull(None)
    issue = site.world.issues[key]
    before = issue.updated
    site.site_clock.sleep(30)
    connector.apply([WriteOp("src", key, OpKind.ADD_LABEL, f"{PREFIX}:x", "t")])
    assert issue.updated == site.world.now() > before
    bumped = issue.updated
    site.site_clock.sleep(30)
    connector.client.set_marker(key, {"v": 1, "comment_id": "1", "digest": "d"})
    assert issue.updated == bumped


# -- errors -----------------------------------------------------------------------------------

def test_403_names_the_missing_permission(site) -> None:
    key = site.seed(3)[0]
    site.world.projects[PROJECT].permissions = ALL_PERMISSIONS - {"ADD_COMMENTS"}
    connector = site.connector()
    connector.pull(None)
    [result] = connector.apply([comment_op(key, "hello")])
    assert not result.ok
    assert "403" in result.error and "'Add Comments' permission" in result.error
    assert PROJECT in result.error and key in result.error
    site.world.projects[PROJECT].permissions = ALL_PERMISSIONS - {"EDIT_ISSUES"}
    [label] = connector.apply([WriteOp("src", key, OpKind.ADD_LABEL, f"{PREFIX}:x", "t")])
    # Jira answers 400, not 403, for a field the user may not edit: its own words are shown.
    assert "400" in label.error and "cannot be set" in label.error


def test_a_wrong_flavour_is_named(site) -> None:
    # A PAT sent as a bearer token to Cloud is refused before serverInfo can tell the flavour.
    with pytest.raises(SourceError) as info:
        site.connector(flavour="datacenter", email=None).pull(None)
    assert "401" in str(info.value) and "options.flavour" in str(info.value)


def test_cloud_rejects_a_bearer_token_and_the_401_body_is_the_real_one(site) -> None:
    answer = requests.get(f"{site.server.base_url}/rest/api/3/myself",
                          headers={"Authorization": "Bearer good"}, timeout=5)
    assert answer.status_code == 401
    assert answer.text == "Client must be authenticated to access this resource."
    assert answer.headers["X-Seraph-LoginReason"] == "AUTHENTICATED_FAILED"


def test_rate_limit_429_carries_jiras_headers_and_is_waited_out(tmp_path: Path,
                                                                monkeypatch) -> None:
    drv = JiraDriver(tmp_path, "cloud")
    monkeypatch.setenv(drv.token_variable, "good")
    drv.world.clock = drv.retry_clock  # the bucket refills while the connector sleeps
    drv.api.rate_limit = RateLimit(capacity=3, fill_rate=1, interval=2)
    try:
        drv.seed(250)
        tasks = drv.connector().pull(None).tasks
        assert len(tasks) == 250
        limited = [r for r in drv.server.log if r.status == 429]
        assert limited and drv.retry_clock.slept and all(s == 2 for s in drv.retry_clock.slept)
        for _ in range(4):  # the bucket is empty after the pull; the clock stands still
            answer = requests.get(f"{drv.server.base_url}/rest/api/3/serverInfo", timeout=5)
            if answer.status_code == 429:
                break
        assert answer.status_code == 429
        assert answer.headers["Retry-After"] == "2"
        assert answer.headers["RateLimit-Reason"] == "jira-burst-based"
        assert answer.headers["X-RateLimit-Remaining"] == "0"
    finally:
        drv.server.stop()


# -- options and the sandbox hook -------------------------------------------------------------

def test_options_need_a_scope_and_on_cloud_an_email() -> None:
    with pytest.raises(ValueError, match="projects"):
        JiraOptions(url="https://x.atlassian.net", email="a@b.c")
    with pytest.raises(ValueError, match="email"):
        JiraOptions(url="https://x.atlassian.net", projects=["OPS"])
    with pytest.raises(ValueError, match="project keys"):
        JiraOptions(url="https://x", flavour="datacenter", projects=["ops"])
    opts = JiraOptions(url="https://x/", flavour="datacenter", jql="type = Bug ORDER BY rank")
    from tether_jira.jql import full
    assert full(opts) == "(type = Bug) ORDER BY key ASC" and opts.base_url == "https://x"


def test_sandbox_starts_from_a_workspace_file(tmp_path: Path, monkeypatch) -> None:
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "jira.yaml").write_text("""
flavour: datacenter
token: s3cret
now: 2025-05-05T09:00:00Z
users: [{id: u1, name: alice, display_name: Alice, email: alice@example.com, me: true}]
projects: [{key: WEB, name: Web}]
issues:
  - {project: WEB, summary: The epic, type: Epic}
  - {project: WEB, summary: A story, assignee: alice, epic: WEB-1, story_points: 3,
     links: [{type: Blocks, outward: WEB-1}], comments: [{author: alice, body: hi}]}
""", encoding="utf-8")
    box = JiraSandbox()
    options = box.start(seed, tmp_path / "work")
    try:
        assert options["projects"] == ["WEB"] and "email" not in options  # Data Center
        assert box.env == {"TETHER_SANDBOX_JIRA_TOKEN": "s3cret",
                           "TETHER_SANDBOX_JIRA_HOOK_SECRET": "tether-sandbox-webhook-secret"}
        monkeypatch.setenv(options["token_env"], box.env[options["token_env"]])
        connector = JiraConnector("web", JiraOptions(**options), tmp_path)
        tasks = {t.key: t for t in connector.pull(None).tasks}
        story = tasks["WEB-2"]
        assert (story.assignee, story.epic, story.estimate) == ("Alice", "WEB-1", 3.0)
        assert story.links == (Link("blocks", "WEB-1"),)
    finally:
        box.stop()
    with pytest.raises(TetherError, match="jira.yaml"):
        JiraSandbox().start(tmp_path, tmp_path)


def test_sandbox_refuses_what_jira_refuses(site) -> None:
    key = site.seed(2)[0]
    auth = {"Authorization": "Basic " + base64.b64encode(b"mia@example.com:good").decode()}
    base = f"{site.server.base_url}/rest/api/3"

    def call(method: str, path: str, **kw) -> requests.Response:
        return requests.request(method, base + path, headers=auth, timeout=5, **kw)

    empty_text = {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": ""}]}]}
    assert call("POST", f"/issue/{key}/comment", json={"body": empty_text}).status_code == 400
    wiki = call("POST", f"/issue/{key}/comment", json={"body": "*wiki* on v3"})
    assert wiki.status_code == 400 and "Atlassian Document" in wiki.text
    spaced = call("PUT", f"/issue/{key}", json={"update": {"labels": [{"add": "a b"}]}})
    assert spaced.status_code == 400 and "spaces" in spaced.json()["errors"]["labels"]
    unbounded = call("GET", "/search/jql", params={"jql": "ORDER BY key"})
    assert unbounded.status_code == 400 and "Unbounded" in unbounded.text
    bad_field = call("GET", "/search/jql", params={"jql": "colour = red"})
    assert bad_field.json()["errorMessages"] == [
        "Field 'colour' does not exist or you do not have permission to view it."]
    assert call("GET", "/search/jql", params={"jql": "project = OPS",
                                              "nextPageToken": "junk"}).status_code == 400
    assert call("PUT", f"/issue/{key}/properties/tether", data="").status_code == 400
    assert requests.get(f"{site.server.base_url}/rest/api/3/field", timeout=5,
                        headers={**auth, "Authorization": auth["Authorization"][:-4]}
                        ).status_code == 401


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_sandbox_restarts_with_the_labels_tether_wrote(tmp_path: Path, monkeypatch,
                                                       flavour: str) -> None:
    seed, work = tmp_path / "seed", tmp_path / "work"
    seed.mkdir()
    (seed / "jira.yaml").write_text(f"""
flavour: {flavour}
now: 2025-05-05T09:00:00Z
users: [{{id: u1, name: alice, display_name: Alice, email: alice@example.com, me: true}}]
projects: [{{key: WEB, name: Web}}]
issues:
  - {{project: WEB, summary: A story, labels: [frontend], comments: [{{body: hi}}]}}
""", encoding="utf-8")
    monkeypatch.delenv("TETHER_SANDBOX_JIRA_TOKEN", raising=False)
    box = JiraSandbox()
    options = box.start(seed, work)
    try:
        assert options["token_env"] == "TETHER_SANDBOX_JIRA_TOKEN"
        assert options["token_env"] not in os.environ  # the demo exports box.env itself
        assert options.get("email") == ("alice@example.com" if flavour == "cloud" else None)
        monkeypatch.setenv(options["token_env"], box.env[options["token_env"]])
        connector = JiraConnector("web", JiraOptions(**options), tmp_path)
        [task] = connector.pull(None).tasks
        [result] = connector.apply([WriteOp("web", task.key, OpKind.ADD_LABEL,
                                            "tether:kpi:nps", "t")])
        assert result.ok, result.error
    finally:
        box.stop()
    (seed / "jira.yaml").unlink()  # the restart serves the saved state, not the seed
    again = JiraSandbox()
    options = again.start(seed, work)
    try:
        monkeypatch.setenv(options["token_env"], again.env[options["token_env"]])
        [task] = JiraConnector("web", JiraOptions(**options), tmp_path).pull(None).tasks
        assert set(task.labels) == {"frontend", "tether:kpi:nps"}
        assert again.world is not None and len(again.world.issues["WEB-1"].comments) == 1
    finally:
        again.stop()


def test_sandbox_snapshot_round_trips_a_generated_site(site) -> None:
    from tether_jira.sandbox import snapshot as sandbox_snapshot
    site.seed(30)
    site.world.comment(site.world.issues["OPS-3"].key, {"type": "doc", "content": []})
    site.world.issues["OPS-4"].properties["tether"] = {"comment_id": "1", "digest": "x"}
    data = json.loads(json.dumps(sandbox_snapshot.dump(site.world)))
    world, rate = sandbox_snapshot.load(data)
    assert sandbox_snapshot.dump(world) == data and rate is None
    assert world.issues["OPS-3"].comments[0].created == site.world.issues["OPS-3"].comments[0].created
    assert world.now() == site.world.now() and world.me == site.world.me


@pytest.mark.parametrize("site", FLAVOURS, indirect=True)
def test_minute_precision_jql_never_reports_an_unchanged_issue_again(site) -> None:
    keys = site.seed(10)
    cursor = site.connector().pull(None).cursor
    now = site.world.now()
    for key, seconds in ((keys[1], 70), (keys[2], 200)):  # 09:01:10 and 09:03:20
        site.world.edit(key, summary="moved")
        site.world.issues[key].updated = now + timedelta(seconds=seconds)
    result = site.connector().pull(cursor)
    assert sorted(t.key for t in result.tasks) == sorted(keys[1:3])
    # The mark is 09:03:20, so JQL asks from 09:01 (floored): keys[1] comes back, unchanged.
    again = site.connector().pull(result.cursor)
    assert again.tasks == [] and again.cursor == result.cursor
