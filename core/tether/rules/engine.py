"""Run compiled rules on durable-rules and report which rules each subject matched."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable
from typing import Any

import durable_rules_engine
from durable import engine as durable

from ..errors import TetherError
from .compiler import REF_KEY, SENTINEL_ACTION, SENTINEL_KEY, CompiledRules
from .language import Rule

# Facts of one chunk share a durable-rules state (sid); the state is deleted after the
# chunk. That keeps live sids far below the 1,024 cap, memory flat, and the 32-bit message
# id hash far from collisions (~n²/2³³ per sid).
CHUNK = 500
_engine_ids = itertools.count()


class _Host(durable.Host):
    """A Host whose actions record (subject, rule) hits, without background threads."""

    def __init__(self, hits: set[tuple[str, str]]):
        self._hits = hits
        super().__init__()

    def _run(self) -> None:
        # The stock Host starts dispatch timers that run actions on other threads; rules
        # here fire synchronously inside assert_fact, so the timers would only add races.
        return None

    def get_action(self, action_name: str) -> Any:
        hits = self._hits
        if action_name == SENTINEL_ACTION:
            return lambda c: None

        def record(c: Any) -> None:
            hits.add((c.m[REF_KEY], action_name))

        return record


class RuleEngine:
    """One durable-rules Host for one compiled rule set (registered rulesets cannot be
    replaced, so a changed rule set gets a fresh engine)."""

    def __init__(self, compiled: CompiledRules):
        self.compiled = compiled
        self._hits: set[tuple[str, str]] = set()
        self._host = _Host(self._hits)
        self._id = next(_engine_ids)
        # durable-rules deletes `run` from the dict it is given: pass a copy.
        self._host.register_rulesets(copy.deepcopy(compiled.rulesets))
        self._sids = itertools.count()

    def match(self, subjects: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, list[Rule]]:
        """For each (ref, field values), the rules it matched, in rule order."""
        out: dict[str, list[Rule]] = {}
        chunk: list[tuple[str, dict[str, Any]]] = []
        for subject in subjects:
            out[subject[0]] = []
            chunk.append(subject)
            if len(chunk) == CHUNK:
                self._run_chunk(chunk)
                chunk = []
        if chunk:
            self._run_chunk(chunk)
        order = {action: i for i, action in enumerate(self.compiled.rules)}
        for ref, action in sorted(self._hits, key=lambda h: order[h[1]]):
            out[ref].append(self.compiled.rules[action])
        self._hits.clear()
        return out

    def _run_chunk(self, chunk: list[tuple[str, dict[str, Any]]]) -> None:
        sid = f"e{self._id}s{next(self._sids)}"
        facts = [{**self.compiled.fact(values), REF_KEY: ref, "id": ref, "sid": sid}
                 for ref, values in chunk]
        sentinel = {SENTINEL_KEY: True, REF_KEY: "", "id": f"{sid}-sentinel", "sid": sid}
        for name in self.compiled.rulesets:
            self._host.assert_fact(name, sentinel)
            for fact in facts:
                ref = fact[REF_KEY]
                try:
                    self._host.assert_fact(name, fact)
                except durable.MessageNotHandledException:
                    pass  # no rule of this ruleset matched
                except durable.MessageObservedException:
                    raise TetherError(f"Two items share the reference {ref!r}; "
                                      "give each source a unique name.") from None
            state = self._host.get_state(name, sid)
            if "exception" in state:  # durable-rules swallows action errors into the state
                raise TetherError(f"Rule engine failed: {state['exception']}")
            self._host.delete_state(name, sid)

    def close(self) -> None:
        """Free the engine's rulesets in the C library."""
        for ruleset in self._host._ruleset_list:  # no public API to delete a ruleset
            durable_rules_engine.delete_ruleset(ruleset._handle)
        self._host._ruleset_list.clear()
        self._host._ruleset_directory.clear()
