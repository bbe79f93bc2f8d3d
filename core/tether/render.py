"""The text Tether writes into trackers: its comment, and quoting that cannot inject markup."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from .model import KPI, Finding, Mapping

MARKER = "<!-- tether:comment -->"
RESOLVED_HEADLINE = "Tether: nothing to flag on this item any more."
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~])")
# A person to notify, as ``<@handle>`` with the handle their tracker knows them by; each
# connector turns it into its own mention. Quoted text cannot forge one: neutralise
# escapes every ``<``.
MENTION = re.compile(r"(?<!\\)<@([^\s<>\\]+)>")


def digest(body: str) -> str:
    """A short, stable fingerprint of a comment body Tether wrote."""
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def mention(handle: str) -> str | None:
    """The mention token for ``handle``, or None when the handle cannot be one."""
    token = f"<@{handle}>"
    return token if MENTION.fullmatch(token) else None


def neutralise(text: str) -> str:
    """Quote tracker text safely in Markdown: one line, no markup, links or @mentions."""
    flat = " ".join(text.split())
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", flat)
    # A zero-width space after @ keeps the text readable but stops it pinging anyone.
    return escaped.replace("@", "@\u200b")


def render_comment(findings: Iterable[Finding], mappings: Iterable[Mapping],
                   kpis: dict[str, KPI]) -> str:
    """Tether's one comment for an item with findings (Markdown, marker first)."""
    lines = [MARKER, "**Tether** flagged this item:", ""]
    for f in findings:
        lines.append(f"- **{f.signal}** ({f.severity}): {neutralise(f.reason)} (rule `{f.rule_id}`)")
        if f.advice:
            lines.append(f"  - What to do: {neutralise(f.advice)}")
    served = sorted({m.kpi for m in mappings})
    if served:
        lines.append("")
        names = [f"{neutralise(kpis[k].name)} (`{k}`)" if k in kpis else f"`{k}`" for k in served]
        lines.append("Linked KPIs: " + "; ".join(names) + ".")
    lines += ["", "_Written by Tether from your organisation's KPI mapping rules; "
                  "if this looks wrong, tell your PMO which rule misfired._"]
    return "\n".join(lines)


def render_resolved() -> str:
    """The note an item's comment becomes when its findings clear (kept, not deleted)."""
    return f"{MARKER}\n{RESOLVED_HEADLINE}"
