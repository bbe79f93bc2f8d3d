"""The state of a fake Jira site: users, projects, issues, comments, properties, a clock,
and the admin webhooks registered on it.

Only the sandbox uses this. Every change stamps ``updated`` from the site's clock, as Jira
does for edits, label changes and comments (issue properties do not touch it). Every change
a webhook reports (an issue created, edited or deleted, a comment, a link) is told to the
``listeners`` as a :class:`Change` the moment it happens (see sandbox/hooks.py)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tether.sdk import Clock, FakeClock

ALL_PERMISSIONS = frozenset({"BROWSE_PROJECTS", "EDIT_ISSUES", "ADD_COMMENTS",
                             "EDIT_OWN_COMMENTS", "EDIT_ALL_COMMENTS"})
CATEGORIES = {  # statusCategory key -> (id, name, colorName), fixed in every Jira
    "new": (2, "To Do", "blue-gray"),
    "indeterminate": (4, "In Progress", "yellow"),
    "done": (3, "Done", "green"),
}
EPIC_LINK_TYPE = "com.pyxis.greenhopper.jira:gh-epic-link"
FLOAT_TYPE = "com.atlassian.jira.plugin.system.customfieldtypes:float"
TEXT_TYPE = "com.atlassian.jira.plugin.system.customfieldtypes:textfield"


class SandboxError(Exception):
    """A request the service would refuse: ``status`` and Jira's error body."""

    def __init__(self, status: int, messages: list[str] | None = None,
                 errors: dict[str, str] | None = None):
        super().__init__(status, messages, errors)
        self.status = status
        self.body = {"errorMessages": messages or [], "errors": errors or {}}


@dataclass
class User:
    account_id: str  # Cloud's accountId
    name: str  # Data Center's username
    display_name: str
    email: str
    time_zone: str = "UTC"
    active: bool = True
    # Administers the projects: may edit without notifying watchers (notifyUsers=false), and
    # mypermissions grants it ADMINISTER_PROJECTS (the sandbox models no Jira admins).
    admin: bool = True
    # What this user may do at most, in every project (None: whatever each project grants),
    # e.g. {"BROWSE_PROJECTS"} for a read-only account.
    permissions: frozenset[str] | None = None


@dataclass
class Project:
    key: str
    id: str
    name: str
    permissions: frozenset[str] = ALL_PERMISSIONS  # what the token's user may do here
    next_number: int = 1


@dataclass(frozen=True)
class IssueType:
    id: str
    name: str
    hierarchy: int  # 1 epic, 0 standard, -1 sub-task
    description: str = ""


@dataclass(frozen=True)
class Status:
    id: str
    name: str
    category: str  # new, indeterminate, done


@dataclass(frozen=True)
class LinkType:
    id: str
    name: str
    inward: str
    outward: str


@dataclass(frozen=True)
class FieldDef:
    id: str
    name: str
    type: str  # the JSON schema type Jira reports: string, number, any, array, ...
    custom: str | None = None  # schema.custom for custom fields
    items: str | None = None

    @property
    def is_custom(self) -> bool:
        return self.id.startswith("customfield_")

    @property
    def clause_names(self) -> list[str]:
        if self.is_custom:
            return [f"cf[{self.id.split('_')[1]}]", self.name]
        return [CLAUSES.get(self.id, self.id)]


CLAUSES = {"issuetype": "type", "resolutiondate": "resolved", "issuelinks": "issueLink",
           "components": "component", "issuekey": "key"}
SYSTEM_FIELDS = [
    FieldDef("summary", "Summary", "string"), FieldDef("description", "Description", "string"),
    FieldDef("issuetype", "Issue Type", "issuetype"), FieldDef("status", "Status", "status"),
    FieldDef("assignee", "Assignee", "user"), FieldDef("reporter", "Reporter", "user"),
    FieldDef("project", "Project", "project"),
    FieldDef("labels", "Labels", "array", items="string"),
    FieldDef("components", "Components", "array", items="component"),
    FieldDef("parent", "Parent", "issuelink"),
    FieldDef("issuelinks", "Linked Issues", "array", items="issuelinks"),
    FieldDef("created", "Created", "datetime"), FieldDef("updated", "Updated", "datetime"),
    FieldDef("resolutiondate", "Resolved", "datetime"),
    FieldDef("comment", "Comment", "comments-page"),
]


