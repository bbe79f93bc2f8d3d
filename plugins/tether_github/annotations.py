"""Tether's labels and its one comment on GitHub items: reading them back, writing them.

Labels come from the issue payload (no request). Tether's comment is the one whose
Markdown body starts with the hidden marker ``<!-- tether:comment -->``; comments are
listed only for items whose payload counts any and whose comments may have changed since
Tether last saw them (see memory.py), except when recovering from an interrupted write (the
payload may predate the comment) and before creating one (never a second). What this
connector wrote since an item's payload was pulled is remembered, so a second pass over the
same payloads sees its writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from github import Github
from github.GithubException import GithubException
from github.Issue import Issue
from github.IssueComment import IssueComment
from tether.sdk import (
    MARKER,
    CurrentAnnotation,
    OpKind,
    OpResult,
    SourceError,
    Task,
    WriteOp,
    digest,
    stored_body,
    stored_digest,
    with_marker,
)

from .client import GitHubClient
from .failures import NotFound
from .markdown import to_github
from .memory import IssueState, Memory, Seen
from .normalise import split_key, task_key
from .options import GitHubOptions

MAX_BODY = 65536  # GitHub refuses longer comment bodies
MAX_LABEL = 50  # and longer label names
_CUT = "\n\n_(cut to fit GitHub's comment size limit)_"


def is_ours(body: str | None) -> bool:
    """Tether's comment starts with the marker (an HTML comment GitHub does not display)."""
    return body is not None and body.lstrip().startswith(MARKER)


def body_digest(body: str) -> str:
    """The digest the planner compares for a stored body: its trailer's, else its own."""
    return stored_digest(body) or digest(body)


def github_body(value: str) -> str:
    """The Markdown to store for ``value``: verbatim when it fits, starts with the marker and
    has no mention to convert or neutralise (see markdown.py); otherwise fixed up, with the
    digest of ``value`` in a hidden trailer so reads match."""
    return stored_body(value, to_github(with_marker(value)), MAX_BODY, _CUT)


def label_style(name: str, options: GitHubOptions) -> tuple[str, str]:
    """Colour and description for a Tether label: ``<prefix>:kpi:<id>`` or a signal."""
    parts = name.split(":")
    if len(parts) >= 3 and parts[1] == "kpi":
        text = f"Set by Tether: this item serves KPI {':'.join(parts[2:])}"
        return options.kpi_label_color, text[:100]
    text = f"Set by Tether: drift signal {':'.join(parts[1:]) or name}"
    return options.signal_label_color, text[:100]


@dataclass
class Written:
    """This connector's writes to one item since its payload was pulled."""

    added: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    comment: tuple[str, str] | None = None  # (id, body as stored)


