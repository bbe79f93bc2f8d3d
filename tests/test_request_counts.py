"""Each connector counts the requests it sends its tracker by how they were answered (ok,
throttled, refused, failed): a pass reports them (`run.requests` in the JSON output) and
`tether serve` exports them (tether_tracker_requests_total). The counts must be the
sandbox's own log of what it answered, faults included."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from tether.sandbox import Fault
from tether.serve.metrics import Metrics
from tether.testing import installed_drivers
from tether.testing.test_writeback_suite import Tracker


def answer(status: int) -> str:
    return ("ok" if 0 < status < 400 else "throttled" if status == 429
            else "refused" if 400 <= status < 500 else "failed")


@pytest.mark.parametrize("name", ["jira-cloud", "jira-dc", "github", "asana"])
def test_a_pass_counts_its_requests_as_the_tracker_answered_them(
        name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drv = installed_drivers()[name].load()(tmp_path)
    monkeypatch.setenv(drv.token_variable, "good")
    try:
        tracker = Tracker(drv, tmp_path, n=10)
        drv.server.log.clear()
        first = len(drv.server.log) + 1  # the numbers of the requests the pass will send
        drv.server.faults.add(Fault("status", frozenset({first + 1, first + 2}), status=429,
                                    headers={"Retry-After": "1"}, body={"message": "slow"}))
        drv.server.faults.add(Fault("status", frozenset({first + 4}), status=503,
                                    body={"message": "down"}))
        result = tracker.run()
        logged = Counter(answer(r.status) for r in drv.server.log)
        assert logged["throttled"] == 2 and logged["failed"] == 1 and logged["ok"] > 0
        assert result.requests == {"src": dict(sorted(logged.items()))}
        metrics = Metrics()
        metrics.record(result, 1.0)
        text = metrics.text().decode()
        assert (f'tether_tracker_requests_total{{answer="throttled",source="src"}} '
                f'{float(logged["throttled"])}') in text
    finally:
        drv.server.stop()
