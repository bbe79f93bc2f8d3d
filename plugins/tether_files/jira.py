"""Parser for Jira's "Export Excel CSV (all fields)": repeated columns hold multi-values."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from typing import Any, TypeVar

from tether.sdk import Link, Task

from .reading import Context, Problems, csv_rows
from .values import category_from_name, infer_category, parse_date, parse_number, scalar

T = TypeVar("T")
_HOW = "export with Jira's 'Export Excel CSV (all fields)'"
_CUSTOM = re.compile(r"Custom field \((.+)\)")
_LINK = re.compile(r"(Inward|Outward) issue link \((.+)\)")
_STORY_POINTS = ("Custom field (Story Points)", "Custom field (Story point estimate)")
_EPIC_LINK = "Custom field (Epic Link)"
# Jira's built-in link types: (outward description, inward description).
_LINK_TYPES = {
    "blocks": ("blocks", "is blocked by"), "cloners": ("clones", "is cloned by"),
    "duplicate": ("duplicates", "is duplicated by"), "relates": ("relates to", "relates to"),
    "problem/incident": ("causes", "is caused by"),
}
# Plain columns worth keeping for rules, under a stable lower-case name.
_EXTRA = {"Priority": "priority", "Reporter": "reporter", "Resolution": "resolution"}
_DATES = {"created": "Created", "updated": "Updated", "resolved": "Resolved"}


def _link_type(direction: str, name: str) -> str:
    outward, inward = _LINK_TYPES.get(name.lower(), (name.lower(), f"{name.lower()} (inward)"))
    return outward if direction == "Outward" else inward


class _Sheet:
    """The header of one export: column name -> every index it occupies."""

    def __init__(self, header: list[str]):
        self.width = len(header)
        self.cols: dict[str, list[int]] = defaultdict(list)
        for index, name in enumerate(header):
            self.cols[name.strip()].append(index)

    def all(self, cells: list[str], name: str) -> list[str]:
        """Non-empty values of every column called ``name``."""
        return [cells[i] for i in self.cols.get(name, ()) if cells[i]]

    def one(self, cells: list[str], name: str) -> str:
        found = self.all(cells, name)
        return found[0] if found else ""

    def column(self, name: str) -> int:
        return self.cols[name][0] + 1 if name in self.cols else 1


def parse_jira_csv(text: str, ctx: Context) -> list[Task]:
    """Every issue of a Jira CSV export; Parent/Epic Link ids are turned into issue keys."""
    problems = Problems(ctx.file)
    rows = list(csv_rows(text, problems))
    if not rows:
        problems.add(1, 1, "", f"the file is empty; {_HOW}")
    problems.raise_if_any()
    sheet = _Sheet(rows[0][1])
    for required in ("Issue key", "Summary"):
        if required not in sheet.cols:
            problems.add(1, 1, required, f"the header has no '{required}' column; {_HOW}")
    problems.raise_if_any()
    records = []
    for line, cells in rows[1:]:
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > sheet.width:
            problems.add(line, sheet.width + 1, "", f"{len(cells)} cells but the header has "
                                                    f"{sheet.width}; re-export the file")
            continue
        records.append((line, [c.strip() for c in cells] + [""] * (sheet.width - len(cells))))
    # Newer exports put the parent's numeric Issue id in Parent; rules want keys.
    key_of = {sheet.one(c, "Issue id"): sheet.one(c, "Issue key") for _, c in records}
    type_of = {sheet.one(c, "Issue key"): sheet.one(c, "Issue Type").lower() for _, c in records}
    key_of.pop("", None)
    tasks = []
    for line, cells in records:
        task = _task(sheet, line, cells, ctx, problems, key_of, type_of)
        if task:
            tasks.append(task)
    problems.raise_if_any()
    return tasks


def _task(sheet: _Sheet, line: int, cells: list[str], ctx: Context, problems: Problems,
          key_of: dict[str, str], type_of: dict[str, str]) -> Task | None:
    """One row as a Task, or None after recording why it cannot be one."""
    def check(name: str, parse: Callable[[str], T]) -> T | None:
        return problems.check(line, sheet.column(name), name, parse, sheet.one(cells, name))

    key, title = sheet.one(cells, "Issue key"), sheet.one(cells, "Summary")
    for name, value in (("Issue key", key), ("Summary", title)):
        if not value:
            problems.add(line, sheet.column(name), name, "is empty; every issue needs one")
    if not (key and title and problems.unique(key, line, sheet.column("Issue key"), "Issue key")):
        return None
    status = sheet.one(cells, "Status")
    category = (check("Status Category", category_from_name)
                if sheet.one(cells, "Status Category") else infer_category(status))
    points = next((name for name in _STORY_POINTS if sheet.one(cells, name)), None)
    parent_cell = sheet.one(cells, "Parent")
    parent = key_of.get(parent_cell, parent_cell) or None
    epic_cell = sheet.one(cells, _EPIC_LINK)
    epic = key_of.get(epic_cell, epic_cell) or None
    if epic is None and parent and type_of.get(parent) == "epic":
        epic = parent  # team-managed projects link stories to their epic through Parent
    custom: dict[str, Any] = {}
    links: list[Link] = []
    for name, indexes in sheet.cols.items():
        found = sheet.all(cells, name)
        if not found:
            continue
        if match := _CUSTOM.fullmatch(name):
            many = len(indexes) > 1
            custom[match[1]] = [scalar(v) for v in found] if many else scalar(found[0])
        elif match := _LINK.fullmatch(name):
            links += [Link(_link_type(match[1], match[2]), target) for target in found]
        elif name in _EXTRA:
            custom[_EXTRA[name]] = found[0]
        elif name == "Sprint":
            custom["sprints"] = found
    # Jira labels cannot contain spaces, so space-joined cells (other export variants) split safely.
    labels = dict.fromkeys(label for cell in sheet.all(cells, "Labels") for label in cell.split())
    return Task(
        source=ctx.source, key=key, title=title, url=ctx.url(key),
        body=sheet.one(cells, "Description"), type=sheet.one(cells, "Issue Type"), status=status,
        status_category=category or "todo", assignee=sheet.one(cells, "Assignee") or None,
        project=sheet.one(cells, "Project key") or ctx.project or "", labels=tuple(labels),
        components=tuple(sheet.all(cells, "Component/s") + sheet.all(cells, "Components")),
        parent=parent, epic=epic, links=tuple(links),
        estimate=check(points, parse_number) if points else None, custom=custom,
        raw={name: sheet.all(cells, name) if len(ix) > 1 else sheet.one(cells, name)
             for name, ix in sheet.cols.items() if sheet.all(cells, name)},
        **{attr: check(name, parse_date) for attr, name in _DATES.items()},
    )
