"""Asana-specific behaviour of the asana connector, end to end against the Asana sandbox."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import yaml
from pydantic import ValidationError
from tether.clock import FakeClock
from tether.codec import parse_datetime
from tether.errors import SourceError
from tether.model import Annotation, CurrentAnnotation, Finding, OpKind, Task, WriteOp
from tether.pipeline.plan import desired_annotations, plan_ops
from tether.pipeline.render import MARKER, Renderer, digest, mention
from tether.sandbox import Fault, LoggedRequest
from tether.watermark import Watermark
from tether_asana import AsanaConnector, AsanaOptions, AsanaSandbox, events
from tether_asana.richtext import footer_digest
from tether_asana.sandbox.api import AsanaApi
from tether_asana.sandbox.serve import serve
from tether_asana.sandbox.state import AsanaState, Record
from tether_asana.sandbox.views import API

PREFIX = "tether"
TOKEN = "ASANA_TOKEN"


class World:
    """A sandbox workspace: one project with sections, a points field and a label field."""

    def __init__(self, tmp_path: Path, rate_limit: int = 1500):
        self.clock = FakeClock()  # the sandbox and the connector share it: sleeps move both
        self.state = AsanaState(self.clock)
        self.ada = self.state.add_user("Ada Lovelace")["gid"]
        self.points = self.state.add_field("Story Points", "number")
        self.label_field = self.state.add_field("Tether labels", "multi_enum", ["team:red"])
        self.priority = self.state.add_field("Priority", "enum", ["High", "Low"])
        self.project = self.state.add_project(
            "Website", ["Backlog", "Doing", "In Progress", "Done"],
            [self.points["gid"], self.label_field["gid"], self.priority["gid"]])
        self.server = serve(self.state, rate_limit=rate_limit)
        self.tmp_path = tmp_path

    def task(self, name: str = "Task", **kw: object) -> Record:
        kw.setdefault("creator", self.ada)
        kw.setdefault("created_at", self.state.ago(30))
        return self.state.add_task(self.project["gid"], name, **kw)  # type: ignore[arg-type]

    def connector(self, **extra: object) -> AsanaConnector:
        options = {"url": self.server.base_url + API, "projects": [self.project["gid"]],
                   "workspace": self.state.workspace["gid"], "estimate_field": "Story Points",
                   **extra}
        return AsanaConnector("src", AsanaOptions(**options), self.tmp_path, self.clock)

    def requests(self, method: str | None = None, path: str = "") -> list[tuple[str, str, str]]:
        return [(r.method, r.path, r.query) for r in self.server.log
                if (method is None or r.method == method) and r.path.startswith(API + path)]

    @property
    def api(self) -> AsanaApi:
        assert isinstance(self.server.api, AsanaApi)
        return self.server.api

    def writes(self, method: str, path: str = "") -> list[tuple[str, str, int]]:
        """Writes as the service performed them: requests to their endpoint, and the
        actions of each /batch request, as (method, path, status)."""
        sent = [(r.method, r.path, r.status) for r in self.server.log if r.path != API + "/batch"]
        sent += [action for held in self.api.batches for action in held]
        return [w for w in sent if w[0] == method and w[1].startswith(API + path)]

    def batches(self) -> int:
        return len(self.requests("POST", "/batch"))

    def tag_names(self, task: Record) -> set[str]:
        return {self.state.tags[g]["name"] for g in task["tags"]}

    def comments(self, task: Record) -> list[Record]:
        stories = [self.state.stories[g] for g in task["stories"]]
        return [s for s in stories if s["resource_subtype"] == "comment_added"]


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv(TOKEN, "good")
    w = World(tmp_path)
    yield w
    w.server.stop()


def label(task: Record, name: str, kind: OpKind = OpKind.ADD_LABEL) -> WriteOp:
    return WriteOp("src", task["gid"], kind, name, "test")


def one_pass(connector: AsanaConnector, findings: list[Finding]) -> int:
    """read -> plan -> apply, like the pipeline; returns the number of ops."""
    tasks = connector.pull(None).tasks
    current = {f"src:{k}": v for k, v in connector.read_annotations(tasks, PREFIX).items()}
    desired = desired_annotations(tasks, [], findings, {}, PREFIX, True, current)
    ops = plan_ops(tasks, desired, current)
    results = connector.apply(ops)
    assert all(r.ok for r in results), [r.error for r in results]
    return len(ops)


# -- labels as tags ------------------------------------------------------------------------

def test_tags_are_created_once_per_workspace_and_reused(world: World) -> None:
    a, b = world.task("A"), world.task("B")
    first = world.connector()
    assert all(r.ok for r in first.apply([label(a, "tether:kpi:nps"), label(b, "tether:kpi:nps")]))
    second = world.connector()  # a later run: nothing cached, the tag already exists
    assert second.apply([label(world.task("C"), "tether:kpi:nps")])[0].ok
    named = [t for t in world.state.tags.values() if t["name"] == "tether:kpi:nps"]
    assert len(named) == 1
    assert len(world.requests("POST", "/tags")) == 1
    assert {a["tags"][0], b["tags"][0]} == {named[0]["gid"]}


def test_an_existing_tag_of_that_name_is_used_not_duplicated(world: World) -> None:
    existing = world.state.add_tag("tether:stalled", by=world.ada)
    task = world.task()
    assert world.connector().apply([label(task, "tether:stalled")])[0].ok
    assert task["tags"] == [existing["gid"]]
    assert not world.requests("POST", "/tags")


def test_tags_outside_the_namespace_are_never_touched(world: World) -> None:
    human = [world.state.add_tag(n, by=world.ada) for n in
             ("customer", "tetherball", "other:tether:x", "tether")]
    ours = world.state.add_tag("tether:kpi:nps")
    task = world.task(tags=[t["gid"] for t in human] + [ours["gid"]])
    connector = world.connector()
    tasks = connector.pull(None).tasks
    shown = connector.read_annotations(tasks, PREFIX)[task["gid"]]
    assert shown.labels == {"tether:kpi:nps"}
    assert set(tasks[0].labels) == {"customer", "tetherball", "other:tether:x", "tether",
                                    "tether:kpi:nps"}
    findings = [Finding("untethered", "warning", f"src:{task['gid']}", "No KPI.", "r", 0.0,
                        "untethered")]
    one_pass(connector, findings)  # wants tether:untethered only: drops tether:kpi:nps
    assert world.tag_names(task) == {"customer", "tetherball", "other:tether:x", "tether",
                                     "tether:untethered"}
    removed = world.writes("POST", f"/tasks/{task['gid']}/removeTag")
    assert len(removed) == 1


def test_removing_a_label_the_task_lacks_is_a_quiet_success(world: World) -> None:
    task = world.task()
    [result] = world.connector().apply([label(task, "tether:gone", OpKind.REMOVE_LABEL)])
    assert result.ok and not world.requests("POST")


# -- labels as a multi-enum custom field ----------------------------------------------------

def test_custom_field_label_mode_round_trip(world: World) -> None:
    field = world.label_field
    human_option = field["options"][0]["gid"]  # "team:red", chosen by a person
    task = world.task(values={field["gid"]: [human_option]})
    connector = world.connector(label_mode="custom_field", label_field=field["gid"])
    findings = [Finding("untethered", "warning", f"src:{task['gid']}", "No KPI.", "r", 0.0,
                        "untethered"),
                Finding("stalled", "warning", f"src:{task['gid']}", "Idle.", "r2", 0.0,
                        "stalled")]
    assert one_pass(connector, findings) == 3  # two labels, one comment
    names = {o["gid"]: o["name"] for o in field["options"]}
    chosen = [names[g] for g in task["values"][field["gid"]]]
    assert chosen == ["team:red", "tether:stalled", "tether:untethered"]
    assert not task["tags"]  # labels went to the field, not to tags
    puts = world.requests("PUT", f"/tasks/{task['gid']}")
    assert len(puts) == 1  # both labels in one write
    again = world.connector(label_mode="custom_field", label_field=field["gid"])
    assert one_pass(again, findings) == 0
    shown = again.read_annotations(again.pull(None).tasks, PREFIX)[task["gid"]]
    assert shown.labels == {"tether:stalled", "tether:untethered"}
    # findings clear: Tether removes its own options and keeps the person's choice
    assert one_pass(again, []) == 3  # two removals, the comment becomes "resolved"
    assert [names[g] for g in task["values"][field["gid"]]] == ["team:red"]
    created = world.requests("POST", f"/custom_fields/{field['gid']}/enum_options")
    assert len(created) == 2  # one option per new label, never again


def test_custom_field_mode_names_a_field_missing_from_the_project(world: World) -> None:
    other = world.state.add_field("Elsewhere", "multi_enum", [])
    task = world.task()
    connector = world.connector(label_mode="custom_field", label_field=other["gid"])
    [result] = connector.apply([label(task, "tether:kpi:nps")])
    assert not result.ok and other["gid"] in result.error and "add the field" in result.error


def test_options_say_what_each_label_mode_needs() -> None:
    with pytest.raises(ValidationError, match="workspace"):
        AsanaOptions(projects=["1"])
    with pytest.raises(ValidationError, match="label_field"):
        AsanaOptions(projects=["1"], label_mode="custom_field")
    with pytest.raises(ValidationError):
        AsanaOptions(projects=[], workspace="1")


# -- the one comment -----------------------------------------------------------------------

def test_footer_marked_story_is_found_among_human_stories_and_edited_in_place(world: World
                                                                               ) -> None:
    task = world.task()
    st = world.state
    st.comment(task, world.ada, "Any news on this?")
    # A person pasting Tether's footer does not make their comment Tether's.
    st.comment(task, world.ada, "copied:\n— Tether · 0123456789abcdef")
    st.rename(task, "Task, renamed", world.ada)
    connector = world.connector()
    tasks = connector.pull(None).tasks
    body = f"{MARKER}\nTether flagged this item: **untethered**."
    [created] = connector.apply([WriteOp("src", task["gid"], OpKind.CREATE_COMMENT, body, "t")])
    st.comment(task, world.ada, "Thanks, looking.")  # the thread moves on
    shown = connector.read_annotations(tasks, PREFIX)[task["gid"]]
    assert shown.comment_id == created.comment_id
    assert shown.comment_digest == footer_digest(st.stories[created.comment_id]["text"])
    resolved = f"{MARKER}\nResolved."
    [edited] = connector.apply([WriteOp("src", task["gid"], OpKind.UPDATE_COMMENT, resolved,
                                        "t", created.comment_id)])
    assert edited.ok and edited.comment_id == created.comment_id
    texts = [s["text"] for s in world.comments(task)]
    assert texts[0] == "Any news on this?" and texts[3] == "Thanks, looking."
    assert texts[1].startswith("copied:")
    assert texts[2].startswith("Resolved.") and st.stories[created.comment_id]["is_edited"]
    assert MARKER not in texts[2]  # Asana has no hidden text: the footer is the marker


def test_a_stale_create_never_makes_a_second_comment(world: World) -> None:
    task = world.task()
    first = f"{MARKER}\nFirst verdict."
    connector = world.connector()
    [one] = connector.apply([WriteOp("src", task["gid"], OpKind.CREATE_COMMENT, first, "t")])
    # A plan made before that write (or by a second Tether) asks to create again.
    [two] = connector.apply([WriteOp("src", task["gid"], OpKind.CREATE_COMMENT,
                                     f"{MARKER}\nSecond verdict.", "t")])
    assert two.ok and two.comment_id == one.comment_id
    assert [s["text"].split("\n")[0] for s in world.comments(task)] == ["Second verdict."]


def test_stories_are_read_only_for_tasks_the_token_user_follows(world: World) -> None:
    tasks = [world.task(f"T{i}") for i in range(30)]
    connector = world.connector()
    pulled = connector.pull(None).tasks
    connector.apply([WriteOp("src", tasks[4]["gid"], OpKind.CREATE_COMMENT,
                             f"{MARKER}\nFlagged.", "t")])
    before = len(world.server.log)
    shown = connector.read_annotations(pulled, PREFIX)
    made = world.server.log[before:]
    story_reads = [r.path for r in made if r.path.endswith("/stories")]
    assert story_reads == [f"{API}/tasks/{tasks[4]['gid']}/stories"]
    # one events call (no sync token yet: 412 and a fresh one), the task written since the
    # pull fetched again (the pull listed the others), one story read (users/me was cached)
    assert [(r.path, r.status) for r in made][:2] == [(f"{API}/events", 412),
                                                      (f"{API}/tasks/{tasks[4]['gid']}", 200)]
    assert len(made) == 3
    assert shown[tasks[4]["gid"]].comment_id and shown[tasks[5]["gid"]].comment_id is None


def test_an_unfollowed_task_still_gets_one_comment_and_the_hint_heals(world: World) -> None:
    task = world.task()
    findings = [Finding("untethered", "warning", f"src:{task['gid']}", "No KPI.", "r", 0.0)]
    assert one_pass(world.connector(), findings) == 1
    world.state.remove_followers(task, [world.state.me])  # a person removes the bot
    again = world.connector()
    assert one_pass(again, findings) == 1  # read sees no story: plans a create
    assert len(world.comments(task)) == 1  # ...which finds and keeps the existing one
    assert world.state.me in task["followers"]
    assert one_pass(world.connector(), findings) == 0


def test_editing_a_story_a_person_deleted_reports_it_gone_and_writes_nothing(world: World
                                                                              ) -> None:
    task = world.task()
    connector = world.connector()
    [made] = connector.apply([WriteOp("src", task["gid"], OpKind.CREATE_COMMENT,
                                      f"{MARKER}\nOne.", "t")])
    world.state.delete_story(world.state.stories[made.comment_id])
    before = len(world.server.log)
    [again] = connector.apply([WriteOp("src", task["gid"], OpKind.UPDATE_COMMENT,
                                       f"{MARKER}\nTwo.", "t", made.comment_id)])
    assert again.ok and again.gone and again.comment_id is None
    assert world.comments(task) == []
    made_now = [(r.method, r.path, r.status) for r in world.server.log[before:]]
    assert made_now == [("PUT", f"{API}/stories/{made.comment_id}", 404)]  # the refused edit only


def test_quoted_text_cannot_inject_rich_text(world: World) -> None:
    task = world.task()
    reason = 'Title "</body><a href=\'http://evil\'>x</a>" by @ada **bold** <script>'
    body = Renderer().comment([Finding("untethered", "warning", "src:1", reason, "r1", 0.0)], [], {})
    [made] = world.connector().apply([WriteOp("src", task["gid"], OpKind.CREATE_COMMENT, body,
                                              "t")])
    html = world.state.stories[made.comment_id]["html_text"]
    root = ET.fromstring(html)
    assert {e.tag for e in root.iter()} <= {"body", "strong", "em", "code", "ul", "li"}
    assert not root.findall(".//a")  # the quoted tag is escaped text, not an element
    shown = "".join(root.itertext()).replace("\u200b", "")
    assert "</body><a href='http://evil'>x</a>" in shown  # shown as text, not as markup
    assert "@\u200bada" in world.state.stories[made.comment_id]["text"]


def test_editing_a_persons_comment_fails_alone(world: World) -> None:
    task, other = world.task("A"), world.task("B")
    human = world.state.comment(task, world.ada, "Mine.")
    results = world.connector().apply([
        WriteOp("src", task["gid"], OpKind.UPDATE_COMMENT, f"{MARKER}\nX.", "t", human["gid"]),
        label(other, "tether:kpi:nps")])
    assert not results[0].ok and "403" in results[0].error and "stories:write" in results[0].error
    assert results[1].ok and world.state.stories[human["gid"]]["text"] == "Mine."


# -- rich text, mentions, recovery ------------------------------------------------------------

def test_comments_are_written_as_rich_text_and_plain_text_is_derived(world: World) -> None:
    task = world.task()
    body = f"{MARKER}\n**Tether** flagged _this_:\n\n- **stalled** (`r1`)\n  - What to do: ask"
    [made] = world.connector().apply([WriteOp("src", task["gid"], OpKind.CREATE_COMMENT, body,
                                              "t")])
    story = world.state.stories[made.comment_id]
    assert story["html_text"] == (
        "<body><strong>Tether</strong> flagged <em>this</em>:\n<ul><li><strong>stalled</strong> "
        "(<code>r1</code>)<ul><li>What to do: ask</li></ul></li></ul>\n"
        f"— Tether · {digest(body)}</body>")
    assert story["text"] == (f"Tether flagged this:\n• stalled (r1)\n  • What to do: ask\n"
                             f"— Tether · {digest(body)}")
    assert footer_digest(story["text"]) == digest(body)


@pytest.mark.parametrize("html_text, message", [
    ("<body>unclosed <strong>bold</body>", "html_text: XML is invalid"),
    ("plain words", "html_text: XML is invalid"),
    ("<p>not a body</p>", "html_text: The root element must be <body>"),
    ("<body><img src='x'/></body>", "html_text: Tag <img> is not allowed in a story"),
    ("<body><h1>Title</h1></body>", "html_text: Tag <h1> is not allowed in a story"),
    ("<body><strong style='x'>b</strong></body>", "html_text: Attribute 'style' is not allowed"),
    ("<body><a onclick='x' data-asana-gid='1'/></body>", "Attribute 'onclick' is not allowed"),
])
def test_the_sandbox_rejects_html_text_the_service_rejects(world: World, html_text: str,
                                                           message: str) -> None:
    task = world.task()
    url = f"{world.server.base_url}{API}/tasks/{task['gid']}/stories"
    response = requests.post(url, json={"data": {"html_text": html_text}}, timeout=5,
                             headers={"Authorization": "Bearer good"})
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert message in error["message"] and error["help"]
    assert world.comments(task) == []


def test_the_sandbox_takes_one_of_text_and_html_text(world: World) -> None:
    task = world.task()
    url = f"{world.server.base_url}{API}/tasks/{task['gid']}/stories"
    both = {"text": "a", "html_text": "<body>a</body>"}
    response = requests.post(url, json={"data": both}, timeout=5,
                             headers={"Authorization": "Bearer good"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == \
        "You may only specify one of text and html_text"


def test_a_mention_token_becomes_an_asana_user_mention(world: World) -> None:
    task = world.task()
    token = mention(world.ada)
    assert token is not None
    body = (f"{MARKER}\nDecision needed from {token}, owner of `<@{world.ada}>`; "
            f"not \\<@{world.ada}\\> nor <@not-a-gid>.")
    [made] = world.connector().apply([WriteOp("src", task["gid"], OpKind.CREATE_COMMENT, body,
                                              "t")])
    story = world.state.stories[made.comment_id]
    root = ET.fromstring(story["html_text"])
    assert [a.attrib for a in root.iter("a")] == [{"data-asana-gid": world.ada}]
    text = "".join(root.itertext())
    assert f"owner of <@{world.ada}>; not <@{world.ada}> nor <@not-a-gid>." in text
    assert story["text"].startswith(
        f"Decision needed from https://app.asana.com/0/profile/{world.ada}, owner of")


def test_a_rerun_after_a_comment_with_a_mention_plans_no_writes(world: World) -> None:
    task = world.task()
    body = f"{MARKER}\nDecision needed from {mention(world.ada)}: **stalled**."
    ref = f"src:{task['gid']}"
    connector = world.connector()
    tasks = connector.pull(None).tasks
    want = {ref: Annotation(ref, frozenset({"tether:stalled"}), body)}
    for expected in (2, 0):  # the first run writes the label and the comment, the second nothing
        fresh = world.connector()
        current = {f"src:{k}": v for k, v in fresh.read_annotations(tasks, PREFIX).items()}
        ops = plan_ops(tasks, want, current)
        assert len(ops) == expected, ops
        assert all(r.ok for r in fresh.apply(ops))
    assert len(world.comments(task)) == 1


def test_recover_finds_the_story_on_a_task_the_bot_no_longer_follows(world: World) -> None:
    task = world.task()
    connector = world.connector()
    tasks = connector.pull(None).tasks
    [made] = connector.apply([WriteOp("src", task["gid"], OpKind.CREATE_COMMENT,
                                      f"{MARKER}\nOne.", "t")])
    world.state.remove_followers(task, [world.state.me])  # a person removes the bot
    fresh = world.connector()
    assert fresh.read_annotations(tasks, PREFIX)[task["gid"]].comment_id is None  # the hint
    shown = fresh.recover(tasks, PREFIX)[task["gid"]]
    assert shown.comment_id == made.comment_id
    assert shown.comment_digest == digest(f"{MARKER}\nOne.")
    [edited] = fresh.apply([WriteOp("src", task["gid"], OpKind.UPDATE_COMMENT,
                                    f"{MARKER}\nTwo.", "t", shown.comment_id)])
    assert edited.ok and edited.comment_id == made.comment_id
    assert [s["text"].split("\n")[0] for s in world.comments(task)] == ["Two."]
    assert world.state.me in task["followers"]  # healed: the next plain read sees it again
    assert world.connector().read_annotations(tasks, PREFIX)[task["gid"]].comment_id


def test_a_lost_reply_to_the_story_post_is_found_not_reposted(world: World) -> None:
    task = world.task()
    dropped: list[int] = []

    def drop_story_post(r: LoggedRequest) -> bool:
        if r.method == "POST" and r.path.endswith("/stories") and not dropped:
            dropped.append(r.number)
            return True
        return False

    world.server.after_handling = drop_story_post  # alone, a story POST is not batched
    [made] = world.connector().apply([WriteOp("src", task["gid"], OpKind.CREATE_COMMENT,
                                              f"{MARKER}\nOne.", "t")])
    world.server.after_handling = None
    assert dropped and made.ok
    [story] = world.comments(task)
    assert made.comment_id == story["gid"]
    assert len(world.requests("POST", f"/tasks/{task['gid']}/stories")) == 1


# -- the story memory and the Events API --------------------------------------------------

def rerun(world: World, memory: dict[str, Any], findings: list[Finding]
          ) -> tuple[int, list[LoggedRequest], dict[str, Any]]:
    """One pass by a fresh connector (a new process) given ``memory`` as the state store
    keeps it (JSON); returns the ops it planned, the requests it made and its memory after."""
    connector = world.connector()
    connector.memory = json.loads(json.dumps(memory))
    before = len(world.server.log)
    ops = one_pass(connector, findings)
    return ops, world.server.log[before:], connector.memory


def story_reads(made: list[LoggedRequest]) -> list[str]:
    return [r.path.split("/")[-2] for r in made if r.method == "GET" and r.path.endswith("/stories")]


def flag(*tasks: Record) -> list[Finding]:
    return [Finding("untethered", "warning", f"src:{t['gid']}", "No KPI.", "r", 0.0, "untethered")
            for t in tasks]


def test_a_quiet_rerun_reads_no_story_list(world: World) -> None:
    tasks = [world.task(f"T{i}") for i in range(6)]
    findings = flag(*tasks[:4])
    ops, made, memory = rerun(world, {}, findings)
    assert ops == 8  # a label and a comment on each flagged task
    assert [(r.path, r.status) for r in made if r.path.endswith("/events")] == [
        (f"{API}/events", 412)]  # no sync token yet: a fresh one, and everything read
    for _ in range(2):  # Tether's own writes since are in the events, and known as its own
        ops, made, memory = rerun(world, memory, findings)
        assert ops == 0 and story_reads(made) == []
        assert [(r.method, r.path, r.status) for r in made] == [
            ("GET", f"{API}/tasks", 200), ("GET", f"{API}/events", 200)]
        # the (full) pull brings the labels and followers too; no listing, no /users/me
    assert set(memory["stories"]) == {t["gid"] for t in tasks}
    assert memory["sync"] == {world.project["gid"]: memory["sync"][world.project["gid"]]}


def test_a_person_deleting_tethers_story_is_seen_next_run_through_the_events(
        world: World) -> None:
    kept, deleted = world.task("Kept"), world.task("Deleted")
    _, _, memory = rerun(world, {}, flag(kept, deleted))
    [story] = world.comments(deleted)
    world.state.delete_story(story, by=world.ada)
    world.state.comment(kept, world.ada, "Thanks, looking.")  # another comment: read again
    connector = world.connector()
    connector.memory = memory
    tasks = connector.pull(None).tasks
    before = len(world.server.log)
    shown = connector.read_annotations(tasks, PREFIX)
    assert shown[deleted["gid"]].comment_id is None
    assert shown[kept["gid"]].comment_id == world.comments(kept)[0]["gid"]
    assert sorted(story_reads(world.server.log[before:])) == sorted([kept["gid"], deleted["gid"]])
    assert connector.memory["stories"][deleted["gid"]] is None
    again = world.connector()
    again.memory = connector.memory
    before = len(world.server.log)
    again.read_annotations(tasks, PREFIX)
    assert story_reads(world.server.log[before:]) == []


def test_an_expired_or_unknown_sync_token_means_one_full_read_then_incremental(
        world: World) -> None:
    tasks = [world.task(f"T{i}") for i in range(3)]
    findings = flag(*tasks)
    _, _, memory = rerun(world, {}, findings)
    for spoil in ("expire", "unknown"):
        if spoil == "expire":
            world.clock.current += timedelta(hours=25)  # tokens live at most 24 hours
        else:
            memory["sync"][world.project["gid"]] = "de4774f6915eae04714ca93bb2f5ee81"
        ops, made, memory = rerun(world, memory, findings)
        assert ops == 0
        assert [r.status for r in made if r.path.endswith("/events")] == [412]
        assert sorted(story_reads(made)) == sorted(t["gid"] for t in tasks)  # the full read
        ops, made, memory = rerun(world, memory, findings)  # the new token: incremental again
        assert ops == 0 and story_reads(made) == []
        assert [r.status for r in made if r.path.endswith("/events")] == [200]


def test_events_are_read_100_a_call_and_too_many_mean_one_full_read(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    tasks = [world.task(f"T{i}") for i in range(3)]
    findings = flag(*tasks)
    _, _, memory = rerun(world, {}, findings)
    _, _, memory = rerun(world, memory, findings)  # reads the events of its own writes

    def busy_day() -> None:  # 300 events: each rename is a change and a system story
        for i in range(150):
            world.state.rename(tasks[2], f"T2 ({i})", world.ada)

    busy_day()
    ops, made, memory = rerun(world, memory, findings)
    assert ops == 0 and story_reads(made) == []
    assert [r.status for r in made if r.path.endswith("/events")] == [200, 200, 200]
    monkeypatch.setattr(events, "MAX_CALLS", 2)  # replaying more than that costs more
    busy_day()
    ops, made, memory = rerun(world, memory, findings)
    assert ops == 0 and sorted(story_reads(made)) == sorted(t["gid"] for t in tasks)
    assert [r.status for r in made if r.path.endswith("/events")] == [200, 200, 412]
    ops, made, memory = rerun(world, memory, findings)
    assert ops == 0 and story_reads(made) == []


def test_recover_never_trusts_the_memory(world: World) -> None:
    task = world.task()
    _, _, memory = rerun(world, {}, flag(task))
    memory["stories"][task["gid"]] = ["1299999999999999", "0123456789abcdef"]  # a wrong note
    connector = world.connector()
    connector.memory = memory
    tasks = connector.pull(None).tasks
    [story] = world.comments(task)
    assert connector.recover(tasks, PREFIX)[task["gid"]].comment_id == story["gid"]
    assert connector.memory["stories"][task["gid"]][0] == story["gid"]  # and corrects it


def test_the_memory_is_only_a_hint_for_writes(world: World) -> None:
    """A create still looks first: a note claiming no story never makes a second comment."""
    task = world.task()
    _, _, memory = rerun(world, {}, flag(task))
    _, _, memory = rerun(world, memory, flag(task))  # the events of that write are read
    memory["stories"][task["gid"]] = None  # wrong: Tether's story is there
    connector = world.connector()
    connector.memory = memory
    tasks = connector.pull(None).tasks
    assert connector.read_annotations(tasks, PREFIX)[task["gid"]].comment_id is None
    [made] = connector.apply([WriteOp("src", task["gid"], OpKind.CREATE_COMMENT,
                                      f"{MARKER}\nAgain.", "t")])
    [story] = world.comments(task)
    assert made.ok and made.comment_id == story["gid"] and story["text"].startswith("Again.")


def test_a_story_event_on_another_project_task_or_a_system_story_changes_nothing(
        world: World) -> None:
    task, other = world.task("A"), world.task("B")
    _, _, memory = rerun(world, {}, flag(task))
    world.state.rename(other, "B, renamed", world.ada)  # a task change and a system story
    world.state.rename(task, "A, renamed", world.ada)
    world.state.add_tag_to(task, world.state.add_tag("customer"), world.ada)
    ops, made, _ = rerun(world, memory, flag(task))
    assert ops == 0 and story_reads(made) == []


# -- labels and follows noted between passes (tether_asana.shown) ----------------------------

class Passes:
    """Passes as the pipeline runs them, each by a fresh connector given what the state store
    keeps: the connector's memory, the cursor, the known comments and the task snapshot."""

    def __init__(self, world: World, **options: object):
        self.world, self.options = world, options
        self.memory: dict[str, Any] = {}
        self.cursor: str | None = None
        self.known: dict[str, str | None] = {}
        self.snapshot: dict[str, Task] = {}

    def run(self, findings: list[Finding], write: bool = True
            ) -> tuple[dict[str, CurrentAnnotation], list[LoggedRequest], list[str]]:
        """Pull from the cursor, read, then (``write``) plan and apply; returns what the read
        saw, the requests made and the keys the pull brought."""
        connector = self.world.connector(**self.options)
        connector.memory = json.loads(json.dumps(self.memory))
        connector.known_comments = dict(self.known)
        before = len(self.world.server.log)
        pulled = connector.pull(self.cursor)
        self.snapshot.update({t.key: t for t in pulled.tasks})
        tasks = list(self.snapshot.values())
        seen = connector.read_annotations(tasks, PREFIX)
        made = self.world.server.log[before:]
        if write:
            current = {f"src:{k}": v for k, v in seen.items()}
            desired = desired_annotations(tasks, [], findings, {}, PREFIX, True, current)
            results = connector.apply(plan_ops(tasks, desired, current))
            assert all(r.ok for r in results), [r.error for r in results]
            self.known.update({r.op.key: r.comment_id for r in results if r.comment_id})
        self.memory, self.cursor = connector.memory, pulled.cursor
        return seen, made, [t.key for t in pulled.tasks]

    def cold(self) -> dict[str, CurrentAnnotation]:
        """What a connector with no memory reads when it recovers every task."""
        return self.world.connector(**self.options).recover(list(self.snapshot.values()), PREFIX)


