"""GitHub-specific behaviour of the github connector, against the GitHub sandbox."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pydantic
import pytest
import requests
from tether.clock import FakeClock
from tether.codec import parse_datetime, task_from_dict, task_to_dict
from tether.errors import SourceError
from tether.model import OpKind, WriteOp
from tether.pipeline.render import MARKER, digest
from tether.pipeline.run import RunResult, run_pass
from tether.sandbox import Fault, LoggedRequest, SandboxServer
from tether.testing.test_writeback_suite import CONFIG
from tether.watermark import Watermark
from tether.workspace import load_workspace
from tether_github import GitHubConnector, GitHubOptions, GitHubSandbox
from tether_github.client import API_VERSION
from tether_github.sandbox.api import GitHubApi
from tether_github.sandbox.seed import generate
from tether_github.sandbox.world import Issue, Repo, World

REPO = "acme/widgets"


@dataclass
class Hub:
    """A sandbox and the clock it shares with the connectors made from it."""

    world: World
    api: GitHubApi
    server: SandboxServer
    clock: FakeClock
    url: str
    tmp_path: Path

    @property
    def repo(self) -> Repo:
        repo = self.world.repo(REPO)
        assert repo is not None
        return repo

    def issue(self, title: str, **fields) -> Issue:
        return self.world.add_issue(self.repo, title, "alice",
                                    created=self.clock.now() - timedelta(days=3), **fields)

    def connector(self, **options) -> GitHubConnector:
        opts = GitHubOptions(url=self.url, repos=options.pop("repos", [REPO]), **options)
        return GitHubConnector("src", opts, self.tmp_path, clock=self.clock)

    def log(self) -> list[tuple[str, str, int]]:
        return [(r.method, r.path, r.status) for r in self.server.log]

    def get(self, path: str, **headers: str) -> requests.Response:
        return requests.get(self.url + path, timeout=5, headers={
            "Authorization": "token good", "User-Agent": "test", **headers})


def start(tmp_path: Path, prefix: str = "", **limits: int) -> Hub:
    clock = FakeClock()
    world = World(clock)
    world.add_token("good", "tether-bot")
    world.add_token("reader", "reader-bot", write=False)
    world.add_repo(REPO)
    api = GitHubApi(world, prefix=prefix, **limits)
    server = SandboxServer(api).start()
    return Hub(world, api, server, clock, server.base_url + prefix, tmp_path)


@pytest.fixture
def hub(tmp_path: Path, monkeypatch) -> Iterator[Hub]:
    monkeypatch.setenv("GITHUB_TOKEN", "good")
    made = start(tmp_path)
    yield made
    made.server.stop()


def op(key: str, kind: OpKind, value: str, comment_id: str | None = None) -> WriteOp:
    return WriteOp("src", key, kind, value, "test", comment_id)


# -- pulling -------------------------------------------------------------------------------


def test_pull_requests_and_issues_are_told_apart(hub: Hub) -> None:
    hub.issue("A bug", assignees=["bob"], labels=["bug"])
    hub.issue("A fix", pull_request=True, draft=True)
    hub.issue("Merged", pull_request=True, state="closed", closed=hub.clock.now(),
              merged=hub.clock.now())
    tasks = {t.title: t for t in hub.connector().pull(None).tasks}
    bug, fix, merged = tasks["A bug"], tasks["A fix"], tasks["Merged"]
    assert (bug.type, bug.status, bug.status_category, bug.assignee) == \
        ("issue", "open", "in_progress", "bob")
    assert bug.labels == ("bug",) and bug.url.endswith("/acme/widgets/issues/1")
    assert (fix.type, fix.status_category, fix.custom["draft"]) == \
        ("pull request", "in_progress", True)
    assert fix.url.endswith("/acme/widgets/pull/2")
    assert (merged.status, merged.status_category, merged.resolved) == \
        ("merged", "done", hub.clock.now())
    only_issues = hub.connector(include_pull_requests=False).pull(None).tasks
    assert [t.title for t in only_issues] == ["A bug"]


def test_full_pull_follows_link_pages_under_repositories_id(hub: Hub) -> None:
    generate(hub.world, hub.repo, 250, hub.clock.now() - timedelta(days=9))
    result = hub.connector().pull(None)
    assert len(result.tasks) == 250
    paths = [path for _, path, _ in hub.log()]
    assert paths == [f"/repos/{REPO}/issues",
                     f"/repositories/{hub.repo.id}/issues", f"/repositories/{hub.repo.id}/issues"]
    assert [r.query.split("page=")[1].split("&")[0] for r in hub.server.log[1:]] == ["2", "3"]


def test_pull_and_annotation_reads_never_get_single_items(hub: Hub) -> None:
    generate(hub.world, hub.repo, 40, hub.clock.now() - timedelta(days=9))
    connector = hub.connector()
    tasks = connector.pull(None).tasks
    for task in tasks:  # touch what rules read; none of it may lazily fetch the issue
        assert (task.title, task.type, task.assignee, task.labels, task.updated) is not None
    connector.read_annotations(tasks, "tether")
    with_comments = sum(1 for t in tasks if t.raw["comments"] > 0)
    assert with_comments > 0
    gets = [path for method, path, _ in hub.log() if method == "GET"]
    assert gets == [f"/repos/{REPO}/issues"] + [
        f"/repos/{REPO}/issues/{t.raw['number']}/comments" for t in tasks if t.raw["comments"]]


def test_comments_are_not_listed_where_tether_knows_it_never_wrote_one(hub: Hub) -> None:
    generate(hub.world, hub.repo, 40, hub.clock.now() - timedelta(days=9))
    connector = hub.connector()
    tasks = connector.pull(None).tasks
    commented = [t for t in tasks if t.raw["comments"] > 0]
    mine, others = commented[0], commented[1:]
    # The state store: Tether kept a comment on `mine`, and none on every other item.
    connector.known_comments = {t.key: None for t in tasks} | {mine.key: "1"}
    before = len(hub.server.log)
    connector.read_annotations(tasks, "tether")
    listed = [path for method, path, _ in hub.log()[before:] if method == "GET"]
    assert listed == [f"/repos/{REPO}/issues/{mine.raw['number']}/comments"] and others
    # Recovery trusts no such memory: every item's comments are listed.
    connector.recover(tasks, "tether")
    assert len([1 for m, p, _ in hub.log()[before:] if p.endswith("/comments")]) == 1 + len(tasks)


def test_incremental_pull_asks_since_the_last_pull_minus_two_minutes(hub: Hub) -> None:
    first = hub.issue("Old", updated=hub.clock.now() - timedelta(hours=1))
    connector = hub.connector()
    cursor = connector.pull(None).cursor
    mark = Watermark.parse(cursor)
    assert mark.at == datetime(2025, 5, 5, 8, tzinfo=UTC)
    # GitHub's Date (its clock, not this machine's) less the request's duration
    assert mark.pulled_at is not None
    assert hub.clock.now() - timedelta(seconds=5) <= mark.pulled_at < hub.clock.now()
    hub.world.edit_issue(first, title="Old, edited")
    result = connector.pull(cursor)
    query = hub.server.log[-1].query
    since = mark.pulled_at - timedelta(minutes=2)  # not from the mark at 08:00
    assert f"since={since:%Y-%m-%dT%H}%3A{since:%M}%3A{since:%S}Z" in query
    assert "sort=updated" in query and "direction=asc" in query
    assert [t.title for t in result.tasks] == ["Old, edited"]
    assert Watermark.parse(result.cursor).at == datetime(2025, 5, 5, 9, tzinfo=UTC)
    assert not result.complete
    assert connector.pull(result.cursor).cursor == result.cursor  # nothing new: cursor kept


def test_repeated_unchanged_pull_is_answered_304_and_costs_no_rate_limit(hub: Hub) -> None:
    generate(hub.world, hub.repo, 150, hub.clock.now() - timedelta(days=9))
    connector = hub.connector()
    first = connector.pull(None)
    remaining = hub.get("/rate_limit").json()["resources"]["core"]["remaining"]
    again = connector.pull(None)
    assert [status for _, _, status in hub.log()[-2:]] == [304, 304]
    assert [t.key for t in again.tasks] == [t.key for t in first.tasks]
    assert hub.get("/rate_limit").json()["resources"]["core"]["remaining"] == remaining
    hub.world.edit_issue(hub.repo.issues[3], title="Changed")
    changed = connector.pull(None)
    assert [status for _, _, status in hub.log()[-2:]] == [200, 200]
    assert "Changed" in {t.title for t in changed.tasks}


def test_a_full_last_page_from_304_checks_for_a_new_page(hub: Hub) -> None:
    generate(hub.world, hub.repo, 100, hub.clock.now() - timedelta(days=9))
    connector = hub.connector()
    connector.pull(None)
    hub.issue("Brand new")  # sorts last: page 1 is unchanged, a page 2 appears
    titles = [t.title for t in connector.pull(None).tasks]
    assert len(titles) == 101 and titles[-1] == "Brand new"
    assert [status for _, _, status in hub.log()[-2:]] == [304, 200]


def test_every_request_pins_the_api_version(hub: Hub) -> None:
    hub.issue("One")
    connector = hub.connector()
    [task] = connector.pull(None).tasks
    connector.apply([op(task.key, OpKind.ADD_LABEL, "tether:kpi:nps"),
                     op(task.key, OpKind.CREATE_COMMENT, f"{MARKER}\nhi")])
    assert hub.api.api_versions == {API_VERSION: len(hub.server.log)}
    assert "assignee" in task.raw  # 2022-11-28 payloads still carry the singular assignee


# -- rate limits and transient failures ------------------------------------------------------


def test_exhausted_primary_limit_waits_until_reset_on_the_clock(tmp_path: Path,
                                                                monkeypatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "good")
    hub = start(tmp_path, rate_limit=2)
    try:
        generate(hub.world, hub.repo, 250, hub.clock.now() - timedelta(days=9))
        hub.clock.sleep(600)  # the window opens now: it resets in an hour
        assert len(hub.connector().pull(None).tasks) == 250
        assert hub.clock.slept == [600, 3600]
        assert [status for _, _, status in hub.log()] == [200, 200, 403, 200]
    finally:
        hub.server.stop()


def test_primary_limit_resetting_too_late_fails_at_once_saying_when(tmp_path: Path,
                                                                    monkeypatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "good")
    hub = start(tmp_path, rate_limit=1)
    try:
        generate(hub.world, hub.repo, 150, hub.clock.now() - timedelta(days=9))
        with pytest.raises(SourceError) as info:
            hub.connector(max_rate_limit_wait=60).pull(None)
        assert hub.clock.slept == []
        message = str(info.value)
        assert "403" in message and "rate limit" in message and "10:00:00 UTC" in message
        assert "max_rate_limit_wait" in message
    finally:
        hub.server.stop()


def test_secondary_limit_on_writes_waits_retry_after(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "good")
    hub = start(tmp_path, writes_per_minute=2)
    try:
        for n in range(3):
            hub.issue(f"Item {n}", labels=["tether:x"])  # the label exists: no create call
        connector = hub.connector()
        tasks = connector.pull(None).tasks
        results = connector.apply([op(t.key, OpKind.REMOVE_LABEL, "tether:x") for t in tasks])
        assert all(r.ok for r in results)
        assert hub.clock.slept == [60]
        assert [s for m, _, s in hub.log() if m == "DELETE"] == [200, 200, 403, 200]
    finally:
        hub.server.stop()


def test_connection_reset_is_retried(hub: Hub) -> None:
    hub.issue("One")
    hub.server.faults.add(Fault("reset", at=frozenset({1})))
    assert len(hub.connector().pull(None).tasks) == 1
    assert hub.clock.slept == [1.0]


# -- labels ------------------------------------------------------------------------------------


def test_labels_are_created_once_with_colour_and_description(hub: Hub) -> None:
    for n in range(3):
        hub.issue(f"Item {n}")
    connector = hub.connector()
    tasks = connector.pull(None).tasks
    results = connector.apply(
        [op(t.key, OpKind.ADD_LABEL, "tether:kpi:nps") for t in tasks]
        + [op(tasks[0].key, OpKind.ADD_LABEL, "tether:untethered")])
    assert all(r.ok for r in results)
    created = [path for method, path, _ in hub.log() if path == f"/repos/{REPO}/labels"]
    assert created == [f"/repos/{REPO}/labels"] * 2
    kpi = hub.repo.labels["tether:kpi:nps"]
    signal = hub.repo.labels["tether:untethered"]
    assert (kpi.color, kpi.description) == ("0e8a16", "Set by Tether: this item serves KPI nps")
    assert (signal.color, signal.description) == ("d93f0b",
                                                  "Set by Tether: drift signal untethered")
    # Both labels on the first item went in one request.
    adds = [path for method, path, _ in hub.log() if path.endswith("/labels")
            and path.startswith(f"/repos/{REPO}/issues/")]
    assert len(adds) == 3


def test_a_label_that_already_exists_is_not_an_error(hub: Hub) -> None:
    hub.world.create_label(hub.repo, "Tether:KPI:NPS", "123456", "made by a person")
    hub.issue("Item")
    connector = hub.connector()
    [task] = connector.pull(None).tasks
    [result] = connector.apply([op(task.key, OpKind.ADD_LABEL, "tether:kpi:nps")])
    assert result.ok
    assert [s for _, p, s in hub.log() if p == f"/repos/{REPO}/labels"] == [422]
    assert hub.repo.labels["tether:kpi:nps"].color == "123456"  # a person's choice stays


def test_labels_outside_the_prefix_are_never_touched(hub: Hub) -> None:
    hub.issue("Item", labels=["bug", "tetherish", "tether:stale"])
    connector = hub.connector()
    [task] = connector.pull(None).tasks
    assert connector.read_annotations([task], "tether")[task.key].labels == {"tether:stale"}
    results = connector.apply([op(task.key, OpKind.REMOVE_LABEL, "tether:stale"),
                               op(task.key, OpKind.REMOVE_LABEL, "tether:stale"),
                               op(task.key, OpKind.ADD_LABEL, "tether:kpi:a")])
    assert all(r.ok for r in results)  # removing an absent label is already done
    assert hub.repo.issues[1].labels == ["bug", "tetherish", "tether:kpi:a"]
    assert "/labels/tether%3Astale" in " ".join(p for _, p, _ in hub.log())


def test_a_label_too_long_for_github_fails_alone(hub: Hub) -> None:
    hub.issue("Item")
    connector = hub.connector()
    [task] = connector.pull(None).tasks
    long_name = "tether:kpi:" + "x" * 45
    bad, good = connector.apply([op(task.key, OpKind.ADD_LABEL, long_name),
                                 op(task.key, OpKind.ADD_LABEL, "tether:kpi:ok")])
    assert not bad.ok and "50" in (bad.error or "") and good.ok
    assert hub.repo.issues[1].labels == ["tether:kpi:ok"]


# -- the comment -----------------------------------------------------------------------------


def test_the_marker_comment_is_found_among_human_comments(hub: Hub) -> None:
    issue = hub.issue("Item")
    plain = hub.issue("No comments")
    hub.world.add_comment(hub.repo, issue, "alice", "First! <!-- tether:comment --> quoted")
    ours = hub.world.add_comment(hub.repo, issue, "tether-bot", f"{MARKER}\nOld verdict.")
    hub.world.add_comment(hub.repo, issue, "bob", f"> {MARKER}\n> Old verdict.\nAgreed.")
    connector = hub.connector()
    tasks = connector.pull(None).tasks
    shown = connector.read_annotations(tasks, "tether")
    assert shown[f"{REPO}#1"].comment_id == str(ours.id)
    assert shown[f"{REPO}#1"].comment == f"{MARKER}\nOld verdict."
    assert shown[f"{REPO}#{plain.number}"].comment_id is None
    comment_lists = [p for m, p, _ in hub.log() if p.endswith("/comments")]
    assert comment_lists == [f"/repos/{REPO}/issues/1/comments"]  # only where comments exist
    [result] = connector.apply([op(f"{REPO}#1", OpKind.UPDATE_COMMENT, f"{MARKER}\nNew.",
                                   str(ours.id))])
    assert result.ok and result.comment_id == str(ours.id)
    bodies = [hub.world.comments[c].body for c in issue.comments]
    assert bodies[1] == f"{MARKER}\nNew." and len(bodies) == 3
    assert bodies[0].startswith("First!") and bodies[2].startswith("> ")


def test_comment_lists_are_conditional_and_deleted_items_do_not_stop_reads(hub: Hub) -> None:
    issue = hub.issue("Item")
    hub.world.add_comment(hub.repo, issue, "alice", "Hi")
    gone = hub.issue("Gone")
    hub.world.add_comment(hub.repo, gone, "alice", "Bye")
    connector = hub.connector()
    tasks = connector.pull(None).tasks
    connector.read_annotations(tasks, "tether")
    del hub.repo.issues[gone.number]  # deleted after the pull
    shown = connector.read_annotations(tasks, "tether")
    assert shown[f"{REPO}#{gone.number}"].comment_id is None
    # Unchanged since its listing found no comment of Tether's: not listed again at all.
    assert [s for _, p, s in hub.log() if p.endswith("/1/comments")] == [200]
    connector.memory.clear()  # without that memory, the listing is conditional: a free 304
    connector.read_annotations(tasks, "tether")
    assert [s for _, p, s in hub.log() if p.endswith("/1/comments")] == [200, 304]


def test_creating_the_comment_twice_leaves_one(hub: Hub) -> None:
    issue = hub.issue("Item")
    connector = hub.connector()
    [task] = connector.pull(None).tasks
    first = connector.apply([op(task.key, OpKind.CREATE_COMMENT, f"{MARKER}\nOne.")])
    again = connector.apply([op(task.key, OpKind.CREATE_COMMENT, f"{MARKER}\nTwo.")])
    assert first[0].comment_id == again[0].comment_id
    assert [hub.world.comments[c].body for c in issue.comments] == [f"{MARKER}\nTwo."]


def test_updating_a_comment_a_person_deleted_reports_it_gone(hub: Hub) -> None:
    issue = hub.issue("Item")
    old = hub.world.add_comment(hub.repo, issue, "tether-bot", f"{MARKER}\nOld.")
    connector = hub.connector()
    [task] = connector.pull(None).tasks
    hub.world.delete_comment(old)
    before = len(hub.server.log)
    [result] = connector.apply([op(task.key, OpKind.UPDATE_COMMENT, f"{MARKER}\nNew.",
                                   str(old.id))])
    assert result.ok and result.gone and result.comment_id is None
    assert issue.comments == []
    assert [(m, s) for m, _, s in hub.log()[before:]] == [("PATCH", 404)]  # the refused edit only
    # Nor does the connector's memory resurrect it: the next read finds no comment.
    assert connector.read_annotations([task], "tether")[task.key].comment_id is None


def test_a_fresh_connector_creating_the_comment_edits_the_one_that_exists(hub: Hub) -> None:
    issue = hub.issue("Item")
    hub.world.add_comment(hub.repo, issue, "alice", "A person's comment.")
    first = hub.connector()
    [task] = first.pull(None).tasks
    [made] = first.apply([op(task.key, OpKind.CREATE_COMMENT, f"{MARKER}\nOne.")])
    fresh = hub.connector()  # another process: it never saw that write
    fresh.pull(None)
    before = len(hub.server.log)
    [again] = fresh.apply([op(task.key, OpKind.CREATE_COMMENT, f"{MARKER}\nTwo.")])
    assert again.ok and again.comment_id == made.comment_id
    assert [hub.world.comments[c].body for c in issue.comments] == \
        ["A person's comment.", f"{MARKER}\nTwo."]
    assert [m for m, _, _ in hub.log()[before:]] == ["GET", "PATCH"]  # looked, then edited


def test_recover_finds_a_comment_the_stored_payload_did_not_count(hub: Hub) -> None:
    issue = hub.issue("Item")
    [pulled] = hub.connector().pull(None).tasks
    [task] = [task_from_dict(task_to_dict(pulled))]  # as the store keeps it: comments 0
    assert task.custom["comments"] == 0
    # The write landed, but its answer never came back before the process died.
    ours = hub.world.add_comment(hub.repo, issue, "tether-bot", f"{MARKER}\nVerdict.")
    connector = hub.connector()
    assert connector.read_annotations([task], "tether")[task.key].comment_id is None  # trusts 0
    shown = connector.recover([task], "tether")[task.key]
    assert shown.comment_id == str(ours.id) and shown.comment == f"{MARKER}\nVerdict."


def test_mention_tokens_become_mentions_and_nothing_else_can_ping(hub: Hub) -> None:
    hub.issue("Item")
    hub.world.user("dana-lee")
    connector = hub.connector()
    [task] = connector.pull(None).tasks
    value = (f"{MARKER}\nDecision needed from <@dana-lee>, cc <@Dana-Lee>-team and "
             "<@not a login> and <@bad/handle>; not \\<@mallory\\> nor @\u200bchannel "
             "nor &commat;eve nor `<@code>`.")
    [result] = connector.apply([op(task.key, OpKind.CREATE_COMMENT, value)])
    assert result.ok, result.error
    [stored] = [c.body for c in hub.world.comments.values()]
    assert stored.startswith(f"{MARKER}\nDecision needed from @dana-lee, cc "
                             "@Dana-Lee\u200b-team and ")  # the hyphen would extend the login
    assert "&lt;@\u200bmallory&gt;" in stored and "@\u200bchannel" in stored
    assert "&lt;@\u200bbad/handle&gt;" in stored  # a team, or any non-login, stays text
    assert "\\&commat;eve" in stored  # a reference GitHub would decode to "@eve": kept as typed
    assert "<@\u200bnot a login>" in stored  # no token, but "@not" would ping: defused
    assert "`<@code>`" in stored  # code spans never mention: left as written
    # GitHub stores what Tether asked for changed, so the digest trailer vouches for it:
    # a re-read matches the body asked for, and a re-run plans no write.
    [fresh] = hub.connector().pull(None).tasks
    shown = hub.connector().read_annotations([fresh], "tether")[task.key]
    assert shown.comment_id == result.comment_id and shown.comment_digest == digest(value)


def test_writes_bump_updated_so_the_next_pull_sees_them(hub: Hub) -> None:
    hub.issue("Item", updated=hub.clock.now() - timedelta(days=1))
    connector = hub.connector()
    result = connector.pull(None)
    hub.clock.sleep(30)
    connector.apply([op(f"{REPO}#1", OpKind.ADD_LABEL, "tether:kpi:a")])
    [task] = connector.pull(result.cursor).tasks
    assert task.labels == ("tether:kpi:a",) and task.updated == hub.clock.now()


# -- failures ------------------------------------------------------------------------------------


def test_a_token_without_write_access_is_told_what_it_lacks(hub: Hub, monkeypatch) -> None:
    hub.issue("Item")
    monkeypatch.setenv("GITHUB_TOKEN", "reader")
    connector = hub.connector()
    [task] = connector.pull(None).tasks
    [result] = connector.apply([op(task.key, OpKind.CREATE_COMMENT, f"{MARKER}\nx")])
    assert not result.ok
    error = result.error or ""
    assert "403" in error and "$GITHUB_TOKEN" in error and "Issues: read and write" in error
    assert "reader" not in error.replace("reader-bot", "")


def test_one_missing_item_fails_alone(hub: Hub) -> None:
    hub.issue("Item")
    connector = hub.connector()
    connector.pull(None)
    gone, kept = connector.apply([op(f"{REPO}#99", OpKind.ADD_LABEL, "tether:kpi:a"),
                                  op(f"{REPO}#1", OpKind.ADD_LABEL, "tether:kpi:a")])
    assert not gone.ok and "404" in (gone.error or "") and "not found" in (gone.error or "")
    assert f"{REPO}#99" in (gone.error or "") and kept.ok


def test_enterprise_server_base_url_with_api_v3(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "good")
    hub = start(tmp_path, prefix="/api/v3")
    try:
        generate(hub.world, hub.repo, 120, hub.clock.now() - timedelta(days=9))
        connector = hub.connector()
        tasks = connector.pull(None).tasks
        assert len(tasks) == 120
        [result] = connector.apply([op(tasks[0].key, OpKind.CREATE_COMMENT, f"{MARKER}\nx")])
        assert result.ok
        assert all(r.path.startswith("/api/v3/") for r in hub.server.log)
        assert tasks[0].url.startswith(hub.server.base_url + "/acme/widgets/")
        assert requests.get(hub.server.base_url + f"/repos/{REPO}/issues", timeout=5,
                            headers={"User-Agent": "t"}).status_code == 404
    finally:
        hub.server.stop()


def test_options_reject_what_github_would_not_accept() -> None:
    with pytest.raises(pydantic.ValidationError, match="owner/name"):
        GitHubOptions(repos=["just-a-name"])
    with pytest.raises(pydantic.ValidationError):
        GitHubOptions(repos=[])
    with pytest.raises(pydantic.ValidationError, match="more than once"):
        GitHubOptions(repos=["a/b", "A/B"])
    assert GitHubOptions(repos=["a/b"], url="https://ghe.example.com/api/v3/").url == \
        "https://ghe.example.com/api/v3"


# -- the sandbox plugin ----------------------------------------------------------------------


def test_sandbox_serves_a_seed_file_and_keeps_writes_across_restarts(tmp_path: Path,
                                                                     monkeypatch) -> None:
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "github.yaml").write_text(
        "repos:\n"
        "  - name: acme/shop\n"
        "    labels: [{name: bug, color: d73a4a}]\n"
        "    issues:\n"
        "      - {title: Checkout fails, labels: [bug], assignees: [alice], created: -3d}\n"
        "      - {title: Add PayPal, pull_request: true, milestone: v2,\n"
        "         comments: [{user: bob, body: LGTM}]}\n", encoding="utf-8")
    monkeypatch.delenv("TETHER_SANDBOX_GITHUB_TOKEN", raising=False)
    sandbox = GitHubSandbox()
    options = sandbox.start(seed, tmp_path / "work")
    assert "TETHER_SANDBOX_GITHUB_TOKEN" not in os.environ  # the demo exports sandbox.env
    monkeypatch.setenv(options["token_env"], sandbox.env[options["token_env"]])
    try:
        connector = GitHubConnector("gh", GitHubOptions(**options), tmp_path)
        tasks = {t.title: t for t in connector.pull(None).tasks}
        assert tasks["Checkout fails"].labels == ("bug",)
        assert tasks["Add PayPal"].custom["milestone"] == "v2"
        [result] = connector.apply([op(tasks["Checkout fails"].key, OpKind.ADD_LABEL,
                                       "tether:kpi:conversion")])
        assert result.ok
    finally:
        sandbox.stop()
    state = json.loads((tmp_path / "work" / "github-sandbox.json").read_text(encoding="utf-8"))
    assert state["version"] == 1
    options = sandbox.start(seed, tmp_path / "work")
    try:
        connector = GitHubConnector("gh", GitHubOptions(**options), tmp_path)
        labels = {t.title: t.labels for t in connector.pull(None).tasks}
        assert labels["Checkout fails"] == ("bug", "tether:kpi:conversion")
    finally:
        sandbox.stop()


def test_sandbox_rejects_bad_tokens_and_missing_user_agent(hub: Hub) -> None:
    hub.issue("Item")
    bad = hub.get(f"/repos/{REPO}/issues", Authorization="token nope")
    assert bad.status_code == 401 and bad.json()["message"] == "Bad credentials"
    assert bad.headers["x-ratelimit-limit"] == "60"
    anonymous = requests.get(hub.url + f"/repos/{REPO}/issues", timeout=5,
                             headers={"User-Agent": "t"})
    assert anonymous.status_code == 404  # private repositories hide from strangers
    no_agent = requests.get(hub.url + f"/repos/{REPO}/issues", timeout=5,
                            headers={"Authorization": "token good", "User-Agent": ""})
    assert no_agent.status_code == 403 and "User-Agent" in no_agent.text
    too_many = hub.get(f"/repos/{REPO}/issues?per_page=500")
    assert too_many.status_code == 200 and len(too_many.json()) == 1
    bad_state = hub.get(f"/repos/{REPO}/issues?state=nope")
    assert bad_state.status_code == 422


# -- what the connector remembers between passes (Connector.memory) ---------------------------

OTHER = "acme/gadgets"
QUIET_RULES = """\
mappings:
  - id: served
    kpi: nps
    when:
      key: {in: %s}
