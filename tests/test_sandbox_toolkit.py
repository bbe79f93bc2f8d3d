"""The sandbox toolkit: routing, auth, request log and every kind of injected fault."""

from __future__ import annotations

import time

import pytest
import requests
from tether.sandbox import (
    Fault,
    Request,
    Response,
    SandboxApi,
    SandboxServer,
    json_response,
    page_size,
    route,
)


class Notes(SandboxApi):
    name = "notes"

    def __init__(self) -> None:
        super().__init__()
        self.notes: dict[str, str] = {}

    def authenticate(self, req: Request) -> Response | None:
        if req.headers.get("Authorization") != "Bearer good":
            return json_response(401, {"message": "Bad credentials"})
        return None

    @route("GET", r"/notes/(?P<id>\d+)")
    def get_note(self, req: Request) -> Response:
        note = self.notes.get(req.params["id"])
        return json_response(200, {"id": req.params["id"], "text": note}) if note \
            else self.not_found(req)

    @route("PUT", r"/notes/(?P<id>\d+)")
    def put_note(self, req: Request) -> Response:
        self.notes[req.params["id"]] = req.json()["text"]
        return Response(204)


@pytest.fixture
def server():
    with SandboxServer(Notes()) as srv:
        yield srv


def call(server: SandboxServer, method: str, path: str, **kw) -> requests.Response:
    headers = {"Authorization": "Bearer good", **kw.pop("headers", {})}
    return requests.request(method, server.base_url + path, headers=headers, timeout=5, **kw)


def test_routes_keep_state_and_log_every_request(server: SandboxServer) -> None:
    assert call(server, "PUT", "/notes/1", json={"text": "héllo"}).status_code == 204
    assert call(server, "GET", "/notes/1").json() == {"id": "1", "text": "héllo"}
    assert call(server, "GET", "/notes/2?x=1").status_code == 404
    assert call(server, "DELETE", "/notes/1").status_code == 405
    assert [(r.method, r.path, r.query, r.status) for r in server.log] == [
        ("PUT", "/notes/1", "", 204), ("GET", "/notes/1", "", 200),
        ("GET", "/notes/2", "x=1", 404), ("DELETE", "/notes/1", "", 405)]
    assert server.count("GET") == 2 and server.count(path="/notes/2") == 1


def test_auth_is_checked_before_routing(server: SandboxServer) -> None:
    resp = call(server, "GET", "/nowhere", headers={"Authorization": "Bearer bad"})
    assert resp.status_code == 401 and resp.json() == {"message": "Bad credentials"}


def test_fault_at_a_given_request_number(server: SandboxServer) -> None:
    server.faults.add(Fault("status", at=frozenset({2}), status=429,
                            headers={"Retry-After": "7"}, body={"message": "slow down"}))
    assert call(server, "GET", "/notes/9").status_code == 404
    limited = call(server, "GET", "/notes/9")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert call(server, "GET", "/notes/9").status_code == 404


def test_connection_reset(server: SandboxServer) -> None:
    server.faults.add(Fault("reset", at=frozenset({1})))
    with pytest.raises(requests.ConnectionError):
        call(server, "GET", "/notes/1")
    assert server.log[0].status == 0
    assert call(server, "GET", "/notes/1").status_code == 404


def test_fault_rate_is_deterministic_and_path_scoped(server: SandboxServer) -> None:
    server.faults.add(Fault("status", rate=0.5, status=503, path="/notes/1"))
    first = [call(server, "GET", "/notes/1").status_code for _ in range(20)]
    assert 0 < first.count(503) < 20
    assert all(call(server, "GET", "/notes/2").status_code == 404 for _ in range(5))


def test_latency_then_normal_answer(server: SandboxServer) -> None:
    server.faults.add(Fault("latency", at=frozenset({1}), seconds=0.05))
    started = time.perf_counter()
    assert call(server, "GET", "/notes/1").status_code == 404
    assert time.perf_counter() - started >= 0.05


def test_page_size_clamps_like_a_service() -> None:
    assert page_size(None, 30, 100) == 30 and page_size("500", 30, 100) == 100
    with pytest.raises(ValueError):
        page_size("0", 30, 100)
