"""Terminal output: pull progress bars drawn per source on a terminal for pulls of more
than a page, never when output is piped or JSON is asked for; NO_COLOR honoured."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from tether.cli.progress import pull_progress
from tether.connector import Connector, PullResult


class Paged(Connector):
    type_name = "paged"

    def __init__(self, name: str, pages: int):
        super().__init__(name, self.options_model(), Path("."))
        self.pages = pages

    def pull(self, cursor):
        for page in range(1, self.pages + 1):
            self.report_progress(page * 100, self.pages * 100)
        return PullResult([], None, True)

    def read_annotations(self, tasks, prefix):
        return {}

    def apply(self, ops):
        return []


def _draw(pages: int, terminal: bool, enabled: bool = True) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=terminal, width=100, no_color=True)
    connectors = {"jira": Paged("jira", pages)}
    with pull_progress(connectors, console, enabled):
        connectors["jira"].pull(None)
    assert connectors["jira"].progress is None  # unhooked afterwards
    return buffer.getvalue()


def test_a_multi_page_pull_draws_a_bar_with_counts() -> None:
    shown = _draw(5, terminal=True)
    assert "pulling jira" in shown and "500/500" in shown


def test_a_one_page_pull_draws_nothing() -> None:
    assert "pulling" not in _draw(1, terminal=True)


def test_nothing_is_drawn_off_a_terminal_or_for_json() -> None:
    assert _draw(5, terminal=False) == ""
    assert _draw(5, terminal=True, enabled=False) == ""


def test_no_color_turns_colours_off(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    (tmp_path / "tether.yaml").write_text("version: 1\nsourcez: []\n")
    command = [sys.executable, "-c", "from tether.cli import main; main()", "config", "check",
               "-c", str(tmp_path)]

    def stderr(**env: str) -> str:
        run = subprocess.run(command, capture_output=True, text=True, timeout=60,
                             env={**os.environ, "FORCE_COLOR": "1", **env})
        assert run.returncode == 2
        return run.stderr

    assert "\x1b[31m" in stderr()  # red "error" where colour is forced
    plain = stderr(NO_COLOR="1")
    assert "\x1b[" not in plain and "did you mean 'sources'" in plain
