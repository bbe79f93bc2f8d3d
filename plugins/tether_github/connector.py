"""The ``github`` connector: issues and pull requests of some repositories, via PyGithub."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

from tether.sdk import (
    Budget,
    Capabilities,
    Check,
    Clock,
    Connector,
    CurrentAnnotation,
    Delivery,
    Hook,
    HookSecrets,
    OpResult,
    Options,
    PullResult,
    Task,
    Watermark,
    WriteOp,
)

from . import doctor, hooks, webhooks
from .annotations import MAX_LABEL, Annotator
from .client import PER_PAGE, GitHubClient
from .memory import Memory, PageMark
from .normalise import is_pull_request, task_key, to_task
from .options import GitHubOptions


class GitHubConnector(Connector):
    """Full pulls list every item; incremental ones use ``since`` (updated at or after),
    re-reading the overlap (GitHub's lists are eventually consistent; see tether.watermark)."""

    type_name = "github"
    options_model = GitHubOptions
    capabilities = Capabilities(labels=True, comments=True, comments_editable=True,
                                markup="markdown", mentions="login", max_label_length=MAX_LABEL)
    scope_option = "repos"
    # A personal access token's primary limit, as GitHub documents it (rate limits for the
    # REST API); App installations get more and Actions' GITHUB_TOKEN less: configure those.
    published_budget = Budget.parse("5000/hour")
    options: GitHubOptions

    def __init__(self, name: str, options: Options, base_dir: Path, clock: Clock | None = None):
        super().__init__(name, options, base_dir, clock)
        self.client = GitHubClient(self.options, self.clock, self.answered, self.throttle)
        self.annotator = Annotator(self.client, self.options)

    def scope_of(self, task: Task) -> str | None:
        return next((r for r in self.options.repos if r.lower() == task.project.lower()), None)

    def pull(self, cursor: str | None) -> PullResult:
        """Every item (cursor None, or unreadable) or those updated since the cursor's mark
        less the overlap, oldest change first, without those the cursor already saw
        unchanged; the new cursor marks the newest ``updated_at`` seen and GitHub's time when
        the first page was asked for (its Date header), where the next pull may start.

        An incremental pull asks each page with the ETag ``memory`` kept for that very
        request: a 304 (free of rate limit) means nothing changed there since, so no items.
        A full pull never does: it must list every item, since it replaces the stored ones."""
        self.client.check_token()
        self.client.dated.begin()
        memory = Memory(self.memory)
        mark = Watermark.resume(cursor)
        since = mark.since()
        params = {"state": self.options.state, "sort": "updated", "direction": "asc"}
        if since is not None:
            params["since"] = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        remembered = memory.page if since is not None else None
        answered: dict[str, PageMark] = {}
        pulled: list[Task] = []
        tasks: list[Task] = []
        for repo in self.options.repos:
            for item in self._items(repo, params, remembered, answered):
                key = task_key(repo, item["number"])
                self.annotator.pulled(repo, key, [lbl.get("name", "") for lbl in
                                                  item.get("labels") or []])
                task = to_task(self.name, repo, item)
                pulled.append(task)  # pull requests left out still move the mark
                if len(pulled) % PER_PAGE == 0:
                    self.report_progress(len(pulled))
                if mark.is_new(task) and (self.options.include_pull_requests
                                          or not is_pull_request(item)):
                    tasks.append(task)
        memory.set_pages(answered if since is not None else {})
        # A page answered 304 to memory's ETag brings no items: the mark's own `seen` then
        # says which items the new time lets the next pull skip.
        cursor = mark.advance(pulled, self.client.dated.at).encode()
        return PullResult(tasks, cursor, complete=since is None)

    def _items(self, repo: str, params: dict[str, str],
               remembered: Callable[[str], PageMark | None] | None,
               answered: dict[str, PageMark]) -> Iterator[dict[str, Any]]:
        """Every item GitHub lists for ``repo`` with ``params``, page by page (none from a
        page answered 304 to the ETag ``remembered`` for it)."""
        subject = f"{repo} not found; check options.repos (and that the token can see it)"
        yield from (item for page in self.client.pages(f"/repos/{repo}/issues", params, repo,
                                                       subject, remembered, answered)
                    for item in page)

    def diagnose(self) -> list[Check]:
        """Token, sign-in, each repository's read and write access and the rate limit, from
        read-only requests (see tether_github.doctor); writes nothing."""
        return doctor.diagnose(self.options, self.client, self.clock)

    def read_annotations(self, tasks: Sequence[Task], prefix: str) -> dict[str, CurrentAnnotation]:
        """Labels from the payloads; Tether's comment listed only where comments exist,
        Tether may have written one (``known_comments``) and ``memory`` cannot vouch that
        the comments are as Tether last saw them (same count and ``updated_at``)."""
        return self.annotator.read(tasks, prefix, Memory(self.memory), known=self.known_comments)

    def recover(self, tasks: Sequence[Task], prefix: str) -> dict[str, CurrentAnnotation]:
        """As read_annotations, but comments are listed for every task, whatever memory
        says: a payload pulled before an interrupted write landed still counts none."""
        return self.annotator.read(tasks, prefix, Memory(self.memory), recovering=True)

    def apply(self, ops: Sequence[WriteOp]) -> list[OpResult]:
        """Labels (created with Tether's colour first), removals, then the comment in place."""
        return self.annotator.apply(ops, Memory(self.memory))

    def hooks(self, url: str) -> list[Hook]:
        """Tether's webhooks (posting to ``url``) on the source's repositories."""
        return hooks.listed(self.client, self.options, url)

    def install_hooks(self, url: str) -> list[Hook]:
        """A webhook to ``url`` on each repository without one (admin on it needed)."""
        return hooks.install(self.client, self.options, url)

    def remove_hooks(self, url: str) -> list[Hook]:
        """Delete Tether's webhooks posting to ``url``."""
        return hooks.remove(self.client, self.options, url)

    def receive(self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str],
                secrets: HookSecrets, prefix: str) -> Delivery:
        """A repository webhook's delivery, checked against the secret in
        ``$webhook_secret_env`` (X-Hub-Signature-256): the items of ``repos`` it touches,
        and whether it is Tether's echo (its account, its labels, its comment); see
        tether_github.webhooks. Makes no request."""
        return webhooks.receive(self.name, self.options, Memory.account_in(self.memory),
                                headers, body, prefix)
