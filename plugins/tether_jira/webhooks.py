"""Jira admin-webhook deliveries, verified as Jira signs them and read for what they touch.

An admin webhook (Jira administration > WebHooks, or ``POST /rest/webhooks/1.0/webhook``)
saved with a secret sends ``X-Hub-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>``
(WebSub style: not GitHub's X-Hub-Signature-256), on Cloud and Data Center alike. Tether
reads the secret from the environment variable ``options.webhook_secret_env`` and checks
the signature, in constant time, before reading the body. ``X-Atlassian-Webhook-Identifier``
names the delivery (a retry keeps it, so the service drops repeats by it).

Events read: ``jira:issue_created|updated|deleted`` and ``comment_created|updated|deleted``
(the issue, by key), ``issuelink_created|deleted`` (both ends: Jira names them by issue id
only, so they are found among the issues the connector has pulled; an end it has never
pulled is left out, and the next scheduled pass sees the link). Other events touch no item.
Only issues in scope count: in ``options.projects`` (when set) and, when ``options.jql`` is
set, among the issues pulled (a JQL restriction cannot be judged from a payload).

A delivery is Tether's echo (``own``) when its user is the account Tether's token acts as
(remembered from /myself and from Tether's comment writes), or when all it changed is
labels in Tether's namespace (``prefix:``, from the changelog) or Tether's own comment.
Jira keeps no marker in the text of Tether's comment (its ``tether`` property marks it), so
the comment is known by its id, as the connector's memory names it (or by the property or
the marker, if a payload shows them). Reading makes no request."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tether.sdk import MARKER, Delivery, Refused, check_signed, header

from .client import MARKER_KEY, account_of
from .markup import adf_to_text
from .options import JiraOptions

ISSUE_EVENTS = ("jira:issue_created", "jira:issue_updated", "jira:issue_deleted")
COMMENT_EVENTS = ("comment_created", "comment_updated", "comment_deleted")
LINK_EVENTS = ("issuelink_created", "issuelink_deleted")
_KEY = re.compile(r"[A-Z][A-Z0-9_]*-[1-9][0-9]*")


@dataclass(frozen=True)
class Known:
    """What the connector knows of Tether on the site, from its memory: the names its
    account goes by (accountId; name and key), the pulled issues' keys by id, and the ids
    of Tether's comments."""

    account: frozenset[str] = frozenset()
    ids: Mapping[str, str] = field(default_factory=dict)
    comments: frozenset[str] = frozenset()


def receive(source: str, options: JiraOptions, known: Known, headers: Mapping[str, str],
            body: bytes, prefix: str) -> Delivery:
    """The delivery ``body`` with ``headers``, verified against the secret in
    ``$options.webhook_secret_env``: the issues in scope it touches and whether it is
    Tether's echo. Raises Refused: 401 unsigned or wrongly signed (or no secret set here),
    400 malformed. No message carries a secret."""
    where = f"{source}: Jira webhook"
    check_signed(where, headers, body, "X-Hub-Signature", options.webhook_secret_env,
                 "Jira admin webhook")
    ident = (header(headers, "X-Atlassian-Webhook-Identifier") or "").strip()
    payload = _payload(body, where)
    event = payload.get("webhookEvent")
    if not isinstance(event, str) or not event:
        raise Refused(400, f"{where}: the payload names no webhookEvent")
    return _Reader(options, known, prefix, f"{where} ({event})").read(ident, event, payload)


def _payload(body: bytes, where: str) -> dict[str, Any]:
    if not body.strip():
        raise Refused(400, f"{where}: the body is empty; untick 'Exclude body' on the "
                           "webhook so Jira sends the event")
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, f"{where}: the body is not JSON") from None
    if not isinstance(payload, dict):
        raise Refused(400, f"{where}: the payload is not a JSON object")
    return payload


