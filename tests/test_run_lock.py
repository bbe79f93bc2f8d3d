"""One writer per store: the run lock between real processes, on SQLite (a file lock) and on
PostgreSQL (an advisory lock); the second waits, or says who holds the lock."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tether.errors import TetherError
from tether.pipeline.run import run_pass
from tether.store.db import Store
from tether.workspace import load_workspace
from workspace_kit import CONFIG, make_workspace

HOLDER = Path(__file__).with_name("lock_holder.py")


@pytest.fixture
def url(state_backend) -> str:
    return state_backend.new_url()


@contextmanager
def held_elsewhere(url: str, scope: str = "sync") -> Iterator[subprocess.Popen[str]]:
    """Another process holding the run lock ``scope`` until the block ends."""
    child = subprocess.Popen([sys.executable, str(HOLDER), scope], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "TETHER_LOCK_URL": url})
    assert child.stdin is not None and child.stdout is not None
    try:
        assert child.stdout.readline() == "held\n"  # it holds the lock from here on
        yield child
    finally:
        if child.poll() is None:
            child.stdin.write("release\n")
            child.stdin.flush()
        child.stdin.close()
        child.stdout.close()
        assert child.wait(timeout=60) in (0, -9)


def named(child: subprocess.Popen[str], scope: str = "sync") -> str:
    return (f"the run lock '{scope}' on the state store at {{}} is held by pid {child.pid} on "
            f"{socket.gethostname()} (lock_holder.py {scope}), since 2025-05-05 09:00:00 UTC; "
            "wait for that run to finish and try again")


def test_a_second_writer_that_will_not_wait_is_told_who_holds_the_lock(url: str) -> None:
    with held_elsewhere(url) as child, Store(url) as store:
        with pytest.raises(TetherError) as err, store.run_lock("sync", wait=False):
            pytest.fail("took a lock another process holds")
        assert str(err.value).startswith(named(child).format(store.url))
        assert "if it crashed, there is nothing to clean up" in str(err.value)
        with store.run_lock("other", wait=False):  # another scope is free
            pass


def test_a_second_writer_waits_until_the_first_is_done(url: str) -> None:
    told: list[str] = []
    waiting, released = threading.Event(), threading.Event()
    took: list[bool] = []

    def second() -> None:
        def on_wait(message: str) -> None:
            told.append(message)
            waiting.set()

        with Store(url) as store, store.run_lock("sync", on_wait=on_wait):
            took.append(released.is_set())

    with held_elsewhere(url) as child:
        thread = threading.Thread(target=second)
        thread.start()
        assert waiting.wait(timeout=60)  # it found the lock taken and is waiting
        released.set()
    thread.join(timeout=60)
    assert took == [True]  # it took the lock only once the first let go
    assert f"held by pid {child.pid} on {socket.gethostname()}" in told[0]


def test_the_lock_goes_with_a_holder_that_was_killed(url: str) -> None:
    with held_elsewhere(url) as child:
        child.kill()
        child.wait(timeout=60)
        with Store(url) as store, store.run_lock("sync", wait=False):
            pass  # nothing stale to clean up


@pytest.mark.parametrize("where", ["sqlite-file", "postgresql", "sqlite-memory"])
def test_two_stores_in_one_process_take_turns_too(where: str, tmp_path: Path,
                                                  request: pytest.FixtureRequest) -> None:
    if where == "postgresql":
        url = request.getfixturevalue("pg_databases").new_url()
    else:
        url = f"sqlite:///{tmp_path / 'state.db'}" if where == "sqlite-file" else "sqlite://"
    with Store(url) as first:
        second = first if where == "sqlite-memory" else Store(url)  # memory: one store only
        with first.run_lock("sync"):
            with pytest.raises(TetherError, match=f"pid {os.getpid()} "), \
                    second.run_lock("sync", wait=False):
                pass
            with second.run_lock("other", wait=False):  # another scope is free
                pass
        with second.run_lock("sync", wait=False):  # released on leaving the block
            pass
        second.close()


def test_a_sync_holds_the_lock_for_its_whole_pass_and_a_plan_needs_none(
        url: str, tmp_path: Path) -> None:
    folder = make_workspace(tmp_path / "ws", config=CONFIG + f"state:\n  url: '{url}'\n")
    ws = load_workspace(folder / "tether.yaml")
    with held_elsewhere(url), ws.open_store() as store:
        with pytest.raises(TetherError, match="held by pid"):
            run_pass(ws, store, "sync", wait=False)
        assert store.runs() == []  # refused before it began
        assert run_pass(ws, store, "plan").status == "ok"
    with ws.open_store() as store:
        assert run_pass(ws, store, "sync", wait=False).status == "ok"
        assert [r.mode for r in store.runs()] == ["sync", "plan"]


def test_tether_sync_says_who_holds_the_lock_and_waits_or_not(url: str, tmp_path: Path) -> None:
    folder = make_workspace(tmp_path / "ws", config=CONFIG + f"state:\n  url: '{url}'\n")
    command = [sys.executable, "-c", "from tether.cli import main; main()", "sync", "-c",
               str(folder / "tether.yaml")]
    with held_elsewhere(url) as child:
        refused = subprocess.run([*command, "--no-wait"], capture_output=True, text=True,
                                 timeout=120)
        assert refused.returncode == 1 and refused.stdout == ""
        assert f"held by pid {child.pid} on {socket.gethostname()}" in refused.stderr
        waiting = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        assert waiting.stderr is not None
        said = waiting.stderr.readline()  # it says so before it waits
        assert said.startswith("The run lock 'sync'") and "waiting for it to finish" in said
        assert waiting.poll() is None
    out, _ = waiting.communicate(timeout=120)  # the holder let go: the sync ran
    assert waiting.returncode == 0 and "Wrote 6 of 6" in out
    with Store(url) as store:
        assert [r.mode for r in store.runs()] == ["sync"]
