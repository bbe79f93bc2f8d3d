"""`--json` everywhere: each command that prints a result can print one JSON document,
tagged with its schema, instead, for scripts and schedulers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from tether.cli import main

COMMANDS = [
    ("plan",), ("sync", "--dry-run"), ("log",), ("rules", "lint"), ("rules", "test"),
    ("rules", "explain", "jira:OPS-3"), ("rules", "explain", "kpi:nps"),
    ("rules", "diff", "--against", "{workspace}/rules"), ("config", "check"), ("kpi", "status"),
    ("kpi", "record", "nps", "41", "--at", "2025-05-01"),
]
AFTER_A_PULL = {"diff"}  # commands that read the last pull: a plan runs first


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_the_command_prints_one_json_document(command: tuple[str, ...], files_only: Path) -> None:
    if AFTER_A_PULL & set(command):
        assert CliRunner().invoke(main, ["plan", "-c", str(files_only)]).exit_code == 0
    args = [part.format(workspace=files_only) for part in command]
    result = CliRunner().invoke(main, [*args, "--json", "-c", str(files_only)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["schema"].startswith("tether.")


@pytest.mark.parametrize("command", [("plugins",), ("rules", "fields"),
                                     ("init", "--github", "acme/portal")], ids=" ".join)
def test_commands_without_a_workspace_print_json_too(command: tuple[str, ...],
                                                     tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, [*command, "--json"], catch_exceptions=False)
    assert result.exit_code == 0 and json.loads(result.stdout)["schema"].startswith("tether.")
