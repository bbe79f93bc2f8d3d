"""A rate-limit budget shared in Redis by every process sending with one token: together they
stay within it, and a 429 (or a spent GitHub limit) any one of them sees holds all of them
back. Real parts only: redis-server (the ``redis_db`` fixture), OS processes, the trackers'
sandboxes on loopback, the connectors and their client libraries."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from tether.clock import Clock
from tether.connector import Connector
from tether.ratelimit import Budget
from tether.sandbox import Fault
from tether.testing import installed_drivers
from tether.work.limits import PREFIX, RedisLimiter, limiters_for
from tether_github.connector import GitHubConnector
from tether_github.options import GitHubOptions
from tether_jira.conformance import TOKEN_ENV, JiraDriver
from tether_jira.connector import JiraConnector
from tether_jira.sandbox.http import RateLimit

# -- Budget ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "requests", "seconds"), [
    ("5000/hour", 5000, 3600.0), ("1500/minute", 1500, 60.0), ("10/second", 10, 1.0),
    ("20/2s", 20, 2.0), (" 7 / 0.5s ", 7, 0.5), ("3/Minute", 3, 60.0)])
def test_a_budget_reads_requests_per_time(text: str, requests: int, seconds: float) -> None:
    assert Budget.parse(text) == Budget(requests, seconds)


@pytest.mark.parametrize("text", ["", "5000", "5000/day", "5000/hours", "-1/hour", "1.5/hour",
                                  "0/hour", "5/0s", "five/hour", "5/2", "5/s"])
def test_a_budget_refuses_anything_else_saying_what_it_takes(text: str) -> None:
    with pytest.raises(ValueError, match="budget"):
        Budget.parse(text)


# -- the bucket, shared by OS processes -----------------------------------------------------


def _hammer(socket: str, db: int, key: str, budget: Budget, ready: Any, go: Any,
            seconds: float, out: Any) -> None:
    """In a process of its own, with its own Redis client: take requests from the budget
    for ``seconds`` as a connector's throttle does (sleeping as told), and report
    (first wait told, the wall-clock time of each grant, when it stopped)."""
    import redis

    limiter = RedisLimiter(redis.Redis(unix_socket_path=socket, db=db), key, budget)
    ready.set()
    go.wait(30)
    first, grants = None, []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        wait = limiter.wait()
        first = wait if first is None else first
        if wait > 0:
            time.sleep(min(wait, max(0.0, end - time.monotonic())))
        else:
            grants.append(time.time())
    out.put((first, grants, time.time()))


def _in_processes(client: Any, key: str, budget: Budget, seconds: float, pause: float = 0.0
                  ) -> tuple[float, list[tuple[float, list[float], float]]]:
    """Two processes hammering ``key``, started together (after ``pause``, if any, was
    recorded on the budget): (the wall-clock time just before the pause, their reports)."""
    kwargs = client.connection_pool.connection_kwargs
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing shared but Redis
    go, out = ctx.Event(), ctx.Queue()
    readies = [ctx.Event() for _ in range(2)]
    procs = [ctx.Process(target=_hammer, args=(kwargs["path"], kwargs["db"], key, budget,
                                                 ready, go, seconds, out))
             for ready in readies]
    for proc in procs:
        proc.start()
    try:
        assert all(ready.wait(30) for ready in readies)
        before = time.time()
        if pause:
            RedisLimiter(client, key, budget).pause(pause)
        go.set()
        reports = [out.get(timeout=30) for _ in procs]
    finally:
        for proc in procs:
            proc.join(10)
    return before, reports


def test_two_processes_together_get_no_more_than_the_budget(redis_db: tuple[str, Any]) -> None:
    _, client = redis_db
    budget = Budget(20, 1.0)  # bursts of 2, refilled at 18 a second: 20 in any second
    _, reports = _in_processes(client, "shared", budget, seconds=1.5)
    grants = sorted(t for _, mine, _ in reports for t in mine)
    assert all(mine for _, mine, _ in reports)  # both were served: one bucket, two takers
    span = max(end for *_, end in reports) - grants[0]
    burst, refill = 2, 18.0
    # Never more than a burst plus what refilled meanwhile, over any stretch of time...
    for i in range(len(grants)):
        for j in range(i, len(grants)):
            assert j - i + 1 <= burst + refill * (grants[j] - grants[i]) + 1
    # ...so at most `requests` in any window of `per_seconds`, wherever it starts...
    for i, start in enumerate(grants):
        inside = [g for g in grants if start <= g < start + budget.per_seconds]
        assert len(inside) <= budget.requests, (i, len(inside))
    # ...and no fewer than that either: the budget is spent, not wasted.
    assert len(grants) >= burst + refill * span - 3


def test_a_pause_holds_back_every_process_until_it_passes(redis_db: tuple[str, Any]) -> None:
    _, client = redis_db
    before, reports = _in_processes(client, "paused", Budget(1000, 1.0), seconds=1.6,
                                    pause=1.0)
    for first, grants, _ in reports:
        assert 0.5 < first <= 1.0  # told to wait out the rest of the pause
        assert grants and min(grants) >= before + 1.0 - 0.005  # nothing granted before it
    ttl = client.pttl(PREFIX + "paused")
    assert 0 < ttl <= 3000  # idle budgets vanish: a full bucket needs no state


# -- which connectors share a bucket ----------------------------------------------------------


def test_sources_with_one_token_share_one_bucket_and_the_key_hides_it(
        redis_db: tuple[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, client = redis_db
    monkeypatch.setenv("GH_ONE", "ghp_secret")
    monkeypatch.setenv("GH_SAME", "ghp_secret")  # the same token under another variable
    monkeypatch.setenv("GH_OTHER", "ghp_other")
    monkeypatch.setenv(TOKEN_ENV, "jira_secret")

    def github(name: str, variable: str, repo: str) -> GitHubConnector:
        return GitHubConnector(name, GitHubOptions(repos=[repo], token_env=variable),
                               tmp_path, Clock())

    def jira(name: str) -> JiraConnector:
        options = JiraConnector.options_model.model_validate(
            {"url": "https://acme.atlassian.net", "email": "a@acme.example",
             "projects": ["OPS"], "token_env": TOKEN_ENV})
        return JiraConnector(name, options, tmp_path, Clock())

    connectors: dict[str, Connector] = {
        "web": github("web", "GH_ONE", "acme/web"), "api": github("api", "GH_SAME", "acme/api"),
        "ops": github("ops", "GH_OTHER", "acme/ops"), "jira": jira("jira"),
        "jira-budgeted": jira("jira-budgeted")}
    set_ = limiters_for(client, connectors, {"jira-budgeted": Budget.parse("10/second")})
    # GitHub publishes 5000/hour per token; Jira Cloud publishes no number: only a budget
    # configured for the source gives it a limiter.
    assert set(set_) == {"web", "api", "ops", "jira-budgeted"}
    assert connectors["jira"].limiter is None
    assert set_["web"] is set_["api"] and connectors["web"].limiter is set_["web"]
    assert set_["ops"] is not set_["web"]
    assert set_["web"].budget == Budget(5000, 3600.0)
    keys = {name: c.budget_key() for name, c in connectors.items()}
    assert keys["web"] == keys["api"] != keys["ops"]
    assert all(len(k) == 16 and int(k, 16) >= 0 for k in keys.values())
    assert not any("secret" in k for k in keys.values())
    monkeypatch.delenv("GH_OTHER")
    assert connectors["ops"].budget_key() == "ops"  # no token: the source's own name
    # A connector narrowed to one scope (a worker's shard) keeps the source's budget.
    assert connectors["web"].narrowed("acme/web").limiter is set_["web"]


def test_a_throttled_answer_pauses_the_budget_for_as_long_as_it_says(
        redis_db: tuple[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, client = redis_db
    monkeypatch.setenv("GH_TOKEN", "t")
    connector = GitHubConnector("gh", GitHubOptions(repos=["acme/web"], token_env="GH_TOKEN"),
                                tmp_path, Clock())

    def told(status: int, headers: dict[str, str]) -> float:
        client.flushdb()
        connector.limiter = RedisLimiter(client, connector.budget_key(), Budget(100, 1.0))
        connector.answered(status, headers)
        return connector.limiter.wait()

    assert 2.9 < told(429, {"Retry-After": "3"}) <= 3.0
    reset = str(int(time.time()) + 30)  # GitHub's spent primary limit: wait for the reset
    assert 28.5 < told(403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}) <= 30
    assert 0.9 < told(429, {}) <= 1.0  # no word on how long: a second, at least
    assert told(403, {"X-RateLimit-Remaining": "12"}) == 0.0  # refused, not throttled
    assert told(200, {"Retry-After": "3"}) == 0.0
    assert connector.requests == {"throttled": 3, "refused": 1, "ok": 1}


# -- every request every connector sends waits for the budget ---------------------------------


@pytest.mark.parametrize("name", ["jira-cloud", "jira-dc", "github", "asana"])
def test_every_request_a_connector_sends_takes_a_token_and_waits_out_a_pause(
        name: str, redis_db: tuple[str, Any], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _, client = redis_db
    drv = installed_drivers()[name].load()(tmp_path)
    monkeypatch.setenv(drv.token_variable, "good")
    try:
        drv.seed(5)
        connector = drv.connector()
        connector.clock = Clock()  # the budget is kept in real time: wait for real
        budget = Budget(1000, 1e6)  # bursts of 100, refilled too slowly to blur the count
        connector.limiter = limiter = RedisLimiter(client, connector.budget_key(), budget)
        logged = len(drv.server.log)
        started = time.monotonic()  # before the pause: it runs from when it is recorded
        limiter.pause(0.5)
        connector.pull(None)
        assert time.monotonic() - started >= 0.5
        sent = len(drv.server.log) - logged
        left = float(client.hget(limiter.key, "tokens"))
        assert sent > 0 and round(limiter.burst - left) == sent  # one token per request
    finally:
        drv.server.stop()


# -- end to end: two connectors, one token, one budget -----------------------------------------

SITE_LIMIT = RateLimit(capacity=20, fill_rate=20, interval=2.0)  # bursts of 20, 10 a second


def _jira_site(tmp_path: Path) -> JiraDriver:
    """A Jira Cloud sandbox whose token bucket (20 per 2 s) refills in real time; 40 issues
    in pages of 5, so each full pull sends 9 requests (serverInfo, /field, 8 pages + 1)."""
    drv = JiraDriver(tmp_path, "cloud")
    drv.seed(40)
    drv.world.limits.cloud_max_with_fields = 5
    drv.world.clock = Clock()  # the site's bucket refills as the clock moves
    drv.api.rate_limit = RateLimit(SITE_LIMIT.capacity, SITE_LIMIT.fill_rate,
                                   SITE_LIMIT.interval)
    return drv


def _pull_together(connectors: list[Connector], pulls: int) -> None:
    """Each connector pulls ``pulls`` times in a thread of its own, all at once."""
    failed: list[BaseException] = []

    def work(connector: Connector) -> None:
        try:
            for _ in range(pulls):
                connector.pull(None)
        except BaseException as exc:  # re-raised below, in the test's thread
            failed.append(exc)

    threads = [threading.Thread(target=work, args=(c,)) for c in connectors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not failed, failed


@pytest.mark.parametrize("shared", [True, False], ids=["one budget", "no budget"])
def test_two_connectors_with_one_token_stay_within_the_trackers_limit(
        shared: bool, redis_db: tuple[str, Any], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _, client = redis_db
    monkeypatch.setenv(TOKEN_ENV, "good")
    drv = _jira_site(tmp_path)
    try:
        connectors: dict[str, Connector] = {
            name: JiraConnector(name, drv.options(), tmp_path, Clock()) for name in ("a", "b")}
        if shared:
            # Exactly the site's 20 per 2 s: at most 20 are granted in any 2 s.
            limiters_for(client, connectors, {name: Budget(20, 2.0) for name in connectors})
            assert connectors["a"].limiter is connectors["b"].limiter is not None
        started = time.monotonic()
        _pull_together(list(connectors.values()), pulls=2)
        took = time.monotonic() - started
        throttled = sum(c.requests["throttled"] for c in connectors.values())
        ok = sum(c.requests["ok"] for c in connectors.values())
        site = sum(1 for r in drv.server.log if r.status == 429)
        assert site == throttled  # the connectors counted what the site answered
        assert ok == 36  # 2 connectors x 2 pulls x 9 requests
        if shared:
            assert throttled == 0
            # 36 requests from bursts of 2 refilled at 9 a second: no sooner than that.
            assert took >= (ok - 2) / 9 - 0.05
        else:
            assert throttled > 0  # the same two, each on its own, overspend the site's limit
    finally:
        drv.server.stop()


@pytest.mark.parametrize("shared", [True, False], ids=["one budget", "no budget"])
def test_a_429_one_connector_sees_makes_the_other_wait(
        shared: bool, redis_db: tuple[str, Any], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _, client = redis_db
    monkeypatch.setenv(TOKEN_ENV, "good")
    drv = JiraDriver(tmp_path, "cloud")
    drv.seed(5)
    try:
        first = JiraConnector("a", drv.options(), tmp_path, Clock())
        other = JiraConnector("b", drv.options(), tmp_path, Clock())
        limiters_for(client, {"a": first, "b": other}, {"a": Budget(1000, 1.0),
                                                        "b": Budget(1000, 1.0)})
        limiter = first.limiter
        assert isinstance(limiter, RedisLimiter)
        if not shared:
            other.limiter = None
        # The first request the site gets next is answered 429, Retry-After: 1.
        drv.server.faults.add(Fault("status", frozenset({len(drv.server.log) + 1}),
                                    status=429, headers={"Retry-After": "1"},
                                    body={"errorMessages": ["Rate limit exceeded."]}))
        thread = threading.Thread(target=first.pull, args=(None,))
        thread.start()
        deadline = time.monotonic() + 5
        while not (until := float(client.hget(limiter.key, "paused_until") or 0)):
            assert time.monotonic() < deadline, "the 429 paused nothing"
            time.sleep(0.002)  # until the first connector has recorded the pause
        other.pull(None)
        done = time.time()  # this machine's clock, as Redis's TIME reads it
        thread.join(10)
        assert first.requests["throttled"] == 1 and other.requests["throttled"] == 0
        assert first.requests["ok"] > 0 and other.requests["ok"] > 0
        if shared:
            assert done >= until  # held back until the Retry-After had passed
        else:
            assert done < until - 0.5  # on its own it goes at once, told nothing
    finally:
        drv.server.stop()

