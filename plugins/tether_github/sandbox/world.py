"""The sandbox's GitHub state: users, repositories, issues and pull requests, labels, comments,
repository webhooks.

Pure data and mutations; the HTTP layer (``api``) renders it with ``payloads``. Every
mutation that GitHub counts as activity bumps the issue's ``updated`` from the world clock,
and tells the world's ``listeners`` what changed (a :class:`Change`, one per webhook event
GitHub would send), whoever made it: a request through the API or a person in a test.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tether.sdk import Clock


def node_id(kind: str, number: int) -> str:
    """A legacy-format GraphQL node id (``base64("05:Issue1")``), as older payloads carry."""
    prefix = {"User": "04", "Issue": "05", "Label": "010", "IssueComment": "012",
              "Milestone": "09", "Repository": "010"}[kind]
    return base64.b64encode(f"{prefix}:{kind}{number}".encode()).decode()


@dataclass
class User:
    """A GitHub account."""

    login: str
    id: int
    name: str | None = None


@dataclass
class Label:
    """A repository label."""

    id: int
    name: str
    color: str = "ededed"
    description: str | None = None
    default: bool = False


@dataclass
class Milestone:
    """A repository milestone."""

    id: int
    number: int
    title: str
    creator: str
    created: datetime
    updated: datetime
    description: str | None = None
    state: str = "open"
    due_on: datetime | None = None
    closed: datetime | None = None


@dataclass
class Comment:
    """An issue comment."""

    id: int
    repo: str  # full name
    number: int  # of the issue it belongs to
    user: str
    body: str
    created: datetime
    updated: datetime


@dataclass
class Issue:
    """One issue or pull request (GitHub numbers both from one sequence per repository)."""

    id: int
    number: int
    title: str
    user: str
    created: datetime
    updated: datetime
    body: str | None = None
    state: str = "open"
    state_reason: str | None = None
    labels: list[str] = field(default_factory=list)  # label names, in the order added
    assignees: list[str] = field(default_factory=list)
    milestone: int | None = None  # milestone number
    closed: datetime | None = None
    closed_by: str | None = None
    locked: bool = False
    pull_request: bool = False
    draft: bool = False
    merged: datetime | None = None
    comments: list[int] = field(default_factory=list)  # comment ids, oldest first


ROLES = ("read", "triage", "write", "maintain", "admin")  # GitHub's repository roles, ascending


@dataclass
class Hook:
    """A repository webhook: where GitHub posts the events it subscribes to, signed with
    ``secret`` (unsigned when empty), as JSON or as a form (``content_type``)."""

    id: int
    url: str
    creator: str
    created: datetime
    updated: datetime
    secret: str = ""
    content_type: str = "form"  # GitHub's default; Tether registers "json"
    insecure_ssl: str = "0"
    events: list[str] = field(default_factory=lambda: ["push"])  # GitHub's default
    active: bool = True
    last_code: int | None = None  # the last delivery's answer, as GET .../hooks shows it
    last_status: str = "unused"
    last_message: str | None = None

    def wants(self, event: str) -> bool:
        """Whether this hook is sent ``event`` (``*`` subscribes to all; a ping always)."""
        return self.active and (event == "ping" or event in self.events or "*" in self.events)


@dataclass
class Repo:
    """A repository and its labels, milestones and issues."""

    id: int
    owner: str
    name: str
    labels: dict[str, Label] = field(default_factory=dict)  # lower-cased name -> label
    issues: dict[int, Issue] = field(default_factory=dict)
    milestones: dict[int, Milestone] = field(default_factory=dict)
    # login -> role (ROLES); the owner is admin and anyone else unlisted has write.
    roles: dict[str, str] = field(default_factory=dict)
    hooks: dict[int, Hook] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        """owner/name."""
        return f"{self.owner}/{self.name}"

    def role(self, login: str) -> str:
        """``login``'s role here."""
        return self.roles.get(login) or ("admin" if login == self.owner else "write")

    def allows(self, login: str, role: str) -> bool:
        """Whether ``login``'s role is ``role`` or above."""
        return ROLES.index(self.role(login)) >= ROLES.index(role)


