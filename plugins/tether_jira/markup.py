"""Tether's Markdown comment -> Jira markup (ADF on Cloud, wiki text on Data Center), and back
to plain text. Only the Markdown subset ``tether.pipeline.render`` writes is understood: paragraphs,
``-`` lists nested by two spaces, ``**strong**``, ``_em_``, ``*em*``, `` `code` ``, mention
tokens ``<@handle>`` and backslash escapes; anything else stays literal text.

Literal text never becomes markup: ADF carries it in text nodes without link marks; wiki
escapes every effect character. Neither flavour gets a link, a mention or an image that the
Markdown did not ask for, and the subset has no link syntax, so a URL is always text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tether.sdk import MARKER, MENTION

Run = tuple[str, frozenset[str]]  # text and its marks: "strong", "em", "code"; or a mention
MENTIONED = frozenset({"mention"})  # the run of a mention token: its text is the handle
_ITEM = re.compile(r"^( *)[-*] (.*)$")
_WIKI_ALWAYS = set("\\*_{}[]|!^~+")
# What may sit between [~ and ] in wiki: a handle with a wiki effect character in it would
# end the mention early (or start a link), so it is written as text instead.
_WIKI_HANDLE = re.compile(r"[^\[\]{}|!~*^+\s]+")
# An HTML tag in quoted text ("<img src=x>", "</a>") and the attribute names in it. Jira shows
# text nodes and escaped wiki as text, but notification e-mails, exports and integrations
# re-render comments; a zero-width space after "<" and inside each attribute name leaves
# nothing a careless HTML renderer could act on, and the reader sees the same characters.
_TAG = re.compile(r"<(?=[A-Za-z/!?])[^<>]*")
_ATTRIBUTE = re.compile(r"(?<=[\s/'\"])([A-Za-z])(?=[\w:-]*\s*=)")
# Wiki turns a bare URL into a link ("https://...", "mailto:..."). Markdown here has no
# links, so every URL is quoted text: a zero-width space after the scheme, as neutralise
# does for quoted text, keeps it readable and unlinked (idempotent on text already broken).
_SCHEME = re.compile(r"(?i)(://|\bmailto:)")
# Wiki turns these into icons: "(y)" is a thumbs-up, "(!)" a warning sign, ...
_EMOTICON = re.compile(r"\((?:y|n|i|/|x|!|\?|on|off|\*[rgby]?|\+|-)\)")


@dataclass
class Block:
    """One paragraph (``level`` -1) or list item (``level`` >= 0) of inline runs."""

    level: int
    lines: list[list[Run]]


def strip_marker(markdown: str) -> str:
    """The body without Tether's HTML-comment marker line: Jira keeps its marker in a property."""
    lines = markdown.split("\n")
    return "\n".join(lines[1:] if lines and lines[0].strip() == MARKER else lines)


