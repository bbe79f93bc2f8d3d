"""Asana webhook deliveries, verified as Asana signs them and read for what they touch.

Asana establishes a webhook with a handshake: while ``POST /webhooks`` runs, it POSTs the
target a request carrying ``X-Hook-Secret``; the target must answer 200 echoing that header.
Tether keeps the secret per webhook (``HookSecrets``), the webhook named by the delivery
URL's ``hook`` parameter, which ``tether webhooks install`` sets to the project's gid. A
handshake is taken only for a configured project with no secret yet, and only while
``tether webhooks install`` says it waits for one: a forged handshake can neither replace a
secret nor plant one. Every later delivery carries ``X-Hook-Signature``, the
hex HMAC-SHA256 of the raw body keyed with that secret, checked in constant time before the
body is read. Asana sends no delivery id: the signature is the id (a replay repeats it, and
the same body sent to another webhook has another), so the service drops repeats by it.

The body is ``{"events": [...]}`` (empty: a heartbeat). Webhook events are compact: gids,
resource types and subtypes, no names and no user content (no story text): so Tether's
echo is known by its account's gid (``memory["echo"]["me"]``, noted when the connector
learns it), by the gids of its tags (noted when it writes them, and in what
``memory["shown"]`` keeps) or its label field, and by the gid of its story on each task
(``memory["stories"]``). Reading makes no request.
(developers.asana.com/docs/webhooks-guide; createWebhook and EventResponse in the OpenAPI
file; research/tracker-apis.md 3.6.)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tether.sdk import Delivery, HookSecrets, Refused, Reply, header, signed_by

from . import shown
from .options import AsanaOptions

ECHO = "echo"  # memory: {"me": the token user's gid, "tags": {tag gid: name}}
ACTIONS = ("added", "changed", "removed", "deleted", "undeleted")
MAX_SECRET = 512  # Asana's are 64 hex digits; anything far longer is no handshake of its
# System stories that only say a tag or a custom field changed; the task event beside them
# says which one.
TAG_STORIES = ("added_to_tag", "removed_from_tag")
FIELD_STORY = "_custom_field_changed"
Event = dict[str, Any]


@dataclass(frozen=True)
class Echo:
    """What tells Tether's own changes from people's: the account its token acts as, the
    gids of its tags (tag mode) or of its label field (custom-field mode), its story on each
    task (story gid -> task gid), and the tasks memory says are in none of the projects."""

    me: str | None
    tags: frozenset[str]
    field: str | None
    stories: Mapping[str, str]
    outside: frozenset[str]


def note_me(memory: dict[str, Any], me: str) -> None:
    """Remember the gid of the user Tether's token acts as."""
    _echo(memory)["me"] = me


def note_tags(memory: dict[str, Any], tags: Mapping[str, str]) -> None:
    """Remember Tether's tags (gid -> name), which webhook events name by gid only."""
    kept = _echo(memory).setdefault("tags", {})
    if not isinstance(kept, dict):
        kept = _echo(memory)["tags"] = {}
    kept.update(tags)


def _echo(memory: dict[str, Any]) -> dict[str, Any]:
    found = memory.get(ECHO)
    if not isinstance(found, dict):
        found = memory[ECHO] = {}
    return found


