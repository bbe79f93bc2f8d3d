"""Jira admin webhooks end to end, Cloud and Data Center: the sandbox registers webhooks over
Jira's real endpoints and posts signed deliveries to a loopback receiver; the connector
verifies what arrived and says which issues it touches and whether it is Tether's echo."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest
import requests
from loopback import NoSecrets, Recorder
from tether.model import OpKind, WriteOp
from tether.pipeline.render import MARKER
from tether.webhook import Delivery, Refused, header
from tether_jira import JiraOptions
from tether_jira.conformance import PROJECT, RAVI, JiraDriver
from tether_jira.connector import JiraConnector
from tether_jira.sandbox import snapshot
from tether_jira.sandbox.api import HookDelivery

SECRET = "s3cr3t-for-the-admin-webhook"
SECRET_ENV = "JIRA_WEBHOOK_SECRET"
PREFIX = "tether"
HOOKS = "/rest/webhooks/1.0/webhook"
EVENTS = ["jira:issue_created", "jira:issue_updated", "jira:issue_deleted", "comment_created",
          "comment_updated", "comment_deleted", "issuelink_created", "issuelink_deleted"]
MIA = "5b10a2844c20165700ede21g"  # the token's user: Tether's account on the site


@pytest.fixture
def receiver() -> Iterator[Recorder]:
    got = Recorder("/webhooks/jira")
    yield got
    got.stop()


@pytest.fixture(params=["cloud", "datacenter"])
def site(request: pytest.FixtureRequest, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[JiraDriver]:
    """A seeded sandbox site (OPS-1..5 in scope, WEB-1 outside it), the hook secret set."""
    monkeypatch.setenv(SECRET_ENV, SECRET)
    drv = JiraDriver(tmp_path, request.param)
    drv.seed(5)
    drv.world.add_project("WEB", "Website")
    drv.world.create_issue("WEB", "Outside Tether's scope")
    yield drv
    drv.server.stop()


def admin(site: JiraDriver, token: str = "good") -> dict[str, Any]:
    """requests' auth for ``token`` as the flavour sends it."""
    if site.flavour == "cloud":
        email = "mia@example.com" if token == "good" else "ravi@example.com"
        return {"auth": (email, token)}
    return {"headers": {"Authorization": f"Bearer {token}"}}


def register(site: JiraDriver, url: str, secret: str | None = SECRET, jql: str = "",
             events: list[str] | None = None) -> dict[str, Any]:
    """POST an admin webhook to the sandbox, as `curl` from Jira's docs would."""
    body: dict[str, Any] = {"name": "Tether", "url": url, "events": events or EVENTS,
                            "filters": {"issue-related-events-section": jql},
                            "excludeBody": False}
    if secret is not None:
        body["secret"] = secret
    answer = requests.post(site.server.base_url + HOOKS, json=body, timeout=5, **admin(site))
    assert answer.status_code == 201, answer.text
    return answer.json()


def receive(connector: JiraConnector, got: tuple[dict[str, str], bytes]) -> Delivery:
    headers, body = got
    return connector.receive(headers, body, {}, NoSecrets(), PREFIX)


def person(site: JiraDriver) -> str:
    """How Jira names Ravi, who edits as a person would: accountId or username."""
    return RAVI if site.flavour == "cloud" else "ravi"


def tether(site: JiraDriver) -> str:
    return MIA if site.flavour == "cloud" else "mia"


def delivered(sent: list[HookDelivery], event: str) -> HookDelivery:
    return next(d for d in sent if d.event == event)


# -- registration ------------------------------------------------------------------------------

def test_admin_webhooks_are_registered_listed_and_removed_over_jira_endpoints(
        site: JiraDriver, receiver: Recorder) -> None:
    made = register(site, receiver.url, jql=f"project = {PROJECT}")
    assert made["name"] == "Tether" and made["url"] == receiver.url and made["enabled"]
    assert made["filters"] == {"issue-related-events-section": f"project = {PROJECT}"}
    assert made["self"] == f"{site.server.base_url}{HOOKS}/1"
    assert "secret" not in made and SECRET not in json.dumps(made)  # never shown back
    listed = requests.get(site.server.base_url + HOOKS, timeout=5, **admin(site)).json()
    assert [h["self"] for h in listed] == [made["self"]]
    assert requests.delete(made["self"], timeout=5, **admin(site)).status_code == 204
    assert requests.get(made["self"], timeout=5, **admin(site)).status_code == 404
    site.edit(f"{PROJECT}-1")
    assert site.deliver() == [] and receiver.got == []  # a removed hook hears nothing


