"""`tether report`: the cost-save-mirage example, synced once at a fixed date, reported in
every format; the HTML page opened in headless Chromium (no console errors, every chart
drawn, a screenshot kept under the test's tmp dir)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from tether.cli import main
from tether.cli.demo import start_demo
from tether.pipeline.run import RunResult, run_pass
from tether.plugins import Plugins
from tether.report.charts import plotly_js
from tether.workspace import load_workspace

NOW = datetime(2025, 6, 16, 9, 0, tzinfo=UTC)  # the example's own date: six monthly values
AS_OF = "2025-06-16T09:00:00+00:00"


@dataclass(frozen=True)
class Synced:
    config: Path  # tether.yaml of a workspace that ran one plan and one sync
    result: RunResult  # what the sync found


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Synced:
    """The example, served by sandboxes where it has seeds (as `tether demo` runs it), after
    a plan and a sync at NOW; the sandboxes stop before any report is made, so reports can
    only read the state store."""
    workdir = tmp_path_factory.mktemp("report") / "cost-save-mirage"
    saved = dict(os.environ)  # start_demo exports the sandboxes' tokens
    demo = start_demo(workdir, Plugins(), "cost-save-mirage")
    try:
        with demo.workspace.open_store() as store:
            run_pass(demo.workspace, store, "plan", lambda: NOW)
            result = run_pass(demo.workspace, store, "sync", lambda: NOW)
    finally:
        demo.stop()
        os.environ.clear()
        os.environ.update(saved)
    assert result.status == "ok" and result.findings
    return Synced(workdir / "tether.yaml", result)


@pytest.fixture(scope="module")
def page(synced: Synced, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HTML report of the synced example, written once for the tests that read it."""
    target = tmp_path_factory.mktemp("html") / "report.html"
    written(synced.config, "html", target)
    return target


def report(config: Path, *args: str) -> str:
    """Run `tether report` as of NOW; returns its output, failing on a non-zero exit."""
    run = CliRunner().invoke(main, ["report", "-c", str(config), "--as-of", AS_OF, *args])
    assert run.exit_code == 0, run.output
    return run.output


def written(config: Path, fmt: str, out: Path) -> str:
    output = report(config, "--format", fmt, "-o", str(out))
    assert f"Wrote report to {out}" in " ".join(output.split())
    return out.read_text(encoding="utf-8")


def found(result: RunResult) -> set[tuple[str, str]]:
    return {(f.signal, f.subject) for f in result.findings}


# -- HTML in a browser ----------------------------------------------------------------------


