"""The plugin surface: every hook is documented and tested, built-ins load via entry points."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tether import hookimpl, hookspecs
from tether.connector import InitError, InitOption, InitSource, KpiSource, Options, Sandbox, Starter
from tether.errors import TetherError
from tether.model import Measurement
from tether.plugins import Plugins
from tether.rules.packs import RulePackRef

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
HOOKS = sorted(n for n, f in inspect.getmembers(hookspecs, inspect.isfunction)
               if n.startswith("tether_"))


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_and_has_a_test(hook: str) -> None:
    assert f"`{hook}()`" in README, f"document {hook} in README.md's Plugins section"
    assert f"test_hook_{hook}" in globals(), f"write test_hook_{hook} in this file"
    assert getattr(hookspecs, hook).__doc__, f"give {hook} a docstring in hookspecs.py"


def test_builtin_plugins_load_through_entry_points() -> None:
    infos = {p.name: p for p in Plugins().describe()}
    assert infos["core"].module == "tether.builtins"
    assert infos["files"].module == "tether_files"
    assert infos["files"].distribution.startswith("tether ")


def test_load_only_the_plugins_named_in_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("TETHER_LOAD_PLUGINS", "core")
    registry = Plugins()
    assert [p.name for p in registry.describe()] == ["core"]
    assert registry.connector_types() == {}


class _Values(KpiSource):
    type_name = "fixed"

    def measurements(self) -> list[Measurement]:
        return [Measurement("opex", datetime(2025, 1, 1, tzinfo=UTC), 1.0)]


class _Box(Sandbox):
    type_name = "fake"

    def start(self, seed: Path, workdir: Path) -> dict:
        return {"url": f"file://{workdir}"}


class ThirdParty:
    """A plugin as a third party would write one, registered in code for the test."""

    __name__ = "third_party"

    @hookimpl
    def tether_connector_types(self):
        from tether_files.connector import FilesConnector
        return {"copy-of-files": FilesConnector}

    @hookimpl
    def tether_kpi_source_types(self):
        return {"fixed": _Values}

    @hookimpl
    def tether_rule_packs(self):
        return [RulePackRef("extra", Path("/nowhere"), default=False)]

    @hookimpl
    def tether_sandbox_types(self):
        return {"fake": _Box}

    @hookimpl
    def tether_starters(self):
        return [_LinearStarter()]


class _LinearStarter(Starter):
    type_name = "linear"
    options = (InitOption("--linear", "TEAM", "A Linear team key.", multiple=True),)

    def source(self, values):
        teams = values.get("linear") or ()
        if not teams:
            return None
        if not all(t.isupper() for t in teams):
            raise InitError("--linear", "a team key is upper case, like ENG")
        return InitSource(f"  - name: linear\n    type: linear\n    options: {{teams: {list(teams)}}}",
                          ("LINEAR_TOKEN",))


@pytest.fixture
def registry():
    plugins = Plugins()
    plugins.register(ThirdParty(), name="third")
    yield plugins
    plugins.unregister("third")


def test_hook_tether_connector_types(registry: Plugins) -> None:
    types = registry.connector_types()
    assert types["copy-of-files"] is types["files"]


def test_hook_tether_kpi_source_types(registry: Plugins) -> None:
    source = registry.kpi_source_types()["fixed"](Options(), Path("."))
    assert source.measurements()[0].value == 1.0
    assert "csv" in registry.kpi_source_types()


def test_hook_tether_rule_packs(registry: Plugins) -> None:
    packs = {p.name: p for p in registry.rule_packs()}
    assert packs["drift"].default and not packs["extra"].default
    assert packs["drift"].path.joinpath("untethered.yaml").is_file()


def test_hook_tether_sandbox_types(registry: Plugins, tmp_path: Path) -> None:
    box = registry.sandbox_types()["fake"]()
    assert box.start(tmp_path, tmp_path) == {"url": f"file://{tmp_path}"}
    assert {"jira", "github", "asana"} <= set(registry.sandbox_types())


def test_two_plugins_claiming_one_type_is_a_clear_error(registry: Plugins) -> None:
    class Clash:
        @hookimpl
        def tether_kpi_source_types(self):
            return {"fixed": _Values}

    registry.register(Clash(), name="clash")
    with pytest.raises(TetherError, match="'third' and 'clash' both provide the KPI source type"):
        registry.kpi_source_types()


def test_building_plugins_loads_no_sandbox_until_one_is_asked_for() -> None:
    """A sync in production never pays for the fake trackers: they load on demand."""
    import json
    import subprocess
    import sys

    script = (
        "import json, sys\n"
        "from tether.plugins import Plugins\n"
        "plugins = Plugins()\n"
        "plugins.connector_types()\n"
        "before = set(sys.modules)\n"
        "types = plugins.sandbox_types()\n"
        "print(json.dumps(sorted(types)))\n"
        "print(json.dumps(sorted(before)))\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert {"asana", "github", "jira"} <= set(json.loads(out[0]))
    assert [m for m in json.loads(out[1]) if m.split(".")[-1] == "sandbox"
            or ".sandbox." in m] == []
    loaded = json.loads(out[2])  # the modules only a sandbox needed
    for plugin in ("tether_jira", "tether_github", "tether_asana"):
        assert f"{plugin}.sandbox" in loaded


def test_hook_tether_starters(registry: Plugins) -> None:
    starters = {s.type_name: s for s in registry.starters()}
    assert {"jira", "github", "asana", "linear"} <= set(starters)
    made = starters["linear"].source({"linear": ("ENG",)})
    assert made is not None and made.environment == ("LINEAR_TOKEN",) and "ENG" in made.yaml
    assert starters["linear"].source({"linear": ()}) is None
    with pytest.raises(InitError, match="upper case"):
        starters["linear"].source({"linear": ("eng",)})
    jira = starters["jira"].source({"jira": "https://acme.atlassian.net", "jira_project": ()})
    assert jira is not None and "flavour: cloud" in jira.yaml


def test_two_starters_offering_one_flag_are_refused(registry: Plugins) -> None:
    class Again:
        __name__ = "again"

        @hookimpl
        def tether_starters(self):
            return [_LinearStarter()]

    registry.register(Again(), name="again")
    try:
        with pytest.raises(TetherError, match="both offer `tether init --linear`"):
            registry.starters()
    finally:
        registry.unregister("again")
