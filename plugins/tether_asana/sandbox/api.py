"""The Asana API 1.0 as the sandbox serves it: the routes Tether (and a curious user) call,
with Asana's paths, envelopes, status codes, error bodies, auth and rate limit, the Events
API (sandbox.feed), webhooks (sandbox.hooks: established with the handshake, delivered on
``deliver``) and the Batch API (up to 10 actions, each answered on its own)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Container
from datetime import datetime
from html import escape
from typing import Any

from tether.sandbox import Request, Response, route
from tether.sdk import parse_datetime

from . import feed
from .access import AccessRoutes
from .hooks import HookDelivery, Hooks
from .html import story_text
from .state import AsanaState, Record, StateError
from .views import API, Views, opt_fields, paginate, project

A = r"/api/1\.0"
G = r"(?P<gid>[^/]+)"
HELP = ("For more information on API status codes and how to handle them, read the docs on "
        "errors: https://developers.asana.com/docs/errors")
RATE_MESSAGE = ("You've made too many requests and hit a rate limit. Please retry after the "
                "given amount of time.")
SCOPE_MESSAGE = ("Must specify exactly one of project, tag, section, user task list, or "
                 "assignee + workspace")
TASK_FIELDS = {
    "gid", "resource_type", "resource_subtype", "name", "actual_time_minutes", "approval_status",
    "assigned_by", "assignee", "assignee_section", "assignee_status", "completed",
    "completed_at", "completed_by", "created_at", "created_by", "custom_fields", "custom_type",
    "custom_type_status_option", "dependencies", "dependents", "due_at", "due_on", "external",
    "followers", "hearted", "hearts", "html_notes", "is_rendered_as_separator", "liked",
    "likes", "memberships", "modified_at", "notes", "num_hearts", "num_likes", "num_subtasks",
    "parent", "permalink_url", "projects", "start_at", "start_on", "tags", "workspace"}
STORY_FIELDS = {
    "gid", "resource_type", "created_at", "created_by", "resource_subtype", "type", "text",
    "html_text", "source", "target", "is_pinned", "is_edited", "is_editable", "liked", "likes",
    "num_likes", "hearted", "hearts", "num_hearts", "previews", "reaction_summary", "tag",
    "old_name", "new_name", "sticker_name", "assignee", "follower", "project", "story", "task"}
TAG_FIELDS = {"gid", "resource_type", "name", "color", "notes", "created_at", "followers",
              "permalink_url", "workspace"}
USER_FIELDS = {"gid", "resource_type", "name", "email", "photo", "workspaces", "custom_fields"}
FIELD_FIELDS = {
    "gid", "resource_type", "name", "resource_subtype", "type", "description", "enabled",
    "enum_options", "precision", "format", "is_global_to_workspace",
    "has_notifications_enabled", "asana_created_field", "created_by", "currency_code",
    "custom_label", "custom_label_position", "is_formula_field", "is_value_read_only",
    "privacy_setting", "default_access_level", "representation_type", "id_prefix",
    "input_restrictions", "display_value", "date_value", "enum_value", "multi_enum_values",
    "number_value", "people_value", "text_value", "html_text_value", "reference_value"}
BATCH_FIELDS = {"body", "headers", "status_code"}
WEBHOOK_FIELDS = {"gid", "resource_type", "active", "created_at", "delivery_retry_count",
                  "failure_deletion_timestamp", "filters", "last_failure_at",
                  "last_failure_content", "last_success_at", "next_attempt_after", "resource",
                  "target"}
BATCH_METHODS = ("get", "post", "put", "delete", "patch", "head")
MAX_ACTIONS = 10  # developers.asana.com/docs/batch-requests
READ_ONLY_TASK = {"gid", "resource_type", "created_at", "modified_at", "completed_at",
                  "completed_by", "tags", "followers", "projects", "memberships", "parent",
                  "workspace", "permalink_url", "num_subtasks", "num_likes", "dependencies",
                  "dependents", "likes", "hearts", "created_by"}


def reply(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, body, {"Content-Type": "application/json; charset=UTF-8",
                                   **(headers or {})})


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """Asana's error envelope (ErrorResponse in the OpenAPI file)."""
    return reply(status, {"errors": [{"message": message, "help": HELP}]}, headers)


