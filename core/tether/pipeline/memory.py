"""What Tether remembers of its own writes, per item: to respect a person's override, and
to tell its own edits from activity."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace

from tether.model import Annotation, CurrentAnnotation, OpKind, OpResult, Task, WriteOp, Written
from tether.store.records import LedgerEntry

_COMMENT_KINDS = (OpKind.CREATE_COMMENT, OpKind.UPDATE_COMMENT)


def effective(current: dict[str, CurrentAnnotation], written: dict[str, Written]
              ) -> dict[str, CurrentAnnotation]:
    """What items show, minus a comment Tether knows a person deleted but the tracker still
    points to (Jira's marker property outlives the comment it names)."""
    out = dict(current)
    for ref, have in current.items():
        w = written.get(ref)
        if w is not None and w.comment_gone and have.comment_id == w.comment_id:
            out[ref] = replace(have, comment=None, comment_id=None, comment_digest=None)
    return out


def hold_key(op: WriteOp) -> str:
    """How ``Written.held`` names what ``op`` would have put back: "comment" or "label:<x>"."""
    return "comment" if op.kind in _COMMENT_KINDS else f"label:{op.value}"


def new_holds(held: Iterable[WriteOp], written: dict[str, Written]) -> list[WriteOp]:
    """The held ops not held on the previous run: the overrides to note in the ledger once."""
    return [op for op in held
            if op.task not in written or hold_key(op) not in written[op.task].held]


def remember(written: dict[str, Written], desired: dict[str, Annotation],
             current: dict[str, CurrentAnnotation], held: Iterable[WriteOp],
             results: Iterable[OpResult], unsent: Iterable[WriteOp]) -> dict[str, Written]:
    """The records that change after a sync: labels and comment placed under each item's
    verdict, what is held off, and which items now carry Tether's own ``updated`` stamp."""
    done: dict[str, list[OpResult]] = defaultdict(list)
    for r in results:
        done[r.op.task].append(r)
    open_comment = {op.task for op in unsent if op.kind in _COMMENT_KINDS}
    open_comment |= {r.op.task for rs in done.values() for r in rs
                     if r.op.kind in _COMMENT_KINDS and not r.ok}
    holds: dict[str, set[str]] = defaultdict(set)
    for op in held:
        holds[op.task].add(hold_key(op))
    changed = {}
    for ref, want in desired.items():
        w = written.get(ref, Written())
        have = current.get(ref, CurrentAnnotation())
        ok = [r for r in done[ref] if r.ok and not r.gone]
        shown = (have.labels | {r.op.value for r in ok if r.op.kind is OpKind.ADD_LABEL}) - \
            {r.op.value for r in ok if r.op.kind is OpKind.REMOVE_LABEL}
        placed = w.labels if w.labels_verdict == want.verdict else frozenset()
        new = replace(w, labels_verdict=want.verdict, labels=placed | (want.labels & shown),
                      held=frozenset(holds[ref]), unmasked=w.unmasked or bool(ok))
        wrote = [r for r in ok if r.op.kind in _COMMENT_KINDS]
        gone = [r for r in done[ref] if r.gone]
        if wrote:
            new = replace(new, comment_verdict=want.verdict, comment_gone=False,
                          comment_id=wrote[-1].comment_id or wrote[-1].op.comment_id)
        elif gone:
            new = replace(new, comment_id=gone[-1].op.comment_id, comment_gone=True)
        elif have.comment_id is not None and ref not in open_comment:
            new = replace(new, comment_id=have.comment_id, comment_gone=False,
                          comment_verdict=want.verdict if want.comment is not None
                          else new.comment_verdict)
        elif w.comment_id is not None and not w.comment_gone and ref not in open_comment:
            # The read looked past every cache (the comment seemed gone: see read_current)
            # and found none, so a person deleted it: noted once, not looked for again.
            new = replace(new, comment_gone=True)
        if new != w:
            changed[ref] = new
    return changed


def maybe_written(entries: Iterable[LedgerEntry], written: dict[str, Written]
                  ) -> dict[str, Written]:
    """Records for items whose write was cut short: it may have landed, so the next pull
    learns the ``updated`` stamp it left (see mask_own_edits) instead of calling it activity."""
    refs = {f"{e.source}:{e.key}" for e in entries}
    return {ref: replace(written.get(ref, Written()), unmasked=True) for ref in refs}


def label_changes(results: Iterable[OpResult]) -> dict[str, tuple[set[str], set[str]]]:
    """By task ref, the labels Tether's successful ops added and removed."""
    out: dict[str, tuple[set[str], set[str]]] = defaultdict(lambda: (set(), set()))
    for r in results:
        if r.ok and r.op.kind in (OpKind.ADD_LABEL, OpKind.REMOVE_LABEL):
            out[r.op.task][r.op.kind is OpKind.REMOVE_LABEL].add(r.op.value)
    return dict(out)


def mask_own_edits(tasks: list[Task], before: dict[str, Task], written: dict[str, Written],
                   prefix: str) -> tuple[list[Task], dict[str, Written]]:
    """Pulled tasks with Tether's own edits taken out of ``updated``, and the records that
    learnt a stamp. An item whose only change since the last pull is Tether's annotation
    keeps its old ``updated``: its labels and comment are not activity, so ``idle_days``
    must not reset (else a "stalled" finding would clear because Tether reported it)."""
    out, changed = [], {}
    for task in tasks:
        w = written.get(task.ref)
        old = before.get(task.ref)
        if w is not None and w.unmasked:
            if old is not None and task.updated != old.updated and _same(old, task, prefix):
                w = replace(w, unmasked=False, own_updated=task.updated, activity=old.updated)
                task = replace(task, updated=old.updated)
            else:  # not bumped, or a person changed it too: the stamp is theirs
                w = replace(w, unmasked=False, own_updated=None, activity=None)
            changed[task.ref] = w
        elif w is not None and w.own_updated is not None and task.updated == w.own_updated:
            task = replace(task, updated=w.activity)
        out.append(task)
    return out, changed


def _same(old: Task, new: Task, prefix: str) -> bool:
    """Equal apart from ``updated``, ``url`` (a site's address is no activity) and Tether's
    namespace labels (custom fields and raw payloads never count: a label mode may keep
    Tether's labels in a custom field)."""
    def core(t: Task) -> Task:
        return replace(t, updated=None, url="", labels=tuple(sorted(
            x for x in t.labels if not x.startswith(f"{prefix}:"))))
    return core(old) == core(new)
