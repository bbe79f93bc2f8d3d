"""The Asana sandbox and normaliser against Asana's official OpenAPI description.

The description (../shared/contracts/asana/asana_oas.yaml, Apache 2.0) has schemas with
property-level examples but no whole-response examples, so "the real payload" here is the
TaskResponse built from those examples. Checked: every response the sandbox gives validates
against the operation's schema; the sandbox's default task has exactly the fields Asana
returns by default and no invented ones; it is no looser than the spec's example (same keys,
JSON types, nesting); the normaliser reads the spec payload; and every opt_fields path and
query parameter the connector sends is one the operation declares.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import jsonschema
import pytest
import requests
import yaml
from tether.clock import FakeClock
from tether.model import Finding, OpKind, WriteOp
from tether.pipeline.plan import desired_annotations, plan_ops
from tether_asana import AsanaConnector, AsanaOptions
from tether_asana.normalise import PULL_FIELDS, to_task
from tether_asana.sandbox.serve import serve
from tether_asana.sandbox.state import AsanaState
from tether_asana.sandbox.views import API

SHARED = Path(__file__).resolve().parents[2] / "shared"
OAS = SHARED / "contracts" / "asana" / "asana_oas.yaml"
OPTIONAL = re.compile(r"\[Opt In\]|\*Conditional\*|only returned when requesting|"
                      r"returned in the response only if", re.I)


NULL_IN_TEXT = re.compile(r"`null`|\bor null\b|\bnull if\b", re.I)


def to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema: ``nullable`` (also inside allOf) becomes a null
    alternative; so does a property whose description says it can be null (the file's
    nullable flags lag its prose, e.g. date_value.date_time); examples are dropped."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items()
           if k not in ("nullable", "example", "examples") and not k.startswith("x-")}
    nullable = node.get("nullable") or any(
        isinstance(m, dict) and m.get("nullable") for m in node.get("allOf") or []) or (
        "type" in node and NULL_IN_TEXT.search(node.get("description") or ""))
    return {"anyOf": [out, {"type": "null"}]} if nullable else out


class Spec:
    """The OpenAPI document, with helpers to find operations, schemas and examples."""

    def __init__(self, doc: dict[str, Any]):
        self.doc = doc
        self.schemas = doc["components"]["schemas"]
        self.components = {"schemas": to_json_schema(self.schemas),
                           "responses": to_json_schema(doc["components"]["responses"])}

    def template(self, path: str) -> str:
        """The spec path a concrete API path belongs to (literal segments win)."""
        rel = path.removeprefix(API)
        matches = [t for t in self.doc["paths"]
                   if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", t), rel)]
        assert matches, f"{rel} is not an Asana API path"
        return min(matches, key=lambda t: t.count("{"))

    def operation(self, method: str, path: str) -> dict[str, Any]:
        return self.doc["paths"][self.template(path)][method.lower()]

    def params(self, method: str, path: str) -> dict[str, dict[str, Any]]:
        template = self.template(path)
        raw = self.operation(method, path).get("parameters", []) + \
            self.doc["paths"][template].get("parameters", [])
        out = {}
        for p in raw:
            if "$ref" in p:
                p = self.doc["components"]["parameters"][p["$ref"].split("/")[-1]]
            out[p["name"]] = p
        return out

    def response_schema(self, method: str, path: str, status: int) -> dict[str, Any]:
        responses = self.operation(method, path)["responses"]
        resp = responses.get(str(status)) or responses.get(status)
        if resp is None:  # 429 and 503 are shared, not listed per operation
            resp = {"$ref": "#/components/responses/TooManyRequests"} if status == 429 else None
        assert resp is not None, f"{method} {path} does not document {status}"
        if "$ref" in resp:
            resp = self.doc["components"]["responses"][resp["$ref"].split("/")[-1]]
        return to_json_schema(resp["content"]["application/json"]["schema"])

    def validate(self, method: str, path: str, status: int, body: Any) -> None:
        schema = {**self.response_schema(method, path, status), "components": self.components}
        jsonschema.Draft7Validator(schema).validate(body)

    def properties(self, name: str) -> dict[str, Any]:
        """Properties of a named schema with its allOf parts merged (later parts win)."""
        node = self.schemas[name]
        out: dict[str, Any] = {}
        for part in node.get("allOf", [node]):
            if "$ref" in part:
                out.update(self.properties(part["$ref"].split("/")[-1]))
            else:
                out.update(part.get("properties", {}))
        return out

    def default_fields(self, name: str) -> set[str]:
        return {k for k, v in self.properties(name).items()
                if not OPTIONAL.search(_describe(v, self.schemas))}

    def example(self, node: dict[str, Any], defaults: bool = False) -> Any:
        """An instance built from the schema's property examples (the spec has no others);
        with ``defaults``, only the fields Asana returns without opt_fields, at every level."""
        if "$ref" in node:
            return self.example(self.schemas[node["$ref"].split("/")[-1]], defaults)
        if "allOf" in node:
            merged: dict[str, Any] = {}
            for part in node["allOf"]:
                value = self.example(part, defaults)
                if isinstance(value, dict):
                    merged.update(value)
            return merged if merged or "example" not in node else node["example"]
        if "example" in node:
            return node["example"]
        if node.get("enum"):
            return node["enum"][0]
        kind = node.get("type")
        if kind == "object" or "properties" in node:
            return {k: self.example(v, defaults) for k, v in node.get("properties", {}).items()
                    if not (defaults and OPTIONAL.search(_describe(v, self.schemas)))}
        if kind == "array":
            return [self.example(node.get("items", {}), defaults)]
        return {"string": "", "integer": 0, "number": 0, "boolean": False}.get(kind)


def _describe(node: dict[str, Any], schemas: dict[str, Any]) -> str:
    text = node.get("description") or ""
    for part in node.get("allOf", []):
        text += " " + (part.get("description") or "")
    return text


@pytest.fixture(scope="module")
def spec() -> Spec:
    if not OAS.is_file():
        pytest.skip(f"Asana's OpenAPI file is not at {OAS}: the contract tests read it from "
                    "../shared beside the repository")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return Spec(yaml.load(OAS.read_text(encoding="utf-8"), Loader=loader))


class Sandbox:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.state = AsanaState(self.clock)
        st = self.state
        self.ada = st.add_user("Ada Lovelace")["gid"]
        self.points = st.add_field("Story Points", "number")
        self.labels = st.add_field("Tether labels", "multi_enum", ["team:red"])
        self.when = st.add_field("Due", "date")
        self.kind = st.add_field("Kind", "enum", ["Bug", "Chore"])
        self.who = st.add_field("Reviewers", "people")
        self.note = st.add_field("Note", "text")
        self.project = st.add_project("Website", ["Backlog", "In Progress"],
                                      [f["gid"] for f in (self.points, self.labels, self.when,
                                                          self.kind, self.who, self.note)])
        self.server = serve(st, rate_limit=1500)
        self.url = self.server.base_url + API

    def call(self, method: str, path: str, token: str = "good", **kw: Any) -> requests.Response:
        return requests.request(method, self.url + path, timeout=5,
                                headers={"Authorization": f"Bearer {token}"}, **kw)


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    monkeypatch.setenv("ASANA_TOKEN", "good")
    box = Sandbox()
    yield box
    box.server.stop()


def equivalent_task(box: Sandbox, example: dict[str, Any]) -> dict[str, Any]:
    """A sandbox task like the spec's example: named, tagged, assigned, followed, valued."""
    st = box.state
    parent = st.add_task(box.project["gid"], "Parent", creator=box.ada)
    tag = st.add_tag(example["tags"][0]["name"])
    person = st.add_user(example["assignee"]["name"])["gid"]
    task = st.add_task(box.project["gid"], example["name"], notes=example["notes"],
                       assignee=person, creator=box.ada, tags=[tag["gid"]],
                       parent=parent["gid"], dependencies=[parent["gid"]],
                       section="In Progress",
                       values={box.points["gid"]: 3, box.labels["gid"]:
                               [box.labels["options"][0]["gid"]],
                               box.when["gid"]: "2025-06-01",
                               box.kind["gid"]: box.kind["options"][0]["gid"],
                               box.who["gid"]: [box.ada], box.note["gid"]: "hello"})
    task["likes"] = [box.ada]
    return task


