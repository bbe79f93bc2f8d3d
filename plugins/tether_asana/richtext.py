"""Tether's Markdown comment as Asana rich text (html_text), with the visible footer that
marks it as Tether's and carries the digest of the body Tether asked to write.

Asana has no hidden text in comments, so the footer ``— Tether · <digest>`` is the marker.
Only the Markdown that tether.pipeline.render emits is understood (paragraph lines, ``-`` lists
nested by two spaces, ``**bold**``, ``_italic_``/``*italic*``, ```code```, backslash
escapes, and ``<@gid>`` mention tokens); every character of text is XML-escaped, so quoted
tracker text can never open a tag, and the only tags written are body, strong, em, code,
ul, li and, for a mention only, ``<a data-asana-gid="..."/>`` (never an href).
"""

from __future__ import annotations

import re
from html import escape

from tether.sdk import MARKER, digest

FOOTER_RE = re.compile(r"(?:^|\n)[ \t]*— Tether · ([0-9a-f]{16})[ \t]*\Z")
_LIST_ITEM = re.compile(r"^( *)[-*+] (.*)$")
# Escapes come first in the alternation, so ``\<@x\>`` is text, never a mention (the same
# rule as tether.pipeline.render.MENTION's look-behind).
_TOKEN = re.compile(r"\\[!-/:-@\[-`{-~]|`[^`]*`|<@[^\s<>\\]+>|\*\*|__|[*_]")
_GID = re.compile(r"[0-9]+")
_TAGS = {"**": "strong", "__": "strong", "*": "em", "_": "em"}


def footer(markdown: str) -> str:
    """The marker line for a comment whose body (as Tether asked to write it) is ``markdown``."""
    return f"— Tether · {digest(markdown)}"


def footer_digest(text: str) -> str | None:
    """The digest in a story text's last line, or None when it has no Tether footer."""
    found = FOOTER_RE.search(text.rstrip())
    return found.group(1) if found else None


def story_html(markdown: str) -> str:
    """The html_text of Tether's story for ``markdown``: its content, then the footer line."""
    lines = [line for line in markdown.split("\n") if line.strip() != MARKER]
    while lines and not lines[0].strip():
        lines.pop(0)
    parts: list[str] = []
    run: list[tuple[int, str]] = []
    for line in lines:
        item = _LIST_ITEM.match(line)
        if item:
            run.append((len(item.group(1)) // 2, item.group(2)))
            continue
        if run:
            _add_list(parts, run)
            run = []
            if not line.strip():
                continue  # a list is a block: the blank line after it would double the gap
        parts.append(inline(line.strip()))
    if run:
        _add_list(parts, run)
    while parts and not parts[-1]:
        parts.pop()
    parts.append(escape(footer(markdown), quote=False))
    return "<body>" + "\n".join(parts) + "</body>"


def inline(text: str) -> str:
    """Inline Markdown as Asana rich text; unmatched markers stay literal, tags always nest."""
    out: list[str] = []
    opened: list[str] = []
    pos = 0
    for token in _TOKEN.finditer(text):
        out.append(escape(text[pos:token.start()], quote=False))
        pos = token.end()
        mark = token.group()
        if mark.startswith("\\"):
            out.append(escape(mark[1], quote=False))
        elif mark.startswith("`") and len(mark) > 1 and mark.endswith("`"):
            out.append(f"<code>{escape(mark[1:-1], quote=False)}</code>")
        elif mark.startswith("<@"):
            out.append(_mention(mark[2:-1]))
        elif opened and opened[-1] == mark:
            out.append(f"</{_TAGS[opened.pop()]}>")
        elif mark not in opened and _closes_later(text, pos, mark):
            opened.append(mark)
            out.append(f"<{_TAGS[mark]}>")
        else:
            out.append(escape(mark, quote=False))
    out.append(escape(text[pos:], quote=False))
    out += [f"</{_TAGS[mark]}>" for mark in reversed(opened)]
    return "".join(out)


def _mention(handle: str) -> str:
    """Asana's user mention for a gid (it renders the name and notifies that user); any
    other handle cannot be an Asana mention, so it stays visible as text."""
    if _GID.fullmatch(handle):
        return f'<a data-asana-gid="{handle}"/>'
    return escape(f"<@{handle}>", quote=False)


def _closes_later(text: str, pos: int, mark: str) -> bool:
    return any(t.group() == mark for t in _TOKEN.finditer(text, pos))


def _add_list(parts: list[str], items: list[tuple[int, str]]) -> None:
    if parts and not parts[-1]:
        parts.pop()  # likewise the blank line before it
    parts.append(_list(items))


def _list(items: list[tuple[int, str]]) -> str:
    """Nested <ul> for (depth, text) items; a depth never skips a level."""
    html: list[str] = []
    depths: list[int] = []
    for depth, text in items:
        depth = min(depth, len(depths))
        if depth >= len(depths):
            html.append("<ul>")
            depths.append(depth)
        else:
            while len(depths) - 1 > depth:
                html.append("</li></ul>")
                depths.pop()
            html.append("</li>")
        html.append("<li>" + inline(text.strip()))
    html += ["</li></ul>"] * len(depths)
    return "".join(html)