signals:
  - id: unserved
    signal: unserved
    label: unserved
    message: "{title} serves no KPI."
    advice: Tie it to a KPI, or close it.
    when:
      all:
        - status_category: {in: [todo, in_progress]}
        - not: {key: {in: %s}}
"""


class Cron:
    """Syncs of a workspace whose one source ``src`` is the hub's GitHub, as a cron job runs
    them: a fresh connector (a fresh process) each time, on the sandbox's clock."""

    def __init__(self, hub: Hub, repos: list[str], served: list[str]):
        self.hub, self.repos = hub, repos
        folder = hub.tmp_path / "ws"
        (folder / "rules").mkdir(parents=True)
        (folder / "none.json").write_text('{"tasks": []}')
        (folder / "tether.yaml").write_text(CONFIG)
        keys = json.dumps(served)
        (folder / "rules" / "rules.yaml").write_text(QUIET_RULES % (keys, keys))
        self.config = folder / "tether.yaml"

    def workspace(self):
        ws = load_workspace(self.config)
        return replace(ws, connectors={"src": self.hub.connector(repos=self.repos)})

    def run(self, full: bool = False) -> tuple[RunResult, list[LoggedRequest]]:
        """One sync (``full``: judging every item, not only what changed), and the requests
        it made."""
        before = len(self.hub.server.log)
        ws = self.workspace()
        with ws.open_store() as store:
            result = run_pass(ws, store, "sync",
                              lambda: self.hub.clock.now() + timedelta(minutes=5), full)
        assert result.applied is not None and result.applied.failed == 0
        return result, self.hub.server.log[before:]

    def memory(self) -> dict:
        with self.workspace().open_store() as store:
            return store.load_memory("src")

    def set_memory(self, data: dict) -> None:
        with self.workspace().open_store() as store:
            store.save_memory("src", data)


