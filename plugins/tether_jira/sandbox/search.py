"""Fake-Jira search and site resources: Cloud's ``/search/jql`` (token paging, isLast, no
total, 410 for the removed ``/search``) and Data Center's ``/search`` (startAt, total, a
silently clamped maxResults); serverInfo, field, myself, project, issueLinkType."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from tether.sandbox import Request, Response, json_response, route

from .http import API, JiraApiBase
from .jql import compile_jql
from .state import SandboxError

REMOVED_SEARCH = (  # the real body, quoted in pycontribs/jira#2379 and #2369
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at "
    "https://developer.atlassian.com/changelog/#CHANGE-2046")
UNBOUNDED = ("Unbounded JQL queries are not allowed here. Please add a search restriction to "
             "your query.")


class SearchRoutes(JiraApiBase):
    """Reading: the site, its fields and projects, and both kinds of search."""

    # -- site -----------------------------------------------------------------------------

    @route("GET", API + r"/serverInfo")
    def server_info(self, req: Request) -> Response:
        return json_response(200, self._renderer(req).server_info())

    @route("GET", API + r"/field")
    def fields(self, req: Request) -> Response:
        return json_response(200, self._renderer(req).field_list())

    @route("GET", API + r"/myself")
    def myself(self, req: Request) -> Response:
        return json_response(200, self._renderer(req).myself())

    @route("GET", API + r"/issueLinkType")
    def link_types(self, req: Request) -> Response:
        r = self._renderer(req)
        return json_response(200, {"issueLinkTypes": [
            {"id": t.id, "name": t.name, "inward": t.inward, "outward": t.outward,
             "self": f"{r.api}/issueLinkType/{t.id}"} for t in self.world.link_types.values()]})

    @route("GET", API + r"/project/(?P<key>[^/]+)")
    def project(self, req: Request) -> Response:
        r = self._renderer(req)
        key = req.params["key"]
        project = self.world.projects.get(key.upper()) or next(
            (p for p in self.world.projects.values() if p.id == key), None)
        if project is None or not self.world.can(project.key, "BROWSE_PROJECTS"):
            raise SandboxError(404, [f"No project could be found with key '{key}'."])
        return json_response(200, r.project_detail(project))

    # -- search -----------------------------------------------------------------------------

    @route("GET", API + r"/search/jql")
    @route("POST", API + r"/search/jql")
    def search_jql(self, req: Request) -> Response:
        """Cloud's enhanced search: nextPageToken paging, isLast, no total."""
        r = self._renderer(req)
        if self.world.flavour != "cloud":
            return self.not_found(req)
        params = self._search_params(req)
        query = compile_jql(params["jql"], self.world)
        if not query.bounded:
            raise SandboxError(400, [UNBOUNDED])
        fields, props = params["fields"], params["properties"]
        light = all(f in ("id", "key") for f in fields) and not props
        cap = self.world.limits.cloud_max_results if light else \
            self.world.limits.cloud_max_with_fields
        size = self._size(params["maxResults"], 50, cap)
        found = query.run(self.world.visible())
        start = self._token_offset(params["nextPageToken"], params["jql"])
        page = found[start:start + size]
        chosen = r.expand_fields(fields, ("id",))
        body: dict[str, Any] = {"issues": [r.issue(i, chosen, props if props else None)
                                           for i in page]}
        if start + size < len(found):
            body["nextPageToken"] = _token(start + size, params["jql"])
        body["isLast"] = start + size >= len(found)
        self._names(body, params["expand"], chosen)
        return json_response(200, body)

    @route("GET", API + r"/search")
    @route("POST", API + r"/search")
    def search(self, req: Request) -> Response:
        """Data Center's search (startAt, clamped maxResults, total); gone from Cloud: 410.

        Issue properties are never in its results (JRASERVER-62898): a ``properties`` query
        parameter is ignored, as Jira ignores any parameter it does not know, and in a POST
        body it is an unrecognised field (400)."""
        r = self._renderer(req)
        if self.world.flavour == "cloud":
            return json_response(410, {"errorMessages": [REMOVED_SEARCH], "errors": {}})
        params = self._search_params(req)
        if req.method == "POST" and "properties" in (self._body(req) or {}):
            raise SandboxError(400, ['Unrecognized field "properties" (Class com.atlassian.'
                                     'jira.rest.v2.search.SearchRequestBean), not marked as '
                                     'ignorable'])
        query = compile_jql(params["jql"], self.world)
        try:
            start = max(0, int(params["startAt"] or 0))
            size = int(params["maxResults"]) if params["maxResults"] not in (None, "") else 50
        except ValueError:
            raise SandboxError(400, ["startAt and maxResults must be numbers."]) from None
        size = max(0, min(size, self.world.limits.dc_max_results))  # clamped, silently
        found = query.run(self.world.visible())
        chosen = r.expand_fields(params["fields"], ("*navigable",))
        body: dict[str, Any] = {"expand": "names,schema", "startAt": start, "maxResults": size,
                                "total": len(found),
                                "issues": [r.issue(i, chosen, None)
                                           for i in found[start:start + size]]}
        self._names(body, params["expand"], chosen)
        return json_response(200, body)

    def _search_params(self, req: Request) -> dict[str, Any]:
        names = ("jql", "nextPageToken", "maxResults", "startAt", "expand")
        out: dict[str, Any]
        if req.method == "POST":
            data = self._body(req) or {}
            if not isinstance(data, dict):
                raise SandboxError(400, ["The request body must be a JSON object."])
            out = {n: data.get(n) for n in names}
            out["fields"] = self._list(data.get("fields"))
            out["properties"] = self._list(data.get("properties"))
        else:
            out = {n: req.arg(n) for n in names}
            out["fields"] = req.args("fields")
            out["properties"] = req.args("properties")
        out["jql"] = out["jql"] or ""
        if len(out["properties"]) > 5:
            raise SandboxError(400, ["A maximum of 5 issue properties can be requested."])
        return out

    @staticmethod
    def _token_offset(token: str | None, jql: str) -> int:
        if not token:
            return 0
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode()))
            if data["q"] != _digest(jql):
                raise ValueError("token from another query")
            return int(data["o"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise SandboxError(400, ["The provided next page token is invalid or expired."]) \
                from None

    def _names(self, body: dict[str, Any], expand: Any, chosen: list[str]) -> None:
        if "names" in self._list(expand):
            body["names"] = {f: self.world.fields[f].name for f in chosen}

def _digest(jql: str) -> str:
    """Ties a page token to its query (the sandbox refuses one replayed with another JQL)."""
    return hashlib.sha1(jql.encode()).hexdigest()[:12]


def _token(offset: int, jql: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset, "q": _digest(jql)}).encode()
                                    ).decode()
