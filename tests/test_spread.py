"""A sync spread over shards (each Jira project, GitHub repository and Asana project pulled,
planned and written on its own, one assessment between) leaves the trackers exactly as a
single-process sync does. Here the units run in this process; tests/test_workers.py runs them
on real Celery workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fanout import Fanned, fan_out, serve, today
from tether.pipeline.run import RunResult, run_pass
from tether.work.spread import InProcess

COPIES = 5  # Jira 2 projects x 5, GitHub 1 repository x 5, Asana 1 project x 5: 20 scopes


@pytest.fixture
def twins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Fanned, Fanned]]:
    """Two identical fanned-out portfolios, each on sandboxes of its own."""
    pair = []
    try:
        for name in ("one", "spread"):
            seed = fan_out(tmp_path / name, COPIES)
            pair.append(serve(tmp_path / name, seed))
        for key, value in pair[0].env.items():
            monkeypatch.setenv(key, value)
        yield pair[0], pair[1]
    finally:
        for fanned in pair:
            fanned.stop()


def sync(fanned: Fanned, spread: bool) -> RunResult:
    ws = fanned.workspace()
    at = today(fanned.folder / "seed")
    with ws.open_store() as store:
        return run_pass(ws, store, "sync", lambda: at,
                        executor=InProcess(ws, store) if spread else None)


def shown(fanned: Fanned) -> dict[str, dict[str, list[str]]]:
    """What a person sees: every item's comments (labels are checked through the ops)."""
    return fanned.comments()


def said(r: RunResult) -> tuple:
    return (r.status, r.items, r.totals, sorted((o.task, o.kind, o.value) for o in r.ops),
            sorted(r.new_findings), r.pulled, r.applied and r.applied.applied)


def test_a_spread_sync_writes_what_a_single_process_sync_writes(
        twins: tuple[Fanned, Fanned]) -> None:
    one, spread = twins
    assert len(spread.workspace().connectors["jira"].shards()) == 2 * COPIES
    first = sync(one, spread=False), sync(spread, spread=True)
    assert said(first[0]) == said(first[1]) and first[0].applied.applied > 60
    assert shown(one) == shown(spread)
    again = sync(one, spread=False), sync(spread, spread=True)
    assert said(again[0]) == said(again[1])
    assert shown(one) == shown(spread)
