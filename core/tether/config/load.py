"""Load and validate tether.yaml: every problem at once, each located in its file."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from datetime import UTC, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether import connector, model
from tether.config.checker import Checker, duplicates
from tether.config.model import (
    Config,
    KpiSourceConfig,
    RulesConfig,
    ServeConfig,
    SourceConfig,
    WorkersConfig,
    WritebackConfig,
)
from tether.config.sections import (
    JudgementModel,
    KpiFileModel,
    KpiSourceModel,
    RulesModel,
    ServeModel,
    SourceModel,
    StateModel,
    StatusModel,
    TopModel,
    WorkersModel,
    WritebackModel,
)
from tether.errors import InvalidInput, Problem
from tether.kpi import definitions as kpis
from tether.kpi.trend import Thresholds
from tether.pipeline.render import check_templates
from tether.rules.entities import EntityKeys
from tether.rules.signals import Judgement

if TYPE_CHECKING:
    from tether.plugins import Plugins


CONFIG_NAME = "tether.yaml"

NOT_FOUND = "no tether.yaml here; run `tether init` or pass --config PATH"

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
    serve = check.validate(ServeModel, ("serve",), _section(data, "serve", {}))
    workers = check.validate(WorkersModel, ("workers",), _section(data, "workers", {}))
    if workers is not None:
        for name in sorted(workers.rate_limits.keys() - _source_names(data).keys()):
            check.add(("workers", "rate_limits", name),
                          f"no source is named {name!r}; name one of `sources:`")
    templates = _templates(check, wb.templates, base_dir) if wb is not None else None

    if problems or wb is None or state is None or rules is None or thresholds is None \
            or judgement is None or serve is None or workers is None:
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
        serve=ServeConfig(serve.every, serve.debounce, serve.max_body, serve.report_token_env,
                          serve.kpi_token_env, serve.kpis_every),
        workers=WorkersConfig(workers.broker_env, workers.queue, workers.visibility_timeout,
                              workers.retries, tuple(sorted(workers.rate_limits.items())),
                              workers.assess_queue),
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


