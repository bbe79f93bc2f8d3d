"""Admin webhooks of the fake Jira: registered over Jira's own endpoints, delivered as Jira
delivers them.

Registration (the same on Cloud and Data Center, Jira administrators only)::

    POST   /rest/webhooks/1.0/webhook        {name, url, events, filters, excludeBody, secret}
    GET    /rest/webhooks/1.0/webhook        every webhook
    GET    /rest/webhooks/1.0/webhook/{id}   one
    DELETE /rest/webhooks/1.0/webhook/{id}   204

``filters`` is ``{"issue-related-events-section": "<JQL>"}``: issue and comment events go
only to hooks whose JQL matches the issue (empty: every issue); issue-link events are not
JQL-filtered (Jira filters only issue-related events). The secret is never shown back.

Every :class:`~.state.Change` is rendered at once (a payload shows the issue as it was when
the event happened) and queued for each enabled hook subscribed to its event. Jira raises
``jira:issue_updated`` for a comment too (``issue_event_type_name`` issue_commented,
issue_comment_edited, issue_comment_deleted), beside the comment event. Nothing is sent
until :meth:`Deliveries.deliver`: tests and the demo decide when; no timer runs. Each
delivery is a POST of the JSON payload with ``X-Atlassian-Webhook-Identifier`` (a fresh
id, kept by a redelivery, which adds ``X-Atlassian-Webhook-Retry``) and, when the hook has
a secret, ``X-Hub-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`` (WebSub style:
not GitHub's X-Hub-Signature-256). What was delivered is kept for replays.

Payloads use REST v3 shapes on Cloud (accountId users, ADF bodies) and v2 on Data Center
(username users, wiki strings); Cloud also lists ``matchedWebhookIds``."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, replace
from typing import Any

from tether.sandbox import Request, Response, json_response, post, route
from tether.sdk import signature

from .http import JiraApiBase
from .jql import compile_jql
from .render import Renderer
from .state import Change, Issue, SandboxError, WebHook, World

HOOKS = r"/rest/webhooks/1\.0/webhook"
USER_AGENT = "Atlassian Webhook HTTP Client"
SCOPE = "issue-related-events-section"  # the filters key holding the JQL
LINK_EVENTS = ("issuelink_created", "issuelink_deleted")
# jira:issue_updated's issue_event_type_name for a comment change
COMMENT_TYPES = {"comment_created": "issue_commented", "comment_updated": "issue_comment_edited",
                 "comment_deleted": "issue_comment_deleted"}
# Changelog field names and ids, for the attributes an edit changes
FIELD_NAMES = {"summary": ("summary", "summary"), "description": ("description", "description"),
               "type": ("issuetype", "issuetype"), "status": ("status", "status"),
               "assignee": ("assignee", "assignee"), "labels": ("labels", "labels"),
               "components": ("Component", "components"), "parent": ("Parent", "parent")}


@dataclass(frozen=True)
class HookDelivery:
    """One POST to one hook, exactly as Jira sends it, and (once posted) the answer:
    ``status`` None while queued, 0 when the receiver could not be reached."""

    id: str  # X-Atlassian-Webhook-Identifier
    hook_id: int
    event: str  # the payload's webhookEvent
    url: str
    headers: dict[str, str]
    body: bytes
    status: int | None = None
    error: str = ""

    @property
    def action(self) -> str:
        """The event's verb: "created", "updated" or "deleted" (Jira sends no ping)."""
        return self.event.rsplit("_", 1)[-1]

    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


