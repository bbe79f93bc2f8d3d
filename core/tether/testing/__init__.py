"""The connector conformance suite, shipped as a pytest plugin: ``pytest -p tether.testing``.

Every connector must behave the same against its tracker: fewest requests, exact incremental
pulls, retries, named tokens and scopes, idempotent write-back, no injected markup, one
comment per item. This package holds those tests; a plugin author proves a connector
passes them by shipping a *driver*: a sandbox of the tracker plus a few helpers to seed
items, act as a person and read the tracker's own state (the :class:`Driver` protocol
documents each member).

1. Write ``make_driver(tmp_path: pathlib.Path) -> Driver``: a callable that starts a fresh
   sandbox and returns the driver (the ``driver`` fixture sets the driver's token variable
   to "good" and stops ``driver.server`` after each test). A conformance module may import
   ``tether.sdk``, ``tether.sandbox``, ``tether.testing`` and the plugin's own modules.
2. Declare it under the ``tether.testing`` entry-point group and reinstall the plugin; the
   entry point's name is the driver id that test ids show (``test_...[gitlab]``)::

       [project.entry-points."tether.testing"]
       gitlab = "tether_gitlab.conformance:make_driver"

3. Run ``pytest -p tether.testing`` (or put ``-p tether.testing`` in ``addopts``) from any
   directory. The suite runs once per installed driver, Tether's own included;
   ``--tether-driver gitlab`` (repeatable) runs only the drivers named.

The suite joins any run that collects the configured ``testpaths`` or the current
directory, wherever Tether is installed (site-packages, a ``.venv`` inside the project).
When test paths are named on the command line only those run; ``--pyargs tether.testing``
names the suite itself. Your own tests may take the ``driver`` fixture too: they then run
once per selected driver. With no driver installed the suite's tests are skipped, saying
why. :func:`writes` counts the write requests a driver's sandbox has received.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

from tether.testing.driver import Driver, writes

__all__ = ["ENTRY_POINT_GROUP", "SUITE", "Driver", "MakeDriver", "installed_drivers", "writes"]

ENTRY_POINT_GROUP = "tether.testing"
SUITE = Path(__file__).resolve().parent  # the suite's test modules live next to this file
MakeDriver = Callable[[Path], Driver]  # what an entry point of the group loads

_SELECTED = pytest.StashKey[dict[str, importlib.metadata.EntryPoint]]()
_WANTED = pytest.StashKey[bool]()  # the suite joins this run (not named away by paths)
_FORCED = pytest.StashKey[set[Path]]()  # directories on the way to the suite we un-ignored


def installed_drivers() -> dict[str, importlib.metadata.EntryPoint]:
    """Driver id -> entry point, sorted by id; the first distribution wins a duplicate id."""
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)
    return dict(sorted(found.items()))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tether", "Tether connector conformance suite (tether.testing)")
    group.addoption("--tether-driver", action="append", default=[], metavar="NAME",
                    dest="tether_drivers",
                    help="run the conformance suite against this installed driver only "
                         "(repeatable; default: every driver of the 'tether.testing' "
                         "entry-point group)")


def pytest_configure(config: pytest.Config) -> None:
    installed = installed_drivers()
    named = list(dict.fromkeys(config.getoption("tether_drivers") or []))
    unknown = [name for name in named if name not in installed]
    if unknown:
        have = ", ".join(installed) or "none"
        raise pytest.UsageError(
            f"--tether-driver: no driver named {', '.join(map(repr, unknown))}. Installed "
            f"drivers (entry-point group '{ENTRY_POINT_GROUP}'): {have}.")
    config.stash[_SELECTED] = {name: installed[name] for name in (named or installed)}
    config.stash[_FORCED] = set()
    # Paths named on the command line are all the user asked for; otherwise (testpaths, or
    # the current directory) the suite joins the run wherever Tether is installed.
    wanted = config.args_source is not pytest.Config.ArgsSource.ARGS
    config.stash[_WANTED] = wanted
    if wanted and not any(_covers(config, arg) for arg in config.args):
        config.args.append(str(SUITE))


def _covers(config: pytest.Config, arg: str) -> bool:
    """Whether a collection argument already holds the suite (or lies inside it)."""
    path = config.invocation_params.dir / arg.split("::")[0]
    if not path.exists():
        return False  # a --pyargs module name, say: pytest drops overlaps itself
    path = path.resolve()
    return SUITE.is_relative_to(path) or path.is_relative_to(SUITE)


def pytest_report_header(config: pytest.Config) -> str:
    selected = config.stash[_SELECTED]
    drivers = ", ".join(selected) or "none installed"
    if not config.stash[_WANTED]:
        return (f"tether.testing: drivers {drivers}; the suite runs only if named "
                f"(--pyargs tether.testing), as test paths were given")
    return f"tether.testing: conformance suite {SUITE} with drivers {drivers}"


@pytest.hookimpl(wrapper=True)
def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> Generator[None, object, object]:
    """When a collected directory holds the suite below an ignored one (a ``.venv`` inside
    the project, say), open the way down to the suite and nothing beside it."""
    ignored = yield
    if not config.stash.get(_WANTED, False):
        return ignored
    forced = config.stash[_FORCED]
    if SUITE.is_relative_to(collection_path):  # the suite, or a directory above it
        if ignored:
            forced.add(collection_path)
        return False
    if collection_path.is_relative_to(SUITE):  # the suite's own files: as configured
        return ignored
    if forced and any(parent in forced for parent in collection_path.parents):
        return True  # beside the way down, in a directory only opened for the suite
    return ignored


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> Generator[None, list, list]:
    """Collect the suite's modules even where ``python_files`` does not match ``test_*.py``."""
    collected = yield
    if (file_path.parent == SUITE and file_path.name.startswith("test_")
            and file_path.suffix == ".py"
            and not any(isinstance(c, pytest.Module) for c in collected)):
        ihook = parent.session.gethookproxy(file_path)
        collected.append(ihook.pytest_pycollect_makemodule(module_path=file_path, parent=parent))
    return collected


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that uses ``driver`` runs once per selected driver, with its id."""
    if "tether_driver_name" not in metafunc.fixturenames:
        return
    selected = metafunc.config.stash[_SELECTED]
    names = list(selected)
    if names:
        metafunc.parametrize("tether_driver_name", names, ids=names)
    else:
        why = (f"no Tether connector driver installed: declare a make_driver(tmp_path) under "
               f"the '{ENTRY_POINT_GROUP}' entry-point group")
        metafunc.parametrize("tether_driver_name",
                             [pytest.param("", id="no-driver", marks=pytest.mark.skip(reason=why))])


@pytest.fixture
def tether_driver_name() -> str:
    """The id of the driver under test; parametrised for every test that uses ``driver``."""
    pytest.fail("tether_driver_name is set by parametrisation: name `driver` among the "
                "test's arguments rather than requesting it at run time")


@pytest.fixture
def driver(tether_driver_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
           pytestconfig: pytest.Config) -> Iterator[Driver]:
    """A fresh driver (its sandbox started) with its token variable set to "good"."""
    make: MakeDriver = pytestconfig.stash[_SELECTED][tether_driver_name].load()
    drv = make(tmp_path)
    monkeypatch.setenv(drv.token_variable, "good")
    yield drv
    drv.server.stop()
