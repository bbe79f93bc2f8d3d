"""`tether rules lint`: each whole-book check fires on a minimal bad rule, at the right rule and
line, and stays quiet on a close-but-fine one."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from tether.model import KPI
from tether.plugins import Plugins
from tether.rules.lint import LintIssue, format_lint, lint
from tether.rules.loader import RuleBook, load_rulebook
from tether.rules.packs import RulePackRef
from tether.workspace import load_workspace

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "files-only"
KPIS = [KPI("a", "A"), KPI("b", "B"), KPI("old", "Old", lifecycle="retired")]
SOURCES = ["jira", "github"]


def load(tmp_path: Path, text: str) -> tuple[RuleBook, Path]:
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    path = folder / "r.yaml"
    path.write_text(textwrap.dedent(text))
    return load_rulebook([RulePackRef("t", folder)], KPIS), path


def line_of(path: Path, needle: str, nth: int = 1) -> int:
    """1-based line of the ``nth`` line containing ``needle``."""
    hits = [i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line]
    return hits[nth - 1]


def run(tmp_path: Path, text: str, sources: list[str] | None = SOURCES,
        disabled: frozenset[str] = frozenset()) -> tuple[list[LintIssue], Path]:
    book, path = load(tmp_path, text)
    return lint(book, KPIS, sources, disabled), path


def one_rule(when: str, scope: str = "") -> str:
    return f"mappings:\n  - id: r1\n    kpi: a\n{scope}    when: {when}\n"


# (bad `when`, close-but-fine `when`, text on the line the error must point at)
NEVER = {
    "two eq": ("{all: [{status: Open}, {status: Done}]}",
               "{any: [{status: Open}, {status: Done}]}", "Done"),
    "eq outside in": ("{all: [{type: {in: [Story, Task]}}, {type: Bug}]}",
                      "{all: [{type: {in: [Bug, Task]}}, {type: Bug}]}", "Bug"),
    "disjoint in": ("{all: [{type: {in: [Bug, Story]}}, {type: {in: [Task, Epic]}}]}",
                    "{all: [{type: {in: [Bug, Story]}}, {type: {in: [Story, Epic]}}]}", "Epic"),
    "empty number range": ("{estimate: {gt: 5, lt: 3}}", "{estimate: {gt: 3, lt: 5}}", "estimate"),
    "half-open point": ("{estimate: {gte: 5, lt: 5}}", "{estimate: {gte: 5, lte: 5}}", "estimate"),
    "empty date range": ("{created: {gt: 2025-06-01, lt: 2025-01-01}}",
                         "{created: {gt: 2025-01-01, lt: 2025-06-01}}", "created"),
    "eq outside range": ("{all: [{estimate: 8}, {estimate: {lt: 5}}]}",
                         "{all: [{estimate: 3}, {estimate: {lt: 5}}]}", "lt"),
    "exists false and eq": ("{all: [{epic: {exists: false}}, {epic: EP-1}]}",
                            "{any: [{epic: {exists: false}}, {epic: EP-1}]}", "EP-1"),
    "exists false and any_of": ("{all: [{labels: {exists: false}}, {labels: {any_of: [x]}}]}",
                                "{all: [{labels: {exists: false}}, {not: {labels: {any_of: [x]}}}]}",
                                "any_of"),
    "exists false and all_of": ("{all: [{not: {labels: {exists: true}}}, {labels: {all_of: [x, y]}}]}",
                                "{all: [{labels: {exists: true}}, {labels: {all_of: [x, y]}}]}",
                                "all_of"),
    # `not` pushed down: estimate >= 1, > 5 and < 3. Without the positive test an item with no
    # estimate satisfies both negations, so the fine variant can match.
    "not pushed down": ("{all: [{estimate: {gte: 1}}, {not: {any: [{estimate: {lte: 5}}, "
                        "{estimate: {gte: 3}}]}}]}",
                        "{not: {any: [{estimate: {lte: 5}}, {estimate: {gte: 3}}]}}", "when"),
    "not excludes the only value": ("{all: [{status: Open}, {not: {status: Open}}]}",
                                    "{all: [{status: Open}, {not: {status: Done}}]}", "when"),
}


@pytest.mark.parametrize("case", NEVER)
def test_a_rule_that_can_never_match_is_an_error_at_its_condition(tmp_path: Path, case: str) -> None:
    bad, fine, needle = NEVER[case]
    issues, path = run(tmp_path, one_rule(bad))
    assert [(i.level, i.rule_id) for i in issues] == [("error", "r1")], issues
    assert issues[0].where == f"{path}:{line_of(path, needle)}"
    assert "can never match" in issues[0].message
    assert lint(load(tmp_path, one_rule(fine))[0], KPIS, SOURCES, frozenset()) == []


def test_the_error_points_at_the_conflicting_line_of_the_right_rule(tmp_path: Path) -> None:
    text = """\
        mappings:
          - id: fine
            kpi: a
            when: {status: Done}
          - id: dead
            kpi: b
            when:
              all:
                - status: Open
                - labels: {any_of: [x]}
                - status: Done
        """
    issues, path = run(tmp_path, text)
    assert [(i.rule_id, i.where) for i in issues] == [("dead", f"{path}:11")]


def test_the_message_says_what_to_do(tmp_path: Path) -> None:
    issues, _ = run(tmp_path, one_rule(NEVER["two eq"][0]))
    assert "`status: {in: ['Open', 'Done']}`" in issues[0].message
    issues, _ = run(tmp_path, one_rule(NEVER["empty number range"][0]))
    assert "`estimate` gt 5" in issues[0].message and "`estimate` lt 3" in issues[0].message


def test_every_branch_must_be_impossible_for_the_rule_to_be_dead(tmp_path: Path) -> None:
    dead = "{any: [{all: [{status: A}, {status: B}]}, {all: [{estimate: {gt: 5}}, {estimate: {lt: 1}}]}]}"
    issues, _ = run(tmp_path, one_rule(dead))
    assert len(issues) == 1 and "every other `any` branch is impossible too" in issues[0].message
    alive = "{any: [{all: [{status: A}, {status: B}]}, {estimate: {gt: 5}}]}"
    assert run(tmp_path, one_rule(alive))[0] == []


def test_scope_against_when_is_checked_too(tmp_path: Path) -> None:
    issues, path = run(tmp_path, one_rule("{source: github}", "    scope: {sources: [jira]}\n"))
    assert [(i.level, i.where) for i in issues] == [("error", f"{path}:{line_of(path, 'github')}")]


def test_drift_signal_rules_are_checked_as_well(tmp_path: Path) -> None:
    text = """\
        signals:
          - id: s1
            signal: s1
            message: never
            when: {active_kpi_count: {gt: 2, lt: 1}}
        """
    issues, path = run(tmp_path, text)
    assert [(i.level, i.rule_id, i.where) for i in issues] == [("error", "s1", f"{path}:5")]


def test_a_scope_naming_an_unconfigured_source(tmp_path: Path) -> None:
    issues, path = run(tmp_path, one_rule("{type: Bug}", "    scope: {sources: [jria]}\n"))
    assert [(i.level, i.rule_id, i.where) for i in issues] == [("error", "r1", f"{path}:2")]
    assert "`jria`" in issues[0].message and "github, jira" in issues[0].message
    issues, _ = run(tmp_path, one_rule("{type: Bug}", "    scope: {sources: [jira, gitlab]}\n"))
    assert [i.level for i in issues] == ["warning"] and "`gitlab`" in issues[0].message
    assert run(tmp_path, one_rule("{type: Bug}", "    scope: {sources: [jira]}\n"))[0] == []
    # Without the configured sources (a pack linted on its own) the check is skipped.
    assert run(tmp_path, one_rule("{type: Bug}", "    scope: {sources: [jria]}\n"), None)[0] == []


PAIR = """\
    mappings:
      - id: first
        kpi: a
        when: {{all: [{{type: Bug}}, {{labels: {{any_of: [x, y]}}}}]}}
      - id: second
        kpi: {kpi}
{scope}        when: {{all: [{{labels: {{any_of: [y, x]}}}}, {{type: {{in: [Bug]}}}}]}}
    """


def test_identical_rules_for_the_same_kpi_are_duplicates(tmp_path: Path) -> None:
    issues, path = run(tmp_path, PAIR.format(kpi="a", scope=""))
    assert [(i.level, i.rule_id, i.where) for i in issues] == [
        ("warning", "second", f"{path}:{line_of(path, 'id: second')}")]
    assert "`first`" in issues[0].message and "keep one" in issues[0].message


def test_identical_rules_for_different_kpis_are_counted_for_both(tmp_path: Path) -> None:
    issues, _ = run(tmp_path, PAIR.format(kpi="b", scope=""))
    assert [(i.level, i.rule_id) for i in issues] == [("warning", "second")]
    assert "counted for both" in issues[0].message and "descriptions" in issues[0].message


def test_a_different_scope_or_condition_is_not_a_pair(tmp_path: Path) -> None:
    assert run(tmp_path, PAIR.format(kpi="b", scope="        scope: {sources: [jira]}\n"))[0] == []
    narrowed = PAIR.format(kpi="b", scope="").replace("any_of: [y, x]", "any_of: [y]")
    assert run(tmp_path, narrowed)[0] == []


def test_a_mapping_to_an_inactive_kpi_is_a_warning(tmp_path: Path) -> None:
    issues, path = run(tmp_path, one_rule("{type: Bug}").replace("kpi: a", "kpi: old"))
    assert [(i.level, i.rule_id, i.where) for i in issues] == [("warning", "r1", f"{path}:2")]
    assert "retired" in issues[0].message and "drift" in issues[0].message
    # Such work is a zombie once it changes past the grace period, untethered only if idle.
    assert ("flags open work it matches as `zombie` once it changes more than 7 days after the "
            "KPI closed (as `untethered` if idle since before the close)") in issues[0].message


def test_the_warning_quotes_the_zombie_grace_the_workspace_tunes(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "r.yaml").write_text(one_rule("{type: Bug}").replace("kpi: a", "kpi: old"))
    drift = [p for p in Plugins().rule_packs() if p.name == "drift"]
    book = load_rulebook([*drift, RulePackRef("t", folder)], KPIS,
                         params={"zombie": {"grace_days": 14}})
    [issue] = [i for i in lint(book, KPIS, SOURCES, frozenset()) if i.rule_id == "r1"]
    assert "more than 14 days after the KPI closed" in issue.message


def test_a_disabled_id_that_names_no_rule_is_a_warning(tmp_path: Path) -> None:
    issues, _ = run(tmp_path, one_rule("{type: Bug}"), disabled=frozenset({"r1x", "r1"}))
    assert [(i.level, i.rule_id, i.where) for i in issues] == [("warning", "r1x", "tether.yaml")]
    assert "did you mean `r1`?" in issues[0].message


def test_a_disabled_rule_is_not_linted(tmp_path: Path) -> None:
    issues, _ = run(tmp_path, one_rule(NEVER["two eq"][0]), disabled=frozenset({"r1"}))
    assert issues == []


def test_format_lint_prints_one_line_per_issue_and_a_summary(tmp_path: Path) -> None:
    text = one_rule(NEVER["two eq"][0]) + "  - id: r2\n    kpi: old\n    when: {type: Bug}\n"
    issues, path = run(tmp_path, text)
    lines = format_lint(issues).splitlines()
    assert lines[0].startswith(f"{path}:{line_of(path, 'Done')}: error: r1: can never match")
    assert lines[1].startswith(f"{path}:5: warning: r2: maps to KPI `old`")
    assert lines[-1] == "1 warning, 1 error"
    assert format_lint([]) == "0 warnings, 0 errors"


def test_the_example_workspace_lints_without_errors() -> None:
    ws = load_workspace(EXAMPLE / "tether.yaml")
    issues = lint(ws.rules, list(ws.config.kpis), [s.name for s in ws.config.sources],
                  ws.config.rules.disable)
    assert [i for i in issues if i.level == "error"] == []
    retired = {k.id for k in ws.config.kpis if not k.is_active}
    flagged = {r.id for r in ws.rules.mappings if r.kpi in retired}
    assert {i.rule_id for i in issues} == flagged