class Deliveries:
    """The site's webhook deliveries: queued as changes happen, posted on :meth:`deliver`.
    ``base_url`` is the sandbox's address (payload URLs point at it); the API sets it from
    each request, and whoever starts the server sets it first."""

    def __init__(self, world: World):
        self.world = world
        self.base_url = "http://127.0.0.1"
        self.pending: list[HookDelivery] = []
        self.delivered: list[HookDelivery] = []
        self._lock = threading.Lock()  # changes come on server threads, deliver() elsewhere
        world.listeners.append(self.changed)

    @classmethod
    def of(cls, world: World) -> Deliveries:
        """The deliveries already listening to ``world``, else new ones: two APIs over one
        site must not send every event twice."""
        for listener in world.listeners:
            owner = getattr(listener, "__self__", None)
            if isinstance(owner, Deliveries):
                return owner
        return cls(world)

    # -- queueing -------------------------------------------------------------------------

    def changed(self, change: Change) -> None:
        """Queue ``change`` for every hook that subscribes to it and whose JQL covers it."""
        events = [change.kind]
        if change.kind in COMMENT_TYPES:
            events.append("jira:issue_updated")
        hooks = [h for h in self.world.hooks.values() if h.enabled and self._covers(h, change)]
        if not any(event in h.events for h in hooks for event in events):
            return
        # One changelog per edit, whichever hooks hear of it.
        changelog = self.world.next_id("changelog") if change.fields else ""
        queued = [self._signed(hook, event, self.payload(change, event, hook, changelog))
                  for event in events for hook in hooks if event in hook.events]
        with self._lock:
            self.pending += queued

    def _covers(self, hook: WebHook, change: Change) -> bool:
        if change.kind in LINK_EVENTS or not hook.jql.strip() or change.issue is None:
            return True
        try:
            return compile_jql(hook.jql, self.world).match(change.issue)
        except SandboxError:
            return False  # a filter the site no longer understands matches nothing

    def payload(self, change: Change, event: str, hook: WebHook, changelog: str = ""
                ) -> dict[str, Any]:
        """The payload of ``event`` for ``change``, keys in Jira's order."""
        r = Renderer(self.world, self.base_url, "3" if self.world.flavour == "cloud" else "2")
        out: dict[str, Any] = {"timestamp": int(self.world.now().timestamp() * 1000),
                               "webhookEvent": event}
        if change.link is not None:
            out["issueLink"] = self._link(change)
        elif event.startswith("jira:"):
            issue = change.issue
            assert issue is not None
            out["issue_event_type_name"] = self._type_name(change)
            out["user"] = r.user(self.world.users.get(change.author or ""))
            out["issue"] = r.issue(issue, r.expand_fields([], ("*navigable",)), None)
            if change.fields:
                out["changelog"] = {"id": changelog, "items": self._items(change)}
            if change.comment is not None:
                out["comment"] = r.comment(issue, change.comment)
        else:  # a comment event: the comment, and the issue trimmed to a few fields
            issue = change.issue
            assert issue is not None and change.comment is not None
            out["comment"] = r.comment(issue, change.comment)
            out["issue"] = self._trimmed(r, issue)
        if self.world.flavour == "cloud":
            out["matchedWebhookIds"] = [hook.id]
        return out

    @staticmethod
    def _type_name(change: Change) -> str:
        if change.kind in COMMENT_TYPES:
            return COMMENT_TYPES[change.kind]
        if change.kind != "jira:issue_updated":
            return change.kind.removeprefix("jira:")  # issue_created, issue_deleted
        if "status" in change.fields:
            return "issue_generic"  # a transition
        if set(change.fields) == {"assignee"}:
            return "issue_assigned"
        return "issue_updated"

    def _items(self, change: Change) -> list[dict[str, Any]]:
        """The changelog items of an edit, one per field (labels as space-joined lists)."""
        out = []
        for name, (old, new) in change.fields.items():
            if name == "custom":
                for fid in sorted(set(old) | set(new)):
                    if old.get(fid) != new.get(fid):
                        label = self.world.fields[fid].name if fid in self.world.fields else fid
                        out.append(_item(label, fid, None, _text(old.get(fid)), None,
                                         _text(new.get(fid)), "custom"))
                continue
            label, fid = FIELD_NAMES[name]
            if name == "status":
                before, after = self.world.statuses[old], self.world.statuses[new]
                out.append(_item(label, fid, before.id, before.name, after.id, after.name))
            elif name == "type":
                out.append(_item(label, fid, self.world.types[old].id, old,
                                 self.world.types[new].id, new))
            elif name == "assignee":
                out.append(_item(label, fid, *self._person(old), *self._person(new)))
            elif name in ("labels", "components"):
                out.append(_item(label, fid, None, " ".join(old), None, " ".join(new)))
            else:
                out.append(_item(label, fid, old if name == "parent" else None, _text(old),
                                 new if name == "parent" else None, _text(new)))
        return out

    def _person(self, account: str | None) -> tuple[str | None, str | None]:
        """A user in a changelog: accountId (Cloud) or username (Data Center), and name."""
        user = self.world.users.get(account or "")
        if user is None:
            return None, None
        return (user.account_id if self.world.flavour == "cloud" else user.name,
                user.display_name)

    def _link(self, change: Change) -> dict[str, Any]:
        link = change.link
        assert link is not None
        kind = self.world.link_types[link.type]
        ids = {key: int(issue.id) for key, issue in self.world.issues.items()}
        return {"id": int(link.id), "sourceIssueId": ids.get(link.source),
                "destinationIssueId": ids.get(link.target),
                "issueLinkType": {"id": int(kind.id), "name": kind.name,
                                  "outwardName": kind.outward, "inwardName": kind.inward,
                                  "isSubTaskLinkType": False, "isSystemLinkType": False},
                "systemLink": False}

    @staticmethod
    def _trimmed(r: Renderer, issue: Issue) -> dict[str, Any]:
        fields = {name: r.field_value(issue, name)
                  for name in ("summary", "issuetype", "project", "assignee", "status")}
        fields["priority"] = r.priority()
        return {"id": issue.id, "self": f"{r.api}/issue/{issue.id}", "key": issue.key,
                "fields": fields}

    def _signed(self, hook: WebHook, event: str, payload: dict[str, Any]) -> HookDelivery:
        """The request for ``hook``: Jira's headers, signed when the hook has a secret."""
        body = b"" if hook.exclude_body else json.dumps(
            payload, ensure_ascii=False, separators=(",", ":")).encode()
        ident = str(uuid.uuid4())  # unique across sandbox restarts, as Jira's are
        headers = {"Content-Type": "application/json; charset=UTF-8", "User-Agent": USER_AGENT,
                   "X-Atlassian-Webhook-Identifier": ident}
        if hook.secret:  # Jira signs only when the hook has a secret
            headers["X-Hub-Signature"] = f"sha256={signature(hook.secret, body)}"
        return HookDelivery(ident, hook.id, event, hook.url, headers, body)

    # -- sending --------------------------------------------------------------------------

    def deliver(self) -> list[HookDelivery]:
        """Post every delivery queued so far, oldest first, and return them with their
        answers; deliveries queued meanwhile (by the receiver's own writes) wait for the
        next call."""
        with self._lock:
            batch, self.pending = self.pending, []
        return [self._post(item) for item in batch]

    def redeliver(self, ident: str) -> HookDelivery:
        """Post a delivered one again as Jira retries it: same identifier, body and
        signature, with ``X-Atlassian-Webhook-Retry``; KeyError if none has that id."""
        sent = [item for item in self.delivered if item.id == ident]
        if not sent:
            raise KeyError(f"no delivery {ident} was made")
        headers = {**sent[-1].headers, "X-Atlassian-Webhook-Retry": str(len(sent))}
        return self._post(replace(sent[-1], headers=headers, status=None, error=""))

    def _post(self, item: HookDelivery) -> HookDelivery:
        status, error = post(item.url, item.body, item.headers)
        done = replace(item, status=status, error=error)
        with self._lock:
            self.delivered.append(done)
        return done