class Annotator:
    """Reads and writes one source's annotations through a :class:`GitHubClient`."""

    def __init__(self, client: GitHubClient, options: GitHubOptions):
        self.client = client
        self.options = options
        self.written: dict[str, Written] = {}
        self.labels_known: dict[str, set[str]] = {}  # repo -> lower-cased names that exist
        self.states: dict[str, IssueState | None] = {}  # key -> as the last read found it
        self.memory = Memory({})  # the connector's, during apply

    def pulled(self, repo: str, key: str, label_names: Sequence[str]) -> None:
        """A fresh payload of ``key`` arrived: it shows our writes; its labels exist."""
        self.written.pop(key, None)
        self.labels_known.setdefault(repo.lower(), set()).update(n.lower() for n in label_names)

    # -- reading ---------------------------------------------------------------------------

    def read(self, tasks: Sequence[Task], prefix: str, memory: Memory | None = None,
             recovering: bool = False, known: Mapping[str, str | None] | None = None
             ) -> dict[str, CurrentAnnotation]:
        """By key: labels under ``prefix`` and Tether's comment, listed where the payload
        counts comments, unless ``known`` says Tether never wrote one there, or ``memory``
        saw Tether's comment when the issue last showed the comment count and ``updated_at``
        it shows now (nothing touched its comments since). ``recovering`` lists them for
        every task and trusts neither, since an interrupted write may have landed unseen."""
        known = {} if recovering or known is None else known
        memory = memory if memory is not None else Memory({})
        self.client.check_token()
        out = {}
        for task in tasks:
            repo, number = split_key(task.key)
            names = {lbl["name"] for lbl in task.raw.get("labels") or []
                     if isinstance(lbl, dict)} if task.raw else set(task.labels)
            wrote = self.written.get(task.key, Written())
            names = (names | wrote.added) - wrote.removed
            labels = frozenset(n for n in names if n.startswith(f"{prefix}:"))
            state = self.states[task.key] = IssueState.of(task)
            found = None if recovering else wrote.comment
            never = task.key in known and known[task.key] is None
            seen = None if recovering or never else memory.seen(task.key)
            if found is None and seen is not None and state == seen.state \
                    and known.get(task.key, seen.comment_id) == seen.comment_id:
                out[task.key] = CurrentAnnotation(labels, None, seen.comment_id,
                                                  seen.digest or None)
                continue
            if found is None and (recovering or (self._has_comments(task) and not never)):
                try:
                    found = self._find_comment(repo, number)
                except NotFound:
                    found = None  # deleted since it was stored: its ops will fail and say so
                self._saw(memory, task.key, found, state)
            elif found is None:
                memory.forget(task.key)  # no comment here, as far as Tether knows
            comment_id, body = found or (None, None)
            out[task.key] = CurrentAnnotation(labels, body, comment_id, stored_digest(body))
        return out  # a pass reads only what it plans: the others' notes stay as they are

    @staticmethod
    def _saw(memory: Memory, key: str, found: tuple[str, str] | None,
             state: IssueState | None) -> None:
        """Remember Tether's comment (or that there is none) as just listed, with the issue
        state the payload showed before the listing (a change after it shows as a newer
        state: listed again)."""
        if state is None:
            memory.forget(key)
        else:
            memory.remember(key, Seen(found[0], body_digest(found[1]), state) if found else
                            Seen(None, "", state))

    @staticmethod
    def _has_comments(task: Task) -> bool:
        """Whether the payload (or, for a stored task without it, custom) counts comments;
        when neither says, assume so rather than miss Tether's comment and write a second."""
        count = task.raw.get("comments") if task.raw else task.custom.get("comments")
        return not isinstance(count, int) or count > 0

    def _find_comment(self, repo: str, number: int) -> tuple[str, str] | None:
        """The oldest comment carrying the marker; listed with ETags, so unchanged is free."""
        pages = self.client.pages(f"/repos/{repo}/issues/{number}/comments", {},
                                  f"{repo}#{number}", self._gone(repo, number))
        for page in pages:
            for comment in page:
                if is_ours(comment.get("body")):
                    return str(comment["id"]), comment["body"]
        return None

    @staticmethod
    def _issue(gh: Github, repo: str, number: int) -> Issue:
        return gh.get_repo(repo).get_issue(number)  # lazy: builds URLs, sends nothing

    @staticmethod
    def _gone(repo: str, number: int) -> str:
        return (f"{repo}#{number} not found; it may have been deleted or transferred, or "
                "options.repos names the wrong repository")

    # -- writing ---------------------------------------------------------------------------

    def apply(self, ops: Sequence[WriteOp], memory: Memory | None = None) -> list[OpResult]:
        """One OpResult per op, in order; a failing op never stops the others. Each write
        (tried) to an item makes ``memory`` forget the item's state, but for a comment
        written last: GitHub stamps the issue's ``updated_at`` with that comment's."""
        self.client.check_token()
        self.memory = memory if memory is not None else Memory({})
        results: dict[int, OpResult] = {}
        by_key: dict[str, list[int]] = {}
        for index, op in enumerate(ops):
            by_key.setdefault(op.key, []).append(index)
        configured = {r.lower() for r in self.options.repos}
        for key, indexes in by_key.items():
            try:
                repo, number = split_key(key)
                if repo.lower() not in configured:
                    raise ValueError(f"{repo} is not in options.repos")
            except ValueError as exc:
                for i in indexes:
                    results[i] = OpResult(ops[i], False, f"GitHub {key}: {exc}")
                continue
            self._apply_item(repo, number, [(i, ops[i]) for i in indexes], results)
        return [results[i] for i in range(len(ops))]

    def _apply_item(self, repo: str, number: int, ops: list[tuple[int, WriteOp]],
                    results: dict[int, OpResult]) -> None:
        """Label adds together (after creating missing labels), then removals, then the comment."""
        self.memory.forget(task_key(repo, number))  # each write moves updated_at
        ready = []
        for i, op in ops:
            if op.kind is not OpKind.ADD_LABEL:
                continue
            try:
                self._ensure_label(repo, op.value)
                ready.append((i, op))
            except SourceError as err:
                results[i] = OpResult(op, False, str(err))
        self._add_labels(repo, number, ready, results)
        for i, op in ops:
            if op.kind is OpKind.ADD_LABEL:
                continue
            self.memory.forget(task_key(repo, number))
            try:
                if op.kind is OpKind.REMOVE_LABEL:
                    self._remove_label(repo, number, op.value)
                    results[i] = OpResult(op, True)
                else:
                    results[i] = self._write_comment(repo, number, op)
            except SourceError as err:
                results[i] = OpResult(op, False, str(err))

    def _ensure_label(self, repo: str, name: str) -> None:
        """Create the label with Tether's colour and description unless it already exists."""
        if len(name) > MAX_LABEL:
            raise SourceError(f"GitHub {repo}: label {name!r} has {len(name)} characters; GitHub "
                              f"allows {MAX_LABEL}: shorten the KPI or signal id, or the prefix")
        known = self.labels_known.setdefault(repo.lower(), set())
        if name.lower() in known:
            return
        color, description = label_style(name, self.options)

        def create(gh: Github) -> None:
            try:
                gh.get_repo(repo).create_label(name, color, description)
            except GithubException as exc:
                codes = [e.get("code") for e in (exc.data or {}).get("errors") or []
                         if isinstance(e, dict)] if isinstance(exc.data, dict) else []
                if exc.status != 422 or "already_exists" not in codes:
                    raise

        self.client.call(create, repo, f"{repo} not found; check options.repos")
        known.add(name.lower())

    def _add_labels(self, repo: str, number: int, ready: list[tuple[int, WriteOp]],
                    results: dict[int, OpResult]) -> None:
        """One request for all of an item's new labels; one by one if that one fails."""
        if not ready:
            return
        names = [op.value for _, op in ready]
        try:
            self.client.call(lambda gh: self._issue(gh, repo, number).add_to_labels(*names),
                             f"{repo}#{number}", self._gone(repo, number))
        except SourceError as err:
            if len(ready) > 1:
                for item in ready:
                    self._add_labels(repo, number, [item], results)
                return
            results[ready[0][0]] = OpResult(ready[0][1], False, str(err))
            return
        wrote = self.written.setdefault(f"{repo}#{number}", Written())
        wrote.added.update(names)
        wrote.removed.difference_update(names)
        for i, op in ready:
            results[i] = OpResult(op, True)

    def _remove_label(self, repo: str, number: int, name: str) -> None:
        def remove(gh: Github) -> None:
            try:
                self._issue(gh, repo, number).remove_from_labels(name)  # URL-quotes ':'
            except GithubException as exc:
                data = exc.data if isinstance(exc.data, dict) else {}
                if exc.status != 404 or data.get("message") != "Label does not exist":
                    raise  # a 404 for the label alone means it is already off: done

        self.client.call(remove, f"{repo}#{number}", self._gone(repo, number))
        wrote = self.written.setdefault(f"{repo}#{number}", Written())
        wrote.removed.add(name)
        wrote.added.discard(name)

    def _write_comment(self, repo: str, number: int, op: WriteOp) -> OpResult:
        """Edit Tether's comment in place, or create it when the item has none: never a
        second one. An UPDATE whose comment a person deleted writes nothing and says gone."""
        key = f"{repo}#{number}"
        body = github_body(op.value)
        wrote = self.written.setdefault(key, Written())
        target = op.comment_id or (wrote.comment[0] if wrote.comment else None)
        if target is not None and not target.isdigit():
            raise SourceError(f"GitHub {key}: comment id {target!r} is not a GitHub comment id")
        updating = op.kind is OpKind.UPDATE_COMMENT and op.comment_id is not None

        def write(gh: Github) -> tuple[IssueComment, bool] | None:
            """The comment written, and whether it is a new one."""
            issue = self._issue(gh, repo, number)
            if target is not None:
                try:
                    comment = issue.get_comment(int(target))  # lazy: PATCH only
                    comment.edit(body)
                    return comment, False
                except GithubException as exc:
                    if exc.status != 404:
                        raise
                    if updating:
                        return None  # a person deleted it: respect that, write nothing
            # Look before creating: the comment may exist unseen by this connector (another
            # process wrote it, or an earlier attempt landed before its answer was lost).
            found = self._find_comment(repo, number)
            if found is not None:
                comment = issue.get_comment(int(found[0]))
                comment.edit(body)
                return comment, False
            return issue.create_comment(body), True

        written = self.client.call(write, key, self._gone(repo, number))
        if written is None:
            wrote.comment = None
            return OpResult(op, True, gone=True)
        comment, created = written
        comment_id = str(comment.id)
        # The answer names the comment's author, the account Tether acts as: its webhook
        # deliveries are Tether's echo. Both writes above completed the object from the
        # answer, so reading it sends no request.
        login = getattr(comment.user, "login", None)
        if isinstance(login, str) and login:
            self.memory.set_account(login)
        wrote.comment = (comment_id, body)
        # GitHub stamps the issue updated when its comment is written (the issue_comment
        # webhook's payloads show the issue's updated_at equal to the comment's), and this
        # is the item's last write here: remember the state it should show next.
        before = self.states.get(key)
        after = IssueState.parse(before.comments + created, comment.updated_at) if before else None
        if after is not None:
            self.memory.remember(key, Seen(comment_id, body_digest(body), after))
        return OpResult(op, True, comment_id=comment_id)
