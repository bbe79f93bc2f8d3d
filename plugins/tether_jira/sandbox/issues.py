"""Fake-Jira issues, comments and issue properties: label edits, ADF (v3) or wiki (v2)
comment bodies checked as Jira checks them, permissions answered the way Jira answers.

Comments keep the properties set with them (on create or update) and show them when asked
(``expand=properties`` on the issue's comment listing; Cloud's ``POST comment/list``).
Edits sent with ``notifyUsers=false`` by a caller who is no admin are refused whole, with
Jira's 403 (see ``http.QUIET_REFUSED``); Data Center comment edits ignore it."""

from __future__ import annotations

import json
from typing import Any

from tether.sandbox import Request, Response, json_response, route

from ..markup import adf_to_text
from .http import API, ISSUE, JiraApiBase
from .render import Renderer
from .state import SandboxError

NOT_ADF = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
ADF_NODES = {"doc", "paragraph", "text", "bulletList", "orderedList", "listItem", "hardBreak",
             "heading", "codeBlock", "blockquote", "rule", "mention", "emoji", "inlineCard",
             "panel", "table", "tableRow", "tableHeader", "tableCell", "mediaSingle", "media",
             "date", "status", "expand", "nestedExpand"}
ADF_MARKS = {"strong", "em", "code", "link", "strike", "underline", "textColor", "subsup"}


