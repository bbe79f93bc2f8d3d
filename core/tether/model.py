"""The domain model shared by every pipeline stage: plain, mostly frozen dataclasses.

The ones a portfolio holds by the hundred thousand (tasks, their links, mappings, findings)
have slots: no per-instance ``__dict__`` (about 90 bytes less per task)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

STATUS_CATEGORIES = ("todo", "in_progress", "done")


@dataclass(frozen=True, slots=True)
class Link:
    """A typed link from one task to another (``blocks``, ``relates to``, ...)."""

    type: str
    target: str  # key of the other task, in the same source


@dataclass(frozen=True, slots=True)
class Task:
    """One work item from one source, normalised so rules never see tracker shapes."""

    source: str
    key: str
    title: str
    url: str = ""
    body: str = ""
    type: str = ""
    status: str = ""
    status_category: str = "todo"  # one of STATUS_CATEGORIES
    assignee: str | None = None
    project: str = ""
    labels: tuple[str, ...] = ()
    components: tuple[str, ...] = ()
    parent: str | None = None
    epic: str | None = None
    links: tuple[Link, ...] = ()
    estimate: float | None = None
    created: datetime | None = None
    updated: datetime | None = None
    resolved: datetime | None = None
    custom: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def ref(self) -> str:
        """Globally unique reference: ``<source>:<key>``."""
        return f"{self.source}:{self.key}"


DIRECTIONS = ("up", "down", "band")
KPI_LIFECYCLES = ("active", "paused", "achieved", "missed", "dropped", "retired")


@dataclass(frozen=True)
class Checkpoint:
    """An interim target: the value the KPI should have reached by ``at``."""

    at: datetime
    value: float


@dataclass(frozen=True)
class Guardrail:
    """Another KPI that must stay at or above ``floor`` and/or at or below ``ceiling`` while
    this one is pushed."""

    kpi: str
    floor: float | None = None
    ceiling: float | None = None

    def crossed(self, value: float) -> bool:
        """True when ``value`` is outside the guardrail's limits."""
        return ((self.floor is not None and value < self.floor)
                or (self.ceiling is not None and value > self.ceiling))


@dataclass(frozen=True)
class KPI:
    """A strategic outcome that work should move, as declared in the KPI file.

    Only ``id`` and ``name`` are required; every other field has a neutral default, so
    ``KPI("nps", "NPS")`` is a valid (if status-less) KPI. ``owner`` is the decision-maker's
    name; ``owner_handles`` how each tracker (by source name or type) knows that person.
    ``direction`` is "up", "down" or "band" (then ``band`` holds (low, high)).
    """

    id: str
    name: str
    lifecycle: str = "active"  # one of KPI_LIFECYCLES
    weight: float = 1.0  # >= 0; 0 = tracked but unweighted
    owner: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)  # x-* keys
    owner_handles: dict[str, str] = field(default_factory=dict, hash=False)
    objective: str | None = None  # parent KPI id
    unit: str = ""
    direction: str = "up"  # one of DIRECTIONS
    band: tuple[float, float] | None = None  # (low, high) when direction == "band"
    baseline: float | None = None
    baseline_date: datetime | None = None
    target: float | None = None
    deadline: datetime | None = None
    interim: tuple[Checkpoint, ...] = ()  # sorted by date
    stake: float | None = None  # money at stake, in ``currency``
    currency: str | None = None
    lifecycle_changed: datetime | None = None
    achieved_on: datetime | None = None  # when the target was reached, if it was
    retired_on: datetime | None = None  # when it was taken out of the portfolio, if it was
    lag_days: int = 0  # how long work takes to show in the number
    tolerance: float | None = None  # +/- around the expected path; None = the status default
    guardrails: tuple[Guardrail, ...] = ()
    tradeoffs: tuple[str, ...] = ()  # KPI ids that compete for the same entities
    anchors: dict[str, str] = field(default_factory=dict, hash=False)  # source name -> item key
    measurements: tuple[Measurement, ...] = field(default=(), compare=False, repr=False)

    @property
    def is_active(self) -> bool:
        return self.lifecycle == "active"

    @property
    def closed_on(self) -> datetime | None:
        """When a closed KPI closed: the earliest of the dates it carries (achieved, then
        retired, is closed from the day it was achieved)."""
        dates = [d for d in (self.lifecycle_changed, self.achieved_on, self.retired_on) if d]
        return min(dates) if dates and not self.is_active else None

    @property
    def is_band(self) -> bool:
        return self.direction == "band"

    def handle(self, source: str, source_type: str | None = None) -> str | None:
        """The owner's handle in tracker ``source`` (by name, then by type), if declared."""
        found = self.owner_handles.get(source)
        if found is None and source_type is not None:
            found = self.owner_handles.get(source_type)
        return found