def same(shown: dict[str, CurrentAnnotation]) -> dict[str, tuple[Any, ...]]:
    """What a read says, less the comment body (memory keeps only its id and digest)."""
    return {k: (v.labels, v.comment_id, v.comment_digest) for k, v in shown.items()}


def two_projects(world: World, **options: object) -> tuple[Passes, list[Record]]:
    """Tasks in the world's project and a second one (one task in both), modified 20 days
    and more ago; passes over both projects."""
    mobile = world.state.add_project("Mobile", ["Backlog"], [world.label_field["gid"]])
    tasks = [world.task(f"W{i}", modified_at=world.state.ago(20 + i)) for i in range(5)]
    tasks += [world.state.add_task(mobile["gid"], f"M{i}", creator=world.ada,
                                   created_at=world.state.ago(40),
                                   modified_at=world.state.ago(25 + i)) for i in range(3)]
    tasks[0]["memberships"].append({"project": mobile["gid"],
                                    "section": mobile["sections"][0]["gid"]})
    return Passes(world, projects=[world.project["gid"], mobile["gid"]], **options), tasks


def later(world: World) -> None:
    world.clock.current += timedelta(minutes=10)  # passes minutes apart, past the overlap


def listings(made: list[LoggedRequest]) -> list[str]:
    """The /tasks requests that list a whole project (no modified_since)."""
    return [r.query for r in made if r.path == f"{API}/tasks" and "modified_since" not in r.query]


