"""A whole pass on the files-only example: mappings, untethered findings, writes, idempotence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tether.model import OpKind
from tether.pipeline.run import run_pass
from tether.workspace import load_workspace

pytestmark = pytest.mark.usefixtures("routed_state")  # on SQLite and on PostgreSQL

UNTETHERED = {"jira:OPS-9", "jira:OPS-10", "jira:OPS-12", "jira:PLAT-2", "jira:PLAT-9",
              "jira:PLAT-10", "github:109"}


def sync(ws_dir: Path, clock, mode: str = "sync"):
    ws = load_workspace(ws_dir / "tether.yaml")
    with ws.open_store() as store:
        return run_pass(ws, store, mode, clock)


def test_plan_maps_the_example_and_flags_untethered_work(files_only: Path, clock) -> None:
    result = sync(files_only, clock, "plan")
    assert result.pulled == {"jira": 24, "github": 12}
    links = {(m.task, m.kpi) for m in result.mappings}
    assert ("jira:OPS-3", "opex-reduction") in links
    assert ("jira:PLAT-8", "uptime") in links  # only its component says so
    assert ("github:101", "nps") in links
    assert {f.subject for f in result.findings if f.signal == "untethered"} == UNTETHERED
    # Done work is never untethered, even when it maps to nothing.
    assert "jira:OPS-11" not in {f.subject for f in result.findings}
    assert not (files_only / "data" / "jira-export.csv.tether.json").exists()


def test_sync_writes_the_sidecar_and_a_second_sync_writes_nothing(files_only: Path, clock) -> None:
    first = sync(files_only, clock)
    assert first.applied is not None and first.applied.failed == 0
    assert first.applied.applied == len(first.ops) > 0
    sidecar = json.loads((files_only / "data" / "jira-export.csv.tether.json").read_text())
    ops9 = sidecar["items"]["OPS-9"]
    assert ops9["labels"] == ["tether:untethered"]
    assert "Link it to the KPI it serves" in ops9["comment"]["body"]
    assert sorted(sidecar["items"]["OPS-3"]["labels"]) == ["tether:kpi:opex-reduction"]
    assert "comment" not in sidecar["items"]["OPS-3"]  # nothing to flag: no comment
    second = sync(files_only, clock)
    assert second.ops == [] and second.applied.applied == 0
    assert second.new_findings == set() and len(second.findings) == len(first.findings)


def test_a_fixed_item_gets_its_label_removed_and_its_comment_resolved(files_only: Path,
                                                                     clock) -> None:
    sync(files_only, clock)
    export = files_only / "data" / "jira-export.csv"
    export.write_text(export.read_text().replace("Update office wiki", "Update onboarding wiki"))
    rules = files_only / "rules" / "mapping.yaml"
    rules.write_text(rules.read_text().replace("- labels: {any_of: [onboarding]}",
                                               "- labels: {any_of: [onboarding]}\n"
                                               "        - title: {contains: onboarding}"))
    result = sync(files_only, clock)
    ops = {(o.key, o.kind, o.value.splitlines()[-1] if "\n" in o.value else o.value)
           for o in result.ops if o.key == "OPS-9"}
    assert (("OPS-9", OpKind.REMOVE_LABEL, "tether:untethered") in ops
            and ("OPS-9", OpKind.ADD_LABEL, "tether:kpi:onboarding-time") in ops)
    assert any(k == OpKind.UPDATE_COMMENT and "nothing to flag" in v for _, k, v in ops)
    assert ("untethered", "jira:OPS-9", "untethered") in result.cleared


def test_the_write_budget_defers_the_rest_to_the_next_run(files_only: Path, clock) -> None:
    config = files_only / "tether.yaml"
    config.write_text(config.read_text().replace("budget: 100", "budget: 5"))
    first = sync(files_only, clock)
    assert first.applied.applied == 5 and len(first.applied.deferred) == len(first.ops) - 5
    second = sync(files_only, clock)
    assert len(second.ops) == len(first.ops) - 5  # what was written is not planned again


def test_config_tunes_a_drift_rule_parameter(files_only: Path, clock) -> None:
    assert "misallocated-overfed" in {f.rule_id for f in sync(files_only, clock, "plan").findings}
    config = files_only / "tether.yaml"
    config.write_text(config.read_text().replace(
        "  packs: [rules]", "  packs: [rules]\n  params: {misallocated-overfed: {tolerance: 0.5}}"))
    assert "misallocated-overfed" not in {f.rule_id for f in sync(files_only, clock, "plan").findings}


def test_the_sources_of_a_pass_are_pulled_at_the_same_time(tmp_path: Path) -> None:
    """Each source waits on its own tracker: a slow Jira must not hold up GitHub's pull."""
    import threading

    from workspace_kit import CONFIG, make_workspace

    two = CONFIG.replace("kpis: kpis.yaml", "  - name: other\n    type: files\n    options: "
                         "{path: tasks.json, format: tether-json}\nkpis: kpis.yaml")
    ws = load_workspace(make_workspace(tmp_path / "ws", config=two) / "tether.yaml")
    both_waiting = threading.Barrier(2, timeout=10)  # a sequential pull would break it

    def meeting(pull):
        def pull_when_both_started(cursor):
            both_waiting.wait()
            return pull(cursor)
        return pull_when_both_started

    for connector in ws.connectors.values():
        connector.pull = meeting(connector.pull)
    with ws.open_store() as store:
        result = run_pass(ws, store, "plan")
    assert result.pulled == {"jira": 3, "other": 3}


def _verdicts(result) -> tuple[list, list]:
    return ([(m.task, m.kpi, m.rule_id) for m in result.mappings],
            [(f.subject, f.rule_id, f.reason) for f in result.findings])


def test_a_pass_matches_only_the_items_whose_facts_changed(files_only: Path, clock) -> None:
    first = sync(files_only, clock, "plan")
    tasks = len(first.tasks)
    assert first.rematched["map"] == tasks and first.rematched["drift"] > 0
    quiet = sync(files_only, clock, "plan")
    assert quiet.rematched == {"map": 0, "drift": 0}
    assert quiet.totals == first.totals  # recalled, not re-matched, and the same

    export = files_only / "data" / "jira-export.csv"
    export.write_text(export.read_text().replace("Update office wiki", "Update onboarding wiki"))
    one = sync(files_only, clock, "plan")
    assert one.rematched["map"] == 1
    ws = load_workspace(files_only / "tether.yaml")
    with ws.open_store() as store:
        full = run_pass(ws, store, "plan", clock, full=True)
    assert full.rematched["map"] == tasks and full.totals == one.totals
    mappings, findings = _verdicts(full)
    listed = {m.task for m in one.mappings} | {f.subject for f in one.findings}
    assert _verdicts(one) == ([m for m in mappings if m[0] in listed],
                              [f for f in findings if f[0] in listed])


def test_a_rule_change_matches_everything_again(files_only: Path, clock) -> None:
    sync(files_only, clock, "plan")
    rules = files_only / "rules" / "mapping.yaml"
    rules.write_text(rules.read_text().replace("- labels: {any_of: [onboarding]}",
                                               "- labels: {any_of: [onboarding]}\n"
                                               "        - title: {contains: onboarding}"))
    changed = sync(files_only, clock, "plan")
    assert changed.rematched["map"] == len(changed.tasks)
