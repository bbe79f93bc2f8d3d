"""KPI definitions (inline in tether.yaml or in a KPI file) and the built-in CSV value source."""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from .config import Checker, Hint, Number, duplicates
from .connector import KpiSource, Options
from .errors import InvalidInput, Problem
from .model import KPI, Measurement
from .yamlsrc import PathKey

KPI_ID = r"^[a-z0-9][a-z0-9_.-]*$"
Lifecycle = Literal["active", "paused", "achieved", "missed", "dropped", "retired"]
LIFECYCLES: tuple[str, ...] = get_args(Lifecycle)
CSV_COLUMNS = ("kpi", "date", "value")


class KpiModel(BaseModel):
    """One KPI as written; keys not declared here are kept in ``KPI.attrs``."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    id: Annotated[str, Hint("lowercase letters, digits, '.', '-' or '_', starting with a letter "
                            "or digit")] = Field(
        pattern=KPI_ID, description="Unique id that rules and mappings refer to.")
    name: str = Field(min_length=1, description="What the KPI measures, in words.")
    owner: str | None = Field(None, description="Who answers for this KPI.")
    weight: Number = Field(1.0, gt=0, allow_inf_nan=False,
                           description="Relative importance among KPIs.")
    lifecycle: Lifecycle = Field("active", description="Only active KPIs attract work.")

    def to_kpi(self) -> KPI:
        return KPI(id=self.id, name=self.name, lifecycle=self.lifecycle, weight=self.weight,
                   owner=self.owner, attrs=dict(self.model_extra or {}))


def parse_kpis(check: Checker, path: PathKey) -> list[KPI]:
    """The valid KPIs of the list at ``path``; every problem found is added to ``check``."""
    items = check.validate(list[Any], path, check.value(path)) or []
    duplicates(check, path, items, "id", "KPI id", "give each KPI its own id")
    parsed = (check.validate(KpiModel, (*path, i), item) for i, item in enumerate(items))
    return [p.to_kpi() for p in parsed if p is not None]


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
        try:
            # utf-8-sig: spreadsheets often save a byte-order mark before the header.
            with file.open(encoding="utf-8-sig", newline="") as fh:
                return _read(csv.DictReader(fh), str(file))
        except OSError as exc:
            message = f"cannot read KPI values: {exc.strerror}; check the path under kpi_sources"
            raise InvalidInput([Problem(str(file), 1, 1, "", message)]) from None


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
        at = _parse_date(date_text)
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


def _parse_date(text: str) -> datetime | None:
    """An aware UTC datetime; naive dates and times are taken to be UTC."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
