"""Conformance driver: the github connector against the GitHub sandbox.

Declared under the ``tether.testing`` entry-point group as ``github``.
"""

from __future__ import annotations

import html
import math
import os
import re
from datetime import datetime, timedelta
from pathlib import Path

from tether.sandbox import LoggedRequest, SandboxServer
from tether.sdk import FakeClock
from tether.testing import Driver

from tether_github import GitHubConnector, GitHubOptions
from tether_github.client import PER_PAGE
from tether_github.normalise import split_key, task_key
from tether_github.sandbox.api import GitHubApi
from tether_github.sandbox.hooks import HookDelivery
from tether_github.sandbox.seed import generate
from tether_github.sandbox.world import Issue, World

REPO = "acme/widgets"
TOKEN_ENV = "GITHUB_TOKEN"
MENTIONABLE = "dana-lee"  # a seeded user the mention test names
# How GitHub finds mentions in rendered text (after escapes and entities are resolved): an @
# at the start or after anything but a letter, digit or "_", a login, then not "/" (a team),
# not more login characters and not dots before a word character ("@dana.x" is no mention).
_MENTION = re.compile(r"(?:^|(?<=[^A-Za-z0-9_]))@([A-Za-z0-9][A-Za-z0-9-]*)"
                      r"(?![A-Za-z0-9_/]|\.+[A-Za-z0-9_])")
_LOGIN = re.compile(r"[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}")
# What never mentions: HTML comments and code spans (a backtick run to the same-length run).
_INERT = re.compile(r"<!--.*?-->|(?<!`)(`+)(?!`).*?(?<!`)\1(?!`)", re.S)
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
# What `tether webhooks install` subscribes a repository hook to.
HOOK_EVENTS = ["issues", "issue_comment", "pull_request", "label"]


class GitHubDriver:
    """One sandbox per test; its clock is the connector's, so rate-limit resets follow sleeps."""

    setup_calls = 0  # a lazy PyGithub repository costs no GET /repos before listing issues
    token_variable = TOKEN_ENV

    def __init__(self, tmp_path: Path, prefix: str = ""):
        self.tmp_path = tmp_path
        self.retry_clock = FakeClock()
        self.world = World(self.retry_clock)
        self.world.add_token("good", "tether-bot")
        self.world.add_repo(REPO)
        self.world.user(MENTIONABLE)
        self.api = GitHubApi(self.world, prefix=prefix)
        self.server = SandboxServer(self.api).start()
        self.api.deliveries.base_url = self.server.base_url
        self.url = self.server.base_url + prefix
        self.unicode_key = task_key(REPO, 1)

    def register_hook(self, url: str, secret: str) -> None:
        """Register a webhook to ``url`` signed with ``secret`` on every repository, as
        their admin would in GitHub's settings (JSON; issues, issue_comment, pull_request
        and label events); GitHub pings it first. Nothing is sent before :meth:`deliver`.
        Made in the sandbox's state, not over HTTP: the request log stays Tether's."""
        for repo in self.world.repos.values():
            self.world.add_hook(repo, url, repo.owner, secret=secret, content_type="json",
                                events=list(HOOK_EVENTS))

    def deliver(self) -> list[HookDelivery]:
        """Post every webhook delivery queued since the last call, oldest first, signed as
        GitHub signs them (people's edits through this driver and writes through the API,
        Tether's own included); returns them with the receiver's answers (``status``, 0 when
        it could not be reached). Synchronous: when it returns, every answer is in."""
        return self.api.deliveries.deliver()

    def seed(self, n: int) -> list[str]:
        repo = self.world.repo(REPO)
        assert repo is not None
        start = self.retry_clock.now() - timedelta(days=60)
        return [task_key(REPO, issue.number) for issue in generate(self.world, repo, n, start)]

    def issue(self, key: str) -> Issue:
        repo_name, number = split_key(key)
        repo = self.world.repo(repo_name)
        assert repo is not None
        return repo.issues[number]

    def now(self) -> datetime:
        return self.retry_clock.now()

    def edit(self, key: str) -> None:
        issue = self.issue(key)  # its author edits it: never Tether, even mid-request
        self.world.edit_issue(issue, by=issue.user, title=issue.title + " (edited)")

    def labels(self, key: str) -> set[str]:
        return set(self.issue(key).labels)

    def comments(self, key: str) -> list[str]:
        return [self.world.comments[cid].body for cid in self.issue(key).comments]

    def person_removes_label(self, key: str, label: str) -> None:
        repo_name, _ = split_key(key)
        repo = self.world.repo(repo_name)
        assert repo is not None and self.world.remove_label(repo, self.issue(key), label)

    def person_deletes_comment(self, key: str, comment_id: str) -> None:
        comment = self.world.comments[int(comment_id)]
        assert comment.id in self.issue(key).comments
        self.world.delete_comment(comment)

    def stored_comments(self, key: str) -> list[object]:
        return list(self.comments(key))  # GitHub keeps the Markdown as written

    def is_comment_post(self, request: LoggedRequest) -> bool:
        return request.method == "POST" and request.path.rstrip("/").endswith("/comments")

    def mention_handle(self) -> str:
        return MENTIONABLE

    def mentioned(self, key: str) -> list[str]:
        """Logins GitHub would notify: backslash escapes and entities do not protect an @
        (they are resolved before mentions are found); code spans and comments do."""
        found = []
        for body in self.stored_comments(key):
            text = html.unescape(_ESCAPE.sub(r"\1", _INERT.sub(" ", str(body))))
            for login in _MENTION.findall(text):
                user = next((u for u in self.world.users if u.lower() == login.lower()), None)
                if _LOGIN.fullmatch(login) and user is not None:
                    found.append(user)
        return found

    def connector(self, token: str | None = "good", **options) -> GitHubConnector:
        if token is None:
            os.environ.pop(TOKEN_ENV, None)
        else:
            os.environ[TOKEN_ENV] = token
        opts = GitHubOptions(url=self.url, repos=options.pop("repos", [REPO]), **options)
        return GitHubConnector("src", opts, self.tmp_path, clock=self.retry_clock)

    def missing_scope_connector(self) -> GitHubConnector:
        return self.connector(repos=["acme/missing"])

    def pages(self, n: int) -> int:
        return max(1, math.ceil(n / PER_PAGE))


def make_driver(tmp_path: Path) -> Driver:
    return GitHubDriver(tmp_path)
