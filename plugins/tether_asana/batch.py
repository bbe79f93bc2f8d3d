"""Tether's tag and story writes through Asana's Batch API: ``POST /batch`` with up to 10
actions, answered 200 with one ``{status_code, headers, body}`` per action, in order, so one
refused action fails only its own op. A request over a rate limit fails whole with 429
(and is retried whole); a lone action goes to its endpoint directly, which costs the same
one request (developers.asana.com/docs/batch-requests)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tether.sdk import SourceError

from .client import AsanaClient
from .failures import AsanaHTTPError, Where, error_message, source_error, transient

MAX_ACTIONS = 10  # "The maximum number of actions allowed in a single batch request is 10"


@dataclass(frozen=True)
class Action:
    """One write as a batch action. ``target`` names what it changes (a task's tag, a task's
    story): two actions on one target never share a request, since Asana runs a batch's
    actions in parallel, in no set order."""

    method: str  # "POST", "PUT"
    path: str  # relative to the API base, no query: "/tasks/1/addTag"
    data: dict[str, Any]
    where: Where
    target: str
    fields: tuple[str, ...] = ()  # opt_fields of the answer

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method.lower(), "relative_path": self.path,
                               "data": self.data}
        if self.fields:
            out["options"] = {"fields": list(self.fields)}
        return out


@dataclass(frozen=True)
class Answer:
    """An action's own status and body."""

    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def data(self) -> dict[str, Any]:
        data = self.body.get("data")
        return data if isinstance(data, dict) else {}


@dataclass
class Item:
    """An action to send (None: nothing to send), how to decide it again before a resend (a
    create looks for the story a lost answer may have made), and how it ended: ``answer``,
    or ``error`` when its request failed as a whole even after retries."""

    action: Action | None
    recheck: Callable[[], Action | None] | None = None
    answer: Answer | None = None
    error: str | None = None

    def failure(self, client: AsanaClient) -> str | None:
        """What went wrong, as the user reads it; None when it worked (or needed nothing)."""
        if self.error is not None:
            return self.error
        if self.answer is None or self.answer.ok or self.action is None:
            return None
        exc = AsanaHTTPError(self.answer.status, error_message(self.answer.body)
                             or "the action was refused")
        return str(source_error(exc, self.action.where, client.token_env, client.base_url))


def run(client: AsanaClient, items: Sequence[Item], where: Where) -> None:
    """Send the items' actions in order, up to 10 a request, each request retried whole on
    429, 5xx and network failures. Before a resend, and before sending an action whose
    target an earlier request wrote, the item decides again (a create looks for the story
    that write, or a lost answer, left)."""
    written: set[str] = set()
    for chunk in _chunks([i for i in items if i.action is not None]):
        attempts = 0
        stale = [i for i in chunk if i.action is not None and i.action.target in written]
        written |= {i.action.target for i in chunk if i.action is not None}

        def unit(chunk: list[Item] = chunk, stale: list[Item] = stale
                 ) -> list[tuple[Item, Answer]]:
            nonlocal attempts
            attempts += 1
            for item in chunk if attempts > 1 else stale:
                if item.recheck is not None:
                    item.action = item.recheck()
            live = [i for i in chunk if i.action is not None]
            answers = send(client, [i.action for i in live if i.action is not None])
            return list(zip(live, answers, strict=True))

        lone = chunk[0].action if len(chunk) == 1 else None
        try:
            answered = client.retrying(unit, lone.where if lone is not None else where)
        except SourceError as exc:
            for item in chunk:
                item.error = str(exc)
            continue
        for item, answer in answered:
            item.answer = answer


def send(client: AsanaClient, actions: Sequence[Action]) -> list[Answer]:
    """One request, no retry: the actions' answers, in order. A transient failure of the
    request (429, 5xx, network) raises, so the caller retries it whole."""
    if not actions:
        return []
    if len(actions) == 1:
        action = actions[0]
        params = {"opt_fields": ",".join(action.fields)} if action.fields else None
        try:
            body = client.send(action.method, action.path, params, action.data)
        except AsanaHTTPError as exc:
            if transient(exc) is not None:
                raise
            return [Answer(exc.status, exc.body or {"errors": [{"message": exc.message}]})]
        return [Answer(200, body)]  # some 2xx: send raises for anything else
    body = client.send("POST", "/batch", None, {"actions": [a.payload() for a in actions]})
    results = body.get("data")
    if not isinstance(results, list) or len(results) != len(actions):
        raise AsanaHTTPError(502, "the batch answer does not hold one result per action")
    return [Answer(int(r.get("status_code") or 0) if isinstance(r, dict) else 0,
                   r.get("body") or {} if isinstance(r, dict) else {}) for r in results]


def _chunks(items: list[Item]) -> list[list[Item]]:
    """Consecutive runs of at most 10 items, a run ending before a target it already has."""
    chunks: list[list[Item]] = []
    targets: set[str] = set()
    for item in items:
        assert item.action is not None
        if not chunks or len(chunks[-1]) == MAX_ACTIONS or item.action.target in targets:
            chunks.append([])
            targets = set()
        chunks[-1].append(item)
        targets.add(item.action.target)
    return chunks
