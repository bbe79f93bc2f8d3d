"""GitHub webhooks end to end: the sandbox registers repository hooks over its real endpoints
and posts signed deliveries to a loopback receiver; the connector verifies what arrived and
says which items it touches and whether it is Tether's own echo."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pydantic
import pytest
import requests
from loopback import NoSecrets, Recorder
from tether.model import OpKind, WriteOp
from tether.pipeline.render import MARKER
from tether.webhook import Delivery, Refused
from tether_github import GitHubOptions
from tether_github.conformance import REPO, GitHubDriver
from tether_github.connector import GitHubConnector
from tether_github.sandbox import snapshot
from tether_github.sandbox.hooks import HookDelivery
from tether_github.sandbox.world import World

SECRET = "s3cr3t-for-the-hook"
SECRET_ENV = "GITHUB_WEBHOOK_SECRET"
PREFIX = "tether"
CONTRACTS = Path(__file__).resolve().parents[2] / "shared" / "contracts" / "github"


@pytest.fixture
def receiver() -> Iterator[Recorder]:
    got = Recorder("/webhooks/github")
    yield got
    got.stop()


@pytest.fixture
def drv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GitHubDriver]:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    driver = GitHubDriver(tmp_path)
    driver.seed(8)
    yield driver
    driver.server.stop()


def hooked(drv: GitHubDriver, receiver: Recorder) -> None:
    """Register the hook and let its ping through, so later deliveries are the test's."""
    drv.register_hook(receiver.url, SECRET)
    assert {(d.event, d.status) for d in drv.deliver()} == {("ping", 200)}  # one a repository
    receiver.got.clear()


def received(connector: GitHubConnector, receiver: Recorder) -> list[Delivery]:
    """What the connector reads from each recorded request, oldest first."""
    return [connector.receive(headers, body, {}, NoSecrets(), PREFIX)
            for headers, body in receiver.got]


def refused(connector: GitHubConnector, headers: dict[str, str], body: bytes) -> Refused:
    with pytest.raises(Refused) as caught:
        connector.receive(headers, body, {}, NoSecrets(), PREFIX)
    assert SECRET not in caught.value.reason  # never the secret, whatever went wrong
    return caught.value


def signed(body: bytes, event: str = "issues", secret: str = SECRET) -> dict[str, str]:
    mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-GitHub-Event": event, "X-GitHub-Delivery": "d-1",
            "Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={mac}"}


# -- deliveries a person's edits cause --------------------------------------------------------


def test_a_persons_edit_arrives_signed_as_github_signs_and_names_the_item(
        drv: GitHubDriver, receiver: Recorder) -> None:
    hooked(drv, receiver)
    key = drv.unicode_key
    drv.edit(key)
    sent = drv.deliver()
    assert [(d.event, d.action, d.status) for d in sent] == [("issues", "edited", 200)]
    headers, body = receiver.got[0]
    assert headers["X-GitHub-Event"] == "issues"
    assert headers["X-GitHub-Delivery"] == sent[0].guid
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"].startswith("GitHub-Hookshot/")
    assert headers["X-GitHub-Hook-Installation-Target-Type"] == "repository"
    mac = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Hub-Signature-256"] == f"sha256={mac}"
    payload = json.loads(body)
    assert payload["issue"]["title"].endswith("(edited)")
    assert payload["changes"]["title"]["from"] == drv.issue(key).title.removesuffix(" (edited)")
    got = received(drv.connector(), receiver)
    assert got == [Delivery(sent[0].guid, "issues.edited", (key,), drv.issue(key).user)]


def test_the_ping_github_sends_on_registration_is_answered_and_touches_nothing(
        drv: GitHubDriver, receiver: Recorder) -> None:
    drv.register_hook(receiver.url, SECRET)
    assert [d.status for d in drv.deliver()] == [200]
    (ping,) = received(drv.connector(), receiver)
    assert ping.event == "ping" and ping.keys == () and ping.reply is None and not ping.own
    assert json.loads(receiver.got[0][1])["hook"]["config"]["secret"] == "********"
    assert drv.deliver() == []  # nothing more queued: deliveries go once


