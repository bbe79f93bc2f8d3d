"""Asana-specific behaviour of the asana connector, end to end against the Asana sandbox."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import requests
import yaml
from pydantic import ValidationError
from tether.clock import FakeClock
from tether.codec import parse_datetime
from tether.errors import SourceError
from tether.model import Annotation, Finding, OpKind, WriteOp
from tether.pipeline.plan import desired_annotations, plan_ops
from tether.pipeline.render import MARKER, Renderer, digest, mention
from tether.sandbox import Fault, LoggedRequest
from tether.watermark import Watermark
from tether_asana import AsanaConnector, AsanaOptions, AsanaSandbox
from tether_asana.richtext import footer_digest
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
    removed = world.requests("POST", f"/tasks/{task['gid']}/removeTag")
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
    assert len(made) == 2  # one listing of the project, one story read (users/me was cached)
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

    world.server.after_handling = drop_story_post
    [made] = world.connector().apply([WriteOp("src", task["gid"], OpKind.CREATE_COMMENT,
                                              f"{MARKER}\nOne.", "t")])
    world.server.after_handling = None
    assert dropped and made.ok
    [story] = world.comments(task)
    assert made.comment_id == story["gid"]
    assert len(world.requests("POST", f"/tasks/{task['gid']}/stories")) == 1


# -- pulling ---------------------------------------------------------------------------------

def test_incremental_pull_uses_modified_since_with_the_overlap(world: World) -> None:
    old = [world.task(f"T{i}", modified_at=world.state.ago(20 + i)) for i in range(3)]
    connector = world.connector()
    full = connector.pull(None)
    assert full.complete and Watermark.parse(full.cursor).at == parse_datetime(old[0]["modified_at"])
    world.clock.current += timedelta(hours=1)
    world.state.rename(old[1], "T1 again", world.ada)
    later = connector.pull(full.cursor)
    assert [t.key for t in later.tasks] == [old[1]["gid"]] and not later.complete
    assert Watermark.parse(later.cursor).at == parse_datetime(old[1]["modified_at"])
    query = parse_qs(world.requests("GET", "/tasks")[-1][2])
    since = parse_datetime(query["modified_since"][0])
    assert since == Watermark.parse(full.cursor).at - timedelta(minutes=2)
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
