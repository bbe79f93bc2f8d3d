"""Run compiled rules on durable-rules and report which rules each subject matched."""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
from collections.abc import Collection, Iterable
from functools import cache
from typing import Any

import durable_rules_engine
from durable import engine as durable

from tether.errors import TetherError
from tether.rules.compiler import (
    REF_KEY,
    SENTINEL_ACTION,
    SENTINEL_KEY,
    CompiledRules,
    Projector,
    Read,
    engine_safe,
    gate_passes,
    ruleset_gate,
    value_code,
)
from tether.rules.fields import READ_ENV, task_field_code
from tether.rules.language import Rule

# Facts of one chunk share a durable-rules state (sid); the state is deleted after the
# chunk. That keeps live sids far below the 1,024 cap, memory flat, and the 32-bit message
# id hash far from collisions (~n²/2³³ per sid; a fact that meets one is run again in a
# state of its own).
CHUNK = 500
_engine_ids = itertools.count()
# durable's result code for a message whose id (hash) its state has seen (1: no rule matched).
OBSERVED = 2
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_loads, _load_at = json.JSONDecoder().decode, json.JSONDecoder().raw_decode
_REF_FIRST = f'":{{"m":{{"{REF_KEY}":'


@cache
def _task_reader(from_values: frozenset[str]) -> Read:
    """Fields read from the task ``t``, except those in ``from_values``: from the values ``v``."""
    return lambda name: value_code(name) if name in from_values else task_field_code(name)