def test_registration_refuses_what_jira_refuses(site: JiraDriver, receiver: Recorder) -> None:
    base = site.server.base_url + HOOKS
    bad_jql = {"name": "x", "url": receiver.url, "events": EVENTS,
               "filters": {"issue-related-events-section": "project = = OPS"}}
    assert requests.post(base, json=bad_jql, timeout=5, **admin(site)).status_code == 400
    no_url = {"name": "x", "events": EVENTS}
    answer = requests.post(base, json=no_url, timeout=5, **admin(site))
    assert answer.status_code == 400 and "url" in answer.json()["errors"]
    # Ravi administers nothing: only Jira administrators manage webhooks.
    plain = requests.post(base, json={"name": "x", "url": receiver.url, "events": EVENTS},
                          timeout=5, **admin(site, "plain"))
    assert plain.status_code == 403
    assert requests.get(base, timeout=5).status_code == 401
    assert site.world.hooks == {}


def test_webhooks_survive_a_sandbox_restart(site: JiraDriver, receiver: Recorder) -> None:
    register(site, receiver.url, jql=f"project = {PROJECT}")
    world, _ = snapshot.load(json.loads(json.dumps(snapshot.dump(site.world))))
    [hook] = world.hooks.values()
    assert (hook.url, hook.secret, hook.jql) == (receiver.url, SECRET, f"project = {PROJECT}")


# -- a person's edit, delivered and read ---------------------------------------------------------

def test_a_persons_edit_arrives_signed_and_names_the_issue(site: JiraDriver,
                                                           receiver: Recorder) -> None:
    register(site, receiver.url, jql=f"project = {PROJECT}")
    key = f"{PROJECT}-2"
    site.edit(key)
    [sent] = site.deliver()
    assert sent.status == 200 and len(receiver.got) == 1
    headers, body = receiver.got[0]
    assert header(headers, "X-Hub-Signature") == \
        "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert header(headers, "X-Hub-Signature-256") is None  # Jira's is WebSub style
    payload = json.loads(body)
    assert payload["webhookEvent"] == "jira:issue_updated"
    assert payload["issue_event_type_name"] == "issue_updated"
    assert isinstance(payload["timestamp"], int) and payload["issue"]["key"] == key
    [item] = payload["changelog"]["items"]
    assert (item["field"], item["fieldtype"], item["toString"]) == \
        ("summary", "jira", site.world.issues[key].summary)
    assert payload["user"]["accountId" if site.flavour == "cloud" else "name"] == person(site)
    delivery = receive(site.connector(), receiver.got[0])
    assert delivery == Delivery(header(headers, "X-Atlassian-Webhook-Identifier") or "",
                                "jira:issue_updated", (key,), person(site), own=False)
    assert delivery.id


def test_a_persons_comment_raises_both_comment_and_issue_events(site: JiraDriver,
                                                                receiver: Recorder) -> None:
    register(site, receiver.url)
    key = f"{PROJECT}-3"
    site.world.comment(key, "Is this still blocked?", author=RAVI)
    sent = site.deliver()
    assert sorted(d.event for d in sent) == ["comment_created", "jira:issue_updated"]
    assert delivered(sent, "jira:issue_updated").payload()["issue_event_type_name"] == \
        "issue_commented"
    connector = site.connector()
    for got in receiver.got:
        delivery = receive(connector, got)
        assert (delivery.keys, delivery.actor, delivery.own) == ((key,), person(site), False)


# -- Tether's own writes come back as its echo ---------------------------------------------------

def test_tethers_label_write_is_its_echo_even_before_it_knows_its_account(
        site: JiraDriver, receiver: Recorder) -> None:
    register(site, receiver.url)
    key = f"{PROJECT}-1"
    connector = site.connector()
    connector.pull(None)  # a full pull asks no /myself: the account is not known yet
    [result] = connector.apply([WriteOp("src", key, OpKind.ADD_LABEL, f"{PREFIX}:at-risk",
                                        "test")])
    assert result.ok
    [sent] = site.deliver()
    labels = sent.payload()["changelog"]["items"]
    assert [i["field"] for i in labels] == ["labels"]
    assert f"{PREFIX}:at-risk" in labels[0]["toString"].split()
    delivery = receive(connector, receiver.got[0])
    assert delivery.own and delivery.keys == (key,) and delivery.actor == tether(site)
    # A person touching Tether's labels and others too is no echo.
    site.world.edit(key, RAVI, labels=[*site.labels(key), "customer", f"{PREFIX}:by-hand"])
    site.deliver()
    assert not receive(connector, receiver.got[-1]).own


