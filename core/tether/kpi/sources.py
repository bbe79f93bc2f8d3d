"""Built-in KPI measurement sources (inline YAML, CSV; HTTP and SQL live in their own modules)
and loading every configured one.

Each returns every measurement it holds; the state store keeps the history (one value per
KPI and time, the first one seen). Problems name the source, where it reads from, the
record or row, and what to do."""

from __future__ import annotations

import csv
import io
import math
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from tether.config.yamlsrc import read_text
from tether.connector import KpiSource, Options
from tether.errors import InvalidInput, Problem, SourceError
from tether.kpi.definitions import CSV_COLUMNS, parse_date
from tether.model import Measurement

if TYPE_CHECKING:
    from tether.config.model import Config
    from tether.plugins import Plugins
    from tether.store.db import Store


# -- inline -------------------------------------------------------------------------------


class InlineOptions(Options):
    """No options: the values are the `measurements:` written under each KPI."""


class InlineKpiSource(KpiSource):
    """The ``measurements: [{date, value}]`` written under each KPI; always loaded."""

    type_name: ClassVar[str] = "inline"
    options_model: ClassVar[type[Options]] = InlineOptions

    def measurements(self) -> list[Measurement]:
        return [m for kpi in self.kpis for m in kpi.measurements]


# -- csv -----------------------------------------------------------------------------------

class CsvOptions(Options):
    path: str = Field(description="CSV file with columns kpi,date,value, relative to the config "
                      "folder.")


class CsvKpiSource(KpiSource):
    """KPI values from a CSV file with a ``kpi,date,value`` header; other columns are ignored."""

    type_name: ClassVar[str] = "csv"
    options_model: ClassVar[type[Options]] = CsvOptions

    def measurements(self) -> list[Measurement]:
        """Every row as a Measurement (UTC); raises InvalidInput locating each bad row."""
        assert isinstance(self.options, CsvOptions)
        file = self.base_dir / self.options.path
        if not file.is_file():
            message = "cannot read KPI values: no such file; check the path under kpi_sources"
            raise InvalidInput([Problem(str(file), 1, 1, "", message)])
        # utf-8-sig: spreadsheets often save a byte-order mark before the header.
        text = read_text(file, "utf-8-sig")
        return _read(csv.DictReader(io.StringIO(text, newline="")), str(file))


def _read(reader: csv.DictReader[str], file: str) -> list[Measurement]:
    header = reader.fieldnames or []
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise InvalidInput([Problem(file, 1, 1, "", f"missing column(s) {', '.join(missing)}; "
                                    "the header must name kpi,date,value")])
    col = {name: header.index(name) + 1 for name in CSV_COLUMNS}
    out: list[Measurement] = []
    problems: list[Problem] = []
    for row in reader:
        line = reader.line_num
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue  # blank lines are harmless

        def bad(name: str, message: str, line: int = line) -> None:
            problems.append(Problem(file, line, col[name], name, message))

        kpi = (row.get("kpi") or "").strip()
        date_text = (row.get("date") or "").strip()
        value_text = (row.get("value") or "").strip()
        if not kpi:
            bad("kpi", "empty; write the KPI id this value belongs to")
        at = parse_date(date_text)
        if at is None:
            bad("date", f"'{date_text}' is not a date; use YYYY-MM-DD or an ISO 8601 timestamp")
        try:
            value = float(value_text)
            if not math.isfinite(value):
                raise ValueError
        except ValueError:
            bad("value", f"'{value_text}' is not a number; use digits like 12.5")
            continue
        if kpi and at is not None:
            out.append(Measurement(kpi=kpi, at=at, value=value))
    if problems:
        raise InvalidInput(problems)
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
