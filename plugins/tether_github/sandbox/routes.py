"""The GitHub sandbox's resources: issues (and PRs), labels, comments and repository
webhooks, over a World.

Handlers read ``self._caller`` (the token's identity) and ``self._render`` (payloads with
the request's base URL), which admission in ``api`` sets before routing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlencode

from tether.sandbox import Request, Response, SandboxApi, page_size, route
from tether.sdk import parse_datetime

from .payloads import Renderer
from .transport import DOC, Abort, error, gh_json, invalid
from .world import Comment, Hook, Issue, Repo, Token, World

REPO = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
REPO_ID = r"/repositories/(?P<rid>\d+)"
ISSUE = r"/issues/(?P<number>\d+)"
HOOK = r"/hooks/(?P<hid>\d+)"
HOOKS_DOC = "https://docs.github.com/rest/repos/webhooks#"


class GitHubRoutes(SandboxApi):
    """Issues, labels and comments of every repository in ``world``."""

    def __init__(self, world: World):
        super().__init__()
        self.world = world
        self._caller: Token | None = None
        self._render = Renderer(world, "", "")

    def not_found(self, req: Request) -> Response:
        """GitHub's 404 body."""
        return error(404, "Not Found", "https://docs.github.com/rest")

    def method_not_allowed(self, req: Request) -> Response:
        return self.not_found(req)  # GitHub answers an unknown method on a known path with 404

    @property
    def _login(self) -> str:
        """The caller's login, for a handler that already required a caller (``_repo`` and
        ``_writable`` answer 404 or 403 without one)."""
        assert self._caller is not None
        return self._caller.login

    # -- lookups ---------------------------------------------------------------------------

    def _repo(self, req: Request, doc: str) -> Repo:
        """The repository named by the path (owner/name or id); 404 if unseen by the caller."""
        if "rid" in req.params:
            repo = self.world.repo_by_id(int(req.params["rid"]))
        else:
            repo = self.world.repo(f"{req.params['owner']}/{req.params['repo']}")
        # Sandbox repositories are private: hidden from anonymous callers and from classic
        # tokens without the repo scope, as GitHub hides private ones (404, not 403).
        if repo is None or self._caller is None or not self._caller.sees_private():
            raise Abort(error(404, "Not Found", doc))
        return repo

    def _issue(self, req: Request, doc: str) -> tuple[Repo, Issue]:
        """The repository and the issue the path names; 404 if absent."""
        repo = self._repo(req, doc)
        issue = repo.issues.get(int(req.params["number"]))
        if issue is None:
            raise Abort(error(404, "Not Found", doc))
        return repo, issue

    def _writable(self, doc: str, repo: Repo | None = None, role: str = "read",
                  action: str = "") -> None:
        """403 unless the caller's token may write and its user's role on ``repo`` is at
        least ``role`` (labelling needs triage, creating labels write; GitHub's roles)."""
        if self._caller is None or not self._caller.write:
            raise Abort(error(403, "Resource not accessible by personal access token", doc))
        if repo is not None and not repo.allows(self._caller.login, role):
            # GitHub's wording for too low a role, as in "Must have push access to view
            # repository collaborators."; these exact sentences are ours.
            access = "push" if role == "write" else role
            raise Abort(error(403, f"Must have {access} access to {action}.", doc))

    def _body(self, req: Request, doc: str) -> Any:
        """The JSON body; 400 Problems parsing JSON if it is not JSON."""
        try:
            return req.json()
        except ValueError:
            raise Abort(error(400, "Problems parsing JSON", doc)) from None

    # -- pagination ------------------------------------------------------------------------

    def _page(self, req: Request, repo: Repo, suffix: str, items: list[Any],
              render: Callable[[Any], dict[str, Any]]) -> Response:
        """One page of ``items`` with GitHub's Link header (next pages under /repositories)."""
        try:
            per_page = page_size(req.arg("per_page"), 30, 100)
        except ValueError:
            per_page = 30  # GitHub ignores a per_page it cannot read
        try:
            page = max(1, int(req.arg("page") or 1))
        except ValueError:
            page = 1
        chunk = items[(page - 1) * per_page: page * per_page]
        last = max(1, math.ceil(len(items) / per_page))
        kept = [(k, v) for k, values in req.query.items() if k != "page" for v in values]
        base = f"{self._render.api}/repositories/{repo.id}{suffix}"

        def link(number: int, rel: str) -> str:
            return f'<{base}?{urlencode([*kept, ("page", str(number))])}>; rel="{rel}"'

        links = []
        if page > 1:
            links.append(link(min(page - 1, last), "prev"))
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links.append(link(1, "first"))
        headers = {"Link": ", ".join(links)} if links else {}
        return gh_json(200, [render(item) for item in chunk], headers)

    def _since(self, req: Request, resource: str, doc: str) -> datetime | None:
        """The ``since`` parameter as a datetime; 422 if unreadable."""
        raw = req.arg("since")
        if raw in (None, ""):
            return None
        try:
            return parse_datetime(raw)
        except ValueError:
            raise Abort(invalid(doc, {"resource": resource, "field": "since",
                                      "code": "invalid", "value": raw})) from None

    # -- the caller and its repositories ---------------------------------------------------

    @route("GET", r"/user")
    def authenticated_user(self, req: Request) -> Response:
        """GET /user: who the token belongs to; 401 Requires authentication without one."""
        if self._caller is None:
            raise Abort(error(401, "Requires authentication",
                              "https://docs.github.com/rest/users/users"
                              "#get-the-authenticated-user"))
        return gh_json(200, self._render.me(self._caller.login))

    @route("GET", REPO)
    @route("GET", REPO_ID)
    def get_repository(self, req: Request) -> Response:
        """GET a repository, with the caller's ``permissions`` on it."""
        repo = self._repo(req, "https://docs.github.com/rest/repos/repos#get-a-repository")
        return gh_json(200, self._render.repository(repo, self._login))

    # -- issues ----------------------------------------------------------------------------

    @route("GET", REPO + "/issues")
    @route("GET", REPO_ID + "/issues")
    def list_issues(self, req: Request) -> Response:
        """GET issues: filtered, sorted, paginated; PRs included with pull_request."""
        doc = DOC + "issues#list-repository-issues"
        repo = self._repo(req, doc)
        choices = {"state": ("open", "closed", "all"), "sort": ("created", "updated", "comments"),
                   "direction": ("asc", "desc")}
        picked = {name: req.arg(name) or default
                  for name, default in (("state", "open"), ("sort", "created"),
                                        ("direction", "desc"))}
        for name, value in picked.items():
            if value not in choices[name]:
                raise Abort(invalid(doc, {"resource": "Issue", "field": name, "code": "invalid",
                                          "value": value}))
        since = self._since(req, "Issue", doc)
        items = [i for i in repo.issues.values() if self._matches(req, repo, i, picked["state"])
                 and (since is None or i.updated >= since)]
        order: dict[str, Callable[[Issue], Any]] = {
            "created": lambda i: i.created, "updated": lambda i: i.updated,
            "comments": lambda i: len(i.comments)}
        items.sort(key=lambda i: (order[picked["sort"]](i), i.number),
                   reverse=picked["direction"] == "desc")
        return self._page(req, repo, "/issues", items,
                          lambda issue: self._render.issue(repo, issue))

    def _matches(self, req: Request, repo: Repo, issue: Issue, state: str) -> bool:
        """The list filters: state, labels (all of them), assignee, creator, milestone."""
        if state != "all" and issue.state != state:
            return False
        have = {name.lower() for name in issue.labels}
        if any(name.lower() not in have for name in req.args("labels")):
            return False
        assignee, creator = req.arg("assignee"), req.arg("creator")
        if assignee == "none" and issue.assignees or assignee == "*" and not issue.assignees:
            return False
        if assignee not in (None, "none", "*") and assignee not in issue.assignees:
            return False
        if creator is not None and creator != issue.user:
            return False
        milestone = req.arg("milestone")
        if milestone == "none":
            return issue.milestone is None
        if milestone == "*":
            return issue.milestone is not None
        return milestone is None or str(issue.milestone) == milestone

    @route("GET", REPO + ISSUE)
    @route("GET", REPO_ID + ISSUE)
    def get_issue(self, req: Request) -> Response:
        """GET one issue (or PR)."""
        repo, issue = self._issue(req, DOC + "issues#get-an-issue")
        return gh_json(200, self._render.issue(repo, issue))

    @route("POST", REPO + "/issues")
    def create_issue(self, req: Request) -> Response:
        """POST an issue: 201 with Location."""
        doc = DOC + "issues#create-an-issue"
        repo = self._repo(req, doc)
        self._writable(doc)
        data = self._body(req, doc)
        if not isinstance(data, dict) or not isinstance(data.get("title"), str) \
                or not data["title"].strip():
            raise Abort(invalid(doc, {"resource": "Issue", "code": "missing_field",
                                      "field": "title"}))
        issue = self.world.add_issue(repo, data["title"], self._login,
                                     body=data.get("body"),
                                     assignees=list(data.get("assignees") or []),
                                     labels=self._label_names(data.get("labels") or [], doc,
                                                              allow_empty=True))
        payload = self._render.issue(repo, issue)
        return gh_json(201, payload, {"Location": payload["url"]})

    @route("PATCH", REPO + ISSUE)
    def edit_issue(self, req: Request) -> Response:
        """PATCH an issue: title, body, state, assignees, labels."""
        doc = DOC + "issues#update-an-issue"
        repo, issue = self._issue(req, doc)
        self._writable(doc)
        data = self._body(req, doc)
        if not isinstance(data, dict):
            raise Abort(error(400, "Problems parsing JSON", doc))
        if "labels" in data:
            self._writable(doc, repo, "triage", "label issues")
        changes = {k: data[k] for k in ("title", "body", "state", "state_reason", "assignees")
                   if k in data}
        if changes.get("state") not in (None, "open", "closed"):
            raise Abort(invalid(doc, {"resource": "Issue", "field": "state", "code": "invalid"}))
        if "labels" in data:
            self.world.set_labels(repo, issue, self._label_names(data["labels"], doc, True))
        self.world.edit_issue(issue, by=self._login, **changes)
        return gh_json(200, self._render.issue(repo, issue))

    # -- labels ----------------------------------------------------------------------------

    def _label_names(self, value: Any, doc: str, allow_empty: bool = False) -> list[str]:
        """Names from ``["a"]``, ``[{"name": "a"}]`` or ``{"labels": [...]}``; 422 otherwise."""
        if isinstance(value, dict):
            value = value.get("labels")
        if not isinstance(value, list) or (not value and not allow_empty):
            raise Abort(invalid(doc, {"resource": "Label", "code": "invalid",
                                      "field": "labels"}))
        names = []
        for entry in value:
            name = entry.get("name") if isinstance(entry, dict) else entry
            if not isinstance(name, str) or not name.strip():
                raise Abort(invalid(doc, {"resource": "Label", "code": "invalid",
                                          "field": "name"}))
            if len(name) > 50:
                raise Abort(invalid(doc, {"resource": "Label", "code": "custom", "field": "name",
                                          "message": "name is too long (maximum is 50 "
                                                     "characters)"}))
            names.append(name)
        return names

    @route("GET", REPO + ISSUE + "/labels")
    @route("GET", REPO_ID + ISSUE + "/labels")
    def list_issue_labels(self, req: Request) -> Response:
        """GET an issue's labels."""
        repo, issue = self._issue(req, DOC + "labels#list-labels-for-an-issue")
        return self._page(req, repo, f"/issues/{issue.number}/labels", issue.labels,
                          lambda name: self._render.label(repo, repo.labels[name.lower()]))

    @route("POST", REPO + ISSUE + "/labels")
    def add_issue_labels(self, req: Request) -> Response:
        """POST labels onto an issue (missing ones created grey): 200, all its labels."""
        doc = DOC + "labels#add-labels-to-an-issue"
        repo, issue = self._issue(req, doc)
        self._writable(doc, repo, "triage", "label issues")
        self.world.add_labels(repo, issue, self._label_names(self._body(req, doc), doc))
        return gh_json(200, self._render.issue_labels(repo, issue))

    @route("PUT", REPO + ISSUE + "/labels")
    def set_issue_labels(self, req: Request) -> Response:
        """PUT: replace an issue's labels."""
        doc = DOC + "labels#set-labels-for-an-issue"
        repo, issue = self._issue(req, doc)
        self._writable(doc, repo, "triage", "label issues")
        names = self._label_names(self._body(req, doc), doc, allow_empty=True)
        self.world.set_labels(repo, issue, names)
        return gh_json(200, self._render.issue_labels(repo, issue))

    @route("DELETE", REPO + ISSUE + "/labels")
    def clear_issue_labels(self, req: Request) -> Response:
        """DELETE all of an issue's labels: 204."""
        doc = DOC + "labels#remove-all-labels-from-an-issue"
        repo, issue = self._issue(req, doc)
        self._writable(doc, repo, "triage", "label issues")
        self.world.set_labels(repo, issue, [])
        return Response(204)

    @route("DELETE", REPO + ISSUE + r"/labels/(?P<name>[^/]+)")
    def remove_issue_label(self, req: Request) -> Response:
        """DELETE one label: 200 with the rest, 404 'Label does not exist'."""
        doc = DOC + "labels#remove-a-label-from-an-issue"
        repo, issue = self._issue(req, doc)
        self._writable(doc, repo, "triage", "label issues")
        if not self.world.remove_label(repo, issue, unquote(req.params["name"])):
            raise Abort(error(404, "Label does not exist", doc))
        return gh_json(200, self._render.issue_labels(repo, issue))

    @route("GET", REPO + "/labels")
    @route("GET", REPO_ID + "/labels")
    def list_labels(self, req: Request) -> Response:
        """GET a repository's labels."""
        repo = self._repo(req, DOC + "labels#list-labels-for-a-repository")
        return self._page(req, repo, "/labels", list(repo.labels.values()),
                          lambda label: self._render.label(repo, label))

    @route("POST", REPO + "/labels")
    def create_label(self, req: Request) -> Response:
        """POST a label: 201, or 422 (already_exists is case-insensitive)."""
        doc = DOC + "labels#create-a-label"
        repo = self._repo(req, doc)
        self._writable(doc, repo, "write", "create labels")
        data = self._body(req, doc)
        if not isinstance(data, dict) or not isinstance(data.get("name"), str) \
                or not data["name"].strip():
            raise Abort(invalid(doc, {"resource": "Label", "code": "missing_field",
                                      "field": "name"}))
        name, color = data["name"], data.get("color", "ededed")
        description = data.get("description")
        if len(name) > 50:
            raise Abort(invalid(doc, {"resource": "Label", "code": "custom", "field": "name",
                                      "message": "name is too long (maximum is 50 characters)"}))
        if not isinstance(color, str) or not re.fullmatch(r"[0-9a-fA-F]{6}", color):
            raise Abort(invalid(doc, {"resource": "Label", "code": "invalid", "field": "color"}))
        if description is not None and (not isinstance(description, str)
                                        or len(description) > 100):
            raise Abort(invalid(doc, {"resource": "Label", "code": "custom",
                                      "field": "description", "message": "description is too "
                                      "long (maximum is 100 characters)"}))
        if name.lower() in repo.labels:  # GitHub compares label names case-insensitively
            raise Abort(invalid(doc, {"resource": "Label", "code": "already_exists",
                                      "field": "name"}))
        label = self.world.create_label(repo, name, color, description)
        payload = self._render.label(repo, label)
        return gh_json(201, payload, {"Location": payload["url"]})

    @route("GET", REPO + r"/labels/(?P<name>[^/]+)")
    def get_label(self, req: Request) -> Response:
        """GET a label by name (any case)."""
        doc = DOC + "labels#get-a-label"
        repo = self._repo(req, doc)
        label = repo.labels.get(unquote(req.params["name"]).lower())
        if label is None:
            raise Abort(error(404, "Not Found", doc))
        return gh_json(200, self._render.label(repo, label))

    # -- comments --------------------------------------------------------------------------

    @route("GET", REPO + ISSUE + "/comments")
    @route("GET", REPO_ID + ISSUE + "/comments")
    def list_comments(self, req: Request) -> Response:
        """GET an issue's comments, oldest first."""
        doc = DOC + "comments#list-issue-comments"
        repo, issue = self._issue(req, doc)
        since = self._since(req, "IssueComment", doc)
        found = [self.world.comments[cid] for cid in issue.comments]
        found = [c for c in found if since is None or c.updated >= since]
        return self._page(req, repo, f"/issues/{issue.number}/comments", found,
                          self._render.comment)

    @route("POST", REPO + ISSUE + "/comments")
    def create_comment(self, req: Request) -> Response:
        """POST a comment: 201 with Location."""
        doc = DOC + "comments#create-an-issue-comment"
        repo, issue = self._issue(req, doc)
        self._writable(doc)
        body = self._comment_body(req, doc)
        comment = self.world.add_comment(repo, issue, self._login, body)
        payload = self._render.comment(comment)
        return gh_json(201, payload, {"Location": payload["url"]})

    def _comment_body(self, req: Request, doc: str) -> str:
        """The comment body; 422 when missing, empty or over 65536 characters."""
        data = self._body(req, doc)
        body = data.get("body") if isinstance(data, dict) else None
        if not isinstance(body, str) or not body.strip():
            raise Abort(invalid(doc, {"resource": "IssueComment", "code": "missing_field",
                                      "field": "body"}))
        if len(body) > 65536:
            raise Abort(invalid(doc, {"resource": "IssueComment", "code": "custom",
                                      "field": "body", "message": "body is too long (maximum "
                                      "is 65536 characters)"}))
        return body

    def _comment(self, req: Request, doc: str) -> Comment:
        """The comment the path names, in that repository; 404 otherwise."""
        repo = self._repo(req, doc)
        comment = self.world.comments.get(int(req.params["cid"]))
        if comment is None or comment.repo.lower() != repo.full_name.lower():
            raise Abort(error(404, "Not Found", doc))
        return comment

    @route("GET", REPO + r"/issues/comments/(?P<cid>\d+)")
    def get_comment(self, req: Request) -> Response:
        """GET one comment."""
        comment = self._comment(req, DOC + "comments#get-an-issue-comment")
        return gh_json(200, self._render.comment(comment))

    @route("PATCH", REPO + r"/issues/comments/(?P<cid>\d+)")
    def update_comment(self, req: Request) -> Response:
        """PATCH a comment's body."""
        doc = DOC + "comments#update-an-issue-comment"
        comment = self._comment(req, doc)
        self._writable(doc)
        self.world.edit_comment(comment, self._comment_body(req, doc))
        return gh_json(200, self._render.comment(comment))

    @route("DELETE", REPO + r"/issues/comments/(?P<cid>\d+)")
    def delete_comment(self, req: Request) -> Response:
        """DELETE a comment: 204."""
        doc = DOC + "comments#delete-an-issue-comment"
        comment = self._comment(req, doc)
        self._writable(doc)
        self.world.delete_comment(comment)
        return Response(204)

    # -- repository webhooks ---------------------------------------------------------------

    def _admin(self, req: Request, doc: str, write: bool = False) -> Repo:
        """The repository, if the caller administers it: GitHub hides a repository's hooks
        from everyone else (404), and a token that may not write may not change them."""
        repo = self._repo(req, doc)
        if not repo.allows(self._login, "admin"):
            raise Abort(error(404, "Not Found", doc))
        if write:
            self._writable(doc)
        return repo

    def _hook(self, req: Request, doc: str, write: bool = False) -> tuple[Repo, Hook]:
        repo = self._admin(req, doc, write)
        hook = repo.hooks.get(int(req.params["hid"]))
        if hook is None:
            raise Abort(error(404, "Not Found", doc))
        return repo, hook

    @route("GET", REPO + "/hooks")
    def list_hooks(self, req: Request) -> Response:
        """GET a repository's webhooks (secrets masked)."""
        repo = self._admin(req, HOOKS_DOC + "list-repository-webhooks")
        return self._page(req, repo, "/hooks", list(repo.hooks.values()),
                          lambda hook: self._render.hook(repo, hook))

    @route("POST", REPO + "/hooks")
    def create_hook(self, req: Request) -> Response:
        """POST a webhook: 201 with Location, then a ping queued for it; 422 for a bad
        config or one whose url already gets any of these events."""
        doc = HOOKS_DOC + "create-a-repository-webhook"
        repo = self._admin(req, doc, write=True)
        data = self._body(req, doc) or {}
        if not isinstance(data, dict):
            raise Abort(error(400, "Problems parsing JSON", doc))
        config = data.get("config")
        events = data.get("events", ["push"])
        problem = self._hook_problem(data, config, events)
        if problem:
            raise Abort(invalid(doc, {"resource": "Hook", "code": "custom",
                                      "message": problem}))
        assert isinstance(config, dict)
        if any(h.url == config["url"] and (set(h.events) & set(events) or "*" in events
                                           or "*" in h.events) for h in repo.hooks.values()):
            raise Abort(invalid(doc, {"resource": "Hook", "code": "custom",
                                      "message": "Hook already exists on this repository"}))
        hook = self.world.add_hook(
            repo, config["url"], self._login, secret=config.get("secret") or "",
            content_type=config.get("content_type") or "form",
            insecure_ssl=str(config.get("insecure_ssl", "0")), events=list(events),
            active=data.get("active", True))
        payload = self._render.hook(repo, hook)
        return gh_json(201, payload, {"Location": payload["url"]})

    @staticmethod
    def _hook_problem(data: dict[str, Any], config: Any, events: Any) -> str:
        """What GitHub would refuse in a new hook's fields ("" when nothing); the sentences
        are the sandbox's own."""
        if data.get("name", "web") != "web":
            return "name must be 'web'"
        if not isinstance(config, dict) or not isinstance(config.get("url"), str) \
                or not re.match(r"https?://[^/\s]+", config["url"]):
            return "config must contain url, an http(s) URL to deliver to"
        if config.get("content_type", "form") not in ("json", "form"):
            return "config.content_type must be json or form"
        if not isinstance(config.get("secret", ""), str | None):
            return "config.secret must be a string"
        if not isinstance(events, list) or not all(isinstance(e, str) and e for e in events):
            return "events must be a list of event names"
        if not isinstance(data.get("active", True), bool):
            return "active must be true or false"
        return ""

    @route("GET", REPO + HOOK)
    def get_hook(self, req: Request) -> Response:
        """GET one webhook."""
        repo, hook = self._hook(req, HOOKS_DOC + "get-a-repository-webhook")
        return gh_json(200, self._render.hook(repo, hook))

    @route("DELETE", REPO + HOOK)
    def delete_hook(self, req: Request) -> Response:
        """DELETE a webhook: 204; its queued deliveries still go (GitHub's are in flight)."""
        repo, hook = self._hook(req, HOOKS_DOC + "delete-a-repository-webhook", write=True)
        self.world.remove_hook(repo, hook.id)
        return Response(204)

    @route("POST", REPO + HOOK + "/pings")
    def ping_hook(self, req: Request) -> Response:
        """POST a ping to a webhook: 204, and the ping queued."""
        repo, hook = self._hook(req, HOOKS_DOC + "ping-a-repository-webhook", write=True)
        self.world.ping(repo, hook, self._login)
        return Response(204)
