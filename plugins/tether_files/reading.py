"""File-level reading shared by the parsers: located problems, CSV rows, JSON item lines."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tether.sdk import InvalidInput, Problem

T = TypeVar("T")
_BETWEEN_ITEMS = re.compile(r"[\s,]*")


@dataclass(frozen=True)
class Context:
    """What a parser needs besides the text: where it came from and the source's defaults."""

    file: str  # as shown to the user
    source: str
    project: str | None = None
    url_base: str | None = None

    def url(self, key: str) -> str:
        return f"{self.url_base}{key}" if self.url_base else ""


@dataclass
class Problems:
    """Collects every problem of one file so the user fixes them in one pass, not one per run."""

    file: str
    items: list[Problem] = field(default_factory=list)
    _keys: dict[str, str] = field(default_factory=dict)

    def add(self, line: int, column: int, key: str, message: str) -> None:
        self.items.append(Problem(self.file, line, column, key, message))

    def check(self, line: int, column: int, key: str, parse: Callable[[str], T],
              text: str) -> T | None:
        """``parse(text)``, or None after recording its ValueError at (line, column, key)."""
        try:
            return parse(text)
        except ValueError as exc:
            self.add(line, column, key, str(exc))
            return None

    def unique(self, task_key: str, line: int, column: int, key: str) -> bool:
        """Record a duplicate task key (rules and the sidecar index by key); True if new."""
        if task_key in self._keys:
            self.add(line, column, key, f"{task_key} appears again (first at "
                                        f"{self._keys[task_key]}); keep one entry per item")
            return False
        # JSON is often one line (gh prints compact JSON to a file), so name the item too.
        item = f"{key.rsplit('.', 1)[0]}, " if "[" in key else ""
        self._keys[task_key] = f"{item}line {line}"
        return True

    def raise_if_any(self) -> None:
        """Raise InvalidInput with every problem, sorted into file order."""
        if self.items:
            raise InvalidInput(sorted(self.items, key=lambda p: (p.line, p.column)))


def csv_rows(text: str, problems: Problems) -> Iterator[tuple[int, list[str]]]:
    """(first line, cells) of every record; multi-line quoted cells count their lines."""
    # Jira descriptions can exceed csv's 128 KiB default cell limit.
    csv.field_size_limit(max(csv.field_size_limit(), 64 * 1024 * 1024))
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 1
    try:
        for cells in reader:
            yield start, cells
            start = reader.line_num + 1
    except csv.Error as exc:
        problems.add(start, 1, "", f"not valid CSV: {exc}; re-export the file")


def load_json(text: str, problems: Problems) -> Any:
    """Parsed JSON, or None after recording the syntax error with its line and column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        problems.add(exc.lineno, exc.colno, "", f"not valid JSON: {exc.msg}; re-export the file")
        return None


def item_lines(text: str, array_start: int) -> list[int]:
    """1-based line where each element starts, for the valid JSON array at ``array_start``."""
    lines: list[int] = []
    decoder, pos, line, counted = json.JSONDecoder(), array_start + 1, 1, 0
    while True:
        between = _BETWEEN_ITEMS.match(text, pos)
        assert between is not None  # the pattern matches the empty text too
        pos = between.end()
        if pos >= len(text) or text[pos] == "]":
            return lines
        line += text.count("\n", counted, pos)
        counted = pos
        lines.append(line)
        _, pos = decoder.raw_decode(text, pos)
