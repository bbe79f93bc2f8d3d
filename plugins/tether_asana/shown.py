"""What each task showed of Tether when a pass last read it, kept in ``Connector.memory``
so that a quiet pass reads only the tasks its incremental pull brought.

``memory["shown"]`` holds ``asof`` (a digest of the cursor that pass's pull returned),
``of`` (label prefix, label mode and field, configured projects: the views depend on them),
``me`` (the user whose follows are noted: checked before a follow decides anything),
``tasks`` (gid -> ``[flags, *labels]``; flags 1: the user follows it, 2: it is in none of
the projects, so it is fetched whenever read; labels as the label mode keeps them) and
``stale`` (tasks read whose view is unknown: written since, moved, gone). A task without an
entry shows no label under the prefix, is not followed and is in the projects.

It holds only when this pass's pull was given exactly that cursor: a task that pull did not
bring is unchanged since, because Asana's ``modified_since`` counts tag, custom field and
story changes (research/tracker-apis.md 3.1), and Tether's own label and story writes are
such changes. Moving between projects is not one, so it also needs every project's events
(a task that left them is named by a removed or deleted event). Otherwise a pass lists
every project, as a first pass does. Like the story notes it is a hint: never used by
``recover``, never a reason to skip a check before a write.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from tether.sdk import digest

KEY = "shown"
FOLLOWED, OUTSIDE = 1, 2
Item = dict[str, Any]


class Keeps(Protocol):
    """The label mode's side (tether_asana.labels): its labels as memory keeps them."""

    def shown(self, item: Item, prefix: str) -> set[str]: ...
    def keep(self, item: Item, prefix: str) -> list[Any]: ...
    def kept_names(self, kept: list[Any]) -> set[str] | None: ...


@dataclass(frozen=True)
class View:
    """What one task shows: Tether's labels (and their kept form), its followers, the
    configured projects it is in; ``fresh`` when read this pass, not remembered."""

    labels: frozenset[str]
    kept: tuple[Any, ...]
    followers: frozenset[str]
    homes: frozenset[str]
    fresh: bool = True


@dataclass
class Pull:
    """What this connector's pull was given and returned, and every task it listed (raw)."""

    given: str | None
    returned: str | None
    complete: bool
    items: dict[str, Item]


@dataclass
class Memo:
    """The views a pass noted, valid for this pass."""

    me: str
    tasks: dict[str, list[Any]]
    stale: set[str]

    def view(self, key: str, labels: Keeps, projects: Iterable[str]) -> View:
        flags, *kept = self.tasks.get(key) or [0]
        return View(frozenset(labels.kept_names(kept) or ()), tuple(kept),
                    frozenset({self.me}) if flags & FOLLOWED else frozenset(),
                    frozenset() if flags & OUTSIDE else frozenset(projects), fresh=False)


def of(prefix: str, label_mode: str, label_field: str | None, projects: list[str]) -> list[Any]:
    return [prefix, label_mode, label_field or "", list(projects)]


def item_view(item: Item, prefix: str, labels: Keeps, projects: Iterable[str]) -> View:
    """A task payload's view (fields: the labels', followers, memberships.project)."""
    followers = {str(f["gid"]) for f in item.get("followers") or []
                 if isinstance(f, dict) and f.get("gid")}
    homes = {str((m.get("project") or {}).get("gid")) for m in item.get("memberships") or []
             if isinstance(m, dict)}
    return View(frozenset(labels.shown(item, prefix)), tuple(labels.keep(item, prefix)),
                frozenset(followers), frozenset(homes & set(projects)))


def load(memory: dict[str, Any], asof: str | None, wanted_of: list[Any],
         labels: Keeps) -> Memo | None:
    """The noted views, if noted as of ``asof`` for ``wanted_of`` and well formed."""
    raw = memory.get(KEY)
    if not isinstance(raw, dict) or asof is None or raw.get("asof") != digest(asof) \
            or raw.get("of") != wanted_of:
        return None
    me, tasks, stale = raw.get("me"), raw.get("tasks"), raw.get("stale")
    if not (isinstance(me, str) and isinstance(tasks, dict) and isinstance(stale, list)):
        return None
    for entry in tasks.values():
        if not (isinstance(entry, list) and entry and type(entry[0]) is int
                and labels.kept_names(entry[1:]) is not None):
            return None
    return Memo(me, dict(tasks), {str(key) for key in stale})


def hint(memory: dict[str, Any]) -> str | None:
    """The user the noted follows are about, if any."""
    raw = memory.get(KEY)
    me = raw.get("me") if isinstance(raw, dict) else None
    return me if isinstance(me, str) else None


def known(memory: dict[str, Any]) -> set[str]:
    """Every task the memory says something about (entries and stale ones)."""
    raw = memory.get(KEY)
    if not isinstance(raw, dict):
        return set()
    tasks, stale = raw.get("tasks"), raw.get("stale")
    return {str(k) for k in (tasks if isinstance(tasks, dict) else ())} | \
        {str(k) for k in (stale if isinstance(stale, list) else ())}


def settle(tasks: dict[str, list[Any]], stale: set[str], views: dict[str, View],
           gone: Iterable[str], me: str) -> None:
    """Note the fresh views (an entry only where one differs from the default) and the
    tasks found gone (stale: a later pass looks again)."""
    for key, view in views.items():
        if not view.fresh:
            continue
        flags = (FOLLOWED if me in view.followers else 0) | (0 if view.homes else OUTSIDE)
        if flags or view.kept:
            tasks[key] = [flags, *view.kept]
        else:
            tasks.pop(key, None)
        stale.discard(key)
    for key in gone:
        tasks.pop(key, None)
        stale.add(key)


def save(memory: dict[str, Any], asof: str | None, noted_of: list[Any], me: str,
         tasks: dict[str, list[Any]], stale: set[str]) -> None:
    memory[KEY] = {"asof": None if asof is None else digest(asof), "of": noted_of, "me": me, "tasks": tasks,
                   "stale": sorted(stale)}


def refresh(memory: dict[str, Any], me: str, views: dict[str, View], gone: Iterable[str]
            ) -> None:
    """Note views read after the pull (recover's) into the memory as it stands, when its
    follows are about ``me``; its ``asof`` stays."""
    raw = memory.get(KEY)
    if isinstance(raw, dict) and raw.get("me") == me and isinstance(raw.get("tasks"), dict) \
            and isinstance(raw.get("stale"), list):
        stale = {str(key) for key in raw["stale"]}
        settle(raw["tasks"], stale, views, gone, me)
        raw["stale"] = sorted(stale)


def mark_stale(memory: dict[str, Any], keys: Iterable[str]) -> None:
    """Tasks Tether just wrote to: their views are unknown until read again."""
    raw = memory.get(KEY)
    if isinstance(raw, dict) and isinstance(raw.get("stale"), list):
        raw["stale"] = sorted(set(raw["stale"]) | set(keys))
