"""Tether's Markdown as GitHub should store it (see ``tether.sdk.at_mentions``): each
``<@login>`` token a real ``@login`` mention, nothing else able to ping anyone."""

from __future__ import annotations

import re
from functools import partial

from tether.sdk import at_mentions

# GitHub's login syntax: letters, digits and single inner hyphens, at most 39 characters.
LOGIN = re.compile(r"[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}")
# After a login, these would extend it ("-", "_", letters), make it a team ("/") or,
# before a word character, a non-mention ("@dana.x"): a zero-width space ends it first.
EXTENDS = re.compile(r"[A-Za-z0-9_/-]|\.+[A-Za-z0-9_]")

to_github = partial(at_mentions, handle=LOGIN, extends=EXTENDS)
