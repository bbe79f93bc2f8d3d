"""A plugin written outside this repository (examples/tether-gitlab, installed with pip by the
README's test command) registers through its entry point and shows up like a built-in one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from tether.cli import main
from tether.config.load import load_config
from tether.plugins import Plugins

if not os.environ.get("CI"):  # CI installs it; elsewhere it may simply not be installed
    pytest.importorskip("tether_gitlab")


def test_tether_plugins_lists_the_outside_connector() -> None:
    shown = CliRunner().invoke(main, ["plugins"])
    assert shown.exit_code == 0, shown.output
    assert "tether-gitlab" in shown.output
    assert "gitlab" in shown.output.split("connectors: ")[1].split("\n")[0]


def test_tether_init_offers_its_options_and_writes_a_source_that_loads(tmp_path: Path) -> None:
    assert "--gitlab" in CliRunner().invoke(main, ["init", "--help"]).output
    done = CliRunner().invoke(main, ["init", str(tmp_path), "--gitlab", "acme/widgets"])
    assert done.exit_code == 0, done.output
    config = load_config(tmp_path, Plugins())
    assert [(s.name, s.type) for s in config.sources] == [("gitlab", "gitlab")]
    assert "gitlab: <" in (tmp_path / "kpis.yaml").read_text()


def test_its_conformance_driver_is_found_through_the_entry_point() -> None:
    from tether.testing import installed_drivers

    assert "gitlab" in installed_drivers()