# -- the normaliser reads Asana's own shape ------------------------------------------------

def test_the_normaliser_reads_a_payload_built_from_the_spec(spec: Spec) -> None:
    payload = spec.example({"$ref": "#/components/schemas/TaskResponse"})
    spec.validate("GET", "/tasks/1", 200, {"data": payload})  # the example is a valid task
    task = to_task(payload, "asana", AsanaOptions(projects=["1"], workspace="2",
                                                  estimate_field="Estimated time"))
    assert task.key == payload["gid"] and task.title == payload["name"] == "Buy catnip"
    assert task.body == payload["notes"] and task.url == payload["permalink_url"]
    assert task.labels == ("Grade A",) and task.status_category == "todo"
    assert task.assignee == payload["assignee"]["name"]
    assert task.created is not None and task.created.isoformat().startswith("2012-02-22")
    assert task.updated is not None and task.resolved is None  # completed: false
    assert task.project == payload["memberships"][0]["project"]["name"]
    assert task.status == payload["memberships"][0]["section"]["name"]
    assert task.parent == payload["parent"]["gid"]


# -- every sandbox response validates --------------------------------------------------------

def test_every_sandbox_response_validates_against_the_openapi_schema(spec: Spec,
                                                                      sandbox: Sandbox) -> None:
    st = sandbox.state
    example = spec.example({"$ref": "#/components/schemas/TaskResponse"})
    task = equivalent_task(sandbox, example)
    for i in range(3):
        st.add_task(sandbox.project["gid"], f"T{i}", creator=sandbox.ada)
    gid, project, ws = task["gid"], sandbox.project["gid"], st.workspace["gid"]
    option = sandbox.labels["options"][0]["gid"]
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/tasks", {"params": {"project": project, "limit": 2}}),
        ("GET", "/tasks", {"params": {"project": project, "limit": 100,
                                      "opt_fields": ",".join(PULL_FIELDS)}}),
        ("GET", "/tasks", {"params": {"project": project}}),
        ("GET", f"/projects/{project}/tasks", {"params": {"limit": 1}}),
        ("GET", f"/tasks/{gid}", {}),
        ("PUT", f"/tasks/{gid}", {"json": {"data": {"custom_fields": {
            sandbox.labels["gid"]: [option]}}}}),
        ("POST", f"/tasks/{gid}/addFollowers", {"json": {"data": {"followers": ["me"]}}}),
        ("GET", f"/tasks/{gid}/stories", {"params": {"limit": 100}}),
        ("POST", f"/tasks/{gid}/stories", {"json": {"data": {
            "html_text": "<body>Hi <strong>there</strong></body>"}}}),
        ("GET", f"/workspaces/{ws}/tags", {"params": {"limit": 100}}),
        ("GET", "/tags", {"params": {"workspace": ws, "limit": 10}}),
        ("POST", "/tags", {"json": {"data": {"name": "tether:x", "workspace": ws}}}),
        ("GET", "/users/me", {}),
        ("GET", f"/custom_fields/{sandbox.labels['gid']}", {}),
        ("POST", f"/custom_fields/{sandbox.labels['gid']}/enum_options",
         {"json": {"data": {"name": "tether:kpi:nps"}}}),
        ("GET", f"/custom_fields/{sandbox.points['gid']}", {}),
    ]
    seen: dict[str, Any] = {}
    for method, path, kw in calls:
        resp = sandbox.call(method, path, **kw)
        assert resp.status_code in (200, 201), (method, path, resp.text)
        spec.validate(method, API + path, resp.status_code, resp.json())
        seen.setdefault(f"{method} {path}", resp.json())
    tag = seen["POST /tags"]["data"]["gid"]
    story = seen[f"POST /tasks/{gid}/stories"]["data"]["gid"]
    more = [("POST", f"/tasks/{gid}/addTag", {"json": {"data": {"tag": tag}}}),
            ("POST", f"/tasks/{gid}/removeTag", {"json": {"data": {"tag": tag}}}),
            ("GET", f"/tags/{tag}", {}),
            ("PUT", f"/stories/{story}", {"json": {"data": {"text": "Edited"}}}),
            ("GET", f"/stories/{story}", {})]
    for method, path, kw in more:
        resp = sandbox.call(method, path, **kw)
        assert resp.status_code == 200, (method, path, resp.text)
        spec.validate(method, API + path, 200, resp.json())
    first = seen["GET /tasks"]["next_page"]  # limit=2 of 5 tasks
    assert set(first) == {"offset", "path", "uri"} and first["uri"].startswith(sandbox.url)
    assert "limit=2" in first["path"] and first["path"].startswith("/tasks?")
    assert "next_page" not in sandbox.call("GET", f"/tasks/{gid}/stories").json()


