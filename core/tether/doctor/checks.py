"""Pieces connectors share to build their `tether doctor` checks (see Connector.diagnose)."""

from __future__ import annotations

import os
from collections.abc import Iterable

from tether.connector import Check

# Check names every tracker connector uses, so the checklist reads the same for each.
TOKEN = "token"
AUTH = "authentication"
READ = "read access"
WRITE = "write access"
RATE = "rate limit"
QUIET = "quiet edits"


def token_check(variable: str, what: str) -> Check:
    """Whether ``$variable`` holds a token; only its name is ever shown, never its value."""
    if os.environ.get(variable, "").strip():
        return Check(TOKEN, True, f"${variable} is set")
    return Check(TOKEN, False, f"${variable} is not set, so no request was made",
                 f"Export {what} in ${variable} (or point options.token_env at the variable "
                 "that holds it), then run `tether doctor` again.")


def skipped(names: Iterable[str], reason: str) -> list[Check]:
    """Checks that depend on one that failed: not run, saying why."""
    return [Check(name, None, f"skipped: {reason}") for name in names]


def rate_headroom(remaining: int, limit: int, tracker: str, resets: str | None = None
                  ) -> Check:
    """Headroom from the remaining/limit pair a tracker sent: failing below a tenth left."""
    when = f", resets at {resets}" if resets else ""
    detail = f"{remaining:,} of {limit:,} requests left{when}"
    if limit > 0 and remaining * 10 < limit:
        wait = f"until {resets}" if resets else f"for {tracker}'s limit to reset"
        return Check(RATE, False, detail, f"Wait {wait}, or give Tether a token that other "
                     "jobs do not share.")
    return Check(RATE, True, detail)


def words(items: list[str], last: str = "and") -> str:
    """"a, b and c" (or "a, b or c") for check texts."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {last} {items[-1]}"