@dataclass(frozen=True)
class Token:
    """What a token may do: who it is, and what it was granted. A classic token has OAuth
    ``scopes``, which GitHub shows in X-OAuth-Scopes; a fine-grained one shows none, and
    ``write`` says whether it has Issues: read and write. Either acts within its user's
    role on each repository."""

    login: str
    scopes: tuple[str, ...] = ("repo",)
    write: bool = True
    fine_grained: bool = False

    def sees_private(self) -> bool:
        """Whether the token may see private repositories (every sandbox one is private):
        fine-grained tokens name their repositories; classic ones need the repo scope."""
        return self.fine_grained or "repo" in self.scopes


@dataclass(frozen=True)
class Change:
    """One thing GitHub would send a webhook for: ``event`` (issues, pull_request,
    issue_comment, label, ping) and its ``action``, made by ``actor``. ``changes`` is the
    payload's ``changes`` (old values); ``extra`` its other event-specific keys (assignee,
    milestone), as world objects."""

    event: str
    action: str
    repo: Repo
    actor: str
    issue: Issue | None = None
    comment: Comment | None = None
    label: Label | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    hook: Hook | None = None  # a ping goes to this hook only


class World:
    """Everything the sandbox serves; one lock in the server serialises access to it."""

    def __init__(self, clock: Clock | None = None):
        self.clock = clock or Clock()
        self.users: dict[str, User] = {}
        self.repos: dict[str, Repo] = {}  # lower-cased full name -> repo
        self.tokens: dict[str, Token] = {}
        self.comments: dict[int, Comment] = {}
        self._ids = itertools.count(1001)
        # Who the request being served acts as (the API sets it); None: a person's own edit,
        # made in a test or the demo, which GitHub attributes to that person.
        self.actor: str | None = None
        self.listeners: list[Callable[[Change], None]] = []  # told of every Change

    def emit(self, event: str, action: str, repo: Repo, *, by: str | None = None,
             issue: Issue | None = None, **fields: Any) -> None:
        """Tell the listeners; the actor is ``by``, else the caller, else the item's author."""
        if not self.listeners:
            return  # nothing listens (no hook anywhere): skip building the change
        actor = by or self.actor or (issue.user if issue is not None else repo.owner)
        change = Change(event, action, repo, actor, issue, **fields)
        for listener in self.listeners:
            listener(change)

    def _item_event(self, issue: Issue) -> str:
        """GitHub sends a pull request's own changes as pull_request events, an issue's as
        issues events."""
        return "pull_request" if issue.pull_request else "issues"

    def now(self) -> datetime:
        """GitHub timestamps have whole seconds."""
        return self.clock.now().replace(microsecond=0)

    def next_id(self) -> int:
        """A fresh id; ids are unique across object kinds."""
        return next(self._ids)

    def reset_ids(self, start: int) -> None:
        """Continue ids from ``start`` (after restoring a snapshot)."""
        self._ids = itertools.count(start)

    # -- users and tokens ------------------------------------------------------------------

    def user(self, login: str, name: str | None = None) -> User:
        """The user ``login``, created on first mention."""
        if login not in self.users:
            self.users[login] = User(login, self.next_id(), name)
        return self.users[login]

    def add_token(self, token: str, login: str, scopes: tuple[str, ...] = ("repo",),
                  write: bool = True, fine_grained: bool | None = None) -> None:
        """Accept ``token`` as ``login``'s. A token that may not write is fine-grained unless
        said otherwise: a classic token with the repo scope may do all its user may."""
        self.user(login)
        kind = (not write) if fine_grained is None else fine_grained
        self.tokens[token] = Token(login, tuple(scopes), write, kind)

    def grant(self, repo: Repo, login: str, role: str) -> None:
        """Give ``login`` the repository role ``role`` (read, triage, write, maintain, admin)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        self.user(login)
        repo.roles[login] = role

    # -- repositories ----------------------------------------------------------------------

    def add_repo(self, full_name: str) -> Repo:
        """Create an empty repository ``owner/name``."""
        owner, _, name = full_name.partition("/")
        if not owner or not name or "/" in name:
            raise ValueError(f"repository {full_name!r} must be 'owner/name'")
        self.user(owner)
        repo = Repo(self.next_id(), owner, name)
        self.repos[full_name.lower()] = repo
        return repo

    def repo(self, full_name: str) -> Repo | None:
        """The repository by full name, any case."""
        return self.repos.get(full_name.lower())

    def repo_by_id(self, repo_id: int) -> Repo | None:
        """The repository with that numeric id."""
        return next((r for r in self.repos.values() if r.id == repo_id), None)

    # -- labels ----------------------------------------------------------------------------

    def create_label(self, repo: Repo, name: str, color: str = "ededed",
                     description: str | None = None, default: bool = False) -> Label:
        """Add a label to the repository."""
        label = Label(self.next_id(), name, color, description, default)
        repo.labels[name.lower()] = label
        self.emit("label", "created", repo, label=label)
        return label

    def add_labels(self, repo: Repo, issue: Issue, names: list[str]) -> None:
        """Add labels, creating missing ones with GitHub's grey ``ededed`` and no description."""
        for name in names:
            label = repo.labels.get(name.lower()) or self.create_label(repo, name)
            if label.name not in issue.labels:
                issue.labels.append(label.name)
                self.touch(issue)
                self.emit(self._item_event(issue), "labeled", repo, issue=issue, label=label)

    def remove_label(self, repo: Repo, issue: Issue, name: str) -> bool:
        """Take ``name`` (any case) off the issue; False when it was not on it."""
        label = repo.labels.get(name.lower())
        if label is None or label.name not in issue.labels:
            return False
        issue.labels.remove(label.name)
        self.touch(issue)
        self.emit(self._item_event(issue), "unlabeled", repo, issue=issue, label=label)
        return True

    def set_labels(self, repo: Repo, issue: Issue, names: list[str]) -> None:
        """Replace the issue's labels with ``names`` (missing ones created grey); the issue
        counts as updated even when they are the same."""
        keep = {name.lower() for name in names}
        for name in [n for n in issue.labels if n.lower() not in keep]:
            self.remove_label(repo, issue, name)
        self.add_labels(repo, issue, names)
        self.touch(issue)

    # -- issues ----------------------------------------------------------------------------

    def add_issue(self, repo: Repo, title: str, user: str, *, created: datetime | None = None,
                  updated: datetime | None = None, number: int | None = None, **fields) -> Issue:
        """Create an issue (``pull_request=True`` for a PR) with the next free number."""
        now = self.now()
        created = created or now
        number = number or max(repo.issues, default=0) + 1
        if number in repo.issues:
            raise ValueError(f"{repo.full_name}#{number} already exists")
        self.user(user)
        for login in fields.get("assignees", []):
            self.user(login)
        labels = fields.pop("labels", [])
        issue = Issue(self.next_id(), number, title, user, created, updated or created, **fields)
        repo.issues[number] = issue
        for name in labels:
            label = repo.labels.get(name.lower()) or self.create_label(repo, name)
            issue.labels.append(label.name)
        self.emit(self._item_event(issue), "opened", repo, by=user, issue=issue)
        return issue

    def touch(self, issue: Issue) -> None:
        """Stamp the issue updated now."""
        issue.updated = self.now()

    def edit_issue(self, issue: Issue, by: str | None = None, **changes) -> None:
        """A person's edit: any of title, body, assignees, milestone, state (+ state_reason)."""
        state = changes.pop("state", None)
        reason = changes.pop("state_reason", None)
        before = {name: getattr(issue, name) for name in changes}
        for name, value in changes.items():
            setattr(issue, name, value)
        closing = None
        if state is not None and state != issue.state:
            closing = state == "closed"
            issue.state = state
            issue.closed = self.now() if closing else None
            issue.closed_by = (by or self.actor or issue.user) if closing else None
            issue.state_reason = reason or ("completed" if closing else "reopened")
        self.touch(issue)
        self._edited(issue, before, closing, by)

    def _edited(self, issue: Issue, before: dict[str, Any], closing: bool | None,
                by: str | None) -> None:
        """The events of one edit, as GitHub sends them: edited (with the old title and
        body), assigned and unassigned per person, (de)milestoned, closed or reopened."""
        repo = self.repo_of(issue)
        if repo is None or not self.listeners:
            return
        event = self._item_event(issue)
        # GitHub sends an absent old body as "" (its schema allows no null there).
        old = {name: {"from": before[name] or ""} for name in ("title", "body")
               if name in before and before[name] != getattr(issue, name)}
        if old:
            self.emit(event, "edited", repo, by=by, issue=issue, changes=old)
        if "assignees" in before:
            for login in [a for a in issue.assignees if a not in before["assignees"]]:
                self.emit(event, "assigned", repo, by=by, issue=issue,
                          extra={"assignee": login})
            for login in [a for a in before["assignees"] if a not in issue.assignees]:
                self.emit(event, "unassigned", repo, by=by, issue=issue,
                          extra={"assignee": login})
        if "milestone" in before and before["milestone"] != issue.milestone:
            if before["milestone"] is not None:
                self.emit(event, "demilestoned", repo, by=by, issue=issue,
                          extra={"milestone": before["milestone"]})
            if issue.milestone is not None:
                self.emit(event, "milestoned", repo, by=by, issue=issue,
                          extra={"milestone": issue.milestone})
        if closing is not None:
            self.emit(event, "closed" if closing else "reopened", repo, by=by, issue=issue)

    def repo_of(self, issue: Issue) -> Repo | None:
        """The repository holding ``issue``."""
        return next((r for r in self.repos.values() if r.issues.get(issue.number) is issue),
                    None)

    # -- comments --------------------------------------------------------------------------

    def add_comment(self, repo: Repo, issue: Issue, user: str, body: str,
                    created: datetime | None = None) -> Comment:
        """Comment on an issue; the issue counts as updated then."""
        created = created or self.now()
        self.user(user)
        comment = Comment(self.next_id(), repo.full_name, issue.number, user, body, created,
                          created)
        self.comments[comment.id] = comment
        issue.comments.append(comment.id)
        issue.updated = max(issue.updated, created)
        self.emit("issue_comment", "created", repo, by=user, issue=issue, comment=comment)
        return comment

    def edit_comment(self, comment: Comment, body: str, by: str | None = None) -> None:
        """Change a comment's body; the issue counts as updated."""
        old = comment.body
        comment.body = body
        comment.updated = self.now()
        issue = self.issue_of(comment)
        if issue is not None:
            self.touch(issue)
            self._comment_event("edited", comment, issue, by, {"body": {"from": old}})

    def delete_comment(self, comment: Comment, by: str | None = None) -> None:
        """Remove a comment; the issue counts as updated."""
        del self.comments[comment.id]
        issue = self.issue_of(comment)
        if issue is not None:
            issue.comments.remove(comment.id)
            self.touch(issue)
            self._comment_event("deleted", comment, issue, by, {})

    def _comment_event(self, action: str, comment: Comment, issue: Issue, by: str | None,
                       changes: dict[str, Any]) -> None:
        repo = self.repo(comment.repo)
        if repo is not None:
            # A person's edit through a test is the comment author's own.
            self.emit("issue_comment", action, repo, by=by or self.actor or comment.user,
                      issue=issue, comment=comment, changes=changes)

    def issue_of(self, comment: Comment) -> Issue | None:
        """The issue a comment belongs to, if it still exists."""
        repo = self.repo(comment.repo)
        return repo.issues.get(comment.number) if repo else None

    # -- milestones ------------------------------------------------------------------------

    def add_milestone(self, repo: Repo, title: str, creator: str | None = None,
                      **fields) -> Milestone:
        """Create the repository's next milestone."""
        now = self.now()
        number = max(repo.milestones, default=0) + 1
        milestone = Milestone(self.next_id(), number, title, creator or repo.owner, now, now,
                              **fields)
        repo.milestones[number] = milestone
        return milestone

    def milestone_named(self, repo: Repo, title: str) -> Milestone:
        """The milestone titled ``title``, created when missing (for seeds)."""
        found = next((m for m in repo.milestones.values() if m.title == title), None)
        return found or self.add_milestone(repo, title)

    # -- repository webhooks ---------------------------------------------------------------

    def add_hook(self, repo: Repo, url: str, creator: str, *, secret: str = "",
                 content_type: str = "form", events: list[str] | None = None,
                 active: bool = True, insecure_ssl: str = "0") -> Hook:
        """Register a webhook on ``repo``; GitHub pings it at once."""
        now = self.now()
        hook = Hook(self.next_id(), url, creator, now, now, secret, content_type, insecure_ssl,
                    list(events) if events is not None else ["push"], active)
        repo.hooks[hook.id] = hook
        self.ping(repo, hook, creator)
        return hook

    def ping(self, repo: Repo, hook: Hook, by: str | None = None) -> None:
        """Send ``hook`` a ping (on creation, or when asked to)."""
        self.emit("ping", "", repo, by=by, hook=hook)

    def remove_hook(self, repo: Repo, hook_id: int) -> bool:
        """Delete a webhook; False when the repository has none with that id."""
        return repo.hooks.pop(hook_id, None) is not None
