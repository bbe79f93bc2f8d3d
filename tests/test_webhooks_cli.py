"""`tether webhooks install|list|remove` against GitHub's sandbox through PyGithub: one hook
per repository, signed with the secret Tether holds, never two; trackers without such an
API get the steps to do it by hand. On Asana, against `tether serve`, which takes the
handshake only while the install waits for it."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import uvicorn
from click.testing import CliRunner
from tether.cli import main
from tether.serve.app import create_app
from tether.serve.service import Service, Settings
from tether_asana.conformance import AsanaDriver
from tether_github.conformance import REPO, TOKEN_ENV, GitHubDriver

SERVE = "https://tether.example.com"


@pytest.fixture
def github(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    driver = GitHubDriver(tmp_path / "gh")
    driver.world.grant(driver.world.repo(REPO), "tether-bot", "admin")  # hooks need admin
    monkeypatch.setenv(TOKEN_ENV, "good")
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", "a-long-random-hook-secret")
    folder = tmp_path / "ws"
    folder.mkdir()
    (folder / "tether.yaml").write_text(f"""\
version: 1
sources:
  - name: gh
    type: github
    options: {{url: "{driver.url}", repos: ["{REPO}"], token_env: {TOKEN_ENV}}}
  - name: ops
    type: jira
    options: {{url: "https://acme.atlassian.net", flavour: cloud, email: bot@acme.example,
               token_env: JIRA_TOKEN, projects: [OPS, WEB]}}
  - name: sheet
    type: files
    options: {{path: none.json, format: tether-json}}
""")
    (folder / "none.json").write_text('{"tasks": []}')
    try:
        yield driver, folder / "tether.yaml"
    finally:
        driver.server.stop()


def tether(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_install_adds_one_signed_hook_per_repository_and_remove_takes_it_away(github) -> None:
    driver, config = github
    first = tether("webhooks", "install", "-c", str(config), "--url", SERVE)
    again = tether("webhooks", "install", "-c", str(config), "--url", SERVE)
    repo = driver.world.repo(REPO)
    [hook] = repo.hooks.values()
    assert f"gh: added hook {hook.id} on {REPO} -> {SERVE}/webhooks/gh" in first
    assert "gh: nothing added" in again  # never a second hook
    assert hook.secret == "a-long-random-hook-secret" and hook.content_type == "json"
    assert set(hook.events) == {"issues", "issue_comment", "pull_request", "label"}
    assert "sheet: set up a webhook to" in first and "by hand" in first
    assert ("ops: a Jira administrator makes the webhook" in first
            and f"URL {SERVE}/webhooks/ops" in first and "JQL project in (OPS, WEB)" in first
            and "$JIRA_WEBHOOK_SECRET" in first)
    listed = tether("webhooks", "list", "-c", str(config), "--url", SERVE, "--source", "gh")
    assert f"found hook {hook.id} on {REPO}" in listed
    removed = tether("webhooks", "remove", "-c", str(config), "--url", SERVE, "--source", "gh")
    assert f"removed hook {hook.id}" in removed and not repo.hooks


def test_install_without_the_secret_says_which_variable_to_set(github, monkeypatch) -> None:
    _, config = github
    monkeypatch.delenv("GITHUB_WEBHOOK_SECRET")
    result = CliRunner().invoke(main, ["webhooks", "install", "-c", str(config), "--url", SERVE,
                                       "--source", "gh"])
    assert result.exit_code == 1 and "$GITHUB_WEBHOOK_SECRET" in result.output


def test_asana_install_shakes_hands_with_tether_serve_and_nobody_else_can(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drv = AsanaDriver(tmp_path / "asana")
    monkeypatch.setenv(drv.token_variable, "good")
    project = drv.project["gid"]
    folder = tmp_path / "ws"
    folder.mkdir()
    (folder / "tether.yaml").write_text(f"""\
version: 1
sources:
  - name: tasks
    type: asana
    options: {{url: "{drv.url}", projects: ["{project}"], workspace: "{drv.state.workspace['gid']}"}}
""")
    config = folder / "tether.yaml"
    service = Service(Settings(config, interval=None, debounce=0))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # connections wait in its backlog until the server takes them
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(create_app(service), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]})
    thread.start()
    try:
        endpoint = f"{url}/webhooks/tasks?hook={project}"
        planted = requests.post(endpoint, headers={"X-Hook-Secret": "e" * 64}, timeout=30)
        assert planted.status_code == 401 and "e" * 64 not in planted.text
        added = tether("webhooks", "install", "-c", str(config), "--url", url)
        [hook] = drv.state.webhooks.values()
        assert f"tasks: added hook {hook['gid']} on {project}" in added
        with service.workspace.open_store() as store:
            secret = store.hook_secret("tasks", project)
            assert secret and secret != "e" * 64
            assert not store.handshake_expected("tasks", datetime.now(UTC))  # door shut again
        forged = requests.post(endpoint, headers={"X-Hook-Secret": "f" * 64}, timeout=30)
        assert forged.status_code == 401
        with service.workspace.open_store() as store:
            assert store.hook_secret("tasks", project) == secret
        assert f"removed hook {hook['gid']}" in tether("webhooks", "remove", "-c", str(config),
                                                       "--url", url)
        with service.workspace.open_store() as store:
            assert store.hook_secret("tasks", project) is None
    finally:
        server.should_exit = True
        thread.join(60)
        drv.server.stop()
