"""`tether rules diff --against DIR`: what a proposed rule change would change in the verdicts,
per item, judged on the last pull; no tracker is read, nothing is written or recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from tether.cli import main
from tether.workspace import load_workspace
from workspace_kit import TASKS, make_workspace, task, write_tasks

# The proposal: survey work no longer maps to NPS (its rule is gone), wiki work does, and
# pricing counts double.
PROPOSED = """\
mappings:
  - id: pricing
    kpi: margin
    weight: 2
    when: {labels: {any_of: [pricing, margin]}}
  - id: wiki
    kpi: nps
    description: Help pages answer customers' questions.
    when: {title: {contains: wiki}}
"""


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """The kit workspace after one plan (its last pull), and the proposal in proposal/."""
    folder = make_workspace(tmp_path / "ws")
    assert run("plan", "-c", str(folder), "--as-of", "2025-07-01").exit_code == 0
    (tmp_path / "proposal").mkdir()
    (tmp_path / "proposal" / "mapping.yaml").write_text(PROPOSED)
    return folder


def diff(ws: Path, against: Path, *extra: str):
    return run("rules", "diff", "-c", str(ws), "--against", str(against), "--as-of",
               "2025-07-01", *extra)


def test_lists_the_mappings_and_findings_that_appear_and_disappear(ws: Path) -> None:
    result = diff(ws, ws.parent / "proposal")
    assert result.exit_code == 0, result.output  # differences are not a failure...
    blocks = {b.split("\n")[0].split("  ")[0]: b for b in result.stdout.split("\n\n")[1:]}
    assert "+ serves nps (rule wiki, weight 1)" in blocks["jira:OPS-3"]
    assert "- untethered (warning, rule untethered)" in blocks["jira:OPS-3"]
    assert "- serves nps (rule survey, weight 1)" in blocks["jira:OPS-2"]
    assert "+ untethered (warning, rule untethered)" in blocks["jira:OPS-2"]
    assert "~ serves margin (rule pricing, weight 2), was weight 1" in blocks["jira:OPS-1"]
    assert result.stdout.rstrip().endswith(
        "Mappings: 1 added, 1 removed, 1 reweighted; findings: 1 added, 1 removed, 0 reworded; "
        "on 3 items. Nothing was written.")
    # ... unless asked, for a CI check on a pull request to the rules.
    assert diff(ws, ws.parent / "proposal", "--exit-code").exit_code == 1


def test_json_is_one_document_with_a_summary(ws: Path) -> None:
    result = diff(ws, ws.parent / "proposal", "--json")
    doc = json.loads(result.stdout)
    assert doc["schema"] == "tether.rules-diff/1" and doc["items"] == 3
    assert doc["summary"] == {"mappings_added": 1, "mappings_removed": 1, "mappings_changed": 1,
                              "findings_added": 1, "findings_removed": 1, "findings_changed": 0,
                              "items_changed": 3, "kpis_changed": 0, "changed": True}
    ops3 = next(s for s in doc["subjects"] if s["subject"] == "jira:OPS-3")
    assert [(c["change"], c["kind"], c.get("rule_id")) for c in ops3["changes"]] == [
        ("+", "mapping", "wiki"), ("-", "finding", "untethered")]
    assert set(doc["packs"]["proposed"]) == {"drift", "proposal"}


def test_the_same_rules_make_no_difference(ws: Path) -> None:
    result = diff(ws, ws / "rules", "--exit-code")
    assert result.exit_code == 0
    assert "No difference: the proposed rules map and flag every item as the current ones do." \
        in " ".join(result.stdout.split())


def test_it_judges_the_last_pull_and_writes_nothing(ws: Path) -> None:
    with load_workspace(ws).open_store() as store:
        runs = [r.id for r in store.runs(10)]
    # A new item in the export is not seen: no tracker (here, the export) is read.
    write_tasks(ws, [*TASKS, task("OPS-4", "Another wiki page", [])])
    doc = json.loads(diff(ws, ws.parent / "proposal", "--json").stdout)
    assert doc["items"] == 3 and "jira:OPS-4" not in {s["subject"] for s in doc["subjects"]}
    with load_workspace(ws).open_store() as store:
        assert [r.id for r in store.runs(10)] == runs  # no run recorded
        assert store.open_findings() == []  # a plan records no findings; nor does a diff
    assert not list(ws.glob("*.tether.json"))  # nothing written to the "tracker"


def test_a_workspace_folder_decides_its_packs_and_the_built_in_pack(ws: Path) -> None:
    checkout = ws.parent / "checkout"
    make_workspace(checkout)
    config = checkout / "tether.yaml"
    config.write_text(config.read_text().replace("packs: [rules]", "packs: [rules]\n  builtin: false"))
    doc = json.loads(diff(ws, checkout, "--json").stdout)
    assert doc["summary"]["findings_removed"] > 0 and doc["summary"]["findings_added"] == 0
    assert doc["summary"]["mappings_added"] == doc["summary"]["mappings_removed"] == 0
    assert set(doc["packs"]["proposed"]) == {"rules"}


def test_rule_errors_in_the_proposal_are_located(ws: Path) -> None:
    (ws.parent / "proposal" / "mapping.yaml").write_text(PROPOSED.replace("kpi: nps", "kpi: nsp"))
    result = CliRunner().invoke(main, ["rules", "diff", "-c", str(ws), "--against",
                                       str(ws.parent / "proposal")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{ws.parent / 'proposal' / 'mapping.yaml'}:7:5: mappings[1].kpi: unknown KPI `nsp`" \
        in result.output


def test_before_any_pull_it_says_to_plan_first(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    result = CliRunner().invoke(main, ["rules", "diff", "-c", str(ws), "--against",
                                       str(ws / "rules")])
    assert result.exit_code == 1 and "run `tether plan` first" in result.output
