"""A fake GitLab REST API v4: the endpoints Tether uses, answered as GitLab answers them
(PRIVATE-TOKEN auth, ``{"message": "404 Project Not Found"}`` errors, X-Next-Page paging
with per_page capped at 100, label edits that leave system notes, RateLimit-* headers, and
a 429 with Retry-After once a minute's requests are spent)."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from tether.sandbox import Request, Response, SandboxApi, json_response, page_size, route
from tether.sdk import parse_datetime

from .world import Issue, Note, Project, World

PROJECT = r"/api/v4/projects/(?P<project>[^/]+)"
ISSUE = PROJECT + r"/issues/(?P<iid>\d+)"


def stamp(at: datetime | None) -> str | None:
    """GitLab's timestamps: UTC, milliseconds, "Z"."""
    return None if at is None else \
        at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fail(status: int, message: str) -> Response:
    return json_response(status, {"message": f"{status} {message}"})


class GitLabApi(SandboxApi):
    name = "gitlab"

    def __init__(self, world: World, rate_limit: int = 2000,
                 on_write: Callable[[], None] | None = None):
        super().__init__()
        self.world = world
        self.rate_limit = rate_limit  # requests per minute, as on GitLab.com
        self.on_write = on_write  # called after each successful write (to save the world)
        self.window = (0, 0)  # (minute, requests in it)
        self.user = ""

    def dispatch(self, req: Request) -> Response:
        secret = req.headers.get("PRIVATE-TOKEN") or \
            (req.headers.get("Authorization") or "").removeprefix("Bearer ")
        if secret.strip() not in self.world.tokens:
            return fail(401, "Unauthorized")
        self.user = self.world.tokens[secret.strip()]
        now = int(self.world.clock.now().timestamp())
        used = self.window[1] + 1 if self.window[0] == now // 60 else 1
        self.window = (now // 60, used)
        if used > self.rate_limit:
            return Response(429, "Retry later\n", {"Content-Type": "text/plain",
                                                   "Retry-After": str(60 - now % 60)})
        try:
            response = super().dispatch(req)
        except LookupError as missing:
            return fail(404, str(missing.args[0]))
        except ValueError as bad:  # a bad number or time in the query
            return json_response(400, {"error": str(bad)})
        if req.method != "GET" and response.status < 400 and self.on_write is not None:
            self.on_write()
        return response

    def decorate(self, req: Request, resp: Response) -> None:
        minute, used = self.window
        reset = datetime.fromtimestamp((minute + 1) * 60, UTC)
        resp.headers.update({
            "RateLimit-Limit": str(self.rate_limit), "RateLimit-Observed": str(used),
            "RateLimit-Remaining": str(max(0, self.rate_limit - used)),
            "RateLimit-Reset": str(int(reset.timestamp())),
            "RateLimit-ResetTime": format_datetime(reset, usegmt=True)})

    def not_found(self, req: Request) -> Response:
        return fail(404, "Not Found")

    # -- lookups and payloads: LookupError answers 404, ValueError 400 ---------------------

    def _project(self, req: Request) -> Project:
        project = self.world.project(req.params["project"])
        if project is None:
            raise LookupError("Project Not Found")
        return project

    def _issue(self, req: Request) -> tuple[Project, Issue]:
        project = self._project(req)
        if int(req.params["iid"]) not in project.issues:
            raise LookupError("Issue Not Found")
        return project, project.issues[int(req.params["iid"])]

    def _user(self, req: Request, username: str) -> dict[str, Any]:
        return {"id": sum(map(ord, username)), "username": username, "state": "active",
                "name": self.world.users.get(username, username),
                "web_url": f"{req.base_url}/{username}"}

    def _issue_json(self, req: Request, project: Project, issue: Issue) -> dict[str, Any]:
        assignees = [self._user(req, a) for a in issue.assignees]
        return {
            "id": project.id * 100_000 + issue.iid, "iid": issue.iid, "project_id": project.id,
            "title": issue.title, "description": issue.description, "state": issue.state,
            "created_at": stamp(issue.created), "updated_at": stamp(issue.updated),
            "closed_at": stamp(issue.closed), "labels": list(issue.labels), "milestone": None,
            "author": self._user(req, issue.author), "assignees": assignees,
            "assignee": assignees[0] if assignees else None, "weight": issue.weight,
            "user_notes_count": sum(not n.system for n in issue.notes), "issue_type": "issue",
            "web_url": f"{req.base_url}/{project.path}/-/issues/{issue.iid}",
            "references": {"short": f"#{issue.iid}", "full": f"{project.path}#{issue.iid}"}}

    def _note_json(self, req: Request, issue: Issue, note: Note) -> dict[str, Any]:
        return {"id": note.id, "body": note.body, "system": note.system,
                "author": self._user(req, note.author), "created_at": stamp(note.created),
                "updated_at": stamp(note.updated), "noteable_type": "Issue",
                "noteable_iid": issue.iid, "internal": False}

    @staticmethod
    def _paged(req: Request, items: list[Any]) -> Response:
        """One page of ``items`` with GitLab's X-* pagination headers."""
        size = page_size(req.arg("per_page"), 20, 100)
        page = max(1, int(req.arg("page") or 1))
        pages = max(1, math.ceil(len(items) / size))
        return json_response(200, items[(page - 1) * size:page * size], {
            "X-Page": str(page), "X-Per-Page": str(size), "X-Total": str(len(items)),
            "X-Total-Pages": str(pages), "X-Next-Page": str(page + 1) if page < pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else ""})

    @staticmethod
    def _field(req: Request, name: str) -> str:
        """A parameter from the JSON body or the query string (GitLab takes either)."""
        body = req.json()
        return str((body if isinstance(body, dict) else {}).get(name) or req.arg(name) or "")

    # -- routes ---------------------------------------------------------------------------

    @route("GET", r"/api/v4/user")
    def me(self, req: Request) -> Response:
        return json_response(200, self._user(req, self.user))

    @route("GET", r"/api/v4/personal_access_tokens/self")
    def token(self, req: Request) -> Response:
        return json_response(200, {"id": 1, "name": "tether", "scopes": ["api"], "active": True})

    @route("GET", PROJECT)
    def project(self, req: Request) -> Response:
        p = self._project(req)
        level = p.members.get(self.user)
        return json_response(200, {
            "id": p.id, "path_with_namespace": p.path, "visibility": "private",
            "web_url": f"{req.base_url}/{p.path}", "issues_enabled": True, "archived": False,
            "open_issues_count": sum(i.state == "opened" for i in p.issues.values()),
            "permissions": {"group_access": None, "project_access": None if level is None
                            else {"access_level": level, "notification_level": 3}}})

    @route("GET", PROJECT + r"/issues")
    def issues(self, req: Request) -> Response:
        project = self._project(req)
        after, state = parse_datetime(req.arg("updated_after")), req.arg("state", "all")
        found = [i for i in project.issues.values()
                 if (after is None or i.updated >= after) and state in ("all", i.state)]
        by = "updated" if req.arg("order_by") == "updated_at" else "created"
        found.sort(key=lambda i: (getattr(i, by), i.iid), reverse=req.arg("sort") != "asc")
        return self._paged(req, [self._issue_json(req, project, i) for i in found])

    @route("PUT", ISSUE)
    def edit_issue(self, req: Request) -> Response:
        project, issue = self._issue(req)
        add, remove = (self._field(req, name).split(",") for name in ("add_labels",
                                                                       "remove_labels"))
        self.world.relabel(issue, [x.strip() for x in add if x.strip()],
                           [x.strip() for x in remove if x.strip()], self.user)
        return json_response(200, self._issue_json(req, project, issue))

    @route("GET", ISSUE + r"/notes")
    def notes(self, req: Request) -> Response:
        _, issue = self._issue(req)
        by = "updated" if req.arg("order_by") == "updated_at" else "created"
        notes = sorted(issue.notes, key=lambda n: (getattr(n, by), n.id),
                       reverse=req.arg("sort", "desc") != "asc")
        return self._paged(req, [self._note_json(req, issue, n) for n in notes])

    @route("POST", ISSUE + r"/notes")
    def add_note(self, req: Request) -> Response:
        _, issue = self._issue(req)
        if not self._field(req, "body").strip():
            return json_response(400, {"error": "body is missing"})
        note = self.world.add_note(issue, self.user, self._field(req, "body"))
        return json_response(201, self._note_json(req, issue, note))

    @route("PUT", ISSUE + r"/notes/(?P<note>\d+)")
    def edit_note(self, req: Request) -> Response:
        _, issue = self._issue(req)
        note = next((n for n in issue.notes if n.id == int(req.params["note"])), None)
        if note is None or note.system:
            return fail(404, "Not found")
        self.world.edit_note(issue, note, self._field(req, "body") or note.body)
        return json_response(200, self._note_json(req, issue, note))