def remaining(hub: Hub) -> int:
    return int(hub.get("/rate_limit").json()["resources"]["core"]["remaining"])


def two_repos(hub: Hub, n: int = 5) -> tuple[Cron, list[str]]:
    """``n`` open issues in each of two repositories; the first of each is served (KPI
    label only), the others serve no KPI (a label and Tether's comment)."""
    other = hub.world.add_repo(OTHER)
    keys = []
    for repo in (hub.repo, other):
        for i in range(n):
            issue = hub.world.add_issue(repo, f"Issue {i}", "alice",
                                        created=hub.clock.now() - timedelta(days=3))
            keys.append(f"{repo.full_name}#{issue.number}")
    return Cron(hub, [REPO, OTHER], [keys[0], keys[n]]), keys


def comment_reads(requests_made: list[LoggedRequest]) -> list[str]:
    return [r.path for r in requests_made if r.method == "GET" and r.path.endswith("/comments")]


def tethers(hub: Hub, key: str) -> list[int]:
    """Ids of Tether's comments on ``key``."""
    repo_name, number = key.split("#")
    repo = hub.world.repo(repo_name)
    assert repo is not None
    return [c for c in repo.issues[int(number)].comments
            if hub.world.comments[c].body.startswith(MARKER)]


def test_a_quiet_rerun_is_one_free_304_per_repository(hub: Hub) -> None:
    cron, keys = two_repos(hub)
    first, _ = cron.run()
    idle = {k for k in keys if tethers(hub, k)}
    assert len(idle) == 8 and first.ops
    # The first re-run lists what Tether's writes touched: their payloads show the state
    # the connector remembered writing (comment count and updated_at), so no comments are
    # read back; the second lists again from the new mark (a new request, so 200).
    for _ in range(2):
        again, made = cron.run()
        assert again.ops == [] and comment_reads(made) == []
        assert [(r.method, r.path, r.status) for r in made] == [
            ("GET", f"/repos/{REPO}/issues", 200), ("GET", f"/repos/{OTHER}/issues", 200)]
    budget = remaining(hub)
    quiet, made = cron.run()
    assert quiet.ops == [] and quiet.held == []
    assert [(r.method, r.path, r.status) for r in made] == [
        ("GET", f"/repos/{REPO}/issues", 304), ("GET", f"/repos/{OTHER}/issues", 304)]
    assert all("since=" in r.query for r in made)
    assert remaining(hub) == budget  # a 304 costs no rate limit
    memory = cron.memory()
    assert set(memory["comments"]) == idle  # bounded: only items carrying Tether's comment
    assert len(memory["pages"]) == 2  # this pass's list requests, one per repository


