"""Jira contract: real payloads (the Jira Cloud OpenAPI description and its examples, in
../shared/contracts/jira) go through the normaliser, and the sandbox's answers are checked
against the same description: valid by its schemas, and no looser than its examples."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
from tether_jira.client import MARKER_KEY
from tether_jira.conformance import JiraDriver
from tether_jira.markup import to_adf
from tether_jira.normalise import FieldMap, to_task
from tether_jira.sandbox.api import REMOVED_SEARCH, adf_problem

SHARED = Path(__file__).resolve().parents[2] / "shared"
SPEC = SHARED / "contracts" / "jira" / "swagger-v3.v3.json"
BASE = "https://your-domain.atlassian.net"
FIELDS = FieldMap(story_points="customfield_10016").requested()

# Keys the real examples show that the sandbox may leave out, each for a stated reason.
EXEMPT = {
    "fields.project.insight": "only with expand=insight on project resources",
    "fields.project.projectCategory": "only for projects in a category",
    "fields.project.style": "not in ProjectDetails, the schema of an embedded project",
    "fields.updated": "the example's number 1 contradicts its own date-time strings",
    "fields.description": "this example prints v2's string; v3's ADF is checked against the "
                          "GET issue example",
    "visibility": "only on restricted comments",
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    if not SPEC.is_file():
        pytest.skip(f"the Jira OpenAPI description is not at {SPEC} (../shared beside the repo)")
    return json.loads(SPEC.read_text(encoding="utf-8"))


def example(spec: dict[str, Any], path: str, method: str = "get", status: str = "200") -> Any:
    content = spec["paths"][path][method]["responses"][status]["content"]["application/json"]
    raw = content["example"]
    return json.loads(raw) if isinstance(raw, str) else raw


def _nullable(node: Any) -> Any:
    """OpenAPI 3.0 ``nullable: true`` as JSON Schema understands it."""
    if isinstance(node, list):
        return [_nullable(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable(v) for k, v in node.items()}
    if out.pop("nullable", False):
        return {"anyOf": [out, {"type": "null"}]}
    return out


def validate(spec: dict[str, Any], schema: str, payload: Any) -> None:
    """``payload`` must be valid against ``#/components/schemas/<schema>`` (refs resolved)."""
    root = {"$ref": f"#/components/schemas/{schema}", "components": _converted(id(spec), spec)}
    jsonschema.Draft7Validator(root).validate(payload)


_CONVERTED: dict[int, dict[str, Any]] = {}


def _converted(key: int, spec: dict[str, Any]) -> dict[str, Any]:
    if key not in _CONVERTED:
        _CONVERTED[key] = _nullable(spec["components"])
    return _CONVERTED[key]


def looser(real: Any, fake: Any, path: str = "") -> list[str]:
    """Where ``fake`` lacks a key of ``real`` or has another JSON type; in lists, each real
    item is matched with the fake item it differs from least."""
    def kind(v: Any) -> str:
        return {bool: "boolean", int: "number", float: "number", str: "string", list: "array",
                dict: "object", type(None): "null"}[type(v)]

    if path.lstrip(".") in EXEMPT:
        return []
    if kind(real) != kind(fake):
        return [f"{path or '.'}: {kind(real)} in Jira, {kind(fake)} in the sandbox"]
    if isinstance(real, dict):
        out = []
        for key, value in real.items():
            where = f"{path}.{key}"
            if key not in fake:
                if where.lstrip(".") not in EXEMPT:
                    out.append(f"{where}: missing in the sandbox")
            else:
                out += looser(value, fake[key], where)
        return out
    if isinstance(real, list) and real and fake:  # each real item needs a matching fake one
        out = []
        for item in real:
            tries = [looser(item, candidate, path) for candidate in fake]
            out += min(tries, key=len)
        return out
    return []


@pytest.fixture
def cloud(tmp_path: Path, monkeypatch):
    drv = JiraDriver(tmp_path, "cloud")
    monkeypatch.setenv(drv.token_variable, "good")
    keys = drv.seed(12)
    drv.world.link("Relates", keys[4], keys[5])
    yield drv, keys
    drv.server.stop()


@pytest.fixture
def dc(tmp_path: Path, monkeypatch):
    drv = JiraDriver(tmp_path, "datacenter")
    monkeypatch.setenv(drv.token_variable, "good")
    drv.seed(12)
    yield drv
    drv.server.stop()


def get(drv: JiraDriver, path: str, method: str = "GET", **kw: Any) -> requests.Response:
    if drv.flavour == "cloud":
        auth = "Basic " + base64.b64encode(b"mia@example.com:good").decode()
    else:
        auth = "Bearer good"
    return requests.request(method, drv.server.base_url + path, timeout=5,
                            headers={"Authorization": auth}, **kw)


# -- real payloads through the normaliser -----------------------------------------------------

