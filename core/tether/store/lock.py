"""One writer per scope: a run lock held for a whole pass, so a scheduled pass, a webhook pass
and a hand-run ``tether sync`` never interleave their writes on one store.

PostgreSQL: a session advisory lock (key from the scope's name) on a connection of its own.
SQLite: ``flock`` on a file beside the database (``state.db.sync.lock`` for the scope
"sync"), per open file, so two stores in one process take turns too; an in-memory store,
which no other process can open, locks within this process. Either way the operating system
or the server releases the lock when its process ends, crashed or not: nothing goes stale.
The holder (pid, host, command, since) is kept in ``run_locks`` for the message the next
one gets.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from tether.errors import TetherError
from tether.store import tables


@dataclass(frozen=True)
class Holder:
    """Who holds a run lock, as it recorded itself."""

    pid: int
    host: str
    command: str
    since: datetime

    def describe(self) -> str:
        return (f"pid {self.pid} on {self.host} ({self.command}), "
                f"since {self.since:%Y-%m-%d %H:%M:%S} UTC")


def lock_key(scope: str) -> int:
    """The signed 64-bit advisory lock key of ``scope`` (stable across processes and hosts)."""
    return int.from_bytes(hashlib.sha256(f"tether.run_lock:{scope}".encode()).digest()[:8],
                          "big", signed=True)


def lock_file(database: Path, scope: str) -> Path:
    """The file whose flock is the run lock ``scope`` of the SQLite file ``database``."""
    name = scope if re.fullmatch(r"[\w.-]{1,64}", scope, re.ASCII) else \
        hashlib.sha256(scope.encode()).hexdigest()[:16]
    return database.with_name(f"{database.name}.{name}.lock")


def holder(engine: sa.Engine, scope: str) -> Holder | None:
    """The last recorded holder of ``scope``, or None."""
    t = tables.run_locks.c
    with engine.begin() as conn:
        row = conn.execute(sa.select(t.pid, t.host, t.command, t.since)
                           .where(t.scope == scope)).first()
    return None if row is None else Holder(row.pid, row.host, row.command,
                                           tables.read_set(row.since))


def busy(scope: str, where: str, who: Holder | None, wait: bool = False) -> str:
    """What to tell a run that found ``scope`` locked (and will ``wait``, or not)."""
    by = who.describe() if who else "another run (it has not recorded itself yet)"
    held = f"the run lock {scope!r} on the state store at {where} is held by {by}"
    if wait:
        return f"{held}; waiting for it to finish (Ctrl-C stops waiting; nothing was written)"
    return (f"{held}; wait for that run to finish and try again (the lock goes with its "
            "process: if it crashed, there is nothing to clean up)")


@contextmanager
def run_lock(engine: sa.Engine, database: Path | None, local: dict[str, threading.Lock] | None,
             scope: str, wait: bool, where: str, clock: Callable[[], datetime],
             on_wait: Callable[[str], None] | None) -> Iterator[None]:
    """Hold the run lock ``scope`` for the ``with`` block (see Store.run_lock): beside the
    SQLite file ``database``, else on PostgreSQL, else (``local``: a store no other process
    can open, or a database without advisory locks) in this process only."""
    if not scope or len(scope) > 255:
        raise ValueError("a run lock's scope is a name of 1 to 255 characters")

    def blocked() -> None:
        """The lock is taken: fail, or say who has it and go on to wait."""
        if not wait:
            raise TetherError(busy(scope, where, holder(engine, scope)))
        if on_wait is not None:
            on_wait(busy(scope, where, holder(engine, scope), wait=True))

    if database is not None:
        with _flock(lock_file(database, scope), blocked), _recorded(engine, scope, clock):
            yield
    elif local is None:
        with _advisory(engine, lock_key(scope), blocked), _recorded(engine, scope, clock):
            yield
    else:
        mine = local.setdefault(scope, threading.Lock())
        if not mine.acquire(blocking=False):
            blocked()
            mine.acquire()
        try:
            with _recorded(engine, scope, clock):
                yield
        finally:
            mine.release()


def file_lock(database: Path, scope: str) -> AbstractContextManager[None]:
    """The flock ``scope`` beside the SQLite file ``database``, waited for silently."""
    return _flock(lock_file(database, scope), lambda: None)


@contextmanager
def _flock(path: Path, blocked: Callable[[], None]) -> Iterator[None]:
    import fcntl  # POSIX only, as the sandboxes' and serve's signals are

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            blocked()
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextmanager
def _advisory(engine: sa.Engine, key: int, blocked: Callable[[], None]) -> Iterator[None]:
    conn = engine.connect()  # the lock lives as long as this session: keep it out of the pool
    try:
        taken = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        conn.commit()  # a session lock outlives the transaction; idle in one it would not be
        if not taken:
            blocked()
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            conn.commit()
        yield
        # Unlocked here, at once: a closed session's lock is released only once the server
        # notices, and the next run (a shard's next unit) may ask in between.
        with suppress(sa.exc.SQLAlchemyError):
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()
    finally:
        # Ending the session releases the lock even if the unlock could not be sent.
        conn.invalidate()
        conn.close()


@contextmanager
def _recorded(engine: sa.Engine, scope: str, clock: Callable[[], datetime]) -> Iterator[None]:
    me = Holder(os.getpid(), socket.gethostname()[:255], _command(), tables.utc(clock()))
    t = tables.run_locks
    with engine.begin() as conn:
        tables.upsert(conn, t, [{"scope": scope, "pid": me.pid, "host": me.host,
                                 "command": me.command, "since": me.since}])
    try:
        yield
    finally:
        # The record only informs; losing the database now must not hide why the pass ended.
        with suppress(sa.exc.SQLAlchemyError), engine.begin() as conn:
            conn.execute(t.delete().where(t.c.scope == scope, t.c.pid == me.pid,
                                          t.c.host == me.host))


def _command() -> str:
    """This process's command line, short (Tether takes secrets from the environment only)."""
    args = [Path(sys.argv[0]).name if sys.argv else "python", *sys.argv[1:]]
    line = " ".join(args)
    return line if len(line) <= 200 else line[:197] + "..."
