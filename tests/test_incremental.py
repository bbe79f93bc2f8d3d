"""Passes that judge only what changed give exactly what judging every item gives."""

from __future__ import annotations

import json
import random
import shutil
import sys
from dataclasses import astuple
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from conftest import NOW
from tether.pipeline.run import RunResult, run_pass
from tether.workspace import load_workspace

sys.path.insert(0, str(Path(__file__).parent))  # the judgement package's generator
from judgement.generator import generate  # noqa: E402

pytestmark = pytest.mark.usefixtures("routed_state")  # on SQLite and on PostgreSQL


def run(ws_dir: Path, mode: str = "sync", at=NOW, full: bool = False) -> RunResult:
    ws = load_workspace(ws_dir / "tether.yaml")
    with ws.open_store() as store:
        return run_pass(ws, store, mode, lambda: at, full)


def said(r: RunResult) -> tuple:
    """What a pass says whole, whether it lists every item or only those judged again."""
    return (r.totals, sorted((o.task, o.kind, o.value) for o in r.ops),
            sorted((o.task, o.kind) for o in r.held), r.new_findings, r.cleared, r.kpi_statuses)


def finding(f) -> tuple:
    return f.signal, f.subject, f.rule_id, f.reason, f.value_at_risk


def agree(one: RunResult, full: RunResult) -> None:
    """``one`` says what ``full`` (every item judged) says, and lists what it lists alike."""
    assert said(one) == said(full)
    listed = {f.subject for f in one.findings} | {m.task for m in one.mappings}
    assert sorted(map(finding, one.findings)) == sorted(
        finding(f) for f in full.findings if f.subject in listed)
    assert sorted(map(astuple, one.mappings)) == sorted(
        astuple(m) for m in full.mappings if m.task in listed)


def kept_finding(f) -> tuple:
    """An open finding as the store keeps it; a task finding's value at risk is its share as
    of the pass that last listed it, so only a KPI's is compared (listed ones are, in agree)."""
    value = f.value_at_risk if f.subject.startswith("kpi:") else None
    return f.signal, f.subject, f.rule_id, f.reason, value, f.first_seen


def state(folder: Path) -> tuple:
    """What the trackers show (the files connector's sidecars) and what the store holds."""
    ws = load_workspace(folder / "tether.yaml")
    with ws.open_store() as store:
        kept = ([kept_finding(f) for f in store.open_findings()],
                [astuple(m) for m in store.load_mappings()], store.kpi_tallies())
    return kept, {p.name: p.read_text() for p in sorted(folder.rglob("*.tether.json"))}


def both(ws_dir: Path, tmp_path: Path, at=NOW, mode: str = "plan"
         ) -> tuple[RunResult, RunResult]:
    """A pass on the workspace as it is, and the same pass judging every item, on a twin;
    after a sync, the trackers and the store agree too."""
    twin = tmp_path / "twin"
    shutil.rmtree(twin, ignore_errors=True)
    shutil.copytree(ws_dir, twin)
    one, full = run(ws_dir, mode, at), run(twin, mode, at, full=True)
    agree(one, full)
    if mode == "sync":
        assert state(ws_dir) == state(twin)
    return one, full


def settled(ws_dir: Path, at: datetime = NOW) -> RunResult:
    """Syncs until every item shows its verdict (the write budget may take a few)."""
    for _ in range(30):
        result = run(ws_dir, at=at)
        if not result.ops:
            return result
    raise AssertionError(f"still writing after 30 syncs: {result.ops[:3]}")


def test_a_quiet_pass_judges_no_item_and_says_the_same(files_only: Path) -> None:
    before = settled(files_only)
    quiet = run(files_only)
    assert before.ops == [] and quiet.ops == [] and quiet.applied.applied == 0
    assert (quiet.judged, quiet.items) == (0, before.items) and quiet.items > 30
    assert quiet.rematched == {"map": 0, "drift": 0}
    assert said(quiet) == said(before) and not quiet.listed and before.totals.findings > 5
    assert quiet.findings == [f for f in before.findings if f.subject.startswith("kpi:")]


def test_an_edit_is_judged_alone_and_as_a_full_pass_judges_it(files_only: Path,
                                                            tmp_path: Path) -> None:
    settled(files_only)
    export = files_only / "data" / "jira-export.csv"
    export.write_text(export.read_text().replace("Update office wiki", "Refresh office wiki"))
    one, full = both(files_only, tmp_path, mode="sync")
    assert one.judged == 1 and full.judged == full.items


