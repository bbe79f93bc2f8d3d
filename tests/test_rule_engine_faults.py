"""durable-rules' sharp edges never reach a user as a traceback. Each case here crashed
`tether plan` or `tether rules explain` with `durable_rules_engine.error`:

- a list test on two or more values (`labels: {any_of: [a, b]}`) compiled to an `$or`
  inside `$iany`, which durable-rules compiles from memory it never initialised: it refused
  valid rules at random with "Could not create ruleset, error code: 102", the more rules the
  likelier, depending on what the process had allocated before (a few syncs, a pull);
- values its own JSON reader cannot take: floats written in exponent form without a
  fraction (`5e-05`, `1e+16`: error 204) and lone surrogates in a text;
- any other engine failure is reported as an error naming the item and the rule pack."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import durable_rules_engine
import pytest
from click.testing import CliRunner
from tether.cli import main
from tether.errors import TetherError
from tether.model import KPI, Task
from tether.pipeline.map import Mapper
from tether.rules.compiler import REF_KEY, compile_rules
from tether.rules.engine import RuleEngine, _Host, engine_safe
from tether.rules.loader import load_rulebook
from tether.rules.packs import RulePackRef
from workspace_kit import MAPPING, TASKS, make_workspace, task


def any_of_rules(folder: Path, n: int) -> list:
    folder.mkdir()
    (folder / "many.yaml").write_text("mappings:\n" + "".join(
        f"  - id: r{i}\n    kpi: k\n    when: {{labels: {{any_of: [a{i}, b{i}, c{i}]}}}}\n"
        for i in range(n)))
    return load_rulebook([RulePackRef("many", folder)], [KPI("k", "K")]).mappings


def test_list_tests_compile_to_rules_the_engine_accepts_whatever_memory_holds(
        tmp_path: Path) -> None:
    rules = any_of_rules(tmp_path / "pack", 20)
    for _ in range(30):
        # Fresh memory full of the byte durable-rules misreads as "an identifier" (0x09):
        # the nested form failed every time after this, the flat form never does.
        junk = [b"\x09" * size for size in range(16, 8000, 8)]
        del junk
        Mapper(rules).close()


def test_any_of_never_nests_an_or_inside_iany(tmp_path: Path) -> None:
    compiled = compile_rules(any_of_rules(tmp_path / "pack", 2), "map")

    def nested(node, inside: bool = False) -> bool:
        if isinstance(node, dict):
            return any((inside and key in ("$or", "$and"))
                       or nested(value, inside or key in ("$iany", "$iall"))
                       for key, value in node.items())
        return isinstance(node, list) and any(nested(v, inside) for v in node)

    assert not nested(compiled.rulesets)
    # ... and still means "holds at least one of them" (test_rule_operators covers the rest).
    mapper = Mapper(any_of_rules(tmp_path / "other", 2))
    items = [Task("jira", "A-1", "a", labels=("b1",)), Task("jira", "A-2", "b", labels=("z",)),
             Task("jira", "A-3", "c")]
    try:
        matched = mapper.map(items, datetime(2025, 7, 1, tzinfo=UTC))
    finally:
        mapper.close()
    assert {m.task: m.rule_id for m in matched} == {"jira:A-1": "r1"}


def test_numbers_and_texts_its_json_reader_rejects_are_judged_all_the_same(
        tmp_path: Path) -> None:
    mapping = MAPPING + """\
  - id: tiny-score
    kpi: nps
    when: {custom.score: {lt: 0.001}}
  - id: big-deal
    kpi: margin
    when: {custom.revenue: {gte: 1000000000000000}}
  - id: red-team
    kpi: nps
    when: {custom.team: {eq: red}}
"""
    tasks = [*TASKS, task("OPS-4", "Score the churn model", [], custom={"score": 0.00005}),
             task("OPS-5", "Close the whale", [], custom={"revenue": 1e16}),
             task("OPS-6", "Team without a name", [], custom={"team": "blue \ud83d"})]
    ws = make_workspace(tmp_path / "ws", tasks, mapping=mapping)
    result = CliRunner().invoke(main, ["plan", "--json", "-c", str(ws)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    links = {(m["task"], m["rule_id"]) for m in json.loads(result.stdout)["mappings"]}
    assert {("jira:OPS-4", "tiny-score"), ("jira:OPS-5", "big-deal")} <= links
    assert not any(ref == "jira:OPS-6" for ref, _ in links)


@pytest.mark.parametrize("value, safe", [
    (5e-05, 4.9999999999999996e-05), (1e16, 9999999999999998.0), (3.2e-06, 3.2e-06),
    (0.25, 0.25), (float("inf"), None), (float("nan"), None), (7, 7), (True, True),
    ("a\ud83db", "a\ufffdb"), (["x", float("inf"), 1e-05], ["x", 9.999999999999999e-06]),
])
def test_engine_safe_values_keep_their_meaning(value, safe) -> None:
    assert engine_safe(value) == safe


@pytest.fixture
def failing_engine(monkeypatch):
    """durable-rules fails on the fact of jira:OPS-1 (whatever the reason)."""
    real = _Host.assert_fact

    def assert_fact(self, ruleset, fact, complete=None):
        if fact.get(REF_KEY) == "jira:OPS-1":
            raise durable_rules_engine.error("Could not assert fact, error code: 102")
        return real(self, ruleset, fact, complete)

    monkeypatch.setattr(_Host, "assert_fact", assert_fact)


@pytest.mark.parametrize("command", [("plan",), ("rules", "explain", "jira:OPS-3")])
def test_an_engine_failure_names_the_item_and_the_pack_without_a_traceback(
        command: tuple[str, ...], tmp_path: Path, failing_engine) -> None:
    ws = make_workspace(tmp_path / "ws")
    result = CliRunner().invoke(main, [*command, "-c", str(ws)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert ("error The rule engine failed on jira:OPS-1 with the rules of rule pack rules "
            "(Could not assert fact, error code: 102). Run again") in " ".join(result.output.split())
    assert "rules: {disable: [id]}" in result.output


def test_a_failed_chunk_leaves_no_state_and_no_stale_hits(tmp_path: Path, monkeypatch) -> None:
    rules = any_of_rules(tmp_path / "pack", 3)
    engine = RuleEngine(compile_rules(rules, "map"))
    real = _Host.assert_fact

    def flaky(self, ruleset, fact, complete=None):
        if fact.get(REF_KEY) == "x:2":
            raise durable_rules_engine.error("Could not assert fact, error code: 204")
        return real(self, ruleset, fact, complete)

    facts = [("x:1", {"labels": ["a0"]}), ("x:2", {"labels": ["b1"]})]
    try:
        monkeypatch.setattr(_Host, "assert_fact", flaky)
        with pytest.raises(TetherError, match="failed on x:2 with the rules of rule pack many"):
            engine.match(facts)
        monkeypatch.setattr(_Host, "assert_fact", real)
        ruleset = engine._host.get_ruleset("map0")
        with pytest.raises(durable_rules_engine.error, match="309"):  # SID not found: deleted
            ruleset.get_state(f"e{engine._id}s0")
        # x:1 matched r0 in the failed call; the next call reports only its own items.
        assert {ref: [r.id for r in hits] for ref, hits in engine.match([facts[1]]).items()} == {
            "x:2": ["r1"]}
    finally:
        engine.close()
