"""The webhook half of the Store: secrets trackers handed over, the installs waiting for
their handshakes, and the deliveries taken lately (for de-duplication)."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from tether.store import tables

ANY_HOOK = "*"  # an install waiting for a handshake from any of the source's webhooks
KEEP_DELIVERIES = timedelta(days=3)  # past the trackers' retry windows (Asana: 24 h)


class HookState:
    """Webhook state kept per source (it shares the Store's engine)."""

    _engine: sa.engine.Engine

    def hook_secret(self, source: str, hook: str) -> str | None:
        """The secret kept for ``hook`` of ``source``, or None."""
        t = tables.hook_secrets.c
        with self._engine.begin() as conn:
            return conn.execute(sa.select(t.secret).where(t.source == source, t.hook == hook)
                                ).scalar()

    def keep_hook_secret(self, source: str, hook: str, secret: str) -> None:
        with self._engine.begin() as conn:
            tables.upsert(conn, tables.hook_secrets, [
                {"source": source, "hook": hook, "secret": secret, "expected_until": None}])

    def forget_hook(self, source: str, hook: str) -> bool:
        """Drop ``hook``'s secret (its webhook was removed); whether one was kept."""
        t = tables.hook_secrets.c
        with self._engine.begin() as conn:
            return conn.execute(tables.hook_secrets.delete().where(
                t.source == source, t.hook == hook)).rowcount > 0

    def expect_handshakes(self, source: str, until: datetime | None) -> None:
        """Take handshakes for new webhooks of ``source`` until ``until`` (None: no more)."""
        t = tables.hook_secrets.c
        with self._engine.begin() as conn:
            conn.execute(tables.hook_secrets.delete().where(t.source == source,
                                                            t.hook == ANY_HOOK))
            if until is not None:
                conn.execute(tables.hook_secrets.insert().values(
                    source=source, hook=ANY_HOOK, secret=None, expected_until=until))

    def handshake_expected(self, source: str, now: datetime) -> bool:
        """Whether an install of ``source``'s webhooks is waiting for handshakes at ``now``."""
        t = tables.hook_secrets.c
        with self._engine.begin() as conn:
            until = conn.execute(sa.select(t.expected_until).where(
                t.source == source, t.hook == ANY_HOOK)).scalar()
        return until is not None and tables.utc(now) <= tables.read_set(until)

    def first_delivery(self, source: str, delivery: str, now: datetime) -> bool:
        """Record ``delivery`` of ``source`` as taken at ``now``; False when it was already
        (a tracker's retry). Deliveries older than KEEP_DELIVERIES are forgotten."""
        t = tables.deliveries.c
        try:
            with self._engine.begin() as conn:
                conn.execute(tables.deliveries.delete().where(t.at < now - KEEP_DELIVERIES))
                conn.execute(tables.deliveries.insert().values(source=source,
                                                               delivery=delivery, at=now))
        except sa.exc.IntegrityError:  # taken before, maybe by another thread just now
            return False
        return True