def test_closing_an_item_judges_it_and_its_kpis_only(files_only: Path, tmp_path: Path) -> None:
    settled(files_only)
    export = files_only / "data" / "jira-export.csv"
    lines = export.read_text().split("\n")
    row = next(i for i, line in enumerate(lines) if line.startswith("Update office wiki"))
    lines[row] = lines[row].replace("To Do", "Done")
    export.write_text("\n".join(lines))
    closed, _ = both(files_only, tmp_path, mode="sync")
    assert closed.judged < closed.items  # its KPIs' counts are updated, not recounted


EDITS = ("close", "reopen", "entity", "unlabel", "resize", "retitle", "delete", "add", "link",
         "unlink", "component")


def edit(folder: Path, rng: random.Random, at: datetime) -> str:
    """One random change a person could make in a tracker, to one export of a generated
    portfolio; returns what it did."""
    exports = [p for p in sorted((folder / "exports").glob("*.json"))
               if "tasks" in json.loads(p.read_text())]  # not Tether's sidecars
    export = rng.choice(exports)
    data = json.loads(export.read_text())
    items = data["tasks"]
    item = rng.choice(items)
    kind = rng.choice(EDITS)
    stamp = (at - timedelta(minutes=rng.randint(5, 600))).isoformat()
    if kind == "close":
        item.update(status="Done", status_category="done", resolved=stamp)
    elif kind == "reopen":
        item.update(status="In Progress", status_category="in_progress", resolved=None)
    elif kind == "entity":
        item["labels"] = [*item.get("labels", []), rng.choice(
            ["customer:acme", "vendor:fastfreight", "segment:smb", "region:emea"])]
    elif kind == "unlabel":
        item["labels"] = []
    elif kind == "resize":
        item["estimate"] = rng.choice([None, 0.0, 1.0, 3.0, 8.0, 13.0])
    elif kind == "retitle":
        item["title"] = rng.choice(items)["title"]
    elif kind == "delete":
        items.remove(item)
    elif kind == "add":
        items.append(item := {**rng.choice(items), "key": f"{item['key']}-copy{rng.randint(0, 9999)}",
                              "created": stamp})
    elif kind == "link":
        item["links"] = [*item.get("links", []), {"type": "relates to",
                                                   "target": rng.choice(items)["key"]}]
    elif kind == "unlink":
        item["links"] = []
    else:
        item["components"] = [rng.choice(["Billing UI", "Integrations", "Edge"])]
    item["updated"] = stamp
    export.write_text(json.dumps(data))
    return f"{kind} {export.stem}:{item['key']}"


def show_value_at_risk(folder: Path) -> None:
    """A comment template of the workspace's own that shows each finding's value at risk:
    a finding's share moving then changes the comment."""
    (folder / "templates").mkdir()
    (folder / "templates" / "comment.md.j2").write_text(
        "{% for f in findings %}- {{ f.signal }}: {{ f.reason }} ({{ f.value_at_risk }} at "
        "risk)\n{% endfor %}")
    config = yaml.safe_load((folder / "tether.yaml").read_text())
    config.setdefault("writeback", {})["templates"] = "templates"
    (folder / "tether.yaml").write_text(yaml.safe_dump(config))


# Every seed on SQLite, one on PostgreSQL: the store is the same, and its time adds up. One
# with comments that show each finding's share of its KPI's value at risk.
@pytest.mark.parametrize(("state_backend", "seed", "shares"), [
    ("sqlite", 12003, False), ("sqlite", 12017, False), ("sqlite", 12029, False),
    ("postgresql", 12029, False), ("sqlite", 12041, True)], indirect=["state_backend"])
def test_random_edits_are_judged_as_a_full_pass_judges_them(seed: int, shares: bool,
                                                            tmp_path: Path) -> None:
    folder = tmp_path / "portfolio"
    at = generate(seed, folder).as_of
    if shares:
        show_value_at_risk(folder)
    settled(folder, at)
    rng = random.Random(seed)
    partial = 0
    for _ in range(8):
        at += timedelta(minutes=20)
        for _ in range(rng.randint(1, 3)):
            edit(folder, rng, at)
        one, _ = both(folder, tmp_path, at, mode=rng.choice(["plan", "sync", "sync"]))
        partial += one.judged < one.items
        settled(folder, at)
    assert partial >= 5  # most edits touch a corner of the portfolio, not all of it