@pytest.mark.parametrize("mode", ["tags", "custom_field"])
def test_a_quiet_pass_reads_only_the_incremental_pulls_and_the_events(world: World,
                                                                       mode: str) -> None:
    fields = {"label_mode": mode, "label_field": world.label_field["gid"]}
    passes, tasks = two_projects(world, **(fields if mode == "custom_field" else {}))
    flagged = [tasks[0], tasks[2], tasks[6]]
    passes.run(flag(*flagged))  # the first pass: labels and comments written
    assert all(world.comments(t) for t in flagged)
    assert all(passes.cold()[t["gid"]].labels for t in flagged)
    later(world)
    _, made, pulled = passes.run(flag(*flagged))
    assert set(pulled) == {t["gid"] for t in flagged}  # Tether's writes moved modified_at
    assert listings(made) == []
    later(world)
    shown, made, pulled = passes.run(flag(*flagged))  # quiet: nothing changed since
    assert pulled == []
    projects = passes.options["projects"]
    assert isinstance(projects, list)
    assert sorted((r.method, r.path, parse_qs(r.query).get("project", [""])[0]) for r in made) \
        == sorted([("GET", f"{API}/tasks", p) for p in projects]
                  + [("GET", f"{API}/events", "") for _ in projects])
    assert all("modified_since" in r.query for r in made if r.path == f"{API}/tasks")
    assert same(shown) == same(passes.cold())
    assert {k for k, v in shown.items() if v.comment_id} == {t["gid"] for t in flagged}
    noted = passes.memory["shown"]["tasks"]
    assert set(noted) == {t["gid"] for t in flagged}  # only tasks showing something
    assert passes.cursor and passes.memory["shown"]["asof"] == digest(passes.cursor)


