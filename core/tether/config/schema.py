"""The JSON Schema of tether.yaml, for editors: each item's ``options`` follow its ``type``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import (
    BaseModel,
)
from pydantic.json_schema import models_json_schema

from tether.config.sections import (
    JudgementModel,
    KpiSourceModel,
    RulesModel,
    ServeModel,
    SourceModel,
    StateModel,
    StatusModel,
    WorkersModel,
    WritebackModel,
)
from tether.kpi.definitions import KpiModel

if TYPE_CHECKING:
    from tether.plugins import Plugins


# -- JSON Schema for editors -------------------------------------------------------------------


def config_schema(plugins: Plugins) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of tether.yaml; each item's ``options`` follow its ``type``."""
    conns = plugins.connector_types()
    ksrcs = plugins.kpi_source_types()
    models: list[type[BaseModel]] = list(dict.fromkeys([
        SourceModel, KpiSourceModel, RulesModel, WritebackModel, StateModel, StatusModel,
        JudgementModel, ServeModel, WorkersModel, KpiModel,
        *(c.options_model for c in conns.values()), *(k.options_model for k in ksrcs.values()),
    ]))
    refs, top = models_json_schema([(m, "validation") for m in models],
                                   ref_template="#/$defs/{model}")
    defs = top.get("$defs", {})

    def ref(m: type[BaseModel], description: str | None = None) -> dict[str, Any]:
        out = dict(refs[(m, "validation")])
        return {**out, "description": description} if description else out

    def typed(shape: type[BaseModel], known: Mapping[str, Any], what: str) -> dict[str, Any]:
        # One if/then per type, so editors offer (and check) only that type's options.
        item = {"allOf": [ref(shape), *([{"properties": {"type": {"enum": sorted(known)}}}]
                                        if known else []), *(
            {"if": {"properties": {"type": {"const": t}}, "required": ["type"]},
             "then": {"properties": {"options": ref(cls.options_model)}}}
            for t, cls in sorted(known.items()))]}
        return {"type": "array", "items": item,
                "description": f"Each {what}: its `type` and that type's `options`."}

    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "tether.yaml",
        "description": "Tether configuration: sources, KPIs, rules and write-back limits.",
        "type": "object",
        "additionalProperties": False,
        "required": ["sources"],
        "properties": {
            "version": {"const": 1, "default": 1, "description": "Config format version."},
            "sources": typed(SourceModel, conns, "tracker source"),
            "kpis": {"description": "KPI definitions, or the path of a YAML file (relative to "
                     "the config folder) whose top level is `kpis: [...]`.",
                     "anyOf": [{"type": "array", "items": ref(KpiModel)}, {"type": "string"}]},
            "kpi_sources": typed(KpiSourceModel, ksrcs, "KPI measurement source"),
            "rules": ref(RulesModel, "Which rule packs run."),
            "writeback": ref(WritebackModel, "What Tether may write back to trackers."),
            "state": ref(StateModel, "Where run history is kept."),
            "status": ref(StatusModel, "When a KPI counts as at risk or off track."),
            "judgement": ref(JudgementModel, "The portfolio aggregates behind drift signals."),
            "serve": ref(ServeModel, "How `tether serve` runs."),
            "workers": ref(WorkersModel, "How passes spread over Celery workers."),
        },
        "$defs": defs,
    }
