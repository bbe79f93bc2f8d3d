"""Built-in KPI measurement sources besides CSV: inline YAML, an HTTP JSON endpoint, SQL.

Each returns every measurement it holds; the state store keeps the history (one value per
KPI and time, the first one seen). Problems name the source, where it reads from (a URL
never shows its credentials or query), the record or row, and what to do.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator

from tether.connector import KpiSource, Options
from tether.errors import SourceError
from tether.kpi.definitions import KPI_ID, parse_when
from tether.model import KPI, Measurement

if TYPE_CHECKING:
    from tether.config.load import Config
    from tether.plugins import Plugins
    from tether.store.db import Store

_MAX_LISTED = 10  # bad records listed in one message; the rest are counted


# -- inline -------------------------------------------------------------------------------


class InlineOptions(Options):
    """No options: the values are the `measurements:` written under each KPI."""


class InlineKpiSource(KpiSource):
    """The ``measurements: [{date, value}]`` written under each KPI; always loaded."""

    type_name: ClassVar[str] = "inline"
    options_model: ClassVar[type[Options]] = InlineOptions

    def measurements(self) -> list[Measurement]:
        return [m for kpi in self.kpis for m in kpi.measurements]


# -- shared record checks -------------------------------------------------------------------


def _record(kpi: Any, at: Any, value: Any) -> tuple[Measurement | None, list[str]]:
    """A Measurement from raw fields, or the problems with them (field: what is wrong)."""
    problems = []
    if not isinstance(kpi, str) or not re.fullmatch(KPI_ID, kpi):
        problems.append(f"kpi {_show(kpi)} is not a KPI id (set `kpi` if every record is "
                        "one KPI's)")
    when = parse_when(at)
    if when is None:
        problems.append(f"date {_show(at)} is not a date; use YYYY-MM-DD or ISO 8601")
    number: float | None = None
    if not isinstance(value, bool):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
    if number is None or not math.isfinite(number):
        problems.append(f"value {_show(value)} is not a number")
    if problems:
        return None, problems
    assert when is not None and number is not None
    return Measurement(kpi, when, number), []


def _show(value: Any) -> str:
    if value is None:
        return "missing"
    return f"'{value}'" if isinstance(value, str) else repr(value)


def _fail(where: str, bad: list[str], what: str) -> SourceError:
    listed = bad[:_MAX_LISTED]
    more = f"\n  ... and {len(bad) - len(listed)} more" if len(bad) > len(listed) else ""
    return SourceError(f"{where}: {len(bad)} bad {what}{'s' if len(bad) != 1 else ''}:\n  "
                       + "\n  ".join(listed) + more)


# -- http -----------------------------------------------------------------------------------


_STEP = re.compile(r"\.(?P<name>[A-Za-z_][\w-]*)|\.\*|\[\*\]|\[(?P<index>-?\d+)\]"
                   r"|\[(?P<q>['\"])(?P<key>.*?)(?P=q)\]")


def parse_path(path: str) -> list[tuple[str, Any]]:
    """Steps of a JSON path (``$.data[*]``, ``$['x'].items[0]``, ``$.*``) or a dotted path
    (``data.items``): ("key", name), ("index", n) or ("all", None). ValueError if invalid."""
    path = path.strip()
    if not path.startswith("$"):
        if not path or any(not part for part in path.split(".")):
            raise ValueError(f"'{path}' is not a path; write $.data[*] or data.items")
        return [("all", None) if p == "*" else ("key", p) for p in path.split(".")]
    steps: list[tuple[str, Any]] = []
    pos = 1
    while pos < len(path):
        found = _STEP.match(path, pos)
        if not found:
            raise ValueError(f"'{path}' is not a JSON path this source reads (at "
                             f"'{path[pos:]}'); use $.key, ['key'], [0] and [*]")
        if found.group("name") is not None:
            steps.append(("key", found.group("name")))
        elif found.group("key") is not None:
            steps.append(("key", found.group("key")))
        elif found.group("index") is not None:
            steps.append(("index", int(found.group("index"))))
        else:
            steps.append(("all", None))
        pos = found.end()
    return steps


def select(doc: Any, path: str) -> list[tuple[str, Any]]:
    """The (location, value) records ``path`` selects in ``doc``. A path without a wildcard
    that ends on a list selects that list's items. ValueError names a missing step."""
    steps = parse_path(path)
    nodes: list[tuple[str, Any]] = [("$", doc)]
    for kind, arg in steps:
        nxt: list[tuple[str, Any]] = []
        for where, node in nodes:
            if kind == "all":
                items = node.items() if isinstance(node, dict) else (
                    enumerate(node) if isinstance(node, list) else [])
                nxt += [(f"{where}[{k!r}]" if isinstance(k, str) else f"{where}[{k}]", v)
                        for k, v in items]
            elif kind == "key" and isinstance(node, dict) and arg in node:
                nxt.append((f"{where}.{arg}", node[arg]))
            elif kind == "key" and isinstance(node, list) and str(arg).lstrip("-").isdigit():
                index = int(arg)
                if -len(node) <= index < len(node):
                    nxt.append((f"{where}[{index}]", node[index]))
            elif kind == "index" and isinstance(node, list) and -len(node) <= arg < len(node):
                nxt.append((f"{where}[{arg}]", node[arg]))
        if not nxt and kind != "all":
            shown = f"key '{arg}'" if kind == "key" else f"item [{arg}]"
            at = nodes[0][0] if nodes else "$"
            raise ValueError(f"no {shown} at {at}")
        nodes = nxt
    if all(kind != "all" for kind, _ in steps) and len(nodes) == 1 and isinstance(
            nodes[0][1], list):
        where, items = nodes[0]
        return [(f"{where}[{i}]", v) for i, v in enumerate(items)]
    return nodes


