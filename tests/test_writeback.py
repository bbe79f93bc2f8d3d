"""Write-back etiquette in the core: a person's removal is held until the verdict changes,
Tether's own edits are not activity, the adoption date, templates and the audit trail."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tether.config.load import load_config
from tether.errors import InvalidInput
from tether.model import KPI, CurrentAnnotation, Finding, Mapping, OpKind, OpResult, Task, WriteOp
from tether.pipeline.memory import effective, mask_own_edits, remember
from tether.pipeline.plan import desired_annotations, plan
from tether.pipeline.render import MARKER, Renderer, mention
from tether.pipeline.run import run_pass
from tether.plugins import Plugins
from tether.store.db import Store
from tether.workspace import load_workspace
from workspace_kit import make_workspace

T0 = datetime(2025, 5, 1, tzinfo=UTC)
# Tests that keep state run on each of the store's backends (SQLite and PostgreSQL).
on_each_backend = pytest.mark.usefixtures("routed_state")


def sync(ws_dir: Path, clock, mode: str = "sync"):
    ws = load_workspace(ws_dir / "tether.yaml")
    with ws.open_store() as store:
        return run_pass(ws, store, mode, clock)


def sidecar(ws_dir: Path) -> dict:
    return json.loads((ws_dir / "data" / "jira-export.csv.tether.json").read_text())


def edit_sidecar(ws_dir: Path, change) -> None:
    path = ws_dir / "data" / "jira-export.csv.tether.json"
    data = json.loads(path.read_text())
    change(data["items"])
    path.write_text(json.dumps(data))


# -- a person's override, end to end on the files connector ---------------------------------


@on_each_backend
def test_a_label_a_person_removed_stays_off_until_the_verdict_changes(files_only: Path,
                                                                     clock) -> None:
    sync(files_only, clock)
    edit_sidecar(files_only, lambda items: items["OPS-3"].update(labels=[]))
    again = sync(files_only, clock)
    assert [o for o in again.ops if o.key == "OPS-3"] == []
    [held] = [o for o in again.held if o.key == "OPS-3"]
    assert held.value == "tether:kpi:opex-reduction" and "person removed" in held.reason
    assert sync(files_only, clock).ops == []  # and stays off, run after run
    # A new verdict (another KPI now claims the item) puts Tether's labels back.
    rules = files_only / "rules" / "mapping.yaml"
    rules.write_text(rules.read_text() + """
  - id: ops3-also-uptime
    kpi: uptime
    when:
      key: OPS-3
