"""KPI measurement sources: inline, CSV, HTTP (loopback sandbox) and SQL (SQLite), and the
history they leave in the state store."""

from __future__ import annotations

import sqlite3
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tether.config.load import load_config
from tether.connector import Options
from tether.errors import InvalidInput, SourceError
from tether.kpi.http import HttpKpiSource, HttpOptions, parse_path, redact_url, select
from tether.kpi.sources import InlineKpiSource, kpi_sources, store_measurements
from tether.kpi.sql import SqlKpiSource, SqlOptions
from tether.model import KPI, Measurement
from tether.plugins import Plugins
from tether.sandbox import Request, Response, SandboxApi, SandboxServer, json_response, route
from tether.store.db import Store


@pytest.fixture
def plugins(fake_plugins) -> Plugins:
    return fake_plugins(Options)


def d(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def config(tmp_path: Path, text: str, plugins: Plugins, env: dict[str, str] | None = None):
    path = tmp_path / "tether.yaml"
    path.write_text("sources: [{name: ops, type: fake}]\n" + textwrap.dedent(text).lstrip("\n"))
    return load_config(path, plugins, env or {})


# -- registry and inline -------------------------------------------------------------------------


def test_builtin_source_types(plugins: Plugins) -> None:
    types = plugins.kpi_source_types()
    assert {"csv", "inline", "http", "sql"} <= set(types)
    assert types["http"] is HttpKpiSource and types["sql"] is SqlKpiSource
    assert types["inline"] is InlineKpiSource


def test_inline_measurements_load_without_any_kpi_source(tmp_path: Path,
                                                         plugins: Plugins) -> None:
    cfg = config(tmp_path, """
        kpis:
          - id: nps
            name: NPS
            measurements:
              - {date: 2025-01-01, value: 30}
              - {date: 2025-02-01T09:00:00Z, value: 32.5}
          - id: cost
            name: Cost
        """, plugins)
    sources = kpi_sources(cfg, plugins)
    assert [type(s) for s in sources] == [InlineKpiSource]
    with Store("sqlite://") as store:
        assert store_measurements(cfg, plugins, store) == 2
        assert store.measurements() == [Measurement("nps", d(2025, 1, 1), 30.0),
                                        Measurement("nps", d(2025, 2, 1, 9), 32.5)]


def test_history_survives_and_reimports_are_idempotent(tmp_path: Path, plugins: Plugins) -> None:
    (tmp_path / "v.csv").write_text("kpi,date,value\nnps,2025-03-01,35\n")
    cfg = config(tmp_path, """
        kpis:
          - {id: nps, name: NPS, measurements: [{date: 2025-01-01, value: 30}]}
        kpi_sources:
          - {type: csv, options: {path: v.csv}}
          - {type: inline}
        """, plugins)
    assert [type(s).__name__ for s in kpi_sources(cfg, plugins)] == [
        "InlineKpiSource", "CsvKpiSource"]  # an explicit inline source is not read twice
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with Store(url) as store:
        assert store_measurements(cfg, plugins, store) == 2
    (tmp_path / "v.csv").write_text("kpi,date,value\nnps,2025-04-01,36\n")  # the file moved on
    with Store(url) as store:
        assert store_measurements(cfg, plugins, store) == 1
        assert [m.value for m in store.measurements("nps")] == [30.0, 35.0, 36.0]
        assert store_measurements(cfg, plugins, store) == 0


# -- http ----------------------------------------------------------------------------------------


class MetricsApi(SandboxApi):
    name = "metrics"

    def __init__(self) -> None:
        super().__init__()
        self.body: object = {"data": [
            {"kpi": "nps", "date": "2025-01-01", "value": 30},
            {"kpi": "nps", "date": "2025-02-01", "value": "31.5"},
            {"kpi": "cost", "date": "2025-02-01T12:00:00+02:00", "value": -2},
        ]}

    def authenticate(self, req: Request) -> Response | None:
        if req.headers.get("X-Api-Key") != "s3cret":
            return json_response(401, {"message": "bad key"})
        return None

    @route("GET", r"/v1/kpis")
    def kpis(self, req: Request) -> Response:
        return json_response(200, self.body)

    @route("GET", r"/v1/nested")
    def nested(self, req: Request) -> Response:
        return json_response(200, {"result": {"series": [
            {"attributes": {"day": "2025-01-05", "amount": 7}},
            {"attributes": {"day": "2025-01-12", "amount": 8}}]}})

    @route("GET", r"/v1/page")
    def page(self, req: Request) -> Response:
        return Response(200, "<html>login</html>", {"Content-Type": "text/html"})


@pytest.fixture
def server():
    with SandboxServer(MetricsApi()) as srv:
        yield srv


def http(server: SandboxServer, path: str = "/v1/kpis", **options) -> HttpKpiSource:
    opts = HttpOptions(url=server.base_url + path, **{"headers_env": {"X-Api-Key": "KPI_KEY"},
                                                      **options})
    return HttpKpiSource(opts, Path("."), env={"KPI_KEY": "s3cret"})


def test_http_source_reads_records_by_json_path(server: SandboxServer) -> None:
    assert http(server, records="$.data[*]").measurements() == [
        Measurement("nps", d(2025, 1, 1), 30.0),
        Measurement("nps", d(2025, 2, 1), 31.5),
        Measurement("cost", d(2025, 2, 1, 10), -2.0),
    ]
    assert http(server, records="data").measurements() == http(
        server, records="$['data']").measurements()
    assert server.count("GET", "/v1/kpis") == 3


def test_http_source_with_one_kpi_and_nested_fields(server: SandboxServer) -> None:
    source = http(server, "/v1/nested", records="result.series", kpi="orders",
                  date_field="attributes.day", value_field="attributes.amount")
    assert source.measurements() == [Measurement("orders", d(2025, 1, 5), 7.0),
                                     Measurement("orders", d(2025, 1, 12), 8.0)]


def test_http_source_static_headers(server: SandboxServer) -> None:
    opts = HttpOptions(url=server.base_url + "/v1/kpis", records="$.data[*]",
                       headers={"X-Api-Key": "s3cret"})
    assert len(HttpKpiSource(opts, Path("."), env={}).measurements()) == 3


def test_http_errors_name_the_url_without_credentials(server: SandboxServer) -> None:
    host = server.base_url.removeprefix("http://")
    opts = HttpOptions(url=f"http://user:pw@{host}/v1/kpis?token=abc", records="data")
    with pytest.raises(SourceError) as info:
        HttpKpiSource(opts, Path("."), env={}).measurements()
    message = str(info.value)
    assert message == (f"KPI source http (http://{host}/v1/kpis?…): answered HTTP 401; check "
                       "the credentials (headers, headers_env)")
    assert "pw" not in message and "abc" not in message
    with pytest.raises(SourceError, match="environment variable KPI_KEY .for header X-Api-Key. "
                       "is not set; export it"):
        HttpKpiSource(HttpOptions(url=server.base_url + "/v1/kpis",
                                  headers_env={"X-Api-Key": "KPI_KEY"}), Path("."),
                      env={}).measurements()
    with pytest.raises(SourceError, match=r"answered HTTP 404; check the url"):
        http(server, "/v1/nothing").measurements()
    with pytest.raises(SourceError, match=r"not JSON \(Content-Type text/html\)"):
        http(server, "/v1/page").measurements()
    with pytest.raises(SourceError, match=r"records path \$.items\[\*\] selects nothing: no key "
                       r"'items' at \$; fix `records`"):
        http(server, records="$.items[*]").measurements()


def test_http_bad_records_are_each_named(server: SandboxServer) -> None:
    server.api.body = {"data": [
        {"kpi": "nps", "date": "2025-01-01", "value": 30},
        {"kpi": "nps", "date": "soon", "value": "many"},
        "oops",
        {"date": "2025-01-02", "value": 1},
    ]}
    with pytest.raises(SourceError) as info:
        http(server, records="$.data[*]").measurements()
    assert str(info.value) == (
        f"KPI source http ({server.base_url}/v1/kpis): 3 bad records:\n"
        "  record 2 ($.data[1]): date 'soon' is not a date; use YYYY-MM-DD or ISO 8601; "
        "value 'many' is not a number\n"
        "  record 3 ($.data[2]): not an object with date and value\n"
        "  record 4 ($.data[3]): kpi missing is not a KPI id (set `kpi` if every record is one "
        "KPI's)")


def test_http_unreachable(server: SandboxServer) -> None:
    url = server.base_url
    server.stop()
    with pytest.raises(SourceError, match=r"cannot connect \(ConnectionError\); check the url"):
        HttpKpiSource(HttpOptions(url=url + "/v1/kpis"), Path("."), env={}).measurements()


def test_http_options_are_checked_with_the_config(tmp_path: Path, plugins: Plugins) -> None:
    with pytest.raises(InvalidInput) as info:
        config(tmp_path, """
            kpi_sources:
              - type: http
                options: {url: "ftp://x", records: "$.data[?(@.x)]", kpi: Bad}
            """, plugins)
    found = {p.key: (p.line, p.message) for p in info.value.problems}
    assert found == {
        "kpi_sources[0].options.url": (4, "must be a string matching ^https?://"),
        "kpi_sources[0].options.records": (4, "'$.data[?(@.x)]' is not a JSON path this source "
                                              "reads (at '[?(@.x)]'); use $.key, ['key'], [0] "
                                              "and [*]"),
        "kpi_sources[0].options.kpi": (4, "must be a string matching ^[a-z0-9][a-z0-9_.-]*$, "
                                          "or null"),
    }


def test_json_paths() -> None:
    assert parse_path("$.data[*]") == [("key", "data"), ("all", None)]
    assert parse_path("$['a b'][0].c") == [("key", "a b"), ("index", 0), ("key", "c")]
    assert parse_path("data.items") == [("key", "data"), ("key", "items")]
    assert parse_path("$") == []
    for bad in ("", "a..b", "$.", "$[x]"):
        with pytest.raises(ValueError):
            parse_path(bad)
    doc = {"a": [{"v": 1}, {"v": 2}], "m": {"x": {"v": 3}, "y": {"v": 4}}}
    assert select(doc, "$.a[*]") == [("$.a[0]", {"v": 1}), ("$.a[1]", {"v": 2})]
    assert select(doc, "a") == select(doc, "$.a[*]")  # a path ending on a list: its items
    assert select(doc, "$.a[-1]") == [("$.a[-1]", {"v": 2})]
    assert select(doc, "a.1") == [("$.a[1]", {"v": 2})]
    assert select(doc, "$.m.*") == [("$.m['x']", {"v": 3}), ("$.m['y']", {"v": 4})]
    assert select([], "$[*]") == []
    with pytest.raises(ValueError, match=r"no item \[5\] at \$.a"):
        select(doc, "$.a[5]")


def test_redact_url() -> None:
    assert redact_url("https://u:p@host:8443/a/b?key=1#x") == "https://host:8443/a/b?…"
    assert redact_url("http://host/a") == "http://host/a"


# -- sql -----------------------------------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "metrics.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE m (metric TEXT, day TEXT, amount REAL)")
        conn.executemany("INSERT INTO m VALUES (?, ?, ?)", [
            ("nps", "2025-01-01", 30), ("nps", "2025-02-01 08:00:00", 31),
            ("cost", "2025-01-15", 4.5)])
    conn.close()
    return path


def test_sql_source_reads_a_query(db: Path, tmp_path: Path) -> None:
    source = SqlKpiSource(SqlOptions(
        url="sqlite:///metrics.db",  # relative to the config folder
        query="SELECT metric AS kpi, day AS date, amount AS value FROM m ORDER BY day"),
        tmp_path)
    assert source.measurements() == [
        Measurement("nps", d(2025, 1, 1), 30.0),
        Measurement("cost", d(2025, 1, 15), 4.5),
        Measurement("nps", d(2025, 2, 1, 8), 31.0),
    ]
    one = SqlKpiSource(SqlOptions(url=f"sqlite:///{db}", kpi="nps",
                                  query="SELECT day AS date, amount AS value FROM m "
                                        "WHERE metric = 'nps'"), Path("/elsewhere"))
    assert [m.value for m in one.measurements()] == [30.0, 31.0]


def test_sql_errors_name_the_source_and_what_to_do(db: Path, tmp_path: Path) -> None:
    def run(query: str, url: str = "sqlite:///metrics.db") -> str:
        with pytest.raises(SourceError) as info:
            SqlKpiSource(SqlOptions(url=url, query=query), tmp_path).measurements()
        return str(info.value)

    where = f"KPI source sql (sqlite:///{tmp_path / 'metrics.db'})"
    assert run("SELECT * FROM nope") == (f"{where}: the query failed: no such table: nope; "
                                         "check `query`")
    assert run("SELECT metric, day, amount FROM m") == (
        f"{where}: the query returns no column kpi, date, value (it returns metric, day, "
        "amount); name them with AS, e.g. SELECT metric AS kpi, day AS date, amount AS value")
    assert run("SELECT metric AS kpi, 'later' AS date, amount AS value FROM m "
               "WHERE metric = 'cost' UNION ALL SELECT 'nps', '2025-01-01', 'x'") == (
        f"{where}: 2 bad rows:\n"
        "  row 1: date 'later' is not a date; use YYYY-MM-DD or ISO 8601\n"
        "  row 2: value 'x' is not a number")
    assert run("SELECT 1", "sqlite:///gone.db") == (
        f"KPI source sql (sqlite:///{tmp_path / 'gone.db'}): no database file there; check "
        "the path in url (relative to the config folder)")


def test_sql_url_never_shows_its_password(tmp_path: Path, plugins: Plugins) -> None:
    source = SqlKpiSource(SqlOptions(url="postgresql://kpi:hunter22@db.example/metrics",
                                     query="SELECT 1"), tmp_path)
    assert source.describe() == "KPI source sql (postgresql://kpi:***@db.example/metrics)"
    with pytest.raises(InvalidInput) as info:
        config(tmp_path, """
            kpi_sources:
              - type: sql
                options: {url: "hunter22 is not a url", query: ""}
            """, plugins)
    found = {p.key: (p.line, p.message) for p in info.value.problems}
    assert found == {
        "kpi_sources[0].options.url": (4, "not a database URL; use e.g. sqlite:///kpis.db or "
                                          "postgresql://user@host/dbname"),
        "kpi_sources[0].options.query": (4, "must be a non-empty string"),
    }
    assert "hunter22" not in str(info.value)


def test_sql_source_through_the_config(db: Path, tmp_path: Path, plugins: Plugins) -> None:
    cfg = config(tmp_path, """
        kpis: [{id: nps, name: NPS}, {id: cost, name: Cost}]
        kpi_sources:
          - type: sql
            options:
              url: sqlite:///metrics.db
              query: SELECT metric AS kpi, day AS date, amount AS value FROM m
        """, plugins)
    with Store("sqlite://") as store:
        assert store_measurements(cfg, plugins, store) == 3
        assert [m.kpi for m in store.measurements()] == ["cost", "nps", "nps"]


def test_inline_source_reads_the_kpis_it_is_given() -> None:
    kpi = KPI("a", "A", measurements=(Measurement("a", d(2025, 1, 1), 1.0),))
    assert InlineKpiSource(Options(), Path("."), [kpi, KPI("b", "B")]).measurements() == [
        Measurement("a", d(2025, 1, 1), 1.0)]