def test_error_bodies_validate_and_use_asanas_statuses(spec: Spec, sandbox: Sandbox) -> None:
    project = sandbox.project["gid"]
    for _ in range(101):
        sandbox.state.add_task(project, "T", creator=sandbox.ada)
    cases = [
        ("GET", "/tasks", {"params": {"project": project}}, "bad", 401, "Not Authorized"),
        ("GET", "/tasks", {"params": {"project": "1299999999999999"}}, "good", 404,
         "project: Unknown object: 1299999999999999"),
        ("GET", "/tasks", {"params": {"project": project, "limit": 101}}, "good", 400, "limit"),
        ("GET", "/tasks", {"params": {"project": project}}, "good", 400,
         "The result is too large"),
        ("GET", "/tasks", {}, "good", 400, "Must specify exactly one of project"),
        ("GET", "/tasks", {"params": {"project": project, "opt_fields": "nonsense"}}, "good",
         400, "opt_fields"),
        ("POST", "/tasks/1299999999999999/stories", {"json": {"data": {"text": "x"}}}, "good",
         404, "task: Unknown object"),
        ("POST", f"/tasks/{sandbox.state.project_tasks(project)[0]['gid']}/stories",
         {"json": {"data": {"html_text": "<body><script>x</script></body>"}}}, "good", 400,
         "html_text"),
    ]
    for method, path, kw, token, status, message in cases:
        resp = sandbox.call(method, path, token=token, **kw)
        assert resp.status_code == status, (path, resp.text)
        assert message in resp.json()["errors"][0]["message"]
        spec.validate(method, API + path, status, resp.json())


