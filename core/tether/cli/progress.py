"""Progress bars for pulls: one per source, drawn only on a terminal, only for pulls of
more than a page (a one-page pull is over before a bar would help)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from tether.connector import Connector


@contextmanager
def pull_progress(connectors: dict[str, Connector], console: Console,
                  enabled: bool = True) -> Iterator[None]:
    """While open, each connector's pages advance its own bar on ``console``; nothing is
    drawn when ``enabled`` is false or the console is not a terminal."""
    if not enabled or not console.is_terminal:
        yield
        return
    columns = (TextColumn("pulling {task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as bars:
        for name, connector in connectors.items():
            connector.progress = _bar(bars, name)
        try:
            yield
        finally:
            for connector in connectors.values():
                connector.progress = None


def _bar(bars: Progress, name: str):
    state: dict[str, TaskID | int] = {"pages": 0}

    def advance(done: int, total: int | None) -> None:
        state["pages"] = int(state["pages"]) + 1
        if state["pages"] < 2:
            return  # first page: maybe the whole pull
        if "task" not in state:
            state["task"] = bars.add_task(name, total=total)
        bars.update(TaskID(int(state["task"])), completed=done, total=total)

    return advance
