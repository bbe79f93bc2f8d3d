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
from .recall import Recall
from .writes import Writer, Written

# Cloud mentions people by accountId, Data Center by username.
CLOUD = Capabilities(markup="adf", mentions="account_id")
DATACENTER = Capabilities(markup="wiki", mentions="username")


class JiraConnector(Connector):
    """Jira Cloud (REST v3, enhanced JQL search) or Data Center (REST v2, offset search).

    Cloud's search shows the ``tether`` issue property naming Tether's comment; Data
    Center's cannot, so there the comment comes from ``memory`` (see tether_jira.recall)
    while the issue is unchanged, else from one comment listing."""

    type_name = "jira"
    options_model = JiraOptions
    capabilities = CLOUD
    options: JiraOptions

    def __init__(self, name: str, options: Options, base_dir: Path, clock: Clock | None = None):
        super().__init__(name, options, base_dir, clock)
        self.cloud = self.options.flavour == "cloud"  # else Data Center
        if not self.cloud:
            self.capabilities = DATACENTER  # the flavour decides the markup
        self.client = JiraClient(self.options, self.clock)  # no request until first used
        self._shown: dict[str, Shown] = {}  # key -> labels and marker, as last pulled
        self._written: dict[str, Written] = {}  # key -> Tether's comment written since then

    def recall(self) -> Recall:
        """Data Center: what ``memory`` keeps of Tether's comments (edited in place)."""
        return Recall(self.memory, self.options.base_url)

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
                shown = Shown.from_issue(issue, asked=True, marked=self.cloud)
                if shown is not None:
                    self._shown[task.key] = shown
                    if self.cloud:
                        self._written.pop(task.key, None)  # the pull already shows that write
            self.report_progress(len(pulled))
        if since is None and not self.cloud:
            self.recall().keep_only(pulled)  # forget issues that left the scope
        tasks = [t for t in pulled.values() if mark.is_new(t)]
        return PullResult(tasks, mark.advance(pulled.values()).encode(),
                          complete=since is None)

    def read_annotations(self, tasks: Sequence[Task], prefix: str) -> dict[str, CurrentAnnotation]:
        """From what the pull (or this connector's own writes) showed: no request at all. Tasks
        without that (snapshots from the state store) cost one search over the scope.

        Data Center: Tether's comment on an issue where the state store knows one
        (``known_comments``) comes from memory while the issue's ``updated`` has not moved
        since it was last listed, else from one comment listing; issues where Tether keeps
        no comment cost nothing (a create still asks Jira first)."""
        found = self._labels(tasks)
        if not self.cloud:
            found = self._confirm(found)
        out = {}
        for key, shown in found.items():
            if key in self._written:
                marker, text = self._written[key]
                shown = replace(shown, marker=marker, text=text)
            out[key] = shown.current(prefix)
        return out

    def _labels(self, tasks: Sequence[Task]) -> dict[str, Shown]:
        """Each task's labels (and on Cloud its marker): from the pull, else one search."""
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
        return found

    def _confirm(self, found: dict[str, Shown]) -> dict[str, Shown]:
        """Data Center: Tether's comment on each issue where the state store knows one."""
        recall = self.recall()
        out = {}
        for key, shown in found.items():
            known = self.known_comments.get(key)
            if shown.sure or key in self._written or known is None:
                out[key] = shown
                continue
            seen = recall.seen(key, known, shown.updated)
            if seen is not None:  # unchanged since last listed: no request
                out[key] = replace(shown, marker=seen.marker)
                continue
            marker, text = self._find_comment(key, Marker(known, ""))
            out[key] = self._shown[key] = replace(shown, marker=marker, text=text, sure=True)
            recall.saw(key, known, marker, shown.updated)
        return out

    def recover(self, tasks: Sequence[Task], prefix: str) -> dict[str, CurrentAnnotation]:
        """Like ``read_annotations``, with Tether's comment looked up in each issue's comments
        (the one carrying Tether's comment property, or the one the issue's marker names;
        the oldest if several): found even when the issue's marker was never set. Costs one
        comment listing per task (Cloud: plus one comment/list; Data Center: plus one read
        of the issue's marker, whose search cannot show it). Never trusts memory. Tasks the
        scope no longer has are left out."""
        found = self._labels(tasks)
        recall = None if self.cloud else self.recall()
        out = {}
        for task in tasks:
            key = task.key
            if key not in found:
                continue
            shown = found[key]
            indexed = shown.marker if self.cloud else Marker.parse(self.client.marker(key))
            if recall is not None:
                recall.marked(key, indexed.comment_id if indexed else None)
            known = self.known_comments.get(key)
            hint = indexed or (Marker(known, "") if known else None)
            marker, text = self._find_comment(key, hint)
            if marker is not None and not self._marks(indexed, marker):
                self._heal(key, marker)
            self._shown[key] = replace(shown, marker=marker, text=text, sure=True)
            self._written.pop(key, None)  # what Jira shows now wins
            if recall is not None:
                recall.saw(key, known, marker, shown.updated)
            out[key] = self._shown[key].current(prefix)
        return out

    def _marks(self, indexed: Marker | None, found: Marker) -> bool:
        """Whether the issue's marker already says what a write would: on Cloud the comment
        and its digest (the search reads both), on Data Center the comment (its digest is
        read from the comment's own property)."""
        if indexed is None:
            return False
        return indexed == found if self.cloud else indexed.comment_id == found.comment_id

    def _heal(self, key: str, marker: Marker) -> None:
        """Point the issue's marker at the comment found, so later runs find it with no
        listing (a crash between the comment POST and the marker PUT left it unset)."""
        # On failure the comment still carries its own property: the next recover finds it.
        with suppress(SourceError):
            self.client.set_marker(key, marker.value())
            if not self.cloud:
                self.recall().marked(key, marker.comment_id)

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
        """Labels and markers of ``keys``, from one search over the scope (pages of labels;
        ``updated`` tells Data Center whether memory of a comment still holds)."""
        out = {}
        self.client.fields()  # the library's field-name cache, or it fetches /field itself
        for page in self.client.search(jql.full(self.options), ["labels", "updated"]):
            for issue in page:
                shown = Shown.from_issue(issue, asked=True, marked=self.cloud)
                if shown is not None and issue.get("key") in keys:
                    out[issue["key"]] = self._shown[issue["key"]] = shown
        return out

    def apply(self, ops: Sequence[WriteOp]) -> list[OpResult]:
        """Label ops of an issue go in one PUT; comments are created once, then edited.
        Different issues are written concurrently (see tether_jira.writes)."""
        recall = None if self.cloud else self.recall()
        return Writer(self.client, self._shown, self._written, self._marker_of,
                      recall).apply(ops)

    def _marker_of(self, key: str) -> Marker | None:
        """Tether's comment on ``key``: as written, as pulled (Cloud's search shows the
        marker), else as Jira says now: never risk a duplicate on a hint."""
        if key in self._written:
            return self._written[key][0]
        shown = self._shown.get(key)
        if shown is not None and shown.sure:
            return shown.marker
        marker = Marker.parse(self.client.marker(key))
        if not self.cloud:
            self.recall().marked(key, marker.comment_id if marker else None)
        return marker

