"""Rate-limit budgets kept in Redis, shared by every worker (and machine) sending with one
token: a token bucket taken from by one atomic script on Redis's own clock, so workers with
skewed clocks agree, and a pause any of them records when the tracker says to wait."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tether.ratelimit import Budget

if TYPE_CHECKING:
    from tether.connector import Connector

PREFIX = "tether:rate:"

# KEYS[1]: the budget's hash. ARGV: capacity, refill (tokens a second), pause (seconds to
# hold everyone back from now; negative: take one token instead). Returns the seconds to
# wait as text ("0": granted): Redis turns a Lua number into an integer, losing fractions.
_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local capacity, refill, pause = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'paused_until')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
local paused = tonumber(state[3]) or 0
-- A clock stepped back must not refill twice: time only counts once it passes ts.
tokens = math.min(capacity, tokens + math.max(0, now - ts) * refill)
ts = math.max(ts, now)
local wait = 0
if pause >= 0 then
  paused = math.max(paused, now + pause)
elseif paused > now then
  wait = paused - now
elseif tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / refill
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
           'ts', string.format('%.17g', ts), 'paused_until', string.format('%.17g', paused))
-- Idle, the bucket is full again after capacity / refill seconds: forgetting it then
-- changes nothing, as long as any pause has passed too.
local idle = capacity / refill + math.max(0, paused - now) + 1
redis.call('PEXPIRE', KEYS[1], math.ceil(idle * 1000))
return string.format('%.17g', wait)
"""


class RedisLimiter:
    """A Limiter on the Redis hash ``tether:rate:{key}`` (fields tokens, ts, paused_until)
    that grants at most ``budget.requests`` in any ``budget.per_seconds``, however the
    tracker's own window is aligned: bursts of a tenth of the budget, refilled with the
    rest (GitHub and Asana count fixed windows, where a full bucket refilled at the whole
    rate could spend the budget twice in one)."""

    def __init__(self, client: Any, key: str, budget: Budget):
        self.key = PREFIX + key
        self.budget = budget
        self.burst = max(1, budget.requests // 10)
        self.refill = max(1, budget.requests - self.burst) / budget.per_seconds
        self._script = client.register_script(_SCRIPT)  # EVALSHA, loading it when missing

    def wait(self) -> float:
        """0.0 when a request may go now (its token taken), else seconds to wait first."""
        return self._run(-1.0)

    def pause(self, seconds: float) -> None:
        """Nobody sharing this budget is granted a request for ``seconds`` from now (an
        earlier, longer pause stands)."""
        self._run(max(0.0, seconds))

    def _run(self, pause: float) -> float:
        answer = self._script(keys=[self.key],
                              args=[self.burst, repr(self.refill), repr(pause)])
        return float(answer)


def limiters_for(client: Any, connectors: dict[str, Connector],
                 budgets: dict[str, Budget]) -> dict[str, RedisLimiter]:
    """Give each connector whose source is in ``budgets`` (by name), or whose tracker
    publishes a limit, a RedisLimiter keyed by ``budget_key()``: sources sending with the
    same token share one bucket (under the strictest budget given for it). Returns the
    limiters set, by source name."""
    wanted: dict[str, tuple[str, Budget]] = {}
    for name, connector in connectors.items():
        budget = budgets.get(name) or type(connector).published_budget
        if budget is not None:
            wanted[name] = (connector.budget_key(), budget)
    strictest: dict[str, Budget] = {}
    for key, budget in wanted.values():
        if key not in strictest or (budget.rate, budget.requests) < (
                strictest[key].rate, strictest[key].requests):
            strictest[key] = budget
    shared = {key: RedisLimiter(client, key, budget) for key, budget in strictest.items()}
    for name, (key, _) in wanted.items():
        connectors[name].limiter = shared[key]
    return {name: shared[key] for name, (key, _) in wanted.items()}
