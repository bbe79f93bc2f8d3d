"""A pass spread over workers: each source scope pulled and written on its own (a shard), one
portfolio assessment between; run in this process or on Celery workers (tether.work.celery)."""

from __future__ import annotations

import os

from tether.config.model import Config


def broker_url(config: Config) -> str | None:
    """The broker's URL when one is configured (the variable ``workers.broker_env`` names is
    set): passes then go to the workers. None: every pass runs in its own process."""
    return os.environ.get(config.workers.broker_env) or None
