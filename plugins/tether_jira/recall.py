"""What the connector keeps between passes (``Connector.memory``): a hint, never a fact.

What each issue showed of Tether at the end of the last pass (its labels in Tether's
namespace, Tether's comment as id and digest, its ``updated``), for the issues that showed
something, kept as of the cursor that pass's pull returned. It holds for a pass only when
that pass's pull starts from exactly that cursor (same scope and label prefix): every issue
changed since (a person's label or comment, Tether's own writes: all move ``updated``) is
pulled again and the pull wins; an issue not pulled shows what its entry says, or nothing
when it has none. Else (first pass, memory lost, a crash between saving the cursor and the
memory, a full pull) the connector reads the scope once, as with no memory, and keeps anew.
On Data Center, whose search cannot show the comment, a remembered comment stands only
where it is the one the state store knows; else ``seen`` below or one listing decides (so
entries also keep the ``updated`` of issues where the store knows a comment).

Data Center's search returns no issue property (JRASERVER-62898), so the ``tether``
property cannot tell a pull which comment is Tether's. So the connector also remembers
Tether's comment as it last listed it (one comment listing) together with the issue's
``updated`` at that moment, and the comment id the issue's ``tether`` property names. While
an issue's ``updated`` stands still and the state store still knows the same comment, the
comment is taken from memory with no request; once ``updated`` moves (a person commented,
deleted Tether's comment, or Tether wrote), it is listed again.

It also keeps what serverInfo and GET /field said (``setup``, see tether_jira.client.Setup)
for the options they were read for, so an incremental pass asks neither: it asks only GET
/myself (the token still works, and the user's time zone, which JQL dates are read in) and
then searches. The setup is read again when a day old by the site's clock, for other
options, and on every full pull.

Memory saves requests, it never decides a write: a remembered comment is not sure (a create
still asks Jira for the issue's marker first), an edit of a remembered comment that is gone
reports it gone, and ``recover`` never reads memory. Losing it (or a memory from another
site or an older shape) costs one search over the scope and one listing per issue where
Data Center keeps Tether's comment, on the next pass; nothing else.

For webhooks (see tether_jira.webhooks, which reads memory without changing it) it also
keeps who the token acts as (``account``: from /myself, or the author of Tether's own
comment writes) and every pulled issue's id with its key (``ids``: Jira's issue-link events
name issues by id only); a full pull rebuilds ``ids``, an incremental one adds to it.

Shape (JSON)::

    {"v": 2, "site": "https://jira.example.com",
     "seen": {"OPS-1": {"known": "10001", "comment": "10001", "digest": "…",
                        "updated": "2025-05-05T11:00:00.000+0200"}},
     "markers": {"OPS-1": "10001"},
     "asof": "<digest of the scope and the cursor>", "prefix": "tether",
     "shown": {"OPS-1": {"l": ["kpi:nps"], "c": "10001", "d": "…",
                         "u": "2025-05-05T11:00:00.000+0200"}},
     "setup": {"key": "<digest of the options>", "value": {"deployment": "Cloud", …}},
     "account": {"accountId": "5b10a2844c20165700ede21g"},
     "ids": {"10001": "OPS-1"}}
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from tether.sdk import digest

from .annotations import Marker, Shown

VERSION = 2


@dataclass(frozen=True)
class Seen:
    """Tether's comment on an issue as last listed (None: it was not there)."""

    marker: Marker | None


