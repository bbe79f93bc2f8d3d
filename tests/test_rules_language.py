"""Rules are checked when they load: every mistake is reported at once, with its line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from tether.errors import InvalidInput
from tether.model import KPI
from tether.rules.loader import load_rulebook
from tether.rules.packs import RulePackRef

KPIS = [KPI("opex", "Cut cost"), KPI("nps", "NPS up"), KPI("old", "Old", lifecycle="retired")]


def load(tmp_path: Path, text: str, name: str = "r.yaml", disable: frozenset[str] = frozenset()):
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(textwrap.dedent(text))
    return load_rulebook([RulePackRef("local", folder)], KPIS, disable)


def problems(tmp_path: Path, text: str) -> list[tuple[int, str, str]]:
    with pytest.raises(InvalidInput) as info:
        load(tmp_path, text)
    return [(p.line, p.key, p.message) for p in info.value.problems]


def test_a_valid_file_loads_every_rule_with_its_location(tmp_path: Path) -> None:
    book = load(tmp_path, """\
        mappings:
          - id: vendors
            kpi: opex
            weight: 2
            when: {labels: {any_of: [vendor]}}
          - id: portal
            kpi: nps
            scope: {sources: github}
            when: {title: {contains: portal}}
        signals:
          - id: lonely
            signal: lonely
            message: "{title} has {kpi_count} KPIs"
            when: {kpi_count: 0}
        """)
    assert [(r.id, r.kpi, r.weight, r.line) for r in book.mappings] == \
        [("vendors", "opex", 2.0, 2), ("portal", "nps", 1.0, 6)]
    assert book.mappings[1].scope.sources == frozenset({"github"})
    assert [r.signal for r in book.signals] == ["lonely"]
    assert set(book.packs) == {"local"} and len(book.packs["local"]) == 12


@pytest.mark.parametrize("rule, line, key, message", [
    ("{id: a, kpi: opex, when: {labls: {any_of: [x]}}}", 2, "mappings[0].when.labls",
     "unknown field `labls`; did you mean `labels`?"),
    ("{id: a, kpi: opex, when: {title: {matches: '(unclosed'}}}", 2,
     "mappings[0].when.title.matches", "bad regular expression"),
    ("{id: a, kpi: nope, when: {type: Bug}}", 2, "mappings[0].kpi", "unknown KPI `nope`"),
    ("{id: a, kpi: opex, when: {estimate: {any_of: [x]}}}", 2,
     "mappings[0].when.estimate.any_of", "`any_of` is for list fields"),
    ("{id: a, kpi: opex, when: {estimate: {gt: lots}}}", 2, "mappings[0].when.estimate.gt",
     "`estimate` is number"),
    ("{id: a, kpi: opex, when: {status_category: finished}}", 2,
     "mappings[0].when.status_category", "one of todo, in_progress, done"),
    ("{id: a, kpi: opex, when: {labels: [a, b]}}", 2, "mappings[0].when.labels",
     "a list needs an operator"),
    ("{id: a, kpi: opex, when: {type: {equals: Bug}}}", 2, "mappings[0].when.type.equals",
     "unknown operator `equals`"),
    ("{id: a, kpi: opex, weight: 0, when: {type: Bug}}", 2, "mappings[0].weight",
     "greater than 0"),
    ("{id: A B, kpi: opex, when: {type: Bug}}", 2, "mappings[0].id", "lower-case"),
    ("{id: a, kpi: opex}", 2, "mappings[0]", "missing `when`"),
    ("{id: a, kpi: opex, when: {type: Bug}, wen: x}", 2, "mappings[0].wen", "unknown key"),
    ("{id: a, kpi: opex, when: {created: {gt: someday}}}", 2, "mappings[0].when.created.gt",
     "expected a date"),
    ("{id: a, kpi: opex, when: {any: []}}", 2, "mappings[0].when.any", "non-empty list"),
])
def test_each_load_time_error_names_its_line_and_key(tmp_path: Path, rule: str, line: int,
                                                     key: str, message: str) -> None:
    found = problems(tmp_path, f"mappings:\n  - {rule}\n")
    assert len(found) == 1, found
    assert found[0][0] == line and found[0][1] == key
    assert message in found[0][2]


def test_all_problems_of_all_files_are_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "a.yaml").write_text(
        "mappings:\n  - id: dup\n    kpi: opex\n    when: {type: Bug}\n")
    found = problems(tmp_path, """\
        mappings:
          - id: fine
            kpi: opex
            when: {type: Story}
          - id: dup
            kpi: opex
            when: {type: Task}
          - id: broken
            kpi: opex
            when:
              all:
                - title: {matches: "["}
                - colour: red
        """)
    assert [(line, key) for line, key, _ in found] == [
        (5, "mappings[1].id"),
        (12, "mappings[2].when.all[0].title.matches"),
        (13, "mappings[2].when.all[1].colour"),
    ]
    assert "first defined at" in found[0][2] and "a.yaml:2" in found[0][2]


def test_signal_messages_may_only_name_known_fields(tmp_path: Path) -> None:
    found = problems(tmp_path, """\
        signals:
          - id: s
            signal: s
            message: "{titel} is lonely"
            when: {kpi_count: 0}
        """)
    assert found == [(4, "signals[0].message",
                      "unknown placeholder {titel}; use a field name such as {title}")]
    found = problems(tmp_path, """\
        signals:
          - {id: s, signal: s, message: "{} is lonely", when: {kpi_count: 0}}
        """)
    assert found == [(2, "signals[0].message",
                      "unknown placeholder {}; use a field name such as {title}")]


def test_link_fields_are_for_signal_rules_only(tmp_path: Path) -> None:
    found = problems(tmp_path, "mappings:\n  - {id: a, kpi: opex, when: {kpi_count: 0}}\n")
    assert found[0][1] == "mappings[0].when.kpi_count"


def test_disabled_rules_are_left_out(tmp_path: Path) -> None:
    book = load(tmp_path, "mappings:\n  - {id: a, kpi: opex, when: {type: Bug}}\n"
                "  - {id: b, kpi: opex, when: {type: Task}}\n", disable=frozenset({"a"}))
    assert [r.id for r in book.mappings] == ["b"]


def test_yaml_syntax_errors_are_located(tmp_path: Path) -> None:
    found = problems(tmp_path, "mappings:\n  - {id: a, kpi: opex\n")
    assert found[0][0] == 3 and "not valid YAML" in found[0][2]


KPI_RULE = """\
signals:
  - id: overfed
    signal: misallocated
    subject: kpi
    params: {tolerance: 0.15}
    message: "{name} is over-fed"
    when:
      all:
        - lifecycle: active
        - share_gap: {gt: {param: tolerance}}