def test_each_kind_of_change_names_its_item_and_event(drv: GitHubDriver,
                                                      receiver: Recorder) -> None:
    hooked(drv, receiver)
    key = drv.unicode_key
    issue = drv.issue(key)
    repo = drv.world.repo(REPO)
    assert repo is not None
    drv.world.edit_issue(issue, assignees=["alice"])
    drv.world.add_labels(repo, issue, ["bug"])
    drv.world.add_comment(repo, issue, "chen", "Same here on Safari.")
    drv.world.edit_issue(issue, by="alice", state="closed")
    drv.deliver()
    got = received(drv.connector(), receiver)
    assert [(d.event, d.keys, d.actor, d.own) for d in got] == [
        ("issues.assigned", (key,), issue.user, False),
        ("issues.labeled", (key,), issue.user, False),
        ("issue_comment.created", (key,), "chen", False),
        ("issues.closed", (key,), "alice", False)]


def test_a_repository_label_event_touches_no_item(drv: GitHubDriver, receiver: Recorder) -> None:
    hooked(drv, receiver)
    repo = drv.world.repo(REPO)
    assert repo is not None
    drv.world.create_label(repo, "customer")
    drv.world.create_label(repo, "tether:kpi:nps")
    drv.deliver()
    got = received(drv.connector(), receiver)
    assert [(d.event, d.keys, d.own) for d in got] == [("label.created", (), False),
                                                       ("label.created", (), True)]


def test_pull_requests_count_only_when_the_source_pulls_them(drv: GitHubDriver,
                                                             receiver: Recorder) -> None:
    hooked(drv, receiver)
    repo = drv.world.repo(REPO)
    assert repo is not None
    pull = next(i for i in repo.issues.values() if i.pull_request)
    key = f"{REPO}#{pull.number}"
    drv.world.add_labels(repo, pull, ["enhancement"])
    drv.world.add_comment(repo, pull, "bob", "Rebased.")
    drv.deliver()
    assert json.loads(receiver.got[0][1])["pull_request"]["number"] == pull.number
    assert [(d.event, d.keys) for d in received(drv.connector(), receiver)] == [
        ("pull_request.labeled", (key,)), ("issue_comment.created", (key,))]
    issues_only = drv.connector(include_pull_requests=False)
    assert [(d.event, d.keys) for d in received(issues_only, receiver)] == [
        ("pull_request.labeled", ()), ("issue_comment.created", ())]


def test_items_outside_the_configured_repositories_are_not_touched(
        drv: GitHubDriver, receiver: Recorder) -> None:
    other = drv.world.add_repo("acme/other")
    item = drv.world.add_issue(other, "Elsewhere", "alice")
    hooked(drv, receiver)  # on both repositories
    drv.world.edit_issue(item, title="Still elsewhere")
    assert [d.status for d in drv.deliver()] == [200]
    (got,) = received(drv.connector(), receiver)
    assert got.event == "issues.edited" and got.keys == ()
    both = drv.connector(repos=[REPO, "Acme/Other"])
    assert received(both, receiver)[0].keys == ("Acme/Other#1",)  # as options spell it


# -- Tether's own writes come back as its echo ------------------------------------------------