def echo(memory: Mapping[str, Any], prefix: str, options: AsanaOptions,
         me: str | None = None, known_tags: Mapping[str, str] | None = None) -> Echo:
    """What ``memory`` (read, never changed) and the connector's own knowledge (``me``; its
    tags by name, ``known_tags``) say of Tether's account, tags and stories."""
    ours = prefix + ":"
    found = memory.get(ECHO)
    raw: dict[str, Any] = found if isinstance(found, dict) else {}
    noted_me = raw.get("me") if isinstance(raw.get("me"), str) else None
    noted_tags = raw.get("tags")
    tags = {str(gid) for gid, name in noted_tags.items()
            if isinstance(name, str) and name.startswith(ours)} \
        if isinstance(noted_tags, dict) else set()
    tags |= {gid for name, gid in (known_tags or {}).items() if name.startswith(ours)}
    noted = memory.get(shown.KEY)
    outside: set[str] = set()
    if isinstance(noted, dict) and isinstance(noted.get("tasks"), dict):
        for key, entry in noted["tasks"].items():
            if not (isinstance(entry, list) and entry and type(entry[0]) is int):
                continue
            if entry[0] & shown.OUTSIDE:
                outside.add(str(key))
            # tag mode keeps [name, gid, ...] per label under the prefix
            tags |= {str(g) for kept in entry[1:] if isinstance(kept, list) and kept
                     and isinstance(kept[0], str) and kept[0].startswith(ours)
                     for g in kept[1:] if isinstance(g, str)}
    stories = memory.get("stories")
    by_story = {str(entry[0]): str(task) for task, entry in stories.items()
                if isinstance(entry, list) and entry and isinstance(entry[0], str)} \
        if isinstance(stories, dict) else {}
    if noted_me is None and isinstance(noted, dict) and isinstance(noted.get("me"), str):
        noted_me = noted["me"]
    return Echo(me or noted_me, frozenset(tags) if options.label_mode == "tags" else frozenset(),
                options.label_field if options.label_mode == "custom_field" else None,
                by_story, frozenset(outside))


def receive(source: str, options: AsanaOptions, known: Echo, headers: Mapping[str, str],
            body: bytes, query: Mapping[str, str], secrets: HookSecrets) -> Delivery:
    """The handshake or delivery ``body`` with ``headers`` for the webhook ``query["hook"]``
    names. A handshake for a configured project with no secret yet keeps the secret and is
    answered by echoing it; a delivery is verified with the kept secret and read for the
    tasks it touches (the configured projects' only) and whether it is Tether's echo.
    Raises Refused: 401 unsigned, wrongly signed, with no kept secret, or a second handshake;
    400 malformed. No message carries a secret."""
    where = f"{source}: Asana webhook"
    hook = (query.get("hook") or "").strip()
    if not hook.isdigit():
        raise Refused(400, f"{where}: the delivery URL has no hook=<project gid> parameter "
                           "naming the webhook; install it with `tether webhooks install`, "
                           "which sets it")
    where = f"{where} for project {hook}"
    offered = header(headers, "X-Hook-Secret")
    if offered is not None:
        return _handshake(where, hook, offered.strip(), options, secrets)
    given = header(headers, "X-Hook-Signature")
    if not given:
        raise Refused(401, f"{where} is not signed (no X-Hook-Signature); Asana signs every "
                           "delivery after the handshake")
    secret = secrets.get(hook)
    if not secret:
        raise Refused(401, f"{where}: no secret is kept for this webhook (its handshake "
                           "never reached Tether); remove the webhook and install it again "
                           "with `tether webhooks install`")
    if not signed_by(secret, body, given):
        raise Refused(401, f"{where}: the signature does not match the secret kept from the "
                           "webhook's handshake")
    events = _events(body, where)
    delivery_id = given.strip().lower()
    if not events:
        return Delivery(delivery_id, "heartbeat")
    return _read(delivery_id, events, hook in options.projects, known)


def _handshake(where: str, hook: str, secret: str, options: AsanaOptions,
               secrets: HookSecrets) -> Delivery:
    if hook not in options.projects:
        raise Refused(400, f"{where}: that project is not in options.projects, so Tether "
                           "takes no webhook for it; add it there, or install the webhook "
                           "on a configured project")
    if not secret or len(secret) > MAX_SECRET or not secret.isascii() \
            or not secret.isprintable() or " " in secret:
        raise Refused(400, f"{where}: the handshake's X-Hook-Secret is empty or malformed")
    if not secrets.expected():
        raise Refused(401, f"{where}: a handshake came while no `tether webhooks install` "
                           "was waiting for one, and was refused so that nobody else can "
                           "set up a webhook; install it with `tether webhooks install`")
    if secrets.get(hook):
        raise Refused(401, f"{where}: a handshake came for a webhook whose secret Tether "
                           "already keeps, and was refused so that the secret cannot be "
                           "replaced; to set the webhook up again, remove it with `tether "
                           "webhooks remove` and install it anew")
    secrets.put(hook, secret)
    return Delivery("", "handshake", reply=Reply(200, {"X-Hook-Secret": secret}))