def test_a_quiet_pass_sees_what_a_person_changed_between_passes(world: World) -> None:
    passes, tasks = two_projects(world)
    flagged = tasks[:4] + [tasks[6]]
    passes.run(flag(*flagged))
    later(world)
    passes.run(flag(*flagged))
    later(world)
    tagged, untagged, uncommented, unfollowed = tasks[5], tasks[1], tasks[2], tasks[3]
    world.state.add_tag_to(tagged, world.state.add_tag("tether:by-hand", by=world.ada), world.ada)
    [ours] = [g for g in untagged["tags"] if world.state.tags[g]["name"].startswith("tether:")]
    world.state.remove_tag_from(untagged, world.state.tags[ours], world.ada)
    world.state.delete_story(world.comments(uncommented)[0], by=world.ada)
    world.state.remove_followers(unfollowed, [world.state.me], by=world.ada)
    world.state.remove_followers(tasks[6], [world.state.me], by=world.ada)
    shown, made, pulled = passes.run(flag(*flagged), write=False)
    assert set(pulled) == {tagged["gid"], untagged["gid"], uncommented["gid"]}
    assert listings(made) == []
    assert story_reads(made) == [uncommented["gid"]]  # its note went with the story
    assert same(shown) == same(passes.cold())
    assert shown[tagged["gid"]].labels == {"tether:by-hand"}
    assert shown[untagged["gid"]].labels == frozenset()
    assert shown[uncommented["gid"]].comment_id is None
    assert shown[unfollowed["gid"]].comment_id == world.comments(unfollowed)[0]["gid"]


