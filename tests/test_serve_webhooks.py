"""The whole loop on a loopback port: a person's edit in a sandbox tracker arrives as a signed
webhook, `tether serve` judges the item again and its annotation changes; Tether's own writes
coming back trigger nothing; forged and replayed deliveries change nothing. On SQLite and on
a real PostgreSQL."""

from __future__ import annotations

import socket
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import uvicorn
from tether.serve.app import create_app
from tether.serve.service import Service, Settings, StoreSecrets
from tether.testing import Driver
from tether.testing.test_writeback_suite import PREFIX, Tracker

SECRET = "a-long-random-hook-secret"
pytestmark = pytest.mark.usefixtures("routed_state")  # on SQLite and on PostgreSQL


@pytest.fixture
def served(driver: Driver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    if not hasattr(driver, "register_hook"):
        pytest.skip(f"{type(driver).__name__}: the example plugin takes no webhooks")
    for variable in ("GITHUB_WEBHOOK_SECRET", "JIRA_WEBHOOK_SECRET"):  # Asana hands its own
        monkeypatch.setenv(variable, SECRET)
    tracker = Tracker(driver, tmp_path)
    service = Service(Settings(tracker.folder / "tether.yaml", interval=86_400, debounce=0),
                      clock=lambda: driver.now() + timedelta(minutes=5),
                      load=lambda path: tracker.workspace())
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))  # the OS chooses the port
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    with tracker.workspace().open_store() as store:  # as `tether webhooks install` does
        store.expect_handshakes("src", service.clock() + StoreSecrets.WAIT)
        driver.register_hook(f"{url}/webhooks/src", SECRET)  # before Tether's first writes
    server = uvicorn.Server(uvicorn.Config(create_app(service), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]})
    thread.start()
    try:
        assert service.runner.wait_for(1, timeout=120)  # the first scheduled pass
        yield tracker, service, url
    finally:
        server.should_exit = True
        thread.join(60)


def edited(deliveries: list) -> Any:
    """The delivery a person's edit caused: the one the service accepted."""
    [edit] = [d for d in deliveries if d.status == 202]
    return edit


def verdicts(service: Service) -> dict[str, float]:
    """Webhook deliveries counted by verdict, from the service's /metrics."""
    found: dict[str, float] = {}
    for line in service.metrics.text().decode().splitlines():
        if line.startswith("tether_webhook_deliveries_total{"):
            verdict = line.split('verdict="', 1)[1].split('"', 1)[0]
            found[verdict] = found.get(verdict, 0) + float(line.rsplit(" ", 1)[1])
    return found


def test_an_edit_arrives_signed_and_its_annotation_follows(served) -> None:
    tracker, service, url = served
    driver = tracker.driver
    idle = sorted(tracker.idle())[0]
    assert f"{PREFIX}:idle" in driver.labels(idle)
    # Tether's own writes of the first pass come back: they change nothing.
    echoes = driver.deliver()
    assert echoes and all(d.status == 200 for d in echoes)
    assert service.runner.passes == 1 and verdicts(service).get("accepted", 0) == 0
    driver.edit(idle)  # a person works on it: no longer idle
    edit = edited(driver.deliver())
    assert edit.status == 202
    assert service.runner.wait_for(2, timeout=120)
    assert f"{PREFIX}:idle" not in driver.labels(idle)
    assert verdicts(service)["accepted"] == 1 and verdicts(service)["echo"] >= 1


def test_forged_and_replayed_deliveries_change_nothing(served) -> None:
    tracker, service, url = served
    driver = tracker.driver
    driver.deliver()  # what the first pass wrote
    driver.edit(sorted(tracker.idle())[0])
    edit = edited(driver.deliver())
    assert service.runner.wait_for(2, timeout=120)
    headers = dict(edit.headers)
    replay = requests.post(edit.url, data=edit.body, headers=headers, timeout=30)
    forged = requests.post(edit.url, data=edit.body + b" ", headers=headers, timeout=30)
    unsigned = requests.post(edit.url, data=edit.body, timeout=30,
                             headers={k: v for k, v in headers.items()
                                      if "signature" not in k.lower()})
    assert replay.status_code == 200 and replay.json() == {"verdict": "duplicate"}
    assert forged.status_code == 401 and unsigned.status_code in (400, 401)
    assert SECRET not in forged.text + unsigned.text
    with requests.Session() as session:  # a hundred more of each
        for n in range(100):
            assert session.post(edit.url, data=edit.body, headers=headers,
                                timeout=30).status_code == 200
            assert session.post(edit.url, data=edit.body + b" " * (n + 2), headers=headers,
                                timeout=30).status_code == 401
    assert service.runner.passes == 2  # none of them asked for a pass
    assert verdicts(service)["duplicate"] == 101
    assert verdicts(service)["refused_401"] >= 101


def test_a_delivery_taken_before_a_restart_is_still_a_duplicate_after_it(served) -> None:
    tracker, service, url = served
    driver = tracker.driver
    driver.deliver()
    driver.edit(sorted(tracker.idle())[0])
    edit = edited(driver.deliver())
    restarted = Service(service.settings, clock=service.clock, load=service.load)
    query = dict(parse_qsl(urlsplit(edit.url).query))
    delivery, verdict = restarted.deliver("src", dict(edit.headers), edit.body, query)
    assert verdict == "duplicate" and restarted.runner.passes == 0