def test_a_person_editing_or_deleting_tethers_comment_is_seen_on_the_next_run(hub: Hub) -> None:
    cron, keys = two_repos(hub)
    cron.run()
    cron.run()
    edited, deleted = sorted(k for k in keys if tethers(hub, k))[:2]
    hub.clock.sleep(7)  # a person, some seconds later
    [mine] = tethers(hub, edited)
    body = hub.world.comments[mine].body
    hub.world.edit_comment(hub.world.comments[mine], body + "\n\nNot idle, waiting on legal.")
    [gone] = tethers(hub, deleted)
    hub.world.delete_comment(hub.world.comments[gone])
    result, made = cron.run()
    # Only the two touched items' comments are read (the deleted one again by recover()).
    assert set(comment_reads(made)) == {f"/repos/{k.replace('#', '/issues/')}/comments"
                                        for k in (edited, deleted)}
    # Tether puts its edited comment back where it is, and respects the deletion: no edit
    # of the deleted comment is tried, nor a new one written.
    assert [(o.key, o.kind, o.comment_id) for o in result.ops] == \
        [(edited, OpKind.UPDATE_COMMENT, str(mine))]
    assert hub.world.comments[mine].body == body
    assert [(o.key, o.kind) for o in result.held] == [(deleted, OpKind.CREATE_COMMENT)]
    assert tethers(hub, deleted) == [] and all(r.status < 400 for r in made)
    cron.run()
    quiet, made = cron.run()
    assert quiet.ops == [] and comment_reads(made) == [] and [r.status for r in made] == \
        [304, 304]


