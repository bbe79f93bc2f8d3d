"""Tether's own plugin: the built-in rule packs. Registered through the entry point."""

from __future__ import annotations

from importlib.resources import files

from .connector import KpiSource
from .hookspecs import hookimpl
from .kpis import CsvKpiSource
from .kpisources import HttpKpiSource, InlineKpiSource, SqlKpiSource
from .rulepack import RulePackRef


@hookimpl
def tether_rule_packs() -> list[RulePackRef]:
    return [RulePackRef("drift", files("tether.rulepacks") / "drift", default=True)]


@hookimpl
def tether_kpi_source_types() -> dict[str, type[KpiSource]]:
    return {"csv": CsvKpiSource, "inline": InlineKpiSource, "http": HttpKpiSource,
            "sql": SqlKpiSource}