def _item(field: str, fid: str, old: Any, old_text: str | None, new: Any,
          new_text: str | None, kind: str = "jira") -> dict[str, Any]:
    return {"field": field, "fieldtype": kind, "fieldId": fid, "from": old,
            "fromString": old_text, "to": new, "toString": new_text}


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else json.dumps(value)


class HookRoutes(JiraApiBase):
    """``/rest/webhooks/1.0/webhook``: admin webhooks, registered, listed and removed."""

    @route("POST", HOOKS)
    def register_hook(self, req: Request) -> Response:
        """201 and the webhook; 400 for a missing name or URL, an unknown event shape or a
        JQL filter Jira would refuse."""
        self._admin()
        data = self._body(req)
        if not isinstance(data, dict):
            raise SandboxError(400, ["The webhook must be a JSON object."])
        errors = {}
        name, url = data.get("name"), data.get("url")
        if not isinstance(name, str) or not name.strip():
            errors["name"] = "The webhook name must not be empty."
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            errors["url"] = "The webhook URL must be an absolute http or https URL."
        events = data.get("events") or []
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            errors["events"] = "Events must be a list of event names."
        filters = data.get("filters") or {}
        jql = filters.get(SCOPE, "") if isinstance(filters, dict) else None
        if not isinstance(jql, str):
            errors["filters"] = f"Filters must be an object with a {SCOPE} JQL string."
        secret = data.get("secret") or ""
        if not isinstance(secret, str):
            errors["secret"] = "The secret must be a string."
        if errors:
            raise SandboxError(400, errors=errors)
        assert isinstance(name, str) and isinstance(url, str) and isinstance(jql, str)
        if jql.strip():
            compile_jql(jql, self.world)  # Jira's 400 for a filter it cannot read
        hook = self.world.add_hook(name, url, events, jql, secret,
                                   bool(data.get("excludeBody")), self._caller_id())
        return json_response(201, self._render_hook(req, hook))

    @route("GET", HOOKS)
    def list_hooks(self, req: Request) -> Response:
        self._admin()
        return json_response(200, [self._render_hook(req, h) for h in self.world.hooks.values()])

    @route("GET", HOOKS + r"/(?P<hook>[^/]+)")
    def get_hook(self, req: Request) -> Response:
        self._admin()
        return json_response(200, self._render_hook(req, self._hook(req)))

    @route("DELETE", HOOKS + r"/(?P<hook>[^/]+)")
    def delete_hook(self, req: Request) -> Response:
        self._admin()
        del self.world.hooks[self._hook(req).id]
        return Response(204)

    def _admin(self) -> None:
        # The sandbox's admins stand in for Jira administrators (it models no other kind).
        if self.world.me is None or not self.world.me.admin:
            raise SandboxError(403, ["Only Jira administrators can manage webhooks."])

    def _caller_id(self) -> str | None:
        return self.world.me.account_id if self.world.me else None

    def _hook(self, req: Request) -> WebHook:
        raw = req.params["hook"]
        hook = self.world.hooks.get(int(raw)) if raw.isdigit() else None
        if hook is None:
            raise SandboxError(404, [f"No webhook with id {raw}."])
        return hook

    def _render_hook(self, req: Request, hook: WebHook) -> dict[str, Any]:
        """A webhook as the REST resource shows it: never its secret."""
        user = self.world.users.get(hook.author)
        cloud = self.world.flavour == "cloud"
        return {"self": f"{req.base_url}/rest/webhooks/1.0/webhook/{hook.id}",
                "name": hook.name, "url": hook.url, "excludeBody": hook.exclude_body,
                "filters": {SCOPE: hook.jql}, "events": list(hook.events),
                "enabled": hook.enabled,
                "lastUpdatedUser": (user.account_id if cloud else user.name) if user else None,
                "lastUpdatedDisplayName": user.display_name if user else None,
                "lastUpdated": int(hook.updated.timestamp() * 1000) if hook.updated else None}

