"""Conformance drivers for Jira Cloud and Jira Data Center: the connector through the real
``jira`` library against the sandbox site on loopback. Data Center is the same driver with
REST v2, offset search, a bearer PAT and wiki comments.

Declared under the ``tether.testing`` entry-point group as ``jira-cloud`` and ``jira-dc``.
"""

from __future__ import annotations

import math
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tether.sandbox import LoggedRequest, SandboxServer
from tether.sdk import FakeClock
from tether.testing import Driver

from tether_jira.connector import JiraConnector
from tether_jira.markup import adf_to_text
from tether_jira.options import JiraOptions
from tether_jira.sandbox.api import HookDelivery, JiraSandboxApi
from tether_jira.sandbox.seed import generate
from tether_jira.sandbox.state import World

PROJECT = "OPS"
TOKEN_ENV = "JIRA_TOKEN"
PLAIN_TOKEN = "plain"  # Ravi's token: he administers nothing, so Jira refuses quiet edits
RAVI = "5b10ac8d82e05b22cc7d4ef5"
_WIKI_MENTION = re.compile(r"(?<!\\)\[~([^\]\\]+)\]")  # [~user], not an escaped \[~user\]
SITE_START = datetime(2025, 5, 5, 9, 0, tzinfo=UTC)
# What Tether's admin webhook subscribes to (see the README's Jira webhook steps).
HOOK_EVENTS = ["jira:issue_created", "jira:issue_updated", "jira:issue_deleted",
               "comment_created", "comment_updated", "comment_deleted",
               "issuelink_created", "issuelink_deleted"]


class JiraDriver:
    """One sandbox site; the token's user lives in New York while the site prints Berlin
    time, so a connector that ignores the JQL time zone misses edits."""

    setup_calls = 2  # GET serverInfo, GET field
    token_variable = TOKEN_ENV

    def __init__(self, tmp_path: Path, flavour: str):
        self.tmp_path = tmp_path
        self.flavour = flavour
        self.site_clock = FakeClock(SITE_START)  # the site's own time, moved by edits
        self.retry_clock = FakeClock(SITE_START)  # the connector's: retries sleep on it
        self.world = World(flavour, "good", self.site_clock, time_zone="Europe/Berlin")
        self.world.add_user("5b10a2844c20165700ede21g", "mia", "Mia Krystof", "mia@example.com",
                            time_zone="America/New_York", me=True)
        self.world.add_user(RAVI, "ravi", "Ravi Rao", "ravi@example.com", admin=False)
        self.world.add_token(PLAIN_TOKEN, RAVI)
        self.world.add_project(PROJECT, "Operations")
        self.api = JiraSandboxApi(self.world)
        self.server = SandboxServer(self.api).start()
        self.api.deliveries.base_url = self.server.base_url
        self.unicode_key = ""

    def register_hook(self, url: str, secret: str) -> None:
        """Register an admin webhook to ``url`` with ``secret``, as a Jira administrator
        would: issue, comment and issue-link events of every issue (no JQL filter). Made in
        the site's state, not over HTTP, so the request log stays Tether's; the sandbox also
        serves POST /rest/webhooks/1.0/webhook. Nothing is sent before :meth:`deliver`."""
        self.world.add_hook("Tether", url, HOOK_EVENTS, secret=secret)

    def deliver(self) -> list[HookDelivery]:
        """Post every webhook delivery queued since the last call, oldest first, signed as
        Jira signs them (X-Hub-Signature: sha256=...): people's edits through this driver
        (made by Ravi, not the token's user) and writes through the API, Tether's own
        included. Returns them with the receiver's answers (``status``; 0 when it could not
        be reached). Synchronous: when it returns, every answer is in."""
        return self.api.deliver()

    def seed(self, n: int) -> list[str]:
        keys = generate(self.world, PROJECT, n)
        self.unicode_key = keys[2] if n > 2 else keys[-1]
        if n <= 2:  # too few for the generator's odd one: make the last one odd
            self.world.issues[keys[-1]].summary = "Ünïcødé ✓ 数据"
            self.world.issues[keys[-1]].assignee = None
            self.world.issues[keys[-1]].custom.clear()
        return keys

    def now(self) -> datetime:
        return self.site_clock.now()

    def edit(self, key: str) -> None:
        self.site_clock.sleep(60)
        self.world.edit(key, RAVI, summary=self.world.issues[key].summary + " (edited)")

    def labels(self, key: str) -> set[str]:
        return set(self.world.issues[key].labels)

    def comments(self, key: str) -> list[str]:
        return [adf_to_text(c.body) for c in self.world.issues[key].comments]

    def person_removes_label(self, key: str, label: str) -> None:
        self.site_clock.sleep(60)
        labels = self.world.issues[key].labels
        self.world.edit(key, RAVI, labels=[x for x in labels if x != label])

    def person_deletes_comment(self, key: str, comment_id: str) -> None:
        self.site_clock.sleep(60)
        self.world.delete_comment(key, comment_id, RAVI)

    def stored_comments(self, key: str) -> list[object]:
        return [c.body for c in self.world.issues[key].comments]

    def is_comment_post(self, request: LoggedRequest) -> bool:
        return request.method == "POST" and request.path.rstrip("/").endswith("/comment")

    def mention_handle(self) -> str:
        return RAVI if self.flavour == "cloud" else "ravi"

    def mentioned(self, key: str) -> list[str]:
        """accountIds of ADF mention nodes (Cloud), usernames of [~user] in wiki (DC)."""
        out: list[str] = []
        for comment in self.world.issues[key].comments:
            if isinstance(comment.body, dict):
                out += _adf_mentions(comment.body)
            else:
                out += _WIKI_MENTION.findall(str(comment.body))
        return out

    def options(self, **overrides: object) -> JiraOptions:
        values: dict[str, object] = {"url": self.server.base_url, "flavour": self.flavour,
                                     "projects": [PROJECT], "token_env": TOKEN_ENV}
        if self.flavour == "cloud":
            values["email"] = "mia@example.com"
        values.update(overrides)
        return JiraOptions.model_validate(values)

    def connector(self, token: str | None = "good", **overrides: object) -> JiraConnector:
        if token is None:
            os.environ.pop(TOKEN_ENV, None)
        else:
            os.environ[TOKEN_ENV] = token
        return JiraConnector("src", self.options(**overrides), self.tmp_path, self.retry_clock)

    def missing_scope_connector(self) -> JiraConnector:
        return self.connector(projects=["NOPE"])

    def pages(self, n: int) -> int:
        limits = self.world.limits
        size = limits.cloud_max_with_fields if self.flavour == "cloud" else limits.dc_max_results
        return max(1, math.ceil(n / size))


def _adf_mentions(node: Any) -> list[str]:
    if isinstance(node, list):
        return [m for child in node for m in _adf_mentions(child)]
    if not isinstance(node, dict):
        return []
    own = [str(node["attrs"]["id"])] if node.get("type") == "mention" else []
    return own + _adf_mentions(node.get("content") or [])


def make_cloud_driver(tmp_path: Path) -> Driver:
    return JiraDriver(tmp_path, "cloud")


def make_dc_driver(tmp_path: Path) -> Driver:
    return JiraDriver(tmp_path, "datacenter")
