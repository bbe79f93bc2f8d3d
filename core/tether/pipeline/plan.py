"""Stage 4, plan: desired annotations diffed against what trackers show, as minimal WriteOps,
holding back what a person removed until the item's verdict changes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from tether.model import KPI, Annotation, CurrentAnnotation, Finding, Mapping, OpKind, Task, WriteOp, Written
from tether.pipeline import memory
from tether.pipeline.pull import read_current
from tether.pipeline.render import Renderer, digest, mention
from tether.store.db import Store
from tether.workspace import Workspace

if TYPE_CHECKING:
    from tether.config.model import KpiLabels

MentionFor = Callable[[KPI], str | None]


def label(prefix: str, *parts: str) -> str:
    """A label in Tether's namespace: ``<prefix>:<part>[:<part>]``."""
    return ":".join((prefix, *parts))


@dataclass
class CommentStyle:
    """How each source's comments are rendered: its markup, and whom a gate may mention."""

    renderer: Renderer = field(default_factory=Renderer)
    markup: dict[str, str] = field(default_factory=dict)  # source -> markup name
    mentions: dict[str, MentionFor] = field(default_factory=dict)  # source -> owner's token

    def comment(self, task: Task, findings: list[Finding], mappings: list[Mapping],
                kpis: dict[str, KPI]) -> str:
        return self.renderer.comment(findings, mappings, kpis,
                                     self.markup.get(task.source, "markdown"),
                                     self.mentions.get(task.source))

    def resolved(self, task: Task) -> str:
        return self.renderer.resolved(self.markup.get(task.source, "markdown"))


def verdict(labels: Iterable[str], findings: Iterable[Finding]) -> str:
    """What a person's override waits on: the labels and which findings (not their numbers)."""
    parts = sorted(labels) + sorted(f"{f.signal}|{f.rule_id}|{f.subject}" for f in findings)
    return digest("\n".join(parts))


def desired_annotations(tasks: Iterable[Task], mappings: Iterable[Mapping],
                        findings: Iterable[Finding], kpis: dict[str, KPI], prefix: str,
                        comments: bool, current: dict[str, CurrentAnnotation],
                        style: CommentStyle | None = None, kpi_labels: KpiLabels = "open"
                        ) -> dict[str, Annotation]:
    """What each task should show: a label per KPI (on the items ``kpi_labels`` names) and
    per labelled signal, one comment. A closed item gets nothing new: what Tether wrote there
    is only cleared or resolved, unless it is the anchor of a KPI with findings (it stands
    for the KPI, not for work)."""
    style = style or CommentStyle()
    maps: dict[str, list[Mapping]] = defaultdict(list)
    for m in mappings:
        maps[m.task].append(m)
    found: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        found[f.subject].append(f)
        for ref in anchor_refs(f.subject, kpis):  # a KPI's findings go on its anchor items
            found[ref].append(f)
    out = {}
    for task in tasks:
        ref = task.ref
        have = current.get(ref, CurrentAnnotation())
        closed = task.status_category == "done"
        why: dict[str, list[str]] = defaultdict(list)
        if kpi_labels == "all" or (kpi_labels == "open" and not closed):
            for m in maps[ref]:
                why[label(prefix, "kpi", m.kpi)].append(m.rule_id)
        for f in found[ref]:
            if f.label:
                why[label(prefix, f.label)].append(f.rule_id)
        comment = None
        if comments and found[ref]:
            comment = style.comment(task, found[ref], maps[ref], kpis)
        elif comments and have.comment_id is not None:
            comment = style.resolved(task)  # findings cleared: say so, keep the history
        if closed and all(f.subject == ref for f in found[ref]):  # no KPI finding anchored here
            # Closed work is left alone: Tether removes its labels and resolves its comment
            # there, but adds and edits nothing.
            why = {name: ids for name, ids in why.items() if name in have.labels}
            if found[ref]:
                comment = None
        reasons = {name: "rule " + ", ".join(sorted(set(ids))) for name, ids in why.items()}
        signals = sorted({f.signal for f in found[ref]})
        comment_why = "findings: " + ", ".join(signals) if signals else "findings cleared"
        out[ref] = Annotation(ref, frozenset(why), comment, reasons, comment_why,
                              sum(f.value_at_risk for f in found[ref]),
                              verdict(why, found[ref]))
    return out


def anchor_refs(subject: str, kpis: dict[str, KPI]) -> list[str]:
    """The items that stand for the KPI a ``kpi:<id>`` subject names (none for tasks)."""
    kind, _, kid = subject.partition(":")
    if kind != "kpi" or kid not in kpis:
        return []
    return [f"{source}:{key}" for source, key in kpis[kid].anchors.items()]


@dataclass
class Plan:
    ops: list[WriteOp] = field(default_factory=list)
    held: list[WriteOp] = field(default_factory=list)  # not sent: a person removed it


HELD_LABEL = "a person removed it; Tether leaves it off until the verdict changes"
HELD_COMMENT = "a person deleted Tether's comment; no new one until the verdict changes"


