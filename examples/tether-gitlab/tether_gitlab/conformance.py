"""The conformance driver: Tether's shared connector suite runs the gitlab connector against
the fake GitLab (``pytest -p tether.testing --tether-driver gitlab``)."""

from __future__ import annotations

import html
import math
import os
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from tether.sandbox import LoggedRequest, SandboxServer
from tether.sdk import FakeClock

from .client import PER_PAGE
from .connector import GitLabConnector
from .options import GitLabOptions
from .sandbox import GitLabApi, World
from .sandbox.world import Issue

if TYPE_CHECKING:  # the suite's protocol; importing tether.testing at run time loads pytest
    from tether.testing import Driver

PROJECT = "acme/widgets"
MENTIONABLE = "dana-lee"  # a seeded user the mention test names
UNICODE_TITLE = "Ünïcødé ✓ 数据"
# How GitLab finds mentions in rendered text: code spans and HTML comments are inert; an
# escape or a character reference resolves to the character (one pass, as CommonMark does),
# and then "@" after a non-word character starts a username (or group/subgroup path).
_INERT = re.compile(r"<!--.*?-->|(`+)(?!`).*?(?<!`)\1(?!`)", re.S)
_RESOLVE = re.compile(r"\\([!-/:-@\[-`{-~])|&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")
_MENTION = re.compile(r"(?<![A-Za-z0-9_])@([A-Za-z0-9_./-]*[A-Za-z0-9_-])")


class GitLabDriver:
    """One fake GitLab per test, on the connector's clock."""

    setup_calls = 0  # a pull is list pages only
    token_variable = "GITLAB_TOKEN"

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.retry_clock = FakeClock()
        self.world = World(self.retry_clock)
        self.world.load({"tokens": {"good": "tether-bot"},
                         "users": {MENTIONABLE: "Dana Lee", "sam": "Sam Okafor"},
                         "projects": [{"path": PROJECT, "members": {"tether-bot": 30}}]})
        self.project = next(iter(self.world.projects.values()))
        self.server = SandboxServer(GitLabApi(self.world)).start()
        self.unicode_key = ""

    def seed(self, n: int) -> list[str]:
        """``n`` issues by a person, a minute apart, two months ago; the first is the
        unicode one with no assignee and no weight; every third is closed."""
        start = self.now() - timedelta(days=60)
        keys = []
        for i in range(n):
            at, odd, closed = start + timedelta(minutes=i), i == 0, i % 3 == 2
            issue = self.world.add_issue(
                self.project, UNICODE_TITLE if odd else f"Issue {i}", "sam", created=at,
                description="" if odd else f"Details of issue {i}.",
                state="closed" if closed else "opened", closed=at if closed else None,
                assignees=[] if odd or i % 2 else [MENTIONABLE],
                labels=["bug"] if i % 4 == 1 else [], weight=None if odd else i % 5 + 1,
                notes=[{"author": "sam", "body": "Any news?"}] if i % 5 == 3 else [])
            keys.append(str(issue.iid))
        self.unicode_key = self.unicode_key or keys[0]
        return keys

    def issue(self, key: str) -> Issue:
        return self.project.issues[int(key)]

    def now(self) -> datetime:
        return self.world.now()

    def edit(self, key: str) -> None:
        issue = self.issue(key)
        issue.title += " (edited)"
        self.world.touch(issue)

    def labels(self, key: str) -> set[str]:
        return set(self.issue(key).labels)

    def comments(self, key: str) -> list[str]:
        return [n.body for n in self.issue(key).notes if not n.system]

    def person_removes_label(self, key: str, label: str) -> None:
        assert label in self.issue(key).labels
        self.world.relabel(self.issue(key), [], [label], "sam")

    def person_deletes_comment(self, key: str, comment_id: str) -> None:
        issue = self.issue(key)
        [note] = [n for n in issue.notes if str(n.id) == comment_id]
        self.world.delete_note(issue, note)

    def is_comment_post(self, request: LoggedRequest) -> bool:
        return request.method == "POST" and request.path.endswith("/notes")

    def stored_comments(self, key: str) -> list[object]:
        return list(self.comments(key))  # GitLab keeps the Markdown as written

    def mention_handle(self) -> str:
        return MENTIONABLE

    def mentioned(self, key: str) -> list[str]:
        found = []
        for body in self.comments(key):
            text = _RESOLVE.sub(lambda m: m[1] or html.unescape(m[0]), _INERT.sub(" ", body))
            found += [u for u in _MENTION.findall(text) if u in self.world.users or u == "all"]
        return found

    def connector(self, token: str | None = "good", project: str = PROJECT) -> GitLabConnector:
        if token is None:
            os.environ.pop(self.token_variable, None)
        else:
            os.environ[self.token_variable] = token
        options = GitLabOptions(url=self.server.base_url, project=project)
        return GitLabConnector("src", options, self.tmp_path, clock=self.retry_clock)

    def missing_scope_connector(self) -> GitLabConnector:
        return self.connector(project="acme/missing")

    def pages(self, n: int) -> int:
        return max(1, math.ceil(n / PER_PAGE))


def make_driver(tmp_path: Path) -> Driver:
    return GitLabDriver(tmp_path)
