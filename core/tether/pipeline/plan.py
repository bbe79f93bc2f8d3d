"""Stage 4, plan: desired annotations diffed against what trackers show, as minimal WriteOps."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from ..model import KPI, Annotation, CurrentAnnotation, Finding, Mapping, OpKind, Task, WriteOp
from ..render import digest, render_comment, render_resolved


def label(prefix: str, *parts: str) -> str:
    """A label in Tether's namespace: ``<prefix>:<part>[:<part>]``."""
    return ":".join((prefix, *parts))


def desired_annotations(tasks: Iterable[Task], mappings: Iterable[Mapping],
                        findings: Iterable[Finding], kpis: dict[str, KPI], prefix: str,
                        comments: bool, current: dict[str, CurrentAnnotation]
                        ) -> dict[str, Annotation]:
    """What each task should show: a label per KPI and per labelled signal, one comment."""
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
        why: dict[str, list[str]] = defaultdict(list)
        for m in maps[ref]:
            why[label(prefix, "kpi", m.kpi)].append(m.rule_id)
        for f in found[ref]:
            if f.label:
                why[label(prefix, f.label)].append(f.rule_id)
        comment = None
        if comments and found[ref]:
            comment = render_comment(found[ref], maps[ref], kpis)
        elif comments and ref in current and current[ref].comment_id is not None:
            comment = render_resolved()  # findings cleared: say so, keep the history
        reasons = {name: "rule " + ", ".join(sorted(set(ids))) for name, ids in why.items()}
        signals = sorted({f.signal for f in found[ref]})
        comment_why = "findings: " + ", ".join(signals) if signals else "findings cleared"
        out[ref] = Annotation(ref, frozenset(why), comment, reasons, comment_why,
                              sum(f.value_at_risk for f in found[ref]))
    return out


def anchor_refs(subject: str, kpis: dict[str, KPI]) -> list[str]:
    """The items that stand for the KPI a ``kpi:<id>`` subject names (none for tasks)."""
    kind, _, kid = subject.partition(":")
    if kind != "kpi" or kid not in kpis:
        return []
    return [f"{source}:{key}" for source, key in kpis[kid].anchors.items()]


def plan_ops(tasks: Iterable[Task], desired: dict[str, Annotation],
             current: dict[str, CurrentAnnotation]) -> list[WriteOp]:
    """The fewest ops that make each task show its desired annotation; none if it already does."""
    ops = []
    for task in tasks:
        want = desired.get(task.ref)
        if want is None:
            continue
        have = current.get(task.ref, CurrentAnnotation())

        def op(kind: OpKind, value: str, reason: str, comment_id: str | None = None,
               _task: Task = task, _var: float = want.value_at_risk) -> WriteOp:
            return WriteOp(_task.source, _task.key, kind, value, reason, comment_id, _var)

        for name in sorted(want.labels - have.labels):
            ops.append(op(OpKind.ADD_LABEL, name, want.why.get(name, "")))
        for name in sorted(have.labels - want.labels):
            ops.append(op(OpKind.REMOVE_LABEL, name, "no rule asks for it any more"))
        shown = have.comment_digest or (digest(have.comment) if have.comment is not None else None)
        if want.comment is not None and digest(want.comment) != shown:
            if have.comment_id is None:
                ops.append(op(OpKind.CREATE_COMMENT, want.comment, want.comment_why))
            else:
                ops.append(op(OpKind.UPDATE_COMMENT, want.comment, want.comment_why,
                              have.comment_id))
    return ops