@dataclass(frozen=True)
class Measurement:
    """One observed value of a KPI at a point in time."""

    kpi: str
    at: datetime
    value: float


@dataclass(frozen=True, slots=True)
class Mapping:
    """A link from a task to a KPI, made by one mapping rule."""

    task: str  # Task.ref
    kpi: str
    rule_id: str
    weight: float
    reason: str


@dataclass(frozen=True, slots=True)
class Finding:
    """A drift signal raised on a task or a KPI by one drift rule."""

    signal: str
    severity: str  # info, warning or critical
    subject: str  # Task.ref, or "kpi:<id>"
    reason: str
    rule_id: str
    value_at_risk: float = 0.0
    label: str | None = None  # label suffix this signal puts on the task, if any
    advice: str = ""  # what to do next, in one line


@dataclass(frozen=True)
class Annotation:
    """What Tether wants one task to show: its namespace labels and its one comment."""

    task: str  # Task.ref
    labels: frozenset[str]
    comment: str | None
    why: dict[str, str] = field(default_factory=dict, compare=False, hash=False)  # label -> reason
    comment_why: str = ""  # which findings the comment reports, or that they cleared
    value_at_risk: float = 0.0  # of the findings shown, to order writes under a budget
    verdict: str = ""  # fingerprint of the labels and findings: what a person's override waits on


@dataclass(frozen=True)
class Written:
    """What Tether knows it wrote on one item, kept in the state store: the labels it
    placed and the comment it kept, each under the verdict it stood for (so a person's
    removal is respected until the verdict changes), and the ``updated`` stamp its own
    last write left (so that write is not mistaken for activity)."""

    labels_verdict: str = ""
    labels: frozenset[str] = frozenset()
    comment_verdict: str = ""
    comment_id: str | None = None
    comment_gone: bool = False  # a person deleted ``comment_id``
    held: frozenset[str] = frozenset()  # kept off after a person removed it: "label:<name>", "comment"
    unmasked: bool = False  # Tether wrote since the last pull, which will learn ``own_updated``
    own_updated: datetime | None = None  # the item's ``updated`` right after Tether's write
    activity: datetime | None = None  # its ``updated`` before that write: the real activity


@dataclass(frozen=True)
class CurrentAnnotation:
    """What a task shows now: its Tether-namespace labels and Tether's comment, if any."""

    labels: frozenset[str] = frozenset()
    comment: str | None = None  # the body as Tether wrote it, when the tracker keeps it verbatim
    comment_id: str | None = None
    comment_digest: str | None = None  # render.digest of that body, for trackers that reformat it


class OpKind(StrEnum):
    ADD_LABEL = "add_label"
    REMOVE_LABEL = "remove_label"
    CREATE_COMMENT = "create_comment"
    UPDATE_COMMENT = "update_comment"


@dataclass(frozen=True)
class WriteOp:
    """One write to one task in one tracker; ``value`` is a label or a comment body."""

    source: str
    key: str
    kind: OpKind
    value: str
    reason: str
    comment_id: str | None = None
    value_at_risk: float = 0.0

    @property
    def task(self) -> str:
        return f"{self.source}:{self.key}"


@dataclass(frozen=True)
class OpResult:
    """The outcome of one WriteOp as the connector saw it."""

    op: WriteOp
    ok: bool
    error: str | None = None
    comment_id: str | None = None
    # UPDATE_COMMENT only: the comment no longer exists (a person deleted it), so nothing
    # was written; the planner then respects the deletion instead of writing a new one.
    gone: bool = False
