"""KPI values from a SQL query, through SQLAlchemy."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator

from tether.connector import KpiSource, Options
from tether.errors import SourceError
from tether.kpi.definitions import KPI_ID
from tether.kpi.records import collect
from tether.model import Measurement

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
        return collect(((f"row {i}", (o.kpi if o.kpi else row[col["kpi"]], row[col["date"]],
                                      row[col["value"]])) for i, row in enumerate(rows, start=1)),
                       where, "row")


