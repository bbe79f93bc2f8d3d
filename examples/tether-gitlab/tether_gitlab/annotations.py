"""Tether's labels and its one note on GitLab issues: reading them back, writing them.

Labels come from the issue payload, or from the answer to Tether's own last edit of it.
Tether's note is the oldest user note whose body starts with ``MARKER`` (an HTML comment
GitLab does not display); notes are listed only where the payload counts user notes and may
have changed since Tether last listed them (see memory.py), except when recovering from an
interrupted write and before creating one (never a second).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import partial

from tether.sdk import (
    MARKER,
    CurrentAnnotation,
    OpKind,
    OpResult,
    SourceError,
    Task,
    WriteOp,
    at_mentions,
    digest,
    stored_body,
    stored_digest,
    with_marker,
)

from .client import GitLabClient, HttpError, NotFound
from .memory import IssueState, Memory, Seen

MAX_LABEL = 255
MAX_BODY = 1_000_000  # GitLab's longest note
# GitLab's username syntax, and what would lengthen a @username typed right after one.
USERNAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_-])?")
EXTENDS = re.compile(r"[A-Za-z0-9_/-]|\.+[A-Za-z0-9_-]")


def note_digest(body: str) -> str:
    """The digest the planner compares for a stored body: its trailer's, else its own."""
    return stored_digest(body) or digest(body)


def gitlab_body(value: str) -> str:
    """The note to store for ``value``: mention tokens as ``@username``, every other mention
    inert (GitLab finds mentions after rendering), the digest in a trailer if it changed."""
    return stored_body(value, at_mentions(with_marker(value), USERNAME, EXTENDS), MAX_BODY)


