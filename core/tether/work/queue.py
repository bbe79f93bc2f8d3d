"""The work units as Celery tasks on a Redis broker, and the executor that hands a pass to
them: the shards' pulls as a chord whose callback is the assessment, then the plans and the
writes as groups. Messages are JSON; tasks are acknowledged only once done, so a unit whose
worker died is delivered again (after ``workers.visibility_timeout``) and, being idempotent,
finishes what the dead one began."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from celery import Celery, chord, group
from celery.exceptions import TimeoutError as CeleryTimeout

from tether.config.model import Config
from tether.errors import SourceError, TetherError
from tether.ratelimit import Budget
from tether.store.db import Store
from tether.work import jobs
from tether.work.limits import limiters_for
from tether.work.wire import dump, load
from tether.workspace import Workspace, load_workspace

log = logging.getLogger("tether.work")

SETTINGS = dict(
    task_serializer="json", result_serializer="json", accept_content=["json"],
    # Acknowledged when done, not when taken: a worker killed mid-unit leaves it queued.
    task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
    result_expires=86_400, broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False, worker_send_task_events=True, task_send_sent_event=True,
)
_apps: dict[tuple[str, tuple[str, ...], float], Celery] = {}


def configure(config: Config, url: str) -> Celery:
    """The Celery app for the broker at ``url`` (results go to the same Redis) and the
    config's queue, with Tether's tasks; one per broker and queue in a process."""
    timeout = config.workers.visibility_timeout
    key = (url, config.workers.queues, timeout)
    if key in _apps:
        return _apps[key]
    # A unit whose worker died is taken again once its visibility timeout passed: look for
    # such units a few times per timeout, not kombu's default of every 100 seconds.
    options = {"visibility_timeout": timeout, "unacked_restore_throttle": 1,
               "unacked_restore_interval": max(1, min(10, int(timeout / 4)))}
    app = Celery("tether", set_as_current=False)
    app.conf.update(SETTINGS, broker_url=url, result_backend=url,
                    task_default_queue=config.workers.queue,
                    task_routes={"tether.assess": {"queue": config.workers.assess_queue}}
                    if config.workers.assess_queue else {},
                    broker_transport_options=options, result_backend_transport_options=options)
    for name, fn, extra in (("pull", _pull, {}), ("assess", _assess, {"max_retries": None}),
                            ("plan", _plan, {}), ("write", _write, {})):
        app.task(name=f"tether.{name}", bind=True, **extra)(fn)
    _apps[key] = app
    return app


# -- the worker's side --------------------------------------------------------------------

_open: dict[str, tuple[int, Workspace, Store]] = {}
_opening = threading.Lock()


def _workspace(job: jobs.Job, broker: str) -> tuple[Workspace, Store]:
    """The job's workspace and store, loaded once per worker process and again when its
    tether.yaml changes (as `tether serve` reloads it before each pass)."""
    key = json.dumps([job.config, job.overrides], sort_keys=True)
    stamp = Path(job.config).stat().st_mtime_ns
    with _opening:
        if key not in _open or _open[key][0] != stamp:
            if key in _open:
                _open[key][2].close()
            ws = load_workspace(Path(job.config), overrides=job.overrides)
            # Every worker sending with one token draws on one budget, kept in Redis.
            limiters_for(_redis(broker), ws.connectors, {
                name: Budget.parse(rate) for name, rate in ws.config.workers.rate_limits})
            _open[key] = stamp, ws, ws.open_store()
        return _open[key][1:]


def _redis(url: str) -> Any:
    import redis

    if url.startswith("redis+socket://"):  # kombu's spelling; redis-py calls it unix://
        path, _, query = url[len("redis+socket://"):].partition("?")
        db = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("virtual_host", "0")
        return redis.Redis(unix_socket_path=path, db=int(db))
    return redis.Redis.from_url(url)


def _run(task: Any, job_json: dict[str, Any], call: Any) -> Any:
    job = load(jobs.Job, job_json)
    ws, store = _workspace(job, task.app.conf.broker_url)
    try:
        return call(ws, store, job)
    except jobs.PassEnded as exc:
        log.info("%s", exc)
        return None


def _retries(task: Any, job: dict[str, Any]) -> int:
    return int(_workspace(load(jobs.Job, job), task.app.conf.broker_url)[0]
               .config.workers.retries)


def _again(task: Any, exc: Exception, retries: int) -> Exception:
    """A tracker error, transient maybe: the unit is tried again later, backing off."""
    return task.retry(exc=exc, countdown=min(60, 2 ** task.request.retries),
                      max_retries=retries)


def _pull(self: Any, job: dict[str, Any], shard: str) -> Any:
    retries = _retries(self, job)
    try:  # the last try reports the shard unread: the pass goes on without it
        return _run(self, job, lambda ws, store, j: jobs.pull(
            ws, store, j, shard, last_try=self.request.retries >= retries))
    except SourceError as exc:
        raise _again(self, exc, retries) from None


def _assess(self: Any, _pulls: list[Any], job: dict[str, Any], shards: list[str]) -> Any:
    # The pulls are read from the store, not from the chord: a pull delivered twice would
    # count twice there. One still running (a copy delivered again) is waited for.
    try:
        return _run(self, job, lambda ws, store, j: jobs.assess(ws, store, j, shards))
    except jobs.NotPulled as exc:
        raise self.retry(exc=exc, countdown=1) from None


def _plan(self: Any, job: dict[str, Any], shard: str) -> Any:
    try:
        return _run(self, job, lambda ws, store, j: jobs.plan(ws, store, j, shard))
    except SourceError as exc:
        raise _again(self, exc, _retries(self, job)) from None


def _write(self: Any, job: dict[str, Any], shard: str, chosen: list[Any],
           deferred: list[Any]) -> Any:
    return _run(self, job, lambda ws, store, j: jobs.write(ws, store, j, shard, chosen,
                                                           deferred))


# -- the coordinator's side ---------------------------------------------------------------

class OnWorkers:
    """Hands a pass's units to the workers and waits for them (an Executor)."""

    def __init__(self, config: Config, url: str, patience: float = 30.0):
        self.app = configure(config, url)
        self.state_url = config.state_url
        self.patience = patience  # seconds between checks that some worker is alive
        self.visibility = config.workers.visibility_timeout
        self.assess_queue = config.workers.assess_queue

    def pull_and_assess(self, job: jobs.Job, shards: list[str]) -> tuple[dict[str, Any], Any]:
        if not self.app.control.ping(timeout=2.0, limit=1):
            raise TetherError(self._nobody("its units"))
        self._check_assess_queue()
        data = dump(job)
        tasks = self.app.tasks
        done = chord(group(tasks["tether.pull"].s(data, s) for s in shards))(
            tasks["tether.assess"].s(data, shards))
        assessed = self._wait(done, "assess", job.run_id)
        with Store(self.state_url) as store:
            return jobs.pulls(store, job, shards), assessed

    def plan(self, job: jobs.Job, shards: list[str]) -> dict[str, Any]:
        data = dump(job)
        plan = self.app.tasks["tether.plan"]
        done = group(plan.s(data, name) for name in shards).apply_async()
        return dict(zip(shards, self._wait(done, "plan", job.run_id), strict=True))

    def write(self, job: jobs.Job, ops: dict[str, tuple[list[Any], list[Any]]]
              ) -> dict[str, Any]:
        data = dump(job)
        names = list(ops)
        write = self.app.tasks["tether.write"]
        done = group(write.s(data, name, *ops[name]) for name in names).apply_async()
        return dict(zip(names, self._wait(done, "write", job.run_id), strict=True))

    def _check_assess_queue(self) -> None:
        """With an assessment queue of its own, some worker must take from it."""
        queue = self.assess_queue
        if queue is None:
            return
        answers = self.app.control.inspect(timeout=2.0).active_queues() or {}
        if answers and not any(q["name"] == queue for qs in answers.values() for q in qs):
            raise TetherError(
                f"no worker takes the assessment's queue {queue!r} (workers.assess_queue); "
                f"start one with `tether worker -c tether.yaml --queues {queue}` and run the "
                "pass again (nothing was written)")

    def _stalled(self, run_id: int) -> bool:
        """No worker answers, and no unit of the pass began or ended lately (a worker running
        a unit in its only thread, ``--pool solo``, cannot answer, and between two units none
        is running; a dead one's unit comes back to another within the visibility timeout)."""
        if self.app.control.ping(timeout=2.0, limit=1):
            return False
        lately = datetime.now(UTC) - timedelta(seconds=self.visibility + self.patience)
        with Store(self.state_url) as store:
            return not any((u.state == "running" and u.started and u.started > lately)
                           or (u.finished and u.finished > lately) for u in store.work(run_id))

    def _nobody(self, what: str) -> str:
        return (f"no worker answers on queue {self.app.conf.task_default_queue!r} to take "
                f"{what}; start one with `tether worker -c tether.yaml` and run the pass "
                "again (nothing more was written)")

    def _wait(self, result: Any, what: str, run_id: int) -> Any:
        while True:
            try:
                got = result.get(timeout=self.patience, disable_sync_subtasks=False)
            except CeleryTimeout:
                if self._stalled(run_id):
                    raise TetherError(self._nobody(f"its {what} units")) from None
                continue
            except Exception as exc:
                raise TetherError(f"a {what} unit failed on a worker: {exc}; see `tether "
                                  "status` and the worker's log") from None
            if got is None or (isinstance(got, list) and None in got):
                raise TetherError(f"a {what} unit found its pass ended; run the pass again")
            return got