def test_a_task_that_left_the_projects_is_fetched_each_pass(world: World) -> None:
    passes, tasks = two_projects(world)
    passes.run(flag(tasks[1]))
    later(world)
    passes.run(flag(tasks[1]))
    later(world)
    leaving = tasks[1]  # a person moves it to a project Tether does not read
    world.state._event("removed", leaving, world.ada,
                       parent=world.state._ref("project", world.project))
    elsewhere = world.state.add_project("Elsewhere")
    leaving["memberships"] = [{"project": elsewhere["gid"],
                               "section": elsewhere["sections"][0]["gid"]}]
    shown, made, _ = passes.run([], write=False)
    assert (f"{API}/tasks/{leaving['gid']}") in [r.path for r in made] and listings(made) == []
    assert passes.memory["shown"]["tasks"][leaving["gid"]][0] & 2  # noted as outside
    later(world)
    world.state.add_tag_to(leaving, world.state.add_tag("tether:by-hand"), world.ada)
    shown, made, pulled = passes.run([], write=False)
    assert pulled == [] and f"{API}/tasks/{leaving['gid']}" in [r.path for r in made]
    assert "tether:by-hand" in shown[leaving["gid"]].labels
    assert same(shown) == same(passes.cold())


def test_a_broken_cursor_chain_means_one_listing_then_quiet_again(world: World) -> None:
    passes, tasks = two_projects(world)
    flagged = tasks[:3]
    passes.run(flag(*flagged))
    later(world)
    passes.run(flag(*flagged))
    later(world)
    kept = json.loads(json.dumps(passes.memory))
    changed = tasks[4]
    world.state.add_tag_to(changed, world.state.add_tag("tether:by-hand"), world.ada)
    later(world)
    world.state.rename(tasks[5], "Renamed", world.ada)  # the newest change: the mark moves on
    passes.run(flag(*flagged), write=False)  # pulls the tag; its memory is lost in a crash
    passes.memory = kept  # ...after the store saved the cursor
    later(world)
    shown, made, pulled = passes.run(flag(*flagged), write=False)
    assert changed["gid"] not in pulled  # the pull alone would not see the tag
    assert len(listings(made)) == 2  # the memory is not trusted: each project listed
    assert shown[changed["gid"]].labels == {"tether:by-hand"}
    assert same(shown) == same(passes.cold())
    later(world)
    shown, made, _ = passes.run(flag(*flagged), write=False)
    assert listings(made) == [] and shown[changed["gid"]].labels == {"tether:by-hand"}
    passes.memory["shown"]["asof"] = "a cursor of some other pass"
    later(world)
    shown, made, _ = passes.run(flag(*flagged), write=False)
    assert len(listings(made)) == 2 and same(shown) == same(passes.cold())


def test_follows_noted_for_another_user_mean_one_listing(world: World) -> None:
    passes, tasks = two_projects(world)
    passes.run(flag(tasks[0]))
    later(world)
    passes.run(flag(tasks[0]))
    later(world)
    passes.memory["shown"]["me"] = "1299999999999999"  # the token now belongs to someone else
    world.state.comment(tasks[0], world.ada, "A person comments: the note must be re-read.")
    del passes.memory["stories"][tasks[2]["gid"]]  # and one task has no note at all
    shown, made, _ = passes.run([], write=False)
    assert len(listings(made)) == 2
    assert same(shown) == same(passes.cold())
    assert passes.memory["shown"]["me"] == world.state.me


# -- batched writes ----------------------------------------------------------------------------