@dataclass
class Comment:
    id: str
    author: str  # account id
    body: Any  # an ADF dict (written through REST v3) or a wiki string (v2)
    created: datetime
    updated: datetime
    update_author: str = ""
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class Issue:
    id: str
    key: str
    project: str
    summary: str
    type: str
    status: str
    created: datetime
    updated: datetime
    description: str = ""
    assignee: str | None = None  # account id
    reporter: str | None = None
    labels: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    parent: str | None = None  # key
    resolved: datetime | None = None
    custom: dict[str, Any] = field(default_factory=dict)  # field id -> value
    comments: list[Comment] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)

    @property
    def number(self) -> int:
        return int(self.key.rsplit("-", 1)[1])


@dataclass
class Link:
    id: str
    type: str  # LinkType name; reads "source <outward> target"
    source: str
    target: str


# What a webhook's changelog reports of an edit: the issue attributes people change.
TRACKED = ("summary", "description", "type", "status", "assignee", "labels", "components",
           "parent", "custom")


@dataclass(frozen=True)
class Change:
    """One change a Jira webhook reports, as it happened: ``kind`` is the webhookEvent
    (jira:issue_created|updated|deleted, comment_created|updated|deleted,
    issuelink_created|deleted); ``author`` the account id of who made it; ``fields`` an
    edit's changed attributes as (before, after)."""

    kind: str
    issue: Issue | None
    author: str | None
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    comment: Comment | None = None
    link: Link | None = None


@dataclass
class WebHook:
    """An admin webhook (Jira administration, or ``POST /rest/webhooks/1.0/webhook``)."""

    id: int
    name: str
    url: str
    events: list[str]
    jql: str = ""  # filters["issue-related-events-section"]; empty: every issue
    secret: str = ""  # empty: deliveries go unsigned
    exclude_body: bool = False
    enabled: bool = True
    author: str = ""  # account id of who last changed it
    updated: datetime | None = None


@dataclass
class Limits:
    """Service limits the sandbox enforces (Jira's defaults unless a seed changes them)."""

    dc_max_results: int = 1000  # jira.search.views.default.max
    cloud_max_results: int = 5000  # /search/jql, when only id/key are asked for
    cloud_max_with_fields: int = 100  # /search/jql, when fields or properties are asked for
    comment_length: int = 32767
    property_length: int = 32768
    label_length: int = 255


