"""`tether rules diff`: what a proposed change to the rule packs would change in the verdicts.

The whole portfolio, as last pulled (the state store's snapshots and measurements; no tracker
is asked and nothing is written or recorded), is judged twice as of one moment: with the
workspace's rules and with the proposed ones. Per item (and KPI), the mappings and findings
that would appear (+), disappear (-) or read differently (~)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from tether.config.load import CONFIG_NAME, load_config
from tether.errors import TetherError
from tether.model import Finding, Mapping
from tether.pipeline.assess import examine
from tether.report.data import known_measurements
from tether.report.formatting import natural
from tether.rules.loader import RuleBook, load_rulebook
from tether.rules.packs import RulePackRef
from tether.store.db import Store
from tether.workspace import Workspace, rule_packs

ADDED, REMOVED, CHANGED = "+", "-", "~"
_T = TypeVar("_T", Mapping, Finding)


@dataclass(frozen=True)
class Change:
    """One mapping or finding that appears, disappears or changes its text or weight."""

    mark: str  # ADDED, REMOVED or CHANGED
    mapping: Mapping | None = None  # the proposed one (the current one when removed)
    finding: Finding | None = None
    before: Mapping | Finding | None = None  # for CHANGED: the current one


@dataclass
class SubjectDiff:
    """The changes on one item (SOURCE:KEY) or KPI (kpi:ID)."""

    subject: str
    title: str
    changes: list[Change] = field(default_factory=list)


@dataclass
class RulesDiff:
    as_of: datetime
    against: Path
    current: dict[str, str]  # pack name -> content hash
    proposed: dict[str, str]
    items: int  # items judged
    subjects: list[SubjectDiff]

    def counts(self) -> dict[str, int]:
        """How many mappings and findings appear, disappear and change, and on how many items
        and KPIs."""
        out = {f"{kind}_{what}": 0 for kind in ("mappings", "findings")
               for what in ("added", "removed", "changed")}
        names = {ADDED: "added", REMOVED: "removed", CHANGED: "changed"}
        for s in self.subjects:
            for c in s.changes:
                out[f"{'mappings' if c.mapping else 'findings'}_{names[c.mark]}"] += 1
        out["kpis_changed"] = sum(s.subject.startswith("kpi:") for s in self.subjects)
        out["items_changed"] = len(self.subjects) - out["kpis_changed"]
        return out

    @property
    def changed(self) -> bool:
        return bool(self.subjects)


def proposed_rules(ws: Workspace, against: Path) -> RuleBook:
    """The rules a change proposes. ``against`` is a folder of rule files that takes the place
    of the workspace's own packs (the built-in packs, ``rules.disable`` and ``rules.params``
    stay as tether.yaml sets them); or a workspace folder with a tether.yaml, whose ``rules:``
    section then decides everything (its packs, ``builtin``, ``disable``, ``params``). KPIs,
    sources and judgement settings are always the workspace's. Rule errors raise InvalidInput,
    each with its file and line."""
    against = Path(against)
    if not against.exists():
        raise TetherError(f"--against {against}: no such folder; point it at the proposed rules "
                          "(a folder of rule files, or a workspace folder with a tether.yaml).")
    cfg = ws.config
    if against.is_dir() and (against / CONFIG_NAME).is_file():
        rules = load_config(against, ws.plugins).rules
        packs = rule_packs(replace(cfg, rules=rules), ws.plugins)
    else:
        rules = cfg.rules
        packs = [p for p in rule_packs(cfg, ws.plugins) if p.path not in cfg.rules.packs]
        packs.append(RulePackRef(against.resolve().name or str(against), against.resolve()))
    return load_rulebook(packs, cfg.kpis, rules.disable, rules.params)


def diff_rules(ws: Workspace, store: Store, proposed: RuleBook, against: Path, now: datetime
               ) -> RulesDiff:
    """Judge the last pull as of ``now`` with the workspace's rules and with ``proposed``."""
    if not store.runs(1):
        raise TetherError(f"Nothing has been pulled yet for {ws.config.file}; run `tether plan` "
                          "first (it pulls and writes nothing), then compare the rules.")
    tasks = [t for t in store.load_tasks() if t.source in ws.connectors]
    measurements = known_measurements(ws.config.kpis, store.measurements())
    before = examine(ws, tasks, measurements, now)
    after = examine(ws, tasks, measurements, now, rules=proposed)
    titles = {t.ref: t.title for t in tasks} | {f"kpi:{k.id}": k.name for k in ws.config.kpis}
    subjects: dict[str, SubjectDiff] = {}

    def note(subject: str, change: Change) -> None:
        subjects.setdefault(subject, SubjectDiff(subject, titles.get(subject, ""))).changes.append(
            change)

    def compare(old: dict[tuple[str, str, str], _T], new: dict[tuple[str, str, str], _T],
                same: Callable[[_T, _T], bool]) -> Iterator[tuple[str, str, _T, _T | None]]:
        """(subject, mark, the proposed one (the current one when removed), the current one
        when changed) for each key whose item appears, disappears or changes."""
        for key in sorted(old.keys() | new.keys()):
            was, proposed_ = old.get(key), new.get(key)
            if was is None:
                assert proposed_ is not None  # the key is in one of the two
                yield key[0], ADDED, proposed_, None
            elif proposed_ is None:
                yield key[0], REMOVED, was, None
            elif not same(was, proposed_):
                yield key[0], CHANGED, proposed_, was

    for subject, mark, m, was_m in compare(
            {(m.task, m.kpi, m.rule_id): m for m in before.mappings},
            {(m.task, m.kpi, m.rule_id): m for m in after.mappings},
            lambda a, b: a.weight == b.weight):
        note(subject, Change(mark, mapping=m, before=was_m))
    for subject, mark, f, was_f in compare(
            {(f.subject, f.signal, f.rule_id): f for f in before.findings},
            {(f.subject, f.signal, f.rule_id): f for f in after.findings},
            lambda a, b: (a.severity, a.reason, a.advice) == (b.severity, b.reason, b.advice)):
        note(subject, Change(mark, finding=f, before=was_f))
    ordered = sorted(subjects.values(), key=lambda s: (s.subject.startswith("kpi:"),
                                                       natural(s.subject)))
    return RulesDiff(now, against, ws.rules.packs, proposed.packs, len(tasks), ordered)
