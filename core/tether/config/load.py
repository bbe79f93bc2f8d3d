"""Load and validate tether.yaml: every problem at once, each located in its file."""

from __future__ import annotations

import difflib
import os
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from functools import lru_cache
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from pydantic.json_schema import models_json_schema
from pydantic_core import PydanticCustomError

from tether import connector, model
from tether.config.yamlsrc import Doc, PathKey, load_file
from tether.errors import InvalidInput, Problem
from tether.kpi.status import Thresholds
from tether.rules.entities import EntityKeys
from tether.rules.signals import Judgement

if TYPE_CHECKING:
    from tether.plugins import Plugins

CONFIG_NAME = "tether.yaml"
SOURCE_NAME = r"^[a-z0-9][a-z0-9_-]*$"
LABEL_PREFIX = r"^[a-z][a-z0-9_-]*$"
NOT_FOUND = "no tether.yaml here; run `tether init` or pass --config PATH"
# Secrets shorter than this are not scrubbed from messages: it would garble ordinary words.
_MIN_REDACT = 4


@dataclass(frozen=True)
class Hint:
    """Field metadata: how a problem message describes the values a field accepts."""

    text: str


def _not_bool(value: Any) -> Any:
    # YAML `true` would otherwise pass as the number 1.
    if isinstance(value, bool):
        raise PydanticCustomError("not_bool", "true/false is not a number")
    return value


def _yaml_off(value: Any) -> Any:
    # YAML reads a bare `off` as false.
    return "off" if value is False else value


Whole = Annotated[int, BeforeValidator(_not_bool)]
Number = Annotated[float, BeforeValidator(_not_bool)]
NAME_HINT = Hint("lowercase letters, digits, '-' or '_', starting with a letter or digit")


# -- public result ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceConfig:
    name: str
    type: str
    options: connector.Options


@dataclass(frozen=True)
class KpiSourceConfig:
    type: str
    options: connector.Options


@dataclass(frozen=True)
class RulesConfig:
    packs: tuple[Path, ...]
    builtin: bool
    disable: frozenset[str]
    params: dict[str, dict[str, Any]] = field(default_factory=dict)


KpiLabels = Literal["open", "all", "off"]


@dataclass(frozen=True)
class WritebackConfig:
    label_prefix: str
    comments: bool
    mentions: bool
    budget: int
    source_budget: int | None
    since: datetime | None = None  # adoption: leave items last updated before this alone
    templates: Path | None = None  # a folder of comment templates overriding the built-in ones
    kpi_labels: KpiLabels = "open"  # which items carry a <prefix>:kpi:<id> label per linked KPI