class IssueRoutes(JiraApiBase):
    """Writing (and reading back) issues, comments and issue properties."""

    @route("GET", ISSUE)
    def get_issue(self, req: Request) -> Response:
        r = self._renderer(req)
        issue = self.world.issue(req.params["issue"])
        chosen = r.expand_fields(req.args("fields"), ("*all",))
        props = req.args("properties") or None
        return json_response(200, r.issue(issue, chosen, props))

    @route("PUT", ISSUE)
    def edit_issue(self, req: Request) -> Response:
        """Edit labels (update add/remove/set, or fields.labels) and plain text fields."""
        r = self._renderer(req)
        issue = self.world.issue(req.params["issue"])
        data = self._body(req)
        if not isinstance(data, dict) or not (data.get("update") or data.get("fields")):
            raise SandboxError(400, ["No content to map to Object due to end of input"])
        self._check_quiet(req)
        touched = set(data.get("update") or {}) | set(data.get("fields") or {})
        if not self._can(issue, "EDIT_ISSUES"):  # Jira answers 400 here, not 403
            raise SandboxError(400, errors={f: f"Field '{f}' cannot be set. It is not on the "
                                               "appropriate screen, or unknown."
                                            for f in sorted(touched)})
        before = (list(issue.labels), issue.summary, issue.description)
        tracked = self.world.tracked(issue)  # what the webhook's changelog compares
        labels, summary, description = list(issue.labels), issue.summary, issue.description
        for name, value in (data.get("fields") or {}).items():  # all checked, then applied
            if name == "labels":
                labels = self._labels(value)
            elif name == "summary" and isinstance(value, str) and value.strip():
                summary = value
            elif name == "description" and (value is None or (
                    isinstance(value, dict) if r.v == "3" else isinstance(value, str))):
                description = adf_to_text(value) if isinstance(value, dict) else value or ""
            elif name in ("summary", "description"):
                raise SandboxError(400, errors={name: NOT_ADF if r.v == "3" and name ==
                                                "description" else f"Invalid value for {name}."})
            else:
                raise self._not_settable(name)
        for name, operations in (data.get("update") or {}).items():
            if name != "labels" or not isinstance(operations, list):
                raise self._not_settable(name)
            for operation in operations:
                for verb, value in (operation or {}).items():
                    if verb == "add":
                        [value] = self._labels([value])
                        labels += [] if value in labels else [value]
                    elif verb == "remove":
                        labels = [x for x in labels if x != value]
                    elif verb == "set":
                        labels = self._labels(value)
                    else:
                        raise SandboxError(400, errors={"labels": f"Operation '{verb}' is not "
                                                                  "supported for labels."})
        issue.labels = sorted(dict.fromkeys(labels))  # Jira shows labels sorted, each once
        issue.summary, issue.description = summary, description
        if (list(issue.labels), issue.summary, issue.description) != before:
            self.world.touch(issue)
            self.world.edited(issue, tracked)  # by the caller: Tether's own writes too
        if req.arg("returnIssue", "false").lower() == "true":
            return json_response(200, r.issue(issue, r.expand_fields([], ("*all",)), None))
        return Response(204)

    def _labels(self, values: Any) -> list[str]:
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise SandboxError(400, errors={"labels": "Labels must be a list of strings."})
        for value in values:
            if not value or any(ch.isspace() for ch in value):
                raise SandboxError(400, errors={"labels": f"The label '{value}' contains "
                                                          "spaces which is invalid."})
            if len(value) > self.world.limits.label_length:
                raise SandboxError(400, errors={"labels": (
                    f"The label '{value}' exceeds the maximum length for a single label of "
                    f"{self.world.limits.label_length} characters.")})
        return list(values)

    @staticmethod
    def _not_settable(name: str) -> SandboxError:
        return SandboxError(400, errors={name: f"Field '{name}' cannot be set. It is not on "
                                               "the appropriate screen, or unknown."})

    # -- comments ---------------------------------------------------------------------------

    @route("GET", ISSUE + r"/comment")
    def list_comments(self, req: Request) -> Response:
        r = self._renderer(req)
        issue = self.world.issue(req.params["issue"])
        raw = req.arg("startAt") or "0"
        if not raw.isdigit():
            raise SandboxError(400, [f"The value '{raw}' is not valid for startAt."])
        start = int(raw)
        size = self._size(req.arg("maxResults"), 100, 5000)  # the documented default
        items = issue.comments[start:start + size]
        # expand=properties: Cloud documents only renderedBody here, yet it answers this too,
        # as Server and Data Center do (clients in the wild rely on it on both).
        expanded = "properties" in self._list(req.args("expand"))
        return json_response(200, {"comments": [r.comment(issue, c, expanded) for c in items],
                                   "maxResults": size, "total": len(issue.comments),
                                   "startAt": start})

    @route("POST", ISSUE + r"/comment")
    def add_comment(self, req: Request) -> Response:
        """201 and the comment; ``properties`` are set with it, in the same request."""
        r = self._renderer(req)
        issue = self.world.issue(req.params["issue"])
        if not self._can(issue, "ADD_COMMENTS"):
            raise SandboxError(403, ["You do not have the permission to comment on this issue."])
        data = self._body(req) or {}
        body = self._comment_body(r, data)
        properties = self._comment_properties(data)
        me = self.world.me.account_id if self.world.me else ""
        comment = self.world.comment(issue.key, body, me)
        comment.properties = properties
        return json_response(201, r.comment(issue, comment, bool(properties)))

    @route("POST", API + r"/comment/list")
    def comments_by_id(self, req: Request) -> Response:
        """Cloud only: the comments with the given ids that the caller may see, oldest
        first; ``expand=properties`` adds their properties."""
        r = self._renderer(req)
        if not r.cloud:
            return self.not_found(req)
        data = self._body(req)
        ids = data.get("ids") if isinstance(data, dict) else None
        if not isinstance(ids, list) or not ids or len(ids) > 1000 or not all(
                isinstance(i, int) and not isinstance(i, bool) for i in ids):
            # Jira's words for this 400 are not documented; these are ours.
            raise SandboxError(400, ["Provide between 1 and 1000 comment ids as integers."])
        wanted = {str(i) for i in ids}
        expanded = "properties" in self._list(req.args("expand"))
        found = [r.comment(issue, c, expanded) for issue in self.world.visible()
                 for c in issue.comments if c.id in wanted]
        found.sort(key=lambda c: int(c["id"]))
        return json_response(200, {"isLast": True, "maxResults": 1048576, "startAt": 0,
                                   "total": len(found), "values": found})

    @route("GET", ISSUE + r"/comment/(?P<cid>[^/]+)")
    def get_comment(self, req: Request) -> Response:
        r = self._renderer(req)
        issue = self.world.issue(req.params["issue"])
        return json_response(200, r.comment(issue, self.world.find_comment(issue,
                                                                            req.params["cid"])))

    @route("PUT", ISSUE + r"/comment/(?P<cid>[^/]+)")
    def edit_comment(self, req: Request) -> Response:
        r = self._renderer(req)
        issue = self.world.issue(req.params["issue"])
        comment = self.world.find_comment(issue, req.params["cid"])
        me = self.world.me.account_id if self.world.me else ""
        own = comment.author == me and self._can(issue, "EDIT_OWN_COMMENTS")
        if not (own or self._can(issue, "EDIT_ALL_COMMENTS")):
            raise SandboxError(400, ["You do not have the permission to edit this comment."])
        if r.cloud:  # Data Center's comment edit has no notifyUsers parameter to refuse
            self._check_quiet(req)
        data = self._body(req) or {}
        body = self._comment_body(r, data)
        properties = self._comment_properties(data)  # optional on update too: set, not merged
        edited = self.world.edit_comment(issue.key, comment.id, body, me)
        edited.properties.update(properties)
        return json_response(200, r.comment(issue, edited, bool(properties)))

    @route("DELETE", ISSUE + r"/comment/(?P<cid>[^/]+)")
    def delete_comment(self, req: Request) -> Response:
        self._renderer(req)
        issue = self.world.issue(req.params["issue"])
        self.world.find_comment(issue, req.params["cid"])
        self.world.delete_comment(issue.key, req.params["cid"])
        return Response(204)

    def _comment_properties(self, data: Any) -> dict[str, Any]:
        """The ``properties`` of a comment request, checked as entity properties are."""
        raw = data.get("properties") if isinstance(data, dict) else None
        if raw is None:
            return {}
        if not isinstance(raw, list) or not all(isinstance(p, dict) for p in raw):
            raise SandboxError(400, errors={"properties": "Properties must be a list of "
                                                          "{key, value} objects."})
        out = {}
        for prop in raw:
            key, value = prop.get("key"), prop.get("value")
            if not isinstance(key, str) or not key or len(key) > 255:
                raise SandboxError(400, ["The property key cannot be longer than 255 "
                                         "characters."] if key else
                                   ["The property key cannot be empty."])
            if value in (None, "", {}, []) or len(json.dumps(value)) > \
                    self.world.limits.property_length:
                raise SandboxError(400, [f"The property value cannot be empty or longer than "
                                         f"{self.world.limits.property_length} characters."])
            out[key] = value
        return out

    def _comment_body(self, r: Renderer, data: dict[str, Any]) -> Any:
        """The body as the version requires it: an ADF document on v3, a string on v2."""
        body = data.get("body") if isinstance(data, dict) else None
        if body in (None, ""):
            raise SandboxError(400, errors={"comment": "Comment body can not be empty!"})
        if r.v == "3":
            if not isinstance(body, dict):
                raise SandboxError(400, errors={"comment": NOT_ADF})
            problem = adf_problem(body)
            if problem:
                raise SandboxError(400, ["INVALID_INPUT"], {"comment": problem})
            size = len(json.dumps(body))
        else:
            if not isinstance(body, str):
                raise SandboxError(400, errors={"comment": "Comment body must be a string."})
            size = len(body)
        limit = self.world.limits.comment_length
        if size > limit:
            raise SandboxError(400, errors={"comment": (
                f"The entered text is too long. It exceeds the allowed limit of {limit:,} "
                "characters.")})
        return body

    # -- issue properties -------------------------------------------------------------------

    @route("GET", ISSUE + r"/properties")
    def property_keys(self, req: Request) -> Response:
        r = self._renderer(req)
        issue = self.world.issue(req.params["issue"])
        return json_response(200, {"keys": [
            {"self": f"{r.api}/issue/{issue.id}/properties/{k}", "key": k}
            for k in issue.properties]})

    @route("GET", ISSUE + r"/properties/(?P<key>[^/]+)")
    def get_property(self, req: Request) -> Response:
        self._renderer(req)
        issue = self.world.issue(req.params["issue"])
        key = req.params["key"]
        if key not in issue.properties:
            raise SandboxError(404, [f"The property with key '{key}' does not exist."])
        return json_response(200, {"key": key, "value": issue.properties[key]})

    @route("PUT", ISSUE + r"/properties/(?P<key>[^/]+)")
    def set_property(self, req: Request) -> Response:
        """200 when replaced, 201 when created; no body; ``updated`` is left alone."""
        self._renderer(req)
        issue = self.world.issue(req.params["issue"])
        if not self._can(issue, "EDIT_ISSUES"):
            raise SandboxError(403, ["You do not have permission to edit this issue."])
        key = req.params["key"]
        if len(key) > 255:
            raise SandboxError(400, ["The property key cannot be longer than 255 characters."])
        if not req.body.strip():
            raise SandboxError(400, ["The property value cannot be empty."])
        value = self._body(req)
        if len(req.body) > self.world.limits.property_length:
            raise SandboxError(400, [f"The property value cannot be longer than "
                                     f"{self.world.limits.property_length} characters."])
        created = key not in issue.properties
        issue.properties[key] = value
        return Response(201 if created else 200)

    @route("DELETE", ISSUE + r"/properties/(?P<key>[^/]+)")
    def delete_property(self, req: Request) -> Response:
        self._renderer(req)
        issue = self.world.issue(req.params["issue"])
        if issue.properties.pop(req.params["key"], None) is None:
            raise SandboxError(404, [f"The property with key '{req.params['key']}' does not "
                                     "exist."])
        return Response(204)