def test_enhanced_search_example_normalises(spec) -> None:
    [issue] = example(spec, "/rest/api/3/search/jql")["issues"]
    task = to_task(issue, "jira", BASE, FieldMap())
    assert (task.key, task.project, task.url) == ("ED-1", "EX", f"{BASE}/browse/ED-1")
    assert task.body == "Main order flow broken"  # a plain string in this example
    assert [(link.type, link.target) for link in task.links] == [
        ("is depended by", "PR-2"), ("depends on", "PR-3")]
    assert task.title == "" and task.assignee is None and task.estimate is None
    assert task.updated is not None and task.updated.tzinfo is not None  # "updated": 1
    assert task.status_category == "todo" and task.raw is issue


def test_get_issue_example_with_an_adf_description_normalises(spec) -> None:
    issue = example(spec, "/rest/api/3/issue/{issueIdOrKey}")
    task = to_task(issue, "jira", BASE, FieldMap())
    assert task.body == "Main order flow broken"  # from ADF
    assert task.links and all(link.target for link in task.links)


def test_legacy_search_example_normalises(spec) -> None:
    page = example(spec, "/rest/api/3/search")
    tasks = [to_task(i, "jira", BASE, FieldMap()) for i in page["issues"]]
    assert tasks and tasks[0].key == "ED-1" and "total" in page  # the shape DC still sends


def test_comment_example_body_reads_as_text_and_is_accepted_by_the_sandbox(spec) -> None:
    comment = example(spec, "/rest/api/3/issue/{issueIdOrKey}/comment", "post", "201")
    assert adf_problem(comment["body"]) is None
    assert adf_problem(to_adf("<!-- tether:comment -->\n**Tether** _says_ `x`\n\n- a\n  - b")) \
        is None


# -- the sandbox against the description ------------------------------------------------------

def test_sandbox_enhanced_search_is_valid_and_no_looser_than_jira(spec, cloud) -> None:
    drv, _ = cloud
    page = get(drv, "/rest/api/3/search/jql", params={
        "jql": "project = OPS", "maxResults": "5", "fields": FIELDS,
        "properties": MARKER_KEY}).json()
    validate(spec, "SearchAndReconcileResults", page)
    assert "nextPageToken" in page and page["isLast"] is False and "total" not in page
    real = example(spec, "/rest/api/3/search/jql")
    assert looser({k: v for k, v in real.items() if k != "issues"}, page) == []
    real_issue = real["issues"][0]
    adf_issue = example(spec, "/rest/api/3/issue/{issueIdOrKey}")
    for issue in page["issues"]:
        validate(spec, "IssueBean", issue)
        fields = issue["fields"]
        shared = {k: v for k, v in real_issue["fields"].items()
                  if k in FIELDS and k != "issuelinks"}  # links: checked over a whole page
        assert looser({**real_issue, "fields": shared}, issue) == [], issue["key"]
        if fields["description"] is not None:
            assert looser(adf_issue["fields"]["description"], fields["description"]) == []
        validate(spec, "StatusDetails", fields["status"])
        validate(spec, "IssueTypeDetails", fields["issuetype"])
        validate(spec, "ProjectDetails", fields["project"])
        if fields["assignee"] is not None:
            validate(spec, "UserDetails", fields["assignee"])
        for component in fields["components"]:
            validate(spec, "ProjectComponent", component)
        for link in fields["issuelinks"]:
            validate(spec, "IssueLinkType", link["type"])
            validate(spec, "LinkedIssue", link.get("outwardIssue") or link["inwardIssue"])
        if fields["parent"]:
            validate(spec, "LinkedIssue", fields["parent"])
    last = get(drv, "/rest/api/3/search/jql", params={
        "jql": "project = OPS", "maxResults": "5", "fields": "key",
        "nextPageToken": get(drv, "/rest/api/3/search/jql", params={
            "jql": "project = OPS", "maxResults": "10", "fields": "key"}).json()["nextPageToken"]
    }).json()
    assert last["isLast"] is True and "nextPageToken" not in last  # omitted, not null


def test_sandbox_issue_links_match_the_example_shape_both_ways(spec, cloud) -> None:
    drv, _ = cloud
    page = get(drv, "/rest/api/3/search/jql", params={"jql": "project = OPS",
                                                      "fields": "issuelinks"}).json()
    links = [x for issue in page["issues"] for x in issue["fields"]["issuelinks"]]
    real = example(spec, "/rest/api/3/search/jql")["issues"][0]["fields"]["issuelinks"]
    assert {"outwardIssue", "inwardIssue"} <= {k for x in real for k in x}
    assert looser(real, links) == []


