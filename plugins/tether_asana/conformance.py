"""Conformance driver: the asana connector against the Asana sandbox (tags mode).

Declared under the ``tether.testing`` entry-point group as ``asana``.
"""

from __future__ import annotations

import math
import os
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tether.sandbox import LoggedRequest
from tether.sdk import Connector, FakeClock
from tether.testing import Driver

from tether_asana.connector import AsanaConnector
from tether_asana.options import AsanaOptions
from tether_asana.sandbox.api import AsanaApi
from tether_asana.sandbox.hooks import HookDelivery
from tether_asana.sandbox.html import mentions
from tether_asana.sandbox.serve import serve
from tether_asana.sandbox.state import AsanaState, Record, StateError
from tether_asana.sandbox.views import API

UNICODE_TITLE = "Ünïcødé ✓ 数据"
SECTIONS = ["Backlog", "In Progress", "Done"]


class AsanaDriver:
    """One workspace, one project with sections and a Story Points field, one human user."""

    setup_calls = 0  # a pull is list pages only: project and fields come inside the tasks
    token_variable = "ASANA_TOKEN"

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.state = AsanaState()
        self.human = self.state.add_user("Ada Lovelace")["gid"]
        self.points = self.state.add_field("Story Points", "number")
        self.project = self.state.add_project("Website", SECTIONS, [self.points["gid"]])
        self.server = serve(self.state)
        api = self.server.api
        assert isinstance(api, AsanaApi)
        self.api = api
        self.retry_clock = FakeClock()
        self.unicode_key = ""

    @property
    def url(self) -> str:
        return self.server.base_url + API

    def register_hook(self, url: str, secret: str = "") -> None:
        """Establish a webhook on the project for ``url``, as `tether webhooks install` does
        with Tether's token: ``hook=<project gid>`` is added to the URL's query (unless it
        has one) and, as Asana does, the handshake is POSTed to it now; the receiver must
        echo X-Hook-Secret, else AssertionError. A receiver not listening yet gets the
        handshake first on the next :meth:`deliver` instead (the webhook collects events
        meanwhile), so a test may register before starting its server. ``secret`` is
        ignored: Asana chooses the secret and hands it over in the handshake. Made in the
        sandbox's state, not over HTTP, so the request log stays Tether's. Nothing else is
        sent before :meth:`deliver`."""
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        query.setdefault("hook", self.project["gid"])
        target = urlunsplit(parts._replace(query=urlencode(query)))
        try:
            self.api.hooks.create(self.project["gid"], target, by=self.state.me, wait=True)
        except StateError as exc:
            raise AssertionError(f"the webhook to {target} was not made: {exc.message}") \
                from None

    def deliver(self) -> list[HookDelivery]:
        """Post the events of every change since the last call (people's edits through this
        driver, and writes through the API, Tether's own included) to each webhook, one
        request per webhook, signed as Asana signs them (X-Hook-Signature); a delivery not
        answered 2xx is sent again first on the next call. Returns the requests with the
        receiver's answers (``status``; 0 when unreachable). Synchronous: when it returns,
        every answer is in."""
        return self.api.deliver()

    def seed(self, n: int) -> list[str]:
        """``n`` tasks made by a person a month ago; the last is the unicode/null one."""
        keys = []
        for i in range(n):
            odd = i == n - 1
            stamp = self.state.ago(30 + (n - i) / 1440)  # a minute apart, oldest first
            task = self.state.add_task(
                self.project["gid"], UNICODE_TITLE if odd else f"Task {i}",
                notes="" if odd else f"Details of task {i}.", section=SECTIONS[i % 3],
                assignee=None if odd else self.human, creator=self.human,
                completed=not odd and i % 3 == 2,
                values={} if odd else {self.points["gid"]: i % 8 + 1},
                created_at=stamp, modified_at=stamp)
            keys.append(task["gid"])
        self.unicode_key = keys[-1]
        return keys

    def task(self, key: str) -> Record:
        return self.state.tasks[key]

    def now(self) -> datetime:
        return self.state.clock.now()

    def edit(self, key: str) -> None:
        task = self.task(key)
        self.state.rename(task, task["name"] + " (edited)", self.human)

    def labels(self, key: str) -> set[str]:
        return {self.state.tags[g]["name"] for g in self.task(key)["tags"]}

    def comments(self, key: str) -> list[str]:
        return [s["text"] for s in self._comment_stories(key)]

    def person_removes_label(self, key: str, label: str) -> None:
        task = self.task(key)
        for gid in list(task["tags"]):
            if self.state.tags[gid]["name"] == label:
                self.state.remove_tag_from(task, self.state.tags[gid], self.human)

    def person_deletes_comment(self, key: str, comment_id: str) -> None:
        assert comment_id in self.task(key)["stories"], (key, comment_id)
        self.state.delete_story(self.state.stories[comment_id], by=self.human)

    def stored_comments(self, key: str) -> list[object]:
        return [s["html_text"] for s in self._comment_stories(key)]

    def is_comment_post(self, request: LoggedRequest) -> bool:
        """A story POST, alone or as an action of the batch just answered."""
        if request.method != "POST":
            return False
        if request.path.rstrip("/").endswith("/stories"):
            return True
        held = self.api.last_batch if request.path.endswith("/batch") else None
        return any(m == "POST" and p.endswith("/stories") for m, p, _ in held or [])

    def mention_handle(self) -> str:
        return self.human

    def mentioned(self, key: str) -> list[str]:
        return [gid for s in self._comment_stories(key)
                for gid in mentions(s["html_text"], self.state.users)]

    def _comment_stories(self, key: str) -> list[Record]:
        stories = (self.state.stories[g] for g in self.task(key)["stories"])
        return [s for s in stories if s["resource_subtype"] == "comment_added"]

    def options(self, **extra: object) -> AsanaOptions:
        base: dict[str, object] = {"url": self.url, "projects": [self.project["gid"]],
                                   "workspace": self.state.workspace["gid"],
                                   "estimate_field": "Story Points"}
        return AsanaOptions.model_validate({**base, **extra})

    def connector(self, token: str | None = "good", **extra: object) -> Connector:
        if token is None:
            os.environ.pop(self.token_variable, None)
        else:
            os.environ[self.token_variable] = token
        return AsanaConnector("src", self.options(**extra), self.tmp_path, self.retry_clock)

    def missing_scope_connector(self) -> Connector:
        return self.connector(projects=["1299999999999999"])

    def pages(self, n: int) -> int:
        return max(1, math.ceil(n / 100))


def make_driver(tmp_path: Path) -> Driver:
    return AsanaDriver(tmp_path)