""")
    changed = sync(files_only, clock)
    added = {o.value for o in changed.ops if o.key == "OPS-3" and o.kind is OpKind.ADD_LABEL}
    assert added == {"tether:kpi:opex-reduction", "tether:kpi:uptime"}


@on_each_backend
def test_a_comment_a_person_deleted_is_not_written_again(files_only: Path, clock) -> None:
    sync(files_only, clock)
    edit_sidecar(files_only, lambda items: items["OPS-9"].pop("comment"))
    again = sync(files_only, clock)
    assert [o for o in again.ops if o.key == "OPS-9"] == []
    assert [o.kind for o in again.held if o.key == "OPS-9"] == [OpKind.CREATE_COMMENT]
    assert "comment" not in sidecar(files_only)["items"]["OPS-9"]
    ws = load_workspace(files_only / "tether.yaml")
    with ws.open_store() as store:
        notes = [e for e in store.ledger_for("jira:OPS-9") if e.status == "held"]
    assert len(notes) == 1 and "deleted" in (notes[0].error or "")
    sync(files_only, clock)  # still held: noted once, not on every run
    with ws.open_store() as store:
        assert len([e for e in store.ledger_for("jira:OPS-9") if e.status == "held"]) == 1


@on_each_backend
def test_a_stalled_items_comment_stays_as_it_is_while_the_item_stays_idle(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")  # OPS-1 serves a slipping KPI, idle since 2025-01-10
    first = sync(ws, lambda: T0)
    [stalled] = [f for f in first.findings if f.signal == "stalled"]
    assert stalled.subject == "jira:OPS-1" and "since 2025-01-10" in stalled.reason
    assert (stalled.subject, OpKind.CREATE_COMMENT) in {(o.task, o.kind) for o in first.ops}
    for days in (1, 8, 30):  # no edit a day, which would only say it is a day older
        assert sync(ws, lambda d=days: T0 + timedelta(days=d)).ops == []


def test_adoption_date_leaves_older_items_alone(files_only: Path, clock) -> None:
    config = files_only / "tether.yaml"
    config.write_text(config.read_text().replace("budget: 100", "budget: 100\n  since: 2025-04-01"))
    result = sync(files_only, clock, "plan")
    recent = {t.ref for t in result.tasks if t.updated and t.updated >= datetime(2025, 4, 1,
                                                                                 tzinfo=UTC)}
    assert 0 < len(recent) < len(result.tasks)
    assert {o.task for o in result.ops} <= recent
    assert result.not_annotated == len(result.tasks) - len(recent)
    assert len(result.findings) > len({f.subject for f in result.findings} & recent)


@on_each_backend
def test_labels_only_mode_writes_no_comment(files_only: Path, clock) -> None:
    config = files_only / "tether.yaml"
    config.write_text(config.read_text().replace("comments: true", "comments: false"))
    result = sync(files_only, clock, "plan")
    assert result.ops and {o.kind for o in result.ops} == {OpKind.ADD_LABEL}


# -- the planner and its memory --------------------------------------------------------------


def _task(key: str = "1", **kw) -> Task:
    return Task("src", key, "A title", updated=T0, **kw)


def _desired(task: Task, findings: list[Finding], mappings: list[Mapping],
             current: dict[str, CurrentAnnotation]):
    return desired_annotations([task], mappings, findings, {}, "tether", True, current)


def test_a_verdict_ignores_numbers_but_not_which_findings() -> None:
    task = _task()
    a = _desired(task, [Finding("stalled", "warning", task.ref, "Idle 30 days.", "stalled")], [], {})
    b = _desired(task, [Finding("stalled", "warning", task.ref, "Idle 31 days.", "stalled")], [], {})
    c = _desired(task, [Finding("zombie", "warning", task.ref, "Retired KPI.", "zombie")], [], {})
    assert a[task.ref].verdict == b[task.ref].verdict != c[task.ref].verdict
    assert a[task.ref].comment != b[task.ref].comment  # the text still follows the numbers


def test_memory_records_writes_and_a_gone_comment() -> None:
    task = _task()
    finding = Finding("stalled", "warning", task.ref, "Idle.", "stalled", label="stalled")
    desired = _desired(task, [finding], [], {})
    first = plan([task], desired, {}, {})
    assert [o.kind for o in first.ops] == [OpKind.ADD_LABEL, OpKind.CREATE_COMMENT]
    results = [OpResult(o, True, comment_id="c1" if o.kind is OpKind.CREATE_COMMENT else None)
               for o in first.ops]
    written = remember({}, desired, {}, [], results, [])
    w = written[task.ref]
    assert w.labels == {"tether:stalled"} and w.comment_id == "c1" and w.unmasked
    # The tracker still names c1 (a marker outlives the comment), but an edit found it gone.
    shown = {task.ref: CurrentAnnotation(frozenset({"tether:stalled"}), None, "c1", "x")}
    update = WriteOp("src", "1", OpKind.UPDATE_COMMENT, "new", "", "c1")
    gone = remember(written, desired, shown, [], [OpResult(update, True, gone=True)], [])
    assert gone[task.ref].comment_gone
    seen = effective(shown, gone)
    assert seen[task.ref].comment_id is None and seen[task.ref].labels == {"tether:stalled"}
    held = plan([task], desired, seen, gone)
    assert held.ops == [] and [o.kind for o in held.held] == [OpKind.CREATE_COMMENT]


def test_a_deletion_a_careful_read_confirmed_is_noted_once() -> None:
    """Once a read past every cache finds Tether's comment gone, later passes stop looking
    for it (each look is a request per item on every run)."""
    from tether.model import Written
    from tether.pipeline.pull import seems_deleted

    task = _task()
    desired = _desired(task, [], [], {})  # the findings cleared: no comment wanted
    written = {task.ref: Written(comment_id="c1", comment_verdict="v")}
    shown = CurrentAnnotation(frozenset(), None, None)
    assert seems_deleted(written[task.ref], shown)  # so the pass looked carefully
    noted = remember(written, desired, {task.ref: shown}, [], [], [])
    assert noted[task.ref].comment_gone and noted[task.ref].comment_id == "c1"
    assert not seems_deleted(noted[task.ref], shown)


def test_a_deferred_comment_is_not_mistaken_for_a_deleted_one() -> None:
    task = _task()
    finding = Finding("stalled", "warning", task.ref, "Idle.", "stalled")
    desired = _desired(task, [finding], [], {})
    [create] = plan([task], desired, {}, {}).ops
    written = remember({}, desired, {}, [], [], [create])  # over budget: not sent
    assert plan([task], desired, {}, written).ops == [create]


def test_tethers_own_edit_is_not_activity() -> None:
    before = _task(labels=("bug",))
    pulled = replace(before, labels=("bug", "tether:stalled"), updated=T0 + timedelta(days=9))
    from tether.model import Written
    written = {before.ref: Written(unmasked=True)}
    [task], learnt = mask_own_edits([pulled], {before.ref: before}, written, "tether")
    assert task.updated == T0 and learnt[before.ref].own_updated == pulled.updated
    # Pulled again, unchanged: still masked. Touched by a person: their time counts.
    [again], _ = mask_own_edits([pulled], {before.ref: task}, learnt, "tether")
    assert again.updated == T0
    later = replace(pulled, updated=T0 + timedelta(days=12))
    [seen], _ = mask_own_edits([later], {before.ref: task}, learnt, "tether")
    assert seen.updated == later.updated


def test_a_person_editing_alongside_tethers_write_counts_as_activity() -> None:
    before = _task()
    pulled = replace(before, title="Renamed", labels=("tether:stalled",),
                     updated=T0 + timedelta(days=9))
    from tether.model import Written
    [task], learnt = mask_own_edits([pulled], {before.ref: before},
                                    {before.ref: Written(unmasked=True)}, "tether")
    assert task.updated == pulled.updated and learnt[before.ref].own_updated is None


# -- templates -------------------------------------------------------------------------------


def test_the_comment_names_signal_numbers_kpi_owner_rule_version_and_next_step() -> None:
    kpi = KPI("nps", "Net Promoter", owner="Dana Lee", owner_handles={"github": "dana"})
    gate = Finding("gate", "critical", "kpi:nps", "NPS is 31, 9 below the band of 40.", "gate",
                   12000.0, None, "Decide whether to continue, pivot or stop.")
    body = Renderer(versions={"gate": "pack drift 1a2b3c4d"}, mentioning=frozenset({"gate"})
                    ).comment([gate], [], {"nps": kpi}, mention_for=lambda k: mention("dana"))
    assert body.startswith(MARKER)
    for part in ("**gate**", "31, 9 below", "Net Promoter", "Dana Lee", "`gate`",
                 "pack drift 1a2b3c4d", "What to do: Decide", "<@dana>"):
        assert part in body, part


def test_routine_findings_never_mention() -> None:
    kpi = KPI("nps", "Net Promoter", owner="Dana Lee")
    starved = Finding("starved", "warning", "kpi:nps", "No work serves it.", "starved")
    body = Renderer(mentioning=frozenset({"gate"})).comment(
        [starved], [], {"nps": kpi}, mention_for=lambda k: mention("dana"))
    assert "<@" not in body


def test_a_custom_template_per_markup_is_used_and_still_neutralised(tmp_path: Path) -> None:
    (tmp_path / "comment.adf.md.j2").write_text(
        "Jira says: {% for f in findings %}{{ f.reason }}{% endfor %}")
    (tmp_path / "comment.md.j2").write_text("Plain: {% for f in findings %}{{ f.signal }}{% endfor %}")
    finding = Finding("untethered", "warning", "s:1", "Title [x](https://e.example) @all", "u")
    renderer = Renderer(tmp_path)
    adf = renderer.comment([finding], [], {}, "adf")
    assert adf.startswith(MARKER + "\nJira says: ")
    assert "\\[x\\]" in adf and "@\u200ball" in adf and "https://" not in adf
    assert renderer.comment([finding], [], {}, "markdown") == f"{MARKER}\nPlain: untethered"
    assert "nothing to flag" in renderer.resolved("adf")  # the built-in one still serves


def test_a_broken_template_is_located(files_only: Path) -> None:
    folder = files_only / "templates"
    folder.mkdir()
    (folder / "comment.md.j2").write_text("line one\n{% for f in findings %}\n")
    config = files_only / "tether.yaml"
    config.write_text(config.read_text() + "  templates: templates\n")
    with pytest.raises(InvalidInput) as err:
        load_config(config, Plugins())
    [problem] = err.value.problems
    assert problem.file.endswith("comment.md.j2") and problem.line >= 2
    assert "template" in problem.message


# -- the audit trail -------------------------------------------------------------------------


@on_each_backend
def test_interrupted_writes_are_closed_and_old_history_pruned(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 's.db'}") as store:
        old = store.start_run("sync", {}, T0)
        store.finish_run(old, "ok", {}, T0)
        run = store.start_run("sync", {}, T0 + timedelta(days=200))
        entry = store.ledger_begin(run, WriteOp("s", "1", OpKind.ADD_LABEL, "t:x", ""), T0)
        [cut] = store.ledger_interrupt(T0 + timedelta(days=201))
        assert cut.id == entry and store.ledger_pending() == []
        assert store.ledger_for("s:1")[0].status == "interrupted"
        pruned = store.prune(T0 + timedelta(days=100))
        assert pruned["runs"] == 1 and [r.id for r in store.runs()] == [run]


def _cli(*args: str):
    from click.testing import CliRunner
    from tether.cli import main
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@on_each_backend
def test_log_lists_runs_and_one_items_findings_and_writes(files_only: Path) -> None:
    assert _cli("sync", "-c", str(files_only)).exit_code == 0
    assert _cli("plan", "-c", str(files_only)).exit_code == 0
    runs = json.loads(_cli("log", "--json", "-c", str(files_only)).stdout)["runs"]
    assert [r["mode"] for r in runs] == ["plan", "sync"]
    assert runs[1]["counts"]["applied"] == runs[1]["counts"]["planned"] > 0
    assert set(runs[1]["rule_packs"]) == {"drift", "rules"}
    events = json.loads(_cli("log", "jira:OPS-9", "--json", "-c", str(files_only)).stdout)["events"]
    assert [e["what"] for e in events] == ["finding raised", "write done", "write done"]
    assert "untethered" in events[0]["detail"] and "create_comment" in events[2]["detail"]
    table = _cli("log", "-c", str(files_only)).stdout
    assert "sync" in table and "plan" in table
    wrong = _cli("log", "OPS-9", "-c", str(files_only))
    assert wrong.exit_code != 0 and "SOURCE:KEY" in wrong.output


@on_each_backend
def test_sync_dry_run_plans_exactly_what_plan_does(files_only: Path) -> None:
    plan_doc = json.loads(_cli("plan", "--json", "-c", str(files_only)).stdout)
    dry = json.loads(_cli("sync", "--dry-run", "--json", "-c", str(files_only)).stdout)
    assert dry["ops"] == plan_doc["ops"] and dry["writes"]["applied"] == 0
    assert not list((files_only / "data").glob("*.tether.json"))


@on_each_backend
def test_history_older_than_the_retention_is_pruned(files_only: Path) -> None:
    config = files_only / "tether.yaml"
    config.write_text(config.read_text() + "state:\n  retention_days: 7\n")
    sync(files_only, lambda: T0)
    sync(files_only, lambda: T0 + timedelta(days=3))
    sync(files_only, lambda: T0 + timedelta(days=9))
    ws = load_workspace(files_only / "tether.yaml")
    with ws.open_store() as store:
        assert [r.started for r in store.runs()] == [T0 + timedelta(days=9), T0 + timedelta(days=3)]
        assert all(e.started >= T0 + timedelta(days=2) for e in store.ledger_for("jira:OPS-9"))
