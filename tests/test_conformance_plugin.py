"""``tether.testing`` the way an outsider uses it: ``pytest -p tether.testing`` in a directory
of their own, with the drivers their environment has installed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import tether
import tether.testing

pytest_plugins = ["pytester"]

FAST = "unicode or 401"  # two quick connector-suite tests


def _ids(result: pytest.RunResult) -> list[str]:
    return [line.strip() for line in result.outlines if "::" in line]


def test_the_suite_runs_in_an_empty_directory_for_the_named_driver(
        pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("-p", "tether.testing", "--tether-driver", "github",
                                           "-k", FAST, "-v", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines([
        "*test_connector_suite.py::test_unicode_and_null_fields_normalise[[]github[]] PASSED*",
        "*test_connector_suite.py::test_401_names_the_token_variable[[]github[]] PASSED*",
    ])
    assert result.parseoutcomes()["passed"] == 2


def test_tether_driver_keeps_only_that_drivers_tests(pytester: pytest.Pytester) -> None:
    every = _ids(pytester.runpytest("-p", "tether.testing", "--co", "-q"))
    only = _ids(pytester.runpytest("-p", "tether.testing", "--tether-driver", "github", "--co", "-q"))
    assert only and only == [i for i in every if i.endswith("[github]")]
    assert {i.partition("::")[0] for i in only} == {
        "test_connector_suite.py", "test_etiquette_suite.py", "test_writeback_suite.py"}
    assert len(every) == len(only) * len(tether.testing.installed_drivers())


def test_an_unknown_driver_is_a_usage_error_naming_the_installed_ones(
        pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("-p", "tether.testing", "--tether-driver", "nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    message = result.stderr.str()
    assert "no driver named 'nope'" in message
    for name in ("asana", "github", "jira-cloud", "jira-dc"):
        assert name in message


def test_without_any_driver_the_suite_is_skipped_saying_why(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tether.testing, "installed_drivers", dict)
    result = pytester.runpytest("-p", "tether.testing", "-rs")
    assert result.ret == pytest.ExitCode.OK
    outcomes = result.parseoutcomes()
    assert outcomes.get("skipped", 0) > 0 and "passed" not in outcomes and "failed" not in outcomes
    result.stdout.fnmatch_lines(["SKIPPED *no Tether connector driver installed*"])


def test_paths_on_the_command_line_leave_the_suite_out(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mine="def test_mine():\n    pass\n")
    result = pytester.runpytest("-p", "tether.testing", "test_mine.py")
    result.assert_outcomes(passed=1)


def test_a_suite_inside_the_projects_own_virtualenv_is_collected_and_nothing_beside_it(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``.venv`` in the project is never collected, except the way down to the suite."""
    venv = pytester.path / ".venv"
    site = venv / "lib" / "site-packages"
    shutil.copytree(Path(tether.__file__).parent, site / "tether",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (venv / "pyvenv.cfg").write_text("")
    (site / "other").mkdir()
    (site / "other" / "test_other.py").write_text("def test_other():\n    assert False\n")
    (site / "tether" / "test_stray.py").write_text("def test_stray():\n    assert False\n")
    pytester.makepyfile(**{"tests/test_own": "def test_own(driver):\n    assert driver.server\n"})
    monkeypatch.setenv("PYTHONPATH", str(site))  # this copy of tether shadows the installed one
    result = pytester.runpytest_subprocess("-p", "tether.testing", "--tether-driver", "github",
                                           "--co", "-q", "-p", "no:cacheprovider")
    ids = _ids(result)
    assert "tests/test_own.py::test_own[github]" in ids
    suite = [i for i in ids if i.startswith(".venv/lib/site-packages/tether/testing/test_")]
    assert len(suite) == len(ids) - 1 > 0, ids