def test_25_tag_changes_over_5_tasks_take_3_batch_requests(world: World) -> None:
    tasks = [world.task(f"T{i}") for i in range(5)]
    names = [f"tether:l{i}" for i in range(5)]
    for name in names:
        world.state.add_tag(name)
    connector = world.connector()
    for kind in (OpKind.ADD_LABEL, OpKind.REMOVE_LABEL):
        before = len(world.server.log)
        results = connector.apply([label(t, n, kind) for t in tasks for n in names])
        assert all(r.ok for r in results), [r.error for r in results]
        made = world.server.log[before:]
        assert [(r.method, r.path) for r in made if r.method != "GET"] == [
            ("POST", f"{API}/batch")] * 3
        assert [len(b) for b in world.api.batches[-3:]] == [10, 10, 5]
        assert all(world.tag_names(t) == (set(names) if kind is OpKind.ADD_LABEL else set())
                   for t in tasks)


def test_one_failing_action_in_a_batch_fails_only_its_op(world: World) -> None:
    a, b = world.task("A"), world.task("B")
    human = world.state.comment(a, world.ada, "Mine.")
    results = world.connector().apply([
        label(a, "tether:x"),
        WriteOp("src", "1288888888888888", OpKind.ADD_LABEL, "tether:x", "t"),  # no such task
        label(b, "tether:x"),
        WriteOp("src", b["gid"], OpKind.CREATE_COMMENT, f"{MARKER}\nFlagged.", "t"),
        WriteOp("src", a["gid"], OpKind.UPDATE_COMMENT, f"{MARKER}\nX.", "t", human["gid"])])
    assert [r.ok for r in results] == [True, False, True, True, False]
    assert "task 1288888888888888 not found" in (results[1].error or "")
    assert "403" in (results[4].error or "") and "stories:write" in (results[4].error or "")
    assert world.batches() == 1 and [s for _, _, s in world.api.batches[0]] == [
        200, 404, 200, 201, 403]
    assert world.tag_names(a) == world.tag_names(b) == {"tether:x"}
    assert results[3].comment_id == world.comments(b)[0]["gid"]
    assert world.state.stories[human["gid"]]["text"] == "Mine."


def test_a_429_on_a_batch_retries_the_whole_batch_after_retry_after(world: World) -> None:
    tasks = [world.task(f"T{i}") for i in range(3)]
    world.state.add_tag("tether:x")
    connector = world.connector()
    at = len(world.server.log) + 2  # the tag listing, then the batch
    world.server.faults.add(Fault("status", at=frozenset({at}), status=429,
                                  headers={"Retry-After": "7"},
                                  body={"errors": [{"message": "You've made too many requests"}]}))
    results = connector.apply([label(t, "tether:x") for t in tasks])
    assert all(r.ok for r in results)
    assert world.clock.slept == [7] and world.batches() == 2
    assert [r.status for r in world.server.log if r.path == f"{API}/batch"] == [429, 200]
    assert all(world.tag_names(t) == {"tether:x"} for t in tasks)


def test_a_lost_answer_to_a_batch_is_rechecked_never_reposted(world: World) -> None:
    a, b = world.task("A"), world.task("B")
    world.state.add_tag("tether:x")
    dropped: list[int] = []

    def drop_first_batch(r: LoggedRequest) -> bool:
        if r.path == f"{API}/batch" and not dropped:
            dropped.append(r.number)
            return True
        return False

    world.server.after_handling = drop_first_batch
    results = world.connector().apply([
        WriteOp("src", a["gid"], OpKind.CREATE_COMMENT, f"{MARKER}\nOne.", "t"),
        WriteOp("src", b["gid"], OpKind.CREATE_COMMENT, f"{MARKER}\nTwo.", "t"),
        label(a, "tether:x")])
    world.server.after_handling = None
    assert dropped and all(r.ok for r in results), [r.error for r in results]
    assert [len(world.comments(t)) for t in (a, b)] == [1, 1]
    assert [r.comment_id for r in results[:2]] == [world.comments(a)[0]["gid"],
                                                  world.comments(b)[0]["gid"]]
    # the resend looked first: both stories had landed, only the tag write went again
    assert len(world.writes("POST", f"/tasks/{a['gid']}/stories")) == 1
    assert len(world.writes("POST", f"/tasks/{a['gid']}/addTag")) == 2


def test_an_add_and_a_remove_of_one_tag_never_share_a_batch(world: World) -> None:
    tasks = [world.task(f"T{i}") for i in range(3)]
    world.state.add_tag("tether:x")
    results = world.connector().apply(
        [label(t, "tether:x") for t in tasks] + [label(tasks[0], "tether:x", OpKind.REMOVE_LABEL)])
    assert all(r.ok for r in results)
    assert [len(b) for b in world.api.batches] == [3]  # the remove waited: it went alone
    assert world.tag_names(tasks[0]) == set() and world.tag_names(tasks[1]) == {"tether:x"}


def test_two_creates_on_one_task_in_one_apply_make_one_comment(world: World) -> None:
    task = world.task()
    results = world.connector().apply([
        WriteOp("src", task["gid"], OpKind.CREATE_COMMENT, f"{MARKER}\nOne.", "t"),
        WriteOp("src", task["gid"], OpKind.CREATE_COMMENT, f"{MARKER}\nTwo.", "t")])
    [story] = world.comments(task)  # the second looked again before it was sent: an edit
    assert [r.comment_id for r in results] == [story["gid"]] * 2
    assert story["text"].startswith("Two.")


# -- the sandbox's Events API and Batch API ---------------------------------------------------

@pytest.fixture(scope="module")
def spec() -> Any:
    from test_asana_contract import OAS, Spec
    if not OAS.is_file():
        pytest.skip(f"Asana's OpenAPI file is not at {OAS}")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return Spec(yaml.load(OAS.read_text(encoding="utf-8"), Loader=loader))


def call(world: World, method: str, path: str, **kw: Any) -> requests.Response:
    return requests.request(method, world.server.base_url + API + path, timeout=5,
                            headers={"Authorization": "Bearer good"}, **kw)


def test_the_sandbox_serves_events_as_asana_does(world: World, spec: Any) -> None:
    project = world.project["gid"]
    first = call(world, "GET", "/events", params={"resource": project})
    assert first.status_code == 412  # the first call, without a token, makes one
    assert first.json()["errors"][0]["message"].startswith("Sync token invalid or too old")
    spec.validate("GET", f"{API}/events", 412, first.json())
    token = first.json()["sync"]
    task = world.task("New")
    grace = world.state.add_user("Grace Hopper")["gid"]
    story = world.state.comment(task, grace, "Hello")  # she now follows the task too
    world.state.edit_comment(story, "Hello again", "<body>Hello again</body>")
    world.state.delete_story(story, by=grace)
    answer = call(world, "GET", "/events", params={"resource": project, "sync": token})
    assert answer.status_code == 200
    body = answer.json()
    # parent "will be `null` for other event types" than added/removed, the schema's prose
    # says; its nullable flag is missing (inside allOf), so an empty parent stands in here
    spec.validate("GET", f"{API}/events", 200, {**body, "data": [
        {**e, "parent": e["parent"] or {}} for e in body["data"]]})
    assert body["has_more"] is False and body["sync"] not in (token, "")
    seen = [(e["action"], e["resource"]["resource_type"], (e["parent"] or {}).get("gid"))
            for e in body["data"]]
    assert seen == [("added", "task", project), ("added", "story", task["gid"]),
                    ("changed", "task", None), ("changed", "story", None),
                    ("removed", "story", task["gid"])]
    added = body["data"][1]
    assert added["resource"] == {"gid": story["gid"], "resource_type": "story",
                                 "resource_subtype": "comment_added"}
    assert added["parent"] == {"gid": task["gid"], "name": "New", "resource_type": "task",
                               "resource_subtype": "default_task"}
    assert added["user"] == {"gid": grace, "name": "Grace Hopper", "resource_type": "user"}
    assert "change" not in added and added["type"] == "story"
    assert body["data"][2]["change"] == {"field": "followers", "action": "added", "added_value": {
        "gid": grace, "name": "Grace Hopper", "resource_type": "user"}}
    assert body["data"][3]["change"] == {"field": "text", "action": "changed"}
    again = call(world, "GET", f"/projects/{project}/events", params={"sync": token})
    assert again.json()["data"] == body["data"]  # asking again with a token is safe
    later = call(world, "GET", "/events", params={"resource": project, "sync": body["sync"]})
    assert later.json()["data"] == [] and later.json()["has_more"] is False
    only = call(world, "GET", "/events", params={"resource": project, "sync": body["sync"],
                                                  "opt_fields": "action,resource"})
    assert only.status_code == 200
    for spoiled in ("nope", call(world, "GET", "/events", params={
            "resource": task["gid"]}).json()["sync"]):  # unknown, or another resource's
        gone = call(world, "GET", "/events", params={"resource": project, "sync": spoiled})
        assert gone.status_code == 412 and gone.json()["sync"]
    missing = call(world, "GET", "/events")
    assert missing.status_code == 400 and "resource" in missing.json()["errors"][0]["message"]


