"""The ``jira`` connector: pull issues, read and write Tether's labels and its one comment."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from dataclasses import replace
from pathlib import Path

from tether.sdk import (
    Capabilities,
    Check,
    Clock,
    Connector,
    CurrentAnnotation,
    OpResult,
    Options,
    PullResult,
    SourceError,
    Task,
    Watermark,
    WriteOp,
)

from . import doctor, jql
from .annotations import Marker, Shown
from .client import JiraClient, comment_marker
from .markup import adf_to_text
from .normalise import to_task
from .options import JiraOptions
from .writes import Writer, Written

# Cloud mentions people by accountId, Data Center by username.
CLOUD = Capabilities(markup="adf", mentions="account_id")
DATACENTER = Capabilities(markup="wiki", mentions="username")


class JiraConnector(Connector):
    """Jira Cloud (REST v3, enhanced JQL search) or Data Center (REST v2, offset search)."""

    type_name = "jira"
    options_model = JiraOptions
    capabilities = CLOUD
    options: JiraOptions

    def __init__(self, name: str, options: Options, base_dir: Path, clock: Clock | None = None):
        super().__init__(name, options, base_dir, clock)
        if self.options.flavour == "datacenter":
            self.capabilities = DATACENTER  # the flavour decides the markup
        self.client = JiraClient(self.options, self.clock)  # no request until first used
        self._shown: dict[str, Shown] = {}  # key -> labels and marker, as last pulled
        self._written: dict[str, Written] = {}  # key -> Tether's comment written since then

    def pull(self, cursor: str | None) -> PullResult:
        """Full pull (by key) when ``cursor`` is None (or unreadable), else the issues updated
        since its mark less the overlap, without those the cursor already saw unchanged.

        Requests: serverInfo, /field, (/myself when incremental), then the fewest pages."""
        fields = self.client.fields()
        mark = Watermark.resume(cursor)
        since = mark.since()
        if since is None:  # first pull, or a cursor this connector cannot read
            query = jql.full(self.options)
        else:
            query = jql.since(self.options, since, self.client.user_zone())
        pulled: dict[str, Task] = {}
        for page in self.client.search(query, fields.requested()):
            for issue in page:
                task = to_task(issue, self.name, self.options.base_url, fields)
                pulled[task.key] = task  # offset paging can return an item twice
                shown = Shown.from_issue(issue, asked=True)
                if shown is not None:
                    self._shown[task.key] = shown
                    self._written.pop(task.key, None)  # the pull already shows that write
            self.report_progress(len(pulled))
        tasks = [t for t in pulled.values() if mark.is_new(t)]
        return PullResult(tasks, mark.advance(pulled.values()).encode(),
                          complete=since is None)

    def read_annotations(self, tasks: Sequence[Task], prefix: str) -> dict[str, CurrentAnnotation]:
        """From what the pull (or this connector's own writes) showed: no request at all. Tasks
        without that (snapshots from the state store) cost one search over the scope."""
        found: dict[str, Shown] = {}
        missing: set[str] = set()
        for task in tasks:
            shown = self._shown.get(task.key) or Shown.from_issue(task.raw)
            if shown is None:
                missing.add(task.key)
            else:
                found[task.key] = self._shown[task.key] = shown
        if missing:
            found.update(self._fetch(missing))
        out = {}
        for key, shown in found.items():
            if key in self._written:
                marker, text = self._written[key]
                shown = replace(shown, marker=marker, text=text)
            out[key] = shown.current(prefix)
        return out

    def recover(self, tasks: Sequence[Task], prefix: str) -> dict[str, CurrentAnnotation]:
        """Like ``read_annotations``, with Tether's comment looked up in each issue's comments
        (the one carrying Tether's comment property, or the one the issue's marker names;
        the oldest if several): found even when the issue's marker was never set. Costs one
        comment listing per task (Cloud: plus one comment/list). Tasks the scope no longer
        has are left out."""
        current = self.read_annotations(tasks, prefix)
        out = {}
        for task in tasks:
            if task.key not in current:
                continue
            shown = self._shown.get(task.key) or Shown(frozenset(current[task.key].labels))
            marker, text = self._find_comment(task.key, shown.marker)
            if marker is not None and marker != shown.marker:
                self._heal(task.key, marker)
            self._shown[task.key] = replace(shown, marker=marker, text=text)
            self._written.pop(task.key, None)  # what Jira shows now wins
            out[task.key] = self._shown[task.key].current(prefix)
        return out

    def _heal(self, key: str, marker: Marker) -> None:
        """Point the issue's marker at the comment found, so later runs find it with no
        listing (a crash between the comment POST and the marker PUT left it unset)."""
        # On failure the comment still carries its own property: the next recover finds it.
        with suppress(SourceError):
            self.client.set_marker(key, marker.value())

    def _find_comment(self, key: str, indexed: Marker | None) -> tuple[Marker | None, str | None]:
        """Tether's comment on ``key`` as Jira lists it now, and its text."""
        for comment in self.client.comments(key):
            cid = str(comment.get("id"))
            value = comment_marker(comment)
            if value is not None or (indexed is not None and indexed.comment_id == cid):
                got = value.get("digest") if isinstance(value, dict) else None
                marker = Marker(cid, str(got or (indexed.digest if indexed else "")))
                body = comment.get("body")
                return marker, adf_to_text(body) if body is not None else None
        return None, None

    def diagnose(self) -> list[Check]:
        """Token, sign-in, each project's read and write permissions, rate limit and quiet
        edits, from read-only requests (see tether_jira.doctor); writes nothing."""
        return doctor.diagnose(self.options, self.client)

    def notices(self) -> list[str]:
        if self.notify_mode != "notifying":
            return []
        return [f"{self.name}: Tether's edits notified watchers, because Jira refused "
                "notifyUsers=false: the token's user is not a Jira or project admin. Make it "
                "a project admin to keep Tether's edits quiet."]

    @property
    def notify_mode(self) -> str:
        """Whether this connector's edits notify watchers: "quiet" (sent with
        notifyUsers=false), "notifying" (Jira refused that: the token's user is neither
        Jira nor project admin) or "unknown" (no edit tried yet)."""
        return self.client.notify_mode

    def _fetch(self, keys: set[str]) -> dict[str, Shown]:
        """Labels and markers of ``keys``, from one search over the scope (pages of labels)."""
        out = {}
        self.client.fields()  # the library's field-name cache, or it fetches /field itself
        for page in self.client.search(jql.full(self.options), ["labels"]):
            for issue in page:
                shown = Shown.from_issue(issue, asked=True)
                if shown is not None and issue.get("key") in keys:
                    out[issue["key"]] = self._shown[issue["key"]] = shown
        return out

    def apply(self, ops: Sequence[WriteOp]) -> list[OpResult]:
        """Label ops of an issue go in one PUT; comments are created once, then edited."""
        return Writer(self.client, self._shown, self._written, self._marker_of).apply(ops)

    def _marker_of(self, key: str) -> Marker | None:
        """Tether's comment on ``key``: as written, as pulled, else as Jira says now."""
        if key in self._written:
            return self._written[key][0]
        if key in self._shown:
            return self._shown[key].marker
        return Marker.parse(self.client.marker(key))  # not pulled: ask, never risk a duplicate