def test_the_rate_limit_answer_has_retry_after_and_the_documented_body(spec: Spec) -> None:
    state = AsanaState(FakeClock())
    server = serve(state, rate_limit=1)
    try:
        url = server.base_url + API + "/users/me"
        headers = {"Authorization": "Bearer good"}
        assert requests.get(url, headers=headers, timeout=5).status_code == 200
        limited = requests.get(url, headers=headers, timeout=5)
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "60"
        assert limited.json()["errors"][0]["message"].startswith("You've made too many requests")
        spec.validate("GET", API + "/users/me", 429, limited.json())
    finally:
        server.stop()


# -- no looser than the real shape -------------------------------------------------------------

def test_a_default_task_has_exactly_asanas_default_fields(spec: Spec, sandbox: Sandbox) -> None:
    task = equivalent_task(sandbox, spec.example({"$ref": "#/components/schemas/TaskResponse"}))
    data = sandbox.call("GET", f"/tasks/{task['gid']}").json()["data"]
    assert set(data) == spec.default_fields("TaskResponse")
    compact = sandbox.call("GET", "/tasks", params={"project": sandbox.project["gid"],
                                                    "limit": 5}).json()["data"][0]
    assert set(compact) == spec.default_fields("TaskCompact")
    stories = sandbox.call("GET", f"/tasks/{task['gid']}/stories").json()["data"]
    assert all(set(s) == spec.default_fields("StoryCompact") for s in stories)
    me = sandbox.call("GET", "/users/me").json()["data"]
    assert set(me) == spec.default_fields("UserResponse")
    tags = sandbox.call("GET", f"/tags/{task['tags'][0]}").json()["data"]
    assert set(tags) == spec.default_fields("TagResponse")