def test_the_sandbox_pages_events_100_at_a_time_and_forgets_them_after_a_day(
        world: World) -> None:
    project = world.project["gid"]
    token = call(world, "GET", "/events", params={"resource": project}).json()["sync"]
    for i in range(120):
        world.task(f"T{i}")
    page = call(world, "GET", "/events", params={"resource": project, "sync": token}).json()
    assert len(page["data"]) == 100 and page["has_more"] is True
    rest = call(world, "GET", "/events", params={"resource": project, "sync": page["sync"]})
    assert len(rest.json()["data"]) == 20 and rest.json()["has_more"] is False
    world.clock.current += timedelta(hours=25)
    expired = call(world, "GET", "/events", params={"resource": project,
                                                     "sync": rest.json()["sync"]})
    assert expired.status_code == 412


def test_the_sandbox_batch_answers_each_action_in_order(world: World, spec: Any) -> None:
    task = world.task()
    tag = world.state.add_tag("tether:x")
    actions = [
        {"method": "post", "relative_path": f"/tasks/{task['gid']}/addTag",
         "data": {"tag": tag["gid"]}},
        {"method": "get", "relative_path": f"/tasks/{task['gid']}",
         "options": {"fields": ["name", "tags.name"]}},
        {"method": "post", "relative_path": f"/tasks/{task['gid']}/stories",
         "data": {"text": "Hi"}, "options": {"fields": ["created_at"]}},
        {"method": "post", "relative_path": "/tasks/1288888888888888/addTag",
         "data": {"tag": tag["gid"]}},
        {"method": "get", "relative_path": "/not_found"},
        {"method": "post", "relative_path": "/batch", "data": {"actions": []}},
    ]
    answer = call(world, "POST", "/batch", json={"data": {"actions": actions}})
    assert answer.status_code == 200
    spec.validate("POST", f"{API}/batch", 200, answer.json())
    results = answer.json()["data"]
    assert [r["status_code"] for r in results] == [200, 200, 201, 404, 404, 400]
    assert results[0] == {"body": {"data": {}}, "headers": {}, "status_code": 200}
    assert results[1]["body"]["data"]["tags"] == [{"gid": tag["gid"], "name": "tether:x"}]
    story = results[2]["body"]["data"]
    assert set(story) == {"gid", "created_at"}
    assert results[2]["headers"] == {"location": f"{API}/stories/{story['gid']}"}
    assert results[3]["body"]["errors"][0]["message"] == "task: Unknown object: 1288888888888888"
    assert results[4]["body"]["errors"][0]["message"] == "No matching route for request"
    assert world.tag_names(task) == {"tether:x"} and len(world.comments(task)) == 1
    for bad in ([], [actions[0]] * 11):
        refused = call(world, "POST", "/batch", json={"data": {"actions": bad}})
        assert refused.status_code == 400 and refused.json()["errors"][0]["message"]


def test_a_batch_counts_each_action_against_the_rate_limit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN, "good")
    limited = World(tmp_path, rate_limit=5)
    try:
        task = limited.task()
        one = {"method": "get", "relative_path": f"/tasks/{task['gid']}"}
        assert call(limited, "POST", "/batch", json={"data": {"actions": [one] * 5}}
                    ).status_code == 200
        refused = call(limited, "POST", "/batch", json={"data": {"actions": [one] * 2}})
        assert refused.status_code == 429 and refused.headers["Retry-After"]
    finally:
        limited.server.stop()


# -- pulling ---------------------------------------------------------------------------------

def test_incremental_pull_uses_modified_since_with_the_overlap(world: World) -> None:
    old = [world.task(f"T{i}", modified_at=world.state.ago(20 + i)) for i in range(3)]
    connector = world.connector()
    full = connector.pull(None)
    mark = Watermark.parse(full.cursor)
    assert full.complete and mark.at == parse_datetime(old[0]["modified_at"])
    # Asana's own time (its Date header, less the request's duration), not this machine's
    assert mark.pulled_at is not None
    assert world.clock.current - timedelta(seconds=5) <= mark.pulled_at <= world.clock.current
    world.clock.current += timedelta(hours=1)
    world.state.rename(old[1], "T1 again", world.ada)
    later = connector.pull(full.cursor)
    assert [t.key for t in later.tasks] == [old[1]["gid"]] and not later.complete
    assert Watermark.parse(later.cursor).at == parse_datetime(old[1]["modified_at"])
    query = parse_qs(world.requests("GET", "/tasks")[-1][2])
    since = parse_datetime(query["modified_since"][0])
    assert since == mark.pulled_at - timedelta(minutes=2)  # from when that pull ran
    assert query["limit"] == ["100"] and query["project"] == [world.project["gid"]]
    # A new run (fresh connector) does not get the overlap again: the cursor saw T0 there.
    fresh = world.connector().pull(full.cursor)
    assert [t.key for t in fresh.tasks] == [old[1]["gid"]]
    quiet = connector.pull(later.cursor)
    assert quiet.tasks == [] and quiet.cursor == later.cursor


def test_tether_writes_bump_modified_at_as_asana_does(world: World) -> None:
    task = world.task(modified_at=world.state.ago(20))
    before = task["modified_at"]
    world.clock.current += timedelta(minutes=5)
    connector = world.connector()
    connector.apply([label(task, "tether:kpi:nps")])
    assert task["modified_at"] > before
    world.clock.current += timedelta(minutes=5)
    stamp = task["modified_at"]
    [made] = connector.apply([WriteOp("src", task["gid"], OpKind.CREATE_COMMENT,
                                      f"{MARKER}\nA.", "t")])
    assert task["modified_at"] > stamp
    world.clock.current += timedelta(minutes=5)
    stamp = task["modified_at"]
    connector.apply([WriteOp("src", task["gid"], OpKind.UPDATE_COMMENT, f"{MARKER}\nB.", "t",
                             made.comment_id)])
    assert task["modified_at"] == stamp  # editing a comment is not in Asana's list


def test_sections_map_to_status_categories(world: World) -> None:
    cases = {"Backlog": "todo", "Doing": "in_progress", "In Progress": "in_progress",
             "Done": "todo"}
    made = {world.task(s, section=s)["gid"]: c for s, c in cases.items()}
    done = world.task("finished", section="Doing", completed=True)
    tasks = {t.key: t for t in world.connector().pull(None).tasks}
    for key, category in made.items():
        assert tasks[key].status_category == category, tasks[key].status
    assert tasks[done["gid"]].status_category == "done"
    assert tasks[done["gid"]].resolved is not None
    custom = {t.key: t for t in world.connector(in_progress_sections=["backlog"]).pull(None).tasks}
    assert [custom[k].status_category for k in made] == ["in_progress", "todo", "todo", "todo"]


