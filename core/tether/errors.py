"""Errors users see: each names where the problem is and what to do next."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One located problem in a user's file (config, rules, KPI data)."""

    file: str
    line: int
    column: int
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class TetherError(Exception):
    """Base class for errors that are reported to the user without a traceback."""

    exit_code = 1


class InvalidInput(TetherError):
    """One or more problems in config, rules or KPI files; nothing was pulled or written."""

    exit_code = 2

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))



class SourceError(TetherError):
    """A tracker call failed; the message names the tracker, the scope, the item, the HTTP
    status and what to do next (which token variable to check, which scope is missing)."""