def test_losing_the_memory_only_costs_requests(hub: Hub) -> None:
    cron, keys = two_repos(hub)
    cron.run()
    cron.run()
    cron.run()
    idle = sorted(k for k in keys if tethers(hub, k))
    assert len(cron.run()[1]) == 2
    writes = sum(1 for r in hub.server.log if r.method != "GET")
    for lost in ({}, {"version": 1, "pages": {"x": 1}, "comments": {idle[0]: "junk"}},
                 {"version": 99, "comments": {k: {"id": "1"} for k in idle}}):
        cron.set_memory(lost)
        again, made = cron.run(full=True)  # a quiet pass would read no item at all
        # Every comment is read again, and the list is asked for without a remembered ETag.
        assert again.ops == [] and again.held == []
        assert sorted(comment_reads(made)) == sorted(
            f"/repos/{k.replace('#', '/issues/')}/comments" for k in idle)
        assert [r.status for r in made if r.path.endswith("/issues")] == [200, 200]
        quiet, made = cron.run()
        assert quiet.ops == [] and [r.status for r in made] == [304, 304]
    assert sum(1 for r in hub.server.log if r.method != "GET") == writes  # never a write


def test_memory_never_answers_for_recovery_or_a_full_pull(hub: Hub) -> None:
    issue = hub.issue("Item")
    ours = hub.world.add_comment(hub.repo, issue, "tether-bot", f"{MARKER}\nVerdict.")
    memory: dict = {}
    first = hub.connector()
    first.memory = memory
    cursor = first.pull(None).cursor
    [task] = [task_from_dict(task_to_dict(t)) for t in first.pull(None).tasks]
    assert first.read_annotations([task], "tether")[task.key].comment_id == str(ours.id)
    assert set(memory["comments"]) == {task.key}
    second = hub.connector()
    second.memory = memory
    before = len(hub.server.log)
    assert second.read_annotations([task], "tether")[task.key].comment_id == str(ours.id)
    assert len(hub.server.log) == before  # vouched for by memory: no request
    assert second.recover([task], "tether")[task.key].comment_id == str(ours.id)
    assert comment_reads(hub.server.log[before:]) == [f"/repos/{REPO}/issues/1/comments"]
    # A full pull replaces every stored item, so it never stands on a remembered ETag
    # (even one that still matches: a 304 would leave it nothing to store).
    third = hub.connector()
    third.memory = memory
    assert third.pull(cursor).tasks == []  # incremental, nothing new
    full_list = f"/repos/{REPO}/issues?direction=asc&per_page=100&sort=updated&state=all"
    memory["pages"][full_list] = {"etag": hub.get(full_list).headers["ETag"], "next": None,
                                  "full": False}
    full = hub.connector()
    full.memory = memory
    result = full.pull(None)
    assert [t.key for t in result.tasks] == [task.key] and result.complete
    assert hub.server.log[-1].status == 200 and memory["pages"] == {}