def test_tasks_normalise_with_people_fields_and_links(world: World) -> None:
    st = world.state
    blocker = world.task("Blocker")
    high = world.priority["options"][0]["gid"]
    child = world.task("Child", notes="Line one.\nLine two.", assignee=world.ada,
                       section="In Progress", parent=blocker["gid"],
                       dependencies=[blocker["gid"]],
                       values={world.points["gid"]: 5, world.priority["gid"]: high},
                       tags=[st.add_tag("customer")["gid"]])
    connector = world.connector(custom_fields={"priority": world.priority["gid"],
                                               "points": world.points["gid"]})
    tasks = {t.key: t for t in connector.pull(None).tasks}
    task = tasks[child["gid"]]
    assert (task.title, task.body, task.assignee) == ("Child", "Line one.\nLine two.",
                                                      "Ada Lovelace")
    assert task.estimate == 5.0 and task.custom == {"priority": "High", "points": 5}
    assert task.project == "Website" and task.status == "In Progress" and task.type == "task"
    assert task.parent == blocker["gid"] and task.labels == ("customer",)
    assert [(li.type, li.target) for li in task.links] == [("is blocked by", blocker["gid"])]
    assert [(li.type, li.target) for li in tasks[blocker["gid"]].links] == [
        ("blocks", child["gid"])]
    assert task.url.startswith(world.server.base_url) and child["gid"] in task.url
    assert task.updated == parse_datetime(child["modified_at"]) and task.raw["gid"] == child["gid"]


def test_a_1000_task_pull_is_ten_pages(world: World) -> None:
    for i in range(1000):
        world.task(f"T{i}")
    tasks = world.connector().pull(None).tasks
    assert len({t.key for t in tasks}) == 1000
    assert len(world.server.log) == 10  # ceil(1000 / 100) list pages, no setup call


# -- failures ------------------------------------------------------------------------------

def test_429_retry_after_from_the_rate_limiter_is_honoured_via_the_clock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN, "good")
    limited = World(tmp_path, rate_limit=5)  # five requests a minute
    try:
        for i in range(550):
            limited.task(f"T{i}")
        tasks = limited.connector().pull(None).tasks  # six pages: the sixth waits a minute
        assert len(tasks) == 550
        statuses = [r.status for r in limited.server.log]
        assert statuses == [200] * 5 + [429, 200]
        assert limited.clock.slept == [60]  # Retry-After: the rest of the minute
    finally:
        limited.server.stop()


def test_429_that_persists_becomes_a_source_error(world: World) -> None:
    world.task()
    world.server.faults.add(Fault("status", rate=1.0, status=429, headers={"Retry-After": "7"},
                                  body={"errors": [{"message": "You've made too many requests"}]}))
    with pytest.raises(SourceError) as info:
        world.connector().pull(None)
    assert "429" in str(info.value) and "too many requests" in str(info.value)
    assert world.clock.slept == [7, 7, 7, 7]


def test_a_connection_reset_is_retried(world: World) -> None:
    world.task()
    world.server.faults.add(Fault("reset", at=frozenset({1})))
    assert len(world.connector().pull(None).tasks) == 1
    assert len(world.clock.slept) == 1


def test_errors_name_the_variable_and_never_the_token(world: World,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN, "s3cret-wrong")
    with pytest.raises(SourceError) as info:
        world.connector().pull(None)
    text = str(info.value)
    assert "401" in text and "$ASANA_TOKEN" in text and "s3cret" not in text
    monkeypatch.delenv(TOKEN)
    with pytest.raises(SourceError, match="ASANA_TOKEN"):
        world.connector().apply([label(world.task(), "tether:x")])
    assert all(r.status == 401 for r in world.server.log)


def test_a_missing_project_is_named_with_the_option_to_fix(world: World) -> None:
    with pytest.raises(SourceError) as info:
        world.connector(projects=["1299999999999999"]).pull(None)
    text = str(info.value)
    assert "404" in text and "not found" in text and "options.projects" in text
    assert "1299999999999999" in text


def test_a_write_to_a_deleted_task_fails_alone(world: World) -> None:
    task = world.task()
    results = world.connector().apply([
        WriteOp("src", "1288888888888888", OpKind.ADD_LABEL, "tether:x", "t"),
        label(task, "tether:x")])
    assert not results[0].ok and "task 1288888888888888 not found" in results[0].error
    assert results[1].ok and world.tag_names(task) == {"tether:x"}


# -- the sandbox as a product piece ----------------------------------------------------------

def test_the_sandbox_serves_a_seed_file_and_keeps_state_between_starts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN, "good")
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "asana.yaml").write_text(yaml.safe_dump({
        "workspace": {"name": "Northwind", "gid": "1100000000000001"},
        "users": ["Ada Lovelace"],
        "custom_fields": [{"name": "Story Points", "type": "number"}],
        "projects": [{"name": "Portal", "gid": "1100000000000100",
                      "sections": ["Backlog", "In Progress"], "custom_fields": ["Story Points"],
                      "tasks": [{"name": "Login", "section": "In Progress",
                                 "assignee": "Ada Lovelace", "custom_fields": {"Story Points": 3},
                                 "comments": [{"by": "Ada Lovelace", "text": "On it"}]},
                                {"name": "Logout", "blocked_by": ["Login"]}]}]}))
    work = tmp_path / "work"
    sandbox = AsanaSandbox()
    options = sandbox.start(seed, work)
    monkeypatch.setenv(options["token_env"], sandbox.env[options["token_env"]])
    try:
        assert options["projects"] == ["1100000000000100"]
        assert options["workspace"] == "1100000000000001"
        connector = AsanaConnector("asana", AsanaOptions(estimate_field="Story Points",
                                                         **options), tmp_path)
        tasks = {t.title: t for t in connector.pull(None).tasks}
        assert tasks["Login"].estimate == 3 and tasks["Login"].status_category == "in_progress"
        assert tasks["Logout"].links[0].target == tasks["Login"].key
        connector.apply([WriteOp("asana", tasks["Login"].key, OpKind.ADD_LABEL, "tether:x",
                                 "t")])
    finally:
        sandbox.stop()
    again = AsanaSandbox()
    options = again.start(seed, work)
    try:
        connector = AsanaConnector("asana", AsanaOptions(**options), tmp_path)
        tasks = {t.title: t for t in connector.pull(None).tasks}
        assert "tether:x" in tasks["Login"].labels
        response = requests.get(options["url"] + "/users/me", timeout=5,
                                headers={"Authorization": "Bearer good"})
        assert response.json()["data"]["workspaces"][0]["name"] == "Northwind"
    finally:
        again.stop()


def test_sandbox_restarts_with_the_labels_tether_wrote(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    seed, work = tmp_path / "seed", tmp_path / "work"
    seed.mkdir()
    (seed / "asana.yaml").write_text(yaml.safe_dump({
        "workspace": {"name": "Northwind", "gid": "1100000000000001"},
        "projects": [{"name": "Portal", "gid": "1100000000000100",
                      "tasks": [{"name": "Login", "tags": []}]}]}), encoding="utf-8")
    monkeypatch.delenv("TETHER_SANDBOX_ASANA_TOKEN", raising=False)
    sandbox = AsanaSandbox()
    options = sandbox.start(seed, work)
    try:
        assert options["token_env"] == "TETHER_SANDBOX_ASANA_TOKEN"
        assert options["token_env"] not in os.environ  # the demo exports sandbox.env itself
        monkeypatch.setenv(options["token_env"], sandbox.env[options["token_env"]])
        connector = AsanaConnector("asana", AsanaOptions(**options), tmp_path)
        [task] = connector.pull(None).tasks
        [result] = connector.apply([WriteOp("asana", task.key, OpKind.ADD_LABEL,
                                            "tether:kpi:nps", "t")])
        assert result.ok, result.error
    finally:
        sandbox.stop()
    (seed / "asana.yaml").unlink()  # the restart serves the saved state, not the seed
    again = AsanaSandbox()
    options = again.start(seed, work)
    try:
        monkeypatch.setenv(options["token_env"], again.env[options["token_env"]])
        [task] = AsanaConnector("asana", AsanaOptions(**options), tmp_path).pull(None).tasks
        assert task.labels == ("tether:kpi:nps",)
    finally:
        again.stop()
