"""Who may do what in the Asana sandbox: project membership access levels, checked on reads
and writes, and the routes that show them (a project, its memberships).

Levels are Asana's (ProjectMembershipCompact.access_level in the OpenAPI file): viewers
read, commenters also comment, editors and admins also edit tasks (tags, custom fields).
A refusal is the documented 403 ("read or write to objects ... the user does not have access
to") with the body text "Forbidden", as the sandbox already answers for others' comments;
Asana's exact wording for these cases is not documented."""

from __future__ import annotations

from typing import Any

from tether.sandbox import Request, Response, SandboxApi, route

from .state import ACCESS_LEVELS, AsanaState, Record, StateError
from .views import Views, opt_fields, paginate, project

A = r"/api/1\.0"
G = r"(?P<gid>[^/]+)"
PROJECT_FIELDS = {"gid", "resource_type", "name", "archived", "color", "created_at",
                  "modified_at", "notes", "privacy_setting", "default_access_level",
                  "permalink_url", "workspace", "workspace.name", "public"}
MEMBERSHIP_FIELDS = {"access_level", "member", "member.name", "parent", "parent.name"}


def _reply(status: int, body: Any) -> Response:
    return Response(status, body, {"Content-Type": "application/json; charset=UTF-8"})


class AccessRoutes(SandboxApi):
    """Access checks for the other routes, and GET projects/{gid}[/project_memberships]."""

    state: AsanaState

    def views(self, req: Request) -> Views:
        return Views(self.state, req.base_url)

    def _project(self, raw: str) -> Record:
        """The project ``raw`` names, if the caller may see it: 400/404/403 otherwise."""
        if not raw.isdigit():
            raise StateError(400, f"project: Not a recognized ID: {raw}")
        found = self.state.projects.get(raw)
        if found is None:
            raise StateError(404, f"project: Unknown object: {raw}")
        if self.state.access(raw) is None:
            raise StateError(403, "Forbidden")
        return found

    def _allowed(self, task: Record, level: str = "viewer") -> None:
        """403 unless the caller's access to one of the task's projects is ``level`` or up."""
        have = self.state.task_access(task)
        if have is None or ACCESS_LEVELS.index(have) < ACCESS_LEVELS.index(level):
            raise StateError(403, "Forbidden")

    @route("GET", A + r"/projects/" + G)
    def get_project(self, req: Request) -> Response:
        proj = self._project(req.params["gid"])
        views = self.views(req)
        data = {"gid": proj["gid"], "resource_type": "project", "name": proj["name"],
                "archived": False, "color": None, "created_at": proj["created_at"],
                "modified_at": proj["created_at"], "notes": "",
                "privacy_setting": "public_to_workspace" if proj.get("others", "editor")
                else "private",
                "default_access_level": proj.get("others") or "editor",
                "permalink_url": f"{req.base_url}/0/{proj['gid']}/list",
                "workspace": views.workspace()}
        fields = opt_fields(req.args("opt_fields"), PROJECT_FIELDS)
        return _reply(200, {"data": project(data, fields) if fields else data})

    @route("GET", A + r"/projects/" + G + r"/project_memberships")
    def get_project_memberships(self, req: Request) -> Response:
        """Members with their own membership, plus the caller's when it has access through
        ``others`` (so ``user=me`` shows the caller's level); ``user`` filters."""
        proj = self._project(req.params["gid"])
        st = self.state
        members = dict(proj.get("members") or {})
        if st.me not in members and st.access(proj["gid"]) is not None:
            members[st.me] = st.access(proj["gid"])
        wanted = req.arg("user")
        if wanted is not None:
            who = st.user_ref(wanted)
            if who is None:
                raise StateError(400, f"user: Not a recognized ID: {wanted}")
            members = {who: members[who]} if who in members else {}
        views = self.views(req)
        rows = sorted(({"gid": st.membership_gid(proj["gid"], user),
                        "resource_type": "project_membership",
                        "parent": views.project_ref(proj["gid"]), "member": views.user(user),
                        "access_level": level} for user, level in members.items()),
                      key=lambda row: int(row["gid"]))  # pages go in gid order
        fields = opt_fields(req.args("opt_fields"), MEMBERSHIP_FIELDS)
        chunk, extra = paginate(rows, req.query, req.path, req.base_url)

        def show(row: Record) -> Record:
            if fields:
                return project(row, fields)
            return {k: v for k, v in row.items() if k != "parent"}  # parent is opt-in

        return _reply(200, {"data": [show(r) for r in chunk], **extra})
