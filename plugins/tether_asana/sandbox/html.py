"""Asana rich text in the sandbox: reject html_text the service rejects, derive ``text``.

Rules from developers.asana.com/docs/rich-text: the value must be valid XML with a root
<body>, using only the rich-text tags; attributes only on <a>. Stories do not take the
task-notes-only tags (h1, h2, hr, img, table), as third-party validators built against the
service also note. The plain ``text`` Asana derives is approximated: tags dropped, list
items on their own lines with a bullet, a user mention (``<a data-asana-gid>`` naming a
user) as that user's profile link (Asana's plain text shows mentions as links; the exact
URL form is not verified against the live service).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Container

from .state import StateError

STORY_TAGS = {"body", "strong", "em", "u", "s", "code", "ol", "ul", "li", "a", "blockquote",
              "pre"}
LINK_ATTRS = {"href", "data-asana-gid", "data-asana-type", "data-asana-accessible",
              "data-asana-dynamic", "data-asana-project"}
PROFILE = "https://app.asana.com/0/profile/{gid}"


def story_text(html_text: str, users: Container[str] = ()) -> str:
    """The plain text of a story's valid ``html_text`` (``users``: the gids a mention link
    can name); StateError(400) when it is invalid."""
    try:
        root = ET.fromstring(html_text)
    except ET.ParseError as exc:
        raise StateError(400, f"html_text: XML is invalid: {exc}") from None
    if root.tag != "body":
        raise StateError(400, "html_text: The root element must be <body>")
    for element in root.iter():
        if element.tag not in STORY_TAGS:
            raise StateError(400, f"html_text: Tag <{element.tag}> is not allowed in a story")
        allowed = LINK_ATTRS if element.tag == "a" else set()
        extra = set(element.attrib) - allowed
        if extra:
            raise StateError(400, f"html_text: Attribute {sorted(extra)[0]!r} is not allowed "
                                  f"on <{element.tag}>")
    return _text(root, 0, users)


def mentions(html_text: str, users: Container[str]) -> list[str]:
    """The user gids a valid ``html_text`` mentions (so notifies), in order."""
    return [a.get("data-asana-gid", "") for a in ET.fromstring(html_text).iter("a")
            if a.get("data-asana-gid") in users]


def _text(element: ET.Element, depth: int, users: Container[str]) -> str:
    gid = element.get("data-asana-gid") if element.tag == "a" else None
    if gid is not None and gid in users:
        return PROFILE.format(gid=gid)
    parts = [element.text or ""]
    for child in element:
        if child.tag in ("ul", "ol"):
            for number, item in enumerate(child.findall("li"), start=1):
                bullet = "• " if child.tag == "ul" else f"{number}. "
                so_far = "".join(parts)
                # A list is a block: it starts a line, without doubling a line break before it.
                start = "" if not so_far or so_far.endswith("\n") else "\n"
                parts.append(start + "  " * depth + bullet + _text(item, depth + 1, users))
        else:
            parts.append(_text(child, depth, users))
        parts.append(child.tail or "")
    return "".join(parts)