def test_hours_later_only_items_reaching_an_age_a_rule_tests_are_judged(
        files_only: Path, tmp_path: Path) -> None:
    # stalled tests idle_days >= 14: OPS-9, last changed 14 days before NOW + 3 h, reaches
    # it then; every other item's idle days grow too, but to no age a rule tests.
    export = files_only / "data" / "jira-export.csv"
    export.write_text(export.read_text().replace(
        "24/Feb/25 9:00 AM,24/Feb/25 9:00 AM,", "24/Feb/25 9:00 AM,21/Apr/25 12:00 PM,"))
    settled(files_only)
    early, _ = both(files_only, tmp_path, NOW + timedelta(hours=1))
    assert early.judged == 0
    later, _ = both(files_only, tmp_path, NOW + timedelta(hours=4))
    assert 0 < later.judged < later.items and "jira:OPS-9" in {t.ref for t in later.tasks}
    # The next day the KPI windows and statuses moved: every item is judged again.
    assert run(files_only, "plan", NOW + timedelta(days=1, hours=1)).judged == later.items


def test_ages_no_rule_reads_judge_no_item_as_they_grow(files_only: Path, tmp_path: Path) -> None:
    config = files_only / "tether.yaml"
    config.write_text(config.read_text().replace("  packs: [rules]",
                                                 "  packs: [rules]\n  disable: [stalled]"))
    settled(files_only)
    for hours in (1, 7, 14):
        later, _ = both(files_only, tmp_path, NOW + timedelta(hours=hours))
        assert later.judged == 0


def test_kpi_windows_that_move_within_the_day_are_counted_again_not_judged(
        tmp_path: Path) -> None:
    folder = tmp_path / "portfolio"
    at = generate(12011, folder).as_of.replace(hour=0, minute=30)
    settled(folder, at)
    ws = load_workspace(folder / "tether.yaml")
    with ws.open_store() as store:
        served = {m.task: m.kpi for m in store.load_mappings()}
    lags = {k.id: k.lag_days for k in ws.config.kpis}
    span = timedelta(days=ws.config.judgement.window_days)
    hours = iter((2, 6, 10, 14, 18, 22))
    for export in sorted((folder / "exports").glob("*.json")):
        data = json.loads(export.read_text())
        if "tasks" not in data:
            continue
        for item in data["tasks"]:  # closed items that leave their KPI's window today
            ref = f"{export.stem}:{item['key']}"
            if item.get("status_category") == "done" and ref in served:
                h = next(hours, None)
                if h is not None:
                    closed = at + timedelta(hours=h) - timedelta(days=lags[served[ref]]) - span
                    item.update(resolved=closed.isoformat(), updated=closed.isoformat())
        export.write_text(json.dumps(data))
    settled(folder, at)
    for h in (4, 8, 12, 16, 20, 23):
        later, _ = both(folder, tmp_path, at + timedelta(hours=h))
        assert later.judged < later.items
        assert counts(folder) == counts(tmp_path / "twin")  # what the KPI rules count


def counts(folder: Path) -> dict:
    """Each KPI's counts (open items, effort, its window) as the store keeps them."""
    with load_workspace(folder / "tether.yaml").open_store() as store:
        return store.kpi_tallies()


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


def test_writes_left_undone_are_planned_again(files_only: Path, tmp_path: Path) -> None:
    planned = run(files_only, "plan")
    assert planned.ops  # planned, not written: the next pass must plan them again
    again, _ = both(files_only, tmp_path)
    assert again.judged < again.items and said(again) == said(planned)


def test_an_age_matters_again_when_it_reaches_a_value_a_rule_tests(files_only: Path) -> None:
    from tether.pipeline.kept import DAILY, Aging, aging, due, minute

    ws = load_workspace(files_only / "tether.yaml")
    assert aging(ws) == Aging(age=None, idle=frozenset({14, 15}))  # stalled: idle_days >= 14
    since, now = datetime(2025, 5, 1, 10, 0, tzinfo=UTC), datetime(2025, 5, 10, 12, 0, tzinfo=UTC)
    assert due(since, frozenset({14, 15}), now) == minute(datetime(2025, 5, 15, 10, 0, tzinfo=UTC))
    assert due(since, DAILY, now) == minute(datetime(2025, 5, 11, 10, 0, tzinfo=UTC))
    assert due(since, frozenset({3, 4}), now) is None and due(None, DAILY, now) is None
    # A message that shows the age makes every day count.
    stalled = files_only / "rules" / "stalled-days.yaml"
    stalled.write_text("""\
signals:
  - id: stalled-days
    signal: stalled
    message: "{title} has not changed for {idle_days} days."
    when: {idle_days: {gte: 30}}
""")
    assert aging(load_workspace(files_only / "tether.yaml")).idle == DAILY
