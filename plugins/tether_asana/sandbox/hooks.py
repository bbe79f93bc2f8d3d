"""Webhooks of the Asana sandbox: established with Asana's handshake, fed by every change,
delivered signed as Asana signs them, only when asked.

``POST /webhooks`` (``{"data": {"resource", "target", "filters"}}``) makes a secret and,
*during that request*, POSTs it to the target in an ``X-Hook-Secret`` header; the webhook
exists only if the target answers 200 or 204 echoing that header, as Asana documents
(createWebhook in the OpenAPI file). The 201 answer carries the secret again, beside
``data``. Unlike Asana, loopback targets are allowed (Asana answers 403 for localhost): the
sandbox has no other.

Each change the state records is queued, as a compact event (gid, resource_type and
resource_subtype only: webhooks omit names and user content), for every active webhook
whose resource's stream holds it (events bubble up: a project's webhook gets its tasks'
events and their stories') and whose filters pass it. Nothing is sent until
:meth:`Hooks.deliver`: one POST per webhook with its queued events as ``{"events": [...]}``,
``X-Hook-Signature`` the hex HMAC-SHA256 of the raw body keyed with the webhook's secret.
A delivery the target does not answer with a 2xx is kept and sent again, unchanged, first
on the next call (Asana retries for up to 24 hours). :meth:`Hooks.heartbeat` sends the
signed empty ``events`` Asana sends to idle webhooks. Every request sent is kept in
``delivered``, so a test can replay it.

For tests that set a webhook up before their receiver listens, ``create(...,
wait=True)`` keeps a webhook whose target cannot be reached yet, collecting its events,
and does its handshake first on the next :meth:`Hooks.deliver` (Asana would refuse it).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from dataclasses import dataclass, replace
from typing import Any

import requests
from tether.sandbox import post
from tether.sdk import signature

from .state import AsanaState, Record, StateError

TIMEOUT = 10.0  # Asana gives a target 10 seconds to answer
BATCH = 100  # events per delivery at most (the Events API's page; Asana's own is not documented)
FILTER_KEYS = ("resource_type", "resource_subtype", "action", "fields")
DUPLICATE = ("Duplicated webhook. You already have an existing webhook for the given resource "
             "and target. Delete the old one before creating another.")  # n8n-io/n8n#133


class Unreachable(StateError):
    """The handshake request found no one listening."""


@dataclass(frozen=True)
class HookDelivery:
    """One request to one webhook's target: exactly what Asana would send, and (once sent)
    the answer. ``status`` is None while queued, 0 when the target could not be reached."""

    hook: str  # the webhook's gid
    url: str
    headers: dict[str, str]
    body: bytes
    status: int | None = None
    error: str = ""

    def payload(self) -> dict[str, Any]:
        """The body as the target reads it."""
        return dict(json.loads(self.body))

    @property
    def event(self) -> str:
        """Its events' kinds, as "task.changed,story.added" ("heartbeat" when none)."""
        events = self.payload()["events"]
        kinds = (f"{e['resource']['resource_type']}.{e['action']}" for e in events)
        return ",".join(dict.fromkeys(kinds)) or "heartbeat"

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def compact(value: Any) -> Any:
    """A resource reference as webhooks show it: no name, no user content."""
    if isinstance(value, dict) and "gid" in value:
        return {k: value[k] for k in ("gid", "resource_type", "resource_subtype") if k in value}
    return value


def webhook_event(event: Record) -> Record:
    """A recorded event (sandbox.feed) as a webhook delivers it."""
    out: Record = {"user": compact(event["user"]), "created_at": event["created_at"],
                   "action": event["action"], "resource": compact(event["resource"]),
                   "parent": compact(event["parent"])}
    if "change" in event:
        change = dict(event["change"] or {})
        for key in ("new_value", "added_value", "removed_value"):
            if key in change:
                change[key] = compact(change[key])
        out["change"] = change
    return out


def passes(event: Record, filters: list[Record]) -> bool:
    """Whether any filter lets ``event`` through (no filters: every event): each key a
    filter sets must match; ``fields`` lists the changed fields it takes."""
    if not filters:
        return True
    resource, change = event["resource"], event.get("change") or {}
    for rule in filters:
        if rule.get("resource_type") not in (None, resource.get("resource_type")):
            continue
        if rule.get("resource_subtype") not in (None, resource.get("resource_subtype")):
            continue
        if rule.get("action") not in (None, event["action"]):
            continue
        if rule.get("fields") and change.get("field") not in rule["fields"]:
            continue
        return True
    return False


