"""`tether rules explain` tells the same story as the pipeline: it judges the whole portfolio
as a pass does (KPI statuses, every item mapped, the facts of all items), then shows one item
or KPI, each rule's verdict with every condition and the value it read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from tether.cli import main
from tether.cli.demo import start_demo
from tether.plugins import Plugins
from tether.workspace import Workspace
from workspace_kit import make_workspace


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def explain(ws: Path | str, ref: str, *extra: str) -> dict:
    result = run("rules", "explain", "--json", "-c", str(ws), ref, *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def verdicts(doc: dict) -> dict[str, dict]:
    return {v["rule"]: v for v in doc["signals"]}


def actual(verdict: dict, field: str) -> str:
    """The condition line that reads ``field``, as explain prints it."""
    return next(c["text"] for c in verdict["conditions"] if c["text"].startswith(field))


def test_a_stalled_item_shows_the_slipping_kpi_and_the_rule_as_matched(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    planned = json.loads(run("plan", "--json", "--as-of", "2025-07-01", "-c", str(ws)).stdout)
    assert ("stalled", "jira:OPS-1") in {(f["signal"], f["subject"]) for f in planned["findings"]}
    doc = explain(ws, "jira:OPS-1", "--as-of", "2025-07-01")
    stalled = verdicts(doc)["stalled"]
    assert stalled["matched"] and stalled["agrees"]
    assert doc["facts"]["slipping_kpis"] == ["margin"]  # from the KPI's status, as plan has it
    assert actual(stalled, "slipping_kpis") == "slipping_kpis exists True  (actual: ['margin'])"
    assert [f["signal"] for f in doc["findings"]] == ["stalled"]
    assert doc["as_of"] == "2025-07-01T00:00:00+00:00"
    text = run("rules", "explain", "-c", str(ws), "jira:OPS-1", "--as-of", "2025-07-01").stdout
    assert "MATCH stalled -> stalled (warning)" in text
    assert "Finding: stalled (warning): This Task serves margin" in text


def test_as_of_an_earlier_date_the_kpi_is_not_slipping_yet(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    doc = explain(ws, "jira:OPS-1", "--as-of", "2025-02-15")
    assert doc["facts"]["slipping_kpis"] == [] and not verdicts(doc)["stalled"]["matched"]
    assert doc["findings"] == []


def test_a_kpi_is_explained_with_its_status_and_its_signal_rules(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    doc = explain(ws, "kpi:margin", "--as-of", "2025-07-01")
    assert doc["status"]["status"] == "off_track" and doc["mappings"] == []
    assert verdicts(doc)["gate"]["matched"] and verdicts(doc)["gate"]["agrees"]
    assert {f["signal"] for f in doc["findings"]} >= {"gate", "starved"}
    text = run("rules", "explain", "-c", str(ws), "kpi:margin", "--as-of", "2025-07-01").stdout
    assert "Status: off track: forecast 1.0 of 10.0%" in text and "MATCH gate" in text


def test_an_unknown_kpi_or_source_says_what_exists(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    result = CliRunner().invoke(main, ["rules", "explain", "-c", str(ws), "kpi:margn"])
    assert result.exit_code == 1 and "the KPIs are margin, nps, legacy" in result.output
    result = CliRunner().invoke(main, ["rules", "explain", "-c", str(ws), "gitlab:1"])
    assert result.exit_code == 1 and "(jira) or kpi:ID" in result.output


@pytest.fixture(scope="module")
def mirage(tmp_path_factory: pytest.TempPathFactory):
    """The demo's example after three syncs at its date, its sandboxes still serving."""
    from tether.pipeline.run import run_pass

    demo = start_demo(tmp_path_factory.mktemp("mirage") / "demo", Plugins(), "cost-save-mirage")
    try:
        with demo.workspace.open_store() as store:
            runs = [run_pass(demo.workspace, store, "sync", demo.now) for _ in range(3)]
        yield demo, runs[-1]
    finally:
        demo.stop()


def test_after_a_few_syncs_explain_agrees_with_the_pass_on_every_flagged_item(
        mirage, monkeypatch) -> None:
    demo, _ = mirage
    ws: Workspace = demo.workspace
    # The CLI loads this very workspace (its sources pointed at the sandboxes).
    monkeypatch.setattr("tether.cli.rules.load_workspace", lambda path: ws)
    as_of = demo.today.isoformat()
    by_subject: dict[str, set[str]] = {}
    with ws.open_store() as store:  # the last sync listed only what changed; it kept them all
        for f in store.open_findings():
            by_subject.setdefault(f.subject, set()).add(f.rule_id)
    assert any(s.startswith("jira:") for s in by_subject)
    for subject, rules in sorted(by_subject.items()):
        doc = explain("unused", subject, "--as-of", as_of)
        matched = {v["rule"] for v in doc["signals"] if v["matched"]}
        assert matched == rules, subject
        assert all(v["agrees"] for v in doc["signals"] + doc["mappings"]), subject
    guardrail = explain("unused", "jira:PROC-2", "--as-of", as_of)
    assert verdicts(guardrail)["guardrail"]["matched"]
    assert guardrail["facts"]["guardrail_breaches"] == ["on-time-delivery"]
