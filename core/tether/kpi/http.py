"""KPI values from an HTTP JSON endpoint: records picked by a path, fields by name. A URL is
never shown with its credentials or query."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator

from tether.connector import KpiSource, Options
from tether.errors import SourceError
from tether.kpi.definitions import KPI_ID
from tether.kpi.records import collect
from tether.model import KPI, Measurement

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
        def fields(record: Any) -> tuple[Any, Any, Any] | str:
            if not isinstance(record, dict):
                return f"not an object with {o.date_field} and {o.value_field}"
            return (o.kpi if o.kpi is not None else _field(record, o.kpi_field),
                    _field(record, o.date_field), _field(record, o.value_field))

        return collect(((f"record {i} ({loc})", fields(record))
                        for i, (loc, record) in enumerate(records, start=1)), where, "record")