def adf_problem(node: Any, path: str = "doc") -> str | None:
    """Why Jira would refuse this ADF document, or None (a structural check, not the full
    schema): known node and mark types, non-empty text, code marks on their own."""
    if not isinstance(node, dict):
        return f"{path}: not a node"
    kind = node.get("type")
    if path == "doc" and (kind != "doc" or node.get("version") != 1):
        return "the root must be {\"type\": \"doc\", \"version\": 1}"
    if kind not in ADF_NODES:
        return f"{path}: unknown node type {kind!r}"
    if kind == "text":
        if not isinstance(node.get("text"), str) or not node["text"]:
            return f"{path}: text nodes must have non-empty text"
        marks = [m.get("type") for m in node.get("marks") or () if isinstance(m, dict)]
        if any(m not in ADF_MARKS for m in marks):
            return f"{path}: unknown mark in {marks}"
        if "code" in marks and set(marks) - {"code", "link"}:
            return f"{path}: the code mark combines only with link"
    if kind == "mention":
        attrs = node.get("attrs")
        if not isinstance(attrs, dict) or not isinstance(attrs.get("id"), str) or \
                not attrs["id"]:
            return f"{path}: a mention needs attrs.id, the person's accountId"
    content = node.get("content", [])
    if not isinstance(content, list):
        return f"{path}: content must be a list"
    for n, child in enumerate(content):
        problem = adf_problem(child, f"{path}.content[{n}]")
        if problem:
            return problem
    return None