def test_tethers_own_writes_come_back_marked_own(drv: GitHubDriver, receiver: Recorder) -> None:
    hooked(drv, receiver)
    key = drv.unicode_key
    connector = drv.connector()
    results = connector.apply([
        WriteOp("src", key, OpKind.ADD_LABEL, "tether:untethered", "test"),
        WriteOp("src", key, OpKind.CREATE_COMMENT, "This item serves no KPI.", "test")])
    assert all(r.ok for r in results)
    assert not [r for r in drv.server.log if r.path.startswith("/users")]  # learnt for free
    sent = drv.deliver()
    assert [(d.event, d.action) for d in sent] == [
        ("label", "created"), ("issues", "labeled"), ("issue_comment", "created")]
    got = received(connector, receiver)
    assert [(d.event, d.keys, d.actor, d.own) for d in got] == [
        ("label.created", (), "tether-bot", True),
        ("issues.labeled", (key,), "tether-bot", True),
        ("issue_comment.created", (key,), "tether-bot", True)]


def test_echo_is_told_by_account_or_by_content(drv: GitHubDriver, receiver: Recorder) -> None:
    hooked(drv, receiver)
    key = drv.unicode_key
    repo = drv.world.repo(REPO)
    assert repo is not None
    issue = drv.issue(key)
    drv.world.edit_issue(issue, by="tether-bot", title="Renamed by the bot's account")
    drv.world.add_labels(repo, issue, ["tether:kpi:nps", "bug"])
    ours = drv.world.add_comment(repo, issue, "tether-bot", f"{MARKER}\nFindings.")
    drv.world.edit_comment(ours, "A person took the marker out.", by="dana-lee")
    drv.deliver()
    fresh = drv.connector()  # has written nothing: does not know its account yet
    assert [(d.event, d.own) for d in received(fresh, receiver)] == [
        ("issues.edited", False), ("label.created", True), ("issues.labeled", True),
        ("issues.labeled", False), ("issue_comment.created", True),
        ("issue_comment.edited", False)]
    fresh.memory.update({"version": 1, "account": "tether-bot"})  # as a comment write leaves
    assert [(d.event, d.own) for d in received(fresh, receiver)][0] == ("issues.edited", True)


# -- what is refused --------------------------------------------------------------------------