class _Tree(HTMLParser):
    """For each element whose id starts with ``chart-``: the classes of its descendants."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
            "source", "track", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, str | None]] = []
        self.charts: dict[str, set[str]] = {}
        self.own: dict[str, set[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        classes = set((found.get("class") or "").split())
        for _, chart in self.stack:
            if chart:
                self.charts[chart] |= classes
        chart = found.get("id") if (found.get("id") or "").startswith("chart-") else None
        if chart:
            self.charts[chart], self.own[chart] = set(), classes
        if tag not in self.VOID:
            self.stack.append((tag, chart))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        reason = "headless Chromium is not installed: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI installs it; the browser test must run there)")
        pytest.skip(reason)
    return found


def _open(browser: str, page: Path, *actions: str) -> tuple[str, list[str]]:
    """Load ``page`` headless; returns what the actions printed and the console lines
    Chromium logged (every console message, whatever its level, is one)."""
    run = subprocess.run(
        [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--disable-extensions", "--hide-scrollbars", "--enable-logging=stderr",
         "--v=0", "--window-size=1280,2000", *actions, page.as_uri()],
        capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout, [line for line in run.stderr.splitlines() if ":CONSOLE" in line]


def test_the_html_report_renders_in_headless_chromium(synced: Synced, page: Path,
                                                      tmp_path: Path) -> None:
    browser = _chromium()
    # The console check must be able to fail: a page with an error is seen as one.
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><p>x</p><script>notDefined();</script>")
    assert any("notDefined" in line for line in _open(browser, broken, "--dump-dom")[1])

    shot = tmp_path / "report.png"
    dom, console = _open(browser, page, f"--screenshot={shot}", "--dump-dom")
    assert console == [], "the report logged to the console:\n" + "\n".join(console)

    tree = _Tree()
    tree.feed(dom)
    kpis = [k.id for k in load_workspace(synced.config).config.kpis]
    expected = [f"chart-trend-{kid}" for kid in kpis] + ["chart-alignment", "chart-effort"]
    for chart in expected:
        assert chart in tree.charts, f"{chart} is missing"
        # js-plotly-plot is set by Plotly.newPlot, main-svg is what it drew.
        assert "js-plotly-plot" in tree.own[chart], f"{chart} was never plotted"
        assert {"plot-container", "main-svg"} <= tree.charts[chart], f"{chart} drew nothing"
    assert "heatmaplayer" in tree.charts["chart-alignment"]
    assert "bars" in tree.charts["chart-effort"]
    for kid in kpis:
        assert {"scatterlayer", "point"} <= tree.charts[f"chart-trend-{kid}"]

    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 50_000, "the screenshot is nearly blank"
    print(f"\nreport screenshot: {shot} ({shot.stat().st_size:,} bytes)")


# -- the HTML file itself -------------------------------------------------------------------


def test_the_html_report_is_self_contained(page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\bsrc=", html)
    assert not re.search(r"<link[^>]*href=[\"']?(https?:)?//", html)
    assert not re.search(r"@import|url\((['\"])?(https?:)?//", html)
    assert html.count(plotly_js()[:2000]) == 1  # plotly.js inlined, and only once
    for kid in ("opex-savings", "on-time-delivery", "dso"):
        assert f'id="kpi-{kid}"' in html


def test_findings_link_to_their_items_and_kpi_findings_to_the_kpi_card(synced: Synced,
                                                                      page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    urls = {t.ref: t.url for t in synced.result.tasks}
    for _, subject in found(synced.result):
        if subject.startswith("kpi:"):
            assert f'href="#kpi-{subject[4:]}">{subject}</a>' in html
        elif urls[subject].startswith("http"):
            assert f'href="{urls[subject]}">{subject}</a>' in html


def test_tracker_text_is_escaped_and_hostile_links_dropped(synced: Synced, tmp_path: Path
                                                          ) -> None:
    copy = tmp_path / "ws"
    shutil.copytree(synced.config.parent, copy, ignore=shutil.ignore_patterns("tether-report.*"))
    ws = load_workspace(copy / "tether.yaml")
    flagged = next(f.subject for f in synced.result.findings if not f.subject.startswith("kpi:"))
    with ws.open_store() as store:
        task = next(t for t in store.load_tasks() if t.ref == flagged)
        evil = replace(task, title="=HYPERLINK(\"x\") <script>alert('title')</script> | [a](b)",
                       url="javascript:alert('url')")
        store.save_tasks(task.source, [evil], complete=False)
    config = copy / "tether.yaml"

    page = written(config, "html", tmp_path / "r.html")
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt;" in page
    assert "javascript:alert" not in page
    md = written(config, "md", tmp_path / "r.md")
    assert "<script>" not in md and "javascript:" not in md
    assert "\\<script\\>" in md and "\\|" in md  # inert in the Markdown table
    rows = list(csv.DictReader(io.StringIO(written(config, "csv", tmp_path / "r.csv"))))
    row = next(r for r in rows if r["subject"] == flagged)
    assert row["title"].startswith("'=HYPERLINK")  # no formula in a spreadsheet


# -- the other formats ----------------------------------------------------------------------


def test_json_report_is_a_stable_document(synced: Synced, tmp_path: Path) -> None:
    doc = json.loads(written(synced.config, "json", tmp_path / "r.json"))
    assert doc["schema"] == "tether.report/1"
    assert doc["as_of"] == AS_OF
    kpis = [k.id for k in load_workspace(synced.config).config.kpis]
    assert [k["id"] for k in doc["kpis"]] == kpis
    statuses = {k["id"]: k["status"] for k in doc["kpis"]}
    assert statuses == {kid: st.status for kid, st in synced.result.kpi_statuses.items()}
    assert all(len(k["history"]) >= 4 for k in doc["kpis"])
    assert {(f["signal"], f["subject"]) for f in doc["findings"]} == found(synced.result)
    at_risk = [f["value_at_risk"] for f in doc["findings"]]
    assert at_risk == sorted(at_risk, reverse=True) and at_risk[0] > 0
    assert all(f["first_seen"] == NOW.isoformat() for f in doc["findings"])  # recorded by sync
    assert all(f["advice"] for f in doc["findings"])
    assert [r["mode"] for r in doc["runs"]] == ["sync", "plan"]
    cells = doc["alignment"]["cells"]
    assert sum(c["items"] for c in cells) >= doc["items"]["open"]
    assert any(c["kpi"] == "(no KPI)" for c in cells)  # the example's untethered chores
    shares = {a["kpi"]: a for a in doc["allocation"]}
    assert "ci-build-time" not in shares  # achieved: not an active KPI
    assert abs(sum(a["effort_share"] for a in shares.values()) - 1) < 0.01


def test_csv_report_lists_findings_by_value_at_risk(synced: Synced, tmp_path: Path) -> None:
    text = written(synced.config, "csv", tmp_path / "r.csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["signal", "severity", "subject", "title", "url", "value_at_risk",
                             "value_at_risk_unit", "reason", "advice", "rule_id", "first_seen"]
    assert {(r["signal"], r["subject"]) for r in rows} == found(synced.result)
    # The example's KPIs with a stake put dollars at risk; the others, priority weight.
    units = {r["subject"]: r["value_at_risk_unit"] for r in rows}
    assert units["kpi:on-time-delivery"] == "USD" and units["jira:PROC-7"] == ""
    at_risk = [float(r["value_at_risk"]) for r in rows]
    assert at_risk == sorted(at_risk, reverse=True)
    urls = {t.ref: t.url for t in synced.result.tasks}
    for r in rows:
        if not r["subject"].startswith("kpi:"):
            assert r["url"] == urls[r["subject"]] and r["title"]


def test_markdown_report_fits_an_email(synced: Synced, tmp_path: Path) -> None:
    md = written(synced.config, "md", tmp_path / "r.md")
    assert md.startswith("# Tether report: cost-save-mirage, 2025-06-16")
    for heading in ("## KPIs", "## Findings, by value at risk", "## Alignment",
                    "## Effort share vs priority weight", "## Runs"):
        assert heading in md
    for kid, st in synced.result.kpi_statuses.items():
        assert re.search(rf"\*\*{re.escape(kid)}\*\* .*\| {st.status.replace('_', ' ')}", md)
    for _, subject in found(synced.result):
        assert subject.replace("[", "\\[").replace("]", "\\]") in md
    assert "**Next steps**" in md
    assert len(md.splitlines()) < 80


def test_report_to_standard_output(synced: Synced) -> None:
    output = report(synced.config, "--format", "json", "-o", "-")
    assert json.loads(output)["schema"] == "tether.report/1"


def test_default_output_is_next_to_the_config(synced: Synced) -> None:
    report(synced.config, "--format", "md")
    assert (synced.config.parent / "tether-report.md").is_file()


# -- errors ---------------------------------------------------------------------------------


def test_no_run_yet_says_to_plan_first(synced: Synced, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    shutil.copytree(synced.config.parent, fresh,
                    ignore=shutil.ignore_patterns(".tether", ".sandbox", "tether-report.*"))
    run = CliRunner().invoke(main, ["report", "-c", str(fresh / "tether.yaml")])
    assert run.exit_code == 1
    message = " ".join(run.output.split())
    assert (f"No sync or plan has run yet for {fresh / 'tether.yaml'}; run `tether plan` first."
            in message)
    assert not list(fresh.glob("tether-report.*"))


def test_a_missing_output_folder_is_named(synced: Synced, tmp_path: Path) -> None:
    target = tmp_path / "nowhere" / "r.html"
    run = CliRunner().invoke(main, ["report", "-c", str(synced.config), "-o", str(target)])
    assert run.exit_code == 1
    assert "does not exist" in run.output and not target.exists()
