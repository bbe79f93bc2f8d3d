"""The verdict reads well wherever it lands: a log or a narrow terminal gets one finding per
block, values at risk say whether they are money or weight, negative attainment is said in
words, and statuses read "off track" in prose (JSON keeps the codes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from tether.cli import FINDINGS_TABLE_WIDTH, main
from tether.cli import out as console
from tether.report.formatting import attainment, risk
from workspace_kit import KPIS, make_workspace

# margin has $1M at stake; nps (no stake) has slid from its 30 baseline towards 25.
STAKE = "    weight: 2\n    stake: 1000000\n    currency: USD\n"
KPIS_AT_RISK = KPIS.replace("    weight: 2\n", STAKE).replace("    weight: 1\n  - id: legacy", """\
    weight: 1
    measurements:
      - {date: 2025-02-01, value: 29}
      - {date: 2025-03-01, value: 28}
      - {date: 2025-04-01, value: 27}
      - {date: 2025-05-01, value: 26}
      - {date: 2025-06-01, value: 25}
  - id: legacy""")
AS_OF = ("--as-of", "2025-07-01")


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return make_workspace(tmp_path / "ws", kpis=KPIS_AT_RISK)


def test_a_narrow_terminal_or_a_log_gets_one_finding_per_block(ws: Path, monkeypatch) -> None:
    monkeypatch.setattr(console, "width", 80)  # a pipe: Rich's default, or COLUMNS=80
    result = run("plan", "-c", str(ws), *AS_OF)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "┃" not in text.split("Planned")[0]  # no findings table
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if "stalled  jira:OPS-1" in line)
    assert lines[head] == "warning   stalled  jira:OPS-1  900k USD at risk"
    block = lines[head + 1:lines.index("", head)]
    assert block[0] == "    Reprice the long tail"
    assert all(line.startswith("    ") and len(line) <= 80 for line in block)
    assert " ".join(" ".join(block[1:]).split()).startswith(
        "This Task serves margin, at risk or off track, and has not changed since 2025-01-10.")
    assert any(line.startswith("    What to do: ") for line in block)
    # The reason wraps to the width (two lines here), not one word per line.
    assert len(block) == 4


def test_a_wide_terminal_keeps_the_table(ws: Path, monkeypatch) -> None:
    monkeypatch.setattr(console, "width", FINDINGS_TABLE_WIDTH + 40)
    text = run("plan", "-c", str(ws), *AS_OF).stdout
    header = next(line for line in text.splitlines() if line.startswith("┃"))
    assert [c.strip() for c in header.split("┃")[1:7]] == ["at risk", "signal", "item", "title",
                                                          "severity", "reason"]
    assert not any(line.startswith("warning  ") for line in text.splitlines())


def test_values_at_risk_say_money_or_weight(ws: Path, monkeypatch) -> None:
    monkeypatch.setattr(console, "width", 200)
    text = run("plan", "-c", str(ws), *AS_OF).stdout
    cells = [line.split("│")[1:4] for line in text.splitlines() if line.startswith("│")]
    rows = {f"{signal.strip()} {item.strip()}": at_risk.strip() for at_risk, signal, item in cells
            if signal.strip()}
    assert rows["gate kpi:margin"].endswith(" USD")
    assert rows["gate kpi:nps"] == "1.0 wt"  # nps carries no stake: weight x shortfall
    assert "wt = priority weight x shortfall" in text
    doc = json.loads(run("report", "-c", str(ws), "--format", "json", "-o", "-", *AS_OF).stdout)
    units = {f["subject"]: f["value_at_risk_unit"] for f in doc["findings"]}
    assert units == {"jira:OPS-1": "USD", "kpi:margin": "USD", "kpi:nps": "wt", "jira:OPS-3": None}
    md = run("report", "-c", str(ws), "--format", "md", "-o", "-", *AS_OF).stdout
    findings = md.split("## Findings")[1].split("##")[0]
    assert "| 900k USD | critical | gate |" in findings and "| 1.0 wt | critical | gate |" in findings


@pytest.mark.parametrize("value, unit, text", [
    (2_500_000, "USD", "2.5M USD"), (687_704.9, "USD", "687.7k USD"), (950, "EUR", "950 EUR"),
    (0.93, "wt", "0.93 wt"), (1.8, "wt", "1.8 wt"), (0, "USD", "-"), (1200, "", "1.2k"),
    (2_500_000.4, "USD+wt", "2.5M USD+wt"),
])
def test_risk_is_written_with_its_unit(value: float, unit: str, text: str) -> None:
    assert risk(value, unit) == text


@pytest.mark.parametrize("value, text", [
    (0.45, "45%"), (1.46, "146%"), (-2.09, "moved away from the target by 209%"),
    (-0.001, "0%"), (None, "-"),
])
def test_attainment_is_said_in_words_when_negative(value, text: str) -> None:
    assert attainment(value) == text


def test_kpi_status_and_the_report_say_moved_away_and_off_track(ws: Path, monkeypatch) -> None:
    monkeypatch.setattr(console, "width", 220)
    text = run("kpi", "status", "-c", str(ws), "--at", "2025-07-01").stdout
    assert "moved away from the target by 25%" in text  # nps: 25 from a 30 baseline to 50
    assert "off track" in text and "off_track" not in text
    run("plan", "-c", str(ws), *AS_OF)
    html = run("report", "-c", str(ws), "--format", "html", "-o", "-", *AS_OF).stdout
    assert "<dt>attainment</dt><dd>moved away from the target by 25%</dd>" in html
    assert "-25%" not in html.split("<section id=\"kpis\">")[1].split("</section>")[0]
    md = run("report", "-c", str(ws), "--format", "md", "-o", "-", *AS_OF).stdout
    assert "off_track" not in md and "at_risk" not in md and "off track" in md


def test_a_pass_that_judged_only_what_changed_says_so_and_counts_everything(ws: Path) -> None:
    first = json.loads(run("sync", "--json", "-c", str(ws), *AS_OF).stdout)
    assert first["run"]["listed_all"] and first["findings"]
    run("sync", "-c", str(ws), *AS_OF)  # reads back what the first wrote
    quiet = run("plan", "-c", str(ws), *AS_OF).stdout
    assert "Nothing changed since the last pass: every item kept its verdict." in quiet
    doc = json.loads(run("plan", "--json", "-c", str(ws), *AS_OF).stdout)
    assert not doc["run"]["listed_all"] and doc["run"]["judged"] == 0
    assert all(f["subject"].startswith("kpi:") for f in doc["findings"])
    assert doc["summary"] == first["summary"] and doc["summary"]["signals"]