def test_the_sandbox_answers_if_none_match_as_github_does(hub: Hub) -> None:
    hub.issue("Item")
    path = f"/repos/{REPO}/issues?state=all&since=2025-05-01T00:00:00Z"
    first = hub.get(path)
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag.startswith('W/"') and first.json()
    budget = int(first.headers["x-ratelimit-remaining"])
    # Weak comparison: the weak tag, its strong form, or a list holding either matches.
    for sent in (etag, etag.removeprefix("W/"), f'"nope", {etag}', "*"):
        again = hub.get(path, **{"If-None-Match": sent})
        assert (again.status_code, again.content) == (304, b"")
        assert again.headers["ETag"] == etag
        assert int(again.headers["x-ratelimit-remaining"]) == budget  # not counted
    other = hub.get(path, **{"If-None-Match": 'W/"nope"'})
    assert other.status_code == 200 and int(other.headers["x-ratelimit-remaining"]) == budget - 1
    assert hub.get(path, Authorization="token reader", **{"If-None-Match": etag}).status_code \
        == 200  # ETags are per token


# -- through the pipeline --------------------------------------------------------------------


def test_stored_tasks_without_payload_still_find_the_comment(hub: Hub) -> None:
    issue = hub.issue("Item")
    ours = hub.world.add_comment(hub.repo, issue, "tether-bot", f"{MARKER}\nVerdict.")
    hub.issue("Quiet")
    pulled = {t.title: t for t in hub.connector().pull(None).tasks}
    task, quiet = pulled["Item"], pulled["Quiet"]
    stored = [task_from_dict(task_to_dict(t)) for t in (task, quiet)]  # the store drops raw
    assert stored[0].raw == {}
    shown = hub.connector().read_annotations(stored, "tether")
    assert shown[task.key].comment_id == str(ours.id)
    assert shown[quiet.key].comment_id is None
    assert [p for _, p, _ in hub.log() if p.endswith("/comments")] == \
        [f"/repos/{REPO}/issues/1/comments"]


