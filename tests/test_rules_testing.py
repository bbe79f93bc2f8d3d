"""`tether rules test`: YAML cases run through the real Mapper and Assessor, reported like pytest,
with failures that say which rule should have fired and which condition stopped it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from tether.errors import InvalidInput
from tether.model import KPI
from tether.rules import testing
from tether.rules.loader import RuleBook, load_rulebook
from tether.rules.packs import RulePackRef
from tether.rules.testing import CaseResult, format_results, run_rule_tests
from tether.workspace import load_workspace

ROOT = Path(__file__).resolve().parent.parent
DRIFT = ROOT / "rules" / "drift"
KPIS = [KPI("speed", "Speed"), KPI("cost", "Cost"), KPI("old", "Old", lifecycle="retired")]
RULES = """\
mappings:
  - id: web-perf
    kpi: speed
    scope: {projects: [web]}
    when:
      all:
        - labels: {all_of: [perf]}
        - type: Bug
  - id: stale-cost
    kpi: cost
    when: {idle_days: {gt: 30}}
"""


def book_with(tmp_path: Path, cases: str, drift: bool = False) -> tuple[RuleBook, Path]:
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    (folder / "map.yaml").write_text(RULES)
    test_file = folder / "map.test.yaml"
    test_file.write_text(textwrap.dedent(cases))
    packs = [RulePackRef("drift", DRIFT)] if drift else []
    return load_rulebook([*packs, RulePackRef("t", folder)], KPIS), test_file


def only(results: list[CaseResult], name: str) -> CaseResult:
    return next(r for r in results if r.name == name)


def test_the_shipped_rule_tests_pass() -> None:
    ws = load_workspace(ROOT / "examples" / "files-only" / "tether.yaml")
    results = run_rule_tests(ws.rules, list(ws.config.kpis))
    files = {Path(p).name for p in ws.rules.test_files}
    assert {"untethered.test.yaml", "mapping.test.yaml"} <= files
    expected = sum(len(yaml.safe_load(Path(p).read_text())["tests"]) for p in ws.rules.test_files)
    assert len(results) == expected
    assert [r for r in results if not r.passed] == []


def test_a_wrong_kpi_expectation_names_the_rule_and_its_failing_condition(tmp_path: Path) -> None:
    book, test_file = book_with(tmp_path, """\
        tests:
          - name: perf bug in another project
            task: {project: api, type: Bug, labels: [perf]}
            expect: {kpis: [speed]}
          - name: perf bug in web
            task: {project: web, type: Bug, labels: [perf]}
            expect: {kpis: [speed]}
        """)
    wrong, right = run_rule_tests(book, KPIS)
    assert (wrong.file, wrong.line, wrong.passed) == (str(test_file), 2, False)
    assert wrong.details[0] == "kpis: expected [speed], got []"
    why = next(d for d in wrong.details if "web-perf" in d)
    assert "`speed`" in why and "project in ['web']" in why and "'api'" in why
    assert right.passed and right.details == []


def test_the_first_failing_condition_is_located_in_the_rule_file(tmp_path: Path) -> None:
    book, _ = book_with(tmp_path, """\
        tests:
          - name: a story is no bug
            task: {project: web, type: Story, labels: [perf]}
            expect: {kpis: [speed]}
        """)
    [result] = run_rule_tests(book, KPIS)
    why = next(d for d in result.details if "web-perf" in d)
    assert "type eq 'Bug'" in why and "'Story'" in why and "[line 8]" in why


def test_an_unexpected_kpi_names_the_rule_that_mapped_it(tmp_path: Path) -> None:
    book, _ = book_with(tmp_path, """\
        tests:
          - name: idle work
            task: {updated: 2024-11-01}
            expect: {kpis: []}
        """)
    [result] = run_rule_tests(book, KPIS)
    assert not result.passed
    assert "kpis: expected [], got [cost]" in result.details
    assert any("unexpected `cost`" in d and "stale-cost" in d for d in result.details)


def test_now_defaults_to_a_fixed_date_and_can_be_set(tmp_path: Path) -> None:
    book, _ = book_with(tmp_path, """\
        tests:
          - name: idle for 31 days by the default clock
            task: {updated: 2024-12-01}
            expect: {kpis: [cost]}
          - name: idle for 14 days on the given date
            task: {updated: 2024-12-01}
            now: 2024-12-15
            expect: {kpis: [cost]}
        """)
    default, early = run_rule_tests(book, KPIS)
    assert default.passed
    assert not early.passed and any("idle_days gt 30" in d for d in early.details)


def test_signals_are_checked_against_the_drift_pack(tmp_path: Path) -> None:
    book, _ = book_with(tmp_path, """\
        tests:
          - name: open and unmapped
            task: {status_category: todo}
            expect: {kpis: [], signals: [untethered]}
          - name: claimed to be clean
            task: {status_category: todo}
            expect: {signals: []}
        """, drift=True)
    results = run_rule_tests(book, KPIS)
    flagged, clean = only(results, "open and unmapped"), only(results, "claimed to be clean")
    assert flagged.passed
    assert not clean.passed
    assert clean.details[:2] == ["signals: expected [], got [untethered]",
                                 "signal rules fired: untethered"]


def test_a_missing_signal_names_the_signal_rule_and_its_condition(tmp_path: Path) -> None:
    book, _ = book_with(tmp_path, """\
        tests:
          - name: done work is not untethered
            task: {status_category: done}
            expect: {signals: [untethered]}
        """, drift=True)
    result = only(run_rule_tests(book, KPIS), "done work is not untethered")
    why = next(d for d in result.details if "rule untethered" in d)
    assert "status_category in" in why and "'done'" in why


def test_mapper_and_assessor_are_built_once_and_closed(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    closed: list[str] = []
    for name in ("Mapper", "Assessor"):
        real = getattr(testing, name)

        class Counting(real):  # type: ignore[misc, valid-type]
            kind = name

            def __init__(self, rules):
                made.append(self.kind)
                super().__init__(rules)

            def close(self) -> None:
                closed.append(self.kind)
                super().close()

        monkeypatch.setattr(testing, name, Counting)
    book, _ = book_with(tmp_path, "tests:\n" + "".join(
        f"  - {{name: case {i}, task: {{key: T-{i}}}, expect: {{kpis: []}}}}\n" for i in range(4)))
    assert len(run_rule_tests(book, KPIS)) == 4
    assert sorted(made) == sorted(closed) == ["Assessor", "Mapper"]


def test_a_malformed_file_is_located_invalid_input(tmp_path: Path) -> None:
    book, test_file = book_with(tmp_path, """\
        tests:
          - name: typo in a key
            task: {key: A-1}
            expct: {kpis: []}
          - name: bad date
            task: {key: A-2, created: last tuesday}
            expect: {kpis: []}
          - name: no expectation
            task: {key: A-3}
          - name: unknown kpi
            task: {key: A-4, status_category: doing}
            expect: {kpis: [sped]}
        """)
    with pytest.raises(InvalidInput) as caught:
        run_rule_tests(book, KPIS)
    found = {(p.file, p.line, p.key) for p in caught.value.problems}
    f = str(test_file)
    assert found == {(f, 4, "tests[0].expct"), (f, 2, "tests[0]"), (f, 6, "tests[1].task.created"),
                     (f, 8, "tests[2]"), (f, 11, "tests[3].task.status_category"),
                     (f, 12, "tests[3].expect.kpis[0]")}
    messages = {p.key: p.message for p in caught.value.problems}
    assert "did you mean `expect`?" in messages["tests[0].expct"]
    assert "unknown KPI `sped`" in messages["tests[3].expect.kpis[0]"]


def test_a_file_without_a_tests_list_is_located_invalid_input(tmp_path: Path) -> None:
    book, test_file = book_with(tmp_path, "cases: []\n")
    with pytest.raises(InvalidInput) as caught:
        run_rule_tests(book, KPIS)
    assert [(p.file, p.line) for p in caught.value.problems] == [(str(test_file), 1)]


def test_format_results_reads_like_pytest(tmp_path: Path) -> None:
    book, test_file = book_with(tmp_path, """\
        tests:
          - name: fine
            task: {}
            expect: {kpis: []}
          - name: wrong
            task: {}
            expect: {kpis: [cost]}
        """)
    text = format_results(run_rule_tests(book, KPIS)).splitlines()
    assert text[0] == f"{test_file}::fine PASSED"
    assert text[1] == f"{test_file}::wrong FAILED"
    assert text[2] == "    kpis: expected [cost], got []"
    assert text[-1] == "1 passed, 1 failed"
    assert format_results([]) == "0 passed, 0 failed"
