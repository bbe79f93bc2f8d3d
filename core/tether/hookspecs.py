# Hook specs are signatures that pluggy reads, never called: their bodies are docstrings.
# mypy: disable-error-code="empty-body"
"""Hook specifications: the whole plugin surface of Tether.

Every hook is named ``tether_*``, documented here, listed in README.md and tested on
its own. Plugins implement them with ``@tether.hookimpl`` and register through the
``tether`` entry-point group, exactly as the built-in plugins do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from tether.connector import Connector, KpiSource, Sandbox, Starter
    from tether.rules.packs import RulePackRef

hookspec = pluggy.HookspecMarker("tether")
hookimpl = pluggy.HookimplMarker("tether")


@hookspec
def tether_connector_types() -> dict[str, type[Connector]]:
    """Return the connector classes this plugin provides, keyed by the ``type`` a source
    names in tether.yaml (``{"jira": JiraConnector}``).

    Called: whenever a workspace is loaded (config check, plan, sync, doctor, init, the
    demo), before any source is built; results of all plugins are merged.

    Each class subclasses :class:`tether.connector.Connector`, sets ``type_name`` and
    ``options_model`` (a pydantic model: its errors become located config errors), declares
    ``capabilities``, and implements ``pull``, ``read_annotations`` and ``apply`` (see their
    docstrings for the write-back contract: idempotent, never a second comment, only labels
    under the prefix). Importing it must not start anything or touch the network.

    Errors: two plugins giving the same type name is a ``TetherError`` naming both, raised
    when the types are merged. Return ``{}`` to provide none.
    """


@hookspec
def tether_kpi_source_types() -> dict[str, type[KpiSource]]:
    """Return KPI measurement sources, keyed by the ``type`` a ``kpi_sources:`` entry
    names (``{"csv": CsvKpiSource}``).

    Called: when a workspace is loaded and before each pass reads measurements.

    Each class subclasses :class:`tether.connector.KpiSource`, sets ``type_name`` and
    ``options_model``, and implements ``measurements()``, returning a list of ``Measurement``; a bad
    file, row or response raises ``InvalidInput`` naming the file, line or record, with no
    secret in the text. Same-name clashes across plugins are a ``TetherError``.
    """


@hookspec
def tether_rule_packs() -> list[RulePackRef]:
    """Return the rule packs this plugin ships: ``RulePackRef(name, folder, default)``,
    folders of YAML rules (mapping or signal rules) with optional ``*.test.yaml`` cases.

    Called: when the rulebook is built for a pass, ``rules lint|test|explain|diff`` and
    ``tether plugins``. Packs with ``default=True`` run unless the config's ``rules:``
    section says otherwise (the built-in drift pack is one, shipped by ``tether.builtins``).

    Errors: rule files are checked like the admin's own (located errors, exit 2); two
    plugins shipping a pack of the same name is a ``TetherError``.
    """


@hookspec
def tether_sandbox_types() -> dict[str, type[Sandbox]]:
    """Return fake trackers for demos and tests, keyed by the connector type they stand
    in for (``{"github": GitHubSandbox}``).

    Called: only by ``tether demo`` and by tests that ask for a sandbox, never by a sync, so
    import the sandbox inside the hook (``from .sandbox import X``): building ``Plugins()``
    then loads no fake tracker.

    Each class subclasses :class:`tether.connector.Sandbox`: ``start(seed, workdir)``
    serves a seed folder on a loopback port chosen by the OS and returns source options that
    point the connector at it (a restarted sandbox serves the state it saved in ``workdir``);
    ``stop()`` releases what ``start`` took. Same-name clashes
    across plugins are a ``TetherError``.
    """


@hookspec
def tether_starters() -> list[Starter]:
    """Return this plugin's part of `tether init`: one :class:`tether.connector.Starter` per
    connector type it wants offered there.

    Called: when the `tether init` command is built (its options) and run (the sources).

    A starter declares ``options`` (``InitOption``: flag, metavar, help, repeatable) that
    become `tether init` options, and ``source(values)`` returns the connector's
    ``sources:`` entry for a starter tether.yaml with the environment variables it needs, or
    None when none of its options were given. A bad value raises ``InitError(flag,
    message)``; the user sees it as a usage error on that option (exit 2) and nothing is
    written. Two plugins offering the same flag are a ``TetherError``.
    """
