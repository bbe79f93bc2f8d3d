"""Parser for what ``gh issue list --json ...`` (or ``gh pr list --json ...``) prints."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from tether.sdk import Task

from .reading import Context, Problems, item_lines, load_json
from .values import parse_date

_HOW = ("run gh issue list --state all --limit 1000 --json number,title,body,state,labels,"
        "assignees,milestone,url,createdAt,updatedAt,closedAt,author > FILE")
_REPO = re.compile(r"https?://[^/]+/([^/]+/[^/]+)/(?:issues|pull)/\d+")
_PR_ONLY = ("isDraft", "mergedAt", "headRefName", "baseRefName", "reviewDecision")
_DATES = {"created": "createdAt", "updated": "updatedAt", "resolved": "closedAt"}


def _names(value: Any, field: str) -> list[str]:
    """gh's ``[{"name": ...}]`` / ``[{"login": ...}]`` lists (plain strings accepted too)."""
    if not isinstance(value, list):
        raise ValueError("must be a list, as gh prints it")
    out = []
    for entry in value:
        name = entry.get(field) if isinstance(entry, dict) else entry
        if not isinstance(name, str) or not name:
            raise ValueError(f"each entry needs a '{field}'")
        out.append(name)
    return out


def parse_gh_json(text: str, ctx: Context) -> list[Task]:
    """Every issue or pull request; OPEN is todo (in_progress when assigned or a PR)."""
    problems = Problems(ctx.file)
    data = load_json(text, problems)
    problems.raise_if_any()
    if not isinstance(data, list):
        problems.add(1, 1, "", f"expected a JSON array of issues; {_HOW}")
        problems.raise_if_any()
    lines = item_lines(text, text.index("["))
    tasks = [task for index, item in enumerate(data)
             if (task := _task(index, item, lines[index], ctx, problems))]
    problems.raise_if_any()
    return tasks


def _task(index: int, item: Any, line: int, ctx: Context, problems: Problems) -> Task | None:
    """One gh item as a Task, or None after recording what is wrong with it."""
    before = len(problems.items)

    def bad(field: str, message: str) -> None:
        problems.add(line, 1, f"[{index}].{field}" if field else f"[{index}]", message)

    def names(field: str, attr: str) -> list[str]:
        try:
            return _names(item.get(field) or [], attr)
        except ValueError as exc:
            bad(field, str(exc))
            return []

    if not isinstance(item, dict):
        bad("", f"each item must be an object; {_HOW}")
        return None
    number, title, state = item.get("number"), item.get("title"), item.get("state")
    if not isinstance(number, int) or isinstance(number, bool):
        bad("number", f"must be the issue number; {_HOW}")
    elif not problems.unique(str(number), line, 1, f"[{index}].number"):
        return None
    if not isinstance(title, str) or not title.strip():
        bad("title", f"is missing or empty; {_HOW}")
        title = ""
    if not isinstance(state, str) or state.upper() not in ("OPEN", "CLOSED", "MERGED"):
        bad("state", f"must be OPEN, CLOSED or MERGED, not {state!r}; {_HOW}")
        state = ""
    labels, assignees = names("labels", "name"), names("assignees", "login")
    dates: dict[str, datetime | None] = {}
    for attr, field in _DATES.items():
        value = item.get(field) or (item.get("mergedAt") if attr == "resolved" else None)
        try:
            dates[attr] = parse_date(value) if isinstance(value, str) else None
        except ValueError as exc:
            bad(field, str(exc))
    if len(problems.items) > before:
        return None
    key = str(number)
    given_url = item.get("url")
    url = given_url if isinstance(given_url, str) else ctx.url(key)
    is_pr = any(field in item for field in _PR_ONLY) or "/pull/" in url
    repo = _REPO.match(url)
    custom: dict[str, Any] = {}
    if isinstance(item.get("milestone"), dict) and item["milestone"].get("title"):
        custom["milestone"] = item["milestone"]["title"]
    if isinstance(item.get("author"), dict) and item["author"].get("login"):
        custom["author"] = item["author"]["login"]
    if assignees:
        custom["assignees"] = assignees
    if is_pr:
        custom["draft"] = bool(item.get("isDraft"))
    open_category = "in_progress" if assignees or is_pr else "todo"
    return Task(
        source=ctx.source, key=key, title=title.strip(), url=url, body=item.get("body") or "",
        type="pull request" if is_pr else "issue", status=state.upper(),
        status_category=open_category if state.upper() == "OPEN" else "done",
        assignee=assignees[0] if assignees else None,
        project=ctx.project or (repo[1] if repo else ""), labels=tuple(labels), custom=custom,
        raw=item, created=dates["created"], updated=dates["updated"], resolved=dates["resolved"],
    )