class Annotator:
    """Reads and writes one project's annotations through a :class:`GitLabClient`."""

    def __init__(self, client: GitLabClient):
        self.client = client
        self.labels: dict[str, list[str]] = {}  # iid -> labels as Tether's last edit left them
        self.notes: dict[str, tuple[str, str] | None] = {}  # iid -> (id, body) Tether wrote

    def pulled(self, key: str) -> None:
        """A fresh payload of ``key`` arrived: it shows Tether's writes."""
        self.labels.pop(key, None)
        self.notes.pop(key, None)

    def read(self, tasks: Sequence[Task], prefix: str, memory: Memory | None = None,
             recovering: bool = False, known: Mapping[str, str | None] | None = None
             ) -> dict[str, CurrentAnnotation]:
        """By iid: labels under ``prefix`` and Tether's note, listed where the payload counts
        user notes, unless ``known`` says Tether never wrote one there, or ``memory`` listed
        Tether's note when the issue showed the note count and ``updated_at`` it shows now.
        ``recovering`` lists them for every task and trusts neither."""
        known = {} if recovering or known is None else known
        memory = memory if memory is not None else Memory({})
        self.client.token()
        out = {}
        for task in tasks:
            raw = task.raw.get("labels") if task.raw else None
            labels = self.labels.get(task.key, raw if raw is not None else list(task.labels))
            mine = frozenset(str(x) for x in labels if str(x).startswith(f"{prefix}:"))
            found = None if recovering else self.notes.get(task.key)
            never = task.key in known and known[task.key] is None
            state = IssueState.of(task)
            seen = None if recovering or never else memory.seen(task.key)
            if found is None and seen is not None and state == seen.state \
                    and known.get(task.key, seen.note_id) == seen.note_id:
                out[task.key] = CurrentAnnotation(mine, None, seen.note_id, seen.digest)
                continue
            count = task.raw.get("user_notes_count") if task.raw else task.custom.get("notes")
            if found is None and (recovering or (count != 0 and not never)):
                try:
                    found, headers = self.client.call(partial(self._find, task.key),
                                                      *self._where(task.key))
                except NotFound:
                    found, headers = None, {}  # the issue is gone: its writes will fail
                if found is not None and state is not None and state.settled_by(headers):
                    memory.remember(task.key, Seen(found[0], note_digest(found[1]), state))
                else:
                    memory.forget(task.key)
            elif found is None:
                memory.forget(task.key)  # no note here, as far as Tether knows
            note_id, body = found or (None, None)
            out[task.key] = CurrentAnnotation(mine, body, note_id, stored_digest(body))
        if not recovering:
            memory.keep_only({t.key for t in tasks})
        return out

    def _find(self, iid: str) -> tuple[tuple[str, str] | None, Mapping[str, str]]:
        """Tether's note on ``iid``, oldest first, with the headers of the page that held it
        (of the last page when none did); each page sent once (callers retry)."""
        for page, _ in self.client.pages(f"{self.client.project}/issues/{iid}/notes",
                                         {"order_by": "created_at", "sort": "asc"},
                                         retried=False):
            for note in page:
                body = note.get("body") or ""
                if not note.get("system") and body.lstrip().startswith(MARKER):
                    return (str(note["id"]), body), self.client.headers
        return None, self.client.headers

    def _where(self, iid: str) -> tuple[str, str]:
        where = f"{self.client.options.project}#{iid}"
        return where, (f"issue {where} not found; it may have been deleted or moved, or "
                       "options.project names the wrong project")

    def apply(self, ops: Sequence[WriteOp], memory: Memory | None = None) -> list[OpResult]:
        """One OpResult per op, in order; a failing op never stops the others. ``memory``
        forgets each issue written to (tried): its notes are listed again next pass."""
        self.client.token()
        memory = memory if memory is not None else Memory({})
        results: dict[int, OpResult] = {}
        for key in dict.fromkeys(op.key for op in ops):
            memory.forget(key)
            mine = [(i, op) for i, op in enumerate(ops) if op.key == key]
            if not key.isdigit():
                results.update((i, OpResult(op, False, f"GitLab {key}: not an issue iid"))
                               for i, op in mine)
                continue
            self._labels(key, [(i, op) for i, op in mine if "label" in op.kind], results)
            for i, op in [(i, op) for i, op in mine if "comment" in op.kind]:
                try:
                    results[i] = self._write_note(key, op)
                except SourceError as err:
                    results[i] = OpResult(op, False, str(err))
        return [results[i] for i in range(len(ops))]

    def _labels(self, iid: str, ops: list[tuple[int, WriteOp]],
                results: dict[int, OpResult]) -> None:
        """Every label change of one issue in one edit (GitLab creates missing labels)."""
        ready = []
        for i, op in ops:
            if "," in op.value or len(op.value) > MAX_LABEL:
                results[i] = OpResult(op, False, f"GitLab {iid}: label {op.value!r} has a comma "
                                      f"or more than {MAX_LABEL} characters")
            else:
                ready.append((i, op))
        if not ready:
            return
        add = [op.value for _, op in ready if op.kind is OpKind.ADD_LABEL]
        remove = [op.value for _, op in ready if op.kind is OpKind.REMOVE_LABEL]
        edit = {"add_labels": ",".join(add), "remove_labels": ",".join(remove)}
        try:
            issue, _ = self.client.request("PUT", f"{self.client.project}/issues/{iid}",
                                           *self._where(iid), body={k: v for k, v in
                                                                    edit.items() if v})
        except SourceError as err:
            results.update((i, OpResult(op, False, str(err))) for i, op in ready)
            return
        self.labels[iid] = list(issue.get("labels") or []) if isinstance(issue, dict) else []
        results.update((i, OpResult(op, True)) for i, op in ready)

    def _write_note(self, iid: str, op: WriteOp) -> OpResult:
        """Edit Tether's note in place, or create it when the issue has none: never a second.
        An UPDATE whose note a person deleted writes nothing and reports it gone."""
        body = gitlab_body(op.value)
        mine = self.notes.get(iid)
        target = op.comment_id or (mine[0] if mine else None)
        if target is not None and not target.isdigit():
            raise SourceError(f"GitLab {iid}: {target!r} is not a GitLab note id")
        updating = op.kind is OpKind.UPDATE_COMMENT and op.comment_id is not None
        notes = f"{self.client.project}/issues/{iid}/notes"

        def write() -> str | None:  # retried whole: a retry looks again before creating
            if target is not None:
                try:
                    self.client.send("PUT", f"{notes}/{target}", body={"body": body})
                    return target
                except HttpError as exc:
                    if exc.status != 404:
                        raise
                    if updating:
                        return None  # a person deleted it: respect that
            found, _ = self._find(iid)
            if found is not None:
                self.client.send("PUT", f"{notes}/{found[0]}", body={"body": body})
                return found[0]
            created, _ = self.client.send("POST", notes, body={"body": body})
            return str(created["id"])

        note_id = self.client.call(write, *self._where(iid))
        self.notes[iid] = None if note_id is None else (note_id, body)
        return OpResult(op, True, comment_id=note_id, gone=note_id is None)
