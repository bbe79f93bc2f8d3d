"""The shape of each tether.yaml section (pydantic models): defaults, bounds and the
descriptions the JSON Schema carries."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from tether.config.checker import NAME_HINT, Hint, Number, Whole, not_bool, yaml_off
from tether.config.model import KpiLabels
from tether.kpi.trend import Thresholds
from tether.rules.entities import EntityKeys
from tether.rules.signals import Judgement

SOURCE_NAME = r"^[a-z0-9][a-z0-9_-]*$"
LABEL_PREFIX = r"^[a-z][a-z0-9_-]*$"

# -- the file's shape --------------------------------------------------------------------------


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


class TopModel(_Section):
    """Top-level keys only; each section is validated on its own so all problems surface."""

    version: Annotated[Literal[1], Hint("1 (the only config version this Tether reads)")] = 1
    sources: Any
    kpis: Any = None
    kpi_sources: Any = None
    rules: Any = None
    writeback: Any = None
    state: Any = None
    status: Any = None
    judgement: Any = None
    serve: Any = None
    workers: Any = None


class SourceModel(_Section):
    """One tracker to read tasks from and write annotations back to."""

    name: Annotated[str, NAME_HINT] = Field(
        pattern=SOURCE_NAME, description="Unique name of this source; task refs are <name>:<key>.")
    type: str = Field(description="Connector type, provided by an installed plugin.")
    options: dict[str, Any] | None = Field(
        None, description="Connector options; their shape depends on `type`.")

    @field_validator("name")
    @classmethod
    def _not_kpi(cls, name: str) -> str:
        # Findings about a KPI are filed under the subject kpi:<id>.
        if name == "kpi":
            raise PydanticCustomError("reserved", "`kpi` is reserved; choose another name")
        return name


class KpiSourceModel(_Section):
    """One place KPI measurements are read from."""

    type: str = Field(description="KPI source type, provided by an installed plugin.")
    options: dict[str, Any] | None = Field(
        None, description="KPI source options; their shape depends on `type`.")


class RulesModel(_Section):
    """Which rule packs run."""

    packs: list[str] | None = Field(
        None, description="Folders or files of rule YAML, relative to the config folder. "
        "Default: `rules` if that folder exists.")
    builtin: bool = Field(True, description="Run the built-in rule packs that plugins ship.")
    disable: list[str] = Field([], description="Rule ids to switch off.")
    params: dict[str, dict[str, str | float | bool]] = Field(
        {}, description="Override drift rules' parameters: {rule id: {parameter: value}}.")


class WritebackModel(_Section):
    """What Tether may write back to trackers."""

    label_prefix: Annotated[str, Hint("lowercase letters, digits, '-' or '_', starting with a "
                                      "letter")] = Field(
        "tether", pattern=LABEL_PREFIX, description="Namespace of the labels Tether manages.")
    comments: bool = Field(True, description="Keep one Tether comment on each flagged task; "
                           "false is the labels-only mode.")
    mentions: bool = Field(True, description="Mention the KPI owner in the comment that raises "
                           "a decision gate (never in routine comments).")
    budget: Whole = Field(30, ge=0, description="Most writes per run, over all sources.")
    source_budget: Whole | None = Field(
        None, ge=0, description="Most writes per source per run; null for no per-source limit.")
    since: date | None = Field(
        None, description="Adoption: only annotate items updated on or after this date "
        "(YYYY-MM-DD); items Tether already annotated stay maintained.")
    templates: str | None = Field(
        None, description="Folder of comment templates (comment.md.j2, resolved.md.j2, or "
        "comment.<markup>.md.j2 for one markup), relative to tether.yaml.")
    kpi_labels: Annotated[KpiLabels, BeforeValidator(yaml_off)] = Field(
        "open", description="Which items carry a <prefix>:kpi:<id> label per linked KPI: open "
        "items, all items (closed ones keep the label but never get a new one), or off.")


class StateModel(_Section):
    """Where run history and measurements are kept."""

    url: str | None = Field(
        None, description="SQLAlchemy database URL. Default: sqlite:///<config folder>/.tether/"
        "state.db")
    retention_days: Whole = Field(
        180, ge=1, description="Days of run history, write ledger and cleared findings to keep.")


_DEFAULT = Thresholds()
Share = Annotated[float, BeforeValidator(not_bool), Hint("a number from 0 to 1, like 0.75")]


class StatusModel(_Section):
    """When a KPI counts as at risk or off track (see README, "KPIs and their status")."""

    off_track_below: Share = Field(
        _DEFAULT.off_track_below, ge=0, le=1, description="Off track when the forecast reaches "
        "less than this share of the planned change by the deadline [ServiceNow SPM: 75].")
    at_risk_below: Share = Field(
        _DEFAULT.at_risk_below, ge=0, le=1, description="At risk when the forecast reaches "
        "less than this share [ServiceNow SPM: 90].")
    pace_off_track_below: Number = Field(
        _DEFAULT.pace_off_track_below, ge=0, allow_inf_nan=False, description="Off track when "
        "attainment is below this share of what the expected path asks for now [Oboard: 0.4].")
    pace_at_risk_below: Number = Field(
        _DEFAULT.pace_at_risk_below, ge=0, allow_inf_nan=False, description="At risk when "
        "attainment is below this share of the expected [Oboard: 0.7].")
    min_points: Whole = Field(_DEFAULT.min_points, ge=4, description="Fewest measurements "
                              "for a trend; fewer and the status is unknown.")
    window: Whole = Field(_DEFAULT.window, ge=4, description="The trend is fitted over this "
                          "many latest measurements.")
    tolerance_share: Annotated[float, BeforeValidator(not_bool), Hint(
        "a number above 0 and at most 1, like 0.1")] = Field(
        _DEFAULT.tolerance_share, gt=0, le=1, description="Default tolerance band: this share "
        "of |target - baseline| either side of the expected path.")
    flat_share: Share = Field(
        _DEFAULT.flat_share, ge=0, le=1, description="A trend moving less than this share of "
        "the planned change over the KPI's window is flat.")
    horizon_days: Whole = Field(_DEFAULT.horizon_days, ge=1, description="Band KPIs without a "
                                "deadline are forecast this many days ahead.")
    noise_t: Number = Field(_DEFAULT.noise_t, ge=0, allow_inf_nan=False, description="A slope "
                            "within this many standard errors of zero (from the series' own "
                            "scatter) is flat.")


_KEYS = EntityKeys()


class EntitiesModel(_Section):
    """What makes two items touch the same thing (conflict and guardrail signals)."""

    # Defaults by keyword: mypy sees a positional one as no default, and this model is built
    # with no arguments (JudgementModel's default).
    labels: list[Annotated[str, Field(min_length=1)]] = Field(
        default=list(_KEYS.labels), description="Label or tag patterns naming an entity, like "
        "`segment:*` or `customer:*` (`*` any text; compared without case).")
    components: bool = Field(default=_KEYS.components, description="Items sharing a component "
                             "touch the same thing.")
    fields: list[Annotated[str, Field(min_length=1)]] = Field(
        default=list(_KEYS.fields),
        description="Custom fields naming an entity (compared without case).")
    links: bool = Field(default=_KEYS.links, description="Linked items touch the same thing.")


class JudgementModel(_Section):
    """Settings of the portfolio aggregates behind the drift signals."""

    window_days: Whole = Field(Judgement().window_days, ge=7, description="no_impact's trailing "
                               "window in days, ending lag_days before now.")
    entities: EntitiesModel = Field(EntitiesModel(), description="Entity keys that conflict and "
                                    "guardrail join items on.")


_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}


def _seconds(value: Any) -> Any:
    """A duration: seconds as a number, or text like 30s, 15m or 2h."""
    if isinstance(value, bool):
        raise PydanticCustomError("duration", "true/false is not a duration")
    if isinstance(value, str):
        found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", value)
        if found is None:
            raise PydanticCustomError("duration", "not a duration; write it like 30s, 15m or 2h")
        return float(found[1]) * _UNITS[found[2]]
    return value


Duration = Annotated[float, BeforeValidator(_seconds), Hint("a duration like 30s, 15m or 2h"),
                     WithJsonSchema({"anyOf": [
                         {"type": "number", "minimum": 0},
                         {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*[smh]?\s*$"}]})]


def _every(value: Any) -> Any:
    """An interval (a duration of at least 10s), or a cron expression (five fields, UTC)."""
    if isinstance(value, str) and len(value.split()) == 5:
        from croniter import croniter

        if not croniter.is_valid(value):
            raise PydanticCustomError("schedule", "not a cron expression croniter can read; "
                                                  "write it like '*/15 * * * *'")
        return value.strip()
    seconds = _seconds(value)
    if isinstance(seconds, int | float) and seconds < 10:
        raise PydanticCustomError("schedule", "at least 10s apart")
    return seconds


Every = Annotated[float | str, BeforeValidator(_every),
                  Hint("an interval like 15m, or a cron expression like '*/15 * * * *'")]


class ServeModel(_Section):
    """How `tether serve` runs (its command-line options override these)."""

    every: Every = Field(900.0, description="When scheduled passes run: an interval like 15m "
                         "(at least 10s), or a cron expression like '*/15 * * * *' (UTC).")
    kpis_every: Every | None = Field(None, description="Read the KPI sources on a schedule of "
                                     "their own too (a pass that pulls no tracker), like 1h or "
                                     "'0 6 * * *'. Default: only with the scheduled passes.")
    debounce: Duration = Field(5.0, ge=0, description="How long a burst of webhooks settles "
                               "before its pass runs.")
    max_body: Whole = Field(1_048_576, ge=1024, description="Largest webhook delivery taken, "
                            "in bytes.")
    report_token_env: Annotated[str, Hint("an environment variable's name, like "
                                          "TETHER_REPORT_TOKEN")] = Field(
        "TETHER_REPORT_TOKEN", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="The environment variable holding the token that opens the live report "
        "(no token: no report).")
    kpi_token_env: Annotated[str, Hint("an environment variable's name, like "
                                       "TETHER_KPI_TOKEN")] = Field(
        "TETHER_KPI_TOKEN", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="The environment variable holding the token that lets a system record a "
        "KPI measurement with POST /kpis/<id>/measurements (no token: no such endpoint).")


_RATE = r"^\s*\d+\s*/\s*(\d+\s*s|second|minute|hour)\s*$"


class WorkersModel(_Section):
    """How passes spread over Celery workers (`tether worker`) when a broker is set."""

    broker_env: Annotated[str, Hint("an environment variable's name, like TETHER_BROKER_URL")] \
        = Field("TETHER_BROKER_URL", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description=(
            "The environment variable holding the broker's URL (redis://host:6379/0). When it "
            "is set, `tether sync` and `tether serve` hand their passes to the workers; unset, "
            "every pass runs in the process that starts it."))
    queue: Annotated[str, Hint("a queue name like tether")] = Field(
        "tether", pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="The Celery queue Tether's work units go to.")
    visibility_timeout: Duration = Field(3600.0, ge=1, description=(
        "How long a unit taken by a worker that died stays invisible before another worker "
        "takes it again (Redis broker). Longer than your slowest unit."))
    retries: Whole = Field(3, ge=0, le=20, description=(
        "How often a unit that met a transient tracker error is tried again, with backoff."))
    rate_limits: dict[str, Annotated[str, Field(pattern=_RATE),
                                     Hint("a rate like 5000/hour, 1500/minute or 100/10s")]] = Field(
        default_factory=dict, description=(
            "Requests per window each source's token may spend across all workers, like "
            "{github: 5000/hour}; default: the tracker's published limit."))
    assess_queue: Annotated[str | None, Hint("a queue name like tether-assess")] = Field(
        None, pattern=r"^[A-Za-z0-9_.-]{1,64}$", description=(
            "A queue of its own for the assessment, the one unit that reads the whole "
            "portfolio, so it can run on a larger machine (`tether worker --queues "
            "tether-assess` there); default: `queue`."))


class KpiFileModel(_Section):
    kpis: list[Any]

