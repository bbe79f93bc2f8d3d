"""The command line as users meet it: output, JSON document, exit codes, the demo."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from tether import __version__
from tether.cli import main
from tether.rules.fields import TASK_FIELDS
from tether.rules.language import OPERATOR_DOCS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0 and __version__ in result.output


def test_plan_json_is_a_stable_document_and_writes_nothing(files_only: Path) -> None:
    result = run("plan", "--json", "-c", str(files_only))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc) == {"schema", "run", "mappings", "findings", "cleared", "ops", "held",
                        "writes", "kpis", "summary"}
    assert doc["schema"] == "tether.run/1"
    assert doc["run"]["mode"] == "plan" and doc["run"]["status"] == "ok"
    assert doc["run"]["pulled"] == {"jira": 24, "github": 12}
    assert set(doc["run"]["rule_packs"]) == {"drift", "rules"}
    assert doc["writes"]["planned"] == len(doc["ops"]) > 0 and doc["writes"]["applied"] == 0
    assert {"signal", "severity", "subject", "reason", "advice", "rule_id", "value_at_risk",
            "state"} == set(doc["findings"][0])
    assert {"source", "key", "kind", "value", "reason", "value_at_risk",
            "deferred"} == set(doc["ops"][0])
    assert doc["summary"]["signals"] == {"misallocated": 2, "untethered": 7}
    assert not list((files_only / "data").glob("*.tether.json"))


def test_sync_then_sync_again_reports_zero_writes(files_only: Path) -> None:
    first = run("sync", "-c", str(files_only))
    assert first.exit_code == 0, first.output
    assert "untethered" in first.stdout and "0 failed" in first.stdout
    second = json.loads(run("sync", "--json", "-c", str(files_only)).stdout)
    assert second["writes"] == {"planned": 0, "applied": 0, "failed": 0, "deferred": 0,
                                "held": 0, "interrupted": 0, "not_annotated": 0,
                                "failures": [], "notices": []}
    assert all(f["state"] == "ongoing" for f in second["findings"])


def test_dry_run_is_plan(files_only: Path) -> None:
    doc = json.loads(run("sync", "--dry-run", "--json", "-c", str(files_only)).stdout)
    assert doc["run"]["mode"] == "plan" and doc["writes"]["planned"] > 0
    assert not list((files_only / "data").glob("*.tether.json"))


def test_invalid_config_exits_2_with_located_errors(files_only: Path) -> None:
    config = files_only / "tether.yaml"
    config.write_text(config.read_text().replace("budget: 100", "budjet: 100")
                      .replace("format: gh-json", "format: gh-jsn"))
    result = run("plan", "-c", str(config))
    assert result.exit_code == 2
    assert f"{config}:24:3: writeback.budjet: unknown key" in result.stderr
    assert f"{config}:16:7: sources[1].options.format" in result.stderr
    assert "Nothing was pulled or written." in result.stderr


def test_missing_config_says_what_to_do(tmp_path: Path) -> None:
    result = run("plan", "-c", str(tmp_path / "tether.yaml"))
    assert result.exit_code == 2 and "tether init" in result.stderr


def test_rules_explain_shows_each_condition_with_its_value(files_only: Path) -> None:
    result = run("rules", "explain", "-c", str(files_only), "jira:OPS-3")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "jira:OPS-3  Renegotiate freight carrier contracts" in out
    assert "MATCH vendor-and-cloud-spend -> opex-reduction" in out
    assert "labels any_of ['vendor', 'cloud-cost']  (actual: ['vendor', 'freight'])" in out
    assert "no    untethered -> untethered" in out
    assert "disagree" not in out


def test_rules_explain_unknown_item(files_only: Path) -> None:
    result = run("rules", "explain", "-c", str(files_only), "jira:NOPE-1")
    assert result.exit_code == 1 and "No item 'NOPE-1' in source 'jira'" in result.stderr


def test_rules_test_runs_the_cases_next_to_the_rules(files_only: Path) -> None:
    result = run("rules", "test", "-c", str(files_only))
    assert result.exit_code == 0, result.output
    assert "9 passed" in result.stdout
    cases = files_only / "rules" / "mapping.test.yaml"
    cases.write_text(cases.read_text().replace("expect: {kpis: [uptime]", "expect: {kpis: [nps]"))
    failed = run("rules", "test", "-c", str(files_only))
    assert failed.exit_code == 1 and "1 failed" in failed.stdout


def test_rules_lint_passes_on_the_example(files_only: Path) -> None:
    result = run("rules", "lint", "-c", str(files_only))
    assert result.exit_code == 0, result.output


def test_readme_documents_every_field_and_operator() -> None:
    result = run("rules", "fields")
    for name in TASK_FIELDS:
        assert f"`{name}`" in README and name in result.stdout
    for op, doc in OPERATOR_DOCS.items():
        assert f"| `{op}` | {doc} |" in README or f"`{op}`" in README


def test_config_schema_is_json_schema() -> None:
    schema = json.loads(run("config", "schema").stdout)
    assert "sources" in schema["properties"]


def test_plugins_lists_builtins() -> None:
    out = run("plugins").stdout
    assert "tether_files" in out and "files" in out.split("connectors: ")[1].split("\n")[0]


def test_demo_runs_twice_and_writes_nothing_the_second_time(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    first = run("demo", "--example", "northwind-trackers", "--json")
    assert first.exit_code == 0, first.output
    doc = json.loads(first.stdout)
    assert doc["run"]["pulled"] == {"jira": 24, "github": 12, "asana": 6}
    assert doc["writes"]["applied"] == doc["writes"]["planned"] > 0
    assert doc["writes"]["failed"] == 0
    flagged = {f["subject"] for f in doc["findings"] if f["signal"] == "untethered"}
    assert {"jira:OPS-9", "github:northwind/portal#109"} <= flagged
    assert any(s.startswith("asana:") for s in flagged)
    for name in ("jira", "github", "asana"):
        assert list(Path("tether-demo/.sandbox", name).glob("*.json")), name
    again = run("demo", "--example", "northwind-trackers")
    assert again.exit_code == 0, again.output
    assert "Nothing to write" in again.stdout and "sandbox at http://127.0.0.1:" in again.stdout


def test_demo_of_the_files_example(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("demo", "--example", "files-only", "--dir", "fo")
    assert result.exit_code == 0, result.output
    assert "Wrote 35 of 35" in result.stdout
    assert Path("fo/data/jira-export.csv.tether.json").exists()
