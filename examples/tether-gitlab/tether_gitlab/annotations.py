"""Tether's labels and its one note on GitLab issues: reading them back, writing them.

Labels come from the issue payload, or from the answer to Tether's own last edit of it.
Tether's note is the oldest user note whose body starts with ``MARKER`` (an HTML comment
GitLab does not display); notes are listed only where the payload counts user notes, except
when recovering from an interrupted write and before creating one (never a second).
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
    stored_body,
    stored_digest,
    with_marker,
)

from .client import GitLabClient, HttpError, NotFound

MAX_LABEL = 255
MAX_BODY = 1_000_000  # GitLab's longest note
# GitLab's username syntax, and what would lengthen a @username typed right after one.
USERNAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_-])?")
EXTENDS = re.compile(r"[A-Za-z0-9_/-]|\.+[A-Za-z0-9_-]")


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

    def read(self, tasks: Sequence[Task], prefix: str, recovering: bool = False,
             known: Mapping[str, str | None] | None = None) -> dict[str, CurrentAnnotation]:
        known = {} if recovering or known is None else known
        self.client.token()
        out = {}
        for task in tasks:
            raw = task.raw.get("labels") if task.raw else None
            labels = self.labels.get(task.key, raw if raw is not None else list(task.labels))
            found = None if recovering else self.notes.get(task.key)
            never = task.key in known and known[task.key] is None
            count = task.raw.get("user_notes_count") if task.raw else task.custom.get("notes")
            if found is None and (recovering or (count != 0 and not never)):
                try:
                    found = self.client.call(partial(self._find, task.key),
                                             *self._where(task.key))
                except NotFound:
                    found = None  # the issue is gone: its writes will fail and say so
            note_id, body = found or (None, None)
            out[task.key] = CurrentAnnotation(
                frozenset(str(x) for x in labels if str(x).startswith(f"{prefix}:")), body,
                note_id, stored_digest(body))
        return out

    def _find(self, iid: str) -> tuple[str, str] | None:
        """Tether's note on ``iid``, oldest first; each page sent once (callers retry)."""
        for page, _ in self.client.pages(f"{self.client.project}/issues/{iid}/notes",
                                         {"order_by": "created_at", "sort": "asc"},
                                         retried=False):
            for note in page:
                body = note.get("body") or ""
                if not note.get("system") and body.lstrip().startswith(MARKER):
                    return str(note["id"]), body
        return None

    def _where(self, iid: str) -> tuple[str, str]:
        where = f"{self.client.options.project}#{iid}"
        return where, (f"issue {where} not found; it may have been deleted or moved, or "
                       "options.project names the wrong project")

    def apply(self, ops: Sequence[WriteOp]) -> list[OpResult]:
        """One OpResult per op, in order; a failing op never stops the others."""
        self.client.token()
        results: dict[int, OpResult] = {}
        for key in dict.fromkeys(op.key for op in ops):
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
            found = self._find(iid)
            if found is not None:
                self.client.send("PUT", f"{notes}/{found[0]}", body={"body": body})
                return found[0]
            created, _ = self.client.send("POST", notes, body={"body": body})
            return str(created["id"])

        note_id = self.client.call(write, *self._where(iid))
        self.notes[iid] = None if note_id is None else (note_id, body)
        return OpResult(op, True, comment_id=note_id, gone=note_id is None)
