"""Fake-Jira ``GET mypermissions``: what the caller may do, in a project or anywhere.

Shape from the Cloud OpenAPI (``getMyPermissions``): ``{"permissions": {KEY: {id, key, name,
type, description, havePermission}}}``. Cloud requires ``permissions`` (since 2019-02-01);
Data Center answers every permission without it. A project the caller cannot browse (or
that does not exist) is a 404, as documented. The 400 texts are ours: the spec names the
cases, not the words."""

from __future__ import annotations

from tether.sandbox import Request, Response, json_response, route

from .http import API, JiraApiBase
from .state import SandboxError

# key -> (id, name, type, description) of Jira's built-in permissions the sandbox knows;
# EDIT_ISSUES is verbatim from the spec's example, the rest follow Jira's built-in list.
KNOWN = {
    "ADMINISTER": ("0", "Administer Jira", "GLOBAL",
                   "Create and administer projects, issue types, fields, workflows, and "
                   "schemes for all projects."),
    "BROWSE_PROJECTS": ("10", "Browse Projects", "PROJECT",
                        "Ability to browse projects and the issues within them."),
    "CREATE_ISSUES": ("11", "Create Issues", "PROJECT", "Ability to create issues."),
    "EDIT_ISSUES": ("12", "Edit Issues", "PROJECT", "Ability to edit issues."),
    "ASSIGN_ISSUES": ("13", "Assign Issues", "PROJECT",
                      "Ability to assign issues to other people."),
    "ADD_COMMENTS": ("15", "Add Comments", "PROJECT", "Ability to comment on issues."),
    "DELETE_ISSUES": ("16", "Delete Issues", "PROJECT", "Ability to delete issues."),
    "LINK_ISSUES": ("21", "Link Issues", "PROJECT",
                    "Ability to link issues together and create linked issues."),
    "ADMINISTER_PROJECTS": ("23", "Administer Projects", "PROJECT",
                            "Ability to administer a project in Jira."),
    "EDIT_ALL_COMMENTS": ("34", "Edit All Comments", "PROJECT",
                          "Ability to edit all comments made on issues."),
    "EDIT_OWN_COMMENTS": ("35", "Edit Own Comments", "PROJECT",
                          "Ability to edit own comments made on issues."),
    "DELETE_ALL_COMMENTS": ("36", "Delete All Comments", "PROJECT",
                            "Ability to delete all comments made on issues."),
    "DELETE_OWN_COMMENTS": ("37", "Delete Own Comments", "PROJECT",
                            "Ability to delete own comments made on issues."),
}


class PermissionRoutes(JiraApiBase):
    """``GET /rest/api/{v}/mypermissions?projectKey=&permissions=``."""

    @route("GET", API + r"/mypermissions")
    def my_permissions(self, req: Request) -> Response:
        self._renderer(req)  # 404 for a REST version the site lacks
        wanted = self._list(req.args("permissions"))
        if not wanted:
            if self.world.flavour == "cloud":
                raise SandboxError(400, ["The 'permissions' parameter is required: a "
                                         "comma-separated list of permission keys."])
            wanted = list(KNOWN)
        unknown = [k for k in wanted if k not in KNOWN]
        if unknown:
            raise SandboxError(400, [f"Unrecognized permission key '{unknown[0]}'."])
        projects = self._context(req)
        return json_response(200, {"permissions": {
            key: self._entry(key, projects) for key in dict.fromkeys(wanted)}})

    def _context(self, req: Request) -> list[str]:
        """The projects the answer is about: the one asked for, else every project (a
        project permission is reported if held in any of them)."""
        key, pid = req.arg("projectKey"), req.arg("projectId")
        if key is None and pid is None:
            return list(self.world.projects)
        found = next((p for p in self.world.projects.values()
                      if (pid is not None and p.id == pid)
                      or (pid is None and p.key == str(key).upper())), None)
        if found is None or not self.world.can(found.key, "BROWSE_PROJECTS"):
            raise SandboxError(404, [f"No project could be found with key '{key or pid}'."])
        return [found.key]

    def _entry(self, key: str, projects: list[str]) -> dict[str, object]:
        pid, name, kind, description = KNOWN[key]
        me = self.world.me
        if key == "ADMINISTER":
            have = False  # the sandbox models project admins only
        elif key == "ADMINISTER_PROJECTS":
            have = me is not None and me.admin and any(
                self.world.can(p, "BROWSE_PROJECTS") for p in projects)
        else:
            have = any(self.world.can(p, key) for p in projects)
        return {"id": pid, "key": key, "name": name, "type": kind, "description": description,
                "havePermission": have}
