"""`tether serve`'s service: passes on a runner (a webhook arriving during a pass is kept for
the next; shutdown lets the pass in flight finish), and the HTTP endpoints operations people
and trackers call: health, readiness, Prometheus metrics and refused webhooks."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import NOW
from starlette.testclient import TestClient
from tether.serve.app import create_app
from tether.serve.runner import Runner
from tether.serve.service import Service, Settings


def service(folder: Path, interval: float | None = None) -> Service:
    return Service(Settings(folder / "tether.yaml", interval=interval, debounce=0,
                            max_body=4096), clock=lambda: NOW)


def test_health_readiness_and_metrics_say_how_the_service_is(files_only: Path) -> None:
    served = service(files_only)
    with TestClient(create_app(served)) as client:
        assert client.get("/healthz").json() == {"status": "alive"}
        waiting = client.get("/readyz")
        assert waiting.status_code == 503 and waiting.json()["last_pass"] == "none yet"
        served.runner.request()
        assert served.runner.wait_for(1, timeout=60)
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["items"] > 30
        assert ready.json()["last_pass"]["status"] == "ok"
        assert ready.json()["passes"] == {"run": 1, "now": "idle"}
        metrics = client.get("/metrics").text
    assert 'tether_passes_total{status="ok"} 1.0' in metrics
    assert 'tether_findings{signal="untethered"}' in metrics
    assert "tether_writes_total{result=\"applied\"}" in metrics


def test_a_scheduled_service_passes_at_once_then_on_its_interval(files_only: Path) -> None:
    served = service(files_only, interval=3600)
    with TestClient(create_app(served)):
        assert served.runner.wait_for(1, timeout=60)
    assert served.runner.passes == 1 and served.runner.last is not None


def test_deliveries_that_must_change_nothing_are_refused_and_counted(files_only: Path) -> None:
    served = service(files_only)
    with TestClient(create_app(served, run_passes=False)) as client:
        unknown = client.post("/webhooks/nope", content=b"{}")
        hookless = client.post("/webhooks/jira", content=b"{}")  # a files source
        huge = client.post("/webhooks/jira", content=b"x" * 5000)
        metrics = client.get("/metrics").text
    assert unknown.status_code == 404 and "no source named 'nope'" in unknown.json()["refused"]
    assert hookless.status_code == 404 and "takes no webhooks" in hookless.json()["refused"]
    assert huge.status_code == 413 and "4096-byte cap" in huge.json()["refused"]
    assert 'source="(unknown)",verdict="refused_404"} 1.0' in metrics
    assert 'source="jira",verdict="refused_413"} 1.0' in metrics
    assert served.runner.passes == 0  # nothing was asked of the trackers


def test_a_request_during_a_pass_runs_one_more_and_stop_waits_for_the_pass() -> None:
    release, started = threading.Event(), threading.Event()

    def one_pass(sources: set[str] | None) -> str:
        started.set()
        assert release.wait(30)
        return "ok"

    runner = Runner(one_pass, {}, debounce=0)
    runner.start()
    runner.request()
    assert started.wait(30)
    started.clear()
    runner.request()  # arrives while the first pass runs: kept for the next
    release.set()
    assert runner.wait_for(2, timeout=30) and runner.passes == 2
    release.clear()
    started.clear()
    runner.request()
    assert started.wait(30)
    stopper = threading.Thread(target=runner.stop)
    stopper.start()
    stopper.join(0.2)
    assert stopper.is_alive()  # waits for the pass in flight
    release.set()
    stopper.join(30)
    assert not stopper.is_alive() and runner.passes == 3


def test_serve_answers_on_a_loopback_port_and_shuts_down_cleanly(files_only: Path) -> None:
    import socket

    import requests
    import uvicorn

    served = service(files_only, interval=3600)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))  # the OS chooses the port
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(served), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]})
    thread.start()
    try:
        assert served.runner.wait_for(1, timeout=60)
        ready = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
        assert ready.status_code == 200 and ready.json()["ready"] is True
    finally:
        server.should_exit = True  # what SIGTERM does: lifespan shutdown, then exit
        thread.join(60)
    assert not thread.is_alive() and served.runner.passes == 1


def test_the_live_report_is_served_only_behind_its_token(files_only: Path, monkeypatch) -> None:
    import base64
    import json

    served = service(files_only)
    with TestClient(create_app(served)) as client:
        monkeypatch.delenv("TETHER_REPORT_TOKEN", raising=False)
        closed = client.get("/report")
        assert closed.status_code == 404 and "TETHER_REPORT_TOKEN" in closed.json()["refused"]
        monkeypatch.setenv("TETHER_REPORT_TOKEN", "s3cret-report")
        assert client.get("/report", headers={"Authorization": "Bearer s3cret"}).status_code == 401
        assert client.get("/report").status_code == 401
        bearer = {"Authorization": "Bearer s3cret-report"}
        assert client.get("/report", headers=bearer).status_code == 503  # no pass yet
        served.runner.request()
        assert served.runner.wait_for(1, timeout=60)
        page = client.get("/report", headers=bearer)
        basic = base64.b64encode(b"pmo:s3cret-report").decode()
        doc = client.get("/report.json", headers={"Authorization": f"Basic {basic}"})
        assert client.get("/report.xml", headers=bearer).status_code == 404
    assert page.status_code == 200 and "Tether report" in page.text
    assert page.headers["content-type"].startswith("text/html")
    assert doc.status_code == 200 and json.loads(doc.text)["findings"]
    assert "s3cret" not in closed.text


def test_the_live_report_renders_in_headless_chromium(files_only: Path, monkeypatch) -> None:
    import socket
    import subprocess

    import uvicorn
    from test_report import _chromium

    browser = _chromium()
    monkeypatch.setenv("TETHER_REPORT_TOKEN", "s3cret-report")
    served = service(files_only, interval=3600)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(served), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]})
    thread.start()
    try:
        assert served.runner.wait_for(1, timeout=60)
        run = subprocess.run(
            [browser, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--enable-logging=stderr", "--v=0",
             "--dump-dom", f"http://pmo:s3cret-report@127.0.0.1:{port}/report"],
            capture_output=True, text=True, timeout=180)
    finally:
        server.should_exit = True
        thread.join(60)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "chart-alignment" in run.stdout and "js-plotly-plot" in run.stdout
    assert [line for line in run.stderr.splitlines() if ":CONSOLE" in line] == []


def test_json_logs_are_one_object_per_line_with_the_error() -> None:
    import json
    import logging

    from tether.serve.logs import JsonFormatter

    try:
        raise ValueError("store unreachable")
    except ValueError:
        import sys
        record = logging.LogRecord("tether.serve", logging.ERROR, __file__, 1,
                                   "pass failed: %s", ("store unreachable",), sys.exc_info())
    line = JsonFormatter().format(record)
    data = json.loads(line)
    assert "\n" not in line and data["level"] == "error" and data["logger"] == "tether.serve"
    assert data["message"] == "pass failed: store unreachable"
    assert "ValueError" in data["error"] and data["at"].endswith("+00:00")


def test_hook_secrets_are_kept_per_source_and_forgotten_with_their_webhook(
        tmp_path: Path) -> None:
    from tether.serve.service import StoreSecrets
    from tether.store.db import Store

    with Store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        asana, other = StoreSecrets(store, "asana"), StoreSecrets(store, "other")
        asana.put("1200", "first-secret")
        asana.put("1300", "second-secret")
        assert (asana.get("1200"), other.get("1200")) == ("first-secret", None)
        assert store.load_memory("asana") == {}  # beside the connector's memory, not in it
        asana.forget("1200")
        assert (asana.get("1200"), asana.get("1300")) == (None, "second-secret")


def test_handshakes_are_expected_only_while_an_install_waits(tmp_path: Path) -> None:
    from tether.serve.service import StoreSecrets
    from tether.store.db import Store

    now = [datetime(2025, 5, 1, 9, 0, tzinfo=UTC)]
    with Store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        asana = StoreSecrets(store, "asana", lambda: now[0])
        other = StoreSecrets(store, "other", lambda: now[0])
        assert not asana.expected()
        with asana.expecting():
            assert asana.expected() and not other.expected()
            now[0] += StoreSecrets.WAIT + timedelta(seconds=1)
            assert not asana.expected()  # an install that hangs does not hold the door open
        now[0] -= StoreSecrets.WAIT
        assert not asana.expected()  # the install ended


def test_a_kpi_measurement_posted_is_kept_and_judged_without_pulling(
        files_only: Path, monkeypatch) -> None:
    served = service(files_only)
    url = "/kpis/nps/measurements"
    with TestClient(create_app(served)) as client:
        monkeypatch.delenv("TETHER_KPI_TOKEN", raising=False)
        assert client.post(url, json={"value": 41}).status_code == 404  # no token, no door
        monkeypatch.setenv("TETHER_KPI_TOKEN", "kpi-s3cret")
        assert client.post(url, json={"value": 41}).status_code == 401
        bearer = {"Authorization": "Bearer kpi-s3cret"}
        served.runner.request()
        assert served.runner.wait_for(1, timeout=60)
        export = files_only / "data" / "jira-export.csv"  # changed, but no source is pulled
        export.write_text(export.read_text().replace("Update office wiki", "Refresh the wiki"))
        taken = client.post(url, json={"value": 41, "at": "2025-05-01"}, headers=bearer)
        assert taken.status_code == 202, taken.text
        assert taken.json() == {"kpi": "nps", "value": 41.0, "at": "2025-05-01T00:00:00+00:00",
                                "pass": "asked"}
        assert served.runner.wait_for(2, timeout=60)
        again = client.post(url, json={"value": 40, "at": "2025-05-01"}, headers=bearer)
        assert again.status_code == 409 and "never overwritten" in again.json()["refused"]
        assert client.post(url, json={"value": "high"}, headers=bearer).status_code == 400
        unknown = client.post("/kpis/revenue/measurements", json={"value": 1}, headers=bearer)
        assert unknown.status_code == 404 and "nps" in unknown.json()["refused"]
    assert served.runner.passes == 2 and served.runner.last is not None
    assert served.runner.last.status == "ok"
    with served.workspace.open_store() as store:
        assert [(m.at.date().isoformat(), m.value) for m in store.measurements("nps")] == [
            ("2025-05-01", 41.0)]
        assert not any("Refresh the wiki" in t.title for t in store.load_tasks())


def test_schedules_run_on_an_interval_or_at_the_moments_a_cron_expression_names() -> None:
    from tether.serve.schedule import Schedule

    at = datetime(2025, 5, 1, 9, 7, 30, tzinfo=UTC)
    assert Schedule.of(900).wait(at) == 900 and Schedule.of(900).period(at) == 900
    quarter = Schedule.of("*/15 * * * *")
    assert quarter.wait(at) == 7.5 * 60 and quarter.period(at) == 900  # at 09:15 UTC, then 09:30
    assert str(quarter) == "on cron '*/15 * * * *' (UTC)" and str(Schedule.of(60)) == "every 60 s"


def test_kpi_sources_run_on_their_own_schedule_between_full_passes() -> None:
    from tether.serve.runner import EVERYTHING, KPI_SOURCES
    from tether.serve.schedule import Schedule

    asked: list[set[str] | None] = []
    runner = Runner(lambda sources: asked.append(sources) or "ok",
                    {EVERYTHING: Schedule(every=3600), KPI_SOURCES: Schedule(every=0.05)},
                    debounce=0)
    runner.start()
    try:
        assert runner.wait_for(3, timeout=30)
    finally:
        runner.stop()
    assert asked[:3] == [None, {KPI_SOURCES}, {KPI_SOURCES}]  # both at once, then KPIs alone


def test_a_kpi_sources_pass_reads_them_and_pulls_no_tracker(files_only: Path) -> None:
    from tether.serve.runner import KPI_SOURCES

    (files_only / "values.csv").write_text("kpi,date,value\nnps,2025-04-01,36\n")
    config = files_only / "tether.yaml"
    config.write_text(config.read_text() + "kpi_sources:\n  - {type: csv, options: {path: values.csv}}\n"
                      "serve: {every: '*/15 * * * *', kpis_every: 1h}\n")
    served = service(files_only)
    assert served.one_pass() == "ok"
    export = files_only / "data" / "jira-export.csv"
    export.write_text(export.read_text().replace("Update office wiki", "Refresh the wiki"))
    (files_only / "values.csv").write_text("kpi,date,value\nnps,2025-04-01,36\nnps,2025-05-01,38\n")
    assert served.one_pass({KPI_SOURCES}) == "ok"
    with served.workspace.open_store() as store:
        assert [m.value for m in store.measurements("nps")] == [36.0, 38.0]
        assert not any("Refresh the wiki" in t.title for t in store.load_tasks())
    assert served.workspace.config.serve.every == "*/15 * * * *"
    assert served.workspace.config.serve.kpis_every == 3600.0