def test_sandbox_comment_and_property_calls_match_the_description(spec, cloud) -> None:
    drv, keys = cloud
    body = example(spec, "/rest/api/3/issue/{issueIdOrKey}/comment", "post", "201")
    created = get(drv, f"/rest/api/3/issue/{keys[0]}/comment", "POST",
                  json={"body": body["body"]})
    assert created.status_code == 201
    validate(spec, "Comment", created.json())
    assert looser(body, created.json()) == []
    validate(spec, "UserDetails", created.json()["author"])
    page = get(drv, f"/rest/api/3/issue/{keys[0]}/comment").json()
    validate(spec, "PageOfComments", page)
    put = get(drv, f"/rest/api/3/issue/{keys[0]}/properties/{MARKER_KEY}", "PUT",
              json={"comment_id": created.json()["id"]})
    assert put.status_code == 201 and put.text == ""
    assert get(drv, f"/rest/api/3/issue/{keys[0]}/properties/{MARKER_KEY}", "PUT",
               json={"comment_id": "x"}).status_code == 200
    prop = get(drv, f"/rest/api/3/issue/{keys[0]}/properties/{MARKER_KEY}").json()
    validate(spec, "EntityProperty", prop)
    keys_page = get(drv, f"/rest/api/3/issue/{keys[0]}/properties").json()
    validate(spec, "PropertyKeys", keys_page)
    assert looser(example(spec, "/rest/api/3/issue/{issueIdOrKey}/properties"), keys_page) == []


def test_sandbox_accepts_the_documented_label_edit(spec, cloud) -> None:
    drv, keys = cloud
    request = spec["paths"]["/rest/api/3/issue/{issueIdOrKey}"]["put"]["requestBody"]
    documented = copy.deepcopy(request["content"]["application/json"]["example"])
    labels = {"update": {"labels": documented["update"]["labels"]}}
    drv.world.issues[keys[1]].labels = ["blocker", "keep"]
    answer = get(drv, f"/rest/api/3/issue/{keys[1]}", "PUT", json=labels)
    assert answer.status_code == 204 and answer.text == ""
    assert drv.labels(keys[1]) == {"triaged", "keep"}


def test_sandbox_site_resources_are_valid(spec, cloud) -> None:
    drv, _ = cloud
    info = get(drv, "/rest/api/3/serverInfo").json()
    validate(spec, "ServerInformation", info)
    optional = {"displayUrl", "displayUrlConfluence", "displayUrlServicedeskHelpCenter",
                "defaultLocale"}  # only when configured; defaultLocale is not in the schema
    real = {k: v for k, v in example(spec, "/rest/api/3/serverInfo").items()
            if k not in optional}
    assert looser(real, info) == [] and info["deploymentType"] == "Cloud"
    fields = get(drv, "/rest/api/3/field").json()
    for entry in fields:
        validate(spec, "FieldDetails", entry)
    assert looser(example(spec, "/rest/api/3/field")[0], fields[0]) == []
    me = get(drv, "/rest/api/3/myself").json()
    validate(spec, "User", me)
    links = get(drv, "/rest/api/3/issueLinkType").json()
    validate(spec, "IssueLinkTypes", links)
    assert looser(example(spec, "/rest/api/3/issueLinkType"), links) == []
    project = get(drv, "/rest/api/3/project/OPS").json()
    validate(spec, "Project", project)


def test_sandbox_errors_are_error_collections(spec, cloud) -> None:
    drv, _ = cloud
    for answer in (get(drv, "/rest/api/3/search/jql", params={"jql": "project = NOPE"}),
                   get(drv, "/rest/api/3/issue/NOPE-1"),
                   get(drv, "/rest/api/3/project/NOPE"),
                   get(drv, "/rest/api/3/search", params={"jql": "project = OPS"})):
        assert answer.status_code in (400, 404, 410)
        validate(spec, "ErrorCollection", answer.json())
    gone = get(drv, "/rest/api/2/search", params={"jql": "project = OPS"})
    assert gone.status_code == 410 and gone.json()["errorMessages"] == [REMOVED_SEARCH]


def test_dc_search_has_the_offset_shape_of_the_legacy_description(spec, dc) -> None:
    page = get(dc, "/rest/api/2/search", params={"jql": "project = OPS", "maxResults": "5",
                                                  "fields": FIELDS}).json()
    validate(spec, "SearchResults", page)
    real = example(spec, "/rest/api/3/search")
    assert looser({k: v for k, v in real.items() if k not in ("issues", "warningMessages",
                                                              "names", "schema")}, page) == []
    assert (page["startAt"], page["maxResults"], page["total"]) == (0, 5, 12)
    issue = page["issues"][0]
    validate(spec, "IssueBean", issue)
    assert isinstance(issue["fields"]["description"], str)  # v2: wiki text, not ADF
    people = [i["fields"]["assignee"] for i in page["issues"] if i["fields"]["assignee"]]
    assert people and all("name" in p and "accountId" not in p for p in people)  # usernames
    assert get(dc, "/rest/api/2/search/jql", params={"jql": "project = OPS"}).status_code == 404
    assert get(dc, "/rest/api/3/serverInfo").status_code == 404  # DC has no REST v3
    info = get(dc, "/rest/api/2/serverInfo").json()
    assert info["deploymentType"] == "Server"
