"""Hook specifications: the whole plugin surface of Tether.

Every hook is named ``tether_*``, documented here, listed in README.md and tested on
its own. Plugins implement them with ``@tether.hookimpl`` and register through the
``tether`` entry-point group, exactly as the built-in plugins do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .connector import Connector, KpiSource, Sandbox
    from .rulepack import RulePackRef

hookspec = pluggy.HookspecMarker("tether")
hookimpl = pluggy.HookimplMarker("tether")


@hookspec
def tether_connector_types() -> dict[str, type[Connector]]:
    """Return connector classes keyed by the ``type`` a source uses in tether.yaml."""


@hookspec
def tether_kpi_source_types() -> dict[str, type[KpiSource]]:
    """Return KPI measurement source classes keyed by the ``type`` used in tether.yaml."""


@hookspec
def tether_rule_packs() -> list[RulePackRef]:
    """Return rule packs (folders of YAML rules) this plugin ships, enabled or not by default."""


@hookspec
def tether_sandbox_types() -> dict[str, type[Sandbox]]:
    """Return sandbox classes (fake trackers for demos and tests) keyed by connector type."""