def test_tethers_comment_is_its_echo_by_account_and_by_comment(site: JiraDriver,
                                                               receiver: Recorder) -> None:
    register(site, receiver.url)
    key = f"{PROJECT}-4"
    connector = site.connector()
    connector.pull(None)
    [result] = connector.apply([WriteOp("src", key, OpKind.CREATE_COMMENT,
                                        f"{MARKER}\nAt risk: no KPI.", "test")])
    assert result.ok
    sent = site.deliver()
    assert sorted(d.event for d in sent) == ["comment_created", "jira:issue_updated"]
    for got in receiver.got:  # the account is known from the comment write's answer
        delivery = receive(connector, got)
        assert delivery.own and delivery.keys == (key,) and delivery.actor == tether(site)
    # A person editing Tether's comment changes only Tether's comment: still its echo.
    receiver.got.clear()
    assert result.comment_id is not None
    site.world.edit_comment(key, result.comment_id, "edited by hand", author=RAVI)
    site.deliver()
    for got in receiver.got:
        delivery = receive(connector, got)
        assert delivery.own and delivery.actor == person(site)
    # A person's own comment on the same issue is no echo.
    receiver.got.clear()
    site.world.comment(key, "Disagree", author=RAVI)
    site.deliver()
    assert not any(receive(connector, got).own for got in receiver.got)


def test_the_account_is_remembered_for_a_service_that_reads_from_memory(
        site: JiraDriver, receiver: Recorder) -> None:
    """`tether serve` hands the stored memory to the source's connector before receive."""
    register(site, receiver.url)
    key = f"{PROJECT}-5"
    passing = site.connector()
    passing.pull(None)
    passing.read_annotations([], PREFIX)
    passing.apply([WriteOp("src", key, OpKind.CREATE_COMMENT, f"{MARKER}\nhello", "test")])
    stored = json.loads(json.dumps(passing.memory))  # as the state store keeps it
    site.deliver()
    listening = site.connector()
    listening.memory = stored
    assert all(receive(listening, got).own for got in receiver.got)
    # a label of a person's choosing, made through Tether's token, is still Tether's account
    site.world.edit(key, MIA, labels=["customer"])
    site.deliver()
    assert receive(listening, receiver.got[-1]).own


# -- what is refused ------------------------------------------------------------------------------

