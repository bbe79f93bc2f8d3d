"""Run compiled rules on durable-rules and report which rules each subject matched."""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
import re
from collections.abc import Iterable
from typing import Any

import durable_rules_engine
from durable import engine as durable

from tether.errors import TetherError
from tether.rules.compiler import REF_KEY, SENTINEL_ACTION, SENTINEL_KEY, CompiledRules
from tether.rules.language import Rule

# Facts of one chunk share a durable-rules state (sid); the state is deleted after the
# chunk. That keeps live sids far below the 1,024 cap, memory flat, and the 32-bit message
# id hash far from collisions (~n²/2³³ per sid).
CHUNK = 500
_engine_ids = itertools.count()
# durable-rules keeps a property value under 16 MiB (error 314); rules never need more text.
MAX_TEXT = 1_000_000
_SURROGATE = re.compile("[\ud800-\udfff]")


def engine_safe(value: Any) -> Any:
    """``value`` in a form durable-rules' own JSON reader takes, meaning unchanged.

    Its reader rejects what Python's JSON writes for some values, each measured: a float in
    exponent form without a fraction (``1e-05``, ``1e+16``: error 204), infinities (204), a
    lone surrogate in a text (the call fails outright) and a text of 16 MiB or more (314).
    Such a float moves by one unit in the last place (``1.0000000000000003e-05``, which it
    reads), a non-finite one becomes absent, a lone surrogate becomes U+FFFD and a text is
    cut at MAX_TEXT characters."""
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        while not _float_fine(value):
            value = math.nextafter(value, 0.0)
        return value
    if isinstance(value, str):
        return value if _text_fine(value) else _SURROGATE.sub("\ufffd", value[:MAX_TEXT])
    if isinstance(value, list | tuple):
        return [v for v in (engine_safe(v) for v in value) if v is not None]
    if isinstance(value, dict):
        return {k: v for k, v in ((k, engine_safe(v)) for k, v in value.items()) if v is not None}
    return engine_safe(str(value))


def _float_fine(value: float) -> bool:
    text = repr(value)
    return math.isfinite(value) and ("e" not in text or "." in text)


def _text_fine(value: str) -> bool:
    return len(value) <= MAX_TEXT and (value.isascii() or not _SURROGATE.search(value))


def _fine(value: Any) -> bool:
    """True when durable-rules takes ``value`` as Python's JSON writes it (the common case,
    checked cheaply: most facts are booleans, whole numbers and short ASCII texts)."""
    kind = type(value)
    if kind is bool or kind is int or value is None:
        return True
    if kind is float:
        return _float_fine(value)
    if kind is str:
        return _text_fine(value)
    if kind is list:
        return all(_fine(v) for v in value)
    return False


def safe_fact(fact: dict[str, Any]) -> dict[str, Any]:
    """``fact`` with every value as engine_safe writes it (untouched when all are fine)."""
    for value in fact.values():
        if type(value) is not bool and not _fine(value):  # most values are presence flags
            return engine_safe(fact)
    return fact


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
        try:
            # durable-rules deletes `run` from the dict it is given: pass a (safe) copy.
            self._host.register_rulesets(_safe_literals(copy.deepcopy(compiled.rulesets)))
        except (durable_rules_engine.error, MemoryError) as exc:
            self.close()
            raise TetherError(f"The rule engine refused the rules of {self._packs()}: {exc}. "
                              "Run `tether rules lint` to find a rule it cannot take, fix or "
                              "disable it (rules: {disable: [id]}), and run again.") from None
        self._sids = itertools.count()

    def match(self, subjects: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, list[Rule]]:
        """For each (ref, field values), the rules it matched, in rule order."""
        out: dict[str, list[Rule]] = {}
        chunk: list[tuple[str, dict[str, Any]]] = []
        try:
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
        finally:
            self._hits.clear()  # a failed call leaves nothing for the next one to report
        return out

    def _run_chunk(self, chunk: list[tuple[str, dict[str, Any]]]) -> None:
        sid = f"e{self._id}s{next(self._sids)}"
        facts = [{**safe_fact(self.compiled.fact(values)), REF_KEY: ref, "id": ref, "sid": sid}
                 for ref, values in chunk]
        sentinel = {SENTINEL_KEY: True, REF_KEY: "", "id": f"{sid}-sentinel", "sid": sid}
        for name in self.compiled.rulesets:
            ref = ""
            try:
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
            except (durable_rules_engine.error, MemoryError) as exc:
                raise self._failure(ref, exc) from None
            finally:
                # A state left behind would count against the 1,024 live sids for good (it
                # may not exist: the first assert failed).
                with contextlib.suppress(durable_rules_engine.error):
                    self._host.delete_state(name, sid)
            if "exception" in state:  # durable-rules swallows action errors into the state
                raise self._failure("", state["exception"])

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