def test_the_sandbox_task_is_shaped_like_the_spec_example(spec: Spec, sandbox: Sandbox) -> None:
    """Default fields at every level: same keys, JSON types and nesting as Asana's."""
    real = spec.example({"$ref": "#/components/schemas/TaskResponse"}, defaults=True)
    task = equivalent_task(sandbox, spec.example({"$ref": "#/components/schemas/TaskResponse"}))
    fake = sandbox.call("GET", f"/tasks/{task['gid']}").json()["data"]
    problems = list(_looser(real, fake, "task"))
    assert not problems, problems
    for field in fake["custom_fields"]:  # each type's value field, as in Asana's docs
        assert not list(_looser(spec.example({"$ref": "#/components/schemas/CustomFieldCompact"},
                                             defaults=True), field, field["name"]))
    definition = sandbox.call("GET", f"/custom_fields/{sandbox.kind['gid']}").json()["data"]
    assert spec.default_fields("CustomFieldResponse") <= set(definition)
    options = AsanaOptions(projects=[sandbox.project["gid"]], workspace="1")
    shown = sandbox.call("GET", f"/tasks/{task['gid']}", params={
        "opt_fields": "name,notes,tags.name,assignee.name,completed,resource_subtype"})
    full = spec.example({"$ref": "#/components/schemas/TaskResponse"})
    a, b = to_task(full, "a", options), to_task(shown.json()["data"], "a", options)
    for name in ("title", "body", "labels", "status_category", "assignee", "type"):
        assert getattr(a, name) == getattr(b, name), name


def _multi_enum_as_documented(body: dict[str, Any]) -> dict[str, Any]:
    """PUT /tasks custom_fields: the schema types every value as a string, while Asana's
    custom fields guide (research 3.3) sets a multi_enum with an array of option gids; check
    those arrays hold gid strings, then let the schema see one string."""
    fields = (body.get("data") or {}).get("custom_fields")
    if not isinstance(fields, dict):
        return body
    for value in fields.values():
        assert not isinstance(value, list) or all(isinstance(v, str) and v.isdigit()
                                                  for v in value)
    data = {**body["data"], "custom_fields": {k: ",".join(v) if isinstance(v, list) else v
                                              for k, v in fields.items()}}
    return {**body, "data": data}


def _looser(real: Any, fake: Any, where: str) -> Iterator[str]:
    """Every way ``fake`` lacks a key, has another JSON type, or nests differently."""
    if real is None or fake is None:
        return  # nullable on one side: the schema validation covers the type
    if isinstance(real, dict):
        if not isinstance(fake, dict):
            yield f"{where}: object in Asana, {type(fake).__name__} in the sandbox"
            return
        for key, value in real.items():
            if key not in fake:
                yield f"{where}.{key}: missing in the sandbox"
            else:
                yield from _looser(value, fake[key], f"{where}.{key}")
    elif isinstance(real, list):
        if not isinstance(fake, list):
            yield f"{where}: array in Asana, {type(fake).__name__} in the sandbox"
        elif real and fake:
            yield from _looser(real[0], fake[0], f"{where}[0]")
    elif _kind(real) != _kind(fake):
        yield f"{where}: {_kind(real)} in Asana, {_kind(fake)} in the sandbox"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, int | float) else type(value).__name__


# -- the connector asks only for what Asana offers ------------------------------------------

def test_the_connector_sends_only_declared_parameters_and_opt_fields(spec: Spec,
                                                                      sandbox: Sandbox) -> None:
    st = sandbox.state
    tasks = [st.add_task(sandbox.project["gid"], f"T{i}", creator=sandbox.ada)
             for i in range(3)]
    batched: list[tuple[str, str, str]] = []  # each /batch action as the request it stands for
    original = requests.Session.request

    def spy(self: requests.Session, method: str, url: str, **kw: Any) -> requests.Response:
        if url.endswith(API + "/batch"):
            batched.extend(_actions(kw["json"]))
        return original(self, method, url, **kw)

    requests.Session.request = spy  # type: ignore[method-assign]
    for mode in ({}, {"label_mode": "custom_field", "label_field": sandbox.labels["gid"]}):
        connector = AsanaConnector("src", AsanaOptions(
            url=sandbox.url, projects=[sandbox.project["gid"]], workspace=st.workspace["gid"],
            **mode), Path("."), sandbox.clock)
        pulled = connector.pull(None).tasks
        connector.pull(pulled[0].updated.isoformat())  # type: ignore[union-attr]
        findings = [Finding("untethered", "warning", t.ref, "No KPI.", "r", 0.0, "untethered")
                    for t in pulled]
        for wanted in (findings, []):
            current = {f"src:{k}": v for k, v in connector.read_annotations(pulled, "tether")
                       .items()}
            desired = desired_annotations(pulled, [], wanted, {}, "tether", True, current)
            results = connector.apply(plan_ops(pulled, desired, current))
            assert all(r.ok for r in results), [r.error for r in results]
        connector.apply([WriteOp("src", tasks[0]["gid"], OpKind.REMOVE_LABEL, "tether:none",
                                 "t")])
    requests.Session.request = original  # type: ignore[method-assign]
    assert batched, "no write went through the Batch API"
    checked = set()
    for method, path, query in [(e.method, e.path, e.query) for e in sandbox.server.log] + batched:
        declared = spec.params(method, path)
        for name, values in parse_qs(query).items():
            assert name in declared, f"{method} {path}: {name} is not a parameter"
            if name == "opt_fields":
                offered = set(declared[name]["schema"]["items"]["enum"])
                sent = {f for v in values for f in v.split(",")}
                assert sent <= offered, f"{method} {path}: {sent - offered}"
        checked.add((method, spec.template(path)))
    assert {("GET", "/tasks"), ("GET", "/tasks/{task_gid}/stories"), ("POST", "/tags"),
            ("POST", "/tasks/{task_gid}/addTag"), ("POST", "/tasks/{task_gid}/stories"),
            ("PUT", "/tasks/{task_gid}"), ("POST", "/custom_fields/{custom_field_gid}/enum_options"),
            ("GET", "/users/{user_gid}")} <= checked, checked