def _safe_literals(node: Any) -> Any:
    """A ruleset with its numbers and texts as engine_safe writes them, structure untouched."""
    if isinstance(node, dict):
        return {k: _safe_literals(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_safe_literals(v) for v in node]
    if isinstance(node, float | str) and not isinstance(node, bool):
        safe = engine_safe(node)
        return node if safe is None else safe
    return node


class _Host(durable.Host):
    """A Host without background threads whose assert_fact only asserts: the actions a
    state's facts enable are read once per state by RuleEngine, none is run."""

    def _run(self) -> None:
        # The stock Host starts dispatch timers that run actions on other threads.
        return None

    def get_action(self, action_name: str) -> Any:
        return _never_run

    def assert_fact(self, ruleset_name: str, fact: dict[str, Any], complete: Any = None
                    ) -> tuple[int, int]:
        """Assert ``fact``: (durable's result code, the offset of its state). Where durable's
        own assert_fact raises (no rule matched: 1, OBSERVED) this returns the code: it
        would build a message for each, and run the actions of each fact apart."""
        handle = self._ruleset_directory[ruleset_name]._handle
        return durable_rules_engine.assert_fact(handle, _dumps(fact))


def _never_run(c: Any) -> None:
    raise AssertionError("RuleEngine reads actions, it never runs them")


def _hit(message: str) -> tuple[str, str]:
    """(action, ref) of an action's message, ``{"<action>":{"m":{<fact as asserted>}}}``:
    the ref read alone when the fact starts with it (durable keeps a fact's text)."""
    end = message.find('"', 2)
    if message.startswith('{"') and message.startswith(_REF_FIRST, end):
        return message[2:end], _load_at(message, end + len(_REF_FIRST))[0]
    ((action, frame),) = _loads(message).items()
    return action, frame["m"][REF_KEY]


class RuleEngine:
    """One durable-rules Host for one compiled rule set (registered rulesets cannot be
    replaced, so a changed rule set gets a fresh engine)."""

    def __init__(self, compiled: CompiledRules):
        self.compiled = compiled
        self._host = _Host()
        self._id = next(_engine_ids)
        # Per ruleset, what a fact must hold for any of its rules to match: the others are
        # not asserted (no rule would see them; asserting is most of the engine's time).
        self._gates = {name: gate for name, ruleset in compiled.rulesets.items()
                       if (gate := ruleset_gate(ruleset))}
        try:
            # durable-rules deletes `run` from the dict it is given: pass a (safe) copy.
            self._host.register_rulesets(_safe_literals(copy.deepcopy(compiled.rulesets)))
        except (durable_rules_engine.error, MemoryError) as exc:
            self.close()
            raise TetherError(f"The rule engine refused the rules of {self._packs()}: {exc}. "
                              "Run `tether rules lint` to find a rule it cannot take, fix or "
                              "disable it (rules: {disable: [id]}), and run again.") from None
        self._sids = itertools.count()
        self._handles = {name: self._host.get_ruleset(name)._handle for name in compiled.rulesets}

    def task_projector(self, from_values: Collection[str] = ()) -> Projector:
        """The compiled rules' projector of tasks: ``project(task, now, values)`` reads each
        field the rules use from the task as of ``now``, those named in ``from_values`` from
        ``values``."""
        return self.compiled.projector(_task_reader(frozenset(from_values)), READ_ENV)

    def match(self, subjects: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, list[Rule]]:
        """For each (ref, field values), the rules it matched, in rule order (a ref given
        twice is refused: two sources share a name)."""
        project = self.compiled.projector()
        return self.match_facts((ref, project(None, None, values)) for ref, values in subjects)

    def match_facts(self, facts: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, list[Rule]]:
        """As match, for facts one of compiled.projector's functions built. ``facts`` is read
        a chunk at a time; a fact is completed (ref, id, state) and dropped with its chunk."""
        found: dict[str, list[Any]] = {}  # action names, then (in place) their rules
        chunk: list[dict[str, Any]] = []
        for ref, fact in facts:
            if ref in found:
                raise TetherError(f"Two items share the reference {ref!r}; "
                                  "give each source a unique name.")
            found[ref] = []
            fact[REF_KEY] = fact["id"] = ref  # a projector's fact has REF_KEY first
            chunk.append(fact)
            if len(chunk) == CHUNK:
                self._run_chunk(chunk, found)
                chunk = []
        if chunk:
            self._run_chunk(chunk, found)
        rules = self.compiled.rules
        order = {action: i for i, action in enumerate(rules)}
        for hits in found.values():
            if len(hits) == 1:  # the common case
                hits[0] = rules[hits[0]]
            elif hits:  # a rule can fire twice for a fact (durable splits an `$or` into rules)
                hits[:] = [rules[a] for a in sorted(set(hits), key=order.__getitem__)]
        return found

    def _run_chunk(self, chunk: list[dict[str, Any]], found: dict[str, list[Any]],
                   rulesets: Iterable[str] | None = None) -> None:
        """Assert ``chunk`` in a state of its own per ruleset, record the actions it enables
        in ``found``, delete the state."""
        for name in rulesets or self._handles:
            handle = self._handles[name]
            sid = f"e{self._id}s{next(self._sids)}"
            sentinel = {SENTINEL_KEY: True, REF_KEY: "", "id": f"{sid}-sentinel", "sid": sid}
            again: list[dict[str, Any]] = []  # met a false duplicate (32-bit id hash)
            ref = ""
            try:
                _, state = self._host.assert_fact(name, sentinel)
                # Its action, run now, sets the state's action context delete_state frees.
                self._read_actions(handle, state, found)
                gate = self._gates.get(name)
                for fact in chunk:
                    if gate is not None and not gate_passes(gate, fact):
                        continue  # no rule of this ruleset can match it
                    ref = fact[REF_KEY]
                    fact["sid"] = sid
                    if self._host.assert_fact(name, fact)[0] == OBSERVED:
                        again.append(fact)
                ref = ""
                self._read_actions(handle, state, found)
            except (durable_rules_engine.error, MemoryError) as exc:
                raise self._failure(ref, exc) from None
            finally:
                # A state left behind would count against the 1,024 live sids for good (it
                # may not exist: the first assert failed).
                with contextlib.suppress(durable_rules_engine.error):
                    self._host.delete_state(name, sid)
            if again:
                self._run_chunk(again, found, [name])

    @staticmethod
    def _read_actions(handle: int, state: int, found: dict[str, list[Any]]) -> None:
        """Record and complete every action pending in ``state``, as (ref, action name)."""
        start = durable_rules_engine.start_action_for_state(handle, state)
        message = start and start[1]
        while message:
            action, ref = _hit(message)
            if action != SENTINEL_ACTION:
                found[ref].append(action)
            message = durable_rules_engine.complete_and_start_action(handle, state)

    def _failure(self, ref: str, cause: object) -> TetherError:
        """An engine failure as users read it: which item, which rule packs, what to do."""
        return TetherError(
            f"The rule engine failed on {ref or 'the items'} with the rules of "
            f"{self._packs()} ({cause}). Run again; if it fails again, switch the pack's rules "
            "off one at a time (rules: {disable: [id]} in tether.yaml) to find the one it trips "
            "on, and report this message with the item's fields.")

    def _packs(self) -> str:
        packs = sorted({r.pack for r in self.compiled.rules.values()})
        return f"rule pack{'s' if len(packs) != 1 else ''} {', '.join(packs) or '(none)'}"

    def close(self) -> None:
        """Free the engine's rulesets in the C library."""
        for ruleset in self._host._ruleset_list:  # no public API to delete a ruleset
            durable_rules_engine.delete_ruleset(ruleset._handle)
        self._host._ruleset_list.clear()
        self._host._ruleset_directory.clear()

