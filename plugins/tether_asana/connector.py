"""The asana connector: tasks from GET /tasks?project=..., Tether's labels as tags (or one
multi-enum custom field) and its one comment as a footer-marked story. Reads skip the story
lists the Events API shows unchanged (tether_asana.events) and, after an unbroken
incremental pull, the tasks it did not bring (tether_asana.shown); writes go out as Batch
API actions (tether_asana.batch); webhook deliveries are verified and read by
tether_asana.webhooks."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
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
    OpKind,
    OpResult,
    Options,
    PullResult,
    SourceError,
    Task,
    Watermark,
    WriteOp,
    digest,
)

from . import batch, doctor, events, hooks, shown, webhooks
from .client import PAGE, AsanaClient
from .comments import Comments, StoryWrite
from .failures import AsanaHTTPError, Where
from .labels import FieldLabels, TagLabels
from .normalise import PULL_FIELDS, iso, membership, to_task
from .options import AsanaOptions
from .richtext import footer_digest

LABEL_OPS = (OpKind.ADD_LABEL, OpKind.REMOVE_LABEL)
log = logging.getLogger("tether.asana")


class AsanaConnector(Connector):
    """Reads the configured projects; writes only labels under Tether's prefix and its story."""

    type_name = "asana"
    options_model = AsanaOptions
    # Bodies arrive as tether.pipeline.render Markdown; richtext turns them into Asana rich text.
    capabilities = Capabilities(labels=True, comments=True, comments_editable=True,
                                markup="asana", mentions="gid")
    scope_option = "projects"
    # Per token on paid plans, as Asana documents it (free plans: 150/minute; search:
    # 60/minute); a free workspace configures its own budget.
    published_budget = Budget.parse("1500/minute")
    options: AsanaOptions

    def __init__(self, name: str, options: Options, base_dir: Path, clock: Clock | None = None):
        super().__init__(name, options, base_dir, clock)
        opts = self.options
        self.client = AsanaClient(opts.api, opts.token_env, self.clock, opts.timeout)
        self.count_requests(self.client.session)
        self.labels: TagLabels | FieldLabels
        if opts.label_mode == "tags":
            self.labels = TagLabels(self.client, opts.workspace or "", self._where)
        else:
            self.labels = FieldLabels(self.client, opts.label_field or "", self._where)
        self.comments = Comments(self.client, self._me)
        self._me_gid: str | None = None
        self._unfollowed: set[str] = set()  # tasks read as "no Tether story possible"
        self._pull: shown.Pull | None = None  # this connector's last pull
        self._checked: dict[str, Any] | None = None  # the memory whose stories were checked

    def scope_of(self, task: Task) -> str | None:
        gid = (membership(task.raw, self.options.projects).get("project") or {}).get("gid")
        return gid if gid in self.options.projects else None

    # -- pull --------------------------------------------------------------------------------

    def pull(self, cursor: str | None) -> PullResult:
        """Every task of the projects (cursor None, or unreadable), or those modified since
        the cursor's mark less the overlap (changes that became visible late), without the
        tasks the cursor already saw with the same modified_at: those are no change. The new
        cursor records Asana's time at the first answer (its Date header)."""
        self.client.token()
        self.client.dated.begin()
        mark = Watermark.resume(cursor)
        since = mark.since()
        fields = dict.fromkeys((*PULL_FIELDS, *self.labels.fields, "followers"))
        params: dict[str, Any] = {"opt_fields": ",".join(fields)}
        if since is not None:
            params["modified_since"] = iso(since)
        items: dict[str, dict[str, Any]] = {}
        for project in self.options.projects:
            for item in self.client.pages("/tasks", {"project": project, **params},
                                          self._project_where(project)):
                items.setdefault(item["gid"], item)  # a task can be in two of the projects
                if len(items) % PAGE == 0:
                    self.report_progress(len(items))
        for item in items.values():
            self.labels.learn(item)
        pulled = [to_task(item, self.name, self.options) for item in items.values()]
        tasks = [task for task in pulled if mark.is_new(task)]
        result = PullResult(tasks, mark.advance(pulled, self.client.dated.at).encode(),
                            complete=since is None)
        self._pull = shown.Pull(cursor, result.cursor, since is None, items)
        return result

    def diagnose(self) -> list[Check]:
        """Token, sign-in, each project's readability and the token user's access level in
        it, from read-only requests (see tether_asana.doctor); writes nothing."""
        return doctor.diagnose(self.options, self.client)

    # -- read --------------------------------------------------------------------------------

    def read_annotations(self, tasks: Sequence[Task], prefix: str) -> dict[str, CurrentAnnotation]:
        """Labels and story of each task. Labels and followers: from this pass's pull, and
        for the tasks it did not bring from memory when the pull continued the one that
        noted them (tether_asana.shown), else from one listing per project (or a GET per
        task, when fewer); one events call per project; then the stories only of tasks whose
        story memory cannot answer (no note, or an event since touched it or its stories)
        and that the token's user follows, because commenting makes the author a follower
        and Asana lists no comment count."""
        return self._read(tasks, prefix, careful=False)

    def recover(self, tasks: Sequence[Task], prefix: str) -> dict[str, CurrentAnnotation]:
        """Like read_annotations, but lists every project and the stories of every task,
        trusting neither memory nor the follower hint: after an interrupted write a person
        may have removed the bot as follower, and a comment missed here would be written
        twice."""
        return self._read(tasks, prefix, careful=True)

    def _read(self, tasks: Sequence[Task], prefix: str, careful: bool
              ) -> dict[str, CurrentAnnotation]:
        self.client.token()
        wanted = {task.key for task in tasks}
        seen = self._stories()
        trusted, moved = (set(), set()) if careful else self._catch_up(seen)
        memo = None if careful else self._memo(prefix, trusted)
        views, gone = self._views(wanted, prefix, careful, memo, moved)
        if not careful:  # a note holds only while its task's events are known
            self._trust(seen, views, trusted)
            if memo is not None and any(not views[k].fresh for k in wanted & views.keys()
                                        if k not in seen) and self._me() != memo.me:
                memo = None  # the follows noted are another user's: read everything
                views, gone = self._views(wanted, prefix, careful, memo, moved)
                self._trust(seen, views, trusted)
        out: dict[str, CurrentAnnotation] = {}
        for key in sorted(wanted & views.keys()):
            view = views[key]
            if not careful and key in seen:
                out[key] = events.shown(view.labels, seen[key])
                continue
            if self._me() in view.followers:
                self._unfollowed.discard(key)
            else:
                self._unfollowed.add(key)  # remembered so a later write heals the hint
                if not careful:
                    out[key] = CurrentAnnotation(view.labels)
                    seen[key] = None
                    continue
            story = self.comments.read(key, self._task_where(key))
            if story is None:
                out[key] = CurrentAnnotation(view.labels)
                seen[key] = None
                continue
            text = story.get("text") or ""
            out[key] = CurrentAnnotation(view.labels, text, story["gid"], footer_digest(text))
            seen[key] = [str(story["gid"]), footer_digest(text) or ""]
        self._remember(prefix, wanted, views, gone, memo, moved, careful)
        return out

    @staticmethod
    def _trust(seen: events.Seen, views: dict[str, shown.View], trusted: set[str]) -> None:
        for key in [k for k in seen if k not in views or not views[k].homes & trusted]:
            del seen[key]

    def _catch_up(self, seen: events.Seen) -> tuple[set[str], set[str]]:
        """The projects whose events since the last pass are known, after forgetting the
        story notes those events touched, and the tasks they say left or joined a project;
        each project's next sync token is kept."""
        tokens = events.tokens(self.memory)
        for project in [p for p in tokens if p not in self.options.projects]:
            del tokens[project]
        by_story = {entry[0]: key for key, entry in seen.items() if entry}
        trusted: set[str] = set()
        moved: set[str] = set()
        for project in self.options.projects:
            try:
                feed = events.changes(self.client, project, tokens.get(project),
                                      self._project_where(project))
            except SourceError as exc:  # events only save requests: read everything instead
                log.warning("%s (reading every story instead)", exc)
                tokens.pop(project, None)
                continue
            if feed.sync:
                tokens[project] = feed.sync
            if not feed.complete:
                continue
            trusted.add(project)
            for event in feed.events:
                key = events.touched(event, seen, by_story)
                if key is not None:
                    seen.pop(key, None)
                key = events.moved(event)
                if key is not None:
                    moved.add(key)
        return trusted, moved

    def _memo(self, prefix: str, trusted: set[str]) -> shown.Memo | None:
        """The views noted by the pass whose pull this pass's continued, if that holds."""
        pull, opts = self._pull, self.options
        if pull is None or pull.complete or trusted != set(opts.projects):
            return None
        return shown.load(self.memory, pull.given,
                          shown.of(prefix, opts.label_mode, opts.label_field, opts.projects),
                          self.labels)

    def _views(self, wanted: set[str], prefix: str, careful: bool, memo: shown.Memo | None,
               moved: set[str]) -> tuple[dict[str, shown.View], set[str]]:
        """What each task shows now: as this pass's pull listed it (never for ``careful``);
        as ``memo`` noted it, unless it moved, was written or is outside the projects; else
        listed (every project) or fetched (one GET each, when fewer requests). Also the
        wanted tasks found gone."""
        pull, projects = None if careful else self._pull, self.options.projects
        items = dict(pull.items) if pull is not None else {}
        views: dict[str, shown.View] = {}
        if memo is not None:
            # The tasks read, and those with a story note (kept only while their view is
            # known); the other notes are carried over as they are (see _remember).
            keys = wanted | self._stories().keys()
            for key in keys - items.keys() - moved - memo.stale:
                view = memo.view(key, self.labels, projects)
                if view.homes:  # one outside the projects is fetched each pass
                    views[key] = view
                    if key in wanted:
                        self.labels.recall(key, list(view.kept))
        missing = wanted - items.keys() - views.keys()
        if pull is None or not (pull.complete or memo is not None) \
                or len(missing) > len(projects) + len(wanted) // PAGE:
            items.update(self._listing())
        gone: set[str] = set()
        for key in sorted(wanted - items.keys() - views.keys()):  # outside the projects
            item = self._task(key, self._fields())
            if item is None:
                gone.add(key)
            else:
                items[key] = item
        for item in items.values():
            self.labels.learn(item)
        views.update({key: shown.item_view(item, prefix, self.labels, projects)
                      for key, item in items.items()})
        return views, gone

    def _listing(self) -> dict[str, dict[str, Any]]:
        """Every task of every project, with what a view needs."""
        items: dict[str, dict[str, Any]] = {}
        for project in self.options.projects:
            for item in self.client.pages("/tasks", {"project": project,
                                                     "opt_fields": self._fields()},
                                          self._project_where(project)):
                items.setdefault(item["gid"], item)
        return items

    def _fields(self) -> str:
        return ",".join((*self.labels.fields, "followers", "memberships.project"))

    def _remember(self, prefix: str, wanted: set[str], views: dict[str, shown.View],
                  gone: set[str], memo: shown.Memo | None, moved: set[str], careful: bool
                  ) -> None:
        """Note the views as of this pass's pull (recover's: into the notes as they are);
        unknown views are kept only for the tasks read (the others are no longer synced)."""
        if careful:
            if self._me_gid is not None:
                shown.refresh(self.memory, self._me_gid, views, gone)
            return
        if self._pull is None:  # nothing to date them by
            return
        me = self._me_gid or shown.hint(self.memory) or self._me()
        if memo is not None:
            tasks, stale = dict(memo.tasks), set(memo.stale)
            for key in [k for k in moved if k not in views]:
                tasks.pop(key, None)
                stale.add(key)
        else:
            tasks, stale = {}, shown.known(self.memory)
        shown.settle(tasks, stale, views, gone, me)
        stale &= wanted
        opts = self.options
        shown.save(self.memory, self._pull.returned,
                   shown.of(prefix, opts.label_mode, opts.label_field, opts.projects),
                   me, tasks, stale)

    def _task(self, key: str, fields: str) -> dict[str, Any] | None:
        """GET one task, or None when it is gone."""
        def get() -> dict[str, Any] | None:
            try:
                return self.client.send("GET", f"/tasks/{key}", {"opt_fields": fields})["data"]
            except AsanaHTTPError as exc:
                if exc.status == 404:
                    return None
                raise
        return self.client.retrying(get, self._task_where(key))

    # -- webhooks ----------------------------------------------------------------------------

    def hooks(self, url: str) -> list[Hook]:
        """Tether's webhooks (posting to ``url``) on the source's projects."""
        return hooks.listed(self.client, self.options, url)

    def install_hooks(self, url: str) -> list[Hook]:
        """A webhook to ``url`` on each project without one; `tether serve` must be running
        there, for Asana's handshake."""
        return hooks.install(self.client, self.options, url)

    def remove_hooks(self, url: str) -> list[Hook]:
        """Delete Tether's webhooks posting to ``url``."""
        return hooks.remove(self.client, self.options, url)

    def receive(self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str],
                secrets: HookSecrets, prefix: str) -> Delivery:
        """Asana's handshake (its secret kept per webhook, named by ``query["hook"]``) or a
        delivery signed with that secret: the tasks it touches and whether it is Tether's
        echo, from the payload and memory only (no request); see tether_asana.webhooks."""
        known_tags = self.labels.known() if isinstance(self.labels, TagLabels) else {}
        known = webhooks.echo(self.memory, prefix, self.options, self._me_gid, known_tags)
        return webhooks.receive(self.name, self.options, known, headers, body, query, secrets)

    # -- write -------------------------------------------------------------------------------

    def apply(self, ops: Sequence[WriteOp]) -> list[OpResult]:
        """Label ops, then comment ops, as Batch API actions: up to 10 a request, each op
        reported on its own (custom-field labels: one read and write per task, not batched);
        the results come back in the order of ``ops``."""
        self.client.token()
        for op in ops:  # what the pull saw of these tasks no longer holds
            if self._pull is not None:
                self._pull.items.pop(op.key, None)
        shown.mark_stale(self.memory, {op.key for op in ops if op.kind is not OpKind.UPDATE_COMMENT})
        results: list[OpResult | None] = [None] * len(ops)
        label_ops = [(i, op) for i, op in enumerate(ops) if op.kind in LABEL_OPS]
        tagged: list[tuple[int, list[batch.Item], str | None]] = []
        if isinstance(self.labels, TagLabels):
            planned = self.labels.plan([op for _, op in label_ops])
            tagged = [(i, items, error) for (i, _), (items, error)
                      in zip(label_ops, planned, strict=True)]
            # webhook events name a tag by gid only: remember which are Tether's
            webhooks.note_tags(self.memory, {str(item.action.data["tag"]): ops[i].value
                                             for i, items, _ in tagged for item in items
                                             if item.action is not None})
        else:
            errors = self.labels.apply([op for _, op in label_ops])
            for (index, op), error in zip(label_ops, errors, strict=True):
                results[index] = OpResult(op, error is None, error)
        stories = {i: self.comments.write(op, self._task_where(op.key, need="stories:write"))
                   for i, op in enumerate(ops) if op.kind not in LABEL_OPS}
        sent = [item for _, items, _ in tagged for item in items]
        batch.run(self.client, sent + [w.item for w in stories.values()], self._batch_where())
        for index, items, error in tagged:
            failure = error or next((f for f in (i.failure(self.client) for i in items) if f),
                                    None)
            results[index] = OpResult(ops[index], failure is None, failure)
            self.labels.settled(ops[index].key, failure is None)
        for index, write in stories.items():
            results[index] = self._comment(write)
        return [r for r in results if r is not None]

    def _stories(self) -> events.Seen:
        """Tether's story per task, kept in memory: checked once per memory given (a write
        per comment would otherwise walk every task's note)."""
        seen = self.memory.get(events.STORIES)
        if self._checked is not self.memory or not isinstance(seen, dict):
            seen, self._checked = events.stories(self.memory), self.memory
        return seen

    def _comment(self, write: StoryWrite) -> OpResult:
        """The op's result, noted in memory: the story Tether's write left, none when a
        person deleted it, nothing known after a failure."""
        op, seen = write.op, self._stories()
        ok, error, story, gone = write.outcome(self.client)
        if not ok:
            seen.pop(op.key, None)
            return OpResult(op, False, error)
        if gone:
            seen[op.key] = None
            return OpResult(op, True, gone=True)
        if story:
            seen[op.key] = [story, digest(op.value)]
        else:
            seen.pop(op.key, None)
        if write.existed and op.key in self._unfollowed:
            self._follow(op.key)
        return OpResult(op, True, comment_id=story)

    def _follow(self, key: str) -> None:
        """Heal the follower hint read_annotations relies on; the comment is written either
        way, so a failure here is only logged (the next create finds the story again)."""
        where = self._task_where(key, need="tasks:write")
        try:
            self.client.call("POST", f"/tasks/{key}/addFollowers", where,
                             {"opt_fields": "modified_at"}, {"followers": [self._me()]})
        except SourceError as exc:
            log.warning("%s", exc)
            return
        self._unfollowed.discard(key)
        shown.mark_stale(self.memory, [key])

    # -- context -----------------------------------------------------------------------------

    def _me(self) -> str:
        """The token user's gid (GET /users/me, once per connector)."""
        if self._me_gid is None:
            where = Where("workspace " + (self.options.workspace or "?"), "user not found")
            body = self.client.call("GET", "/users/me", where, {"opt_fields": "name"})
            self._me_gid = str(body["data"]["gid"])
        # noted each time: the state store may have handed the connector a fresh memory
        webhooks.note_me(self.memory, self._me_gid)
        return self._me_gid

    def _project_where(self, project: str) -> Where:
        return Where(f"project {project}",
                     f"project {project} not found; check options.projects")

    def _batch_where(self) -> Where:
        where = self._where("")
        return Where(where.scope, where.missing, "tasks:write")

    def _where(self, task: str) -> Where:
        projects = self.options.projects
        scope = f"project {projects[0]}" if len(projects) == 1 else \
            "projects " + ", ".join(projects)
        return Where(scope, f"{scope} not found; check options.projects")

    def _task_where(self, key: str, need: str = "tasks:read") -> Where:
        return self._where(key).about(
            f"task {key}", f"task {key} not found (deleted, or no longer visible to the token's "
                           "user)", need)
