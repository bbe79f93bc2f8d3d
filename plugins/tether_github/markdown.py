"""Tether's Markdown as GitHub should store it: each ``<@login>`` token becomes a real
``@login`` mention, and nothing else in the body can ping anyone or open an HTML tag.

GitHub mentions ``@login`` after the start of text or any character but a letter, digit
or ``_``, and it does so after Markdown is rendered: a backslash escape (``\\<@x\\>``
renders ``<@x>``) does not protect the ``@``; only code spans and HTML comments do. So
every ``@`` directly before a login character that is not a token's gets a zero-width
space; a character reference gets its ``&`` escaped (``&commat;x`` renders ``@x``, then
mentions; ``&num;12`` links an issue); and escaped angle brackets become entities, which
render the same but can never turn back into a tag, whatever strips the backslashes
later.
"""

from __future__ import annotations

import re

from tether.sdk import MENTION, neutralise

# GitHub's login syntax: letters, digits and single inner hyphens, at most 39 characters.
LOGIN = re.compile(r"[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}")
_WORD = re.compile(r"[A-Za-z0-9_]")
# After a login, these would extend it ("-", "_", letters), make it a team ("/") or,
# before a word character, a non-mention ("@dana.x"): a zero-width space ends it first.
_EXTENDS = re.compile(r"[A-Za-z0-9_/-]|\.+[A-Za-z0-9_]")
_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")  # what CommonMark lets \ escape
_ENTITY = {"<": "&lt;", ">": "&gt;"}
# An HTML character reference, which CommonMark decodes to the character it names.
_REFERENCE = re.compile(r"&(?=#[0-9]{1,7};|#[xX][0-9a-fA-F]{1,6};|[A-Za-z][A-Za-z0-9]{1,31};)")
ZWSP = "\u200b"


def to_github(markdown: str) -> str:
    """``markdown`` with mention tokens as ``@login`` and every other would-be mention inert;
    code spans and HTML comments (Tether's marker) pass through untouched."""
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
            out.append(_mention(token[1], out[-1][-1:] if out else "", markdown[token.end():]))
            i = token.end()
        elif _REFERENCE.match(markdown, i):
            out.append("\\&")  # shown as typed, never decoded into an "@" or a "#"
            i += 1
        else:
            out.append(ch)
            if ch == "@" and _WORD.match(markdown, i + 1):
                out.append(ZWSP)  # not a token's: GitHub would ping whoever it names
            i += 1
    return "".join(out)


def _code_span_end(markdown: str, start: int) -> int:
    """Where the code span opening at ``start`` ends: after a closing run of exactly as many
    backticks; with none, after the opening run, which CommonMark then reads as text."""
    run = len(markdown[start:]) - len(markdown[start:].lstrip("`"))
    for close in re.finditer(r"`+", markdown[start + run:]):
        if len(close.group()) == run:
            return start + run + close.end()
    return start + run


def _mention(handle: str, before: str, after: str) -> str:
    """``@handle`` that GitHub reads as exactly that login; a handle that cannot be a login
    stays visible as inert text."""
    if not LOGIN.fullmatch(handle):
        return f"&lt;@{ZWSP}{neutralise(handle)}&gt;"
    lead = ZWSP if _WORD.fullmatch(before) else ""  # "x@dana" is an e-mail, not a mention
    tail = ZWSP if _EXTENDS.match(after) else ""
    return f"{lead}@{handle}{tail}"