def blocks(markdown: str) -> list[Block]:
    """Split Markdown into paragraphs and list items; a wrapped line joins its block."""
    out: list[Block] = []
    current: Block | None = None
    for line in markdown.split("\n"):
        item = _ITEM.match(line)
        if not line.strip():
            current = None
        elif item:
            current = Block(len(item[1]) // 2, [inline(item[2])])
            out.append(current)
        elif current is not None:
            current.lines.append(inline(line.strip()))
        else:
            current = Block(-1, [inline(line.strip())])
            out.append(current)
    return out


def inline(text: str) -> list[Run]:
    """Inline Markdown -> runs; an unclosed delimiter is kept as literal text."""
    runs: list[Run] = []
    marks: set[str] = set()
    buf: list[str] = []

    def flush() -> None:
        if buf:
            runs.append(("".join(buf), frozenset(marks)))
            buf.clear()

    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            buf.append(text[i + 1])
            i += 2
            continue
        token = MENTION.match(text, i) if ch == "<" else None
        if token:  # an escaped "\<" never gets here: the escape above consumed it
            flush()
            runs.append((token[1], MENTIONED))
            i = token.end()
            continue
        if ch == "`":
            end = text.find("`", i + 1)
            if end > i + 1:
                flush()
                runs.append((text[i + 1:end], frozenset({"code"})))  # ADF: code takes no other mark
                i = end + 1
                continue
        if text.startswith("**", i) and ("strong" in marks or "**" in text[i + 2:]):
            flush()
            marks ^= {"strong"}
            i += 2
            continue
        if ch in "_*" and _em_delimiter(text, i, "em" in marks):
            flush()
            marks ^= {"em"}
            i += 1
            continue
        buf.append(ch)
        i += 1
    flush()
    return _merge(runs)


def _em_delimiter(text: str, i: int, closing: bool) -> bool:
    """Whether ``text[i]`` opens or closes emphasis (word-boundary rule, like CommonMark's _)."""
    before = text[i - 1] if i else " "
    after = text[i + 1] if i + 1 < len(text) else " "
    if closing:
        return not before.isspace() and not after.isalnum()
    return not before.isalnum() and not after.isspace() and text.find(text[i], i + 1) > i + 1


def _merge(runs: list[Run]) -> list[Run]:
    out: list[Run] = []
    for text, marks in runs:
        if not text:
            continue  # ADF rejects empty text nodes
        if out and out[-1][1] == marks and marks != MENTIONED:
            out[-1] = (out[-1][0] + text, marks)
        else:
            out.append((text, marks))
    return out


# -- Atlassian Document Format (Cloud, REST v3) ---------------------------------------------

def to_adf(markdown: str) -> dict[str, Any]:
    """An ADF ``doc`` for a Tether comment (marker line dropped)."""
    content: list[dict[str, Any]] = []
    stack: list[tuple[int, dict[str, Any]]] = []  # (level, bulletList node)
    for block in blocks(strip_marker(markdown)):
        para = _adf_paragraph(block.lines)
        if block.level < 0:
            stack.clear()
            content.append(para)
            continue
        while stack and stack[-1][0] > block.level:
            stack.pop()
        if stack and stack[-1][0] == block.level:
            stack[-1][1]["content"].append({"type": "listItem", "content": [para]})
            continue
        new_list = {"type": "bulletList", "content": [{"type": "listItem", "content": [para]}]}
        if stack:  # a deeper level nests inside the previous item
            stack[-1][1]["content"][-1]["content"].append(new_list)
        else:
            content.append(new_list)
        stack.append((block.level, new_list))
    return {"type": "doc", "version": 1, "content": content}


def _adf_paragraph(lines: list[list[Run]]) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = []
    for n, runs in enumerate(lines):
        if n:
            nodes.append({"type": "hardBreak"})
        for text, marks in runs:
            if marks == MENTIONED:  # Cloud mentions by accountId; "text" is what shows
                nodes.append({"type": "mention", "attrs": {"id": text, "text": "@" + text}})
                continue
            if "code" not in marks:
                text = defang(text)
            node: dict[str, Any] = {"type": "text", "text": text}
            if marks:
                node["marks"] = [{"type": m} for m in sorted(marks)]
            nodes.append(node)
    return {"type": "paragraph", "content": nodes}


def adf_to_text(node: Any) -> str:
    """Plain text of an ADF document (or of a string body, returned as is)."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node
    if node.get("type") == "doc":  # top-level blocks are paragraphs: keep them apart
        return "\n\n".join("\n".join(_adf_lines(child, "")) for child in
                           node.get("content") or []).strip("\n")
    return "\n".join(_adf_lines(node, "")).strip("\n")


def _adf_lines(node: dict[str, Any], prefix: str) -> list[str]:
    kind = node.get("type")
    children = node.get("content") or []
    if kind in ("paragraph", "heading"):
        return [prefix + _adf_inline(children)]
    if kind == "listItem":
        lines: list[str] = []
        for child in children:
            lines += _adf_lines(child, prefix + "  " if lines else prefix + "- ")
        return lines
    if kind == "codeBlock":
        return [prefix + _adf_inline(children)]
    if kind == "rule":
        return [prefix + "----"]
    if kind in ("bulletList", "orderedList"):
        return [line for child in children for line in _adf_lines(child, prefix.replace("- ", "  "))]
    lines = []
    for child in children:
        lines += _adf_lines(child, prefix) if child.get("content") or child.get("type") in (
            "paragraph", "heading", "rule") else [prefix + _adf_inline([child])]
    return lines


def _adf_inline(nodes: list[dict[str, Any]]) -> str:
    parts = []
    for node in nodes:
        kind, attrs = node.get("type"), node.get("attrs") or {}
        if kind == "text":
            parts.append(node.get("text", ""))
        elif kind == "hardBreak":
            parts.append("\n")
        elif kind in ("mention", "emoji"):
            parts.append(attrs.get("text") or attrs.get("shortName") or "")
        elif kind in ("inlineCard", "blockCard"):
            parts.append(attrs.get("url", ""))
        elif node.get("content"):
            parts.append(_adf_inline(node["content"]))
    return "".join(parts)


# -- Jira wiki markup (Data Center, REST v2) -----------------------------------------------

def to_wiki(markdown: str) -> str:
    """Jira wiki markup for a Tether comment (marker line dropped, specials escaped)."""
    out: list[str] = []
    previous: Block | None = None
    for block in blocks(strip_marker(markdown)):
        text = "\n".join(_wiki_runs(runs) for runs in block.lines)
        if block.level < 0:
            if out:
                out.append("")
            out.append(text)
        else:
            if out and (previous is None or previous.level < 0):
                out.append("")
            out.append("*" * (block.level + 1) + " " + text)
        previous = block
    return "\n".join(out)


def _wiki_runs(runs: list[Run]) -> str:
    parts = []
    for text, marks in runs:
        if marks == MENTIONED:  # Data Center mentions by username
            parts.append(f"[~{text}]" if _WIKI_HANDLE.fullmatch(text) else
                         wiki_escape("@" + text))
            continue
        if "code" in marks:
            parts.append("{{" + wiki_escape(text) + "}}")
            continue
        piece = wiki_escape(unlink(defang(text)))
        if "em" in marks:
            piece = f"_{piece}_"
        if "strong" in marks:
            piece = f"*{piece}*"
        parts.append(piece)
    return "".join(parts)


def wiki_escape(text: str) -> str:
    """Literal text in wiki markup: effect characters get a backslash, so nothing renders as
    markup, a link, an image or a mention (``[~user]``)."""
    out = []
    icons = {m.start() for m in _EMOTICON.finditer(text)}
    for i, ch in enumerate(text):
        before = text[i - 1] if i else " "
        after = text[i + 1] if i + 1 < len(text) else " "
        escape = ch in _WIKI_ALWAYS or (ch == "-" and before.isspace() and not after.isspace()) \
            or (ch == "?" and after == "?") or (ch == "#" and i == 0) or i in icons
        out.append("\\" + ch if escape else ch)
    return "".join(out)


# -- quoted text that other renderers might act on ------------------------------------------

def defang(text: str) -> str:
    """``text`` with each HTML tag broken by zero-width spaces (see ``_TAG``)."""
    return _TAG.sub(lambda m: "<\u200b" + _ATTRIBUTE.sub("\\1\u200b", m[0][1:]), text)


def unlink(text: str) -> str:
    """``text`` with URL schemes broken by a zero-width space, so wiki links none of them."""
    return _SCHEME.sub(lambda m: ":\u200b//" if m[0] == "://" else m[0][:-1] + "\u200b:", text)
