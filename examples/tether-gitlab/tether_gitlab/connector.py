"""The ``gitlab`` connector: one project's issues, via GitLab's REST API v4."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

from tether.sdk import (
    Capabilities,
    Check,
    Clock,
    Connector,
    CurrentAnnotation,
    OpResult,
    Options,
    PullResult,
    Task,
    Watermark,
    WriteOp,
    parse_datetime,
)

from . import doctor
from .annotations import MAX_LABEL, Annotator
from .client import GitLabClient
from .memory import Memory
from .options import GitLabOptions


def _username(user: Any) -> str | None:
    return user.get("username") if isinstance(user, dict) else None


def to_task(source: str, item: dict[str, Any]) -> Task:
    """An issue as the list returns it; keyed by its iid (its number in the project)."""
    assignees = [name for a in item.get("assignees") or [] if (name := _username(a))]
    assignee = assignees[0] if assignees else _username(item.get("assignee"))
    state = str(item.get("state") or "opened")
    weight = item.get("weight")  # GitLab's estimate (Premium); null elsewhere
    # The user notes' count and GitLab's own update stamp survive in the state store (raw
    # does not): annotation reads compare them with what the connector remembers (memory.py).
    custom: dict[str, Any] = {"author": _username(item.get("author")), "assignees": assignees,
                              "notes": int(item.get("user_notes_count") or 0)}
    if isinstance(item.get("updated_at"), str):
        custom["updated_at"] = item["updated_at"]
    if isinstance(item.get("milestone"), dict):
        custom["milestone"] = item["milestone"].get("title")
    full = str((item.get("references") or {}).get("full") or "")
    return Task(
        source=source, key=str(item["iid"]), title=str(item.get("title") or ""),
        url=str(item.get("web_url") or ""), body=item.get("description") or "",
        type=str(item.get("issue_type") or "issue"), status=state,
        status_category="done" if state == "closed" else ("in_progress" if assignee else "todo"),
        assignee=assignee, project=full.rpartition("#")[0],
        labels=tuple(lbl["name"] if isinstance(lbl, dict) else str(lbl)
                     for lbl in item.get("labels") or []),
        estimate=float(weight) if isinstance(weight, int | float) else None,
        created=parse_datetime(item.get("created_at")),
        updated=parse_datetime(item.get("updated_at")),
        resolved=parse_datetime(item.get("closed_at")), custom=custom, raw=item)


class GitLabConnector(Connector):
    """Full pulls list every issue; incremental ones use ``updated_after`` (on or after),
    re-reading the watermark's overlap, oldest change first."""

    type_name = "gitlab"
    options_model = GitLabOptions
    capabilities = Capabilities(labels=True, comments=True, comments_editable=True,
                                markup="markdown", mentions="username", max_label_length=MAX_LABEL)
    options: GitLabOptions

    def __init__(self, name: str, options: Options, base_dir: Path, clock: Clock | None = None):
        super().__init__(name, options, base_dir, clock)
        self.client = GitLabClient(self.options, self.clock)
        self.annotator = Annotator(self.client)

    def pull(self, cursor: str | None) -> PullResult:
        mark = Watermark.resume(cursor)
        since = mark.since()
        params = {"order_by": "updated_at", "sort": "asc"}
        if since is not None:
            params["updated_after"] = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        project = self.options.project
        missing = f"project {project} not found; check options.project (and that the token " \
                  "can see it)"
        pulled: list[Task] = []
        tasks: list[Task] = []
        for items, total in self.client.pages(f"{self.client.project}/issues", params,
                                              project, missing):
            for item in items:
                task = to_task(self.name, item)
                self.annotator.pulled(task.key)
                pulled.append(task)
                if mark.is_new(task):
                    tasks.append(task)
            self.report_progress(len(pulled), total)
        return PullResult(tasks, mark.advance(pulled).encode(), complete=since is None)

    def diagnose(self) -> list[Check]:
        """Token, sign-in, the project's read and write access and the rate limit; read-only."""
        return doctor.diagnose(self.options, self.client)

    def read_annotations(self, tasks: Sequence[Task], prefix: str) -> dict[str, CurrentAnnotation]:
        """Labels from the payloads; Tether's note listed only where user notes exist, Tether
        may have written one (``known_comments``) and ``memory`` cannot vouch that the notes
        are as Tether last listed them (same count and ``updated_at``)."""
        return self.annotator.read(tasks, prefix, Memory(self.memory), known=self.known_comments)

    def recover(self, tasks: Sequence[Task], prefix: str) -> dict[str, CurrentAnnotation]:
        """As read_annotations, but notes are listed for every task and nothing is trusted."""
        return self.annotator.read(tasks, prefix, Memory(self.memory), recovering=True)

    def apply(self, ops: Sequence[WriteOp]) -> list[OpResult]:
        """Per issue: one edit for all label changes, then Tether's note, in place."""
        return self.annotator.apply(ops, Memory(self.memory))
