"""The plugin's own tests (the shared suite is `pytest -p tether.testing --tether-driver gitlab`)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from tether.sdk import (
    MARKER,
    CurrentAnnotation,
    InitError,
    OpKind,
    WriteOp,
    digest,
    task_from_dict,
    task_to_dict,
)
from tether_gitlab import GitLabConnector
from tether_gitlab.annotations import gitlab_body
from tether_gitlab.conformance import GitLabDriver, make_driver
from tether_gitlab.options import GitLabOptions
from tether_gitlab.sandbox import TOKEN_ENV, GitLabSandbox
from tether_gitlab.starter import GitLabStarter


def test_one_edit_changes_all_of_an_issues_labels(tmp_path: Path) -> None:
    driver = make_driver(tmp_path)
    try:
        key = driver.seed(3)[1]  # labelled "bug"
        connector = driver.connector()
        connector.pull(None)
        before = len(driver.server.log)
        results = connector.apply([WriteOp("src", key, OpKind.ADD_LABEL, "tether:kpi:nps", "t"),
                                   WriteOp("src", key, OpKind.ADD_LABEL, "tether:idle", "t"),
                                   WriteOp("src", key, OpKind.REMOVE_LABEL, "tether:old", "t")])
        assert all(r.ok for r in results)
        [edit] = driver.server.log[before:]
        assert (edit.method, edit.path) == ("PUT", "/api/v4/projects/acme%2Fwidgets/issues/2")
        assert driver.labels(key) == {"bug", "tether:kpi:nps", "tether:idle"}
        shown = connector.read_annotations([t for t in connector.pull(None).tasks
                                            if t.key == key], "tether")
        assert shown[key].labels == {"tether:kpi:nps", "tether:idle"}
    finally:
        driver.server.stop()


def test_the_starter_writes_a_source_the_connector_accepts() -> None:
    starter = GitLabStarter()
    assert starter.source({"gitlab": None, "gitlab_url": None}) is None
    made = starter.source({"gitlab": "acme/sub/widgets", "gitlab_url": "https://git.acme.io/"})
    assert made is not None and made.environment == ("GITLAB_TOKEN",)
    [entry] = yaml.safe_load(made.yaml)
    assert (entry["name"], entry["type"]) == ("gitlab", "gitlab")
    options = GitLabOptions(**entry["options"])
    assert options.project_ref == "acme%2Fsub%2Fwidgets" and options.url == "https://git.acme.io"
    with pytest.raises(InitError) as info:
        starter.source({"gitlab": "not a project"})
    assert info.value.flag == "--gitlab"


def test_only_a_mention_token_mentions_anyone() -> None:
    body = gitlab_body(f"{MARKER}\nAsk <@dana-lee>, not @admin or `@code`; \\<b\\> &commat;x")
    assert "Ask @dana-lee, not @\u200badmin or `@code`" in body
    assert "&lt;b&gt;" in body and "\\&commat;x" in body and body.startswith(MARKER)


def test_the_sandbox_serves_a_seed_and_keeps_writes_across_a_restart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "gitlab.yaml").write_text(
        "tokens: {good: tether-bot}\nprojects:\n  - path: acme/widgets\n"
        "    members: {tether-bot: 30}\n    issues: [{title: Checkout fails, author: sam}]\n")
    box = GitLabSandbox()
    for attempt in range(2):
        options = box.start(seed, tmp_path / "state")
        monkeypatch.setenv(TOKEN_ENV, box.env[TOKEN_ENV])
        connector = GitLabConnector("gitlab", GitLabOptions(**options), tmp_path)
        try:
            assert [c.ok for c in connector.diagnose()] == [True] * 5
            [task] = connector.pull(None).tasks
            if attempt == 0:
                connector.apply([WriteOp("gitlab", task.key, OpKind.CREATE_COMMENT,
                                         f"{MARKER}\nHello.", "t")])
            assert box.comments() == {"1": [f"{MARKER}\nHello."]}
        finally:
            box.stop()


def shown_digest(shown: CurrentAnnotation) -> str | None:
    """The digest the planner compares (the body's, when the tracker kept it verbatim)."""
    return shown.comment_digest or (digest(shown.comment) if shown.comment else None)


def _read(driver: GitLabDriver, key: str, memory: dict[str, Any]
          ) -> tuple[CurrentAnnotation, list[str]]:
    """A fresh process's read of ``key`` as the pipeline makes it (stored task, no payload),
    with ``memory`` as the last pass left it; and the requests the read made."""
    connector = driver.connector()
    connector.memory = memory
    [task] = [task_from_dict(task_to_dict(t)) for t in connector.pull(None).tasks
              if t.key == key]
    before = len(driver.server.log)
    shown = connector.read_annotations([task], "tether")[key]
    return shown, [r.path for r in driver.server.log[before:]]


def test_notes_are_listed_again_only_when_the_issue_shows_a_change(tmp_path: Path) -> None:
    driver = make_driver(tmp_path)
    try:
        key = driver.seed(3)[0]
        writer = driver.connector()
        writer.pull(None)
        [made] = writer.apply([WriteOp("src", key, OpKind.CREATE_COMMENT, f"{MARKER}\nHi.", "t")])
        notes = f"/api/v4/projects/acme%2Fwidgets/issues/{key}/notes"
        memory: dict[str, Any] = {}
        shown, reads = _read(driver, key, memory)
        assert reads == [notes] and shown.comment_id == made.comment_id
        shown, reads = _read(driver, key, memory)  # nothing changed: memory vouches
        assert reads == [] and shown.comment_id == made.comment_id and shown.comment is None
        assert shown_digest(shown) == digest(f"{MARKER}\nHi.")  # all the planner compares
        issue = driver.issue(key)
        [note] = [n for n in issue.notes if str(n.id) == made.comment_id]
        driver.retry_clock.sleep(120)  # a person edits Tether's note, later
        driver.world.edit_note(issue, note, f"{MARKER}\nHi, edited by a person.")
        shown, reads = _read(driver, key, memory)
        assert reads == [notes] and shown.comment == f"{MARKER}\nHi, edited by a person."
        driver.retry_clock.sleep(120)  # and deletes it
        driver.world.delete_note(issue, note)
        shown, reads = _read(driver, key, memory)
        assert shown.comment_id is None and memory["notes"] == {}
        memory.clear()  # lost: only costs the listing again
        driver.world.add_note(issue, "tether-bot", f"{MARKER}\nBack.")
        for expected in ([notes], []):
            shown, reads = _read(driver, key, memory)
            assert reads == expected and shown_digest(shown) == digest(f"{MARKER}\nBack.")
    finally:
        driver.server.stop()


def test_a_listing_within_a_minute_of_the_issues_update_is_not_remembered(
        tmp_path: Path) -> None:
    """GitLab's ThrottledTouch: a note edited within a minute of the issue's last update
    leaves its updated_at as it was, so such a listing cannot vouch for the next pass."""
    driver = make_driver(tmp_path)
    try:
        driver.retry_clock.current = datetime.now(UTC)  # the fake GitLab's clock is the Date's
        key = driver.seed(2)[0]
        writer = driver.connector()
        writer.pull(None)
        writer.apply([WriteOp("src", key, OpKind.CREATE_COMMENT, f"{MARKER}\nHi.", "t")])
        memory: dict[str, Any] = {}
        for _ in range(2):
            shown, reads = _read(driver, key, memory)
            assert len(reads) == 1 and reads[0].endswith("/notes") and shown.comment_id
            assert memory["notes"] == {}
    finally:
        driver.server.stop()


def test_recovery_lists_notes_whatever_memory_says(tmp_path: Path) -> None:
    driver = make_driver(tmp_path)
    try:
        key = driver.seed(2)[0]
        writer = driver.connector()
        writer.pull(None)
        writer.apply([WriteOp("src", key, OpKind.CREATE_COMMENT, f"{MARKER}\nHi.", "t")])
        memory: dict[str, Any] = {}
        _read(driver, key, memory)
        assert _read(driver, key, memory)[1] == []
        connector = driver.connector()
        connector.memory = memory
        [task] = [t for t in connector.pull(None).tasks if t.key == key]
        before = len(driver.server.log)
        assert connector.recover([task], "tether")[key].comment_id is not None
        assert [r.path for r in driver.server.log[before:]][-1].endswith("/notes")
    finally:
        driver.server.stop()
