"""The plugin's own tests (the shared suite is `pytest -p tether.testing --tether-driver gitlab`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tether.sdk import MARKER, InitError, OpKind, WriteOp
from tether_gitlab import GitLabConnector
from tether_gitlab.annotations import gitlab_body
from tether_gitlab.conformance import make_driver
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