class Recall:
    """A view over ``Connector.memory`` that edits it in place (the pipeline saves it)."""

    def __init__(self, memory: dict[str, Any], site: str):
        if not self.holds(memory, site):
            memory.clear()  # another site, an older shape, or nothing yet: start afresh
            memory.update({"v": VERSION, "site": site, "seen": {}, "markers": {},
                           "asof": None, "prefix": None, "shown": {}})
        self._memory = memory
        self._seen: dict[str, Any] = memory["seen"]
        self._markers: dict[str, Any] = memory["markers"]

    @staticmethod
    def holds(memory: dict[str, Any], site: str) -> bool:
        """Whether ``memory`` is this version's, for ``site``: read it without a Recall (which
        would start it afresh otherwise)."""
        return (memory.get("v") == VERSION and memory.get("site") == site
                and all(isinstance(memory.get(k), dict) for k in ("seen", "markers", "shown"))
                and isinstance(memory.get("asof"), str | None)
                and isinstance(memory.get("prefix"), str | None))

    # -- who Tether is, and which issue an id names (for webhooks) -------------------------

    def remember_account(self, account: dict[str, str]) -> None:
        self._memory["account"] = dict(account)

    def remember_ids(self, ids: dict[str, str], whole: bool) -> None:
        """Keep each pulled issue's id -> key; ``whole``: these are all the scope's issues."""
        kept = self._memory.get("ids")
        self._memory["ids"] = dict(ids) if whole or not isinstance(kept, dict) \
            else {**kept, **ids}

    # -- what each issue showed, as of a cursor ------------------------------------------

    def shown_as_of(self, scope: str, cursor: str | None) -> tuple[str, dict[str, Any]] | None:
        """The label prefix and entries remembered, if they were written as of exactly this
        ``cursor`` over this ``scope``; None when they do not hold for a pull from it."""
        asof = self._memory.get("asof")
        if cursor is None or asof is None or asof != _asof(scope, cursor):
            return None
        prefix = self._memory.get("prefix")
        return (prefix, dict(self._memory["shown"])) if prefix is not None else None

    def remember_shown(self, scope: str, cursor: str | None, prefix: str,
                       entries: dict[str, Any]) -> None:
        """Keep ``entries`` (see ``entry``) as what issues showed when ``cursor`` was pulled."""
        self._memory.update({"asof": None if cursor is None else _asof(scope, cursor),
                             "prefix": prefix, "shown": entries})

    def entries(self) -> dict[str, Any]:
        """Every entry kept, whether or not it holds for this pass (see ``unchanged_marker``)."""
        return dict(self._memory["shown"])

    def forget_shown(self) -> None:
        """Nothing vouches for the issues this pass did not see: the next pass reads them."""
        self._memory.update({"asof": None, "prefix": None, "shown": {}})

    # -- what the site said before searching ----------------------------------------------

    def setup(self, key: str) -> Any:
        """The setup kept for the options named ``key`` (JSON, see Setup.from_json), or None."""
        kept = self._memory.get("setup")
        return kept.get("value") if isinstance(kept, dict) and kept.get("key") == key else None

    def remember_setup(self, key: str, value: dict[str, Any]) -> None:
        self._memory["setup"] = {"key": key, "value": value}

    # -- Data Center: Tether's comment as last listed -------------------------------------

    def seen(self, key: str, known: str | None, updated: str | None) -> Seen | None:
        """What the last listing of ``key`` found, if it still holds: the issue's ``updated``
        has not moved since, and the state store knew the same comment then as now."""
        entry = self._seen.get(key)
        if updated is None or not isinstance(entry, dict):
            return None
        if entry.get("updated") != updated or entry.get("known") != known:
            return None
        comment = entry.get("comment")
        if not comment:
            return Seen(None)
        return Seen(Marker(str(comment), str(entry.get("digest") or "")))

    def saw(self, key: str, known: str | None, marker: Marker | None,
            updated: str | None) -> None:
        """Note what a listing of ``key`` found, with the issue's ``updated`` at the time."""
        if updated is None:
            self._seen.pop(key, None)
            return
        self._seen[key] = {"known": known, "updated": updated,
                           "comment": marker.comment_id if marker else None,
                           "digest": marker.digest if marker else None}

    def forget(self, key: str) -> None:
        """Tether wrote on ``key``: its ``updated`` moves, the next pass lists it again."""
        self._seen.pop(key, None)

    def marker(self, key: str) -> str | None:
        """The comment id the issue's ``tether`` property names, as last written or read."""
        value = self._markers.get(key)
        return str(value) if value else None

    def marked(self, key: str, comment_id: str | None) -> None:
        if comment_id:
            self._markers[key] = comment_id
        else:
            self._markers.pop(key, None)

    def keep_only(self, keys: Collection[str]) -> None:
        """Drop what is kept of issues a full pull no longer finds in scope."""
        for table in (self._seen, self._markers, self._memory["shown"]):
            for key in [k for k in table if k not in keys]:
                del table[key]


def entry(shown: Shown, marker: Marker | None, prefix: str, known: bool = False
          ) -> dict[str, Any] | None:
    """What ``shown`` (with Tether's comment ``marker``) shows of Tether, compactly; None
    when it shows nothing (no label in the namespace, no comment), unless ``known`` (Data
    Center: the state store knows a comment there) keeps its ``updated`` for ``seen``."""
    mine = prefix + ":"
    labels = sorted(label[len(mine):] for label in shown.labels if label.startswith(mine))
    if not labels and marker is None and not (known and shown.updated is not None):
        return None
    out: dict[str, Any] = {"l": labels} if labels else {}
    if marker is not None:
        out.update({"c": marker.comment_id, "d": marker.digest})
    if shown.updated is not None:
        out["u"] = shown.updated
    return out


def shown_of(value: Any, prefix: str) -> Shown:
    """An issue as its entry remembers it (no entry: it shows nothing). Never sure: a create
    still asks Jira for the issue's marker."""
    if not isinstance(value, dict):
        return Shown(frozenset(), sure=False)
    labels = frozenset(f"{prefix}:{label}" for label in value.get("l") or ())
    comment = value.get("c")
    marker = Marker(str(comment), str(value.get("d") or "")) if comment else None
    updated = value.get("u")
    return Shown(labels, marker, updated=str(updated) if updated else None, sure=False)


def unchanged_marker(value: Any, updated: str | None) -> Marker | None:
    """Data Center: Tether's comment as an entry kept it, if the issue's ``updated`` has not
    moved since (as ``Recall.seen`` trusts a listing)."""
    if not isinstance(value, dict) or updated is None or value.get("u") != updated:
        return None
    comment = value.get("c")
    return Marker(str(comment), str(value.get("d") or "")) if comment else None


def _asof(scope: str, cursor: str) -> str:
    """A short digest naming the scope searched and the cursor a pull returned."""
    return digest(f"{scope}\n{cursor}")