def _events(body: bytes, where: str) -> list[Event]:
    """The body's events, each checked for the shape Asana sends; Refused(400) otherwise."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, f"{where}: the body is not JSON") from None
    events = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(events, list):
        raise Refused(400, f"{where}: the body has no events list")
    for event in events:
        resource = event.get("resource") if isinstance(event, dict) else None
        if not (isinstance(event, dict) and event.get("action") in ACTIONS
                and isinstance(resource, dict) and isinstance(resource.get("gid"), str)
                and isinstance(resource.get("resource_type"), str)
                and isinstance(event.get("parent") or {}, dict)
                and isinstance(event.get("user") or {}, dict)
                and isinstance(event.get("change") or {}, dict)):
            raise Refused(400, f"{where}: an event is not shaped as Asana sends them "
                               "(action, resource with gid and resource_type)")
    return events


def _ref(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _name(event: Event) -> str:
    return f"{_ref(event['resource']).get('resource_type')}.{event['action']}"


def _task(event: Event, known: Echo) -> str | None:
    """The task ``event`` touches: the task itself, or the one a story is on (the parent,
    or Tether's story's task when the event names no parent, as on an edit)."""
    resource, parent = _ref(event["resource"]), _ref(event.get("parent"))
    kind, gid = resource.get("resource_type"), str(resource.get("gid"))
    if kind == "task":
        return gid
    if kind == "story":
        if parent.get("resource_type") == "task" and isinstance(parent.get("gid"), str):
            return str(parent["gid"])
        return known.stories.get(gid)
    return None


def _label_change(event: Event, known: Echo) -> bool | None:
    """For a change of a task's tags or custom fields: whether it is inside Tether's labels
    (its tag, its label field); None for any other event."""
    change = _ref(event.get("change"))
    if _ref(event["resource"]).get("resource_type") != "task" or event["action"] != "changed":
        return None
    field = change.get("field")
    if field == "tags":
        value = _ref(change.get("added_value") or change.get("removed_value")
                     or change.get("new_value"))
        return str(value.get("gid")) in known.tags
    if field == "custom_fields":
        return known.field is not None and _ref(change.get("new_value")).get("gid") == known.field
    return None


def _read(delivery_id: str, events: list[Event], configured: bool, known: Echo) -> Delivery:
    """Keys, event names, actors and echo of a verified delivery's events."""
    # Per task, whether each of its tag (or custom-field) changes here is inside Tether's
    # labels: the system story beside such a change names no tag, so it is judged by them.
    tags: dict[str, list[bool]] = {}
    fields: dict[str, list[bool]] = {}
    for event in events:
        inside = _label_change(event, known)
        if inside is not None:
            field = _ref(event.get("change")).get("field")
            (tags if field == "tags" else fields).setdefault(
                str(_ref(event["resource"]).get("gid")), []).append(inside)
    own_all, others = True, []
    for event in events:
        task = _task(event, known)
        if _own(event, task, known, tags, fields):
            continue
        own_all = False
        if task is not None and configured and task not in known.outside:
            others.append(task)
    touched = [t for t in (_task(e, known) for e in events) if t is not None]
    keys = others if not own_all else [t for t in touched if configured
                                       and t not in known.outside]
    actors = _unique(str(_ref(e.get("user")).get("gid")) for e in events
                     if _ref(e.get("user")).get("gid"))
    return Delivery(delivery_id, ",".join(_unique(_name(e) for e in events)),
                    tuple(_unique(keys)), ",".join(actors) or None, own=own_all)


def _own(event: Event, task: str | None, known: Echo, tags: dict[str, list[bool]],
         fields: dict[str, list[bool]]) -> bool:
    """Whether ``event`` is Tether's: made by its account, a change of its labels only, or
    its own story (or the system story of a change of its labels)."""
    user = _ref(event.get("user")).get("gid")
    if known.me is not None and user == known.me:
        return True
    inside = _label_change(event, known)
    if inside is not None:
        return inside
    resource = _ref(event["resource"])
    if resource.get("resource_type") != "story" or task is None:
        return False
    if known.stories.get(str(resource.get("gid"))) == task:
        return True
    subtype = str(resource.get("resource_subtype") or "")
    beside = tags.get(task) if subtype in TAG_STORIES else \
        fields.get(task) if subtype.endswith(FIELD_STORY) else None
    return bool(beside) and all(beside or ())


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))