"""


def test_kpi_rules_name_kpi_fields_and_take_parameters(tmp_path: Path) -> None:
    book = load(tmp_path, KPI_RULE)
    [rule] = book.signals
    assert rule.subject == "kpi" and rule.params == {"tolerance": 0.15}
    assert rule.when.items[1].arg == 0.15


def test_config_overrides_a_rule_parameter(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "r.yaml").write_text(KPI_RULE)
    book = load_rulebook([RulePackRef("local", folder)], KPIS,
                         params={"overfed": {"tolerance": 0.3}})
    assert book.signals[0].when.items[1].arg == 0.3
    with pytest.raises(InvalidInput) as info:
        load_rulebook([RulePackRef("local", folder)], KPIS, params={"overfed": {"tol": 1}})
    assert "unknown parameter `tol`" in str(info.value)


@pytest.mark.parametrize("text, key, message", [
    (KPI_RULE.replace("share_gap: {gt: {param: tolerance}}", "share_gap: {gt: {param: tol}}"),
     "signals[0].when.all[1].share_gap.gt", "unknown parameter `tol`"),
    (KPI_RULE.replace("subject: kpi", "subject: team"), "signals[0].subject", "must be one of"),
    (KPI_RULE.replace("lifecycle: active", "labels: {any_of: [x]}"),
     "signals[0].when.all[0].labels", "unknown field `labels`"),
])
def test_kpi_rule_mistakes_are_located(tmp_path: Path, text: str, key: str, message: str) -> None:
    found = problems(tmp_path, text)
    assert [(k, message in m) for _, k, m in found] == [(key, True)]
