"""`tether init`: a starter workspace that validates, whose rule tests pass, and whose
secrets stay in the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from tether.cli import main
from tether.config.load import load_config
from tether.plugins import Plugins


def init(*args: str):
    return CliRunner().invoke(main, ["init", *args])


def test_a_starter_for_all_three_trackers_loads_and_its_rule_tests_pass(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    done = init(str(tmp_path), "--jira", "https://acme.atlassian.net", "--jira-project", "OPS",
                "--github", "acme/portal", "--asana", "1200000000000101")
    assert done.exit_code == 0, done.output
    assert "JIRA_TOKEN" in done.output and "tether doctor" in done.output
    text = (tmp_path / "tether.yaml").read_text()
    assert "${JIRA_EMAIL}" in text and "token_env: JIRA_TOKEN" in text
    monkeypatch.setenv("JIRA_EMAIL", "bot@acme.example")
    monkeypatch.setenv("ASANA_WORKSPACE", "1100000000000001")
    config = load_config(tmp_path, Plugins())
    sources = {s.name: s for s in config.sources}
    assert {(s.name, s.type) for s in config.sources} == {
        ("jira", "jira"), ("github", "github"), ("asana", "asana")}
    assert sources["jira"].options.flavour == "cloud"
    tested = CliRunner().invoke(main, ["rules", "test", "-c", str(tmp_path)])
    assert tested.exit_code == 0, tested.output


def test_a_data_center_url_makes_a_data_center_source(tmp_path: Path) -> None:
    assert init(str(tmp_path), "--jira", "https://jira.acme.internal").exit_code == 0
    config = load_config(tmp_path, Plugins())
    assert config.sources[0].options.flavour == "datacenter"


def test_the_kpi_file_shows_owner_handles_only_for_the_trackers_chosen(tmp_path: Path) -> None:
    assert init(str(tmp_path), "--github", "acme/portal").exit_code == 0
    kpis = (tmp_path / "kpis.yaml").read_text()
    assert "# github: <login>" in kpis
    assert "jira" not in kpis and "asana" not in kpis


def test_init_never_overwrites_without_force(tmp_path: Path) -> None:
    assert init(str(tmp_path), "--github", "acme/portal").exit_code == 0
    again = init(str(tmp_path), "--github", "acme/other")
    assert again.exit_code != 0 and "--force" in again.output
    assert "acme/portal" in (tmp_path / "tether.yaml").read_text()
    assert init(str(tmp_path), "--github", "acme/other", "--force").exit_code == 0
    assert "acme/other" in (tmp_path / "tether.yaml").read_text()


@pytest.mark.parametrize("args, says", [
    ((), "Name at least one tracker"),
    (("--github", "portal"), "ORG/REPO"),
    (("--asana", "Website"), "project gid"),
    (("--jira", "acme"), "not a URL"),
])
def test_bad_arguments_say_what_to_write(tmp_path: Path, args: tuple[str, ...], says: str) -> None:
    result = init(str(tmp_path), *args)
    assert result.exit_code == 2 and says in result.output
    assert not (tmp_path / "tether.yaml").exists()