def test_a_second_sync_through_the_pipeline_writes_nothing(files_only: Path, clock,
                                                          monkeypatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "good")
    monkeypatch.setenv("TETHER_LOAD_PLUGINS", "core,files,github")  # hermetic: no other trackers
    hub = start(files_only)
    try:
        repo = hub.world.add_repo("northwind/portal")
        export = json.loads((files_only / "data" / "gh-issues.json").read_text(encoding="utf-8"))
        for item in export:
            hub.world.add_issue(
                repo, item["title"], item["author"]["login"], number=item["number"],
                body=item["body"], labels=[lbl["name"] for lbl in item["labels"]],
                assignees=[a["login"] for a in item["assignees"]], state=item["state"].lower(),
                created=parse_datetime(item["createdAt"]),
                updated=parse_datetime(item["updatedAt"]),
                closed=parse_datetime(item["closedAt"]))
        config = files_only / "tether.yaml"
        text = config.read_text(encoding="utf-8")
        files_source = ("    type: files\n    options:\n      path: data/gh-issues.json\n"
                        "      format: gh-json\n      project: northwind/portal\n")
        assert files_source in text
        config.write_text(text.replace(files_source, (
            f"    type: github\n    options:\n      url: {hub.url}\n"
            "      repos: [northwind/portal]\n")), encoding="utf-8")

        def sync():
            ws = load_workspace(config)
            with ws.open_store() as store:
                return run_pass(ws, store, "sync", clock)

        first = sync()
        assert first.applied is not None and first.applied.failed == 0
        assert any(o.source == "github" and o.kind is OpKind.CREATE_COMMENT for o in first.ops)
        writes = sum(1 for r in hub.server.log if r.method != "GET")
        second = sync()
        assert [o for o in second.ops if o.source == "github"] == []
        assert sum(1 for r in hub.server.log if r.method != "GET") == writes
    finally:
        hub.server.stop()


