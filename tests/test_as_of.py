"""`tether plan` and `tether sync` take `--as-of DATE`, as `report` and `kpi status` do: the
pass is judged as of that date (KPI statuses, idle days, findings), with no clock patched."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from tether.cli import main
from tether.workspace import load_workspace
from workspace_kit import make_workspace


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def plan(ws: Path, date: str, *extra: str) -> dict:
    result = run("plan", "--json", "--as-of", date, "-c", str(ws), *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def found(doc: dict) -> set[tuple[str, str]]:
    return {(f["signal"], f["subject"]) for f in doc["findings"]}


def test_a_plan_as_of_a_date_gives_the_findings_of_that_date(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    winter, summer = plan(ws, "2025-02-15"), plan(ws, "2025-07-01")
    status = {doc["run"]["as_of"]: {k["id"]: k["status"] for k in doc["kpis"]}
              for doc in (winter, summer)}
    # Two values by mid-February: no trend yet. Six flat values by July: off track.
    assert status == {"2025-02-15T00:00:00+00:00": {"margin": "unknown", "nps": "unknown",
                                                    "legacy": "unknown"},
                      "2025-07-01T00:00:00+00:00": {"margin": "off_track", "nps": "unknown",
                                                    "legacy": "retired"}}
    # OPS-1 (pricing, idle since 10 January) is stalled only once margin slips.
    assert ("stalled", "jira:OPS-1") in found(summer) - found(winter)
    assert ("gate", "kpi:margin") in found(summer) - found(winter)
    stalled = next(f for f in summer["findings"] if f["signal"] == "stalled")
    assert "has not changed since 2025-01-10." in stalled["reason"]


def test_the_text_view_says_the_date_it_judged(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    result = run("plan", "--as-of", "2025-07-01T12:30:00+02:00", "-c", str(ws))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Judged as of 2025-07-01T10:30+00:00.")


def test_sync_as_of_records_the_run_at_that_date(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    result = run("sync", "--json", "--as-of", "2025-07-01", "-c", str(ws))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["run"]["mode"] == "sync" and doc["run"]["as_of"] == "2025-07-01T00:00:00+00:00"
    assert ("stalled", "jira:OPS-1") in found(doc) and doc["writes"]["applied"] > 0
    with load_workspace(ws).open_store() as store:
        [finding] = [f for f in store.open_findings() if f.signal == "stalled"]
    assert finding.first_seen.date().isoformat() == "2025-07-01"
    # The same date again: the trackers already show the verdict, nothing to write.
    again = json.loads(run("sync", "--json", "--as-of", "2025-07-01", "-c", str(ws)).stdout)
    assert again["writes"]["planned"] == 0


def test_sync_refuses_a_date_in_the_future(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    result = CliRunner().invoke(main, ["sync", "--as-of", "2999-01-01", "-c", str(ws)])
    assert result.exit_code == 1 and "in the future" in result.output
    assert "Traceback" not in result.output
    assert not (ws / "tasks.json.tether.json").exists()  # nothing written


def test_a_bad_date_is_a_usage_error_like_report_and_kpi_status(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    for command in (("plan", "--as-of"), ("sync", "--as-of"), ("report", "--as-of"),
                    ("kpi", "status", "--at")):
        result = CliRunner().invoke(main, [*command, "mid-June", "-c", str(ws)])
        assert result.exit_code == 2
        assert "'mid-June' is not a date; use YYYY-MM-DD or an ISO 8601 timestamp" in result.output


def test_plan_sync_and_report_word_as_of_alike() -> None:
    for name in ("plan", "sync", "report", "rules explain"):
        text = CliRunner().invoke(main, [*name.split(), "--help"], terminal_width=400).output
        assert ("--as-of DATE Judge KPIs and findings as of this date (YYYY-MM-DD or ISO 8601)"
                in " ".join(text.split()))