def _field(record: Any, dotted: str) -> Any:
    value = record
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def redact_url(url: str) -> str:
    """``url`` without user, password or query string: safe for messages and logs."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(an unreadable URL)"
    netloc = f"[{host}]{port}" if ":" in host else f"{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "…" if parts.query else "", ""))


class HttpOptions(Options):
    url: str = Field(pattern=r"^https?://", description="The JSON endpoint (http or https).")
    records: str = Field("$[*]", description="JSON path ($.data[*]) or dotted path "
                         "(data.items) of the list of records in the response.")
    kpi: str | None = Field(None, pattern=KPI_ID, description="The KPI every record belongs "
                            "to; without it each record names its KPI in `kpi_field`.")
    kpi_field: str = Field("kpi", description="Record field (dotted) holding the KPI id.")
    date_field: str = Field("date", description="Record field (dotted) holding the date.")
    value_field: str = Field("value", description="Record field (dotted) holding the value.")
    headers: dict[str, str] = Field({}, description="Headers sent as written (use ${VAR} for "
                                    "secrets).")
    headers_env: dict[str, str] = Field(
        {}, description="Headers whose value is read from an environment variable when "
        "fetching: {Authorization: KPI_API_TOKEN}.")
    timeout: float = Field(30.0, gt=0, description="Seconds to wait for the answer.")

    @field_validator("records")
    @classmethod
    def _path(cls, value: str) -> str:
        parse_path(value)
        return value


class HttpKpiSource(KpiSource):
    """KPI values from an HTTP JSON endpoint, fetched with requests (one GET per run)."""

    type_name: ClassVar[str] = "http"
    options_model: ClassVar[type[Options]] = HttpOptions

    def __init__(self, options: Options, base_dir: Path, kpis: Sequence[KPI] = (),
                 env: Mapping[str, str] | None = None):
        super().__init__(options, base_dir, kpis)
        self.env = os.environ if env is None else env

    def describe(self) -> str:
        assert isinstance(self.options, HttpOptions)
        return f"KPI source http ({redact_url(self.options.url)})"

    def measurements(self) -> list[Measurement]:
        import requests

        o = self.options
        assert isinstance(o, HttpOptions)
        where = self.describe()
        headers = {"Accept": "application/json", **o.headers}
        for header, var in o.headers_env.items():
            if not self.env.get(var):
                raise SourceError(f"{where}: environment variable {var} (for header {header}) "
                                  "is not set; export it before running tether")
            headers[header] = self.env[var]
        try:
            response = requests.get(o.url, headers=headers, timeout=o.timeout)
        except requests.Timeout:
            raise SourceError(f"{where}: no answer within {o.timeout:g} s; check the service, "
                              "or raise `timeout`") from None
        except requests.RequestException as exc:
            raise SourceError(f"{where}: cannot connect ({type(exc).__name__}); check the url "
                              "and that the service is up") from None
        if response.status_code >= 400:
            advice = {401: "check the credentials (headers, headers_env)",
                      403: "the credentials lack access to it",
                      404: "check the url"}.get(response.status_code, "try again later, or "
                                                                     "check the service")
            raise SourceError(f"{where}: answered HTTP {response.status_code}; {advice}")
        try:
            doc = response.json()
        except ValueError:
            kind = response.headers.get("Content-Type", "unknown")
            raise SourceError(f"{where}: the answer is not JSON (Content-Type {kind}); point "
                              "url at the JSON endpoint") from None
        try:
            records = select(doc, o.records)
        except ValueError as exc:
            raise SourceError(f"{where}: records path {o.records} selects nothing: {exc}; "
                              "fix `records`") from None
        out, bad = [], []
        for i, (loc, record) in enumerate(records, start=1):
            if not isinstance(record, dict):
                bad.append(f"record {i} ({loc}): not an object with {o.date_field} and "
                           f"{o.value_field}")
                continue
            kpi = o.kpi if o.kpi is not None else _field(record, o.kpi_field)
            m, problems = _record(kpi, _field(record, o.date_field), _field(record, o.value_field))
            if m is None:
                bad.append(f"record {i} ({loc}): " + "; ".join(problems))
            else:
                out.append(m)
        if bad:
            raise _fail(where, bad, "record")
        return out


# -- sql ------------------------------------------------------------------------------------


class SqlOptions(Options):
    url: str = Field(description="SQLAlchemy database URL (a relative sqlite path is relative "
                     "to the config folder). Use ${VAR} for the password.")
    query: str = Field(min_length=1, description="SELECT returning columns kpi, date, value "
                       "(date, value when `kpi` is set).")
    kpi: str | None = Field(None, pattern=KPI_ID,
                            description="The KPI every row belongs to, if the query has no kpi "
                            "column.")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(value)
        except ArgumentError:
            # Never echo the URL: it may hold a password.
            raise ValueError("not a database URL; use e.g. sqlite:///kpis.db or "
                             "postgresql://user@host/dbname") from None
        return value


class SqlKpiSource(KpiSource):
    """KPI values from a SQL query over any SQLAlchemy URL."""

    type_name: ClassVar[str] = "sql"
    options_model: ClassVar[type[Options]] = SqlOptions

    def _url(self) -> Any:
        from sqlalchemy.engine import make_url

        assert isinstance(self.options, SqlOptions)
        url = make_url(self.options.url)
        db = url.database or ""
        if url.get_backend_name() == "sqlite" and db and db != ":memory:" and not (
                db.startswith("file:") or Path(db).is_absolute()):
            url = url.set(database=str(self.base_dir / db))
        return url

    def describe(self) -> str:
        return f"KPI source sql ({self._url().render_as_string(hide_password=True)})"

    def measurements(self) -> list[Measurement]:
        import sqlalchemy as sa

        o = self.options
        assert isinstance(o, SqlOptions)
        where = self.describe()
        url = self._url()
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:" \
                and not url.database.startswith("file:") and not Path(url.database).is_file():
            raise SourceError(f"{where}: no database file there; check the path in url "
                              "(relative to the config folder)")
        try:
            engine = sa.create_engine(url)
        except (sa.exc.SQLAlchemyError, ImportError) as exc:
            raise SourceError(f"{where}: cannot open the database ({exc}); install its driver "
                              "or fix the url") from None
        try:
            with engine.connect() as conn:
                result = conn.execute(sa.text(o.query))
                columns = [str(c).lower() for c in list(result.keys())]
                rows = result.all()
        except sa.exc.SQLAlchemyError as exc:
            # Only the driver's message: SQLAlchemy's wrapper echoes the statement's parameters.
            raise SourceError(f"{where}: the query failed: {getattr(exc, 'orig', None) or exc}; "
                              "check `query`") from None
        finally:
            engine.dispose()
        needed = ("date", "value") if o.kpi else ("kpi", "date", "value")
        missing = [c for c in needed if c not in columns]
        if missing:
            raise SourceError(f"{where}: the query returns no column {', '.join(missing)} "
                              f"(it returns {', '.join(columns) or 'nothing'}); name them with "
                              "AS, e.g. SELECT metric AS kpi, day AS date, amount AS value")
        col = {name: columns.index(name) for name in needed}
        out, bad = [], []
        for i, row in enumerate(rows, start=1):
            kpi = o.kpi if o.kpi else row[col["kpi"]]
            m, problems = _record(kpi, row[col["date"]], row[col["value"]])
            if m is None:
                bad.append(f"row {i}: " + "; ".join(problems))
            else:
                out.append(m)
        if bad:
            raise _fail(where, bad, "row")
        return out


# -- loading all of them ----------------------------------------------------------------------


def kpi_sources(config: Config, plugins: Plugins) -> list[KpiSource]:
    """The inline source over the configured KPIs, then each `kpi_sources` entry."""
    types = plugins.kpi_source_types()
    out: list[KpiSource] = [InlineKpiSource(InlineOptions(), config.base_dir, config.kpis)]
    for source in config.kpi_sources:
        cls = types.get(source.type)
        if cls is None:  # config checked it; a plugin may have vanished since
            raise SourceError(f"no plugin provides KPI source type '{source.type}'; install it "
                              "or remove it from kpi_sources")
        if cls is InlineKpiSource:
            continue  # already loaded
        out.append(cls(source.options, config.base_dir, config.kpis))
    return out


def store_measurements(config: Config, plugins: Plugins, store: Store) -> int:
    """Read every KPI source into ``store``; returns how many measurements were new."""
    return sum(store.add_measurements(source.measurements())
               for source in kpi_sources(config, plugins))
