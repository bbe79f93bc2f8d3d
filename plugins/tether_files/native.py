"""Parsers for Tether's own formats: ``{"tasks": [...]}`` JSON and a flat CSV."""

from __future__ import annotations

import re
from typing import Any

from tether.sdk import Task, task_from_dict

from .reading import Context, Problems, csv_rows, item_lines, load_json
from .values import category_from_name, infer_category, parse_date, parse_number, scalar

CSV_COLUMNS = ("key", "title", "type", "status", "status_category", "assignee", "project",
               "labels", "components", "parent", "epic", "estimate", "created", "updated",
               "resolved", "url", "body")
_LISTS = ("labels", "components")
_DATES = ("created", "updated", "resolved")
_TASKS = re.compile(r'"tasks"\s*:\s*\[')
_FIELDS = set(CSV_COLUMNS) | {"links", "custom"}


def _defaults(data: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Fill what the file may leave out: project, url, and the category from the status."""
    data = {**data, "project": data.get("project") or ctx.project or ""}
    if data.get("key") and not data.get("url"):
        data["url"] = ctx.url(str(data["key"]))
    category = data.get("status_category")
    data["status_category"] = (category_from_name(category) if category
                               else infer_category(str(data.get("status") or "")))
    return data


def _shape_problem(item: dict[str, Any]) -> tuple[str, str] | None:
    """(field, message) for a value of the wrong JSON type, which the codec would mis-read."""
    estimate = item.get("estimate")
    if estimate not in (None, "") and (isinstance(estimate, bool)
                                       or not isinstance(estimate, int | float)):
        return "estimate", "must be a number like 3 or 2.5"
    for name in _LISTS:
        value = item.get(name) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return name, 'must be a list of strings like ["a", "b"]'
    links = item.get("links") or []
    if not isinstance(links, list) or not all(
            isinstance(li, dict) and li.get("type") and li.get("target") for li in links):
        return "links", 'must be a list like [{"type": "blocks", "target": "KEY-2"}]'
    if not isinstance(item.get("custom") or {}, dict):
        return "custom", 'must be an object like {"team": "red"}'
    return None


def parse_tether_json(text: str, ctx: Context) -> list[Task]:
    """``{"tasks": [task_to_dict without source, ...]}``; problems name ``tasks[i].field``."""
    problems = Problems(ctx.file)
    data = load_json(text, problems)
    problems.raise_if_any()
    tasks_at = _TASKS.search(text)
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), list) or not tasks_at:
        problems.add(1, 1, "tasks", 'expected {"tasks": [...]}: an object whose "tasks" is a list')
        problems.raise_if_any()
    assert tasks_at is not None  # else a problem was added above, and raised
    lines = item_lines(text, tasks_at.end() - 1)
    if len(lines) != len(data["tasks"]):  # the regex found a nested "tasks": fall back
        lines = [1] * len(data["tasks"])
    tasks = []
    for index, item in enumerate(data["tasks"]):
        where, line = f"tasks[{index}]", lines[index]
        if not isinstance(item, dict):
            problems.add(line, 1, where, "each task must be an object")
            continue
        shape = _shape_problem(item)
        if shape:
            problems.add(line, 1, f"{where}.{shape[0]}", shape[1])
            continue
        if item.get("key") and not problems.unique(str(item["key"]), line, 1, f"{where}.key"):
            continue
        category = item.get("status_category")
        if category and problems.check(line, 1, f"{where}.status_category", category_from_name,
                                       str(category)) is None:
            continue
        try:
            task = task_from_dict(_defaults(item, ctx), source=ctx.source)
        except (ValueError, TypeError) as exc:  # codec messages start with the field name
            field = str(exc).split(" ", 1)[0]
            key = f"{where}.{field}" if field in _FIELDS else where
            problems.add(line, 1, key, f"{exc}; fix the task or re-create the file")
            continue
        tasks.append(task)
    problems.raise_if_any()
    return tasks


def parse_tether_csv(text: str, ctx: Context) -> list[Task]:
    """One task per row; ``labels``/``components`` and ``custom.*`` cells split on ``;``."""
    problems = Problems(ctx.file)
    rows = list(csv_rows(text, problems))
    header = [name.strip() for name in rows[0][1]] if rows else []
    for index, name in enumerate(header):
        if name not in CSV_COLUMNS and not (name.startswith("custom.") and len(name) > 7):
            problems.add(1, index + 1, name, f"unknown column; use {', '.join(CSV_COLUMNS)} "
                                             "or custom.<name>")
        elif name in header[:index]:
            problems.add(1, index + 1, name, "the column appears twice; keep one")
    for required in ("key", "title"):
        if required not in header:
            problems.add(1, 1, required, f"the header needs a '{required}' column")
    problems.raise_if_any()
    tasks = []
    for line, cells in rows[1:]:
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(header):
            problems.add(line, len(header) + 1, "", f"{len(cells)} cells but the header has "
                                                    f"{len(header)}; quote cells that hold commas")
            continue
        row = dict(zip(header, (cell.strip() for cell in cells), strict=False))
        if row.get("key") and not problems.unique(row["key"], line, header.index("key") + 1, "key"):
            continue
        task = _csv_task(row, header, line, ctx, problems)
        if task:
            tasks.append(task)
    problems.raise_if_any()
    return tasks


def _csv_task(row: dict[str, str], header: list[str], line: int, ctx: Context,
              problems: Problems) -> Task | None:
    """One tether-csv row as a Task, or None after recording what is wrong with it."""
    before = len(problems.items)

    def check(name: str, parse: Any) -> Any:
        return problems.check(line, header.index(name) + 1, name, parse, row[name])

    data: dict[str, Any] = {name: row.get(name) or None for name in CSV_COLUMNS}
    for name in _LISTS:
        data[name] = [v.strip() for v in (row.get(name) or "").split(";") if v.strip()]
    for name in (*_DATES, "estimate"):
        if row.get(name):
            data[name] = check(name, parse_number if name == "estimate" else parse_date)
    if row.get("status_category"):
        data["status_category"] = check("status_category", category_from_name)
    data["custom"] = {
        name[7:]: [scalar(v) for v in value.split(";") if v.strip()] if ";" in value
        else scalar(value)
        for name, value in row.items() if name.startswith("custom.") and value}
    for name in ("key", "title"):
        if not data[name]:
            problems.add(line, header.index(name) + 1, name, "is empty; every task needs one")
    if len(problems.items) > before:
        return None
    return task_from_dict(_defaults(data, ctx), source=ctx.source)