def test_unsigned_wrongly_signed_and_tampered_deliveries_are_refused_with_401(
        drv: GitHubDriver, receiver: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    hooked(drv, receiver)
    drv.edit(drv.unicode_key)
    drv.deliver()
    headers, body = receiver.got[0]
    connector = drv.connector()
    assert refused(connector, headers, body.replace(b"edited", b"closed")).status == 401
    unsigned = {k: v for k, v in headers.items() if not k.startswith("X-Hub-Signature")}
    missing = refused(connector, unsigned, body)
    assert missing.status == 401 and "X-Hub-Signature-256" in missing.reason
    monkeypatch.setenv(SECRET_ENV, "another secret")
    wrong = refused(connector, headers, body)
    assert wrong.status == 401 and f"${SECRET_ENV}" in wrong.reason
    assert "another secret" not in wrong.reason
    monkeypatch.delenv(SECRET_ENV)
    unset = refused(connector, headers, body)
    assert unset.status == 401 and f"set the environment variable ${SECRET_ENV}" in unset.reason


def test_a_hook_without_a_secret_sends_unsigned_deliveries_which_are_refused(
        drv: GitHubDriver, receiver: Recorder) -> None:
    drv.register_hook(receiver.url, "")
    drv.deliver()
    headers, body = receiver.got[0]
    assert not any(k.startswith("X-Hub-Signature") for k in headers)
    assert refused(drv.connector(), headers, body).status == 401


@pytest.mark.parametrize("body", [b"not json", b"\xff\xfe", b"[1, 2]", b'{"action": 3}',
                                  b'{"action": "labeled", "repository": {"full_name": "a/b"}}',
                                  b'{"action": "created", "issue": {"number": 1}}'])
def test_signed_garbage_is_refused_with_400(drv: GitHubDriver, body: bytes) -> None:
    event = "issue_comment" if b"created" in body else "issues"
    assert refused(drv.connector(), signed(body, event), body).status == 400


def test_a_delivery_without_githubs_headers_is_refused_with_400(drv: GitHubDriver) -> None:
    body = b'{"zen": "Design for failure.", "hook_id": 1}'
    headers = signed(body, "ping")
    del headers["X-GitHub-Delivery"]
    assert refused(drv.connector(), headers, body).status == 400
    headers = signed(body, "ping")
    del headers["X-GitHub-Event"]
    assert refused(drv.connector(), headers, body).status == 400


def test_a_redelivery_is_the_same_delivery(drv: GitHubDriver, receiver: Recorder) -> None:
    hooked(drv, receiver)
    drv.edit(drv.unicode_key)
    (first,) = drv.deliver()
    again = drv.api.deliveries.redeliver(first.guid)
    assert again.status == 200 and receiver.got[0] == receiver.got[1]
    one, two = received(drv.connector(), receiver)
    assert one == two  # same id: the service drops the repeat


# -- the hook endpoints, over HTTP ------------------------------------------------------------


def api(drv: GitHubDriver, method: str, path: str, token: str = "owner", **kwargs: Any
        ) -> requests.Response:
    return requests.request(method, f"{drv.url}/repos/{REPO}{path}", timeout=10,
                            headers={"Authorization": f"token {token}",
                                     "User-Agent": "tether-test"}, **kwargs)


def test_hooks_are_registered_listed_and_deleted_through_githubs_endpoints(
        drv: GitHubDriver, receiver: Recorder) -> None:
    drv.world.add_token("owner", "acme")  # the repository's owner administers its hooks
    new = {"name": "web", "active": True, "events": ["issues", "issue_comment"],
           "config": {"url": receiver.url, "secret": SECRET, "content_type": "json",
                      "insecure_ssl": "0"}}
    made = api(drv, "POST", "/hooks", json=new)
    assert made.status_code == 201, made.text
    hook = made.json()
    assert made.headers["Location"] == hook["url"]
    assert hook["config"] == {"content_type": "json", "insecure_ssl": "0",
                              "url": receiver.url, "secret": "********"}
    assert hook["events"] == ["issues", "issue_comment"] and hook["type"] == "Repository"
    again = api(drv, "POST", "/hooks", json=new)
    assert again.status_code == 422 and "already exists" in again.text
    assert api(drv, "POST", "/hooks", json={"config": {"secret": "x"}}).status_code == 422
    assert api(drv, "GET", "/hooks", token="good").status_code == 404  # write is not admin
    assert [h["id"] for h in api(drv, "GET", "/hooks").json()] == [hook["id"]]
    assert api(drv, "GET", f"/hooks/{hook['id']}").json()["last_response"]["status"] == "unused"
    drv.deliver()  # its ping, from the owner
    assert api(drv, "GET", f"/hooks/{hook['id']}").json()["last_response"]["code"] == 200
    assert api(drv, "POST", f"/hooks/{hook['id']}/pings").status_code == 204
    assert [d.event for d in drv.deliver()] == ["ping"]
    assert api(drv, "DELETE", f"/hooks/{hook['id']}").status_code == 204
    assert api(drv, "GET", "/hooks").json() == []
    drv.edit(drv.unicode_key)
    assert drv.deliver() == []  # no hook, no delivery
    assert all(d.keys == () for d in received(drv.connector(), receiver))  # pings only


def test_a_form_encoded_hook_is_read_too(drv: GitHubDriver, receiver: Recorder) -> None:
    drv.world.add_token("owner", "acme")
    made = api(drv, "POST", "/hooks", json={"events": ["issues"], "config": {
        "url": receiver.url, "secret": SECRET}})  # GitHub's default content type: form
    assert made.status_code == 201 and made.json()["config"]["content_type"] == "form"
    drv.deliver()
    receiver.got.clear()
    drv.edit(drv.unicode_key)
    (sent,) = drv.deliver()
    headers, body = receiver.got[0]
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert body.startswith(b"payload=") and sent.payload()["action"] == "edited"
    (got,) = received(drv.connector(), receiver)
    assert got.event == "issues.edited" and got.keys == (drv.unicode_key,)


def test_an_unreachable_receiver_is_recorded_not_raised(drv: GitHubDriver,
                                                        receiver: Recorder) -> None:
    url = receiver.url
    receiver.stop()
    drv.register_hook(url, SECRET)
    (ping,) = drv.deliver()
    assert ping.status == 0 and ping.error
    assert drv.api.deliveries.delivered == [ping]


def test_hooks_survive_a_sandbox_restart(drv: GitHubDriver, receiver: Recorder) -> None:
    drv.register_hook(receiver.url, SECRET)
    world = World(drv.retry_clock)
    snapshot.load(json.loads(json.dumps(snapshot.dump(drv.world))), world)
    restored = world.repo(REPO)
    assert restored is not None
    (hook,) = restored.hooks.values()
    assert (hook.url, hook.secret, hook.content_type) == (receiver.url, SECRET, "json")


def test_the_secret_variable_is_a_variable_name() -> None:
    assert GitHubOptions(repos=[REPO]).webhook_secret_env == SECRET_ENV
    with pytest.raises(pydantic.ValidationError, match="not an environment variable name"):
        GitHubOptions(repos=[REPO], webhook_secret_env="sha256 s3cr3t")


# -- payloads against GitHub's own schemas ----------------------------------------------------


def as_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema: ``nullable: true`` becomes "or null"."""
    if isinstance(node, list):
        return [as_json_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: as_json_schema(v) for k, v in node.items()
           if not (k == "nullable" and isinstance(v, bool))}
    return {"anyOf": [out, {"type": "null"}]} if node.get("nullable") is True else out


@cache
def components() -> dict[str, Any]:
    spec = json.loads((CONTRACTS / "api.github.com.json").read_text(encoding="utf-8"))
    return as_json_schema({"schemas": spec["components"]["schemas"]})


@pytest.mark.skipif(not CONTRACTS.is_dir(), reason=f"GitHub's OpenAPI description not found "
                    f"at {CONTRACTS} (the shared contracts folder beside the repository)")
def test_every_delivery_matches_githubs_webhook_schemas(drv: GitHubDriver,
                                                        receiver: Recorder) -> None:
    drv.register_hook(receiver.url, SECRET)
    repo = drv.world.repo(REPO)
    assert repo is not None
    issue = drv.issue(drv.unicode_key)
    pull = next(i for i in repo.issues.values() if i.pull_request)
    milestone = drv.world.milestone_named(repo, "v1.0")
    drv.world.add_issue(repo, "A new one", "alice", body="Found it.")
    drv.world.edit_issue(issue, title="Renamed", body="Now with steps.", assignees=["bob"],
                         milestone=milestone.number)
    drv.world.edit_issue(issue, assignees=[], milestone=None, state="closed")
    drv.world.edit_issue(issue, state="open")
    drv.world.add_labels(repo, issue, ["bug"])
    drv.world.remove_label(repo, issue, "bug")
    comment = drv.world.add_comment(repo, issue, "chen", "Same here.")
    drv.world.edit_comment(comment, "Same here, on Safari.")
    drv.world.delete_comment(comment)
    drv.world.edit_issue(pull, title="Ship it", assignees=["alice"], state="closed")
    drv.world.add_labels(repo, pull, ["tether:untethered"])
    drv.world.remove_label(repo, pull, "tether:untethered")
    sent: list[HookDelivery] = drv.deliver()
    seen = {(d.event, d.action) for d in sent}
    assert len(seen) >= 20, sorted(seen)
    for delivery in sent:
        name = "ping" if delivery.event == "ping" else \
            f"{delivery.event}-{delivery.action}".replace("_", "-")
        root = {"$ref": f"#/components/schemas/webhook-{name}", "components": components()}
        jsonschema.Draft7Validator(root).validate(delivery.payload())
