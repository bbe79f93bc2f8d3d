"""Performing Tether's write ops on Jira: one PUT per issue for its label changes, and one
comment per issue kept in place through the ``tether`` issue property (and found again by
the ``tether`` property the comment itself carries).

Issues are written concurrently, up to ``WORKERS`` at a time through the one ``jira``
client (its session pools connections); one issue's ops always go one after another, in
order. That fits Jira's documented limits: Cloud limits writes per issue
(RateLimit-Reason ``jira-per-issue-on-write``), which only ever sees one of Tether's writes
at a time, and bursts per endpoint and method (``jira-burst-based``), which a few requests
in flight stay under; Data Center's limit is an admin's per-user token bucket. Any 429 is
waited out (Retry-After) on the injected clock, by the call that got it."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from tether.sdk import OpKind, OpResult, SourceError, WriteOp, digest

from .annotations import VERSION, Marker, Shown
from .client import JiraClient
from .markup import adf_to_text, to_adf, to_wiki
from .recall import Recall

_LABEL_KINDS = (OpKind.ADD_LABEL, OpKind.REMOVE_LABEL)
_SPACE = re.compile(r"\s")
MAX_LABEL = 255
WORKERS = 4  # issues written at once


Written = tuple[Marker, str | None]  # Tether's comment as just written, and its text


class Writer:
    """Applies ops for one connector, keeping its memory of what issues show in step:
    ``shown`` (key -> labels and marker, as pulled) and ``written`` (key -> the comment
    Tether wrote in this session, which wins over an older pull). Each worker touches only
    its own issue's entries of these (and of ``recall``, Data Center's memory)."""

    def __init__(self, client: JiraClient, shown: dict[str, Shown],
                 written: dict[str, Written], marker_of: Callable[[str], Marker | None],
                 recall: Recall | None = None):
        self.client = client
        self.shown = shown
        self.written = written
        self.marker_of = marker_of  # the issue's marker now, fetched when nothing is cached
        self.recall = recall  # Data Center: the comment its marker names, kept between passes
        self.cloud = client.options.flavour == "cloud"

    def apply(self, ops: Sequence[WriteOp]) -> list[OpResult]:
        """One result per op, in order; a failing op never stops the others. Each issue's
        ops run in their order (its label ops as one PUT, where the first of them stands);
        up to WORKERS issues at once."""
        by_issue: dict[str, list[int]] = {}
        for i, op in enumerate(ops):
            by_issue.setdefault(op.key, []).append(i)
        batches = [[ops[i] for i in indexes] for indexes in by_issue.values()]
        if len(batches) > 1:
            with ThreadPoolExecutor(min(WORKERS, len(batches)),
                                    thread_name_prefix="tether-jira-write") as pool:
                done = list(pool.map(self._issue, batches))
        else:
            done = [self._issue(batch) for batch in batches]
        results: dict[int, OpResult] = {}
        for indexes, got in zip(by_issue.values(), done, strict=True):
            results.update(zip(indexes, got, strict=True))
        return [results[i] for i in range(len(ops))]

    def _issue(self, ops: list[WriteOp]) -> list[OpResult]:
        """The ops of one issue, in order; an unexpected error fails that op alone."""
        out: dict[int, OpResult] = {}
        labels = [i for i, op in enumerate(ops) if op.kind in _LABEL_KINDS]
        for i, op in enumerate(ops):
            if i in out:
                continue
            try:
                if op.kind in _LABEL_KINDS:
                    out.update(zip(labels, self._labels(op.key, [ops[j] for j in labels]),
                                   strict=True))
                else:
                    out[i] = self._guard(op, self._comment)
            except Exception as exc:  # a bug or an unwrapped library error: this op only
                group = labels if op.kind in _LABEL_KINDS else [i]
                out.update({j: OpResult(ops[j], False, f"{type(exc).__name__}: {exc}")
                            for j in group})
        return [out[i] for i in range(len(ops))]

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
            self._mark(op.key, marker)
        except SourceError as exc:
            return OpResult(op, False, f"{exc} (comment {comment_id} was written and carries "
                                       "Tether's comment property, so a recovering run finds "
                                       "it; only the issue's marker is missing)", comment_id)
        finally:  # the comment exists either way: never write a second one in this run
            self.written[op.key] = (marker, text)
            if self.recall is not None:
                self.recall.forget(op.key)  # its `updated` moved: list it next pass
        return OpResult(op, True, comment_id=comment_id)

    def _mark(self, key: str, marker: Marker) -> None:
        """PUT the issue's marker. Cloud: after every comment write, since its search reads
        the digest from it. Data Center reads the digest from the comment's own property (set
        by the write itself), so a marker already naming this comment is left as it is."""
        if self.recall is not None and self.recall.marker(key) == marker.comment_id:
            return
        self.client.set_marker(key, marker.value())
        if self.recall is not None:
            self.recall.marked(key, marker.comment_id)

    def _forget(self, key: str, comment_id: str) -> None:
        """A person deleted Tether's comment ``comment_id``: stop showing it as there."""
        if self.recall is not None:
            self.recall.forget(key)
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
