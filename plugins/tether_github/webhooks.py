"""GitHub webhook deliveries, verified as GitHub signs them and read for what they touch.

A repository hook with a secret sends ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of
the raw body keyed with the secret>``; Tether reads the secret from the environment
variable ``options.webhook_secret_env`` and checks the signature, in constant time, before
reading a byte of the body. ``X-GitHub-Delivery`` is the delivery's GUID (a redelivery keeps
it, so the service drops repeats by it) and ``X-GitHub-Event`` its event. The body is JSON,
or a form whose ``payload`` field holds the JSON (a hook left at GitHub's default
``content_type: form``).

Events read: ``issues`` and ``pull_request`` (the item), ``issue_comment`` (the item the
comment is on), ``label`` (a repository label: no item) and ``ping`` (no item). A delivery
is Tether's own echo when its sender is the account Tether's token acts as (remembered
from its comment writes; see memory.py), or when all it changed is a label in Tether's
namespace or Tether's own comment (whose body starts with the marker). Reading makes no
request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from tether.sdk import Delivery, Refused, check_signed, header

from .annotations import is_ours
from .normalise import task_key
from .options import GitHubOptions

TRACKER = "GitHub"
# Events whose payload names one item; the others touch none.
ITEM_EVENTS = ("issues", "pull_request", "issue_comment")


def receive(source: str, options: GitHubOptions, account: str | None,
            headers: Mapping[str, str], body: bytes, prefix: str) -> Delivery:
    """The delivery ``body`` with ``headers``, verified against the secret in
    ``$options.webhook_secret_env``: what it touches in ``options.repos`` and whether it is
    Tether's echo (``account``: the login Tether acts as, if known). Raises Refused: 401
    unsigned or wrongly signed (or no secret set here), 400 malformed. No message carries
    a secret."""
    where = f"{source}: GitHub webhook"
    check_signed(where, headers, body, "X-Hub-Signature-256", options.webhook_secret_env,
                 "repository webhook")
    event = (header(headers, "X-GitHub-Event") or "").strip()
    guid = (header(headers, "X-GitHub-Delivery") or "").strip()
    if not event or not guid:
        missing = "X-GitHub-Event" if not event else "X-GitHub-Delivery"
        raise Refused(400, f"{where}: no {missing} header; GitHub always sends one")
    payload = _payload(headers, body, where)
    if event == "ping":
        return Delivery(guid, "ping", actor=_login(payload.get("sender")))
    return _read(guid, event, payload, options, account, prefix, f"{where} ({event})")


def _payload(headers: Mapping[str, str], body: bytes, where: str) -> dict[str, Any]:
    """The JSON object the body carries, as JSON or in a form's ``payload`` field."""
    kind = (header(headers, "Content-Type") or "").split(";")[0].strip().lower()
    try:
        if kind == "application/x-www-form-urlencoded":
            fields = parse_qs(body.decode("utf-8"), strict_parsing=True)
            text = fields["payload"][0]
        else:
            text = body.decode("utf-8")
        payload = json.loads(text)
    except (UnicodeDecodeError, ValueError, KeyError, IndexError):
        raise Refused(400, f"{where}: the body is not a JSON payload (nor a form with "
                           "one in its payload field)") from None
    if not isinstance(payload, dict):
        raise Refused(400, f"{where}: the payload is not a JSON object")
    return payload


def _read(guid: str, event: str, payload: dict[str, Any], options: GitHubOptions,
          account: str | None, prefix: str, where: str) -> Delivery:
    """Keys, actor and echo of an event other than ping."""
    action = payload.get("action")
    if not isinstance(action, str) or not action:
        raise Refused(400, f"{where}: the payload has no action")
    name = f"{event}.{action}"
    actor = _login(payload.get("sender"))
    own = actor is not None and actor == account
    if event not in ITEM_EVENTS:
        if event == "label":
            own = own or _only_ours(payload, prefix, where)
        return Delivery(guid, name, (), actor, own)  # a label, a push, ...: no single item
    repo = _repository(payload, where)
    part = "pull_request" if event == "pull_request" else "issue"
    item = payload.get(part)
    if not isinstance(item, dict) or not _number(item.get("number")):
        raise Refused(400, f"{where}: the payload has no {part} with a number")
    pull = event == "pull_request" or isinstance(item.get("pull_request"), dict)
    keys = []
    if not pull or options.include_pull_requests:
        keys.append(_key(options, repo, item["number"]))
        if event == "issues" and action == "transferred":
            keys.append(_transferred_to(options, payload))
    found = tuple(dict.fromkeys(k for k in keys if k is not None))
    if event == "issue_comment":
        own = own or _our_comment(payload, where)
    elif action in ("labeled", "unlabeled"):
        own = own or _only_ours(payload, prefix, where)
    return Delivery(guid, name, found, actor, own)


def _login(user: Any) -> str | None:
    login = user.get("login") if isinstance(user, dict) else None
    return login if isinstance(login, str) and login else None


def _number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _repository(payload: dict[str, Any], where: str) -> str:
    repo = payload.get("repository")
    name = repo.get("full_name") if isinstance(repo, dict) else None
    if not isinstance(name, str) or name.count("/") != 1:
        raise Refused(400, f"{where}: the payload names no repository (full_name)")
    return name


def _key(options: GitHubOptions, repo: str, number: int) -> str | None:
    """The item's Task.key, with the repository as options.repos spells it (GitHub's
    names are case-insensitive); None outside them."""
    configured = next((r for r in options.repos if r.lower() == repo.lower()), None)
    return task_key(configured, number) if configured else None


def _transferred_to(options: GitHubOptions, payload: dict[str, Any]) -> str | None:
    """Where a transferred issue went, when that repository is configured too."""
    changes = payload.get("changes")
    if not isinstance(changes, dict):
        return None
    new_issue, new_repo = changes.get("new_issue"), changes.get("new_repository")
    name = new_repo.get("full_name") if isinstance(new_repo, dict) else None
    number = new_issue.get("number") if isinstance(new_issue, dict) else None
    if isinstance(name, str) and isinstance(number, int) and _number(number):
        return _key(options, name, number)
    return None


def _only_ours(payload: dict[str, Any], prefix: str, where: str) -> bool:
    """Whether the label (and its old name, when renamed) is in Tether's namespace."""
    label = payload.get("label")
    name = label.get("name") if isinstance(label, dict) else None
    if not isinstance(name, str):
        raise Refused(400, f"{where}: the payload has no label name")
    names = [name]
    changes = payload.get("changes")
    old = changes.get("name") if isinstance(changes, dict) else None
    if isinstance(old, dict) and isinstance(old.get("from"), str):
        names.append(old["from"])
    return all(n.startswith(f"{prefix}:") for n in names)


def _our_comment(payload: dict[str, Any], where: str) -> bool:
    """Whether the comment is Tether's, before (an edit's old body) and after."""
    comment = payload.get("comment")
    if not isinstance(comment, dict) or not isinstance(comment.get("body", ""), str | None):
        raise Refused(400, f"{where}: the payload has no comment")
    bodies = [comment.get("body")]
    changes = payload.get("changes")
    old = changes.get("body") if isinstance(changes, dict) else None
    if isinstance(old, dict) and isinstance(old.get("from"), str):
        bodies.append(old["from"])
    return all(is_ours(b) for b in bodies)
