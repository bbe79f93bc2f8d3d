"""The export formats the files connector reads, each a parser ``(text, context) -> tasks``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

from tether.sdk import Task

from .github import parse_gh_json
from .jira import parse_jira_csv
from .native import parse_tether_csv, parse_tether_json
from .reading import Context

Format = Literal["jira-csv", "gh-json", "tether-json", "tether-csv"]
Parser = Callable[[str, Context], list[Task]]

PARSERS: dict[str, Parser] = {
    "jira-csv": parse_jira_csv, "gh-json": parse_gh_json,
    "tether-json": parse_tether_json, "tether-csv": parse_tether_csv,
}
assert set(PARSERS) == set(get_args(Format)), "every Format needs a parser"
