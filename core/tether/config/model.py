"""A valid tether.yaml as plain frozen dataclasses: what the rest of Tether reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from tether import connector, model
from tether.kpi.trend import Thresholds
from tether.rules.signals import Judgement


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
class ServeConfig:
    """How `tether serve` runs (``serve:`` in tether.yaml)."""

    every: float | str = 900.0  # seconds between scheduled passes, or a cron expression
    debounce: float = 5.0  # seconds a burst of webhooks settles
    max_body: int = 1_048_576  # bytes: larger deliveries are refused
    report_token_env: str = "TETHER_REPORT_TOKEN"
    kpi_token_env: str = "TETHER_KPI_TOKEN"
    kpis_every: float | str | None = None  # KPI sources on their own schedule too


@dataclass(frozen=True)
class WorkersConfig:
    """How passes spread over Celery workers (``workers:`` in tether.yaml)."""

    broker_env: str = "TETHER_BROKER_URL"
    queue: str = "tether"
    visibility_timeout: float = 3600.0
    retries: int = 3
    rate_limits: tuple[tuple[str, str], ...] = ()  # (source name, "N/period")
    assess_queue: str | None = None  # the assessment's own queue (None: ``queue``)

    @property
    def queues(self) -> tuple[str, ...]:
        """Every queue the units go to."""
        return (self.queue,) + ((self.assess_queue,) if self.assess_queue else ())


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
    serve: ServeConfig = ServeConfig()
    workers: WorkersConfig = WorkersConfig()