class World:
    """One fake Jira site. Public methods are what people (tests, the driver) do in Jira."""

    def __init__(self, flavour: str = "cloud", token: str = "good", clock: Clock | None = None,
                 time_zone: str = "UTC"):
        if flavour not in ("cloud", "datacenter"):
            raise ValueError(f"flavour must be cloud or datacenter, not {flavour!r}")
        self.flavour = flavour
        self.token = token
        self.clock: Clock = clock or FakeClock()
        self.time_zone = time_zone  # the instance default: REST prints timestamps in it
        self.limits = Limits()
        self.users: dict[str, User] = {}
        self.me: User | None = None  # the token's user (while a request runs: its caller)
        self.tokens: dict[str, str] = {}  # other tokens it accepts -> their user's account id
        self.projects: dict[str, Project] = {}
        self.issues: dict[str, Issue] = {}
        self.links: list[Link] = []
        self.types = {t.name: t for t in (
            IssueType("10000", "Epic", 1), IssueType("10001", "Story", 0),
            IssueType("10002", "Task", 0), IssueType("10003", "Bug", 0),
            IssueType("10004", "Sub-task", -1))}
        self.statuses = {s.name: s for s in (
            Status("10000", "To Do", "new"), Status("3", "In Progress", "indeterminate"),
            Status("10001", "In Review", "indeterminate"), Status("10002", "Done", "done"))}
        self.link_types = {t.name: t for t in (
            LinkType("10000", "Blocks", "is blocked by", "blocks"),
            LinkType("10001", "Cloners", "is cloned by", "clones"),
            LinkType("10002", "Duplicate", "is duplicated by", "duplicates"),
            LinkType("10003", "Relates", "relates to", "relates to"))}
        self.fields = {f.id: f for f in SYSTEM_FIELDS}
        if flavour == "cloud":
            self.story_points = self.add_field("customfield_10016", "Story point estimate",
                                               "number", FLOAT_TYPE)
            self.epic_link: str | None = None  # Cloud links epics through `parent`
        else:
            self.story_points = self.add_field("customfield_10106", "Story Points", "number",
                                               FLOAT_TYPE)
            self.epic_link = self.add_field("customfield_10101", "Epic Link", "any",
                                            EPIC_LINK_TYPE)
        self._ids = {"issue": 10000, "comment": 10000, "project": 10000, "link": 10000,
                     "changelog": 10000, "webhook": 1}
        self.hooks: dict[int, WebHook] = {}
        # Told every Change as it happens (the webhook deliveries); never saved.
        self.listeners: list[Callable[[Change], None]] = []

    def now(self) -> datetime:
        return self.clock.now()

    def advance(self, seconds: float) -> None:
        """Move the site's clock on (only a FakeClock moves; a real one just waits)."""
        self.clock.sleep(seconds)

    def next_id(self, kind: str) -> str:
        self._ids[kind] += 1
        return str(self._ids[kind] - 1)

    # -- set-up ---------------------------------------------------------------------------

    def add_user(self, account_id: str, name: str, display_name: str, email: str,
                 time_zone: str = "UTC", me: bool = False, admin: bool = True,
                 permissions: frozenset[str] | None = None) -> User:
        """A user; ``permissions`` caps what it may do in every project (None: no cap)."""
        user = User(account_id, name, display_name, email, time_zone, admin=admin,
                    permissions=None if permissions is None else frozenset(permissions))
        self.users[account_id] = user
        if me or self.me is None:
            self.me = user
        return user

    def add_token(self, token: str, account_id: str) -> None:
        """Another token the site accepts, acting as the user ``account_id``."""
        if account_id not in self.users:
            raise ValueError(f"no user {account_id!r}")
        self.tokens[token] = account_id

    def credentials(self) -> list[tuple[str, User]]:
        """Every token the site accepts, with the user it acts as; the main token first."""
        out = [(self.token, self.me)] if self.me is not None else []
        return out + [(t, self.users[a]) for t, a in self.tokens.items() if a in self.users]

    def add_project(self, key: str, name: str,
                    permissions: frozenset[str] = ALL_PERMISSIONS) -> Project:
        project = Project(key, self.next_id("project"), name, frozenset(permissions))
        self.projects[key] = project
        return project

    def add_field(self, fid: str, name: str, kind: str, custom: str | None = None) -> str:
        self.fields[fid] = FieldDef(fid, name, kind, custom or TEXT_TYPE)
        return fid

    def create_issue(self, project: str, summary: str, *, type: str = "Story",
                     status: str = "To Do", created: datetime | None = None,
                     updated: datetime | None = None, **attrs: Any) -> Issue:
        """A new issue, as a person would create it; ``attrs`` are Issue fields."""
        proj = self.projects[project]
        if type not in self.types or status not in self.statuses:
            raise ValueError(f"unknown issue type {type!r} or status {status!r}")
        created = created or self.now()
        key = f"{project}-{proj.next_number}"
        proj.next_number += 1
        issue = Issue(self.next_id("issue"), key, project, summary, type, status, created,
                      updated or created, **attrs)
        if issue.resolved is None and self.statuses[status].category == "done":
            issue.resolved = issue.updated
        self.issues[key] = issue
        self.emit(Change("jira:issue_created", issue, issue.reporter or self._author(None)))
        return issue

    def link(self, type: str, source: str, target: str, author: str | None = None) -> Link:
        """``source`` <outward phrase> ``target``, e.g. link("Blocks", "A-1", "A-2")."""
        if type not in self.link_types:
            raise ValueError(f"unknown link type {type!r}")
        link = Link(self.next_id("link"), type, source, target)
        self.links.append(link)
        self.emit(Change("issuelink_created", None, self._author(author), link=link))
        return link

    def unlink(self, link_id: str, author: str | None = None) -> None:
        """Remove the link ``link_id``, as a person would."""
        link = next(x for x in self.links if x.id == link_id)
        self.links.remove(link)
        self.emit(Change("issuelink_deleted", None, self._author(author), link=link))

    def add_hook(self, name: str, url: str, events: list[str], jql: str = "",
                 secret: str = "", exclude_body: bool = False,
                 author: str | None = None) -> WebHook:
        """An admin webhook, as a Jira administrator registers it."""
        hook = WebHook(int(self.next_id("webhook")), name, url, list(events), jql, secret,
                       exclude_body, True, self._author(author) or "", self.now())
        self.hooks[hook.id] = hook
        return hook

    def emit(self, change: Change) -> None:
        """Tell every listener (the webhook deliveries) what just happened."""
        for listener in list(self.listeners):
            listener(change)

    def _author(self, author: str | None) -> str | None:
        """Who made a change: ``author``, else the token's user (while a request runs, its
        caller)."""
        return author or (self.me.account_id if self.me else None)

    # -- what people do -------------------------------------------------------------------

    def touch(self, issue: Issue) -> None:
        issue.updated = self.now()

    def edit(self, key: str, author: str | None = None, **changes: Any) -> Issue:
        """``author`` (an account id; default: the token's user) edits an issue (summary,
        status, labels, ...): ``updated`` is now."""
        issue = self.issues[key]
        before = self.tracked(issue)
        for name, value in changes.items():
            if not hasattr(issue, name):
                raise AttributeError(f"issues have no field {name!r}")
            setattr(issue, name, copy.deepcopy(value))
        if "status" in changes:
            done = self.statuses[issue.status].category == "done"
            issue.resolved = (issue.resolved or self.now()) if done else None
        self.touch(issue)
        self.edited(issue, before, author)
        return issue

    @staticmethod
    def tracked(issue: Issue) -> dict[str, Any]:
        """A copy of what an edit's changelog reports, to compare after the edit."""
        return {name: copy.deepcopy(getattr(issue, name)) for name in TRACKED}

    def edited(self, issue: Issue, before: dict[str, Any], author: str | None = None) -> None:
        """Report what changed on ``issue`` since ``before`` (see ``tracked``), if anything."""
        after = self.tracked(issue)
        changed = {n: (before[n], after[n]) for n in TRACKED if before[n] != after[n]}
        if changed:
            self.emit(Change("jira:issue_updated", issue, self._author(author), changed))

    def delete_issue(self, key: str, author: str | None = None) -> None:
        """Delete an issue, its links with it."""
        issue = self.issues[key]
        self.emit(Change("jira:issue_deleted", issue, self._author(author)))
        del self.issues[key]
        self.links = [x for x in self.links if key not in (x.source, x.target)]

    def comment(self, key: str, body: Any, author: str | None = None) -> Comment:
        """A comment written by ``author`` (default: the token's user)."""
        issue = self.issues[key]
        who = self._author(author) or ""
        now = self.now()
        comment = Comment(self.next_id("comment"), who, copy.deepcopy(body), now, now, who)
        issue.comments.append(comment)
        self.touch(issue)
        self.emit(Change("comment_created", issue, who, comment=comment))
        return comment

    def edit_comment(self, key: str, comment_id: str, body: Any, author: str | None = None
                     ) -> Comment:
        issue = self.issues[key]
        comment = self.find_comment(issue, comment_id)
        comment.body = copy.deepcopy(body)
        comment.updated = self.now()
        comment.update_author = self._author(author) or ""
        self.touch(issue)
        self.emit(Change("comment_updated", issue, comment.update_author, comment=comment))
        return comment

    def delete_comment(self, key: str, comment_id: str, author: str | None = None) -> None:
        issue = self.issues[key]
        comment = self.find_comment(issue, comment_id)
        issue.comments.remove(comment)
        self.touch(issue)
        self.emit(Change("comment_deleted", issue, self._author(author), comment=comment))

    # -- lookups --------------------------------------------------------------------------

    def issue(self, id_or_key: str) -> Issue:
        """The issue by key or id, if the token's user may browse it; else Jira's 404."""
        issue = self.issues.get(id_or_key.upper()) or next(
            (i for i in self.issues.values() if i.id == id_or_key), None)
        if issue is None or not self.can(issue.project, "BROWSE_PROJECTS"):
            raise SandboxError(404, ["Issue does not exist or you do not have permission to "
                                     "see it."])
        return issue

    def find_comment(self, issue: Issue, comment_id: str) -> Comment:
        for comment in issue.comments:
            if comment.id == comment_id:
                return comment
        raise SandboxError(404, [f"Can not find a comment for the id: {comment_id}."])

    def can(self, project: str, permission: str) -> bool:
        """Whether the token's user (while a request runs: its caller) has ``permission``
        in ``project``: the project grants it and the user's own cap allows it."""
        proj = self.projects.get(project)
        if proj is None or permission not in proj.permissions:
            return False
        cap = self.me.permissions if self.me is not None else None
        return cap is None or permission in cap

    def visible(self) -> list[Issue]:
        return [i for i in self.issues.values() if self.can(i.project, "BROWSE_PROJECTS")]

    def links_of(self, key: str) -> list[tuple[Link, str]]:
        """(link, side) pairs: "outwardIssue" when ``key`` is the source."""
        out = []
        for link in self.links:
            if link.source == key:
                out.append((link, "outwardIssue"))
            elif link.target == key:
                out.append((link, "inwardIssue"))
        return out
