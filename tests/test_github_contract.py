"""The GitHub sandbox and normaliser against real GitHub payloads and GitHub's OpenAPI.

Reads ../shared/contracts/github beside the repository (octokit fixtures: recorded
api.github.com traffic; @octokit/openapi; webhook examples). Skips when it is absent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
from tether.clock import FakeClock
from tether.sandbox import SandboxServer
from tether_github.normalise import to_task
from tether_github.sandbox.api import GitHubApi
from tether_github.sandbox.world import World

CONTRACTS = Path(__file__).resolve().parents[2] / "shared" / "contracts" / "github"
pytestmark = pytest.mark.skipif(
    not CONTRACTS.is_dir(),
    reason=f"real GitHub payloads not found at {CONTRACTS} (the shared contracts folder "
           "beside the repository); contract tests need them")

ORG = "octokit-fixture-org"
RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset",
                "x-ratelimit-used", "x-ratelimit-resource")


@cache
def openapi() -> dict[str, Any]:
    return json.loads((CONTRACTS / "api.github.com.json").read_text(encoding="utf-8"))


@cache
def fixture(scenario: str) -> list[dict[str, Any]]:
    path = CONTRACTS / "fixtures" / scenario / "normalized-fixture.json"
    return json.loads(path.read_text(encoding="utf-8"))


def as_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema: ``nullable: true`` becomes "or null"."""
    if isinstance(node, list):
        return [as_json_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: as_json_schema(v) for k, v in node.items() if not (k == "nullable"
                                                                  and isinstance(v, bool))}
    return {"anyOf": [out, {"type": "null"}]} if node.get("nullable") is True else out


@cache
def components() -> dict[str, Any]:
    return as_json_schema({"schemas": openapi()["components"]["schemas"]})


def validate(payload: Any, schema: str, array: bool = False) -> None:
    """Validate against ``#/components/schemas/<schema>`` (or an array of it), $refs resolved."""
    ref = {"$ref": f"#/components/schemas/{schema}"}
    root = {**({"type": "array", "items": ref} if array else ref), "components": components()}
    jsonschema.Draft7Validator(root).validate(payload)


def kind(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "object", type(None): "null"}[type(value)]


def not_looser(real: Any, ours: Any, where: str = "$") -> list[str]:
    """Where ``ours`` lacks a key ``real`` has, or differs in JSON type or nesting.

    null on either side matches any type (nullability is checked by the schema)."""
    problems = []
    if real is None or ours is None:
        return problems
    if kind(real) != kind(ours):
        return [f"{where}: {kind(ours)} where GitHub sends {kind(real)}"]
    if isinstance(real, dict):
        for key, value in real.items():
            if key not in ours:
                problems.append(f"{where}.{key}: missing")
            else:
                problems += not_looser(value, ours[key], f"{where}.{key}")
    elif isinstance(real, list) and real and ours:
        problems += not_looser(real[0], ours[0], f"{where}[0]")
    return problems


# -- the sandbox ---------------------------------------------------------------------------