def plan(tasks: Iterable[Task], desired: dict[str, Annotation],
         current: dict[str, CurrentAnnotation], written: dict[str, Written] | None = None
         ) -> Plan:
    """The fewest ops that make each task show its desired annotation (none if it already
    does), except what ``written`` says a person removed under the same verdict."""
    written = written or {}
    out = Plan()
    for task in tasks:
        want = desired.get(task.ref)
        if want is None:
            continue
        have = current.get(task.ref, CurrentAnnotation())
        # What Tether wrote before counts only when there is a verdict to compare it with.
        w = written.get(task.ref) if want.verdict else None

        def op(kind: OpKind, value: str, reason: str, comment_id: str | None = None,
               _task: Task = task, _var: float = want.value_at_risk) -> WriteOp:
            return WriteOp(_task.source, _task.key, kind, value, reason, comment_id, _var)

        for name in sorted(want.labels - have.labels):
            removed = w is not None and w.labels_verdict == want.verdict and name in w.labels
            (out.held if removed else out.ops).append(
                op(OpKind.ADD_LABEL, name, HELD_LABEL if removed else want.why.get(name, "")))
        for name in sorted(have.labels - want.labels):
            out.ops.append(op(OpKind.REMOVE_LABEL, name, "no rule asks for it any more"))
        shown = have.comment_digest or (digest(have.comment) if have.comment is not None else None)
        if want.comment is not None and digest(want.comment) != shown:
            if have.comment_id is not None:
                out.ops.append(op(OpKind.UPDATE_COMMENT, want.comment, want.comment_why,
                                  have.comment_id))
            elif w is not None and w.comment_id is not None and w.comment_verdict == want.verdict:
                out.held.append(op(OpKind.CREATE_COMMENT, want.comment, HELD_COMMENT))
            else:
                out.ops.append(op(OpKind.CREATE_COMMENT, want.comment, want.comment_why))
    return out


def plan_ops(tasks: Iterable[Task], desired: dict[str, Annotation],
             current: dict[str, CurrentAnnotation]) -> list[WriteOp]:
    """``plan`` with no memory of earlier writes: the plain diff."""
    return plan(tasks, desired, current).ops


def comment_style(ws: Workspace) -> CommentStyle:
    """Each source's markup and mention rule, and the renderer with the config's templates."""
    packs = ws.rules.packs
    rules = ws.rules.signals
    versions = {r.id: f"pack {r.pack} {packs.get(r.pack, '')[:8]}".rstrip() for r in rules}
    mentioning = frozenset(r.id for r in rules if r.params.get("mention_owner"))
    style = CommentStyle(Renderer(ws.config.writeback.templates, versions, mentioning))
    types = {s.name: s.type for s in ws.config.sources}
    for name, connector in ws.connectors.items():
        style.markup[name] = connector.capabilities.markup
        if ws.config.writeback.mentions and connector.capabilities.mentions != "none":
            style.mentions[name] = partial(_owner_token, source=name, source_type=types[name])
    return style


def _owner_token(kpi: KPI, source: str, source_type: str) -> str | None:
    handle = kpi.handle(source, source_type)
    return mention(handle) if handle else None


def within_budget(ops: list[WriteOp], budget: int, source_budget: int | None
                  ) -> tuple[list[WriteOp], list[WriteOp]]:
    """Split ops into (to apply, deferred): highest value at risk first, order kept on ties."""
    ranked = sorted(ops, key=lambda o: -o.value_at_risk)
    chosen: list[WriteOp] = []
    deferred: list[WriteOp] = []
    per_source: dict[str, int] = defaultdict(int)
    for op in ranked:
        fits = len(chosen) < budget and (
            source_budget is None or per_source[op.source] < source_budget)
        if fits:
            chosen.append(op)
            per_source[op.source] += 1
        else:
            deferred.append(op)
    return chosen, deferred


@dataclass
class PassPlan:
    """What a pass means to write, and what it knew when it decided."""

    ops: list[WriteOp]
    held: list[WriteOp]
    deferred: list[WriteOp]  # over the write budget: left for the next run
    not_annotated: int  # items left alone by writeback.since
    desired: dict[str, Annotation]
    current: dict[str, CurrentAnnotation]
    written: dict[str, Written]


def plan_pass(ws: Workspace, store: Store, tasks: list[Task], mappings: list[Mapping],
              findings: list[Finding], suspect: set[str], pulled: Iterable[str] = ()
              ) -> PassPlan:
    """Stage 4 of a pass: read what each item in scope shows now (``suspect`` refs, whose
    last write may have landed unseen, are recovered with care; the sources ``pulled`` are
    asked even with nothing to read), then diff it against what it should show."""
    wb = ws.config.writeback
    written = store.load_written(t.ref for t in tasks)
    annotated = [t for t in tasks if wb.since is None or t.ref in written
                 or (t.updated is not None and t.updated >= wb.since)]
    suspect = suspect | store.ledger_unsettled_comments()
    current = memory.effective(read_current(ws, annotated, suspect, written, pulled), written)
    desired = desired_annotations(annotated, mappings, findings, {k.id: k for k in ws.config.kpis},
                                  wb.label_prefix, wb.comments, current, comment_style(ws),
                                  wb.kpi_labels)
    planned = plan(annotated, desired, current, written)
    deferred = within_budget(planned.ops, wb.budget, wb.source_budget)[1]
    return PassPlan(planned.ops, planned.held, deferred, len(tasks) - len(annotated), desired,
                    current, written)