class _Reader:
    """Reads one verified payload: keys in scope, actor, echo."""

    def __init__(self, options: JiraOptions, known: Known, prefix: str, where: str):
        self.options, self.known, self.prefix, self.where = options, known, prefix, where

    def read(self, ident: str, event: str, payload: dict[str, Any]) -> Delivery:
        actor, own = self._actor(payload.get("user"))
        if event in ISSUE_EVENTS:
            keys = [self._key(payload.get("issue"))]
            parts = []  # what changed, each True when it is Tether's alone
            items = self._items(payload.get("changelog"))
            if items:
                parts.append(self._only_our_labels(items))
                keys += [str(i.get("fromString")) for i in items
                         if i.get("field") == "Key" and _KEY.fullmatch(str(i.get("fromString")))]
            comment = payload.get("comment")
            if comment is not None:
                parts.append(self._our_comment(self._comment(comment)))
            own = own or (bool(parts) and all(parts))
        elif event in COMMENT_EVENTS:
            keys = [self._key(payload.get("issue"))]
            comment = self._comment(payload.get("comment"))
            if actor is None:  # comment events may carry no user: the comment names one
                actor, own = self._actor(comment.get("updateAuthor") or comment.get("author"))
            own = own or self._our_comment(comment)
        elif event in LINK_EVENTS:
            keys = self._link_ends(payload.get("issueLink"))
        else:
            keys = []  # a project, a version, a property...: no item to judge again
        found = tuple(dict.fromkeys(k for k in keys if self._in_scope(k)))
        return Delivery(ident, event, found, actor, own)

    def _actor(self, user: Any) -> tuple[str | None, bool]:
        """How Jira names the user (accountId on Cloud, username on Data Center), and
        whether it is the account Tether's token acts as."""
        names = account_of(user)
        actor = names.get("accountId") or names.get("name") or names.get("key")
        return actor, bool(self.known.account & set(names.values()))

    def _key(self, issue: Any) -> str:
        key = issue.get("key") if isinstance(issue, dict) else None
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise Refused(400, f"{self.where}: the payload has no issue with a key")
        return key

    def _in_scope(self, key: str) -> bool:
        """In the configured projects; with a JQL restriction, also among the issues pulled."""
        if self.options.projects and key.rsplit("-", 1)[0] not in self.options.projects:
            return False
        if (self.options.jql or "").strip():
            return key in set(self.known.ids.values())
        return True

    def _items(self, changelog: Any) -> list[dict[str, Any]]:
        if changelog is None:
            return []
        items = changelog.get("items") if isinstance(changelog, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise Refused(400, f"{self.where}: the changelog has no list of items")
        return items

    def _only_our_labels(self, items: list[dict[str, Any]]) -> bool:
        """Whether every item changes labels, and only labels in Tether's namespace (Jira
        lists an issue's labels before and after, space-separated)."""
        mine = self.prefix + ":"
        for item in items:
            if (item.get("fieldId") or item.get("field")) != "labels":
                return False
            before = set(str(item.get("fromString") or "").split())
            after = set(str(item.get("toString") or "").split())
            changed = before ^ after
            if not changed or not all(label.startswith(mine) for label in changed):
                return False
        return True

    def _comment(self, comment: Any) -> dict[str, Any]:
        if not isinstance(comment, dict) or comment.get("id") in (None, ""):
            raise Refused(400, f"{self.where}: the payload has no comment with an id")
        return comment

    def _our_comment(self, comment: dict[str, Any]) -> bool:
        """Tether's comment: by the id memory names, its ``tether`` property, or the marker
        (ADF on Cloud, wiki text on Data Center)."""
        if str(comment["id"]) in self.known.comments:
            return True
        props = comment.get("properties")
        if isinstance(props, list) and any(isinstance(p, dict) and p.get("key") == MARKER_KEY
                                           for p in props):
            return True
        body = comment.get("body")
        text = adf_to_text(body) if isinstance(body, dict) else str(body or "")
        return text.lstrip().startswith(MARKER)

    def _link_ends(self, link: Any) -> list[str]:
        """The keys of a link's two issues, where the connector has pulled them."""
        ends = [link.get(side) for side in ("sourceIssueId", "destinationIssueId")] \
            if isinstance(link, dict) else []
        if len(ends) != 2 or not all(_issue_id(end) for end in ends):
            raise Refused(400, f"{self.where}: the payload has no issueLink with "
                               "sourceIssueId and destinationIssueId")
        return [key for end in ends if (key := self.known.ids.get(str(end)))]


def _issue_id(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, str) and value.isdigit())


def steps(name: str, options: JiraOptions, url: str) -> str:
    """How a Jira administrator makes Tether's webhook for source ``name``."""
    scope = " AND ".join(part for part in (
        f"project in ({', '.join(options.projects)})" if options.projects else "",
        f"({options.jql})" if options.jql else "") if part)
    return (f"a Jira administrator makes the webhook: Jira settings > System > WebHooks > "
            f"Create a WebHook; URL {url}; Secret: the value of ${options.webhook_secret_env} "
            "(a long random string, e.g. from `openssl rand -hex 32`, exported where tether "
            "serve runs); events Issue created, updated and deleted, Comment created, updated "
            f"and deleted, Issue link created and deleted; JQL {scope}; leave Exclude body "
            "unticked.")
