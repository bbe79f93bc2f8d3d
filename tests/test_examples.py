"""Every shipped example end to end, as `tether demo --example <name>` runs it: sandboxes for
the tracker examples (the sync clock at the example's date), a plain workspace for the
export one. Each raises exactly the findings its README lists, its rule tests pass, and
syncing again writes nothing."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_example_cost_save_mirage import EXPECTED as COST_SAVE_MIRAGE
from tether.cli import main
from tether.cli.demo import example_today, start_demo
from tether.errors import TetherError
from tether.pipeline.run import RunResult, run_pass
from tether.plugins import Plugins
from tether.workspace import Workspace, load_workspace

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
QUILL = "github:quill-cli/quill#"

EXPECTED: dict[str, set[tuple[str, str]]] = {
    "cost-save-mirage": COST_SAVE_MIRAGE,
    "oss-roadmap": {
        ("gate", "kpi:issue-response"), ("stalled", f"{QUILL}411"),
        ("misallocated", "kpi:weekly-installs"),
        ("starved", "kpi:first-contribution"), ("starved", "kpi:docs-satisfaction"),
        ("starved", "kpi:issue-response"),
        ("no_impact", "kpi:docs-satisfaction"),
        ("zombie", f"{QUILL}416"), ("zombie", f"{QUILL}421"),
        ("untethered", f"{QUILL}429"), ("untethered", f"{QUILL}434"),
        ("untethered", f"{QUILL}438"),
    },
    "northwind-trackers": {
        ("misallocated", "kpi:opex-reduction"),
        *(("untethered", ref) for ref in (
            "jira:OPS-9", "jira:OPS-10", "jira:OPS-12", "jira:PLAT-2", "jira:PLAT-9",
            "jira:PLAT-10", "github:northwind/portal#109", "asana:1200000000000108",
            "asana:1200000000000109")),
    },
    "files-only": {
        ("misallocated", "kpi:opex-reduction"), ("misallocated", "kpi:uptime"),
        *(("untethered", ref) for ref in (
            "jira:OPS-9", "jira:OPS-10", "jira:OPS-12", "jira:PLAT-2", "jira:PLAT-9",
            "jira:PLAT-10", "github:109")),
    },
}
FIRST_WRITES = {"cost-save-mirage": 38, "oss-roadmap": 23, "northwind-trackers": 42,
                "files-only": 35}


@dataclass
class Runs:
    """One example's syncs as `tether demo` twice runs them: the first, then one after a
    restart (new sandboxes on the state the first left), then one more on those."""

    workdir: Path
    first: RunResult
    restarted: RunResult
    again: RunResult


def _syncs(ws: Workspace, clock: Callable[[], datetime], n: int) -> list[RunResult]:
    with ws.open_store() as store:
        return [run_pass(ws, store, "sync", clock) for _ in range(n)]


def _session(workdir: Path, name: str, n: int) -> list[RunResult]:
    """``n`` syncs of ``name`` in ``workdir``, as one `tether demo` process runs them."""
    if not (EXAMPLES / name / "seed").is_dir():  # an export: no sandbox, no date
        if not workdir.exists():
            shutil.copytree(EXAMPLES / name, workdir)
        return _syncs(load_workspace(workdir / "tether.yaml"), lambda: datetime.now(UTC), n)
    demo = start_demo(workdir, Plugins(), name)
    try:
        today = demo.today
        return _syncs(demo.workspace, (lambda: today) if today else lambda: datetime.now(UTC), n)
    finally:
        demo.stop()


@pytest.fixture(scope="module", params=sorted(EXPECTED))
def runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    workdir = tmp_path_factory.mktemp("examples") / request.param
    [first] = _session(workdir, request.param, 1)
    restarted, again = _session(workdir, request.param, 2)
    return Runs(workdir, first, restarted, again)


def _name(runs: Runs) -> str:
    return runs.workdir.name


def test_the_example_raises_exactly_the_findings_its_readme_lists(runs: Runs) -> None:
    assert {(f.signal, f.subject) for f in runs.first.findings} == EXPECTED[_name(runs)]


def test_the_first_sync_writes_everything_it_plans(runs: Runs) -> None:
    applied = runs.first.applied
    assert applied is not None and applied.failed == 0 and not runs.first.deferred
    assert applied.applied == len(runs.first.ops) == FIRST_WRITES[_name(runs)]


def test_a_second_demo_writes_nothing(runs: Runs) -> None:
    # Each sandbox start picks a new port, so every item's url changes: not activity.
    assert [f"{op.kind} {op.task}" for op in runs.restarted.ops] == []
    assert {(f.signal, f.subject) for f in runs.restarted.findings} == EXPECTED[_name(runs)]


def test_the_demo_settles_whatever_the_second_run_did(runs: Runs) -> None:
    assert runs.again.ops == [] and runs.again.cleared == []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_example_rule_tests_pass(name: str) -> None:
    result = CliRunner().invoke(main, ["rules", "test", "-c", str(EXAMPLES / name)])
    assert result.exit_code == 0, result.output
    assert " passed, 0 failed" in result.output


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_example_has_a_readme_naming_how_to_run_it(name: str) -> None:
    readme = (EXAMPLES / name / "README.md").read_text(encoding="utf-8")
    assert "tether demo" in readme


@pytest.mark.parametrize(("text", "today"), [
    ("today: 2025-06-16", datetime(2025, 6, 16, 9, 0, tzinfo=UTC)),  # a date: 09:00 UTC
    ("today: '2025-06-16'", datetime(2025, 6, 16, 9, 0, tzinfo=UTC)),
    ("today: 2025-06-16T14:30:00+02:00", datetime(2025, 6, 16, 12, 30, tzinfo=UTC)),
    ("{}", None),
])
def test_an_example_declares_its_date_in_seed_demo_yaml(text: str, today: datetime | None,
                                                         tmp_path: Path) -> None:
    (tmp_path / "demo.yaml").write_text(text)
    assert example_today(tmp_path / "demo.yaml") == today
    assert example_today(tmp_path / "absent.yaml") is None


def test_a_bad_date_is_reported_with_its_file(tmp_path: Path) -> None:
    (tmp_path / "demo.yaml").write_text("today: mid-June")
    with pytest.raises(TetherError, match=r"demo\.yaml.*today: YYYY-MM-DD"):
        example_today(tmp_path / "demo.yaml")
