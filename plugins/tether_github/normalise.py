"""A GitHub issue payload (REST, as the issues list returns it) as a Tether Task.

Reads only what the list payload carries, so normalising never costs a request. GitHub
has no estimates, components or typed links in that payload: those stay empty.
"""

from __future__ import annotations

import re
from typing import Any

from tether.sdk import Task, parse_datetime

_ISSUE_URL = re.compile(r"/repos/([^/]+/[^/]+)/issues/(\d+)$")


def task_key(repo: str, number: int | str) -> str:
    """GitHub's own cross-repository reference: ``owner/name#12``."""
    return f"{repo}#{number}"


def split_key(key: str) -> tuple[str, int]:
    """``owner/name#12`` -> (``owner/name``, 12); ValueError for anything else."""
    repo, sep, number = key.rpartition("#")
    if not sep or repo.count("/") != 1 or not number.isdigit():
        raise ValueError(f"{key!r} is not a GitHub item key like owner/name#12")
    return repo, int(number)


def is_pull_request(item: dict[str, Any]) -> bool:
    """The issues list marks pull requests with a ``pull_request`` key (absent on issues)."""
    return isinstance(item.get("pull_request"), dict)


def _login(user: Any) -> str | None:
    return user.get("login") if isinstance(user, dict) else None


def to_task(source: str, repo: str, item: dict[str, Any]) -> Task:
    """One issue or pull request; open is todo, or in_progress when assigned or a PR."""
    pr = is_pull_request(item)
    merged_at = (item.get("pull_request") or {}).get("merged_at") if pr else None
    assignees = [login for a in item.get("assignees") or [] if (login := _login(a))]
    assignee = _login(item.get("assignee")) or (assignees[0] if assignees else None)
    # Some webhook payloads (issues.pinned) omit state: closed_at still tells.
    state = str(item.get("state") or ("closed" if item.get("closed_at") else "open"))
    status = "merged" if merged_at else state
    # The comment count and GitHub's own update stamp survive in the state store (raw does
    # not): annotation reads compare them with what the connector remembers (see memory.py).
    # ``updated`` may not serve: the pipeline takes Tether's own edits out of it.
    custom: dict[str, Any] = {"author": _login(item.get("user")), "assignees": assignees,
                              "comments": int(item.get("comments") or 0)}
    if isinstance(item.get("updated_at"), str):
        custom["updated_at"] = item["updated_at"]
    if isinstance(item.get("milestone"), dict) and item["milestone"].get("title"):
        custom["milestone"] = item["milestone"]["title"]
    if item.get("state_reason"):
        custom["state_reason"] = item["state_reason"]
    if isinstance(item.get("type"), dict) and item["type"].get("name"):
        custom["issue_type"] = item["type"]["name"]  # GitHub's organisation issue types
    if pr:
        custom["draft"] = bool(item.get("draft"))
    parent = _ISSUE_URL.search(item.get("parent_issue_url") or "")
    return Task(
        source=source, key=task_key(repo, item["number"]), title=str(item.get("title") or ""),
        url=str(item.get("html_url") or ""), body=item.get("body") or "",
        type="pull request" if pr else "issue", status=status,
        status_category="done" if state == "closed" else
        ("in_progress" if assignee or pr else "todo"),
        assignee=assignee, project=repo,
        labels=tuple(lbl["name"] if isinstance(lbl, dict) else str(lbl)
                     for lbl in item.get("labels") or []),
        parent=task_key(parent[1], parent[2]) if parent else None,
        created=parse_datetime(item.get("created_at")),
        updated=parse_datetime(item.get("updated_at")),
        resolved=parse_datetime(item.get("closed_at")),
        custom=custom, raw=item,
    )