class Sandbox:
    def __init__(self) -> None:
        self.clock = FakeClock(datetime(2017, 10, 10, 16, 0, tzinfo=UTC))
        self.world = World(self.clock)
        self.world.add_token("good", "octokit-fixture-user-a")
        self.api = GitHubApi(self.world)
        self.server = SandboxServer(self.api).start()

    def request(self, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(method, self.server.base_url + path, json=body, timeout=5,
                                headers={"Authorization": "token good",
                                         "User-Agent": "contract-test",
                                         "X-GitHub-Api-Version": "2022-11-28"})


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    made = Sandbox()
    yield made
    made.server.stop()


# -- the normaliser on real payloads -------------------------------------------------------


def test_recorded_issue_pages_normalise() -> None:
    items = [item for entry in fixture("paginate-issues") for item in entry["response"]]
    tasks = [to_task("gh", f"{ORG}/paginate-issues", item) for item in items]
    assert [t.key for t in tasks] == [f"{ORG}/paginate-issues#{n}" for n in range(13, 0, -1)]
    first = tasks[0]
    assert first.title == "Test issue 13" and first.body == "" and first.assignee is None
    assert first.url == f"https://github.com/{ORG}/paginate-issues/issues/13"
    assert (first.type, first.status, first.status_category) == ("issue", "open", "todo")
    assert first.updated == datetime(2017, 10, 10, 16, 0, tzinfo=UTC)
    assert first.custom["author"] == "octokit-fixture-user-a" and first.raw is items[0]


def test_openapi_issue_example_normalises() -> None:
    [item] = openapi()["components"]["examples"]["issue-items"]["value"]
    task = to_task("gh", "octocat/Hello-World", item)
    assert task.key == "octocat/Hello-World#1347" and task.type == "pull request"
    assert task.labels == ("bug",) and task.assignee == "octocat"
    assert task.custom["milestone"] == "v1.0" and task.status_category == "in_progress"
    assert task.url == item["html_url"]  # the human URL, not the API one


def test_every_webhook_issue_payload_normalises() -> None:
    hooks = json.loads((CONTRACTS / "webhooks" / "examples.json").read_text(encoding="utf-8"))
    issues = [e["issue"] for event in ("issues", "issue_comment")
              for e in hooks[event]["examples"] if isinstance(e.get("issue"), dict)]
    assert len(issues) > 20
    for item in issues:
        repo = re.search(r"/repos/([^/]+/[^/]+)$", item["repository_url"])[1]  # type: ignore
        task = to_task("gh", repo, item)
        assert task.title and task.url.startswith("https://github.com/")
        assert task.created and task.created.tzinfo and task.updated
        closed = item.get("state", "closed" if item["closed_at"] else "open") == "closed"
        assert (task.status_category == "done") == closed
        assert set(task.labels) == {lbl["name"] for lbl in item.get("labels", [])}
        assert task.type == ("pull request" if "pull_request" in item else "issue")


# -- the sandbox against recorded traffic and the OpenAPI schema ------------------------------


def seed_like_paginate_issues(sb: Sandbox, n: int) -> str:
    repo = sb.world.add_repo(f"{ORG}/paginate-issues")
    for number in range(1, n + 1):
        sb.world.add_issue(repo, f"Test issue {number}", "octokit-fixture-user-a")
    return repo.full_name


def test_issue_list_matches_recorded_shapes_and_schema(sandbox: Sandbox) -> None:
    name = seed_like_paginate_issues(sandbox, 13)
    recorded = fixture("paginate-issues")
    resp = sandbox.request("GET", f"/repos/{name}/issues?per_page=3")
    assert resp.status_code == 200
    ours = resp.json()
    validate(ours, "issue", array=True)
    assert not_looser(recorded[0]["response"], ours) == []
    assert [i["number"] for i in ours] == [i["number"] for i in recorded[0]["response"]]
    # Link: same rels in the same order, next pages under /repositories/{id}/issues.
    real_link = recorded[0]["headers"]["link"]
    rels = re.findall(r'rel="(\w+)"', resp.headers["Link"])
    assert rels == re.findall(r'rel="(\w+)"', real_link) == ["next", "last"]
    repo_id = sandbox.world.repo(name).id  # type: ignore[union-attr]
    assert f"{sandbox.server.base_url}/repositories/{repo_id}/issues?per_page=3&page=2" \
        in resp.headers["Link"]
    middle = sandbox.request("GET", f"/repositories/{repo_id}/issues?per_page=3&page=2")
    assert re.findall(r'rel="(\w+)"', middle.headers["Link"]) == \
        re.findall(r'rel="(\w+)"', recorded[1]["headers"]["link"])
    last = sandbox.request("GET", f"/repositories/{repo_id}/issues?per_page=3&page=5")
    assert re.findall(r'rel="(\w+)"', last.headers["Link"]) == \
        re.findall(r'rel="(\w+)"', recorded[4]["headers"]["link"])
    for header in (*RATE_HEADERS, "etag", "x-github-media-type", "cache-control"):
        assert header in resp.headers, header
    assert all(resp.headers[h].isdigit() for h in RATE_HEADERS[:4])


def test_full_issue_matches_the_openapi_example(sandbox: Sandbox) -> None:
    [example] = openapi()["components"]["examples"]["issue-items"]["value"]
    repo = sandbox.world.add_repo("octocat/Hello-World")
    sandbox.world.create_label(repo, "bug", "f29513", "Something isn't working", default=True)
    milestone = sandbox.world.add_milestone(repo, "v1.0", "octocat",
                                            description="Tracking milestone for version 1.0",
                                            due_on=sandbox.clock.now() + timedelta(days=9))
    sandbox.world.add_issue(repo, "Found a bug", "octocat", body="I'm having a problem.",
                            labels=["bug"], assignees=["octocat"], milestone=milestone.number,
                            pull_request=True, locked=True, state="closed",
                            closed=sandbox.clock.now(), closed_by="octocat",
                            state_reason="completed")
    [ours] = sandbox.request("GET", "/repos/octocat/Hello-World/issues?state=all").json()
    validate([ours], "issue", array=True)
    assert not_looser(example, ours) == []


def test_added_labels_are_created_grey_like_the_recording(sandbox: Sandbox) -> None:
    [created, added] = fixture("add-labels-to-issue")
    name = f"{ORG}/add-labels-to-issue"
    sandbox.world.add_repo(name)
    made = sandbox.request("POST", f"/repos/{name}/issues", created["body"])
    assert made.status_code == 201 and made.headers["Location"].endswith("/issues/1")
    assert not_looser(created["response"], made.json()) == []
    resp = sandbox.request("POST", f"/repos/{name}/issues/1/labels", added["body"])
    assert resp.status_code == added["status"] == 200
    validate(resp.json(), "label", array=True)
    assert not_looser(added["response"], resp.json()) == []
    assert [(lbl["name"], lbl["color"], lbl["description"]) for lbl in resp.json()] == \
        [(lbl["name"], lbl["color"], lbl["description"]) for lbl in added["response"]]


def test_label_create_and_its_errors_match_the_recordings(sandbox: Sandbox) -> None:
    recorded = {(e["method"], e["status"]): e for e in fixture("labels")}
    name = f"{ORG}/labels"
    sandbox.world.add_repo(name)
    create = recorded[("post", 201)]
    resp = sandbox.request("POST", f"/repos/{name}/labels", create["body"])
    assert resp.status_code == 201 and "Location" in resp.headers
    validate(resp.json(), "label")
    assert not_looser(create["response"], resp.json()) == []
    dup = sandbox.request("POST", f"/repos/{name}/labels",
                          {**create["body"], "name": create["body"]["name"].upper()})
    assert dup.status_code == 422
    validate(dup.json(), "validation-error")
    assert dup.json()["errors"] == [{"resource": "Label", "code": "already_exists",
                                     "field": "name"}]
    [bad] = fixture("errors")
    resp = sandbox.request("POST", f"/repos/{name}/labels", bad["body"])
    assert resp.status_code == bad["status"] == 422
    assert not_looser(bad["response"], resp.json()) == []
    assert resp.json()["errors"] == bad["response"]["errors"]
    assert resp.json()["message"] == bad["response"]["message"]


def test_comments_match_the_openapi_schema(sandbox: Sandbox) -> None:
    [example] = openapi()["components"]["examples"]["issue-comment-items"]["value"]
    repo = sandbox.world.add_repo("octocat/Hello-World")
    sandbox.world.add_issue(repo, "Found a bug", "octocat")
    made = sandbox.request("POST", "/repos/octocat/Hello-World/issues/1/comments",
                           {"body": "Me too"})
    assert made.status_code == 201
    validate(made.json(), "issue-comment")
    listed = sandbox.request("GET", "/repos/octocat/Hello-World/issues/1/comments").json()
    validate(listed, "issue-comment", array=True)
    assert not_looser(example, listed[0]) == []
    edited = sandbox.request("PATCH", f"/repos/octocat/Hello-World/issues/comments/"
                                      f"{listed[0]['id']}", {"body": "Me three"})
    assert edited.status_code == 200 and edited.json()["body"] == "Me three"
    empty = sandbox.request("POST", "/repos/octocat/Hello-World/issues/1/comments", {})
    assert empty.status_code == 422
    validate(empty.json(), "validation-error")


def test_error_bodies_match_the_schema(sandbox: Sandbox) -> None:
    missing = sandbox.request("GET", "/repos/octocat/nowhere/issues")
    assert missing.status_code == 404
    validate(missing.json(), "basic-error")
    assert missing.json()["message"] == "Not Found"
    denied = requests.get(sandbox.server.base_url + "/repos/octocat/nowhere/issues", timeout=5,
                          headers={"Authorization": "token bad", "User-Agent": "t"})
    assert denied.status_code == 401
    validate(denied.json(), "basic-error")
    assert denied.json()["message"] == "Bad credentials"
