"""KPI definitions (inline in tether.yaml or in a KPI file) and the built-in CSV value source."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import AllowInfNan, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from tether.config.checker import Checker, Hint, Number, Whole, duplicates, unknown_key
from tether.config.yamlsrc import PathKey
from tether.model import KPI, Checkpoint, Guardrail, Measurement

KPI_ID = r"^[a-z0-9][a-z0-9_.-]*$"
Lifecycle = Literal["active", "paused", "achieved", "missed", "dropped", "retired"]
LIFECYCLES: tuple[str, ...] = get_args(Lifecycle)
CSV_COLUMNS = ("kpi", "date", "value")
ID_HINT = Hint("a KPI id: lowercase letters, digits, '.', '-' or '_', starting with a letter "
               "or digit")
DATE_HINT = Hint("a date like 2025-12-31 or an ISO 8601 timestamp")
DIRECTION_HINT = "up, down, or a band [low, high] of two numbers"


def parse_when(value: Any) -> datetime | None:
    """An aware UTC datetime from a YAML date, a datetime or ISO text; None if it is none.
    Naive dates and times are taken to be UTC (a bare date is its midnight)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        return parse_date(value.strip())
    return None


def _when(value: Any) -> datetime:
    at = parse_when(value)
    if at is None:
        raise PydanticCustomError("date_parsing", "not a date")
    return at


def _direction(value: Any) -> Any:
    if value in ("up", "down"):
        return value
    if isinstance(value, list | tuple) and len(value) == 2 and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in value):
        low, high = float(value[0]), float(value[1])
        if low >= high:
            raise PydanticCustomError(
                "direction", "the band's low ({low}) must be below its high ({high}); write "
                "[low, high]", {"low": f"{low:g}", "high": f"{high:g}"})
        return (low, high)
    guess = difflib.get_close_matches(value, ["up", "down"], n=1) if isinstance(value, str) else []
    tip = f"; did you mean '{guess[0]}'?" if guess else ""
    raise PydanticCustomError("direction", "must be {what}{tip}",
                              {"what": DIRECTION_HINT, "tip": tip})


def _owner(value: Any) -> Any:
    # A plain string is the owner's name, with no tracker handles.
    return {"name": value} if isinstance(value, str) else value


