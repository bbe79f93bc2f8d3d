"""The files connector: every export format, located errors, the sidecar."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError
from tether.codec import task_to_dict
from tether.errors import InvalidInput
from tether.model import Link, OpKind, Task, WriteOp
from tether.plugins import Plugins
from tether_files import FilesConnector, FilesOptions

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "files-only"
JIRA_HEADER = ("Summary,Issue key,Issue id,Issue Type,Status,Project key,Created,Updated,Resolved,"
               "Description,Labels,Labels,Labels,Component/s,Custom field (Story point estimate),"
               "Custom field (Vendor),Custom field (Region),Custom field (Region),Parent,"
               "Outward issue link (Cloners)\n")


def connector(base: Path, path: str, fmt: str, name: str = "src", **options: str) -> FilesConnector:
    return FilesConnector(name, FilesOptions(path=path, format=fmt, **options), base)


def pull(base: Path, path: str, fmt: str, **options: str) -> dict[str, Task]:
    return {task.key: task for task in connector(base, path, fmt, **options).pull(None).tasks}


def write(tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return name


def problems(exc: pytest.ExceptionInfo[InvalidInput]) -> list[tuple[int, str]]:
    return [(p.line, p.key) for p in exc.value.problems]


# --- the example data ---------------------------------------------------------------------

def test_example_jira_export_parses_like_jira_wrote_it():
    tasks = pull(EXAMPLE, "data/jira-export.csv", "jira-csv",
                 url_base="https://northwind.atlassian.net/browse/")
    assert len(tasks) == 24
    assert {t.project for t in tasks.values()} == {"OPS", "PLAT"}
    assert sum(t.status_category == "done" for t in tasks.values()) == 6
    ops3 = tasks["OPS-3"]
    assert ops3.source == "src" and ops3.url == "https://northwind.atlassian.net/browse/OPS-3"
    assert ops3.labels == ("vendor", "freight")  # two of the three repeated Labels columns
    assert ops3.components == ("Procurement",)
    assert ops3.created == datetime(2025, 1, 13, 14, 20, tzinfo=UTC)  # "13/Jan/25 2:20 PM"
    assert ops3.resolved is None
    assert (ops3.estimate, ops3.epic, ops3.assignee) == (5.0, "OPS-1", "Dana Whitfield")
    assert ops3.custom["Vendor"] == "DHL Freight" and ops3.custom["Team"] == "Ops Excellence"
    assert ops3.custom["sprints"] == ["OPS Sprint 7", "OPS Sprint 8"]
    assert tasks["OPS-4"].resolved == datetime(2025, 3, 21, 17, 30, tzinfo=UTC)
    # The Status Category column wins over the status name.
    assert tasks["OPS-7"].status == "In Review" and tasks["OPS-7"].status_category == "in_progress"
    assert tasks["PLAT-6"].status_category == "todo"  # "Selected for Development"
    assert tasks["PLAT-12"].status_category == "done"
    assert tasks["PLAT-5"].links == (Link("is blocked by", "PLAT-6"), Link("relates to", "OPS-7"))
    assert tasks["PLAT-6"].links == (Link("blocks", "PLAT-5"),)
    # Parent holds the numeric Issue id; it comes back as a key, and an Epic parent is the epic.
    assert (tasks["PLAT-7"].parent, tasks["PLAT-7"].epic) == ("PLAT-1", "PLAT-1")
    assert (tasks["PLAT-8"].parent, tasks["PLAT-8"].epic) == ("PLAT-6", None)
    assert tasks["OPS-1"].body.count("\n") == 2 and tasks["OPS-9"].labels == ()


def test_example_gh_issues_parse_like_gh_printed_them():
    tasks = pull(EXAMPLE, "data/gh-issues.json", "gh-json")
    assert len(tasks) == 12
    assert {t.project for t in tasks.values()} == {"northwind/portal"}  # from the URLs
    i101 = tasks["101"]
    assert i101.labels == ("bug", "nps", "performance")
    assert (i101.assignee, i101.status, i101.status_category) == ("lpark", "OPEN", "in_progress")
    assert i101.url == "https://github.com/northwind/portal/issues/101" and i101.type == "issue"
    assert tasks["106"].custom["assignees"] == ["kofi-m", "benok"]
    assert tasks["112"].status_category == "todo"  # open, nobody assigned
    assert tasks["112"].custom["milestone"] == "Q2 Onboarding"
    i104 = tasks["104"]
    assert (i104.status_category, i104.resolved) == ("done", datetime(2025, 3, 18, 15, 20, 44,
                                                                      tzinfo=UTC))
    assert sum(t.status_category == "done" for t in tasks.values()) == 4


def test_example_has_thirty_plus_tasks_with_unique_refs():
    jira = connector(EXAMPLE, "data/jira-export.csv", "jira-csv", name="jira").pull(None).tasks
    gh = connector(EXAMPLE, "data/gh-issues.json", "gh-json", name="portal").pull(None).tasks
    refs = {t.ref for t in jira + gh}
    assert len(refs) == len(jira) + len(gh) >= 30 and "portal:101" in refs


# --- formats from scratch -----------------------------------------------------------------

def test_jira_csv_without_status_category_infers_it_and_accepts_iso_dates(tmp_path):
    path = write(tmp_path, "j.csv", JIRA_HEADER + (
        "Fix it,AB-1,500,Bug,Closed,AB,2024-03-12T15:04:00+0100,12/Mar/2024 15:04,,,"
        "a b,c,,Core,2.5,Acme,EU,US,,AB-2\n"
        "Do it,AB-2,501,Task,In Review,,1/Feb/24 9:05 AM,,,,,,,,,,,,500,\n"
        "Plan it,AB-3,502,Story,Backlog,AB,,,,,,,,,,,,,,\n"))
    tasks = pull(tmp_path, path, "jira-csv", project="DEFAULT")
    one, two = tasks["AB-1"], tasks["AB-2"]
    assert [t.status_category for t in tasks.values()] == ["done", "in_progress", "todo"]
    assert one.created == datetime(2024, 3, 12, 14, 4, tzinfo=UTC)
    assert one.updated == datetime(2024, 3, 12, 15, 4, tzinfo=UTC)
    assert one.labels == ("a", "b", "c")  # space-joined labels split, repeated columns merged
    assert one.estimate == 2.5 and one.custom["Region"] == ["EU", "US"]
    assert one.links == (Link("clones", "AB-2"),)
    assert two.created == datetime(2024, 2, 1, 9, 5, tzinfo=UTC)
    assert (two.project, two.parent) == ("DEFAULT", "AB-1")  # option fills the empty project


def test_gh_pr_list_shape(tmp_path):
    prs = [{"number": 7, "title": "Add cache", "state": "MERGED", "isDraft": False,
            "mergedAt": "2024-05-01T10:00:00Z", "labels": [], "assignees": []},
           {"number": 8, "title": "WIP", "state": "OPEN", "isDraft": True, "labels": [],
            "assignees": []}]
    path = write(tmp_path, "prs.json", json.dumps(prs))
    tasks = pull(tmp_path, path, "gh-json", project="me/repo",
                 url_base="https://github.com/me/repo/pull/")
    assert tasks["7"].type == "pull request" and tasks["7"].status_category == "done"
    assert tasks["7"].resolved == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert tasks["8"].status_category == "in_progress" and tasks["8"].custom["draft"] is True
    assert tasks["8"].url == "https://github.com/me/repo/pull/8" and tasks["8"].project == "me/repo"


def test_tether_json_round_trips_codec_output(tmp_path):
    original = Task(source="elsewhere", key="X-1", title="Ship", url="u", body="b", type="Story",
                    status="Doing", status_category="in_progress", assignee="ann",
                    project="X", labels=("a", "b"), components=("c",), parent="X-0", epic="X-9",
                    links=(Link("blocks", "X-2"),), estimate=3.0,
                    created=datetime(2024, 1, 2, 3, 4, tzinfo=UTC), custom={"team": "red"})
    data = task_to_dict(original)
    del data["source"]
    path = write(tmp_path, "t.json", json.dumps({"tasks": [data, {"key": "X-2", "title": "Next",
                                                                 "status": "Done"}]}))
    tasks = pull(tmp_path, path, "tether-json", url_base="https://x/")
    assert tasks["X-1"] == replace(original, source="src")
    assert tasks["X-1"].custom == {"team": "red"}
    assert tasks["X-2"].status_category == "done" and tasks["X-2"].url == "https://x/X-2"


def test_tether_csv(tmp_path):
    path = write(tmp_path, "t.csv", (
        "key,title,status,labels,components,estimate,created,custom.vendor,custom.cost,custom.tags\n"
        'T-1,"Cut, costs",In Progress, vendor ; cloud-cost ,Ops,5,2024-01-02,Acme,1200,x;y\n'
        "T-2,Tidy,,,,,,,,\n"))
    tasks = pull(tmp_path, path, "tether-csv", project="P")
    one = tasks["T-1"]
    assert (one.title, one.labels, one.components) == ("Cut, costs", ("vendor", "cloud-cost"),
                                                       ("Ops",))
    assert (one.status_category, one.estimate, one.project) == ("in_progress", 5.0, "P")
    assert one.created == datetime(2024, 1, 2, tzinfo=UTC)
    assert one.custom == {"vendor": "Acme", "cost": 1200.0, "tags": ["x", "y"]}
    assert tasks["T-2"].status_category == "todo" and tasks["T-2"].custom == {}


def test_format_is_required_and_options_are_strict():
    with pytest.raises(ValidationError, match="format"):
        FilesOptions(path="x.csv")
    with pytest.raises(ValidationError, match="formt"):
        FilesOptions(path="x.csv", format="jira-csv", formt="x")
    with pytest.raises(ValidationError):
        FilesOptions(path="x.csv", format="excel")


def test_cursor_is_the_content_hash(tmp_path):
    path = write(tmp_path, "t.csv", "key,title\nA,a\n")
    source = connector(tmp_path, path, "tether-csv")
    first = source.pull(None)
    assert first.complete and source.pull(first.cursor).cursor == first.cursor
    assert len(source.pull(first.cursor).tasks) == 1  # always the full export
    write(tmp_path, "t.csv", "key,title\nA,a\nB,b\n")
    assert source.pull(first.cursor).cursor != first.cursor


# --- located errors -----------------------------------------------------------------------

def test_jira_errors_name_file_line_and_column(tmp_path):
    path = write(tmp_path, "j.csv", JIRA_HEADER + (
        'Ok,AB-1,1,Bug,Open,AB,,,,"two\nlines",,,,,,,,,,\n'
        "Bad,AB-2,2,Bug,Open,AB,yesterday,,,,,,,,lots,,,,,\n"
        ",AB-3,3,Bug,Open,AB,,,,,,,,,,,,,,\n"
        "Again,AB-1,4,Bug,Open,AB,,,,,,,,,,,,,,\n"))
    with pytest.raises(InvalidInput) as exc:
        pull(tmp_path, path, "jira-csv")
    assert problems(exc) == [(4, "Created"), (4, "Custom field (Story point estimate)"),
                             (5, "Summary"), (6, "Issue key")]
    created = exc.value.problems[0]
    assert created.file == str(tmp_path / "j.csv") and created.column == 7
    assert "'yesterday' is not a date" in created.message and "12/Mar/24" in created.message
    assert "first at line 2" in exc.value.problems[3].message


def test_jira_errors_on_missing_columns_and_bad_category(tmp_path):
    path = write(tmp_path, "j.csv", "Summary,Status\nx,Open\n")
    with pytest.raises(InvalidInput, match="no 'Issue key' column"):
        pull(tmp_path, path, "jira-csv")
    path = write(tmp_path, "k.csv", "Summary,Issue key,Status Category\nx,A-1,Erledigt\n")
    with pytest.raises(InvalidInput) as exc:
        pull(tmp_path, path, "jira-csv")
    assert problems(exc) == [(2, "Status Category")]
    assert "use todo, in_progress or done" in exc.value.problems[0].message


def test_gh_json_errors_name_the_item(tmp_path):
    items = [{"number": 1, "title": "ok", "state": "OPEN"},
             {"number": 2, "title": "bad", "state": "WONTFIX", "labels": [{"color": "f00"}]}]
    path = write(tmp_path, "g.json", json.dumps(items, indent=2))
    with pytest.raises(InvalidInput) as exc:
        pull(tmp_path, path, "gh-json")
    assert problems(exc) == [(7, "[1].state"), (7, "[1].labels")]
    assert "gh issue list" in exc.value.problems[0].message
    path = write(tmp_path, "h.json", '[{"number": 1,\n "title": "x",, }]')
    with pytest.raises(InvalidInput) as exc:
        pull(tmp_path, path, "gh-json")
    assert problems(exc) == [(2, "")] and "not valid JSON" in str(exc.value)
    path = write(tmp_path, "i.json", '{"issues": []}')
    with pytest.raises(InvalidInput, match="expected a JSON array"):
        pull(tmp_path, path, "gh-json")


def test_tether_json_errors_use_item_index_and_line(tmp_path):
    path = write(tmp_path, "t.json", json.dumps({"tasks": [
        {"key": "A", "title": "a"},
        {"key": "B", "title": "b", "status_category": "started"},
        {"key": "C"},
        {"key": "D", "title": "d", "created": "soon"},
        {"key": "E", "title": "e", "estimate": "big"},
        {"key": "F", "title": "f", "links": [{"type": "blocks"}]},
        {"key": "A", "title": "again"},
    ]}, indent=1))
    with pytest.raises(InvalidInput) as exc:
        pull(tmp_path, path, "tether-json")
    keys = [key for _, key in problems(exc)]
    assert keys == ["tasks[1].status_category", "tasks[2].title", "tasks[3].created",
                    "tasks[4].estimate", "tasks[5].links", "tasks[6].key"]
    assert [line for line, _ in problems(exc)] == [7, 12, 15, 20, 25, 34]
    assert "first at tasks[0], line 3" in exc.value.problems[-1].message


def test_tether_csv_errors(tmp_path):
    path = write(tmp_path, "t.csv", "key,title,sprint\nA,a,1\n")
    with pytest.raises(InvalidInput) as exc:
        pull(tmp_path, path, "tether-csv")
    assert problems(exc) == [(1, "sprint")] and "custom.<name>" in str(exc.value)
    path = write(tmp_path, "u.csv", "key,title,estimate,created\nA,a,two,\nB,,,2024-13-01\nA,x,,\n")
    with pytest.raises(InvalidInput) as exc:
        pull(tmp_path, path, "tether-csv")
    assert problems(exc) == [(2, "estimate"), (3, "title"), (3, "created"), (4, "key")]


def test_missing_export_says_to_check_the_path(tmp_path):
    with pytest.raises(InvalidInput) as exc:
        pull(tmp_path, "nope/export.csv", "jira-csv")
    problem = exc.value.problems[0]
    assert problem.file == str(tmp_path / "nope" / "export.csv")
    assert "options.path" in str(problem)


# --- the sidecar --------------------------------------------------------------------------

def op(kind: OpKind, value: str, key: str = "A", comment_id: str | None = None) -> WriteOp:
    return WriteOp("src", key, kind, value, "test", comment_id=comment_id)


@pytest.fixture
def source(tmp_path: Path) -> FilesConnector:
    path = write(tmp_path, "t.csv", "key,title\nA,a\nB,b\n")
    return connector(tmp_path, path, "tether-csv")


def sidecar_text(tmp_path: Path) -> str:
    return (tmp_path / "t.csv.tether.json").read_text()


def test_apply_is_idempotent_and_keeps_one_comment(source, tmp_path):
    ops = [op(OpKind.ADD_LABEL, "tether:kpi-nps"), op(OpKind.ADD_LABEL, "tether:drift"),
           op(OpKind.CREATE_COMMENT, "Mapped to NPS")]
    first = source.apply(ops)
    assert all(r.ok for r in first) and first[2].comment_id
    text = sidecar_text(tmp_path)
    again = source.apply(ops)
    assert sidecar_text(tmp_path) == text
    assert again[2].comment_id == first[2].comment_id
    data = json.loads(text)
    assert data == {"version": 1, "items": {"A": {
        "labels": ["tether:drift", "tether:kpi-nps"],
        "comment": {"id": first[2].comment_id, "body": "Mapped to NPS"}}}}
    source.apply([op(OpKind.UPDATE_COMMENT, "Now drifting", comment_id=first[2].comment_id),
                  op(OpKind.REMOVE_LABEL, "tether:drift"), op(OpKind.REMOVE_LABEL, "tether:gone")])
    item = json.loads(sidecar_text(tmp_path))["items"]["A"]
    assert item == {"labels": ["tether:kpi-nps"],
                    "comment": {"id": first[2].comment_id, "body": "Now drifting"}}


def test_read_annotations_reports_only_the_prefix_namespace(source, tmp_path):
    (tmp_path / "t.csv.tether.json").write_text(json.dumps({"version": 1, "items": {
        "A": {"labels": ["tether:kpi-nps", "team:red", "tetherx:no"],
              "comment": {"id": "c7", "body": "hi"}},
        "Z": {"labels": ["tether:old"]}}}))
    tasks = source.pull(None).tasks
    current = source.read_annotations(tasks, "tether")
    assert set(current) == {"A"}  # B has no entry, Z is not among the tasks
    assert current["A"].labels == frozenset({"tether:kpi-nps"})
    assert (current["A"].comment, current["A"].comment_id) == ("hi", "c7")
    created = source.apply([op(OpKind.CREATE_COMMENT, "b", key="B")])
    assert created[0].comment_id == "c8"  # never reuses an id in the file
    assert source.read_annotations(tasks, "tether")["B"].comment == "b"


def test_unknown_key_fails_only_that_op(source, tmp_path):
    results = source.apply([op(OpKind.ADD_LABEL, "tether:x", key="NOPE"),
                            op(OpKind.ADD_LABEL, "tether:x", key="B")])
    assert [r.ok for r in results] == [False, True]
    assert results[0].error == "item NOPE is not in t.csv; re-export and run again"
    assert set(json.loads(sidecar_text(tmp_path))["items"]) == {"B"}


def test_sidecar_write_is_atomic(source, tmp_path, monkeypatch):
    source.apply([op(OpKind.ADD_LABEL, "tether:x")])
    before = sidecar_text(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.csv.tether.json"]

    def crash(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    results = source.apply([op(OpKind.ADD_LABEL, "tether:y")])
    assert not results[0].ok and "No space left on device" in (results[0].error or "")
    assert sidecar_text(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.csv.tether.json"]


def test_sidecar_option_and_damaged_sidecar(tmp_path):
    path = write(tmp_path, "t.csv", "key,title\nA,a\n")
    source = connector(tmp_path, path, "tether-csv", sidecar="notes/side.json")
    source.apply([op(OpKind.ADD_LABEL, "tether:x")])
    assert (tmp_path / "notes" / "side.json").exists()
    (tmp_path / "notes" / "side.json").write_text('{"version": 1,\n "items": [}')
    with pytest.raises(InvalidInput) as exc:
        source.read_annotations(source.pull(None).tasks, "tether")
    assert exc.value.problems[0].line == 2 and "delete it" in str(exc.value)


# --- plugin registration ------------------------------------------------------

def test_plugin_is_found_through_the_entry_point(monkeypatch):
    monkeypatch.setenv("TETHER_LOAD_PLUGINS", "files")
    plugins = Plugins()
    assert plugins.connector_types()["files"] is FilesConnector
    assert "files" not in plugins.sandbox_types()  # an export needs no fake server
    assert FilesConnector.capabilities.markup == "markdown"
    assert FilesConnector.capabilities.comments_editable
