"""Performing Tether's write ops on Jira: one PUT per issue for its label changes, and one
comment per issue kept in place through the ``tether`` issue property (and found again by
the ``tether`` property the comment itself carries)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from tether.sdk import OpKind, OpResult, SourceError, WriteOp, digest

from .annotations import VERSION, Marker, Shown
from .client import JiraClient
from .markup import adf_to_text, to_adf, to_wiki

_LABEL_KINDS = (OpKind.ADD_LABEL, OpKind.REMOVE_LABEL)
_SPACE = re.compile(r"\s")
MAX_LABEL = 255


Written = tuple[Marker, str | None]  # Tether's comment as just written, and its text


class Writer:
    """Applies ops for one connector, keeping its memory of what issues show in step:
    ``shown`` (key -> labels and marker, as pulled) and ``written`` (key -> the comment
    Tether wrote in this session, which wins over an older pull)."""

    def __init__(self, client: JiraClient, shown: dict[str, Shown],
                 written: dict[str, Written], marker_of: Callable[[str], Marker | None]):
        self.client = client
        self.shown = shown
        self.written = written
        self.marker_of = marker_of  # the marker now, fetched when nothing is cached
        self.cloud = client.options.flavour == "cloud"

    def apply(self, ops: Sequence[WriteOp]) -> list[OpResult]:
        """One result per op, in order; a failing op never stops the others."""
        results: dict[int, OpResult] = {}
        labels: dict[str, list[int]] = defaultdict(list)
        for i, op in enumerate(ops):
            if op.kind in _LABEL_KINDS:
                labels[op.key].append(i)
        for key, indexes in labels.items():
            for i, result in zip(indexes, self._labels(key, [ops[i] for i in indexes]),
                                 strict=True):
                results[i] = result
        for i, op in enumerate(ops):
            if op.kind not in _LABEL_KINDS:
                results[i] = self._guard(op, self._comment)
        return [results[i] for i in range(len(ops))]

    def _labels(self, key: str, ops: list[WriteOp]) -> list[OpResult]:
        """All label changes of one issue in a single PUT (Jira rate-limits writes per issue)."""
        bad = {id(op): _label_problem(op.value) for op in ops if _label_problem(op.value)}
        good = [op for op in ops if id(op) not in bad]
        error = None
        if good:
            changes = [{"add" if op.kind is OpKind.ADD_LABEL else "remove": op.value}
                       for op in good]
            try:
                self.client.edit_labels(key, changes)
            except SourceError as exc:
                error = str(exc)
            else:
                if key in self.shown:
                    add = {op.value for op in good if op.kind is OpKind.ADD_LABEL}
                    remove = {op.value for op in good if op.kind is OpKind.REMOVE_LABEL}
                    self.shown[key] = self.shown[key].with_labels(add, remove)
        return [OpResult(op, False, bad[id(op)]) if id(op) in bad else
                OpResult(op, error is None, error) for op in ops]

    def _guard(self, op: WriteOp, do: Callable[[WriteOp], OpResult]) -> OpResult:
        try:
            return do(op)
        except SourceError as exc:
            return OpResult(op, False, str(exc))

    def _comment(self, op: WriteOp) -> OpResult:
        """Create or edit Tether's one comment. An edit of a comment a person deleted writes
        nothing and reports it ``gone``; a create edits Tether's comment when one exists."""
        body = to_adf(op.value) if self.cloud else to_wiki(op.value)
        value = {"v": VERSION, "digest": digest(op.value)}  # the comment's own property
        if op.kind is OpKind.UPDATE_COMMENT and op.comment_id:
            saved = self.client.update_comment(op.key, op.comment_id, body, value)
            if saved is None:
                self._forget(op.key, op.comment_id)
                return OpResult(op, True, gone=True)
        else:  # never a second comment: a marker means it exists already
            marker = self.marker_of(op.key)
            saved = None
            if marker is not None:  # None when it was deleted: then a new one is right
                saved = self.client.update_comment(op.key, marker.comment_id, body, value)
            if saved is None:
                saved = self.client.add_comment(op.key, body, value)
        comment_id = str(saved.get("id"))
        marker = Marker(comment_id, digest(op.value))
        text = _text(saved.get("body"))
        try:
            self.client.set_marker(op.key, marker.value())
        except SourceError as exc:
            return OpResult(op, False, f"{exc} (comment {comment_id} was written and carries "
                                       "Tether's comment property, so a recovering run finds "
                                       "it; only the issue's marker is missing)", comment_id)
        finally:  # the comment exists either way: never write a second one in this run
            self.written[op.key] = (marker, text)
        return OpResult(op, True, comment_id=comment_id)

    def _forget(self, key: str, comment_id: str) -> None:
        """A person deleted Tether's comment ``comment_id``: stop showing it as there."""
        if key in self.written and self.written[key][0].comment_id == comment_id:
            del self.written[key]
        shown = self.shown.get(key)
        if shown is not None and shown.marker and shown.marker.comment_id == comment_id:
            self.shown[key] = replace(shown, marker=None, text=None)


def _label_problem(label: str) -> str | None:
    """Why Jira would refuse ``label``, checked before any request."""
    if _SPACE.search(label):
        return f"Jira labels cannot contain spaces: {label!r}; change the label prefix or rule"
    if len(label) > MAX_LABEL:
        return f"Jira labels are at most {MAX_LABEL} characters: {label[:40]!r}..."
    return None


def _text(body: Any) -> str | None:
    return adf_to_text(body) if body is not None else None