class AsanaApi(AccessRoutes):
    """Serves one AsanaState; ``rate_limit`` requests per minute per token (paid tier: 1,500).
    Each request acts as its token's user, within that user's project access levels."""

    name = "asana"

    def __init__(self, state: AsanaState, rate_limit: int = 1500,
                 on_change: Callable[[], None] | None = None):
        super().__init__()
        self.state = state
        self.rate_limit = rate_limit
        self.on_change = on_change  # called after each successful write (persistence)
        self._windows: dict[str, tuple[int, int]] = {}
        self._token = ""  # the token of the request being answered
        # Each /batch request's actions as served: (METHOD, path, status); ``last_batch`` is
        # the one the request being answered held, if it was a batch (None otherwise).
        self.batches: list[list[tuple[str, str, int]]] = []
        self.last_batch: list[tuple[str, str, int]] | None = None
        self.hooks = Hooks.of(state)  # the webhooks' queue: sent only on deliver()

    def deliver(self) -> list[HookDelivery]:
        """Send every webhook what it is owed (see sandbox.hooks); synchronous."""
        return self.hooks.deliver()

    def heartbeat(self) -> list[HookDelivery]:
        """Send every webhook the signed empty ``events`` of an idle one."""
        return self.hooks.heartbeat()

    # -- the service's framing ---------------------------------------------------------------

    def dispatch(self, req: Request) -> Response:
        owner = self.state.me
        self.last_batch = None
        try:  # authenticate() makes the token's user "me" for this request only
            response = super().dispatch(req)
        except StateError as exc:
            response = error(exc.status, exc.message)
        except ValueError:  # a body that is not JSON
            response = error(400, "Could not parse request data, invalid JSON")
        except Exception as exc:  # a sandbox bug: answer like Asana's 500, not a dropped line
            body = {"errors": [{"message": f"Server Error: {exc!r}", "help": HELP,
                                "phrase": "sandbox squid stumbles softly"}]}
            response = reply(500, body)
        finally:
            self.state.me = owner
        if req.method != "GET" and response.status < 300 and self.on_change:
            self.on_change()
        return response

    def authenticate(self, req: Request) -> Response | None:
        header = req.headers.get("Authorization") or ""
        token = header[7:].strip() if header.startswith("Bearer ") else ""
        if token not in self.state.tokens or self.state.tokens[token] not in self.state.users:
            return error(401, "Not Authorized")
        self.state.me = self.state.tokens[token]
        self._token = token
        return self._limit(token)

    def _limit(self, token: str, cost: int = 1) -> Response | None:
        """A per-minute quota per token; rejected requests still count, as Asana documents;
        a batch costs one request per action."""
        if not self.rate_limit:
            return None
        now = self.state.clock.now().timestamp()
        window = int(now // 60)
        start, count = self._windows.get(token, (window, 0))
        if start != window:
            start, count = window, 0
        self._windows[token] = (start, count + cost)
        if count + cost <= self.rate_limit:
            return None
        wait = max(1, math.ceil((start + 1) * 60 - now))
        return error(429, RATE_MESSAGE, {"Retry-After": str(wait)})

    def decorate(self, req: Request, resp: Response) -> None:
        # Headers seen on real api responses (thash/asana#7): no caching, no indexing.
        length = len(json.dumps(resp.body)) if resp.body is not None else 0
        resp.headers.update({"Cache-Control": "no-store", "Pragma": "no-cache",
                             "X-Robots-Tag": "none", "X-Asana-Content-String-Length": str(length)})

    def now(self) -> datetime:
        """The workspace's clock, which Asana's Date header shows as every response's."""
        return self.state.clock.now()

    def not_found(self, req: Request) -> Response:
        return error(404, "No matching route for request")

    def method_not_allowed(self, req: Request) -> Response:
        return error(404, "No matching route for request")

    def _serve(self, req: Request) -> Response:
        """Route ``req`` as the caller already authenticated (a batch action): the handler's
        answer, or the error it raised as Asana words it."""
        try:
            return self.route(req)
        except StateError as exc:
            return error(exc.status, exc.message)
        except ValueError:
            return error(400, "Could not parse request data, invalid JSON")

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _find(kind: str, raw: str | None, table: dict[str, Record]) -> Record:
        if raw is None or raw == "":
            raise StateError(400, f"{kind}: Missing input")
        if not str(raw).isdigit():
            raise StateError(400, f"{kind}: Not a recognized ID: {raw}")
        found = table.get(str(raw))
        if found is None:
            raise StateError(404, f"{kind}: Unknown object: {raw}")
        return found

    @staticmethod
    def _data(req: Request) -> dict[str, Any]:
        body = req.json()
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            raise StateError(400, "data: Missing input")
        return body["data"]

    def _workspace(self, raw: str | None) -> None:
        self._find("workspace", raw, {self.state.workspace["gid"]: self.state.workspace})

    def _list(self, req: Request, items: list[Record], show: Callable[[Record], Record]
              ) -> Response:
        chunk, extra = paginate(items, req.query, req.path, req.base_url)
        return reply(200, {"data": [show(r) for r in chunk], **extra})

    # -- users -----------------------------------------------------------------------------------

    @route("GET", A + r"/users/" + G)
    def get_user(self, req: Request) -> Response:
        raw = req.params["gid"]
        gid = self.state.me if raw == "me" else self._find("user", raw, self.state.users)["gid"]
        fields = opt_fields(req.args("opt_fields"), USER_FIELDS)
        return reply(200, {"data": self.views(req).user_full(gid, fields)})

    # -- tasks -----------------------------------------------------------------------------------

    @route("GET", A + r"/tasks")
    def get_tasks(self, req: Request) -> Response:
        st = self.state
        scopes = [k for k in ("project", "tag", "section") if req.arg(k)]
        assignee, workspace = req.arg("assignee"), req.arg("workspace")
        if len(scopes) + bool(assignee or workspace) != 1 or bool(assignee) != bool(workspace):
            raise StateError(400, SCOPE_MESSAGE)
        if scopes == ["project"]:
            items = st.project_tasks(self._project(str(req.arg("project")))["gid"])
        elif scopes == ["tag"]:
            tag = self._find("tag", req.arg("tag"), st.tags)["gid"]
            items = [t for t in st.tasks.values() if tag in t["tags"]]
        elif scopes == ["section"]:
            section = req.arg("section")
            items = [t for t in st.tasks.values()
                     if any(m["section"] == section for m in t["memberships"])]
        else:
            self._workspace(workspace)
            user = st.user_ref(assignee or "")
            if user is None:
                raise StateError(400, f"assignee: Not a recognized ID: {assignee}")
            items = [t for t in st.tasks.values() if t["assignee"] == user]
        items = _since(items, "modified_since", req.arg("modified_since"))
        items = _completed_since(items, req.arg("completed_since"))
        return self._task_list(req, items)

    @route("GET", A + r"/projects/" + G + r"/tasks")
    def get_project_tasks(self, req: Request) -> Response:
        project = self._project(req.params["gid"])
        items = _completed_since(self.state.project_tasks(project["gid"]),
                                 req.arg("completed_since"))
        return self._task_list(req, items)

    def _task_list(self, req: Request, items: list[Record]) -> Response:
        items = sorted(items, key=lambda t: int(t["gid"]))
        fields = opt_fields(req.args("opt_fields"), TASK_FIELDS)
        views = self.views(req)
        return self._list(req, items, lambda t: views.task(t, fields, compact=True))

    @route("GET", A + r"/tasks/" + G)
    def get_task(self, req: Request) -> Response:
        task = self._find("task", req.params["gid"], self.state.tasks)
        self._allowed(task)
        fields = opt_fields(req.args("opt_fields"), TASK_FIELDS)
        return reply(200, {"data": self.views(req).task(task, fields)})

    @route("PUT", A + r"/tasks/" + G)
    def put_task(self, req: Request) -> Response:
        st = self.state
        task = self._find("task", req.params["gid"], st.tasks)
        self._allowed(task, "editor")
        data = self._data(req)
        fields = opt_fields(req.args("opt_fields"), TASK_FIELDS)
        changes: list[Callable[[], None]] = []
        for key, value in data.items():
            changes.append(self._task_change(task, key, value))
        for change in changes:  # all validated first: a rejected PUT changes nothing
            change()
        return reply(200, {"data": self.views(req).task(task, fields)})

    def _task_change(self, task: Record, key: str, value: Any) -> Callable[[], None]:
        st, me = self.state, self.state.me
        if key == "name" and isinstance(value, str):
            return lambda: st.rename(task, value, me)
        if key == "notes" and isinstance(value, str):
            return lambda: st.set_notes(task, value, me)
        if key == "completed" and isinstance(value, bool):
            return lambda: st.set_completed(task, value, me)
        if key == "assignee":
            user = None if value is None else st.user_ref(str(value))
            if value is not None and user is None:
                raise StateError(400, f"assignee: Not a recognized ID: {value}")
            return lambda: st.assign(task, user, me)
        if key == "custom_fields" and isinstance(value, dict):
            sets = [self._field_change(task, gid, v) for gid, v in value.items()]

            def set_all() -> None:
                for apply in sets:
                    apply()
            return set_all
        if key in READ_ONLY_TASK:
            raise StateError(400, f"{key}: Cannot write this property")
        if key in ("name", "notes", "completed", "custom_fields"):
            raise StateError(400, f"{key}: Invalid value: {json.dumps(value)}")
        raise StateError(400, f"{key}: Unknown property")

    def _field_change(self, task: Record, gid: str, value: Any) -> Callable[[], None]:
        st = self.state
        field = self._find("custom_fields", gid, st.fields)
        if field not in st.task_fields(task):
            raise StateError(400, f"custom_fields: Custom field {gid} is not on this task's "
                                  "projects")
        options = {o["gid"]: o for o in field["options"]}

        def bad() -> StateError:
            return StateError(400, f"custom_fields: Invalid value for custom field {gid} "
                                   f"({field['kind']}): {json.dumps(value)}")

        kind = field["kind"]
        if value is None:
            clean: Any = [] if kind in ("multi_enum", "people") else None
        elif _plain(kind, value):
            clean = value
        elif kind == "enum" and isinstance(value, str):
            if value not in options or not options[value]["enabled"]:
                raise bad()
            clean = value
        elif kind == "multi_enum" and isinstance(value, list):
            if not all(isinstance(v, str) and v in options and options[v]["enabled"]
                       for v in value):
                raise bad()
            clean = list(dict.fromkeys(value))
        elif kind == "date" and isinstance(value, dict) and isinstance(value.get("date"), str):
            clean = value["date"]
        elif kind == "people" and isinstance(value, list):
            users = [st.user_ref(str(v)) for v in value]
            if None in users:
                raise bad()
            clean = users
        else:
            raise bad()
        return lambda: st.set_value(task, field, clean, st.me)

    @route("POST", A + r"/tasks/" + G + r"/(?P<verb>addTag|removeTag)")
    def tag_task(self, req: Request) -> Response:
        task = self._find("task", req.params["gid"], self.state.tasks)
        self._allowed(task, "editor")
        tag = self._find("tag", self._data(req).get("tag"), self.state.tags)
        if req.params["verb"] == "addTag":
            self.state.add_tag_to(task, tag, self.state.me)
        else:
            self.state.remove_tag_from(task, tag, self.state.me)
        return reply(200, {"data": {}})

    @route("POST", A + r"/tasks/" + G + r"/(?P<verb>addFollowers|removeFollowers)")
    def follow_task(self, req: Request) -> Response:
        task = self._find("task", req.params["gid"], self.state.tasks)
        self._allowed(task, "commenter")
        raw = self._data(req).get("followers")
        if not isinstance(raw, list) or not raw:
            raise StateError(400, "followers: Missing input")
        users = [self.state.user_ref(str(r)) for r in raw]
        if None in users:
            raise StateError(400, f"followers: Not a recognized ID: {raw[users.index(None)]}")
        if req.params["verb"] == "addFollowers":
            self.state.add_followers(task, [u for u in users if u])
        else:
            self.state.remove_followers(task, [u for u in users if u])
        fields = opt_fields(req.args("opt_fields"), TASK_FIELDS)
        return reply(200, {"data": self.views(req).task(task, fields)})

    # -- stories -----------------------------------------------------------------------------

    @route("GET", A + r"/tasks/" + G + r"/stories")
    def get_stories(self, req: Request) -> Response:
        task = self._find("task", req.params["gid"], self.state.tasks)
        self._allowed(task)
        fields = opt_fields(req.args("opt_fields"), STORY_FIELDS)
        views = self.views(req)
        items = sorted((self.state.stories[g] for g in task["stories"]),
                       key=lambda s: int(s["gid"]))
        return self._list(req, items, lambda s: views.story(s, fields, compact=True))

    @route("POST", A + r"/tasks/" + G + r"/stories")
    def post_story(self, req: Request) -> Response:
        task = self._find("task", req.params["gid"], self.state.tasks)
        self._allowed(task, "commenter")
        data = self._data(req)
        text, html_text = _story_body(data, required=True, users=self.state.users)
        story = self.state.comment(task, self.state.me, text, html_text)
        story["is_pinned"] = bool(data.get("is_pinned", False))
        fields = opt_fields(req.args("opt_fields"), STORY_FIELDS)
        return reply(201, {"data": self.views(req).story(story, fields)})

    @route("GET", A + r"/stories/" + G)
    def get_story(self, req: Request) -> Response:
        story = self._find("story", req.params["gid"], self.state.stories)
        fields = opt_fields(req.args("opt_fields"), STORY_FIELDS)
        return reply(200, {"data": self.views(req).story(story, fields)})

    @route("PUT", A + r"/stories/" + G)
    def put_story(self, req: Request) -> Response:
        story = self._own_comment(req)
        data = self._data(req)
        if "text" in data or "html_text" in data:
            text, html_text = _story_body(data, required=False, users=self.state.users)
            self.state.edit_comment(story, text, html_text)
        if "is_pinned" in data:
            story["is_pinned"] = bool(data["is_pinned"])
        fields = opt_fields(req.args("opt_fields"), STORY_FIELDS)
        return reply(200, {"data": self.views(req).story(story, fields)})

    @route("DELETE", A + r"/stories/" + G)
    def delete_story(self, req: Request) -> Response:
        self.state.delete_story(self._own_comment(req))
        return reply(200, {"data": {}})

    def _own_comment(self, req: Request) -> Record:
        story = self._find("story", req.params["gid"], self.state.stories)
        if story["type"] != "comment":
            raise StateError(400, "story: Only comment stories can be edited or deleted")
        if story["created_by"] != self.state.me:
            raise StateError(403, "Forbidden")
        if story["task"] in self.state.tasks:
            self._allowed(self.state.tasks[story["task"]], "commenter")
        return story

    # -- events ------------------------------------------------------------------------------

    @route("GET", A + r"/events")
    def get_events(self, req: Request) -> Response:
        raw = req.arg("resource")
        if not raw:
            raise StateError(400, "resource: Missing input")
        return self._events(req, raw)

    @route("GET", A + r"/(?:projects|tasks)/" + G + r"/events")
    def get_resource_events(self, req: Request) -> Response:
        """The same, as /projects/{gid}/events or /tasks/{gid}/events ("in lieu of including
        the resource ID in the data for the request")."""
        return self._events(req, req.params["gid"])

    def _events(self, req: Request, raw: str) -> Response:
        st = self.state
        if not raw.isdigit():
            raise StateError(400, f"resource: Not a recognized ID: {raw}")
        if raw in st.tasks:
            self._allowed(st.tasks[raw])
        elif raw in st.projects:
            self._project(raw)
        else:
            raise StateError(404, f"resource: Unknown object: {raw}")
        fields = opt_fields(req.args("opt_fields"), feed.EVENT_FIELDS)
        found = st.feed.since(req.arg("sync"), raw)
        if found is None:  # no token, or an unknown or expired one: a fresh one, and 412
            body: Record = {"errors": [{"message": feed.SYNC_MESSAGE, "help": HELP}],
                            "sync": st.feed.issue(raw)}
            response = reply(412, body)
        else:
            events, sync, more = found
            response = reply(200, {"data": [feed.view(e, fields) for e in events],
                                   "sync": sync, "has_more": more})
        if self.on_change:  # the token just made must outlive a restart
            self.on_change()
        return response

    # -- webhooks ----------------------------------------------------------------------------

    @route("POST", A + r"/webhooks")
    def post_webhook(self, req: Request) -> Response:
        """Establish a webhook: the handshake with its target runs inside this request; 201
        with the webhook and, beside ``data``, its ``X-Hook-Secret``."""
        st = self.state
        data = self._data(req)
        resource = data.get("resource")
        if isinstance(resource, str) and resource in st.projects:
            self._project(resource)
        elif isinstance(resource, str) and resource in st.tasks:
            self._allowed(st.tasks[resource])
        fields = opt_fields(req.args("opt_fields"), WEBHOOK_FIELDS)
        hook, secret = self.hooks.create(resource, data.get("target"), data.get("filters"),
                                         by=st.me)
        return reply(201, {"data": self._webhook(hook, fields, compact=False),
                           "X-Hook-Secret": secret})

    @route("GET", A + r"/webhooks")
    def get_webhooks(self, req: Request) -> Response:
        """The caller's webhooks in ``workspace`` (required), of ``resource`` if given."""
        workspace = req.arg("workspace")
        if not workspace:
            raise StateError(400, "workspace: Missing input")
        self._workspace(workspace)
        resource = req.arg("resource")
        items = [h for h in self.hooks.owned(self.state.me)
                 if resource in (None, "", h["resource"])]
        fields = opt_fields(req.args("opt_fields"), WEBHOOK_FIELDS)
        return self._list(req, items, lambda h: self._webhook(h, fields, compact=True))

    @route("GET", A + r"/webhooks/" + G)
    def get_webhook(self, req: Request) -> Response:
        fields = opt_fields(req.args("opt_fields"), WEBHOOK_FIELDS)
        return reply(200, {"data": self._webhook(self._own_webhook(req), fields, False)})

    @route("DELETE", A + r"/webhooks/" + G)
    def delete_webhook(self, req: Request) -> Response:
        """Delete a webhook permanently; nothing more is sent to it."""
        self.hooks.remove(self._own_webhook(req)["gid"])
        return reply(200, {"data": {}})

    def _own_webhook(self, req: Request) -> Record:
        hook = self._find("webhook", req.params["gid"], self.state.webhooks)
        if hook["created_by"] != self.state.me:
            raise StateError(403, "Forbidden")
        return hook

    def _webhook(self, hook: Record, fields: list[str] | None, compact: bool) -> Record:
        """WebhookCompact (a listing) or WebhookResponse; never the secret."""
        st, gid = self.state, hook["resource"]
        named = st.projects.get(gid) or st.tasks.get(gid) or {"name": ""}
        out: Record = {"gid": hook["gid"], "resource_type": "webhook", "active": hook["active"],
                       "resource": {"gid": gid, "name": named["name"],
                                    "resource_type": hook["resource_type"]},
                       "target": hook["target"]}
        full = {**out, "created_at": hook["created_at"],
                "last_failure_at": hook["last_failure_at"],
                "last_failure_content": hook["last_failure_content"],
                "last_success_at": hook["last_success_at"],
                "delivery_retry_count": hook["delivery_retry_count"],
                "next_attempt_after": None, "failure_deletion_timestamp": None,
                "filters": hook["filters"]}
        if fields:
            return dict(project(full, fields))
        return out if compact else full

    # -- batch -------------------------------------------------------------------------------

    @route("POST", A + r"/batch")
    def post_batch(self, req: Request) -> Response:
        """Each action dispatched to its endpoint as the caller; 200 with one result per
        action, in order, whatever they answered. Over the rate limit (each action counts
        as a request) the whole request fails with 429."""
        actions = self._data(req).get("actions")
        if not isinstance(actions, list) or not actions:
            raise StateError(400, "actions: Missing input")
        if len(actions) > MAX_ACTIONS:
            raise StateError(400, f"actions: A batch request can have at most {MAX_ACTIONS} "
                                  f"actions, not {len(actions)}")
        fields = opt_fields(req.args("opt_fields"), BATCH_FIELDS)
        denied = self._limit(self._token, len(actions) - 1)
        if denied is not None:
            return denied
        results = [self._action(req, action) for action in actions]
        self.last_batch = [(str(a.get("method", "")).upper() if isinstance(a, dict) else "",
                            API + str(a.get("relative_path", "")) if isinstance(a, dict) else "",
                            r["status_code"]) for a, r in zip(actions, results, strict=True)]
        self.batches.append(self.last_batch)
        return reply(200, {"data": [project(r, fields) if fields else r for r in results]})

    def _action(self, req: Request, action: Any) -> Record:
        """One action's {body, headers, status_code}."""
        def refused(status: int, message: str) -> Record:
            return {"body": {"errors": [{"message": message, "help": HELP}]},
                    "headers": {}, "status_code": status}

        if not isinstance(action, dict):
            return refused(400, "action: Invalid value")
        method, rel = action.get("method"), action.get("relative_path")
        data, options = action.get("data"), action.get("options") or {}
        if not isinstance(rel, str) or not rel.startswith("/"):
            return refused(400, "relative_path: Missing input")
        if not isinstance(method, str) or method.lower() not in BATCH_METHODS:
            return refused(400, "method: Invalid value")
        if "?" in rel:
            return refused(400, "relative_path: Query parameters are not accepted here; put "
                                "them in data instead")
        if rel.rstrip("/") == "/batch":
            return refused(400, "Nested calls to the batch API are not allowed")
        if not isinstance(options, dict) or (data is not None and not isinstance(data, dict)):
            return refused(400, "data: Invalid value" if isinstance(options, dict)
                           else "options: Invalid value")
        verb = method.upper()
        query = {k: [str(v)] for k, v in (data or {}).items()} if verb == "GET" else {}
        query.update({k: [str(options[k])] for k in ("limit", "offset") if k in options})
        if options.get("fields"):
            query["opt_fields"] = [",".join(str(f) for f in options["fields"])]
        body = json.dumps({"data": data}).encode() if verb != "GET" and data is not None else b""
        sub = Request(verb, API + rel, query, req.headers, body, req.base_url)
        answer = self._serve(sub)
        headers: dict[str, str] = {}
        made = answer.body.get("data") if isinstance(answer.body, dict) else None
        if answer.status == 201 and isinstance(made, dict) and "gid" in made:
            headers["location"] = f"{API}/{rel.rstrip('/').rsplit('/', 1)[-1]}/{made['gid']}"
        return {"body": answer.body, "headers": headers, "status_code": answer.status}

    # -- tags --------------------------------------------------------------------------------

    @route("GET", A + r"/workspaces/" + G + r"/tags")
    def get_workspace_tags(self, req: Request) -> Response:
        self._workspace(req.params["gid"])
        return self._tag_list(req)

    @route("GET", A + r"/tags")
    def get_tags(self, req: Request) -> Response:
        self._workspace(req.arg("workspace"))
        return self._tag_list(req)

    def _tag_list(self, req: Request) -> Response:
        fields = opt_fields(req.args("opt_fields"), TAG_FIELDS)
        views = self.views(req)
        items = sorted(self.state.tags.values(), key=lambda t: int(t["gid"]))
        return self._list(req, items, lambda t: views.tag(t, fields, compact=True))

    @route("POST", A + r"/tags")
    def post_tag(self, req: Request) -> Response:
        data = self._data(req)
        self._workspace(data.get("workspace"))
        return self._create_tag(req, data)

    @route("POST", A + r"/workspaces/" + G + r"/tags")
    def post_workspace_tag(self, req: Request) -> Response:
        self._workspace(req.params["gid"])
        return self._create_tag(req, self._data(req))

    def _create_tag(self, req: Request, data: dict[str, Any]) -> Response:
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise StateError(400, "name: Missing input")
        tag = self.state.add_tag(name, color=data.get("color"))
        fields = opt_fields(req.args("opt_fields"), TAG_FIELDS)
        return reply(201, {"data": self.views(req).tag(tag, fields)})

    @route("GET", A + r"/tags/" + G)
    def get_tag(self, req: Request) -> Response:
        tag = self._find("tag", req.params["gid"], self.state.tags)
        fields = opt_fields(req.args("opt_fields"), TAG_FIELDS)
        return reply(200, {"data": self.views(req).tag(tag, fields)})

    # -- custom fields -------------------------------------------------------------------------

    @route("GET", A + r"/custom_fields/" + G)
    def get_field(self, req: Request) -> Response:
        field = self._find("custom_field", req.params["gid"], self.state.fields)
        fields = opt_fields(req.args("opt_fields"), FIELD_FIELDS)
        return reply(200, {"data": self.views(req).field(field, fields)})

    @route("POST", A + r"/custom_fields/" + G + r"/enum_options")
    def post_option(self, req: Request) -> Response:
        field = self._find("custom_field", req.params["gid"], self.state.fields)
        data = self._data(req)
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise StateError(400, "name: Missing input")
        option = self.state.add_option(field, name, str(data.get("color") or "none"))
        return reply(201, {"data": Views.option(option)})


def _plain(kind: str, value: Any) -> bool:
    """A number for a number field, a string for a text field."""
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return kind == "text" and isinstance(value, str)


def _story_body(data: dict[str, Any], required: bool, users: Container[str]
                ) -> tuple[str, str]:
    """(text, html_text) of a story write: exactly one of text and html_text."""
    text, html_text = data.get("text"), data.get("html_text")
    if text is not None and html_text is not None:
        raise StateError(400, "You may only specify one of text and html_text")
    if html_text is not None:
        if not isinstance(html_text, str):
            raise StateError(400, "html_text: Invalid value")
        return story_text(html_text, users), html_text
    if not isinstance(text, str):
        raise StateError(400, "text: Missing input" if required or text is None
                         else "text: Invalid value")
    return text, f"<body>{escape(text, quote=False)}</body>"


def _since(items: list[Record], name: str, raw: str | None) -> list[Record]:
    if not raw:
        return items
    since = _moment(name, raw)
    return [t for t in items if _moment(name, t["modified_at"]) >= since]


def _completed_since(items: list[Record], raw: str | None) -> list[Record]:
    """Incomplete tasks plus those completed since ``raw`` ("now": incomplete only)."""
    if not raw:
        return items
    if raw == "now":
        return [t for t in items if not t["completed"]]
    since = _moment("completed_since", raw)
    return [t for t in items if not t["completed"]
            or (t["completed_at"] and _moment("completed_since", t["completed_at"]) >= since)]


def _moment(name: str, raw: str) -> datetime:
    try:
        moment = parse_datetime(raw)
    except ValueError:
        moment = None
    if moment is None:  # empty text (callers pass only non-empty text)
        raise StateError(400, f"{name}: Not a valid date-time: {raw}") from None
    return moment
