"""Tether's Markdown as a tracker that stores Markdown and finds ``@name`` mentions after
rendering should store it: each ``<@handle>`` token becomes a real mention, and nothing
else in the body can ping anyone or open an HTML tag; plus the hidden digest trailer that
lets a changed body still be recognised as the one Tether meant.

Such trackers mention ``@name`` after any character but a letter, digit or ``_``, and do
so after Markdown is rendered: a backslash escape does not protect the ``@``; only code
spans and HTML comments do. So every ``@`` directly before a name character that is not a
token's gets a zero-width space; a character reference gets its ``&`` escaped
(``&commat;x`` renders ``@x``, then mentions); and escaped angle brackets become entities,
which render the same but can never turn back into a tag, whatever strips the backslashes
later.
"""

from __future__ import annotations

import re

from tether.pipeline.render import MARKER, MENTION, digest, neutralise

ZWSP = "\u200b"
_WORD = re.compile(r"[A-Za-z0-9_]")
_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")  # what CommonMark lets \ escape
_ENTITY = {"<": "&lt;", ">": "&gt;"}
# An HTML character reference, which CommonMark decodes to the character it names.
_REFERENCE = re.compile(r"&(?=#[0-9]{1,7};|#[xX][0-9a-fA-F]{1,6};|[A-Za-z][A-Za-z0-9]{1,31};)")
_TRAILER = re.compile(r"\n<!-- tether:digest=([0-9a-f]{16}) -->\s*$")


def at_mentions(markdown: str, handle: re.Pattern[str], extends: re.Pattern[str]) -> str:
    """``markdown`` with mention tokens whose handle matches ``handle`` as ``@handle`` (a
    zero-width space ends it where the text after would match ``extends``), every other
    would-be mention inert; code spans and HTML comments (Tether's marker) pass untouched."""
    out: list[str] = []
    i, n = 0, len(markdown)
    while i < n:
        ch = markdown[i]
        if markdown.startswith("<!--", i):
            end = markdown.find("-->", i + 4)
            end = n if end < 0 else end + 3
            out.append(markdown[i:end])
            i = end
        elif ch == "`":
            end = _code_span_end(markdown, i)
            out.append(markdown[i:end])
            i = end
        elif ch == "\\" and i + 1 < n and markdown[i + 1] in _PUNCTUATION:
            out.append(_ENTITY.get(markdown[i + 1], markdown[i:i + 2]))
            i += 2
        elif token := MENTION.match(markdown, i):
            before = out[-1][-1:] if out else ""
            out.append(_mention(token[1], before, markdown[token.end():], handle, extends))
            i = token.end()
        elif _REFERENCE.match(markdown, i):
            out.append("\\&")  # shown as typed, never decoded into an "@" or a "#"
            i += 1
        else:
            out.append(ch)
            if ch == "@" and _WORD.match(markdown, i + 1):
                out.append(ZWSP)  # not a token's: the tracker would ping whoever it names
            i += 1
    return "".join(out)


def stored_body(value: str, markdown: str, max_length: int, cut_note: str = "") -> str:
    """The body to store for the comment ``value``, given ``markdown``, its converted form:
    verbatim when nothing changed and it fits; otherwise the converted text (cut to fit,
    ending with ``cut_note``) with ``value``'s digest in a hidden trailer, so a read of the
    stored body still matches what Tether meant (see ``stored_digest``)."""
    if markdown == value and len(markdown) <= max_length:
        return markdown
    trailer = f"\n<!-- tether:digest={digest(value)} -->"
    if len(markdown) + len(trailer) > max_length:
        markdown = markdown[:max_length - len(trailer) - len(cut_note)] + cut_note
    return markdown + trailer


def stored_digest(body: str | None) -> str | None:
    """The digest a stored body's trailer carries, or None when it has none."""
    found = _TRAILER.search(body or "")
    return found.group(1) if found else None


def with_marker(value: str) -> str:
    """``value`` starting with Tether's marker, as every comment it stores must."""
    return value if value.lstrip().startswith(MARKER) else f"{MARKER}\n{value}"


def _code_span_end(markdown: str, start: int) -> int:
    """Where the code span opening at ``start`` ends: after a closing run of exactly as many
    backticks; with none, after the opening run, which CommonMark then reads as text."""
    run = len(markdown[start:]) - len(markdown[start:].lstrip("`"))
    for close in re.finditer(r"`+", markdown[start + run:]):
        if len(close.group()) == run:
            return start + run + close.end()
    return start + run


def _mention(name: str, before: str, after: str, handle: re.Pattern[str],
             extends: re.Pattern[str]) -> str:
    """``@name`` that the tracker reads as exactly that person; a name that cannot be a
    handle stays visible as inert text."""
    if not handle.fullmatch(name):
        return f"&lt;@{ZWSP}{neutralise(name)}&gt;"
    lead = ZWSP if _WORD.fullmatch(before) else ""  # "x@dana" is an e-mail, not a mention
    tail = ZWSP if extends.match(after) else ""
    return f"{lead}@{name}{tail}"