def test_sandbox_restarts_with_the_labels_tether_wrote(tmp_path: Path, monkeypatch) -> None:
    seed, work = tmp_path / "seed", tmp_path / "work"
    seed.mkdir()
    (seed / "github.yaml").write_text(
        "enterprise: true\n"
        "tokens: {readonly: {login: viewer, write: false}, s3cret: {login: tether-bot}}\n"
        "repos:\n"
        "  - name: acme/shop\n"
        "    issues: [{title: Checkout fails, labels: [bug], created: -3d}]\n",
        encoding="utf-8")
    monkeypatch.delenv("TETHER_SANDBOX_GITHUB_TOKEN", raising=False)
    sandbox = GitHubSandbox()
    options = sandbox.start(seed, work)
    try:
        assert options["repos"] == ["acme/shop"] and options["url"].endswith("/api/v3")
        assert options["token_env"] == "TETHER_SANDBOX_GITHUB_TOKEN"
        assert options["token_env"] not in os.environ  # the demo exports sandbox.env itself
        assert sandbox.env == {"TETHER_SANDBOX_GITHUB_TOKEN": "s3cret",  # one that may write
                               "TETHER_SANDBOX_GITHUB_HOOK_SECRET": "tether-sandbox-webhook-secret"}
        monkeypatch.setenv(options["token_env"], sandbox.env[options["token_env"]])
        connector = GitHubConnector("gh", GitHubOptions(**options), tmp_path)
        [task] = connector.pull(None).tasks
        [result] = connector.apply([op(task.key, OpKind.ADD_LABEL, "tether:kpi:conversion")])
        assert result.ok, result.error
    finally:
        sandbox.stop()
    (seed / "github.yaml").unlink()  # the restart serves the saved state, not the seed
    again = GitHubSandbox()
    options = again.start(seed, work)
    try:
        assert options["url"].endswith("/api/v3")  # still served like GitHub Enterprise
        monkeypatch.setenv(options["token_env"], again.env[options["token_env"]])
        [task] = GitHubConnector("gh", GitHubOptions(**options), tmp_path).pull(None).tasks
        assert task.labels == ("bug", "tether:kpi:conversion")
    finally:
        again.stop()