@dataclass(frozen=True)
class Config:
    """A valid tether.yaml; relative paths are already resolved against ``base_dir``."""

    file: Path
    base_dir: Path
    sources: tuple[SourceConfig, ...]
    kpis: tuple[model.KPI, ...]
    kpi_sources: tuple[KpiSourceConfig, ...]
    rules: RulesConfig
    writeback: WritebackConfig
    state_url: str
    status: Thresholds = Thresholds()
    retention_days: int = 180
    judgement: Judgement = Judgement()


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
    kpi_labels: Annotated[KpiLabels, BeforeValidator(_yaml_off)] = Field(
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
Share = Annotated[float, BeforeValidator(_not_bool), Hint("a number from 0 to 1, like 0.75")]


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
    tolerance_share: Annotated[float, BeforeValidator(_not_bool), Hint(
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

    labels: list[Annotated[str, Field(min_length=1)]] = Field(
        list(_KEYS.labels), description="Label or tag patterns naming an entity, like "
        "`segment:*` or `customer:*` (`*` any text; compared without case).")
    components: bool = Field(_KEYS.components, description="Items sharing a component touch "
                             "the same thing.")
    fields: list[Annotated[str, Field(min_length=1)]] = Field(
        list(_KEYS.fields), description="Custom fields naming an entity (compared without case).")
    links: bool = Field(_KEYS.links, description="Linked items touch the same thing.")


class JudgementModel(_Section):
    """Settings of the portfolio aggregates behind the drift signals."""

    window_days: Whole = Field(Judgement().window_days, ge=7, description="no_impact's trailing "
                               "window in days, ending lag_days before now.")
    entities: EntitiesModel = Field(EntitiesModel(), description="Entity keys that conflict and "
                                    "guardrail join items on.")


class KpiFileModel(_Section):
    kpis: list[Any]


# -- located validation ------------------------------------------------------------------------

_VAR = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TYPE_ERRORS = {
    "greater_than", "greater_than_equal", "less_than", "less_than_equal", "multiple_of",
    "literal_error", "enum", "string_pattern_mismatch", "string_too_short", "string_too_long",
    "too_short", "too_long", "int_from_float", "finite_number", "not_bool",
}


@dataclass
class Checker:
    """One loaded file, the problems found so far, and which values came from the environment."""

    doc: Doc
    problems: list[Problem]
    secret_paths: set[PathKey] = field(default_factory=set)
    secret_values: set[str] = field(default_factory=set)
    broken: set[PathKey] = field(default_factory=set)

    @classmethod
    def load(cls, path: Path, env: Mapping[str, str], problems: list[Problem]) -> Checker:
        """Parse ``path`` and interpolate ``${VAR}``; raises InvalidInput on YAML syntax errors."""
        check = cls(load_file(path), problems)
        check.doc.data = check._interpolate(check.doc.data, (), env)
        return check

    def add(self, path: PathKey, message: str) -> None:
        if not any(path[: len(b)] == b for b in self.broken):
            self.problems.append(self.doc.problem(path, message))

    def value(self, path: PathKey) -> Any:
        """The (interpolated) value at ``path``, or None when there is none."""
        value = self.doc.data
        for part in path:
            try:
                value = value[part]
            except (KeyError, IndexError, TypeError):
                return None
        return value

    def show(self, path: PathKey, value: Any) -> str:
        """``value`` quoted for a message, unless it came from the environment (may be secret)."""
        return "(value from the environment)" if path in self.secret_paths else f"'{value}'"

    def validate(self, tp: Any, path: PathKey, data: Any, noun: str = "key") -> Any:
        """``data`` validated as ``tp``, or None after adding one located problem per error."""
        try:
            return _adapter(tp).validate_python(data)
        except ValidationError as exc:
            seen: set[tuple[PathKey, str]] = set()
            for err in exc.errors(include_url=False):
                loc = self._norm(path, err["loc"], err["type"])
                message = self._message(tp, loc, err, (*path, *loc), noun)
                if ((*path, *loc), message) not in seen:
                    seen.add(((*path, *loc), message))
                    self.add((*path, *loc), message)
            return None

    def _norm(self, path: PathKey, loc: tuple, kind: str) -> PathKey:
        # Drop union-member tags pydantic puts in ``loc``: they are not keys in the file.
        out: list[str | int] = []
        for i, part in enumerate(loc):
            last = i == len(loc) - 1
            if (*path, *out, part) in self.doc.marks or (last and kind == "missing"):
                out.append(part)
        return tuple(out)

    def _message(self, tp: Any, loc: PathKey, err: Any, full: PathKey, noun: str) -> str:
        kind = err["type"]
        if kind == "missing":
            return f"'{loc[-1]}' is required; add it" if loc else "a required value is missing"
        if kind == "extra_forbidden":
            owner = _model_of(_resolve(tp, loc[:-1])[0])
            return unknown_key(str(loc[-1]), _field_names(owner) if owner else [], noun)
        ann, meta = _resolve(tp, loc)
        desc = describe(ann, meta) if ann is not None else None
        if desc and (kind in _TYPE_ERRORS or kind.endswith(("_type", "_parsing"))):
            message = f"must be {desc}"
            value = err.get("input")
            if kind == "literal_error" and isinstance(value, str) and full not in self.secret_paths:
                allowed = [str(a) for a in get_args(_unannotate(ann)[0])]
                close = difflib.get_close_matches(value, allowed, n=1)
                message += f"; did you mean '{close[0]}'?" if close else ""
            return message
        return self._redact(_plain(err["msg"]))

    def _redact(self, text: str) -> str:
        for secret in sorted(self.secret_values, key=len, reverse=True):
            if len(secret) >= _MIN_REDACT:
                text = text.replace(secret, "***")
        return text

    def _interpolate(self, value: Any, path: PathKey, env: Mapping[str, str]) -> Any:
        if isinstance(value, dict):
            return {k: self._interpolate(v, (*path, k), env) for k, v in value.items()}
        if isinstance(value, list):
            return [self._interpolate(v, (*path, i), env) for i, v in enumerate(value)]
        if not isinstance(value, str) or "${" not in value:
            return value
        used = False

        def sub(match: re.Match[str]) -> str:
            nonlocal used
            name = match.group(1)
            if match.group(0) == "$${":
                return "${"
            if name is None or not _VAR_NAME.fullmatch(name):
                self.add(path, "'${' must start a variable like ${JIRA_TOKEN}; "
                         "write '$${' for a literal '${'")
            elif name not in env:
                self.add(path, f"environment variable {name} is not set; "
                         "export it before running tether")
            else:
                used = True
                if env[name]:
                    self.secret_values.add(env[name])
                return env[name]
            self.broken.add(path)
            return ""

        out = _VAR.sub(sub, value)
        if used:
            self.secret_paths.add(path)
        return out


@lru_cache(maxsize=256)
def _adapter(tp: Any) -> TypeAdapter[Any]:
    return TypeAdapter(tp)


def unknown_key(key: str, known: list[str], noun: str = "key") -> str:
    """A polite message for a key that is not allowed, with the nearest known one."""
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f"unknown {noun} '{key}'; did you mean '{close[0]}'?"
    return f"unknown {noun} '{key}'; " + (
        f"use one of: {', '.join(sorted(known))}" if known else "remove it")


def _plain(msg: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return msg[:1].lower() + msg[1:]


def _unannotate(tp: Any, meta: tuple = ()) -> tuple[Any, tuple]:
    while get_origin(tp) is Annotated:
        meta = (*meta, *tp.__metadata__)
        tp = get_args(tp)[0]
    return tp, meta


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def _model_of(tp: Any) -> type[BaseModel] | None:
    tp = _unannotate(tp)[0]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    if _is_union(tp):
        return next((m for a in get_args(tp) if (m := _model_of(a))), None)
    return None


def _field_names(m: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in m.model_fields.items()]


def _resolve(tp: Any, loc: PathKey) -> tuple[Any, tuple]:
    """The annotation and metadata of the field at ``loc`` inside ``tp``; (None, ()) if unknown."""
    meta: tuple = ()
    for part in loc:
        tp, _ = _unannotate(tp)
        if _is_union(tp):  # step into the member that has children (Optional[Model], list | str)
            tp = next((a for a in get_args(tp) if _model_of(a) or get_origin(a)), tp)
        owner = _model_of(tp)
        origin = get_origin(tp) or tp
        if owner is not None and isinstance(part, str):
            fields = {f.alias or n: f for n, f in owner.model_fields.items()}
            if part not in fields:
                extra = _extra_type(owner)
                if extra is None:
                    return None, ()
                tp, meta = extra, ()
                continue
            tp, meta = fields[part].annotation, tuple(fields[part].metadata)
        elif origin in (list, tuple, set, frozenset) and isinstance(part, int):
            tp, meta = (get_args(tp) or (Any,))[0], ()
        elif origin is dict:
            tp, meta = (get_args(tp) or (Any, Any))[-1], ()
        else:
            return None, ()
    return tp, meta


def _extra_type(m: type[BaseModel]) -> Any:
    """The value type a model declares for its extra keys (``__pydantic_extra__: dict[str, X]``)."""
    if "__pydantic_extra__" not in m.__dict__.get("__annotations__", {}):
        return None  # BaseModel's own declaration says nothing about the values
    try:
        hint = get_type_hints(m, include_extras=True).get("__pydantic_extra__")
    except Exception:  # noqa: BLE001 - an unresolvable hint just means "unknown"
        return None
    return get_args(hint)[-1] if get_origin(hint) is dict else None


def describe(tp: Any, meta: tuple = ()) -> str | None:
    """What values of type ``tp`` look like, in words for a problem message; None if unsure."""
    tp, meta = _unannotate(tp, meta)
    hint = next((m.text for m in meta if isinstance(m, Hint)), None)
    if hint:
        return hint
    if _is_union(tp):
        parts = [describe(a, meta) for a in get_args(tp)]
        return None if None in parts else ", or ".join(p for p in parts if p)
    origin = get_origin(tp) or tp
    if tp is type(None):
        return "null"
    if tp is bool:
        return "true or false"
    if tp in (int, float):
        words = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
        bounds = [f"{sym} {getattr(m, k)}" for m in meta for k, sym in words.items()
                  if getattr(m, k, None) is not None]
        return " ".join(["a whole number" if tp is int else "a number", *bounds])
    if tp is str:
        if any(getattr(m, "min_length", 0) for m in meta):
            return "a non-empty string"
        pattern = next((m.pattern for m in meta if getattr(m, "pattern", None)), None)
        return f"a string matching {pattern}" if pattern else "a string"
    if origin is Literal:
        return "one of: " + ", ".join(str(a) for a in get_args(tp))
    if origin in (list, tuple, set, frozenset):
        item = (get_args(tp) or (Any,))[0]
        return "a list of strings" if item is str else "a list"
    if origin is dict:
        return "a mapping of keys to values"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "a mapping with keys " + ", ".join(_field_names(tp))
    if isinstance(tp, type) and issubclass(tp, PurePath):
        return "a file path"
    return None


# -- loading -----------------------------------------------------------------------------------


def load_config(path: Path, plugins: Plugins, env: Mapping[str, str] | None = None) -> Config:
    """Load and validate ``path`` (a file, or a folder holding tether.yaml); raises InvalidInput."""
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_NAME
    if not path.is_file():
        raise InvalidInput([Problem(str(path), 1, 1, "", NOT_FOUND)])
    env = os.environ if env is None else env
    problems: list[Problem] = []
    check = Checker.load(path, env, problems)
    data = {} if check.doc.data is None else check.doc.data
    if not isinstance(data, dict):
        check.add((), "must be a mapping of keys like `sources:`; run `tether init` for an example")
        raise InvalidInput(problems)
    base_dir = path.parent.resolve()

    check.validate(TopModel, (), data)
    sources = [SourceConfig(name, type_, opts) for name, type_, opts in _typed(
        check, "sources", data.get("sources"), SourceModel, plugins.connector_types(), "source")]
    kpi_defs = _kpis(check, data.get("kpis"), path.parent, env, _source_names(data))
    kpi_sources = [KpiSourceConfig(type_, opts) for _, type_, opts in _typed(
        check, "kpi_sources", _section(data, "kpi_sources", []), KpiSourceModel,
        plugins.kpi_source_types(), "KPI source")]
    rules = _rules(check, data.get("rules"), base_dir)
    wb = check.validate(WritebackModel, ("writeback",), _section(data, "writeback"))
    state = check.validate(StateModel, ("state",), _section(data, "state"))
    if state is not None and state.url is not None:
        _check_url(check, state.url)
    thresholds = _status(check, data.get("status"))
    judgement = check.validate(JudgementModel, ("judgement",), _section(data, "judgement", {}))
    templates = _templates(check, wb.templates, base_dir) if wb is not None else None

    if problems or wb is None or state is None or rules is None or thresholds is None \
            or judgement is None:
        main = str(path)
        raise InvalidInput(sorted(problems, key=lambda p: (p.file != main, p.file, p.line,
                                                           p.column)))
    return Config(
        file=path.resolve(), base_dir=base_dir, sources=tuple(sources), kpis=tuple(kpi_defs),
        kpi_sources=tuple(kpi_sources), rules=rules,
        writeback=WritebackConfig(
            wb.label_prefix, wb.comments, wb.mentions, wb.budget, wb.source_budget,
            datetime.combine(wb.since, time(), UTC) if wb.since else None, templates,
            wb.kpi_labels),
        state_url=state.url or f"sqlite:///{(base_dir / '.tether' / 'state.db').as_posix()}",
        status=thresholds or Thresholds(),
        retention_days=state.retention_days,
        judgement=Judgement(EntityKeys(tuple(judgement.entities.labels),
                                       judgement.entities.components,
                                       tuple(judgement.entities.fields), judgement.entities.links),
                            judgement.window_days),
    )


def _section(data: dict, key: str, empty: Any = None) -> Any:
    # `rules:` with nothing under it means "all defaults", like leaving it out.
    return ({} if empty is None else empty) if data.get(key) is None else data[key]


def _typed(check: Checker, key: str, raw: Any, shape: type[SourceModel] | type[KpiSourceModel],
           known: Mapping[str, Any], what: str) -> list[tuple[str, str, connector.Options]]:
    """Validate a list of ``{type, options}`` items against the plugin types in ``known``."""
    if raw is None and key not in (check.doc.data or {}):
        return []  # a missing `sources:` is reported once, by TopModel
    items = check.validate(list[Any], (key,), raw) or []
    out: list[tuple[str, str, connector.Options]] = []
    if shape is SourceModel:
        duplicates(check, (key,), items, "name", "source name", "give each source its own name")
    for i, item in enumerate(items):
        item_path = (key, i)
        parsed = check.validate(shape, item_path, item)
        # Check type and options even when the name is bad, so all problems show at once.
        type_ = item.get("type") if isinstance(item, dict) else None
        if not isinstance(type_, str):
            continue
        cls = known.get(type_)
        if cls is None:
            where = (*item_path, "type")
            check.add(where, _unknown_type(check.show(where, type_), type_,
                                           where in check.secret_paths, known, what))
            continue
        raw_options = {} if item.get("options") is None else item["options"]
        if not isinstance(raw_options, dict):
            continue
        options = check.validate(cls.options_model, (*item_path, "options"), raw_options,
                                 noun="option")
        if parsed is not None and options is not None:
            out.append((getattr(parsed, "name", ""), type_, options))
    return out


def duplicates(check: Checker, path: PathKey, items: list[Any], key: str, what: str,
               advice: str) -> None:
    """Add a problem for each item whose ``key`` repeats an earlier item's, valid or not."""
    first_line: dict[Any, int] = {}
    for i, item in enumerate(items):
        value = item.get(key) if isinstance(item, dict) else None
        if not isinstance(value, str | int):
            continue
        where = (*path, i, key)
        if value in first_line:
            check.add(where, f"duplicate {what} {check.show(where, value)} (first on line "
                      f"{first_line[value]}); {advice}")
        else:
            first_line[value] = check.doc.where(where)[0]


def _unknown_type(shown: str, value: str, secret: bool, known: Mapping[str, Any],
                  what: str) -> str:
    if not known:
        return f"unknown {what} type {shown}; no plugin providing {what} types is installed"
    close = [] if secret else difflib.get_close_matches(value, list(known), n=1)
    guess = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown {what} type {shown}; {guess}known types: {', '.join(sorted(known))}"


def _source_names(data: dict) -> dict[str, str]:
    """name -> type of every source written with both, valid or not (for KPI cross-checks)."""
    raw = data.get("sources")
    return {s["name"]: s["type"] for s in raw if isinstance(s, dict)
            and isinstance(s.get("name"), str) and isinstance(s.get("type"), str)
            } if isinstance(raw, list) else {}


def _status(check: Checker, raw: Any) -> Thresholds | None:
    status = check.validate(StatusModel, ("status",), {} if raw is None else raw)
    if status is None:
        return None
    for low, high in (("off_track_below", "at_risk_below"),
                      ("pace_off_track_below", "pace_at_risk_below"),
                      ("min_points", "window")):
        if getattr(status, low) > getattr(status, high):
            where = ("status", high if high in (raw or {}) else low)
            check.add(where, f"{high} ({getattr(status, high):g}) must be at least {low} "
                      f"({getattr(status, low):g})")
    return Thresholds(**status.model_dump())


def _kpis(check: Checker, raw: Any, config_dir: Path, env: Mapping[str, str],
          sources: dict[str, str]) -> list[model.KPI]:
    from tether.kpi import definitions as kpis

    if raw is None:
        return []
    if isinstance(raw, list):
        return kpis.parse_kpis(check, ("kpis",), sources)
    if not isinstance(raw, str):
        check.add(("kpis",), "must be a list of KPIs, or the path of a YAML file holding them")
        return []
    file = config_dir / raw
    if not file.is_file():
        check.add(("kpis",), f"KPI file {check.show(('kpis',), raw)} not found; create it or fix "
                  "the path (relative to the folder of tether.yaml)")
        return []
    try:
        kcheck = Checker.load(file, env, check.problems)
    except InvalidInput as exc:
        check.problems.extend(exc.problems)
        return []
    top = {} if kcheck.doc.data is None else kcheck.doc.data
    if kcheck.validate(KpiFileModel, (), top) is None:
        return []
    return kpis.parse_kpis(kcheck, ("kpis",), sources)


def _rules(check: Checker, raw: Any, base_dir: Path) -> RulesConfig | None:
    rules = check.validate(RulesModel, ("rules",), {} if raw is None else raw)
    if rules is None:
        return None
    if rules.packs is None:
        packs = (base_dir / "rules",) if (base_dir / "rules").is_dir() else ()
    else:
        packs = tuple((base_dir / p).resolve() for p in rules.packs)
        for i, (name, full) in enumerate(zip(rules.packs, packs, strict=True)):
            if not full.exists():
                where = ("rules", "packs", i)
                check.add(where, f"rule pack {check.show(where, name)} does not exist; create it "
                          "or fix the path (relative to the folder of tether.yaml)")
    return RulesConfig(packs, rules.builtin, frozenset(rules.disable), rules.params)


def _templates(check: Checker, folder: str | None, base_dir: Path) -> Path | None:
    """The comment template folder, each template compiled now so syntax errors are located."""
    if folder is None:
        return None
    from tether.pipeline.render import check_templates

    where = ("writeback", "templates")
    full = (base_dir / folder).resolve()
    if not full.is_dir():
        check.add(where, f"template folder {check.show(where, folder)} does not exist; create "
                  "it or fix the path (relative to the folder of tether.yaml)")
        return None
    check.problems.extend(check_templates(full))
    return full


def _check_url(check: Checker, url: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(url)
    except ArgumentError:
        # Never echo the URL: it may hold a password.
        check.add(("state", "url"), "not a database URL; use e.g. sqlite:///state.db or "
                  "postgresql://user@host/dbname")


# -- JSON Schema for editors -------------------------------------------------------------------


def config_schema(plugins: Plugins) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of tether.yaml; each item's ``options`` follow its ``type``."""
    from tether.kpi.definitions import KpiModel

    conns = plugins.connector_types()
    ksrcs = plugins.kpi_source_types()
    models = list(dict.fromkeys([
        SourceModel, KpiSourceModel, RulesModel, WritebackModel, StateModel, StatusModel,
        KpiModel,
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
        },
        "$defs": defs,
    }
