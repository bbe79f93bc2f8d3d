"""Stage 5, apply: perform planned ops within the write budget, each one in the ledger."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tether.connector import Connector
from tether.model import OpResult, WriteOp
from tether.pipeline import memory
from tether.pipeline.plan import PassPlan, within_budget
from tether.pipeline.verdicts import Verdicts
from tether.store.db import Store
from tether.store.records import LedgerEntry
from tether.workspace import Workspace


@dataclass
class ApplyReport:
    results: list[OpResult] = field(default_factory=list)
    deferred: list[WriteOp] = field(default_factory=list)  # over budget: left for the next run

    @property
    def applied(self) -> int:
        return sum(r.ok for r in self.results)

    @property
    def failed(self) -> int:
        return sum(not r.ok for r in self.results)

    def unfinished(self) -> set[str]:
        """The items that do not show their verdict yet: a write failed or waits for the
        next run."""
        return {r.op.task for r in self.results if not r.ok} | {o.task for o in self.deferred}


def apply_ops(ops: list[WriteOp], connectors: dict[str, Connector], store: Store, run_id: int,
              budget: int, source_budget: int | None, clock: Callable[[], datetime]) -> ApplyReport:
    """Apply what the budget allows, source by source; every op is ledgered before and after."""
    chosen, deferred = within_budget(ops, budget, source_budget)
    report = ApplyReport(deferred=deferred)
    by_source: dict[str, list[WriteOp]] = defaultdict(list)
    for op in chosen:
        by_source[op.source].append(op)
    for source, batch in by_source.items():
        entries = [store.ledger_begin(run_id, op, clock()) for op in batch]
        try:
            results = connectors[source].apply(batch)
        except Exception as exc:  # a broken connector must not stop the other sources
            results = [OpResult(op, False, f"{type(exc).__name__}: {exc}") for op in batch]
        for entry, result in zip(entries, results, strict=True):
            store.ledger_end(entry, result, clock())
        report.results += results
    return report


def apply_pass(ws: Workspace, store: Store, run_id: int, planned: PassPlan, verdicts: Verdicts,
               started: datetime, clock: Callable[[], datetime]) -> ApplyReport:
    """Stage 5 of a sync: record the verdicts, apply the plan within the budget, then
    remember what was written (and what a person's removal holds back) for the next pass."""
    wb = ws.config.writeback
    store.save_mappings(verdicts.mappings, verdicts.changed)
    store.record_findings(verdicts.findings, started, None if verdicts.scope is None else
                          verdicts.scope | {f"kpi:{k.id}" for k in ws.config.kpis})
    report = apply_ops(planned.ops, ws.connectors, store, run_id, wb.budget, wb.source_budget,
                       clock)
    for op in memory.new_holds(planned.held, planned.written):  # noted once, when first honoured
        store.ledger_note(run_id, op, "held", op.reason, clock())
    store.save_written(memory.remember(planned.written, planned.desired, planned.current,
                                       planned.held, report.results, report.deferred))
    store.patch_labels(memory.label_changes(report.results))
    store.prune(started - timedelta(days=ws.config.retention_days))
    return report


def settle_interrupted(store: Store, now: datetime) -> list[LedgerEntry]:
    """Before a sync: close the writes a crash cut short, and count them as possibly written,
    so the pull does not take their landing for a person's activity."""
    interrupted = store.ledger_interrupt(now)
    store.save_written(memory.maybe_written(interrupted, store.load_written()))
    return interrupted
