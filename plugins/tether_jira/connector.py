"""The ``jira`` connector: pull issues, read and write Tether's labels and its one comment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

from tether.sdk import (
    Capabilities,
    Check,
    Clock,
    Connector,
    CurrentAnnotation,
    Delivery,
    Hook,
    HooksByHand,
    HookSecrets,
    OpResult,
    Options,
    PullResult,
    SourceError,
    Task,
    Watermark,
    WriteOp,
)

from . import doctor, jql, webhooks
from .annotations import Marker, Shown
from .client import JiraClient, Setup, comment_marker, setup_key
from .markup import adf_to_text
from .normalise import to_task
from .options import JiraOptions
from .recall import Recall, entry, shown_of, unchanged_marker
from .writes import Writer, Written

# Cloud mentions people by accountId, Data Center by username.
CLOUD = Capabilities(markup="adf", mentions="account_id")
DATACENTER = Capabilities(markup="wiki", mentions="username")


class JiraConnector(Connector):
    """Jira Cloud (REST v3, enhanced JQL search) or Data Center (REST v2, offset search).

    Cloud's search shows the ``tether`` issue property naming Tether's comment; Data
    Center's cannot, so there the comment comes from ``memory`` (see tether_jira.recall)
    while the issue is unchanged, else from one comment listing. Issues the pull did not
    bring show what ``memory`` kept of them, while it holds (see read_annotations)."""

    type_name = "jira"
    options_model = JiraOptions
    capabilities = CLOUD
    scope_option = "projects"  # a JQL-only source is pulled whole
    # None: Cloud's API-token traffic meets per-second burst limits with no published
    # number (apps: a points-based hourly quota), and Data Center's token bucket is each
    # admin's choice (Atlassian's rate-limiting docs); configure a budget per source.
    published_budget = None
    options: JiraOptions

    def __init__(self, name: str, options: Options, base_dir: Path, clock: Clock | None = None):
        super().__init__(name, options, base_dir, clock)
        self.cloud = self.options.flavour == "cloud"  # else Data Center
        if not self.cloud:
            self.capabilities = DATACENTER  # the flavour decides the markup
        # No request until first used.
        self.client = JiraClient(self.options, self.clock, self.count_requests)
        self._shown: dict[str, Shown] = {}  # key -> labels and marker, as last pulled
        self._written: dict[str, Written] = {}  # key -> Tether's comment written since then
        self._from_memory: set[str] = set()  # keys whose ``_shown`` was recalled from memory
        self._whole = False  # ``_shown`` has the whole scope: a full pull or a scope search
        self._pulled = False  # whether ``pull`` ran: only then may memory be written
        self._cursor: str | None = None  # the cursor the last pull returned
        self._recalled: tuple[str, dict[str, Any]] | None = None  # memory, if it holds
        self._previous: dict[str, Any] = {}  # memory's entries when the pull began
        self._resolved: set[str] = set()  # Data Center: keys whose comment memory confirmed
        self._prefix: str | None = None  # Tether's label namespace, once a read names it

    def scope_of(self, task: Task) -> str | None:
        return task.project if task.project in self.options.projects else None

    def recall(self) -> Recall:
        """Data Center: what ``memory`` keeps of Tether's comments (edited in place)."""
        return Recall(self.memory, self.options.base_url)

    def pull(self, cursor: str | None) -> PullResult:
        """Full pull (by key) when ``cursor`` is None (or unreadable), else the issues updated
        since its mark less the overlap, without those the cursor already saw unchanged.

        Requests: a full pull asks serverInfo and /field, then the fewest pages. An
        incremental one asks /myself (every pass: it shows the token works and gives the
        user's time zone, which JQL dates are read in), serverInfo and /field only when
        ``memory`` keeps no setup for these options younger than a day, then the pages.
        The new cursor records the site's time at the first answer (its Date header).
        ``memory``'s entries hold for this pass only if written as of exactly ``cursor``."""
        mark = Watermark.resume(cursor)
        since = mark.since()
        recall = self.recall()
        key = setup_key(self.options)
        self.client.dated.begin()  # the pull's first answer dates it by the site's clock
        if since is None:  # first pull, or a cursor this connector cannot read
            self.client.offer(None)  # a full pull reads the site afresh
            fields = self.client.fields()
            query = jql.full(self.options)
        else:
            self.client.offer(Setup.from_json(recall.setup(key)))
            zone = self.client.user_zone()  # first: its answer dates the pull and the setup
            fields = self.client.fields()
            query = jql.since(self.options, since, zone)
        self._recalled = None if since is None else recall.shown_as_of(self._scope(), cursor)
        self._previous = recall.entries()
        pulled: dict[str, Task] = {}
        ids: dict[str, str] = {}  # issue id -> key: issue-link webhooks name issues by id
        for page in self.client.search(query, fields.requested()):
            for issue in page:
                task = to_task(issue, self.name, self.options.base_url, fields)
                pulled[task.key] = task  # offset paging can return an item twice
                if issue.get("id") is not None:
                    ids[str(issue["id"])] = task.key
                shown = Shown.from_issue(issue, asked=True, marked=self.cloud)
                if shown is not None:
                    self._shown[task.key] = shown  # the pull wins over memory
                    self._from_memory.discard(task.key)
                    if self.cloud:
                        self._written.pop(task.key, None)  # the pull already shows that write
            self.report_progress(len(pulled))
        if since is None:
            recall.keep_only(pulled)  # forget issues that left the scope
            self._whole = True
        tasks = [t for t in pulled.values() if mark.is_new(t)]
        pulled_at = self.client.dated.at
        self._pulled, self._cursor = True, mark.advance(pulled.values(), pulled_at).encode()
        setup = self.client.setup()
        if setup is not None:
            recall.remember_setup(key, setup.to_json())
        recall.remember_ids(ids, whole=since is None)
        self._note_account()
        self._keep()
        return PullResult(tasks, self._cursor, complete=since is None)

    def read_annotations(self, tasks: Sequence[Task], prefix: str) -> dict[str, CurrentAnnotation]:
        """From what the pull (or this connector's own writes) showed: no request at all.
        Tasks the pull did not bring (snapshots from the state store) show what ``memory``
        kept of them when this pass's pull started from the cursor it was kept at (nothing,
        if it kept no entry), else cost one search over the scope (see tether_jira.recall).

        Data Center: Tether's comment on an issue where the state store knows one
        (``known_comments``) comes from memory while the issue's ``updated`` has not moved
        since it was last listed, else from one comment listing; issues where Tether keeps
        no comment cost nothing (a create still asks Jira first)."""
        self._prefix = prefix
        found = self._labels(tasks, prefix)
        if not self.cloud:
            found = self._confirm(found)
        out = {}
        for key, shown in found.items():
            if key in self._written:
                marker, text = self._written[key]
                shown = replace(shown, marker=marker, text=text)
            out[key] = shown.current(prefix)
        self._keep()
        return out

    def _labels(self, tasks: Sequence[Task], prefix: str | None = None) -> dict[str, Shown]:
        """Each task's labels (and on Cloud its marker): from the pull, else from memory when
        it holds for this pass and a ``prefix`` is given, else one search."""
        recalled = self._recalled if prefix is not None and self._recalled is not None \
            and self._recalled[0] == prefix else None
        found: dict[str, Shown] = {}
        missing: set[str] = set()
        for task in tasks:
            key = task.key
            shown = self._shown.get(key)
            if shown is not None and key in self._from_memory and recalled is None:
                shown = None  # recover never trusts memory
            if shown is None and recalled is not None:
                shown = shown_of(recalled[1].get(key), recalled[0])
                self._from_memory.add(key)
            shown = shown or Shown.from_issue(task.raw)
            if shown is None:
                missing.add(key)
            else:
                found[key] = self._shown[key] = shown
        if missing:
            found.update(self._fetch(missing))
        return found

    def _keep(self) -> None:
        """Write into ``memory`` what each issue shows now, as of the cursor this pass's pull
        returned (see tether_jira.recall), in the label namespace a read named, else the one
        memory was kept in."""
        recalled = self._recalled
        prefix = self._prefix or (recalled[0] if recalled is not None else None)
        if not self._pulled or prefix is None:
            return  # memory stays as it was: it holds only for a pull from its own cursor
        recall = self.recall()
        if self._whole:
            kept: dict[str, Any] = {}
        elif recalled is not None and recalled[0] == prefix:
            kept = dict(recalled[1])
        else:
            recall.forget_shown()  # issues this pass neither pulled nor searched are unknown
            return
        for key, shown in self._shown.items():
            marker = self._written[key][0] if key in self._written else shown.marker
            if marker is None and not (self.cloud or shown.sure or key in self._resolved):
                # Data Center's search cannot show the comment: kept while `updated` stands
                marker = unchanged_marker(self._previous.get(key), shown.updated)
            # Data Center: where the store knows a comment, `updated` lets `seen` vouch for it
            known = not self.cloud and self.known_comments.get(key) is not None
            value = entry(shown, marker, prefix, known)
            if value is None:
                kept.pop(key, None)
            else:
                kept[key] = value
        recall.remember_shown(self._scope(), self._cursor, prefix, kept)

    def _scope(self) -> str:
        """What a pull searches: memory holds only for the same scope (and site)."""
        return jql.scope(self.options)

    def _confirm(self, found: dict[str, Shown]) -> dict[str, Shown]:
        """Data Center: Tether's comment on each issue where the state store knows one."""
        recall = self.recall()
        out = {}
        for key, shown in found.items():
            known = self.known_comments.get(key)
            if shown.sure or key in self._written:
                out[key] = shown
                continue
            if known is None:  # a comment the store does not know: the search cannot tell
                out[key] = replace(shown, marker=None)
                continue
            if key in self._from_memory and shown.marker and shown.marker.comment_id == known:
                out[key] = shown  # unchanged since memory was kept: it holds
                continue
            seen = recall.seen(key, known, shown.updated)
            if seen is not None:  # unchanged since last listed: no request
                out[key] = self._shown[key] = replace(shown, marker=seen.marker)
                self._resolved.add(key)
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
        self._prefix = prefix
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
        self._keep()
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
        ``updated`` tells Data Center whether memory of a comment still holds). Every issue
        found is kept, unless this pass already saw it: memory is rebuilt from them."""
        out = {}
        self.client.fields()  # the library's field-name cache, or it fetches /field itself
        for page in self.client.search(jql.full(self.options), ["labels", "updated"]):
            for issue in page:
                shown = Shown.from_issue(issue, asked=True, marked=self.cloud)
                key = issue.get("key")
                if shown is None or not isinstance(key, str):
                    continue
                if key in keys:
                    out[key] = shown
                if key in keys or key in self._from_memory or key not in self._shown:
                    self._shown[key] = shown
                    self._from_memory.discard(key)
        self._whole = True
        return out

    def apply(self, ops: Sequence[WriteOp]) -> list[OpResult]:
        """Label ops of an issue go in one PUT; comments are created once, then edited.
        Different issues are written concurrently (see tether_jira.writes)."""
        recall = None if self.cloud else self.recall()
        results = Writer(self.client, self._shown, self._written, self._marker_of,
                         recall).apply(ops)
        self._note_account()  # a comment write names its author: the token's user
        self._keep()  # the issues written move `updated`: the next pull brings them again
        return results

    def _note_account(self) -> None:
        """Keep in ``memory`` who the token acts as, once known (webhooks it made are
        Tether's echo); only into a memory a pull has set up for this site."""
        account = self.client.account
        if account and Recall.holds(self.memory, self.options.base_url):
            self.recall().remember_account(account)

    def hooks(self, url: str) -> list[Hook]:
        """Jira's admin webhooks are made by a Jira administrator: the exact steps."""
        raise HooksByHand(webhooks.steps(self.name, self.options, url))

    def receive(self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str],
                secrets: HookSecrets, prefix: str) -> Delivery:
        """An admin webhook's delivery, checked against the secret in
        ``$webhook_secret_env`` (X-Hub-Signature: sha256=...): the issues in scope it touches,
        and whether it is Tether's echo (its account, its labels, its comment); see
        tether_jira.webhooks. Reads ``memory`` without changing it; makes no request."""
        return webhooks.receive(self.name, self.options, self._known(), headers, body, prefix)

    def _known(self) -> webhooks.Known:
        """What this connector knows of Tether on the site, for reading a webhook: its
        account, the issues pulled (id -> key) and the ids of Tether's comments."""
        kept = self.memory if Recall.holds(self.memory, self.options.base_url) else {}
        account = self.client.account or kept.get("account")
        names = frozenset(str(v) for v in account.values()) if isinstance(account, dict) \
            else frozenset()
        ids = kept.get("ids")
        comments = set()
        for value in (kept.get("shown") or {}).values():
            if isinstance(value, dict) and value.get("c"):
                comments.add(str(value["c"]))
        comments.update(str(v) for v in (kept.get("markers") or {}).values() if v)
        for value in (kept.get("seen") or {}).values():
            if isinstance(value, dict) and value.get("comment"):
                comments.add(str(value["comment"]))
        for shown in list(self._shown.values()):
            if shown.marker is not None:
                comments.add(shown.marker.comment_id)
        comments.update(marker.comment_id for marker, _ in list(self._written.values()))
        return webhooks.Known(names, dict(ids) if isinstance(ids, dict) else {},
                              frozenset(comments))

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

