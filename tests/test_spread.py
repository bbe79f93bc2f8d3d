"""A sync spread over shards (each Jira project, GitHub repository and Asana project pulled,
planned and written on its own, one assessment between) leaves the trackers exactly as a
single-process sync does. Here the units run in this process; tests/test_workers.py runs them
on real Celery workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fanout import Fanned, fan_out, serve, today
from tether.pipeline.incremental import Recall
from tether.pipeline.run import RunResult, run_pass
from tether.work.spread import InProcess
from tether.work.units import premap

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
    # Each pull mapped its own items: the assessment found every one matched already.
    mapped = sum(u.counts.get("mapped", 0) for u in first[1].units if u.unit.startswith("pull"))
    assert mapped == first[1].rematched["map"] == first[0].rematched["map"] == first[0].items
    again = sync(one, spread=False), sync(spread, spread=True)
    assert said(again[0]) == said(again[1])
    assert shown(one) == shown(spread)


def test_a_rule_change_between_passes_judges_as_one_process_does(
        twins: tuple[Fanned, Fanned]) -> None:
    one, spread = twins
    sync(one, spread=False), sync(spread, spread=True)
    for fanned in twins:  # Operations' express-lane project no longer counts
        rules = fanned.folder / "rules" / "mapping.yaml"
        text = rules.read_text()
        rules.write_text(text.replace("labels: {any_of: [express-lane]}",
                                      "labels: {any_of: [express-lane-retired]}"))
    again = sync(one, spread=False), sync(spread, spread=True)
    assert said(again[0]) == said(again[1]) and again[0].applied.applied > 0
    assert again[0].rematched == again[1].rematched
    assert shown(one) == shown(spread)


def test_a_pull_keeps_its_matches_only_under_the_rules_its_pass_began_with(
        twins: tuple[Fanned, Fanned]) -> None:
    """A worker that loaded other rules than the store's match cache holds (the config
    changed mid-pass) matches for nothing: the assessment matches those items itself."""
    _, spread = twins
    sync(spread, spread=True)
    ws = spread.workspace()
    at = today(spread.folder / "seed")
    with ws.open_store() as store:
        refs = {t.ref for t in store.load_tasks()[:5]}
        store.save_matches("map", "rules another worker loaded", {}, None)
        assert premap(ws, store, refs, at) == 5
        assert store.load_matches("map", Recall("map", ws.rules.mappings).book) == {}
        assert store.load_matches("map", "rules another worker loaded") == {}
