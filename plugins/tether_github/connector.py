"""The ``github`` connector: issues and pull requests of some repositories, via PyGithub."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

from tether.clock import Clock
from tether.codec import parse_datetime
from tether.connector import Capabilities, Connector, Options, PullResult
from tether.errors import SourceError
from tether.model import CurrentAnnotation, OpResult, Task, WriteOp

from .annotations import MAX_LABEL, Annotator
from .client import GitHubClient
from .normalise import is_pull_request, task_key, to_task
from .options import GitHubOptions

# Re-read a little before the cursor: an update committed just before the last pull may
# have been listed only after it (GitHub's lists are eventually consistent).
OVERLAP = timedelta(minutes=2)


class GitHubConnector(Connector):
    """Full pulls list every item; incremental ones use ``since`` (updated at or after)."""

    type_name = "github"
    options_model = GitHubOptions
    capabilities = Capabilities(labels=True, comments=True, comments_editable=True,
                                markup="markdown", max_label_length=MAX_LABEL)
    options: GitHubOptions

    def __init__(self, name: str, options: Options, base_dir: Path, clock: Clock | None = None):
        super().__init__(name, options, base_dir, clock)
        self.client = GitHubClient(self.options, self.clock)
        self.annotator = Annotator(self.client, self.options)
        self._seen: dict[str, str] = {}  # key -> updated_at last pulled, to drop overlap repeats

    def pull(self, cursor: str | None) -> PullResult:
        """Every item (cursor None) or those updated since ``cursor`` minus the overlap,
        oldest change first; the new cursor is the newest ``updated_at`` seen."""
        self.client.check_token()
        since = None
        if cursor is not None:
            try:
                since = parse_datetime(cursor)
            except ValueError:
                raise SourceError(f"GitHub: the stored cursor {cursor!r} is not a timestamp; "
                                  "clear it so the next pull is a full one") from None
        params = {"state": self.options.state, "sort": "updated", "direction": "asc"}
        if since is not None:
            params["since"] = (since - OVERLAP).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        tasks: list[Task] = []
        newest, newest_at = cursor, since
        for repo in self.options.repos:
            for item in self._items(repo, params):
                key, updated = task_key(repo, item["number"]), str(item.get("updated_at") or "")
                at = parse_datetime(updated) if updated else None
                if at is not None and (newest_at is None or at > newest_at):
                    newest, newest_at = updated, at
                self.annotator.pulled(repo, key, [lbl.get("name", "") for lbl in
                                                  item.get("labels") or []])
                # Inside the overlap, an item this connector already saw unchanged is no news.
                repeat = since is not None and at is not None and at <= since \
                    and self._seen.get(key) == updated
                self._seen[key] = updated
                if repeat or (is_pull_request(item) and not self.options.include_pull_requests):
                    continue
                tasks.append(to_task(self.name, repo, item))
        return PullResult(tasks, newest, complete=cursor is None)

    def _items(self, repo: str, params: dict[str, str]) -> Iterator[dict[str, Any]]:
        """Every item GitHub lists for ``repo`` with ``params``, page by page."""
        subject = f"{repo} not found; check options.repos (and that the token can see it)"
        for page in self.client.pages(f"/repos/{repo}/issues", params, repo, subject):
            yield from page

    def read_annotations(self, tasks: Sequence[Task], prefix: str) -> dict[str, CurrentAnnotation]:
        """Labels from the payloads; Tether's comment listed only where comments exist."""
        return self.annotator.read(tasks, prefix)

    def apply(self, ops: Sequence[WriteOp]) -> list[OpResult]:
        """Labels (created with Tether's colour first), removals, then the comment in place."""
        return self.annotator.apply(ops)