class Hooks:
    """The webhooks of one state (kept in ``state.webhooks``) and what they are owed."""

    def __init__(self, state: AsanaState):
        self.state = state
        self.pending: dict[str, list[Record]] = {}  # webhook gid -> events not yet sent
        self.retry: dict[str, list[HookDelivery]] = {}  # webhook gid -> failed deliveries
        self.delivered: list[HookDelivery] = []
        self.unconfirmed: set[str] = set()  # made with wait=True, handshake still to do
        self._lock = threading.Lock()  # events arrive on server threads, deliver() elsewhere
        state.listeners.append(self.notice)

    @classmethod
    def of(cls, state: AsanaState) -> Hooks:
        """The hooks already listening to ``state``, else new ones: two APIs over one state
        must not queue every event twice."""
        for listener in state.listeners:
            owner = getattr(listener, "__self__", None)
            if isinstance(owner, Hooks):
                return owner
        return cls(state)

    # -- the webhooks ----------------------------------------------------------------------

    def create(self, resource: Any, target: Any, filters: Any = None,
               by: str | None = None, wait: bool = False) -> tuple[Record, str]:
        """Establish a webhook on ``resource`` (a project or task gid) for ``by`` (default:
        the caller), after the handshake with ``target``; (its record, its secret).
        StateError as Asana answers: 400 a bad resource, target or filters, or a target
        that did not echo the secret; 404 an unknown resource; 403 a duplicate. ``wait``
        (tests only): a target not listening yet gets its handshake on ``deliver``."""
        st = self.state
        by = by or st.me
        if not isinstance(resource, str) or not resource:
            raise StateError(400, "resource: Missing input")
        if not resource.isdigit():
            raise StateError(400, f"resource: Not a recognized ID: {resource}")
        if resource in st.projects:
            kind = "project"
        elif resource in st.tasks:
            kind = "task"
        else:
            raise StateError(404, f"resource: Unknown object: {resource}")
        if not isinstance(target, str) or not re.match(r"https?://[^/\s]+", target):
            raise StateError(400, "target: Missing input" if not target
                             else f"target: Not a valid URL: {target}")
        rules = _filters(filters)
        if any(h["resource"] == resource and h["target"] == target and h["created_by"] == by
               for h in st.webhooks.values()):
            raise StateError(403, DUPLICATE)
        secret = secrets.token_hex(32)  # 64 hex digits, like the documented example
        waiting = False
        try:
            self._handshake(target, secret)
        except Unreachable:
            if not wait:
                raise
            waiting = True
        hook: Record = {
            "gid": st.gid(), "resource": resource, "resource_type": kind, "target": target,
            "filters": rules, "secret": secret, "created_by": by,
            "created_at": st.now(), "active": True, "last_success_at": None,
            "last_failure_at": None, "last_failure_content": None, "delivery_retry_count": 0}
        st.webhooks[hook["gid"]] = hook
        if waiting:
            with self._lock:
                self.unconfirmed.add(hook["gid"])
        return hook, secret

    @staticmethod
    def _handshake(target: str, secret: str) -> None:
        """POST the secret to ``target``; StateError unless it answers 200 or 204 with the
        same X-Hook-Secret. (The sentences are the sandbox's: Asana's are not documented.)"""
        try:
            answer = requests.post(target, data=b"", headers={"X-Hook-Secret": secret},
                                   timeout=TIMEOUT, allow_redirects=False)
        except requests.RequestException as exc:
            raise Unreachable(400, f"target: The handshake request to {target} failed "
                                   f"({type(exc).__name__})") from None
        if answer.status_code not in (200, 204):
            raise StateError(400, f"target: The handshake request to {target} was answered "
                                  f"{answer.status_code}; it must answer 200 or 204")
        if answer.headers.get("X-Hook-Secret") != secret:
            raise StateError(400, f"target: The handshake request to {target} was not "
                                  "answered with the X-Hook-Secret header it carried")

    def remove(self, gid: str) -> None:
        """Delete a webhook; nothing more is sent to it, queued or not."""
        self.state.webhooks.pop(gid, None)
        with self._lock:
            self.pending.pop(gid, None)
            self.retry.pop(gid, None)

    def owned(self, by: str) -> list[Record]:
        """``by``'s webhooks, in gid order."""
        return sorted((h for h in self.state.webhooks.values() if h["created_by"] == by),
                      key=lambda h: int(h["gid"]))

    # -- queueing --------------------------------------------------------------------------

    def notice(self, event: Record, scope: list[str]) -> None:
        """Queue ``event`` for every active webhook on a resource whose stream holds it."""
        shown = webhook_event(event)
        with self._lock:
            for hook in self.state.webhooks.values():
                if hook["active"] and hook["resource"] in scope \
                        and passes(shown, hook["filters"]):
                    self.pending.setdefault(hook["gid"], []).append(shown)

    # -- sending ---------------------------------------------------------------------------

    def deliver(self) -> list[HookDelivery]:
        """Send what each webhook is owed, webhook by webhook: failed deliveries again
        (unchanged), then its queued events (at most ``BATCH`` a request). Synchronous: when
        it returns every answer is in. Events queued meanwhile wait for the next call."""
        self._confirm()
        with self._lock:
            retry, self.retry = self.retry, {}
            pending = {g: e for g, e in self.pending.items() if g not in self.unconfirmed}
            self.pending = {g: e for g, e in self.pending.items() if g in self.unconfirmed}
        sent: list[HookDelivery] = []
        for gid in sorted(set(retry) | set(pending), key=int):
            hook = self.state.webhooks.get(gid)
            if hook is None:
                continue  # deleted since: nothing more is sent
            owed = list(retry.get(gid, []))
            events = pending.get(gid, [])
            owed += [self.signed(hook, events[i:i + BATCH])
                     for i in range(0, len(events), BATCH)]
            sent += [self._post(hook, item) for item in owed]
        return sent

    def _confirm(self) -> None:
        """The handshakes of webhooks made with ``wait``; one that fails keeps waiting
        (its events too), the reason shown as its last failure."""
        with self._lock:
            waiting = sorted(self.unconfirmed, key=int)
        for gid in waiting:
            hook = self.state.webhooks.get(gid)
            if hook is not None:
                try:
                    self._handshake(hook["target"], hook["secret"])
                except StateError as exc:
                    hook.update(last_failure_at=self.state.now(), last_failure_content=exc.message)
                    continue
            with self._lock:
                self.unconfirmed.discard(gid)

    def heartbeat(self) -> list[HookDelivery]:
        """Send every active webhook the signed empty ``events`` Asana sends idle ones."""
        hooks = [h for h in self.state.webhooks.values()
                 if h["active"] and h["gid"] not in self.unconfirmed]
        return [self._post(h, self.signed(h, []), again=False) for h in hooks]

    @staticmethod
    def signed(hook: Record, events: list[Record]) -> HookDelivery:
        """The request carrying ``events`` to ``hook``, signed with its secret."""
        body = json.dumps({"events": events}, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "X-Hook-Signature": signature(hook["secret"], body)}
        return HookDelivery(hook["gid"], hook["target"], headers, body)

    def _post(self, hook: Record, item: HookDelivery, again: bool = True) -> HookDelivery:
        """Send ``item``, show the answer on ``hook`` as Asana does, keep it in
        ``delivered``; a failure is sent again on the next call when ``again``."""
        status, error = post(item.url, item.body, item.headers)
        done = replace(item, status=status, error=error)
        now = self.state.now()
        if done.ok:
            hook.update(last_success_at=now, delivery_retry_count=0)
        else:  # kept, unchanged, for the next call, as Asana retries
            hook.update(last_failure_at=now, delivery_retry_count=hook["delivery_retry_count"] + 1,
                        last_failure_content=done.error or f"{done.status}")
            if again:
                with self._lock:
                    self.retry.setdefault(hook["gid"], []).append(
                        replace(item, status=None, error=""))
        with self._lock:
            self.delivered.append(done)
        return done

    def replay(self, item: HookDelivery) -> HookDelivery:
        """Send a delivery again exactly as it was (same body, same signature), as a
        replaying attacker would: kept in ``delivered``, never retried."""
        status, error = post(item.url, item.body, item.headers)
        done = replace(item, status=status, error=error)
        with self._lock:
            self.delivered.append(done)
        return done


def _filters(raw: Any) -> list[Record]:
    """The filters of a webhook request, as Asana takes them; StateError(400) otherwise."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(f, dict) for f in raw):
        raise StateError(400, "filters: Invalid value")
    out = []
    for rule in raw:
        unknown = sorted(set(rule) - set(FILTER_KEYS))
        if unknown:
            raise StateError(400, f"filters: Unknown property: {unknown[0]}")
        if any(not isinstance(rule.get(k), str | None) for k in FILTER_KEYS[:3]):
            raise StateError(400, "filters: Invalid value")
        fields = rule.get("fields")
        if fields is not None and (not isinstance(fields, list)
                                   or not all(isinstance(f, str) for f in fields)):
            raise StateError(400, "filters: fields: Invalid value")
        if fields and rule.get("action") != "changed":
            raise StateError(400, "filters: fields: Only valid with action 'changed'")
        out.append({k: rule[k] for k in FILTER_KEYS if rule.get(k) is not None})
    return out
