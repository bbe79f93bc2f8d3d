"""Judgement that costs what changed: each task's matches (mapping rules, task drift rules)
are kept with the hash of the facts they were matched on, so a pass sends to the rule
engine only facts it has not matched before under the same rule set.

Exact by construction: rules are a pure function of the facts they are given, and those
facts include everything that can change a verdict (the task's fields, the whole days
since it was created or last changed, and its portfolio facts: KPI status, guardrails,
conflicts, windows). A pass with nothing changed matches nothing; a rule-set change or
``--full`` matches everything again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any, Protocol

from tether.rules.language import Rule
from tether.store.db import Store


class Matcher(Protocol):
    def match(self, items: Iterable[tuple[str, Any]]) -> dict[str, list[Rule]]: ...


def _stable(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(map(str, value))
    return str(value)


def fingerprint(value: Any) -> str:
    """A stable hash of JSON-like ``value`` (dates by their text, sets sorted)."""
    text = json.dumps(value, sort_keys=True, default=_stable, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


class Recall:
    """One stage's matches from the previous pass, and this pass's, to save afterwards."""

    def __init__(self, stage: str, rules: list[Rule], seen: dict[str, tuple[str, tuple[str, ...]]]
                 | None = None):
        self.stage = stage
        self.book = fingerprint([repr(r) for r in rules])
        self.rules = {r.id: r for r in rules}
        self.seen = seen or {}
        self.changed: dict[str, tuple[str, tuple[str, ...]]] = {}
        self.present: set[str] = set()
        self.gone: set[str] = set()
        self.partial = False  # seen holds only some tasks' matches

    @classmethod
    def load(cls, store: Store, stage: str, rules: list[Rule], full: bool = False,
             refs: Iterable[str] | None = None) -> Recall:
        """The stage's matches as the store kept them for these very rules (none if ``full``),
        of every task or of ``refs`` (see ``recall``)."""
        recall = cls(stage, rules)
        recall.partial = refs is not None
        if not full:
            recall.seen = store.load_matches(stage, recall.book, refs)
        return recall

    def recall(self, store: Store, refs: Iterable[str]) -> None:
        """Also hold the kept matches of ``refs`` (a Recall loaded for some tasks only)."""
        if self.partial:
            self.seen.update(store.load_matches(self.stage, self.book,
                                                set(refs) - self.seen.keys() - self.gone))

    def match(self, engine: Matcher, items: Iterable[tuple[str, Any]]) -> dict[str, list[Rule]]:
        """``engine.match(items)``, sending the engine only facts not matched before; the
        result lists every ref in ``items`` order, as a full match does."""
        order: list[str] = []
        fresh: list[tuple[str, Any]] = []
        hashes: dict[str, str] = {}
        for ref, facts in items:
            order.append(ref)
            digest = fingerprint(facts)
            before = self.seen.get(ref)
            if before is None or before[0] != digest:
                fresh.append((ref, facts))
                hashes[ref] = digest
        matched = engine.match(fresh)
        for ref in hashes:
            self.changed[ref] = (hashes[ref], tuple(r.id for r in matched.get(ref, [])))
        self.present.update(order)
        return {ref: matched.get(ref, []) if ref in hashes
                else [self.rules[i] for i in self.seen[ref][1]] for ref in order}

    def forget(self, refs: Iterable[str]) -> None:
        """Drop the matches of ``refs`` (items gone from the portfolio) when saving."""
        self.gone.update(refs)
        for ref in refs:
            self.seen.pop(ref, None)

    def save(self, store: Store, everything: bool = True, reset: bool = True) -> None:
        """Keep this pass's matches for the next one; when it matched ``everything``, tasks
        it did not see are dropped (they are gone). Unless ``reset``, matches are saved only
        while the store keeps those of this very rule set."""
        store.save_matches(self.stage, self.book, self.changed,
                           self.present if everything else None, self.gone, reset)

    @property
    def rematched(self) -> int:
        """How many tasks' facts went to the engine this pass."""
        return len(self.changed)
