"""Webhook deliveries from the GitHub sandbox, shaped and signed as GitHub sends them.

Every :class:`~.world.Change` to a repository with hooks is rendered at once (a payload
shows the item as it was when the event happened) and queued for each hook that subscribes
to its event. Nothing is sent until :meth:`Deliveries.deliver` is called: tests and the demo
decide when, and nothing runs on a timer. Each delivery is a POST of the payload as JSON
(``content_type: json``) or as the form field ``payload`` (``form``, GitHub's default),
with GitHub's headers: ``X-GitHub-Event``, ``X-GitHub-Delivery`` (a fresh GUID),
``X-GitHub-Hook-ID``, the installation target, and, when the hook has a secret,
``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`` and the legacy SHA-1
``X-Hub-Signature``. What was delivered is kept, so a test can replay it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import uuid
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, quote_plus

from tether.sandbox import post
from tether.sdk import signature

from .payloads import Renderer
from .world import Change, Hook, World

USER_AGENT = "GitHub-Hookshot/tether-sandbox"
ZEN = ("Design for failure.", "Keep it logically awesome.", "Speak like a human.",
       "Approachable is better than simple.", "Mind your words, they are important.")


@dataclass(frozen=True)
class HookDelivery:
    """One delivery to one hook: exactly the request GitHub would send, and (once posted)
    the answer. ``status`` is None while queued, 0 when the receiver could not be reached."""

    guid: str
    hook_id: int
    event: str  # X-GitHub-Event
    action: str  # the payload's action ("" for a ping)
    url: str
    headers: dict[str, str]
    body: bytes
    status: int | None = None
    error: str = ""

    def payload(self) -> dict[str, Any]:
        """The payload as the receiver reads it (from the form field when form-encoded)."""
        if self.headers["Content-Type"] == "application/json":
            return json.loads(self.body)
        return json.loads(parse_qs(self.body.decode())["payload"][0])


class Deliveries:
    """The world's webhook deliveries: queued as changes happen, posted on :meth:`deliver`.

    ``base_url`` is the sandbox's own address (payload URLs point at it); the API sets it
    from each request and whoever starts the server sets it first."""

    def __init__(self, world: World, prefix: str = ""):
        self.world = world
        self.prefix = prefix  # "/api/v3" on a GHES-style sandbox
        self.base_url = "http://127.0.0.1"
        self.pending: list[HookDelivery] = []
        self.delivered: list[HookDelivery] = []
        self._lock = threading.Lock()  # changes arrive on server threads, deliver() elsewhere
        self._zen = 0
        world.listeners.append(self.changed)

    @classmethod
    def of(cls, world: World, prefix: str = "") -> Deliveries:
        """The deliveries already listening to ``world``, else new ones: two APIs over one
        world must not send every event twice."""
        for listener in world.listeners:
            owner = getattr(listener, "__self__", None)
            if isinstance(owner, Deliveries):
                return owner
        return cls(world, prefix)

    # -- queueing -----------------------------------------------------------------------------

    def changed(self, change: Change) -> None:
        """Queue ``change`` for every hook of its repository that subscribes to its event."""
        hooks = [change.hook] if change.hook is not None else \
            [h for h in change.repo.hooks.values() if h.wants(change.event)]
        if not hooks:
            return
        render = Renderer(self.world, self.base_url + self.prefix, self.base_url)
        shared = None if change.event == "ping" else self.payload(change, render)
        with self._lock:
            for hook in hooks:
                payload = shared if shared is not None else self.ping(change, hook, render)
                self.pending.append(self.signed(change, hook, payload))

    def payload(self, change: Change, render: Renderer) -> dict[str, Any]:
        """The event's payload, keys in GitHub's order."""
        repo, issue = change.repo, change.issue
        out: dict[str, Any] = {"action": change.action}
        if change.event == "pull_request" and issue is not None:
            out["number"] = issue.number
            out["pull_request"] = render.pull(repo, issue)
        elif issue is not None:
            out["issue"] = render.issue(repo, issue)
        if change.comment is not None:
            out["comment"] = render.comment(change.comment)
        if change.changes:
            out["changes"] = change.changes
        if change.label is not None:
            out["label"] = render.label(repo, change.label)
        if "assignee" in change.extra:
            out["assignee"] = render.user(change.extra["assignee"])
        if "milestone" in change.extra:
            out["milestone"] = render.milestone(repo, repo.milestones.get(change.extra[
                "milestone"]))
        out["repository"] = render.hook_repository(repo)
        out["sender"] = render.user(change.actor)
        return out

    def ping(self, change: Change, hook: Hook, render: Renderer) -> dict[str, Any]:
        """A ping: a line of zen and the hook as it was set up."""
        self._zen += 1
        return {"zen": ZEN[self._zen % len(ZEN)], "hook_id": hook.id,
                "hook": render.hook(change.repo, hook),
                "repository": render.hook_repository(change.repo),
                "sender": render.user(change.actor)}

    def signed(self, change: Change, hook: Hook, payload: dict[str, Any]) -> HookDelivery:
        """The request for ``hook``: its content type, GitHub's headers, its signatures."""
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        if hook.content_type == "json":
            body, content_type = text.encode(), "application/json"
        else:
            body = f"payload={quote_plus(text)}".encode()
            content_type = "application/x-www-form-urlencoded"
        guid = str(uuid.uuid4())  # unique across sandbox restarts, as GitHub's are
        headers = {
            "Accept": "*/*", "Content-Type": content_type, "User-Agent": USER_AGENT,
            "X-GitHub-Delivery": guid, "X-GitHub-Event": change.event,
            "X-GitHub-Hook-ID": str(hook.id),
            "X-GitHub-Hook-Installation-Target-ID": str(change.repo.id),
            "X-GitHub-Hook-Installation-Target-Type": "repository",
        }
        if hook.secret:  # GitHub signs only when the hook has a secret
            sha1 = hmac.new(hook.secret.encode(), body, hashlib.sha1).hexdigest()
            headers["X-Hub-Signature"] = f"sha1={sha1}"
            headers["X-Hub-Signature-256"] = f"sha256={signature(hook.secret, body)}"
        return HookDelivery(guid, hook.id, change.event, change.action, hook.url, headers, body)

    # -- sending ------------------------------------------------------------------------------

    def deliver(self) -> list[HookDelivery]:
        """Post every delivery queued so far, oldest first, and return them with their
        answers. Deliveries the receiver's work queues meanwhile wait for the next call."""
        with self._lock:
            batch, self.pending = self.pending, []
        return [self._post(item) for item in batch]

    def redeliver(self, guid: str) -> HookDelivery:
        """Post a delivered one again, unchanged (same GUID, same signature), as GitHub's
        "Redeliver" button does; KeyError if none has that GUID."""
        for item in reversed(self.delivered):
            if item.guid == guid:
                return self._post(replace(item, status=None, error=""))
        raise KeyError(f"no delivery {guid} was made")

    def _post(self, item: HookDelivery) -> HookDelivery:
        status, error = post(item.url, item.body, item.headers)
        done = replace(item, status=status, error=error)
        self._answered(done)
        with self._lock:
            self.delivered.append(done)
        return done

    def _answered(self, done: HookDelivery) -> None:
        """Show the answer as the hook's last response, as GitHub does."""
        hook = next((h for r in self.world.repos.values() for h in r.hooks.values()
                     if h.id == done.hook_id), None)
        if hook is not None:
            ok = done.status is not None and 200 <= done.status < 300
            hook.last_code = done.status or None
            hook.last_status = "active" if ok else "failed"
            hook.last_message = "OK" if ok else (done.error or f"Invalid HTTP Response: "
                                                              f"{done.status}")
