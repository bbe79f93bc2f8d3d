"""Passes that judge only what changed give exactly what judging every item gives."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

from conftest import NOW
from tether.pipeline.run import RunResult, run_pass
from tether.workspace import load_workspace


def run(ws_dir: Path, mode: str = "sync", at=NOW, full: bool = False) -> RunResult:
    ws = load_workspace(ws_dir / "tether.yaml")
    with ws.open_store() as store:
        return run_pass(ws, store, mode, lambda: at, full)


def verdicts(r: RunResult) -> tuple:
    return (sorted((m.task, m.kpi, m.rule_id) for m in r.mappings),
            [(f.subject, f.rule_id, f.reason, f.value_at_risk) for f in r.findings],
            sorted((o.task, o.kind, o.value) for o in r.ops),
            sorted((o.task, o.kind) for o in r.held), r.new_findings, r.cleared)


def both(ws_dir: Path, tmp_path: Path, at=NOW) -> tuple[RunResult, RunResult]:
    """A plan on the workspace as it is, and the same plan judging every item, on a twin."""
    twin = tmp_path / "twin"
    shutil.rmtree(twin, ignore_errors=True)
    shutil.copytree(ws_dir, twin)
    return run(ws_dir, "plan", at), run(twin, "plan", at, full=True)


def settled(ws_dir: Path) -> RunResult:
    run(ws_dir)
    return run(ws_dir)  # reads back what the first wrote: from then on, nothing moves


def test_a_quiet_pass_judges_no_item_and_says_the_same(files_only: Path) -> None:
    before = settled(files_only)
    quiet = run(files_only)
    assert before.ops == [] and quiet.ops == [] and quiet.applied.applied == 0
    assert (quiet.judged, quiet.items) == (0, before.items) and quiet.items > 30
    assert quiet.rematched == {"map": 0, "drift": 0}
    assert verdicts(quiet) == verdicts(before)
    assert quiet.kpi_statuses == before.kpi_statuses


def test_an_edit_is_judged_alone_and_as_a_full_pass_judges_it(files_only: Path,
                                                            tmp_path: Path) -> None:
    settled(files_only)
    export = files_only / "data" / "jira-export.csv"
    export.write_text(export.read_text().replace("Update office wiki", "Refresh office wiki"))
    one, full = both(files_only, tmp_path)
    assert one.judged == 1 and full.judged == full.items
    assert verdicts(one) == verdicts(full)


def test_a_change_others_read_judges_every_item(files_only: Path, tmp_path: Path) -> None:
    settled(files_only)
    export = files_only / "data" / "jira-export.csv"
    lines = export.read_text().split("\n")
    row = next(i for i, line in enumerate(lines) if line.startswith("Update office wiki"))
    lines[row] = lines[row].replace("To Do", "Done")
    export.write_text("\n".join(lines))
    closed, full = both(files_only, tmp_path)
    assert closed.judged == closed.items  # its KPIs' open work changed: the portfolio moved
    assert verdicts(closed) == verdicts(full)


def test_hours_later_only_items_whose_ages_grew_are_judged(files_only: Path,
                                                           tmp_path: Path) -> None:
    settled(files_only)
    for hours in (1, 7, 14):  # within the day; items' ages grow at their own hour
        later, full = both(files_only, tmp_path, NOW + timedelta(hours=hours))
        assert verdicts(later) == verdicts(full)
        assert 0 < later.judged < later.items
    # The next day the KPI windows and statuses moved: every item is judged again.
    assert run(files_only, "plan", NOW + timedelta(days=1, hours=1)).judged == later.items


def test_a_new_measurement_or_rule_judges_every_item(files_only: Path) -> None:
    settled(files_only)
    rules = files_only / "rules" / "mapping.yaml"
    rules.write_text(rules.read_text() + "\n")
    assert run(files_only).judged < run(files_only).items  # same rules: still quiet
    rules.write_text(rules.read_text().replace("- labels: {any_of: [onboarding]}",
                                               "- labels: {any_of: [onboarding]}\n"
                                               "        - title: {contains: onboarding}"))
    changed = run(files_only, "plan")
    assert changed.judged == changed.items


def test_an_unsettled_pass_is_followed_by_a_full_one(files_only: Path) -> None:
    planned = run(files_only, "plan")
    assert planned.ops  # planned, not written: the next pass must plan them again
    again = run(files_only, "plan")
    assert again.judged == again.items and len(again.ops) == len(planned.ops)
