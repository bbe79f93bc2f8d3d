"""Stage 5, apply: perform planned ops within the write budget, each one in the ledger."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from tether.connector import Connector
from tether.model import OpResult, WriteOp
from tether.store.db import Store


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


def within_budget(ops: list[WriteOp], budget: int, source_budget: int | None
                  ) -> tuple[list[WriteOp], list[WriteOp]]:
    """Split ops into (to apply, deferred): highest value at risk first, order kept on ties."""
    ranked = sorted(ops, key=lambda o: -o.value_at_risk)
    chosen, deferred = [], []
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