def _actions(body: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """A /batch body's actions as the requests they stand for: (method, path, query); a GET
    action's data are its query parameters, options.fields its opt_fields."""
    for action in body["data"]["actions"]:
        method = action["method"].upper()
        query = dict(action.get("data") or {}) if method == "GET" else {}
        fields = (action.get("options") or {}).get("fields")
        if fields:
            query["opt_fields"] = ",".join(fields)
        yield method, API + action["relative_path"], urlencode(query)


def test_request_bodies_match_the_documented_request_schemas(spec: Spec,
                                                             sandbox: Sandbox) -> None:
    """The connector's write bodies validate against each operation's requestBody."""
    sent: list[tuple[str, str, Any]] = []
    original = requests.Session.request

    def spy(self: requests.Session, method: str, url: str, **kw: Any) -> requests.Response:
        if kw.get("json") is not None:
            sent.append((method, url.removeprefix(sandbox.server.base_url), kw["json"]))
        return original(self, method, url, **kw)

    st = sandbox.state
    task = st.add_task(sandbox.project["gid"], "T", creator=sandbox.ada)
    requests.Session.request = spy  # type: ignore[method-assign]
    try:
        for mode in ({}, {"label_mode": "custom_field", "label_field": sandbox.labels["gid"]}):
            connector = AsanaConnector("src", AsanaOptions(
                url=sandbox.url, projects=[sandbox.project["gid"]],
                workspace=st.workspace["gid"], **mode), Path("."), sandbox.clock)
            [made, *_] = connector.apply([
                WriteOp("src", task["gid"], OpKind.CREATE_COMMENT, "Hi **x**", "t"),
                WriteOp("src", task["gid"], OpKind.ADD_LABEL, "tether:a", "t"),
                WriteOp("src", task["gid"], OpKind.REMOVE_LABEL, "tether:a", "t")])
            connector.apply([WriteOp("src", task["gid"], OpKind.UPDATE_COMMENT, "Bye", "t",
                                     made.comment_id)])
    finally:
        requests.Session.request = original  # type: ignore[method-assign]
    sent += [(m, p, {"data": b["data"]} if "data" in b else None)
             for _, url, body in [s for s in sent if s[1].endswith("/batch")]
             for m, p, b in _action_bodies(body)]
    assert len({(m, spec.template(p)) for m, p, _ in sent}) >= 6
    for method, path, body in [s for s in sent if s[2] is not None]:
        schema = spec.operation(method, path)["requestBody"]["content"]["application/json"]
        body = _multi_enum_as_documented(body)
        jsonschema.Draft7Validator({**to_json_schema(schema["schema"]),
                                    "components": spec.components}).validate(body)
        assert json.dumps(body)  # JSON-ready, nothing else


def _action_bodies(body: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """A /batch body's write actions as (method, path, the body they stand for)."""
    for action in body["data"]["actions"]:
        if action["method"] != "get":
            yield action["method"].upper(), API + action["relative_path"], \
                {"data": action["data"]} if "data" in action else {}