When = Annotated[datetime, BeforeValidator(_when), DATE_HINT]
Finite = Annotated[Number, AllowInfNan(False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


class OwnerModel(BaseModel):
    """The decision-maker: a name, and a handle per tracker (keyed by source name or type)."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)
    __pydantic_extra__: dict[str, Annotated[str, Hint(
        "the person's handle in that tracker: account id, login or gid")]]

    name: str = Field(min_length=1, description="The person's name, as people know them.")


class CheckpointModel(_Strict):
    """An interim target on the expected path."""

    date: When = Field(description="When the value should be reached.")
    value: Finite = Field(description="The value expected by then.")


class GuardrailModel(_Strict):
    """Another KPI with a limit that must hold while this one is pushed."""

    kpi: Annotated[str, ID_HINT] = Field(pattern=KPI_ID, description="The guardrail KPI's id.")
    floor: Finite | None = Field(None, description="It must not fall below this.")
    ceiling: Finite | None = Field(None, description="It must not rise above this.")


class MeasurementModel(_Strict):
    """One observed value, written inline under the KPI."""

    date: When = Field(description="When the value was measured.")
    value: Finite = Field(description="The measured value.")


class KpiModel(BaseModel):
    """One KPI as written. Unknown keys are errors, except ``x-*`` keys, kept in ``attrs``."""

    # Extra keys are allowed through pydantic so parse_kpis can keep x-* and locate the rest.
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True, json_schema_extra={
        "additionalProperties": False, "patternProperties": {"^x-": {}}})

    id: Annotated[str, Hint("lowercase letters, digits, '.', '-' or '_', starting with a letter "
                            "or digit")] = Field(
        pattern=KPI_ID, description="Unique id that rules and mappings refer to.")
    name: str = Field(min_length=1, description="What the KPI measures, in words.")
    objective: Annotated[str | None, ID_HINT] = Field(
        None, pattern=KPI_ID, description="Id of the parent KPI (objective) this one rolls up to.")
    owner: Annotated[OwnerModel | None, BeforeValidator(
        _owner, json_schema_input_type=str | OwnerModel | None), Hint(
        "a name, or a mapping with `name` and one handle per tracker type or source name, "
        "as `tether init` writes them")] = Field(
        None, description="The decision-maker: a name, or {name, <tracker>: <handle>, ...}.")
    unit: str = Field("", description="Unit of the values, shown next to them ($M, %, days).")
    direction: Annotated[Any, BeforeValidator(
        _direction, json_schema_input_type=Literal["up", "down"] | tuple[float, float])] = Field(
        "up", description="Which way is better: up, down, or a band [low, high] to stay in.")
    baseline: Finite | None = Field(None, description="The value at baseline_date.")
    baseline_date: When | None = Field(None, description="When the baseline was measured.")
    target: Finite | None = Field(None, description="The value to reach by the deadline.")
    deadline: When | None = Field(None, description="When the target is due.")
    interim: list[CheckpointModel] = Field(
        [], description="Interim targets [{date, value}] for a non-linear expected path.")
    weight: Number = Field(1.0, ge=0, allow_inf_nan=False,
                           description="Relative importance among KPIs; 0 = tracked, unweighted.")
    stake: Number | None = Field(None, ge=0, allow_inf_nan=False,
                                 description="Money at stake if the target is missed.")
    currency: Annotated[str | None, Hint("a three-letter currency code like USD")] = Field(
        None, pattern=r"^[A-Z]{3}$", description="Currency of `stake` (ISO 4217 code).")
    lifecycle: Lifecycle = Field("active", description="Only active KPIs attract work.")
    lifecycle_changed: When | None = Field(
        None, description="When the lifecycle last changed (e.g. the day it was retired).")
    achieved_on: When | None = Field(
        None, description="When the target was reached, for a KPI achieved and later retired.")
    retired_on: When | None = Field(
        None, description="When the KPI was retired, dropped or missed.")
    lag_days: Whole = Field(0, ge=0, description="Days work takes to show in the number.")
    tolerance: Number | None = Field(
        None, gt=0, allow_inf_nan=False, description="Allowed distance (in the KPI's unit) "
        "from the expected path. Default: 10% of |target - baseline|.")
    guardrails: list[GuardrailModel] = Field(
        [], description="KPIs with a floor or ceiling that must hold while this one is pushed.")
    tradeoffs: list[Annotated[str, ID_HINT, Field(pattern=KPI_ID)]] = Field(
        [], description="Ids of KPIs that compete with this one for the same entities.")
    anchors: dict[str, str] = Field(
        {}, description="Per source name, the item key that stands for this KPI (where "
        "decision requests go).")
    measurements: list[MeasurementModel] = Field(
        [], description="Measured values [{date, value}], stored like any KPI source's.")

    def to_kpi(self) -> KPI:
        band = self.direction if isinstance(self.direction, tuple) else None
        owner = self.owner
        return KPI(
            id=self.id, name=self.name, lifecycle=self.lifecycle, weight=self.weight,
            owner=owner.name if owner else None,
            attrs={k: v for k, v in (self.model_extra or {}).items() if k.startswith("x-")},
            owner_handles=dict(owner.model_extra or {}) if owner else {},
            objective=self.objective, unit=self.unit,
            direction="band" if band else self.direction, band=band,
            baseline=self.baseline, baseline_date=self.baseline_date, target=self.target,
            deadline=self.deadline,
            interim=tuple(sorted((Checkpoint(c.date, c.value) for c in self.interim),
                                 key=lambda c: c.at)),
            stake=self.stake, currency=self.currency, lifecycle_changed=self.lifecycle_changed,
            achieved_on=self.achieved_on, retired_on=self.retired_on,
            lag_days=self.lag_days, tolerance=self.tolerance,
            guardrails=tuple(Guardrail(g.kpi, g.floor, g.ceiling) for g in self.guardrails),
            tradeoffs=tuple(self.tradeoffs), anchors=dict(self.anchors),
            measurements=tuple(sorted((Measurement(self.id, m.date, m.value)
                                       for m in self.measurements), key=lambda m: m.at)),
        )


def parse_kpis(check: Checker, path: PathKey, sources: Mapping[str, str] | None = None
               ) -> list[KPI]:
    """The valid KPIs of the list at ``path``; every problem found is added to ``check``.

    ``sources`` (name -> type), when given, checks that anchors name a configured source.
    Owner handles are free-form keys (a source name or a tracker type): a KPI file may
    name trackers this workspace does not connect.
    """
    items = check.validate(list[Any], path, check.value(path)) or []
    duplicates(check, path, items, "id", "KPI id", "give each KPI its own id")
    parsed = [(i, check.validate(KpiModel, (*path, i), item)) for i, item in enumerate(items)]
    ids = [item.get("id") for item in items if isinstance(item, dict)]
    known = sorted({i for i in ids if isinstance(i, str)})
    for i, item in enumerate(items):
        if isinstance(item, dict):
            _unknown_keys(check, (*path, i), item)
    good = [(i, m) for i, m in parsed if m is not None]
    for i, m in good:
        _cross_check(check, (*path, i), m, known, sources)
    _objective_cycles(check, path, good)
    return [m.to_kpi() for _, m in good]


def _unknown_keys(check: Checker, where: PathKey, item: dict) -> None:
    fields = list(KpiModel.model_fields)
    for key in item:
        if key not in KpiModel.model_fields and not (isinstance(key, str) and key.startswith("x-")):
            check.add((*where, key), unknown_key(str(key), fields) + " (or prefix it with "
                      "'x-' to keep it as your own attribute)")


def _cross_check(check: Checker, where: PathKey, m: KpiModel, known: list[str],
                 sources: Mapping[str, str] | None) -> None:
    def add(key: PathKey, message: str) -> None:
        check.add((*where, *key), message)

    def exists(key: PathKey, kpi: str) -> None:
        if kpi == m.id:
            add(key, f"'{kpi}' is this KPI itself; name another KPI")
        elif kpi not in known:
            add(key, unknown_key(kpi, known, "KPI"))

    band = isinstance(m.direction, tuple)
    if m.objective is not None:
        exists(("objective",), m.objective)
    for j, g in enumerate(m.guardrails):
        exists(("guardrails", j, "kpi"), g.kpi)
        if g.floor is None and g.ceiling is None:
            add(("guardrails", j), "give the guardrail a floor or a ceiling (or both)")
        elif g.floor is not None and g.ceiling is not None and g.floor >= g.ceiling:
            add(("guardrails", j, "floor"), f"floor {g.floor:g} must be below ceiling "
                f"{g.ceiling:g}")
    _no_repeats(check, (*where, "guardrails"), [g.kpi for g in m.guardrails], "guardrail KPI",
                sub="kpi")
    for j, kpi in enumerate(m.tradeoffs):
        exists(("tradeoffs", j), kpi)
    _no_repeats(check, (*where, "tradeoffs"), list(m.tradeoffs), "trade-off KPI")

    if (m.baseline is None) != (m.baseline_date is None):
        missing = "baseline_date" if m.baseline_date is None else "baseline"
        add(("baseline" if m.baseline is not None else "baseline_date",),
            f"'{missing}' is required with it: a baseline is a value and the date it was "
            "measured")
    if band:
        if m.target is not None:
            add(("target",), "a band KPI has no target: staying inside [low, high] is the "
                "target; remove it, or use direction up or down")
        if m.interim:
            add(("interim",), "a band KPI has no interim targets; remove them")
    else:
        if (m.target is None) != (m.deadline is None):
            missing = "deadline" if m.deadline is None else "target"
            add(("target" if m.target is not None else "deadline",),
                f"'{missing}' is required with it: a target is a value and the date it is due")
        if m.target is not None and m.baseline is not None and m.target == m.baseline:
            add(("target",), f"equals the baseline ({m.baseline:g}); set the value to reach, "
                "or make the KPI a band [low, high] to stay in")
        elif m.target is not None and m.baseline is not None and (
                (m.target - m.baseline) * (1 if m.direction == "up" else -1) < 0):
            side, other = ("below", "down") if m.direction == "up" else ("above", "up")
            add(("target",), f"{m.target:g} is {side} the baseline {m.baseline:g} but the "
                f"direction is {m.direction}; write `direction: {other}` or fix the target")
        if m.interim and (m.target is None or m.deadline is None):
            add(("interim",), "interim targets need a target and a deadline")
    if m.deadline is not None and m.baseline_date is not None and m.deadline <= m.baseline_date:
        add(("deadline",), f"must be after baseline_date ({m.baseline_date.date()})")
    seen: dict[datetime, int] = {}
    for j, c in enumerate(m.interim):
        if m.baseline_date is not None and c.date <= m.baseline_date:
            add(("interim", j, "date"), f"must be after baseline_date ({m.baseline_date.date()})")
        if m.deadline is not None and c.date >= m.deadline:
            add(("interim", j, "date"), f"must be before the deadline ({m.deadline.date()})")
        if c.date in seen:
            add(("interim", j, "date"), f"duplicate date (first in interim[{seen[c.date]}])")
        seen.setdefault(c.date, j)
    first: dict[datetime, int] = {}
    for j, ms in enumerate(m.measurements):
        if ms.date in first:
            line = check.doc.where((*where, "measurements", first[ms.date]))[0]
            add(("measurements", j, "date"), f"duplicate date {ms.date.date()} (first on line "
                f"{line}); keep one value per date")
        first.setdefault(ms.date, j)
    if m.currency is not None and m.stake is None:
        add(("currency",), "a currency needs a stake; add `stake:` or remove it")

    if sources is not None:
        names = sorted(sources)
        for key in m.anchors:
            if key not in sources:
                add(("anchors", key), unknown_key(key, names, "source") if names else
                    f"unknown source '{key}'; no sources are configured")


def _no_repeats(check: Checker, where: PathKey, values: list[str], what: str,
                sub: str | None = None) -> None:
    seen: set[str] = set()
    for j, value in enumerate(values):
        if value in seen:
            check.add((*where, j, sub) if sub else (*where, j), f"duplicate {what} '{value}'; "
                      "list it once")
        seen.add(value)


def _objective_cycles(check: Checker, path: PathKey, good: list[tuple[int, KpiModel]]) -> None:
    parent = {m.id: m.objective for _, m in good if m.objective and m.objective != m.id}
    index = {m.id: i for i, m in good}
    reported: set[str] = set()
    for start in parent:
        chain, node = [start], parent.get(start)
        while node is not None and node not in chain:
            chain.append(node)
            node = parent.get(node)
        if node == start and start not in reported:
            reported.update(chain)
            loop = " -> ".join([*chain, start])
            check.add((*path, index[start], "objective"),
                      f"objectives form a loop ({loop}); an objective cannot be its own parent")


def parse_date(text: str) -> datetime | None:
    """An aware UTC datetime; naive dates and times are taken to be UTC."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