def test_unsigned_wrongly_signed_and_tampered_deliveries_are_refused_401(
        site: JiraDriver, receiver: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    register(site, receiver.url)
    site.edit(f"{PROJECT}-1")
    site.deliver()
    headers, body = receiver.got[0]
    connector = site.connector()
    tampered = body.replace(b"(edited)", b"(forged)")
    unsigned = {k: v for k, v in headers.items() if k.lower() != "x-hub-signature"}
    sha1 = {**unsigned, "X-Hub-Signature": "sha1=" + hashlib.sha1(body).hexdigest()}
    for h, b in ((headers, tampered), (unsigned, body), (sha1, body)):
        with pytest.raises(Refused) as refused:
            receive(connector, (h, b))
        assert refused.value.status == 401 and SECRET not in str(refused.value)
    monkeypatch.setenv(SECRET_ENV, "another secret")
    with pytest.raises(Refused) as wrong:
        receive(connector, (headers, body))
    assert wrong.value.status == 401 and "another secret" not in str(wrong.value)
    assert SECRET_ENV in str(wrong.value)
    monkeypatch.delenv(SECRET_ENV)
    with pytest.raises(Refused) as unset:
        receive(connector, (headers, body))
    assert unset.value.status == 401 and f"${SECRET_ENV}" in str(unset.value)


def test_a_hook_without_a_secret_sends_unsigned_deliveries_that_are_refused(
        site: JiraDriver, receiver: Recorder) -> None:
    register(site, receiver.url, secret=None)
    site.edit(f"{PROJECT}-1")
    site.deliver()
    assert header(receiver.got[0][0], "X-Hub-Signature") is None
    with pytest.raises(Refused) as refused:
        receive(site.connector(), receiver.got[0])
    assert refused.value.status == 401


@pytest.mark.parametrize("body", [b"", b"not json", b"\xff\xfe", b"[1, 2]", b"{}",
                                  b'{"webhookEvent": "jira:issue_updated"}',
                                  b'{"webhookEvent": "jira:issue_updated", "issue": {"key": 7}}',
                                  b'{"webhookEvent": "comment_created", "issue": {"key": "OPS-1"}}',
                                  b'{"webhookEvent": "issuelink_created", "issueLink": {}}',
                                  b'{"webhookEvent": "jira:issue_updated", "issue": '
                                  b'{"key": "OPS-1"}, "changelog": {"items": 3}}'])
def test_signed_garbage_is_refused_400(site: JiraDriver, body: bytes) -> None:
    headers = {"X-Hub-Signature": "sha256=" + hmac.new(SECRET.encode(), body,
                                                       hashlib.sha256).hexdigest(),
               "X-Atlassian-Webhook-Identifier": "x-1"}
    with pytest.raises(Refused) as refused:
        receive(site.connector(), (headers, body))
    assert refused.value.status == 400


# -- scope and links --------------------------------------------------------------------------------

def test_an_issue_outside_the_configured_projects_is_not_among_the_keys(
        site: JiraDriver, receiver: Recorder) -> None:
    register(site, receiver.url)  # no JQL filter: the site sends every project's events
    site.world.edit("WEB-1", RAVI, summary="A website change")
    site.deliver()
    delivery = receive(site.connector(), receiver.got[0])
    assert delivery.event == "jira:issue_updated" and delivery.keys == ()


def test_a_jql_filter_keeps_other_projects_events_away(site: JiraDriver,
                                                       receiver: Recorder) -> None:
    register(site, receiver.url, jql=f"project = {PROJECT}")
    site.world.edit("WEB-1", RAVI, summary="A website change")
    assert site.deliver() == []


def test_an_issue_link_touches_both_ends_in_scope(site: JiraDriver, receiver: Recorder) -> None:
    register(site, receiver.url)
    connector = site.connector()
    connector.pull(None)  # links name issues by id: the pull tells which key an id is
    link = site.world.link("Blocks", f"{PROJECT}-1", f"{PROJECT}-3", author=RAVI)
    site.world.link("Relates", "WEB-1", f"{PROJECT}-2", author=RAVI)
    site.world.unlink(link.id, author=RAVI)
    sent = site.deliver()
    assert [d.event for d in sent] == ["issuelink_created", "issuelink_created",
                                       "issuelink_deleted"]
    payload = sent[0].payload()["issueLink"]
    assert payload["sourceIssueId"] == int(site.world.issues[f"{PROJECT}-1"].id)
    assert payload["issueLinkType"]["outwardName"] == "blocks"
    keys = [receive(connector, got).keys for got in receiver.got]
    assert keys == [(f"{PROJECT}-1", f"{PROJECT}-3"), (f"{PROJECT}-2",),
                    (f"{PROJECT}-1", f"{PROJECT}-3")]
    # Before any pull the connector cannot tell which issues the ids are.
    assert receive(site.connector(), receiver.got[0]).keys == ()


def test_a_jql_scope_counts_only_issues_the_pull_brought(site: JiraDriver,
                                                        receiver: Recorder) -> None:
    register(site, receiver.url)
    connector = site.connector(jql=f"key in ({PROJECT}-1, {PROJECT}-2)")
    connector.pull(None)
    for key in (f"{PROJECT}-1", f"{PROJECT}-4"):
        site.world.edit(key, RAVI, summary="changed")
    site.deliver()
    assert [receive(connector, got).keys for got in receiver.got] == [(f"{PROJECT}-1",), ()]


# -- the driver and replays --------------------------------------------------------------------------

def test_the_driver_registers_and_delivers_for_the_service_tests(site: JiraDriver,
                                                                 receiver: Recorder) -> None:
    site.register_hook(receiver.url, SECRET)
    key = f"{PROJECT}-2"
    site.person_removes_label(key, "nonexistent")  # labels unchanged: nothing to report
    site.edit(key)
    created = site.world.create_issue(PROJECT, "New work")
    site.world.delete_issue(created.key, author=RAVI)
    sent = site.deliver()
    assert [(d.event, d.status) for d in sent] == [("jira:issue_updated", 200),
                                                   ("jira:issue_created", 200),
                                                   ("jira:issue_deleted", 200)]
    connector = site.connector()
    assert [receive(connector, got).keys for got in receiver.got] == \
        [(key,), (created.key,), (created.key,)]
    assert site.api.deliveries.delivered == sent and site.deliver() == []


def test_a_redelivery_keeps_the_identifier_and_signature(site: JiraDriver,
                                                         receiver: Recorder) -> None:
    site.register_hook(receiver.url, SECRET)
    site.edit(f"{PROJECT}-1")
    [first] = site.deliver()
    again = site.api.deliveries.redeliver(first.id)
    assert again.status == 200 and again.body == first.body
    headers = receiver.got[1][0]
    assert header(headers, "X-Atlassian-Webhook-Retry") == "1"
    connector = site.connector()
    assert receive(connector, receiver.got[0]).id == receive(connector, receiver.got[1]).id


def test_an_unreachable_receiver_is_recorded_not_raised(site: JiraDriver,
                                                        receiver: Recorder) -> None:
    url = receiver.url
    receiver.stop()
    site.register_hook(url, SECRET)
    site.edit(f"{PROJECT}-1")
    [sent] = site.deliver()
    assert sent.status == 0 and sent.error


def test_the_secret_variable_must_be_a_variable_name(site: JiraDriver) -> None:
    with pytest.raises(pydantic.ValidationError, match="environment variable name"):
        JiraOptions.model_validate({**site.options().model_dump(),
                                    "webhook_secret_env": "s3cr3t value!"})
    assert site.options().webhook_secret_env == SECRET_ENV
