"""Asana webhooks end to end: the sandbox establishes webhooks over its real endpoints (the
handshake runs against a loopback receiver during POST /webhooks, which answers it through
the connector) and posts signed deliveries to it; the connector verifies what arrived and
says which tasks it touches and whether it is Tether's own echo."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from loopback import Loopback
from tether.model import OpKind, WriteOp
from tether.pipeline.render import MARKER
from tether.webhook import Delivery, Refused
from tether_asana import AsanaConnector
from tether_asana.conformance import AsanaDriver
from tether_asana.sandbox.hooks import HookDelivery, Hooks
from tether_asana.sandbox.state import AsanaState
from tether_asana.webhooks import ECHO

PREFIX = "tether"
TOKEN = "ASANA_TOKEN"
AUTH = {"Authorization": "Bearer good"}


class Secrets:
    """HookSecrets in memory, as the service keeps them in its store."""

    def __init__(self) -> None:
        self.kept: dict[str, str] = {}
        self.waiting = True  # as while `tether webhooks install` runs

    def get(self, hook: str) -> str | None:
        return self.kept.get(hook)

    def put(self, hook: str, secret: str) -> None:
        self.kept[hook] = secret

    def expected(self) -> bool:
        return self.waiting


class Receiver:
    """Stands in for `tether serve`: records each POST (query, headers, raw body); a
    handshake it answers through ``connector.receive`` (the echo, or the refusal's status),
    anything else with ``status`` (200 by default)."""

    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], dict[str, str], bytes]] = []
        self.secrets = Secrets()
        self.connector: AsanaConnector | None = None
        self.status = 200
        self.server = Loopback("/webhooks/asana", self._answer)
        self.url = self.server.url

    def _answer(self, query: dict[str, str], headers: dict[str, str], body: bytes
                ) -> tuple[int, dict[str, str]]:
        self.got.append((query, headers, body))
        if "X-Hook-Secret" not in headers:
            return self.status, {}
        assert self.connector is not None
        try:
            reply = self.connector.receive(headers, body, query, self.secrets, PREFIX).reply
        except Refused as refused:
            return refused.status, {}
        assert reply is not None
        return reply.status, reply.headers

    def stop(self) -> None:
        self.server.stop()

    def deliveries(self) -> list[tuple[dict[str, str], dict[str, str], bytes]]:
        """What arrived besides handshakes."""
        return [g for g in self.got if "X-Hook-Secret" not in g[1]]


class Setup:
    """The driver's workspace, a connector aimed at it, and a receiver for its webhooks."""

    def __init__(self, drv: AsanaDriver, receiver: Receiver):
        self.drv, self.receiver = drv, receiver
        self.connector = drv.connector()
        assert isinstance(self.connector, AsanaConnector)
        receiver.connector = self.connector
        self.keys = drv.seed(4)
        self.project = drv.project["gid"]
        self.base = drv.url

    @property
    def state(self) -> AsanaState:
        return self.drv.state

    @property
    def hooks(self) -> Hooks:
        return self.drv.api.hooks

    def create(self, target: str | None = None, **extra: Any) -> requests.Response:
        """POST /webhooks on the project, as `tether webhooks install` would."""
        target = target or f"{self.receiver.url}?hook={self.project}"
        return requests.post(f"{self.base}/webhooks", headers=AUTH, timeout=10,
                             json={"data": {"resource": self.project, "target": target, **extra}})

    def hooked(self) -> str:
        """A webhook made and its handshake done; returns its secret."""
        made = self.create()
        assert made.status_code == 201, made.text
        self.receiver.got.clear()
        return str(made.json()["X-Hook-Secret"])

    def received(self, connector: AsanaConnector | None = None) -> list[Delivery]:
        """What the connector reads from each recorded delivery, oldest first."""
        reader = connector or self.connector
        return [reader.receive(headers, body, query, self.receiver.secrets, PREFIX)
                for query, headers, body in self.receiver.deliveries()]

    def refused(self, headers: dict[str, str], body: bytes,
                query: dict[str, str] | None = None, secret: str = "") -> Refused:
        with pytest.raises(Refused) as caught:
            self.connector.receive(headers, body, {"hook": self.project} if query is None
                                   else query, self.receiver.secrets, PREFIX)
        if secret:
            assert secret not in caught.value.reason  # never the secret, whatever went wrong
        return caught.value


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    monkeypatch.setenv(TOKEN, "good")  # restored afterwards; the driver sets it too
    drv = AsanaDriver(tmp_path)
    receiver = Receiver()
    yield Setup(drv, receiver)
    receiver.stop()
    drv.server.stop()


def sign(body: bytes, secret: str) -> dict[str, str]:
    mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Hook-Signature": mac}


def label(key: str, name: str, kind: OpKind = OpKind.ADD_LABEL) -> WriteOp:
    return WriteOp("src", key, kind, name, "test")


# -- the handshake ----------------------------------------------------------------------------

def test_the_handshake_is_answered_and_its_secret_kept(setup: Setup) -> None:
    made = setup.create()
    assert made.status_code == 201, made.text
    secret = made.json()["X-Hook-Secret"]
    hook = made.json()["data"]
    assert hook["resource"] == {"gid": setup.project, "name": "Website",
                                "resource_type": "project"}
    assert hook["target"] == f"{setup.receiver.url}?hook={setup.project}" and hook["active"]
    assert "secret" not in json.dumps(hook)
    # The handshake came during the POST, carrying the secret Asana chose; it was echoed.
    [(query, headers, body)] = setup.receiver.got
    assert query == {"hook": setup.project} and headers["X-Hook-Secret"] == secret
    assert "X-Hook-Signature" not in headers and body == b""
    assert setup.receiver.secrets.kept == {setup.project: secret}
    assert len(secret) == 64


def test_webhooks_are_listed_and_deleted_over_the_api(setup: Setup) -> None:
    setup.hooked()
    workspace = setup.state.workspace["gid"]
    listed = requests.get(f"{setup.base}/webhooks", params={"workspace": workspace},
                          headers=AUTH, timeout=10)
    [hook] = listed.json()["data"]
    assert set(hook) == {"gid", "resource_type", "active", "resource", "target"}
    other = requests.get(f"{setup.base}/webhooks", headers=AUTH, timeout=10,
                         params={"workspace": workspace, "resource": setup.keys[0]})
    assert other.json()["data"] == []
    missing = requests.get(f"{setup.base}/webhooks", headers=AUTH, timeout=10)
    assert missing.status_code == 400
    gone = requests.delete(f"{setup.base}/webhooks/{hook['gid']}", headers=AUTH, timeout=10)
    assert (gone.status_code, gone.json()) == (200, {"data": {}})
    setup.drv.edit(setup.keys[0])
    assert setup.hooks.deliver() == []  # nothing more is sent to a deleted webhook
    again = requests.delete(f"{setup.base}/webhooks/{hook['gid']}", headers=AUTH, timeout=10)
    assert again.status_code == 404


def test_a_second_handshake_for_the_same_hook_is_refused(setup: Setup) -> None:
    secret = setup.hooked()
    forged = setup.refused({"X-Hook-Secret": "f" * 64}, b"", secret=secret)
    assert forged.status == 401 and "f" * 64 not in forged.reason
    assert setup.receiver.secrets.kept == {setup.project: secret}
    # Through the sandbox too: the same target is a duplicate (Asana's 403); another target
    # naming the same hook fails its handshake, so no webhook is made and the secret stays.
    assert setup.create().status_code == 403
    other = setup.create(f"{setup.receiver.url}?hook={setup.project}&again=1")
    assert other.status_code == 400, other.text
    assert len(setup.state.webhooks) == 1
    assert setup.receiver.secrets.kept == {setup.project: secret}


def test_a_handshake_no_install_waits_for_is_refused_and_plants_no_secret(setup: Setup) -> None:
    setup.receiver.secrets.waiting = False  # no `tether webhooks install` is running
    planted = setup.refused({"X-Hook-Secret": "e" * 64}, b"", secret="e" * 64)
    assert planted.status == 401 and "tether webhooks install" in planted.reason
    refused = setup.create()  # through the sandbox: Asana makes no webhook either
    assert refused.status_code == 400 and setup.state.webhooks == {}
    assert setup.receiver.secrets.kept == {}


def test_a_target_that_does_not_echo_makes_no_webhook(setup: Setup) -> None:
    setup.receiver.connector = setup.drv.connector(projects=["1299999999999999"])
    refused = setup.create()
    assert refused.status_code == 400
    assert "handshake" in refused.json()["errors"][0]["message"]
    assert setup.state.webhooks == {} and setup.receiver.secrets.kept == {}
    assert setup.refused({"X-Hook-Secret": "a" * 64}, b"", {}).status == 400  # no hook named


# -- deliveries -------------------------------------------------------------------------------

def test_a_persons_edit_arrives_signed_and_touches_its_task(setup: Setup) -> None:
    secret = setup.hooked()
    key = setup.keys[1]
    setup.drv.edit(key)
    assert setup.receiver.deliveries() == []  # nothing is sent before deliver()
    [sent] = setup.drv.deliver()
    assert isinstance(sent, HookDelivery) and sent.status == 200
    [(query, headers, body)] = setup.receiver.deliveries()
    assert query == {"hook": setup.project}
    assert headers["X-Hook-Signature"] == hmac.new(secret.encode(), body,
                                                   hashlib.sha256).hexdigest()
    events = json.loads(body)["events"]
    # The real shape: compact resources, no names, no user content.
    assert events[0] == {"user": {"gid": setup.drv.human, "resource_type": "user"},
                         "created_at": events[0]["created_at"], "action": "changed",
                         "resource": {"gid": key, "resource_type": "task",
                                      "resource_subtype": "default_task"},
                         "parent": None, "change": {"field": "name", "action": "changed"}}
    assert events[1]["resource"]["resource_type"] == "story"
    assert events[1]["parent"] == {"gid": key, "resource_type": "task",
                                   "resource_subtype": "default_task"}
    [got] = setup.received()
    assert got.keys == (key,) and got.actor == setup.drv.human and not got.own
    assert got.event == "task.changed,story.added" and got.id == headers["X-Hook-Signature"]


def test_a_comment_by_a_person_touches_its_task(setup: Setup) -> None:
    setup.hooked()
    key = setup.keys[2]
    setup.state.comment(setup.state.tasks[key], setup.drv.human, "Is this still blocked?")
    setup.drv.deliver()
    [got] = setup.received()
    assert got.keys == (key,) and "story.added" in got.event and not got.own
    assert got.actor == setup.drv.human


def test_tethers_own_writes_come_back_as_its_echo(setup: Setup) -> None:
    setup.hooked()
    key = setup.keys[0]
    results = setup.connector.apply([
        label(key, "tether:kpi:nps"),
        WriteOp("src", key, OpKind.CREATE_COMMENT, f"{MARKER}\nThis task drifts.", "test")])
    assert all(r.ok for r in results), [r.error for r in results]
    [sent] = setup.drv.deliver()
    assert sent.status == 200
    [got] = setup.received()
    assert got.own and got.keys == (key,) and got.actor == setup.state.me
    assert {"task.changed", "story.added"} <= set(got.event.split(","))


def test_a_label_write_is_known_as_tethers_without_its_account(setup: Setup) -> None:
    """Events name the tag by gid only: memory holds which tags are Tether's, so its label
    change is its echo even where the account is not known (a fresh process)."""
    setup.hooked()
    key = setup.keys[0]
    assert all(r.ok for r in setup.connector.apply([label(key, "tether:kpi:nps")]))
    setup.drv.deliver()
    fresh = setup.drv.connector()
    assert isinstance(fresh, AsanaConnector)
    fresh.memory = json.loads(json.dumps(setup.connector.memory))
    fresh.memory[ECHO].pop("me", None)
    [got] = setup.received(fresh)
    assert got.own and got.actor == setup.state.me
    # A person's tag of their own is theirs: it touches the task.
    person = setup.state.add_tag("urgent", by=setup.drv.human)
    setup.state.add_tag_to(setup.state.tasks[key], person, setup.drv.human)
    setup.receiver.got.clear()
    setup.drv.deliver()
    [theirs] = setup.received(fresh)
    assert not theirs.own and theirs.keys == (key,)


def test_a_heartbeat_is_accepted(setup: Setup) -> None:
    setup.hooked()
    [beat] = setup.drv.api.heartbeat()
    assert beat.status == 200 and beat.payload() == {"events": []}
    [got] = setup.received()
    assert got.event == "heartbeat" and got.keys == () and not got.own and got.id


def test_a_replayed_delivery_keeps_its_id(setup: Setup) -> None:
    setup.hooked()
    setup.drv.edit(setup.keys[0])
    [first] = setup.drv.deliver()
    setup.hooks.replay(first)
    setup.drv.edit(setup.keys[1])
    setup.drv.deliver()
    ids = [d.id for d in setup.received()]
    assert ids[0] == ids[1] != ids[2]


def test_a_failed_delivery_is_sent_again_unchanged(setup: Setup) -> None:
    setup.hooked()
    setup.drv.edit(setup.keys[0])
    setup.receiver.status = 503
    [failed] = setup.drv.deliver()
    assert failed.status == 503
    listed = requests.get(f"{setup.base}/webhooks/{failed.hook}", headers=AUTH, timeout=10)
    assert listed.json()["data"]["delivery_retry_count"] == 1
    setup.receiver.status = 200
    setup.drv.edit(setup.keys[1])
    again, newer = setup.drv.deliver()
    assert (again.body, again.headers, again.status) == (failed.body, failed.headers, 200)
    assert newer.body != failed.body
    assert setup.drv.deliver() == []  # nothing owed any more


def test_events_outside_the_webhooks_resource_are_not_sent(setup: Setup) -> None:
    setup.hooked()
    other = setup.state.add_project("Elsewhere")
    task = setup.state.add_task(other["gid"], "Not ours", creator=setup.drv.human)
    setup.state.rename(task, "Still not ours", setup.drv.human)
    assert setup.drv.deliver() == []


def test_filters_let_only_what_they_name_through(setup: Setup) -> None:
    made = setup.create(filters=[{"resource_type": "story", "action": "added"}])
    assert made.status_code == 201, made.text
    setup.receiver.got.clear()
    setup.drv.edit(setup.keys[0])
    [sent] = setup.drv.deliver()
    assert {e["resource"]["resource_type"] for e in sent.payload()["events"]} == {"story"}
    bad = setup.create(f"{setup.receiver.url}?hook={setup.project}&x=1",
                       filters=[{"fields": ["name"]}])
    assert bad.status_code == 400


# -- refusals ---------------------------------------------------------------------------------

def test_unsigned_forged_or_tampered_deliveries_are_refused(setup: Setup) -> None:
    secret = setup.hooked()
    setup.drv.edit(setup.keys[0])
    setup.drv.deliver()
    [(query, headers, body)] = setup.receiver.deliveries()
    tampered = body.replace(setup.keys[0].encode(), setup.keys[1].encode())
    assert setup.refused(headers, tampered, query, secret).status == 401
    assert setup.refused(sign(body, "not-the-secret"), body, query, secret).status == 401
    unsigned = {k: v for k, v in headers.items() if k != "X-Hook-Signature"}
    assert setup.refused(unsigned, body, query, secret).status == 401
    elsewhere = {"hook": setup.keys[0]}  # a hook with no secret kept
    assert setup.refused(headers, body, elsewhere, secret).status == 401
    assert setup.refused(headers, body, {}, secret).status == 400  # no hook named at all


@pytest.mark.parametrize("body", [b"\xff\xfe not json", b"<html>", b"[]", b'{"data": []}',
                                  b'{"events": {}}', b'{"events": [1]}',
                                  b'{"events": [{"action": "poked", "resource": {}}]}'])
def test_malformed_deliveries_are_refused(setup: Setup, body: bytes) -> None:
    secret = setup.hooked()
    assert setup.refused(sign(body, secret), body, secret=secret).status == 400


def test_a_project_no_longer_configured_touches_nothing(setup: Setup) -> None:
    setup.hooked()
    setup.drv.edit(setup.keys[0])
    setup.drv.deliver()
    narrowed = setup.drv.connector(projects=["1299999999999999"])
    assert isinstance(narrowed, AsanaConnector)
    [got] = setup.received(narrowed)
    assert got.keys == () and not got.own


# -- the driver -------------------------------------------------------------------------------

def test_the_driver_registers_a_webhook_with_the_handshake(setup: Setup) -> None:
    setup.drv.register_hook(setup.receiver.url, "ignored: Asana chooses the secret")
    [(query, headers, _)] = setup.receiver.got
    assert query == {"hook": setup.project}
    assert setup.receiver.secrets.kept == {setup.project: headers["X-Hook-Secret"]}
    setup.receiver.got.clear()
    setup.drv.edit(setup.keys[3])
    [sent] = setup.drv.deliver()
    assert sent.status == 200 and setup.received()[0].keys == (setup.keys[3],)
    with pytest.raises(AssertionError, match="not made"):
        setup.drv.register_hook(setup.receiver.url + "?hook=1", "")  # its handshake refused


def test_the_sandbox_keeps_its_webhooks_across_a_restart(setup: Setup) -> None:
    setup.hooked()
    saved = AsanaState.from_json(setup.state.to_json())
    assert saved.webhooks == setup.state.webhooks



def test_tether_installs_lists_and_removes_its_webhooks_through_asanas_api(
        setup: Setup) -> None:
    connector = setup.connector
    [made] = connector.install_hooks(setup.receiver.url)
    assert made.scope == setup.project and made.url == f"{setup.receiver.url}?hook={setup.project}"
    assert setup.receiver.secrets.kept[setup.project]  # the handshake was answered and kept
    assert connector.install_hooks(setup.receiver.url) == []  # never a second one
    assert connector.hooks(setup.receiver.url) == [made]
    assert connector.hooks("https://elsewhere.example/webhooks/asana") == []
    assert connector.remove_hooks(setup.receiver.url) == [made]
    assert connector.hooks(setup.receiver.url) == []
