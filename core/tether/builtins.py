"""Tether's own plugin: the built-in rule packs. Registered through the entry point."""

from __future__ import annotations

from importlib.resources import files

from tether.connector import KpiSource
from tether.hookspecs import hookimpl
from tether.kpi.http import HttpKpiSource
from tether.kpi.sources import CsvKpiSource, InlineKpiSource
from tether.kpi.sql import SqlKpiSource
from tether.rules.packs import RulePackRef


@hookimpl
def tether_rule_packs() -> list[RulePackRef]:
    return [RulePackRef("drift", files("tether.rulepacks") / "drift", default=True)]


@hookimpl
def tether_kpi_source_types() -> dict[str, type[KpiSource]]:
    return {"csv": CsvKpiSource, "inline": InlineKpiSource, "http": HttpKpiSource,
            "sql": SqlKpiSource}
