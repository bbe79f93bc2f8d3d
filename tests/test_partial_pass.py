"""A tracker that cannot be read does not stop the others: its items are judged on their last
snapshot, nothing is read from or written to it, the pass says it is partial (exit code 3),
and the next pass that reaches it catches up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from tether.cli import main
from tether.cli.demo import Demo, start_demo
from tether.pipeline.run import run_pass
from tether.plugins import Plugins


@pytest.fixture
def demo(tmp_path: Path):
    running = start_demo(tmp_path / "demo", Plugins(), "northwind-trackers")
    try:
        yield running
    finally:
        running.stop()


def revoke(demo: Demo, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """The token of ``kind``'s tracker stops working: every call answers 401."""
    box = next(b for b in demo.sandboxes.values() if b.type_name == kind)
    for variable in box.env:
        monkeypatch.setenv(variable, "revoked")


def test_an_unreadable_tracker_leaves_the_others_judged_and_written(
        demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = demo.workspace
    with ws.open_store() as store:
        first = run_pass(ws, store, "sync", demo.now)
        assert first.status == "ok" and {o.source for o in first.ops} == {"jira", "github",
                                                                          "asana"}
        revoke(demo, monkeypatch, "jira")
        down = run_pass(ws, store, "sync", demo.now, full=True)
        still = run_pass(ws, store, "sync", demo.now)
    assert down.status == still.status == "partial" and set(down.unread) == {"jira"}
    assert "401" in down.unread["jira"].error or "token" in down.unread["jira"].error.lower()
    assert set(down.pulled) == {"github", "asana"}
    # Jira's items keep their verdicts from the snapshot; nothing goes to Jira.
    assert any(f.subject.startswith("jira:") for f in down.findings)
    assert all(o.source != "jira" for o in down.ops + still.ops)
    assert still.unread["jira"].since == down.unread["jira"].since == down.started
    report = demo.workspace.config.file.parent / "report.md"
    assert CliRunner().invoke(main, ["report", "-c", str(demo.workspace.config.file),
                                     "--format", "md", "-o", str(report)]).exit_code == 0
    assert "**jira could not be read** by the runs since" in report.read_text()
    monkeypatch.undo()
    with ws.open_store() as store:
        back = run_pass(ws, store, "sync", demo.now)
        quiet = run_pass(ws, store, "sync", demo.now)
    assert back.status == quiet.status == "ok" and not back.unread and quiet.ops == []


def test_sync_exits_3_and_says_which_tracker_it_could_not_read(
        demo: Demo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = demo.workspace.config.file
    data = yaml.safe_load(config.read_text())
    for source in data["sources"]:  # point the CLI where the demo points its workspace
        source["options"].update(demo.options.get(source["name"], {}))
    config.write_text(yaml.safe_dump(data))
    runner = CliRunner()
    assert runner.invoke(main, ["sync", "-c", str(config)]).exit_code == 0
    revoke(demo, monkeypatch, "github")
    text = runner.invoke(main, ["sync", "-c", str(config)])
    assert text.exit_code == 3
    assert "github could not be read" in text.output and "partial" in text.output
    doc = runner.invoke(main, ["plan", "--json", "-c", str(config)])
    assert doc.exit_code == 3
    run = json.loads(doc.stdout)["run"]
    assert run["status"] == "partial" and set(run["unread"]) == {"github"}
